"""HPTR criterion and dense/binary losses; overfitting one tiny image."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from describeme.models.common.losses import dense_dice_loss, dense_focal_loss
from describeme.models.hptr.config import build_model_from_config, load_hptr_config
from describeme.models.hptr.criterion import build_criterion

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
H = W = 64


def _scene() -> tuple[torch.Tensor, list[dict], dict]:
    """Two 'people' (hair / upper-clothes / pants stripes) on a dark background."""
    parts = torch.zeros(1, H, W, dtype=torch.long)
    masks = torch.zeros(2, H, W, dtype=torch.bool)
    for index, (x0, x1) in enumerate([(8, 24), (36, 56)]):
        masks[index, 8:60, x0:x1] = True
        parts[0, 8:20, x0:x1], parts[0, 20:40, x0:x1], parts[0, 40:60, x0:x1] = 2, 5, 9
    boxes = torch.tensor([[8, 8, 24, 60], [36, 8, 56, 60]], dtype=torch.float32)
    foreground = (parts > 0).long()
    semantic = {"parts": parts, "color": foreground * 3, "size": foreground, "pattern": foreground}
    generator = torch.Generator().manual_seed(0)
    image = torch.rand(1, 3, H, W, generator=generator) * 0.2
    for channel, label in enumerate((2, 5, 9)):
        image[0, channel][parts[0] == label] = 0.8
    return image, [{"boxes_xyxy": boxes, "masks": masks}], semantic


def _tiny_model():
    torch.manual_seed(0)
    return build_model_from_config(load_hptr_config(CONFIGS / "hptr_tiny.yaml"))


def test_loss_has_every_term_and_total_is_their_sum() -> None:
    model = _tiny_model().train()
    image, instances, semantic = _scene()
    losses = build_criterion()(model(image), instances, semantic)
    expected = {
        "loss_class",
        "loss_bbox",
        "loss_giou",
        "loss_mask_dice",
        "loss_mask_focal",
        "loss_class_0",
        "loss_bbox_0",
        "loss_giou_0",
    }
    expected |= {
        f"loss_{h}_{k}"
        for h in ("attribute", "size", "pattern", "color")
        for k in ("dice", "focal")
    }
    assert set(losses) == expected | {"loss"}
    total = sum(v for k, v in losses.items() if k != "loss")
    assert losses["loss"].item() == pytest.approx(total.item(), rel=1e-6)


def test_weights_scale_terms() -> None:
    model = _tiny_model().train()
    image, instances, semantic = _scene()
    with torch.no_grad():
        outputs = model(image)
    plain = build_criterion()(outputs, instances, semantic)
    weighted = build_criterion(weights={"loss_giou": 3.0})(outputs, instances, semantic)
    assert float(weighted["loss"] - plain["loss"]) == pytest.approx(
        2 * float(plain["loss_giou"]), rel=1e-4
    )


def test_exact_boxes_give_zero_box_losses() -> None:
    boxes_cxcywh = torch.tensor([[[0.25, 0.5, 0.25, 0.75], [0.5, 0.5, 0.1, 0.1]]])
    outputs = {
        "logits": torch.tensor([[[5.0, -5.0], [-5.0, 5.0]]]),
        "boxes": boxes_cxcywh,
        "masks": torch.zeros(1, 2, 4, 4),
        **_semantic_logits(1, 4),
    }
    masks = torch.zeros(1, 16, 16, dtype=torch.bool)
    target = {"boxes_xyxy": torch.tensor([[2.0, 2.0, 6.0, 14.0]]), "masks": masks}
    losses = build_criterion()(outputs, [target], _semantic_targets(1, 16))
    assert float(losses["loss_bbox"]) == pytest.approx(0.0, abs=1e-6)
    assert float(losses["loss_giou"]) == pytest.approx(0.0, abs=1e-6)
    assert float(losses["loss_class"]) < 0.01


def test_images_without_people_train_all_queries_as_no_object() -> None:
    model = _tiny_model().train()
    image = torch.rand(2, 3, 64, 64)
    empty = {"boxes_xyxy": torch.zeros(0, 4), "masks": torch.zeros(0, 64, 64, dtype=torch.bool)}
    losses = build_criterion()(model(image), [empty, empty], _semantic_targets(2, 64))
    assert losses["loss_bbox"].item() == losses["loss_mask_dice"].item() == 0.0
    assert torch.isfinite(losses["loss"])
    losses["loss"].backward()
    assert model.class_embed.weight.grad is not None


def test_ignored_pixels_do_not_change_dense_losses() -> None:
    torch.manual_seed(0)
    logits = torch.randn(1, 5, 8, 8)
    target = torch.randint(0, 5, (1, 8, 8))
    ignored = target.clone()
    ignored[0, :4] = 255
    changed_logits = logits.clone()
    changed_logits[0, :, :4] = 100 * torch.randn(5, 4, 8)  # only under ignored pixels
    for loss in (dense_dice_loss, dense_focal_loss):
        assert float(loss(logits, ignored)) == pytest.approx(
            float(loss(changed_logits, ignored)), rel=1e-6
        )


def test_dense_losses_are_small_for_confident_correct_predictions() -> None:
    target = torch.randint(0, 4, (2, 8, 8))
    logits = 20 * F.one_hot(target, 4).permute(0, 3, 1, 2).float()
    assert float(dense_dice_loss(logits, target)) < 1e-3
    assert float(dense_focal_loss(logits, target)) < 1e-6
    assert float(dense_focal_loss(-logits, target)) > 1.0


@pytest.mark.parametrize("bad", [5, -1, 254])
def test_dense_label_out_of_range_is_rejected(bad: int) -> None:
    target = torch.zeros(1, 4, 4, dtype=torch.long)
    target[0, 0, 0] = bad
    with pytest.raises(ValueError, match=r"\[0, 4\] or be 255"):
        dense_focal_loss(torch.randn(1, 5, 4, 4), target)


def test_missing_or_misshaped_targets_raise() -> None:
    outputs = {
        "logits": torch.zeros(1, 2, 2),
        "boxes": torch.rand(1, 2, 4),
        "masks": torch.zeros(1, 2, 4, 4),
        **_semantic_logits(1, 4),
    }
    target = {"boxes_xyxy": torch.zeros(0, 4), "masks": torch.zeros(0, 16, 16, dtype=torch.bool)}
    semantic = _semantic_targets(1, 16)
    with pytest.raises(ValueError, match=r"\['color'\] are missing"):
        build_criterion()(outputs, [target], {k: v for k, v in semantic.items() if k != "color"})
    with pytest.raises(ValueError, match=r"boxes_xyxy \(N, 4\) and masks \(N, H, W\)"):
        build_criterion()(
            outputs, [{"boxes_xyxy": torch.zeros(2, 4), "masks": target["masks"]}], semantic
        )
    with pytest.raises(ValueError, match="2 instance targets for a batch of 1"):
        build_criterion()(outputs, [target, target], semantic)


def test_overfits_one_tiny_image_to_attribute_miou_above_0_9() -> None:
    model = _tiny_model()
    image, instances, semantic = _scene()
    criterion = build_criterion()
    optimizer = torch.optim.AdamW(model.parameters(), lr=2e-3)
    first = None
    for _ in range(80):
        model.train()
        losses = criterion(model(image), instances, semantic)
        optimizer.zero_grad()
        losses["loss"].backward()
        optimizer.step()
        first = losses["loss"].item() if first is None else first
    assert losses["loss"].item() < 0.5 * first
    model.eval()
    with torch.no_grad():
        out = model(image)
    logits = F.interpolate(out["attribute"], size=(H, W), mode="bilinear", align_corners=False)
    prediction, target = logits.argmax(1), semantic["parts"]
    ious = [
        float(((prediction == c) & (target == c)).sum() / ((prediction == c) | (target == c)).sum())
        for c in (0, 2, 5, 9)
    ]
    assert np.mean(ious) > 0.9, ious
    person_prob = out["logits"].softmax(-1)[0, :, 0]
    assert int((person_prob > 0.5).sum()) == 2


def _semantic_logits(batch: int, size: int) -> dict[str, torch.Tensor]:
    return {
        name: torch.zeros(batch, k, size, size)
        for name, k in (("attribute", 22), ("size", 5), ("pattern", 5), ("color", 13))
    }


def _semantic_targets(batch: int, size: int) -> dict[str, torch.Tensor]:
    return {
        name: torch.zeros(batch, size, size, dtype=torch.long)
        for name in ("parts", "size", "pattern", "color")
    }
