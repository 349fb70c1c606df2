"""Tests run on the CPU in float64 with strict promotion: the library itself never flips
global JAX config; the test session does, once, here.

Speed of the suite: XLA compiles the tests' many small programs without its expensive optimisation
passes (`JAX_DISABLE_MOST_OPTIMIZATIONS=1`; the suite is mostly compilation: 465 s instead of 621 s wall
for the whole suite on 2 cores). The tests check physics against references, which does not depend on
the optimiser; runs and benchmarks keep full optimisation. `WOW_TEST_OPTIMIZE=1` runs the suite with the
optimiser on. One persistent compilation cache per test session (a fresh temporary folder, named in the
environment so that pytest-xdist workers and the subprocesses of the command-line tests share it, and
removed at the end: a program compiled once is loaded, not recompiled; every program is kept, measured
over the whole suite: 484 hits and 2300 writes for 2784 compilations in the workers, most hits small
eager operations both workers compile; tests that run the same configuration with the same sample
count, chunk size and device set share one program this way). Not used:
`--xla_cpu_use_fusion_emitters=false` halves the compile time (suite 531 s -> 343 s) but five tests
fail: chunked, sharded and reversible runs differ from the plain run by up to 1e-7 relative (held to
1e-10..1e-12) and an Ehrenfest phonon-momentum tally misses its reference by 1e-5 (held to 1e-8). Exhaustive checks that a faster test already guards
are marked `slow` and run only with `--runslow`."""

import atexit
import os
import shutil
import tempfile

os.environ.setdefault("JAX_PLATFORMS", "cpu")
os.environ.setdefault("XLA_FLAGS", "--xla_force_host_platform_device_count=4")
if os.environ.get("WOW_TEST_OPTIMIZE", "0") != "1":
    os.environ.setdefault("JAX_DISABLE_MOST_OPTIMIZATIONS", "1")
if "JAX_COMPILATION_CACHE_DIR" not in os.environ:
    # the first process of the run (pytest-xdist's controller) makes the folder; the workers and the
    # subprocesses inherit its name; the maker removes it when the run ends
    _cache = tempfile.mkdtemp(prefix="wow-test-jax-cache-")
    os.environ["JAX_COMPILATION_CACHE_DIR"] = _cache
    atexit.register(shutil.rmtree, _cache, ignore_errors=True)
    # every program: ~2000 of the suite's compilations are small eager operations (~45 ms each)
    # that both workers compile with the same shapes; a write costs ~2-7 ms, a hit saves ~40 ms
    os.environ.setdefault("JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS", "0")

import jax  # noqa: E402
import pytest  # noqa: E402

jax.config.update("jax_enable_x64", True)
jax.config.update("jax_numpy_rank_promotion", "raise")


def pytest_addoption(parser):
    parser.addoption("--runslow", action="store_true", default=False,
                     help="also run the exhaustive checks marked slow (a faster test guards each)")


def pytest_configure(config):
    config.addinivalue_line("markers", "slow: exhaustive check; a faster test guards the same thing (--runslow)")


def pytest_collection_modifyitems(config, items):
    if config.getoption("--runslow"):
        return
    skip = pytest.mark.skip(reason="exhaustive check: run with --runslow")
    for item in items:
        if "slow" in item.keywords:
            item.add_marker(skip)
