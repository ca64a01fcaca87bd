"""Tiny training runs: they stop, resume exactly and export; fine-tuning; DIS-flow runs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    TINY_WIDTH,
    make_model,
    tiny_train_config,
)

from vs_superslomo.errors import JobError
from vs_superslomo.flow import dis_flow_labels
from vs_superslomo.training.loop import train
from vs_superslomo.training.state import load_checkpoint
from vs_superslomo.training.synthetic import SyntheticDataset
from vs_superslomo.weights import load_model, save_model


# DataLoader workers fork (copying the clips for free); Python warns about forking a threaded process.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_tiny_run_stops_resumes_exactly_and_exports(tmp_path: Path, folders: tuple[Path, Path | None]) -> None:
    config = tiny_train_config(tmp_path, folders)
    first = train(config, until=2)
    assert (first.start_step, first.step, first.out) == (0, 2, None)
    assert first.val_psnr is not None and first.val_psnr > 5
    assert all(torch.isfinite(torch.tensor(h["total"])) for h in first.history)
    assert load_checkpoint(config.checkpoint or "")["step"] == 2 and not Path(config.out or "").exists()
    with pytest.raises(JobError, match="pass --resume"):
        train(config)
    resumed = train(config, resume=True)
    assert (resumed.start_step, resumed.step, len(resumed.history)) == (2, 3, 1)
    model, info = load_model(resumed.out or "")
    assert (info.warp, info.width, model.warp) == ("exact", TINY_WIDTH, "exact")
    assert "3 steps" in info.provenance and "hardware:" in info.provenance
    if folders[1] is not None:
        assert "held_clip" in info.provenance and "train_clip" in info.provenance
    # Stopped after two steps and resumed, or three steps in one go: the same weights.
    straight = tiny_train_config(tmp_path / "straight", folders)
    train(straight)
    a, b = load_checkpoint(config.checkpoint or "")["model"], load_checkpoint(straight.checkpoint or "")["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # A DataLoader worker process (forked after OpenCV ran here) delivers the very same samples.
    forked = train(tiny_train_config(tmp_path / "forked", folders, workers=1), until=1)
    assert forked.history[0]["total"] == pytest.approx(first.history[0]["total"], abs=1e-6)


def test_fine_tuning_starts_from_the_given_weights_and_chains_provenance(
    tmp_path: Path, folders: tuple[Path, Path | None]
) -> None:
    base = tiny_train_config(tmp_path / "base", folders, steps=1)
    train(base)
    # A start file whose mean is not the default: the mean must travel with its weights, resumes included.
    start_model, start_info = load_model(base.out or "")
    start_model.mean.fill_(0.5)
    save_model(start_model, base.out or "", half=True, provenance=start_info.provenance)
    start = start_model.state_dict()
    tuned = tiny_train_config(tmp_path / "tuned", folders, init=base.out, lr=1e-12, warmup=0)
    first = train(tuned, until=1)
    # With a negligible learning rate the weights stay those of the start file (fp16 as it was saved).
    weights = load_checkpoint(tuned.checkpoint or "")["model"]
    assert all(torch.allclose(weights[k], start[k], atol=1e-6) for k in start)
    assert first.history[0]["total"] < 1e6
    # The checkpoint, not the start file, holds the weights and the start's provenance now: move it away.
    moved = Path(base.out or "").rename(tmp_path / "moved.safetensors")
    resumed = train(tuned, resume=True)
    moved.rename(base.out or "")
    resumed_model, info = load_model(resumed.out or "")
    assert torch.allclose(resumed_model.mean, torch.full((1, 3, 1, 1), 0.5))
    assert info.provenance.startswith("fine-tuned from trained.safetensors [trained by vs_superslomo.train")
    wrong = tiny_train_config(tmp_path / "wrong", folders, init=base.out, width=TINY_WIDTH * 2)
    with pytest.raises(JobError, match=r"--init .* is width"):
        train(wrong)
    with pytest.raises(JobError, match=r"--init: .*no such weights file"):
        train(tiny_train_config(tmp_path / "missing", folders, init=str(tmp_path / "none.safetensors")))


def test_dis_runs_train_the_interpolation_net_alone_on_dis_flows(
    tmp_path: Path, folders: tuple[Path, Path | None]
) -> None:
    donor = tmp_path / "donor.safetensors"
    save_model(make_model(seed=5), donor, provenance="donor weights", half=True)  # as exports are
    # With quadratic motion: real windows with frames around them carry accelerations (the filter's default).
    config = tiny_train_config(tmp_path, folders, flow="dis", flow_net=str(donor), lr=1e-2, motion="quadratic")
    result = train(config)
    assert {"l1", "warp"} <= set(result.history[0]) and not {"smooth", "flow"} & set(result.history[0])
    model, info = load_model(result.out or "")
    assert info.flow == model.flow_source == "dis"
    assert "on DIS flows" in info.provenance and "donor weights" in info.provenance
    assert ("DIS flows and accelerations" in info.provenance) == (folders[1] is not None)  # real windows only
    # The flow net is the donor's, untouched; the interpolation net trained from a zero output layer.
    donor_flow = load_model(donor)[0].flow.state_dict()
    assert all(torch.equal(v, donor_flow[k]) for k, v in model.flow.state_dict().items())
    assert model.interp.conv3.weight.abs().sum() > 0
    with pytest.raises(JobError, match="flow_net is for --flow dis runs"):
        train(tiny_train_config(tmp_path / "net", folders, flow_net=str(donor)))
    with pytest.raises(JobError, match=r"flow dis; this run asks for .* flow net"):
        train(tiny_train_config(tmp_path, folders, flow="net", checkpoint=config.checkpoint), resume=True)


def test_dis_validation_and_samples_carry_dis_flows_of_the_whole_frame(photos: list[np.ndarray]) -> None:
    ds = SyntheticDataset(photos, 64, max_motion=6, dis_flows=True)
    sample = ds.sample(0)
    f01, f10, _ = dis_flow_labels(sample.i0, sample.i1)
    assert np.array_equal(sample.flow01, f01) and np.array_equal(sample.flow10, f10)
    exact = SyntheticDataset(photos, 64, max_motion=6).sample(0)
    assert not np.array_equal(exact.flow01, f01)
