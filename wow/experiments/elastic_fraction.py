"""Is electron backscattering on a thermal chain phonon-diagonal? The quantum lattice's answer beside
the paper's Debye-Waller and Huang-Rhys estimates, at the same T and N.

The modes able to take the backscattering momentum are quantum (wow.quantum): on the open chain the
standing waves with q = 2k0 (one-phonon backscattering) and q = k0 (two-phonon processes whose net
occupation change can be zero), on the ring the cos/sin pairs of the same |q|. The other modes are
absent by default, so every backscattered electron scattered off these quantum modes. Initial
phonon states are thermal Fock states (in the standing-wave basis; on the ring also in the
running-wave ±q basis, whose Fock states carry crystal momentum). Per case it reports the fraction
of the backscattered probability with Δn = 0 (every occupation unchanged), by order Σ_j|Δn_j|, the
mean energy Σ_j ħω_j Δn_j given to the phonons by the backscattered part, and beside it, at q = 2k0,
the packet's centre site:
  exp(-2W), 2W = q²<u_n²> (all modes, quantum <u²> relative to the CM; MODEL.md, paper Eq. 31);
  the Huang-Rhys occupation-diagonal fraction of e^{iqu_n} (paper Eq. 30, Table I's quantity),
  over all modes and over the quantum modes alone.
Those two belong to a density-density coupling e^{-iqu}; the chain's SSH coupling is linear in u,
whose first-order occupation-diagonal part is exactly zero (see README, "Quantum lattice").

Writes <out>/elastic_fraction.md and <out>/elastic_fraction.png; defaults take about a minute on
a 2-core CPU.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[2]
CASES = ("open", "ring-standing", "ring-running")


def build_parser():
    p = argparse.ArgumentParser(prog="wow run elastic_fraction", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.ArgumentDefaultsHelpFormatter)
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
    r = p.add_argument_group("run")
    r.add_argument("--samples", type=int, default=24, help="thermal samples per case (>= 2)")
    r.add_argument("--seed", type=int, default=0, help="PRNG seed")
    r.add_argument("--duration", type=float, default=8.0, help="run length (fs)")
    r.add_argument("--dt", type=float, default=0.02, help="electron time step (fs)")
    r.add_argument("--phonon-every", type=int, default=10, help="electron steps per phonon step")
    r.add_argument("--out", type=Path, default=ROOT / "results", help="folder for elastic_fraction.md/.png")
    return p


def check(p, args):
    def bad(name, v, rng):
        p.error(f"--{name}={v!r}: allowed {rng}")
    if args.T < 0:
        bad("T", args.T, "T >= 0")
    if args.N_open < 12:
        bad("N-open", args.N_open, "integers >= 12")
    if args.N_ring < 12 or args.N_ring % 2:
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
    if args.samples < 2:
        bad("samples", args.samples, "integers >= 2")
    if not 0 <= args.seed < 2**63:
        bad("seed", args.seed, "[0, 2**63)")
    for name in ("duration", "dt", "sigma"):
        if getattr(args, name) <= 0:
            bad(name, getattr(args, name), "> 0")
    if args.phonon_every < 1:
        bad("phonon-every", args.phonon_every, "integers >= 1")
    cases = [c.strip() for c in args.cases.split(",") if c.strip()]
    if not cases or any(c not in CASES for c in cases):
        bad("cases", args.cases, f"a comma-separated subset of {', '.join(CASES)}")
    args.case_list = cases
    if args.out.exists() and not args.out.is_dir():
        p.error(f"--out {args.out}: not a folder")
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


def one_case(case, args):
    import wow
    from wow import lattice as L
    from wow import quantum as qm
    from wow.units import HBAR

    ring = case.startswith("ring")
    N = args.N_ring if ring else args.N_open
    chain = wow.Chain(N=N, boundary="ring" if ring else "open")
    k0 = math.pi / (3 * chain.a)
    q = 2 * k0
    modes = tuple(sorted(set(qm.momentum_modes(chain, q) + qm.momentum_modes(chain, k0))))
    cfg = wow.Config(chain=chain, electron=wow.Electron(alpha=args.alpha, sigma=args.sigma), temperature=args.T,
                     statistics="quantum", dynamics="frozen" if args.others != "wow" else "wow", dt=args.dt,
                     duration=args.duration, n_frames=4)
    ql = qm.QuantumLattice(modes=modes, n_max=n_max_of(chain, modes, args), others=args.others,
                           basis="running" if case == "ring-running" else "standing", phonon_every=args.phonon_every)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        r = qm.run(cfg, ql, args.samples, seed=args.seed)
    site = int(round(cfg.x0 / chain.a))
    u2 = float((L.mode_matrix(chain)[site] ** 2) @ (HBAR / (2 * chain.mass_ev * L.mode_frequencies(chain))
                                                   / np.tanh(HBAR * L.mode_frequencies(chain) / (2 * wow.KB * args.T))))
    hr_all, src = huang_rhys_all(chain, q, args.T, site)
    return dict(case=case, N=N, modes=modes, q=q, res=r, two_w=q**2 * u2, dw=math.exp(-q**2 * u2), hr_all=hr_all,
                hr_src=src, hr_q=huang_rhys_modes(chain, q, args.T, site, modes),
                omegas=[float(x) for x in r.hw], warnings=[str(w.message) for w in caught],
                n_max=[d - 1 for d in r.per_sample["pop"].shape[1:]])


def fmt(m, s):
    return f"{m:.3g} ± {s:.1g}" if np.isfinite(s) else f"{m:.3g}"


def write_markdown(path, args, rows, wall, platform):
    import jax

    import wow

    L = [f"# Elastic (Δn = 0) fraction of backscattering: quantum lattice vs Debye-Waller and Huang-Rhys",
         "",
         f"`python experiments/elastic_fraction.py --T {args.T:g} --N-open {args.N_open} --N-ring {args.N_ring} "
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
    path.write_text("\n".join(L))


def plot(path, rows):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a1, a2) = plt.subplots(1, 2, figsize=(11, 4.2))
    x = np.arange(len(rows))
    names = [r["case"] for r in rows]
    sim = np.array([r["res"].fractions["f_el"][0] for r in rows])
    err = np.array([r["res"].fractions["f_el"][1] for r in rows])
    floor = 1e-9
    a1.bar(x - 0.27, np.maximum(sim, floor), 0.27, yerr=err, label="quantum lattice: Δn = 0 share of P_b", color="C0")
    a1.bar(x, [r["dw"] for r in rows], 0.27, label="exp(-2W), all modes", color="C1")
    a1.bar(x + 0.27, [r["hr_all"] for r in rows], 0.27, label="Huang-Rhys, all modes", color="C2")
    a1.set_yscale("log")
    a1.set_ylim(floor, 2)
    a1.set_xticks(x, names)
    a1.set_ylabel("elastic (phonon-diagonal) fraction")
    a1.set_title("backscattering with every occupation unchanged")
    a1.legend(fontsize=8, loc="lower left")
    orders = ["f_order0", "f_order1", "f_order2", "f_order3", "f_order4+"]
    for i, o in enumerate(orders):
        v = [max(r["res"].fractions[o][0], floor) for r in rows]
        a2.bar(x + (i - 2) * 0.16, v, 0.16, label=f"Σ|Δn| = {o[7:]}")
    a2.set_yscale("log")
    a2.set_ylim(floor, 2)
    a2.set_xticks(x, names)
    a2.set_ylabel("share of backscattered probability")
    a2.set_title("by number of phonons changed")
    a2.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110, bbox_inches="tight")


def main(argv=None):
    p = build_parser()
    args = check(p, p.parse_args(argv))
    import jax

    jax.config.update("jax_enable_x64", True)
    import wow
    from wow import devices

    devices.use_cpu_cores()  # one JAX device per core: samples run side by side

    t0 = time.perf_counter()
    rows = []
    for case in args.case_list:
        try:
            rows.append(one_case(case, args))
        except wow.ConfigError as e:
            p.exit(2, f"{p.prog}: error in case {case}: {e}\n")
        r = rows[-1]["res"]
        print(f"{case}: P_b {r.stats['P_b'][0]:.4g}, Δn=0 fraction {r.fractions['f_el'][0]:.3g} ± "
              f"{r.fractions['f_el'][1]:.1g}, exp(-2W) {rows[-1]['dw']:.4f}, HR {rows[-1]['hr_all']:.4f} "
              f"({r.compile_s:.0f} s compile, {r.run_s:.0f} s run)", flush=True)
    wall = time.perf_counter() - t0
    platform = f"{jax.devices()[0].platform} x {len(jax.devices())}"
    args.out.mkdir(parents=True, exist_ok=True)
    write_markdown(args.out / "elastic_fraction.md", args, rows, wall, platform)
    plot(args.out / "elastic_fraction.png", rows)
    print(f"wrote {args.out / 'elastic_fraction.md'} and {args.out / 'elastic_fraction.png'} ({wall:.0f} s)")


if __name__ == "__main__":
    main()
