"""The density-density continuum model (wow.models.continuum) against exact references: the
periodised Gaussian by direct image sums; bands against the central equation and dense
diagonalisation of the grid Hamiltonian; the weak-potential gap; the Strang step against expm of
the dense grid Hamiltonian (fitted order 2); the exact two-body reduction to the Q sector; free
Gaussian spreading (reduced mass with recoil); recoil off as NM -> ∞; the force as -grad of the
energy; the momentum budget; a Bloch packet's stationarity; first-order Born amplitudes of one frozen
sample and the thermal total from the structure factor; the Debye-Waller coherent Bragg fraction."""

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.linalg as sla

from wow import lattice as lat
from wow import theory as th
from wow.lattice import Chain
from wow.models import continuum as C
from wow.units import HBAR, M_E

A = 2.556
V0, W = 2.0, 0.5


def setup(N=8, g=16, w=W, u_max=None, **kw):
    chain = Chain(N=N, a=A, boundary="ring", **kw)
    model = C.Continuum(V0=V0, w=w, g=g, sigma=min(4.0, N * A / 20))
    C.validate(model, chain)
    return chain, model, C.make_grid(model, chain, u_max)


def random_u(seed, shape, scale):
    u = np.random.default_rng(seed).normal(0.0, scale, shape)
    return jnp.asarray(u - u.mean(-1, keepdims=True))


def thermal_u(seed, chain, T, statistics, n):
    """n thermal samples of the ring's internal displacements (Σ u = 0), (n, N): Gaussian mode
    amplitudes of the analytic variances on the dense mode matrix (numpy; wow.lattice's sampler
    draws the same distribution)."""
    z = np.random.default_rng(seed).normal(size=(n, chain.N - 1))
    return jnp.asarray((z * np.sqrt(th.mode_variance(chain, T, statistics))) @ lat.mode_matrix(chain).T)


def images_reference(u, V0, w, grid):
    """Σ_j Σ_images V0 exp(-(s - ξ_j - u_j - nL)²/(2w²)), every image within 12 w, numpy."""
    s = np.arange(grid.n_s) * grid.h
    X = np.arange(grid.N) * grid.a + np.asarray(u)
    out = np.zeros(np.shape(u)[:-1] + (grid.n_s,))
    n_img = math.ceil((12 * w + np.max(np.abs(u)) + grid.L) / grid.L)
    for n in range(-n_img, n_img + 1):
        x = s[..., None] - X[..., None, :] - n * grid.L
        out += (V0 * np.exp(-(x**2) / (2 * w**2))).sum(-1)
    return out


# --------------------------------------------------------------------------------------------
# Validation
# --------------------------------------------------------------------------------------------
@pytest.mark.parametrize("kw, chain_kw, needle", [
    (dict(g=8), {}, "g=8 is out of range"),  # h = 0.32 > w/2.5 = 0.2
    (dict(w=0.0), {}, "w=0.0"),
    (dict(V0=float("nan")), {}, "V0=nan"),
    (dict(m_star=-1.0), {}, "m_star=-1.0"),
    (dict(packet="wave"), {}, "packet='wave'"),
    (dict(sigma=100.0), {}, "sigma=100.0"),
    (dict(x0=-1.0), {}, "x0=-1.0"),
    (dict(n0=7), {}, "n0=7"),
    (dict(k0=2.0), {}, "k0=2.0"),  # outside the zone for a 'bloch' packet
    (dict(packet="plane", k0=19.0, sigma=2.0), {}, "inside the grid"),
    (dict(g=16.0), {}, "g=16.0"),
    ({}, dict(boundary="open"), "chain.boundary='open'"),
    ({}, dict(N=2), "chain.N=2"),
])
def test_validation_refuses_bad_input(kw, chain_kw, needle):
    base = dict(V0=V0, w=W, g=16, sigma=4.0)
    base.update(kw)
    chain = Chain(**{**dict(N=32, a=A, boundary="ring"), **chain_kw})
    with pytest.raises(ValueError, match="out of range|allowed") as e:
        C.validate(C.Continuum(**base), chain)
    assert needle in str(e.value)


def test_resolution_rule_message_names_the_minimum_g():
    with pytest.raises(ValueError) as e:
        C.validate(C.Continuum(w=0.5, g=12), Chain(N=32, a=A, boundary="ring"))
    assert "g >= 13" in str(e.value) and "w/2.5" in str(e.value)


# --------------------------------------------------------------------------------------------
# The potential
# --------------------------------------------------------------------------------------------
def test_potential_equals_the_periodised_gaussian():
    """Both evaluations against the direct sum over all images, for a batch (samples x DVR points)
    of large displacements up to u_max, in float64 (to 1e-14 |V0|) and float32 (to 2e-6 |V0|);
    also a ring shorter than the Gaussian's reach (images overlap)."""
    fn = C.lattice_potential
    chain, model, grid = setup(N=12, u_max=3.0)
    u = random_u(0, (3, 2, chain.N), 1.0)
    u = u.at[0, 0, 3].set(grid.u_max).at[1, 1, 5].set(-grid.u_max)
    ref = images_reference(u, V0, W, grid)
    V = fn(u, V0, W, grid)
    assert V.shape == (3, 2, grid.n_s) and V.dtype == jnp.float64
    assert np.max(np.abs(np.asarray(V) - ref)) < 1e-14 * V0
    V32 = fn(u.astype(jnp.float32), jnp.float32(V0), jnp.float32(W), grid)
    assert V32.dtype == jnp.float32
    assert np.max(np.abs(np.asarray(V32) - ref)) < 1e-6 * V0
    # a 3-atom ring of 7.7 Å with w = 2 Å: the periodisation sums overlapping images
    chain3 = Chain(N=3, a=A, boundary="ring")
    m3 = C.Continuum(V0=V0, w=2.0, g=8, sigma=0.3)
    g3 = C.make_grid(m3, chain3, 1.0)
    u3 = jnp.array([0.4, -0.9, 0.5])
    assert np.max(np.abs(np.asarray(fn(u3, V0, 2.0, g3)) - images_reference(u3, V0, 2.0, g3))) < 1e-13 * V0


def test_lean_window_drops_only_terms_beyond_the_cut():
    """make_grid's window (one cell fewer to the right: the atom sits at its cell's first point)
    gives bit-for-bit the potential and forces of the symmetric window of the same reach for every
    |u_j| <= grid.u_max (the dropped cell held only terms beyond the cut, zeroed anyway); and its
    u_max covers the u_max asked for, over a sweep of requests."""
    chain, model, grid = setup(N=12, u_max=3.0)
    sym = C.Grid(grid.N, grid.a, grid.g, grid.w, grid.reach)
    assert len(grid.cells) == len(sym.cells) - 1 and grid.u_max <= sym.u_max
    u = random_u(1, (3, chain.N), 1.0)
    u = u.at[0, 3].set(grid.u_max).at[1, 5].set(-grid.u_max)
    np.testing.assert_array_equal(np.asarray(C.lattice_potential(u, V0, W, grid)),
                                  np.asarray(C.lattice_potential(u, V0, W, sym)))
    psi = jnp.asarray(np.random.default_rng(2).normal(size=(3, grid.n_s)) + 0j) / math.sqrt(grid.n_s)
    np.testing.assert_array_equal(np.asarray(C.forces(psi, u, V0, W, grid)), np.asarray(C.forces(psi, u, V0, W, sym)))
    for asked in np.linspace(0.0, 4.0, 41):
        assert C.make_grid(model, chain, float(asked)).u_max >= asked


def test_static_potential_fourier_components_are_v_tilde_over_a():
    """The static lattice's grid potential has Fourier components only at G, equal to ṽ(G)/a up to
    the grid's aliasing (< 4e-14 ṽ(0)/a by the resolution rule)."""
    chain, model, grid = setup(N=8, g=13)  # h = 0.197 <= w/2.5: the coarsest grid allowed
    V = C.lattice_potential(jnp.zeros(chain.N), V0, W, grid)
    Vk = np.fft.fft(np.asarray(V)) / grid.n_s
    G_idx = np.arange(grid.n_s) % chain.N == 0
    assert np.max(np.abs(Vk[~G_idx])) < 1e-15 * V0
    kap = np.asarray(C.momenta(grid))
    vG = th.pseudopotential_ft(kap[G_idx], V0, W) / A
    assert np.max(np.abs(Vk[G_idx] - vG)) < 4e-14 * th.pseudopotential_ft(0.0, V0, W) / A


# --------------------------------------------------------------------------------------------
# Bands and Bloch states
# --------------------------------------------------------------------------------------------
def test_bands_match_dense_grid_hamiltonian_and_central_equation():
    """ε_n(k) of the g x g sector matrices = all eigenvalues of the dense N_s x N_s grid Hamiltonian
    (to 1e-11 eV); the low bands = the continuum central equation (to 1e-11 eV); Bloch states are
    eigenvectors of the dense H; Hellmann-Feynman velocities = the central equation's."""
    chain, model, grid = setup(N=8, g=16)
    b = C.bloch_bands(V0, W, M_E, grid)
    H = C.grid_hamiltonian(np.zeros(chain.N), V0, W, M_E, grid)
    np.testing.assert_allclose(np.sort(np.asarray(b.energy).ravel()), np.linalg.eigvalsh(H), atol=1e-11, rtol=0)
    E, _, _ = th.central_equation(np.asarray(b.k), V0, W, A, n_G=30)
    np.testing.assert_allclose(np.asarray(b.energy)[:, :6], E[:, :6], atol=1e-11, rtol=0)
    for n, c in [(0, 1), (1, 3), (2, 4), (3, 0)]:
        phi = np.asarray(C.bloch_state(b, n, c))
        assert abs(np.linalg.norm(phi) - 1) < 1e-13
        assert np.linalg.norm(H @ phi - float(b.energy[c, n]) * phi) < 1e-11
    vc = th.central_velocity(np.asarray(b.k), V0, W, A, n_G=30)
    inner = (np.abs(np.asarray(b.k)) < math.pi / A - 1e-9) & (np.asarray(b.k) != 0)
    np.testing.assert_allclose(np.asarray(b.velocity)[inner, :6], vc[inner, :6], atol=1e-9, rtol=0)
    assert np.all(np.asarray(b.velocity)[~inner] == 0)  # k = 0, π/a: zero by symmetry


def test_zone_edge_gap_and_its_weak_potential_limit():
    """The grid's gap at k = π/a equals the central equation's; for weak V0 it tends to 2|V_G|,
    with a relative error linear in V0."""
    chain, model, grid = setup(N=8, g=16)
    edge = chain.N // 2
    gaps = {}
    for v0 in (V0, 0.02, 0.01):
        b = C.bloch_bands(v0, W, M_E, grid)
        gaps[v0] = float(b.energy[edge, 1] - b.energy[edge, 0])
        E, _, _ = th.central_equation(np.array([math.pi / A]), v0, W, A, n_G=30)
        assert abs(gaps[v0] - (E[0, 1] - E[0, 0])) < 1e-11
    err = {v0: gaps[v0] / th.weak_potential_gap(v0, W, A) - 1 for v0 in (0.02, 0.01)}
    assert abs(err[0.01]) < 2e-5
    assert abs(err[0.02] / err[0.01] - 2) < 0.01


def test_bloch_amplitudes_are_complete_and_project_bloch_states():
    chain, model, grid = setup(N=8, g=16)
    b = C.bloch_bands(V0, W, M_E, grid)
    psi = C.plane_packet(grid, 0.7, 2.0, 10.0)
    amps = C.bloch_amplitudes(jnp.stack([psi, 2 * psi]), b)
    assert amps.shape == (2, grid.g, chain.N)
    np.testing.assert_allclose(np.sum(np.abs(amps) ** 2, axis=(-2, -1)), [1.0, 4.0], rtol=1e-13)
    b32 = C.bloch_bands(np.float32(V0), np.float32(W), np.float32(M_E), grid, jnp.float32)
    a32 = C.bloch_amplitudes(psi.astype(jnp.complex64), b32)
    assert a32.dtype == jnp.complex64 and b32.energy.dtype == jnp.float32
    # (at k = 0 and π/a the high bands' gaps 2|ṽ(G)|/a fall below float32 resolution: their states mix
    # within the pair there; those k carry no velocity and are outside P_b)
    inner = (np.asarray(b.k) != 0) & (np.abs(np.asarray(b.k)) < math.pi / A - 1e-9)
    np.testing.assert_allclose(np.abs(np.asarray(a32))[:, inner], np.abs(np.asarray(amps[0]))[:, inner], atol=2e-6)
    assert abs(float(C.bloch_tally(a32, b32)["P_b"]) - float(C.bloch_tally(amps[0], b)["P_b"])) < 1e-6
    a1 = np.asarray(C.bloch_amplitudes(C.bloch_state(b, 2, 5), b))
    expect = np.zeros_like(a1)
    expect[2, 5] = 1.0
    np.testing.assert_allclose(a1, expect, atol=1e-13)  # phase convention included (real positive)


def test_bloch_packet_on_the_static_lattice_does_not_backscatter():
    """Recoil off, u = 0: the Strang step conserves crystal momentum exactly, so the k-resolved
    weights Σ_n |<φ_nk|ψ>|² stay to rounding; what moves between bands at fixed k is the splitting
    error, O(dt⁴) in probability: P_b(t) - P_b(0) <= 1e-9 at dt = 0.005 fs after 10 fs, and it
    drops ~16x when dt halves."""
    chain, model, grid = setup(N=32, g=16)
    b = C.bloch_bands(V0, W, M_E, grid)
    psi0 = C.initial_packet(model, chain, grid, b)
    V = C.lattice_potential(jnp.zeros(chain.N), V0, W, grid)
    ET = C.kinetic_energies(C.momenta(grid), M_E)
    a0 = C.bloch_amplitudes(psi0, b)
    P0 = float(C.bloch_tally(a0, b)["P_b"])
    leak = []
    for dt in (0.01, 0.005):
        a = C.bloch_amplitudes(C.evolve(psi0, V, ET, dt, int(round(10 / dt))), b)
        np.testing.assert_allclose(np.sum(np.abs(a) ** 2, axis=0), np.sum(np.abs(a0) ** 2, axis=0), atol=1e-14)
        leak.append(abs(float(C.bloch_tally(a, b)["P_b"]) - P0))
    assert leak[1] < 1e-9
    assert 8 < leak[0] / leak[1] < 32


# --------------------------------------------------------------------------------------------
# The propagator
# --------------------------------------------------------------------------------------------
def test_strang_step_against_expm_is_second_order():
    """Frozen random u, recoil on (NM = 10 m_e so the recoil matters), N_s = 256: the Strang step
    against expm of the dense grid H_Q; fitted order 2.0 ± 0.1."""
    chain, model, grid = setup(N=16, g=16)
    u = random_u(1, (chain.N,), 0.3)
    Q, inv = 0.5, 1 / (2 * 10 * M_E)
    H = C.grid_hamiltonian(u, V0, W, M_E, grid, Q, inv)
    psi0 = C.plane_packet(grid, 1.0, 2.0, 10.0)
    tf = 2.0
    exact = sla.expm(-1j * H * tf / HBAR) @ np.asarray(psi0)
    V = C.lattice_potential(u, V0, W, grid)
    ET = C.kinetic_energies(C.momenta(grid), M_E, Q, inv)
    ns = np.array([200, 400, 800, 1600])
    err = [np.linalg.norm(np.asarray(C.evolve(psi0, V, ET, float(tf / n), int(n))) - exact) for n in ns]
    order = np.polyfit(np.log(tf / ns), np.log(err), 1)[0]
    assert abs(order - 2.0) < 0.1, (order, err)
    # float32/complex64 throughout, to single precision
    psi32 = C.evolve(psi0.astype(jnp.complex64), V.astype(jnp.float32), ET.astype(jnp.float32), np.float32(tf / 400), 400)
    assert psi32.dtype == jnp.complex64
    assert np.max(np.abs(np.asarray(psi32) - exact)) < 1e-3 + 2 * err[1]
    # the merged loop is the plain step repeated; each step is unitary
    psi = psi0
    for _ in range(20):
        psi = C.strang_step(psi, V, ET, 0.05)
    np.testing.assert_allclose(np.asarray(psi), np.asarray(C.evolve(psi0, V, ET, 0.05, 20)), atol=1e-13)
    assert abs(float(jnp.sum(jnp.abs(psi) ** 2)) - 1) < 1e-13


def test_rational_phase_is_unitary_and_accurate_for_small_angles():
    theta = np.linspace(-1.0, 1.0, 2001)
    E, tau = theta * HBAR, -1.0  # θ = -Eτ/ħ
    z = np.asarray(C.phase_rational(jnp.asarray(E), tau))
    assert np.max(np.abs(np.abs(z) - 1)) < 1e-15
    err = np.abs(np.angle(z) - theta)
    assert np.all(err <= np.abs(theta) ** 7 / 100800 * 1.1 + 1e-16)
    np.testing.assert_allclose(np.asarray(C.phase_rational(jnp.asarray(E), 1.0)), np.conj(z), atol=1e-16)


def test_q_sector_is_the_exact_two_body_reduction():
    """Electron r and lattice CM R on the same ring grid, H = p²/2m + P²/2M_tot + V(r - R): a state
    e^{iQR/ħ} ψ(r - R) evolves (2D Strang, FFT2) to e^{iQR/ħ} ψ(t, r - R) with ψ(t) from H_Q on s alone
    (recoil (Q - p)²/2M_tot), to rounding: the Lee-Low-Pines reduction and its signs."""
    chain, model, grid = setup(N=4, g=32)  # n = 128 points per coordinate: nothing reaches the Nyquist
    n, h = grid.n_s, grid.h
    Mtot = 3 * M_E
    u = jnp.array([0.3, -0.2, 0.1, -0.2])
    V = np.asarray(C.lattice_potential(u, V0, W, grid))
    kap = np.asarray(C.momenta(grid))
    Q = HBAR * 2 * np.pi * 3 / grid.L  # on the ring's momentum grid
    psi0 = np.asarray(C.plane_packet(grid, 1.2, 0.5, 5.0))
    idx = np.arange(n)
    Psi = np.exp(1j * Q / HBAR * idx[None, :] * h) * psi0[(idx[:, None] - idx[None, :]) % n]  # [r, R]
    Vrr = V[(idx[:, None] - idx[None, :]) % n]
    T2 = (HBAR * kap[:, None]) ** 2 / (2 * M_E) + (HBAR * kap[None, :]) ** 2 / (2 * Mtot)
    dt, steps = 0.02, 100
    half, pv = np.exp(-1j * T2 * dt / (2 * HBAR)), np.exp(-1j * Vrr * dt / HBAR)
    for _ in range(steps):
        Psi = np.fft.ifft2(half * np.fft.fft2(pv * np.fft.ifft2(half * np.fft.fft2(Psi))))
    ET = C.kinetic_energies(C.momenta(grid), M_E, Q, 1 / (2 * Mtot))
    psi = np.asarray(C.evolve(jnp.asarray(psi0), jnp.asarray(V), ET, dt, steps))
    expect = np.exp(1j * Q / HBAR * idx[None, :] * h) * psi[(idx[:, None] - idx[None, :]) % n]
    assert np.max(np.abs(Psi - expect)) < 1e-12
    # and the recoil mattered
    psi_clamped = np.asarray(C.evolve(jnp.asarray(psi0), jnp.asarray(V), C.kinetic_energies(C.momenta(grid), M_E), dt, steps))
    assert np.max(np.abs(psi - psi_clamped)) > 0.1


@pytest.mark.parametrize("recoil", [False, True])
def test_free_packet_spreads_exactly(recoil):
    """V0 = 0: the 'plane' packet is the free Gaussian, ψ(x,t) = (2πσ²)^{-1/4}(1+iτ)^{-1/2}
    exp(-(x - x0 - ħk0t/μ)²/(4σ²(1+iτ)) + ik0(x - x0) - iħk0²t/(2μ)), τ = ħt/(2μσ²), with the reduced
    mass 1/μ = 1/m + 1/(NM) when the recoil is on, then translated by -Qt/(NM) and times
    e^{-iQ²t/(2NMħ)} (E = ħ²k²/2μ - ħkQ/NM + Q²/2NM)."""
    chain, model, grid = setup(N=64, g=16)  # L = 164 Å: the packet stays far from the seam
    k0, sigma, x0, t, steps = 1.0, 4.0, 40.0, 4.0, 7
    NM = 5 * M_E
    Q = 0.4 if recoil else 0.0
    inv = 1 / (2 * NM) if recoil else 0.0
    mu = 1 / (1 / M_E + (1 / NM if recoil else 0.0))
    ET = C.kinetic_energies(C.momenta(grid), M_E, Q, inv)
    psi = np.asarray(C.evolve(C.plane_packet(grid, k0, sigma, x0), jnp.zeros(grid.n_s), ET, t / steps, steps))
    x = np.arange(grid.n_s) * grid.h
    tau = HBAR * t / (2 * mu * sigma**2)
    v0, w0 = HBAR * k0 / mu, HBAR * k0**2 / (2 * mu)
    # E = ħ²k²/2μ - ħkQ/NM + Q²/2NM: the linear term translates by -Qt/NM, the constant is a phase
    # (k0 is not on the ring's momentum grid, so ψ(0) is the ring's Gaussian only up to its e^{-L²/16σ²}
    # antipode; the images n = ±1 of the spreading packet are summed)
    exact = 0
    for n in (-1, 0, 1):
        xs = x + n * grid.L + (Q * t / NM if recoil else 0.0)
        exact = exact + ((2 * np.pi * sigma**2) ** -0.25 / np.sqrt(1 + 1j * tau)
                         * np.exp(-((xs - x0 - v0 * t) ** 2) / (4 * sigma**2 * (1 + 1j * tau)) + 1j * k0 * xs
                                  - 1j * w0 * t - 1j * (Q**2 / (2 * NM * HBAR) if recoil else 0.0) * t))
    v = v0 - (Q / NM if recoil else 0.0)
    exact *= np.sqrt(grid.h)  # grid normalisation Σ|ψ_i|² = 1
    assert np.max(np.abs(psi - exact)) < 1e-12
    obs = C.observables(jnp.asarray(psi), grid, Q, inv)
    assert abs(float(obs["s_mean"]) - (x0 + v * t)) < 1e-9
    assert abs(float(obs["p_mean"]) - HBAR * k0) < 1e-12
    assert abs(float(obs["P_R"]) - (Q - HBAR * k0)) < 1e-12


def test_infinite_lattice_mass_is_recoil_off():
    """inv_2NM -> 0 converges linearly to the clamped lattice (recoil off)."""
    chain, model, grid = setup(N=16, g=16)
    u = random_u(2, (chain.N,), 0.3)
    V = C.lattice_potential(u, V0, W, grid)
    psi0 = C.plane_packet(grid, 1.0, 2.0, 10.0)
    kap = C.momenta(grid)
    off = C.evolve(psi0, V, C.kinetic_energies(kap, M_E), 0.01, 300)
    d = [float(jnp.max(jnp.abs(C.evolve(psi0, V, C.kinetic_energies(kap, M_E, 0.3, inv), 0.01, 300) - off)))
         for inv in (1e-3, 1e-4)]
    assert d[1] < 1e-3 and abs(d[0] / d[1] - 10) < 0.1


def test_force_is_minus_the_gradient_of_the_energy():
    """F_j (windowed formula) = -jax.grad <H> (autodiff through the potential) = central finite
    differences, for a batch; Σ_j F_j (the CM's share, not zero) = <∂V/∂s>."""
    chain, model, grid = setup(N=8, g=16)
    u = random_u(3, (2, chain.N), 0.4)
    psi = jnp.stack([C.plane_packet(grid, 1.0, 1.5, 6.0), C.plane_packet(grid, -0.5, 2.0, 12.0)])
    ET = C.kinetic_energies(C.momenta(grid), M_E, 0.2, 1 / (2 * 100 * M_E))
    F = C.forces(psi, u, V0, W, grid)

    energies = jax.jit(lambda uu: C.energy(psi, C.lattice_potential(uu, V0, W, grid), ET))  # (2,)
    G = -jax.jit(jax.grad(lambda uu: jnp.sum(energies(uu))))(u)
    np.testing.assert_allclose(np.asarray(F), np.asarray(G), atol=1e-14, rtol=0)
    eps = 1e-5
    for j in (0, 5):
        e = np.zeros(u.shape)
        e[:, j] = eps
        fd = -(energies(u + e) - energies(u - e)) / (2 * eps)
        np.testing.assert_allclose(np.asarray(F[:, j]), np.asarray(fd), atol=1e-9)
    # the CM's share Σ_j F_j = <∂V/∂s> (= -d<p>/dt), with ∂V/∂s the grid's spectral derivative
    V = np.asarray(C.lattice_potential(u, V0, W, grid))
    dV = np.real(np.fft.ifft(1j * np.asarray(C.momenta(grid)) * np.fft.fft(V)))
    np.testing.assert_allclose(np.asarray(F).sum(-1), np.sum(np.abs(np.asarray(psi)) ** 2 * dV, -1), atol=1e-12)
    assert np.all(np.abs(np.asarray(F).sum(-1)) > 1e-4)
    F32 = C.forces(psi.astype(jnp.complex64), u.astype(jnp.float32), jnp.float32(V0), jnp.float32(W), grid)
    assert F32.dtype == jnp.float32 and np.max(np.abs(np.asarray(F32) - np.asarray(F))) < 1e-5


def test_momentum_budget_and_energy_on_a_frozen_lattice():
    """Frozen random lattice, recoil on: the lattice's total force integrated over the run equals the
    electron's momentum loss, <P_R>(t) - <P_R>(0) = ∫Σ_j F_j dt = -Δ<p> (to the O(dt²) of the
    quadrature and the splitting); <H> is conserved to O(dt²) and the norm to rounding."""
    chain, model, grid = setup(N=16, g=16)
    u = random_u(4, (chain.N,), 0.3)
    Q, inv = 0.3, 1 / (2 * 20 * M_E)
    V = C.lattice_potential(u, V0, W, grid)
    ET = C.kinetic_energies(C.momenta(grid), M_E, Q, inv)
    psi0 = C.plane_packet(grid, 1.1, 2.0, 10.0)
    dt, steps = 0.005, 600
    states = jax.lax.scan(lambda psi, _: (C.strang_step(psi, V, ET, dt),) * 2, psi0, None, length=steps)[1]
    states = jnp.concatenate([psi0[None], states])  # ψ at t = 0, dt, ..., steps dt
    Fsum = np.asarray(C.forces(states, u, V0, W, grid)).sum(-1)
    P_R = np.asarray(C.observables(states, grid, Q, inv)["P_R"])
    E = np.asarray(C.energy(states, V, ET))
    impulse = dt * (Fsum.sum() - (Fsum[0] + Fsum[-1]) / 2)  # trapezoid
    dP = P_R[-1] - P_R[0]
    psi_f = states[-1]
    assert abs(float(dP)) > 0.05  # the lattice took a sizeable momentum
    assert abs(impulse - dP) < 1e-4 * abs(dP)
    assert np.max(np.abs(E - E[0])) < 1e-3
    assert abs(float(jnp.sum(jnp.abs(psi_f) ** 2)) - 1) < 1e-13


# --------------------------------------------------------------------------------------------
# Born limits and the Debye-Waller factor
# --------------------------------------------------------------------------------------------
BORN = dict(N=32, g=8, w=0.8)  # h = 0.32 Å = w/2.5: N_s = 256


def born_setup(v0):
    chain = Chain(N=BORN["N"], a=A, boundary="ring", spring=3.32, mass=63.546)
    model = C.Continuum(V0=v0, w=BORN["w"], g=BORN["g"], packet="plane", k0=1.0, sigma=4.0, x0=20.0)
    C.validate(model, chain)
    grid = C.make_grid(model, chain, 2.0)
    return chain, model, grid


def test_one_frozen_sample_first_born_amplitude():
    """Weak V0, one frozen random lattice: the simulated backscattered amplitudes ψ~(κ < 0, t) equal
    the first-order Born amplitude from ṽ(q)ρ_q (theory.born_amplitude) to 4e-4 at V0 = 0.01 eV;
    the relative error is second order, so it halves with V0."""
    errs = []
    for v0 in (0.02, 0.01):
        chain, model, grid = born_setup(v0)
        u = random_u(5, (chain.N,), 0.15)
        psi0 = C.initial_packet(model, chain, grid)
        t, steps = 4.0, 400
        V = C.lattice_potential(u, v0, model.w, grid)
        psi = C.evolve(psi0, V, C.kinetic_energies(C.momenta(grid), M_E), t / steps, steps)
        kap = np.asarray(C.momenta(grid))
        X = np.arange(chain.N) * A + np.asarray(u)
        born = th.born_amplitude(kap, np.asarray(C.fft(psi0)), X, v0, model.w, grid.L, t)
        # the mean potential V̄ = ṽ(0)N/L (q = 0) only shifts every energy; its phase e^{-iV̄t/ħ} is
        # the largest second-order term (5% at V0 = 0.01 eV), exact to remove
        sim = np.asarray(C.fft(psi)) * np.exp(1j * float(jnp.mean(V)) * t / HBAR)
        back = kap < 0
        errs.append(np.linalg.norm(sim[back] - born[back]) / np.linalg.norm(born[back]))
        P = th.born_backscatter(kap, np.asarray(C.fft(psi0)), X, v0, model.w, grid.L, t)
        assert abs(float(C.observables(psi, grid)["P_b_mech"]) / P - 1) < 3 * errs[-1] + 1e-6
    assert errs[1] < 1e-3
    assert 1.7 < errs[0] / errs[1] < 2.3


def test_thermal_backscatter_equals_the_structure_factor_formula():
    """Classical thermal samples (the ring's modes), weak V0, frozen: the sample mean of the
    simulated P_b_mech equals the first-order thermal formula Σ|ṽ(q)|² S(q)/L² ... (structure
    factor), within 4 standard errors plus the O(V0) Born error."""
    v0 = 0.01
    chain, model, grid = born_setup(v0)
    T, S_n = 600.0, 128
    u = thermal_u(11, chain, T, "classical", S_n)
    psi0 = C.initial_packet(model, chain, grid)
    t, steps = 4.0, 200
    V = C.lattice_potential(u, v0, model.w, grid)
    psi = C.evolve(jnp.broadcast_to(psi0, V.shape).astype(jnp.complex128), V,
                   C.kinetic_energies(C.momenta(grid), M_E)[None, :], t / steps, steps)
    Pb = np.asarray(C.observables(psi, grid)["P_b_mech"])
    kap = np.asarray(C.momenta(grid))
    psik0 = np.asarray(C.fft(psi0))
    psik0 = np.where(np.abs(psik0) ** 2 > 1e-14, psik0, 0)  # the packet's own κ < 0 tail is below 1e-14
    ref = th.born_backscatter_thermal(kap, psik0, chain, T, v0, model.w, t, "classical")
    sem = Pb.std(ddof=1) / np.sqrt(S_n)
    assert abs(Pb.mean() - ref) < 4 * sem + 0.03 * ref, (Pb.mean(), ref, sem)
    assert sem < 0.1 * ref


def test_coherent_bragg_reflection_carries_the_debye_waller_factor():
    """A 'plane' packet at k0 = π/a on weak frozen Wigner samples: the coherent mechanical
    reflection Σ_{κ<0}|<ψ~>_s|² (unbiased estimator) over the static lattice's is e^{-2W(G)},
    2W = G²<u_j²> (quantum <u²>), within 3% (128 samples; the 4096-sample version in
    benchmarks/continuum_checks.py)."""
    v0 = 0.02
    chain = Chain(N=BORN["N"], a=A, boundary="ring")
    model = C.Continuum(V0=v0, w=BORN["w"], g=BORN["g"], packet="plane", k0=math.pi / A, sigma=4.0, x0=40.0)
    C.validate(model, chain)
    grid = C.make_grid(model, chain, 2.0)
    T, S_n = 600.0, 128
    u = thermal_u(7, chain, T, "quantum", S_n)
    u = jnp.concatenate([jnp.zeros((1, chain.N)), u])  # row 0: the static lattice
    psi0 = C.initial_packet(model, chain, grid)
    t, steps = 3.0, 150
    V = C.lattice_potential(u, v0, model.w, grid)
    psik = np.asarray(C.fft(C.evolve(jnp.broadcast_to(psi0, V.shape).astype(jnp.complex128), V,
                                     C.kinetic_energies(C.momenta(grid), M_E)[None, :], t / steps, steps)))
    back = np.asarray(C.momenta(grid)) < 0
    static = np.sum(np.abs(psik[0, back]) ** 2)
    s = psik[1:, back]
    Ssum, Asum = s.sum(0), (np.abs(s) ** 2).sum(0)
    coh = (np.sum(np.abs(Ssum) ** 2) - np.sum(Asum)) / (S_n * (S_n - 1))
    G = 2 * math.pi / A
    dw = th.debye_waller_factor(chain, G, T, "quantum")
    assert 0.3 < dw < 0.8  # a sizeable, testable factor
    assert abs(coh / static / dw - 1) < 0.03, (coh / static, dw)
