"""The ``wow`` command (also ``python -m wow``).

  wow run EXPERIMENT [options]   run an experiment (options go to it; wow run EXPERIMENT --help lists them)
  wow list                       the experiments and what each answers
  wow inspect FILE               a results file's inputs, provenance and tally table
  wow plot FILE [--out DIR]      the standard figures of a results file, as PNG
  wow info                       versions, devices and precision
  wow --version
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .experiments import EXPERIMENTS


def experiments() -> dict[str, str]:
    """Experiment name -> one line on what it answers (the modules of ``wow.experiments``)."""
    return dict(EXPERIMENTS)


def _run(args, rest) -> int:
    from . import experiments as E

    try:
        module = E.load(args.experiment)
    except ValueError as e:
        print(f"wow run: error: {e}", file=sys.stderr)
        return 2
    argv, sys.argv = sys.argv, [f"wow run {args.experiment}"] + rest
    try:
        code = module.main(rest)
    except SystemExit as e:
        return e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    except KeyboardInterrupt:  # outside a sweep (which reports what it saved): before any point was written
        print(f"wow run {args.experiment}: interrupted", file=sys.stderr)
        return 130
    finally:
        sys.argv = argv
    return code if isinstance(code, int) else 0


def _list(args) -> int:
    width = max(map(len, EXPERIMENTS))
    for name, what in EXPERIMENTS.items():
        print(f"{name.ljust(width)}  {what}")
    print("run one with: wow run NAME [options]   (wow run NAME --help lists its options)")
    return 0


def _inspect(args) -> int:
    from . import io

    res = io.read_results(args.file, trajectories=False)
    a = res.attrs
    print(f"{res.path}: wow results, experiment {a.get('experiment')!r} (format {a.get('format_version')})")
    if a.get("description"):
        print(f"  {a['description']}")
    print(f"  created {a.get('created_utc')} by: {a.get('command')}")
    print(f"  wow {a.get('wow_version')} (git {a.get('git_commit')}), jax {a.get('jax_version')}, "
          f"device {a.get('device')}, dtype {a.get('dtype')}")
    print(f"  seed {a.get('seed')}, {a.get('n_samples')} samples per point, "
          f"{len(res.points)} of {res.n_points_planned} points done, wall time {float(a.get('wall_s', 0)):.1f} s")
    if res.inputs:
        print("inputs:")
        for k, (v, unit) in res.inputs.items():
            v = v.tolist() if hasattr(v, "tolist") else v
            print(f"  {k} = {v}{' ' + unit if unit else ''}")
    if res.points:
        flat = [io.config_to_flat(p.config) if p.config is not None else dict(p.options) for p in res.points]
        varying = {k for f in flat for k, v in f.items() if v != flat[0].get(k)}
        print("inputs shared by every point:")
        for k, v in flat[0].items():
            if k not in varying:
                unit = io.CONFIG_UNITS.get(k, ("", ""))[0]
                print(f"  {k} = {v}{' ' + unit if unit and v is not None else ''}")
        columns = [c for c in args.columns if any(c in p.stats for p in res.points)]
        columns = columns or list(res.points[0].stats)[:3]  # an experiment with tallies of its own
        print("tallies (mean ± standard error over samples):")
        print(io.format_table(io.summary_table(res, tuple(columns))))
        _watch_lines(res.points)
        if any(p.attrs.get("git_commit") != a.get("git_commit") for p in res.points):
            print("note: points were run by different code versions (see each point's git_commit)")
    from .io.store import damaged_points

    bad = damaged_points(res.path)
    if bad:
        print(f"DAMAGED: {len(bad)} point(s) do not match their checksums: {', '.join(bad)}; rerunning the "
              "sweep's command recomputes them", file=sys.stderr)
        return 1
    print("checksums: every stored point intact")
    return 0


def _watch_lines(points):
    """What the lattice watch counted (wow.sanity): per point, the bond·steps whose hopping changed
    sign and the samples whose atoms passed each other; one line when nothing was seen."""
    import numpy as np

    watched = [p for p in points if "sign_flips" in p.per_sample]
    if not watched:
        return
    seen = []
    for p in watched:
        flips = np.asarray(p.per_sample["sign_flips"])
        crossed = np.asarray(p.per_sample.get("crossed", np.zeros(flips.shape, bool)))
        if flips.any() or crossed.any():
            share = ""
            if p.config is not None:
                share = f" ({flips.sum() / (p.config.chain.n_bonds * p.config.n_steps * flips.size):.3g} of all)"
            seen.append(f"  {p.label}: hoppings changed sign in {int(flips.sum())} bond·steps{share}, "
                        f"{np.count_nonzero(flips)} of {flips.size} samples; atoms crossed in {int(crossed.sum())} samples")
    if not seen:
        print(f"lattice watch: no hopping changed sign and no atoms crossed ({len(watched)} points)")
        return
    print("lattice watch (bond·steps whose hopping t0 - α b changed sign; samples whose atoms crossed):")
    print("\n".join(seen))


def _plot(args) -> int:
    from . import plot

    written = plot.plot_file(args.file, args.out)
    for p in written:
        print(p)
    if not written:
        print(f"{args.file}: no standard figure fits this file (its experiment draws its own figure)")
    return 0


def _info(args) -> int:
    import platform

    import h5py
    import jax
    import numpy as np

    from . import __version__
    from .io import git_commit

    print(f"wow {__version__} (git {git_commit()}), python {platform.python_version()}")
    print(f"jax {jax.__version__}, numpy {np.__version__}, h5py {h5py.__version__}")
    print(f"default backend: {jax.default_backend()}")
    for kind in ("cpu", "gpu"):
        try:
            devs = jax.local_devices(backend=kind)
        except RuntimeError:
            devs = []
        text = ", ".join(f"{d.id}:{getattr(d, 'device_kind', d.platform)}" for d in devs) or "none"
        print(f"{kind} devices: {text}")
    print(f"64-bit JAX: {'on' if jax.config.jax_enable_x64 else 'off'} (experiments turn it on for --dtype "
          "float64; wow itself never changes it)")
    print("precision: float64/complex128 (validation, tests) or float32/complex64 (speed), "
          "chosen per run with Config(dtype=...) or --dtype")
    print(f"experiments: {', '.join(experiments()) or 'none found'}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    p = argparse.ArgumentParser(prog="wow", description="wave-on-wave: electron backscattering on a "
                                "thermal chain with the lattice centre of mass")
    p.add_argument("--version", action="version", version=f"wow {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="{run,list,inspect,plot,info}")
    r = sub.add_parser("run", help="run an experiment", add_help=False,
                       description="wow run EXPERIMENT [options]: the options go to the experiment")
    r.add_argument("experiment", help=f"one of: {', '.join(experiments())}")
    sub.add_parser("list", help="the experiments and what each answers")
    i = sub.add_parser("inspect", help="inputs, provenance and tallies of a results file")
    i.add_argument("file", type=Path)
    i.add_argument("--columns", type=lambda s: [c for c in s.split(",") if c], default=["P_b", "dE_b", "dE_cm"],
                   help="statistics to tabulate, comma-separated")
    pl = sub.add_parser("plot", help="standard figures of a results file (PNG)")
    pl.add_argument("file", type=Path)
    pl.add_argument("--out", type=Path, default=None, help="directory for the PNGs (default: next to FILE)")
    sub.add_parser("info", help="versions, devices and precision")
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    p = build_parser()
    if argv[:1] == ["run"]:
        if len(argv) < 2 or argv[1].startswith("-"):
            if len(argv) >= 2 and argv[1] in ("-h", "--help"):
                print(f"usage: wow run EXPERIMENT [options]\nexperiments: {', '.join(experiments())}\n"
                      "options: see wow run EXPERIMENT --help")
                return 0
            p.error(f"run: give an experiment: {', '.join(experiments())}")
        args, rest = p.parse_args(argv[:2]), argv[2:]
        return _run(args, rest)
    args = p.parse_args(argv)
    from .config import ConfigError
    from .io import ResultsError

    try:
        return {"list": _list, "inspect": _inspect, "plot": _plot, "info": _info}[args.command](args)
    except (ResultsError, ConfigError, ValueError) as e:
        print(f"wow {args.command}: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
