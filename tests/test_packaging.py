"""The package as a user gets it from a plain (non-editable) `pip install .`: the experiments, the
`wow` command and `python -m wow` work from outside the checkout, with the licence and py.typed."""

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def installed(tmp_path_factory):
    """pip install --no-deps --target DIR <checkout>: the dependencies come from this environment."""
    target = tmp_path_factory.mktemp("site")
    r = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-compile",
                        "--disable-pip-version-check", "--target", str(target), str(ROOT)],
                       capture_output=True, text=True, timeout=300)
    if r.returncode != 0 and "Could not find a version that satisfies" in r.stderr:
        pytest.skip(f"pip cannot reach an index for the build backend: {r.stderr[-300:]}")
    assert r.returncode == 0, r.stderr
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONSTARTUP")}
    env["PYTHONPATH"] = str(target)  # ahead of any editable install of a checkout
    env["JAX_PLATFORMS"] = "cpu"
    return target, env, tmp_path_factory.mktemp("elsewhere")


def test_installed_package_is_the_copy(installed):
    target, env, cwd = installed
    r = subprocess.run([sys.executable, "-c", "import wow, wow.experiments.backscattering as b; "
                        "print(wow.__file__); print(b.__file__)"], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert all(line.startswith(str(target)) for line in r.stdout.split()), r.stdout
    assert (target / "wow" / "py.typed").exists()
    meta = next(target.glob("wow-*.dist-info"))
    text = (meta / "METADATA").read_text()
    assert "License: MIT" in text and "Author: the wow developers" in text
    assert any(p.name.startswith("LICENSE") for p in meta.rglob("LICENSE*"))


def test_python_m_wow_version_and_list(installed):
    from wow import __version__

    target, env, cwd = installed
    r = subprocess.run([sys.executable, "-m", "wow", "--version"], cwd=cwd, env=env, capture_output=True,
                       text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip() == f"wow {__version__}", (r.stdout, r.stderr)
    r = subprocess.run([sys.executable, "-m", "wow", "list"], cwd=cwd, env=env, capture_output=True, text=True,
                       timeout=120)
    assert r.returncode == 0
    for name in ("backscattering", "recoil", "trajectories", "table1", "elastic_fraction", "troisi_orlandi"):
        assert name in r.stdout


def test_wow_run_help_from_the_installed_script(installed):
    target, env, cwd = installed
    script = target / "bin" / "wow"
    assert script.exists()
    r = subprocess.run([sys.executable, str(script), "run", "backscattering", "--help"], cwd=cwd, env=env,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert "usage: wow run backscattering" in r.stdout and "--temperatures" in r.stdout
    assert list(cwd.iterdir()) == [], "--help writes nothing"
