"""Recoil of the lattice's centre of mass in the density-density model: normal (ħ·2k) and Umklapp
(ħ(2k - G)) momentum transfer, and the recoil energy with the mechanical momentum.

In the sector of conserved total momentum Q = p + P_R the CM's momentum is P_R = Q - p exactly: every
change of the electron's mechanical momentum p is the CM's, whatever the lattice does. A band-0 Bloch
packet at crystal momentum k0 on a ring of thermal frozen (or moving) atoms, recoil on, CM momentum
P fixed before the collision. Its backscattered part (Bloch states with v_n(k) < 0) is made of plane
waves p = ħ(-k + G_l): the component p ≈ -ħk0 hands the CM ħ·2k0 (normal), the component
p ≈ ħ(G - k0) > 0 hands it ħ(2k0 - G) < 0 (Umklapp: the lattice is pushed backwards while the Bloch
electron turns round). Per point this script reports, from wow.run and the final amplitudes:
  * the Umklapp share of the backscattered weight (its p > 0 part) against theory.bloch_umklapp_weight;
  * the CM momentum change per backscattered weight, in all and within the normal and Umklapp parts,
    against the exact mean 2 m v_0(k0) (theory.bloch_mechanical_momentum: the Bloch state's
    mechanical momentum) and the parts' ħk0 + m v_0 and ħ(k0 - G) + m v_0 (≈ ħ·2k0, ħ(2k0 - G));
    beside it the same change per band 0's backscattered weight alone: P_b also counts the higher
    bands' v < 0 weight, the disordered lattice's dressing of the packet (reached within ~1 fs, then
    constant), which is no reflection and makes the ratio fall short of 2 m v_0 by ∝ 1/P_b;
  * the recoil energy Δ<(Q - p)²>/(2NM) per backscattered weight against
    theory.continuum_recoil_energy, 2p(P + p)/(NM) with p = m v_0(k0), beside the chain's A8 with
    ħk0 (zero at P = -ħk0, where the mechanical form is not); split into its Q-linear part
    -QΔ<p>/(NM), the closed form's, and the rest Δ<p²>/(2NM), which the closed form sets to 0 (Bloch
    states φ_{±k} have the same <p²>) and which is not of the reflection: the splitting's O(dt²)
    error (shown beside it: the same packet on the static lattice, where it is exactly 0) plus the
    packet's <p²> changing in the disordered lattice.
Choose k0 with 2k0 < π/a (normal) and near π/a (where the Bloch states mix in G, Umklapp).
"""

from __future__ import annotations

import json
import math
import sys

import numpy as np

from . import common

EXPERIMENT = "dd_recoil"
#: Per-sample tallies this experiment adds to wow.run's: name -> (unit, doc).
UNITS = {
    "P_b_normal": ("", "backscattered weight (v_n(k) < 0) at mechanical momentum p < 0"),
    "P_b_umklapp": ("", "backscattered weight (v_n(k) < 0) at mechanical momentum p > 0"),
    "dP_cm_normal": ("eV*fs/angstrom", "CM momentum change <p>_0 - p averaged over the normal part"),
    "dP_cm_umklapp": ("eV*fs/angstrom", "CM momentum change <p>_0 - p averaged over the Umklapp part"),
    "P_b_band0": ("", "backscattered weight in band 0 alone (P_b less the higher bands' v_n(k) < 0 weight)"),
}


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=8, duration=16.0, dt=0.02)
    g = p.add_argument_group("physics")
    g.add_argument("--k0", type=common.float_list, default=[0.35, 0.8],
                   help="packet crystal momenta k0 in units of π/a (0 < k0 < 1): 2k0 < 1 normal, near 1 Umklapp")
    g.add_argument("--momenta", type=common.float_list, default=[-1.0, 0.0, 1.0],
                   help="CM momenta P before the collision, in units of ħk0")
    g.add_argument("--N", type=int, default=48, help="ring size (atoms)")
    g.add_argument("--temperature", type=float, default=30.0, help="T (K) of the lattice samples")
    g.add_argument("--statistics", choices=("classical", "quantum"), default="classical",
                   help="lattice samples: classical or Wigner (zero point included)")
    g.add_argument("--dynamics", choices=("frozen", "wow"), default="frozen",
                   help="lattice: frozen samples, or their exact harmonic motion (no back-reaction)")
    g.add_argument("--V0", type=float, default=5.0, help="pseudopotential strength (eV)")
    g.add_argument("--w", type=float, default=0.5, help="pseudopotential width (Å)")
    g.add_argument("--g", type=int, default=16, help="grid points per lattice spacing (h = a/g <= w/2.5)")
    g.add_argument("--sigma", type=float, default=5.0, help="packet width (Å; <= N a/20)")
    g.add_argument("--mass", type=float, default=1.0, help="atomic mass M (amu): small, so the recoil energy ∝ 1/(NM) is large")
    return p


def points(args):
    import wow
    from wow import io
    from wow.units import HBAR

    chain = wow.Chain(N=args.N, boundary="ring", mass=args.mass)
    out = []
    for f in args.k0:
        k0 = f * math.pi / chain.a
        el = wow.Continuum(V0=args.V0, w=args.w, g=args.g, packet="bloch", k0=k0, sigma=args.sigma)
        for P in args.momenta:
            cfg = wow.Config(chain=chain, electron=el, dynamics=args.dynamics, statistics=args.statistics,
                             temperature=args.temperature, recoil=True, cm_momentum=P * HBAR * k0, dt=args.dt,
                             duration=args.duration, n_frames=1, dtype=args.dtype)
            out.append(io.Point(f"k0={f:g}pi/a P={P:g}hk0", {"k0_over_pi_a": f, "P_over_hbar_k0": P}, cfg))
    return out


def backscattered_parts(cfg, psi_f, k_mean0):
    """Per sample, from the final amplitudes ψ (S, N_s): the backscattered part ψ_b = Σ_{v_n(k)<0}
    <φ|ψ> φ (the static lattice's Bloch states), split by the sign of its plane waves' momenta:
    weights P_b_normal (p < 0), P_b_umklapp (p > 0) and the CM momentum change <p>_0 - <p> within
    each (eV·fs/Å; NaN where a part is empty); P_b_band0, the part in band 0."""
    import jax.numpy as jnp

    from wow.models import continuum as C
    from wow.units import HBAR

    model, mp = C.model_of(cfg, jnp.float64)
    g, N = model.grid.g, model.grid.N
    psi = jnp.asarray(np.asarray(psi_f), jnp.complex128)
    amps = np.asarray(model.split_amplitudes(psi, mp)).reshape(-1, g, N)  # (S, band, c)
    back = np.asarray(model.split_mask(mp)).reshape(g, N)
    vec = np.asarray(mp.bands.vectors)  # (c, r, band)
    psik_b = np.einsum("crn,snc->src", vec, np.where(back, amps, 0)).reshape(amps.shape[0], g * N)
    p = HBAR * np.asarray(mp.kappa)
    wb = np.abs(psik_b) ** 2
    p0 = HBAR * np.asarray(k_mean0)
    out = {}
    for name, sel in (("normal", p < 0), ("umklapp", p > 0)):
        W = wb[:, sel].sum(1)
        mean_p = np.where(W > 1e-14, (wb[:, sel] @ p[sel]) / np.maximum(W, 1e-300), np.nan)
        out[f"P_b_{name}"] = W
        out[f"dP_cm_{name}"] = p0 - mean_p
    # band 0's alone: the higher bands' v < 0 weight is the disordered lattice dressing the packet
    # (set within ~1 fs, then constant), not a reflection k -> -k
    out["P_b_band0"] = np.sum(np.abs(amps[:, 0]) ** 2 * back[0], -1)
    return out


def run_point(point, n_samples, seed, *, devices=None, chunk_size=None, progress=None, allow_crossing=False):
    """wow.run of the point with its final amplitudes, reduced to the per-sample parts of
    ``backscattered_parts`` and the sample mean of the backscattered weight per crystal momentum
    (attribute 'back_k_mean', FFT order; the amplitudes themselves are not kept)."""
    import jax.numpy as jnp

    from wow.ensemble import run
    from wow.models import continuum as C
    from wow.tally import mean_sem

    cfg = point.config
    res = run(cfg, n_samples, seed, keep_final=True, devices=devices, chunk_size=chunk_size, progress=progress,
              allow_crossing=allow_crossing)
    psi = np.asarray(res.final["psi"])
    res.per_sample.update(backscattered_parts(cfg, psi, res.traces["k_mean"][:, 0]))
    model, mp = C.model_of(cfg, jnp.float64)
    back_k = np.asarray(model.crystal_weights(jnp.asarray(psi, jnp.complex128), mp)[1])  # (S, N)
    res.final = None
    for k in ("P_b_normal", "P_b_umklapp", "P_b_band0", "dP_cm", "dE_cm", "P_b_mech"):
        res.stats[k] = mean_sem(res.per_sample[k])
    res.units = UNITS
    res.attrs = {"back_k_mean": [float(x) for x in back_k.mean(0)]}
    return res, None


def p2_change(cfg, per_sample):
    """Per sample, Δ<p²>/(2NM) (eV): the part of dE_cm = Δ<(Q - p)²>/(2NM) = (-2QΔ<p> + Δ<p²>)/(2NM)
    that does not depend on the sector Q, from the tallies dE_cm, dP_e = Δ<p> and Q = P_R_f + ħk_f.
    The closed form 2p(P + p)/(NM) is the other part, -QΔ<p>/(NM), for Bloch states (Δ<p²> = 0
    between φ_k and φ_{-k}); this part is what it leaves out."""
    from wow.units import HBAR

    ps = {k: np.asarray(per_sample[k], float) for k in ("dE_cm", "dP_e", "P_R_f", "k_f")}
    Q = ps["P_R_f"] + HBAR * ps["k_f"]
    return ps["dE_cm"] + Q * ps["dP_e"] / (cfg.chain.N * cfg.chain.mass_ev)


def static_p2_change(cfg):
    """Δ<p²>/(2NM) (eV) of cfg's Bloch packet over cfg's run on the static lattice (u = 0, recoil on,
    sector Q = cm_momentum + <p>(0)), by the run's own Strang splitting (continuum.evolve). Exactly
    0 for the exact dynamics (a one-band Bloch packet is a sum of eigenstates with disjoint plane
    waves, so <p²> is constant); the splitting's O(dt²) error is what remains: the numerical part
    of ``p2_change`` at the run's dt."""
    import jax.numpy as jnp

    from wow.models import continuum as C
    from wow.units import HBAR

    model, mp = C.model_of(cfg, jnp.float64)
    psi0 = model.packet(cfg, jnp.complex128)
    p = HBAR * mp.kappa
    w0 = jnp.abs(C.fft(psi0)) ** 2
    Q = float(cfg.cm_momentum or 0.0) + float(w0 @ p)
    V = model.potential(jnp.zeros(cfg.chain.N), mp)
    E_T = C.kinetic_energies(mp.kappa, mp.m, Q, mp.inv_2NM)
    n = int(round(cfg.duration / cfg.dt))
    wf = jnp.abs(C.fft(C.evolve(psi0, V, E_T, cfg.dt, n))) ** 2
    return float((wf - w0) @ p**2) * float(mp.inv_2NM)


def closed_forms(cfg, P, back_k):
    """The closed forms for band-0 reflections k -> -k, weighted by the backscattered weight per
    crystal momentum b(k') (FFT order; k' < 0 reflected from k = -k'), with the packet's initial
    mean mechanical momentum p̄0 (Bloch weights exp(-2(k - k0)²σ²)): the Umklapp share
    Σ b u(k')/Σ b (theory.bloch_umklapp_weight); the CM momentum change 2 m v_0(k) per reflected
    weight, and within the normal (p < 0) and Umklapp (p > 0) components of φ_{0,k'}: p̄0 - <p>
    over those components (≈ ħ·2k0 and ħ(2k0 - G)); the recoil energy 2 p_k (P + p̄0)/(NM)
    (theory.continuum_recoil_energy's exact step for the sector Q = P + p̄0) and the chain's A8 with
    ħk; momenta eV·fs/Å, energies eV."""
    from wow import theory
    from wow.electron import k_grid
    from wow.units import HBAR

    c, e = cfg.chain, cfg.electron
    kg = np.asarray(k_grid(c.N, c.a))
    fwd = kg > 0
    wk = np.exp(-2 * (kg[fwd] - cfg.k0) ** 2 * e.sigma**2)
    p0 = float(wk @ theory.bloch_mechanical_momentum(kg[fwd], e.V0, e.w, c.a, e.m_star) / wk.sum())
    sel = (kg < 0) & (np.asarray(back_k) > 0)
    b, kb = np.asarray(back_k)[sel], kg[sel]
    b = b / b.sum()
    k_in = -kb
    p_k = theory.bloch_mechanical_momentum(k_in, e.V0, e.w, c.a, e.m_star)
    _, Cv, kap = theory.central_equation(kb, e.V0, e.w, c.a, e.m_star)
    wl = np.abs(Cv[..., :, 0]) ** 2  # (K, l): components of φ_{0,k'}
    pl = HBAR * kap
    parts = {}
    for name, m in (("normal", pl < 0), ("umklapp", pl > 0)):
        W = np.sum(np.where(m, wl, 0), -1)
        parts[name] = (float(b @ W), p0 - float(b @ np.sum(np.where(m, wl * pl, 0), -1)) / float(b @ W))
    NM = c.N * c.mass_ev
    return {"p0": p0, "umklapp": parts["umklapp"][0], "dP": float(b @ (2 * p_k)),
            "dP_normal": parts["normal"][1], "dP_umklapp": parts["umklapp"][1],
            "E_mech": float(b @ (2 * p_k * (P + p0))) / NM,
            "E_A8": float(b @ theory.recoil_energy(k_in, P, c.N, c.mass))}


def rows_of(res):
    """One dict per point: the measured ratios (per backscattered weight) beside the closed forms;
    momenta in units of ħk0, energies in eV."""
    from wow.tally import weighted_mean_sem
    from wow.units import HBAR

    out = []
    for pt in res.points:
        cfg, ps = pt.config, pt.per_sample
        hk = HBAR * cfg.k0
        P = pt.values["P_over_hbar_k0"] * hk
        back_k = pt.attrs["back_k_mean"]
        cf = closed_forms(cfg, P, json.loads(back_k) if isinstance(back_k, str) else back_k)
        Pb = float(np.mean(ps["P_b"]))
        un = float(np.mean(ps["P_b_umklapp"]))
        nm = float(np.mean(ps["P_b_normal"]))
        out.append({
            "k0": pt.values["k0_over_pi_a"], "P": pt.values["P_over_hbar_k0"], "P_b": Pb,
            "P_b_sem": float(np.std(ps["P_b"], ddof=1) / math.sqrt(len(ps["P_b"]))),
            "umklapp": un / (un + nm), "umklapp_cf": cf["umklapp"],
            "dP": float(np.mean(ps["dP_cm"])) / Pb / hk, "dP_cf": cf["dP"] / hk,
            "dP_band0": float(np.mean(ps["dP_cm"])) / float(np.mean(ps["P_b_band0"])) / hk,
            "dP_normal": weighted_mean_sem(ps["dP_cm_normal"], ps["P_b_normal"])[0] / hk, "dP_normal_cf": cf["dP_normal"] / hk,
            "dP_umklapp": weighted_mean_sem(ps["dP_cm_umklapp"], ps["P_b_umklapp"])[0] / hk,
            "dP_umklapp_cf": cf["dP_umklapp"] / hk,
            "E": float(np.mean(ps["dE_cm"])) / Pb, "E_cf": cf["E_mech"], "E_A8": cf["E_A8"],
            "E_p2": float(np.mean(p2_change(cfg, ps))) / Pb, "E_p2_static": static_p2_change(cfg) / Pb,
            "G_over_k0": 2 * math.pi / cfg.chain.a / cfg.k0})
    return out


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, N=(3, None, False), temperature=(0, None, False), w=(0, None, True), g=(2, None, False),
                 sigma=(0, None, True), mass=(0, None, True), k0=(0, 1, True))
    if 1.0 in args.k0:
        p.error("--k0=1: allowed 0 < k0 < 1 (π/a is a standing wave: it has no direction to reverse)")
    import wow

    pts = points(args)
    common.validate_points(p, pts)  # every input refused before any work
    inputs = {"k0": (args.k0, "pi/a", "packet crystal momenta"), "momenta": (args.momenta, "hbar*k0", "CM momenta P")}
    res = common.sweep(p, args, EXPERIMENT, pts, inputs,
                       "CM momentum change (normal 2k vs Umklapp 2k - G) and recoil energy, density-density model",
                       runner=run_point)
    table = rows_of(res)
    rows = [["k0 (π/a)", "P/ħk0", "P_b", "Umklapp share | theory", "ΔP_R/P_b (ħk0) | 2mv0/ħk0", "ΔP_R/P_b,band 0 (ħk0)",
             "normal part (ħk0) | theory", "Umklapp part (ħk0) | theory", "recoil E/P_b (µeV) | 2p(P+p)/NM | A8 (ħk0)",
             "E/P_b - Δ<p²>/(2NM P_b) (µeV) | 2p(P+p)/NM", "Δ<p²>/(2NM P_b) (µeV) | static lattice (dt error)"]]
    for t in table:
        rows.append([f"{t['k0']:g}", f"{t['P']:g}", f"{t['P_b']:.4f} ± {t['P_b_sem']:.1g}",
                     f"{t['umklapp']:.4f} | {t['umklapp_cf']:.4f}", f"{t['dP']:.4f} | {t['dP_cf']:.4f}", f"{t['dP_band0']:.4f}",
                     f"{t['dP_normal']:.4f} | {t['dP_normal_cf']:.4f}",
                     f"{t['dP_umklapp']:.3f} | {t['dP_umklapp_cf']:.3f}",
                     f"{t['E'] * 1e6:.2f} | {t['E_cf'] * 1e6:.2f} | {t['E_A8'] * 1e6:.2f}",
                     f"{(t['E'] - t['E_p2']) * 1e6:.2f} | {t['E_cf'] * 1e6:.2f}",
                     f"{t['E_p2'] * 1e6:.2f} | {t['E_p2_static'] * 1e6:.2f}"])
    c = pts[0].config
    head = (f"CM recoil in the density-density model (N = {args.N}, M = {args.mass:g} amu, V0 = {args.V0:g} eV, "
            f"w = {args.w:g} Å, {args.dynamics} {args.statistics} lattice at {args.temperature:g} K, "
            f"{args.samples} samples, {args.duration:g} fs; G = 2π/a = {2 * math.pi / c.chain.a:.4g} 1/Å)")

    def figure(plot):
        import matplotlib.pyplot as plt

        fig, axes = plt.subplots(1, 2, figsize=(11, 4))
        ax = axes[0]
        for f in args.k0:
            sel = [t for t in table if t["k0"] == f]
            x = np.arange(3) + (0.15 if f == args.k0[-1] else 0)
            t = sel[0]
            ax.plot(x, [t["dP"], t["dP_normal"], t["dP_umklapp"]], "o", label=f"measured, k0 = {f:g}π/a")
            ax.plot(x, [t["dP_cf"], t["dP_normal_cf"], t["dP_umklapp_cf"]], "_", ms=18, color="k")
        ax.axhline(2, ls=":", color="gray")
        ax.set_xticks(range(3), ["all (2mv0)", "normal (≈2ħk0)", "Umklapp (≈ħ(2k0-G))"])
        ax.set_ylabel("CM momentum change per backscattered weight (ħk0)")
        ax.legend(fontsize=7)
        ax = axes[1]
        for f in args.k0:
            sel = sorted((t for t in table if t["k0"] == f), key=lambda t: t["P"])
            Ps = [t["P"] for t in sel]
            ax.plot(Ps, [t["E"] * 1e6 for t in sel], "o", label=f"measured, k0 = {f:g}π/a")
            ax.plot(Ps, [t["E_cf"] * 1e6 for t in sel], "-", color="k", lw=0.8)
            ax.plot(Ps, [t["E_A8"] * 1e6 for t in sel], "--", color="gray", lw=0.8)
        ax.set_xlabel("CM momentum P before the collision (ħk0)")
        ax.set_ylabel("recoil energy per backscattered weight (µeV)")
        ax.set_title("line: 2p(P+p)/NM, p = m v0(k0); dashed: A8 with ħk0", fontsize=8)
        ax.legend(fontsize=7)
        return fig

    common.report(args, head, rows, figure)
    return 0


if __name__ == "__main__":
    sys.exit(main())
