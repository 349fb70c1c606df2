"""Progress that does not stack: one live bar per sweep (points), one per long run (chunks of
samples), and log lines printed through ``tqdm.write`` so they land above the bars. Bars appear only
when stderr is a terminal; off a terminal (a log file, CI) nothing but the log lines is printed."""

from __future__ import annotations

import sys


def on_terminal() -> bool:
    return sys.stderr.isatty()


def echo(line: str):
    """Print one log line above any live bar (plain print when there is none)."""
    from tqdm.auto import tqdm

    tqdm.write(line, file=sys.stdout)
    sys.stdout.flush()


class _Callback:
    def __init__(self, fn, total):
        self.fn, self.total = fn, total

    def __call__(self, done):
        self.fn(done, self.total)

    def close(self):
        pass


class _Bar:
    def __init__(self, total, desc, delay):
        from tqdm.auto import tqdm

        # delay: short runs never draw a bar; leave=False: the bar goes away when the run is done
        self.bar = tqdm(total=total, desc=desc, unit="sample", leave=False, delay=delay, dynamic_ncols=True,
                        file=sys.stderr)

    def __call__(self, done):
        self.bar.update(done - self.bar.n)

    def close(self):
        self.bar.close()


def chunk_progress(progress, total: int, desc: str = "samples", delay: float = 1.0):
    """What ``wow.run`` calls after each chunk with the samples done so far, then ``.close()``:
    progress None (a bar on a terminal, drawn once the run has taken ``delay`` seconds), False
    (nothing) or a callable ``progress(done, total)``."""
    if callable(progress):
        return _Callback(progress, total)
    if progress is None and on_terminal():
        return _Bar(total, desc, delay)
    return _Callback(lambda done, total: None, total)


def sweep_bar(total: int, initial: int, desc: str, progress=None):
    """The bar over a sweep's points (None: only on a terminal)."""
    from tqdm.auto import tqdm

    show = on_terminal() if progress is None else bool(progress)
    return tqdm(total=total, initial=initial, desc=desc, unit="point", disable=not show, dynamic_ncols=True,
                file=sys.stderr)
