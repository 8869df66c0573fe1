"""A test-double parser: emits ``Persons`` from a synthetic video's ground truth.

No trained model is bundled yet, so the pipeline and its tests need something that produces
plausible parser output for the synthetic videos. :class:`GroundTruthParser` reads a video's
sidecar ground truth and, for the frame it is given, emits the people that are really there:
boxes from ``gt/gt.txt``, per-part area/score/color/size/pattern distributions from the
per-track descriptions in ``tracks.json`` (optionally blurred by seeded noise), or exact
distributions and masks from rendered :class:`~describeme.data.sample.Sample` label maps
(:func:`persons_from_sample`). It is a test double, selected only by an explicit
``--model standin``; it never reads pixels to find people and must not be mistaken for a model.

Sidecar lookup for a video file ``DIR/video.mp4``: ``DIR/gt/gt.txt`` + ``DIR/tracks.json``
(the synthetic video layout of :mod:`describeme.data.layout`), else ``DIR/<stem>_gt.txt`` +
``DIR/<stem>_tracks.json`` (the bundled sample clip's naming).
"""

from __future__ import annotations

import json
import logging
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from describeme import labels as L
from describeme.data import layout
from describeme.data.sample import Sample
from describeme.errors import DataError
from describeme.masks import RunLengthMask
from describeme.messages import Frame, ParsedFrame
from describeme.operators.annotate import crop_jpeg
from describeme.types import Persons

log = logging.getLogger(__name__)

# Share of a person's box each part covers when fully visible: a rough body-layout prior, so
# areas (which weight the describer's votes) are plausible without label maps.
PART_BOX_SHARE: dict[int, float] = {
    L.HAT: 0.03, L.HAIR: 0.05, L.GLOVE: 0.01, L.GLASSES: 0.005, L.UPPER_CLOTHES: 0.22,
    L.FACE_MASK: 0.01, L.COAT: 0.26, L.SOCKS: 0.01, L.PANTS: 0.2, L.SCARF_TIE: 0.02,
    L.SKIRT: 0.12, L.LEFT_SHOE: 0.015, L.RIGHT_SHOE: 0.015, L.BAG: 0.05, L.OTHERS: 0.01,
    L.FACE: 0.03, L.TORSO_SKIN: 0.02, L.LEFT_ARM: 0.03, L.RIGHT_ARM: 0.03, L.LEFT_LEG: 0.03,
    L.RIGHT_LEG: 0.03,
}  # fmt: skip
_SKIN_ALWAYS = (L.FACE, L.LEFT_ARM, L.RIGHT_ARM)


@dataclass(frozen=True)
class GroundTruthBox:
    """One ``gt.txt`` row: a person's box in a frame (1-based MOT frame number)."""

    frame: int
    track: int
    xyxy: tuple[float, float, float, float]
    visibility: float


def _part_ids(name: str) -> tuple[int, ...]:
    """CCIHP part ids a description key names (a part name or a left/right group name)."""
    if name in L.DESCRIPTION_GROUPS:
        return L.DESCRIPTION_GROUPS[name]
    if name in L.PART_ID:
        return (L.PART_ID[name],)
    raise DataError(f"unknown part name {name!r} in ground-truth description; expected one of "
                    f"{sorted(set(L.DESCRIPTION_GROUPS) | set(L.PARTS[1:]))}")


def read_gt_boxes(path: Path) -> dict[int, list[GroundTruthBox]]:
    """Reads a MOT ``gt.txt`` into ``{frame: [boxes]}`` (frames 1-based, as in the file)."""
    rows: dict[int, list[GroundTruthBox]] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        fields = line.split(",")
        try:
            frame, track = int(float(fields[0])), int(float(fields[1]))
            x, y, w, h = (float(v) for v in fields[2:6])
            visibility = float(fields[8]) if len(fields) > 8 else 1.0
        except (ValueError, IndexError):
            raise DataError(f"{path}:{number}: expected 'frame,id,x,y,w,h,conf,class,visibility', "
                            f"got {line.strip()!r}") from None
        box = GroundTruthBox(frame, track, (x, y, x + w, y + h), visibility)
        rows.setdefault(frame, []).append(box)
    return rows


def find_sidecars(video: str | Path) -> tuple[Path, Path]:
    """``(gt.txt, tracks.json)`` next to a synthetic video; DataError naming both layouts."""
    video = Path(video)
    candidates = [
        (video.parent / layout.MOT_GT, video.parent / layout.TRACKS_JSON),
        (video.with_name(f"{video.stem}_gt.txt"), video.with_name(f"{video.stem}_tracks.json")),
    ]
    for gt, tracks in candidates:
        if gt.is_file() and tracks.is_file():
            return gt, tracks
    raise DataError(
        f"the stand-in parser needs ground truth next to {video}: {candidates[0][0]} + "
        f"{candidates[0][1]}, or {candidates[1][0].name} + {candidates[1][1].name}; it only works "
        "on synthetic clips ('describeme data synth --video'), not on real video"
    )


class VideoGroundTruth:
    """Boxes and descriptions of one synthetic video, looked up by frame.

    Args:
        gt_path: MOT ``gt.txt``.
        tracks_path: ``tracks.json`` with ``fps`` and per-track description segments.
    """

    def __init__(self, gt_path: Path, tracks_path: Path) -> None:
        self.boxes = read_gt_boxes(gt_path)
        try:
            data = json.loads(tracks_path.read_text(encoding="utf-8"))
            self.fps = float(data.get("fps") or 0.0)
            self.segments: dict[int, list[dict[str, Any]]] = {
                int(t["id"]): sorted(t.get("segments", []), key=lambda s: int(s["from_frame"]))
                for t in data["tracks"]
            }
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise DataError(
                f"{tracks_path}: not a tracks.json ({type(exc).__name__}: {exc})") from None

    def mot_frame(self, frame: Frame) -> int:
        """The 1-based ground-truth frame of a decoded frame: from pts when the fps is known
        (exact under frame sampling), else from the frame index."""
        if self.fps > 0:
            return int(round(frame.pts * self.fps)) + 1
        return frame.frame_index + 1

    def parts_at(self, track: int, mot_frame: int) -> dict[str, dict[str, Any]]:
        """The description segment of ``track`` covering ``mot_frame`` (nearest if none does)."""
        segments = self.segments.get(track)
        if not segments:
            return {}
        for segment in segments:
            if int(segment["from_frame"]) <= mot_frame <= int(segment["to_frame"]):
                return segment.get("parts", {})
        nearest = min(segments, key=lambda s: min(abs(int(s["from_frame"]) - mot_frame),
                                                  abs(int(s["to_frame"]) - mot_frame)))
        return nearest.get("parts", {})


def _one_hot_noisy(size: int, index: int, flip_prob: float, rng: np.random.Generator) -> np.ndarray:
    """A distribution peaked at ``index``; with ``flip_prob`` the peak moves to another class."""
    dist = np.zeros(size, np.float32)
    if flip_prob > 0 and rng.random() < flip_prob and size > 2:
        index = int(rng.choice([i for i in range(1, size) if i != index]))
    dist[index] = 1.0
    return dist


class GroundTruthParser:
    """Emits ground-truth persons for frames of registered synthetic videos (a test double).

    Args:
        seed: seeds the noise; output depends only on (seed, stream, frame), not on batching.
        box_jitter: box corner noise as a fraction of box size (0 = exact boxes).
        drop_prob: probability that a visible person is missed in a frame.
        flip_prob: probability that a part's color/size/pattern peak moves to a wrong class.
        min_visibility: people less visible than this are not reported.
        thumbnail_height: JPEG thumbnail height in pixels (0 = no thumbnails).
    """

    def __init__(self, *, seed: int = 0, box_jitter: float = 0.0, drop_prob: float = 0.0,
                 flip_prob: float = 0.0, min_visibility: float = 0.15,
                 thumbnail_height: int = 96) -> None:
        for name, value in (("box_jitter", box_jitter), ("drop_prob", drop_prob),
                            ("flip_prob", flip_prob), ("min_visibility", min_visibility)):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"GroundTruthParser {name} must lie in [0, 1], got {value}")
        self.seed, self.box_jitter, self.drop_prob = int(seed), box_jitter, drop_prob
        self.flip_prob, self.min_visibility = flip_prob, min_visibility
        self.thumbnail_height = int(thumbnail_height)
        self._streams: dict[str, VideoGroundTruth] = {}

    def register_stream(self, stream_id: str, uri: str) -> None:
        """Loads the ground truth of the video ``uri`` for frames of ``stream_id``."""
        gt, tracks = find_sidecars(uri)
        self._streams[stream_id] = VideoGroundTruth(gt, tracks)
        log.info("stand-in parser: ground truth for stream %s from %s", stream_id, gt.parent)

    def parse(self, frames: list[Frame]) -> list[ParsedFrame]:
        """One :class:`ParsedFrame` per frame, people from the ground truth."""
        return [self._parse_one(frame) for frame in frames]

    def _parse_one(self, frame: Frame) -> ParsedFrame:
        truth = self._streams.get(frame.stream_id)
        if truth is None:
            raise DataError(f"stand-in parser has no ground truth for stream {frame.stream_id!r}; "
                            "call register_stream(stream_id, video_path) first")
        rng = np.random.default_rng(
            [self.seed, zlib.crc32(frame.stream_id.encode()), frame.frame_index])
        mot_frame = truth.mot_frame(frame)
        height, width = frame.image.shape[:2]
        boxes = [b for b in truth.boxes.get(mot_frame, []) if b.visibility >= self.min_visibility]
        boxes = [b for b in boxes if not (self.drop_prob and rng.random() < self.drop_prob)]
        candidates = [self._person(b, truth.parts_at(b.track, mot_frame), (height, width), rng)
                      for b in boxes]
        persons = [p for p in candidates if p is not None]
        result = Persons.cat(persons) if persons else _empty_persons()
        thumbs = [] if self.thumbnail_height <= 0 else [
            crop_jpeg(frame.image, xyxy, self.thumbnail_height) for xyxy in result.xyxy]
        return ParsedFrame(frame.stream_id, frame.frame_index, frame.pts, frame.capture_time,
                           (height, width), result, thumbnails=thumbs or None)

    def _person(self, box: GroundTruthBox, parts: dict[str, dict[str, Any]],
                image_size: tuple[int, int], rng: np.random.Generator) -> Persons | None:
        xyxy = np.array(box.xyxy, np.float32)
        size = np.tile(xyxy[2:] - xyxy[:2], 2)
        if self.box_jitter:
            xyxy = xyxy + rng.normal(0.0, self.box_jitter, 4).astype(np.float32) * size
        height, width = image_size
        xyxy = np.clip(xyxy, 0, [width, height, width, height]).astype(np.float32)
        if xyxy[2] - xyxy[0] < 1 or xyxy[3] - xyxy[1] < 1:
            return None
        box_area = float((xyxy[2] - xyxy[0]) * (xyxy[3] - xyxy[1]))
        fields = _description_fields(parts, box_area * box.visibility, self.flip_prob, rng)
        score = np.float32(np.clip(0.6 + 0.4 * box.visibility, 0, 1))
        per_part: dict[str, Any] = {k: v[None] for k, v in fields.items()}  # (1, 22, ...)
        return Persons(xyxy=xyxy[None], score=np.array([score]),
                       quality=np.array([score * np.float32(box.visibility)]), **per_part)

def _empty_persons() -> Persons:
    return Persons.empty(quality=True, part_area=True, part_score=True, color=True, size=True,
                         pattern=True)


def _description_fields(parts: dict[str, dict[str, Any]], visible_area: float, flip_prob: float,
                        rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Per-part (22,) area/score and (22, K) color/size/pattern rows from a description."""
    area = np.zeros(L.NUM_PARTS, np.float32)
    score = np.zeros(L.NUM_PARTS, np.float32)
    dists = {kind: np.zeros((L.NUM_PARTS, len(names)), np.float32)
             for kind, names in L.CHARACTERISTICS.items()}
    present: list[tuple[int, dict[str, Any]]] = [(p, {}) for p in _SKIN_ALWAYS]
    for name, attributes in parts.items():
        present.extend((p, attributes or {}) for p in _part_ids(name))
    for part, attributes in present:
        area[part] = PART_BOX_SHARE.get(part, 0.01) * visible_area
        score[part] = 0.9
        for kind, names in L.CHARACTERISTICS.items():
            value = attributes.get(kind)
            if value is None or part in L.SKIN_PARTS:
                continue
            index = L.characteristic_id(kind, value)
            if index:
                dists[kind][part] = _one_hot_noisy(len(names), index, flip_prob, rng)
    return {"part_area": area, "part_score": score, **dists}


def persons_from_sample(sample: Sample) -> Persons:
    """Exact persons from a rendered sample's label maps: boxes, part-map masks, per-part
    areas and characteristic distributions counted pixel by pixel (part_score = 1)."""
    n = sample.num_persons
    if n == 0:
        return _empty_persons()
    masks, areas = [], np.zeros((n, L.NUM_PARTS), np.float32)
    dists = {kind: np.zeros((n, L.NUM_PARTS, len(names)), np.float32)
             for kind, names in L.CHARACTERISTICS.items()}
    height, width = sample.parts.shape
    for i in range(n):
        on = sample.humans == i + 1
        parts = np.where(on, sample.parts, 0).astype(np.uint8)
        parts[parts == 255] = 0
        masks.append(RunLengthMask.encode(parts, image_size=(height, width)))
        areas[i] = np.bincount(parts[on], minlength=L.NUM_PARTS)[: L.NUM_PARTS]
        for kind in dists:
            values = getattr(sample, kind)
            if values is None:
                continue
            k = dists[kind].shape[2]
            pair = parts[on].astype(np.int64) * k + np.where(values[on] < k, values[on], 0)
            counts = np.bincount(pair, minlength=L.NUM_PARTS * k).reshape(L.NUM_PARTS, k)
            counts[:, 0] = 0
            totals = counts.sum(1, keepdims=True)
            dists[kind][i] = np.divide(counts, totals, out=np.zeros_like(counts, np.float32),
                                       where=totals > 0)
    return Persons(xyxy=sample.boxes.astype(np.float32), score=np.ones(n, np.float32),
                   masks=masks, quality=np.ones(n, np.float32), part_area=areas,
                   part_score=(areas > 0).astype(np.float32), **dists)
