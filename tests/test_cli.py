"""The `wow` command: run, inspect, plot, info; clear errors that write nothing."""

import shutil
import subprocess

import h5py
import pytest

from wow import cli

TINY = ["--sizes", "32", "--temperatures", "30,300", "--statistics", "classical", "--dynamics", "frozen",
        "--samples", "4", "--duration", "1", "--dt", "0.05", "--sigma", "3", "--frames", "2", "--no-recoil",
        "--quiet"]


def run_bs(tmp, *extra):
    out = tmp / "bs.h5"
    argv = ["run", "backscattering", *TINY, "--out", str(out), "--figure", str(tmp / "bs.png"),
            "--table", str(tmp / "bs.md"), *extra]
    return cli.main(argv), out


@pytest.fixture(scope="module")
def bs(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("cli")
    rc, out = run_bs(tmp)
    assert rc == 0
    return tmp, out


def test_run_writes_file_table_and_figure(bs):
    tmp, out = bs
    assert out.exists() and (tmp / "bs.png").stat().st_size > 10_000
    md = (tmp / "bs.md").read_text()
    assert "| N " in md and "classical" in md and "±" in md
    with h5py.File(out) as f:
        assert f.attrs["experiment"] == "backscattering" and len(f["points"]) == 2


def test_rerun_resumes_without_recomputing(bs, capsys):
    tmp, out = bs
    with h5py.File(out) as f:
        stamps = [f["points"][g].attrs["finished_utc"] for g in f["points"]]
    rc, _ = run_bs(tmp)
    assert rc == 0
    with h5py.File(out) as f:
        assert [f["points"][g].attrs["finished_utc"] for g in f["points"]] == stamps


def test_other_inputs_refused_then_overwrite(bs, tmp_path, capsys):
    _, out = bs
    local = tmp_path / "bs.h5"
    shutil.copy(out, local)
    before = local.read_bytes()
    argv = ["run", "backscattering", *TINY, "--seed", "9", "--out", str(local), "--no-figure",
            "--table", str(tmp_path / "t.md")]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert "different inputs" in err and "seed" in err and "--overwrite" in err
    assert local.read_bytes() == before
    assert cli.main(argv + ["--overwrite"]) == 0
    with h5py.File(local) as f:
        assert f.attrs["seed"] == 9


def test_inspect(bs, capsys):
    _, out = bs
    assert cli.main(["inspect", str(out)]) == 0
    text = capsys.readouterr().out
    for s in ("experiment 'backscattering'", "temperatures = [30.0, 300.0] K", "electron.alpha = 2.0 eV/angstrom",
              "chain.N = 32", "N=32 T=300K classical frozen", "P_b", "seed 0", "jax"):
        assert s in text, s


def test_plot(bs, tmp_path, capsys):
    _, out = bs
    assert cli.main(["plot", str(out), "--out", str(tmp_path)]) == 0
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert pngs == ["bs_sweep.png"]
    assert (tmp_path / "bs_sweep.png").stat().st_size > 10_000


def test_info(capsys):
    assert cli.main(["info"]) == 0
    text = capsys.readouterr().out
    assert "jax" in text and "cpu devices" in text and "gpu devices" in text and "backscattering" in text


@pytest.mark.parametrize("extra, needle", [
    (["--samples", "1"], "--samples=1: allowed range [2, inf)"),
    (["--temperatures", "30,-5"], "--temperatures=-5: allowed range [0, inf)"),
    (["--temperatures", "30,abc"], "not a comma-separated list of numbers"),
    (["--statistics", "boltzmann"], "allowed a comma-separated subset of classical, quantum"),
    (["--dtype", "float16"], "invalid choice: 'float16'"),
    (["--sigma", "30"], "the packet leaves the open chain"),
    (["--device", "gpu"], "no GPU is visible"),
    (["--cpu-devices", "0"], "--cpu-devices=0: allowed an integer >= 1"),
    (["--coordinator", "localhost:1234"], "--coordinator, --num-processes and --process-id go together"),
    (["--coordinator", "localhost:1234", "--num-processes", "2", "--process-id", "5"],
     "process_id=5: allowed an integer in [0, 1]"),
])
def test_bad_options_write_nothing(tmp_path, capsys, extra, needle):
    if needle == "no GPU is visible":
        import jax
        try:
            if jax.local_devices(backend="gpu"):
                pytest.skip("a GPU is present")
        except RuntimeError:
            pass
    out = tmp_path / "x.h5"
    argv = ["run", "backscattering", *TINY, "--out", str(out), "--figure", str(tmp_path / "x.png"),
            "--table", str(tmp_path / "x.md"), *extra]
    assert cli.main(argv) == 2
    assert needle in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []


def test_bad_out_and_bad_files(tmp_path, capsys):
    assert cli.main(["run", "backscattering", *TINY, "--out", str(tmp_path)]) == 2
    assert "is a directory" in capsys.readouterr().err
    assert cli.main(["run", "backscattering", *TINY, "--out", str(tmp_path / "x.txt")]) == 2
    assert ".h5" in capsys.readouterr().err
    bad = tmp_path / "bad.h5"
    bad.write_text("hello")
    assert cli.main(["inspect", str(bad)]) == 2
    assert "not a readable HDF5 file" in capsys.readouterr().err
    assert cli.main(["plot", str(tmp_path / "missing.h5")]) == 2
    assert "no such file" in capsys.readouterr().err
    assert cli.main(["run", "nonsense"]) == 2
    assert "unknown experiment 'nonsense'" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bad.h5"]


def test_console_script():
    exe = shutil.which("wow")
    if exe is None:
        pytest.skip("the console script is not installed (pip install -e .)")
    r = subprocess.run([exe, "info"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and "jax" in r.stdout
    r = subprocess.run([exe, "inspect", "/nonexistent.h5"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 2 and "no such file" in r.stderr


def test_list_and_version(capsys):
    from wow import __version__
    from wow.experiments import EXPERIMENTS

    assert cli.main(["list"]) == 0
    text = capsys.readouterr().out
    assert all(name in text for name in EXPERIMENTS)
    with pytest.raises(SystemExit) as e:
        cli.main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"wow {__version__}"


def test_every_experiment_has_help(capsys):
    from wow.experiments import EXPERIMENTS

    for name in EXPERIMENTS:
        assert cli.main(["run", name, "--help"]) == 0
        assert f"usage: wow run {name}" in capsys.readouterr().out
