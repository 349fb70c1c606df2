"""Ensemble statistics against independent truth: synthetic data with a known distribution, the
estimate against its analytic mean and variance, and coverage.

Coverage: over R independent repetitions, the fraction whose interval estimate ± se holds the true
value. For a mean of ν+1 Gaussian values with se = s/sqrt(n) it is exactly P(|t_ν| < 1) (Student t,
ν degrees of freedom: 0.626 at ν = 4, 0.675 at ν = 31, 0.683 as ν -> ∞); a jackknife over G groups
has ν = G - 1. Each coverage is held to that value within 4 of its own binomial standard errors
sqrt(p(1-p)/R). The designs use few degrees of freedom on purpose: there a wrong factor in a
standard error (ddof, the jackknife's (G-1)/G, w instead of w²) moves the coverage by many binomial
errors, while at large ν the same factor would hide below them. Each variance estimate is also held
to the analytic variance of its estimator, within the estimate's own sampling error.

Everything is plain numpy with fixed seeds; the whole file runs in a few seconds."""

import math

import numpy as np
import pytest
from scipy import stats as sps

from wow.channels import CHANNELS, channel_fractions
from wow.tally import coherent_split, mean_sem, weighted_mean_sem


def t_coverage(dof):
    """P(|t_dof| < 1): the exact coverage of mean ± s/sqrt(n) for Gaussian data, dof = n - 1."""
    return 1 - 2 * sps.t.sf(1.0, dof)


def assert_coverage(est, se, truth, expected, what):
    est, se = np.asarray(est), np.asarray(se)
    cov = float(np.mean(np.abs(est - truth) <= se))
    err = math.sqrt(expected * (1 - expected) / est.size)
    assert abs(cov - expected) < 4 * err, f"{what}: coverage {cov:.4f}, expected {expected:.4f} ± {err:.4f}"
    return cov


def assert_variance(se, est_var, what, rel=0.0, above=0.0):
    """Mean of se² against the analytic variance est_var: within 4 standard errors of that mean, plus
    a relative allowance ``rel`` (the O(1/n) bias of a first-order delta-method variance) and an
    allowance ``above`` for a known upward bias."""
    se2 = np.asarray(se, float) ** 2
    tol = 4 * se2.std() / math.sqrt(se2.size) + rel * est_var
    lo, hi = est_var - tol, est_var + above + tol
    assert lo < se2.mean() < hi, f"{what}: <se²> {se2.mean():.5g}, analytic {est_var:.5g}, allowed ({lo:.5g}, {hi:.5g})"


# ------------------------------------------------------------------------------------------------
# mean_sem
# ------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("n", [5, 32])
def test_mean_sem_coverage_is_student_t(n):
    """Gaussian N(3, 2²): the mean is unbiased, <sem²> = σ²/n, and mean ± sem covers 3 with the
    Student-t probability (0.626 at n = 5; 0.675 at n = 32, near the large-n 0.683)."""
    R = 20000
    x = np.random.default_rng(n).normal(3.0, 2.0, (R, n))
    out = np.array([mean_sem(r) for r in x])
    m, s = out[:, 0], out[:, 1]
    assert abs(m.mean() - 3.0) < 4 * 2.0 / math.sqrt(n * R)
    assert_coverage(m, s, 3.0, t_coverage(n - 1), f"mean_sem n={n}")
    assert_variance(s, 4.0 / n, f"mean_sem n={n}")


def test_mean_sem_drops_nan_and_counts_only_finite():
    x = np.array([1.0, np.nan, 2.0, 4.0, np.inf])
    m, s = mean_sem(x)
    assert m == pytest.approx(7 / 3)
    assert s == pytest.approx(math.sqrt(((1 - 7 / 3) ** 2 + (2 - 7 / 3) ** 2 + (4 - 7 / 3) ** 2) / 2 / 3))
    assert math.isnan(mean_sem([1.0])[1]) and math.isnan(mean_sem([np.nan])[0])


# ------------------------------------------------------------------------------------------------
# weighted_mean_sem: the ratio estimator Σwx/Σw with its delta-method standard error
# ------------------------------------------------------------------------------------------------
# w = 0.2 g, g ~ Gamma(2, 1) (E g^m = 2, 6, 24, 120), x = a + b g + s z: the ratio R = E[wx]/E[w]
# = a + b E[g²]/E[g] = a + 3b; the delta-method variance E[w²(x-R)²]/(n E[w]²) =
# (b² E[g²(g-3)²] + s² E[g²])/(n E[g]²) = (30 b² + 6 s²)/(4n); the first-order bias
# -E[w²(x-R)]/(n E[w]²) = -b E[g²(g-3)]/(4n) = -6b/(4n).
A_, B_, S_ = 1.0, 0.5, 1.0
RATIO = A_ + 3 * B_


def ratio_samples(rng, R, n, scale=0.2):
    g = rng.gamma(2.0, 1.0, (R, n))
    return A_ + B_ * g + S_ * rng.normal(size=(R, n)), scale * g


def test_weighted_mean_sem_hand_two_samples():
    """x = (1, 3), w = (1, 3): m = 10/4 = 2.5; residuals (-1.5, 0.5); Σw²r² = 2.25 + 2.25 = 4.5;
    variance n/(n-1) 4.5/4² = 0.5625; se = 0.75."""
    m, s = weighted_mean_sem([1.0, 3.0], [1.0, 3.0])
    assert (m, s) == (pytest.approx(2.5, abs=1e-15), pytest.approx(0.75, abs=1e-15))
    # a NaN x is dropped with its weight; one sample left has no error
    m1, s1 = weighted_mean_sem([1.0, np.nan], [1.0, 3.0])
    assert m1 == 1.0 and math.isnan(s1)


def test_weighted_mean_sem_reduces_to_mean_sem_and_ignores_the_weight_scale():
    """Equal weights give the plain mean and standard error exactly; the estimate and its error are
    invariant under w -> c w (a ratio: an error with w instead of w² is not)."""
    rng = np.random.default_rng(3)
    x, w = rng.normal(size=17), rng.uniform(0.01, 1.0, 17)
    assert weighted_mean_sem(x, np.full(17, 0.37)) == pytest.approx(mean_sem(x), rel=1e-12)
    for c in (1e-3, 7.0):
        assert weighted_mean_sem(x, c * w) == pytest.approx(weighted_mean_sem(x, w), rel=1e-12)


def test_weighted_mean_sem_coverage_and_delta_variance():
    """n = 500: the delta-method variance is first order in 1/n (at n = 200 <se²> is 2.6% low and the
    coverage 0.669 against 0.682)."""
    R, n = 20000, 500
    x, w = ratio_samples(np.random.default_rng(11), R, n)
    out = np.array([weighted_mean_sem(x[r], w[r]) for r in range(R)])
    var = (30 * B_**2 + 6 * S_**2) / (4 * n)  # first order in 1/n
    assert out[:, 0].var() == pytest.approx(var, rel=4 * math.sqrt(2 / R) + 4 / n)
    assert_coverage(out[:, 0], out[:, 1], RATIO, t_coverage(n - 1), f"weighted_mean_sem n={n}")
    assert_variance(out[:, 1], var, "weighted_mean_sem", rel=8 / n)


def test_weighted_mean_is_biased_at_order_one_over_n():
    """The ratio estimator is biased (stated in its docstring): at n = 10 the bias is near the
    first-order -6b/(4n) = -0.075 (higher orders make it ~10% larger here), well outside the mean's
    own error, and it falls as 1/n."""
    bias = {}
    for n in (10, 40):
        R = 15000
        x, w = ratio_samples(np.random.default_rng(n + 100), R, n)
        m = np.array([weighted_mean_sem(x[r], w[r])[0] for r in range(R)])
        bias[n] = (m.mean() - RATIO, m.std() / math.sqrt(R))
    first = -6 * B_ / (4 * 10)
    b10, e10 = bias[10]
    assert abs(b10) > 8 * e10
    assert 0.8 * first > b10 > 1.4 * first, bias  # both negative
    assert bias[40][0] == pytest.approx(b10 / 4, abs=4 * math.hypot(bias[40][1], e10 / 4) + 0.15 * abs(b10 / 4))


# ------------------------------------------------------------------------------------------------
# coherent_split: P_tot, the unbiased P_coh = (|S|² - A)/(n(n-1)) and the plug-in |S/n|², with
# leave-one-group-out jackknife errors
# ------------------------------------------------------------------------------------------------
# Amplitudes ψ_s(k) = c(k) + ε_s(k), ε circular complex Gaussian with E|ε|² = v(k), independent
# over samples and k. Per backscattered k: E<|ψ|²> = |c|² + v; the coherent part is |c|²; the
# plug-in |S/n|² has mean |c|² + v/n. Variances (derived in the test below's docstring):
#   P_tot = A/n:                 (2|c|² v + v²)/n
#   P_coh, a U-statistic of order 2 with kernel Re(ψ_s ψ_t*): 2|c|² v/n + v²/(n(n-1)).
C_K = np.array([2.0, 0.3, 0.2 + 0.1j, 0.0, 0.4j, 1.5j])
V_K = np.array([0.5, 0.05, 0.1, 0.08, 0.02, 0.3])
BACK = np.array([False, True, True, True, True, False])  # forward components carry large |c|²


def amplitudes(rng, R, n, c=C_K, v=V_K):
    eps = (rng.normal(size=(R, n, c.size)) + 1j * rng.normal(size=(R, n, c.size))) * np.sqrt(v / 2)
    return c + eps


def group_sums(psi, G):
    R, n, K = psi.shape
    m = n // G
    return psi.reshape(R, G, m, K).sum(2), (np.abs(psi) ** 2).reshape(R, G, m, K).sum(2)


def truth(n, c=C_K, v=V_K):
    cb, vb = np.abs(c[BACK]) ** 2, v[BACK]
    return ({"P_tot": np.sum(cb + vb), "P_coh": np.sum(cb), "P_coh_plugin": np.sum(cb + vb / n)},
            {"P_tot": np.sum(2 * cb * vb + vb**2) / n, "P_coh": np.sum(2 * cb * vb / n + vb**2 / (n * (n - 1)))})


def test_coherent_split_estimates_against_direct_pair_sums():
    """One ensemble, grouped unevenly: P_tot, P_coh and the plug-in equal their definitions computed
    sample by sample (P_coh as the mean over ordered pairs s != t of Re ψ_s ψ_t*), independent of the
    grouping."""
    psi = amplitudes(np.random.default_rng(5), 1, 13)[0]
    n = 13
    bounds = [0, 2, 3, 7, 13]  # groups of 2, 1, 4, 6
    S = np.stack([psi[a:b].sum(0) for a, b in zip(bounds, bounds[1:])])
    A = np.stack([(np.abs(psi[a:b]) ** 2).sum(0) for a, b in zip(bounds, bounds[1:])])
    out = coherent_split(S, A, np.diff(bounds), BACK)
    pb = psi[:, BACK]
    pairs = sum(np.sum(np.real(pb[s] * np.conj(pb[t]))) for s in range(n) for t in range(n) if s != t)
    assert out["P_coh"] == pytest.approx(pairs / (n * (n - 1)), rel=1e-12)
    assert out["P_tot"] == pytest.approx(np.mean(np.sum(np.abs(pb) ** 2, 1)), rel=1e-12)
    assert out["P_coh_plugin"] == pytest.approx(np.sum(np.abs(pb.mean(0)) ** 2), rel=1e-12)
    assert out["coherent_fraction"] == pytest.approx(out["P_coh"] / out["P_tot"], rel=1e-12)


def test_jackknife_of_a_mean_is_the_standard_error_of_the_group_means():
    """For the linear P_tot with equal groups the leave-one-group-out jackknife equals, exactly, the
    standard error of the G group means: std(ddof=1)/sqrt(G) (this pins the (G-1)/G factor)."""
    G, m = 5, 3
    psi = amplitudes(np.random.default_rng(6), 1, G * m)[0]
    S, A = group_sums(psi[None], G)
    out = coherent_split(S[0], A[0], np.full(G, m), BACK)
    per_group = A[0][:, BACK].sum(1) / m
    assert out["P_tot_sem"] == pytest.approx(per_group.std(ddof=1) / math.sqrt(G), rel=1e-12)
    # and with one sample per group it is the ordinary standard error of the per-sample P
    S1, A1 = group_sums(psi[None], G * m)
    out1 = coherent_split(S1[0], A1[0], np.ones(G * m), BACK)
    assert (out1["P_tot"], out1["P_tot_sem"]) == pytest.approx(mean_sem(np.sum(np.abs(psi[:, BACK]) ** 2, 1)), rel=1e-12)


@pytest.mark.parametrize("G,m", [(4, 16), (32, 2)])
def test_coherent_split_unbiased_variance_and_coverage(G, m):
    """Over R ensembles of n = G m samples: P_tot and P_coh are unbiased, the plug-in is biased by
    Σv/n; the jackknife variances average to the analytic variances above; the coverage of P_tot and
    P_coh is Student's with G - 1 degrees of freedom (0.609 at G = 4, 0.675 at G = 32).

    Variance of P_coh per k: the U-statistic variance 2/(n(n-1)) [2(n-2) ζ1 + ζ2] with
    ζ1 = Var Re(ψ c*) = |c|² v/2 and ζ2 = Var Re(ψ_s ψ_t*) = |c|² v + v²/2."""
    R, n = 10000, G * m
    S, A = group_sums(amplitudes(np.random.default_rng(G), R, n), G)
    out = [coherent_split(S[r], A[r], np.full(G, m), BACK) for r in range(R)]
    true, var = truth(n)
    deg = np.sum(V_K[BACK] ** 2) / (n * (n - 1))  # the v² part of Var(P_coh)
    for key in ("P_tot", "P_coh", "P_coh_plugin"):
        e = np.array([o[key] for o in out])
        s = np.array([o[key + "_sem"] for o in out])
        mean_err = e.std() / math.sqrt(R)
        assert abs(e.mean() - true[key]) < 4 * mean_err, (key, e.mean(), true[key], mean_err)
        if key in var:  # the jackknife doubles the degenerate part of P_coh's variance (see below)
            assert_coverage(e, s, true[key], t_coverage(G - 1), f"{key} G={G} m={m}")
            assert_variance(s, var[key], f"{key} G={G}", above=1.3 * deg if key == "P_coh" else 0.0)


def test_incoherent_part_and_fraction_have_their_own_jackknife():
    """P_inc = P_tot - P_coh and P_coh/P_tot carry jackknife errors of their own, which see the
    correlation of P_tot and P_coh: with a large coherent part they cover at Student's G - 1 rate.
    The quadrature sum of the two errors (what a table would print without them) overstates P_inc's
    variance 3.7-fold here (coverage 0.94), and P_coh_sem/P_tot overstates the fraction's."""
    G, m, R = 8, 8, 10000
    n = G * m
    S, A = group_sums(amplitudes(np.random.default_rng(31), R, n), G)
    out = [coherent_split(S[r], A[r], np.full(G, m), BACK) for r in range(R)]
    true, _ = truth(n)
    get = lambda key: np.array([o[key] for o in out])
    tot, coh, inc, frac = get("P_tot"), get("P_coh"), get("P_inc"), get("coherent_fraction")
    np.testing.assert_allclose(inc, tot - coh, rtol=1e-12)
    np.testing.assert_allclose(frac, coh / tot, rtol=1e-12)
    t_inc, t_frac = true["P_tot"] - true["P_coh"], true["P_coh"] / true["P_tot"]
    assert abs(frac.mean() - t_frac) < 4 * frac.std() / math.sqrt(R) + 0.1 * frac.std()  # O(1/n) ratio bias
    s_inc, s_frac = get("P_inc_sem"), get("coherent_fraction_sem")
    assert_coverage(inc, s_inc, t_inc, t_coverage(G - 1), "P_inc")
    assert_coverage(frac, s_frac, t_frac, t_coverage(G - 1), "coherent_fraction")
    assert np.mean(s_inc**2) == pytest.approx(inc.var(), rel=0.06)
    assert np.mean(s_frac**2) == pytest.approx(frac.var(), rel=0.06)
    quad = np.hypot(get("P_tot_sem"), get("P_coh_sem"))
    assert np.mean(quad**2) > 2.5 * inc.var()


def test_plugin_is_biased_and_the_jackknife_is_conservative_at_zero_coherence():
    """Random phases (c = 0, the thermal regime of a long chain): the coherent part is 0. The
    unbiased P_coh averages to 0; the plug-in |S/n|² sits at Σv/n, many of its own errors away, and
    its ±se interval holds 0 in only 29% of the ensembles.

    At c = 0 P_coh is a degenerate U-statistic (ζ1 = 0), and the jackknife variance of a degenerate
    U-statistic is about twice its variance (measured 2.25 at G = 8, m = 2; 2.04 at G = 32, m = 4):
    P_coh_sem is ~√2 too large there, so ±se holds 0 in ~80% of ensembles, not 68% (conservative,
    stated in the docstring of coherent_split)."""
    G, m, R = 8, 2, 10000
    n = G * m
    c0 = np.zeros_like(C_K)
    S, A = group_sums(amplitudes(np.random.default_rng(9), R, n, c=c0), G)
    out = [coherent_split(S[r], A[r], np.full(G, m), BACK) for r in range(R)]
    coh = np.array([o["P_coh"] for o in out])
    plug = np.array([o["P_coh_plugin"] for o in out])
    vb = V_K[BACK].sum()
    assert abs(coh.mean()) < 4 * coh.std() / math.sqrt(R)
    assert plug.mean() == pytest.approx(vb / n, rel=0.02)
    assert plug.mean() > 50 * plug.std() / math.sqrt(R)
    var = np.sum(V_K[BACK] ** 2) / (n * (n - 1))
    assert coh.var() == pytest.approx(var, rel=4 * math.sqrt(2 / R) + 0.02)
    se = np.array([o["P_coh_sem"] for o in out])
    assert 1.9 < np.mean(se**2) / var < 2.6, np.mean(se**2) / var
    assert 0.76 < np.mean(np.abs(coh) <= se) < 0.86
    assert np.mean(np.abs(plug) <= np.array([o["P_coh_plugin_sem"] for o in out])) < 0.4  # measured 0.285


# ------------------------------------------------------------------------------------------------
# channel_fractions: ratio estimators of the backscattered weight per channel
# ------------------------------------------------------------------------------------------------
# Two kinds of sample: with probability 0.4 a strong reflector (P_b = 0.5 g) whose shares are
# Dirichlet(8, 1, 1, 0.5), else a weak one (P_b = 0.1 g) with Dirichlet(1, 2, 2, 3); g ~ Gamma(2).
# True fraction f = E[P_b x]/E[P_b] = Σ_t p_t s_t f_t / Σ_t p_t s_t (E g = 2 cancels); delta
# variance E[P_b² (x - f)²]/(n E[P_b]²) with E[(x - f)²|t] = f_t(1 - f_t)/(α0_t + 1) + (f_t - f)²
# and E[P_b²|t] = 6 s_t². The unweighted mean of the shares is far from f: weighting matters.
KINDS = ((0.4, 0.5, np.array([8.0, 1.0, 1.0, 0.5])), (0.6, 0.1, np.array([1.0, 2.0, 2.0, 3.0])))


def channel_truth(n):
    ft = [al / al.sum() for _, _, al in KINDS]
    num = sum(p * s * f for (p, s, _), f in zip(KINDS, ft))
    den = sum(p * s for p, s, _ in KINDS)
    f = num / den
    second = sum(p * 6 * s**2 * (fk * (1 - fk) / (al.sum() + 1) + (fk - f) ** 2) for (p, s, al), fk in zip(KINDS, ft))
    return f, second / (n * (2 * den) ** 2)


def channel_samples(rng, R, n):
    strong = rng.random((R, n)) < KINDS[0][0]
    g = rng.gamma(2.0, 1.0, (R, n))
    P_b = np.where(strong, KINDS[0][1], KINDS[1][1]) * g
    x = rng.gamma(np.where(strong[..., None], KINDS[0][2], KINDS[1][2]))  # normalised: Dirichlet
    return P_b, x / x.sum(-1, keepdims=True)


def test_channel_fractions_coverage_against_known_mixture():
    R, n = 10000, 250
    P_b, x = channel_samples(np.random.default_rng(21), R, n)
    f, var = channel_truth(n)
    res = [channel_fractions({f"P_dE_{c}": P_b[r] * x[r, :, i] for i, c in enumerate(CHANNELS)}) for r in range(R)]
    for i, c in enumerate(CHANNELS):
        m = np.array([o[c][0] for o in res])
        s = np.array([o[c][1] for o in res])
        assert abs(m.mean() - f[i]) < 4 * m.std() / math.sqrt(R) + 0.1 * math.sqrt(var[i]), c  # O(1/n) ratio bias
        assert abs(x[..., i].mean() - f[i]) > 0.05  # the unweighted mean would be wrong
        assert_coverage(m, s, f[i], t_coverage(n - 1), f"channel {c}")
        assert_variance(s, var[i], f"channel {c}", rel=8 / n)


def test_channel_fractions_drop_empty_samples_and_sum_to_one():
    """Samples with no backscattered weight carry no fraction and do not count as samples (the
    standard error is the same with or without them); the four fractions add up to 1."""
    P_b, x = channel_samples(np.random.default_rng(22), 1, 30)
    per = {f"P_dE_{c}": P_b[0] * x[0, :, i] for i, c in enumerate(CHANNELS)}
    padded = {k: np.concatenate([v, np.zeros(5)]) for k, v in per.items()}
    a, b = channel_fractions(per), channel_fractions(padded)
    for c in CHANNELS:
        assert b[c] == pytest.approx(a[c], rel=1e-12)
    assert sum(m for m, _ in a.values()) == pytest.approx(1.0, abs=1e-12)
    # by hand for the 'within' window: Σ_s P_within,s / Σ_s P_b,s and the delta-method error
    f = per["P_dE_within"].sum() / P_b[0].sum()
    r = per["P_dE_within"] - f * P_b[0]  # P_b (x - f)
    se = math.sqrt(30 / 29 * np.sum(r**2) / P_b[0].sum() ** 2)
    assert a["within"] == pytest.approx((f, se), rel=1e-12)
    # a file written before the windows were renamed holds 'P_<former name>': read the same
    from wow.channels import FORMER_NAMES

    old = channel_fractions({f"P_{FORMER_NAMES[c]}": per[f"P_dE_{c}"] for c in CHANNELS})
    assert old == a
