"""wow.io.load: a results file as an xarray Dataset with named dimensions and CF units; the file's
own root view opens the same way with h5netcdf; results objects print short summaries."""

import numpy as np
import pytest

import wow
from wow import io

from fakes import interrupt_sweep

xr = pytest.importorskip("xarray")


def tiny(**kw):
    base = dict(chain=wow.Chain(N=32), electron=wow.Electron(sigma=3.0), temperature=300.0,
                dt=0.05, duration=1.0, n_frames=2)
    base.update(kw)
    return wow.Config(**base)


def grid_points():
    return [io.Point(f"T={T:g} {d}", {"temperature": T, "dynamics": d}, tiny(temperature=T, dynamics=d))
            for d in ("frozen", "wow") for T in (30.0, 100.0, 300.0)]


@pytest.fixture(scope="module")
def sweep(tmp_path_factory):
    path = tmp_path_factory.mktemp("load") / "g.h5"
    io.run_sweep(path, "test", grid_points(), 4, seed=3)
    return path


def test_load_names_the_sweep_axes_and_round_trips(sweep):
    ds = io.load(sweep)
    assert dict(ds.sizes) == {"dynamics": 2, "temperature": 3, "sample": 4, "time": 3}
    assert list(ds.temperature.values) == [30.0, 100.0, 300.0]
    assert list(ds.dynamics.values) == ["frozen", "wow"]
    assert ds.P_b.dims == ("dynamics", "temperature", "sample")
    assert ds.P_R_trace.dims == ("dynamics", "temperature", "time")
    # CF units
    assert ds.temperature.attrs["units"] == "K" and ds.time.attrs["units"] == "fs"
    assert ds.P_b.attrs["units"] == "1" and ds.dE_b.attrs["units"] == "eV"
    assert ds.P_R_f.attrs["units"] == "eV*fs/angstrom" and "long_name" in ds.P_b.attrs
    # a per-sample value round-trips, at the right coordinates
    r = io.read_results(sweep)
    p = next(q for q in r.points if q.values == {"temperature": 100.0, "dynamics": "wow"})
    np.testing.assert_array_equal(ds.P_b.sel(temperature=100.0, dynamics="wow").values, p.per_sample["P_b"])
    assert float(ds.dE_b_mean.sel(temperature=100.0, dynamics="wow")) == p.stats["dE_b"][0]
    assert float(ds.P_coh.sel(temperature=100.0, dynamics="wow")) == p.coherent["P_coh"]
    assert str(ds.label.sel(temperature=100.0, dynamics="wow").values) == p.label
    # Config inputs: shared ones are scalar coordinates with units
    assert ds["chain.N"].ndim == 0 and int(ds["chain.N"]) == 32
    assert ds["electron.sigma"].attrs["units"] == "angstrom"
    df = ds[["P_b", "dE_b"]].to_dataframe()
    assert list(df.index.names) == ["dynamics", "temperature", "sample"] and len(df) == 24
    assert df.loc[("wow", 100.0, 2), "P_b"] == p.per_sample["P_b"][2]


def test_h5netcdf_opens_the_file_with_named_dims(sweep):
    pytest.importorskip("h5netcdf")
    ds = xr.open_dataset(sweep, engine="h5netcdf")
    ref = io.load(sweep)
    assert dict(ds.sizes) == dict(ref.sizes)
    for name in ("P_b", "dE_b_mean", "P_coh", "P_R_trace"):
        assert ds[name].dims == ref[name].dims
        np.testing.assert_array_equal(ds[name].values, ref[name].values)
    assert ds.P_b.attrs["units"] == "1" and ds.temperature.attrs["units"] == "K"
    assert list(ds.dynamics.values) == ["frozen", "wow"]
    assert "label" in ds.coords
    ds.close()


def test_a_partial_sweep_loads_with_nan_for_the_missing_points(tmp_path, monkeypatch):
    path = tmp_path / "part.h5"
    interrupt_sweep(monkeypatch, 5)
    with pytest.raises(KeyboardInterrupt):
        io.run_sweep(path, "test", grid_points(), 4, seed=3)
    ds = io.load(path)
    assert dict(ds.sizes)["temperature"] == 3 and dict(ds.sizes)["dynamics"] == 2
    done = ~np.isnan(ds.P_b_mean.values)
    assert done.sum() == 4 and done[0].all() and done[1, 0] and not done[1, 1:].any()


def test_an_irregular_sweep_lies_along_point(tmp_path):
    # the reference (no CM momentum fixed, 4 samples) is the program of the sweep fixture's wow points
    pts = [io.Point("ref", {"N": 32, "P": None}, tiny(temperature=0.0)),
           io.Point("P=0", {"N": 32, "P": 0.0}, tiny(temperature=0.0, cm_momentum=0.0, recoil=True)),
           io.Point("P=1", {"N": 32, "P": 1.0}, tiny(temperature=0.0, cm_momentum=1.0, recoil=True))]
    path = tmp_path / "irr.h5"
    io.run_sweep(path, "test", pts, 4, seed=0)
    ds = io.load(path)
    assert ds.P_b.dims == ("point", "sample")
    assert np.isnan(ds.P.values[0]) and list(ds.P.values[1:]) == [0.0, 1.0]
    assert list(ds.label.values) == ["ref", "P=0", "P=1"]
    assert ds.recoil.dims == ("point",) and list(ds.recoil.values) == [False, True, True]


def test_results_print_a_short_summary(sweep):
    r = io.read_results(sweep)
    text = str(r)
    assert len(text.splitlines()) <= 8 and "6 of 6 points" in text and "more points" in text
    assert "P_b = " in repr(r.points[0]) and len(repr(r.points[0])) < 400
