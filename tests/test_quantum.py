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
from wow.electron import k_grid, packet
from wow.units import HBAR

from references import dft_weights, electron_fock_H, free_motion, lowering, mode
from test_propagate import run_core


def small(N=6, boundary="open", mass=1.0, alpha=2.0, D=0.0, dt=0.01, duration=4.0, n_frames=2, T=300.0,
          dynamics="frozen", sigma=1.5, a=2.556, k0=None):
    """A light chain (1 amu): ħω ~ 0.2 eV and αℓ ~ 0.2 eV, so phonons and coupling both matter in a few fs."""
    return wow.Config(chain=wow.Chain(N=N, boundary=boundary, mass=mass, a=a),
                      electron=wow.Electron(alpha=alpha, D=D, sigma=sigma, k0=k0), temperature=T,
                      dynamics=dynamics, dt=dt, duration=duration, n_frames=n_frames, check_inside=False)


def full_H(cfg, modes, n_max, u_cl):
    """Dense H = H_e(u_cl) ⊗ 1 + Σ_j X_j ⊗ H_j + Σ_j ħω_j(n_j + 1/2), axes (modes..., sites), written
    in the test from docs/model.md (references.electron_fock_H: explicit loops over bonds and sites, the
    modes by their formulas), independently of wow.electron, wow.lattice and wow.dynamics.quantum."""
    return electron_fock_H(cfg, modes, n_max, u_cl)


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


def evolve(cfg, occ, psi_e=None, s_cl=None, result=False):
    """One sample from the Fock state occ (analysis basis) ⊗ psi_e (default: the packet), the classical
    modes at s_cl (default: ``classical_sample``), through wow.run. Returns (Fock amplitudes (d,)*m + (N,)
    in the standing basis at t_final, frames of the sample[, the EnsembleResult])."""
    s_cl = classical_sample(cfg) if s_cl is None else s_cl
    with warnings.catch_warnings():  # the truncation diagnostic is tested on its own below
        warnings.simplefilter("ignore")
        r = wow.run(cfg, 1, initial=wow.InitialState(occupations=occ, Q=s_cl.Q, P=s_cl.P, P_R=0.0, psi=psi_e),
                    keep_final=True)
    out = r.final["psi"][0], {k: v[0] for k, v in r.traces.items()}
    return out + (r,) if result else out


def harmonic_u(chain, s, t):
    """u(t) of the free chain from the sample's sites, by the test's own spring matrix."""
    lat = L.to_sites(chain, s)
    return free_motion(chain, lat.u, lat.v, [t])[0]


def gaussian(cfg):
    """ψ_n ∝ exp(-(na - x0)²/(4σ²)) e^{ik0na}, normalised (docs/model.md), in numpy."""
    x = np.arange(cfg.chain.N) * cfg.chain.a
    psi = np.exp(-((x - cfg.x0) ** 2) / (4 * cfg.electron.sigma**2) + 1j * cfg.k0 * x)
    return psi / np.linalg.norm(psi)


def running_pair(d):
    """(a_c, a_s, a_+, a_-) on a cos/sin pair truncated at d levels each: a_{±q} = (a_c ± i a_s)/√2.
    Why +: the sine partner of mode j is e_{n,N-j} = √(2/N) sin(2π(N-j)n/N) = -√(2/N) sin(qna), so
    u_n ⊃ √(2/N)[Q_c cos(qna) - Q_s sin(qna)] = √(2/N) Re[(Q_c + iQ_s) e^{iqna}], and the operator
    multiplying e^{+iqna} (annihilating crystal momentum +q) is (a_c + i a_s)/√2."""
    a, I = lowering(d), np.eye(d)
    ac, as_ = np.kron(a, I), np.kron(I, a)
    return ac, as_, (ac + 1j * as_) / math.sqrt(2), (ac - 1j * as_) / math.sqrt(2)


def running_states(d):
    """{(n_+, n_-): the pair state (a_+†)^n+ (a_-†)^n- |0,0>/√(n+! n-!) on the (n_c, n_s) box of d
    levels}, built in a box of 2d levels (exact for every n_+ + n_- < 2d) and cut to the d box: the
    truncated running state whose overlap the tally reports."""
    big = 2 * d
    _, _, ap, am = running_pair(big)
    vac = np.zeros(big * big, complex)
    vac[0] = 1.0
    out = {}
    for npl in range(d):
        for nmi in range(d):
            v = vac
            for _ in range(npl):
                v = ap.conj().T @ v
            for _ in range(nmi):
                v = am.conj().T @ v
            v = v / math.sqrt(math.factorial(npl) * math.factorial(nmi))
            out[(npl, nmi)] = v.reshape(big, big)[:d, :d].ravel()
    return out


def initial_vector(cfg, n_max, occ, basis="standing"):
    """|occ> ⊗ the packet; occ in the standing basis, or (n_+, n_-) of one cos/sin pair (running)."""
    d = n_max + 1
    if basis == "running":
        ph = running_states(d)[tuple(occ)]
    else:
        ph = np.zeros((d,) * len(occ))
        ph[tuple(occ)] = 1.0
    return np.kron(ph.ravel(), gaussian(cfg))


def resolved_reference(psi, cfg, n_max, m, n0, hw, basis):
    """From a final state psi ((d^m) x N, standing Fock basis): per Fock state of the analysis basis
    its population and backscattered weight (own DFT, k < 0 folded into the zone), and P_b, the
    Δn = 0 part, the energy Σ_j ħω_j Δn_j given to the phonons averaged over the backscattered part,
    and the one-phonon share; running: projections on the test's own running-wave states."""
    d, N = n_max + 1, cfg.chain.N
    psi = psi.reshape(d**m, N)
    if basis == "running":
        states = running_states(d)
        amp = np.array([states[n].conj() @ psi for n in sorted(states)]).reshape(d, d, N)
    else:
        amp = psi.reshape((d,) * m + (N,))
    k, w = dft_weights(amp, cfg.chain.a)
    pop, back = w.sum(-1), w[..., k < 0].sum(-1)
    P_b = P_el = E = P_1 = 0.0
    for n in np.ndindex(*back.shape):
        dn = np.array(n) - np.array(n0)
        P_b += back[n]
        P_el += back[n] if not dn.any() else 0.0
        P_1 += back[n] if np.abs(dn).sum() == 1 else 0.0
        E += back[n] * float(np.dot(hw, dn))
    return {"pop": pop, "back": back, "P_b": P_b, "P_b_el": P_el, "E_ph_b": E / P_b, "f_order1": P_1 / P_b}


def _order(errs, dts):
    return np.polyfit(np.log(dts), np.log(errs), 1)[0]


@pytest.mark.parametrize("boundary,modes,D,every,basis", [("open", (2,), 0.0, 1, "standing"),
                                                          ("ring", (1, 5), 1.0, 2, "running")])
def test_against_expm_second_order(boundary, modes, D, every, basis):
    """One quantum mode on the open chain; a ring cos/sin pair with a deformation potential, the
    phonon phases applied every second step, and the Δn tallies in the running basis (from |1_+, 1_->).
    Other modes frozen at a thermal sample. The final state against expm of the test's own
    electron x Fock Hamiltonian; the Δn-resolved tallies (per Fock state populations and
    backscattered weights, P_b, its Δn = 0 part, the energy given to the phonons E_ph_b, the
    one-phonon share) against the same quantities computed from the expm state by the test's own
    Fock indexing, running-wave states and DFT (resolved_reference)."""
    n_max, occ = 4, (1,) * len(modes)
    dts = np.array([0.02, 0.01, 0.005])
    states, tallies, ref = [], [], None
    for dt in dts:
        cfg = quantum(small(boundary=boundary, D=D, dt=dt), modes=modes, n_max=n_max, others="frozen",
                      phonon_every=every, basis=basis)
        c, frames, r = evolve(cfg, occ, result=True)
        states.append(np.asarray(c).ravel())
        tallies.append({k: np.asarray(r.per_sample[k][0]) for k in ("pop", "back", "P_b", "P_b_el", "E_ph_b")}
                       | {"f_order1": np.asarray(r.fractions["f_order1"][0])})
        if ref is None:
            Q_cl = np.asarray(classical_sample(cfg).Q)
            u_cl = sum(Q_cl[j - 1] * mode(cfg.chain, j)[1] for j in range(1, cfg.chain.N))
            assert np.abs(u_cl).max() > 0.02  # the frozen modes are there (measured 0.045 Å)
            H = full_H(cfg, sorted(modes), n_max, u_cl)
            ref = sla.expm(-1j * H * cfg.t_final / HBAR) @ initial_vector(cfg, n_max, occ, basis)
            # the phonons take part: occupations move by a few hundredths (measured 0.045, 0.035)
            assert np.abs(np.asarray(frames["n_mean"][-1]) - 1.0).max() > 0.02
            hw = np.array([HBAR * mode(cfg.chain, j)[0] for j in sorted(modes)])
    errs = [np.linalg.norm(s - ref) for s in states]
    assert 1.9 <= _order(errs, dts) <= 2.1
    rich = (4 * states[-1] - states[-2]) / 3  # Strang's error is even in dt
    assert np.linalg.norm(rich - ref) < 1e-8  # measured 1.7e-9 (open), 3.7e-9 (ring)
    assert abs(np.linalg.norm(states[-1]) - 1) < 1e-12
    # the tallies: smooth in the amplitudes, so Richardson-extrapolated too
    want = resolved_reference(ref, cfg, n_max, len(modes), occ, hw, basis)
    assert 0.02 < want["P_b"] and want["P_b_el"] < 0.98 * want["P_b"] and abs(want["E_ph_b"]) > 1e-3
    for key, v in want.items():
        extrapolated = (4 * tallies[-1][key] - tallies[-2][key]) / 3
        np.testing.assert_allclose(extrapolated, v, rtol=0, atol=1e-8 * max(1.0, np.abs(v).max()), err_msg=key)


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


@pytest.mark.slow
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


def test_ring_crystal_momentum_conserved():
    """A 4-site ring with all three internal modes quantum (running basis: a ±q pair and the π/a
    mode), strong coupling: the electron's crystal momentum plus the phonons' is conserved modulo
    2π/a to truncation accuracy, although more than a tenth of the weight changes phonon state.

    Everything on the phonon side is built here from dense truncated ladder operators: a_± of the
    pair (running_pair), the phonons' crystal momentum J = n_+ - n_- + (N/2) n_{N/2} in units of
    2π/(Na), the distribution of the total K = k + J (mod N) from J's eigenvectors, and <P_ph>
    = ħ (2π/(Na)) <J>: not the code's running-wave matrix or ladder tally."""
    N, occ = 4, (0, 1, 0)
    cfg = small(N=N, boundary="ring", mass=4.0, alpha=1.0, dt=0.01, duration=5.0, n_frames=1, sigma=0.3, a=1.0, k0=1.0)
    rng = np.random.default_rng(0)
    psi_e = rng.normal(size=N) + 1j * rng.normal(size=N)
    psi_e /= np.linalg.norm(psi_e)
    k, k_w0 = dft_weights(psi_e, 1.0)
    kidx = np.round(k * N / (2 * np.pi)).astype(int)
    dist0 = np.array([k_w0[(kidx + 2) % N == x].sum() for x in range(N)])  # n_{N/2} = 1 carries N/2 = 2
    unit = 2 * np.pi / (N * cfg.chain.a)
    viol = {}
    for n_max in (3, 5):
        d = n_max + 1
        cq = quantum(cfg, modes=(1, 2, 3), n_max=n_max, others="absent", basis="running")
        c, frames = evolve(cq, occ, psi_e=psi_e)  # standing-basis amplitudes (mode 1, mode 2, mode 3, sites)
        # axes: mode 1 (cos of q = 2π/(Na)), mode 2 (the π/a mode), mode 3 (the sine partner)
        _, _, ap, am = running_pair(d)  # on (mode 1, mode 3)
        pair_J = ap.conj().T @ ap - am.conj().T @ am
        nh = np.diag(np.arange(d, dtype=float))
        # J on (mode 1, mode 2, mode 3): pair_J acts on modes 1 and 3, (N/2) n on mode 2
        pj = pair_J.reshape(d, d, d, d)  # (1, 3, 1', 3')
        J = (np.einsum("acbd,ef->aecbfd", pj, np.eye(d)) + (N // 2) * np.einsum("ab,ef,cd->aecbfd", np.eye(d), nh, np.eye(d)))
        J = J.reshape(d**3, d**3)
        psi = np.asarray(c).reshape(d**3, N)
        P_ph = HBAR * unit * np.real(np.vdot(psi, J @ psi))
        assert float(frames["P_ph"][-1]) == pytest.approx(P_ph, abs=1e-12)
        assert float(frames["P_ph"][0]) == pytest.approx(HBAR * np.pi / cfg.chain.a, abs=1e-12)
        assert abs(float(frames["P_ph"][-1]) - float(frames["P_ph"][0])) > 0.01  # it changed
        lam, V = np.linalg.eigh(J)
        exact = np.abs(lam - np.round(lam)) < 1e-9  # blocks n_+ + n_- <= n_max; the rest is truncation
        _, w = dft_weights(V.conj().T @ psi, 1.0)  # (J eigenvector, k)
        assert w[~exact].sum() < {3: 1e-5, 5: 1e-7}[n_max], (n_max, w[~exact].sum())  # truncation
        K = (np.round(lam).astype(int)[:, None] + kidx[None, :]) % N
        dist = np.array([w[exact][K[exact] == x].sum() for x in range(N)])
        viol[n_max] = np.abs(dist - dist0).max()
        changed = 1 - np.sum(np.abs(np.asarray(c)[occ]) ** 2)  # weight off the initial standing Fock state
        assert changed > 0.1
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
