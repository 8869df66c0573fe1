"""The plain objects behind the tracker, describer and sink actors (no Ray here).

Each stage holds one operator object per stream, keyed by ``stream_id``, so one actor serves
many streams; Ray runs one caller's calls on one actor in submission order, which keeps every
stream's frames in order through each stage.
"""

from __future__ import annotations

import hashlib
import json
import logging
import time
from dataclasses import dataclass, field
from typing import Any

from describeme.messages import ParsedFrame, TrackDescription, TrackedFrame, TrackEvent
from describeme.operators.spool import is_transient
from describeme.operators.telemetry import Telemetry

log = logging.getLogger(__name__)


@dataclass
class DescribedBatch:
    """What the describer sends the sink for one batch of frames of one stream.

    Attributes:
        frame_indices: the frames this batch covers (in order).
        capture_times: wall-clock capture time of each frame (for end-to-end latency).
    """

    stream_id: str
    frame_indices: list[int]
    capture_times: list[float]
    descriptions: list[TrackDescription] = field(default_factory=list)
    events: list[TrackEvent] = field(default_factory=list)


@dataclass
class WriteReceipt:
    """The sink's answer for one batch: what it wrote, for the stream's bookkeeping."""

    stream_id: str
    frame_indices: list[int]
    descriptions: int
    events: int


class TrackingStage:
    """Per-stream :class:`~describeme.operators.tracker.HungarianTracker` objects.

    Args:
        tracker_kwargs: keyword arguments of ``HungarianTracker`` (from ``TrackerConfig``).
    """

    def __init__(self, tracker_kwargs: dict[str, Any] | None = None) -> None:
        self.tracker_kwargs = dict(tracker_kwargs or {})
        self.trackers: dict[str, Any] = {}
        self.telemetry = Telemetry()

    def open_stream(self, stream_id: str, state: dict[str, Any] | None = None) -> None:
        """Starts (or restores from ``state``) the tracker of a stream."""
        from describeme.operators.tracker import HungarianTracker

        tracker = HungarianTracker(**self.tracker_kwargs)
        if state:
            tracker.load_state_dict(state)
        self.trackers[stream_id] = tracker

    def _tracker(self, stream_id: str) -> Any:
        if stream_id not in self.trackers:
            self.open_stream(stream_id)
        return self.trackers[stream_id]

    def update(self, parsed: list[ParsedFrame]) -> list[TrackedFrame]:
        """Tracks each frame in order; ``ended_tracks`` lists ids removed at that frame."""
        out = []
        for frame in parsed:
            tracker = self._tracker(frame.stream_id)
            with self.telemetry.timer("track", stream=frame.stream_id):
                persons = tracker.update(frame.persons, frame.frame_index)
            self.telemetry.count("frames", stage="track", stream=frame.stream_id)
            out.append(
                TrackedFrame(
                    frame.stream_id,
                    frame.frame_index,
                    frame.pts,
                    frame.capture_time,
                    frame.image_size,
                    persons,
                    thumbnails=frame.thumbnails,
                    ended_tracks=list(tracker.ended_tracks),
                )
            )
        return out

    def close_stream(self, stream_id: str) -> None:
        """Forgets a finished stream's tracker (the describer finalises its tracks)."""
        self.trackers.pop(stream_id, None)

    def state(self, stream_id: str) -> dict[str, Any] | None:
        """The stream's tracker state (JSON-able), for resume checkpoints."""
        tracker = self.trackers.get(stream_id)
        return None if tracker is None else tracker.state_dict()


def build_describer(kwargs: dict[str, Any]) -> Any:
    """A ``TrackDescriber`` from keyword arguments (``DescriberConfig`` fields)."""
    from describeme.operators.describer import TrackDescriber

    return TrackDescriber(**kwargs)


class DescribingStage:
    """Per-stream ``TrackDescriber`` objects; only confirmed tracks (id >= 0) are described."""

    def __init__(self, describer_kwargs: dict[str, Any] | None = None) -> None:
        self.describer_kwargs = dict(describer_kwargs or {})
        self.describers: dict[str, Any] = {}
        self.telemetry = Telemetry()

    def open_stream(self, stream_id: str, state: dict[str, Any] | None = None) -> None:
        """Starts a stream's describer, restoring ``state`` when the describer supports it."""
        describer = build_describer(self.describer_kwargs)
        if state and hasattr(describer, "load_state_dict"):
            describer.load_state_dict(state)
        elif state:
            log.warning(
                "describer has no load_state_dict: stream %s resumes with fresh evidence", stream_id
            )
        self.describers[stream_id] = describer

    def update(self, tracked: list[TrackedFrame]) -> DescribedBatch | None:
        """Feeds frames in order; returns everything the sink must write for them."""
        if not tracked:
            return None
        stream_id = tracked[0].stream_id
        batch = DescribedBatch(
            stream_id, [f.frame_index for f in tracked], [f.capture_time for f in tracked]
        )
        if stream_id not in self.describers:
            self.open_stream(stream_id)
        describer = self.describers[stream_id]
        for frame in tracked:
            with self.telemetry.timer("describe", stream=stream_id):
                descriptions, events = describer.update(frame)
            batch.descriptions.extend(descriptions)
            batch.events.extend(events)
            self.telemetry.count("frames", stage="describe", stream=stream_id)
        return batch

    def state(self, stream_id: str) -> dict[str, Any] | None:
        describer = self.describers.get(stream_id)
        if describer is None or not hasattr(describer, "state_dict"):
            return None
        return describer.state_dict()

    def finish(self, stream_id: str) -> DescribedBatch:
        """Ends a stream: final descriptions of every track it still holds; forgets it."""
        batch = DescribedBatch(stream_id, [], [])
        describer = self.describers.pop(stream_id, None)
        if describer is not None:
            batch.descriptions, batch.events = describer.finish(stream_id)
        return batch


def spool_name(redis_url: str, prefix: str) -> str:
    """A spool file name stable per (Redis host:port/db, key prefix), password left out."""
    from urllib.parse import urlsplit

    parts = urlsplit(redis_url)
    target = f"{parts.hostname}:{parts.port}{parts.path}|{prefix}"
    return "sink-" + hashlib.sha1(target.encode("utf-8")).hexdigest()[:12]


class SinkStage:
    """Writes descriptions and events through a ``TrackStore``; records ingest checkpoints.

    Args:
        store: an object with ``upsert(TrackDescription)`` and ``append_events(events)``
            (``describeme.operators.store.TrackStore``), plus ``set_file_status``.
        client: the Redis client behind ``store`` (resume checkpoints are JSON strings).
        prefix: key prefix of the checkpoints.
    """

    def __init__(self, store: Any, client: Any, prefix: str = "describeme:") -> None:
        self.store = store
        self.client = client
        self.prefix = prefix
        self.telemetry = Telemetry()
        self.tracks: set[tuple[str, int]] = set()

    def write(self, batch: DescribedBatch | None) -> WriteReceipt | None:
        """Upserts the batch's descriptions (idempotent) and appends its events (deduplicated)."""
        if batch is None:
            return None
        with self.telemetry.timer("sink", stream=batch.stream_id):
            for description in batch.descriptions:
                self.store.upsert(description)
                self.tracks.add(description.key)
            if batch.events:
                self.store.append_events(batch.events)
            self._flush()  # retries buffered writes once their backoff delay has passed
        now = time.time()
        for capture_time in batch.capture_times:
            self.telemetry.observe(
                "end_to_end_latency_seconds", max(0.0, now - capture_time), stream=batch.stream_id
            )
        self.telemetry.count(
            "frames", len(batch.frame_indices), stage="sink", stream=batch.stream_id
        )
        self.telemetry.count(
            "descriptions_written", len(batch.descriptions), stream=batch.stream_id
        )
        self.telemetry.gauge("tracks_written", len(self.tracks))
        return WriteReceipt(
            batch.stream_id, batch.frame_indices, len(batch.descriptions), len(batch.events)
        )

    def checkpoint_key(self, file_key: str) -> str:
        return f"{self.prefix}resume:{file_key}"

    def commit(
        self,
        file_key: str,
        frame_index: int,
        status: str,
        tracker_state: dict[str, Any] | None,
        describer_state: dict[str, Any] | None,
    ) -> bool:
        """Records that every frame up to ``frame_index`` of ``file_key`` is written.

        Called after the sink wrote those frames (same caller, so Ray keeps the order); the
        tracker/describer states are the ones right after that frame, so a resumed stream
        continues with the same track ids and writes no duplicate tracks. While writes are
        still buffered (Redis unreachable) no checkpoint is recorded: a checkpoint must never
        claim frames whose tracks are not in Redis yet. A later commit catches up; resuming
        from an older checkpoint only repeats idempotent writes.

        Returns:
            True when the checkpoint was recorded.
        """
        if not self._flush(force=True):  # once per commit_every frames: worth a retry now
            log.warning(
                "Redis unreachable: ingest checkpoint of %s at frame %d deferred",
                file_key,
                frame_index,
            )
            return False
        checkpoint = {
            "status": status,
            "last_committed_frame": int(frame_index),
            "tracker": tracker_state,
            "describer": describer_state,
            "updated_at": time.time(),
        }
        try:
            self.client.set(
                self.checkpoint_key(file_key), json.dumps(checkpoint, default=_jsonable)
            )
        except Exception as exc:  # the spool's definition of "Redis is away"
            if not is_transient(exc):
                raise
            log.warning("Redis unreachable: ingest checkpoint of %s deferred (%s)", file_key, exc)
            return False
        self.store.set_file_status(file_key, status, int(frame_index))
        return True

    def _flush(self, force: bool = False) -> bool:
        """Replays buffered writes (a plain TrackStore has none); True when none are left.

        Without ``force`` the buffer's backoff delay is respected.
        """
        flush = getattr(self.store, "flush", None)
        return True if flush is None else bool(flush(force=force))

    def close(self) -> None:
        """Flushes buffered writes; what cannot be written stays in the spool file."""
        close = getattr(self.store, "close", None)
        if close is not None:
            close()

    def load_checkpoint(self, file_key: str) -> dict[str, Any] | None:
        """The last checkpoint of ``file_key`` or None."""
        raw = self.client.get(self.checkpoint_key(file_key))
        return None if raw is None else json.loads(raw)

    def track_count(self) -> int:
        return len(self.tracks)


def _jsonable(value: Any) -> Any:
    """numpy scalars/arrays inside tracker states -> JSON values."""
    import numpy as np

    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, np.generic):
        return value.item()
    raise TypeError(f"cannot store {type(value).__name__} in a resume checkpoint")
