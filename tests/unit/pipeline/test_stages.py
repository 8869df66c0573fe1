"""The plain stage objects behind the actors, chained without Ray: stand-in -> tracker ->
describer -> sink, checkpoints, and resume without duplicate tracks."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from describeme.messages import Frame, TrackDescription, TrackEvent
from describeme.operators.standin import GroundTruthParser
from describeme.pipeline.config import PipelineConfig
from describeme.pipeline.stages import DescribingStage, SinkStage, TrackingStage

from .conftest import FPS, HEIGHT, WIDTH

STREAM = "cam"


class FakeStore:
    """Records what a TrackStore would write; upserts are keyed like the real one."""

    def __init__(self) -> None:
        self.docs: dict[tuple[str, int], TrackDescription] = {}
        self.upserts = 0
        self.events: dict[tuple[str, int, int, str], TrackEvent] = {}
        self.status: dict[str, tuple[str, int]] = {}

    def upsert(self, desc: TrackDescription) -> None:
        self.upserts += 1
        self.docs[desc.key] = desc

    def append_events(self, events: list[TrackEvent]) -> None:
        for event in events:
            self.events.setdefault(event.key, event)

    def set_file_status(self, key: str, status: str, frame: int) -> None:
        self.status[key] = (status, frame)


class FakeRedis(dict):
    def set(self, key: str, value: str) -> None:
        self[key] = value


def _frames(indices: range) -> list[Frame]:
    return [Frame(STREAM, i, i / FPS, 1000.0 + i, np.zeros((HEIGHT, WIDTH, 3), np.uint8))
            for i in indices]


def _stages(clip: Path, state: dict[str, Any] | None = None
            ) -> tuple[GroundTruthParser, TrackingStage, DescribingStage]:
    config = PipelineConfig()
    parser = GroundTruthParser()
    parser.register_stream(STREAM, str(clip))
    tracking = TrackingStage(config.tracker.model_dump())
    describing = DescribingStage(config.describer.model_dump())
    tracking.open_stream(STREAM, (state or {}).get("tracker"))
    describing.open_stream(STREAM, (state or {}).get("describer"))
    return parser, tracking, describing


def _run(parser: GroundTruthParser, tracking: TrackingStage, describing: DescribingStage,
         sink: SinkStage, frames: list[Frame], batch: int = 1) -> None:
    for start in range(0, len(frames), batch):
        sink.write(describing.update(tracking.update(parser.parse(frames[start:start + batch]))))


def test_chain_describes_each_ground_truth_person(clip: Path) -> None:
    store = FakeStore()
    sink = SinkStage(store, FakeRedis())
    parser, tracking, describing = _stages(clip)
    _run(parser, tracking, describing, sink, _frames(range(12)))
    sink.write(describing.finish(STREAM))
    assert sorted(store.docs) == [(STREAM, 0), (STREAM, 1)]
    first = store.docs[(STREAM, 0)]
    assert first.final
    parts = {p.part: p for p in first.parts}
    assert (parts["upper-clothes"].color, parts["upper-clothes"].size) == ("red", "short")
    assert parts["pants"].color == "blue"
    kinds = sorted({e.kind for e in store.events.values()})
    assert "appeared" in kinds and "ended" in kinds
    assert sink.track_count() == 2
    snap = sink.telemetry.snapshot()
    assert snap["latency_count"][("end_to_end_latency_seconds", (("stream", STREAM),))] == 12


@pytest.mark.parametrize("batch", [1, 3, 12])
def test_batching_does_not_change_the_result(clip: Path, batch: int) -> None:
    results = []
    for size in (1, batch):
        store = FakeStore()
        parser, tracking, describing = _stages(clip)
        sink = SinkStage(store, FakeRedis())
        _run(parser, tracking, describing, sink, _frames(range(12)), batch=size)
        results.append({k: (d.sentence, d.num_observations) for k, d in store.docs.items()})
    assert results[0] == results[1]


def test_resume_from_checkpoint_keeps_track_ids(clip: Path) -> None:
    # Uninterrupted reference run.
    reference = FakeStore()
    parser, tracking, describing = _stages(clip)
    _run(parser, tracking, describing, SinkStage(reference, FakeRedis()), _frames(range(12)))
    # Interrupted run: frames 0..5, checkpoint, then a fresh process resumes at frame 6.
    store, redis = FakeStore(), FakeRedis()
    sink = SinkStage(store, redis)
    parser, tracking, describing = _stages(clip)
    _run(parser, tracking, describing, sink, _frames(range(6)))
    sink.commit("file-1", 5, "running", tracking.state(STREAM), describing.state(STREAM))
    assert store.status["file-1"] == ("running", 5)
    checkpoint = SinkStage(store, redis).load_checkpoint("file-1")
    assert checkpoint is not None and checkpoint["last_committed_frame"] == 5
    parser, tracking, describing = _stages(clip, json.loads(json.dumps(checkpoint)))
    _run(parser, tracking, describing, SinkStage(store, redis), _frames(range(6, 12)))
    assert sorted(store.docs) == sorted(reference.docs) == [(STREAM, 0), (STREAM, 1)]


def test_without_checkpoint_a_restart_would_renumber(clip: Path) -> None:
    """Why checkpoints hold tracker state: a fresh tracker restarts ids at 0 mid-file, so ids
    would no longer name the same people (this documents the failure the resume avoids)."""
    store = FakeStore()
    parser, tracking, describing = _stages(clip)
    tracked = tracking.update(parser.parse(_frames(range(6, 9))))
    ids = sorted(int(t) for t in tracked[-1].persons.track_id if t >= 0)
    assert ids == [0, 1]  # new ids, assigned in detection order, not continuing the old ones
    assert store.docs == {}


def test_missing_checkpoint_is_none() -> None:
    assert SinkStage(FakeStore(), FakeRedis()).load_checkpoint("nope") is None


def test_sink_ignores_empty_batches() -> None:
    sink = SinkStage(FakeStore(), FakeRedis())
    assert sink.write(None) is None


def test_finish_of_unknown_stream_is_empty() -> None:
    batch = DescribingStage().finish("never-opened")
    assert batch.descriptions == [] and batch.events == []


def test_checkpoint_rejects_unserialisable_state() -> None:
    sink = SinkStage(FakeStore(), FakeRedis())
    with pytest.raises(TypeError, match="cannot store object"):
        sink.commit("f", 1, "running", {"bad": object()}, None)


class FlakyStore(FakeStore):
    """A store whose Redis can go away (raises redis' ConnectionError while ``up`` is False)."""

    def __init__(self) -> None:
        super().__init__()
        self.up, self.client = True, None

    def _check(self) -> None:
        import redis

        if not self.up:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    def ensure_index(self) -> str:
        self._check()
        return "exists"

    def upsert(self, desc: TrackDescription) -> None:
        self._check()
        super().upsert(desc)

    def append_events(self, events: list[TrackEvent]) -> None:
        self._check()
        super().append_events(events)

    def set_file_status(self, key: str, status: str, frame: int) -> None:
        self._check()
        super().set_file_status(key, status, frame)


def test_checkpoint_waits_until_buffered_writes_reach_redis(clip: Path, tmp_path: Path) -> None:
    from describeme.operators.spool import BufferedSink

    store, redis_keys = FlakyStore(), FakeRedis()
    sink = SinkStage(BufferedSink(store, tmp_path / "spool.jsonl", initial_backoff_s=1e-6),
                     redis_keys)
    parser, tracking, describing = _stages(clip)
    store.up = False  # Redis goes away: writes are buffered, never lost
    _run(parser, tracking, describing, sink, _frames(range(12)))
    assert store.docs == {} and sink.store.pending > 0
    assert sink.commit("file", 11, "running", {}, {}) is False
    assert sink.checkpoint_key("file") not in redis_keys  # never ahead of the data
    store.up = True
    assert sink.commit("file", 11, "running", {}, {}) is True  # replays, then checkpoints
    assert sink.store.pending == 0 and store.docs
    assert json.loads(redis_keys[sink.checkpoint_key("file")])["last_committed_frame"] == 11
    assert store.status["file"] == ("running", 11)
    sink.close()


def test_spool_name_is_stable_per_server_and_prefix_and_hides_the_password() -> None:
    from describeme.pipeline.stages import spool_name

    a = spool_name("redis://:secret@127.0.0.1:6379/0", "describeme:")
    assert a == spool_name("redis://:other@127.0.0.1:6379/0", "describeme:")
    assert a != spool_name("redis://:secret@127.0.0.1:6380/0", "describeme:")
    assert a != spool_name("redis://:secret@127.0.0.1:6379/0", "bench:")
    assert "secret" not in a and a.startswith("sink-")
