"""Average precision over a ranked list of detections (PASCAL VOC all-point interpolation).

Every parsing AP in this package (AP^r, AP^cr, AP^p) ends here: detections from the whole
dataset are ranked by score, each one already labelled true/false positive per IoU threshold
(the labelling happens per image, see :func:`greedy_true_positives`), and the precision/recall
curve is integrated the way the VOC devkit (and the PGN / Parsing R-CNN scripts) do.
"""

from __future__ import annotations

import numpy as np

# IoU thresholds of the "vol" metrics (CIHP / MHP protocol): 0.1, 0.2, ..., 0.9.
THRESHOLDS: tuple[float, ...] = tuple(round(0.1 * k, 1) for k in range(1, 10))


def voc_ap(recall: np.ndarray, precision: np.ndarray) -> float:
    """VOC all-point interpolated AP (area under the monotone precision envelope).

    Args:
        recall: (D,) cumulative recall, non-decreasing.
        precision: (D,) cumulative precision.

    Returns:
        The AP; 0.0 for an empty curve.
    """
    if recall.size == 0:
        return 0.0
    mrec = np.concatenate(([0.0], recall, [1.0]))
    mpre = np.concatenate(([0.0], precision, [0.0]))
    # Precision envelope: running max from the right.
    mpre = np.maximum.accumulate(mpre[::-1])[::-1]
    changes = np.flatnonzero(mrec[1:] != mrec[:-1])
    return float(np.sum((mrec[changes + 1] - mrec[changes]) * mpre[changes + 1]))


def rank_order(scores: np.ndarray) -> np.ndarray:
    """Indices sorting ``scores`` high to low; ties keep insertion order (stable)."""
    return np.argsort(-np.asarray(scores, dtype=np.float64), kind="stable")


def greedy_true_positives(
    best_iou: np.ndarray,
    best_gt: np.ndarray,
    thresholds: tuple[float, ...] = THRESHOLDS,
    one_to_one: bool = True,
) -> np.ndarray:
    """Labels detections of one image (already in rank order) as true positives.

    A detection is matched only to its best ground truth (no fallback to the second best),
    and counts when its IoU is strictly above the threshold. One-to-one: only the first
    detection reaching a ground truth counts; later ones are false positives. With
    ``one_to_one=False`` every detection above the threshold counts (the PGN script's quirk).

    Args:
        best_iou: (D,) IoU of each detection with its best ground truth (-inf if none).
        best_gt: (D,) index of that ground truth (any value if none).
        thresholds: (T,) IoU thresholds.
        one_to_one: match each ground truth at most once.

    Returns:
        (D, T) bool true-positive flags.
    """
    hits = best_iou[:, None] > np.asarray(thresholds)[None, :]  # (D, T)
    if not one_to_one or best_iou.size == 0:
        return hits
    # A detection loses its ground truth at threshold t when an earlier (higher-ranked)
    # detection with the same best ground truth already passed t, i.e. when the best IoU of
    # those earlier detections is > t.
    count = best_iou.size
    earlier = np.tri(count, count, -1, dtype=bool).T  # earlier[e, d]: e ranks before d
    same_gt = best_gt[:, None] == best_gt[None, :]
    claims = np.where(earlier & same_gt, best_iou[:, None], -np.inf)  # (E, D)
    previous_best = claims.max(axis=0)  # (D,)
    return hits & ~(previous_best[:, None] > np.asarray(thresholds)[None, :])


def average_precision(scores: np.ndarray, tp: np.ndarray, num_gt: int) -> np.ndarray:
    """AP per threshold of detections pooled over a dataset.

    Args:
        scores: (D,) detection scores.
        tp: (D, T) true-positive flags (from :func:`greedy_true_positives`).
        num_gt: number of ground-truth objects over the dataset.

    Returns:
        (T,) float AP per threshold; nan when there is no ground truth.
    """
    num_thresholds = tp.shape[1]
    if num_gt <= 0:
        return np.full(num_thresholds, np.nan)
    order = rank_order(scores)
    tp_sorted = tp[order].astype(np.float64)
    tp_cum = np.cumsum(tp_sorted, axis=0)
    fp_cum = np.cumsum(1.0 - tp_sorted, axis=0)
    recall = tp_cum / float(num_gt)
    precision = tp_cum / np.maximum(tp_cum + fp_cum, np.finfo(np.float64).eps)
    return np.array([voc_ap(recall[:, t], precision[:, t]) for t in range(num_thresholds)])


def threshold_index(thresholds: tuple[float, ...], value: float) -> int:
    """Position of ``value`` in ``thresholds`` (raises ``ValueError`` naming both if absent)."""
    for i, t in enumerate(thresholds):
        if abs(t - value) < 1e-9:
            return i
    raise ValueError(f"IoU threshold {value} is not among the evaluated thresholds {thresholds}")


def json_number(value: float) -> float | None:
    """A JSON-friendly float: None for nan."""
    value = float(value)
    return None if np.isnan(value) else value
