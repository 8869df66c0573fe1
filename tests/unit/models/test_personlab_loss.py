"""PersonLab loss: recurrent refinement, offset terms, weights, errors, and a tiny overfit."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from describeme.models.datasets import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB
from describeme.models.personlab.config import (
    build_criterion_from_config,
    build_model_from_config,
    load_personlab_config,
)
from describeme.models.personlab.criterion import DEFAULT_WEIGHTS, PersonLabLoss, build_criterion
from describeme.models.personlab.refine import (
    cell_positions,
    refine_long_offsets,
    refine_mid_offsets,
    sample_fields,
)
from describeme.models.personlab.targets import build_targets

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
STRIDE, SIZE = 8, 16  # 16 x 16 cells, 128 x 128 input pixels


def _towards(point: torch.Tensor) -> torch.Tensor:
    """(2, h, w) exact offsets from every cell to ``point``."""
    return point.view(2, 1, 1) - cell_positions(SIZE, SIZE, STRIDE)


def test_sampling_at_cell_centres_returns_the_field_exactly() -> None:
    field = torch.randn(3, 4, SIZE, SIZE)
    points = cell_positions(SIZE, SIZE, STRIDE).expand(3, 2, SIZE, SIZE)
    torch.testing.assert_close(sample_fields(field, points, STRIDE), field)


def test_sampling_interpolates_linearly_between_cells() -> None:
    field = cell_positions(SIZE, SIZE, STRIDE)[None]  # the field of positions itself
    points = torch.tensor([[21.0, 40.25], [50.5, 33.0]]).T.reshape(1, 2, 1, 2)
    torch.testing.assert_close(sample_fields(field, points, STRIDE), points)


def test_long_range_refinement_reduces_the_error_of_an_undershooting_field() -> None:
    keypoint = torch.tensor([64.0, 60.0])
    truth = _towards(keypoint)  # (2, h, w)
    short = torch.where(truth.norm(dim=0) <= 20, truth, torch.zeros_like(truth))
    long = (0.7 * truth).repeat(17, 1, 1)[None]  # every keypoint: 30 % short of the target
    short_all = short.repeat(17, 1, 1)[None]
    before = (long[0, :2] - truth).norm(dim=0).mean()
    by_itself = refine_long_offsets(long, short_all, STRIDE, self_steps=2, short_steps=0)
    both = refine_long_offsets(long, short_all, STRIDE, self_steps=2, short_steps=2)
    after_self = (by_itself[0, :2] - truth).norm(dim=0).mean()
    after_both = (both[0, :2] - truth).norm(dim=0).mean()
    assert after_self < 0.2 * before
    assert after_both < 0.01 * before  # endpoints land in the disk where short offsets are exact


def test_mid_range_refinement_with_short_offsets_reduces_the_error() -> None:
    target = torch.tensor([70.0, 50.0])
    truth = _towards(target)
    noisy = 0.8 * truth + 3.0  # biased and short
    mid = torch.zeros(1, 64, SIZE, SIZE)
    mid[0, :2] = noisy  # edge 0 = (nose -> left eye): the eye's short offsets refine it
    short = torch.zeros(1, 34, SIZE, SIZE)
    short[0, 2:4] = torch.where(truth.norm(dim=0) <= 20, truth, torch.zeros_like(truth))
    refined = refine_mid_offsets(mid, short, STRIDE, steps=2)
    near = truth.norm(dim=0) <= 60  # sources whose first hop lands within R of the target
    before = (noisy - truth).norm(dim=0)[near].mean()
    after = (refined[0, :2] - truth).norm(dim=0)[near].mean()
    assert after < 0.1 * before


def test_refinement_is_differentiable_through_the_sampled_short_offsets() -> None:
    short = torch.zeros(1, 34, SIZE, SIZE, requires_grad=True)
    mid = torch.full((1, 64, SIZE, SIZE), 5.0, requires_grad=True)
    refine_mid_offsets(mid, short, STRIDE).sum().backward()
    assert short.grad is not None and short.grad.abs().sum() > 0
    assert mid.grad is not None and mid.grad.abs().sum() > 0


def _instances_and_semantic():
    keypoints = torch.zeros(1, 17, 3)
    keypoints[0, :, 0] = torch.linspace(20, 44, 17)
    keypoints[0, :, 1] = torch.linspace(10, 54, 17)
    keypoints[0, :, 2] = 2
    masks = torch.zeros(1, 64, 64, dtype=torch.bool)
    masks[0, 8:56, 16:48] = True
    parts = torch.where(masks[0], 5, 0)[None]
    semantic = {"parts": parts, "size": parts.clamp(max=2), "pattern": parts.clamp(max=1),
                "color": parts * 2}  # fmt: skip
    return [{"keypoints": keypoints, "masks": masks}], semantic


def test_perfect_offsets_have_zero_offset_losses() -> None:
    instances, _ = _instances_and_semantic()
    targets = build_targets([instances[0]["keypoints"]], [instances[0]["masks"]], 8, 12.0)
    criterion = build_criterion(output_stride=8, disk_radius=12.0)
    outputs = {
        "heatmaps": targets["heatmaps"] * 40 - 20,
        "segmentation": targets["segmentation"] * 40 - 20,
        "short_offsets": targets["short_offsets"],
        "mid_offsets": targets["mid_offsets"],
        "long_offsets": targets["long_offsets"],
    }
    losses = criterion.keypoint_losses(outputs, targets)
    assert losses["loss_heatmap"] < 1e-6 and losses["loss_segmentation"] < 1e-6
    assert losses["loss_short"] < 1e-5
    assert losses["loss_mid"] < 1e-3  # refinement samples the exact fields: ~0
    assert losses["loss_long"] < 0.05  # cells near the mask edge sample zero offsets


def test_default_weights_are_the_papers() -> None:
    assert DEFAULT_WEIGHTS == {
        "loss_heatmap": 4.0,
        "loss_segmentation": 2.0,
        "loss_short": 1.0,
        "loss_mid": 0.25,
        "loss_long": 0.125,
    }


@pytest.fixture(scope="module")
def tiny_setup():
    config = load_personlab_config(CONFIGS / "personlab_tiny.yaml")
    torch.manual_seed(0)
    return build_model_from_config(config), build_criterion_from_config(config)


def test_total_is_the_weighted_sum_of_terms(tiny_setup) -> None:
    model, criterion = tiny_setup
    instances, semantic = _instances_and_semantic()
    with torch.no_grad():
        losses = criterion(model(torch.rand(1, 3, 64, 64)), instances, semantic)
    weighted = sum(criterion.weights.get(k, 1.0) * v for k, v in losses.items() if k != "loss")
    torch.testing.assert_close(losses["loss"], weighted)
    assert {"loss_attribute_dice", "loss_color_focal", "loss_long"} <= set(losses)


def test_loss_decreases_on_a_tiny_batch(tiny_setup) -> None:
    model, criterion = tiny_setup
    model.train()
    instances, semantic = _instances_and_semantic()
    images = torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(1))
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    history = []
    for _ in range(12):
        losses = criterion(model(images), instances, semantic)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        history.append(float(losses["loss"].detach()))
    model.eval()
    assert history[-1] < 0.7 * history[0], history


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("drop_semantic", "semantic targets"),
        ("two_instances", "instance targets for a batch of 1"),
        ("small_masks", "masks must be at the input resolution"),
    ],
)
def test_bad_targets_raise_actionable_errors(tiny_setup, change, message) -> None:
    model, criterion = tiny_setup
    instances, semantic = _instances_and_semantic()
    if change == "drop_semantic":
        semantic = {k: v for k, v in semantic.items() if k != "color"}
    elif change == "two_instances":
        instances = instances * 2
    else:
        instances = [{"keypoints": instances[0]["keypoints"],
                      "masks": instances[0]["masks"][:, :32, :32]}]  # fmt: skip
    with torch.no_grad(), pytest.raises(ValueError, match=message):
        criterion(model(torch.rand(1, 3, 64, 64)), instances, semantic)


def test_negative_refinement_steps_are_rejected() -> None:
    with pytest.raises(ValueError, match="mid_refine_steps"):
        build_criterion(mid_refine_steps=-1)


def test_batch_adapter_feeds_a_collated_batch_to_the_criterion(tiny_setup) -> None:
    model, criterion = tiny_setup
    instances, semantic = _instances_and_semantic()
    mean = torch.tensor(IMAGENET_MEAN_RGB).view(1, 3, 1, 1)
    std = torch.tensor(IMAGENET_STD_RGB).view(1, 3, 1, 1)
    rgb = torch.rand(1, 3, 64, 64)
    batch = {
        "image": (rgb - mean) / std,  # what ParsingTorchDataset yields
        "keypoints": [instances[0]["keypoints"]],
        "masks": [instances[0]["masks"]],
        **semantic,
    }
    with torch.no_grad():
        adapted = PersonLabLoss(criterion, torch.device("cpu"))(model, batch)
        direct = criterion(model(rgb), instances, semantic)
    torch.testing.assert_close(adapted["loss"], direct["loss"], rtol=1e-4, atol=1e-5)
