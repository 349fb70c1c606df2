"""Observables (docs/model.md, "Tallies" and "Quantum modes"): per-sample tallies from the initial
and final states, and ensemble statistics (means with standard errors, the coherent/incoherent split).

Per sample (all energies in eV, momenta in eV·fs/Å):
  P_b      backscattered probability sum_{k<0} |ψ~(k)|² at t_final (P_b0: the same at t = 0);
  E_in     band energy sum_k ε(k)|ψ~(k)|² of the initial packet;
  E_b      band energy of the backscattered part, sum_{k<0} ε(k)|ψ~(k)|² / P_b (NaN if P_b < 1e-12);
  dE_b     E_b - E_in: the energy the backscattered part has lost (<0) or gained (>0);
  dE_e     <H_e(u(t_f))>_ψ(t_f) - <H_e(u(0))>_ψ(0), interaction included (zero for frozen without recoil);
  dE_cm    change of <(Q - ħk)²/(2NM)>: the CM kinetic energy that momentum conservation implies
           (the recoil energy, paper Eq. A8). It acts on the electron only when recoil is on, and
           then dE_e + dE_cm = 0 for a frozen lattice;
  k_f, P_R_f  final <k> and <P_R> = Q - ħ<k> (wow.run subtracts ΔP_ph for Ehrenfest on the ring).

Quantum lattice (per sample, from the engine's final populations and backscattered weights per Fock
state of the analysis basis): P_b, P_b_el (Δn = 0), E_ph_b (Σ_j ħω_j Δn_j averaged over the
backscattered part), P_ph_f, P_R_f, top_max, norm, norm_basis; fractions of P_b by order Σ|Δn_j|;
the Δn patterns carrying backscattering (``quantum_summary``).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .electron import momentum_amplitudes
from .units import HBAR

#: Below this P_b the backscattered energy E_b is undefined (NaN).
P_B_FLOOR = 1e-12


def final_tallies(model, psi0, psi_f, u0, u_f, Q, p):
    """Per-sample scalar tallies of the chain electron (see module doc) and the final ψ~(k), for one
    sample: ψ (N,) complex, u (N,)."""
    psik0, psik = momentum_amplitudes(psi0), momentum_amplitudes(psi_f)
    w0, w = jnp.abs(psik0) ** 2, jnp.abs(psik) ** 2
    eps_k = model.band(p.k, p)
    back = p.k < 0
    P_b = jnp.sum(jnp.where(back, w, 0.0))
    E_in = jnp.sum(eps_k * w0)
    E_b = jnp.where(P_b > P_B_FLOOR, jnp.sum(jnp.where(back, eps_k * w, 0.0)) / jnp.maximum(P_b, P_B_FLOOR), jnp.nan)
    k_f = jnp.sum(p.k * w) / jnp.sum(w)
    out = {
        "P_b": P_b,
        "P_b0": jnp.sum(jnp.where(back, w0, 0.0)),
        "E_in": E_in,
        "E_b": E_b,
        "dE_b": E_b - E_in,
        "dE_e": model.energy_of(psi_f, u_f, p) - model.energy_of(psi0, u0, p),
        "dE_cm": recoil_energy_change(w0, w, Q, p.k, p.inv_2NM),
        "norm": jnp.sum(w),
        "k_f": k_f,
        "P_R_f": Q - HBAR * k_f,
    }
    return out, psik


def recoil_energy_change(w0, w, Q, k, inv_2NM):
    """Change of <(Q - ħk)²>/(2NM) between the momentum weights w0 and w (each normalised here),
    formed without cancellation: (Q - ħk)² = Q² + ħk(ħk - 2Q), and the Q² term (P_R ~ √(NMk_BT),
    far larger than ħk) has the same weight before and after, so only Σ_k (w/Σw - w0/Σw0) ħk(ħk - 2Q)
    is summed. The difference of the two expectation values themselves loses the digits of Q²
    against ħkQ: in float32 that was a median 1.1% (up to 26%) error per sample."""
    hk = HBAR * k
    dw = w / jnp.sum(w) - w0 / jnp.sum(w0)
    return jnp.sum(dw * (hk * (hk - 2 * Q))) * inv_2NM


def mean_sem(x) -> tuple[float, float]:
    """Mean and standard error of the mean over samples (NaN entries dropped)."""
    x = np.asarray(x, float)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan")
    sem = x.std(ddof=1) / np.sqrt(x.size) if x.size > 1 else float("nan")
    return float(x.mean()), float(sem)


def weighted_mean_sem(x, w) -> tuple[float, float]:
    """Ratio estimator sum w x / sum w and its standard error (delta method), NaN x dropped.

    Biased at O(1/n) (bias ≈ -Cov(w, w x)/(n E[w]²) for E[x|w] varying with w), like every ratio
    estimator; the delta-method variance is first order in 1/n. Invariant under w -> c w."""
    x, w = np.asarray(x, float), np.asarray(w, float)
    ok = np.isfinite(x)
    x, w = x[ok], w[ok]
    n = x.size
    if n == 0 or w.sum() <= 0:
        return float("nan"), float("nan")
    m = float(np.sum(w * x) / np.sum(w))
    if n < 2:
        return m, float("nan")
    var = n / (n - 1) * np.sum(w**2 * (x - m) ** 2) / np.sum(w) ** 2
    return m, float(np.sqrt(var))


def coherent_split(S, A, counts, back_mask) -> dict:
    """Coherent versus total backscattering over samples, from group sums.

    S: (G, N) sums of ψ~_s(k) over the samples of each group; A: (G, N) sums of |ψ~_s(k)|²;
    counts: (G,) samples per group; back_mask: (N,) bool, k < 0.

    P_tot = <sum_{k<0} |ψ~|²>_s (incoherent + coherent: what a single sample backscatters, averaged)
    P_coh = sum_{k<0} |<ψ~>_s|²  (the part that survives the thermal average of the amplitude: the
            elastic, Bragg-like intensity of a frozen-phonon calculation).
    |mean|² is biased upwards by var/n; P_coh is the unbiased (|S|² - A)/(n(n-1)), with 'P_coh_plugin'
    the plain |S/n|² (biased, kept for comparison); P_inc = P_tot - P_coh, the incoherent
    (thermal-diffuse) part; 'coherent_fraction' P_coh/P_tot, a ratio, biased at O(1/n).

    Standard errors ('<name>_sem') are leave-one-group-out jackknife estimates, each of the quantity
    itself, so the correlation of P_tot and P_coh is in P_inc's and the fraction's errors (combining
    the two errors in quadrature overstates them several-fold where P_coh is large). P_coh's error is
    conservative where P_coh is small against its noise: there it is nearly a degenerate
    U-statistic, whose jackknife variance is about twice the true one (se ~√2 too large; accurate
    where the coherent amplitude dominates).
    """
    S, A, counts = np.asarray(S), np.asarray(A), np.asarray(counts, float)
    n = counts.sum()
    names = ("P_tot", "P_coh", "P_coh_plugin", "P_inc", "coherent_fraction")

    def estimates(S_tot, A_tot, n_tot):
        Sb, Ab = S_tot[..., back_mask], A_tot[..., back_mask]
        p_tot = Ab.sum(-1) / n_tot
        p_plug = (np.abs(Sb) ** 2).sum(-1) / n_tot**2
        p_coh = ((np.abs(Sb) ** 2).sum(-1) - Ab.sum(-1)) / (n_tot * (n_tot - 1))
        with np.errstate(divide="ignore", invalid="ignore"):
            frac = np.where(p_tot > 0, p_coh / p_tot, np.nan)
        return np.stack([p_tot, p_coh, p_plug, p_tot - p_coh, frac], -1)

    full = estimates(S.sum(0), A.sum(0), n)
    G = S.shape[0]
    if G >= 2 and n > 2:
        loo = estimates(S.sum(0) - S, A.sum(0) - A, n - counts)  # (G, 5)
        se = np.sqrt((G - 1) / G * ((loo - loo.mean(0)) ** 2).sum(0))
    else:
        se = np.full(len(names), np.nan)
    out = {name: float(v) for name, v in zip(names, full)}
    out.update({f"{name}_sem": float(v) for name, v in zip(names, se)})
    return out


# --------------------------------------------------------------------------------------------
# Quantum lattice: backscattering resolved by the occupation change Δn
# --------------------------------------------------------------------------------------------
def channel_table(n0, back, top: int = 20, floor: float = 1e-12):
    """Backscattered probability per Δn pattern, averaged over samples: [(Δn tuple, P), ...], largest first."""
    n0, back = np.asarray(n0), np.asarray(back)
    ns, m = n0.shape
    grid = np.indices(back.shape[1:]).reshape(m, -1).T
    dn = (grid[None] - n0[:, None]).reshape(-1, m)
    pats, inv = np.unique(dn, axis=0, return_inverse=True)
    w = np.bincount(inv.ravel(), weights=back.reshape(-1), minlength=len(pats)) / ns
    acc = {tuple(int(v) for v in pat): float(x) for pat, x in zip(pats, w)}
    rows = sorted(((k, v) for k, v in acc.items() if v > floor), key=lambda kv: -kv[1])
    return rows[:top]


def resolved(n0, back, hw):
    """Per sample: Δn = 0 backscattering, backscattering by order Σ|Δn_j| (0, 1, 2, 3, 4+), and the
    energy given to the phonons Σ_j ħω_j Δn_j averaged over the backscattered part (NaN if P_b < 1e-12)."""
    n0, back = np.asarray(n0), np.asarray(back)
    ns, m = n0.shape
    grid = np.indices(back.shape[1:]).reshape(m, -1).T
    B = back.reshape(ns, -1)
    dn = grid[None] - n0[:, None]  # (ns, d^m, m)
    order = np.abs(dn).sum(-1)
    P_el = np.sum(np.where(order == 0, B, 0.0), 1)
    by_order = np.stack([np.sum(np.where(order == o, B, 0.0), 1) for o in range(4)]
                        + [np.sum(np.where(order >= 4, B, 0.0), 1)], 1)
    E = np.sum(B * (dn @ np.asarray(hw)), 1)
    P_b = B.sum(1)
    E_ph = np.where(P_b > P_B_FLOOR, E / np.maximum(P_b, P_B_FLOOR), np.nan)
    return P_el, by_order, E_ph


def quantum_summary(per_sample: dict, traces: dict, hw):
    """The Δn-resolved per-sample tallies, statistics and fractions of a quantum-lattice run, from the
    engine's per-sample n0, pop, back (n, (d,)*m) and traces (norm, top, P_ph, P_R). Returns
    (per-sample additions, stats, fractions, channel table)."""
    n = per_sample["n0"].shape[0]
    P_el, by_order, E_ph = resolved(per_sample["n0"], per_sample["back"], hw)
    P_b = per_sample["back"].reshape(n, -1).sum(1)
    add = dict(P_b=P_b, P_b_el=P_el, E_ph_b=E_ph, P_ph_f=traces["P_ph"][:, -1], P_R_f=traces["P_R"][:, -1],
               top_max=traces["top"].max(axis=(1, 2)), norm=traces["norm"][:, -1],
               norm_basis=per_sample["pop"].reshape(n, -1).sum(1))
    stats = {k: mean_sem(add[k]) for k in ("P_b", "P_b_el", "P_ph_f", "P_R_f", "norm", "norm_basis", "top_max")}
    stats["E_ph_b"] = weighted_mean_sem(E_ph, P_b)
    fractions = {"f_el": weighted_mean_sem(P_el / np.maximum(P_b, 1e-300), P_b)}
    for o in range(by_order.shape[1]):
        name = f"f_order{o}" if o < by_order.shape[1] - 1 else f"f_order{o}+"
        fractions[name] = weighted_mean_sem(by_order[:, o] / np.maximum(P_b, 1e-300), P_b)
    return add, stats, fractions, channel_table(per_sample["n0"], per_sample["back"])


# --------------------------------------------------------------------------------------------
# Quantum lattice: where the backscattered weight's energy and crystal momentum go
# --------------------------------------------------------------------------------------------
#: The energy classes of the backscattered weight by the phonons' energy change E_ph = Σ ħω_m Δn_m.
BUDGET_CLASSES = ("elastic", "inelastic", "superelastic", "neutral")
#: How each class splits by crystal momentum: the phonons account for the electron's change
#: ('phonon'), the CM takes the rest ('cm', the paper's quasielastic), or the basis cannot tell
#: ('unresolved': a standing mode changed occupation).
BUDGET_SPLITS = ("phonon", "cm", "unresolved")
#: A packet's crystal momenta count as its own within this many standard deviations of its centre.
K_WINDOW = 6.0
#: ... and within this fraction of G = 2π/a more, so that a packet of one crystal momentum (window 0)
#: is not split by the rounding of k - k0 + K_ph/ħ.
K_ROUNDING = 1e-9


def fold(q, a):
    """q folded into [-π/a, π/a) (1/Å)."""
    G = 2 * np.pi / a
    return (np.asarray(q) + np.pi / a) % G - np.pi / a


def packet_window(w0, k, a, sigmas: float = K_WINDOW):
    """(k0, dk) of a crystal-momentum distribution w0 (N,) on the momenta k (1/Å): its centre (the
    circular mean, in (-π/a, π/a]) and ``sigmas`` times its standard deviation about it."""
    w0, k = np.asarray(w0, float), np.asarray(k, float)
    k0 = float(np.angle(np.sum(w0 * np.exp(1j * k * a))) / a)
    sd = float(np.sqrt(np.sum(w0 * fold(k - k0, a) ** 2) / np.sum(w0)))
    return k0, sigmas * sd


def budget_classes(n0, back_k, hw, hq, definite, k, a, k0, dk):
    """Per sample, the backscattered weight of a quantum-lattice run by where its energy and its
    crystal momentum go (docs/model.md, "Quantum modes"; the chain's crystal momentum works the same).

    n0 (ns, m): initial occupations of the quantum modes (analysis basis); back_k (ns, *dims, N): the
    final backscattered weight per Fock state and crystal momentum k (FFT order, 1/Å); hw (m,): ħω
    (eV); hq (m,): the crystal momentum ħq of one quantum (eV·fs/Å), meaningful where ``definite``
    (running waves, the ring's zone-boundary mode; wow.fock.axis_momenta); a: lattice spacing (Å);
    k0, dk: the packet's crystal-momentum centre and window (``packet_window``): scalars, or (ns,)
    one per sample (e.g. given initial amplitudes that differ).

    For each final Fock state f and electron crystal momentum k_f: E_ph = Σ ħω_m Δn_m,
    K_ph = Σ ħq_m Δn_m, q_el = k_f - k0 + K_ph/ħ folded into the zone. Classes: elastic (all Δn = 0),
    inelastic (E_ph > 0), superelastic (E_ph < 0), neutral (some Δn ≠ 0, E_ph = 0 within 1e-6 of the
    smallest ħω: e.g. one quantum moved within a ±q pair); each split into 'phonon' (|q_el| <= dk:
    the phonons' crystal momentum accounts for the electron's change, which crystal-momentum
    conservation on a perfect ring demands), 'cm' (|q_el| > dk: the CM took crystal momentum, the
    paper's quasielastic) or 'unresolved' (a mode without definite crystal momentum changed, or the
    packet's window covers the zone, dk >= π/a: a packet that narrow in space has no crystal momentum
    to compare with, and every q_el would pass as 'phonon').
    Returns {'P_b_<class>': (ns,), 'P_b_<class>_<split>': (ns,), 'K_ph_b': the resolved
    backscattered weight's mean K_ph (eV·fs/Å; NaN below 1e-12)}."""
    n0, back_k = np.asarray(n0), np.asarray(back_k, float)
    hw, hq, definite = np.asarray(hw, float), np.asarray(hq, float), np.asarray(definite, bool)
    ns, m = n0.shape
    N = back_k.shape[-1]
    Bk = back_k.reshape(ns, -1, N)  # (ns, C, N)
    dn = np.indices(back_k.shape[1:-1]).reshape(m, -1).T[None] - n0[:, None]  # (ns, C, m)
    E = dn @ hw
    K = dn @ np.where(definite, hq, 0.0)
    tol = 1e-6 * float(np.min(hw))
    elastic = np.all(dn == 0, axis=-1)
    cls = {"elastic": elastic, "inelastic": ~elastic & (E > tol), "superelastic": ~elastic & (E < -tol),
           "neutral": ~elastic & (np.abs(E) <= tol)}
    resolved = np.all((dn == 0) | definite, axis=-1)  # (ns, C)
    k0 = np.asarray(k0, float).reshape(-1, 1, 1) if np.ndim(k0) else float(k0)
    dk = np.asarray(dk, float).reshape(-1, 1, 1) if np.ndim(dk) else float(dk)
    q_el = fold(np.asarray(k, float)[None, None, :] - k0 + K[..., None] / HBAR, a)  # (ns, C, N)
    phonon = np.abs(q_el) <= dk + K_ROUNDING * 2 * np.pi / a
    told = resolved[..., None] & ~(np.asarray(dk) >= np.pi / a)  # (ns, C, N)
    split = {"phonon": told & phonon, "cm": told & ~phonon, "unresolved": np.broadcast_to(~told, Bk.shape)}
    out = {}
    for c, mask in cls.items():
        Wc = np.where(mask[..., None], Bk, 0.0)
        out[f"P_b_{c}"] = Wc.sum(axis=(1, 2))
        for name, sm in split.items():
            out[f"P_b_{c}_{name}"] = np.where(sm, Wc, 0.0).sum(axis=(1, 2))
    Wr = np.where(resolved[..., None], Bk, 0.0).sum(-1)  # (ns, C)
    Pr = Wr.sum(1)
    out["K_ph_b"] = np.where(Pr > P_B_FLOOR, (Wr * K).sum(1) / np.maximum(Pr, P_B_FLOOR), np.nan)
    return out


def budget_summary(per_sample: dict) -> dict:
    """Ensemble fractions of P_b in each budget class and split (ratio estimators with delta-method
    errors, name -> (mean, sem)), from ``budget_classes``' per-sample keys and 'P_b'."""
    P_b = np.asarray(per_sample["P_b"], float)
    ok = P_b > P_B_FLOOR
    out = {}
    for c in BUDGET_CLASSES:
        for key in [f"P_b_{c}"] + [f"P_b_{c}_{s}" for s in BUDGET_SPLITS]:
            x = np.where(ok, np.asarray(per_sample[key], float) / np.where(ok, P_b, 1.0), np.nan)
            out["f_" + key[4:]] = weighted_mean_sem(x, np.where(ok, P_b, 0.0))
    return out
