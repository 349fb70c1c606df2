"""``quantum``: chosen internal modes as quantum oscillators in a truncated Fock basis (wow.fock),
the electron coupled to them through the model's own coupling, backscattering resolved by the
change of the modes' occupations (docs/model.md, "Lattice dynamics" and "Quantum modes").

State: the electron's amplitudes gain one leading axis per quantum mode (axes in increasing mode
index j), holding DVR points during propagation: ψ[α_1, ..., α_m, samples, sites]. The other
internal modes are classical and moved by another backend, ``others``: absent (u = 0), frozen (their
thermal sample) or wow (exact harmonic motion). The model sees the lattice coordinates

    u = u_cl + Σ_j e_{nj} ℓ_j x_{α_j}        (shape (*dims, B, N): one lattice per DVR point)

so its layers are evaluated at every DVR point; the coupling is linear in Q_j, so in the truncated
Fock space this is exactly Q_j's truncated matrix, and the split-operator step converges to expm of
the truncated electron x Fock Hamiltonian (tested).

Step (Strang, second order): P(K h/2) · E(h)^K · P(K h/2), with P the phonon phases
exp(-iω_j(n+1/2)τ), diagonal in Fock, applied in the DVR as the d x d matrix Vᵀ diag(...) V per mode,
E the classical backend's step around the model's sub-step, K = ``phonon_every``. Consecutive
phonon halves are merged (one d x d matrix per mode every K steps); the half left pending at a
frame is applied when ψ is observed (``view``). The phonon layers change ψ between steps, so the
backend asks for ψ whole (``whole_electron``).

With the chain electron the CM does not act on the electron here (no recoil phase: the CM kinetic
energy at fixed total momentum would depend on the phonons' crystal momentum too; a 1/N effect left
out): validation refuses recoil with quantum modes on the chain. The density-density model
(wow.Continuum) has it exactly (the internal modes carry no mechanical momentum, so its sector Q is
the lattice's whatever the phonons do): its recoil phase is the model's, untouched here. Order 4 is
refused for both.
"""

from __future__ import annotations

import dataclasses
import math

import jax
import jax.numpy as jnp
import numpy as np

from .. import fock, lattice
from ..lattice import Chain, SiteState
from ..units import HBAR
from .base import Start, lattice_params
from .frozen import Frozen
from .prescribed import Prescribed


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantumParams:
    """Traced arrays of a quantum run. classical: the classical lattice's parameters; u_q (*dims, 1, N):
    the quantum modes' displacement at each DVR point (Å); U_full, U_half: per mode (d, d) phonon
    propagators over K dt and K dt/2 in the DVR; V: per mode (d, d) DVR -> Fock; W: per ring pair
    (d², d²) standing -> running; q_pair: |q| of each pair (1/Å); q_half: π/a; mask_cl (N-1,): 1 for
    the classical modes that are present."""

    classical: object
    u_q: jax.Array
    U_full: tuple
    U_half: tuple
    V: tuple
    W: tuple
    q_pair: jax.Array
    q_half: jax.Array
    mask_cl: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantumStart:
    """The initial lattice of a block: the classical modes on the sites (SiteState (B, N)) and the
    quantum modes' occupations n0 (B, m) in the analysis basis."""

    sites: SiteState
    n0: jax.Array


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class QuantumLattice:
    """The carried lattice: the classical backend's state and the step counter (for the phonon
    layers every K steps)."""

    classical: object
    i: jax.Array


@dataclasses.dataclass(frozen=True)
class Quantum:
    """chain; others: the classical backend (Frozen, absent as Frozen with u = 0, or Prescribed);
    others_name: 'absent' | 'frozen' | 'wow'; modes (axis order), dims, pairs, half_axis (see
    wow.fock), basis, K (phonon_every)."""

    chain: Chain
    others: object
    others_name: str
    modes: tuple
    dims: tuple
    pairs: tuple
    half_axis: int
    basis: str
    K: int
    whole_electron = True

    @property
    def static_coordinates(self) -> bool:
        return self.others.static_coordinates

    @property
    def m(self) -> int:
        return len(self.modes)

    # -- the initial state ------------------------------------------------------------------------
    def draw(self, key, T, statistics: str, real, p: QuantumParams | None = None) -> Start:
        """Thermal Fock occupations of the quantum modes (clipped to n_max; in the running basis
        n_+ + n_- <= n_max) and the classical sample of the other modes (quantum modes removed; no
        velocities unless they move). p given: the classical widths from its traced K/M and M (the
        Fock draw is piecewise constant in T and in ω: it has no pathwise derivative)."""
        kf, kc = jax.random.split(key)
        n0 = lattice.sample_fock(kf, self.chain, T)[jnp.asarray(self.modes) - 1]
        n0, clipped = self.clip(n0)
        if p is None:
            s = lattice.sample_modes(kc, self.chain, T, statistics, real)
            sites = self.classical_sites(s.Q, s.P)
        else:
            lp = p.classical
            s = lattice.sample_modes(kc, self.chain, T, statistics, real, omega2=lp.omega2, mass=lp.mass)
            sites = self.classical_sites(s.Q, s.P, lp.mass)
        return Start(sites=sites, P_R=s.P_R, extra={"n0": n0, "clipped": clipped})

    def clip(self, n0):
        nmax = jnp.asarray(self.dims, jnp.int32) - 1
        clipped = jnp.any(n0 > nmax)
        n0 = jnp.minimum(n0, nmax)
        for ia, ib in (self.pairs if self.basis == "running" else ()):  # |n_+, n_-> needs n_+ + n_- <= n_max
            clipped = clipped | (n0[ia] + n0[ib] > nmax[ia])
            n0 = n0.at[ib].set(jnp.minimum(n0[ib], nmax[ia] - n0[ia]))
        return n0, clipped

    def mask(self, real) -> np.ndarray:
        m = np.ones(self.chain.N - 1)
        m[np.array(self.modes) - 1] = 0.0
        if self.others_name == "absent":
            m[:] = 0.0
        return jnp.asarray(m, real)

    def classical_sites(self, Q, P, mass=None) -> SiteState:
        """Sites of the classical modes of a mode sample (quantum modes removed; P only when they
        move); mass: a traced M instead of the chain's."""
        mask = self.mask(Q.dtype)
        P = P * mask if self.others_name == "wow" else jnp.zeros_like(P)
        return lattice.to_sites(self.chain, lattice.ModeSample(Q=Q * mask, P=P, P_R=jnp.zeros((), Q.dtype)), mass)

    def prepare(self, sites: SiteState) -> SiteState:
        """The classical modes of a given lattice: its components along the quantum modes removed."""
        M = self.chain.mass_ev
        return self.classical_sites(lattice.sites_to_modes(self.chain, sites.u),
                                    lattice.sites_to_modes(self.chain, M * sites.v))

    def initial_lattice(self, start: Start) -> QuantumStart:
        return QuantumStart(sites=start.sites, n0=start.extra["n0"])

    def initial_electron(self, psi, lat0: QuantumStart, p: QuantumParams):
        """ψ_e (B, N) times each sample's Fock product state (occupations n0 in the analysis basis)
        as DVR amplitudes: (*dims, B, N)."""
        phi = jax.vmap(lambda n: self.dvr_of_fock(n, p, psi.dtype))(lat0.n0)  # (B, *dims)
        phi = jnp.moveaxis(phi, 0, -1)[..., None]  # (*dims, B, 1)
        return phi * psi.reshape((1,) * self.m + psi.shape)

    def dvr_of_fock(self, n0, p: QuantumParams, dtype):
        c = fock.fock_product(n0, self.dims, dtype)
        if self.basis == "running":  # c holds (n_+, n_-) on each pair: back to (n_c, n_s) with W†
            c = fock.apply_pairs(c, self.pairs, tuple(jnp.conj(W.T) for W in p.W))
        return fock.apply_modes(c, tuple(V.T for V in p.V))

    # -- the loop -------------------------------------------------------------------------------
    def start(self, lat0: QuantumStart, e0, p: QuantumParams, sub, ops):
        return QuantumLattice(self.others.start(lat0.sites, e0, p.classical, sub, ops), jnp.zeros((), jnp.int32))

    def at_dvr(self, u, p: QuantumParams):
        """Classical displacements (B, N) plus the quantum modes' at every DVR point: (*dims, B, N)."""
        return u.reshape((1,) * self.m + u.shape) + p.u_q

    def coordinates(self, lat, p: QuantumParams):
        cl = lat.classical if isinstance(lat, QuantumLattice) else lat
        return {"u": self.at_dvr(self.others.coordinates(cl, p.classical)["u"], p)}

    def _phonons(self, e, Us, ops):
        return ops.start(fock.apply_modes(ops.amplitudes(e), Us))

    def step(self, e, lat: QuantumLattice, p: QuantumParams, sub, ops):
        Us = jax.tree_util.tree_map(lambda a, b: jnp.where(lat.i == 0, a, b), p.U_half, p.U_full)
        e = jax.lax.cond(lat.i % self.K == 0, lambda e_: self._phonons(e_, Us, ops), lambda e_: e_, e)
        at_dvr = dataclasses.replace(ops, evolve=lambda e_, coords: ops.evolve(e_, {"u": self.at_dvr(coords["u"], p)}))
        e, cl = self.others.step(e, lat.classical, p.classical, sub, at_dvr)
        return e, QuantumLattice(cl, lat.i + 1)

    def view(self, e, lat: QuantumLattice, p: QuantumParams, ops):
        """ψ at a step boundary where a phonon group ends (every frame): its pending half applied."""
        return jax.lax.cond(lat.i > 0, lambda e_: self._phonons(e_, p.U_half, ops), lambda e_: e_, e)

    def finish(self, lat: QuantumLattice, p: QuantumParams, sub) -> SiteState:
        return self.others.finish(lat.classical, p.classical, sub)

    def traced_params(self, p: QuantumParams, lp, dt) -> QuantumParams:
        """p with the quantum modes' DVR displacements u_q and phonon propagators recomputed in jnp
        from traced lattice parameters lp (K/M and M) and step dt: what d/dspring and d/dmass go
        through (build_quantum makes the same arrays on the host from the static chain)."""
        modes = np.array(self.modes) - 1
        w = lattice.traced_frequencies(self.chain, lp.omega2, p.u_q.dtype)[modes]
        ell = jnp.sqrt(HBAR / (2 * lp.mass * w))
        E = lattice.mode_matrix(self.chain)[:, modes]
        m, N = self.m, self.chain.N
        u_q = jnp.zeros(self.dims + (1, N), p.u_q.dtype)
        for i, d in enumerate(self.dims):
            shape = [1] * m + [1, 1]
            shape[i] = d
            x = jnp.asarray(fock.dvr(d - 1)[0], p.u_q.dtype)
            u_q = u_q + (ell[i] * x).reshape(shape) * jnp.asarray(E[:, i], p.u_q.dtype).reshape([1] * m + [1, N])
        cplx = p.U_full[0].dtype

        def Us(tau):
            return tuple((V.T.astype(cplx) @ (jnp.exp(-1j * w[i] * (jnp.arange(V.shape[0]) + 0.5) * tau)[:, None]
                                              * V.astype(cplx))) for i, V in enumerate(p.V))

        return dataclasses.replace(p, classical=lp, u_q=u_q, U_full=Us(self.K * dt), U_half=Us(self.K * dt / 2))

    # -- observables ------------------------------------------------------------------------------
    def frame_coordinates(self, sites: SiteState, p: QuantumParams):
        """The lattice at a step boundary as the model reads it: classical sites plus the quantum
        modes' displacement at every DVR point, (*dims, B, N)."""
        return {"u": self.at_dvr(sites.u, p)}

    def lattice_energy(self, sites: SiteState, p: QuantumParams):
        """The classical modes' energy per sample (B,) (eV); wow.run adds the quantum modes'
        Σ_j ħω_j (<n_j> + 1/2) from the frames' 'n_mean' (the backend sees no ψ here)."""
        return self.others.lattice_energy(sites, p.classical)

    def to_fock(self, psi, p: QuantumParams):
        """DVR amplitudes -> Fock amplitudes (standing basis) on every mode axis."""
        return fock.apply_modes(psi, p.V)

    def analysis(self, psi, p: QuantumParams):
        """Fock amplitudes in the analysis basis (running waves on the ring pairs when asked)."""
        c = self.to_fock(psi, p)
        return fock.apply_pairs(c, self.pairs, p.W) if self.basis == "running" else c

    def observe(self, psi, sites, p: QuantumParams, model, mp) -> dict:
        """The model's frame tallies over all Fock states, and per mode the mean occupation 'n_mean'
        and the weight in the top level 'top' (B, m), and the phonons' crystal momentum 'P_ph' (B,):
        Σ_pairs ħq <n_+ - n_-> + (ħπ/a)<n_{N/2}> on the ring (0 on the open chain)."""
        m = self.m
        c = self.to_fock(psi, p)
        if getattr(model, "transport", False):
            # the transport frames read the coupling at the lattice: in the DVR it is diagonal (the
            # truncated Q_j at each point), so the model's sums over the DVR axes are the expectations
            # of the electron x phonon operators; the other tallies are the same in either basis
            out = model.observe(psi, mp, self.frame_coordinates(sites, p))
        else:
            out = model.observe(c, mp)
        pop = jnp.sum(jnp.abs(c) ** 2, axis=-1)  # (*dims, B)
        marg = [jnp.sum(pop, axis=tuple(a for a in range(m) if a != i)) for i in range(m)]  # (d_i, B)
        real = pop.dtype
        out["n_mean"] = jnp.stack([jnp.arange(mg.shape[0], dtype=real) @ mg for mg in marg], axis=-1)
        out["top"] = jnp.stack([mg[-1] for mg in marg], axis=-1)
        P_ph = jnp.zeros(pop.shape[-1], real)
        every = tuple(range(m)) + (c.ndim - 1,)  # all but the samples
        for (ia, ib), q in zip(self.pairs, p.q_pair):
            z = jnp.sum(jnp.conj(fock.ladder(c, ia)) * fock.ladder(c, ib), axis=every)  # <a_c ψ|a_s ψ>
            P_ph = P_ph + HBAR * q * (-2.0 * jnp.imag(z))  # <n_+ - n_-> = -2 Im z
        if self.half_axis >= 0:
            P_ph = P_ph + HBAR * p.q_half * out["n_mean"][:, self.half_axis]
        out["P_ph"] = P_ph
        return out

    def tallies(self, psi0, psi_f, lat0, lat_f, Q, model, mp, p: QuantumParams):
        """Per-sample final populations and backscattered weights of every Fock state of the analysis
        basis, (B, *dims) each, the backscattered weight per Fock state and crystal momentum
        'back_k' (B, *dims, N) (the Δn resolution and the momentum budget are
        wow.tally.quantum_summary), and the model's split amplitudes of every Fock state,
        (B, Π dims x m), for the coherent split."""
        c = self.analysis(psi_f, p)
        pop, back = model.weights(c, mp)
        _, back_k = model.crystal_weights(c, mp)
        amps = model.split_amplitudes(jnp.moveaxis(c, -2, 0), mp)
        return ({"pop": jnp.moveaxis(pop, -1, 0), "back": jnp.moveaxis(back, -1, 0),
                 "back_k": jnp.moveaxis(back_k, -2, 0)}, amps.reshape(amps.shape[0], -1))


def build_quantum(cfg, real, free):
    """(Quantum backend, QuantumParams) of a validated cfg with dynamics='quantum'."""
    c, ql = cfg.chain, cfg.quantum
    cplx = jnp.complex128 if np.dtype(real) == np.float64 else jnp.complex64
    modes, dims = ql.sorted_modes(), ql.dims()
    nmax = tuple(d - 1 for d in dims)
    dv = [fock.dvr(v) for v in nmax]
    w = lattice.mode_frequencies(c)[np.array(modes) - 1]
    ell = np.sqrt(HBAR / (2 * c.mass_ev * w))
    E = lattice.mode_matrix(c)[:, np.array(modes) - 1]  # (N, m)
    m, N = len(modes), c.N
    u_q = np.zeros(dims + (1, N))
    for i in range(m):
        shape = [1] * m + [1, 1]
        shape[i] = dims[i]
        u_q = u_q + (ell[i] * dv[i][0]).reshape(shape) * E[:, i].reshape([1] * m + [1, N])
    K = ql.phonon_every

    def Us(tau):
        return tuple(jnp.asarray(V.T @ np.diag(np.exp(-1j * wi * (np.arange(len(x)) + 0.5) * tau)) @ V, cplx)
                     for wi, (x, V) in zip(w, dv))

    pairs, half = fock.ring_pairs(c, modes), fock.half_axis(c, modes)
    if ql.others == "wow":
        others = Prescribed(c, free=free, equal_steps=True)
    else:
        others = Frozen(c)
    backend = Quantum(chain=c, others=others, others_name=ql.others, modes=modes, dims=dims, pairs=pairs,
                      half_axis=half, basis=ql.basis, K=K)
    f = lambda a: jnp.asarray(a, real)
    p = QuantumParams(classical=lattice_params(c, real), u_q=f(u_q), U_full=Us(K * cfg.dt), U_half=Us(K * cfg.dt / 2),
                      V=tuple(f(V) for _, V in dv),
                      W=tuple(jnp.asarray(fock.running_wave_matrix(nmax[ia]), cplx) for ia, _ in pairs),
                      q_pair=f([fock.mode_wavevector(c, modes[i]) for i, _ in pairs]), q_half=f(math.pi / c.a),
                      mask_cl=backend.mask(real))
    return backend, p


def hbar_omega(cfg) -> np.ndarray:
    """ħω_j (eV) of the quantum modes in axis order."""
    modes = cfg.quantum.sorted_modes()
    return HBAR * lattice.mode_frequencies(cfg.chain)[np.array(modes) - 1]
