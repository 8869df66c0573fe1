"""Thin Ray actors: each builds one plain object and forwards calls to it.

The logic lives in :mod:`describeme.pipeline.stages`, :mod:`describeme.pipeline.batching`,
:mod:`describeme.pipeline.parsers` and :mod:`describeme.pipeline.stream`, which the unit tests
exercise without a cluster. Resources (fractional CPUs, GPUs) are set by the graph with
``.options(...)``.
"""

from __future__ import annotations

from typing import Any

import ray

from describeme.messages import FrameBatch, ParsedFrame, TrackedFrame
from describeme.operators.telemetry import Telemetry
from describeme.pipeline.batching import DynamicBatcher
from describeme.pipeline.config import ParserConfig, PipelineConfig, SinkConfig
from describeme.pipeline.parsers import build_parser
from describeme.pipeline.stages import (
    DescribedBatch,
    DescribingStage,
    SinkStage,
    TrackingStage,
    WriteReceipt,
    spool_name,
)


@ray.remote
class ParserActor:
    """One model replica; batches frames of all streams (async actor, dynamic batching)."""

    def __init__(self, config: ParserConfig) -> None:
        self.parser = build_parser(config)
        self.telemetry = Telemetry()
        # A model parser runs in two overlapped stages (network, then decoding: see
        # DynamicBatcher); the test double in one.
        two_stage = hasattr(self.parser, "infer") and hasattr(self.parser, "finish")
        self.batcher = DynamicBatcher(
            self._infer if two_stage else self._parse,
            finish=self._finish if two_stage else None,
            max_batch_size=config.max_batch_size,
            max_wait_ms=config.max_wait_ms,
            telemetry=self.telemetry,
        )

    def _parse(self, frames: list[Any]) -> list[ParsedFrame]:
        with self.telemetry.timer("parse"):
            parsed = self.parser.parse(frames)
        self._count(frames)
        return parsed

    def _infer(self, frames: list[Any]) -> Any:
        with self.telemetry.timer("parse"):  # the network: the stage the model bounds
            return self.parser.infer(frames)

    def _finish(self, frames: list[Any], inferred: Any) -> list[ParsedFrame]:
        with self.telemetry.timer("parse_decode"):
            parsed = self.parser.finish(frames, inferred)
        self._count(frames)
        return parsed

    def _count(self, frames: list[Any]) -> None:
        for frame in frames:
            self.telemetry.count("frames", stage="parse", stream=frame.stream_id)

    async def register_stream(self, stream_id: str, uri: str) -> None:
        self.parser.register_stream(stream_id, uri)

    async def parse(self, batch: FrameBatch) -> list[ParsedFrame]:
        return await self.batcher.submit(batch.frames)

    async def metrics(self) -> dict[str, Any]:
        return self.telemetry.snapshot()


@ray.remote
class TrackerActor:
    """Per-stream trackers (one actor serves every stream; calls stay in order per caller)."""

    def __init__(self, config: PipelineConfig) -> None:
        self.stage = TrackingStage(config.tracker.model_dump())

    def open_stream(self, stream_id: str, state: dict[str, Any] | None = None) -> None:
        self.stage.open_stream(stream_id, state)

    def update(self, parsed: list[ParsedFrame]) -> list[TrackedFrame]:
        return self.stage.update(parsed)

    def state(self, stream_id: str) -> dict[str, Any] | None:
        return self.stage.state(stream_id)

    def close_stream(self, stream_id: str) -> None:
        self.stage.close_stream(stream_id)

    def metrics(self) -> dict[str, Any]:
        return self.stage.telemetry.snapshot()


@ray.remote
class DescriberActor:
    """Per-stream track describers."""

    def __init__(self, config: PipelineConfig) -> None:
        self.stage = DescribingStage(config.describer.model_dump())

    def open_stream(self, stream_id: str, state: dict[str, Any] | None = None) -> None:
        self.stage.open_stream(stream_id, state)

    def update(self, tracked: list[TrackedFrame]) -> DescribedBatch | None:
        return self.stage.update(tracked)

    def state(self, stream_id: str) -> dict[str, Any] | None:
        return self.stage.state(stream_id)

    def finish(self, stream_id: str) -> DescribedBatch:
        return self.stage.finish(stream_id)

    def metrics(self) -> dict[str, Any]:
        return self.stage.telemetry.snapshot()


@ray.remote
class SinkActor:
    """The Redis sink: idempotent upserts, deduplicated events, ingest checkpoints."""

    def __init__(self, redis_url: str, config: SinkConfig) -> None:
        from describeme.operators.spool import BufferedSink, default_spool_path
        from describeme.operators.store import TrackStore

        store = TrackStore.from_url(redis_url, prefix=config.prefix)
        store.ensure_index()
        # Writes survive a Redis outage: buffered in order, spooled to disk, replayed. The
        # spool name is stable per (server, prefix) so a restarted run replays it.
        spool = default_spool_path(spool_name(redis_url, config.prefix))
        self.stage = SinkStage(BufferedSink(store, spool), store.client, prefix=config.prefix)

    def write(self, batch: DescribedBatch | None) -> WriteReceipt | None:
        return self.stage.write(batch)

    def commit(
        self,
        file_key: str,
        frame_index: int,
        status: str,
        tracker_state: dict[str, Any] | None,
        describer_state: dict[str, Any] | None,
    ) -> bool:
        return self.stage.commit(file_key, frame_index, status, tracker_state, describer_state)

    def close(self) -> None:
        self.stage.close()

    def load_checkpoint(self, file_key: str) -> dict[str, Any] | None:
        return self.stage.load_checkpoint(file_key)

    def track_count(self) -> int:
        return self.stage.track_count()

    def metrics(self) -> dict[str, Any]:
        return self.stage.telemetry.snapshot()
