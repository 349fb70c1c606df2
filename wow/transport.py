"""Transport: the chain's velocity operator and per-frame transport observables, and the
estimators of D, τ_p, τ_E, μ and α = D m*/ħ from decimated per-sample time series.

Units as everywhere in wow: eV, Å, fs, K; D in Å²/fs (1 Å²/fs = 0.1 cm²/s); μ in cm²/(V·s).

Observables (jnp)
    velocity, apply_velocity, position_velocity, transport_observables   one sample
    chain_frame                  a block of samples: what the chain model's frames record with
                                 Config.transport (wow.models.chain.TightBinding.observe)
The velocity of the chain is v = (i/ħ)[H, x], x = Σ_n (x_n - x0)|n><n|:
    v = -(i a/ħ) Σ_b t_b (|n><n+1| - |n+1><n|),   <v> = (2a/ħ) Σ_b t_b Im(ψ_n* ψ_{n+1}),
bond b joining n and n+1 with hopping t_b (eV). Site energies commute with x, so v is the same
with any on-site coupling (deformation, Holstein, dephasing noise) and for a moving lattice
(v(t) uses the hoppings at t). d<x>/dt = <v> and d<(x - x0)²>/dt = 2 Re<ψ|(x - x0) v|ψ> hold exactly
at every instant: the second is the running diffusion coefficient D_run(t) = ½ d MSD/dt, an
observable of ψ(t) alone (no time derivative of noisy data, no second state).

Estimators (host numpy; inputs (n_samples, n_times) arrays, numpy or jax, and the times)
    msd, spread, ensemble_spread, series_mean_sem, jackknife
    fit_window, inside_until, edge_until, diffusion_msd, running_slope    D from the MSD slope
    relaxation_time, kubo_diffusion      τ_p (integral time of a decaying signal), D = ∫ C_vv dt
    energy_exchange                      dE_e/dt and τ_E
    mobility, band_mass, planckian_alpha, alpha_chain
Three second moments (E: the mean over samples, <.>: the expectation in one sample's ψ):
    msd              E<(x - x0)²>, x0 the packet's centre at t = 0 (the same for every sample)
    spread           E[<x²> - <x>²], each packet's own width
    ensemble_spread  E<x²> - (E<x>)², the width of the sample-averaged density
                     (= spread + the variance of the packets' centroids; = msd - (E<x> - x0)²)
D is reported from the MSD: it is linear in each sample's trace, so its standard error is exact.
The MSD and the ensemble spread have the same long-time slope once the drift from k0 has decayed
(E<x> constant); the per-packet spread has it too only where the centroids stop wandering (it
misses the diffusion of semiclassical packets in a slow landscape): a diagnostic. The closed
forms of wow.theory.hsr_moments are of the sample-averaged density (msd and ensemble_spread).

The exact checks of this machinery (Haken-Strobl-Reineker dephasing through the "noise" lattice,
frozen disorder against the transfer matrix) run through wow.run: tests/test_transport.py.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .tally import mean_sem
from .units import HBAR, KB

#: Sample groups of the leave-one-group-out jackknife (the same count as the coherent split).
N_GROUPS = 32
#: Sokal's window constant: a correlation is integrated up to the first t >= C_WINDOW x τ_int(t);
#: for an exponential the neglected tail is e^{-C_WINDOW} = 0.25 % of the integral.
C_WINDOW = 6.0
#: The MSD fit starts at FIT_START x τ_p: the exponential transient of the slope is then
#: e^{-FIT_START} = 0.7 % at the window's start (less on average over the window).
FIT_START = 5.0
#: A fit window whose two halves' slopes differ by more than this many standard errors is not flat.
FLAT_Z = 3.0
#: 1 Å²/fs in cm²/s.
CM2_PER_S = 0.1


# --------------------------------------------------------------------------------------------
# Observables of one sample (jnp)
# --------------------------------------------------------------------------------------------
def displacements(N: int, a, x0, boundary: str, dtype=jnp.float64):
    """x_n - x0 (Å) for n = 0..N-1, x_n = n a. On the ring the minimum image, in [-L/2, L/2),
    L = N a: the packet must stay away from the antipode of x0 (where x jumps by L)."""
    d = jnp.arange(N, dtype=dtype) * a - x0
    if boundary == "ring":
        L = N * a
        d = d - L * jnp.floor(d / L + 0.5)
    return d


def _neighbours(psi, boundary: str):
    """ψ_{n+1} and ψ_{n-1} along the last axis (zero beyond the open ends)."""
    if boundary == "ring":
        return jnp.roll(psi, -1, axis=-1), jnp.roll(psi, 1, axis=-1)
    zero = jnp.zeros(psi.shape[:-1] + (1,), psi.dtype)
    return (jnp.concatenate([psi[..., 1:], zero], axis=-1),
            jnp.concatenate([zero, psi[..., :-1]], axis=-1))


def _bond_pad(t_bonds, boundary: str):
    """Hoppings per site as (t_n: bond to the right, t_{n-1}: bond to the left), zero where the
    open chain has no bond."""
    if boundary == "ring":
        return t_bonds, jnp.roll(t_bonds, 1, axis=-1)
    zero = jnp.zeros(t_bonds.shape[:-1] + (1,), t_bonds.dtype)
    return jnp.concatenate([t_bonds, zero], axis=-1), jnp.concatenate([zero, t_bonds], axis=-1)


def velocity(psi, t_bonds, a, boundary: str):
    """<ψ|v|ψ> = (2a/ħ) Σ_b t_b Im(ψ_n* ψ_{n+1}) (Å/fs), unnormalised ψ: divide by the norm.
    t_bonds: (N-1,) open or (N,) ring, bond n joining n and n+1 (mod N)."""
    right = jnp.roll(psi, -1, axis=-1) if boundary == "ring" else psi[..., 1:]
    left = psi if boundary == "ring" else psi[..., :-1]
    return 2.0 * a / HBAR * jnp.sum(t_bonds * jnp.imag(jnp.conj(left) * right), axis=-1)


def apply_velocity(psi, t_bonds, a, boundary: str):
    """v ψ: (vψ)_n = -(i a/ħ)(t_n ψ_{n+1} - t_{n-1} ψ_{n-1}) (Å/fs x amplitude)."""
    up, down = _neighbours(psi, boundary)
    t_right, t_left = _bond_pad(t_bonds, boundary)
    return (-1j * a / HBAR) * (t_right * up - t_left * down)


def position_velocity(psi, t_bonds, a, x0, boundary: str):
    """Re<ψ|(x - x0) v|ψ> (Å²/fs) = ½ d<(x - x0)²>/dt exactly: the running diffusion coefficient
    D_run(t) of this sample (unnormalised ψ: divide by the norm). On the ring, x is the minimum
    image and the identity holds while the antipode of x0 carries no amplitude."""
    d = displacements(psi.shape[-1], a, x0, boundary, jnp.real(psi).dtype)
    return jnp.real(jnp.vdot(d * psi, apply_velocity(psi, t_bonds, a, boundary)))


def transport_observables(psi, t_bonds, eps, a, x0, boundary: str, phi=None):
    """The per-frame transport observables of one sample (scalars, normalised by <ψ|ψ>):

      norm     <ψ|ψ>
      x        <x - x0> (Å)
      x2       <(x - x0)²> (Å²): the MSD about the initial centre (accumulate relative to x0:
               raw <x²> of a long chain loses float32 precision)
      D_run    Re<(x - x0) v> = ½ d x2/dt (Å²/fs)
      v        <v> (Å/fs)
      k        <k> (1/Å) over the DFT momenta in (-π/a, π/a]
      energy   <H_e> with hoppings t_bonds and site energies eps (eV)
      corr     only with phi: Re<ψ|v|φ> (Å²/fs²). With φ(0) = v ψ(0) propagated by the same
               evolution as ψ, this is Re<ψ0|v(t) v(0)|ψ0>, the two-time velocity correlation
               (Heisenberg v(t)): the Kubo integrand. It costs a second propagated state.

    psi, phi: (N,) complex; t_bonds: (N-1,) or (N,) (eV); eps: (N,) site energies (eV) or None.
    Memory and work O(N) per frame (O(N log N) for k); nothing grows with the number of steps."""
    rho = jnp.abs(psi) ** 2
    norm = jnp.sum(rho)
    N = psi.shape[-1]
    d = displacements(N, a, x0, boundary, rho.dtype)
    vpsi = apply_velocity(psi, t_bonds, a, boundary)
    right = jnp.roll(psi, -1) if boundary == "ring" else psi[1:]
    left = psi if boundary == "ring" else psi[:-1]
    energy = -2.0 * jnp.sum(t_bonds * jnp.real(jnp.conj(left) * right))
    if eps is not None:
        energy = energy + jnp.sum(eps * rho)
    k = 2 * jnp.pi * jnp.fft.fftfreq(N).astype(rho.dtype) / a
    k = jnp.where(k <= -jnp.pi / a + 1e-12 / a, k + 2 * jnp.pi / a, k)
    wk = jnp.abs(jnp.fft.fft(psi, norm="ortho")) ** 2
    out = {
        "norm": norm,
        "x": jnp.sum(d * rho) / norm,
        "x2": jnp.sum(d * d * rho) / norm,
        "D_run": jnp.real(jnp.vdot(d * psi, vpsi)) / norm,
        "v": jnp.real(jnp.vdot(psi, vpsi)) / norm,
        "k": jnp.sum(k * wk) / norm,
        "energy": energy / norm,
    }
    if phi is not None:
        out["corr"] = jnp.real(jnp.vdot(psi, apply_velocity(phi, t_bonds, a, boundary)))
    return out


def chain_frame(psi, rho, wk, t_bonds, eps, p, ring: bool, phi=None):
    """The transport observables of a block of samples at one frame, each (B,) (normalised by the
    norm; the block's ψ (..., B, N) complex, leading axes (a quantum lattice's DVR points) summed
    over, its |ψ_n|² ``rho`` and |ψ~(k)|² ``wk`` (B, N) summed over them as the chain's observe has
    them; hoppings (..., B, nb) and site energies (..., B, N) or None at the frame's lattice (with
    the same leading axes: at each DVR point the coupling is diagonal, so the sums are the
    expectations of the truncated electron x phonon operators); ``p`` the chain's parameters: a,
    x0, t0, k):

      dx        <x - x0> (Å), x0 = p.x0 (the minimum image on the ring)
      msd       <(x - x0)²> (Å²), relative to x0 (raw <x²> of a long chain loses float32 precision)
      D_run     Re<(x - x0) v> = ½ d msd/dt (Å²/fs)
      v_mean    <v> (Å/fs)
      E_e       <H_e> with the frame's hoppings and site energies (eV, interaction included)
      E_band    Σ_k ε(k)|ψ~(k)|², ε(k) = -2 t0 cos(ka) (eV): the band (kinetic) energy
      edge      the largest density on the sites farthest from x0 (open: the two ends; ring: the
                two sites at the antipode): the boundary rule's input (edge_until)
      corr      with phi (φ = U(t) v ψ(0)): Re<ψ|v|φ> = Re<ψ0|v(t) v(0)|ψ0> (Å²/fs²)

    With bond products c_b = ψ_n* ψ_{n+1}: <v> = (2a/ħ) Σ t_b Im c_b, D_run = (a/ħ) Σ t_b Im c_b
    (d_n + d_{n+1}) with d = x - x0, <H_e> = -2 Σ t_b Re c_b + Σ ε_n |ψ_n|². O(N) per sample."""
    N = psi.shape[-1]
    real = rho.dtype
    lead = tuple(range(psi.ndim - 2))
    norm = jnp.sum(rho, axis=-1)
    d = displacements(N, p.a, p.x0, "ring" if ring else "open", real)
    right = jnp.roll(psi, -1, axis=-1) if ring else psi[..., 1:]
    left = psi if ring else psi[..., :-1]
    c = jnp.conj(left) * right
    tim = jnp.sum(t_bonds * jnp.imag(c), axis=lead)
    d_bond = d + jnp.roll(d, -1) if ring else d[:-1] + d[1:]
    E = -2.0 * jnp.sum(t_bonds * jnp.real(c), axis=-1)
    if eps is not None:
        E = E + jnp.sum(eps * jnp.abs(psi) ** 2, axis=-1)
    E = jnp.sum(E, axis=lead)
    if ring:
        far = jnp.floor(p.x0 / p.a + N / 2).astype(jnp.int32) % N
        edge = jnp.maximum(jnp.take(rho, far, axis=-1), jnp.take(rho, (far + 1) % N, axis=-1))
    else:
        edge = jnp.maximum(rho[..., 0], rho[..., -1])
    out = {"dx": rho @ d / norm, "msd": rho @ (d * d) / norm,
           "D_run": (p.a / HBAR) * (tim @ d_bond) / norm, "v_mean": (2.0 * p.a / HBAR) * jnp.sum(tim, axis=-1) / norm,
           "E_e": E / norm, "E_band": wk @ (-2.0 * p.t0 * jnp.cos(p.k * p.a)) / norm, "edge": edge / norm}
    if phi is not None:
        r_phi = jnp.roll(phi, -1, axis=-1) if ring else phi[..., 1:]
        l_phi = phi if ring else phi[..., :-1]
        out["corr"] = (p.a / HBAR) * jnp.sum(t_bonds * (jnp.imag(jnp.conj(left) * r_phi)
                                                        - jnp.imag(jnp.conj(right) * l_phi)), axis=-1)
    return out


def antipode_cell(n_points: int, h: float, x0: float, g: int) -> np.ndarray:
    """Indices (g,) of the g grid points (one lattice cell, g = a/h) nearest the antipode x0 + L/2
    of a ring of n_points points of spacing h: the continuum's 'edge' (host numpy, static)."""
    centre = int(round(((x0 + n_points * h / 2) % (n_points * h)) / h))
    return (centre - g // 2 + np.arange(g)) % n_points


def continuum_frame(psi, psik, V, d, kappa, m, far):
    """The per-frame transport moments of the density-density electron, each (B,), normalised by
    the norm; leading axes of ψ (a quantum lattice's DVR points) summed over.

    psi (..., B, N_s) grid amplitudes, psik = fft(ψ, norm='ortho'); V (..., B, N_s) the potential
    at the frame's lattice (eV); d (N_s,) the minimum-image displacement s - x0 on the ring (Å; s
    is the electron's position relative to the lattice CM); kappa (N_s,) grid wavenumbers; m the
    electron mass (eV·fs²/Å²); far: the indices of the cell at the antipode of x0.

      dx      <s - x0> (Å)                    msd     <(s - x0)²> (Å²)
      dp      Re<(s - x0) p> (Å·eV·fs/Å)      E_kin   <p²>/2m (eV): the kinetic energy
      E_e     <p²/2m + V> (eV)                edge    the probability in the cell at the antipode
    dp is turned into the running diffusion coefficient by ``continuum_sector`` (which needs the
    sample's total momentum Q). Costs one more FFT per frame than the model's own tallies."""
    lead = tuple(range(psi.ndim - 2))
    rho = jnp.abs(psi) ** 2
    norm = jnp.sum(rho, axis=tuple(lead) + (-1,))
    rho_s = jnp.sum(rho, axis=lead)
    wk = jnp.sum(jnp.abs(psik) ** 2, axis=lead)
    p_psi = jnp.fft.ifft(HBAR * kappa.reshape((1,) * (psik.ndim - 1) + kappa.shape) * psik, axis=-1, norm="ortho")
    dp = jnp.sum(jnp.real(jnp.conj(psi) * p_psi) @ d, axis=lead)
    E_kin = wk @ ((HBAR * kappa) ** 2 / (2 * m))
    E_pot = jnp.sum(jnp.sum(rho * V, axis=-1), axis=lead)
    return {"dx": rho_s @ d / norm, "msd": rho_s @ (d * d) / norm, "dp": dp / norm, "E_kin": E_kin / norm,
            "E_e": (E_kin + E_pot) / norm, "edge": jnp.sum(jnp.take(rho_s, far, axis=-1), axis=-1) / norm}


def continuum_sector(frames, Q, m, inv_2NM):
    """The density-density frames completed in each sample's sector of total momentum Q (B,):
    the relative coordinate s = r - R moves with ds/dt = p/m - (Q - p)/(NM), so (1/(NM) = 2 inv_2NM)

      v_mean  <ds/dt> = <p>/m - (Q - <p>)/(NM) (Å/fs): <p>/m with recoil off (m* = m: no band mass)
      D_run   Re<(s - x0) ds/dt> = ½ d msd/dt = dp/m + (dp - Q dx)/(NM) (Å²/fs)
      E_cm    <(Q - p)²>/(2NM) (eV): the CM's kinetic energy (0 with recoil off); E_e + E_cm +
              E_lattice is what Ehrenfest conserves
    from the moments of ``continuum_frame`` and <p> = ħ k_mean; 'dp' is dropped. frames: name ->
    (B, n_frames + 1)."""
    out = dict(frames)
    dp = out.pop("dp")
    Q = Q[:, None]
    p = HBAR * out["k_mean"]
    inv_NM = 2 * inv_2NM
    out["v_mean"] = p / m - (Q - p) * inv_NM
    out["D_run"] = dp / m + (dp - Q * out["dx"]) * inv_NM
    out["E_cm"] = (Q * Q - 2 * Q * p + 2 * m * out["E_kin"]) * inv_2NM
    return out


# --------------------------------------------------------------------------------------------
# Estimators (host numpy)
# --------------------------------------------------------------------------------------------
def _series(name, x, n_times=None):
    x = np.asarray(x, float)
    if x.ndim != 2 or x.shape[0] < 2:
        raise ValueError(f"{name} has shape {x.shape}: allowed (n_samples >= 2, n_times)")
    if n_times is not None and x.shape[1] != n_times:
        raise ValueError(f"{name} has {x.shape[1]} times but times has {n_times}: allowed equal")
    if not np.all(np.isfinite(x)):
        raise ValueError(f"{name} has non-finite entries: allowed finite values")
    return x


def _times(times, min_points=3):
    t = np.asarray(times, float)
    if t.ndim != 1 or t.size < min_points or not np.all(np.isfinite(t)) or np.any(np.diff(t) <= 0):
        raise ValueError(f"times (shape {t.shape}) must be a strictly increasing 1-D array of "
                         f">= {min_points} finite times (fs)")
    return t


def msd(x, x2, x0=0.0):
    """Per-sample MSD about x0 from the per-sample moments <x> and <x²> (any origin):
    <(x - x0)²> = <x²> - 2 x0 <x> + x0². With transport_observables' x, x2 (already relative to
    the initial centre) it is x2 itself."""
    x, x2 = np.asarray(x, float), np.asarray(x2, float)
    return x2 - 2 * x0 * x + x0**2


def spread(x, x2):
    """Per-sample spread <x²> - <x>² (any common origin)."""
    x, x2 = np.asarray(x, float), np.asarray(x2, float)
    return x2 - x**2


def ensemble_spread(x, x2, n_groups=N_GROUPS):
    """E<x²> - (E<x>)² at each time (the width of the sample-averaged density) from per-sample
    <x>, <x²> (n_samples, n_times), with its jackknife standard error: two (n_times,) arrays."""
    x = _series("x", x)
    x2 = _series("x2", x2, x.shape[1])
    return jackknife(lambda m1, m2: m2 - m1**2, x, x2, n_groups=n_groups)


def series_mean_sem(samples):
    """Mean over samples and its standard error at each time: two (n_times,) arrays."""
    s = _series("samples", samples)
    return s.mean(0), s.std(0, ddof=1) / math.sqrt(s.shape[0])


def jackknife(estimator, *samples, n_groups=N_GROUPS):
    """Leave-one-group-out jackknife of a function of sample means (as wow.tally's coherent split).

    samples: arrays with the sample axis first; estimator(*means) -> scalar or array, given the
    means over samples. Samples are split into min(n_groups, n) contiguous groups. Returns
    (estimate from all samples, jackknife standard error)."""
    arrs = [np.asarray(s, float) for s in samples]
    n = arrs[0].shape[0]
    if n < 2 or any(s.shape[0] != n for s in arrs):
        raise ValueError(f"samples with leading sizes {[s.shape[0] for s in arrs]}: allowed equal, >= 2")
    G = min(int(n_groups), n)
    groups = (np.arange(n) * G) // n
    sums = [np.stack([s[groups == g].sum(0) for g in range(G)]) for s in arrs]
    counts = np.bincount(groups, minlength=G).astype(float)
    full = np.asarray(estimator(*[s.sum(0) / n for s in sums]), float)
    loo = np.stack([np.asarray(estimator(*[(s.sum(0) - s[g]) / (n - counts[g]) for s in sums]), float)
                    for g in range(G)])
    se = np.sqrt((G - 1) / G * ((loo - loo.mean(0)) ** 2).sum(0))
    return (float(full), float(se)) if full.ndim == 0 else (full, se)


def _ols_weights(t):
    """w with Σ w_i y_i = the least-squares slope of y against t."""
    dt = t - t.mean()
    return dt / np.sum(dt**2)


@dataclasses.dataclass(frozen=True)
class Estimate:
    """A derived quantity with its standard error over samples and how it was obtained.

    value, sem: the estimate and its standard error; t_start, t_stop: the window of times used
    (fs); ok: the stated rule's validity check passed (see the estimator); note: why not, or
    what was assumed."""

    value: float
    sem: float
    t_start: float = float("nan")
    t_stop: float = float("nan")
    ok: bool = True
    note: str = ""

    def __str__(self):
        flag = "" if self.ok else f"  [not ok: {self.note}]"
        return f"{self.value:.6g} ± {self.sem:.2g} (window {self.t_start:g}..{self.t_stop:g} fs){flag}"


def fit_window(times, tau_p=None, t_stop=None, start=FIT_START, min_points=4):
    """The MSD fit window (indices i0, i1, inclusive) by the stated rule:

      start  t >= start x τ_p (the velocity has decorrelated: the slope's transient
             e^{-t/τ_p} is below e^{-start}); without τ_p, the second half of the run;
      stop   t <= t_stop (the last time the packet is inside the chain: see ``inside_until``),
             default the last time.
    Raises if fewer than ``min_points`` times fall inside (the run is too short for this τ_p)."""
    t = _times(times)
    t_stop = t[-1] if t_stop is None else float(t_stop)
    t_start = t[-1] / 2 if tau_p is None else start * float(tau_p)
    if tau_p is not None and not (np.isfinite(tau_p) and tau_p > 0):
        raise ValueError(f"tau_p={tau_p!r} is out of range: allowed finite > 0 (fs)")
    idx = np.flatnonzero((t >= t_start - 1e-12 * abs(t_start)) & (t <= t_stop + 1e-12 * abs(t_stop)))
    if idx.size < min_points:
        raise ValueError(f"the fit window [{t_start:g}, {t_stop:g}] fs holds {idx.size} times: allowed "
                         f">= {min_points}; run longer (the rule starts at {start:g} τ_p) or record more frames")
    return int(idx[0]), int(idx[-1])


def inside_until(times, msd_samples, distance, n_sigma=5.0):
    """The last time (fs) at which n_sigma x sqrt(mean MSD) stays below ``distance`` (Å), the
    distance from the initial centre to the nearest end of an open chain: after it, the packet's
    tail reaches the boundary and the MSD saturates spuriously."""
    t = _times(times)
    m = _series("msd_samples", msd_samples, t.size).mean(0)
    ok = n_sigma * np.sqrt(np.maximum(m, 0)) < float(distance)
    if not ok[0]:
        raise ValueError(f"distance={distance!r} Å: the packet touches the boundary at t = 0")
    bad = np.flatnonzero(~ok)
    return float(t[-1] if bad.size == 0 else t[bad[0] - 1])


#: The boundary rule's limit on the sample-mean density at the sites farthest from the start.
EDGE_LIMIT = 1e-6


def edge_until(times, edge_samples, limit=EDGE_LIMIT):
    """The last time (fs) before the sample-mean density on the sites farthest from the start
    (transport frames' 'edge': the ends of an open chain, the antipode on a ring) first exceeds
    ``limit``: after it the packet's tail feels the boundary (reflection, or on the ring the jump
    of the minimum-image distance). With a density ρ_e there the MSD is off by ~L² ρ_e √MSD/a
    (L the distance): below 1e-3 relative for ρ_e < 1e-6 and L < 5 √MSD at MSD < 1e4 a²."""
    t = _times(times)
    e = _series("edge_samples", edge_samples, t.size).mean(0)
    if not limit > 0:
        raise ValueError(f"limit={limit!r} is out of range: allowed > 0")
    if e[0] > limit:
        raise ValueError(f"the edge density is {e[0]:.3g} at t = 0, above limit={limit:g}: the packet starts at the boundary")
    bad = np.flatnonzero(e > limit)
    return float(t[-1] if bad.size == 0 else t[bad[0] - 1])


def diffusion_msd(times, msd_samples, tau_p=None, t_stop=None, start=FIT_START):
    """D (Å²/fs) from the slope of the sample-mean MSD: half the least-squares slope over the
    window of ``fit_window`` (intercept free: the MSD's offset -2Dτ_p and the initial width do not
    bias it).

    The estimator is linear in each sample's trace (D = mean over samples of each sample's own
    fitted half-slope), so its standard error, the per-samples' standard error, is exact (the delta
    method and the jackknife coincide for a linear estimator; the correlation of the MSD between
    times is included). Flatness check (Estimate.ok): the half-slopes over the window's first and
    second halves agree within FLAT_Z standard errors of their difference; if not, D depends on the
    window (not yet diffusive, sub-diffusive, localised, or hitting the boundary)."""
    t = _times(times)
    m = _series("msd_samples", msd_samples, t.size)
    i0, i1 = fit_window(t, tau_p, t_stop, start)
    tw, mw = t[i0:i1 + 1], m[:, i0:i1 + 1]
    D_s = mw @ _ols_weights(tw) / 2
    D, sem = mean_sem(D_s)
    ok, note = True, "" if tau_p is not None else "no τ_p given: fitted over the second half of the run"
    h = tw.size // 2
    if h >= 2 and tw.size - h >= 2:
        d_s = mw[:, :h] @ _ols_weights(tw[:h]) / 2 - mw[:, h:] @ _ols_weights(tw[h:]) / 2
        dm, dse = mean_sem(d_s)
        if dse > 0 and abs(dm) > FLAT_Z * dse:
            ok, note = False, (f"slope not flat: first half minus second half = {dm:.3g} ± {dse:.2g} Å²/fs"
                               + (f"; {note}" if note else ""))
    return Estimate(D, sem, float(tw[0]), float(tw[-1]), ok, note)


def running_slope(times, msd_samples):
    """½ dMSD/dt by finite differences, at the midpoints: (t_mid, mean, sem), for plots of the
    slope against the fit window. (transport_observables' D_run gives the same without
    differencing.)"""
    t = _times(times)
    m = _series("msd_samples", msd_samples, t.size)
    s = np.diff(m, axis=1) / (2 * np.diff(t))
    mean, sem = series_mean_sem(s)
    return (t[1:] + t[:-1]) / 2, mean, sem


def _trapezoid_cumulative(y, t):
    """∫_0^{t_j} y dt along the last axis (trapezoid; y[..., 0] at t[0])."""
    inc = 0.5 * (y[..., 1:] + y[..., :-1]) * np.diff(t)
    return np.concatenate([np.zeros(y.shape[:-1] + (1,)), np.cumsum(inc, axis=-1)], axis=-1)


def _sokal_cut(t, tau_int, c):
    """The first index j >= 1 with t_j - t_0 >= c x τ_int(t_j), or None."""
    hit = np.flatnonzero((t[1:] - t[0]) >= c * tau_int[1:])
    return None if hit.size == 0 else int(hit[0]) + 1


def relaxation_time(times, signal_samples, baseline=0.0, c=C_WINDOW):
    """Integral relaxation time τ = ∫_0^{t_c} S(t) dt / S(0) of a decaying per-sample signal,
    S = signal - baseline, averaged over samples (trapezoid on the times, which must start where
    the decay starts and be spaced << τ: the quadrature error is ~(Δt/τ)²/12).

    Window (Sokal): t_c is the first time with t_c >= c x τ(t_c); for an exponential decay τ is
    exact up to the neglected tail e^{-c}. If no such time exists the run is too short for the
    decay (Estimate.ok False, τ from the whole run, a lower bound for a monotone decay).
    Used for τ_p (S = <k>, <v> or the velocity correlation: momentum relaxation) and τ_E
    (S = E_e - E_eq). Standard error: jackknife over sample groups (a ratio of means)."""
    t = _times(times)
    s = _series("signal_samples", signal_samples, t.size) - float(baseline)
    mean = s.mean(0)
    if mean[0] == 0:
        raise ValueError("the signal starts at its baseline (S(0) = 0): no decay to time")
    tau_t = _trapezoid_cumulative(mean, t) / mean[0]
    j = _sokal_cut(t, tau_t, c)
    ok = j is not None
    j = t.size - 1 if j is None else j
    w = np.zeros(t.size)
    seg = t[:j + 1]
    w[:j + 1] = np.concatenate([[0], np.diff(seg)]) / 2 + np.concatenate([np.diff(seg), [0]]) / 2
    tau, se = jackknife(lambda m: np.dot(w, m) / m[0], s)
    note = "" if ok else f"no t <= {t[-1]:g} fs with t >= {c:g} τ(t): the decay is longer than the run"
    return Estimate(tau, se, float(t[0]), float(t[j]), ok, note)


def kubo_diffusion(times, corr_samples, c=C_WINDOW):
    """Green-Kubo D = ∫_0^{t_c} C(t) dt (Å²/fs) and τ_p = D/C(0), from per-sample velocity
    correlations C_s(t) (Å²/fs²) with times starting at 0.

    What C must be: the stationary two-time correlation C(t) = Re<v(t) v(0)> of the ensemble. From
    the propagator it is transport_observables' 'corr', Re<ψ0|v(t) v(0)|ψ0>, each sample
    propagating φ = vψ0 beside ψ (memory: one more state per sample, not growing with steps). It
    equals the D of the MSD slope when the initial ensemble is stationary (a thermal electron
    ensemble, a random-phase state, a single site under spatially uniform noise); for a packet
    launched at k0 it is the Kubo integral of that initial state, which need not be the long-time
    D (then use diffusion_msd, or D_run's plateau). For a classical velocity process C_s = v_s(t)
    v_s(0).

    Window: Sokal's rule as in relaxation_time (t_c the first time >= c x ∫_0^t C/C(0)). A
    correlation with a negative tail (backscattering, localisation) is cut where its running
    integral first satisfies the rule: compare with the MSD slope. D is linear in the C_s at fixed
    window: its standard error is the per-sample estimates' (exact); τ_p's is a jackknife.
    Returns (D, τ_p) as two Estimates."""
    t = _times(times)
    C = _series("corr_samples", corr_samples, t.size)
    tau = relaxation_time(t, C, 0.0, c)
    j = int(np.searchsorted(t, tau.t_stop))
    seg = t[:j + 1]
    w = np.zeros(t.size)
    w[:j + 1] = np.concatenate([[0], np.diff(seg)]) / 2 + np.concatenate([np.diff(seg), [0]]) / 2
    D, se = mean_sem(C @ w)
    return Estimate(D, se, tau.t_start, tau.t_stop, tau.ok, tau.note), tau


def energy_exchange(times, energy_samples, E_eq=None, t_start=None, t_stop=None, c=C_WINDOW):
    """Energy exchange of the electron with the lattice from per-sample <H_e>(t) (eV).

    rate   dE_e/dt (eV/fs): the least-squares slope of the mean energy over [t_start, t_stop]
           (default the whole run); exact standard error (linear in the traces).
    tau_E  the energy relaxation time towards E_eq (the electron's mean energy in equilibrium with
           the lattice, e.g. theory.band_energy_thermal for a lattice with detailed balance),
           from the rate: τ_E = (E_eq - Ē)/rate, Ē the mean energy over the same window. For an
           exponential relaxation this is exact up to O((window/τ_E)²) and needs no run longer
           than τ_E (the regime τ_p << τ_E). Undefined (NaN, ok False) without E_eq, or when the
           energy moves away from E_eq (the rate and E_eq - Ē of opposite signs, beyond 2 σ).
    tau_E_int  the integral relaxation time of E - E_eq (relaxation_time), where the relaxation
           completes within the run (ok False otherwise).

    Classical lattices have no detailed balance: a prescribed (wow) lattice, or classical noise
    (HSR), drives the electron towards the band's infinite-temperature state (<H_e> -> the band
    centre, 0 for the chain), and an Ehrenfest lattice's mean-field force does not restore the
    Boltzmann populations either. With such lattices the τ_E measured towards the thermal E_eq is
    the time the electron takes to cross it on its way to infinite temperature, not a relaxation:
    a rate and the sign of the energy drift are what such a run states reliably.
    Returns a dict of Estimates: rate, tau_E, tau_E_int (the last two only with E_eq)."""
    t = _times(times)
    E = _series("energy_samples", energy_samples, t.size)
    t0 = t[0] if t_start is None else float(t_start)
    t1 = t[-1] if t_stop is None else float(t_stop)
    idx = np.flatnonzero((t >= t0) & (t <= t1))
    if idx.size < 3:
        raise ValueError(f"the window [{t0:g}, {t1:g}] fs holds {idx.size} times: allowed >= 3")
    tw, Ew = t[idx], E[:, idx]
    w = _ols_weights(tw)
    r, r_se = mean_sem(Ew @ w)
    out = {"rate": Estimate(r, r_se, float(tw[0]), float(tw[-1]))}
    if E_eq is None:
        return out
    E_eq = float(E_eq)
    tau, tau_se = jackknife(lambda rate, Ebar: (E_eq - Ebar) / rate, Ew @ w, Ew.mean(1))
    gap = E_eq - Ew.mean()
    ok = np.sign(gap) == np.sign(r) or abs(r) < 2 * r_se
    note = "" if ok else "the energy drifts away from E_eq (no detailed balance?)"
    if not ok:
        tau = float("nan")
    out["tau_E"] = Estimate(tau, tau_se, float(tw[0]), float(tw[-1]), bool(ok), note)
    out["tau_E_int"] = relaxation_time(t, E, E_eq, c)
    return out


# --------------------------------------------------------------------------------------------
# Unit conversions
# --------------------------------------------------------------------------------------------
def mobility(D, T):
    """Einstein mobility μ = e D/(k_B T) in cm²/(V·s), D in Å²/fs (and its standard error the
    same way: linear), T > 0 in K. 1 Å²/fs = 0.1 cm²/s; k_B T/e in V is k_B T in eV."""
    T = np.asarray(T, float)
    if not np.all(np.isfinite(T)) or np.any(T <= 0):
        raise ValueError(f"T={T!r} is out of range: allowed finite > 0 (K)")
    return CM2_PER_S * np.asarray(D, float) / (KB * T)


def band_mass(t0, a):
    """Band-bottom mass of the chain m* = ħ²/(2 t0 a²) (eV·fs²/Å²; divide by wow.units.AMU for
    amu, by the electron mass 0.0568563 eV·fs²/Å² for units of m_e). t0 (eV), a (Å) > 0."""
    t0, a = float(t0), float(a)
    if not (t0 > 0 and a > 0 and math.isfinite(t0) and math.isfinite(a)):
        raise ValueError(f"t0={t0!r}, a={a!r}: allowed finite > 0 (eV, Å)")
    return HBAR**2 / (2 * t0 * a**2)


def planckian_alpha(D, mass):
    """α = D m*/ħ (dimensionless), D in Å²/fs, m* in eV·fs²/Å² (the continuum model's m, or the
    chain's band_mass). α ~ 1 is Planckian diffusion, D ~ ħ/m*."""
    mass = float(mass)
    if not (mass > 0 and math.isfinite(mass)):
        raise ValueError(f"mass={mass!r} is out of range: allowed finite > 0 (eV·fs²/Å²)")
    return np.asarray(D, float) * mass / HBAR


def alpha_chain(D, t0, a):
    """α = D m*/ħ with the chain's band-bottom mass: D ħ/(2 t0 a²)."""
    return planckian_alpha(D, band_mass(t0, a))
