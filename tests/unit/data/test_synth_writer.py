"""Synthetic datasets on disk: layout, COCO json, checker, worker-count independence."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
import yaml

from describeme.data import layout
from describeme.data.synth import SynthConfig, check_folder, write_image_dataset
from describeme.errors import DataError

cv2.setNumThreads(1)


def config() -> SynthConfig:
    return SynthConfig.model_validate({"width": 128, "height": 96, "people": {"min": 2, "max": 5}})


@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_image_dataset(tmp_path_factory.mktemp("synth") / "ds", config(), seed=4, count=6)


def test_layout_and_dtypes(dataset: Path) -> None:
    meta = yaml.safe_load((dataset / layout.DATASET_YAML).read_text())
    assert meta["format"] == layout.FORMAT_IMAGES and meta["instance_id_rule"] == "22h+c"
    assert meta["generator"]["seed"] == 4
    for folder in (
        layout.CATEGORY_IDS,
        layout.HUMAN_IDS,
        layout.COLOR_IDS,
        layout.SIZE_IDS,
        layout.PATTERN_IDS,
    ):
        arr = cv2.imread(str(dataset / folder / "000003.png"), cv2.IMREAD_UNCHANGED)
        assert arr.dtype == np.uint8 and arr.shape == (96, 128), folder
    inst = cv2.imread(str(dataset / layout.INSTANCE_IDS / "000003.png"), cv2.IMREAD_UNCHANGED)
    assert inst.dtype == np.uint16
    assert len(list((dataset / layout.IMAGES).glob("*.jpg"))) == 6


def test_generated_dataset_passes_the_checker(dataset: Path) -> None:
    assert check_folder(dataset) == []


@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_coco_file_loads_in_pycocotools(dataset: Path) -> None:
    from pycocotools.coco import COCO

    coco = COCO(str(dataset / layout.COCO_KEYPOINTS))
    humans = cv2.imread(str(dataset / layout.HUMAN_IDS / "000002.png"), cv2.IMREAD_UNCHANGED)
    anns = coco.loadAnns(coco.getAnnIds(imgIds=[2]))
    assert len(anns) == humans.max()
    for k, ann in enumerate(anns):
        assert np.array_equal(coco.annToMask(ann).astype(bool), humans == k + 1)
        assert len(ann["keypoints"]) == 51


def _corrupt_png(root: Path, folder: str, fn) -> None:
    path = root / folder / "000001.png"
    arr = cv2.imread(str(path), cv2.IMREAD_UNCHANGED)
    fn(arr)
    cv2.imwrite(str(path), arr)


def _on_person(arr: np.ndarray, humans: np.ndarray, value: int) -> None:
    ys, xs = np.nonzero(humans)
    arr[ys[0], xs[0]] = value


CORRUPTIONS = {
    "color-on-background": (
        layout.COLOR_IDS,
        lambda a, h: a.__setitem__(np.nonzero(h == 0)[0][0:1], 5),
    ),
    "instance-id": (layout.INSTANCE_IDS, lambda a, h: _on_person(a, h, 999)),
    "part-out-of-range": (layout.CATEGORY_IDS, lambda a, h: _on_person(a, h, 40)),
    "human-without-part": (layout.CATEGORY_IDS, lambda a, h: _on_person(a, h, 0)),
    "pattern-not-constant": (
        layout.PATTERN_IDS,
        lambda a, h: _on_person(a, h, 4 if a[h > 0][0] != 4 else 3),
    ),
}


@pytest.mark.parametrize("case", sorted(CORRUPTIONS))
def test_checker_reports_each_corruption(tmp_path: Path, case: str) -> None:
    root = write_image_dataset(tmp_path / "ds", config(), seed=9, count=2)
    humans = cv2.imread(str(root / layout.HUMAN_IDS / "000001.png"), cv2.IMREAD_UNCHANGED)
    assert humans.max() > 0
    folder, fn = CORRUPTIONS[case]
    _corrupt_png(root, folder, lambda arr: fn(arr, humans))
    violations = check_folder(root)
    assert violations and all("000001" in v for v in violations), violations


def test_checker_reports_keypoint_off_mask(tmp_path: Path) -> None:
    root = write_image_dataset(tmp_path / "ds", config(), seed=9, count=2)
    path = root / layout.DESCRIPTIONS / "000001.json"
    desc = json.loads(path.read_text())
    humans = cv2.imread(str(root / layout.HUMAN_IDS / "000001.png"), cv2.IMREAD_UNCHANGED)
    ys, xs = np.nonzero(humans == 0)
    desc["persons"][0]["keypoints"][0] = [int(xs[0]), int(ys[0]), 2]
    path.write_text(json.dumps(desc))
    assert any("visible off the person's mask" in v for v in check_folder(root))


def test_worker_count_does_not_change_the_output(tmp_path: Path) -> None:
    cfg = SynthConfig(width=64, height=48)
    one = write_image_dataset(tmp_path / "one", cfg, seed=1, count=4, workers=1)
    two = write_image_dataset(tmp_path / "two", cfg, seed=1, count=4, workers=2)
    for folder in (layout.CATEGORY_IDS, layout.INSTANCE_IDS, layout.COLOR_IDS, layout.IMAGES):
        for path in sorted((one / folder).iterdir()):
            assert path.read_bytes() == (two / folder / path.name).read_bytes(), path
    assert (one / layout.COCO_KEYPOINTS).read_bytes() == (two / layout.COCO_KEYPOINTS).read_bytes()


@pytest.mark.parametrize(
    ("count", "workers", "message"), [(0, 1, "--images"), (-3, 1, "--images"), (2, 0, "--workers")]
)
def test_bad_arguments(tmp_path: Path, count: int, workers: int, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        write_image_dataset(tmp_path / "x", config(), 0, count, workers=workers)


def test_refuses_non_empty_output_without_overwrite(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("x")
    with pytest.raises(DataError, match="not empty"):
        write_image_dataset(tmp_path, config(), 0, 1)
    write_image_dataset(tmp_path, config(), 0, 1, overwrite=True)
    assert (tmp_path / layout.DATASET_YAML).is_file()
