"""How a results file reaches the disk without ever being damaged, at a cost per point that does
not grow with the file.

* The file ``NAME`` is created whole (``atomic_update``: written to a temporary in the same folder,
  fsynced, then ``os.replace``d over the path), so the path always names a complete HDF5 file.
* Each finished point goes into its own small file ``NAME.parts/pNNNN.h5`` by the same
  write-fsync-rename (``write_part``): O(point), nothing already written is touched. A killed run
  loses only the point in progress; readers (``wow.io.read_results``) see the file's points and
  the parts together.
* When the last point is done, ``merge`` copies the parts into one new file, replaces ``NAME`` with it
  (again atomically) and removes the parts folder: O(file) once per sweep, not once per point.

A part records the sweep's identity (``inputs_sha256``); a part of another sweep (left by an
overwritten one) is ignored and removed. Temporaries of killed runs (``.NAME.PID.tmp``) are removed by
the next run once their process is gone. In a multi-process run only process 0 writes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import shutil
import warnings
from pathlib import Path

import h5py
import numpy as np

from .. import devices as _devices

#: Root attribute ``format`` of a part file (one finished point of a sweep).
PART_FORMAT = "wow-results-part"


def tmp_path(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}.tmp")


def parts_dir(path: Path) -> Path:
    """The folder beside ``path`` that holds finished points until the sweep is merged."""
    path = Path(path)
    return path.with_name(path.name + ".parts")


def part_path(path: Path, index: int) -> Path:
    return parts_dir(path) / f"p{index:04d}.h5"


def remove_stale_tmp(path: Path):
    """Remove temporaries left by killed runs (their process no longer exists), beside ``path`` and
    in its parts folder."""
    folders = [(path.parent, f".{path.name}.")]
    if parts_dir(path).is_dir():
        folders.append((parts_dir(path), "."))
    for folder, prefix in folders:
        for tmp in folder.glob(f"{prefix}*.tmp"):
            try:
                pid = int(tmp.name[:-4].rsplit(".", 1)[1])
            except (ValueError, IndexError):
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


def _fsync_dir(path: Path):
    try:
        fsync(path)
    except OSError:  # some file systems do not sync folders
        pass


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
    _fsync_dir(path.parent)


def write_part(path: Path, index: int, sha: str, write):
    """Write point ``index`` of the sweep ``sha`` (its inputs_sha256) as ``NAME.parts/pNNNN.h5``:
    ``write(h5file)`` fills a temporary that is fsynced and renamed into place."""
    if not _devices.is_writer():
        return
    final = part_path(path, index)
    final.parent.mkdir(exist_ok=True)
    tmp = final.with_name(f".{final.name}.{os.getpid()}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = PART_FORMAT
            f.attrs["index"] = index
            f.attrs["inputs_sha256"] = sha
            f.create_group("points")
            write(f)
            g = f[f"points/p{index:04d}"]
            g.attrs["sha256"] = point_checksum(g)
        fsync(tmp)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    _fsync_dir(final.parent)


def parts(path: Path, sha: str) -> dict[int, Path]:
    """The finished parts of the sweep ``sha`` beside ``path``: {index: part file}. A part that cannot
    be read, or belongs to another sweep, is left out (with a warning if it is damaged)."""
    out = {}
    folder = parts_dir(path)
    if not folder.is_dir():
        return out
    for p in sorted(folder.glob("p*.h5")):
        try:
            with h5py.File(p, "r") as f:
                if f.attrs.get("format") != PART_FORMAT or f.attrs.get("inputs_sha256") != sha:
                    continue
                index = int(f.attrs["index"])
                if f"points/p{index:04d}" not in f:
                    raise KeyError(f"points/p{index:04d}")
                if not verify_point(f[f"points/p{index:04d}"]):
                    raise ValueError("its arrays do not match their checksum")
        except (OSError, KeyError, ValueError) as e:
            warnings.warn(f"{p}: a damaged part file, ignored (its point will be run again): {e}", stacklevel=2)
            continue
        out[index] = p
    return out


def remove_parts(path: Path):
    """Remove the parts folder of ``path`` (process 0 only)."""
    if _devices.is_writer() and parts_dir(path).is_dir():
        shutil.rmtree(parts_dir(path), ignore_errors=True)


def merge(path: Path, sha: str, finish):
    """Copy every part of the sweep ``sha`` into ``path`` (a new file replacing it atomically), call
    ``finish(h5file)`` on it before it is closed, then remove the parts folder."""
    if not _devices.is_writer():
        return
    folder = parts_dir(path)
    files = sorted(folder.glob("p*.h5")) if folder.is_dir() else []

    def write(f):
        for p in files:  # each part opened once: checked and copied
            try:
                with h5py.File(p, "r") as src:
                    if src.attrs.get("format") != PART_FORMAT or src.attrs.get("inputs_sha256") != sha:
                        continue  # another sweep's
                    name = f"p{int(src.attrs['index']):04d}"
                    if not verify_point(src[f"points/{name}"]):
                        raise ValueError("its arrays do not match their checksum")
                    if name in f["points"]:  # merged before a kill that left the parts behind, or damaged and rerun
                        del f["points"][name]
                    src.copy(src[f"points/{name}"], f["points"], name)
            except (OSError, KeyError, ValueError) as e:
                warnings.warn(f"{p}: a damaged part file, not merged: {e}", stacklevel=2)
        finish(f)

    atomic_update(path, write)
    remove_parts(path)


def point_checksum(group) -> str:
    """sha256 over a point's arrays: every dataset below ``group`` (path, dtype, shape, bytes), in name
    order. Written into the point (attribute ``sha256``) when it is stored; ``verify_point`` checks it."""
    h = hashlib.sha256()
    names = []
    group.visititems(lambda name, obj: names.append(name) if isinstance(obj, h5py.Dataset) else None)
    for name in sorted(names):
        d = group[name]
        a = np.ascontiguousarray(d[()])
        h.update(f"{name}|{a.dtype.str}|{a.shape}|".encode())
        h.update(a.tobytes() if a.dtype.kind != "O" else repr(a.tolist()).encode())
    return h.hexdigest()


def verify_point(group) -> bool:
    """Whether a stored point's arrays still match the checksum written with them (a point stored
    without one, by an older wow, counts as intact)."""
    want = group.attrs.get("sha256")
    return want is None or point_checksum(group) == (want.decode() if isinstance(want, bytes) else str(want))


def lock_path(path: Path) -> Path:
    path = Path(path)
    return path.with_name(f".{path.name}.lock")


@contextlib.contextmanager
def exclusive(path: Path):
    """Hold an exclusive lock on the results file ``path`` (an flock on ``.NAME.lock`` beside it) while
    a sweep writes it: a second process on the same file is refused at once (ResultsError), instead of
    interleaving its points with ours. The kernel drops the lock when the process dies; a sweep that
    ends (finished, failed or interrupted) removes the lock file while it still holds the lock, so
    nothing is left beside the results (a killed process leaves it, unlocked and harmless)."""
    from .format import ResultsError

    if not _devices.is_writer():
        yield
        return
    fd = os.open(lock_path(path), os.O_RDWR | os.O_CREAT, 0o644)
    held = False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            held = True
        except BlockingIOError:
            other = os.pread(fd, 64, 0).decode(errors="replace").strip() or "?"
            raise ResultsError(f"{path} is being written by another process (pid {other}): wait for it to "
                               "finish, or choose another --out") from None
        os.ftruncate(fd, 0)
        os.pwrite(fd, str(os.getpid()).encode(), 0)
        yield
    finally:
        if held:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(lock_path(path))
        os.close(fd)


def damaged_points(path: Path) -> list[str]:
    """The stored points of ``path`` (the file and its parts folder) whose arrays no longer match their
    checksums, as 'pNNNN (where)'."""
    out = []
    with h5py.File(path, "r") as f:
        for name, g in sorted(f["points"].items()):
            if not verify_point(g):
                out.append(f"{name} (in {Path(path).name})")
    folder = parts_dir(path)
    for p in sorted(folder.glob("p*.h5")) if folder.is_dir() else []:
        try:
            with h5py.File(p, "r") as f:
                for name, g in f["points"].items():
                    if not verify_point(g):
                        out.append(f"{name} (in {folder.name}/{p.name})")
        except (OSError, KeyError) as e:
            out.append(f"{p.name} (unreadable: {e})")
    return out
