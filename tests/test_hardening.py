"""Hardening: bad inputs are refused before any work with the parameter named and nothing written
(a table through the API and the command line), one writer per results file, per-point checksums
verified on resume and by `wow inspect`, non-finite tallies stop a point, Ctrl-C leaves a resumable
file. Validation only, or tiny sweeps with a numpy runner: no compilation."""

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import jax
import numpy as np
import pytest

import wow
from wow import Chain, Config, Electron, cli, io
from wow.ensemble import seed_key
from wow.io.store import damaged_points, exclusive, lock_path
from wow.sanity import NonFiniteError, check_finite

from fakes import FakeResult

ROOT = Path(__file__).resolve().parents[1]
SMALL = dict(chain=Chain(N=64), electron=Electron(sigma=3.0), duration=1.0, n_frames=2)

API = [  # (Config changes, needle in the message)
    (dict(chain=Chain(N=256.0)), "chain.N=256.0 must be an integer"),
    (dict(chain=Chain(N="256")), "chain.N='256' must be an integer"),
    (dict(chain=Chain(N=2)), "chain.N=2 is out of range"),
    (dict(chain=Chain(N=65, boundary="ring")), "chain.N=65 with boundary='ring'"),
    (dict(chain=Chain(N=64, boundary="loop")), "chain.boundary='loop' is not an option"),
    (dict(chain=Chain(N=64, mass=0.0)), "chain.mass=0.0 is out of range"),
    (dict(chain=Chain(N=64, mass=1e-30)), "allowed (0, 5.58728e-15] (ω_max dt <= 2 with ω_max"),
    (dict(chain=Chain(N=64, spring=-1.0)), "chain.spring=-1.0"),
    (dict(chain=Chain(N=64, a=float("nan"))), "chain.a=nan must be finite"),
    (dict(temperature=-1.0), "temperature=-1.0 is out of range"),
    (dict(temperature=1e300), "temperature=1e+300: the thermal bond stretch"),
    (dict(temperature=float("inf")), "temperature=inf must be finite"),
    (dict(statistics="boltzmann"), "statistics='boltzmann' is not an option"),
    (dict(dynamics="magic"), "dynamics='magic' is not an option"),
    (dict(recoil="yes"), "recoil='yes' must be True or False"),
    (dict(cm_momentum=1e30), "cm_momentum=1e+30 eV·fs/Å moves the centre of mass"),
    (dict(cm_momentum="0"), "cm_momentum='0' must be a number"),
    (dict(dt=0.0), "dt=0.0 is out of range"),
    (dict(dt=40.0, duration=80.0), "dt=40.0 fs is beyond the accuracy bound"),
    (dict(dt=0.5, duration=1.0), "dt=0.5 fs is beyond the accuracy bound: bond angle"),
    (dict(duration=-1.0), "duration=-1.0 is out of range"),
    (dict(duration=1.01), "duration=1.01 fs is not a whole number of frames"),
    (dict(n_frames=5000), "nearest"),
    (dict(n_frames=2.0), "n_frames=2.0 must be an integer"),
    (dict(dtype="float16"), "dtype='float16' is not an option"),
    (dict(save_density="yes"), "save_density='yes' must be True or False"),
    (dict(check_inside=1), "check_inside=1 must be True or False"),
    (dict(order=3), "order=3 is not an option"),
    (dict(electron=Electron(t0=0.0, sigma=3.0)), "electron.t0=0.0 is out of range"),
    (dict(electron=Electron(alpha="2", sigma=3.0)), "electron.alpha='2' must be a number"),
    (dict(electron=Electron(sigma=1e-3)), "electron.sigma=0.001 is out of range"),
    (dict(electron=Electron(k0=10.0, sigma=3.0)), "electron.k0=10.0 is out of range"),
    (dict(electron=Electron(x0=-5.0, sigma=3.0)), "electron.x0=-5.0 is out of range"),
    (dict(electron=Electron(sigma=3.0, bond_defects=((999, 0.1),))), "bond_defects[0] bond index=999"),
    (dict(electron=Electron(sigma=3.0, onsite_defects=((0,),))), "onsite_defects[0]=(0,) must be a pair"),
    (dict(quantum=wow.QuantumLattice(modes=(1,))), "quantum="),
    (dict(electron=Electron(sigma=30.0)), "the packet leaves the open chain"),
    (dict(chain=Chain(N=64, boundary="ring"), duration=1e8, n_frames=1), "5000000000 steps per frame"),
]

RUN = [  # (wow.run keyword arguments, needle)
    (dict(n_samples=0), "n_samples=0 must be an integer >= 1"),
    (dict(n_samples=2.0), "n_samples=2.0 must be an integer"),
    (dict(n_samples=2**62), "n_samples=4611686018427387904: the gathered results need"),
    (dict(n_samples=4, seed=-1), "seed=-1 must be an integer in [0, 2**63)"),
    (dict(n_samples=4, seed=2**64), "seed=18446744073709551616"),
    (dict(n_samples=4, seed=1.5), "seed=1.5"),
    (dict(n_samples=4, memory_bytes="2GB"), "memory_bytes='2GB' must be an integer"),
    (dict(n_samples=4, memory_bytes=1000), "more than memory_bytes=1000"),
    (dict(n_samples=4, chunk_size=0), "chunk_size=0 must be an integer >= 1"),
    (dict(n_samples=4, keep_final="no"), "keep_final='no' must be True or False"),
    (dict(n_samples=4, initial="x"), "initial='x': allowed a wow.InitialState or None"),
    (dict(n_samples=4, progress=3), "progress=3: allowed None, False or a callable"),
    (dict(n_samples=4, allow_crossing=1), "allow_crossing=1 must be True or False"),
]


@pytest.mark.parametrize("change, needle", API, ids=[n[:30] for _, n in API])
def test_config_refused_with_the_parameter_named(change, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    cfg = Config(**{**SMALL, **change})
    with pytest.raises(wow.ConfigError) as e:
        wow.run(cfg, 4, progress=False)  # validate first: nothing is compiled or written
    assert needle in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("kw, needle", RUN, ids=[n[:30] for _, n in RUN])
def test_run_arguments_refused(kw, needle, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(wow.ConfigError) as e:
        wow.run(Config(**SMALL), **{"progress": False, **kw})
    assert needle in str(e.value), str(e.value)
    assert list(tmp_path.iterdir()) == []


def test_huge_chain_refused_before_any_array():
    cfg = Config(chain=Chain(N=10**9), electron=Electron(sigma=3.0), duration=1.0, n_frames=2)
    t0 = time.perf_counter()
    with pytest.raises(wow.ConfigError, match=r"chain.N=1000000000: one sample needs"):
        wow.run(cfg, 2, progress=False)
    assert time.perf_counter() - t0 < 2.0


TINY = ["--sizes", "32", "--temperatures", "30", "--statistics", "classical", "--dynamics", "frozen",
        "--samples", "4", "--duration", "1", "--dt", "0.05", "--sigma", "3", "--frames", "2", "--no-recoil",
        "--quiet"]

CLI = [  # (extra options of `wow run backscattering`, needle in stderr)
    (["--seed", "-1"], "--seed=-1: allowed range"),
    (["--seed", str(2**63)], "--seed=9.22337e+18: allowed range"),
    (["--duration", "0"], "--duration=0: allowed range"),
    (["--duration", "1.01"], "duration=1.01 fs is not a whole number of frames"),
    (["--dt", "0"], "--dt=0: allowed range"),
    (["--dt", "40", "--duration", "80"], "dt=40.0 fs is beyond the accuracy bound"),
    (["--dt", "abc"], "invalid float value: 'abc'"),
    (["--sizes", "32.5"], "not a comma-separated list of integers"),
    (["--sizes", "2"], "--sizes=2: allowed range [3, inf)"),
    (["--sizes", "33", "--boundary", "ring"], "chain.N=33 with boundary='ring'"),
    (["--temperatures", "1e300"], "temperature=1e+300: the thermal bond stretch"),
    (["--sigma", "0.001"], "electron.sigma=0.001 is out of range"),
    (["--alpha", "nan"], "electron.alpha=nan must be finite"),
    (["--frames", "0"], "--frames=0: allowed range [1, inf)"),
    (["--mass", "-1"], "--mass=-1: allowed range (0, inf)"),
    (["--chunk-size", "0"], "--chunk-size=0: allowed range"),
    (["--trajectories", "-1"], "--trajectories=-1: allowed range [0, inf)"),
    (["--samples", str(2**62)], "the gathered results need"),
    (["--sizes", "65536", "--frames", "20000", "--duration", "1000", "--trajectories", "64", "--samples", "64"],
     "trajectories=64 (recorded frame by frame, with densities): chain.N=65536: one sample needs"),
    (["--table", "/nonexistent-dir/x.md"], "--table /nonexistent-dir/x.md: directory /nonexistent-dir does not exist"),
    (["--figure", "/nonexistent-dir/x.png"], "--figure /nonexistent-dir/x.png: directory"),
]


@pytest.mark.parametrize("extra, needle", CLI, ids=[n[:30] for _, n in CLI])
def test_cli_refused_and_nothing_written(extra, needle, tmp_path, capsys):
    argv = ["run", "backscattering", *TINY, "--out", str(tmp_path / "x.h5"), *extra]
    if "--table" not in extra:
        argv += ["--table", str(tmp_path / "x.md")]
    if "--figure" not in extra:
        argv += ["--figure", str(tmp_path / "x.png")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert needle in err, err
    assert list(tmp_path.iterdir()) == []


def test_seed_range_is_honest_in_both_precisions():
    """seed 2**32 is not seed 0 with 64-bit JAX off, and the keys equal PRNGKey's with it on."""
    assert not np.array_equal(np.asarray(seed_key(2**32)), np.asarray(seed_key(0)))
    for s in (0, 7, 2**32, 2**63 - 1):
        assert np.array_equal(np.asarray(seed_key(s)), np.asarray(jax.random.PRNGKey(s)))  # x64 on in tests


def test_non_finite_tally_named():
    with pytest.raises(NonFiniteError, match=r"tally 'dE_cm' is not finite in 1 of 3 samples \(first: sample 2\)"):
        check_finite({"P_b": np.zeros(3), "dE_cm": np.array([0.0, 1.0, np.nan])}, {}, 3)
    check_finite({"E_b": np.array([np.nan, 1.0]), "dE_b": np.array([np.nan, 1.0])}, {"norm": np.ones((2, 3))}, 2)
    with pytest.raises(NonFiniteError, match="trace 'norm'"):
        check_finite({}, {"norm": np.array([[1.0, np.inf]])}, 1)


# ------------------------------------------------------------------------------------------------
# Results files: one writer, checksums, Ctrl-C (a numpy runner: no compilation)
# ------------------------------------------------------------------------------------------------
def fake_runner(point, n_samples, seed, **kw):
    delay = point.options.get("sleep", 0.0)
    time.sleep(delay)
    if point.options.get("nan"):
        raise NonFiniteError("tally 'P_b' is not finite in 1 of 4 samples")
    x = np.random.default_rng(seed + point.options["i"]).random(n_samples)
    return FakeResult({"P_b": x}, {"P_b": (float(x.mean()), float(x.std()))}, np.arange(2.0),
                      {"norm": np.ones((n_samples, 2))}, n_samples, seed), None


def fake_points(n, **opts):
    return [io.Point(f"p{i}", {"i": i}, None, options={"i": i, **opts}) for i in range(n)]


def sweep(path, points, **kw):
    return io.run_sweep(path, "fake", points, 4, 0, runner=fake_runner, progress=False, **kw)


def test_second_process_on_the_same_file_refuses(tmp_path):
    path = tmp_path / "r.h5"
    holder = subprocess.Popen([sys.executable, "-c", textwrap.dedent(f"""
        import fcntl, os, sys, time
        fd = os.open({str(lock_path(path))!r}, os.O_RDWR | os.O_CREAT)
        fcntl.flock(fd, fcntl.LOCK_EX); os.pwrite(fd, str(os.getpid()).encode(), 0)
        print("held", flush=True); time.sleep(30)""")], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        t0 = time.perf_counter()
        with pytest.raises(io.ResultsError, match=rf"is being written by another process \(pid {holder.pid}\)"):
            sweep(path, fake_points(2))
        assert time.perf_counter() - t0 < 1.0
        assert not path.exists()
    finally:
        holder.kill()
        holder.wait()
    sweep(path, fake_points(2))  # the lock died with its process
    assert len(io.read_results(path).points) == 2
    with exclusive(path), pytest.raises(io.ResultsError, match="another process"):
        sweep(path, fake_points(2))  # the same rule within one process (another open file)


def test_damaged_point_detected_on_resume_and_by_inspect(tmp_path, capsys):
    path = tmp_path / "r.h5"
    sweep(path, fake_points(3))
    good = io.read_results(path).points[1].per_sample["P_b"].copy()
    with h5py.File(path, "r+") as f:
        f["points/p0001/per_sample/P_b"][0] = 123.0  # damage after the fact
    assert cli.main(["inspect", str(path)]) == 1
    assert "DAMAGED: 1 point(s) do not match their checksums: p0001" in capsys.readouterr().err
    with pytest.warns(UserWarning, match=r"point\(s\) \[1\] do not match their checksums"):
        sweep(path, fake_points(3))
    assert np.array_equal(io.read_results(path).points[1].per_sample["P_b"], good)
    assert cli.main(["inspect", str(path)]) == 0
    assert "every stored point intact" in capsys.readouterr().out
    assert damaged_points(path) == []


def test_damaged_part_is_rerun(tmp_path):
    """A point kept as a part (the sweep stopped at the next point) and damaged afterwards is run again."""
    path = tmp_path / "r.h5"
    pts = [fake_points(1)[0], io.Point("p1", {"i": 1}, None, options={"i": 1, "nan": True})]
    with pytest.raises(NonFiniteError):  # the second point fails: the first stays as a part
        sweep(path, pts)
    part = path.with_name(path.name + ".parts") / "p0000.h5"
    with h5py.File(part, "r+") as f:
        good = f["points/p0000/per_sample/P_b"][()]
        f["points/p0000/per_sample/P_b"][1] = -1.0
    assert damaged_points(path) == ["p0000 (in r.h5.parts/p0000.h5)"]
    with pytest.warns(UserWarning, match="do not match their checksum"), pytest.raises(NonFiniteError):
        sweep(path, pts)
    assert damaged_points(path) == []
    with h5py.File(part, "r") as f:
        assert np.array_equal(f["points/p0000/per_sample/P_b"][()], good)


def test_non_finite_point_writes_nothing(tmp_path):
    path = tmp_path / "r.h5"
    with pytest.raises(NonFiniteError):
        sweep(path, [io.Point("p0", {"i": 0}, None, options={"i": 0, "nan": True})])
    assert io.read_results(path).points == []


SCRIPT = textwrap.dedent("""
    import sys
    sys.path.insert(0, {tests!r})
    import time
    from test_hardening import fake_points, fake_runner
    from wow.experiments import common

    def runner(point, *a, **kw):  # points after the second wait for the signal, whatever the load
        if point.options["i"] >= 2:
            time.sleep(120)
        return fake_runner(point, *a, **kw)
    p = common.parser("fake", "fake", samples=4, duration=1.0)
    args = common.check(p, p.parse_args(["--out", {out!r}, "--quiet", "--dtype", "float32"]))
    print("start", flush=True)
    common.sweep(p, args, "fake", fake_points(6, sleep=0.25), {{}}, "", runner=runner)
    print("done", flush=True)
""")


def test_ctrl_c_exits_130_and_the_file_resumes(tmp_path):
    out = tmp_path / "r.h5"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_PLATFORMS": "cpu"}
    proc = subprocess.Popen([sys.executable, "-c", SCRIPT.format(tests=str(ROOT / "tests"), out=str(out))],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    assert proc.stdout.readline().strip() == "start"
    parts = out.with_name(out.name + ".parts")
    deadline = time.time() + 20
    while not (parts.is_dir() and list(parts.glob("p0001.h5"))) and time.time() < deadline:
        time.sleep(0.02)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=20)
    assert proc.returncode == 130, err
    lines = [x for x in err.splitlines() if x.strip()]
    assert len(lines) == 1 and "interrupted;" in lines[0] and "points are saved in" in lines[0], err
    kept = len(io.read_results(out).points)
    assert 2 <= kept < 6
    # resume with the same inputs (the sleep is part of them) to the end, then compare with a fresh run
    io.run_sweep(out, "fake", fake_points(6, sleep=0.25), 4, 0, runner=fake_runner, progress=False)
    fresh = tmp_path / "fresh.h5"
    io.run_sweep(fresh, "fake", fake_points(6, sleep=0.0), 4, 0, runner=fake_runner, progress=False)
    a, b = io.read_results(out), io.read_results(fresh)
    assert len(a.points) == 6
    for p, q in zip(a.points, b.points):
        assert np.array_equal(p.per_sample["P_b"], q.per_sample["P_b"])
