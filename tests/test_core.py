"""The one core: every (model, dynamics) pair through wow.run; deterministic runs from a given state
against exact propagation (expm, the Magnus reference); a static site-energy defect against its
transfer matrix; the static step count (the reverse-mode path) against the traced one and a
gradient against finite differences; a dt-convergence study compiling once; given-state refusals."""

import dataclasses
import math

import jax
import jax.monitoring
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

import wow
from wow import ensemble, models
from wow import lattice as L
from wow.dynamics import DYNAMICS
from wow.electron import k_grid
from wow.propagate import propagate
from wow.theory import reflection_probability
from wow.units import HBAR

from references import config_H
from test_propagate import LIGHT, magnus4

#: Backend compilations seen by this test module (jax.monitoring: one event per XLA compile).
_COMPILES = []
jax.monitoring.register_event_duration_secs_listener(
    lambda name, secs, **kw: _COMPILES.append(name) if name == "/jax/core/compile/backend_compile_duration" else None)


def small(dynamics, boundary="ring", **kw):
    cfg = wow.Config(chain=wow.Chain(N=32, boundary=boundary, mass=4.0), electron=wow.Electron(alpha=1.0, D=0.5, sigma=3.0),
                     dynamics=dynamics, duration=1.0, n_frames=2, check_inside=False, **kw)
    if dynamics == "quantum":
        cfg = dataclasses.replace(cfg, quantum=wow.QuantumLattice(modes=(4, 28), n_max=2, others="wow"))
    if dynamics == "noise":
        cfg = dataclasses.replace(cfg, noise=wow.Noise(rate=0.5))
    return cfg


def small_continuum(dynamics, **kw):
    """The density-density model on a small ring (N = 8, g = 8: 64 grid points), the same modes
    quantum as ``small`` (4 and N - 4)."""
    cfg = wow.Config(chain=wow.Chain(N=8, boundary="ring", mass=4.0),
                     electron=wow.Continuum(V0=1.0, w=1.0, g=8, sigma=1.0, u_max=1.5),
                     dynamics=dynamics, duration=1.0, n_frames=2, dt=0.05, **kw)
    if dynamics == "quantum":
        cfg = dataclasses.replace(cfg, quantum=wow.QuantumLattice(modes=(2, 6), n_max=2, others="wow"))
    return cfg


@pytest.mark.parametrize("model", list(models.MODELS))
@pytest.mark.parametrize("dynamics", DYNAMICS)
def test_every_model_with_every_dynamics_through_one_entry(model, dynamics):
    """Each pair runs through wow.run, keeps the norm, and returns the one result type with the same
    core tallies (quantum: the Δn-resolved ones beside them)."""
    assert model in (wow.Electron, wow.Continuum)
    if model is wow.Continuum and dynamics == "noise":  # the dephasing noise acts on the chain's sites only
        with pytest.raises(wow.ConfigError, match="dynamics='noise'"):
            wow.validate(small_continuum(dynamics))
        return
    cfg = small(dynamics) if model is wow.Electron else small_continuum(dynamics)
    modes = (4, 28) if model is wow.Electron else (2, 6)
    r = wow.run(cfg, 2, seed=1)
    assert isinstance(r, wow.EnsembleResult)
    for name in ("P_b", "P_R0", "P_R_f", "norm"):
        assert r.per_sample[name].shape == (2,), name
    for name in ("norm", "x_mean", "k_mean", "P_b", "P_R"):
        assert r.traces[name].shape == (2, 3), name
    np.testing.assert_allclose(r.traces["norm"], 1.0, atol=1e-12)
    assert np.all(r.per_sample["P_b"] > 0) and np.all(r.per_sample["P_b"] < 1)
    if dynamics == "quantum":
        assert r.per_sample["back"].shape == (2, 3, 3) and r.modes == modes and "f_el" in r.fractions
    else:
        assert "dE_e" in r.per_sample
    # the coherent split's total is the mean backscattered probability (over Fock states too)
    assert r.coherent["P_tot"] == pytest.approx(np.mean(r.per_sample["P_b"]), rel=1e-10)


def test_given_state_frozen_equals_expm():
    """n_samples = 1 from a given lattice (u) and CM momentum: a frozen ring with recoil and site
    energies against expm of its Hamiltonian (the recoil term in the sector Q = P_R + ħk0)."""
    cfg = wow.Config(chain=wow.Chain(N=32, boundary="ring", mass=LIGHT), electron=wow.Electron(alpha=2.0, D=1.5, sigma=3.0),
                     temperature=300.0, dynamics="frozen", recoil=True, dt=0.005, duration=2.0, n_frames=1,
                     check_inside=False)
    lat = L.to_sites(cfg.chain, L.sample_modes(jax.random.PRNGKey(5), cfg.chain, 300.0, "classical"))
    P_R = 0.3
    r = wow.run(cfg, 1, initial=wow.InitialState(u=lat.u, v=lat.v, P_R=P_R), keep_final=True)
    Q = P_R + HBAR * cfg.k0
    ref = sla.expm(-1j * config_H(cfg, lat.u, Q) * cfg.t_final / HBAR) @ np.asarray(ensemble.initial_packet(cfg))
    assert np.linalg.norm(r.final["psi"][0] - ref) < 2e-5  # Strang at dt = 0.005 fs (measured 4e-6)
    assert r.per_sample["P_R0"][0] == P_R
    np.testing.assert_array_equal(r.final["u"][0], lat.u)  # frozen
    np.testing.assert_array_equal(r.final["v"][0], 0.0)  # a frozen lattice carries no velocity


def test_given_state_wow_equals_magnus_and_exact_lattice():
    """A given (u, v) moving lattice (wow) against the Magnus reference with the exact normal-mode
    motion, and the final lattice against that motion."""
    chain = wow.Chain(N=16, mass=1.0, spring=10.0)
    cfg = wow.Config(chain=chain, electron=wow.Electron(alpha=2.0, D=1.0, sigma=3.0), dynamics="wow", dt=0.025,
                     duration=5.0, n_frames=1, check_inside=False)
    s = L.sample_modes(jax.random.PRNGKey(0), chain, 300.0, "classical")
    lat = L.to_sites(chain, s)
    r = wow.run(cfg, 1, initial=wow.InitialState(u=lat.u, v=lat.v, P_R=0.0), keep_final=True)
    ref = magnus4(cfg, lat, HBAR * cfg.k0, ensemble.initial_packet(cfg), 5.0, n_sub=100)
    err = np.linalg.norm(r.final["psi"][0] - ref)
    assert 1e-5 < err < 2e-3  # the Strang error at dt = 0.025 fs (test_propagate: 9.8e-4 at dt = 0.1 x 1/4²)
    exact = L.harmonic_motion(chain, s, 5.0)
    assert float(jnp.abs(exact.u - lat.u).max()) > 0.1  # it moved
    np.testing.assert_allclose(r.final["u"][0], exact.u, atol=1e-11)
    np.testing.assert_allclose(r.final["v"][0], exact.v, atol=1e-11)


def test_given_states_in_a_batch_equal_one_by_one_and_modes_equal_sites():
    """Given states with a leading sample axis run as a batch; the same states given as mode
    amplitudes (Q, P) give the same numbers as on the sites (u, v)."""
    cfg = small("ehrenfest")
    keys = jax.random.split(jax.random.PRNGKey(2), 2)
    s = jax.vmap(lambda k: L.sample_modes(k, cfg.chain, 300.0, "classical"))(keys)
    sites = jax.vmap(lambda x: L.to_sites(cfg.chain, x))(s)
    batch = wow.run(cfg, initial=wow.InitialState(Q=s.Q, P=s.P, P_R=s.P_R))
    assert batch.n_samples == 2
    for i in range(2):
        one = wow.run(cfg, 1, initial=wow.InitialState(u=sites.u[i], v=sites.v[i], P_R=s.P_R[i]))
        for name in ("P_b", "dE_e", "dE_lat", "P_R_f"):
            assert one.per_sample[name][0] == pytest.approx(batch.per_sample[name][i], rel=1e-10, abs=1e-13), name


@pytest.mark.parametrize("de", [0.4, -0.9])
def test_static_site_defect_matches_transfer_matrix(de):
    """P_b of a packet sent onto one site of energy δε (perfect chain, T = 0, one sample) equals the
    exact R(k) averaged over the packet's momentum distribution."""
    cfg = wow.Config(chain=wow.Chain(N=400, a=1.0),
                     electron=wow.Electron(t0=1.0, alpha=0.0, k0=math.pi / 3, sigma=10.0, x0=100.0,
                                           onsite_defects=((200, de),)),
                     temperature=0.0, dynamics="frozen", dt=0.01, duration=65.0, n_frames=1, check_inside=False)
    r = wow.run(cfg, 1)
    w = np.abs(np.fft.fft(np.asarray(ensemble.initial_packet(cfg)), norm="ortho")) ** 2
    k = k_grid(cfg.chain.N, 1.0)
    fwd = (k > 0) & (k < math.pi)
    expected = np.sum(w[fwd] * reflection_probability(k[fwd], 1.0, 1.0, eps_sites=[de]))
    assert expected > 0.01
    assert r.per_sample["P_b"][0] == pytest.approx(expected, rel=2e-4)


def test_static_step_count_equals_traced_and_is_reverse_differentiable():
    """Plan.steps_per_frame given (a static scan) runs the same steps as the traced count, and
    jax.grad through it matches a central finite difference."""
    cfg = wow.Config(chain=wow.Chain(N=24, boundary="ring"), electron=wow.Electron(alpha=1.0, sigma=3.0),
                     dynamics="wow", dt=0.05, duration=2.0, n_frames=2, check_inside=False)
    traced, inputs = ensemble.program_of(cfg)
    static, _ = ensemble.program_of(cfg, steps_per_frame=cfg.steps_per_frame)
    lat = L.to_sites(cfg.chain, L.sample_modes(jax.random.PRNGKey(1), cfg.chain, 300.0, "classical"))
    lat = L.SiteState(lat.u[None], lat.v[None])
    psi0 = ensemble.initial_packet(cfg)[None]
    Q = jnp.zeros((1,))
    a = propagate(traced, inputs, psi0, lat, Q)[0]
    b = propagate(static, inputs, psi0, lat, Q)[0]
    np.testing.assert_allclose(a, b, atol=1e-14)

    def P_b(alpha):
        inp = dataclasses.replace(inputs, model=dataclasses.replace(inputs.model, alpha=alpha))
        return propagate(static, inp, psi0, lat, Q)[2]["P_b"][0, -1]

    g = float(jax.grad(P_b)(jnp.asarray(1.0)))
    h = 1e-4
    fd = float(P_b(jnp.asarray(1.0 + h)) - P_b(jnp.asarray(1.0 - h))) / (2 * h)
    assert abs(g) > 1e-3
    assert g == pytest.approx(fd, rel=1e-6)


def test_dt_convergence_study_compiles_once():
    """Five dt values (and durations) at a fixed frame count reuse one compiled program: no XLA
    compilation after the first run, and the results do change with dt (converging as dt²)."""
    base = wow.Config(chain=wow.Chain(N=64), electron=wow.Electron(sigma=5.0), duration=2.0, n_frames=2,
                      check_inside=False)
    P, compiles = [], []
    for dt in (0.04, 0.02, 0.01, 0.005, 0.0025):
        before, programs = len(_COMPILES), ensemble.compile_count()
        r = wow.run(dataclasses.replace(base, dt=dt), 2)
        compiles.append((len(_COMPILES) - before, ensemble.compile_count() - programs))
        P.append(r.per_sample["P_b"])
    before, programs = len(_COMPILES), ensemble.compile_count()
    longer = wow.run(dataclasses.replace(base, dt=0.03, duration=3.3), 2)  # another duration too
    compiles.append((len(_COMPILES) - before, ensemble.compile_count() - programs))
    assert longer.times[-1] == pytest.approx(3.3)
    assert compiles[0][1] == 1  # the first run compiles the chunk program
    assert all(c == (0, 0) for c in compiles[1:]), compiles
    d = [np.abs(P[i] - P[-1]).max() for i in range(3)]
    assert d[0] > 1e-6 and d[0] / d[1] > 3.5 and d[1] / d[2] > 3.5  # dt² (measured ~4.0)


def test_given_state_refusals():
    cfg = small("wow")
    N = cfg.chain.N
    for init, match in [
        (wow.InitialState(u=np.ones(N)), "sums to"),
        (wow.InitialState(u=np.zeros(N + 1)), "last axis"),
        (wow.InitialState(u=np.zeros(N), Q=np.zeros(N - 1)), "either"),
        (wow.InitialState(psi=np.ones(N)), "norm"),
        (wow.InitialState(P_R=np.zeros(3), u=np.zeros((2, N))), "disagree"),
        (wow.InitialState(occupations=(1,)), "quantum"),
        (wow.InitialState(v=np.full(N, np.nan)), "non-finite"),
    ]:
        with pytest.raises(wow.ConfigError, match=match):
            wow.run(cfg, initial=init, n_samples=None if init.P_R is not None else 1)
    with pytest.raises(wow.ConfigError, match="n_samples=2"):
        wow.run(cfg, 2, initial=wow.InitialState(P_R=np.zeros(3)))
    with pytest.raises(wow.ConfigError, match="n_samples=None"):
        wow.run(cfg)


def test_interleave_inverts_by_parity():
    """chain.interleave puts (even, odd) back into site order: the energy's bond densities rely on
    it (odd and even lengths, leading axes)."""
    from wow.models.chain import by_parity, interleave

    for n in (7, 8):
        x = np.arange(3 * n, dtype=float).reshape(3, n)
        even, odd = by_parity(jnp.asarray(x), (n + 1) // 2)
        np.testing.assert_array_equal(np.asarray(interleave(even, odd, n)), x)
