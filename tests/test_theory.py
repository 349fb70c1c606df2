"""wow.theory, the analytic references, each against an independent derivation, its limits, and
the simulation: exact transfer-matrix reflection against the propagator, recoil kinematics (A6-A8)
against the propagator with CM recoil."""

import math

import numpy as np
import pytest

import wow
from wow import theory as th
from wow.ensemble import initial_packet, params_of
from wow.units import HBAR


# --------------------------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------------------------
def packet_weights(cfg):
    """|ψ~(k)|² of the initial packet and the DFT momenta (FFT order)."""
    psik = np.fft.fft(np.asarray(initial_packet(cfg)), norm="ortho")
    return np.abs(psik) ** 2, np.asarray(params_of(cfg).k)


def forward(k, a):
    return (k > 0) & (k < math.pi / a)


# --------------------------------------------------------------------------------------------
# Reflection R(k)
# --------------------------------------------------------------------------------------------
def test_reflection_closed_form_equals_transfer_matrix():
    k = np.linspace(0.01, math.pi - 0.01, 301) / 2.0  # a = 2 Å
    for t1 in (0.2, 0.6, 0.99, 1.3, 2.5, -0.7):
        R_tm = th.reflection_probability(k, 1.1, 2.0, t_bonds=[t1])
        R_cf = th.reflection_bond(k, 1.1, t1, 2.0)
        np.testing.assert_allclose(R_tm, R_cf, rtol=1e-10, atol=1e-14)
    assert np.all(th.reflection_probability(k, 1.1, 2.0) < 1e-24)  # no scatterer, no reflection


def test_reflection_conserves_flux_and_vanishes_with_the_defect():
    """R + T = 1 for a scatterer of several bonds and sites (T = |1/A|²); R -> 0 quadratically as
    the defect vanishes, with the weak-defect limit R ≈ (2δ/t0)²/(4 sin² ka) of one bond."""
    k = np.linspace(0.05, 3.0, 50)
    A, B = th._amplitudes(k, 1.0, 1.0, [0.7, 1.3, 0.2], [0.1, -0.4, 0.3, 0.5, 0.2])
    np.testing.assert_allclose(np.abs(B / A) ** 2 + np.abs(1 / A) ** 2, 1.0, atol=1e-12)
    R = [th.reflection_probability(k, 1.0, 1.0, [1 + d, 1 - d / 2], [d]) for d in (1e-2, 1e-3)]
    np.testing.assert_allclose(R[0] / R[1], 100.0, rtol=0.05)
    d = 1e-4
    np.testing.assert_allclose(th.reflection_bond(k, 1.0, 1 + d, 1.0), d**2 / np.sin(k) ** 2, rtol=1e-3)


def test_reflection_matches_propagator_for_two_modified_bonds():
    """P_b of a broad packet sent onto two modified bonds (perfect chain, T = 0, frozen) equals the
    exact R(k) averaged over the packet's |ψ~(k)|²."""
    t_pair = (0.7, 1.25)
    cfg = wow.Config(chain=wow.Chain(N=400, a=1.0),
                     electron=wow.Electron(t0=1.0, alpha=0.0, k0=math.pi / 3, sigma=10.0, x0=100.0,
                                           bond_defects=((199, t_pair[0] - 1.0), (200, t_pair[1] - 1.0))),
                     temperature=0.0, dynamics="frozen", dt=0.01, duration=65.0, n_frames=2,
                     check_inside=False)
    r = wow.run(cfg, 2)
    w, k = packet_weights(cfg)
    f = forward(k, 1.0)
    expected = np.sum(w[f] * th.reflection_probability(k[f], 1.0, 1.0, t_bonds=t_pair))
    assert np.sum(w[~f]) < 1e-12
    assert expected > 0.01
    assert r.per_sample["P_b"][0] == pytest.approx(expected, rel=2e-4)


# --------------------------------------------------------------------------------------------
# Recoil kinematics, Eqs. A6-A8
# --------------------------------------------------------------------------------------------
def test_recoil_energy_and_elastic_momentum():
    k, N, M = 1.2, 40, 2.0
    hk = HBAR * k
    Mt = N * wow.AMU * M
    for P in (-3 * hk, -hk, 0.0, 0.4 * hk):
        a6 = ((P + 2 * hk) ** 2 - P**2) / (2 * Mt)  # A6, the CM kinetic energy gained
        assert th.recoil_energy(k, P, N, M) == pytest.approx(a6, rel=1e-12, abs=1e-18)
    assert th.recoil_energy(k, th.elastic_cm_momentum(k), N, M) == 0.0  # A7
    assert th.recoil_energy(k, 0.0, 2 * N, M) == pytest.approx(th.recoil_energy(k, 0.0, N, M) / 2)


def test_backscatter_shift_is_exact_and_first_order_A8():
    """The root conserves energy and momentum to rounding, is zero at P = -ħk, and tends to -A8 with
    a relative correction that halves when N doubles (the second-order term)."""
    k, t0, a, M = np.array([0.4, 1.0, 2.2]), 1.0, 1.0, 0.0023
    for P in (-0.5, 0.0, 0.7):
        Q = P + HBAR * k
        shift = th.backscatter_energy_shift(k, P, 300, M, t0, a)
        # recover k' from the shift and check total energy: ε(k') + CM(k') = ε(k) + CM(k)
        kp = -np.arccos(np.cos(k * a) - shift / (2 * t0)) / a
        cm = lambda kk: (Q - HBAR * kk) ** 2 / (2 * 300 * wow.AMU * M)
        np.testing.assert_allclose(shift + cm(kp) - cm(k), 0.0, atol=1e-13)
    assert np.all(th.backscatter_energy_shift(k, -HBAR * k, 300, M, t0, a) == 0.0)
    dev = [np.abs(th.backscatter_energy_shift(k, 0.3, N, M, t0, a) / -th.recoil_energy(k, 0.3, N, M) - 1)
           for N in (300, 600)]
    assert np.all(dev[0] > 1e-4)
    np.testing.assert_allclose(dev[0] / dev[1], 2.0, rtol=0.02)


def _recoil_run(P, recoil, N=450):
    """Perfect chain (T = 0), one weakened bond, fixed CM momentum P, very light atoms."""
    cfg = wow.Config(chain=wow.Chain(N=N, mass=0.0023, a=1.0),
                     electron=wow.Electron(t0=1.0, alpha=0.0, k0=math.pi / 3, sigma=20.0, x0=100.0,
                                           bond_defects=((200, -0.4),)),
                     temperature=0.0, dynamics="frozen", recoil=recoil, cm_momentum=P, dt=0.05,
                     duration=75.0, n_frames=3, check_inside=False)
    return cfg, wow.run(cfg, 2)


@pytest.mark.parametrize("P_over_hk", [-2.0, 1.0])
def test_backscatter_shift_matches_propagator_with_recoil(P_over_hk):
    """The backscattered part's band-energy shift caused by recoil (recoil on minus off) equals the
    exact shift averaged over the reflected weight w(k) R(k), better than the first-order -A8 does
    at P = ħk (where the two differ by 0.7%)."""
    P = P_over_hk * HBAR * math.pi / 3
    cfg, on = _recoil_run(P, True)
    _, off = _recoil_run(P, False)
    measured = on.per_sample["dE_b"][0] - off.per_sample["dE_b"][0]
    w, k = packet_weights(cfg)
    f = forward(k, 1.0)
    wr = w[f] * th.reflection_bond(k[f], 1.0, 0.6, 1.0)
    exact = np.sum(wr * th.backscatter_energy_shift(k[f], P, 450, 0.0023, 1.0, 1.0)) / wr.sum()
    first = -np.sum(wr * th.recoil_energy(k[f], P, 450, 0.0023)) / wr.sum()
    assert measured == pytest.approx(exact, rel=2e-3)
    if P_over_hk == 1.0:
        assert abs(measured / first - 1) > 2 * abs(measured / exact - 1)


# --------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("call, name", [
    (lambda: th.reflection_probability(0.0, 1.0, 1.0, [0.5]), "k"),
    (lambda: th.reflection_probability(np.linspace(0.1, math.pi, 50), 1.0, 1.0, [0.5]), "k"),
    (lambda: th.reflection_probability(1.0, -1.0, 1.0, [0.5]), "t0"),
    (lambda: th.reflection_probability(1.0, 1.0, 0.0, [0.5]), "a"),
    (lambda: th.reflection_probability(1.0, 1.0, 1.0, [0.5, 0.0]), "t_bonds"),
    (lambda: th.reflection_probability(1.0, 1.0, 1.0, None, [np.nan]), "eps_sites"),
    (lambda: th.reflection_bond(1.0, 1.0, 0.0, 1.0), "t1"),
    (lambda: th.recoil_energy(1.0, 0.0, 0, 1.0), "N"),
    (lambda: th.recoil_energy(1.0, 0.0, 10, -1.0), "M_amu"),
    (lambda: th.backscatter_energy_shift(1.0, 0.0, 1, 1e-9, 1.0, 1.0), "recoil energy"),
])
def test_bad_input_names_the_parameter(call, name):
    with pytest.raises(ValueError, match=name):
        call()
