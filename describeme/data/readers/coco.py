"""Reads a COCO person-keypoints JSON (the real COCO one or ours) into :class:`Sample` objects.

COCO has no part labels, so ``parts`` is 255 (ignore) on person pixels and 0 elsewhere; crowd
regions are 255 with no person. Persons are numbered 1..N in annotation-id order; a person
whose mask is entirely hidden by others is dropped and the rest renumbered, so keypoint row i
always belongs to human i+1. Masks come from pycocotools (polygons, compressed and
uncompressed RLE).
"""

from __future__ import annotations

import warnings
from pathlib import Path
from typing import Any

import numpy as np

from describeme.data.readers._io import read_coco_json, read_image
from describeme.data.sample import IGNORE, Sample, boxes_from_humans
from describeme.errors import DataError
from describeme.labels import NUM_KEYPOINTS


class CocoReader:
    """Index of a COCO annotation file; reads one image's persons on demand.

    Args:
        images_dir: folder the JSON's ``file_name`` entries are relative to.
        annotations: path of the COCO JSON.

    Raises:
        DataError: the folder or JSON is missing, or the JSON is not a COCO annotation file.
    """

    def __init__(self, images_dir: Path, annotations: Path):
        if not images_dir.is_dir():
            raise DataError(f"COCO images folder {images_dir} not found")
        data = read_coco_json(annotations, "COCO annotation")
        self.images_dir = images_dir
        self.annotations_path = annotations
        self.categories = data.get("categories", [])
        person_ids = {c["id"] for c in self.categories if c.get("name") == "person"}
        self.images: dict[str, dict[str, Any]] = {}
        ids_to_stem: dict[Any, str] = {}
        for image in data["images"]:
            stem = Path(image["file_name"]).stem
            if stem in self.images:
                raise DataError(f"{annotations}: two images share the file stem '{stem}'")
            self.images[stem] = image
            ids_to_stem[image["id"]] = stem
        self.annotations: dict[str, list[dict[str, Any]]] = {stem: [] for stem in self.images}
        for ann in sorted(data["annotations"], key=lambda ann: ann.get("id", 0)):
            if person_ids and ann.get("category_id", min(person_ids)) not in person_ids:
                continue
            owner = ids_to_stem.get(ann.get("image_id"))
            if owner is None:
                raise DataError(
                    f"{annotations}: annotation {ann.get('id')} refers to unknown "
                    f"image_id {ann.get('image_id')!r}"
                )
            self.annotations[owner].append(ann)

    @property
    def ids(self) -> list[str]:
        return sorted(self.images)

    def read_sample(self, image_id: str) -> Sample:
        """Reads the photo and rasterises its person annotations."""
        record = self.images.get(image_id)
        if record is None:
            raise DataError(f"image id '{image_id}' is not in {self.annotations_path}")
        path = self.images_dir / record["file_name"]
        image = read_image(path)
        height, width = image.shape[:2]
        if (record.get("height", height), record.get("width", width)) != (height, width):
            raise DataError(
                f"{path} is {height}x{width} (HxW) but {self.annotations_path} says "
                f"{record.get('height')}x{record.get('width')}"
            )
        parts, humans, kept = self._rasterise(self.annotations[image_id], height, width)
        keypoints = np.zeros((len(kept), NUM_KEYPOINTS, 3), dtype=np.float32)
        for row, ann in enumerate(kept):
            if ann.get("keypoints"):
                keypoints[row] = self._keypoints(ann)
        return Sample(
            image_id=image_id, image=image, parts=parts, humans=humans,
            boxes=boxes_from_humans(humans, len(kept)), keypoints=keypoints, source=str(path),
            extra={"annotation_ids": [ann.get("id") for ann in kept]},
        )  # fmt: skip

    def _rasterise(
        self, anns: list[dict[str, Any]], height: int, width: int
    ) -> tuple[np.ndarray, np.ndarray, list[dict[str, Any]]]:
        """Paints crowd regions then persons, larger first so small people in front stay visible."""
        parts = np.zeros((height, width), dtype=np.uint8)
        humans = np.zeros((height, width), dtype=np.uint16)
        persons: list[tuple[dict[str, Any], np.ndarray]] = []
        for ann in anns:
            mask = self._mask(ann, height, width)
            if mask is None:
                continue
            if ann.get("iscrowd", 0):
                parts[mask] = IGNORE
            else:
                persons.append((ann, mask))
        order = sorted(range(len(persons)), key=lambda i: -int(persons[i][1].sum()))
        for index in order:
            humans[persons[index][1]] = index + 1
        parts[humans > 0] = IGNORE
        present = np.zeros(len(persons) + 1, dtype=bool)
        present[np.unique(humans)] = True
        present[0] = False
        renumber = np.zeros(len(persons) + 1, dtype=np.uint16)
        renumber[present] = np.arange(1, int(present.sum()) + 1)
        kept = [persons[i][0] for i in range(len(persons)) if present[i + 1]]
        return parts, renumber[humans], kept

    def _mask(self, ann: dict[str, Any], height: int, width: int) -> np.ndarray | None:
        """(H, W) bool mask of an annotation's segmentation; None when it has none."""
        from pycocotools import mask as mask_utils

        segm = ann.get("segmentation")
        if not segm:
            return None
        try:
            if isinstance(segm, list):  # polygons
                polygons = [poly for poly in segm if len(poly) >= 6]
                if not polygons:
                    return None
                rle = mask_utils.merge(mask_utils.frPyObjects(polygons, height, width))
            elif isinstance(segm.get("counts"), list):  # uncompressed RLE
                rle = mask_utils.frPyObjects(segm, height, width)
            else:
                rle = segm
                _check_compressed_counts(rle["counts"], height * width)
            if list(rle["size"]) != [height, width]:
                raise ValueError(f"RLE size {rle['size']} != image size {[height, width]}")
            with warnings.catch_warnings():
                # pycocotools' decode trips NumPy 2's copy-keyword deprecation; harmless here.
                warnings.simplefilter("ignore", DeprecationWarning)
                return mask_utils.decode(rle).astype(bool)
        except (TypeError, ValueError, KeyError, AttributeError) as exc:
            raise DataError(
                f"{self.annotations_path}: bad segmentation in annotation {ann.get('id')}: {exc}"
            ) from None

    def _keypoints(self, ann: dict[str, Any]) -> np.ndarray:
        try:
            return np.asarray(ann["keypoints"], dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        except (TypeError, ValueError):
            raise DataError(
                f"{self.annotations_path}: annotation {ann.get('id')} keypoints must be "
                "51 numbers (17 x, y, v triples)"
            ) from None


def _check_compressed_counts(counts: str | bytes, num_pixels: int) -> None:
    """Validates a compressed RLE string: pycocotools decodes a corrupt one into garbage.

    The format (pycocotools ``rleFrString``): 6-bit chars offset by 48, 0x20 = continuation,
    0x10 = sign of the last chunk; counts after the second are deltas to counts[i-2].
    """
    text = counts.encode("ascii") if isinstance(counts, str) else bytes(counts)
    values: list[int] = []
    pos = 0
    while pos < len(text):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(text):
                raise ValueError("compressed RLE ends in the middle of a count")
            chunk = text[pos] - 48
            if not 0 <= chunk < 64:
                raise ValueError(f"compressed RLE has an invalid character {chr(text[pos])!r}")
            value |= (chunk & 0x1F) << shift
            more = bool(chunk & 0x20)
            pos, shift = pos + 1, shift + 5
            if not more and chunk & 0x10:
                value |= -1 << shift
        if len(values) > 2:
            value += values[-2]
        values.append(value)
    if any(v < 0 for v in values) or sum(values) != num_pixels:
        raise ValueError(f"compressed RLE counts sum to {sum(values)}, not {num_pixels} pixels")
