"""Compact, exact per-person masks.

A person's mask travels between actors as a :class:`RunLengthMask`: the person's label map
cropped to a box and run-length encoded in row-major order. Values are small integers (CCIHP
part ids for a parsed person, 1 for a plain binary mask), so one structure carries both the
instance mask (``labels > 0``) and the person's part map. Encoding is exact: ``decode`` returns
the same array that was encoded.

Sizes: a 100x250 px person with 15 parts is typically a few hundred runs (a few KB), against
25 KB for the raw crop and 750 KB for a full-HD boolean mask.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True, eq=False)
class RunLengthMask:
    """A label map of one person inside a crop box, run-length encoded row by row.

    Attributes:
        box: (x0, y0, x1, y1) integer pixel crop box, x1/y1 exclusive, inside the image.
        image_size: (height, width) of the full image the box lives in.
        values: (R,) uint8 label of each run.
        lengths: (R,) uint32 length of each run; sums to the crop's area.
    """

    box: tuple[int, int, int, int]
    image_size: tuple[int, int]
    values: np.ndarray
    lengths: np.ndarray

    def __post_init__(self) -> None:
        x0, y0, x1, y1 = self.box
        height, width = self.image_size
        if not (0 <= x0 <= x1 <= width and 0 <= y0 <= y1 <= height):
            raise ValueError(f"mask box {self.box} is not inside image of size {self.image_size}")
        if self.values.shape != self.lengths.shape or self.values.ndim != 1:
            raise ValueError(
                f"values and lengths must be equal-length 1-D arrays, got {self.values.shape} "
                f"and {self.lengths.shape}"
            )
        if int(self.lengths.sum()) != (x1 - x0) * (y1 - y0):
            raise ValueError(
                f"run lengths sum to {int(self.lengths.sum())}, expected crop area "
                f"{(x1 - x0) * (y1 - y0)}"
            )

    @classmethod
    def encode(
        cls,
        labels: np.ndarray,
        offset: tuple[int, int] = (0, 0),
        image_size: tuple[int, int] | None = None,
        crop: bool = True,
    ) -> RunLengthMask:
        """Encodes a label map, by default cropped to its non-zero bounding box.

        Args:
            labels: (h, w) integer or boolean map, values in [0, 255].
            offset: (x, y) of ``labels``' top-left pixel in the full image.
            image_size: (height, width) of the full image; defaults to ``labels``' shape
                plus the offset.
            crop: crop to the tight box of non-zero pixels first (empty mask -> empty box).

        Returns:
            The encoded mask.
        """
        labels = np.asarray(labels)
        if labels.ndim != 2:
            raise ValueError(f"expected a (h, w) label map, got shape {labels.shape}")
        if labels.dtype == bool:
            labels = labels.view(np.uint8)
        elif labels.dtype != np.uint8:
            if labels.size and (labels.min() < 0 or labels.max() > 255):
                raise ValueError("mask labels must lie in [0, 255]")
            labels = labels.astype(np.uint8)
        ox, oy = offset
        if image_size is None:
            image_size = (labels.shape[0] + oy, labels.shape[1] + ox)
        if crop:
            rows = np.flatnonzero(labels.any(axis=1))
            if rows.size == 0:
                return cls(
                    (ox, oy, ox, oy), image_size, np.zeros(0, np.uint8), np.zeros(0, np.uint32)
                )
            cols = np.flatnonzero(labels.any(axis=0))
            r0, r1, c0, c1 = rows[0], rows[-1] + 1, cols[0], cols[-1] + 1
            labels = labels[r0:r1, c0:c1]
            ox, oy = ox + int(c0), oy + int(r0)
        flat = np.ascontiguousarray(labels).reshape(-1)
        box = (ox, oy, ox + labels.shape[1], oy + labels.shape[0])
        if flat.size == 0:
            return cls(box, image_size, np.zeros(0, np.uint8), np.zeros(0, np.uint32))
        starts = np.flatnonzero(np.concatenate(([True], flat[1:] != flat[:-1])))
        lengths = np.diff(np.append(starts, flat.size)).astype(np.uint32)
        return cls(box, image_size, flat[starts].copy(), lengths)

    @classmethod
    def from_full(cls, labels: np.ndarray) -> RunLengthMask:
        """Encodes a full-image (H, W) label map, cropped to its non-zero box."""
        return cls.encode(labels, (0, 0), (int(labels.shape[0]), int(labels.shape[1])))

    @property
    def crop_shape(self) -> tuple[int, int]:
        x0, y0, x1, y1 = self.box
        return (y1 - y0, x1 - x0)

    @property
    def area(self) -> int:
        """Number of non-zero pixels."""
        return int(self.lengths[self.values > 0].sum())

    def decode(self) -> np.ndarray:
        """Returns the (h, w) uint8 crop exactly as encoded."""
        return np.repeat(self.values, self.lengths).reshape(self.crop_shape)

    def to_full(self) -> np.ndarray:
        """Returns the (H, W) uint8 label map over the whole image."""
        full = np.zeros(self.image_size, dtype=np.uint8)
        x0, y0, x1, y1 = self.box
        full[y0:y1, x0:x1] = self.decode()
        return full

    def to_binary(self) -> np.ndarray:
        """Returns the (H, W) boolean person mask (any non-zero label)."""
        return self.to_full() > 0

    def label_areas(self, num_labels: int) -> np.ndarray:
        """Returns (num_labels,) pixel counts per label value, without decoding."""
        return np.bincount(self.values, weights=self.lengths, minlength=num_labels)[:num_labels]

    def nbytes(self) -> int:
        return int(self.values.nbytes + self.lengths.nbytes)

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RunLengthMask):
            return NotImplemented
        return (
            self.box == other.box
            and self.image_size == other.image_size
            and np.array_equal(self.values, other.values)
            and np.array_equal(self.lengths, other.lengths)
        )

    __hash__ = None  # type: ignore[assignment]


def paste_masks(masks: Sequence[RunLengthMask], image_size: tuple[int, int]) -> np.ndarray:
    """Paints masks into one (H, W) int32 map of 1-based mask indices, later masks on top.

    Useful to draw or to build a Human_ids map from a list of persons; 0 = no mask.
    """
    out = np.zeros(image_size, dtype=np.int32)
    for index, mask in enumerate(masks, start=1):
        if mask.image_size != tuple(image_size):
            raise ValueError(f"mask {index - 1} is for image {mask.image_size}, not {image_size}")
        x0, y0, x1, y1 = mask.box
        crop = mask.decode() > 0
        region = out[y0:y1, x0:x1]
        region[crop] = index
    return out
