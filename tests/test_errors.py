"""One error hierarchy: every kind a user can fix is a SuperSloMoError; the filter's are vs.Error with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import vapoursynth as vs
from helpers import make_model, random_frames

from vs_superslomo import superslomo
from vs_superslomo.errors import EngineError, JobError, SuperSloMoError, TimingError, WeightsError
from vs_superslomo.frames import clip_from_arrays
from vs_superslomo.plugin import FilterError


def test_every_kind_is_a_superslomo_error_and_the_old_value_errors_stay_value_errors() -> None:
    for kind in (TimingError, WeightsError, EngineError):
        assert issubclass(kind, SuperSloMoError) and issubclass(kind, ValueError)
    assert issubclass(JobError, SuperSloMoError) and not issubclass(JobError, ValueError)


@pytest.mark.parametrize(
    ("kwargs", "reason"),
    [
        (
            {"sc_threshold": 2.0},
            "sc_threshold must be in (0, 1] or None (props only), got 2.0",
        ),  # the filter's own check
        ({"factor_num": 1, "factor_den": 2}, "factor_num/factor_den = 1/2, which is < 1"),  # a TimingError
        ({"fp16": True}, "fp16=True needs a CUDA device"),  # an EngineError
    ],
)
def test_the_filter_raises_vs_error_carrying_the_reason_alone(kwargs: dict[str, object], reason: str) -> None:
    clip = clip_from_arrays(random_frames(2, 8, 8))
    with pytest.raises(vs.Error) as info:
        superslomo(clip, model=make_model(), device_index=-1, **kwargs)  # type: ignore[arg-type]  # bad arguments on purpose
    assert isinstance(info.value, FilterError) and info.value.reason.startswith(reason), info.value.reason
    assert str(info.value) == f"superslomo: {info.value.reason}"


def test_a_weights_error_reaches_the_filter_as_its_reason(tmp_path: Path) -> None:
    missing = tmp_path / "none.safetensors"
    with pytest.raises(FilterError) as info:
        superslomo(clip_from_arrays(random_frames(2, 8, 8)), model=missing)
    assert info.value.reason == f"{missing}: no such weights file"
