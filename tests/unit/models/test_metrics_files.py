"""Scoring prediction folders against dataset folders (fixtures written here, in the layout)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from describeme.data import layout
from describeme.errors import DataError
from describeme.models.metrics import Prediction, Scores
from describeme.models.metrics.dataset_eval import evaluate_predictions
from describeme.models.metrics.predictions import SCORES_JSON, PredictionWriter, load_scores

CONTRACT_KEYS = ("miou", "apr_vol", "apr_50", "app_vol", "app_50", "pcp_50", "color_miou",
                 "size_miou", "pattern_miou", "color_apcr_vol", "size_apcr_vol",
                 "pattern_apcr_vol", "kp_ap", "mask_ap")  # fmt: skip


def make_image(
    rng: np.random.Generator, height: int = 48, width: int = 64
) -> dict[str, np.ndarray]:
    """Two or three rectangular people with hair/top/pants, characteristics and keypoints."""
    parts = np.zeros((height, width), np.uint8)
    humans = np.zeros((height, width), np.uint16)
    color, size, pattern = (np.zeros((height, width), np.uint8) for _ in range(3))
    num = int(rng.integers(2, 4))
    keypoints = np.zeros((num, 17, 3), np.float32)
    for person in range(1, num + 1):
        x0 = 2 + (person - 1) * 20
        y0 = int(rng.integers(0, 8))
        h = int(rng.integers(30, 40))
        for cls, (a, b), char in ((2, (0, 0.2), 1), (5, (0.2, 0.6), 5), (9, (0.6, 1.0), 10)):
            rows = slice(y0 + int(a * h), y0 + int(b * h))
            parts[rows, x0 : x0 + 14] = cls
            humans[rows, x0 : x0 + 14] = person
            color[rows, x0 : x0 + 14] = int(rng.integers(1, 13)) if cls != 2 else char
            size[rows, x0 : x0 + 14] = int(rng.integers(1, 5))
            pattern[rows, x0 : x0 + 14] = 0 if cls == 2 else int(rng.integers(1, 5))
        keypoints[person - 1, :, 0] = x0 + 7
        keypoints[person - 1, :, 1] = np.linspace(y0 + 1, y0 + h - 2, 17)
        keypoints[person - 1, :, 2] = 2
    return {
        "parts": parts,
        "humans": humans,
        "color": color,
        "size": size,
        "pattern": pattern,
        "keypoints": keypoints,
    }


def write_dataset(root: Path, images: list[dict[str, np.ndarray]]) -> None:
    """Writes a minimal synthetic-layout dataset (dataset.yaml, Images, maps, Descriptions)."""
    folders = {
        "parts": layout.CATEGORY_IDS,
        "humans": layout.HUMAN_IDS,
        "color": layout.COLOR_IDS,
        "size": layout.SIZE_IDS,
        "pattern": layout.PATTERN_IDS,
    }
    for folder in (layout.IMAGES, layout.DESCRIPTIONS, *folders.values()):
        (root / folder).mkdir(parents=True, exist_ok=True)
    (root / layout.DATASET_YAML).write_text(
        yaml.safe_dump(
            {
                "format": layout.FORMAT_IMAGES,
                "version": layout.LAYOUT_VERSION,
                "instance_id_rule": layout.RULE_CCIHP,
            }
        )
    )
    for index, maps in enumerate(images):
        image_id = f"{index:04d}"
        cv2.imwrite(
            str(root / layout.IMAGES / f"{image_id}.png"),
            np.zeros((*maps["parts"].shape, 3), np.uint8),
        )
        for name, folder in folders.items():
            cv2.imwrite(str(root / folder / f"{image_id}.png"), maps[name])
        persons = [
            {"human_id": i + 1, "keypoints": kp.tolist()} for i, kp in enumerate(maps["keypoints"])
        ]
        (root / layout.DESCRIPTIONS / f"{image_id}.json").write_text(
            json.dumps(
                {
                    "image_id": image_id,
                    "height": maps["parts"].shape[0],
                    "width": maps["parts"].shape[1],
                    "persons": persons,
                }
            )
        )


def write_predictions(
    root: Path, images: list[dict[str, np.ndarray]], keypoints: bool = True
) -> None:
    with PredictionWriter(root) as writer:
        for index, maps in enumerate(images):
            num = int(maps["humans"].max())
            writer.write(
                f"{index:04d}",
                Prediction(
                    maps["parts"],
                    maps["humans"],
                    maps["color"],
                    maps["size"],
                    maps["pattern"],
                    scores={"score": Scores(persons={h: 0.5 + 0.1 * h for h in range(1, num + 1)})},
                    keypoints=maps["keypoints"] if keypoints else None,
                ),
            )


@pytest.fixture()
def dataset(tmp_path: Path) -> tuple[Path, list[dict[str, np.ndarray]]]:
    rng = np.random.default_rng(7)
    images = [make_image(rng) for _ in range(6)]
    write_dataset(tmp_path / "data", images)
    return tmp_path / "data", images


def test_dataset_against_itself_scores_one(dataset, tmp_path: Path) -> None:
    root, images = dataset
    write_predictions(tmp_path / "pred", images)
    report = evaluate_predictions(root, tmp_path / "pred")
    for key in CONTRACT_KEYS:
        assert report[key] == pytest.approx(1.0), key
    assert report["num_images"] == 6
    assert report["data"]["hash"] and report["predictions"]["hash"]
    json.dumps(report, allow_nan=False)


def test_dataset_folder_as_its_own_predictions(dataset) -> None:
    root, _ = dataset
    report = evaluate_predictions(root, root, limit=3)
    assert report["num_images"] == 3
    assert report["apr_vol"] == 1.0 and report["color_apcr_vol"] == 1.0
    assert report["kp_ap"] is None  # no keypoints.json in the folder: not scored


def test_worse_predictions_score_lower(dataset, tmp_path: Path) -> None:
    root, images = dataset
    shifted = [
        {k: (np.roll(v, 3, axis=1) if v.ndim == 2 else v) for k, v in m.items()} for m in images
    ]
    write_predictions(tmp_path / "pred", shifted, keypoints=False)
    report = evaluate_predictions(root, tmp_path / "pred")
    assert 0.0 < report["miou"] < 1.0
    assert report["apr_vol"] < 1.0 and report["app_vol"] < 1.0


def test_worker_processes_give_the_same_report(dataset, tmp_path: Path) -> None:
    root, images = dataset
    shifted = [
        {k: (np.roll(v, 2, axis=0) if v.ndim == 2 else v) for k, v in m.items()} for m in images
    ]
    write_predictions(tmp_path / "pred", shifted)
    single = evaluate_predictions(root, tmp_path / "pred")
    split = evaluate_predictions(root, tmp_path / "pred", workers=2)
    assert 0.0 < single["apr_vol"] < 1.0
    for key in ("per_class", "apr", "app"):
        assert split[key] == single[key], key  # same detections in the same order
    for key in (*CONTRACT_KEYS, "pcp"):  # PCP sums may differ in the last bits
        assert split[key] == pytest.approx(single[key], rel=1e-12), key


def test_missing_prediction_file_is_named(dataset, tmp_path: Path) -> None:
    root, images = dataset
    write_predictions(tmp_path / "pred", images)
    missing = tmp_path / "pred" / layout.HUMAN_IDS / "0002.png"
    missing.unlink()
    with pytest.raises(DataError, match="0002.png"):
        evaluate_predictions(root, tmp_path / "pred")


def test_mismatched_prediction_size_is_named(dataset, tmp_path: Path) -> None:
    root, images = dataset
    write_predictions(tmp_path / "pred", images)
    for folder in (layout.CATEGORY_IDS, layout.HUMAN_IDS, *layout.CHARACTERISTIC_DIRS.values()):
        cv2.imwrite(str(tmp_path / "pred" / folder / "0001.png"), np.zeros((10, 10), np.uint8))
    with pytest.raises(DataError, match="0001") as info:
        evaluate_predictions(root, tmp_path / "pred")
    assert "size mismatch" in str(info.value) or "shape" in str(info.value)


def test_out_of_range_prediction_ids_are_named(dataset, tmp_path: Path) -> None:
    root, images = dataset
    write_predictions(tmp_path / "pred", images)
    path = tmp_path / "pred" / layout.CATEGORY_IDS / "0000.png"
    parts = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    parts[0, 0] = 40
    cv2.imwrite(str(path), parts)
    with pytest.raises(DataError, match="40") as info:
        evaluate_predictions(root, tmp_path / "pred")
    assert "0000" in str(info.value)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        ("[1, 2]", "object keyed by image id"),
        ('{"0000": {"persons": {"1": "high"}}}', "must map an integer id to a number"),
        ('{"0000": {"boxes": {}}}', "unknown key"),
        ('{"0000": {"persons": {"9": 0.5}}}', "score for person 9"),
        ('{"9999": {"persons": {"1": 0.5}}}', "not in the dataset"),
        ("{", "invalid JSON"),
    ],
)
def test_bad_scores_json(dataset, tmp_path: Path, content: str, message: str) -> None:
    root, images = dataset
    write_predictions(tmp_path / "pred", images, keypoints=False)
    (tmp_path / "pred" / SCORES_JSON).write_text(content)
    with pytest.raises(DataError, match=message):
        evaluate_predictions(root, tmp_path / "pred")


def test_scores_json_rankings(tmp_path: Path) -> None:
    (tmp_path / SCORES_JSON).write_text(
        json.dumps({"a": {"persons": {"1": 0.5}, "rankings": {"qam": {"parts": {"5": 0.2}}}}})
    )
    scores, rankings = load_scores(tmp_path)
    assert rankings == ("score", "qam")
    assert scores["a"]["score"].persons == {1: 0.5}
    assert scores["a"]["qam"].parts == {5: 0.2}


def test_empty_dataset_and_missing_folders(tmp_path: Path) -> None:
    write_dataset(tmp_path / "data", [])
    (tmp_path / "pred").mkdir()
    with pytest.raises(DataError, match="no images"):
        evaluate_predictions(tmp_path / "data", tmp_path / "pred")
    with pytest.raises(DataError, match="nowhere"):
        evaluate_predictions(tmp_path / "data", tmp_path / "nowhere")


def test_synthetic_dataset_against_its_own_ground_truth(tmp_path: Path) -> None:
    """Data from ``describeme data synth`` scored against itself: 1.0 on every contract key."""
    pytest.importorskip("describeme.data.synth.writer")
    from describeme.cli.main import main
    from describeme.data.readers import open_dataset

    data = tmp_path / "synth"
    with pytest.raises(SystemExit) as done:
        main(["data", "synth", "--out", str(data), "--images", "6", "--seed", "1",
              "--size", "160x120"])  # fmt: skip
    assert done.value.code in (0, None)
    with PredictionWriter(tmp_path / "pred") as writer:
        for sample in open_dataset(data):
            labelled = (sample.keypoints[..., 2] > 0).any(axis=-1)  # COCO scores these only
            writer.write(sample.image_id, Prediction(
                sample.parts, sample.humans, sample.color, sample.size, sample.pattern,
                keypoints=sample.keypoints[labelled]))  # fmt: skip
    report = evaluate_predictions(data, tmp_path / "pred")
    for key in CONTRACT_KEYS:
        assert report[key] == pytest.approx(1.0), key


def test_synthetic_dataset_folder_is_its_own_keypoint_prediction(tmp_path: Path) -> None:
    """Without keypoints.json, the layout's COCO annotations serve as keypoint predictions."""
    pytest.importorskip("describeme.data.synth.writer")
    from describeme.cli.main import main

    data = tmp_path / "synth"
    with pytest.raises(SystemExit) as done:
        main(["data", "synth", "--out", str(data), "--images", "4", "--seed", "2",
              "--size", "160x120"])  # fmt: skip
    assert done.value.code in (0, None)
    report = evaluate_predictions(data, data)
    for key in CONTRACT_KEYS:
        assert report[key] == pytest.approx(1.0), key
