"""A run's inputs as one frozen dataclass, and their validation at the boundary.

Validation happens here, in plain Python, before any array is made or file written; every error
names the parameter, its value and the allowed range (validate at the boundary, then
call the jitted core).
"""

from __future__ import annotations

import dataclasses
import difflib
import math

import jax
import numpy as np

from .dynamics import DYNAMICS
from .electron import Electron, group_velocity
from .errors import ConfigError
from .dynamics.noise import Noise, validate_noise
from .fock import QuantumLattice, validate_quantum
from .lattice import BOUNDARIES, STATISTICS, Chain
from .dynamics.local import LocalModes, validate_local
from .models import continuum
from .models.continuum import Continuum
from .units import HBAR
from . import sanity

DTYPES = ("float64", "float32")
ORDERS = (2, 4)
#: A packet is "inside" the open chain while its centre ± this many (spreading) widths is.
INSIDE_WIDTHS = 5.0
#: Refuse a quantum-lattice run whose state (complex amplitudes per sample) is larger than this.
MAX_QUANTUM_STATE = 2**27


@dataclasses.dataclass(frozen=True)
class Config:
    """Everything that defines one ensemble run (units: eV, Å, fs, amu, K).

    electron: the electron model and its packet: a wow.Electron (the tight-binding chain) or a
    wow.Continuum (the density-density model on a ring; then recoil is the CM term (Q - p)²/(2NM)
    and Q = P_R(0) + <p>(0));
    temperature: T (K, >= 0); statistics: 'classical' | 'quantum' (Wigner, zero point included);
    dynamics: 'frozen' | 'wow' | 'ehrenfest' | 'quantum' (chosen modes quantum, the options in
    ``quantum``, a wow.QuantumLattice); recoil: add the CM recoil (Q - ħk)²/(2NM) to the electron's
    dispersion; cm_momentum: None draws P_R ~ N(0, N M k_B T) per sample (paper Eq. A10), a number
    fixes P_R (eV·fs/Å) for every sample; dt: time step (fs), within the accuracy bounds of
    wow.sanity; duration: run length (fs), exactly n_frames x (whole steps per frame) x dt (others are
    refused, naming the nearest allowed); n_frames: tallies recorded at n_frames + 1 times;
    dtype: 'float64' (complex128) or 'float32' (complex64); save_density: record |ψ_n|² per frame;
    check_inside: refuse an open-chain run whose packet would reach an end (boundary reflection
    would pose as backscattering); set False to study end reflection on purpose.
    order: 2 (Strang) or 4 (Yoshida composition of three Strang sub-steps: ~3x the work per step,
    global error O(dt⁴); see wow.propagate and benchmarks/accuracy.py).
    transport: frames also record the transport observables (wow.transport.chain_frame: <x - x0>,
    the MSD about the packet's centre x0, D_run, <v>, E_e, E_band, the edge density, and the
    lattice energy E_lattice), O(1) per frame and sample; kubo: also propagate φ(0) = vψ(0) beside ψ
    (twice the work) and record the velocity correlation 'corr' (needs transport; a lattice that
    does not react: not ehrenfest or quantum). noise: the dephasing noise of dynamics='noise' (a
    wow.Noise: frozen thermal lattice plus Haken-Strobl-Reineker site noise). local: local
    (Einstein) modes on every site (a wow.LocalModes: Holstein and Peierls couplings per mode; the
    chain's own lattice is then absent), moved by 'frozen', 'wow' or 'ehrenfest'.
    save_amplitudes: frames record ψ_n itself (complex, N per frame and sample).
    """

    chain: Chain = Chain()
    electron: Electron = Electron()
    temperature: float = 300.0
    statistics: str = "classical"
    dynamics: str = "wow"
    recoil: bool = False
    cm_momentum: float | None = None
    dt: float = 0.02
    duration: float = 20.0
    n_frames: int = 20
    dtype: str = "float64"
    save_density: bool = False
    check_inside: bool = True
    order: int = 2
    quantum: QuantumLattice | None = None
    transport: bool = False
    kubo: bool = False
    noise: Noise | None = None
    local: LocalModes | None = None
    save_amplitudes: bool = False

    # Derived quantities (valid after ``validate``) --------------------------------------------
    @property
    def k0(self) -> float:
        e = self.electron
        if isinstance(e, Continuum):
            return e.packet_k0(self.chain)
        return math.pi / (3 * self.chain.a) if e.k0 is None else float(e.k0)

    @property
    def x0(self) -> float:
        e = self.electron
        if isinstance(e, Continuum):
            return e.packet_x0(self.chain)
        if e.x0 is not None:
            return float(e.x0)
        return (self.chain.N - 1) * self.chain.a / 2

    @property
    def steps_per_frame(self) -> int:
        return max(1, math.ceil(round(self.duration / self.dt, 9) / self.n_frames))

    @property
    def n_steps(self) -> int:
        return self.steps_per_frame * self.n_frames

    @property
    def t_final(self) -> float:
        return self.n_steps * self.dt


def _choice(name, value, allowed):
    if value in allowed:
        return
    hint = difflib.get_close_matches(str(value), allowed, n=1)
    extra = f" (did you mean {hint[0]!r}?)" if hint else ""
    raise ConfigError(f"{name}={value!r} is not an option: allowed {', '.join(map(repr, allowed))}{extra}")


def _number(name, value, *, low=None, high=None, low_open=False, high_open=False, integer=False, strict=False):
    """strict: an integer must be an int (256, not 256.0: a float size would fail later, inside jit)."""
    kind = "an integer" if integer else "a number"
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise ConfigError(f"{name}={value!r} must be {kind}")
    if strict and not isinstance(value, (int, np.integer)):
        raise ConfigError(f"{name}={value!r} must be an integer (an int, not {type(value).__name__})")
    if integer and int(value) != value:
        raise ConfigError(f"{name}={value!r} must be an integer")
    if not math.isfinite(value):
        raise ConfigError(f"{name}={value!r} must be finite")
    bad_low = low is not None and (value <= low if low_open else value < low)
    bad_high = high is not None and (value >= high if high_open else value > high)
    if bad_low or bad_high:
        lo = "" if low is None else f"{'(' if low_open else '['}{low:g}"
        hi = "" if high is None else f"{high:g}{')' if high_open else ']'}"
        rng = f"{lo or '(-inf'}, {hi or 'inf)'}"
        raise ConfigError(f"{name}={value!r} is out of range: allowed {rng}")


def _check_quantum(cfg: Config):
    if cfg.dynamics != "quantum":
        if cfg.quantum is not None:
            raise ConfigError(f"quantum={cfg.quantum!r} is set but dynamics={cfg.dynamics!r}: the quantum "
                              "options are used only with dynamics='quantum' (set quantum=None)")
        return
    if cfg.quantum is None:
        raise ConfigError("dynamics='quantum' needs quantum=wow.QuantumLattice(modes=...): which modes are quantum")
    if cfg.order != 2:
        raise ConfigError(f"order={cfg.order!r}: the quantum lattice has the second-order (Strang) step only; allowed: 2")
    dd = isinstance(cfg.electron, Continuum)
    if cfg.recoil and not dd:
        raise ConfigError("recoil=True with dynamics='quantum' on the chain is not implemented (the CM energy at "
                          "fixed total momentum would depend on the phonons' crystal momentum); allowed: recoil=False "
                          "(the density-density model, wow.Continuum, has it exactly)")
    validate_quantum(cfg.quantum, cfg.chain, cfg.steps_per_frame, MAX_QUANTUM_STATE,
                     n_points=cfg.chain.N * cfg.electron.g if dd else None)


def _check_transport(cfg: Config):
    """The transport switches, the noise and the local modes against the dynamics."""
    for name in ("transport", "kubo", "save_amplitudes"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name}={getattr(cfg, name)!r} must be True or False")
    if cfg.kubo and not cfg.transport:
        raise ConfigError("kubo=True records the velocity correlation with the transport observables: set transport=True")
    if cfg.kubo and cfg.dynamics in ("ehrenfest", "quantum"):
        raise ConfigError(f"kubo=True with dynamics={cfg.dynamics!r}: the copy φ would feel (and exert) the mean-field "
                          "force; allowed with 'frozen', 'wow' or 'noise'")
    if cfg.dynamics == "quantum" and cfg.save_amplitudes:
        raise ConfigError("save_amplitudes=True with dynamics='quantum' is not implemented (frames see Fock "
                          "amplitudes); allowed with 'frozen', 'wow', 'ehrenfest' or 'noise'")
    if cfg.dynamics == "noise":
        validate_noise(cfg.noise, cfg)
    elif cfg.noise is not None:
        raise ConfigError(f"noise={cfg.noise!r} is set but dynamics={cfg.dynamics!r}: the noise is used only with "
                          "dynamics='noise' (set noise=None)")
    if cfg.local is None:
        return
    validate_local(cfg.local)
    if cfg.dynamics not in ("frozen", "wow", "ehrenfest"):
        raise ConfigError(f"dynamics={cfg.dynamics!r} with local modes: allowed 'frozen', 'wow' or 'ehrenfest'")
    e = cfg.electron
    if e.alpha != 0 or e.D != 0:
        raise ConfigError(f"electron.alpha={e.alpha!r}, electron.D={e.D!r} with local modes: the chain's own lattice "
                          "is absent, the couplings are the modes' (local.g, local.alpha); allowed: alpha=0 and D=0")
    if cfg.recoil:
        raise ConfigError("recoil=True with local modes: pinned oscillators have no centre of mass; allowed: recoil=False")


def packet_extent(cfg: Config) -> tuple[float, float]:
    """How far (Å) the packet may reach during the run: (front, rear), measured from x0 in the
    packet's direction of motion (sign of v(k0)) and against it.

    front: the incident packet's fastest part, vmax t + INSIDE_WIDTHS σ(t), with vmax = |v(k0)| plus
    the velocity spread of Δk = 1/(2σ) and σ(t)² = σ² + (v'(k0) t/(2σ))². rear: the backscattered
    part, which on a thermal lattice may be reflected from t = 0 on and travels back as fast as the
    packet travels forward (k -> -k keeps |v|): the same vmax t + INSIDE_WIDTHS σ(t). Only the
    initial packet would need less (INSIDE_WIDTHS σ); an end reached by the backscattered part
    would turn it forward again and hide it from P_b, so the rear is not allowed less room."""
    e, c, t = cfg.electron, cfg.chain, cfg.t_final
    v = abs(group_velocity(cfg.k0, e.t0, c.a))
    dv = 2 * e.t0 * c.a**2 * abs(math.cos(cfg.k0 * c.a)) / HBAR  # dv/dk
    # the packet's velocity spread (Δk = 1/2σ) also sets where its fastest part ends up
    vmax = min(2 * e.t0 * c.a / HBAR, v + dv / (2 * e.sigma))
    sig_t = math.sqrt(e.sigma**2 + (dv * t / (2 * e.sigma)) ** 2)
    front = vmax * t + INSIDE_WIDTHS * sig_t
    rear = vmax * t + INSIDE_WIDTHS * sig_t
    return front, rear


def _check_inside(cfg: Config):
    """An open-chain run whose packet (or its backscattered part) would reach an end is refused:
    an end reflection would pose as backscattering. The end ahead of the packet (in its direction of
    motion) must hold its front, the end behind it the backscattered part."""
    c = cfg.chain
    L = (c.N - 1) * c.a
    front, rear = packet_extent(cfg)
    ahead = 1 if group_velocity(cfg.k0, cfg.electron.t0, c.a) >= 0 else -1
    x0 = cfg.x0
    hi, lo = (x0 + front, x0 - rear) if ahead > 0 else (x0 + rear, x0 - front)
    if lo >= 0 and hi <= L:
        return
    which = []
    if hi > L:
        which.append(f"the {'front' if ahead > 0 else 'backscattered part'} reaches {hi:g} Å past the right end {L:g} Å")
    if lo < 0:
        which.append(f"the {'backscattered part' if ahead > 0 else 'front'} reaches {lo:g} Å past the left end 0")
    raise ConfigError(
        f"the packet leaves the open chain during the run: centre x0={x0:g} Å moving {'right' if ahead > 0 else 'left'}, "
        f"{' and '.join(which)} (group velocity x duration + {INSIDE_WIDTHS:g} spreading widths). Allowed: "
        f"duration, sigma and x0 with both inside [0, {L:g}] Å (lengthen chain.N, shorten duration, move x0, "
        "or set check_inside=False)")


def _check_length(cfg: Config):
    """The run is exactly ``duration`` long: a whole number of steps of dt, a whole number per frame.
    Otherwise refused with the nearest durations that are."""
    steps = cfg.duration / cfg.dt
    per = max(1, round(steps / cfg.n_frames))
    if abs(per * cfg.n_frames - steps) <= 1e-9 * max(1.0, steps):
        return
    lo = max(1, math.floor(steps / cfg.n_frames)) * cfg.n_frames * cfg.dt
    hi = max(1, math.ceil(steps / cfg.n_frames)) * cfg.n_frames * cfg.dt
    near = f"{lo:.10g} or {hi:.10g}" if lo != hi else f"{lo:.10g}"
    raise ConfigError(f"duration={cfg.duration!r} fs is not a whole number of frames of whole steps (dt={cfg.dt!r} fs, "
                      f"n_frames={cfg.n_frames!r}: {steps:.6g} steps); allowed: a multiple of n_frames x dt = "
                      f"{cfg.n_frames * cfg.dt:.10g} fs, nearest {near} fs (or change n_frames or dt)")


def validate(cfg: Config) -> Config:
    """Check every input; return cfg unchanged or raise ConfigError naming the parameter."""
    if not isinstance(cfg, Config):
        raise ConfigError(f"config must be a wow.Config, got {type(cfg).__name__}")
    c, e = cfg.chain, cfg.electron
    dd = isinstance(e, Continuum)
    if not isinstance(e, (Electron, Continuum)):
        raise ConfigError(f"electron={e!r}: allowed a wow.Electron (the tight-binding chain) or a wow.Continuum "
                          "(the density-density model)")
    _number("chain.N", c.N, low=3, integer=True, strict=True)
    _choice("chain.boundary", c.boundary, BOUNDARIES)
    if c.boundary == "ring" and c.N % 2 and not dd:
        raise ConfigError(f"chain.N={c.N} with boundary='ring': the split-operator step pairs bonds "
                          "by parity, which needs an even number of ring sites; allowed: even N >= 4")
    _number("chain.mass", c.mass, low=0, low_open=True)
    _number("chain.spring", c.spring, low=0, low_open=True)
    _number("chain.a", c.a, low=0, low_open=True)
    _number("temperature", cfg.temperature, low=0)
    _choice("statistics", cfg.statistics, STATISTICS)
    _choice("dynamics", cfg.dynamics, DYNAMICS)
    if not isinstance(cfg.recoil, bool):
        raise ConfigError(f"recoil={cfg.recoil!r} must be True or False")
    if cfg.cm_momentum is not None:
        _number("cm_momentum", cfg.cm_momentum)
    _number("dt", cfg.dt, low=0, low_open=True)
    # the exact lattice flow is a Taylor series in ω_max dt/2; beyond 1 it stops being cheap
    try:
        _number("dt", cfg.dt, low=0, low_open=True, high=2.0 / c.omega_max)
    except ConfigError as e:
        raise ConfigError(f"{e} (ω_max dt <= 2 with ω_max = {c.omega_max:.6g} rad/fs from chain.mass and "
                          "chain.spring)") from None
    _number("duration", cfg.duration, low=0, low_open=True)
    _number("n_frames", cfg.n_frames, low=1, integer=True, strict=True)
    _check_length(cfg)
    for flag in ("save_density", "check_inside"):
        if not isinstance(getattr(cfg, flag), (bool, np.bool_)):
            raise ConfigError(f"{flag}={getattr(cfg, flag)!r} must be True or False")
    _choice("dtype", cfg.dtype, DTYPES)
    if isinstance(cfg.order, bool) or cfg.order not in ORDERS:
        raise ConfigError(f"order={cfg.order!r} is not an option: allowed {', '.join(map(repr, ORDERS))}")
    if cfg.dtype == "float64" and not jax.config.jax_enable_x64:
        raise ConfigError("dtype='float64' needs 64-bit JAX, which is off: call "
                          "jax.config.update('jax_enable_x64', True) at start-up (wow never changes "
                          "global JAX config itself), or use dtype='float32'")
    if dd:
        _validate_continuum(cfg)
        return cfg
    _number("electron.t0", e.t0, low=0, low_open=True)
    _number("electron.alpha", e.alpha)
    _number("electron.D", e.D)
    # a packet centred between two sites keeps exp(-(a/2)²/(4σ²)) >= e^-25 on them at σ = a/20 (a
    # one-site start, as transport studies use); much narrower its norm underflows to 0/0 (NaN)
    _number("electron.sigma", e.sigma, low=c.a / 20)
    zone = math.pi / c.a
    if e.k0 is not None:
        # every tally counts backscattering as the weight at k < 0, i.e. against a packet moving towards
        # +x: a packet at k0 <= 0 would report its own incoming weight as backscattered. A left-moving
        # packet is the mirror image of a right-moving one (site n -> N-1-n, bond n -> N-2-n), so
        # nothing is lost by refusing it.
        _number("electron.k0", e.k0, low=-zone, high=zone, low_open=True, high_open=True)
        if e.k0 <= 0:
            raise ConfigError(f"electron.k0={e.k0!r}: the packet must move towards +x (backscattering is the "
                              f"weight at k < 0): allowed 0 < k0 < π/a = {zone:g} 1/Å; for a packet moving left, "
                              "mirror the chain instead (x0 -> (N-1)a - x0, site n -> N-1-n, bond n -> N-2-n)")
    L = (c.N - 1) * c.a
    if e.x0 is not None:
        _number("electron.x0", e.x0, low=0, high=L)
    for i, d in enumerate(e.bond_defects):
        if not (isinstance(d, tuple) and len(d) == 2):
            raise ConfigError(f"electron.bond_defects[{i}]={d!r} must be a pair (bond index, δt in eV)")
        _number(f"electron.bond_defects[{i}] bond index", d[0], low=0, high=c.n_bonds - 1, integer=True)
        _number(f"electron.bond_defects[{i}] δt", d[1])
    for i, d in enumerate(e.onsite_defects):
        if not (isinstance(d, tuple) and len(d) == 2):
            raise ConfigError(f"electron.onsite_defects[{i}]={d!r} must be a pair (site index, δε in eV)")
        _number(f"electron.onsite_defects[{i}] site index", d[0], low=0, high=c.N - 1, integer=True)
        _number(f"electron.onsite_defects[{i}] δε", d[1])
    _check_quantum(cfg)
    _check_transport(cfg)
    sanity.check(cfg)
    if c.boundary == "ring":
        if 2 * INSIDE_WIDTHS * e.sigma > c.N * c.a:
            raise ConfigError(f"electron.sigma={e.sigma:g} Å does not fit the ring: allowed "
                              f"sigma <= {c.N * c.a / (2 * INSIDE_WIDTHS):g} Å (ring length / {2 * INSIDE_WIDTHS:g})")
    elif cfg.check_inside:
        _check_inside(cfg)
    return cfg


def _validate_continuum(cfg: Config):
    """The density-density model's inputs (wow.models.continuum.validate, naming 'electron.<field>'),
    its time step and its quantum options."""
    e = cfg.electron
    continuum.validate(e, cfg.chain, prefix="electron.")
    if 2 * abs(e.V0) * cfg.dt / HBAR > continuum.MAX_PHASE:
        raise ConfigError(f"dt={cfg.dt!r} is out of range for electron.V0={e.V0!r}: the potential phase per step "
                          f"2|V0| dt/ħ must be <= {continuum.MAX_PHASE:g}, allowed dt <= "
                          f"{continuum.MAX_PHASE * HBAR / (2 * abs(e.V0)):.4g} fs")
    for name in ("transport", "kubo", "save_amplitudes"):
        if not isinstance(getattr(cfg, name), bool):
            raise ConfigError(f"{name}={getattr(cfg, name)!r} must be True or False")
    if cfg.kubo or cfg.local is not None or cfg.dynamics == "noise":
        raise ConfigError("kubo=True, local modes and dynamics='noise' are implemented for the chain (wow.Electron) "
                          "only (the density-density model has no Kubo copy: its D comes from the MSD slope); with "
                          "wow.Continuum allowed: kubo=False, local=None and dynamics 'frozen', 'wow', 'ehrenfest' "
                          "or 'quantum'")
    if cfg.dynamics == "quantum" and cfg.save_amplitudes:
        raise ConfigError("save_amplitudes=True with dynamics='quantum' is not implemented (frames see Fock "
                          "amplitudes); allowed with 'frozen', 'wow' or 'ehrenfest'")
    if cfg.transport and cfg.check_inside:
        _check_ring_reach(cfg)
    _check_quantum(cfg)


def continuum_reach(cfg: Config) -> float:
    """How far (Å) the density-density packet may reach from x0 during the run, as a free packet:
    v t + INSIDE_WIDTHS σ(t), v = ħκ/μ with κ the packet's mechanical wavenumber (plane: |k0|;
    Bloch band n0 in the extended zone: n0 π/a + |k0| for even n0, (n0 + 1) π/a - |k0| for odd),
    μ the electron's mass reduced by the lattice's NM with recoil, σ(t)² = σ² + (ħt/(2σμ))². The
    lattice's potential slows the packet (band velocity below the free one) but scatters it too:
    the transport frames' 'edge' density is the run's own check (wow.transport.edge_until)."""
    e, c, t = cfg.electron, cfg.chain, cfg.t_final
    m = e.mass()
    mu = m * (c.N * c.mass_ev) / (m + c.N * c.mass_ev) if cfg.recoil else m
    k0 = abs(e.packet_k0(c))
    kappa = k0 if e.packet == "plane" else (e.n0 * math.pi / c.a + k0 if e.n0 % 2 == 0
                                           else (e.n0 + 1) * math.pi / c.a - k0)
    sig_t = math.sqrt(e.sigma**2 + (HBAR * t / (2 * e.sigma * mu)) ** 2)
    return HBAR * kappa / mu * t + INSIDE_WIDTHS * sig_t


def _check_ring_reach(cfg: Config):
    """A density-density transport run measures the electron's position as the minimum image about
    x0 on the ring: refused where the free packet would reach the antipode (the position would jump
    by L and the MSD would fold back)."""
    reach, half = continuum_reach(cfg), cfg.chain.N * cfg.chain.a / 2
    if reach > half:
        raise ConfigError(f"transport=True with wow.Continuum: the packet reaches {reach:.4g} Å from x0 (free-packet "
                          f"velocity x duration + {INSIDE_WIDTHS:g} spreading widths), past the antipode at L/2 = "
                          f"{half:.4g} Å where the minimum-image position wraps. Allowed: reach <= L/2 (lengthen "
                          f"chain.N, shorten duration={cfg.duration!r}, or set check_inside=False and cut the analysis "
                          "with the frames' 'edge' density)")
