"""Reads one image of a CIHP / CCIHP / synthetic dataset folder into a :class:`Sample`.

The folder layout is ``describeme.data.layout``; the id mapping is a :class:`DatasetMapping`.
Every map is checked as it is read: equal shapes (both files named on mismatch), ids known to
the mapping (file and id named otherwise).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from describeme.data import layout
from describeme.data.readers._io import (
    list_images,
    read_coco_json,
    read_image,
    read_json,
    read_label_png,
    require_dir,
)
from describeme.data.readers.mapping import TARGET_CLASSES, DatasetMapping, apply_lut, build_lut
from describeme.data.sample import Sample, boxes_from_humans
from describeme.errors import DataError
from describeme.labels import NUM_KEYPOINTS

log = logging.getLogger(__name__)

CHARACTERISTICS = ("color", "size", "pattern")


@dataclass
class LabelMaps:
    """The label maps of one image, mapped to our ids (no photo needed).

    Attributes:
        parts: (H, W) uint8 CCIHP part ids (255 = ignore).
        humans: (H, W) uint16 person index, 0 = background.
        instances: (H, W) uint16 stored part-instance ids, None without an Instance_ids folder.
        color, size, pattern: (H, W) uint8 characteristic ids, None when the dataset has none.
        source: the part-map file (for error messages).
    """

    parts: np.ndarray
    humans: np.ndarray
    instances: np.ndarray | None = None
    color: np.ndarray | None = None
    size: np.ndarray | None = None
    pattern: np.ndarray | None = None
    source: str = ""


class LayoutReader:
    """Reads samples from a dataset folder in the CIHP layout.

    Args:
        root: dataset root.
        mapping: stored ids -> our ids and folder names.
        origin: where ``mapping`` came from, named in id errors.
        require_images: False for prediction folders that hold label maps only.

    Raises:
        DataError: the root or a required folder is missing.
    """

    def __init__(
        self, root: Path, mapping: DatasetMapping, origin: str, require_images: bool = True
    ):
        if not root.is_dir():
            raise DataError(f"dataset root {root} not found or not a directory")
        self.root = root
        self.mapping = mapping
        self.origin = origin
        folders = mapping.folders
        self.images = (
            list_images(require_dir(root, folders.images, "images")) if require_images else {}
        )
        self.parts_dir = require_dir(root, folders.parts, "part-label")
        self.humans_dir = require_dir(root, folders.humans, "human-id")
        instances_dir = root / folders.instances
        self.instances_dir = instances_dir if instances_dir.is_dir() else None
        self.characteristic_dirs = self._characteristic_dirs()
        descriptions_dir = root / folders.descriptions
        self.descriptions_dir = descriptions_dir if descriptions_dir.is_dir() else None
        self._coco_keypoints: CocoKeypointIndex | None = None
        self._luts = {
            name: build_lut(getattr(mapping, name), n) for name, n in TARGET_CLASSES.items()
        }

    def _characteristic_dirs(self) -> dict[str, Path]:
        names = {name: getattr(self.mapping.folders, name) for name in CHARACTERISTICS}
        present = {
            name: self.root / folder
            for name, folder in names.items()
            if (self.root / folder).is_dir()
        }
        if self.mapping.characteristics or (self.mapping.kind == "synthetic" and present):
            # All three or none: a sample with color but no size would train half a head.
            return {
                name: require_dir(self.root, folder, f"{name}-label")
                for name, folder in names.items()
            }
        return {}

    # ----------------------------------------------------------------------------------
    def read_label_maps(
        self, image_id: str, reference: tuple[Path, tuple[int, int]] | None = None
    ) -> LabelMaps:
        """Reads and maps every label map of ``image_id``.

        Args:
            image_id: file stem.
            reference: (photo path, (H, W)) every map must match; None = the part map's shape.
        """
        parts_path = self.parts_dir / f"{image_id}.png"
        raw_parts = self._read_checked(parts_path, "part-label", reference)
        reference = reference or (parts_path, raw_parts.shape[:2])
        parts = apply_lut(raw_parts, self._luts["parts"], parts_path, "part", self.origin)
        humans_path = self.humans_dir / f"{image_id}.png"
        humans = self._read_checked(humans_path, "human-id", reference)
        maps = LabelMaps(
            parts=parts, humans=humans.astype(np.uint16, copy=False), source=str(parts_path)
        )
        if self.instances_dir is not None:
            path = self.instances_dir / f"{image_id}.png"
            instances = self._read_checked(path, "instance-id", reference)
            maps.instances = instances.astype(np.uint16, copy=False)
        for name, folder in self.characteristic_dirs.items():
            path = folder / f"{image_id}.png"
            raw = self._read_checked(path, f"{name}-label", reference)
            setattr(maps, name, apply_lut(raw, self._luts[name], path, name, self.origin))
        return maps

    @staticmethod
    def _read_checked(
        path: Path, what: str, reference: tuple[Path, tuple[int, int]] | None
    ) -> np.ndarray:
        labels = read_label_png(path, what)
        if reference is not None and labels.shape[:2] != reference[1]:
            raise DataError(
                f"{path} has shape {labels.shape[:2]} but {reference[0]} has {reference[1]}; "
                "all maps of one image must have the photo's size"
            )
        return labels

    def read_sample(self, image_id: str) -> Sample:
        """Reads the photo, its label maps, keypoints and descriptions into a :class:`Sample`."""
        image_path = self.images.get(image_id)
        if image_path is None:
            raise DataError(
                f"image id '{image_id}' has no file in {self.root / self.mapping.folders.images}"
            )
        image = read_image(image_path)
        maps = self.read_label_maps(image_id, reference=(image_path, image.shape[:2]))
        num_persons = int(maps.humans.max()) if maps.humans.size else 0
        descriptions = self._read_descriptions(image_id)
        keypoints = self._keypoints(image_id, descriptions, num_persons)
        extra: dict[str, Any] = {"instance_id_rule": self.mapping.instance_id_rule}
        if maps.instances is not None:
            extra["instances"] = maps.instances
        return Sample(
            image_id=image_id, image=image, parts=maps.parts, humans=maps.humans,
            boxes=boxes_from_humans(maps.humans, num_persons), color=maps.color, size=maps.size,
            pattern=maps.pattern, keypoints=keypoints, descriptions=descriptions,
            source=str(image_path), extra=extra,
        )  # fmt: skip

    # ----------------------------------------------------------------------------------
    def _read_descriptions(self, image_id: str) -> list[dict[str, Any]] | None:
        if self.descriptions_dir is None:
            return None
        path = self.descriptions_dir / f"{image_id}.json"
        data = read_json(path, "description")
        persons = data.get("persons") if isinstance(data, dict) else None
        if not isinstance(persons, list):
            raise DataError(
                f"{path}: expected an object with a 'persons' list (see describeme.data.layout)"
            )
        for index, person in enumerate(persons):
            human_id = person.get("human_id") if isinstance(person, dict) else None
            if not isinstance(human_id, int) or human_id < 1:
                raise DataError(
                    f"{path}: persons[{index}] needs an integer 'human_id' >= 1, got {human_id!r}"
                )
        return sorted(persons, key=lambda person: person["human_id"])

    def _keypoints(
        self, image_id: str, descriptions: list[dict[str, Any]] | None, num_persons: int
    ) -> np.ndarray | None:
        """(N, 17, 3) keypoints of persons 1..N: from Descriptions, else the COCO JSON."""
        if descriptions is not None and all("keypoints" in p for p in descriptions):
            where = self.descriptions_dir / f"{image_id}.json"  # type: ignore[operator]
            pairs = [(p["human_id"], p["keypoints"]) for p in descriptions]
        else:
            path = self.root / layout.COCO_KEYPOINTS
            if not path.is_file():
                return None
            if self._coco_keypoints is None:
                self._coco_keypoints = CocoKeypointIndex(path)
            found = self._coco_keypoints.get(image_id)
            if found is None:
                return None
            where, pairs = path, found
        return keypoints_by_human(pairs, num_persons, where)


def keypoints_by_human(pairs: list[tuple[int, Any]], num_persons: int, where: Path) -> np.ndarray:
    """Scatters (human_id, 17x3 keypoints) pairs into an (N, 17, 3) float32 array.

    Persons without keypoints get zeros (v = 0). Ids above ``num_persons`` belong to people
    with no visible pixel in the human map (fully occluded) and are dropped, since a Sample's
    rows follow the human map.
    """
    out = np.zeros((num_persons, NUM_KEYPOINTS, 3), dtype=np.float32)
    for human_id, values in pairs:
        try:
            points = np.asarray(values, dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
        except (TypeError, ValueError):
            raise DataError(
                f"{where}: keypoints of human {human_id} must be 17 (x, y, v) triples (51 numbers)"
            ) from None
        if 1 <= human_id <= num_persons:
            out[human_id - 1] = points
        else:
            log.debug("%s: human %s has keypoints but no visible pixels; dropped", where, human_id)
    return out


class CocoKeypointIndex:
    """Keypoints per image stem from ``annotations/person_keypoints.json``.

    An annotation's person is its ``human_id`` field when present (our synthetic output);
    otherwise the image's non-crowd annotations in id order are persons 1, 2, ...
    """

    def __init__(self, path: Path):
        data = read_coco_json(path, "COCO keypoints")
        stems = {img["id"]: Path(img["file_name"]).stem for img in data["images"]}
        by_image: dict[str, list[dict[str, Any]]] = {}
        for ann in sorted(data["annotations"], key=lambda ann: ann.get("id", 0)):
            if ann.get("iscrowd", 0) or "keypoints" not in ann:
                continue
            stem = stems.get(ann.get("image_id"))
            if stem is None:
                raise DataError(
                    f"{path}: annotation {ann.get('id')} refers to unknown image_id "
                    f"{ann.get('image_id')!r}"
                )
            by_image.setdefault(stem, []).append(ann)
        self._pairs = {
            stem: [
                (int(ann.get("human_id", order + 1)), ann["keypoints"])
                for order, ann in enumerate(anns)
            ]
            for stem, anns in by_image.items()
        }

    def get(self, stem: str) -> list[tuple[int, Any]] | None:
        """(human id, 51 keypoint numbers) of each person of image ``stem``, or None."""
        return self._pairs.get(stem)

    def items(self) -> list[tuple[str, list[tuple[int, Any]]]]:
        """Every image stem with its (human id, keypoints) pairs."""
        return list(self._pairs.items())
