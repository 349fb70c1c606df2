"""Tallies against references computed another way in the test: the energy channels at generic
incoming momenta (not only k0·a = π/3, where |sin(qa/2)| and |sin(qa)| agree at q = 2k0), the
phonon energy from the equations of motion of the chain, the packet's energy spread from the closed
form of a Gaussian, mode occupations of exactly known lattice states (one running wave; the normal
modes from a dense eigen-decomposition), the momentum budget of a hand-built state, and the
P_b-weighting of the ensemble's ΔE_b from the ensemble's own momentum distributions."""

import math

import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import channels as C
from wow import occupations as O
from wow.units import HBAR, mass_ev

K_SPRING, M_AMU = 3.32, 63.546


def omega_newton(q, K=K_SPRING, M_amu=M_AMU, a=1.0):
    """ω(q) of the monatomic chain from Newton's equation for u_m = e^{iqma}: M ω² u_n is the
    spring force K Σ_{d=±1} (u_n - u_{n+d}), evaluated as the complex sum."""
    q = np.asarray(q, float)
    force = K * sum(1 - np.exp(1j * q * d * a) for d in (-1, 1))
    assert np.allclose(force.imag, 0, atol=1e-12)
    return np.sqrt(np.abs(force.real) / mass_ev(M_amu))


def gaussian_weights(N, a, sigma, k0):
    """|ψ~(k)|² of ψ_n ∝ exp(-(na - x0)²/(4σ²)) e^{ik0na}, x0 mid-chain, by a DFT sum written out
    (not numpy's FFT), and the momenta k_j = 2πj/(Na) folded into (-π/a, π/a], in FFT order."""
    n = np.arange(N)
    x0 = (N - 1) * a / 2
    psi = np.exp(-((n * a - x0) ** 2) / (4 * sigma**2) + 1j * k0 * n * a)
    psi /= np.sqrt(np.sum(np.abs(psi) ** 2))
    j = np.arange(N)
    k = 2 * np.pi * j / (N * a)
    k = np.where(k > np.pi / a + 1e-12, k - 2 * np.pi / a, k)
    amp = np.exp(-2j * np.pi * np.outer(j, n) / N) @ psi / np.sqrt(N)
    return k, np.abs(amp) ** 2


# ------------------------------------------------------------------------------------------------
# Channels
# ------------------------------------------------------------------------------------------------
N_C, A_C, T0, SIGMA = 240, 2.0, 1.0, 9.0
#: generic k0·a, both directions, near the zone boundary, and π/3 (where the wrong ω(2k0) agrees)
K0A = [0.37, 0.9, math.pi / 3, 1.7, 2.6, 2.95, -0.8, -2.7]


@pytest.mark.parametrize("k0a", K0A)
def test_channels_against_independent_energies_and_phonon_energy(k0a):
    a, k0 = A_C, k0a / A_C
    omega_max = 2 * math.sqrt(K_SPRING / mass_ev(M_AMU))
    k, w0 = gaussian_weights(N_C, a, SIGMA, k0)
    idx, dE, hw, d, _ = (np.asarray(x) for x in C.classify(jnp.asarray(w0), jnp.asarray(k), T0, a, omega_max))
    # independent: the band by its formula, the incoming energy and momentum as sums, ħω from Newton
    eps = -2 * T0 * np.cos(k * a)
    E_in, k_in = np.sum(eps * w0), np.sum(k * w0)
    hw_ref = HBAR * omega_newton(k_in - k, a=a)
    np.testing.assert_allclose(dE, eps - E_in, atol=1e-12)
    np.testing.assert_allclose(hw, hw_ref, rtol=1e-10, atol=1e-15)
    # δ = twice the band-energy standard deviation of a Gaussian |ψ~|² (variance 1/(4σ²) in k):
    # <cos ka> = cos(k0 a) e^{-a²/(8σ²)}, <cos² ka> = (1 + cos(2k0 a) e^{-a²/(2σ²)})/2
    c1 = math.cos(k0a) * math.exp(-(a**2) / (8 * SIGMA**2))
    c2 = (1 + math.cos(2 * k0a) * math.exp(-(a**2) / (2 * SIGMA**2))) / 2
    assert float(d) == pytest.approx(2 * 2 * T0 * math.sqrt(c2 - c1**2), rel=1e-6)
    assert E_in == pytest.approx(-2 * T0 * c1, rel=1e-9)
    # the labels, from the rules with these independent energies
    elastic = np.abs(eps - E_in) <= d
    quasi = ~elastic & (np.abs(eps - E_in) < hw_ref)
    expect = np.where(elastic, 0, np.where(quasi, 1, np.where(eps - E_in < 0, 2, 3)))
    assert np.array_equal(idx, expect)
    # weights of an arbitrary final distribution, backscattered part only
    wf = np.random.default_rng(int(1000 * abs(k0a))).random(N_C)
    cw = C.channel_weights(jnp.asarray(w0), jnp.asarray(wf), jnp.asarray(k), T0, a, omega_max)
    for c, name in enumerate(C.CHANNELS):
        assert float(cw[f"P_dE_{name}"]) == pytest.approx(np.sum(wf[(k < 0) & (expect == c)]), rel=1e-12, abs=1e-15)
    assert float(cw["delta_E"]) == pytest.approx(float(d))


def test_quasielastic_window_is_used_at_generic_k0():
    """A narrow δ and a soft lattice give a non-empty quasielastic window at k0·a = 0.9: components
    between δ and ħω(q) are quasielastic, beyond it (in)elastic by sign, each as the rules say with
    the phonon energy at q = <k>_0 - k' (a formula at 2<k>_0 or at qa instead of qa/2 mislabels)."""
    a, k0a = A_C, 0.9
    k, w0 = gaussian_weights(N_C, a, SIGMA, k0a / a)
    omega_max = 2 * math.sqrt(10.0 / mass_ev(1.0))  # ħω_max = 0.41 eV: a tenth of the band
    idx, dE, hw, d, _ = (np.asarray(x) for x in C.classify(jnp.asarray(w0), jnp.asarray(k), T0, a, omega_max, 0.02))
    k_in = np.sum(k * w0)
    hw_ref = HBAR * omega_newton(k_in - k, K=10.0, M_amu=1.0, a=a)
    np.testing.assert_allclose(hw, hw_ref, rtol=1e-10)
    back = k < 0
    assert np.sum(back & (idx == 1)) >= 3 and np.sum(back & (idx == 2)) >= 3 and np.sum(back & (idx == 3)) >= 3
    dE_ref = -2 * T0 * np.cos(k * a) - np.sum(-2 * T0 * np.cos(k * a) * w0)
    assert np.all((np.abs(dE_ref[idx == 1]) > 0.02) & (np.abs(dE_ref[idx == 1]) < hw_ref[idx == 1]))
    assert np.all(dE_ref[idx == 2] <= -np.maximum(0.02, hw_ref[idx == 2]))
    assert np.all(dE_ref[idx == 3] >= np.maximum(0.02, hw_ref[idx == 3]))


def test_from_momenta_fractions_are_the_ratio_of_summed_weights():
    """Two samples by hand: the ensemble fraction of a channel is Σ_s P_c,s / Σ_s P_b,s (not the mean
    of the per-sample shares)."""
    a = A_C
    k, w0 = gaussian_weights(N_C, a, SIGMA, 0.9 / a)
    omega_max = 2 * math.sqrt(K_SPRING / mass_ev(M_AMU))
    rng = np.random.default_rng(4)
    wf = np.stack([rng.random(N_C) * s for s in (1.0, 0.05)])
    out = C.from_momenta(np.stack([w0, w0]), wf, k, T0, a, omega_max)
    P_b = wf[:, k < 0].sum(1)
    for name in C.CHANNELS:
        Pc = np.asarray(out["per_sample"][f"P_dE_{name}"])
        f = Pc.sum() / P_b.sum()
        r = Pc - f * P_b
        se = math.sqrt(2 * np.sum(r**2) / P_b.sum() ** 2)
        assert out["fractions"][name] == pytest.approx((f, se), rel=1e-10, abs=1e-15)


# ------------------------------------------------------------------------------------------------
# Occupations of exactly known lattice states
# ------------------------------------------------------------------------------------------------
def spring_energy(u, v, chain):
    """H_lat written out bond by bond."""
    M = mass_ev(chain.mass)
    bonds = [(n, n + 1) for n in range(chain.N - 1)] + ([(chain.N - 1, 0)] if chain.boundary == "ring" else [])
    return 0.5 * M * float(np.sum(v**2)) + 0.5 * chain.spring * sum((u[q] - u[p]) ** 2 for p, q in bonds)


@pytest.mark.parametrize("N,j", [(24, 1), (24, 5), (24, 11), (24, 13), (24, 23), (25, 12), (25, 13), (25, 3)])
def test_one_running_wave_has_occupation_at_plus_q_only(N, j):
    """u_n = A cos(q n a + φ), v_n = Aω sin(q n a + φ): a wave travelling towards +x for q > 0 (and
    -x for q < 0), q = 2πj/(Na) folded into (-π/a, π/a]. Its occupation sits at that q alone (every
    other running wave has zero amplitude, n = -1/2), equals E/(ħω) - 1/2 with E its energy, and its
    crystal momentum is the classical wave's pseudo-momentum P_ph = q E/ω (the -1/2 of -q cancels)."""
    chain = wow.Chain(N=N, boundary="ring")
    a = chain.a
    q = 2 * np.pi * j / (N * a)
    q = q - 2 * np.pi / a if q > np.pi / a else q
    w = float(omega_newton(q, a=a))
    A, phi = 0.013, 0.7
    x = np.arange(N) * a
    u, v = A * np.cos(q * x + phi), A * w * np.sin(q * x + phi)
    E = spring_energy(u, v, chain)
    assert E == pytest.approx(N * mass_ev(chain.mass) * w**2 * A**2 / 2, rel=1e-12)
    lat = wow.lattice.SiteState(u=jnp.asarray(u), v=jnp.asarray(v))
    occ = O.occupations(chain, lat)
    qs, ws, _ = O.running_waves(chain)
    i = int(np.argmin(np.abs(qs - q)))
    assert qs[i] == pytest.approx(q) and ws[i] == pytest.approx(w, rel=1e-12)
    n_q = np.asarray(occ["n_q"])
    assert n_q[i] == pytest.approx(E / (HBAR * w) - 0.5, rel=1e-10)
    np.testing.assert_allclose(np.delete(n_q, i), -0.5, atol=1e-10)
    assert float(occ["P_ph"]) == pytest.approx(q * E / w, rel=1e-10)
    assert float(occ["E_lat"]) == pytest.approx(E, rel=1e-12)
    # the standing modes hold the same energy, all in the cos/sin pair of |q|
    En = np.asarray(occ["E"])
    jj = min(j, N - j)
    pair = [jj - 1, N - jj - 1] if 2 * jj != N else [jj - 1]
    assert En[pair].sum() == pytest.approx(E, rel=1e-10)
    assert np.delete(En, pair).max() < 1e-12 * E


def test_zone_boundary_wave_has_no_crystal_momentum():
    """Even N: u_n = A(-1)^n cos φ, v_n = Aω_max(-1)^n sin φ is the q = π/a standing wave: occupation
    E/(ħω_max) - 1/2 whatever φ, crystal momentum 0 (q ≡ -q)."""
    chain = wow.Chain(N=16, boundary="ring")
    w = float(omega_newton(np.pi / chain.a, a=chain.a))
    for phi in (0.0, 0.9):
        s = (-1.0) ** np.arange(16)
        u, v = 0.02 * s * math.cos(phi), 0.02 * w * s * math.sin(phi)
        E = spring_energy(u, v, chain)
        occ = O.occupations(chain, wow.lattice.SiteState(u=jnp.asarray(u), v=jnp.asarray(v)))
        qs = O.running_waves(chain)[0]
        i = int(np.argmin(np.abs(qs - np.pi / chain.a)))
        assert float(occ["n_q"][i]) == pytest.approx(E / (HBAR * w) - 0.5, rel=1e-10)
        assert abs(float(occ["P_ph"])) < 1e-12


def dense_modes(chain):
    """Eigenfrequencies and orthonormal eigenvectors of the spring matrix, built here by hand."""
    N = chain.N
    Kmat = np.zeros((N, N))
    for n in range(N - 1 + (chain.boundary == "ring")):
        p, q = n, (n + 1) % N
        Kmat[[p, q], [p, q]] += chain.spring
        Kmat[p, q] -= chain.spring
        Kmat[q, p] -= chain.spring
    lam, vec = np.linalg.eigh(Kmat / mass_ev(chain.mass))
    return np.sqrt(np.clip(lam[1:], 0, None)), vec[:, 1:]  # drop the CM (λ = 0)


@pytest.mark.parametrize("boundary,N", [("open", 11), ("open", 16), ("ring", 12), ("ring", 13)])
def test_standing_occupations_against_dense_eigenmodes(boundary, N):
    """A random lattice state: the energy in each normal mode from projections on the eigenvectors of
    a hand-built spring matrix (on the ring, summed over each degenerate cos/sin pair, the part that
    does not depend on the choice of basis), n = E/(ħω) - 1/2, and the total H_lat."""
    chain = wow.Chain(N=N, boundary=boundary)
    rng = np.random.default_rng(N)
    u, v = rng.normal(0, 0.05, N), rng.normal(0, 5e-4, N)
    u, v = u - u.mean(), v - v.mean()
    w, vec = dense_modes(chain)
    M = mass_ev(chain.mass)
    Ej = (M * (vec.T @ v)) ** 2 / (2 * M) + 0.5 * M * w**2 * (vec.T @ u) ** 2
    E, n = (np.asarray(x) for x in O.standing_occupations(chain, wow.lattice.SiteState(jnp.asarray(u), jnp.asarray(v))))
    wj = np.sort(np.asarray(wow.lattice.mode_frequencies(chain)))
    np.testing.assert_allclose(wj, w, rtol=1e-10)
    order = np.argsort(np.asarray(wow.lattice.mode_frequencies(chain)), kind="stable")
    if boundary == "open":
        np.testing.assert_allclose(E[order], Ej, rtol=1e-9)
    else:  # group degenerate frequencies and compare the sums
        for wv in np.unique(np.round(w, 10)):
            sel_d = np.isclose(w, wv, rtol=1e-9)
            sel_w = np.isclose(np.asarray(wow.lattice.mode_frequencies(chain)), wv, rtol=1e-9)
            assert sel_d.sum() == sel_w.sum()
            assert E[sel_w].sum() == pytest.approx(Ej[sel_d].sum(), rel=1e-9)
    np.testing.assert_allclose(n, E / (HBAR * np.asarray(wow.lattice.mode_frequencies(chain))) - 0.5, rtol=1e-12)
    assert E.sum() == pytest.approx(spring_energy(u, v, chain), rel=1e-10)


def test_budget_of_a_hand_built_state():
    """Electron reversed (ψ -> ψ*, so <k> -> -<k>) while the lattice goes from rest to one running
    wave at +q: dP_e = -2ħ<k>_0, dP_ph = qE/ω, dP_cm = -(dP_e + dP_ph), dE_lat = E and Σ Δn_j =
    E/(ħω) (the wave's energy in quanta)."""
    chain = wow.Chain(N=40, boundary="ring")
    a = chain.a
    k, w0 = gaussian_weights(40, a, 4.0, 0.8 / a)
    n = np.arange(40)
    psi0 = np.exp(-((n * a - 39 * a / 2) ** 2) / (4 * 4.0**2) + 1j * 0.8 * n)
    psi0 /= np.linalg.norm(psi0)
    k_mean = np.sum(k * w0)
    q = 2 * np.pi * 3 / (40 * a)
    w = float(omega_newton(q, a=a))
    A = 0.01
    u, v = A * np.cos(q * n * a), A * w * np.sin(q * n * a)
    E = spring_energy(u, v, chain)
    zero = wow.lattice.SiteState(jnp.zeros(40), jnp.zeros(40))
    b = O.budget(chain, jnp.asarray(psi0), jnp.asarray(np.conj(psi0)), zero,
                 wow.lattice.SiteState(jnp.asarray(u), jnp.asarray(v)))
    b = {key: float(val) for key, val in b.items()}
    assert b["dP_e"] == pytest.approx(-2 * HBAR * k_mean, rel=1e-10)
    assert b["dP_ph"] == pytest.approx(q * E / w, rel=1e-10)
    assert b["dP_cm"] == pytest.approx(2 * HBAR * k_mean - q * E / w, rel=1e-10)
    assert b["dE_lat"] == pytest.approx(E, rel=1e-12)
    assert b["dn"] == pytest.approx(E / (HBAR * w), rel=1e-10)


# ------------------------------------------------------------------------------------------------
# ΔE_b: the ensemble weights each sample by its backscattered probability
# ------------------------------------------------------------------------------------------------
def test_ensemble_dE_b_is_the_energy_of_all_backscattered_weight():
    """Two thermal samples with different P_b. The ensemble's ΔE_b is the band energy of the whole
    backscattered weight of the ensemble, Σ_s Σ_{k<0} ε(k) w_s(k) / Σ_s P_b,s, minus the incoming
    energy, computed here from the saved final momentum distributions; its error is the two-sample
    delta-method value written out by hand. The unweighted mean of the samples' ΔE_b differs."""
    cfg = wow.Config(chain=wow.Chain(N=64, boundary="ring"), electron=wow.Electron(sigma=6.0, k0=1.1 / 2.556),
                     temperature=300.0, statistics="classical", dynamics="frozen", duration=8.0,
                     n_frames=1, save_density=True)
    r = wow.run(cfg, 2, seed=5)
    k = 2 * np.pi * np.fft.fftfreq(64, d=cfg.chain.a)
    k = np.where(k <= -np.pi / cfg.chain.a + 1e-12, k + 2 * np.pi / cfg.chain.a, k)
    eps = -2 * cfg.electron.t0 * np.cos(k * cfg.chain.a)
    wk = np.asarray(r.traces["momentum"])  # (2, frames, N), FFT order
    back = k < 0
    P_b = wk[:, -1, back].sum(1)
    E_in = np.sum(eps * wk[0, 0])
    assert np.allclose(P_b, r.per_sample["P_b"], rtol=1e-10)
    assert P_b.max() / P_b.min() > 1.3  # the weighting matters (measured 0.48 and 0.33)
    E_back = np.sum(wk[:, -1, back] * eps[back]) / P_b.sum()
    m, s = r.stats["dE_b"]
    assert m == pytest.approx(E_back - E_in, rel=1e-9)
    x = r.per_sample["dE_b"]
    s_hand = math.sqrt(2 * (P_b[0] ** 2 * (x[0] - m) ** 2 + P_b[1] ** 2 * (x[1] - m) ** 2) / P_b.sum() ** 2)
    assert s == pytest.approx(s_hand, rel=1e-9)
    assert abs(x.mean() - m) > 0.05 * abs(x[0] - x[1])  # measured -0.126 unweighted, -0.139 weighted


# ------------------------------------------------------------------------------------------------
# The quantum lattice's ensemble numbers: ratio estimators over samples, by hand
# ------------------------------------------------------------------------------------------------
def test_quantum_summary_weights_samples_by_their_backscattering():
    """Two samples of one quantum mode pair (d = 3 levels each) with hand-placed backscattered weights:
    the Δn = 0 share and the one-phonon share are Σ_s P_c,s / Σ_s P_b,s, the energy given to the
    phonons is Σ_s Σ_n w_s(n) ħω·Δn / Σ_s P_b,s, each with the two-sample delta-method error written
    out; the unweighted means of the per-sample values differ."""
    from wow.tally import quantum_summary

    hw = np.array([0.02, 0.05])
    n0 = np.array([[1, 0], [0, 2]])
    back = np.zeros((2, 3, 3))
    back[0][1, 0], back[0][2, 0], back[0][1, 1], back[0][0, 2] = 0.10, 0.05, 0.02, 0.01  # Δn 0, +1, +1, (-1, +2)
    back[1][0, 2], back[1][0, 1], back[1][1, 2] = 0.01, 0.03, 0.004  # Δn 0, -1, +1
    pop = back * 3.0
    traces = {"P_ph": np.zeros((2, 2)), "P_R": np.zeros((2, 2)), "top": np.zeros((2, 2, 2)), "norm": np.ones((2, 2))}
    add, stats, fr, _ = quantum_summary({"n0": n0, "back": back, "pop": pop}, traces, hw)
    P_b = np.array([0.18, 0.044])
    P_el = np.array([0.10, 0.01])
    P_1 = np.array([0.05 + 0.02, 0.03 + 0.004])
    E = np.array([0.05 * 0.02 + 0.02 * 0.05 + 0.01 * (-0.02 + 2 * 0.05), 0.03 * (-0.05) + 0.004 * 0.02])
    np.testing.assert_allclose(add["P_b"], P_b, rtol=1e-12)
    np.testing.assert_allclose(add["P_b_el"], P_el, rtol=1e-12)
    np.testing.assert_allclose(add["E_ph_b"], E / P_b, rtol=1e-12)

    def ratio(num):
        f = num.sum() / P_b.sum()
        return f, math.sqrt(2 * np.sum((num - f * P_b) ** 2) / P_b.sum() ** 2)

    assert fr["f_el"] == pytest.approx(ratio(P_el), rel=1e-10)
    assert fr["f_order1"] == pytest.approx(ratio(P_1), rel=1e-10)
    assert stats["E_ph_b"] == pytest.approx(ratio(E), rel=1e-10)
    assert abs(np.mean(P_el / P_b) - fr["f_el"][0]) > 0.05  # the weighting matters here
    assert abs(np.mean(E / P_b) - stats["E_ph_b"][0]) > 1e-3
