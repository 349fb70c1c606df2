"""A results file as an ``xarray.Dataset`` with named dimensions (xarray is an optional extra:
``pip install "wow[xarray]"``).

    ds = wow.io.load("results/backscattering.h5")
    ds.P_b.sel(temperature=300, statistics="quantum")      # (N, dynamics, sample)
    ds[["P_b", "dE_b"]].to_dataframe()                    # one row per point and sample

Dimensions: the sweep's axes (``N``, ``temperature``, ``statistics``, ``dynamics``, ...; a sweep
that is not a full grid lies along ``point``), ``sample`` and ``time`` (``frame`` when the points
record at different times). Variables: the per-sample tallies (``P_b``: axes x sample), their
statistics (``P_b_mean``, ``P_b_sem``; ``dE_b_mean`` is the P_b-weighted mean), the coherent split
(``P_coh``, ``P_coh_sem``, ...), the traces (``P_R_trace``, ``P_R_trace_sem``: axes x time). Every
variable carries CF ``units`` ('1' when dimensionless) and a ``long_name``; Config inputs are
coordinates (scalar when shared by every point); the file's provenance is in ``attrs``. Works on a
sweep that is still running or was killed (the points finished so far; the others are NaN).
"""

from __future__ import annotations

import json
import math

import numpy as np

from .format import CONFIG_UNITS, TALLY_UNITS, axis_units, config_to_flat, read_results, sweep_grid


def _xarray():
    try:
        import xarray as xr
    except ImportError:
        raise ImportError('wow.io.load needs xarray: pip install "wow[xarray]" (or pip install xarray)') from None
    return xr


def _attrs(unit, doc):
    out = {"units": unit or "1"}
    if doc:
        out["long_name"] = doc
    return out


def load(path, trajectories: bool = False):
    """The results file ``path`` as an xarray.Dataset (see the module's docstring). With
    ``trajectories=True`` the saved frames are added too (dims ``traj_sample``, ``time``, ``x`` or ``k``)
    when every point saved the same number of samples and frames."""
    xr = _xarray()
    res = read_results(path, trajectories=trajectories)
    attrs = {k: v for k, v in res.attrs.items() if isinstance(v, (str, int, float, np.integer, np.floating))}
    attrs["source"] = str(res.path)
    pts = res.points
    if not pts:
        return xr.Dataset(attrs=attrs)
    planned = json.loads(res.attrs["inputs_json"])["points"]  # the whole sweep, finished or not
    grid = sweep_grid([q["values"] for q in planned], [q["label"] for q in planned])
    shape, names = grid.shape, grid.names
    where = [grid.where[p.index] for p in pts]
    coords = {name: (name, np.asarray(vals, dtype=object if isinstance(vals[0], str) else None),
                     {"units": axis_units(name)} if axis_units(name) else {}) for name, vals in grid.dims}
    for name, (dims, vals) in grid.coords.items():
        coords[name] = (dims, np.asarray(vals) if np.ndim(vals) else vals,
                        {"units": axis_units(name)} if axis_units(name) else {})

    def stack(get, inner=()):
        """One array over the grid: get(point) -> array of shape ``inner`` (NaN where a point is missing)."""
        out = np.full(shape + inner, np.nan)
        for w, p in zip(where, pts):
            v = get(p)
            if v is None:
                continue
            out[w] = v
        return out

    data = {}
    n_s = {len(next(iter(p.per_sample.values()))) for p in pts if p.per_sample}
    if len(n_s) == 1:
        n_s = n_s.pop()
        coords["sample"] = ("sample", np.arange(n_s))
        for key in pts[0].per_sample:
            shapes = {np.shape(p.per_sample.get(key)) for p in pts}
            if len(shapes) != 1 or np.asarray(pts[0].per_sample[key]).dtype.kind not in "fiub":
                continue  # another shape at some point (e.g. occupations of other modes): per point only
            inner = shapes.pop()
            dims = names + ("sample",) + tuple(f"{key}_dim{j}" for j in range(1, len(inner)))
            data[key] = (dims, stack(lambda p: p.per_sample[key], inner), _attrs(*TALLY_UNITS.get(key, ("", ""))))
    for key in pts[0].stats:
        unit, doc = TALLY_UNITS.get(key, ("", ""))
        data[f"{key}_mean"] = (names, stack(lambda p: p.stats.get(key, (math.nan,))[0]),
                               _attrs(unit, (doc + " (mean over samples)") if doc else ""))
        data[f"{key}_sem"] = (names, stack(lambda p: p.stats.get(key, (0, math.nan))[1]),
                              _attrs(unit, (doc + " (standard error of the mean)") if doc else ""))
    for key in pts[0].coherent:
        name = key if key not in data else f"coherent_{key}"
        data[name] = (names, stack(lambda p: p.coherent.get(key, math.nan)),
                      _attrs("", "coherent/incoherent split over samples (wow.tally.coherent_split)"))
    times = [np.asarray(p.times) for p in pts]
    same_t = all(t.shape == times[0].shape and np.array_equal(t, times[0]) for t in times)
    tdim = "time" if same_t else "frame"
    if same_t:
        coords["time"] = ("time", times[0], {"units": "fs", "long_name": "frame times"})
    elif len({t.shape for t in times}) == 1:
        data["time"] = (names + ("frame",), stack(lambda p: p.times, times[0].shape), {"units": "fs"})
    for key in pts[0].trace_mean:
        shapes = {np.shape(p.trace_mean.get(key)) for p in pts}
        if len(shapes) != 1:
            continue
        inner = shapes.pop()
        dims = names + (tdim,) + tuple(f"{key}_trace_dim{j}" for j in range(1, len(inner)))
        unit, doc = TALLY_UNITS.get(key, ("", ""))
        data[f"{key}_trace"] = (dims, stack(lambda p: p.trace_mean[key], inner),
                                _attrs(unit, doc and "mean over samples of " + doc))
        data[f"{key}_trace_sem"] = (dims, stack(lambda p: p.trace_sem[key], inner),
                                    _attrs(unit, "standard error of the mean"))
    # Config inputs: scalar coordinates when shared, else over the sweep's dimensions
    flats = [config_to_flat(p.config) if p.config is not None else {} for p in pts]
    for key in dict.fromkeys(k for f in flats for k in f):
        if key in coords or key in data:
            continue
        vals = [f.get(key) for f in flats]
        vals = [str(v) if isinstance(v, (list, tuple, type(None))) else v for v in vals]
        unit, doc = CONFIG_UNITS.get(key, ("", ""))
        a = {"units": unit} if unit else {}
        if doc:
            a["long_name"] = doc
        if all(v == vals[0] for v in vals):
            coords[key] = ((), vals[0], a)
        else:
            arr = np.full(shape, None, dtype=object)
            for w, v in zip(where, vals):
                arr[w] = v
            if all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in vals):
                arr = arr.astype(float)
            coords[key] = (names, arr, a)
    if trajectories:
        _add_trajectories(pts, where, shape, names, data, coords)
    return xr.Dataset(data, coords=coords, attrs=attrs)


def _add_trajectories(pts, where, shape, names, data, coords):
    trs = [p.trajectories for p in pts]
    if any(t is None for t in trs):
        return
    shapes = {np.shape(t["density"]) for t in trs}
    if len(shapes) != 1:
        return
    first = trs[0]
    coords["traj_sample"] = ("traj_sample", np.asarray(first["sample_index"]))
    coords["x"] = ("x", np.asarray(first["x"]), {"units": "angstrom"})
    coords["k"] = ("k", np.asarray(first["k"]), {"units": "1/angstrom"})
    for key, v in first.items():
        v = np.asarray(v)
        if key in ("sample_index", "times", "x", "k") or v.ndim < 2:
            continue
        dims = ("traj_sample", "time" if "time" in coords else "frame")
        if v.ndim == 3:
            dims += ("k",) if key == "momentum" else ("x",)
        out = np.full(shape + v.shape, np.nan)
        for w, t in zip(where, trs):
            out[w] = t[key]
        unit, doc = TALLY_UNITS.get(key, ("", ""))
        data[f"traj_{key}"] = (names + dims, out, _attrs(unit, doc))
