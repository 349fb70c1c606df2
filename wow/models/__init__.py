"""Electron models: one file each. Today ``chain`` (the tight-binding chain of Appendix A, selected by
a ``wow.Electron`` in ``Config.electron``). A model never knows which lattice backend moves the
lattice: it maps lattice *coordinates* to its layer coefficients and applies them (wow.propagate).

The protocol (a frozen dataclass instance, static under jit; ``p`` is its traced parameters, which
``build`` returns with it). A model owns its state layout: everything below works on a block of
samples with the sample axis where the model puts it (``sample_axis``; the chain: samples first,
sites last, (B, N)), and with extra leading axes that broadcast (a quantum backend's DVR points).
Lattice coordinates arrive in the lattice block layout (B, N) (with the backend's leading axes).

    sample_axis                          where a block's samples sit in the amplitudes
    packet(cfg, cplx) -> (n,)            the configured initial amplitudes of one sample
    to_block(psi) / from_block(x)        samples first (S, ..., n)  <->  the block layout
    start(psi, p) -> e                   the carried state of amplitudes ψ (..., n, B)
    amplitudes(e, p) -> ψ                and back (complex, the block layout)
    fixed(h, p, Q) -> F                  the coordinate-independent part of a sub-step of length h
                                         (e.g. kinetic and recoil phases; Q (B,) the total
                                         momentum of each sample), computed once per sub-step length
    layers(coords, h, p) -> L            the coordinate-dependent coefficients of a sub-step at the
                                         lattice coordinates ``coords`` (the coupling: a dict, e.g.
                                         {'u': (..., N, B)}); L.trail: the additive angle of its
                                         trailing half layer
    join(trail, L) -> J                  the sub-step's first layer merged with the previous
                                         sub-step's pending trailing half (``trail``; None: none)
    advance(e, L, J, F) -> e             one sub-step, first layer J, trailing half left pending
    close(e, trail) -> e                 apply a pending trailing half (close(e, -t) reopens)
    energy(e, coords, p) -> (B,)         <H_e> (ψ whole); the Ehrenfest force is -jax.grad of it
                                         with respect to coords
    observe(ψ, p) -> dict                per-frame tallies (B, ...) of amplitudes, summed over
                                         leading axes (add an observable here: a model-side change)
    weights(ψ, p) -> (total, back)       probability of each leading index (..., B): all, backscattered
    tallies(ψ0, ψf, u0, uf, Q, p)        one sample's final tallies and the amplitudes the coherent
                                         split averages

A Strang sub-step is first layer · inner layers · trailing half layer, the outer layers additive in
their angle (site phases, or rotations of one pair, or a potential phase): consecutive sub-steps
share one merged outer layer (first same as last), which the loop arranges with ``join`` and
``close`` (``close(e, -trail)`` must undo ``close(e, trail)``: the frozen lattice pre-opens its
state that way). A model without that structure returns trail = () and applies both halves itself.

Plugging in another model (e.g. the density-density continuum: ψ(s) on a grid of g·N points, FFTs
along the grid axis, samples first like the chain, (B, g·N); kinetic and recoil phases in ``fixed``;
the potential phase Σ_j v(s - ξ_j - u_j) from coords['u'] (B, N) in ``layers``, its trail the
potential half phase; ``energy`` for the force; Bloch projections in ``observe`` and ``weights``):
a new file here, a config class for it, and an entry in ``MODELS`` (and its own validation in
wow.config). Lattice coordinates are a dict so that a coupling may read more than 'u' (Holstein
local modes, an on-site noise field): the chain's coupling is the replaceable
``chain.SSHDeformation`` (a ``TightBinding(coupling=...)`` field), which declares what it ``reads``.
Per-frame accumulators for long runs (decimated <x>, <x²>, currents) are a change to ``observe``;
the loop records whatever dict it returns.
"""

from __future__ import annotations

from ..electron import Electron
from . import chain
from .chain import ChainParams, SSHDeformation, TightBinding

#: The electron model of each electron config type (the type of Config.electron selects it).
MODELS = {Electron: chain}


def build(cfg, real):
    """(model, traced parameters) of cfg's electron (validated cfg), in dtype ``real``."""
    kind = type(cfg.electron)
    if kind not in MODELS:
        raise ValueError(f"electron={cfg.electron!r}: no model for {kind.__name__}; allowed {[m.__name__ for m in MODELS]}")
    if MODELS[kind] is chain:
        model = TightBinding(N=cfg.chain.N, boundary=cfg.chain.boundary, recoil=cfg.recoil,
                             use_onsite=cfg.electron.D != 0 or bool(cfg.electron.onsite_defects),
                             save_density=cfg.save_density, hold_rotations=cfg.dynamics == "wow")
        return model, chain.params_of(cfg, real)
    raise ValueError(f"electron={cfg.electron!r}: unknown model")


__all__ = ["MODELS", "ChainParams", "SSHDeformation", "TightBinding", "build", "chain"]
