"""One stream's driver: owns the source and pushes its frames through the actor chain by refs.

For each batch of frames the driver submits ``parse -> update (tracker) -> update (describer)
-> write (sink)`` as chained object refs, so results flow actor to actor without coming back
here. Ray runs one caller's calls on one (synchronous) actor in submission order, which keeps
the stream's frames in order through the tracker, describer and sink. At most
``max_in_flight`` batches are outstanding (``ray.wait`` on the sink receipts): when the chain
is slower than the source, an archive blocks and a live source drops its oldest frames.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import ray

from describeme.messages import Frame, FrameBatch
from describeme.operators.telemetry import Telemetry
from describeme.pipeline.config import PipelineConfig

log = logging.getLogger(__name__)

# Archive frames sent per chain of actor calls when stream.frames_per_batch is None: an
# archive has no latency to keep, and each call costs CPU the parser could use.
ARCHIVE_FRAMES_PER_BATCH = 4


@dataclass
class StreamSpec:
    """What to run: a source, its stream id, and for ingest the file key that resumes it."""

    uri: str
    stream_id: str
    file_key: str | None = None
    out_video: str | None = None
    tracks_out: str | None = None  # MOT-format tracker output file


@dataclass
class GraphHandles:
    """The shared actors every stream sends work to."""

    parsers: list[Any]
    tracker: Any
    describer: Any
    sink: Any


@dataclass
class _InFlight:
    receipt: Any  # ObjectRef[WriteReceipt]
    tracked: Any  # ObjectRef[list[TrackedFrame]]
    described: Any  # ObjectRef[DescribedBatch]
    frames: list[Frame] = field(default_factory=list)  # kept only for --out-video


class StreamDriver:
    """Runs one stream to its end (or until :meth:`stop`); see the module docstring."""

    def __init__(self, spec: StreamSpec, handles: GraphHandles, config: PipelineConfig) -> None:
        self.spec, self.handles, self.config = spec, handles, config
        self.telemetry = Telemetry()
        self._stop = threading.Event()
        self._in_flight: deque[_InFlight] = deque()
        self._parser_turn = abs(hash(spec.stream_id))
        self._writer: Any = None
        self._mot: Any = None
        if spec.tracks_out:
            from describeme.operators.mot import MotWriter

            self._mot = MotWriter(spec.tracks_out)
        self._captions: dict[int, str] = {}
        self.report: dict[str, Any] = {"stream_id": spec.stream_id, "uri": spec.uri,
                                       "frames": 0, "status": "running"}

    def stop(self) -> None:
        """Asks the loop to stop reading; in-flight work is still drained and flushed."""
        self._stop.set()

    def run(self) -> dict[str, Any]:
        """Processes the stream; returns its report (frames, source stats, status, fps)."""
        from describeme.operators.sources import open_source

        start_frame, states = self._resume_point()
        if start_frame is None:
            self.report["status"] = "skipped"
            return self.report
        sid, stream_cfg = self.spec.stream_id, self.config.stream
        ray.get([self.handles.tracker.open_stream.remote(sid, states.get("tracker")),
                 self.handles.describer.open_stream.remote(sid, states.get("describer"))]
                + [p.register_stream.remote(sid, self.spec.uri) for p in self.handles.parsers])
        self.report["resumed_from"] = start_frame
        started = time.perf_counter()
        source = open_source(self.spec.uri, stream_id=sid, target_fps=stream_cfg.target_fps,
                             live=stream_cfg.live, start_frame=start_frame,
                             queue_size=stream_cfg.queue_size)
        try:
            self._loop(source)
            self.report["status"] = "stopped" if self._stop.is_set() else "done"
        finally:
            self.report.update(_source_stats(source))
            self._source_gauges(source)
            source.close()
            self._finish()
        elapsed = time.perf_counter() - started
        self.report["elapsed_s"] = round(elapsed, 3)
        self.report["fps"] = round(self.report["frames"] / elapsed, 3) if elapsed > 0 else 0.0
        return self.report

    def _resume_point(self) -> tuple[int | None, dict[str, Any]]:
        """(first frame to read, saved states); None when the file is already done."""
        if self.spec.file_key is None:
            return 0, {}
        checkpoint = ray.get(self.handles.sink.load_checkpoint.remote(self.spec.file_key))
        if checkpoint is None:
            return 0, {}
        if checkpoint["status"] == "done":
            log.info("%s: already ingested, skipping", self.spec.uri)
            return None, {}
        start = int(checkpoint["last_committed_frame"]) + 1
        log.info("%s: resuming at frame %d", self.spec.uri, start)
        return start, checkpoint

    def _loop(self, source: Any) -> None:
        frames: list[Frame] = []
        per_batch = self.config.stream.frames_per_batch or (
            1 if source.live else ARCHIVE_FRAMES_PER_BATCH
        )
        since_commit = 0
        max_frames = self.config.stream.max_frames
        while not self._stop.is_set():
            if max_frames is not None and self.report["frames"] + len(frames) >= max_frames:
                self._stop.set()
                break
            with self.telemetry.timer("source", stream=self.spec.stream_id):
                frame = source.read(timeout_s=0.5)
            if frame is None:
                if source.finished:
                    break
                continue
            frames.append(frame)
            if (self.report["frames"] + len(frames)) % 25 == 0:
                self._source_gauges(source)
            if len(frames) >= per_batch:
                self._submit(frames)
                since_commit += len(frames)
                frames = []
            if self.spec.file_key is not None and since_commit >= self.config.sink.commit_every:
                self._commit("running")
                since_commit = 0
        if frames:
            self._submit(frames)

    def _source_gauges(self, source: Any) -> None:
        """Source counters as gauges, so /metrics shows drops and skips while running."""
        for name, value in _source_stats(source).items():
            self.telemetry.gauge(f"source_{name}", value, stream=self.spec.stream_id)

    def _submit(self, frames: list[Frame]) -> None:
        handles = self.handles
        parser = handles.parsers[self._parser_turn % len(handles.parsers)]
        self._parser_turn += 1
        parsed = parser.parse.remote(FrameBatch(self.spec.stream_id, frames))
        tracked = handles.tracker.update.remote(parsed)
        described = handles.describer.update.remote(tracked)
        receipt = handles.sink.write.remote(described)
        keep = frames if self.spec.out_video else []
        self._in_flight.append(_InFlight(receipt, tracked, described, keep))
        self.report["frames"] += len(frames)
        self.report["last_frame"] = frames[-1].frame_index
        self.telemetry.count("frames", len(frames), stage="source", stream=self.spec.stream_id)
        self._drain(self.config.stream.max_in_flight)

    def _drain(self, keep_at_most: int) -> None:
        """Waits until at most ``keep_at_most`` batches are in flight (backpressure)."""
        self.telemetry.gauge("in_flight_batches", len(self._in_flight), stream=self.spec.stream_id)
        while len(self._in_flight) > keep_at_most:
            oldest = self._in_flight[0]
            ray.wait([oldest.receipt], num_returns=1)
            self._in_flight.popleft()
            ray.get(oldest.receipt)  # raises here if any stage of that batch failed
            if self.spec.out_video or self._mot is not None:
                self._record(oldest)

    def _commit(self, status: str) -> None:
        """Checkpoints the stream after the last submitted frame (ordered after its writes)."""
        last = self.report.get("last_frame")
        if last is None or self.spec.file_key is None:
            return
        sid, handles = self.spec.stream_id, self.handles
        handles.sink.commit.remote(self.spec.file_key, last, status,
                                   handles.tracker.state.remote(sid),
                                   handles.describer.state.remote(sid))

    def _finish(self) -> None:
        """Drains, writes the final descriptions, records the file's status."""
        self._drain(0)
        sid, handles = self.spec.stream_id, self.handles
        done = self.report["status"] == "done"
        if self.spec.file_key is not None:
            # Checkpoint before the describer finalises (finish drops the stream's state).
            self._commit("done" if done else "partial")
        final = handles.describer.finish.remote(sid)
        ray.get([handles.sink.write.remote(final), handles.tracker.close_stream.remote(sid)])
        if self._writer is not None:
            self._writer.close()
        if self._mot is not None:
            self._mot.close()

    def _record(self, item: _InFlight) -> None:
        """Writes a finished batch to the MOT file and the annotated video (when asked)."""
        tracked, described = ray.get([item.tracked, item.described])
        if self._mot is not None:
            for tracked_frame in tracked:
                self._mot.write(tracked_frame)
        if self.spec.out_video:
            self._annotate(item, tracked, described)

    def _annotate(self, item: _InFlight, tracked: Any, described: Any) -> None:
        from describeme.operators.annotate import AnnotatedVideoWriter, draw_persons

        for description in described.descriptions if described else []:
            self._captions[description.track_id] = description.sentence
        if self._writer is None:
            self._writer = AnnotatedVideoWriter(self.spec.out_video)
        for frame, tracked_frame in zip(item.frames, tracked, strict=True):
            self._writer.write(draw_persons(frame.image, tracked_frame.persons, self._captions),
                               frame.pts)


def _source_stats(source: Any) -> dict[str, Any]:
    stats = source.stats()
    keys = ("decoded", "dropped_frames", "skipped_packets", "corrupt_frames", "reconnects")
    return {k: int(stats.get(k, 0)) for k in keys}


# run() and stop() at once: stop must reach a running loop.
@ray.remote(max_concurrency=2)  # type: ignore[call-overload]
class StreamActor:
    """Owns one stream at a time and drives it through the graph."""

    def __init__(self, handles: GraphHandles, config: PipelineConfig) -> None:
        self.handles, self.config = handles, config
        self.driver: StreamDriver | None = None
        self._stopped = False

    def run(self, spec: StreamSpec) -> dict[str, Any]:
        self.driver = StreamDriver(spec, self.handles, self.config)
        if self._stopped:
            self.driver.stop()
        return self.driver.run()

    def stop(self) -> None:
        self._stopped = True
        if self.driver is not None:
            self.driver.stop()

    def metrics(self) -> dict[str, Any]:
        return self.driver.telemetry.snapshot() if self.driver else Telemetry().snapshot()
