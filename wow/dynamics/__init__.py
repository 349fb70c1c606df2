"""Lattice backends. Each supplies one function

    step(psi, lat, p, layout, evolve) -> (psi_next, lat_next)

that advances the lattice state ``lat`` (a PyTree, e.g. lattice.SiteState) by p.dt around one
electron step ``evolve(psi, u_mid)`` (the propagator core's Strang step with hoppings evaluated at
the displacement u_mid). ``frozen`` and ``wow`` take no force from the electron; a back-reacting
backend (Ehrenfest) may call the electron's energy and forces around ``evolve``."""

from . import frozen, prescribed

BACKENDS = {"frozen": frozen.step, "wow": prescribed.step}
DYNAMICS = tuple(BACKENDS)


def get(name: str):
    try:
        return BACKENDS[name]
    except KeyError:
        raise ValueError(f"dynamics={name!r}: allowed {DYNAMICS}") from None
