"""Where one time step goes: wall time per fused pass of the compiled core (jax.profiler).

    python benchmarks/fusion_profile.py --dynamics wow --dtype float64 --block 32

Compiles benchmarks/throughput.py's ``core_program`` (N x samples over one JAX device per core, in
blocks of ``--block`` samples), runs it once, then ``--calls`` times under jax.profiler, and prints
for every XLA thunk of the loop body (fusions, copies, conditionals and the fusions inside their
branches) its summed wall time over all devices, in microseconds per step and per device, largest
first, with its share of the time loop. A conditional's time includes its branch's fusions (listed
too). Run it under the exclusive lock: the times are wall times on the shared cores.
"""

from __future__ import annotations

import argparse
import collections
import glob
import gzip
import json
import sys
import tempfile
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import loop_simd  # noqa: E402
import throughput  # noqa: E402
import wow  # noqa: E402


def body_thunks(text):
    """Names of the top-level passes (fusions, copies, conditionals) of the innermost while body of
    compiled HLO text, and of the passes inside its conditionals' branches."""
    import re

    comps = loop_simd.computations(text)
    bodies = {m.group(1) for ls in comps.values() for l in ls for m in [re.search(r"\bwhile\(.*body=%?([\w.\-]+)", l)] if m}
    inner = [b for b in bodies if b in comps and not any(" while(" in l for l in comps[b])]
    body = max(inner, key=lambda b: len(comps[b]))
    top, branch = [], []
    for l in comps[body]:
        m = re.search(r"%([\w.\-]+) = .*? (fusion|copy|conditional)\(", l)
        if not m:
            continue
        top.append(m.group(1))
        if m.group(2) == "conditional":
            for br in re.findall(r"%([\w.\-]+)", l.split("branch_computations={", 1)[1].split("}", 1)[0]):
                branch += [x.group(1) for bl in comps.get(br, []) for x in [re.search(r"%([\w.\-]+) = \S+ fusion\(", bl)] if x]
    return top, branch


def profile(dynamics, dtype, N, S, block, steps, calls):
    cfg = throughput.config(dynamics, dtype, N, steps)
    lat = throughput.inputs(cfg, S)
    n_dev = len(jax.devices()) if S % len(jax.devices()) == 0 else 1
    if n_dev > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        lat = jax.device_put(lat, NamedSharding(Mesh(np.array(jax.devices()), ("samples",)), P("samples")))
    f, _ = throughput.core_program(cfg, block or None, n_dev)
    c = wow.devices.compile_for(f.lower(lat), jax.devices())
    jax.block_until_ready(c(lat))
    with tempfile.TemporaryDirectory() as d:
        with jax.profiler.trace(d, create_perfetto_trace=True):
            for _ in range(calls):
                jax.block_until_ready(c(lat))
        events = json.load(gzip.open(glob.glob(f"{d}/**/*.trace.json.gz", recursive=True)[0]))
    events = events["traceEvents"] if isinstance(events, dict) else events
    total, count = collections.Counter(), collections.Counter()
    for e in events:
        if e.get("ph") == "X":
            total[e["name"]] += e.get("dur", 0)
            count[e["name"]] += 1
    top, branch = body_thunks(c.as_text())
    device_steps = n_dev * calls * steps  # a device runs its blocks one after the other: all its samples
    per_step = {k: total[k] / device_steps for k in top + branch if k in total}
    loop = sum(per_step[k] for k in top if k in per_step)
    print(f"\n{dynamics} {dtype} N={N} samples={S} devices={n_dev} block={block or S // n_dev}: loop body "
          f"{loop:.0f} us per step and device ({len(top)} passes; {loop * 1e3 / (S // n_dev * N):.2f} ns per sample·site)")
    for k, v in sorted(per_step.items(), key=lambda kv: -kv[1]):
        where = "  (in a conditional)" if k in branch else ""
        print(f"  {k:34s} {v:8.1f} us  {100 * v / loop:5.1f}%{where}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dynamics", default="wow")
    ap.add_argument("--dtype", default="float64")
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--block", type=int, default=0, help="samples per block (0: all of a device's)")
    ap.add_argument("--steps", type=int, default=50)
    ap.add_argument("--calls", type=int, default=3)
    args = ap.parse_args(argv)
    wow.devices.use_cpu_cores(None)
    for dyn in args.dynamics.split(","):
        for dt in args.dtype.split(","):
            profile(dyn, dt, args.N, args.samples, args.block, args.steps, args.calls)


if __name__ == "__main__":
    main()
