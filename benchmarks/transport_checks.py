"""The exact checks of the transport machinery, with the numbers (tests/test_transport.py asserts
the same checks at the default sizes; this prints how close each one comes).

    python benchmarks/transport_checks.py                # ~30 s on a 2-core CPU
    python benchmarks/transport_checks.py --scale 4      # 4x the realisations / chains

1. HSR (on-site white noise, rate Γ; wow.run with dynamics='noise') on the chain, single-site start: the simulated MSD against
   the closed form at several times (z-scores), the MSD-slope D and the Kubo D against
   2 t0² a²/(ħ²Γ), τ_p against 1/Γ; a packet launched at k0: τ_p from <v> and τ_E from E_e against 1/Γ.
2. Ornstein-Uhlenbeck velocity process (exact sampling): coverage of ±1σ of the MSD-slope D, the
   Kubo D and τ_p over repetitions.
3. Frozen thermal disorder: the Lyapunov exponent of the transfer matrix against the decay of the
   exact Green's function (real E) and of the resolvent from wow.run's frames (E + iη), and the weak-disorder
   formula at weak disorder.
Runs in float64 on the CPU. Prints a markdown table; nothing is written.
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time
from pathlib import Path

os.environ.setdefault("JAX_PLATFORMS", "cpu")
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import numpy as np  # noqa: E402
from scipy.linalg import solve_banded  # noqa: E402

import wow  # noqa: E402
from wow import ensemble  # noqa: E402
from wow import theory as th  # noqa: E402
from wow import transport as tr  # noqa: E402
from wow.units import KB  # noqa: E402


def ols(t):
    d = t - t.mean()
    return d / np.sum(d**2)


def row(name, measured, reference, note=""):
    print(f"| {name} | {measured} | {reference} | {note} |")


def hsr_config(sigma, n_frames=50, duration=5.0):
    """The perfect open chain (T = 0) with HSR noise Γ = 2/fs through wow.run (dynamics='noise')."""
    return wow.Config(chain=wow.Chain(N=48, a=1.0), temperature=0.0, dynamics="noise", noise=wow.Noise(rate=2.0),
                      electron=wow.Electron(t0=1.0, alpha=0.0, sigma=sigma, k0=math.pi / 3, x0=24.0), dt=0.02,
                      duration=duration, n_frames=n_frames, transport=True, kubo=True, check_inside=False)


def hsr(scale, seed):
    N, a, t0, G, x0 = 48, 1.0, 1.0, 2.0, 24.0
    n = 4000 * scale
    cfg = hsr_config(0.05)
    r = wow.run(cfg, n, seed=seed, progress=False)
    fr, times = r.traces, r.times
    site = np.asarray(ensemble.initial_packet(cfg))
    ex = th.hsr_moments(times, site, t0, a, G, x0=x0)
    D = th.hsr_diffusion(t0, a, G)
    m, se = tr.series_mean_sem(fr["msd"])
    at = np.searchsorted(times, [0.5, 1.0, 2.0, 3.0, 4.0, 5.0])
    z = (m[at] - ex["msd"][at]) / se[at]
    row(f"HSR MSD(t) vs closed form, t = 0.5..5 fs = 1..10/Γ ({n} realisations, wow.run)",
        "z = " + ", ".join(f"{v:+.2f}" for v in z), "|z| < 4", f"rel. sem at 5 fs {se[at[-1]] / m[at[-1]]:.2%}")
    Dk, tau = tr.kubo_diffusion(times, fr["corr"])
    fit = tr.diffusion_msd(times, fr["msd"], tau_p=tau.value, t_stop=tr.edge_until(times, fr["edge"]))
    i0 = np.searchsorted(times, fit.t_start)
    Dw = th.hsr_msd(times[i0:], t0, a, G) @ ols(times[i0:]) / 2
    row("HSR D, MSD slope (window from 5 τ_p to the edge rule)", f"{fit.value:.4f} ± {fit.sem:.4f} Å²/fs",
        f"{D:.4f} (closed form, same window {Dw:.4f})", f"{fit.value / D - 1:+.2%} of D; flat: {fit.ok}")
    row("HSR D, Kubo ∫C_vv", f"{Dk.value:.4f} ± {Dk.sem:.4f} Å²/fs", f"{D:.4f}", f"{Dk.value / D - 1:+.2%}")
    row("HSR τ_p from C_vv", f"{tau.value:.4f} ± {tau.sem:.4f} fs", f"{1 / G:.4f}", f"{tau.value * G - 1:+.2%}")
    n = 1000 * scale
    fr = wow.run(hsr_config(3.0), n, seed=seed + 1, progress=False).traces
    tv = tr.relaxation_time(times, fr["v_mean"])
    e = tr.energy_exchange(times, fr["E_e"], E_eq=0.0, t_stop=0.2)
    row(f"HSR packet k0 = π/3a: τ_p from <v> ({n})", f"{tv.value:.4f} ± {tv.sem:.4f} fs", f"{1 / G:.4f}", "")
    row("HSR packet: τ_E (integral) towards the band centre", f"{e['tau_E_int'].value:.4f} ± {e['tau_E_int'].sem:.4f} fs",
        f"{1 / G:.4f}", "the noise is infinitely hot: E_eq = 0")
    row("HSR packet: τ_E (rate rule, window 0..0.4/Γ)", f"{e['tau_E'].value:.4f} ± {e['tau_E'].sem:.4f} fs",
        f"{1 / G:.4f}", "bias O((window/τ)²/12) ~ 1 %")


def ou_coverage(scale, seed):
    rng = np.random.default_rng(seed)
    t = np.linspace(0, 20, 201)
    R, n = 200 * scale, 400
    z = []
    for _ in range(R):
        X, V = th.ou_paths(rng, (n,), t)  # σ_v = τ = 1: D = 1
        Dk, tau = tr.kubo_diffusion(t, V * V[:, :1])
        Dm = tr.diffusion_msd(t, X**2, tau_p=tau.value)
        z.append([(Dm.value - 1) / Dm.sem, (Dk.value - 1) / Dk.sem, (tau.value - 1) / tau.sem])
    z = np.array(z)
    cov = np.mean(np.abs(z) < 1, axis=0)
    for i, name in enumerate(("MSD-slope D", "Kubo D", "τ_p")):
        row(f"OU process ({R} x {n} samples): {name} coverage of ±1σ", f"{cov[i]:.3f}", "0.683",
            f"mean z {z[:, i].mean():+.3f}, sd z {z[:, i].std():.3f}")


def disorder(scale, seed):
    rng = np.random.default_rng(seed)
    t0, a, alpha, D, E, T, K = 1.0, 2.556, 2.0, 1.5, -1.0, 1500.0, 3.32
    s2 = KB * T / K

    def chains(nc, L, var=s2):
        b = rng.normal(0, math.sqrt(var), (nc, L - 1))
        zero = np.zeros((nc, 1))
        return t0 - alpha * b, D * (np.concatenate([zero, b], 1) + np.concatenate([b, zero], 1)) / (2 * a)

    g, gse = th.lyapunov_exponent(E, *chains(16 * scale, 20000))
    L, s0, nc = 300, 40, 200 * scale
    tb, eps = chains(nc, L)
    n = np.arange(L) - s0
    sel = (n >= 15) & (n <= 200)
    sl = []
    for c in range(nc):
        ab = np.zeros((3, L), complex)
        ab[0, 1:], ab[1], ab[2, :-1] = tb[c], E + 1e-12j - eps[c], tb[c]
        sl.append(-np.log(np.abs(solve_banded((1, 1), ab, np.eye(L)[s0])[sel])) @ ols(n[sel].astype(float)))
    m, se = tr.mean_sem(sl)
    row(f"frozen disorder, 1500 K, α = 2 eV/Å, D = 1.5 eV, E = -t0: γ of <ln|G(E)|> ({nc} chains)",
        f"{m:.4f} ± {se:.4f} /site", f"{g:.4f} ± {gse:.4f} (transfer matrix)", f"ξ = a/γ = {a / g:.1f} Å")
    eta, N, s0 = 0.15, 120, 60
    z = E + 1j * eta
    gz, gzse = th.lyapunov_exponent(z, *chains(16 * scale, 20000))
    # frozen thermal chains through wow.run (the same model: K = 3.32 eV/Å², a = 2.556 Å), ψ saved
    # every Δ = 0.2 fs; the frames' Laplace sum is the resolvent column up to a short-ranged factor
    delta = 0.2
    nf = int(round(12 * 0.6582119569 / eta / delta))
    cfg = wow.Config(chain=wow.Chain(N=N), electron=wow.Electron(t0=t0, alpha=alpha, D=D, sigma=a / 20, x0=s0 * a),
                     temperature=T, dynamics="frozen", dt=0.025, duration=nf * delta, n_frames=nf,
                     save_amplitudes=True, check_inside=False)
    r = wow.run(cfg, 48 * scale, seed=seed + 3, progress=False)
    w = np.full(r.times.size, delta)
    w[0] = w[-1] = delta / 2
    lnR = np.log(np.abs(np.einsum("j,sjn->sn", w * np.exp(1j * z * r.times / 0.6582119569), r.traces["psi"])))
    n = np.arange(N) - s0
    r, lft = (n >= 8) & (n <= 40), (n <= -8) & (n >= -40)
    sl = (-lnR[:, r] @ ols(n[r].astype(float)) + lnR[:, lft] @ ols(n[lft].astype(float))) / 2
    m, se = tr.mean_sem(sl)
    row(f"frozen disorder: decay of wow.run's resolvent at E + {eta} i eV ({48 * scale} chains)",
        f"{m:.4f} ± {se:.4f} /site", f"{gz:.4f} ± {gzse:.4f} (transfer matrix at E + iη)", "")
    for al, DD in ((2.0, 0.0), (2.0, 4.0), (2.0, -4.0)):
        b = rng.normal(0, 0.04, (16 * scale, 20000 - 1))
        zero = np.zeros((b.shape[0], 1))
        tb = t0 - al * b
        ep = DD * (np.concatenate([zero, b], 1) + np.concatenate([b, zero], 1)) / (2 * a)
        g, gse = th.lyapunov_exponent(E, tb, ep)
        gw = th.lyapunov_weak(E, t0, a, al, DD, 0.04**2)
        row(f"weak disorder <b²> = (0.04 Å)², α = {al}, D = {DD}: γ", f"{g:.5f} ± {gse:.5f}", f"{gw:.5f} (weak-disorder formula)",
            f"{g / gw - 1:+.1%}")


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--scale", type=int, default=1, help="multiply realisations, repetitions and chains")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args(argv)
    if args.scale < 1:
        p.error(f"--scale={args.scale}: allowed integers >= 1")
    t = time.perf_counter()
    print("| check | measured | exact | note |\n|---|---|---|---|")
    hsr(args.scale, args.seed)
    ou_coverage(args.scale, args.seed)
    disorder(args.scale, args.seed)
    print(f"\n{time.perf_counter() - t:.1f} s, jax {jax.__version__}, {jax.devices()[0].platform}")


if __name__ == "__main__":
    main()
