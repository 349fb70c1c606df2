"""Self-describing HDF5 results files and resumable sweeps.

A results file holds one *sweep*: a list of points, each one ``wow.run`` of a Config, together with
everything needed to reproduce it. It is plain HDF5 (h5py, h5dump); the schema is in the README
("Results files") and summarised here::

    /                      attrs: format='wow-results', format_version, experiment, description,
                           created_utc, command, seed, n_samples, n_points, inputs_json (the sweep's
                           identity, canonical JSON), inputs_sha256, wall_s (sum over points), and the
                           provenance of the run that created the file (wow_version, git_commit,
                           jax_version, numpy_version, h5py_version, python_version, device, dtype)
    /inputs/<name>         the experiment's own inputs (lists of T, N, ...), attrs unit, doc
    /points/p0000 ...      one group per finished point; attrs label, index, n_samples, seed,
                           config_json, sweep.<axis> (this point's coordinates), wall_s, compile_s,
                           run_s, finished_utc and the provenance of the process that ran it
      config/<field>       every Config input as a scalar dataset with attr unit
                           (electron.bond_defects: (n, 2) [bond index, δt eV])
      per_sample/<tally>   (n_samples,) one value per thermal sample, attrs unit, doc
      stats/<tally>        (2,) [mean, standard error], attr unit
      coherent/<name>      scalars: P_tot, P_coh, P_coh_plugin, their _sem, coherent_fraction
      times                (n_frames+1,) fs
      trace_mean/<name>, trace_sem/<name>   (n_frames+1,) mean and standard error over samples
      trajectories/        only when asked: the first n_traj samples, frame by frame (chunked, gzip):
                           sample_index (n_traj,), x (N,) Å, k (N,) 1/Å ascending,
                           density (n_traj, F, N) |ψ_n|², momentum (n_traj, F, N) |ψ~(k)|²,
                           u (n_traj, F, N) Å, E_band, E_recoil, E_lattice (n_traj, F) eV,
                           P_R (eV·fs/Å), P_b, x_mean, k_mean, norm (n_traj, F)

Atomic, resumable writes: the file is never modified in place. Creating it and adding each finished
point both go through ``_atomic_update``: copy the file to a temporary name in the same directory,
add the new group there, close and fsync it, then ``os.replace`` it over the original. At every instant
the path names a complete, readable file; a killed run loses only the point in progress (and leaves
a ``.NAME.PID.tmp`` that the next run removes). Rerunning with the same file skips the points it
already holds; a file made with different inputs is refused unless ``overwrite=True``.
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import math
import os
import platform
import shutil
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np

from . import devices as _devices, lattice
from .config import Config, ConfigError, validate
from .electron import Electron, band, k_grid
from .ensemble import EnsembleResult
from .ensemble import run as run_ensemble
from .lattice import Chain
from .units import HBAR

FORMAT = "wow-results"
FORMAT_VERSION = 1

ANG = "angstrom"
P_UNIT = "eV*fs/angstrom"
#: Units (and one-line meanings) of every Config input, flattened as 'chain.N', 'electron.t0', ...
CONFIG_UNITS = {
    "chain.N": ("", "number of atoms"),
    "chain.mass": ("amu", "atomic mass M"),
    "chain.spring": ("eV/angstrom^2", "spring constant K"),
    "chain.a": (ANG, "lattice spacing"),
    "chain.boundary": ("", "'open' (free ends) or 'ring'"),
    "electron.t0": ("eV", "bare hopping"),
    "electron.alpha": ("eV/angstrom", "SSH bond coupling: t_b = t0 - alpha (u_{n+1} - u_n)"),
    "electron.D": ("eV", "deformation potential"),
    "electron.k0": ("1/angstrom", "packet momentum (None: pi/(3a))"),
    "electron.sigma": (ANG, "packet width"),
    "electron.x0": (ANG, "packet centre (None: middle of the chain)"),
    "electron.bond_defects": ("[bond index, eV]", "static hopping offsets (bond, delta t)"),
    "temperature": ("K", "lattice temperature"),
    "statistics": ("", "'classical' or 'quantum' (Wigner) thermal samples"),
    "dynamics": ("", "lattice dynamics: 'frozen' or 'wow' (prescribed harmonic motion)"),
    "recoil": ("", "CM recoil (Q - hbar k)^2/(2NM) added to the electron's dispersion"),
    "cm_momentum": (P_UNIT, "fixed CM momentum P_R (None: thermal, paper Eq. A10)"),
    "dt": ("fs", "time step"),
    "duration": ("fs", "requested run length"),
    "n_frames": ("", "frames recorded (n_frames + 1 times)"),
    "dtype": ("", "floating-point precision"),
    "save_density": ("", "record |psi_n|^2 and |psi(k)|^2 per frame"),
    "check_inside": ("", "refuse packets that reach the open chain's ends"),
    "order": ("", "split-operator order: 2 (Strang) or 4 (Yoshida)"),
}
#: Units and meanings of the per-sample tallies (wow.tally) and the per-frame traces.
TALLY_UNITS = {
    "P_b": ("", "backscattered probability sum_{k<0} |psi(k)|^2 at t_final"),
    "P_b0": ("", "the same at t = 0"),
    "E_in": ("eV", "band energy of the incoming packet"),
    "E_b": ("eV", "band energy of the backscattered part"),
    "dE_b": ("eV", "E_b - E_in (stats: P_b-weighted mean)"),
    "dE_e": ("eV", "electron energy change, interaction included"),
    "dE_cm": ("eV", "change of the CM kinetic energy <(Q - hbar k)^2/(2NM)> (paper Eq. A8)"),
    "norm": ("", "norm of psi at t_final"),
    "k_f": ("1/angstrom", "final <k>"),
    "P_R_f": (P_UNIT, "final CM momentum Q - hbar <k> (- dP_ph for Ehrenfest on the ring)"),
    "P_R0": (P_UNIT, "initial CM momentum of the sample"),
    "x_mean": (ANG, "<x>"),
    "k_mean": ("1/angstrom", "<k>"),
    "P_R": (P_UNIT, "CM momentum Q - hbar <k>(t)"),
    "density": ("", "|psi_n|^2 (probability per site)"),
    "momentum": ("", "|psi(k)|^2 (probability per k point), k ascending"),
    "u": (ANG, "internal displacements u_n(t)"),
    "E_band": ("eV", "band energy sum_k eps(k) |psi(k)|^2"),
    "E_recoil": ("eV", "CM kinetic energy <(Q - hbar k)^2/(2NM)>"),
    "E_lattice": ("eV", "internal lattice energy sum p^2/2M + K/2 sum b^2"),
}


class ResultsError(ValueError):
    """A results file that cannot be used: unreadable, not a wow file, or made with other inputs."""


# ------------------------------------------------------------------------------------------------
# Configs <-> flat dictionaries
# ------------------------------------------------------------------------------------------------
def config_to_flat(cfg: Config) -> dict:
    """Config as a flat, JSON-able dict {'chain.N': 256, 'electron.t0': 1.0, ..., 'temperature': ...}."""
    out = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        if dataclasses.is_dataclass(v):
            for g in dataclasses.fields(v):
                w = getattr(v, g.name)
                if g.name == "bond_defects":
                    w = [[int(b), float(d)] for b, d in w]
                out[f"{f.name}.{g.name}"] = _plain(w)
        else:
            out[f.name] = _plain(v)
    return out


def config_from_flat(flat: dict) -> Config:
    """Inverse of config_to_flat."""
    top, sub = {}, {"chain": {}, "electron": {}}
    for k, v in flat.items():
        head, _, tail = k.partition(".")
        if tail:
            if tail == "bond_defects":
                v = tuple((int(b), float(d)) for b, d in v)
            sub[head][tail] = v
        else:
            top[k] = v
    for name, cls, given in (("", Config, top), ("chain.", Chain, sub["chain"]),
                             ("electron.", Electron, sub["electron"])):
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)} - ({"chain", "electron"} if not name else set())
        if unknown:
            raise ResultsError(f"inputs {sorted(name + u for u in unknown)} are not wow.Config fields of this "
                               f"version of wow (the file was written by another version)")
    return Config(chain=Chain(**sub["chain"]), electron=Electron(**sub["electron"]), **top)


def _plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return [_plain(x) for x in v]
    return v


def _canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


# ------------------------------------------------------------------------------------------------
# Provenance
# ------------------------------------------------------------------------------------------------
def git_commit() -> str:
    """HEAD of the repository holding this package ('+dirty' if it has uncommitted changes), or
    'unknown' outside a git checkout."""
    root = Path(__file__).resolve().parents[1]
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True,
                             timeout=10).stdout.strip()
        if not sha:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=root,
                               capture_output=True, text=True, timeout=10).stdout.strip()
        return sha + ("+dirty" if dirty else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def provenance(devices=None) -> dict:
    from . import __version__

    devs = _devices.resolve(devices)
    return {
        "wow_version": __version__,
        "git_commit": git_commit(),
        "jax_version": jax.__version__,
        "numpy_version": np.__version__,
        "h5py_version": h5py.__version__,
        "python_version": platform.python_version(),
        "device": f"{len(devs)} x {devs[0].platform}:{getattr(devs[0], 'device_kind', '?')}",
        "host": platform.node(),
    }


def _now() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------------
# Sweep points
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: a label, its coordinates on the sweep axes (e.g. {'temperature': 300,
    'N': 256}), the Config, and how many of its samples to save frame by frame (0: none)."""

    label: str
    values: dict
    config: Config
    trajectories: int = 0

    def identity(self) -> dict:
        return {"label": self.label, "values": {k: _plain(v) for k, v in self.values.items()},
                "config": config_to_flat(self.config), "trajectories": int(self.trajectories)}


def sweep_identity(experiment: str, points, n_samples: int, seed: int, inputs: dict) -> dict:
    """What makes two sweeps the same: every input that changes a number in the file."""
    return json.loads(_canonical({
        "format_version": FORMAT_VERSION, "experiment": experiment, "n_samples": int(n_samples),
        "seed": int(seed), "inputs": {k: _plain(v[0]) for k, v in inputs.items()},
        "points": [p.identity() for p in points]}))


def _differences(a, b, path="", out=None, limit=5):
    """First few differences between two JSON-like values, as 'path: file X vs now Y'."""
    out = [] if out is None else out
    if len(out) >= limit:
        return out
    if isinstance(a, dict) and isinstance(b, dict):
        for k in sorted(set(a) | set(b)):
            p = f"{path}.{k}" if path else k
            if k not in a:
                out.append(f"{p}: absent in the file, {b[k]!r} now")
            elif k not in b:
                out.append(f"{p}: {a[k]!r} in the file, absent now")
            else:
                _differences(a[k], b[k], p, out, limit)
            if len(out) >= limit:
                break
    elif isinstance(a, list) and isinstance(b, list) and path != "inputs" and not path.startswith("inputs."):
        if len(a) != len(b):
            out.append(f"{path}: {len(a)} entries in the file, {len(b)} now")
        else:
            for i, (x, y) in enumerate(zip(a, b)):
                _differences(x, y, f"{path}[{i}]", out, limit)
    elif a != b:
        out.append(f"{path}: {a!r} in the file, {b!r} now")
    return out


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def _tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def _remove_stale_tmp(path: Path):
    """Remove temporaries left by killed runs (their process no longer exists)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2:-4])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def _fsync(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_update(path: Path, write, fresh: bool = False):
    """Apply ``write(h5file)`` to a copy of ``path`` (a new file if ``fresh`` or absent) and move the
    copy over ``path`` in one os.replace: readers and a kill see either the old or the new file.
    In a multi-process run only process 0 writes (every process holds the same results)."""
    if not _devices.is_writer():
        return
    tmp = _tmp_path(path)
    try:
        if path.exists() and not fresh:
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a" if tmp.exists() else "w") as f:
            write(f)
        _fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        _fsync(path.parent)
    except OSError:
        pass


def _dataset(group, name, value, unit="", doc="", **kw):
    if value is None:
        value = "None"
    if isinstance(value, str):
        d = group.create_dataset(name, data=value, dtype=h5py.string_dtype())
    else:
        d = group.create_dataset(name, data=np.asarray(value), **kw)
    d.attrs["unit"] = unit
    if doc:
        d.attrs["doc"] = doc
    return d


def _write_config(group, cfg: Config):
    for k, v in config_to_flat(cfg).items():
        unit, doc = CONFIG_UNITS.get(k, ("", "see wow.Config"))
        if k == "electron.bond_defects":
            v = np.asarray(v, float).reshape(-1, 2)
        _dataset(group, k, v, unit, doc)


def _write_root(f, experiment, description, identity, inputs, prov, command):
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["experiment"] = experiment
    f.attrs["description"] = description
    f.attrs["created_utc"] = _now()
    f.attrs["command"] = command
    f.attrs["seed"] = identity["seed"]
    f.attrs["n_samples"] = identity["n_samples"]
    f.attrs["n_points"] = len(identity["points"])
    f.attrs["inputs_json"] = _canonical(identity)
    f.attrs["inputs_sha256"] = hashlib.sha256(_canonical(identity).encode()).hexdigest()
    f.attrs["wall_s"] = 0.0
    dtypes = sorted({p["config"]["dtype"] for p in identity["points"]})
    f.attrs["dtype"] = ",".join(dtypes)
    for k, v in prov.items():
        f.attrs[k] = v
    g = f.create_group("inputs")
    for name, (value, unit, doc) in inputs.items():
        _dataset(g, name, value, unit, doc)
    f.create_group("points")


def _stack(rows):
    return np.stack([np.asarray(r) for r in rows])


@partial(jax.jit, static_argnames=("chain", "statistics", "frozen"))
def _lattice_frames(keys, T, times, chain, statistics, frozen):
    """u_n at the frame times and the internal lattice energy, per sample key, on the device."""
    real = times.dtype

    def one(key):
        s = lattice.sample_modes(key, chain, T, statistics, real)
        if frozen:
            st = lattice.to_sites(chain, s)
            u = jnp.broadcast_to(st.u, (times.shape[0], chain.N))
            v = jnp.zeros_like(u)
        else:
            st = jax.vmap(lambda t: lattice.harmonic_motion(chain, s, t))(times)
            u, v = st.u, st.v
        b = u[:, 1:] - u[:, :-1] if chain.boundary == "open" else jnp.roll(u, -1, axis=1) - u
        e_lat = 0.5 * chain.mass_ev * jnp.sum(v**2, 1) + 0.5 * chain.spring * jnp.sum(b**2, 1)
        return u, e_lat

    return jax.vmap(one)(keys)


def trajectory_frames(res: EnsembleResult, n: int | None = None) -> dict:
    """Frame-by-frame arrays of a run made with save_density=True: the recorded density and momentum
    frames, the CM momentum, and the lattice displacements u_n(t) with the energies (the first n
    samples, or all).

    u_n(t) is the engine's own record (traces['u']); the internal lattice energy is rebuilt on the
    device from each sample's key (the same key and sampler the engine
    uses: sample s of seed is key s of split(PRNGKey(seed), n)), by the exact normal-mode solution
    (``lattice.harmonic_motion``; constant for a frozen lattice). The energies come from the
    recorded frames: E_band = sum_k ε(k)|ψ~(k)|², E_recoil = <(Q - ħk)²/(2NM)>, and E_lattice
    (internal, constant for wow)."""
    cfg = res.config
    if "density" not in res.traces:
        raise ValueError("trajectory_frames needs a run with Config(save_density=True)")
    c = cfg.chain
    real = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    keys = jax.random.split(jax.random.PRNGKey(res.seed), res.n_samples)
    times = jnp.asarray(res.times, real)

    u, e_lat = _lattice_frames(keys, jnp.asarray(cfg.temperature, real), times, c, cfg.statistics,
                               cfg.dynamics == "frozen")
    k = k_grid(c.N, c.a)
    order = np.argsort(k, kind="stable")
    w = np.asarray(res.traces["momentum"])
    eps = band(k, cfg.electron.t0, c.a)
    Q = np.asarray(res.per_sample["P_R0"]) + HBAR * cfg.k0
    e_rec = np.sum(w * (Q[:, None, None] - HBAR * k) ** 2, -1) / (2 * c.N * c.mass_ev)
    out = {
        "sample_index": np.arange(res.n_samples),
        "times": np.asarray(res.times),
        "x": np.arange(c.N) * c.a,
        "k": k[order],
        "density": np.asarray(res.traces["density"]),
        "momentum": w[..., order],
        "u": np.asarray(res.traces["u"]) if "u" in res.traces else np.asarray(u),
        "E_band": np.sum(w * eps, -1),
        "E_recoil": e_rec,
        # the rebuilt free harmonic motion is the lattice only where it feels no force
        "E_lattice": np.asarray(e_lat) if cfg.dynamics in ("frozen", "wow") else np.full(np.shape(e_lat), np.nan),
    }
    for name in ("P_R", "P_b", "x_mean", "k_mean", "norm"):
        out[name] = np.asarray(res.traces[name])
    if n is not None:
        out = {k: (v if k in ("times", "x", "k") else v[:n]) for k, v in out.items()}
    return out


def _write_point(f, index, point: Point, res: EnsembleResult, traj, prov, wall_s):
    g = f["points"].create_group(f"p{index:04d}")
    g.attrs["index"] = index
    g.attrs["label"] = point.label
    g.attrs["n_samples"] = res.n_samples
    g.attrs["seed"] = res.seed
    g.attrs["config_json"] = _canonical(config_to_flat(point.config))
    g.attrs["values_json"] = _canonical(point.identity()["values"])
    for k, v in point.values.items():
        g.attrs[f"sweep.{k}"] = "None" if v is None else _plain(v)
    g.attrs["wall_s"] = wall_s
    g.attrs["compile_s"] = res.compile_s
    g.attrs["run_s"] = res.run_s
    g.attrs["finished_utc"] = _now()
    for k, v in prov.items():
        g.attrs[k] = v
    _write_config(g.create_group("config"), point.config)
    ps = g.create_group("per_sample")
    for k, v in res.per_sample.items():
        _dataset(ps, k, np.asarray(v), *TALLY_UNITS.get(k, ("", "")))
    st = g.create_group("stats")
    for k, (m, s) in res.stats.items():
        d = _dataset(st, k, np.array([m, s]), *TALLY_UNITS.get(k, ("", "")))
        d.attrs["columns"] = "mean, standard error"
    co = g.create_group("coherent")
    for k, v in res.coherent.items():
        _dataset(co, k, float(v), "", "coherent/incoherent split over samples (wow.tally.coherent_split)")
    _dataset(g, "times", np.asarray(res.times), "fs", "frame times")
    tm, ts = g.create_group("trace_mean"), g.create_group("trace_sem")
    for k, v in res.traces.items():
        if k in ("density", "momentum"):
            continue
        v = np.asarray(v, float)
        unit, doc = TALLY_UNITS.get(k, ("", ""))
        _dataset(tm, k, v.mean(0), unit, "mean over samples of " + doc)
        _dataset(ts, k, v.std(0, ddof=1) / np.sqrt(v.shape[0]), unit, "standard error of the mean")
    f.attrs["wall_s"] = float(f.attrs["wall_s"]) + wall_s
    if traj is not None:
        tg = g.create_group("trajectories")
        n, F = traj["density"].shape[:2]
        for k, v in traj.items():
            v = np.asarray(v)
            unit, doc = TALLY_UNITS.get(k, ("", ""))
            if k in ("x",):
                unit = ANG
            elif k == "k":
                unit = "1/angstrom"
            elif k == "times":
                unit = "fs"
            kw = {}
            if v.ndim == 3:
                kw = dict(chunks=(1, min(F, 64), v.shape[2]), compression="gzip", compression_opts=4,
                          shuffle=True)
            elif v.ndim == 2 and v.size > 1024:
                kw = dict(chunks=(1, F), compression="gzip", shuffle=True)
            _dataset(tg, k, v, unit, doc, **kw)


# ------------------------------------------------------------------------------------------------
# The resumable sweep
# ------------------------------------------------------------------------------------------------
def check_file(path) -> h5py.File:
    """Open an existing results file read-only, or raise ResultsError saying what is wrong."""
    path = Path(path)
    if not path.exists():
        raise ResultsError(f"{path}: no such file")
    if path.is_dir():
        raise ResultsError(f"{path} is a directory, not a results file")
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise ResultsError(f"{path} is not a readable HDF5 file ({e})") from None
    if f.attrs.get("format") != FORMAT:
        f.close()
        raise ResultsError(f"{path} is an HDF5 file but not a wow results file "
                           f"(attribute format={FORMAT!r} missing)")
    if int(f.attrs.get("format_version", -1)) > FORMAT_VERSION:
        v = f.attrs.get("format_version")
        f.close()
        raise ResultsError(f"{path} has format_version {v}; this wow reads up to {FORMAT_VERSION}")
    return f


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{name}={value!r} must be an integer {rng}")


def run_sweep(path, experiment: str, points, n_samples: int, seed: int = 0, *, inputs=None,
              description: str = "", overwrite: bool = False, devices=None, chunk_size=None,
              progress: bool | None = None, command: str | None = None, log=None) -> Path:
    """Run every point of a sweep into the results file ``path``, resuming a file made with the
    same inputs (points already there are skipped).

    points: a list of Point; inputs: the experiment's own inputs {name: (value, unit, doc)} for
    /inputs (part of the identity); overwrite: start over when ``path`` holds another sweep or is not
    a results file; progress: a tqdm bar (None: only when stderr is a terminal); log: a callable
    receiving one line per event (None: silent). Every input is checked before anything is run or
    written; each point is written atomically as soon as it finishes. Returns the path."""
    from tqdm.auto import tqdm

    path = Path(path)
    inputs = dict(inputs or {})
    points = list(points)
    if not points:
        raise ConfigError("points=[]: a sweep needs at least one point")
    _check_int("n_samples", n_samples, 2)
    _check_int("seed", seed, 0, 2**63 - 1)
    if chunk_size is not None:
        _check_int("chunk_size", chunk_size, 1)
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise ConfigError("points: labels must be distinct")
    for p in points:
        try:
            validate(p.config)
        except ConfigError as e:
            raise ConfigError(f"point {p.label!r}: {e}") from None
        _check_int(f"point {p.label!r} trajectories", p.trajectories, 0, n_samples)
    _devices.resolve(devices)
    if path.is_dir():
        raise ResultsError(f"--out {path} is a directory: give a file name such as {path / (experiment + '.h5')}")
    if not path.parent.exists():
        raise ResultsError(f"--out {path}: directory {path.parent} does not exist")
    identity = sweep_identity(experiment, points, n_samples, seed, inputs)

    fresh = True
    done = set()
    if path.exists():
        try:
            with check_file(path) as f:
                old = json.loads(f.attrs["inputs_json"])
                if old != identity:
                    if not overwrite:
                        diff = "; ".join(_differences(old, identity))
                        raise ResultsError(
                            f"{path} holds a sweep made with different inputs ({diff}). Rerun with "
                            "--overwrite (overwrite=True) to start over, or choose another --out")
                else:
                    fresh = False
                    done = {int(g.attrs["index"]) for g in f["points"].values()}
        except ResultsError:
            if not overwrite:
                raise
    # every process has read the file's state before process 0 changes it
    _devices.barrier("wow.io.run_sweep: results file read")
    if _devices.is_writer():
        _remove_stale_tmp(path)
    prov = provenance(devices)
    say = log or (lambda s: None)
    if fresh:
        cmd = command if command is not None else " ".join(sys.argv)
        _atomic_update(path, lambda f: _write_root(f, experiment, description, identity, inputs, prov, cmd),
                       fresh=True)
        say(f"{path}: new sweep of {len(points)} points")
    elif done:
        say(f"{path}: resuming, {len(done)} of {len(points)} points already done")

    bar = tqdm(total=len(points), initial=len(done), desc=experiment, unit="point",
               disable=(not sys.stderr.isatty()) if progress is None else not progress)
    try:
        for i, p in enumerate(points):
            if i in done:
                continue
            bar.set_postfix_str(p.label)
            t0 = time.perf_counter()
            res = run_ensemble(p.config, n_samples, seed, chunk_size=chunk_size, devices=devices)
            traj = None
            if p.trajectories:
                if p.trajectories == n_samples and p.config.save_density:
                    tres = res
                else:  # samples 0..n-1 of the same seed: keys are a prefix of the full run's
                    tres = run_ensemble(dataclasses.replace(p.config, save_density=True),
                                        max(2, p.trajectories), seed, devices=devices)
                traj = trajectory_frames(tres, p.trajectories)
            wall = time.perf_counter() - t0
            _atomic_update(path, lambda f: _write_point(f, i, p, res, traj, prov, wall))
            bar.update(1)
            say(f"  [{i + 1}/{len(points)}] {p.label}: P_b = {res.stats['P_b'][0]:.4g} "
                f"± {res.stats['P_b'][1]:.2g}  ({wall:.1f} s)")
    finally:
        bar.close()
    _devices.barrier("wow.io.run_sweep: results file written")  # others may now read it
    return path


# ------------------------------------------------------------------------------------------------
# Reading
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class PointData:
    """One point read back: label, sweep coordinates, Config, per-sample tallies, statistics
    {name: (mean, sem)}, coherent split, frame times, trace means and errors, trajectories (or None),
    and the group's attributes."""

    index: int
    label: str
    values: dict
    config: Config
    per_sample: dict
    stats: dict
    coherent: dict
    times: np.ndarray
    trace_mean: dict
    trace_sem: dict
    trajectories: dict | None
    attrs: dict


@dataclasses.dataclass
class Results:
    """A results file read into memory: root attributes, the experiment's inputs
    {name: (value, unit)}, and the finished points in sweep order."""

    path: Path
    attrs: dict
    inputs: dict
    points: list

    @property
    def experiment(self) -> str:
        return str(self.attrs["experiment"])

    @property
    def n_points_planned(self) -> int:
        return int(self.attrs["n_points"])


def _read(d):
    v = d[()]
    if isinstance(v, bytes):
        v = v.decode()
    return v


def _group(g) -> dict:
    return {k: _read(d) for k, d in g.items()}


def _attrs(obj) -> dict:
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in obj.attrs.items()}


def read_results(path, trajectories: bool = True) -> Results:
    """Read a results file (ResultsError if it is not one)."""
    path = Path(path)
    with check_file(path) as f:
        try:
            inputs = {k: (_read(d), d.attrs.get("unit", "")) for k, d in f["inputs"].items()}
            pts = []
            for name in sorted(f["points"]):
                g = f["points"][name]
                a = _attrs(g)
                tr = None
                if trajectories and "trajectories" in g:
                    tr = _group(g["trajectories"])
                pts.append(PointData(
                    index=int(a["index"]), label=str(a["label"]), values=json.loads(a["values_json"]),
                    config=config_from_flat(json.loads(a["config_json"])),
                    per_sample=_group(g["per_sample"]),
                    stats={k: (float(v[0]), float(v[1])) for k, v in _group(g["stats"]).items()},
                    coherent={k: float(v) for k, v in _group(g["coherent"]).items()},
                    times=np.asarray(g["times"][()]), trace_mean=_group(g["trace_mean"]),
                    trace_sem=_group(g["trace_sem"]), trajectories=tr, attrs=a))
            return Results(path, _attrs(f), inputs, pts)
        except (KeyError, ValueError, TypeError) as e:
            raise ResultsError(f"{path}: a wow results file with a damaged or unexpected layout ({e!r})") from None


def summary_table(res: Results, columns=("P_b", "dE_b", "dE_cm")) -> list[list[str]]:
    """Rows of strings: label, then mean ± sem for each column, then the coherent split."""
    rows = [["point"] + [f"{c} [{TALLY_UNITS.get(c, ('', ''))[0] or '1'}]" for c in columns]
            + ["P_coh", "coh. frac."]]
    for p in res.points:
        row = [p.label]
        for c in columns:
            m, s = p.stats.get(c, (math.nan, math.nan))
            row.append(f"{m:.4g} ± {s:.2g}")
        co = p.coherent
        row.append(f"{co.get('P_coh', math.nan):.3g} ± {co.get('P_coh_sem', math.nan):.2g}")
        row.append(f"{co.get('coherent_fraction', math.nan):.3g}")
        rows.append(row)
    return rows


def format_table(rows, markdown: bool = False) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    if markdown:
        lines = ["| " + " | ".join(c.ljust(w) for c, w in zip(rows[0], widths)) + " |",
                 "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        lines += ["| " + " | ".join(c.ljust(w) for c, w in zip(r, widths)) + " |" for r in rows[1:]]
        return "\n".join(lines)
    lines = ["  ".join(c.ljust(w) for c, w in zip(rows[0], widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in rows[1:]]
    return "\n".join(lines)
