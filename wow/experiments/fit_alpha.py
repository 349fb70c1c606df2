"""Fit the electron-lattice coupling α (and optionally the deformation potential D) so that the
simulated backscattering probability P_b(T) matches a target curve given in a file with its errors.

The model is the ensemble mean of P_b after the run, at each target temperature, as a smooth
function of α through the whole propagator (wow.gradients): the thermal samples are fixed normals
(from --seed) scaled by the widths at each T, the same at every iteration, so χ² is deterministic
and its gradient exact. The fit is wow.fit's (optax L-BFGS; errors from the curvature of χ²;
resumable: the optimiser state is kept in --out). --seeds adds the spread of the fitted α over
ensemble seeds (the error a finite ensemble adds). At the fitted values the script also prints the
sensitivities of P_b at each T, d ln P_b / d ln α and d ln P_b / d ln T (forward mode): in the Born
(single scattering) regime of a classical lattice P_b ∝ α² T, so both are 2 and 1; below them
multiple scattering and saturation are at work.

Target file (CSV): '#' comments, a header 'T [K],P_b [],sigma []', rows of numbers (or HDF5, see
wow.fit.read_target). --synthetic ALPHA makes one instead, from wow itself at α = ALPHA with another
seed, one independent ensemble per temperature (like a measurement), written beside --out.
"""

from __future__ import annotations

import math
import sys
import time

from . import common

EXPERIMENT = "fit_alpha"
FITTABLE = ("electron.alpha", "electron.D")


def build_parser():
    p = common.parser(EXPERIMENT, __doc__.split("\n\n")[0], samples=32, duration=10.0)
    g = p.add_argument_group("physics")
    g.add_argument("--target", default=None, help="target P_b(T) file (.csv, .h5); with --synthetic: where to write it "
                                                  "(default: beside --out, NAME_target.csv)")
    g.add_argument("--synthetic", type=float, default=None, metavar="ALPHA",
                   help="make the target from wow at α = ALPHA (eV/Å), seed --seed + 1000 + i per temperature")
    g.add_argument("--temperatures", type=common.float_list, default=[30.0, 100.0, 200.0, 300.0, 400.0],
                   help="T (K) of the synthetic target")
    g.add_argument("--target-samples", type=int, default=None, help="samples per synthetic point (default --samples)")
    g.add_argument("--fit", type=common.str_list(("alpha", "D")), default=["alpha"], help="parameters to fit")
    g.add_argument("--start", type=common.float_list, default=[1.0], help="starting values, in --fit's order (eV/Å, eV)")
    g.add_argument("--N", type=int, default=128, help="atoms (open chain)")
    g.add_argument("--sigma", type=float, default=10.0, help="packet width σ (Å)")
    g.add_argument("--alpha", type=float, default=2.0, help="α (eV/Å) when not fitted")
    g.add_argument("--D", type=float, default=0.0, help="D (eV) when not fitted")
    g.add_argument("--dynamics", choices=("frozen", "wow", "ehrenfest"), default="wow")
    g.add_argument("--statistics", choices=("classical", "quantum"), default="classical")
    g.add_argument("--no-recoil", action="store_true", help="leave the CM recoil out")
    g.add_argument("--seeds", type=int, default=1, help="refit with this many ensemble seeds (>= 2: their spread)")
    g.add_argument("--max-iter", type=int, default=50, help="optimiser iterations at most")
    return p


def config(args, alpha=None, D=None, temperature=300.0):
    import wow

    return wow.Config(chain=wow.Chain(N=args.N, boundary="open"),
                      electron=wow.Electron(alpha=args.alpha if alpha is None else alpha,
                                            D=args.D if D is None else D, sigma=args.sigma),
                      temperature=temperature, statistics=args.statistics, dynamics=args.dynamics,
                      recoil=not args.no_recoil, dt=args.dt, duration=args.duration, n_frames=1, dtype=args.dtype)


def model_of(cfg, n_samples: int, names=("electron.alpha",)):
    """A wow.fit.Model of the ensemble-mean P_b at temperatures x (K) of ``cfg`` (a classical
    lattice, T > 0 as its reference), fittable in ``names`` (Config names, wow.gradients); the
    key is the ensemble's (PRNGKey(seed): the samples of wow.run(cfg, n_samples, seed))."""
    import jax
    import jax.numpy as jnp

    from wow import fit as F
    from wow import gradients as G

    G.check_names(cfg, tuple(names) + ("temperature",))
    lay = G.layout(cfg)
    units = {n: G.PARAMETERS[n] for n in names}

    def predict(params, x, key):
        ks = jax.random.split(key, n_samples)
        one = lambda T: G.ensemble_means({**params, "temperature": T}, lay, ks)["P_b"]  # noqa: E731
        return jax.vmap(one)(jnp.asarray(x, lay.program()[1].dt.dtype))

    parameters = tuple(F.Parameter(n, u[0], lower=u[1], upper=u[2], doc=u[3]) for n, u in units.items())
    refused = dict(G.refusals_of(cfg))
    refused.update({n: "not fitted by this model (fit_alpha fits " + ", ".join(names) + ")"
                    for n in G.PARAMETERS if n not in names and n not in refused})
    name = (f"<P_b>(T) of {n_samples} samples, {cfg.dynamics}, {cfg.statistics}, N={cfg.chain.N}, "
            f"sigma={cfg.electron.sigma:g}, dt={cfg.dt:g}, {cfg.t_final:g} fs, recoil={cfg.recoil}, "
            f"alpha={cfg.electron.alpha:g}, D={cfg.electron.D:g}, {cfg.dtype}")
    return F.Model(predict, parameters, name=name, refused=refused, uses_key=True)


def synthetic_target(args, alpha: float, path):
    """P_b(T) ± its standard error from wow.run at α, one independent ensemble per temperature."""
    import numpy as np

    import wow
    from wow import fit as F

    n = args.target_samples or args.samples
    ys, es = [], []
    for i, T in enumerate(args.temperatures):
        r = wow.run(config(args, alpha=alpha, temperature=T), n, seed=args.seed + 1000 + i,
                    allow_crossing=args.allow_crossing)
        ys.append(r.stats["P_b"][0])
        es.append(r.stats["P_b"][1])
    t = F.Target(x=np.array(args.temperatures), y=np.array(ys), sigma=np.array(es), x_name="T", x_unit="K",
                 y_name="P_b", y_unit="", source=str(path))
    F.write_target(path, t)
    return t


def sensitivities(cfg, n_samples: int, seed: int, values: dict, temperatures):
    """d ln P_b / d ln α and d ln P_b / d ln T at each temperature (forward mode, the fitted values)."""
    import jax
    import jax.numpy as jnp
    import numpy as np

    from wow import gradients as G

    lay = G.layout(cfg)
    ks = G.keys(seed, n_samples)
    real = lay.program()[1].dt.dtype
    base = {n: jnp.asarray(v, real) for n, v in values.items()}
    base.setdefault("electron.alpha", jnp.asarray(cfg.electron.alpha, real))

    def pb(p):
        return G.ensemble_means(p, lay, ks)["P_b"]

    @jax.jit
    def one(T):
        p = {**base, "temperature": T}
        d = jax.jacfwd(pb)(p)
        return pb(p), d["electron.alpha"] * p["electron.alpha"], d["temperature"] * T

    out = []
    for T in temperatures:
        v, da, dT = (float(a) for a in one(jnp.asarray(T, real)))
        out.append((T, v, da / v if v > 0 else math.nan, dT / v if v > 0 else math.nan))
    return np.array(out)


def main(argv=None):
    p = build_parser()
    args = p.parse_args(argv)
    common.check(p, args, N=(8, None, False), sigma=(0, None, True), temperatures=(0, None, True),
                 seeds=(1, None, False), max_iter=(1, None, False))
    if args.target_samples is not None and args.target_samples < 2:
        p.error(f"--target-samples={args.target_samples}: allowed an integer >= 2")
    if len(args.start) != len(args.fit):
        p.error(f"--start {args.start}: give one starting value per --fit parameter {args.fit}")
    if args.target is None and args.synthetic is None:
        p.error("give --target FILE (P_b(T) with errors) or --synthetic ALPHA (make one from wow)")
    from pathlib import Path

    if args.synthetic is not None:
        args.target = Path(args.target) if args.target else args.out.with_name(args.out.stem + "_target.csv")
        if args.target.suffix.lower() != ".csv":
            p.error(f"--target {args.target}: with --synthetic the target is written as CSV (.csv)")
        if args.target.exists() and not args.overwrite:
            p.error(f"--target {args.target} exists: --synthetic would replace it (give --overwrite, or another path)")
        if not args.target.parent.exists() and args.target.parent != args.out.parent:
            p.error(f"--target {args.target}: directory {args.target.parent} does not exist")

    import wow
    from wow import fit as F
    from wow import gradients as G

    names = tuple({"alpha": "electron.alpha", "D": "electron.D"}[n] for n in args.fit)
    ref = config(args, temperature=300.0)
    try:
        wow.validate(ref)
        model = model_of(ref, args.samples, names)
        start = dict(zip(names, args.start))
        for n, v in start.items():
            model.parameter(n)
            if not math.isfinite(v):
                raise F.FitError(f"--start {n}={v}: must be finite")
        if args.synthetic is None:
            target = F.read_target(args.target)
            if target.x_unit != "K" or (target.x <= 0).any():
                raise F.FitError(f"target {args.target}: x must be temperatures in K, all > 0 "
                                 f"(got unit {target.x_unit!r}, min {target.x.min():g})")
    except (wow.ConfigError, F.FitError) as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    common.make_out_dir(args)
    log = common.log_of(args)
    t0 = time.perf_counter()
    if args.synthetic is not None:
        path = args.target
        target = synthetic_target(args, args.synthetic, path)
        if log:
            log(f"synthetic target (α = {args.synthetic:g} eV/Å, seeds {args.seed + 1000}..): {path}, "
                f"{time.perf_counter() - t0:.1f} s")
    cb = (lambda it, chi2, values: log(f"iteration {it}: chi2 = {chi2:.6g}, "
                                       + ", ".join(f"{n} = {v:.6g}" for n, v in values.items()))) if log else None
    try:
        res = F.fit(model, target, start, seed=args.seed, max_iter=args.max_iter, checkpoint=args.out,
                    overwrite=args.overwrite, callback=cb, progress=False)
        spread = None
        if args.seeds >= 2:
            spread = F.seed_spread(model, target, start, [args.seed + s for s in range(args.seeds)],
                                   max_iter=args.max_iter, progress=False)
    except F.FitError as e:
        p.exit(2, f"{p.prog}: error: {e}\n")
    sens = sensitivities(ref, args.samples, args.seed, res.values, target.x)
    head = str(res) + (f"\n  spread over seeds {list(spread.seeds)}: " + ", ".join(
        f"{n} = {spread.mean[n]:.5g} ± {spread.std[n]:.2g} (std)" for n in spread.names) if spread else "")
    if args.synthetic is not None:
        head += f"\n  synthetic target made at α = {args.synthetic:g} eV/Å"
    rows = [["T (K)", "P_b target", "P_b fit", "(y - f)/σ", "d ln P_b / d ln α", "d ln P_b / d ln T"]]
    for i, (T, v, ea, eT) in enumerate(sens):
        rows.append([f"{T:g}", f"{target.y[i]:.4f} ± {target.sigma[i]:.4f}", f"{res.predictions[i]:.4f}",
                     f"{(target.y[i] - res.predictions[i]) / target.sigma[i]:+.2f}", f"{ea:.3f}", f"{eT:.3f}"])
    if log:
        log(f"fit and sensitivities: {time.perf_counter() - t0:.1f} s")
    common.report(args, head, rows, lambda plot: F.figure_fit(res, model))
    return 0


if __name__ == "__main__":
    sys.exit(main())
