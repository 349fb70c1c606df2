"""Ehrenfest back-reaction, mode occupations, the momentum budget and the energy channels.

References: the total energy <H_e> + H_lat and its dt² error; an analytic Hellmann-Feynman force;
the uncoupled limit (exact harmonic motion, the frozen-lattice electron); the wow lattice at weak
coupling and the frozen lattice for a heavy one; running waves built from known occupations (their
crystal momentum Σħq n_q and their direction of travel); the crystal-momentum conservation of the
SSH coupling (the phonons take what the electron loses, at weak coupling); channel boundaries on
hand-placed momentum components and a static single-bond reflector (elastic)."""

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
def test_budget_signs_units_and_where_the_momentum_goes():
    """MODEL.md: <P_R>(t) = Q - ħ<k>(t) - (P_ph(t) - P_ph(0)). On a reflecting sample the electron
    loses momentum (dP_e < 0, eV·fs/Å). A wow lattice cannot take it (dP_ph = 0): the CM does,
    dP_cm = -dP_e > 0. An Ehrenfest lattice at weak coupling takes it as phonon crystal momentum
    (the SSH coupling conserves k + q up to umklapp), leaving the CM a few per cent: the part of
    the electron's distorted-lattice dressing that lies past the zone boundary, where its wrapped k
    differs from the unwrapped one by 2π/a. (Converged in dt: not a splitting artefact.)"""
    out = {}
    for dyn in ("wow", "ehrenfest"):
        cfg, _, lat0 = make(alpha=0.5, dynamics=dyn, sigma=10.0)
        psi, lat, frames = run(cfg, lat0)
        b = {k: float(v) for k, v in O.budget(cfg.chain, initial_packet(cfg), psi, lat0, lat).items()}
        assert b["dP_cm"] == pytest.approx(-(b["dP_e"] + b["dP_ph"]), abs=1e-14)
        dk = float(frames["k_mean"][-1] - frames["k_mean"][0])
        assert b["dP_e"] == pytest.approx(HBAR * dk, rel=1e-10)  # ħΔ<k>, eV·fs/Å
        assert float(frames["P_b"][-1]) > 0.1 and b["dP_e"] < -0.05
        out[dyn] = b
        if dyn == "ehrenfest":
            dE_e = float(electron_energy(cfg, psi, lat.u) - electron_energy(cfg, initial_packet(cfg), lat0.u))
            assert b["dE_lat"] == pytest.approx(-dE_e, abs=2e-4)
    assert abs(out["wow"]["dP_ph"]) < 1e-9 and out["wow"]["dP_cm"] > 0.05
    eh = out["ehrenfest"]
    assert eh["dP_ph"] > 0.05
    assert abs(eh["dP_cm"]) < 0.06 * abs(eh["dP_e"]), eh


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
def test_channel_boundaries_on_hand_placed_components():
    N, a, t0 = 60, 2.5, 1.0
    k = jnp.asarray(wow.electron.k_grid(N, a))
    omega_max = 0.05  # 1/fs: ħω_max = 0.0329 eV
    i0 = 10  # incoming: one component at k0 = 2π·10/(Na)
    w0 = jnp.zeros(N).at[i0].set(1.0)
    k0, E0 = float(k[i0]), -2 * t0 * math.cos(float(k[i0]) * a)
    # the packet is a single k: its resolution is 0, so set δ
    delta = 0.002
    idx, dE, hw, d, _ = C.classify(w0, k, t0, a, omega_max, delta)
    dE, hw, idx = np.asarray(dE), np.asarray(hw), np.asarray(idx)
    for j in range(N):
        if abs(dE[j]) <= delta:
            assert idx[j] == 0
        elif abs(dE[j]) < hw[j]:
            assert idx[j] == 1
        else:
            assert idx[j] == (2 if dE[j] < 0 else 3)
    # k' = -k0 is exactly elastic; hw there is ħω(2k0)
    j = int(np.flatnonzero(np.isclose(np.asarray(k), -k0))[0])
    assert idx[j] == 0 and hw[j] == pytest.approx(HBAR * omega_max * abs(math.sin(k0 * a)))
    # weights: one unit at -k0 (elastic), 0.3 at the most negative energy with k<0 (inelastic)
    j_low = int(np.flatnonzero((np.asarray(k) < 0) & (np.abs(np.asarray(k)) < 0.05))[0])
    wf = jnp.zeros(N).at[j].set(1.0).at[j_low].set(0.3)
    cw = C.channel_weights(w0, wf, k, t0, a, omega_max, delta)
    assert float(cw["P_elastic"]) == pytest.approx(1.0) and float(cw["P_inelastic"]) == pytest.approx(0.3)
    assert dE[j_low] < -0.5  # band bottom: it lost ~ t0


def test_channels_of_a_static_reflector_are_elastic_and_fractions_have_errors():
    """One modified bond, zero temperature, frozen lattice: the reflected weight keeps the packet's
    own energy distribution once the packet has left the defect, so at the default δ = 2σ_E the
    elastic share is the Gaussian 95.4% and the tails beyond ±δ are equal."""
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
    total = sum(float(cw[f"P_{c}"]) for c in C.CHANNELS)
    assert total == pytest.approx(P_b, rel=1e-12)
    assert float(cw["P_elastic"]) / P_b == pytest.approx(math.erf(2 / math.sqrt(2)), abs=0.01)
    assert float(cw["P_inelastic"]) == pytest.approx(float(cw["P_superelastic"]), rel=0.2)
    assert float(cw["P_quasielastic"]) == 0.0  # δ (0.22 eV) > ħω_max (0.03 eV): nothing in between
    # default δ is twice the packet's energy spread ≈ ħ v(k0)/σ (paper A9 with L = σ)
    v = wow.electron.group_velocity(cfg.k0, 1.0, cfg.chain.a)
    assert float(cw["delta_E"]) == pytest.approx(HBAR * v / 20.0, rel=0.05)
    # ensemble fractions: ratio estimator with standard errors, fractions summing to 1
    rng = np.random.default_rng(0)
    per = {f"P_{c}": rng.uniform(0, 1, 200) * s for c, s in zip(C.CHANNELS, (1.0, 0.2, 0.3, 0.1))}
    fr = C.channel_fractions(per)
    assert sum(m for m, _ in fr.values()) == pytest.approx(1.0)
    P = sum(per.values())
    assert fr["elastic"][0] == pytest.approx(per["P_elastic"].sum() / P.sum())
    assert all(0 < se < 0.05 for _, se in fr.values())


# ------------------------------------------------------------------------------------------------
# Through the ensemble
# ------------------------------------------------------------------------------------------------
def test_ehrenfest_is_a_config_option_and_the_ensemble_records_the_budget():
    cfg = wow.Config(chain=wow.Chain(N=64, boundary="ring"), electron=wow.Electron(alpha=0.5, sigma=8.0),
                     dynamics="ehrenfest", dt=0.05, duration=4.0, n_frames=1)
    res = wow.run(cfg, n_samples=4, seed=2)
    ps = res.per_sample
    for key in ("dP_e", "dP_ph", "dP_cm", "dE_lat", "P_elastic", "P_inelastic", "delta_E"):
        assert key in ps and ps[key].shape == (4,)
    np.testing.assert_allclose(ps["dP_cm"], -(ps["dP_e"] + ps["dP_ph"]), atol=1e-14)
    np.testing.assert_allclose(ps["dE_lat"], -ps["dE_e"], atol=1e-4)  # energy conservation
    chan = sum(ps[f"P_{c}"] for c in C.CHANNELS)
    np.testing.assert_allclose(chan, ps["P_b"], rtol=1e-12)
    # the per-frame <P_R> trace subtracts the phonons' crystal momentum (MODEL.md): it starts at the
    # drawn P_R and ends where the budget says the CM ends, and P_R_f agrees with both
    tr = res.traces
    assert "P_ph" in tr and tr["P_R"].shape == (4, cfg.n_frames + 1)
    np.testing.assert_allclose(tr["P_R"][:, 0], ps["P_R0"], atol=1e-12)
    np.testing.assert_allclose(tr["P_R"][:, -1] - ps["P_R0"], ps["dP_cm"], atol=1e-10)
    np.testing.assert_allclose(ps["P_R_f"], tr["P_R"][:, -1], atol=1e-14)
    assert np.all(np.abs(ps["dP_cm"]) < np.abs(ps["dP_e"]) + 1e-12)
    with pytest.raises(wow.ConfigError, match="dynamics"):
        wow.validate(wow.Config(dynamics="ehrenfst"))


def test_troisi_orlandi_script_runs_small_and_frozen_does_not_spread(tmp_path):
    from wow.experiments import troisi_orlandi as to

    m = to.model(to.build_parser().parse_args([]))
    assert m["K"] == pytest.approx(1.5028, rel=1e-4) and m["t0"] == pytest.approx(0.037195, rel=1e-4)
    assert m["alpha"] == pytest.approx(0.12336, rel=1e-4)  # eV/Å from 995 cm⁻¹/Å
    # the Einstein flow is the exact oscillator
    lat = L.SiteState(u=jnp.asarray([0.1, -0.2]), v=jnp.asarray([0.0, 0.003]))
    p = type("P", (), {"omega2": jnp.asarray(m["omega"] ** 2)})
    out = to.einstein_drift(lat, 300.0, p, None)
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
