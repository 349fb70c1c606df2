"""The density-density model through the one core (wow.run with a wow.Continuum): a frozen run from a
given lattice against models.continuum.evolve (recoil off and on, energy kept exactly with the CM's
share); wow against Strang steps at the exact harmonic mid-step lattice; ehrenfest's total energy
(electron + CM + lattice) kept to O(dt²) and its trajectory of fitted order 2; a Bloch packet on the
static lattice backscatters nothing; classical and Wigner samples; bad input refused with the
parameter named. Small rings (N = 8, g = 8: 64 grid points), few steps."""

import dataclasses
import math

import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import ensemble, io
from wow import lattice as L
from wow.errors import ConfigError
from wow.models import continuum as C

N, G = 8, 8


def base(dynamics="frozen", recoil=False, V0=1.0, **kw):
    """The ring of tests/test_core.py's small_continuum (shares its compiled programs)."""
    return wow.Config(chain=wow.Chain(N=N, boundary="ring", mass=4.0),
                      electron=wow.Continuum(V0=V0, w=1.0, g=G, sigma=1.0, u_max=1.5),
                      dynamics=dynamics, recoil=recoil, duration=1.0, n_frames=2, dt=0.05, **kw)


def grid_of(cfg):
    return C.make_grid(cfg.electron, cfg.chain, C.thermal_u_max(cfg))


def zero_sum(seed, scale, n=N):
    x = np.random.default_rng(seed).normal(0.0, scale, n)
    return x - x.mean()


def sector(cfg, psi0, P_R):
    """(E_T, Q) of the run: kinetic + recoil energies on the grid momenta at Q = P_R + <p>(0)."""
    grid = grid_of(cfg)
    kap = C.momenta(grid)
    wk = np.abs(np.asarray(C.fft(psi0))) ** 2
    Q = P_R + wow.HBAR * float(wk @ np.asarray(kap))
    inv = 1 / (2 * N * cfg.chain.mass_ev) if cfg.recoil else 0.0
    return C.kinetic_energies(kap, cfg.electron.mass(), Q, inv), Q


@pytest.mark.parametrize("recoil", [False, True])
def test_frozen_run_equals_evolve_and_keeps_energy_with_the_cm(recoil):
    """A given frozen lattice: wow.run's final ψ equals continuum.evolve (T/2 V T/2 steps, exact
    cos/sin phases) to 1e-11; <p> changes (the lattice pushes), dE_e + dE_cm = 0 to rounding (the
    CM's recoil energy is the electron's loss), dP_cm = -dP_e and <P_R> = Q - <p> frame by frame."""
    cfg = base(recoil=recoil, V0=2.0)
    u, P_R = zero_sum(1, 0.3), 0.4
    r = wow.run(cfg, 1, initial=wow.InitialState(u=u, v=np.zeros(N), P_R=P_R), keep_final=True, progress=False)
    psi0 = ensemble.initial_packet(cfg)
    E_T, Q = sector(cfg, psi0, P_R)
    V = C.lattice_potential(jnp.asarray(u), 2.0, 1.0, grid_of(cfg))
    ref = C.evolve(psi0, V, E_T, cfg.dt, cfg.n_frames * cfg.steps_per_frame)
    # the run's potential phase is the rational rotation (continuum.phase_rational), evolve's cos/sin:
    # θ(1 - θ⁶/100800) at θ = V dt/ħ <= 0.3 here, 7.5e-11 after 20 steps
    np.testing.assert_allclose(r.final["psi"][0], ref, atol=3e-10)
    ps = r.per_sample
    assert abs(ps["dP_e"][0]) > 1e-3  # the lattice does push the electron
    # <H_Q> = <p²/2m + V> + <(Q - p)²/2NM>: the tallies' split of the reference's energy change (Strang
    # keeps <H_Q> only to O(dt²): -1e-4 eV here)
    dH = float(C.energy(ref, V, E_T) - C.energy(psi0, V, E_T))
    assert ps["dE_e"][0] + ps["dE_cm"][0] == pytest.approx(dH, abs=1e-10)
    assert (abs(ps["dE_cm"][0]) > 1e-6) == recoil
    assert ps["dP_cm"][0] == pytest.approx(-ps["dP_e"][0], abs=1e-15)
    np.testing.assert_allclose(r.traces["P_R"][0] + wow.HBAR * r.traces["k_mean"][0], Q, atol=1e-12)
    assert ps["P_R_f"][0] == pytest.approx(Q - wow.HBAR * ps["k_f"][0], abs=1e-12)


def test_wow_run_equals_strang_steps_on_the_exact_harmonic_lattice():
    """wow (the lattice in exact harmonic motion from given modes, no force): the final ψ equals
    Strang steps with V at the mid-step lattice of lattice.harmonic_motion, and the final lattice
    the exact one, to 1e-10."""
    cfg = base("wow", recoil=True)
    rng = np.random.default_rng(3)
    Qm, Pm = rng.normal(0, 0.15, N - 1), rng.normal(0, 3.0, N - 1)  # Å, eV·fs/Å (~300 K at 4 amu)
    r = wow.run(cfg, 1, initial=wow.InitialState(Q=Qm, P=Pm, P_R=-0.2), keep_final=True, progress=False)
    psi = ensemble.initial_packet(cfg)
    E_T, _ = sector(cfg, psi, -0.2)
    sample = L.ModeSample(Q=jnp.asarray(Qm), P=jnp.asarray(Pm), P_R=jnp.asarray(-0.2))
    grid, n = grid_of(cfg), cfg.n_frames * cfg.steps_per_frame
    for i in range(n):
        u_mid = L.harmonic_motion(cfg.chain, sample, (i + 0.5) * cfg.dt).u
        psi = C.strang_step(psi, C.lattice_potential(u_mid, 1.0, 1.0, grid), E_T, cfg.dt)
    np.testing.assert_allclose(r.final["psi"][0], psi, atol=1e-10)
    np.testing.assert_allclose(r.final["u"][0], L.harmonic_motion(cfg.chain, sample, n * cfg.dt).u, atol=1e-10)


#: ω_max dt <= 3e-3 at every step (wow.dynamics.FLOW_BUCKETS): the lattice flow keeps one Taylor
#: order, so the four runs share one compiled program (at 0.02 fs the largest step took a second one)
DTS = (0.0125, 0.00625, 0.003125)


@pytest.fixture(scope="module")
def ehrenfest_runs():
    """One given lattice state with ehrenfest at the DTS and the DTS[0]/16 reference (one compiled
    program: dt is traced). Larger steps leave the asymptotic regime on this grid (the kinetic
    phase at the grid's Nyquist momentum is ~20 rad per step at dt = 0.04 fs)."""
    assert len({ensemble.program_of(dataclasses.replace(base("ehrenfest", recoil=True), dt=dt))[0]
                for dt in DTS + (DTS[0] / 16,)}) == 1
    cfg = base("ehrenfest", recoil=True)
    init = wow.InitialState(u=zero_sum(6, 0.2), v=zero_sum(7, 0.02), P_R=0.3)
    return {dt: wow.run(dataclasses.replace(cfg, dt=dt), 1, initial=init, keep_final=True, progress=False)
            for dt in DTS + (DTS[0] / 16,)}


def test_ehrenfest_total_energy_is_kept_to_order_dt2(ehrenfest_runs):
    """Total energy <p²/2m + V> + <(Q-p)²/2NM> + H_lat (dE_e + dE_cm + dE_lat) is kept to O(dt²):
    below 4e-4 of the energy the lattice takes at the smallest step (measured 3.7e-5), fitted order
    2 ± 0.3 (measured 2.06)."""
    err = {dt: abs(r.per_sample["dE_e"][0] + r.per_sample["dE_cm"][0] + r.per_sample["dE_lat"][0])
           for dt, r in ehrenfest_runs.items()}
    exchanged = abs(ehrenfest_runs[DTS[-1]].per_sample["dE_lat"][0])
    assert exchanged > 1e-4  # the lattice does take energy from the electron
    assert err[DTS[-1]] < 4e-4 * exchanged, (err, exchanged)
    slope = np.polyfit(np.log(DTS), np.log([err[d] for d in DTS]), 1)[0]
    assert 1.7 < slope < 2.3, (slope, err)


def test_ehrenfest_trajectory_is_second_order(ehrenfest_runs):
    """‖ψ_dt - ψ_ref‖ and max |u_dt - u_ref| against the dt/16 run: fitted order 2.0 ± 0.1."""
    ref = ehrenfest_runs[DTS[0] / 16].final
    e_psi = [np.linalg.norm(ehrenfest_runs[d].final["psi"][0] - ref["psi"][0]) for d in DTS]
    e_u = [np.abs(ehrenfest_runs[d].final["u"][0] - ref["u"][0]).max() for d in DTS]
    for e in (e_psi, e_u):
        slope = np.polyfit(np.log(DTS), np.log(e), 1)[0]
        assert 1.9 < slope < 2.1, (slope, e)


def test_bloch_packet_on_the_static_lattice_backscatters_nothing():
    """T = 0 classical, recoil off: the lattice is static and a band-0 Bloch packet is a stationary
    superposition of eigenstates of H, so its band-resolved P_b (v_n(k) < 0: the packet's own
    k < 0 tail, P_b0 ~ 0.06 on this small ring) stays P_b0. The Strang propagator's eigenstates are
    H's to O(dt²), so the leaked amplitude is O(dt²) and the deviation of P_b a bounded O(dt⁴)
    wobble: < 1e-7 at dt = 0.05 fs (measured 2e-8), 16x less at dt/2."""
    cfg = dataclasses.replace(base(), temperature=0.0)
    dev = []
    for dt in (0.05, 0.025):
        r = wow.run(dataclasses.replace(cfg, dt=dt), 2, progress=False)
        assert r.traces["P_b"][0, 0] > 0.01
        dev.append(np.abs(r.traces["P_b"] - r.traces["P_b"][:, :1]).max())
    assert dev[0] < 1e-7
    assert dev[0] / dev[1] == pytest.approx(16.0, rel=0.15)


def test_wigner_samples_hold_the_zero_point():
    """statistics='quantum' (Wigner) at T = 0: the lattice has its zero-point displacements, so a
    frozen sample's potential is not periodic and P_b > 0; classical at T = 0 gives exactly 0."""
    cfg = dataclasses.replace(base(), temperature=0.0, statistics="quantum", duration=2.0)
    r = wow.run(cfg, 2, progress=False)
    assert np.all(r.per_sample["P_b"] > 1e-8)
    assert np.all(np.isfinite(r.per_sample["P_b"]))


def test_windows_cover_the_zero_point_at_zero_temperature():
    """The windows' reach is rounded up to whole cells; with w = a/TAIL_RADIUS that slack is zero, so
    u_max comes from the displacements alone. Wigner samples at T = 0 carry the zero-point rms
    sqrt(<u²>_0) of theory.msd_mean: u_max must be U_SIGMAS times it (it was 0: every such sample
    left its windows and came back NaN); classical samples at T = 0 need none."""
    from wow import theory

    chain = wow.Chain(N=8, boundary="ring")
    e = wow.Continuum(V0=0.2, w=chain.a / C.TAIL_RADIUS, g=32, sigma=1.0)
    cfg = wow.Config(chain=chain, electron=e, dynamics="frozen", temperature=0.0, statistics="quantum",
                     dt=0.02, duration=0.04, n_frames=1)
    zero_point = math.sqrt(theory.msd_mean(chain, 0.0, "quantum"))
    assert zero_point > 0.01
    assert C.thermal_u_max(cfg) == pytest.approx(C.U_SIGMAS * zero_point, rel=1e-12)
    assert C.make_grid(e, chain, 0.0).u_max == pytest.approx(0.0, abs=1e-12)  # no slack left
    assert C.thermal_u_max(dataclasses.replace(cfg, statistics="classical")) == 0.0
    r = wow.run(cfg, 2, progress=False)
    assert np.all(np.isfinite(r.per_sample["P_b"]))


@pytest.mark.parametrize("change, name", [
    (dict(electron=wow.Continuum(g=4)), "electron.g"),
    (dict(electron=wow.Continuum(V0=float("nan"), w=1.0, g=8, sigma=1.0)), "electron.V0"),
    (dict(electron=wow.Continuum(w=1.0, g=8, sigma=50.0)), "electron.sigma"),
    (dict(electron=wow.Continuum(w=1.0, g=8, sigma=1.0, packet="gauss")), "electron.packet"),
    (dict(electron=wow.Continuum(w=1.0, g=8, sigma=1.0, k0=2.0)), "electron.k0"),
    (dict(electron=wow.Continuum(w=1.0, g=8, sigma=1.0, u_max=-1.0)), "electron.u_max"),
    (dict(chain=wow.Chain(N=8, boundary="open")), "chain.boundary"),
    (dict(dt=1.0), "dt"),
])
def test_bad_input_is_refused_with_the_parameter_named(change, name):
    cfg = dataclasses.replace(base(), **change)
    with pytest.raises(ConfigError, match=name.replace(".", r"\.")):
        wow.run(cfg, 2, progress=False)


def dense_dvr_H(cfg, u_cl, mode, n_max, Q):
    """Dense H of the grid ⊗ one quantum mode in the mode's DVR, numpy, from docs/model.md: Σ_α |α><α| ⊗
    H_grid(u_cl + ℓ x_α e) (kinetic + recoil + the potential at the atoms' positions when the mode
    sits at DVR point x_α; continuum.grid_hamiltonian) + ħω(a†a + 1/2) ⊗ 1. In the DVR the truncated
    Fock model's V(X) is exactly diagonal, so this is the truncated electron ⊗ Fock problem itself."""
    c, e = cfg.chain, cfg.electron
    grid = grid_of(cfg)
    x, Vd = fock_dvr(n_max)
    w = L.mode_frequencies(c)[mode - 1]
    ell = np.sqrt(wow.HBAR / (2 * c.mass_ev * w))
    vec = L.mode_matrix(c)[:, mode - 1]
    inv = 1 / (2 * c.N * c.mass_ev) if cfg.recoil else 0.0
    d, n = n_max + 1, grid.n_s
    H = np.zeros((d * n, d * n), complex)
    for a_ in range(d):
        u = jnp.asarray(u_cl + ell * x[a_] * vec)
        H[a_ * n:(a_ + 1) * n, a_ * n:(a_ + 1) * n] = np.asarray(
            C.grid_hamiltonian(u, e.V0, e.w, e.mass(), grid, Q, inv))
    H_ph = Vd.T @ np.diag(wow.HBAR * w * (np.arange(d) + 0.5)) @ Vd  # Fock -> DVR
    return H + np.kron(H_ph, np.eye(n)), Vd


def fock_dvr(n_max):
    from wow import fock
    return fock.dvr(n_max)


def test_quantum_mode_against_expm_of_the_grid_fock_problem():
    """One quantum mode (the zone-boundary mode of a 4-atom ring, 1 amu: ħω = 0.24 eV, ℓ = 0.09 Å)
    from n = 1, the others frozen at given displacements, recoil on: wow.run's final Fock amplitudes
    against expm of the dense (DVR ⊗ grid) Hamiltonian, fitted order 2.0 ± 0.1, and Richardson's
    extrapolation to 1e-7; the phonon occupation does move."""
    import scipy.linalg as sla
    import warnings

    chain = wow.Chain(N=4, boundary="ring", mass=1.0)
    mode, n_max, occ = 2, 4, 1
    cfg = wow.Config(chain=chain, electron=wow.Continuum(V0=2.0, w=1.0, g=8, sigma=0.5), dynamics="quantum",
                     recoil=True, duration=2.0, n_frames=1, dt=0.01,
                     quantum=wow.QuantumLattice(modes=(mode,), n_max=n_max, others="frozen"))
    Qm = np.array([0.08, 0.0, -0.05])  # mode coordinates (Å); the quantum mode's is removed
    u_cl = np.asarray(L.modes_to_sites(chain, jnp.asarray(Qm * np.array([1, 0, 1]))))
    dts = np.array([0.01, 0.005, 0.0025])
    states, nbar = [], None
    for dt in dts:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the truncation diagnostic
            r = wow.run(dataclasses.replace(cfg, dt=dt), 1, keep_final=True, progress=False,
                        initial=wow.InitialState(Q=Qm, P=np.zeros(3), P_R=0.0, occupations=np.array([occ])))
        states.append(np.asarray(r.final["psi"][0]).ravel())
        nbar = r.traces["n_mean"][0, -1, 0]
    psi0 = np.asarray(ensemble.initial_packet(cfg))
    _, Q = sector(cfg, jnp.asarray(psi0), 0.0)
    H, Vd = dense_dvr_H(cfg, u_cl, mode, n_max, Q)
    start = np.kron(Vd.T @ np.eye(n_max + 1)[occ], psi0)  # Fock |1> -> DVR amplitudes
    ref = np.kron(Vd, np.eye(psi0.size)) @ (sla.expm(-1j * H * cfg.t_final / wow.HBAR) @ start)
    errs = [np.linalg.norm(s - ref) for s in states]
    assert 1.9 <= np.polyfit(np.log(dts), np.log(errs), 1)[0] <= 2.1, errs
    rich = (4 * states[-1] - states[-2]) / 3
    assert np.linalg.norm(rich - ref) < 1e-7, (np.linalg.norm(rich - ref), errs)
    assert abs(nbar - occ) > 1e-3  # the phonon does take part


def test_dd_bragg_experiment_writes_its_outputs(tmp_path):
    """The dd_bragg experiment on a tiny ring: the resumable results file (the static reference and the
    T point with P_tot and the coherent P_coh), table and figure beside --out, the table's e^{-2W(G)}
    the theory's for that ring and T; a second run resumes."""
    from wow import cli, theory

    out = tmp_path / "dd_bragg.h5"
    argv = ["run", "dd_bragg", "--sizes", "8", "--temperatures", "300", "--samples", "2", "--duration", "0.5",
            "--dt", "0.05", "--sigma", "1.0", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    assert (tmp_path / "dd_bragg.md").exists() and (tmp_path / "dd_bragg.png").exists()
    r = io.read_results(out)
    assert r.experiment == "dd_bragg" and len(r.points) == r.n_points_planned == 2
    static, hot = r.points
    assert static.values["static"] == 1 and hot.values["temperature"] == 300
    assert static.stats["P_tot"][0] > 0 and np.isfinite(float(hot.attrs["P_coh"]))
    table = (tmp_path / "dd_bragg.md").read_text()
    dw = theory.debye_waller_factor(hot.config.chain, 2 * np.pi / hot.config.chain.a, 300.0, "quantum")
    assert 0 < dw < 1 and f"| {dw:.4f} " in table
    assert cli.main(argv) == 0  # a second run resumes: nothing recomputed, the same file
    assert len(io.read_results(out).points) == 2


def test_dd_momentum_experiment_writes_its_outputs_and_the_running_basis_keeps_crystal_momentum(tmp_path):
    """The dd_momentum experiment at its smallest size (N = 8, one point, running basis, T = 300 K,
    the 2k0 pair only, n_max = 1): table, figure and the resumable results file beside --out; the backscattering to -k0
    is not zero, and its Δn = 0 share is 0, as Eq. 30 for the same modes says (crystal momentum: a
    Δn = 0 process needs q = G), where the paper's e^{-2W} with every mode is above 0.9."""
    from wow import cli, io

    out = tmp_path / "dd_momentum.h5"
    argv = ["run", "dd_momentum", "--sizes", "8", "--temperatures", "300", "--cases", "far", "--bases", "running",
            "--samples", "2", "--duration", "0.5", "--dt", "0.05", "--n-max", "1", "--w", "1.3", "--g", "5",
            "--modes", "2k0", "--out", str(out), "--quiet"]
    assert cli.main(argv) == 0
    assert (tmp_path / "dd_momentum.md").exists() and (tmp_path / "dd_momentum.png").exists()
    st = io.read_results(out).points[0].stats
    assert st["P_b_mk"][0] > 1e-7
    assert st["f_el_mk"][0] < 1e-10 and st["theory_eq30"][0] < 1e-20
    assert st["theory_dw_all"][0] > 0.9 and 0 < st["theory_hr"][0] <= 1
