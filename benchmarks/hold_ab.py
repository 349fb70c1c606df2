"""Interleaved A/B of the chain model's ``hold_rotations`` (rotations computed once per sub-step
into buffers, or recomputed inside each output's fused loop), everything else the same program.

    python benchmarks/hold_ab.py                                  # wow and ehrenfest, float32 + float64
    python benchmarks/hold_ab.py --dynamics wow --dtype float32 --rounds 5

Both programs are compiled first; then their calls alternate (``--rounds`` x ``--repeats`` each), so
that the load of a shared machine falls on both alike. Timed as benchmarks/throughput.py times the
core (``core_program``: samples split over one device per core, cache-sized blocks, ready inputs,
``block_until_ready``). Reported: median rate of each (M sample·site·steps/s), [min, max], the ratio
of the medians, the largest difference of the final ψ between the two (rounding only), and the
top-level passes of the compiled loop body (fusions + copies + conditionals) and the operations in
its fused loops (what XLA recomputes per element). Appends to benchmarks/RESULTS.md with the copy
bandwidth measured in the same run. Run it under the exclusive lock.
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import throughput  # noqa: E402
import wow  # noqa: E402
from wow.ensemble import initial_packet, program_of  # noqa: E402

STEPS = {"wow": 150, "ehrenfest": 80}


def program(cfg, hold: bool, block, n_dev):
    """throughput.core_program with the model's hold_rotations set to ``hold``."""
    prog, inp = program_of(cfg)
    prog = dataclasses.replace(prog, model=dataclasses.replace(prog.model, hold_rotations=hold))
    return throughput.sharded_program(prog, inp, initial_packet(cfg), block, n_dev)


def computations(text) -> dict:
    """The computations of an HLO module's text: name -> its body lines."""
    comps, name = {}, None
    for line in text.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if m and not line.startswith(" "):
            name, comps[name] = m.group(1), []
            continue
        if line.startswith("}"):
            name = None
            continue
        if name:
            comps[name].append(line)
    return comps


def innermost_body(comps: dict):
    """The name of the largest while body that holds no while loop of its own (None if none)."""
    bodies = {m.group(1) for ls in comps.values() for l in ls
              for m in [re.search(r"\bwhile\(.*body=%?([\w.\-]+)", l)] if m}
    inner = [b for b in bodies if b in comps and not any(" while(" in l for l in comps[b])]
    return max(inner, key=lambda b: len(comps[b])) if inner else None


def loop_body(compiled) -> tuple[int, int]:
    """(top-level passes, operations inside its fused loops) of the largest innermost while body."""
    comps = computations(compiled.as_text())
    body = innermost_body(comps)
    if body is None:
        return 0, 0
    passes = ops = 0
    for l in comps[body]:
        m = re.search(r"= \S+ (fusion|copy|conditional)\(", l)
        if not m:
            continue
        passes += 1
        c = re.search(r"calls=%?([\w.\-]+)", l)
        if m.group(1) == "fusion" and c:
            kinds = [re.search(r"= \S+ ([\w-]+)\(", x) for x in comps.get(c.group(1), [])]
            ops += sum(k.group(1) not in ("parameter", "constant", "broadcast", "slice", "pad") for k in kinds if k)
    return passes, ops


def setup(dynamics, dtype, N, S):
    """One A/B point's inputs: (cfg, lat, n_dev, block, steps) with STEPS[dynamics] steps (half in
    float64), S thermal lattices split over every device when they divide evenly (else one), and
    cache-sized blocks (throughput.cache_block)."""
    steps = STEPS[dynamics] // (2 if dtype == "float64" else 1)
    cfg = throughput.config(dynamics, dtype, N, steps)
    lat = throughput.inputs(cfg, S)
    n_dev = len(jax.devices()) if S % len(jax.devices()) == 0 else 1
    block = throughput.cache_block(S // n_dev, N, dtype, 32e6)
    if n_dev > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        lat = jax.device_put(lat, NamedSharding(Mesh(np.array(jax.devices()), ("samples",)), P("samples")))
    return cfg, lat, n_dev, block, steps


def alternate(programs: dict, lat, work, rounds, repeats):
    """Compile every program of ``programs`` (name -> jitted function of lat, in that order), then
    alternate their calls (``rounds`` x ``repeats`` each, so that a shared machine's load falls on
    all alike). Returns (name -> dict(rate, lo, hi, body): median, slowest and fastest rate of
    ``work`` per second and ``loop_body``; name -> the final ψ)."""
    runs = {}
    for name, f in programs.items():
        c = wow.devices.compile_for(f.lower(lat), jax.devices())
        runs[name] = (c, np.asarray(jax.block_until_ready(c(lat))), loop_body(c), [])
    for _ in range(rounds):
        for c, _, _, ts in runs.values():
            for _ in range(repeats):
                t0 = time.perf_counter()
                jax.block_until_ready(c(lat))
                ts.append(time.perf_counter() - t0)
    out = {}
    for name, (c, psi, body, ts) in runs.items():
        t = np.array(ts)
        out[name] = dict(rate=work / np.median(t), lo=work / t.max(), hi=work / t.min(), body=body)
    return out, {name: run[1] for name, run in runs.items()}


def measure(dynamics, dtype, N, S, rounds, repeats):
    cfg, lat, n_dev, block, steps = setup(dynamics, dtype, N, S)
    out, psi = alternate({hold: program(cfg, hold, block, n_dev) for hold in (False, True)}, lat, S * N * steps,
                         rounds, repeats)
    diff = float(np.max(np.abs(psi[True] - psi[False])))
    return dict(dynamics=dynamics, dtype=dtype, N=N, S=S, n_dev=n_dev, block=block or S // n_dev, steps=steps,
                off=out[False], on=out[True], ratio=out[True]["rate"] / out[False]["rate"], diff=diff)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dynamics", default="wow,ehrenfest")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--rounds", type=int, default=4)
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
            print(f"{dyn:9s} {dt}: off {r['off']['rate'] / 1e6:7.1f} M/s  on {r['on']['rate'] / 1e6:7.1f} M/s  "
                  f"ratio {r['ratio']:.2f}  max|Δψ| {r['diff']:.1e}  loop body (passes, fused ops) "
                  f"off {r['off']['body']} on {r['on']['body']}", flush=True)
    lines = [f"\n## {env['date']} — `python benchmarks/hold_ab.py {' '.join(sys.argv[1:]) or '(defaults)'}`\n",
             f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}"]
    for dt, (b, lo, hi) in bw.items():
        lines.append(f"- copy bandwidth {dt}: {b / 1e9:.1f} GB/s read+write (range {lo / 1e9:.1f}-{hi / 1e9:.1f})")
    lines += [f"- calls alternated: {args.rounds} rounds x {args.repeats} calls of each program",
              "", "| dynamics | dtype | N | samples | devices | block | steps | hold_rotations off: M/s [min, max] | "
              "on: M/s [min, max] | on / off | max abs Δψ | loop body off (passes, fused ops) | on |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        f = lambda x: f"{x['rate'] / 1e6:.0f} [{x['lo'] / 1e6:.0f}, {x['hi'] / 1e6:.0f}]"
        lines.append(f"| {r['dynamics']} | {r['dtype']} | {r['N']} | {r['S']} | {r['n_dev']} | {r['block']} | {r['steps']} | "
                     f"{f(r['off'])} | {f(r['on'])} | {r['ratio']:.2f} | {r['diff']:.0e} | {r['off']['body']} | {r['on']['body']} |")
    with open(args.out, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
