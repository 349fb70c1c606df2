"""Finite-difference derivatives to check gradients against: central differences with Richardson
extrapolation (Ridders' method), for any function of a dict of named parameters.

    est, err = central_difference(f, {"alpha": 2.0, "temperature": 300.0})
    # est["alpha"] ~ ∂f/∂alpha, err["alpha"] its estimated error (same shape as f's value)

The central difference D(h) = (f(x+h) - f(x-h))/2h = f' + c₂h² + c₄h⁴ + ...; the tableau
extrapolates D over h, h/s, h/s², ... (s = ``shrink``) to h -> 0, eliminating one power of h² per
column, and keeps the entry whose change from its neighbours (the error estimate) is smallest. It
stops when the error grows by more than ``safe`` (rounding has taken over). In float64 the estimate is
typically good to 1e-10..1e-13 relative for a smooth f. f is evaluated eagerly in whatever precision
it computes; the result is float64 numpy.
"""

from __future__ import annotations

from typing import Callable, Mapping

import numpy as np


def central_difference(f: Callable[[dict], object], params: Mapping[str, float], names=None, *,
                       step: float | Mapping[str, float] | None = None, shrink: float = 1.4,
                       n_steps: int = 10, safe: float = 2.0) -> tuple[dict, dict]:
    """Partial derivatives of ``f(params)`` (a scalar or an array) with respect to ``names`` (default:
    every key of ``params``), each with its error estimate.

    step: the first (largest) step h per parameter, in the parameter's unit; default 0.1·|x|, or 0.1
    where x = 0. The smallest step used is h/shrink^(n_steps-1) (h/21 by default); f must be defined
    on [x - h, x + h] (e.g. keep T - h > 0). Returns (estimates, errors): dicts name -> float64 array of
    f's shape (errors: the elementwise estimate of the chosen tableau entry)."""
    names = list(params) if names is None else list(names)
    unknown = [n for n in names if n not in params]
    if unknown:
        raise ValueError(f"names {unknown}: not in params (have {sorted(params)})")
    if not shrink > 1:
        raise ValueError(f"shrink={shrink}: must be > 1")
    if n_steps < 2:
        raise ValueError(f"n_steps={n_steps}: must be >= 2")
    est, err = {}, {}
    for name in names:
        x = float(params[name])
        h = _first_step(name, x, step)
        est[name], err[name] = _ridders(lambda v: np.asarray(f({**params, name: v}), np.float64), x, h,
                                        shrink, n_steps, safe)
    return est, err


def _first_step(name, x, step):
    h = step.get(name) if isinstance(step, Mapping) else step
    if h is None:
        h = 0.1 * abs(x) if x != 0 else 0.1
    h = float(h)
    if not (np.isfinite(h) and h > 0):
        raise ValueError(f"step for {name!r}: {h} must be a finite number > 0")
    return h


def _ridders(g, x, h, shrink, n_steps, safe):
    """Ridders' extrapolation tableau (Numerical Recipes §5.7), elementwise over g's array value."""
    s2 = shrink * shrink
    prev = [(g(x + h) - g(x - h)) / (2 * h)]
    best, best_err = prev[0], np.full_like(prev[0], np.inf)
    best_norm = np.inf
    for _ in range(1, n_steps):
        h /= shrink
        row = [(g(x + h) - g(x - h)) / (2 * h)]
        fac = s2
        for j in range(1, len(prev) + 1):
            row.append((row[j - 1] * fac - prev[j - 1]) / (fac - 1))
            fac *= s2
            e = np.maximum(np.abs(row[j] - row[j - 1]), np.abs(row[j] - prev[j - 1]))
            if np.max(e) <= best_norm:
                best, best_err, best_norm = row[j], e, float(np.max(e))
        # the highest order has drifted away from the best: rounding dominates, stop
        if np.max(np.abs(row[-1] - prev[-1])) >= safe * best_norm:
            break
        prev = row
    return best, best_err
