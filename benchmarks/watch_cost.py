"""What the per-step lattice watch costs (wow.sanity.watch: hoppings that changed sign, the
smallest bond stretch, counted on the device at every step of wow.run): the time loop of
benchmarks/throughput.py (wow.propagate.propagate on cache-sized blocks, samples split over the CPU
cores) with Plan.watch off (0), at wow.run's stride (wow.sanity.watch_every: every k-th step) and at
every step (1), the same inputs, calls alternating between the arms in one process so that all see
the same machine load. Both arms return ψ and the frames (else XLA would drop the
unused watch).

    python benchmarks/watch_cost.py                                  # wow float32,float64 at N 4096 x 64
    python benchmarks/watch_cost.py --dynamics wow,ehrenfest,frozen --append

Prints median rates (sample*site*steps/s) and the overheads (rate off / rate on - 1), with --append
adds them to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import datetime
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import wow  # noqa: E402
from throughput import cache_block, config, inputs  # noqa: E402
from wow.ensemble import initial_packet, program_of  # noqa: E402
from wow.propagate import propagate  # noqa: E402


def core(cfg, watch: bool, block, n_dev):
    """The jitted loop on blocks of samples (throughput.core_program's layout), watch on or off;
    returns ψ(t_final) and the frames."""
    program, inp = program_of(cfg)
    program = dataclasses.replace(program, plan=dataclasses.replace(program.plan, watch=bool(watch)))
    inp = dataclasses.replace(inp, watch_every=jnp.asarray(max(1, int(watch)), jnp.int32))
    psi0 = initial_packet(cfg)
    N = cfg.chain.N

    def one(lat):
        S = lat.u.shape[0]
        psi, _, frames = propagate(program, inp, jnp.broadcast_to(psi0, (S, N)), lat, jnp.zeros((S,), inp.dt.dtype))
        return psi, frames

    def blocked(lat):
        S = lat.u.shape[0]
        if not block or block >= S:
            return one(lat)
        lead = jax.tree_util.tree_map(lambda x: x.reshape(S // block, block, N), lat)
        psi, frames = jax.lax.map(one, lead)
        flat = lambda x: x.reshape((S,) + x.shape[2:])
        return flat(psi), jax.tree_util.tree_map(flat, frames)

    from jax.sharding import Mesh, PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:n_dev]), ("samples",))
    return jax.jit(jax.shard_map(blocked, mesh=mesh, in_specs=P("samples"), out_specs=P("samples"), check_vma=False))


def measure(dynamics, dtype, N, S, steps, repeats):
    cfg = config(dynamics, dtype, N, steps)
    lat = inputs(cfg, S)
    n_dev = len(jax.devices())
    block = cache_block(S // n_dev, N, dtype, 32e6)
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    lat = jax.device_put(lat, NamedSharding(Mesh(np.array(jax.devices()), ("samples",)), P("samples")))
    arms = (0, wow.sanity.watch_every(cfg), 1)
    fs = {}
    for watch in arms:
        fs[watch] = wow.devices.compile_for(core(cfg, watch, block, n_dev).lower(lat), jax.devices())
        jax.block_until_ready(fs[watch](lat))  # warm-up
    ts = {w: [] for w in arms}
    for _ in range(repeats):
        for watch in arms:
            t0 = time.perf_counter()
            jax.block_until_ready(fs[watch](lat))
            ts[watch].append(time.perf_counter() - t0)
    work = S * N * cfg.steps_per_frame
    rate = {w: work / np.median(ts[w]) for w in arms}
    spread = {w: (work / max(ts[w]), work / min(ts[w])) for w in arms}
    return dict(dynamics=dynamics, dtype=dtype, N=N, S=S, steps=cfg.steps_per_frame, k=arms[1], rate=rate,
                spread=spread)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dynamics", default="wow")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=400)
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--append", action="store_true")
    args = ap.parse_args(argv)
    wow.devices.use_cpu_cores(None)
    head = ("| dynamics | dtype | N | samples | steps | k | rate off (G/s) | rate every k (G/s) | overhead every k | "
            "rate every step (G/s) | overhead every step | min-max off / k / 1 (G/s) |")
    lines = [head, "|" + "---|" * 12]
    print(head, flush=True)
    for dyn in args.dynamics.split(","):
        for dtype in args.dtype.split(","):
            r = measure(dyn, dtype, args.N, args.samples, args.steps, args.repeats)
            rt, sp, k = r["rate"], r["spread"], r["k"]
            lines.append(f"| {dyn} | {dtype} | {r['N']} | {r['S']} | {r['steps']} | {k} | {rt[0] / 1e9:.3f} | "
                         f"{rt[k] / 1e9:.3f} | {100 * (rt[0] / rt[k] - 1):+.1f}% | {rt[1] / 1e9:.3f} | "
                         f"{100 * (rt[0] / rt[1] - 1):+.1f}% | "
                         + " / ".join(f"{sp[w][0] / 1e9:.3f}-{sp[w][1] / 1e9:.3f}" for w in (0, k, 1)) + " |")
            print(lines[-1], flush=True)
    if args.append:
        commit = subprocess.run(["git", "-C", str(HERE), "rev-parse", "--short", "HEAD"], capture_output=True,
                                text=True).stdout.strip()
        cmd = "python benchmarks/" + Path(__file__).name + " " + " ".join(sys.argv[1:] if argv is None else argv)
        with open(HERE / "RESULTS.md", "a") as f:
            f.write(f"\n## Cost of the per-step lattice watch ({datetime.date.today()}, git {commit}, "
                    f"{len(jax.devices())} x {jax.devices()[0].platform})\n\n`{cmd}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
