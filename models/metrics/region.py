"""AP^r (part-instance region AP) and AP^cr (characterized region AP).

Protocol (CIHP, PGN's evaluation script): for each class, the part instances predicted over
the whole dataset are ranked by score; each is compared with the same-class ground-truth
instances of its image, matched to the best one only, and counts as a true positive when the
IoU is strictly above the threshold (0.1 .. 0.9). AP per class uses VOC all-point
interpolation; the reported AP is the mean over classes that have ground truth; AP^r_vol is
the mean over thresholds.

Matching is one-to-one by default. ``pgn_compat=True`` reproduces PGN's script
(``evaluation/test_inst_part_ap.py`` in CIHP_PGN), which keeps no "already detected" flag:
every prediction whose best IoU passes the threshold counts, so duplicates of one ground
truth all count (recall can then exceed 1); use it to compare with published numbers.
Deliberate differences from that script: ground-truth 255 pixels are ignored (CIHP has none),
and classes without any ground-truth instance are left out of the mean (the script's mean
would turn nan); ties in score keep dataset order.

AP^cr (CCIHP): the same AP with the characteristic map (color, size or pattern) as the class
map, so a region is (person, characteristic class) whatever the part class.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from describeme.models.metrics.ap import (
    THRESHOLDS,
    average_precision,
    greedy_true_positives,
    json_number,
    rank_order,
    threshold_index,
)
from describeme.models.metrics.counts import InstanceCounts, instance_iou


class RegionAP:
    """Accumulates region AP for every foreground class over a dataset.

    Args:
        class_names: names of the C classes, id 0 (background / none) included.
        pgn_compat: let duplicates all match one ground truth (PGN's script).
        thresholds: IoU thresholds.
    """

    def __init__(
        self,
        class_names: Sequence[str],
        pgn_compat: bool = False,
        thresholds: tuple[float, ...] = THRESHOLDS,
    ) -> None:
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.pgn_compat = pgn_compat
        self.thresholds = thresholds
        self._scores: list[list[np.ndarray]] = [[] for _ in range(self.num_classes)]
        self._tp: list[list[np.ndarray]] = [[] for _ in range(self.num_classes)]
        self._num_gt = np.zeros(self.num_classes, dtype=np.int64)

    def update(self, counts: InstanceCounts, instance_scores: np.ndarray) -> None:
        """Adds one image.

        Args:
            counts: the image's counts for this class map.
            instance_scores: (P+1, C) score of each predicted (person, class) instance.
        """
        self._num_gt[1:] += np.count_nonzero(counts.gt_area[:, 1:], axis=0)
        for cls in np.flatnonzero(counts.pred_area[:, 1:].any(axis=0)) + 1:
            gt_ids, pred_ids, iou = instance_iou(counts, int(cls))  # iou (P', G')
            scores = instance_scores[pred_ids, cls].astype(np.float64)
            order = rank_order(scores)
            iou = iou[order]
            if gt_ids.size:
                best_gt = np.argmax(iou, axis=1)
                best_iou = iou[np.arange(iou.shape[0]), best_gt]
            else:
                best_gt = np.zeros(pred_ids.size, dtype=np.int64)
                best_iou = np.full(pred_ids.size, -np.inf)
            tp = greedy_true_positives(best_iou, best_gt, self.thresholds, not self.pgn_compat)
            self._scores[cls].append(scores[order])
            self._tp[cls].append(tp)

    def merge(self, other: RegionAP) -> None:
        """Appends another accumulator's detections (images after this one's)."""
        for cls in range(self.num_classes):
            self._scores[cls].extend(other._scores[cls])
            self._tp[cls].extend(other._tp[cls])
        self._num_gt += other._num_gt

    def per_class_ap(self) -> np.ndarray:
        """(C, T) AP per class and threshold; row 0 and classes without ground truth are nan."""
        out = np.full((self.num_classes, len(self.thresholds)), np.nan)
        for cls in range(1, self.num_classes):
            scores = np.concatenate(self._scores[cls]) if self._scores[cls] else np.zeros(0)
            tp = (
                np.concatenate(self._tp[cls])
                if self._tp[cls]
                else np.zeros((0, len(self.thresholds)), dtype=bool)
            )
            out[cls] = average_precision(scores, tp, int(self._num_gt[cls]))
        return out

    def compute(self) -> dict[str, object]:
        """Returns ``ap`` (T,) mean over classes, ``ap_vol``, ``ap_50`` and a per-class table."""
        per_class = self.per_class_ap()
        has_gt = self._num_gt > 0
        if has_gt.any():
            ap = np.nanmean(per_class[has_gt], axis=0)
        else:
            ap = np.full(len(self.thresholds), np.nan)
        at_50 = threshold_index(self.thresholds, 0.5)
        table = {
            self.class_names[c]: {
                "ap_vol": json_number(np.mean(per_class[c])),
                "ap_50": json_number(per_class[c, at_50]),
                "num_gt": int(self._num_gt[c]),
                "num_pred": int(sum(s.size for s in self._scores[c])),
            }
            for c in range(1, self.num_classes)
        }
        return {
            "ap": [json_number(v) for v in ap],
            "ap_vol": json_number(np.mean(ap)),
            "ap_50": json_number(ap[at_50]),
            "per_class": table,
        }
