"""wow.fit: recovery of known parameters from synthetic targets (noiseless: to rounding; noisy: within
the reported curvature errors, whose coverage over repetitions is ~68 %), the exact covariance of a
linear model, bit-identical resume after an interruption, the spread over sample seeds, and every
refusal (parameters, target files, checkpoints) before any work."""

import math

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import optax
import pytest

from wow import fit as F
from wow import gradients as G

TRUE = {"A": 0.8, "tau": 150.0, "f": 0.6}
START = {"A": 1.0, "tau": 100.0, "f": 0.5}
X = np.linspace(0.0, 500.0, 25)
SIGMA = 0.02
CALLS = {"n": 0}


def decay(p, x):
    """A cheap analytic curve with one parameter of each transform: A > 0 (log), tau > 0 (log),
    0 < f < 1 (logit). CALLS counts traces (python side effect), to show refusals come first."""
    CALLS["n"] += 1
    return p["A"] * (p["f"] * jnp.exp(-x / p["tau"]) + (1.0 - p["f"]))


DECAY = F.Model(decay, (F.Parameter("A", "", 0.0), F.Parameter("tau", "K", 0.0), F.Parameter("f", "", 0.0, 1.0)),
                name="A (f exp(-T/tau) + 1 - f)", refused={"N": "an integer"})


def offset(key):
    return 0.05 * jax.random.normal(key, ())


def line(p, x, key):
    """Linear in (a, b), plus a per-seed offset that stands in for an ensemble's sampling noise."""
    return p["a"] + p["b"] * x + offset(key)


LINE = F.Model(line, (F.Parameter("a", "eV"), F.Parameter("b", "eV/K")), name="a + b T + noise(seed)",
               uses_key=True)


def target(rng=None, y=None):
    y0 = np.asarray(decay(TRUE, jnp.asarray(X)))
    noise = 0 if rng is None else SIGMA * rng.normal(size=X.size)
    return F.Target(X, y0 + noise if y is None else y, np.full(X.size, SIGMA), "temperature", "K", "P_b", "")


def test_noiseless_target_recovered_to_rounding():
    r = F.fit(DECAY, target(), START)
    assert r.converged, r
    for k, v in TRUE.items():
        assert abs(r.values[k] / v - 1) < 1e-9, (k, r.values[k])
    assert r.chi2 < 1e-12
    assert r.history[0] > 1e3 and r.history[-1] == r.chi2 and r.param_history.shape == (r.history.size, 3)


def test_noisy_recovery_within_errors_and_68_percent_coverage():
    """40 noisy targets: every fit lands within 4σ of the truth, |x - x_true| < σ_curv for 68 % of
    the 120 (parameter, repetition) pairs (binomial sd 4 %), the curvature errors match the scatter
    of the fitted values over repetitions, and <χ²> = dof. Measured (benchmarks/fit_coverage.py, the
    same 40 targets): 1σ coverage 0.625 (75/120), 2σ 0.958, <χ²>/dof 0.947, scatter/median error
    0.88..1.13; at 1000 repetitions 0.694 (0.664..0.723 per parameter), 2σ 0.960, <χ²>/dof 0.988."""
    fits = [F.fit(DECAY, target(np.random.default_rng(s)), START) for s in range(40)]
    assert all(r.converged for r in fits)
    pulls = np.array([[(r.values[k] - TRUE[k]) / r.errors[k] for k in TRUE] for r in fits])
    assert np.all(np.abs(pulls) < 4)
    cover1, cover2 = np.mean(np.abs(pulls) < 1), np.mean(np.abs(pulls) < 2)
    assert 0.56 < cover1 < 0.81, cover1
    assert cover2 > 0.88, cover2
    chi2 = np.array([r.chi2 for r in fits])
    dof = fits[0].dof
    assert abs(chi2.mean() / dof - 1) < 4 * math.sqrt(2 / dof / len(fits))  # var(χ²) = 2 dof
    for i, k in enumerate(TRUE):
        scatter = np.std([r.values[k] for r in fits], ddof=1)
        err = np.median([r.errors[k] for r in fits])
        assert abs(scatter / err - 1) < 0.35, (k, scatter, err)  # sd of a 40-sample sd: 11 %
    h = F.fit(DECAY, fits[0].target, START, errors="hessian")
    for k in TRUE:
        assert abs(h.errors[k] / fits[0].errors[k] - 1) < 0.1
    assert "Gauss-Newton" in fits[0].error_method and "hessian" in h.error_method


def test_linear_model_values_and_covariance_are_weighted_least_squares():
    """For a model linear in its parameters the fit is weighted least squares: values and the
    Gauss-Newton covariance (XᵀWX)⁻¹ are exact, and the Hessian errors equal them."""
    rng = np.random.default_rng(5)
    x = np.linspace(10, 300, 12)
    s = 0.01 + 0.02 * rng.random(x.size)
    y = 0.3 - 2e-3 * x + s * rng.normal(size=x.size)
    t = F.Target(x, y, s, "temperature", "K", "dE_b", "eV")
    r = F.fit(LINE, t, {"a": 1.0, "b": 1e-3}, seed=7)
    Xm = np.stack([np.ones_like(x), x], 1) / s[:, None]
    yy = (y - float(offset(jax.random.PRNGKey(7)))) / s
    cov = np.linalg.inv(Xm.T @ Xm)
    best = cov @ Xm.T @ yy
    assert np.allclose([r.values["a"], r.values["b"]], best, rtol=1e-9, atol=0)
    assert np.allclose(r.covariance, cov, rtol=1e-10, atol=0)
    h = F.fit(LINE, t, {"a": 1.0, "b": 1e-3}, seed=7, errors="hessian")
    assert np.allclose(h.covariance, cov, rtol=1e-8, atol=0)
    text = str(r)
    assert "a = " in text and " eV" in text and "eV/K" in text and "chi2/dof" in text and "seed 7" in text


def test_seed_spread_is_the_spread_of_the_sampling_noise():
    """The per-seed offset δ shifts the fitted intercept by exactly -δ: the spread over seeds of a is
    the sample sd of the δ's, that of b is zero."""
    x = np.linspace(10, 300, 12)
    t = F.Target(x, 0.3 - 2e-3 * x, np.full(x.size, 0.01), "temperature", "K", "dE_b", "eV")
    seeds = (1, 2, 3, 4, 5)
    sp = F.seed_spread(LINE, t, {"a": 1.0, "b": 1e-3}, seeds)
    deltas = np.array([float(offset(jax.random.PRNGKey(s))) for s in seeds])
    assert abs(sp.std["a"] / np.std(deltas, ddof=1) - 1) < 1e-8
    assert sp.std["b"] < 1e-12
    assert np.allclose(sp.values[:, 0], 0.3 - deltas, rtol=0, atol=1e-10)
    assert "seed spread" in str(sp)
    with pytest.raises(F.FitError, match="does not use a key"):
        F.seed_spread(DECAY, target(), START, seeds)
    with pytest.raises(F.FitError, match="at least 2 distinct"):
        F.seed_spread(LINE, t, {"a": 1.0}, (1, 1))


# ------------------------------------------------------------------------------------------------
# Resume
# ------------------------------------------------------------------------------------------------
class Interrupt(Exception):
    pass


def test_resume_after_interruption_is_bit_identical(tmp_path):
    t = target(np.random.default_rng(11))
    full = F.fit(DECAY, t, START, checkpoint=tmp_path / "full.h5", every=3)
    assert full.iterations > 8

    def stop_at_7(it, chi2, values):
        if it == 7:
            raise Interrupt

    path = tmp_path / "cut.h5"
    with pytest.raises(Interrupt):
        F.fit(DECAY, t, START, checkpoint=path, every=3, callback=stop_at_7)
    saved = F.read_checkpoint(path)
    assert saved["iteration"] == 6 and not saved["finished"] and saved["history"].size == 6
    assert not list(tmp_path.glob(".*.tmp"))
    stale = tmp_path / ".cut.h5.999999999.tmp"  # what a kill during a write leaves (no such process)
    stale.write_bytes(b"partial")
    seen = []
    resumed = F.fit(DECAY, t, START, checkpoint=path, every=3, callback=lambda it, c, v: seen.append(it))
    assert seen[0] == 7  # continued from the checkpoint, not from the start
    assert not stale.exists()
    assert resumed.values == full.values  # bit for bit
    assert np.array_equal(resumed.history, full.history) and resumed.iterations == full.iterations
    assert np.array_equal(resumed.covariance, full.covariance)
    # a stop at max_iter is not final: a rerun with more iterations continues to the same result
    part = F.fit(DECAY, t, START, checkpoint=tmp_path / "part.h5", max_iter=4)
    assert part.iterations == 4 and not part.converged and any("not converged" in n for n in part.notes)
    more = F.fit(DECAY, t, START, checkpoint=tmp_path / "part.h5")
    assert more.values == full.values
    # a finished fit is read back without a single new iteration
    seen.clear()
    again = F.fit(DECAY, t, START, checkpoint=path, callback=lambda it, c, v: seen.append(it))
    assert not seen and again.values == full.values


def test_checkpoint_of_other_inputs_refused_before_any_write(tmp_path):
    t = target(np.random.default_rng(3))
    path = tmp_path / "fit.h5"
    F.fit(DECAY, t, START, checkpoint=path, max_iter=2)
    before = path.read_bytes()
    with pytest.raises(F.FitError, match=r"other inputs \(differs in: free\)"):
        F.fit(DECAY, t, {**START, "A": 1.1}, checkpoint=path)
    with pytest.raises(F.FitError, match=r"differs in: target"):
        F.fit(DECAY, target(np.random.default_rng(4)), START, checkpoint=path)
    assert path.read_bytes() == before
    r = F.fit(DECAY, t, {**START, "A": 1.1}, checkpoint=path, overwrite=True)
    assert F.read_checkpoint(path)["identity"]["free"][0]["start"] == 1.1 and r.converged
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(F.FitError, match="not a wow-fit file"):
        F.fit(DECAY, t, START, checkpoint=other)
    junk = tmp_path / "junk.h5"
    junk.write_text("not hdf5")
    with pytest.raises(F.FitError, match="not a readable HDF5"):
        F.fit(DECAY, t, START, checkpoint=junk)
    with pytest.raises(F.FitError, match="optimizer_id"):
        F.fit(DECAY, t, START, checkpoint=tmp_path / "adam.h5", optimizer=optax.adam(1e-2))


# ------------------------------------------------------------------------------------------------
# Target files
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("suffix", [".csv", ".h5"])
def test_target_file_roundtrip(tmp_path, suffix):
    t = target(np.random.default_rng(2))
    p = F.write_target(tmp_path / f"t{suffix}", t)
    back = F.read_target(p)
    assert back.sha256 == t.sha256 and back.source == str(p)
    assert (back.x_name, back.x_unit, back.y_name, back.y_unit) == ("temperature", "K", "P_b", "")
    r = F.fit(DECAY, p, START)  # a path works as well as a Target
    assert r.target.source == str(p)


CSV_BAD = {
    "no units": ("temperature,P_b,sigma\n1,2,3\n", "must read 'quantity \\[unit\\]'"),
    "two columns": ("temperature [K],P_b []\n1,2\n", "must have 3 columns"),
    "sigma unit": ("temperature [K],dE_b [eV],sigma [meV]\n1,2,3\n", "sigma's unit \\[meV\\] must be y's unit \\[eV\\]"),
    "text row": ("# comment\ntemperature [K],P_b [],sigma []\n1,2,3\n1,two,3\n", "line 4: '1,two,3' is not three numbers"),
    "short row": ("temperature [K],P_b [],sigma []\n1,2\n", "line 2: 2 columns, expected 3"),
    "nan": ("temperature [K],P_b [],sigma []\n1,nan,3\n", "y\\[0\\] = nan: every value must be finite"),
    "sigma zero": ("temperature [K],P_b [],sigma []\n1,2,3\n2,2,0\n", "sigma\\[1\\] = 0.0: every error must be > 0"),
    "no rows": ("temperature [K],P_b [],sigma []\n", "a header but no data rows"),
    "empty": ("# only a comment\n", "empty"),
}


@pytest.mark.parametrize("case", sorted(CSV_BAD))
def test_target_csv_refusals(tmp_path, case):
    text, msg = CSV_BAD[case]
    p = tmp_path / "t.csv"
    p.write_text(text)
    with pytest.raises(F.FitError, match=msg):
        F.read_target(p)


def test_target_h5_and_path_refusals(tmp_path):
    with pytest.raises(F.FitError, match="no such file"):
        F.read_target(tmp_path / "missing.csv")
    (tmp_path / "t.txt").write_text("x")
    with pytest.raises(F.FitError, match="unknown format '.txt'"):
        F.read_target(tmp_path / "t.txt")
    p = F.write_target(tmp_path / "t.h5", target())
    with h5py.File(p, "a") as f:
        del f["y"].attrs["unit"]
    with pytest.raises(F.FitError, match="dataset y has no 'unit' attribute"):
        F.read_target(p)
    with h5py.File(p, "a") as f:
        del f["sigma"]
    with pytest.raises(F.FitError, match="missing dataset /sigma"):
        F.read_target(p)
    with pytest.raises(F.FitError, match="no group"):
        F.read_target(p, group="/fits")
    with pytest.raises(F.FitError, match="1-D of one length"):
        F.Target([1, 2], [1], [1], "T", "K", "P", "")


# ------------------------------------------------------------------------------------------------
# Parameter refusals: before any work (predict never traced, no file written)
# ------------------------------------------------------------------------------------------------
WOW_REFUSED = {
    "chain.N": "an integer",
    "chain.boundary": "a choice",
    "statistics": "a choice of sampler",
    "dynamics": "a choice of lattice dynamics",
    "dtype": "a choice of precision",
    "dt": "a numerical step",
    "cm_momentum": "drawn per sample",
}


def _wow_model(**settings):
    params, refused = F.wow_parameters(**settings)
    return F.Model(lambda p, x: x * p["electron.alpha"], params, name="wow stand-in", refused=refused)


@pytest.mark.parametrize("name", sorted(WOW_REFUSED))
def test_non_differentiable_wow_parameters_refused(tmp_path, name):
    with pytest.raises(F.FitError, match=rf"^{name}: cannot be fitted: {WOW_REFUSED[name]}"):
        F.fit(_wow_model(), target(), {"electron.alpha": 1.0, name: 1.0}, checkpoint=tmp_path / "c.h5")
    assert not (tmp_path / "c.h5").exists()


def test_fock_temperature_refused_with_reason():
    with pytest.raises(F.FitError, match=r"^temperature: cannot be fitted: dynamics='quantum' .* Fock sampler.* "
                                         r"piecewise constant in T .* statistics='quantum'"):
        F.fit(_wow_model(dynamics="quantum"), target(), {"temperature": 300.0})
    # 'fock' is not a sampler of wow.Config: refused as bad input, naming the allowed ones
    with pytest.raises(F.FitError, match=r"statistics='fock': allowed \('classical', 'quantum'\)"):
        F.wow_parameters(statistics="fock")
    names = [p.name for p in _wow_model(statistics="quantum").parameters]
    assert "temperature" in names and "electron.alpha" in names and "chain.N" not in names
    assert "cm_momentum" in [p.name for p in _wow_model(cm_momentum=0.0).parameters]
    # one table: the fit's parameters are exactly the differentiable ones, with gradients' units and ranges
    params, refused = F.wow_parameters(cm_momentum=0.0)
    assert [p.name for p in params] == [n for n in G.PARAMETERS if n not in refused]
    assert all((p.unit, p.lower, p.upper) == G.PARAMETERS[p.name][:3] for p in params)
    assert "temperature" not in refused and F.wow_parameters(dynamics="quantum")[1]["temperature"] == G.FOCK
    cont = [p.name for p in F.wow_parameters(electron="continuum")[0]]
    assert "electron.V0" in cont and "electron.alpha" not in cont


def test_parameter_and_argument_refusals(tmp_path):
    t = target()
    CALLS["n"] = 0
    cases = [
        ({"tua": 100.0}, {}, r"'tua': not a parameter of model .* \(did you mean 'tau'\?\)"),
        ({"N": 4.0}, {}, r"^N: cannot be fitted: an integer"),
        ({"tau": 0.0}, {}, r"tau: starting value 0.0 K is outside the allowed open range \(0.0, inf\) K"),
        ({"f": 1.0}, {}, r"f: starting value 1.0 is outside the allowed open range \(0.0, 1.0\)"),
        ({"A": math.nan}, {}, r"A: starting value nan must be a finite number"),
        ({"A": "1"}, {}, r"A: starting value '1' must be a finite number"),
        ({}, {}, r"start: a non-empty dict"),
        (START, {"max_iter": -1}, r"max_iter=-1"),
        (START, {"every": 0}, r"every=0"),
        (START, {"errors": "bootstrap"}, r"errors='bootstrap'"),
    ]
    for start, kw, msg in cases:
        with pytest.raises(F.FitError, match=msg):
            F.fit(DECAY, t, start, checkpoint=tmp_path / "c.h5", **kw)
    with pytest.raises(F.FitError, match=r"target has 2 points for 3 free parameters"):
        F.fit(DECAY, F.Target([1, 2], [1, 2], [1, 1], "T", "K", "P", ""), START)
    with pytest.raises(F.FitError, match=r"seed=None: .* draws samples: give an integer seed"):
        F.fit(LINE, t, {"a": 0.0})
    assert CALLS["n"] == 0 and not (tmp_path / "c.h5").exists()
    bad_shape = F.Model(lambda p, x: p["A"] * x[:3], (F.Parameter("A", "", 0.0),), name="bad shape")
    with pytest.raises(F.FitError, match=r"predict returned shape \(3,\), the target has \(25,\)"):
        F.fit(bad_shape, t, {"A": 1.0})
    for kw, msg in [({"lower": 1.0, "upper": 0.0}, r"x: bounds \(1.0, 0.0\) \[K\]: lower must be < upper"),
                    ({"lower": math.nan}, r"x: lower bound nan must be a number"),
                    ({"lower": math.inf}, r"lower must be < upper")]:
        with pytest.raises(F.FitError, match=msg):
            F.Parameter("x", "K", **kw)
    with pytest.raises(F.FitError, match="declared twice"):
        F.Model(decay, (F.Parameter("A", ""), F.Parameter("A", "")), name="dup")


def test_figure_and_format(tmp_path):
    r = F.fit(DECAY, target(np.random.default_rng(8)), START)
    fig = F.figure_fit(r, DECAY, tmp_path / "fit.png")
    assert (tmp_path / "fit.png").stat().st_size > 10_000 and len(fig.axes) == 3
    ax = fig.axes[0]
    assert ax.get_ylabel() == "P_b" and any("tau = " in x.get_text() for x in ax.get_legend().get_texts())
    assert fig.axes[1].get_xlabel() == "temperature [K]"
    assert F.format_value(1.23456, 0.01234) == "1.235 ± 0.012"
    assert F.format_value(152.7, 13.2) == "153 ± 13"
    assert F.format_value(2.5e-5, 3e-7) == "(2.500 ± 0.030)e-5"
