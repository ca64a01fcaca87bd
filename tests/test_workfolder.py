"""A chunked run's work folder is used only when this program made it (workfolder.WorkFolder)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from vs_superslomo.errors import JobError
from vs_superslomo.workfolder import MARKER, WorkFolder, remove_abandoned, work_folder

pytestmark = pytest.mark.skipif(not hasattr(os, "geteuid"), reason="owners are POSIX's")


def test_a_work_folder_another_user_owns_is_refused_and_left_alone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    out = tmp_path / "out.mkv"
    with WorkFolder(out) as work:  # made by this program: marker and all
        (work.path / "chunk-00000.nut").write_bytes(b"a segment")
    before = sorted(os.listdir(work_folder(out)))
    if os.geteuid() == 0:
        os.chown(work_folder(out), 4242, 4242)  # really another user's
    else:
        uid = os.geteuid()
        monkeypatch.setattr(os, "geteuid", lambda: uid + 1)  # this process seen as another user
    with pytest.raises(JobError, match="did not make what is there"), WorkFolder(out):
        pass
    assert not remove_abandoned(out)
    assert sorted(os.listdir(work_folder(out))) == before and MARKER in before
