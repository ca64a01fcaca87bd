"""Writing files so that a reader never sees half of one: a temporary name beside it, then a rename."""

from __future__ import annotations

import errno
import os
import re
import tempfile
from collections.abc import Callable
from pathlib import Path

try:
    import fcntl
except ImportError:  # Windows: no flock, so temporary files are neither locked nor cleaned up
    fcntl = None  # type: ignore[assignment]  # None marks the module missing

__all__ = ["atomic_write", "prune_least_recent", "remove_stale_parts", "user_cache_dir"]


def user_cache_dir() -> Path:
    """This program's folder in the user's cache: ``$XDG_CACHE_HOME/vs-superslomo`` (default ``~/.cache/...``)."""
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "vs-superslomo"


def _umask() -> int:
    # The umask can only be read by setting it; it is put back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _pattern(target: Path, suffix: str) -> re.Pattern[str]:
    """Names of ``target``'s temporary files: ``.NAME.`` + mkstemp's 8 random characters + ``suffix``."""
    return re.compile(rf"\.{re.escape(target.name)}\.[a-z0-9_]{{8}}{re.escape(suffix)}")


def remove_stale_parts(path: str | os.PathLike[str], *, suffix: str = ".part") -> list[Path]:
    """Remove the temporary files of ``path`` that no running process writes, and return them.

    A writer holds an flock on its temporary file for as long as it runs; the kernel drops the lock when
    the process ends however it ends (kill -9, power loss), so an unlocked one is left over from a run that
    died. Files of other outputs, or of a run still going, are never touched.
    """
    target = Path(path)
    if fcntl is None or not target.parent.is_dir():
        return []
    pattern = _pattern(target, suffix)
    removed = []
    for candidate in target.parent.iterdir():
        if not pattern.fullmatch(candidate.name):
            continue
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue  # gone already, a link, or not ours to read
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
            candidate.unlink()
            removed.append(candidate)
        except OSError:
            pass  # locked: its run is still writing it (or it cannot be removed)
        finally:
            os.close(fd)
    return removed


def atomic_write(
    path: str | os.PathLike[str], write: Callable[[Path], object], *, suffix: str = ".part", replace: bool = True
) -> None:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder (ending in ``suffix``), then rename it.

    The rename is atomic on one file system: ``path`` holds the old file or the whole new one, never a
    part; on any error (or Ctrl-C) the temporary file is removed, and temporary files of ``path`` left
    by killed runs are removed first (:func:`remove_stale_parts`). The file gets the mode the umask gives,
    as if created by ``open``, not mkstemp's 0600. Without ``replace``, a ``path`` that exists by then (another
    program wrote it while ``write`` ran) stays as it is: FileExistsError, and the temporary file is removed.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(target, suffix=suffix)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX)  # held until this run ends: marks the file as in use
        os.chmod(tmp, 0o666 & ~_umask())
        write(Path(tmp))
        if replace:
            os.replace(tmp, target)
        else:
            _rename_no_replace(Path(tmp), target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)


def _rename_no_replace(tmp: Path, target: Path) -> None:
    """Give ``tmp`` the name ``target`` unless that exists: a hard link fails atomically on an existing name."""
    try:
        os.link(tmp, target, follow_symlinks=False)
    except FileExistsError:
        raise
    except OSError:  # a file system without hard links: checked, then renamed (a narrow race, not none)
        if os.path.lexists(target):
            raise FileExistsError(errno.EEXIST, os.strerror(errno.EEXIST), str(target)) from None
        os.rename(tmp, target)
    else:
        os.unlink(tmp)


def prune_least_recent(folder: Path, pattern: str, limit: int, *, keep: Path) -> list[Path]:
    """Remove ``folder``'s files matching ``pattern``, least recently modified first, until the rest take at most
    ``limit`` bytes, and return them: a cache bounded in size whose users touch (``os.utime``) what they use.

    ``keep`` (the file just written) stays whatever its size. Hidden files are :func:`atomic_write`'s
    temporary files, which other processes may be writing: never touched. Safe against other processes
    pruning at the same time (a file already gone is skipped).
    """
    entries = []
    for candidate in folder.glob(pattern):
        if candidate.name.startswith(".") or candidate == keep:
            continue
        try:
            stat = candidate.stat()
        except OSError:
            continue  # gone already
        entries.append((stat.st_mtime, stat.st_size, candidate))
    try:
        total = keep.stat().st_size
    except OSError:
        total = 0  # gone already: nothing of it to count
    total += sum(size for _, size, _ in entries)
    removed = []
    for _, size, candidate in sorted(entries, key=lambda entry: entry[0]):
        if total <= limit:
            break
        try:
            candidate.unlink(missing_ok=True)
        except OSError:
            continue  # not ours to remove
        total -= size
        removed.append(candidate)
    return removed
