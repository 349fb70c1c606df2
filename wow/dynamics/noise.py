"""``noise``: Haken-Strobl-Reineker (HSR) dephasing, on-site white noise on a frozen lattice.

The lattice is the frozen thermal sample (static disorder; at T = 0 the perfect chain), and every
site's energy carries white noise ε_n(t), <ε_n(t) ε_m(t')> = ħ²Γ δ_nm δ(t - t'), Γ (1/fs) the decay
rate of every site coherence: averaged over the noise, ρ obeys dρ/dt = -(i/ħ)[H, ρ] - Γ(ρ - diag ρ)
(wow.theory, HSR block: closed forms of the MSD, D = 2 t0² a²/(ħ²Γ), and more).

How: the chain's Strang sub-step has site-phase half layers at both ends (the model's site layer,
V/2 · B/2 · B · B/2 · V/2); each of them gets fresh, independent site phases e^{-iφ_n} (handed to
the model as coords['kick'] = (φ_lead, φ_trail)), so one sub-step averages to D · U · D with D the
dephasing channel e^{-Γh/2} on coherences: the Strang splitting of the Lindblad generator, second
order in h for every noise-averaged mean. The loop merges a sub-step's trailing half with the next
one's leading half (their phases add: two independent draws, the channel e^{-Γh}).

Phases (``Noise.kind``): 'binary' (default) φ_n = ±θ with equal probability, cos θ = e^{-Γh/4}:
E[e^{-i(φ_n - φ_m)}] = cos²θ = e^{-Γh/2}; 'gaussian' φ_n ~ N(0, Γh/2), the same average. Every
ensemble mean (MSD, velocity correlation, E_e) is linear in that average, so both kinds give the
same means; only sample-to-sample fluctuations differ, and a binary draw is one random bit per
site (~30x less random-number work than a normal deviate).

The noise's keys: each sample's stream is its own (``noise_key``, a per-sample tally, from the
sample's key), split once per sub-step, so results do not depend on the chunking.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp

from ..errors import ConfigError
from ..lattice import SiteState
from .base import Start, thermal_sites
from .frozen import Frozen

KINDS = ("binary", "gaussian")
#: Folded into a sample's key to make its noise stream (independent of its lattice sample).
NOISE_STREAM = 0x6E6F6973


@dataclasses.dataclass(frozen=True)
class Noise:
    """Dephasing noise (``Config.noise``, with dynamics='noise'): rate Γ (1/fs, >= 0), the decay rate
    of site coherences (<ε_n(t) ε_m(t')> = ħ²Γ δ_nm δ(t - t')); kind 'binary' or 'gaussian' site
    phases (the same averaged dynamics; module doc)."""

    rate: float = 1.0
    kind: str = "binary"


def validate_noise(noise, cfg) -> None:
    if not isinstance(noise, Noise):
        raise ConfigError(f"noise={noise!r}: dynamics='noise' needs noise=wow.Noise(rate=Γ in 1/fs)")
    r = noise.rate
    if isinstance(r, bool) or not isinstance(r, (int, float)) or not math.isfinite(r) or r < 0:
        raise ConfigError(f"noise.rate={r!r} is out of range: allowed a finite number >= 0 (1/fs)")
    if noise.kind not in KINDS:
        raise ConfigError(f"noise.kind={noise.kind!r}: allowed {', '.join(map(repr, KINDS))}")
    if cfg.order != 2:
        raise ConfigError(f"order={cfg.order!r} with dynamics='noise': the composition's negative sub-step has "
                          "no noise of negative variance; allowed: 2")


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NoiseParams:
    """Traced: the rate Γ (1/fs)."""

    rate: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class NoiseLattice:
    """The carried lattice: the frozen sites (B, N) and each sample's noise key (B, 2)."""

    sites: SiteState
    key: jax.Array


def phases(key, n: int, h, rate, kind: str, real):
    """Two independent half layers' site phases (2, n) (radians) for a sub-step of length h."""
    if kind == "gaussian":
        return jnp.sqrt(rate * h / 2) * jax.random.normal(key, (2, n), jnp.float32).astype(real)
    words = -(-n // 32)
    bits = jax.random.bits(key, (2, words), jnp.uint32)
    bits = (bits[..., None] >> jnp.arange(32, dtype=jnp.uint32).reshape(1, 1, 32)) & 1
    sign = 1.0 - 2.0 * bits.reshape(2, 32 * words)[:, :n].astype(real)
    theta = jnp.arccos(jnp.exp(-rate * h / 4))
    return theta * sign


@dataclasses.dataclass(frozen=True)
class Dephasing(Frozen):
    """The frozen thermal lattice with HSR noise (module doc); kind: 'binary' | 'gaussian'."""

    kind: str = "binary"
    static_coordinates = False
    reversible = False  # fresh noise every step: no inverse

    def draw(self, key, T, statistics: str, real) -> Start:
        sites, P_R = thermal_sites(key, self.chain, T, statistics, real)
        return Start(sites=self.prepare(sites), P_R=P_R,
                     extra={"noise_key": jax.random.fold_in(key, NOISE_STREAM)})

    def initial_lattice(self, start: Start):
        return NoiseLattice(start.sites, start.extra["noise_key"])

    def coordinates(self, lat, p):
        return {"u": (lat.sites if isinstance(lat, NoiseLattice) else lat).u}

    def step(self, e, lat: NoiseLattice, p: NoiseParams, sub, ops):
        keys = jax.vmap(jax.random.split)(lat.key)  # (B, 2, 2): the next key, this sub-step's draw
        N = lat.sites.u.shape[-1]
        phi = jax.vmap(lambda k: phases(k, N, sub.h, p.rate, self.kind, lat.sites.u.dtype))(keys[:, 1])
        coords = {**self.coordinates(lat, p), "kick": (phi[:, 0], phi[:, 1])}
        return ops.evolve(e, coords), NoiseLattice(lat.sites, keys[:, 0])

    def finish(self, lat: NoiseLattice, p, sub):
        return lat.sites
