"""The experiments: one module per scientific question, each with ``main(argv) -> int`` and
``build_parser()``. Run them as ``wow run NAME [options]``, ``python -m wow run NAME`` or
``python experiments/NAME.py`` from a checkout; ``wow list`` prints this registry."""

from __future__ import annotations

import importlib

#: Experiment name -> what it answers (the order ``wow list`` prints).
EXPERIMENTS = {
    "dd_momentum": "the main job: where the momentum of k -> -k goes in the paper's own (density-density) model, "
                   "Δn-resolved with quantum modes, against Eq. 30 (same modes), Huang-Rhys and e^{-2W}",
    "backscattering": "P_b, ΔE_b and the coherent / incoherent split against T and N",
    "recoil": "the CM recoil energy of k -> -k against P and N (paper Appendix A)",
    "trajectories": "a few thermal samples frame by frame",
    "table1": "the paper's Table I recomputed, and its 1D-chain analogue against the simulation",
    "elastic_fraction": "the Δn = 0 share of backscattering on the quantum lattice",
    "dd_bragg": "the density-density model's elastic (Debye-Waller) share of Bragg reflection against T and N",
    "dd_recoil": "the density-density model's CM recoil: normal ħ2k vs Umklapp ħ(2k - G), and the recoil energy",
    "troisi_orlandi": "Troisi-Orlandi SSH model of an organic semiconductor (Ehrenfest diffusion)",
    "fit_alpha": "fit α (and D) to a target P_b(T) with errors, through the differentiable tallies",
    "diffusion": "τ_p, D, μ, α = D m*/ħ and the energy exchange against T and the lattice dynamics",
}


def load(name: str):
    """The module of experiment ``name`` (ValueError naming the allowed ones otherwise)."""
    if name not in EXPERIMENTS:
        raise ValueError(f"unknown experiment {name!r}: allowed {', '.join(EXPERIMENTS)}")
    return importlib.import_module(f"{__name__}.{name}")
