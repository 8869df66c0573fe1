"""Dice and focal losses for binary instance masks and dense multi-class maps.

Binary forms follow DETR's segmentation losses (sums per instance, the caller normalises by
the number of instances); dense forms are softmax versions that skip ``ignore_index`` pixels.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F


def binary_dice_loss(
    logits: torch.Tensor, targets: torch.Tensor, smooth: float = 1.0
) -> torch.Tensor:
    """Dice loss per instance.

    Args:
        logits: (N, P) mask logits, pixels flattened.
        targets: (N, P) float {0, 1}.

    Returns:
        (N,) losses in [0, 1].
    """
    probs = logits.sigmoid()
    numerator = 2 * (probs * targets).sum(-1)
    denominator = probs.sum(-1) + targets.sum(-1)
    return 1 - (numerator + smooth) / (denominator + smooth)


def binary_focal_loss(
    logits: torch.Tensor, targets: torch.Tensor, alpha: float = 0.25, gamma: float = 2.0
) -> torch.Tensor:
    """Sigmoid focal loss (RetinaNet) per instance, averaged over pixels.

    Args:
        logits: (N, P) mask logits.
        targets: (N, P) float {0, 1}.

    Returns:
        (N,) losses.
    """
    probs = logits.sigmoid()
    ce = F.binary_cross_entropy_with_logits(logits, targets, reduction="none")
    p_t = probs * targets + (1 - probs) * (1 - targets)
    loss = ce * (1 - p_t) ** gamma
    if alpha >= 0:
        loss = (alpha * targets + (1 - alpha) * (1 - targets)) * loss
    return loss.mean(-1)


def _valid_one_hot(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, K, H, W), (B, H, W) -> one-hot (B, K, H, W) float and valid (B, 1, H, W) float."""
    num_classes = logits.shape[1]
    valid = target != ignore_index
    if bool(((target >= num_classes) & valid).any()) or bool(((target < 0) & valid).any()):
        raise ValueError(
            f"target labels must lie in [0, {num_classes - 1}] or be {ignore_index}, "
            f"got range [{int(target.min())}, {int(target.max())}]"
        )
    safe = torch.where(valid, target, torch.zeros_like(target))
    one_hot = F.one_hot(safe, num_classes).permute(0, 3, 1, 2).to(logits.dtype)
    return one_hot, valid.unsqueeze(1).to(logits.dtype)


def dense_dice_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, smooth: float = 1.0
) -> torch.Tensor:
    """Softmax Dice loss averaged over classes, ignoring ``ignore_index`` pixels.

    Args:
        logits: (B, K, H, W) class logits.
        target: (B, H, W) int64 labels.

    Returns:
        Scalar loss.
    """
    one_hot, valid = _valid_one_hot(logits, target, ignore_index)
    probs = logits.softmax(1) * valid
    numerator = 2 * (probs * one_hot).sum((0, 2, 3))
    denominator = probs.sum((0, 2, 3)) + one_hot.sum((0, 2, 3))
    return (1 - (numerator + smooth) / (denominator + smooth)).mean()


def dense_focal_loss(
    logits: torch.Tensor, target: torch.Tensor, ignore_index: int = 255, gamma: float = 2.0
) -> torch.Tensor:
    """Softmax focal loss averaged over non-ignored pixels (0 when every pixel is ignored).

    Args:
        logits: (B, K, H, W) class logits.
        target: (B, H, W) int64 labels.

    Returns:
        Scalar loss.
    """
    one_hot, valid = _valid_one_hot(logits, target, ignore_index)
    log_probs = logits.log_softmax(1)
    log_p_t = (log_probs * one_hot).sum(1, keepdim=True)  # (B, 1, H, W)
    loss = -((1 - log_p_t.exp()) ** gamma) * log_p_t * valid
    return loss.sum() / valid.sum().clamp(min=1)


# Dense targets of the four CCIHP semantic heads: target map name -> head output name.
SEMANTIC_TARGETS: dict[str, str] = {
    "parts": "attribute",
    "size": "size",
    "pattern": "pattern",
    "color": "color",
}
IGNORE_INDEX = 255


def semantic_losses(
    outputs: Mapping[str, Any], semantic: Mapping[str, torch.Tensor]
) -> dict[str, torch.Tensor]:
    """Dice + focal for each semantic head, logits upsampled to the target size."""
    missing = [name for name in SEMANTIC_TARGETS if name not in semantic]
    if missing:
        raise ValueError(
            f"semantic targets {missing} are missing; expected keys "
            f"{list(SEMANTIC_TARGETS)} with (B, H, W) int64 maps"
        )
    losses = {}
    for target_name, head in SEMANTIC_TARGETS.items():
        target = semantic[target_name].long()
        logits = outputs[head]
        if target.ndim != 3 or target.shape[0] != logits.shape[0]:
            raise ValueError(
                f"semantic target '{target_name}' must be (B, H, W) with "
                f"B={logits.shape[0]}, got {tuple(target.shape)}"
            )
        logits = F.interpolate(logits, size=target.shape[-2:], mode="bilinear", align_corners=False)
        target = target.to(logits.device)
        losses[f"loss_{head}_dice"] = dense_dice_loss(logits, target, IGNORE_INDEX)
        losses[f"loss_{head}_focal"] = dense_focal_loss(logits, target, IGNORE_INDEX)
    return losses
