"""The filter's options, each defined once: its default, what a valid value is, and its help.

:class:`FilterOptions` is that definition. The filter checks its keywords through it (an error names the keyword),
the command line derives its flags from it (:func:`add_arguments`, :func:`from_arguments`: an error names the flag),
and a command-line job carries one :class:`FilterOptions` to the filter, to Ray workers included. Adding an option
means a field here and the code that uses it.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from typing import Any

from .backends import BACKEND_ENV, BACKENDS
from .confidence import DEFAULT_FALLBACK, check_fallback
from .errors import SuperSloMoError
from .flow import FLOW_SOURCES
from .holds import HoldRules
from .parallel import MAX_STREAMS, check_streams
from .scenechange import DEFAULT_SC_THRESHOLD
from .sizing import check_scale

__all__ = [
    "FLOWS",
    "MOTIONS",
    "FilterOptions",
    "OptionError",
    "add_arguments",
    "from_arguments",
]

FLOWS = ("auto", *FLOW_SOURCES)
MOTIONS = ("auto", "linear", "quadratic")


class OptionError(SuperSloMoError, ValueError):
    """A filter option's value is not one it takes; ``name`` is the keyword, ``must`` what it must be."""

    def __init__(self, name: str, value: object, must: str) -> None:
        super().__init__(f"{name} must be {must}, got {value!r}")
        self.name, self.value, self.must = name, value, must


@dataclass(frozen=True)
class _Spec:
    """How one option is checked and offered on the command line."""

    help: str
    must: str | None = None  # what a valid value is, for errors; None: anything of the field's type
    valid: Callable[[Any], bool] | None = None
    choices: tuple[str, ...] = ()
    flag: str | None = None  # the command line's spelling, when not --name-with-dashes
    metavar: str | None = None
    kind: type | None = None  # the command line's type, when the default (None) does not tell


def _option(default: Any, spec: _Spec) -> Any:
    return field(default=default, metadata={"spec": spec})


def _number(low: float, high: float, kind: type = float) -> Callable[[Any], bool]:
    """In (low, high] for floats, [low, high] for ints; bools are neither."""

    def valid(value: Any) -> bool:
        if isinstance(value, bool) or not isinstance(value, (int, float) if kind is float else int):
            return False
        return low < value <= high if kind is float else low <= value <= high

    return valid


def _accepted(check: Callable[[Any], object], value: Any) -> bool:
    """Whether ``check`` (the engine's own, raising ValueError) takes ``value``: one definition of the range."""
    try:
        check(value)
    except ValueError:
        return False
    return True


def _optional_bool(value: Any) -> bool:
    return value is None or isinstance(value, bool)


@dataclass(frozen=True)
class FilterOptions:
    """Every option of ``superslomo()`` that the command line offers too, with its default.

    Construction checks each value (:class:`OptionError` names the keyword); the filter's keywords take their
    defaults from here.
    """

    model: str | None = _option(
        None, _Spec("weights: an original SuperSloMo.ckpt or a .safetensors (default: bundled)")
    )
    fp16: bool | None = _option(
        None, _Spec("half precision (CUDA; default there)", "True, False or None", _optional_bool)
    )
    sc: bool = _option(
        True,
        _Spec("interpolate across scene cuts too", "True or False", lambda v: isinstance(v, bool), flag="--no-sc"),
    )
    sc_threshold: float | None = _option(
        DEFAULT_SC_THRESHOLD,
        _Spec(
            f"a cut: mean luma difference over T (0..1) that motion does not explain (default {DEFAULT_SC_THRESHOLD})",
            "in (0, 1] or None (props only)",
            lambda v: v is None or _number(0, 1)(v),
            metavar="T",
        ),
    )
    flow: str = _option(
        "auto",
        _Spec(
            "motion from the flow network (net), OpenCV DIS (dis) or what the weights were trained for (auto)",
            ", ".join(map(repr, FLOWS[:-1])) + f" or {FLOWS[-1]!r}",
            FLOWS.__contains__,
            choices=FLOWS,
        ),
    )
    motion: str = _option(
        "auto",
        _Spec(
            "between two frames only (linear) or through the frames around them too (quadratic, DIS flows)",
            "one of " + ", ".join(map(repr, MOTIONS)),
            MOTIONS.__contains__,
            choices=MOTIONS,
        ),
    )
    splat: bool | None = _option(
        None,
        _Spec(
            "find the flows to each new frame by moving every pixel along its motion (default with DIS flows)",
            "True, False or None (None: True with DIS flows)",
            _optional_bool,
        ),
    )
    backend: str | None = _option(
        None,
        _Spec(
            f"where the networks run (default: ${BACKEND_ENV} when set, else the fastest installed)",
            f"one of {BACKENDS} or None (the fastest installed)",
            lambda v: v is None or v in BACKENDS,
            choices=BACKENDS,
        ),
    )
    scale: float | None = _option(
        None,
        _Spec(
            "the networks' resolution as a share of the frame's (vs-rife's scale, 0.25..1): at 0.5 they run on a "
            "quarter of the pixels and only the final warps at full size (default: 0.5 from 1280x720 up, else 1)",
            "a number from 0.25 to 1, or None (by the frame's size)",
            lambda v: _accepted(check_scale, v),
            metavar="S",
            kind=float,
        ),
    )
    num_streams: int | None = _option(
        None,
        _Spec(
            "source pairs computed at once on the CPU, each on its share of the cores (default: 2 below 1280x720 "
            "with two or more cores, else 1)",
            f"an int from 1 to {MAX_STREAMS}, or None (by the frame's size)",
            lambda v: _accepted(check_streams, v),
            metavar="N",
            kind=int,
        ),
    )
    fallback: float | None = _option(
        None,
        _Spec(
            "a frame whose motion is trusted less than F (0..1) on average becomes the plain blend of its pair; "
            f"0 turns it off (default {DEFAULT_FALLBACK} with DIS flows, off with the flow network)",
            "a number from 0 (off) to 1, or None (the default)",
            lambda v: v is None or _accepted(check_fallback, v),
            metavar="F",
            kind=float,
        ),
    )
    dedup: bool = _option(
        False,
        _Spec(
            "held frames (animation on twos/threes, repeated frames) become motion instead of stutter",
            "True or False",
            lambda v: isinstance(v, bool),
        ),
    )
    dedup_threshold: float = _option(
        HoldRules.threshold,
        _Spec(
            f"a frame repeats the last when no 16x16 block's mean luma differs more (default {HoldRules.threshold})",
            "in (0, 1]",
            _number(0, 1),
            metavar="D",
        ),
    )
    dedup_max_run: int = _option(
        HoldRules.max_run,
        _Spec(
            f"longer runs of repeats are still shots and stay still (default {HoldRules.max_run})",
            "an int from 1 to 16 (frames)",
            _number(1, 16, int),
            metavar="N",
        ),
    )

    def __post_init__(self) -> None:
        for f in fields(self):
            spec: _Spec = f.metadata["spec"]
            value = getattr(self, f.name)
            if spec.valid is not None and spec.must is not None and not spec.valid(value):
                raise OptionError(f.name, value, spec.must)

    def kwargs(self) -> dict[str, Any]:
        """The filter's keyword arguments."""
        return {f.name: getattr(self, f.name) for f in fields(self)}

    @property
    def hold_rules(self) -> HoldRules:
        return HoldRules(float(self.dedup_threshold), self.dedup_max_run)


def _flag(name: str, spec: _Spec) -> str:
    return spec.flag or "--" + name.replace("_", "-")


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """A flag for each of :class:`FilterOptions`' fields, with its help, choices and default."""
    for f in fields(FilterOptions):
        spec: _Spec = f.metadata["spec"]
        flag = _flag(f.name, spec)
        if f.default is True:  # a switch that turns a default off
            parser.add_argument(flag, dest=f.name, action="store_false", help=spec.help)
        elif f.default is False:
            parser.add_argument(flag, dest=f.name, action="store_true", help=spec.help)
        elif spec.valid is _optional_bool:
            parser.add_argument(flag, dest=f.name, action=argparse.BooleanOptionalAction, default=None, help=spec.help)
        else:
            kind = spec.kind or (type(f.default) if isinstance(f.default, (int, float)) else str)
            parser.add_argument(
                flag,
                dest=f.name,
                type=kind,
                default=f.default,
                choices=spec.choices or None,
                metavar=spec.metavar,
                help=spec.help,
            )


def from_arguments(args: argparse.Namespace) -> FilterOptions:
    """The options parsed by :func:`add_arguments`; a bad value is a :class:`OptionError` that names the flag."""
    values = vars(args)
    try:
        return FilterOptions(**{f.name: values[f.name] for f in fields(FilterOptions) if f.name in values})
    except OptionError as exc:
        flag = _flag(exc.name, next(f.metadata["spec"] for f in fields(FilterOptions) if f.name == exc.name))
        raise OptionError(flag, exc.value, exc.must) from None
