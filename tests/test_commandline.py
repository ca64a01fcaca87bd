"""One vocabulary for every command line: --device, one-line usage errors (2), failed jobs (1), one source opener."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
import vapoursynth as vs

from vs_superslomo import bench, cli
from vs_superslomo.commandline import EXIT_FAILED, EXIT_USAGE, device_index
from vs_superslomo.errors import JobError
from vs_superslomo.evaluation import cli as eval_cli
from vs_superslomo.source import open_video
from vs_superslomo.training import cli as train_cli


def test_device_index_reads_the_main_commands_form() -> None:
    assert device_index(None) is None and device_index("cpu") == -1
    for bad in ("gpu0", "cuda:x", "-1", ""):
        with pytest.raises(JobError, match="give cpu, cuda, cuda:N or N"):
            device_index(bad)
    if not torch.cuda.is_available():
        for gpu in ("cuda", "cuda:1", "0"):
            with pytest.raises(JobError, match=f"^--device {gpu}: CUDA is not available here; use --device cpu$"):
                device_index(gpu)


COMMANDS = {"bench": bench.main, "eval": eval_cli.main, "train": train_cli.main}


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_sub_command_refuses_a_bad_device_as_a_failed_job_in_one_line(
    name: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    needs = {"train": ["--out", str(tmp_path / "w.safetensors")], "eval": ["--clips", str(tmp_path)]}
    assert COMMANDS[name]([*needs.get(name, []), "--device", "gpu0"]) == EXIT_FAILED
    assert capsys.readouterr().err == f"vs-superslomo {name}: error: bad --device 'gpu0': give cpu, cuda, cuda:N or N\n"


@pytest.mark.parametrize("name", sorted(COMMANDS))
def test_every_sub_command_reports_usage_errors_in_one_line(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        COMMANDS[name](["--no-such-option"])
    err = capsys.readouterr().err
    assert exit_info.value.code == EXIT_USAGE and err.count("\n") == 1, err
    assert err.startswith(f"vs-superslomo {name}: error: ") and f"see vs-superslomo {name} --help" in err


def test_the_main_command_delegates_with_the_same_rule(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert cli.main(["eval", "--clips", str(tmp_path / "none"), "--device", "cpu", "--no-superslomo"]) == EXIT_FAILED
    err = capsys.readouterr().err
    assert err.startswith("vs-superslomo eval: error: ") and "no such folder" in err and err.count("\n") == 1


@pytest.mark.skipif(not hasattr(vs.core, "bs"), reason="the bestsource plugin is not installed")
def test_open_video_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(JobError, match=r"^input .*none\.mp4 does not exist or is not a file$"):
        open_video(tmp_path / "none.mp4")
    junk = tmp_path / "junk.mp4"
    junk.write_bytes(b"not a video" * 100)
    with pytest.raises(JobError, match=r"^cannot read .*junk\.mp4 as video: "):
        open_video(junk)
    assert not list(tmp_path.glob("*.bsindex")) and not list(tmp_path.glob("*.json"))  # no index beside it
