"""Ensembles: vmap equals a loop, the seed fixes the numbers, chunking changes nothing, the
coherent/incoherent split behaves at its limits (its statistics: test_statistics.py; the CM
momentum trace against A5: test_propagate.py::test_reflection_from_one_modified_bond_matches_transfer_matrix)."""

import dataclasses

import jax
import numpy as np
import pytest

import wow
from wow import lattice as L
from wow.tally import mean_sem


def small(**kw):
    base = dict(chain=wow.Chain(N=96), electron=wow.Electron(sigma=12.0), duration=6.0, n_frames=3,
                dynamics="wow", statistics="quantum", recoil=True)
    base.update(kw)
    return wow.Config(**base)


def test_vmap_equals_loop_and_chunking_is_invisible():
    """Each sample of a batched run equals that sample run alone from its own thermal draw (sample s
    is key s of split(PRNGKey(seed), n)), given as a deterministic initial state."""
    cfg = small()
    r = wow.run(cfg, 6, seed=3, chunk_size=4)  # 4 + padded 2
    keys = jax.random.split(jax.random.PRNGKey(3), 6)
    for i in range(6):
        s = L.sample_modes(keys[i], cfg.chain, cfg.temperature, cfg.statistics)
        one = wow.run(cfg, 1, initial=wow.InitialState(Q=s.Q, P=s.P, P_R=s.P_R))
        for name in ("P_b", "dE_e", "dE_cm", "P_R0"):
            assert float(one.per_sample[name][0]) == pytest.approx(r.per_sample[name][i], rel=1e-12, abs=1e-14)
        assert np.allclose(one.traces["k_mean"][0], r.traces["k_mean"][i], atol=1e-13)
    # another chunking: one chunk of 8 (2 padded) against two of 4. (chunk_size=1 would round up to
    # the 4 devices the suite runs on: the same chunks, nothing tested.) Per sample the same numbers
    # to rounding: XLA's vectorised loops follow the batch shape (dn moves by ~3e-14 absolute).
    n = len(jax.devices())
    assert -(-6 // n) * n != -(-4 // n) * n, "chunk sizes 8 and 4 round to the same on this many devices"
    r1 = wow.run(cfg, 6, seed=3, chunk_size=8)
    for name, v in r.per_sample.items():
        assert np.allclose(v, r1.per_sample[name], rtol=1e-12, atol=1e-13, equal_nan=True), name
    assert r.coherent["P_coh"] == pytest.approx(r1.coherent["P_coh"], rel=1e-10, abs=1e-14)


def test_same_seed_same_result_other_seed_differs():
    cfg = small()
    a, b, c = wow.run(cfg, 4, seed=7), wow.run(cfg, 4, seed=7), wow.run(cfg, 4, seed=8)
    assert np.array_equal(a.per_sample["P_b"], b.per_sample["P_b"])
    assert not np.allclose(a.per_sample["P_b"], c.per_sample["P_b"])


def test_identical_samples_are_fully_coherent():
    """T = 0, classical: every sample is the perfect chain, so |<ψ~>|² = <|ψ~|²>: P_coh = P_tot.
    A static defect gives a nonzero P_b."""
    cfg = small(temperature=0.0, statistics="classical", recoil=False,
                electron=wow.Electron(sigma=12.0, bond_defects=((47, -0.5),)))
    r = wow.run(cfg, 8, chunk_size=3)  # three chunks: the coherent sums gather all of them
    assert r.coherent["P_tot"] > 0.05
    assert r.coherent["P_tot"] == pytest.approx(np.mean(r.per_sample["P_b"]), rel=1e-12)  # the k < 0 weight
    assert r.coherent["P_coh"] == pytest.approx(r.coherent["P_tot"], rel=1e-10)
    assert r.coherent["coherent_fraction"] == pytest.approx(1.0, rel=1e-10)


def test_frozen_lattice_exchanges_no_energy_without_recoil():
    """A static Hamiltonian conserves <H_e>: what the Strang step shows instead is its O(dt²)
    modified-energy error, which must quarter when dt halves."""
    e = [np.abs(wow.run(small(dynamics="frozen", recoil=False, dt=dt), 4).per_sample["dE_e"])
         for dt in (0.02, 0.01)]
    assert np.max(e[0]) < 1e-4
    assert np.allclose(e[1] / e[0], 0.25, rtol=0.05)


# ehrenfest: the same blocking (lax.map over sample blocks inside shard_map, the backend's step
# untouched) on a second backend, 20 s of compilation; the wow case guards it by default
@pytest.mark.parametrize("dynamics", ["wow", pytest.param("ehrenfest", marks=pytest.mark.slow)])
def test_inner_blocks_equal_one_block(dynamics, monkeypatch):
    """A chunk's samples run per device (shard_map) in inner blocks (lax.map) give the numbers of
    the one GSPMD program to rounding (measured: final ψ, u, v within an ulp or two, differences of
    large sums such as dn within 1e-13, as between chunk sizes: XLA's vectorised loops follow the
    shapes): traces, tallies, final states and the coherent split, over 2 devices with chunking and
    a padded last chunk. A sample mixed up between blocks or devices would differ at O(1)."""
    from wow import ensemble

    cfg = small(chain=wow.Chain(N=48), electron=wow.Electron(sigma=6.0), dynamics=dynamics, duration=2.0, n_frames=2)
    devs = jax.devices("cpu")[:2]
    kw = dict(seed=5, chunk_size=8, devices=devs, keep_final=True, progress=False)  # 8 + padded 4
    assert ensemble.block_size(cfg, 4, devs) == 4  # all fit: one block per device
    assert ensemble.block_size(dataclasses.replace(cfg, dynamics="quantum"), 4, devs) is None
    monkeypatch.setattr(ensemble, "CPU_BLOCK_BYTES", 2 * ensemble.cache_bytes_per_sample(cfg))
    assert ensemble.block_size(cfg, 4, devs) == 2 and ensemble.block_size(cfg, 3, devs) == 1
    assert ensemble.block_size(dataclasses.replace(cfg, dtype="float32"), 4, devs) == 4  # not BLOCKED
    blocked = wow.run(cfg, 12, **kw)
    monkeypatch.setattr(ensemble, "PER_DEVICE", set())
    one = wow.run(cfg, 12, **kw)
    for part in ("per_sample", "traces", "final"):
        a, b = getattr(one, part), getattr(blocked, part)
        assert a.keys() == b.keys()
        for name in a:
            np.testing.assert_allclose(b[name], a[name], rtol=1e-13, atol=1e-12, err_msg=f"{part}[{name!r}]")
    for name, v in one.coherent.items():
        assert blocked.coherent[name] == pytest.approx(v, rel=1e-13, abs=1e-15), name


def test_float32_runs_and_agrees_with_float64():
    cfg = small()
    r64 = wow.run(cfg, 4, seed=1)
    r32 = wow.run(dataclasses.replace(cfg, dtype="float32"), 4, seed=1)
    assert r32.per_sample["P_b"].dtype == np.float32
    # same thermal samples to float32 rounding: P_b agrees to ~1e-4
    assert np.allclose(r32.per_sample["P_b"], r64.per_sample["P_b"], atol=2e-4)


def test_mean_sem():
    x = np.array([1.0, 2.0, 3.0, np.nan])
    m, s = mean_sem(x)
    assert m == 2.0 and s == pytest.approx(1 / np.sqrt(3))


def test_sharded_over_devices_equals_one_device():
    """conftest forces 4 host devices: the same samples sharded over all of them give the same
    numbers as on one device."""
    devs = jax.devices("cpu")
    assert len(devs) >= 2, "conftest should force several host devices"
    cfg = small()
    one = wow.run(cfg, 6, seed=2, devices=devs[:1])
    many = wow.run(cfg, 6, seed=2, devices=devs)
    for name, v in one.per_sample.items():
        assert np.allclose(v, many.per_sample[name], rtol=1e-12, atol=1e-14, equal_nan=True), name
    assert many.coherent["P_tot"] == pytest.approx(one.coherent["P_tot"], rel=1e-12)
    with pytest.raises(wow.ConfigError, match="devices='tpu'"):
        wow.run(cfg, 4, devices="tpu")
