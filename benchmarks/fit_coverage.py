"""Recovery and error coverage of wow.fit on synthetic targets (tests/test_fit.py asserts the same at
40 repetitions; this prints the numbers, at any count).

    python benchmarks/fit_coverage.py                 # 40 repetitions, as the test
    python benchmarks/fit_coverage.py --reps 1000     # ~1 min on a 2-core CPU

Model: y(T) = A (f e^{-T/tau} + 1 - f), A = 0.8, tau = 150 K, f = 0.6, on 25 points T = 0..500 K
with Gaussian noise sigma = 0.02; each repetition draws new noise (numpy seed = repetition index)
and refits from A = 1, tau = 100 K, f = 0.5 with the default L-BFGS. Prints, per parameter and for
both error methods: the 1σ and 2σ coverage of the curvature errors (expected 0.683 and 0.954), the
scatter of the fitted values over repetitions against the median reported error, the mean pull, and
<χ²>/dof. Runs in float64 on the CPU; nothing is written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from wow import fit as F  # noqa: E402

TRUE = {"A": 0.8, "tau": 150.0, "f": 0.6}
START = {"A": 1.0, "tau": 100.0, "f": 0.5}


def decay(p, x):
    return p["A"] * (p["f"] * jnp.exp(-x / p["tau"]) + (1.0 - p["f"]))


MODEL = F.Model(decay, (F.Parameter("A", "", 0.0), F.Parameter("tau", "K", 0.0), F.Parameter("f", "", 0.0, 1.0)),
                name="A (f exp(-T/tau) + 1 - f)")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--reps", type=int, default=40)
    args = ap.parse_args(argv)
    x = np.linspace(0.0, 500.0, 25)
    y0 = np.asarray(decay(TRUE, jnp.asarray(x)))
    t0 = time.perf_counter()
    rows = {m: [] for m in F.ERROR_METHODS}
    chi2, iters, unconverged = [], [], 0
    for s in range(args.reps):
        rng = np.random.default_rng(s)
        t = F.Target(x, y0 + 0.02 * rng.normal(size=x.size), np.full(x.size, 0.02), "temperature", "K", "P_b", "")
        for m in F.ERROR_METHODS:
            r = F.fit(MODEL, t, START, errors=m)
            rows[m].append([(r.values[k], r.errors[k]) for k in TRUE])
        chi2.append(r.chi2)
        iters.append(r.iterations)
        unconverged += not r.converged
    wall = time.perf_counter() - t0
    dof = x.size - len(TRUE)
    print(f"{args.reps} repetitions, {wall:.1f} s; iterations {min(iters)}..{max(iters)} (median "
          f"{int(np.median(iters))}), not converged: {unconverged}; <chi2>/dof = {np.mean(chi2) / dof:.3f} "
          f"(expected 1 ± {math.sqrt(2 / dof / args.reps):.3f})")
    sd1 = math.sqrt(0.683 * 0.317 / args.reps)
    print(f"\n| errors | parameter | 1σ coverage (0.683 ± {sd1:.3f}) | 2σ coverage | scatter / median error | mean pull |")
    print("|---|---|---|---|---|---|")
    for m in F.ERROR_METHODS:
        a = np.array(rows[m])  # (reps, p, 2)
        for i, k in enumerate(TRUE):
            pull = (a[:, i, 0] - TRUE[k]) / a[:, i, 1]
            print(f"| {m} | {k} | {np.mean(np.abs(pull) < 1):.3f} | {np.mean(np.abs(pull) < 2):.3f} | "
                  f"{np.std(a[:, i, 0], ddof=1) / np.median(a[:, i, 1]):.3f} | {pull.mean():+.3f} |")
        allp = (a[:, :, 0] - np.array(list(TRUE.values()))) / a[:, :, 1]
        print(f"| {m} | all | {np.mean(np.abs(allp) < 1):.3f} | {np.mean(np.abs(allp) < 2):.3f} | | |")
    ratio = np.array(rows["hessian"])[:, :, 1] / np.array(rows["gauss-newton"])[:, :, 1]
    print(f"\nHessian / Gauss-Newton error, per fit: {ratio.min():.4f} .. {ratio.max():.4f} (median {np.median(ratio):.4f})")


if __name__ == "__main__":
    main()
