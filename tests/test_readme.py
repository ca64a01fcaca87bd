"""The README is true to the code: its order, its signature, its script and every command in its shell blocks."""

from __future__ import annotations

import ast
import inspect
import re
import shlex
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest
import vapoursynth as vs
from helpers import needs_ffmpeg, random_frames, write_y4m
from test_examples import run_vspipe_line

import vs_superslomo
from vs_superslomo.cli import main
from vs_superslomo.job import Job
from vs_superslomo.options import FilterOptions
from vs_superslomo.transcode import prepare

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()
DOCS = ["README.md", "weights/README.md", "docs/log.md", "examples/README.md"]

needs_bestsource = pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="needs the bestsource plugin")


def blocks(language: str) -> list[str]:
    """The README's fenced blocks marked ``language``, in order."""
    return re.findall(rf"^```{language}\n(.*?)^```", README, flags=re.S | re.M)


def section(title: str) -> str:
    match = re.search(rf"^## {re.escape(title)}\n(.*?)(?=^## )", README, flags=re.S | re.M)
    assert match, f"no section {title!r}"
    return match.group(1)


def test_the_first_filter_call_comes_within_60_lines() -> None:
    """The first ``superslomo(`` inside a Python block, not a mention in the text."""
    fence = None
    for number, line in enumerate(README.splitlines(), 1):
        if line.startswith("```"):
            fence = line[3:] if fence is None else None
        elif fence == "python" and "superslomo(" in line:
            assert number <= 60
            return
    pytest.fail("no superslomo( call in a python block")


def documented_signature() -> ast.arguments:
    """The signature block of the Options section, parsed as a function definition."""
    block = next(b for b in re.findall(r"^```python\n(.*?)^```", section("Options"), flags=re.S | re.M))
    assert block.startswith("superslomo(")
    return ast.parse(f"def {block.strip()}: pass").body[0].args  # type: ignore[attr-defined,no-any-return]


def test_the_signature_block_is_the_filters_signature() -> None:
    args = documented_signature()
    documented: list[tuple[str, inspect._ParameterKind]] = [
        (a.arg, inspect.Parameter.POSITIONAL_OR_KEYWORD) for a in args.args
    ]
    documented += [(a.arg, inspect.Parameter.KEYWORD_ONLY) for a in args.kwonlyargs]
    if args.kwarg is not None:
        documented.append((args.kwarg.arg, inspect.Parameter.VAR_KEYWORD))
    defaults = [*args.defaults, *args.kw_defaults]
    names_with_defaults = [a.arg for a in args.args][len(args.args) - len(args.defaults) :]
    names_with_defaults += [a.arg for a, d in zip(args.kwonlyargs, args.kw_defaults, strict=True) if d is not None]
    documented_defaults = dict(
        zip(names_with_defaults, (ast.literal_eval(d) for d in defaults if d is not None), strict=True)
    )
    actual = inspect.signature(vs_superslomo.superslomo).parameters.values()
    assert documented == [(p.name, p.kind) for p in actual]
    assert documented_defaults == {p.name: p.default for p in actual if p.default is not inspect.Parameter.empty}


def test_every_parameter_is_described() -> None:
    options = section("Options")
    bullets = "\n".join(line for line in options.splitlines() if line.startswith("- "))
    parameters = inspect.signature(vs_superslomo.superslomo).parameters.values()
    missing = [p.name for p in parameters if f"`{'**' if p.kind == p.VAR_KEYWORD else ''}{p.name}`" not in bullets]
    assert missing == []


def test_no_work_period_numbers_or_paths_outside_the_repo() -> None:
    if (ROOT / ".git").exists() and shutil.which("git"):
        found = subprocess.run(
            ["git", "grep", "-niE", "sessions? [0-9]"], cwd=ROOT, capture_output=True, text=True
        ).stdout
        assert found == ""
    for doc in DOCS:
        text = (ROOT / doc).read_text()
        assert "../shared" not in text and "/work/" not in text, doc


def script_block() -> str:
    return next(b for b in blocks("python") if "set_output" in b and "superslomo(" in b)


@needs_bestsource
def test_the_readme_script_gives_the_command_lines_colours(tmp_path: Path, tiny_weights_file: Path) -> None:
    # An SD clip whose file names no matrix: the command line takes BT.601 for it; the script must too.
    clip = write_y4m(tmp_path / "sd.y4m", random_frames(3, 240, 320))
    code = re.sub(r'VideoSource\("[^"]+"', f"VideoSource({str(clip)!r}", script_block(), count=1)
    assert str(clip) in code
    code = code.replace("superslomo(to_rgb(src),", f"superslomo(to_rgb(src), model={str(tiny_weights_file)!r},")
    vs.clear_outputs()
    exec(compile(code, "README.md", "exec"), {})  # the script as a user's .vpy runs it
    scripted = vs.get_output(0)
    assert isinstance(scripted, vs.VideoOutputTuple)
    cli = prepare(
        Job(input=clip, output=tmp_path / "out.mkv", options=FilterOptions(model=str(tiny_weights_file)), fps=None)
    )
    for ours, theirs in [(scripted.clip.get_frame(0), cli.clip.get_frame(0))]:  # frame 0: a source frame's copy
        assert ours.format.id == theirs.format.id
        assert all(np.array_equal(np.asarray(ours[p]), np.asarray(theirs[p])) for p in range(ours.format.num_planes))
        assert ours.props["_Matrix"] == theirs.props["_Matrix"] == 6  # BT.601 (170m) for SD
    vs.clear_outputs()


def commands() -> list[str]:
    """Every command line of the README's ``sh`` blocks (``text`` blocks show commands that need other
    machines or tools); continuation lines joined."""
    found = []
    for block in blocks("sh"):
        for line in block.replace("\\\n", " ").splitlines():
            line = line.split("  #")[0].strip()
            if line and not line.startswith("#"):
                found.append(line)
    return found


SLOW = ("--workers", " eval ", " export ", " render ")


@pytest.mark.parametrize(
    "command", [pytest.param(c, marks=pytest.mark.slow) if any(s in f" {c} " for s in SLOW) else c for c in commands()]
)
@needs_bestsource
@needs_ffmpeg
def test_readme_commands_run_as_written(
    command: str,
    checkout: Path,
    bare_env: dict[str, str],
    tiny_weights_file: Path,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """From the checkout's root after `make demo`; for speed only tiny weights and a short excerpt are added."""
    words = shlex.split(command)
    if words[0] == "make":
        pytest.skip("make demo sets up the checkout this test stands in")
    if words[0] == ".venv/bin/vspipe":
        run_vspipe_line(command, checkout, bare_env, tiny_weights_file)
        return
    program = words[:3] if words[:3] == ["python", "-m", "vs_superslomo"] else words[:1]
    assert program in (["vs-superslomo"], ["python", "-m", "vs_superslomo"]), f"unknown program in {command!r}"
    argv = words[len(program) :]
    if argv[0] == "render":
        argv += ["-a", f"model={tiny_weights_file}"]
    elif argv[0] == "eval":
        argv += ["--model", str(tiny_weights_file)]
    elif argv[0] != "export":
        argv += ["--model", str(tiny_weights_file)] + ([] if "--end" in argv else ["--end", "0.2"])
    monkeypatch.chdir(checkout)
    assert main(argv) == 0, capsys.readouterr().err
    written = [checkout / w for w in argv if w.startswith("build/")]
    assert written and all(path.exists() for path in written)


def test_links_to_sections_and_files_resolve() -> None:
    slugs = {re.sub(r"[^\w\- ]", "", h.lower()).replace(" ", "-") for h in re.findall(r"^#+ (.+)$", README, re.M)}
    anchors = set(re.findall(r"\]\(#([^)]+)\)", README))
    assert anchors and anchors <= slugs
    files = re.findall(r"\]\(([^)#:]+)\)", README)
    assert files and all((ROOT / f).exists() for f in files)
