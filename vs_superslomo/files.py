"""Writing files so that a reader never sees half of one: a temporary name beside it, then a rename."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path

__all__ = ["atomic_write"]


def _umask() -> int:
    # The umask can only be read by setting it; it is put back at once.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def atomic_write(path: str | os.PathLike[str], write: Callable[[Path], object], *, suffix: str = ".part") -> None:
    """Call ``write(tmp)`` on a temporary path in ``path``'s folder (ending in ``suffix``), then rename it.

    The rename is atomic on one file system: ``path`` holds the old file or the whole new one, never a
    part; on any error (or Ctrl-C) the temporary file is removed. The file gets the mode the umask gives,
    as if created by ``open``, not mkstemp's 0600.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=suffix, dir=target.parent)
    try:
        os.chmod(tmp, 0o666 & ~_umask())
        write(Path(tmp))
        os.replace(tmp, target)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    finally:
        os.close(fd)
