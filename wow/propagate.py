"""The propagator core: one second-order Strang split-operator step and the lax.scan time loop.

Every lattice dynamics uses this core; a backend (``wow.dynamics``) only says how the lattice moves
around the electron's step.

One step of length dt, with the hoppings and site energies evaluated at mid-step u(t + dt/2):

    no recoil:  V/2 · B_even/2 · B_odd   · B_even/2 · V/2
    recoil:     V/2 · B_even/2 · B_odd/2 · R · B_odd/2 · B_even/2 · V/2

V: diagonal phases e^{-i ε_n τ/ħ} (skipped when D = 0 and no static site terms).
B: exact 2x2 rotations of each bond, [[cos θ, i sin θ], [i sin θ, cos θ]], θ = t_b τ/ħ
   (the exact exponential of -t_b σ_x on the pair). Bonds of one parity share no site, so each
   layer is an exact unitary for any real hoppings; the scheme is symmetric, hence second order.
R: CM recoil, the k-space phase exp(-i (Q - ħk)²/(2NM) dt/ħ) applied through a unitary FFT.
The ring needs even N (bond N-1 joins N-1 and 0 and must not share a site with bond 0 in the
odd layer); an odd ring is refused by validation.
"""

from __future__ import annotations

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp

from . import dynamics as _dyn
from .electron import bonds, energy, hoppings, momentum_amplitudes, onsite
from .lattice import SiteState
from .units import HBAR


@dataclasses.dataclass(frozen=True)
class Layout:
    """Everything about a run that fixes array shapes or the program: static under jit.

    N, boundary: the chain; dynamics: 'frozen' | 'wow'; recoil: CM recoil phase on/off;
    use_onsite: apply site energies (D != 0 or static site terms); n_terms: Taylor order of the
    lattice flow; steps_per_frame, n_frames: the run is n_frames x steps_per_frame steps, with
    tallies recorded at n_frames + 1 times; save_density: also record |ψ_n|² at each frame.
    """

    N: int
    boundary: str
    dynamics: str = "frozen"
    recoil: bool = False
    use_onsite: bool = False
    n_terms: int = 8
    steps_per_frame: int = 1
    n_frames: int = 1
    save_density: bool = False


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Params:
    """Traced physical parameters of one run (shared by all samples unless vmapped).

    t0, alpha (eV, eV/Å), D (eV), a (Å), dt (fs), omega2 = K/M (1/fs²), k: DFT momenta (1/Å, FFT
    order), inv_2NM = 1/(2NM) (Å²/(eV·fs²)), t_static: static hopping offsets per bond (eV).
    """

    t0: jax.Array
    alpha: jax.Array
    D: jax.Array
    a: jax.Array
    dt: jax.Array
    omega2: jax.Array
    k: jax.Array
    inv_2NM: jax.Array
    t_static: jax.Array


def _rotate_pairs(x, c, s):
    """Apply [[c, i s], [i s, c]] to pairs x[..., 0], x[..., 1]."""
    p, q = x[..., 0], x[..., 1]
    return jnp.stack([c * p + 1j * s * q, 1j * s * p + c * q], axis=-1)


def _bond_layer(psi, c, s, parity: int, boundary: str):
    """Rotate all bonds of one parity (0: bonds 0, 2, ...; 1: bonds 1, 3, ...) along the last axis
    of psi (leading axes, e.g. phonon DVR points, broadcast against c and s)."""
    N = psi.shape[-1]
    lead = psi.shape[:-1]
    if boundary == "ring":  # N even: every site in exactly one pair of each parity
        x = jnp.roll(psi, -parity, axis=-1) if parity else psi
        x = _rotate_pairs(x.reshape(*lead, N // 2, 2), c, s).reshape(*lead, N)
        return jnp.roll(x, parity, axis=-1) if parity else x
    n_pairs = (N - parity) // 2
    seg = psi[..., parity:parity + 2 * n_pairs].reshape(*lead, n_pairs, 2)
    seg = _rotate_pairs(seg, c, s).reshape(*lead, 2 * n_pairs)
    return jnp.concatenate([psi[..., :parity], seg, psi[..., parity + 2 * n_pairs:]], axis=-1)


def _bond_angles(t, tau):
    """cos and sin of θ = t τ/ħ for the bonds of each parity."""
    th = t * (tau / HBAR)
    return jnp.cos(th), jnp.sin(th)


def electron_step(psi, t, eps, dt, recoil_phase, layout: Layout):
    """One Strang step of the electron with hoppings t (per bond) and site energies eps (or None);
    recoil_phase is the full-step k-space phase (or None)."""
    te, to = t[..., 0::2], t[..., 1::2]
    ce, se = _bond_angles(te, dt / 2)
    co, so = _bond_angles(to, dt / 2 if recoil_phase is not None else dt)
    half_v = jnp.exp(-1j * eps * (dt / (2 * HBAR))) if eps is not None else None

    if half_v is not None:
        psi = psi * half_v
    psi = _bond_layer(psi, ce, se, 0, layout.boundary)
    psi = _bond_layer(psi, co, so, 1, layout.boundary)
    if recoil_phase is not None:
        psi = jnp.fft.ifft(jnp.fft.fft(psi, axis=-1) * recoil_phase, axis=-1)
        psi = _bond_layer(psi, co, so, 1, layout.boundary)
    psi = _bond_layer(psi, ce, se, 0, layout.boundary)
    if half_v is not None:
        psi = psi * half_v
    return psi


def electron_terms(u, p: Params, layout: Layout):
    """Hoppings and site energies (or None) at displacement u."""
    b = bonds(u, layout.boundary)
    t = hoppings(b, p.t0, p.alpha, p.t_static)
    eps = onsite(b, p.D, p.a, layout.boundary) if layout.use_onsite else None
    return t, eps


def electron_energy(psi, u, p: Params, layout: Layout):
    t, eps = electron_terms(u, p, layout)
    return energy(psi, t, jnp.zeros_like(u) if eps is None else eps, layout.boundary)


def recoil_energy(psi, Q, p: Params):
    """<(Q - ħk)²/(2NM)>: the CM kinetic energy in the sector of total momentum Q (eV)."""
    w = jnp.abs(momentum_amplitudes(psi)) ** 2
    return jnp.sum(w * (Q - HBAR * p.k) ** 2) * p.inv_2NM


def observe(psi, p: Params, layout: Layout):
    """Per-frame tallies: norm, <x> (Å), <k> (1/Å), P_b (weight at k < 0); with
    layout.save_density also the frames |ψ_n|² ('density') and |ψ~(k)|² ('momentum', FFT order)."""
    rho = jnp.abs(psi) ** 2
    norm = jnp.sum(rho)
    x = jnp.arange(layout.N, dtype=rho.dtype) * p.a
    wk = jnp.abs(momentum_amplitudes(psi)) ** 2
    out = {
        "norm": norm,
        "x_mean": jnp.sum(x * rho) / norm,
        "k_mean": jnp.sum(p.k * wk) / norm,
        "P_b": jnp.sum(jnp.where(p.k < 0, wk, 0.0)),
    }
    if layout.save_density:
        out["density"] = rho
        out["momentum"] = wk
    return out


@partial(jax.jit, static_argnames=("layout",))
def propagate(psi0, lat0: SiteState, Q, p: Params, layout: Layout):
    """Propagate one sample for n_frames x steps_per_frame steps of p.dt.

    psi0: (N,) complex; lat0: the lattice at t = 0; Q: total momentum P_R(0) + ħk0 (used only
    with recoil). Returns (psi_f, lat_f, frames), frames a dict of arrays with a leading axis of
    n_frames + 1 (t = 0 included). Write for one sample; vmap over samples.
    """
    start, advance, finish = _dyn.get(layout.dynamics)  # the lattice backend
    phase = (jnp.exp(-1j * (Q - HBAR * p.k) ** 2 * p.inv_2NM * (p.dt / HBAR))
             if layout.recoil else None)

    def evolve(psi, u_mid):  # the electron's Strang step with the lattice frozen at u_mid
        t, eps = electron_terms(u_mid, p, layout)
        return electron_step(psi, t, eps, p.dt, phase, layout)

    def step(carry, _):
        return advance(*carry, p, layout, evolve), None

    def frame(carry, _):
        carry, _ = jax.lax.scan(step, carry, None, length=layout.steps_per_frame)
        return carry, observe(carry[0], p, layout)

    first = observe(psi0, p, layout)
    (psi, lat), frames = jax.lax.scan(frame, (psi0, start(lat0, p, layout)), None, length=layout.n_frames)
    frames = jax.tree_util.tree_map(lambda f, r: jnp.concatenate([f[None], r]), first, frames)
    return psi, finish(lat, p, layout), frames
