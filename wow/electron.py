"""The foreground: one electron on a tight-binding chain (docs/model.md, "The tight-binding chain").

H_e = - sum_b t_b (|n+1><n| + h.c.) + sum_n ε_n |n><n|, with
  SSH bond coupling   t_b = t0 - α b_n,   b_n = u_{n+1} - u_n   (Å; α in eV/Å),
  deformation         ε_n = D s_n,  s_n = (b_{n-1} + b_n)/(2a),  a missing bond counting as 0.
Bond n joins sites n and n+1 (mod N on the ring, where bond N-1 joins N-1 and 0).
Static defects enter as fixed offsets added to t_b and ε_n.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np

from .units import HBAR


@dataclasses.dataclass(frozen=True)
class Electron:
    """Tight-binding electron and its initial packet.

    t0: bare hopping (eV, > 0); alpha: SSH bond coupling (eV/Å); D: deformation potential (eV);
    k0: packet momentum (1/Å), inside (0, π/a) (the packet moves towards +x: backscattering is the
    weight at k < 0; a left-moving packet is the mirror image), None = π/(3a) (ε = -t0, v = √3 t0 a/ħ). Not the band centre
    π/(2a): there, with SSH coupling only, chiral symmetry pins <H_e> at 0 and no energy is exchanged;
    sigma: packet width (Å) in ψ_n ∝ exp(-(n a - x0)²/(4σ²)) e^{i k0 n a}; x0: packet centre (Å),
    None = the middle of the chain (the backscattered part needs as much room as the forward part).
    bond_defects: static hopping offsets ((bond index, δt in eV), ...) added to t_b, e.g. one
    modified bond for the transfer-matrix and recoil checks; onsite_defects: static site-energy
    offsets ((site index, δε in eV), ...) added to ε_n.
    """

    t0: float = 1.0
    alpha: float = 2.0
    D: float = 0.0
    k0: float | None = None
    sigma: float = 25.0
    x0: float | None = None
    bond_defects: tuple = ()
    onsite_defects: tuple = ()

    def __post_init__(self):
        # defects read back from a file come as lists: keep the config hashable and comparable
        for name in ("bond_defects", "onsite_defects"):
            v = getattr(self, name)
            if isinstance(v, list):
                object.__setattr__(self, name, tuple(tuple(d) if isinstance(d, list) else d for d in v))


def bonds(u, boundary: str):
    """Bond stretches b_n = u_{n+1} - u_n: N-1 of them (open) or N (ring)."""
    if boundary == "ring":
        return jnp.roll(u, -1) - u
    return u[1:] - u[:-1]


def hoppings(b, t0, alpha, t_static=0.0):
    """SSH hoppings t_b = t0 - α b (+ static offsets), eV."""
    return t0 - alpha * b + t_static


def onsite(b, D, a, boundary: str):
    """Deformation-potential site energies ε_n = D (b_{n-1} + b_n)/(2a), eV."""
    if boundary == "ring":
        return D * (jnp.roll(b, 1) + b) / (2 * a)
    zero = jnp.zeros((1,), b.dtype)
    return D * (jnp.concatenate([zero, b]) + jnp.concatenate([b, zero])) / (2 * a)


def band(k, t0, a):
    """ε(k) = -2 t0 cos(ka), eV."""
    xp = jnp if isinstance(k, jax.Array) else np
    return -2.0 * t0 * xp.cos(k * a)


def group_velocity(k, t0, a):
    """v(k) = 2 t0 a sin(ka)/ħ, Å/fs."""
    xp = jnp if isinstance(k, jax.Array) else np
    return 2.0 * t0 * a * xp.sin(k * a) / HBAR


def k_grid(N: int, a: float) -> np.ndarray:
    """The N discrete-Fourier momenta in FFT order, mapped into (-π/a, π/a] (1/Å)."""
    k = 2 * np.pi * np.fft.fftfreq(N) / a
    return np.where(k <= -np.pi / a + 1e-12 / a, k + 2 * np.pi / a, k)


def packet(N: int, a: float, x0: float, sigma: float, k0: float, dtype=jnp.complex128):
    """Normalised Gaussian packet ψ_n ∝ exp(-(n a - x0)²/(4σ²)) exp(i k0 n a)."""
    x = np.arange(N) * a
    psi = np.exp(-((x - x0) ** 2) / (4 * sigma**2) + 1j * k0 * x)
    return jnp.asarray(psi / np.linalg.norm(psi), dtype)


def momentum_amplitudes(psi):
    """ψ~(k) = N^{-1/2} sum_n ψ_n e^{-ikna} in FFT order (unitary DFT over sites)."""
    return jnp.fft.fft(psi, axis=-1, norm="ortho")


def energy(psi, t, eps, boundary: str):
    """<ψ|H_e|ψ> (eV) for hoppings t (per bond) and site energies eps."""
    right = jnp.roll(psi, -1) if boundary == "ring" else psi[1:]
    left = psi if boundary == "ring" else psi[:-1]
    hop = -2.0 * jnp.sum(t * jnp.real(jnp.conj(right) * left))
    return hop + jnp.sum(eps * jnp.abs(psi) ** 2)


def hamiltonian(t, eps, boundary: str) -> np.ndarray:
    """Dense H_e (numpy), for tests and exact references on small chains."""
    t, eps = np.asarray(t), np.asarray(eps)
    N = eps.shape[0]
    H = np.diag(eps).astype(complex)
    for n, tb in enumerate(t):
        m = (n + 1) % N
        H[m, n] -= tb
        H[n, m] -= tb
    return H
