"""Cost of writing a sweep into a results file, per point, as the sweep grows.

    python benchmarks/write_cost.py                     # 1,000 points, 2 samples, small trajectories
    python benchmarks/write_cost.py --points 300 --no-append

Every point is a tiny run (N = 32 open chain, 2 samples, 1 fs, 10 frames, both samples saved frame by
frame, so each point carries ~100 small datasets and three (2, 11, 32) trajectory arrays), T varies
from point to point (traced: one compilation). What is timed: the sweep's wall time per point minus
the time spent in the ensemble run, i.e. what ``wow.io.run_sweep`` spends writing (and, at its end,
finishing) the file; and reading the whole file back. For scale the same run measures the file copy
bandwidth of the output folder (a 64 MiB file copied with shutil.copyfile, median of 3).

Appends a section to benchmarks/RESULTS.md unless --no-append.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import wow  # noqa: E402
from wow import io  # noqa: E402


def copy_bandwidth(folder: Path, size=64 * 2**20, repeats=3) -> float:
    src, dst = folder / "bw_src.bin", folder / "bw_dst.bin"
    src.write_bytes(os.urandom(size))
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        shutil.copyfile(src, dst)
        times.append(time.perf_counter() - t0)
    src.unlink()
    dst.unlink()
    return 2 * size / statistics.median(times)  # bytes read + written per second


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--points", type=int, default=1000)
    ap.add_argument("--samples", type=int, default=2)
    ap.add_argument("--dir", type=Path, default=None, help="folder for the file (default: a temporary one)")
    ap.add_argument("--no-append", action="store_true", help="do not append to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    wow.devices.use_cpu_cores()

    cfg = wow.Config(chain=wow.Chain(N=32), electron=wow.Electron(sigma=3.0), dt=0.05, duration=1.0,
                     n_frames=10, dynamics="frozen", save_density=True)
    points = [io.Point(f"p{i}", {"temperature": 10.0 + i}, dataclasses.replace(cfg, temperature=10.0 + i),
                       trajectories=args.samples) for i in range(args.points)]
    module = sys.modules[io.run_sweep.__module__]  # where run_sweep looks up the ensemble runner
    real = module.run_ensemble
    compute = []

    def timed(*a, **k):
        t0 = time.perf_counter()
        r = real(*a, **k)
        compute.append(time.perf_counter() - t0)
        return r

    module.run_ensemble = timed
    stamps = []
    with tempfile.TemporaryDirectory(dir=args.dir) as tmp:
        path = Path(tmp) / "sweep.h5"
        real(points[0].config, args.samples, 0)  # compile outside the timing
        t0 = time.perf_counter()
        io.run_sweep(path, "write_cost", points, args.samples, seed=0, progress=False,
                     log=lambda s: stamps.append(time.perf_counter()))
        total = time.perf_counter() - t0
        size = path.stat().st_size
        t1 = time.perf_counter()
        res = io.read_results(path)
        read_s = time.perf_counter() - t1
        assert len(res.points) == args.points
        bw = copy_bandwidth(Path(tmp))
    # stamps: [file created, point 1 written, ..., point n written]
    per_point = [stamps[i + 1] - stamps[i] - compute[i] for i in range(args.points)]
    finish = t0 + total - stamps[-1]  # after the last point's line: closing the sweep (merging, if any)
    write_total = sum(per_point) + (stamps[0] - t0) + finish
    first, last = per_point[:100], per_point[-100:]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE.parent, capture_output=True,
                            text=True).stdout.strip()
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=HERE.parent,
                           capture_output=True, text=True).stdout.strip()
    scheme = getattr(io, "WRITE_SCHEME", "copy the whole file per point (os.replace)")
    lines = [
        f"| {args.points} | {args.samples} | {scheme} | {total:.1f} | {sum(compute):.1f} | {write_total:.1f} | "
        f"{1e3 * statistics.median(first):.1f} | {1e3 * statistics.median(last):.1f} | {finish:.2f} | "
        f"{size / 2**20:.1f} | {read_s:.1f} | {bw / 1e9:.2f} |"]
    print("points  samples  scheme  total_s  compute_s  write_s  ms/point(first 100)  ms/point(last 100)  "
          "finish_s  file_MiB  read_s  copy_GB/s")
    print(lines[0])
    if not args.no_append:
        head = (f"\n## Sweep write cost ({datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
                f"git {commit}{'+dirty' if dirty else ''}, {platform.node()}, python {platform.python_version()})\n\n"
                f"`python benchmarks/write_cost.py{' ' + ' '.join(argv or sys.argv[1:]) if (argv or sys.argv[1:]) else ''}`"
                f" (N = 32, 10 frames, every sample saved frame by frame; write = wall - ensemble runs; "
                f"copy bandwidth of the output folder measured in the same run)\n\n"
                "| points | samples | write scheme | total (s) | compute (s) | write (s) | ms/point, first 100 | "
                "ms/point, last 100 | finish (s) | file (MiB) | read all (s) | copy (GB/s) |\n"
                "|---|---|---|---|---|---|---|---|---|---|---|---|\n")
        with open(HERE / "RESULTS.md", "a") as f:
            f.write(head + "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
