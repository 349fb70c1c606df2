"""Lattice backends: how the lattice moves around the electron's step and what it feeds back.
One file each: ``frozen``, ``wow`` (prescribed.py), ``ehrenfest``, ``quantum``.

A backend never knows which electron model it drives: it hands the model lattice *coordinates* (a
dict of arrays, e.g. {'u': displacements}) and calls the model only through the ``ElectronOps`` the
loop gives it (wow.propagate). The loop, in turn, knows a backend only through this protocol.

The protocol (a frozen dataclass instance, static under jit; every method works on a block of
samples: lattice arrays have the samples first and the sites last, (B, N))::

    static_coordinates: bool   the coordinates never change (frozen): the loop computes the model's
                               layer coefficients once, outside the time loop
    whole_electron: bool       the backend reads or changes the electron between its steps
                               (Ehrenfest's force, quantum phonon layers), so every sub-step must
                               leave ψ whole (no pending half layer)
    draw(key, T, statistics, real, p=None) -> Start   one sample's thermal initial lattice (vmapped);
                                                   p given: the widths from its traced parameters
    prepare(sites) -> sites                        a given or drawn lattice as the backend uses it
    initial_electron(psi, lat0, p) -> psi          the electron amplitudes with the backend's own
                                                   leading axes (quantum: DVR points), else psi
    start(lat0, e0, p, sub, ops) -> lat            the carried lattice before the first sub-step
    coordinates(lat, p) -> coords                  what the model's coupling reads
    step(e, lat, p, sub, ops) -> (e, lat)          one sub-step of length sub.h around ops.evolve
    view(e, lat, p, ops) -> e                      the electron at the step boundary (quantum:
                                                   pending phonon half layer applied), else e
    finish(lat, p, sub) -> SiteState              the lattice at the step boundary
    observe(psi, sites, p, model, mp) -> dict      frame tallies (B, ...): the model's, plus the
                                                   backend's (P_ph on a reacting ring, phonons)

``p`` is the backend's traced parameters (``build`` returns them with the backend), ``sub`` a
``wow.propagate.Substep`` (h, h_next), ``ops`` a ``wow.propagate.ElectronOps``.

Transport runs (Config.transport) also ask every backend for ``frame_coordinates(sites, p)``
(what the model reads at a step boundary, for the frame's velocity and energy) and
``lattice_energy(sites, p)`` -> (B,) eV.

Two lattices beyond the chain's own: ``noise`` (noise.py: a frozen thermal lattice with
Haken-Strobl-Reineker dephasing, fresh site phases handed to the model as coords['kick']) and
local (Einstein) modes (local.py: Config.local, the frozen, wow and ehrenfest steps on independent
oscillators per site and mode, coordinates {'q': ...} read by wow.models.chain.HolsteinPeierls).
"""

from __future__ import annotations

import jax.numpy as jnp

from .. import lattice
from ..lattice import ChainFlow
from .base import Classical, LatticeParams, Start, lattice_params
from .ehrenfest import Ehrenfest
from .frozen import Frozen
from .local import build_local
from .noise import Dephasing, Noise, NoiseParams
from .prescribed import Prescribed
from .quantum import Quantum, build_quantum

DYNAMICS = ("frozen", "wow", "ehrenfest", "quantum", "noise")
#: Upper edges of ω_max·h at which the free lattice's Taylor order is chosen: the order is that of
#: the bucket's edge, so every dt up to it (a dt-convergence study) shares one compiled program.
FLOW_BUCKETS = (3e-3, 3e-2, 3e-1, 4.0)


def flow_order(chain, longest_flow: float, real, omega_max: float | None = None) -> int:
    """Taylor order of the free lattice flow for flows up to ``longest_flow`` fs: the order that is
    exact to rounding at the upper edge of its FLOW_BUCKETS bucket. omega_max: a bound on ω_max
    (1/fs) over a range of traced spring constants and masses (default: the chain's own ω_max), so
    that a gradient step that stiffens the lattice stays inside the order (wow.gradients)."""
    w = chain.omega_max if omega_max is None else float(omega_max)
    x = w * abs(longest_flow)
    edge = next((b for b in FLOW_BUCKETS if x <= b), x)
    return lattice.flow_terms(chain, edge / chain.omega_max, real)


def build(cfg, real, longest_flow: float, omega_max: float | None = None):
    """(backend, traced parameters) of cfg.dynamics (validated cfg); omega_max: the bound the free
    flow's Taylor order is chosen for (``flow_order``)."""
    chain = cfg.chain
    if cfg.local is not None:
        return build_local(cfg, real)
    if cfg.dynamics == "noise":
        return Dephasing(chain, kind=cfg.noise.kind), NoiseParams(rate=jnp.asarray(cfg.noise.rate, real))
    free = ChainFlow(chain.boundary, flow_order(chain, longest_flow, real, omega_max))
    if cfg.dynamics == "frozen":
        return Frozen(chain), lattice_params(chain, real)
    if cfg.dynamics == "wow":
        return Prescribed(chain, free=free, equal_steps=cfg.order == 2), lattice_params(chain, real)
    if cfg.dynamics == "ehrenfest":
        return Ehrenfest(chain, free=free), lattice_params(chain, real)
    if cfg.dynamics == "quantum":
        return build_quantum(cfg, real, free)
    raise ValueError(f"dynamics={cfg.dynamics!r}: allowed {DYNAMICS}")


__all__ = ["DYNAMICS", "FLOW_BUCKETS", "Classical", "Dephasing", "Ehrenfest", "Frozen", "LatticeParams", "Noise",
           "Prescribed", "Quantum", "Start", "build", "build_local", "build_quantum", "flow_order", "lattice_params"]
