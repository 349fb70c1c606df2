"""``wow`` (wave-on-wave): the lattice follows its own exact harmonic motion from the thermal
sample and feels no force from the electron.

The electron's step of length dt needs the lattice at its midpoint, so the carried state is the
lattice at mid-step times t_n + dt/2:

* order 2 (equal steps): a ``lattice.StepPair``, the mid-step displacements and their increment
  over the last step, advanced by the two-step recurrence of exact harmonic motion (one stencil
  on one array per step where the flow needs four: wow float32 ~505 -> ~650-690 M
  sample·site·steps/s at N = 4096 x 64 on 2 cores; both stay at rounding, tests/test_lattice.py);
* order 4 (sub-steps of unequal lengths): a ``SiteState`` moved by the exact flow, (dt + dt_next)/2
  from one sub-step's midpoint to the next.

``start`` moves the t = 0 lattice to the first midpoint, ``finish`` returns the (u, v) at the end
of the last step. (The module is not called wow.py so that it does not shadow the package name.)"""

from ..lattice import StepPair, harmonic_flow, pair_sites, pair_start, pair_step

#: The backend only hands ψ to ``evolve``; the core may carry ψ in its own internal form.
READS_PSI = False


def _flow(lat, h, p, layout):
    return harmonic_flow(lat, h, p.omega2, layout.boundary, layout.n_terms)


def start(lat, p, layout):
    if layout.order == 2:
        return pair_start(lat, p.dt, p.omega2, layout.boundary, layout.n_terms)
    return _flow(lat, p.dt / 2, p, layout)


def step(psi, lat, p, layout, evolve, dt_next=None):
    if isinstance(lat, StepPair):
        return evolve(psi, lat.u), pair_step(lat, p.dt, p.omega2, layout.boundary, layout.n_terms)
    dt_next = p.dt if dt_next is None else dt_next
    return evolve(psi, lat.u), _flow(lat, (p.dt + dt_next) / 2, p, layout)


def finish(lat, p, layout):
    if isinstance(lat, StepPair):
        return pair_sites(lat, p.dt, p.omega2, layout.boundary, layout.n_terms)
    return _flow(lat, -p.dt / 2, p, layout)
