"""Quantum modes with the density-density model through wow.run, and its momentum/energy budget:
one quantum mode's Δn-resolved backscattering in the Born limit against the Laguerre closed form
(converged in n_max); crystal momentum conserved mod G in the running basis per Fock state and
crystal momentum; wow.tally.budget_classes / budget_summary on hand-built inputs and on a real run;
the recoil closed forms of wow.theory (bloch_mechanical_momentum, bloch_umklapp_weight,
continuum_recoil_energy) against grid computations; the dd_recoil experiment end to end."""

import math
import warnings

import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import ensemble, fock
from wow import lattice as L
from wow import tally
from wow import theory as th
from wow.models import continuum as C
from wow.electron import k_grid
from wow.units import HBAR, M_E, mass_ev


def quiet_run(cfg, n, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the truncation diagnostics
        return wow.run(cfg, n, progress=False, **kw)


# --------------------------------------------------------------------------------------------
# One quantum mode, Born limit: Δn-resolved backscattering against |<n'|e^{iκX}|n>|² (Laguerre)
# --------------------------------------------------------------------------------------------
# The ring's zone-boundary mode j = N/2 alone (others absent), e_j = (-1)^j/√N: atom j feels
# e^{-iq e_j ℓ X}, so <κ',n'|V|κ,n> = ṽ(q)/L · Σ_j e^{-iqja} (-1)^{jΔ} · <n'|e^{-iqℓX/√N}|n>, Δ = n' - n:
# the lattice sum is N where q ≡ Δ·π/a (mod G), else 0 (one quantum carries crystal momentum π/a).
# A packet at k0 = 3π/(2a) is reflected to -k0 (q = -3π/a ≡ π/a) only with odd Δ. A light, soft
# lattice makes λ = (3π/a · ℓ)²/N ≈ 0.1, so the Laguerre polynomials are more than their first term.
BORN_N, BORN_NMAX, BORN_V0, BORN_N0 = 32, (3, 5), (0.02, 0.01), 1


def born_cfg(n_max, V0):
    chain = wow.Chain(N=BORN_N, boundary="ring", mass=0.05, spring=0.1)
    a = chain.a
    el = wow.Continuum(V0=V0, w=0.8, g=8, packet="plane", k0=3 * math.pi / (2 * a), sigma=1.6 * a)
    return wow.Config(chain=chain, electron=el, dynamics="quantum", recoil=False, duration=4.0, n_frames=1,
                      dt=0.01, temperature=0.0,
                      quantum=wow.QuantumLattice(modes=(BORN_N // 2,), n_max=n_max, others="absent"))


def born_fock_probabilities(cfg, n_final):
    """Σ_{κ'<0} |a(κ', n')|² at first order: ṽ(q)/L · N δ(q ≡ Δπ/a) · <n'|e^{-iqℓX/√N}|n> ψ~0(κ)
    · (time kernel with the phonon energies), summed over source κ in |.|² (the packet spans far
    less than π/a in momentum, so at most one source per κ' survives the lattice sum)."""
    chain, e = cfg.chain, cfg.electron
    grid = C.make_grid(e, chain, C.thermal_u_max(cfg))
    kap = np.asarray(C.momenta(grid))
    psik0 = np.asarray(C.fft(ensemble.initial_packet(cfg)))
    src = np.abs(psik0) ** 2 > 1e-14
    w = L.mode_frequencies(chain)[BORN_N // 2 - 1]
    ell = math.sqrt(HBAR / (2 * chain.mass_ev * w))
    E = (HBAR * kap) ** 2 / (2 * e.mass())
    q = kap[:, None] - kap[None, src]
    t = cfg.t_final
    dE = (E[:, None] + HBAR * w * n_final) - (E[None, src] + HBAR * w * BORN_N0)
    K = t / HBAR * np.sinc(dE * t / (2 * HBAR) / np.pi)
    d = n_final - BORN_N0
    lattice_sum = np.abs(np.sum(np.exp(-1j * q[..., None] * np.arange(BORN_N) * chain.a) * (-1.0) ** (np.arange(BORN_N) * d), -1))
    P = (np.abs(th.pseudopotential_ft(q, e.V0, e.w)) * lattice_sum / (BORN_N * chain.a)) ** 2 \
        * th.laguerre_element(n_final, BORN_N0, q * ell / math.sqrt(BORN_N)) * np.abs(psik0[src]) ** 2 * K**2
    return float(P[kap < 0].sum())


@pytest.fixture(scope="module")
def born_runs():
    """(n_max, V0) -> (mechanical backscattering per final n' from the final Fock amplitudes, the
    run's band-resolved per_sample['back'], the first-order references); V0 is traced, so one
    program per n_max."""
    out = {}
    for n_max in BORN_NMAX:
        for V0 in BORN_V0:
            cfg = born_cfg(n_max, V0)
            r = quiet_run(cfg, 1, keep_final=True, initial=wow.InitialState(P_R=0.0, occupations=np.array([BORN_N0])))
            grid = C.make_grid(cfg.electron, cfg.chain, C.thermal_u_max(cfg))
            back = np.asarray(C.momenta(grid)) < 0
            psik = np.asarray(C.fft(jnp.asarray(r.final["psi"][0])))  # (n_max + 1, N_s), Fock
            mech = np.sum(np.abs(psik[:, back]) ** 2, axis=1)
            ref = np.array([born_fock_probabilities(cfg, n) for n in range(n_max + 1)])
            out[n_max, V0] = (mech, r.per_sample["back"][0], ref)
    return out


def test_one_quantum_mode_born_limit_against_laguerre(born_runs):
    """Δn = ±1 (n' = 0, 2; the on-shell reflection): the run's Δn-resolved P_b equals the first-order
    Laguerre formula within 1.3% at V0 = 0.02 eV and 0.7% at 0.01 eV, the error halving with V0 (the
    Born error, O(V0)); the off-shell channels Δn = 0, +2, +3 within 5% at 0.01 eV; the Bloch tally
    per_sample['back'] counts the same weight at Δn = ±1 (1e-3)."""
    rel = {}
    for V0 in BORN_V0:
        mech, bloch, ref = born_runs[5, V0]
        rel[V0] = mech / ref - 1
        for n in (0, 2):
            assert abs(bloch[n] / mech[n] - 1) < 1e-3, (V0, n, bloch[n], mech[n])
    assert np.all(np.abs(rel[0.02][[0, 2]]) < 0.013), rel
    assert np.all(np.abs(rel[0.01][[0, 2]]) < 0.007), rel
    ratio = rel[0.02][[0, 2]] / rel[0.01][[0, 2]]
    assert np.all((1.7 < ratio) & (ratio < 2.3)), ratio
    assert np.all(np.abs(rel[0.01][[1, 3, 4]]) < 0.05), rel
    # emission beats absorption by about (n + 1)/n = 2 times the Laguerre corrections: not a constant
    mech, _, ref = born_runs[5, 0.01]
    assert 1.5 < mech[2] / mech[0] < 2.0


def test_one_quantum_mode_converged_in_n_max(born_runs):
    """n_max = 3 and 5 agree on the channels below the smaller truncation's top level (0.5%), and the
    top level n' = 3 of n_max = 3 (where the DVR is least converged) moves towards the Laguerre value
    at n_max = 5."""
    for V0 in BORN_V0:
        m3, _, ref = born_runs[3, V0]
        m5, _, _ = born_runs[5, V0]
        np.testing.assert_allclose(m3[:3], m5[:3], rtol=5e-3)
        assert abs(m5[3] / ref[3] - 1) < abs(m3[3] / ref[3] - 1)


# --------------------------------------------------------------------------------------------
# Crystal momentum mod G on the ring (running basis), and the budget classes of that run
# --------------------------------------------------------------------------------------------
RING_N, RING_G, RING_C0 = 8, 8, 1


def running_cfg(modes, n_max):
    chain = wow.Chain(N=RING_N, boundary="ring", mass=1.0)
    return wow.Config(chain=chain, electron=wow.Continuum(V0=2.0, w=1.0, g=RING_G, sigma=1.0), dynamics="quantum",
                      recoil=True, duration=2.0, n_frames=1, dt=0.02, temperature=0.0,
                      quantum=wow.QuantumLattice(modes=modes, n_max=n_max, others="absent", basis="running"))


def crystal_plane_wave(chain):
    """e^{i k s} at the one crystal momentum k = 2π c0/L (no spread: the budget window is 0)."""
    s = np.arange(RING_N * RING_G) * chain.a / RING_G
    return np.exp(2j * np.pi * RING_C0 * s / (RING_N * chain.a)) / math.sqrt(RING_N * RING_G)


def wrong_crystal_momentum(cfg, r, occ):
    """Backscattered weight at (Fock state f, electron crystal momentum k) with k + K_ph(f)/ħ ≠ k_in
    mod G (K_ph = Σ ħq Δn in the running basis), and P_b."""
    chain = cfg.chain
    bk = r.per_sample["back_k"][0]
    hq, definite = fock.axis_momenta(chain, cfg.quantum.sorted_modes(), "running")
    assert definite.all()
    dn = np.indices(bk.shape[:-1]).reshape(bk.ndim - 1, -1).T - np.asarray(occ)
    k = 2 * np.pi * np.arange(RING_N) / (RING_N * chain.a)
    off = tally.fold(k[None, :] + (dn @ hq)[:, None] / HBAR - 2 * np.pi * RING_C0 / (RING_N * chain.a), chain.a)
    B = bk.reshape(-1, RING_N)
    return float(B[np.abs(off) > 1e-9].sum()), float(B.sum())


@pytest.fixture(scope="module")
def running_run():
    """Modes (2, 6) (a running pair, q = π/(2a)) and 4 (the zone boundary), strong V0, one phonon in
    the +q wave, the electron in one crystal momentum."""
    cfg = running_cfg((2, 4, 6), 2)
    occ = (1, 0, 0)
    r = quiet_run(cfg, 1, initial=wow.InitialState(P_R=0.0, psi=crystal_plane_wave(cfg.chain), occupations=np.array(occ)))
    return cfg, r, occ


def test_crystal_momentum_is_conserved_mod_G_in_the_running_basis(running_run):
    """Translation by a maps the pair's DVR grid onto itself (a rotation by qa = π/2 of (Q_c, Q_s))
    and the zone-boundary mode's onto its mirror: the truncated problem keeps crystal momentum
    exactly, so every (Fock state, k) with k + Σ q Δn ≠ k_in mod G holds no backscattered weight
    (< 1e-25 against P_b ~ 0.03), while phonons do change (the Δn ≠ 0 states hold weight)."""
    cfg, r, occ = running_run
    wrong, P_b = wrong_crystal_momentum(cfg, r, occ)
    assert P_b > 1e-2
    assert wrong < 1e-25 * max(P_b, 1.0), (wrong, P_b)
    ps = r.per_sample
    assert ps["P_b"][0] - ps["P_b_el"][0] > 1e-3  # phonon-changing backscattering is there


@pytest.mark.slow
def test_crystal_momentum_violation_of_a_generic_pair_vanishes_with_n_max():
    """The pair (1, 7) (qa = π/4: the DVR box is not rotation invariant): crystal momentum is kept
    only as the truncation converges: 5e-4 of P_b at n_max = 3, < 1e-7 at n_max = 5 (~10 s)."""
    occ = (1, 0)
    res = []
    for n_max in (3, 5):
        cfg = running_cfg((1, 7), n_max)
        r = quiet_run(cfg, 1, initial=wow.InitialState(P_R=0.0, psi=crystal_plane_wave(cfg.chain), occupations=np.array(occ)))
        wrong, P_b = wrong_crystal_momentum(cfg, r, occ)
        res.append(wrong / P_b)
    assert 1e-5 < res[0] < 3e-3 and res[1] < 1e-7, res


def test_budget_classes_of_the_running_run_sum_to_p_b_and_put_nothing_on_the_cm(running_run):
    """The run's own budget: classes add up to P_b and their splits to each class (1e-14); with the
    electron in one crystal momentum the window is that momentum (0 wide, the given amplitudes'),
    every mode is definite (nothing unresolved) and crystal momentum is conserved, so the CM-absorbed
    part is 0 in every class; the resolved K_ph of the backscattered weight is a multiple of π/(2a)."""
    cfg, r, _ = running_run
    ps = r.per_sample
    a = cfg.chain.a
    assert ps["k0_window"][0] == pytest.approx(2 * np.pi * RING_C0 / (RING_N * a), abs=1e-12)
    assert ps["dk_window"][0] < 1e-6
    total = sum(ps[f"P_b_{c}"][0] for c in tally.BUDGET_CLASSES)
    assert total == pytest.approx(ps["P_b"][0], abs=1e-14)
    for c in tally.BUDGET_CLASSES:
        parts = sum(ps[f"P_b_{c}_{s}"][0] for s in tally.BUDGET_SPLITS)
        assert parts == pytest.approx(ps[f"P_b_{c}"][0], abs=1e-14)
        assert ps[f"P_b_{c}_cm"][0] < 1e-25 and ps[f"P_b_{c}_unresolved"][0] == 0.0
    assert ps["P_b_inelastic"][0] > 1e-2 and ps["P_b_superelastic"][0] > 1e-6  # measured 0.029, 3.5e-6
    f = r.fractions
    assert sum(f[f"f_{c}"][0] for c in tally.BUDGET_CLASSES) == pytest.approx(1.0, abs=1e-12)
    assert ps["P_b_elastic"][0] == pytest.approx(ps["P_b_el"][0], abs=1e-15)


def test_budget_classes_on_hand_built_weights():
    """Three modes: a running pair ±q (q = π/(2a), ħω = 0.01 eV each) and a standing mode (0.03 eV,
    no definite crystal momentum); packet at k0 = π/(4a), window 0.1/a. Sample 0 starts in
    (0, 1, 0) and puts weight at k' = -π/(4a) in: the elastic state (0.1: the CM takes -π/(2a),
    'cm'); +1 on +q (0.2: inelastic, K = +q closes k' - k0 + K = 0, 'phonon'); -1 on -q (0.05:
    superelastic, K = +q, 'phonon'); +1 on +q and -1 on -q (0.03: E_ph = 0, neutral, K = 2q = π/a,
    'cm'); +1 on the standing mode (0.07: inelastic, 'unresolved'). Sample 1: 0.4 elastic at k0
    ('phonon'); sample 2: nothing (dropped from the fractions)."""
    a, N = 1.0, 8
    k = np.asarray(k_grid(N, a))
    q = math.pi / (2 * a)
    hw = np.array([0.01, 0.01, 0.03])
    hq = np.array([HBAR * q, -HBAR * q, 0.0])
    definite = np.array([True, True, False])
    n0 = np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]])
    back = np.zeros((3, 2, 2, 2, N))
    kb, kf = int(np.argmin(np.abs(k + math.pi / 4))), int(np.argmin(np.abs(k - math.pi / 4)))
    back[0, 0, 1, 0, kb] = 0.1
    back[0, 1, 1, 0, kb] = 0.2
    back[0, 0, 0, 0, kb] = 0.05
    back[0, 1, 0, 0, kb] = 0.03
    back[0, 0, 1, 1, kb] = 0.07
    back[1, 0, 0, 0, kf] = 0.4
    out = tally.budget_classes(n0, back, hw, hq, definite, k, a, math.pi / 4, 0.1)
    want = {"elastic": (0.1, 0, 0.1, 0), "inelastic": (0.27, 0.2, 0, 0.07), "superelastic": (0.05, 0.05, 0, 0),
            "neutral": (0.03, 0, 0.03, 0)}
    for c, (tot, ph, cm, un) in want.items():
        np.testing.assert_allclose(out[f"P_b_{c}"], [tot, 0.4 if c == "elastic" else 0, 0], atol=1e-15)
        np.testing.assert_allclose([out[f"P_b_{c}_{s}"][0] for s in tally.BUDGET_SPLITS], [ph, cm, un], atol=1e-15)
    assert out["P_b_elastic_phonon"][1] == pytest.approx(0.4)
    K = HBAR * (0.2 * q + 0.05 * q + 0.03 * 2 * q) / 0.38
    assert out["K_ph_b"][0] == pytest.approx(K, rel=1e-12)
    assert out["K_ph_b"][1] == 0.0 and np.isnan(out["K_ph_b"][2])
    # per-sample windows (given amplitudes that differ): sample 1's window centred elsewhere
    out2 = tally.budget_classes(n0, back, hw, hq, definite, k, a, np.array([math.pi / 4, -math.pi / 4, 0.0]),
                                np.array([0.1, 0.1, 0.1]))
    assert out2["P_b_elastic_cm"][1] == pytest.approx(0.4) and out2["P_b_elastic_cm"][0] == pytest.approx(0.1)
    # a window that covers the zone (a packet narrow in space) cannot tell phonon from CM: unresolved
    wide = tally.budget_classes(n0, back, hw, hq, definite, k, a, math.pi / 4, math.pi / a)
    for c in tally.BUDGET_CLASSES:
        np.testing.assert_allclose(wide[f"P_b_{c}_unresolved"], out[f"P_b_{c}"], atol=1e-15)
        assert not wide[f"P_b_{c}_phonon"].any() and not wide[f"P_b_{c}_cm"].any()
    some = tally.budget_classes(n0, back, hw, hq, definite, k, a, math.pi / 4, np.array([0.1, math.pi / a, 0.1]))
    assert some["P_b_elastic_unresolved"][1] == pytest.approx(0.4) and some["P_b_elastic_cm"][0] == pytest.approx(0.1)
    per = dict(out, P_b=back.reshape(3, -1).sum(1))
    s = tally.budget_summary(per)
    assert s["f_elastic"][0] == pytest.approx(0.5 / 0.85, rel=1e-12)
    assert s["f_inelastic_unresolved"][0] == pytest.approx(0.07 / 0.85, rel=1e-12)
    assert s["f_neutral_cm"][0] == pytest.approx(0.03 / 0.85, rel=1e-12)
    assert sum(s[f"f_{c}"][0] for c in tally.BUDGET_CLASSES) == pytest.approx(1.0, abs=1e-12)


# --------------------------------------------------------------------------------------------
# Recoil closed forms (wow.theory) against the grid
# --------------------------------------------------------------------------------------------
def grid_bloch_state(V0, w, a, N, g, k_index, band=0):
    """The grid Bloch state (band, k_c) of continuum.bloch_bands, as FFT amplitudes (N g,)."""
    chain = wow.Chain(N=N, boundary="ring", a=a)
    model = wow.Continuum(V0=V0, w=w, g=g)
    grid = C.make_grid(model, chain, 0.0)
    bands = C.bloch_bands(jnp.asarray(V0), jnp.asarray(w), jnp.asarray(M_E), grid, jnp.float64)
    vec = np.asarray(bands.vectors)[k_index, :, band]  # (g,) components κ = k_c + G
    psik = np.zeros(N * g, complex)
    psik[np.arange(g) * N + k_index] = vec
    return psik, np.asarray(C.momenta(grid)), np.asarray(C.crystal_momenta(grid))[k_index]


@pytest.mark.parametrize("k_index", [3, 7])  # ka = 3π/8 (normal, 2k < π/a) and 7π/8 (Umklapp)
def test_recoil_closed_forms_against_grid_bloch_states(k_index):
    """On the grid (N = 16, g = 16, V0 = 3 eV): <p> of the Bloch state equals m v_0(k); the weight at
    p > 0 of the reflected state (band 0, -k) equals bloch_umklapp_weight; Δ<(Q - p)²>/(2NM)
    between (0, k) and (0, -k) equals continuum_recoil_energy at P = -0.7 ħk and +1.3 ħk, to 1e-9;
    V0 = 0 gives ħk, 0 and the chain's A8."""
    V0, w, a, N, g, M = 3.0, 0.5, 2.556, 16, 16, 0.05
    psik, kap, k = grid_bloch_state(V0, w, a, N, g, k_index)
    psim, _, km = grid_bloch_state(V0, w, a, N, g, N - k_index)
    assert km == pytest.approx(-k)
    p = HBAR * kap
    p_mech = float(np.sum(np.abs(psik) ** 2 * p))
    assert th.bloch_mechanical_momentum(k, V0, w, a) == pytest.approx(p_mech, rel=1e-9)
    assert th.bloch_umklapp_weight(-k, V0, w, a) == pytest.approx(float(np.sum(np.abs(psim[kap > 0]) ** 2)), rel=1e-9)
    NM = N * mass_ev(M)
    for P in (-0.7 * HBAR * k, 1.3 * HBAR * k):
        Q = P + p_mech
        dE = (np.sum(np.abs(psim) ** 2 * (Q - p) ** 2) - np.sum(np.abs(psik) ** 2 * (Q - p) ** 2)) / (2 * NM)
        assert th.continuum_recoil_energy(k, P, N, M, V0, w, a) == pytest.approx(dE, rel=1e-9)
    assert th.continuum_recoil_energy(k, -p_mech, N, M, V0, w, a) == pytest.approx(0.0, abs=1e-15)
    assert th.bloch_mechanical_momentum(k, 0.0, w, a) == pytest.approx(HBAR * k, rel=1e-12)
    assert th.bloch_umklapp_weight(-k, 0.0, w, a) == 0.0
    assert th.continuum_recoil_energy(k, 0.4, N, M, 0.0, w, a) == pytest.approx(th.recoil_energy(k, 0.4, N, M), rel=1e-12)
    # near the zone edge the Umklapp share is large, inside the zone small
    share = th.bloch_umklapp_weight(-k, V0, w, a)
    assert (share > 0.04) if k_index == 7 else (share < 0.005)  # measured 0.049 and 0.0023


def test_dd_recoil_experiment_writes_its_outputs(tmp_path):
    """The dd_recoil experiment on a tiny ring (N = 16, 2 samples, 4 fs, k0 = 0.8π/a): table, figure and
    the resumable results file; the backscattered weight's Umklapp share (its p > 0 part) equals the
    Bloch states' own (theory.bloch_umklapp_weight over the measured backscattered momenta) to 2%,
    ~10% of the weight at this k0; the CM takes -Δp per sample exactly; the part Δ<p²>/(2NM) of the
    recoil energy does not depend on P."""
    from wow import cli, io
    from wow.experiments import dd_recoil

    out = tmp_path / "dd_recoil.h5"
    argv = ["run", "dd_recoil", "--N", "16", "--sigma", "2.0", "--k0", "0.8", "--momenta", "0,1", "--samples", "2",
            "--duration", "4", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    assert (tmp_path / "dd_recoil.md").exists() and (tmp_path / "dd_recoil.png").exists()
    res = io.read_results(out)
    assert len(res.points) == 2
    rows = dd_recoil.rows_of(res)
    for t in rows:
        assert t["umklapp"] == pytest.approx(t["umklapp_cf"], rel=0.02)
        assert 0.05 < t["umklapp"] < 0.2
        assert t["dP_umklapp_cf"] < 0 < t["dP_normal_cf"]
    ps = res.points[0].per_sample
    np.testing.assert_allclose(ps["dP_cm"], -ps["dP_e"], rtol=0, atol=1e-15)
    # band 0's backscattered weight is P_b less the higher bands' v < 0 weight (the disorder's
    # dressing of the packet), so 0 < P_b_band0 < P_b
    P_b, P_b0 = np.asarray(ps["P_b"]), np.asarray(ps["P_b_band0"])
    assert np.all((P_b0 > 0) & (P_b0 < P_b))
    assert rows[0]["dP_band0"] == pytest.approx(rows[0]["dP"] * np.mean(P_b) / np.mean(P_b0), rel=1e-12)
    # the recoil energy's part Δ<p²>/(2NM P_b) is the same at both P (Q enters the dynamics only
    # through the recoil term (Q - p)²/(2NM): 0.2 % apart here, measured)
    assert rows[0]["E_p2"] == pytest.approx(rows[1]["E_p2"], rel=1e-2)
    assert rows[0]["E_p2_static"] > 0
    assert cli.main(argv) == 0  # a second run resumes the finished file


def test_a_continuum_config_survives_the_results_format():
    """wow.io's flat config of a density-density run reads back as the same Config (the electron's
    fields name its class), and a field neither electron has is still refused by name."""
    from wow import io

    cfg = born_cfg(3, 0.02)
    assert io.config_from_flat(io.config_to_flat(cfg)) == cfg
    flat = io.config_to_flat(cfg)
    flat["electron.future_option"] = 1
    with pytest.raises(io.ResultsError, match=r"electron\.future_option"):
        io.config_from_flat(flat)


# The recoil energy's Q-independent part Δ<p²>/(2NM) (dd_recoil.p2_change, static_p2_change)
# --------------------------------------------------------------------------------------------
def small_recoil_config(dt, temperature=30.0, P=0.0, duration=2.0):
    chain = wow.Chain(N=16, boundary="ring", mass=1.0)
    k0 = 0.35 * math.pi / chain.a
    el = wow.Continuum(V0=5.0, w=0.5, g=16, packet="bloch", k0=k0, sigma=2.0)
    return wow.Config(chain=chain, electron=el, dynamics="frozen", statistics="classical", temperature=temperature,
                      recoil=True, cm_momentum=P * HBAR * k0, dt=dt, duration=duration, n_frames=1)


def test_static_p2_change_is_the_splittings_dt_squared_error():
    """On the static lattice a one-band Bloch packet keeps <p²> exactly (its plane waves are
    disjoint eigenstates' components), so Δ<p²>/(2NM) over the run is the Strang splitting's error:
    positive, converging at second order in dt (fitted order 2.13 over dt = 0.01 .. 0.0025 fs,
    measured), 4e-8 eV at dt = 0.01 fs on this ring (N = 16, k0 = 0.35π/a, 0.5 fs)."""
    from wow.experiments import dd_recoil

    dts = np.array([0.01, 0.005, 0.0025])
    err = np.array([dd_recoil.static_p2_change(small_recoil_config(dt, duration=0.5)) for dt in dts])
    assert np.all(err > 0)
    order = np.polyfit(np.log(dts), np.log(err), 1)[0]
    assert 1.8 < order < 2.4
    assert 1e-8 < err[0] < 1e-7


def test_p2_change_splits_dE_cm_into_the_closed_forms_part_and_the_rest():
    """dd_recoil.p2_change (from the tallies dE_cm, dP_e, P_R_f, k_f) equals Δ<p²>/(2NM) computed from
    the initial and final amplitudes of a thermal run, to rounding; what is left of dE_cm is
    -QΔ<p>/(NM), the part the closed form 2p(P + p)/(NM) describes."""
    from wow.experiments import dd_recoil

    cfg = small_recoil_config(0.02, P=1.0, duration=1.0)
    res = quiet_run(cfg, 2, seed=3, keep_final=True)
    model, mp = C.model_of(cfg, jnp.float64)
    p = HBAR * np.asarray(mp.kappa)
    w0 = np.abs(np.fft.fft(np.asarray(model.packet(cfg, jnp.complex128)), norm="ortho")) ** 2
    wf = np.abs(np.fft.fft(np.asarray(res.final["psi"]), norm="ortho")) ** 2
    NM = cfg.chain.N * cfg.chain.mass_ev
    got = dd_recoil.p2_change(cfg, res.per_sample)
    np.testing.assert_allclose(got, (wf @ p**2 - w0 @ p**2) / (2 * NM), rtol=1e-9, atol=1e-15)
    assert np.all(np.abs(got) > 1e-9)  # measured ~1e-7 eV: not an empty identity
    Q = cfg.cm_momentum + w0 @ p
    np.testing.assert_allclose(np.asarray(res.per_sample["dE_cm"]) - got, -Q * (wf @ p - w0 @ p) / NM,
                               rtol=1e-9, atol=1e-15)
