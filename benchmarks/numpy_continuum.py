"""A plain numpy FFT split-operator baseline of the density-density continuum model: the yardstick
for the continuum throughput benchmark.

The same steps as wow.models.continuum: ψ on a batch of rings (samples x grid points, grid axis
last), one Strang step T/2 · V · T/2 per time step with neighbouring kinetic halves merged, so a step
is ifft -> potential phase e^{-iVdt/ħ} -> fft -> kinetic+recoil phase e^{-iE_T dt/ħ} (precomputed).
With ``moving=True`` the lattice moves (u += v dt, a stand-in for any prescribed motion) and V is
re-evaluated at every step from the atoms' positions by the same windowed Gaussian sum (one
exponential per grid point and window cell) and its phase by cos/sin. numpy.fft (pocketfft) is
single-threaded; scratch buffers are reused where numpy allows (its FFTs allocate their output).

    python benchmarks/numpy_continuum.py --n-grid 4096 --samples 64 --steps 20 --dtype float32
"""

from __future__ import annotations

import argparse
import math
import time

import numpy as np

HBAR = 0.6582119569  # eV·fs
M_E = 0.0568563  # eV·fs²/Å²


def _setup(n_grid, n_samples, dtype, g=16, a=2.556, V0=2.0, w=0.5, seed=0):
    real = np.dtype(dtype)
    cplx = np.complex64 if real == np.float32 else np.complex128
    if n_grid % g:
        raise ValueError(f"n_grid={n_grid} must be a multiple of g={g}")
    N = n_grid // g
    h = a / g
    rng = np.random.default_rng(seed)
    u = rng.normal(0.0, 0.1, (n_samples, N))
    u -= u.mean(-1, keepdims=True)
    v = rng.normal(0.0, 0.01, (n_samples, N))
    v -= v.mean(-1, keepdims=True)
    s = np.arange(n_grid) * h
    psi = np.exp(-((s - n_grid * h / 2) ** 2) / (4 * (n_grid * h / 40) ** 2) + 1j * 1.0 * s)
    psi = np.broadcast_to(psi / np.linalg.norm(psi), (n_samples, n_grid)).astype(cplx)
    kap = 2 * np.pi * np.fft.fftfreq(n_grid, h)
    E_T = (HBAR * kap) ** 2 / (2 * M_E) + (0.3 - HBAR * kap) ** 2 / (2 * N * 63.546 * 103.642697)
    cut = math.sqrt(2 * math.log(1e16)) * w / h
    reach = math.ceil((cut + 0.5 + 1.0 / h) / g)  # |u| <= 1 Å
    return dict(psi=psi, u=u.astype(real), v=v.astype(real), E_T=E_T, N=N, g=g, h=h, V0=V0, w=w,
                cut=cut, reach=reach, real=real, cplx=cplx)


def potential(u, st):
    """V (S, N g) from displacements u (S, N): Σ over window cells of V0 exp(-x²β), x in grid units."""
    g, h, reach = st["g"], st["h"], st["reach"]
    beta = h * h / (2 * st["w"] ** 2)
    y = u / h
    t = np.arange(g, dtype=u.dtype)
    V = np.zeros(u.shape + (g,), u.dtype)
    for p in range(-reach, reach + 1):
        x = (g * p + t)[None, None, :] - np.roll(y, p, axis=-1)[..., None]
        x2 = x * x
        W = np.exp(-x2 * beta) * st["V0"]
        W[x2 > st["cut"] ** 2] = 0
        V += W
    return V.reshape(u.shape[0], -1)


def run(n_grid: int, n_samples: int, n_steps: int, dtype="float64", moving: bool = False, dt: float = 0.01):
    """Propagate the baseline's batch; returns (ψ at the end (S, n_grid), seconds spent stepping, the
    setup dict)."""
    st = _setup(n_grid, n_samples, dtype)
    real, cplx = st["real"], st["cplx"]
    full = np.exp(-1j * st["E_T"] * dt / HBAR).astype(cplx)
    half = np.exp(-1j * st["E_T"] * dt / (2 * HBAR)).astype(cplx)
    u, v = st["u"].copy(), st["v"].copy()
    pv = np.exp(-1j * potential(u, st) * dt / HBAR).astype(cplx)
    pk = np.fft.fft(st["psi"], axis=-1, norm="ortho") * half
    t0 = time.perf_counter()
    for i in range(n_steps):
        if moving:
            u += v * real.type(dt if i else dt / 2)  # u at the step's midpoint
            th = potential(u, st) * real.type(-dt / HBAR)
            pv = (np.cos(th) + 1j * np.sin(th)).astype(cplx)
        x = np.fft.ifft(pk, axis=-1, norm="ortho")
        x *= pv
        pk = np.fft.fft(x, axis=-1, norm="ortho")
        pk *= full if i < n_steps - 1 else half
    elapsed = time.perf_counter() - t0
    if not np.isfinite(np.abs(pk).sum()):
        raise RuntimeError("numpy baseline diverged")
    return np.fft.ifft(pk, axis=-1, norm="ortho"), elapsed, st


def steps_per_second(n_grid: int, n_samples: int, n_steps: int, dtype="float64", moving: bool = False,
                     dt: float = 0.01) -> float:
    """Strang steps per second of the numpy baseline (each step advances all n_samples rings of
    n_grid points; multiply by n_samples·n_grid for grid-point steps per second)."""
    return n_steps / run(n_grid, n_samples, n_steps, dtype, moving, dt)[1]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n-grid", type=int, default=4096)
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--dtype", choices=("float32", "float64"), default="float64")
    ap.add_argument("--moving", action="store_true")
    args = ap.parse_args(argv)
    r = steps_per_second(args.n_grid, args.samples, args.steps, args.dtype, args.moving)
    print(f"numpy continuum: {r:.2f} steps/s = {r * args.n_grid * args.samples / 1e6:.1f} M grid-point steps/s "
          f"(n_grid={args.n_grid}, samples={args.samples}, {args.dtype}, moving={args.moving})")


if __name__ == "__main__":
    main()
