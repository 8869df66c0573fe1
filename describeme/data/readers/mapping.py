"""How a dataset's stored ids map to ours: folders, part classes, characteristics.

CIHP stores 20 classes (``labels.CIHP_TO_CCIHP`` maps them); the official CCIHP release's
characteristic id order could not be verified, so both mappings live in YAML files a user can
edit (``configs/datasets/cihp.yaml``, ``configs/datasets/ccihp.yaml``). The defaults built in
here equal those files (a unit test keeps them in step), so the readers work without the repo's
``configs/`` folder, e.g. from an installed wheel.

Example::

    mapping = load_mapping("configs/datasets/ccihp.yaml")
    ds = open_dataset("/data/CCIHP", split="val", kind="ccihp", mapping=mapping)
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import numpy as np
from pydantic import ValidationInfo, field_validator, model_validator

from describeme import labels
from describeme.config import StrictModel, load_config
from describeme.data import layout
from describeme.data.sample import IGNORE
from describeme.errors import DataError

# Number of classes of each of our maps: mapped ids must be below these (or 255 = ignore).
TARGET_CLASSES = {
    "parts": labels.NUM_PARTS,
    "color": labels.NUM_COLORS,
    "size": labels.NUM_SIZES,
    "pattern": labels.NUM_PATTERNS,
}
KINDS = ("cihp", "ccihp", "synthetic")


class FolderNames(StrictModel):
    """Folder names under a dataset root (defaults: ``describeme.data.layout``)."""

    images: str = layout.IMAGES
    parts: str = layout.CATEGORY_IDS
    humans: str = layout.HUMAN_IDS
    instances: str = layout.INSTANCE_IDS
    color: str = layout.COLOR_IDS
    size: str = layout.SIZE_IDS
    pattern: str = layout.PATTERN_IDS
    descriptions: str = layout.DESCRIPTIONS


class DatasetMapping(StrictModel):
    """Stored ids -> our ids, per map; ``None`` tables mean identity over our class range.

    Attributes:
        kind: which layout this mapping describes.
        folders: folder names under the root.
        instance_id_rule: ``20h+c`` or ``22h+c``; None when unknown (instance maps are then
            read but never checked against the rule).
        characteristics: whether Color/Size/Pattern maps are required.
        parts, color, size, pattern: ``{stored_id: our_id}``; our_id 255 = ignore. A stored id
            that is not in the table is an error naming the file (not silently merged).
    """

    kind: Literal["cihp", "ccihp", "synthetic"]
    folders: FolderNames = FolderNames()
    instance_id_rule: Literal["20h+c", "22h+c"] | None = None
    characteristics: bool = False
    parts: dict[int, int] | None = None
    color: dict[int, int] | None = None
    size: dict[int, int] | None = None
    pattern: dict[int, int] | None = None

    @field_validator("parts", "color", "size", "pattern")
    @classmethod
    def _check_targets(
        cls, table: dict[int, int] | None, info: ValidationInfo
    ) -> dict[int, int] | None:
        if table is None:
            return None
        limit = TARGET_CLASSES[str(info.field_name)]
        for src, dst in table.items():
            if not 0 <= src <= 255:
                raise ValueError(f"stored id {src} must be in 0..255")
            if not (0 <= dst < limit or dst == IGNORE):
                raise ValueError(
                    f"{src} -> {dst}: target must be in 0..{limit - 1} or 255 (ignore)"
                )
        return table

    @model_validator(mode="after")
    def _check_background(self) -> DatasetMapping:
        for name in ("parts", "color", "size", "pattern"):
            table = getattr(self, name)
            if table is not None and table.get(0, 0) != 0:
                raise ValueError(f"{name}: stored id 0 (background/none) must map to 0")
        return self


def default_mapping(kind: str, instance_id_rule: str | None = None) -> DatasetMapping:
    """The built-in mapping of a dataset kind (mirrors ``configs/datasets/<kind>.yaml``)."""
    if kind == "cihp":
        return DatasetMapping.model_validate(
            {"kind": "cihp", "instance_id_rule": layout.RULE_CIHP,
             "parts": dict(labels.CIHP_TO_CCIHP)}
        )  # fmt: skip
    if kind == "ccihp":
        identity = {name: {i: i for i in range(n)} for name, n in TARGET_CLASSES.items()}
        return DatasetMapping.model_validate({"kind": "ccihp", "characteristics": True, **identity})
    if kind == "synthetic":
        rule = instance_id_rule or layout.RULE_CCIHP
        return DatasetMapping.model_validate({"kind": "synthetic", "instance_id_rule": rule})
    raise ValueError(f"unknown dataset kind {kind!r}; expected one of {list(KINDS)}")


def load_mapping(path: str | Path) -> DatasetMapping:
    """Loads a mapping YAML; a bad key or id raises ``ConfigError`` naming file and key."""
    return load_config(path, DatasetMapping)


def build_lut(table: dict[int, int] | None, num_classes: int) -> np.ndarray:
    """A 256-entry int16 lookup table stored id -> our id; -1 marks ids with no mapping.

    ``None`` means identity over ``0..num_classes-1``. Stored 255 maps to 255 unless the
    table says otherwise.
    """
    lut = np.full(256, -1, dtype=np.int16)
    lut[IGNORE] = IGNORE
    if table is None:
        lut[:num_classes] = np.arange(num_classes)
    else:
        for src, dst in table.items():
            lut[src] = dst
    return lut


def apply_lut(raw: np.ndarray, lut: np.ndarray, path: Path, what: str, origin: str) -> np.ndarray:
    """Maps a stored (H, W) id map through ``lut``; unmapped ids raise ``DataError``.

    Args:
        raw: (H, W) uint8/uint16 stored ids.
        lut: from :func:`build_lut`.
        path: the file ``raw`` came from (named in errors).
        what: map name for messages ("part", "color", ...).
        origin: where the mapping came from (named in errors so the user knows what to edit).

    Returns:
        (H, W) uint8 mapped ids.
    """
    if raw.dtype != np.uint8:
        top = int(raw.max()) if raw.size else 0
        if top > 255:
            raise DataError(f"{path}: {what} id {top} out of range (ids must be 0..255)")
        raw = raw.astype(np.uint8)
    counts = np.bincount(raw.ravel(), minlength=256)
    bad = np.flatnonzero((counts > 0) & (lut < 0))
    if bad.size:
        valid = np.flatnonzero(lut >= 0).tolist()
        raise DataError(
            f"{path}: {what} id(s) {bad.tolist()} out of range for this dataset "
            f"(known ids {valid}, mapping: {origin})"
        )
    valid_ids = lut >= 0
    if np.array_equal(lut[valid_ids], np.flatnonzero(valid_ids)):
        return raw  # identity mapping (our own datasets): no copy needed
    # cv2.LUT is several times faster than numpy fancy indexing on uint8 maps.
    import cv2

    table = np.where(valid_ids, lut, 0).astype(np.uint8)
    return cv2.LUT(np.ascontiguousarray(raw), table)
