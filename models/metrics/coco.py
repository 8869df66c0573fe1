"""COCO keypoint AP and person mask AP, computed by pycocotools' ``COCOeval``.

Nothing here reimplements OKS or mask IoU: ground truth and detections are converted to COCO
dicts (masks as pycocotools RLE) and handed to ``COCOeval`` in memory. Ground-truth persons
with no visible pixel are left out (they are not in the image); persons with no labelled
keypoint are kept for masks and ignored for keypoints (``num_keypoints = 0``, COCO's rule).
"""

from __future__ import annotations

import contextlib
import io
import logging
from collections.abc import Sequence

import numpy as np

from describeme.labels import NUM_KEYPOINTS
from describeme.types import Persons

log = logging.getLogger(__name__)
PERSON_CATEGORY = 1
KP_STAT_NAMES = ("ap", "ap_50", "ap_75", "ap_medium", "ap_large",
                 "ar", "ar_50", "ar_75", "ar_medium", "ar_large")  # fmt: skip
MASK_STAT_NAMES = ("ap", "ap_50", "ap_75", "ap_small", "ap_medium", "ap_large",
                   "ar_1", "ar_10", "ar_100", "ar_small", "ar_medium", "ar_large")  # fmt: skip


def encode_binary_mask(mask: np.ndarray) -> dict:
    """pycocotools RLE of an (H, W) bool mask, with a JSON-friendly ``counts`` string."""
    from pycocotools import mask as mask_utils

    rle = mask_utils.encode(np.asfortranarray(mask.astype(np.uint8)))
    rle["counts"] = rle["counts"].decode("ascii")
    return rle


def encode_person_masks(humans: np.ndarray) -> dict[int, dict]:
    """pycocotools RLE of every person of an (H, W) person map, keyed by person index.

    The map is transposed once so each person's mask is already in the column-major order
    pycocotools encodes, instead of copying every mask to Fortran order.
    """
    from pycocotools import mask as mask_utils

    present = np.flatnonzero(np.bincount(humans.reshape(-1).astype(np.int64))[1:]) + 1
    if present.size == 0:
        return {}
    transposed = np.ascontiguousarray(humans.T)  # (W, H) C order == (H, W) Fortran order
    out = {}
    for person in present:
        column_major = (transposed == person).view(np.uint8).T  # (H, W), Fortran-contiguous
        rle = mask_utils.encode(column_major)
        rle["counts"] = rle["counts"].decode("ascii")
        out[int(person)] = rle
    return out


def _bbox_area(rle: dict) -> tuple[list[float], float]:
    from pycocotools import mask as mask_utils

    encoded = {"size": rle["size"], "counts": rle["counts"].encode("ascii")}
    return [float(v) for v in mask_utils.toBbox(encoded)], float(mask_utils.area(encoded))


class CocoEvaluator:
    """Collects COCO ground truth and detections image by image, then runs ``COCOeval``.

    Args:
        expect_keypoints: predictions carry keypoints, so an image set with none scores 0.
        expect_masks: predictions carry person masks, likewise.
    """

    def __init__(self, expect_keypoints: bool = False, expect_masks: bool = False) -> None:
        self.expect_keypoints = expect_keypoints
        self.expect_masks = expect_masks
        self._images: list[dict] = []
        self._image_index: dict[str, int] = {}
        self._gt: list[dict] = []
        self._masks: list[dict] = []
        self._keypoints: list[dict] = []
        self.has_keypoint_gt = False

    def _index(self, image_id: str, height: int, width: int) -> int:
        if image_id not in self._image_index:
            self._image_index[image_id] = len(self._images) + 1
            self._images.append(
                {
                    "id": len(self._images) + 1,
                    "height": height,
                    "width": width,
                    "file_name": image_id,
                }
            )
        return self._image_index[image_id]

    def add_ground_truth(
        self, image_id: str, humans: np.ndarray, keypoints: np.ndarray | None
    ) -> None:
        """Adds an image's persons: (H, W) person index map and optional (N, 17, 3) keypoints."""
        index = self._index(image_id, *humans.shape)
        for person, rle in encode_person_masks(humans).items():
            bbox, area = _bbox_area(rle)
            ann = {
                "id": len(self._gt) + 1,
                "image_id": index,
                "category_id": PERSON_CATEGORY,
                "iscrowd": 0,
                "area": area,
                "bbox": bbox,
                "segmentation": rle,
                "num_keypoints": 0,
            }
            if keypoints is not None and person - 1 < len(keypoints):
                kp = np.asarray(keypoints[person - 1], dtype=np.float64)
                ann["keypoints"] = kp.reshape(-1).tolist()
                num_labelled = int((kp[:, 2] > 0).sum())
                ann["num_keypoints"] = num_labelled
                self.has_keypoint_gt = self.has_keypoint_gt or num_labelled > 0
            self._gt.append(ann)

    def add_mask_detections(self, image_id: str, humans: np.ndarray, scores: np.ndarray) -> None:
        """Adds predicted person masks from an (H, W) person map; ``scores`` (P+1,) by index."""
        index = self._index(image_id, *humans.shape)
        for person, rle in encode_person_masks(humans).items():
            self._masks.append(
                {
                    "image_id": index,
                    "category_id": PERSON_CATEGORY,
                    "segmentation": rle,
                    "score": float(scores[person]),
                }
            )

    def add_keypoint_detections(
        self, image_id: str, height: int, width: int, keypoints: np.ndarray, scores: np.ndarray
    ) -> None:
        """Adds (N, 17, 3) predicted keypoints (x, y, confidence) with (N,) person scores."""
        keypoints = np.asarray(keypoints, dtype=np.float64)
        if keypoints.ndim != 3 or keypoints.shape[1:] != (NUM_KEYPOINTS, 3):
            raise ValueError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got {keypoints.shape}")
        index = self._index(image_id, height, width)
        for kp, score in zip(keypoints, np.asarray(scores, dtype=np.float64), strict=True):
            self._keypoints.append(
                {
                    "image_id": index,
                    "category_id": PERSON_CATEGORY,
                    "keypoints": kp.reshape(-1).tolist(),
                    "score": float(score),
                }
            )

    def add_persons(self, image_id: str, image_size: tuple[int, int], persons: Persons) -> None:
        """Adds a model's :class:`Persons` (masks and/or keypoints, ranked by ``score``)."""
        height, width = image_size
        self._index(image_id, height, width)
        if persons.keypoints is not None:
            self.add_keypoint_detections(image_id, height, width, persons.keypoints, persons.score)
        if persons.masks is not None:
            index = self._image_index[image_id]
            for mask, score in zip(persons.masks, persons.score, strict=True):
                if mask.image_size != (height, width):
                    raise ValueError(
                        f"{image_id}: mask is for image {mask.image_size}, not {image_size}"
                    )
                self._masks.append(
                    {
                        "image_id": index,
                        "category_id": PERSON_CATEGORY,
                        "segmentation": encode_binary_mask(mask.to_binary()),
                        "score": float(score),
                    }
                )

    def merge(self, other: CocoEvaluator) -> None:
        """Appends another collector's images, renumbering its image and annotation ids."""
        remap = {}
        for image in other._images:
            remap[image["id"]] = self._index(image["file_name"], image["height"], image["width"])
        for ann in other._gt:
            self._gt.append({**ann, "id": len(self._gt) + 1, "image_id": remap[ann["image_id"]]})
        for target, source in ((self._masks, other._masks), (self._keypoints, other._keypoints)):
            target.extend({**det, "image_id": remap[det["image_id"]]} for det in source)
        self.has_keypoint_gt = self.has_keypoint_gt or other.has_keypoint_gt

    def compute(self) -> dict[str, object]:
        """Runs COCOeval; ``kp_ap``/``mask_ap`` are None when there is nothing to score."""
        out: dict[str, object] = {"kp_ap": None, "mask_ap": None}
        if self.has_keypoint_gt and (self._keypoints or self.expect_keypoints):
            stats = self._run("keypoints", self._keypoints, len(KP_STAT_NAMES))
            out["kp_ap"] = stats[0]
            out["keypoints"] = dict(zip(KP_STAT_NAMES, stats, strict=True))
        if self._gt and (self._masks or self.expect_masks):
            stats = self._run("segm", self._masks, len(MASK_STAT_NAMES))
            out["mask_ap"] = stats[0]
            out["masks"] = dict(zip(MASK_STAT_NAMES, stats, strict=True))
        return out

    def _run(self, iou_type: str, detections: Sequence[dict], num_stats: int) -> list[float | None]:
        if not detections:
            # loadRes cannot take an empty list; with ground truth and no detection AP is 0.
            return [0.0] * num_stats
        from pycocotools.coco import COCO
        from pycocotools.cocoeval import COCOeval

        dataset = {
            "images": self._images,
            "annotations": self._gt,
            "categories": [
                {"id": PERSON_CATEGORY, "name": "person", "keypoints": [], "skeleton": []}
            ],
        }
        printed = io.StringIO()
        with contextlib.redirect_stdout(printed):
            gt = COCO()
            gt.dataset = dataset
            gt.createIndex()
            dt = gt.loadRes(list(detections))
            evaluator = COCOeval(gt, dt, iouType=iou_type)
            evaluator.evaluate()
            evaluator.accumulate()
            evaluator.summarize()
        log.debug("COCOeval %s:\n%s", iou_type, printed.getvalue())
        # COCOeval reports -1 where a figure is undefined (no ground truth in that range).
        return [None if v < 0 else float(v) for v in evaluator.stats]
