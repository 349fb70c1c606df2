"""``ehrenfest``: a classical lattice driven by the electron's mean force (Hellmann-Feynman)
F_n = -∂<ψ|H_e(u)|ψ>/∂u_n, integrated symmetrically around the propagator core's electron step.

One step of length dt (velocity Verlet wrapped around the split-operator step):

    kick(dt/2)  v += F(ψ, u) dt/(2M)
    drift(dt/2) (u, v) <- exact harmonic flow of H_lat, dt/2
    electron    ψ <- Strang step with hoppings at the mid-step u (``evolve``)
    drift(dt/2)
    kick(dt/2)  v += F(ψ', u') dt/(2M)

Each piece is exactly invertible by running it with -dt and the sequence is palindromic, so the
step is time reversible and second order: the total energy <H_e> + H_lat (+ the recoil energy when
``recoil`` is on) is conserved to O(dt²) with no drift of the secular kind.

The force depends on u only through bond stretches b_n = u_{n+1} - u_n (SSH hoppings and the
deformation potential alike), so it sums to zero exactly (Σ_n ∂/∂u_n of a function of differences
vanishes): the internal lattice momentum stays zero-sum and the CM is untouched. The mean of the
force (zero up to rounding) is removed anyway so that Σv stays zero to rounding over long runs.

Mass: ``Params`` carries K/M and 1/(2NM) but not M; M is recovered exactly as 1/(2 N · inv_2NM).

With ``recoil`` on, the electron moves in the sector Q = P_R(0) + ħk0 with the CM kinetic energy
(Q - ħk)²/(2NM); the crystal momentum taken by the phonons is not fed back into that sector (an
O(ΔP_ph · ħk/(NM)) energy, below 1e-6 eV for the chains used here). The bookkeeping of where the
momentum goes is done after the run (wow.occupations.budget).
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .. import propagate as _core  # a module reference: propagate imports this package too
from ..lattice import SiteState, harmonic_flow


def mass(p, layout):
    """M (eV·fs²/Å²) from Params: inv_2NM = 1/(2NM)."""
    return 1.0 / (2 * layout.N * p.inv_2NM)


def raw_force(psi, u, p, layout):
    """-∂<ψ|H_e(u)|ψ>/∂u_n (eV/Å), straight from jax.grad of the electron energy."""
    return -jax.grad(_core.electron_energy, argnums=1)(psi, u, p, layout)


def force(psi, u, p, layout):
    """The Hellmann-Feynman force projected onto zero sum (the projection removes rounding only:
    the raw force is zero-sum analytically)."""
    f = raw_force(psi, u, p, layout)
    return f - jnp.mean(f)


def _kick(lat: SiteState, f, h, M) -> SiteState:
    return SiteState(u=lat.u, v=lat.v + f * (h / M))


def _drift(lat: SiteState, h, p, layout) -> SiteState:
    return harmonic_flow(lat, h, p.omega2, layout.boundary, layout.n_terms)


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class WithForce:
    """The carried state: the lattice at a step boundary and the force there. The force that ends
    one step is the one that starts the next (same ψ, same u), so each step evaluates it once."""

    lat: SiteState
    f: jax.Array


def _verlet(psi, lat: SiteState, f0, p, layout, evolve, drift):
    """One symmetric step from the boundary force f0; returns (ψ, lattice, force at the end)."""
    h = p.dt / 2
    M = mass(p, layout)
    lat = _kick(lat, f0, h, M)
    lat = drift(lat, h, p, layout)
    psi = evolve(psi, lat.u)
    lat = drift(lat, h, p, layout)
    f1 = force(psi, lat.u, p, layout)  # depends on u only: the kick below does not change it
    return psi, _kick(lat, f1, h, M), f1


def verlet(psi, lat: SiteState, p, layout, evolve, drift):
    """The symmetric Ehrenfest step with a given free lattice flow ``drift(lat, h, p, layout)``
    (the harmonic chain here; experiments may pass another harmonic lattice, e.g. Einstein
    oscillators); evaluates the force at both ends."""
    psi, lat, _ = _verlet(psi, lat, force(psi, lat.u, p, layout), p, layout, evolve, drift)
    return psi, lat


def start(lat, p, layout, psi0):
    return WithForce(lat, force(psi0, lat.u, p, layout))


def step(psi, c: WithForce, p, layout, evolve):
    psi, lat, f = _verlet(psi, c.lat, c.f, p, layout, evolve, _drift)
    return psi, WithForce(lat, f)


def finish(c: WithForce, p, layout):
    return c.lat
