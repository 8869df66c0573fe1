"""``Persons``: the people found in one frame, as equal-length numpy fields.

Modelled on supervision's ``Detections`` and detectron2's ``Instances``: every field is an
array whose first axis is the person, so a boolean mask or an index array selects people from
all fields at once. Boxes are absolute pixel xyxy (the one box format between stages).
Optional fields are ``None`` when a model does not produce them (HPTR has no keypoints).

Per-part characteristic fields hold distributions, not argmaxes, so the describer can vote
with confidences over frames:

- ``part_area[i, p]``: pixels of part ``p`` in person ``i``'s part map.
- ``part_score[i, p]``: mean probability of part ``p`` over those pixels (QAM-style).
- ``color[i, p, c]``: area- and probability-weighted distribution over color classes of part
  ``p``; rows sum to 1 where the part is present, 0 elsewhere. Same for ``size``/``pattern``.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from describeme.labels import NUM_COLORS, NUM_KEYPOINTS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES
from describeme.masks import RunLengthMask

# Trailing shape and dtype of each array field; the leading axis is always N.
_ARRAY_FIELDS: dict[str, tuple[tuple[int, ...], type]] = {
    "xyxy": ((4,), np.float32),
    "score": ((), np.float32),
    "track_id": ((), np.int64),
    "keypoints": ((NUM_KEYPOINTS, 3), np.float32),
    "quality": ((), np.float32),
    "part_area": ((NUM_PARTS,), np.float32),
    "part_score": ((NUM_PARTS,), np.float32),
    "color": ((NUM_PARTS, NUM_COLORS), np.float32),
    "size": ((NUM_PARTS, NUM_SIZES), np.float32),
    "pattern": ((NUM_PARTS, NUM_PATTERNS), np.float32),
}
_OPTIONAL = ("keypoints", "quality", "part_area", "part_score", "color", "size", "pattern")


@dataclass(eq=False)
class Persons:
    """People in one frame. See the module docstring for field meanings.

    Attributes:
        xyxy: (N, 4) float32 absolute pixel boxes (x0, y0, x1, y1).
        score: (N,) float32 detection confidence in [0, 1].
        track_id: (N,) int64 track id, -1 = not tracked.
        keypoints: (N, 17, 3) float32 COCO keypoints (x, y, score); score 0 = absent.
        masks: N run-length masks holding the person's part labels (or 1 for binary).
        quality: (N,) float32 QAM instance quality.
        part_area: (N, 22) float32 pixels per CCIHP part.
        part_score: (N, 22) float32 mean part probability.
        color: (N, 22, 13) float32 per-part color distribution.
        size: (N, 22, 5) float32 per-part size distribution.
        pattern: (N, 22, 5) float32 per-part pattern distribution.
    """

    xyxy: np.ndarray
    score: np.ndarray
    track_id: np.ndarray | None = None
    keypoints: np.ndarray | None = None
    masks: list[RunLengthMask] | None = None
    quality: np.ndarray | None = None
    part_area: np.ndarray | None = None
    part_score: np.ndarray | None = None
    color: np.ndarray | None = None
    size: np.ndarray | None = None
    pattern: np.ndarray | None = None
    _n: int = field(init=False, repr=False, default=0)

    def __post_init__(self) -> None:
        xyxy = np.asarray(self.xyxy, dtype=np.float32)
        if xyxy.ndim != 2 or xyxy.shape[1] != 4:
            raise ValueError(f"xyxy must have shape (N, 4), got {xyxy.shape}")
        n = xyxy.shape[0]
        self.xyxy = xyxy
        if self.track_id is None:
            self.track_id = np.full(n, -1, dtype=np.int64)
        for name, (trailing, dtype) in _ARRAY_FIELDS.items():
            value = getattr(self, name)
            if value is None:
                continue
            array: np.ndarray = np.asarray(value, dtype=dtype)
            expected = (n, *trailing)
            if array.shape != expected:
                raise ValueError(f"Persons.{name} must have shape {expected}, got {array.shape}")
            setattr(self, name, array)
        if self.masks is not None:
            self.masks = list(self.masks)
            if len(self.masks) != n:
                raise ValueError(f"Persons.masks must hold {n} masks, got {len(self.masks)}")
            for mask in self.masks:
                if not isinstance(mask, RunLengthMask):
                    raise TypeError(
                        f"Persons.masks holds {type(mask).__name__}, expected RunLengthMask"
                    )
        self._n = n

    @classmethod
    def empty(cls, **optional: bool) -> Persons:
        """No people. Pass ``keypoints=True`` etc. to get zero-length optional fields too."""
        kwargs: dict[str, Any] = {}
        for name in _OPTIONAL:
            if optional.get(name):
                trailing, dtype = _ARRAY_FIELDS[name]
                kwargs[name] = np.zeros((0, *trailing), dtype=dtype)
        if optional.get("masks"):
            kwargs["masks"] = []
        return cls(xyxy=np.zeros((0, 4), np.float32), score=np.zeros(0, np.float32), **kwargs)

    def __len__(self) -> int:
        return self._n

    def __iter__(self) -> Iterator[Persons]:
        for i in range(self._n):
            yield self[i : i + 1]

    def __getitem__(self, index: int | slice | Sequence[int] | np.ndarray) -> Persons:
        """Selects people by int, slice, index array or boolean mask; always returns Persons."""
        if isinstance(index, (int, np.integer)):
            if not -self._n <= int(index) < self._n:
                raise IndexError(f"person index {index} out of range for {self._n} persons")
            index = [int(index) % self._n]
        if isinstance(index, slice):
            selector: Any = index
            positions = list(range(self._n))[index]
        else:
            selector = np.asarray(index)
            if selector.dtype == bool:
                if selector.shape != (self._n,):
                    raise ValueError(
                        f"boolean index must have shape ({self._n},), got {selector.shape}"
                    )
                positions = np.flatnonzero(selector).tolist()
            else:
                selector = selector.astype(np.int64).reshape(-1)
                positions = selector.tolist()
        kwargs: dict[str, Any] = {}
        for name in _ARRAY_FIELDS:
            value = getattr(self, name)
            kwargs[name] = None if value is None else value[selector]
        kwargs["masks"] = None if self.masks is None else [self.masks[i] for i in positions]
        return Persons(**kwargs)

    @staticmethod
    def cat(items: Sequence[Persons]) -> Persons:
        """Concatenates persons; an optional field survives only if every part has it."""
        if not items:
            return Persons.empty()
        kwargs: dict[str, Any] = {}
        for name in _ARRAY_FIELDS:
            values = [getattr(item, name) for item in items]
            kwargs[name] = None if any(v is None for v in values) else np.concatenate(values)
        masks = [item.masks for item in items]
        kwargs["masks"] = None if any(m is None for m in masks) else [m for ms in masks for m in ms]  # type: ignore[union-attr]
        return Persons(**kwargs)

    def with_track_ids(self, track_id: np.ndarray) -> Persons:
        """Returns a shallow copy with ``track_id`` replaced (validated)."""
        kwargs = {f.name: getattr(self, f.name) for f in fields(self) if f.init}
        kwargs["track_id"] = track_id
        return Persons(**kwargs)

    @property
    def area(self) -> np.ndarray:
        """(N,) float32 box areas in pixels."""
        wh = np.clip(self.xyxy[:, 2:] - self.xyxy[:, :2], 0, None)
        return wh[:, 0] * wh[:, 1]

    def nbytes(self) -> int:
        """Approximate payload size in bytes (what crosses an actor boundary)."""
        total = sum(getattr(self, n).nbytes for n in _ARRAY_FIELDS if getattr(self, n) is not None)
        return total + sum(m.nbytes() for m in self.masks or [])

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, Persons):
            return NotImplemented
        for name in _ARRAY_FIELDS:
            a, b = getattr(self, name), getattr(other, name)
            if (a is None) != (b is None) or (a is not None and not np.array_equal(a, b)):
                return False
        return self.masks == other.masks

    __hash__ = None  # type: ignore[assignment]

    def __repr__(self) -> str:
        present = [n for n in _OPTIONAL if getattr(self, n) is not None]
        if self.masks is not None:
            present.append("masks")
        return f"Persons(n={self._n}, fields={present})"
