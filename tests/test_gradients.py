"""Derivatives: the finite-difference checker (wow.fdcheck) against closed forms, and the pathwise
temperature derivative of the thermal samplers (fixed key: fixed normals scaled by the thermal
widths) against Richardson-extrapolated central differences and, for ensemble averages, against the
analytic derivatives of the mode variances."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wow import lattice as L
from wow.fdcheck import central_difference
from wow.units import HBAR, KB


def test_central_difference_against_closed_forms():
    f = lambda p: np.exp(p["a"]) * np.sin(p["b"]) + p["a"] ** 3 * np.array([1.0, 2.0])  # noqa: E731
    est, err = central_difference(f, {"a": 0.7, "b": 1.3})
    da = np.exp(0.7) * np.sin(1.3) + 3 * 0.7**2 * np.array([1.0, 2.0])
    db = np.exp(0.7) * np.cos(1.3) * np.ones(2)
    assert np.allclose(est["a"], da, rtol=1e-12, atol=0) and np.allclose(est["b"], db, rtol=1e-12, atol=0)
    assert np.all(err["a"] < 1e-11) and np.all(err["b"] < 1e-11)
    # a parameter at 0 (default first step 0.1) and one named explicitly with its own step
    est, err = central_difference(lambda p: np.sqrt(p["T"]) + p["x"] ** 2, {"T": 300.0, "x": 0.0},
                                  names=["T"], step={"T": 50.0})
    assert list(est) == ["T"] and abs(est["T"] - 0.5 / np.sqrt(300.0)) < 1e-13
    est, _ = central_difference(lambda p: np.cos(p["x"]), {"x": 0.0})
    assert abs(est["x"]) < 1e-15
    with pytest.raises(ValueError, match=r"names \['y'\]: not in params"):
        central_difference(f, {"a": 0.7, "b": 1.3}, names=["y"])
    with pytest.raises(ValueError, match="step for 'a'"):
        central_difference(f, {"a": 0.7, "b": 1.3}, step=-1.0)


def _flat(s: L.ModeSample):
    return jnp.concatenate([s.Q, s.P, s.P_R[None]])


@pytest.mark.parametrize("boundary,N", [("open", 12), ("ring", 8)])
@pytest.mark.parametrize("statistics", ["classical", "quantum"])
def test_sample_temperature_derivative_matches_richardson(boundary, N, statistics):
    """d/dT of one sample (Q, P, P_R at a fixed key) by forward (jax.jvp) and reverse (jax.jacrev)
    mode against central differences with Richardson extrapolation, at 30 K and 300 K: relative
    agreement 1e-6 asked; float64 gives 1e-9 or better (asserted too)."""
    chain = L.Chain(N=N, boundary=boundary)
    key = jax.random.PRNGKey(4)
    sample = lambda T: _flat(L.sample_modes(key, chain, T, statistics))  # noqa: E731
    value_and_tangent = jax.jit(lambda T: jax.jvp(sample, (T,), (jnp.ones_like(T),)))
    rev = jax.jit(jax.jacrev(sample))
    for T in (30.0, 300.0):
        T = jnp.asarray(T)
        fwd = np.asarray(value_and_tangent(T)[1])
        est, err = central_difference(lambda p: value_and_tangent(p["T"])[0], {"T": T})
        scale = np.abs(fwd).max()
        assert np.abs(fwd - est["T"]).max() < 1e-6 * scale
        assert np.abs(fwd - est["T"]).max() < 1e-9 * scale
        assert np.abs(np.asarray(rev(T)) - fwd).max() < 1e-14 * scale
        assert err["T"].max() < 1e-9 * scale


def _dvarQ_dT(chain, T, statistics):
    """Analytic d<Q_j²>/dT: k_B/(Mω²) (classical); ħ/(2Mω) · x/(T sinh²x), x = ħω/2k_BT (Wigner)."""
    w = L.mode_frequencies(chain)
    M = chain.mass_ev
    if statistics == "classical":
        return KB / (M * w**2)
    x = HBAR * w / (2 * KB * T)
    return HBAR / (2 * M * w) * x / (T * np.sinh(x) ** 2)


@pytest.mark.parametrize("statistics", ["classical", "quantum"])
def test_ensemble_average_derivative_is_the_variance_derivative(statistics):
    """d<u_n²>/dT over 4000 samples at fixed keys (the pathwise estimator: forward mode through vmap)
    is an unbiased estimate of the analytic Σ_j e_nj² d<Q_j²>/dT: within 5 standard errors at every
    site; for the finite ensemble it equals its own Richardson finite difference to 1e-9. The
    classical sample scales as sqrt(T), so there it is exactly <u_n²>/T; so is d<P_R²>/dT = <P_R²>/T
    (mean N M k_B) for both statistics."""
    chain = L.Chain(N=12, boundary="open")
    T = jnp.asarray(100.0)
    keys = jax.random.split(jax.random.PRNGKey(9), 4000)

    def squares(T):  # (samples, N + 1): u_n² per site and P_R², per sample
        s = jax.vmap(lambda k: L.sample_modes(k, chain, T, statistics))(keys)
        u = jax.vmap(lambda Q: L.modes_to_sites(chain, Q))(s.Q)
        return jnp.concatenate([u**2, s.P_R[:, None] ** 2], axis=1)

    value_and_tangent = jax.jit(lambda T: jax.jvp(squares, (T,), (jnp.ones_like(T),)))
    sq, d = (np.asarray(a) for a in value_and_tangent(T))
    est = d[:, :-1].mean(0)
    sem = d[:, :-1].std(0, ddof=1) / np.sqrt(len(keys))
    exact = L.mode_matrix(chain) ** 2 @ _dvarQ_dT(chain, float(T), statistics)
    z = (est - exact) / sem
    assert np.all(np.abs(z) < 5), z
    fd, _ = central_difference(lambda p: value_and_tangent(p["T"])[0].mean(0), {"T": T})
    assert np.abs(fd["T"][:-1] - est).max() < 1e-9 * np.abs(est).max()
    if statistics == "classical":
        assert np.allclose(est, sq[:, :-1].mean(0) / float(T), rtol=1e-12, atol=0)
    assert np.allclose(d[:, -1], sq[:, -1] / float(T), rtol=1e-12, atol=0)
    assert abs(d[:, -1].mean() / (chain.N * chain.mass_ev * KB) - 1) < 5 * np.sqrt(2 / len(keys))
