"""A few thermal samples saved frame by frame, for viewing: the electron density in space-time,
the momentum distribution before and after, the lattice displacements u_n(t), the band and CM
energies and the CM momentum <P_R>(t). Frames are decimated on the device (every
duration/frames fs) and stored chunked and compressed under /points/p0000/trajectories.
View them with `wow plot FILE` or plain h5py.
"""

from __future__ import annotations

import argparse
import sys

from . import common

EXPERIMENT = "trajectories"


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=4, duration=12.0)
    g = p.add_argument_group("physics")
    g.add_argument("--N", type=int, default=256, help="chain size (atoms)")
    g.add_argument("--temperature", type=float, default=300.0, help="T (K)")
    g.add_argument("--statistics", choices=("classical", "quantum"), default="quantum", help="thermal statistics")
    g.add_argument("--dynamics", choices=("frozen", "wow"), default="wow", help="lattice dynamics")
    g.add_argument("--alpha", type=float, default=2.0, help="SSH bond coupling α (eV/Å)")
    g.add_argument("--D", type=float, default=0.0, help="deformation potential D (eV)")
    g.add_argument("--sigma", type=float, default=10.0, help="packet width σ (Å)")
    g.add_argument("--mass", type=float, default=63.546, help="atomic mass M (amu)")
    g.add_argument("--recoil", action=argparse.BooleanOptionalAction, default=True, help="CM recoil")
    g.add_argument("--frames", type=int, default=120, help="frames saved (decimation: duration/frames)")
    return p


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, N=(3, None, False), temperature=(0, None, False), sigma=(0, None, True),
                  mass=(0, None, True), frames=(1, None, False))
    import wow
    from wow import io

    cfg = wow.Config(chain=wow.Chain(N=args.N, mass=args.mass),
                     electron=wow.Electron(alpha=args.alpha, D=args.D, sigma=args.sigma),
                     temperature=args.temperature, statistics=args.statistics, dynamics=args.dynamics,
                     recoil=args.recoil, dt=args.dt, duration=args.duration, n_frames=args.frames,
                     dtype=args.dtype, save_density=True)
    label = f"N={args.N} T={args.temperature:g}K {args.statistics} {args.dynamics}"
    point = io.Point(label, {"N": args.N, "temperature": args.temperature}, cfg, args.samples)
    res = common.sweep(p, args, EXPERIMENT, [point], {}, "a few samples frame by frame")
    pt = res.points[0]
    tr = pt.trajectories
    head = f"{label}: {args.samples} samples x {len(tr['times'])} frames x {args.N} sites saved in {args.out.name}"
    rows = [["sample", "P_b", "ΔE_b (meV)", "P_R(0) → P_R(t_f) (eV·fs/Å)"]] + [
        [str(s), f"{pt.per_sample['P_b'][s]:.4f}", f"{pt.per_sample['dE_b'][s] * 1e3:.1f}",
         f"{tr['P_R'][s, 0]:.4f} → {tr['P_R'][s, -1]:.4f}"] for s in range(args.samples)]
    common.report(args, head, rows, lambda plot: plot.figure_trajectories(pt))
    return 0


if __name__ == "__main__":
    sys.exit(main())
