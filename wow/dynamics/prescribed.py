"""``wow`` (wave-on-wave): the lattice follows its own exact harmonic motion from the thermal
sample and feels no force from the electron. Half a step of the exact harmonic flow gives the
mid-step displacement at which the electron steps, the second half the end-of-step state.
(The module is not called wow.py so that it does not shadow the package name.)"""

from ..lattice import harmonic_flow


def step(psi, lat, p, layout, evolve):
    mid = harmonic_flow(lat, p.dt / 2, p.omega2, layout.boundary, layout.n_terms)
    psi = evolve(psi, mid.u)
    return psi, harmonic_flow(mid, p.dt / 2, p.omega2, layout.boundary, layout.n_terms)
