"""mIoU, AP^r, AP^p/PCP and AP^cr on tiny hand-built maps with hand-computed answers."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from describeme.errors import DataError
from describeme.labels import COLORS, PARTS
from describeme.models.metrics import ConfusionMatrix, ParsingEvaluator, Prediction, Scores
from describeme.models.metrics.counts import PersonPixels, instance_counts
from describeme.models.metrics.person import PersonAP
from describeme.models.metrics.region import RegionAP

UPPER, PANTS, COAT, HAIR = (
    PARTS.index("upper-clothes"),
    PARTS.index("pants"),
    PARTS.index("coat"),
    2,
)
RED, BLUE = COLORS.index("red"), COLORS.index("blue")


@dataclass
class Maps:
    """Ground-truth stand-in with the attributes the evaluator reads."""

    parts: np.ndarray
    humans: np.ndarray
    color: np.ndarray | None = None
    size: np.ndarray | None = None
    pattern: np.ndarray | None = None
    keypoints: np.ndarray | None = None


def blank(h: int = 10, w: int = 10) -> tuple[np.ndarray, np.ndarray]:
    return np.zeros((h, w), np.uint8), np.zeros((h, w), np.uint16)


def paint(
    parts: np.ndarray, humans: np.ndarray, rows: slice, cols: slice, cls: int, human: int
) -> None:
    parts[rows, cols] = cls
    humans[rows, cols] = human


def two_people() -> tuple[np.ndarray, np.ndarray]:
    parts, humans = blank()
    paint(parts, humans, slice(0, 3), slice(0, 4), HAIR, 1)
    paint(parts, humans, slice(3, 7), slice(0, 4), UPPER, 1)
    paint(parts, humans, slice(7, 10), slice(0, 4), PANTS, 1)
    paint(parts, humans, slice(2, 6), slice(6, 10), COAT, 2)
    paint(parts, humans, slice(6, 10), slice(6, 10), PANTS, 2)
    return parts, humans


def region_ap(
    gt: tuple, pred: tuple, part_scores: np.ndarray | None = None, pgn_compat: bool = False
) -> dict:
    counts = instance_counts(gt[0], pred[0], PersonPixels(gt[1], pred[1]), len(PARTS))
    table = (
        part_scores if part_scores is not None else np.ones((int(pred[1].max()) + 1, len(PARTS)))
    )
    metric = RegionAP(PARTS, pgn_compat=pgn_compat)
    metric.update(counts, table)
    return metric.compute()


def person_ap(gt: tuple, pred: tuple, scores: list[float] | None = None) -> dict:
    counts = instance_counts(gt[0], pred[0], PersonPixels(gt[1], pred[1]), len(PARTS))
    metric = PersonAP()
    metric.update(counts, np.array([1.0, *(scores or [1.0] * int(pred[1].max()))]))
    return metric.compute()


# --------------------------------------------------------------------------------------- mIoU
@pytest.mark.parametrize(
    ("gt", "pred", "expected_iou", "expected_miou"),
    [
        ([[0, 1], [1, 2]], [[0, 1], [1, 2]], [1, 1, 1], 1.0),  # perfect
        ([[0, 1], [1, 2]], [[0, 1], [2, 2]], [1, 0.5, 0.5], 2 / 3),  # one pixel wrong
        ([[0, 1], [1, 1]], [[0, 0], [0, 0]], [0.25, 0, np.nan], 0.125),  # empty prediction
        ([[255, 1], [1, 2]], [[1, 1], [2, 2]], [np.nan, 0.5, 0.5], 0.5),  # 255 ignored
        (
            [[1, 1], [1, 1]],
            [[1, 255], [1, 1]],
            [np.nan, 0.75, np.nan],
            0.75,
        ),  # predicted 255 = miss
        ([[0, 0], [0, 0]], [[0, 0], [0, 2]], [0.75, np.nan, 0.0], 0.375),  # class only predicted
    ],
)
def test_miou_table(gt: list, pred: list, expected_iou: list, expected_miou: float) -> None:
    matrix = ConfusionMatrix(["a", "b", "c"])
    matrix.update(np.array(gt, np.uint8), np.array(pred, np.uint8))
    np.testing.assert_allclose(matrix.iou(), expected_iou)
    assert matrix.miou() == pytest.approx(expected_miou)


def test_miou_is_one_matrix_over_the_dataset_not_a_mean_of_images() -> None:
    matrix = ConfusionMatrix(["bg", "x"])
    matrix.update(np.array([[1, 1, 1, 0]]), np.array([[1, 1, 1, 0]]))  # x: 3/3
    matrix.update(np.array([[1, 0, 0, 0]]), np.array([[0, 0, 0, 0]]))  # x: 0/1
    # Dataset-wide: x I=3, U=4 -> 0.75 (a mean of per-image IoUs would give 0.5).
    assert matrix.iou()[1] == pytest.approx(0.75)
    assert matrix.table()["x"] == pytest.approx(0.75)


# --------------------------------------------------------------------------------------- AP^r
def test_apr_perfect_prediction_is_one() -> None:
    gt = two_people()
    result = region_ap(gt, gt)
    assert result["ap_vol"] == 1.0 and result["ap_50"] == 1.0
    assert result["per_class"]["glove"]["ap_vol"] is None  # no ground truth: left out
    assert result["per_class"]["pants"]["num_gt"] == 2


def test_apr_empty_prediction_is_zero() -> None:
    result = region_ap(two_people(), blank())
    assert result["ap"] == [0.0] * 9


def test_apr_one_pixel_shift() -> None:
    parts, humans = blank()
    paint(parts, humans, slice(0, 4), slice(0, 5), UPPER, 1)  # 20 px
    pred = blank()
    paint(*pred, slice(0, 4), slice(1, 6), UPPER, 1)  # shifted right: I = 16, U = 24, IoU 2/3
    result = region_ap((parts, humans), pred)
    assert result["ap"] == [1.0] * 6 + [0.0] * 3
    assert result["ap_vol"] == pytest.approx(6 / 9)
    assert result["ap_50"] == 1.0


def test_apr_two_people_swapped_ids_still_match() -> None:
    parts, humans = two_people()
    swapped = np.where(humans == 1, 2, np.where(humans == 2, 1, 0)).astype(np.uint16)
    assert region_ap((parts, humans), (parts, swapped))["ap_vol"] == 1.0


def duplicate_case() -> tuple[tuple, tuple, np.ndarray]:
    """Two ground truths; two predictions both best on the first, none on the second."""
    gt = blank()
    paint(*gt, slice(0, 4), slice(0, 10), UPPER, 1)  # 40 px
    paint(*gt, slice(6, 10), slice(0, 10), UPPER, 2)  # 40 px
    pred = blank()
    paint(*pred, slice(0, 4), slice(0, 6), UPPER, 1)  # IoU 24/40 = 0.6 with gt 1
    paint(*pred, slice(0, 4), slice(6, 10), UPPER, 2)  # IoU 16/40 = 0.4 with gt 1
    scores = np.ones((3, len(PARTS)))
    scores[1, UPPER], scores[2, UPPER] = 0.9, 0.8
    return gt, pred, scores


def test_apr_duplicates_one_to_one_vs_pgn_quirk() -> None:
    gt, pred, scores = duplicate_case()
    strict = region_ap(gt, pred, scores)
    # t <= 0.5: first prediction TP, duplicate FP -> recall 0.5, AP 0.5; t >= 0.6: 0.6 is not > 0.6.
    assert strict["ap"] == pytest.approx([0.5] * 5 + [0.0] * 4)
    quirk = region_ap(gt, pred, scores, pgn_compat=True)
    # PGN: the duplicate (IoU 0.4) also counts at t < 0.4, filling recall to 1 -> AP 1.
    assert quirk["ap"] == pytest.approx([1.0] * 3 + [0.5] * 2 + [0.0] * 4)
    assert quirk["ap_vol"] == pytest.approx(4 / 9)
    assert strict["ap_vol"] == pytest.approx(2.5 / 9)


def test_apr_ranking_by_score_matters() -> None:
    gt, pred, scores = duplicate_case()
    scores[1, UPPER], scores[2, UPPER] = 0.1, 0.8  # the poor duplicate now ranks first
    result = region_ap(gt, pred, scores)
    # t=0.1..0.3: dup (IoU .4) takes gt1 first, the good one is a duplicate -> P=[1, .5], R=.5.
    # t=0.4, 0.5: dup fails, good one TP second -> precision 0.5 at recall 0.5 -> 0.25.
    assert result["ap"] == pytest.approx([0.5] * 3 + [0.25] * 2 + [0.0] * 4)


def test_apr_ignores_255_pixels() -> None:
    parts, humans = blank()
    paint(parts, humans, slice(0, 4), slice(0, 5), UPPER, 1)
    parts[:, 5:] = 255  # unlabelled region
    pred = blank()
    paint(*pred, slice(0, 4), slice(0, 10), UPPER, 1)  # spills into the ignored area only
    assert region_ap((parts, humans), pred)["ap_vol"] == 1.0


# --------------------------------------------------------------------------------------- AP^p
def test_app_hand_computed_mean_iou_and_pcp() -> None:
    gt = blank(4, 4)
    paint(*gt, slice(0, 1), slice(0, 4), HAIR, 1)
    paint(*gt, slice(1, 2), slice(0, 4), UPPER, 1)
    pred = blank(4, 4)
    paint(*pred, slice(0, 1), slice(0, 4), HAIR, 1)
    paint(*pred, slice(1, 2), slice(0, 2), UPPER, 1)
    # IoU: hair 1, upper 2/4, background 8/10 -> mean 0.7667 (> 0.7, not > 0.8).
    result = person_ap(gt, pred)
    assert result["ap"] == [1.0] * 7 + [0.0] * 2
    assert result["ap_vol"] == pytest.approx(7 / 9)
    # PCP_50: upper's IoU is exactly 0.5, not > 0.5 -> 1 of 2 labels.
    assert result["pcp_50"] == pytest.approx(0.5)
    assert result["pcp"][3] == pytest.approx(1.0)  # t = 0.4: both labels


def test_app_matches_best_person_only_without_fallback() -> None:
    gt = blank()
    paint(*gt, slice(0, 5), slice(0, 5), UPPER, 1)  # A
    paint(*gt, slice(0, 5), slice(5, 10), UPPER, 2)  # B
    pred = blank()
    paint(*pred, slice(0, 5), slice(0, 3), UPPER, 1)  # P1: mean IoU .741 with A
    paint(*pred, slice(0, 5), slice(3, 6), UPPER, 2)  # P2: .556 with A, .414 with B
    result = person_ap(gt, pred, [0.9, 0.8])
    # P2's best is A, already taken -> FP although B is above 0.4 (no fallback).
    assert result["ap"] == pytest.approx([0.5] * 7 + [0.0] * 2)


@pytest.mark.parametrize(
    ("case", "expected_vol"),
    [("perfect", 1.0), ("empty", 0.0), ("swapped", 1.0)],
)
def test_app_edge_cases(case: str, expected_vol: float) -> None:
    parts, humans = two_people()
    pred = {
        "perfect": (parts, humans),
        "empty": blank(),
        "swapped": (parts, np.where(humans > 0, 3 - humans.astype(np.int64), 0).astype(np.uint16)),
    }[case]
    result = person_ap((parts, humans), pred)
    assert result["ap_vol"] == pytest.approx(expected_vol)
    assert result["pcp_50"] == pytest.approx(expected_vol)


# ----------------------------------------------------------------------------- evaluator, AP^cr
def characterized(parts: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    color = np.zeros_like(parts)
    color[parts == UPPER] = RED
    color[parts == COAT] = RED
    color[parts == PANTS] = BLUE
    color[parts == HAIR] = 1
    size = np.where(parts > 0, 1, 0).astype(np.uint8)
    pattern = np.where((parts > 0) & (parts != HAIR), 2, 0).astype(np.uint8)
    return color, size, pattern


def test_evaluator_self_evaluation_is_one_everywhere() -> None:
    parts, humans = two_people()
    color, size, pattern = characterized(parts)
    gt = Maps(parts, humans, color, size, pattern)
    evaluator = ParsingEvaluator()
    evaluator.update(gt, Prediction(parts, humans, color, size, pattern), "img")
    report = evaluator.compute()
    for key in (
        "miou",
        "apr_vol",
        "apr_50",
        "app_vol",
        "app_50",
        "pcp_50",
        "color_miou",
        "size_miou",
        "pattern_miou",
        "color_apcr_vol",
        "size_apcr_vol",
        "pattern_apcr_vol",
        "mask_ap",
    ):
        assert report[key] == pytest.approx(1.0), key


def test_apcr_scores_characteristics_independently_of_the_part_class() -> None:
    parts, humans = two_people()
    color, size, pattern = characterized(parts)
    wrong_parts = np.where(parts == UPPER, COAT, parts).astype(np.uint8)  # right color, wrong part
    evaluator = ParsingEvaluator(masks=False)
    evaluator.update(
        Maps(parts, humans, color, size, pattern),
        Prediction(wrong_parts, humans, color, size, pattern),
    )
    report = evaluator.compute()
    assert report["color_apcr_vol"] == 1.0
    assert report["apr_vol"] < 1.0
    # Person 1's red region is its upper-clothes only; person 2's is its coat: 2 red regions.
    assert report["per_class"]["color_apcr"]["red"]["num_gt"] == 2


def test_evaluator_extra_ranking_is_reported_with_suffix() -> None:
    gt, pred, table = duplicate_case()
    raw = Scores(parts={5: 0.1, 27: 0.8})  # bad ranking: duplicate first
    qam = Scores(parts={5: 0.9, 27: 0.8})
    evaluator = ParsingEvaluator(characteristics=False, masks=False, rankings=("score", "qam"))
    evaluator.update(Maps(*gt), Prediction(*pred, scores={"score": raw, "qam": qam}))
    report = evaluator.compute()
    assert report["apr_50"] == pytest.approx(0.25)
    assert report["apr_50_qam"] == pytest.approx(0.5)


@pytest.mark.parametrize(
    ("mutate", "message"),
    [
        (lambda p: Prediction(p.parts[:5], p.humans[:5]), "size mismatch"),
        (lambda p: Prediction(np.full_like(p.parts, 30), p.humans), "label 30 out of range"),
        (
            lambda p: Prediction(p.parts, p.humans, scores={"score": Scores(persons={7: 0.5})}),
            "score for person 7",
        ),
        (
            lambda p: Prediction(p.parts, p.humans, scores={"score": Scores(parts={44: 0.5})}),
            "part instance 44",
        ),
        (lambda p: Prediction(p.parts, p.humans.astype(np.float32)), "must be integer"),
        (
            lambda p: Prediction(p.parts, np.where(p.humans > 0, 3000, 0).astype(np.uint16)),
            r"person ids must lie in \[0, 2978\]",
        ),
        (lambda p: Prediction(p.parts.astype(np.int64) - 1, p.humans), "label -1 is negative"),
    ],
)
def test_evaluator_bad_input_names_the_image(mutate, message: str) -> None:
    parts, humans = two_people()
    evaluator = ParsingEvaluator(characteristics=False)
    pred = mutate(Prediction(parts, humans, source="preds/img.png"))
    pred.source = "preds/img.png"
    with pytest.raises(DataError, match=message) as info:
        evaluator.update(Maps(parts, humans), pred, "img")
    assert "img" in str(info.value)


def test_evaluator_missing_characteristic_map_and_empty_dataset() -> None:
    parts, humans = two_people()
    color, size, pattern = characterized(parts)
    evaluator = ParsingEvaluator()
    with pytest.raises(DataError, match=r"prediction has no size map \(missing file\?\)"):
        evaluator.update(Maps(parts, humans, color, size, pattern), Prediction(parts, humans), "x")
    with pytest.raises(DataError, match="no images"):
        ParsingEvaluator().compute()
