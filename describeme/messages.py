"""The messages that cross actor boundaries, one dataclass each.

Every message carries ``stream_id``, ``frame_index`` (index in the source after sampling) and
``pts`` (presentation time in seconds from the start of the stream), plus the wall-clock
``capture_time`` (Unix seconds) at which the frame was decoded. Payloads are numpy arrays and
plain Python values; torch tensors never leave the inference actor.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from describeme.geometry import Letterbox
from describeme.types import Persons


def _check_frame_keys(stream_id: str, frame_index: int, pts: float) -> None:
    if not isinstance(stream_id, str) or not stream_id:
        raise ValueError(f"stream_id must be a non-empty string, got {stream_id!r}")
    if frame_index < 0:
        raise ValueError(f"frame_index must be >= 0, got {frame_index}")
    if not math.isfinite(pts):  # np.isfinite costs 30x more on a Python float
        raise ValueError(f"pts must be finite seconds, got {pts}")


@dataclass
class Frame:
    """One decoded frame.

    Attributes:
        image: (H, W, 3) uint8 BGR pixels of the original frame.
    """

    stream_id: str
    frame_index: int
    pts: float
    capture_time: float
    image: np.ndarray

    def __post_init__(self) -> None:
        _check_frame_keys(self.stream_id, self.frame_index, self.pts)
        if self.image.ndim != 3 or self.image.shape[2] != 3 or self.image.dtype != np.uint8:
            raise ValueError(
                f"Frame.image must be (H, W, 3) uint8, got {self.image.shape} {self.image.dtype}"
            )


@dataclass
class FrameBatch:
    """Frames of one stream sent to the parser pool together.

    Attributes:
        frames: consecutive sampled frames of ``stream_id``.
        letterbox: the transform from frame pixels to model input, shared by all frames.
    """

    stream_id: str
    frames: list[Frame]
    letterbox: Letterbox | None = None

    def __post_init__(self) -> None:
        for frame in self.frames:
            if frame.stream_id != self.stream_id:
                raise ValueError(
                    f"FrameBatch for stream {self.stream_id!r} holds a frame of {frame.stream_id!r}"
                )

    def __len__(self) -> int:
        return len(self.frames)

    @property
    def frame_index(self) -> int:
        """Index of the first frame (-1 when empty)."""
        return self.frames[0].frame_index if self.frames else -1

    @property
    def pts(self) -> float:
        return self.frames[0].pts if self.frames else 0.0


@dataclass
class ParsedFrame:
    """A parser's output for one frame, in source-frame pixels.

    Attributes:
        image_size: (height, width) of the source frame.
        persons: the people found, boxes/keypoints/masks in source pixels.
        thumbnails: optional JPEG crop per person (same order as ``persons``), for the
            describer to keep the best one per track without shipping frames around.
        inference_ms: model + decoding time spent on this frame.
    """

    stream_id: str
    frame_index: int
    pts: float
    capture_time: float
    image_size: tuple[int, int]
    persons: Persons
    thumbnails: list[bytes] | None = None
    inference_ms: float = 0.0

    def __post_init__(self) -> None:
        _check_frame_keys(self.stream_id, self.frame_index, self.pts)
        if self.thumbnails is not None and len(self.thumbnails) != len(self.persons):
            raise ValueError(
                f"ParsedFrame has {len(self.persons)} persons but {len(self.thumbnails)} thumbnails"
            )


@dataclass
class TrackedFrame:
    """A parsed frame after tracking: ``persons.track_id`` is set for every matched person.

    Attributes:
        ended_tracks: ids of tracks removed at this frame (their descriptions are final).
    """

    stream_id: str
    frame_index: int
    pts: float
    capture_time: float
    image_size: tuple[int, int]
    persons: Persons
    thumbnails: list[bytes] | None = None
    ended_tracks: list[int] = field(default_factory=list)

    def __post_init__(self) -> None:
        _check_frame_keys(self.stream_id, self.frame_index, self.pts)
        if self.thumbnails is not None and len(self.thumbnails) != len(self.persons):
            raise ValueError(
                f"TrackedFrame has {len(self.persons)} persons "
                f"but {len(self.thumbnails)} thumbnails"
            )


@dataclass
class PartDescription:
    """The voted characteristics of one part (or merged left/right group) of a track.

    Each value is a label name from :mod:`describeme.labels` (or None when the part carries
    no such characteristic); each confidence is the winning share of the weighted vote.

    Attributes:
        shares: per characteristic kind, the vote share of every value that got at least
            ``SHARE_FLOOR`` of it, winner included (``{"color": {"dark": 0.42, "blue": 0.31}}``).
            Search credits a track whose runner-up is the asked value above one that never
            saw it; empty when unknown (ground truth, older records).
    """

    part: str
    presence: float
    color: str | None = None
    color_confidence: float = 0.0
    size: str | None = None
    size_confidence: float = 0.0
    pattern: str | None = None
    pattern_confidence: float = 0.0
    shares: dict[str, dict[str, float]] = field(default_factory=dict)


SHARE_FLOOR = 0.05  # smaller vote shares are left out of PartDescription.shares


@dataclass
class TrackDescription:
    """What the describer knows about one track; the sink upserts it keyed by
    (stream_id, track_id), so sending the same description twice is harmless.

    Attributes:
        frame_index, pts: the frame at which this description was produced.
        first_seen, last_seen: pts (seconds) of the track's first and last observation.
        first_seen_time, last_seen_time: wall-clock Unix seconds of the same.
        parts: voted description per part group present on the person.
        sentence: one-line English description.
        thumbnail: JPEG bytes of the best-quality observation, or None.
        quality: quality score of that thumbnail's observation.
        num_observations: frames in which the track was matched.
        final: True once the track has been removed (no more updates will follow).
    """

    stream_id: str
    track_id: int
    frame_index: int
    pts: float
    first_seen: float
    last_seen: float
    first_seen_time: float
    last_seen_time: float
    parts: list[PartDescription]
    sentence: str
    thumbnail: bytes | None = None
    quality: float = 0.0
    num_observations: int = 0
    final: bool = False

    def __post_init__(self) -> None:
        _check_frame_keys(self.stream_id, self.frame_index, self.pts)
        if self.track_id < 0:
            raise ValueError(f"TrackDescription.track_id must be >= 0, got {self.track_id}")
        if self.last_seen < self.first_seen:
            raise ValueError(f"last_seen {self.last_seen} precedes first_seen {self.first_seen}")

    @property
    def key(self) -> tuple[str, int]:
        return (self.stream_id, self.track_id)


@dataclass
class TrackEvent:
    """A change in a track's life or appearance, appended to the event stream.

    ``kind`` is one of ``appeared``, ``changed``, ``lost``, ``ended``; ``detail`` says what
    changed ("coat: present -> absent").
    """

    stream_id: str
    track_id: int
    frame_index: int
    pts: float
    kind: str
    detail: str = ""

    KINDS = ("appeared", "changed", "lost", "ended")

    def __post_init__(self) -> None:
        _check_frame_keys(self.stream_id, self.frame_index, self.pts)
        if self.kind not in self.KINDS:
            raise ValueError(f"TrackEvent.kind must be one of {self.KINDS}, got {self.kind!r}")

    @property
    def key(self) -> tuple[str, int, int, str]:
        """Idempotency key: the same event produced twice is written once."""
        return (self.stream_id, self.track_id, self.frame_index, self.kind)
