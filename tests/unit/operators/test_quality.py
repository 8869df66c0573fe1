"""QANet pixel scores and the Quality-Aware Module, against hand-computed values."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.operators.quality import part_pixel_scores, person_quality, pixel_score, qam_score

PROB_MAX = np.array([[0.1, 0.5], [0.9, 0.3]])


@pytest.mark.parametrize(
    ("mask", "threshold", "expected"),
    [
        (None, 0.2, (0.5 + 0.9 + 0.3) / 3),  # 0.1 is below T
        (None, 0.0, (0.1 + 0.5 + 0.9 + 0.3) / 4),
        (np.array([[True, True], [False, False]]), 0.2, 0.5),
        (np.array([[True, False], [False, False]]), 0.2, float("nan")),  # only an unconfident pixel
        (np.zeros((2, 2), bool), 0.2, float("nan")),  # empty mask
        (None, 0.95, float("nan")),
    ],
)
def test_pixel_score(mask: np.ndarray | None, threshold: float, expected: float) -> None:
    np.testing.assert_allclose(pixel_score(PROB_MAX, mask, threshold), expected)


def test_part_pixel_scores_per_part() -> None:
    probs = np.array(
        [
            [[0.8, 0.1], [0.1, 0.1]],  # class 0
            [[0.1, 0.6], [0.2, 0.05]],  # class 1
            [[0.1, 0.3], [0.7, 0.85]],  # class 2
        ]
    )
    part_map = probs.argmax(axis=0)  # [[0, 1], [2, 2]]
    person = np.array([[False, True], [True, True]])
    scores = part_pixel_scores(probs, part_map, person)
    # class 0 only outside the person -> nan; class 1: 0.6; class 2: mean(0.7, 0.85).
    np.testing.assert_allclose(scores, [np.nan, 0.6, 0.775])
    quality, parts = person_quality(0.9, probs, part_map, person)
    # S_i over foreground (0.6, 0.7, 0.85) = 0.7167; S_p = mean(0.6, 0.775) = 0.6875.
    assert quality == pytest.approx((0.9 * (2.15 / 3) * 0.6875) ** (1 / 3))
    np.testing.assert_allclose(parts, scores)


@pytest.mark.parametrize(
    ("args", "weights", "expected"),
    [
        ((0.8, 0.5, 0.2), (1, 1, 1), 0.08 ** (1 / 3)),
        ((0.8, 0.5, 0.2), (2, 0, 0), 0.8),  # box score only
        ((0.8, 0.5, 0.2), (0, 1, 1), 0.1**0.5),  # pixel scores only
        ((1.0, 1.0, 1.0), (1, 2, 3), 1.0),
        ((0.0, 0.9, 0.9), (1, 1, 1), 0.0),
    ],
)
def test_qam_score(args: tuple, weights: tuple, expected: float) -> None:
    assert qam_score(*args, *weights) == pytest.approx(expected)


def test_qam_score_broadcasts() -> None:
    out = qam_score(np.array([0.8, 1.0]), 0.5, np.array([[0.2], [1.0]]))
    assert out.shape == (2, 2)
    assert out[1, 1] == pytest.approx(0.5 ** (1 / 3))


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda: qam_score(0.5, 0.5, 0.5, a=0, b=0, c=0), "not all zero"),
        (lambda: qam_score(0.5, 0.5, 0.5, a=-1), "weights"),
        (lambda: qam_score(-0.1, 0.5, 0.5), "box_score"),
        (lambda: pixel_score(PROB_MAX, np.ones((3, 3), bool)), "mask shape"),
        (lambda: pixel_score(PROB_MAX, threshold=1.5), "threshold"),
        (
            lambda: part_pixel_scores(
                np.ones((2, 2)), np.zeros((2, 2), int), np.ones((2, 2), bool)
            ),
            r"\(C, H, W\)",
        ),
        (
            lambda: part_pixel_scores(
                np.ones((2, 2, 2)), np.full((2, 2), 5), np.ones((2, 2), bool)
            ),
            "part_map ids",
        ),
    ],
)
def test_quality_bad_input(call, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        call()


def test_qam_ranking_lifts_person_ap_when_pixel_confidence_is_informative() -> None:
    """Operator -> evaluator: bad parses with high box scores rank last once rescored by QAM."""
    from describeme.models.metrics import ParsingEvaluator, Prediction, Scores

    height, width, num_classes = 20, 40, 22
    gt_parts = np.zeros((height, width), np.uint8)
    gt_humans = np.zeros((height, width), np.uint16)
    for person in range(4):
        cols = slice(person * 10, person * 10 + 8)
        gt_parts[2:10, cols], gt_parts[10:18, cols] = 5, 9  # upper-clothes over pants
        gt_humans[2:18, cols] = person + 1
    pred_parts = gt_parts.copy()
    probs = np.full((num_classes, height, width), 0.01)
    confidence = np.full((height, width), 0.95)
    for person in (2, 3):  # persons 3 and 4: garments swapped, and the model is unsure there
        cols = slice(person * 10, person * 10 + 8)
        pred_parts[2:10, cols], pred_parts[10:18, cols] = 9, 5
        confidence[:, cols] = 0.3
    rows, cols = np.indices((height, width))
    probs[pred_parts, rows, cols] = confidence
    box_scores = {1: 0.5, 2: 0.5, 3: 0.9, 4: 0.9}  # the detector prefers the bad parses
    quality = {}
    for person, box in box_scores.items():
        quality[person], _ = person_quality(box, probs, pred_parts, gt_humans == person)
    evaluator = ParsingEvaluator(characteristics=False, masks=False, rankings=("score", "qam"))
    pred = Prediction(
        pred_parts,
        gt_humans,
        scores={"score": Scores(persons=box_scores), "qam": Scores(persons=quality)},
    )
    evaluator.update(type("GT", (), {"parts": gt_parts, "humans": gt_humans})(), pred)
    report = evaluator.compute()
    assert quality[1] > quality[3]
    # At 0.5 the swapped persons are false positives; raw ranking puts them first:
    # FP, FP, TP, TP over 4 people -> precision envelope 1/2 up to recall 1/2 -> AP 0.25.
    assert report["app_50"] == pytest.approx(0.25)
    assert report["app_50_qam"] == pytest.approx(0.5)
