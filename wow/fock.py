"""Quantum lattice modes: which modes, their truncated Fock bases, the discrete-variable
representation (DVR) of their coordinates, and the running-wave basis of ring cos/sin pairs
(docs/model.md, "Lattice dynamics" and "Quantum modes"). The backend that propagates them is wow.dynamics.quantum.

A quantum mode j (lattice.py numbering, 1..N-1) with d = n_max + 1 levels is carried at the DVR
points x_α of the truncated X = a + a† (d x d, tridiagonal; its eigenvalues), where Q_j = ℓ_j X,
ℓ_j = sqrt(ħ/(2Mω_j)), is diagonal. Fock amplitudes c and DVR amplitudes φ are related by the real
orthogonal eigenvector matrix V (X = V diag(x) Vᵀ): φ = Vᵀ c, c = V φ. The electron's coupling is
linear in Q_j, so in the truncated Fock space it is exactly Q_j's truncated matrix.

Running waves (ring): every pair (j, N-j) of cos/sin modes of one |q| = 2πj/(Na) is rewritten as
a_{±q} = (a_c ± i a_s)/√2 (the + sign because the lattice's sine partner of mode j is
e_{n,N-j} = -sqrt(2/N) sin(qna): with it u_n = sqrt(2/N) Re[(Q_c + iQ_s) e^{iqna}], and a_{+q}
multiplies e^{+iqna}). Fock states of a_{±q} carry crystal momentum ±ħq; the mode j = N/2 carries
π/a (≡ -π/a). The pair's basis change is the unitary ``running_wave_matrix`` on the box
n_c, n_s <= n_max; it conserves n_c + n_s, so it is exact on states with n_c + n_s <= n_max and
loses the part beyond (reported per sample as ``norm_basis``).
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .errors import ConfigError
from .lattice import Chain

OTHERS = ("absent", "frozen", "wow")
BASES = ("standing", "running")


@dataclasses.dataclass(frozen=True)
class QuantumLattice:
    """The quantum modes of a ``dynamics='quantum'`` run (Config.quantum).

    modes: internal mode indices j in 1..N-1 (lattice.py numbering; see ``momentum_modes``);
    n_max: Fock truncation, levels 0..n_max: one int for every mode, or one per mode (in the order
    of ``modes``; a cos/sin pair in the running basis needs equal n_max); others: what the other
    internal modes do: 'absent' (u = 0), 'frozen' (their thermal sample, static), 'wow' (their exact
    harmonic motion); basis: occupation basis of the initial Fock states and of the Δn tallies,
    'standing' or 'running' (ring, every mode but N/2 in a complete cos/sin pair);
    phonon_every: apply the (exact) phonon phases once per this many electron steps,
    P(K dt/2) E(dt)^K P(K dt/2), still a symmetric second-order splitting (ħω ~ 0.03 eV for copper:
    K = 10 at dt = 0.02 fs is ω K dt ~ 0.01). Must divide the steps per frame.
    """

    modes: tuple = ()
    n_max: int | tuple = 4
    others: str = "wow"
    basis: str = "standing"
    phonon_every: int = 1

    def n_max_of(self) -> dict:
        """{mode: n_max} (after validation)."""
        nm = self.n_max if isinstance(self.n_max, (tuple, list)) else (self.n_max,) * len(self.modes)
        return {int(j): int(v) for j, v in zip(self.modes, nm)}

    def sorted_modes(self) -> tuple:
        return tuple(sorted(int(j) for j in self.modes))

    def dims(self) -> tuple:
        """d_i = n_max_i + 1 of each mode in axis order (increasing j)."""
        nm = self.n_max_of()
        return tuple(nm[j] + 1 for j in self.sorted_modes())


def validate_quantum(ql, chain: Chain, steps_per_frame: int, max_state: int, n_points: int | None = None):
    """Check the quantum options against the chain; raise ConfigError naming the parameter.
    n_points: the electron's amplitudes per lattice state (None: N, one per site)."""
    if not isinstance(ql, QuantumLattice):
        raise ConfigError(f"quantum={ql!r}: dynamics='quantum' needs a wow.QuantumLattice")
    modes = tuple(ql.modes)
    if not modes:
        raise ConfigError("quantum.modes=(): give at least one quantum mode (indices 1..N-1, or momentum_modes(chain, q))")
    for j in modes:
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 1 <= j <= chain.N - 1:
            raise ConfigError(f"quantum.modes={modes!r}: entry {j!r} out of range: allowed integers 1..{chain.N - 1} (N={chain.N})")
    if len(set(modes)) != len(modes):
        raise ConfigError(f"quantum.modes={modes!r}: a mode is listed twice")
    nm = ql.n_max if isinstance(ql.n_max, (tuple, list)) else (ql.n_max,) * len(modes)
    if len(nm) != len(modes) or any(isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 0 for v in nm):
        raise ConfigError(f"quantum.n_max={ql.n_max!r}: allowed an integer >= 0, or one per mode ({len(modes)})")
    nmax = ql.n_max_of()
    if ql.others not in OTHERS:
        raise ConfigError(f"quantum.others={ql.others!r} is not an option: allowed {', '.join(map(repr, OTHERS))}")
    if ql.basis not in BASES:
        raise ConfigError(f"quantum.basis={ql.basis!r} is not an option: allowed {', '.join(map(repr, BASES))}")
    if ql.basis == "running":
        if chain.boundary != "ring":
            raise ConfigError("quantum.basis='running' needs boundary='ring' (the open chain has standing waves only)")
        lonely = [j for j in modes if 2 * j != chain.N and chain.N - j not in modes]
        if lonely:
            raise ConfigError(f"quantum.basis='running': modes {lonely} lack their cos/sin partner N-j "
                              f"({[chain.N - j for j in lonely]}); allowed: complete pairs (momentum_modes gives them)")
        uneven = [j for j in modes if 2 * j < chain.N and nmax[j] != nmax[chain.N - j]]
        if uneven:
            raise ConfigError(f"quantum.n_max={ql.n_max!r}: basis='running' needs equal n_max on each cos/sin pair "
                              f"(modes {[(j, chain.N - j) for j in uneven]} differ)")
    K = ql.phonon_every
    if isinstance(K, bool) or not isinstance(K, (int, np.integer)) or K < 1 or steps_per_frame % K:
        raise ConfigError(f"quantum.phonon_every={K!r}: allowed integers >= 1 dividing the steps per frame "
                          f"({steps_per_frame} = duration/dt/n_frames)")
    n = chain.N if n_points is None else n_points
    size = n * math.prod(v + 1 for v in nm)
    if size > max_state:
        raise ConfigError(f"{'N' if n_points is None else 'N g'} Π(n_max+1) = {size} amplitudes per sample "
                          f"(N={chain.N}, quantum.n_max={ql.n_max!r}): "
                          f"allowed <= {max_state}")


# --------------------------------------------------------------------------------------------
# Modes
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


def ring_pairs(chain: Chain, modes: tuple) -> tuple:
    """((axis_c, axis_s), ...): the quantum cos/sin pairs (j, N-j) of a ring, as axes of ``modes``."""
    ax = {j: i for i, j in enumerate(modes)}
    N = chain.N
    return tuple((ax[j], ax[N - j]) for j in modes if chain.boundary == "ring" and 2 * j < N and N - j in ax)


def half_axis(chain: Chain, modes: tuple) -> int:
    """Axis of the ring's zone-boundary mode N/2 among ``modes``, or -1."""
    if chain.boundary != "ring" or chain.N % 2:
        return -1
    return modes.index(chain.N // 2) if chain.N // 2 in modes else -1


def axis_momenta(chain: Chain, modes: tuple, basis: str):
    """(hq, definite), each (m,) in the axis order of ``modes`` (sorted): the crystal momentum ħq
    (eV·fs/Å) one quantum carries on each axis of the analysis basis, and whether it is definite.
    Running basis: +ħq on the axis of mode j of a ring pair (j, N-j) (it holds n_+), -ħq on N-j's
    (n_-); the ring's zone-boundary mode N/2 carries ħπ/a (≡ -ħπ/a mod ħG) in either basis. A
    standing cos or sin mode (and every open-chain mode) is a superposition of ±q: not definite."""
    from .units import HBAR

    m = len(modes)
    hq, definite = np.zeros(m), np.zeros(m, bool)
    if basis == "running":
        for ia, ib in ring_pairs(chain, modes):
            q = mode_wavevector(chain, modes[ia])
            hq[ia], hq[ib] = HBAR * q, -HBAR * q
            definite[ia] = definite[ib] = True
    h = half_axis(chain, modes)
    if h >= 0:
        hq[h], definite[h] = HBAR * math.pi / chain.a, True
    return hq, definite


# --------------------------------------------------------------------------------------------
# DVR and bases
# --------------------------------------------------------------------------------------------
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


def apply_axis(psi, U, axis: int):
    """Apply the d x d matrix U to one axis of psi (the other axes ride along)."""
    return jnp.moveaxis(jnp.tensordot(U, psi, axes=((1,), (axis,))), 0, axis)


def apply_modes(psi, Us):
    """Apply Us[i] to axis i of psi for every mode i (the leading axes)."""
    for i, U in enumerate(Us):
        psi = apply_axis(psi, U.astype(psi.dtype), i)
    return psi


def apply_pairs(c, pairs, Ws):
    """Apply the pair matrices Ws (d², d²) to the axes (ia, ib) of c for every pair."""
    for (ia, ib), W in zip(pairs, Ws):
        d = c.shape[ia]
        x = jnp.moveaxis(c, (ia, ib), (0, 1))
        sh = x.shape
        x = (W.astype(c.dtype) @ x.reshape(d * d, -1)).reshape(sh)
        c = jnp.moveaxis(x, (0, 1), (ia, ib))
    return c


def ladder(c, axis: int):
    """a applied on one axis of Fock amplitudes: (a c)[n] = sqrt(n+1) c[n+1]."""
    d = c.shape[axis]
    sq = jnp.sqrt(jnp.arange(1, d, dtype=c.real.dtype))
    x = jnp.moveaxis(c, axis, -1)
    x = jnp.concatenate([x[..., 1:] * sq.reshape((1,) * (x.ndim - 1) + (d - 1,)), jnp.zeros_like(x[..., :1])], axis=-1)
    return jnp.moveaxis(x, -1, axis)


def fock_product(n0, dims: tuple, dtype):
    """The Fock product state with occupations n0 (m,) as amplitudes (*dims)."""
    c = jnp.ones((), dtype)
    for i, d in enumerate(dims):
        c = c[..., None] * jax.nn.one_hot(n0[i], d, dtype=dtype).reshape((1,) * i + (d,))
    return c
