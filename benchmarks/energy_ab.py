"""Interleaved A/B of the chain model's energy (whose gradient is the Ehrenfest force): bond
densities interleaved into bond order (``TightBinding.energy``, now) against hoppings split by
parity (before: the force then holds the transpose of a stride-2 slice, an interior pad, which
XLA:CPU compiles without SIMD; benchmarks/loop_simd.py shows the widths).

    python benchmarks/energy_ab.py --dynamics ehrenfest,wow --dtype float32,float64 --rounds 6

Both programs are compiled first, then their calls alternate (as benchmarks/hold_ab.py, whose
timing and layout it reuses). Reported: median rate of each (M sample·site·steps/s) [min, max],
the ratio, the largest difference of the final ψ (rounding only), the loop body's passes. Appends
to benchmarks/RESULTS.md with the copy bandwidth measured in the same run. Exclusive lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402

import hold_ab  # noqa: E402
import throughput  # noqa: E402
import wow  # noqa: E402
from wow.ensemble import initial_packet, program_of  # noqa: E402
from wow.models.chain import TightBinding, by_parity, shift_sites  # noqa: E402


@dataclasses.dataclass(frozen=True)
class ParityEnergy(TightBinding):
    """TightBinding with the energy as it was before (hoppings split by parity)."""

    def energy(self, z, coords, p):
        t, eps = self.coupling.terms(coords, p)
        Ar, Ai, Br, Bi = z
        te, to = by_parity(t, self.M)
        nxt = lambda x: shift_sites(x, 1, self.ring)
        e = -2.0 * (te * (Ar * Br + Ai * Bi) + to * (Br * nxt(Ar) + Bi * nxt(Ai)))
        if eps is not None:
            ea, eb = by_parity(eps, self.M)
            e = e + ea * (Ar**2 + Ai**2) + eb * (Br**2 + Bi**2)
        return jnp.sum(e, axis=tuple(range(e.ndim - 2)) + (e.ndim - 1,))


def program(cfg, before: bool, block, n_dev):
    """throughput.core_program (as hold_ab.program) with the energy as before (``before``) or now."""
    prog, inp = program_of(cfg)
    if before:
        m = prog.model
        prog = dataclasses.replace(prog, model=ParityEnergy(**{f.name: getattr(m, f.name) for f in dataclasses.fields(m)}))
    return throughput.sharded_program(prog, inp, initial_packet(cfg), block, n_dev)


def measure(dynamics, dtype, N, S, rounds, repeats):
    cfg, lat, n_dev, block, steps = hold_ab.setup(dynamics, dtype, N, S)
    out, psi = hold_ab.alternate({before: program(cfg, before, block, n_dev) for before in (True, False)}, lat,
                                 S * N * steps, rounds, repeats)
    diff = float(np.max(np.abs(psi[True] - psi[False])))
    return dict(dynamics=dynamics, dtype=dtype, N=N, S=S, steps=steps, a=out[True], b=out[False],
                ratio=out[False]["rate"] / out[True]["rate"], diff=diff)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dynamics", default="ehrenfest,wow")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=6)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)
    wow.devices.use_cpu_cores(None)
    env = throughput.environment()
    print(" | ".join(env.values()), flush=True)
    dtypes = args.dtype.split(",")
    bw = throughput.bandwidths(dtypes)
    rows = []
    for dyn in args.dynamics.split(","):
        for dt in dtypes:
            r = measure(dyn, dt, args.N, args.samples, args.rounds, args.repeats)
            rows.append(r)
            print(f"{dyn:9s} {dt}: before {r['a']['rate'] / 1e6:7.1f} M/s  now {r['b']['rate'] / 1e6:7.1f} M/s  "
                  f"ratio {r['ratio']:.2f}  max|Δψ| {r['diff']:.1e}  loop body {r['a']['body']} -> {r['b']['body']}", flush=True)
    lines = [f"\n## {env['date']} — `python benchmarks/energy_ab.py {' '.join(sys.argv[1:]) or '(defaults)'}`\n",
             f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}"]
    for dt, (b, lo, hi) in bw.items():
        lines.append(f"- copy bandwidth {dt}: {b / 1e9:.1f} GB/s read+write (range {lo / 1e9:.1f}-{hi / 1e9:.1f})")
    lines += [f"- calls alternated: {args.rounds} rounds x {args.repeats} calls of each program; energy split by "
              "parity (before) vs interleaved into bond order (now)",
              "", "| dynamics | dtype | N | samples | steps | before: M/s [min, max] | now: M/s [min, max] | now / before | "
              "max abs Δψ | loop body before (passes, fused ops) | now |",
              "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = lambda x: f"{x['rate'] / 1e6:.0f} [{x['lo'] / 1e6:.0f}, {x['hi'] / 1e6:.0f}]"
        lines.append(f"| {r['dynamics']} | {r['dtype']} | {r['N']} | {r['S']} | {r['steps']} | {f(r['a'])} | {f(r['b'])} | "
                     f"{r['ratio']:.2f} | {r['diff']:.0e} | {r['a']['body']} | {r['b']['body']} |")
    with open(args.out, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
