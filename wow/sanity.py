"""Physical and numerical sanity of a run, checked before any work (``check``, called by
wow.validate) and after it (``check_finite``, called by wow.run).

Accuracy bounds (stated, refused beyond):
* bond angle θ = t_max dt/ħ <= MAX_BOND_ANGLE. The Strang splitting of the even and odd bonds shifts
  the band energies by ~0.13 θ² t0 (measured against expm on a ring of 64: 1.2e-4 t0 at θ = 0.03,
  8e-3 t0 at θ = 0.25, 3.3e-2 at 0.5); t_max = t0 + |α| · 5 rms bond stretches + the largest bond
  defect.
* ω_max dt <= MAX_PHONON_ANGLE: the electron sees the lattice at the mid-step (a midpoint rule for the
  fastest phonon's modulation, relative error ~(ω dt)²/24).
* Atoms that pass each other (a bond stretched by -a) make the harmonic chain meaningless: refused
  when a bond's rms stretch exceeds a / CROSSING_SIGMAS (the thermal chance per bond < 1e-15).
* Hoppings t0 - α b that change sign (a bond stretched by t0/α) turn the band upside down locally:
  allowed (a physicist may mean it), but ``sign_change_fraction`` estimates the share of bonds that
  do from the thermal variances, and wow.run warns when it exceeds SIGN_CHANGE_WARN.
* CM momentum: |cm_momentum|/(NM) may not exceed the fastest electron, 2 t0 a/ħ (beyond it the recoil
  phase per step is numerically meaningless and, in float32, overflows).

Counted during the run (``watch``, on the device inside the time loop, at the lattice of every k-th
step, k = ``watch_every``: at most 32, fewer where the lattice moves fast; each look counts for its
k steps; a frozen lattice is looked at once and counted every step): per sample the bond·steps whose
hopping had the opposite sign of its static value (``sign_flips``: wow.run warns when any) and the
smallest bond stretch seen (``min_bond``; below -a two atoms have passed each other: ``crossed``,
refused with CrossingError unless ``wow.run(..., allow_crossing=True)``, which warns instead).
"""

from __future__ import annotations

import math
import os

import numpy as np

from .errors import ConfigError
from .units import HBAR, KB

MAX_BOND_ANGLE = 0.25
MAX_PHONON_ANGLE = 0.5
CROSSING_SIGMAS = 8.0
SIGN_CHANGE_WARN = 1e-6
#: The time loop counts the steps of a frame in int32.
MAX_STEPS_PER_FRAME = 2**31 - 1
#: Tallies that are NaN by definition for some samples (E_b below P_B_FLOOR): not an error; on the open
#: chain also the phonon momentum and what the CM takes from it (undefined without translation symmetry).
NAN_ALLOWED = ("E_b", "dE_b")
NAN_ALLOWED_OPEN = ("dP_ph", "dP_cm")


class NonFiniteError(FloatingPointError):
    """A tally came out non-finite (NaN or inf): the run's numbers cannot be trusted."""


class CrossingError(ValueError):
    """Neighbouring atoms passed each other during a run (a bond stretched below -a): the harmonic
    chain, and the numbers, are meaningless there."""


def bond_rms(chain, T: float, statistics: str) -> float:
    """rms bond stretch sqrt(<b_n²>) (Å) of the thermal lattice, averaged over the bonds: the
    springs' potential energy ½K Σ<b²> = Σ_j ½ M ω_j² <Q_j²> (exact for the harmonic chain)."""
    if T == 0 and statistics == "classical":
        return 0.0
    M = chain.mass_ev
    n_b = chain.N if chain.boundary == "ring" else chain.N - 1
    if statistics == "classical":  # Σ_j ω_j² <Q_j²> = (N - 1) k_B T / M exactly
        return float(math.sqrt((chain.N - 1) * KB * T / (chain.spring * n_b)))
    w = np.asarray(_frequencies(_small(chain)), float)
    n_b, scale = (n_b, 1.0) if chain.N <= _SMALL else (_SMALL, (chain.N - 1) / (_SMALL - 1))
    x = HBAR * w / (2 * KB * T) if T > 0 else np.full_like(w, np.inf)
    q2 = HBAR / (2 * M * w) / np.tanh(np.minimum(x, 700.0))
    return float(math.sqrt(M / chain.spring * scale * np.sum(w**2 * q2) / (n_b * scale)))


#: Above this many atoms the quantum bond variance is the same sum over a chain of this size (a
#: quadrature of the same dispersion, relative error ~1/_SMALL), so that no N-sized array is made.
_SMALL = 4096


def _small(chain):
    import dataclasses

    return chain if chain.N <= _SMALL else dataclasses.replace(chain, N=_SMALL)


def _frequencies(chain):
    from .lattice import mode_frequencies

    return mode_frequencies(chain)


def sign_change_fraction(cfg) -> float:
    """Expected share of bonds whose hopping t0 - α b has the opposite sign of t0 (Gaussian b); 0
    for a model without hoppings (the density-density continuum) or with local modes (α = 0)."""
    if not hasattr(cfg.electron, "alpha"):
        return 0.0
    alpha = abs(cfg.electron.alpha)
    sb = bond_rms(cfg.chain, cfg.temperature, cfg.statistics)
    if alpha == 0 or sb == 0:
        return 0.0
    return 0.5 * math.erfc(cfg.electron.t0 / (alpha * sb) / math.sqrt(2))


def check(cfg):
    """Refuse a config outside the stated accuracy bounds (module doc); the message names the
    parameter, its value and the allowed range."""
    c, e = cfg.chain, cfg.electron
    sb = bond_rms(c, cfg.temperature, cfg.statistics) if cfg.dynamics != "frozen" or cfg.temperature > 0 else 0.0
    if sb > c.a / CROSSING_SIGMAS:
        raise ConfigError(
            f"temperature={cfg.temperature!r}: the thermal bond stretch ({sb:.3g} Å rms) lets neighbouring atoms "
            f"pass each other (spacing a = {c.a:g} Å); allowed: rms stretch <= a/{CROSSING_SIGMAS:g}, i.e. "
            f"temperature up to ~{cfg.temperature * (c.a / CROSSING_SIGMAS / sb) ** 2:.3g} K for this chain")
    # the largest static hopping: t0 on the ordinary bonds, |t0 + δt| on the defect bonds (a defect
    # of -t0 cuts its bond), plus five rms thermal stretches' worth of coupling
    defects = {int(b): float(d) for b, d in e.bond_defects}
    static = [abs(e.t0 + d) for d in defects.values()] + ([e.t0] if len(defects) < c.n_bonds else [])
    t_max = max(static) + abs(e.alpha) * 5 * sb
    theta = t_max * cfg.dt / HBAR
    if theta > MAX_BOND_ANGLE:
        raise ConfigError(
            f"dt={cfg.dt!r} fs is beyond the accuracy bound: bond angle t_max dt/ħ = {theta:.3g} with t_max = "
            f"{t_max:.3g} eV (band energies off by ~0.13 θ² t0); allowed: dt <= {MAX_BOND_ANGLE * HBAR / t_max:.4g} fs "
            f"(θ <= {MAX_BOND_ANGLE:g})")
    if c.omega_max * cfg.dt > MAX_PHONON_ANGLE:
        raise ConfigError(
            f"dt={cfg.dt!r} fs is beyond the accuracy bound for the lattice: ω_max dt = {c.omega_max * cfg.dt:.3g}; "
            f"allowed: dt <= {MAX_PHONON_ANGLE / c.omega_max:.4g} fs (ω_max dt <= {MAX_PHONON_ANGLE:g})")
    if cfg.steps_per_frame > MAX_STEPS_PER_FRAME:
        raise ConfigError(
            f"duration={cfg.duration!r} fs is {cfg.steps_per_frame} steps per frame (dt={cfg.dt!r} fs, "
            f"n_frames={cfg.n_frames}), more than the loop counts (2**31 - 1); allowed: duration <= "
            f"{MAX_STEPS_PER_FRAME * cfg.n_frames * cfg.dt:.6g} fs at these n_frames and dt (or more n_frames)")
    if cfg.cm_momentum is not None:
        vmax = 2 * e.t0 * c.a / HBAR
        pmax = vmax * c.N * c.mass_ev
        if abs(cfg.cm_momentum) > pmax:
            raise ConfigError(
                f"cm_momentum={cfg.cm_momentum!r} eV·fs/Å moves the centre of mass faster than the fastest electron "
                f"(2 t0 a/ħ = {vmax:.3g} Å/fs); allowed: |cm_momentum| <= {pmax:.4g} eV·fs/Å")


def check_finite(per_sample: dict, traces: dict, n_samples: int, allowed=NAN_ALLOWED):
    """Raise NonFiniteError naming the first non-finite tally (``allowed`` excepted)."""
    for where, tree in (("tally", per_sample), ("trace", traces)):
        for k, v in tree.items():
            if k in allowed:
                continue
            a = np.asarray(v)
            if not np.issubdtype(a.dtype, np.inexact):
                continue
            bad = ~np.isfinite(a)
            if bad.any():
                rows = np.any(bad.reshape(bad.shape[0], -1), axis=1) if bad.ndim else bad
                raise NonFiniteError(
                    f"{where} {k!r} is not finite in {int(np.sum(rows))} of {n_samples} samples (first: sample "
                    f"{int(np.argmax(rows))}): the run's numbers cannot be trusted; nothing was written. Check the "
                    "inputs (temperature, cm_momentum, sigma, dt) or run in float64")


def host_memory() -> int:
    """Physical memory of this host (bytes), or a large number where it cannot be read."""
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 2**62


def check_sizes(cfg, n_samples: int, memory_bytes: int, per_sample_bytes: int, keep_final: bool):
    """Refuse, before any work, a run whose one sample does not fit the device budget or whose
    gathered results (tallies, frames, final states) do not fit this host's memory."""
    if per_sample_bytes > memory_bytes:
        raise ConfigError(
            f"chain.N={cfg.chain.N}: one sample needs ~{per_sample_bytes / 2**30:.3g} GiB of device memory (state, "
            f"step temporaries, {cfg.n_frames + 1} frames{' with densities' if cfg.save_density else ''}), more than "
            f"memory_bytes={memory_bytes} ({memory_bytes / 2**30:.3g} GiB); allowed: a smaller chain.N or n_frames, "
            "save_density=False, or a larger memory_bytes")
    word = 8
    N = cfg.chain.N
    host = n_samples * ((cfg.n_frames + 1) * (8 + (2 * N if cfg.save_density else 0)) + 64 + (4 * N if keep_final else 0)) * word
    limit = host_memory() // 2
    if host > limit:
        raise ConfigError(
            f"n_samples={n_samples}: the gathered results need ~{host / 2**30:.3g} GiB of host memory, more than half "
            f"of this host's {2 * limit / 2**30:.3g} GiB; allowed: n_samples <= {max(1, n_samples * limit // host)} "
            "at these sizes (or split the run over seeds)")


# ------------------------------------------------------------------------------------------------
# Counted during the run (wow.propagate, Plan.watch)
# ------------------------------------------------------------------------------------------------
#: The count of sign-changed bond·steps is carried as hi * 2**FLIP_SHIFT + lo (two int32 per sample),
#: exact up to 2**51 per frame with 32-bit JAX (a look adds at most N x WATCH_MAX to lo).
FLIP_SHIFT = 20


def watch(model, coords, p, chain) -> dict:
    """What one step's lattice shows, per sample (B,): 'flips' the bonds whose hopping changed sign
    (int32; a model with hoppings, ``model.sign_changes``, else 0) and, where the coordinates are
    the chain's displacements 'u' (not local modes, which do not move along the chain), 'min_bond'
    the smallest bond stretch u_{n+1} - u_n (Å). Leading axes (DVR points) are reduced: any / min."""
    import jax.numpy as jnp

    u = coords.get("u")
    out = {}
    if u is not None:  # on the ring the closing bond is u_0 - u_{N-1} (displacements: a is not in u)
        b = jnp.roll(u, -1, axis=-1) - u if chain.boundary == "ring" else u[..., 1:] - u[..., :-1]
        out["min_bond"] = jnp.min(b, axis=tuple(range(b.ndim - 2)) + (b.ndim - 1,))
    if hasattr(model, "sign_changes"):
        out["flips"] = model.sign_changes(coords, p)
    else:
        out["flips"] = jnp.zeros(out["min_bond"].shape, jnp.int32)
    return out


def watch_start(seen: dict) -> dict:
    """The per-frame record before a frame's first step: sign_flips_hi, sign_flips_lo (the count of
    sign-changed bond·steps, hi * 2**FLIP_SHIFT + lo) and min_bond (where watched)."""
    import jax.numpy as jnp

    zero = jnp.zeros_like(seen["flips"])
    out = {"sign_flips_hi": zero, "sign_flips_lo": zero}
    if "min_bond" in seen:
        out["min_bond"] = jnp.full_like(seen["min_bond"], jnp.inf)
    return out


def watch_add(record: dict, seen: dict, weight=1) -> dict:
    """The record after a look at a lattice that showed ``seen``, standing for ``weight`` steps."""
    import jax.numpy as jnp

    lo = record["sign_flips_lo"] + seen["flips"] * weight
    out = {**record, "sign_flips_hi": record["sign_flips_hi"] + (lo >> FLIP_SHIFT),
           "sign_flips_lo": lo & ((1 << FLIP_SHIFT) - 1)}
    if "min_bond" in seen:
        out["min_bond"] = jnp.minimum(record["min_bond"], seen["min_bond"])
    return out


#: The lattice is looked at every k steps with k the largest (up to WATCH_MAX) for which the fastest
#: phonon turns by at most WATCH_ANGLE between looks: a bond stretch then moves by < 3% of its
#: amplitude between looks, so only an excursion past a threshold by less than ~1e-4 of the amplitude
#: (b ≈ b_max (1 - (ωt)²/2) near its peak) can pass unseen. Each look counts for the k steps.
WATCH_ANGLE = 0.03
WATCH_MAX = 32


def watch_every(cfg) -> int:
    """The stride k of the lattice watch (WATCH_ANGLE): 1 at ω_max dt >= WATCH_ANGLE, 32 at the
    default chain and dt (ω_max dt = 9e-4)."""
    w = max(cfg.local.omega) if cfg.local is not None else cfg.chain.omega_max
    return int(max(1, min(WATCH_MAX, math.floor(WATCH_ANGLE / (w * cfg.dt)))))


def watch_tallies(traces: dict, chain) -> dict:
    """Pop the per-frame watch records from ``traces`` (host arrays (S, n_frames + 1)) and return the
    per-sample tallies: sign_flips (int64, bond·steps), min_bond (Å) and crossed (bool) where
    watched; {} for a run that did not watch."""
    if "sign_flips_lo" not in traces:
        return {}
    hi, lo = (np.asarray(traces.pop(k)).astype(np.int64) for k in ("sign_flips_hi", "sign_flips_lo"))
    out = {"sign_flips": ((hi << FLIP_SHIFT) + lo).sum(axis=1)}
    if "min_bond" in traces:
        out["min_bond"] = np.min(np.asarray(traces.pop("min_bond")), axis=1)
        out["crossed"] = out["min_bond"] < -chain.a
    return out


def check_watch(per_sample: dict, cfg, allow_crossing: bool = False):
    """After a run: refuse (CrossingError) or, with allow_crossing, warn when atoms crossed; warn when
    hoppings changed sign. Messages give the counts and the way out."""
    import warnings

    n = len(next(iter(per_sample.values())))
    crossed = np.asarray(per_sample.get("crossed", False))
    if crossed.any():
        msg = (f"atoms passed each other (a bond stretched below -a = -{cfg.chain.a:g} Å; smallest "
               f"{float(np.min(per_sample['min_bond'])):.3g} Å) in {int(crossed.sum())} of {n} samples (first: sample "
               f"{int(np.argmax(crossed))}): the harmonic chain is meaningless there. Lower the temperature, the "
               "coupling or the initial displacements")
        if not allow_crossing:
            raise CrossingError(msg + "; nothing was written (wow.run(..., allow_crossing=True) keeps such a run, "
                                "with per_sample['crossed'] marking the samples)")
        warnings.warn(msg + " (allow_crossing=True: kept; per_sample['crossed'] marks them)", stacklevel=3)
    flips = np.asarray(per_sample.get("sign_flips", 0))
    if flips.any():
        total = cfg.chain.n_bonds * cfg.n_steps * n
        warnings.warn(f"hoppings changed sign during the run: {int(flips.sum())} of {total} bond·steps "
                      f"({flips.sum() / total:.3g}) in {int(np.count_nonzero(flips))} of {n} samples "
                      f"(per_sample['sign_flips']); the SSH model is meant for |α b| < t0", stacklevel=3)
