"""Regression against published physics: the Troisi-Orlandi SSH model of an organic semiconductor
(A. Troisi and G. Orlandi, Phys. Rev. Lett. 96, 086601 (2006)), run with wow's Ehrenfest step.

Model (as we read TO): a ring of N molecules, one orbital each, hopping t_j = t0 - α(u_{j+1} - u_j);
every molecule is its own classical harmonic oscillator (an *Einstein* lattice, ½K u_j², not the
nearest-neighbour springs of MODEL.md), m = 250 amu, K = 14500 amu/ps² = 1.5028 eV/Å²
(ω = sqrt(K/m) = 7.6 ps⁻¹, ħω = 5.0 meV = 40 cm⁻¹), t0 = 300 cm⁻¹ = 37.2 meV,
α = 995 cm⁻¹/Å = 0.1234 eV/Å, T = 300 K, classical Boltzmann initial lattice. The lattice feels the
electron's mean (Hellmann-Feynman) force: Ehrenfest dynamics, as in TO.

What runs: wow's propagator core with the Ehrenfest velocity-Verlet step (wow.dynamics.ehrenfest.
verlet) whose free lattice flow is the exact Einstein rotation instead of the chain's harmonic flow,
registered here as a lattice backend (a step function; the core is unchanged). For contrast the same
lattice without back-reaction ('wow': prescribed thermal motion) and frozen ('frozen': static
disorder, Anderson localization) can be run.

Measured: the electron's mean-square displacement MSD(t) = <Σ_n (x_n - x_0)² |ψ_n(t)|²> over thermal
samples (minimum-image distance on the ring from the starting centre x_0), and the diffusion
coefficient D = slope/2 of MSD(t) fitted over the last half of the run, with the standard error of
the per-sample slopes. D is computed in a²/fs (model units: independent of the lattice spacing a)
and converted to cm²/s with --a (1 Å²/fs = 0.1 cm²/s).

Initial electron: 'thermal' (default) an eigenstate of the initial H_e drawn with Boltzmann weight
e^{-E/k_BT}, or 'site' (one molecule). With SSH coupling only the sign of the band does not matter
(ψ_n -> (-1)^n ψ_n maps H_e to -H_e with the same forces).
"""

from __future__ import annotations

import json
import math
import platform
import subprocess
import sys
import time
from pathlib import Path

from . import common

EXPERIMENT = "troisi_orlandi"
CM1 = 1.239841984e-4  # eV per cm^-1
AMU_PER_PS2 = 103.642697e-6  # eV/Å² per amu/ps² (1 amu·Å²/fs² = 103.642697 eV)


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=48, duration=2000.0, dt=1.0)
    p.set_defaults(out=common.RESULTS / f"{EXPERIMENT}.json")
    g = p.add_argument_group("physics (TO 2006 values by default)")
    g.add_argument("--N", type=int, default=160, help="molecules on the ring (even)")
    g.add_argument("--mass", type=float, default=250.0, help="molecular mass m (amu)")
    g.add_argument("--spring", type=float, default=14500.0, help="force constant K (amu/ps²)")
    g.add_argument("--t0", type=float, default=300.0, help="transfer integral (cm⁻¹)")
    g.add_argument("--alpha", type=float, default=995.0, help="SSH coupling α (cm⁻¹/Å)")
    g.add_argument("--temperature", type=float, default=300.0, help="T (K)")
    g.add_argument("--a", type=float, default=5.0,
                   help="intermolecular spacing (Å), used only to convert D to cm²/s (an assumption: not a TO input we could check)")
    g.add_argument("--dynamics", type=common.str_list(("ehrenfest", "wow", "frozen")), default=["ehrenfest"],
                   help="lattice dynamics to run (comma-separated)")
    g.add_argument("--initial", choices=("thermal", "site"), default="thermal",
                   help="initial electron: Boltzmann-drawn eigenstate of the initial H_e, or one molecule")
    g.add_argument("--frames", type=int, default=40, help="MSD recorded at this many times (+ t = 0)")
    return p


# ------------------------------------------------------------------------------------------------
# The Einstein lattice as wow lattice backends (the core and the Ehrenfest step are wow's own)
# ------------------------------------------------------------------------------------------------
def einstein_drift(lat, h, p, layout):
    """Exact free motion of independent oscillators ω² = K/m: a rotation in (u, v/ω)."""
    import jax.numpy as jnp

    from wow.lattice import SiteState

    w = jnp.sqrt(p.omega2)
    c, s = jnp.cos(w * h), jnp.sin(w * h)
    return SiteState(u=lat.u * c + lat.v * (s / w), v=lat.v * c - lat.u * (w * s))


def einstein_ehrenfest(psi, lat, p, layout, evolve):
    from wow.dynamics import ehrenfest

    return ehrenfest.verlet(psi, lat, p, layout, evolve, einstein_drift)


def einstein_wow(psi, lat, p, layout, evolve):
    """Prescribed motion, no force: the electron sees the lattice at mid-step."""
    mid = einstein_drift(lat, p.dt / 2, p, layout)
    return evolve(psi, mid.u), einstein_drift(mid, p.dt / 2, p, layout)


def register():
    from wow import dynamics

    dynamics.BACKENDS.setdefault("einstein-ehrenfest", einstein_ehrenfest)
    dynamics.BACKENDS.setdefault("einstein-wow", einstein_wow)


# ------------------------------------------------------------------------------------------------
def model(args):
    """Physical parameters in wow units (eV, Å, fs, amu)."""
    from wow.units import mass_ev

    M = mass_ev(args.mass)
    K = args.spring * AMU_PER_PS2
    return {"M": M, "K": K, "t0": args.t0 * CM1, "alpha": args.alpha * CM1, "omega": math.sqrt(K / M)}


def run_dynamics(args, dyn: str, m: dict):
    import jax
    import jax.numpy as jnp
    import numpy as np

    from wow.electron import bonds, hamiltonian, hoppings, k_grid
    from wow.lattice import SiteState
    from wow.propagate import Layout, Params, propagate
    from wow.units import HBAR, KB

    N, real = args.N, jnp.float64 if args.dtype == "float64" else jnp.float32
    n_steps = max(1, round(args.duration / args.dt))
    spf = max(1, math.ceil(n_steps / args.frames))
    name = {"ehrenfest": "einstein-ehrenfest", "wow": "einstein-wow", "frozen": "frozen"}[dyn]
    layout = Layout(N=N, boundary="ring", dynamics=name, steps_per_frame=spf, n_frames=args.frames,
                    save_density=True)
    f = lambda x: jnp.asarray(x, real)
    p = Params(t0=f(m["t0"]), alpha=f(m["alpha"]), D=f(0.0), a=f(1.0), dt=f(args.dt), omega2=f(m["omega"] ** 2),
               k=f(k_grid(N, 1.0)), inv_2NM=f(1.0 / (2 * N * m["M"])), t_static=f(np.zeros(N)))
    kT = KB * args.temperature
    keys = jax.random.split(jax.random.PRNGKey(args.seed), args.samples)
    rng = np.random.default_rng(args.seed)
    u0, v0, psi0 = [], [], []
    for s in range(args.samples):
        ku, kv = jax.random.split(keys[s])
        u = np.sqrt(kT / m["K"]) * np.asarray(jax.random.normal(ku, (N,), jnp.float32), float)
        v = np.sqrt(kT / m["M"]) * np.asarray(jax.random.normal(kv, (N,), jnp.float32), float)
        if dyn == "frozen":
            v = np.zeros(N)
        if args.initial == "site":
            psi = np.zeros(N, complex)
            psi[N // 2] = 1.0
        else:
            t = np.asarray(hoppings(bonds(jnp.asarray(u), "ring"), m["t0"], m["alpha"]))
            E, V = np.linalg.eigh(hamiltonian(t, np.zeros(N), "ring"))
            w = np.exp(-(E - E.min()) / kT)
            psi = V[:, rng.choice(N, p=w / w.sum())].astype(complex)  # wherever it lies: MSD is about its centre
        u0.append(u), v0.append(v), psi0.append(psi)
    cplx = jnp.complex128 if real == jnp.float64 else jnp.complex64
    lat0 = SiteState(u=jnp.asarray(np.array(u0), real), v=jnp.asarray(np.array(v0), real))
    psi0 = jnp.asarray(np.array(psi0), cplx)
    run = jax.jit(jax.vmap(propagate, in_axes=(0, 0, None, None, None)), static_argnums=4)
    t0 = time.perf_counter()
    _, _, frames = run(psi0, lat0, f(0.0), p, layout)
    rho = np.asarray(frames["density"])  # (samples, frames+1, N)
    wall = time.perf_counter() - t0
    return rho, spf * args.dt * np.arange(args.frames + 1), wall


def msd_of(rho):
    """Per-sample MSD (sites²) about the starting centre, minimum image on the ring."""
    import numpy as np

    S, F, N = rho.shape
    n = np.arange(N)
    c0 = rho[:, 0, :]
    # starting centre: circular mean of the t = 0 density
    ang = np.angle((c0 * np.exp(2j * np.pi * n / N)).sum(-1)) * N / (2 * np.pi)
    d = (n[None, :] - ang[:, None] + N / 2) % N - N / 2  # (S, N)
    return (rho * d[:, None, :] ** 2).sum(-1)  # (S, F)


def diffusion(msd, times):
    """D (sites²/fs) = slope/2 of MSD over the last half of the run: mean and standard error of the
    per-sample slopes."""
    import numpy as np

    half = times >= times[-1] / 2
    slopes = np.polyfit(times[half], msd[:, half].T, 1)[0]
    return slopes.mean() / 2, slopes.std(ddof=1) / np.sqrt(len(slopes)) / 2


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.N < 8 or args.N % 2:
        p.error(f"--N={args.N}: allowed even N >= 8 (the split-operator ring needs even N)")
    if args.frames < 4:
        p.error(f"--frames={args.frames}: allowed >= 4")
    if args.out.suffix != ".json":
        p.error(f"--out {args.out}: give a file name ending in .json")
    args.out = args.out.with_suffix(".h5")  # common.check wants .h5; restored below
    common.check(p, args, mass=(0, None, True), spring=(0, None, True), t0=(0, None, True),
                  temperature=(0, None, True), a=(0, None, True))
    args.out = args.out.with_suffix(".json")
    import jax
    import numpy as np

    import wow

    register()
    m = model(args)
    sig_t = abs(m["alpha"]) * math.sqrt(2 * wow.KB * args.temperature / m["K"])  # std of α(u_{j+1} - u_j)
    if not args.quiet:
        print(f"Troisi-Orlandi: N={args.N} ring, m={args.mass:g} amu, K={args.spring:g} amu/ps² = {m['K']:.4f} eV/Å², "
              f"ħω={wow.HBAR * m['omega'] * 1e3:.2f} meV, t0={m['t0'] * 1e3:.2f} meV, α={m['alpha']:.4f} eV/Å, "
              f"T={args.temperature:g} K; thermal σ(t_j)={sig_t * 1e3:.1f} meV; {args.samples} samples, "
              f"{args.duration:g} fs, dt={args.dt:g} fs, initial={args.initial}")
    out = {"experiment": EXPERIMENT, "inputs": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()
                                                if k not in ("devices",)},
           "model_wow_units": m, "versions": {"wow": wow.__version__, "jax": jax.__version__,
                                              "python": platform.python_version()},
           "device": str(jax.devices()[0]), "results": {}}
    try:
        out["git_commit"] = subprocess.run(["git", "rev-parse", "HEAD"], capture_output=True, text=True,
                                           cwd=common.ROOT).stdout.strip()
    except OSError:
        out["git_commit"] = None
    curves = {}
    for dyn in args.dynamics:
        rho, times, wall = run_dynamics(args, dyn, m)
        msd = msd_of(rho)
        D, se = diffusion(msd, times)
        spread = float(np.sqrt(msd[:, -1].mean()))
        cm2s = 0.1 * args.a**2  # sites²/fs -> cm²/s
        res = {"D_sites2_per_fs": D, "D_sem_sites2_per_fs": se, "D_cm2_per_s": D * cm2s,
               "D_sem_cm2_per_s": se * cm2s, "times_fs": times.tolist(),
               "msd_sites2": msd.mean(0).tolist(), "msd_sem_sites2": (msd.std(0, ddof=1) / np.sqrt(len(msd))).tolist(),
               "rms_spread_final_sites": spread, "norm_final_max_dev": float(np.abs(rho[:, -1].sum(-1) - 1).max()),
               "wall_s": wall}
        if spread > args.N / 4:
            res["warning"] = f"the packet spread ({spread:.0f} sites) is not small against the ring (N={args.N}): enlarge --N"
        out["results"][dyn] = res
        curves[dyn] = (times, msd.mean(0))
        if not args.quiet:
            print(f"  {dyn:9s} D = {D:.4g} ± {se:.2g} a²/fs = {D * cm2s:.3g} ± {se * cm2s:.2g} cm²/s (a = {args.a:g} Å); "
                  f"rms spread at {times[-1]:g} fs: {spread:.1f} sites; {wall:.1f} s" + (f"  WARNING: {res['warning']}" if "warning" in res else ""))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(out, indent=1))
    if not args.quiet:
        print(f"results: {common.relpath(args.out)}")
    if not args.no_figure:
        common.headless()
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5, 3.5))
        for dyn, (t, y) in curves.items():
            ax.plot(t, y, label=dyn)
        ax.set_xlabel("t (fs)")
        ax.set_ylabel("MSD (sites²)")
        ax.set_title("Troisi-Orlandi model, T = %g K" % args.temperature)
        ax.legend()
        common.save_figure(fig, args.figure, args.quiet)
    return out


if __name__ == "__main__":
    main()
