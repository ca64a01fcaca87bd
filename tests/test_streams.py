"""What becomes of the input's other streams (streams.plan_streams), from the streams ffprobe would report."""

from __future__ import annotations

from fractions import Fraction

from vs_superslomo.streams import Stream, plan_streams

VIDEO = Stream(0, "video", "h264", 2.0)
AUDIO = Stream(1, "audio", "aac", 2.0)


def test_mp4_drops_bitmap_subtitles_and_keeps_text_ones_as_mov_text() -> None:
    subtitles = [Stream(2, "subtitle", "hdmv_pgs_subtitle", None), Stream(3, "subtitle", "dvd_subtitle", None)]
    plan = plan_streams([VIDEO, AUDIO, *subtitles, Stream(4, "subtitle", "ass", None)], False, ".mp4")
    assert plan.others == (
        "subtitles copied (ass -> mov_text); subtitles dropped (hdmv_pgs_subtitle, dvd_subtitle: .mp4 holds text "
        "subtitles only)"
    )
    assert "1:2" not in plan.args and "1:3" not in plan.args  # never mapped, so ffmpeg cannot fail on them
    assert plan.args[plan.args.index("1:4") :][:5] == ["1:4", "-map_metadata:s:2", "1:s:4", "-c:2", "mov_text"]
    matroska = plan_streams([VIDEO, AUDIO, *subtitles], False, ".mkv")  # Matroska holds them as they are
    assert matroska.others == "subtitles copied (hdmv_pgs_subtitle, dvd_subtitle)"


def test_a_cut_drops_subtitles_and_chapters_and_trims_the_audio() -> None:
    subtitles = Stream(2, "subtitle", "ass", None)
    plan = plan_streams([VIDEO, AUDIO, subtitles], True, ".mkv", trim=(0.5, 1.0))
    assert (
        plan.others
        == "subtitles dropped (1 track: the cut changes their timing); chapters dropped (the cut changes their times)"
    )
    assert plan.audio == "trimmed and re-encoded aac -> AAC" and plan.audio_seconds == [1.0]
    assert "1:2" not in plan.args and plan.args[plan.args.index("-map_chapters") + 1] == "-1"
    whole = plan_streams([VIDEO, AUDIO, subtitles], True, ".mkv")  # the same streams, the timeline unchanged
    assert whole.others == "subtitles copied (ass); chapters copied" and whole.audio == "copied (aac)"


def test_stretched_audio_is_cut_to_the_videos_length() -> None:
    plan = plan_streams([VIDEO, AUDIO], False, ".mkv", slowmo=Fraction(4), stretch=True, video_seconds=7.96)
    assert plan.audio_seconds == [7.96] and any("apad=whole_dur=7.960000,atrim=end=7.960000" in a for a in plan.args)
