"""The experiment scripts on tiny sizes: the recoil script reproduces A7/A8, the trajectories script
saves what the engine computed."""

import numpy as np
import pytest

import wow
from wow import io, plot
from wow.electron import k_grid
from wow.units import HBAR
from wow.experiments import recoil, trajectories


def test_recoil_reproduces_a7_a8(tmp_path, capsys):
    out = tmp_path / "r.h5"
    rc = recoil.main(["--sizes", "128", "--momenta=-1,0,1", "--no-thermal", "--samples", "2", "--quiet",
                      "--out", str(out), "--figure", str(tmp_path / "r.png"),
                      "--table", str(tmp_path / "r.md")])
    assert rc == 0 and (tmp_path / "r.png").exists()
    assert "A8 (µeV)" in capsys.readouterr().out
    rows = {P: (elec, cm, a8) for N, P, elec, cm, a8, pb in plot.recoil_rows(io.read_results(out))}
    a8_0 = rows["0"][2]
    cfg = io.read_results(out).points[0].config
    assert a8_0 == pytest.approx(2 * (HBAR * cfg.k0) ** 2 / (128 * cfg.chain.mass_ev))
    # the CM's share, ΔE_cm/P_b, follows A8 (to the packet's finite k spread) ...
    assert rows["0"][1] == pytest.approx(a8_0, rel=0.03)
    assert rows["1"][1] == pytest.approx(rows["1"][2], rel=0.03)
    assert abs(rows["-1"][1]) < 0.01 * a8_0  # A7: no recoil energy at P = -ħk0
    # ... and so does the energy the electron loses, relative to the recoil-free reference
    assert rows["1"][0][0] - rows["0"][0][0] == pytest.approx(rows["1"][2] - a8_0, rel=0.03)
    assert abs(rows["-1"][0][0]) < 0.05 * a8_0


def test_recoil_refuses_a_chain_too_short(tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        recoil.main(["--sizes", "32", "--out", str(tmp_path / "r.h5")])
    assert e.value.code == 2
    assert "--sizes 32" in capsys.readouterr().err and list(tmp_path.iterdir()) == []


def test_trajectories_saved_equal_engine(tmp_path, capsys):
    out = tmp_path / "t.h5"
    rc = trajectories.main(["--N", "32", "--samples", "2", "--duration", "1", "--dt", "0.05", "--sigma", "3",
                            "--frames", "4", "--statistics", "classical", "--dynamics", "frozen", "--quiet", "--out", str(out),
                            "--figure", str(tmp_path / "t.png")])
    assert rc == 0 and (tmp_path / "t.png").stat().st_size > 10_000
    p = io.read_results(out).points[0]
    mem = wow.run(p.config, 2, seed=0)
    tr = p.trajectories
    assert tr["density"].shape == (2, 5, 32)
    np.testing.assert_array_equal(tr["density"], mem.traces["density"])
    np.testing.assert_array_equal(tr["momentum"], mem.traces["momentum"][..., np.argsort(k_grid(32, 2.556))])
    np.testing.assert_array_equal(tr["P_R"], mem.traces["P_R"])
    np.testing.assert_array_equal(tr["times"], mem.times)
