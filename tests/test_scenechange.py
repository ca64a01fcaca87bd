"""find_cuts: the filter's own cut test over a whole clip, as the chunk planner uses it."""

from __future__ import annotations

from helpers import cut_clip_frames

from vs_superslomo.frames import clip_from_arrays
from vs_superslomo.scenechange import find_cuts


def test_find_cuts_sees_content_cuts_and_props_but_not_motion() -> None:
    frames = cut_clip_frames()  # 0-6 a moving picture, 7-9 another (a cut between 6 and 7), 10-11 repeat 9
    assert find_cuts(clip_from_arrays(frames)) == [6]
    props: list[dict[str, object]] = [{} for _ in frames]
    props[11]["_SceneChangePrev"] = 1  # the input says so: (10, 11) is a cut though the frames are equal
    props[2]["_SceneChangeNext"] = 1  # and (2, 3)
    assert find_cuts(clip_from_arrays(frames, props=props)) == [2, 6, 10]
    assert find_cuts(clip_from_arrays(frames[:1])) == []
