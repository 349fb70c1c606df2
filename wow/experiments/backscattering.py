"""Backscattering of an electron wavepacket by a thermal chain, against temperature and chain size.

For every chain size N, temperature T, thermal statistics (classical Boltzmann or quantum Wigner,
zero point included) and lattice dynamics (frozen disorder or the 'wow' moving lattice), run an
ensemble of thermal samples and report, with one-standard-error bars:
  P_b    the backscattered probability (weight at k < 0 after the run),
  dE_b   the energy change of the backscattered part (P_b-weighted mean; 0 = elastic),
  P_coh  the coherent part (survives the thermal average of the amplitude: Bragg-like, elastic) and
  P_inc  = P_tot - P_coh, the incoherent (thermal-diffuse) part.
Results go to an HDF5 file (resumable), a table (printed and saved as markdown) and a figure,
the last two beside the file.

The defaults finish in about a minute on a 2-core CPU; scale up with --samples, --sizes,
--temperatures, --duration and --device gpu.
"""

from __future__ import annotations

import itertools
import sys

from . import common

EXPERIMENT = "backscattering"


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=128, duration=10.0)
    g = p.add_argument_group("physics")
    g.add_argument("--temperatures", type=common.float_list, default=[30.0, 100.0, 300.0],
                   help="temperatures T (K), comma-separated")
    g.add_argument("--sizes", type=common.int_list, default=[128, 512],
                   help="chain sizes N (atoms), comma-separated")
    g.add_argument("--statistics", type=common.str_list(("classical", "quantum")),
                   default=["classical", "quantum"], help="thermal statistics to compare")
    g.add_argument("--dynamics", type=common.str_list(("frozen", "wow")), default=["frozen", "wow"],
                   help="lattice dynamics to compare")
    g.add_argument("--alpha", type=float, default=2.0, help="SSH bond coupling α (eV/Å)")
    g.add_argument("--D", type=float, default=0.0, help="deformation potential D (eV)")
    g.add_argument("--sigma", type=float, default=10.0, help="packet width σ (Å)")
    g.add_argument("--mass", type=float, default=63.546, help="atomic mass M (amu); default copper")
    g.add_argument("--boundary", choices=("open", "ring"), default="open", help="chain ends")
    g.add_argument("--recoil", action=__import__("argparse").BooleanOptionalAction, default=True,
                   help="CM recoil in the electron's dispersion (paper Eq. A8)")
    g.add_argument("--frames", type=int, default=20, help="frames recorded per run (traces)")
    g.add_argument("--trajectories", type=int, default=0,
                   help="samples per point also saved frame by frame (density, momentum, u_n)")
    return p


def points(args):
    import wow
    from wow import io

    out = []
    for N, stat, dyn, T in itertools.product(args.sizes, args.statistics, args.dynamics, args.temperatures):
        cfg = wow.Config(
            chain=wow.Chain(N=N, mass=args.mass, boundary=args.boundary),
            electron=wow.Electron(alpha=args.alpha, D=args.D, sigma=args.sigma),
            temperature=T, statistics=stat, dynamics=dyn, recoil=args.recoil, dt=args.dt,
            duration=args.duration, n_frames=args.frames, dtype=args.dtype)
        out.append(io.Point(f"N={N} T={T:g}K {stat} {dyn}",
                            {"N": N, "temperature": T, "statistics": stat, "dynamics": dyn}, cfg,
                            min(args.trajectories, args.samples)))
    return out


def table(res) -> list[list[str]]:
    rows = [["N", "T (K)", "statistics", "dynamics", "P_b", "ΔE_b (meV)", "P_coh", "P_inc"]]
    for p in res.points:
        v, co = p.values, p.coherent
        m, s = p.stats["P_b"]
        e, es = p.stats["dE_b"]
        # P_inc's own jackknife: P_tot and P_coh are correlated (the same samples), so their errors
        # do not add in quadrature
        inc, inc_s = co["P_inc"], co["P_inc_sem"]
        rows.append([str(v["N"]), f"{v['temperature']:g}", v["statistics"], v["dynamics"],
                     f"{m:.4f} ± {s:.4f}", f"{e * 1e3:.1f} ± {es * 1e3:.1f}",
                     f"{co['P_coh']:.4f} ± {co['P_coh_sem']:.4f}", f"{inc:.4f} ± {inc_s:.4f}"])
    return rows


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, temperatures=(0, None, False), sizes=(3, None, False), sigma=(0, None, True),
                  mass=(0, None, True), frames=(1, None, False), trajectories=(0, None, False))
    from wow import io

    inputs = {
        "temperatures": (args.temperatures, "K", "temperatures swept"),
        "sizes": (args.sizes, "", "chain sizes N swept"),
        "statistics": (",".join(args.statistics), "", "thermal statistics compared"),
        "dynamics": (",".join(args.dynamics), "", "lattice dynamics compared"),
    }
    res = common.sweep(p, args, EXPERIMENT, points(args), inputs,
                        "backscattering against T and N; classical vs quantum statistics, frozen vs wow lattice")
    rows = table(res)
    c = res.points[0].config
    head = (f"P_b, ΔE_b (P_b-weighted), coherent / incoherent split after {c.t_final:g} fs; "
            f"{args.samples} samples per point, ± one standard error; α = {args.alpha:g} eV/Å, "
            f"σ = {args.sigma:g} Å, k0 = π/3a, recoil {'on' if args.recoil else 'off'}, {args.dtype}")
    common.report(args, head, rows, lambda plot: plot.figure_sweep(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
