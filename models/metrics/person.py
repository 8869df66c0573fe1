"""AP^p, AP^p_50, AP^p_vol and PCP (person-level parsing AP: MHP v2, Parsing R-CNN, QANet).

Protocol: a detection is one predicted person's part map (its parts on its pixels,
background elsewhere). Against each ground-truth person of the image it gets the per-class
IoU (background included) and their nanmean. It is matched to the ground-truth person with
the highest mean IoU only (no fallback to the second best) and is a true positive at threshold
t when that mean IoU is strictly above t and the person was not matched before by a
higher-scored detection. Detections are ranked by score over the whole dataset.

PCP at threshold t: for each matched detection, the fraction of the ground-truth person's
distinct foreground labels whose IoU is strictly above t; unmatched ground truths count 0;
the mean is over all ground-truth persons. This follows the ``eval_seg_ap`` routine shared by
the MHP v2 toolkit, Parsing R-CNN and QANet; ground-truth 255 pixels are ignored as there
(their confusion histogram drops labels >= C).
"""

from __future__ import annotations

import warnings

import numpy as np

from describeme.models.metrics.ap import (
    THRESHOLDS,
    average_precision,
    greedy_true_positives,
    json_number,
    rank_order,
    threshold_index,
)
from describeme.models.metrics.counts import InstanceCounts, person_class_iou


class PersonAP:
    """Accumulates AP^p and PCP over a dataset.

    Args:
        thresholds: mean-IoU thresholds.
    """

    def __init__(self, thresholds: tuple[float, ...] = THRESHOLDS) -> None:
        self.thresholds = thresholds
        self._scores: list[np.ndarray] = []
        self._tp: list[np.ndarray] = []
        self._num_gt = 0
        self._pcp_sum = np.zeros(len(thresholds))

    def update(self, counts: InstanceCounts, person_scores: np.ndarray) -> None:
        """Adds one image.

        Args:
            counts: the image's part-map counts.
            person_scores: (P+1,) score of each predicted person (index 0 unused).
        """
        gt_present = counts.gt_area[1:, 1:].sum(axis=1) > 0  # (G,) persons with visible parts
        pred_present = np.flatnonzero(counts.pred_area[1:, 1:].sum(axis=1) > 0)
        self._num_gt += int(gt_present.sum())
        if pred_present.size == 0:
            return
        scores = person_scores[pred_present + 1].astype(np.float64)
        order = rank_order(scores)
        pred_rows = pred_present[order]
        iou = person_class_iou(counts)[pred_rows][:, gt_present]  # (D, G', C)
        # Distinct foreground labels of each ground-truth person (PCP's denominator).
        gt_labels = (counts.gt_area[1:][gt_present][:, 1:] > 0).sum(axis=1)  # (G',)
        if iou.shape[1]:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", RuntimeWarning)  # all-nan rows -> nan, handled
                mean_iou = np.nanmean(iou, axis=2)  # (D, G')
            mean_iou = np.where(np.isnan(mean_iou), -np.inf, mean_iou)
            best_gt = np.argmax(mean_iou, axis=1)
            best_iou = mean_iou[np.arange(len(best_gt)), best_gt]
        else:
            best_gt = np.zeros(len(pred_rows), dtype=np.int64)
            best_iou = np.full(len(pred_rows), -np.inf)
        tp = greedy_true_positives(best_iou, best_gt, self.thresholds, one_to_one=True)
        self._scores.append(scores[order])
        self._tp.append(tp)
        if iou.shape[1]:
            self._add_pcp(iou, best_gt, gt_labels, tp)

    def _add_pcp(
        self, iou: np.ndarray, best_gt: np.ndarray, gt_labels: np.ndarray, tp: np.ndarray
    ) -> None:
        """Adds matched detections' PCP: (D, G', C) iou, (D,) best_gt, (G',) labels, (D, T) tp."""
        rows = np.arange(iou.shape[0])
        fg_iou = np.nan_to_num(iou[rows, best_gt, 1:], nan=0.0)  # (D, C-1)
        den = gt_labels[best_gt]  # (D,)
        for t, thr in enumerate(self.thresholds):
            hit = tp[:, t]
            num = (fg_iou[hit] > thr).sum(axis=1)
            self._pcp_sum[t] += float(
                np.sum(np.where(den[hit] > 0, num / np.maximum(den[hit], 1), 0.0))
            )

    def merge(self, other: PersonAP) -> None:
        """Appends another accumulator's detections (images after this one's)."""
        self._scores.extend(other._scores)
        self._tp.extend(other._tp)
        self._num_gt += other._num_gt
        self._pcp_sum += other._pcp_sum

    def compute(self) -> dict[str, object]:
        """Returns ``ap`` (T,), ``ap_vol``, ``ap_50``, ``pcp`` (T,), ``pcp_50``, ``num_gt``."""
        scores = np.concatenate(self._scores) if self._scores else np.zeros(0)
        tp = np.concatenate(self._tp) if self._tp else np.zeros((0, len(self.thresholds)), bool)
        ap = average_precision(scores, tp, self._num_gt)
        pcp = (
            self._pcp_sum / self._num_gt if self._num_gt else np.full(len(self.thresholds), np.nan)
        )
        at_50 = threshold_index(self.thresholds, 0.5)
        return {
            "ap": [json_number(v) for v in ap],
            "ap_vol": json_number(np.mean(ap)),
            "ap_50": json_number(ap[at_50]),
            "pcp": [json_number(v) for v in pcp],
            "pcp_50": json_number(pcp[at_50]),
            "num_gt": self._num_gt,
            "num_pred": int(scores.size),
        }
