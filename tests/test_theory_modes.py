"""Eq. 30 (lattice sum kept), the single-site Huang-Rhys fraction and e^{-2W} for a chosen set of
quantum modes (wow.theory.*_modes), against brute force: dense truncated Fock matrices of those
modes, ρ_q = Σ_j e^{-iqξ_j} ⊗_m expm(-iq E_jm ℓ_m X_m), the running basis by the pair's unitary
wow.fock.running_wave_matrix, thermal weights summed state by state. A 4-atom ring of light atoms
(1 amu: λ ~ 0.1-0.5, so the fractions are far from 0 and 1)."""

import itertools

import numpy as np
import pytest
import scipy.linalg as sla

import wow
from wow import fock, theory
from wow import lattice as L

CHAIN = wow.Chain(N=4, boundary="ring", mass=1.0)
T = 800.0  # n̄ ~ 0.1 on these modes (tail beyond n = 10 < 1e-11)
CUT = 16  # Fock levels kept per mode for the brute force (states used: n <= 10)


def brute(chain, q, T, modes, basis, n_max=None, site=None):
    """(Eq. 30 fraction, single-site HR, |<e^{-iqu_s}>|²) by dense matrices. n_max None: Bose-Einstein
    weights up to n = 10 per axis (tail < 1e-9 here); else the clipped draws, clipped here from
    the per-axis geometric law independently of wow.theory."""
    modes = tuple(sorted(modes))
    N, a = chain.N, chain.a
    w = L.mode_frequencies(chain)[np.array(modes) - 1]
    ell = np.sqrt(wow.HBAR / (2 * chain.mass_ev * w))
    E = L.mode_matrix(chain)[:, np.array(modes) - 1]
    d = CUT + 1
    off = np.sqrt(np.arange(1, d))
    X = np.diag(off, 1) + np.diag(off, -1)

    def kron(ops):
        out = np.ones((1, 1))
        for o in ops:
            out = np.kron(out, o)
        return out

    U = [kron([sla.expm(-1j * q * E[j, m] * ell[m] * X) for m in range(len(modes))]) for j in range(N)]
    rho = sum(np.exp(-1j * q * j * a) * U[j] for j in range(N))
    s = N // 2 if site is None else site
    one = U[s]
    if basis == "running":  # the pair (j, N-j) on axes (0, 1): standing -> running amplitudes
        assert len(modes) == 2 and modes[0] + modes[1] == N
        W = fock.running_wave_matrix(CUT)
        rho, one = W @ rho @ W.conj().T, W @ one @ W.conj().T
    nb = L.fock_mean(chain, T)[np.array(modes) - 1]
    r = nb / (1 + nb)
    probs = {}
    for raw in itertools.product(range(11), repeat=len(modes)):  # draw geometric, clip as the backend does
        c = list(raw)
        if n_max is not None:
            c = [min(x, n_max) for x in raw]
            if basis == "running":
                c[1] = min(c[1], n_max - c[0])
        probs[tuple(c)] = probs.get(tuple(c), 0.0) + np.prod([(1 - ri) * ri**k for ri, k in zip(r, raw)])
    rr = np.real(np.diag(rho.conj().T @ rho))
    num = den = hr = dw = 0.0
    for n, p in probs.items():
        i = np.ravel_multi_index(n, (d,) * len(modes))
        num += p * abs(rho[i, i]) ** 2
        den += p * rr[i]
        hr += p * abs(one[i, i]) ** 2
        dw += p * one[i, i]
    return num / den, hr, abs(dw) ** 2


@pytest.mark.parametrize("modes,basis", [((1, 3), "standing"), ((1, 3), "running"), ((2,), "standing"),
                                         ((1, 2), "standing")])
@pytest.mark.parametrize("n_max", [None, 2])
def test_mode_fractions_against_dense_fock_matrices(modes, basis, n_max):
    """At q = π/(2a) (= 2q_m of the pair: standing numerator ≠ 0, running 0), an off-grid q, and
    q = G: the three fractions equal the dense computation to 1e-7 (Bose-Einstein and clipped)."""
    G = 2 * np.pi / CHAIN.a
    for q in (np.pi / CHAIN.a, 0.37 * G, G):
        f_b, hr_b, dw_b = brute(CHAIN, q, T, modes, basis, n_max)
        f = theory.occupation_diagonal_fraction_modes(CHAIN, q, T, modes, basis, n_max=n_max)
        hr = theory.huang_rhys_fraction_modes(CHAIN, q, T, modes, basis=basis, n_max=n_max)
        dw = theory.debye_waller_factor_modes(CHAIN, q, T, modes, basis=basis, n_max=n_max)
        assert f == pytest.approx(f_b, rel=1e-7, abs=1e-12), (q, f, f_b)
        assert hr == pytest.approx(hr_b, rel=1e-7), (q, hr, hr_b)
        assert dw == pytest.approx(dw_b, rel=1e-7), (q, dw, dw_b)


def test_running_basis_needs_q_equal_G_and_all_modes_match_the_full_sum():
    """Running basis: 0 at every ring momentum but the multiples of 2π/a (crystal momentum), > 0 at
    G; with every mode quantum the *_modes functions equal the all-mode ones already in wow.theory."""
    c = wow.Chain(N=12, boundary="ring")
    qs = 2 * np.pi * np.arange(1, 12) / (12 * c.a)
    f = theory.occupation_diagonal_fraction_modes(c, qs, 300.0, (2, 4, 8, 10), "running", n_max=3)
    assert np.all(np.abs(f) < 1e-12) and f.shape == qs.shape
    assert theory.occupation_diagonal_fraction_modes(c, 2 * np.pi / c.a, 300.0, (2, 4, 8, 10), "running") > 0.99
    allm = tuple(range(1, 12))
    for b in ("standing", "running"):
        q = np.array([0.8, 2 * np.pi / c.a])
        np.testing.assert_allclose(theory.occupation_diagonal_fraction_modes(c, q, 300.0, allm, b),
                                   theory.occupation_diagonal_fraction(c, q, 300.0, b), rtol=1e-10)
    assert theory.huang_rhys_fraction_modes(c, 0.8, 300.0, allm) == pytest.approx(theory.huang_rhys_fraction(c, 0.8, 300.0))
    assert theory.debye_waller_factor_modes(c, 0.8, 300.0, allm) == pytest.approx(theory.debye_waller_factor(c, 0.8, 300.0))


def test_fock_distribution_is_normalised_and_refuses_bad_input():
    c = wow.Chain(N=12, boundary="ring")
    for b in ("standing", "running"):
        s, p = theory.fock_distribution(c, 300.0, (2, 10), b, 3)
        assert abs(p.sum() - 1) < 1e-14
        if b == "running":
            assert s.sum(1).max() <= 3
    with pytest.raises(ValueError, match="modes"):
        theory.occupation_diagonal_fraction_modes(c, 1.0, 300.0, (2,), "running")
    with pytest.raises(ValueError, match="n_max"):
        theory.fock_distribution(c, 300.0, (2, 10), "standing", None)
