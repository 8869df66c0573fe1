"""COCO person-keypoints reader on a tiny JSON written here (polygons, RLE, crowd)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest
from pycocotools import mask as mask_utils

from describeme.data import layout
from describeme.data.readers import open_dataset, read_label_maps
from describeme.errors import DataError

H, W = 20, 30


def _uncompressed_rle(mask: np.ndarray) -> dict:
    """Column-major uncompressed RLE, as our synthetic engine writes it."""
    flat = mask.T.ravel().astype(np.uint8)
    changes = np.flatnonzero(np.diff(np.concatenate([[0], flat, [1 - flat[-1]]])))
    counts = np.diff(np.concatenate([[0], changes])).tolist()
    return {"size": [H, W], "counts": counts}


def _keypoints(seed: int) -> list[float]:
    return [float(seed), float(seed + 1), 2.0] * 17


def make_coco(root: Path, annotations: list[dict] | None = None) -> Path:
    (root / "images").mkdir(parents=True)
    cv2.imwrite(str(root / "images" / "img1.jpg"), np.full((H, W, 3), 90, np.uint8))
    big = np.zeros((H, W), np.uint8)
    big[2:18, 12:28] = 1  # large person on the right, uncompressed RLE
    crowd = np.zeros((H, W), np.uint8)
    crowd[15:20, 0:6] = 1
    crowd_rle = mask_utils.encode(np.asfortranarray(crowd))
    crowd_rle["counts"] = crowd_rle["counts"].decode("ascii")
    if annotations is None:
        annotations = [
            # small person on the left, polygon (x, y pairs), drawn over the big one's corner
            {"id": 10, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": [[2, 2, 14, 2, 14, 12, 2, 12]], "keypoints": _keypoints(1)},
            {"id": 11, "image_id": 1, "category_id": 1, "iscrowd": 0,
             "segmentation": _uncompressed_rle(big), "keypoints": _keypoints(2)},
            {"id": 12, "image_id": 1, "category_id": 1, "iscrowd": 1, "segmentation": crowd_rle},
            {"id": 13, "image_id": 1, "category_id": 2, "iscrowd": 0,  # a dog: ignored
             "segmentation": [[0, 0, 5, 0, 5, 5]]},
        ]  # fmt: skip
    data = {
        "images": [{"id": 1, "file_name": "img1.jpg", "height": H, "width": W}],
        "annotations": annotations,
        "categories": [{"id": 1, "name": "person"}, {"id": 2, "name": "dog"}],
    }
    path = root / "person_keypoints.json"
    path.write_text(json.dumps(data))
    return path


def test_coco_reader_rasterises_persons_crowd_and_keypoints(tmp_path: Path) -> None:
    path = make_coco(tmp_path)
    ds = open_dataset(tmp_path / "images", kind="coco", annotations=path)
    assert ds.kind == "coco" and ds.ids == ["img1"]
    sample = ds[0]
    assert sample.num_persons == 2 and sample.extra["annotation_ids"] == [10, 11]
    assert sample.humans[5, 5] == 1 and sample.humans[5, 20] == 2
    assert sample.humans[5, 13] == 1  # the smaller person is painted on top
    assert sample.parts[5, 5] == 255 and sample.parts[0, 0] == 0
    assert sample.parts[19, 1] == 255 and sample.humans[19, 1] == 0  # crowd: ignored, no person
    assert set(np.unique(sample.parts).tolist()) == {0, 255}
    np.testing.assert_array_equal(sample.keypoints[1].reshape(-1), _keypoints(2))
    np.testing.assert_array_equal(sample.boxes[1], [12, 2, 28, 18])


def test_hidden_person_is_dropped_and_ids_stay_aligned(tmp_path: Path) -> None:
    cover = np.zeros((H, W), np.uint8)
    cover[0:10, 0:10] = 1
    anns = [
        {"id": 1, "image_id": 1, "iscrowd": 0, "segmentation": _uncompressed_rle(cover),
         "keypoints": _keypoints(1)},
        # covers exactly person 1's pixels; equal areas paint in annotation order, so it hides 1
        {"id": 2, "image_id": 1, "iscrowd": 0, "segmentation": [[0, 0, 10, 0, 10, 10, 0, 10]],
         "keypoints": _keypoints(5)},
        {"id": 3, "image_id": 1, "iscrowd": 0, "segmentation": [[20, 5, 28, 5, 28, 15, 20, 15]],
         "keypoints": _keypoints(9)},
    ]  # fmt: skip
    path = make_coco(tmp_path, anns)
    sample = open_dataset(tmp_path / "images", kind="coco", annotations=path)[0]
    assert sample.num_persons == 2 and sample.extra["annotation_ids"] == [2, 3]
    np.testing.assert_array_equal(sample.keypoints[0].reshape(-1), _keypoints(5))
    np.testing.assert_array_equal(sample.keypoints[1].reshape(-1), _keypoints(9))
    assert sample.humans[10, 24] == 2


def test_default_annotation_path_in_our_layout(tmp_path: Path) -> None:
    make_coco(tmp_path)
    (tmp_path / "images").rename(tmp_path / layout.IMAGES)
    (tmp_path / "annotations").mkdir()
    (tmp_path / "person_keypoints.json").rename(tmp_path / layout.COCO_KEYPOINTS)
    assert open_dataset(tmp_path, kind="coco")[0].num_persons == 2


@pytest.mark.parametrize(
    "segmentation, message",
    [({"size": [H, W], "counts": "???"}, "annotation 1"),
     ({"size": [H + 1, W], "counts": [5, 5]}, "RLE size"),
     ("oops", "annotation 1")],
)  # fmt: skip
def test_bad_segmentation_names_file_and_annotation(tmp_path, segmentation, message) -> None:
    anns = [{"id": 1, "image_id": 1, "iscrowd": 0, "segmentation": segmentation}]
    path = make_coco(tmp_path, anns)
    ds = open_dataset(tmp_path / "images", kind="coco", annotations=path)
    with pytest.raises(DataError, match=f"person_keypoints.json: .*{message}"):
        ds[0]


def test_bad_keypoints_and_files(tmp_path: Path) -> None:
    anns = [{"id": 4, "image_id": 1, "iscrowd": 0, "segmentation": [[0, 0, 9, 0, 9, 9]],
             "keypoints": [1, 2, 3]}]  # fmt: skip
    path = make_coco(tmp_path, anns)
    with pytest.raises(DataError, match="annotation 4 keypoints must be 51 numbers"):
        open_dataset(tmp_path / "images", kind="coco", annotations=path)[0]
    with pytest.raises(DataError, match="nope.json: COCO annotation file not found"):
        open_dataset(tmp_path / "images", kind="coco", annotations=tmp_path / "nope.json")
    (tmp_path / "list.json").write_text("[]")
    with pytest.raises(DataError, match="not a COCO annotation file"):
        open_dataset(tmp_path / "images", kind="coco", annotations=tmp_path / "list.json")
    cv2.imwrite(str(tmp_path / "images" / "img1.jpg"), np.zeros((H + 2, W, 3), np.uint8))
    with pytest.raises(DataError, match="img1.jpg is 22x30"):
        open_dataset(tmp_path / "images", kind="coco", annotations=path)[0]
    with pytest.raises(ValueError, match="annotations= is for kind='coco'"):
        open_dataset(tmp_path / "images", annotations=path)


def test_read_label_maps_refuses_coco_info(tmp_path: Path) -> None:
    path = make_coco(tmp_path)
    ds = open_dataset(tmp_path / "images", kind="coco", annotations=path)
    with pytest.raises(ValueError, match="COCO dataset has no label maps"):
        read_label_maps(tmp_path / "images", "img1", info=ds.info)
