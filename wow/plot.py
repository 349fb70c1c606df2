"""The standard figures, drawn from a results file (``wow.io.read_results``): every axis with its
unit, a legend, and the analytic expectation wherever one exists.

  figure_sweep         the whole sweep: tallies against T (or N), one panel per value of the other
                       axis, categorical inputs by colour and marker, error bars (backscattering)
  figure_recoil        the backscattering energy mismatch against the CM momentum P and N, with
                       the recoil law ΔE = 2ħk(P + ħk)/(NM) (paper Eq. A8), its zero at P = -ħk (A7)
                       and the thermal distribution of P (A10)
  figure_trajectories  space-time density with the ballistic paths and width, momentum distribution
                       before and after, lattice displacements, band energy, CM momentum (A5) and
                       CM energy (A8) against time
  figure_diffusion     MSD(t) with the fitted slope 2D over its window (Troisi-Orlandi)
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
NUMERIC_AXES = {"temperature": ("temperature $T$ (K)", False), "N": ("chain size $N$ (atoms)", True)}
MAX_FACETS = 4  # beyond this many values of the second numeric axis, one panel with a line per value


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


def _packet_spread(cfg):
    """A9: ΔE_pkt ~ ħ v_g Δk with Δk = 1/(2σ) the packet's momentum spread (eV)."""
    return HBAR * abs(group_velocity(cfg.k0, cfg.electron.t0, cfg.chain.a)) / (2 * cfg.electron.sigma)


def _offset(xs, i, n, log, span):
    """Shift series i of n sideways by a few percent so coinciding points stay visible."""
    d = i - (n - 1) / 2
    return xs * 2 ** (0.04 * d) if log else xs + 0.012 * d * span


MARKERS = ("o", "s", "^", "D", "v", "P")
LINES = ("-", "--", ":", "-.")


def figure_sweep(res):
    """The whole sweep, each point once: tallies (rows: P_b, ΔE_b, P_coh) against the main numeric
    axis (T when it is swept, else N), one column per value of the other numeric axis (one line per
    value, coloured, when it has more than MAX_FACETS values). The categorical inputs (statistics,
    dynamics, ...) are told apart by colour (the first) and marker and line style (the others), with
    small sideways offsets so that coinciding series stay visible. Error bars: one standard error."""
    plt = _plt()
    pts = res.points
    numeric, categorical = _axes_of(pts)
    present = [k for k in NUMERIC_AXES if k in pts[0].values]
    if not present:
        raise ValueError(f"{res.path}: no numeric sweep axis (temperature or N) to plot against")
    x = numeric[0] if numeric else present[0]
    other = next((k for k in numeric if k != x), None)
    values = sorted({p.values[other] for p in pts}) if other else [None]
    facets = values if len(values) <= MAX_FACETS else [None]
    combos = sorted({tuple(str(p.values[k]) for k in categorical) for p in pts})
    first = sorted({c[0] for c in combos}) if categorical else [""]
    rest = sorted({c[1:] for c in combos})
    label_x, logx = NUMERIC_AXES[x]
    xs_all = np.array(sorted({p.values[x] for p in pts}), float)
    span = float(xs_all.max() - xs_all.min()) or 1.0
    rows = [("P_b", r"backscattered probability $P_b$", lambda p: p.stats["P_b"], 1.0),
            ("dE_b", r"$\Delta E_b$ of the backscattered part (meV)", lambda p: p.stats["dE_b"], MEV),
            ("P_coh", "coherent part $P_{coh}$\n" r"($P_{inc} = P_{tot} - P_{coh}$: in the table)",
             lambda p: (p.coherent["P_coh"], p.coherent["P_coh_sem"]), 1.0)]
    fig, axes = plt.subplots(len(rows), len(facets), figsize=(1.5 + 4.3 * len(facets), 10.5), sharey="row",
                             squeeze=False)
    colors = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    cmap = plt.get_cmap("viridis")
    lines = [(fv, combo) for fv in (values if facets == [None] and other else [None]) for combo in combos]
    for col, facet in enumerate(facets):
        for n_line, (fv, combo) in enumerate(lines):
            fixed = {k: _typed(pts, k, v) for k, v in zip(categorical, combo)}
            if other is not None:
                fixed[other] = facet if facet is not None else fv
            ci, ri = first.index(combo[0]) if categorical else 0, rest.index(combo[1:])
            if fv is not None:  # many values of the other axis: colour by it
                color = cmap(values.index(fv) / max(1, len(values) - 1))
                label = f"{_axis_text(other, fv)}" + (f", {', '.join(combo)}" if combo else "")
            else:
                color = colors[ci % len(colors)]
                label = ", ".join(combo) or "all points"
            style = dict(marker=MARKERS[ri % len(MARKERS)], ls=LINES[ri % len(LINES)], color=color, capsize=3,
                         mfc=color if ri == 0 else "white", ms=5, lw=1.2)
            for row, (key, ylabel, get, scale) in enumerate(rows):
                xs, m, s = _series(pts, x, fixed, get)
                if len(xs):
                    axes[row, col].errorbar(_offset(xs, n_line, len(lines), logx, span), m * scale, s * scale,
                                            label=label, **style)
        for row, (key, ylabel, get, scale) in enumerate(rows):
            ax = axes[row, col]
            if key != "P_b":
                ax.axhline(0, color="k", lw=0.8, ls=":", label="0 (elastic)" if key == "dE_b" else "0")
            if logx:
                ax.set_xscale("log", base=2)
                ax.set_xticks(xs_all, [f"{v:g}" for v in xs_all])
            ax.grid(alpha=0.3)
            if row == len(rows) - 1:
                ax.set_xlabel(label_x)
            if col == 0:
                ax.set_ylabel(ylabel)
            if row == 0 and facet is not None:
                ax.set_title(_axis_text(other, facet), fontsize=11)
    cfg = pts[-1].config
    spread = _packet_spread(cfg) * MEV
    axes[1, 0].plot([], [], " ", label=rf"packet spread $\hbar v_g\Delta k$ = {spread:.0f} meV (A9)")
    axes[0, 0].legend(fontsize=8, title=", ".join(categorical) or None, title_fontsize=8)
    h, lab = axes[1, 0].get_legend_handles_labels()
    keep = [i for i, text in enumerate(lab) if text.startswith(("0 (elastic)", "packet spread"))]
    axes[1, 0].legend([h[i] for i in keep], [lab[i] for i in keep], fontsize=8)
    c = cfg
    fig.suptitle(rf"Backscattering after {c.t_final:g} fs: $\alpha$ = {c.electron.alpha:g} eV/Å, "
                 rf"$D$ = {c.electron.D:g} eV, $k_0$ = {c.k0:.3g} 1/Å, $\sigma$ = {c.electron.sigma:g} Å, "
                 rf"$M$ = {c.chain.mass:g} amu, recoil {'on' if c.recoil else 'off'}, "
                 f"{pts[0].attrs.get('n_samples')} samples per point; error bars one standard error", fontsize=10)
    fig.tight_layout()
    return fig


def _axis_text(key, value):
    if key == "temperature":
        return f"$T$ = {value:g} K"
    if key == "N":
        return f"$N$ = {value:g}"
    return f"{key} = {value}"


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


def _electron_recoil(p, ref):
    """(mean, sem) of -(ΔE_b - ΔE_b[recoil off]) of point p against its reference (NaN without one).
    The reference runs at T = 0 with a fixed CM momentum: nothing in it is random, every sample is the
    same and its error is 0, so the difference carries p's own error (it shares p's seed, but a
    deterministic run has no covariance with anything)."""
    if ref is None:
        return math.nan, math.nan
    m, s = p.stats["dE_b"]
    return ref.stats["dE_b"][0] - m, s


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
        elec = _electron_recoil(p, ref.get(N))
        pb = p.stats["P_b"][0]
        if p.values["kind"] == "fixed":
            P = p.values["P_over_hbar_k0"]
            rows.append((N, f"{P:g}", elec, p.stats["dE_cm"][0] / pb, recoil_energy_a8(hk, P * hk, NM), pb))
        else:
            rows.append((N, f"thermal {cfg.temperature:g} K", elec, p.stats["dE_cm"][0] / pb,
                         recoil_energy_a8(hk, 0.0, NM), pb))
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
        m, s = (np.array(x) * UE for x in zip(*(_electron_recoil(p, ref[N]) for p in sel)))
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
        ez = [_electron_recoil(p, ref[p.values["N"]]) for p in zero]
        ax.errorbar([p.values["N"] for p in zero], [e[0] * UE for e in ez], [e[1] * UE for e in ez], marker="o",
                    ls="none", capsize=3, label=r"$P = 0$, from the electron")
    th = sorted((p for p in thermal if p.values["N"] in e_ref), key=lambda p: p.values["N"])
    if th:
        et = [_electron_recoil(p, ref[p.values["N"]]) for p in th]
        ax.errorbar([p.values["N"] * 2**0.06 for p in th],  # beside the P = 0 points, not on them
                    [e[0] * UE for e in et], [e[1] * UE for e in et], marker="s",
                    mfc="none", ls="none", capsize=5,
                    label=rf"thermal $P$ (A10, $T$ = {th[0].config.temperature:g} K), mean over samples")
    NN = np.geomspace(min(Ns) / 1.3, max(Ns) * 1.3, 50)
    ax.plot(NN, recoil_energy_a8(hk, 0.0, NN * cfg.chain.mass_ev) * UE, "k-", lw=1,
            label=r"A8: $2(\hbar k_0)^2/(NM) \propto 1/N$ (P = 0 and thermal mean)")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(r"chain size $N$ (atoms)")
    ax.set_ylabel(ylab)
    ax.set_xticks(Ns, [str(n) for n in Ns])
    ax.set_title(r"b) the $1/N$ scaling of the recoil energy", fontsize=10)
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
    fig.suptitle(rf"CM recoil in backscattering from one bond defect ($\delta t$ = {d:g} eV) of a static chain: "
                 rf"$M$ = {c.chain.mass:g} amu, $k_0 = \pi/3a$ = {c.k0:.3g} 1/Å, $\sigma$ = {c.electron.sigma:g} Å, "
                 rf"$t$ = {c.t_final:g} fs; error bars one standard error", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Trajectories
# ------------------------------------------------------------------------------------------------
def ballistic_width(cfg, t):
    """Width of the free packet at time t: sqrt(σ² + (Δv t / 2σ)²), Δv = 2a²t0|cos k0a|/ħ the spread
    of group velocities over its Δk = 1/(2σ) (the band's curvature at k0)."""
    a, sig = cfg.chain.a, cfg.electron.sigma
    dv = 2 * a**2 * cfg.electron.t0 * abs(math.cos(cfg.k0 * a)) / HBAR
    return np.sqrt(sig**2 + (dv * np.asarray(t) / (2 * sig)) ** 2)


def _band(ax, t, v, scale=1.0, band=True, **kw):
    """Mean over samples with a shaded ± one standard error band."""
    v = np.asarray(v, float) * scale
    m = v.mean(0)
    line, = ax.plot(t, m, **kw)
    if band and v.shape[0] > 1:
        s = v.std(0, ddof=1) / math.sqrt(v.shape[0])
        ax.fill_between(t, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
    return line


def figure_trajectories(point):
    """a) space-time density (mean over the saved samples) with the ballistic paths x0 ± v_g t and
    the free packet's width; b) momentum distribution at t = 0 and t_final with the Gaussian packet;
    c) u_n(t) of sample 0; d) band energy change; e) CM momentum change against 2P_b(t) (A5);
    f) CM kinetic energy change against the recoil law A8 applied to the backscattered weight.
    Curves d-f: mean over samples, bands ± one standard error."""
    plt = _plt()
    from matplotlib.colors import PowerNorm

    tr, cfg = point.trajectories, point.config
    t, x, k = tr["times"], tr["x"], tr["k"]
    n = len(tr["sample_index"])
    fig, axes = plt.subplots(2, 3, figsize=(17, 9))
    ax = axes[0, 0]
    rho = np.asarray(tr["density"]).mean(0)
    im = ax.pcolormesh(x, t, rho, shading="nearest", cmap="magma", norm=PowerNorm(0.4, vmin=0.0))
    fig.colorbar(im, ax=ax, label=r"$|\psi_n|^2$ (mean over samples; power scale 0.4)")
    v = group_velocity(cfg.k0, cfg.electron.t0, cfg.chain.a)
    w = ballistic_width(cfg, t)
    ax.plot(cfg.x0 + v * t, t, "c--", lw=1, label=r"$x_0 + v_g t$ (forward)")
    ax.plot(cfg.x0 + v * t - 2 * w, t, color="c", ls=(0, (1, 2)), lw=1.2, label=r"$\pm 2\sigma(t)$, free packet")
    ax.plot(cfg.x0 + v * t + 2 * w, t, color="c", ls=(0, (1, 2)), lw=1.2)
    ax.plot(cfg.x0 - v * t, t, "w--", lw=1, label=r"$x_0 - v_g t$ (backscattered)")
    for b, _ in cfg.electron.bond_defects:
        ax.axvline((b + 0.5) * cfg.chain.a, color="g", lw=0.8, label="bond defect")
    ax.set_xlim(x[0], x[-1])
    ax.set_xlabel(r"position $x$ (Å)")
    ax.set_ylabel(r"time $t$ (fs)")
    ax.set_title("a) electron density in space-time", fontsize=10)
    ax.legend(fontsize=7, loc="upper left", framealpha=0.6)

    ax = axes[0, 1]
    wk = np.asarray(tr["momentum"])
    ax.plot(k, wk[:, 0].mean(0), label="$t = 0$")
    ax.plot(k, wk[:, -1].mean(0), label=f"$t$ = {t[-1]:g} fs")
    ax.axvline(cfg.k0, color="k", ls=":", lw=0.8, label=r"$\pm k_0$")
    ax.axvline(-cfg.k0, color="k", ls=":", lw=0.8)
    dk = 2 * np.pi / (cfg.chain.N * cfg.chain.a)
    gauss = dk * cfg.electron.sigma * math.sqrt(2 / math.pi) * np.exp(-2 * cfg.electron.sigma**2 * (k - cfg.k0) ** 2)
    ax.plot(k, gauss, "k--", lw=0.8, label=r"Gaussian packet $\propto e^{-2\sigma^2(k-k_0)^2}$")
    ax.set_yscale("log")
    top = float(wk.mean(0).max())
    ax.set_ylim(top * 1e-7, top * 3)
    ax.set_xlabel(r"momentum $k$ (1/Å)")
    ax.set_ylabel(r"$|\tilde\psi(k)|^2$ per $k$ point (mean over samples)")
    ax.set_title("b) momentum distribution before and after", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)

    ax = axes[0, 2]
    u = np.asarray(tr["u"])[0]
    lim = float(np.abs(u).max()) or 1.0
    im = ax.pcolormesh(x, t, u, shading="nearest", cmap="RdBu_r", vmin=-lim, vmax=lim)
    fig.colorbar(im, ax=ax, label="$u_n$ (Å), sample 0")
    ax.set_xlabel(r"position $x$ (Å)")
    ax.set_ylabel(r"time $t$ (fs)")
    ax.set_title(f"c) lattice displacements ({cfg.dynamics}, {cfg.statistics}, $T$ = {cfg.temperature:g} K)",
                 fontsize=10)

    ax = axes[1, 0]
    Eb = np.asarray(tr["E_band"])
    _band(ax, t, Eb - Eb[:, :1], MEV, label=r"$\langle\varepsilon(k)\rangle(t) - \langle\varepsilon(k)\rangle(0)$")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"time $t$ (fs)")
    ax.set_ylabel("band energy change (meV)")
    ax.set_title("d) the electron's band energy", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1, 1]
    hk = HBAR * cfg.k0
    PR = np.asarray(tr["P_R"])
    _band(ax, t, (PR - PR[:, :1]) / hk, label=r"$\Delta\langle P_R\rangle/\hbar k_0$")
    _band(ax, t, 2 * np.asarray(tr["P_b"]), band=False, ls="--", color="k", lw=1,
          label=r"$2P_b(t)$: each reversal gives the CM $2\hbar k_0$ (A5)")
    ax.set_xlabel(r"time $t$ (fs)")
    ax.set_ylabel(r"CM momentum change $/\hbar k_0$")
    ax.set_title("e) CM momentum", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)

    ax = axes[1, 2]
    UE = 1e6  # eV -> µeV
    Er = np.asarray(tr["E_recoil"])
    NM = cfg.chain.N * cfg.chain.mass_ev
    a8 = np.asarray(tr["P_b"]) * recoil_energy_a8(hk, PR[:, :1], NM)
    _band(ax, t, Er - Er[:, :1], UE, label=r"$\Delta\langle(Q-\hbar k)^2/2NM\rangle$")
    _band(ax, t, a8, UE, band=False, ls="--", color="k", lw=1, label=r"$P_b(t)\cdot 2\hbar k_0(P_R+\hbar k_0)/NM$ (A8)")
    ax.axhline(0, color="k", lw=0.5)
    ax.set_xlabel(r"time $t$ (fs)")
    ax.set_ylabel("CM kinetic energy change (µeV)")
    ax.set_title("f) CM recoil energy", fontsize=10)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.suptitle(rf"{point.label}: $N$ = {cfg.chain.N}, $\alpha$ = {cfg.electron.alpha:g} eV/Å, "
                 rf"$\sigma$ = {cfg.electron.sigma:g} Å, recoil {'on' if cfg.recoil else 'off'}, {n} samples "
                 "(bands: ± one standard error)", fontsize=10)
    fig.tight_layout()
    return fig


# ------------------------------------------------------------------------------------------------
# Diffusion (Troisi-Orlandi)
# ------------------------------------------------------------------------------------------------
def figure_diffusion(res, a: float | None = None):
    """Mean-square displacement against time, one curve per lattice dynamics, ± one standard error,
    with the fitted line MSD = 2Dt + c over its window (the last half of the run) and D in the
    legend (and in cm²/s for the spacing ``a`` in Å)."""
    plt = _plt()
    fig, ax = plt.subplots(figsize=(7, 4.8))
    for p in res.points:
        t = np.asarray(p.times)
        m, s = np.asarray(p.trace_mean["msd"]), np.asarray(p.trace_sem["msd"])
        line, = ax.plot(t, m, label=f"{p.values.get('dynamics', p.label)}")
        ax.fill_between(t, m - s, m + s, color=line.get_color(), alpha=0.2, lw=0)
        D, se = p.stats["D"]
        half = t >= t[-1] / 2
        c = float(np.mean(m[half] - 2 * D * t[half]))
        cm2 = f" = {D * 0.1 * a**2:.2g} cm²/s" if a else ""
        ax.plot(t[half], 2 * D * t[half] + c, color=line.get_color(), ls="--", lw=1.5,
                label=rf"fit $2Dt + c$ over $t \geq$ {t[-1] / 2:g} fs: $D$ = {D:.3g} ± {se:.1g} $a^2$/fs{cm2}")
    ax.axvspan(t[-1] / 2, t[-1], color="0.9", zorder=0, label="fit window")
    ax.set_xlabel(r"time $t$ (fs)")
    ax.set_ylabel(r"MSD $\langle (x - x_0)^2 \rangle$ ($a^2$)")
    opts = res.points[0].options
    ax.set_title(f"Troisi-Orlandi model: {opts.get('N')} molecules, $T$ = {opts.get('temperature_K'):g} K, "
                 f"{res.points[0].attrs.get('n_samples')} samples (bands ± one standard error)", fontsize=9)
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
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
    elif res.experiment == "troisi_orlandi":
        save(figure_diffusion(res), "diffusion")
    elif len(res.points) > 1 and any(k in NUMERIC_AXES for k in res.points[0].values):
        save(figure_sweep(res), "sweep")
    n = 0
    for p in res.points:
        if p.trajectories is not None and n < max_trajectories:
            save(figure_trajectories(p), f"trajectory_p{p.index:04d}")
            n += 1
    return written


__all__ = ["figure_sweep", "figure_recoil", "figure_trajectories", "figure_diffusion", "plot_file",
           "recoil_energy_a8", "ballistic_width"]
