"""The allocator's free memory goes back to the system when the resident set creeps, and only then."""

from __future__ import annotations

import os
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from vs_superslomo.allocator import (
    CREEP_MARGIN,
    TUNABLES,
    WARM_UP,
    CreepTrim,
    resident_bytes,
    tuned_environment,
    untuned_environment,
)

MIB = 2**20


def run(levels: Sequence[int | None]) -> list[int]:
    """The calls (0-based) at which a CreepTrim trims, given the resident set (MiB) each call reads."""
    readings: Iterator[int | None] = iter(levels)
    trimmed: list[int] = []
    call = [0]

    def resident() -> int | None:
        level = next(readings)
        return None if level is None else level * MIB

    def trim() -> None:
        trimmed.append(call[0])

    creep = CreepTrim(trim, resident)
    for call[0] in range(len(levels)):
        creep()
    assert creep.trims == len(trimmed)
    return trimmed


def test_a_steady_working_set_is_never_trimmed_and_creep_is() -> None:
    margin = CREEP_MARGIN // MIB
    # Before the first pair, then a 200 MiB working set wandering by ±20 MiB: under a quarter of it.
    assert run([800] + [1000] * (WARM_UP - 1) + [980, 1020, 1000, 1045] * 10) == []
    creeping = [800] + [1000] * (WARM_UP - 1) + [1000 + 10 * i for i in range(1, 12)]
    assert run(creeping)[0] == WARM_UP + 5  # 1060 > 1000 + max(16, 200 / 4)
    small = [100] * WARM_UP + [100 + margin + 1, 100]
    assert run(small) == [WARM_UP]  # a small working set: the margin itself


def test_after_a_trim_a_larger_working_set_becomes_the_mark() -> None:
    levels = [100] * WARM_UP + [300, 300, 300, 300]  # a larger frame size from here on
    assert run(levels) == [WARM_UP]  # trimmed once, then 300 is the level, not creep


def test_unreadable_resident_set_trims_every_time_and_the_reading_is_real() -> None:
    assert run([None, None, None]) == [0, 1, 2]
    now = resident_bytes()
    assert now is None or now > 10 * MIB  # this interpreter itself: torch is loaded by the test session


@pytest.mark.skipif(not hasattr(os, "confstr") or os.confstr("CS_GNU_LIBC_VERSION") is None, reason="glibc only")
def test_the_allocator_settings_go_into_the_environment_unless_the_user_has_set_them() -> None:
    tuned = tuned_environment({"PATH": "/bin"})
    assert tuned == {"PATH": "/bin", "GLIBC_TUNABLES": TUNABLES, "VS_SUPERSLOMO_TUNED": "1"}
    for name in ("GLIBC_TUNABLES", "MALLOC_ARENA_MAX", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_"):
        assert tuned_environment({"PATH": "/bin", name: "1"}) is None
    assert untuned_environment(tuned) and tuned == {"PATH": "/bin"}  # taken back out: ours only
    users = {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}
    assert not untuned_environment(users) and users == {"GLIBC_TUNABLES": "glibc.malloc.arena_max=2"}


def test_the_readme_gives_vspipe_users_the_settings_the_command_line_uses() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text(encoding="utf-8")
    given = [line.split()[0].removeprefix("GLIBC_TUNABLES=") for line in readme.splitlines()
             if line.startswith("GLIBC_TUNABLES=")]  # fmt: skip
    assert given == [TUNABLES]
