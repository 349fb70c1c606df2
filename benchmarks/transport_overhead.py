"""Cost of the transport accumulators (Config.transport, and Config.kubo's second state) against the
same wow.run without them, in sample·site·steps per second, with the copy bandwidth of this run.

    flock /work/gate.lock flock -x /work/cpu.lock python benchmarks/transport_overhead.py
    python benchmarks/transport_overhead.py --N 65536 --samples 1024 --steps 2000 --dtype float32   # a GPU

Each rate is the median of --repeats timed runs (wow.run's run_s: compilation excluded), the plain
and the transport runs interleaved so that a shared machine's drifts hit both. The frames are the
same in both (--frames); transport adds O(N) work per frame and sample (the MSD, D_run, <v>, E_e,
E_band, the edge density and the lattice energy), nothing per step; kubo doubles the propagated state.
Prints a markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from throughput import copy_bandwidth  # noqa: E402

import wow  # noqa: E402


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--N", type=int, default=4096)
    p.add_argument("--samples", type=int, default=64)
    p.add_argument("--steps", type=int, default=400)
    p.add_argument("--frames", type=int, default=100, help="frames recorded in every run")
    p.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    p.add_argument("--dynamics", default="frozen,wow,ehrenfest")
    p.add_argument("--repeats", type=int, default=5)
    args = p.parse_args(argv)
    if args.dtype == "float64":
        jax.config.update("jax_enable_x64", True)
    dt = 0.02
    bw = copy_bandwidth(jnp.float32 if args.dtype == "float32" else jnp.float64)
    print(f"copy bandwidth ({args.dtype}): {bw[0] / 1e9:.1f} GB/s (min {bw[1] / 1e9:.1f}, max {bw[2] / 1e9:.1f}); "
          f"jax {jax.__version__}, {jax.devices()[0].platform} x {len(jax.devices())}")
    print("| dynamics | N x samples x steps, frames | plain (M s·s·st/s) | transport | overhead | transport+kubo | "
          "kubo / plain |\n|---|---|---|---|---|---|---|")
    for dyn in args.dynamics.split(","):
        base = wow.Config(chain=wow.Chain(N=args.N, boundary="ring"), electron=wow.Electron(D=1.0, sigma=10.0),
                          temperature=300.0, dynamics=dyn, dt=dt, duration=args.steps * dt, n_frames=args.frames,
                          dtype=args.dtype, check_inside=False)
        kinds = {"plain": base, "transport": dataclasses.replace(base, transport=True)}
        if dyn != "ehrenfest":
            kinds["kubo"] = dataclasses.replace(base, transport=True, kubo=True)
        work = args.N * args.samples * base.n_steps
        times = {k: [] for k in kinds}
        for k, cfg in kinds.items():  # compile (and warm) each once
            wow.run(cfg, args.samples, progress=False)
        for _ in range(args.repeats):
            for k, cfg in kinds.items():
                times[k].append(wow.run(cfg, args.samples, progress=False).run_s)
        rate = {k: work / np.median(v) / 1e6 for k, v in times.items()}
        over = rate["plain"] / rate["transport"] - 1
        kubo = f"{rate['kubo']:.0f}" if "kubo" in rate else "-"
        kr = f"{rate['kubo'] / rate['plain']:.2f}" if "kubo" in rate else "-"
        print(f"| {dyn} {args.dtype} | {args.N} x {args.samples} x {base.n_steps}, {args.frames} | {rate['plain']:.0f} | "
              f"{rate['transport']:.0f} | {over:+.1%} | {kubo} | {kr} |", flush=True)


if __name__ == "__main__":
    main()
