"""Host memory stays flat over a long clip: the cache is bounded and nothing accumulates per frame."""

from __future__ import annotations

import os

import pytest
from conftest import clip_from_arrays, make_model, random_frames

from vs_superslomo import superslomo

STATM = "/proc/self/statm"


def rss_mib() -> float:
    with open(STATM) as fh:
        return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


@pytest.mark.skipif(not os.path.exists(STATM), reason="needs Linux /proc to read the resident set size")
def test_memory_is_flat_over_2000_output_frames() -> None:
    frames = random_frames(500, 96, 128)
    out = superslomo(clip_from_arrays(frames), 4, model=make_model(), cache_mb=1)
    assert out.num_frames == 2000
    for n in range(500):  # warm-up: allocator pools, the cache and VapourSynth's own caches fill
        out.get_frame(n)
    start = rss_mib()
    for n in range(500, 2000):
        out.get_frame(n)
    grown = rss_mib() - start
    # Keeping one 128×96 RGBS frame per pair would add 375 × 144 KiB = 53 MiB over these 1500 frames.
    assert grown < 16, f"resident memory grew by {grown:.1f} MiB over 1500 output frames"
