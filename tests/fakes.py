"""Stand-ins shared by the tests: a runner's result made without compiling anything (``FakeResult``,
the fields wow.io's sweep reads from a runner), and a sweep interrupted at a chosen point
(``interrupt_sweep``)."""

import dataclasses

import numpy as np

from wow import io


@dataclasses.dataclass
class FakeResult:
    per_sample: dict
    stats: dict
    times: np.ndarray
    traces: dict
    n_samples: int
    seed: int
    compile_s: float = 0.0
    run_s: float = 0.0


def interrupt_sweep(monkeypatch, at: int) -> list:
    """Make wow.io's sweep raise KeyboardInterrupt at the ``at``-th call of its ensemble runner from
    now on (the calls before it run for real), as a Ctrl-C between points would. Returns the list of
    calls so far: clear it (or set it) to re-arm; ``monkeypatch.undo()`` or setting
    io.sweep.run_ensemble back restores the runner."""
    real, calls = io.sweep.run_ensemble, []

    def stop(*a, **k):
        calls.append(1)
        if len(calls) == at:
            raise KeyboardInterrupt("stop")
        return real(*a, **k)

    monkeypatch.setattr(io.sweep, "run_ensemble", stop)
    return calls
