"""Running a parser on BGR frames, and turning its people into evaluation maps.

- :class:`Parser`: letterbox -> one batched ``backend.infer`` -> postprocess, for the pipeline
  (``parse(frames) -> list[Persons]``).
- :class:`Predictor`: ``predict(sample, image_id) -> Prediction`` for ``describeme eval`` and
  the evaluation during training; it paints each person's parts and characteristic argmax
  into dataset-layout maps with :func:`persons_to_prediction`.

Build them from a checkpoint or a bundled name with :mod:`describeme.models.registry`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from describeme.geometry import Letterbox
from describeme.labels import NUM_PARTS, PART_HAS_COLOR, PART_HAS_PATTERN, PART_HAS_SIZE
from describeme.models.metrics.evaluator import Prediction, Scores
from describeme.types import Persons

PART_INSTANCE_STRIDE = 22  # part-instance id 22*(person-1)+class (describeme.data.layout)
# Which parts carry each characteristic; others are painted 0 (= none) as in the datasets.
_ALLOWED: dict[str, frozenset[int]] = {
    "color": PART_HAS_COLOR,
    "size": PART_HAS_SIZE,
    "pattern": PART_HAS_PATTERN,
}
Postprocess = Callable[[dict[str, Any], Sequence[Letterbox]], list[Persons]]


def to_model_input(image_bgr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 RGB in [0, 1] (the model normalises inside)."""
    return np.ascontiguousarray(
        (image_bgr[..., ::-1].astype(np.float32) * np.float32(1 / 255)).transpose(2, 0, 1)
    )


class Parser:
    """A model behind a runtime backend, from frames to :class:`Persons`.

    Args:
        backend: a runtime backend (``infer(images) -> raw heads``).
        postprocess: decoder ``(outputs, letterboxes) -> list[Persons]``.
        input_size: (height, width) the frames are letterboxed to.
        model_name: for messages and summaries.
    """

    def __init__(
        self,
        *,
        backend: Any,
        postprocess: Postprocess,
        input_size: tuple[int, int],
        model_name: str = "hptr",
    ) -> None:
        if len(input_size) != 2 or min(input_size) <= 0 or any(v % 32 for v in input_size):
            raise ValueError(f"input_size must be (H, W) multiples of 32, got {input_size}")
        self.backend, self.postprocess = backend, postprocess
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.model_name = model_name

    def parse(self, frames: Sequence[np.ndarray]) -> list[Persons]:
        """Parses BGR frames of any sizes in one batch; boxes/masks in each frame's pixels."""
        return self.decode(self.infer(frames)) if len(frames) else []

    def infer(self, frames: Sequence[np.ndarray]) -> tuple[Any, list[Letterbox]]:
        """The first half of :meth:`parse`: letterbox and run the network on a non-empty
        batch. Returns the raw head outputs and the letterboxes, for :meth:`decode` (which
        may run in another thread while the next batch is here)."""
        if not frames:
            raise ValueError("infer needs at least one frame")
        for index, frame in enumerate(frames):
            if not isinstance(frame, np.ndarray) or frame.ndim != 3 or frame.shape[2] != 3:
                shape = getattr(frame, "shape", type(frame).__name__)
                raise ValueError(f"frame {index} must be an (H, W, 3) BGR array, got {shape}")
        boxes = [Letterbox.fit(f.shape[:2], self.input_size) for f in frames]
        images = np.stack(
            [to_model_input(b.apply(f)) for f, b in zip(frames, boxes, strict=True)]
        )  # (B, 3, H, W)
        return self.backend.infer(images), boxes

    def decode(self, raw: tuple[Any, list[Letterbox]]) -> list[Persons]:
        """The second half of :meth:`parse`: the postprocess of :meth:`infer`'s result."""
        outputs, boxes = raw
        return self.postprocess(outputs, boxes)


class Predictor:
    """``predict(sample, image_id) -> Prediction`` on top of a :class:`Parser`."""

    def __init__(self, parser: Parser) -> None:
        self.parser = parser

    def __call__(self, sample: Any, image_id: str) -> Prediction:
        image = sample.image
        persons = self.parser.parse([image])[0]
        prediction = persons_to_prediction(persons, image.shape[:2])
        prediction.source = f"{self.parser.model_name} on {image_id}"
        return prediction


def persons_to_prediction(persons: Persons, image_size: tuple[int, int]) -> Prediction:
    """Paints people into dataset-layout maps with scores.

    Args:
        persons: people with ``masks`` (part labels in frame pixels) and optionally
            ``part_score``/``quality``/``color``/``size``/``pattern`` fields.
        image_size: (height, width) of the frame.

    Returns:
        ``parts``/``humans`` maps, the per-part argmax ``color``/``size``/``pattern`` maps
        (None when the model has no such field), and scores: ranking ``score`` (person score;
        part instance = person score x mean part probability) and ``qam`` (QAM quality). People
        are numbered 1..P by decreasing score; people left with no pixel are dropped from the
        maps. ``keypoints`` (every person's, scored by the person score) when the model has
        them.
    """
    height, width = int(image_size[0]), int(image_size[1])
    if persons.masks is None:
        raise ValueError("persons need masks to be painted into a prediction")
    humans = np.zeros((height, width), np.uint16)
    parts = np.zeros((height, width), np.uint8)
    kinds = [k for k in _ALLOWED if getattr(persons, k) is not None]
    maps = {k: np.zeros((height, width), np.uint8) for k in kinds}
    order = np.argsort(-persons.score, kind="stable")
    for index in order[::-1]:  # lowest score first: stronger people end on top
        mask = persons.masks[index]
        if tuple(mask.image_size) != (height, width):
            raise ValueError(
                f"person {index} mask is for a {mask.image_size} frame, expected {(height, width)}"
            )
        x0, y0, x1, y1 = mask.box
        crop = mask.decode()
        inside = crop > 0
        if not inside.any():
            continue
        humans[y0:y1, x0:x1][inside] = index + 1  # provisional id, renumbered below
        parts[y0:y1, x0:x1][inside] = crop[inside]
        for kind in kinds:
            table = _argmax_table(getattr(persons, kind)[index], _ALLOWED[kind])
            maps[kind][y0:y1, x0:x1][inside] = table[crop[inside]]
    return _renumbered(persons, humans, parts, maps, order)


def _argmax_table(distribution: np.ndarray, allowed: frozenset[int]) -> np.ndarray:
    """(22, C) per-part distribution -> (22,) uint8 class per part, 0 where not allowed."""
    table = distribution.argmax(-1).astype(np.uint8)
    mask = np.zeros(NUM_PARTS, bool)
    mask[list(allowed)] = True
    return np.where(mask & (distribution.sum(-1) > 0), table, 0).astype(np.uint8)


def _renumbered(
    persons: Persons,
    humans: np.ndarray,
    parts: np.ndarray,
    maps: dict[str, np.ndarray],
    order: np.ndarray,
) -> Prediction:
    """Numbers visible people 1..P by decreasing score and builds their score tables."""
    visible = set(np.unique(humans).tolist()) - {0}
    lookup = np.zeros(len(persons) + 1, np.uint16)
    raw, qam = Scores(), Scores()
    new_id = 0
    for index in order:
        if int(index) + 1 not in visible:
            continue
        new_id += 1
        lookup[index + 1] = new_id
        score = float(persons.score[index])
        raw.persons[new_id] = score
        if persons.quality is not None:
            qam.persons[new_id] = float(persons.quality[index])
        present = np.unique(parts[humans == index + 1])
        for cls in present[present > 0].tolist():
            part_score = (
                1.0 if persons.part_score is None else float(persons.part_score[index, cls])
            )
            instance = PART_INSTANCE_STRIDE * (new_id - 1) + cls
            raw.parts[instance] = score * part_score
            if persons.quality is not None:
                qam.parts[instance] = float(persons.quality[index]) * part_score
    scores = {"score": raw}
    if persons.quality is not None:
        scores["qam"] = qam
    # Poses are scored on their own (COCO keypoint AP): every decoded person, painted or not.
    return Prediction(
        parts=parts,
        humans=lookup[humans],
        color=maps.get("color"),
        size=maps.get("size"),
        pattern=maps.get("pattern"),
        scores=scores,
        keypoints=persons.keypoints,
        keypoint_scores=None if persons.keypoints is None else persons.score,
    )
