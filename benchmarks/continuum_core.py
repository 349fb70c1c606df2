"""Throughput of the density-density model on the library's own path (the core wow.run uses:
``wow.propagate.propagate`` with the model and lattice backend of a wow.Config, samples split over
one JAX device per core, the traced inputs passed as arguments as wow.run passes them), before and
after a change, against the plain numpy split-operator (benchmarks/numpy_continuum.py) doing the
same steps, in one run.

    flock /work/gate.lock flock -x /work/cpu.lock python benchmarks/continuum_core.py --before 0f96974

Workload: ring of N = 256 atoms (copper-like chain), g = 16 (N_s = 4096 grid points), w = 0.5 Å,
V0 = 2 eV, 300 K classical samples, 64 samples, dt = 0.02 fs; dynamics 'wow' (the potential
rebuilt from the moving atoms every step: one exponential per grid point and window cell) and 'frozen' (the
potential phase computed once). Rates in M sample·gridpoint·steps/s (median of the timed calls).

``--before REF``: the same measurement of the code at git ref REF (``git archive`` of its wow/ into
a temporary folder) in a child process; its calls and this checkout's alternate round by round
(``--rounds``), so the load of a shared machine falls on both alike. The numpy baseline (moving
lattice, single-threaded) runs in the same rounds, each call in a fresh child process (in this
JAX process it ran 4-5x slower: ``numpy_seconds_per_step``).

Roofline: bytes per gridpoint·step at the least = the state ψ read and written once per step
(complex: 16 B in float32, 32 B in float64; the potential comes from N displacements per sample,
the kinetic phase is shared by the samples), against the copy bandwidth measured in this run
(throughput.copy_bandwidth: x -> x + c over 256 MiB on all devices, median). Memory per sample:
XLA's memory analysis of the compiled program (arguments + outputs + temporaries of one device's
share) over the samples it holds, beside the state itself (N_s complex per sample).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent

N_ATOMS, G, SAMPLES, DT = 256, 16, 64, 0.02
STEPS = {("wow", "float32"): 40, ("wow", "float64"): 20, ("frozen", "float32"): 80, ("frozen", "float64"): 40}
POINTS = [(d, t) for t in ("float32", "float64") for d in ("wow", "frozen")]


def programs(points, repeats):
    """Compile each (dynamics, dtype) point of the importable wow; returns name -> run() and
    name -> info (rate denominators, memory)."""
    import jax

    import wow

    wow.devices.use_cpu_cores(None)
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    from wow import lattice as L
    from wow.ensemble import initial_packet, program_of
    from wow.propagate import propagate

    devs = jax.devices()
    mesh = Mesh(np.array(devs), ("s",))
    runs, info = {}, {}
    for dyn, dtype in points:
        steps = STEPS[dyn, dtype]
        cfg = wow.Config(chain=wow.Chain(N=N_ATOMS, boundary="ring"), electron=wow.Continuum(V0=2.0, w=0.5, g=G, sigma=25.0),
                         dynamics=dyn, dtype=dtype, dt=DT, duration=steps * DT, n_frames=1, check_inside=False)
        prog, inp = program_of(cfg)
        real = jnp.float32 if dtype == "float32" else jnp.float64
        keys = jax.random.split(jax.random.PRNGKey(0), SAMPLES)
        lat = jax.vmap(lambda k: L.to_sites(cfg.chain, L.sample_modes(k, cfg.chain, 300.0, "classical", real)))(keys)
        if dyn == "frozen":
            lat = L.SiteState(lat.u, jnp.zeros_like(lat.v))
        psi0 = initial_packet(cfg)
        ns = prog.model.grid.n_s

        def one(lat, inp, prog=prog, psi0=psi0, ns=ns):
            S = lat.u.shape[0]
            return propagate(prog, inp, jnp.broadcast_to(psi0, (S, ns)), lat, jnp.zeros((S,), inp.dt.dtype))[0]

        f = jax.jit(jax.shard_map(one, mesh=mesh, in_specs=(P("s"), P()), out_specs=P("s"), check_vma=False))
        lat = jax.block_until_ready(jax.device_put(lat, NamedSharding(mesh, P("s"))))
        t0 = time.perf_counter()
        c = f.lower(lat, inp).compile()
        psi = np.asarray(jax.block_until_ready(c(lat, inp)))
        compile_s = time.perf_counter() - t0
        m = c.memory_analysis()
        per_dev = SAMPLES // len(devs)
        mem = (m.argument_size_in_bytes + m.output_size_in_bytes + m.temp_size_in_bytes) / per_dev
        name = f"{dyn}/{dtype}"
        runs[name] = (lambda c=c, lat=lat, inp=inp: jax.block_until_ready(c(lat, inp)))
        info[name] = dict(work=SAMPLES * ns * steps, steps=steps, ns=ns, mem=mem, compile=compile_s,
                          state=ns * (8 if dtype == "float32" else 16), cells=len(getattr(prog.model.grid, "cells", range(2 * prog.model.grid.reach + 1))),
                          devices=len(devs), norm=float(np.max(np.abs(np.sum(np.abs(psi) ** 2, -1) - 1))))
    return runs, info


def time_round(runs, repeats):
    out = {}
    for name, f in runs.items():
        ts = []
        for _ in range(repeats):
            t0 = time.perf_counter()
            f()
            ts.append(time.perf_counter() - t0)
        out[name] = ts
    return out


def numpy_seconds_per_step(n_s, steps, dtype):
    """Seconds per Strang step of the numpy baseline (moving lattice), timed in a fresh child process:
    inside this (JAX) process the same numpy code ran 4-5x slower (2.2-2.5 M point·steps/s in
    float32 against 11-14 in a fresh process; cause not found), which would flatter the ratio."""
    out = subprocess.run([sys.executable, str(HERE / "numpy_continuum.py"), "--n-grid", str(n_s), "--samples", str(SAMPLES),
                          "--steps", str(steps), "--dtype", dtype, "--moving"], capture_output=True, text=True, check=True).stdout
    return 1.0 / float(out.split(":")[1].split("steps/s")[0])


def worker(points, repeats):
    """Child process: compile, report info, then time one round per 'go' line on stdin."""
    runs, info = programs(points, repeats)
    print(json.dumps({"info": info}), flush=True)
    for line in sys.stdin:
        if line.strip() != "go":
            break
        print(json.dumps({"times": time_round(runs, repeats)}), flush=True)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--before", help="git ref of the 'before' code (timed in a child process, interleaved)")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--repeats", type=int, default=2)
    ap.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.worker:
        return worker(POINTS, args.repeats)
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    child = tmp = None
    if args.before:
        tmp = tempfile.TemporaryDirectory(prefix="wow-before-")
        arch = subprocess.run(["git", "archive", args.before, "wow"], cwd=HERE.parent, capture_output=True, check=True).stdout
        subprocess.run(["tar", "-x", "-C", tmp.name], input=arch, check=True)
        env = {**os.environ, "PYTHONPATH": tmp.name}
        child = subprocess.Popen([sys.executable, __file__, "--worker", "--repeats", str(args.repeats)], cwd=tmp.name,
                                 env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        before_info = json.loads(child.stdout.readline())["info"]
    runs, info = programs(POINTS, args.repeats)
    import jax
    import jax.numpy as jnp

    import throughput

    env = throughput.environment()
    bw = {dt: throughput.copy_bandwidth(jnp.float32 if dt == "float32" else jnp.float64) for dt in ("float32", "float64")}
    times = {"after": {k: [] for k in runs}, "before": {k: [] for k in runs}, "numpy": {dt: [] for dt in bw}}
    np_steps = {"float32": 6, "float64": 4}
    n_s = N_ATOMS * G
    for r in range(args.rounds):
        if child:
            child.stdin.write("go\n")
            child.stdin.flush()
            for k, ts in json.loads(child.stdout.readline())["times"].items():
                times["before"][k] += ts
        for k, ts in time_round(runs, args.repeats).items():
            times["after"][k] += ts
        for dt in bw:
            times["numpy"][dt].append(numpy_seconds_per_step(n_s, np_steps[dt], dt))
        print(f"round {r + 1}/{args.rounds} done", flush=True)
    if child:
        child.stdin.write("stop\n")
        child.stdin.flush()
        child.wait()
    rate = lambda work, ts: (work / np.median(ts) / 1e6, work / np.max(ts) / 1e6, work / np.min(ts) / 1e6)
    rows = []
    for name, inf in info.items():
        dyn, dt = name.split("/")
        B = 16 if dt == "float32" else 32
        np_rate = n_s * SAMPLES / np.median(times["numpy"][dt]) / 1e6
        a = rate(inf["work"], times["after"][name])
        b = rate(inf["work"], times["before"][name]) if child else None
        rows.append(dict(dyn=dyn, dtype=dt, steps=inf["steps"], after=a, before=b, numpy=np_rate, B=B,
                         roof=a[0] * 1e6 * B / bw[dt][0], mem=inf["mem"], state=inf["state"], compile=inf["compile"],
                         devices=inf["devices"], cells=inf["cells"], norm=inf["norm"]))
    print(" | ".join(env.values()))
    for dt, (m, lo, hi) in bw.items():
        print(f"copy bandwidth {dt}: {m / 1e9:.1f} GB/s (range {lo / 1e9:.1f}-{hi / 1e9:.1f})")
    for r in rows:
        bef = f"before {r['before'][0]:6.1f}  " if r["before"] else ""
        print(f"{r['dyn']:6s} {r['dtype']}: {bef}after {r['after'][0]:6.1f} M pt·steps/s  numpy (moving) {r['numpy']:5.1f}  "
              f"x{r['after'][0] / r['numpy']:.1f}  roofline {100 * r['roof']:.1f}%  memory/sample {r['mem'] / 1024:.0f} KiB")
    if args.no_write:
        return
    cmd = "python benchmarks/continuum_core.py " + " ".join(sys.argv[1:] if argv is None else argv)
    lines = [f"\n## {env['date']} — `{cmd}` (density-density model, the library's path)\n",
             f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}",
             *(f"- copy bandwidth {dt}: {m / 1e9:.1f} GB/s read+write (range {lo / 1e9:.1f}-{hi / 1e9:.1f})"
               for dt, (m, lo, hi) in bw.items()),
             f"- workload: ring N = {N_ATOMS}, g = {G} (N_s = {n_s}), w = 0.5 Å, V0 = 2 eV, window of "
             f"{rows[0]['cells']} cells ({rows[0]['cells']} exponentials per point and step for 'wow'), {SAMPLES} samples "
             f"on {rows[0]['devices']} devices, 300 K classical, dt = {DT} fs; calls alternated: {args.rounds} rounds x "
             f"{args.repeats} calls" + (f"; before = git {args.before} (child process)" if child else ""),
             "- numpy: benchmarks/numpy_continuum.py, moving lattice (V rebuilt every step, cos/sin phase), single-threaded, "
             "in a fresh child process in the same rounds",
             "",
             "| dynamics | dtype | steps | before: M pt·steps/s [min, max] | after: M pt·steps/s [min, max] | after/before | "
             "numpy moving M/s | after/numpy | B/pt·step | roofline | memory/sample (XLA) | state/sample | compile s |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    f = lambda x: f"{x[0]:.1f} [{x[1]:.1f}, {x[2]:.1f}]" if x else "—"
    for r in rows:
        ratio = f"{r['after'][0] / r['before'][0]:.2f}" if r["before"] else "—"
        lines.append(f"| {r['dyn']} | {r['dtype']} | {r['steps']} | {f(r['before'])} | {f(r['after'])} | {ratio} | "
                     f"{r['numpy']:.1f} | {r['after'][0] / r['numpy']:.1f}x | {r['B']} | {100 * r['roof']:.1f}% | "
                     f"{r['mem'] / 1024:.0f} KiB | {r['state'] / 1024:.0f} KiB | {r['compile']:.2f} |")
    with open(args.out, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
