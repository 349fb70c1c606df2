"""Analytic references (plain numpy): what the simulation is held against.

Units as everywhere in wow: energy eV, length Å, time fs, mass amu (converted with
``wow.units.mass_ev``), temperature K; momenta ħk, P in eV·fs/Å, wavenumbers k, q in 1/Å.

Scattering on a perfect tight-binding chain (docs/model.md, "The tight-binding chain")
    reflection_probability   exact transfer-matrix R(k) of a finite scatterer (bonds, site energies)
    reflection_bond          one modified bond, closed form
    born_reflection          first-order Born R(k) of a weak static distortion (1D Green's function)
    packet_average           a function of k averaged over a Gaussian packet's |ψ~(k)|²
Recoil kinematics (paper Appendix A, Eqs. A6-A8)
    recoil_energy            ΔE = 2ħk(P + ħk)/(NM)                               (A8)
    elastic_cm_momentum      P = -ħk, where k -> -k costs no energy               (A7)
    backscatter_energy_shift exact ε(k') - ε(k) of k -> k' < 0 at fixed total momentum
Thermal displacements of the 1D chain, relative to the CM (docs/model.md, "The lattice", "Thermal samples")
    mode_variance            <Q_j²> of the internal modes, classical or quantum (zero point)
    msd_sites, msd_mean      <u_n²> per site and its site average
    msd_classical            closed forms of the classical <u_n²> (ring and open)
    bond_variance            <b_n²>, b_n = u_{n+1} - u_n
    occupations              Bose-Einstein n̄_j
The Debye-Waller fraction (paper Eqs. 30-33, Table I)
    debye_msd                3D Debye-model <u²> = <u_x² + u_y² + u_z²>, zero point included
    debye_waller_2w          2W = q²<u²>/3 (3D isotropic, Eq. 33) or q²<u²> (1D)
    huang_rhys_fraction      occupation-diagonal fraction of a single-site e^{iqu_n} (paper Eq. 30;
                             docs/model.md, "Debye-Waller and Huang-Rhys")
    huang_rhys_fraction_debye  the same for one atom of a finite 3D Debye crystal
The density-density continuum model (docs/model.md, "The density-density model"; paper §IV-V,
Eqs. 10-18, 28-31)
    pseudopotential_ft       ṽ(q) of the Gaussian pseudopotential
    central_equation, central_velocity, weak_potential_gap   Bloch bands, v_n(k), 2|V_G|
    displacement_covariance  <u_j u_l> of a chain (classical or Wigner)
    debye_waller_factor      e^{-2W}, 2W = q²<u_j²> (1D)
    structure_factor         harmonic <ρ_q ρ_{-q}> (Eq. 29)
    born_amplitude, born_backscatter   first Born order of one frozen sample from ṽ(q)ρ_q
    born_backscatter_thermal its thermal average from the structure factor
    laguerre_element         |<n'|e^{iκX}|n>|², one oscillator (Laguerre closed form)
    occupation_diagonal_fraction  Eq. 30 with the lattice sum kept (standing or running basis)
    elastic_fractions        e^{-2W}, single-site Huang-Rhys and Eq. 30 side by side
    fock_distribution        the thermal Fock draws of chosen quantum modes, clipped as wow.run clips them
    occupation_diagonal_fraction_modes, huang_rhys_fraction_modes, debye_waller_factor_modes
                             the same three for the simulation's own quantum modes and statistics
"""

from __future__ import annotations

import math

import numpy as np
from scipy import integrate, special

from .electron import k_grid
from .lattice import BOUNDARIES, STATISTICS, Chain, mode_frequencies, mode_matrix
from .units import HBAR, KB, M_E, mass_ev


# --------------------------------------------------------------------------------------------
# Input checks (public functions refuse bad input with the parameter, its value and the range)
# --------------------------------------------------------------------------------------------
def _array(name, value):
    try:
        return np.asarray(value, dtype=float)
    except (TypeError, ValueError):
        raise ValueError(f"{name}={_show(value)} must be a real number or an array of them") from None


def _positive(name, value):
    v = _array(name, value)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"{name}={_show(value)} is out of range: allowed finite values > 0")
    return v


def _nonnegative(name, value):
    v = _array(name, value)
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"{name}={_show(value)} is out of range: allowed finite values >= 0")
    return v


def _finite(name, value):
    v = _array(name, value)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}={_show(value)} must be finite")
    return v


def _count(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is out of range: allowed integers >= {low}")
    return int(value)


def _site(chain, site):
    """A site index of the chain, 0..N-1; None: the middle, N//2."""
    site = chain.N // 2 if site is None else _count("site", site, low=0)
    if site >= chain.N:
        raise ValueError(f"site={site} is out of range: allowed 0..{chain.N - 1}")
    return site


def _forward_k(k, a):
    """k as an array inside the open interval (0, π/a), or a ValueError."""
    kk = _array("k", k)
    zone = math.pi / float(a)
    bad = ~np.isfinite(kk) | (kk <= 0) | (kk >= zone)
    if np.any(bad):
        raise ValueError(f"k={_show(k, bad)} is out of range: allowed 0 < k < π/a = {zone:.17g} 1/Å "
                         "(open interval: at k = 0 and π/a the group velocity vanishes)")
    return kk


def _show(value, bad=None):
    """A short repr of an input: itself if small, else its first offending entry and a count."""
    v = np.asarray(value)
    if v.size <= 6:
        return repr(value)
    if bad is None:
        return f"array of shape {v.shape}"
    return f"array of shape {v.shape} with {int(np.sum(bad))} bad entries, e.g. {v[bad].ravel()[0]!r}"


# --------------------------------------------------------------------------------------------
# Reflection from a finite scatterer
# --------------------------------------------------------------------------------------------
def _amplitudes(k, t0, a, t_bonds, eps_sites):
    """Left-side amplitudes (A, B) of ψ_n = A e^{ikna} + B e^{-ikna} (n <= 0) for the purely
    transmitted wave ψ_n = e^{ikna} to the right of the scatterer.

    Bond j (hopping t_bonds[j]) joins sites j and j+1; site j has energy eps_sites[j]; everything
    else is the perfect chain (t0, 0). The tight-binding equation
        E ψ_n = -t_{n-1} ψ_{n-1} - t_n ψ_{n+1} + ε_n ψ_n,   E = -2 t0 cos(ka),
    is iterated backwards, ψ_{n-1} = -((E - ε_n) ψ_n + t_n ψ_{n+1}) / t_{n-1}, from two sites of
    the right lead down to site -1."""
    ka = k * a
    E = -2.0 * t0 * np.cos(ka)
    m, L = len(t_bonds), len(eps_sites)
    S = max(m + 1, L)  # first site whose equation is that of the perfect chain
    hop = lambda n: t_bonds[n] if 0 <= n < m else t0  # bond (n, n+1)
    eps = lambda n: eps_sites[n] if 0 <= n < L else 0.0
    psi_next, psi = np.exp(1j * ka * (S + 1)), np.exp(1j * ka * S)  # ψ_{S+1}, ψ_S
    for n in range(S, -1, -1):  # after the step at n, (psi_next, psi) = (ψ_n, ψ_{n-1})
        psi_next, psi = psi, -((E - eps(n)) * psi + hop(n) * psi_next) / hop(n - 1)
    psi0, psim1 = psi_next, psi
    z = np.exp(1j * ka)
    den = 2j * np.sin(ka)
    A = (psi0 * z - psim1) / den
    B = (psim1 - psi0 / z) / den
    return A, B


def reflection_probability(k, t0, a, t_bonds=None, eps_sites=None):
    """Exact reflection probability R(k) of a plane wave on a perfect chain with a finite scatterer.

    H = -Σ_b t_b (|n+1><n| + h.c.) + Σ_n ε_n |n><n|, band ε(k) = -2 t0 cos(ka). The scatterer is a
    consecutive run of bonds with hoppings ``t_bonds`` (eV; bond j joins sites j and j+1, e.g.
    [t1] for one modified bond) and site energies ``eps_sites`` (eV, sites 0, 1, ...); both
    optional. k: wavenumber(s) in (0, π/a) (1/Å, any shape), t0 > 0 (eV), a > 0 (Å).
    Returns R(k) (same shape as k), from the transfer matrix: the TB recursion is iterated
    backwards from a purely transmitted e^{ikna} and the left side split into
    A e^{ikna} + B e^{-ikna}; R = |B/A|², transmission 1 - R = |1/A|²."""
    t0 = float(_positive("t0", t0))
    a = float(_positive("a", a))
    kk = _forward_k(k, a)
    tb = [] if t_bonds is None else list(np.atleast_1d(_finite("t_bonds", t_bonds)).ravel())
    es = [] if eps_sites is None else list(np.atleast_1d(_finite("eps_sites", eps_sites)).ravel())
    if any(t == 0 for t in tb):
        raise ValueError(f"t_bonds={t_bonds!r}: a zero hopping cuts the chain (R = 1); allowed: "
                         "nonzero hoppings")
    A, B = _amplitudes(kk, t0, a, tb, es)
    return np.abs(B / A) ** 2


def reflection_bond(k, t0, t1, a):
    """R(k) of one modified bond (hopping t1 in a chain of hopping t0), closed form:

        R = (1 - x²)² / ((1 - x²)² + 4 x² sin²(ka)),   x = t1/t0,

    from ψ_n = e^{ikna} right of the bond and A e^{ikna} + B e^{-ikna} left of it:
    B/A = e^{2ika}(x² - 1)/(1 - x² e^{2ika}). k in (0, π/a) (1/Å), t0 > 0, t1 != 0 (eV), a > 0 (Å).
    R -> 0 as t1 -> t0; R ≈ (2δ/t0)²/(4 sin² ka) for t1 = t0 + δ, small δ (the Born limit)."""
    t0 = float(_positive("t0", t0))
    a = float(_positive("a", a))
    kk = _forward_k(k, a)
    t1 = float(_finite("t1", t1))
    if t1 == 0:
        raise ValueError("t1=0: a zero hopping cuts the chain (R = 1); allowed: t1 != 0")
    x2 = (t1 / t0) ** 2
    num = (1.0 - x2) ** 2
    return num / (num + 4.0 * x2 * np.sin(kk * a) ** 2)


# --------------------------------------------------------------------------------------------
# Recoil kinematics (Appendix A)
# --------------------------------------------------------------------------------------------
def recoil_energy(k, P, N, M_amu):
    """ΔE_recoil = ((P + 2ħk)² - P²)/(2NM) = 2ħk(P + ħk)/(NM) (eV), paper Eqs. A6, A8: the CM
    kinetic energy a chain of N atoms of mass M_amu (amu), CM momentum P (eV·fs/Å), gains when an
    electron at k (1/Å) is reversed to -k. Zero at P = -ħk (A7). Broadcasts over k and P."""
    k = _finite("k", k)
    P = _finite("P", P)
    N = _count("N", N)
    M = mass_ev(float(_positive("M_amu", M_amu)))
    hk = HBAR * k
    return 2.0 * hk * (P + hk) / (N * M)


def elastic_cm_momentum(k):
    """P_R = -ħk (eV·fs/Å), paper Eq. A7: the CM momentum at which k -> -k is strictly elastic
    (the CM kinetic energy is the same before and after)."""
    return -HBAR * _finite("k", k)


def backscatter_energy_shift(k, P, N, M_amu, t0, a):
    """Exact change of band energy ε(k') - ε(k) (eV) of a component reflected k -> k' < 0 in the
    sector of fixed total momentum Q = P + ħk (CM recoil included, no phonons):

        ε(k') + (Q - ħk')²/(2NM) = ε(k) + (Q - ħk)²/(2NM),   ε(k) = -2 t0 cos(ka),

    solved for the root k' nearest -k. To first order in 1/(NM) this is -recoil_energy(k, P, N,
    M_amu) (paper A8); it vanishes exactly at P = -ħk (A7). k in (0, π/a) (1/Å), P (eV·fs/Å),
    N atoms of M_amu (amu), t0 (eV), a (Å); broadcasts over k and P.

    Written in δ = k' + k, with ε(k') - ε(k) = 4 t0 sin(δa/2) sin((δ - 2k)a/2) so that a shift
    far below t0 keeps full relative precision; Newton from δ = 0."""
    t0 = float(_positive("t0", t0))
    a = float(_positive("a", a))
    kk = _forward_k(k, a)
    P = _finite("P", P)
    N = _count("N", N)
    M = mass_ev(float(_positive("M_amu", M_amu)))
    kk, P = np.broadcast_arrays(kk, P)
    Q = P + HBAR * kk
    inv2M = 1.0 / (2.0 * N * M)

    def band_shift(d):
        return 4.0 * t0 * np.sin(d * a / 2) * np.sin((d - 2 * kk) * a / 2)

    def g(d):  # ε(k') - ε(k) + CM energy change, k' = d - k
        return band_shift(d) + HBAR * (2 * kk - d) * (2 * Q - HBAR * d) * inv2M

    def dg(d):
        return (2.0 * t0 * a * np.sin((2 * d - 2 * kk) * a / 2)
                - HBAR * ((2 * Q - HBAR * d) + HBAR * (2 * kk - d)) * inv2M)

    d = np.zeros_like(kk)
    for _ in range(60):
        step = g(d) / dg(d)
        d = d - step
        if np.all(np.abs(step) <= 1e-15 * (np.abs(d) + kk)):
            break
    kp = d - kk
    bad = ~np.isfinite(d) | (kp <= -math.pi / a) | (kp >= 0) | (np.abs(g(d)) > 1e-10 * t0)
    if np.any(bad):
        raise ValueError(f"no reflected state k' in (-π/a, 0) conserves energy and momentum for "
                         f"k={_show(kk, bad)}, P={_show(P, bad)}, N={N}, "
                         f"M_amu={M_amu!r}: the recoil energy is too large for the band (allowed: "
                         f"|recoil_energy| well below the bandwidth 4 t0 = {4 * t0:g} eV)")
    return band_shift(d)


# --------------------------------------------------------------------------------------------
# Born approximation and packet averages
# --------------------------------------------------------------------------------------------
def born_reflection(k, t0, a, dt_bonds=None, deps_sites=None):
    """First-order Born reflection probability R_Born(k) = |r(k)|² of a weak static distortion of
    the perfect chain: hopping offsets ``dt_bonds`` (eV; t_b = t0 + δt_b on consecutive bonds,
    bond j joining sites j and j+1) and site energies ``deps_sites`` (eV, sites 0, 1, ...).

    With the 1D Green's function G(n, m; E + i0) = e^{ik|n-m|a}/(2i t0 sin ka), E = -2 t0 cos ka,
    the wave scattered to n -> -∞ from e^{ikna} is r e^{-ikna} with

        r(k) = [Σ_n δε_n e^{2ikna} - 2 Σ_j δt_j e^{ik(2j+1)a}] / (2i t0 sin ka).

    k in (0, π/a) (1/Å), t0 > 0 (eV), a > 0 (Å). Exact to first order in the distortion: the
    relative error of R_Born is of order max|δ|/(t0 sin ka)."""
    t0 = float(_positive("t0", t0))
    a = float(_positive("a", a))
    kk = _forward_k(k, a)
    dt_b = np.zeros(0) if dt_bonds is None else np.atleast_1d(_finite("dt_bonds", dt_bonds)).ravel()
    de = np.zeros(0) if deps_sites is None else np.atleast_1d(_finite("deps_sites", deps_sites)).ravel()
    ka = kk[..., None] * a
    amp = (np.sum(de * np.exp(2j * ka * np.arange(de.size)), axis=-1)
           - 2.0 * np.sum(dt_b * np.exp(1j * ka * (2 * np.arange(dt_b.size) + 1)), axis=-1))
    return np.abs(amp / (2j * t0 * np.sin(kk * a))) ** 2


def packet_weights(N, a, x0, sigma, k0):
    """Momentum distribution of wow's initial packet (docs/model.md): the DFT momenta k (1/Å, FFT order,
    in (-π/a, π/a]) and |ψ~(k)|² of ψ_n ∝ exp(-(na - x0)²/(4σ²)) e^{ik0na} on N sites (spacing a, Å),
    normalised to 1. x0, sigma in Å, k0 in 1/Å."""
    N = _count("N", N, low=2)
    a = float(_positive("a", a))
    sigma = float(_positive("sigma", sigma))
    x0, k0 = float(_finite("x0", x0)), float(_finite("k0", k0))
    x = np.arange(N) * a
    psi = np.exp(-((x - x0) ** 2) / (4 * sigma**2) + 1j * k0 * x)
    w = np.abs(np.fft.fft(psi / np.linalg.norm(psi), norm="ortho")) ** 2
    return k_grid(N, a), w


def packet_average(fn, N, a, x0, sigma, k0, tol=1e-10):
    """Σ_k |ψ~(k)|² fn(k) over the forward momenta 0 < k < π/a of wow's initial packet (see
    ``packet_weights``): e.g. the packet's backscattered probability Σ_k w(k) R(k) for an elastic
    static scatterer, each k reflecting independently. fn: a vectorised function of k (1/Å).
    Refuses a packet with more than ``tol`` of its weight outside (0, π/a)."""
    k, w = packet_weights(N, a, x0, sigma, k0)
    fwd = (k > 0) & (k < math.pi / float(a))
    if np.sum(w[~fwd]) > tol:
        raise ValueError(f"k0={k0!r}, sigma={sigma!r}: the packet has weight {np.sum(w[~fwd]):.2g} outside "
                         f"0 < k < π/a (allowed <= tol={tol:g}); use a broader packet or k0 nearer π/(2a)")
    return float(np.sum(w[fwd] * fn(k[fwd])))


# --------------------------------------------------------------------------------------------
# Thermal displacements of the chain (relative to the CM)
# --------------------------------------------------------------------------------------------
def _check_chain(chain):
    if not isinstance(chain, Chain):
        raise ValueError(f"chain={chain!r} must be a wow.Chain")
    _count("chain.N", chain.N, low=3)
    if chain.boundary not in BOUNDARIES:
        raise ValueError(f"chain.boundary={chain.boundary!r}: allowed {BOUNDARIES}")
    for name in ("mass", "spring", "a"):
        _positive(f"chain.{name}", getattr(chain, name))
    return chain


def _statistics(statistics):
    if statistics not in STATISTICS:
        raise ValueError(f"statistics={statistics!r}: allowed {', '.join(map(repr, STATISTICS))}")
    return statistics


def occupations(chain, T):
    """Bose-Einstein n̄_j = 1/(e^{ħω_j/k_BT} - 1) of the internal modes j = 1..N-1 (zero at T = 0)."""
    _check_chain(chain)
    T = float(_nonnegative("T", T))
    w = mode_frequencies(chain)
    if T == 0:
        return np.zeros_like(w)
    x = HBAR * w / (KB * T)
    return np.exp(-x) / -np.expm1(-x)  # 1/(e^x - 1) without overflow at large x


def mode_variance(chain, T, statistics="quantum"):
    """<Q_j²> (Å²) of the internal modes j = 1..N-1: classical k_BT/(Mω²); quantum (Wigner, zero
    point included) ħ/(2Mω) coth(ħω/2k_BT) = ħ/(2Mω)(2n̄ + 1). T >= 0 (K); classical needs T > 0
    to be non-zero."""
    _check_chain(chain)
    T = float(_nonnegative("T", T))
    w, M = mode_frequencies(chain), chain.mass_ev
    if _statistics(statistics) == "classical":
        return KB * T / (M * w**2)
    return HBAR / (2 * M * w) * (2 * occupations(chain, T) + 1)


def msd_sites(chain, T, statistics="quantum"):
    """<u_n²> (Å²) for each site n = 0..N-1, u_n the displacement relative to the CM (sum u = 0):
    Σ_j e_nj² <Q_j²> over the internal modes (docs/model.md). Uniform on the ring; on the open chain
    largest at the free ends. Dense in N (uses wow.lattice.mode_matrix): for N up to a few
    thousand."""
    E = mode_matrix(_check_chain(chain))
    return (E**2) @ mode_variance(chain, T, statistics)


def msd_mean(chain, T, statistics="quantum"):
    """Site average (1/N) Σ_n <u_n²> = (1/N) Σ_j <Q_j²> (Å²), any N."""
    return float(np.sum(mode_variance(chain, T, statistics)) / chain.N)


def msd_classical(chain, T):
    """Closed forms of the classical <u_n²> (Å², per site), derived without normal modes:
    ring  k_BT (N² - 1)/(12 N K) at every site (Σ_{j=1}^{N-1} csc²(πj/N) = (N² - 1)/3);
    open  the N-1 bonds are independent N(0, k_BT/K) and u_n = Σ_i b_i (θ(i < n) - (N-1-i)/N), so
          <u_n²> = k_BT/(6 K N²) [n(n+1)(2n+1) + (N-1-n)(N-n)(2N-1-2n)]
          (≈ k_BT N/(12K) mid-chain, ≈ k_BT N/(3K) at the ends)."""
    _check_chain(chain)
    T = float(_nonnegative("T", T))
    N, K, kT = chain.N, chain.spring, KB * T
    if chain.boundary == "ring":
        return np.full(N, kT * (N**2 - 1) / (12 * N * K))
    n = np.arange(N, dtype=float)
    return kT / (6 * K * N**2) * (n * (n + 1) * (2 * n + 1) + (N - 1 - n) * (N - n) * (2 * N - 1 - 2 * n))


def bond_variance(chain, T, statistics="quantum"):
    """<b_n²> (Å²) of each bond b_n = u_{n+1} - u_n (N-1 bonds open, N ring):
    Σ_j (e_{n+1,j} - e_nj)² <Q_j²>. Classical: k_BT/K for every bond of the open chain (its bonds
    are independent), k_BT/K (N-1)/N on the ring (its bonds sum to zero)."""
    E = mode_matrix(_check_chain(chain))
    dE = np.roll(E, -1, axis=0) - E if chain.boundary == "ring" else E[1:] - E[:-1]
    return (dE**2) @ mode_variance(chain, T, statistics)


# --------------------------------------------------------------------------------------------
# Debye-Waller and Huang-Rhys
# --------------------------------------------------------------------------------------------
def _debye_integral(x):
    """∫_0^x t/(e^t - 1) dt."""
    if x == 0:
        return 0.0
    f = lambda t: t / np.expm1(t) if t > 0 else 1.0
    return integrate.quad(f, 0.0, x, epsabs=0.0, epsrel=1e-13, limit=200)[0]


def debye_msd(T, theta_D, M_amu):
    """3D Debye-model mean-square displacement <u²> = <u_x² + u_y² + u_z²> (Å²), zero point included:

        <u²> = 3 x (3ħ²/(M k_B Θ_D)) [1/4 + (T/Θ_D)² ∫_0^{Θ_D/T} x/(e^x - 1) dx].

    The bracketed standard Debye formula is ONE Cartesian component <u_x²> (B = 8π²<u_x²>); the
    factor 3 makes the isotropic total that paper Eq. 33 divides by 3 (2W = q²<u²>/3).
    Limits: T = 0: 9ħ²/(4 M k_B Θ_D); T >> Θ_D: 9ħ²T/(M k_B Θ_D²) (classical, 3 k_BT/(Mω_D²) per
    component). T >= 0 (K, scalar or array), Θ_D > 0 (K), M_amu > 0 (amu)."""
    Ts = _nonnegative("T", T)
    theta = float(_positive("theta_D", theta_D))
    M = mass_ev(float(_positive("M_amu", M_amu)))
    pref = 3.0 * HBAR**2 / (M * KB * theta)

    def one(t):
        if t == 0:
            return 0.25
        return 0.25 + (t / theta) ** 2 * _debye_integral(theta / t)

    out = 3.0 * pref * np.vectorize(one, otypes=[float])(Ts)
    return float(out) if out.ndim == 0 else out


def debye_waller_2w(q, msd, dim=3):
    """Debye-Waller exponent 2W (dimensionless): dim = 3, isotropic, 2W = q²<u²>/3 with <u²> the
    full 3D mean square (paper Eq. 33); dim = 1, 2W = q²<u²> (docs/model.md). q in 1/Å, msd = <u²> >= 0
    in Å². The paper's elastic fraction is then f_el ≈ exp(-2W) (Eq. 31)."""
    q = _finite("q", q)
    msd = _nonnegative("msd", msd)
    if dim not in (1, 3):
        raise ValueError(f"dim={dim!r}: allowed 1 or 3")
    out = q**2 * msd / (3.0 if dim == 3 else 1.0)
    return float(out) if out.ndim == 0 else out


def huang_rhys_fraction(chain, q, T, site=None, basis="standing"):
    """Occupation-diagonal fraction of the single-site density operator e^{iqu_n} (paper Eq. 30 for
    one site, whose denominator |e^{iqu}|² = 1), docs/model.md:

        f_HR = Σ_{n} p_n |<n|e^{iqu_n}|n>|² = Π_j exp(-λ_j(2n̄_j + 1)) I_0(2λ_j sqrt(n̄_j(n̄_j + 1))),
        λ_j = q² e_nj² ħ/(2Mω_j),

    with n̄_j Bose-Einstein (quantum lattice) and |<n|D|n>|² = e^{-λ} L_n(λ)² for each mode. It equals
    exp(-2W) = exp(-q²<u_n²>) (quantum <u_n²>) at T = 0 and exceeds it at T > 0 by the factor
    Π_j I_0(...) ≈ exp(Σ_j λ_j² n̄_j(n̄_j+1)), which vanishes as 1/N when each mode's share of
    <u_n²> is O(1/N). Evaluated with scipy.special.i0e in logs.

    q: momentum transfer (1/Å, scalar or array); T >= 0 (K); site: index of the site n (default
    the middle, N//2); basis: the Fock basis, 'standing' (the real modes e_nj of wow.lattice) or,
    on the ring only, 'running' (±q waves, e_nj² -> 1/N; their occupations differ from the standing
    waves', so the diagonal fraction does too)."""
    _check_chain(chain)
    q = _finite("q", q)
    T = float(_nonnegative("T", T))
    N = chain.N
    site = _site(chain, site)
    if basis not in ("standing", "running"):
        raise ValueError(f"basis={basis!r}: allowed 'standing' or 'running'")
    if basis == "running" and chain.boundary != "ring":
        raise ValueError("basis='running' needs boundary='ring' (the open chain's modes are standing waves)")
    w = mode_frequencies(chain)
    e2 = np.full(N - 1, 1.0 / N) if basis == "running" else mode_matrix(chain)[site] ** 2
    nbar = occupations(chain, T)
    lam = q[..., None] ** 2 * e2 * HBAR / (2 * chain.mass_ev * w)
    z = 2 * lam * np.sqrt(nbar * (nbar + 1))
    log_f = np.sum(np.log(special.i0e(z)) + z - lam * (2 * nbar + 1), axis=-1)
    out = np.exp(log_f)
    return float(out) if out.ndim == 0 else out


def huang_rhys_fraction_debye(q, T, theta_D, M_amu, n_atoms):
    """Occupation-diagonal fraction of e^{iq·u} for one atom of a 3D Debye crystal of ``n_atoms``
    atoms (the 3D counterpart of ``huang_rhys_fraction``, for Table I):

        f_HR = exp(-2W) x Π_i I_0(z_i),   z_i = 2λ_i sqrt(n̄_i(n̄_i + 1)),

    with 2W = q²<u²>/3 from the continuum ``debye_msd`` and the Bessel factor over the 3 n_atoms
    modes at the Debye-quantile frequencies ω_i = ω_D ((i - 1/2)/(3 n_atoms))^{1/3}, each with the
    isotropic mean coupling λ_i = (q²/3) ħ/(2 M ω_i n_atoms) (so that Σ_i λ_i (2n̄_i + 1) -> 2W).
    The factor is >= 1, is 1 at T = 0, and tends to 1 as n_atoms^{-2/3} (the softest modes
    dominate it): in a macroscopic crystal f_HR = exp(-2W). q (1/Å), T >= 0 (K), Θ_D > 0 (K),
    M_amu > 0 (amu), n_atoms >= 1."""
    q = _finite("q", q)
    T = float(_nonnegative("T", T))
    n_atoms = _count("n_atoms", n_atoms)
    two_w = debye_waller_2w(q, debye_msd(T, theta_D, M_amu), dim=3)
    if T == 0:
        return two_w * 0 + np.exp(-two_w)
    M = mass_ev(float(M_amu))
    wD = KB * float(theta_D) / HBAR
    i = np.arange(1, 3 * n_atoms + 1)
    w = wD * ((i - 0.5) / (3 * n_atoms)) ** (1.0 / 3.0)
    x = HBAR * w / (KB * T)
    nbar = np.exp(-x) / -np.expm1(-x)
    lam = np.asarray(q)[..., None] ** 2 / 3.0 * HBAR / (2 * M * w * n_atoms)
    z = 2 * lam * np.sqrt(nbar * (nbar + 1))
    out = np.exp(-two_w + np.sum(np.log(special.i0e(z)) + z, axis=-1))
    return float(out) if out.ndim == 0 else out


# --------------------------------------------------------------------------------------------
# Transport references (wow.transport holds the estimators these are tested against)
# --------------------------------------------------------------------------------------------
# Haken-Strobl-Reineker (HSR) dephasing on the perfect chain. H0 = -t0 Σ (|n+1><n| + h.c.) plus
# on-site Gaussian white noise ε_n(t), <ε_n(t) ε_m(t')> = ħ²Γ δ_nm δ(t - t'). Averaged over the
# noise, ρ obeys the Lindblad equation dρ/dt = -(i/ħ)[H0, ρ] - Γ(ρ - diag ρ): Γ (1/fs) is the decay
# rate of every site coherence ρ_nm, n != m (Lindblad operators sqrt(Γ)|n><n|). With the velocity
# v = (i/ħ)[H0, x] = (i t0 a/ħ) Σ (|n+1><n| - |n><n+1|) (Å/fs), which commutes with H0, the
# adjoint generator closes on five moments (infinite chain; exact while the packet is far from the
# ends):
#   d<x>/dt = <v>,  d<v>/dt = -Γ<v>,  d<v²>/dt = Γ(v∞² - <v²>),  v∞² = 2 t0² a²/ħ²,
#   d<(x-x0)²>/dt = <W>,  d<W>/dt = 2<v²> - Γ<W>,  W = (x-x0)v + v(x-x0),
# and the momentum distribution relaxes as n(k, t) = e^{-Γt} n(k, 0) + (1 - e^{-Γt})/N, so the
# band energy goes as E(t) = e^{-Γt} E(0) (the noise is infinitely hot: its steady state is the
# band centre, not a thermal distribution). Solutions below; Γ = 0 is the free (ballistic) chain.
def _decay_integrals(t, gamma):
    """f1 = ∫_0^t e^{-Γs} ds, f2 = ∫_0^t f1 ds, f3 = ∫_0^t s e^{-Γs} ds, stable as Γt -> 0."""
    g = gamma * t
    small = g < 1e-4
    gs = np.where(small, 1.0, g)  # avoid 0/0 where the series is used
    e = np.exp(-gs)
    f1 = np.where(small, t * (1 - g / 2 + g**2 / 6), -np.expm1(-gs) / np.where(small, 1.0, gamma))
    em1 = np.expm1(-gs)  # e^{-g} - 1, so that the cancellations below keep relative precision
    f2 = np.where(small, t**2 * (0.5 - g / 6 + g**2 / 24), t**2 * (gs + em1) / gs**2)
    f3 = np.where(small, t**2 * (0.5 - g / 3 + g**2 / 8), t**2 * (-em1 - gs * e) / gs**2)
    return f1, f2, f3


def hsr_diffusion(t0, a, gamma):
    """Long-time diffusion constant of the HSR chain, D = v∞²/Γ = 2 t0² a²/(ħ² Γ) (Å²/fs), for
    Γ the decay rate of site coherences (see the block comment above). t0 (eV), a (Å), Γ (1/fs)
    all > 0. Conventions that write the noise as <ε ε> = 2ħ²Γ' δ (coherence rate 2Γ') get
    D = t0² a²/(ħ² Γ'): same physics, Γ = 2Γ'."""
    t0, a, gamma = _positive("t0", t0), _positive("a", a), _positive("gamma", gamma)
    out = 2.0 * t0**2 * a**2 / (HBAR**2 * gamma)
    return float(out) if np.ndim(out) == 0 else out


def hsr_moments(t, psi0, t0, a, gamma, x0=None):
    """Exact noise-averaged transport moments of the HSR chain (block comment above) for the
    initial state ``psi0`` (complex, sites n = 0..N-1 at x_n = n a, normalised here), at times t
    (fs, >= 0, any shape). x0: the origin of the MSD (Å, default <x>(0)).

    Returns a dict of arrays shaped like t:
      x        <x> - x0 (Å)
      msd      <(x - x0)²> (Å²)
      spread   <x²> - <x>² (Å²) of the noise-averaged density: the mean of each realisation's
               own spread plus the variance of the realisations' centroids
      v        <v> (Å/fs), = e^{-Γt} <v>(0)
      v2       <v²> (Å²/fs²)
      D_run    ½ d msd/dt = ½<W> (Å²/fs)
      corr     Re <ψ0|v(t) v(0)|ψ0> = e^{-Γt} <v²>(0) (Å²/fs², the two-time velocity correlation)
      energy   <H0> (eV), = e^{-Γt} <H0>(0)
    From one site: msd = 2 v∞² [t/Γ - (1 - e^{-Γt})/Γ²] -> 2Dt - 2D/Γ. Γ = 0 gives the free
    chain: msd(t) = msd(0) + <W>(0) t + <v²>(0) t² (ballistic). t0 (eV) > 0, a (Å) > 0, Γ >= 0
    (1/fs). The moments at t = 0 are those of psi0 on the infinite chain (a packet far from the
    ends of a finite one)."""
    t = _nonnegative("t", t)
    t0, a = float(_positive("t0", t0)), float(_positive("a", a))
    gamma = float(_nonnegative("gamma", gamma))
    psi = np.asarray(psi0, complex)
    if psi.ndim != 1 or psi.size < 2 or not np.all(np.isfinite(psi)) or np.linalg.norm(psi) == 0:
        raise ValueError(f"psi0={_show(psi0)} must be a finite, non-zero 1-D array of >= 2 amplitudes")
    psi = psi / np.linalg.norm(psi)
    x = np.arange(psi.size) * a
    rho = np.abs(psi) ** 2
    x0 = float(np.sum(x * rho)) if x0 is None else float(_finite("x0", x0))
    # v psi on the infinite chain (psi = 0 beyond the ends): (vψ)_n = -(i t0 a/ħ)(ψ_{n+1} - ψ_{n-1})
    pad = np.concatenate([[0], psi, [0]])
    vpsi = -1j * t0 * a / HBAR * (pad[2:] - pad[:-2])
    hpsi = -t0 * (pad[2:] + pad[:-2])
    vpsi_full = np.concatenate([[1j * t0 * a / HBAR * psi[0]], vpsi, [-1j * t0 * a / HBAR * psi[-1]]])
    v0 = float(np.real(np.vdot(psi, vpsi)))
    v2_0 = float(np.sum(np.abs(vpsi_full) ** 2))  # <v²> = |vψ|², vψ reaching one site beyond each end
    W0 = 2.0 * float(np.real(np.vdot((x - x0) * psi, vpsi)))
    m0 = float(np.sum((x - x0) ** 2 * rho))
    E0 = float(np.real(np.vdot(psi, hpsi)))
    vinf2 = 2.0 * t0**2 * a**2 / HBAR**2
    f1, f2, f3 = _decay_integrals(t, gamma)
    decay = np.exp(-gamma * t)
    xm = float(np.sum(x * rho)) - x0 + v0 * f1
    msd = m0 + W0 * f1 + 2.0 * vinf2 * f2 + 2.0 * (v2_0 - vinf2) * f3
    W = W0 * decay + 2.0 * vinf2 * f1 + 2.0 * (v2_0 - vinf2) * t * decay
    return {"x": xm, "msd": msd, "spread": msd - xm**2, "v": v0 * decay,
            "v2": vinf2 + (v2_0 - vinf2) * decay, "D_run": W / 2, "corr": v2_0 * decay,
            "energy": E0 * decay}


def hsr_msd(t, t0, a, gamma):
    """<(x - x0)²>(t) (Å²) of the HSR chain from one site (noise-averaged, exact at all times):
    (4 t0² a²/(ħ² Γ)) [t - (1 - e^{-Γt})/Γ]: ballistic 2 (t0 a/ħ)² t² for Γt << 1, diffusive
    2 D t - 2 D/Γ for Γt >> 1, D = hsr_diffusion(t0, a, Γ). t (fs) >= 0, t0 (eV), a (Å) > 0,
    Γ (1/fs) >= 0."""
    t = _nonnegative("t", t)
    t0, a = float(_positive("t0", t0)), float(_positive("a", a))
    gamma = float(_nonnegative("gamma", gamma))
    _, f2, _ = _decay_integrals(t, gamma)
    return 4.0 * t0**2 * a**2 / HBAR**2 * f2


def free_spread(t, t0, a, sigma, k0):
    """Ballistic spread <x²> - <x>² (Å²) of wow's Gaussian packet ψ_n ∝ exp(-(na - x0)²/(4σ²))
    e^{ik0na} on the free chain (hopping t0, no noise, no lattice):

        σ²(t) = σ² + (a t0 t/ħ)² [2 - 2 cos(2k0a) e^{-a²/(2σ²)} - 4 sin²(k0a) e^{-a²/(4σ²)}],

    from <v²> - <v>² at t = 0 (v commutes with H0, so the spread grows as Var(v) t²; the packet is
    unchirped, so the linear term vanishes) with <S^m> = e^{-imk0a} e^{-m²a²/(8σ²)} for the shift
    S. Exact up to the Poisson (aliasing) terms O(e^{-2π²σ²/a²}) of a sampled Gaussian and to the
    chain's ends. For σ >> a it tends to σ² + (v' t/(2σ))², v' = 2 t0 a² cos(k0a)/ħ. t (fs) >= 0,
    t0 (eV), a (Å), sigma (Å) > 0, k0 (1/Å)."""
    t = _nonnegative("t", t)
    t0, a = float(_positive("t0", t0)), float(_positive("a", a))
    sigma, k0 = float(_positive("sigma", sigma)), float(_finite("k0", k0))
    ka, r = k0 * a, a**2 / (8 * sigma**2)
    var_v = 2 - 2 * math.cos(2 * ka) * math.exp(-4 * r) - 4 * math.sin(ka) ** 2 * math.exp(-2 * r)
    return sigma**2 + (a * t0 * t / HBAR) ** 2 * var_v


def band_energy_thermal(t0, T):
    """Mean band energy <ε> (eV) of one electron in Boltzmann equilibrium at T (K) on the infinite
    chain's band ε(k) = -2 t0 cos(ka): -2 t0 I1(2t0/k_BT)/I0(2t0/k_BT) (-> -2 t0 + k_BT/2 at low T,
    0 as T -> ∞). The target of energy relaxation where the lattice obeys detailed balance."""
    t0 = float(_positive("t0", t0))
    T = _nonnegative("T", T)
    x = 2 * t0 / (KB * np.maximum(T, 1e-300))
    out = np.where(T > 0, -2 * t0 * special.i1e(x) / special.i0e(x), -2 * t0)
    return float(out) if out.ndim == 0 else out


def ou_paths(rng, shape, times, sigma=1.0, tau=1.0):
    """Positions x (x(0) = 0) and velocities v, each (*shape, len(times)), of a stationary
    Ornstein-Uhlenbeck velocity process at the given times (fs), sampled exactly (the joint Gaussian
    of (Δx, v') given v; Uhlenbeck-Ornstein 1930) from the numpy Generator rng: C(t) = σ² e^{-t/τ},
    D = σ² τ, MSD = 2σ²τ² (t/τ - 1 + e^{-t/τ}). Synthetic data with a known D and τ_p for the
    estimators of wow.transport."""
    g = 1 / tau
    v = rng.normal(0, sigma, shape)
    x = np.zeros(shape)
    X, V = [x], [v]
    for h in np.diff(times):
        e = math.exp(-g * h)
        var_v = sigma**2 * (1 - e**2)
        var_x = 2 * sigma**2 / g**2 * (g * h - 2 * (1 - e) + 0.5 * (1 - e**2))
        cov = sigma**2 / g * (1 - e) ** 2
        dv = math.sqrt(var_v) * rng.normal(size=shape)
        dx = cov / var_v * dv + math.sqrt(var_x - cov**2 / var_v) * rng.normal(size=shape)
        x = x + v * (1 - e) / g + dx
        v = v * e + dv
        X.append(x)
        V.append(v)
    return np.stack(X, -1), np.stack(V, -1)


# Frozen disorder: the Lyapunov exponent of the chain's transfer matrices
def lyapunov_exponent(E, t_bonds, eps_sites, burn=None):
    """Lyapunov exponent γ (per site) of a chain with hoppings ``t_bonds`` (..., L-1) (eV, bond n
    joins sites n and n+1) and site energies ``eps_sites`` (..., L) (eV), at energy E (eV, real, or
    complex E + iη with η > 0). Leading axes are independent chains.

    The TB equation E ψ_n = -t_{n-1} ψ_{n-1} - t_n ψ_{n+1} + ε_n ψ_n is iterated as
    (ψ_{n+1}, ψ_n) = T_n (ψ_n, ψ_{n-1}), T_n = [[(ε_n - E)/t_n, -t_{n-1}/t_n], [1, 0]], from a
    fixed start vector, renormalising every site; γ = (1/L') Σ ln(growth) over the sites after
    the first ``burn`` (default L/10: the start vector's alignment with the growing direction is
    forgotten after ~1/γ sites). det T_n = t_{n-1}/t_n telescopes, so the two exponents are ±γ and
    the eigenstates at E decay as |ψ_n| ~ e^{-γ|n|}: the localisation length is ξ = a/γ (Å, of the
    amplitude; the density decays as e^{-2|x|/ξ}).
    Returns (γ, its standard error over the chains) if there are leading axes, else (γ, nan)."""
    t_b = np.asarray(t_bonds, float)
    eps = np.asarray(eps_sites, float)
    if t_b.shape[:-1] != eps.shape[:-1] or t_b.shape[-1] != eps.shape[-1] - 1 or eps.shape[-1] < 3:
        raise ValueError(f"t_bonds shape {t_b.shape} and eps_sites shape {eps.shape}: allowed "
                         "(..., L-1) and (..., L) with L >= 3")
    if not (np.all(np.isfinite(t_b)) and np.all(np.isfinite(eps))) or np.any(t_b == 0):
        raise ValueError("t_bonds, eps_sites: allowed finite values, hoppings != 0 (a zero bond cuts the chain)")
    Ez = complex(E)
    if not np.isfinite(Ez) or Ez.imag < 0:
        raise ValueError(f"E={E!r} is out of range: allowed finite, Im E >= 0")
    L = eps.shape[-1]
    burn = L // 10 if burn is None else _count("burn", burn, low=0)
    if burn >= L - 2:
        raise ValueError(f"burn={burn} is out of range: allowed 0..{L - 3} for L={L} sites")
    dtype = complex if Ez.imag != 0 else float
    E_ = Ez if Ez.imag != 0 else Ez.real
    lead = eps.shape[:-1]
    cur, prev = np.ones(lead, dtype), np.zeros(lead, dtype)  # (ψ_1, ψ_0): start at the left end
    logs = np.zeros(lead)
    for n in range(1, L - 1):
        nxt = ((eps[..., n] - E_) * cur - t_b[..., n - 1] * prev) / t_b[..., n]
        norm = np.sqrt(np.abs(nxt) ** 2 + np.abs(cur) ** 2)
        if n > burn:
            logs += np.log(norm)
        cur, prev = nxt / norm, cur / norm
    g = logs / (L - 2 - burn)
    if g.ndim == 0:
        return float(g), float("nan")
    g = g.ravel()
    return float(g.mean()), float(g.std(ddof=1) / math.sqrt(g.size)) if g.size > 1 else float("nan")


def lyapunov_weak(E, t0, a, alpha, D, bond_var):
    """Weak-disorder (second order) Lyapunov exponent per site of the thermal chain with
    independent bond stretches b_n, <b_n²> = bond_var (Å²; k_BT/K for the classical open chain),
    SSH hoppings t_n = t0 - α b_n and deformation site energies ε_n = D (b_{n-1} + b_n)/(2a):

        γ(E) = bond_var (α + D cos(ka)/(2a))² / (2 t0² sin²(ka)),   E = -2 t0 cos(ka),

    i.e. half the Born reflection probability per site, <|r|²>/2 (Thouless: γ = <ε²>/(8 t0² sin² ka)
    for white site disorder; a weak bond δt reflects |r|² = δt²/(t0² sin² ka)). Valid for
    γ << 1 away from the band edges and the band centre (E = 0, where anomalies appear).
    E (eV) inside (-2 t0, 2 t0), t0 (eV) > 0, a (Å) > 0, α (eV/Å), D (eV), bond_var (Å²) >= 0."""
    t0, a = float(_positive("t0", t0)), float(_positive("a", a))
    E = _finite("E", E)
    if np.any(np.abs(E) >= 2 * t0):
        raise ValueError(f"E={_show(E)} is out of range: allowed -2 t0 < E < 2 t0 = {2 * t0:g} eV (the band)")
    alpha, D = float(_finite("alpha", alpha)), float(_finite("D", D))
    s2 = float(_nonnegative("bond_var", bond_var))
    cka = -E / (2 * t0)
    out = s2 * (alpha + D * cka / (2 * a)) ** 2 / (2 * t0**2 * (1 - cka**2))
    return float(out) if np.ndim(out) == 0 else out


# Holstein local modes (references for the coupling part 2 adds): an Einstein oscillator q (Å) of
# mass M (amu) and frequency ω (1/fs) on a site, with site energy ε = g q (g in eV/Å)
def holstein_polaron_shift(g, M_amu, omega):
    """Static polaron shift E_p = g²/(2 M ω²) (eV) of an electron held on one site: the minimum
    of g q + ½ M ω² q² is -E_p at q* = -g/(M ω²). Several modes per site add their shifts.
    g (eV/Å), M_amu > 0 (amu), ω > 0 (1/fs); broadcasts over arrays of modes."""
    g = _finite("g", g)
    M = mass_ev(_positive("M_amu", M_amu))
    w = _positive("omega", omega)
    out = g**2 / (2 * M * w**2)
    return float(out) if np.ndim(out) == 0 else out


def holstein_forced_oscillator(t, q0, p0, g, M_amu, omega, occupation=1.0):
    """Ehrenfest coordinate q(t) (Å) of one Holstein mode under an electron of constant site
    occupation n = |ψ_site|² (a single-site electron, or one frozen in place): the force is -g n,
    so q(t) = q* + (q0 - q*) cos ωt + p0/(Mω) sin ωt, q* = -g n/(M ω²), and the lattice energy
    ½ p²/M + ½ M ω² q² plus the interaction g n q is conserved. t (fs), q0 (Å), p0 (eV·fs/Å),
    g (eV/Å), M_amu > 0 (amu), ω > 0 (1/fs), occupation in [0, 1]."""
    t = _finite("t", t)
    q0, p0 = float(_finite("q0", q0)), float(_finite("p0", p0))
    g = float(_finite("g", g))
    M = mass_ev(float(_positive("M_amu", M_amu)))
    w = float(_positive("omega", omega))
    n = float(_nonnegative("occupation", occupation))
    if n > 1:
        raise ValueError(f"occupation={occupation!r} is out of range: allowed [0, 1]")
    qs = -g * n / (M * w**2)
    return qs + (q0 - qs) * np.cos(w * t) + p0 / (M * w) * np.sin(w * t)


# --------------------------------------------------------------------------------------------
# Density-density continuum model (docs/model.md, "The density-density model"; paper §IV-V, Eqs. 10-18, 28-31)
# --------------------------------------------------------------------------------------------
# One electron (mass m = m*·m_e) on a ring of N atoms at ξ_j + u_j, ξ_j = j a, L = N a, each a
# Gaussian pseudopotential v(x) = V0 exp(-x²/(2w²)), ṽ(q) = V0 w √(2π) exp(-q²w²/2). Plane waves
# |κ> = e^{iκs}/√L on κ = 2πl/L; <κ'|V|κ> = ṽ(κ'-κ) ρ_{κ'-κ}/L, ρ_q = Σ_j e^{-iq(ξ_j+u_j)} (paper Eq. 10).
# The references below are plain numpy; wow.models.continuum holds the simulation.
def pseudopotential_ft(q, V0, w):
    """ṽ(q) = ∫ V0 exp(-x²/(2w²)) e^{-iqx} dx = V0 w √(2π) exp(-q²w²/2) (eV·Å); q in 1/Å, w in Å."""
    q = _finite("q", q)
    V0 = float(_finite("V0", V0))
    w = float(_positive("w", w))
    return V0 * w * math.sqrt(2 * math.pi) * np.exp(-(q**2) * w**2 / 2)


def central_equation(k, V0, w, a, m_star=1.0, n_G=24):
    """Bloch bands of the static lattice from the central equation on the components κ = k + G_l,
    G_l = 2πl/a, l = -n_G..n_G (truncated plane-wave basis, no grid):

        H_{ll'} = δ_{ll'} ħ²(k + G_l)²/(2m) + V_{G_l - G_l'},   V_G = ṽ(G)/a,

    m = m_star·m_e. k (1/Å, any shape). Returns (E, C, kappa): E (..., 2n_G+1) ascending (eV),
    C (..., 2n_G+1, 2n_G+1) the eigenvectors in columns (component l first), kappa (..., 2n_G+1) the
    components' momenta k + G_l (1/Å). Converged for the low bands once ṽ(n_G·2π/a) is negligible.
    Group velocity (Hellmann-Feynman): v_n = Σ_l |C_ln|² ħ(k + G_l)/m (``central_velocity``)."""
    k = _finite("k", k)
    V0 = float(_finite("V0", V0))
    w, a = float(_positive("w", w)), float(_positive("a", a))
    m = M_E * float(_positive("m_star", m_star))
    n_G = _count("n_G", n_G, low=1)
    G = 2 * np.pi * np.arange(-n_G, n_G + 1) / a
    kap = k[..., None] + G
    VG = pseudopotential_ft(G[:, None] - G[None, :], V0, w) / a
    H = VG + np.eye(G.size) * ((HBAR * kap) ** 2 / (2 * m))[..., None, :]
    E, C = np.linalg.eigh(H)
    return E, C, kap


def central_velocity(k, V0, w, a, m_star=1.0, n_G=24):
    """v_n(k) = ∂ε_n/∂(ħk) = Σ_l |C_ln|² ħ(k + G_l)/m (Å/fs) from the central equation's
    eigenvectors (Hellmann-Feynman); (..., 2n_G+1), bands ascending."""
    _, C, kap = central_equation(k, V0, w, a, m_star, n_G)
    return np.einsum("...ln,...l->...n", np.abs(C) ** 2, HBAR * kap / (M_E * float(m_star)))


def weak_potential_gap(V0, w, a, order=1):
    """2|V_G| (eV), V_G = ṽ(G)/a, G = 2π·order/a: the gap at the zone edge (order 1) or at k = 0
    between bands 2·order-1 and 2·order (even orders), to first order in V0 (nearly free
    electrons). The exact gap differs by O(V0²/E_G), E_G = ħ²(G/2)²/(2m)."""
    order = _count("order", order)
    return 2 * abs(float(pseudopotential_ft(2 * np.pi * order / float(_positive("a", a)), V0, w))) / float(a)


def displacement_covariance(chain, T, statistics="quantum"):
    """<u_j u_l> (Å², N x N) of the internal displacements: Σ_m e_jm e_lm <Q_m²> (classical or
    Wigner, zero point included). Dense: for N up to a few thousand."""
    E = mode_matrix(_check_chain(chain))
    return (E * mode_variance(chain, T, statistics)) @ E.T


def debye_waller_factor(chain, q, T, statistics="quantum", site=None):
    """e^{-2W(q)} with 2W = q²<u_j²> (1D, docs/model.md; paper Eq. 28 in the Born limit): the coherent
    (Bragg) intensity of a thermal lattice relative to the static one, Gaussian displacements
    (harmonic, classical or Wigner). On the ring <u_j²> is the same at every site (and grows like N:
    (N² - 1) k_BT/(12NK) classically); site: for the open chain (default the middle)."""
    q = _finite("q", q)
    msd = msd_sites(chain, T, statistics)
    site = _site(chain, site)
    out = np.exp(-(q**2) * msd[site])
    return float(out) if out.ndim == 0 else out


def structure_factor(chain, q, T, statistics="quantum"):
    """Harmonic static structure factor of the internal lattice (paper Eq. 29),

        S(q) = <ρ_q ρ_{-q}> = Σ_{jl} e^{-iq(ξ_j - ξ_l)} exp(-q²<(u_j - u_l)²>/2),   ξ_j = j a,

    exact for Gaussian displacements (classical, or Wigner/quantum: the u_j commute at equal
    times, so <e^{-iq(u_j - u_l)}> = e^{-q²<(u_j-u_l)²>/2}). S(q) = N + (coherent and correlated
    parts); at q = G on the ring S = e^{-2W} Σ_{jl} e^{G²<u_j u_l>} >= N² e^{-2W}. q (1/Å, any
    shape), T (K). O(N) per q for q on the ring's momentum grid 2π/(Na) (translation invariance),
    else O(N²)."""
    q = _finite("q", q)
    C = displacement_covariance(chain, T, statistics)
    msd = np.diag(C)
    N, a = chain.N, chain.a
    on_grid = np.allclose(q * N * a / (2 * np.pi), np.round(q * N * a / (2 * np.pi)), rtol=0, atol=1e-9)
    if chain.boundary == "ring" and on_grid:  # e^{-iqNa} = 1: the sum depends on j - l mod N only
        d = np.arange(N)
        D = 2 * (msd[0] - C[0])  # <(u_0 - u_d)²>
        ph = np.exp(-1j * q[..., None] * d * a) * np.exp(-(q[..., None] ** 2) * D / 2)
        out = N * np.real(np.sum(ph, axis=-1))
    else:
        D = msd[:, None] + msd[None, :] - 2 * C
        xi = np.arange(N) * a
        out = np.array([np.real(np.sum(np.exp(-1j * qq * (xi[:, None] - xi[None, :]) - qq**2 * D / 2)))
                        for qq in q.ravel()]).reshape(q.shape)
    return float(out) if out.ndim == 0 else out


def _born_inputs(kappa, psik0, m_star, t, tol):
    kappa = np.asarray(_finite("kappa", kappa)).ravel()
    psik0 = np.asarray(psik0, dtype=complex).ravel()
    if psik0.shape != kappa.shape:
        raise ValueError(f"psik0 has shape {psik0.shape}: allowed the shape of kappa {kappa.shape}")
    t = float(_nonnegative("t", t))
    m = M_E * float(_positive("m_star", m_star))
    src = np.abs(psik0) ** 2 > tol * np.sum(np.abs(psik0) ** 2)
    return kappa, psik0, t, m, src


def _born_kernel(kappa, src, t, m, Q, inv_2NM):
    """-(i/ħ) e^{-iE(κ')t/ħ} ∫_0^t e^{i(E(κ') - E(κ))t'/ħ} dt', (κ', source κ)."""
    p = HBAR * kappa
    E = p**2 / (2 * m) + (Q - p) ** 2 * inv_2NM
    dE = E[:, None] - E[None, src]
    x = dE * t / (2 * HBAR)
    return -1j / HBAR * np.exp(-1j * E[:, None] * t / HBAR) * t * np.exp(1j * x) * np.sinc(x / np.pi)


def born_amplitude(kappa, psik0, X, V0, w, L, t, m_star=1.0, Q=0.0, inv_2NM=0.0, tol=1e-14):
    """First-order (Born) amplitude a(κ', t) of ψ~(κ', t) for an electron scattered by one frozen
    lattice, the atoms at positions X (Å, the sample's ξ_j + u_j), from ṽ(q)ρ_q:

        a(κ') = -(i/ħ) e^{-iE(κ')t/ħ} Σ_κ [ṽ(κ'-κ) ρ_{κ'-κ}/L] ψ~0(κ) ∫_0^t e^{i(E(κ')-E(κ))t'/ħ} dt',

    ρ_q = Σ_j e^{-iqX_j}, E(κ) = (ħκ)²/(2m) + (Q - ħκ)²·inv_2NM (recoil, 0 = off). ψ~(κ', t) =
    e^{-iE(κ')t/ħ}ψ~0(κ') + a(κ') + O(V0²): the exact first order of time-dependent perturbation
    theory in the whole potential (static periodic part included). kappa: the plane-wave momenta
    (1/Å, e.g. the grid's), psik0 their initial amplitudes (unitary DFT of the grid ψ: the same
    normalisation), L = N a (Å), t (fs), V0 (eV), w (Å); the sum runs over the source κ with
    |ψ~0|² > tol (relative). Returns a (complex, shape of kappa)."""
    kappa, psik0, t, m, src = _born_inputs(kappa, psik0, m_star, t, tol)
    X = np.atleast_1d(_finite("X", X))
    L = float(_positive("L", L))
    q = kappa[:, None] - kappa[None, src]
    ell = q * L / (2 * np.pi)
    if np.allclose(ell, np.round(ell), rtol=0, atol=1e-9):  # the ring's momenta: ρ once per distinct q
        ell = np.round(ell).astype(int)
        lo = ell.min()
        qs = 2 * np.pi * np.arange(lo, ell.max() + 1) / L
        rho = np.exp(-1j * qs[:, None] * X[None, :]).sum(-1)[ell - lo]
    else:
        rho = np.exp(-1j * q[..., None] * X).sum(-1)
    Vq = pseudopotential_ft(q, V0, w) * rho / L
    return np.sum(_born_kernel(kappa, src, t, m, Q, inv_2NM) * Vq * psik0[src], axis=1)


def born_backscatter(kappa, psik0, X, V0, w, L, t, m_star=1.0, Q=0.0, inv_2NM=0.0, tol=1e-14):
    """Σ_{κ'<0} |e^{-iE t/ħ}ψ~0(κ') + a(κ')|²: the packet's mechanical backscattered probability to
    first order in V0 for one frozen sample (``born_amplitude``; the zeroth order is the packet's own
    weight at κ' < 0, ~0 for a forward packet)."""
    a = born_amplitude(kappa, psik0, X, V0, w, L, t, m_star, Q, inv_2NM, tol)
    kap = np.asarray(kappa, float).ravel()
    p = HBAR * kap
    E = p**2 / (2 * M_E * float(m_star)) + (Q - p) ** 2 * inv_2NM
    tot = np.asarray(psik0, complex).ravel() * np.exp(-1j * E * float(t) / HBAR) + a
    return float(np.sum(np.abs(tot[kap < 0]) ** 2))


def born_backscatter_thermal(kappa, psik0, chain, T, V0, w, t, statistics="quantum", m_star=1.0,
                             Q=0.0, inv_2NM=0.0, tol=1e-14):
    """Thermal average of the first-order backscattered probability over harmonic lattice samples,
    from the structure factor:

        <P_b> = Σ_{κ'<0} Σ_κ |ṽ(q)|² S(q)/L² |ψ~0(κ)|² |K(κ', κ)|²,   q = κ' - κ,

    K the time kernel of ``born_amplitude`` and S = ``structure_factor`` (classical or Wigner). Exact
    at first order when the packet's momenta span less than 2π/a: on the ring <ρ_q1 ρ*_q2> = 0 unless
    q1 - q2 is a multiple of 2π/a (the thermal ensemble is invariant under j -> j + 1), so only
    κ1 = κ2 survives (refused otherwise). The zeroth order (the packet's own κ < 0 weight) is
    assumed 0 and refused above tol."""
    kappa, psik0, t, m, src = _born_inputs(kappa, psik0, m_star, t, tol)
    if chain.boundary != "ring":
        raise ValueError(f"chain.boundary={chain.boundary!r}: the thermal Born formula needs boundary='ring'")
    span = kappa[src].max() - kappa[src].min()
    if span >= 2 * np.pi / chain.a:
        raise ValueError(f"psik0 spans {span:.4g} 1/Å of momenta: allowed < 2π/a = {2 * np.pi / chain.a:.4g} 1/Å")
    if np.sum(np.abs(psik0[kappa < 0]) ** 2) > tol:
        raise ValueError("psik0 has weight at κ < 0: allowed a forward packet (weight <= tol)")
    back = kappa < 0
    q = kappa[back][:, None] - kappa[None, src]
    S = structure_factor(chain, q, T, statistics)
    K = _born_kernel(kappa, src, t, m, Q, inv_2NM)[back]
    L = chain.N * chain.a
    return float(np.sum(np.abs(pseudopotential_ft(q, V0, w)) ** 2 * S / L**2 * np.abs(psik0[src]) ** 2 * np.abs(K) ** 2))


def laguerre_element(n_final, n_initial, kappa):
    """|<n'|e^{iκX}|n>|² for one oscillator, X = a + a† (oscillator units: Q = ℓX, ℓ = √(ħ/(2Mω)),
    so κ = qℓ for e^{iqQ}), closed form (displacement operator D(iκ)):

        |<n'|e^{iκX}|n>|² = (n_<!/n_>!) κ^{2|Δ|} e^{-κ²} [L_{n_<}^{(|Δ|)}(κ²)]²,   Δ = n' - n,

    n_< = min(n, n'), L^{(α)} the generalised Laguerre polynomial. Δ = 0 gives the Huang-Rhys
    e^{-λ}L_n(λ)², λ = κ². In the Born limit of one quantum mode the Δn-resolved rates are
    proportional to it. n_final, n_initial: integers >= 0 (arrays broadcast); kappa real."""
    nf = np.asarray(n_final)
    ni = np.asarray(n_initial)
    if not (np.issubdtype(nf.dtype, np.integer) and np.issubdtype(ni.dtype, np.integer)) or np.any(nf < 0) or np.any(ni < 0):
        raise ValueError(f"n_final={n_final!r}, n_initial={n_initial!r}: allowed integers >= 0")
    lam = _finite("kappa", kappa) ** 2
    lo, hi = np.minimum(nf, ni), np.maximum(nf, ni)
    d = hi - lo
    logpre = special.gammaln(lo + 1) - special.gammaln(hi + 1) + d * np.log(np.where(lam > 0, lam, 1.0)) - lam
    Lg = special.eval_genlaguerre(lo, d, lam)
    out = np.where((lam == 0) & (d > 0), 0.0, np.exp(logpre) * Lg**2)
    return float(out) if out.ndim == 0 else out


def _laguerre_pair_log(x, y, nbar):
    """log Σ_n p_n e^{-(x+y)/2} L_n(x) L_n(y) for a thermal mode (Hille-Hardy):
    -(x + y)(n̄ + 1/2) + log I_0(2√(xy n̄(n̄+1)))."""
    z = 2 * np.sqrt(x * y * nbar * (nbar + 1))
    return -(x + y) * (nbar + 0.5) + np.log(special.i0e(z)) + z


def occupation_diagonal_fraction(chain, q, T, basis="running"):
    """Lattice-summed occupation-diagonal fraction (paper Eq. 30 with Σ_j kept, quantum lattice):

        f(q) = Σ_{n} p_n |<n|ρ_q|n>|² / <ρ_q ρ_{-q}>_T,   ρ_q = Σ_j e^{-iq(ξ_j + u_j)},

    {n} the Fock states of the internal modes in the chosen basis, p_n thermal (Bose-Einstein).
    Each mode contributes <n|e^{-iq e_jm ℓ_m X_m}|n> = e^{-λ/2} L_n(λ), λ_jm = q² e_jm² ħ/(2Mω_m),
    and the thermal sum of L_n(x)L_n(y) is Hille-Hardy's, so

        numerator = Σ_{jl} e^{-iq(ξ_j - ξ_l)} Π_m exp(-(λ_jm + λ_lm)(n̄_m + 1/2)) I_0(2√(λ_jm λ_lm n̄_m(n̄_m+1))).

    basis 'standing': the real modes of wow.lattice (open chain or ring; O(N³)). 'running' (ring):
    the ±q running waves, for which |α_jm|² = q²ħ/(2NMω_m) is the same for every atom j, so
    <n|ρ_q|n> = (Σ_j e^{-iqξ_j}) Π_m e^{-λ_m/2} L_{n_m}(λ_m): zero unless q is a reciprocal lattice
    vector G (the atoms' phases cancel), and at q = G the numerator is N² Π_m e^{-λ_m(2n̄+1)}
    I_0(2λ_m √(n̄(n̄+1))). The denominator is ``structure_factor`` (quantum). q (1/Å, scalar or
    array), T >= 0 (K)."""
    _check_chain(chain)
    q = _finite("q", q)
    T = float(_nonnegative("T", T))
    if basis not in ("standing", "running"):
        raise ValueError(f"basis={basis!r}: allowed 'standing' or 'running'")
    if basis == "running" and chain.boundary != "ring":
        raise ValueError("basis='running' needs boundary='ring' (the open chain's modes are standing waves)")
    N, a = chain.N, chain.a
    w = mode_frequencies(chain)
    nbar = occupations(chain, T)
    ell2 = HBAR / (2 * chain.mass_ev * w)
    xi = np.arange(N) * a
    qs = np.atleast_1d(q).ravel()
    num = np.empty(qs.size)
    if basis == "running":
        for i, qq in enumerate(qs):
            lam = qq**2 * ell2 / N
            phase_sum = np.sum(np.exp(-1j * qq * xi))
            num[i] = np.abs(phase_sum) ** 2 * np.exp(np.sum(_laguerre_pair_log(lam, lam, nbar)))
    else:
        E2 = mode_matrix(chain) ** 2  # (N, modes)
        for i, qq in enumerate(qs):
            lam = qq**2 * E2 * ell2  # (N, modes)
            acc = 0.0
            for j in range(N):  # one row of (j, l) pairs at a time: O(N x modes) memory
                logf = np.sum(_laguerre_pair_log(lam[j][None, :], lam, nbar[None, :]), axis=-1)
                acc += np.real(np.sum(np.exp(-1j * qq * (xi[j] - xi) + logf)))
            num[i] = acc
    out = (num / np.atleast_1d(structure_factor(chain, qs, T, "quantum"))).reshape(q.shape)
    return float(out) if out.ndim == 0 else out


def elastic_fractions(chain, q, T):
    """Side by side at momentum transfer q (1/Å), quantum lattice at T (K): 'debye_waller'
    e^{-2W} = e^{-q²<u_j²>} (paper Eq. 31, 1D); 'huang_rhys_site' the occupation-diagonal fraction of
    one site's e^{iqu_j} (``huang_rhys_fraction``, standing modes; a single site's |e^{iqu}|² = 1
    needs no denominator); 'lattice_standing' and, on the ring, 'lattice_running' Eq. 30 with Σ_j
    kept (``occupation_diagonal_fraction``): in the running basis 0 unless q is a multiple of 2π/a."""
    out = {
        "debye_waller": debye_waller_factor(chain, q, T, "quantum"),
        "huang_rhys_site": huang_rhys_fraction(chain, q, T),
        "lattice_standing": occupation_diagonal_fraction(chain, q, T, "standing"),
    }
    if chain.boundary == "ring":
        out["lattice_running"] = occupation_diagonal_fraction(chain, q, T, "running")
    return out


# --------------------------------------------------------------------------------------------
# Recoil in the density-density model (Lee-Low-Pines sector Q = p + P_R: the CM takes every change
# of the electron's mechanical momentum p). A Bloch state φ_{n,k} = Σ_l C_l e^{i(k+G_l)s} carries
# <p> = m v_n(k) (Hellmann-Feynman), and its components sit at p = ħ(k + G_l): reflecting it to
# φ_{n,-k} (C_l(-k) = C_{-l}(k)* for the even potential) hands the CM 2 m v_n(k) on average, made of
# the normal part ħ·2k (the final component p = -ħk) and Umklapp parts ħ(2k - G) (p = ħ(G - k) > 0:
# a backward-moving Bloch electron whose plane-wave component still moves forward).
# --------------------------------------------------------------------------------------------
def bloch_mechanical_momentum(k, V0, w, a, m_star=1.0, band=0, n_G=24):
    """<φ_{n,k}|p|φ_{n,k}> = m v_n(k) (eV·fs/Å) of the static lattice's Bloch state of band ``band`` at
    crystal momentum k (1/Å, any shape), from the central equation (``central_velocity``). ħk for
    V0 = 0 (band 0, |k| < π/a); 0 at the zone edge (a standing wave)."""
    band = _count("band", band, low=0)
    v = central_velocity(k, V0, w, a, m_star, n_G)
    return M_E * float(m_star) * v[..., band]


def bloch_umklapp_weight(k, V0, w, a, m_star=1.0, band=0, n_G=24):
    """Σ_{l: k + G_l has the sign opposite to k} |C_l(k)|²: the weight of the Bloch state φ_{n,k} in
    plane waves moving against k (1/Å, any shape, k != 0). For a packet at k0 > 0 reflected to -k0
    this is the share of the reflected weight whose CM momentum change is ħ(2k0 - G_l) (Umklapp: the
    electron's mechanical momentum stays positive) instead of the normal ħ·2k0 (V0 -> 0: 0)."""
    k = _finite("k", k)
    if np.any(k == 0):
        raise ValueError(f"k={_show(k)}: allowed k != 0 (the direction of k defines 'against')")
    band = _count("band", band, low=0)
    _, C, kap = central_equation(k, V0, w, a, m_star, n_G)
    against = (np.sign(kap) * np.sign(k)[..., None]) < 0
    out = np.sum(np.where(against, np.abs(C[..., :, band]) ** 2, 0.0), axis=-1)
    return float(out) if out.ndim == 0 else out


def continuum_recoil_energy(k, P, N, M_amu, V0, w, a, m_star=1.0, band=0, n_G=24):
    """Recoil energy (eV) of reflecting the Bloch state (band, k) to (band, -k) on the static ring of
    N atoms of mass M_amu with CM momentum P (eV·fs/Å) before the reflection, in the sector
    Q = P + p_k (p_k = m v_n(k), ``bloch_mechanical_momentum``):

        ΔE = Δ<(Q - p)²>/(2NM) = 2 p_k (P + p_k)/(NM),

    exact for the Bloch states (the components' Σ_l |C_l|²(Q ∓ ħ(k+G_l))² differ by 4Q p_k): the
    chain's A8 (``recoil_energy``) with ħk replaced by the mechanical momentum m v_n(k); zero at
    P = -p_k (A7's analogue). Broadcasts over k and P."""
    P = _finite("P", P)
    N = _count("N", N)
    M = mass_ev(float(_positive("M_amu", M_amu)))
    p = bloch_mechanical_momentum(k, V0, w, a, m_star, band, n_G)
    return 2.0 * p * (P + p) / (N * M)


# --------------------------------------------------------------------------------------------
# Eq. 30 and its single-site cousins for a chosen set of quantum modes (the simulation's own):
# the other internal modes held at u = 0 (QuantumLattice(others='absent')), the thermal Fock states
# drawn as wow.lattice.sample_fock draws them, optionally clipped at n_max as the quantum backend
# clips them (wow.dynamics.quantum.Quantum.clip)
# --------------------------------------------------------------------------------------------
def _quantum_modes(chain, modes, basis):
    _check_chain(chain)
    N = chain.N
    modes = tuple(modes)
    if not modes or len(set(modes)) != len(modes) or any(
            isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 1 <= j <= N - 1 for j in modes):
        raise ValueError(f"modes={modes!r}: allowed distinct integers 1..{N - 1} (at least one)")
    if basis not in ("standing", "running"):
        raise ValueError(f"basis={basis!r}: allowed 'standing' or 'running'")
    modes = tuple(sorted(int(j) for j in modes))
    if basis == "running":
        if chain.boundary != "ring":
            raise ValueError("basis='running' needs boundary='ring' (the open chain's modes are standing waves)")
        lonely = [j for j in modes if 2 * j != N and N - j not in modes]
        if lonely:
            raise ValueError(f"modes={modes!r}: basis='running' needs complete cos/sin pairs (j, N-j); {lonely} lack theirs")
    return modes


def _n_max_of(modes, n_max):
    if n_max is None:
        return None
    nm = tuple(n_max) if isinstance(n_max, (tuple, list, np.ndarray)) else (n_max,) * len(modes)
    if len(nm) != len(modes) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in nm):
        raise ValueError(f"n_max={n_max!r}: allowed None, an integer >= 0 or one per mode ({len(modes)})")
    return tuple(int(v) for v in nm)


def fock_distribution(chain, T, modes, basis="standing", n_max=None):
    """The thermal Fock states of the quantum ``modes`` as wow.run draws them: (states (K, m) int,
    p (K,)), axes in increasing mode order. Each axis' occupation is geometric with Bose-Einstein
    mean n̄_j (wow.lattice.sample_fock), then clipped as the quantum backend clips it: every axis to
    its n_max, and in the running basis, where axis j of a pair (j, N-j) holds n_+ and axis N-j
    holds n_-, n_- to n_max - n_+. n_max (an int or one per mode) is required: the states enumerated
    are those of the truncated basis. T = 0: the vacuum."""
    modes = _quantum_modes(chain, modes, basis)
    nm = _n_max_of(modes, n_max)
    if nm is None:
        raise ValueError("n_max=None: fock_distribution enumerates the truncated basis; give n_max")
    T = float(_nonnegative("T", T))
    nbar = occupations(chain, T)[np.array(modes) - 1]
    r = nbar / (1 + nbar)  # e^{-ħω/k_BT}

    def clipped(ri, top):  # P(n = k), k = 0..top, of a geometric variable clipped at top
        k = np.arange(top + 1)
        p = (1 - ri) * ri**k
        p[top] = ri**top
        return p

    states = np.indices(tuple(v + 1 for v in nm)).reshape(len(modes), -1).T
    p = np.ones(len(states))
    partner = {}
    if basis == "running":
        ax = {j: i for i, j in enumerate(modes)}
        partner = {ax[chain.N - j]: ax[j] for j in modes if 2 * j < chain.N}  # n_- axis -> its n_+ axis
    for i in range(len(modes)):
        if i in partner:  # n_- given n_+: clipped at n_max - n_+ (the backend's running-basis box)
            top = nm[partner[i]] - states[:, partner[i]]
            pk = np.array([clipped(r[i], int(t))[min(n, int(t))] if n <= t else 0.0
                           for n, t in zip(states[:, i], top)])
            p = p * pk
        else:
            p = p * clipped(r[i], nm[i])[states[:, i]]
    keep = p > 0
    return states[keep], p[keep]


def _mode_lambdas(chain, q, modes, basis):
    """Per mode m: ℓ_m² = ħ/(2Mω_m) and the site amplitudes: standing E_jm (N, m); running 1/√N
    amplitude with crystal momentum k_m (every axis of a running pair, and the N/2 mode)."""
    w = mode_frequencies(chain)[np.array(modes) - 1]
    ell2 = HBAR / (2 * chain.mass_ev * w)
    E = mode_matrix(chain)[:, np.array(modes) - 1]
    kq = 2 * np.pi * np.minimum(np.array(modes), chain.N - np.array(modes)) / (chain.N * chain.a)
    return ell2, E, kq


def _diag_log(lam, n):
    """log|e^{-λ/2} L_n(λ)| and its sign, elementwise (λ >= 0, n integers)."""
    L = special.eval_laguerre(n, lam)
    return -lam / 2 + np.log(np.maximum(np.abs(L), 1e-300)), np.sign(L)


def occupation_diagonal_fraction_modes(chain, q, T, modes, basis="running", n_max=None):
    """Eq. 30 with Σ_j kept for the quantum ``modes`` only (the other internal modes at u = 0, as in
    a wow.run with QuantumLattice(modes, others='absent')):

        f(q) = Σ_n p_n |<n|ρ_q|n>|² / Σ_n p_n <n|ρ_q† ρ_q|n>,   ρ_q = Σ_j e^{-iq(ξ_j + u_j)},

    {n} the Fock states of these modes in ``basis``. Per state, exact (untruncated operators):
    <n|ρ_q|n> = Σ_j e^{-iqξ_j} Π_m e^{-λ_jm/2} L_{n_m}(λ_jm) and <n|ρ_q†ρ_q|n> = Σ_{jl} e^{-iq(ξ_j-ξ_l)}
    Π_m e^{-μ_jlm/2} L_{n_m}(μ_jlm), with standing λ_jm = q²E_jm²ℓ_m², μ_jlm = q²(E_jm - E_lm)²ℓ_m²
    and running λ_m = q²ℓ_m²/N (the same at every atom, so <n|ρ_q|n> = 0 unless q is a multiple
    of 2π/a), μ_jlm = 2q²ℓ_m²(1 - cos k_m(ξ_j - ξ_l))/N; ℓ_m² = ħ/(2Mω_m).
    n_max None: p_n Bose-Einstein over all n, in closed form (Hille-Hardy; the denominator is the
    Gaussian structure factor of these modes); n_max given: p_n the simulation's clipped draws
    (``fock_distribution``), summed state by state. q (1/Å, scalar or array), T >= 0 (K)."""
    modes = _quantum_modes(chain, modes, basis)
    nm = _n_max_of(modes, n_max)
    q = _finite("q", q)
    T = float(_nonnegative("T", T))
    N, a = chain.N, chain.a
    xi = np.arange(N) * a
    d = xi[:, None] - xi[None, :]
    ell2, E, kq = _mode_lambdas(chain, 0.0, modes, basis)
    nbar = occupations(chain, T)[np.array(modes) - 1]
    if basis == "standing":
        dE2 = (E[:, None, :] - E[None, :, :]) ** 2  # (N, N, m)
    else:
        dE2 = 2 * (1 - np.cos(kq[None, None, :] * d[..., None])) / N
    qs = np.atleast_1d(q).ravel()
    out = np.empty(qs.size)
    if nm is not None:
        states, p = fock_distribution(chain, T, modes, basis, nm)
    for i, qq in enumerate(qs):
        ph = np.exp(-1j * qq * d)
        mu = qq**2 * dE2 * ell2  # (N, N, m)
        lam = qq**2 * ell2 * (E**2 if basis == "standing" else np.full((N, len(modes)), 1.0 / N))  # (N, m)
        if nm is None:
            den = np.real(np.sum(ph * np.exp(-np.sum(mu * (nbar + 0.5), axis=-1))))
            if basis == "running":
                num = np.abs(np.sum(np.exp(-1j * qq * xi))) ** 2 * np.exp(np.sum(_laguerre_pair_log(lam[0], lam[0], nbar)))
            else:
                logf = np.sum(_laguerre_pair_log(lam[:, None, :], lam[None, :, :], nbar), axis=-1)
                num = np.real(np.sum(ph * np.exp(logf)))
        else:
            num = den = 0.0
            for n, pn in zip(states, p):
                lg, sg = _diag_log(lam, n[None, :])  # (N, m)
                diag = np.sum(np.exp(-1j * qq * xi) * np.prod(sg, -1) * np.exp(np.sum(lg, -1)))
                lm, sm = _diag_log(mu, n[None, None, :])
                num += pn * np.abs(diag) ** 2
                den += pn * np.real(np.sum(ph * np.prod(sm, -1) * np.exp(np.sum(lm, -1))))
        out[i] = num / den
    out = out.reshape(q.shape)
    return float(out) if out.ndim == 0 else out


def _site_lambdas(chain, q, T, modes, site, basis, n_max):
    """Checked inputs of the single-site functions below: (modes, n_max, T, λ (..., m)) with
    λ_m = q²E_sm²ℓ_m² (standing) or q²ℓ_m²/N (running) at site s (default N//2)."""
    modes = _quantum_modes(chain, modes, basis)
    nm = _n_max_of(modes, n_max)
    q = _finite("q", q)
    T = float(_nonnegative("T", T))
    N = chain.N
    site = _site(chain, site)
    ell2, E, _ = _mode_lambdas(chain, 0.0, modes, basis)
    e2 = E[site] ** 2 if basis == "standing" else np.full(len(modes), 1.0 / N)
    lam = q[..., None] ** 2 * e2 * ell2
    return modes, nm, T, lam


def huang_rhys_fraction_modes(chain, q, T, modes, site=None, basis="standing", n_max=None):
    """Single-site occupation-diagonal fraction Σ_n p_n |<n|e^{-iqu_s}|n>|² of site s for the
    quantum ``modes`` only (the paper's Eq. 30 for one atom, Table I's quantity, with the
    simulation's modes): Π_m exp(-λ_m(2n̄_m + 1)) I_0(2λ_m sqrt(n̄_m(n̄_m + 1))) for Bose-Einstein
    p_n (n_max None), or the sum over the clipped draws (``fock_distribution``), λ_m = q²E_sm²ℓ_m²
    (standing) or q²ℓ_m²/N (running). site: default N//2."""
    modes, nm, T, lam = _site_lambdas(chain, q, T, modes, site, basis, n_max)
    if nm is None:
        nbar = occupations(chain, T)[np.array(modes) - 1]
        out = np.exp(np.sum(_laguerre_pair_log(lam, lam, nbar), axis=-1))
    else:
        states, p = fock_distribution(chain, T, modes, basis, nm)
        lg, _ = _diag_log(lam[..., None, :], states)  # (..., K, m)
        out = np.sum(p * np.exp(2 * np.sum(lg, -1)), axis=-1)
    return float(out) if np.ndim(out) == 0 else out


def debye_waller_factor_modes(chain, q, T, modes, site=None, basis="standing", n_max=None):
    """|<e^{-iqu_s}>_T|² of site s from the quantum ``modes`` only: e^{-2W} with
    2W = q² Σ_m E_sm² ℓ_m² (2n̄_m + 1) for Bose-Einstein p_n (n_max None; Gaussian), or
    |Σ_n p_n Π_m e^{-λ_m/2} L_{n_m}(λ_m)|² over the clipped draws (``fock_distribution``), the
    coherent (Bragg) intensity factor of Eq. 28 for this ensemble. site: default N//2."""
    modes, nm, T, lam = _site_lambdas(chain, q, T, modes, site, basis, n_max)
    if nm is None:
        nbar = occupations(chain, T)[np.array(modes) - 1]
        out = np.exp(-np.sum(lam * (2 * nbar + 1), axis=-1))
    else:
        states, p = fock_distribution(chain, T, modes, basis, nm)
        lg, sg = _diag_log(lam[..., None, :], states)
        out = np.sum(p * np.prod(sg, -1) * np.exp(np.sum(lg, -1)), axis=-1) ** 2
    return float(out) if np.ndim(out) == 0 else out
