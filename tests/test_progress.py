"""Progress: wow.run reports each chunk; bars only on a terminal; log lines do not stack."""

import io as _stdio

import numpy as np
import pytest

import wow
from wow import progress


def tiny(**kw):
    base = dict(chain=wow.Chain(N=32), electron=wow.Electron(sigma=3.0), dt=0.05, duration=1.0, n_frames=2)
    base.update(kw)
    return wow.Config(**base)


def test_run_reports_every_chunk_and_the_numbers_do_not_change():
    seen = []
    res = wow.run(tiny(), 10, seed=2, chunk_size=4, progress=lambda done, total: seen.append((done, total)))
    n_dev = len(wow.devices.resolve(None))
    step = -(-4 // n_dev) * n_dev  # chunks are a whole number of samples per device
    assert seen == [(min(lo + step, 10), 10) for lo in range(0, 10, step)]
    ref = wow.run(tiny(), 10, seed=2, progress=False)
    for k, v in ref.per_sample.items():  # another chunk size: the same samples, to rounding
        np.testing.assert_allclose(res.per_sample[k], v, rtol=1e-10, atol=1e-12, equal_nan=True)


def test_no_bar_off_a_terminal(capsys, monkeypatch):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    wow.run(tiny(), 10, seed=2, chunk_size=4)  # the program of the test above (no second compile)
    assert capsys.readouterr().err == ""


def test_bar_on_a_terminal_goes_to_stderr(monkeypatch):
    err = _stdio.StringIO()
    monkeypatch.setattr(progress, "on_terminal", lambda: True)
    monkeypatch.setattr("sys.stderr", err)
    bar = progress.chunk_progress(None, 8, delay=0)  # drawn at once
    for done in (2, 4, 8):
        bar(done)
    assert bar.bar.n == 8
    bar.close()
    assert "/8" in err.getvalue() and "samples" in err.getvalue()


def test_echo_prints_lines(capsys):
    progress.echo("a line")
    assert capsys.readouterr().out == "a line\n"


@pytest.mark.parametrize("value", [None, False])
def test_chunk_progress_off_is_silent(value, monkeypatch, capsys):
    monkeypatch.setattr(progress, "on_terminal", lambda: False)
    r = progress.chunk_progress(value, 5)
    r(5)
    r.close()
    assert capsys.readouterr() == ("", "")
