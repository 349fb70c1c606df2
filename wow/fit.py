"""Fits of physical parameters to a target curve, on optax.

The model is any differentiable function ``predict(params, x) -> f`` (pure JAX; ``params`` a dict of
named physical values, ``x`` the target's abscissae, ``f`` the same shape as the target's y), wrapped
in a ``Model`` that declares each parameter's unit and allowed range, and the parameters it cannot
fit with the reason. A stochastic model (an ensemble of thermal samples) takes a third argument, a
PRNG key made from ``seed``: the key is fixed during a fit (common random numbers), so the loss is a
deterministic, smooth function of the parameters, and its gradient is exact (pathwise for T).

    model = Model(predict, (Parameter("alpha", "eV/angstrom"), Parameter("T", "K", lower=0.0)),
                  name="P_b(T), N=256, dt=0.02")
    result = fit(model, "target.csv", {"alpha": 1.5, "T": 200.0}, checkpoint="fit.h5")
    print(result)                      # values ± errors with units, chi²/dof, iterations
    figure_fit(result, model, "fit.png")

Loss: χ² = Σ ((y - f)/σ)². Fitted in a transformed space that keeps every parameter inside its
(open) range: x = lo + e^θ (lower bound only), hi - e^θ (upper only), lo + (hi - lo)·sigmoid(θ) (both),
x = s·θ (neither; s = |start| or 1). Optimiser: L-BFGS with a zoom line search (optax.lbfgs) by
default: the loss is deterministic and smooth in a handful of parameters, where a quasi-Newton
method converges superlinearly to the minimum to rounding (which the curvature errors need), with no
learning rate to tune and a guaranteed decrease per step; any optax transformation can be passed.

Uncertainties: from the curvature of χ² at the minimum, cov = (JᵀJ)⁻¹ with J = ∂r/∂x the Jacobian of
the normalised residuals r = (y - f)/σ in the physical parameters (Gauss-Newton, forward mode:
jax.jacfwd, one pass per parameter), or cov = 2 H⁻¹ with H = jax.hessian(χ²) (errors="hessian").
Both assume Gaussian errors σ on the target and a model linear in the parameters over the error
ellipse; errors are not rescaled by χ²/dof. ``seed_spread`` refits with several seeds: the spread
of the fitted values is the error a single seed's finite ensemble adds.

Resumable: every ``every`` iterations the parameters, optimiser state, iteration and loss history are
written to an HDF5 checkpoint atomically (temporary file, fsync, os.replace). A rerun with the same
inputs (model name, parameters, start, target content, optimiser id, seed) continues from it and
reproduces the uninterrupted fit bit for bit; a file made with other inputs is refused unless
``overwrite=True``.
"""

from __future__ import annotations

import csv
import dataclasses
import datetime
import difflib
import functools
import hashlib
import json
import math
import os
import re
import sys
from pathlib import Path
from typing import Callable, Mapping, Sequence

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import optax

from . import gradients
from .lattice import STATISTICS

FORMAT = "wow-fit"
FORMAT_VERSION = 1
ERROR_METHODS = ("gauss-newton", "hessian")


class FitError(ValueError):
    """A bad input to a fit (parameter, target file, checkpoint), found before any work was done."""


# ------------------------------------------------------------------------------------------------
# Parameters and models
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True)
class Parameter:
    """A continuous physical parameter: name, unit, open allowed range (lower, upper), one-line doc."""

    name: str
    unit: str
    lower: float = -math.inf
    upper: float = math.inf
    doc: str = ""

    def __post_init__(self):
        if not isinstance(self.name, str) or not self.name:
            raise FitError(f"Parameter name={self.name!r}: must be a non-empty string")
        lo, hi = self.lower, self.upper
        for which, v in (("lower", lo), ("upper", hi)):
            if not isinstance(v, (int, float)) or isinstance(v, bool) or math.isnan(v):
                raise FitError(f"{self.name}: {which} bound {v!r} must be a number (±inf allowed)")
        if not lo < hi:
            raise FitError(f"{self.name}: bounds ({lo}, {hi}) [{self.unit}]: lower must be < upper")
        if lo == math.inf or hi == -math.inf:
            raise FitError(f"{self.name}: bounds ({lo}, {hi}) [{self.unit}] leave no allowed value")

    @property
    def transform(self) -> str:
        """How the fit maps it to an unconstrained θ: 'identity', 'log', 'neglog' or 'logit'."""
        lo, hi = math.isfinite(self.lower), math.isfinite(self.upper)
        return {(False, False): "identity", (True, False): "log", (False, True): "neglog",
                (True, True): "logit"}[(lo, hi)]

    def range_text(self) -> str:
        return f"({self.lower}, {self.upper}) {self.unit}".rstrip()


@dataclasses.dataclass(frozen=True, eq=False)
class Model:
    """A differentiable model to fit.

    predict: ``predict(params, x) -> f`` (``predict(params, x, key)`` if ``uses_key``), pure JAX, f of
    the target's shape; parameters: every parameter it can be fitted in (a fit frees any subset; the
    rest keep the values predict closes over); name: identifies the model and every setting it
    closes over (a resume compares it, so put the settings in it); refused: names it cannot fit ->
    the reason (a fit naming one is refused with that reason). Compared and hashed by identity, so
    repeated fits of one Model reuse its compiled step."""

    predict: Callable
    parameters: tuple
    name: str
    refused: Mapping[str, str] = dataclasses.field(default_factory=dict)
    uses_key: bool = False

    def __post_init__(self):
        object.__setattr__(self, "parameters", tuple(self.parameters))
        if not callable(self.predict):
            raise FitError(f"Model predict={self.predict!r}: must be callable")
        if not isinstance(self.name, str) or not self.name:
            raise FitError(f"Model name={self.name!r}: must be a non-empty string (it identifies the fit)")
        names = [p.name for p in self.parameters]
        if not all(isinstance(p, Parameter) for p in self.parameters):
            raise FitError("Model parameters: must be Parameter instances")
        dup = sorted({n for n in names if names.count(n) > 1})
        if dup:
            raise FitError(f"Model parameters: {dup} declared twice")
        both = sorted(set(names) & set(self.refused))
        if both:
            raise FitError(f"Model: {both} declared both fittable and refused")

    def parameter(self, name: str) -> Parameter:
        """The declared Parameter ``name``; refuses a refused or unknown name with the reason."""
        for p in self.parameters:
            if p.name == name:
                return p
        if name in self.refused:
            raise FitError(f"{name}: cannot be fitted: {self.refused[name]}")
        known = [p.name for p in self.parameters]
        near = difflib.get_close_matches(str(name), known + list(self.refused), n=1)
        hint = f" (did you mean {near[0]!r}?)" if near else ""
        raise FitError(f"{name!r}: not a parameter of model {self.name!r}{hint}; fittable: {known}")


# ------------------------------------------------------------------------------------------------
# wow's physical parameters: which can be fitted, with units and ranges, and why the others cannot
# ------------------------------------------------------------------------------------------------
def wow_parameters(*, statistics: str = "classical", dynamics: str = "wow", cm_momentum: float | None = None,
                   temperature: float | None = None,
                   electron: str = "chain") -> tuple[tuple[Parameter, ...], dict[str, str]]:
    """The continuous physical parameters of a wow run with these settings (Config names, units,
    allowed open ranges) and every other Config name with the reason it cannot be fitted:
    ``params, refused = wow_parameters(...); Model(predict, params, name=..., refused=refused)``.

    One table with the differentiable tallies: the parameters are wow.gradients.PARAMETERS less
    what wow.gradients.refusals refuses for these settings (statistics 'classical' | 'quantum';
    dynamics as wow.Config; electron 'chain' | 'continuum'), e.g. the temperature of a Fock-sampled
    run (dynamics='quantum'), T = 0 where samples scale as sqrt(T) (given ``temperature``), a drawn
    CM momentum (cm_momentum None), the other electron model's couplings."""
    if statistics not in STATISTICS:
        raise FitError(f"statistics={statistics!r}: allowed {STATISTICS} (wow.Config's samplers; the Fock "
                       f"sampler is dynamics='quantum')")
    refused = gradients.refusals(statistics=statistics, dynamics=dynamics, cm_momentum=cm_momentum,
                                 temperature=temperature, electron=electron)
    fittable = tuple(Parameter(n, unit, lower=lo, upper=hi, doc=doc)
                     for n, (unit, lo, hi, doc) in gradients.PARAMETERS.items() if n not in refused)
    return fittable, refused


# ------------------------------------------------------------------------------------------------
# Targets: x, y, σ with named quantities and units, from CSV or HDF5
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class Target:
    """A curve to fit: y(x) ± σ (σ in y's unit), with the quantities' names and units."""

    x: np.ndarray
    y: np.ndarray
    sigma: np.ndarray
    x_name: str
    x_unit: str
    y_name: str
    y_unit: str
    source: str = ""

    def __post_init__(self):
        for k in ("x", "y", "sigma"):
            object.__setattr__(self, k, np.array(getattr(self, k), dtype=np.float64))
        _check_target(self)

    @property
    def n(self) -> int:
        return self.y.size

    @property
    def sha256(self) -> str:
        """Digest of the content (names, units, values): what a resume compares."""
        h = hashlib.sha256(json.dumps([self.x_name, self.x_unit, self.y_name, self.y_unit]).encode())
        for a in (self.x, self.y, self.sigma):
            h.update(np.ascontiguousarray(a, dtype="<f8").tobytes())
        return h.hexdigest()


def _check_target(t: Target):
    where = f"target {t.source}: " if t.source else "target: "
    for k in ("x_name", "y_name"):
        if not isinstance(getattr(t, k), str) or not getattr(t, k).strip():
            raise FitError(f"{where}{k} must name the quantity")
    for k in ("x_unit", "y_unit"):
        if not isinstance(getattr(t, k), str):
            raise FitError(f"{where}{k} must be a string ('' for a dimensionless quantity)")
    if t.x.ndim != 1 or t.y.shape != t.x.shape or t.sigma.shape != t.x.shape:
        raise FitError(f"{where}x, y, sigma must be 1-D of one length; got {t.x.shape}, {t.y.shape}, {t.sigma.shape}")
    if t.x.size < 1:
        raise FitError(f"{where}no data rows")
    for k in ("x", "y", "sigma"):
        bad = np.flatnonzero(~np.isfinite(getattr(t, k)))
        if bad.size:
            raise FitError(f"{where}{k}[{bad[0]}] = {getattr(t, k)[bad[0]]}: every value must be finite")
    bad = np.flatnonzero(t.sigma <= 0)
    if bad.size:
        raise FitError(f"{where}sigma[{bad[0]}] = {t.sigma[bad[0]]}: every error must be > 0")


_HEADER = re.compile(r"^\s*(?P<name>[^\[\]]*?)\s*\[(?P<unit>[^\[\]]*)\]\s*$")


def read_target(path, group: str = "/") -> Target:
    """Read and validate a target file, before any fit work.

    CSV (.csv): optional '#' comment lines, then a header of three columns 'quantity [unit]' (x, y,
    σ; brackets required, empty for a dimensionless quantity; σ's unit must be y's), then rows of
    three numbers. HDF5 (.h5, .hdf5): datasets x, y, sigma (1-D) in ``group``, attrs 'quantity' and
    'unit' on x and y, 'unit' on sigma equal to y's."""
    path = Path(path)
    if not path.is_file():
        raise FitError(f"target {path}: no such file")
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _read_csv(path)
    if suffix in (".h5", ".hdf5"):
        return _read_h5(path, group)
    raise FitError(f"target {path}: unknown format {suffix!r}; allowed .csv, .h5, .hdf5")


def _read_csv(path: Path) -> Target:
    lines = [(i + 1, ln) for i, ln in enumerate(path.read_text().splitlines())
             if ln.strip() and not ln.lstrip().startswith("#")]
    if not lines:
        raise FitError(f"target {path}: empty (no header, no data)")
    lineno, header = lines[0]
    cols = next(csv.reader([header]))
    if len(cols) != 3:
        raise FitError(f"target {path}, line {lineno}: header {header!r} must have 3 columns "
                       "'x name [unit]', 'y name [unit]', 'sigma [unit]'")
    parsed = []
    for c in cols:
        m = _HEADER.match(c)
        if not m or not m["name"]:
            raise FitError(f"target {path}, line {lineno}: column {c.strip()!r} must read 'quantity [unit]' "
                           "(brackets required; '[]' for a dimensionless quantity)")
        parsed.append((m["name"], m["unit"].strip()))
    if parsed[2][1] != parsed[1][1]:
        raise FitError(f"target {path}, line {lineno}: sigma's unit [{parsed[2][1]}] must be y's unit [{parsed[1][1]}]")
    rows = []
    for lineno, ln in lines[1:]:
        cells = next(csv.reader([ln]))
        if len(cells) != 3:
            raise FitError(f"target {path}, line {lineno}: {len(cells)} columns, expected 3")
        try:
            rows.append([float(c) for c in cells])
        except ValueError:
            raise FitError(f"target {path}, line {lineno}: {ln.strip()!r} is not three numbers") from None
    if not rows:
        raise FitError(f"target {path}: a header but no data rows")
    a = np.array(rows)
    return Target(a[:, 0], a[:, 1], a[:, 2], parsed[0][0], parsed[0][1], parsed[1][0], parsed[1][1],
                  source=str(path))


def _read_h5(path: Path, group: str) -> Target:
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FitError(f"target {path}: not a readable HDF5 file ({e})") from None
    with f:
        if group not in f:
            raise FitError(f"target {path}: no group {group!r}")
        g = f[group]
        arrays, attrs = {}, {}
        for k in ("x", "y", "sigma"):
            if k not in g or not isinstance(g[k], h5py.Dataset):
                raise FitError(f"target {path}: missing dataset {group.rstrip('/')}/{k}")
            arrays[k] = g[k][()]
            attrs[k] = {a: _text(g[k].attrs[a]) for a in ("quantity", "unit") if a in g[k].attrs}
        for k in ("x", "y"):
            for a in ("quantity", "unit"):
                if a not in attrs[k]:
                    raise FitError(f"target {path}: dataset {k} has no '{a}' attribute")
        if attrs["sigma"].get("unit") != attrs["y"]["unit"]:
            raise FitError(f"target {path}: sigma's unit {attrs['sigma'].get('unit')!r} must be y's unit "
                           f"{attrs['y']['unit']!r}")
    try:
        return Target(arrays["x"], arrays["y"], arrays["sigma"], attrs["x"]["quantity"], attrs["x"]["unit"],
                      attrs["y"]["quantity"], attrs["y"]["unit"], source=str(path))
    except (TypeError, ValueError) as e:
        if isinstance(e, FitError):
            raise
        raise FitError(f"target {path}: x, y, sigma must be numeric ({e})") from None


def _text(v) -> str:
    return v.decode() if isinstance(v, bytes) else str(v)


def write_target(path, target: Target) -> Path:
    """Write ``target`` as CSV or HDF5 (by suffix), the format ``read_target`` reads."""
    path = Path(path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        with open(path, "w", newline="") as fh:
            w = csv.writer(fh)
            w.writerow([f"{target.x_name} [{target.x_unit}]", f"{target.y_name} [{target.y_unit}]",
                        f"sigma [{target.y_unit}]"])
            for row in zip(target.x, target.y, target.sigma):
                w.writerow([repr(float(v)) for v in row])
    elif suffix in (".h5", ".hdf5"):
        with h5py.File(path, "w") as f:
            for k, q, u in (("x", target.x_name, target.x_unit), ("y", target.y_name, target.y_unit),
                            ("sigma", f"error of {target.y_name}", target.y_unit)):
                d = f.create_dataset(k, data=getattr(target, k))
                d.attrs["quantity"], d.attrs["unit"] = q, u
    else:
        raise FitError(f"target {path}: unknown format {suffix!r}; allowed .csv, .h5, .hdf5")
    return path


# ------------------------------------------------------------------------------------------------
# Transforms: θ (unconstrained) <-> x (physical, inside its open range)
# ------------------------------------------------------------------------------------------------
def _to_physical(p: Parameter, theta, scale):
    kind = p.transform
    if kind == "identity":
        return scale * theta
    if kind == "log":
        return p.lower + jnp.exp(theta)
    if kind == "neglog":
        return p.upper - jnp.exp(theta)
    return p.lower + (p.upper - p.lower) * jax.nn.sigmoid(theta)


def _to_theta(p: Parameter, x: float, scale: float) -> float:
    kind = p.transform
    if kind == "identity":
        return x / scale
    if kind == "log":
        return math.log(x - p.lower)
    if kind == "neglog":
        return math.log(p.upper - x)
    f = (x - p.lower) / (p.upper - p.lower)
    return math.log(f) - math.log1p(-f)


def _scale(p: Parameter, x0: float) -> float:
    return abs(x0) if p.transform == "identity" and x0 != 0 else 1.0


# ------------------------------------------------------------------------------------------------
# The compiled problem: one per (model, free parameters, optimiser), reused across fits and seeds
# ------------------------------------------------------------------------------------------------
@functools.lru_cache(maxsize=1)
def default_optimizer() -> optax.GradientTransformationExtraArgs:
    """optax.lbfgs() with its zoom line search (memory 10): the default, one shared instance."""
    return optax.lbfgs()


DEFAULT_OPTIMIZER_ID = "optax.lbfgs(memory_size=10, zoom linesearch)"


class _Problem:
    """Jitted loss, step and curvature for one model, free set and optimiser. Data (x, y, σ, the
    identity scales, the key) are arguments, so new targets, starts and seeds do not recompile."""

    def __init__(self, model: Model, free: tuple, optimizer):
        self.model, self.free = model, free
        self.params = tuple(model.parameter(n) for n in free)
        self.opt = optax.with_extra_args_support(optimizer)
        self.loss = jax.jit(self._chi2_theta)
        self.step = jax.jit(self._step)
        self.predict_phys = jax.jit(self._predict_phys)
        self.phys_vec = jax.jit(lambda th, sc: jnp.stack(list(self.phys(th, sc).values())))
        self.jac = jax.jit(jax.jacfwd(self._residual_phys))
        self.hess = jax.jit(jax.hessian(self._chi2_phys))

    def phys(self, theta, scale):
        return {p.name: _to_physical(p, theta[i], scale[i]) for i, p in enumerate(self.params)}

    def _predict_phys(self, xvec, data):
        values = {p.name: xvec[i] for i, p in enumerate(self.params)}
        if self.model.uses_key:
            return self.model.predict(values, data["x"], data["key"])
        return self.model.predict(values, data["x"])

    def _residual_phys(self, xvec, data):
        return (data["y"] - self._predict_phys(xvec, data)) / data["sigma"]

    def _chi2_phys(self, xvec, data):
        return jnp.sum(self._residual_phys(xvec, data) ** 2)

    def _chi2_theta(self, theta, data):
        ph = self.phys(theta, data["scale"])
        return self._chi2_phys(jnp.stack([ph[p.name] for p in self.params]), data)

    def _step(self, theta, state, data):
        fn = lambda t: self._chi2_theta(t, data)  # noqa: E731
        if optax.tree_utils.tree_get(state, "value") is not None and \
                optax.tree_utils.tree_get(state, "grad") is not None:
            value, grad = optax.value_and_grad_from_state(fn)(theta, state=state)
        else:
            value, grad = jax.value_and_grad(fn)(theta)
        updates, state = self.opt.update(grad, state, theta, value=value, grad=grad, value_fn=fn)
        return optax.apply_updates(theta, updates), state, value


@functools.lru_cache(maxsize=32)
def _problem(model: Model, free: tuple, optimizer) -> _Problem:
    return _Problem(model, free, optimizer)


# ------------------------------------------------------------------------------------------------
# Results
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class FitResult:
    """A finished (or stopped) fit. values/errors: dicts name -> float in the parameter's unit;
    covariance (p, p) in the order of ``names``; history: χ² at every iterate θ_0..θ_final;
    param_history: (len(history), p) physical values; error_method: how errors were computed."""

    model: str
    target: Target
    names: tuple
    units: tuple
    values: dict
    errors: dict
    covariance: np.ndarray
    chi2: float
    iterations: int
    converged: bool
    stop_reason: str
    history: np.ndarray
    param_history: np.ndarray
    predictions: np.ndarray
    error_method: str
    seed: int | None = None
    notes: tuple = ()

    @property
    def n_data(self) -> int:
        return self.target.n

    @property
    def dof(self) -> int:
        return self.target.n - len(self.names)

    @property
    def chi2_dof(self) -> float:
        return self.chi2 / self.dof if self.dof > 0 else math.nan

    @property
    def correlation(self) -> np.ndarray:
        d = np.sqrt(np.diag(self.covariance))
        return self.covariance / np.outer(d, d)

    def __str__(self) -> str:
        w = max(len(n) for n in self.names)
        t = self.target
        lines = [f"fit of {self.model!r} to {t.y_name} [{t.y_unit}] vs {t.x_name} [{t.x_unit}]"
                 f"{' (' + t.source + ')' if t.source else ''}, {t.n} points"
                 + (f", seed {self.seed}" if self.seed is not None else "")]
        for n, u in zip(self.names, self.units):
            lines.append(f"  {n:<{w}} = {format_value(self.values[n], self.errors[n])} {u}".rstrip())
        lines.append(f"  chi2/dof = {self.chi2:.4g}/{self.dof} = {self.chi2_dof:.3g}; {self.iterations} "
                     f"iterations, {'converged' if self.converged else 'NOT converged'} ({self.stop_reason})")
        lines.append(f"  errors: {self.error_method}")
        lines += [f"  note: {n}" for n in self.notes]
        return "\n".join(lines)


def format_value(value: float, error: float) -> str:
    """'1.234(5) style' as 'value ± error' with the error to two significant digits."""
    if not (math.isfinite(error) and error > 0):
        return f"{value:.6g} ± {error:.2g}"
    digits = max(0, 1 - int(math.floor(math.log10(error))))
    if abs(value) >= 1e5 or (abs(value) < 1e-3 and value != 0) or digits > 8:
        e = int(math.floor(math.log10(abs(value)))) if value != 0 else 0
        m, me = value / 10 ** e, error / 10 ** e
        d = max(0, 1 - int(math.floor(math.log10(me))))
        return f"({m:.{d}f} ± {me:.{d}f})e{e:+d}"
    return f"{value:.{digits}f} ± {error:.{digits}f}"


_ERROR_TEXT = {
    "gauss-newton": ("Gauss-Newton curvature, cov = (J^T J)^-1, J = d[(y - f)/sigma]/dx by jax.jacfwd; "
                     "assumes Gaussian target errors and a model linear over the error ellipse; not scaled by chi2/dof"),
    "hessian": ("full curvature, cov = 2 H^-1, H = jax.hessian(chi2); assumes Gaussian target errors "
                "and a locally quadratic chi2; not scaled by chi2/dof"),
}


# ------------------------------------------------------------------------------------------------
# The fit
# ------------------------------------------------------------------------------------------------
def fit(model: Model, target, start: Mapping[str, float], *, seed: int | None = None,
        optimizer=None, optimizer_id: str | None = None, max_iter: int = 200, tol: float = 1e-9,
        checkpoint=None, every: int = 10, overwrite: bool = False, errors: str = "gauss-newton",
        progress: bool | None = None, callback: Callable | None = None) -> FitResult:
    """Fit ``start``'s parameters (a dict name -> starting value; the free set) of ``model`` to
    ``target`` (a Target, or a CSV/HDF5 path read by read_target) by minimising χ².

    seed: for a model with uses_key, the key is PRNGKey(seed) (required then; part of the identity).
    optimizer: any optax transformation (default L-BFGS, see the module doc); a custom one needs an
    ``optimizer_id`` naming it and its settings when checkpointing. max_iter: optimiser iterations
    at most. tol: converged when χ² changed by <= tol on two consecutive iterations (χ² units: 1 is
    a one-σ change), or by less than rounding (10 eps χ²) in float32. checkpoint: HDF5 path written
    every ``every`` iterations and at the end; resumed when it holds a fit of the same inputs,
    refused when of others unless ``overwrite``. errors: 'gauss-newton' or 'hessian'. progress: tqdm
    bar (None: only on a terminal). callback: called as callback(iteration, chi2, values) after
    every iteration (an exception stops the fit after the last checkpoint, as a kill would). Every
    input is checked before any work."""
    # ---- validation, before any work or file write
    if not isinstance(model, Model):
        raise FitError(f"model: must be a wow.fit.Model, got {type(model).__name__}")
    target = target if isinstance(target, Target) else read_target(target)
    if not isinstance(start, Mapping) or not start:
        raise FitError("start: a non-empty dict {parameter name: starting value} (the parameters to fit)")
    free = tuple(start)
    params = [model.parameter(n) for n in free]
    x0 = []
    for p in params:
        v = start[p.name]
        try:
            v = float(v) if not isinstance(v, (str, bytes, bool, np.bool_)) else math.nan
        except (TypeError, ValueError):
            v = math.nan
        if not math.isfinite(v):
            raise FitError(f"{p.name}: starting value {start[p.name]!r} must be a finite number")
        if not p.lower < v < p.upper:
            raise FitError(f"{p.name}: starting value {v}{' ' + p.unit if p.unit else ''} is outside the allowed open range "
                           f"{p.range_text()}")
        x0.append(v)
    for name, v, ok in (("max_iter", max_iter, isinstance(max_iter, int) and max_iter >= 0),
                        ("every", every, isinstance(every, int) and every >= 1),
                        ("tol", tol, isinstance(tol, (int, float)) and tol >= 0)):
        if not ok:
            raise FitError(f"{name}={v!r}: must be {'>= 1' if name == 'every' else '>= 0'}"
                           f"{' (an int)' if name != 'tol' else ''}")
    if errors not in ERROR_METHODS:
        raise FitError(f"errors={errors!r}: allowed {ERROR_METHODS}")
    if target.n < len(free):
        raise FitError(f"target has {target.n} points for {len(free)} free parameters {list(free)}: "
                       "need at least as many points")
    if model.uses_key and (seed is None or isinstance(seed, bool) or not isinstance(seed, int)):
        raise FitError(f"seed={seed!r}: model {model.name!r} draws samples: give an integer seed")
    if optimizer is None:
        optimizer, optimizer_id = default_optimizer(), optimizer_id or DEFAULT_OPTIMIZER_ID
    elif not optimizer_id and checkpoint is not None:
        raise FitError("optimizer_id: name the custom optimiser and its settings (e.g. 'adam(lr=1e-2)') "
                       "so that a resume can tell it from another")
    problem = _problem(model, free, optimizer)
    dtype = jnp.result_type(float)
    eps = float(jnp.finfo(dtype).eps)
    scale = np.array([_scale(p, v) for p, v in zip(params, x0)])
    data = {"x": jnp.asarray(target.x, dtype), "y": jnp.asarray(target.y, dtype),
            "sigma": jnp.asarray(target.sigma, dtype), "scale": jnp.asarray(scale, dtype)}
    if model.uses_key:
        data["key"] = jax.random.PRNGKey(seed)
    out = jax.eval_shape(problem.predict_phys, jnp.asarray(x0, dtype), data)  # traces, computes nothing
    if out.shape != target.y.shape:
        raise FitError(f"model {model.name!r}: predict returned shape {out.shape}, the target has "
                       f"{target.y.shape} (one prediction per target x)")
    identity = {"format": FORMAT, "model": model.name, "uses_key": model.uses_key, "seed": seed,
                "free": [{"name": p.name, "unit": p.unit, "lower": p.lower, "upper": p.upper,
                          "start": v} for p, v in zip(params, x0)],
                "target": target.sha256, "optimizer": optimizer_id or "custom"}
    theta = jnp.asarray([_to_theta(p, v, s) for p, v, s in zip(params, x0, scale)], dtype)
    state = problem.opt.init(theta)
    it, hist, phist, done = 0, [], [], None
    if checkpoint is not None:
        checkpoint = Path(checkpoint)
        saved = _read_checkpoint(checkpoint, identity, state, overwrite)
        _remove_stale_temporaries(checkpoint)
        if saved is not None:
            theta, state, it, hist, phist, done = saved
            theta = jnp.asarray(theta, dtype)

    # ---- the loop
    from tqdm.auto import tqdm

    bar = tqdm(total=max(max_iter, it), initial=it, desc=f"fit {model.name}"[:40], unit="it",
               disable=(not sys.stderr.isatty()) if progress is None else not progress)
    values_of = lambda th: np.asarray(problem.phys_vec(th, data["scale"]))  # noqa: E731
    reason = done
    try:
        while reason is None:
            if _converged(hist, tol, eps):
                reason = f"chi2 changed by <= {tol:g} twice"
                break
            if it >= max_iter:
                reason = f"max_iter={max_iter} reached"
                break
            new_theta, new_state, value = problem.step(theta, state, data)
            if not (np.all(np.isfinite(np.asarray(new_theta))) and math.isfinite(float(value))):
                reason = "non-finite step (kept the last finite parameters)"
                break
            hist.append(float(value))
            phist.append(values_of(theta))
            theta, state, it = new_theta, new_state, it + 1
            bar.update(1)
            bar.set_postfix(chi2=f"{float(value):.6g}")
            if checkpoint is not None and it % every == 0:
                _write_checkpoint(checkpoint, identity, theta, values_of(theta), state, it, hist, phist, None, params)
            if callback is not None:
                callback(it, float(value), dict(zip(free, phist[-1].tolist())))
    finally:
        bar.close()
    chi2 = float(problem.loss(theta, data))
    converged = reason.startswith("chi2 changed")
    if checkpoint is not None:
        _write_checkpoint(checkpoint, identity, theta, values_of(theta), state, it, hist, phist, reason, params)

    # ---- uncertainties from the curvature at the minimum, in the physical parameters
    xbest = jnp.asarray(values_of(theta), dtype)
    if errors == "gauss-newton":
        J = np.asarray(problem.jac(xbest, data), np.float64)
        curv = J.T @ J
    else:
        curv = 0.5 * np.asarray(problem.hess(xbest, data), np.float64)
    cov, notes = _invert(curv, free)
    xb = np.asarray(xbest, np.float64)
    err = np.sqrt(np.diag(cov))  # cov is positive definite (or all NaN, with a note)
    for i, p in enumerate(params):
        if np.isfinite(err[i]) and (xb[i] - err[i] <= p.lower or xb[i] + err[i] >= p.upper):
            notes.append(f"{p.name}: the 1-sigma interval reaches the bound of {p.range_text()}; "
                         "curvature errors are not meaningful there")
    if not converged:
        notes.append(f"not converged ({reason}): the curvature errors describe the last iterate")
    if target.n == len(free):
        notes.append("as many points as parameters: no degrees of freedom left")
    return FitResult(model=model.name, target=target, names=free, units=tuple(p.unit for p in params),
                     values=dict(zip(free, xb.tolist())), errors=dict(zip(free, err.tolist())),
                     covariance=cov, chi2=chi2, iterations=it, converged=converged, stop_reason=reason,
                     history=np.array(hist + [chi2]),
                     param_history=np.array(phist + [xb]).reshape(len(hist) + 1, len(free)),
                     predictions=np.asarray(problem.predict_phys(xbest, data), np.float64),
                     error_method=_ERROR_TEXT[errors], seed=seed, notes=tuple(notes))


def _converged(hist, tol, eps) -> bool:
    """Two consecutive changes of χ² below tol, or below rounding (10 eps χ²) in low precision."""
    if len(hist) < 3:
        return False
    floor = max(tol, 10 * eps * abs(hist[-1]))
    return abs(hist[-1] - hist[-2]) <= floor and abs(hist[-2] - hist[-3]) <= floor


def _invert(curv: np.ndarray, names) -> tuple[np.ndarray, list]:
    notes = []
    if not np.all(np.isfinite(curv)):
        return np.full_like(curv, np.nan), ["the curvature is not finite: no errors"]
    w, v = np.linalg.eigh(curv)
    if w.min() <= 1e-12 * max(w.max(), 0):
        i = int(np.argmax(np.abs(v[:, np.argmin(w)])))
        notes.append(f"the curvature is singular (eigenvalues {w.min():.3g} .. {w.max():.3g}): a combination "
                     f"of parameters, mostly {names[i]}, is not constrained by the target; no errors")
        return np.full_like(curv, np.nan), notes
    return (v / w) @ v.T, notes


# ------------------------------------------------------------------------------------------------
# Checkpoints: atomic HDF5
# ------------------------------------------------------------------------------------------------
def _write_checkpoint(path: Path, identity, theta, current, state, it, hist, phist, reason, params):
    leaves = jax.tree.leaves(state)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["format_version"] = FORMAT_VERSION
            f.attrs["identity_json"] = json.dumps(identity, sort_keys=True)
            f.attrs["iteration"] = it
            f.attrs["finished"] = reason is not None
            f.attrs["stop_reason"] = reason or ""
            f.attrs["updated_utc"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
            f.attrs["jax_version"] = jax.__version__
            f.attrs["optax_version"] = optax.__version__
            f.create_dataset("theta", data=np.asarray(theta))
            g = f.create_group("values")
            for i, p in enumerate(params):
                d = g.create_dataset(p.name, data=float(current[i]))
                d.attrs["unit"] = p.unit
                d.attrs["doc"] = "physical value at the current iterate"
            h = f.create_group("history")
            h.create_dataset("chi2", data=np.asarray(hist, np.float64))
            h.create_dataset("params", data=np.asarray(phist, np.float64).reshape(len(hist), len(params)))
            s = f.create_group("opt_state")
            s.attrs["n_leaves"] = len(leaves)
            s.attrs["treedef"] = str(jax.tree.structure(state))
            for i, leaf in enumerate(leaves):
                s.create_dataset(f"leaf_{i:04d}", data=np.asarray(leaf))
        fd = os.open(tmp, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
    except OSError:
        pass


def _remove_stale_temporaries(path: Path):
    """Remove the temporaries a killed fit left beside ``path`` (their process no longer exists)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2:-4])
            os.kill(pid, 0)
        except ValueError:
            continue
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def _read_checkpoint(path: Path, identity, fresh_state, overwrite: bool):
    """The saved (theta, state, iteration, history, param history, stop reason) of a fit with the
    same identity; None if absent or overwrite; FitError if made with other inputs."""
    if overwrite or not path.exists():
        return None
    try:
        f = h5py.File(path, "r")
    except OSError as e:
        raise FitError(f"checkpoint {path}: not a readable HDF5 file ({e}); pass overwrite=True to replace it") from None
    with f:
        if _text(f.attrs.get("format", "")) != FORMAT:
            raise FitError(f"checkpoint {path}: not a {FORMAT} file; pass overwrite=True to replace it")
        saved = json.loads(_text(f.attrs["identity_json"]))
        if saved != json.loads(json.dumps(identity, sort_keys=True)):
            diff = sorted(k for k in set(saved) | set(identity) if saved.get(k) != identity.get(k))
            raise FitError(f"checkpoint {path} was made with other inputs (differs in: {', '.join(diff)}); "
                           "pass overwrite=True to start afresh")
        leaves, treedef = jax.tree.flatten(fresh_state)
        s = f["opt_state"]
        if int(s.attrs["n_leaves"]) != len(leaves) or _text(s.attrs["treedef"]) != str(treedef):
            raise FitError(f"checkpoint {path}: optimiser state of another structure (another optax "
                           "version or optimiser); pass overwrite=True to start afresh")
        restored = []
        for i, leaf in enumerate(leaves):
            a = s[f"leaf_{i:04d}"][()]
            if a.shape != np.shape(leaf) or a.dtype != np.asarray(leaf).dtype:
                raise FitError(f"checkpoint {path}: optimiser state leaf {i} is {a.dtype}{a.shape}, "
                               f"expected {np.asarray(leaf).dtype}{np.shape(leaf)}; pass overwrite=True")
            restored.append(jnp.asarray(a))
        state = jax.tree.unflatten(treedef, restored)
        hist = f["history/chi2"][()].tolist()
        phist = list(f["history/params"][()])
        # a stop for max_iter is not final (a rerun may allow more); convergence is re-read from
        # the history; only a non-finite step ends a fit for good
        reason = _text(f.attrs["stop_reason"])
        reason = reason if reason.startswith("non-finite") else None
        return f["theta"][()], state, int(f.attrs["iteration"]), hist, phist, reason


def read_checkpoint(path) -> dict:
    """A checkpoint's content for inspection: identity, iteration, finished, stop_reason, history
    (χ² per iteration), params history and the last recorded values with units."""
    path = Path(path)
    with h5py.File(path, "r") as f:
        if _text(f.attrs.get("format", "")) != FORMAT:
            raise FitError(f"checkpoint {path}: not a {FORMAT} file")
        return {"identity": json.loads(_text(f.attrs["identity_json"])),
                "iteration": int(f.attrs["iteration"]), "finished": bool(f.attrs["finished"]),
                "stop_reason": _text(f.attrs["stop_reason"]), "history": f["history/chi2"][()],
                "params": f["history/params"][()],
                "values": {k: (float(d[()]), _text(d.attrs["unit"])) for k, d in f["values"].items()}}


# ------------------------------------------------------------------------------------------------
# Spread over sample seeds
# ------------------------------------------------------------------------------------------------
@dataclasses.dataclass(frozen=True, eq=False)
class SeedSpread:
    """Fits of one target with the model's samples drawn from several seeds. values: (n_seeds, p);
    mean, std (ddof = 1): dicts name -> float. std is the error one seed's finite ensemble adds to a
    fitted value; add it in quadrature to that fit's curvature error (independent sources)."""

    seeds: tuple
    names: tuple
    units: tuple
    values: np.ndarray
    mean: dict
    std: dict
    fits: tuple

    def __str__(self) -> str:
        w = max(len(n) for n in self.names)
        lines = [f"spread over {len(self.seeds)} seeds {list(self.seeds)} of {self.fits[0].model!r}"]
        for i, (n, u) in enumerate(zip(self.names, self.units)):
            curv = np.median([f.errors[n] for f in self.fits])
            lines.append(f"  {n:<{w}} mean {self.mean[n]:.6g}, seed spread {self.std[n]:.2g}, "
                         f"curvature error {curv:.2g} (median) {u}".rstrip())
        return "\n".join(lines)


def seed_spread(model: Model, target, start: Mapping[str, float], seeds: Sequence[int], *,
                checkpoint: str | None = None, **fit_kwargs) -> SeedSpread:
    """Refit ``target`` once per seed (the model must draw its samples from the key: uses_key) and
    report the spread of the fitted values. checkpoint: a path containing '{seed}' (one resumable
    file per seed) or None. Other keywords go to ``fit``; all fits share one compiled step."""
    if not model.uses_key:
        raise FitError(f"seed_spread: model {model.name!r} does not use a key (uses_key=False): "
                       "its fit does not depend on a seed")
    seeds = tuple(seeds)
    if len(seeds) < 2 or len(set(seeds)) != len(seeds) or not all(isinstance(s, int) for s in seeds):
        raise FitError(f"seeds={list(seeds)}: need at least 2 distinct integers")
    if checkpoint is not None and "{seed}" not in str(checkpoint):
        raise FitError(f"checkpoint={checkpoint!r}: must contain '{{seed}}' (one file per seed)")
    target = target if isinstance(target, Target) else read_target(target)
    fits = tuple(fit(model, target, start, seed=s, **fit_kwargs,
                     checkpoint=None if checkpoint is None else str(checkpoint).format(seed=s))
                 for s in seeds)
    names = fits[0].names
    vals = np.array([[f.values[n] for n in names] for f in fits])
    return SeedSpread(seeds=seeds, names=names, units=fits[0].units, values=vals,
                      mean=dict(zip(names, vals.mean(0).tolist())),
                      std=dict(zip(names, vals.std(0, ddof=1).tolist())), fits=fits)


# ------------------------------------------------------------------------------------------------
# Figure
# ------------------------------------------------------------------------------------------------
def figure_fit(result: FitResult, model: Model | None = None, path=None, n_dense: int = 200):
    """Target against fit with error bars, the normalised residuals and the χ² history. With
    ``model`` the fitted curve is drawn on ``n_dense`` points between the target's x (one model
    evaluation); without, at the target's x. Agg canvas (no pyplot, no global backend change);
    saved as PNG when ``path`` is given. Returns the matplotlib Figure."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    t = result.target
    fig = Figure(figsize=(10, 6.5), layout="constrained")
    FigureCanvasAgg(fig)
    gs = fig.add_gridspec(3, 2, width_ratios=(2.2, 1))
    ax, axr, axh = fig.add_subplot(gs[:2, 0]), fig.add_subplot(gs[2, 0]), fig.add_subplot(gs[:, 1])
    ax.errorbar(t.x, t.y, t.sigma, fmt="o", ms=4, capsize=2, color="k", label=f"target ({t.n} points)")
    xs, fs = t.x, result.predictions
    if model is not None and n_dense > 1:
        xs = np.linspace(t.x.min(), t.x.max(), n_dense)
        fs = _predict_at(result, model, xs)
    order = np.argsort(xs)
    label = "fit: " + ", ".join(f"{n} = {format_value(result.values[n], result.errors[n])} {u}".rstrip()
                                for n, u in zip(result.names, result.units))
    ax.plot(np.asarray(xs)[order], np.asarray(fs)[order], "-", color="C0", label=label)
    ax.set_ylabel(f"{t.y_name} [{t.y_unit}]" if t.y_unit else t.y_name)
    ax.set_title(f"{result.model}: chi2/dof = {result.chi2:.3g}/{result.dof}", fontsize=10)
    ax.legend(fontsize=8)
    r = (t.y - result.predictions) / t.sigma
    axr.axhline(0, color="0.5", lw=0.8)
    axr.plot(t.x, r, "o", ms=4, color="k")
    axr.set_xlabel(f"{t.x_name} [{t.x_unit}]" if t.x_unit else t.x_name)
    axr.set_ylabel("(y - f)/sigma")
    axh.semilogy(np.arange(result.history.size), result.history - result.history.min() + 1e-16, "-o", ms=3)
    axh.set_xlabel("iteration")
    axh.set_ylabel("chi2 - min chi2")
    axh.set_title(f"{result.iterations} iterations, min chi2 = {result.history.min():.4g}", fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=120)
    return fig


def _predict_at(result: FitResult, model: Model, xs):
    values = {n: jnp.asarray(v) for n, v in result.values.items()}
    x = jnp.asarray(xs, jnp.result_type(float))
    if model.uses_key:
        return np.asarray(model.predict(values, x, jax.random.PRNGKey(result.seed)))
    return np.asarray(model.predict(values, x))
