"""The density-density continuum model (paper §IV-V): one electron on a real-space grid feeling the
atoms of a harmonic ring through a Gaussian pseudopotential, the lattice centre of mass (CM) exact.

Physics (units eV, Å, fs, amu, K; masses inside in eV·fs²/Å², momenta ħκ in eV·fs/Å)
------------------------------------------------------------------------------------
N atoms on a ring of length L = N a at ξ_j = j a + u_j (Σ u_j = 0: internal displacements; the CM R
carries the rest). The electron's coordinate relative to the CM, s = r - R, lives on a periodic grid
of N_s = g N points s_i = i h, h = a/g. In the sector of conserved total momentum Q = p + P_R the
Hamiltonian is, exactly (Lee-Low-Pines),

    H_Q = p²/(2m) + (Q - p)²/(2NM) + V(s),   V(s) = Σ_j v(s - ξ_j - u_j),   m = m* m_e,

with the Gaussian pseudopotential v(x) = V0 exp(-x²/(2w²)), periodised over L, whose Fourier
transform is ṽ(q) = V0 w √(2π) exp(-q²w²/2). "Recoil off" (the clamped lattice, NM -> ∞) drops the
second term; every function takes inv_2NM = 1/(2NM) and recoil off is inv_2NM = 0.

Conventions of the arrays
-------------------------
* The grid axis is LAST, any leading batch axes (samples, phonon DVR points) broadcast: ψ (..., N_s),
  V (..., N_s), displacements u (..., N). FFTs run along the last axis.
* ψ is normalised on the grid, Σ_i |ψ_i|² = 1 (ψ_i = √h ψ(s_i)), and ψ~ = fft(ψ, norm="ortho") is its
  momentum representation on κ = 2π fftfreq(N_s, h) (FFT order), Σ |ψ~|² = 1.
* Grid momenta and crystal momenta: index m of the FFT array is m = r N + c (r = 0..g-1, c = 0..N-1),
  so ``psik.reshape(..., g, N)[..., :, c]`` holds the g components κ = k_c + G of crystal momentum
  k_c = 2πc/L folded into (-π/a, π/a] (``crystal_momenta``). A lattice-periodic potential couples only
  those, which makes the Bloch projections a small g x g matrix per k.
* dtype-generic: float32/complex64 or float64/complex128 follow the dtype of u and ψ; the module never
  flips jax_enable_x64. Static geometry lives in the hashable ``Grid`` (jit-static); the physical
  parameters (V0, w, m, Q, inv_2NM, dt) may be traced (gradients flow through them).

The split-operator step (``strang_step``) is T/2 · V · T/2 (kinetic + recoil phases outside, the
potential once in the middle); see its docstring for why.
"""

from __future__ import annotations

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from ..electron import k_grid
from ..errors import ConfigError
from ..lattice import Chain
from ..transport import antipode_cell, continuum_frame, continuum_sector, displacements
from ..units import HBAR, M_E

PACKETS = ("bloch", "plane")
#: The Gaussian is dropped where it is below TAIL·|V0|: |x| > TAIL_RADIUS·w.
TAIL = 1e-16
TAIL_RADIUS = math.sqrt(2.0 * math.log(1.0 / TAIL))  # 8.5837
#: The grid must resolve v: h <= w/RESOLVE, so ṽ at the grid's Nyquist momentum π/h is
#: below exp(-(π·2.5)²/2) = 4e-14 of ṽ(0) (docs/model.md, "The pseudopotential and its resolution rule").
RESOLVE = 2.5
#: A 'plane' packet's Gaussian momentum amplitude exp(-σ²(κ - k0)²) must be below e^{-36} ~ 2e-16
#: at the grid's Nyquist momentum: σ(π/h - |k0|) >= PACKET_SIGMAS.
PACKET_SIGMAS = 6.0
#: A packet must fit the ring: σ <= L/RING_SIGMAS (its Gaussian is e^{-25} at the antipode).
RING_SIGMAS = 20.0


# --------------------------------------------------------------------------------------------
# Parameters, grid, validation
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Continuum:
    """Static parameters of the density-density model and of its initial packet.

    V0: pseudopotential strength (eV, either sign); w: its width (Å, > 0); g: grid points per lattice
    spacing (integer, h = a/g <= w/2.5); m_star: band mass in units of m_e (> 0).
    packet: 'bloch' (Bloch states of band n0 of the static lattice with Gaussian weights
    exp(-(k - k0)²σ² - i k x0) over the crystal momenta k in (-π/a, π/a], not periodised in k) or
    'plane' (ψ(s) ∝ exp(-(s - x0)²/(4σ²)) e^{i k0 s}, minimum-image distance on the ring);
    n0: band of the 'bloch' packet (0 = lowest); k0: packet momentum (1/Å), None = π/(2a);
    sigma: packet width (Å; |ψ|² has standard deviation σ); x0: packet centre (Å), None = L/2.
    u_max: the largest displacement |u_j| (Å) the potential's windows cover (``make_grid``); None =
    from the run's thermal state (``thermal_u_max``). A run refuses to be silently wrong beyond it:
    a sample whose |u_j| exceeds it at any step gets NaN amplitudes and wow.run warns.
    """

    V0: float = 2.0
    w: float = 0.5
    g: int = 16
    m_star: float = 1.0
    packet: str = "bloch"
    n0: int = 0
    k0: float | None = None
    sigma: float = 25.0
    x0: float | None = None
    u_max: float | None = None

    def mass(self) -> float:
        """m = m* m_e (eV·fs²/Å²)."""
        return self.m_star * M_E

    def packet_k0(self, chain: Chain) -> float:
        return math.pi / (2 * chain.a) if self.k0 is None else float(self.k0)

    def packet_x0(self, chain: Chain) -> float:
        return chain.N * chain.a / 2 if self.x0 is None else float(self.x0)


@dataclasses.dataclass(frozen=True)
class Grid:
    """Static geometry of one run (hashable, so it can be closed over or passed as a jit-static arg).

    N atoms at spacing a (Å), g grid points per spacing; w: the pseudopotential width the windows
    are sized for (Å); each atom's Gaussian is evaluated on the window of cells j - reach .. j + right
    (``cells``; right None = reach, a symmetric window): the potential is exact for |u_j| <= ``u_max``.
    make_grid sizes both sides to the least that covers its u_max: atom j sits at the first point of
    cell j, so its window needs one cell fewer to the right than to the left (one exponential per
    grid point and step fewer than a symmetric window, the same numbers)."""

    N: int
    a: float
    g: int
    w: float
    reach: int
    right: int | None = None

    @property
    def cells(self) -> range:
        """The window cells p (atom j = c - p seen from cell c), left to right."""
        return range(-self.reach, (self.reach if self.right is None else self.right) + 1)

    @property
    def n_s(self) -> int:
        return self.N * self.g

    @property
    def h(self) -> float:
        return self.a / self.g

    @property
    def L(self) -> float:
        return self.N * self.a

    @property
    def cut(self) -> float:
        """The Gaussian's cut-off radius in grid units: terms with |x| > TAIL_RADIUS w (v < 1e-16 |V0|)
        are dropped."""
        return TAIL_RADIUS * self.w / self.h

    @property
    def u_max(self) -> float:
        """Largest |u_j| (Å) for which every kept term of atom j lies inside its window: the window
        covers the points d = -g·reach .. g·(right + 1) - 1 (grid units from the atom's equilibrium
        point), a kept term needs |d - u_j/h| <= cut."""
        return (min(self.g * -self.cells.start, self.g * self.cells.stop - 1) - self.cut) * self.h


def make_grid(model: Continuum, chain: Chain, u_max: float | None = None) -> Grid:
    """The grid of ``model`` on ``chain``, with windows wide enough for displacements |u_j| <= u_max
    (Å; None = one lattice spacing). Pass the largest |u| a run can reach (e.g. from the thermal
    <u²>: the 1D ring's <u²> grows like N)."""
    u_max = chain.a if u_max is None else u_max
    if not (isinstance(u_max, (int, float, np.integer, np.floating)) and math.isfinite(u_max) and u_max >= 0):
        raise ConfigError(f"u_max={u_max!r} is out of range: allowed finite values >= 0 (Å)")
    a, g = float(chain.a), int(model.g)
    # left: g·reach >= cut + u_max/h; right: g·(right + 1) - 1 >= cut + u_max/h (grid units)
    reach = max(1, math.ceil((TAIL_RADIUS * model.w + u_max) / a))
    right = max(0, math.ceil((TAIL_RADIUS * model.w + u_max + a / g) / a) - 1)
    return Grid(N=int(chain.N), a=a, g=g, w=float(model.w), reach=reach, right=right)


def _real(name, value, *, low=None, low_open=False, high=None, high_open=False, what=""):
    ok = isinstance(value, (int, float, np.integer, np.floating)) and not isinstance(value, bool)
    ok = ok and math.isfinite(float(value))
    if ok and low is not None:
        ok = value > low if low_open else value >= low
    if ok and high is not None:
        ok = value < high if high_open else value <= high
    if not ok:
        lo = "" if low is None else f"{low:g} {'<' if low_open else '<='} "
        hi = "" if high is None else f" {'<' if high_open else '<='} {high:g}"
        rng = f"{lo}{name}{hi}" if (lo or hi) else "any finite value"
        raise ConfigError(f"{name}={value!r} is out of range: allowed {rng}{what}")
    return float(value)


def _int(name, value, low, high=None, what=""):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        rng = f"integers >= {low}" if high is None else f"integers {low}..{high}"
        raise ConfigError(f"{name}={value!r} is out of range: allowed {rng}{what}")
    return int(value)


def validate(model: Continuum, chain: Chain, prefix: str = "") -> None:
    """Refuse bad input before any work (wow.ConfigError, a ValueError): each error names the
    parameter (``prefix`` + its field name, e.g. 'electron.g' inside a wow.Config), its value and the
    allowed range. Checks the ring, the parameters, that the grid resolves v (h = a/g <= w/2.5) and
    that the packet fits the ring and the grid."""
    P = prefix
    if not isinstance(model, Continuum):
        raise ConfigError(f"model={model!r} must be a wow.Continuum")
    if not isinstance(chain, Chain):
        raise ConfigError(f"chain={chain!r} must be a wow.Chain")
    if chain.boundary != "ring":
        raise ConfigError(f"chain.boundary={chain.boundary!r} is out of range: the density-density model "
                          "is defined on a ring (allowed 'ring')")
    N = _int("chain.N", chain.N, 3)
    a = _real("chain.a", chain.a, low=0, low_open=True)
    _real("chain.mass", chain.mass, low=0, low_open=True)
    _real("chain.spring", chain.spring, low=0, low_open=True)
    _real(P + "V0", model.V0)
    w = _real(P + "w", model.w, low=0, low_open=True, what=" (Å)")
    g = _int(P + "g", model.g, 2)
    h = a / g
    if h > w / RESOLVE:
        g_min = math.ceil(RESOLVE * a / w)
        raise ConfigError(f"{P}g={g} is out of range: the grid spacing h = a/g = {h:.4g} Å does not resolve the "
                          f"pseudopotential (allowed h <= w/{RESOLVE:g} = {w / RESOLVE:.4g} Å, i.e. g >= {g_min} "
                          f"for a = {a:g} Å, w = {w:g} Å)")
    _real(P + "m_star", model.m_star, low=0, low_open=True)
    if model.packet not in PACKETS:
        raise ConfigError(f"{P}packet={model.packet!r} is out of range: allowed {', '.join(map(repr, PACKETS))}")
    L = N * a
    sigma = _real(P + "sigma", model.sigma, low=0, low_open=True, high=L / RING_SIGMAS,
                  what=f" (Å; L/{RING_SIGMAS:g} for the ring L = N a = {L:g} Å)")
    if model.x0 is not None:
        _real(P + "x0", model.x0, low=0, high=L, high_open=True, what=" (Å; the ring is [0, L))")
    if model.k0 is not None:
        _real(P + "k0", model.k0, what=" (1/Å)")
    if model.u_max is not None:
        _real(P + "u_max", model.u_max, low=0, what=" (Å; None: from the thermal displacements)")
    k0 = model.packet_k0(chain)
    if model.packet == "bloch":
        _int(P + "n0", model.n0, 0, max(0, g // 2 - 2), what=f" (bands well inside the grid, g = {g})")
        if not (-math.pi / a < k0 <= math.pi / a):
            raise ConfigError(f"{P}k0={k0!r} is out of range: a 'bloch' packet takes crystal momenta, allowed "
                              f"-π/a < k0 <= π/a = {math.pi / a:.6g} 1/Å")
    else:
        room = math.pi / h - abs(k0)
        if sigma * room < PACKET_SIGMAS:
            raise ConfigError(f"{P}k0={k0!r}, {P}sigma={sigma!r} are out of range: the 'plane' packet's momenta "
                              f"must lie inside the grid, allowed sigma·(π/h - |k0|) >= {PACKET_SIGMAS:g} "
                              f"(π/h = {math.pi / h:.6g} 1/Å); use a larger sigma or g")


# --------------------------------------------------------------------------------------------
# Grid, pseudopotential
# --------------------------------------------------------------------------------------------
def positions(grid: Grid, dtype=jnp.float64):
    """Grid points s_i = i h, i = 0..N_s-1 (Å)."""
    return jnp.arange(grid.n_s, dtype=dtype) * jnp.asarray(grid.h, dtype)


def momenta(grid: Grid, dtype=jnp.float64):
    """Grid wavenumbers κ = 2π fftfreq(N_s, h) in FFT order (1/Å); p = ħκ. For even N_s the
    Nyquist entry is -π/h."""
    return jnp.asarray(2 * np.pi * np.fft.fftfreq(grid.n_s, grid.h), dtype)


def crystal_momenta(grid: Grid, dtype=jnp.float64):
    """k_c = 2πc/L folded into (-π/a, π/a], c = 0..N-1 (1/Å): the crystal momentum of grid momenta
    with FFT index m ≡ c (mod N)."""
    return jnp.asarray(k_grid(grid.N, grid.a), dtype)


def pseudopotential(x, V0, w):
    """v(x) = V0 exp(-x²/(2w²)) (eV), one atom, not periodised; x, w in Å."""
    return V0 * jnp.exp(-(x * x) / (2 * w * w))


def pseudopotential_ft(q, V0, w):
    """ṽ(q) = ∫ v(x) e^{-iqx} dx = V0 w √(2π) exp(-q²w²/2) (eV·Å); q in 1/Å."""
    return V0 * w * math.sqrt(2 * math.pi) * jnp.exp(-(q * q) * (w * w) / 2)


def _lead(x, ndim: int):
    """x with leading unit axes up to ndim (explicit rank promotion)."""
    return x.reshape((1,) * (ndim - x.ndim) + x.shape)


def _windows(u, w, grid: Grid):
    """For each window cell p in grid.cells: the distance x = (s_i - ξ_j - u_j)/h, in grid units, of
    the atom j = c - p to the points t = 0..g-1 of cell c, (..., N, g), the atoms' own axis rolled onto
    the cells (static rolls: no scatter, no gather); also β = h²/(2w²) and the cut-off |x| <= x_c/h."""
    g, h = grid.g, grid.h
    y = u / h  # the atom's offset from its equilibrium grid point j g, in grid units
    t = jnp.arange(g, dtype=u.dtype)
    beta = (h * h) / (2 * w * w)
    cut = TAIL_RADIUS * w / h
    for p in grid.cells:
        # t - (y_j - g p), not (g p + t) - y_j: a loop-invariant (g,) vector like g p + t is hoisted
        # out of the time loop into its carried tuple, and XLA:CPU then compiles the fused potential
        # pass without SIMD (measured 4x slower per step); a bare iota stays inside the fusion
        yield p, _lead(t, u.ndim + 1) - (jnp.roll(y, p, axis=-1) - g * p)[..., None], beta, cut


@partial(jax.jit, static_argnames="grid")
def lattice_potential(u, V0, w, grid: Grid):
    """V(s_i) = Σ_j v_L(s_i - ξ_j - u_j) on the grid (eV), (..., N) -> (..., N_s); v_L is the
    Gaussian V0 exp(-x²/(2w²)) periodised over L (every image within reach), dropped where it is
    below 1e-16 |V0| (|x| > TAIL_RADIUS w = 8.58 w).

    Exact to the dropped tail (< 1e-16 |V0| per term) plus the rounding of the sum (measured
    6e-15 |V0| against the image sum in float64, 1.4e-7 |V0| in float32) for |u_j| <= grid.u_max.
    Atom j's Gaussian is evaluated on its window of cells j - reach .. j + right (static,
    ``Grid.cells``), each cell's contributions summed with static rolls of the atoms' axis: no
    scatter, no gather, one fused pass. Cost per grid point: len(grid.cells) exponentials (no other
    transcendental), reading N
    displacements and writing N_s values. Measured on this 2-core CPU (benchmarks/continuum_bench.py,
    N_s = 4096 x 64 samples): 138-240 M points/s in float32, 5-10x faster than factorised forms with
    per-atom exponentials and either powers by products or a table gather (XLA:CPU vectorises exp,
    not gathers or power tables)."""
    V = None
    for p, x, beta, cut in _windows(u, w, grid):
        W = jnp.where(jnp.abs(x) <= cut, V0 * jnp.exp(-(x * x) * beta), 0)
        V = W if V is None else V + W
    return V.reshape(*u.shape[:-1], grid.n_s)


@partial(jax.jit, static_argnames="grid")
def forces(psi, u, V0, w, grid: Grid):
    """F_j = -∂<V>/∂u_j = -Σ_i |ψ_i|² v(x_ij) x_ij / w² (eV/Å), x_ij = s_i - ξ_j - u_j, for ψ
    (..., N_s) and u (..., N) -> (..., N); equals -jax.grad of ``energy`` with respect to u.
    Σ_j F_j = -d<p>/dt: what the lattice as a whole (its CM) takes; an internal (Σ u = 0)
    dynamics uses F_j - mean(F). Same windows as ``lattice_potential``: each window's |ψ|²·v·x is
    summed over the cell's points and rolled back onto the atom."""
    g, N = grid.g, grid.N
    lead = jnp.broadcast_shapes(psi.shape[:-1], u.shape[:-1])
    u = jnp.broadcast_to(u, lead + (N,))
    rho = jnp.broadcast_to((jnp.abs(psi) ** 2).astype(u.dtype), lead + (grid.n_s,)).reshape(*lead, N, g)
    F = None
    for p, x, beta, cut in _windows(u, w, grid):
        W = jnp.where(jnp.abs(x) <= cut, V0 * jnp.exp(-(x * x) * beta), 0)
        term = jnp.roll(jnp.sum(rho * W * x, axis=-1), -p, axis=-1)  # cell c -> atom c - p
        F = term if F is None else F + term
    return -(grid.h / (w * w)) * F  # x in grid units: x_phys/w² = x h/w²


# --------------------------------------------------------------------------------------------
# Split-operator pieces
# --------------------------------------------------------------------------------------------
@jax.jit
def kinetic_energies(kappa, m, Q=0.0, inv_2NM=0.0):
    """E_T(κ) = (ħκ)²/(2m) + (Q - ħκ)² inv_2NM (eV) on the grid momenta κ (1/Å): the electron's
    kinetic energy plus the CM's recoil energy in the sector of total momentum Q (eV·fs/Å),
    inv_2NM = 1/(2NM) (Å²/(eV·fs²)), 0 = recoil off. m in eV·fs²/Å². Q (..., 1) per sample
    broadcasts to (..., N_s)."""
    Q = jnp.asarray(Q)
    p = HBAR * _lead(kappa, max(kappa.ndim, Q.ndim))
    return p * p / (2 * m) + (Q - p) ** 2 * inv_2NM


def phase(E, tau):
    """exp(-i E τ/ħ) for energies E (eV) and a time τ (fs): the exact propagator of a diagonal term
    (kinetic phases in momentum space, potential phases in real space)."""
    th = -(E * tau) / HBAR
    return jax.lax.complex(jnp.cos(th), jnp.sin(th))


@jax.jit
def phase_rational(E, tau):
    """exp(-i E τ/ħ) as an exactly unitary rational rotation (no transcendental function): with
    y = -Eτ/(2ħ) and tan y ≈ n/d = y(15 - y²)/(15 - 6y²) (the [3/2] Padé approximant),
    cos θ -> (d² - n²)/(d² + n²), sin θ -> 2nd/(d² + n²), |phase| = 1 to rounding, odd in τ. It
    rotates by θ(1 - θ⁶/100800 + ...) instead of θ = -Eτ/ħ: 1e-11 relative at |θ| = 0.1, 1e-5 at 1.
    For the per-step potential phase (|V|dt/ħ small), where cos/sin cost more than the potential
    itself on a CPU (measured 7-15x slower, benchmarks/continuum_bench.py); never for the kinetic
    phases (|θ| up to ħπ²dt/(2mh²), many radians; precomputed once anyway)."""
    y = -(E * tau) / (2 * HBAR)
    y2 = y * y
    n = y * (15 - y2)
    d = 15 - 6 * y2
    r = 1 / (d * d + n * n)
    return jax.lax.complex((d * d - n * n) * r, 2 * n * d * r)


def fft(psi):
    """ψ~ = unitary DFT along the last axis. The leading axes are flattened around it: XLA:CPU's FFT
    refuses an operand in a transposed layout (a RET_CHECK at run time, seen after the quantum
    backend's mode contractions), and the reshape makes XLA hand it a row-major one."""
    return _flat(jnp.fft.fft, psi)


def ifft(psik):
    return _flat(jnp.fft.ifft, psik)


def _flat(f, x):
    if x.ndim <= 2:
        return f(x, axis=-1, norm="ortho")
    return f(x.reshape(-1, x.shape[-1]), axis=-1, norm="ortho").reshape(x.shape)


@jax.jit
def strang_step(psi, V, E_T, dt):
    """One Strang step T/2 · V · T/2 of length dt (fs) on real-space ψ (..., N_s), exactly unitary:
    ψ <- F⁻¹ e^{-iE_T dt/2ħ} F e^{-iV dt/ħ} F⁻¹ e^{-iE_T dt/2ħ} F ψ, with V = V(u(t + dt/2)) (eV,
    (..., N_s)) at mid-step and E_T = ``kinetic_energies`` (kinetic + recoil).

    Why T outside: the error of a symmetric splitting e^{A/2}e^{B}e^{A/2} is
    τ³(-[A,[A,B]]/24 + [B,[B,A]]/12)/ħ²; on a grid the kinetic term is by far the larger operator
    (ħ²(π/h)²/2m is ~100s of eV against a few eV of V), so putting it outside puts the 1/24, not
    the 1/12, on the dominant [T,[T,V]]. The time-dependent part (V through u(t)) is then evaluated
    once per step at its midpoint, where ψ is in real space for the Ehrenfest force; neighbouring
    half kinetic phases merge into one (T static), so a run costs one V phase, one kinetic phase
    and two FFTs per step (``evolve``)."""
    nd = max(psi.ndim, V.ndim, E_T.ndim)
    psi, half, pv = _lead(psi, nd), _lead(phase(E_T, dt / 2), nd), _lead(phase(V, dt), nd)
    return ifft(half * fft(ifft(half * fft(psi)) * pv))


@jax.jit
def _evolve(psi, V, E_T, dt, n_steps):
    nd = max(psi.ndim, V.ndim, E_T.ndim)
    half, pv = _lead(phase(E_T, dt / 2), nd), _lead(phase(V, dt), nd)
    full = half * half
    pk = half * fft(_lead(psi, nd))
    pk = jnp.broadcast_to(pk, jnp.broadcast_shapes(pk.shape, pv.shape))
    pk = jax.lax.fori_loop(0, n_steps - 1, lambda _, pk: full * fft(pv * ifft(pk)), pk)
    return ifft(half * fft(pv * ifft(pk)))


def evolve(psi, V, E_T, dt, n_steps):
    """n_steps >= 1 Strang steps with a static V (frozen lattice), neighbouring half kinetic phases
    merged: T/2 (V T)^{n-1} V T/2 in one loop (n_steps may be traced: a study over dt and durations
    compiles once); equals ``strang_step`` applied n_steps times (n_steps = 0 returns ψ). The
    reference loop for tests and benchmarks; the run's own loop lives in the core."""
    if isinstance(n_steps, (int, np.integer)) and n_steps == 0:
        return psi
    return _evolve(psi, V, E_T, dt, n_steps)


@jax.jit
def energy(psi, V, E_T):
    """<H> = Σ_κ |ψ~(κ)|² E_T(κ) + Σ_i |ψ_i|² V_i (eV): kinetic + recoil + potential."""
    wk = jnp.abs(fft(psi)) ** 2
    nd = max(psi.ndim, V.ndim, E_T.ndim)
    return (jnp.sum(_lead(wk, nd) * _lead(E_T, nd), axis=-1)
            + jnp.sum(_lead(jnp.abs(psi) ** 2, nd) * _lead(V, nd), axis=-1))


@partial(jax.jit, static_argnames="grid")
def observables(psi, grid: Grid, Q=0.0, inv_2NM=0.0):
    """Per-frame observables of ψ (..., N_s), each (...):
    norm Σ|ψ|²; s_mean <s> = Σ s_i |ψ_i|² with s in [0, L) (Å; meaningful while the packet is away
    from the seam at s = 0); p_mean <p> = Σ ħκ |ψ~|² (eV·fs/Å); P_b_mech Σ_{κ<0} |ψ~|² (the
    mechanical backscattered probability); P_R <P_R> = Q - <p> (exact in the Q sector); E_cm
    <(Q - p)²> inv_2NM (eV; dE_cm is its change over the run)."""
    dtype = jnp.real(psi).dtype
    kappa, s = momenta(grid, dtype), positions(grid, dtype)
    wk = jnp.abs(fft(psi)) ** 2
    rho = jnp.abs(psi) ** 2
    p = HBAR * _lead(kappa, wk.ndim)
    p_mean = jnp.sum(p * wk, axis=-1)
    Q = jnp.broadcast_to(jnp.asarray(Q, dtype), wk.shape[:-1])
    return {
        "norm": jnp.sum(rho, axis=-1),
        "s_mean": jnp.sum(_lead(s, rho.ndim) * rho, axis=-1),
        "p_mean": p_mean,
        "P_b_mech": jnp.sum(jnp.where(_lead(kappa, wk.ndim) < 0, wk, 0), axis=-1),
        "P_R": Q - p_mean,
        "E_cm": jnp.sum((Q[..., None] - p) ** 2 * inv_2NM * wk, axis=-1),
    }


def grid_hamiltonian(u, V0, w, m, grid: Grid, Q=0.0, inv_2NM=0.0):
    """Dense H_Q on the grid (numpy complex, N_s x N_s) for one u: F† diag(E_T) F + diag(V).
    For tests and exact references on small grids only."""
    n = grid.n_s
    F = np.fft.fft(np.eye(n), axis=0, norm="ortho")
    kap = np.asarray(momenta(grid))
    ET = np.asarray(kinetic_energies(kap, m, Q, inv_2NM))
    V = np.asarray(lattice_potential(jnp.asarray(u, jnp.float64), V0, w, grid))
    return F.conj().T @ (ET[:, None] * F) + np.diag(V)


# --------------------------------------------------------------------------------------------
# Bloch states of the static lattice (u = 0, recoil off)
# --------------------------------------------------------------------------------------------
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Bands:
    """Bloch bands of the static lattice on the grid, crystal momenta in FFT order c = 0..N-1.

    k (N,): crystal momenta (1/Å, in (-π/a, π/a]); energy (N, g): ε_n(k_c) (eV, ascending in n);
    vectors (N, g, g): C[c, r, n], the component of φ_{n,k_c} on the grid momentum of FFT index
    r N + c (phase: the G = 0 component real and positive); velocity (N, g): v_n(k_c) =
    ∂ε_n/∂(ħk) (Å/fs, Hellmann-Feynman; 0 at k = 0, π/a); back (N, g) bool: v_n(k) < 0 with k = 0, π/a excluded."""

    k: jax.Array
    energy: jax.Array
    vectors: jax.Array
    velocity: jax.Array
    back: jax.Array


def _sector_momenta(grid: Grid):
    """κ (1/Å) of FFT index r N + c as a (g, N) numpy array, and r0[c]: the r of the G = 0 component."""
    kap = (2 * np.pi * np.fft.fftfreq(grid.n_s, grid.h)).reshape(grid.g, grid.N)
    kc = k_grid(grid.N, grid.a)
    r0 = np.argmin(np.abs(kap - kc[None, :]), axis=0)
    return kap, r0


@partial(jax.jit, static_argnames=("grid", "dtype"))
def bloch_bands(V0, w, m, grid: Grid, dtype=jnp.float64) -> Bands:
    """Bands, Bloch states and group velocities of the static lattice from the central equation on
    the grid: for each crystal momentum k_c the g x g Hermitian matrix

        H^c_{rr'} = δ_{rr'} (ħκ_{rc})²/(2m) + V_{(r - r') mod g},   V_l = fft(V_static)[l N]/N_s,

    on the components κ_{rc} = k_c + G (FFT index r N + c); V_l = ṽ(G_l)/a up to the grid's aliasing
    (< 4e-14 ṽ(0)/a by the resolution rule), and the grid's own V, so the bands are exactly those of
    the propagated grid Hamiltonian. v_n = Σ_r |C_rn|² ħκ_r/m (Hellmann-Feynman: ∂H^c/∂(ħk) is
    diagonal). Each c costs one g x g eigh."""
    V = lattice_potential(jnp.zeros((grid.N,), dtype), V0, w, grid)
    Vl = jnp.fft.fft(V)[:: grid.N] / grid.n_s  # (g,), V_l at G_l = 2πl/a (l mod g)
    g = grid.g
    l = (np.arange(g)[:, None] - np.arange(g)[None, :]) % g
    kap_np, r0 = _sector_momenta(grid)
    kap = jnp.asarray(kap_np, dtype)
    T = (HBAR * kap.T) ** 2 / (2 * m)  # (N, g)
    H = Vl[l][None, :, :] + jax.vmap(jnp.diag)(T).astype(Vl.dtype)  # (N, g, g)
    E, C = jnp.linalg.eigh(H)
    c0 = C[jnp.arange(grid.N), jnp.asarray(r0), :]  # (N, g): G = 0 component of each state
    mag = jnp.abs(c0)
    fix = jnp.where(mag > 0, jnp.conj(c0) / jnp.where(mag > 0, mag, 1), 1)
    C = C * fix[:, None, :]
    k = crystal_momenta(grid, dtype)
    edge = jnp.asarray(np.isclose(np.abs(k_grid(grid.N, grid.a)), [[0.0], [math.pi / grid.a]],
                                  atol=1e-12 / grid.a).any(0))[:, None]
    # ε_n(k) = ε_n(-k) (V real) and is 2π/a-periodic, so v_n = 0 exactly at k = 0 and π/a; there the
    # high bands' gaps (2|ṽ(G)|/a) fall below rounding and eigh's vectors would give ±(noise)
    vel = jnp.where(edge, 0, jnp.einsum("crn,cr->cn", jnp.abs(C) ** 2, HBAR * kap.T / m))
    back = (vel < 0) & ~edge
    return Bands(k=k, energy=E, vectors=C, velocity=vel, back=back)


@jax.jit
def bloch_amplitudes(psi, bands: Bands):
    """<φ_{n,k}|ψ> for ψ (..., N_s) -> (..., g, N) [band n, crystal momentum c]: the FFT of ψ, split
    into the g components of each k, times the conjugate Bloch vectors (N g² per ψ, no dense
    matrix). Σ |amplitudes|² = Σ |ψ|² exactly (the Bloch states are complete on the grid)."""
    N, g = bands.k.shape[0], bands.energy.shape[1]
    pk = fft(psi).reshape(*psi.shape[:-1], g, N)
    return jnp.einsum("...rc,crn->...nc", pk, jnp.conj(bands.vectors))


@partial(jax.jit, static_argnames=("n", "c"))
def bloch_state(bands: Bands, n: int, c: int):
    """φ_{n,k_c} on the grid (N_s,), normalised (Σ|φ|² = 1)."""
    N, g = bands.k.shape[0], bands.energy.shape[1]
    pk = jnp.zeros((g, N), bands.vectors.dtype).at[:, c].set(bands.vectors[c, :, n])
    return ifft(pk.reshape(g * N))


@partial(jax.jit, static_argnames="n0")
def bloch_packet(bands: Bands, n0: int, k0, sigma, x0):
    """ψ(0) = Σ_k c_k φ_{n0,k}, c_k ∝ exp(-(k - k0)²σ² - i k x0) over the crystal momenta k in
    (-π/a, π/a] (not periodised in k: a packet at the zone edge is cut there), normalised; (N_s,).
    With recoil off a static lattice keeps it a stationary superposition of eigenstates."""
    N, g = bands.k.shape[0], bands.energy.shape[1]
    k = bands.k
    ck = jnp.exp(-((k - k0) ** 2) * sigma**2 - 1j * k * x0)
    ck = ck / jnp.sqrt(jnp.sum(jnp.abs(ck) ** 2))
    pk = (bands.vectors[:, :, n0] * ck[:, None]).T  # (g, N)
    return ifft(pk.reshape(g * N))


def plane_packet(grid: Grid, k0, sigma, x0, dtype=jnp.complex128):
    """ψ(s) ∝ exp(-d²/(4σ²)) e^{i k0 (x0 + d)}, d = s - x0 by minimum image on the ring, normalised
    on the grid; (N_s,). The phase jumps only at the antipode, where the Gaussian is below
    exp(-L²/(16σ²))."""
    s = np.arange(grid.n_s) * grid.h
    d = (s - x0 + grid.L / 2) % grid.L - grid.L / 2
    psi = np.exp(-(d**2) / (4 * sigma**2) + 1j * k0 * (x0 + d))
    return jnp.asarray(psi / np.linalg.norm(psi), dtype)


def initial_packet(model: Continuum, chain: Chain, grid: Grid, bands: Bands | None = None,
                   dtype=jnp.complex128):
    """The model's initial packet ('bloch' needs ``bands`` of matching dtype)."""
    k0, x0 = model.packet_k0(chain), model.packet_x0(chain)
    if model.packet == "plane":
        return plane_packet(grid, k0, model.sigma, x0, dtype)
    if bands is None:
        raise ValueError("packet='bloch' needs the static lattice's bands (bloch_bands)")
    return bloch_packet(bands, model.n0, k0, model.sigma, x0).astype(dtype)


@jax.jit
def bloch_tally(amps, bands: Bands):
    """Band-resolved tallies of Bloch amplitudes (..., g, N) (``bloch_amplitudes``):
    P_b = Σ_{n,k: v_n(k) < 0} |<φ_{n,k}|ψ>|² (k = 0, π/a excluded); P_band (..., g): weight per
    band; E_band = Σ ε_n(k)|<φ|ψ>|² (eV, the static lattice's band energy of ψ)."""
    wgt = jnp.abs(amps) ** 2
    back = _lead(bands.back.T, wgt.ndim)
    return {
        "P_b": jnp.sum(jnp.where(back, wgt, 0), axis=(-2, -1)),
        "P_band": jnp.sum(wgt, axis=-1),
        "E_band": jnp.sum(wgt * _lead(bands.energy.T, wgt.ndim), axis=(-2, -1)),
    }


@jax.jit
def back_mask(bands: Bands):
    """The (g N,) flattened mask of backscattered Bloch states, matching
    ``bloch_amplitudes(...).reshape(..., g N)``: for the coherent/incoherent split over samples
    (P_coh = Σ_back |<a>_s|², P_tot = <Σ_back |a|²>_s, e.g. wow.tally.coherent_split)."""
    return bands.back.T.reshape(-1)


# --------------------------------------------------------------------------------------------
# The wow electron model (the protocol of wow.models), selected by a Continuum in Config.electron
# --------------------------------------------------------------------------------------------
#: The thermal displacements enter u_max at this many standard deviations (a Gaussian value exceeds
#: 7σ with probability 2.6e-12).
U_SIGMAS = 7.0
#: The potential phase per step must stay a small rotation: 2|V0| dt/ħ <= MAX_PHASE (the rational
#: phase then rotates by the exact angle to 1e-5 relative, and far better at usable steps).
MAX_PHASE = 1.0


def thermal_u_max(cfg) -> float:
    """The u_max (Å) of a run of Config ``cfg``: electron.u_max when given, else U_SIGMAS x the rms
    thermal displacement of a ring site at cfg's temperature and statistics (the zero point included
    for 'quantum' statistics, also at T = 0), plus the largest site
    displacement of the quantum modes at their DVR points (dynamics='quantum')."""
    if cfg.electron.u_max is not None:
        return float(cfg.electron.u_max)
    from .. import theory  # the analytic <u²> (host side, numpy)

    chain = cfg.chain
    # at T = 0 too: Wigner samples ('quantum' statistics) carry the zero-point displacements
    u = U_SIGMAS * math.sqrt(theory.msd_mean(chain, cfg.temperature, cfg.statistics))
    if cfg.dynamics == "quantum":
        from .. import fock, lattice

        modes = np.array(cfg.quantum.sorted_modes())
        ell = np.sqrt(HBAR / (2 * chain.mass_ev * lattice.mode_frequencies(chain)[modes - 1]))
        xmax = np.array([np.abs(fock.dvr(d - 1)[0]).max() for d in cfg.quantum.dims()])
        u += float(np.max(np.abs(lattice.mode_matrix(chain)[:, modes - 1]) @ (ell * xmax)))
    return u


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ContinuumParams:
    """Traced parameters of the density-density electron (shared by the samples of a run).

    V0 (eV), w (Å), m = m* m_e (eV·fs²/Å²); inv_2NM = 1/(2NM) (Å²/(eV·fs²); 0 with recoil off);
    kappa (N_s,): grid wavenumbers (1/Å, FFT order); E_kin (N_s,): (ħκ)²/(2m) (eV); s (N_s,): grid
    positions (Å); u_max (Å): the displacement the potential's windows cover; bands: the static
    lattice's Bloch bands (recoil off), computed once per run."""

    V0: jax.Array
    w: jax.Array
    m: jax.Array
    inv_2NM: jax.Array
    kappa: jax.Array
    E_kin: jax.Array
    s: jax.Array
    u_max: jax.Array
    bands: Bands


def params_of(cfg, grid: Grid, real) -> ContinuumParams:
    """The traced parameters of cfg's continuum electron on ``grid`` in dtype ``real`` (host side)."""
    e, c = cfg.electron, cfg.chain
    f = lambda x: jnp.asarray(x, real)
    m = e.mass()
    kap = 2 * np.pi * np.fft.fftfreq(grid.n_s, grid.h)
    return ContinuumParams(V0=f(e.V0), w=f(e.w), m=f(m), inv_2NM=f(1.0 / (2 * c.N * c.mass_ev) if cfg.recoil else 0.0),
                           kappa=f(kap), E_kin=f((HBAR * kap) ** 2 / (2 * m)), s=positions(grid, real), u_max=f(grid.u_max),
                           bands=bloch_bands(f(e.V0), f(e.w), f(m), grid, real))


def model_of(cfg, real):
    """(DensityDensity, ContinuumParams) of a validated Config whose electron is a Continuum."""
    grid = make_grid(cfg.electron, cfg.chain, thermal_u_max(cfg))
    model = DensityDensity(grid=grid, recoil=bool(cfg.recoil), save_density=bool(cfg.save_density),
                           transport=bool(cfg.transport), x0=cfg.electron.packet_x0(cfg.chain),
                           save_amplitudes=bool(cfg.save_amplitudes))
    return model, params_of(cfg, grid, real)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Layers:
    """The coordinate-dependent coefficients of one sub-step: the potential phase e^{-iV h/ħ} (..., B,
    N_s) at the sub-step's mid-step coordinates; ``trail`` is empty (no merged outer layer: module
    doc of DensityDensity)."""

    potential: jax.Array
    trail: tuple = ()


@dataclasses.dataclass(frozen=True)
class DensityDensity:
    """The density-density electron as a wow model (static under jit; see wow.models for the protocol).

    Layout of a block (``sample_axis = -2``): samples first, grid last, (..., B, N_s), leading axes
    (a quantum backend's DVR points) broadcasting; lattice coordinates u (..., B, N). The carried
    state is ψ~ = fft(ψ) (momentum space) with nothing pending, and one sub-step of length h is the
    Strang step T/2 · V · T/2 (``strang_step``):

        ψ~ <- e^{-iE_T h/2ħ} F[ e^{-iV(u_mid) h/ħ} F⁻¹[ e^{-iE_T h/2ħ} ψ~ ] ],

    E_T = (ħκ)²/2m + (Q - ħκ)²/(2NM) per sample (``fixed``, computed once per run), V at the lattice
    coordinates the backend hands it (``layers``), its phase by the exactly unitary rational rotation
    (``phase_rational``: no transcendental function per point and step). Two FFTs per step; the
    kinetic halves of neighbouring sub-steps are not merged (``trail = ()``): merging them needs the
    per-sample E_T in ``close``, which the protocol does not hand over, and would save one elementwise pass
    per step (not measured yet; benchmarks/continuum_core.py times the model's step on this
    path, before/after a change, against numpy).

    A sample whose displacements leave the potential's windows (|u_j| > grid.u_max at any step) gets
    a NaN potential, so its amplitudes and tallies turn NaN (never silently wrong; wow.run warns).

    ``exact_cm``: the CM momentum is <P_R> = Q - <p> exactly (phonons carry no mechanical momentum),
    so wow.run does not subtract the phonons' crystal momentum from the <P_R> trace as it does for
    the chain.

    transport: frames also record the transport observables (wow.transport.continuum_frame, then
    ``sector_frames``): <s - x0>, <(s - x0)²>, D_run, <ds/dt>, E_kin, E_e, E_cm and the antipode
    density, s the electron's position relative to the lattice CM on the ring, as the minimum image
    about x0 (the packet's initial centre): valid while the antipode cell holds no weight ('edge';
    wow.transport.edge_until). save_amplitudes: frames record ψ on the grid ('psi', (B, N_s))."""

    grid: Grid
    recoil: bool = False
    save_density: bool = False
    transport: bool = False
    x0: float = 0.0
    save_amplitudes: bool = False
    sample_axis = -2
    exact_cm = True

    @property
    def n_amplitudes(self) -> int:
        return self.grid.n_s

    # -- the electron's initial state and its block layout ------------------------------------
    def packet(self, cfg, cplx):
        """The configured initial packet, (N_s,) complex ('bloch': from the static lattice's bands)."""
        real = jnp.float64 if np.dtype(cplx) == np.complex128 else jnp.float32
        e = cfg.electron
        bands = bloch_bands(jnp.asarray(e.V0, real), jnp.asarray(e.w, real), jnp.asarray(e.mass(), real),
                            self.grid, real) if e.packet == "bloch" else None
        return initial_packet(e, cfg.chain, self.grid, bands, cplx)

    def to_block(self, psi):
        return psi

    def from_block(self, x):
        return jnp.moveaxis(x, -2, 0)

    def start(self, psi, p: ContinuumParams):
        return fft(psi)

    def amplitudes(self, e, p: ContinuumParams):
        return ifft(e)

    def initial_momentum(self, psi, k0, p: ContinuumParams):
        """The electron's part of the sector Q = P_R(0) + <p>(0): <p> of each ψ (B, N_s) (eV·fs/Å)."""
        wk = jnp.abs(fft(psi)) ** 2
        return HBAR * (wk @ p.kappa) / jnp.sum(wk, axis=-1)

    # -- layers ---------------------------------------------------------------------------------
    def fixed(self, h, p: ContinuumParams, Q):
        """e^{-iE_T h/2ħ}, the kinetic (+ recoil, sector Q (B,)) half phase: (B, N_s), or (1, N_s)."""
        if self.recoil:
            E = p.E_kin[None, :] + (Q[:, None] - HBAR * p.kappa[None, :]) ** 2 * p.inv_2NM
        else:
            E = p.E_kin[None, :]
        return phase(E, h / 2)

    def potential(self, u, p: ContinuumParams):
        """V(s) at displacements u (..., N) -> (..., N_s) (eV); NaN for a lattice with |u_j| > u_max."""
        V = lattice_potential(u, p.V0, p.w, self.grid)
        inside = jnp.max(jnp.abs(u), axis=-1, keepdims=True) <= p.u_max
        return jnp.where(inside, V, jnp.nan)

    def layers(self, coords, h, p: ContinuumParams) -> Layers:
        return Layers(potential=phase_rational(self.potential(coords["u"], p), h))

    def join(self, trail, layers: Layers):
        return None

    def advance(self, e, layers: Layers, join, fixed):
        """One Strang sub-step T/2 · V · T/2 of ψ~ (..., B, N_s)."""
        half = _lead(fixed, e.ndim)
        return half * fft(_lead(layers.potential, e.ndim) * ifft(half * e))

    def close(self, e, trail):
        return e

    # -- energy and observables -----------------------------------------------------------------
    def energy(self, e, coords, p: ContinuumParams):
        """<p²/2m + V(coords)> per sample (B,), summed over leading axes (the recoil term does not
        depend on the coordinates and is left out). The Ehrenfest force is minus its gradient with
        respect to coords: F_j = -Σ_i |ψ_i|² ∂V_i/∂u_j (``forces``)."""
        psi = ifft(e)
        V = self.potential(coords["u"], p)
        E = (jnp.sum(jnp.abs(e) ** 2 * _lead(p.E_kin, e.ndim), axis=-1)
             + jnp.sum(jnp.abs(psi) ** 2 * _lead(V, psi.ndim), axis=-1))
        return jnp.sum(E, axis=tuple(range(E.ndim - 1)))

    def _bloch(self, psik, p: ContinuumParams):
        """Bloch amplitudes <φ_{n,k}|ψ> from ψ~ (..., N_s) -> (..., g, N)."""
        g, N = self.grid.g, self.grid.N
        return jnp.einsum("...rc,crn->...nc", psik.reshape(*psik.shape[:-1], g, N), jnp.conj(p.bands.vectors))

    def observe(self, psi, p: ContinuumParams, coords=None):
        """Per-frame tallies of amplitudes ψ (..., B, N_s), summed over leading axes, each (B,)
        (``coords``, the frame's lattice coordinates, is part of the protocol; these tallies do not
        need it):
        norm; x_mean <s> (Å, in [0, L)); k_mean <κ> = <p>/ħ (1/Å, the mechanical momentum: wow.run's
        P_R trace is Q - ħ k_mean, exact here); P_b (Bloch states with v_n(k) < 0); P_b_mech (p < 0);
        E_band (the static lattice's band energy Σ ε_n(k)|<φ|ψ>|², eV); with save_density also |ψ_i|²
        ('density') and |ψ~(κ)|² ('momentum', FFT order), each (B, N_s)."""
        lead = tuple(range(psi.ndim - 2))
        psik = fft(psi)
        wk = jnp.sum(jnp.abs(psik) ** 2, axis=lead)
        rho = jnp.sum(jnp.abs(psi) ** 2, axis=lead)
        wb = jnp.sum(jnp.abs(self._bloch(psik, p)) ** 2, axis=lead)  # (B, g, N)
        bands = p.bands
        out = {"norm": jnp.sum(rho, axis=-1), "x_mean": rho @ p.s / jnp.sum(rho, axis=-1),
               "k_mean": wk @ p.kappa / jnp.sum(wk, axis=-1),
               "P_b": jnp.sum(jnp.where(bands.back.T[None], wb, 0), axis=(-2, -1)),
               "P_b_mech": wk @ jnp.where(p.kappa < 0, 1.0, 0.0).astype(wk.dtype),
               "E_band": jnp.sum(wb * bands.energy.T[None], axis=(-2, -1))}
        if self.save_density:
            out["density"] = rho
            out["momentum"] = wk
        if self.save_amplitudes:
            out["psi"] = psi
        if self.transport and coords is not None:
            g = self.grid
            d = displacements(g.n_s, g.h, self.x0, "ring", rho.dtype)
            far = antipode_cell(g.n_s, g.h, self.x0, g.g)
            out.update(continuum_frame(psi, psik, self.potential(coords["u"], p), d, p.kappa, p.m, far))
        return out

    def sector_frames(self, frames, Q, p: ContinuumParams):
        """Transport frames completed in each sample's sector Q (B,) (wow.transport.continuum_sector:
        the velocity of s and D_run need Q, which the frames do not see); else frames unchanged."""
        return continuum_sector(frames, Q, p.m, p.inv_2NM) if self.transport else frames

    def weights(self, psi, p: ContinuumParams):
        """(total, backscattered) probability of every leading index of ψ (..., B, N_s): the Bloch
        weights summed over all states and over those with v_n(k) < 0, each (..., B)."""
        wb = jnp.abs(self._bloch(fft(psi), p)) ** 2
        return jnp.sum(wb, axis=(-2, -1)), jnp.sum(jnp.where(_lead(p.bands.back.T, wb.ndim), wb, 0), axis=(-2, -1))

    def crystal_weights(self, psi, p: ContinuumParams):
        """(all, backscattered) weight per crystal momentum k_c (FFT order, wow.electron.k_grid) of ψ
        (..., N_s): Σ_n |<φ_{n,k}|ψ>|² over all bands and over those with v_n(k) < 0, each (..., N)."""
        wb = jnp.abs(self._bloch(fft(psi), p)) ** 2
        return jnp.sum(wb, axis=-2), jnp.sum(jnp.where(_lead(p.bands.back.T, wb.ndim), wb, 0), axis=-2)

    def split_amplitudes(self, psi, p: ContinuumParams):
        """The amplitudes the coherent/incoherent split averages over samples: the Bloch amplitudes
        (..., g N) (band-major, ``back_mask`` order)."""
        a = self._bloch(fft(psi), p)
        return a.reshape(*a.shape[:-2], -1)

    def split_mask(self, p: ContinuumParams):
        """Which of ``split_amplitudes`` are backscattered (v_n(k) < 0): (g N,) bool."""
        return back_mask(p.bands)

    # -- per-sample tallies (one sample: ψ (N_s,), u (N,)) ---------------------------------------
    def energy_of(self, psi, u, p: ContinuumParams):
        """<ψ|p²/2m + V(u)|ψ> (eV) of one sample's amplitudes (N_s,) at displacements (N,)."""
        return (jnp.sum(jnp.abs(fft(psi)) ** 2 * p.E_kin)
                + jnp.sum(jnp.abs(psi) ** 2 * self.potential(u, p)))

    def tallies(self, psi0, psi_f, u0, u_f, Q, p: ContinuumParams):
        """One sample's final tallies and its final Bloch amplitudes (g N,) for the coherent split.

        P_b, P_b0: Bloch weight at v_n(k) < 0 at t_final and t = 0; P_b_mech, P_b_mech0: weight at
        p < 0; E_in, E_b, dE_b: band energy of the initial packet, of the backscattered part (NaN if
        P_b < 1e-12), their difference; dE_e: <p²/2m + V(u)> change (interaction included, recoil
        not: 0 for frozen without recoil); dE_cm: change of <(Q - p)²>/(2NM) (dE_e + dE_cm = 0 on a
        frozen lattice); norm; k_f: final <κ> (1/Å); P_R_f = Q - ħ k_f; dP_e = ħ(k_f - <κ>_0), the
        electron's mechanical momentum change, all of which the CM takes (``budget``)."""
        pk0, pkf = fft(psi0), fft(psi_f)
        w0, wf = jnp.abs(pk0) ** 2, jnp.abs(pkf) ** 2
        a0, af = self._bloch(pk0, p), self._bloch(pkf, p)
        t0, tf = bloch_tally(a0, p.bands), bloch_tally(af, p.bands)
        back, eps = p.bands.back.T, p.bands.energy.T
        P_b = tf["P_b"]
        E_in = t0["E_band"] / jnp.sum(w0)
        E_b = jnp.where(P_b > 1e-12, jnp.sum(jnp.where(back, eps * jnp.abs(af) ** 2, 0)) / jnp.maximum(P_b, 1e-12),
                        jnp.nan)
        mech = jnp.where(p.kappa < 0, 1.0, 0.0).astype(w0.dtype)
        k_0, k_f = w0 @ p.kappa / jnp.sum(w0), wf @ p.kappa / jnp.sum(wf)
        E_cm = lambda w: jnp.sum(w * (Q - HBAR * p.kappa) ** 2) * p.inv_2NM
        out = {"P_b": P_b, "P_b0": t0["P_b"], "P_b_mech": wf @ mech, "P_b_mech0": w0 @ mech,
               "E_in": E_in, "E_b": E_b, "dE_b": E_b - E_in,
               "dE_e": self.energy_of(psi_f, u_f, p) - self.energy_of(psi0, u0, p),
               "dE_cm": E_cm(wf) - E_cm(w0), "norm": jnp.sum(wf), "k_f": k_f, "P_R_f": Q - HBAR * k_f,
               "dP_e": HBAR * (k_f - k_0)}
        return out, af.reshape(-1)

    def budget(self, out, lat):
        """The momentum budget of one sample: the CM takes the electron's whole mechanical momentum
        change, dP_cm = -dP_e, exactly (the internal modes carry none); dP_ph (from the lattice) is
        the phonons' crystal momentum, a different quantity, reported beside it."""
        return {"dP_e": out["dP_e"], "dP_ph": lat["dP_ph"], "dP_cm": -out["dP_e"]}
