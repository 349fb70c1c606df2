"""Exact references written out in the tests from the model's contract (docs/model.md), with explicit
loops and no wow building blocks: the chain electron's dense Hamiltonian (SSH hoppings, the
deformation potential with missing bonds counted as 0, static bond and site defects, the CM recoil
term in k space), the free lattice's motion from a hand-built spring matrix, the normal modes by
their formulas, and the electron x Fock Hamiltonian of quantum lattice modes. A test that compares
the propagator with these compares it with the model, not with the code's own pieces."""

from __future__ import annotations

import math

import numpy as np

HBAR = 0.6582119569  # eV·fs (docs/model.md, "Units and constants")
AMU = 103.642697  # eV·fs²/Å² per amu (docs/model.md, "Units and constants")


def chain_H(N, boundary, a, t0, alpha, D, u, bond_defects=(), onsite_defects=()):
    """H_e(u) of docs/model.md, site by site: bond n joins sites n and n+1 (N-1 bonds open, N ring, bond
    N-1 joining N-1 and 0), t_n = t0 - α (u_{n+1} - u_n) + δt_n, and ε_n = D (b_{n-1} + b_n)/(2a)
    + δε_n with a bond that does not exist counting as b = 0."""
    ring = boundary == "ring"
    nb = N if ring else N - 1
    u = np.asarray(u, float)
    b = {n: u[(n + 1) % N] - u[n] for n in range(nb)}  # missing keys: bonds that do not exist
    H = np.zeros((N, N), complex)
    for n in range(nb):
        m = (n + 1) % N
        t = t0 - alpha * b[n] + sum(dt for bond, dt in bond_defects if bond == n)
        H[n, m] -= t
        H[m, n] -= t
    for n in range(N):
        left = b.get((n - 1) % N if ring else n - 1, 0.0)
        right = b.get(n, 0.0)
        H[n, n] += D * (left + right) / (2 * a) + sum(de for site, de in onsite_defects if site == n)
    return H


def folded_k(N, a):
    """The N lattice momenta 2πj/(Na), j = 0..N-1, folded into (-π/a, π/a] (the zone edge at +π/a)."""
    k = np.array([2 * math.pi * j / (N * a) for j in range(N)])
    return np.where(k > math.pi / a + 1e-12 / a, k - 2 * math.pi / a, k)


def recoil_H(N, a, Q, mass_amu):
    """The CM kinetic energy in the sector of total momentum Q, (Q - ħk)²/(2NM), as a site-basis
    matrix: Σ_k |k><k| T(k) with <n|k> = e^{ikna}/√N, k folded into (-π/a, π/a]."""
    M = mass_amu * AMU
    k = folded_k(N, a)
    n = np.arange(N)
    T = (Q - HBAR * k) ** 2 / (2 * N * M)
    plane = np.exp(1j * np.outer(n, k) * a) / math.sqrt(N)  # column j: <n|k_j>
    return plane @ np.diag(T) @ plane.conj().T


def config_H(cfg, u, Q=None):
    """chain_H (+ recoil_H when cfg.recoil) of a wow.Config's chain and electron at displacements u."""
    c, e = cfg.chain, cfg.electron
    H = chain_H(c.N, c.boundary, c.a, e.t0, e.alpha, e.D, u, e.bond_defects, e.onsite_defects)
    if cfg.recoil:
        H = H + recoil_H(c.N, c.a, Q, c.mass)
    return H


def spring_matrix(N, boundary, K, mass_amu):
    """K/M times the graph Laplacian of the springs, bond by bond (1/fs²)."""
    L = np.zeros((N, N))
    for n in range(N if boundary == "ring" else N - 1):
        p, q = n, (n + 1) % N
        L[p, p] += 1
        L[q, q] += 1
        L[p, q] -= 1
        L[q, p] -= 1
    return K / (mass_amu * AMU) * L


def free_motion(chain, u0, v0, times):
    """u(t) of the free harmonic chain from u(0), v(0): u(t) = cos(√D t) u0 + sin(√D t)/√D v0 with
    D the hand-built spring matrix (its zero mode moves uniformly). Returns (len(times), N)."""
    lam, vec = np.linalg.eigh(spring_matrix(chain.N, chain.boundary, chain.spring, chain.mass))
    w = np.sqrt(np.clip(lam, 0.0, None))
    a0, b0 = vec.T @ np.asarray(u0, float), vec.T @ np.asarray(v0, float)
    out = []
    for t in np.atleast_1d(times):
        s = np.where(w > 1e-12, np.sin(w * t) / np.where(w > 1e-12, w, 1.0), t)
        out.append(vec @ (np.cos(w * t) * a0 + s * b0))
    return np.array(out)


def mode(chain, j):
    """(ω_j, e_{·j}) of internal mode j by the contract's formulas: open ω = 2√(K/M) sin(jπ/2N),
    e_n = √(2/N) cos(jπ(n + 1/2)/N); ring ω = 2√(K/M)|sin(πj/N)|, e_n = √(2/N) cos(2πjn/N) for
    j < N/2, (-1)^n/√N for j = N/2, √(2/N) sin(2πjn/N) for j > N/2 (the sine partner of N - j)."""
    N = chain.N
    w0 = 2 * math.sqrt(chain.spring / (chain.mass * AMU))
    n = np.arange(N)
    if chain.boundary == "open":
        return w0 * math.sin(j * math.pi / (2 * N)), math.sqrt(2 / N) * np.cos(j * math.pi * (n + 0.5) / N)
    w = w0 * abs(math.sin(math.pi * j / N))
    if 2 * j == N:
        return w, (-1.0) ** n / math.sqrt(N)
    f = np.cos if 2 * j < N else np.sin
    return w, math.sqrt(2 / N) * f(2 * math.pi * j * n / N)


def kron(ops):
    out = ops[0]
    for o in ops[1:]:
        out = np.kron(out, o)
    return out


def lowering(d):
    """The truncated annihilation operator on levels 0..d-1."""
    return np.diag(np.sqrt(np.arange(1, d)), 1)


def electron_fock_H(cfg, modes, n_max, u_cl):
    """Dense H = H_e(u_cl) ⊗ 1 + Σ_j X_j ⊗ H_j + Σ_j ħω_j(n_j + 1/2) on (modes..., sites), modes in
    the given order, each truncated at n_max: Q_j = ℓ_j X_j, X = a + a†, ℓ_j = √(ħ/(2Mω_j)), and H_j
    the electron Hamiltonian's part linear in Q_j (u = ℓ_j e_j in chain_H without t0)."""
    c, e = cfg.chain, cfg.electron
    d, m, N = n_max + 1, len(modes), c.N
    He = chain_H(N, c.boundary, c.a, e.t0, e.alpha, e.D, u_cl, e.bond_defects, e.onsite_defects)
    a = lowering(d)
    X = a + a.T
    H = kron([np.eye(d)] * m + [He])
    for i, j in enumerate(modes):
        w, vec = mode(c, j)
        ell = math.sqrt(HBAR / (2 * c.mass * AMU * w))
        Hj = chain_H(N, c.boundary, c.a, 0.0, e.alpha, e.D, ell * vec)  # linear in u: no t0, no defects
        ops = [np.eye(d)] * m + [Hj]
        ops[i] = X
        H = H + kron(ops)
        ops = [np.eye(d)] * m + [np.eye(N)]
        ops[i] = HBAR * w * np.diag(np.arange(d) + 0.5)
        H = H + kron(ops)
    return H


def dft_weights(psi, a):
    """|ψ~(k)|² over the last axis by the DFT sum written out, and the momenta folded into
    (-π/a, π/a] in the same (FFT) order."""
    N = psi.shape[-1]
    n = np.arange(N)
    F = np.exp(-2j * math.pi * np.outer(n, n) / N) / math.sqrt(N)
    return folded_k(N, a), np.abs(psi @ F.T) ** 2


def gaussian(N, a, x0, sigma, k0):
    """ψ_n ∝ exp(-(na - x0)²/(4σ²)) e^{ik0na}, normalised (docs/model.md's initial packet)."""
    x = np.arange(N) * a
    psi = np.exp(-((x - x0) ** 2) / (4 * sigma**2) + 1j * k0 * x)
    return psi / np.linalg.norm(psi)
