"""``frozen``: the lattice stays at its thermal sample for the whole run (static disorder).

The coordinates never change (``static_coordinates``): the loop computes the model's layer
coefficients once, outside the time loop. The lattice carries no velocity (v = 0), so its energy
and occupations are those of the static sample's displacements."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from ..lattice import SiteState
from .base import Classical


@dataclasses.dataclass(frozen=True)
class Frozen(Classical):
    static_coordinates = True
    reversible = True

    def prepare(self, sites: SiteState) -> SiteState:
        return SiteState(u=sites.u, v=jnp.zeros_like(sites.v))

    def start(self, lat0, e0, p, sub, ops):
        return lat0

    def step(self, e, lat, p, sub, ops):
        return ops.evolve(e, self.coordinates(lat, p)), lat

    def unstep(self, lat, p, sub):
        return lat

    def step_back(self, lat, p, sub, ct, ct_coords):
        """The transpose of ``step``'s lattice part: the coordinates are the displacements."""
        return SiteState(u=ct.u + ct_coords["u"], v=ct.v), jnp.zeros((), lat.u.dtype)

    def step_params(self, stats, p, sub):
        """No parameter moves a frozen lattice."""
        return jax.tree_util.tree_map(jnp.zeros_like, p), jnp.zeros((), stats.dtype)

    def finish(self, lat, p, sub):
        return lat
