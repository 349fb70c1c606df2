"""Electron models: one file each. ``chain`` (the tight-binding chain of Appendix A, selected by a
``wow.Electron`` in ``Config.electron``) and ``continuum`` (the density-density model of the paper's
§IV-V: an electron on a real-space grid around a ring of Gaussian pseudopotentials, the lattice CM
exact; selected by a ``wow.Continuum``). A model never knows which lattice backend moves the
lattice: it maps lattice *coordinates* to its layer coefficients and applies them (wow.propagate).

The protocol (a frozen dataclass instance, static under jit; ``p`` is its traced parameters, which
``build`` returns with it). A model owns its state layout: everything below works on a block of
samples with the sample axis where the model puts it (``sample_axis``; both models: samples first,
sites or grid points last, (B, n)), and with extra leading axes that broadcast (a quantum backend's
DVR points). Lattice coordinates arrive in the lattice block layout (B, N) (with the backend's
leading axes).

    sample_axis                          where a block's samples sit in the amplitudes
    n_amplitudes                         amplitudes per sample (chain: N sites; continuum: g N points)
    exact_cm                             <P_R> = Q - ħ<k> exactly (True: mechanical momentum, the
                                         continuum), or minus the phonons' crystal momentum change
                                         too (False: the chain's bookkeeping, docs/model.md)
    packet(cfg, cplx) -> (n,)            the configured initial amplitudes of one sample
    to_block(psi) / from_block(x)        samples first (S, ..., n)  <->  the block layout
    initial_momentum(psi, k0, p) -> (B,) the electron's part of each sample's total momentum
                                         Q = P_R(0) + this (chain: ħk0; continuum: <p> of ψ)
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
    close_joined(e, J) -> e              optional: the trailing half by coefficients J = join(None, L)
                                         of the same sub-step (its leading half: the same layer), so a
                                         whole sub-step makes them once (wow.propagate's whole steps)
    energy(e, coords, p) -> (B,)         <H_e> (ψ whole); the Ehrenfest force is -jax.grad of it
                                         with respect to coords
    observe(ψ, p, coords) -> dict        per-frame tallies (B, ...) of amplitudes, summed over
                                         leading axes (add an observable here: a model-side change);
                                         coords: the frame's lattice coordinates (or None)
    weights(ψ, p) -> (total, back)       probability of each leading index (..., B): all, backscattered
    crystal_weights(ψ, p) -> (all, back) the same per crystal momentum k (FFT order): (..., B, N)
    split_amplitudes(ψ, p) -> (..., m)   what the coherent/incoherent split averages over samples
                                         (chain: ψ~(k); continuum: Bloch amplitudes), and
    split_mask(p) -> (m,) bool           which of them count as backscattered
    tallies(ψ0, ψf, u0, uf, Q, p)        one sample's final tallies and its split amplitudes
    budget(out, lat) -> dict             one sample's momentum budget (dP_e, dP_ph, dP_cm) from its
                                         tallies and the lattice's (wow.occupations.lattice_budget)

A Strang sub-step is first layer · inner layers · trailing half layer, the outer layers additive in
their angle (site phases, or rotations of one pair, or a potential phase): consecutive sub-steps
share one merged outer layer (first same as last), which the loop arranges with ``join`` and
``close`` (``close(e, -trail)`` must undo ``close(e, trail)``: the frozen lattice pre-opens its
state that way). A model without that structure returns trail = () and applies both halves itself
(the continuum does: its outer layer is the kinetic phase, whose per-sample recoil part ``close``
could not rebuild).

Adding a model: a new file here, a config class for it, an entry in ``MODELS`` and in ``build``,
and its validation in wow.config. Lattice coordinates are a dict so that a coupling may read more
than 'u' (Holstein local modes, an on-site noise field): the chain's coupling is the replaceable
``chain.SSHDeformation`` (a ``TightBinding(coupling=...)`` field), which declares what it ``reads``.
Per-frame transport observables (Config.transport: <x - x0>, the MSD, D_run, <v>, E_e, E_band, the
edge density; with Config.kubo the velocity correlation) are the chain's ``observe(ψ, p, coords)``
with the frame's lattice coordinates (wow.transport.chain_frame; the continuum's: continuum_frame,
completed per sample by its ``sector_frames(frames, Q, p)``, which wow.run calls when a model has it:
the velocity of s = r - R needs the sector Q); the loop records whatever dict it returns. With ``kubo`` the model also gives ``current(ψ, coords, p)`` = vψ, the second state's start.
Local (Einstein) modes couple through ``chain.HolsteinPeierls`` (reads 'q'); a noise backend's
site kicks reach the chain's outer site layers as coords['kick'] (``layers``).
"""

from __future__ import annotations

import dataclasses

import jax.numpy as jnp

from ..electron import Electron
from . import chain, continuum
from .chain import ChainParams, HolsteinPeierls, LocalCoupling, SSHDeformation, TightBinding
from .continuum import Continuum, ContinuumParams, DensityDensity

#: The electron model of each electron config type (the type of Config.electron selects it).
MODELS = {Electron: chain, Continuum: continuum}


def build(cfg, real):
    """(model, traced parameters) of cfg's electron (validated cfg), in dtype ``real``."""
    kind = type(cfg.electron)
    if kind not in MODELS:
        raise ValueError(f"electron={cfg.electron!r}: no model for {kind.__name__}; allowed {[m.__name__ for m in MODELS]}")
    if MODELS[kind] is chain:
        ring = cfg.chain.boundary == "ring"
        mp = chain.params_of(cfg, real)
        lm = cfg.local
        coupling = None
        onsite = cfg.electron.D != 0 or bool(cfg.electron.onsite_defects) or cfg.dynamics == "noise"
        if lm is not None:  # local modes: their Holstein / Peierls couplings replace SSH + deformation
            coupling = HolsteinPeierls(ring, holstein=lm.holstein, peierls=lm.peierls)
            onsite = lm.holstein or bool(cfg.electron.onsite_defects)
            mp = dataclasses.replace(mp, coupling=LocalCoupling(g=jnp.asarray(lm.g, real), alpha=jnp.asarray(lm.alphas(), real)),
                                     omega_max=jnp.asarray(max(lm.omega), real))
        model = TightBinding(N=cfg.chain.N, boundary=cfg.chain.boundary, recoil=cfg.recoil, use_onsite=onsite,
                             save_density=cfg.save_density, coupling=coupling, transport=cfg.transport,
                             kubo=cfg.kubo, save_amplitudes=cfg.save_amplitudes,
                             hold_rotations=cfg.dynamics == "wow")
        return model, mp
    if MODELS[kind] is continuum:
        return continuum.model_of(cfg, real)
    raise ValueError(f"electron={cfg.electron!r}: unknown model")


__all__ = ["MODELS", "ChainParams", "Continuum", "ContinuumParams", "DensityDensity", "HolsteinPeierls",
           "LocalCoupling", "SSHDeformation", "TightBinding", "build", "chain", "continuum"]
