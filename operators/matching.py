"""Matching helpers for trackers: IoU matrices and gated linear assignment.

Small pure functions in the manner of supervision's ``tracker/byte_tracker/matching.py`` and
detectron2's ``hungarian_tracker``: a cost matrix in, index arrays out, early return on empty
input. Boxes are absolute pixel xyxy; masks are :class:`~describeme.masks.RunLengthMask`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from scipy.optimize import linear_sum_assignment

from describeme.geometry import box_iou_xyxy
from describeme.masks import RunLengthMask


def box_iou(boxes_a: np.ndarray, boxes_b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of two sets of xyxy boxes.

    Args:
        boxes_a: (N, 4) float pixel boxes.
        boxes_b: (M, 4) float pixel boxes.

    Returns:
        (N, M) float32 IoU in [0, 1]; 0 where a box has no area.
    """
    for name, boxes in (("boxes_a", boxes_a), ("boxes_b", boxes_b)):
        shape = np.shape(boxes)
        if len(shape) != 2 or shape[1] != 4:
            raise ValueError(f"{name} must have shape (N, 4) xyxy, got {shape}")
    return box_iou_xyxy(boxes_a, boxes_b)


def _mask_boxes(masks: Sequence[RunLengthMask]) -> np.ndarray:
    """(N, 4) float32 crop boxes of masks (x1/y1 exclusive, so they are xyxy pixel edges)."""
    if not masks:
        return np.zeros((0, 4), np.float32)
    return np.asarray([m.box for m in masks], dtype=np.float32)


def mask_iou(masks_a: Sequence[RunLengthMask], masks_b: Sequence[RunLengthMask],
             min_iou: float = 0.0) -> np.ndarray:
    """Pairwise IoU of the non-zero pixels of two lists of run-length masks.

    Only pairs whose crop boxes overlap are computed, and only inside the intersection of
    the two crops (pixels outside it cannot be shared), so the cost follows the overlap
    rather than the image size. Each mask is decoded once.

    Args:
        masks_a: N masks of one image.
        masks_b: M masks of the same image size.
        min_iou: pairs whose IoU provably stays below this (intersection at most
            ``min(area_a, area_b, crop overlap)``, union at least ``max(area_a, area_b)``)
            are skipped and reported as 0; a tracker passes its gate here.

    Returns:
        (N, M) float32 IoU in [0, 1]; 0 for pairs where both masks are empty, and possibly
        0 for pairs below ``min_iou``.

    Raises:
        ValueError: if masks belong to images of different sizes.
        TypeError: if an element is not a ``RunLengthMask``.
    """
    masks_a, masks_b = list(masks_a), list(masks_b)
    _check_masks(masks_a, masks_b)
    return _pairwise_mask_iou(masks_a, masks_b, _areas(masks_a), _areas(masks_b), min_iou)


def _check_masks(masks_a: list[RunLengthMask], masks_b: list[RunLengthMask]) -> None:
    for name, masks in (("masks_a", masks_a), ("masks_b", masks_b)):
        for index, mask in enumerate(masks):
            if not isinstance(mask, RunLengthMask):
                raise TypeError(f"{name}[{index}] is {type(mask).__name__}, expected RunLengthMask")
    sizes = {m.image_size for m in masks_a} | {m.image_size for m in masks_b}
    if len(sizes) > 1:
        raise ValueError(f"masks belong to images of different sizes {sorted(sizes)}")


def _areas(masks: Sequence[RunLengthMask]) -> np.ndarray:
    return np.array([m.area for m in masks], dtype=np.float64)


def _pairwise_mask_iou(masks_a: list[RunLengthMask], masks_b: list[RunLengthMask],
                       area_a: np.ndarray, area_b: np.ndarray, min_iou: float) -> np.ndarray:
    """:func:`mask_iou` on checked masks with their (N,) and (M,) non-zero pixel counts."""
    out = np.zeros((len(masks_a), len(masks_b)), dtype=np.float32)
    if not masks_a or not masks_b:
        return out
    boxes_a, boxes_b = _mask_boxes(masks_a), _mask_boxes(masks_b)
    # Strict overlap test: touching crops share no pixel.
    lt = np.maximum(boxes_a[:, None, :2], boxes_b[None, :, :2])  # (N, M, 2)
    rb = np.minimum(boxes_a[:, None, 2:], boxes_b[None, :, 2:])  # (N, M, 2)
    overlapping = np.all(rb > lt, axis=-1)  # (N, M)
    if not overlapping.any():
        return out
    if min_iou > 0:
        crop_overlap = np.prod(np.clip(rb - lt, 0, None), axis=-1)  # (N, M)
        smaller = np.minimum(area_a[:, None], area_b[None, :])
        larger = np.maximum(np.maximum(area_a[:, None], area_b[None, :]), 1.0)
        overlapping &= np.minimum(smaller, crop_overlap) >= min_iou * larger
    rows, cols = np.nonzero(overlapping)
    crops_a = {i: masks_a[i].decode() > 0 for i in np.unique(rows)}
    crops_b = {j: masks_b[j].decode() > 0 for j in np.unique(cols)}
    for i, j in zip(rows.tolist(), cols.tolist(), strict=True):
        ax0, ay0 = masks_a[i].box[:2]
        bx0, by0 = masks_b[j].box[:2]
        x0, y0 = max(ax0, bx0), max(ay0, by0)
        x1 = min(masks_a[i].box[2], masks_b[j].box[2])
        y1 = min(masks_a[i].box[3], masks_b[j].box[3])
        part_a = crops_a[i][y0 - ay0 : y1 - ay0, x0 - ax0 : x1 - ax0]
        part_b = crops_b[j][y0 - by0 : y1 - by0, x0 - bx0 : x1 - bx0]
        inter = float(np.count_nonzero(part_a & part_b))
        union = area_a[i] + area_b[j] - inter
        out[i, j] = inter / union if union > 0 else 0.0
    return out


def linear_assignment(
    cost: np.ndarray, threshold: float
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum-cost one-to-one assignment, keeping only pairs with ``cost <= threshold``.

    Pairs above the threshold are gated with a cost larger than any feasible total, so the
    solver first maximises the number of admissible matches and then minimises their cost
    (detectron2's hungarian tracker does the same), instead of trading two good matches for
    one perfect one.

    Args:
        cost: (N, M) finite float costs (e.g. ``1 - IoU``); ``inf`` marks forbidden pairs.
        threshold: largest admissible cost.

    Returns:
        ``(matches, unmatched_a, unmatched_b)``: (K, 2) int64 row/column index pairs sorted
        by row, and the (N - K,) and (M - K,) int64 unmatched row and column indices.

    Raises:
        ValueError: if ``cost`` is not 2-D or holds NaN.
    """
    cost = np.asarray(cost, dtype=np.float64)
    if cost.ndim != 2:
        raise ValueError(f"cost must be a 2-D (N, M) matrix, got shape {cost.shape}")
    if np.isnan(cost).any():
        raise ValueError("cost matrix holds NaN; compute IoU on valid boxes/masks first")
    n, m = cost.shape
    no_match = (np.zeros((0, 2), np.int64), np.arange(n, dtype=np.int64),
                np.arange(m, dtype=np.int64))
    if n == 0 or m == 0:
        return no_match
    admissible = cost <= threshold
    if not admissible.any():
        return no_match
    valid = cost[admissible]
    span = float(np.abs(valid).max()) + 1.0
    gate = span * (min(n, m) + 1)
    # Shift admissible costs to be non-negative so the gate dominates any sum of them.
    gated = np.where(admissible, cost - min(float(valid.min()), 0.0), gate)
    rows, cols = linear_sum_assignment(gated)
    keep = admissible[rows, cols]
    matches = np.stack([rows[keep], cols[keep]], axis=1).astype(np.int64)
    unmatched_a = np.setdiff1d(np.arange(n), matches[:, 0]).astype(np.int64)
    unmatched_b = np.setdiff1d(np.arange(m), matches[:, 1]).astype(np.int64)
    return matches, unmatched_a, unmatched_b


def iou_cost(
    boxes_a: np.ndarray,
    boxes_b: np.ndarray,
    masks_a: Sequence[RunLengthMask | None] | None = None,
    masks_b: Sequence[RunLengthMask] | None = None,
    min_iou: float = 0.0,
) -> np.ndarray:
    """``1 - IoU`` between two sets, using mask IoU where both sides have a non-empty mask.

    Args:
        boxes_a: (N, 4) xyxy boxes (e.g. predicted track boxes).
        boxes_b: (M, 4) xyxy boxes (detections).
        masks_a: N masks or ``None`` per row; rows with ``None`` or an empty mask fall back
            to box IoU.
        masks_b: M detection masks, or ``None`` to use box IoU everywhere; columns with an
            empty mask fall back to box IoU (a parser may miss a tiny person's pixels).
        min_iou: mask pairs that cannot reach this IoU may get cost 1 (see :func:`mask_iou`).

    Returns:
        (N, M) float32 cost in [0, 1].
    """
    iou = box_iou(boxes_a, boxes_b)
    if masks_a is None or masks_b is None or iou.size == 0:
        return 1.0 - iou
    if len(masks_a) != len(boxes_a) or len(masks_b) != len(boxes_b):
        raise ValueError(
            f"got {len(masks_a)} masks for {len(boxes_a)} boxes and {len(masks_b)} masks for "
            f"{len(boxes_b)} boxes; pass one mask (or None) per box"
        )
    present = [(i, mask) for i, mask in enumerate(masks_a) if mask is not None]
    row_masks = [mask for _, mask in present]
    _check_masks(row_masks, list(masks_b))
    area_a, area_b = _areas(row_masks), _areas(masks_b)
    rows = [i for (i, _), area in zip(present, area_a, strict=True) if area > 0]
    cols = np.flatnonzero(area_b > 0).tolist()
    if rows and cols:
        keep_a, keep_b = area_a > 0, area_b > 0
        iou[np.ix_(rows, cols)] = _pairwise_mask_iou(
            [m for m, k in zip(row_masks, keep_a, strict=True) if k],
            [masks_b[j] for j in cols], area_a[keep_a], area_b[keep_b], min_iou)
    return 1.0 - iou


__all__ = ["box_iou", "iou_cost", "linear_assignment", "mask_iou"]
