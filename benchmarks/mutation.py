"""Mutation check: plant small, plausible bugs one at a time and see whether the tests catch them.

Each mutant is (name, file, the exact original snippet, the mutated snippet, the tests that should
catch it, the bug it models). For each, the repository's files (tracked and untracked-not-ignored,
as they are in the working tree) are copied to a temporary directory, the snippet is replaced
there, and pytest runs there with PYTHONPATH pointing at the copy: the working tree is never
edited. A snippet that no longer occurs exactly once is reported as "stale" (or "ambiguous"), never
silently skipped: the list must follow the code. An unmutated copy is run first (the baseline: all
selected tests must pass, or the run stops).

    flock -x /work/cpu.lock python benchmarks/mutation.py              # all mutants, 2 jobs
    python benchmarks/mutation.py --only jackknife_one_over_G,weighted_w_not_w2 --out -
    python benchmarks/mutation.py --files wow/propagate.py,wow/fock.py --merge   # a portion
    python benchmarks/mutation.py --list

Writes a table (planted, caught, survived, stale; which test caught each) to benchmarks/MUTATION.md
(--out - prints it instead; with --merge the rows of the mutants not run now are kept from the
earlier report, so the list can be run in portions, e.g. one --files group per exclusive lock hold).
Not part of the test suite: it runs the suite's tests many times, with the compilation cache shared
between the runs (the timings of each portion are in MUTATION.md). A survivor is either killed by a
new test or explained in SURVIVOR_NOTES.
"""

from __future__ import annotations

import argparse
import concurrent.futures as cf
import dataclasses
import datetime
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


@dataclasses.dataclass(frozen=True)
class Mutant:
    name: str
    file: str
    original: str
    mutated: str
    tests: tuple[str, ...]  # pytest arguments (paths, node ids, -k expressions)
    bug: str


# Test selections, the new reference tests first (pytest -x stops at the first failure).
STATS = ("tests/test_statistics.py",)
CHANNEL_TESTS = ("tests/test_tally_references.py", "tests/test_statistics.py", "tests/test_ehrenfest.py", "-k",
                 "channel or quasielastic or from_momenta")
OCC_TESTS = ("tests/test_tally_references.py", "tests/test_ehrenfest.py", "-k",
             "running or zone or standing or budget or phonon_momentum or plus_x or thermal_occupations")
LATTICE_TESTS = ("tests/test_tally_references.py", "tests/test_lattice.py", "-k",
                 "not ensemble and not channel and not quasielastic and not from_momenta")
THEORY_TESTS = ("tests/test_theory.py", "-k", "not propagator")
ENSEMBLE_DEB = ("tests/test_tally_references.py::test_ensemble_dE_b_is_the_energy_of_all_backscattered_weight",)
# The propagator, the backends, the Fock bases and the ensemble: the tests against independent references
# (tests/references.py: expm and Magnus of H written out from the model, the free chain's motion by its
# own spring matrix, the electron x Fock problem), the budget and the recoil checks.
LOOP_TESTS = ("tests/test_propagate.py", "-k", "expm or magnus or unitary or backward or bessel")
ORDER4_TESTS = ("tests/test_order.py", "-k", "magnus or fourth or yoshida")
EHRENFEST_LOOP = ("tests/test_ehrenfest.py", "-k", "energy_conserved or hellmann or heavy or weak_coupling")
FRAME_TESTS = ("tests/test_propagate.py::test_reflection_from_one_modified_bond_matches_transfer_matrix",)
RECOIL_TESTS = ("tests/test_propagate.py", "tests/test_core.py", "-k", "frozen_against_expm or given_state_frozen")
RECOIL_TALLY = ("tests/test_experiments.py::test_recoil_reproduces_a7_a8",)
BUDGET_TESTS = ("tests/test_ehrenfest.py", "-k", "budget or phonon_momentum_is_the_impulse or records")
FROZEN_TESTS = ("tests/test_core.py::test_given_state_frozen_equals_expm",)
QUANTUM_TESTS = ("tests/test_quantum.py", "-k", "against_expm or magnus or zero_coupling or huang")
QUANTUM_TALLY = ("tests/test_quantum.py", "-k", "against_expm")
QUANTUM_PPH = ("tests/test_quantum.py::test_ring_crystal_momentum_conserved",)
ENSEMBLE_TESTS = ("tests/test_ensemble.py", "tests/test_core.py", "-k", "vmap_equals_loop or given_states_in_a_batch or coherent")

MUTANTS = [
    # --- wow/tally.py: estimators ------------------------------------------------------------
    Mutant("jackknife_one_over_G", "wow/tally.py", "se = np.sqrt((G - 1) / G *", "se = np.sqrt(1 / G *", STATS,
           "jackknife factor (G-1)/G -> 1/G (errors sqrt(G-1) = 5.6x too small at G = 32)"),
    Mutant("jackknife_factor_dropped", "wow/tally.py", "se = np.sqrt((G - 1) / G *", "se = np.sqrt(", STATS,
           "jackknife factor (G-1)/G dropped"),
    Mutant("jackknife_factor_squared", "wow/tally.py", "se = np.sqrt((G - 1) / G *", "se = np.sqrt(((G - 1) / G) ** 2 *",
           STATS, "jackknife factor squared"),
    Mutant("weighted_w_not_w2", "wow/tally.py", "np.sum(w**2 * (x - m) ** 2)", "np.sum(w * (x - m) ** 2)", STATS,
           "weighted standard error with w instead of w²"),
    Mutant("weighted_no_bessel", "wow/tally.py", "var = n / (n - 1) * np.sum(", "var = np.sum(", STATS,
           "weighted standard error without n/(n-1)"),
    Mutant("weighted_unweighted_mean", "wow/tally.py", "m = float(np.sum(w * x) / np.sum(w))", "m = float(np.mean(x))",
           STATS + ("tests/test_tally_references.py",), "ratio estimator replaced by the plain mean"),
    Mutant("mean_sem_ddof0", "wow/tally.py", "x.std(ddof=1) / np.sqrt(x.size)", "x.std(ddof=0) / np.sqrt(x.size)", STATS,
           "standard error with the biased variance (ddof = 0)"),
    Mutant("mean_sem_over_n", "wow/tally.py", "x.std(ddof=1) / np.sqrt(x.size)", "x.std(ddof=1) / x.size", STATS,
           "standard error divided by n instead of sqrt(n)"),
    Mutant("p_coh_over_n2", "wow/tally.py", "/ (n_tot * (n_tot - 1))", "/ (n_tot * n_tot)", STATS,
           "P_coh normalised by n² instead of n(n-1)"),
    Mutant("p_coh_plugin", "wow/tally.py", "((np.abs(Sb) ** 2).sum(-1) - Ab.sum(-1)) / (n_tot * (n_tot - 1))",
           "(np.abs(Sb) ** 2).sum(-1) / n_tot**2", STATS, "the unbiased P_coh replaced by the plug-in |S/n|²"),
    Mutant("coherent_forward_mask", "wow/tally.py", "Sb, Ab = S_tot[..., back_mask], A_tot[..., back_mask]",
           "Sb, Ab = S_tot[..., ~back_mask], A_tot[..., ~back_mask]", STATS, "coherent split over k > 0"),
    Mutant("dE_b_sign", "wow/tally.py", '"dE_b": E_b - E_in,', '"dE_b": E_in - E_b,', ENSEMBLE_DEB,
           "sign of the backscattered energy change"),
    Mutant("P_b_includes_k0", "wow/tally.py", "back = p.k < 0\n", "back = p.k <= 0\n", ENSEMBLE_DEB,
           "P_b counts the k = 0 component"),
    # --- wow/channels.py ---------------------------------------------------------------------
    Mutant("hw_at_qa", "wow/channels.py", "jnp.sin((k_in - k) * a / 2)", "jnp.sin((k_in - k) * a)", CHANNEL_TESTS,
           "ħω(q) at the wrong argument |sin(qa)| (agrees with |sin(qa/2)| at q = 2k0, k0 a = π/3)"),
    Mutant("hw_at_k_in_plus_k", "wow/channels.py", "jnp.sin((k_in - k) * a / 2)", "jnp.sin((k_in + k) * a / 2)",
           CHANNEL_TESTS, "momentum transfer q = <k>_0 + k' (sign)"),
    Mutant("hw_at_2k0", "wow/channels.py", "jnp.sin((k_in - k) * a / 2)", "jnp.sin(k_in * a)", CHANNEL_TESTS,
           "ħω evaluated at q = 2<k>_0 for every k' (right only at k' = -<k>_0)"),
    Mutant("quasi_signed", "wow/channels.py", "jnp.where(jnp.abs(dE) < hw, 1,", "jnp.where(dE < hw, 1,", CHANNEL_TESTS,
           "quasielastic window tested on ΔE instead of |ΔE| (sign)"),
    Mutant("inelastic_superelastic_swapped", "wow/channels.py", "jnp.where(dE < 0, 2, 3)", "jnp.where(dE > 0, 2, 3)",
           CHANNEL_TESTS, "emission and absorption swapped"),
    Mutant("resolution_one_sigma", "wow/channels.py", "return 2 * jnp.sqrt(jnp.sum((eps - E) ** 2",
           "return jnp.sqrt(jnp.sum((eps - E) ** 2", CHANNEL_TESTS, "default δ one energy std instead of two"),
    Mutant("channels_back_includes_k0", "wow/channels.py", "back = jnp.broadcast_to(k, w0.shape) < 0",
           "back = jnp.broadcast_to(k, w0.shape) <= 0", CHANNEL_TESTS, "channel weights count k = 0"),
    Mutant("fractions_unweighted", "wow/channels.py", "out[c] = weighted_mean_sem(x, np.where(ok, P_b, 0.0))",
           "out[c] = weighted_mean_sem(x, np.where(ok, 1.0, 0.0))", CHANNEL_TESTS,
           "ensemble fractions as unweighted means of per-sample shares"),
    # --- wow/occupations.py ------------------------------------------------------------------
    Mutant("running_direction_sign", "wow/occupations.py", "alpha = (U + 1j * V / w) / 2", "alpha = (U - 1j * V / w) / 2",
           OCC_TESTS, "running-wave amplitude with the wrong direction of travel"),
    Mutant("phonon_momentum_sign", "wow/occupations.py", "np.isclose(np.abs(q), np.pi / chain.a), 0.0, q)",
           "np.isclose(np.abs(q), np.pi / chain.a), 0.0, -q)", OCC_TESTS, "sign of the crystal momentum ħq"),
    Mutant("zone_boundary_momentum", "wow/occupations.py",
           "hq = HBAR * np.where(np.isclose(np.abs(q), np.pi / chain.a), 0.0, q)", "hq = HBAR * q", OCC_TESTS,
           "the q = π/a standing wave given crystal momentum π/a"),
    Mutant("running_omega_off_by_one", "wow/occupations.py", "np.sin(np.pi * np.arange(1, N) / N)",
           "np.sin(np.pi * np.arange(0, N - 1) / N)", OCC_TESTS, "mode index off by one in ω_q"),
    Mutant("standing_plus_half", "wow/occupations.py", "return E, E / (HBAR * w) - 0.5", "return E, E / (HBAR * w) + 0.5",
           OCC_TESTS, "n_j = E/ħω + 1/2 (zero point with the wrong sign)"),
    Mutant("lattice_energy_open_bonds_on_ring", "wow/occupations.py",
           'b = jnp.roll(lat.u, -1) - lat.u if chain.boundary == "ring" else lat.u[1:] - lat.u[:-1]',
           "b = lat.u[1:] - lat.u[:-1]", OCC_TESTS, "ring energy without the closing bond"),
    Mutant("budget_cm_sign", "wow/occupations.py", '"dP_cm": -(dP_e + dP_ph)', '"dP_cm": -(dP_e - dP_ph)', OCC_TESTS,
           "CM budget with the phonon momentum's sign flipped"),
    Mutant("budget_dn_final_only", "wow/occupations.py", '"dn": jnp.sum(nf - n0)', '"dn": jnp.sum(nf)', OCC_TESTS,
           "quanta created counted from the final state only"),
    # --- wow/lattice.py ----------------------------------------------------------------------
    Mutant("thermal_factor_x_not_half", "wow/lattice.py", "x = HBAR * omega / (2.0 * KB * safe_T)",
           "x = HBAR * omega / (KB * safe_T)", LATTICE_TESTS, "coth(ħω/k_BT) instead of coth(ħω/2k_BT)"),
    Mutant("open_frequency_off_by_one", "wow/lattice.py", "return w0 * np.sin(j * np.pi / (2 * chain.N))",
           "return w0 * np.sin((j + 1) * np.pi / (2 * chain.N))", LATTICE_TESTS, "open-chain mode index off by one"),
    Mutant("open_mode_shape", "wow/lattice.py", "np.cos(j * np.pi * (n + 0.5) / N)", "np.cos(j * np.pi * (n + 1) / N)",
           LATTICE_TESTS, "open-chain eigenvector with the wrong phase"),
    Mutant("fock_factor_half", "wow/lattice.py", "x = HBAR * w / (KB * jnp.maximum(T, 1e-300))",
           "x = HBAR * w / (2 * KB * jnp.maximum(T, 1e-300))", LATTICE_TESTS, "Fock sampler at twice the temperature"),
    Mutant("fock_mean_boltzmann", "wow/lattice.py", "return 1.0 / np.expm1(x)", "return 1.0 / np.exp(x)", LATTICE_TESTS,
           "Bose-Einstein mean replaced by the Boltzmann factor"),
    Mutant("cm_std_without_N", "wow/lattice.py", "jnp.sqrt(chain.N * chain.mass_ev * KB * T)",
           "jnp.sqrt(chain.mass_ev * KB * T)", LATTICE_TESTS, "CM momentum spread without the N (A10)"),
    Mutant("harmonic_motion_sign", "wow/lattice.py", "Pt = s.P * c - M * w * s.Q * sn", "Pt = s.P * c + M * w * s.Q * sn",
           LATTICE_TESTS, "sign in the exact harmonic motion"),
    Mutant("quantum_P_variance", "wow/lattice.py", "HBAR * M * w / 2 * c", "HBAR * M * w * c", LATTICE_TESTS,
           "quantum momentum variance without the 1/2"),
    # --- wow/theory.py -----------------------------------------------------------------------
    Mutant("recoil_sign", "wow/theory.py", "return 2.0 * hk * (P + hk) / (N * M)", "return 2.0 * hk * (P - hk) / (N * M)",
           THEORY_TESTS, "A8 with the wrong sign of ħk"),
    Mutant("reflection_half_angle", "wow/theory.py", "return num / (num + 4.0 * x2 * np.sin(kk * a) ** 2)",
           "return num / (num + 4.0 * x2 * np.sin(kk * a / 2) ** 2)", THEORY_TESTS, "closed-form R(k) at ka/2"),
    Mutant("debye_waller_dims_swapped", "wow/theory.py", "(3.0 if dim == 3 else 1.0)", "(1.0 if dim == 3 else 3.0)",
           THEORY_TESTS, "2W = q²<u²>/3 applied in 1D"),
    Mutant("huang_rhys_bessel_arg", "wow/theory.py",
           "z = 2 * lam * np.sqrt(nbar * (nbar + 1))\n    log_f", "z = lam * np.sqrt(nbar * (nbar + 1))\n    log_f",
           THEORY_TESTS, "Bessel argument without its factor 2"),
    Mutant("theory_occupations_half", "wow/theory.py", "x = HBAR * w / (KB * T)\n    return np.exp(-x)",
           "x = HBAR * w / (2 * KB * T)\n    return np.exp(-x)", THEORY_TESTS, "Bose-Einstein at twice the temperature"),
    Mutant("msd_ring_closed_form", "wow/theory.py", "kT * (N**2 - 1) / (12 * N * K)", "kT * (N**2 + 1) / (12 * N * K)",
           THEORY_TESTS, "ring <u²> closed form off by 2/(N²-1)"),
    # --- wow/propagate.py: the one loop ----------------------------------------------------------
    Mutant("yoshida_w0_sign", "wow/propagate.py", "4: (1 / (2 - _CBRT2), -_CBRT2 / (2 - _CBRT2),",
           "4: (1 / (2 - _CBRT2), _CBRT2 / (2 - _CBRT2),", ORDER4_TESTS, "Yoshida's middle weight without its minus sign"),
    Mutant("substep_h_next_is_h", "wow/propagate.py", "h_next=hs[(i + 1) % len(hs)]", "h_next=hs[i]", ORDER4_TESTS,
           "the next sub-step's length taken as this one's (order 4 moves the lattice (h + h_next)/2)"),
    Mutant("static_join_drops_pending_half", "wow/propagate.py", "model.join(layers[i - 1].trail, layers[i])",
           "model.join(None, layers[i])", LOOP_TESTS, "static lattice: the pending half layer never merged"),
    Mutant("static_prepare_unnegated", "wow/propagate.py", "model.close(z, _negate(last))", "model.close(z, last)",
           LOOP_TESTS, "static lattice: the opening half layer applied forwards"),
    Mutant("moving_join_drops_pending_half", "wow/propagate.py", "model.join(trail, lay)", "model.join(None, lay)",
           LOOP_TESTS, "moving lattice: the pending half layer never merged"),
    Mutant("whole_without_close", "wow/propagate.py", "return model.close(model.advance(z, lay, join, x[\"fixed\"]), lay.trail)",
           "return model.advance(z, lay, join, x[\"fixed\"])", EHRENFEST_LOOP, "ψ-whole backends: the trailing half layer dropped"),
    Mutant("first_frame_last", "wow/propagate.py", "jnp.concatenate([f[:, None], jnp.moveaxis(r, 0, 1)], axis=1)",
           "jnp.concatenate([jnp.moveaxis(r, 0, 1), f[:, None]], axis=1)", FRAME_TESTS, "the t = 0 frame recorded last"),
    Mutant("force_sign", "wow/propagate.py", "        return jax.tree_util.tree_map(jnp.negative, grad)\n    return force",
           "        return grad\n    return force", EHRENFEST_LOOP, "the Ehrenfest force +∂E/∂u"),
    # --- wow/models/chain.py: the chain electron -------------------------------------------------
    Mutant("pade_numerator", "wow/models/chain.py", "n = y * (15 - y2)", "n = y * (15 - 2 * y2)", ORDER4_TESTS,
           "rational rotation with a wrong Padé coefficient (angle off at O(θ³))"),
    Mutant("rotate_pairs_sign", "wow/models/chain.py", "return c * Ar - s * Bi, c * Ai + s * Br, c * Br - s * Ai, c * Bi + s * Ar",
           "return c * Ar + s * Bi, c * Ai + s * Br, c * Br - s * Ai, c * Bi + s * Ar", LOOP_TESTS,
           "even-bond rotation not unitary (one sign)"),
    Mutant("odd_left_bond_fill", "wow/models/chain.py", "shift_sites(c, -1, ring, fill=1.0)", "shift_sites(c, -1, ring, fill=0.0)",
           LOOP_TESTS, "open chain: the missing bond left of site 0 is a zero rotation, not the identity"),
    Mutant("odd_recoil_full_angle", "wow/models/chain.py", "odd = rotation(to * (k / 2 if self.recoil else k))",
           "odd = rotation(to * k)", LOOP_TESTS, "recoil on: the two odd half layers around R each a full layer"),
    Mutant("recoil_phase_sign", "wow/models/chain.py", "jnp.exp(-1j * (Q[:, None] - HBAR * p.k[None, :]) ** 2",
           "jnp.exp(-1j * (Q[:, None] + HBAR * p.k[None, :]) ** 2", RECOIL_TESTS, "recoil term (Q + ħk)² (sign of ħk)"),
    Mutant("recoil_no_half", "wow/models/chain.py", "inv_2NM=f(1.0 / (2 * c.N * c.mass_ev))", "inv_2NM=f(1.0 / (c.N * c.mass_ev))",
           RECOIL_TESTS, "CM kinetic energy without the 1/2"),
    Mutant("ssh_sign", "wow/models/chain.py", "t = p.t0 - p.alpha * b + _row(p.t_static, b.ndim)",
           "t = p.t0 + p.alpha * b + _row(p.t_static, b.ndim)", LOOP_TESTS, "SSH coupling with the wrong sign"),
    Mutant("deformation_ring_shift", "wow/models/chain.py", "return (jnp.roll(b, 1, axis=-1) + b) / (2 * a)",
           "return (jnp.roll(b, -1, axis=-1) + b) / (2 * a)", LOOP_TESTS,
           "ring: the deformation potential's left bond shifted by two sites (b_{n+1} + b_n)"),
    Mutant("deformation_open_shift", "wow/models/chain.py", "return (_pad_sites(b, 1, 0) + _pad_sites(b, 0, 1)) / (2 * a)",
           "return (_pad_sites(b, 0, 1) + _pad_sites(b, 0, 1)) / (2 * a)", LOOP_TESTS,
           "open chain: the deformation potential reads bond n twice (one bond shifted by one site)"),
    Mutant("bond_defect_index", "wow/models/chain.py", "t_static[int(b)] += dt_b", "t_static[int(b) - 1] += dt_b", LOOP_TESTS,
           "a bond defect placed on the bond before"),
    Mutant("site_defect_index", "wow/models/chain.py", "eps_static[int(n)] += de", "eps_static[(int(n) + 1) % c.N] += de",
           LOOP_TESTS, "a site defect placed on the next site"),
    Mutant("energy_half", "wow/models/chain.py", "e = -2.0 * (te * (Ar * Br + Ai * Bi)", "e = -1.0 * (te * (Ar * Br + Ai * Bi)",
           EHRENFEST_LOOP, "the bond energy (and the Ehrenfest force from it) halved"),
    Mutant("k_mean_abs", "wow/models/chain.py", '"k_mean": wk @ p.k / norm', '"k_mean": wk @ jnp.abs(p.k) / norm', FRAME_TESTS,
           "frame <k> from |k| (the <P_R> trace then misses the reflection)"),
    Mutant("quantum_weights_forward", "wow/models/chain.py", "jnp.where(_row(p.k, wk.ndim) < 0, wk, 0.0)",
           "jnp.where(_row(p.k, wk.ndim) > 0, wk, 0.0)", QUANTUM_TALLY, "per-Fock-state backscattered weight at k > 0"),
    Mutant("recoil_energy_sign", "wow/models/chain.py", "jnp.sum(w * (Q - HBAR * p.k) ** 2) * p.inv_2NM",
           "jnp.sum(w * (Q + HBAR * p.k) ** 2) * p.inv_2NM", RECOIL_TALLY, "dE_cm from (Q + ħk)²"),
    Mutant("dP_e_sign", "wow/models/chain.py", 'out["dP_e"] = HBAR * (out["k_f"] - jnp.sum(p.k * w0) / jnp.sum(w0))',
           'out["dP_e"] = HBAR * (jnp.sum(p.k * w0) / jnp.sum(w0) - out["k_f"])', BUDGET_TESTS, "electron momentum change with its sign flipped"),
    # --- wow/dynamics: the lattice backends ------------------------------------------------------
    Mutant("ehrenfest_kick_sign", "wow/dynamics/ehrenfest.py", "return SiteState(u=lat.u, v=lat.v + f * (h / M))",
           "return SiteState(u=lat.u, v=lat.v - f * (h / M))", EHRENFEST_LOOP, "Ehrenfest kick against the force"),
    Mutant("ehrenfest_full_kicks", "wow/dynamics/ehrenfest.py", "h = sub.h / 2\n", "h = sub.h\n", EHRENFEST_LOOP,
           "Verlet with full-step kicks and drifts (the lattice runs twice as fast)"),
    Mutant("ehrenfest_P_ph_open", "wow/dynamics/ehrenfest.py", 'self.chain.boundary == "ring":\n            out["P_ph"]',
           'self.chain.boundary == "open":\n            out["P_ph"]', BUDGET_TESTS, "the ring's frames without the phonons' crystal momentum"),
    Mutant("prescribed_start_full", "wow/dynamics/prescribed.py", "return self.free.flow(lat0, sub.h / 2, p.omega2)",
           "return self.free.flow(lat0, sub.h, p.omega2)", ORDER4_TESTS, "order 4: the lattice starts a full sub-step ahead"),
    Mutant("prescribed_finish_sign", "wow/dynamics/prescribed.py", "return self.free.flow(lat, -sub.h / 2, p.omega2)",
           "return self.free.flow(lat, sub.h / 2, p.omega2)", ORDER4_TESTS, "order 4: the final lattice half a step late"),
    Mutant("frozen_keeps_velocity", "wow/dynamics/frozen.py", "return SiteState(u=sites.u, v=jnp.zeros_like(sites.v))",
           "return SiteState(u=sites.u, v=sites.v)", FROZEN_TESTS, "a frozen lattice that keeps its thermal velocities"),
    Mutant("lattice_omega2_twice", "wow/dynamics/base.py", "omega2=jnp.asarray(chain.spring / chain.mass_ev, real)",
           "omega2=jnp.asarray(2 * chain.spring / chain.mass_ev, real)", LOOP_TESTS, "lattice flow with 2K/M"),
    Mutant("quantum_phase_sign", "wow/dynamics/quantum.py", "np.diag(np.exp(-1j * wi * (np.arange(len(x)) + 0.5) * tau))",
           "np.diag(np.exp(1j * wi * (np.arange(len(x)) + 0.5) * tau))", QUANTUM_TESTS, "phonon phases e^{+iωnτ}"),
    Mutant("quantum_ell_no_2", "wow/dynamics/quantum.py", "ell = np.sqrt(HBAR / (2 * c.mass_ev * w))",
           "ell = np.sqrt(HBAR / (c.mass_ev * w))", QUANTUM_TESTS, "zero-point length without the 2"),
    Mutant("quantum_half_full_swapped", "wow/dynamics/quantum.py", "jnp.where(lat.i == 0, a, b), p.U_half, p.U_full)",
           "jnp.where(lat.i == 0, a, b), p.U_full, p.U_half)", QUANTUM_TESTS, "first and later phonon layers swapped"),
    Mutant("quantum_view_full", "wow/dynamics/quantum.py", "lambda e_: self._phonons(e_, p.U_half, ops), lambda e_: e_, e)",
           "lambda e_: self._phonons(e_, p.U_full, ops), lambda e_: e_, e)", QUANTUM_TESTS, "the pending phonon half applied whole"),
    Mutant("quantum_P_ph_sign", "wow/dynamics/quantum.py", "HBAR * q * (-2.0 * jnp.imag(z))", "HBAR * q * (2.0 * jnp.imag(z))",
           QUANTUM_PPH, "quantum phonon momentum <n_+ - n_-> with the wrong sign"),
    Mutant("quantum_running_start_unconjugated", "wow/dynamics/quantum.py", "tuple(jnp.conj(W.T) for W in p.W)",
           "tuple(W.T for W in p.W)", QUANTUM_TESTS, "running initial Fock states built with Wᵀ instead of W†"),
    Mutant("quantum_tally_standing", "wow/dynamics/quantum.py",
           'return fock.apply_pairs(c, self.pairs, p.W) if self.basis == "running" else c', "return c", QUANTUM_TALLY,
           "Δn tallies in the standing basis when the running basis is asked for"),
    # --- wow/fock.py ------------------------------------------------------------------------------
    Mutant("running_wave_direction", "wow/fock.py", "(-1j) ** (npl - r) * (1j) ** (nmi - s)", "(1j) ** (npl - r) * (-1j) ** (nmi - s)",
           QUANTUM_PPH + ("tests/test_quantum.py::test_running_wave_basis_change",), "running waves a_± swapped (the direction of travel)"),
    Mutant("ladder_no_sqrt", "wow/fock.py", "x[..., 1:] * sq.reshape((1,) * (x.ndim - 1) + (d - 1,))", "x[..., 1:]",
           QUANTUM_PPH, "a|n> without the √n"),
    Mutant("ring_wavevector_half", "wow/fock.py", "return 2 * math.pi * min(j, chain.N - j) / (chain.N * chain.a)",
           "return math.pi * min(j, chain.N - j) / (chain.N * chain.a)", QUANTUM_PPH, "ring |q| = πj/(Na)"),
    Mutant("half_axis_missing", "wow/fock.py", "return modes.index(chain.N // 2) if chain.N // 2 in modes else -1", "return -1",
           QUANTUM_PPH, "the π/a mode's crystal momentum left out of P_ph"),
    Mutant("dvr_wrong_offdiagonal", "wow/fock.py", "off = np.sqrt(np.arange(1, d, dtype=float))", "off = np.arange(1, d, dtype=float)",
           QUANTUM_TESTS, "X = a + a† with n instead of √n"),
    # --- wow/ensemble.py --------------------------------------------------------------------------
    Mutant("ensemble_Q_sign", "wow/ensemble.py", "Q = starts.P_R + HBAR * k0", "Q = starts.P_R - HBAR * k0", RECOIL_TESTS,
           "total momentum P_R - ħk0"),
    Mutant("ensemble_P_R_trace_sign", "wow/ensemble.py", 'frames["P_R"] - (frames["P_ph"] - frames["P_ph"][:, :1])',
           'frames["P_R"] + (frames["P_ph"] - frames["P_ph"][:, :1])', BUDGET_TESTS, "<P_R> trace adds the phonon momentum"),
    Mutant("ensemble_dE_b_unweighted", "wow/ensemble.py", 'stats["dE_b"] = weighted_mean_sem(per_sample["dE_b"], per_sample["P_b"])',
           'stats["dE_b"] = mean_sem(per_sample["dE_b"])', ENSEMBLE_DEB, "ΔE_b as the unweighted mean over samples"),
    Mutant("ensemble_coherent_forward", "wow/ensemble.py", "back = np.tile(k_grid(cfg.chain.N, cfg.chain.a) < 0,",
           "back = np.tile(k_grid(cfg.chain.N, cfg.chain.a) > 0,", ENSEMBLE_TESTS, "the coherent split over k > 0"),
    Mutant("ensemble_fixed_cm_ignored", "wow/ensemble.py", "P_R = jnp.full_like(P_R, P_R_fixed)", "P_R = P_R", RECOIL_TALLY,
           "cm_momentum ignored (the CM momentum drawn anyway)"),
    Mutant("ensemble_given_P_not_divided", "wow/ensemble.py", 'to_sites(take(given["P"]).astype(real)) / chain.mass_ev',
           'to_sites(take(given["P"]).astype(real))', ENSEMBLE_TESTS, "given mode momenta used as velocities"),
    Mutant("ensemble_keys_shifted", "wow/ensemble.py", "keys = jax.random.split(jax.random.PRNGKey(seed), n_samples)",
           "keys = jax.random.split(jax.random.PRNGKey(seed + 1), n_samples)", ENSEMBLE_TESTS,
           "sample s not drawn from key s of split(PRNGKey(seed), n)"),
    Mutant("ensemble_coherent_last_chunk", "wow/ensemble.py", "S += np.asarray(s_, complex)", "S = np.asarray(s_, complex)",
           ENSEMBLE_TESTS, "the coherent sums keep only the last chunk"),
]

#: Why a survivor is harmless or where it is caught instead (name -> note), kept with the list.
SURVIVOR_NOTES: dict[str, str] = {
    "ensemble_coherent_last_chunk": "survived the 20:10 run (the chunked coherent test compared P_coh values "
    "too small for its tolerance); test_identical_samples_are_fully_coherent now runs in three chunks, where "
    "a coherent sum of the last chunk alone cannot give P_coh = P_tot (not re-run yet)",
}


def repo_files(root: Path) -> list[str]:
    out = subprocess.run(["git", "ls-files", "-co", "--exclude-standard"], cwd=root, capture_output=True, text=True,
                         check=True).stdout.split("\n")
    return [f for f in out if f and (root / f).is_file()]


def make_copy(root: Path, files: list[str], dest: Path):
    for f in files:
        target = dest / f
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(root / f, target)


def apply(dest: Path, m: Mutant) -> str | None:
    """Plant the mutant in the copy; return None, or 'stale'/'ambiguous'."""
    path = dest / m.file
    if not path.is_file():
        return "stale"
    text = path.read_text()
    count = text.count(m.original)
    if count != 1:
        return "stale" if count == 0 else "ambiguous"
    path.write_text(text.replace(m.original, m.mutated))
    return None


def run_pytest(dest: Path, tests, timeout: float, cache: str | None, stop: bool = True) -> tuple[int | None, str, float]:
    env = dict(os.environ, PYTHONPATH=str(dest), JAX_PLATFORMS="cpu", OMP_NUM_THREADS="1",
               OPENBLAS_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1")
    if cache:  # compiled programs keyed by their HLO: a mutant that changes a program misses the cache
        env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    cmd = [sys.executable, "-m", "pytest", *(["-x"] if stop else []), "-q", "-rfE", "-p", "no:cacheprovider", *tests]
    t0 = time.perf_counter()
    try:
        p = subprocess.run(cmd, cwd=dest, env=env, capture_output=True, text=True, timeout=timeout)
        return p.returncode, p.stdout + p.stderr, time.perf_counter() - t0
    except subprocess.TimeoutExpired as e:
        out = (e.stdout or b"").decode() if isinstance(e.stdout, bytes) else (e.stdout or "")
        return None, out, time.perf_counter() - t0


def failures(output: str) -> str:
    """The failing tests (file::name[param]) from pytest's short summary, comma-separated."""
    return ", ".join(node.split("/")[-1] for node in re.findall(r"^(?:FAILED|ERROR) (\S+)", output, re.M))


def failure_message(output: str) -> str:
    """The first assertion message line (for the table: how the test saw the bug)."""
    m = re.search(r"^E\s+(\S.*)$", output, re.M)
    return m.group(1).strip()[:110].replace("|", "\\|") if m else ""


def one(root: Path, files: list[str], m: Mutant | None, tests, timeout: float, cache: str | None,
        stop: bool = True, logs: str | None = None) -> dict:
    with tempfile.TemporaryDirectory(prefix="wow-mutant-") as tmp:
        dest = Path(tmp)
        make_copy(root, files, dest)
        if m is not None:
            bad = apply(dest, m)
            if bad:
                return {"result": bad, "by": "", "msg": "", "s": 0.0}
        rc, out, secs = run_pytest(dest, tests, timeout, cache, stop)
    if logs:
        Path(logs, f"{m.name}.log" if m else f"baseline-{'_'.join(tests)[:60].replace('/', '_')}.log").write_text(out)
    if rc is None:
        return {"result": "caught (timeout)", "by": "", "msg": f"over {timeout:g} s", "s": secs}
    if rc == 0:
        return {"result": "survived", "by": "", "msg": "", "s": secs}
    if rc == 1:
        return {"result": "caught", "by": failures(out), "msg": failure_message(out), "s": secs}
    tail = out.strip().splitlines()[-3:]
    return {"result": f"error (pytest rc {rc})", "by": "", "msg": " / ".join(tail)[:200], "s": secs}


RESULTS = ("caught", "survived", "stale", "ambiguous", "error")


def cells(line: str) -> list[str]:
    """The cells of one table row (a '|' inside a cell is written '\\|')."""
    return [c.strip() for c in re.split(r"(?<!\\)\|", line.strip())[1:-1]]


def old_rows(path: Path) -> tuple[dict, list]:
    """(mutant name -> its table row, the run lines) of an earlier report, for --merge."""
    if not path.is_file():
        return {}, []
    rows, runs = {}, []
    names = {m.name for m in MUTANTS}
    for line in path.read_text().splitlines():
        if line.startswith("- `python benchmarks/mutation.py"):
            runs.append(line)
        elif line.startswith("| ") and cells(line) and cells(line)[0] in names:
            rows[cells(line)[0]] = line
    return rows, runs


def table(rows, wall, jobs, commit, argv, merged=None, runs=()) -> str:
    """The report: this run's rows, with --merge the rows of mutants not run now kept from the
    earlier report (in the order of MUTANTS), and the totals over all of them."""
    esc = lambda x: str(x).replace("|", "\\|")
    now = {m.name: f"| {m.name} | {m.file} | {esc(m.bug)} | {r['result']} | {esc(r['by'])} | {r['msg']} | {r['s']:.0f} |"
           for m, r in rows}
    lines = [now.get(m.name) or (merged or {}).get(m.name) for m in MUTANTS]
    lines = [ln for ln in lines if ln]
    res = [cells(ln)[3] for ln in lines]
    n = {k: sum(1 for r in res if r.startswith(k)) for k in RESULTS}
    planted = len(res) - n["stale"] - n["ambiguous"]
    run = (f"- `{' '.join(argv)}` — {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, git {commit}, "
           f"{jobs} parallel jobs, {len(rows)} mutants, wall {wall / 60:.1f} min.")
    L = ["# Mutation check", "", "Runs (with --merge, each run replaces its mutants' rows):", "", *runs, run, "",
         f"**planted {planted}, caught {n['caught']}, survived {n['survived']}, stale {n['stale'] + n['ambiguous']}, "
         f"errors {n['error']}** ({100 * n['caught'] / max(planted, 1):.0f}% caught).", ""]
    by_file = {}
    for ln, r in zip(lines, res):
        f = cells(ln)[1]
        by_file.setdefault(f, [0, 0])
        by_file[f][0] += 1
        by_file[f][1] += r.startswith("caught")
    L += ["| file | planted | caught |", "|---|---|---|"] + [f"| {f} | {a} | {b} |" for f, (a, b) in by_file.items()] + [""]
    L += ["| mutant | file | planted bug | result | caught by | first assertion | s |", "|---|---|---|---|---|---|---|"]
    L += lines
    surv = [m for m in MUTANTS if any(ln.startswith(f"| {m.name} |") and cells(ln)[3] == "survived" for ln in lines)]
    if surv:
        L += ["", "Survivors:", ""]
        L += [f"- {m.name}: {SURVIVOR_NOTES.get(m.name, 'NOT EXPLAINED: needs a test or a note')}" for m in surv]
    return "\n".join(L) + "\n"


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--jobs", type=int, default=2, help="mutants run in parallel (default 2)")
    ap.add_argument("--only", default="", help="comma-separated mutant names")
    ap.add_argument("--timeout", type=float, default=400.0, help="seconds per mutant's pytest run")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "MUTATION.md"), help="report file, '-' for stdout")
    ap.add_argument("--list", action="store_true", help="list the mutants and exit")
    ap.add_argument("--merge", action="store_true",
                    help="keep the earlier report's rows of the mutants not run now (to run the list in portions)")
    ap.add_argument("--files", default="", help="comma-separated source files: only the mutants planted in them")
    ap.add_argument("--no-baseline", action="store_true", help="skip the unmutated run")
    ap.add_argument("--no-cache", action="store_true", help="no shared JAX compilation cache between the runs")
    ap.add_argument("--tests", default=None,
                    help="run these pytest arguments for every selected mutant instead of its own (e.g. to see "
                         "what the suite without some file catches)")
    ap.add_argument("--logs", default=None, help="directory to keep each mutant's pytest output in")
    ap.add_argument("--all-failures", action="store_true",
                    help="run each selection to the end (no -x) and list every test that fails")
    args = ap.parse_args(argv)
    names = {m.name for m in MUTANTS}
    assert len(names) == len(MUTANTS), "duplicate mutant names"
    if args.list:
        for m in MUTANTS:
            print(f"{m.name:34s} {m.file:20s} {m.bug}")
        return 0
    sel = MUTANTS
    if args.only:
        want = [s for s in args.only.split(",") if s]
        unknown = sorted(set(want) - names)
        if unknown:
            ap.error(f"--only: unknown mutant(s) {unknown}; see --list")
        sel = [m for m in MUTANTS if m.name in want]
    if args.files:
        files_ = [f for f in args.files.split(",") if f]
        unknown = sorted(set(files_) - {m.file for m in MUTANTS})
        if unknown:
            ap.error(f"--files: no mutants in {unknown}; see --list")
        sel = [m for m in sel if m.file in files_]
    if args.logs:
        Path(args.logs).mkdir(parents=True, exist_ok=True)
    if args.tests is not None:
        sel = [dataclasses.replace(m, tests=tuple(shlex.split(args.tests))) for m in sel]
    if args.jobs < 1:
        ap.error(f"--jobs={args.jobs}: allowed integers >= 1")
    files = repo_files(ROOT)
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    dirty = [ln for ln in subprocess.run(["git", "status", "--porcelain"], cwd=ROOT, capture_output=True,
                                         text=True).stdout.splitlines() if not ln.endswith("benchmarks/MUTATION.md")]
    commit += " (+ uncommitted changes)" if dirty else ""
    cache_dir = None if args.no_cache else tempfile.mkdtemp(prefix="wow-mutation-jax-cache-")
    t0 = time.perf_counter()
    try:
        return _run(args, sel, files, commit, cache_dir, t0, argv)
    finally:
        if cache_dir:
            shutil.rmtree(cache_dir, ignore_errors=True)


def _run(args, sel, files, commit, cache_dir, t0, argv):
    if not args.no_baseline:
        union = []
        for m in sel:  # the baseline runs every selection once, unmutated
            if m.tests not in union:
                union.append(m.tests)
        with cf.ThreadPoolExecutor(args.jobs) as ex:
            base = list(ex.map(lambda t: one(ROOT, files, None, t, args.timeout, cache_dir), union))
        bad = [(t, b) for t, b in zip(union, base) if b["result"] != "survived"]
        if bad:
            for t, b in bad:
                print(f"baseline FAILS for {' '.join(t)}: {b['result']} {b['by']} {b['msg']}", file=sys.stderr)
            return 1
        print(f"baseline: {len(union)} test selections pass unmutated ({time.perf_counter() - t0:.0f} s)", flush=True)
    with cf.ThreadPoolExecutor(args.jobs) as ex:
        futs = {ex.submit(one, ROOT, files, m, m.tests, args.timeout, cache_dir, not args.all_failures, args.logs): m
                for m in sel}
        done = {}
        cmd = ["python", "benchmarks/mutation.py", *(argv if argv is not None else sys.argv[1:])]
        merged, runs = old_rows(Path(args.out)) if args.merge and args.out != "-" else ({}, [])
        for f in cf.as_completed(futs):
            m = futs[f]
            done[m.name] = f.result()
            r = done[m.name]
            print(f"{m.name:34s} {r['result']:18s} {r['by']} ({r['s']:.0f} s)", flush=True)
            if args.out != "-":  # the report so far (a run stopped midway keeps what it found)
                part = [(x, done[x.name]) for x in sel if x.name in done]
                Path(args.out).write_text(table(part, time.perf_counter() - t0, args.jobs, commit + " (partial)",
                                                cmd, merged, runs))
    rows = [(m, done[m.name]) for m in sel]
    wall = time.perf_counter() - t0
    text = table(rows, wall, args.jobs, commit, cmd, merged, runs)
    if args.out == "-":
        print(text)
    else:
        Path(args.out).write_text(text)
        print(f"wrote {args.out} ({wall / 60:.1f} min)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
