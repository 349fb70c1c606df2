"""What every classical lattice backend shares: the traced lattice parameters, the thermal draw of
one sample, the lattice coordinates handed to the model, and the per-frame tallies. The protocol
itself is documented in wow.dynamics."""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp

from .. import lattice
from ..lattice import Chain, SiteState
from ..occupations import lattice_budget, lattice_energy, momentum_budget


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class LatticeParams:
    """Traced parameters of a classical lattice: omega2 = K/M (1/fs²) and the atomic mass M
    (eV·fs²/Å²)."""

    omega2: jax.Array
    mass: jax.Array


def lattice_params(chain: Chain, real) -> LatticeParams:
    return LatticeParams(omega2=jnp.asarray(chain.spring / chain.mass_ev, real), mass=jnp.asarray(chain.mass_ev, real))


@dataclasses.dataclass(frozen=True)
class Start:
    """One sample's initial lattice: sites (SiteState (N,)), the CM momentum P_R, and what else a
    backend draws (quantum: the Fock occupations ``n0`` and whether a draw was clipped)."""

    sites: SiteState
    P_R: jax.Array
    extra: dict = dataclasses.field(default_factory=dict)


jax.tree_util.register_dataclass(Start, data_fields=["sites", "P_R", "extra"], meta_fields=[])


def thermal_sites(key, chain: Chain, T, statistics: str, real, p: LatticeParams | None = None):
    """One thermal sample of the internal modes on the sites and its CM momentum (wow.lattice).
    p: traced lattice parameters whose K/M and M set the thermal widths (differentiable in them);
    None: the chain's own (numpy) frequencies and mass."""
    if p is None:
        s = lattice.sample_modes(key, chain, T, statistics, real)
        return lattice.to_sites(chain, s), s.P_R
    s = lattice.sample_modes(key, chain, T, statistics, real, omega2=p.omega2, mass=p.mass)
    return lattice.to_sites(chain, s, p.mass), s.P_R


@dataclasses.dataclass(frozen=True)
class Classical:
    """Defaults of a classical lattice (wow.dynamics protocol): the chain's thermal sample, the
    coordinates {'u': displacements}, nothing added to the electron, and the model's frame tallies.
    Subclasses give start / step / finish."""

    chain: Chain
    static_coordinates = False
    whole_electron = False
    #: the lattice runs backwards alone (``unstep(lat, p, sub)``, it does not feel the electron):
    #: reverse mode may then run the steps backwards instead of storing them (wow.propagate.Plan)
    reversible = False

    def draw(self, key, T, statistics: str, real, p=None) -> Start:
        sites, P_R = thermal_sites(key, self.chain, T, statistics, real, p)
        return Start(sites=self.prepare(sites), P_R=P_R)

    def prepare(self, sites: SiteState) -> SiteState:
        """A given or drawn initial lattice as this backend uses it."""
        return sites

    def initial_lattice(self, start: Start):
        """The block's initial lattice as ``start`` takes it (Start of a block: sites (B, N))."""
        return start.sites

    def initial_electron(self, psi, lat0, p):
        return psi

    def coordinates(self, lat, p):
        return {"u": lat.u}

    def frame_coordinates(self, sites: SiteState, p):
        """The coordinates the model reads at a step boundary (the lattice as ``finish`` gives it)."""
        return {"u": sites.u}

    def view(self, e, lat, p, ops):
        return e

    def observe(self, psi, sites: SiteState, p, model, mp) -> dict:
        return model.observe(psi, mp, self.frame_coordinates(sites, p))

    def lattice_energy(self, sites: SiteState, p):
        """The internal lattice energy per sample (B,) (eV): Σ p²/2M + K/2 Σ b² (wow.occupations)."""
        return jax.vmap(lambda s: lattice_energy(self.chain, s))(sites)

    def tallies(self, psi0, psi_f, lat0: SiteState, lat_f: SiteState, Q, model, mp, p):
        """Per-sample tallies of a block (name -> (B,)) and the final amplitudes the coherent split
        averages (B, n): the model's tallies, the lattice side of the budget (dP_ph, dE_lat, dn)
        and the momentum budget as the model books it (``model.budget``: the chain's CM takes
        dP_cm = -(dP_e + dP_ph), the density-density model's dP_cm = -dP_e exactly)."""
        def one(psi0_, psi_f_, s0, sf, Q_):
            out, psik = model.tallies(psi0_, psi_f_, s0.u, sf.u, Q_, mp)
            lat = lattice_budget(self.chain, s0, sf)
            out.update(lat, **model.budget(out, lat))
            return out, psik

        return jax.vmap(one)(psi0, psi_f, lat0, lat_f, Q)
