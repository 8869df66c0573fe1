"""One typed sample of a human-parsing dataset, whatever the reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from describeme.labels import NUM_KEYPOINTS

IGNORE = 255  # label value excluded from losses and metrics


@dataclass
class Sample:
    """An image with its parsing labels.

    Attributes:
        image_id: file stem, unique within the dataset.
        image: (H, W, 3) uint8 BGR.
        parts: (H, W) uint8 CCIHP part ids (255 = ignore).
        humans: (H, W) uint16 person index, 0 = background, 1..N.
        color, size, pattern: (H, W) uint8 characteristic maps (0 = none, 255 = ignore),
            None when the dataset has no characteristics (plain CIHP).
        keypoints: (N, 17, 3) float32 COCO keypoints (x, y, v) for persons 1..N (row i is
            person i+1), None when unlabelled.
        boxes: (N, 4) float32 xyxy boxes of persons 1..N (from the human map).
        descriptions: per-person ground-truth descriptions (synthetic data), or None.
        source: where the sample came from (for error messages).
    """

    image_id: str
    image: np.ndarray
    parts: np.ndarray
    humans: np.ndarray
    boxes: np.ndarray
    color: np.ndarray | None = None
    size: np.ndarray | None = None
    pattern: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    descriptions: list[dict[str, Any]] | None = None
    source: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        where = f" ({self.source})" if self.source else ""
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"image must be (H, W, 3) uint8, got {self.image.shape} {self.image.dtype}{where}"
            )
        hw = self.image.shape[:2]
        for name in ("parts", "humans", "color", "size", "pattern"):
            value = getattr(self, name)
            if value is not None and value.shape != hw:
                raise ValueError(f"{name} map has shape {value.shape}, image is {hw}{where}")
        n = self.num_persons
        if self.boxes.shape != (n, 4):
            raise ValueError(f"boxes must have shape ({n}, 4), got {self.boxes.shape}{where}")
        if self.keypoints is not None and self.keypoints.shape != (n, NUM_KEYPOINTS, 3):
            raise ValueError(
                f"keypoints must have shape ({n}, {NUM_KEYPOINTS}, 3), "
                f"got {self.keypoints.shape}{where}"
            )

    @property
    def num_persons(self) -> int:
        return int(self.humans.max()) if self.humans.size else 0

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])

    @property
    def has_characteristics(self) -> bool:
        return self.color is not None and self.size is not None and self.pattern is not None


def boxes_from_humans(humans: np.ndarray, num_persons: int | None = None) -> np.ndarray:
    """(N, 4) float32 tight xyxy boxes (x1/y1 exclusive) of persons 1..N in a human map.

    A person with no visible pixel gets a zero box.
    """
    n = int(humans.max()) if num_persons is None and humans.size else (num_persons or 0)
    boxes = np.zeros((n, 4), dtype=np.float32)
    if n == 0:
        return boxes
    ys, xs = np.nonzero(humans)
    ids = humans[ys, xs].astype(np.int64) - 1
    keep = ids < n
    ys, xs, ids = ys[keep], xs[keep], ids[keep]
    big = np.iinfo(np.int64).max
    x0 = np.full(n, big)
    y0 = np.full(n, big)
    x1 = np.full(n, -1)
    y1 = np.full(n, -1)  # noqa: E702
    np.minimum.at(x0, ids, xs)
    np.minimum.at(y0, ids, ys)  # noqa: E702
    np.maximum.at(x1, ids, xs)
    np.maximum.at(y1, ids, ys)  # noqa: E702
    present = x1 >= 0
    boxes[present] = np.stack([x0, y0, x1 + 1, y1 + 1], axis=1)[present]
    return boxes
