"""HPTR training loss: DETR set loss + Dice/Focal masks + Dice/Focal per semantic head.

Targets come from the dataset adapter: per image ``boxes_xyxy`` (N, 4) float pixels and
``masks`` (N, H, W) bool at the input resolution; dense ``parts``/``size``/``pattern``/
``color`` maps (B, H, W) int64 with 255 = ignore. Boxes are normalised to cxcywh here, the
only place HPTR's internal box format is produced from pixels. The total is the unweighted sum
of the terms as in the paper (``weights`` can change that).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from describeme.models.common.losses import (
    binary_dice_loss,
    binary_focal_loss,
    semantic_losses,
)
from describeme.models.common.training import BatchLoss
from describeme.models.hptr.box_ops import (
    box_cxcywh_to_xyxy,
    box_xyxy_to_cxcywh,
    generalized_box_iou,
)
from describeme.models.hptr.matcher import HungarianMatcher, build_matcher


class HPTRCriterion(nn.Module):
    """Computes every HPTR loss term and their weighted sum ``loss``.

    Args:
        matcher: the Hungarian matcher.
        no_object_weight: class-CE weight of the no-object class (DETR's eos_coef).
        weights: optional per-term weights (term name -> weight); missing terms weigh 1.
    """

    class_weight: torch.Tensor

    def __init__(
        self,
        *,
        matcher: HungarianMatcher,
        no_object_weight: float = 0.1,
        weights: Mapping[str, float] | None = None,
    ) -> None:
        super().__init__()
        self.matcher = matcher
        self.weights = dict(weights or {})
        self.register_buffer("class_weight", torch.tensor([1.0, no_object_weight]))

    def forward(
        self,
        outputs: Mapping[str, Any],
        instances: list[Mapping[str, torch.Tensor]],
        semantic: Mapping[str, torch.Tensor],
    ) -> dict[str, torch.Tensor]:
        """Computes the losses.

        Args:
            outputs: the model's training outputs (with optional ``aux``).
            instances: B dicts with ``boxes_xyxy`` (N, 4) pixels and ``masks`` (N, H, W) bool.
            semantic: ``parts``, ``size``, ``pattern``, ``color`` maps, (B, H, W) int64.

        Returns:
            Each term (``loss_class``, ``loss_bbox``, ``loss_giou``, ``loss_mask_dice``,
            ``loss_mask_focal``, ``loss_<head>_dice``/``_focal``, ``<term>_<i>`` for auxiliary
            decoder layers) and their weighted sum ``loss``.
        """
        logits, boxes = outputs["logits"], outputs["boxes"]
        target_boxes = _normalised_boxes(instances, logits.shape[0])
        num_boxes = max(sum(len(t) for t in target_boxes), 1)
        matches = self.matcher(logits, boxes, target_boxes)
        losses = self._detection_losses(logits, boxes, target_boxes, matches, num_boxes)
        losses.update(self._mask_losses(outputs["masks"], instances, matches, num_boxes))
        losses.update(semantic_losses(outputs, semantic))
        for index, aux in enumerate(outputs.get("aux", [])):
            aux_matches = self.matcher(aux["logits"], aux["boxes"], target_boxes)
            aux_losses = self._detection_losses(
                aux["logits"], aux["boxes"], target_boxes, aux_matches, num_boxes
            )
            losses.update({f"{k}_{index}": v for k, v in aux_losses.items()})
        losses["loss"] = sum(self.weights.get(k, 1.0) * v for k, v in losses.items())
        return losses

    def _detection_losses(
        self,
        logits: torch.Tensor,
        boxes: torch.Tensor,
        target_boxes: list[torch.Tensor],
        matches: list,
        num_boxes: int,
    ) -> dict:
        """Class CE over all queries, L1 + GIoU over matched ones."""
        target_class = torch.ones(logits.shape[:2], dtype=torch.int64, device=logits.device)
        batch_index, query_index, matched_targets = _gather(matches, target_boxes)
        target_class[batch_index, query_index] = 0  # (B, Q): 0 = person, 1 = no-object
        loss_class = F.cross_entropy(
            logits.transpose(1, 2), target_class, weight=self.class_weight.to(logits.dtype)
        )
        matched = boxes[batch_index, query_index]  # (M, 4)
        loss_bbox = F.l1_loss(matched, matched_targets, reduction="sum") / num_boxes
        giou = generalized_box_iou(box_cxcywh_to_xyxy(matched), box_cxcywh_to_xyxy(matched_targets))
        loss_giou = (1 - torch.diag(giou)).sum() / num_boxes
        return {"loss_class": loss_class, "loss_bbox": loss_bbox, "loss_giou": loss_giou}

    def _mask_losses(
        self,
        masks: torch.Tensor,
        instances: list[Mapping[str, torch.Tensor]],
        matches: list,
        num_boxes: int,
    ) -> dict:
        """Dice + focal between matched (B, Q, H/4, W/4) mask logits upsampled to target size."""
        predicted, targets = [], []
        for b, (query_index, target_index) in enumerate(matches):
            if len(query_index) == 0:
                continue
            target = instances[b]["masks"].to(masks.device)[target_index.to(masks.device)]
            logits = F.interpolate(
                masks[b, query_index.to(masks.device)][None],
                size=target.shape[-2:],
                mode="bilinear",
                align_corners=False,
            )[0]
            predicted.append(logits.flatten(1))
            targets.append(target.flatten(1).to(masks.dtype))
        if not predicted:
            zero = masks.sum() * 0  # keeps the graph connected when no image has people
            return {"loss_mask_dice": zero, "loss_mask_focal": zero}
        pred, target = torch.cat(predicted), torch.cat(targets)
        return {
            "loss_mask_dice": binary_dice_loss(pred, target).sum() / num_boxes,
            "loss_mask_focal": binary_focal_loss(pred, target).sum() / num_boxes,
        }


class HPTRLoss(BatchLoss):
    """``(model, batch) -> losses`` for HPTR: boxes and masks per person (DETR targets)."""

    INSTANCE_FIELDS = ("boxes_xyxy", "masks")


def _normalised_boxes(
    instances: list[Mapping[str, torch.Tensor]], batch: int
) -> list[torch.Tensor]:
    """Pixel xyxy boxes -> normalised cxcywh, using each image's mask size (H, W)."""
    if len(instances) != batch:
        raise ValueError(f"got {len(instances)} instance targets for a batch of {batch}")
    result = []
    for index, target in enumerate(instances):
        boxes, masks = target["boxes_xyxy"], target["masks"]
        if (
            boxes.ndim != 2
            or boxes.shape[1] != 4
            or masks.ndim != 3
            or masks.shape[0] != boxes.shape[0]
        ):
            raise ValueError(
                f"image {index}: expected boxes_xyxy (N, 4) and masks (N, H, W), got "
                f"{tuple(boxes.shape)} and {tuple(masks.shape)}"
            )
        height, width = masks.shape[-2:]
        scale = torch.tensor(
            [width, height, width, height], dtype=torch.float32, device=boxes.device
        )
        result.append(box_xyxy_to_cxcywh(boxes.float() / scale))
    return result


def _gather(
    matches: list, target_boxes: list[torch.Tensor]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Flattens per-image matches into (batch index, query index, matched target boxes)."""
    batch_index = torch.cat([torch.full_like(q, b) for b, (q, _) in enumerate(matches)])
    query_index = torch.cat([q for q, _ in matches])
    device = target_boxes[0].device if target_boxes else torch.device("cpu")
    matched = [t[j.to(t.device)] for t, (_, j) in zip(target_boxes, matches, strict=True)]
    matched_targets = torch.cat(matched) if matched else torch.zeros(0, 4, device=device)
    return batch_index, query_index, matched_targets


def build_criterion(
    cost_class: float = 1.0,
    cost_bbox: float = 5.0,
    cost_giou: float = 2.0,
    no_object_weight: float = 0.1,
    weights: Mapping[str, float] | None = None,
) -> HPTRCriterion:
    """Builds the matcher and the criterion."""
    return HPTRCriterion(
        matcher=build_matcher(cost_class, cost_bbox, cost_giou),
        no_object_weight=no_object_weight,
        weights=weights,
    )
