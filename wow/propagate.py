"""The one time loop: an electron model (wow.models) and a lattice backend (wow.dynamics) meet in
one ``lax.scan``.

    for each frame:                                  (n_frames, static)
        for each step:                               (steps per frame: traced, or static for gradients)
            for each sub-step h of the composition:  (COMPOSITIONS[order]: one Strang step, or three)
                lattice backend step around  evolve(e, coords) = model sub-step of length h
                with the model's layer coefficients at the lattice coordinates the backend hands it
        observe: the model's frame tallies (+ the backend's: lattice, phonons)

Neither side knows the other's internals; each declares what it needs (wow.models, wow.dynamics):

* the backend's ``static_coordinates`` (frozen): the coordinates never change, so the model's
  ``layers`` are computed once, outside the loop, for every sub-step length;
* the backend's ``whole_electron`` (ehrenfest reads ψ for its force, quantum applies phonon layers
  to it): every sub-step ends with ψ whole. Otherwise (frozen, wow) the loop carries the model's
  trailing half layer and hands it to ``model.join`` with the next sub-step's layers (first same as
  last: the outermost half layers of neighbouring sub-steps are one layer), closing it only where
  ψ is observed.

Order (``Plan.order``): 2 is one Strang step per dt; 4 composes three of them, of lengths w1 dt,
w0 dt, w1 dt (Yoshida's triple jump, w1 = 1/(2 - 2^{1/3}), w0 = 1 - 2 w1 < 0). Each sub-step is a
whole backend step (lattice and electron), so the lattice moves consistently; a symmetric
second-order step composed this way is fourth order.

Step counts: with ``Plan.steps_per_frame = None`` the number of steps per frame is traced
(``Inputs.steps_per_frame``, a while loop): a run with another dt or duration at the same frame
count reuses the compiled program. A static count (an int) gives a ``lax.scan``, which reverse-mode
differentiation (and jax.checkpoint around blocks of steps) needs.
"""

from __future__ import annotations

import dataclasses
from functools import partial
from typing import Callable

import jax
import jax.numpy as jnp
import numpy as np

from . import sanity

#: Sub-step weights (fractions of dt) of one step of each order: 2 is one Strang step; 4 is
#: Yoshida's triple jump w1, w0, w1 with w1 = 1/(2 - 2^{1/3}), w0 = 1 - 2 w1 (a negative step).
_CBRT2 = 2.0 ** (1.0 / 3.0)
COMPOSITIONS = {2: (1.0,), 4: (1 / (2 - _CBRT2), -_CBRT2 / (2 - _CBRT2), 1 / (2 - _CBRT2))}


@dataclasses.dataclass(frozen=True)
class Plan:
    """The loop's static shape: composition order, frames, steps per frame (None: traced, from
    Inputs.steps_per_frame; an int: a static scan), whether frames record the lattice
    displacements ('u'), the lattice energy ('E_lattice', from the backend's ``lattice_energy``:
    transport runs), whether the electron carries the Kubo copy φ(0) = vψ(0) beside ψ on a
    leading axis of size 2 (``kubo``: the model's ``current`` makes φ; ψ alone is returned), and
    checkpoint_every (with a static count: the steps of a frame run in
    blocks of this many under jax.checkpoint, so reverse mode keeps one state per block and
    recomputes a block's steps: memory ~ (steps/b + b) states, O(sqrt(steps)) at b ~ sqrt(steps)).
    reversible (with a static count, a backend whose lattice runs backwards alone: frozen, wow):
    every sub-step leaves ψ whole, and reverse mode stores no step at all: it runs the steps
    backwards from the frame's final state; forward mode is then not available (a custom_vjp).
    adjoint (with reversible, a model with ``advance_back``: the chain): the steps run merged as
    without ``reversible`` and the backward pass is the model's hand-written adjoint
    (``adjoint_steps``); False: whole sub-steps and jax.vjp of each recovered step
    (``reversible_steps``; the same numbers to rounding, kept as the reference).

    watch: look at the lattice every ``Inputs.watch_every`` steps (wow.sanity.watch: hoppings that
    changed sign, the smallest bond stretch; each look stands for the steps since the last, fewer at a
    frame's end), accumulated per frame into the frames' sign_flips_hi / sign_flips_lo / min_bond
    (wow.run makes per-sample tallies of them; wow.sanity.watch_every chooses the stride); a static
    lattice is looked at once and counted every step. The steps then run in blocks of that many
    (whatever steps_per_frame and checkpoint_every say: wow.run's traced loop)."""

    order: int = 2
    n_frames: int = 1
    steps_per_frame: int | None = None
    save_lattice: bool = False
    checkpoint_every: int | None = None
    transport: bool = False
    kubo: bool = False
    reversible: bool = False
    watch: bool = False
    adjoint: bool = True


@dataclasses.dataclass(frozen=True)
class Program:
    """What to run (static under jit): an electron model, a lattice backend, the loop's plan."""

    model: object
    backend: object
    plan: Plan


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Inputs:
    """Traced inputs of a run: the model's and the backend's parameters, the step dt (fs), the
    number of steps per frame (used when Plan.steps_per_frame is None) and the lattice watch's stride
    (used when Plan.watch; traced so that a dt study still compiles once)."""

    model: object
    lattice: object
    dt: jax.Array
    steps_per_frame: jax.Array
    watch_every: jax.Array | None = None


@jax.tree_util.register_dataclass
@dataclasses.dataclass(frozen=True)
class Substep:
    """One sub-step as a backend sees it: its length h and the next sub-step's h_next (fs)."""

    h: jax.Array
    h_next: jax.Array


@dataclasses.dataclass(frozen=True)
class ElectronOps:
    """What a backend may do with the electron (closures over the model and its parameters):
    evolve(e, coords) one model sub-step at the coordinates; force(e, coords) -∂<H_e>/∂coords (a
    dict like coords; needs ψ whole); amplitudes(e) / start(ψ) to and from complex amplitudes."""

    evolve: Callable
    force: Callable
    amplitudes: Callable
    start: Callable


def _stack(trees):
    return jax.tree_util.tree_map(lambda *x: jnp.stack(x), *trees)


def _negate(tree):
    return jax.tree_util.tree_map(jnp.negative, tree)


def _zeros_like_shape(tree):
    return jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), tree)


def _force(model, mp):
    def force(e, coords):
        grad = jax.grad(lambda c: jnp.sum(model.energy(e, c, mp)))(coords)
        return jax.tree_util.tree_map(jnp.negative, grad)
    return force


def _electron(program: Program, inputs: Inputs, hs, coords0, whole: bool = False):
    """The electron side of the loop: (prepare, evolve, view, extras).

    prepare(e) -> the carried electron; evolve(carried, coords, x) -> one sub-step, x holding the
    sub-step's constants (its Substep, the model's ``fixed`` part and ``extras``); view(carried) -> the
    model state with nothing pending (ψ at the current time); extras: per sub-step, what is computed
    once outside the loop (a static lattice's layers and merged first layers)."""
    model, backend, mp = program.model, program.backend, inputs.model
    layers = [model.layers(coords0, h, mp) for h in hs] if backend.static_coordinates else None
    if backend.whole_electron or whole:
        return _whole(model, mp, layers, len(hs))
    if layers is not None:
        return _merged_static(model, layers)
    return _merged_moving(model, mp, jax.eval_shape(lambda: model.layers(coords0, hs[0], mp).trail), len(hs))


def _whole(model, mp, layers, n):
    """Every sub-step ends with ψ whole (its trailing half applied); layers given: a static lattice."""
    static = layers is not None
    extras = [{"layers": lay, "join": model.join(None, lay)} for lay in layers] if static else [{}] * n

    def evolve(z, coords, x):
        lay = x["layers"] if static else model.layers(coords, x["sub"].h, mp)
        join = x["join"] if static else model.join(None, lay)
        z = model.advance(z, lay, join, x["fixed"])
        if getattr(lay, "lead", None) is None and hasattr(model, "close_joined"):
            return model.close_joined(z, join)  # the leading half's coefficients, not made again
        return model.close(z, lay.trail)

    return (lambda z: z), evolve, (lambda z: z), extras


def _merged_static(model, layers):
    """A static lattice, ψ not read between steps: every sub-step's coefficients are fixed, so the
    carried z is opened by the last sub-step's trailing half, which then is the pending half of every
    step, and each sub-step's merged first layer is computed once, outside the loop."""
    extras = [{"layers": layers[i], "join": model.join(layers[i - 1].trail, layers[i])} for i in range(len(layers))]
    last = layers[-1].trail

    def evolve(z, coords, x):
        return model.advance(z, x["layers"], x["join"], x["fixed"])

    return (lambda z: model.close(z, _negate(last))), evolve, (lambda z: model.close(z, last)), extras


def _merged_moving(model, mp, trail_shape, n):
    """Moving coordinates, ψ not read between steps: carry (z, trailing half) and merge it into the
    next sub-step's first layer."""
    def evolve(carried, coords, x):
        z, trail = carried
        lay = model.layers(coords, x["sub"].h, mp)
        return model.advance(z, lay, model.join(trail, lay), x["fixed"]), lay.trail

    return (lambda z: (z, _zeros_like_shape(trail_shape))), evolve, (lambda c: model.close(*c)), [{}] * n


def substeps(plan: Plan, dt):
    """The sub-steps of one step: their lengths w·dt (COMPOSITIONS[plan.order]), each with the next's."""
    hs = [w * dt for w in COMPOSITIONS[plan.order]]
    return [Substep(h=hs[i], h_next=hs[(i + 1) % len(hs)]) for i in range(len(hs))]


def _lift(plan: Plan):
    """Coordinates (and the model's fixed part) as the electron's layers see them: with the Kubo
    copy the electron has one more leading axis (ψ, φ), so they gain a leading axis of size 1."""
    if not plan.kubo:
        return lambda tree: tree
    return lambda tree: jax.tree_util.tree_map(lambda x: x[None], tree)


def _one_step(backend, lp, base: ElectronOps, evolve, xs, lift=lambda tree: tree):
    """carry (e, lat) -> carry after one step: every sub-step a backend step around evolve."""
    def sub_step(carry, x):
        e, lat = carry
        ops = dataclasses.replace(base, evolve=lambda e_, coords: evolve(e_, lift(coords), x))
        return backend.step(e, lat, lp, x["sub"], ops)

    if len(xs) == 1:
        return lambda carry: sub_step(carry, xs[0])
    # the sub-steps of one step run as an inner lax.scan over their constants (not unrolled: XLA
    # fuses an unrolled chain of steps badly on the CPU, measured 2-4x slower per sub-step)
    stacked = _stack(xs)
    return lambda carry: jax.lax.scan(lambda c, x: (sub_step(c, x), None), carry, stacked)[0]


def _watched(step, program: Program, inputs: Inputs, lat0):
    """(the steps of a frame with the carry (e, lat, record), what the lattice ``lat0`` shows): the
    frame runs in blocks of inputs.watch_every steps (traced), the record adding after each block
    what its last lattice shows (wow.sanity.watch), weighted by the block's steps (no branch inside the step loop:
    a lax.cond per step cost ~5% there); a static lattice is looked at once, added per block."""
    model, backend, plan = program.model, program.backend, program.plan
    look = lambda lat: sanity.watch(model, backend.coordinates(lat, inputs.lattice), inputs.model, backend.chain)
    seen0 = look(lat0)
    every = inputs.watch_every
    n = inputs.steps_per_frame if plan.steps_per_frame is None else plan.steps_per_frame

    def steps(count):
        return lambda c: jax.lax.fori_loop(0, count, lambda _, c_: step(c_), c)

    def block(count, weight):
        def run(carry):
            e, lat, record = carry
            e, lat = steps(count)((e, lat))
            return e, lat, sanity.watch_add(record, seen0 if backend.static_coordinates else look(lat), weight)
        return run

    def frame(carry):
        carry = jax.lax.fori_loop(0, n // every, lambda _, c: block(every, every)(c), carry)
        rest = n % every
        return block(rest, rest)(carry)  # rest = 0: adds nothing, looks again at the last lattice
    return frame, seen0


def _repeat(step, plan: Plan, n_traced, unstep=None):
    """carry -> carry after the steps of one frame: a while loop over the traced count, or a static
    lax.scan (reverse-mode differentiable) when the plan fixes it."""
    if plan.steps_per_frame is None:
        return lambda carry: jax.lax.fori_loop(0, n_traced, lambda _, c: step(c), carry)
    if plan.reversible:
        return lambda carry: reversible_steps(step, unstep, plan.steps_per_frame, carry)
    if plan.checkpoint_every is not None:
        return _checkpointed(step, plan.steps_per_frame, plan.checkpoint_every)
    return lambda carry: jax.lax.scan(lambda c, _: (step(c), None), carry, None, length=plan.steps_per_frame)[0]


def _scan_steps(step, n: int):
    return lambda carry: jax.lax.scan(lambda c, _: (step(c), None), carry, None, length=n)[0] if n else carry


def _checkpointed(step, n: int, block: int):
    """carry -> carry after n steps: n // block blocks of ``block`` steps, each under jax.checkpoint
    (reverse mode stores only a block's first state and recomputes its steps), then the rest."""
    n_blocks, rest = divmod(n, max(1, min(block, n)))
    block = jax.checkpoint(_scan_steps(step, min(block, n)))

    def run(carry):
        carry = jax.lax.scan(lambda c, _: (block(c), None), carry, None, length=n_blocks)[0]
        return _scan_steps(step, rest)(carry)
    return run


def _inexact(x) -> bool:
    return jnp.issubdtype(jnp.result_type(x), jnp.inexact)


def reversible_steps(step, unstep, n: int, carry):
    """``step`` applied n times (a lax.scan), differentiated in reverse mode without storing any
    state: the backward pass runs ``unstep`` (step's exact inverse, up to rounding) from the final
    carry, and at each step takes the vector-Jacobian product of one ``step`` at the recovered
    state. Memory O(1) states per sample for any n; time ~ forward + (inverse + linearised step +
    its transpose) per step. The values closed over by step (the traced parameters, the
    coefficients) are hoisted by jax.closure_convert and receive their cotangents; unstep's receive
    none (it only reconstructs states). Rounding in the reconstruction grows like a random walk,
    ~sqrt(n) eps relative for unitary steps."""
    f, consts = jax.closure_convert(step, carry)
    g, gconsts = jax.closure_convert(unstep, carry)
    return _reversible(f, g, n, carry, tuple(consts), tuple(gconsts))


@partial(jax.custom_vjp, nondiff_argnums=(0, 1, 2))
def _reversible(f, g, n, carry, consts, gconsts):
    return jax.lax.scan(lambda c, _: (f(c, *consts), None), carry, None, length=n)[0]


def _reversible_fwd(f, g, n, carry, consts, gconsts):
    out = _reversible(f, g, n, carry, consts, gconsts)
    return out, (out, consts, gconsts)


def _zero_cotangent(x):
    return jnp.zeros_like(x) if _inexact(x) else np.zeros(jnp.shape(x), jax.dtypes.float0)


def _reversible_bwd(f, g, n, res, ct):
    out, consts, gconsts = res
    which = [i for i, c in enumerate(consts) if _inexact(c)]

    def f_of(c, diff):
        k = list(consts)
        for i, v in zip(which, diff):
            k[i] = v
        return f(c, *k)

    diff0 = tuple(consts[i] for i in which)

    def back(state, _):
        c, ct_c, acc = state
        prev = g(c, *gconsts)
        _, vjp = jax.vjp(f_of, prev, diff0)
        ct_prev, ct_k = vjp(ct_c)
        return (prev, ct_prev, jax.tree_util.tree_map(jnp.add, acc, ct_k)), None

    zero = jax.tree_util.tree_map(jnp.zeros_like, diff0)
    (_, ct_c, acc), _ = jax.lax.scan(back, (out, ct, zero), None, length=n)
    ct_consts = [_zero_cotangent(c) for c in consts]
    for i, v in zip(which, acc):
        ct_consts[i] = v
    return ct_c, tuple(ct_consts), tuple(_zero_cotangent(c) for c in gconsts)


_reversible.defvjp(_reversible_fwd, _reversible_bwd)


def adjoint_steps(program: Program, n: int, carry, args):
    """n steps from carry (e, lat) (ψ whole at both ends), differentiated in reverse mode by the
    model's hand-written adjoint (``step_angles`` / ``advance_back`` / ``close_back``, the chain's):
    nothing is stored.

    Forwards, the steps run merged as the library's loop runs them (each sub-step's outer half
    layer joined with the previous one's: angle a_s = outer_s + outer_{s-1}, the first alone, one
    trailing half closing the last). The backward pass runs them backwards from the final carry:
    each sub-step's lattice by backend.unstep, its electron and the electron's cotangent together
    in one pass of the same rotations (``advance_back``); a joined layer's angle cotangent goes to
    both sub-steps' outer angles. The cotangents of the layers before the recoil, and with them the
    sub-step's angle and lattice pullbacks, are read one sub-step late from the loop-carried state
    (``deferred_back``). Only the cheap linear pieces (angles from the coordinates and
    parameters, the lattice's own step and the coordinates it hands over, the recoil phases) go
    through jax.vjp. The same derivative as ``reversible_steps`` (and as plain reverse mode) to
    rounding (tests/test_adjoint.py). args: (model parameters, lattice parameters, dt, Q), all
    receiving their cotangents."""
    _check_reversible(program.backend)
    return _adjoint(program, n, carry, args)


def _adjoint_parts(program: Program, args):
    """What the adjoint's forward and backward passes share: per sub-step i, the coordinates and
    next lattice (lattice_of(lat, i)), the angles (angles_of(coords, i)), the recoil phases."""
    model, backend, plan = program.model, program.backend, program.plan
    mp, lp, dt, Q = args
    subs = substeps(plan, dt)
    lift = _lift(plan)
    passing = ElectronOps(evolve=lambda _, coords: coords, force=None, amplitudes=None, start=None)

    def lattice_of(lat, i, lp=lp, subs=subs):  # (the coordinates the electron sees, the lattice after)
        coords, lat = backend.step(None, lat, lp, subs[i], passing)
        return lift(coords), lat

    def angles_of(coords, i, mp=mp, subs=subs):
        return model.whole_angles(coords, subs[i].h, mp)

    fixed = [lift(model.fixed(sub.h, mp, Q)) for sub in subs]
    return subs, lattice_of, angles_of, fixed


def _joined(outer, prev, first):
    """The joined layer's angle outer + prev (prev: the previous sub-step's outer angle), or outer
    alone where ``first`` (the run's first sub-step; ``where``, not a product: prev may be anything there)."""
    return jax.tree_util.tree_map(lambda a, b: a + jnp.where(first, jnp.zeros_like(b), b), outer, prev)


@partial(jax.custom_vjp, nondiff_argnums=(0, 1))
def _adjoint(program, n, carry, args):
    model = program.model
    subs, lattice_of, angles_of, fixed = _adjoint_parts(program, args)
    n_sub = len(subs)

    def step(c, t):
        z, lat, prev = c
        for i in range(n_sub):
            coords, lat_next = lattice_of(lat, i)
            outer, even, odd = angles_of(coords, i)
            join = _joined(outer, prev, (t == 0) & (i == 0))
            z = model.step_angles(z, (join, even, odd), fixed[i])
            lat, prev = lat_next, outer
        return (z, lat, prev), None

    z, lat = carry
    prev = jax.eval_shape(lambda: angles_of(lattice_of(lat, 0)[0], 0)[0])
    prev = jax.tree_util.tree_map(lambda s: jnp.zeros(s.shape, s.dtype), prev)
    (z, lat, prev), _ = jax.lax.scan(step, (z, lat, prev), jnp.arange(n))
    return model.close(z, prev), lat


def _adjoint_fwd(program, n, carry, args):
    out = _adjoint(program, n, carry, args)
    return out, (out, args)


def _adjoint_bwd(program, n, res, ct):
    out, args = res
    model, backend = program.model, program.backend
    leaves, tree = jax.tree_util.tree_flatten(args)
    which = [i for i, x in enumerate(leaves) if _inexact(x)]
    diff0 = tuple(leaves[i] for i in which)

    def with_diff(diff):
        k = list(leaves)
        for i, v in zip(which, diff):
            k[i] = v
        return jax.tree_util.tree_unflatten(tree, k)

    subs, lattice_of, angles_of, _ = _adjoint_parts(program, args)
    n_sub = len(subs)

    def parts_of(diff):  # the pieces as functions of the differentiated leaves
        return _adjoint_parts(program, with_diff(diff))

    def fixed_of(diff):  # each sub-step's recoil phases as (Re, Im): real cotangents, no convention
        return [None if f is None else (jnp.real(f), jnp.imag(f)) for f in parts_of(diff)[3]]

    fixed, fixed_pull = jax.vjp(fixed_of, diff0)
    fixed_c = [None if f is None else jax.lax.complex(*f) for f in fixed]
    add = lambda a, b: jax.tree_util.tree_map(jnp.add, a, b)  # noqa: E731
    zeros = lambda tr: jax.tree_util.tree_map(jnp.zeros_like, tr)  # noqa: E731
    mp, lp, dt, _ = args
    last = n_sub - 1
    unlift = (lambda tree: jax.tree_util.tree_map(lambda x: x[0], tree)) if program.plan.kubo else (lambda tree: tree)

    def pull(lat, coords, i, ct_angles, ct_lat):
        """The angles' and the lattice's pullback of sub-step i: (ct of lat, hand-written statistics
        (model, lattice), JAX's parameter cotangents); by hand where the model and the backend
        write it (angles_back, step_back), else by jax.vjp."""
        zero = zeros(diff0)
        m = model.angles_back(coords, subs[i].h, mp, ct_angles)
        if m is None:
            _, angles_pull = jax.vjp(lambda c, d: parts_of(d)[2](c, i), coords, diff0)
            ct_coords, ct_d = angles_pull(ct_angles)
            m = (ct_coords, None)
        else:
            ct_d = zero
        step_back = getattr(backend, "step_back", None)
        b = None if step_back is None else step_back(lat, lp, subs[i], ct_lat, unlift(m[0]))
        if b is None:
            _, lattice_pull = jax.vjp(lambda l, d: parts_of(d)[1](l, i), lat, diff0)
            ct_lat, ct_d2 = lattice_pull((m[0], ct_lat))
            ct_d = add(ct_d, ct_d2)
            b = (ct_lat, None)
        return b[0], (m[1], b[1]), ct_d

    def select(c, a, b):  # a where c, else b (trees of the same shapes)
        return jax.tree_util.tree_map(lambda x, y: jnp.where(c, x, y), a, b)

    def plus(a, b):  # a sum where either side may be None (a layer's cotangent not read there)
        return b if a is None else (a if b is None else add(a, b))

    def settle(pend, z, ct_z, ct_next, ct_lat, j):
        """The pending sub-step j's angle cotangents completed from (z, ct_z), the state and
        cotangent before it (``deferred_back``), and its pullback: (ct of the lattice before j,
        statistics, parameter cotangents, its join's cotangent: the previous sub-step's outer angle's)."""
        lat_p, angles_p, part = pend
        ct_join, ct_even, ct_odd = (plus(a, b) for a, b in zip(part, model.deferred_back(z, ct_z, angles_p)))
        ct_lat, st, ct_d = pull(lat_p, lattice_of(lat_p, j)[0], j, (add(ct_next, ct_join), ct_even, ct_odd), ct_lat)
        return ct_lat, st, ct_d, ct_join

    def back(state, t):
        z, ct_z, lat, ct_lat, ct_next, acc, stats, acc_fixed, pend = state
        acc_fixed = list(acc_fixed)
        for i in reversed(range(n_sub)):  # lat: the lattice before sub-step i
            # The pullback of the sub-step after this one, one sub-step late: its angle cotangents
            # read from the loop-carried state (``deferred_back``), a buffer XLA cannot fuse the
            # backward sweep into. The electron's backward does not need it (the lattice does not
            # feel the electron). The run's last sub-step has none after it (masked out).
            real = (t < n - 1) | (i < last)
            ct_lat_p, st, ct_d, ct_join = settle(pend, z, ct_z, ct_next, ct_lat, i + 1 if i < last else 0)
            ct_lat, ct_next = select(real, ct_lat_p, ct_lat), select(real, ct_join, ct_next)
            stats = [add(a, select(real, b, zeros(b))) for a, b in zip(stats, st)]
            acc = add(acc, select(real, ct_d, zeros(ct_d)))
            coords = lattice_of(lat, i)[0]
            outer, even, odd = angles_of(coords, i)
            before = backend.unstep(lat, lp, subs[i - 1])  # the lattice before the previous sub-step
            first = (t == 0) & (i == 0)
            prev = angles_of(lattice_of(before, i - 1 if i else last)[0], i - 1 if i else last)[0]
            angles = (_joined(outer, prev, first), even, odd)
            z, ct_z, part, ct_fixed = model.advance_back(z, ct_z, angles, fixed_c[i], defer=True)
            pend = (lat, angles, part)
            if ct_fixed is not None:
                acc_fixed[i] = add(acc_fixed[i], ct_fixed)
            lat = before
        return (z, ct_z, lat, ct_lat, ct_next, acc, stats, acc_fixed, pend), None

    z, lat = out
    ct_z, ct_lat = ct
    lat = backend.unstep(lat, lp, subs[last])  # the lattice before the last sub-step
    coords = lattice_of(lat, last)[0]
    last_angles = angles_of(coords, last)
    z, ct_z, ct_next = model.close_back(z, ct_z, last_angles[0])
    # the hand-written statistics' shapes, from one pullback traced for its shapes only
    stats = jax.eval_shape(lambda: pull(lat, coords, last, last_angles, ct_lat)[1])
    stats = [zeros(s) for s in stats]
    part = jax.eval_shape(lambda: model.advance_back(z, ct_z, last_angles, fixed_c[last], defer=True)[2])
    pend = (lat, zeros(last_angles), zeros(part))  # nothing pending yet (masked out in the first iteration)
    state = (z, ct_z, lat, ct_lat, ct_next, zeros(diff0), stats, zeros(fixed), pend)
    (z, ct_z, _, ct_lat, ct_next, acc, stats, acc_fixed, pend), _ = jax.lax.scan(back, state, jnp.arange(n)[::-1])
    ct_lat, st, ct_d, _ = settle(pend, z, ct_z, ct_next, ct_lat, 0)  # the run's first sub-step
    stats = [add(a, b) for a, b in zip(stats, st)]
    acc = add(acc, ct_d)
    acc = add(acc, fixed_pull(acc_fixed)[0])
    ct_tree = [zeros(mp), zeros(lp), jnp.zeros_like(dt), zeros(args[3])]
    if stats[0] is not None:
        ct_tree[0], h_ct = model.angles_params(stats[0], mp)
        ct_tree[2] = ct_tree[2] + h_ct / dt
    if stats[1] is not None:
        ct_tree[1], h_ct = backend.step_params(stats[1], lp, subs[0])
        ct_tree[2] = ct_tree[2] + h_ct / dt
    hand = jax.tree_util.tree_leaves(tuple(ct_tree))
    ct_leaves = [_zero_cotangent(x) for x in leaves]
    for i, v in zip(which, acc):
        ct_leaves[i] = v + hand[i]
    return (ct_z, ct_lat), jax.tree_util.tree_unflatten(tree, ct_leaves)


_adjoint.defvjp(_adjoint_fwd, _adjoint_bwd)


def _check_reversible(backend):
    if not getattr(backend, "reversible", False) or backend.whole_electron:
        raise ValueError(f"{type(backend).__name__}: its lattice does not run backwards alone (reacts "
                         f"to the electron or draws noise): no reversible steps")


def _with_first(first, frames):
    """Frames of the scan (n_frames, B, ...) after the t = 0 frame (B, ...): (B, n_frames + 1, ...)."""
    return jax.tree_util.tree_map(lambda f, r: jnp.concatenate([f[:, None], jnp.moveaxis(r, 0, 1)], axis=1),
                                  first, frames)


def _unstep(program: Program, inputs: Inputs, subs, coords0, Q, base, lift):
    """carry -> carry one step earlier, the exact inverse of a step of whole sub-steps: the sub-steps
    in reverse order, each the lattice run back (backend.unstep), then the electron's Strang step
    of length -h at those coordinates (a palindrome of layers each odd in h: S(-h) = S(h)^-1)."""
    model, backend, mp, lp = program.model, program.backend, inputs.model, inputs.lattice
    _check_reversible(backend)
    _, evolve, _, extras = _electron(program, inputs, [-s.h for s in subs], coords0, whole=True)
    xs = [{"sub": Substep(h=-s.h, h_next=-s.h_next), "fixed": lift(model.fixed(-s.h, mp, Q)), **extra}
          for s, extra in zip(subs, extras)]

    def unstep(carry):
        e, lat = carry
        for sub, x in reversed(list(zip(subs, xs))):
            lat = backend.unstep(lat, lp, sub)
            e = evolve(e, lift(backend.coordinates(lat, lp)), x)
        return e, lat
    return unstep


@partial(jax.jit, static_argnames=("program",))
def propagate(program: Program, inputs: Inputs, psi0, lat0, Q):
    """Propagate a block of samples for n_frames x steps_per_frame steps of inputs.dt.

    psi0: the model's initial amplitudes in its block layout (chain: (B, N)); lat0: the lattice at
    t = 0 in the lattice block layout (samples first, sites last: SiteState of (B, N), or the
    backend's initial state); Q: (B,) the total momentum P_R(0) + ħk0 of each sample (the recoil
    sector). Returns (ψ at t_final as amplitudes (the backend's lead axes first), the lattice at
    t_final (SiteState), frames: name -> (B, n_frames + 1, ...), t = 0 included).
    """
    model, backend, plan = program.model, program.backend, program.plan
    mp, lp = inputs.model, inputs.lattice
    subs = substeps(plan, inputs.dt)
    hs = [sub.h for sub in subs]

    if plan.kubo:  # φ(0) = v ψ(0) at the t = 0 lattice, propagated beside ψ by the same steps
        psi0 = jnp.stack([psi0, model.current(psi0, backend.coordinates(lat0, lp), mp)])
    e0 = model.start(backend.initial_electron(psi0, lat0, lp), mp)
    base = ElectronOps(evolve=None, force=_force(model, mp), amplitudes=lambda e: model.amplitudes(e, mp),
                       start=lambda psi: model.start(psi, mp))
    lat = backend.start(lat0, e0, lp, subs[0], base)
    lift = _lift(plan)
    coords0 = lift(backend.coordinates(lat, lp))
    prepare, evolve, view, extras = _electron(program, inputs, hs, coords0, whole=plan.reversible)
    xs = [{"sub": sub, "fixed": lift(model.fixed(sub.h, mp, Q)), **extra} for sub, extra in zip(subs, extras)]
    step = _one_step(backend, lp, base, evolve, xs, lift)
    adjoint = plan.reversible and plan.adjoint and hasattr(model, "advance_back") and plan.steps_per_frame is not None
    unstep = _unstep(program, inputs, subs, coords0, Q, base, lift) if plan.reversible and not adjoint else None
    if plan.watch:
        steps, watch0 = _watched(step, program, inputs, lat)
    elif adjoint:
        steps = lambda carry: adjoint_steps(program, plan.steps_per_frame, carry, (mp, lp, inputs.dt, Q))  # noqa: E731
    else:
        steps = _repeat(step, plan, inputs.steps_per_frame, unstep)

    def settle(e, lat_):
        """ψ (amplitudes) and the lattice (SiteState) at the current step boundary."""
        z = backend.view(view(e), lat_, lp, base)
        return model.amplitudes(z, mp), backend.finish(lat_, lp, subs[0])

    def observe(e, lat_):
        psi, sites = settle(e, lat_)
        out = backend.observe(psi, sites, lp, model, mp)
        if plan.save_lattice:
            out["u"] = sites.u
        if plan.transport:
            out["E_lattice"] = backend.lattice_energy(sites, lp)
        return out

    def frame(carry, _):
        if not plan.watch:
            carry = steps(carry)
            return carry, observe(*carry)
        e_, lat_, seen = steps((*carry, sanity.watch_start(watch0)))
        return (e_, lat_), {**observe(e_, lat_), **seen}

    first = observe(prepare(e0), lat)
    if plan.watch:  # t = 0: no steps yet, the initial lattice's bonds
        first.update(sanity.watch_add(sanity.watch_start(watch0), watch0, 0))
    (e, lat), frames = jax.lax.scan(frame, (prepare(e0), lat), None, length=plan.n_frames)
    psi_f, lat_f = settle(e, lat)
    if plan.kubo:
        psi_f = psi_f[0]
    return psi_f, lat_f, _with_first(first, frames)
