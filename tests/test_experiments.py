"""The experiment scripts on tiny sizes: the recoil script reproduces A7/A8, the trajectories script
saves what the engine computed."""

import math

import numpy as np
import pytest

import wow
from wow import io, plot
from wow.electron import k_grid
from wow.theory import reflection_probability
from wow.units import HBAR
from wow.experiments import recoil, trajectories

from references import dft_weights, gaussian


def test_recoil_reproduces_a7_a8(tmp_path, capsys):
    """The CM's share of the reflected energy, ΔE_cm/P_b, against its exact value for this packet:
    in the sector Q = P + ħk0 each reflected k -> -k raises (Q - ħk)²/(2NM) by 2ħkQ/(NM), so
    ΔE_cm/P_b = 2ħ<k>_R Q/(NM) with <k>_R the mean k of the reflected weight R(k)w(k) (R from the
    transfer matrix, w the packet's |ψ~(k)|² by the test's own DFT). A8 evaluates it at k0: it is
    off by <k>_R/k0 - 1 = -1.6% here (the packet's k spread), and the electron's energy loss follows the CM's."""
    out = tmp_path / "r.h5"
    rc = recoil.main(["--sizes", "128", "--momenta=-1,0,1", "--no-thermal", "--samples", "2", "--quiet",
                      "--out", str(out), "--figure", str(tmp_path / "r.png"),
                      "--table", str(tmp_path / "r.md")])
    assert rc == 0 and (tmp_path / "r.png").exists()
    assert "A8 (µeV)" in capsys.readouterr().out
    res = io.read_results(out)
    rows = {P: (elec, cm, a8, pb) for N, P, elec, cm, a8, pb in plot.recoil_rows(res)}
    cfg = next(p.config for p in res.points if p.values["P_over_hbar_k0"] == 0.0)
    N, a, hk = cfg.chain.N, cfg.chain.a, HBAR * cfg.k0
    k, w = dft_weights(gaussian(N, a, cfg.x0, cfg.electron.sigma, cfg.k0), a)
    fwd = (k > 0) & (k < math.pi / a * (1 - 1e-12))  # the zone edge (no weight here) has no R(k)
    (bond, dt), = cfg.electron.bond_defects
    R = reflection_probability(k[fwd], cfg.electron.t0, a, t_bonds=[cfg.electron.t0 + dt])
    k_R = np.sum(k[fwd] * R * w[fwd]) / np.sum(R * w[fwd])
    NM = N * cfg.chain.mass_ev
    for P in ("-1", "0", "1"):
        elec, cm, a8, pb = rows[P]
        exact = 2 * HBAR * k_R * (float(P) + 1) * hk / NM
        # at 12 fs the packet has not quite cleared the defect: P_b is 0.5% below Σ R w (measured),
        # and ΔE_cm/P_b 0.17-0.20% above its exact value, against A8's 1.6% (the k spread)
        assert pb == pytest.approx(np.sum(R * w[fwd]), rel=0.01)
        assert cm == pytest.approx(exact, rel=5e-3, abs=1e-3 * rows["0"][2])
        assert cm == pytest.approx(a8, rel=0.03, abs=0.01 * rows["0"][2])  # A8, to the k spread
    assert abs(rows["-1"][1]) < 1e-3 * rows["0"][2]  # A7: no recoil energy at P = -ħk0 (Q = 0)
    # ... and the energy the electron loses, relative to the recoil-free reference, is the CM's
    assert rows["1"][0][0] - rows["0"][0][0] == pytest.approx(rows["1"][1] - rows["0"][1], rel=0.03)
    assert abs(rows["-1"][0][0]) < 0.05 * rows["0"][2]


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


# ------------------------------------------------------------------------------------------------
# Outputs: beside the results file, never in the checkout
# ------------------------------------------------------------------------------------------------
ROOT = __import__("pathlib").Path(__file__).resolve().parents[1]
#: test_cli.py's sweep (4 samples, recoil off): the same compiled program, which the suite's shared
#: compilation cache then loads instead of compiling again
TINY_BS = ["--sizes", "32", "--temperatures", "30,300", "--statistics", "classical", "--dynamics", "frozen",
           "--samples", "4", "--duration", "1", "--dt", "0.05", "--sigma", "3", "--frames", "2", "--no-recoil",
           "--quiet"]


def git_status():
    import subprocess

    r = subprocess.run(["git", "status", "--porcelain", "--untracked-files=all"], cwd=ROOT, capture_output=True,
                       text=True, timeout=60)
    if r.returncode != 0:
        pytest.skip("not a git checkout")
    return r.stdout


def test_outputs_go_beside_out_and_the_checkout_is_untouched(tmp_path):
    from wow import cli

    before = git_status()
    out = tmp_path / "sub" / "bs.h5"
    out.parent.mkdir()
    assert cli.main(["run", "backscattering", *TINY_BS, "--out", str(out)]) == 0
    assert sorted(p.name for p in out.parent.iterdir()) == ["bs.h5", "bs.md", "bs.png"]
    assert git_status() == before, "a run changed files in the checkout"


def test_default_outputs_go_to_results_in_the_working_directory(tmp_path, monkeypatch):
    from wow import cli

    before = git_status()
    monkeypatch.chdir(tmp_path)
    assert cli.main(["run", "recoil", "--sizes", "128", "--momenta=0", "--no-thermal", "--samples", "2",
                     "--duration", "4", "--quiet"]) == 0
    assert sorted(p.name for p in (tmp_path / "results").iterdir()) == ["recoil.h5", "recoil.md", "recoil.png"]
    assert git_status() == before


def test_every_experiment_writes_a_results_file(tmp_path):
    """table1, elastic_fraction and troisi_orlandi too (the others are covered above and by test_cli)."""
    from wow import cli

    runs = {
        "table1": ["--sizes", "32", "--temperatures", "100", "--samples", "2", "--duration", "1", "--dt", "0.05",
                   "--sigma", "3", "--control-dt", "0", "--n-atoms", "10"],
        "troisi_orlandi": ["--N", "16", "--samples", "2", "--duration", "20", "--frames", "4", "--dt", "2",
                           "--dynamics", "frozen"],
        "elastic_fraction": ["--cases", "open", "--N-open", "24", "--samples", "2", "--duration", "0.4",
                             "--sigma", "3", "--n-max", "1", "--phonon-every", "1"],
    }
    for name, argv in runs.items():
        out = tmp_path / f"{name}.h5"
        if name == "elastic_fraction":  # n_max = 1 is far too small: the run says so, and --quiet keeps it on screen
            with pytest.warns(UserWarning, match="open: quantum lattice"):
                assert cli.main(["run", name, *argv, "--out", str(out), "--quiet"]) == 0, name
            assert "truncation" in io.read_results(out).points[0].attrs["warnings"], "and in the file"
            continue
        assert cli.main(["run", name, *argv, "--out", str(out), "--quiet"]) == 0, name
    for name in runs:
        r = io.read_results(tmp_path / f"{name}.h5")
        assert r.experiment == name and len(r.points) == r.n_points_planned >= 1
        assert (tmp_path / f"{name}.md").exists() and (tmp_path / f"{name}.png").exists()
    t1 = io.read_results(tmp_path / "table1.h5")
    assert t1.extras["cu_f_el_paper"][0][1] == pytest.approx(np.exp(-(1.36**2) * 1.9e-2 / 3))
    ef = io.read_results(tmp_path / "elastic_fraction.h5").points[0]
    assert ef.options["basis"] == "standing" and "f_el" in ef.stats
    to = io.read_results(tmp_path / "troisi_orlandi.h5").points[0]
    assert to.config is None and to.options["N"] == 16 and to.trace_mean["msd"].shape == (5,)


def test_a_2d_sweep_is_drawn_whole():
    """A 3 x 3 sweep (T x N) and two dynamics: one panel per N, one line per dynamics in each, every
    point drawn once per row."""
    from types import SimpleNamespace

    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.container import ErrorbarContainer

    cfg = wow.Config()
    pts = []
    for N in (64, 128, 256):
        for dyn in ("frozen", "wow"):
            for T in (30.0, 100.0, 300.0):
                v = 0.001 * T + 1e-4 * N + (0.01 if dyn == "wow" else 0.0)
                pts.append(SimpleNamespace(values={"N": N, "temperature": T, "dynamics": dyn}, config=cfg,
                                           stats={"P_b": (v, 0.01), "dE_b": (-v / 10, 0.001)},
                                           coherent={"P_coh": 0.0, "P_coh_sem": 0.001, "P_tot": v, "P_tot_sem": 0.01},
                                           attrs={"n_samples": 8}))
    fig = plot.figure_sweep(SimpleNamespace(points=pts, path="synthetic"))
    axes = np.array(fig.axes).reshape(3, 3)  # rows: P_b, dE_b, P_coh; columns: N = 64, 128, 256
    assert [ax.get_title() for ax in axes[0]] == ["$N$ = 64", "$N$ = 128", "$N$ = 256"]
    for row in axes:
        for ax in row:
            bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
            assert len(bars) == 2  # frozen and wow
            assert sum(len(c.lines[0].get_xdata()) for c in bars) == 6  # 3 T x 2 dynamics, each once
    ys = {round(float(y), 6) for c in axes[0, 2].containers for y in c.lines[0].get_ydata()}
    assert ys == {round(0.001 * T + 0.0256 + d, 6) for T in (30, 100, 300) for d in (0, 0.01)}


def test_printed_coherent_errors_are_the_estimators_own_jackknifes():
    """The backscattering table prints P_inc ± its own jackknife error and table1 the coherent
    fraction ± its own, not the quadrature sum of the P_tot and P_coh errors (which ignores their
    correlation: test_statistics.py measures the overstatement)."""
    from types import SimpleNamespace

    from wow.experiments import backscattering, table1

    co = {"P_tot": 0.3, "P_tot_sem": 0.02, "P_coh": 0.1, "P_coh_sem": 0.03, "P_inc": 0.2, "P_inc_sem": 0.011,
          "coherent_fraction": 1 / 3, "coherent_fraction_sem": 0.07, "P_coh_plugin": 0.12, "P_coh_plugin_sem": 0.03}
    pt = SimpleNamespace(values={"N": 64, "temperature": 300.0, "statistics": "quantum", "dynamics": "wow"},
                         stats={"P_b": (0.3, 0.02), "dE_b": (-0.001, 0.0002)}, coherent=co)
    rows = backscattering.table(SimpleNamespace(points=[pt]))
    assert rows[1][rows[0].index("P_inc")] == "0.2000 ± 0.0110"
    f = table1.coherent_fraction(co)
    assert (f["frac"], f["frac_sem"]) == (co["coherent_fraction"], co["coherent_fraction_sem"])
