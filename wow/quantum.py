"""Quantum lattice (MODEL.md, ``quantum`` dynamics): chosen internal modes as quantum oscillators in
a truncated Fock basis, the electron coupled to them through the same SSH / deformation coupling
as the classical lattice, and backscattering resolved by the change of the modes' occupations.

State
-----
One sample is ψ[α_1, ..., α_m, n]: m quantum modes (axes in increasing mode index j), mode i with
d_i = n_max_i + 1 levels, times the N electron sites, N Π d_i amplitudes, never a dense Hamiltonian.
During propagation the phonon axes hold amplitudes at the discrete-variable-representation (DVR)
points of each mode: the eigenvalues x_α of the truncated X = a + a† (d x d, tridiagonal), so that
Q_j = ℓ_j X with ℓ_j = sqrt(ħ/(2Mω_j)) is diagonal. Fock amplitudes c and DVR amplitudes φ are
related by the real orthogonal eigenvector matrix V (X = V diag(x) Vᵀ): φ = Vᵀ c, c = V φ.

The Hamiltonian, exactly as ``wow.frozen``/``wow.wow`` with u = u_cl + Σ_j e_{nj} Q_j:

    H = H_e(t_b, ε_n) + Σ_j ħω_j (a_j†a_j + 1/2),   t_b = t0 - α(b_cl,b + Σ_j ℓ_j x_j Δe_{bj}),

Δe_{bj} = e_{b+1,j} - e_{bj} (bond stretch of mode j), ε_n = D (b_{n-1} + b_n)/(2a) likewise; u_cl
is the other (non-quantum) modes: ``absent`` (0), ``frozen`` (their thermal sample) or ``wow``
(their exact harmonic motion from the sample). The coupling is linear in Q_j, so in the truncated
Fock space it is exactly Q_j's truncated matrix: the split-operator step converges to expm of the
truncated electron x Fock Hamiltonian (tested).

Step (Strang, second order): P(dt/2) · E(dt) · P(dt/2), with P the phonon phases
exp(-iω_j(n+1/2)τ), diagonal in Fock, applied in the DVR as the d x d matrix Vᵀ diag(...) V per
mode; E the electron's own Strang step (``propagate._bond_layer``, whose rotations act on the last
axis and broadcast over the DVR axes) with hoppings at the DVR points (and at mid-step times for
``wow`` modes). Consecutive phonon half-steps are fused, so a step costs one d x d matrix per mode;
with ``phonon_every`` = K the phonon step is P(K dt/2) E(dt)^K P(K dt/2), still symmetric.

Bases for the tallies
---------------------
``standing``: the lattice's real modes (open chain; ring cos/sin modes). ``running`` (ring only):
every pair (j, N-j) of cos/sin modes of one |q| = 2πj/(Na) is rewritten in running waves
a_{±q} = (a_c ± i a_s)/√2 (the ± sign here, opposite to the "(a_c ∓ i a_s)/√2" of the issue, because
the lattice's sine partner of mode j is e_{n,N-j} = -sqrt(2/N) sin(qna): with it
u_n = sqrt(2/N) Re[(Q_c + iQ_s) e^{iqna}], and a_{+q} multiplies e^{+iqna}). Fock states of a_{±q}
carry crystal momentum ±ħq; the mode j = N/2 carries π/a (≡ -π/a). The pair's basis change is the
unitary ``running_wave_matrix`` on the box n_c, n_s <= n_max; it conserves n_c + n_s, so it is
exact on states with n_c + n_s <= n_max and loses the part of a state beyond (reported per sample
as ``norm_basis``, the total population seen in the analysis basis).

Momentum bookkeeping (MODEL.md): P_ph = Σ_pairs ħq <n_+ - n_-> + (ħπ/a)<n_{N/2}> on the ring (zero on
the open chain, whose standing waves carry no crystal momentum), and the CM's share
<P_R>(t) = Q - ħ<k>(t) - (<P_ph>(t) - P_ph(0)), Q = P_R(0) + ħk0. The CM does not act on the
electron here (no recoil phase: the CM kinetic energy at fixed total momentum would depend on the
phonons' momentum too; a 1/N effect left out).
"""

from __future__ import annotations

import dataclasses
import math
import time
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import devices as _devices, lattice
from .config import Config, ConfigError, validate
from .electron import bonds, k_grid, onsite, packet
from .lattice import Chain, ModeSample
from .propagate import _bond_layer
from .tally import mean_sem, weighted_mean_sem
from .units import HBAR

OTHERS = ("absent", "frozen", "wow")
BASES = ("standing", "running")
#: Weight in the top Fock level above which a run warns that n_max is too small.
TOP_WEIGHT_WARN = 1e-6
#: Refuse a run whose state (complex amplitudes per sample) is larger than this.
MAX_STATE = 2**27


@dataclasses.dataclass(frozen=True)
class QuantumLattice:
    """Which modes are quantum and how.

    modes: internal mode indices j in 1..N-1 (lattice.py numbering; see ``momentum_modes``);
    n_max: Fock truncation, levels 0..n_max: one int for every mode, or one per mode (in the order
    of ``modes``; a cos/sin pair in the running basis needs equal n_max); others: what the other internal modes do,
    'absent' (u = 0), 'frozen' (their thermal sample, static), 'wow' (their exact harmonic motion),
    None = the Config's ``dynamics``; basis: occupation basis of the initial Fock states and of the
    Δn tallies, 'standing' or 'running' (ring, every mode but N/2 in a complete cos/sin pair);
    phonon_every: apply the (exact) phonon phases once per this many electron steps,
    P(K dt/2) E(dt)^K P(K dt/2), still a symmetric second-order splitting: the phonon transforms
    cost m d per amplitude against ~30 for an electron step, and ω K dt stays << 1 (ħω ~ 0.03 eV
    for copper: K = 10 at dt = 0.02 fs is ω K dt ~ 0.01). Must divide the steps per frame.
    """

    modes: tuple = ()
    n_max: int | tuple = 4
    others: str | None = None
    basis: str = "standing"
    phonon_every: int = 1


# --------------------------------------------------------------------------------------------
# Modes, DVR, running waves
# --------------------------------------------------------------------------------------------
def mode_wavevector(chain: Chain, j: int) -> float:
    """|q| of mode j (1/Å): open jπ/(Na) (a standing wave, ±q); ring 2πj'/(Na) with j' = min(j, N-j)."""
    if chain.boundary == "open":
        return j * math.pi / (chain.N * chain.a)
    return 2 * math.pi * min(j, chain.N - j) / (chain.N * chain.a)


def momentum_modes(chain: Chain, q: float) -> tuple:
    """The modes able to take momentum q (1/Å), folded into the zone: the open-chain standing wave
    j = round(|q|Na/π); on the ring the cos/sin pair (j, N-j), j = round(|q|Na/2π) (or j = N/2 alone)."""
    N, a = chain.N, chain.a
    qf = abs((q + math.pi / a) % (2 * math.pi / a) - math.pi / a)
    if chain.boundary == "open":
        j = int(round(qf * N * a / math.pi))
        if not 1 <= j <= N - 1:
            raise ConfigError(f"q={q!r}: no internal mode of the open chain has |q| near {qf:g} 1/Å "
                              f"(allowed |q| in [π/(Na), (N-1)π/(Na)] = [{math.pi / (N * a):g}, {(N - 1) * math.pi / (N * a):g}])")
        return (j,)
    j = int(round(qf * N * a / (2 * math.pi)))
    if j == 0:
        raise ConfigError(f"q={q!r}: folds to q = 0 on the ring, the CM (not an internal mode); allowed |q| >= 2π/(Na)")
    return (j,) if 2 * j == N else (j, N - j)


def dvr(n_max: int):
    """DVR of the dimensionless X = a + a† truncated at n_max: points x (d,), sorted, and the real
    orthogonal V (d, d) with X = V diag(x) Vᵀ (column α is the DVR state in the Fock basis, V[0] > 0)."""
    d = n_max + 1
    off = np.sqrt(np.arange(1, d, dtype=float))
    x, V = np.linalg.eigh(np.diag(off, 1) + np.diag(off, -1))
    return x, V * np.sign(V[0])


def running_wave_matrix(n_max: int) -> np.ndarray:
    """W (d², d²), d = n_max + 1: running-wave amplitudes c±[n_+, n_-] = Σ W[(n_+,n_-),(n_c,n_s)] c[n_c, n_s]
    of a cos/sin pair, a_{±} = (a_c ± i a_s)/√2 (module doc). Block diagonal in n_c + n_s = n_+ + n_-;
    unitary on the blocks n_c + n_s <= n_max, truncated (norm-losing) above."""
    d = n_max + 1
    B = np.zeros((d, d, d, d), complex)  # <n_c, n_s | n_+, n_->
    f = [math.factorial(i) for i in range(2 * d)]
    for npl in range(d):
        for nmi in range(d):
            tot = npl + nmi
            for r in range(npl + 1):
                for s in range(nmi + 1):
                    nc, ns = r + s, tot - r - s
                    if nc >= d or ns >= d:
                        continue
                    # a_+† = (a_c† - i a_s†)/√2, a_-† = (a_c† + i a_s†)/√2
                    amp = (math.comb(npl, r) * math.comb(nmi, s) * (-1j) ** (npl - r) * (1j) ** (nmi - s)
                           * math.sqrt(f[nc] * f[ns] / (f[npl] * f[nmi])) / 2 ** (tot / 2))
                    B[nc, ns, npl, nmi] += amp
    return B.reshape(d * d, d * d).conj().T


# --------------------------------------------------------------------------------------------
# Static layout and traced parameters
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class QLayout:
    """Static under jit: sizes, the pairing of axes, the program's options."""

    chain: Chain
    dims: tuple  # d_i = n_max_i + 1 per quantum mode (axis order)
    m: int
    pairs: tuple  # ((axis_c, axis_s), ...) ring cos/sin pairs, both quantum
    half_axis: int  # axis of the ring mode N/2 if quantum, else -1
    others: str
    basis: str
    use_onsite: bool
    n_frames: int
    statistics: str


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QParams:
    """Traced arrays of a run (shared by the samples). Energies eV, lengths Å, times fs."""

    t_base: jax.Array  # (nb,) t0 + static offsets
    alpha: jax.Array
    D: jax.Array
    a: jax.Array
    dt: jax.Array
    k: jax.Array  # (N,) DFT momenta, FFT order
    hop_q: jax.Array  # dims + (nb,): -α Σ_j ℓ_j x_j Δe_bj at the DVR points
    eps_q: jax.Array  # dims + (N,): site energies of the quantum modes at the DVR points
    U_full: tuple  # per mode (d_i, d_i): phonon propagator over K dt (K = phonon_every), in the DVR
    U_half: tuple  # per mode, over K dt/2
    V: tuple  # per mode (d_i, d_i) DVR -> Fock: c = V φ
    W: tuple  # per ring pair (d², d²): standing -> running
    q_pair: jax.Array  # (n_pairs,) |q| of each pair (1/Å)
    q_half: jax.Array  # π/a
    mask_cl: jax.Array  # (N-1,) 1 for classical modes that are present, else 0
    K: jax.Array  # int: electron steps per phonon step (phonon_every)
    groups: jax.Array  # int: phonon steps per frame (steps_per_frame / K); traced, so dt can vary without recompiling


def _check(cfg: Config, ql: QuantumLattice):
    validate(cfg)
    if not isinstance(ql, QuantumLattice):
        raise ConfigError(f"quantum lattice must be a wow.quantum.QuantumLattice, got {type(ql).__name__}")
    c = cfg.chain
    modes = tuple(ql.modes)
    if not modes:
        raise ConfigError("modes=(): give at least one quantum mode (indices 1..N-1, or momentum_modes(chain, q))")
    for j in modes:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 1 <= j <= c.N - 1:
            raise ConfigError(f"modes={modes!r}: entry {j!r} out of range: allowed integers 1..{c.N - 1} (N={c.N})")
    if len(set(modes)) != len(modes):
        raise ConfigError(f"modes={modes!r}: a mode is listed twice")
    nm = ql.n_max if isinstance(ql.n_max, (tuple, list)) else (ql.n_max,) * len(modes)
    if len(nm) != len(modes) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in nm):
        raise ConfigError(f"n_max={ql.n_max!r}: allowed an integer >= 0, or one per mode ({len(modes)})")
    nmax = {int(j): int(v) for j, v in zip(modes, nm)}
    others = cfg.dynamics if ql.others is None else ql.others
    if others not in OTHERS:
        raise ConfigError(f"others={ql.others!r} is not an option: allowed {', '.join(map(repr, OTHERS))} or None")
    if ql.basis not in BASES:
        raise ConfigError(f"basis={ql.basis!r} is not an option: allowed {', '.join(map(repr, BASES))}")
    if getattr(cfg, "order", 2) != 2:
        raise ConfigError(f"order={cfg.order!r}: the quantum lattice has the second-order (Strang) step only; allowed: 2")
    if cfg.recoil:
        raise ConfigError("recoil=True with a quantum lattice is not implemented (the CM energy at fixed total "
                          "momentum would depend on the phonons' momentum); allowed: recoil=False")
    if ql.basis == "running":
        if c.boundary != "ring":
            raise ConfigError("basis='running' needs boundary='ring' (the open chain has standing waves only)")
        lonely = [j for j in modes if 2 * j != c.N and c.N - j not in modes]
        if lonely:
            raise ConfigError(f"basis='running': modes {lonely} lack their cos/sin partner N-j "
                              f"({[c.N - j for j in lonely]}); allowed: complete pairs (momentum_modes gives them)")
        uneven = [j for j in modes if 2 * j < c.N and nmax[j] != nmax[c.N - j]]
        if uneven:
            raise ConfigError(f"n_max={ql.n_max!r}: basis='running' needs equal n_max on each cos/sin pair "
                              f"(modes {[(j, c.N - j) for j in uneven]} differ)")
    K = ql.phonon_every
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1 or cfg.steps_per_frame % K:
        raise ConfigError(f"phonon_every={K!r}: allowed integers >= 1 dividing the steps per frame "
                          f"({cfg.steps_per_frame} = duration/dt/n_frames)")
    size = c.N * math.prod(v + 1 for v in nm)
    if size > MAX_STATE:
        raise ConfigError(f"N Π(n_max+1) = {size} amplitudes per sample (N={c.N}, n_max={ql.n_max!r}): "
                          f"allowed <= {MAX_STATE}")
    srt = tuple(sorted(int(j) for j in modes))
    return srt, others, tuple(nmax[j] for j in srt)


def setup(cfg: Config, ql: QuantumLattice):
    """Validated (QLayout, QParams, modes, ħω_j) for a run; host-side numpy, once per config."""
    modes, others, nmax = _check(cfg, ql)
    c, e, K = cfg.chain, cfg.electron, ql.phonon_every
    real = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    cplx = jnp.complex128 if real == jnp.float64 else jnp.complex64
    N, m = c.N, len(modes)
    dims = tuple(v + 1 for v in nmax)
    dv = [dvr(v) for v in nmax]
    w_all = lattice.mode_frequencies(c)
    w = w_all[np.array(modes) - 1]
    ell = np.sqrt(HBAR / (2 * c.mass_ev * w))
    E = lattice.mode_matrix(c)[:, np.array(modes) - 1]  # (N, m)
    nb = c.n_bonds
    hop_q = np.zeros(dims + (nb,))
    eps_q = np.zeros(dims + (N,))
    for i in range(m):
        db = np.asarray(bonds(jnp.asarray(E[:, i]), c.boundary))  # Δe_bj
        shape = [1] * m + [1]
        shape[i] = dims[i]
        xi = (ell[i] * dv[i][0]).reshape(shape)
        hop_q = hop_q - e.alpha * xi * db.reshape([1] * m + [nb])
        if e.D != 0:
            es = np.asarray(onsite(jnp.asarray(db), e.D, c.a, c.boundary))
            eps_q = eps_q + xi * es.reshape([1] * m + [N])
    def Us(tau):
        return tuple(jnp.asarray(V.T @ np.diag(np.exp(-1j * wi * (np.arange(len(x)) + 0.5) * tau)) @ V, cplx)
                     for wi, (x, V) in zip(w, dv))
    ax = {j: i for i, j in enumerate(modes)}
    pairs = tuple((ax[j], ax[N - j]) for j in modes if c.boundary == "ring" and 2 * j < N and N - j in ax)
    half_axis = ax.get(N // 2, -1) if c.boundary == "ring" and N % 2 == 0 else -1
    t_static = np.zeros(nb)
    for b, dtb in e.bond_defects:
        t_static[int(b)] += dtb
    mask = np.ones(N - 1)
    mask[np.array(modes) - 1] = 0.0
    if others == "absent":
        mask[:] = 0.0
    f = lambda a_: jnp.asarray(a_, real)
    p = QParams(t_base=f(e.t0 + t_static), alpha=f(e.alpha), D=f(e.D), a=f(c.a), dt=f(cfg.dt),
                k=f(k_grid(N, c.a)), hop_q=f(hop_q), eps_q=f(eps_q),
                U_full=Us(K * cfg.dt), U_half=Us(K * cfg.dt / 2), V=tuple(f(V) for _, V in dv),
                W=tuple(jnp.asarray(running_wave_matrix(nmax[ia]), cplx) for ia, _ in pairs),
                q_pair=f([mode_wavevector(c, modes[i]) for i, _ in pairs]), q_half=f(math.pi / c.a),
                mask_cl=f(mask), K=jnp.asarray(K, jnp.int32), groups=jnp.asarray(cfg.steps_per_frame // K, jnp.int32))
    lay = QLayout(chain=c, dims=dims, m=m, pairs=pairs, half_axis=half_axis, others=others, basis=ql.basis,
                  use_onsite=e.D != 0, n_frames=cfg.n_frames, statistics=cfg.statistics)
    return lay, p, modes, HBAR * w


# --------------------------------------------------------------------------------------------
# Pieces of the step
# --------------------------------------------------------------------------------------------
def _apply(psi, U, axis):
    """Apply the d x d matrix U to one phonon axis of psi."""
    return jnp.moveaxis(jnp.tensordot(U, psi, axes=((1,), (axis,))), 0, axis)


def _phonons(psi, U, m):
    for i in range(m):
        psi = _apply(psi, U[i], i)
    return psi


def _lead(v, m):
    """A per-bond/per-site vector shaped to broadcast against the DVR axes (rank m + 1)."""
    return v.reshape((1,) * m + v.shape)


def _classical(s_cl: ModeSample, t, p: QParams, lay: QLayout):
    """Hoppings t0 - α b_cl (nb,) and site energies (N,) of the classical modes at time t."""
    c = lay.chain
    if lay.others == "wow":
        u = lattice.harmonic_motion(c, s_cl, t).u
    else:
        u = lattice.modes_to_sites(c, s_cl.Q)
    b = bonds(u, c.boundary)
    eps = onsite(b, p.D, p.a, c.boundary) if lay.use_onsite else None
    return p.t_base - p.alpha * b, eps


def _angles(th):
    return jnp.cos(th), jnp.sin(th)


def _shift(cq, sq, th):
    """cos and sin of θ_q + θ (θ per bond, broadcast over the DVR axes) by angle addition."""
    c, s = jnp.cos(th), jnp.sin(th)
    return cq * c - sq * s, sq * c + cq * s


def _electron(psi, rot, half_v, boundary):
    """The electron's Strang step V/2 · B_even/2 · B_odd · B_even/2 · V/2 (as propagate.electron_step
    without recoil) with precomputed bond rotations; psi's leading DVR axes broadcast."""
    ce, se, co, so = rot
    if half_v is not None:
        psi = psi * half_v
    psi = _bond_layer(psi, ce, se, 0, boundary)
    psi = _bond_layer(psi, co, so, 1, boundary)
    psi = _bond_layer(psi, ce, se, 0, boundary)
    if half_v is not None:
        psi = psi * half_v
    return psi


def to_fock(phi, p: QParams, m: int):
    """DVR amplitudes -> Fock amplitudes (standing basis) on every phonon axis."""
    return _phonons(phi, tuple(V.astype(phi.dtype) for V in p.V), m)


def to_running(c, p: QParams, lay: QLayout):
    """Standing-basis Fock amplitudes -> running-wave amplitudes on every quantum cos/sin pair."""
    for (ia, ib), W in zip(lay.pairs, p.W):
        d = lay.dims[ia]
        x = jnp.moveaxis(c, (ia, ib), (0, 1))
        sh = x.shape
        x = (W.astype(c.dtype) @ x.reshape(d * d, -1)).reshape(sh)
        c = jnp.moveaxis(x, (0, 1), (ia, ib))
    return c


def _ladder(c, axis):
    """a applied on one axis of Fock amplitudes: (a c)[n] = sqrt(n+1) c[n+1]."""
    d = c.shape[axis]
    sq = jnp.sqrt(jnp.arange(1, d, dtype=c.real.dtype))
    x = jnp.moveaxis(c, axis, -1)
    x = jnp.concatenate([x[..., 1:] * sq.reshape((1,) * (x.ndim - 1) + (d - 1,)), jnp.zeros_like(x[..., :1])], axis=-1)
    return jnp.moveaxis(x, -1, axis)


def _observe(phi, p: QParams, lay: QLayout):
    """Frame tallies from DVR amplitudes: norm, <x>, <k>, P_b, <n_j>, top-level weights, <P_ph>."""
    m = lay.m
    c = to_fock(phi, p, m)
    pop = jnp.sum(jnp.abs(c) ** 2, axis=-1)  # (d,)*m
    wk = jnp.sum(jnp.abs(jnp.fft.fft(c, axis=-1, norm="ortho")) ** 2, axis=tuple(range(m)))
    rho = jnp.sum(jnp.abs(c) ** 2, axis=tuple(range(m)))
    norm = jnp.sum(rho)
    x = jnp.arange(lay.chain.N, dtype=rho.dtype) * p.a
    marg = [jnp.sum(pop, axis=tuple(a for a in range(m) if a != i)) for i in range(m)]  # (d_i,) each
    n_mean = jnp.stack([jnp.sum(mg * jnp.arange(mg.shape[0], dtype=rho.dtype)) for mg in marg])
    P_ph = jnp.zeros((), rho.dtype)
    for (ia, ib), q in zip(lay.pairs, p.q_pair):
        z = jnp.vdot(_ladder(c, ia), _ladder(c, ib))  # <a_c ψ|a_s ψ>
        P_ph = P_ph + HBAR * q * (-2.0 * jnp.imag(z))  # <n_+ - n_-> = -2 Im z
    if lay.half_axis >= 0:
        P_ph = P_ph + HBAR * p.q_half * n_mean[lay.half_axis]
    return {"norm": norm, "x_mean": jnp.sum(x * rho) / norm, "k_mean": jnp.sum(p.k * wk) / norm,
            "P_b": jnp.sum(jnp.where(p.k < 0, wk, 0.0)), "n_mean": n_mean,
            "top": jnp.stack([mg[-1] for mg in marg]), "P_ph": P_ph}


def _initial_phonons(n0, p: QParams, lay: QLayout, cplx):
    """Fock product state with occupations n0 (m,) in the analysis basis, as DVR amplitudes."""
    m = lay.m
    c = jnp.ones((), cplx)
    for i, d in enumerate(lay.dims):
        v = jax.nn.one_hot(n0[i], d, dtype=cplx)
        c = c[..., None] * v.reshape((1,) * i + (d,))
    if lay.basis == "running":  # c holds (n_+, n_-) on each pair: back to (n_c, n_s) with W†
        for (ia, ib), W in zip(lay.pairs, p.W):
            d = lay.dims[ia]
            x = jnp.moveaxis(c, (ia, ib), (0, 1))
            sh = x.shape
            x = (jnp.conj(W.T).astype(cplx) @ x.reshape(d * d, -1)).reshape(sh)
            c = jnp.moveaxis(x, (0, 1), (ia, ib))
    return _phonons(c, tuple(V.T.astype(cplx) for V in p.V), m)


# --------------------------------------------------------------------------------------------
# One sample
# --------------------------------------------------------------------------------------------
def _evolve(n0, s_cl: ModeSample, psi_e, p: QParams, lay: QLayout):
    """Propagate one sample from the Fock state n0 ⊗ psi_e; returns (final DVR state, frames)."""
    m, boundary = lay.m, lay.chain.boundary
    cplx = psi_e.dtype
    phi = _initial_phonons(n0, p, lay, cplx)
    psi = phi[..., None] * _lead(psi_e, m)
    dt = p.dt
    he, ho = p.hop_q[..., 0::2], p.hop_q[..., 1::2]
    eps_q_phase = jnp.exp(-1j * p.eps_q * (dt / (2 * HBAR))) if lay.use_onsite else None

    def terms(t):  # rotations and site phases at time t
        t_cl, eps_cl = _classical(s_cl, t, p, lay)
        te = _lead(t_cl[0::2], m) * (dt / (2 * HBAR))
        to = _lead(t_cl[1::2], m) * (dt / HBAR)
        return te, to, eps_cl

    if lay.others == "wow":
        cqe, sqe = _angles(he * (dt / (2 * HBAR)))
        cqo, sqo = _angles(ho * (dt / HBAR))

        def electron(psi, t):
            te, to, eps_cl = terms(t)
            rot = _shift(cqe, sqe, te) + _shift(cqo, sqo, to)
            hv = (eps_q_phase * _lead(jnp.exp(-1j * eps_cl * (dt / (2 * HBAR))), m)) if lay.use_onsite else None
            return _electron(psi, rot, hv, boundary)
    else:
        te, to, eps_cl = terms(0.0)
        rot = _angles(he * (dt / (2 * HBAR)) + te) + _angles(ho * (dt / HBAR) + to)
        hv = (eps_q_phase * _lead(jnp.exp(-1j * eps_cl * (dt / (2 * HBAR))), m)) if lay.use_onsite else None

        def electron(psi, t):
            return _electron(psi, rot, hv, boundary)

    K, G = p.K, p.groups  # K electron steps per phonon step, G phonon steps per frame (traced)
    real = p.a.dtype

    def group(psi, i0):  # K electron steps from step index i0
        return jax.lax.fori_loop(0, K, lambda i, q: electron(q, (i0 + i + 0.5) * dt), psi)

    def frame(carry, _):
        psi, i0 = carry  # state at the frame time i0 dt
        psi = _phonons(psi, p.U_half, m)
        psi = jax.lax.fori_loop(0, G - 1, lambda g, q: _phonons(group(q, i0 + (K * g).astype(real)), p.U_full, m), psi)
        psi = _phonons(group(psi, i0 + (K * (G - 1)).astype(real)), p.U_half, m)
        return (psi, i0 + (K * G).astype(real)), _observe(psi, p, lay)

    first = _observe(psi, p, lay)
    (psi, _), frames = jax.lax.scan(frame, (psi, jnp.zeros((), dt.dtype)), None, length=lay.n_frames)
    frames = jax.tree_util.tree_map(lambda f, r: jnp.concatenate([f[None], r]), first, frames)
    return psi, frames


def _final(psi, p: QParams, lay: QLayout):
    """Final per-Fock-state populations and backscattered weights, (d,)*m each, in the analysis basis."""
    c = to_fock(psi, p, lay.m)
    if lay.basis == "running":
        c = to_running(c, p, lay)
    wk = jnp.abs(jnp.fft.fft(c, axis=-1, norm="ortho")) ** 2
    back = _lead(p.k < 0, lay.m)
    return jnp.sum(wk, axis=-1), jnp.sum(jnp.where(back, wk, 0.0), axis=-1)


def _draw(key, T, P_R_fixed, p: QParams, lay: QLayout, modes, fixed_cm, n0_fixed):
    """Occupations n0 (m,) (thermal Fock draws unless fixed) and the classical sample of one key."""
    kf, kc = jax.random.split(key)
    real = p.a.dtype
    c = lay.chain
    if n0_fixed is None:
        n0 = lattice.sample_fock(kf, c, T)[jnp.asarray(modes) - 1]
    else:
        n0 = jnp.asarray(n0_fixed, jnp.int32)
    nmax = jnp.asarray(lay.dims, jnp.int32) - 1
    clip = jnp.any(n0 > nmax)
    n0 = jnp.minimum(n0, nmax)
    for ia, ib in (lay.pairs if lay.basis == "running" else ()):  # |n_+, n_-> needs n_+ + n_- <= n_max
        clip = clip | (n0[ia] + n0[ib] > nmax[ia])
        n0 = n0.at[ib].set(jnp.minimum(n0[ib], nmax[ia] - n0[ia]))
    s = lattice.sample_modes(kc, c, T, lay.statistics, real)
    s_cl = ModeSample(Q=s.Q * p.mask_cl, P=(s.P * p.mask_cl) if lay.others == "wow" else jnp.zeros_like(s.P),
                      P_R=s.P_R)
    P_R = P_R_fixed if fixed_cm else s.P_R
    return n0, s_cl, P_R, clip


@partial(jax.jit, static_argnames=("lay", "modes", "fixed_cm", "n0_fixed"))
def _chunk(keys, T, P_R_fixed, k0, psi_e, p, lay, modes, fixed_cm, n0_fixed):
    def one(key):
        n0, s_cl, P_R, clip = _draw(key, T, P_R_fixed, p, lay, modes, fixed_cm, n0_fixed)
        psi, frames = _evolve(n0, s_cl, psi_e, p, lay)
        pop, back = _final(psi, p, lay)
        Q = P_R + HBAR * k0
        frames["P_R"] = Q - HBAR * frames["k_mean"] - (frames["P_ph"] - frames["P_ph"][0])
        return {"n0": n0, "clipped": clip, "P_R0": P_R, "pop": pop, "back": back}, frames

    return jax.vmap(one)(keys)


# --------------------------------------------------------------------------------------------
# Ensembles
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass
class QuantumResult:
    """A quantum-lattice ensemble.

    modes: the quantum modes (axis order); hw: their ħω_j (eV); basis: of n0 and Δn;
    per_sample: n0 (n, m) initial occupations, clipped (n,) draws beyond n_max (clipped to it),
    P_R0, P_b, P_b_el (Δn = 0), norm (electron norm), norm_basis (population in the analysis basis:
    below 1 in the running basis when a pair holds n_c + n_s > n_max), E_ph_b (Σ_j ħω_j Δn_j averaged over the backscattered part, eV; NaN
    if P_b < 1e-12), P_ph_f, P_R_f, top_max (largest top-level weight of any mode over the run),
    pop / back (n, (d,)*m): final populations and backscattered weights per Fock state;
    traces: name -> (n, n_frames+1[, m]) (norm, x_mean, k_mean, P_b, n_mean, top, P_ph, P_R);
    stats: name -> (mean, sem); fractions: Δn = 0 share of backscattering and by order Σ|Δn_j|;
    channels: the Δn patterns carrying backscattering, mean probability, largest first.
    """

    config: Config
    lattice: QuantumLattice
    modes: tuple
    hw: np.ndarray
    n_samples: int
    seed: int
    times: np.ndarray
    per_sample: dict
    traces: dict
    stats: dict
    fractions: dict
    channels: list
    compile_s: float
    run_s: float

    def __str__(self):
        c, q = self.config, self.lattice
        lines = [f"QuantumResult: {self.n_samples} samples, N={c.chain.N} {c.chain.boundary}, T={c.temperature:g} K, "
                 f"quantum modes {self.modes} (n_max={tuple(d - 1 for d in self.per_sample['pop'].shape[1:])}, "
                 f"{q.basis} basis), others={q.others or c.dynamics}, "
                 f"{c.n_steps} steps of {c.dt:g} fs, seed={self.seed}"]
        for k, (mu, s) in self.stats.items():
            lines.append(f"  {k:10s} = {mu: .6g} ± {s:.2g}")
        for k, (mu, s) in self.fractions.items():
            lines.append(f"  {k:10s} = {mu: .6g} ± {s:.2g}")
        for pat, pr in self.channels[:6]:
            lines.append(f"  Δn={pat}: P_b {pr:.4g}")
        lines.append(f"  compile {self.compile_s:.2f} s, run {self.run_s:.2f} s")
        return "\n".join(lines)


def bytes_per_sample(cfg: Config, ql: QuantumLattice) -> int:
    """Rough peak bytes per sample: ~12 complex copies of the state plus 4 real rotation arrays."""
    nm = ql.n_max if isinstance(ql.n_max, (tuple, list)) else (ql.n_max,) * len(ql.modes)
    size = cfg.chain.N * math.prod(v + 1 for v in nm)
    cb = 16 if cfg.dtype == "float64" else 8
    return size * (12 * cb + 2 * cb)


def channel_table(n0, back, top: int = 20, floor: float = 1e-12):
    """Backscattered probability per Δn pattern, averaged over samples: [(Δn tuple, P), ...], largest first."""
    n0, back = np.asarray(n0), np.asarray(back)
    ns, m = n0.shape
    grid = np.indices(back.shape[1:]).reshape(m, -1).T
    dn = (grid[None] - n0[:, None]).reshape(-1, m)
    pats, inv = np.unique(dn, axis=0, return_inverse=True)
    w = np.bincount(inv.ravel(), weights=back.reshape(-1), minlength=len(pats)) / ns
    acc = {tuple(int(v) for v in pat): float(x) for pat, x in zip(pats, w)}
    rows = sorted(((k, v) for k, v in acc.items() if v > floor), key=lambda kv: -kv[1])
    return rows[:top]


def _resolved(n0, back, hw):
    """Per sample: Δn = 0 backscattering, backscattering by order Σ|Δn_j|, energy given to phonons."""
    n0, back = np.asarray(n0), np.asarray(back)
    ns, m = n0.shape
    grid = np.indices(back.shape[1:]).reshape(m, -1).T
    B = back.reshape(ns, -1)
    dn = grid[None] - n0[:, None]  # (ns, d^m, m)
    order = np.abs(dn).sum(-1)
    P_el = np.sum(np.where(order == 0, B, 0.0), 1)
    by_order = np.stack([np.sum(np.where(order == o, B, 0.0), 1) for o in range(4)]
                        + [np.sum(np.where(order >= 4, B, 0.0), 1)], 1)
    E = np.sum(B * (dn @ np.asarray(hw)), 1)
    P_b = B.sum(1)
    E_ph = np.where(P_b > 1e-12, E / np.maximum(P_b, 1e-12), np.nan)
    return P_el, by_order, E_ph


def run(cfg: Config, ql: QuantumLattice, n_samples: int, seed: int = 0, initial=None,
        chunk_size: int | None = None, memory_bytes: int = 2**30, devices=None) -> QuantumResult:
    """Run ``n_samples`` samples: thermal Fock states of the quantum modes (lattice.sample_fock at
    cfg.temperature, in ql.basis; or the fixed occupations ``initial``, one per quantum mode in
    increasing mode order, (n_+, n_-) at the (j, N-j) positions in the running basis), thermal
    classical samples of the other modes (cfg.statistics), the CM momentum drawn or fixed as in
    wow.run. Sample s uses key s of split(PRNGKey(seed), n_samples). Warns when any mode's
    top-level weight exceeds TOP_WEIGHT_WARN or a thermal draw exceeded n_max. Samples are sharded
    over ``devices`` as in wow.run (default: every device; on a CPU, wow.devices.use_cpu_cores
    gives one device per core)."""
    lay, p, modes, hw = setup(cfg, ql)
    devices = _devices.resolve(devices)
    n_dev = len(devices)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ConfigError(f"n_samples={n_samples!r} must be an integer >= 2 (standard errors need two)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**63)")
    if initial is not None:
        initial = tuple(int(v) for v in initial)
        if len(initial) != len(modes) or min(initial) < 0:
            raise ConfigError(f"initial={initial!r}: allowed one occupation >= 0 per quantum mode ({len(modes)})")
    if chunk_size is None:
        chunk_size = max(1, min(n_samples, memory_bytes // bytes_per_sample(cfg, ql)))
    chunk_size = int(min(chunk_size, n_samples))
    chunk_size = -(-chunk_size // n_dev) * n_dev
    mesh = jax.sharding.Mesh(np.array(devices), ("samples",))
    by_sample = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("samples"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())
    real = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    cplx = jnp.complex128 if cfg.dtype == "float64" else jnp.complex64
    psi_e = packet(cfg.chain.N, cfg.chain.a, cfg.x0, cfg.electron.sigma, cfg.k0, cplx)
    keys = jax.random.split(jax.random.PRNGKey(seed), n_samples)
    dyn = _devices.put((jnp.asarray(cfg.temperature, real), jnp.asarray(cfg.cm_momentum or 0.0, real),
                        jnp.asarray(cfg.k0, real), psi_e, p), replicated)
    static = dict(lay=lay, modes=modes, fixed_cm=cfg.cm_momentum is not None, n0_fixed=initial)
    idx = lambda lo: _devices.put(keys[np.minimum(np.arange(lo, lo + chunk_size), n_samples - 1)], by_sample)
    t0 = time.perf_counter()
    compiled = _devices.compile_for(_chunk.lower(idx(0), *dyn, **static), devices)
    compile_s = time.perf_counter() - t0
    t0 = time.perf_counter()
    outs, frs = [], []
    for lo in range(0, n_samples, chunk_size):
        o, f = _devices.gather(compiled(idx(lo), *dyn))
        take = min(chunk_size, n_samples - lo)
        outs.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:take], o))
        frs.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:take], f))
    run_s = time.perf_counter() - t0
    cat = lambda parts: {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    ps, tr = cat(outs), cat(frs)
    P_el, by_order, E_ph = _resolved(ps["n0"], ps["back"], hw)
    ps.update(P_b=ps["back"].reshape(n_samples, -1).sum(1), P_b_el=P_el, E_ph_b=E_ph,
              P_ph_f=tr["P_ph"][:, -1], P_R_f=tr["P_R"][:, -1], top_max=tr["top"].max(axis=(1, 2)),
              norm=tr["norm"][:, -1], norm_basis=ps["pop"].reshape(n_samples, -1).sum(1))
    stats = {k: mean_sem(ps[k]) for k in ("P_b", "P_b_el", "P_ph_f", "P_R_f", "norm", "norm_basis", "top_max")}
    stats["E_ph_b"] = weighted_mean_sem(ps["E_ph_b"], ps["P_b"])
    fractions = {"f_el": weighted_mean_sem(P_el / np.maximum(ps["P_b"], 1e-300), ps["P_b"])}
    for o in range(by_order.shape[1]):
        name = f"f_order{o}" if o < by_order.shape[1] - 1 else f"f_order{o}+"
        fractions[name] = weighted_mean_sem(by_order[:, o] / np.maximum(ps["P_b"], 1e-300), ps["P_b"])
    top = float(ps["top_max"].max())
    if top > TOP_WEIGHT_WARN:
        warnings.warn(f"quantum lattice truncation: weight {top:.3g} in the top Fock level n_max={ql.n_max} "
                      f"(> {TOP_WEIGHT_WARN:g}) in {int(np.sum(ps['top_max'] > TOP_WEIGHT_WARN))} of {n_samples} "
                      "samples; raise n_max", stacklevel=2)
    n_clip = int(np.sum(ps["clipped"]))
    if n_clip:
        warnings.warn(f"quantum lattice: {n_clip} of {n_samples} thermal Fock draws exceeded n_max={ql.n_max} "
                      f"({'n_+ + n_- of a pair' if ql.basis == 'running' else 'a mode'}) and were clipped to it; "
                      "raise n_max", stacklevel=2)
    times = np.arange(cfg.n_frames + 1) * cfg.steps_per_frame * cfg.dt
    return QuantumResult(cfg, ql, modes, np.asarray(hw), n_samples, seed, times, ps, tr, stats, fractions,
                         channel_table(ps["n0"], ps["back"]), compile_s, run_s)


def evolve(cfg: Config, ql: QuantumLattice, occupations, psi_e=None, key=None):
    """One sample from the Fock state ``occupations`` (analysis basis) ⊗ psi_e (default: the
    config's packet), classical modes from ``key`` (default: PRNGKey(0)). Returns (Fock amplitudes
    (d,)*m + (N,) in the standing basis at t_final, frames). For tests and inspection."""
    lay, p, modes, hw = setup(cfg, ql)
    cplx = jnp.complex128 if cfg.dtype == "float64" else jnp.complex64
    if psi_e is None:
        psi_e = packet(cfg.chain.N, cfg.chain.a, cfg.x0, cfg.electron.sigma, cfg.k0, cplx)
    key = jax.random.PRNGKey(0) if key is None else key
    n0, s_cl, _, _ = _draw(key, jnp.asarray(cfg.temperature), 0.0, p, lay, modes, False, tuple(int(v) for v in occupations))
    psi, frames = _evolve_jit(n0, s_cl, jnp.asarray(psi_e, cplx), p, lay)
    return to_fock(psi, p, lay.m), frames


_evolve_jit = jax.jit(_evolve, static_argnames=("lay",))
