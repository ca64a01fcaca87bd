"""Each filter option defined once: the filter's keywords, the command line's flags and their checks come from
:class:`vs_superslomo.options.FilterOptions`."""

from __future__ import annotations

import argparse
import inspect
from dataclasses import fields

import pytest

from vs_superslomo import superslomo
from vs_superslomo.options import FilterOptions, OptionError, add_arguments, from_arguments


def parse(*argv: str) -> FilterOptions:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return from_arguments(parser.parse_args(argv))


def test_the_filter_takes_every_option_with_its_default() -> None:
    keywords = inspect.signature(superslomo).parameters
    for f in fields(FilterOptions):
        assert keywords[f.name].default == f.default, f.name


def test_flags_parse_to_the_options_and_default_to_the_filters_defaults() -> None:
    assert parse() == FilterOptions()
    chosen = parse(
        "--no-sc", "--sc-threshold", "0.3", "--flow", "net", "--motion", "linear", "--no-splat", "--dedup",
        "--dedup-threshold", "0.01", "--dedup-max-run", "2", "--backend", "torch", "--model", "w.safetensors",
        "--fp16", "--fallback", "0", "--scale", "0.5",
    )  # fmt: skip
    assert chosen == FilterOptions(
        model="w.safetensors",
        fp16=True,
        sc=False,
        sc_threshold=0.3,
        flow="net",
        motion="linear",
        splat=False,
        backend="torch",
        dedup=True,
        dedup_threshold=0.01,
        dedup_max_run=2,
        fallback=0.0,
        scale=0.5,
    )
    assert chosen.kwargs()["sc"] is False and chosen.hold_rules.max_run == 2


@pytest.mark.parametrize(
    ("keyword", "value", "must"),
    [
        ("sc_threshold", 0, "in (0, 1]"),
        ("sc_threshold", True, "in (0, 1]"),
        ("flow", "raft", "'auto', 'net' or 'dis'"),
        ("motion", "cubic", "one of 'auto', 'linear', 'quadratic'"),
        ("dedup_threshold", 1.5, "in (0, 1]"),
        ("dedup_max_run", 17, "an int from 1 to 16"),
        ("dedup_max_run", 2.0, "an int from 1 to 16"),
        ("splat", "yes", "True, False or None"),
        ("backend", "tensorrt", "one of ("),
        ("fallback", 1.5, "from 0 (off) to 1"),
        ("fallback", False, "from 0 (off) to 1"),
    ],
)
def test_a_bad_value_names_the_keyword(keyword: str, value: object, must: str) -> None:
    with pytest.raises(OptionError, match=f"^{keyword} must be") as caught:
        FilterOptions(**{keyword: value})  # type: ignore[arg-type]
    assert must in str(caught.value)


@pytest.mark.parametrize(
    ("argv", "flag"),
    [(["--sc-threshold", "2"], "--sc-threshold"), (["--dedup-max-run", "0"], "--dedup-max-run")],
)
def test_a_bad_flag_names_the_flag(argv: list[str], flag: str) -> None:
    with pytest.raises(OptionError, match=f"^{flag} must be"):
        parse(*argv)
