"""The fourth-order step (Config.order = 4, Yoshida's triple jump of Strang sub-steps): fitted
global error order against exact references (expm for a frozen lattice, a converged Magnus
integrator for the moving wow lattice), exact unitarity, time reversal, and validation."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

import wow
from wow import lattice as L
from wow.ensemble import initial_packet
from wow.propagate import COMPOSITIONS
from wow.units import HBAR

from references import config_H
from test_propagate import LIGHT, _order, magnus4, make, run_core


def test_yoshida_weights():
    w1, w0, w1b = COMPOSITIONS[4]
    assert w1 == w1b and 2 * w1 + w0 == pytest.approx(1, abs=1e-15)
    assert 2 * w1**3 + w0**3 == pytest.approx(0, abs=1e-14)  # kills the third-order error


@pytest.mark.parametrize("recoil,D", [(False, 0.0), (False, 1.0), (True, 1.0)])
def test_frozen_global_error_is_fourth_order(recoil, D):
    """Against expm of the frozen chain's H written out in the test (with the recoil term when on, on a
    light chain where it spans ~0.2 eV): slope 3.8-4.2."""
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    t_final = 4.0
    errs = []
    for dt in dts:
        cfg, s, lat0, Q = make(N=24, boundary="ring", recoil=recoil, D=D, dt=dt, steps=int(round(t_final / dt)),
                               mass=LIGHT if recoil else 63.546)
        cfg = dataclasses.replace(cfg, order=4)
        psi, _, _ = run_core(cfg, lat0, Q)
        ref = sla.expm(-1j * config_H(cfg, lat0.u, Q) * t_final / HBAR) @ np.asarray(initial_packet(cfg))
        errs.append(np.linalg.norm(np.asarray(psi) - ref))
    assert errs[-1] > 1e-12  # still above rounding, so the slope is the scheme's
    assert 3.8 <= _order(errs, dts) <= 4.2


def test_order4_beats_strang_at_equal_work():
    """Three Strang sub-steps of dt/3 cost what one order-4 step of dt costs; at dt = 0.05 fs the
    order-4 run is already more accurate by more than an order of magnitude."""
    t_final, dt = 4.0, 0.05
    err = {}
    for order, h in ((2, dt / 3), (4, dt)):
        cfg, s, lat0, Q = make(N=24, boundary="ring", D=1.0, dt=h, steps=int(round(t_final / h)))
        cfg = dataclasses.replace(cfg, order=order)
        psi, _, _ = run_core(cfg, lat0, Q)
        ref = sla.expm(-1j * config_H(cfg, lat0.u, Q) * t_final / HBAR) @ np.asarray(initial_packet(cfg))
        err[order] = np.linalg.norm(np.asarray(psi) - ref)
    assert err[4] < err[2] / 10


def test_wow_against_magnus_reference_fourth_order():
    """Moving lattice: every sub-step evaluates the hoppings at its own midpoint of the exact
    harmonic motion (the lattice backend is composed with the sub-step lengths)."""
    dts = np.array([0.2, 0.1, 0.05, 0.025])
    t_final = 5.0
    errs = []
    for dt in dts:
        cfg, s, lat0, Q = make(N=16, boundary="open", dynamics="wow", D=1.0, dt=dt, steps=int(round(t_final / dt)))
        cfg = dataclasses.replace(cfg, order=4, chain=dataclasses.replace(cfg.chain, mass=1.0, spring=10.0))
        s = L.sample_modes(jax.random.PRNGKey(0), cfg.chain, 300.0, "classical")
        psi, lat, _ = run_core(cfg, L.to_sites(cfg.chain, s), Q)
        if dt == dts[0]:
            ref = magnus4(cfg, L.to_sites(cfg.chain, s), Q, initial_packet(cfg), t_final, n_sub=1000)
            # the lattice really moves, and ends at the exact harmonic motion at t_final
            exact = L.harmonic_motion(cfg.chain, s, t_final)
            assert float(jnp.abs(exact.u - L.to_sites(cfg.chain, s).u).max()) > 0.1
            assert float(jnp.abs(lat.u - exact.u).max()) < 1e-11
        errs.append(np.linalg.norm(np.asarray(psi) - ref))
    assert errs[-1] > 1e-9  # measured 3.1e-6; the reference changes by < 1e-12 from n_sub 1000 to 2000
    assert 3.8 <= _order(errs, dts) <= 4.2


@pytest.mark.parametrize("boundary,dynamics", [("open", "frozen"), ("ring", "wow"), ("open", "wow")])
def test_order4_step_is_unitary_for_any_real_hoppings(boundary, dynamics):
    """Every basis vector through a few wild order-4 steps (negative middle sub-step included):
    the columns stay orthonormal."""
    N = 12
    cfg, s, lat0, Q = make(N=N, boundary=boundary, dynamics=dynamics, recoil=True, D=3.0, alpha=40.0,
                           dt=0.7, steps=3)
    cfg = dataclasses.replace(cfg, order=4)
    U = np.asarray(run_core(cfg, lat0, Q, jnp.eye(N, dtype=jnp.complex128))[0]).T  # column n: ψ from site n
    assert np.allclose(U.conj().T @ U, np.eye(N), atol=1e-13)


@pytest.mark.parametrize("dynamics", ["frozen", "wow"])
def test_order4_forward_then_backward_returns_initial_state(dynamics):
    cfg, s, lat0, Q = make(N=41, boundary="open", dynamics=dynamics, recoil=True, D=1.0, dt=0.04, steps=300)
    cfg = dataclasses.replace(cfg, order=4)
    psi0 = initial_packet(cfg)
    psi, lat, _ = run_core(cfg, lat0, Q)
    psi_b, lat_b, _ = run_core(cfg, lat, Q, psi, backward=True)
    assert float(jnp.abs(psi - psi0).max()) > 1e-2
    assert float(jnp.abs(psi_b - psi0).max()) < 1e-12
    assert float(jnp.abs(lat_b.u - lat0.u).max()) < 1e-12


@pytest.mark.parametrize("bad", [3, 1, "4", True, None])
def test_order_validated(bad):
    with pytest.raises(wow.ConfigError, match="order="):
        wow.validate(wow.Config(order=bad))


@pytest.mark.slow
def test_run_with_order4_matches_extrapolated_strang():
    """The ensemble path passes the order through: P_b of order 4 at dt = 0.025 fs equals the
    Richardson extrapolation of Strang at dt = 0.01 and 0.005 fs (measured: within 5e-7), while
    Strang at 0.01 fs itself is off by ~1e-5."""
    base = wow.Config(chain=wow.Chain(N=256), electron=wow.Electron(sigma=10.0), duration=15.0, n_frames=1)
    P = lambda order, dt: wow.run(dataclasses.replace(base, dt=dt, order=order), 2).per_sample["P_b"]
    p2a, p2b = P(2, 0.01), P(2, 0.005)
    ref = (4 * p2b - p2a) / 3
    assert np.max(np.abs(p2a - ref)) > 5e-6
    assert np.max(np.abs(P(4, 0.025) - ref)) < 2e-6
