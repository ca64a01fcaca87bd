"""The work folder of a chunked run (``.OUTPUT.chunks`` beside the output): made, locked, cleaned, never trusted.

A path that exists there is used only when this program made it: a real folder (not a link), owned by this
user, holding the marker file written when it was made. Everything is done through the folder's own file
descriptor, opened without following links, so a link put in place later leads nowhere; and only this
program's own files are removed (plan, segments, concat list, their temporary files), never anything else.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import stat
from collections.abc import Mapping, Sequence
from pathlib import Path

from .chunks import Chunk
from .errors import JobError
from .files import atomic_write

try:
    import fcntl
except ImportError:  # Windows: the work folder is not locked
    fcntl = None  # type: ignore[assignment]

__all__ = ["MARKER", "WorkFolder", "remove_abandoned", "work_folder"]

MARKER = "vs-superslomo-work-folder"
_PLAN_VERSION = 1
# This program's files in a work folder: the marker, lock, plan, concat list, segments, and atomic_write's
# temporary files of each (".NAME.xxxxxxxx.part...").
_OURS = re.compile(
    rf"({re.escape(MARKER)}|lock|plan\.json|concat\.txt|chunk-\d{{5}}\.\w+)"
    rf"|\.(plan\.json|chunk-\d{{5}}\.\w+)\.[a-z0-9_]{{8}}\.part(\.\w+)?"
)


def work_folder(output: Path) -> Path:
    """Where a chunked run to ``output`` keeps its plan and segments: a hidden folder beside it."""
    return output.parent / f".{output.name}.chunks"


def _open_ours(path: Path) -> int | None:
    """A descriptor of ``path`` when it is a folder this program made (None when nothing is there);
    JobError when something else is."""
    try:
        fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return None
    except OSError:
        fd = -1  # a link, a file, or unreadable: not ours
    try:
        info = os.fstat(fd) if fd >= 0 else None
        ours = info is not None and (not hasattr(os, "geteuid") or info.st_uid == os.geteuid())
        if ours:
            marker = os.stat(MARKER, dir_fd=fd, follow_symlinks=False)
            ours = stat.S_ISREG(marker.st_mode)
    except OSError:
        ours = False
    if not ours:
        if fd >= 0:
            os.close(fd)
        raise JobError(
            f"{path} is in the way: vs-superslomo keeps a run's chunks there, but did not make what is there "
            "(a link, another user's folder, or one without its marker), so nothing in it was touched; move it "
            "away or choose another output name"
        )
    return fd


def _remove_ours(fd: int) -> int:
    """Remove this program's files from the folder open as ``fd``; return how many segments there were."""
    segments = 0
    for name in os.listdir(fd):
        if not _OURS.fullmatch(name) or name in (MARKER, "lock"):
            continue
        try:
            if not stat.S_ISDIR(os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode):
                os.unlink(name, dir_fd=fd)  # a link is removed itself, never what it points to
                segments += name.startswith("chunk-")
        except OSError:
            pass  # gone already
    return segments


def _lock(fd: int) -> int | None:
    """The lock file's descriptor, locked; None when another run holds it."""
    lock = os.open("lock", os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644, dir_fd=fd)
    if fcntl is not None:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            os.close(lock)
            return None
    return lock


def _remove_folder(path: Path, fd: int) -> None:
    """This program's files, then (when nothing else is in it) the lock, the marker and the folder itself."""
    _remove_ours(fd)
    _remove_if_empty(path, fd)


def _remove_if_empty(path: Path, fd: int) -> None:
    """The folder, its lock and marker when nothing else is in it (a run that stopped before its plan)."""
    if set(os.listdir(fd)) <= {"lock", MARKER}:
        with contextlib.suppress(OSError):
            for name in ("lock", MARKER):
                os.unlink(name, dir_fd=fd)
            path.rmdir()


def remove_abandoned(output: Path) -> bool:
    """Remove the work folder an interrupted chunked run to ``output`` left, when it is this program's and no
    run holds it; return whether one was removed. Anything else there is left alone."""
    try:
        fd = _open_ours(work_folder(output))
    except JobError:
        return False
    if fd is None:
        return False
    try:
        lock = _lock(fd)
        if lock is None:
            return False
        try:
            _remove_folder(work_folder(output), fd)
        finally:
            os.close(lock)
        return True
    finally:
        os.close(fd)


class WorkFolder:
    """The work folder of a chunked run: locked while the run lasts, its plan in ``plan.json``."""

    def __init__(self, output: Path) -> None:
        self.path = work_folder(output)
        self.output = output
        self._fd: int | None = None
        self._lock: int | None = None

    def __enter__(self) -> WorkFolder:
        try:
            os.mkdir(self.path, 0o700)
        except FileExistsError:
            pass
        else:
            marker = os.open(self.path / MARKER, os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0))
            os.close(marker)
        fd = _open_ours(self.path)
        assert fd is not None, "made just above"
        lock = _lock(fd)
        if lock is None:
            os.close(fd)
            raise JobError(
                f"another run is writing {self.output} (its chunks are in {self.path}); wait for it or stop it"
            )
        self._fd, self._lock = fd, lock
        return self

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            _remove_if_empty(self.path, self._fd)
        for fd in (self._lock, self._fd):
            if fd is not None:
                os.close(fd)
        self._fd = self._lock = None

    def load_plan(self, fingerprint: Mapping[str, str]) -> list[Chunk] | None:
        """The chunks of the run this folder holds, when it ran this same job; JobError when another job."""
        try:
            plan = json.loads((self.path / "plan.json").read_text())
        except (OSError, ValueError):
            return None
        if plan.get("version") != _PLAN_VERSION or plan.get("job") != dict(fingerprint):
            raise JobError(
                f"{self.path} holds chunks of another job (other options or input files): run without --resume "
                "to start afresh (it is then emptied)"
            )
        return [Chunk(i, start, end) for i, (start, end) in enumerate(plan["chunks"])]

    def start_afresh(self, fingerprint: Mapping[str, str], chunks: Sequence[Chunk]) -> int:
        """Remove this program's files from the folder, write the new plan; return how many finished
        segments of an earlier run were discarded."""
        assert self._fd is not None, "entered"
        discarded = _remove_ours(self._fd)
        plan = {"version": _PLAN_VERSION, "job": dict(fingerprint), "chunks": [[c.start, c.end] for c in chunks]}
        atomic_write(self.path / "plan.json", lambda tmp: tmp.write_text(json.dumps(plan, indent=1)))
        return discarded

    def remove(self) -> None:
        """Remove the folder (while still locked): this program's files, then the folder if that empties it."""
        assert self._fd is not None, "entered"
        _remove_folder(self.path, self._fd)
