"""Devices: CPU cores as devices, clear refusals, and a two-process jax.distributed run that equals
a one-process run (both through the experiment command and its results file)."""

import os
import socket
import subprocess
import sys
from pathlib import Path

import h5py
import jax
import jax.numpy as jnp
import numpy as np
import pytest

import wow
from wow import devices, io

ROOT = Path(__file__).resolve().parents[1]
TINY = ["--sizes", "32", "--temperatures", "30,300", "--statistics", "classical", "--dynamics", "wow",
        "--samples", "6", "--duration", "1", "--dt", "0.05", "--sigma", "3", "--frames", "2", "--no-recoil",
        "--quiet"]


@pytest.mark.parametrize("n", [0, -2, 1.5, True, "2"])
def test_bad_cpu_device_counts_are_refused(n):
    with pytest.raises(wow.ConfigError, match="cpu_devices="):
        devices.use_cpu_cores(n)


def test_cpu_devices_already_started_are_kept():
    # conftest forces 4 host devices through XLA_FLAGS: an explicit user setting is kept
    assert devices.use_cpu_cores(2) == len(jax.devices("cpu")) == 4


@pytest.mark.parametrize("args, needle", [
    (("localhost", 2, 0), "coordinator="),
    (("localhost:1234", 0, 0), "num_processes="),
    (("localhost:1234", 2, 2), r"process_id=2: allowed an integer in \[0, 1\]"),
])
def test_bad_distributed_arguments_are_refused_before_starting(args, needle):
    with pytest.raises(wow.ConfigError, match=needle):
        devices.distributed(*args)
    assert jax.process_count() == 1


def test_put_and_gather_round_trip_over_a_sharded_mesh():
    mesh = jax.sharding.Mesh(np.array(jax.devices()), ("s",))
    by = jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec("s"))
    x = np.arange(24.0).reshape(8, 3)
    y = devices.put({"a": x}, by)
    assert len(y["a"].sharding.device_set) == len(jax.devices())
    np.testing.assert_array_equal(devices.gather(jax.jit(lambda t: t["a"] * 2)(y)), 2 * x)


def _free_port():
    with socket.socket() as s:
        s.bind(("localhost", 0))
        return s.getsockname()[1]


def _command(out, *extra):
    return [sys.executable, str(ROOT / "experiments" / "backscattering.py"), *TINY, "--out", str(out),
            "--figure", str(out.with_suffix(".png")), "--table", str(out.with_suffix(".md")), *extra]


def test_two_processes_equal_one(tmp_path):
    """Two processes with two CPU devices each (jax.distributed, gloo) run the sweep; only process 0
    writes, and the file holds the same per-sample tallies as a one-process, one-device run."""
    env = {k: v for k, v in os.environ.items() if k != "XLA_FLAGS"}
    env["JAX_PLATFORMS"] = "cpu"
    port = _free_port()
    multi = tmp_path / "multi.h5"
    procs = [subprocess.Popen(_command(multi, "--cpu-devices", "2", "--coordinator", f"localhost:{port}",
                                       "--num-processes", "2", "--process-id", str(i)),
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for i in range(2)]
    try:
        outs = [p.communicate(timeout=240) for p in procs]
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (o, e) in zip(procs, outs):
        assert p.returncode == 0, e[-3000:]
    assert "P_coh" in outs[0][0] and "P_coh" not in outs[1][0], "only process 0 reports"
    single = tmp_path / "single.h5"
    r = subprocess.run(_command(single, "--cpu-devices", "1"), env=env, capture_output=True, text=True, timeout=240)
    assert r.returncode == 0, r.stderr[-3000:]
    with h5py.File(multi) as f:
        assert f.attrs["device"].startswith("4 x cpu"), f.attrs["device"]
    a, b = io.read_results(multi), io.read_results(single)
    assert len(a.points) == len(b.points) == 2
    for p, q in zip(a.points, b.points):
        for k in ("P_b", "dE_e"):
            np.testing.assert_allclose(p.per_sample[k], q.per_sample[k], rtol=1e-10, atol=1e-13)
    assert sorted(x.name for x in tmp_path.iterdir()) == ["multi.h5", "multi.md", "multi.png",
                                                          "single.h5", "single.md", "single.png"]


def test_compile_for_cpu_options_and_their_fallback(monkeypatch):
    lowered = jax.jit(lambda x: jnp.cumsum(x) * 2).lower(jnp.arange(5.0))
    ok = devices.compile_for(lowered, jax.devices())
    np.testing.assert_array_equal(ok(jnp.arange(5.0)), 2 * np.cumsum(np.arange(5.0)))
    # an XLA that no longer knows an option: compiled without the options, same numbers
    monkeypatch.setattr(devices, "CPU_COMPILER_OPTIONS", {"xla_cpu_no_such_option_in_any_xla": True})
    again = devices.compile_for(lowered, jax.devices())
    np.testing.assert_array_equal(again(jnp.arange(5.0)), ok(jnp.arange(5.0)))
