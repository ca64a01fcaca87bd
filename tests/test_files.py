"""atomic_write: the mode a new file gets, and temporary files left behind by killed runs; a bounded cache."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from vs_superslomo.files import atomic_write, prune_least_recent


@pytest.fixture
def umask() -> Iterator[Callable[[int], int]]:
    old = os.umask(0o022)
    os.umask(old)
    yield os.umask
    os.umask(old)


@pytest.mark.parametrize(("mask", "mode"), [(0o022, 0o644), (0o027, 0o640), (0o077, 0o600)])
def test_new_files_get_the_mode_the_umask_gives(
    tmp_path: Path, umask: Callable[[int], None], mask: int, mode: int
) -> None:
    umask(mask)
    atomic_write(tmp_path / "out.txt", lambda tmp: tmp.write_text("x"))
    assert (tmp_path / "out.txt").stat().st_mode & 0o777 == mode
    assert [p.name for p in tmp_path.iterdir()] == ["out.txt"]


_HOLD = """
import os
import sys
import time
from pathlib import Path
from vs_superslomo.files import atomic_write

def write(tmp: Path) -> None:
    tmp.write_text("partial")
    print(tmp.name, flush=True)
    if sys.argv[2] == "die":
        os._exit(9)  # like kill -9: no cleanup runs
    time.sleep(60)

atomic_write(sys.argv[1], write, suffix=".part.mp4")
"""


def _writer(out: Path, how: str) -> tuple[subprocess.Popen[str], Path]:
    """A run writing ``out`` in a child process: it dies mid-write ("die") or keeps writing ("hold")."""
    env = dict(os.environ, PYTHONPATH=str(Path(__file__).resolve().parents[1]))  # this checkout's package
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(out), how], stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    return proc, out.parent / proc.stdout.readline().strip()


def test_temporary_files_of_killed_runs_are_removed_by_the_next_run(tmp_path: Path) -> None:
    out = tmp_path / "out.mp4"
    dead, stale = _writer(out, "die")
    assert dead.wait(timeout=30) == 9 and stale.is_file()
    live, running = _writer(out, "hold")
    others = [tmp_path / ".other.mp4.abcd1234.part.mp4", tmp_path / ".out.mp4.notes", tmp_path / ".out.mp4.x.part.mp4"]
    for other in others:
        other.write_text("not ours")
    try:
        atomic_write(out, lambda tmp: tmp.write_text("done"), suffix=".part.mp4")
        assert out.read_text() == "done"
        assert not stale.exists()  # its run is gone
        assert running.read_text() == "partial"  # its run is still writing: never touched
        assert all(other.read_text() == "not ours" for other in others)
    finally:
        live.kill()
        live.wait()
    # Once that run is gone too, the next run cleans its file up as well.
    atomic_write(out, lambda tmp: tmp.write_text("again"), suffix=".part.mp4")
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["out.mp4", *(o.name for o in others)])


def test_a_cache_is_pruned_least_recently_used_first_down_to_its_limit(tmp_path: Path) -> None:
    sizes = {"a.onnx": 300, "b.onnx": 200, "c.onnx": 100, "new.onnx": 400, "notes.txt": 5000}
    for age, (name, size) in enumerate(sizes.items()):  # a the oldest
        (tmp_path / name).write_bytes(bytes(size))
        os.utime(tmp_path / name, (1_000_000 + age, 1_000_000 + age))
    os.utime(tmp_path / "a.onnx")  # used now, so b is the least recent
    (tmp_path / ".c.onnx.abcd1234.part.onnx").write_bytes(bytes(10_000))  # another process's export
    keep = tmp_path / "new.onnx"
    assert prune_least_recent(tmp_path, "*.onnx", 1000, keep=keep) == []  # 1000 bytes: all fit
    assert prune_least_recent(tmp_path, "*.onnx", 800, keep=keep) == [tmp_path / "b.onnx"]
    assert prune_least_recent(tmp_path, "*.onnx", 10, keep=keep) == [tmp_path / "c.onnx", tmp_path / "a.onnx"]
    assert sorted(p.name for p in tmp_path.iterdir()) == [".c.onnx.abcd1234.part.onnx", "new.onnx", "notes.txt"]


@pytest.mark.parametrize("links", [True, False])
def test_without_replace_a_file_that_appeared_meanwhile_is_kept(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, links: bool
) -> None:
    if not links:  # a file system without hard links: checked, then renamed
        monkeypatch.setattr(os, "link", lambda *args, **kwargs: (_ for _ in ()).throw(PermissionError(1, "no links")))
    target = tmp_path / "out.txt"

    def write(tmp: Path) -> None:
        tmp.write_text("mine")
        target.write_text("theirs")  # another program, while this one writes

    with pytest.raises(FileExistsError):
        atomic_write(target, write, replace=False)
    assert target.read_text() == "theirs" and os.listdir(tmp_path) == ["out.txt"]
    atomic_write(tmp_path / "new.txt", lambda tmp: tmp.write_text("mine"), replace=False)
    assert (tmp_path / "new.txt").read_text() == "mine" and len(os.listdir(tmp_path)) == 2
