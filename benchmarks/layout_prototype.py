"""A plain-JAX prototype of the wow step beside the core, and the ingredients of its speed.

    python benchmarks/layout_prototype.py                       # prototype vs core, float32 + float64
    python benchmarks/layout_prototype.py --toggles             # + one ingredient changed at a time
    python benchmarks/layout_prototype.py --dump-hlo DIR        # + the optimized HLO of each program

The workload (the same for every row): the copper-like open chain (wow.Chain defaults), N = 4096,
64 thermal samples at 300 K, wow dynamics (the lattice moves freely, the electron feels it through
the SSH hopping t_b = t0 - α b_n, α = 2 eV/Å, D = 0), 10 fs at dt = 0.02 fs (500 steps), the default
packet (k0 = π/3a, σ = 25 Å, centred).

The prototype (``proto``): the proposed design as described, built faithfully.
* layout ``NB``: arrays (N, B), samples innermost: the electron as two real arrays (Re ψ, Im ψ), the
  lattice as (u, v). A bond pair is two contiguous rows of B samples, a stencil shift a row offset;
* one Strang step per dt: even bonds h/2, odd bonds h, even bonds h/2, at the mid-step lattice, each
  bond an [[c, i s], [i s, c]] rotation by θ = t_b h/ħ, c and s by Taylor polynomials (``taylor``:
  to θ⁴ and θ⁵; not exactly unitary: c² + s² - 1 = O(θ⁶));
* a leapfrog (Störmer-Verlet) lattice: carry u(t + h/2) and v(t); v += h a(u(t + h/2)), u += h v;
  second order in h, not exact harmonic motion;
* one jitted program (``lax.fori_loop``) on one device: XLA's intra-op threads spread its loops over
  the cores (``devices = 1``); or the samples split over one device per core (``devices = 2``).

Every ingredient is a switch (``Variant``): layout NB / BN (sites innermost), trig taylor / rational
(the core's exactly unitary [3/2]-Padé form) / normalised (Taylor pair divided by sqrt(c² + s²)) /
libm (cos, sin), lattice leapfrog / exact (the core's two-step recurrence, wow.lattice.pair_step),
odd layer as pairs of the interior (concatenated with the end rows) / as four shifted outputs (the
core's form), half layers merged or not, devices 1 / 2.

The core (``core``): ``wow.propagate.propagate`` through benchmarks/throughput.py's ``core_program``
(the same block/device split the throughput benchmark uses), on the same thermal samples.

P_b error: the backscattered weight Σ_{k<0} |ψ~(k)|² of every sample at 10 fs against an exact
reference: the core in float64, fourth order (Yoshida) at dt = 0.0025 fs with the exact lattice flow
(the difference to dt = 0.005 fs is printed: it bounds the reference's own error). Reported: the
largest error over the samples and the error of the sample mean.

Rates: sample·site·steps per second (64 x 4096 x 500 per call), median of the repeats, [min, max].
The copy bandwidth (a jitted x -> x + c, as in throughput.py) is measured in the same run.
Run it under the exclusive lock: ``flock /work/gate.lock flock -x /work/cpu.lock python ...``.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE.parent))
sys.path.insert(0, str(HERE))

import jax  # noqa: E402

jax.config.update("jax_enable_x64", True)
import jax.numpy as jnp  # noqa: E402

import wow  # noqa: E402
from wow.units import HBAR  # noqa: E402

N_SITES, N_SAMPLES, DT, DURATION = 4096, 64, 0.02, 10.0


@dataclasses.dataclass(frozen=True)
class Variant:
    layout: str = "NB"          # NB: samples innermost (N, B); BN: sites innermost (B, N)
    trig: str = "taylor"        # taylor | rational | normalised | libm
    lattice: str = "leapfrog"   # leapfrog | exact (two-step recurrence)
    odd: str = "pairs"          # pairs (interior rows as pairs + end rows) | shifts (four shifted outputs)
    merge: bool = False         # merge the outer half layers of neighbouring steps
    devices: int = 1            # 1: one program, XLA's threads over the cores; 2: one device per core

    def label(self):
        return (f"{self.layout} {self.trig} {self.lattice} odd={self.odd} merge={'y' if self.merge else 'n'} "
                f"dev={self.devices}")


PROTOTYPE = Variant()


# --------------------------------------------------------------------------------------------
# Rotations
# --------------------------------------------------------------------------------------------
def cos_sin(theta, trig):
    if trig == "taylor":
        t2 = theta * theta
        return 1 - t2 * (0.5 - t2 * (1 / 24)), theta * (1 - t2 * (1 / 6 - t2 * (1 / 120)))
    if trig == "normalised":
        t2 = theta * theta
        c, s = 1 - t2 * (0.5 - t2 * (1 / 24)), theta * (1 - t2 * (1 / 6 - t2 * (1 / 120)))
        r = jax.lax.rsqrt(c * c + s * s)
        return c * r, s * r
    if trig == "rational":  # the core's (1 - c, s, float32 norm correction): c and s here
        g, s, _ = wow.models.chain.rotation(theta)
        return 1 - g, s
    if trig == "libm":
        return jnp.cos(theta), jnp.sin(theta)
    raise ValueError(trig)


def rot(xr, xi, yr, yi, c, s):
    """[[c, i s], [i s, c]] on the pair (x, y) in real arithmetic."""
    return c * xr - s * yi, c * xi + s * yr, c * yr - s * xi, c * yi + s * xr


# --------------------------------------------------------------------------------------------
# Site-axis helpers: ax is 0 (NB) or 1 (BN)
# --------------------------------------------------------------------------------------------
def sl(x, ax, s):
    idx = [slice(None)] * x.ndim
    idx[ax] = s
    return x[tuple(idx)]


def interleave(a, b, ax):
    """a_j, b_j -> (a_0, b_0, a_1, b_1, ...) along ax."""
    st = jnp.stack([a, b], axis=ax + 1)
    shape = list(a.shape)
    shape[ax] *= 2
    return st.reshape(shape)


def shift(x, d, ax, fill=0.0):
    """x_{n+d} along ax (d = ±1), ``fill`` beyond the ends."""
    pad = [(0, 0, 0)] * x.ndim
    if d > 0:
        pad[ax] = (0, 1, 0)
        return jax.lax.pad(sl(x, ax, slice(1, None)), jnp.asarray(fill, x.dtype), pad)
    pad[ax] = (1, 0, 0)
    return jax.lax.pad(sl(x, ax, slice(None, -1)), jnp.asarray(fill, x.dtype), pad)


def even_layer(pr, pi, c, s, ax):
    """Bonds (2j, 2j+1): c, s per even bond (M along ax)."""
    ar, ai = sl(pr, ax, slice(0, None, 2)), sl(pi, ax, slice(0, None, 2))
    br, bi = sl(pr, ax, slice(1, None, 2)), sl(pi, ax, slice(1, None, 2))
    ar, ai, br, bi = rot(ar, ai, br, bi, c, s)
    return interleave(ar, br, ax), interleave(ai, bi, ax)


def odd_layer_pairs(pr, pi, c, s, ax):
    """Bonds (2j+1, 2j+2): the interior rows 1..N-2 as pairs, the two end rows untouched."""
    N = pr.shape[ax]
    inner_r, inner_i = even_layer(sl(pr, ax, slice(1, N - 1)), sl(pi, ax, slice(1, N - 1)), c, s, ax)
    return (jnp.concatenate([sl(pr, ax, slice(0, 1)), inner_r, sl(pr, ax, slice(N - 1, N))], axis=ax),
            jnp.concatenate([sl(pi, ax, slice(0, 1)), inner_i, sl(pi, ax, slice(N - 1, N))], axis=ax))


def odd_layer_shifts(pr, pi, c, s, ax):
    """The same layer as one elementwise expression over all sites: per-site (c, s) of the site's odd
    bond (1, 0 at the ends) and its partner x_{n+1} (odd n) or x_{n-1} (even n)."""
    N = pr.shape[ax]
    one = jnp.ones_like(sl(c, ax, slice(0, 1)))
    zero = jnp.zeros_like(one)
    # site 2j+1 (odd) has bond j of the odd layer to its right; site 2j+2 has it to its left
    c_site = jnp.concatenate([one, interleave(c, c, ax), one], axis=ax)
    s_site = jnp.concatenate([zero, interleave(s, s, ax), zero], axis=ax)
    shape = [1, 1]
    shape[ax] = N
    odd = (jnp.arange(N) % 2 == 1).reshape(shape)
    qr = jnp.where(odd, shift(pr, 1, ax), shift(pr, -1, ax))
    qi = jnp.where(odd, shift(pi, 1, ax), shift(pi, -1, ax))
    return c_site * pr - s_site * qi, c_site * pi + s_site * qr


# --------------------------------------------------------------------------------------------
# Lattice
# --------------------------------------------------------------------------------------------
def laplacian(x, ax):
    """(L x)_n = 2x_n - x_{n-1} - x_{n+1}, free ends (L x)_n = b_{n-1} - b_n, b_{-1} = b_{N-1} = 0."""
    b = sl(x, ax, slice(1, None)) - sl(x, ax, slice(None, -1))
    pad = [(0, 0, 0)] * x.ndim
    pad[ax] = (1, 1, 0)
    b = jax.lax.pad(b, jnp.zeros((), x.dtype), pad)
    return sl(b, ax, slice(None, -1)) - sl(b, ax, slice(1, None))


# --------------------------------------------------------------------------------------------
# The prototype's program
# --------------------------------------------------------------------------------------------
def make_program(var: Variant, real, n_terms: int, steps: int):
    """(psi_r, psi_i, u0, v0) in the variant's layout -> (psi_r, psi_i) after ``steps`` steps."""
    ax = 0 if var.layout == "NB" else 1
    h = DT
    k = h / HBAR
    t0, alpha = 1.0, 2.0
    omega2 = wow.Chain().spring / wow.Chain().mass_ev
    odd_layer = odd_layer_pairs if var.odd == "pairs" else odd_layer_shifts

    def angles(u):
        b = sl(u, ax, slice(1, None)) - sl(u, ax, slice(None, -1))
        th = (t0 - alpha * b) * k  # (N-1) bonds along ax
        return sl(th, ax, slice(0, None, 2)), sl(th, ax, slice(1, None, 2))

    def lattice_start(u0, v0):
        if var.lattice == "leapfrog":
            return u0 + (h / 2) * v0, v0
        pr_ = wow.lattice.pair_start(wow.lattice.SiteState(jnp.moveaxis(u0, ax, -1), jnp.moveaxis(v0, ax, -1)),
                                     h, omega2, "open", n_terms)
        return jnp.moveaxis(pr_.u, -1, ax), jnp.moveaxis(pr_.d, -1, ax)

    def lattice_step(u, w):
        if var.lattice == "leapfrog":
            w = w - (h * omega2) * laplacian(u, ax)
            return u + h * w, w
        # the core's two-step recurrence (wow.lattice.pair_step), written along ax
        rc = max(1, n_terms // 2)
        x = -omega2 * h * h
        acc = None
        for j in range(rc, 0, -1):
            term = (2 * x ** j / math.factorial(2 * j)) * u
            acc = laplacian(term if acc is None else term + acc, ax)
        w = w + acc
        return u + w, w

    def step(carry):
        pr, pi, u, w, pend = carry
        te, to = angles(u)
        if var.merge:
            c, s = cos_sin(te / 2 + pend, var.trig)
        else:
            c, s = cos_sin(te / 2, var.trig)
        pr, pi = even_layer(pr, pi, c, s, ax)
        co, so = cos_sin(to, var.trig)
        pr, pi = odd_layer(pr, pi, co, so, ax)
        if var.merge:
            pend = te / 2
        else:
            pr, pi = even_layer(pr, pi, c, s, ax)
        u, w = lattice_step(u, w)
        return pr, pi, u, w, pend

    def run(pr, pi, u0, v0):
        u, w = lattice_start(u0, v0)
        pend = jnp.zeros_like(angles(u)[0])
        pr, pi, u, w, pend = jax.lax.fori_loop(0, steps, lambda _, c: step(c), (pr, pi, u, w, pend))
        if var.merge:
            c, s = cos_sin(pend, var.trig)
            pr, pi = even_layer(pr, pi, c, s, ax)
        return pr, pi

    return run



# --------------------------------------------------------------------------------------------
# Harness
# --------------------------------------------------------------------------------------------
def real_of(dtype):
    return jnp.float32 if dtype == "float32" else jnp.float64


@functools.lru_cache(maxsize=4)
def samples(dtype, S=N_SAMPLES, N=N_SITES):
    """The thermal lattices (u, v) at t = 0, (S, N), as benchmarks/throughput.py draws them."""
    import throughput

    lat = throughput.inputs(throughput.config("wow", dtype, N, 1), S)
    return np.asarray(lat.u), np.asarray(lat.v)


def backscattered(psi):
    """Σ_{k<0} |ψ~(k)|² per sample of ψ (S, N) complex (the core's P_b)."""
    psi = np.asarray(psi, np.complex128)
    k = np.asarray(wow.electron.k_grid(psi.shape[-1], wow.Chain().a))
    w = np.abs(np.fft.fft(psi, axis=-1, norm="ortho")) ** 2
    return w[:, k < 0].sum(axis=-1)


def core_runner(dtype, steps, dt=DT, order=2, S=N_SAMPLES, N=N_SITES):
    """The core on the (S, N) samples, as benchmarks/throughput.py times it: (compiled, args)."""
    import throughput

    cfg = throughput.config("wow", dtype, N, steps, dt=dt, order=order)
    u, v = samples(dtype, S, N)
    lat = wow.lattice.SiteState(jnp.asarray(u), jnp.asarray(v))
    n_dev = len(jax.devices()) if S % len(jax.devices()) == 0 else 1
    block = throughput.cache_block(S // n_dev, N, dtype, 32e6)
    f, _ = throughput.core_program(cfg, block, n_dev)
    if n_dev > 1:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        lat = jax.device_put(lat, NamedSharding(Mesh(np.array(jax.devices()), ("samples",)), P("samples")))
    compiled = wow.devices.compile_for(f.lower(lat), jax.devices())
    return compiled, (lat,), f"core (dev={n_dev}, block={block or S // n_dev})"


def proto_runner(var: Variant, dtype, steps, S=N_SAMPLES, N=N_SITES):
    """The prototype variant on the same samples: (compiled, args, label); its output (ψr, ψi) in
    the variant's layout."""
    import throughput

    real = real_of(dtype)
    cfg = throughput.config("wow", dtype, N, steps)
    n_terms = wow.dynamics.flow_order(cfg.chain, cfg.dt, real)
    psi0 = np.asarray(wow.ensemble.initial_packet(cfg))
    u, v = samples(dtype, S, N)
    pr = np.broadcast_to(psi0.real, (S, N)).astype(real)
    pi = np.broadcast_to(psi0.imag, (S, N)).astype(real)
    args = [pr, pi, u, v]
    if var.layout == "NB":
        args = [np.ascontiguousarray(a.T) for a in args]
    run = make_program(var, real, n_terms, steps)
    sax = 1 if var.layout == "NB" else 0
    if var.devices == 1:
        dev = jax.devices()[0]
        args = [jax.device_put(jnp.asarray(a, real), dev) for a in args]
        f = jax.jit(run)
        devs = [dev]
    else:
        from jax.sharding import Mesh, NamedSharding, PartitionSpec as P

        devs = jax.devices()[:var.devices]
        mesh = Mesh(np.array(devs), ("s",))
        spec = P(None, "s") if sax == 1 else P("s", None)
        args = [jax.device_put(jnp.asarray(a, real), NamedSharding(mesh, spec)) for a in args]
        f = jax.jit(jax.shard_map(run, mesh=mesh, in_specs=(spec,) * 4, out_specs=(spec, spec), check_vma=False))
    compiled = wow.devices.compile_for(f.lower(*args), devs)
    return compiled, tuple(args), "proto " + var.label()


def proto_psi(var, out):
    pr, pi = (np.asarray(x, np.float64) for x in out)
    if var.layout == "NB":
        pr, pi = pr.T, pi.T
    return pr + 1j * pi


def timed(compiled, args, repeats, budget_s=8.0):
    """(wall times, CPU seconds / wall seconds) of repeated calls after one warm-up."""
    jax.block_until_ready(compiled(*args))
    ts, cpu = [], 0.0
    while len(ts) < 3 or (len(ts) < repeats and sum(ts) < budget_s):
        c0, t0 = time.process_time(), time.perf_counter()
        jax.block_until_ready(compiled(*args))
        ts.append(time.perf_counter() - t0)
        cpu += time.process_time() - c0
    return np.array(ts), cpu / sum(ts)


def loop_body_counts(compiled):
    """Top-level instructions of the innermost while-loop body of the optimized HLO: fusions,
    copies, and all (the per-step passes over memory XLA runs)."""
    import re

    text = compiled.as_text()
    comps, name, body = {}, None, []
    for line in text.splitlines():
        m = re.match(r"^(?:ENTRY )?%?([\w.\-]+) .*\{\s*$", line)
        if m and not line.startswith(" "):
            name, body = m.group(1), []
            continue
        if line.startswith("}") and name:
            comps[name] = body
            name = None
            continue
        if name:
            body.append(line)
    bodies = set()
    for lines in comps.values():
        for l in lines:
            m = re.search(r"\bwhile\(.*body=%?([\w.\-]+)", l)
            if m:
                bodies.add(m.group(1))
    inner = [b for b in bodies if b in comps and not any(" while(" in l for l in comps[b])]
    out = {}
    for b in inner:
        ops = [re.search(r"= \S+ (\w[\w-]*)\(", l) for l in comps[b]]
        ops = [m.group(1) for m in ops if m]
        n = {"fusion": ops.count("fusion"), "copy": ops.count("copy"),
             "other": sum(o not in ("fusion", "copy", "parameter", "get-tuple-element", "tuple", "constant")
                          for o in ops)}
        out[b] = n
    # the body with the most fusions is the time step (others: small bookkeeping loops)
    return max(out.values(), key=lambda n: n["fusion"]) if out else {}


def reference(path, steps_check=True):
    """P_b of every sample at 10 fs from the core in float64, order 4, dt = 0.0025 fs (cached at
    ``path``), and its largest difference to dt = 0.005 fs."""
    if path and os.path.exists(path):
        z = np.load(path)
        return z["pb"], float(z["spread"])
    pbs = []
    for dt in (0.005, 0.0025):
        steps = int(round(DURATION / dt))
        compiled, args, _ = core_runner("float64", steps, dt=dt, order=4)
        pbs.append(backscattered(compiled(*args)))
    spread = float(np.max(np.abs(pbs[1] - pbs[0])))
    if path:
        np.savez(path, pb=pbs[1], spread=spread)
    return pbs[1], spread


def toggles(dtype):
    """The prototype and, one at a time, each ingredient changed toward the core (and the core's
    exact physics: rational rotations, exact lattice) with the rest kept."""
    p = PROTOTYPE
    return [p,
            dataclasses.replace(p, layout="BN"),
            dataclasses.replace(p, devices=2),
            dataclasses.replace(p, trig="rational"),
            dataclasses.replace(p, trig="normalised"),
            dataclasses.replace(p, trig="libm"),
            dataclasses.replace(p, lattice="exact"),
            dataclasses.replace(p, odd="shifts"),
            dataclasses.replace(p, merge=True),
            dataclasses.replace(p, trig="rational", lattice="exact"),
            dataclasses.replace(p, trig="rational", lattice="exact", merge=True),
            dataclasses.replace(p, trig="rational", lattice="exact", merge=True, devices=2),
            dataclasses.replace(p, trig="rational", lattice="exact", merge=True, layout="BN", odd="shifts", devices=2)]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dtype", default="float32,float64")
    ap.add_argument("--toggles", action="store_true", help="also one ingredient changed at a time")
    ap.add_argument("--variants", default=None,
                    help="';'-separated variants 'layout,trig,lattice,odd,merge(0/1),devices' instead")
    ap.add_argument("--repeats", type=int, default=7)
    ap.add_argument("--rounds", type=int, default=1, help="repeat the whole list (interleaved) this often")
    ap.add_argument("--reference", default=os.path.join("/tmp", "wow_layout_reference.npz"),
                    help="cache file of the exact reference's P_b (outside the repository)")
    ap.add_argument("--no-core", dest="core", action="store_false")
    ap.add_argument("--out", default=None, help="append the table to this markdown file")
    args = ap.parse_args(argv)
    wow.devices.use_cpu_cores(None)
    import throughput

    env = throughput.environment()
    print(" | ".join(env.values()), flush=True)
    steps = int(round(DURATION / DT))
    pb_ref, spread = reference(args.reference)
    print(f"reference: P_b mean {pb_ref.mean():.6e}; order 4 dt 0.005 vs 0.0025: max |ΔP_b| {spread:.1e}", flush=True)
    dtypes = args.dtype.split(",")
    bw = throughput.bandwidths(dtypes)
    if args.variants:
        vs = []
        for spec in args.variants.split(";"):
            lay, trig, lat, odd, merge, dev = spec.split(",")
            vs.append(Variant(lay, trig, lat, odd, merge == "1", int(dev)))
    else:
        vs = toggles(None) if args.toggles else [PROTOTYPE]
    work = N_SAMPLES * N_SITES * steps
    rows = []
    for dtype in dtypes:
        runners = []
        if args.core:
            runners.append(("core", None) + core_runner(dtype, steps))
        for v in vs:
            runners.append(("proto", v) + proto_runner(v, dtype, steps))
        results = {lab: [] for *_, lab in runners}
        for _ in range(args.rounds):
            for kind, v, compiled, a, lab in runners:
                ts, cores = timed(compiled, a, args.repeats)
                results[lab].append((ts, cores))
        for kind, v, compiled, a, lab in runners:
            out = compiled(*a)
            psi = out if kind == "core" else proto_psi(v, out)
            pb = backscattered(psi)
            err = np.abs(pb - pb_ref)
            ts = np.concatenate([r[0] for r in results[lab]])
            cores = np.mean([r[1] for r in results[lab]])
            hlo = loop_body_counts(compiled)
            row = dict(what=lab, dtype=dtype, rate=work / np.median(ts), lo=work / ts.max(), hi=work / ts.min(),
                       cores=cores, err_max=err.max(), err_mean=abs(pb.mean() - pb_ref.mean()),
                       norm=float(np.max(np.abs(np.sum(np.abs(psi) ** 2, axis=-1) - 1))), hlo=hlo)
            rows.append(row)
            print(f"{dtype} {lab:55s} {row['rate'] / 1e6:7.1f} M/s [{row['lo'] / 1e6:.0f}, {row['hi'] / 1e6:.0f}] "
                  f"cpu/wall {cores:.2f}  P_b err max {row['err_max']:.1e} mean {row['err_mean']:.1e}  "
                  f"|norm-1| {row['norm']:.1e}  loop body {hlo}", flush=True)
    if args.out:
        write(args.out, env, bw, rows, " ".join(sys.argv[1:]) or "(defaults)", spread)


def write(path, env, bw, rows, cmd, spread):
    lines = [f"\n## {env['date']} — `python benchmarks/layout_prototype.py {cmd}`\n",
             f"- device: {env['device']}", f"- {env['versions']}", f"- git {env['commit']}; {env['load']}"]
    for dt, (b, lo, hi) in bw.items():
        lines.append(f"- copy bandwidth {dt}: {b / 1e9:.1f} GB/s read+write (range {lo / 1e9:.1f}-{hi / 1e9:.1f})")
    lines.append(f"- workload: wow, open chain N = {N_SITES}, {N_SAMPLES} samples, 300 K, α = 2 eV/Å, dt = {DT} fs, "
                 f"{DURATION:g} fs; P_b error against the core at order 4, dt = 0.0025 fs, float64 "
                 f"(its difference to dt = 0.005 fs: {spread:.0e})")
    lines += ["", "| dtype | program | M sample·site·steps/s (median) | [min, max] | CPU s / wall s | "
                  "P_b error, max over samples | P_b error of the mean | max abs(norm - 1) | loop body: fusions, copies, other |",
              "|---|---|---|---|---|---|---|---|---|"]
    for r in rows:
        h = r["hlo"]
        lines.append(f"| {r['dtype']} | {r['what']} | {r['rate'] / 1e6:.0f} | [{r['lo'] / 1e6:.0f}, {r['hi'] / 1e6:.0f}] | "
                     f"{r['cores']:.2f} | {r['err_max']:.1e} | {r['err_mean']:.1e} | {r['norm']:.0e} | "
                     f"{h.get('fusion', '?')}, {h.get('copy', '?')}, {h.get('other', '?')} |")
    with open(path, "a") as f:
        f.write("\n".join(lines) + "\n")
    print(f"appended to {path}")


if __name__ == "__main__":
    main()
