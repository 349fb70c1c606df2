"""float32 over long runs: the chain's layers keep the norm (no rounding bias) and the energy
tallies lose no digits to cancellation. The long end-to-end drift at large N is in
benchmarks/f32_accuracy.py."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from wow.electron import k_grid
from wow.models.chain import ChainParams, TightBinding, norm_defect, rotation
from wow.tally import recoil_energy_change

STEPS = 100_000


def _params(N, real):
    f = lambda x: jnp.asarray(x, real)
    return ChainParams(t0=f(1.0), alpha=f(2.0), D=f(1.0), a=f(2.556), t_static=f(np.zeros(N)),
                       eps_static=f(np.zeros(N)), k=f(k_grid(N, 2.556)), inv_2NM=f(1 / (2 * N * 6586.0)),
                       omega_max=f(0.045))


@pytest.mark.parametrize("recoil,onsite,cold,steps", [(False, False, True, STEPS), (False, True, False, STEPS // 5),
                                                     (True, False, False, STEPS // 10)])
def test_float32_norm_drift_1e5_steps(recoil, onsite, cold, steps):
    """1e5 Strang steps (dt = 0.02 fs, t0 = 1 eV: bond angle 0.03) of 16 packets on a ring of 32 sites
    in float32, the chain's own layers (the loop of a frozen lattice). Before the increment form the
    mean norm fell by ~1e-3 per 1e4 steps; what is left is the rounding of the stored amplitudes, a
    random walk (~4e-6 per sample after 1e5 steps), unbiased: the mean over samples stays < 1e-5.
    cold: every bond has the same angle, the case where a per-layer bias adds up coherently. The
    site energies (2e4 steps) and the recoil phase (an FFT pair per step, 1e4 steps: short tests) lost 6e-4 per 1e4 steps
    when applied whole (the float32 FFT round trip shrinks the norm by ~4e-8 every time)."""
    N, B = 32, 16
    model = TightBinding(N, "ring", recoil=recoil, use_onsite=onsite)
    p = _params(N, jnp.float32)
    rs = np.random.RandomState(1)
    u = jnp.asarray(np.zeros((B, N)) if cold else rs.randn(B, N) * 0.09, jnp.float32)
    n = np.arange(N)
    psi = np.exp(-((n - N / 2) ** 2) / (4 * 3.0**2) + 1j * np.pi / 3 * n)
    psi = jnp.asarray(np.broadcast_to(psi / np.linalg.norm(psi), (B, N)), jnp.complex64)
    Q = jnp.asarray(rs.randn(B) * 50, jnp.float32)

    @jax.jit
    def run(psi):
        h = jnp.float32(0.02)
        lay, fixed = model.layers({"u": u}, h, p), model.fixed(h, p, Q)
        z = model.advance(model.start(psi, p), lay, model.join(None, lay), fixed)
        z = jax.lax.fori_loop(0, steps - 1, lambda i, z: model.advance(z, lay, model.join(lay.trail, lay), fixed), z)
        return jnp.sum(jnp.abs(model.amplitudes(model.close(z, lay.trail), p)) ** 2, -1)

    drift = np.asarray(run(psi), np.float64) - 1
    assert abs(drift.mean()) < 1e-5, drift
    assert np.abs(drift).max() < 4e-5, drift  # the walk of single samples (std ~4e-6)


def test_rotation_norm_defect_is_compensated():
    """gc = β/2 with β = (1 - g)² + s² - 1 of the float32 coefficients, against float64 arithmetic on
    the same float32 numbers: β itself is ~1e-10 (θ² eps), gc matches it to ~1e-14."""
    th = jnp.linspace(0.005, 0.1, 20001, dtype=jnp.float32)
    g, s, gc = (np.asarray(x, np.float64) for x in jax.jit(rotation)(th))
    beta = (1 - g) ** 2 + s**2 - 1
    assert np.abs(beta).max() > 1e-11  # the defect exists
    assert np.abs(2 * gc - beta).max() < 1e-2 * np.abs(beta).max()  # what is left: ~eps θ⁴/4
    assert rotation(jnp.asarray([0.03], jnp.float64))[2] is None
    assert float(norm_defect(jnp.float32(0.0), jnp.float32(0.0))) == 0.0


def test_recoil_energy_change_without_cancellation():
    """dE_cm of a thermal-size P_R (Q² ~ 1e5 ħk²): float32 against float64 to 1e-5 relative; the plain
    difference of the two float32 expectation values misses by orders of magnitude more."""
    N = 256
    k = k_grid(N, 2.556)
    rs = np.random.RandomState(0)
    w0 = np.exp(-((k - 0.4) ** 2) / 0.002)
    w = w0 * (1 - 0.2 * (k > 0)) + 0.2 * np.exp(-((k + 0.4) ** 2) / 0.002) * w0.sum() / np.exp(-((k - 0.4) ** 2) / 0.002).sum()
    Q, inv = 300.0 + rs.rand(), 1 / (2 * N * 6586.0)
    exact = recoil_energy_change(*(jnp.asarray(x, jnp.float64) for x in (w0, w, Q, k, inv)))
    got = recoil_energy_change(*(jnp.asarray(x, jnp.float32) for x in (w0, w, Q, k, inv)))
    assert abs(float(got) / float(exact) - 1) < 1e-5
    f = lambda x: jnp.asarray(x, jnp.float32)
    hk = 0.6582119569 * f(k)
    naive = (jnp.sum(f(w) * (f(Q) - hk) ** 2) / jnp.sum(f(w)) - jnp.sum(f(w0) * (f(Q) - hk) ** 2) / jnp.sum(f(w0))) * f(inv)
    assert abs(float(naive) / float(exact) - 1) > 1e-4
