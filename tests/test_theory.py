"""wow.theory, the analytic references, each against an independent derivation, its limits, and
the simulation: exact transfer-matrix and Born reflection against the propagator, recoil kinematics
(A6-A8) against the propagator with CM recoil, <u²> and <b²> against the thermal sampler, the
Debye-Waller factor against Wigner samples, the Huang-Rhys fraction against Fock samples, and the
paper's Table I to its printed digits."""

import math

import jax
import numpy as np
import pytest
from scipy import integrate
from scipy.special import eval_laguerre

import wow
from wow import lattice as L
from wow import theory as th
from wow.electron import k_grid
from wow.ensemble import initial_packet
from wow.units import HBAR, KB, mass_ev


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def packet_weights(cfg):
    """|ψ~(k)|² of wow's initial packet and the DFT momenta (FFT order)."""
    psik = np.fft.fft(np.asarray(initial_packet(cfg)), norm="ortho")
    return np.abs(psik) ** 2, k_grid(cfg.chain.N, cfg.chain.a)


def forward(k, a):
    return (k > 0) & (k < math.pi / a)


# --------------------------------------------------------------------------------------------
# Reflection R(k)
# --------------------------------------------------------------------------------------------
def test_reflection_closed_form_equals_transfer_matrix():
    k = np.linspace(0.01, math.pi - 0.01, 301) / 2.0  # a = 2 Å
    for t1 in (0.2, 0.6, 0.99, 1.3, 2.5, -0.7):
        R_tm = th.reflection_probability(k, 1.1, 2.0, t_bonds=[t1])
        R_cf = th.reflection_bond(k, 1.1, t1, 2.0)
        np.testing.assert_allclose(R_tm, R_cf, rtol=1e-10, atol=1e-14)
    assert np.all(th.reflection_probability(k, 1.1, 2.0) < 1e-24)  # no scatterer, no reflection


def test_reflection_conserves_flux_and_vanishes_with_the_defect():
    """R + T = 1 for a scatterer of several bonds and sites (T = |1/A|²); R -> 0 quadratically as
    the defect vanishes, with the weak-defect limit R ≈ (2δ/t0)²/(4 sin² ka) of one bond."""
    k = np.linspace(0.05, 3.0, 50)
    A, B = th._amplitudes(k, 1.0, 1.0, [0.7, 1.3, 0.2], [0.1, -0.4, 0.3, 0.5, 0.2])
    np.testing.assert_allclose(np.abs(B / A) ** 2 + np.abs(1 / A) ** 2, 1.0, atol=1e-12)
    R = [th.reflection_probability(k, 1.0, 1.0, [1 + d, 1 - d / 2], [d]) for d in (1e-2, 1e-3)]
    np.testing.assert_allclose(R[0] / R[1], 100.0, rtol=0.05)
    d = 1e-4
    np.testing.assert_allclose(th.reflection_bond(k, 1.0, 1 + d, 1.0), d**2 / np.sin(k) ** 2, rtol=1e-3)


def test_reflection_matches_propagator_for_two_modified_bonds():
    """P_b of a broad packet sent onto two modified bonds (perfect chain, T = 0, frozen) equals the
    exact R(k) averaged over the packet's |ψ~(k)|²."""
    t_pair = (0.7, 1.25)
    cfg = wow.Config(chain=wow.Chain(N=400, a=1.0),
                     electron=wow.Electron(t0=1.0, alpha=0.0, k0=math.pi / 3, sigma=10.0, x0=100.0,
                                           bond_defects=((199, t_pair[0] - 1.0), (200, t_pair[1] - 1.0))),
                     temperature=0.0, dynamics="frozen", dt=0.01, duration=65.0, n_frames=2,
                     check_inside=False)
    r = wow.run(cfg, 2)
    w, k = packet_weights(cfg)
    f = forward(k, 1.0)
    expected = np.sum(w[f] * th.reflection_probability(k[f], 1.0, 1.0, t_bonds=t_pair))
    assert np.sum(w[~f]) < 1e-12
    assert expected > 0.01
    assert r.per_sample["P_b"][0] == pytest.approx(expected, rel=2e-4)


# --------------------------------------------------------------------------------------------
# Recoil kinematics, Eqs. A6-A8
# --------------------------------------------------------------------------------------------
def test_recoil_energy_and_elastic_momentum():
    k, N, M = 1.2, 40, 2.0
    hk = HBAR * k
    Mt = N * wow.AMU * M
    for P in (-3 * hk, -hk, 0.0, 0.4 * hk):
        a6 = ((P + 2 * hk) ** 2 - P**2) / (2 * Mt)  # A6, the CM kinetic energy gained
        assert th.recoil_energy(k, P, N, M) == pytest.approx(a6, rel=1e-12, abs=1e-18)
    assert th.recoil_energy(k, th.elastic_cm_momentum(k), N, M) == 0.0  # A7
    assert th.recoil_energy(k, 0.0, 2 * N, M) == pytest.approx(th.recoil_energy(k, 0.0, N, M) / 2)


def test_backscatter_shift_is_exact_and_first_order_A8():
    """The root conserves energy and momentum to rounding, is zero at P = -ħk, and tends to -A8 with
    a relative correction that halves when N doubles (the second-order term)."""
    k, t0, a, M = np.array([0.4, 1.0, 2.2]), 1.0, 1.0, 0.0023
    for P in (-0.5, 0.0, 0.7):
        Q = P + HBAR * k
        shift = th.backscatter_energy_shift(k, P, 300, M, t0, a)
        # recover k' from the shift and check total energy: ε(k') + CM(k') = ε(k) + CM(k)
        kp = -np.arccos(np.cos(k * a) - shift / (2 * t0)) / a
        cm = lambda kk: (Q - HBAR * kk) ** 2 / (2 * 300 * wow.AMU * M)
        np.testing.assert_allclose(shift + cm(kp) - cm(k), 0.0, atol=1e-13)
    assert np.all(th.backscatter_energy_shift(k, -HBAR * k, 300, M, t0, a) == 0.0)
    dev = [np.abs(th.backscatter_energy_shift(k, 0.3, N, M, t0, a) / -th.recoil_energy(k, 0.3, N, M) - 1)
           for N in (300, 600)]
    assert np.all(dev[0] > 1e-4)
    np.testing.assert_allclose(dev[0] / dev[1], 2.0, rtol=0.02)


def _recoil_run(P, recoil, N=450):
    """Perfect chain (T = 0), one weakened bond, fixed CM momentum P, very light atoms: one sample,
    the runs (and compiled programs) of test_propagate.py::test_recoil_kinematics_A6_to_A8."""
    cfg = wow.Config(chain=wow.Chain(N=N, mass=0.0023, a=1.0),
                     electron=wow.Electron(t0=1.0, alpha=0.0, k0=math.pi / 3, sigma=20.0, x0=100.0,
                                           bond_defects=((200, -0.4),)),
                     temperature=0.0, dynamics="frozen", recoil=recoil, cm_momentum=P, dt=0.05,
                     duration=75.0, n_frames=3, check_inside=False)
    return cfg, wow.run(cfg, 1)


@pytest.mark.parametrize("P_over_hk", [-2.0, 1.0])
def test_backscatter_shift_matches_propagator_with_recoil(P_over_hk):
    """The backscattered part's band-energy shift caused by recoil (recoil on minus off) equals the
    exact shift averaged over the reflected weight w(k) R(k), better than the first-order -A8 does
    at P = ħk (where the two differ by 0.7%)."""
    P = P_over_hk * HBAR * math.pi / 3
    cfg, on = _recoil_run(P, True)
    _, off = _recoil_run(P, False)
    measured = on.per_sample["dE_b"][0] - off.per_sample["dE_b"][0]
    w, k = packet_weights(cfg)
    f = forward(k, 1.0)
    wr = w[f] * th.reflection_bond(k[f], 1.0, 0.6, 1.0)
    exact = np.sum(wr * th.backscatter_energy_shift(k[f], P, 450, 0.0023, 1.0, 1.0)) / wr.sum()
    first = -np.sum(wr * th.recoil_energy(k[f], P, 450, 0.0023)) / wr.sum()
    assert measured == pytest.approx(exact, rel=2e-3)
    if P_over_hk == 1.0:
        assert abs(measured / first - 1) > 2 * abs(measured / exact - 1)


# --------------------------------------------------------------------------------------------
# Born approximation
# --------------------------------------------------------------------------------------------
def test_packet_weights_are_wows_initial_packet():
    cfg = wow.Config(chain=wow.Chain(N=300, a=1.5), electron=wow.Electron(k0=0.7, sigma=12.0),
                     duration=4.8)
    w, k = packet_weights(cfg)
    k2, w2 = th.packet_weights(300, 1.5, cfg.x0, 12.0, 0.7)
    np.testing.assert_allclose(k2, k, atol=1e-14)
    np.testing.assert_allclose(w2, w, atol=1e-14)


def test_born_is_the_first_order_of_the_exact_reflection():
    """R_Born / R_exact - 1 shrinks in proportion to the distortion (bonds and sites together)."""
    k = np.linspace(0.3, 2.8, 40)
    shape_t, shape_e = np.array([0.1, -0.05, 0.08]), np.array([0.0, 0.03, -0.02, 0.05])
    err = []
    for s in (0.05, 0.025, 0.0125):
        exact = th.reflection_probability(k, 1.0, 1.0, 1.0 + s * shape_t, s * shape_e)
        born = th.born_reflection(k, 1.0, 1.0, s * shape_t, s * shape_e)
        err.append(np.max(np.abs(born / exact - 1)))
    assert err[0] > 0.05
    np.testing.assert_allclose(err[0] / err[1], 2.0, rtol=0.1)
    np.testing.assert_allclose(err[1] / err[2], 2.0, rtol=0.1)


def test_born_matches_propagator_to_first_order():
    """A packet on three weakly modified bonds (frozen, T = 0): the propagator's P_b agrees with the
    exact R averaged over the packet, and with the Born R to a relative error that halves when the
    distortion halves."""
    shape = np.array([0.1, 0.05, 0.0])
    err = []
    for s in (0.4, 0.2):
        cfg = wow.Config(chain=wow.Chain(N=400, a=1.0),
                         electron=wow.Electron(t0=1.0, alpha=0.0, k0=math.pi / 3, sigma=10.0, x0=100.0,
                                               bond_defects=tuple((199 + i, s * d) for i, d in enumerate(shape))),
                         temperature=0.0, dynamics="frozen", dt=0.01, duration=65.0, n_frames=1,
                         check_inside=False)
        P_b = wow.run(cfg, 2).per_sample["P_b"][0]
        avg = lambda f: th.packet_average(f, 400, 1.0, 100.0, 10.0, math.pi / 3)
        exact = avg(lambda k: th.reflection_probability(k, 1.0, 1.0, 1.0 + s * shape))
        born = avg(lambda k: th.born_reflection(k, 1.0, 1.0, s * shape))
        assert P_b == pytest.approx(exact, rel=2e-4)
        err.append(abs(P_b / born - 1))
    assert err[0] > 0.03  # the first-order error is resolved far above the propagator's own error
    assert err[0] / err[1] == pytest.approx(2.0, rel=0.1)


# --------------------------------------------------------------------------------------------
# Thermal displacements relative to the CM
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("boundary", ["open", "ring"])
def test_msd_mode_sum_equals_closed_forms(boundary):
    """Classical <u_n²> and <b_n²> from the normal modes equal the closed forms derived from
    independent bonds (open) and csc² sums (ring)."""
    chain = wow.Chain(N=50, boundary=boundary)
    T = 250.0
    np.testing.assert_allclose(th.msd_sites(chain, T, "classical"), th.msd_classical(chain, T), rtol=1e-11)
    kT_K = KB * T / chain.spring
    expected_b = kT_K if boundary == "open" else kT_K * (chain.N - 1) / chain.N
    np.testing.assert_allclose(th.bond_variance(chain, T, "classical"), expected_b, rtol=1e-11)
    assert th.msd_mean(chain, T, "classical") == pytest.approx(np.mean(th.msd_classical(chain, T)), rel=1e-12)


def test_msd_quantum_limits():
    """T -> 0: the zero point Σ e² ħ/(2Mω); high T: the classical value with the first quantum
    correction coth x ≈ 1/x + x/3, i.e. <Q²> = k_BT/(Mω²) + ħ²/(12 M k_BT)."""
    chain = wow.Chain(N=40)
    E2 = L.mode_matrix(chain) ** 2
    zp = E2 @ (HBAR / (2 * chain.mass_ev * L.mode_frequencies(chain)))
    np.testing.assert_allclose(th.msd_sites(chain, 0.0), zp, rtol=1e-14)
    np.testing.assert_allclose(th.msd_sites(chain, 0.1), zp, rtol=1e-12)
    T = 5000.0
    corr = E2 @ np.full(chain.N - 1, HBAR**2 / (12 * chain.mass_ev * KB * T))
    q = th.msd_sites(chain, T)
    c = th.msd_sites(chain, T, "classical")
    np.testing.assert_allclose(q - c, corr, rtol=2e-3)
    assert np.all(q > c)


@pytest.mark.parametrize("boundary, T, statistics", [("open", 40.0, "quantum"), ("ring", 300.0, "classical")])
def test_msd_and_bond_variance_match_sampler(boundary, T, statistics):
    """<u_n²> and <b_n²> against the moments of wow's thermal samples (sample_modes + to_sites)."""
    chain = wow.Chain(N=12, boundary=boundary)
    n = 8000
    keys = jax.random.split(jax.random.PRNGKey(3), n)
    u = jax.vmap(lambda k: L.to_sites(chain, L.sample_modes(k, chain, T, statistics)).u)(keys)
    u = np.asarray(u)
    b = np.roll(u, -1, axis=1) - u if boundary == "ring" else u[:, 1:] - u[:, :-1]
    tol = 5 * math.sqrt(2.0 / n)  # relative standard error of a Gaussian variance, 5σ
    np.testing.assert_allclose(np.mean(u**2, 0), th.msd_sites(chain, T, statistics), rtol=tol)
    np.testing.assert_allclose(np.mean(b**2, 0), th.bond_variance(chain, T, statistics), rtol=tol)
    # the site-averaged moment to its (smaller) error
    assert np.mean(u**2) == pytest.approx(th.msd_mean(chain, T, statistics), rel=2 * tol / math.sqrt(chain.N) + 0.01)


# --------------------------------------------------------------------------------------------
# Debye model, Debye-Waller, Huang-Rhys
# --------------------------------------------------------------------------------------------
def test_debye_msd_quadrature_and_limits():
    """3D Debye <u²> against a direct quadrature over the Debye spectrum g(ω) = 3ω²/ω_D³ (per
    Cartesian component, times 3 components) and its T = 0 and high-T limits."""
    theta, Mamu = 343.0, 63.546
    M = mass_ev(Mamu)
    wD = KB * theta / HBAR
    for T in (30.0, 300.0, 1000.0):
        f = lambda w: 3 * w**2 / wD**3 * HBAR / (2 * M * w) / np.tanh(HBAR * w / (2 * KB * T))
        direct = 3 * integrate.quad(f, 0, wD, epsrel=1e-12)[0]
        assert th.debye_msd(T, theta, Mamu) == pytest.approx(direct, rel=1e-9)
    assert th.debye_msd(0.0, theta, Mamu) == pytest.approx(9 * HBAR**2 / (4 * M * KB * theta), rel=1e-14)
    T = 20 * theta
    classical = 9 * HBAR**2 * T / (M * KB * theta**2)
    assert th.debye_msd(T, theta, Mamu) / classical - 1 == pytest.approx(theta**2 / (36 * T**2), rel=1e-3)
    np.testing.assert_allclose(th.debye_msd([0.0, 300.0], theta, Mamu),
                               [th.debye_msd(0.0, theta, Mamu), th.debye_msd(300.0, theta, Mamu)])


def test_table_I_to_the_printed_digits():
    """Paper Table I (Cu, 300 K, <u²> = 1.9e-2 Å², 2W = q²<u²>/3): 2W = 5.7e-4, 1.2e-2, 4.6e-2 and
    f_el = 0.9994, 0.988, 0.955. The Debye model (Θ_D = 343 K) gives a <u²> within 5% of the
    paper's, which a per-component <u_x²> (a third of it) would not."""
    printed = [(0.3, "5.7e-04", 0.9994, 4), (1.36, "1.2e-02", 0.988, 3), (2.7, "4.6e-02", 0.955, 3)]
    for q, w2, f, digits in printed:
        two_w = th.debye_waller_2w(q, 1.9e-2, dim=3)
        assert f"{two_w:.1e}" == w2
        assert round(math.exp(-two_w), digits) == f
    u2 = th.debye_msd(300.0, 343.0, 63.546)
    assert u2 == pytest.approx(1.9e-2, rel=0.05)
    assert th.debye_waller_2w(2.0, 0.1, dim=1) == pytest.approx(0.4)


def test_debye_waller_matches_wigner_samples():
    """|<e^{iqu_n}>_s|² over wow's quantum (Wigner) samples equals exp(-2W) = exp(-q²<u_n²>)."""
    chain = wow.Chain(N=16)
    T, n = 300.0, 16000
    keys = jax.random.split(jax.random.PRNGKey(7), n)
    u = np.asarray(jax.vmap(lambda k: L.to_sites(chain, L.sample_modes(k, chain, T, "quantum")).u)(keys))
    msd = th.msd_sites(chain, T)
    q = 1.0 / math.sqrt(np.max(msd))  # 2W ~ 1 at the ends
    m = np.mean(np.exp(1j * q * u), axis=0)
    sem = np.std(np.exp(1j * q * u), axis=0) / math.sqrt(n)
    expected = np.exp(-th.debye_waller_2w(q, msd, dim=1))
    assert np.all(np.abs(np.abs(m) ** 2 - expected) < 5 * 2 * np.abs(m) * sem + 1e-4)
    assert np.min(expected) < 0.5


@pytest.mark.parametrize("boundary, basis", [("open", "standing"), ("ring", "standing"), ("ring", "running")])
def test_huang_rhys_matches_fock_samples(boundary, basis):
    """Σ_n p_n Π_j |<n_j|e^{iqu}|n_j>|², each factor e^{-λ} L_n(λ)², averaged over wow's Fock
    occupation sampler, equals the Bessel closed form."""
    chain = wow.Chain(N=6, boundary=boundary, mass=1.0, spring=0.05)
    T, q, site, n = 300.0, 2.0, 2, 40000
    occ = np.asarray(jax.vmap(lambda k: L.sample_fock(k, chain, T))(jax.random.split(jax.random.PRNGKey(5), n)))
    w = L.mode_frequencies(chain)
    e2 = np.full(chain.N - 1, 1 / chain.N) if basis == "running" else L.mode_matrix(chain)[site] ** 2
    lam = q**2 * e2 * HBAR / (2 * chain.mass_ev * w)
    per_sample = np.prod(np.exp(-lam) * eval_laguerre(occ, lam) ** 2, axis=1)
    f = th.huang_rhys_fraction(chain, q, T, site=site, basis=basis)
    assert 0.05 < f < 0.9
    assert np.mean(occ) > 0.3  # thermally occupied
    assert np.mean(per_sample) == pytest.approx(f, abs=5 * np.std(per_sample) / math.sqrt(n))


def test_huang_rhys_limits():
    """T = 0: f_HR = exp(-q²<u_n²>) exactly (zero point); T > 0: f_HR > exp(-2W) by the factor
    Π I_0 ≈ exp(Σ λ² n̄(n̄+1)); low T: the two merge."""
    chain = wow.Chain(N=32)
    q, site = np.array([0.5, 2.0, 4.0]), 5
    for T in (0.0, 0.5):
        two_w = th.debye_waller_2w(q, th.msd_sites(chain, T)[site], dim=1)
        np.testing.assert_allclose(th.huang_rhys_fraction(chain, q, T, site), np.exp(-two_w), rtol=1e-12)
    T = 300.0
    two_w = th.debye_waller_2w(q, th.msd_sites(chain, T)[site], dim=1)
    f = th.huang_rhys_fraction(chain, q, T, site)
    lam = q[:, None] ** 2 * L.mode_matrix(chain)[site] ** 2 * HBAR / (2 * chain.mass_ev * L.mode_frequencies(chain))
    nb = th.occupations(chain, T)
    assert np.all(f > np.exp(-two_w))
    np.testing.assert_allclose(np.log(f) + two_w, np.sum(lam**2 * nb * (nb + 1), axis=1), rtol=0.05)


def test_huang_rhys_debye_crystal():
    """3D: f_HR = exp(-2W) at T = 0; above it at T > 0 by a Bessel factor whose log is
    ≈ Σ λ² n̄(n̄+1) and falls as n_atoms^{-2/3} (8x the atoms: a quarter)."""
    q, theta, Mamu = np.array([1.36, 2.7, 6.0]), 343.0, 63.546
    e0 = np.exp(-th.debye_waller_2w(q, th.debye_msd(0.0, theta, Mamu)))
    np.testing.assert_allclose(th.huang_rhys_fraction_debye(q, 0.0, theta, Mamu, 50), e0, rtol=1e-14)
    e = np.exp(-th.debye_waller_2w(q, th.debye_msd(300.0, theta, Mamu)))
    logC = [np.log(th.huang_rhys_fraction_debye(q, 300.0, theta, Mamu, n) / e) for n in (100, 800)]
    assert np.all(logC[0] > 0)
    np.testing.assert_allclose(logC[0] / logC[1], 4.0, rtol=0.1)
    # leading order of log I_0(z) = z²/4: Σ λ² n̄(n̄+1)
    n = 100
    w = KB * theta / HBAR * ((np.arange(1, 3 * n + 1) - 0.5) / (3 * n)) ** (1 / 3)
    nb = 1 / np.expm1(HBAR * w / (KB * 300.0))
    lam = q[:, None] ** 2 / 3 * HBAR / (2 * mass_ev(Mamu) * w * n)
    np.testing.assert_allclose(logC[0], np.sum(lam**2 * nb * (nb + 1), axis=1), rtol=0.01)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: th.reflection_probability(0.0, 1.0, 1.0, [0.5]), "k"),
    (lambda: th.reflection_probability(np.linspace(0.1, math.pi, 50), 1.0, 1.0, [0.5]), "k"),
    (lambda: th.reflection_probability(1.0, -1.0, 1.0, [0.5]), "t0"),
    (lambda: th.reflection_probability(1.0, 1.0, 0.0, [0.5]), "a"),
    (lambda: th.reflection_probability(1.0, 1.0, 1.0, [0.5, 0.0]), "t_bonds"),
    (lambda: th.reflection_probability(1.0, 1.0, 1.0, None, [np.nan]), "eps_sites"),
    (lambda: th.reflection_bond(1.0, 1.0, 0.0, 1.0), "t1"),
    (lambda: th.reflection_bond("fast", 1.0, 0.5, 1.0), "k"),
    (lambda: th.recoil_energy(1.0, 0.0, 0, 1.0), "N"),
    (lambda: th.recoil_energy(1.0, 0.0, 10, -1.0), "M_amu"),
    (lambda: th.backscatter_energy_shift(1.0, 0.0, 1, 1e-9, 1.0, 1.0), "recoil energy"),
    (lambda: th.born_reflection(4.0, 1.0, 1.0, [0.1]), "k"),
    (lambda: th.packet_average(np.ones_like, 100, 1.0, 50.0, 1.0, 0.1), "outside"),
    (lambda: th.msd_sites(wow.Chain(N=10), -1.0), "T"),
    (lambda: th.msd_sites(wow.Chain(N=10), 1.0, "wigner"), "statistics"),
    (lambda: th.bond_variance(wow.Chain(N=10, boundary="loop"), 1.0), "chain.boundary"),
    (lambda: th.msd_mean("chain", 1.0), "chain"),
    (lambda: th.debye_msd(300.0, 0.0, 63.5), "theta_D"),
    (lambda: th.debye_waller_2w(1.0, -0.1), "msd"),
    (lambda: th.debye_waller_2w(1.0, 0.1, dim=2), "dim"),
    (lambda: th.huang_rhys_fraction(wow.Chain(N=10), 1.0, 300.0, site=10), "site"),
    (lambda: th.huang_rhys_fraction(wow.Chain(N=10), 1.0, 300.0, basis="running"), "basis"),
    (lambda: th.huang_rhys_fraction_debye(1.0, 300.0, 343.0, 63.5, 0), "n_atoms"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
