"""The training stream: synthetic and real items mixed by a seeded fraction."""

from __future__ import annotations

import pytest
import torch
from torch.utils.data import Dataset

from vs_superslomo.errors import JobError
from vs_superslomo.training import stream


class _Constant(Dataset[dict[str, torch.Tensor]]):
    def __init__(self, value: float) -> None:
        self.value = value

    def __len__(self) -> int:
        return 1

    def __getitem__(self, index: int) -> dict[str, torch.Tensor]:
        return {"source": torch.tensor(self.value)}


def test_mixing_follows_the_fraction_and_is_seeded() -> None:
    mixed = stream.MixedDataset(_Constant(1.0), _Constant(0.0), 0.25, seed=5)
    drawn = [float(mixed[i]["source"]) for i in range(400)]
    assert 0.18 < sum(drawn) / 400 < 0.32
    assert drawn == [
        float(stream.MixedDataset(_Constant(1.0), _Constant(0.0), 0.25, seed=5)[i]["source"]) for i in range(400)
    ]
    assert all(float(stream.MixedDataset(_Constant(1.0), None, 1.0)[i]["source"]) == 1 for i in range(10))
    with pytest.raises(JobError, match="needs both sources"):
        stream.MixedDataset(_Constant(1.0), None, 0.5)
