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
from ..dynamics.noise import Noise
from ..electron import Electron
from ..models.continuum import Continuum
from ..fock import QuantumLattice
from ..lattice import Chain
from ..dynamics.local import LocalModes

FORMAT = "wow-results"
#: 2: CF ``units`` attributes (1: ``unit``), points kept in NAME.parts/ until the sweep ends, and a
#: root view of the tallies with HDF5 dimension scales (xarray / h5netcdf open it with named dims).
FORMAT_VERSION = 2

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
    "electron.bond_defects": (None, "static hopping offsets, (n, 2): bond index, delta t (eV)"),
    "electron.onsite_defects": (None, "static site-energy offsets, (n, 2): site index, delta eps (eV)"),
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
    "quantum": ("", "quantum-lattice options (dynamics='quantum'; None otherwise)"),
    "transport": ("", "frames record the transport observables (MSD, D_run, <v>, E_e, E_band, edge, E_lattice)"),
    "kubo": ("", "propagate phi = v psi(0) beside psi and record the velocity correlation 'corr'"),
    "noise": ("", "dephasing noise of dynamics='noise' (None otherwise)"),
    "noise.rate": ("1/fs", "HSR dephasing rate Gamma: decay rate of site coherences"),
    "noise.kind": ("", "'binary' or 'gaussian' site phases (the same averaged dynamics)"),
    "local": ("", "local (Einstein) modes on every site (None: the chain's own lattice)"),
    "local.omega": ("1/fs", "angular frequency of each local mode"),
    "local.mass": ("amu", "mass of each local mode"),
    "local.g": ("eV/angstrom", "Holstein coupling of each mode: eps_n = sum_m g_m q_mn"),
    "local.alpha": ("eV/angstrom", "Peierls coupling of each mode: t_b = t0 - sum_m alpha_m (q_m,n+1 - q_mn)"),
    "local.statistics": ("", "thermal sampler of each mode (None: the run's statistics)"),
    "save_amplitudes": ("", "record psi_n (complex) per frame"),
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
    "E_lattice": ("eV", "internal lattice energy sum p^2/2M + K/2 sum b^2 (local modes: sum M/2 (v^2 + w^2 q^2))"),
    "dx": (ANG, "<x - x0>, x0 the packet's initial centre (minimum image on the ring)"),
    "msd": ("angstrom^2", "<(x - x0)^2>, the mean-square displacement about the initial centre"),
    "D_run": ("angstrom^2/fs", "Re<(x - x0) v> = (1/2) d msd/dt, the running diffusion coefficient"),
    "v_mean": ("angstrom/fs", "<v>, v = (i/hbar)[H, x]"),
    "E_e": ("eV", "<H_e> at the frame's lattice (interaction included)"),
    "edge": ("", "largest density on the sites farthest from x0 (open: the ends; ring: the antipode)"),
    "corr": ("angstrom^2/fs^2", "Re<psi0|v(t) v(0)|psi0>, the velocity correlation (kubo)"),
    "dE_lat": ("eV", "lattice energy change"),
    "noise_key": ("", "the sample's noise PRNG key (dynamics='noise')"),
    "sign_flips": ("", "bond*steps whose hopping had the opposite sign of t0 + dt_b (the lattice looked at every "
                   "k steps, wow.sanity.watch_every, each look counting for k)"),
    "min_bond": (ANG, "smallest bond stretch u_n+1 - u_n seen during the run"),
    "crossed": ("", "neighbouring atoms passed each other (min_bond < -a)"),
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


def _fields(cls) -> set:
    return {f.name for f in dataclasses.fields(cls)}


def config_from_flat(flat: dict) -> Config:
    """Inverse of config_to_flat."""
    nested = {"chain": Chain, "electron": Electron, "noise": Noise, "local": LocalModes, "quantum": QuantumLattice}
    top, sub = {}, {"chain": {}, "electron": {}}
    for k, v in flat.items():
        head, _, tail = k.partition(".")
        if tail:
            if tail == "bond_defects":
                v = tuple((int(b), float(d)) for b, d in v)
            elif isinstance(v, list):  # JSON lists back to the configs' (hashable) tuples
                v = tuple(tuple(x) if isinstance(x, list) else x for x in v)
            sub.setdefault(head, {})[tail] = v
        else:
            top[k] = v
    if set(sub["electron"]) - _fields(Electron) and set(sub["electron"]) <= _fields(Continuum):
        nested["electron"] = Continuum  # the density-density electron (its fields name it)
    for head, given in sub.items():
        cls = nested.get(head)
        unknown = set(given) - {f.name for f in dataclasses.fields(cls)} if cls else set(given)
        if unknown:
            raise ResultsError(f"inputs {sorted(head + '.' + u for u in unknown)} are not wow.Config fields of this "
                               f"version of wow (the file was written by another version)")
    unknown = set(top) - {f.name for f in dataclasses.fields(Config)}
    if unknown:
        raise ResultsError(f"inputs {sorted(unknown)} are not wow.Config fields of this "
                           f"version of wow (the file was written by another version)")
    top.update({head: nested[head](**given) for head, given in sub.items()})
    return Config(**top)


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
    """A dataset with its CF ``units`` attribute ('1' when dimensionless) and a one-line ``doc``."""
    if value is None:
        value = "None"
    if isinstance(value, str):
        d = group.create_dataset(name, data=value, dtype=h5py.string_dtype())
    else:
        d = group.create_dataset(name, data=np.asarray(value), **kw)
    if unit is not None:
        d.attrs["units"] = unit or "1"
    if doc:
        d.attrs["doc"] = doc
    return d


def units_of(obj) -> str:
    """The unit of a dataset ('' when dimensionless), from a v2 ``units`` or a v1 ``unit`` attribute."""
    u = obj.attrs.get("units", obj.attrs.get("unit", ""))
    u = u.decode() if isinstance(u, bytes) else str(u)
    return "" if u == "1" else u


def write_config(group, cfg: Config):
    for k, v in config_to_flat(cfg).items():
        unit, doc = CONFIG_UNITS.get(k, ("", "see wow.Config"))
        if k in ("electron.bond_defects", "electron.onsite_defects"):
            v = np.asarray(v, float).reshape(-1, 2)
        write_dataset(group, k, v, unit, doc)


def identity_sha(identity: dict) -> str:
    """sha256 of a sweep's identity (wow.io.sweep_identity) in canonical JSON."""
    return hashlib.sha256(canonical(identity).encode()).hexdigest()


def write_root(f, experiment, description, identity, inputs, prov, command, extras=None):
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
    f.attrs["inputs_sha256"] = identity_sha(identity)
    f.attrs["wall_s"] = 0.0
    dtypes = sorted({p["config"]["dtype"] for p in identity["points"] if p["config"]})
    f.attrs["dtype"] = ",".join(dtypes)
    for k, v in prov.items():
        f.attrs[k] = v
    g = f.create_group("inputs")
    for name, (value, unit, doc) in inputs.items():
        write_dataset(g, name, value, unit, doc)
    if extras:
        g = f.create_group("extras")
        for name, (value, unit, doc) in extras.items():
            write_dataset(g, name, value, unit, doc)
    f.create_group("points")


def write_point(f, index, point, res, traj, prov, wall_s, warnings=()):
    """Add point ``index`` (a wow.io.Point and its run: an EnsembleResult and the trajectory frames or
    None) as /points/pNNNN of the open file ``f``."""
    g = f["points"].create_group(f"p{index:04d}")
    g.attrs["index"] = index
    g.attrs["label"] = point.label
    g.attrs["n_samples"] = res.n_samples
    g.attrs["seed"] = res.seed
    ident = point.identity()
    g.attrs["config_json"] = canonical(ident["config"])
    g.attrs["values_json"] = canonical(ident["values"])
    if ident.get("options"):
        g.attrs["options_json"] = canonical(ident["options"])
    for k, v in point.values.items():
        g.attrs[f"sweep.{k}"] = "None" if v is None else plain(v)
    g.attrs["wall_s"] = wall_s
    g.attrs["compile_s"] = res.compile_s
    g.attrs["run_s"] = res.run_s
    g.attrs["finished_utc"] = now_utc()
    if warnings:
        g.attrs["warnings"] = canonical(list(warnings))
    for k, v in prov.items():
        g.attrs[k] = v
    for k, v in (getattr(res, "attrs", None) or {}).items():  # what a custom runner adds (JSON-able)
        g.attrs[k] = v if isinstance(v, (str, int, float)) else canonical(v)
    if point.config is not None:
        write_config(g.create_group("config"), point.config)
    units = {**TALLY_UNITS, **(getattr(res, "units", None) or {})}  # a custom runner names its own
    layout = {}

    def put(sub, k, value, unit, doc):
        d = write_dataset(sub, k, value, unit, doc)
        name = sub.name.rsplit("/", 1)[1]
        entry = [list(d.shape), d.dtype.str]
        if name in ("stats", "coherent"):  # a few numbers: the view holds them as plain arrays
            entry.append(np.asarray(value, float).tolist())
        layout.setdefault(name, {})[k] = entry
        return d

    ps = g.create_group("per_sample")
    for k, v in res.per_sample.items():
        put(ps, k, np.asarray(v), *units.get(k, ("", "")))
    st = g.create_group("stats")
    for k, (m, s) in res.stats.items():
        d = put(st, k, np.array([m, s]), *units.get(k, ("", "")))
        d.attrs["columns"] = "mean, standard error"
    co = g.create_group("coherent")
    for k, v in (getattr(res, "coherent", None) or {}).items():
        put(co, k, float(v), "", "coherent/incoherent split over samples (wow.tally.coherent_split)")
    write_dataset(g, "times", np.asarray(res.times), "fs", "frame times")
    tm, ts = g.create_group("trace_mean"), g.create_group("trace_sem")
    for k, v in res.traces.items():
        if k in ("density", "momentum"):
            continue
        v = np.asarray(v, float)
        unit, doc = units.get(k, ("", ""))
        put(tm, k, v.mean(0), unit, "mean over samples of " + doc)
        put(ts, k, v.std(0, ddof=1) / np.sqrt(v.shape[0]), unit, "standard error of the mean")
    g.attrs["layout_json"] = canonical(layout)  # what write_view needs, without opening each dataset
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
# Named dimensions: the sweep as a grid (shared by the file's root view and wow.io.load)
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass
class Grid:
    """How the points of a sweep lie on named dimensions. ``dims``: [(name, coordinate values)];
    ``where``: each point's index tuple into them; ``coords``: coordinates that are not dimensions
    {name: (dims, values)} (the labels, the single-valued axes, and for an irregular sweep every
    axis over the 'point' dimension)."""

    dims: list
    where: list
    coords: dict

    @property
    def shape(self) -> tuple:
        return tuple(len(v) for _, v in self.dims)

    @property
    def names(self) -> tuple:
        return tuple(n for n, _ in self.dims)


def _kind(v):
    if isinstance(v, bool):
        return "bool"
    if isinstance(v, (int, float, np.integer, np.floating)):
        return "number"
    return "str" if isinstance(v, str) else "other"


def sweep_grid(values: list[dict], labels: list[str]) -> Grid:
    """The named dimensions of a sweep from its points' coordinates (Point.values). When every
    combination of the axes' values occurs exactly once, each axis with more than one value is a
    dimension (numbers ascending, other values in sweep order) and the single-valued axes are scalar
    coordinates; otherwise (a sweep that is not a full grid, None values, mixed types) the points lie
    along one dimension 'point' and every axis is a coordinate over it."""
    keys = list(dict.fromkeys(k for v in values for k in v))
    regular = all(set(v) == set(keys) for v in values)
    uniq = {}
    for k in keys:
        col = [v.get(k) for v in values]
        kinds = {_kind(x) for x in col}
        if len(kinds) != 1 or kinds & {"other"}:
            regular = False
        u = list(dict.fromkeys(col if kinds != {"number"} else sorted(set(col))))
        uniq[k] = u
    axes = [k for k in keys if len(uniq.get(k, [])) > 1]
    coords = {}
    if regular:
        where = [tuple(uniq[k].index(v[k]) for k in axes) for v in values]
        if len(set(where)) == len(values) and len(values) == int(np.prod([len(uniq[k]) for k in axes])):
            shape = tuple(len(uniq[k]) for k in axes)
            lab = np.full(shape, "", dtype=object)
            for w, text in zip(where, labels):
                lab[w] = text
            coords["label"] = (tuple(axes), lab)
            for k in keys:
                if k not in axes:
                    coords[k] = ((), values[0][k])
            return Grid([(k, uniq[k]) for k in axes], where, coords)
    n = len(values)
    coords["label"] = (("point",), np.array(labels, dtype=object))
    for k in keys:
        col = [v.get(k) for v in values]
        if all(_kind(x) == "number" or x is None for x in col):
            coords[k] = (("point",), np.array([np.nan if x is None else x for x in col], float))
        else:
            coords[k] = (("point",), np.array(["None" if x is None else str(x) for x in col], dtype=object))
    return Grid([("point", list(range(n)))], [(i,) for i in range(n)], coords)


def axis_units(name: str) -> str:
    """The unit of a sweep axis named like a Config field ('temperature' -> K, 'sigma' -> angstrom)."""
    for field, (unit, _) in CONFIG_UNITS.items():
        if field == name or field.endswith("." + name):
            return unit or ""
    return ""


def _scale(f, name, values, units=""):
    vals = list(values)
    if vals and all(isinstance(x, str) for x in vals):
        d = f.create_dataset(name, data=np.array(vals, dtype=object), dtype=h5py.string_dtype())
    else:
        d = f.create_dataset(name, data=np.asarray(vals))
    d.make_scale(name)
    if units:
        d.attrs["units"] = units
    return d


def _virtual(f, name, sources, shape, inner, dtype, scales, attrs):
    """A virtual dataset of shape ``shape + inner`` whose slot at each position is one point's
    dataset (or one element of it): no data is copied."""
    lay = h5py.VirtualLayout(shape=shape + inner, dtype=dtype)
    for pos, (group_path, element) in sources.items():
        vs = h5py.VirtualSource(".", group_path, shape=inner if element is None else (2,))
        lay[pos] = vs if element is None else vs[element]
    d = f.create_virtual_dataset(name, lay, fillvalue=np.nan if np.dtype(dtype).kind in "fc" else 0)
    for i, sc in enumerate(scales):
        d.dims[i].attach_scale(sc)
    for k, v in attrs.items():
        d.attrs[k] = v
    return d


VIEW_GROUPS = ("per_sample", "stats", "coherent", "trace_mean", "trace_sem")


def _layout(g) -> dict:
    """{group: {dataset: [shape, dtype]}} of a point's tallies: what the root view needs to map them
    without opening every dataset again (written with the point as ``layout_json``)."""
    return {sub: {k: [list(d.shape), d.dtype.str] for k, d in g[sub].items()} for sub in VIEW_GROUPS if sub in g}


def write_view(f):
    """At the root of the open file: every point's tallies as arrays over named dimensions (the
    sweep's axes, 'sample', 'time') with HDF5 dimension scales and CF units, so that
    ``xarray.open_dataset(path, engine="h5netcdf")`` sees the sweep with named dimensions. The arrays
    are HDF5 virtual datasets mapping onto the points' own datasets: nothing is copied. Also sets the
    root's wall_s (sum over points). Variables: per-sample tallies NAME (..., sample), statistics
    NAME_mean and NAME_sem, the coherent split, traces NAME_trace and NAME_trace_sem (..., time)."""
    for name in [k for k in f if k not in ("inputs", "points", "extras")]:  # a view of an earlier merge
        del f[name]
    groups = sorted(f["points"].values(), key=lambda g: int(g.attrs["index"]))
    f.attrs["wall_s"] = float(sum(float(g.attrs.get("wall_s", 0.0)) for g in groups))
    f.attrs["view_points"] = len(groups)  # the view is up to date while this equals the points held
    if not groups:
        return
    values = [json.loads(g.attrs["values_json"]) for g in groups]
    grid = sweep_grid(values, [str(g.attrs["label"]) for g in groups])
    paths = [g.name for g in groups]
    layouts = [json.loads(g.attrs["layout_json"]) if "layout_json" in g.attrs else _layout(g) for g in groups]
    first = groups[0]
    taken = {"inputs", "points", "extras"}
    scales = []
    for name, vals in grid.dims:
        scales.append(_scale(f, name, vals, axis_units(name)))
        taken.add(name)
    coord_names = []
    for name, (dims, vals) in grid.coords.items():
        if name in taken:
            continue
        vals = np.asarray(vals)
        if vals.dtype.kind in "OUS":
            d = f.create_dataset(name, data=vals.astype(str).astype(object), dtype=h5py.string_dtype())
        else:
            d = f.create_dataset(name, data=vals)
        for i, dim in enumerate(dims):
            d.dims[i].attach_scale(scales[grid.names.index(dim)])
        if axis_units(name):
            d.attrs["units"] = axis_units(name)
        taken.add(name)
        coord_names.append(name)
    coord_attr = " ".join(coord_names)
    n_s = next((shape[0] for shape, _ in layouts[0].get("per_sample", {}).values()), 0)
    times = [np.asarray(g["times"][()]) for g in groups]
    same_t = all(t.shape == times[0].shape and np.array_equal(t, times[0]) for t in times)
    if n_s:
        scales_s = _scale(f, "sample", range(n_s))
        taken.add("sample")
    if same_t:
        t_scale = _scale(f, "time", times[0], "fs")
        taken.add("time")
    else:  # frames at different times per point: 'frame' dimension, time as a variable
        F = max(len(t) for t in times)
        t_scale = _scale(f, "frame", range(F))
        _virtual(f, "time", {w: (f"{p}/times", None) for w, p, t in zip(grid.where, paths, times) if t.shape == (F,)},
                 grid.shape, (F,), float, scales + [t_scale], {"units": "fs", "coordinates": coord_attr})
        taken |= {"frame", "time"}

    def add(name, sub, key, inner_dims, element=None, extra=()):
        if name in taken:
            name = f"{sub}_{name}"
        found = {tuple(lay.get(sub, {}).get(key, [None, None])[0] or ()) if key in lay.get(sub, {}) else None
                 for lay in layouts}
        dtypes = {lay[sub][key][1] for lay in layouts if key in lay.get(sub, {})}
        if len(found) != 1 or None in found or name in taken or len(dtypes) != 1:
            return  # absent from some point, or of another shape there: read it per point instead
        dtype = np.dtype(dtypes.pop())
        if dtype.kind not in "fiub":
            return
        inner = () if element is not None else found.pop()
        sc = list(scales) + list(inner_dims)
        for j in range(len(inner) - len(inner_dims)):  # e.g. occupations per quantum mode
            dname = f"{name}_dim{len(inner_dims) + j}"
            sc.append(_scale(f, dname, range(inner[len(inner_dims) + j])))
            taken.add(dname)
        src = first[sub][key]
        attrs = {"units": units_of(src) or "1", "coordinates": coord_attr}
        doc = src.attrs.get("doc", "")
        if doc:
            attrs["long_name"] = doc + extra[0] if extra else doc
        if all(len(lay[sub][key]) > 2 for lay in layouts):  # values recorded with the points: a small copy
            vals = np.full(grid.shape, np.nan)
            for w, lay in zip(grid.where, layouts):
                v = lay[sub][key][2]
                vals[w] = v[element] if element is not None else v
            d = f.create_dataset(name, data=vals)
            for i, scale in enumerate(sc):
                d.dims[i].attach_scale(scale)
            for k, v in attrs.items():
                d.attrs[k] = v
        else:
            _virtual(f, name, {w: (f"{p}/{sub}/{key}", element) for w, p in zip(grid.where, paths)}, grid.shape,
                     inner, dtype, sc, attrs)
        taken.add(name)

    lay0 = layouts[0]
    for key in lay0.get("per_sample", {}):
        add(key, "per_sample", key, [scales_s] if n_s else [])
    for key in lay0.get("stats", {}):
        add(f"{key}_mean", "stats", key, [], 0, (" (mean over samples)",))
        add(f"{key}_sem", "stats", key, [], 1, (" (standard error of the mean)",))
    for key in lay0.get("coherent", {}):
        add(key, "coherent", key, [])
    for key in lay0.get("trace_mean", {}):
        add(f"{key}_trace", "trace_mean", key, [t_scale])
        add(f"{key}_trace_sem", "trace_sem", key, [t_scale])


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


@dataclasses.dataclass(repr=False)
class PointData:
    """One point read back: label, sweep coordinates, Config (None for an experiment with its own
    model), per-sample tallies, statistics {name: (mean, sem)}, coherent split, frame times, trace
    means and errors, trajectories (or None), the group's attributes, and the extra inputs of a
    custom runner (``options``)."""

    index: int
    label: str
    values: dict
    config: Config | None
    per_sample: dict
    stats: dict
    coherent: dict
    times: np.ndarray
    trace_mean: dict
    trace_sem: dict
    trajectories: dict | None
    attrs: dict
    options: dict = dataclasses.field(default_factory=dict)
    units: dict = dataclasses.field(default_factory=dict)  # of the statistics, as the file gives them

    def __repr__(self):
        n = next((len(v) for v in self.per_sample.values()), 0)
        first = [k for k in ("P_b", "dE_b", "dE_cm") if k in self.stats]
        keys = (first + [k for k in self.stats if k not in first])[:3]
        shown = ", ".join(f"{k} = {self.stats[k][0]:.4g} ± {self.stats[k][1]:.2g}"
                          f"{' ' + self.units[k] if self.units.get(k) else ''}" for k in keys)
        return (f"PointData(p{self.index:04d} {self.label!r}: {n} samples, {len(self.times)} frames, "
                f"{len(self.stats)} statistics: {shown}{', ...' if len(self.stats) > 3 else ''}"
                f"{'; trajectories' if self.trajectories else ''})")


@dataclasses.dataclass(repr=False)
class Results:
    """A results file read into memory: root attributes, the experiment's inputs
    {name: (value, unit)}, the finished points in sweep order (those of a sweep still running,
    or killed, included), and the experiment's analytic results {name: (value, unit)} (``extras``).
    ``print`` shows a short summary; ``wow.io.load`` gives an xarray view."""

    path: Path
    attrs: dict
    inputs: dict
    points: list
    extras: dict = dataclasses.field(default_factory=dict)

    @property
    def experiment(self) -> str:
        return str(self.attrs["experiment"])

    @property
    def n_points_planned(self) -> int:
        return int(self.attrs["n_points"])

    def __repr__(self):
        a = self.attrs
        lines = [f"Results({self.path}): experiment {a.get('experiment')!r}, {len(self.points)} of "
                 f"{a.get('n_points')} points, {a.get('n_samples')} samples per point, seed {a.get('seed')}, "
                 f"{a.get('dtype')}, wow {a.get('wow_version')} (git {str(a.get('git_commit'))[:12]})"]
        if self.inputs:
            lines.append("  inputs: " + "; ".join(
                f"{k} = {_short(v)}{' ' + u if u else ''}" for k, (v, u) in self.inputs.items()))
        for p in self.points[:4]:
            lines.append(f"  {p!r}")
        if len(self.points) > 4:
            lines.append(f"  ... {len(self.points) - 4} more points (wow.io.load(path) for all of them as xarray)")
        return "\n".join(lines)

    __str__ = __repr__


def _short(v):
    v = v.tolist() if hasattr(v, "tolist") else v
    text = str(v)
    return text if len(text) <= 60 else text[:57] + "..."


def _read(d):
    v = d[()]
    if isinstance(v, bytes):
        v = v.decode()
    return v


def _group(g) -> dict:
    return {k: _read(d) for k, d in g.items()}


def _attrs(obj) -> dict:
    return {k: (v.decode() if isinstance(v, bytes) else v) for k, v in obj.attrs.items()}


def _point(g, trajectories: bool) -> PointData:
    a = _attrs(g)
    tr = _group(g["trajectories"]) if trajectories and "trajectories" in g else None
    config = json.loads(a["config_json"])
    return PointData(
        index=int(a["index"]), label=str(a["label"]), values=json.loads(a["values_json"]),
        config=None if config is None else config_from_flat(config),
        per_sample=_group(g["per_sample"]),
        stats={k: (float(v[0]), float(v[1])) for k, v in _group(g["stats"]).items()},
        coherent={k: float(v) for k, v in _group(g["coherent"]).items()},
        times=np.asarray(g["times"][()]), trace_mean=_group(g["trace_mean"]),
        trace_sem=_group(g["trace_sem"]), trajectories=tr, attrs=a,
        options=json.loads(a.get("options_json", "{}")), units={k: units_of(d) for k, d in g["stats"].items()})


def read_results(path, trajectories: bool = True) -> Results:
    """Read a results file (ResultsError if it is not one), with the points of a sweep that is still
    running or was killed (kept beside it in NAME.parts/ until the sweep ends)."""
    from .store import parts

    path = Path(path)
    with check_file(path) as f:
        try:
            inputs = {k: (_read(d), units_of(d)) for k, d in f["inputs"].items()}
            extras = {k: (_read(d), units_of(d)) for k, d in f["extras"].items()} if "extras" in f else {}
            pts = {int(g.attrs["index"]): _point(g, trajectories) for g in f["points"].values()}
            attrs = _attrs(f)
        except (KeyError, ValueError, TypeError) as e:
            raise ResultsError(f"{path}: a wow results file with a damaged or unexpected layout ({e!r})") from None
    found = {i: p for i, p in parts(path, attrs.get("inputs_sha256")).items() if i not in pts}
    for i, part in found.items():
        try:
            with h5py.File(part, "r") as f:
                pts[i] = _point(f[f"points/p{i:04d}"], trajectories)
        except (OSError, KeyError, ValueError, TypeError) as e:
            raise ResultsError(f"{part}: a damaged part of {path} ({e!r}); delete it to run that point again") from None
    if found:  # the sum over points is written to the file when the sweep is merged
        attrs["wall_s"] = float(sum(float(p.attrs.get("wall_s", 0.0)) for p in pts.values()))
    return Results(path, attrs, inputs, [pts[i] for i in sorted(pts)], extras)
