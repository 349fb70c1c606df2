"""The standard figures, drawn from a results file (``wow.io.read_results``): every axis with its
unit, a legend, and the analytic expectation wherever one exists.

  figure_sweep         tallies against T and against N, with error bars (backscattering sweeps)
  figure_recoil        the backscattering energy mismatch against the CM momentum P and N, with
                       the recoil law ΔE = 2ħk(P + ħk)/(NM) (paper Eq. A8), its zero at P = -ħk (A7)
                       and the thermal distribution of P (A10)
  figure_trajectories  space-time density, momentum distribution before and after, lattice
                       displacements, energies and CM momentum against time
  plot_file            every figure that fits a file's content, saved as PNG

matplotlib is imported lazily with the Agg backend when nothing else was chosen.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from .electron import group_velocity
from .units import HBAR, KB

MEV = 1e3  # eV -> meV


def _plt():
    import matplotlib

    if "matplotlib.pyplot" not in __import__("sys").modules:
        matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


# ------------------------------------------------------------------------------------------------
# Sweeps over T and N
# ------------------------------------------------------------------------------------------------
NUMERIC_AXES = {"temperature": ("T (K)", False), "N": ("chain size N (atoms)", True)}


def _axes_of(points):
    """Numeric sweep axes with more than one value, and the categorical keys (with their values)."""
    keys = list(points[0].values)
    numeric = [k for k in NUMERIC_AXES if k in keys and len({p.values[k] for p in points}) > 1]
    categorical = [k for k in keys if k not in NUMERIC_AXES and len({str(p.values[k]) for p in points}) > 1]
    return numeric, categorical


def _series(points, x, fixed: dict, getter):
    sel = [p for p in points if all(p.values.get(k) == v for k, v in fixed.items())]
    sel.sort(key=lambda p: p.values[x])
    xs = np.array([p.values[x] for p in sel], float)
    ys = np.array([getter(p) for p in sel], float).reshape(-1, 2)
    return xs, ys[:, 0], ys[:, 1]


def _p_inc(p):
    co = p.coherent
    return co["P_tot"] - co["P_coh"], math.hypot(co["P_tot_sem"], co["P_coh_sem"])


def _packet_spread(cfg):
    """A9: ΔE_pkt ~ ħ v_g Δk with Δk = 1/(2σ) the packet's momentum spread (eV)."""
    return HBAR * abs(group_velocity(cfg.k0, cfg.electron.t0, cfg.chain.a)) / (2 * cfg.electron.sigma)


def figure_sweep(res):
    """Tallies against each numeric sweep axis (T, N); one line per combination of the other
    categorical inputs (statistics, dynamics, ...), the other numeric axes at their largest value."""
    plt = _plt()
    pts = res.points
    numeric, categorical = _axes_of(pts)
    if not numeric:
        numeric = [k for k in pts[0].values if k in NUMERIC_AXES][:1] or []
    if not numeric:
        raise ValueError(f"{res.path}: no numeric sweep axis (temperature or N) to plot against")
    combos = sorted({tuple(str(p.values[k]) for k in categorical) for p in pts})
    panels = [("P_b", "backscattered probability $P_b$", 1.0),
              ("dE_b", r"energy change of the backscattered part $\Delta E_b$ (meV)", MEV),
              ("split", r"coherent $P_{coh}$ (filled) / incoherent $P_{inc}$ (open)", 1.0)]
    fig, axes = plt.subplots(len(numeric), 3, figsize=(15, 4.2 * len(numeric)), squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    for row, x in enumerate(numeric):
        others = {k: max(p.values[k] for p in pts) for k in numeric if k != x}
        label_x, logx = NUMERIC_AXES[x]
        for ci, combo in enumerate(combos):
            fixed = dict(zip(categorical, combo)) | others
            fixed = {k: (v if k in others else _typed(pts, k, v)) for k, v in fixed.items()}
            name = ", ".join(combo) or "all"
            c = colors[ci % len(colors)]
            xs, m, s = _series(pts, x, fixed, lambda p: p.stats["P_b"])
            axes[row, 0].errorbar(xs, m, s, marker="o", color=c, capsize=3, label=name)
            xs, m, s = _series(pts, x, fixed, lambda p: p.stats["dE_b"])
            axes[row, 1].errorbar(xs, m * MEV, s * MEV, marker="o", color=c, capsize=3, label=name)
            xs, m, s = _series(pts, x, fixed, lambda p: (p.coherent["P_coh"], p.coherent["P_coh_sem"]))
            axes[row, 2].errorbar(xs, m, s, marker="o", color=c, capsize=3, label=f"{name}: coherent")
            xs, m, s = _series(pts, x, fixed, _p_inc)
            axes[row, 2].errorbar(xs, m, s, marker="o", mfc="none", ls="--", color=c, capsize=3,
                                  label=f"{name}: incoherent")
        cfg = pts[-1].config
        spread = _packet_spread(cfg) * MEV
        axes[row, 1].axhline(0, color="k", lw=0.8, ls=":", label="elastic: $\\Delta E_b = 0$")
        axes[row, 1].plot([], [], " ", label=f"(packet energy spread $\\hbar v_g\\Delta k$ = {spread:.0f} meV, A9)")
        axes[row, 2].axhline(0, color="k", lw=0.8, ls=":")
        fixed_txt = ", ".join(f"{'T' if k == 'temperature' else k} = {v:g}{' K' if k == 'temperature' else ''}"
                              for k, v in others.items())
        for col, (key, ylabel, _) in enumerate(panels):
            ax = axes[row, col]
            ax.set_xlabel(label_x)
            ax.set_ylabel(ylabel)
            if logx:
                ax.set_xscale("log", base=2)
            ax.set_title(f"{'abc'[col]}{row + 1}) against {label_x.split(' (')[0]}"
                         + (f" at {fixed_txt}" if fixed_txt else ""), fontsize=10)
            ax.grid(alpha=0.3)
            ax.legend(fontsize=7)
    c = pts[-1].config
    fig.suptitle(f"Backscattering after {c.t_final:g} fs: α = {c.electron.alpha:g} eV/Å, D = {c.electron.D:g} eV, "
                 f"k0 = {c.k0:.3g} 1/Å, σ = {c.electron.sigma:g} Å, M = {c.chain.mass:g} amu, "
                 f"recoil {'on' if c.recoil else 'off'}, {pts[0].attrs.get('n_samples')} samples per point "
                 f"(error bars: one standard error)", fontsize=10)
    fig.tight_layout()
    return fig


def _typed(points, key, text):
    for p in points:
        if str(p.values[key]) == text:
            return p.values[key]
    return text


# ------------------------------------------------------------------------------------------------
# Recoil (paper Appendix A)
# ------------------------------------------------------------------------------------------------
def recoil_energy_a8(hbar_k, P, NM):
    """ΔE_recoil = 2ħk(P + ħk)/(NM) (paper Eq. A8), eV; NM in eV·fs²/Å²."""
    return 2 * hbar_k * (P + hbar_k) / NM


def _recoil_parts(res):
    """Split a recoil sweep into {N: reference point}, fixed-P points and thermal points."""
    ref = {p.values["N"]: p for p in res.points if p.values.get("kind") == "reference"}
    fixed = [p for p in res.points if p.values.get("kind") == "fixed"]
    thermal = [p for p in res.points if p.values.get("kind") == "thermal"]
    return ref, fixed, thermal


def recoil_rows(res):
    """Per recoil point: (N, P label, (mean, sem) of the recoil energy taken from the electron
    -(ΔE_b - ΔE_b[recoil off]), the CM's ΔE_cm/P_b, A8 (its thermal mean 2(ħk0)²/NM for thermal
    points), P_b); energies in eV."""
    ref, fixed, thermal = _recoil_parts(res)
    rows = []
    for p in sorted(fixed + thermal, key=lambda q: (q.values["N"], q.values["kind"] == "thermal",
                                                    q.values["P_over_hbar_k0"] or 0)):
        N, cfg = p.values["N"], p.config
        hk, NM = HBAR * cfg.k0, N * cfg.chain.mass_ev
        r = ref.get(N)
        e0, s0 = r.stats["dE_b"] if r is not None else (math.nan, math.nan)
        m, s = p.stats["dE_b"]
        pb = p.stats["P_b"][0]
        if p.values["kind"] == "fixed":
            P = p.values["P_over_hbar_k0"]
            rows.append((N, f"{P:g}", (e0 - m, math.hypot(s, s0)), p.stats["dE_cm"][0] / pb,
                         recoil_energy_a8(hk, P * hk, NM), pb))
        else:
            rows.append((N, f"thermal {cfg.temperature:g} K", (e0 - m, math.hypot(s, s0)),
                         p.stats["dE_cm"][0] / pb, recoil_energy_a8(hk, 0.0, NM), pb))
    return rows


def figure_recoil(res):
    """(a) recoil energy of backscattering against P/ħk0 for each N, from the electron and from the
    CM, with A8 and its zero at P = -ħk0 (A7); (b) the recoil energy at P = 0 and its thermal mean
    against N, with the 1/N law of A8; (c) thermal points: per-sample recoil energy against the
    drawn P_R, with A8 and the distribution A10."""
    plt = _plt()
    ref, fixed, thermal = _recoil_parts(res)
    Ns = sorted({p.values["N"] for p in res.points})
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    fig, axes = plt.subplots(1, 3, figsize=(17, 4.8))
    e_ref = {N: r.stats["dE_b"] for N, r in ref.items()}
    ylab = r"recoil energy (µeV)"
    UE = 1e6  # eV -> µeV
    ax = axes[0]
    for i, N in enumerate(Ns):
        sel = sorted((p for p in fixed if p.values["N"] == N), key=lambda p: p.values["P_over_hbar_k0"])
        if not sel or N not in e_ref:
            continue
        c = colors[i % len(colors)]
        cfg = sel[0].config
        hk, NM = HBAR * cfg.k0, N * cfg.chain.mass_ev
        x = np.array([p.values["P_over_hbar_k0"] for p in sel])
        m = np.array([e_ref[N][0] - p.stats["dE_b"][0] for p in sel]) * UE
        s = np.array([math.hypot(p.stats["dE_b"][1], e_ref[N][1]) for p in sel]) * UE
        cm = np.array([p.stats["dE_cm"][0] / p.stats["P_b"][0] for p in sel]) * UE
        ax.errorbar(x, m, s, marker="o", ls="none", color=c, capsize=3,
                    label=rf"N = {N}: electron, $-(\Delta E_b - \Delta E_b^{{no\,recoil}})$")
        ax.plot(x, cm, marker="x", ms=8, ls="none", color=c, label=rf"N = {N}: CM, $\Delta E_{{cm}}/P_b$")
        xx = np.linspace(x.min() - 0.3, x.max() + 0.3, 200)
        ax.plot(xx, recoil_energy_a8(hk, xx * hk, NM) * UE, color=c, lw=1,
                label=rf"N = {N}: A8, $2\hbar k_0(P+\hbar k_0)/NM$")
    ax.axvline(-1, color="k", ls=":", lw=0.8, label=r"$P = -\hbar k_0$ (A7: strictly elastic)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"CM momentum $P/\hbar k_0$")
    ax.set_ylabel(ylab)
    ax.set_title("a) recoil energy against the CM momentum P", fontsize=10)
    ax.legend(fontsize=6.5)
    ax.grid(alpha=0.3)

    ax = axes[1]
    cfg = res.points[0].config
    hk = HBAR * cfg.k0
    zero = sorted((p for p in fixed if p.values["P_over_hbar_k0"] == 0 and p.values["N"] in e_ref),
                  key=lambda p: p.values["N"])
    if zero:
        ax.errorbar([p.values["N"] for p in zero], [(e_ref[p.values["N"]][0] - p.stats["dE_b"][0]) * UE for p in zero],
                    [math.hypot(p.stats["dE_b"][1], e_ref[p.values["N"]][1]) * UE for p in zero], marker="o",
                    ls="none", capsize=3, label="P = 0, from the electron")
    th = sorted((p for p in thermal if p.values["N"] in e_ref), key=lambda p: p.values["N"])
    if th:
        ax.errorbar([p.values["N"] for p in th], [(e_ref[p.values["N"]][0] - p.stats["dE_b"][0]) * UE for p in th],
                    [math.hypot(p.stats["dE_b"][1], e_ref[p.values["N"]][1]) * UE for p in th], marker="s",
                    mfc="none", ls="none", capsize=5,
                    label=f"thermal P (A10, T = {th[0].config.temperature:g} K), mean over samples")
    NN = np.geomspace(min(Ns) / 1.3, max(Ns) * 1.3, 50)
    ax.plot(NN, recoil_energy_a8(hk, 0.0, NN * cfg.chain.mass_ev) * UE, "k-", lw=1,
            label=r"A8: $2(\hbar k_0)^2/(NM) \propto 1/N$ (P = 0 and thermal mean)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("chain size N (atoms)")
    ax.set_ylabel(ylab)
    ax.set_title("b) the 1/N scaling of the recoil energy", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3, which="both")

    ax = axes[2]
    th = [p for p in thermal if p.values["N"] in e_ref]
    if th:
        p = min(th, key=lambda q: q.values["N"])
        cfg = p.config
        N, NM, hk = cfg.chain.N, cfg.chain.N * cfg.chain.mass_ev, HBAR * cfg.k0
        P = np.asarray(p.per_sample["P_R0"])
        ax.plot(P / hk, (e_ref[N][0] - np.asarray(p.per_sample["dE_b"])) * UE, "o", ms=3, alpha=0.7,
                label=f"samples (N = {N}), from the electron")
        sigma_p = math.sqrt(NM * KB * cfg.temperature)
        lo, hi = min(P.min(), -3 * sigma_p), max(P.max(), 3 * sigma_p)
        xx = np.linspace(lo, hi, 200)
        ax.plot(xx / hk, recoil_energy_a8(hk, xx, NM) * UE, "k-", lw=1, label="A8")
        ax.axvline(-1, color="k", ls=":", lw=0.8, label="$P = -\\hbar k_0$ (A7)")
        ax.set_xlabel(r"sampled CM momentum $P_R/\hbar k_0$")
        ax.set_ylabel(ylab)
        tw = ax.twinx()
        tw.hist(P / hk, bins=16, density=True, color="0.75", alpha=0.5, label="sampled $P_R$ (histogram)")
        if sigma_p > 0:
            tw.plot(xx / hk, hk * np.exp(-xx**2 / (2 * sigma_p**2)) / (math.sqrt(2 * math.pi) * sigma_p), "r--",
                    lw=1, label=f"A10: $\\sigma_P = \\sqrt{{NMk_BT}}$ = {sigma_p / hk:.2g} $\\hbar k_0$")
        tw.set_ylabel(r"probability density of $P_R/\hbar k_0$")
        h1, l1 = ax.get_legend_handles_labels()
        h2, l2 = tw.get_legend_handles_labels()
        ax.legend(h1 + h2, l1 + l2, fontsize=7, loc="upper left")
        ax.set_title(f"c) thermal CM momentum (A10), T = {cfg.temperature:g} K", fontsize=10)
        ax.grid(alpha=0.3)
    else:
        ax.set_axis_off()
    c = res.points[0].config
    d = c.electron.bond_defects[0][1] if c.electron.bond_defects else 0.0
    fig.suptitle(f"CM recoil in backscattering from one bond defect (δt = {d:g} eV) of a static chain: "
                 f"M = {c.chain.mass:g} amu, k0 = π/3a = {c.k0:.3g} 1/Å, σ = {c.electron.sigma:g} Å, "
                 f"t = {c.t_final:g} fs; error bars one standard error", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Trajectories
# ------------------------------------------------------------------------------------------------
def figure_trajectories(point):
    """Space-time density (mean over the saved samples) with the ballistic lines x0 ± v_g t,
    momentum distribution at t = 0 and t_final, u_n(t) of sample 0, and energies / CM momentum."""
    plt = _plt()
    tr, cfg = point.trajectories, point.config
    t, x, k = tr["times"], tr["x"], tr["k"]
    fig, axes = plt.subplots(2, 2, figsize=(12, 8.5))
    ax = axes[0, 0]
    rho = np.asarray(tr["density"]).mean(0)
    from matplotlib.colors import PowerNorm

    im = ax.pcolormesh(x, t, rho, shading="nearest", cmap="magma", norm=PowerNorm(0.4, vmin=0.0))
    fig.colorbar(im, ax=ax, label=r"$|\psi_n|^2$ (mean over samples; power scale 0.4)")
    v = group_velocity(cfg.k0, cfg.electron.t0, cfg.chain.a)
    ax.plot(cfg.x0 + v * t, t, "c--", lw=1, label=r"$x_0 + v_g t$ (forward)")
    ax.plot(cfg.x0 - v * t, t, "w:", lw=1, label=r"$x_0 - v_g t$ (backscattered)")
    for b, _ in cfg.electron.bond_defects:
        ax.axvline((b + 0.5) * cfg.chain.a, color="g", lw=0.8, label="bond defect")
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel("position x (Å)")
    ax.set_ylabel("time t (fs)")
    ax.set_title("a) electron density in space-time", fontsize=10)
    ax.legend(fontsize=7, loc="upper left")

    ax = axes[0, 1]
    w = np.asarray(tr["momentum"])
    ax.plot(k, w[:, 0].mean(0), label="t = 0")
    ax.plot(k, w[:, -1].mean(0), label=f"t = {t[-1]:g} fs")
    ax.axvline(cfg.k0, color="k", ls=":", lw=0.8, label="$\\pm k_0$")
    ax.axvline(-cfg.k0, color="k", ls=":", lw=0.8)
    dk = 2 * np.pi / (cfg.chain.N * cfg.chain.a)
    gauss = dk * cfg.electron.sigma * math.sqrt(2 / math.pi) * np.exp(-2 * cfg.electron.sigma**2 * (k - cfg.k0) ** 2)
    ax.plot(k, gauss, "k--", lw=0.8, label=r"Gaussian packet $\propto e^{-2\sigma^2(k-k_0)^2}$")
    ax.set_yscale("log")
    top = float(w.mean(0).max())
    ax.set_ylim(top * 1e-7, top * 3)
    ax.set_xlabel("momentum k (1/Å)")
    ax.set_ylabel(r"$|\tilde\psi(k)|^2$ per k point (mean over samples)")
    ax.set_title("b) momentum distribution before and after", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    ax = axes[1, 0]
    u = np.asarray(tr["u"])[0]
    lim = float(np.abs(u).max()) or 1.0
    im = ax.pcolormesh(x, t, u, shading="nearest", cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, label="$u_n$ (Å), sample 0")
    ax.set_xlabel("position x (Å)")
    ax.set_ylabel("time t (fs)")
    ax.set_title(f"c) lattice displacements ({cfg.dynamics}, {cfg.statistics}, T = {cfg.temperature:g} K)",
                 fontsize=10)

    ax = axes[1, 1]
    Eb = np.asarray(tr["E_band"])
    ax.plot(t, (Eb - Eb[:, :1]).mean(0) * MEV, label=r"band energy $\langle\varepsilon(k)\rangle - $ initial")
    Er = np.asarray(tr["E_recoil"])
    ax.plot(t, (Er - Er[:, :1]).mean(0) * MEV, label=r"CM energy $\langle(Q-\hbar k)^2/2NM\rangle - $ initial")
    ax.set_xlabel("time t (fs)")
    ax.set_ylabel("energy change (meV)")
    ax.grid(alpha=0.3)
    tw = ax.twinx()
    PR = np.asarray(tr["P_R"])
    tw.plot(t, (PR - PR[:, :1]).mean(0) / (HBAR * cfg.k0), "k--", lw=1,
            label=r"CM momentum change $\Delta\langle P_R\rangle/\hbar k_0$")
    tw.plot(t, 2 * np.asarray(tr["P_b"]).mean(0), "k:", lw=1, label=r"expected $2P_b(t)$ (A5)")
    tw.set_ylabel(r"$\Delta\langle P_R\rangle/\hbar k_0$")
    h1, l1 = ax.get_legend_handles_labels()
    h2, l2 = tw.get_legend_handles_labels()
    ax.legend(h1 + h2, l1 + l2, fontsize=7)
    ax.set_title("d) energies and CM momentum (mean over samples)", fontsize=10)
    fig.suptitle(f"{point.label}: N = {cfg.chain.N}, α = {cfg.electron.alpha:g} eV/Å, recoil "
                 f"{'on' if cfg.recoil else 'off'}, {len(tr['sample_index'])} samples", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
def plot_file(path, outdir=None, max_trajectories: int = 4) -> list[Path]:
    """Draw every standard figure that fits the results file and save them as PNG next to it (or in
    outdir). Returns the paths written."""
    from .io import read_results

    res = read_results(path)
    if not res.points:
        raise ValueError(f"{path}: no finished points to plot")
    outdir = Path(outdir) if outdir is not None else Path(path).parent
    outdir.mkdir(parents=True, exist_ok=True)
    stem = Path(path).stem
    plt = _plt()
    written = []

    def save(fig, name):
        p = outdir / f"{stem}_{name}.png"
        fig.savefig(p, dpi=110, bbox_inches="tight")
        plt.close(fig)
        written.append(p)

    if res.experiment == "recoil":
        save(figure_recoil(res), "recoil")
    elif len(res.points) > 1 and any(k in NUMERIC_AXES for k in res.points[0].values):
        save(figure_sweep(res), "sweep")
    n = 0
    for p in res.points:
        if p.trajectories is not None and n < max_trajectories:
            save(figure_trajectories(p), f"trajectory_p{p.index:04d}")
            n += 1
    return written


__all__ = ["figure_sweep", "figure_recoil", "figure_trajectories", "plot_file", "recoil_energy_a8"]
