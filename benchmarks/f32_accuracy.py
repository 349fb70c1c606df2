"""float32 against float64: the same samples (same seed) run in both precisions, per-sample
differences of the tallies and the norm drift over long runs (large N). The fast guard of the same
properties is tests/test_float32.py.

    python benchmarks/f32_accuracy.py                        # ring N = 1024, 1e5 steps, 8 samples
    python benchmarks/f32_accuracy.py --N 256 --steps 10000 --samples 4 --dynamics frozen

Prints a markdown table (median and max over samples of |f32 - f64|, relative to the float64 value's
scale where that is meaningful) and with --append adds it to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import datetime
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import wow  # noqa: E402

#: Tallies compared, and how: 'abs' (a probability) or 'rel' (relative to the float64 ensemble's
#: RMS of that tally, so that a tally near zero in one sample does not blow up the ratio).
TALLIES = {"norm": "abs", "P_b": "abs", "dE_b": "rel", "dE_e": "rel", "dE_cm": "rel"}


def compare(dynamics, N, steps, samples, recoil, seed=0, dt=0.02):
    base = dict(chain=wow.Chain(N=N, boundary="ring"), electron=wow.Electron(sigma=25.0),
                dynamics=dynamics, recoil=recoil, dt=dt, duration=steps * dt, n_frames=1)
    out, secs = {}, {}
    for dtype in ("float64", "float32"):
        t0 = time.perf_counter()
        out[dtype] = wow.run(wow.Config(dtype=dtype, **base), samples, seed, progress=False)
        secs[dtype] = time.perf_counter() - t0
    a, b = out["float32"].per_sample, out["float64"].per_sample
    row = {"drift32": float(np.abs(np.mean(a["norm"]) - 1)), "drift32_max": float(np.abs(a["norm"] - 1).max()),
           "drift64_max": float(np.abs(b["norm"] - 1).max())}
    for k, how in TALLIES.items():
        if k == "norm":
            continue
        d = np.abs(np.asarray(a[k], float) - np.asarray(b[k], float))
        d = d[np.isfinite(d)]
        scale = 1.0 if how == "abs" else float(np.sqrt(np.nanmean(np.asarray(b[k], float) ** 2)))
        row[k] = (float(np.median(d)) / scale, float(d.max()) / scale) if d.size else (np.nan, np.nan)
    row["s"] = secs
    return row


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--N", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=100_000)
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--dynamics", default="frozen,wow,ehrenfest")
    ap.add_argument("--recoil", default="1", help="comma list of 0/1")
    ap.add_argument("--append", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    head = (f"| dynamics | recoil | N | steps | samples | mean norm drift f32 | max |norm-1| f32 | max |norm-1| f64 | "
            + " | ".join(f"{k} {'abs' if h == 'abs' else 'rel'} median/max" for k, h in TALLIES.items() if k != "norm")
            + " | s f64/f32 |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for dyn in args.dynamics.split(","):
        for rec in (bool(int(r)) for r in args.recoil.split(",")):
            r = compare(dyn, args.N, args.steps, args.samples, rec)
            cells = [f"{r[k][0]:.1e} / {r[k][1]:.1e}" for k in TALLIES if k != "norm"]
            lines.append(f"| {dyn} | {rec} | {args.N} | {args.steps} | {args.samples} | {r['drift32']:.1e} | "
                         f"{r['drift32_max']:.1e} | {r['drift64_max']:.1e} | " + " | ".join(cells)
                         + f" | {r['s']['float64']:.0f}/{r['s']['float32']:.0f} |")
            print(lines[-1], flush=True)
    text = "\n".join(lines)
    print(text)
    if args.append:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        cmd = "python benchmarks/" + Path(__file__).name + " " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(HERE / "RESULTS.md", "a") as f:
            f.write(f"\n## float32 vs float64 accuracy ({datetime.date.today()}, git {commit}, "
                    f"{jax.devices()[0].platform})\n\n`{cmd}`\n\n{text}\n")


if __name__ == "__main__":
    main()
