"""Lattice: normal modes against the dynamical matrix, transforms against the dense mode matrix,
thermal samplers against analytic moments, exact harmonic flow against the normal-mode solution."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wow import lattice as L
from wow.units import HBAR, KB

CHAINS = [L.Chain(N=N, boundary=b) for b in ("open", "ring") for N in (5, 8, 9, 16)]


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: f"{c.boundary}{c.N}")
def test_modes_diagonalise_dynamical_matrix(chain):
    D = L.dynamical_matrix(chain)
    E = L.mode_matrix(chain)
    w = L.mode_frequencies(chain)
    assert np.allclose(E.T @ E, np.eye(chain.N - 1), atol=1e-13)
    assert np.allclose(E.sum(0), 0, atol=1e-13)  # orthogonal to the CM: sum_n e_nj = 0
    assert np.allclose(D @ E, E * w**2, atol=1e-13 * w.max() ** 2)
    ev = np.linalg.eigvalsh(D)
    assert abs(ev[0]) < 1e-12 * ev[-1]  # the CM zero mode
    assert np.allclose(np.sort(ev[1:]), np.sort(w**2), rtol=1e-10)


@pytest.mark.parametrize("chain", CHAINS, ids=lambda c: f"{c.boundary}{c.N}")
def test_fast_transforms_match_dense_matrix(chain):
    rng = np.random.default_rng(0)
    E = L.mode_matrix(chain)
    X = rng.normal(size=chain.N - 1)
    u = np.asarray(L.modes_to_sites(chain, jnp.asarray(X)))
    assert np.allclose(u, E @ X, atol=1e-13)
    assert abs(u.sum()) < 1e-12
    assert np.allclose(L.sites_to_modes(chain, jnp.asarray(u)), X, atol=1e-13)


def _moments(chain, T, statistics, n=4000):
    keys = jax.random.split(jax.random.PRNGKey(1), n)
    s = jax.vmap(lambda k: L.sample_modes(k, chain, T, statistics))(keys)
    return np.asarray(s.Q), np.asarray(s.P), np.asarray(s.P_R), n


@pytest.mark.parametrize("statistics", ["classical", "quantum"])
@pytest.mark.parametrize("T", [30.0, 300.0])
def test_sampler_moments(statistics, T):
    chain = L.Chain(N=12, boundary="open")
    Q, P, P_R, n = _moments(chain, T, statistics)
    w = L.mode_frequencies(chain)
    M = chain.mass_ev
    if statistics == "classical":
        vQ, vP = KB * T / (M * w**2), M * KB * T * np.ones_like(w)
    else:
        c = 1 / np.tanh(HBAR * w / (2 * KB * T))
        vQ, vP = HBAR / (2 * M * w) * c, HBAR * M * w / 2 * c
    # sample variance of a Gaussian has relative standard error sqrt(2/n): allow 5 of them
    tol = 5 * np.sqrt(2 / n)
    assert np.all(np.abs(Q.var(0) / vQ - 1) < tol)
    assert np.all(np.abs(P.var(0) / vP - 1) < tol)
    assert np.all(np.abs(Q.mean(0)) < 5 * np.sqrt(vQ / n))
    assert abs(P_R.var() / (chain.N * M * KB * T) - 1) < tol  # paper Eq. A10


def test_quantum_zero_point_and_classical_limits():
    chain = L.Chain(N=10)
    w = L.mode_frequencies(chain)
    M = chain.mass_ev
    vQ0, vP0 = (np.asarray(v) for v in L.mode_variances(chain, 0.0, "quantum"))
    assert np.allclose(vQ0, HBAR / (2 * M * w), rtol=1e-14)  # zero point
    assert np.allclose(vP0, HBAR * M * w / 2, rtol=1e-14)
    vQc, _ = (np.asarray(v) for v in L.mode_variances(chain, 0.0, "classical"))
    assert np.all(vQc == 0)
    # high T: coth(x/2) -> 2/x, quantum -> classical with relative correction x²/12
    T = 1e5
    vQq, vPq = (np.asarray(v) for v in L.mode_variances(chain, T, "quantum"))
    vQc, vPc = (np.asarray(v) for v in L.mode_variances(chain, T, "classical"))
    x = HBAR * w / (KB * T)
    assert np.allclose(vQq / vQc - 1, x**2 / 12, rtol=1e-3)
    assert np.allclose(vPq / vPc - 1, x**2 / 12, rtol=1e-3)
    # sampled zero-point variance
    Q, _, P_R, n = _moments(chain, 0.0, "quantum")
    assert np.all(np.abs(Q.var(0) / vQ0 - 1) < 5 * np.sqrt(2 / n))
    assert np.all(P_R == 0)


def test_fock_sampler_mean_is_bose_einstein():
    chain = L.Chain(N=8)
    T = 300.0
    keys = jax.random.split(jax.random.PRNGKey(2), 20000)
    n = np.asarray(jax.vmap(lambda k: L.sample_fock(k, chain, T))(keys))
    nbar = L.fock_mean(chain, T)
    sem = np.sqrt(nbar * (nbar + 1) / n.shape[0])  # geometric distribution variance n̄(n̄+1)
    assert np.all(np.abs(n.mean(0) - nbar) < 5 * sem)
    assert np.all(np.asarray(L.sample_fock(keys[0], chain, 0.0)) == 0)


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
def test_wigner_sample_derivative_at_zero_temperature(dtype):
    """d/dT of a Wigner sample at a fixed key, at T = 0: the internal modes' widths approach the zero
    point exponentially flat, so the pathwise derivative is exactly 0, in forward and in reverse mode
    (reverse gave NaN when the unused coth branch saw a clamped T = 1e-300). The classical sample and
    the drawn P_R scale as sqrt(T): infinite derivative at T = 0, which gradient callers refuse."""
    chain = L.Chain(N=8)
    key = jax.random.PRNGKey(3)
    sample = lambda T, stat: L.sample_modes(key, chain, T, stat, dtype)

    @jax.jit
    def derivatives(T):
        fwd = jax.jacfwd(lambda T: sample(T, "quantum"))(T)
        # reverse mode per output (a jacrev over the whole sample would also pull a zero cotangent
        # through P_R's sqrt(T) at 0: 0 x inf = NaN)
        revQ = jax.jacrev(lambda T: sample(T, "quantum").Q)(T)
        revP = jax.jacrev(lambda T: sample(T, "quantum").P)(T)
        return fwd, revQ, revP, jax.jacfwd(lambda T: sample(T, "classical").Q)(T)

    fwd, revQ, revP, classical = derivatives(jnp.asarray(0.0, dtype))
    for d in (fwd.Q, fwd.P, revQ, revP):
        assert np.all(np.asarray(d) == 0)
    assert np.isinf(float(fwd.P_R))
    assert np.all(np.isinf(np.asarray(classical)))
    # just above T = 0 the derivative is finite and (to rounding) zero for the Wigner modes
    _, small, _, _ = derivatives(jnp.asarray(1.0, dtype))
    assert np.all(np.isfinite(np.asarray(small))) and float(jnp.abs(small).max()) < 1e-30


@pytest.mark.parametrize("boundary", ["open", "ring"])
def test_sites_have_no_cm_component(boundary):
    chain = L.Chain(N=64, boundary=boundary)
    s = L.sample_modes(jax.random.PRNGKey(3), chain, 300.0, "quantum")
    st = L.to_sites(chain, s)
    assert abs(float(st.u.sum())) < 1e-12 and abs(float(st.v.sum())) < 1e-14


@pytest.mark.parametrize("boundary", ["open", "ring"])
def test_harmonic_flow_is_exact_harmonic_motion(boundary):
    chain = L.Chain(N=48, boundary=boundary)
    s = L.sample_modes(jax.random.PRNGKey(4), chain, 300.0, "classical")
    h = 0.25  # fs
    n_terms = L.flow_terms(chain, h, jnp.float64)
    omega2 = chain.spring / chain.mass_ev

    def body(x, _):
        return L.harmonic_flow(x, h, omega2, boundary, n_terms), None

    x, _ = jax.lax.scan(body, L.to_sites(chain, s), None, length=800)  # 200 fs, > 1 period of ω_max
    ref = L.harmonic_motion(chain, s, 800 * h)
    scale = float(jnp.abs(ref.u).max())
    assert float(jnp.abs(x.u - ref.u).max()) < 1e-12 * scale
    assert float(jnp.abs(x.v - ref.v).max()) < 1e-12 * scale * chain.omega_max
    assert abs(float(x.u.sum())) < 1e-11 * scale
    # energy of the internal modes is conserved
    def e(st):
        b = st.u[1:] - st.u[:-1] if boundary == "open" else jnp.roll(st.u, -1) - st.u
        return 0.5 * chain.mass_ev * jnp.sum(st.v**2) + 0.5 * chain.spring * jnp.sum(b**2)
    assert abs(float(e(x) / e(L.to_sites(chain, s))) - 1) < 1e-12


def test_flow_terms_track_precision():
    chain = L.Chain()
    assert L.flow_terms(chain, 0.01, jnp.float32) < L.flow_terms(chain, 0.01, jnp.float64)
    x = chain.omega_max * 0.01
    m = L.flow_terms(chain, 0.01, jnp.float64)
    assert x**m / math.factorial(m) < np.finfo(np.float64).eps


@pytest.mark.parametrize("boundary", ["open", "ring"])
def test_step_pair_is_exact_harmonic_motion(boundary):
    """The two-step recurrence samples the exact motion at t + h/2, t + 3h/2, ...; the (u, v)
    recovered halfway between two samples equal the normal-mode solution to rounding."""
    chain = L.Chain(N=48, boundary=boundary)
    s = L.sample_modes(jax.random.PRNGKey(5), chain, 300.0, "classical")
    h = 0.25
    n_terms = L.flow_terms(chain, h, jnp.float64)
    omega2 = chain.spring / chain.mass_ev
    pr = L.pair_start(L.to_sites(chain, s), h, omega2, boundary, n_terms)
    ref0 = L.harmonic_motion(chain, s, h / 2)
    scale = float(jnp.abs(ref0.u).max())
    assert float(jnp.abs(pr.u - ref0.u).max()) < 1e-13 * scale
    pr, _ = jax.lax.scan(lambda p, _: (L.pair_step(p, h, omega2, boundary, n_terms), None), pr, None, length=800)
    ref = L.harmonic_motion(chain, s, 800 * h + h / 2)
    assert float(jnp.abs(pr.u - ref.u).max()) < 1e-12 * scale
    back = L.pair_sites(pr, h, omega2, boundary, n_terms)  # halfway: t = 800 h
    mid = L.harmonic_motion(chain, s, 800 * h)
    assert float(jnp.abs(back.u - mid.u).max()) < 1e-12 * scale
    assert float(jnp.abs(back.v - mid.v).max()) < 1e-12 * scale * chain.omega_max
    assert abs(float(pr.u.sum())) < 1e-11 * scale
    # pair_unstep runs it back (reversible gradients): 800 steps back to the start pair, to rounding
    start = L.pair_start(L.to_sites(chain, s), h, omega2, boundary, n_terms)
    pr, _ = jax.lax.scan(lambda p, _: (L.pair_unstep(p, h, omega2, boundary, n_terms), None), pr, None, length=800)
    assert float(jnp.abs(pr.u - start.u).max()) < 1e-12 * scale
    assert float(jnp.abs(pr.d - start.d).max()) < 1e-12 * scale


def test_float32_lattice_error_stays_at_rounding():
    """In float32 both the summed recurrence and the flow keep the error of 10^4 steps (200 fs) at
    the rounding level (measured 3.6e-6 and 3.2e-6 of the largest u). Before the flow added its
    increments to u last it drifted to 2.1e-4: a rounded 1 + O(ω²h²) tap is a systematic error."""
    chain = L.Chain(N=256)
    s = L.sample_modes(jax.random.PRNGKey(6), chain, 300.0, "classical", jnp.float32)
    st = L.SiteState(*(x.astype(jnp.float32) for x in (L.to_sites(chain, s).u, L.to_sites(chain, s).v)))
    h, steps = 0.02, 10_000
    n_terms = L.flow_terms(chain, h, jnp.float32)
    omega2 = jnp.float32(chain.spring / chain.mass_ev)
    h32 = jnp.float32(h)
    pr = L.pair_start(st, h32, omega2, "open", n_terms)
    pr, _ = jax.lax.scan(lambda p, _: (L.pair_step(p, h32, omega2, "open", n_terms), None), pr, None, length=steps)
    fl = L.harmonic_flow(st, h32 / 2, omega2, "open", n_terms)
    fl, _ = jax.lax.scan(lambda x, _: (L.harmonic_flow(x, h32, omega2, "open", n_terms), None), fl, None, length=steps)
    ref = L.harmonic_motion(chain, s, steps * h + h / 2)
    scale = float(jnp.abs(ref.u).max())
    err_pair = float(jnp.abs(pr.u - ref.u).max()) / scale
    err_flow = float(jnp.abs(fl.u - ref.u).max()) / scale
    assert err_pair < 2e-5 and err_flow < 2e-5, (err_pair, err_flow)
