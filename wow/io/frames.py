"""Frame-by-frame arrays of saved samples (the trajectories group of a results file)."""

from __future__ import annotations

from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .. import lattice
from ..electron import band, k_grid
from ..ensemble import EnsembleResult
from ..units import HBAR
from ..ensemble import seed_key


@partial(jax.jit, static_argnames=("chain", "statistics", "frozen"))
def lattice_frames(keys, T, times, chain, statistics, frozen):
    """u_n at the frame times and the internal lattice energy, per sample key, on the device."""
    real = times.dtype

    def one(key):
        s = lattice.sample_modes(key, chain, T, statistics, real)
        if frozen:
            st = lattice.to_sites(chain, s)
            u = jnp.broadcast_to(st.u, (times.shape[0], chain.N))
            v = jnp.zeros_like(u)
        else:
            st = jax.vmap(lambda t: lattice.harmonic_motion(chain, s, t))(times)
            u, v = st.u, st.v
        b = u[:, 1:] - u[:, :-1] if chain.boundary == "open" else jnp.roll(u, -1, axis=1) - u
        e_lat = 0.5 * chain.mass_ev * jnp.sum(v**2, 1) + 0.5 * chain.spring * jnp.sum(b**2, 1)
        return u, e_lat

    return jax.vmap(one)(keys)


def trajectory_frames(res: EnsembleResult, n: int | None = None) -> dict:
    """Frame-by-frame arrays of a run made with save_density=True: the recorded density and momentum
    frames, the CM momentum, and the lattice displacements u_n(t) with the energies (the first n
    samples, or all).

    u_n(t) is the engine's own record (traces['u']); the internal lattice energy is rebuilt on the
    device from each sample's key (the same key and sampler the engine
    uses: sample s of seed is key s of split(PRNGKey(seed), n)), by the exact normal-mode solution
    (``lattice.harmonic_motion``; constant for a frozen lattice). The energies come from the
    recorded frames: E_band = sum_k ε(k)|ψ~(k)|², E_recoil = <(Q - ħk)²/(2NM)>, and E_lattice
    (internal, constant for wow)."""
    cfg = res.config
    if "density" not in res.traces:
        raise ValueError("trajectory_frames needs a run with Config(save_density=True)")
    c = cfg.chain
    real = jnp.float64 if cfg.dtype == "float64" else jnp.float32
    keys = jax.random.split(seed_key(res.seed), res.n_samples)
    times = jnp.asarray(res.times, real)

    u, e_lat = lattice_frames(keys, jnp.asarray(cfg.temperature, real), times, c, cfg.statistics,
                               cfg.dynamics == "frozen")
    k = k_grid(c.N, c.a)
    order = np.argsort(k, kind="stable")
    w = np.asarray(res.traces["momentum"])
    eps = band(k, cfg.electron.t0, c.a)
    Q = np.asarray(res.per_sample["P_R0"]) + HBAR * cfg.k0
    e_rec = np.sum(w * (Q[:, None, None] - HBAR * k) ** 2, -1) / (2 * c.N * c.mass_ev)
    out = {
        "sample_index": np.arange(res.n_samples),
        "times": np.asarray(res.times),
        "x": np.arange(c.N) * c.a,
        "k": k[order],
        "density": np.asarray(res.traces["density"]),
        "momentum": w[..., order],
        "u": np.asarray(res.traces["u"]) if "u" in res.traces else np.asarray(u),
        "E_band": np.sum(w * eps, -1),
        "E_recoil": e_rec,
        # the rebuilt free harmonic motion is the lattice only where it feels no force
        "E_lattice": np.asarray(e_lat) if cfg.dynamics in ("frozen", "wow") else np.full(np.shape(e_lat), np.nan),
    }
    for name in ("P_R", "P_b", "x_mean", "k_mean", "norm"):
        out[name] = np.asarray(res.traces[name])
    if n is not None:
        out = {k: (v if k in ("times", "x", "k") else v[:n]) for k, v in out.items()}
    return out
