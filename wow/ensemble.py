"""Ensembles of thermal samples: one jitted, vmapped program per chunk of samples, chunks sized to
a memory budget, per-sample tallies and ensemble statistics back on the host.

Sample s always gets the key ``jax.random.split(PRNGKey(seed), n_samples)[s]``, so results do not
depend on the chunk size, and the same seed gives the same numbers.
"""

from __future__ import annotations

import dataclasses
import time
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from . import devices as _devices, lattice
from .config import Config, ConfigError, validate
from .electron import k_grid, packet
from .lattice import SiteState
from .progress import chunk_progress
from .propagate import COMPOSITIONS, Layout, Params, propagate
from .tally import coherent_split, final_tallies, mean_sem, weighted_mean_sem
from .units import HBAR

#: Number of sample groups kept for the jackknife of the coherent split.
N_GROUPS = 32
#: Default bound on device memory per chunk (bytes).
DEFAULT_MEMORY = 2 * 2**30


def dtypes(cfg: Config):
    return (jnp.float64, jnp.complex128) if cfg.dtype == "float64" else (jnp.float32, jnp.complex64)


def longest_flow(cfg: Config) -> float:
    """The longest single harmonic flow a backend takes (fs): wow moves its mid-step lattice by
    whole (sub-)steps, up to max |w| dt in a composition, so the Taylor order is chosen for that."""
    return cfg.dt * max(abs(w) for w in COMPOSITIONS[cfg.order])


def layout_of(cfg: Config) -> Layout:
    real, _ = dtypes(cfg)
    e = cfg.electron
    return Layout(
        N=cfg.chain.N, boundary=cfg.chain.boundary, dynamics=cfg.dynamics, recoil=cfg.recoil,
        use_onsite=e.D != 0, n_terms=lattice.flow_terms(cfg.chain, longest_flow(cfg), real),
        steps_per_frame=cfg.steps_per_frame, n_frames=cfg.n_frames, save_density=cfg.save_density,
        order=cfg.order, frame_tally=_frame_tally(cfg))


def _frame_tally(cfg: Config):
    """A lattice that reacts (Ehrenfest) on the ring changes its phonons' crystal momentum, which
    the per-frame <P_R> trace must subtract (MODEL.md); frozen and wow keep P_ph fixed."""
    if cfg.dynamics == "ehrenfest" and cfg.chain.boundary == "ring":
        from .occupations import PhononMomentumFrames

        return PhononMomentumFrames(cfg.chain)
    return None


def params_of(cfg: Config) -> Params:
    real, _ = dtypes(cfg)
    c, e = cfg.chain, cfg.electron
    t_static = np.zeros(c.n_bonds)
    for b, dt_b in e.bond_defects:
        t_static[int(b)] += dt_b
    f = lambda x: jnp.asarray(x, real)
    return Params(t0=f(e.t0), alpha=f(e.alpha), D=f(e.D), a=f(c.a), dt=f(cfg.dt),
                  omega2=f(c.spring / c.mass_ev), k=f(k_grid(c.N, c.a)),
                  inv_2NM=f(1.0 / (2 * c.N * c.mass_ev)), t_static=f(t_static))


def initial_packet(cfg: Config):
    _, cplx = dtypes(cfg)
    return packet(cfg.chain.N, cfg.chain.a, cfg.x0, cfg.electron.sigma, cfg.k0, cplx)


def _one_sample(key, T, P_R_fixed, psi0, p: Params, chain, statistics, k0, fixed_cm, layout):
    real = psi0.real.dtype
    s = lattice.sample_modes(key, chain, T, statistics, real)
    lat0 = lattice.to_sites(chain, s)
    if layout.dynamics == "frozen":
        lat0 = SiteState(u=lat0.u, v=jnp.zeros_like(lat0.v))
    P_R = P_R_fixed if fixed_cm else s.P_R
    Q = P_R + HBAR * k0
    psi_f, lat_f, frames = propagate(psi0, lat0, Q, p, layout)
    tallies, psik = final_tallies(psi0, psi_f, lat0.u, lat_f.u, Q, p, layout)
    from .occupations import sample_tallies  # momentum budget and energy channels (O(N log N))
    tallies.update(sample_tallies(chain, psi0, psi_f, lat0, lat_f, p))
    tallies["P_R0"] = P_R
    # <P_R>(t) = Q - ħ<k>(t) - (P_ph(t) - P_ph(0)) (MODEL.md); P_ph is recorded only where it moves
    frames["P_R"] = Q - HBAR * frames["k_mean"]
    if "P_ph" in frames:
        frames["P_R"] = frames["P_R"] - (frames["P_ph"] - frames["P_ph"][0])
        tallies["P_R_f"] = frames["P_R"][-1]
    return tallies, frames, psik


@partial(jax.jit, static_argnames=("chain", "statistics", "fixed_cm", "layout", "n_groups"))
def _chunk(keys, groups, T, P_R_fixed, k0, psi0, p, chain, statistics, fixed_cm, layout, n_groups):
    """Run a chunk of samples; reduce ψ~ to per-group sums on the device (for the coherent split)."""
    run = jax.vmap(_one_sample, in_axes=(0,) + (None,) * 9)
    tallies, frames, psik = run(keys, T, P_R_fixed, psi0, p, chain, statistics, k0, fixed_cm, layout)
    S = jax.ops.segment_sum(psik, groups, num_segments=n_groups)
    A = jax.ops.segment_sum(jnp.abs(psik) ** 2, groups, num_segments=n_groups)
    return tallies, frames, S, A


@dataclasses.dataclass
class EnsembleResult:
    """Per-sample tallies and ensemble statistics of one run.

    per_sample: name -> (n_samples,) array (see wow.tally); traces: name -> (n_samples, n_frames+1)
    (norm, x_mean, k_mean, P_b, P_R; density (n, n_frames+1, N) if saved); times: (n_frames+1,) fs;
    stats: name -> (mean, standard error); coherent: the coherent/incoherent split (wow.tally);
    compile_s, run_s: seconds spent compiling and running.
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

    def __str__(self):
        c = self.config
        lines = [f"EnsembleResult: {self.n_samples} samples, N={c.chain.N} {c.chain.boundary}, "
                 f"T={c.temperature:g} K {c.statistics}, dynamics={c.dynamics}, recoil={c.recoil}, "
                 f"{c.dtype}, {c.n_steps} steps of {c.dt:g} fs, seed={self.seed}"]
        for k, (m, s) in self.stats.items():
            lines.append(f"  {k:10s} = {m: .6g} ± {s:.2g}")
        co = self.coherent
        lines.append(f"  P_coh      = {co['P_coh']: .6g} ± {co['P_coh_sem']:.2g}  (P_tot {co['P_tot']:.6g})")
        lines.append(f"  compile {self.compile_s:.2f} s, run {self.run_s:.2f} s")
        return "\n".join(lines)


#: On a CPU a chunk is also kept this small per device, so that its samples' state stays in the
#: last-level cache for all their steps: measured at N = 4096, 512 samples, 2 cores: wow float32
#: 238 -> 420 M sample·site·steps/s, float64 89 -> 188 M/s against memory-sized chunks.
CPU_CACHE_BYTES = 16 * 10**6


def cache_bytes_per_sample(cfg: Config) -> int:
    """Bytes one sample's working set takes in the time loop: ψ, the lattice and the step's
    temporaries, ~16 real words per site."""
    real, _ = dtypes(cfg)
    return cfg.chain.N * 16 * jnp.dtype(real).itemsize


def bytes_per_sample(cfg: Config) -> int:
    """Peak device bytes per sample, a bound on the measured ones (benchmarks/RESULTS.md: 61-233
    bytes per sample·site for frozen/wow in float32/float64), plus the recorded frames."""
    real, _ = dtypes(cfg)
    N, rb = cfg.chain.N, jnp.dtype(real).itemsize
    frames = (cfg.n_frames + 1) * (8 * rb + (3 * N * rb if cfg.save_density else 0))  # |ψ|², |ψ~|², u
    return N * 30 * rb + frames  # measured peak (XLA memory analysis): 15-29 real words per site


def run(cfg: Config, n_samples: int, seed: int = 0, chunk_size: int | None = None,
        memory_bytes: int = DEFAULT_MEMORY, devices=None, progress=None) -> EnsembleResult:
    """Run ``n_samples`` thermal samples of ``cfg`` and gather tallies and statistics.

    Samples are sharded over ``devices`` (default: every device of every process; see
    ``wow.devices``): each chunk's sample axis is split evenly across them, every process gathers all
    tallies, and the result is the same as on one device. ``memory_bytes`` bounds the device memory of one chunk per device.
    ``progress``: None (a bar over the samples on a terminal, for runs longer than a second), False
    (none), or a callable ``progress(samples_done, n_samples)`` called after each chunk."""
    validate(cfg)
    devices = _devices.resolve(devices)
    n_dev = len(devices)
    if isinstance(n_samples, bool) or not isinstance(n_samples, (int, np.integer)) or n_samples < 2:
        raise ConfigError(f"n_samples={n_samples!r} must be an integer >= 2 (standard errors need two)")
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or not 0 <= seed < 2**63:
        raise ConfigError(f"seed={seed!r} must be an integer in [0, 2**63)")
    if chunk_size is None:
        per_device = memory_bytes // bytes_per_sample(cfg)
        if all(d.platform == "cpu" for d in devices):
            per_device = min(per_device, CPU_CACHE_BYTES // cache_bytes_per_sample(cfg))
        chunk_size = int(max(1, min(n_samples, n_dev * per_device)))
        chunk_size = -(-n_samples // -(-n_samples // chunk_size))  # as many chunks, evened out (less padding)
    elif isinstance(chunk_size, bool) or not isinstance(chunk_size, (int, np.integer)) or chunk_size < 1:
        raise ConfigError(f"chunk_size={chunk_size!r} must be an integer >= 1")
    chunk_size = min(int(chunk_size), n_samples)
    chunk_size = -(-chunk_size // n_dev) * n_dev  # a whole number of samples per device
    mesh = jax.sharding.Mesh(np.array(devices), ("samples",))
    by_sample = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("samples"))
    replicated = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec())

    real, _ = dtypes(cfg)
    layout, p, psi0 = layout_of(cfg), params_of(cfg), initial_packet(cfg)
    keys = jax.random.split(jax.random.PRNGKey(seed), n_samples)
    n_groups = min(N_GROUPS, n_samples)
    groups = (np.arange(n_samples) * n_groups) // n_samples
    static = dict(chain=cfg.chain, statistics=cfg.statistics, fixed_cm=cfg.cm_momentum is not None,
                  layout=layout, n_groups=n_groups)
    dyn = _devices.put((jnp.asarray(cfg.temperature, real), jnp.asarray(cfg.cm_momentum or 0.0, real),
                        jnp.asarray(cfg.k0, real), psi0, p), replicated)

    def chunk_args(lo):
        idx = np.minimum(np.arange(lo, lo + chunk_size), n_samples - 1)  # pad the last chunk
        g = np.where(np.arange(lo, lo + chunk_size) < n_samples, groups[idx], n_groups)  # pad -> dropped
        return _devices.put((keys[idx], np.asarray(g, np.int32)), by_sample)

    t0 = time.perf_counter()
    compiled = _devices.compile_for(_chunk.lower(*chunk_args(0), *dyn, **static), devices)
    compile_s = time.perf_counter() - t0

    t0 = time.perf_counter()
    tallies, frames = [], []
    S = np.zeros((n_groups, cfg.chain.N), complex)
    A = np.zeros((n_groups, cfg.chain.N))
    report = chunk_progress(progress, n_samples)
    for lo in range(0, n_samples, chunk_size):
        k, g = chunk_args(lo)
        t, f, s_, a_ = _devices.gather(compiled(k, g, *dyn))
        take = min(chunk_size, n_samples - lo)
        tallies.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:take], t))
        frames.append(jax.tree_util.tree_map(lambda x: np.asarray(x)[:take], f))
        S += np.asarray(s_, complex)
        A += np.asarray(a_, float)
        report(lo + take)
    report.close()
    run_s = time.perf_counter() - t0

    cat = lambda parts: {k: np.concatenate([q[k] for q in parts]) for k in parts[0]}
    per_sample, traces = cat(tallies), cat(frames)
    stats = {k: mean_sem(per_sample[k]) for k in ("P_b", "P_b0", "dE_e", "dE_cm", "norm", "P_R_f")}
    stats["dE_b"] = weighted_mean_sem(per_sample["dE_b"], per_sample["P_b"])
    counts = np.bincount(groups, minlength=n_groups)
    back = k_grid(cfg.chain.N, cfg.chain.a) < 0
    times = np.arange(cfg.n_frames + 1) * cfg.steps_per_frame * cfg.dt
    return EnsembleResult(cfg, n_samples, seed, times, per_sample, traces, stats,
                          coherent_split(S, A, counts, back), compile_s, run_s)
