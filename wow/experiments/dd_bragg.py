"""Bragg reflection and the Debye-Waller factor in the density-density model (paper Eqs. 28-31).

A plane-wave packet at k0 = π/a meets a ring of N atoms with a weak Gaussian pseudopotential (first
Born order). A static lattice reflects it coherently (Bragg, q = G = 2π/a). At temperature T every
frozen sample's atoms sit at ξ_j + u_j (Wigner samples, zero point included), and the backscattered
amplitude splits over samples into a coherent part |<ψ~>_s|² (the elastic, Debye-Waller share: in the
quantum picture no phonon occupation changes) and an incoherent rest (phonons created or absorbed).
For each T this script reports, from wow.run with the density-density model:
  * P_tot: the mean mechanical backscattering Σ_{p<0}|ψ~|², and P_coh: its coherent part (unbiased
    estimator over samples), against the static lattice's P_static;
  * P_coh/P_static against e^{-2W(G)}, 2W = G²<u_j²> (exact in this limit), and the elastic share
    P_coh/P_tot, the number the paper's "mostly elastic" claim is about;
  * where the mechanical momentum goes: the CM takes all of it, <ΔP_R> = -<Δp> (exact here, the
    internal modes carry none), reported per backscattered weight against 2ħk0.
On a 1D ring <u_j²> grows like N (classically (N² - 1) k_B T/(12 N K)), so the elastic share falls with
N at any T > 0: run --sizes to see it.
"""

from __future__ import annotations

import math
import sys

import numpy as np

from . import common

EXPERIMENT = "dd_bragg"


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=64, duration=3.0, dt=0.02)
    g = p.add_argument_group("physics")
    g.add_argument("--temperatures", type=common.float_list, default=[0.0, 100.0, 300.0, 600.0],
                   help="temperatures T (K), Wigner samples (zero point included)")
    g.add_argument("--sizes", type=common.int_list, default=[32], help="ring sizes N (atoms)")
    g.add_argument("--V0", type=float, default=0.02, help="pseudopotential strength (eV; weak: Born limit)")
    g.add_argument("--w", type=float, default=0.8, help="pseudopotential width (Å)")
    g.add_argument("--g", type=int, default=8, help="grid points per lattice spacing (h = a/g <= w/2.5)")
    g.add_argument("--sigma", type=float, default=4.0, help="packet width (Å)")
    g.add_argument("--mass", type=float, default=63.546, help="atomic mass M (amu)")
    return p


def points(args):
    """The sweep's points: per N the static reference (T = 0, classical: the unmoved lattice, marked
    static = 1) and one point per T (Wigner samples)."""
    import wow
    from wow import io

    out = []
    for N in args.sizes:
        chain = wow.Chain(N=N, boundary="ring", mass=args.mass)
        el = wow.Continuum(V0=args.V0, w=args.w, g=args.g, packet="plane", k0=math.pi / chain.a, sigma=args.sigma,
                           x0=N * chain.a / 2)
        base = dict(chain=chain, electron=el, dynamics="frozen", statistics="quantum", dt=args.dt,
                    duration=args.duration, n_frames=1, dtype=args.dtype, cm_momentum=0.0)
        out.append(io.Point(f"N={N} static", {"N": N, "temperature": 0.0, "static": 1},
                            wow.Config(temperature=0.0, **dict(base, statistics="classical"))))
        out += [io.Point(f"N={N} T={T:g}", {"N": N, "temperature": T, "static": 0}, wow.Config(temperature=T, **base))
                for T in args.temperatures]
    return out


def run_point(point, n_samples, seed, *, devices=None, chunk_size=None, progress=None, allow_crossing=False):
    """wow.run of the point, its final amplitudes reduced to the mechanical split (``mechanical_split``:
    stats 'P_tot' with its error and attribute 'P_coh'); the amplitudes themselves are not kept."""
    from wow.ensemble import run

    res = run(point.config, n_samples, seed, keep_final=True, devices=devices, chunk_size=chunk_size,
              progress=progress, allow_crossing=allow_crossing)
    P_tot, P_coh, sem = mechanical_split(np.asarray(res.final["psi"]))
    res.final = None
    res.stats["P_tot"] = (P_tot, sem)
    res.attrs = {"P_coh": P_coh}
    return res, None


def mechanical_split(psi):
    """(P_tot, P_coh, sem of P_tot) of final amplitudes ψ (S, N_s): the mechanical backscattering
    Σ_{p<0}|ψ~|² per sample, and its coherent part Σ_{p<0}|<ψ~>_s|² by the unbiased estimator
    (|Σ_s ψ~|² - Σ_s |ψ~|²)/(S(S - 1))."""
    S, n = psi.shape
    psik = np.fft.fft(psi, axis=-1, norm="ortho")
    back = np.fft.fftfreq(n) < 0
    s = psik[:, back]
    per = np.sum(np.abs(s) ** 2, axis=1)
    coh = (np.sum(np.abs(s.sum(0)) ** 2) - per.sum()) / (S * (S - 1)) if S > 1 else float(per[0])
    return float(per.mean()), float(coh), float(per.std(ddof=1) / math.sqrt(S)) if S > 1 else 0.0


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, temperatures=(0, None, False), sizes=(3, None, False), sigma=(0, None, True),
                 w=(0, None, True), g=(2, None, False), mass=(0, None, True))
    import wow
    from wow import theory
    from wow.units import HBAR

    pts = points(args)
    common.validate_points(p, pts)  # every input refused before any work
    inputs = {"temperatures": (args.temperatures, "K", "temperatures"), "sizes": (args.sizes, "", "ring sizes N")}
    res = common.sweep(p, args, EXPERIMENT, pts, inputs,
                       "Bragg reflection at k0 = pi/a and the Debye-Waller factor, density-density model",
                       runner=run_point)
    log = common.log_of(args)
    rows = [["N", "T (K)", "P_tot", "P_coh", "P_coh/P_static", "e^{-2W(G)}", "elastic share P_coh/P_tot",
             "<ΔP_R>/(P_b 2ħk0)"]]
    static = {pt.values["N"]: pt.stats["P_tot"][0] for pt in res.points if pt.values["static"]}
    table = []
    for pt in res.points:
        cfg, N, T = pt.config, int(pt.values["N"]), float(pt.values["temperature"])
        if pt.values["static"]:
            if log:
                log(f"N={N} static lattice: P_b = {static[N]:.4e}")
            continue
        P_tot, sem = pt.stats["P_tot"]
        P_coh = float(pt.attrs["P_coh"])
        dP_R = float(np.mean(pt.per_sample["dP_cm"]))  # = -<Δp>: the CM's momentum change (eV·fs/Å)
        dw = theory.debye_waller_factor(cfg.chain, 2 * math.pi / cfg.chain.a, T, "quantum")
        line = dict(N=N, T=T, P_tot=P_tot, P_tot_sem=sem, P_coh=P_coh, P_static=static[N], dw=dw,
                    ratio=P_coh / static[N], share=P_coh / P_tot, cm=dP_R / (P_tot * 2 * HBAR * cfg.k0))
        table.append(line)
        rows.append([str(N), f"{T:g}", f"{P_tot:.4e} ± {sem:.1e}", f"{P_coh:.4e}", f"{line['ratio']:.4f}",
                     f"{dw:.4f}", f"{line['share']:.4f}", f"{line['cm']:.4f}"])
        if log:
            log(f"N={N} T={T:g} K: P_coh/P_static = {line['ratio']:.4f}, e^-2W = {dw:.4f}, share {line['share']:.4f}")
    head = (f"Bragg reflection at k0 = π/a, density-density model (V0 = {args.V0:g} eV, w = {args.w:g} Å, "
            f"frozen Wigner samples, {args.samples} per point, {args.duration:g} fs)")

    def figure(plot):
        import matplotlib.pyplot as plt

        fig, ax = plt.subplots(figsize=(5.5, 3.8))
        for N in args.sizes:
            sel = [ln for ln in table if ln["N"] == N]
            Ts = [ln["T"] for ln in sel]
            ax.plot(Ts, [ln["ratio"] for ln in sel], "o", label=f"P_coh/P_static, N={N}")
            ax.plot(Ts, [ln["dw"] for ln in sel], "-", label=f"e^(-2W(G)), N={N}")
            ax.plot(Ts, [ln["share"] for ln in sel], "s", mfc="none", label=f"elastic share, N={N}")
        ax.set_xlabel("T (K)")
        ax.set_ylabel("fraction")
        ax.legend(fontsize=7)
        return fig

    common.report(args, head, rows, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
