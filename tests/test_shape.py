"""The package's shape: no function over 80 lines of body, no module over 500 lines, the per-frame plan free of
VapourSynth and torch (tests/test_frameplan.py imports it without them)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parent.parent / "vs_superslomo"
MODULES = sorted(PACKAGE.rglob("*.py"))
MAX_BODY, MAX_MODULE = 80, 500


def _body_lines(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    body = node.body
    if len(body) > 1 and isinstance(body[0], ast.Expr) and isinstance(body[0].value, ast.Constant):
        body = body[1:]  # the docstring is not body
    return (node.end_lineno or body[-1].lineno) - body[0].lineno + 1


@pytest.mark.parametrize("path", MODULES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_modules_and_functions_stay_small(path: Path) -> None:
    source = path.read_text()
    assert len(source.splitlines()) <= MAX_MODULE, f"{path.name}: split it by job"
    long = [
        f"{node.name} ({_body_lines(node)} lines)"
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef) and _body_lines(node) > MAX_BODY
    ]
    assert not long, f"{path.name}: {', '.join(long)}"
