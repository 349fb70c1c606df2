"""wow.theory's references for the density-density model, each against an independent derivation:
ṽ(q) by quadrature; the central equation's convergence, free-electron limit, weak-potential gap and
Hellmann-Feynman velocities (finite differences); the harmonic structure factor and e^{-2W} against
thermal samples; the first-order Born amplitude against expm of a small grid Hamiltonian and its
thermal average against the structure factor formula; the Laguerre matrix elements against expm of
a truncated oscillator; the lattice-summed occupation-diagonal fraction (paper Eq. 30) against
brute-force Fock sums in the standing and the running basis."""

import math

import numpy as np
import pytest
import scipy.linalg as sla
from scipy import integrate
from scipy.special import eval_laguerre

from wow import lattice as lat
from wow import theory as th
from wow.lattice import Chain
from wow.units import HBAR, M_E

A = 2.556


def thermal_positions(chain, T, statistics, n, seed):
    """(n, N) atom positions ξ_j + u_j of thermal samples (Gaussian mode amplitudes)."""
    z = np.random.default_rng(seed).normal(size=(n, chain.N - 1))
    u = (z * np.sqrt(th.mode_variance(chain, T, statistics))) @ lat.mode_matrix(chain).T
    return np.arange(chain.N) * chain.a + u


# --------------------------------------------------------------------------------------------
# Pseudopotential and bands
# --------------------------------------------------------------------------------------------
def test_pseudopotential_transform_by_quadrature():
    for q in (0.0, 0.7, 2.5, 6.0):
        num = integrate.quad(lambda x: 1.3 * np.exp(-x * x / (2 * 0.45**2)) * np.cos(q * x), -10, 10,
                             epsabs=1e-14, epsrel=1e-13, limit=200)[0]
        assert abs(th.pseudopotential_ft(q, 1.3, 0.45) - num) < 1e-12


def test_central_equation_converges_and_has_the_free_limit():
    k = np.linspace(-math.pi / A, math.pi / A, 9)
    E12, _, _ = th.central_equation(k, 2.0, 0.5, A, n_G=12)
    E30, _, _ = th.central_equation(k, 2.0, 0.5, A, n_G=30)
    np.testing.assert_allclose(E12[:, :5], E30[:, :5], atol=1e-11, rtol=0)
    E0, _, kap = th.central_equation(k, 0.0, 0.5, A, m_star=0.7, n_G=5)
    np.testing.assert_allclose(E0, np.sort((HBAR * kap) ** 2 / (2 * 0.7 * M_E), axis=-1), rtol=1e-14)


def test_hellmann_feynman_velocity_is_the_band_slope():
    k = np.array([0.2, 0.6, 1.0]) / A
    dk = 1e-5
    Ep, _, _ = th.central_equation(k + dk, 2.0, 0.5, A)
    Em, _, _ = th.central_equation(k - dk, 2.0, 0.5, A)
    v = th.central_velocity(k, 2.0, 0.5, A)
    np.testing.assert_allclose(v[:, :4], ((Ep - Em) / (2 * dk * HBAR))[:, :4], rtol=1e-7, atol=1e-8)


def test_weak_potential_gap_is_the_first_order_gap():
    """The exact zone-edge gap (order 1) and the k = 0 gap between bands 1 and 2 (order 2) tend to
    2|ṽ(G)|/a with a relative error linear in V0."""
    for order, k, bands in ((1, math.pi / A, (0, 1)), (2, 0.0, (1, 2))):
        rel = []
        for V0 in (0.02, 0.01):
            E, _, _ = th.central_equation(np.array([k]), V0, 0.5, A)
            rel.append((E[0, bands[1]] - E[0, bands[0]]) / th.weak_potential_gap(V0, 0.5, A, order) - 1)
        assert abs(rel[1]) < 1e-3 and abs(rel[0] / rel[1] - 2) < 0.02


# --------------------------------------------------------------------------------------------
# Structure factor and Debye-Waller
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("boundary, statistics", [("ring", "classical"), ("ring", "quantum"), ("open", "quantum")])
def test_structure_factor_matches_thermal_samples(boundary, statistics):
    """<|ρ_q|²> over 4000 Gaussian samples = the closed form Σ_jl e^{-iq(ξ_j-ξ_l)} e^{-q²<(u_j-u_l)²>/2}
    (5 standard errors), at q = G (coherent, ~N² e^{-2W}) and off G (~N)."""
    chain = Chain(N=16, a=A, boundary=boundary, mass=10.0)
    T = 300.0
    X = thermal_positions(chain, T, statistics, 4000, seed=3)
    for q in (2 * math.pi / A, 2 * math.pi * 5 / (16 * A), 3.1):
        rho2 = np.abs(np.exp(-1j * q * X).sum(-1)) ** 2
        S = th.structure_factor(chain, q, T, statistics)
        assert abs(rho2.mean() - S) < 5 * rho2.std() / math.sqrt(rho2.size), (q, rho2.mean(), S)


def test_structure_factor_limits():
    chain = Chain(N=12, a=A, boundary="ring")
    G = 2 * math.pi / A
    # rigid (classical T = 0): S = |Σ_j e^{-iqξ_j}|², N² at G, 0 on the other ring momenta
    assert abs(th.structure_factor(chain, G, 0.0, "classical") - 144) < 1e-9
    assert abs(th.structure_factor(chain, 2 * math.pi * 5 / (12 * A), 0.0, "classical")) < 1e-9
    # large q: only the j = l terms survive
    assert abs(th.structure_factor(chain, 80.0, 300.0, "quantum") - 12) < 1e-9
    # at G on the ring: S = e^{-2W} Σ_jl e^{G²<u_j u_l>} >= N² e^{-2W}
    C = th.displacement_covariance(chain, 300.0, "quantum")
    dw = th.debye_waller_factor(chain, G, 300.0, "quantum")
    S = th.structure_factor(chain, G, 300.0, "quantum")
    assert abs(S - dw * np.exp(G**2 * C).sum()) < 1e-9 * S and S >= 144 * dw


def test_debye_waller_factor_uses_the_ring_msd():
    chain = Chain(N=32, a=A, boundary="ring")
    q = 2 * math.pi / A
    msd = th.msd_classical(chain, 300.0)[0]
    assert abs(th.debye_waller_factor(chain, q, 300.0, "classical") - math.exp(-q * q * msd)) < 1e-14
    X = thermal_positions(chain, 300.0, "quantum", 20000, seed=5) - np.arange(32) * A
    assert abs(np.mean(np.cos(q * X[:, 7])) - math.sqrt(th.debye_waller_factor(chain, q, 300.0))) < 0.01


# --------------------------------------------------------------------------------------------
# Born amplitude
# --------------------------------------------------------------------------------------------
def grid_setup(N=4, g=16, w=0.5):
    n, h = N * g, A / g
    s = np.arange(n) * h
    kap = 2 * np.pi * np.fft.fftfreq(n, h)
    return n, h, s, kap, N * A


def test_born_amplitude_is_the_first_order_of_exact_propagation():
    """Dense H = F†diag(E)F + V(s) (V the periodised Gaussians of a frozen lattice, recoil on): the
    exact e^{-iHt/ħ}ψ0 minus the free evolution equals born_amplitude to a relative error linear in V0."""
    n, h, s, kap, L = grid_setup()
    X = np.arange(4) * A + np.array([0.2, -0.3, 0.15, -0.05])
    Q, inv = 0.3, 1 / (2 * 50 * M_E)
    E = (HBAR * kap) ** 2 / (2 * M_E) + (Q - HBAR * kap) ** 2 * inv
    F = np.fft.fft(np.eye(n), axis=0, norm="ortho")
    psi0 = np.exp(-((s - 5.0) ** 2) / (4 * 0.8**2) + 1j * 1.5 * s)
    psi0 /= np.linalg.norm(psi0)
    pk0 = F @ psi0
    t = 1.5
    rel = []
    for V0 in (0.02, 0.01):
        V = sum(V0 * np.exp(-((s[:, None] - X[None, :] - m * L) ** 2) / (2 * 0.5**2)).sum(-1) for m in (-2, -1, 0, 1, 2))
        H = F.conj().T @ (E[:, None] * F) + np.diag(V)
        pk = F @ (sla.expm(-1j * H * t / HBAR) @ psi0)
        first = pk - np.exp(-1j * E * t / HBAR) * pk0
        born = th.born_amplitude(kap, pk0, X, V0, 0.5, L, t, Q=Q, inv_2NM=inv, tol=0.0)
        rel.append(np.linalg.norm(first - born) / np.linalg.norm(born))
    assert rel[1] < 0.02 and abs(rel[0] / rel[1] - 2) < 0.1, rel


def test_thermal_born_equals_the_average_over_samples():
    """born_backscatter_thermal (structure factor) = the mean of born_backscatter over 2000 thermal
    samples (4 standard errors): the formula's cross terms vanish on the ring."""
    chain = Chain(N=24, a=A, boundary="ring", mass=10.0)
    n, h, s, kap, L = grid_setup(N=24, g=8, w=0.8)
    psi0 = np.exp(-((s - 30.0) ** 2) / (4 * 3.0**2) + 1j * 1.0 * s)
    pk0 = np.fft.fft(psi0 / np.linalg.norm(psi0), norm="ortho")
    pk0 = np.where(np.abs(pk0) ** 2 > 1e-10, pk0, 0)  # support narrower than 2π/a
    X = thermal_positions(chain, 300.0, "quantum", 2000, seed=9)
    P = np.array([th.born_backscatter(kap, pk0, x, 0.05, 0.8, L, 2.0) for x in X])
    ref = th.born_backscatter_thermal(kap, pk0, chain, 300.0, 0.05, 0.8, 2.0, "quantum")
    assert abs(P.mean() - ref) < 4 * P.std() / math.sqrt(P.size), (P.mean(), ref)


# --------------------------------------------------------------------------------------------
# Laguerre elements and the occupation-diagonal fractions
# --------------------------------------------------------------------------------------------
def x_matrix(n_max):
    off = np.sqrt(np.arange(1, n_max + 1))
    return np.diag(off, 1) + np.diag(off, -1)


def test_laguerre_element_against_expm_of_a_truncated_oscillator():
    U_all = {kappa: sla.expm(1j * kappa * x_matrix(90)) for kappa in (0.3, 1.1)}
    for kappa, U in U_all.items():
        nf, ni = np.meshgrid(np.arange(8), np.arange(8), indexing="ij")
        np.testing.assert_allclose(th.laguerre_element(nf, ni, kappa), np.abs(U[:8, :8]) ** 2, atol=1e-13)
        assert abs(np.sum(th.laguerre_element(np.arange(60), 3, kappa)) - 1) < 1e-12  # unitarity
    assert th.laguerre_element(2, 2, 0.0) == 1.0 and th.laguerre_element(3, 1, 0.0) == 0.0


def diag_elements(kappas, n_max=40):
    """<n|e^{iκX}|n> for n = 0..n_max/2 from expm of the truncated oscillator (truncation 2 n_max)."""
    X = x_matrix(2 * n_max)
    return np.array([np.real(np.diag(sla.expm(1j * k * X)))[: n_max + 1] for k in kappas])


def bose(x, n):
    return (1 - np.exp(-x)) * np.exp(-x * np.arange(n))


@pytest.mark.parametrize("q_index", [4, 1])  # q = G (4 on a 4-atom ring), and q ≠ G
def test_lattice_summed_fraction_standing_basis_by_brute_force(q_index):
    """Eq. 30 numerator Σ_n p_n |Σ_j e^{-iqξ_j} Π_m <n_m|e^{-iq e_jm ℓ_m X_m}|n_m>|², with the diagonal
    elements from expm and the thermal sum done state by state (n_m <= 24), over S(q): equals
    occupation_diagonal_fraction(..., 'standing') (Hille-Hardy)."""
    chain = Chain(N=4, a=A, boundary="ring", mass=1.0, spring=1.0)
    T = 400.0
    q = 2 * math.pi * q_index / (4 * A)
    w = lat.mode_frequencies(chain)
    ell = np.sqrt(HBAR / (2 * chain.mass_ev * w))
    E = lat.mode_matrix(chain)
    nmax = 24
    d = np.stack([diag_elements(q * E[j] * ell, nmax) for j in range(4)])  # (site, mode, n)
    p = [bose(HBAR * wm / (8.617333262e-5 * T), nmax + 1) for wm in w]
    xi = np.arange(4) * A
    num = 0.0
    for n1 in range(nmax + 1):
        for n2 in range(nmax + 1):
            amp = ((np.exp(-1j * q * xi) * d[:, 0, n1] * d[:, 1, n2])[:, None] * d[:, 2, :]).sum(0)  # over sites
            num += p[0][n1] * p[1][n2] * np.sum(p[2] * np.abs(amp) ** 2)
    f = num / th.structure_factor(chain, q, T, "quantum")
    assert abs(th.occupation_diagonal_fraction(chain, q, T, "standing") - f) < 1e-9
    assert 0 < f <= 1


def running_pair_diagonals(alpha_c, alpha_s, n_max):
    """<n+, n-|e^{-i(α_c X_c + α_s X_s)}|n+, n-> for a cos/sin pair, the running states built as
    (a_+†)^{n+}(a_-†)^{n-}/√(n+! n-!)|0>, a_±† = (a_c† ∓ i a_s†)/√2, in a product Fock space truncated
    at 2 n_max per mode (exact for n+ + n- <= n_max)."""
    D = 2 * n_max + 1
    a = np.diag(np.sqrt(np.arange(1, D)), 1)
    I = np.eye(D)
    ac, as_ = np.kron(a, I), np.kron(I, a)
    ap_dag, am_dag = (ac.T - 1j * as_.T) / np.sqrt(2), (ac.T + 1j * as_.T) / np.sqrt(2)
    X = ac + ac.T, as_ + as_.T
    U = sla.expm(-1j * (alpha_c * X[0] + alpha_s * X[1]))
    vac = np.zeros(D * D)
    vac[0] = 1
    out = np.zeros((n_max + 1, n_max + 1))
    for nmi in range(n_max + 1):
        v = vac
        for _ in range(nmi):
            v = am_dag @ v
        for npl in range(n_max + 1 - nmi):
            w = v / math.sqrt(math.factorial(npl) * math.factorial(nmi))
            out[npl, nmi] = np.real(np.vdot(w, U @ w))
            v = ap_dag @ v
    return out


def test_running_basis_diagonals_are_site_independent_so_the_lattice_sum_vanishes_off_G():
    """In the running basis <n|e^{-iqu_j}|n> is the same for every atom j (brute force for the cos/sin
    pair of a 4-atom ring): the lattice-summed diagonal fraction is 0 for q ≠ G; at q = G it equals
    the brute-force thermal sum, N² Π_m(...)/S(G)."""
    chain = Chain(N=4, a=A, boundary="ring", mass=1.0, spring=1.0)
    w = lat.mode_frequencies(chain)
    ell = np.sqrt(HBAR / (2 * chain.mass_ev * w))
    E = lat.mode_matrix(chain)  # modes 1 (cos), 2 (zone boundary), 3 (sin)
    nmax = 6
    for q in (2 * math.pi / (4 * A), 2 * math.pi / A):
        diags = [running_pair_diagonals(q * E[j, 0] * ell[0], q * E[j, 2] * ell[2], nmax) for j in range(4)]
        for dj in diags[1:]:
            np.testing.assert_allclose(dj, diags[0], atol=1e-12)
        lam = q * q * ell[0] ** 2 / 4  # |α|² = q²ħ/(2NMω) of each running mode
        Ln = eval_laguerre(np.arange(nmax + 1), lam)
        expect = np.exp(-lam) * np.outer(Ln, Ln)
        mask = np.add.outer(np.arange(nmax + 1), np.arange(nmax + 1)) <= nmax
        np.testing.assert_allclose(diags[0][mask], expect[mask], atol=1e-12)
    assert abs(th.occupation_diagonal_fraction(chain, 2 * math.pi * 3 / (4 * A), 300.0, "running")) < 1e-14
    # at q = G the thermal sum, done state by state with the closed-form diagonals
    T, q = 400.0, 2 * math.pi / A
    x = HBAR * w / (8.617333262e-5 * T)
    lam_m = q * q * ell**2 / 4
    n = np.arange(200)
    per_mode = [np.sum(bose(x[m], 200) * (np.exp(-lam_m[m] / 2) * eval_laguerre(n, lam_m[m])) ** 2) for m in range(3)]
    f = 16 * np.prod(per_mode) / th.structure_factor(chain, q, T, "quantum")
    assert abs(th.occupation_diagonal_fraction(chain, q, T, "running") - f) < 1e-10


def test_elastic_fractions_side_by_side_at_zero_temperature():
    """T = 0: the single-site Huang-Rhys fraction is e^{-2W}; the running lattice sum at G is
    N² e^{-2W}/S(G) = N²/Σ_jl e^{G²<u_j u_l>} (zero point only)."""
    chain = Chain(N=16, a=A, boundary="ring", mass=5.0)
    G = 2 * math.pi / A
    f = th.elastic_fractions(chain, G, 0.0)
    assert abs(f["huang_rhys_site"] - f["debye_waller"]) < 1e-13
    C = th.displacement_covariance(chain, 0.0, "quantum")
    assert abs(f["lattice_running"] - 256 / np.exp(G**2 * C).sum()) < 1e-12
    assert 0 < f["lattice_standing"] <= 1 and 0 < f["lattice_running"] <= 1
    off = th.elastic_fractions(chain, G / 4, 300.0)
    assert off["lattice_running"] < 1e-14 and off["lattice_standing"] > 0


@pytest.mark.parametrize("call, needle", [
    (lambda: th.pseudopotential_ft(1.0, 1.0, 0.0), "w=0.0"),
    (lambda: th.central_equation(0.1, 1.0, 0.5, A, n_G=0), "n_G=0"),
    (lambda: th.laguerre_element(-1, 0, 0.5), "n_final=-1"),
    (lambda: th.occupation_diagonal_fraction(Chain(N=8, boundary="open"), 1.0, 300.0, "running"), "basis='running'"),
    (lambda: th.born_amplitude(np.zeros(4), np.zeros(3), [0.0], 1.0, 0.5, 10.0, 1.0), "psik0"),
    (lambda: th.weak_potential_gap(1.0, 0.5, A, order=0), "order=0"),
])
def test_bad_input_names_the_parameter(call, needle):
    with pytest.raises(ValueError) as e:
        call()
    assert needle in str(e.value)
