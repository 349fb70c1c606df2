"""The background: a harmonic chain, its normal modes, the centre of mass, thermal samples and
exact harmonic motion (docs/model.md, "The lattice" and "Thermal samples").

Conventions
-----------
* Sites n = 0..N-1, x_n = R + n a + u_n with sum_n u_n = 0 exactly: the centre of mass (CM) is
  never part of ``u``. Its momentum P_R is carried separately (``ModeSample.P_R``).
* Internal modes j = 1..N-1 are stored in arrays of length N-1 (index j-1):
  - open:  ω_j = 2 sqrt(K/M) sin(jπ/2N),  e_nj = sqrt(2/N) cos(jπ(n+1/2)/N)   (a DCT-III basis);
  - ring:  ω_j = 2 sqrt(K/M) |sin(πj/N)|, e_nj = sqrt(2/N) cos(2πjn/N) for j < N/2,
           (-1)^n/sqrt(N) for j = N/2, sqrt(2/N) sin(2πjn/N) for j > N/2 (real standing waves;
           j and N-j are the cos/sin pair of one |q| = 2πj/(Na)).
* Mode coordinates Q_j in Å, mode momenta P_j = M dQ_j/dt in eV·fs/Å, site velocities in Å/fs.
* Transforms between modes and sites use the DCT (open) and the real FFT (ring): O(N log N),
  never a dense N x N matrix (``mode_matrix`` exists for tests and small N only).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.scipy import fft as jfft

from .units import HBAR, KB, mass_ev

BOUNDARIES = ("open", "ring")
STATISTICS = ("classical", "quantum")


@dataclasses.dataclass(frozen=True)
class Chain:
    """A monatomic harmonic chain.

    N: number of atoms (>= 3); mass: atomic mass (amu); spring: K (eV/Å²); a: spacing (Å);
    boundary: 'open' (free ends, N-1 springs, the paper's isolated chain) or 'ring' (N springs).
    """

    N: int = 256
    mass: float = 63.546
    spring: float = 3.32
    a: float = 2.556
    boundary: str = "open"

    @property
    def mass_ev(self) -> float:
        return mass_ev(self.mass)

    @property
    def n_bonds(self) -> int:
        return self.N if self.boundary == "ring" else self.N - 1

    @property
    def omega_max(self) -> float:
        """Largest possible phonon angular frequency 2 sqrt(K/M) (1/fs)."""
        return 2.0 * math.sqrt(self.spring / self.mass_ev)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ModeSample:
    """One lattice sample in normal-mode coordinates: Q (Å), P (eV·fs/Å), both (N-1,), and the CM
    momentum P_R (eV·fs/Å, scalar)."""

    Q: jax.Array
    P: jax.Array
    P_R: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class SiteState:
    """Internal displacements u (Å) and velocities v (Å/fs) on the sites, each (N,) for one sample
    or (B, N) for a block of samples (sites last), summing to zero over the sites."""

    u: jax.Array
    v: jax.Array


# --------------------------------------------------------------------------------------------
# Normal modes
# --------------------------------------------------------------------------------------------
def mode_shape(chain: Chain) -> np.ndarray:
    """ω_j/ω_max for j = 1..N-1: sin(jπ/2N) (open), |sin(πj/N)| (ring). Fixed by N and the boundary
    alone, so ω_j = 2 sqrt(K/M) x this for any (traced) K/M."""
    j = np.arange(1, chain.N)
    if chain.boundary == "open":
        return np.sin(j * np.pi / (2 * chain.N))
    return np.abs(np.sin(np.pi * j / chain.N))


def mode_frequencies(chain: Chain) -> np.ndarray:
    """ω_j for j = 1..N-1 (1/fs), docs/model.md formulas."""
    return chain.omega_max * mode_shape(chain)


def traced_frequencies(chain: Chain, omega2, dtype=jnp.float64):
    """ω_j (1/fs) from a traced K/M = omega2 (1/fs²), in jnp: what d/dspring and d/dmass of the
    thermal widths go through (``mode_frequencies`` is numpy from the static chain)."""
    return 2.0 * jnp.sqrt(omega2) * jnp.asarray(mode_shape(chain), dtype)


def mode_matrix(chain: Chain) -> np.ndarray:
    """Dense e_{nj}, shape (N, N-1): column j-1 is mode j. For tests and small chains."""
    N = chain.N
    n = np.arange(N)[:, None]
    j = np.arange(1, N)[None, :]
    if chain.boundary == "open":
        return np.sqrt(2.0 / N) * np.cos(j * np.pi * (n + 0.5) / N)
    e = np.where(j < N / 2, np.sqrt(2.0 / N) * np.cos(2 * np.pi * j * n / N),
                 np.sqrt(2.0 / N) * np.sin(2 * np.pi * j * n / N))
    if N % 2 == 0:
        e[:, N // 2 - 1] = (-1.0) ** np.arange(N) / np.sqrt(N)
    return e


def dynamical_matrix(chain: Chain) -> np.ndarray:
    """D = (K/M) x graph Laplacian of the springs (1/fs²); its eigenvalues are 0 (the CM) and ω_j²."""
    N = chain.N
    L = np.zeros((N, N))
    bonds = [(n, n + 1) for n in range(N - 1)]
    if chain.boundary == "ring":
        bonds.append((N - 1, 0))
    for p, q in bonds:
        L[p, p] += 1
        L[q, q] += 1
        L[p, q] -= 1
        L[q, p] -= 1
    return chain.spring / chain.mass_ev * L


def modes_to_sites(chain: Chain, X: jax.Array) -> jax.Array:
    """u_n = sum_j e_nj X_j for X of shape (N-1,) (no CM component)."""
    N = chain.N
    if chain.boundary == "open":
        full = jnp.concatenate([jnp.zeros((1,), X.dtype), X])
        return jfft.idct(full, type=2, norm="ortho")
    h = (N - 1) // 2  # number of cos/sin pairs
    cos_part, sin_part = X[:h], X[N - 1 - h:][::-1]  # sin mode N-j pairs with cos mode j
    c = jnp.sqrt(N / 2.0) * (cos_part + 1j * sin_part)
    pieces = [jnp.zeros((1,), c.dtype), c]
    if N % 2 == 0:
        pieces.append(jnp.sqrt(float(N)) * X[h:h + 1].astype(c.dtype))
    return jnp.fft.irfft(jnp.concatenate(pieces), n=N).astype(X.dtype)


def sites_to_modes(chain: Chain, u: jax.Array) -> jax.Array:
    """X_j = sum_n e_nj u_n (the projection drops any CM component of u)."""
    N = chain.N
    if chain.boundary == "open":
        return jfft.dct(u, type=2, norm="ortho")[1:]
    h = (N - 1) // 2
    c = jnp.fft.rfft(u)
    cos_part = jnp.sqrt(2.0 / N) * c[1:h + 1].real
    sin_part = jnp.sqrt(2.0 / N) * c[1:h + 1].imag
    pieces = [cos_part]
    if N % 2 == 0:
        pieces.append(c[N // 2:N // 2 + 1].real / jnp.sqrt(float(N)))
    pieces.append(sin_part[::-1])  # j > N/2: sum u sin(2πjn/N) = Im rfft(u)_{N-j}
    return jnp.concatenate(pieces).astype(u.dtype)


# --------------------------------------------------------------------------------------------
# Thermal samplers
# --------------------------------------------------------------------------------------------
def thermal_factor(omega, T):
    """coth(ħω/2k_BT), the quantum enhancement of the zero-point variance; 1 at T = 0.

    Differentiable in T, T = 0 included (d/dT = 0 there, as coth's approach to 1 is exponentially
    flat): the branch not taken is evaluated at a harmless T = 1 K, since a where() still sends a zero
    cotangent through it and 0 x inf (from a clamped tiny T) would poison reverse mode with NaN."""
    safe_T = jnp.where(T > 0, T, 1.0)
    x = HBAR * omega / (2.0 * KB * safe_T)
    return jnp.where(T > 0, 1.0 / jnp.tanh(x), 1.0)


def mode_variances(chain: Chain, T, statistics: str, dtype=jnp.float64, *, omega2=None, mass=None):
    """Analytic <Q_j²> (Å²) and <P_j²> ((eV·fs/Å)²) of the internal modes (docs/model.md).

    omega2 (K/M, 1/fs²) and mass (M, eV·fs²/Å²): traced values to use instead of the chain's (both or
    neither), so the widths are differentiable in the spring constant and the mass."""
    w = jnp.asarray(mode_frequencies(chain), dtype) if omega2 is None else traced_frequencies(chain, omega2, dtype)
    M = chain.mass_ev if mass is None else mass
    if statistics == "classical":
        kT = KB * T
        return kT / (M * w**2), M * kT * jnp.ones_like(w)
    if statistics == "quantum":
        c = thermal_factor(w, T)
        return HBAR / (2 * M * w) * c, HBAR * M * w / 2 * c
    raise ValueError(f"statistics={statistics!r}: allowed 'classical' or 'quantum'")


def cm_momentum_std(chain: Chain, T, mass=None):
    """σ_P = sqrt(N M k_B T) (paper Eq. A10), eV·fs/Å (mass: a traced M in eV·fs²/Å², else the chain's)."""
    return jnp.sqrt(chain.N * (chain.mass_ev if mass is None else mass) * KB * T)


def sample_modes(key, chain: Chain, T, statistics: str, dtype=jnp.float64, *, omega2=None,
                 mass=None) -> ModeSample:
    """One thermal sample of the internal modes (``classical`` or ``quantum`` Wigner, zero point
    included) and of the CM momentum P_R ~ N(0, N M k_B T). vmap over ``key`` for an ensemble.

    Reparameterised: fixed standard normals (from ``key``) scaled by the thermal widths, so jax.grad
    in T at a fixed key is the pathwise derivative. The classical sample and P_R scale as sqrt(T):
    their d/dT is infinite at T = 0 (callers that differentiate refuse T = 0); the Wigner internal
    modes have d/dT = 0 there. omega2, mass: traced K/M and M instead of the chain's (mode_variances),
    so the same normals are scaled by widths that are differentiable in the spring and the mass."""
    kq, kp, kr = jax.random.split(key, 3)
    varQ, varP = mode_variances(chain, T, statistics, dtype, omega2=omega2, mass=mass)
    # Standard normals are drawn in float32 whatever the working dtype, so that a float32 and a
    # float64 run of the same seed see the same thermal samples (to float32 rounding); the
    # float32 draw truncates the Gaussian at ~5.3σ, a 1e-7 effect on thermal moments.
    z = lambda k, shape: jax.random.normal(k, shape, jnp.float32).astype(dtype)
    Q = jnp.sqrt(varQ) * z(kq, varQ.shape)
    P = jnp.sqrt(varP) * z(kp, varP.shape)
    P_R = jnp.asarray(cm_momentum_std(chain, T, mass), dtype) * z(kr, ())
    return ModeSample(Q=Q, P=P, P_R=P_R)


def sample_fock(key, chain: Chain, T) -> jax.Array:
    """Occupations n_j ~ (1 - e^{-x}) e^{-n x}, x = ħω_j/k_BT (int32, (N-1,)); all zero at T = 0."""
    w = jnp.asarray(mode_frequencies(chain))
    x = HBAR * w / (KB * jnp.maximum(T, 1e-300))
    u = jax.random.uniform(key, w.shape, minval=jnp.finfo(w.dtype).tiny, maxval=1.0)
    n = jnp.floor(-jnp.log(u) / x)
    return jnp.where(T > 0, n, 0).astype(jnp.int32)


def fock_mean(chain: Chain, T) -> np.ndarray:
    """Bose-Einstein n̄_j = 1/(e^x - 1)."""
    x = HBAR * mode_frequencies(chain) / (KB * T) if T > 0 else np.inf
    return 1.0 / np.expm1(x)


def to_sites(chain: Chain, s: ModeSample, mass=None) -> SiteState:
    """Site displacements and velocities of a mode sample (the CM excluded: sum u = sum v = 0);
    mass: a traced M (eV·fs²/Å²) instead of the chain's."""
    M = chain.mass_ev if mass is None else mass
    return SiteState(u=modes_to_sites(chain, s.Q), v=modes_to_sites(chain, s.P) / M)


# --------------------------------------------------------------------------------------------
# Harmonic motion
# --------------------------------------------------------------------------------------------
def harmonic_motion(chain: Chain, s: ModeSample, t) -> SiteState:
    """Exact u(t), v(t) of a sample in free harmonic motion, from the normal-mode solution
    Q_j(t) = Q_j cos ω_j t + P_j/(Mω_j) sin ω_j t. The CM moves rigidly and is not part of u."""
    w = jnp.asarray(mode_frequencies(chain), s.Q.dtype)
    M = chain.mass_ev
    c, sn = jnp.cos(w * t), jnp.sin(w * t)
    Qt = s.Q * c + s.P / (M * w) * sn
    Pt = s.P * c - M * w * s.Q * sn
    return to_sites(chain, ModeSample(Q=Qt, P=Pt, P_R=s.P_R))


def flow_terms(chain: Chain, h: float, dtype) -> int:
    """Taylor order of ``harmonic_flow`` for step h: smallest m with (ω_max|h|)^m/m! below
    eps/10 of the dtype, so the truncation is below rounding. Needs ω_max|h| <= 1."""
    x = chain.omega_max * abs(h)
    eps = float(jnp.finfo(dtype).eps) / 10
    m, term = 1, x
    while term > eps and m < 60:
        m += 1
        term *= x / m
    return m


def _laplacian_powers(r: int) -> np.ndarray:
    """Integer stencils of L^j, j = 0..r, on offsets -r..r: (r+1, 2r+1), L = (-1, 2, -1)."""
    out = np.zeros((r + 1, 2 * r + 1))
    out[0, r] = 1
    for j in range(1, r + 1):
        out[j] = 2 * out[j - 1] - np.roll(out[j - 1], 1) - np.roll(out[j - 1], -1)
    return out


def _padded(x, R: int, boundary: str):
    """x with R ghost sites at each end of its site axis (the last; leading axes, e.g. a block of
    samples, ride along): mirrored (free ends) or wrapped (ring). A free end acts as a mirror (the
    ghost repeats the end site, which is exactly L's free-end row, and L keeps that symmetry), so
    every polynomial in L is the same stencil on the mirror-padded array."""
    widths = [(0, 0)] * (x.ndim - 1) + [(R, R)]
    return jnp.pad(x, widths, mode="wrap" if boundary == "ring" else "symmetric")  # repeats when R > N


def _poly_taps(coefs, R: int, dtype):
    """Σ_j coefs[j] L^j (j = 0.., traced coefficients) as (2R+1,) taps on offsets -R..R."""
    B = _laplacian_powers(R)
    return sum(c * jnp.asarray(B[j], dtype) for j, c in enumerate(coefs) if c is not None)


def _apply_taps(taps, xp, r: int, R: int, N: int):
    """The stencil ``taps`` restricted to offsets -r..r (the rest are zero) on the padded xp."""
    return sum(taps[d] * xp[..., d:d + N] for d in range(R - r, R + r + 1))


def _poly_L(x, coefs, boundary: str):
    """Σ_j coefs[j] L^j x as one stencil (one fused pass) along the site axis."""
    R = len(coefs) - 1
    return _apply_taps(_poly_taps(coefs, R, x.dtype), _padded(x, R, boundary), R, R, x.shape[-1])


def harmonic_flow(s: SiteState, h, omega2: float, boundary: str, n_terms: int) -> SiteState:
    """Advance (u, v) by h under H_lat (internal part): exp(hA), A(u, v) = (v, -D u), D = ω² L,
    as its Taylor series of ``n_terms`` terms, i.e. exact harmonic motion to rounding.

    exp(hA) = [[C, S], [-D S, C]] with C = Σ_j (-1)^j (ω²h²)^j L^j/(2j)!, S = h Σ_j (-1)^j
    (ω²h²)^j L^j/(2j+1)!: polynomials in the nearest-neighbour Laplacian, so the whole flow is one
    stencil applied in a single pass (fused by XLA). Each of C, S and -D S is truncated where the
    Taylor sum of n_terms terms ends (C keeps h^(2j) with 2j <= n_terms; S and -D S keep h^(2j+1)
    with 2j+1 <= n_terms), and each stencil has exactly that radius (C: n_terms//2, S:
    (n_terms-1)//2, -D S: one more), so no zero tap is ever computed (the coefficients are traced,
    XLA cannot drop zeros itself). Free ends are mirrors, the ring wraps (``_padded``). D annihilates
    the uniform vector, so sum u and sum v are unchanged (the CM stays out). omega2 = K/M (1/fs²).
    Sites run along the last axis of u and v; leading axes (a block of samples) are independent chains."""
    rc, rs = n_terms // 2, (n_terms - 1) // 2  # highest power of L in C and in S
    R = rs + 1  # -D S has one power more; rc <= rs + 1 always
    x = -omega2 * h * h
    dtype, N = s.u.dtype, s.u.shape[-1]
    # C - 1 (no identity tap): the small increments are summed first and added to u, v last, so
    # the identity is never rounded into a tap (in float32 a rounded 1 + O(ω²h²) tap is a
    # systematic per-step error: measured 2e-4 of u after 1e4 steps, against 4e-6 this way)
    cC1 = _poly_taps([None] + [x ** j / float(math.factorial(2 * j)) for j in range(1, rc + 1)], R, dtype)
    cS = _poly_taps([h * x ** j / float(math.factorial(2 * j + 1)) for j in range(rs + 1)], R, dtype)
    cDS = _poly_taps([None] + [-omega2 * h * x ** j / float(math.factorial(2 * j + 1)) for j in range(rs + 1)], R, dtype)
    up, vp = _padded(s.u, R, boundary), _padded(s.v, R, boundary)
    u_new = s.u + (_apply_taps(cC1, up, rc, R, N) + _apply_taps(cS, vp, rs, R, N))
    v_new = s.v + (_apply_taps(cDS, up, rs + 1, R, N) + _apply_taps(cC1, vp, rc, R, N))
    return SiteState(u=u_new, v=v_new)


# --------------------------------------------------------------------------------------------
# Equal steps: the two-step recurrence of exact harmonic motion
# --------------------------------------------------------------------------------------------
# Exact harmonic motion sampled at equal steps h obeys u(t+h) + u(t-h) = 2 C(h) u(t), C(h) =
# cos(h sqrt(D)) (the flow's C above). Carried in the summed form d = u(t) - u(t-h),
#     d <- d + (2C(h) - 2) u,   u <- u + d,
# one step is ONE stencil of radius n_terms//2 on one array (the flow needs four), and the
# increments are formed directly, so rounding does not pile up as in the raw two-term form. The
# (u, v) at the time halfway between the two carried samples follow exactly from
#     u - d/2 = C(h/2) u(t),   d = 2 S(h/2) v(t),
# by the series of sec z and z/sin z (z = (h/2) sqrt(D)), applied only when the lattice is observed.


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class StepPair:
    """The lattice at equally spaced times: u at the latest time (Å, (N,) or (B, N)) and d = u minus u
    one step earlier (Å)."""

    u: jax.Array
    d: jax.Array


def _series_inverse(coefs, n: int) -> list[float]:
    """The first n coefficients of 1/f for the power series f (coefs[0] = 1)."""
    out = [1.0]
    for j in range(1, n):
        out.append(-sum(coefs[i] * out[j - i] for i in range(1, min(j, len(coefs) - 1) + 1)))
    return out


def pair_start(s: SiteState, h, omega2: float, boundary: str, n_terms: int) -> StepPair:
    """The pair at times t + h/2 and t - h/2 from (u, v) at t: u(t + h/2) = C u + S v, d = 2 S v
    (h/2 series; d formed directly, without the cancellation of a difference)."""
    half = harmonic_flow(s, h / 2, omega2, boundary, n_terms)
    rs = (n_terms - 1) // 2
    x = -omega2 * h * h / 4
    d = _poly_L(s.v, [2 * (h / 2) * x ** j / float(math.factorial(2 * j + 1)) for j in range(rs + 1)], boundary)
    return StepPair(u=half.u, d=d)


def laplacian(x, boundary: str):
    """(L x)_n along the site axis (the last), L = (-1, 2, -1) with free ends (open) or periodic
    (ring). The open chain goes through the bonds, zero-padded (L x)_n = b_{n-1} - b_n with
    b_{-1} = b_{N-1} = 0, which XLA fuses into its consumers (a mirror pad is a concatenate it does
    not)."""
    if boundary == "ring":
        return 2 * x - jnp.roll(x, 1, axis=-1) - jnp.roll(x, -1, axis=-1)
    b = jax.lax.pad(x[..., 1:] - x[..., :-1], jnp.zeros((), x.dtype), [(0, 0, 0)] * (x.ndim - 1) + [(1, 1, 0)])
    return b[..., :-1] - b[..., 1:]


def pair_step(pr: StepPair, h, omega2: float, boundary: str, n_terms: int) -> StepPair:
    """Advance the pair by one step h (the same h as the pair's spacing): d += (2C(h) - 2) u in
    Horner form L(c_1 u + L(c_2 u + ...)), c_j = 2 x^j/(2j)!, x = -ω²h², to the power n_terms//2."""
    d = pr.d + _pair_increment(pr.u, h, omega2, boundary, n_terms)
    return StepPair(u=pr.u + d, d=d)


def _pair_increment(u, h, omega2, boundary: str, n_terms: int):
    """(2C(h) - 2) u in Horner form (``pair_step``)."""
    x = -omega2 * h * h
    return _horner(u, [2 * x ** j / float(math.factorial(2 * j)) for j in range(1, max(1, n_terms // 2) + 1)], boundary)


def _horner(u, coefs, boundary: str):
    """Σ_{j>=1} coefs[j-1] L^j u as L(c_1 u + L(c_2 u + ...)) (no identity term)."""
    acc = None
    for c in coefs[::-1]:
        term = c * u
        acc = laplacian(term if acc is None else term + acc, boundary)
    return acc


def pair_step_back(pr: StepPair, ct: StepPair, ct_read, h, omega2, boundary: str, n_terms: int):
    """The transpose of ``pair_step`` at the pair ``pr`` before it: (the cotangent of pr, the
    per-site statistic whose sum is the cotangent of omega2), from the cotangent ``ct`` of the pair
    after it and ``ct_read``, that of pr.u as read by the electron in the same sub-step (or None).
    d' = d + P u, u' = u + d' with P = 2C(h) - 2 = Σ_j c_j L^j symmetric (free ends and the ring
    both), so with g = ct.d + ct.u: ct_d = g, ct_u = ct.u + P g (+ ct_read), and d c_j/dω² =
    j c_j/ω² gives dL/dω² = Σ_sites u · (Σ_j j c_j/ω² L^j g); dL/dh is 2ω²/h times the same (c_j
    depends on ω²h²). Elementwise, so a run accumulates it per site and sums once at the end."""
    rc = max(1, n_terms // 2)
    x = -omega2 * h * h
    g = ct.d + ct.u
    ct_u = ct.u + _pair_increment(g, h, omega2, boundary, n_terms)
    if ct_read is not None:
        ct_u = ct_u + ct_read
    dc = [2 * j * (-h * h) * x ** (j - 1) / float(math.factorial(2 * j)) for j in range(1, rc + 1)]
    return StepPair(u=ct_u, d=g), pr.u * _horner(g, dc, boundary)


def pair_unstep(pr: StepPair, h, omega2: float, boundary: str, n_terms: int) -> StepPair:
    """The inverse of ``pair_step``: the pair one step h earlier (u - d, then d minus the increment
    at that u), exact up to rounding (reversible gradients run the lattice backwards with it)."""
    u = pr.u - pr.d
    return StepPair(u=u, d=pr.d - _pair_increment(u, h, omega2, boundary, n_terms))


def pair_sites(pr: StepPair, h, omega2: float, boundary: str, n_terms: int) -> SiteState:
    """(u, v) at the time halfway between the pair's two samples (h apart): u = sec(z)(u - d/2),
    v = (1/h)(z / sin z) d, z² = (h²/4) ω² L, each series to n_terms powers of L (z <= ω_max h/2
    <= 1/2, so that is below rounding wherever n_terms is the flow's order for h)."""
    n = max(2, n_terms)
    w = omega2 * h * h / 4  # z² = w L
    cos_c = [(-1) ** j / math.factorial(2 * j) for j in range(n)]
    sinc_c = [(-1) ** j / math.factorial(2 * j + 1) for j in range(n)]
    sec = [c * w ** j for j, c in enumerate(_series_inverse(cos_c, n))]
    z_sin = [c * w ** j / h for j, c in enumerate(_series_inverse(sinc_c, n))]
    return SiteState(u=_poly_L(pr.u - pr.d / 2, sec, boundary), v=_poly_L(pr.d, z_sin, boundary))


# --------------------------------------------------------------------------------------------
# The free lattice as the backends use it
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class ChainFlow:
    """Exact free motion of the harmonic chain (the lattice backends' free lattice): ``flow`` by any
    h (Taylor series of ``n_terms`` terms), and for equal steps the two-step recurrence
    (``recurrence``: pair_start / pair_step / pair_sites). Another free lattice (e.g. independent
    Einstein oscillators) is another class with the same methods and ``recurrence = False``."""

    boundary: str
    n_terms: int
    recurrence = True

    def flow(self, lat: SiteState, h, omega2) -> SiteState:
        return harmonic_flow(lat, h, omega2, self.boundary, self.n_terms)

    def pair_start(self, lat: SiteState, h, omega2) -> StepPair:
        return pair_start(lat, h, omega2, self.boundary, self.n_terms)

    def pair_step(self, pr: StepPair, h, omega2) -> StepPair:
        return pair_step(pr, h, omega2, self.boundary, self.n_terms)

    def pair_sites(self, pr: StepPair, h, omega2) -> SiteState:
        return pair_sites(pr, h, omega2, self.boundary, self.n_terms)

    def pair_unstep(self, pr: StepPair, h, omega2) -> StepPair:
        return pair_unstep(pr, h, omega2, self.boundary, self.n_terms)

    def pair_step_back(self, pr: StepPair, ct: StepPair, ct_read, h, omega2):
        return pair_step_back(pr, ct, ct_read, h, omega2, self.boundary, self.n_terms)
