"""The tight-binding chain of Appendix A (docs/model.md, "The tight-binding chain") as a wow electron model.

H_e(u) = -Σ_b t_b (|n+1><n| + h.c.) + Σ_n ε_n |n><n|, with the coupling ``SSHDeformation``:
t_b = t0 - α b_n + δt_b, ε_n = D (b_{n-1} + b_n)/(2a) + δε_n, b_n = u_{n+1} - u_n (wow.electron).

Layout of a block (``TightBinding.sample_axis = -2``): sites innermost, samples before them.
Lattice coordinates u are (*lead, B, N) (lead: e.g. the DVR points of quantum modes, broadcasting),
and the electron is carried split by site parity into four real arrays z = (Re A, Im A, Re B, Im B),
A_j = ψ_{2j}, B_j = ψ_{2j+1}, each (*lead, B, M), M = ceil(N/2) (an odd open chain is padded with one
empty site joined by a zero hopping). Bond 2j joins A_j and B_j, bond 2j+1 joins B_j and A_{j+1 mod M},
so every layer is elementwise with at most a one-place shift: no complex arithmetic, no interleaving.
(Samples innermost, rows of B samples, was measured too: faster by ~16% for float32 with 64 or more
samples per device at N <= 4096, slower everywhere else on a CPU: 25% at 32 samples per device, 2x
at N = 16384 where a cache-sized block holds only 16 samples; benchmarks/RESULTS.md.)

One Strang sub-step of length h, hoppings and site energies at the mid-step coordinates:

    no site energies:  B_even/2 · B_odd · B_even/2            (recoil: B_odd/2 · R · B_odd/2 inside)
    site energies:     V/2 · B_even/2 · B_odd · B_even/2 · V/2

B: exact 2x2 rotations [[c, i s], [i s, c]] of each bond, θ = t_b h/ħ (the exponential of -t_b σ_x);
bonds of one parity share no site, so each layer is an exact unitary for any real hoppings and the
scheme is symmetric, hence second order. V: site phases e^{-iε_n h/2ħ}. R: the CM recoil phase
e^{-i(Q - ħk)² h/(2NMħ)} through a unitary FFT (the ring needs even N: validation refuses odd rings).

Fast paths (measured in benchmarks/RESULTS.md):
* the outermost half layer (V/2, or B_even/2 without site energies) of one sub-step and the first of
  the next are one layer of the summed angle (rotations of one pair commute, as do site phases):
  ``layers`` returns the sub-step's own half angle as its ``trail``, ``join`` makes the merged
  first layer, ``advance`` leaves the trailing half pending and ``close`` applies it;
* rotations by the exactly unitary rational formula ``rotation`` (no transcendental functions);
* split real form (above).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from ..channels import channel_weights
from ..electron import band, k_grid, momentum_amplitudes, packet
from ..occupations import momentum_budget
from ..tally import final_tallies
from ..transport import apply_velocity, chain_frame
from ..units import HBAR


# --------------------------------------------------------------------------------------------
# Traced parameters
# --------------------------------------------------------------------------------------------
@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class ChainParams:
    """Traced parameters of the chain electron (shared by the samples of a run).

    t0, alpha, D (eV, eV/Å, eV); a (Å); t_static: static hopping offsets per bond (eV, (nb,));
    eps_static: static site-energy offsets (eV, (N,)); k: DFT momenta (1/Å, FFT order, (N,));
    inv_2NM = 1/(2NM) (Å²/(eV·fs²)) for the recoil phase; omega_max: the lattice's largest phonon
    frequency (1/fs), which sets the energy windows of the backscattering channels (wow.channels);
    x0: the origin of the transport observables (Å, the packet's initial centre); coupling: the
    traced parameters of a replaceable coupling that needs its own (e.g. LocalCoupling).
    """

    t0: jax.Array
    alpha: jax.Array
    D: jax.Array
    a: jax.Array
    t_static: jax.Array
    eps_static: jax.Array
    k: jax.Array
    inv_2NM: jax.Array
    omega_max: jax.Array
    x0: jax.Array | None = None
    coupling: object = None


def params_of(cfg, real) -> ChainParams:
    """The traced parameters of cfg's chain electron in dtype ``real`` (host side)."""
    c, e = cfg.chain, cfg.electron
    t_static = np.zeros(c.n_bonds)
    for b, dt_b in e.bond_defects:
        t_static[int(b)] += dt_b
    eps_static = np.zeros(c.N)
    for n, de in e.onsite_defects:
        eps_static[int(n)] += de
    f = lambda x: jnp.asarray(x, real)
    return ChainParams(t0=f(e.t0), alpha=f(e.alpha), D=f(e.D), a=f(c.a), t_static=f(t_static),
                       eps_static=f(eps_static), k=f(k_grid(c.N, c.a)),
                       inv_2NM=f(1.0 / (2 * c.N * c.mass_ev)), omega_max=f(c.omega_max), x0=f(cfg.x0))


# --------------------------------------------------------------------------------------------
# Sites: the last axis (samples and leading axes before it)
# --------------------------------------------------------------------------------------------
def _pad_sites(x, before: int, after: int, value=0.0):
    widths = [(0, 0, 0)] * (x.ndim - 1) + [(before, after, 0)]
    return jax.lax.pad(x, jnp.asarray(value, x.dtype), widths)


def shift_sites(x, d: int, ring: bool, fill=0.0):
    """x_{j+d} (d = ±1) along the site axis: wraps on the ring, ``fill`` beyond the open ends."""
    if ring:
        return jnp.roll(x, -d, axis=-1)
    return _pad_sites(x[..., 1:], 0, 1, fill) if d > 0 else _pad_sites(x[..., :-1], 1, 0, fill)


def by_parity(x, M: int):
    """Per-bond or per-site values (..., n) -> (even, odd), each (..., M), missing entries 0.
    Read as the pairs (..., M, 2), the inverse of ``interleave``: its transpose (reverse mode) is
    then a pad of the pair axis, where that of a stride-2 slice, an interior pad, is compiled
    without SIMD by XLA:CPU (it was ~40% of a reversible gradient's time)."""
    if x.shape[-1] < 2 * M:
        x = _pad_sites(x, 0, 2 * M - x.shape[-1])
    pairs = x.reshape(*x.shape[:-1], M, 2)
    return pairs[..., 0], pairs[..., 1]


def interleave(even, odd, n: int):
    """Inverse of ``by_parity``: (even, odd), each (..., M) -> (..., n), entry 2j from even[j] and
    2j+1 from odd[j] (n <= 2M)."""
    x = jnp.stack([even, odd], axis=-1)
    return x.reshape(*x.shape[:-2], 2 * x.shape[-2])[..., :n]


def bond_stretches(u, ring: bool):
    """b_n = u_{n+1} - u_n along the site axis: N-1 of them (open) or N (ring)."""
    if ring:
        return jnp.roll(u, -1, axis=-1) - u
    return u[..., 1:] - u[..., :-1]


def site_strains(b, a, ring: bool):
    """s_n = (b_{n-1} + b_n)/(2a), a missing bond counting as 0."""
    if ring:
        return (jnp.roll(b, 1, axis=-1) + b) / (2 * a)
    return (_pad_sites(b, 1, 0) + _pad_sites(b, 0, 1)) / (2 * a)


def _sum_to(x, shape):
    """x summed over its leading axes and the axes where ``shape`` has 1: the cotangent of an
    array of ``shape`` that was broadcast to x's."""
    x = jnp.sum(x, axis=tuple(range(x.ndim - len(shape)))) if x.ndim > len(shape) else x
    axes = tuple(i for i, (a, b) in enumerate(zip(x.shape, shape)) if b == 1 and a != 1)
    return jnp.sum(x, axis=axes, keepdims=True) if axes else x


def _row(v, ndim: int = 1):
    """A per-site vector (n,) shaped (1, ..., n) of rank ndim against (..., n)."""
    return v.reshape((1,) * (ndim - 1) + (v.shape[0],))


# --------------------------------------------------------------------------------------------
# The coupling: lattice coordinates -> hoppings and site energies (replaceable)
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class SSHDeformation:
    """SSH bond coupling and deformation potential, linear in the displacements ``coords['u']``:
    t_b = t0 - α b + δt_b, ε_n = D s_n + δε_n (docs/model.md). ``reads`` names the coordinates used.
    A coupling to other coordinates is another class with the same ``terms`` method, and another
    ``reads`` (``HolsteinPeierls``: local modes 'q')."""

    ring: bool
    use_onsite: bool
    reads = ("u",)

    def terms(self, coords, p: ChainParams):
        """(t, eps): hoppings (..., nb) and site energies (..., N), or None when there are none."""
        b = bond_stretches(coords["u"], self.ring)
        t = p.t0 - p.alpha * b + _row(p.t_static, b.ndim)
        if not self.use_onsite:
            return t, None
        return t, p.D * site_strains(b, p.a, self.ring) + _row(p.eps_static, b.ndim)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LocalCoupling:
    """Traced per-mode couplings: g (Holstein) and alpha (Peierls), each (m,), eV/Å."""

    g: jax.Array
    alpha: jax.Array


def _mode_column(x, ndim: int):
    """Per-mode values (m,) shaped (1, ..., m, 1) against a (..., m, N) array of rank ndim."""
    x = jnp.reshape(x, (-1,))
    return x.reshape((1,) * (ndim - 2) + (x.shape[0], 1))


def _stretches(q, ring: bool):
    """q_{m,n+1} - q_mn along the site axis: N-1 (open) or N (ring) per mode."""
    if ring:
        return jnp.roll(q, -1, axis=-1) - q
    return q[..., 1:] - q[..., :-1]


@dataclasses.dataclass(frozen=True)
class HolsteinPeierls:
    """The coupling to local (Einstein) modes (Config.local, wow.dynamics.local), reading
    coords['q'] (..., m, N):

        t_b = t0 - Σ_m α_m (q_{m,n+1} - q_mn) + δt_b,     ε_n = Σ_m g_m q_mn + δε_n,

    per-mode couplings g_m, α_m (eV/Å) traced in ``ChainParams.coupling`` (``LocalCoupling``). The
    Ehrenfest force -∂<H_e>/∂q (jax.grad of the model's energy): -g_m |ψ_n|² from the Holstein part,
    α_m times the bond-energy difference of the two bonds at n from the Peierls part.
    ring: the chain's boundary; holstein / peierls: whether any g_m / α_m is non-zero (static:
    the absent part costs nothing). ``terms`` as chain.SSHDeformation's."""

    ring: bool
    holstein: bool = True
    peierls: bool = False
    reads = ("q",)

    def terms(self, coords, p):
        """(t, eps): hoppings (..., nb) and site energies (..., N) at the local coordinates."""
        q = coords["q"]
        c = p.coupling
        nd = q.ndim
        nb = q.shape[-1] if self.ring else q.shape[-1] - 1
        if self.peierls:
            t = p.t0 - jnp.sum(_mode_column(c.alpha, nd) * _stretches(q, self.ring), axis=-2)
        else:
            t = jnp.broadcast_to(p.t0, q.shape[:-2] + (nb,))
        t = t + _row(p.t_static, nd - 1)
        eps = _row(p.eps_static, nd - 1)
        if self.holstein:
            eps = eps + jnp.sum(_mode_column(c.g, nd) * q, axis=-2)
        else:
            eps = jnp.broadcast_to(eps, q.shape[:-2] + (q.shape[-1],))
        return t, eps


# --------------------------------------------------------------------------------------------
# Layers in the split real form
# --------------------------------------------------------------------------------------------
def rotation(theta):
    """1 - cos θ and sin θ of angles θ as an exactly unitary rational rotation: with y = θ/2 and
    tan y ≈ n/d = y(15 - y²)/(15 - 6y²) (the [3/2] Padé approximant), c = (d² - n²)/(d² + n²),
    s = 2nd/(d² + n²). c² + s² = 1 identically (to rounding), the map is odd in θ (a step with -dt is
    the exact inverse), and the angle it rotates by is θ(1 - θ⁶/100800 + ...), i.e. ~7e-15 relative
    at θ = 0.03 (t0 dt/ħ at dt = 0.02 fs) and ~1e-5 at θ = 1: far below the splitting error of
    either order for any usable step. Unlike cos and sin it needs no transcendental function,
    which on the CPU costs more than the whole rest of the step.

    Returned as (g, s, gc) with g = 1 - c = 2n²/(d² + n²), formed directly (no 1 - c cancellation),
    and applied as increments x - (g x ∓ s y + gc x) (``rotate_pairs``). Why: with c itself, rounded
    next to 1, |c|² + s² - 1 is a rounding bias of ~eps per layer, the same at every step where the
    angles repeat, so the norm drifts linearly (float32: 1.3e-2 after 1e5 steps, ring N = 1024). With
    g and s each good to a relative eps the bias β = (1 - g)² + s² - 1 is ~θ² eps per layer (std
    1e-10 at θ = 0.03 in float32: still 1e-5 to 1e-4 after 1e5 steps); in float32, gc = β/2 computed
    exactly (``norm_defect``) removes it in the mean of the rounded increments (std 6e-14 left).
    In float64 (eps θ² ~ 1e-19 per layer) gc is None."""
    y = theta / 2
    y2 = y * y
    n = y * (15 - y2)
    d = 15 - 6 * y2
    r = 1 / (d * d + n * n)
    g, s = 2 * n * n * r, 2 * n * d * r
    return g, s, (norm_defect(g, s) / 2 if theta.dtype == jnp.float32 else None)


def rotation_rate(theta):
    """dψ/dθ of the angle ψ = 2 atan(n/d) that ``rotation`` turns by (c = cos ψ, s = sin ψ):
    (n'd - nd') / (d² + n²) with n' = 15 - 3y², d' = -12y (y = θ/2); 1 at θ = 0. The derivative
    of a rotation by ψ(θ) is ψ'(θ) times the generator applied to the rotated state, which is how
    the adjoint reads an angle's cotangent (``TightBinding.advance_back``)."""
    y = theta / 2
    y2 = y * y
    n = y * (15 - y2)
    d = 15 - 6 * y2
    return ((15 - 3 * y2) * d + 12 * y * n) / (d * d + n * n)


def computed_once(f, x):
    """f(x) with its results held in buffers, computed once (x an array or a pytree of them).

    XLA:CPU fuses an elementwise producer into each of its consumers and recomputes it there: each
    of the four real outputs of a layer recomputed the layer's rotations from the angles (37
    operations per element where 9 apply them; benchmarks/RESULTS.md). A conditional's results are
    buffers, so its branch runs once; the predicate (x's first entry is finite) is data XLA cannot
    fold, and both branches are f, so the value is f(x) either way. Only on the CPU; elsewhere (a
    GPU's conditional waits for the host) f is called as is."""
    held = lambda y: jax.lax.cond(jnp.isfinite(jax.tree_util.tree_leaves(y)[0].reshape(-1)[0]), f, f, y)
    return jax.lax.platform_dependent(x, cpu=held, default=f)


def norm_defect(g, s):
    """β = (1 - g)² + s² - 1 = (s² - 2g) + g² of float32 coefficients, to a relative ~eps of β
    itself: s² exactly as p + e (Dekker's product with Veltkamp's split), p - 2g exact (Sterbenz:
    p and 2g are within a factor 2); g² is rounded (an error ~eps θ⁴/4, ~θ²/4 of β's own size: what is
    left of the bias is θ² smaller)."""
    c = 4097.0 * s  # 2^12 + 1: splits a 24-bit significand into two 12-bit halves
    hi = c - (c - s)
    lo = s - hi
    p = s * s
    e = ((hi * hi - p) + 2 * hi * lo) + lo * lo
    return ((p - 2 * g) + e) + g * g


def _less(x, g, sy, gc):
    """x - ((g x [+ gc x]) + sy): the increment form of one output of a rotation (sy: ∓ s y). gc x
    (~1 ulp of g x) goes in before anything larger is added, so that its rounding keeps it in the
    mean; added to the increment or to g, it would round away."""
    gx = g * x if gc is None else g * x + gc * x
    return x - (gx + sy)


def rotate_pairs(z, gs):
    """[[c, i s], [i s, c]] on each pair (A_j, B_j) (the even bonds), in real arithmetic, as
    increments: x c - y s = x - (g x + s y) with g = 1 - c (and gc, ``rotation``)."""
    Ar, Ai, Br, Bi = z
    g, s, gc = gs
    return (_less(Ar, g, s * Bi, gc), _less(Ai, g, -s * Br, gc),
            _less(Br, g, s * Ai, gc), _less(Bi, g, -s * Ar, gc))


def rotate_odd(z, gs, ring: bool):
    """Bond 2j+1 joins B_j and A_{j+1}: each output is computed in place from shifted inputs (gs per
    bond j; on the open chain the missing bond past the end is the identity: g = s = gc = 0)."""
    Ar, Ai, Br, Bi = z
    g, s, gc = gs
    gl, sl = shift_sites(g, -1, ring), shift_sites(s, -1, ring)  # the bond left of A_j
    gcl = None if gc is None else shift_sites(gc, -1, ring)
    nBr = _less(Br, g, s * shift_sites(Ai, 1, ring), gc)
    nBi = _less(Bi, g, -s * shift_sites(Ar, 1, ring), gc)
    nAr = _less(Ar, gl, sl * shift_sites(Bi, -1, ring), gcl)
    nAi = _less(Ai, gl, -sl * shift_sites(Br, -1, ring), gcl)
    return nAr, nAi, nBr, nBi


def phase_sites(z, gs):
    """Multiply A and B by e^{-iφ}, gs = (rotation(φ_A), rotation(φ_B)): 1 - cos φ, sin φ (and gc)
    per sublattice, as increments."""
    Ar, Ai, Br, Bi = z
    (ga, sa, gca), (gb, sb, gcb) = gs
    return (_less(Ar, ga, -sa * Ai, gca), _less(Ai, ga, sa * Ar, gca),
            _less(Br, gb, -sb * Bi, gcb), _less(Bi, gb, sb * Br, gcb))


def to_split(psi, M: int):
    """(..., N) complex -> (Re A, Im A, Re B, Im B), each (..., M), zero-padded to 2M sites."""
    A, B = by_parity(psi, M)
    return (A.real, A.imag, B.real, B.imag)


def from_split(z, N: int):
    """Inverse of ``to_split``: (..., N) complex."""
    Ar, Ai, Br, Bi = z
    pairs = jnp.stack([jax.lax.complex(Ar, Ai), jax.lax.complex(Br, Bi)], axis=-1)  # (..., M, 2)
    return pairs.reshape(*Ar.shape[:-1], 2 * Ar.shape[-1])[..., :N]


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Layers:
    """The coordinate-dependent coefficients of one sub-step: ``trail`` the outer half angle (even
    bonds: θ/2 (..., M); with site energies: (φ_A, φ_B)), ``even`` the even-bond rotation (1 - c, s, gc)
    (only with site energies, where the outer layer is V), ``odd`` the odd-bond rotation (1 - c, s, gc);
    ``lead`` the leading half's angle where it differs from the trailing one (site kicks), else None."""

    trail: object
    even: object
    odd: object
    lead: object = None


# --------------------------------------------------------------------------------------------
# The model
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class TightBinding:
    """The chain electron (static under jit): N sites, ring or open, recoil on/off, site energies
    on/off, the coupling, and whether frames record |ψ_n|² and |ψ~(k)|². See wow.models for the
    protocol each method implements. transport: frames also record the transport observables
    (wow.transport.chain_frame); kubo: the state carries a second copy φ, φ(0) = vψ(0), on a
    leading axis of size 2 (ψ, φ), and frames record the velocity correlation; save_amplitudes:
    frames record ψ_n itself (complex; memory grows with the frames).
    ``hold_rotations`` (a speed choice, the same numbers to
    rounding): each layer's rotations are computed once per sub-step into buffers rather than
    recomputed inside every output's fused loop: 1.2-1.4x faster steps on a moving lattice whose
    layers the loop merges (wow), slower where every sub-step also closes its trailing half
    (Ehrenfest: 0.9x), moot on a frozen lattice (the layers are computed outside the loop);
    benchmarks/RESULTS.md."""

    N: int
    boundary: str
    recoil: bool = False
    use_onsite: bool = False
    save_density: bool = False
    coupling: object = None
    transport: bool = False
    kubo: bool = False
    save_amplitudes: bool = False
    hold_rotations: bool = False
    sample_axis = -2
    exact_cm = False  # <P_R> = Q - ħ<k> - ΔP_ph: crystal-momentum bookkeeping (docs/model.md)

    def __post_init__(self):
        if self.coupling is None:
            object.__setattr__(self, "coupling", SSHDeformation(self.ring, self.use_onsite))

    @property
    def ring(self) -> bool:
        return self.boundary == "ring"

    @property
    def M(self) -> int:
        return (self.N + 1) // 2

    @property
    def n_amplitudes(self) -> int:
        return self.N

    # -- the electron's initial state and its block layout ------------------------------------
    def packet(self, cfg, cplx):
        """The configured initial packet, (N,) complex."""
        return packet(self.N, cfg.chain.a, cfg.x0, cfg.electron.sigma, cfg.k0, cplx)

    def to_block(self, psi):
        """Samples first (S, N) -> the block layout (S, N) (the same here)."""
        return psi

    def from_block(self, x):
        """The block layout (..., S, N) (leading axes, e.g. a quantum backend's) -> (S, ..., N)."""
        return jnp.moveaxis(x, -2, 0)

    def initial_momentum(self, psi, k0, p: ChainParams):
        """The electron's part of the sector Q = P_R(0) + ħk0: ħk0 for every ψ (B, N)."""
        return jnp.broadcast_to(HBAR * k0, psi.shape[:-1]).astype(p.k.dtype)

    def start(self, psi, p: ChainParams):
        """The carried state of amplitudes ψ (..., B, N)."""
        return to_split(psi, self.M)

    def amplitudes(self, z, p: ChainParams):
        return from_split(z, self.N)

    # -- layers ---------------------------------------------------------------------------------
    def fixed(self, h, p: ChainParams, Q):
        """Coordinate-independent part of a sub-step of length h: the recoil phase e^{-iφ} (B, N)
        for the sector Q (B,), or None; as 1 - e^{-iφ} = g + i s (g = 2 sin²(φ/2), s = sin φ, no
        cancellation), applied as an increment ψ - F⁻¹[(g + is) Fψ] (``advance``): e^{-iφ} itself
        (cos φ rounded next to 1 at φ ~ 1e-4) and the float32 FFT round trip each lose the norm by a
        bias of ~eps per step (measured: 6e-3 after 1e5 float32 steps, ring N = 16); as an increment
        both act on the O(φ) correction only."""
        if not self.recoil:
            return None
        phi = (Q[:, None] - HBAR * p.k[None, :]) ** 2 * p.inv_2NM * (h / HBAR)
        return jax.lax.complex(2 * jnp.sin(phi / 2) ** 2, jnp.sin(phi))

    def layers(self, coords, h, p: ChainParams) -> Layers:
        """The coupling's hoppings and site energies at ``coords`` as this sub-step's coefficients.
        coords['kick'] (optional, with site energies): site phases (φ_lead, φ_trail), each (..., N)
        radians, added to the leading and the trailing half layer (a noise backend's fresh draws)."""
        outer, even, odd = self._angles(coords, h, p)
        odd = self._rotation(odd)
        if not self.use_onsite:
            return Layers(trail=outer, even=None, odd=odd)
        if "kick" not in coords:
            return Layers(trail=outer, even=self._rotation(even), odd=odd)
        kick = [tuple(x + y for x, y in zip(outer, by_parity(phi, self.M))) for phi in coords["kick"]]
        return Layers(trail=kick[1], even=self._rotation(even), odd=odd, lead=kick[0])

    def _angles(self, coords, h, p: ChainParams):
        """(outer, even, odd): the angles of a sub-step's outer half layer (even bonds' θ/2, or the
        site phases (φ_A, φ_B)/2 with site energies), of its even-bond layer (with site energies,
        else None) and of its odd-bond layer (θ, or θ/2 twice around the recoil)."""
        t, eps = self.coupling.terms(coords, p)
        k = h / HBAR
        te, to = by_parity(t, self.M)
        odd = to * (k / 2 if self.recoil else k)
        if not self.use_onsite:
            return te * (k / 2), None, odd
        ea, eb = by_parity(eps, self.M)
        return (ea * (k / 2), eb * (k / 2)), te * (k / 2), odd

    def whole_angles(self, coords, h, p: ChainParams):
        """The angles (outer, even, odd) of a whole sub-step (``advance`` then ``close_joined``):
        linear in the hoppings and site energies (hence in the coordinates) and in h.
        ``advance_back`` / ``close_back`` give their cotangents, ``angles_back`` pulls those back to
        the coordinates and the parameters."""
        if "kick" in coords:
            raise ValueError("whole_angles: site kicks (a noise backend) have no whole-step adjoint")
        return self._angles(coords, h, p)

    def angles_back(self, coords, h, p: ChainParams, ct_angles):
        """The transpose of ``whole_angles`` at ``coords``: (the coordinates' cotangent, per-element
        statistics whose sums ``angles_params`` turns into the parameters' cotangents), from the
        angles' cotangents (as ``whole_angles`` gives the angles); None for a coupling other than
        SSHDeformation (the caller then differentiates ``whole_angles`` itself). Written out
        because, per step, JAX's transpose sums every parameter's cotangent at once (a reduction
        per parameter per step); here they are accumulated per element and summed once."""
        if type(self.coupling) is not SSHDeformation:
            return None
        outer, even, odd = ct_angles
        u = coords["u"]
        k = h / HBAR
        ring = self.ring
        nb = u.shape[-1] if ring else u.shape[-1] - 1
        ct_te = (even if self.use_onsite else outer) * (k / 2)
        ct_t = interleave(ct_te, odd * (k / 2 if self.recoil else k), nb)
        b = bond_stretches(u, ring)
        stats = {"t": ct_t, "tb": ct_t * b}
        ct_b = -p.alpha * ct_t
        if self.use_onsite:
            ct_eps = interleave(*outer, u.shape[-1]) * (k / 2)
            stats.update(eps=ct_eps, es=ct_eps * site_strains(b, p.a, ring))
            # s_n = (b_{n-1} + b_n)/(2a): bond n enters the strains of sites n and n+1
            ct_b = ct_b + (p.D / (2 * p.a)) * (ct_eps + shift_sites(ct_eps, 1, ring))[..., :nb]
        # b_n = u_{n+1} - u_n
        ct_u = (jnp.roll(ct_b, 1, axis=-1) - ct_b) if ring else (_pad_sites(ct_b, 1, 0) - _pad_sites(ct_b, 0, 1))
        return {"u": ct_u}, stats

    def angles_params(self, stats, p: ChainParams):
        """(the ChainParams cotangent, h times the cotangent of the sub-step length h) of summed
        ``angles_back`` statistics: t = t0 - α b + δt, ε = D s + δε with s ∝ 1/a, and every angle is
        h/ħ times a hopping or site energy, so h dL/dh = Σ ct_t t + Σ ct_ε ε."""
        per_site = lambda x: jnp.sum(x.reshape(-1, x.shape[-1]), axis=0)  # noqa: E731  (over leading axes)
        t, tb, t_site = jnp.sum(stats["t"]), jnp.sum(stats["tb"]), per_site(stats["t"])
        ct = dataclasses.replace(jax.tree_util.tree_map(jnp.zeros_like, p), t0=t, alpha=-tb, t_static=t_site)
        h_ct = p.t0 * t - p.alpha * tb + jnp.sum(p.t_static * t_site)
        if "eps" in stats:
            es, e_site = jnp.sum(stats["es"]), per_site(stats["eps"])
            ct = dataclasses.replace(ct, D=es, a=-p.D * es / p.a, eps_static=e_site)
            h_ct = h_ct + p.D * es + jnp.sum(p.eps_static * e_site)
        return ct, h_ct

    def _rotation(self, theta):
        """``rotation``, computed once into buffers (``computed_once``) with ``hold_rotations``."""
        return computed_once(rotation, theta) if self.hold_rotations else rotation(theta)

    def join(self, trail, layers: Layers):
        """The merged first layer of a sub-step: the previous sub-step's trailing half (None: none)
        and this sub-step's leading half, as one rotation (or pair of site phases)."""
        lead = layers.trail if layers.lead is None else layers.lead
        angle = lead if trail is None else jax.tree_util.tree_map(jnp.add, trail, lead)
        return self._outer_coefficients(angle)

    def _outer_coefficients(self, angle):
        if self.use_onsite:
            return (self._rotation(angle[0]), self._rotation(angle[1]))
        return self._rotation(angle)

    def _outer(self, z, coefficients):
        return phase_sites(z, coefficients) if self.use_onsite else rotate_pairs(z, coefficients)

    def advance(self, z, layers: Layers, join, fixed):
        """One sub-step with its first layer ``join``, leaving its trailing half layer pending."""
        z = self._outer(z, join)
        if self.use_onsite:
            z = rotate_pairs(z, layers.even)
        z = rotate_odd(z, layers.odd, self.ring)
        if fixed is not None:
            psi = from_split(z, self.N)
            # ψ - F⁻¹[(1 - e^{-iφ}) Fψ]: the FFT pair's rounding (a float32 round trip loses ~4e-8 of
            # the norm, always the same sign) touches only the small increment
            psi = psi - jnp.fft.ifft(jnp.fft.fft(psi, axis=-1) * fixed, axis=-1)
            z = rotate_odd(to_split(psi, self.M), layers.odd, self.ring)
        if self.use_onsite:
            z = rotate_pairs(z, layers.even)
        return z

    def close(self, z, trail):
        """Apply a pending trailing half layer (angle ``trail``)."""
        return self._outer(z, self._outer_coefficients(trail))

    def close_joined(self, z, join):
        """The trailing half by the coefficients ``join(None, layers)`` of the same sub-step (its
        leading half is the same layer where ``layers.lead`` is None): made once, not twice."""
        return self._outer(z, join)

    def step_angles(self, z, angles, fixed):
        """``advance`` by angles (join, even, odd) as ``whole_angles`` gives them, the first (outer)
        layer turned by ``join`` (this sub-step's leading half plus the previous one's trailing half,
        or alone): the merged sub-step the reversible adjoint runs forwards (``advance_back``)."""
        join, even, odd = angles
        tmap = jax.tree_util.tree_map
        rots = computed_once(lambda a: tmap(rotation, a), (join, even, odd))
        lay = Layers(trail=None, even=rots[1], odd=rots[2])
        return self.advance(z, lay, rots[0], fixed)

    def advance_back(self, z, ct, angles, fixed, defer: bool = False):
        """``step_angles`` run backwards in one pass: (z before it, the cotangent before it, the
        angles' cotangents (as ``angles``: join, even, odd), ``fixed``'s cotangent (d/dRe, d/dIm), or
        None without recoil), from z and the cotangent ct after it.

        In the split real form every layer is orthogonal, so its inverse and its transpose are the
        same layer: the rotations with s -> -s (the recoil layer with e^{+iφ}). The state and its
        cotangent are undone together, layer by layer, by rotations made once for both (held in
        buffers, ``computed_once``). A rotation by ψ(θ) has derivative ψ'(θ) G R (G the generator:
        iσ_x on a bond, -i on a site; ``rotation_rate``), so an angle's cotangent is ψ'(θ) <ct, G z>
        read on the layer's output side, before it is undone: nothing stored. The recoil layer
        ψ - F⁻¹[(g + is)Fψ] gives (-Re, Im) of conj(F ct) (F ψ_in) / N for its (g, s). The same
        numbers as jax.vjp of the sub-step at the recovered state, to rounding
        (tests/test_adjoint.py). defer: leave out (None) the cotangents of the layers before the
        recoil, for ``deferred_back`` to read later from the returned z and cotangent."""
        kinds = self._kinds()
        read = len(kinds) - kinds.index("recoil") if (defer and self.recoil) else None
        z, ct, ct_angles, ct_fixed = self._undo(z, ct, kinds, dict(zip(("join", "even", "odd"), angles)), fixed, read)
        return z, ct, tuple(ct_angles.get(k) for k in ("join", "even", "odd")), ct_fixed

    def _kinds(self):
        """A merged sub-step's layers in forward order (``advance``)."""
        even = ["even"] if self.use_onsite else []
        return ["join"] + even + ["odd"] + (["recoil", "odd"] if self.recoil else []) + even

    def deferred_back(self, z, ct, angles):
        """The angles' cotangents that ``advance_back(..., defer=True)`` left out (those of the layers
        before the recoil: join, [even], odd; as ``angles``, None where none), read from z and the
        cotangent ct before the sub-step (what ``advance_back`` returned) by running those layers
        forwards again. A layer's rotation commutes with its generator and turns the cotangent as it
        turns z, so <ct, G z> is the same number on either side of it. Why: read from loop-carried
        buffers in the next iteration, these cost a few operations per element; read inside the
        backward sweep, XLA:CPU fused the sweep's layers (from the recoil's complex output) into
        every one of them (measured: ~1/3 of a reversible gradient's time, 32 samples)."""
        if not self.recoil:
            return None, None, None
        kinds = self._kinds()
        pre = kinds[:kinds.index("recoil")]
        _, _, ct_angles, _ = self._undo(z, ct, pre, dict(zip(("join", "even", "odd"), angles)), None, forward=True)
        return tuple(ct_angles.get(k) for k in ("join", "even", "odd"))

    def close_back(self, z, ct, trail):
        """``close`` (a trailing half layer of angle ``trail``) run backwards: (z before it, the
        cotangent before it, trail's cotangent), as ``advance_back``."""
        z, ct, ct_angles, _ = self._undo(z, ct, ["join"], {"join": trail}, None)
        return z, ct, ct_angles["join"]

    def whole_back(self, z, ct, angles, fixed):
        """A whole sub-step (``advance`` then ``close_joined``, angles ``whole_angles``) run
        backwards: ``close_back`` then ``advance_back`` with the outer angle as the join; the outer
        angle's cotangent is the sum of both."""
        outer, even, odd = angles
        z, ct, c_close = self.close_back(z, ct, outer)
        z, ct, (c_join, c_even, c_odd), c_fixed = self.advance_back(z, ct, angles, fixed)
        return z, ct, (jax.tree_util.tree_map(jnp.add, c_close, c_join), c_even, c_odd), c_fixed

    def _undo(self, z, ct, kinds, angles, fixed, read=None, forward=False):
        """Undo the layers ``kinds`` (forward order; 'join' the outer layer: bonds, or site phases
        with site energies) of angles {kind: angle} on z and its cotangent ct together; returns
        (z, ct, {kind: the angle's cotangent}, fixed's cotangent or None) (``advance_back``).
        read: how many of the last layers (forward order) have their angles' cotangents read (None:
        all; the recoil's always). forward: apply the layers forwards instead (no recoil), reading
        each product on the layer's input side, where it is the same number (``deferred_back``)."""
        tmap = jax.tree_util.tree_map
        rots, rates = computed_once(lambda a: (tmap(rotation, a), tmap(rotation_rate, a)), angles)
        way = (lambda c: c) if forward else (lambda c: (c[0], -c[1], c[2]))  # noqa: E731  the inverse: s -> -s
        ring = self.ring
        acc = {}

        def add(name, v):
            acc[name] = v if name not in acc else tmap(jnp.add, acc[name], v)

        def apply(layer, w, *a):  # one layer on the state and on the cotangent
            zs, cs = layer(tuple(x[0] for x in w), *a), layer(tuple(x[1] for x in w), *a)
            return tuple(zip(zs, cs))

        def pairs(w, c, name, rd):
            Ar, Ai, Br, Bi = w
            if rd:
                add(name, (Bi[1] * Ar[0] - Ar[1] * Bi[0]) + (Ai[1] * Br[0] - Br[1] * Ai[0]))
            return apply(rotate_pairs, w, way(c))

        def bonds_odd(w, c, rd):
            Ar, Ai, Br, Bi = w
            nxt = lambda x: shift_sites(x, 1, ring)  # noqa: E731  A_{j+1}, the other end of bond 2j+1
            if rd:
                add("odd", (Bi[1] * nxt(Ar[0]) - nxt(Ar[1]) * Bi[0]) + (nxt(Ai[1]) * Br[0] - Br[1] * nxt(Ai[0])))
            return apply(rotate_odd, w, way(c), ring)

        def sites(w, c, rd):
            Ar, Ai, Br, Bi = w
            if rd:
                add("join", (Ar[1] * Ai[0] - Ai[1] * Ar[0], Br[1] * Bi[0] - Bi[1] * Br[0]))
            return apply(phase_sites, w, (way(c[0]), way(c[1])))

        def recoil(w):
            psi = from_split(tuple(jnp.stack(x) for x in w), self.N)  # ψ and its cotangent, one FFT
            f = jnp.fft.fft(psi, axis=-1)
            back = jnp.conj(fixed)
            x = jnp.conj(f[1]) * (f[0] - back * f[0]) / self.N  # conj(F ct) F ψ_in, F ψ_in = (1 - w*) F ψ
            add("fixed", (_sum_to(-x.real, fixed.shape), _sum_to(x.imag, fixed.shape)))
            w = to_split(psi - jnp.fft.ifft(f * back[None], axis=-1), self.M)
            return tuple((x[0], x[1]) for x in w)

        w = tuple(zip(z, ct))  # per component (state, cotangent): stacking them was 1.6x slower
        order = list(enumerate(kinds)) if forward else list(enumerate(kinds))[::-1]
        first_read = 0 if read is None else len(kinds) - read
        for pos, kind in order:
            rd = pos >= first_read
            if kind == "join":
                w = sites(w, rots["join"], rd) if self.use_onsite else pairs(w, rots["join"], "join", rd)
            elif kind == "even":
                w = pairs(w, rots["even"], "even", rd)
            elif kind == "odd":
                w = bonds_odd(w, rots["odd"], rd)
            else:
                w = recoil(w)
        ct_angles = {name: tmap(lambda g, a, r: _sum_to(g, a.shape) * r, acc[name], angles[name], rates[name])
                     for name in angles if name in acc}
        return tuple(x[0] for x in w), tuple(x[1] for x in w), ct_angles, acc.get("fixed")

    # -- energy and observables -----------------------------------------------------------------
    def energy(self, z, coords, p: ChainParams):
        """<ψ|H_e(coords)|ψ> per sample (B,), read from the split form in real arithmetic; summed
        over leading axes. The Ehrenfest force is minus its gradient with respect to coords."""
        t, eps = self.coupling.terms(coords, p)
        Ar, Ai, Br, Bi = z
        nxt = lambda x: shift_sites(x, 1, self.ring)
        # bond 2j joins A_j and B_j, bond 2j+1 joins B_j and A_{j+1}: -2 t Re(ψ_n* ψ_{n+1}) per bond.
        # The densities are interleaved into bond (site) order and t (eps) enters as is: splitting t
        # by parity instead puts the transpose of a stride-2 slice (an interior pad) into the
        # force, which XLA:CPU compiles without SIMD (benchmarks/loop_simd.py).
        w = interleave(Ar * Br + Ai * Bi, Br * nxt(Ar) + Bi * nxt(Ai), t.shape[-1])
        e = jnp.sum(-2.0 * t * w, axis=-1)
        if eps is not None:
            e = e + jnp.sum(eps * interleave(Ar**2 + Ai**2, Br**2 + Bi**2, eps.shape[-1]), axis=-1)
        return jnp.sum(e, axis=tuple(range(e.ndim - 1)))

    def observe(self, psi, p: ChainParams, coords=None):
        """Per-frame tallies of amplitudes ψ (..., B, N), summed over leading axes, each (B,):
        norm, <x> (Å), <k> (1/Å), P_b (weight at k < 0); with save_density also |ψ_n|² ('density')
        and |ψ~(k)|² ('momentum', FFT order), each (B, N); with save_amplitudes ψ_n ('psi', (B, N)).
        With transport and the lattice coordinates ``coords`` of the frame, the transport
        observables of wow.transport.chain_frame (with kubo, ψ is (2, B, N): ψ and φ)."""
        phi = None
        if self.kubo:
            psi, phi = psi[0], psi[1]
        lead = tuple(range(psi.ndim - 2))
        rho = jnp.sum(jnp.abs(psi) ** 2, axis=lead)
        wk = jnp.sum(jnp.abs(jnp.fft.fft(psi, axis=-1, norm="ortho")) ** 2, axis=lead)
        norm = jnp.sum(rho, axis=-1)
        x = jnp.arange(self.N, dtype=rho.dtype) * p.a
        out = {"norm": norm, "x_mean": rho @ x / norm, "k_mean": wk @ p.k / norm,
               "P_b": wk @ jnp.where(p.k < 0, 1.0, 0.0).astype(rho.dtype)}
        if self.save_density:
            out["density"] = rho
            out["momentum"] = wk
        if self.save_amplitudes:
            out["psi"] = psi
        if self.transport and coords is not None:
            t, eps = self.coupling.terms(coords, p)
            out.update(chain_frame(psi, rho, wk, t, eps, p, self.ring, phi))
        return out

    def sign_changes(self, coords, p: ChainParams):
        """Bonds whose hopping at ``coords`` has the opposite sign of its static value t0 + δt_b, per
        sample (B,) int32 (wow.sanity.watch, every step of a run). A cut bond (static value 0) never
        counts; with leading axes (a quantum backend's DVR points) a bond counts once if it changed
        sign at any of them."""
        t, _ = self.coupling.terms(coords, p)
        flipped = t * (p.t0 + _row(p.t_static, t.ndim)) < 0
        flipped = jnp.any(flipped, axis=tuple(range(t.ndim - 2))) if t.ndim > 2 else flipped
        return jnp.sum(flipped, axis=-1, dtype=jnp.int32)

    def current(self, psi, coords, p: ChainParams):
        """v ψ (Å/fs x amplitude) with the hoppings at ``coords``: the kubo state's φ(0)."""
        t, _ = self.coupling.terms(coords, p)
        return apply_velocity(psi, t, p.a, self.boundary)

    def weights(self, psi, p: ChainParams):
        """(total, backscattered) probability of every leading index of ψ (..., B, N): the sums of
        |ψ~(k)|² over all k and over k < 0, each (..., B)."""
        wk = jnp.abs(jnp.fft.fft(psi, axis=-1, norm="ortho")) ** 2
        return jnp.sum(wk, axis=-1), jnp.sum(jnp.where(_row(p.k, wk.ndim) < 0, wk, 0.0), axis=-1)

    def crystal_weights(self, psi, p: ChainParams):
        """(all, backscattered) weight per crystal momentum k (FFT order) of ψ (..., N): |ψ~(k)|² and
        the same at k < 0, each (..., N)."""
        wk = jnp.abs(jnp.fft.fft(psi, axis=-1, norm="ortho")) ** 2
        return wk, jnp.where(_row(p.k, wk.ndim) < 0, wk, 0.0)

    def split_amplitudes(self, psi, p: ChainParams):
        """The amplitudes the coherent/incoherent split averages over samples: ψ~(k) (..., N)."""
        return jnp.fft.fft(psi, axis=-1, norm="ortho")

    def split_mask(self, p: ChainParams):
        """Which of ``split_amplitudes`` are backscattered: k < 0, (N,) bool."""
        return p.k < 0

    def budget(self, out, lat):
        """The momentum budget of one sample (wow.occupations.momentum_budget): the CM takes what the
        electron and the phonons' crystal momentum do not."""
        return momentum_budget(out["dP_e"], lat["dP_ph"])

    # -- per-sample tallies (one sample: ψ (N,), u (N,)) -----------------------------------------
    def energy_of(self, psi, u, p: ChainParams):
        """<ψ|H_e(u)|ψ> (eV) of one sample's complex amplitudes (N,) at displacements (N,)."""
        t, eps = self.coupling.terms({self.coupling.reads[0]: u}, p)  # one sample's lattice array
        eps = jnp.zeros(psi.shape, t.dtype) if eps is None else eps
        right = jnp.roll(psi, -1) if self.ring else psi[1:]
        left = psi if self.ring else psi[:-1]
        return -2.0 * jnp.sum(t * jnp.real(jnp.conj(right) * left)) + jnp.sum(eps * jnp.abs(psi) ** 2)

    def recoil_energy_of(self, psi, Q, p: ChainParams):
        """<(Q - ħk)²/(2NM)> of one sample: the CM kinetic energy in the sector Q (eV)."""
        w = jnp.abs(momentum_amplitudes(psi)) ** 2
        return jnp.sum(w * (Q - HBAR * p.k) ** 2) * p.inv_2NM

    def band(self, k, p: ChainParams):
        return band(k, p.t0, p.a)

    def tallies(self, psi0, psi_f, u0, u_f, Q, p: ChainParams):
        """One sample's tallies (wow.tally.final_tallies, the backscattered weight per energy channel
        (wow.channels) and the electron's momentum change dP_e = ħ(<k>_f - <k>_0)) and its final
        ψ~(k): ψ (N,) complex, u (N,)."""
        out, psik = final_tallies(self, psi0, psi_f, u0, u_f, Q, p)
        w0 = jnp.abs(momentum_amplitudes(psi0)) ** 2
        out.update(channel_weights(w0, jnp.abs(psik) ** 2, p.k, p.t0, p.a, p.omega_max))
        out["dP_e"] = HBAR * (out["k_f"] - jnp.sum(p.k * w0) / jnp.sum(w0))
        return out, psik
