"""Recoil of the chain's centre of mass in backscattering (paper Appendix A).

A packet at k0 is partly reflected by one modified bond of an otherwise perfect, static chain
(alpha = 0: the lattice is only a momentum sink). With CM recoil on, the electron moves in the
sector of total momentum Q = P + ħk0 and k -> -k costs the CM kinetic energy

    ΔE_recoil = 2ħk(P + ħk)/(NM)       (Eq. A8; zero at P = -ħk, Eq. A7; ∝ 1/N),

taken from the electron's band energy. For every chain size N this script runs
  * fixed CM momenta P (multiples of ħk0), recoil on;
  * a reference with recoil off (the defect's own energy filtering: R(k) favours part of the
    packet, so the reflected band energy differs from E_in even without recoil);
  * a thermal ensemble, P drawn from f(P) ∝ exp(-P²/(2NMk_BT)) (Eq. A10),
and reports the recoil energy two ways: from the electron, -(ΔE_b - ΔE_b[recoil off]), and from the
CM, ΔE_cm/P_b, against A8. A small atomic mass makes NM small enough to resolve it.
"""

from __future__ import annotations

import math
import sys

from . import common

EXPERIMENT = "recoil"
INSIDE = 5.0  # packet widths kept away from the chain's ends


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=64, duration=12.0)
    g = p.add_argument_group("physics")
    g.add_argument("--sizes", type=common.int_list, default=[128, 256, 512], help="chain sizes N (atoms)")
    g.add_argument("--momenta", type=common.float_list, default=[-3.0, -2.0, -1.0, 0.0, 1.0],
                   help="fixed CM momenta P in units of ħk0")
    g.add_argument("--mass", type=float, default=0.05, help="atomic mass M (amu): small, so NM is small")
    g.add_argument("--defect", type=float, default=-0.5, help="hopping offset δt of the middle bond (eV)")
    g.add_argument("--sigma", type=float, default=8.0, help="packet width σ (Å)")
    g.add_argument("--distance", type=float, default=45.0, help="packet start: this far left of the defect (Å)")
    g.add_argument("--alpha", type=float, default=0.0, help="SSH coupling α (eV/Å); 0 isolates the recoil")
    g.add_argument("--temperature", type=float, default=10.0,
                   help="T (K) of the thermal-P points (A10); the fixed-P points run at T = 0")
    g.add_argument("--no-thermal", action="store_true", help="skip the thermal-P points")
    return p


def points(p, args):
    import wow
    from wow import io
    from wow.electron import group_velocity
    from wow.units import HBAR

    a = 2.556
    k0 = math.pi / (3 * a)
    hk = HBAR * k0
    out = []
    for N in args.sizes:
        bond = N // 2 - 1
        xd = (bond + 0.5) * a
        x0 = xd - args.distance
        # the forward part must stay left of the right end, the reflected part right of the left end
        v = group_velocity(k0, 1.0, a)
        dv = 2 * a**2 * abs(math.cos(k0 * a)) / HBAR
        sig_t = math.sqrt(args.sigma**2 + (dv * args.duration / (2 * args.sigma)) ** 2)
        right = x0 + v * args.duration + INSIDE * sig_t
        left = 2 * xd - x0 - v * args.duration - INSIDE * sig_t
        if x0 - INSIDE * args.sigma < 0 or right > (N - 1) * a or left < 0:
            p.error(f"--sizes {N}: with --distance {args.distance:g} Å, --sigma {args.sigma:g} Å and "
                    f"--duration {args.duration:g} fs the packet reaches an end of the {N}-atom chain "
                    f"(span [0, {(N - 1) * a:g}] Å, packet from {min(left, x0 - INSIDE * args.sigma):.0f} to "
                    f"{right:.0f} Å): allowed N >= {math.ceil(max(right - x0 + args.distance, args.distance + INSIDE * args.sigma) * 2 / a) + 2} "
                    "or a shorter --duration")
        base = dict(chain=wow.Chain(N=N, mass=args.mass, a=a),
                    electron=wow.Electron(alpha=args.alpha, sigma=args.sigma, x0=x0, k0=k0,
                                          bond_defects=((bond, args.defect),)),
                    statistics="classical", dynamics="frozen", dt=args.dt, duration=args.duration,
                    n_frames=10, dtype=args.dtype, check_inside=False)
        out.append(io.Point(f"N={N} reference (recoil off)", {"N": N, "kind": "reference", "P_over_hbar_k0": None},
                            wow.Config(temperature=0.0, recoil=False, cm_momentum=0.0, **base)))
        for P in args.momenta:
            out.append(io.Point(f"N={N} P={P:g}hk0", {"N": N, "kind": "fixed", "P_over_hbar_k0": P},
                                wow.Config(temperature=0.0, recoil=True, cm_momentum=P * hk, **base)))
        if not args.no_thermal:
            out.append(io.Point(f"N={N} thermal P, T={args.temperature:g}K",
                                {"N": N, "kind": "thermal", "P_over_hbar_k0": None},
                                wow.Config(temperature=args.temperature, recoil=True, **base)))
    return out


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, sizes=(3, None, False), mass=(0, None, True), sigma=(0, None, True),
                  distance=(0, None, True), temperature=(0, None, False))
    from wow import io, plot

    inputs = {"sizes": (args.sizes, "", "chain sizes N"),
              "momenta": (args.momenta, "hbar*k0", "fixed CM momenta P"),
              "thermal_temperature": (args.temperature, "K", "T of the thermal-P points (A10)")}
    res = common.sweep(p, args, EXPERIMENT, points(p, args), inputs,
                        "CM recoil energy of backscattering against P and N (paper Eqs. A7, A8, A10)")
    rows = [["N", "P/ħk0", "P_b", "recoil from electron (µeV)", "from CM ΔE_cm/P_b (µeV)", "A8 (µeV)"]]
    for N, P, elec, cm, a8, pb in plot.recoil_rows(res):
        rows.append([str(N), P, f"{pb:.4f}", f"{elec[0] * 1e6:.2f} ± {elec[1] * 1e6:.2f}",
                     f"{cm * 1e6:.2f}", f"{a8 * 1e6:.2f}"])
    head = (f"recoil energy of backscattering (M = {args.mass:g} amu, defect δt = {args.defect:g} eV, "
            f"{args.samples} samples; the thermal row's A8 is its mean 2(ħk0)²/NM)")
    common.report(args, head, rows, lambda plot: plot.figure_recoil(res))
    return 0


if __name__ == "__main__":
    sys.exit(main())
