"""Cost of a gradient of the ensemble tallies (wow.gradients) against a forward run of the same
ensemble: wall time and XLA's memory analysis of the compiled programs (temporary buffers per sample).

    flock /work/gate.lock flock -x /work/cpu.lock python benchmarks/gradient_cost.py [--write]

The point is the main job's (N = 128 Cu atoms, open chain, α = 2 eV/Å, σ = 10 Å, k0 = π/3a, 10 fs at
dt = 0.02 fs = 500 steps, recoil on, float64, T = 300 K, classical), with the final tallies only
(one frame); ``--model continuum`` times the density-density model instead (``main_point``). Rows, for each lattice dynamics:

    forward        jit(f)(p): the ensemble means (P_b, ΔE_b, <P_R>) at the parameters
    jvp            value and one directional derivative (forward mode: any one parameter or mix)
    jacfwd k       all k parameters' derivatives by forward mode (k tangents, one program)
    grad ckpt      reverse mode, blocks of ~sqrt(steps) steps under jax.checkpoint (the default)
    grad plain     reverse mode storing every step's intermediates
    grad reversible  reverse mode running the steps backwards from the final state, no stored steps
                   (checkpoint_every='reversible'; frozen and wow lattices)

Times are the median of ``--repeats`` runs after a warm-up (compile excluded, printed apart); memory
is ``compiled.memory_analysis().temp_size_in_bytes`` / samples, against the size of one sample's
carried state (ψ and the lattice). The copy bandwidth of the same run is recorded beside them.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

import wow  # noqa: E402
from throughput import copy_bandwidth  # noqa: E402
from wow import gradients as G  # noqa: E402

#: the parameters differentiated, per electron model
WRT = {"chain": ("electron.alpha", "temperature", "chain.spring", "chain.mass"),
       "continuum": ("electron.V0", "electron.w", "temperature", "chain.mass")}


def main_point(dynamics: str, N: int, duration: float, model: str = "chain") -> wow.Config:
    """The chain job's point, or (model='continuum') the density-density model's: a ring of N atoms
    (M = 1 amu), V0 = 5 eV, w = 0.5 Å, g = 16 grid points per cell, a Bloch packet at k0 = 0.35π/a
    (σ = 5 Å), T = 30 K classical, the CM momentum fixed at 0 (a drawn one is not differentiable)."""
    if model == "continuum":
        chain = wow.Chain(N=N, boundary="ring", mass=1.0)
        el = wow.Continuum(V0=5.0, w=0.5, g=16, packet="bloch", k0=0.35 * math.pi / chain.a, sigma=5.0)
        return wow.Config(chain=chain, electron=el, temperature=30.0, statistics="classical", dynamics=dynamics,
                          recoil=True, cm_momentum=0.0, dt=0.02, duration=duration, n_frames=1, dtype="float64")
    return wow.Config(chain=wow.Chain(N=N, boundary="open"), electron=wow.Electron(alpha=2.0, sigma=10.0),
                      temperature=300.0, statistics="classical", dynamics=dynamics, recoil=True, dt=0.02,
                      duration=duration, n_frames=1, dtype="float64")


def timed(fn, args, repeats):
    """(compile s, median run s, temp bytes) of jit(fn)(*args)."""
    t0 = time.perf_counter()
    c = jax.jit(fn).lower(*args).compile()
    compile_s = time.perf_counter() - t0
    jax.block_until_ready(c(*args))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        jax.block_until_ready(c(*args))
        ts.append(time.perf_counter() - t0)
    mem = c.memory_analysis()
    return compile_s, float(np.median(ts)), (mem.temp_size_in_bytes if mem is not None else math.nan)


#: --programs names -> the table's rows
PROGRAMS = {"forward": "forward", "jvp": "jvp", "jacfwd": "jacfwd 4", "ckpt": "grad ckpt",
            "plain": "grad plain", "reversible": "grad reversible"}


def bench(cfg: wow.Config, samples: int, repeats: int, programs=tuple(PROGRAMS)):
    rows = []
    wrt = WRT["continuum" if isinstance(cfg.electron, wow.Continuum) else "chain"]
    scalar = lambda m: m["P_b"]  # noqa: E731
    for label, ck in (("forward", "auto"), ("jvp", "auto"), (f"jacfwd {len(wrt)}", "auto"),
                      ("grad ckpt", "auto"), ("grad plain", None), ("grad reversible", "reversible")):
        if ck == "reversible" and cfg.dynamics not in G.REVERSIBLE_DYNAMICS:
            continue
        if label not in [PROGRAMS[p] for p in programs]:
            continue
        f, p0 = G.means_function(cfg, samples, seed=0, wrt=wrt, checkpoint_every=ck)
        if label == "forward":
            fn, args = (lambda p: (f(p)["P_b"], f(p)["dE_b"], f(p)["P_R"])), (p0,)
        elif label == "jvp":
            dp = {k: jnp.zeros_like(v) for k, v in p0.items()}
            dp[wrt[0]] = jnp.ones_like(dp[wrt[0]])
            fn, args = (lambda p, t: jax.jvp(lambda q: scalar(f(q)), (p,), (t,))), (p0, dp)
        elif label.startswith("jacfwd"):
            fn, args = jax.jacfwd(lambda p: scalar(f(p))), (p0,)
        else:
            fn, args = jax.value_and_grad(lambda p: scalar(f(p))), (p0,)
        rows.append((label, *timed(fn, args, repeats)))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", choices=("chain", "continuum"), default="chain",
                    help="the electron model: the tight-binding chain or the density-density model")
    ap.add_argument("--dynamics", default="wow,ehrenfest", help="comma-separated (frozen, wow, ehrenfest)")
    ap.add_argument("--N", type=int, default=None, help="atoms (default 128 for the chain, 48 for the continuum)")
    ap.add_argument("--duration", type=float, default=10.0, help="fs (500 steps at dt = 0.02 fs)")
    ap.add_argument("--samples", type=int, default=32)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--programs", default=",".join(PROGRAMS),
                    help=f"comma-separated rows to time, 'forward' always first ({', '.join(PROGRAMS)})")
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    a = ap.parse_args(argv)
    if a.N is None:
        a.N = 128 if a.model == "chain" else 48
    for name, v, lo in (("--N", a.N, 8), ("--samples", a.samples, 1), ("--repeats", a.repeats, 1)):
        if v < lo:
            ap.error(f"{name}={v}: must be >= {lo}")
    programs = ["forward"] + [p.strip() for p in a.programs.split(",") if p.strip() and p.strip() != "forward"]
    if any(p not in PROGRAMS for p in programs):
        ap.error(f"--programs {a.programs!r}: allowed {', '.join(PROGRAMS)}")
    dyn = [d.strip() for d in a.dynamics.split(",") if d.strip()]
    bad = [d for d in dyn if d not in ("frozen", "wow", "ehrenfest")]
    if bad:
        ap.error(f"--dynamics {bad}: allowed frozen, wow, ehrenfest")
    cfgs = {d: main_point(d, a.N, a.duration, a.model) for d in dyn}
    for c in cfgs.values():
        wow.validate(c)  # refuse a bad point before any work
    bw = copy_bandwidth(jnp.float64)[0]
    c0 = cfgs[dyn[0]]
    # one sample's ψ (complex128, on the grid for the continuum) and lattice u, v (float64)
    n_psi = a.N * (c0.electron.g if a.model == "continuum" else 1)
    state_bytes = 16 * n_psi + 2 * 8 * a.N
    where = ("open, α = 2 eV/Å, σ = 10 Å, T = 300 K" if a.model == "chain" else
             f"ring, density-density: V0 = 5 eV, w = 0.5 Å, g = 16 ({n_psi} grid points), Bloch packet "
             f"k0 = 0.35π/a, σ = 5 Å, M = 1 amu, P_R = 0, T = 30 K")
    lines = [f"point: N = {a.N}, {where}, {a.duration:g} fs at dt = 0.02 fs "
             f"({c0.n_steps} steps, checkpoint blocks of {G.default_block(c0)}), recoil, float64, classical, "
             f"{a.samples} samples; derivatives of P_b in {', '.join(WRT[a.model])}; "
             f"one sample's state {state_bytes / 1024:.1f} KiB",
             "", "| dynamics | program | run (ms) | x forward | compile (s) | temp memory / sample (KiB) | x forward | states |",
             "|---|---|---|---|---|---|---|---|"]
    for d, cfg in cfgs.items():
        rows = bench(cfg, a.samples, a.repeats, programs)
        t_f, m_f = rows[0][2], rows[0][3]
        for label, comp, t, m in rows:
            lines.append(f"| {d} | {label} | {t * 1e3:.1f} | {t / t_f:.2f} | {comp:.1f} | {m / a.samples / 1024:.1f} | "
                         f"{m / m_f:.1f} | {m / a.samples / state_bytes:.0f} |")
            print(lines[-1], flush=True)
    lines.append(f"\ncopy bandwidth float64: {bw / 1e9:.1f} GB/s read+write (median)")
    print("\n".join(lines))
    if a.write:
        cmd = "python benchmarks/gradient_cost.py " + " ".join(argv if argv is not None else sys.argv[1:])
        stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
        with open(HERE / "RESULTS.md", "a") as fh:
            fh.write(f"\n## {stamp} — gradient cost, `{cmd.strip()}`\n\n" + "\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
