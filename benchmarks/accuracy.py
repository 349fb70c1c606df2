"""Accuracy per cost: what it takes to get the backscattered probability P_b within 1e-4 of the
exact value, for the default wow.Config (copper-like open chain, N = 256, 300 K classical,
alpha = 2 eV/Å, wow lattice, 20 fs), Strang (order 2) against the fourth-order composition
(order 4), and against a general-purpose adaptive JAX solver (dynamiqs sesolve, Tsit5) if it is
installed.

    python benchmarks/accuracy.py                 # ~2 min on a 2-core CPU
    python benchmarks/accuracy.py --samples 16 --no-dynamiqs

Error: max over the samples of |P_b - P_b,ref|, P_b,ref from order 4 at dt = 0.0025 fs (checked
against order 4 at 0.005 fs and against Richardson-extrapolated Strang). Cost: the wall time
(best of the repeats: the machine may be shared) of the jitted, vmapped core for the
samples (compile excluded), and the number of Strang sub-steps.
Runs in float64. Appends a section to benchmarks/RESULTS.md.
"""

from __future__ import annotations

import argparse
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
from throughput import environment  # noqa: E402
from wow import lattice as L  # noqa: E402
from wow.electron import k_grid, momentum_amplitudes  # noqa: E402
from wow.ensemble import initial_packet, program_of  # noqa: E402
from wow.propagate import COMPOSITIONS, propagate  # noqa: E402
from wow.units import HBAR  # noqa: E402

TOL = 1e-4
STRANG_DTS = (0.1, 0.05, 0.04, 0.025, 0.02, 0.01, 0.005)
ORDER4_DTS = (0.4, 0.2, 0.1, 0.08, 0.0625, 0.05, 0.025)


def workload(samples, dynamics="wow"):
    base = wow.Config(dynamics=dynamics)  # the defaults: N = 256, 300 K, alpha = 2 eV/Å, 20 fs
    keys = jax.random.split(jax.random.PRNGKey(7), samples)
    modes = jax.vmap(lambda k: L.sample_modes(k, base.chain, base.temperature, base.statistics))(keys)
    return base, modes


def p_back(psi, k):
    w = jnp.abs(momentum_amplitudes(psi)) ** 2
    return jnp.sum(jnp.where(k < 0, w, 0.0), axis=-1)


def run_core(base, modes, order, dt, repeats):
    cfg = wow.Config(**{**base.__dict__, "dt": dt, "order": order, "n_frames": 1})
    program, inputs = program_of(cfg)
    psi0 = initial_packet(cfg)
    assert abs(cfg.t_final - base.duration) < 1e-9, (dt, cfg.t_final)
    lat = jax.vmap(lambda s: L.to_sites(cfg.chain, s))(modes)  # a block: (samples, N)
    S = lat.u.shape[0]
    Q = jnp.zeros((S,))
    k = jnp.asarray(k_grid(cfg.chain.N, cfg.chain.a))
    f = jax.jit(lambda lat: p_back(propagate(program, inputs, jnp.broadcast_to(psi0, (S, cfg.chain.N)), lat, Q)[0], k))
    t0 = time.perf_counter()
    c = wow.devices.compile_for(f.lower(lat), jax.devices())
    comp = time.perf_counter() - t0
    pb = np.asarray(c(lat))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(c(lat))
        ts.append(time.perf_counter() - t0)
    return pb, float(np.min(ts)), comp, cfg.n_steps * len(COMPOSITIONS[order])


def dynamiqs_runs(base, modes, ref, rtols, n_dq):
    """dynamiqs.sesolve (Tsit5, adaptive) on the same samples: H(t) with the hoppings of the exact
    harmonic motion u(t) at every stage time, as a dense N x N matrix."""
    import dynamiqs as dq

    dq.set_precision("double")
    dq.set_progress_meter(False)
    chain, e = base.chain, base.electron
    psi0 = initial_packet(base)
    k = jnp.asarray(k_grid(chain.N, chain.a))
    N = chain.N
    rows = []
    for rtol in rtols:
        errs, times = [], []
        for i in range(n_dq):
            s = jax.tree_util.tree_map(lambda x: x[i], modes)

            def H(t, s=s):
                u = L.harmonic_motion(chain, s, t).u
                tb = e.t0 - e.alpha * (u[1:] - u[:-1])
                return -(jnp.diag(tb, 1) + jnp.diag(tb, -1)).astype(jnp.complex128)

            Ht = dq.timecallable(H)
            method = dq.method.Tsit5(rtol=rtol, atol=rtol * 1e-2, max_steps=10**7)
            tsave = jnp.asarray([0.0, base.duration / HBAR])  # dynamiqs integrates i dψ/dt = H ψ (ħ = 1)
            Hs = dq.timecallable(lambda t, H=H: H(t * HBAR))
            run = lambda: dq.sesolve(Hs, psi0[:, None], tsave, method=method).states[-1]
            jax.block_until_ready(run().to_jax())  # compile
            t0 = time.perf_counter()
            psi = run().to_jax()[:, 0]
            jax.block_until_ready(psi)
            times.append(time.perf_counter() - t0)
            errs.append(abs(float(p_back(psi, k)) - ref[i]))
        rows.append(dict(rtol=rtol, err=max(errs), time_per_sample=float(np.median(times))))
        print(f"dynamiqs Tsit5 rtol={rtol:g}: max |ΔP_b| = {max(errs):.2e}, {np.median(times):.3f} s per sample",
              flush=True)
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--samples", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--no-dynamiqs", dest="dynamiqs", action="store_false")
    ap.add_argument("--dq-samples", type=int, default=2)
    ap.add_argument("--out", default=str(HERE / "RESULTS.md"))
    args = ap.parse_args(argv)

    env = environment()
    print(" | ".join(env.values()), flush=True)
    base, modes = workload(args.samples)
    ref, _, _, _ = run_core(base, modes, 4, 0.0025, 1)
    ref2, _, _, _ = run_core(base, modes, 4, 0.005, 1)
    print(f"reference P_b (order 4, dt 0.0025 fs): {np.round(ref, 6)}; change from dt 0.005: "
          f"{np.max(np.abs(ref - ref2)):.1e}", flush=True)
    rows = []
    for order, dts in ((2, STRANG_DTS), (4, ORDER4_DTS)):
        for dt in dts:
            pb, t, comp, work = run_core(base, modes, order, dt, args.repeats)
            err = float(np.max(np.abs(pb - ref)))
            rows.append(dict(order=order, dt=dt, err=err, time=t, compile=comp, substeps=work, pb=pb))
            print(f"order {order} dt {dt:6.4f} fs: max |ΔP_b| = {err:.2e}, {work:6d} sub-steps, "
                  f"{t:.3f} s for {args.samples} samples (compile {comp:.2f} s)", flush=True)
    # the reference against Richardson-extrapolated Strang
    s1, s2 = [next(r for r in rows if r["order"] == 2 and r["dt"] == d)["pb"] for d in (0.01, 0.005)]
    rich = float(np.max(np.abs((4 * s2 - s1) / 3 - ref)))
    print(f"Richardson Strang (0.01, 0.005 fs) vs reference: {rich:.1e}", flush=True)
    fits = {}
    for order in (2, 4):
        rs = [r for r in rows if r["order"] == order and r["err"] > 1e-9]
        slope, icpt = np.polyfit(np.log([r["dt"] for r in rs]), np.log([r["err"] for r in rs]), 1)
        dt_star = float(np.exp((np.log(TOL) - icpt) / slope))
        ok = [r for r in rows if r["order"] == order and r["err"] <= TOL]
        best = min(ok, key=lambda r: r["time"]) if ok else None
        fits[order] = dict(slope=slope, dt_star=dt_star, best=best)
        print(f"order {order}: error ~ dt^{slope:.2f}; dt for 1e-4: {dt_star:.4f} fs "
              f"({base.duration / dt_star * len(COMPOSITIONS[order]):.0f} sub-steps)", flush=True)

    dq_rows = []
    if args.dynamiqs:
        try:
            import dynamiqs  # noqa: F401
        except ImportError:
            print("dynamiqs is not installed: no comparison (pip install dynamiqs)")
        else:
            dq_rows = dynamiqs_runs(base, modes, ref, (1e-4, 1e-5, 1e-6, 1e-8), args.dq_samples)
    # ours per sample, single sample, at the cheapest accurate point of each order
    single = {}
    for order in (2, 4):
        b = fits[order]["best"]
        if b:
            one = jax.tree_util.tree_map(lambda x: x[:1], modes)
            _, t1, _, _ = run_core(base, one, order, b["dt"], args.repeats)
            single[order] = t1
            print(f"order {order} dt {b['dt']}: {t1:.4f} s for one sample alone", flush=True)

    lines = [f"\n## {env['date']} — accuracy per cost, `python benchmarks/accuracy.py {' '.join(sys.argv[1:])}`\n",
             f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}",
             f"- workload: default wow.Config (N = {base.chain.N} open, {base.temperature:g} K {base.statistics}, "
             f"alpha = {base.electron.alpha:g} eV/Å, {base.dynamics}, {base.duration:g} fs), float64, "
             f"{args.samples} samples; error = max over samples of |P_b - P_b,ref|",
             f"- reference: order 4 at dt = 0.0025 fs (changes by {np.max(np.abs(ref - ref2)):.1e} from 0.005 fs); "
             f"Richardson-extrapolated Strang (0.01, 0.005 fs) differs from it by {rich:.1e}", "",
             "| order | dt (fs) | sub-steps | max abs(ΔP_b) | time for the samples (s) | compile (s) |",
             "|---|---|---|---|---|---|"]
    lines += [f"| {r['order']} | {r['dt']:g} | {r['substeps']} | {r['err']:.2e} | {r['time']:.3f} | {r['compile']:.2f} |"
              for r in rows]
    lines.append("")
    for order in (2, 4):
        f = fits[order]
        b = f["best"]
        lines.append(f"- order {order}: fitted error ∝ dt^{f['slope']:.2f}; 1e-4 needs dt ≈ {f['dt_star']:.4f} fs; "
                     + (f"cheapest measured run within 1e-4: dt = {b['dt']:g} fs, {b['time']:.3f} s "
                        f"({b['time'] / args.samples:.4f} s per sample; one sample alone {single.get(order, float('nan')):.4f} s)"
                        if b else "no measured run within 1e-4"))
    for r in dq_rows:
        lines.append(f"- dynamiqs sesolve Tsit5 rtol = {r['rtol']:g} (atol = rtol/100): max abs(ΔP_b) = {r['err']:.1e}, "
                     f"{r['time_per_sample']:.3f} s per sample (compile excluded)")
    with open(args.out, "a") as fh:
        fh.write("\n".join(lines) + "\n")
    print(f"appended to {args.out}")


if __name__ == "__main__":
    main()
