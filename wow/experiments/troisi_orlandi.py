"""Regression against published physics: the Troisi-Orlandi SSH model of an organic semiconductor
(A. Troisi and G. Orlandi, Phys. Rev. Lett. 96, 086601 (2006)), run with wow's Ehrenfest step.

Model (as we read TO): a ring of N molecules, one orbital each, hopping t_j = t0 - α(u_{j+1} - u_j);
every molecule is its own classical harmonic oscillator (an *Einstein* lattice, ½K u_j², not the
nearest-neighbour springs of docs/model.md), m = 250 amu, K = 14500 amu/ps² = 1.5028 eV/Å²
(ω = sqrt(K/m) = 7.6 ps⁻¹, ħω = 5.0 meV = 40 cm⁻¹), t0 = 300 cm⁻¹ = 37.2 meV,
α = 995 cm⁻¹/Å = 0.1234 eV/Å, T = 300 K, classical Boltzmann initial lattice. The lattice feels the
electron's mean (Hellmann-Feynman) force: Ehrenfest dynamics, as in TO.

What runs: wow.run with ONE wow.Config (``config``): the chain electron on a ring, one local
(Einstein) mode per molecule coupled through the Peierls (SSH) hopping (wow.LocalModes, g = 0), and
wow's Ehrenfest backend on it (the exact Einstein rotation as the free lattice). For contrast the
same lattice without back-reaction ('wow': prescribed thermal motion) and frozen ('frozen': static
disorder, Anderson localization) can be run. The thermal lattice and the initial electron are
drawn here and handed to wow.run as a wow.InitialState (the 'thermal' start is a Boltzmann-drawn
eigenstate of each sample's own H_e, which wow.run does not draw itself).

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

import math
import sys
import time

from . import common

EXPERIMENT = "troisi_orlandi"
CM1 = 1.239841984e-4  # eV per cm^-1
AMU_PER_PS2 = 103.642697e-6  # eV/Å² per amu/ps² (1 amu·Å²/fs² = 103.642697 eV)


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=48, duration=2000.0, dt=1.0)
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
def model(args):
    """Physical parameters in wow units (eV, Å, fs, amu)."""
    from wow.units import mass_ev

    M = mass_ev(args.mass)
    K = args.spring * AMU_PER_PS2
    return {"M": M, "K": K, "t0": args.t0 * CM1, "alpha": args.alpha * CM1, "omega": math.sqrt(K / M)}


def config(args, dyn: str, m: dict, spf: int):
    """The Troisi-Orlandi model as ONE wow.Config: a ring of N sites (a = 1: distances in molecular
    spacings), one local (Einstein) mode per molecule with mass m and ω = sqrt(K/m), coupled only
    through the Peierls (SSH) hopping t_b = t0 - α(q_{n+1} - q_n) (wow.LocalModes with g = 0), the
    chain's own lattice absent (Electron.alpha = D = 0). The thermal draw and the initial electron
    are the experiment's (given to wow.run as an InitialState), so the lattice statistics setting
    is unused."""
    import wow

    return wow.Config(chain=wow.Chain(N=args.N, boundary="ring", a=1.0),
                      electron=wow.Electron(t0=m["t0"], alpha=0.0, D=0.0, sigma=1.0),
                      local=wow.LocalModes(omega=(m["omega"],), mass=(args.mass,), g=(0.0,), alpha=(m["alpha"],)),
                      temperature=args.temperature, dynamics=dyn, dt=args.dt, duration=spf * args.frames * args.dt,
                      n_frames=args.frames, save_density=True, dtype=args.dtype, check_inside=False)


def run_dynamics(args, dyn: str, m: dict, allow_crossing: bool = False):
    """One dynamics through wow.run with ``config``: (densities (samples, frames+1, N), times, wall s)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    import wow
    from wow.electron import bonds, hamiltonian, hoppings
    from wow.units import KB

    N = args.N
    n_steps = max(1, round(args.duration / args.dt))
    spf = max(1, math.ceil(n_steps / args.frames))
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
    init = wow.InitialState(u=np.array(u0)[:, None, :], v=np.array(v0)[:, None, :], psi=np.array(psi0))
    t0 = time.perf_counter()
    r = wow.run(config(args, dyn, m, spf), args.samples, seed=args.seed, initial=init, progress=False,
                allow_crossing=allow_crossing)
    wall = time.perf_counter() - t0
    return np.asarray(r.traces["density"]), r.times, wall


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


#: Units of what a point stores (distances in lattice spacings a: the model runs with a = 1).
UNITS = {"D": ("a^2/fs", "diffusion coefficient: half the slope of the sample's MSD over the last half of the run"),
         "msd_final": ("a^2", "mean-square displacement at the end of the run"),
         "norm_final": ("", "norm of psi at the end of the run"),
         "msd": ("a^2", "mean-square displacement about the starting centre (minimum image on the ring)")}


def options(args, dyn: str) -> dict:
    """Every input that changes the numbers of one dynamics' run (the point's identity)."""
    return {"dynamics": dyn, "N": args.N, "mass_amu": args.mass, "spring_amu_per_ps2": args.spring,
            "t0_cm1": args.t0, "alpha_cm1_per_angstrom": args.alpha, "temperature_K": args.temperature,
            "initial": args.initial, "frames": args.frames, "dt_fs": args.dt, "duration_fs": args.duration,
            "dtype": args.dtype}


def runner(args, m):
    """The sweep's runner: one dynamics on the Einstein ring, per-sample D and the MSD trace."""
    import warnings
    from types import SimpleNamespace

    import numpy as np

    def run(point, n_samples, seed, *, devices=None, chunk_size=None, progress=None, allow_crossing=False):
        dyn = point.options["dynamics"]
        t0 = time.perf_counter()
        rho, times, wall = run_dynamics(args, dyn, m, allow_crossing)
        msd = msd_of(rho)
        half = times >= times[-1] / 2
        D = np.polyfit(times[half], msd[:, half].T, 1)[0] / 2  # per sample; diffusion() is their mean and sem
        spread = float(np.sqrt(msd[:, -1].mean()))
        if spread > args.N / 4:
            warnings.warn(f"the packet spread ({spread:.0f} sites) is not small against the ring (N={args.N}): "
                          "enlarge --N")
        per_sample = {"D": D, "msd_final": msd[:, -1], "norm_final": rho[:, -1].sum(-1)}
        stats = {"D": diffusion(msd, times), "msd_final": (float(msd[:, -1].mean()),
                                                           float(msd[:, -1].std(ddof=1) / np.sqrt(len(msd))))}
        return SimpleNamespace(per_sample=per_sample, stats=stats, times=times, traces={"msd": msd},
                               n_samples=n_samples, seed=seed, compile_s=time.perf_counter() - t0 - wall,
                               run_s=wall, units=UNITS), None

    return run


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.N < 8 or args.N % 2:
        p.error(f"--N={args.N}: allowed even N >= 8 (the split-operator ring needs even N)")
    if args.frames < 4:
        p.error(f"--frames={args.frames}: allowed >= 4")
    common.check(p, args, mass=(0, None, True), spring=(0, None, True), t0=(0, None, True),
                 temperature=(0, None, True), a=(0, None, True))
    import wow
    from wow import io

    m = model(args)
    sig_t = abs(m["alpha"]) * math.sqrt(2 * wow.KB * args.temperature / m["K"])  # std of α(u_{j+1} - u_j)
    log = common.log_of(args) or (lambda s: None)
    log(f"Troisi-Orlandi: N={args.N} ring, m={args.mass:g} amu, K={args.spring:g} amu/ps² = {m['K']:.4f} eV/Å², "
        f"ħω={wow.HBAR * m['omega'] * 1e3:.2f} meV, t0={m['t0'] * 1e3:.2f} meV, α={m['alpha']:.4f} eV/Å, "
        f"T={args.temperature:g} K; thermal σ(t_j)={sig_t * 1e3:.1f} meV; {args.samples} samples, "
        f"{args.duration:g} fs, dt={args.dt:g} fs, initial={args.initial}")
    pts = [io.Point(dyn, {"dynamics": dyn}, None, options=options(args, dyn)) for dyn in args.dynamics]
    inputs = {"a": (args.a, "angstrom", "intermolecular spacing, used only to convert D to cm^2/s")}
    res = common.sweep(p, args, EXPERIMENT, pts, inputs,
                       "Troisi-Orlandi SSH model (Einstein ring, Ehrenfest): electron diffusion", runner=runner(args, m))
    cm2s = 0.1 * args.a**2  # sites²/fs -> cm²/s (1 Å²/fs = 0.1 cm²/s)
    rows = [["dynamics", "D (a²/fs)", f"D (cm²/s, a = {args.a:g} Å)", f"rms spread at {args.duration:g} fs (sites)",
             "max |norm - 1|"]]
    for q in res.points:
        D, se = q.stats["D"]
        rows.append([q.values["dynamics"], f"{D:.4g} ± {se:.2g}", f"{D * cm2s:.3g} ± {se * cm2s:.2g}",
                     f"{math.sqrt(q.stats['msd_final'][0]):.1f}", f"{abs(q.per_sample['norm_final'] - 1).max():.1e}"])
    head = (f"Troisi-Orlandi model, T = {args.temperature:g} K, N = {args.N}, {args.samples} samples, "
            f"{args.duration:g} fs; D = half the slope of MSD(t) over the last half of the run, ± one standard error")
    common.report(args, head, rows, lambda plot: plot.figure_diffusion(res, a=args.a))
    return 0


if __name__ == "__main__":
    sys.exit(main())
