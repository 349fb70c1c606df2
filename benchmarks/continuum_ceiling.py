"""The ceiling of the density-density split-operator step on this machine, measured in one run: how
much of the copy-bandwidth roofline any FFT split-operator step can reach here, and why.

    flock /work/gate.lock flock -x /work/cpu.lock python benchmarks/continuum_ceiling.py

Same workload as benchmarks/continuum_core.py (ring N = 256, g = 16: N_s = 4096 grid points x 64
samples, one JAX device per core, samples sharded over them). It measures, for float32 and float64:

(a) the copy bandwidth (throughput.copy_bandwidth) and the roofline rate BW / B, B = 16 / 32 bytes
    per gridpoint·step (ψ read and written once per step);
(b) the FFT pair alone, ψ~ <- fft(ifft(ψ~)) (the library's unitary wow.models.continuum.fft/ifft)
    over (64, 4096) complex in a fori_loop as in the step, and the least possible step
    ψ~ <- K·fft(P·ifft(ψ~)) (precomputed phases: a frozen lattice, kinetic halves merged); numpy.fft
    (single-threaded) and scipy.fft (workers = cores) doing the same pair, in a fresh child process;
(c) the arithmetic peak of the cores: a jitted chain of fused multiply-adds on a cache-resident array
    and a batched matmul, each per device, all devices at once (flops counted as 2 per FMA); the
    exponential rate (jnp.exp over a cache-resident array); and the flops per gridpoint·step of the
    step, hand-counted (FFT 5 n log2 n per complex transform of length n, i.e. 5 log2 N_s per point)
    beside XLA's own cost analysis of one compiled step;
(d) the full step on the library's path (continuum_core.programs: wow and frozen dynamics).

Then: the fraction of the roofline each reaches and whether the 40% target is above what the
arithmetic peak allows (40% of the roofline x the step's flops per point against the peak).
"""

from __future__ import annotations

import argparse
import json
import math
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
S, NS = 64, 4096
DTYPES = ("float32", "float64")


def numpy_fft_rates(repeats=5):
    """Child process: numpy.fft and scipy.fft pair rates (M gridpoint·steps/s) per dtype."""
    import os

    import scipy.fft as sf

    out = {}
    workers = len(os.sched_getaffinity(0))
    for dt in DTYPES:
        c = np.complex64 if dt == "float32" else np.complex128
        x = (np.random.default_rng(0).normal(size=(S, NS)) + 0j).astype(c)
        for name, pair in (("numpy", lambda x: np.fft.fft(np.fft.ifft(x, norm="ortho"), norm="ortho")),
                           ("scipy", lambda x: sf.fft(sf.ifft(x, norm="ortho", workers=workers), norm="ortho",
                                                      workers=workers))):
            y = pair(x)
            assert y.dtype == c, (name, y.dtype)
            n = 10
            ts = []
            for _ in range(repeats):
                t0 = time.perf_counter()
                for _ in range(n):
                    y = pair(y)
                ts.append(time.perf_counter() - t0)
            out[f"{name}/{dt}"] = S * NS * n / np.median(ts) / 1e6
    return out


def sharded(f, mesh, n_in):
    import jax
    from jax.sharding import PartitionSpec as P

    return jax.jit(jax.shard_map(f, mesh=mesh, in_specs=(P("s"),) + (P(),) * (n_in - 1), out_specs=P("s"),
                                 check_vma=False))


def timed(f, args, repeats):
    import jax

    jax.block_until_ready(f(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts))


def peaks(mesh, real, repeats):
    """(FMA-chain GFLOP/s, matmul GFLOP/s, exp G/s) over all devices at once."""
    import jax
    import jax.numpy as jnp

    D = mesh.devices.size
    # FMA chain: 12 independent arrays (one multi-output loop: 12 chains in flight per element hide
    # the FMA latency), 16 dependent x*a + b per element and iteration, 1024 elements per array and
    # device (cache-resident: no memory traffic). Measured here: 1 array 54/34, 12 arrays 80/51
    # GFLOP/s (float32/float64), the best arrangement tried
    nacc, n, k, iters = 12, 1024, 16, 400
    a, b = jnp.asarray(0.999, real), jnp.asarray(1e-3, real)

    def fma(x):
        def body(_, xs):
            out = []
            for x in xs:
                for _ in range(k):
                    x = x * a + b
                out.append(x)
            return tuple(out)
        return jnp.stack(jax.lax.fori_loop(0, iters, body, tuple(x[:, i] for i in range(nacc))), 1)

    x = jnp.ones((D * 8, nacc, n), real)
    t = timed(sharded(fma, mesh, 1), (x,), repeats)
    g_fma = 2 * k * iters * x.size / t / 1e9
    m = 256
    A = jax.random.normal(jax.random.PRNGKey(0), (D * 4, m, m), real)

    def mm(A):
        return jax.lax.fori_loop(0, 8, lambda _, X: jnp.einsum("bij,bjk->bik", X, A) * 0.05, A)

    t = timed(sharded(mm, mesh, 1), (A,), repeats)
    g_mm = 8 * 2 * m ** 3 * A.shape[0] / t / 1e9
    y = jnp.linspace(-3, 3, D * 8192, dtype=real).reshape(D, -1)

    def ex(y):
        return jax.lax.fori_loop(0, 200, lambda _, z: jnp.exp(z * -0.5 + y), y)

    t = timed(sharded(ex, mesh, 1), (y,), repeats)
    g_exp = 200 * y.size / t / 1e9
    return g_fma, g_mm, g_exp


def fft_pair_rates(mesh, real, repeats, steps=40):
    """(pair, least step) in M gridpoint·steps/s: ψ~ <- fft(ifft(ψ~)) and ψ~ <- K·fft(P·ifft(ψ~))."""
    import jax
    import jax.numpy as jnp

    from wow.models.continuum import fft, ifft

    cplx = jnp.complex64 if real == jnp.float32 else jnp.complex128
    th = jnp.linspace(0, 6.0, NS, dtype=real)
    K = jax.lax.complex(jnp.cos(th), jnp.sin(th))
    P = jax.lax.complex(jnp.cos(th * 0.01), jnp.sin(th * 0.01))
    psi = jnp.broadcast_to(jnp.exp(1j * th).astype(cplx) / math.sqrt(NS), (S, NS))
    pair = sharded(lambda x: jax.lax.fori_loop(0, steps, lambda _, z: fft(ifft(z)), x), mesh, 1)
    least = sharded(lambda x, K, P: jax.lax.fori_loop(0, steps, lambda _, z: K * fft(P * ifft(z)), x), mesh, 3)
    return (S * NS * steps / timed(pair, (psi,), repeats) / 1e6,
            S * NS * steps / timed(least, (psi, K, P), repeats) / 1e6)


def step_cost(dtype):
    """XLA's cost analysis of ONE 'wow' sub-step (potential rebuilt + phase + T/2 V T/2) and one
    frozen sub-step for one sample, per grid point: (flops, transcendentals) for each."""
    import jax
    import jax.numpy as jnp

    import wow
    from wow.ensemble import program_of

    real = jnp.float32 if dtype == "float32" else jnp.float64
    out = {}
    for dyn in ("wow", "frozen"):
        cfg = wow.Config(chain=wow.Chain(N=NS // 16, boundary="ring"), electron=wow.Continuum(V0=2.0, w=0.5, g=16, sigma=25.0),
                         dynamics=dyn, dtype=dtype, dt=0.02, duration=0.02, n_frames=1, check_inside=False)
        prog, inp = program_of(cfg)
        model, mp = prog.model, inp.model
        e = jnp.zeros((1, NS), jnp.complex64 if dtype == "float32" else jnp.complex128)
        u = jnp.zeros((1, NS // 16), real)
        fixed = model.fixed(jnp.asarray(0.02, real), mp, jnp.zeros((1,), real))
        if dyn == "wow":
            f = lambda e, u: model.advance(e, model.layers({"u": u}, 0.02, mp), None, fixed)
            args = (e, u)
        else:  # the merged frozen step: full kinetic phase x fft(P x ifft)
            lay = model.layers({"u": u}, 0.02, mp)
            f = lambda e, P: fixed * fixed * fft_(P * ifft_(e))
            args = (e, lay.potential)
        ca = jax.jit(f).lower(*args).compile().cost_analysis()
        ca = ca[0] if isinstance(ca, list) else ca
        out[dyn] = (ca.get("flops", float("nan")) / NS, ca.get("transcendentals", 0.0) / NS)
    return out


def fft_(x):
    from wow.models.continuum import fft
    return fft(x)


def ifft_(x):
    from wow.models.continuum import ifft
    return ifft(x)


def hand_flops(cells):
    """Flops per gridpoint·step as the code does them (count in the comments); exp counted apart."""
    fft_pair = 2 * 5 * math.log2(NS)  # 5 n log2 n per complex transform, two transforms
    scale = 2 * 2  # two 'ortho' scalings (complex x real: 2 flops), fused into the neighbours
    kinetic = 2 * 6  # two half kinetic phases, complex x complex (4 mul + 2 add)
    # potential, per window cell: x = t - (y - g p) (1), x² (1), x²β (1), |x| <= cut (1), V0·exp (1),
    # select (1), accumulate (1): 7 flops + 1 exponential
    window = 7 * cells
    # rational phase: y (2), y² (1), n (2), d (2), d², n², sum (3), 1/(.) (1), cos (2), sin (3),
    # complex x real-pair multiply (6)
    rational = 22
    return {"fft_pair": fft_pair, "least": fft_pair + scale + 6 + 6,
            "wow": fft_pair + scale + kinetic + window + rational, "exp_wow": cells}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=2, help="timed rounds of the library's steps (continuum_core)")
    ap.add_argument("--numpy-worker", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    ap.add_argument("--no-write", action="store_true")
    args = ap.parse_args(argv)
    if args.numpy_worker:
        print(json.dumps(numpy_fft_rates(args.repeats)))
        return
    sys.path.insert(0, str(HERE.parent))
    sys.path.insert(0, str(HERE))
    npr = json.loads(subprocess.run([sys.executable, __file__, "--numpy-worker"], capture_output=True, text=True,
                                    check=True).stdout)
    import continuum_core as cc

    runs, info = cc.programs(cc.POINTS, 2)  # also sets up the devices and x64
    import jax
    import jax.numpy as jnp
    from jax.sharding import Mesh

    import throughput

    env = throughput.environment()
    mesh = Mesh(np.array(jax.devices()), ("s",))
    mesh1 = Mesh(np.array(jax.devices()[:1]), ("s",))
    res = {}
    for dt in DTYPES:
        real = jnp.float32 if dt == "float32" else jnp.float64
        bw = throughput.copy_bandwidth(real)
        pair, least = fft_pair_rates(mesh, real, args.repeats)
        fma, mm, ex = peaks(mesh, real, args.repeats)
        # the same on one device (one core): do the two cores scale (or share one physical core)?
        pair1, _ = fft_pair_rates(mesh1, real, args.repeats)
        fma1 = peaks(mesh1, real, args.repeats)[0]
        res[dt] = dict(bw=bw, pair=pair, least=least, fma=fma, mm=mm, exp=ex, cost=step_cost(dt), pair1=pair1, fma1=fma1)
    times = {k: [] for k in runs}
    for _ in range(args.rounds):
        for k, ts in cc.time_round(runs, 2).items():
            times[k] += ts
    hf = hand_flops(info["wow/float32"]["cells"])
    lines = []
    head = ("| dtype | B/pt·step | copy BW GB/s | roofline M pt·steps/s | FMA peak GFLOP/s | matmul GFLOP/s | exp G/s | "
            "numpy FFT pair | scipy FFT pair (2 workers) | jnp FFT pair | least step K·fft(P·ifft) | frozen step | "
            "wow step | 1 core: FMA GFLOP/s, jnp FFT pair | flops/pt·step (hand: pair, wow) | XLA flops/pt·step (wow, frozen) | 40% roofline needs GFLOP/s |")
    lines += [head, "|" + "---|" * (head.count("|") - 1)]
    summary = []
    for dt in DTYPES:
        r = res[dt]
        B = 16 if dt == "float32" else 32
        roof = r["bw"][0] / B / 1e6
        frac = lambda m: f"{m:.0f} ({100 * m / roof:.1f}%)"
        med = lambda k: info[k]["work"] / np.median(times[k]) / 1e6
        fz, ww = med(f"frozen/{dt}"), med(f"wow/{dt}")
        need = 0.4 * roof * 1e6 * hf["least"] / 1e9
        peak = max(r["fma"], r["mm"])
        lines.append(f"| {dt} | {B} | {r['bw'][0] / 1e9:.1f} | {roof:.0f} | {r['fma']:.1f} | {r['mm']:.1f} | {r['exp']:.2f} | "
                     f"{frac(npr['numpy/' + dt])} | {frac(npr['scipy/' + dt])} | {frac(r['pair'])} | {frac(r['least'])} | "
                     f"{frac(fz)} | {frac(ww)} | {r['fma1']:.1f}, {r['pair1']:.0f} | {hf['fft_pair']:.0f}, {hf['wow']:.0f} + {hf['exp_wow']} exp | "
                     f"{r['cost']['wow'][0]:.0f} + {r['cost']['wow'][1]:.0f} transc., {r['cost']['frozen'][0]:.0f} | "
                     f"{need:.0f} ({need / peak:.2f} x peak) |")
        summary.append(dict(dt=dt, roof=roof, pair=r["pair"], least=r["least"], peak=peak, need=need,
                            peak_rate=peak * 1e9 / hf["least"] / 1e6, fz=fz, ww=ww))
    print(" | ".join(env.values()))
    print("\n".join(lines))
    for s in summary:
        print(f"{s['dt']}: FFT pair {100 * s['pair'] / s['roof']:.1f}% of roofline, least step "
              f"{100 * s['least'] / s['roof']:.1f}%, arithmetic-peak bound on the least step "
              f"{100 * s['peak_rate'] / s['roof']:.0f}%; 40% needs {s['need']:.0f} GFLOP/s against a peak of {s['peak']:.0f}")
    if args.no_write:
        return
    cmd = "python benchmarks/continuum_ceiling.py " + " ".join(sys.argv[1:] if argv is None else argv)
    out = [f"\n## {env['date']} — `{cmd}` (the density-density step's ceiling on this machine)\n",
           f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}",
           f"- workload: N_s = {NS} grid points x {S} samples, rates in M gridpoint·steps/s (fraction of the copy "
           "roofline); numpy/scipy in a fresh child process; the frozen/wow steps are continuum_core's programs "
           f"(library path), {args.rounds} rounds x 2 calls", "", *lines]
    with open(args.out, "a") as fh:
        fh.write("\n".join(out) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
