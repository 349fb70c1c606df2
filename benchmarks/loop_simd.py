"""SIMD width of each fused pass inside the compiled time loop (the core of benchmarks/hold_ab.py).

    python benchmarks/loop_simd.py --dynamics wow --dtype float64,float32

Why: XLA:CPU can move a loop-invariant value into the loop's carried state and then compile a
fusion that reads it without SIMD (seen in the density-density model: ``<1 x float>`` inside the
loop where the same fusion outside it had ``<8 x float>``). This compiles the program with
XLA's dump on (LLVM IR per kernel), finds the innermost while body, and prints for each fusion in it
(and in its conditionals' branches) the vector widths of the arithmetic in the kernel's vectorised
loop and the number of scalar arithmetic instructions (remainder iterations: the per-row tail that
a padded edge leaves). Also lists the loop-carried values that the body passes through unchanged
(hoisted invariants). Compiles only: run it under the shared lock.
"""

from __future__ import annotations

import argparse
import os
import re
import sys
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
DUMP = tempfile.mkdtemp(prefix="loop_simd_")
os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + f" --xla_dump_to={DUMP} --xla_dump_hlo_as_text").strip()
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)


import hold_ab  # noqa: E402
import wow  # noqa: E402

ARITH = re.compile(r"= (?:fadd|fsub|fmul|fdiv|fneg)(?: [a-z]+)* (<(\d+) x (?:float|double)>|float|double) ")


def widths(ll: str):
    """(sorted vector widths of the arithmetic, scalar arithmetic count) of one kernel's LLVM IR."""
    vec, scalar = set(), 0
    for m in ARITH.finditer(ll):
        if m.group(2):
            vec.add(int(m.group(2)))
        else:
            scalar += 1
    return sorted(vec), scalar


def report(dynamics, dtype, N, S, hold):
    before = set(os.listdir(DUMP))
    cfg, lat, n_dev, block, _ = hold_ab.setup(dynamics, dtype, N, S)
    wow.devices.compile_for(hold_ab.program(cfg, hold, block, n_dev).lower(lat), jax.devices())
    new = sorted(set(os.listdir(DUMP)) - before)
    hlo = [f for f in new if f.endswith("jit_blocked.cpu_after_optimizations.txt")][-1]
    prefix = hlo[: -len("cpu_after_optimizations.txt")]
    comps = hold_ab.computations(Path(DUMP, hlo).read_text())
    body = hold_ab.innermost_body(comps)
    print(f"\n{dynamics} {dtype} N={N} samples={S} hold_rotations={hold}: loop body {body}")
    root = [l for l in comps[body] if "ROOT" in l][0]
    outs = re.findall(r"%([\w.\-]+)", root.split("tuple(", 1)[1])
    through = [f"index {i}" for i, o in enumerate(outs) if o.startswith("get-tuple-element")
               and re.search(rf"%{re.escape(o)} = .*index={i}\b", "\n".join(comps[body]))]
    print(f"  carried values passed through unchanged (hoisted invariants): {through or 'none'}")
    rows = []

    def walk(lines, where):
        for l in lines:
            m = re.search(r"%([\w.\-]+) = (\S+) (fusion|copy|conditional)\(", l)
            if not m:
                continue
            if m.group(3) == "conditional":
                for br in re.findall(r"%([\w.\-]+)", l.split("branch_computations={", 1)[1].split("}", 1)[0]):
                    walk(comps.get(br, []), f"branch {br}")
                continue
            ll = Path(DUMP, f"{prefix}{m.group(1)}_kernel_module.ir-with-opt.ll")
            w = widths(ll.read_text()) if ll.exists() else None
            rows.append((where, m.group(1), m.group(2), m.group(3), w))

    walk(comps[body], "body")
    for where, name, shape, kind, w in rows:
        desc = ("no kernel of its own (a copy or a kernel shared with an identical fusion)" if w is None else
                f"vector <{','.join(map(str, w[0])) or '-'} x {'double' if dtype == 'float64' else 'float'}>, "
                f"scalar arithmetic {w[1]}")
        print(f"  {where:22s} {name:30s} {shape:22s} {desc}")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dynamics", default="wow")
    ap.add_argument("--dtype", default="float64,float32")
    ap.add_argument("--N", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--hold", default="1", help="hold_rotations values to inspect, e.g. 0,1")
    args = ap.parse_args(argv)
    wow.devices.use_cpu_cores(None)
    print(f"LLVM IR dumped under {DUMP}")
    for dyn in args.dynamics.split(","):
        for dt in args.dtype.split(","):
            for h in args.hold.split(","):
                report(dyn, dt, args.N, args.samples, h == "1")


if __name__ == "__main__":
    main()
