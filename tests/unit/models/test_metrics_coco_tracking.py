"""pycocotools (keypoint/mask AP) and motmetrics (MOTA/IDF1), called and checked on tiny cases."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from describeme.errors import DataError
from describeme.masks import RunLengthMask
from describeme.messages import TrackedFrame
from describeme.models.metrics.coco import CocoEvaluator
from describeme.models.metrics.tracking import (
    evaluate_mot,
    read_mot_file,
    tracked_frames_to_mot_rows,
    write_mot_file,
)
from describeme.types import Persons


def one_person() -> tuple[np.ndarray, np.ndarray]:
    humans = np.zeros((60, 60), np.uint16)
    humans[10:30, 20:40] = 1  # 400 px
    keypoints = np.zeros((1, 17, 3), np.float32)
    keypoints[0, :, 0] = np.linspace(21, 39, 17)
    keypoints[0, :, 1] = np.linspace(11, 29, 17)
    keypoints[0, :, 2] = 2
    keypoints[0, 0, 2] = 0  # one unlabelled keypoint (ignored by OKS)
    return humans, keypoints


@pytest.mark.parametrize(
    ("case", "kp_ap", "mask_ap"),
    [
        ("perfect", 1.0, 1.0),
        # Mask IoU exactly 0.5: a match at 0.5 only -> AP@[.5:.95] = 1/10.
        ("half", None, 0.1),
        ("far", 0.0, 0.0),  # keypoints far off, mask disjoint
        ("none", 0.0, 0.0),  # no detection at all
    ],
)
def test_coco_keypoint_and_mask_ap(case: str, kp_ap: float | None, mask_ap: float) -> None:
    humans, keypoints = one_person()
    coco = CocoEvaluator(expect_keypoints=True, expect_masks=True)
    coco.add_ground_truth("img", humans, keypoints)
    pred_humans, pred_kp = humans.copy(), keypoints.copy()
    if case == "half":
        pred_humans[10:30, 30:40] = 0
    if case == "far":
        pred_humans = np.zeros_like(humans)
        pred_humans[40:60, 0:20] = 1
        pred_kp[..., :2] += 30
    if case != "none":
        coco.add_mask_detections("img", pred_humans, np.array([1.0, 0.9]))
        coco.add_keypoint_detections("img", 60, 60, pred_kp, np.array([0.9]))
    result = coco.compute()
    if kp_ap is not None:
        assert result["kp_ap"] == pytest.approx(kp_ap)
    assert result["mask_ap"] == pytest.approx(mask_ap)


def test_coco_from_persons_container() -> None:
    humans, keypoints = one_person()
    coco = CocoEvaluator()
    coco.add_ground_truth("img", humans, keypoints)
    persons = Persons(
        xyxy=np.array([[20, 10, 40, 30]], np.float32),
        score=np.array([0.8], np.float32),
        keypoints=keypoints,
        masks=[RunLengthMask.from_full((humans == 1).astype(np.uint8))],
    )
    coco.add_persons("img", (60, 60), persons)
    result = coco.compute()
    assert result["kp_ap"] == pytest.approx(1.0)
    assert result["mask_ap"] == pytest.approx(1.0)
    assert result["keypoints"]["ap_50"] == pytest.approx(1.0)


def test_coco_merge_renumbers_images_and_equals_one_collector() -> None:
    humans, keypoints = one_person()
    half = humans.copy()
    half[10:30, 30:40] = 0
    together, first, second = CocoEvaluator(), CocoEvaluator(), CocoEvaluator()
    for collector, image_id, pred in ((first, "a", humans), (second, "b", half)):
        for target in (collector, together):
            target.add_ground_truth(image_id, humans, keypoints)
            target.add_mask_detections(image_id, pred, np.array([1.0, 0.9]))
            target.add_keypoint_detections(image_id, 60, 60, keypoints, np.array([0.9]))
    first.merge(second)
    merged, reference = first.compute(), together.compute()
    assert merged == reference
    assert 0.0 < merged["mask_ap"] < 1.0 and merged["kp_ap"] == 1.0  # "b"'s mask is half right


def test_coco_without_keypoint_ground_truth_reports_none() -> None:
    humans, _ = one_person()
    coco = CocoEvaluator()
    coco.add_ground_truth("img", humans, None)
    assert coco.compute()["kp_ap"] is None


# ------------------------------------------------------------------------------------- tracking
def rows(*tracks: tuple[int, int, float, float]) -> np.ndarray:
    """(frame, id, x, y) -> MOT rows with 10x10 boxes."""
    return np.array([[f, i, x, y, 10, 10] for f, i, x, y in tracks], dtype=np.float64)


GT = rows(*[(f, 1, 0, 0) for f in range(1, 5)], *[(f, 2, 50, 50) for f in range(1, 5)])


@pytest.mark.parametrize(
    ("hyp", "expected"),
    [
        (GT.copy(), {"mota": 1.0, "idf1": 1.0, "num_switches": 0, "mostly_tracked": 2}),
        # Ids exchanged from frame 3 on: 2 switches; MOTA = 1 - 2/8; IDF1 = 2*4/(8+8).
        (
            rows(
                *[(f, 1 if f < 3 else 2, 0, 0) for f in range(1, 5)],
                *[(f, 2 if f < 3 else 1, 50, 50) for f in range(1, 5)],
            ),
            {"mota": 0.75, "idf1": 0.5, "num_switches": 2, "mostly_tracked": 2},
        ),
        (np.zeros((0, 6)), {"mota": 0.0, "recall": 0.0, "mostly_lost": 2, "num_misses": 8}),
        # Boxes shifted by 5 px: IoU 50/150 = 1/3 < 0.5 -> no match, 8 misses and 8 FPs.
        (GT + np.array([0, 0, 5, 0, 0, 0]), {"mota": -1.0, "num_false_positives": 8}),
    ],
)
def test_evaluate_mot_tiny_cases(hyp: np.ndarray, expected: dict) -> None:
    result = evaluate_mot(GT, hyp)
    for key, value in expected.items():
        assert result[key] == pytest.approx(value), key
    assert isinstance(result["num_switches"], int)


def test_evaluate_mot_iou_threshold_and_gt_consider_flag() -> None:
    hyp = GT + np.array([0, 0, 5, 0, 0, 0])
    assert evaluate_mot(GT, hyp, iou_threshold=0.3)["mota"] == pytest.approx(1.0)
    flagged = np.hstack([GT, np.ones((len(GT), 1))])
    flagged[GT[:, 1] == 2, 6] = 0  # MOT "consider" = 0: not scored
    result = evaluate_mot(flagged, GT[GT[:, 1] == 1])
    assert result["mota"] == 1.0 and result["num_unique_objects"] == 1


def test_evaluate_mot_on_motmetrics_tud_campus() -> None:
    """motmetrics' own TUD-Campus data; figures as published in motmetrics' README."""
    import motmetrics

    folder = Path(motmetrics.__file__).parent / "data" / "TUD-Campus"
    result = evaluate_mot(read_mot_file(folder / "gt.txt"), read_mot_file(folder / "test.txt"))
    assert result["mota"] == pytest.approx(0.526, abs=5e-4)
    assert result["idf1"] == pytest.approx(0.558, abs=5e-4)
    assert (result["num_switches"], result["mostly_tracked"], result["mostly_lost"]) == (7, 1, 1)
    assert (result["num_false_positives"], result["num_misses"]) == (13, 150)


def test_numpy2_asfarray_shim() -> None:
    from describeme.models.metrics.tracking import _import_motmetrics

    _import_motmetrics()
    out = np.asfarray([1, 2])  # type: ignore[attr-defined]
    assert out.dtype == np.float64 and out.tolist() == [1.0, 2.0]


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (None, "not found"),
        ("1,2,3\n", "at least 6 columns"),
        ("a,b,c,d,e,f\n", "not a comma-separated"),
    ],
)
def test_read_mot_file_errors(tmp_path: Path, content: str | None, message: str) -> None:
    path = tmp_path / "gt.txt"
    if content is not None:
        path.write_text(content)
    with pytest.raises(DataError, match=message) as info:
        read_mot_file(path)
    assert str(path) in str(info.value)


def test_read_mot_file_empty_and_bad_rows(tmp_path: Path) -> None:
    path = tmp_path / "empty.txt"
    path.write_text("")
    assert read_mot_file(path).shape == (0, 6)
    with pytest.raises(ValueError, match="gt_rows"):
        evaluate_mot(np.zeros((3, 4)), np.zeros((0, 6)))
    with pytest.raises(ValueError, match="iou_threshold"):
        evaluate_mot(GT, GT, iou_threshold=0.0)


def test_tracker_output_to_mot_rows_round_trip(tmp_path: Path) -> None:
    frames = []
    for index in range(4):
        persons = Persons(
            xyxy=np.array([[0, 0, 10, 10], [50, 50, 60, 60], [5, 5, 6, 6]], np.float32),
            score=np.array([0.9, 0.8, 0.1], np.float32),
            track_id=np.array([1, 2, -1]),  # the third person is not tracked
        )
        frames.append(TrackedFrame("cam", index, index / 10, 0.0, (100, 100), persons))
    hyp = tracked_frames_to_mot_rows(frames)
    assert hyp.shape == (8, 7) and hyp[:, 0].min() == 1  # MOT frames are 1-based
    write_mot_file(tmp_path / "hyp.txt", hyp)
    result = evaluate_mot(GT, read_mot_file(tmp_path / "hyp.txt"))
    assert result["mota"] == 1.0 and result["idf1"] == 1.0
