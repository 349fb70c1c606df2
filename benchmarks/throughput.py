"""Throughput of the propagator core: sample*site*steps per second, against a vectorised numpy
baseline and the device's memory roofline; compile time, peak memory and compile-once checks.

    python benchmarks/throughput.py            # representative subset, ~3-5 min on a 2-core CPU
    python benchmarks/throughput.py --full     # N 256..16384 x samples 1..4096 (long)
    python benchmarks/throughput.py --dynamics wow --dtype float32 --N 4096 --samples 64

What is timed: the jitted core ``wow.propagate.propagate`` on blocks of samples (samples first,
sites last: the layout wow.run uses), called on ready inputs, ``block_until_ready``; compilation is done first (AOT) and reported apart; each point
is repeated and the median and the spread (min, max) are reported. Thermal samples come from
``wow.lattice`` (300 K classical, the default copper-like chain, alpha = 2 eV/Å, D = 0, open chain,
no recoil, dt = 0.02 fs).

Devices: on a CPU the run is split into one JAX device per core (``--cpu-devices``, default all
available cores; wow.devices.use_cpu_cores) and the samples are divided among them, as wow.run does.
The numpy baseline (single-threaded by nature) is timed in a child process of its own.

Roofline: the device's copy bandwidth B (bytes read + written per second by a jitted x -> x + c on
arrays far larger than the last-level cache, split over all devices; the median of the repeats)
over the bytes one sample*site*step must move at the
least (the state read and written once per step): frozen 2 x complex ψ + the step's rotation
coefficients (2 reals per site) = 24 B (float32) / 48 B (float64); wow and ehrenfest 2 x complex ψ
+ 2 x (u, v) (for wow order 2: u and its step increment d) = 32 B / 64 B. Where the whole working set fits in the cache the fraction can exceed 1.

Each run appends a section to benchmarks/RESULTS.md (device, versions, date, git commit, load).
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import numpy_baseline  # noqa: E402
import wow  # noqa: E402
from wow import lattice as L  # noqa: E402
from wow.dynamics import DYNAMICS  # noqa: E402
from wow.ensemble import bytes_per_sample, initial_packet, program_of  # noqa: E402
from wow.propagate import propagate  # noqa: E402

BYTES = {"frozen": 24, "wow": 32, "ehrenfest": 32}  # per sample*site*step, float32; x2 for float64
DYNAMICS = tuple(d for d in DYNAMICS if d != "quantum")  # the quantum lattice is timed on its own terms
DEFAULT_POINTS = [(4096, 64), (256, 1), (1024, 1024), (16384, 256)]
FULL_N = [256, 1024, 4096, 16384]
FULL_S = [1, 16, 64, 256, 1024, 4096]
#: Default bytes a block's state may take on a CPU (``cache_block``), per dtype. float64: 8 MB picks
#: 8 samples per block at N = 4096 (32 MB picked all 32 per device). Measured (2026-12-02, 4096 x 64,
#: 2 cores, M sample·site·steps/s at blocks 32 / 16 / 8, one sitting): wow float64 194-219 / 250-265 /
#: 239-276, Ehrenfest float64 86 / 112 / 111, frozen float64 578 / 669 / 667 (in a later sitting 612 at
#: 32 against 570 at 8: within the noise); the core at 696105a gains alike (wow float64 168-180 /
#: 212-219 / 210-214). float32 keeps 32 MB: at block 16 frozen ran 590 against 1282 and Ehrenfest
#: 135 against 163 in the same sitting (wow 388 against 400).
#: The default stays 32 MB for both: wow.run runs a chunk of ~30 float64 samples per device as one
#: block (ensemble.CPU_CACHE_BYTES; smaller chunks cost more in per-chunk overhead than they gain:
#: wow.run wow float64 4096 x 64, chunk 16 / 32 / default 99 / 136 / 130 M/s), so this benchmark
#: measures the core as wow.run runs it; `--cache 8e6` gives the blocked figure.
CACHE_BYTES = {"float32": 32e6, "float64": 32e6}


def config(dynamics, dtype, N, steps, dt=0.02, order=2):
    return wow.Config(chain=wow.Chain(N=N), dynamics=dynamics, dtype=dtype, dt=dt, duration=steps * dt,
                      n_frames=1, check_inside=False, order=order)


def inputs(cfg, S, seed=0):
    """Thermal lattices of S samples in the block layout: SiteState of (S, N)."""
    real = jnp.float32 if cfg.dtype == "float32" else jnp.float64
    keys = jax.random.split(jax.random.PRNGKey(seed), S)
    lat = jax.vmap(lambda k: L.to_sites(cfg.chain, L.sample_modes(k, cfg.chain, 300.0, "classical", real)))(keys)
    if cfg.dynamics == "frozen":
        lat = L.SiteState(lat.u, jnp.zeros_like(lat.v))
    return jax.block_until_ready(lat)


def core_program(cfg, block=None, n_dev=1):
    """The jitted core on blocks of samples (samples first, sites last); with ``block`` (< samples
    per device) the samples run in blocks of that many, one after the other (lax.map over blocks),
    so that one block's state stays in the cache for all its steps; with n_dev > 1 the samples are
    split over the first n_dev devices (shard_map: each device runs its own share, blocked, with no
    communication). Samples are independent: the numbers are the same either way."""
    program, inp = program_of(cfg)
    return sharded_program(program, inp, initial_packet(cfg), block, n_dev), cfg


def sharded_program(program, inp, psi0, block=None, n_dev=1):
    """The jitted core of a given ``program`` and its inputs (wow.ensemble.program_of, perhaps with a
    model changed for an A/B) from the packet psi0 (N,), blocked and split over devices as
    ``core_program`` says; the jitted function is named 'blocked' (benchmarks/loop_simd.py finds its
    HLO dump by that name)."""
    N = psi0.shape[-1]

    def one(lat):
        S = lat.u.shape[0]
        psi = jnp.broadcast_to(psi0, (S, N))
        return propagate(program, inp, psi, lat, jnp.zeros((S,), inp.dt.dtype))[0]

    def blocked(lat):
        S = lat.u.shape[0]
        if not block or block >= S:
            return one(lat)
        lead = jax.tree_util.tree_map(lambda x: x.reshape(S // block, block, N), lat)
        return jax.lax.map(one, lead).reshape(S, N)

    if n_dev == 1:
        return jax.jit(blocked)
    from jax.sharding import Mesh, PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:n_dev]), ("samples",))
    return jax.jit(jax.shard_map(blocked, mesh=mesh, in_specs=P("samples"), out_specs=P("samples"),
                                 check_vma=False))


def cache_block(S, N, dtype, cache_bytes):
    """Samples per block so that a block's state (ψ, u, v and the step's temporaries, ~4x the
    state) fits in cache_bytes; None when all samples fit or on a GPU."""
    if jax.devices()[0].platform != "cpu" or not cache_bytes:
        return None
    per_sample = N * (16 if dtype == "float32" else 32) * 4
    b = max(1, int(cache_bytes // per_sample))
    if b >= S:
        return None
    while S % b:
        b -= 1
    return b


def time_calls(f, args, repeats, budget_s=6.0):
    """Wall times of ``repeats`` calls (at least 3; fewer than ``repeats`` once budget_s is spent)."""
    ts = []
    while len(ts) < 3 or (len(ts) < repeats and sum(ts) < budget_s):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return np.array(ts)


def copy_bandwidth(dtype, nbytes=256 * 2**20, repeats=15):
    """Bytes read + written per second by a jitted x -> x + c on an array of nbytes split over all
    devices (so every core copies, as every core propagates), its buffer donated (no fresh output
    pages are faulted in): (median, worst, best) of the repeats. The roofline fraction compares
    medians with medians (a rate's median against the bandwidth's median): on a shared machine the
    bandwidth's best repeat spikes (measured 50 to 88 GB/s between runs of this 2-core VM) far more
    than its median does (45 to 60 GB/s)."""
    from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

    devs = jax.devices()
    n = nbytes // jnp.dtype(dtype).itemsize // len(devs) * len(devs)
    sh = NamedSharding(Mesh(np.array(devs), ("x",)), P("x"))
    f = jax.jit(lambda x, c: x + c, donate_argnums=0, out_shardings=sh)
    c = jnp.asarray(1e-7, dtype)
    x = jax.block_until_ready(f(jax.device_put(jnp.ones((n,), dtype), sh), c))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x = jax.block_until_ready(f(x, c))
        ts.append(time.perf_counter() - t0)
    del x
    ts = np.array(ts)
    nb = 2 * n * jnp.dtype(dtype).itemsize
    return nb / np.median(ts), nb / ts.max(), nb / ts.min()


def steps_for(S, N, rate_guess, target_s):
    return int(np.clip(target_s * rate_guess / (S * N), 16, 2000))


def bench_point(dynamics, dtype, N, S, args):
    guess = {"frozen": 4e8, "wow": 1.5e8, "ehrenfest": 8e7}.get(dynamics, 1e7) * (0.5 if dtype == "float64" else 1)
    steps = steps_for(S, N, guess, args.target)
    cfg = config(dynamics, dtype, N, steps, order=args.order)
    lat = inputs(cfg, S)
    n_dev = len(jax.devices()) if S % len(jax.devices()) == 0 else 1
    cache = CACHE_BYTES[dtype] if args.cache is None else args.cache
    block = cache_block(S // n_dev, N, dtype, cache) if args.block else None
    f, _ = core_program(cfg, block, n_dev)
    if n_dev > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        lat = jax.device_put(lat, NamedSharding(Mesh(np.array(jax.devices()), ("samples",)), P("samples")))
    t0 = time.perf_counter()
    compiled = wow.devices.compile_for(f.lower(lat), jax.devices())
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(compiled(lat))  # warm-up
    ts = time_calls(compiled, (lat,), args.repeats)
    work = S * N * cfg.steps_per_frame
    row = dict(dynamics=dynamics if args.order == 2 else f"{dynamics} (order 4)", dtype=dtype, N=N, S=S,
               n_dev=n_dev, block=block or S // n_dev, steps=cfg.steps_per_frame,
               compile_s=compile_s,
               rate=work / np.median(ts), rate_lo=work / ts.max(), rate_hi=work / ts.min(), numpy=None)
    if args.numpy and args.order == 2 and dynamics in ("frozen", "wow") and S * N <= 2**22:
        npdt = np.float32 if dtype == "float32" else np.float64
        program, _ = program_of(cfg)
        n_terms = program.backend.free.n_terms if dynamics == "wow" else 1
        row["numpy"] = numpy_rate(np.tile(np.asarray(initial_packet(cfg)), (S, 1)), np.asarray(lat.u, npdt),
                                  np.asarray(lat.v, npdt), t0=npdt(1.0), alpha=npdt(2.0), dt=npdt(cfg.dt),
                                  omega2=npdt(cfg.chain.spring / cfg.chain.mass_ev), n_terms=n_terms, dynamics=dynamics,
                                  steps=max(2, steps // 4), repeats=max(3, args.repeats // 2))
    return row


def numpy_rate(psi, u, v, *, repeats, **kw):
    """The numpy baseline's rate, timed in a child process of its own: numpy is single-threaded,
    and JAX's CPU threads in this process would otherwise share the cores with it."""
    with tempfile.TemporaryDirectory() as d:
        path = Path(d) / "inputs.npz"
        np.savez(path, psi=psi, u=u, v=v, **kw)
        out = subprocess.run([sys.executable, str(HERE / "numpy_baseline.py"), str(path), str(repeats)],
                             capture_output=True, text=True, check=True)
    return float(out.stdout.split()[-1])


def memory_table(dtypes):
    """Peak device bytes per sample*site of a whole ensemble chunk (wow.ensemble._chunk: sampling,
    propagation, tallies), from XLA's memory analysis of the compiled program, against the estimate
    wow.ensemble.bytes_per_sample."""
    from wow import ensemble as E

    rows = []
    for dtype in dtypes:
        for dynamics in ("frozen", "wow"):
            for N, S in ((4096, 64),):
                cfg = wow.Config(chain=wow.Chain(N=N), dynamics=dynamics, dtype=dtype, duration=2.0, n_frames=2,
                                 check_inside=False)
                program, inp = program_of(cfg)
                psi0 = initial_packet(cfg)
                real = jnp.float32 if dtype == "float32" else jnp.float64
                keys = jax.random.split(jax.random.PRNGKey(0), S)
                groups = jnp.zeros((S,), jnp.int32)
                c = E._chunk.lower({"keys": keys, "given": {}}, groups, jnp.asarray(300.0, real), jnp.asarray(0.0, real),
                                   jnp.asarray(cfg.k0, real), psi0, inp, program=program, statistics="classical",
                                   fixed_cm=False, n_groups=1, keep_final=False).compile()
                m = c.memory_analysis()
                if m is None:
                    continue
                peak = m.temp_size_in_bytes + m.argument_size_in_bytes + m.output_size_in_bytes
                rows.append(dict(dtype=dtype, dynamics=dynamics, N=N, S=S, measured=peak / (S * N),
                                 estimate=bytes_per_sample(cfg) / N))
    return rows


def compile_checks():
    """A T sweep through wow.run reuses one executable; an N sweep compiles once per N. Returns
    lines of text: compile and run seconds of each run()."""
    out = []
    base = wow.Config(chain=wow.Chain(N=256), duration=4.0, n_frames=2, check_inside=False)
    import dataclasses

    def once(cfg):
        r = wow.run(cfg, 4)
        return r.compile_s, r.run_s

    compiles = []
    for T in (100.0, 200.0, 300.0):
        c, r = once(dataclasses.replace(base, temperature=T))
        compiles.append(c)
        out.append(f"T = {T:5.0f} K, N = 256: compile {c:.3f} s, run {r:.3f} s")
    for N in (512, 1024):
        for T in (100.0, 300.0):
            c, r = once(dataclasses.replace(base, chain=wow.Chain(N=N), temperature=T))
            compiles.append(c)
            out.append(f"T = {T:5.0f} K, N = {N:4d}: compile {c:.3f} s, run {r:.3f} s")
    slow = sum(c > 0.1 * max(compiles) for c in compiles)
    out.append(f"{slow} of {len(compiles)} runs compiled (> 10% of the slowest compile; expected 3, "
               "one per N: T is traced, N fixes the shapes)")
    return out


def bandwidths(dtypes):
    """{dtype name: (median, min, max)} copy bandwidth (bytes/s) for each of dtypes ('float32' or
    'float64'), each printed as measured: every benchmark records the bandwidth of its own run."""
    out = {}
    for dt in dtypes:
        b, lo, hi = out[dt] = copy_bandwidth(jnp.float32 if dt == "float32" else jnp.float64)
        print(f"copy bandwidth ({dt}): {b / 1e9:.1f} GB/s (min {lo / 1e9:.1f}, max {hi / 1e9:.1f})", flush=True)
    return out


def environment():
    try:
        commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=HERE, capture_output=True,
                                text=True).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "wow", "benchmarks"], cwd=HERE.parent,
                               capture_output=True, text=True).stdout.strip()
        commit += " (+ uncommitted changes)" if dirty else ""
    except OSError:
        commit = "?"
    d = jax.devices()[0]
    cpu = ""
    try:
        cpu = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return {
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "device": f"{d.platform}: {d.device_kind} x {len(jax.devices())} ({cpu}, {os.cpu_count()} cores)",
        "versions": f"jax {jax.__version__}, jaxlib {jax.lib.__version__ if hasattr(jax.lib, '__version__') else '?'}, "
                    f"numpy {np.__version__}, python {platform.python_version()}",
        "commit": commit,
        "load": "load average %.2f %.2f %.2f" % os.getloadavg(),
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dynamics", default=",".join(DYNAMICS), help=f"comma list of {DYNAMICS}")
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--N", default=None, help="comma list of chain sizes (with --samples: their grid)")
    ap.add_argument("--samples", default=None, help="comma list of sample counts")
    ap.add_argument("--full", action="store_true", help="the whole grid N 256..16384 x samples 1..4096")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--order", type=int, default=2, choices=(2, 4),
                    help="splitting order (rates count steps; an order-4 step is 3 Strang sub-steps)")
    ap.add_argument("--target", type=float, default=0.25, help="seconds per timed call (sets steps)")
    ap.add_argument("--no-numpy", dest="numpy", action="store_false")
    ap.add_argument("--no-block", dest="block", action="store_false",
                    help="on a CPU, do not run samples in cache-sized blocks")
    ap.add_argument("--cache", type=float, default=None,
                    help="bytes a block's state may take (CPU; default per dtype: CACHE_BYTES)")
    ap.add_argument("--no-extras", dest="extras", action="store_false", help="skip memory and compile checks")
    ap.add_argument("--max-bytes", type=float, default=4e9, help="skip points whose state exceeds this")
    ap.add_argument("--cpu-devices", type=int, default=None,
                    help="on a CPU, run as this many JAX devices, samples split over them (default: one per core)")
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)
    if args.cpu_devices is not None and args.cpu_devices < 1:
        ap.error(f"--cpu-devices={args.cpu_devices}: allowed an integer >= 1")
    wow.devices.use_cpu_cores(args.cpu_devices)  # before the first JAX computation

    dyns = [d for d in args.dynamics.split(",") if d]
    for d in dyns:
        if d not in DYNAMICS:
            ap.error(f"--dynamics {d!r}: allowed {DYNAMICS}")
    dtypes = args.dtype.split(",")
    if args.full:
        points = [(N, S) for N in FULL_N for S in FULL_S]
    elif args.N or args.samples:
        Ns = [int(x) for x in (args.N or "4096").split(",")]
        Ss = [int(x) for x in (args.samples or "64").split(",")]
        points = [(N, S) for N in Ns for S in Ss]
    else:
        points = DEFAULT_POINTS

    env = environment()
    print(" | ".join(env.values()), flush=True)
    bw = bandwidths(dtypes)

    rows = []
    for dynamics in dyns:
        for dtype in dtypes:
            for N, S in points:
                state = S * N * (2 if dtype == "float32" else 4) * 4 * 4
                if state > args.max_bytes:
                    print(f"skip {dynamics} {dtype} N={N} S={S}: ~{state / 1e9:.1f} GB")
                    continue
                r = bench_point(dynamics, dtype, N, S, args)
                b = BYTES.get(dynamics, 32) * (2 if dtype == "float64" else 1)
                r["bytes"] = b
                r["roof"] = r["rate"] * b / bw[dtype][0]
                rows.append(r)
                npx = f"{r['rate'] / r['numpy']:6.1f}x numpy ({r['numpy'] / 1e6:.0f} M/s)" if r["numpy"] else ""
                print(f"{dynamics:9s} {dtype} N={N:6d} S={S:5d} dev={r['n_dev']} block={r['block']:5d} steps={r['steps']:5d}: "
                      f"{r['rate'] / 1e6:8.1f} M/s [{r['rate_lo'] / 1e6:.1f}, {r['rate_hi'] / 1e6:.1f}]  "
                      f"roofline {100 * r['roof']:5.1f}% of {bw[dtype][0] / b / 1e6:.0f} M/s  "
                      f"compile {r['compile_s']:.2f} s  {npx}", flush=True)

    mem, comp = [], []
    if args.extras:
        mem = memory_table(dtypes)
        for m in mem:
            print(f"memory {m['dtype']} {m['dynamics']} N={m['N']} S={m['S']}: {m['measured']:.0f} B per "
                  f"sample*site measured, {m['estimate']:.0f} estimated (bytes_per_sample/N)", flush=True)
        comp = compile_checks()
        print("\n".join(comp), flush=True)

    write_results(args.out, env, bw, rows, mem, comp, " ".join(sys.argv[1:]) or "(defaults)")


def write_results(path, env, bw, rows, mem, comp, cmd):
    lines = [f"\n## {env['date']} — `python benchmarks/throughput.py {cmd}`\n",
             f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}"]
    for dt, (b, lo, hi) in bw.items():
        lines.append(f"- copy bandwidth {dt}: {b / 1e9:.1f} GB/s read+write (range {lo / 1e9:.1f}-{hi / 1e9:.1f})")
    lines += ["", "| dynamics | dtype | N | samples | devices | block | steps | M sample·site·steps/s (median) | [min, max] | "
                  "B/sample·site·step | roofline | vs numpy | compile s |",
              "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        npx = f"{r['rate'] / r['numpy']:.1f}x ({r['numpy'] / 1e6:.0f} M/s)" if r["numpy"] else "—"
        lines.append(f"| {r['dynamics']} | {r['dtype']} | {r['N']} | {r['S']} | {r['n_dev']} | {r['block']} | {r['steps']} | {r['rate'] / 1e6:.1f} | "
                     f"[{r['rate_lo'] / 1e6:.1f}, {r['rate_hi'] / 1e6:.1f}] | {r['bytes']} | {100 * r['roof']:.0f}% | "
                     f"{npx} | {r['compile_s']:.2f} |")
    if mem:
        lines += ["", "Peak memory of one ensemble chunk (XLA memory analysis: arguments + outputs + temporaries):", "",
                  "| dtype | dynamics | N | samples | measured B/(sample·site) | bytes_per_sample/N |", "|---|---|---|---|---|---|"]
        lines += [f"| {m['dtype']} | {m['dynamics']} | {m['N']} | {m['S']} | {m['measured']:.0f} | {m['estimate']:.0f} |"
                  for m in mem]
    if comp:
        lines += ["", "Compile once (wow.run, 4 samples, 200 steps):", ""] + [f"- {c}" for c in comp]
    text = "\n".join(lines) + "\n"
    p = Path(path)
    if not p.exists():
        text = ("# Benchmark results\n\nAppended by `python benchmarks/throughput.py` and "
                "`python benchmarks/accuracy.py`; see their docstrings for what is measured.\n") + text
    with open(p, "a") as f:
        f.write(text)
    print(f"appended to {p}")


if __name__ == "__main__":
    main()
