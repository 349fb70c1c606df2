"""wow.transport and the transport references in wow.theory, each against an exact result:

- the velocity operator against the dense commutator (i/ħ)[H, x] and d<(x - x0)²>/dt from expm;
- the estimators on an exactly sampled Ornstein-Uhlenbeck velocity process (known D = σ_v² τ and
  τ): the MSD-slope D, the Kubo D and τ_p within their errors, with ~68 % coverage of ±1σ;
- the HSR closed forms against the exact Lindblad evolution (Liouvillian expm on a small chain);
- HSR dephasing through wow.run (dynamics='noise'): the ensemble against the closed forms (MSD at
  several times, the velocity correlation, D within 2 %, the Kubo D equal to the MSD slope, τ_p and
  τ_E = 1/Γ); Gaussian and binary phases alike; rate 0 equal to the frozen chain;
- frozen disorder: the transfer-matrix Lyapunov exponent against the weak-disorder formula, the
  decay of the exact Green's function, and the decay of the resolvent built from wow.run's frames;
- the per-frame transport observables (Config.transport) against the same quantities recomputed
  from saved amplitudes and lattices (frozen, wow, ehrenfest);
- μ and α against hand-computed values; the free ballistic spread.
"""

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla
from scipy.integrate import cumulative_trapezoid
from scipy import sparse
from scipy.linalg import solve_banded
from scipy.sparse.linalg import expm_multiply

import wow
from wow import ensemble
from wow import theory as th
from wow import transport as tr
from wow import occupations as occ
from wow.electron import band, bonds, group_velocity, hamiltonian, hoppings, k_grid, onsite
from wow.lattice import SiteState
from wow.units import HBAR, KB


def gaussian(N, a, x0, sigma, k0):
    x = np.arange(N) * a
    psi = np.exp(-((x - x0) ** 2) / (4 * sigma**2) + 1j * k0 * x)
    return psi / np.linalg.norm(psi)


def ols_weights(t):
    """w with w @ y = the least-squares slope of y against t."""
    d = t - t.mean()
    return d / np.sum(d**2)


def dense_velocity(t_bonds, eps, a, boundary):
    """v = -(ia/ħ) Σ_b t_b (|n><n+1| - |n+1><n|) as a dense matrix (for the ring, bond N-1 joins
    N-1 and 0)."""
    N = len(eps)
    V = np.zeros((N, N), complex)
    for n, t in enumerate(t_bonds):
        m = (n + 1) % N
        V[n, m] += -1j * a / HBAR * t
        V[m, n] += 1j * a / HBAR * t
    return V


# --------------------------------------------------------------------------------------------
# The velocity operator and the per-frame observables
# --------------------------------------------------------------------------------------------
def test_velocity_is_the_commutator_and_drives_the_msd():
    rng = np.random.default_rng(0)
    N, a, x0 = 40, 2.5, 47.0
    t_b = 1.0 + 0.3 * rng.normal(size=N - 1)
    eps = 0.5 * rng.normal(size=N)
    H = hamiltonian(t_b, eps, "open")
    X = np.diag(np.arange(N) * a)
    V = 1j / HBAR * (H @ X - X @ H)
    np.testing.assert_allclose(V, dense_velocity(t_b, eps, a, "open"), atol=1e-13)
    psi = rng.normal(size=N) + 1j * rng.normal(size=N)
    psi /= np.linalg.norm(psi)
    tj, pj = jnp.asarray(t_b), jnp.asarray(psi)
    np.testing.assert_allclose(np.asarray(tr.apply_velocity(pj, tj, a, "open")), V @ psi, atol=1e-13)
    assert float(tr.velocity(pj, tj, a, "open")) == pytest.approx(np.real(np.vdot(psi, V @ psi)), abs=1e-13)
    # d<(x - x0)²>/dt = 2 Re<(x - x0) v>, by a centred difference of the exact evolution
    Xr = X - x0 * np.eye(N)
    h = 1e-4
    m = [np.real(np.vdot(p, Xr @ Xr @ p)) for p in (sla.expm(-1j * H * s / HBAR) @ psi for s in (-h, h))]
    dmsd = (m[1] - m[0]) / (2 * h)
    assert 2 * float(tr.position_velocity(pj, tj, a, x0, "open")) == pytest.approx(dmsd, rel=1e-7)
    # a plane wave moves at the group velocity
    k = 2 * math.pi * 7 / (64 * a)  # a ring momentum
    pw = jnp.asarray(np.exp(1j * k * np.arange(64) * a) / 8.0)
    v = float(tr.velocity(pw, jnp.full(64, 1.3), a, "ring"))
    assert v == pytest.approx(float(group_velocity(k, 1.3, a)), rel=1e-12)


def test_ring_velocity_and_observables():
    """On the ring v includes the closing bond; <x>, <x²> use the minimum image about x0; the
    energy is wow.electron's, <k> the DFT mean, corr = Re<ψ|v|φ>."""
    rng = np.random.default_rng(1)
    N, a = 32, 1.7
    t_b = 1.0 + 0.2 * rng.normal(size=N)
    eps = 0.3 * rng.normal(size=N)
    psi = gaussian(N, a, 3 * a, 2 * a, 0.4) * np.exp(0.1j * rng.normal(size=N))  # straddles the cut
    phi = rng.normal(size=N) + 1j * rng.normal(size=N)
    V = dense_velocity(t_b, eps, a, "ring")
    obs = tr.transport_observables(jnp.asarray(psi), jnp.asarray(t_b), jnp.asarray(eps), a, 3 * a,
                                   "ring", phi=jnp.asarray(phi))
    d = (np.arange(N) * a - 3 * a + N * a / 2) % (N * a) - N * a / 2
    rho = np.abs(psi) ** 2
    H = hamiltonian(t_b, eps, "ring")
    k = np.asarray(wow.electron.k_grid(N, a))
    expect = {"norm": 1.0, "x": d @ rho, "x2": (d**2) @ rho, "v": np.real(np.vdot(psi, V @ psi)),
              "D_run": np.real(np.vdot(d * psi, V @ psi)), "energy": np.real(np.vdot(psi, H @ psi)),
              "k": k @ np.abs(np.fft.fft(psi, norm="ortho")) ** 2, "corr": np.real(np.vdot(psi, V @ phi))}
    for name, value in expect.items():
        assert float(obs[name]) == pytest.approx(value, rel=1e-10, abs=1e-12), name


# --------------------------------------------------------------------------------------------
# Estimators on an Ornstein-Uhlenbeck velocity process (exact sampling)
# --------------------------------------------------------------------------------------------
def test_ou_sampler_is_exact():
    rng = np.random.default_rng(5)
    t = np.linspace(0, 8, 41)
    X, V = th.ou_paths(rng, (40000,), t, sigma=1.3, tau=0.7)
    m, se = tr.series_mean_sem(X**2)
    exact = 2 * 1.3**2 * 0.7**2 * (t / 0.7 - 1 + np.exp(-t / 0.7))
    assert np.all(np.abs(m[1:] - exact[1:]) < 4 * se[1:])
    c, cse = tr.series_mean_sem(V * V[:, :1])
    assert np.all(np.abs(c - 1.3**2 * np.exp(-t / 0.7)) < 4 * cse)


def test_estimators_recover_ou_truth_with_calibrated_errors():
    """200 independent repetitions of 400 samples: the MSD-slope D (window from 5 τ_p, τ_p from the
    Kubo estimate), the Kubo D and τ_p hit the truth within ±1σ in ~68 % of the repetitions, and
    their mean standardised error is ~0 (no bias beyond a tenth of σ)."""
    rng = np.random.default_rng(11)
    t = np.linspace(0, 20, 201)
    R, n = 200, 400
    X, V = th.ou_paths(rng, (R, n), t)  # σ_v = τ = 1: D = 1
    z = []
    for r in range(R):
        D_k, tau = tr.kubo_diffusion(t, V[r] * V[r][:, :1])
        D_m = tr.diffusion_msd(t, X[r] ** 2, tau_p=tau.value)
        assert D_k.ok and tau.ok
        z.append([(D_m.value - 1) / D_m.sem, (D_k.value - 1) / D_k.sem, (tau.value - 1) / tau.sem])
    z = np.array(z)
    coverage = np.mean(np.abs(z) < 1, axis=0)
    assert np.all((coverage > 0.58) & (coverage < 0.78)), coverage  # binomial sd 0.033 around 0.683
    assert np.all(np.abs(z.mean(0)) < 0.25), z.mean(0)  # sd of the mean z: 0.07
    assert np.all((z.std(0) > 0.85) & (z.std(0) < 1.15)), z.std(0)
    # one big ensemble: both estimators agree with the truth and with each other
    D_k, tau = tr.kubo_diffusion(t, (V * V[..., :1]).reshape(R * n, -1))
    D_m = tr.diffusion_msd(t, (X**2).reshape(R * n, -1), tau_p=tau.value)
    assert abs(D_m.value - 1) < 3 * D_m.sem and abs(D_k.value - 1) < 3 * D_k.sem
    assert D_m.ok and D_m.sem < 0.01 and D_k.sem < 0.015


def test_jackknife_of_a_mean_is_the_standard_error():
    x = np.random.default_rng(2).normal(size=(20, 3))
    est, se = tr.jackknife(lambda m: m, x, n_groups=20)
    np.testing.assert_allclose(est, x.mean(0), rtol=1e-14)
    np.testing.assert_allclose(se, x.std(0, ddof=1) / math.sqrt(20), rtol=1e-12)


def test_fit_window_rule_and_flatness():
    t = np.linspace(0, 10, 101)
    assert tr.fit_window(t, tau_p=1.0) == (50, 100)
    assert tr.fit_window(t, tau_p=1.0, t_stop=8.0) == (50, 80)
    assert tr.fit_window(t) == (50, 100)  # no τ_p: the second half
    with pytest.raises(ValueError, match="fit window"):
        tr.fit_window(t, tau_p=2.0, start=4.9)  # [9.8, 10]: 3 times
    rng = np.random.default_rng(3)
    lin = 2 * 0.8 * t + 0.01 * rng.normal(size=(50, t.size))
    fit = tr.diffusion_msd(t, lin, tau_p=1.0)
    assert fit.ok and fit.value == pytest.approx(0.8, abs=3 * fit.sem)
    ballistic = t**2 + 0.01 * rng.normal(size=(50, t.size))
    assert not tr.diffusion_msd(t, ballistic, tau_p=1.0).ok
    # the boundary rule: 5 sqrt(MSD) must stay inside the given distance
    assert tr.inside_until(t, np.tile(4 * t, (3, 1)), distance=5 * math.sqrt(4 * 6.0)) == pytest.approx(5.9)


def test_energy_exchange_rate_and_tau():
    """E(t) = E_eq + ΔE e^{-t/τ}: the integral τ_E is τ; the rate rule over a short window is τ up
    to O((window/τ)²); an energy running away from E_eq has no τ_E."""
    rng = np.random.default_rng(4)
    t = np.linspace(0, 40, 401)
    E = -1.0 + 0.5 * np.exp(-t / 4.0) + 1e-3 * rng.normal(size=(64, t.size))
    out = tr.energy_exchange(t, E, E_eq=-1.0, t_stop=0.4)
    assert out["rate"].value == pytest.approx(-0.5 / 4 * math.exp(-0.05), rel=0.01)
    assert out["tau_E"].value == pytest.approx(4.0, rel=0.01) and out["tau_E"].ok
    assert out["tau_E_int"].value == pytest.approx(4.0, abs=3 * out["tau_E_int"].sem + 0.02)
    away = tr.energy_exchange(t, -E, E_eq=-0.2, t_stop=0.4)  # energy falls, E_eq above it
    assert not away["tau_E"].ok and math.isnan(away["tau_E"].value)
    assert "rate" in tr.energy_exchange(t, E) and "tau_E" not in tr.energy_exchange(t, E)


# --------------------------------------------------------------------------------------------
# Units
# --------------------------------------------------------------------------------------------
def test_mobility_and_alpha_by_hand():
    # 1 Å²/fs = 1e-16 cm² / 1e-15 s = 0.1 cm²/s; k_B T/e at 300 K = 0.025852 V
    assert float(tr.mobility(1.0, 300.0)) == pytest.approx(0.1 / 0.0258520, rel=1e-5)  # 3.86817 cm²/Vs
    assert float(tr.mobility(2.0, 150.0)) == pytest.approx(4 * 3.868170, rel=1e-5)
    # band-bottom mass of t0 = 1 eV, a = 2.556 Å: ħ²/(2 t0 a²) = 0.0331574 eV fs²/Å² = 0.583178 m_e
    m = tr.band_mass(1.0, 2.556)
    assert m == pytest.approx(0.6582119569**2 / (2 * 2.556**2), rel=1e-14)
    assert m == pytest.approx(0.0331574, rel=1e-5)
    assert m / 0.0568563 == pytest.approx(0.583178, rel=1e-5)
    # α = D ħ/(2 t0 a²): D = ħ/m* gives exactly 1; the HSR chain has α = t0/(ħΓ)
    assert float(tr.alpha_chain(HBAR / m, 1.0, 2.556)) == pytest.approx(1.0, rel=1e-14)
    D = th.hsr_diffusion(1.0, 2.556, 0.5)
    assert float(tr.alpha_chain(D, 1.0, 2.556)) == pytest.approx(1.0 / (HBAR * 0.5), rel=1e-14)
    with pytest.raises(ValueError, match="T="):
        tr.mobility(1.0, 0.0)
    with pytest.raises(ValueError, match="mass="):
        tr.planckian_alpha(1.0, -1.0)


# --------------------------------------------------------------------------------------------
# HSR closed forms against the exact Lindblad evolution
# --------------------------------------------------------------------------------------------
def lindblad_moments(psi0, t0, a, gamma, x0, times):
    """Exact dρ/dt = -(i/ħ)[H0, ρ] - Γ(ρ - diag ρ) on a small open chain (the sparse Liouvillian's
    exponential applied to vec ρ, scipy's expm_multiply), and the moments hsr_moments returns."""
    N = psi0.size
    H = hamiltonian(np.full(N - 1, t0), np.zeros(N), "open")
    Hs, I = sparse.csr_matrix(H), sparse.identity(N, format="csr")
    Lv = (-1j / HBAR * (sparse.kron(Hs, I) - sparse.kron(I, Hs.T))
          - gamma * sparse.diags(1.0 - np.eye(N).ravel())).tocsc()
    X = np.diag(np.arange(N) * a - x0)
    V = dense_velocity(np.full(N - 1, t0), np.zeros(N), a, "open")
    rho0 = np.outer(psi0, psi0.conj()).ravel()
    out = {k: [] for k in ("x", "msd", "v", "v2", "D_run", "energy")}
    for t in times:
        rho = expm_multiply(Lv * t, rho0).reshape(N, N)
        for name, A in (("x", X), ("msd", X @ X), ("v", V), ("v2", V @ V), ("D_run", (X @ V + V @ X) / 2),
                        ("energy", H)):
            out[name].append(np.real(np.trace(rho @ A)))
    return {k: np.array(v) for k, v in out.items()}


@pytest.mark.parametrize("start", ["site", "packet"])
def test_hsr_moments_equal_lindblad(start):
    N, a, t0, gamma = 44, 1.5, 1.0, 1.2
    times = np.array([0.0, 0.3, 0.8, 1.5, 2.2])
    psi0 = np.zeros(N, complex)
    if start == "site":
        psi0[22] = 1.0
    else:
        psi0 = gaussian(N, a, 21.6 * a, 1.8 * a, math.pi / (3 * a))
    x0 = 22 * a
    ex = lindblad_moments(psi0, t0, a, gamma, x0, times)
    cf = th.hsr_moments(times, psi0, t0, a, gamma, x0=x0)
    for name, ref in ex.items():  # the chain's ends are 22 sites away: their effect is < 1e-10
        np.testing.assert_allclose(cf[name], ref, rtol=1e-8, atol=1e-9, err_msg=name)
    np.testing.assert_allclose(cf["spread"], ex["msd"] - ex["x"] ** 2, rtol=1e-8, atol=1e-9)
    if start == "site":
        np.testing.assert_allclose(th.hsr_msd(times, t0, a, gamma), cf["msd"], rtol=1e-12, atol=1e-14)


def test_hsr_closed_form_limits():
    t0, a, gamma = 0.8, 2.0, 0.7
    D = th.hsr_diffusion(t0, a, gamma)
    assert D == pytest.approx(2 * t0**2 * a**2 / (HBAR**2 * gamma), rel=1e-15)
    t = np.array([1e-3, 1e-2, 200.0])
    m = th.hsr_msd(t, t0, a, gamma)
    assert m[0] == pytest.approx(2 * (t0 * a / HBAR) ** 2 * t[0] ** 2, rel=1e-3)  # ballistic
    assert m[2] == pytest.approx(2 * D * t[2] - 2 * D / gamma, rel=1e-12)  # diffusive
    # Γ -> 0 is the free chain: the series branch joins the closed form continuously
    g = np.array([1e-4 * 0.999, 1e-4 * 1.001])
    vals = [float(th.hsr_msd(1.0, t0, a, gg)) for gg in g]
    assert vals[0] == pytest.approx(vals[1], rel=1e-7)
    assert float(th.hsr_msd(3.0, t0, a, 0.0)) == pytest.approx(2 * (t0 * a / HBAR) ** 2 * 9.0, rel=1e-14)


def test_free_spread_against_propagation():
    """The free Gaussian packet's spread, closed form, against the exact free evolution (and the
    Γ = 0 moments); its σ >> a limit is σ² + (v't/2σ)²."""
    N, a, t0, sigma, k0 = 200, 2.0, 1.0, 7.0, 0.45
    psi0 = gaussian(N, a, 199.0, sigma, k0)
    H = hamiltonian(np.full(N - 1, t0), np.zeros(N), "open")
    x = np.arange(N) * a
    times = np.array([0.0, 2.0, 5.0])
    ref = []
    for t in times:
        p = sla.expm(-1j * H * t / HBAR) @ psi0
        rho = np.abs(p) ** 2
        ref.append(rho @ x**2 - (rho @ x) ** 2)
    np.testing.assert_allclose(th.free_spread(times, t0, a, sigma, k0), ref, rtol=1e-10)
    np.testing.assert_allclose(th.hsr_moments(times, psi0, t0, a, 0.0)["spread"], ref, rtol=1e-10)
    vp = 2 * t0 * a**2 * math.cos(k0 * a) / HBAR
    wide = th.free_spread(10.0, t0, a, 60.0, k0)
    assert wide == pytest.approx(60.0**2 + (vp * 10.0 / 120.0) ** 2, rel=1e-5)


def test_thermal_band_energy():
    t0 = 0.9
    for T in (50.0, 3000.0, 3e5):
        b = 1 / (KB * T)
        num = integrate_band(lambda k: -2 * t0 * np.cos(k) * np.exp(2 * b * t0 * np.cos(k)))
        den = integrate_band(lambda k: np.exp(2 * b * t0 * np.cos(k)))
        assert float(th.band_energy_thermal(t0, T)) == pytest.approx(num / den, rel=1e-9)
    assert float(th.band_energy_thermal(t0, 1.0)) == pytest.approx(-2 * t0 + KB / 2, rel=1e-6)


def integrate_band(f):
    k = np.linspace(-math.pi, math.pi, 20001)[:-1]  # periodic: the rectangle rule is spectral
    return f(k).mean()


# --------------------------------------------------------------------------------------------
# HSR dephasing through wow.run (the 'noise' lattice) against the closed forms
# --------------------------------------------------------------------------------------------
N_HSR, A_HSR, T0_HSR, GAMMA, DT = 48, 1.0, 1.0, 2.0, 0.02
N_FRAMES, SPF = 50, 5  # 250 steps: t = 0..5 fs = 10/Γ
X0_HSR = (N_HSR // 2) * A_HSR


def hsr_config(sigma, k0=math.pi / 3, kind="binary", kubo=True, n_frames=N_FRAMES, duration=N_FRAMES * SPF * DT):
    """The perfect open chain (T = 0: the frozen lattice is u = 0) with HSR noise of rate Γ; a packet
    of width sigma (0.05 Å: one site) centred on site 24, the MSD origin."""
    return wow.Config(chain=wow.Chain(N=N_HSR, a=A_HSR), temperature=0.0, dynamics="noise",
                      noise=wow.Noise(rate=GAMMA, kind=kind),
                      electron=wow.Electron(t0=T0_HSR, alpha=0.0, sigma=sigma, k0=k0, x0=X0_HSR),
                      dt=DT, duration=duration, n_frames=n_frames, transport=True, kubo=kubo, check_inside=False)


@pytest.fixture(scope="module")
def hsr_ensemble():
    """The single-site start (4000 realisations, with the two-state velocity correlation) and a
    Gaussian packet launched at k0 = π/3a (800): one compiled program (k0 and σ enter through the
    initial state only; both in chunks of 800 samples, which do not change the numbers). At t = 5 fs
    the MSD is 21 sites², 24 sites from the ends."""
    out = {}
    for name, sigma, n, seed in (("site", 0.05, 4000, 0), ("packet", 3.0, 800, 1)):
        cfg = hsr_config(sigma)
        r = wow.run(cfg, n, seed=seed, chunk_size=800, progress=False)
        out[name] = (r.traces, np.asarray(ensemble.initial_packet(cfg)), r.times)
    return out


def test_hsr_msd_and_correlation_match_closed_form(hsr_ensemble):
    fr, psi0, times = hsr_ensemble["site"]
    assert abs(psi0[24]) ** 2 == pytest.approx(1.0, abs=1e-15)  # the 0.05 Å packet is one site
    ex = th.hsr_moments(times, psi0, T0_HSR, A_HSR, GAMMA, x0=X0_HSR)
    assert np.max(np.abs(fr["norm"] - 1)) < 1e-12
    at = np.searchsorted(times, [0.5, 1.0, 2.0, 3.0, 4.0, 5.0])  # splitting error < 5e-4 relative here
    for name, ref in (("msd", "msd"), ("D_run", "D_run"), ("corr", "corr"), ("v_mean", "v")):
        m, se = tr.series_mean_sem(fr[name])
        z = (m[at] - ex[ref][at]) / se[at]
        assert np.all(np.abs(z) < 4), (name, z)
    # MSD(t) = 2 ∫ D_run dt: exact per realisation in continuous time, but a sample's D_run follows
    # the white noise step by step, so only the ensemble mean is smooth enough for the frames'
    # trapezoid, whose own error is that of the same quadrature of the closed form
    quad = lambda msd, D_run: msd - 2 * cumulative_trapezoid(D_run, times, initial=0)
    m, se = tr.series_mean_sem(quad(fr["msd"], fr["D_run"]))
    assert np.all(np.abs(m[at] - quad(ex["msd"], ex["D_run"])[at]) < 4 * se[at])


def test_hsr_diffusion_constant_within_two_percent_and_kubo_equals_msd_slope(hsr_ensemble):
    """The estimators' check through the core: the MSD-slope D (window from 5 τ_p to the edge rule)
    and the Kubo D agree with each other and with D = 2 t0² a²/(ħ²Γ) (within 2 %)."""
    fr, psi0, times = hsr_ensemble["site"]
    D = th.hsr_diffusion(T0_HSR, A_HSR, GAMMA)
    D_k, tau = tr.kubo_diffusion(times, fr["corr"])
    assert abs(tau.value - 1 / GAMMA) < 3 * tau.sem and abs(D_k.value - D) < 3 * D_k.sem
    stop = tr.edge_until(times, fr["edge"])
    assert stop == times[-1]  # 24 sites from the ends, the edge density stays < 1e-6
    fit = tr.diffusion_msd(times, fr["msd"], tau_p=tau.value, t_stop=stop)
    assert fit.ok
    i0 = np.searchsorted(times, fit.t_start)
    exact_window = th.hsr_msd(times[i0:], T0_HSR, A_HSR, GAMMA) @ ols_weights(times[i0:]) / 2
    assert abs(fit.value - exact_window) < 3 * fit.sem  # the same window of the closed form
    assert abs(fit.value / D - 1) < 0.02  # and the long-time D (measured +0.2 % ± 0.7 %)
    assert fit.sem / D < 0.01
    assert abs(fit.value - D_k.value) < 3 * math.hypot(fit.sem, D_k.sem)  # MSD slope = Kubo


def test_hsr_packet_momentum_and_energy_relax_at_gamma(hsr_ensemble):
    """A packet launched at k0: <v> and <k> decay at Γ, E_e relaxes to the band centre (the noise
    is infinitely hot) at Γ: τ_p = τ_E = 1/Γ; its MSD and spread follow the closed form."""
    fr, psi0, times = hsr_ensemble["packet"]
    ex = th.hsr_moments(times, psi0, T0_HSR, A_HSR, GAMMA, x0=X0_HSR)
    at = np.searchsorted(times, [0.5, 1.0, 2.0, 5.0])
    for name, ref in (("msd", ex["msd"]), ("dx", ex["x"]), ("E_e", ex["energy"]), ("E_band", ex["energy"]),
                      ("v_mean", ex["v"])):
        m, se = tr.series_mean_sem(fr[name])
        assert np.all(np.abs(m[at] - ref[at]) < 4 * se[at] + 1e-12), name
    # the closed form's spread is that of the noise-averaged density, E<x²> - (E<x>)²: the mean
    # per-sample spread plus the variance of the packets' centroids
    var, var_se = tr.ensemble_spread(fr["dx"], fr["msd"])
    assert np.all(np.abs(var[at] - ex["spread"][at]) < 4 * var_se[at])
    own = tr.spread(fr["dx"], fr["msd"]).mean(0)
    assert np.all(own[at[1:]] < var[at[1:]])  # each packet is narrower than the ensemble
    tau_v = tr.relaxation_time(times, fr["v_mean"])
    k_uniform = math.pi / (A_HSR * N_HSR)  # mean of the DFT grid (-π/a, π/a]: where <k> relaxes to
    tau_k = tr.relaxation_time(times, fr["k_mean"], baseline=k_uniform)
    for tau in (tau_v, tau_k):
        assert tau.ok and abs(tau.value - 1 / GAMMA) < 3 * tau.sem + 0.005, tau
    e = tr.energy_exchange(times, fr["E_e"], E_eq=0.0, t_stop=0.2)
    assert e["tau_E_int"].ok and abs(e["tau_E_int"].value - 1 / GAMMA) < 3 * e["tau_E_int"].sem + 0.005
    # the rate rule over [0, 0.2] fs = [0, 0.4 τ]: exact up to ~(0.4)²/12 = 1.3 %
    assert e["tau_E"].ok and e["tau_E"].value == pytest.approx(1 / GAMMA, rel=0.02 + 3 * e["tau_E"].sem * GAMMA)
    # a thermal target below the band centre is never reached: no τ_E towards it
    cold = tr.energy_exchange(times, fr["E_e"], E_eq=float(th.band_energy_thermal(T0_HSR, 300.0)), t_stop=0.2)
    assert not cold["tau_E"].ok
    np.testing.assert_allclose(fr["E_lattice"], 0.0, atol=1e-30)  # T = 0: the perfect chain


@pytest.mark.slow
def test_gaussian_and_binary_noise_give_the_same_means():
    """Gaussian phases (the textbook HSR noise) give the closed-form MSD too: the binary phases
    of the default average to the same dephasing channel. Rate 0 is the frozen chain, exactly."""
    cfg = hsr_config(0.05, kind="gaussian", kubo=False, n_frames=2, duration=2.0)
    r = wow.run(cfg, 400, seed=7, progress=False)
    m, se = tr.series_mean_sem(r.traces["msd"])
    ref = th.hsr_msd(r.times, T0_HSR, A_HSR, GAMMA)
    assert np.all(np.abs(m[1:] - ref[1:]) < 4 * se[1:])
    quiet = wow.run(dataclasses.replace(cfg, noise=wow.Noise(rate=0.0, kind="gaussian")), 2, seed=7, progress=False)
    frozen = wow.run(dataclasses.replace(cfg, dynamics="frozen", noise=None), 2, seed=7, progress=False)
    np.testing.assert_allclose(quiet.traces["msd"], frozen.traces["msd"], rtol=1e-12, atol=1e-12)
    assert quiet.traces["msd"][0, -1] == pytest.approx(float(th.hsr_msd(2.0, T0_HSR, A_HSR, 0.0)), rel=1e-3)


# --------------------------------------------------------------------------------------------
# Frozen disorder: Lyapunov exponent, Green's function decay, propagated resolvent
# --------------------------------------------------------------------------------------------
def thermal_chain(rng, n_chains, L, t0, a, alpha, D, bond_var):
    """SSH hoppings and deformation site energies of classical open chains: the N-1 bonds of an
    open chain are independent N(0, k_BT/K) (wow.theory.bond_variance)."""
    b = rng.normal(0, math.sqrt(bond_var), (n_chains, L - 1))
    zero = np.zeros((n_chains, 1))
    return t0 - alpha * b, D * (np.concatenate([zero, b], 1) + np.concatenate([b, zero], 1)) / (2 * a)


@pytest.mark.parametrize("alpha,D", [(2.0, 0.0), (0.0, 4.0), (2.0, 4.0), (2.0, -4.0)])
def test_lyapunov_weak_disorder(alpha, D):
    """The transfer-matrix γ at weak disorder against the second-order formula; (α, D) of both
    signs check the interference of bond and site scattering, (α + D cos(ka)/2a)²."""
    t0, a, E, s2 = 1.0, 2.556, -1.0, 0.04**2
    tb, eps = thermal_chain(np.random.default_rng(9), 16, 20000, t0, a, alpha, D, s2)
    g, se = th.lyapunov_exponent(E, tb, eps)
    gw = th.lyapunov_weak(E, t0, a, alpha, D, s2)
    # the next order adds ~+2 to +5 % at this disorder (measured +10 % at 0.08 Å, shrinking as <b²>)
    assert abs(g - gw) < 3 * se + 0.05 * gw, (g, se, gw)


def test_localisation_length_from_the_exact_green_function():
    """<ln|G(n, s0; E)|> of the exact resolvent (banded solve) decays at the Lyapunov exponent of
    the transfer matrix, for a strongly disordered thermal chain (α = 2 eV/Å at 1500 K on the Cu
    chain, ξ ~ 7 sites)."""
    chain = wow.Chain(N=64)
    T, t0, a, alpha, D, E = 1500.0, 1.0, chain.a, 2.0, 1.5, -1.0
    s2 = float(th.bond_variance(chain, T, "classical")[0])
    assert s2 == pytest.approx(KB * T / chain.spring, rel=1e-12)
    rng = np.random.default_rng(10)
    g, g_se = th.lyapunov_exponent(E, *thermal_chain(rng, 16, 20000, t0, a, alpha, D, s2))
    n_sites, s0, n_chains = 300, 40, 200
    tb, eps = thermal_chain(rng, n_chains, n_sites, t0, a, alpha, D, s2)
    n = np.arange(n_sites) - s0
    sel = (n >= 15) & (n <= 200)
    w = ols_weights(n[sel].astype(float))
    slopes = []
    for c in range(n_chains):
        ab = np.zeros((3, n_sites), complex)
        ab[0, 1:], ab[1], ab[2, :-1] = tb[c], E + 1e-12j - eps[c], tb[c]  # z - H
        G = solve_banded((1, 1), ab, np.eye(n_sites)[s0])
        slopes.append(-np.log(np.abs(G[sel])) @ w)
    m, se = tr.mean_sem(slopes)
    assert abs(m - g) < 3 * math.hypot(se, g_se), (m, se, g, g_se)
    assert g > 0.1  # strongly localised: ξ = a/γ < 10 sites


def test_resolvent_from_wow_run_decays_at_the_complex_lyapunov_exponent():
    """The frozen-lattice limit through wow.run: thermal open chains (classical, 1500 K, α = 2 eV/Å,
    D = 1.5 eV), the electron started on one site, ψ recorded every Δ = 0.2 fs (save_amplitudes).
    The frames' Laplace sum R = -(i/ħ) Δ Σ_j' e^{izt_j/ħ} ψ(t_j) (trapezoid) is the resolvent column
    (z - H)^{-1}ψ0 up to a smooth function of H (the quadrature's weight (x/2)cot(x/2), x = (z - E)Δ/ħ,
    whose poles lie 2πħ/Δ = 21 eV away: a short-ranged correction), so its mean log decays at the
    transfer-matrix Lyapunov exponent γ(z), z = E + iη (both sides of the source)."""
    T, t0, alpha, D, E, eta = 1500.0, 1.0, 2.0, 1.5, -1.0, 0.15
    z = E + 1j * eta
    chain = wow.Chain(N=120)
    s0, a, delta = 60, chain.a, 0.2
    n_frames = int(round(12 * HBAR / eta / delta))  # e^{-ηT/ħ} = e^{-12}
    cfg = wow.Config(chain=chain, electron=wow.Electron(t0=t0, alpha=alpha, D=D, sigma=a / 20, x0=s0 * a),
                     temperature=T, dynamics="frozen", dt=0.025, duration=n_frames * delta, n_frames=n_frames,
                     save_amplitudes=True, save_density=True, check_inside=False)
    r = wow.run(cfg, 48, seed=3, progress=False)
    psi, times = r.traces["psi"], r.times  # (48, F + 1, N)
    w = np.full(times.size, delta)
    w[0] = w[-1] = delta / 2
    R = -1j / HBAR * np.einsum("j,sjn->sn", w * np.exp(1j * z * times / HBAR), psi)
    # sample 0 against the same sum of the exact evolution (expm at the frame spacing)
    u0 = r.traces["u"][0, 0]
    b = np.diff(u0)
    Hd = hamiltonian(t0 - alpha * b, D * (np.r_[0, b] + np.r_[b, 0]) / (2 * a), "open")
    U = sla.expm(-1j * Hd * delta / HBAR)
    p, ref = psi[0, 0], np.zeros(chain.N, complex)
    for j in range(times.size):
        ref += w[j] * np.exp(1j * z * times[j] / HBAR) * p
        p = U @ p
    assert np.max(np.abs(R[0] + 1j / HBAR * ref)) < 1e-3 * np.max(np.abs(R[0]))  # splitting O(dt²)
    g, g_se = th.lyapunov_exponent(z, *thermal_chain(np.random.default_rng(12), 16, 20000, t0, a, alpha, D,
                                                      KB * T / chain.spring))
    n = np.arange(chain.N) - s0
    # waves reflected at the ends reach the window's far side ~e^{-γ(z) 40} = 3e-5 weaker
    right, left = (n >= 8) & (n <= 40), (n <= -8) & (n >= -40)
    lnR = np.log(np.abs(R))
    slopes = (-lnR[:, right] @ ols_weights(n[right].astype(float))
              + lnR[:, left] @ ols_weights(n[left].astype(float))) / 2
    m, se = tr.mean_sem(slopes)
    assert abs(m - g) < 3 * math.hypot(se, g_se), (m, se, g, g_se)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call,name", [
    (lambda: tr.diffusion_msd(np.arange(5.0), np.ones((1, 5))), "msd_samples"),
    (lambda: tr.diffusion_msd(np.array([0.0, 1.0, 1.0, 2.0]), np.ones((3, 4))), "times"),
    (lambda: tr.kubo_diffusion(np.arange(5.0), np.ones((3, 4))), "corr_samples"),
    (lambda: tr.relaxation_time(np.arange(5.0), np.zeros((3, 5))), "baseline"),
    (lambda: th.hsr_moments(1.0, np.ones(4), 1.0, 1.0, -0.1), "gamma"),
    (lambda: th.hsr_msd(-1.0, 1.0, 1.0, 1.0), "t="),
    (lambda: th.lyapunov_exponent(-1 - 0.1j, np.ones(4), np.zeros(5)), "E="),
    (lambda: th.lyapunov_exponent(-1, np.ones(5), np.zeros(5)), "t_bonds"),
    (lambda: th.lyapunov_weak(2.5, 1.0, 1.0, 1.0, 0.0, 0.01), "E="),
    (lambda: tr.edge_until(np.arange(3.0), np.ones((2, 3))), "edge density"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()


@pytest.mark.parametrize("kw,words", [
    (dict(noise=wow.Noise(rate=-1.0)), ["noise.rate=-1.0", ">= 0"]),
    (dict(noise=wow.Noise(kind="pink")), ["noise.kind='pink'", "'binary'"]),
    (dict(noise=None), ["dynamics='noise' needs noise=wow.Noise"]),
    (dict(order=4), ["order=4", "dynamics='noise'"]),
    (dict(dynamics="wow"), ["noise=", "dynamics='wow'"]),
    (dict(transport=False), ["kubo=True", "transport=True"]),
    (dict(dynamics="ehrenfest", noise=None), ["kubo=True with dynamics='ehrenfest'"]),
    (dict(transport=1), ["transport=1", "True or False"]),
])
def test_bad_transport_config_names_the_parameter(kw, words):
    cfg = dataclasses.replace(hsr_config(0.05), **kw)
    with pytest.raises(wow.ConfigError) as e:
        wow.validate(cfg)
    for w in words:
        assert w in str(e.value), (w, str(e.value))


# --------------------------------------------------------------------------------------------
# The transport frames against the saved amplitudes and lattices
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("dynamics,kubo", [("wow", True), ("ehrenfest", False)])
def test_transport_frames_equal_the_saved_amplitudes(dynamics, kubo):
    """Config.transport's frames (accumulated in the loop, O(1) per frame and sample) are the
    transport_observables of the saved amplitudes at the saved lattice; E_lattice at the end is
    the lattice energy of the final state; under Ehrenfest E_e + E_lattice is conserved. With kubo
    the second state does not disturb ψ and its correlation starts at <v²>. (The frozen lattice:
    the resolvent test below reads its saved amplitudes, the HSR tests its frames at rate 0.)"""
    chain = wow.Chain(N=24)
    t0, alpha, D = 1.0, 2.0, 1.5
    cfg = wow.Config(chain=chain, electron=wow.Electron(t0=t0, alpha=alpha, D=D, sigma=4.0, k0=0.6, x0=11 * chain.a),
                     temperature=300.0, dynamics=dynamics, dt=0.05, duration=2.0, n_frames=4, transport=True,
                     kubo=kubo, save_amplitudes=True, save_density=True, check_inside=False)
    r = wow.run(cfg, 2, seed=1, progress=False, keep_final=True)
    f, a = r.traces, chain.a
    ek = -2 * t0 * np.cos(np.asarray(k_grid(chain.N, a)) * a)
    for s in range(2):
        for j in range(r.times.size):
            psi, b = f["psi"][s, j], np.diff(f["u"][s, j])
            ref = tr.transport_observables(jnp.asarray(psi), hoppings(b, t0, alpha), onsite(b, D, a, "open"), a,
                                           cfg.x0, "open")
            for name, key in (("dx", "x"), ("msd", "x2"), ("D_run", "D_run"), ("v_mean", "v"), ("E_e", "energy")):
                assert f[name][s, j] == pytest.approx(float(ref[key]), rel=1e-10, abs=1e-12), (name, s, j)
            if kubo and j == 0:
                vpsi = tr.apply_velocity(jnp.asarray(psi), hoppings(b, t0, alpha), a, "open")
                assert f["corr"][s, 0] == pytest.approx(float(jnp.vdot(vpsi, vpsi).real), rel=1e-10)
            assert f["E_band"][s, j] == pytest.approx(ek @ np.abs(np.fft.fft(psi, norm="ortho")) ** 2, rel=1e-10)
            assert f["edge"][s, j] == pytest.approx(max(abs(psi[0]) ** 2, abs(psi[-1]) ** 2), rel=1e-10, abs=1e-300)
        final = SiteState(u=jnp.asarray(r.final["u"][s]), v=jnp.asarray(r.final["v"][s]))
        assert f["E_lattice"][s, -1] == pytest.approx(float(occ.lattice_energy(chain, final)), rel=1e-10)
    E_tot = f["E_e"] + f["E_lattice"]
    drift = np.max(np.abs(E_tot - E_tot[:, :1]))
    if dynamics == "ehrenfest":
        assert drift < 1e-4  # O(dt²) (tests/test_ehrenfest.py measures the order)
    else:  # the lattice moves on its own (wow) or not at all: its energy is constant
        assert np.max(np.abs(f["E_lattice"] - f["E_lattice"][:, :1])) < 1e-9 * np.max(f["E_lattice"])


# --------------------------------------------------------------------------------------------
# Holstein local modes
# --------------------------------------------------------------------------------------------
def test_holstein_forced_oscillator_and_polaron_shift():
    from scipy.integrate import solve_ivp
    from wow.units import mass_ev

    g, M_amu, w, q0, p0, n = 0.3, 12.0, 0.05, 0.02, -0.4, 0.7
    M = mass_ev(M_amu)
    t = np.linspace(0, 300, 7)
    sol = solve_ivp(lambda _, y: [y[1] / M, -M * w**2 * y[0] - g * n], (0, 300), [q0, p0], t_eval=t,
                    rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(th.holstein_forced_oscillator(t, q0, p0, g, M_amu, w, n), sol.y[0], atol=1e-8)
    q = np.linspace(-1, 1, 200001) * 2 * g / (M * w**2)
    assert -np.min(g * q + 0.5 * M * w**2 * q**2) == pytest.approx(th.holstein_polaron_shift(g, M_amu, w), rel=1e-8)


G_H, M_H, W_H = 0.3, 12.0, 0.05  # eV/Å, amu, 1/fs


def test_single_site_holstein_ehrenfest_is_the_forced_oscillator_and_polaron_shift():
    """wow.run on local modes: a three-site chain whose bonds are cut (bond defects -t0), the
    electron on the middle site, one Holstein mode per site under Ehrenfest. Sample 0: the middle
    oscillator follows the forced-oscillator solution (wow.theory), the empty sites' oscillate
    freely; sample 1, started at the polaron minimum q* = -g/(Mω²) at rest, stays there with
    E_e + E_lattice = -E_p, the static polaron shift."""
    from wow.units import mass_ev

    lm = wow.LocalModes(omega=(W_H,), mass=(M_H,), g=(G_H,))
    chain = wow.Chain(N=3, a=1.0)
    cfg = wow.Config(chain=chain, electron=wow.Electron(t0=1.0, alpha=0.0, D=0.0, sigma=0.05, x0=1.0,
                                                        bond_defects=((0, -1.0), (1, -1.0))),
                     local=lm, temperature=0.0, dynamics="ehrenfest", dt=0.1, duration=200.0, n_frames=20,
                     transport=True, save_density=True, check_inside=False)
    M = mass_ev(M_H)
    qs = -G_H / (M * W_H**2)
    u = np.array([[[0.01, 0.02, -0.03]], [[0.0, qs, 0.0]]])  # (samples, modes, sites)
    v = np.array([[[0.0, -0.4 / M, 0.001]], [[0.0, 0.0, 0.0]]])
    r = wow.run(cfg, initial=wow.InitialState(u=u, v=v), progress=False)
    t, q = r.times, r.traces["u"][:, :, 0, :]  # (samples, frames, sites)
    assert np.max(np.abs(r.traces["density"][0, :, 1] - 1)) < 1e-12  # the electron stays on its site
    amp = np.max(np.abs(q[0, :, 1] - qs))
    for n, occupation in ((1, 1.0), (0, 0.0), (2, 0.0)):
        ref = th.holstein_forced_oscillator(t, u[0, 0, n], M * v[0, 0, n], G_H, M_H, W_H, occupation)
        assert np.max(np.abs(q[0, :, n] - ref)) < 1e-4 * max(amp, np.max(np.abs(ref)))  # Strang: O((ωdt)²)
    E_p = th.holstein_polaron_shift(G_H, M_H, W_H)
    assert lm.polaron_shifts()[0] == pytest.approx(E_p, rel=1e-12)
    # the Strang map's fixed point is q* to O((ωdt)²) (measured 4e-6 relative)
    small = (W_H * cfg.dt) ** 2
    np.testing.assert_allclose(q[1, :, 1], qs, rtol=small)
    np.testing.assert_allclose(r.traces["E_e"][1] + r.traces["E_lattice"][1], -E_p, rtol=small)
    np.testing.assert_allclose(r.traces["E_e"][1], -2 * E_p, rtol=small)


def test_multimode_holstein_peierls_chain_conserves_energy_to_second_order():
    """Two local modes per site (Holstein and Peierls couplings, classical at 300 K) on a ring under
    Ehrenfest: the electron's energy plus the modes' is conserved with an error of order dt²."""
    lm = wow.LocalModes.from_energies(hw=(0.05, 0.15), polaron_shift=(0.05, 0.1), mass=(10.0, 10.0), alpha=(0.3, 0.0))
    cfg = wow.Config(chain=wow.Chain(N=24, a=1.0, boundary="ring"),
                     electron=wow.Electron(t0=1.0, alpha=0.0, D=0.0, sigma=2.0, k0=1.0), local=lm,
                     temperature=300.0, dynamics="ehrenfest", dt=0.1, duration=10.0, n_frames=10, transport=True)
    errs = []
    for dt in (0.1, 0.05, 0.025):
        r = wow.run(dataclasses.replace(cfg, dt=dt), 2, seed=4, progress=False)
        E = r.traces["E_e"] + r.traces["E_lattice"]
        errs.append(np.max(np.abs(E - E[:, :1])))
    fitted = np.polyfit(np.log([0.1, 0.05, 0.025]), np.log(errs), 1)[0]
    assert 1.85 < fitted < 2.2, (errs, fitted)
    assert errs[-1] < 3e-5  # measured 1.3e-5 eV


def test_local_modes_thermal_widths_and_bad_input():
    """The local modes' thermal sample (classical k_BT/(Mω²), Wigner ħ/(2Mω) coth) and refusals."""
    from wow.dynamics import local
    from wow.units import mass_ev

    lm = wow.LocalModes(omega=(0.05, 0.2), mass=(12.0, 5.0), g=(0.3, 0.1), statistics=("classical", "quantum"))
    T = 300.0
    var_q, var_v = local.variances(lm, T, "classical")
    M = mass_ev(np.array([12.0, 5.0]))
    w = np.array([0.05, 0.2])
    np.testing.assert_allclose(var_q, [KB * T / (M[0] * w[0] ** 2),
                                       HBAR / (2 * M[1] * w[1]) / np.tanh(HBAR * w[1] / (2 * KB * T))], rtol=1e-12)
    np.testing.assert_allclose(var_v, var_q * w**2, rtol=1e-12)
    base = wow.Config(chain=wow.Chain(N=16, a=1.0), electron=wow.Electron(alpha=0.0, D=0.0, sigma=2.0), local=lm,
                      dynamics="ehrenfest", check_inside=False)
    for kw, words in ((dict(local=dataclasses.replace(lm, g=(0.3,))), ["local.g", "2 entries"]),
                      (dict(local=dataclasses.replace(lm, omega=(0.05, -1.0))), ["local.omega[1]=-1.0", "(0, inf)"]),
                      (dict(dynamics="noise", noise=wow.Noise()), ["dynamics='noise'", "local modes"]),
                      (dict(electron=wow.Electron(alpha=2.0, D=0.0, sigma=2.0)), ["electron.alpha=2.0", "alpha=0"])):
        with pytest.raises(wow.ConfigError) as e:
            wow.validate(dataclasses.replace(base, **kw))
        for w_ in words:
            assert w_ in str(e.value), (w_, str(e.value))


def test_diffusion_experiment_writes_its_numbers(tmp_path):
    """`wow run diffusion` on the Troisi-Orlandi model (one Config: local Peierls modes), tiny: the
    point's statistics hold τ_p, the Kubo D and the energy exchange, with the table and figure beside
    the file; a bad option is refused before any work."""
    from wow import cli, io

    out = tmp_path / "d.h5"
    argv = ["run", "diffusion", "--model", "to", "--N", "32", "--samples", "2", "--duration", "40", "--dt", "1",
            "--frames", "8", "--temperatures", "300", "--dynamics", "wow", "--out", str(out), "--quiet"]
    with pytest.warns(UserWarning):  # far too short for the MSD window rule: the run says so
        assert cli.main(argv) == 0
    pt = io.read_results(out).points[0]
    assert pt.config.local is not None and pt.config.kubo
    for name in ("tau_p", "D_kubo", "rate_E", "dE_lat"):
        assert np.all(np.isfinite(pt.stats[name])), name
    assert (tmp_path / "d.md").exists() and (tmp_path / "d.png").exists()
    assert cli.main(argv[:-3] + ["--temperatures=-5", "--out", str(tmp_path / "e.h5")]) == 2
    assert not (tmp_path / "e.h5").exists()
