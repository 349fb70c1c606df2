"""Transport frames (Config.transport) on the density-density continuum model and on the quantum
lattice, each against an exact result:

- the free packet (V0 = 0, recoil on): <s - x0>, the MSD, D_run = ½ dMSD/dt, <ds/dt>, <p>, the
  kinetic and CM energies against the closed forms with the reduced mass μ = m NM/(m + NM);
- a thermal continuum run (wow, ehrenfest): every transport frame equal to its recomputation from
  the saved amplitudes and lattices by the test's own numpy (image-sum potential, DFT momenta);
  under Ehrenfest E_e + E_cm + E_lattice conserved, the drift falling as dt²;
- the chain on the quantum lattice: <x - x0>, the MSD, D_run, <v> and E_e at every frame against
  expm of the test's electron x Fock Hamiltonian (references.electron_fock_H), Richardson-
  extrapolated; E_e plus the phonons' Σ ħω(<n> + 1/2) conserved;
- the refusals (a packet that would wrap the ring; kubo with the continuum).
"""

import dataclasses
import math

import numpy as np
import pytest
import scipy.linalg as sla

import wow
from wow.units import HBAR

from references import electron_fock_H, mode


def free_cfg(**kw):
    base = dict(chain=wow.Chain(N=32, boundary="ring", mass=0.05),
                electron=wow.Continuum(V0=0.0, w=1.0, g=8, packet="plane", sigma=4.0, k0=0.3),
                temperature=0.0, dynamics="frozen", dt=0.05, duration=1.6, n_frames=4, transport=True, recoil=True)
    base.update(kw)
    return wow.Config(**base)


def test_free_packet_moments_with_recoil_are_the_closed_form():
    """V0 = 0 on a thermal lattice moving on its own ('wow'): in each sample's sector Q = P_R(0) + ħk0
    the relative coordinate s moves freely with ds/dt = p/μ - Q/(NM), so <s - x0> = v t with
    v = ħk0/μ - Q/(NM) and the MSD is σ² + (σ_v² + v²) t², σ_v = ħ/(2σμ) (the Gaussian's momentum
    spread ħ/(2σ), reduced mass μ = m NM/(m + NM)); <p> is conserved, the lattice energy too."""
    cfg = free_cfg(dynamics="wow", temperature=300.0)
    r = wow.run(cfg, 2, seed=5, progress=False)
    t = r.times
    e, c = cfg.electron, cfg.chain
    m, NM = e.mass(), c.N * c.mass_ev
    mu = m * NM / (m + NM)
    assert 1 - mu / m > 3e-4  # the recoil changes the MSD by ~1e-3 relative, far above the tolerance
    k0, sig = e.k0, e.sigma
    sv = HBAR / (2 * sig * mu)
    for s in range(2):
        f = {k: np.asarray(v)[s] for k, v in r.traces.items()}
        Q = f["P_R"][0] + HBAR * f["k_mean"][0]
        v = HBAR * k0 / mu - Q / NM
        assert abs(Q - HBAR * k0) > 1e-3 * HBAR * k0  # a thermal CM momentum (the Q term is tested)
        np.testing.assert_allclose(f["dx"], v * t, rtol=0, atol=1e-10)
        np.testing.assert_allclose(f["msd"], sig**2 + (sv**2 + v**2) * t**2, rtol=1e-10)
        np.testing.assert_allclose(f["D_run"], (sv**2 + v**2) * t, rtol=0, atol=1e-10)
        np.testing.assert_allclose(f["v_mean"], v, rtol=1e-10)
        np.testing.assert_allclose(f["k_mean"], k0, rtol=1e-12)  # <p> conserved at V0 = 0
        p2 = (HBAR * k0) ** 2 + (HBAR / (2 * sig)) ** 2
        np.testing.assert_allclose(f["E_kin"], p2 / (2 * m), rtol=1e-10)
        np.testing.assert_allclose(f["E_e"], f["E_kin"], rtol=1e-13)
        np.testing.assert_allclose(f["E_cm"], ((Q - HBAR * k0) ** 2 + (HBAR / (2 * sig)) ** 2) / (2 * NM), rtol=1e-10)
        assert f["edge"].max() < 1e-12  # the antipode holds nothing yet: the minimum image is exact
        assert f["E_lattice"][0] > 0 and np.ptp(f["E_lattice"]) < 1e-9 * f["E_lattice"][0]  # moves on its own


# --------------------------------------------------------------------------------------------
# A thermal continuum run: frames against the saved amplitudes and lattices
# --------------------------------------------------------------------------------------------
def image_potential(u, V0, w, a, n_s):
    """V(s_i) = Σ_j Σ_images V0 exp(-(s_i - j a - u_j - nL)²/(2w²)) by the sum written out."""
    N = u.size
    L, h = N * a, N * a / n_s
    s = np.arange(n_s) * h
    V = np.zeros(n_s)
    for j in range(N):
        for n in (-1, 0, 1):
            V += V0 * np.exp(-((s - j * a - u[j] - n * L) ** 2) / (2 * w * w))
    return V


def frame_reference(psi, u, cfg, Q):
    """The transport moments of one saved frame by the test's own numpy."""
    e, c = cfg.electron, cfg.chain
    n_s = c.N * e.g
    L, h = c.N * c.a, c.a / e.g
    x0 = e.packet_x0(c)
    d = np.arange(n_s) * h - x0
    d = d - L * np.floor(d / L + 0.5)
    kap = 2 * np.pi * np.fft.fftfreq(n_s, h)
    m = e.mass()
    inv_NM = 1 / (c.N * c.mass_ev) if cfg.recoil else 0.0
    rho = np.abs(psi) ** 2
    phik = np.fft.fft(psi, norm="ortho")
    wk = np.abs(phik) ** 2
    p = HBAR * kap
    vel = np.fft.ifft((p / m - (Q - p) * inv_NM) * phik, norm="ortho")  # ds/dt ψ
    V = image_potential(u, e.V0, e.w, c.a, n_s)
    far = (x0 + L / 2) % L
    dist = np.abs((np.arange(n_s) * h - far + L / 2) % L - L / 2)
    cell = np.argsort(dist, kind="stable")[: e.g]
    return {"dx": rho @ d, "msd": rho @ d**2, "D_run": np.real(np.vdot(d * psi, vel)),
            "v_mean": np.real(np.vdot(psi, vel)), "E_kin": wk @ p**2 / (2 * m), "E_e": wk @ p**2 / (2 * m) + rho @ V,
            "E_cm": wk @ (Q - p) ** 2 * inv_NM / 2, "edge": rho[cell].sum()}


def thermal_cfg(dynamics, dt=0.05, recoil=True):
    return wow.Config(chain=wow.Chain(N=12, boundary="ring", mass=1.0),
                      electron=wow.Continuum(V0=1.0, w=1.0, g=8, packet="bloch", sigma=1.5),
                      temperature=600.0, dynamics=dynamics, dt=dt, duration=2.0, n_frames=4, transport=True,
                      recoil=recoil, save_amplitudes=True, save_density=True, check_inside=False)


def test_continuum_frames_equal_the_saved_amplitudes():
    """The accumulated frames (no ψ stored) of an Ehrenfest run with recoil against the same
    quantities from the saved ψ and u; E_e + E_cm + E_lattice conserved, the drift falling at least
    as dt² (measured 5.6e-5 at dt = 0.05 fs, 9.6e-6 at dt/2; the halved step reuses the compiled
    program)."""
    cfg = thermal_cfg("ehrenfest")
    r = wow.run(cfg, 2, seed=3, progress=False)
    f = r.traces
    Q = np.asarray(f["P_R"][:, 0] + HBAR * f["k_mean"][:, 0])
    for s in range(2):
        for j in range(r.times.size):
            want = frame_reference(np.asarray(f["psi"][s, j]), np.asarray(f["u"][s, j]), cfg, Q[s])
            for name, v in want.items():
                assert f[name][s, j] == pytest.approx(v, rel=1e-9, abs=1e-12), (name, s, j)
    assert np.ptp(f["msd"][:, -1]) > 0 and np.abs(f["D_run"]).max() > 0.1  # something happens (measured)
    E = f["E_e"] + f["E_cm"] + f["E_lattice"]
    drift = np.abs(E - E[:, :1]).max()
    half = wow.run(dataclasses.replace(cfg, dt=cfg.dt / 2), 2, seed=3, progress=False).traces
    E2 = half["E_e"] + half["E_cm"] + half["E_lattice"]
    drift2 = np.abs(E2 - E2[:, :1]).max()
    assert drift < 2e-4 and drift / drift2 > 3.5, (drift, drift2)


# --------------------------------------------------------------------------------------------
# The chain on the quantum lattice against expm
# --------------------------------------------------------------------------------------------
def quantum_cfg(dt):
    return wow.Config(chain=wow.Chain(N=6, boundary="open", mass=1.0), electron=wow.Electron(alpha=2.0, sigma=1.5),
                      temperature=0.0, dynamics="quantum", quantum=wow.QuantumLattice(modes=(2,), n_max=3, others="absent"),
                      dt=dt, duration=2.0, n_frames=4, transport=True, check_inside=False)


def test_quantum_chain_transport_frames_against_expm():
    """One quantum mode of a 6-site chain, the electron from |n = 1> ⊗ the packet: <x - x0>, the MSD,
    D_run = Re<(x - x0) v> with v = (i/ħ)[H, x] and E_e = <H - H_ph> at each frame from the test's
    dense H (expm), against wow's frames (Strang, Richardson-extrapolated over dt and dt/2, which share
    one compiled program); E_e + E_lattice (the phonons' Σ ħω(<n> + 1/2)) conserved to O(dt²)."""
    n_max, occ, modes = 3, (1,), (2,)
    runs = []
    for dt in (0.01, 0.005):
        cfg = quantum_cfg(dt)
        r = wow.run(cfg, 1, initial=wow.InitialState(occupations=occ, Q=np.zeros(5), P=np.zeros(5), P_R=0.0),
                    progress=False)
        runs.append({k: np.asarray(v)[0] for k, v in r.traces.items()})
    c, e = cfg.chain, cfg.electron
    H = electron_fock_H(cfg, modes, n_max, np.zeros(c.N))
    d = n_max + 1
    x = np.arange(c.N) * c.a - cfg.x0
    X = np.kron(np.eye(d), np.diag(x))
    w = mode(c, 2)[0]
    H_ph = np.kron(HBAR * w * np.diag(np.arange(d) + 0.5), np.eye(c.N))
    Vop = 1j / HBAR * (H @ X - X @ H)
    packet = np.exp(-((np.arange(c.N) * c.a - cfg.x0) ** 2) / (4 * e.sigma**2) + 1j * cfg.k0 * np.arange(c.N) * c.a)
    ph = np.zeros(d)
    ph[occ[0]] = 1.0
    psi0 = np.kron(ph, packet / np.linalg.norm(packet))
    want = {k: [] for k in ("dx", "msd", "D_run", "v_mean", "E_e")}
    for t in r.times:
        psi = sla.expm(-1j * H * t / HBAR) @ psi0
        want["dx"].append(np.real(np.vdot(psi, X @ psi)))
        want["msd"].append(np.real(np.vdot(psi, X @ X @ psi)))
        want["D_run"].append(np.real(np.vdot(X @ psi, Vop @ psi)))
        want["v_mean"].append(np.real(np.vdot(psi, Vop @ psi)))
        want["E_e"].append(np.real(np.vdot(psi, (H - H_ph) @ psi)))
    a, b = runs
    for name, v in want.items():
        v = np.array(v)
        rich = (4 * b[name] - a[name]) / 3
        np.testing.assert_allclose(rich, v, rtol=0, atol=1e-7 * max(1.0, np.abs(v).max()), err_msg=name)
    assert np.ptp(b["n_mean"]) > 0.01  # the phonon exchanges energy with the electron (measured)
    E = b["E_e"] + b["E_lattice"]
    assert np.abs(E - E[0]).max() < 1e-4 * np.abs(b["E_e"]).max()
    np.testing.assert_allclose(b["E_lattice"], HBAR * w * (b["n_mean"][:, 0] + 0.5), rtol=1e-12)


@pytest.mark.parametrize("kw,words", [
    (dict(duration=40.0, n_frames=4), ["transport=True with wow.Continuum", "L/2", "duration=40.0"]),
    (dict(kubo=True), ["kubo=True", "wow.Continuum"]),
])
def test_continuum_transport_refusals_name_the_parameter(kw, words):
    with pytest.raises(wow.ConfigError) as err:
        wow.validate(free_cfg(**kw))
    for w in words:
        assert w in str(err.value), (w, str(err.value))
