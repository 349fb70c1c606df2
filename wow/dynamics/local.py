"""Local (Einstein) modes: the background of Holstein and Holstein-Peierls models, the lattice of the
organic-semiconductor transport literature (Troisi-Orlandi, transient localisation).

Every site n carries its own oscillators q_mn (Å), one per mode m = 0..m-1, each of frequency ω_m
(1/fs) and mass M_m (amu), with no springs between sites:

    H_lat = Σ_mn [ p_mn²/(2 M_m) + ½ M_m ω_m² q_mn² ]
    ε_n = Σ_m g_m q_mn                          (Holstein: on-site energy, g_m in eV/Å)
    t_b = t0 - Σ_m α_m (q_{m,n+1} - q_mn)       (Peierls/SSH on the local coordinates, α_m in eV/Å)

(Troisi-Orlandi's SSH chain is one mode with g = 0 and α ≠ 0; a Holstein chain has α = 0.)
The coupling that reads q is wow.models.chain.HolsteinPeierls; the backends that move it are
below (frozen, wow, ehrenfest). There is no centre of mass and no crystal momentum:
the oscillators are pinned, so momentum is not conserved (they take any momentum the electron loses).

Layout: a sample's coordinates and velocities are (m, N) (modes, then sites last), a block's (B, m, N).
Thermal samples per mode, independent on every site: ``classical`` q ~ N(0, k_BT/(Mω²)),
v ~ N(0, k_BT/M); ``quantum`` (Wigner, zero point included) q ~ N(0, ħ/(2Mω) coth(ħω/2k_BT)),
v ~ N(0, ħω/(2M) coth(ħω/2k_BT)). Only g²/(Mω²) (the polaron shift) and ω enter the electron's
dynamics and the thermal widths of ε and t: the mass is a unit choice (``from_energies``).

Backends: the frozen, wow (prescribed) and
ehrenfest steps of the chain's lattice, on independent oscillators q (B, m, N) per site and mode.

The three steps are wow's own (wow.dynamics.frozen / prescribed / ehrenfest) with the local lattice
plugged in: the thermal draw per mode (classical or Wigner), the coordinates {'q': q} that the
Holstein-Peierls coupling reads (wow.models.chain.HolsteinPeierls), the exact Einstein rotation as the free flow
(``EinsteinFlow``), the Ehrenfest force -∂<H_e>/∂q (no zero-sum projection: the modes
are pinned, nothing is conserved but the energy), and the lattice energy Σ ½M(v² + ω²q²).
The ``SiteState`` of this lattice holds u = q and v = dq/dt, each (B, m, N).

Per-sample tallies: the model's (energies at the local coordinates) and the lattice's energy
change dE_lat; the momentum budget has no CM and no crystal momentum here (dP_ph = 0; the pinned
oscillators take any momentum, so dP_cm = -dP_e is only the bookkeeping's name for "not the
electron").
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from ..errors import ConfigError
from ..lattice import STATISTICS, SiteState, thermal_factor
from ..occupations import momentum_budget
from ..units import HBAR, KB, mass_ev
from .base import LatticeParams, Start
from .ehrenfest import Ehrenfest, WithForce
from .frozen import Frozen
from .prescribed import Prescribed


@dataclasses.dataclass(frozen=True)
class LocalModes:
    """The local modes of every site (``Config.local``); one entry per mode in each tuple.

    omega: angular frequencies ω_m (1/fs, > 0; ħω = 0.6582 eV·fs x ω); mass: M_m (amu, > 0);
    g: Holstein couplings (eV/Å), ε_n = Σ_m g_m q_mn; alpha: Peierls couplings (eV/Å),
    t_b = t0 - Σ_m α_m (q_{m,n+1} - q_mn) (None: all 0); statistics: each mode's thermal sampler,
    'classical' or 'quantum' (Wigner) (None: Config.statistics for every mode).
    With local modes the chain's own lattice (springs, CM) is absent: Electron.alpha and D must be 0
    (the couplings are the modes'), and the Chain gives only N, a and the boundary.
    """

    omega: tuple = ()
    mass: tuple = ()
    g: tuple = ()
    alpha: tuple | None = None
    statistics: tuple | None = None

    def __post_init__(self):
        # read back from a file (JSON lists) or given as lists: keep the config hashable
        for name in ("omega", "mass", "g", "alpha", "statistics"):
            v = getattr(self, name)
            if isinstance(v, (list, np.ndarray)):
                object.__setattr__(self, name, tuple(v.tolist() if isinstance(v, np.ndarray) else v))

    @property
    def m(self) -> int:
        return len(self.omega)

    def alphas(self) -> tuple:
        return tuple(self.alpha) if self.alpha is not None else (0.0,) * self.m

    def samplers(self, default: str) -> tuple:
        return tuple(self.statistics) if self.statistics is not None else (default,) * self.m

    @property
    def peierls(self) -> bool:
        return any(a != 0 for a in self.alphas())

    @property
    def holstein(self) -> bool:
        return any(g != 0 for g in self.g)

    @classmethod
    def from_energies(cls, hw, polaron_shift, mass=1.0, alpha=None, statistics=None) -> "LocalModes":
        """Holstein modes from the literature's quantities: ħω_m (eV) and the polaron (relaxation)
        energy E_p,m = g_m²/(2 M ω_m²) (eV) of each mode (the reorganisation energy of a hop between
        two molecules is λ_m = 2 E_p,m; the Huang-Rhys factor S_m = E_p,m/ħω_m). ``mass`` (amu, one
        for all or one per mode) is a unit choice: it rescales q, not the physics."""
        hw, Ep = np.atleast_1d(np.asarray(hw, float)), np.atleast_1d(np.asarray(polaron_shift, float))
        if hw.shape != Ep.shape or hw.ndim != 1 or np.any(hw <= 0) or np.any(Ep < 0):
            raise ConfigError(f"hw={hw.tolist()}, polaron_shift={Ep.tolist()}: allowed equal-length lists, "
                              "hw > 0 and polaron_shift >= 0 (eV)")
        M = np.broadcast_to(np.asarray(mass, float), hw.shape)
        w = hw / HBAR
        g = np.sqrt(2 * mass_ev(M) * w**2 * Ep)
        return cls(omega=tuple(w.tolist()), mass=tuple(M.tolist()), g=tuple(g.tolist()),
                   alpha=None if alpha is None else tuple(alpha), statistics=statistics)

    def polaron_shifts(self) -> np.ndarray:
        """E_p,m = g_m²/(2 M_m ω_m²) (eV) of each mode (wow.theory.holstein_polaron_shift)."""
        w, M, g = (np.asarray(x, float) for x in (self.omega, self.mass, self.g))
        return g**2 / (2 * mass_ev(M) * w**2)


def _number(name, v, positive=False):
    if isinstance(v, bool) or not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v):
        raise ConfigError(f"{name}={v!r} must be a finite number")
    if positive and v <= 0:
        raise ConfigError(f"{name}={v!r} is out of range: allowed (0, inf)")


def validate_local(lm) -> None:
    """Check the local modes; raise ConfigError naming the field, its value and the range."""
    if not isinstance(lm, LocalModes):
        raise ConfigError(f"local={lm!r}: allowed a wow.LocalModes or None")
    m = len(lm.omega)
    if m < 1:
        raise ConfigError("local.omega=(): give at least one mode (omega, mass, g: one entry per mode)")
    for name in ("mass", "g") + (("alpha",) if lm.alpha is not None else ()) + (
            ("statistics",) if lm.statistics is not None else ()):
        v = getattr(lm, name)
        if not isinstance(v, tuple) or len(v) != m:
            raise ConfigError(f"local.{name}={v!r}: allowed a tuple of {m} entries (one per mode, as local.omega)")
    for i in range(m):
        _number(f"local.omega[{i}]", lm.omega[i], positive=True)
        _number(f"local.mass[{i}]", lm.mass[i], positive=True)
        _number(f"local.g[{i}]", lm.g[i])
        if lm.alpha is not None:
            _number(f"local.alpha[{i}]", lm.alpha[i])
        if lm.statistics is not None and lm.statistics[i] not in STATISTICS:
            raise ConfigError(f"local.statistics[{i}]={lm.statistics[i]!r}: allowed {', '.join(map(repr, STATISTICS))}")


# --------------------------------------------------------------------------------------------
# Thermal samples, energy, exact free motion (a block: (B, m, N); per-mode arrays shaped (m, 1))
# --------------------------------------------------------------------------------------------
def variances(lm: LocalModes, T, statistics: str, dtype=jnp.float64):
    """Per-mode thermal <q²> (Å²) and <v²> ((Å/fs)²), each (m,) (module doc)."""
    w = jnp.asarray(lm.omega, dtype)
    M = jnp.asarray(mass_ev(np.asarray(lm.mass, float)), dtype)
    kT = KB * T
    quantum = jnp.asarray([s == "quantum" for s in lm.samplers(statistics)])
    c = thermal_factor(w, T)
    var_q = jnp.where(quantum, HBAR / (2 * M * w) * c, kT / (M * w**2))
    var_v = jnp.where(quantum, HBAR * w / (2 * M) * c, kT / M)
    return var_q, var_v


def sample(key, lm: LocalModes, N: int, T, statistics: str, dtype=jnp.float64) -> SiteState:
    """One thermal sample: SiteState(u = q (m, N), v = dq/dt (m, N)). Standard normals are drawn in
    float32 whatever the dtype (as wow.lattice), so float32 and float64 runs share their samples."""
    kq, kv = jax.random.split(key)
    var_q, var_v = variances(lm, T, statistics, dtype)
    z = lambda k: jax.random.normal(k, (lm.m, N), jnp.float32).astype(dtype)
    return SiteState(u=jnp.sqrt(var_q)[:, None] * z(kq), v=jnp.sqrt(var_v)[:, None] * z(kv))


def column(x, ndim: int):
    """Per-mode values (m,) or (m, 1) shaped (1, ..., m, 1) against a (..., m, N) array of rank ndim."""
    x = jnp.reshape(x, (-1,))
    return x.reshape((1,) * (ndim - 2) + (x.shape[0], 1))


def energy(sites: SiteState, omega2, mass):
    """H_lat = Σ_mn ½ M_m (v² + ω_m² q²) (eV) of a sample (m, N) or per sample of a block (B, m, N);
    omega2 (1/fs²) and mass (eV·fs²/Å²) per mode."""
    nd = sites.u.ndim
    e = 0.5 * column(mass, nd) * (sites.v**2 + column(omega2, nd) * sites.u**2)
    return jnp.sum(e, axis=(-2, -1))


@dataclasses.dataclass(frozen=True)
class EinsteinFlow:
    """Exact free motion of independent oscillators, a rotation in (q, v/ω) by ω h, as the free
    lattice of wow's backends (the ``flow`` of lattice.ChainFlow; no equal-step recurrence). omega2:
    a scalar (one frequency for every site) or per mode ((m,) against (..., m, N) coordinates)."""

    recurrence = False

    def flow(self, lat: SiteState, h, omega2) -> SiteState:
        w = jnp.sqrt(omega2)
        if jnp.ndim(w) > 0:
            w = column(w, lat.u.ndim)
        c, s = jnp.cos(w * h), jnp.sin(w * h)
        return SiteState(u=lat.u * c + lat.v * (s / w), v=lat.v * c - lat.u * (w * s))


# --------------------------------------------------------------------------------------------
# Backends
# --------------------------------------------------------------------------------------------

def local_params(lm: LocalModes, real) -> LatticeParams:
    """Traced per-mode ω² (1/fs²) and M (eV·fs²/Å²), each shaped (1, m, 1) against a block (B, m, N)."""
    w = np.asarray(lm.omega, float).reshape(1, -1, 1)
    M = mass_ev(np.asarray(lm.mass, float)).reshape(1, -1, 1)
    return LatticeParams(omega2=jnp.asarray(w**2, real), mass=jnp.asarray(M, real))


@dataclasses.dataclass(frozen=True)
class LocalLattice:
    """What the local-mode backends share (a mixin before Frozen / Prescribed / Ehrenfest):
    ``modes`` the static LocalModes (for the draw), ``statistics`` the Config's default sampler."""

    def draw(self, key, T, statistics: str, real) -> Start:
        sites = sample(key, self.modes, self.chain.N, T, statistics, real)
        return Start(sites=self.prepare(sites), P_R=jnp.zeros((), real))

    def coordinates(self, lat, p):
        return {"q": (lat.lat if isinstance(lat, WithForce) else lat).u}

    def frame_coordinates(self, sites: SiteState, p):
        return {"q": sites.u}

    def force(self, e, lat, p, ops):
        return ops.force(e, self.coordinates(lat, p))["q"]

    def lattice_energy(self, sites: SiteState, p):
        return energy(sites, p.omega2, p.mass)

    def observe(self, psi, sites: SiteState, p, model, mp) -> dict:
        return model.observe(psi, mp, self.frame_coordinates(sites, p))

    def tallies(self, psi0, psi_f, lat0: SiteState, lat_f: SiteState, Q, model, mp, p):
        """The model's tallies at the local coordinates, the lattice energy change dE_lat and the
        momentum budget with dP_ph = 0 (module doc)."""
        dE = energy(lat_f, p.omega2, p.mass) - energy(lat0, p.omega2, p.mass)

        def one(psi0_, psi_f_, q0, qf, Q_, dE_):
            out, psik = model.tallies(psi0_, psi_f_, q0, qf, Q_, mp)
            out["dE_lat"] = dE_
            out.update(momentum_budget(out["dP_e"], jnp.zeros_like(out["dP_e"])))
            return out, psik

        return jax.vmap(one)(psi0, psi_f, lat0.u, lat_f.u, Q, dE)


@dataclasses.dataclass(frozen=True)
class LocalFrozen(LocalLattice, Frozen):
    modes: LocalModes = None


@dataclasses.dataclass(frozen=True)
class LocalPrescribed(LocalLattice, Prescribed):
    modes: LocalModes = None


@dataclasses.dataclass(frozen=True)
class LocalEhrenfest(LocalLattice, Ehrenfest):
    modes: LocalModes = None
    momentum_frames: bool = False


def build_local(cfg, real):
    """(backend, traced parameters) of cfg.dynamics on cfg.local's modes."""
    lm, chain = cfg.local, cfg.chain
    flow = EinsteinFlow()
    kinds = {"frozen": lambda: LocalFrozen(chain, modes=lm),
             "wow": lambda: LocalPrescribed(chain, free=flow, equal_steps=False, modes=lm),
             "ehrenfest": lambda: LocalEhrenfest(chain, free=flow, modes=lm)}
    if cfg.dynamics not in kinds:
        raise ValueError(f"dynamics={cfg.dynamics!r} with local modes: allowed {tuple(kinds)}")
    return kinds[cfg.dynamics](), local_params(lm, real)
