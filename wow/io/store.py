"""How a results file reaches the disk: every change is atomic, so a killed run never leaves a
damaged file (see ``atomic_update``)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import h5py

from .. import devices as _devices


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def remove_stale_tmp(path: Path):
    """Remove temporaries left by killed runs (their process no longer exists)."""
    for tmp in path.parent.glob(f".{path.name}.*.tmp"):
        try:
            pid = int(tmp.name[len(path.name) + 2:-4])
        except ValueError:
            continue
        if pid == os.getpid():
            continue
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except PermissionError:
            pass


def fsync(path: Path):
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def atomic_update(path: Path, write, fresh: bool = False):
    """Apply ``write(h5file)`` to a copy of ``path`` (a new file if ``fresh`` or absent) and move the
    copy over ``path`` in one os.replace: readers and a kill see either the old or the new file.
    In a multi-process run only process 0 writes (every process holds the same results)."""
    if not _devices.is_writer():
        return
    tmp = tmp_path(path)
    try:
        if path.exists() and not fresh:
            shutil.copyfile(path, tmp)
        with h5py.File(tmp, "a" if tmp.exists() else "w") as f:
            write(f)
        fsync(tmp)
        os.replace(tmp, path)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    try:
        fsync(path.parent)
    except OSError:
        pass
