"""Per-stream IoU Hungarian tracker with a tentative -> confirmed -> lost -> removed lifecycle.

Follows detectron2's ``tracking/hungarian_tracker.py``: the cost between live tracks and the
frame's detections is ``1 - IoU`` (mask IoU when both sides have masks, box IoU otherwise),
pairs below ``min_iou`` are gated out, and ``scipy.optimize.linear_sum_assignment`` picks the
matches. All state lives on the instance, so two streams never share ids or counters, and
:meth:`HungarianTracker.state_dict` / :meth:`HungarianTracker.load_state_dict` move a stream's
tracker to another process.

Lifecycle:
- an unmatched detection with ``score >= min_score`` starts a *tentative* track;
- a tentative track matched in ``min_hits`` consecutive updates becomes *confirmed* and only
  then receives its public ``track_id`` (0, 1, 2, ... per tracker), so false positives never
  burn ids; a tentative track that misses one update is dropped;
- a confirmed track that misses an update is *lost*; its box keeps moving at the velocity a
  constant-velocity Kalman filter estimated, so it can be re-found; matched again it is
  confirmed again, with the same id;
- a lost track unseen for more than ``max_lost`` frames is *removed* and its id is reported
  once in :attr:`HungarianTracker.ended_tracks`.

Output: the same persons with ``track_id`` set; -1 for tentative tracks, detections below
``min_score`` and unmatched detections. The pipeline writes only ``track_id >= 0``.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

import numpy as np
from pydantic import Field

from describeme.config import StrictModel
from describeme.geometry import box_cxcywh_to_xyxy, box_xyxy_to_cxcywh
from describeme.masks import RunLengthMask
from describeme.messages import ParsedFrame, TrackedFrame
from describeme.operators.matching import iou_cost, linear_assignment
from describeme.types import Persons

log = logging.getLogger(__name__)

TENTATIVE, CONFIRMED, LOST = "tentative", "confirmed", "lost"
STATE_FORMAT = "describeme.hungarian_tracker/2"


# Constant-velocity Kalman filter on the box (cx, cy, w, h) and its per-frame velocity, with
# noise standard deviations proportional to the box height: the constants SORT and ByteTrack
# use. On TUD it cut ID switches against an exponential average of the centre's velocity.
_POSITION_STD, _VELOCITY_STD = 1 / 20, 1 / 160
_TRANSITION = np.eye(8) + np.eye(8, k=4)  # (8, 8): position += velocity per frame


def kalman_init(box: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(8,) mean and (8, 8) covariance of a new track at xyxy ``box``, velocity unknown."""
    height = max(float(box[3] - box[1]), 1.0)
    std = np.r_[[2 * _POSITION_STD * height] * 4, [10 * _VELOCITY_STD * height] * 4]
    return np.r_[box_xyxy_to_cxcywh(box).astype(np.float64), np.zeros(4)], np.diag(std**2)


def kalman_predict(mean: np.ndarray, covariance: np.ndarray, steps: np.ndarray
                   ) -> tuple[np.ndarray, np.ndarray]:
    """Moves K states ``steps`` frames ahead each, growing their uncertainty every frame.

    Args:
        mean: (K, 8) states; covariance: (K, 8, 8); steps: (K,) int frames ahead (>= 0).

    Returns:
        New (K, 8) means and (K, 8, 8) covariances (inputs are not modified).
    """
    mean, covariance = mean.copy(), covariance.copy()
    steps = np.asarray(steps, dtype=np.int64).reshape(-1)
    diagonal = np.arange(8)
    for step in range(int(steps.max(initial=0))):
        rows = np.flatnonzero(steps > step)
        height = np.maximum(mean[rows, 3], 1.0)[:, None]  # (R, 1)
        variance = np.concatenate([np.repeat((_POSITION_STD * height) ** 2, 4, axis=1),
                                   np.repeat((_VELOCITY_STD * height) ** 2, 4, axis=1)], axis=1)
        mean[rows] = mean[rows] @ _TRANSITION.T
        moved = _TRANSITION @ covariance[rows] @ _TRANSITION.T  # (R, 8, 8)
        moved[:, diagonal, diagonal] += variance
        covariance[rows] = moved
    return mean, covariance


def kalman_update(mean: np.ndarray, covariance: np.ndarray, boxes: np.ndarray
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Corrects K predicted states with their observed boxes.

    Args:
        mean: (K, 8); covariance: (K, 8, 8); boxes: (K, 4) observed xyxy boxes.

    Returns:
        Corrected (K, 8) means and (K, 8, 8) covariances.
    """
    observed = box_xyxy_to_cxcywh(np.asarray(boxes).reshape(-1, 4)).astype(np.float64)
    noise = (_POSITION_STD * np.maximum(mean[:, 3], 1.0)) ** 2  # (K,)
    innovation_cov = covariance[:, :4, :4] + noise[:, None, None] * np.eye(4)  # (K, 4, 4)
    cross = covariance[:, :4, :]  # (K, 4, 8) = H P
    gain = np.linalg.solve(innovation_cov, cross).transpose(0, 2, 1)  # (K, 8, 4)
    innovation = observed - mean[:, :4]  # (K, 4)
    mean = mean + np.einsum("kij,kj->ki", gain, innovation)
    covariance = covariance - gain @ innovation_cov @ gain.transpose(0, 2, 1)
    return mean, covariance


@dataclass
class _Track:
    """One track. ``box`` is the last observed xyxy box; ``mean``/``covariance`` are the
    motion filter's state at ``last_frame``."""

    key: int
    track_id: int
    state: str
    box: np.ndarray  # (4,) float64 pixels
    mean: np.ndarray  # (8,) cx, cy, w, h and their per-frame velocities
    covariance: np.ndarray  # (8, 8)
    mask: RunLengthMask | None
    hits: int
    first_frame: int
    last_frame: int

    def to_dict(self) -> dict[str, Any]:
        mask = None
        if self.mask is not None:
            mask = {
                "box": list(self.mask.box),
                "image_size": list(self.mask.image_size),
                "values": self.mask.values.tolist(),
                "lengths": self.mask.lengths.tolist(),
            }
        return {
            "key": self.key, "track_id": self.track_id, "state": self.state,
            "box": self.box.tolist(), "mean": self.mean.tolist(),
            "covariance": self.covariance.tolist(), "mask": mask, "hits": self.hits,
            "first_frame": self.first_frame, "last_frame": self.last_frame,
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> _Track:
        mask = data.get("mask")
        if mask is not None:
            mask = RunLengthMask(
                box=tuple(int(v) for v in mask["box"]),  # type: ignore[arg-type]
                image_size=tuple(int(v) for v in mask["image_size"]),  # type: ignore[arg-type]
                values=np.asarray(mask["values"], dtype=np.uint8),
                lengths=np.asarray(mask["lengths"], dtype=np.uint32),
            )
        state = data["state"]
        if state not in (TENTATIVE, CONFIRMED, LOST):
            raise ValueError(f"tracker state holds a track in unknown state {state!r}")
        return cls(
            key=int(data["key"]), track_id=int(data["track_id"]), state=state,
            box=np.asarray(data["box"], dtype=np.float64).reshape(4),
            mean=np.asarray(data["mean"], dtype=np.float64).reshape(8),
            covariance=np.asarray(data["covariance"], dtype=np.float64).reshape(8, 8),
            mask=mask, hits=int(data["hits"]), first_frame=int(data["first_frame"]),
            last_frame=int(data["last_frame"]),
        )  # fmt: skip


class HungarianTracker:
    """IoU + Hungarian multi-person tracker for one stream.

    Args:
        min_iou: smallest IoU for a track/detection pair to be matched. 0.4 rather than the
            common 0.3: when one person walks behind another, a lower gate lets the hidden
            person's track jump to the occluder, whose description it then mixes in
            (``benchmarks/tracker_tud.py``: 0.3 -> 0.4 cuts the ID switches on TUD by ~40%
            and raises IDF1 by 0.015 at the same MOTA; ``benchmarks/search_recall.py --model``
            finds the right person first more often with the bundled model).
        min_hits: consecutive matches that confirm a tentative track (1 = confirm at once).
        max_lost: frames a confirmed track may stay unmatched before it is removed.
        use_masks: use mask IoU for tracks seen at the previous update when detections carry
            masks (box IoU otherwise).
        min_score: detections below this score are not tracked (their ``track_id`` is -1).
        predict_motion: match against boxes predicted by a constant-velocity Kalman filter
            (the last observed box otherwise).
    """

    def __init__(
        self,
        *,
        min_iou: float = 0.4,
        min_hits: int = 3,
        max_lost: int = 30,
        use_masks: bool = True,
        min_score: float = 0.0,
        predict_motion: bool = True,
    ) -> None:
        if not 0.0 < min_iou <= 1.0:
            raise ValueError(f"min_iou must lie in (0, 1], got {min_iou}")
        if min_hits < 1:
            raise ValueError(f"min_hits must be >= 1, got {min_hits}")
        if max_lost < 0:
            raise ValueError(f"max_lost must be >= 0 frames, got {max_lost}")
        self.min_iou = float(min_iou)
        self.min_hits = int(min_hits)
        self.max_lost = int(max_lost)
        self.use_masks = bool(use_masks)
        self.min_score = float(min_score)
        self.predict_motion = bool(predict_motion)
        self.reset()

    def reset(self) -> None:
        """Forgets every track and restarts the id counter at 0."""
        self._tracks: list[_Track] = []
        self._next_id = 0
        self._next_key = 0
        self._frame_index = -1
        self.ended_tracks: list[int] = []

    @property
    def frame_index(self) -> int:
        """Frame index of the last update (-1 before the first)."""
        return self._frame_index

    def track_states(self) -> dict[int, str]:
        """State of each live track with a public id: ``{track_id: "confirmed" | "lost"}``."""
        return {t.track_id: t.state for t in self._tracks if t.track_id >= 0}

    def update(self, persons: Persons, frame_index: int) -> Persons:
        """Matches this frame's persons to the live tracks.

        Args:
            persons: the frame's detections (boxes in source pixels, optional masks).
            frame_index: index of the frame; must increase from one call to the next.

        Returns:
            The same persons with ``track_id`` set (-1 where no confirmed track). The ids of
            tracks removed at this frame are in :attr:`ended_tracks` until the next call.
        """
        if not isinstance(persons, Persons):
            raise TypeError(f"update expects Persons, got {type(persons).__name__}")
        if int(frame_index) <= self._frame_index:
            raise ValueError(
                f"frame_index must increase: got {frame_index} after {self._frame_index}; "
                "call reset() to start a new stream"
            )
        frame_index = int(frame_index)
        self.ended_tracks = []
        self._expire(frame_index)
        track_ids = np.full(len(persons), -1, dtype=np.int64)
        candidates = np.flatnonzero(persons.score >= self.min_score)
        matches, lost, new = self._associate(persons, candidates, frame_index)
        matched_persons = candidates[matches[:, 1]]
        self._filter([self._tracks[i] for i in matches[:, 0].tolist()],
                     persons.xyxy[matched_persons], frame_index)
        for track_index, person in zip(matches[:, 0].tolist(), matched_persons.tolist(),
                                       strict=True):
            track_ids[person] = self._observe(self._tracks[track_index], persons, person,
                                              frame_index)
        for track_index in lost.tolist():
            self._miss(self._tracks[track_index])
        for det_index in new.tolist():
            person = int(candidates[det_index])
            track_ids[person] = self._start(persons, person, frame_index)
        self._tracks = [t for t in self._tracks if t.state != "removed"]
        self._frame_index = frame_index
        return persons.with_track_ids(track_ids)

    def track(self, frame: ParsedFrame) -> TrackedFrame:
        """Tracks a parser's frame and returns the describer's input (the actor's one call).

        Args:
            frame: one parsed frame of this tracker's stream.

        Returns:
            The frame with ``persons.track_id`` set and this update's ``ended_tracks``.
        """
        if not isinstance(frame, ParsedFrame):
            raise TypeError(f"track expects ParsedFrame, got {type(frame).__name__}")
        persons = self.update(frame.persons, frame.frame_index)
        return TrackedFrame(
            stream_id=frame.stream_id, frame_index=frame.frame_index, pts=frame.pts,
            capture_time=frame.capture_time, image_size=frame.image_size, persons=persons,
            thumbnails=frame.thumbnails, ended_tracks=list(self.ended_tracks),
        )  # fmt: skip

    def finish(self) -> list[int]:
        """Ends every live track (end of stream) and returns the ids of those with an id.

        The ids are also in :attr:`ended_tracks`; the counters are kept, so ids stay unique
        if the same tracker goes on with more frames.
        """
        self.ended_tracks = [t.track_id for t in self._tracks if t.track_id >= 0]
        self._tracks = []
        return list(self.ended_tracks)

    def _expire(self, frame_index: int) -> None:
        """Removes confirmed/lost tracks unseen for more than ``max_lost`` frames before
        matching, so a frame gap (sampled or stalled stream) cannot revive an ended track."""
        for track in self._tracks:
            if track.state != TENTATIVE and frame_index - track.last_frame > self.max_lost:
                track.state = "removed"
                self.ended_tracks.append(track.track_id)
        self._tracks = [t for t in self._tracks if t.state != "removed"]

    def _associate(
        self, persons: Persons, candidates: np.ndarray, frame_index: int
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Hungarian matching of live tracks (rows) to candidate detections (columns)."""
        boxes = persons.xyxy[candidates]
        if self.predict_motion and self._tracks:
            means = np.stack([t.mean for t in self._tracks])  # (T, 8)
            steps = np.array([frame_index - t.last_frame for t in self._tracks], np.float64)
            centre_size = means[:, :4] + steps[:, None] * means[:, 4:]  # (T, 4) cx, cy, w, h
            track_boxes_array = box_cxcywh_to_xyxy(centre_size).astype(np.float32)
        else:
            track_boxes_array = np.asarray([t.box for t in self._tracks], np.float32)
        track_boxes_array = track_boxes_array.reshape(-1, 4)
        det_masks = None
        track_masks = None
        if self.use_masks and persons.masks is not None:
            det_masks = [persons.masks[i] for i in candidates.tolist()]
            image_size = det_masks[0].image_size if det_masks else None
            # A mask from an older frame has not moved with the person, and one from before a
            # resolution change cannot be compared: use the (predicted) box for those.
            track_masks = [
                t.mask
                if t.mask is not None and t.last_frame == self._frame_index
                and t.mask.image_size == image_size else None
                for t in self._tracks
            ]
        cost = iou_cost(track_boxes_array, boxes, track_masks, det_masks, self.min_iou)
        # A tiny epsilon keeps pairs at exactly min_iou admissible despite float rounding.
        return linear_assignment(cost, 1.0 - self.min_iou + 1e-6)

    @staticmethod
    def _filter(tracks: list[_Track], boxes: np.ndarray, frame_index: int) -> None:
        """Advances the matched tracks' motion filters to this frame, all at once."""
        if not tracks:
            return
        steps = np.array([frame_index - t.last_frame for t in tracks])
        mean, covariance = kalman_predict(np.stack([t.mean for t in tracks]),
                                          np.stack([t.covariance for t in tracks]), steps)
        mean, covariance = kalman_update(mean, covariance, boxes)
        for track, track_mean, track_covariance in zip(tracks, mean, covariance, strict=True):
            track.mean, track.covariance = track_mean, track_covariance

    def _observe(self, track: _Track, persons: Persons, person: int, frame_index: int) -> int:
        box = persons.xyxy[person].astype(np.float64)
        track.box = box
        track.mask = persons.masks[person] if persons.masks is not None else None
        track.last_frame = frame_index
        track.hits += 1
        if track.state == LOST:
            track.state = CONFIRMED
        elif track.state == TENTATIVE and track.hits >= self.min_hits:
            self._confirm(track)
        return track.track_id

    def _miss(self, track: _Track) -> None:
        # Tentative tracks must be matched in consecutive updates; confirmed ones wait.
        track.state = "removed" if track.state == TENTATIVE else LOST

    def _start(self, persons: Persons, person: int, frame_index: int) -> int:
        box = persons.xyxy[person].astype(np.float64)
        mean, covariance = kalman_init(box)
        track = _Track(
            key=self._next_key,
            track_id=-1,
            state=TENTATIVE,
            box=box,
            mean=mean,
            covariance=covariance,
            mask=persons.masks[person] if persons.masks is not None else None,
            hits=1,
            first_frame=frame_index,
            last_frame=frame_index,
        )
        self._next_key += 1
        if self.min_hits <= 1:
            self._confirm(track)
        self._tracks.append(track)
        return track.track_id

    def _confirm(self, track: _Track) -> None:
        track.state = CONFIRMED
        track.track_id = self._next_id
        self._next_id += 1

    def _settings(self) -> dict[str, Any]:
        return {
            "min_iou": self.min_iou, "min_hits": self.min_hits, "max_lost": self.max_lost,
            "use_masks": self.use_masks, "min_score": self.min_score,
            "predict_motion": self.predict_motion,
        }  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume this stream elsewhere, as plain JSON-able values.

        The constructor arguments are recorded for reference; :meth:`load_state_dict`
        restores tracks and counters, not settings.
        """
        return {
            "format": STATE_FORMAT,
            "settings": self._settings(),
            "frame_index": self._frame_index,
            "next_id": self._next_id,
            "next_key": self._next_key,
            "tracks": [t.to_dict() for t in self._tracks],
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores tracks and counters saved by :meth:`state_dict` (replacing the current ones).

        Raises:
            ValueError: if ``state`` is not a state of this tracker format or misses a key.
        """
        if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
            found = state.get("format") if isinstance(state, dict) else type(state).__name__
            raise ValueError(
                f"not a tracker state: expected format {STATE_FORMAT!r}, got {found!r}"
            )
        try:
            tracks = [_Track.from_dict(item) for item in state["tracks"]]
            frame_index, next_id = int(state["frame_index"]), int(state["next_id"])
            next_key = int(state["next_key"])
        except KeyError as error:
            raise ValueError(f"tracker state is missing key {error.args[0]!r}") from None
        settings = state.get("settings")
        if settings is not None and settings != self._settings():
            log.warning(
                "restoring a tracker state saved with settings %s into a tracker with %s",
                settings, self._settings(),
            )
        self._tracks, self._frame_index = tracks, frame_index
        self._next_id, self._next_key = next_id, next_key
        self.ended_tracks = []


class TrackerConfig(StrictModel):
    """YAML section for :class:`HungarianTracker` (same names as its arguments)."""

    min_iou: float = Field(default=0.4, gt=0.0, le=1.0)
    min_hits: int = Field(default=3, ge=1)
    max_lost: int = Field(default=30, ge=0)  # about one second at 30 fps before a track ends
    use_masks: bool = True
    min_score: float = Field(default=0.0, ge=0.0, le=1.0)
    predict_motion: bool = True


def build_tracker(config: TrackerConfig | None = None) -> HungarianTracker:
    """Builds a tracker from its config section (defaults when ``None``)."""
    config = config or TrackerConfig()
    return HungarianTracker(**config.model_dump())
