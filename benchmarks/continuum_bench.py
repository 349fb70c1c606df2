"""Throughput of the density-density continuum model's pieces (wow.models.continuum), against the
plain numpy baseline (benchmarks/numpy_continuum.py), on this machine.

Measured (medians of repeated calls, after compilation), each in M grid-point·steps/s (or M grid
points/s for one evaluation):
  potential   V(s) from u by the library's windowed Gaussian sum (one exp per grid point and
              window cell), and two factorised alternatives that trade exponentials for products:
              'gather' (a table exp(-r²β) gathered at the atom's integer offset, times per-atom
              exponentials) and 'powers' (per atom and window two exponentials, the g powers by
              products); all three agree to rounding (checked here).
  phase       e^{-iVdt/ħ} by cos/sin, and by the exactly unitary rational [3/2] Padé rotation the
              chain's core uses (angle error θ⁷/100800 relative: 6e-13 at θ = 0.1).
  frozen      the Strang loop with a static V (evolve): 2 FFTs and 2 phase multiplies per step.
  moving      the same with V re-evaluated at every step's midpoint from moving atoms (u + v t).
  numpy       the baseline doing the same steps (frozen and moving), single-threaded.
The copy bandwidth (jitted x -> x + 1 over 256 MiB) of the same run is recorded beside them.

    flock -x /work/cpu.lock python benchmarks/continuum_bench.py [--write]
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import numpy_continuum as npc  # noqa: E402
from wow.lattice import Chain  # noqa: E402
from wow.models import continuum as C  # noqa: E402
from wow.units import M_E  # noqa: E402

A, V0, W, G = 2.556, 2.0, 0.5, 16


# --------------------------------------------------------------------------------------------
# Alternatives to the library's potential (kept here, measured, not used)
# --------------------------------------------------------------------------------------------
@partial(jax.jit, static_argnames="grid")
def potential_gather(u, V0, w, grid):
    """exp(-(o - y)²β) = table[o - n] · exp(2tδβ) · exp(2(gp - n)δβ - δ²β), y = n + δ, |δ| <= 1/2:
    one table gather per grid point and window cell, g + 2 reach + 1 exponentials per atom."""
    g, h, P = grid.g, grid.h, grid.reach
    beta = h * h / (2 * w * w)
    y = u / h
    n = jnp.round(y)
    d = y - n
    R = math.ceil(grid.cut - 0.5)
    r = jnp.arange(-R - 1, R + 2, dtype=u.dtype)
    table = jnp.where(jnp.abs(r) <= R, jnp.exp(-(r * r) * beta), 0)
    t = jnp.arange(g, dtype=u.dtype)
    a_t = jnp.exp(2 * beta * d[..., None] * t)
    ti = jnp.arange(g, dtype=jnp.int32)
    V = None
    for p in range(-P, P + 1):
        idx = jnp.clip(g * p + ti - n.astype(jnp.int32)[..., None], -R - 1, R + 1) + (R + 1)
        b = V0 * jnp.exp(2 * beta * (g * p - n) * d - beta * d * d)
        Wp = jnp.roll(jnp.take(table, idx) * a_t * b[..., None], p, axis=-2)
        V = Wp if V is None else V + Wp
    return V.reshape(*u.shape[:-1], grid.n_s)


def _powers(e, n):
    pw = jnp.ones_like(e)[..., None]
    base = e
    while pw.shape[-1] < n:
        pw = jnp.concatenate([pw, pw * base[..., None]], axis=-1)
        base = base * base
    return pw[..., :n]


@partial(jax.jit, static_argnames="grid")
def potential_powers(u, V0, w, grid):
    """exp(-(t' + z)²β) = exp(-z²β)·exp(-2zβ)^{t'}·exp(-t'²β), t' centred in the cell: two
    exponentials per atom and window cell, the g powers by products (doubling)."""
    g, h, P = grid.g, grid.h, grid.reach
    beta = h * h / (2 * w * w)
    y = u / h
    c = (g - 1) / 2
    tp = jnp.arange(g, dtype=u.dtype) - c
    A_t = jnp.exp(-(tp * tp) * beta)
    Z = math.ceil(grid.cut - 0.5) + c + 1
    V = None
    for p in range(-P, P + 1):
        z = g * p + c - jnp.roll(y, p, axis=-1)
        zc = jnp.clip(z, -Z, Z)
        B = jnp.where(jnp.abs(z) <= Z, V0 * jnp.exp(-(zc * zc) * beta + 2 * c * zc * beta), 0)
        Wp = B[..., None] * _powers(jnp.exp(-2 * zc * beta), g) * A_t
        V = Wp if V is None else V + Wp
    return V.reshape(*u.shape[:-1], grid.n_s)


@partial(jax.jit, static_argnames=("grid", "n_steps", "rational"))
def moving_loop(psi, u0, v, E_T, dt, grid, n_steps, rational=False):
    """n_steps Strang steps with V(u0 + v t) at every midpoint, kinetic halves merged (as numpy's);
    the potential phase by cos/sin or (rational=True) by C.phase_rational."""
    half = C.phase(E_T, dt / 2)
    full = half * half

    def body(pk, i):
        u = u0 + v * ((i + 0.5) * dt)
        x = C.ifft(pk) * (C.phase_rational if rational else C.phase)(C.lattice_potential(u, V0, W, grid), dt)
        return full * C.fft(x), None

    pk, _ = jax.lax.scan(body, half * C.fft(psi), jnp.arange(n_steps, dtype=u0.dtype))
    return C.ifft(pk * jnp.conj(half))


# --------------------------------------------------------------------------------------------
# Timing helpers
# --------------------------------------------------------------------------------------------
def timed(f, repeats=7, budget_s=8.0):
    t0 = time.perf_counter()
    jax.block_until_ready(f())
    compile_s = time.perf_counter() - t0
    ts = []
    while len(ts) < repeats and sum(ts) < budget_s:
        t0 = time.perf_counter()
        jax.block_until_ready(f())
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)), compile_s


def copy_bandwidth(dtype, nbytes=256 * 2**20, repeats=15):
    """Bytes read + written per second (median) by a jitted x -> x + c on one device, its buffer donated
    (no fresh output pages faulted in), as benchmarks/throughput.py measures it per device."""
    f = jax.jit(lambda x, c: x + c, donate_argnums=0)
    c = jnp.asarray(1e-7, dtype)
    x = jax.block_until_ready(f(jnp.ones((nbytes // jnp.dtype(dtype).itemsize,), dtype), c))
    ts = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        x = jax.block_until_ready(f(x, c))
        ts.append(time.perf_counter() - t0)
    return 2 * nbytes / float(np.median(ts))


def grid_for(N, u_max=1.0):
    chain = Chain(N=N, a=A, boundary="ring")
    model = C.Continuum(V0=V0, w=W, g=G, sigma=min(25.0, N * A / 20))
    C.validate(model, chain)
    return C.make_grid(model, chain, u_max)


def check_baseline():
    """The numpy baseline against the library (float64, small): same final ψ, frozen and moving."""
    for moving in (False, True):
        psi_np, _, st = npc.run(64 * G, 2, 30, "float64", moving)
        grid = grid_for(64)
        E_T = jnp.asarray(st["E_T"])
        if moving:
            psi = moving_loop(jnp.asarray(st["psi"]), jnp.asarray(st["u"]), jnp.asarray(st["v"]), E_T, 0.01, grid, 30)
        else:
            V = C.lattice_potential(jnp.asarray(st["u"]), V0, W, grid)
            psi = C.evolve(jnp.asarray(st["psi"]), V, E_T, 0.01, 30)
        err = float(np.max(np.abs(np.asarray(psi) - psi_np)))
        if err > 1e-10:
            raise RuntimeError(f"numpy baseline differs from wow.models.continuum by {err:g} (moving={moving})")


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--atoms", type=int, default=256, help="N (ring atoms); the grid has 16 N points")
    ap.add_argument("--samples", type=int, default=64)
    ap.add_argument("--steps", type=int, default=20)
    ap.add_argument("--write", action="store_true", help="append the table to benchmarks/RESULTS.md")
    args = ap.parse_args(argv)
    check_baseline()
    N, S, n = args.atoms, args.samples, args.steps
    grid = grid_for(N)
    pts = S * grid.n_s
    rows = []
    bw = {}
    for dtype in ("float32", "float64"):
        F = jnp.dtype(dtype)
        CX = jnp.complex64 if dtype == "float32" else jnp.complex128
        bw[dtype] = copy_bandwidth(F)
        rng = np.random.default_rng(0)
        u = jnp.asarray(rng.normal(0, 0.3, (S, N)), F)
        v = jnp.asarray(rng.normal(0, 0.01, (S, N)), F)
        ref = np.asarray(npc.potential(np.asarray(u, np.float64), dict(g=grid.g, h=grid.h, reach=grid.reach, w=W, V0=V0,
                                                                      cut=C.TAIL_RADIUS * W / grid.h)))
        for name, fn in (("potential (library: exp per point·window)", C.lattice_potential),
                         ("potential (table gather + per-atom exps)", potential_gather),
                         ("potential (per-atom exps + powers by products)", potential_powers)):
            t, c = timed(lambda: fn(u, F.type(V0), F.type(W), grid))
            err = float(np.max(np.abs(np.asarray(fn(u, F.type(V0), F.type(W), grid), np.float64) - ref))) / V0
            rows.append((dtype, name, pts / t / 1e6, c, f"max err {err:.1e} V0"))
        V = C.lattice_potential(u, F.type(V0), F.type(W), grid)
        for name, fn in (("phase e^{-iVdt/ħ} (cos, sin)", C.phase), ("phase (rational, unitary)", C.phase_rational)):
            t, c = timed(lambda: fn(V, F.type(0.01)))
            rows.append((dtype, name, pts / t / 1e6, c, ""))
        psi = jnp.broadcast_to(C.plane_packet(grid, 1.0, 25.0, grid.L / 2, CX), (S, grid.n_s))
        E_T = C.kinetic_energies(C.momenta(grid, F), F.type(M_E))
        t, c = timed(lambda: C.evolve(psi, V, E_T, F.type(0.01), n))
        rows.append((dtype, f"Strang loop, frozen V ({n} steps)", pts * n / t / 1e6, c, "M point·steps/s"))
        t, c = timed(lambda: moving_loop(psi, u, v, E_T, F.type(0.01), grid, n))
        rows.append((dtype, f"Strang loop, V(u(t)) every step ({n} steps)", pts * n / t / 1e6, c, "M point·steps/s"))
        t, c = timed(lambda: moving_loop(psi, u, v, E_T, F.type(0.01), grid, n, True))
        rows.append((dtype, f"the same, potential phase rational", pts * n / t / 1e6, c, "M point·steps/s"))
        for moving in (False, True):
            r = npc.steps_per_second(grid.n_s, S, max(3, n // 4), dtype, moving)
            rows.append((dtype, f"numpy baseline, {'moving' if moving else 'frozen'}", r * pts / 1e6, 0.0,
                         "M point·steps/s"))
    for r in rows:
        print(f"{r[0]:8s} {r[1]:52s} {r[2]:9.1f} M/s  compile+1 {r[3]:.2f} s  {r[4]}", flush=True)
    for d, b in bw.items():
        print(f"copy bandwidth {d}: {b / 1e9:.1f} GB/s")
    if args.write:
        write(rows, bw, N, S, grid, " ".join(["python benchmarks/continuum_bench.py"] + (argv or sys.argv[1:])))


def write(rows, bw, N, S, grid, cmd):
    try:
        git = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                             cwd=HERE).stdout.strip()
    except OSError:
        git = "?"
    lines = [f"\n## {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC — `{cmd}`\n",
             f"- device: {jax.devices()[0].device_kind} x {len(jax.devices())} ({platform.processor() or platform.machine()}, "
             f"{os.cpu_count()} cores); jax {jax.__version__}, numpy {np.__version__}; git {git}; load average "
             + " ".join(f"{x:.2f}" for x in os.getloadavg()),
             f"- continuum model: ring of N = {N} atoms, g = {grid.g} (N_s = {grid.n_s}), w = {W} Å, window reach "
             f"{grid.reach} cells ({2 * grid.reach + 1} exponentials per point), {S} samples",
             *(f"- copy bandwidth {d}: {b / 1e9:.1f} GB/s read+write" for d, b in bw.items()),
             "",
             "| dtype | what | M grid points/s (or point·steps/s) | compile+1 s | note |",
             "|---|---|---|---|---|"]
    lines += [f"| {r[0]} | {r[1]} | {r[2]:.1f} | {r[3]:.2f} | {r[4]} |" for r in rows]
    with open(HERE / "RESULTS.md", "a") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
