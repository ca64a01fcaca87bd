"""The forward pass matches the network; the losses, their schedules and the VGG perceptual term."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from helpers import (
    make_model,
    random_frames,
)

from vs_superslomo.errors import JobError
from vs_superslomo.training.config import TrainConfig
from vs_superslomo.training.losses import VGG16Features, compute_loss, forward_parts, load_vgg16
from vs_superslomo.training.synthetic import SyntheticDataset


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


def test_the_squared_error_term_is_what_its_weight_adds(photos: list[np.ndarray]) -> None:
    model, batch = make_model(), synthetic_batch(photos)
    plain = compute_loss(model, batch, TrainConfig(photos="x"), 0)[1]
    loss, parts = compute_loss(model, batch, TrainConfig(photos="x", l1_weight=0, mse_weight=1000), 0)
    assert "mse" not in plain and parts["mse"] > 0 and parts["l1"] == pytest.approx(plain["l1"])
    without_l1 = plain["total"] - 204 * plain["l1"]
    assert parts["total"] == pytest.approx(without_l1 + 1000 * parts["mse"], rel=1e-5)
    loss.backward()  # the term reaches the weights
    assert all(p.grad is not None for p in model.interp.parameters())


def test_vgg_features_load_from_torchvision_keys_and_add_the_perceptual_term(
    tmp_path: Path, photos: list[np.ndarray]
) -> None:
    torch.manual_seed(0)
    state = {f"features.{k}": v for k, v in VGG16Features().features.state_dict().items()}
    assert max(int(k.split(".")[1]) for k in state) == 21  # conv4_3, as the port's features[:22]
    torch.save({**state, "classifier.0.weight": torch.zeros(1)}, tmp_path / "vgg16.pth")
    vgg = load_vgg16(tmp_path / "vgg16.pth")
    assert not any(p.requires_grad for p in vgg.parameters())
    conv4_3 = vgg.features[21]
    assert isinstance(conv4_3, torch.nn.Conv2d) and torch.equal(conv4_3.weight, state["features.21.weight"])
    config = TrainConfig(photos="x", steps=10)
    _, parts = compute_loss(make_model(), synthetic_batch(photos, size=32, count=1), config, 0, vgg)
    assert parts["perceptual"] > 0
    del state["features.19.bias"]
    torch.save(state, tmp_path / "bad.pth")
    with pytest.raises(JobError, match=r"features\.19\.bias is missing"):
        load_vgg16(tmp_path / "bad.pth")


def test_quadratic_training_gives_the_network_the_batch_accelerations(photos: list[np.ndarray]) -> None:
    model, batch = make_model(), synthetic_batch(photos)
    linear, quadratic = TrainConfig(photos="x", flow="dis"), TrainConfig(photos="x", flow="dis", motion="quadratic")
    plain = compute_loss(model, batch, linear, 0)[1]["l1"]
    assert not batch["accel"].any()  # synthetic motion has none: zeros are linear motion exactly
    assert compute_loss(model, batch, quadratic, 0)[1]["l1"] == pytest.approx(plain)
    moving = {**batch, "accel": torch.full_like(batch["accel"], 3.0)}
    assert compute_loss(model, moving, quadratic, 0)[1]["l1"] != pytest.approx(plain, rel=1e-3)
    assert compute_loss(model, moving, linear, 0)[1]["l1"] == pytest.approx(plain)  # a linear run ignores them
    with pytest.raises(JobError, match="needs --flow dis"):
        TrainConfig(photos="x", motion="quadratic").check()
    with pytest.raises(JobError, match="motion must be one of"):
        TrainConfig(photos="x", flow="dis", motion="cubic").check()  # type: ignore[arg-type]  # deliberately wrong
