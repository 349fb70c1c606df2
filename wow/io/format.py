"""What a results file holds: the layout, the units, and writing and reading its groups.

One file holds one sweep (see ``wow.io`` for the layout). Writing a group here knows nothing about
how it reaches the disk safely (``wow.io.store``) or which points a sweep runs (``wow.io.sweep``).
"""

from __future__ import annotations

import dataclasses
import datetime
import hashlib
import json
import platform
import subprocess
from pathlib import Path

import h5py
import jax
import numpy as np

from .. import devices as _devices
from ..config import Config
from ..electron import Electron
from ..lattice import Chain

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
                out[f"{f.name}.{g.name}"] = plain(w)
        else:
            out[f.name] = plain(v)
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


def plain(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating,)):
        return float(v)
    if isinstance(v, tuple):
        return [plain(x) for x in v]
    return v


def canonical(obj) -> str:
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=True)


# ------------------------------------------------------------------------------------------------
# Provenance
# ------------------------------------------------------------------------------------------------
def git_commit() -> str:
    """HEAD of the repository holding this package ('+dirty' if it has uncommitted changes), or
    'unknown' outside a git checkout."""
    root = Path(__file__).resolve().parents[2]
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
    from .. import __version__

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


def now_utc() -> str:
    return datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


# ------------------------------------------------------------------------------------------------
# Writing
# ------------------------------------------------------------------------------------------------
def write_dataset(group, name, value, unit="", doc="", **kw):
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


def write_config(group, cfg: Config):
    for k, v in config_to_flat(cfg).items():
        unit, doc = CONFIG_UNITS.get(k, ("", "see wow.Config"))
        if k == "electron.bond_defects":
            v = np.asarray(v, float).reshape(-1, 2)
        write_dataset(group, k, v, unit, doc)


def write_root(f, experiment, description, identity, inputs, prov, command):
    f.attrs["format"] = FORMAT
    f.attrs["format_version"] = FORMAT_VERSION
    f.attrs["experiment"] = experiment
    f.attrs["description"] = description
    f.attrs["created_utc"] = now_utc()
    f.attrs["command"] = command
    f.attrs["seed"] = identity["seed"]
    f.attrs["n_samples"] = identity["n_samples"]
    f.attrs["n_points"] = len(identity["points"])
    f.attrs["inputs_json"] = canonical(identity)
    f.attrs["inputs_sha256"] = hashlib.sha256(canonical(identity).encode()).hexdigest()
    f.attrs["wall_s"] = 0.0
    dtypes = sorted({p["config"]["dtype"] for p in identity["points"]})
    f.attrs["dtype"] = ",".join(dtypes)
    for k, v in prov.items():
        f.attrs[k] = v
    g = f.create_group("inputs")
    for name, (value, unit, doc) in inputs.items():
        write_dataset(g, name, value, unit, doc)
    f.create_group("points")


def write_point(f, index, point, res, traj, prov, wall_s):
    """Add point ``index`` (a wow.io.Point and its run: an EnsembleResult and the trajectory frames or
    None) as /points/pNNNN of the open file ``f``."""
    g = f["points"].create_group(f"p{index:04d}")
    g.attrs["index"] = index
    g.attrs["label"] = point.label
    g.attrs["n_samples"] = res.n_samples
    g.attrs["seed"] = res.seed
    g.attrs["config_json"] = canonical(config_to_flat(point.config))
    g.attrs["values_json"] = canonical(point.identity()["values"])
    for k, v in point.values.items():
        g.attrs[f"sweep.{k}"] = "None" if v is None else plain(v)
    g.attrs["wall_s"] = wall_s
    g.attrs["compile_s"] = res.compile_s
    g.attrs["run_s"] = res.run_s
    g.attrs["finished_utc"] = now_utc()
    for k, v in prov.items():
        g.attrs[k] = v
    write_config(g.create_group("config"), point.config)
    ps = g.create_group("per_sample")
    for k, v in res.per_sample.items():
        write_dataset(ps, k, np.asarray(v), *TALLY_UNITS.get(k, ("", "")))
    st = g.create_group("stats")
    for k, (m, s) in res.stats.items():
        d = write_dataset(st, k, np.array([m, s]), *TALLY_UNITS.get(k, ("", "")))
        d.attrs["columns"] = "mean, standard error"
    co = g.create_group("coherent")
    for k, v in res.coherent.items():
        write_dataset(co, k, float(v), "", "coherent/incoherent split over samples (wow.tally.coherent_split)")
    write_dataset(g, "times", np.asarray(res.times), "fs", "frame times")
    tm, ts = g.create_group("trace_mean"), g.create_group("trace_sem")
    for k, v in res.traces.items():
        if k in ("density", "momentum"):
            continue
        v = np.asarray(v, float)
        unit, doc = TALLY_UNITS.get(k, ("", ""))
        write_dataset(tm, k, v.mean(0), unit, "mean over samples of " + doc)
        write_dataset(ts, k, v.std(0, ddof=1) / np.sqrt(v.shape[0]), unit, "standard error of the mean")
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
            write_dataset(tg, k, v, unit, doc, **kw)


# ------------------------------------------------------------------------------------------------
# Reading
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
