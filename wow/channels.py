"""Energy-resolved channels of the backscattered weight, per sample and over the ensemble.

Each final momentum component k' < 0 carries weight w(k') = |ψ~_f(k')|² and the band-energy change

    ΔE(k') = ε(k') - E_in,     E_in = Σ_k ε(k)|ψ~_0(k)|²,

measured against the incoming packet's mean energy. With q = <k>_0 - k' the momentum handed to the
lattice and ħω(q) = ħ ω_max |sin(qa/2)| the energy one phonon carrying all of it would have
(ω_max = 2 sqrt(K/M); the same for either sign and modulo 2π/a), the component is

    within     |ΔE| <= δ                 no energy change the packet's own spread can resolve
    subphonon  δ < |ΔE| < ħω(q)          energy exchanged, less than one phonon of the transfer
    loss       ΔE <= -max(δ, ħω(q))      the electron lost at least that (as in phonon emission)
    gain       ΔE >= +max(δ, ħω(q))      the electron gained at least that (as in phonon absorption)

so the four weights add up to P_b. The windows are named by the energy change ΔE alone ('within',
'subphonon', 'loss', 'gain'; per-sample keys 'P_dE_<window>'): they are not the paper's phonon classes
(elastic = no occupation change, inelastic/superelastic = phonon energy gained/lost, quasielastic = the
CM takes what the phonons do not), which a quantum lattice tallies by Δn (wow.tally.budget_classes).
Files written before the rename hold 'P_elastic', 'P_quasielastic', 'P_inelastic', 'P_superelastic'
for the same four windows (``FORMER_NAMES``); ``channel_fractions`` reads either. The resolution δ defaults to twice the incoming packet's energy
standard deviation, ≈ ħ|v(k0)|/σ (paper Eq. A9 with L = σ): a perfectly elastic reflection of the
packet then lands ~95% in 'within' (its band-energy spread is the packet's own). A finer δ
resolves smaller exchanges but calls part of the packet's own spread "exchange".

Ensemble fractions are ratio estimators f_c = Σ_s w_c,s / Σ_s P_b,s with delta-method standard
errors (wow.tally.weighted_mean_sem of the per-sample fractions weighted by P_b).
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .electron import band
from .units import HBAR

CHANNELS = ("within", "subphonon", "loss", "gain")
#: The windows' names in files written before they were renamed (keys 'P_<former name>').
FORMER_NAMES = {"within": "elastic", "subphonon": "quasielastic", "loss": "inelastic", "gain": "superelastic"}
#: Samples with less backscattered weight than this carry no fraction (their weight is ~0 anyway).
P_B_FLOOR = 1e-12


def packet_resolution(w0, k, t0, a):
    """Default δ (eV): twice the energy standard deviation of the packet with |ψ~_0|² = w0."""
    eps = band(jnp.broadcast_to(k, w0.shape), t0, a)
    norm = jnp.sum(w0, axis=-1, keepdims=True)
    E = jnp.sum(eps * w0, axis=-1, keepdims=True) / norm
    return 2 * jnp.sqrt(jnp.sum((eps - E) ** 2 * w0, axis=-1) / norm[..., 0])


def classify(w0, k, t0, a, omega_max, delta=None):
    """Channel index (0..3 in CHANNELS order) of every momentum component, for the incoming
    momentum distribution w0 (..., N); with ΔE (eV) and ħω(q) (eV) of each component."""
    k = jnp.broadcast_to(k, w0.shape)  # explicit: batches of samples need no rank promotion
    eps = band(k, t0, a)
    norm = jnp.sum(w0, axis=-1, keepdims=True)
    E_in = jnp.sum(eps * w0, axis=-1, keepdims=True) / norm
    k_in = jnp.sum(k * w0, axis=-1, keepdims=True) / norm
    d = packet_resolution(w0, k, t0, a) if delta is None else jnp.asarray(delta, E_in.dtype)
    d = jnp.broadcast_to(d, E_in.shape[:-1])[..., None]
    dE = eps - E_in
    hw = HBAR * omega_max * jnp.abs(jnp.sin((k_in - k) * a / 2))
    edge = jnp.maximum(d, hw)
    idx = jnp.where(jnp.abs(dE) <= d, 0,
                    jnp.where(jnp.abs(dE) < hw, 1, jnp.where(dE < 0, 2, 3)))
    return idx, dE, hw, d[..., 0], edge


def channel_weights(w0, wf, k, t0, a, omega_max, delta=None) -> dict:
    """Backscattered weight (k' < 0) of |ψ~_f|² = wf in each channel, for the incoming |ψ~_0|² = w0
    (arrays (..., N) in FFT order; k the DFT momenta, 1/Å). Returns 'P_dE_within', 'P_dE_subphonon',
    'P_dE_loss', 'P_dE_gain' (..., ) and the resolution used, 'delta_E' (eV)."""
    idx, _, _, d, _ = classify(w0, k, t0, a, omega_max, delta)
    back = jnp.broadcast_to(k, w0.shape) < 0
    out = {f"P_dE_{name}": jnp.sum(jnp.where(back & (idx == c), wf, 0.0), axis=-1)
           for c, name in enumerate(CHANNELS)}
    out["delta_E"] = d
    return out


def channel_fractions(per_sample: dict) -> dict:
    """Ensemble fractions of the backscattered weight in each channel, name -> (mean, standard
    error), keyed by window, from per-sample 'P_dE_<window>' arrays (n,), or the former
    'P_<former name>' of older files. The denominator is their sum (= P_b)."""
    from .tally import weighted_mean_sem

    key = lambda c: f"P_dE_{c}" if f"P_dE_{c}" in per_sample else f"P_{FORMER_NAMES[c]}"
    W = {c: np.asarray(per_sample[key(c)], float) for c in CHANNELS}
    P_b = sum(W.values())
    ok = P_b > P_B_FLOOR
    out = {}
    for c in CHANNELS:
        x = np.where(ok, W[c] / np.where(ok, P_b, 1.0), np.nan)
        out[c] = weighted_mean_sem(x, np.where(ok, P_b, 0.0))
    return out


def from_momenta(w0, wf, k, t0, a, omega_max, delta=None) -> dict:
    """Per-sample weights and ensemble fractions from saved momentum distributions (e.g. a run with
    save_density: w0 = traces['momentum'][:, 0], wf = traces['momentum'][:, -1]), at any δ.
    Returns {'per_sample': ..., 'fractions': ..., 'delta_E': δ used}."""
    per = channel_weights(jnp.asarray(w0), jnp.asarray(wf), jnp.asarray(k), t0, a, omega_max, delta)
    per = {n: np.asarray(v) for n, v in per.items()}
    return {"per_sample": per, "fractions": channel_fractions(per), "delta_E": per["delta_E"]}
