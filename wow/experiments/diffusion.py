"""Transport: momentum relaxation τ_p, diffusion D, mobility μ, the Planckian ratio α = D m*/ħ and
the energy exchange with the lattice, against temperature and lattice dynamics.

Every point is one wow.run with Config.transport (the loop records <x - x0>, the MSD, the running
slope D_run = ½ dMSD/dt, <v>, <k>, E_e, E_band and the lattice energy at the frames; memory per
sample does not grow with the steps) and, for lattices that do not react (frozen, wow), Config.kubo
(the velocity correlation C(t) = Re<ψ0|v(t) v(0)|ψ0> from a second state φ = vψ0). The electron
starts as a Gaussian packet at k0 (default π/3a: ε = -t0, v = √3 t0 a/ħ; not the band centre π/2a,
where the SSH chain's sublattice symmetry pins <H_e> to 0 and no energy is exchanged).

Rules (wow.transport):
  τ_p   the integral decay time of <v>(t)/<v>(0) (Sokal window, c = 6), the launched packet's
        momentum relaxation; with kubo also τ_p,K = D_K/C(0).
  D     half the least-squares slope of the sample-mean MSD over [5 τ_p, t_stop], t_stop the last
        frame before the mean density on the sites farthest from x0 exceeds 1e-6 (edge rule);
        'flat' says whether the two halves of the window agree (3σ). Cross-check: D_K = ∫ C dt.
  μ     e D/(k_B T) in cm²/(V·s).
  α     D m*/ħ with the band-bottom mass m* = ħ²/(2 t0 a²) of the chain.
  E     dE_e/dt over the run and τ_E = (E_eq - Ē)/rate towards E_eq = the thermal band energy at T
        (wow.theory.band_energy_thermal); classical lattices have no detailed balance, so the
        electron heats towards the band centre and τ_E is the time to cross E_eq ('-' where the
        energy moves away from it, or its rate is within 2σ of zero). ΔE_lat: the lattice energy change (Ehrenfest: what the electron
        gave the lattice).

Models: 'chain' (wow's SSH + deformation chain with its own lattice: wow.Chain, wow.Electron
defaults unless given) and 'to' (Troisi-Orlandi's organic-semiconductor SSH model, one Config:
local Einstein modes, m = 250 amu, ħω = 5 meV, Peierls coupling α = 995 cm⁻¹/Å, t0 = 300 cm⁻¹,
a = 5 Å as a unit choice).
"""

from __future__ import annotations

import math
import sys

import numpy as np

from . import common

EXPERIMENT = "diffusion"
CM1 = 1.239841984e-4  # eV per cm^-1
#: What the runner adds to each point's statistics: name -> (unit, meaning).
UNITS = {
    "tau_p": ("fs", "momentum relaxation: integral decay time of <v>"),
    "tau_p_kubo": ("fs", "D_kubo / C(0)"),
    "D": ("angstrom^2/fs", "half the MSD slope over the fit window"),
    "D_kubo": ("angstrom^2/fs", "Green-Kubo integral of the velocity correlation"),
    "mu": ("cm^2/(V s)", "Einstein mobility e D/(k_B T)"),
    "alpha_planck": ("", "D m*/hbar, m* = hbar^2/(2 t0 a^2)"),
    "rate_E": ("eV/fs", "dE_e/dt over the run"),
    "tau_E": ("fs", "(E_eq - mean E_e)/rate towards the thermal band energy"),
    "dE_lat": ("eV", "lattice energy change over the run"),
    "t_fit_start": ("fs", "MSD fit window start (5 tau_p)"),
    "t_fit_stop": ("fs", "MSD fit window stop (edge rule)"),
    "flat": ("", "1 if the two halves of the fit window give the same slope (3 sigma)"),
}


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=16, duration=200.0, dt=0.05)
    g = p.add_argument_group("physics")
    g.add_argument("--model", choices=("chain", "to"), default="chain",
                   help="chain: wow's SSH+deformation chain; to: Troisi-Orlandi SSH Einstein modes (one Config)")
    g.add_argument("--temperatures", type=common.float_list, default=[100.0, 300.0, 1000.0], help="T (K)")
    g.add_argument("--dynamics", type=common.str_list(("frozen", "wow", "ehrenfest")), default=["wow", "ehrenfest"],
                   help="lattice dynamics (comma-separated)")
    g.add_argument("--alphas", type=common.float_list, default=None,
                   help="SSH couplings to sweep (eV/Å; chain: Electron.alpha; to: the Peierls α); default the model's")
    g.add_argument("--N", type=int, default=2048, help="sites (ring)")
    g.add_argument("--frames", type=int, default=100, help="frames recorded (+ t = 0)")
    g.add_argument("--sigma", type=float, default=None, help="packet width (Å; default 3 a)")
    g.add_argument("--k0", type=float, default=None, help="packet momentum (1/Å; default π/3a)")
    g.add_argument("--no-kubo", action="store_true", help="skip the velocity correlation (halves the frozen/wow work)")
    return p


def model_config(args, T: float, dyn: str, alpha: float | None):
    """The Config of one point (ring, transport frames, kubo where the lattice does not react)."""
    import wow
    from wow.units import mass_ev

    kubo = dyn != "ehrenfest" and not args.no_kubo
    common_kw = dict(temperature=T, dynamics=dyn, dt=args.dt, duration=args.duration, n_frames=args.frames,
                     dtype=args.dtype, transport=True, kubo=kubo, statistics="classical")
    if args.model == "chain":
        chain = wow.Chain(N=args.N, boundary="ring")
        a = chain.a
        e = wow.Electron() if alpha is None else wow.Electron(alpha=alpha)
        e = wow.Electron(t0=e.t0, alpha=e.alpha, D=e.D, sigma=args.sigma or 3 * a, k0=args.k0 or math.pi / (3 * a))
        return wow.Config(chain=chain, electron=e, **common_kw)
    a = 5.0
    w = math.sqrt(14500.0 * 103.642697e-6 / mass_ev(250.0))  # K = 14500 amu/ps²
    lm = wow.LocalModes(omega=(w,), mass=(250.0,), g=(0.0,), alpha=(995.0 * CM1 if alpha is None else alpha,))
    e = wow.Electron(t0=300.0 * CM1, alpha=0.0, D=0.0, sigma=args.sigma or 3 * a, k0=args.k0 or math.pi / (3 * a))
    return wow.Config(chain=wow.Chain(N=args.N, a=a, boundary="ring"), electron=e, local=lm, **common_kw)


def analyse(times, traces, T: float, t0: float, a: float):
    """The transport numbers of one run from its per-sample frames (module doc): name -> (value,
    standard error) and the notes of the rules that did not hold."""
    from wow import theory as th
    from wow import transport as tr

    out, notes = {}, []
    tau = tr.relaxation_time(times, traces["v_mean"])
    out["tau_p"] = (tau.value, tau.sem)
    if not tau.ok:
        notes.append("<v> did not decay within the run: τ_p is a lower bound")
    if "corr" in traces:
        D_k, tau_k = tr.kubo_diffusion(times, traces["corr"])
        out["D_kubo"], out["tau_p_kubo"] = (D_k.value, D_k.sem), (tau_k.value, tau_k.sem)
    try:
        stop = tr.edge_until(times, traces["edge"])
        fit = tr.diffusion_msd(times, traces["msd"], tau_p=tau.value, t_stop=stop)
    except ValueError as e:  # the window holds too few frames: no D from this run
        notes.append(f"no MSD fit: {e}")
        fit = None
    if fit is not None:
        out["D"] = (fit.value, fit.sem)
        out["t_fit_start"], out["t_fit_stop"] = (fit.t_start, 0.0), (fit.t_stop, 0.0)
        out["flat"] = (float(fit.ok), 0.0)
        if not fit.ok:
            notes.append("the MSD slope differs between the window's halves (not yet diffusive)")
        out["mu"] = tuple(float(x) for x in tr.mobility(np.array(out["D"]), T))
        out["alpha_planck"] = tuple(float(x) for x in tr.alpha_chain(np.array(out["D"]), t0, a))
    e = tr.energy_exchange(times, traces["E_e"], E_eq=float(th.band_energy_thermal(t0, T)))
    out["rate_E"] = (e["rate"].value, e["rate"].sem)
    # τ_E only where the energy measurably moves towards E_eq (the rate beyond 2σ)
    moving = e["tau_E"].ok and abs(e["rate"].value) > 2 * e["rate"].sem
    out["tau_E"] = (e["tau_E"].value, e["tau_E"].sem) if moving else (float("nan"), float("nan"))
    dl = traces["E_lattice"][:, -1] - traces["E_lattice"][:, 0]
    out["dE_lat"] = (float(dl.mean()), float(dl.std(ddof=1) / math.sqrt(dl.size)) if dl.size > 1 else float("nan"))
    return out, notes


def runner(args):
    """The sweep's runner: wow.run of the point's Config, then the transport numbers into its stats."""
    import warnings

    from wow.io.sweep import ensemble_runner

    def run(point, n_samples, seed, *, devices=None, chunk_size=None, progress=None, allow_crossing=False):
        res, _ = ensemble_runner(point, n_samples, seed, devices=devices, chunk_size=chunk_size, progress=progress,
                                 allow_crossing=allow_crossing)
        cfg = point.config
        nums, notes = analyse(res.times, res.traces, cfg.temperature, cfg.electron.t0, cfg.chain.a)
        res.stats.update(nums)
        res.units = UNITS
        for n in notes:
            warnings.warn(f"{point.label}: {n}")
        return res, None

    return run


def points(args):
    from wow import io

    alphas = args.alphas or [None]
    out = []
    for alpha in alphas:
        for dyn in args.dynamics:
            for T in args.temperatures:
                label = f"{args.model} {dyn} T={T:g}K" + ("" if alpha is None else f" alpha={alpha:g}")
                out.append(io.Point(label, {"model": args.model, "dynamics": dyn, "temperature": T,
                                            "alpha": alpha}, model_config(args, T, dyn, alpha)))
    return out


def fmt(v, digits=3):
    m, s = v
    if not math.isfinite(m):
        return "-"
    return f"{m:.{digits}g} ± {s:.2g}" if math.isfinite(s) and s > 0 else f"{m:.{digits}g}"


def figure(res):
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(1, 3, figsize=(15, 4.2))
    for pt in res.points:
        t = pt.times
        line, = ax[0].plot(t, pt.trace_mean["D_run"], lw=1, label=pt.label)
        ax[0].fill_between(t, pt.trace_mean["D_run"] - pt.trace_sem["D_run"],
                           pt.trace_mean["D_run"] + pt.trace_sem["D_run"], color=line.get_color(), alpha=0.2)
        if "D" in pt.stats:
            t1, t2 = pt.stats["t_fit_start"][0], pt.stats["t_fit_stop"][0]
            ax[0].hlines(pt.stats["D"][0], t1, t2, color=line.get_color(), lw=3, alpha=0.7)
        ax[1].plot(t, pt.trace_mean["E_e"], color=line.get_color(), lw=1)
        ax[1].plot(t, pt.trace_mean["E_lattice"] - pt.trace_mean["E_lattice"][0], color=line.get_color(), lw=1, ls=":")
    ax[0].set(xlabel="t (fs)", ylabel="running slope ½ dMSD/dt (Å²/fs)", title="D_run; bars: D over the fit window")
    ax[0].legend(fontsize=6)
    ax[1].set(xlabel="t (fs)", ylabel="eV", title="E_e (solid), E_lattice - E_lattice(0) (dotted)")
    by = {}
    for pt in res.points:
        if "alpha_planck" in pt.stats:
            key = (pt.values["dynamics"], pt.values.get("alpha"))
            by.setdefault(key, []).append((pt.values["temperature"], *pt.stats["alpha_planck"]))
    for (dyn, al), rows in by.items():
        T, m, s = np.array(sorted(rows)).T
        ax[2].errorbar(T, m, s, marker="o", capsize=3, label=dyn + ("" if al is None else f" α={al:g}"))
    ax[2].axhspan(0.5, 2.0, color="gray", alpha=0.15, label="Planckian band α ~ 1")
    ax[2].axhline(1.0, color="gray", lw=0.8)
    ax[2].set(xscale="log", yscale="log", xlabel="T (K)", ylabel="α = D m*/ħ", title="Planckian ratio")
    ax[2].legend(fontsize=7)
    fig.tight_layout()
    return fig


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    if args.N < 8 or args.N % 2:
        p.error(f"--N={args.N}: allowed even N >= 8 (the ring needs even N)")
    if args.frames < 8:
        p.error(f"--frames={args.frames}: allowed >= 8")
    common.check(p, args, temperatures=(0, None, True), N=(8, None, False))
    if args.sigma is not None and not args.sigma > 0:
        p.error(f"--sigma={args.sigma:g}: allowed (0, inf) Å")
    if args.alphas is not None and any(not math.isfinite(x) for x in args.alphas):
        p.error(f"--alphas={args.alphas}: allowed finite numbers (eV/Å)")
    import wow
    from wow import transport
    from wow.units import M_E

    pts = points(args)
    for pt in pts:  # every point's Config before any work
        try:
            wow.validate(pt.config)
        except wow.ConfigError as e:
            p.error(f"{pt.label}: {e}")
    inputs = {"model": (args.model, "", "electron-lattice model"),
              "k0": (pts[0].config.k0, "1/angstrom", "packet momentum")}
    res = common.sweep(p, args, EXPERIMENT, pts, inputs,
                       "τ_p, D, μ, α = D m*/ħ and the energy exchange against T and the lattice dynamics",
                       runner=runner(args))
    cfg0 = pts[0].config
    mstar = transport.band_mass(cfg0.electron.t0, cfg0.chain.a)
    rows = [["point", "τ_p (fs)", "D (Å²/fs)", "D_Kubo (Å²/fs)", "window (fs)", "μ (cm²/Vs)", "α = Dm*/ħ",
             "dE_e/dt (meV/ps)", "τ_E (fs)", "ΔE_lat (meV)"]]
    for pt in res.points:
        s = pt.stats
        nan = (float("nan"), float("nan"))
        win = f"{s['t_fit_start'][0]:.0f}-{s['t_fit_stop'][0]:.0f}" + ("" if s.get("flat", (1,))[0] else " (not flat)") \
            if "D" in s else "-"
        rows.append([pt.label, fmt(s["tau_p"]), fmt(s.get("D", nan)), fmt(s.get("D_kubo", nan)), win,
                     fmt(s.get("mu", nan)), fmt(s.get("alpha_planck", nan)),
                     fmt(tuple(1e6 * x for x in s["rate_E"])), fmt(s["tau_E"]), fmt(tuple(1e3 * x for x in s["dE_lat"]))])
    head = (f"diffusion ({args.model}: t0 = {cfg0.electron.t0:.4g} eV, a = {cfg0.chain.a:g} Å, "
            f"m* = ħ²/(2t0a²) = {mstar / M_E:.3g} m_e; N = {args.N} ring, {args.samples} samples, "
            f"{args.duration:g} fs, dt = {args.dt:g} fs, k0 = {cfg0.k0:.4g}/Å)")
    common.report(args, head, rows, lambda plot: figure(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
