"""Sweeps: points, the sweep's identity, and running a sweep into a results file with resume.

Each finished point is written on its own (``wow.io.store.write_part``: O(point), atomic), and the
file is completed once, when the last point is done (``store.merge``): the points, then the root view
with named dimensions (``wow.io.format.write_view``)."""

from __future__ import annotations

import dataclasses
import json
import os
import sys
import time
import warnings
from pathlib import Path

import numpy as np

from .. import devices as _devices
from ..config import Config, ConfigError, validate
from .. import sanity
from ..ensemble import DEFAULT_MEMORY, bytes_per_sample, run as run_ensemble
from .format import (FORMAT_VERSION, ResultsError, canonical, check_file, config_to_flat, identity_sha, plain,
                     provenance, write_point, write_root, write_view)
from ..progress import sweep_bar
from .frames import trajectory_frames
from .store import (atomic_update, exclusive, merge, parts, parts_dir, remove_parts, remove_stale_tmp, verify_point,
                    write_part)


#: wow's own source folder: warnings raised from it while a point runs are kept with the point.
PACKAGE = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Point:
    """One point of a sweep: a label, its coordinates on the sweep axes (e.g. {'temperature': 300,
    'N': 256}), the Config, and how many of its samples to save frame by frame (0: none).

    An experiment that runs its own model (a ``runner`` given to ``run_sweep``) may leave ``config``
    None and put the inputs that change its numbers in ``options`` (JSON-able; part of the identity)."""

    label: str
    values: dict
    config: Config | None
    trajectories: int = 0
    options: dict = dataclasses.field(default_factory=dict)

    def identity(self) -> dict:
        out = {"label": self.label, "values": {k: plain(v) for k, v in self.values.items()},
               "config": None if self.config is None else config_to_flat(self.config),
               "trajectories": int(self.trajectories)}
        if self.options:
            out["options"] = json.loads(canonical(self.options))
        return out


def sweep_identity(experiment: str, points, n_samples: int, seed: int, inputs: dict) -> dict:
    """What makes two sweeps the same: every input that changes a number in the file."""
    return json.loads(canonical({
        "format_version": FORMAT_VERSION, "experiment": experiment, "n_samples": int(n_samples),
        "seed": int(seed), "inputs": {k: plain(v[0]) for k, v in inputs.items()},
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


def _view_complete(path: Path, n_points: int) -> bool:
    with check_file(path) as f:
        return int(f.attrs.get("view_points", -1)) == n_points == len(f["points"])


def _check_int(name, value, low, high=None):
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < low or (
            high is not None and value > high):
        rng = f"[{low}, {high}]" if high is not None else f">= {low}"
        raise ConfigError(f"{name}={value!r} must be an integer {rng}")


def ensemble_runner(point: Point, n_samples: int, seed: int, *, devices=None, chunk_size=None, progress=None,
                    allow_crossing: bool = False):
    """The default way to run a point: ``wow.run`` of its Config, and when the point asks for them its
    first samples frame by frame. Returns (result, trajectory frames or None)."""
    res = run_ensemble(point.config, n_samples, seed, chunk_size=chunk_size, devices=devices, progress=progress,
                       allow_crossing=allow_crossing)
    traj = None
    if point.trajectories:
        if point.trajectories == n_samples and point.config.save_density:
            tres = res
        else:  # samples 0..n-1 of the same seed: keys are a prefix of the full run's
            tres = run_ensemble(dataclasses.replace(point.config, save_density=True),
                                max(2, point.trajectories), seed, devices=devices, allow_crossing=allow_crossing)
        traj = trajectory_frames(tres, point.trajectories)
    return res, traj


def run_sweep(path, experiment: str, points, n_samples: int, seed: int = 0, *, inputs=None,
              description: str = "", overwrite: bool = False, devices=None, chunk_size=None,
              progress: bool | None = None, command: str | None = None, log=None, runner=None,
              extras=None, allow_crossing: bool = False) -> Path:
    """Run every point of a sweep into the results file ``path``, resuming a file made with the
    same inputs (points already there are skipped).

    points: a list of Point; inputs: the experiment's own inputs {name: (value, unit, doc)} for
    /inputs (part of the identity); overwrite: start over when ``path`` holds another sweep or is not
    a results file; progress: a bar over the points and one over the samples of a long point (None:
    only when stderr is a terminal; False: none); log: a callable receiving one line per event (None:
    silent; ``wow.progress.echo`` prints them above the bars); warnings raised while a point runs are
    logged and kept in the point's ``warnings`` attribute; runner: how to run one point,
    ``runner(point, n_samples, seed, devices=, chunk_size=, progress=) -> (result, trajectories or None)``
    (default ``ensemble_runner``; a result needs per_sample, stats, times, traces, n_samples, seed,
    compile_s, run_s, and may have coherent and attrs; with allow_crossing=True the runner is also given
    ``allow_crossing=True``, which it passes to ``wow.run``: a point whose atoms passed each other is then
    kept with a warning instead of refused); extras: results the experiment computes from its
    inputs alone (analytic tables) {name: (value, unit, doc)}, written to /extras (a sweep of no points
    may hold only these). Every input is checked before anything is run or written; each point is
    written atomically as soon as it finishes. Returns the path."""
    path = Path(path)
    inputs = dict(inputs or {})
    points = list(points)
    runner = ensemble_runner if runner is None else runner
    extras = dict(extras or {})
    if not points and not extras:
        raise ConfigError("points=[]: a sweep needs at least one point (or extras)")
    if not isinstance(allow_crossing, (bool, np.bool_)):
        raise ConfigError(f"allow_crossing={allow_crossing!r} must be True or False")
    _check_int("n_samples", n_samples, 2)
    _check_int("seed", seed, 0, 2**63 - 1)
    if chunk_size is not None:
        _check_int("chunk_size", chunk_size, 1)
    labels = [p.label for p in points]
    if len(set(labels)) != len(labels):
        raise ConfigError("points: labels must be distinct")
    for p in points:
        if p.config is None and runner is ensemble_runner:
            raise ConfigError(f"point {p.label!r}: config=None needs a runner")
        try:
            if p.config is not None:
                validate(p.config)
        except ConfigError as e:
            raise ConfigError(f"point {p.label!r}: {e}") from None
        _check_int(f"point {p.label!r} trajectories", p.trajectories, 0, n_samples)
        if p.config is not None and runner is ensemble_runner:
            try:
                sanity.check_sizes(p.config, n_samples, DEFAULT_MEMORY, bytes_per_sample(p.config), False)
            except ConfigError as e:
                raise ConfigError(f"point {p.label!r}: {e}") from None
            if p.trajectories:  # ensemble_runner's frame-by-frame run of the first samples, densities saved
                traj = dataclasses.replace(p.config, save_density=True)
                try:
                    sanity.check_sizes(traj, max(2, p.trajectories), DEFAULT_MEMORY, bytes_per_sample(traj), False)
                except ConfigError as e:
                    raise ConfigError(f"point {p.label!r} trajectories={p.trajectories} (recorded frame by frame, "
                                      f"with densities): {e}") from None
    _devices.resolve(devices)
    if path.is_dir():
        raise ResultsError(f"--out {path} is a directory: give a file name such as {path / (experiment + '.h5')}")
    if not path.parent.exists():
        raise ResultsError(f"--out {path}: directory {path.parent} does not exist")
    if not os.access(path.parent, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.R_OK)):
        raise ResultsError(f"--out {path}: cannot write there (no permission on {path.parent})")
    with exclusive(path):
        return _locked_sweep(path, experiment, points, n_samples, seed, inputs, description, overwrite, devices,
                             chunk_size, progress, command, log, runner, extras, bool(allow_crossing))


def _locked_sweep(path, experiment, points, n_samples, seed, inputs, description, overwrite, devices, chunk_size,
                  progress, command, log, runner, extras, allow_crossing):
    identity = sweep_identity(experiment, points, n_samples, seed, inputs)
    sha = identity_sha(identity)

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
                    damaged = sorted(int(g.attrs["index"]) for g in f["points"].values() if not verify_point(g))
                    if damaged:
                        warnings.warn(f"{path}: point(s) {damaged} do not match their checksums (damaged after they "
                                      "were written): they are run again", stacklevel=2)
                        done -= set(damaged)
        except ResultsError:
            if not overwrite:
                raise
    if not fresh:
        done |= set(parts(path, sha))
    # every process has read the file's state before process 0 changes it
    _devices.barrier("wow.io.run_sweep: results file read")
    if _devices.is_writer():
        remove_stale_tmp(path)
    prov = provenance(devices)
    say = log or (lambda s: None)
    if fresh:
        cmd = command if command is not None else " ".join(sys.argv)
        atomic_update(path, lambda f: write_root(f, experiment, description, identity, inputs, prov, cmd, extras),
                      fresh=True)
        remove_parts(path)  # of an earlier sweep at this path (its parts carry another identity)
        say(f"{path}: new sweep of {len(points)} points")
    elif done:
        say(f"{path}: resuming, {len(done)} of {len(points)} points already done")

    bar = sweep_bar(len(points), len(done), experiment, progress)
    try:
        for i, p in enumerate(points):
            if i in done:
                continue
            bar.set_postfix_str(p.label)
            t0 = time.perf_counter()
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                more = {"allow_crossing": True} if allow_crossing else {}  # runners written before it need not know it
                res, traj = runner(p, n_samples, seed, devices=devices, chunk_size=chunk_size,
                                   progress=False if progress is False else None, **more)
            wall = time.perf_counter() - t0
            ours = [w for w in caught if Path(w.filename).resolve().is_relative_to(PACKAGE)]
            for w in caught:  # other libraries' warnings go on as usual
                if w not in ours:
                    warnings.warn_explicit(w.message, w.category, w.filename, w.lineno)
            notes = list(dict.fromkeys(f"{w.category.__name__}: {w.message}" for w in ours))
            for note in notes:
                say(f"  warning, {p.label}: {note}")
            if log is None:  # nobody listens to the log: keep the warnings visible
                for w in ours:
                    warnings.warn(f"{p.label}: {w.message}", w.category, stacklevel=2)
            write_part(path, i, sha, lambda f: write_point(f, i, p, res, traj, prov, wall, notes))
            bar.update(1)
            key = "P_b" if "P_b" in res.stats else next(iter(res.stats), None)
            shown = f"{key} = {res.stats[key][0]:.4g} ± {res.stats[key][1]:.2g}" if key else "done"
            say(f"  [{i + 1}/{len(points)}] {p.label}: {shown}  ({wall:.1f} s)")
    finally:
        bar.close()
    if _devices.is_writer() and (parts_dir(path).is_dir() or not _view_complete(path, len(points))):
        merge(path, sha, write_view)  # all points done: one file again (O(file), once)
    _devices.barrier("wow.io.run_sweep: results file written")  # others may now read it
    return path
