"""``ehrenfest``: a classical lattice driven by the electron's mean force (Hellmann-Feynman)
F_n = -∂<ψ|H_e(u)|ψ>/∂u_n, integrated symmetrically around the model's electron sub-step.

One step of length h (velocity Verlet wrapped around the split-operator step):

    kick(h/2)   v += F(ψ, u) h/(2M)
    drift(h/2)  (u, v) <- exact free flow of the lattice, h/2
    electron    ψ <- the model's sub-step with the coefficients at the mid-step u (``ops.evolve``)
    drift(h/2)
    kick(h/2)   v += F(ψ', u') h/(2M)

Each piece is exactly invertible by running it with -h and the sequence is palindromic, so the
step is time reversible and second order: the total energy <H_e> + H_lat (+ the recoil energy when
``recoil`` is on) is conserved to O(h²) with no drift of the secular kind. The force is the
gradient of the model's energy (``ops.force``, jax.grad), so it needs ψ whole between sub-steps
(``whole_electron``).

The force depends on u only through bond stretches (SSH hoppings and the deformation potential
alike), so it sums to zero exactly (Σ_n ∂/∂u_n of a function of differences vanishes): the internal
lattice momentum stays zero-sum and the CM is untouched. The mean of the force (zero up to rounding)
is removed anyway so that Σv stays zero to rounding over long runs. The density-density model's
force does not sum to zero (Σ_j F_j = -d<p>/dt, the push on the lattice as a whole): its mean is what
the CM takes, which that model holds exactly in its sector Q (<P_R> = Q - <p>), so the internal
lattice (Σ u = 0) gets the projected force, as here.

With ``recoil`` on, the electron moves in the sector Q = P_R(0) + ħk0 with the CM kinetic energy
(Q - ħk)²/(2NM); the crystal momentum taken by the phonons is not fed back into that sector (an
O(ΔP_ph · ħk/(NM)) energy, below 1e-6 eV for the chains used here). The bookkeeping of where the
momentum goes is done after the run (wow.occupations.budget); on the ring the frames record the
phonons' crystal momentum P_ph, which the <P_R> trace subtracts.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..lattice import SiteState
from ..occupations import phonon_momentum
from .base import Classical


def raw_force(model, mp, e, coords):
    """-∂<ψ|H_e(coords)|ψ>/∂coords (eV/Å) per sample, straight from jax.grad of the model's energy:
    a dict like coords."""
    grad = jax.grad(lambda c: jnp.sum(model.energy(e, c, mp)))(coords)
    return jax.tree_util.tree_map(jnp.negative, grad)


def zero_sum(f):
    """The force projected onto zero sum over the sites (the last axis): removes rounding only."""
    return f - jnp.mean(f, axis=-1, keepdims=True)


def _kick(lat: SiteState, f, h, M) -> SiteState:
    return SiteState(u=lat.u, v=lat.v + f * (h / M))


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WithForce:
    """The carried state: the lattice at a step boundary and the force there. The force that ends
    one step is the one that starts the next (same ψ, same u), so each step evaluates it once."""

    lat: SiteState
    f: jax.Array


@dataclasses.dataclass(frozen=True)
class Ehrenfest(Classical):
    """free: the free lattice (lattice.ChainFlow, or e.g. independent Einstein oscillators with
    the same ``flow`` method); momentum_frames: record the phonons' crystal momentum P_ph at every
    frame on a ring chain (off for a lattice that is not the chain's)."""

    free: object = None
    momentum_frames: bool = True
    whole_electron = True

    def force(self, e, lat: SiteState, p, ops):
        return zero_sum(ops.force(e, self.coordinates(lat, p))["u"])

    def start(self, lat0, e0, p, sub, ops):
        return WithForce(lat0, self.force(e0, lat0, p, ops))

    def step(self, e, c: WithForce, p, sub, ops):
        h = sub.h / 2
        lat = _kick(c.lat, c.f, h, p.mass)
        lat = self.free.flow(lat, h, p.omega2)
        e = ops.evolve(e, self.coordinates(lat, p))
        lat = self.free.flow(lat, h, p.omega2)
        f1 = self.force(e, lat, p, ops)  # depends on u only: the kick below does not change it
        return e, WithForce(_kick(lat, f1, h, p.mass), f1)

    def coordinates(self, lat, p):
        return {"u": (lat.lat if isinstance(lat, WithForce) else lat).u}

    def finish(self, c: WithForce, p, sub):
        return c.lat

    def observe(self, psi, sites: SiteState, p, model, mp) -> dict:
        """The model's frame tallies and, on the ring, the phonons' crystal momentum P_ph, which a
        reacting lattice changes (the <P_R> trace subtracts it: docs/model.md)."""
        out = model.observe(psi, mp, self.frame_coordinates(sites, p))
        if self.momentum_frames and self.chain.boundary == "ring":
            out["P_ph"] = jax.vmap(lambda s: phonon_momentum(self.chain, s))(sites)
        return out
