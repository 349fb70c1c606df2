"""Derivatives of the ensemble tallies (wow.gradients) through the whole propagator, per parameter,
against central finite differences with Richardson extrapolation (wow.fdcheck: Ridders) at 1e-6
relative in float64, on tiny chains for the frozen, wow, ehrenfest and quantum lattices; reverse
mode with jax.checkpoint blocks against the plain scan and against forward mode; the ensemble
means against wow.run's at the same seed; the refusals (names, Fock-sampled T, T = 0, bounds).

Cost: one compiled (value, jvp) function per lattice (module fixtures), shared by the derivative
and by the finite differences (the value is the jvp's primal output at a zero tangent)."""

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import gradients as G
from wow.fdcheck import central_difference

BASE = wow.Config(chain=wow.Chain(N=12, boundary="ring"), electron=wow.Electron(sigma=2.0, alpha=2.0, D=0.5),
                  temperature=300.0, cm_momentum=0.5, recoil=True, dt=0.0625, duration=1.0, n_frames=1)  # θ within wow's bound (0.25)
QUANTUM = dataclasses.replace(BASE, dynamics="quantum", recoil=False, statistics="quantum",
                              quantum=wow.QuantumLattice(modes=(2,), n_max=2, others="wow"))
CONFIGS = {"frozen": dataclasses.replace(BASE, dynamics="frozen"), "wow": BASE,
           "ehrenfest": dataclasses.replace(BASE, dynamics="ehrenfest"), "quantum": QUANTUM}
N_SAMPLES, SEED = 3, 1
#: XLA's backend optimisation off: these tiny programs are compile-bound (about half the compile
#: time for ~10x the run time of a few milliseconds). Its exp/sin differ from the optimised ones at
#: ~1e-10 relative: a derivative and its finite differences always come from one compiled function.
FAST = {"xla_backend_optimization_level": 0, "xla_llvm_disable_expensive_passes": True}


def _outputs(means, quantum):
    names = ("P_b", "P_R") if quantum else ("P_b", "dE_b", "P_R")
    return jnp.stack([means[n] for n in names])


@pytest.fixture(scope="module", params=list(CONFIGS))
def compiled(request):
    """(cfg, p0, value_and_tangent): (P_b, dE_b, <P_R>) of the ensemble and its directional
    derivative, one compiled function per lattice."""
    cfg = CONFIGS[request.param]
    f, p0 = G.means_function(cfg, N_SAMPLES, seed=SEED)
    quantum = cfg.dynamics == "quantum"
    vt = jax.jit(lambda p, dp: jax.jvp(lambda q: _outputs(f(q), quantum), (p,), (dp,)), compiler_options=FAST)
    return cfg, p0, vt


def test_every_parameter_against_richardson_differences(compiled):
    """For every differentiable parameter of the run (α, D, t0, M, K, T where the sampler is
    reparameterised, the fixed P_R), the forward-mode derivative of (P_b, ΔE_b, <P_R>) equals the
    Ridders-extrapolated central difference to 1e-6 relative (error floor: the estimate's own)."""
    cfg, p0, vt = compiled
    assert set(p0) == set(G.differentiable(cfg))
    if cfg.dynamics == "quantum":
        assert "temperature" not in p0  # Fock-sampled: refused, tested below
    zero = {k: jnp.zeros_like(v) for k, v in p0.items()}
    # the parameters' own dtype: a weakly typed Python float would compile vt a second time
    value = lambda p: np.asarray(vt({k: jnp.asarray(v, p0[k].dtype) for k, v in p.items()}, zero)[0])  # noqa: E731
    point = {k: float(v) for k, v in p0.items()}
    # steps small enough to stay inside the flow's ω bound and away from T = 0
    est, err = central_difference(value, point, step={"chain.spring": 0.2, "chain.mass": 5.0, "temperature": 30.0})
    ds = {}
    for name in p0:
        d = ds[name] = np.asarray(vt(p0, {**zero, name: jnp.ones_like(p0[name])})[1])
        assert np.all(np.isfinite(d)), name
        # 1e-6 relative; the absolute floor is the differences' rounding (ε |f| / h ~ 1e-13)
        assert np.all(np.abs(d - est[name]) <= 1e-6 * np.abs(est[name]) + 1e-13), (name, d, est[name], err[name])
    # the tallies do depend on the parameters that matter (a test that cannot pass with zeros)
    for name in ("electron.alpha", "electron.t0", "chain.spring"):
        assert abs(est[name][0]) > 1e-4, name
    if cfg.dynamics in ("frozen", "wow") and cfg.statistics == "classical":
        # a classical harmonic lattice that does not react moves as sqrt(T) x (fixed normals), and the
        # electron sees it only through α u and D u: every tally is a function of α√T and D√T (P_R
        # fixed), so α ∂/∂α + D ∂/∂D = 2T ∂/∂T exactly
        lhs = p0["electron.alpha"] * ds["electron.alpha"] + p0["electron.D"] * ds["electron.D"]
        rhs = 2 * p0["temperature"] * ds["temperature"]
        assert np.allclose(lhs, rhs, rtol=1e-9, atol=1e-14), (lhs, rhs)


def test_value_is_wow_run_at_the_same_seed():
    """The differentiable ensemble is wow.run's: same keys, same samples, same means (to rounding,
    with the lattice flow's order chosen for the chain's own ω_max as wow.run does)."""
    cfg = CONFIGS["wow"]
    f, p0 = G.means_function(cfg, N_SAMPLES, seed=SEED, wrt=("electron.alpha",), omega_max=cfg.chain.omega_max)
    m = jax.jit(f)(p0)  # default compiler options as wow.run (FAST changes exp/sin at 1e-10)
    r = wow.run(cfg, N_SAMPLES, seed=SEED)
    assert abs(float(m["P_b"]) - r.stats["P_b"][0]) < 1e-13
    assert abs(float(m["dE_b"]) - r.stats["dE_b"][0]) < 1e-12 * max(1.0, abs(r.stats["dE_b"][0]))
    assert np.allclose(np.asarray(m["P_R_t"]), r.traces["P_R"].mean(0), rtol=0, atol=1e-12)


def test_checkpointed_reverse_mode_equals_plain_and_forward_mode():
    """Reverse mode with blocks of steps under jax.checkpoint equals the plain scan's to rounding and
    forward mode's to 1e-10 (frozen lattice: the cheapest program)."""
    cfg = dataclasses.replace(CONFIGS["frozen"], duration=0.75)  # 12 steps: blocks of 3 (+ none left)
    wrt = ("electron.alpha", "chain.spring", "temperature")
    grads, fs = {}, {}
    for ck in ("auto", None, 5, "reversible"):  # 5: 2 blocks of 5 and a rest of 2
        fs[ck], p0 = G.means_function(cfg, 2, seed=SEED, wrt=wrt, checkpoint_every=ck)
        grads[ck] = jax.jit(jax.grad(lambda p, f=fs[ck]: f(p)["P_b"]), compiler_options=FAST)(p0)
    fwd = jax.jit(jax.jacfwd(lambda p: fs[None](p)["P_b"]), compiler_options=FAST)(p0)
    for name in wrt:
        g0 = float(grads[None][name])
        assert abs(g0) > 0, name
        for ck in ("auto", 5, "reversible"):
            assert abs(float(grads[ck][name]) - g0) <= 1e-13 * abs(g0), (name, ck)
        assert abs(float(fwd[name]) - g0) <= 1e-10 * abs(g0), name


def test_reversible_reverse_mode_equals_forward_mode(compiled):
    """Reverse mode that runs the steps backwards (checkpoint_every='reversible': no stored states;
    the wow lattice by the inverse recurrence, the electron by its Strang step of -h) equals forward
    mode's derivative of (P_b, ΔE_b, <P_R>) to rounding in every parameter (recoil and site
    energies on); the lattices that react to the electron (Ehrenfest) or carry phonon layers
    (quantum) are refused with the reason."""
    cfg, p0, vt = compiled
    if cfg.dynamics not in G.REVERSIBLE_DYNAMICS:
        with pytest.raises(G.GradientError, match=rf"checkpoint_every='reversible': dynamics='{cfg.dynamics}' "
                                                  r"cannot run backwards alone"):
            G.means_function(cfg, N_SAMPLES, seed=SEED, checkpoint_every="reversible")
        return
    f, p0 = G.means_function(cfg, N_SAMPLES, seed=SEED, checkpoint_every="reversible")
    jac = jax.jit(jax.jacrev(lambda p: _outputs(f(p), False)), compiler_options=FAST)(p0)
    zero = {k: jnp.zeros_like(v) for k, v in p0.items()}
    for name in p0:
        d = np.asarray(vt(p0, {**zero, name: jnp.ones_like(p0[name])})[1])
        assert np.all(np.abs(np.asarray(jac[name]) - d) <= 1e-10 * np.abs(d) + 1e-15), (name, jac[name], d)


def test_outside_the_flow_bound_is_nan(compiled):
    """A spring stiffer than the bound the lattice flow's order was chosen for gives NaN, never a
    truncated number; inside it, finite."""
    cfg, p0, vt = compiled
    if "chain.spring" not in p0:
        pytest.skip("this backend's parameters do not include chain.spring: the flow-order bound it checks does not apply")
    zero = {k: jnp.zeros_like(v) for k, v in p0.items()}
    assert np.all(np.isfinite(np.asarray(vt({**p0, "chain.spring": p0["chain.spring"] * 3.9}, zero)[0])))
    assert np.all(np.isnan(np.asarray(vt({**p0, "chain.spring": p0["chain.spring"] * 4.1}, zero)[0])))


@pytest.mark.parametrize("cfg,name,match", [
    (QUANTUM, "temperature", "piecewise constant in T"),
    (BASE, "chain.N", "an integer"),
    (BASE, "dt", "numerical step"),
    (BASE, "statistics", "a choice of sampler"),
    (dataclasses.replace(BASE, cm_momentum=None), "cm_momentum", "drawn per sample"),
    (dataclasses.replace(BASE, temperature=0.0), "temperature", "infinite"),
    (BASE, "electron.alpah", "did you mean 'electron.alpha'"),
    (BASE, "electron.V0", "density-density model"),
])
def test_refusals_name_the_parameter_and_the_reason(cfg, name, match):
    with pytest.raises(G.GradientError, match=match) as e:
        G.means_function(cfg, 2, wrt=("electron.alpha", name))
    assert name in str(e.value)


CONTINUUM = wow.Config(chain=wow.Chain(N=8, boundary="ring", mass=4.0),
                       electron=wow.Continuum(V0=1.0, w=1.0, g=8, sigma=1.0, u_max=1.5), recoil=True,
                       cm_momentum=0.3, temperature=300.0, duration=0.5, n_frames=1, dt=0.05)


@pytest.mark.parametrize("dynamics", ["frozen", "wow"])
def test_continuum_V0_and_w_against_richardson_differences(dynamics):
    """The density-density model's V0 and w (and T beside them) as differentiable parameters: the
    pseudopotential, the static lattice's bands (P_b's Bloch states, ΔE_b's band energies) and the
    Bloch packet all follow them; the forward-mode derivative of (P_b, ΔE_b, <P_R>) equals the
    Ridders-extrapolated central difference to 1e-6 relative; at cfg's values the means are
    wow.run's (bands recomputed in the traced program = the host's)."""
    cfg = dataclasses.replace(CONTINUUM, dynamics=dynamics)
    assert {"electron.V0", "electron.w"} <= set(G.differentiable(cfg))
    assert "electron.alpha" not in G.differentiable(cfg)
    f, p0 = G.means_function(cfg, 2, seed=SEED, wrt=("electron.V0", "electron.w", "temperature"))
    vt = jax.jit(lambda p, dp: jax.jvp(lambda q: _outputs(f(q), False), (p,), (dp,)), compiler_options=FAST)
    zero = {k: jnp.zeros_like(v) for k, v in p0.items()}
    value = lambda p: np.asarray(vt({k: jnp.asarray(v, p0[k].dtype) for k, v in p.items()}, zero)[0])  # noqa: E731
    est, err = central_difference(value, {k: float(v) for k, v in p0.items()},
                                  step={"temperature": 30.0, "electron.w": 0.05})
    for name in p0:
        d = np.asarray(vt(p0, {**zero, name: jnp.ones_like(p0[name])})[1])
        assert np.all(np.abs(d - est[name]) <= 1e-6 * np.abs(est[name]) + 1e-13), (name, d, est[name], err[name])
        assert abs(est[name][0]) > 1e-7, name
    if dynamics == "frozen":
        r = wow.run(cfg, 2, seed=SEED)
        assert abs(value({k: float(v) for k, v in p0.items()})[0] - r.stats["P_b"][0]) < 1e-9
    # beyond the windows' bound (1.5 w by default) or below the grid's resolution: NaN
    assert np.all(np.isnan(value({**{k: float(v) for k, v in p0.items()}, "electron.w": 1.6})))


TRANSPORT = wow.Config(chain=wow.Chain(N=16, boundary="ring"), electron=wow.Electron(sigma=3.0, alpha=2.0, D=0.5),
                       temperature=300.0, cm_momentum=0.5, dt=0.0625, duration=1.25, n_frames=10, transport=True)


def test_transport_D_and_tau_p_against_richardson_differences():
    """D (half the MSD's least-squares slope) and τ_p (∫<v>dt/<v>(0)) of a transport run as outputs
    of means_function at fixed windows: equal to wow.transport's host estimators on the same
    traces and windows, and their derivatives in α and T equal the Ridders differences to 1e-6.
    The rules' automatic windows refuse a run too short for them, with the rule's reason."""
    from wow import transport as tr

    win = G.TransportWindow(tau_stop=6, fit=(4, 10))
    f, p0 = G.means_function(TRANSPORT, 3, seed=SEED, wrt=("electron.alpha", "temperature"), transport_window=win)
    vt = jax.jit(lambda p, dp: jax.jvp(lambda q: (lambda m: jnp.stack([m["D"], m["tau_p"]]))(f(q)), (p,), (dp,)),
                 compiler_options=FAST)
    zero = {k: jnp.zeros_like(v) for k, v in p0.items()}
    value = lambda p: np.asarray(vt({k: jnp.asarray(v, p0[k].dtype) for k, v in p.items()}, zero)[0])  # noqa: E731
    point = {k: float(v) for k, v in p0.items()}
    D, tau = value(point)
    st = jax.jit(G.sample_tallies, static_argnames="lay", compiler_options=FAST)(p0, G.layout(TRANSPORT), G.keys(SEED, 3))
    t = G.frame_times(TRANSPORT)
    host = tr.diffusion_msd(t, np.asarray(st["msd_t"]), tau_p=t[4] / tr.FIT_START)  # the window from frame 4 on
    assert (host.t_start, host.t_stop) == (t[4], t[10]) and abs(D - host.value) <= 1e-12 * abs(host.value)
    v = np.asarray(st["v_mean_t"]).mean(0)
    assert abs(tau - np.sum((v[1:7] + v[:6]) / 2 * np.diff(t[:7])) / v[0]) <= 1e-12 * abs(tau)  # trapezoid to frame 6
    est, err = central_difference(value, point, step={"temperature": 30.0})
    for name in p0:
        d = np.asarray(vt(p0, {**zero, name: jnp.ones_like(p0[name])})[1])
        assert np.all(np.abs(d - est[name]) <= 1e-6 * np.abs(est[name])), (name, d, est[name], err[name])
        assert np.all(np.abs(est[name]) > 1e-6), name
    with pytest.raises(G.GradientError, match=r"transport windows: the fit window .* run longer"):
        G.means_function(TRANSPORT, 3, seed=SEED, wrt=("electron.alpha",))
    with pytest.raises(G.GradientError, match="transport_window"):
        G.means_function(TRANSPORT, 3, transport_window=G.TransportWindow(tau_stop=11, fit=(4, 10)))


def test_refusals_of_the_layout():
    with pytest.raises(G.GradientError, match="omega_max"):
        G.layout(BASE, omega_max=0.5 * BASE.chain.omega_max)
    with pytest.raises(G.GradientError, match="checkpoint_every"):
        G.layout(BASE, checkpoint_every=0)
    with pytest.raises(G.GradientError, match="named twice"):
        G.check_names(BASE, ("electron.alpha", "electron.alpha"))
    lay = G.layout(BASE)
    with pytest.raises(G.GradientError, match="a scalar"):
        G.ensemble_means({"electron.alpha": jnp.ones(2)}, lay, G.keys(0, 2))
    # Wigner statistics with a fixed P_R: T = 0 is differentiable (the widths have d/dT = 0 there)
    assert "temperature" in G.differentiable(dataclasses.replace(BASE, temperature=0.0, statistics="quantum"))


def test_fit_recovers_alpha_from_a_wow_target_within_its_error(tmp_path):
    """wow.fit through the differentiable tallies (fit_alpha's model) recovers the α a synthetic
    P_b(T) target was made with, by wow.run at other seeds (one independent ensemble per T, errors
    its standard errors), within 3 of its reported (curvature) errors; the model's ensemble is 2x
    the target's, so its own noise adds ~0.7 σ. (Frozen lattice: the cheapest program.)"""
    from wow import fit as F
    from wow.experiments.fit_alpha import model_of

    cfg = dataclasses.replace(BASE, dynamics="frozen", recoil=False, cm_momentum=None,
                              electron=wow.Electron(sigma=2.0, alpha=1.5))
    temps = [100.0, 200.0, 400.0]
    ys, es = [], []
    for i, T in enumerate(temps):
        r = wow.run(dataclasses.replace(cfg, temperature=T), 16, seed=100 + i)
        ys.append(r.stats["P_b"][0])
        es.append(r.stats["P_b"][1])
    target = F.Target(x=temps, y=ys, sigma=es, x_name="T", x_unit="K", y_name="P_b", y_unit="")
    model = model_of(dataclasses.replace(cfg, electron=wow.Electron(sigma=2.0, alpha=1.0)), 32)
    res = F.fit(model, target, {"electron.alpha": 1.0}, seed=0, max_iter=30, checkpoint=tmp_path / "fit.h5")
    a, e = res.values["electron.alpha"], res.errors["electron.alpha"]
    assert res.converged and 0 < e < 0.2, res
    assert abs(a - 1.5) < 3 * e, res
    with pytest.raises(F.FitError, match="electron.t0"):  # not offered by this model, said so
        F.fit(model, target, {"electron.t0": 1.0}, seed=0)


def test_fit_alpha_refuses_bad_options_before_work(tmp_path, capsys):
    from wow.experiments import fit_alpha

    out = str(tmp_path / "f.h5")
    for argv, msg in ((["--out", out], "--target FILE"),
                      (["--out", out, "--synthetic", "2", "--start", "1,2"], "one starting value"),
                      (["--out", out, "--synthetic", "2", "--temperatures", "0,100"], "--temperatures=0")):
        with pytest.raises(SystemExit) as e:
            fit_alpha.main(argv)
        assert e.value.code == 2 and msg in capsys.readouterr().err
    assert not list(tmp_path.iterdir())
