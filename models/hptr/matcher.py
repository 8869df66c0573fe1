"""Hungarian matching between HPTR's queries and ground-truth people (DETR's matcher)."""

from __future__ import annotations

import torch
from scipy.optimize import linear_sum_assignment
from torch import nn

from describeme.models.hptr.box_ops import box_cxcywh_to_xyxy, generalized_box_iou


class HungarianMatcher(nn.Module):
    """One-to-one assignment minimising class, L1 and GIoU costs, image by image.

    Args:
        cost_class: weight of -p(person).
        cost_bbox: weight of the L1 distance between normalised cxcywh boxes.
        cost_giou: weight of -GIoU between the boxes.
    """

    def __init__(
        self, *, cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0
    ) -> None:
        super().__init__()
        if cost_class == cost_bbox == cost_giou == 0:
            raise ValueError("at least one matcher cost must be non-zero")
        self.cost_class, self.cost_bbox, self.cost_giou = cost_class, cost_bbox, cost_giou

    @torch.no_grad()
    def forward(
        self, logits: torch.Tensor, boxes: torch.Tensor, target_boxes: list[torch.Tensor]
    ) -> list[tuple[torch.Tensor, torch.Tensor]]:
        """Matches each image's queries to its targets.

        Args:
            logits: (B, Q, 2) class logits (index 0 = person).
            boxes: (B, Q, 4) predicted normalised cxcywh boxes.
            target_boxes: B tensors (N_b, 4) of normalised cxcywh target boxes.

        Returns:
            B pairs (query_index, target_index) of int64 tensors of length min(Q, N_b),
            sorted by query index.
        """
        if len(target_boxes) != logits.shape[0]:
            raise ValueError(
                f"got {len(target_boxes)} target lists for a batch of {logits.shape[0]}"
            )
        matches = []
        for image_logits, image_boxes, targets in zip(logits, boxes, target_boxes, strict=True):
            if targets.shape[0] == 0:
                empty = torch.zeros(0, dtype=torch.int64)
                matches.append((empty, empty.clone()))
                continue
            person_prob = image_logits.float().softmax(-1)[:, 0]  # (Q,)
            cost = (
                -self.cost_class * person_prob[:, None]
                + self.cost_bbox * torch.cdist(image_boxes.float(), targets.float(), p=1)
                - self.cost_giou
                * generalized_box_iou(
                    box_cxcywh_to_xyxy(image_boxes.float()), box_cxcywh_to_xyxy(targets.float())
                )
            )  # (Q, N)
            rows, cols = linear_sum_assignment(cost.cpu().numpy())
            matches.append(
                (torch.as_tensor(rows, dtype=torch.int64), torch.as_tensor(cols, dtype=torch.int64))
            )
        return matches


def build_matcher(
    cost_class: float = 1.0, cost_bbox: float = 5.0, cost_giou: float = 2.0
) -> HungarianMatcher:
    """Builds the matcher (defaults are DETR's)."""
    return HungarianMatcher(cost_class=cost_class, cost_bbox=cost_bbox, cost_giou=cost_giou)
