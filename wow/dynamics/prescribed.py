"""``wow`` (wave-on-wave): the lattice follows its own exact harmonic motion from the thermal
sample and feels no force from the electron.

The electron's step of length h needs the lattice at its midpoint, so the carried state is the
lattice at mid-step times:

* equal sub-steps (order 2) on a free lattice with a recurrence (the harmonic chain): a
  ``lattice.StepPair``, the mid-step displacements and their increment over the last step, advanced
  by the two-step recurrence of exact harmonic motion (one stencil on one array per step where the
  flow needs four; both stay at rounding, tests/test_lattice.py);
* otherwise (order 4's unequal sub-steps): a ``SiteState`` moved by the exact flow, (h + h_next)/2
  from one sub-step's midpoint to the next.

``start`` moves the t = 0 lattice to the first midpoint, ``finish`` returns the (u, v) at the step
boundary. (The module is not called wow.py so that it does not shadow the package name.)"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from .base import Classical, LatticeParams


@dataclasses.dataclass(frozen=True)
class Prescribed(Classical):
    """free: the free lattice (lattice.ChainFlow or another with the same methods); equal_steps:
    every sub-step has the same length (order 2), so the recurrence may carry the lattice."""

    free: object = None
    equal_steps: bool = True
    reversible = True

    @property
    def paired(self) -> bool:
        return self.equal_steps and self.free.recurrence

    def start(self, lat0, e0, p, sub, ops):
        if self.paired:
            return self.free.pair_start(lat0, sub.h, p.omega2)
        return self.free.flow(lat0, sub.h / 2, p.omega2)

    def step(self, e, lat, p, sub, ops):
        e = ops.evolve(e, self.coordinates(lat, p))
        if self.paired:
            return e, self.free.pair_step(lat, sub.h, p.omega2)
        return e, self.free.flow(lat, (sub.h + sub.h_next) / 2, p.omega2)

    def unstep(self, lat, p, sub):
        """The inverse of ``step``'s lattice part: the carried lattice one sub-step earlier (the
        lattice does not feel the electron, so it runs backwards alone: reversible gradients)."""
        if self.paired:
            return self.free.pair_unstep(lat, sub.h, p.omega2)
        return self.free.flow(lat, -(sub.h + sub.h_next) / 2, p.omega2)

    def step_back(self, lat, p, sub, ct, ct_coords):
        """The transpose of ``step``'s lattice part at ``lat`` (the lattice before it): (the
        cotangent of lat, per-site statistics whose sums ``step_params`` turns into the parameters'
        cotangents), from the cotangent ``ct`` of the lattice after it and ``ct_coords``, that of the
        coordinates it handed the electron; None where it is not written by hand (the unequal
        sub-steps' flow: the caller then differentiates ``step`` itself)."""
        if not self.paired:
            return None
        return self.free.pair_step_back(lat, ct, ct_coords["u"], sub.h, p.omega2)

    def step_params(self, stats, p, sub):
        """(the LatticeParams cotangent, h times the cotangent of the sub-step length h) of the summed
        ``step_back`` statistics: ω² enters the paired step as ω²h² (``lattice.pair_step_back``)."""
        s = jnp.sum(stats)
        return LatticeParams(omega2=s, mass=jnp.zeros_like(p.mass)), 2 * p.omega2 * s

    def finish(self, lat, p, sub):
        """(u, v) at the step boundary before the sub-step ``sub`` (the first of a step)."""
        if self.paired:
            return self.free.pair_sites(lat, sub.h, p.omega2)
        return self.free.flow(lat, -sub.h / 2, p.omega2)
