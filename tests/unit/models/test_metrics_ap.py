"""VOC AP, greedy matching and the threshold helpers, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.models.metrics.ap import (
    THRESHOLDS,
    average_precision,
    greedy_true_positives,
    threshold_index,
    voc_ap,
)


def test_thresholds_are_point_one_to_point_nine() -> None:
    assert THRESHOLDS == (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9)
    assert threshold_index(THRESHOLDS, 0.5) == 4
    with pytest.raises(ValueError, match="0.55"):
        threshold_index(THRESHOLDS, 0.55)


@pytest.mark.parametrize(
    ("recall", "precision", "expected"),
    [
        ([], [], 0.0),  # no detection
        ([1.0], [1.0], 1.0),  # one perfect detection
        ([0.5, 0.5], [1.0, 0.5], 0.5),  # TP then FP, two ground truths
        ([0.5, 1.0], [1.0, 2 / 3], 0.5 + 0.5 * 2 / 3),  # TP, TP after an FP
        ([0.0, 0.5], [0.0, 0.5], 0.25),  # FP first: envelope 0.5 over [0, 0.5]
        ([0.5, 0.5, 1.0], [1.0, 0.5, 2 / 3], 0.5 + 0.5 * 2 / 3),  # dip is filled by the envelope
    ],
)
def test_voc_ap_all_point(recall: list[float], precision: list[float], expected: float) -> None:
    assert voc_ap(np.array(recall), np.array(precision)) == pytest.approx(expected)


def test_greedy_one_to_one_gives_each_ground_truth_once_and_never_falls_back() -> None:
    best_iou = np.array([0.9, 0.8, 0.3, 0.95])
    best_gt = np.array([0, 0, 1, 1])
    tp = greedy_true_positives(best_iou, best_gt, (0.2, 0.5), one_to_one=True)
    # t=0.2: det0 takes gt0, det1 duplicate, det2 takes gt1, det3 duplicate of gt1.
    assert tp[:, 0].tolist() == [True, False, True, False]
    # t=0.5: det2 (0.3) fails, so det3 is the first to reach gt1.
    assert tp[:, 1].tolist() == [True, False, False, True]
    quirk = greedy_true_positives(best_iou, best_gt, (0.2, 0.5), one_to_one=False)
    assert quirk[:, 0].tolist() == [True, True, True, True]


def test_greedy_threshold_is_strict() -> None:
    tp = greedy_true_positives(np.array([0.5]), np.array([0]), (0.4, 0.5))
    assert tp.tolist() == [[True, False]]


@pytest.mark.parametrize(
    ("scores", "tp", "num_gt", "expected"),
    [
        ([0.9, 0.8], [True, True], 2, 1.0),
        ([0.9, 0.8], [False, True], 2, 0.25),  # FP ranked first
        ([0.8, 0.9], [False, True], 2, 0.5),  # same flags, better ranking
        ([], [], 3, 0.0),  # empty prediction
        ([0.5], [True], 0, float("nan")),  # no ground truth: undefined
    ],
)
def test_average_precision_ranks_by_score(
    scores: list[float], tp: list[bool], num_gt: int, expected: float
) -> None:
    ap = average_precision(np.array(scores), np.array(tp, dtype=bool).reshape(-1, 1), num_gt)
    np.testing.assert_allclose(ap, [expected])
