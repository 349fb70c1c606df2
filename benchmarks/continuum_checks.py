"""The slow version of the density-density model's Debye-Waller check (tests/test_continuum.py runs
a 128-sample version): a 'plane' packet at k0 = π/a Bragg-reflects from frozen Wigner samples of a
ring; the coherent mechanical reflection Σ_{κ<0}|<ψ~(κ)>_s|² (unbiased: (|Σ_s ψ~|² - Σ_s|ψ~|²)/(S(S-1)))
over the static lattice's must be e^{-2W(G)}, 2W = G²<u_j²> (paper Eq. 28), in the weak-potential
(first Born) limit. Prints, per temperature and V0, the ratio, its jackknife standard error and
e^{-2W}, and the total (coherent + incoherent) reflection against the first-order thermal formula
from the structure factor (wow.theory.born_backscatter_thermal).

    flock -s /work/cpu.lock python benchmarks/continuum_checks.py [--samples 2048]
"""

from __future__ import annotations

import argparse
import math

import jax

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

from wow import lattice as lat  # noqa: E402
from wow import theory as th  # noqa: E402
from wow.lattice import Chain  # noqa: E402
from wow.models import continuum as C  # noqa: E402
from wow.units import M_E  # noqa: E402

A = 2.556


def bragg(T, v0, S, chunk=256, seed=0, N=32, t=3.0, steps=150):
    chain = Chain(N=N, a=A, boundary="ring")
    model = C.Continuum(V0=v0, w=0.8, g=8, packet="plane", k0=math.pi / A, sigma=4.0, x0=N * A / 2)
    C.validate(model, chain)
    grid = C.make_grid(model, chain, 2.0)
    psi0 = C.initial_packet(model, chain, grid)
    E_T = C.kinetic_energies(C.momenta(grid), M_E)[None, :]
    back = np.asarray(C.momenta(grid)) < 0
    rng = np.random.default_rng(seed)
    sd = np.sqrt(th.mode_variance(chain, T, "quantum"))
    E = lat.mode_matrix(chain)

    def run(u):
        V = C.lattice_potential(jnp.asarray(u), v0, model.w, grid)
        psi = C.evolve(jnp.broadcast_to(psi0, V.shape).astype(jnp.complex128), V, E_T, t / steps, steps)
        return np.asarray(C.fft(psi))[:, back]

    static = float(np.sum(np.abs(run(np.zeros((1, N)))) ** 2))
    sums, sq, tot = [], [], []
    for _ in range(S // chunk):
        u = (rng.normal(size=(chunk, N - 1)) * sd) @ E.T
        a = run(u)
        sums.append(a.sum(0))
        sq.append((np.abs(a) ** 2).sum(0))
        tot.append((np.abs(a) ** 2).sum(-1))
    Ssum, Asum = np.array(sums), np.array(sq)
    n = S

    def coh(Sg, Ag, m):
        return (np.sum(np.abs(Sg) ** 2) - np.sum(Ag)) / (m * (m - 1))

    full = coh(Ssum.sum(0), Asum.sum(0), n)
    G_ = Ssum.shape[0]
    loo = np.array([coh(Ssum.sum(0) - Ssum[i], Asum.sum(0) - Asum[i], n - chunk) for i in range(G_)])
    se = math.sqrt((G_ - 1) / G_ * np.sum((loo - loo.mean()) ** 2))
    dw = th.debye_waller_factor(chain, 2 * math.pi / A, T, "quantum")
    P_tot = np.concatenate(tot)
    pk0 = np.asarray(C.fft(psi0))
    pk0 = np.where(np.abs(pk0) ** 2 > 1e-12, pk0, 0)
    born_tot = th.born_backscatter_thermal(np.asarray(C.momenta(grid)), pk0, chain, T, v0, model.w, t, "quantum")
    return dict(ratio=full / static, se=se / static, dw=dw, P_tot=P_tot.mean(),
                P_tot_se=P_tot.std(ddof=1) / math.sqrt(n), born_tot=born_tot)


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--samples", type=int, default=2048)
    args = ap.parse_args(argv)
    print(f"{'T (K)':>6} {'V0 (eV)':>8} {'P_coh/P_static':>15} {'± se':>8} {'e^-2W':>8} {'ratio/e^-2W - 1':>16}"
          f" {'P_tot/Born_thermal - 1':>23} {'± se':>8}")
    for T in (300.0, 600.0, 1200.0):
        for v0 in (0.02, 0.01):
            r = bragg(T, v0, args.samples)
            print(f"{T:6.0f} {v0:8.3f} {r['ratio']:15.5f} {r['se']:8.5f} {r['dw']:8.5f} {r['ratio'] / r['dw'] - 1:16.2e}"
                  f" {r['P_tot'] / r['born_tot'] - 1:23.2e} {r['P_tot_se'] / r['born_tot']:8.1e}", flush=True)


if __name__ == "__main__":
    main()
