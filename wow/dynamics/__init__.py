"""Lattice backends. A backend is a module (or just a step function) with

    step(psi, lat, p, layout, evolve) -> (psi_next, lat_next)

that advances the lattice state ``lat`` (a PyTree, e.g. lattice.SiteState) by p.dt around one
electron step ``evolve(psi, u_mid)`` (the propagator core's Strang step with hoppings evaluated at
the displacement u_mid), and optionally

    start(lat0, p, layout[, psi0]) -> lat      finish(lat, p, layout) -> lat_at_t_final

to move between the lattice at t = 0 / t_final (a SiteState) and the backend's own carried state
(e.g. the lattice at mid-step times, or the lattice with the force at a step boundary; a start
that names ``psi0`` is given the initial ψ). ``frozen`` and ``wow`` take no force from the electron; a
back-reacting backend (Ehrenfest) may call the electron's energy and forces around ``evolve``."""

from types import ModuleType

from . import ehrenfest, frozen, prescribed

BACKENDS = {"frozen": frozen, "wow": prescribed, "ehrenfest": ehrenfest}
DYNAMICS = tuple(BACKENDS)


def _same(lat, p, layout):
    return lat


def get(name: str):
    """(start, step, finish) of a backend."""
    try:
        b = BACKENDS[name]
    except KeyError:
        raise ValueError(f"dynamics={name!r}: allowed {DYNAMICS}") from None
    if not isinstance(b, ModuleType):
        return _same, b, _same
    return getattr(b, "start", _same), b.step, getattr(b, "finish", _same)
