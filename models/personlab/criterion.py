"""PersonLab training loss (paper Sec. 3) plus Dice + Focal for the CCIHP semantic heads.

Terms and default weights (the paper's): heatmap logistic loss 4, segmentation logistic loss
2, short-range offsets 1, mid-range offsets 1/4, long-range offsets 1/8. Offset losses are L1
distances divided by the disk radius R and averaged over the positions where each target
applies (short: keypoint disks; mid: source-keypoint disks of people with both keypoints
labelled; long: cells of exactly one person). Mid-range offsets are refined twice with the
short-range offsets and long-range offsets twice by themselves and twice by the short-range
offsets before their losses, differentiably (bilinear sampling), as in the paper. The semantic
heads use HPTR's Dice + Focal terms (weight 1 each), logits upsampled to the target size.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from describeme.models.common.losses import semantic_losses
from describeme.models.common.training import BatchLoss
from describeme.models.personlab.refine import refine_long_offsets, refine_mid_offsets
from describeme.models.personlab.targets import build_targets

DEFAULT_WEIGHTS: dict[str, float] = {
    "loss_heatmap": 4.0,
    "loss_segmentation": 2.0,
    "loss_short": 1.0,
    "loss_mid": 0.25,
    "loss_long": 0.125,
}


class PersonLabCriterion(nn.Module):
    """Computes every PersonLab loss term and their weighted sum ``loss``.

    Args:
        output_stride: stride of the keypoint heads.
        disk_radius: R in input pixels (targets and offset normalisation).
        weights: per-term weights overriding :data:`DEFAULT_WEIGHTS`; other terms weigh 1.
        mid_refine_steps: short-offset refinements of mid-range offsets (2 in the paper).
        long_self_steps, long_short_steps: long-range refinements by themselves and by the
            short-range offsets (2 and 2 in the paper).
    """

    def __init__(
        self,
        *,
        output_stride: int,
        disk_radius: float,
        weights: Mapping[str, float] | None = None,
        mid_refine_steps: int = 2,
        long_self_steps: int = 2,
        long_short_steps: int = 2,
    ) -> None:
        super().__init__()
        for name, value in (
            ("mid_refine_steps", mid_refine_steps),
            ("long_self_steps", long_self_steps),
            ("long_short_steps", long_short_steps),
        ):
            if value < 0:
                raise ValueError(f"{name} must be >= 0, got {value}")
        if disk_radius <= 0:
            raise ValueError(f"disk_radius must be positive, got {disk_radius}")
        self.output_stride, self.disk_radius = int(output_stride), float(disk_radius)
        self.weights = {**DEFAULT_WEIGHTS, **dict(weights or {})}
        self.mid_refine_steps = mid_refine_steps
        self.long_self_steps, self.long_short_steps = long_self_steps, long_short_steps

    def forward(
        self,
        outputs: Mapping[str, Any],
        instances: list[Mapping[str, torch.Tensor]],
        semantic: Mapping[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Computes the losses.

        Args:
            outputs: the model's outputs (see :class:`PersonLab`).
            instances: B dicts with ``keypoints`` (N, 17, 3) input pixels and ``masks``
                (N, H, W) bool at the input resolution.
            semantic: ``parts``, ``size``, ``pattern``, ``color`` maps, (B, H, W) int64.

        Returns:
            ``loss_heatmap``, ``loss_segmentation``, ``loss_short``, ``loss_mid``,
            ``loss_long``, ``loss_<head>_dice``/``_focal`` and their weighted sum ``loss``.
        """
        batch = outputs["heatmaps"].shape[0]
        if len(instances) != batch:
            raise ValueError(f"got {len(instances)} instance targets for a batch of {batch}")
        device = outputs["heatmaps"].device
        targets = build_targets(
            [t["keypoints"].to(device) for t in instances],
            [t["masks"].to(device) for t in instances],
            self.output_stride,
            self.disk_radius,
        )
        expected = tuple(targets["heatmaps"].shape)
        if tuple(outputs["heatmaps"].shape) != expected:
            raise ValueError(
                f"heatmaps are {tuple(outputs['heatmaps'].shape)} but the targets at stride "
                f"{self.output_stride} are {expected}; masks must be at the input resolution"
            )
        losses = self.keypoint_losses(outputs, targets)
        losses.update(semantic_losses(outputs, semantic))
        losses["loss"] = torch.stack(
            [self.weights.get(k, 1.0) * v for k, v in losses.items()]
        ).sum()
        return losses

    def keypoint_losses(
        self, outputs: Mapping[str, torch.Tensor], targets: Mapping[str, torch.Tensor]
    ) -> dict[str, torch.Tensor]:
        """The five PersonLab terms from outputs and :func:`build_targets` targets."""
        short = outputs["short_offsets"]
        mid = refine_mid_offsets(
            outputs["mid_offsets"], short, self.output_stride, self.mid_refine_steps
        )
        long = refine_long_offsets(
            outputs["long_offsets"],
            short,
            self.output_stride,
            self.long_self_steps,
            self.long_short_steps,
        )
        return {
            "loss_heatmap": F.binary_cross_entropy_with_logits(
                outputs["heatmaps"], targets["heatmaps"]
            ),
            "loss_segmentation": F.binary_cross_entropy_with_logits(
                outputs["segmentation"], targets["segmentation"]
            ),
            "loss_short": self._offset_loss(short, targets["short_offsets"], targets["short_mask"]),
            "loss_mid": self._offset_loss(mid, targets["mid_offsets"], targets["mid_mask"]),
            "loss_long": self._offset_loss(long, targets["long_offsets"], targets["long_mask"]),
        }

    def _offset_loss(
        self, predicted: torch.Tensor, target: torch.Tensor, mask: torch.Tensor
    ) -> torch.Tensor:
        """Mean over masked positions of |dx| + |dy| divided by R.

        Args:
            predicted, target: (B, 2C, h, w) pixel offsets.
            mask: (B, C, h, w) float {0, 1}.
        """
        batch, channels, height, width = predicted.shape
        error = (predicted - target).abs().view(batch, channels // 2, 2, height, width).sum(2)
        total = (error * mask).sum() / self.disk_radius
        return total / mask.sum().clamp(min=1.0)


class PersonLabLoss(BatchLoss):
    """``(model, batch) -> losses`` for PersonLab: keypoints and masks per person."""

    INSTANCE_FIELDS = ("keypoints", "masks")


def build_criterion(
    output_stride: int = 8,
    disk_radius: float = 20.0,
    weights: Mapping[str, float] | None = None,
    mid_refine_steps: int = 2,
    long_self_steps: int = 2,
    long_short_steps: int = 2,
) -> PersonLabCriterion:
    """Builds the loss; ``output_stride`` and ``disk_radius`` must match the model's."""
    return PersonLabCriterion(
        output_stride=output_stride,
        disk_radius=disk_radius,
        weights=weights,
        mid_refine_steps=mid_refine_steps,
        long_self_steps=long_self_steps,
        long_short_steps=long_short_steps,
    )
