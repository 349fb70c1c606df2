"""Where the momentum goes: Δn-resolved backscattering in the density-density model with quantum modes.

The paper's central claim (Eqs. 22-31, Table I): momentum reversal in a perfect thermal crystal is
mostly elastic, no phonon occupation changes and the lattice's centre of mass (CM) takes the
momentum, with an elastic fraction f_el ≈ e^{-2W}. This experiment asks the paper's own model.

An electron in one Bloch state of band 0 of the static ring, crystal momentum k0 (so q = 2k0 is a
definite momentum transfer, and the static lattice alone backscatters nothing), meets the ring's
atoms through the Gaussian pseudopotential v, the displacements entering e^{-iqu_j} to all orders.
The modes able to take crystal momentum 2k0 and k0 (the cos/sin pairs of those |q|; two-phonon and
energy-neutral processes included) are quantum: truncated Fock states, thermal initial occupations
in the running (±q, definite crystal momentum) or the standing (cos/sin) basis; the other modes are
absent (u = 0 along them), so every scattering event goes through the quantum modes. The CM is exact
(recoil on, sector Q = P_R + p): <ΔP_R> = -<Δp>, whatever the phonons do.
Cases: 'far', k0 = 2π c/L with c = round(N/6) (k0 ≈ π/(3a): q = 2k0 well away from G = 2π/a), and
'near', k0 = π/a - 2π/L (q = 2k0 = G - 4π/L: the backscattering is an Umklapp process).
For each (case, basis, N, T) it reports, from wow.run:
  * P_b, the backscattered (v_n(k) < 0) probability, and its share with every occupation unchanged
    (Δn = 0, the paper's elastic), over all final states and at the final crystal momentum -k0;
  * the shares by energy class (inelastic, superelastic, energy-neutral rearrangement) and the part
    whose crystal momentum the phonons do not account for ('CM-absorbed', the paper's quasielastic;
    running basis only), the mean phonon energy per backscattered weight, <ΔP_R>/(P_b 2ħk0);
and beside it, for the SAME modes, T, basis and clipped thermal draws (wow.theory, *_modes): Eq. 30
with the lattice sum kept, the single-site Huang-Rhys fraction and e^{-2W} at q = 2k0; and the
paper's numbers with every mode of the ring: e^{-2W} and the single-site Huang-Rhys fraction.
"""

from __future__ import annotations

import math
import sys
import time
from types import SimpleNamespace

import numpy as np

from . import common

EXPERIMENT = "dd_momentum"
CASES = ("far", "near")
BASES = ("running", "standing")


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=8, duration=4.0, dt=0.02)
    g = p.add_argument_group("physics")
    g.add_argument("--temperatures", type=common.float_list, default=[0.0, 300.0], help="temperatures T (K)")
    g.add_argument("--sizes", type=common.int_list, default=[12], help="ring sizes N (atoms; even, >= 8)")
    g.add_argument("--cases", type=common.str_list(CASES), default=list(CASES),
                   help="far: k0 ≈ π/(3a), q = 2k0 ≠ G; near: k0 = π/a - 2π/L, q = 2k0 near G")
    g.add_argument("--bases", type=common.str_list(BASES), default=list(BASES),
                   help="occupation basis of the initial Fock states and of the Δn tallies")
    g.add_argument("--modes", choices=("2k0,k0", "2k0"), default="2k0,k0",
                   help="which mode pairs are quantum: those at |q| = 2k0 and k0 (one- and two-phonon backscattering, "
                        "energy-neutral rearrangements), or only 2k0 (one-phonon)")
    g.add_argument("--n-max", type=int, default=2, help="Fock truncation of every quantum mode (levels 0..n_max)")
    g.add_argument("--V0", type=float, default=1.0, help="pseudopotential strength (eV)")
    g.add_argument("--w", type=float, default=0.8, help="pseudopotential width (Å)")
    g.add_argument("--g", type=int, default=8, help="grid points per lattice spacing (h = a/g <= w/2.5)")
    g.add_argument("--mass", type=float, default=63.546, help="atomic mass M (amu)")
    g.add_argument("--phonon-every", type=int, default=1, help="electron steps per phonon step")
    return p


def case_k(case: str, chain) -> int:
    """The crystal-momentum index c of the electron's Bloch state, k0 = 2πc/L."""
    N = chain.N
    return max(1, round(N / 6)) if case == "far" else N // 2 - 1


def setup(case: str, basis: str, N: int, T: float, args):
    """(Config without the quantum lattice, QuantumLattice, c0, k0) of one point."""
    import wow

    chain = wow.Chain(N=N, boundary="ring", mass=args.mass)
    c0 = case_k(case, chain)
    k0 = 2 * math.pi * c0 / (N * chain.a)
    extra = wow.momentum_modes(chain, k0) if getattr(args, "modes", "2k0,k0") == "2k0,k0" else ()
    modes = tuple(sorted(set(wow.momentum_modes(chain, 2 * k0) + extra)))
    el = wow.Continuum(V0=args.V0, w=args.w, g=args.g, k0=k0, sigma=N * chain.a / 20)
    cfg = wow.Config(chain=chain, electron=el, temperature=T, statistics="quantum", recoil=True, dt=args.dt,
                     duration=args.duration, n_frames=1, dtype=args.dtype)
    ql = wow.QuantumLattice(modes=modes, n_max=args.n_max, others="absent", basis=basis,
                            phonon_every=args.phonon_every)
    return cfg, ql, c0, k0


def bloch_state(cfg, c0):
    """φ_{0,k_c0} of the static lattice on the run's grid (numpy complex)."""
    import jax.numpy as jnp

    from wow.models import continuum as C

    real = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    e = cfg.electron
    grid = C.make_grid(e, cfg.chain, C.thermal_u_max(cfg))  # the run's own grid: its bands' program is reused
    bands = C.bloch_bands(jnp.asarray(e.V0, real), jnp.asarray(e.w, real), jnp.asarray(e.mass(), real), grid, real)
    return np.asarray(C.bloch_state(bands, 0, int(c0)))


def momentum_tallies(cfg, r, c0):
    """Per sample, from wow.run's Δn-resolved final weights: the backscattered weight at the final
    crystal momentum -k0 (all states, Δn = 0), the budget classes with the packet's exact crystal
    momentum (a Bloch state: window half a grid step), and the CM's momentum change."""
    from wow import fock, tally
    from wow.dynamics.quantum import hbar_omega
    from wow.electron import k_grid
    from wow.units import HBAR

    ps = r.per_sample
    n0, back_k = np.asarray(ps["n0"]), np.asarray(ps["back_k"], float)
    S, m = n0.shape
    N, a = cfg.chain.N, cfg.chain.a
    k = k_grid(N, a)
    k0 = 2 * math.pi * c0 / (N * a)
    cm = int(np.argmin(np.abs(tally.fold(k + k0, a))))  # the index of -k0
    B = back_k.reshape(S, -1, N)
    states = np.indices(back_k.shape[1:-1]).reshape(m, -1).T
    el = np.all(states[None] == n0[:, None], axis=-1)  # (S, C): the initial Fock state
    hq, definite = fock.axis_momenta(cfg.chain, cfg.quantum.sorted_modes(), cfg.quantum.basis)
    out = tally.budget_classes(n0, back_k, hbar_omega(cfg), hq, definite, k, a, k0, 0.5 * 2 * math.pi / (N * a))
    out["P_b_mk"] = B[:, :, cm].sum(1)
    out["P_b_mk_el"] = np.where(el, B[:, :, cm], 0.0).sum(1)
    km = np.asarray(r.traces["k_mean"])
    out["dP_R"] = -HBAR * (km[:, -1] - km[:, 0])  # exact: <P_R> = Q - <p>
    return out


def run_point(point, n_samples, seed, *, devices=None, chunk_size=None, progress=None, allow_crossing=False):
    """The sweep's runner: wow.run of the point's Config with its quantum lattice from the Bloch state
    φ_{0,k0}, with the momentum tallies added (stored per sample and as statistics)."""
    import dataclasses

    import wow
    from wow import tally

    o = point.options
    base, ql, _, _ = setup(o["case"], o["basis"], o["N"], o["T"], SimpleNamespace(**o))
    ql = dataclasses.replace(ql, modes=tuple(o["modes"]))  # the point's own modes (options hold the list)
    cfg = dataclasses.replace(base, dynamics="quantum", quantum=ql)
    psi = bloch_state(cfg, o["c0"])
    r = wow.run(cfg, n_samples, seed=seed, chunk_size=chunk_size, devices=devices, progress=progress,
                initial=wow.InitialState(psi=psi), allow_crossing=allow_crossing)
    add = momentum_tallies(cfg, r, o["c0"])
    per_sample = {**r.per_sample, **add}
    P_b = np.asarray(per_sample["P_b"], float)
    frac = lambda x, w: tally.weighted_mean_sem(np.asarray(x) / np.maximum(w, 1e-300), w)
    stats = {**r.stats, **r.fractions}
    stats.update({k: v for k, v in tally.budget_summary(per_sample).items()})
    stats["f_el_mk"] = frac(add["P_b_mk_el"], add["P_b_mk"])
    stats["P_b_mk"] = tally.mean_sem(add["P_b_mk"])
    hk = wow.HBAR * 2 * math.pi * o["c0"] / (cfg.chain.N * cfg.chain.a)
    stats["dP_R"] = tally.mean_sem(add["dP_R"])
    stats["dP_R_per_2hk"] = tally.weighted_mean_sem(add["dP_R"] / (2 * hk * np.maximum(P_b, 1e-300)), P_b)
    stats["clipped"] = tally.mean_sem(np.asarray(per_sample["clipped"], float))
    for name, v in theory_row(cfg, ql, 2 * math.pi * o["c0"] / (cfg.chain.N * cfg.chain.a), o["T"]).items():
        stats[f"theory_{name}"] = (v, 0.0)  # exact references, kept with the point (no error)
    attrs = {"hw_eV": [float(x) for x in r.hw], "modes": [int(j) for j in r.modes],
             "channels": [[[int(v) for v in pat], float(pr)] for pat, pr in r.channels[:8]]}
    return SimpleNamespace(per_sample=per_sample, stats=stats, times=r.times, traces=r.traces, n_samples=r.n_samples,
                           seed=r.seed, compile_s=r.compile_s, run_s=r.run_s, coherent={}, attrs=attrs), None


def theory_row(cfg, ql, k0, T):
    """The references at q = 2k0 for the simulation's modes, basis and clipped draws, and the paper's
    numbers with every mode of the ring."""
    from wow import theory

    q, c, modes, nm = 2 * k0, cfg.chain, ql.sorted_modes(), ql.n_max
    return dict(eq30=theory.occupation_diagonal_fraction_modes(c, q, T, modes, ql.basis, n_max=nm),
                hr=theory.huang_rhys_fraction_modes(c, q, T, modes, basis=ql.basis, n_max=nm),
                dw=theory.debye_waller_factor_modes(c, q, T, modes, basis=ql.basis, n_max=nm),
                dw_all=theory.debye_waller_factor(c, q, T, "quantum"), hr_all=theory.huang_rhys_fraction(c, q, T))


def fmt(ms, digits=3):
    m, s = ms
    if not np.isfinite(m):
        return "nan"
    return f"{m:.{digits}g} ± {s:.1g}" if np.isfinite(s) and s > 0 else f"{m:.{digits}g}"


def main(argv=None):
    import dataclasses
    import json

    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, temperatures=(0, None, False), sizes=(8, None, False), w=(0, None, True),
                 g=(2, None, False), mass=(0, None, True), n_max=(1, None, False), phonon_every=(1, None, False))
    bad = [N for N in args.sizes if N % 2]
    if bad:
        p.error(f"--sizes={','.join(map(str, args.sizes))}: allowed even N >= 8 ({bad} odd)")
    import wow
    from wow import io

    t0 = time.perf_counter()
    pts, setups = [], {}
    for case in args.cases:
        for basis in args.bases:
            for N in args.sizes:
                for T in args.temperatures:
                    cfg, ql, c0, k0 = setup(case, basis, N, T, args)
                    try:  # every input refused before any work
                        wow.validate(dataclasses.replace(cfg, dynamics="quantum", quantum=ql))
                    except wow.ConfigError as e:
                        p.exit(2, f"{p.prog}: error at case={case} basis={basis} N={N} T={T:g}: {e}\n")
                    label = f"{case} {basis} N={N} T={T:g}"
                    setups[label] = (cfg, ql, c0, k0)
                    # the results format stores chain-model Configs only: this point's inputs are its options
                    opts = dict(case=case, basis=basis, N=N, T=T, c0=c0, n_max=args.n_max, V0=args.V0, w=args.w,
                                g=args.g, mass=args.mass, dt=args.dt, duration=args.duration, dtype=args.dtype,
                                phonon_every=args.phonon_every, modes=list(ql.sorted_modes()))
                    pts.append(io.Point(label, {"case": case, "basis": basis, "N": N, "T": T}, None, options=opts))
    inputs = {"V0": (args.V0, "eV", "pseudopotential strength"), "w": (args.w, "angstrom", "pseudopotential width"),
              "n_max": (args.n_max, "", "Fock truncation per quantum mode")}
    res = common.sweep(p, args, EXPERIMENT, pts, inputs,
                       "Δn-resolved backscattering with quantum modes: the Δn = 0 share against Eq. 30 (same modes), "
                       "Huang-Rhys and e^{-2W}", runner=run_point)
    rows = [["case", "basis", "N", "T (K)", "quantum modes (ħω meV)", "P_b", "Δn=0 share", "Δn=0 share at -k0",
             "Eq. 30, same modes", "HR site, same modes", "e^{-2W}, same modes", "e^{-2W}, all modes",
             "HR site, all modes", "inelastic", "superelastic", "neutral", "CM-absorbed", "<ΔP_R>/(P_b 2ħk0)",
             "clipped"]]
    table = []
    for pt in res.points:
        cfg, ql, c0, k0 = setups[pt.label]
        st = pt.stats
        th = {k[7:]: float(v[0]) for k, v in st.items() if k.startswith("theory_")} or theory_row(cfg, ql, k0, pt.values["T"])
        hw = json.loads(pt.attrs["hw_eV"]) if isinstance(pt.attrs.get("hw_eV"), str) else pt.attrs.get("hw_eV", [])
        cm = [st[f"f_{c}_cm"][0] for c in ("elastic", "inelastic", "superelastic", "neutral")]
        line = dict(pt.values, k0=k0, modes=list(ql.sorted_modes()), hw=hw, P_b=st["P_b"], f_el=st["f_el"],
                    f_el_mk=st["f_el_mk"], inel=st["f_inelastic"], sup=st["f_superelastic"], neu=st["f_neutral"],
                    cm=float(np.nansum(cm)) if ql.basis == "running" else float("nan"), dP=st["dP_R_per_2hk"],
                    clipped=st["clipped"][0], **th)
        table.append(line)
        modes = ", ".join(f"{j} ({1e3 * h:.1f})" for j, h in zip(line["modes"], hw))
        rows.append([pt.values["case"], pt.values["basis"], str(pt.values["N"]), f"{pt.values['T']:g}", modes,
                     fmt(line["P_b"]), fmt(line["f_el"], 2), fmt(line["f_el_mk"], 2), f"{th['eq30']:.3g}",
                     f"{th['hr']:.6f}", f"{th['dw']:.6f}", f"{th['dw_all']:.4f}", f"{th['hr_all']:.4f}",
                     fmt(line["inel"], 3), fmt(line["sup"], 3), fmt(line["neu"], 2),
                     "n/a (standing)" if ql.basis == "standing" else f"{line['cm']:.2g}", fmt(line["dP"], 4),
                     f"{line['clipped']:.2f}"])
    head = (f"Where the momentum goes: density-density model, one Bloch state at k0, quantum modes at |q| = 2k0, k0 "
            f"(others absent), recoil on; V0 = {args.V0:g} eV, w = {args.w:g} Å, g = {args.g}, n_max = {args.n_max}, "
            f"{args.samples} samples per point, {args.duration:g} fs, dt = {args.dt:g} fs, wall "
            f"{time.perf_counter() - t0:.0f} s. Shares are of P_b; the theory columns are at q = 2k0.")

    def figure(plot):
        import matplotlib.pyplot as plt

        cases = [c for c in CASES if any(ln["case"] == c for ln in table)]
        fig, axes = plt.subplots(1, len(cases), figsize=(6 * len(cases), 4.2), squeeze=False)
        floor = 1e-12
        for ax, case in zip(axes[0], cases):
            for i, basis in enumerate(BASES):
                for N in args.sizes:
                    sel = [ln for ln in table if ln["case"] == case and ln["basis"] == basis and ln["N"] == N]
                    if not sel:
                        continue
                    Ts = [ln["T"] for ln in sel]
                    ax.errorbar(Ts, [max(ln["f_el_mk"][0], floor) for ln in sel],
                                yerr=[ln["f_el_mk"][1] for ln in sel], fmt="os"[i],
                                mfc="none" if basis == "standing" else None,
                                label=f"simulation Δn=0 share at -k0, {basis}, N={N}")
                    ax.plot(Ts, [max(ln["eq30"], floor) for ln in sel], "--", label=f"Eq. 30 same modes, {basis}, N={N}")
                    if i == 0:
                        ax.plot(Ts, [ln["dw_all"] for ln in sel], "-", lw=2, label=f"paper: e^(-2W), all modes, N={N}")
                        ax.plot(Ts, [ln["hr"] for ln in sel], ":", label=f"HR site, same modes, N={N}")
            ax.set_yscale("log")
            ax.set_ylim(floor / 2, 2)
            ax.set_xlabel("T (K)")
            ax.set_ylabel("Δn = 0 (elastic) share of the backscattering to -k0")
            ax.set_title(f"{case}: q = 2k0 {'≠ G' if case == 'far' else 'near G'} (floor {floor:g})", fontsize=9)
            ax.legend(fontsize=6)
        fig.tight_layout()
        return fig

    common.report(args, head, rows, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
