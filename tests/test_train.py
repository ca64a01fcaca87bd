"""Training: the forward pass matches the network, losses and schedules, a tiny run that resumes and exports."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
import vapoursynth as vs
from conftest import TINY_WIDTH, make_model, random_frames
from test_data import cut_clip_frames, write_photos, write_y4m

from vs_superslomo.errors import JobError
from vs_superslomo.flow import dis_flow_labels
from vs_superslomo.training.cli import main
from vs_superslomo.training.config import TrainConfig
from vs_superslomo.training.loop import train
from vs_superslomo.training.losses import VGG16Features, compute_loss, forward_parts, load_vgg16
from vs_superslomo.training.state import load_checkpoint
from vs_superslomo.training.synthetic import SyntheticDataset, load_photos
from vs_superslomo.weights import load_model, save_model


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny networks gain nothing from threads, and a CPU shared with other jobs makes them 10x slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path | None]:
    """A photos folder, and a clips folder with two tiny clips (None without bestsource)."""
    root = tmp_path_factory.mktemp("train-data")
    photos = write_photos(root / "photos")
    if not hasattr(vs.core, "bs"):
        return photos, None
    clips = root / "clips"
    clips.mkdir()
    write_y4m(clips / "train_clip.y4m", cut_clip_frames())
    write_y4m(clips / "held_clip.y4m", random_frames(8, 64, 64, seed=3))
    return photos, clips


def tiny_config(tmp_path: Path, folders: tuple[Path, Path | None], **overrides: object) -> TrainConfig:
    photos, clips = folders
    settings: dict[str, object] = {
        "photos": str(photos),
        "clips": str(clips) if clips else None,
        "holdout": ("held_clip",) if clips else (),
        "width": TINY_WIDTH,
        "steps": 3,
        "batch": 2,
        "crop": 64,
        "max_motion": 8.0,
        "val_every": 1,
        "val_count": 2,
        "checkpoint": str(tmp_path / "run.train.pt"),
        "checkpoint_every": 1,
        "out": str(tmp_path / "trained.safetensors"),
        "warmup": 1,
        "progress": False,
    }
    settings.update(overrides)
    return TrainConfig(**settings)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def photos(folders: tuple[Path, Path | None]) -> list[np.ndarray]:
    return load_photos(folders[0], max_side=128)


def synthetic_batch(photos: list[np.ndarray], size: int = 64, count: int = 2) -> dict[str, torch.Tensor]:
    ds = SyntheticDataset(photos, size, max_motion=6)
    items = [ds[i] for i in range(count)]
    return {k: torch.stack([item[k] for item in items]) for k in items[0]}


def test_forward_parts_match_the_network() -> None:
    model = make_model()
    frames = [torch.from_numpy(f)[None].repeat(2, 1, 1, 1) for f in random_frames(2, 64, 64)]
    i0, i1 = (model.normalize(f) for f in frames)
    t = torch.tensor([0.25, 0.6])
    with torch.no_grad():
        parts = forward_parts(model, i0, i1, t)
        expected = model.synthesize(i0, i1, *model.compute_flow(i0, i1), t)
    assert torch.equal(parts.out, expected)
    assert parts.g0.shape == parts.g1.shape == (2, 3, 64, 64) and parts.f01.shape == (2, 2, 64, 64)


def test_losses_and_schedules(photos: list[np.ndarray]) -> None:
    config = TrainConfig(photos="x", steps=100, warmup=10, flow_weight=2.0)
    assert config.flow_weight_at(0) == 2.0 and config.flow_weight_at(45) == pytest.approx(1.0)
    assert config.flow_weight_at(60) == 0.0
    assert config.lr_at(0) == pytest.approx(config.lr / 10) and config.lr_at(9) == pytest.approx(config.lr)
    assert config.lr_at(99) == pytest.approx(config.lr * config.final_lr, rel=0.01)
    stepped = TrainConfig(photos="x", steps=100, warmup=0, schedule="step")
    assert [stepped.lr_at(s) / stepped.lr for s in (0, 49, 50, 75)] == pytest.approx([1, 1, 0.1, 0.01])
    model = make_model()
    batch = synthetic_batch(photos)
    loss, parts = compute_loss(model, batch, config, 0)
    assert torch.isfinite(loss) and {"l1", "warp", "smooth", "flow", "total"} <= set(parts)
    loss.backward()
    assert all(p.grad is not None for p in model.parameters())
    _, late = compute_loss(model, batch, config, 99)
    assert "flow" not in late and late["total"] < parts["total"]
    # Perfect flow labels give a smaller flow term than wrong-signed ones.
    with torch.no_grad():
        f01, f10 = model.compute_flow(model.normalize(batch["i0"]), model.normalize(batch["i1"]))
    right = compute_loss(model, {**batch, "flow01": f01, "flow10": f10}, config, 0)[1]["flow"]
    assert right < 0.05 < parts["flow"]


def test_vgg_features_load_from_torchvision_keys_and_add_the_perceptual_term(
    tmp_path: Path, photos: list[np.ndarray]
) -> None:
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    assert max(int(k.split(".")[1]) for k in state) == 21  # conv4_3, as the port's features[:22]
    torch.save({**state, "classifier.0.weight": torch.zeros(1)}, tmp_path / "vgg16.pth")
    vgg = load_vgg16(tmp_path / "vgg16.pth")
    assert not any(p.requires_grad for p in vgg.parameters())
    assert torch.equal(vgg.features[21].weight, state["features.21.weight"])
    config = TrainConfig(photos="x", steps=10)
    _, parts = compute_loss(make_model(), synthetic_batch(photos, size=32, count=1), config, 0, vgg)
    assert parts["perceptual"] > 0
    del state["features.19.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(JobError, match=r"features\.19\.bias is missing"):
        load_vgg16(tmp_path / "bad.pth")


# DataLoader workers fork (copying the clips for free); Python warns about forking a threaded process.
@pytest.mark.filterwarnings("ignore:This process .* is multi-threaded:DeprecationWarning")
def test_tiny_run_stops_resumes_exactly_and_exports(tmp_path: Path, folders: tuple[Path, Path | None]) -> None:
    config = tiny_config(tmp_path, folders)
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
    straight = tiny_config(tmp_path / "straight", folders)
    train(straight)
    a, b = load_checkpoint(config.checkpoint or "")["model"], load_checkpoint(straight.checkpoint or "")["model"]
    assert all(torch.allclose(a[k], b[k], atol=1e-6) for k in a)
    # A DataLoader worker process (forked after OpenCV ran here) delivers the very same samples.
    forked = train(tiny_config(tmp_path / "forked", folders, workers=1), until=1)
    assert forked.history[0]["total"] == pytest.approx(first.history[0]["total"], abs=1e-6)


def test_command_line_trains_and_reports_bad_settings(
    tmp_path: Path, folders: tuple[Path, Path | None], capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "cli.safetensors"
    common = ["--photos", str(folders[0]), "--out", str(out), "--width", str(TINY_WIDTH), "--holdout", "--quiet"]
    assert main([*common, "--steps", "1", "--batch", "1", "--crop", "32", "--val-count", "1"]) == 0
    assert load_model(out)[1].warp == "exact" and (tmp_path / "cli.train.pt").is_file()
    # A run that cannot go as asked is a failed job: exit status 1 and one line, as for every command.
    assert main([*common, "--crop", "100", "--checkpoint", str(tmp_path / "other.pt")]) == 1
    err = capsys.readouterr().err
    assert err.startswith("vs-superslomo train: error: ") and "crop must be a multiple of 32" in err
    assert err.count("\n") == 1
    if not torch.cuda.is_available():
        assert main([*common, "--device", "cuda", "--checkpoint", str(tmp_path / "cuda.pt")]) == 1
        assert capsys.readouterr().err == (
            "vs-superslomo train: error: --device cuda: CUDA is not available here; use --device cpu\n"
        )


def test_fine_tuning_starts_from_the_given_weights_and_chains_provenance(
    tmp_path: Path, folders: tuple[Path, Path | None]
) -> None:
    base = tiny_config(tmp_path / "base", folders, steps=1)
    train(base)
    # A start file whose mean is not the default: the mean must travel with its weights, resumes included.
    start_model, start_info = load_model(base.out or "")
    start_model.mean.fill_(0.5)
    save_model(start_model, base.out or "", half=True, provenance=start_info.provenance)
    start = start_model.state_dict()
    tuned = tiny_config(tmp_path / "tuned", folders, init=base.out, lr=1e-12, warmup=0)
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
    wrong = tiny_config(tmp_path / "wrong", folders, init=base.out, width=TINY_WIDTH * 2)
    with pytest.raises(JobError, match=r"--init .* is width"):
        train(wrong)
    with pytest.raises(JobError, match=r"--init: .*no such weights file"):
        train(tiny_config(tmp_path / "missing", folders, init=str(tmp_path / "none.safetensors")))


def test_dis_runs_train_the_interpolation_net_alone_on_dis_flows(
    tmp_path: Path, folders: tuple[Path, Path | None]
) -> None:
    donor = tmp_path / "donor.safetensors"
    save_model(make_model(seed=5), donor, provenance="donor weights", half=True)  # as exports are
    config = tiny_config(tmp_path, folders, flow="dis", flow_net=str(donor), lr=1e-2)
    result = train(config)
    assert {"l1", "warp"} <= set(result.history[0]) and not {"smooth", "flow"} & set(result.history[0])
    model, info = load_model(result.out or "")
    assert info.flow == model.flow_source == "dis"
    assert "on DIS flows" in info.provenance and "donor weights" in info.provenance
    # The flow net is the donor's, untouched; the interpolation net trained from a zero output layer.
    donor_flow = load_model(donor)[0].flow.state_dict()
    assert all(torch.equal(v, donor_flow[k]) for k, v in model.flow.state_dict().items())
    assert model.interp.conv3.weight.abs().sum() > 0
    with pytest.raises(JobError, match="flow_net is for --flow dis runs"):
        train(tiny_config(tmp_path / "net", folders, flow_net=str(donor)))
    with pytest.raises(JobError, match=r"flow dis; this run asks for .* flow net"):
        train(tiny_config(tmp_path, folders, flow="net", checkpoint=config.checkpoint), resume=True)


def test_dis_validation_and_samples_carry_dis_flows_of_the_whole_frame(photos: list[np.ndarray]) -> None:
    ds = SyntheticDataset(photos, 64, max_motion=6, dis_flows=True)
    sample = ds.sample(0)
    f01, f10, _ = dis_flow_labels(sample.i0, sample.i1)
    assert np.array_equal(sample.flow01, f01) and np.array_equal(sample.flow10, f10)
    exact = SyntheticDataset(photos, 64, max_motion=6).sample(0)
    assert not np.array_equal(exact.flow01, f01)
