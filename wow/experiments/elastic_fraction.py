"""Is electron backscattering on a thermal chain phonon-diagonal? The quantum lattice's answer beside
the paper's Debye-Waller and Huang-Rhys estimates, at the same T and N.

The modes able to take the backscattering momentum are quantum (dynamics='quantum'): on the open chain the
standing waves with q = 2k0 (one-phonon backscattering) and q = k0 (two-phonon processes whose net
occupation change can be zero), on the ring the cos/sin pairs of the same |q|. The other modes are
absent by default, so every backscattered electron scattered off these quantum modes. Initial
phonon states are thermal Fock states (in the standing-wave basis; on the ring also in the
running-wave ±q basis, whose Fock states carry crystal momentum). Per case it reports the fraction
of the backscattered probability with Δn = 0 (every occupation unchanged), by order Σ_j|Δn_j|, the
mean energy Σ_j ħω_j Δn_j given to the phonons by the backscattered part, and beside it, at q = 2k0,
the packet's centre site:
  exp(-2W), 2W = q²<u_n²> (all modes, quantum <u²> relative to the CM; docs/model.md, paper Eq. 31);
  the Huang-Rhys occupation-diagonal fraction of e^{iqu_n} (paper Eq. 30, Table I's quantity),
  over all modes and over the quantum modes alone.
Those two belong to a density-density coupling e^{-iqu}; the chain's SSH coupling is linear in u,
whose first-order occupation-diagonal part is exactly zero (see README, "Quantum lattice").

Writes the results file (--out) and beside it elastic_fraction.md and elastic_fraction.png; the
defaults take about a minute on a 2-core CPU.
"""

from __future__ import annotations

import math
import sys
import time
from types import SimpleNamespace

import numpy as np

from . import common

CASES = ("open", "ring-standing", "ring-running")


def build_parser():
    p = common.parser("elastic_fraction", __doc__.split("\n\n")[0], samples=24, duration=8.0)
    g = p.add_argument_group("physics")
    g.add_argument("--T", type=float, default=300.0, help="temperature (K)")
    g.add_argument("--N-open", type=int, default=120, help="atoms of the open chain")
    g.add_argument("--N-ring", type=int, default=60, help="atoms of the ring (even)")
    g.add_argument("--alpha", type=float, default=2.0, help="SSH coupling α (eV/Å)")
    g.add_argument("--sigma", type=float, default=15.0, help="packet width (Å)")
    g.add_argument("--n-max", default="auto",
                   help="Fock truncation per quantum mode: an integer, or 'auto' = per mode, the smallest n "
                        "with thermal P(n_j >= n) below --tail, plus 1 (so that a draw can still emit), at least 3")
    g.add_argument("--tail", type=float, default=0.02, help="thermal tail probability for --n-max auto")
    g.add_argument("--others", choices=("absent", "frozen", "wow"), default="absent",
                   help="the non-quantum modes (frozen/wow add classical static/moving disorder, which "
                        "backscatters without changing the quantum occupations)")
    g.add_argument("--cases", default=",".join(CASES), help=f"comma-separated subset of {', '.join(CASES)}")
    g.add_argument("--phonon-every", type=int, default=10, help="electron steps per phonon step")
    return p


def check(p, args):
    def bad(name, v, rng):
        p.error(f"--{name}={v!r}: allowed {rng}")
    if args.N_ring % 2:
        bad("N-ring", args.N_ring, "even integers >= 12")
    if args.n_max != "auto":
        try:
            args.n_max = int(args.n_max)
        except ValueError:
            bad("n-max", args.n_max, "'auto' or an integer >= 1")
        if args.n_max < 1:
            bad("n-max", args.n_max, "'auto' or an integer >= 1")
    if not 0 < args.tail < 1:
        bad("tail", args.tail, "(0, 1)")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases):
        bad("cases", args.cases, f"a comma-separated subset of {', '.join(CASES)}")
    args.case_list = cases
    common.check(p, args, T=(0, None, False), N_open=(12, None, False), N_ring=(12, None, False),
                 sigma=(0, None, True), phonon_every=(1, None, False))
    return args


def huang_rhys_modes(chain, q, T, site, modes):
    """Π_j exp(-λ_j(2n̄_j+1)) I_0(2λ_j sqrt(n̄_j(n̄_j+1))) over the given modes only (paper Eq. 30)."""
    from scipy.special import i0e

    from wow import lattice as L
    from wow.units import HBAR

    idx = np.asarray(modes) - 1
    w = L.mode_frequencies(chain)[idx]
    nb = L.fock_mean(chain, T)[idx] if T > 0 else np.zeros(len(idx))
    lam = q**2 * L.mode_matrix(chain)[site, idx] ** 2 * HBAR / (2 * chain.mass_ev * w)
    z = 2 * lam * np.sqrt(nb * (nb + 1))
    return float(np.exp(np.sum(np.log(i0e(z)) + z - lam * (2 * nb + 1))))


def n_max_of(chain, modes, args):
    """args.n_max for every mode, or per mode (auto): P(n >= n_max - 1) = (n̄/(n̄+1))^(n_max-1) <= tail."""
    if args.n_max != "auto":
        return args.n_max
    from wow import lattice as L

    nb = L.fock_mean(chain, args.T)[np.asarray(modes) - 1] if args.T > 0 else np.zeros(len(modes))
    r = nb / (nb + 1)
    need = [3 if x <= 0 else max(3, int(math.ceil(math.log(args.tail) / math.log(x))) + 1) for x in r]
    return tuple(need)


def huang_rhys_all(chain, q, T, site):
    try:  # wow.theory (another module's owner); the inline product is the same formula
        from wow.theory import huang_rhys_fraction
        return float(huang_rhys_fraction(chain, q, T, site=site)), "wow.theory"
    except ImportError:
        return huang_rhys_modes(chain, q, T, site, range(1, chain.N)), "inline"


def case_setup(case, args):
    """The chain, Config and quantum lattice of one case, and its analytic references."""
    import wow
    from wow import lattice as L
    from wow.units import HBAR

    ring = case.startswith("ring")
    N = args.N_ring if ring else args.N_open
    chain = wow.Chain(N=N, boundary="ring" if ring else "open")
    k0 = math.pi / (3 * chain.a)
    q = 2 * k0
    modes = tuple(sorted(set(wow.momentum_modes(chain, q) + wow.momentum_modes(chain, k0))))
    cfg = wow.Config(chain=chain, electron=wow.Electron(alpha=args.alpha, sigma=args.sigma), temperature=args.T,
                     statistics="quantum", dynamics="frozen" if args.others != "wow" else "wow", dt=args.dt,
                     duration=args.duration, n_frames=4, dtype=args.dtype)
    ql = wow.QuantumLattice(modes=modes, n_max=n_max_of(chain, modes, args), others=args.others,
                            basis="running" if case == "ring-running" else "standing", phonon_every=args.phonon_every)
    site = int(round(cfg.x0 / chain.a))
    u2 = float((L.mode_matrix(chain)[site] ** 2) @ (HBAR / (2 * chain.mass_ev * L.mode_frequencies(chain))
                                                   / np.tanh(HBAR * L.mode_frequencies(chain) / (2 * wow.KB * args.T))))
    hr_all, src = huang_rhys_all(chain, q, args.T, site)
    return dict(case=case, N=N, modes=modes, q=q, cfg=cfg, ql=ql, two_w=q**2 * u2, dw=math.exp(-q**2 * u2),
                hr_all=hr_all, hr_src=src, hr_q=huang_rhys_modes(chain, q, args.T, site, modes))


def quantum_lattice(options):
    import wow

    n_max = options["n_max"]
    return wow.QuantumLattice(modes=tuple(options["modes"]), n_max=tuple(n_max) if isinstance(n_max, list) else n_max,
                              others=options["others"], basis=options["basis"], phonon_every=options["phonon_every"])


def run_case(point, n_samples, seed, *, devices=None, chunk_size=None, progress=None, allow_crossing=False):
    """The sweep's runner: wow.run of the point's Config with its quantum lattice (the point's
    options) as dynamics='quantum', as the results file stores it (the Δn fractions beside the
    statistics, the channels as an attribute)."""
    import dataclasses

    import wow

    cfg = dataclasses.replace(point.config, dynamics="quantum", quantum=quantum_lattice(point.options))
    r = wow.run(cfg, n_samples, seed=seed, chunk_size=chunk_size, devices=devices, progress=progress,
                allow_crossing=allow_crossing)
    attrs = {"fraction_keys": list(r.fractions), "hw_eV": [float(x) for x in r.hw],
             "modes": [int(j) for j in r.modes],
             "channels": [[[int(v) for v in pat], float(pr)] for pat, pr in r.channels]}
    return SimpleNamespace(per_sample=r.per_sample, stats={**r.stats, **r.fractions}, times=r.times, traces=r.traces,
                           n_samples=r.n_samples, seed=r.seed, compile_s=r.compile_s, run_s=r.run_s,
                           coherent={}, attrs=attrs), None


def case_row(setup, point):
    """A case's row for the table and figure, from its point as read back from the results file."""
    import json

    a = point.attrs
    keys = json.loads(a["fraction_keys"])
    res = SimpleNamespace(stats={k: v for k, v in point.stats.items() if k not in keys},
                          fractions={k: point.stats[k] for k in keys}, per_sample=point.per_sample,
                          channels=[(tuple(pat), pr) for pat, pr in json.loads(a["channels"])])
    return dict(setup, res=res, omegas=json.loads(a["hw_eV"]), warnings=json.loads(a.get("warnings", "[]")),
                n_max=[d - 1 for d in point.per_sample["pop"].shape[1:]])


def fmt(m, s):
    return f"{m:.3g} ± {s:.1g}" if np.isfinite(s) else f"{m:.3g}"


def markdown(args, rows, wall, platform) -> str:
    import jax

    import wow

    L = [f"# Elastic (Δn = 0) fraction of backscattering: quantum lattice vs Debye-Waller and Huang-Rhys",
         "",
         f"`wow run elastic_fraction --T {args.T:g} --N-open {args.N_open} --N-ring {args.N_ring} "
         f"--alpha {args.alpha:g} --sigma {args.sigma:g} --n-max {args.n_max} --tail {args.tail:g} --others {args.others} "
         f"--samples {args.samples} --seed {args.seed} --duration {args.duration:g} --dt {args.dt:g} "
         f"--phonon-every {args.phonon_every}`",
         "",
         f"wow {wow.__version__}, jax {jax.__version__}, {platform}, wall {wall:.0f} s. Electron t0 = 1 eV, "
         f"k0 = π/(3a), q = 2k0 = {rows[0]['q']:.4f} 1/Å; copper-like chain (M = 63.546 amu, K = 3.32 eV/Å², "
         f"a = 2.556 Å); thermal Fock initial states; other modes {args.others}.",
         "",
         "| case | N | quantum modes (ħω meV, n_max) | P_b | Δn = 0 fraction | one-phonon | two-phonon | 3+ | "
         "⟨Σħω Δn⟩_b (meV) | exp(-2W) (2W) | Huang-Rhys, all modes | Huang-Rhys, quantum modes | max top weight |",
         "|---|---|---|---|---|---|---|---|---|---|---|---|---|"]
    for row in rows:
        r = row["res"]
        f = r.fractions
        three = (f["f_order3"][0] + f["f_order4+"][0])
        modes = ", ".join(f"{j} ({1e3 * w:.1f}, {n})" for j, w, n in zip(row["modes"], row["omegas"], row["n_max"]))
        E = r.stats["E_ph_b"]
        L.append(f"| {row['case']} | {row['N']} | {modes} | {fmt(*r.stats['P_b'])} | **{fmt(*f['f_el'])}** | "
                 f"{fmt(*f['f_order1'])} | {fmt(*f['f_order2'])} | {three:.2g} | {fmt(1e3 * E[0], 1e3 * E[1])} | "
                 f"{row['dw']:.4f} ({row['two_w']:.3g}) | {row['hr_all']:.4f} | {row['hr_q']:.5f} | "
                 f"{r.per_sample['top_max'].max():.2g} |")
    L += ["", "Largest backscattering channels (Δn per quantum mode, in the table's mode order; mean P_b):", ""]
    for row in rows:
        ch = "; ".join(f"{tuple(int(v) for v in pat)}: {p:.3g}" for pat, p in row["res"].channels[:6])
        L.append(f"- {row['case']}: {ch}")
    L += ["", "Warnings during the runs (truncation diagnostics):", ""]
    for row in rows:
        for w in row["warnings"] or ["none"]:
            L.append(f"- {row['case']}: {w}")
    L += ["", "Δn = 0 fraction: Σ over samples of the backscattered probability left in the initial Fock state of "
          "every quantum mode, over Σ P_b (ratio estimator, delta-method error over samples). exp(-2W): "
          "2W = q²<u_n²> at the packet's centre site with all N-1 modes (quantum, zero point included). "
          f"Huang-Rhys, all modes: {rows[0]['hr_src']}.huang_rhys_fraction; quantum modes: the same product over "
          "the quantum modes only. Both are occupation-diagonal fractions of e^{iqu_n} (density-density "
          "coupling); the SSH coupling of this chain is linear in u, so its first-order diagonal fraction is 0.", ""]
    return "\n".join(L)


def figure(rows):
    """a) the Δn = 0 share of backscattering beside exp(-2W) and Huang-Rhys; b) the shares by the number
    of phonons changed. Log scale (floor 1e-9); error bars one standard error."""
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(12, 5.2))
    x = np.arange(len(rows))
    names = [r["case"] for r in rows]
    sim = np.array([r["res"].fractions["f_el"][0] for r in rows])
    err = np.array([r["res"].fractions["f_el"][1] for r in rows])
    floor = 1e-9
    a1.bar(x - 0.27, np.maximum(sim, floor), 0.27, yerr=err, capsize=3, color="C0",
           label=r"quantum lattice: $\Delta n = 0$ share of $P_b$")
    a1.bar(x, [r["dw"] for r in rows], 0.27, label=r"$e^{-2W}$, all modes", color="C1")
    a1.bar(x + 0.27, [r["hr_all"] for r in rows], 0.27, label="Huang-Rhys, all modes", color="C2")
    a1.set_title(r"a) backscattering with every occupation unchanged ($q = 2k_0$)", fontsize=10)
    a1.set_ylabel("elastic (phonon-diagonal) fraction")
    orders = ["f_order0", "f_order1", "f_order2", "f_order3", "f_order4+"]
    for i, o in enumerate(orders):
        v = np.array([max(r["res"].fractions[o][0], floor) for r in rows])
        e = np.array([r["res"].fractions[o][1] for r in rows])
        a2.bar(x + (i - 2) * 0.16, v, 0.16, yerr=np.where(np.isfinite(e), e, 0), capsize=2,
               label=rf"$\Sigma_j|\Delta n_j|$ = {o[7:]}")
    a2.set_title("b) by the number of phonons changed", fontsize=10)
    a2.set_ylabel(r"share of the backscattered probability $P_b$")
    for ax, ncol in ((a1, 2), (a2, 3)):
        ax.set_yscale("log")
        ax.set_ylim(floor, 2)
        ax.set_xticks(x, names)
        ax.grid(alpha=0.3, axis="y")
        ax.legend(fontsize=8, loc="upper center", bbox_to_anchor=(0.5, -0.08), ncol=ncol)
    fig.suptitle("Is backscattering phonon-diagonal? (error bars: one standard error; bars below 1e-9 drawn at 1e-9)",
                 fontsize=10)
    fig.tight_layout()
    return fig


def main(argv=None):
    import dataclasses

    p = build_parser()
    args = check(p, p.parse_args(argv))
    import jax

    import wow
    from wow import io

    t0 = time.perf_counter()
    setups, pts = {}, []
    for case in args.case_list:
        try:
            st = case_setup(case, args)
            wow.validate(dataclasses.replace(st["cfg"], dynamics="quantum", quantum=st["ql"]))  # before any run
        except wow.ConfigError as e:
            p.exit(2, f"{p.prog}: error in case {case}: {e}\n")
        setups[case] = st
        pts.append(io.Point(case, {"case": case}, st["cfg"], options=dataclasses.asdict(st["ql"])))
    inputs = {"T": (args.T, "K", "temperature"), "cases": (",".join(args.case_list), "", "cases run")}
    res = common.sweep(p, args, "elastic_fraction", pts, inputs,
                       "the Δn = 0 share of backscattering on the quantum lattice, against exp(-2W) and Huang-Rhys",
                       runner=run_case)
    rows = [case_row(setups[q.values["case"]], q) for q in res.points]
    for row in rows:
        r = row["res"]
        print(f"{row['case']}: P_b {r.stats['P_b'][0]:.4g}, Δn=0 fraction {r.fractions['f_el'][0]:.3g} ± "
              f"{r.fractions['f_el'][1]:.1g}, exp(-2W) {row['dw']:.4f}, HR {row['hr_all']:.4f}", flush=True)
    wall = time.perf_counter() - t0
    platform = f"{jax.devices()[0].platform} x {len(jax.devices())}"
    if wow.devices.is_writer():
        common.write_table(args, markdown(args, rows, wall, platform))
        if not args.no_figure:
            common.headless()
            common.save_figure(figure(rows), args.figure, args.quiet)
    return 0


if __name__ == "__main__":
    sys.exit(main())
