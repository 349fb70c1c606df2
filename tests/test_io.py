"""Results files: round trip, resumable sweeps (exception and killed process), refusals."""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time

import h5py
import numpy as np
import pytest

import wow
from wow import io
from wow.electron import k_grid

from fakes import interrupt_sweep


def tiny(**kw):
    base = dict(chain=wow.Chain(N=32), electron=wow.Electron(sigma=3.0), temperature=300.0,
                dt=0.05, duration=1.0, n_frames=2)
    base.update(kw)
    return wow.Config(**base)


def sweep_points(trajectories=0):
    return [io.Point(f"T={T:g} {d}", {"temperature": T, "dynamics": d}, tiny(temperature=T, dynamics=d),
                     trajectories)
            for d in ("frozen", "wow") for T in (30.0, 300.0)]


#: Samples per point of the interrupted sweeps: 4, as in ``reference``, so that their frozen points
#: run the program the reference compiled (the suite's compilation cache shares it across workers)
KILL_SAMPLES = 4


def kill_points():
    return [io.Point(f"T={T:g}", {"temperature": T}, tiny(temperature=T, dynamics="frozen"))
            for T in (10.0, 30.0, 100.0, 300.0)]


INPUTS = {"temperatures": ([30.0, 300.0], "K", "temperatures")}


def content(path):
    """Everything that must not depend on how the sweep was run (no timings, no provenance)."""
    r = io.read_results(path)
    out = {"inputs_json": r.attrs["inputs_json"], "n": len(r.points)}
    for p in r.points:
        out[p.label] = (p.values, io.config_to_flat(p.config), {k: np.asarray(v) for k, v in p.per_sample.items()},
                        p.stats, p.coherent)
    return out


def assert_same(a, b):
    assert a["inputs_json"] == b["inputs_json"] and a["n"] == b["n"]
    for k in a:
        if k in ("inputs_json", "n"):
            continue
        va, vb = a[k], b[k]
        assert va[0] == vb[0] and va[1] == vb[1]
        for name in va[2]:
            np.testing.assert_allclose(va[2][name], vb[2][name], rtol=1e-12, atol=1e-14, equal_nan=True)
        for name in va[3]:
            np.testing.assert_allclose(va[3][name], vb[3][name], rtol=1e-10, atol=1e-14, equal_nan=True)


@pytest.fixture(scope="module")
def reference(tmp_path_factory):
    path = tmp_path_factory.mktemp("ref") / "ref.h5"
    io.run_sweep(path, "test", sweep_points(), 4, seed=3, inputs=INPUTS)
    return path


def test_config_round_trip():
    cfg = tiny(electron=wow.Electron(sigma=3.0, x0=30.0, k0=0.5, bond_defects=((5, -0.25),)), cm_momentum=1.5,
               recoil=True)
    flat = io.config_to_flat(cfg)
    assert io.config_from_flat(json.loads(json.dumps(flat))) == cfg
    assert set(flat) <= set(io.CONFIG_UNITS), "every Config input needs a unit in io.CONFIG_UNITS"


def test_round_trip_matches_memory(reference):
    r = io.read_results(reference)
    assert [p.label for p in r.points] == [p.label for p in sweep_points()]
    p = r.points[3]
    mem = wow.run(p.config, 4, seed=3)
    for k, v in mem.per_sample.items():
        np.testing.assert_array_equal(p.per_sample[k], v)
    for k, (m, s) in mem.stats.items():
        assert p.stats[k] == pytest.approx((m, s), nan_ok=True)
    assert p.coherent == pytest.approx(mem.coherent)
    np.testing.assert_array_equal(p.times, mem.times)
    np.testing.assert_allclose(p.trace_mean["P_R"], mem.traces["P_R"].mean(0))
    with h5py.File(reference) as f:  # self-describing: units, provenance, seed
        assert f.attrs["format"] == "wow-results" and f.attrs["seed"] == 3
        for key in ("wow_version", "git_commit", "jax_version", "device", "dtype", "wall_s", "created_utc"):
            assert key in f.attrs
        g = f["points/p0003"]
        assert g["config/temperature"].attrs["units"] == "K"
        assert g["config/chain.spring"].attrs["units"] == "eV/angstrom^2"
        assert g["per_sample/dE_b"].attrs["units"] == "eV"
        assert g["config/temperature"][()] == 300.0 and g.attrs["wall_s"] > 0
        assert f["inputs/temperatures"].attrs["units"] == "K"


@pytest.mark.slow
def test_saved_trajectory_equals_memory(tmp_path):
    cfg = tiny(temperature=300.0, dynamics="wow", recoil=True, n_frames=4, save_density=True)
    path = tmp_path / "t.h5"
    io.run_sweep(path, "test", [io.Point("a", {"N": 32}, cfg, trajectories=2)], 4, seed=5)
    tr = io.read_results(path).points[0].trajectories
    mem = wow.run(cfg, 4, seed=5)
    # the trajectory run has 2 samples; they are samples 0 and 1 of the 4-sample ensemble
    np.testing.assert_allclose(tr["density"], mem.traces["density"][:2], rtol=1e-12, atol=1e-15)
    order = np.argsort(k_grid(32, cfg.chain.a))
    np.testing.assert_allclose(tr["momentum"], mem.traces["momentum"][:2][..., order], rtol=1e-12, atol=1e-15)
    np.testing.assert_allclose(tr["P_R"], mem.traces["P_R"][:2], rtol=1e-12)
    # the frames agree with the engine's own tallies: band energy at t = 0 is E_in; norm stays 1
    np.testing.assert_allclose(tr["E_band"][:, 0], mem.per_sample["E_in"][:2], rtol=1e-12)
    np.testing.assert_allclose(tr["momentum"].sum(-1), 1.0, rtol=1e-12)
    # lattice frames: no CM part, and moving (wow), with the conserved harmonic energy
    assert tr["u"].shape == (2, 5, 32)
    np.testing.assert_allclose(tr["u"].sum(-1), 0.0, atol=1e-12)
    assert np.abs(tr["u"][:, -1] - tr["u"][:, 0]).max() > 1e-4
    np.testing.assert_allclose(tr["E_lattice"], np.broadcast_to(tr["E_lattice"][:, :1], (2, 5)), rtol=1e-9)
    with h5py.File(path) as f:
        d = f["points/p0000/trajectories/density"]
        assert d.compression == "gzip" and d.chunks is not None


def test_resume_after_exception(tmp_path, reference, monkeypatch):
    path = tmp_path / "s.h5"
    real = io.sweep.run_ensemble
    interrupt_sweep(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", sweep_points(), 4, seed=3, inputs=INPUTS)
    assert len(io.read_results(path).points) == 2
    assert not list(tmp_path.glob(".*.tmp")), "no temporary left after an exception"
    monkeypatch.setattr(io.sweep, "run_ensemble", real)
    seen = []
    io.run_sweep(path, "test", sweep_points(), 4, seed=3, inputs=INPUTS, log=seen.append)
    assert any("resuming, 2 of 4" in s for s in seen)
    assert_same(content(path), content(reference))


def test_other_inputs_refused_and_file_untouched(tmp_path, reference):
    path = tmp_path / "r.h5"
    path.write_bytes(reference.read_bytes())
    before = path.read_bytes()
    with pytest.raises(io.ResultsError, match=r"different inputs \(seed: 3 in the file, 4 now.*--overwrite"):
        io.run_sweep(path, "test", sweep_points(), 4, seed=4, inputs=INPUTS)
    with pytest.raises(io.ResultsError, match="points"):
        io.run_sweep(path, "test", sweep_points()[:3], 4, seed=3, inputs=INPUTS)
    assert path.read_bytes() == before
    io.run_sweep(path, "test", sweep_points()[:1], 4, seed=4, inputs=INPUTS, overwrite=True)
    r = io.read_results(path)
    assert len(r.points) == 1 and r.attrs["seed"] == 4


def test_bad_files(tmp_path):
    text = tmp_path / "notes.h5"
    text.write_text("not hdf5")
    with pytest.raises(io.ResultsError, match="not a readable HDF5 file"):
        io.read_results(text)
    other = tmp_path / "other.h5"
    with h5py.File(other, "w") as f:
        f["x"] = 1
    with pytest.raises(io.ResultsError, match="not a wow results file"):
        io.read_results(other)
    before = other.read_bytes()
    with pytest.raises(io.ResultsError, match="not a wow results file"):
        io.run_sweep(other, "test", sweep_points()[:1], 4)
    assert other.read_bytes() == before
    with pytest.raises(io.ResultsError, match="no such file"):
        io.read_results(tmp_path / "missing.h5")


def test_bad_inputs_write_nothing(tmp_path):
    path = tmp_path / "bad.h5"
    with pytest.raises(wow.ConfigError, match="n_samples=1"):
        io.run_sweep(path, "test", sweep_points(), 1)
    with pytest.raises(wow.ConfigError, match="point 'x': temperature=-1"):
        io.run_sweep(path, "test", [io.Point("x", {}, tiny(temperature=-1.0))], 2)
    with pytest.raises(wow.ConfigError, match="trajectories=5 must be an integer"):
        io.run_sweep(path, "test", [io.Point("x", {}, tiny(), trajectories=5)], 2)
    with pytest.raises(wow.ConfigError, match="devices='gpu'"):
        io.run_sweep(path, "test", sweep_points(), 2, devices="gpu")
    with pytest.raises(io.ResultsError, match="does not exist"):
        io.run_sweep(tmp_path / "no" / "dir.h5", "test", sweep_points(), 2)
    assert list(tmp_path.iterdir()) == []


def test_h5dump_reads_the_file(reference):
    exe = __import__("shutil").which("h5dump")
    if exe is None:
        pytest.skip("h5dump (hdf5-tools) is not installed")
    r = subprocess.run([exe, "-d", "/points/p0001/config/temperature", str(reference)], capture_output=True,
                       text=True, timeout=60)
    assert r.returncode == 0 and "300" in r.stdout and '"K"' in r.stdout
    assert subprocess.run([exe, "-H", str(reference)], capture_output=True, timeout=60).returncode == 0


def test_unknown_config_field_is_a_clear_error():
    flat = io.config_to_flat(tiny())
    flat["future_option"] = 1
    with pytest.raises(io.ResultsError, match=r"\['future_option'\] are not wow.Config fields"):
        io.config_from_flat(flat)


# ------------------------------------------------------------------------------------------------
# The write scheme: one small file per finished point, merged once at the end
# ------------------------------------------------------------------------------------------------
def cheap_points(n=10):
    """Points that take a few ms to run and ~0.1 s to write (frames of both samples saved)."""
    return [io.Point(f"T={T:g}", {"temperature": T}, tiny(temperature=T, dynamics="frozen", n_frames=4,
                                                           save_density=True), trajectories=2)
            for T in np.linspace(10.0, 300.0, n)]


def full_content(path):
    r = io.read_results(path)
    out = content(path)
    for p in r.points:
        out[p.label + " traces"] = ({k: np.asarray(v) for k, v in p.trace_mean.items()},
                                    {k: np.asarray(v) for k, v in (p.trajectories or {}).items()})
    return out


def assert_same_full(a, b):
    assert_same({k: v for k, v in a.items() if not k.endswith(" traces")},
                {k: v for k, v in b.items() if not k.endswith(" traces")})
    for k in a:
        if k.endswith(" traces"):
            for da, db in zip(a[k], b[k]):
                assert da.keys() == db.keys()
                for name in da:
                    np.testing.assert_allclose(da[name], db[name], rtol=1e-12, atol=1e-14)


def test_points_do_not_rewrite_the_file(tmp_path):
    """O(point): while the sweep runs, the file is not touched; each point is one new part."""
    path = tmp_path / "o.h5"
    snapshots = []

    def log(line):
        if "[" in line:  # a point was just written
            snapshots.append((path.read_bytes(), sorted(p.name for p in io.store.parts_dir(path).glob("*.h5"))))

    io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1, log=log)
    first = snapshots[0][0]
    assert all(s[0] == first for s in snapshots), "a point rewrote the results file"
    assert [s[1] for s in snapshots] == [[f"p{j:04d}.h5" for j in range(i + 1)] for i in range(4)]
    assert not io.store.parts_dir(path).exists(), "the parts are merged and removed at the end"
    with h5py.File(path) as f:
        assert sorted(f["points"]) == ["p0000", "p0001", "p0002", "p0003"]
        assert f.attrs["wall_s"] == pytest.approx(sum(g.attrs["wall_s"] for g in f["points"].values()))


@pytest.mark.slow
def test_random_kills_resume_to_identical_numbers(tmp_path):
    """SIGKILL at random moments (in runs, writes and the final merge): after every kill the file is
    readable and holds a prefix of the points; resuming ends with the numbers of an uninterrupted run."""
    import random

    path = tmp_path / "rk.h5"
    whole = tmp_path / "whole.h5"
    io.run_sweep(whole, "test", cheap_points(), 2, seed=7)
    script = textwrap.dedent(f"""
        import sys
        sys.path.insert(0, {os.path.dirname(__file__)!r})
        import jax; jax.config.update("jax_enable_x64", True)
        import test_io
        from wow import io
        pts = test_io.cheap_points()
        io.sweep.ensemble_runner(pts[0], 2, 7)  # compile first: the kills land in runs, writes, the merge
        print("ready", flush=True)
        io.run_sweep({str(path)!r}, "test", pts, 2, seed=7)
    """)
    rng = random.Random(2024)
    seen, kills = [], 0
    env = os.environ.copy()  # the processes after the first load their programs from a compilation cache
    env.update(JAX_COMPILATION_CACHE_DIR=str(tmp_path / "jax_cache"), JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
               JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="0")
    for attempt in range(3):
        proc = subprocess.Popen([sys.executable, "-c", script], env=env, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE)
        try:
            assert proc.stdout.readline().strip() == b"ready", proc.stderr.read().decode()
            if proc.wait(timeout=rng.uniform(0.0, 2.0)) == 0:
                break  # finished before the kill
        except subprocess.TimeoutExpired:
            proc.send_signal(signal.SIGKILL)
            proc.wait(10)
            kills += 1
        finally:
            if proc.poll() is None:
                proc.kill()
        if path.exists():
            r = io.read_results(path)  # always readable
            assert [p.index for p in r.points] == list(range(len(r.points))), "points form a prefix"
            seen.append(len(r.points))
    assert kills >= 1
    assert seen == sorted(seen), "a kill never loses a finished point"
    io.run_sweep(path, "test", cheap_points(), 2, seed=7)
    assert not io.store.parts_dir(path).exists() and not list(tmp_path.glob(".*.tmp"))
    assert_same_full(full_content(path), full_content(whole))


def test_crash_inside_a_write_or_the_merge_loses_nothing_finished(tmp_path, monkeypatch):
    path = tmp_path / "c.h5"
    real_write, calls = io.format.write_point, []

    def failing_write(f, index, *a):
        calls.append(index)
        real_write(f, index, *a)
        if index == 2:
            raise KeyboardInterrupt("killed while writing point 2")

    monkeypatch.setattr(io.sweep, "write_point", failing_write)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1)
    assert [p.index for p in io.read_results(path).points] == [0, 1]
    assert not list(io.store.parts_dir(path).glob(".*.tmp")), "the half-written part is removed"
    monkeypatch.setattr(io.sweep, "write_point", real_write)

    def failing_view(f):
        raise KeyboardInterrupt("killed while merging")

    monkeypatch.setattr(io.sweep, "write_view", failing_view)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1)
    r = io.read_results(path)
    assert [p.index for p in r.points] == [0, 1, 2, 3], "the finished parts survive a failed merge"
    with h5py.File(path) as f:
        assert len(f["points"]) == 0, "the file was not replaced"
    monkeypatch.setattr(io.sweep, "write_view", io.format.write_view)
    seen = []
    io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1, log=seen.append)
    assert any("resuming, 4 of 4" in s for s in seen)
    whole = tmp_path / "w.h5"
    io.run_sweep(whole, "test", kill_points(), KILL_SAMPLES, seed=1)
    assert_same(content(path), content(whole))


def test_parts_of_another_sweep_and_damaged_parts_are_not_used(tmp_path, monkeypatch):
    path = tmp_path / "d.h5"
    real = io.sweep.run_ensemble
    interrupt_sweep(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1)
    monkeypatch.setattr(io.sweep, "run_ensemble", real)
    # a damaged part (e.g. a disk error) is ignored with a warning and its point runs again
    (io.store.parts_dir(path) / "p0001.h5").write_bytes(b"not hdf5")
    with pytest.warns(UserWarning, match="damaged part"):
        assert [p.index for p in io.read_results(path).points] == [0]
    with pytest.warns(UserWarning, match="damaged part"):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1)
    assert len(io.read_results(path).points) == 4
    # parts of an overwritten sweep (say, left by a kill just after the new file was created) are ignored
    calls = interrupt_sweep(monkeypatch, 3)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=9, overwrite=True)
    old_parts = {p.name: p.read_bytes() for p in io.store.parts_dir(path).glob("p*.h5")}
    assert sorted(old_parts) == ["p0000.h5", "p0001.h5"]
    calls[:] = [1]  # the new sweep stops at its second point
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=5, overwrite=True)
    (io.store.parts_dir(path) / "p0001.h5").write_bytes(old_parts["p0001.h5"])
    r = io.read_results(path)
    assert r.attrs["seed"] == 5 and [p.index for p in r.points] == [0]
    assert r.points[0].attrs["seed"] == 5


def test_kill_between_the_merge_and_removing_the_parts(tmp_path, monkeypatch):
    path = tmp_path / "m.h5"

    def killed(path):
        raise KeyboardInterrupt("killed after the merged file replaced the old one")

    monkeypatch.setattr(io.store, "remove_parts", killed)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1)
    assert len(list(io.store.parts_dir(path).glob("p*.h5"))) == 4
    assert [p.index for p in io.read_results(path).points] == [0, 1, 2, 3], "no point twice"
    monkeypatch.undo()
    io.run_sweep(path, "test", kill_points(), KILL_SAMPLES, seed=1)  # merges again (view rebuilt), removes the parts
    assert not io.store.parts_dir(path).exists()
    whole = tmp_path / "w.h5"
    io.run_sweep(whole, "test", kill_points(), KILL_SAMPLES, seed=1)
    assert_same(content(path), content(whole))
