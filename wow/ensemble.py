"""Ensembles of thermal samples (or given states): one jitted program per chunk of samples, chunks
sized to a memory budget and sharded over devices, per-sample tallies and ensemble statistics back
on the host.

    Config ──validate──> Program (model x backend x plan) + Inputs (traced parameters)
    keys ──draw (backend)──> initial lattice, P_R  [or a given InitialState]
         ──propagate (the one lax.scan)──> final state, frames
         ──tallies (model + backend)──> per sample ──> statistics, coherent split ──> EnsembleResult

Sample s always gets the key ``jax.random.split(PRNGKey(seed), n_samples)[s]``, so results do not
depend on the chunk size, and the same seed gives the same numbers. Nothing in a chunk's compiled
program depends on dt or the duration (the steps per frame are traced, the lattice's Taylor order is
bucketed: wow.dynamics.flow_order), so a dt-convergence study at a fixed frame count compiles once.
"""

from __future__ import annotations

import dataclasses
import time
import warnings
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import devices as _devices, dynamics, lattice, models, sanity
from .config import Config, ConfigError, validate
from .models.continuum import Continuum
from .dynamics.base import Start
from .dynamics.quantum import hbar_omega
from .electron import k_grid
from .lattice import SiteState
from .progress import chunk_progress
from .propagate import COMPOSITIONS, Inputs, Plan, Program, propagate
from .fock import axis_momenta
from .tally import budget_classes, budget_summary, coherent_split, mean_sem, packet_window, quantum_summary, weighted_mean_sem
from .units import HBAR

#: Number of sample groups kept for the jackknife of the coherent split.
N_GROUPS = 32
#: At most this many amplitude sums (groups x amplitudes per sample) are kept for the coherent split:
#: a large quantum-lattice state gets fewer groups (at least 2).
COHERENT_ENTRIES = 2**24
#: Default bound on device memory per chunk (bytes).
DEFAULT_MEMORY = 2 * 2**30
#: Weight in the top Fock level above which a quantum run warns that n_max is too small.
TOP_WEIGHT_WARN = 1e-6


def dtypes(cfg: Config):
    return (jnp.float64, jnp.complex128) if cfg.dtype == "float64" else (jnp.float32, jnp.complex64)


def longest_flow(cfg: Config) -> float:
    """The longest single free-lattice flow a backend takes (fs): wow moves its mid-step lattice by
    whole (sub-)steps, up to max |w| dt in a composition."""
    return cfg.dt * max(abs(w) for w in COMPOSITIONS[cfg.order])


def program_of(cfg: Config, steps_per_frame: int | None = None, *, omega_max: float | None = None,
               checkpoint_every: int | None = None, reversible: bool = False):
    """(Program, Inputs) of a validated config: the electron model and the lattice backend it
    selects, the loop's plan, and the traced parameters. steps_per_frame None: traced (no
    recompilation over dt or duration); an int: a static scan (reverse-mode differentiable).
    For gradients (wow.gradients): omega_max, a bound on ω_max over the traced spring constants and
    masses that the lattice flow's Taylor order is chosen for; checkpoint_every, blocks of that many
    steps under jax.checkpoint (Plan.checkpoint_every; needs a static steps_per_frame); reversible,
    reverse mode runs the steps backwards instead of storing them (Plan.reversible)."""
    real, _ = dtypes(cfg)
    model, mp = models.build(cfg, real)
    backend, lp = dynamics.build(cfg, real, longest_flow(cfg), omega_max)
    plan = Plan(order=cfg.order, n_frames=cfg.n_frames, steps_per_frame=steps_per_frame,
                save_lattice=cfg.save_density, checkpoint_every=checkpoint_every, transport=cfg.transport,
                kubo=cfg.kubo, reversible=reversible)
    inputs = Inputs(model=mp, lattice=lp, dt=jnp.asarray(cfg.dt, real),
                    steps_per_frame=jnp.asarray(cfg.steps_per_frame, jnp.int32),
                    watch_every=jnp.asarray(sanity.watch_every(cfg), jnp.int32))
    return Program(model, backend, plan), inputs


def initial_packet(cfg: Config):
    """The configured electron packet of one sample, (N,) complex in cfg's dtype."""
    _, cplx = dtypes(cfg)
    model, _ = models.build(cfg, dtypes(cfg)[0])
    return model.packet(cfg, cplx)


# --------------------------------------------------------------------------------------------
# Given initial states
# --------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class InitialState:
    """Parts of the initial state given instead of drawn (``wow.run(cfg, initial=...)``). Each field
    left None is drawn as usual (thermal at cfg.temperature from the sample's key; P_R as
    cfg.cm_momentum says; the configured packet); each given field replaces its part of the draw.
    Arrays may carry a leading sample axis (then it sets n_samples) or not (the same for every sample).

    u, v: site displacements (Å) and velocities (Å/fs), (N,), summing to zero over the sites (the
    CM is not part of u); with local modes (Config.local) their coordinates q and velocities, (m, N),
    any sum; or Q, P: internal mode coordinates (Å) and momenta (eV·fs/Å), (N-1,), in
    wow.lattice's numbering. For dynamics='quantum' these are the classical modes (their components
    along the quantum modes are removed). P_R: CM momentum (eV·fs/Å). occupations: the quantum modes'
    Fock occupations (m,) in the analysis basis (increasing mode order; (n_+, n_-) at the (j, N-j)
    positions in the running basis). psi: the electron's amplitudes (N,) complex, normalised.
    A fully given deterministic run: u and v (or Q and P), P_R, and n_samples = 1.
    """

    u: object = None
    v: object = None
    Q: object = None
    P: object = None
    P_R: object = None
    occupations: object = None
    psi: object = None


def _given_arrays(cfg: Config, init: InitialState, n_samples):
    """Validate a given initial state; returns (dict of host arrays with a leading sample axis,
    n_samples)."""
    if not isinstance(init, InitialState):
        raise ConfigError(f"initial={init!r}: allowed a wow.InitialState or None")
    N = cfg.chain.N
    real, cplx = dtypes(cfg)
    local = cfg.local is not None
    width = {"u": N, "v": N, "Q": N - 1, "P": N - 1, "psi": amplitude_count(cfg), "P_R": None,
             "occupations": len(cfg.quantum.modes) if cfg.dynamics == "quantum" else 0}
    out, sizes = {}, set()
    for name, n in width.items():
        value = getattr(init, name)
        if value is None:
            continue
        if name == "occupations" and cfg.dynamics != "quantum":
            raise ConfigError(f"initial.occupations={value!r}: only with dynamics='quantum'")
        if local and name in ("Q", "P", "P_R"):
            raise ConfigError(f"initial.{name}: local modes have no normal modes or centre of mass; give their "
                              "coordinates and velocities as initial.u, initial.v, each (m, N)")
        x = np.asarray(value)
        if name == "occupations":
            x = x.astype(np.int64) if np.all(np.asarray(value) == np.round(np.asarray(value, float))) else x
        rank = 0 if n is None else (2 if local and name in ("u", "v") else 1)
        single = x.ndim == rank
        if not single and x.ndim != rank + 1:
            shape = (cfg.local.m, n) if rank == 2 else (() if n is None else (n,))
            raise ConfigError(f"initial.{name}: shape {x.shape}: allowed {shape} or with a leading sample axis")
        if n is not None and x.shape[-1] != n:
            raise ConfigError(f"initial.{name}: shape {x.shape}: the last axis must be {n}")
        if rank == 2 and x.shape[-2] != cfg.local.m:
            raise ConfigError(f"initial.{name}: shape {x.shape}: one row per local mode ({cfg.local.m}) then the sites")
        if not np.all(np.isfinite(x)):
            raise ConfigError(f"initial.{name}: contains non-finite values")
        x = x[None] if single else x
        if not single:
            sizes.add(x.shape[0])
        out[name] = x
    if ("u" in out and "Q" in out) or ("v" in out and "P" in out):
        raise ConfigError("initial: give the lattice either on the sites (u, v) or in modes (Q, P), not both")
    for name in (() if local else ("u", "v")):  # local modes have no centre of mass to keep out
        if name in out:
            tot = np.abs(out[name].sum(-1))
            if np.any(tot > 1e-9 * (1 + np.abs(out[name]).sum(-1))):
                raise ConfigError(f"initial.{name}: sums to {float(tot.max()):g} over the sites; allowed: zero "
                                  "(the centre of mass is not part of the internal displacements)")
    if "psi" in out:
        norm = np.linalg.norm(out["psi"], axis=-1)
        if np.any(np.abs(norm - 1) > 1e-6):
            raise ConfigError(f"initial.psi: norm {float(norm.max()):.8g}: allowed normalised amplitudes (norm 1)")
    if "occupations" in out:
        occ = out["occupations"]
        dims = np.asarray(cfg.quantum.dims())
        if not np.issubdtype(occ.dtype, np.integer) or np.any(occ < 0) or np.any(occ > dims - 1):
            raise ConfigError(f"initial.occupations={init.occupations!r}: allowed integers in [0, n_max] per "
                              f"quantum mode (n_max = {tuple(int(d) - 1 for d in dims)})")
    if len(sizes) > 1:
        raise ConfigError(f"initial: the given arrays disagree on the number of samples ({sorted(sizes)})")
    if sizes:
        S = sizes.pop()
        if n_samples is not None and n_samples != S:
            raise ConfigError(f"n_samples={n_samples!r} but the initial state holds {S} samples")
        n_samples = S
    return out, n_samples


def _starts(source, given, T, P_R_fixed, statistics, fixed_cm, program: Program, real):
    """Per-sample initial states of a chunk: drawn from the keys, with the given parts replacing
    theirs (given: name -> (S, ...) arrays or (1, ...) for all samples)."""
    backend = program.backend
    keys = source["keys"]
    st = jax.vmap(lambda k: backend.draw(k, T, statistics, real))(keys)
    S = keys.shape[0]
    take = lambda x: jnp.broadcast_to(x, (S,) + x.shape[1:])
    sites = st.sites
    chain = backend.chain
    if "Q" in given or "P" in given:
        to_sites = lambda X: jax.vmap(lambda x: lattice.modes_to_sites(chain, x))(X)
        u = to_sites(take(given["Q"]).astype(real)) if "Q" in given else sites.u
        v = to_sites(take(given["P"]).astype(real)) / chain.mass_ev if "P" in given else sites.v
        sites = SiteState(u=u, v=v)
    if "u" in given or "v" in given:
        sites = SiteState(u=take(given["u"]).astype(real) if "u" in given else sites.u,
                          v=take(given["v"]).astype(real) if "v" in given else sites.v)
    if given.keys() & {"u", "v", "Q", "P"}:
        sites = jax.vmap(backend.prepare)(sites)
    P_R = st.P_R
    if fixed_cm:
        P_R = jnp.full_like(P_R, P_R_fixed)
    if "P_R" in given:
        P_R = take(given["P_R"]).astype(real)
    extra = dict(st.extra)
    if "occupations" in given:
        extra["n0"] = take(given["occupations"]).astype(jnp.int32)
        extra["clipped"] = jnp.zeros(S, bool)
    return Start(sites=sites, P_R=P_R, extra=extra)


def one_block(starts: Start, psi, k0, inputs: Inputs, program: Program):
    """Propagate a block of samples from their initial states; per-sample tallies and frames.
    (Public: wow.gradients runs its traced parameters through the same block.)"""
    model, backend = program.model, program.backend
    block = starts  # samples first: the lattice block layout (B, N)
    lat0 = backend.initial_lattice(block)
    psi0 = model.to_block(psi)
    Q = starts.P_R + model.initial_momentum(psi0, k0, inputs.model)
    psi_f, lat_f, frames = propagate(program, inputs, psi0, lat0, Q)
    if hasattr(model, "sector_frames"):  # frames that need each sample's Q (continuum transport)
        frames = model.sector_frames(frames, Q, inputs.model)
    tallies, psik = backend.tallies(psi0, psi_f, block.sites, lat_f, Q, model, inputs.model, inputs.lattice)
    tallies["P_R0"] = starts.P_R
    tallies.update({k: v for k, v in starts.extra.items()})
    # <P_R>(t) = Q - ħ<k>(t) - (P_ph(t) - P_ph(0)) (docs/model.md); P_ph is recorded only where it moves.
    # The density-density model's k_mean is the mechanical <p>/ħ and its <P_R> = Q - <p> exactly.
    frames["P_R"] = Q[:, None] - HBAR * frames["k_mean"]
    if "P_ph" in frames and not model.exact_cm:
        frames["P_R"] = frames["P_R"] - (frames["P_ph"] - frames["P_ph"][:, :1])
        tallies["P_R_f"] = frames["P_R"][:, -1]
    final = {"psi": model.from_block(psi_f), "u": lat_f.u, "v": lat_f.v}
    return tallies, frames, psik, final


def _blocked(starts, psi, k0, inputs, program, block, mesh):
    """one_block as one program per device (shard_map: measured faster on CPUs than the GSPMD
    partition of the whole chunk), over its samples in blocks of ``block`` one after the other
    (lax.map), so that a block's state stays in cache for all its steps. Samples are independent:
    the numbers are those of one block, to rounding."""
    tree_map = jax.tree_util.tree_map

    def per_device(starts, psi, k0, inputs):
        S = psi.shape[0]
        if block >= S:
            return one_block(starts, psi, k0, inputs, program)
        split = lambda x: x.reshape((S // block, block) + x.shape[1:])
        out = jax.lax.map(lambda a: one_block(*a, k0, inputs, program), tree_map(split, (starts, psi)))
        return tree_map(lambda x: x.reshape((S,) + x.shape[2:]), out)

    P = jax.sharding.PartitionSpec
    return jax.shard_map(per_device, mesh=mesh, in_specs=(P("samples"), P("samples"), P(), P()),
                         out_specs=P("samples"), check_vma=False)(starts, psi, k0, inputs)


@partial(jax.jit, static_argnames=("program", "statistics", "fixed_cm", "n_groups", "keep_final", "block", "mesh"))
def _chunk(source, groups, T, P_R_fixed, k0, psi0, inputs, program, statistics, fixed_cm, n_groups, keep_final,
           block=None, mesh=None):
    """Run a chunk of samples; reduce ψ~ to per-group sums on the device (for the coherent split).
    block: samples per inner block on each device of ``mesh`` (shard_map; None: one GSPMD program)."""
    real = inputs.dt.dtype
    given = source["given"]
    starts = _starts(source, given, T, P_R_fixed, statistics, fixed_cm, program, real)
    S = source["keys"].shape[0]
    psi = jnp.broadcast_to(given["psi"], (S,) + given["psi"].shape[1:]).astype(psi0.dtype) if "psi" in given \
        else jnp.broadcast_to(psi0, (S,) + psi0.shape)
    if block is None:
        tallies, frames, psik, final = one_block(starts, psi, k0, inputs, program)
    else:
        tallies, frames, psik, final = _blocked(starts, psi, k0, inputs, program, block, mesh)
    S_ = jax.ops.segment_sum(psik, groups, num_segments=n_groups)
    A_ = jax.ops.segment_sum(jnp.abs(psik) ** 2, groups, num_segments=n_groups)
    return tallies, frames, S_, A_, (final if keep_final else None)


@dataclasses.dataclass
class EnsembleResult:
    """Per-sample tallies and ensemble statistics of one run (every dynamics, quantum included).

    per_sample: name -> (n_samples, ...) array (see wow.tally); traces: name -> (n_samples,
    n_frames+1[, ...]) (norm, x_mean, k_mean, P_b, P_R; density (n, n_frames+1, N) if saved; quantum:
    n_mean, top, P_ph); times: (n_frames+1,) fs; stats: name -> (mean, standard error); coherent:
    the coherent/incoherent split (wow.tally; a quantum lattice's on the amplitudes of every final
    Fock state and k < 0; empty for one sample); compile_s, run_s: seconds
    spent compiling and running. Quantum lattice (else empty): modes (axis order), hw (their ħω_j,
    eV), fractions (Δn = 0 share of backscattering and by order Σ|Δn_j|: name -> (mean, sem)),
    channels (the Δn patterns carrying backscattering, largest first). final (only with
    keep_final=True): 'psi' the final amplitudes (n, N) (quantum: Fock amplitudes (n, *dims, N) in
    the standing basis), 'u', 'v' the final lattice (n, N).
    """

    config: Config
    n_samples: int
    seed: int
    times: np.ndarray
    per_sample: dict
    traces: dict
    stats: dict
    coherent: dict
    compile_s: float
    run_s: float
    modes: tuple = ()
    hw: np.ndarray | None = None
    fractions: dict = dataclasses.field(default_factory=dict)
    channels: list = dataclasses.field(default_factory=list)
    final: dict | None = None

    def __str__(self):
        c = self.config
        lines = [f"EnsembleResult: {self.n_samples} samples, N={c.chain.N} {c.chain.boundary}, "
                 f"T={c.temperature:g} K {c.statistics}, dynamics={c.dynamics}, recoil={c.recoil}, "
                 f"{c.dtype}, {c.n_steps} steps of {c.dt:g} fs, seed={self.seed}"]
        if self.modes:
            q = c.quantum
            lines.append(f"  quantum modes {self.modes} (n_max={tuple(d - 1 for d in q.dims())}, {q.basis} basis), "
                         f"others={q.others}")
        for k, (m, s) in self.stats.items():
            lines.append(f"  {k:10s} = {m: .6g} ± {s:.2g}")
        for k, (m, s) in self.fractions.items():
            lines.append(f"  {k:10s} = {m: .6g} ± {s:.2g}")
        for pat, pr in self.channels[:6]:
            lines.append(f"  Δn={pat}: P_b {pr:.4g}")
        co = self.coherent
        if co:
            lines.append(f"  P_coh      = {co['P_coh']: .6g} ± {co['P_coh_sem']:.2g}  (P_tot {co['P_tot']:.6g})")
        lines.append(f"  compile {self.compile_s:.2f} s, run {self.run_s:.2f} s")
        return "\n".join(lines)


#: On a CPU a chunk is also kept this small per device, so that its samples' state stays in the
#: last-level cache for all their steps: measured at N = 4096, 512 samples, 2 cores: wow float32
#: 238 -> 420 M sample·site·steps/s, float64 89 -> 188 M/s against memory-sized chunks.
CPU_CACHE_BYTES = 16 * 10**6
#: On a CPU, the chunk program of the chain under these (dynamics, dtype) runs each device's samples
#: as its own program (shard_map) rather than one program partitioned by XLA (GSPMD), and where
#: BLOCKED, in inner blocks of about CPU_BLOCK_BYTES of working state (cache_bytes_per_sample), one
#: block after the other. Measured with wow.run at N = 4096 x 64, 2 cores, 300 steps (benchmarks/
#: RESULTS.md, run_blocks.py; M sample·site·steps/s, GSPMD / per device / per device in blocks of
#: 8 (float64) or 16 (float32)): wow float64 86 / 162 / 174, Ehrenfest float64 85 / 88 / 90, frozen
#: float64 355 / 365 / 429; float32 wow 266 / 392 / 372, Ehrenfest 115 / 129 / 130, frozen
#: 359 / 385 / 483 (noisy: 297-484). Elsewhere (quantum, the continuum, kubo, other dynamics, GPUs)
#: the chunk stays one GSPMD program.
PER_DEVICE = {(d, t) for d in ("wow", "ehrenfest", "frozen") for t in ("float32", "float64")}
BLOCKED = {("wow", "float64"), ("ehrenfest", "float64"), ("frozen", "float64")}
CPU_BLOCK_BYTES = 8 * 10**6


def block_size(cfg: Config, per_device: int, devices) -> int | None:
    """Samples per inner block of a chunk with ``per_device`` samples per device: None (one GSPMD
    program) outside PER_DEVICE; per_device (one block per device) outside BLOCKED or when all of a
    device's samples fit in CPU_BLOCK_BYTES; else the largest divisor of per_device that fits."""
    if not all(d.platform == "cpu" for d in devices) or (cfg.dynamics, cfg.dtype) not in PER_DEVICE \
            or isinstance(cfg.electron, Continuum) or cfg.kubo:
        return None
    cap = max(1, CPU_BLOCK_BYTES // cache_bytes_per_sample(cfg))
    if (cfg.dynamics, cfg.dtype) not in BLOCKED or cap >= per_device:
        return per_device
    return max(b for b in range(1, cap + 1) if per_device % b == 0)


def amplitude_count(cfg: Config) -> int:
    """The electron's amplitudes per lattice state: N sites (chain) or g N grid points (continuum)."""
    return cfg.chain.N * cfg.electron.g if isinstance(cfg.electron, Continuum) else cfg.chain.N


def state_size(cfg: Config) -> int:
    """Amplitudes per sample: N (chain) or g N (continuum), times Π(n_max + 1) over the quantum modes."""
    size = amplitude_count(cfg)
    if cfg.dynamics == "quantum":
        size *= int(np.prod(cfg.quantum.dims()))
    return size


def cache_bytes_per_sample(cfg: Config) -> int:
    """Bytes one sample's working set takes in the time loop: ψ, the lattice and the step's
    temporaries, ~16 real words per site."""
    real, _ = dtypes(cfg)
    return state_size(cfg) * (2 if cfg.kubo else 1) * 16 * jnp.dtype(real).itemsize  # kubo: ψ and φ


def bytes_per_sample(cfg: Config) -> int:
    """Peak device bytes per sample, a bound on the measured ones (benchmarks/RESULTS.md), plus the
    recorded frames."""
    real, _ = dtypes(cfg)
    N, rb = cfg.chain.N, jnp.dtype(real).itemsize
    per_frame = (8 + (10 if cfg.transport else 0)) * rb + (3 * N * rb if cfg.save_density else 0) \
        + (2 * N * rb if cfg.save_amplitudes else 0)  # scalars, |ψ|², |ψ~|², u, ψ
    frames = (cfg.n_frames + 1) * per_frame
    return state_size(cfg) * (2 if cfg.kubo else 1) * 30 * rb + frames  # measured peak (XLA memory analysis): 15-29 real words per site


def seed_key(seed: int):
    """PRNGKey(seed) for the whole range [0, 2**63), the same key with 64-bit JAX on or off (PRNGKey
    itself keeps only the low 32 bits when it is off: seed 2**32 would give seed 0's samples)."""
    seed = int(seed)
    return jnp.asarray(np.array([seed >> 32, seed & 0xFFFFFFFF], np.uint32))


def _check_count(name, value, low):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low:
        raise ConfigError(f"{name}={value!r} must be an integer >= {low}")


def run(cfg: Config, n_samples: int | None = None, seed: int = 0, chunk_size: int | None = None,
        memory_bytes: int = DEFAULT_MEMORY, devices=None, initial: InitialState | None = None,
        keep_final: bool = False, progress=None, allow_crossing: bool = False) -> EnsembleResult:
    """Run ``n_samples`` samples of ``cfg`` (thermal draws, with the parts given in ``initial``
    replacing theirs) and gather tallies and statistics; every dynamics, quantum included.

    Samples are sharded over ``devices`` (default: every device of every process; see
    ``wow.devices``): each chunk's sample axis is split evenly across them, every process gathers all
    tallies, and the result is the same as on one device. ``memory_bytes`` bounds the device memory
    of one chunk per device. ``keep_final`` keeps the final states (EnsembleResult.final). n_samples = 1
    is allowed (standard errors are then NaN); with ``initial`` holding a leading sample axis,
    n_samples defaults to its length. ``progress``: None (a bar over the samples on a terminal, for
    runs longer than a second), False (none), or a callable ``progress(samples_done, n_samples)``
    called after each chunk. Every step's lattice is watched (wow.sanity): per_sample['sign_flips']
    counts the bond·steps whose hopping changed sign (a warning when any), 'min_bond' is the smallest
    bond stretch and 'crossed' marks samples whose atoms passed each other: refused (CrossingError,
    nothing returned) unless ``allow_crossing`` (then a warning)."""
    validate(cfg)
    devices = _devices.resolve(devices)
    given, n_samples = _given_arrays(cfg, initial, n_samples) if initial is not None else ({}, n_samples)
    if n_samples is None:
        raise ConfigError("n_samples=None: give the number of samples (an integer >= 1)")
    _check_count("n_samples", n_samples, 1)
    n_dev = len(devices)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**63)")
    _check_count("memory_bytes", memory_bytes, 1)
    if keep_final not in (True, False):
        raise ConfigError(f"keep_final={keep_final!r} must be True or False")
    if not (progress is None or progress is False or callable(progress)):
        raise ConfigError(f"progress={progress!r}: allowed None, False or a callable progress(done, total)")
    if not isinstance(allow_crossing, (bool, np.bool_)):
        raise ConfigError(f"allow_crossing={allow_crossing!r} must be True or False")
    sanity.check_sizes(cfg, n_samples, memory_bytes, bytes_per_sample(cfg), keep_final)
    share = sanity.sign_change_fraction(cfg)
    if share > sanity.SIGN_CHANGE_WARN:
        warnings.warn(f"hoppings change sign: at temperature={cfg.temperature:g} K with alpha={cfg.electron.alpha:g} "
                      f"eV/Å an expected {share:.2g} of the bonds have t0 - α b < 0 (from the thermal bond "
                      "variance); the SSH model is meant for |α b| < t0", stacklevel=2)
    if chunk_size is None:
        per_device = memory_bytes // bytes_per_sample(cfg)
        if all(d.platform == "cpu" for d in devices):
            per_device = min(per_device, CPU_CACHE_BYTES // cache_bytes_per_sample(cfg))
        chunk_size = int(max(1, min(n_samples, n_dev * per_device)))
        chunk_size = -(-n_samples // -(-n_samples // chunk_size))  # as many chunks, evened out (less padding)
    else:
        _check_count("chunk_size", chunk_size, 1)
    chunk_size = min(int(chunk_size), n_samples)
    chunk_size = -(-chunk_size // n_dev) * n_dev  # a whole number of samples per device
    mesh = jax.sharding.Mesh(np.array(devices), ("samples",))
    by_sample = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("samples"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    real, _ = dtypes(cfg)
    program, inputs = program_of(cfg)
    program = dataclasses.replace(program, plan=dataclasses.replace(program.plan, watch=True))
    psi0 = initial_packet(cfg)
    keys = jax.random.split(seed_key(seed), n_samples)
    n_groups = min(N_GROUPS, n_samples, max(2, COHERENT_ENTRIES // state_size(cfg)))
    groups = (np.arange(n_samples) * n_groups) // n_samples
    block = block_size(cfg, chunk_size // n_dev, devices)
    static = dict(program=program, statistics=cfg.statistics, fixed_cm=cfg.cm_momentum is not None,
                  n_groups=n_groups, keep_final=bool(keep_final), block=block, mesh=mesh if block else None)
    dyn = _devices.put((jnp.asarray(cfg.temperature, real), jnp.asarray(cfg.cm_momentum or 0.0, real),
                        jnp.asarray(cfg.k0, real), psi0, inputs), replicated)
    per_sample_given = {k: v for k, v in given.items() if v.shape[0] > 1 or n_samples == 1}
    shared_given = {k: v for k, v in given.items() if k not in per_sample_given}

    def chunk_args(lo):
        idx = np.minimum(np.arange(lo, lo + chunk_size), n_samples - 1)  # pad the last chunk
        g = np.where(np.arange(lo, lo + chunk_size) < n_samples, groups[idx], n_groups)  # pad -> dropped
        mine = {k: v[np.minimum(idx, v.shape[0] - 1)] for k, v in per_sample_given.items()}
        src, g = _devices.put(({"keys": keys[idx], "given": mine}, np.asarray(g, np.int32)), by_sample)
        src["given"].update(_devices.put(shared_given, replicated))
        return src, g

    t0 = time.perf_counter()
    compiled = _compile(chunk_args(0), dyn, static, devices)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    tallies, frames, finals = [], [], []
    n_split = state_size(cfg) // amplitude_count(cfg) * int(np.asarray(program.model.split_mask(inputs.model)).size)
    S = np.zeros((n_groups, n_split), complex)
    A = np.zeros((n_groups, n_split))
    report = chunk_progress(progress, n_samples)
    for lo in range(0, n_samples, chunk_size):
        t, f, s_, a_, fin = _devices.gather(compiled(*chunk_args(lo), *dyn))
        take = min(chunk_size, n_samples - lo)
        cut = lambda tree: jax.tree_util.tree_map(lambda x: np.asarray(x)[:take], tree)
        tallies.append(cut(t))
        frames.append(cut(f))
        finals.append(cut(fin))
        S += np.asarray(s_, complex)
        A += np.asarray(a_, float)
        report(lo + take)
    report.close()
    run_s = time.perf_counter() - t0

    cat = lambda parts: {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    per_sample, traces = cat(tallies), cat(frames)
    per_sample.update(sanity.watch_tallies(traces, cfg.chain))
    sanity.check_finite(per_sample, traces, n_samples, sanity.NAN_ALLOWED + (
        sanity.NAN_ALLOWED_OPEN if cfg.chain.boundary == "open" else ()))
    sanity.check_watch(per_sample, cfg, allow_crossing)
    times = np.arange(cfg.n_frames + 1) * cfg.steps_per_frame * cfg.dt
    final = None
    if keep_final:
        final = cat(finals)
        if cfg.dynamics == "quantum":
            final["psi"] = _fock_final(program, inputs, final["psi"])
    _window_warning(cfg, per_sample, traces)
    # the coherent split of the final amplitudes (per Fock state for a quantum lattice): the model's
    # split amplitudes (chain: ψ~(k), k < 0 backscattered; continuum: Bloch amplitudes, v_n(k) < 0)
    counts = np.bincount(groups, minlength=n_groups)
    mask = np.asarray(program.model.split_mask(inputs.model))
    back = np.tile(mask, S.shape[1] // mask.size)
    coherent = coherent_split(S, A, counts, back) if n_samples > 1 else {}
    if cfg.dynamics == "quantum":
        return _quantum_result(cfg, n_samples, seed, times, per_sample, traces, coherent, compile_s, run_s, final,
                               program, inputs, given.get("psi"))
    stats = {k: mean_sem(per_sample[k]) for k in ("P_b", "P_b0", "P_b_mech", "dE_e", "dE_cm", "norm", "P_R_f")
             if k in per_sample}
    stats["dE_b"] = weighted_mean_sem(per_sample["dE_b"], per_sample["P_b"])
    return EnsembleResult(cfg, n_samples, seed, times, per_sample, traces, stats, coherent, compile_s, run_s,
                          final=final)


#: Compiled chunk programs of this process, by everything that fixes them (the static arguments and
#: the shapes, dtypes and shardings of the traced ones); ``compile_count`` counts the compilations.
_COMPILED: dict = {}
_COUNT = [0]


def compile_count() -> int:
    """How many chunk programs this process has compiled (a run that reuses one adds nothing)."""
    return _COUNT[0]


def _compile(args, dyn, static, devices):
    spec = jax.tree_util.tree_map(lambda x: (x.shape, str(x.dtype), str(getattr(x, "sharding", None))), (args, dyn))
    key = (tuple(sorted((k, v) for k, v in static.items())), jax.tree_util.tree_structure(spec),
           tuple(jax.tree_util.tree_leaves(spec)), tuple(devices))
    if key not in _COMPILED:
        _COMPILED[key] = _devices.compile_for(_chunk.lower(*args, *dyn, **static), devices)
        _COUNT[0] += 1
    return _COMPILED[key]


@partial(jax.jit, static_argnames=("program",))
def _to_fock(psi, inputs, program):
    return jax.vmap(lambda x: program.backend.to_fock(x, inputs.lattice))(psi)


def _fock_final(program, inputs, psi):
    return np.asarray(_to_fock(jnp.asarray(psi), inputs, program))


def _window_warning(cfg, per_sample, traces):
    """The density-density model poisons a sample whose displacements left the potential's windows
    (|u_j| > u_max at some step) with NaN: say so, with the count and the way out."""
    if not isinstance(cfg.electron, Continuum):
        return
    bad = ~np.isfinite(np.asarray(traces["norm"])).all(axis=tuple(range(1, np.ndim(traces["norm"]))))
    per_sample["window_ok"] = ~bad
    if np.any(bad):
        from .models.continuum import thermal_u_max

        warnings.warn(f"density-density model: {int(bad.sum())} of {bad.size} samples reached displacements |u_j| "
                      f"beyond the potential's window u_max = {thermal_u_max(cfg):.4g} Å and were poisoned with NaN "
                      "(per_sample['window_ok'] is False for them; means skip NaN, the coherent split is NaN); "
                      "raise electron.u_max", stacklevel=3)


def _budget(cfg, per_sample, program, inputs, psi0=None):
    """Per-sample energy classes of the backscattered weight, split by where the crystal momentum
    went (wow.tally.budget_classes), with each sample's own crystal-momentum window: that of the
    given initial amplitudes psi0 ((1 or n, N_s), InitialState.psi) when given, else of the
    configured packet."""
    model, mp = program.model, inputs.model
    ns = per_sample["n0"].shape[0]
    psi0 = np.asarray(initial_packet(cfg))[None] if psi0 is None else np.asarray(psi0)
    w0 = np.asarray(model.crystal_weights(jnp.asarray(psi0), mp)[0])  # (1 or n, N)
    k = k_grid(cfg.chain.N, cfg.chain.a)
    win = np.array([packet_window(w, k, cfg.chain.a) for w in w0])  # (1 or n, 2)
    k0, dk = np.broadcast_to(win[:, 0], (ns,)), np.broadcast_to(win[:, 1], (ns,))
    hq, definite = axis_momenta(cfg.chain, cfg.quantum.sorted_modes(), cfg.quantum.basis)
    out = budget_classes(per_sample["n0"], per_sample["back_k"], hbar_omega(cfg), hq, definite, k, cfg.chain.a, k0, dk)
    out["k0_window"] = np.array(k0)
    out["dk_window"] = np.array(dk)
    return out


def _quantum_result(cfg, n_samples, seed, times, per_sample, traces, coherent, compile_s, run_s, final,
                    program, inputs, psi0=None):
    hw = hbar_omega(cfg)
    if "E_lattice" in traces:  # transport: the classical modes' energy plus the quantum modes' Σ ħω(<n> + 1/2)
        traces["E_lattice"] = traces["E_lattice"] + traces["n_mean"] @ hw + 0.5 * hw.sum()
    add, stats, fractions, channels = quantum_summary(per_sample, traces, hw)
    per_sample.update(add)
    per_sample.update(_budget(cfg, per_sample, program, inputs, psi0))
    fractions.update(budget_summary(per_sample))
    if "P_b_mech" in traces:
        stats["P_b_mech"] = mean_sem(traces["P_b_mech"][:, -1])
    ql = cfg.quantum
    top = float(per_sample["top_max"].max())
    if top > TOP_WEIGHT_WARN:
        warnings.warn(f"quantum lattice truncation: weight {top:.3g} in the top Fock level n_max={ql.n_max} "
                      f"(> {TOP_WEIGHT_WARN:g}) in {int(np.sum(per_sample['top_max'] > TOP_WEIGHT_WARN))} of "
                      f"{n_samples} samples; raise n_max", stacklevel=3)
    n_clip = int(np.sum(per_sample["clipped"]))
    if n_clip:
        warnings.warn(f"quantum lattice: {n_clip} of {n_samples} thermal Fock draws exceeded n_max={ql.n_max} "
                      f"({'n_+ + n_- of a pair' if ql.basis == 'running' else 'a mode'}) and were clipped to it; "
                      "raise n_max", stacklevel=3)
    return EnsembleResult(cfg, n_samples, seed, times, per_sample, traces, stats, coherent, compile_s, run_s,
                          modes=ql.sorted_modes(), hw=np.asarray(hw), fractions=fractions, channels=channels,
                          final=final)
