"""The lattice watch of wow.run (wow.sanity.watch, counted on the device inside the time loop): the
bond·steps whose hopping changed sign and the atoms that crossed, against lattices where the answer
is known exactly. Small rings, 50 steps; the given-lattice programs are shared by the cases."""

import warnings

import h5py
import numpy as np
import pytest

import wow
from wow import Chain, Config, Electron, InitialState, cli, io
from wow.sanity import CrossingError, watch_every

from fakes import FakeResult

N = 16
STEPS = 50  # 1 fs of 0.02 fs: the lattice (ω_max t = 0.045) moves ~1e-3 of its amplitude
BASE = dict(chain=Chain(N=N, boundary="ring"),
            electron=Electron(sigma=2.0, alpha=2.0, bond_defects=((12, -0.9), (5, -1.0))),
            temperature=0.0, dt=0.02, duration=STEPS * 0.02, n_frames=1)


def sites(bonds):
    """Displacements (N,), zero-sum, with bond stretches u_{n+1} - u_n = bonds on the ring."""
    u = np.concatenate([[0.0], np.cumsum(bonds)[:-1]])
    return u - u.mean()


def flipped_lattice():
    """Hoppings t = t0 - α b + δt_b (t0 = 1, α = 2): bonds 2 and 9 at b = 0.7 (t = -0.4) and the
    defect bond 12 (δt = -0.9) at b = 0.2 (t = -0.3) changed sign: 3 bonds. The cut bond 5 (δt = -1,
    static hopping 0) never counts; every other bond has t = 1.25."""
    b = np.full(N, -1.6 / 13)
    b[[2, 9, 12]] = (0.7, 0.7, 0.2)
    assert abs(b.sum()) < 1e-12
    return sites(b), float(b.min())


def quiet_lattice():
    b = np.full(N, 0.1)
    b[::2] = -0.1
    return sites(b)


def run(dynamics, u, v=np.zeros(N), **kw):
    """2 samples from the lattice (u, v) (always both given: one compiled program per dynamics)."""
    cfg = Config(dynamics=dynamics, **{**BASE, **kw})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        res = wow.run(cfg, 2, initial=InitialState(u=u, v=v), progress=False)
    return res, [str(w.message) for w in caught]


@pytest.mark.parametrize("dynamics", ["frozen", "wow"])
def test_sign_flips_counted_exactly(dynamics):
    """3 bonds flipped for all 50 steps: 150 bond·steps per sample on a frozen lattice (looked at
    once) and on a moving one (looked at after a block of k = 32 steps and after the 18 left: the
    weights add up to the steps exactly), then none on a quiet lattice; wow also: crossing atoms
    (``crossing_refused_or_kept_with_the_flag``)."""
    assert watch_every(Config(**BASE)) == 32
    u, low = flipped_lattice()
    res, notes = run(dynamics, u)
    assert res.per_sample["sign_flips"].tolist() == [3 * STEPS] * 2
    assert res.per_sample["sign_flips"].dtype == np.int64
    assert not res.per_sample["crossed"].any()
    assert np.allclose(res.per_sample["min_bond"], low, atol=2e-3)
    assert any(f"hoppings changed sign during the run: {6 * STEPS} of {2 * N * STEPS} bond·steps" in m for m in notes), notes
    assert "sign_flips_lo" not in res.traces and "min_bond" not in res.traces
    quiet, notes = run(dynamics, quiet_lattice())  # the same program: no compilation
    assert quiet.per_sample["sign_flips"].tolist() == [0, 0]
    assert np.allclose(quiet.per_sample["min_bond"], -0.1, atol=2e-3)
    assert not notes, notes
    if dynamics == "wow":  # the same compiled program (the duration is traced)
        crossing_refused_or_kept_with_the_flag()


def crossing_refused_or_kept_with_the_flag():
    """Atoms 3 and 4 thrown at each other at 0.3 Å/fs on a lattice at rest (wow): their bond closes
    past -a within ~4 fs (the harmonic neighbours cannot stop it) and the run is refused; with
    allow_crossing it is kept with a warning and per_sample['crossed'] set."""
    cfg = Config(dynamics="wow", **{**BASE, "duration": 8.0})
    v = np.zeros(N)
    v[3], v[4] = 0.3, -0.3
    init = InitialState(u=np.zeros(N), v=v)
    with pytest.raises(CrossingError, match=r"atoms passed each other .* in 2 of 2 samples .*allow_crossing=True"):
        wow.run(cfg, 2, initial=init, progress=False)
    with pytest.warns(UserWarning, match="atoms passed each other"):
        res = wow.run(cfg, 2, initial=init, progress=False, allow_crossing=True)
    assert res.per_sample["crossed"].all()
    assert (res.per_sample["min_bond"] < -cfg.chain.a).all()
    with pytest.raises(wow.ConfigError, match="allow_crossing='yes' must be True or False"):
        wow.run(cfg, 2, progress=False, allow_crossing="yes")


def fake(point, n_samples, seed, **kw):
    flips = np.array([0, 7, 0, 2]) * point.options["i"]
    per = {"P_b": np.zeros(4), "sign_flips": flips, "min_bond": np.full(4, -0.2), "crossed": np.zeros(4, bool)}
    return FakeResult(per, {"P_b": (0.0, 0.0)}, np.arange(2.0), {"norm": np.ones((4, 2))}, 4, seed), None


def test_file_keeps_the_counts_and_inspect_shows_them(tmp_path, capsys):
    path = tmp_path / "r.h5"
    io.run_sweep(path, "fake", [io.Point(f"p{i}", {"i": i}, None, options={"i": i}) for i in range(2)], 4, 0,
                 runner=fake, progress=False)
    pts = io.read_results(path).points
    assert pts[1].per_sample["sign_flips"].tolist() == [0, 7, 0, 2]
    with h5py.File(path, "r") as f:
        assert f["points/p0001/per_sample/min_bond"].attrs["units"] == "angstrom"
    assert cli.main(["inspect", str(path)]) == 0
    out = capsys.readouterr().out
    assert "p1: hoppings changed sign in 9 bond·steps, 2 of 4 samples; atoms crossed in 0 samples" in out, out
    assert "p0:" not in out.split("lattice watch")[1]


def test_allow_crossing_reaches_the_runner_from_the_command_line(tmp_path, monkeypatch):
    """`wow run NAME --allow-crossing` -> common.sweep -> io.run_sweep -> the runner -> wow.run: each
    hop passes the choice on (and only when asked, so runners written without it still work)."""
    from wow.experiments import common
    from wow.io import sweep

    assert common.parser("x", "", samples=2, duration=1.0).parse_args(["--allow-crossing"]).allow_crossing
    assert not common.parser("x", "", samples=2, duration=1.0).parse_args([]).allow_crossing
    seen = []

    def recording(point, n_samples, seed, **kw):
        seen.append(kw.get("allow_crossing"))
        return fake(point, n_samples, seed)

    pts = [io.Point("p0", {"i": 1}, None, options={"i": 1})]
    io.run_sweep(tmp_path / "a.h5", "fake", pts, 4, 0, runner=recording, progress=False, allow_crossing=True)
    io.run_sweep(tmp_path / "b.h5", "fake", pts, 4, 0, runner=recording, progress=False)
    assert seen == [True, None]
    with pytest.raises(wow.ConfigError, match="allow_crossing='yes' must be True or False"):
        io.run_sweep(tmp_path / "c.h5", "fake", pts, 4, 0, runner=recording, progress=False, allow_crossing="yes")
    assert not (tmp_path / "c.h5").exists()
    calls = []
    monkeypatch.setattr(sweep, "run_ensemble", lambda cfg, n, seed, **kw: calls.append(kw) or fake(pts[0], n, seed)[0])
    sweep.ensemble_runner(io.Point("q", {}, Config(**BASE)), 4, 0, allow_crossing=True)
    assert calls[0]["allow_crossing"] is True
