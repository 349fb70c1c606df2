"""The chain's hand-written adjoint of its whole sub-steps (TightBinding.whole_back, used by reverse
mode with checkpoint_every='reversible' through wow.propagate.adjoint_steps) against JAX's own
reverse mode: one sub-step against jax.vjp (every layer kind: bonds, site phases, recoil; ring and
open, odd N; a leading axis), and whole gradients of the ensemble tallies against the plain scan's
jax.grad and the vjp-based reversible path, in every differentiable parameter, at orders 2 and 4,
on the frozen and wow lattices. float64, rel 1e-10."""

import dataclasses
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import ensemble
from wow.models import build
from wow.propagate import propagate

FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _close(a, b, rtol=1e-10):
    """Every leaf of a equals b's to rtol of the largest entry of that leaf (a tree of arrays)."""
    for x, y in zip(jax.tree_util.tree_leaves(a), jax.tree_util.tree_leaves(b)):
        x, y = np.asarray(x), np.asarray(y)
        scale = max(np.max(np.abs(y)), 1e-300)
        assert np.max(np.abs(x - y)) <= rtol * scale, (np.max(np.abs(x - y)), scale)


@pytest.mark.parametrize("N,boundary,D,recoil,lead", [
    (10, "ring", 0.0, True, False), (9, "open", 0.5, True, False), (10, "open", 0.5, False, True)])
def test_one_substep_against_jax_vjp(N, boundary, D, recoil, lead):
    """whole_back at the state after one whole sub-step gives the state before it, the cotangent
    before it and the cotangents of the angles and of the recoil phases, as jax.vjp of the sub-step
    (advance, then close_joined) does: bonds only or site phases too, recoil or not, ring or open
    (odd N: the padded site), with a leading axis on the state (the Kubo copy's layout)."""
    cfg = wow.Config(chain=wow.Chain(N=N, boundary=boundary), electron=wow.Electron(alpha=2.0, D=D, sigma=2.0),
                     recoil=recoil, dt=0.05, check_inside=False)
    model, mp = build(cfg, jnp.float64)
    B, h = 3, jnp.asarray(0.3)  # a long step: large angles, where the rational rotation's rate matters
    k = jax.random.split(jax.random.PRNGKey(3), 4)
    shape = (2, B, N) if lead else (B, N)
    psi = jax.lax.complex(jax.random.normal(k[0], shape), jax.random.normal(k[1], shape))
    z = model.start(psi, mp)
    ct = model.start(jax.lax.complex(jax.random.normal(k[2], shape), jax.random.normal(k[3], shape)), mp)
    u = 0.3 * jax.random.normal(k[0], (1, B, N) if lead else (B, N))
    fixed = model.fixed(h, mp, jnp.linspace(-0.5, 0.5, B)) if recoil else None
    if lead and fixed is not None:
        fixed = fixed[None]

    def sub_step(z, angles, fixed_pair):
        outer, even, odd = angles
        rot = model._rotation  # noqa: SLF001 (the test builds the layers from given angles)
        lay = wow.models.chain.Layers(trail=outer, even=None if even is None else rot(even), odd=rot(odd))
        join = model.join(None, lay)
        f = None if fixed_pair is None else jax.lax.complex(*fixed_pair)
        return model.close_joined(model.advance(z, lay, join, f), join)

    angles = model.whole_angles({"u": u}, h, mp)
    pair = None if fixed is None else (jnp.real(fixed), jnp.imag(fixed))
    after, pull = jax.vjp(sub_step, z, angles, pair)
    ct_z, ct_angles, ct_pair = pull(ct)
    z0, ct0, ct_ang, ct_fix = jax.jit(model.whole_back)(after, ct, angles, fixed)
    _close(z0, z, 1e-12)
    _close(ct0, ct_z, 1e-12)
    _close(ct_ang, ct_angles, 1e-12)
    if recoil:
        _close(ct_fix, ct_pair, 1e-12)
    else:
        assert ct_fix is None

    # the same with the cotangents of the layers before the recoil deferred (advance_back(defer=True)
    # leaves them out; deferred_back reads them from the state and cotangent before the sub-step),
    # the way the adjoint's backward loop reads them one iteration late
    def deferred(after, ct, angles, fixed):
        add = partial(jax.tree_util.tree_map, jnp.add)
        zc, cc, c_close = model.close_back(after, ct, angles[0])
        zb, cb, part, c_fix = model.advance_back(zc, cc, angles, fixed, defer=True)
        late = model.deferred_back(zb, cb, angles)
        assert (part[0] is None) == recoil and (late[0] is None) != recoil  # the join's read late with recoil
        both = [p if q is None else (q if p is None else add(p, q)) for p, q in zip(part, late)]
        return zb, cb, (add(both[0], c_close), both[1], both[2]), c_fix

    z1, ct1, ang1, fix1 = jax.jit(deferred)(after, ct, angles, fixed)
    _close(z1, z, 1e-12)
    _close(ct1, ct_z, 1e-12)
    _close(ang1, ct_angles, 1e-12)
    if recoil:
        _close(fix1, ct_pair, 1e-12)


@pytest.mark.parametrize("N,boundary,D,recoil", [(10, "ring", 0.5, True), (9, "open", 0.5, False), (8, "open", 0.0, True)])
def test_angle_pullback_against_jax_vjp(N, boundary, D, recoil):
    """angles_back / angles_params (the coordinates' cotangent, every ChainParams leaf's, and h's)
    equal jax.vjp of whole_angles: bonds only or site phases too, ring or open (odd N), with static
    hopping and site offsets, a leading axis of samples."""
    cfg = wow.Config(chain=wow.Chain(N=N, boundary=boundary), recoil=recoil, dt=0.05, check_inside=False,
                     electron=wow.Electron(alpha=2.0, D=D, sigma=2.0, bond_defects=((1, 0.2),), onsite_defects=((2, -0.3),)))
    model, mp = build(cfg, jnp.float64)
    k = jax.random.split(jax.random.PRNGKey(7), 3)
    u, h = 0.3 * jax.random.normal(k[0], (3, N)), jnp.asarray(0.3)
    leaves, tree = jax.tree_util.tree_flatten(jax.eval_shape(lambda: model.whole_angles({"u": u}, h, mp)))
    ct = jax.tree_util.tree_unflatten(tree, [jax.random.normal(kk, x.shape) for kk, x in
                                             zip(jax.random.split(k[1], len(leaves)), leaves)])

    @partial(jax.jit, compiler_options=FAST)
    def both(u, mp, h, ct):
        _, pull = jax.vjp(lambda c, p, h: model.whole_angles(c, h, p), {"u": u}, mp, h)
        hand_c, stats = model.angles_back({"u": u}, h, mp, ct)
        return pull(ct), (hand_c, *model.angles_params(stats, mp))
    (ct_c, ct_p, ct_h), (hand_c, hand_p, h_ct) = both(u, mp, h, ct)
    _close(hand_c, ct_c, 1e-12)
    _close(hand_p, ct_p, 1e-12)
    _close(h_ct / h, ct_h, 1e-12)
    assert float(jnp.max(jnp.abs(ct_p.alpha))) > 1e-3 and (D == 0 or float(jnp.abs(ct_p.D)) > 1e-3)


@pytest.mark.parametrize("boundary", ["ring", "open"])
def test_lattice_pullback_against_jax_vjp(boundary):
    """The wow lattice's step_back / step_params (the paired recurrence: the pair's cotangent with
    the electron's read of u added, K/M's and h's cotangents) equal jax.vjp of its step; the frozen
    lattice's pass the displacements' cotangent through."""
    cfg = wow.Config(chain=wow.Chain(N=9, boundary=boundary), dt=0.5, check_inside=False, dynamics="wow")
    program, inputs = ensemble.program_of(cfg, steps_per_frame=1, reversible=True)
    backend, lp = program.backend, inputs.lattice
    assert backend.paired
    k = jax.random.split(jax.random.PRNGKey(11), 5)
    lat = wow.lattice.StepPair(u=jax.random.normal(k[0], (2, 9)), d=0.1 * jax.random.normal(k[1], (2, 9)))
    ct = wow.lattice.StepPair(u=jax.random.normal(k[2], (2, 9)), d=jax.random.normal(k[3], (2, 9)))
    ct_read = {"u": jax.random.normal(k[4], (2, 9))}
    passing = wow.propagate.ElectronOps(evolve=lambda _, c: c, force=None, amplitudes=None, start=None)

    def step(lat, lp, h):
        return backend.step(None, lat, lp, wow.propagate.Substep(h=h, h_next=h), passing)
    h = jnp.asarray(cfg.dt)

    @partial(jax.jit, compiler_options=FAST)
    def both(lat, lp, h, ct, ct_read):
        _, pull = jax.vjp(step, lat, lp, h)
        sub = wow.propagate.Substep(h=h, h_next=h)
        hand_lat, stats = backend.step_back(lat, lp, sub, ct, ct_read)
        return pull((ct_read, ct)), (hand_lat, *backend.step_params(stats, lp, sub))
    (ct_lat, ct_lp, ct_h), (hand_lat, hand_lp, h_ct) = both(lat, lp, h, ct, ct_read)
    sub = wow.propagate.Substep(h=h, h_next=h)
    _close(hand_lat, ct_lat, 1e-12)
    _close(hand_lp.omega2, ct_lp.omega2, 1e-12)
    _close(h_ct / h, ct_h, 1e-12)
    assert abs(float(ct_lp.omega2)) > 1e-6
    frozen = dataclasses.replace(cfg, dynamics="frozen")
    fb = ensemble.program_of(frozen, steps_per_frame=1, reversible=True)[0].backend
    sites = wow.lattice.SiteState(u=lat.u, v=lat.d)
    back, _ = fb.step_back(sites, lp, sub, wow.lattice.SiteState(u=ct.u, v=ct.d), ct_read)
    _close(back, wow.lattice.SiteState(u=ct.u + ct_read["u"], v=ct.d), 1e-15)


BASE = wow.Config(chain=wow.Chain(N=8, boundary="ring"), electron=wow.Electron(sigma=2.0, alpha=2.0, D=0.5),
                  temperature=300.0, cm_momentum=0.5, recoil=True, dt=0.0625, duration=0.375, n_frames=2,
                  check_inside=False)
CASES = {
    "wow": BASE,
    "wow-open-odd-bonds-only": dataclasses.replace(BASE, chain=wow.Chain(N=9, boundary="open"),
                                                   electron=wow.Electron(sigma=2.0, alpha=2.0)),
    "wow-order4-no-recoil": dataclasses.replace(BASE, order=4, recoil=False),
    "frozen-order4": dataclasses.replace(BASE, dynamics="frozen", order=4),
}


@pytest.mark.slow  # 30-60 s each on a shared 2-core machine (compile-bound); the default suite's guard is
# test_gradient_tallies.py::test_reversible_reverse_mode_equals_forward_mode (frozen, wow; order 2)
@pytest.mark.parametrize("name", list(CASES))
def test_reversible_gradient_equals_plain_reverse_mode(name):
    """Reverse mode through the propagator with reversible steps (the hand-written adjoint: no
    stored steps) equals the plain scan's jax.grad to 1e-10 relative, for every traced input: the
    electron's parameters (α, D, t0, the static offsets, 1/2NM, ...), the lattice's (K/M, M), dt,
    the sectors Q and the initial lattice (through which the temperature acts); orders 2 and 4 (the
    latter's unequal sub-steps move the wow lattice by its flow), wow and frozen, recoil on and
    off, ring and open (odd N)."""
    cfg = CASES[name]
    B, N = 2, cfg.chain.N
    k = jax.random.split(jax.random.PRNGKey(5), 5)
    u = 0.1 * jax.random.normal(k[0], (B, N))
    lat0 = wow.lattice.SiteState(u=u - u.mean(-1, keepdims=True), v=0.01 * jax.random.normal(k[1], (B, N)))
    psi0 = jnp.broadcast_to(ensemble.initial_packet(cfg), (B, N))
    Q = jnp.asarray([0.4, -0.2])
    wk = jax.random.normal(k[2], (B, N))

    def grad(reversible):
        program, inputs = ensemble.program_of(cfg, steps_per_frame=cfg.steps_per_frame, reversible=reversible)

        def loss(mp, lp, dt, Q, lat0):
            ins = dataclasses.replace(inputs, model=mp, lattice=lp, dt=dt)
            psi, lat, frames = propagate(program, ins, psi0, lat0, Q)
            return (jnp.sum(frames["P_b"]) + 0.3 * jnp.sum(frames["k_mean"]) + jnp.sum(wk * jnp.abs(psi) ** 2)
                    + jnp.sum(wk * lat.u) + jnp.sum(wk * lat.v))
        g = jax.jit(jax.grad(loss, argnums=(0, 1, 2, 3, 4)), compiler_options=FAST)
        return g(inputs.model, inputs.lattice, inputs.dt, Q, lat0)

    adj, plain = grad(True), grad(False)
    _close(adj, plain)
    alpha = float(plain[0].alpha)
    assert abs(alpha) > 1e-6  # the loss does depend on α: not a 0 = 0 test
