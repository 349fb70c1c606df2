"""The quantum lattice (dynamics='quantum': wow.dynamics.quantum, wow.fock) against exact results: expm of the full electron x Fock
Hamiltonian (frozen classical modes) and a fourth-order Magnus reference (moving classical modes),
fitted order 2 and a Richardson-extrapolated agreement to 1e-8; n_max = 0 reducing to the classical
wow core; convergence in n_max; occupations kept exactly without coupling; the displaced-oscillator
Huang-Rhys formula; crystal-momentum conservation on a ring with every mode quantum; the
running-wave basis change; the truncation warning and refusals."""

import dataclasses
import math
import warnings

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla
from scipy.special import eval_laguerre, i0

import wow
from wow import fock
from wow import lattice as L
from wow.electron import hamiltonian, k_grid, packet
from wow.units import HBAR

from test_propagate import run_core


def small(N=6, boundary="open", mass=1.0, alpha=2.0, D=0.0, dt=0.01, duration=4.0, n_frames=2, T=300.0,
          dynamics="frozen", sigma=1.5, a=2.556, k0=None):
    """A light chain (1 amu): ħω ~ 0.2 eV and αℓ ~ 0.2 eV, so phonons and coupling both matter in a few fs."""
    return wow.Config(chain=wow.Chain(N=N, boundary=boundary, mass=mass, a=a),
                      electron=wow.Electron(alpha=alpha, D=D, sigma=sigma, k0=k0), temperature=T,
                      dynamics=dynamics, dt=dt, duration=duration, n_frames=n_frames, check_inside=False)


def _kron(ops):
    out = ops[0]
    for o in ops[1:]:
        out = np.kron(out, o)
    return out


def _bonds(u, boundary):
    return np.roll(u, -1) - u if boundary == "ring" else u[1:] - u[:-1]


def _sites(b, D, a, boundary):
    """ε_n = D (b_{n-1} + b_n)/(2a), a missing bond counting as 0 (MODEL.md)."""
    if boundary == "ring":
        return D * (np.roll(b, 1) + b) / (2 * a)
    return D * (np.concatenate([[0.0], b]) + np.concatenate([b, [0.0]])) / (2 * a)


def full_H(cfg, modes, n_max, u_cl):
    """Dense H = H_e(u_cl) ⊗ 1 + Σ_j X_j ⊗ H_j + Σ_j ħω_j(n_j + 1/2), axes (modes..., sites), written
    from MODEL.md in numpy, independently of wow.dynamics.quantum: H_j is the electron Hamiltonian's linear
    part in Q_j = ℓ_j X_j (SSH bonds -α ℓ_j Δe_bj, site energies D ℓ_j (Δe_{b-1,j} + Δe_bj)/(2a))."""
    c, e = cfg.chain, cfg.electron
    d, m, N = n_max + 1, len(modes), c.N
    b = _bonds(np.asarray(u_cl), c.boundary)
    He = hamiltonian(e.t0 - e.alpha * b, _sites(b, e.D, c.a, c.boundary), c.boundary)
    X = np.diag(np.sqrt(np.arange(1, d)), 1)
    X = X + X.T
    w, E = L.mode_frequencies(c), L.mode_matrix(c)
    H = _kron([np.eye(d)] * m + [He])
    for i, j in enumerate(modes):
        ell = math.sqrt(HBAR / (2 * c.mass_ev * w[j - 1]))
        db = ell * _bonds(E[:, j - 1], c.boundary)
        Hj = hamiltonian(-e.alpha * db, _sites(db, e.D, c.a, c.boundary), c.boundary)
        ops = [np.eye(d)] * m + [Hj]
        ops[i] = X
        H = H + _kron(ops)
        ops = [np.eye(d)] * m + [np.eye(N)]
        ops[i] = HBAR * w[j - 1] * np.diag(np.arange(d) + 0.5)
        H = H + _kron(ops)
    return H


def quantum(cfg, **kw):
    """cfg with the quantum lattice wow.QuantumLattice(**kw)."""
    return dataclasses.replace(cfg, dynamics="quantum", quantum=wow.QuantumLattice(**kw))


def classical_sample(cfg, key=jax.random.PRNGKey(0)):
    """A thermal sample of the modes that are not quantum (masked; momenta only where they move)."""
    q = cfg.quantum
    s = L.sample_modes(key, cfg.chain, cfg.temperature, cfg.statistics)
    mask = np.ones(cfg.chain.N - 1)
    mask[np.array(q.modes) - 1] = 0.0
    if q.others == "absent":
        mask[:] = 0.0
    P = s.P * mask if q.others == "wow" else jnp.zeros_like(s.P)
    return L.ModeSample(Q=s.Q * mask, P=P, P_R=s.P_R)


def evolve(cfg, occ, psi_e=None, s_cl=None):
    """One sample from the Fock state occ (analysis basis) ⊗ psi_e (default: the packet), the classical
    modes at s_cl (default: ``classical_sample``), through wow.run. Returns (Fock amplitudes (d,)*m + (N,)
    in the standing basis at t_final, frames of the sample)."""
    s_cl = classical_sample(cfg) if s_cl is None else s_cl
    with warnings.catch_warnings():  # the truncation diagnostic is tested on its own below
        warnings.simplefilter("ignore")
        r = wow.run(cfg, 1, initial=wow.InitialState(occupations=occ, Q=s_cl.Q, P=s_cl.P, P_R=0.0, psi=psi_e),
                    keep_final=True)
    return r.final["psi"][0], {k: v[0] for k, v in r.traces.items()}


def harmonic_u(chain, s, t):
    """u_n(t) = Σ_j e_nj (Q_j cos ω_j t + P_j/(Mω_j) sin ω_j t), numpy."""
    w = L.mode_frequencies(chain)
    Q, P = np.asarray(s.Q), np.asarray(s.P)
    return L.mode_matrix(chain) @ (Q * np.cos(w * t) + P / (chain.mass_ev * w) * np.sin(w * t))


def initial_vector(cfg, n_max, occ):
    ph = np.zeros((n_max + 1,) * len(occ))
    ph[tuple(occ)] = 1.0
    e = packet(cfg.chain.N, cfg.chain.a, cfg.x0, cfg.electron.sigma, cfg.k0)
    return np.kron(ph.ravel(), np.asarray(e))


def _order(errs, dts):
    return np.polyfit(np.log(dts), np.log(errs), 1)[0]


@pytest.mark.parametrize("boundary,modes,D,every", [("open", (2,), 0.0, 1), ("ring", (1, 5), 1.0, 2)])
def test_against_expm_second_order(boundary, modes, D, every):
    """One quantum mode on the open chain; a ring cos/sin pair with a deformation potential and the
    phonon phases applied every second step. Other modes frozen at a thermal sample."""
    n_max, occ = 4, (1,) * len(modes)
    dts = np.array([0.02, 0.01, 0.005])
    states, ref = [], None
    for dt in dts:
        cfg = quantum(small(boundary=boundary, D=D, dt=dt), modes=modes, n_max=n_max, others="frozen",
                      phonon_every=every)
        c, frames = evolve(cfg, occ)
        states.append(np.asarray(c).ravel())
        if ref is None:
            u_cl = np.asarray(L.modes_to_sites(cfg.chain, classical_sample(cfg).Q))
            assert np.abs(u_cl).max() > 0.02  # the frozen modes are there (measured 0.045 Å)
            H = full_H(cfg, sorted(modes), n_max, u_cl)
            ref = sla.expm(-1j * H * cfg.t_final / HBAR) @ initial_vector(cfg, n_max, occ)
            # the phonons take part: occupations move by a few hundredths (measured 0.045, 0.035)
            assert np.abs(np.asarray(frames["n_mean"][-1]) - 1.0).max() > 0.02
    errs = [np.linalg.norm(s - ref) for s in states]
    assert 1.9 <= _order(errs, dts) <= 2.1
    rich = (4 * states[-1] - states[-2]) / 3  # Strang's error is even in dt
    assert np.linalg.norm(rich - ref) < 1e-8  # measured 1.7e-9 (open), 3.7e-9 (ring)
    assert abs(np.linalg.norm(states[-1]) - 1) < 1e-12


def test_moving_classical_modes_against_magnus():
    """others='wow': the classical modes move (exact harmonic motion) while one mode is quantum.
    Reference: fourth-order Magnus on the full electron x Fock Hamiltonian H(t)."""
    n_max, modes, occ, t_final = 3, (3,), (1,), 4.0
    dts = np.array([0.02, 0.01])
    states = []
    for dt in dts:
        cfg = quantum(small(N=6, D=1.0, dt=dt, duration=t_final), modes=modes, n_max=n_max, others="wow")
        states.append(np.asarray(evolve(cfg, occ)[0]).ravel())
    s_cl = classical_sample(cfg)
    du = harmonic_u(cfg.chain, s_cl, t_final) - harmonic_u(cfg.chain, s_cl, 0.0)
    assert np.abs(du).max() > 0.02  # the classical lattice really moves (measured 0.045 Å)
    g = (0.5 - math.sqrt(3) / 6, 0.5 + math.sqrt(3) / 6)
    n_sub = 100
    h = t_final / n_sub
    psi = initial_vector(cfg, n_max, occ)
    for k in range(n_sub):
        A1, A2 = (-1j / HBAR * full_H(cfg, modes, n_max, harmonic_u(cfg.chain, s_cl, (k + gi) * h)) for gi in g)
        psi = sla.expm(h / 2 * (A1 + A2) + math.sqrt(3) * h**2 / 12 * (A2 @ A1 - A1 @ A2)) @ psi
    errs = [np.linalg.norm(s - psi) for s in states]
    assert 3.7 < errs[0] / errs[1] < 4.3  # second order
    assert np.linalg.norm((4 * states[1] - states[0]) / 3 - psi) < 1e-7  # measured 2e-9 (Magnus ref ~1e-10)


def test_n_max_zero_is_the_classical_wow_core():
    """With n_max = 0 the quantum mode's only DVR point is Q = 0: the run must be the classical wow
    propagator (wow.propagate) on the lattice without that mode, up to the zero-point phase."""
    classical = small(N=12, boundary="ring", D=1.5, dt=0.02, duration=3.0, dynamics="wow", sigma=2.0)
    cfg = quantum(classical, modes=(2, 10), n_max=0, others="wow")
    c, _ = evolve(cfg, (0, 0))
    s_cl = classical_sample(cfg)
    assert float(jnp.abs(s_cl.P).max()) > 0  # moving classical modes
    psi0 = packet(12, cfg.chain.a, cfg.x0, 2.0, cfg.k0)
    ref, _, _ = run_core(classical, L.to_sites(cfg.chain, s_cl), 0.0, psi0)
    w = L.mode_frequencies(cfg.chain)[[1, 9]]
    zero_point = np.exp(-1j * w.sum() / 2 * cfg.t_final)
    assert np.abs(np.asarray(c).ravel() - zero_point * np.asarray(ref)).max() < 1e-12


def test_convergence_in_n_max():
    """The final state converges (exponentially) to the untruncated one as n_max grows, and the
    top-level diagnostic says when it has."""
    occ, ref_n = (0,), 10
    out = {}
    for n_max in (2, 4, 6, ref_n):
        cfg = quantum(small(N=6, dt=0.01, duration=4.0, alpha=1.0), modes=(3,), n_max=n_max, others="frozen")
        c, fr = evolve(cfg, occ)
        pad = np.zeros((ref_n + 1, cfg.chain.N), complex)
        pad[: n_max + 1] = np.asarray(c)
        out[n_max] = pad, float(np.asarray(fr["top"]).max())
    ref = out[ref_n][0]
    errs = [np.linalg.norm(out[n][0] - ref) for n in (2, 4, 6)]
    assert errs[0] > 1e-2  # the truncation matters at n_max = 2 (measured 2.5e-2)
    assert all(e2 < e1 / 10 for e1, e2 in zip(errs, errs[1:]))  # measured 16x, 21x per 2 levels
    assert errs[-1] < 2e-4  # measured 7.4e-5 (2.7e-6 at n_max = 8)
    tops = [out[n][1] for n in (2, 4, 6)]
    assert all(t2 < t1 for t1, t2 in zip(tops, tops[1:]))
    # the diagnostic bounds the error: |ψ - ψ_exact| < sqrt(top-level weight) (measured 0.2-0.3 of it)
    assert all(e < math.sqrt(t) for e, t in zip(errs, tops))


@pytest.mark.parametrize("basis", ["standing", "running"])
def test_zero_coupling_keeps_every_occupation(basis):
    """α = D = 0: the phonons evolve freely and no occupation changes (exactly, to rounding), for
    thermal Fock draws that are lattice.sample_fock's, batched with vmap."""
    cfg = quantum(small(N=8, boundary="ring", alpha=0.0, T=600.0, duration=2.0, sigma=1.5), modes=(1, 7),
                  n_max=4, others="absent", basis=basis)
    with warnings.catch_warnings():  # thermal draws at or beyond n_max would warn (allowed here)
        warnings.simplefilter("ignore")
        r = wow.run(cfg, 6, seed=3)
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    draws = np.stack([np.asarray(L.sample_fock(jax.random.split(k)[0], cfg.chain, 600.0))[[0, 6]] for k in keys])
    ok = ~r.per_sample["clipped"]
    assert ok.sum() >= 3
    assert np.array_equal(r.per_sample["n0"][ok], draws[ok])
    assert draws.max() > 0  # not all vacuum
    for s in np.nonzero(ok)[0]:
        pop = r.per_sample["pop"][s].copy()
        n0 = tuple(r.per_sample["n0"][s])
        assert abs(pop[n0] - 1.0) < 1e-11  # the norm, kept to rounding over 100 steps
        pop[n0] = 0.0
        assert pop.sum() < 1e-24  # every other Fock state: rounding of amplitudes (~1e-15)²
    assert np.abs(r.per_sample["P_b_el"][ok] - r.per_sample["P_b"][ok]).max() < 1e-13
    assert np.abs(r.per_sample["norm_basis"][ok] - 1).max() < 1e-11


def test_displaced_oscillator_huang_rhys():
    """|<n|D(β)|n>|² = e^{-|β|²} L_n(|β|²)² for e^{-iκX}, X = a + a† (β = -iκ, |β|² = κ² = λ),
    computed in the DVR of a large truncated X; thermally averaged it is the Huang-Rhys closed form
    e^{-λ(2n̄+1)} I_0(2λ sqrt(n̄(n̄+1))) used by wow.theory.huang_rhys_fraction."""
    from wow import theory

    x, V = fock.dvr(80)
    for kappa in (0.3, 1.0, 1.7):
        lam = kappa**2
        diag = (V**2) @ np.exp(-1j * kappa * x)  # <n|e^{-iκX}|n> at the DVR (Gauss-Hermite) points
        n = np.arange(25)
        assert np.abs(np.abs(diag[n]) ** 2 - np.exp(-lam) * eval_laguerre(n, lam) ** 2).max() < 1e-12
        for nbar in (0.2, 1.5):
            p = (1 - nbar / (nbar + 1)) * (nbar / (nbar + 1)) ** np.arange(81)
            thermal = np.sum(p * np.abs(diag) ** 2)
            closed = np.exp(-lam * (2 * nbar + 1)) * i0(2 * lam * math.sqrt(nbar * (nbar + 1)))
            assert thermal == pytest.approx(closed, rel=1e-6)  # the tail beyond n = 80 is p ~ 1e-9
    # wow.theory's product over modes is this closed form, mode by mode
    chain = wow.Chain(N=16, boundary="ring")
    w = L.mode_frequencies(chain)
    nb = L.fock_mean(chain, 300.0)
    q = 2.0
    lam = q**2 * L.mode_matrix(chain)[8] ** 2 * HBAR / (2 * chain.mass_ev * w)
    prod = np.prod(np.exp(-lam * (2 * nb + 1)) * i0(2 * lam * np.sqrt(nb * (nb + 1))))
    assert theory.huang_rhys_fraction(chain, q, 300.0, site=8) == pytest.approx(prod, rel=1e-12)


def _total_momentum_distribution(c, cfg):
    """Weights of the total crystal momentum K = k + Σ q Δ(n_+ - n_-) + (π/a) n_{N/2} (mod 2π/a), in
    units of 2π/(Na), from standing-basis Fock amplitudes c (modes..., sites) of a ring with every
    internal mode quantum."""
    ql = cfg.quantum
    modes = ql.sorted_modes()
    N, d = cfg.chain.N, ql.n_max + 1
    pairs = fock.ring_pairs(cfg.chain, modes)
    Ws = [jnp.asarray(fock.running_wave_matrix(ql.n_max)) for _ in pairs]
    w = np.abs(np.fft.fft(np.asarray(fock.apply_pairs(jnp.asarray(c), pairs, Ws)), axis=-1, norm="ortho")) ** 2
    grid = np.stack(np.meshgrid(*[np.arange(d)] * (N - 1), indexing="ij"), -1)
    P = sum((j if 2 * j <= N else -(N - j)) * grid[..., j - 1] for j in range(1, N))  # a_{+q} on j < N/2
    kidx = np.round(k_grid(N, cfg.chain.a) * N * cfg.chain.a / (2 * np.pi)).astype(int)
    K = (P[..., None] + kidx) % N
    return np.array([w[K == x].sum() for x in range(N)]), w


def test_ring_crystal_momentum_conserved():
    """A 4-site ring with all three internal modes quantum (running basis: a ±q pair and the π/a
    mode), strong coupling: the electron's crystal momentum plus the phonons' is conserved modulo
    2π/a to truncation accuracy, although more than a tenth of the weight changes phonon state."""
    N, occ = 4, (0, 1, 0)
    cfg = small(N=N, boundary="ring", mass=4.0, alpha=1.0, dt=0.01, duration=5.0, n_frames=1, sigma=0.3, a=1.0, k0=1.0)
    rng = np.random.default_rng(0)
    psi_e = rng.normal(size=N) + 1j * rng.normal(size=N)
    psi_e /= np.linalg.norm(psi_e)
    k_w0 = np.abs(np.fft.fft(psi_e, norm="ortho")) ** 2
    kidx = np.round(k_grid(N, 1.0) * N / (2 * np.pi)).astype(int)
    dist0 = np.array([k_w0[(kidx + 2) % N == x].sum() for x in range(N)])  # n_{N/2} = 1 carries N/2 = 2
    viol = {}
    for n_max in (3, 5):
        cq = quantum(cfg, modes=(1, 2, 3), n_max=n_max, others="absent", basis="running")
        c, frames = evolve(cq, occ, psi_e=psi_e)
        dist, w = _total_momentum_distribution(c, cq)
        viol[n_max] = np.abs(dist - dist0).max()
        assert 1 - w.reshape(-1, N)[np.ravel_multi_index(occ, (n_max + 1,) * 3)].sum() > 0.1
        # <P_ph> tallied with ladder operators = Σ ħq (n_+ - n_-) + ħ(π/a) n_{N/2} over running-basis populations
        pop = w.sum(-1)
        n = np.indices(pop.shape)
        q1 = 2 * np.pi / (N * cfg.chain.a)
        P_ph = HBAR * np.sum(pop * (q1 * (n[0] - n[2]) + np.pi / cfg.chain.a * n[1]))
        assert float(frames["P_ph"][-1]) == pytest.approx(P_ph, abs={3: 1e-4, 5: 1e-7}[n_max])  # truncation: 7e-6 at n_max = 3
        assert float(frames["P_ph"][0]) == pytest.approx(HBAR * np.pi / cfg.chain.a, abs=1e-12)
        assert abs(float(frames["P_ph"][-1]) - float(frames["P_ph"][0])) > 0.01  # it changed
    assert viol[5] < 1e-7  # measured 4e-9 (n_max = 5), 9e-7 (n_max = 3); a wrong sign of q gives 1.5e-3
    assert viol[5] < viol[3] / 10


def test_running_wave_basis_change():
    """W maps (n_c, n_s) to (n_+, n_-) amplitudes: unitary and occupation-conserving on the states it
    represents exactly (n_c + n_s <= n_max), and W (a_c ± i a_s)/√2 W† = a_± there."""
    n_max = 5
    d = n_max + 1
    W = fock.running_wave_matrix(n_max)
    nc, ns = np.meshgrid(np.arange(d), np.arange(d), indexing="ij")
    tot = (nc + ns).ravel()
    tri = tot <= n_max
    rng = np.random.default_rng(1)
    v = np.where(tri, rng.normal(size=d * d) + 1j * rng.normal(size=d * d), 0)
    v /= np.linalg.norm(v)
    u = W @ v
    assert abs(np.linalg.norm(u) - 1) < 1e-13
    assert np.vdot(u, tot * u).real == pytest.approx(np.vdot(v, tot * v).real, abs=1e-13)
    assert np.allclose(W[np.ix_(tri, tri)].conj().T @ W[np.ix_(tri, tri)], np.eye(tri.sum()), atol=1e-13)
    assert np.abs(W[tot[:, None] != tot[None, :]]).max() < 1e-15  # block diagonal in n_c + n_s
    a = np.diag(np.sqrt(np.arange(1, d)), 1)
    ac, as_ = np.kron(a, np.eye(d)), np.kron(np.eye(d), a)
    for sign, a_run in ((1, ac), (-1, as_)):  # a_+ lowers the first index, a_- the second
        lhs = W @ ((ac + sign * 1j * as_) / math.sqrt(2)) @ v
        assert np.abs(lhs - a_run @ u).max() < 1e-13
    # a truncated state beyond the triangle loses norm (reported, not hidden)
    top = np.zeros(d * d)
    top[np.ravel_multi_index((n_max, n_max), (d, d))] = 1
    assert np.linalg.norm(W @ top) < 1


def test_truncation_warning_and_refusals():
    cfg = small(N=6, alpha=4.0, duration=1.0, T=0.0)
    with pytest.warns(UserWarning, match="top Fock level"):
        wow.run(quantum(cfg, modes=(3,), n_max=1, others="absent"), 1)
    ring = small(N=6, boundary="ring")
    QL = wow.QuantumLattice
    for ql, cf, match in [
        (QL(modes=(6,)), cfg, "modes"),
        (QL(modes=(2, 2)), cfg, "twice"),
        (QL(modes=(2,), n_max=-1), cfg, "n_max"),
        (QL(modes=(2,), basis="running"), cfg, "ring"),
        (QL(modes=(1,), basis="running"), ring, "partner"),
        (QL(modes=(2,), others="moving"), cfg, "others"),
        (QL(modes=(2,), phonon_every=7), cfg, "phonon_every"),
        (QL(modes=(2,)), dataclasses.replace(cfg, recoil=True), "recoil"),
        (QL(modes=(2,)), dataclasses.replace(cfg, order=4), "order"),
        (QL(modes=(2, 3), n_max=(4,)), cfg, "n_max"),
        (QL(modes=(1, 5), n_max=(4, 3), basis="running"), ring, "equal n_max"),
    ]:
        with pytest.raises(wow.ConfigError, match=match):
            wow.validate(dataclasses.replace(cf, dynamics="quantum", quantum=ql))
    with pytest.raises(wow.ConfigError, match="occupations"):  # a given Fock state beyond n_max
        wow.run(quantum(cfg, modes=(3,), n_max=2), 1, initial=wow.InitialState(occupations=(3,)))


def test_momentum_modes():
    """The modes that can take q = 2k0 = 2π/(3a): open j = 2N/3; ring the pair (N/3, 2N/3)."""
    c = wow.Chain(N=60)
    k0 = math.pi / (3 * c.a)
    assert fock.momentum_modes(c, 2 * k0) == (40,)
    assert fock.mode_wavevector(c, 40) == pytest.approx(2 * k0)
    r = wow.Chain(N=60, boundary="ring")
    assert fock.momentum_modes(r, 2 * k0) == (20, 40)
    assert fock.momentum_modes(r, -2 * k0) == (20, 40)
    assert fock.momentum_modes(r, math.pi / c.a) == (30,)
    with pytest.raises(wow.ConfigError, match="CM"):
        fock.momentum_modes(r, 2 * math.pi / c.a)
