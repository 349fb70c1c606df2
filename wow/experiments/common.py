"""What every experiment shares: one parser with the common flags, the checks that run before any
work (ranges, device, precision), the resumable sweep into a results file, and where the outputs go.

Outputs: the results file is ``--out`` (default ``results/NAME.h5`` in the working directory; that
folder is created when missing); the table (``.md``) and the figure (``.png``) go beside it with the
same stem. Nothing is ever written elsewhere, so a run inside a checkout never touches its tracked
files.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

#: The default folder for outputs, relative to the working directory.
RESULTS = Path("results")


def float_list(text: str) -> list[float]:
    """'30,100,300' -> [30.0, 100.0, 300.0] (argparse type)."""
    try:
        out = [float(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of numbers") from None
    if not out:
        raise argparse.ArgumentTypeError("the list is empty")
    return out


def int_list(text: str) -> list[int]:
    """'128,256' -> [128, 256] (argparse type)."""
    try:
        out = [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None
    if not out:
        raise argparse.ArgumentTypeError("the list is empty")
    return out


def str_list(allowed):
    def parse(text: str) -> list[str]:
        out = [x.strip() for x in text.split(",") if x.strip()]
        bad = [x for x in out if x not in allowed]
        if bad or not out:
            raise argparse.ArgumentTypeError(f"{text!r}: allowed a comma-separated subset of {', '.join(allowed)}")
        return out
    return parse


def parser(name: str, doc: str, *, samples: int, duration: float, dt: float = 0.02,
           dtype: str = "float64") -> argparse.ArgumentParser:
    """The parser every experiment starts from: run, device, multi-process and output flags."""
    p = argparse.ArgumentParser(prog=f"wow run {name}", description=doc,
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    p.set_defaults(experiment=name)
    g = p.add_argument_group("run")
    g.add_argument("--samples", type=int, default=samples, help="thermal samples per point (>= 2)")
    g.add_argument("--seed", type=int, default=0, help="PRNG seed (sample s uses key s of split(PRNGKey(seed)))")
    g.add_argument("--duration", type=float, default=duration, help="run length per sample (fs)")
    g.add_argument("--dt", type=float, default=dt, help="time step (fs)")
    g.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto",
                   help="where to run: every device of that kind, in every process (auto: JAX's default backend)")
    g.add_argument("--dtype", choices=("float64", "float32"), default=dtype,
                   help="precision (float64 turns on 64-bit JAX at start-up)")
    g.add_argument("--chunk-size", type=int, default=None, help="samples per device program (default: sized to memory)")
    g.add_argument("--allow-crossing", action="store_true",
                   help="keep a point whose atoms passed each other (warn) instead of refusing it; the samples "
                        "that crossed are marked 'crossed' in the file")
    g.add_argument("--cpu-devices", type=int, default=None,
                   help="run on the CPU as this many JAX devices, samples side by side (when not given: one per available core)")
    m = p.add_argument_group("several processes or hosts (jax.distributed; start the same command once per process)")
    m.add_argument("--coordinator", default=None, help="host:port of process 0 (turns multi-process on)")
    m.add_argument("--num-processes", type=int, default=None, help="how many processes take part")
    m.add_argument("--process-id", type=int, default=None, help="this process's rank, 0..num-processes-1")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, default=RESULTS / f"{name}.h5",
                   help="results file (HDF5); an existing file with the same inputs is resumed; the table "
                        "(.md) and figure (.png) go beside it")
    o.add_argument("--overwrite", action="store_true", help="start over if --out holds a different sweep")
    o.add_argument("--figure", type=Path, default=None, help="figure to write (PNG; default: beside --out)")
    o.add_argument("--table", type=Path, default=None, help="markdown table to write (default: beside --out)")
    o.add_argument("--no-figure", action="store_true", help="do not draw the figure")
    o.add_argument("--quiet", action="store_true", help="print only the final table")
    return p


def check(p: argparse.ArgumentParser, args, **ranges):
    """Refuse out-of-range options before any work: ranges maps an option name to (low, high,
    low_open) for numbers or lists of numbers; also checks the common flags and the outputs, turns on
    64-bit JAX for float64 and checks that the requested device exists."""
    common = {"samples": (2, None, False), "seed": (0, 2**63 - 1, False), "duration": (0, None, True),
              "dt": (0, None, True)}
    if args.chunk_size is not None:
        common["chunk_size"] = (1, None, False)
    for name, (lo, hi, lo_open) in {**common, **ranges}.items():
        vals = getattr(args, name)
        for v in (vals if isinstance(vals, list) else [vals]):
            bad = (lo is not None and (v <= lo if lo_open else v < lo)) or (hi is not None and v > hi)
            if bad:
                rng = f"{'(' if lo_open else '['}{lo}, {hi if hi is not None else 'inf'}{']' if hi is not None else ')'}"
                p.error(f"--{name.replace('_', '-')}={v:g}: allowed range {rng}")
    default_out = args.out == RESULTS / f"{args.experiment}.h5"
    if args.out.is_dir():
        p.error(f"--out {args.out} is a directory: give a file name, e.g. {args.out / (args.experiment + '.h5')}")
    if not args.out.parent.exists() and not default_out:
        p.error(f"--out {args.out}: directory {args.out.parent} does not exist")
    if args.out.suffix not in (".h5", ".hdf5"):
        p.error(f"--out {args.out}: give a file name ending in .h5 or .hdf5")
    args.table = args.table or args.out.with_suffix(".md")
    args.figure = args.figure or args.out.with_suffix(".png")
    for flag, path in (("--out", args.out), ("--table", args.table), ("--figure", args.figure)):
        if flag != "--out" and not path.parent.exists() and path.parent != args.out.parent:
            p.error(f"{flag} {path}: directory {path.parent} does not exist")
        if path.is_dir():
            p.error(f"{flag} {path} is a directory: give a file name")
        folder = next((q for q in (path.parent, *path.parent.parents) if q.exists()), Path("."))
        if not os.access(folder, os.W_OK | os.X_OK) or (path.exists() and not os.access(path, os.W_OK)):
            p.error(f"{flag} {path}: cannot write there (no permission on {folder if not path.exists() else path})")
    if args.cpu_devices is not None and args.cpu_devices < 1:
        p.error(f"--cpu-devices={args.cpu_devices}: allowed an integer >= 1")
    multi = (args.coordinator, args.num_processes, args.process_id)
    if any(v is not None for v in multi) and any(v is None for v in multi):
        p.error("--coordinator, --num-processes and --process-id go together: give all three or none")
    import jax

    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    args.devices = None if args.device == "auto" else args.device
    from wow import ConfigError
    from wow import devices as D

    try:  # both must happen before JAX starts its backends
        if args.coordinator is not None:
            D.distributed(args.coordinator, args.num_processes, args.process_id)
        D.use_cpu_cores(args.cpu_devices)
    except ConfigError as e:
        p.error(str(e))
    try:
        D.resolve(args.devices)
    except ConfigError as e:
        p.error(f"--device {args.device}: {e}")
    return args


def make_out_dir(args):
    """Create the default results folder (only that one: an explicit --out's folder must exist)."""
    from wow import devices

    if devices.is_writer():
        args.out.parent.mkdir(parents=True, exist_ok=True)


def log_of(args):
    """Where progress lines go: above the bars (wow.progress.echo), or nowhere with --quiet."""
    from wow.progress import echo

    return None if args.quiet else echo


def validate_points(p: argparse.ArgumentParser, points) -> None:
    """Every point's Config refused (exit status 2, the parameter named) before any work."""
    import wow

    for pt in points:
        try:
            wow.validate(pt.config)
        except wow.ConfigError as e:
            p.exit(2, f"{p.prog}: error: {e}\n")


def sweep(p: argparse.ArgumentParser, args, experiment: str, points, inputs: dict, description: str,
          runner=None):
    """Run (or resume) the sweep into args.out; a bad input or file ends the script with a clear
    message (exit status 2) before anything is written."""
    from wow import ConfigError, io

    t0 = time.perf_counter()
    log = log_of(args)
    make_out_dir(args)
    from wow.sanity import CrossingError, NonFiniteError

    try:
        io.run_sweep(args.out, experiment, points, args.samples, args.seed, inputs=inputs,
                     description=description, overwrite=args.overwrite, devices=args.devices,
                     chunk_size=args.chunk_size, log=log, runner=runner,
                     allow_crossing=getattr(args, "allow_crossing", False))
    except (ConfigError, io.ResultsError, NonFiniteError, CrossingError) as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    except KeyboardInterrupt:
        try:
            done = len(io.read_results(args.out, trajectories=False).points) if args.out.exists() else 0
        except Exception:  # noqa: BLE001 - the message must still come out
            done = "?"
        p.exit(130, f"{p.prog}: interrupted; {done} of {len(points)} points are saved in {args.out} "
                    "(run the same command again to resume)\n")
    res = io.read_results(args.out)
    if log:
        log(f"{args.out}: {len(res.points)} points, sweep time {time.perf_counter() - t0:.1f} s")
    return res


def save_figure(fig, path: Path, quiet: bool):
    import matplotlib.pyplot as plt

    from wow import devices

    if not devices.is_writer():
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")
    plt.close(fig)
    if not quiet:
        print(f"figure: {path}")


def relpath(path: Path) -> str:
    """``path`` relative to the working directory when it lies below it."""
    try:
        rel = os.path.relpath(path)
    except ValueError:
        return str(path)
    return str(path) if rel.startswith("..") else rel


def headless():
    """Use a non-interactive matplotlib backend (scripts never open windows)."""
    import matplotlib

    matplotlib.use("Agg")


def write_table(args, text: str):
    """Write the markdown table beside the results file (process 0 only)."""
    from wow import devices

    if devices.is_writer():
        args.table.parent.mkdir(parents=True, exist_ok=True)
        args.table.write_text(text)
        if not args.quiet:
            print(f"table: {args.table}")


def report(args, head: str, rows, figure):
    """Print the table, write it as markdown to args.table (with the results file and seed), and
    save ``figure(plot_module)`` to args.figure unless --no-figure."""
    from wow import devices, io

    if not devices.is_writer():  # several processes hold the same results: process 0 reports
        return
    print(head)
    print(io.format_table(rows))
    write_table(args, f"{head}\n\n{io.format_table(rows, markdown=True)}\n\n"
                      f"results file: `{args.out.name}`, seed {args.seed}\n")
    if not args.no_figure:
        headless()
        from wow import plot

        save_figure(figure(plot), args.figure, args.quiet)
