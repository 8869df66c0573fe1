"""BufferedSink and its spool file, against an in-memory fake store (no server)."""

from __future__ import annotations

import json
import logging
from pathlib import Path
from typing import Any

import pytest
import redis

from describeme.errors import ServiceError
from describeme.messages import PartDescription, TrackDescription, TrackEvent
from describeme.operators.spool import (
    BufferedSink,
    append_spool,
    default_spool_path,
    from_record,
    is_transient,
    read_spool,
    to_record,
)


def make_description(track_id: int = 1, frame_index: int = 0, **kw: Any) -> TrackDescription:
    return TrackDescription(
        stream_id="cam:1", track_id=track_id, frame_index=frame_index, pts=frame_index / 10,
        first_seen=0.0, last_seen=frame_index / 10, first_seen_time=1.7e9, last_seen_time=1.7e9,
        parts=[PartDescription("pants", 0.9, "blue", 0.8, "long", 0.7)], sentence="blue pants",
        **kw,
    )  # fmt: skip


class FakeStore:
    """Records applied writes in order; raises ConnectionError while ``up`` is False."""

    def __init__(self) -> None:
        self.up = True
        self.applied: list[tuple[str, Any]] = []
        self.index_calls = 0
        self.client = None

    def _check(self) -> None:
        if not self.up:
            raise redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:1")

    def ensure_index(self) -> str:
        self._check()
        self.index_calls += 1
        return "exists"

    def upsert(self, desc: TrackDescription) -> str:
        self._check()
        if desc.sentence == "poison":
            raise redis.exceptions.ResponseError("WRONGTYPE")
        self.applied.append(("upsert", (desc.track_id, desc.frame_index)))
        return "written"

    def append_events(self, events: list[TrackEvent]) -> int:
        self._check()
        self.applied.append(("events", [e.key for e in events]))
        return len(events)

    def set_file_status(self, path_key: str, status: str, frame: int) -> None:
        self._check()
        self.applied.append(("file_status", (path_key, status, frame)))


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def spool_path(tmp_path: Path) -> Path:
    return tmp_path / "spool" / "sink.jsonl"


@pytest.mark.parametrize(
    ("op", "payload"),
    [
        ("upsert", make_description(thumbnail=b"\xff\xd8\x00")),
        ("upsert", make_description(thumbnail=None, final=True)),
        ("events", [TrackEvent("cam:1", 1, 5, 0.5, "changed", "coat: present -> absent")]),
        ("file_status", ("/data/a b.mp4", "running", 41)),
    ],
)
def test_record_round_trip_through_json(op: str, payload: Any) -> None:
    line = json.dumps(to_record(op, payload))
    assert from_record(json.loads(line)) == (op, payload)


@pytest.mark.parametrize("record", [{"op": "delete"}, {}, {"op": None}])
def test_unknown_records_raise(record: dict[str, Any]) -> None:
    with pytest.raises(ValueError, match="unknown spool operation"):
        from_record(record)


def test_spool_file_round_trip_skips_a_torn_last_line(spool_path: Path) -> None:
    spool_path.parent.mkdir(parents=True)
    records = [to_record("upsert", make_description(i)) for i in range(3)]
    assert append_spool(spool_path, records) == 3
    with open(spool_path, "a", encoding="utf-8") as handle:
        handle.write('{"op": "ups')  # a crash in the middle of a write
    assert read_spool(spool_path) == records


@pytest.mark.parametrize(
    ("exc", "transient"),
    [
        (redis.exceptions.ConnectionError("down"), True),
        (redis.exceptions.TimeoutError("slow"), True),
        (redis.exceptions.BusyLoadingError("loading"), True),
        (ConnectionRefusedError(), True),
        (redis.exceptions.AuthenticationError("wrong pass"), False),
        (redis.exceptions.ResponseError("syntax"), False),
        (ValueError("bad"), False),
    ],
)
def test_is_transient(exc: BaseException, transient: bool) -> None:
    assert is_transient(exc) is transient


def test_writes_pass_straight_through_while_redis_is_up(spool_path: Path) -> None:
    store = FakeStore()
    with BufferedSink(store, spool_path) as sink:
        sink.upsert(make_description(1))
        sink.set_file_status("f", "done", 3)
        assert sink.pending == 0
    assert store.applied == [("upsert", (1, 0)), ("file_status", ("f", "done", 3))]
    assert store.index_calls == 1


def test_outage_buffers_in_order_and_replays_after_backoff(
    spool_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store, clock = FakeStore(), Clock()
    sink = BufferedSink(store, spool_path, max_memory=2, initial_backoff_s=1.0, clock=clock)
    store.up = False
    with caplog.at_level(logging.WARNING):
        for frame in range(5):
            sink.upsert(make_description(1, frame))
    assert "Redis unreachable" in caplog.text and "buffering" in caplog.text
    assert sink.pending == 5
    assert spool_path.exists()  # beyond max_memory the oldest writes moved to disk
    store.up = True
    assert sink.flush() is False  # backoff not elapsed yet
    clock.now = 1000.0
    assert sink.flush() is True
    assert store.applied == [("upsert", (1, f)) for f in range(5)]
    assert not spool_path.exists() and sink.pending == 0
    sink.close()


def test_new_writes_never_overtake_buffered_ones(spool_path: Path) -> None:
    store, clock = FakeStore(), Clock()
    sink = BufferedSink(store, spool_path, clock=clock)
    store.up = False
    sink.upsert(make_description(1, 1))
    store.up = True  # back, but the backoff delay has not passed: the next write queues too
    sink.upsert(make_description(1, 2))
    assert store.applied == []
    clock.now = 100.0
    sink.upsert(make_description(1, 3))
    assert store.applied == [("upsert", (1, 1)), ("upsert", (1, 2)), ("upsert", (1, 3))]
    sink.close()


def test_backoff_doubles_up_to_the_maximum(spool_path: Path) -> None:
    store, clock = FakeStore(), Clock()
    sink = BufferedSink(store, spool_path, initial_backoff_s=1.0, max_backoff_s=4.0, clock=clock)
    store.up = False
    sink.upsert(make_description())
    delays = []
    for _ in range(4):
        delays.append(sink._next_retry - clock.now)
        clock.now = sink._next_retry
        assert sink.flush() is False
    assert delays == [1.0, 2.0, 4.0, 4.0]
    sink.close()


def test_spool_survives_a_restart_and_replays_first(spool_path: Path) -> None:
    store = FakeStore()
    store.up = False
    first = BufferedSink(store, spool_path, max_memory=100)
    first.upsert(make_description(1, 1))
    first.append_events([TrackEvent("cam:1", 1, 1, 0.1, "appeared")])
    first.close()  # memory moves to the spool file
    assert len(read_spool(spool_path)) == 2

    store = FakeStore()  # a new process: nothing in memory, the spool on disk
    second = BufferedSink(store, spool_path)
    assert second.pending == 2
    second.upsert(make_description(2, 5))
    assert [op for op, _ in store.applied] == ["upsert", "events", "upsert"]
    assert store.applied[2] == ("upsert", (2, 5))
    second.close()


def test_max_memory_zero_spools_every_buffered_write_immediately(spool_path: Path) -> None:
    store = FakeStore()
    store.up = False
    sink = BufferedSink(store, spool_path, max_memory=0)
    sink.upsert(make_description(1, 1))
    # Durable before close(): a kill -9 now loses nothing.
    assert len(read_spool(spool_path)) == 1
    sink.close()


def test_partial_replay_keeps_the_rest_on_disk(spool_path: Path) -> None:
    store = FakeStore()
    spool_path.parent.mkdir(parents=True)
    append_spool(spool_path, [to_record("upsert", make_description(i)) for i in range(4)])
    sink = BufferedSink(store, spool_path)
    calls = {"n": 0}
    real_upsert = store.upsert

    def flaky(desc: TrackDescription) -> str:
        calls["n"] += 1
        if calls["n"] == 3:
            raise redis.exceptions.ConnectionError("dropped mid-replay")
        return real_upsert(desc)

    store.upsert = flaky  # type: ignore[method-assign]
    assert sink.flush(force=True) is False
    assert len(read_spool(spool_path)) == 2  # tracks 2 and 3 remain
    assert sink.flush(force=True) is True
    assert [p for _, p in store.applied] == [(0, 0), (1, 0), (2, 0), (3, 0)]
    sink.close()


def test_a_rejected_buffered_write_is_dropped_not_blocking(
    spool_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    store = FakeStore()
    store.up = False
    sink = BufferedSink(store, spool_path)
    sink.upsert(_poison())
    sink.upsert(make_description(2))
    store.up = True
    with caplog.at_level(logging.ERROR):
        assert sink.flush(force=True) is True
    assert "dropping buffered upsert" in caplog.text
    assert store.applied == [("upsert", (2, 0))]
    sink.close()


def _poison() -> TrackDescription:
    desc = make_description(1)
    desc.sentence = "poison"
    return desc


def test_direct_write_errors_that_are_not_transient_raise(spool_path: Path) -> None:
    with (
        BufferedSink(FakeStore(), spool_path) as sink,
        pytest.raises(redis.exceptions.ResponseError),
    ):
        sink.upsert(_poison())


def test_authentication_errors_are_not_buffered(spool_path: Path) -> None:
    store = FakeStore()

    def wrong_password() -> str:
        raise redis.exceptions.AuthenticationError("invalid password")

    store.ensure_index = wrong_password  # type: ignore[method-assign]
    with (
        BufferedSink(store, spool_path) as sink,
        pytest.raises(redis.exceptions.AuthenticationError),
    ):
        sink.upsert(make_description())


def test_default_spool_path_lives_in_the_data_folder(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_spool_path("sink-0") == tmp_path / "describeme" / "spool" / "sink-0.jsonl"
    for bad in ["", "../x", "a/b", ".hidden"]:
        with pytest.raises(ValueError, match="plain file name"):
            default_spool_path(bad)


def test_two_sinks_cannot_share_a_spool(spool_path: Path) -> None:
    with BufferedSink(FakeStore(), spool_path), pytest.raises(ServiceError, match="in use"):
        BufferedSink(FakeStore(), spool_path)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"max_memory": -1}, "max_memory"),
        ({"initial_backoff_s": 0.0}, "backoff"),
        ({"initial_backoff_s": 5.0, "max_backoff_s": 1.0}, "backoff"),
    ],
)
def test_bad_settings_raise(spool_path: Path, kwargs: dict[str, Any], match: str) -> None:
    with pytest.raises(ValueError, match=match):
        BufferedSink(FakeStore(), spool_path, **kwargs)
