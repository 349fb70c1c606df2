"""The paper's Table I (Debye-Waller elastic fraction of copper at 300 K), recomputed, and its
analogue on wow's 1D chain held against the simulation.

Part 1, copper (paper Eqs. 31-33): 2W = q²<u²>/3 and f_el = exp(-2W) at q = 0.3, 1.36, 2.7 1/Å with
  the paper's <u²> = 1.9e-2 Å² and with the 3D Debye-model <u²> (Θ_D = 343 K, M = 63.546 amu, zero
  point included), and beside them the Huang-Rhys occupation-diagonal fraction (MODEL.md, Eq. 30)
  of one atom of a finite Debye crystal.
Part 2, the 1D chain: f_el(q = 2k0) = exp(-q²<u²>) at the packet's centre site (<u²> relative to
  the CM, quantum, zero point included) and the chain's Huang-Rhys fraction, against chain size N
  and temperature T, beside the coherent fraction P_coh/P_tot of backscattering that wow tallies
  over thermal samples (wow.run(...).coherent).
Writes <out>/table1.md and <out>/table1.png. The defaults finish in under a minute on a 2-core CPU.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import common

ROOT = Path(__file__).resolve().parents[2]

#: Paper Table I as printed: q (1/Å), 2W, f_el.
PAPER_TABLE = [(0.3, "5.7e-4", "0.9994"), (1.36, "1.2e-2", "0.988"), (2.7, "4.6e-2", "0.955")]
PAPER_U2 = 1.9e-2  # Å², paper Sec. V, copper at 300 K


def build_parser():
    p = argparse.ArgumentParser(prog="wow run table1", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
    c = p.add_argument_group("copper (part 1)")
    c.add_argument("--T-cu", type=float, default=300.0, help="temperature (K)")
    c.add_argument("--theta-D", type=float, default=343.0, help="Debye temperature of Cu (K)")
    c.add_argument("--mass-cu", type=float, default=63.546, help="atomic mass of Cu (amu)")
    c.add_argument("--u2-paper", type=float, default=PAPER_U2, help="the paper's <u²> (Å²)")
    c.add_argument("--n-atoms", type=int, default=1000, help="atoms of the finite Debye crystal for Huang-Rhys")
    g = p.add_argument_group("1D chain (part 2)")
    g.add_argument("--sizes", type=common.int_list, default=[128, 256, 512], help="chain sizes N, comma-separated")
    g.add_argument("--temperatures", type=common.float_list, default=[30.0, 100.0, 300.0], help="T (K), comma-separated")
    g.add_argument("--statistics", choices=("quantum", "classical"), default="quantum", help="thermal statistics")
    g.add_argument("--dynamics", choices=("frozen", "wow"), default="frozen", help="lattice dynamics")
    g.add_argument("--alpha", type=float, default=2.0, help="SSH coupling α (eV/Å)")
    g.add_argument("--sigma", type=float, default=15.0, help="packet width σ (Å)")
    g.add_argument("--samples", type=int, default=128, help="thermal samples per point (>= 2)")
    g.add_argument("--duration", type=float, default=10.0, help="run length (fs)")
    g.add_argument("--dt", type=float, default=0.02, help="time step (fs)")
    g.add_argument("--seed", type=int, default=0, help="PRNG seed")
    g.add_argument("--device", choices=("auto", "cpu", "gpu"), default="auto", help="where wow runs")
    g.add_argument("--no-sim", action="store_true", help="analytic columns only (no wow runs)")
    g.add_argument("--control-dt", type=float, default=-0.5,
                   help="control runs (smallest N): one static bond offset δt (eV) at the packet's centre; 0 = none")
    o = p.add_argument_group("output")
    o.add_argument("--out", type=Path, default=ROOT / "results", help="folder for table1.md and table1.png")
    return p


def check(p, args):
    """Refuse bad options before any work."""
    pos = {"T-cu": args.T_cu >= 0, "theta-D": args.theta_D > 0, "mass-cu": args.mass_cu > 0,
           "u2-paper": args.u2_paper > 0, "n-atoms": args.n_atoms >= 1, "sigma": args.sigma > 0,
           "samples": args.samples >= 2, "duration": args.duration > 0, "dt": args.dt > 0,
           "seed": 0 <= args.seed < 2**63, "sizes": all(n >= 3 for n in args.sizes),
           "temperatures": all(t >= 0 for t in args.temperatures)}
    rng = {"T-cu": ">= 0", "theta-D": "> 0", "mass-cu": "> 0", "u2-paper": "> 0", "n-atoms": ">= 1",
           "sigma": "> 0", "samples": ">= 2", "duration": "> 0", "dt": "> 0", "seed": "in [0, 2**63)",
           "sizes": "integers >= 3", "temperatures": ">= 0"}
    for name, ok in pos.items():
        if not ok:
            p.error(f"--{name}={getattr(args, name.replace('-', '_'))}: allowed {rng[name]}")


# --------------------------------------------------------------------------------------------
def copper_table(args, th):
    u2_debye = th.debye_msd(args.T_cu, args.theta_D, args.mass_cu)
    rows = []
    for q, w_print, f_print in PAPER_TABLE:
        w_p = th.debye_waller_2w(q, args.u2_paper, dim=3)
        w_d = th.debye_waller_2w(q, u2_debye, dim=3)
        rows.append(dict(q=q, w_print=w_print, f_print=f_print, w_paper=w_p, f_paper=math.exp(-w_p),
                         w_debye=w_d, f_debye=math.exp(-w_d),
                         hr_debye=th.huang_rhys_fraction_debye(q, args.T_cu, args.theta_D, args.mass_cu, args.n_atoms)))
    return u2_debye, rows


def chain_table(args, th, wow):
    import jax
    devices = None if args.device == "auto" else args.device
    rows = []
    for N in args.sizes:
        chain = wow.Chain(N=N)
        e = wow.Electron(alpha=args.alpha, sigma=args.sigma)
        for T in args.temperatures:
            cfg = wow.Config(chain=chain, electron=e, temperature=T, statistics=args.statistics,
                             dynamics=args.dynamics, duration=args.duration, dt=args.dt, n_frames=2)
            q = 2 * cfg.k0
            site = int(round(cfg.x0 / chain.a))
            u2 = float(th.msd_sites(chain, T, args.statistics)[site])
            two_w = th.debye_waller_2w(q, u2, dim=1)
            row = dict(N=N, T=T, q=q, site=site, u2=u2, two_w=two_w, f_dw=math.exp(-two_w),
                       f_hr=th.huang_rhys_fraction(chain, q, T, site=site) if args.statistics == "quantum" else float("nan"))
            if not args.no_sim:
                t0 = time.perf_counter()
                r = wow.run(cfg, args.samples, seed=args.seed, devices=devices)
                co = r.coherent
                row.update(P_tot=co["P_tot"], P_tot_sem=co["P_tot_sem"], P_coh=co["P_coh"],
                           P_coh_sem=co["P_coh_sem"], frac=co["P_coh"] / co["P_tot"],
                           frac_sem=co["P_coh_sem"] / co["P_tot"], seconds=time.perf_counter() - t0)
            rows.append(row)
            print(f"  N={N:5d} T={T:6.1f} K  <u²>={u2:.4g} Å²  exp(-2W)={row['f_dw']:.4f}  f_HR={row['f_hr']:.4f}"
                  + ("" if args.no_sim else f"  P_tot={row['P_tot']:.4f}  P_coh/P_tot={row['frac']:+.4f} ± {row['frac_sem']:.4f}"),
                  flush=True)
    control = []
    if not args.no_sim and args.control_dt != 0:
        N = args.sizes[0]
        for T in args.temperatures:
            chain = wow.Chain(N=N)
            cfg = wow.Config(chain=chain, temperature=T, statistics=args.statistics, dynamics=args.dynamics,
                             duration=args.duration, dt=args.dt, n_frames=2,
                             electron=wow.Electron(alpha=args.alpha, sigma=args.sigma,
                                                   bond_defects=((N // 2, args.control_dt),)))
            co = wow.run(cfg, args.samples, seed=args.seed, devices=devices).coherent
            control.append(dict(N=N, T=T, P_tot=co["P_tot"], P_coh=co["P_coh"], frac=co["P_coh"] / co["P_tot"],
                                frac_sem=co["P_coh_sem"] / co["P_tot"]))
            print(f"  control, static bond δt={args.control_dt:g} eV: N={N} T={T:g} K  P_tot={co['P_tot']:.4f}  "
                  f"P_coh/P_tot={control[-1]['frac']:+.4f} ± {control[-1]['frac_sem']:.4f}", flush=True)
    return rows, control, jax.devices()[0].platform


# --------------------------------------------------------------------------------------------
def write_markdown(path, args, u2_debye, cu, chain_rows, control, platform, wall, th):
    first = chain_rows[0] if chain_rows else None
    L = []
    L.append("# Table I of the paper, recomputed; and its 1D-chain analogue against wow\n")
    L.append(f"Written by `experiments/table1.py` ({time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
             f"{wall:.0f} s on {platform}). Command-line inputs: "
             f"`{' '.join(sys.argv[1:]) or '(defaults)'}`.\n")
    L.append(f"## 1. Copper at {args.T_cu:g} K (paper Eqs. 31-33: 2W = q²⟨u²⟩/3, f_el = exp(-2W))\n")
    L.append(f"* paper's ⟨u²⟩ = {args.u2_paper:.3g} Å²;")
    L.append(f"* 3D Debye model (Θ_D = {args.theta_D:g} K, M = {args.mass_cu:g} amu, zero point included): "
             f"⟨u²⟩ = {u2_debye:.4g} Å² (= 3 x {u2_debye / 3:.4g} Å² per Cartesian component), "
             f"{100 * (u2_debye / args.u2_paper - 1):+.1f}% from the paper's;")
    L.append(f"* f_HR: Huang-Rhys occupation-diagonal fraction of one atom of a {args.n_atoms}-atom Debye crystal "
             "(`theory.huang_rhys_fraction_debye`).\n")
    L.append("| q (1/Å) | 2W printed | 2W (paper ⟨u²⟩) | f_el printed | exp(-2W) (paper ⟨u²⟩) | "
             "2W (Debye) | exp(-2W) (Debye) | f_HR (Debye) | f_HR - exp(-2W) (Debye) |")
    L.append("|---|---|---|---|---|---|---|---|---|")
    for r in cu:
        L.append(f"| {r['q']:g} | {r['w_print']} | {r['w_paper']:.3e} | {r['f_print']} | {r['f_paper']:.5f} | "
                 f"{r['w_debye']:.3e} | {r['f_debye']:.5f} | {r['hr_debye']:.5f} | {r['hr_debye'] - r['f_debye']:.1e} |")
    ok = all(f"{r['w_paper']:.1e}".replace("e-0", "e-") == r["w_print"] and
             round(r["f_paper"], len(r["f_print"]) - 2) == float(r["f_print"]) for r in cu)
    L.append("")
    L.append(f"**Reproduction with the paper's ⟨u²⟩:** {'every printed digit of 2W and f_el is reproduced' if ok else 'NOT reproduced to the printed digits (see the table)'}.\n")
    dw = [100 * (r["w_debye"] / r["w_paper"] - 1) for r in cu]
    df = [r["f_debye"] - r["f_paper"] for r in cu]
    L.append(f"**Debye model:** its ⟨u²⟩ is {100 * (u2_debye / args.u2_paper - 1):+.1f}% from the paper's, so every 2W "
             f"differs by that same {dw[0]:+.1f}%; f_el then differs by {df[0]:+.1e}, {df[1]:+.1e}, {df[2]:+.1e} "
             f"at q = 0.3, 1.36, 2.7 1/Å (printed to the paper's digits: "
             + ", ".join(f"{r['f_debye']:.{len(r['f_print']) - 2}f}" for r in cu) + " against "
             + ", ".join(r["f_print"] for r in cu) + ").\n")
    mx = max(abs(r["hr_debye"] - r["f_debye"]) for r in cu)
    L.append(f"**Huang-Rhys (Eq. 30) against exp(-2W) (Eq. 31) in 3D:** the occupation-diagonal fraction exceeds "
             f"exp(-2W) by a Bessel factor Π I_0 that falls as n_atoms^(-2/3); for {args.n_atoms} atoms the "
             f"largest difference is {mx:.1e}, far below the printed digits. In 3D, Eq. 31's "
             "f_el ≈ exp(-2W) is the Huang-Rhys fraction of Eq. 30.\n")
    if chain_rows:
        L.append(f"## 2. The 1D chain: f_el(q = 2k0) against N and T, beside the simulation\n")
        e = wow_defaults()
        L.append(f"Chain: Cu-like (M = 63.546 amu, K = 3.32 eV/Å², a = 2.556 Å), open ends; electron t0 = {e['t0']:g} eV, "
                 f"SSH α = {args.alpha:g} eV/Å, D = 0, k0 = π/(3a), q = 2k0 = {first['q']:.4f} 1/Å, packet σ = {args.sigma:g} Å "
                 f"at the chain's middle; {args.statistics} statistics, {args.dynamics} lattice, {args.duration:g} fs, "
                 f"{args.samples} samples per point, seed {args.seed}. ⟨u²⟩ is the {args.statistics} mean-square displacement "
                 "relative to the CM at the packet's centre site; 2W = q²⟨u²⟩ (1D); f_HR the chain's Huang-Rhys fraction "
                 "(standing-wave Fock basis). Simulation: P_tot = ⟨Σ_{k<0}\\|ψ~\\|²⟩_s, P_coh = Σ_{k<0}\\|⟨ψ~⟩_s\\|² (unbiased), "
                 "coherent fraction P_coh/P_tot with its jackknife error.\n")
        sim = "P_tot" in first
        head = "| N | T (K) | ⟨u²⟩ (Å²) | 2W | exp(-2W) | f_HR |" + (" P_tot | P_coh | P_coh/P_tot (sim) |" if sim else "")
        L.append(head)
        L.append("|" + "---|" * head.count("|")[:-1] if False else "|" + "---|" * (head.count("|") - 1))
        for r in chain_rows:
            line = f"| {r['N']} | {r['T']:g} | {r['u2']:.4g} | {r['two_w']:.4f} | {r['f_dw']:.4f} | {r['f_hr']:.4f} |"
            if sim:
                line += (f" {r['P_tot']:.4f} ± {r['P_tot_sem']:.4f} | {r['P_coh']:+.5f} ± {r['P_coh_sem']:.5f} | "
                         f"{r['frac']:+.4f} ± {r['frac_sem']:.4f} |")
            L.append(line)
        L.append("")
        rel = [r["f_hr"] / r["f_dw"] - 1 for r in chain_rows]
        L.append(f"**Huang-Rhys against exp(-2W) in 1D:** f_HR exceeds exp(-2W) by {100 * min(rel):.2g}% to "
                 f"{100 * max(rel):.2g}% (growing with N and T): the chain's softest modes each carry an O(1) share of "
                 "⟨u²⟩ (λ_1 does not fall with N in 1D), so the Bessel factor does not vanish as it does in 3D.\n")
        L.append("**exp(-2W) in 1D falls with N:** ⟨u²⟩ relative to the CM grows ∝ N (classically k_BT N/(12K) "
                 "mid-chain; no long-range order in 1D) and, from the zero point alone, ∝ log N at T = 0, so the paper's "
                 "f_el → 0 for a long chain.\n")
        if sim:
            fr = np.array([r["frac"] for r in chain_rows])
            fs = np.array([r["frac_sem"] for r in chain_rows])
            fd = np.array([r["f_dw"] for r in chain_rows])
            z = np.abs(fr) / fs
            L.append(f"**The simulation disagrees with f_el, and the simulation wins.** The coherent fraction wow "
                     f"tallies is {fr.min():+.4f} to {fr.max():+.4f} (all within {z.max():.1f} standard errors of 0), "
                     f"while exp(-2W) is {fd.min():.3f} to {fd.max():.3f}. This is not noise and not a bug: with the SSH "
                     "(and deformation) coupling the electron is scattered by bond stretches b_n, whose thermal mean is zero, "
                     "and the thermal ensemble is translation invariant in the bulk, so the sample-averaged amplitude "
                     "⟨ψ~(k)⟩_s keeps the momentum distribution of the incoming packet and has no weight at k < 0. "
                     "Quantum-mechanically, the amplitude at first order in α is linear in the displacements, i.e. one-phonon, "
                     "with no phonon-diagonal part; phonon-diagonal parts appear only at second order, and their thermal "
                     "mean (∝ ⟨b_n²⟩) is uniform in the bulk, so they do not backscatter coherently either. "
                     "(P_coh/P_tot is the frozen-phonon/Wigner coherent split; an occupation-resolved elastic fraction "
                     "needs a quantum-lattice backend.) exp(-2W) is the diagonal fraction of the form factor e^{iqu} of a "
                     "density-density coupling (paper Eqs. 13-18), which the tight-binding chain of Appendix A (Eq. A4) does "
                     "not have; it is not the elastic fraction of that chain's backscattering.\n")
    if control:
        L.append(f"**Control: the coherent tally does see a static scatterer.** The same runs at N = {control[0]['N']} "
                 f"with one static bond offset δt = {args.control_dt:g} eV at the packet's centre give P_coh/P_tot = "
                 + ", ".join(f"{c['frac']:.3f} ± {c['frac_sem']:.3f} (T = {c['T']:g} K)" for c in control)
                 + "; with α = 0 every sample would be the same and the fraction 1 by construction. Elastic, sample-coherent backscattering "
                 "exists in wow whenever something static breaks translation invariance; the thermal lattice alone "
                 "provides none, and it reduces the coherent part of the static scatterer's reflection.\n")
    L.append("## Reproduce\n")
    L.append("```bash\npython experiments/table1.py            # defaults, < 1 min on a 2-core CPU\n"
             "python experiments/table1.py --samples 4096 --sizes 128,256,512,1024 --device gpu\n```\n")
    path.write_text("\n".join(L))


def wow_defaults():
    import wow
    e = wow.Electron()
    return {"t0": e.t0}


def plot(path, args, u2_debye, cu, chain_rows, control, th, wow):
    import matplotlib
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.3))
    q = np.linspace(0.0, 3.5, 200)
    a1.plot(q, np.exp(-th.debye_waller_2w(q, args.u2_paper)), "C0-", label=f"exp(-q²<u²>/3), paper <u²> = {args.u2_paper:g} Å²")
    a1.plot(q, np.exp(-th.debye_waller_2w(q, u2_debye)), "C1--", label=f"exp(-q²<u²>/3), Debye <u²> = {u2_debye:.4f} Å²")
    a1.plot(q, th.huang_rhys_fraction_debye(q, args.T_cu, args.theta_D, args.mass_cu, args.n_atoms), "C2:",
            label=f"Huang-Rhys f_HR, Debye, {args.n_atoms} atoms")
    a1.plot([r["q"] for r in cu], [float(r["f_print"]) for r in cu], "ks", mfc="none", ms=8, label="paper Table I (printed)")
    a1.set_xlabel("momentum transfer q (1/Å)")
    a1.set_ylabel("elastic internal fraction f_el")
    a1.set_title(f"Cu, T = {args.T_cu:g} K (3D, Eq. 33)")
    a1.legend(fontsize=8, loc="lower left")
    if chain_rows:
        Ts = sorted({r["T"] for r in chain_rows})
        Ns = np.array(sorted({r["N"] for r in chain_rows}))
        Nf = np.unique(np.geomspace(max(8, Ns.min() / 2), Ns.max() * 2, 40).astype(int))
        qq = chain_rows[0]["q"]
        for i, T in enumerate(Ts):
            f = [math.exp(-th.debye_waller_2w(qq, th.msd_sites(wow.Chain(N=int(n)), T, args.statistics)[int(n) // 2], dim=1))
                 for n in Nf]
            a2.plot(Nf, f, f"C{i}-", label=f"exp(-q²<u²>), T = {T:g} K")
            if args.statistics == "quantum":
                hr = [th.huang_rhys_fraction(wow.Chain(N=int(n)), qq, T) for n in Nf]
                a2.plot(Nf, hr, f"C{i}:", lw=1)
            rows = [r for r in chain_rows if r["T"] == T]
            if "frac" in rows[0]:
                shift = 1.0 + 0.05 * (i - (len(Ts) - 1) / 2)  # side by side, not on top of each other
                a2.errorbar([r["N"] * shift for r in rows], [r["frac"] for r in rows], yerr=[r["frac_sem"] for r in rows],
                            fmt=f"C{i}o", ms=5, capsize=3, label=f"wow P_coh/P_tot, T = {T:g} K")
        for i, T in enumerate(Ts):
            c = [r for r in control if r["T"] == T]
            if c:
                shift = 1.0 + 0.05 * (i - (len(Ts) - 1) / 2)
                a2.errorbar([c[0]["N"] * shift], [c[0]["frac"]], yerr=[c[0]["frac_sem"]], fmt=f"C{i}s", mfc="none",
                            ms=6, capsize=3)
        a2.plot([], [], "k:", lw=1, label="Huang-Rhys f_HR (dotted)")
        if control:
            a2.plot([], [], "ks", mfc="none", label=f"wow control: + static bond δt = {args.control_dt:g} eV")
        a2.axhline(0, color="0.6", lw=0.5)
        a2.set_xscale("log")
        a2.set_xlabel("chain size N (atoms)")
        a2.set_ylabel("elastic / coherent fraction")
        a2.set_title(f"1D chain, q = 2k0 = {qq:.3f} 1/Å ({args.statistics})")
        a2.set_ylim(-0.1, 1.05)
        a2.legend(fontsize=7, loc="center right", bbox_to_anchor=(1.0, 0.4))
    fig.tight_layout()
    fig.savefig(path, dpi=130)
    plt.close(fig)


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    check(p, args)
    import jax
    jax.config.update("jax_enable_x64", True)
    import wow
    from wow import theory as th

    try:
        for N in args.sizes:  # validate every chain point before any work
            wow.validate(wow.Config(chain=wow.Chain(N=N), electron=wow.Electron(alpha=args.alpha, sigma=args.sigma),
                                    temperature=max(args.temperatures), statistics=args.statistics,
                                    dynamics=args.dynamics, duration=args.duration, dt=args.dt, n_frames=2))
    except wow.ConfigError as err:
        p.error(str(err))
    args.out.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    u2_debye, cu = copper_table(args, th)
    print(f"Cu {args.T_cu:g} K: Debye <u²> = {u2_debye:.5g} Å² (paper {args.u2_paper:g} Å²)")
    for r in cu:
        print(f"  q={r['q']:5.2f}  2W paper {r['w_paper']:.3e} (printed {r['w_print']})  f {r['f_paper']:.5f} "
              f"(printed {r['f_print']})   Debye 2W {r['w_debye']:.3e} f {r['f_debye']:.5f}  f_HR {r['hr_debye']:.5f}")
    print("1D chain:")
    chain_rows, control, platform = chain_table(args, th, wow)
    wall = time.perf_counter() - t0
    write_markdown(args.out / "table1.md", args, u2_debye, cu, chain_rows, control, platform, wall, th)
    plot(args.out / "table1.png", args, u2_debye, cu, chain_rows, control, th, wow)
    print(f"wrote {args.out / 'table1.md'} and {args.out / 'table1.png'} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
