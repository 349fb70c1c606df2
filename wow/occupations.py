"""Classical mode occupations of a lattice state and the momentum budget (docs/model.md, "Momentum
bookkeeping" and "occupation bases"; paper Eq. 25).

A classical lattice state (u, v) has, in each internal normal mode j, the energy
E_j = P_j²/(2M) + M ω_j² Q_j²/2 and the action E_j/ω_j; its *classical occupation* is

    n_j = E_j/(ħ ω_j) - 1/2,

the number a quantum oscillator of the same energy would have (so a Wigner-sampled zero-point state
averages n = 0). n_j is continuous and may be below zero: a classical lattice has no quanta.

Bases
-----
* standing waves (both boundaries): the real modes of wow.lattice (Q = sites_to_modes(u),
  P = sites_to_modes(M v)).
* running waves (ring only): for q_j = 2πj/(Na) in (-π/a, π/a], j = 1..N-1, with
  U_q = N^{-1/2} Σ_n u_n e^{-iqna} and V_q likewise from v, the amplitude of the wave
  u_n ∝ Re e^{i(qna - ω_q t)} (travelling towards +x for q > 0) is α_q = (U_q + i V_q/ω_q)/2 and

      n_q = 2 M ω_q |α_q|²/ħ - 1/2,      Σ_q ħω_q (n_q + 1/2) = H_lat (internal).

  Its crystal momentum is ħq n_q, with the same sign convention as the electron's ħk (the SSH
  coupling conserves k + q: emitting phonon q takes the electron from k to k - q). The zone-
  boundary mode q = π/a (even N) is a standing wave (q ≡ -q) and is given crystal momentum 0.
  P_ph = Σ_q ħ q n_q (eV·fs/Å); the -1/2 cancels between ±q. Crystal momentum is defined modulo
  ħ·2π/a, like the electron's.

Budget (per sample; momenta in eV·fs/Å, docs/model.md sign conventions, "Momentum bookkeeping")
------------------------------------------------------------------
  dP_e  = ħ(<k>_f - <k>_0)            the electron's momentum change (<0 when it is reflected);
  dP_ph = P_ph(t_f) - P_ph(0)         the phonons' crystal-momentum change (ring; NaN on the open
                                      chain, which has no running-wave basis);
  dP_cm = -(dP_e + dP_ph)             what the CM takes: <P_R>(t_f) - P_R(0) (paper Eqs. 20, 25).
For frozen and wow lattices P_ph is a constant of the motion (the harmonic flow conserves every
running-wave action), so dP_ph = 0 and the CM takes -dP_e, as in paper Eq. A5.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .electron import k_grid
from .lattice import Chain, SiteState, mode_frequencies, sites_to_modes
from .units import HBAR


def lattice_energy(chain: Chain, lat: SiteState):
    """Internal H_lat = Σ M v²/2 + (K/2) Σ_bonds b² (eV); the CM kinetic energy is not in (u, v)."""
    M = chain.mass_ev
    b = jnp.roll(lat.u, -1) - lat.u if chain.boundary == "ring" else lat.u[1:] - lat.u[:-1]
    return 0.5 * M * jnp.sum(lat.v**2) + 0.5 * chain.spring * jnp.sum(b**2)


def standing_occupations(chain: Chain, lat: SiteState):
    """(E_j, n_j) of the real normal modes j = 1..N-1 (eV, dimensionless), arrays (N-1,)."""
    M = chain.mass_ev
    w = jnp.asarray(mode_frequencies(chain), lat.u.dtype)
    Q = sites_to_modes(chain, lat.u)
    P = sites_to_modes(chain, M * lat.v)
    E = P**2 / (2 * M) + 0.5 * M * w**2 * Q**2
    return E, E / (HBAR * w) - 0.5


def running_waves(chain: Chain):
    """q_j (1/Å, in (-π/a, π/a]), ω_j (1/fs) and the crystal momentum ħq_j carried by one quantum
    (eV·fs/Å; 0 for the zone-boundary standing wave), j = 1..N-1, numpy arrays."""
    if chain.boundary != "ring":
        raise ValueError(f"chain.boundary={chain.boundary!r}: running waves need boundary='ring'")
    N = chain.N
    q = k_grid(N, chain.a)[1:]
    w = chain.omega_max * np.abs(np.sin(np.pi * np.arange(1, N) / N))
    hq = HBAR * np.where(np.isclose(np.abs(q), np.pi / chain.a), 0.0, q)
    return q, w, hq


def running_occupations(chain: Chain, lat: SiteState):
    """n_q of the running waves q_j, j = 1..N-1 (order of ``running_waves``), ring only."""
    M = chain.mass_ev
    _, w, _ = running_waves(chain)
    w = jnp.asarray(w, lat.u.dtype)
    U = jnp.fft.fft(lat.u, norm="ortho")[1:]
    V = jnp.fft.fft(lat.v, norm="ortho")[1:]
    alpha = (U + 1j * V / w) / 2
    return 2 * M * w * jnp.abs(alpha) ** 2 / HBAR - 0.5


def phonon_momentum(chain: Chain, lat: SiteState):
    """P_ph = Σ_q ħq n_q (eV·fs/Å), ring only."""
    _, _, hq = running_waves(chain)
    return jnp.sum(jnp.asarray(hq, lat.u.dtype) * running_occupations(chain, lat))


def occupations(chain: Chain, lat: SiteState) -> dict:
    """Occupations of one lattice state: 'E_lat' (eV), standing-wave 'E' and 'n' (N-1,), and on
    the ring 'n_q' (N-1,) and 'P_ph' (eV·fs/Å)."""
    E, n = standing_occupations(chain, lat)
    out = {"E_lat": lattice_energy(chain, lat), "E": E, "n": n}
    if chain.boundary == "ring":
        out["n_q"] = running_occupations(chain, lat)
        out["P_ph"] = phonon_momentum(chain, lat)
    return out


def mean_k(psi, k):
    """<k> = Σ k |ψ~(k)|² / Σ |ψ~(k)|² (1/Å), k the DFT momenta in FFT order."""
    w = jnp.abs(jnp.fft.fft(psi, norm="ortho")) ** 2
    return jnp.sum(k * w) / jnp.sum(w)


def lattice_budget(chain: Chain, lat0: SiteState, lat_f: SiteState) -> dict:
    """The lattice side of one sample's budget: dP_ph (eV·fs/Å; NaN on the open chain), the energy
    change dE_lat (eV) and the net classical quanta created dn (Σ_j Δn_j)."""
    if chain.boundary == "ring":
        dP_ph = phonon_momentum(chain, lat_f) - phonon_momentum(chain, lat0)
    else:
        dP_ph = jnp.full((), jnp.nan, lat0.u.dtype)
    _, n0 = standing_occupations(chain, lat0)
    _, nf = standing_occupations(chain, lat_f)
    return {"dP_ph": dP_ph, "dE_lat": lattice_energy(chain, lat_f) - lattice_energy(chain, lat0),
            "dn": jnp.sum(nf - n0)}


def momentum_budget(dP_e, dP_ph) -> dict:
    """The momentum budget of one sample from the electron's and the phonons' changes (eV·fs/Å):
    what the CM takes is the rest (docs/model.md)."""
    return {"dP_e": dP_e, "dP_ph": dP_ph, "dP_cm": -(dP_e + dP_ph)}


def budget(chain: Chain, psi0, psi_f, lat0: SiteState, lat_f: SiteState) -> dict:
    """Per-sample momentum and energy budget (module doc): dP_e, dP_ph, dP_cm (eV·fs/Å), and the
    lattice side's energy change dE_lat (eV) and net classical quanta created dn (Σ_j Δn_j)."""
    k = jnp.asarray(k_grid(chain.N, chain.a), lat0.u.dtype)
    dP_e = HBAR * (mean_k(psi_f, k) - mean_k(psi0, k))
    lat = lattice_budget(chain, lat0, lat_f)
    return {**lat, **momentum_budget(dP_e, lat["dP_ph"])}
