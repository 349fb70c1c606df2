"""Analytic references (plain numpy): what the simulation is held against.

Units as everywhere in wow: energy eV, length Å, time fs, mass amu (converted with
``wow.units.mass_ev``), temperature K; momenta ħk, P in eV·fs/Å, wavenumbers k, q in 1/Å.

Scattering on a perfect tight-binding chain (MODEL.md, "Electron")
    reflection_probability   exact transfer-matrix R(k) of a finite scatterer (bonds, site energies)
    reflection_bond          one modified bond, closed form
Recoil kinematics (paper Appendix A, Eqs. A6-A8)
    recoil_energy            ΔE = 2ħk(P + ħk)/(NM)                               (A8)
    elastic_cm_momentum      P = -ħk, where k -> -k costs no energy               (A7)
    backscatter_energy_shift exact ε(k') - ε(k) of k -> k' < 0 at fixed total momentum
"""

from __future__ import annotations

import math

import numpy as np

from .units import HBAR, mass_ev


# --------------------------------------------------------------------------------------------
# Input checks (public functions refuse bad input with the parameter, its value and the range)
# --------------------------------------------------------------------------------------------
def _positive(name, value):
    v = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError(f"{name}={_show(value)} is out of range: allowed finite values > 0")
    return v


def _nonnegative(name, value):
    v = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(v)) or np.any(v < 0):
        raise ValueError(f"{name}={_show(value)} is out of range: allowed finite values >= 0")
    return v


def _finite(name, value):
    v = np.asarray(value, dtype=float)
    if not np.all(np.isfinite(v)):
        raise ValueError(f"{name}={_show(value)} must be finite")
    return v


def _count(name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ValueError(f"{name}={value!r} is out of range: allowed integers >= {low}")
    return int(value)


def _forward_k(k, a):
    """k as an array inside the open interval (0, π/a), or a ValueError."""
    kk = np.asarray(k, dtype=float)
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
