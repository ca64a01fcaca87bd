"""Fixtures of the training tests: one torch thread, tiny photo and clip folders, photos."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from helpers import (
    cut_clip_frames,
    random_frames,
    write_photos,
    write_y4m,
)

from vs_superslomo.training.synthetic import load_photos


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks gain nothing from threads, and a CPU shared with other jobs makes them 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path | None]:
    """A photos folder, and a clips folder with two tiny clips (None without bestsource)."""
    root = tmp_path_factory.mktemp("train-data")
    photos = write_photos(root / "photos")
    if not hasattr(vs.core, "bs"):
        return photos, None
    clips = root / "clips"
    clips.mkdir()
    write_y4m(clips / "train_clip.y4m", cut_clip_frames())
    write_y4m(clips / "held_clip.y4m", random_frames(8, 64, 64, seed=3))
    return photos, clips


@pytest.fixture(scope="module")
def photos(folders: tuple[Path, Path | None]) -> list[np.ndarray]:
    return load_photos(folders[0], max_side=128)
