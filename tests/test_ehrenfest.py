"""Ehrenfest back-reaction, mode occupations, the momentum budget and the energy channels.

References: the total energy <H_e> + H_lat and its dt² error; an analytic Hellmann-Feynman force;
the uncoupled limit (exact harmonic motion, the frozen-lattice electron); the wow lattice at weak
coupling and the frozen lattice for a heavy one; running waves built from known occupations (their
crystal momentum Σħq n_q and their direction of travel); the phonons' crystal-momentum change
against the impulse the Hellmann-Feynman force gave each running wave, and the crystal-momentum
conservation of the SSH coupling (the phonons take what the electron loses, at weak coupling); the
ensemble's budget against the test's own recomputation from the initial and final states; a
static single-bond reflector (elastic)."""

import dataclasses
import math
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import channels as C
from wow import lattice as L
from wow import occupations as O
from wow.dynamics import ehrenfest as EH
from wow.ensemble import initial_packet, program_of
from wow.units import HBAR

from test_propagate import run_core


def make(N=64, alpha=1.0, D=0.0, mass=63.546, dynamics="ehrenfest", dt=0.05, duration=40.0,
         T=300.0, sigma=6.0, seed=0, boundary="ring", order=2, **kw):
    cfg = wow.Config(chain=wow.Chain(N=N, boundary=boundary, mass=mass),
                     electron=wow.Electron(alpha=alpha, D=D, sigma=sigma, **kw), temperature=T,
                     dynamics=dynamics, dt=dt, duration=duration, n_frames=1, check_inside=False,
                     order=order)
    s = L.sample_modes(jax.random.PRNGKey(seed), cfg.chain, T, "classical")
    lat0 = L.to_sites(cfg.chain, s)
    if dynamics == "frozen":
        lat0 = L.SiteState(u=lat0.u, v=jnp.zeros_like(lat0.v))
    return cfg, s, lat0


def run(cfg, lat0, psi0=None, dt_scale=1.0):
    return run_core(cfg, lat0, 0.0, psi0, dt_scale=dt_scale)


def electron_energy(cfg, psi, u):
    """<ψ|H_e(u)|ψ> of one sample (the chain model's energy)."""
    program, inputs = program_of(cfg)
    return program.model.energy_of(psi, u, inputs.model)


def total_energy(cfg, psi, lat):
    return electron_energy(cfg, psi, lat.u) + O.lattice_energy(cfg.chain, lat)


# ------------------------------------------------------------------------------------------------
# The force and the integrator
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("boundary", ["ring", "open"])
def test_force_is_analytic_hellmann_feynman_and_zero_sum(boundary):
    cfg, _, lat0 = make(N=32, alpha=1.7, D=2.5, boundary=boundary)
    program, inputs = program_of(cfg)
    model, mp = program.model, inputs.model
    rng = np.random.default_rng(1)
    psi = jnp.asarray(rng.normal(size=32) + 1j * rng.normal(size=32))
    psi = psi / jnp.linalg.norm(psi)
    e = model.start(psi[None], mp)  # a block of one sample, in the model's carried form
    f = np.asarray(EH.raw_force(model, mp, e, {"u": lat0.u[None]})["u"][0])
    # by hand: E = Σ_b [-2 t_b Re(ψ*_{n+1}ψ_n) + D/(2a) b (ρ_n + ρ_{n+1})] + const, t_b = t0 - α b
    x, rho = np.asarray(psi), np.abs(np.asarray(psi)) ** 2
    nxt = np.roll(np.arange(32), -1) if boundary == "ring" else np.arange(1, 32)
    cur = np.arange(32) if boundary == "ring" else np.arange(31)
    g = 2 * 1.7 * np.real(np.conj(x[nxt]) * x[cur]) + 2.5 / (2 * cfg.chain.a) * (rho[cur] + rho[nxt])
    ref = np.zeros(32)
    np.add.at(ref, nxt, -g)  # b = u_next - u_cur: -∂E/∂u_next = -g, -∂E/∂u_cur = +g
    np.add.at(ref, cur, g)
    np.testing.assert_allclose(f, ref, atol=1e-13)
    assert abs(f.sum()) < 1e-14 * np.abs(f).max() * 32
    assert np.abs(f).max() > 0.01  # a real force, eV/Å


@pytest.mark.parametrize("order", [2, 4])
def test_total_energy_conserved_with_error_of_the_step_order(order):
    """<H_e> + H_lat over 50 fs on a strongly coupled ring (SSH and deformation): the error falls
    as dt² (dt⁴ when the core composes three Ehrenfest steps, order=4: the step is symmetric) while
    the energy exchanged stays put. Smaller steps reuse one compiled program (the Ehrenfest carry is
    the lattice at whole steps, so runs chain exactly)."""
    ms = (1, 2, 4) if order == 2 else (1, 2)  # order 4: two points, 25 fs, to keep the test short
    cfg, _, lat0 = make(N=64, alpha=2.0, D=3.0, dt=0.1, duration=50.0 / order * 2, sigma=8.0, order=order)
    psi0 = initial_packet(cfg)
    E0 = total_energy(cfg, psi0, lat0)
    errs, exchanged = [], []
    for m in ms:
        psi, lat = psi0, lat0
        for _ in range(m):
            psi, lat, _ = run(cfg, lat, psi, dt_scale=1.0 / m)
        errs.append(abs(float(total_energy(cfg, psi, lat) - E0)))
        exchanged.append(float(electron_energy(cfg, psi, lat.u) - electron_energy(cfg, psi0, lat0.u)))
        assert abs(float(jnp.sum(lat.v))) < 1e-14  # internal momentum stays zero-sum
    fitted = np.polyfit(np.log(1.0 / np.array(ms)), np.log(errs), 1)[0]
    assert order - 0.15 < fitted < order + 0.15, (errs, fitted)
    assert errs[-1] < 0.02 * abs(exchanged[-1])  # the exchange is real, the error is not
    assert abs(exchanged[-1] - exchanged[-2]) < 0.1 * abs(exchanged[-1])  # itself converged to O(dt²)


# ------------------------------------------------------------------------------------------------
# Limits
# ------------------------------------------------------------------------------------------------
def test_no_coupling_no_exchange_and_free_propagation():
    cfg, s, lat0 = make(alpha=0.0, D=0.0)
    psi, lat, _ = run(cfg, lat0)
    # the lattice moves exactly as it would alone
    ref = L.harmonic_motion(cfg.chain, s, cfg.t_final)
    np.testing.assert_allclose(lat.u, ref.u, atol=1e-12)
    np.testing.assert_allclose(lat.v, ref.v, atol=1e-14)
    b = O.budget(cfg.chain, initial_packet(cfg), psi, lat0, lat)
    assert abs(float(b["dE_lat"])) < 1e-12 and abs(float(b["dn"])) < 1e-9 and abs(float(b["dP_ph"])) < 1e-9
    # the electron is the free one: identical to the frozen-lattice core, and close to e^{-iε(k)t/ħ}
    cfz, _, lz = make(alpha=0.0, D=0.0, dynamics="frozen")
    psi_frozen, _, _ = run(cfz, lz)
    np.testing.assert_allclose(psi, psi_frozen, atol=1e-12)
    k, a = wow.electron.k_grid(cfg.chain.N, cfg.chain.a), cfg.chain.a
    exact = jnp.fft.ifft(jnp.fft.fft(initial_packet(cfg)) * jnp.exp(2j * jnp.cos(k * a) * cfg.t_final / HBAR))
    assert float(jnp.linalg.norm(psi - exact)) < 0.05  # Strang error at dt = 0.05 fs (tested to O(dt²) elsewhere)
    assert abs(float(b["dP_e"])) < 1e-5  # eV·fs/Å, vs ħk0 = 0.27: the parity layers conserve k to O(dt²)


def test_weak_coupling_agrees_with_wow_to_leading_order():
    """ψ_ehrenfest - ψ_wow is of higher order in α than ψ_wow - ψ_free: the back-reaction enters
    the hoppings as α·δu with δu itself O(α)."""
    cfg0, _, lat0 = make(alpha=0.0, dynamics="wow")
    free, _, _ = run(cfg0, lat0)
    rel = []
    for alpha in (0.2, 0.1):
        ce, _, le = make(alpha=alpha)
        cw, _, lw = make(alpha=alpha, dynamics="wow")
        pe, _, _ = run(ce, le)
        pw, _, _ = run(cw, lw)
        d_ew, d_wf = float(jnp.linalg.norm(pe - pw)), float(jnp.linalg.norm(pw - free))
        assert d_wf > 0.05  # the lattice does scatter the electron at first order
        rel.append(d_ew / d_wf)
    assert rel[0] < 2e-3
    assert rel[0] / rel[1] > 3.0  # at least second order in α relative to the first-order effect


def test_heavy_lattice_agrees_with_frozen():
    """Same springs, mass -> ∞: thermal velocities ∝ M^{-1/2} and the back-reaction's
    acceleration ∝ 1/M both vanish; the difference from the frozen lattice falls as M^{-1/2}."""
    diffs = []
    for mass in (1e6, 1e8):
        ce, _, le = make(alpha=2.0, mass=mass)
        cz, _, lz = make(alpha=2.0, mass=mass, dynamics="frozen")
        pe, _, _ = run(ce, le)
        pz, _, _ = run(cz, lz)
        diffs.append(float(jnp.linalg.norm(pe - pz)))
    assert diffs[1] < 5e-3
    assert 9.0 < diffs[0] / diffs[1] < 11.0, diffs


# ------------------------------------------------------------------------------------------------
# Occupations and crystal momentum
# ------------------------------------------------------------------------------------------------
def running_wave_state(chain, n_q, t=0.0, seed=0):
    """u_n, v_n of Σ_q A_q cos(q n a - ω_q t + φ_q) with ½ N M ω² A² = ħω(n_q + ½), written out
    here from the definition, not from the code under test."""
    q, w, _ = O.running_waves(chain)
    phi = np.random.default_rng(seed).uniform(0, 2 * np.pi, q.size)
    A = np.sqrt(2 * HBAR * w * (n_q + 0.5) / (chain.N * chain.mass_ev * w**2))
    x = np.arange(chain.N)[:, None] * chain.a
    arg = q[None, :] * x - w[None, :] * t + phi[None, :]
    u = (A * np.cos(arg)).sum(1)
    v = (A * w * np.sin(arg)).sum(1)
    return L.SiteState(u=jnp.asarray(u), v=jnp.asarray(v))


def test_phonon_momentum_of_running_waves_is_sum_hbar_q_n():
    chain = wow.Chain(N=32, boundary="ring")
    q, w, hq = O.running_waves(chain)
    n_q = np.full(q.size, -0.5)  # empty (zero amplitude)
    boundary = np.isclose(np.abs(q), np.pi / chain.a)
    rng = np.random.default_rng(3)
    pick = rng.choice(np.flatnonzero(~boundary), 9, replace=False)
    n_q[pick] = rng.uniform(0, 12, pick.size)
    n_q[boundary] = 0.0  # the zone-boundary standing wave: no crystal momentum
    lat = running_wave_state(chain, n_q)
    occ = O.occupations(chain, lat)
    np.testing.assert_allclose(occ["n_q"], n_q, atol=1e-9)
    P_built = float(np.sum(HBAR * np.where(boundary, 0.0, q) * n_q))
    assert abs(P_built) > 1.0  # eV·fs/Å: a state with a net crystal momentum
    np.testing.assert_allclose(float(occ["P_ph"]), P_built, rtol=1e-10)
    # the same energy in both bases, and it is H_lat
    E_run = float(np.sum(HBAR * w * (np.asarray(occ["n_q"]) + 0.5)))
    np.testing.assert_allclose(E_run, float(occ["E_lat"]), rtol=1e-10)
    np.testing.assert_allclose(float(jnp.sum(occ["E"])), float(occ["E_lat"]), rtol=1e-10)


def test_a_positive_q_wave_travels_towards_plus_x_and_keeps_its_occupation():
    """The sign convention of P_ph: the wave built with q > 0 is, under the lattice's own
    dynamics, the same pattern moved towards +x, and harmonic motion conserves every n_q."""
    chain = wow.Chain(N=32, boundary="ring")
    q, w, _ = O.running_waves(chain)
    n_q = np.full(q.size, -0.5)
    j = 3  # q = 2π·4/(Na) > 0
    assert q[j] > 0
    n_q[j] = 5.0
    lat0 = running_wave_state(chain, n_q)
    t = 150.0  # fs
    n_terms = L.flow_terms(chain, 1.0, jnp.float64)
    lat = lat0
    for _ in range(150):
        lat = L.harmonic_flow(lat, 1.0, chain.spring / chain.mass_ev, "ring", n_terms)
    expect = running_wave_state(chain, n_q, t=t)  # cos(qx - ωt + φ): a crest moving at +ω/q
    np.testing.assert_allclose(lat.u, expect.u, atol=1e-10)
    np.testing.assert_allclose(O.running_occupations(chain, lat), n_q, atol=1e-9)
    assert float(O.phonon_momentum(chain, lat)) > 0


def test_thermal_occupations_average_to_the_right_values():
    """Classical: <E_j> = k_B T so <n_j> = k_BT/ħω_j - 1/2; Wigner (quantum) samples average n̄_BE."""
    chain = wow.Chain(N=16, boundary="ring")
    keys = jax.random.split(jax.random.PRNGKey(0), 4000)
    w = L.mode_frequencies(chain)

    @partial(jax.jit, static_argnums=1)
    def mean_n(keys, stats):
        one = lambda k: O.standing_occupations(chain, L.to_sites(chain, L.sample_modes(k, chain, 300.0, stats)))[1]
        return jnp.mean(jax.vmap(one)(keys), axis=0)

    for stats, expect in (("classical", wow.KB * 300 / (HBAR * w) - 0.5), ("quantum", L.fock_mean(chain, 300.0))):
        np.testing.assert_allclose(mean_n(keys, stats), expect, rtol=0.08)


# ------------------------------------------------------------------------------------------------
# The momentum budget
# ------------------------------------------------------------------------------------------------
def running_amplitudes(chain, u, v):
    """q_j = 2πj/(Na) folded into the zone, ω_q = ω_max|sin(qa/2)| and the wave amplitudes
    α_q = (U_q + iV_q/ω_q)/2 (U, V the unitary DFT of u, v at q, written out), j = 1..N-1."""
    N, a = chain.N, chain.a
    j = np.arange(1, N)
    q = 2 * np.pi * j / (N * a)
    q = np.where(q > np.pi / a + 1e-12, q - 2 * np.pi / a, q)
    w = chain.omega_max * np.abs(np.sin(q * a / 2))
    F = np.exp(-1j * np.outer(q, np.arange(N) * a)) / np.sqrt(N)
    return q, w, F, (F @ np.asarray(u) + 1j * (F @ np.asarray(v)) / w) / 2


def hellmann_feynman(psi, alpha, ring=True):
    """F_n = -∂<ψ|H_e(u)|ψ>/∂u_n for SSH bonds t_b = t0 - α b (D = 0), bond by bond."""
    x = np.asarray(psi)
    N = x.size
    F = np.zeros(N)
    for n in range(N if ring else N - 1):
        m = (n + 1) % N
        g = 2 * alpha * np.real(np.conj(x[m]) * x[n])  # ∂E/∂b_n
        F[m] -= g
        F[n] += g
    return F


def test_phonon_momentum_is_the_impulse_of_the_force_and_what_the_electron_lost():
    """A packet reflected by a thermal Ehrenfest ring at weak coupling. The phonons' crystal-momentum
    change the tally reports (dP_ph, from the running-wave occupations of the initial and final
    lattice) equals the momentum the force actually handed each running wave over the run: with
    α_q the wave's amplitude and F_q the Hellmann-Feynman force (both written out here from ψ and
    u, v every 0.25 fs), dn_q/dt = -(2/ħ) Im(α_q* F_q), and P_ph changes by ∫ Σ_q ħq dn_q/dt dt
    (Simpson). The SSH coupling conserves k + q up to umklapp, so that is nearly what the electron
    lost, -dP_e (eV·fs/Å): the CM keeps a few per cent, the part of the electron's lattice dressing
    past the zone boundary (converged in dt: not a splitting artefact). The Ehrenfest lattice also
    takes the energy the electron gives (dE_lat = -ΔE_e). A wow lattice feels no force: its P_ph
    stays put (harmonic motion conserves every running-wave action)."""
    cfg, _, lat0 = make(alpha=0.5, sigma=10.0)
    chain, frame = cfg.chain, 0.25
    short = dataclasses.replace(cfg, duration=frame)  # one frame per call: the same compiled program
    n_frames = int(round(cfg.duration / frame))
    psi0 = initial_packet(cfg)
    psi, lat, rate, frames = psi0, lat0, [], None
    for i in range(n_frames + 1):
        q, w, _, al = running_amplitudes(chain, lat.u, lat.v)
        Fq = (np.exp(-1j * np.outer(q, np.arange(chain.N) * chain.a)) / np.sqrt(chain.N)) @ hellmann_feynman(psi, 0.5)
        hq = np.where(np.isclose(np.abs(q), np.pi / chain.a), 0.0, HBAR * q)  # the π/a wave: no direction
        rate.append(np.sum(hq * (-2 / HBAR) * np.imag(np.conj(al) * Fq)))
        if i < n_frames:
            psi, lat, frames = run(short, lat, psi)
    impulse = frame / 3 * (rate[0] + rate[-1] + 4 * np.sum(rate[1:-1:2]) + 2 * np.sum(rate[2:-1:2]))
    b = {k: float(v) for k, v in O.budget(chain, psi0, psi, lat0, lat).items()}
    assert float(frames["P_b"][-1]) > 0.1
    assert b["dP_e"] < -0.05  # reflected
    assert b["dP_ph"] > 0.05
    assert b["dP_ph"] == pytest.approx(impulse, rel=2e-3)
    assert abs(b["dP_ph"] + b["dP_e"]) < 0.06 * abs(b["dP_e"]), b  # the CM keeps a few per cent
    dE_e = float(electron_energy(cfg, psi, lat.u) - electron_energy(cfg, psi0, lat0.u))
    assert b["dE_lat"] == pytest.approx(-dE_e, abs=2e-4)
    cw, _, lw = make(alpha=0.5, dynamics="wow", sigma=10.0)
    psi_w, lat_w, _ = run(cw, lw)
    bw = {k: float(v) for k, v in O.budget(chain, psi0, psi_w, lw, lat_w).items()}
    assert abs(bw["dP_ph"]) < 1e-9 and bw["dP_e"] < -0.05


def test_budget_on_the_open_chain_has_no_crystal_momentum():
    cfg, _, lat0 = make(N=64, boundary="open")
    psi0 = initial_packet(cfg)
    psi = jnp.conj(psi0)  # k -> -k
    lat = L.SiteState(u=lat0.u, v=-lat0.v)
    b = O.budget(cfg.chain, psi0, psi, lat0, lat)
    assert float(b["dP_e"]) == pytest.approx(-2 * HBAR * cfg.k0, rel=1e-3)
    assert np.isnan(float(b["dP_ph"])) and np.isnan(float(b["dP_cm"])) and np.isfinite(float(b["dP_e"]))
    with pytest.raises(ValueError, match="ring"):
        O.running_waves(cfg.chain)


# ------------------------------------------------------------------------------------------------
# Channels
# ------------------------------------------------------------------------------------------------
def test_channels_of_a_static_reflector_are_elastic():
    """One modified bond, zero temperature, frozen lattice: the reflected weight keeps the packet's
    own energy distribution once the packet has left the defect, so at the default δ = 2σ_E the
    elastic share is the Gaussian 95.4% and the tails beyond ±δ are equal. (The labels at generic
    k0 and the ensemble fractions are checked against independent references in
    test_tally_references and test_statistics.)"""
    cfg = wow.Config(chain=wow.Chain(N=400, boundary="ring"), electron=wow.Electron(
        alpha=0.0, sigma=20.0, bond_defects=((250, -0.6),)), temperature=0.0, dynamics="frozen",
        dt=0.05, duration=40.0, n_frames=1)
    lat0 = L.SiteState(u=jnp.zeros(400), v=jnp.zeros(400))
    psi, _, frames = run(cfg, lat0)
    psi0 = initial_packet(cfg)
    k = wow.electron.k_grid(cfg.chain.N, cfg.chain.a)
    w0, wf = jnp.abs(jnp.fft.fft(psi0, norm="ortho")) ** 2, jnp.abs(jnp.fft.fft(psi, norm="ortho")) ** 2
    cw = C.channel_weights(w0, wf, k, cfg.electron.t0, cfg.chain.a, cfg.chain.omega_max)
    P_b = float(frames["P_b"][-1])
    assert P_b > 0.02
    assert float(cw["P_dE_within"]) / P_b == pytest.approx(math.erf(2 / math.sqrt(2)), abs=0.01)
    assert float(cw["P_dE_loss"]) == pytest.approx(float(cw["P_dE_gain"]), rel=0.2)
    assert float(cw["P_dE_subphonon"]) == 0.0  # δ (0.22 eV) > ħω_max (0.03 eV): nothing in between
    # default δ is twice the packet's energy spread ≈ ħ v(k0)/σ (paper A9 with L = σ)
    v = wow.electron.group_velocity(cfg.k0, 1.0, cfg.chain.a)
    assert float(cw["delta_E"]) == pytest.approx(HBAR * v / 20.0, rel=0.05)


# ------------------------------------------------------------------------------------------------
# Through the ensemble
# ------------------------------------------------------------------------------------------------
def test_ehrenfest_is_a_config_option_and_the_ensemble_records_the_budget():
    """Through wow.run: the per-sample budget and the <P_R> trace against the same quantities
    computed here from each sample's initial draw (key s of split(PRNGKey(seed), n)) and final state
    (keep_final): dP_e = ħ Δ<k> by the test's own DFT, the phonons' crystal momentum as the classical
    waves' pseudo-momentum Σ_q (q/ω_q) E_q (E_q = 2Mω_q²|α_q|² the energy in running wave q), and
    <P_R>(t_f) = Q - ħ<k>_f - ΔP_ph (docs/model.md) with those pieces; the energy the lattice takes is
    the energy the electron gives."""
    cfg = wow.Config(chain=wow.Chain(N=64, boundary="ring"), electron=wow.Electron(alpha=0.5, sigma=8.0),
                     dynamics="ehrenfest", dt=0.05, duration=4.0, n_frames=1)
    res = wow.run(cfg, n_samples=4, seed=2, keep_final=True)
    ps, chain = res.per_sample, cfg.chain
    for key in ("dP_e", "dP_ph", "dP_cm", "dE_lat", "P_dE_within", "P_dE_loss", "delta_E"):
        assert key in ps and ps[key].shape == (4,)
    np.testing.assert_allclose(ps["dE_lat"], -ps["dE_e"], atol=1e-4)  # energy conservation
    M = chain.mass_ev

    def P_ph(u, v):
        q, w, _, al = running_amplitudes(chain, u, v)
        return np.sum(np.where(np.isclose(np.abs(q), np.pi / chain.a), 0.0, q / w) * 2 * M * w**2 * np.abs(al) ** 2)

    def mean_k(psi):
        k = 2 * np.pi * np.arange(64) / (64 * chain.a)
        k = np.where(k > np.pi / chain.a + 1e-12, k - 2 * np.pi / chain.a, k)
        w = np.abs(np.exp(-1j * np.outer(k, np.arange(64) * chain.a)) @ np.asarray(psi)) ** 2
        return np.sum(k * w) / np.sum(w)

    keys = jax.random.split(jax.random.PRNGKey(2), 4)
    k0 = mean_k(initial_packet(cfg))
    for s in range(4):
        lat0 = L.to_sites(chain, L.sample_modes(keys[s], chain, cfg.temperature, cfg.statistics))
        kf = mean_k(res.final["psi"][s])
        dP_ph = P_ph(res.final["u"][s], res.final["v"][s]) - P_ph(lat0.u, lat0.v)
        assert ps["dP_e"][s] == pytest.approx(HBAR * (kf - k0), rel=1e-9, abs=1e-13)
        assert ps["dP_ph"][s] == pytest.approx(dP_ph, rel=1e-8, abs=1e-12)
        P_R_f = ps["P_R0"][s] + HBAR * cfg.k0 - HBAR * kf - dP_ph
        assert res.traces["P_R"][s, -1] == pytest.approx(P_R_f, rel=1e-9, abs=1e-12)
        assert ps["P_R_f"][s] == pytest.approx(P_R_f, rel=1e-9, abs=1e-12)
        assert ps["dP_cm"][s] == pytest.approx(P_R_f - ps["P_R0"][s], rel=1e-8, abs=1e-12)  # what the CM took
        assert res.traces["P_R"][s, 0] == pytest.approx(ps["P_R0"][s], abs=1e-12)
    assert np.all(np.abs(ps["dP_ph"]) > 1e-4)  # the phonons do take momentum in 4 fs
    with pytest.raises(wow.ConfigError, match="dynamics"):
        wow.validate(wow.Config(dynamics="ehrenfst"))


def test_troisi_orlandi_script_runs_small_and_frozen_does_not_spread(tmp_path):
    from wow.experiments import troisi_orlandi as to

    m = to.model(to.build_parser().parse_args([]))
    assert m["K"] == pytest.approx(1.5028, rel=1e-4) and m["t0"] == pytest.approx(0.037195, rel=1e-4)
    assert m["alpha"] == pytest.approx(0.12336, rel=1e-4)  # eV/Å from 995 cm⁻¹/Å
    # the Einstein flow the experiment's local mode moves with is the exact oscillator
    from wow.dynamics.local import EinsteinFlow

    lat = L.SiteState(u=jnp.asarray([0.1, -0.2]), v=jnp.asarray([0.0, 0.003]))
    out = EinsteinFlow().flow(lat, 300.0, jnp.asarray(m["omega"] ** 2))
    w = m["omega"]
    np.testing.assert_allclose(out.u, lat.u * np.cos(w * 300) + lat.v / w * np.sin(w * 300), rtol=1e-12)
    assert to.main(["--N", "24", "--samples", "3", "--duration", "60", "--frames", "4", "--dt", "2",
                    "--dynamics", "frozen,ehrenfest", "--out", str(tmp_path / "to.h5"), "--no-figure", "--quiet"]) == 0
    from wow import io

    res = {p.values["dynamics"]: p for p in io.read_results(tmp_path / "to.h5").points}
    # the frozen start is an eigenstate of H_e, stationary up to the splitting error of dt = 2 fs
    assert abs(res["frozen"].stats["D"][0]) < 1e-4
    assert res["ehrenfest"].stats["D"][0] > 1e-3
    assert np.abs(res["ehrenfest"].per_sample["norm_final"] - 1).max() < 1e-12
