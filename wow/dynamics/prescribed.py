"""``wow`` (wave-on-wave): the lattice follows its own exact harmonic motion from the thermal
sample and feels no force from the electron.

The carried state is the lattice at mid-step times t_n + dt/2, so that each step needs one exact
harmonic flow (not two half-steps): ``start`` moves the t = 0 lattice forward by dt/2, ``step``
moves it on to the midpoint of the next step, (dt + dt_next)/2 later (dt_next = dt unless the core
composes sub-steps of different lengths, as in the fourth-order step), ``finish`` moves the last
state back by dt/2 to t_final. (The module is not called wow.py so that it does not shadow the
package name.)"""

from ..lattice import harmonic_flow

#: The backend only hands ψ to ``evolve``; the core may carry ψ in its own internal form.
READS_PSI = False


def _flow(lat, h, p, layout):
    return harmonic_flow(lat, h, p.omega2, layout.boundary, layout.n_terms)


def start(lat, p, layout):
    return _flow(lat, p.dt / 2, p, layout)


def step(psi, lat, p, layout, evolve, dt_next=None):
    dt_next = p.dt if dt_next is None else dt_next
    return evolve(psi, lat.u), _flow(lat, (p.dt + dt_next) / 2, p, layout)


def finish(lat, p, layout):
    return _flow(lat, -p.dt / 2, p, layout)
