"""Differentiable ensemble tallies: the sample means of P_b, ΔE_b, <P_R>, ... as pure JAX functions of
the continuous physical parameters, through the propagator, for jax.grad, jax.jvp, jax.jacfwd and
vmap.

    f, p0 = means_function(cfg, n_samples=64, seed=0, wrt=("electron.alpha", "temperature"))
    f(p0)["P_b"]                                   # the ensemble mean (= wow.run's, same seed)
    jax.grad(lambda p: f(p)["P_b"])(p0)            # exact d<P_b>/dα and the pathwise d<P_b>/dT

or, for a function of your own, the pieces: ``layout(cfg)`` (the static program: shapes, choices, the
lattice flow's Taylor order, checkpointing), ``keys(seed, n_samples)`` and ``ensemble_means(params,
layout, keys)`` / ``sample_tallies(params, layout, keys)``, where ``params`` maps Config names to
traced values; a name left out keeps cfg's value (a constant, not differentiated).

Parameters (Config names and units): electron.alpha (eV/Å), electron.D (eV), electron.t0 (eV),
chain.mass (amu), chain.spring (eV/Å²), temperature (K), cm_momentum (eV·fs/Å, only when fixed).
Each enters where the physics puts it, in jnp: α, D, t0 in the electron's layers and tallies; M and K
in the lattice flow (K/M), the recoil phase and ΔE_cm (1/2NM), the Ehrenfest kicks (M) and the thermal
widths; T in the thermal widths. Samples are reparameterised: fixed standard normals from the keys
scaled by the widths (wow.lattice.sample_modes), so at fixed keys the derivative is pathwise and the
derivative of an ensemble mean is an unbiased estimate of the derivative of the thermal average.
Everything else (integers, choices, switches, dt, the duration, the probe packet, a drawn P_R, and
T where it enters through Fock samples) is refused, with the reason, before any work
(``refusals``).

Memory: the steps run as a static scan; by default blocks of ~sqrt(steps) steps go under
jax.checkpoint, so reverse mode keeps ~2 sqrt(steps) states per sample instead of every step's
intermediates (Plan.checkpoint_every). Forward mode (jax.jvp, jax.jacfwd) needs no stored states and
is the cheaper choice for a few parameters. Measured costs: benchmarks/gradient_cost.py.

The lattice flow is a Taylor series whose order is fixed at compile time: it is chosen for a bound
``omega_max`` on ω_max = 2 sqrt(K/M) over the parameter range (default 2x the configured ω_max,
i.e. K/M up to 4x), not for the current value, so a step that stiffens the lattice does not silently
truncate the flow; beyond the bound every output is NaN (never a silently wrong number).
"""

from __future__ import annotations

import dataclasses
import difflib
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import ensemble
from .config import Config, ConfigError, validate
from .dynamics import LatticeParams
from .dynamics.base import Start
from .models import continuum
from .models.continuum import Continuum
from .tally import P_B_FLOOR
from .units import AMU


class GradientError(ConfigError):
    """A parameter or setting that cannot be differentiated, named with the reason, before any work."""


#: Config name -> (unit, lower, upper, what it is): the continuous physical parameters (open ranges).
PARAMETERS = {
    "electron.alpha": ("eV/angstrom", -math.inf, math.inf, "SSH bond coupling: t_b = t0 - alpha (u_{n+1} - u_n)"),
    "electron.D": ("eV", -math.inf, math.inf, "deformation potential"),
    "electron.t0": ("eV", 0.0, math.inf, "bare hopping"),
    "chain.mass": ("amu", 0.0, math.inf, "atomic mass M"),
    "chain.spring": ("eV/angstrom^2", 0.0, math.inf, "spring constant K"),
    "temperature": ("K", 0.0, math.inf, "lattice temperature (T = 0 excluded where samples scale as sqrt(T))"),
    "cm_momentum": ("eV*fs/angstrom", -math.inf, math.inf, "fixed CM momentum P_R"),
    "electron.V0": ("eV", -math.inf, math.inf, "density-density pseudopotential strength (wow.Continuum)"),
    "electron.w": ("angstrom", 0.0, math.inf, "density-density pseudopotential width (wow.Continuum)"),
}
#: the parameters of each electron model (the others are refused for it, with the reason)
CHAIN_ONLY = ("electron.alpha", "electron.D", "electron.t0")
CONTINUUM_ONLY = ("electron.V0", "electron.w")
NOT_CHAIN = ("a parameter of the density-density model (wow.Continuum), not of the tight-binding chain")
NOT_CONTINUUM = ("a parameter of the tight-binding chain's SSH coupling, not of the density-density model "
                 "(wow.Continuum: its electron couples through V0 and w)")
#: the density-density model's other inputs and why they are not differentiable parameters
CONTINUUM_SETTINGS = {
    "electron.g": "an integer (grid points per lattice spacing)",
    "electron.m_star": ("not offered: the band mass (a material constant of the model, not of the coupling); "
                        "compare runs instead"),
    "electron.packet": "a choice of initial packet ('bloch' or 'plane')",
    "electron.n0": "an integer (the band of the initial packet)",
    "electron.u_max": "a numerical bound (the potential's windows), not a physical parameter",
}

#: Why the temperature of a Fock-sampled run (dynamics='quantum') has no derivative.
FOCK = ("dynamics='quantum' draws the quantum modes' initial states from the Fock sampler, integer "
        "occupations n_j ~ (1 - e^-x) e^(-n x), x = hbar w_j/k_B T: each sample is piecewise constant "
        "in T (its derivative is 0 almost everywhere, the T dependence lives in the jumps), so the "
        "tallies have no pathwise d/dT; differentiate in T with a classical lattice and "
        "statistics='quantum' (Wigner: fixed normals scaled by the thermal widths)")
#: Every other Config input and why it is not a differentiable parameter.
SETTINGS = {
    "chain.N": "an integer (the number of atoms): compare separate fits at each N",
    "chain.boundary": "a choice ('open' or 'ring'), not a continuous parameter",
    "chain.a": ("not offered: the spacing also sets the k grid every tally is read on and the default "
                "k0 = pi/(3a), so changing it moves the observable itself"),
    "electron.k0": "describes the probe packet, not the material: not offered for fitting",
    "electron.sigma": "describes the probe packet, not the material: not offered for fitting",
    "electron.x0": "describes the probe packet, not the material: not offered for fitting",
    "electron.bond_defects": "(bond index, dt) pairs: the bond indices are integers",
    "electron.onsite_defects": "(site index, de) pairs: the site indices are integers",
    "statistics": "a choice of sampler, not a continuous parameter",
    "dynamics": "a choice of lattice dynamics, not a continuous parameter",
    "recoil": "a switch (True/False), not a continuous parameter",
    "dtype": "a choice of precision, not a physical parameter",
    "order": "an integer (the splitting order), not a physical parameter",
    "n_frames": "an integer (the frames recorded), not a physical parameter",
    "dt": "a numerical step, not a physical parameter: converge in dt instead of fitting it",
    "duration": "sets the integer number of steps; the run length is a setting, not a fit parameter",
    "save_density": "a switch, not a parameter",
    "check_inside": "a switch, not a parameter",
    "quantum": "the quantum lattice's options (modes, n_max, basis) are integers and choices",
}
DRAWN_CM = ("drawn per sample from N(0, N M k_B T) (cm_momentum=None): its T and M dependence is "
            "already differentiated through the draw; fix it to a number to differentiate in it")
T_ZERO = ("T = 0: the classical sample (and a drawn P_R) scale as sqrt(T), whose derivative is infinite "
          "there; differentiate at T > 0, or use statistics='quantum' with a fixed cm_momentum (d/dT = 0 at T = 0)")


def refusals(*, statistics: str = "classical", dynamics: str = "wow", cm_momentum: float | None = None,
             temperature: float | None = None, electron: str = "chain") -> dict[str, str]:
    """Every Config name that cannot be differentiated for these settings, with the reason.
    electron: 'chain' (wow.Electron, the tight-binding chain) or 'continuum' (wow.Continuum)."""
    if electron not in ("chain", "continuum"):
        raise GradientError(f"electron={electron!r}: allowed 'chain' or 'continuum'")
    out = dict(SETTINGS)
    if electron == "continuum":
        out.update(CONTINUUM_SETTINGS)
        out.update({n: NOT_CONTINUUM for n in CHAIN_ONLY})
    else:
        out.update({n: NOT_CHAIN for n in CONTINUUM_ONLY})
    if dynamics == "quantum":
        out["temperature"] = FOCK
    elif temperature is not None and temperature <= 0 and (statistics == "classical" or cm_momentum is None):
        out["temperature"] = T_ZERO
    if cm_momentum is None:
        out["cm_momentum"] = DRAWN_CM
    return out


def refusals_of(cfg: Config) -> dict[str, str]:
    """``refusals`` for a config's settings."""
    return refusals(statistics=cfg.statistics, dynamics=cfg.dynamics, cm_momentum=cfg.cm_momentum,
                    temperature=cfg.temperature, electron=electron_kind(cfg))


def electron_kind(cfg: Config) -> str:
    """'continuum' for a wow.Continuum electron, else 'chain'."""
    return "continuum" if isinstance(cfg.electron, Continuum) else "chain"


def differentiable(cfg: Config) -> tuple[str, ...]:
    """The Config names a run of ``cfg`` can be differentiated in."""
    no = refusals_of(cfg)
    return tuple(n for n in PARAMETERS if n not in no)


def check_names(cfg: Config, names) -> tuple[str, ...]:
    """Refuse (GradientError, naming the parameter and the reason) any name that is not a
    differentiable parameter of cfg; returns the names as a tuple."""
    names = tuple(names)
    no = refusals_of(cfg)
    for n in names:
        if n in no:
            raise GradientError(f"{n}: cannot be differentiated: {no[n]}")
        if n not in PARAMETERS:
            near = difflib.get_close_matches(str(n), list(PARAMETERS) + list(no), n=1)
            hint = f" (did you mean {near[0]!r}?)" if near else ""
            raise GradientError(f"{n!r}: not a parameter{hint}; differentiable: {list(differentiable(cfg))}")
    dup = sorted({n for n in names if names.count(n) > 1})
    if dup:
        raise GradientError(f"{dup}: named twice")
    return names


# --------------------------------------------------------------------------------------------
# The static layout
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Layout:
    """What is static in a differentiable run (hashable: a jit static argument): the validated
    config (its values are the defaults of parameters not passed), the bound ``omega_max`` (1/fs) the
    lattice flow's order is chosen for, and ``checkpoint_every`` (steps per jax.checkpoint block, or
    None: a plain scan)."""

    cfg: Config
    omega_max: float
    checkpoint_every: int | str | None
    w_max: float | None = None

    def program(self):
        """(Program, Inputs) at cfg's values: the static scan, the bounded flow order, checkpointing
        (or reversible steps); a continuum electron's grid windows sized for widths up to w_max."""
        rev = self.checkpoint_every == REVERSIBLE
        cfg = self.cfg
        if self.w_max is not None:
            cfg = dataclasses.replace(cfg, electron=dataclasses.replace(cfg.electron, w=self.w_max))
        return ensemble.program_of(cfg, steps_per_frame=cfg.steps_per_frame, omega_max=self.omega_max,
                                   checkpoint_every=None if rev else self.checkpoint_every, reversible=rev)


#: ``checkpoint_every`` of reverse mode by running the steps backwards (wow.propagate.reversible_steps)
REVERSIBLE = "reversible"
#: the lattices that run backwards alone (they do not feel the electron)
REVERSIBLE_DYNAMICS = ("frozen", "wow")


def default_block(cfg: Config) -> int:
    """~sqrt(total steps), at most the steps of one frame: memory ~ 2 sqrt(steps) states."""
    return max(1, min(cfg.steps_per_frame, round(math.sqrt(cfg.n_steps))))


def layout(cfg: Config, *, omega_max: float | None = None, checkpoint_every: int | str | None = "auto",
           w_max: float | None = None) -> Layout:
    """The static layout of differentiable runs of ``cfg`` (validated here).

    omega_max: a bound (1/fs) on ω_max = 2 sqrt(K/M) over every spring constant and mass the run will
    be evaluated at (default 2x cfg's ω_max, at most 2/dt); the flow's Taylor order is chosen for it, and outputs
    are NaN beyond it. Allowed: cfg's own ω_max <= omega_max <= 2/dt (validate's bound on dt).
    checkpoint_every: 'auto' (blocks of ~sqrt(steps), ``default_block``), an int, or None (no
    checkpointing: reverse mode stores every step's intermediates), or 'reversible' (reverse mode
    runs the steps backwards from the final state and stores none: frozen and wow lattices; forward
    mode is then unavailable). w_max: with a wow.Continuum electron, a bound (Å) on the traced
    pseudopotential width the grid's windows are sized for (default 1.5x cfg's w); outputs are NaN for
    a width beyond it or below the grid's resolution (2.5 h)."""
    validate(cfg)
    if isinstance(cfg.electron, Continuum):
        w0 = cfg.electron.w
        w_max = 1.5 * w0 if w_max is None else w_max
        if isinstance(w_max, bool) or not isinstance(w_max, (int, float)) or not math.isfinite(w_max) \
                or not w0 <= w_max <= 10 * w0:
            raise GradientError(f"w_max={w_max!r}: allowed [{w0:g}, {10 * w0:g}] angstrom (at least the "
                                f"pseudopotential's own width w)")
        w_max = float(w_max)
    elif w_max is not None:
        raise GradientError(f"w_max={w_max!r}: only for a wow.Continuum electron (leave it None)")
    w0 = cfg.chain.omega_max
    omega_max = min(2.0 * w0, 2.0 / cfg.dt) if omega_max is None else omega_max
    if isinstance(omega_max, bool) or not isinstance(omega_max, (int, float)) or not math.isfinite(omega_max) \
            or not w0 <= omega_max <= 2.0 / cfg.dt:
        raise GradientError(f"omega_max={omega_max!r}: allowed [{w0:g}, {2.0 / cfg.dt:g}] 1/fs (at least "
                            f"the chain's own ω_max = 2 sqrt(K/M); at most 2/dt, where the lattice flow's series "
                            f"stops being cheap)")
    if checkpoint_every == "auto":
        checkpoint_every = default_block(cfg)
    elif checkpoint_every == REVERSIBLE:
        if cfg.dynamics not in REVERSIBLE_DYNAMICS or cfg.local is not None:
            raise GradientError(f"checkpoint_every='reversible': dynamics={cfg.dynamics!r}"
                                f"{' with local modes' if cfg.local is not None else ''} cannot run backwards "
                                f"alone (allowed with dynamics {REVERSIBLE_DYNAMICS}, no local modes: the "
                                f"Ehrenfest lattice reacts to the electron, the quantum one carries phonon layers); "
                                f"use 'auto' (checkpointed blocks)")
    elif checkpoint_every is not None and (isinstance(checkpoint_every, bool) or not isinstance(checkpoint_every, int)
                                           or checkpoint_every < 1):
        raise GradientError(f"checkpoint_every={checkpoint_every!r}: allowed 'auto', 'reversible', None or an "
                            f"integer >= 1")
    return Layout(cfg=cfg, omega_max=float(omega_max), checkpoint_every=checkpoint_every, w_max=w_max)


def keys(seed: int, n_samples: int):
    """The per-sample keys of wow.run(cfg, n_samples, seed): split(PRNGKey(seed), n_samples)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise GradientError(f"seed={seed!r} must be an integer in [0, 2**63)")
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 1:
        raise GradientError(f"n_samples={n_samples!r} must be an integer >= 1")
    return jax.random.split(jax.random.PRNGKey(seed), n_samples)


def parameters(cfg: Config, names=None) -> dict:
    """cfg's values of ``names`` (default: every differentiable one) as arrays of cfg's dtype, in
    the units of ``PARAMETERS``: the point to differentiate at."""
    names = differentiable(cfg) if names is None else check_names(cfg, names)
    real, _ = ensemble.dtypes(cfg)
    value = {"chain.mass": cfg.chain.mass, "chain.spring": cfg.chain.spring, "temperature": cfg.temperature,
             "cm_momentum": cfg.cm_momentum}
    value.update({n: getattr(cfg.electron, n.split(".")[1]) for n in CHAIN_ONLY + CONTINUUM_ONLY if n in names})
    return {n: jnp.asarray(value[n], real) for n in names}


# --------------------------------------------------------------------------------------------
# The traced run
# --------------------------------------------------------------------------------------------
def _inputs(lay: Layout, params: dict):
    """(program, inputs, T, fixed P_R) with the traced parameters in place of cfg's values."""
    cfg = lay.cfg
    real, _ = ensemble.dtypes(cfg)
    program, inputs = lay.program()
    get = lambda name, default: jnp.asarray(params[name], real) if name in params else jnp.asarray(default, real)
    mass = get("chain.mass", cfg.chain.mass) * AMU  # eV·fs²/Å²
    spring = get("chain.spring", cfg.chain.spring)
    e = cfg.electron
    if isinstance(e, Continuum):
        V0, w = get("electron.V0", e.V0), get("electron.w", e.w)
        mp = inputs.model
        # the bands (P_b's states, the Bloch packet) are the static lattice's at the traced V0, w
        # (always recomputed: the program's own were made at the bound w_max)
        bands = continuum.bloch_bands(V0, w, mp.m, program.model.grid, real)
        mp = dataclasses.replace(mp, V0=V0, w=w, bands=bands,
                                 inv_2NM=1.0 / (2 * cfg.chain.N * mass) if cfg.recoil else mp.inv_2NM)
    else:
        mp = dataclasses.replace(inputs.model, alpha=get("electron.alpha", e.alpha), D=get("electron.D", e.D),
                                 t0=get("electron.t0", e.t0), inv_2NM=1.0 / (2 * cfg.chain.N * mass),
                                 omega_max=2.0 * jnp.sqrt(spring / mass))
    lp = LatticeParams(omega2=spring / mass, mass=mass)
    if cfg.dynamics == "quantum":
        lp = program.backend.traced_params(inputs.lattice, lp, inputs.dt) if _lattice_traced(params) \
            else inputs.lattice
    inputs = dataclasses.replace(inputs, model=mp, lattice=lp)
    return program, inputs, get("temperature", cfg.temperature), get("cm_momentum", cfg.cm_momentum or 0.0), mass, spring


def _lattice_traced(params) -> bool:
    return "chain.mass" in params or "chain.spring" in params


def _check_params(lay: Layout, params):
    if not isinstance(params, dict):
        raise GradientError(f"params: a dict {{Config name: value}}, got {type(params).__name__}")
    check_names(lay.cfg, params)
    for n, v in params.items():
        if jnp.shape(v) != ():
            raise GradientError(f"{n}: a scalar, got shape {jnp.shape(v)} (vmap over a batch of values instead)")


@partial(jax.jit, static_argnames=("lay",))
def sample_tallies(params: dict, lay: Layout, keys) -> dict:
    """Per-sample tallies (name -> (n_samples,)) and traces (name -> (n_samples, n_frames + 1)) of a
    run of lay.cfg with ``params`` (Config name -> traced scalar) in place of cfg's values, sample s
    drawn from keys[s]. Final values: P_b, P_R (<P_R> at t_final), x_mean, k_mean; with a classical
    lattice also dE_b (NaN where P_b < 1e-12), dE_e, dE_cm, E_in. Traces: P_b_t, P_R_t, x_mean_t,
    k_mean_t, norm_t."""
    _check_params(lay, params)
    cfg = lay.cfg
    program, inputs, T, P_R_fixed, mass, spring = _inputs(lay, params)
    backend, model = program.backend, program.model
    real = inputs.dt.dtype
    draw_p = inputs.lattice
    st = jax.vmap(lambda k: backend.draw(k, T, cfg.statistics, real, draw_p))(keys)
    if cfg.cm_momentum is not None:
        st = Start(sites=st.sites, P_R=jnp.full_like(st.P_R, P_R_fixed), extra=st.extra)
    psi0 = ensemble.initial_packet(cfg)
    if isinstance(cfg.electron, Continuum) and cfg.electron.packet == "bloch":  # at the traced bands
        psi0 = continuum.initial_packet(cfg.electron, cfg.chain, program.model.grid, inputs.model.bands, psi0.dtype)
    psi = jnp.broadcast_to(psi0, (keys.shape[0], psi0.shape[-1]))
    tallies, frames, _, _ = ensemble.one_block(st, psi, jnp.asarray(cfg.k0, real), inputs, program)
    out = {name: frames[name][:, -1] for name in ("P_b", "P_R", "x_mean", "k_mean")}
    out.update({f"{name}_t": frames[name] for name in ("P_b", "P_R", "x_mean", "k_mean", "norm")})
    for name in ("dE_b", "dE_e", "dE_cm", "E_in"):
        if name in tallies:
            out[name] = tallies[name]
    for name in TRANSPORT_FRAMES:  # Config(transport=True): the transport observables' traces
        if name in frames:
            out[f"{name}_t"] = frames[name]
    # beyond the bound the flow's Taylor order is too low: NaN, never a silently truncated number
    ok = 2.0 * jnp.sqrt(spring / mass) <= lay.omega_max * (1 + 1e-12)
    if lay.w_max is not None:  # the windows' bound and the grid's resolution (validate's h <= w/2.5)
        w = inputs.model.w
        ok = ok & (w <= lay.w_max * (1 + 1e-12)) & (w >= continuum.RESOLVE * program.model.grid.h * (1 - 1e-12))
    return jax.tree_util.tree_map(lambda x: jnp.where(ok, x, jnp.nan), out)


@partial(jax.jit, static_argnames=("lay",))
def ensemble_means(params: dict, lay: Layout, keys) -> dict:
    """The ensemble means of ``sample_tallies``: P_b, P_R, x_mean, k_mean (and their traces *_t,
    (n_frames + 1,)), and with a classical lattice dE_e, dE_cm and dE_b, the latter P_b-weighted as
    wow.run reports it: Σ_s P_b,s ΔE_b,s / Σ_s P_b,s (samples with P_b < 1e-12 carry no weight)."""
    t = sample_tallies(params, lay, keys)
    out = {k: jnp.mean(v, axis=0) for k, v in t.items() if k not in ("dE_b", "E_in")}
    if "dE_b" in t:
        # the where keeps NaN (P_b below the floor) out of the sum and out of its derivative
        w = jnp.where(t["P_b"] > P_B_FLOOR, t["P_b"] * jnp.where(t["P_b"] > P_B_FLOOR, t["dE_b"], 0.0), 0.0)
        out["dE_b"] = jnp.sum(w) / jnp.sum(t["P_b"])
    return out


# --------------------------------------------------------------------------------------------
# Transport estimators (Config(transport=True)) at fixed windows
# --------------------------------------------------------------------------------------------
#: the frame observables of a transport run (wow.transport.chain_frame, the lattice energy)
TRANSPORT_FRAMES = ("dx", "msd", "D_run", "v_mean", "E_e", "E_band", "edge", "corr", "E_lattice")


@dataclasses.dataclass(frozen=True)
class TransportWindow:
    """The frames the transport estimators use, held fixed while differentiating: tau_stop, the
    last frame of τ_p's integral; fit, the MSD fit window (first, last frame), inclusive."""

    tau_stop: int
    fit: tuple[int, int]


def frame_times(cfg: Config) -> np.ndarray:
    """The frame times (fs) of a run of cfg, t = 0 included: (n_frames + 1,)."""
    return np.arange(cfg.n_frames + 1) * (cfg.steps_per_frame * cfg.dt)


def transport_window(cfg: Config, traces: dict) -> TransportWindow:
    """The windows of wow.transport's rules on per-sample traces (name -> (n_samples, n_frames + 1):
    v_mean_t, msd_t, edge_t; e.g. ``sample_tallies`` at the point): τ_p by relaxation_time on <v>
    (Sokal's window), the MSD fit from FIT_START τ_p to the edge rule's last time (as the diffusion
    experiment). Raises GradientError with the rule's reason when the run is too short for them."""
    from . import transport as tr

    t = frame_times(cfg)
    try:
        tau = tr.relaxation_time(t, np.asarray(traces["v_mean_t"]))
        stop = tr.edge_until(t, np.asarray(traces["edge_t"]))
        fit = tr.fit_window(t, tau.value, stop)
    except ValueError as e:
        raise GradientError(f"transport windows: {e}") from None
    return TransportWindow(tau_stop=int(np.searchsorted(t, tau.t_stop)), fit=fit)


def transport_estimates(means: dict, cfg: Config, window: TransportWindow) -> dict:
    """D (Å²/fs) and τ_p (fs) of ensemble-mean traces (``ensemble_means`` of a transport run) at a
    fixed ``window``, in jnp (differentiable): wow.transport's estimators with their windows held:
    D = half the least-squares slope of the mean MSD over window.fit (diffusion_msd; linear in the
    traces), τ_p = ∫_0^{t_stop} <v> dt / <v>(0) by the trapezoid rule (relaxation_time's value).
    The rules that choose the windows are piecewise constant in the parameters (derivative zero
    where they do not jump), so the derivative at a fixed window is the estimator's derivative."""
    t = frame_times(cfg)
    i0, i1 = window.fit
    tw = t[i0:i1 + 1]
    w_fit = (tw - tw.mean()) / np.sum((tw - tw.mean()) ** 2)  # Σ w y = the least-squares slope
    j = window.tau_stop
    seg = t[:j + 1]
    w_tau = np.zeros(t.size)
    w_tau[:j + 1] = np.concatenate([[0], np.diff(seg)]) / 2 + np.concatenate([np.diff(seg), [0]]) / 2
    msd, v = means["msd_t"], means["v_mean_t"]
    return {"D": jnp.dot(jnp.asarray(w_fit, msd.dtype), msd[i0:i1 + 1]) / 2,
            "tau_p": jnp.dot(jnp.asarray(w_tau, v.dtype), v) / v[0]}


def means_function(cfg: Config, n_samples: int, *, seed: int = 0, wrt=None, omega_max: float | None = None,
                   checkpoint_every: int | str | None = "auto", w_max: float | None = None,
                   transport_window: TransportWindow | None = None):
    """(f, p0): f(params) -> ensemble_means of n_samples samples of cfg (seed as in wow.run), params a
    dict over ``wrt`` (default: every differentiable name); p0 = cfg's values. Every refusal
    (non-differentiable names, a Fock-sampled T, T = 0, bad bounds) happens here, before any work.

    With Config(transport=True) f also returns the transport observables' mean traces (msd_t,
    v_mean_t, D_run_t, ...) and the estimators D and tau_p (``transport_estimates``) at
    ``transport_window``; None: the windows wow.transport's rules choose at p0 (``transport_window``,
    one forward run here; n_samples >= 2 for its jackknife)."""
    lay = layout(cfg, omega_max=omega_max, checkpoint_every=checkpoint_every, w_max=w_max)
    p0 = parameters(cfg, wrt)
    ks = keys(seed, n_samples)
    if not cfg.transport:
        if transport_window is not None:
            raise GradientError("transport_window: only for Config(transport=True)")
        return (lambda params: ensemble_means(params, lay, ks)), p0
    n = cfg.n_frames
    if transport_window is None:
        if n_samples < 2:
            raise GradientError(f"n_samples={n_samples}: the transport windows' rules need >= 2 samples "
                                f"(or pass transport_window)")
        transport_window = transport_window_of(sample_tallies(p0, lay, ks), cfg)
    if not isinstance(transport_window, TransportWindow) or not (
            0 < transport_window.tau_stop <= n and 0 <= transport_window.fit[0] < transport_window.fit[1] <= n):
        raise GradientError(f"transport_window={transport_window!r}: allowed a TransportWindow with "
                            f"0 < tau_stop <= {n} and 0 <= fit[0] < fit[1] <= {n} (frames)")

    def f(params):
        m = ensemble_means(params, lay, ks)
        return {**m, **transport_estimates(m, cfg, transport_window)}
    return f, p0


def transport_window_of(traces: dict, cfg: Config) -> TransportWindow:
    """``transport_window`` of per-sample traces (host arrays)."""
    return transport_window(cfg, {k: np.asarray(v) for k, v in traces.items() if k.endswith("_t")})


__all__ = ["CHAIN_ONLY", "CONTINUUM_ONLY", "CONTINUUM_SETTINGS", "DRAWN_CM", "FOCK", "GradientError", "Layout",
           "PARAMETERS", "REVERSIBLE", "REVERSIBLE_DYNAMICS", "SETTINGS", "TRANSPORT_FRAMES", "T_ZERO",
           "TransportWindow", "check_names", "default_block", "differentiable", "electron_kind", "ensemble_means",
           "frame_times", "keys", "layout", "means_function", "parameters", "refusals", "refusals_of",
           "sample_tallies", "transport_estimates", "transport_window", "transport_window_of"]
