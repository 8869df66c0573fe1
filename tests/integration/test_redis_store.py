"""The track store and the embedded server against a real redis-server with RediSearch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import redis

from describeme.errors import ServiceError
from describeme.messages import PartDescription, TrackDescription, TrackEvent
from describeme.operators import redis_server as redis_server_module
from describeme.operators.embedding import embed_text
from describeme.operators.redis_files import RedisBinaries, find_redis_binaries
from describeme.operators.redis_probes import no_retry, pid_alive
from describeme.operators.redis_server import EmbeddedRedis, resolve_redis
from describeme.operators.spool import BufferedSink
from describeme.operators.store import TrackStore, build_tag_clause

pytestmark = pytest.mark.integration

HOSTILE_STREAMS = [
    'cam "front", door',
    "a}|@stream:{b",
    "rtsp://user@10.0.0.1:554/live?x=1&y=-2*",
    "ünïcödé 中文 😀 camera",
    "x😀 a€b «q» – ｆｕｌｌ\u00a0nbsp",
    "back\\slash (1) [2] ~3 $4 %5 ;6",
    "long-" + "x" * 1000,
]


def describe(
    stream_id: str = "cam:1",
    track_id: int = 1,
    frame_index: int = 10,
    parts: list[PartDescription] | None = None,
    **kw: Any,
) -> TrackDescription:
    if parts is None:
        parts = [
            PartDescription("upper-clothes", 0.9, "red", 0.8, "short", 0.7, "solid", 0.6),
            PartDescription("pants", 0.8, "blue", 0.9, "long", 0.8),
        ]
    fields: dict[str, Any] = dict(
        stream_id=stream_id,
        track_id=track_id,
        frame_index=frame_index,
        pts=frame_index / 25,
        first_seen=0.0,
        last_seen=frame_index / 25,
        first_seen_time=1.7e9,
        last_seen_time=1.7e9 + frame_index / 25,
        parts=parts,
        sentence="a person",
        thumbnail=b"\xff\xd8thumb",
    )
    fields.update(kw)
    return TrackDescription(**fields)


# fmt: skip


@pytest.fixture
def store(redis_client: Any, redis_prefix: str) -> TrackStore:
    store = TrackStore(redis_client, prefix=redis_prefix)
    store.ensure_index()
    return store


def test_ensure_index_is_idempotent(redis_client: Any, redis_prefix: str) -> None:
    store = TrackStore(redis_client, prefix=redis_prefix)
    assert store.ensure_index() == "created"
    assert store.ensure_index() == "exists"
    assert TrackStore(redis_client, prefix=redis_prefix).ensure_index() == "exists"


def test_schema_version_change_migrates_and_keeps_documents(store: TrackStore) -> None:
    store.upsert_many([describe(track_id=i) for i in range(20)])
    store.client.hset(f"{store.prefix}meta", f"schema:{store.index_name}", "0-old")
    assert store.ensure_index() == "migrated"
    assert store.count_tracks() == 20
    assert len(store.find(build_tag_clause("pants_color", ["blue"]), limit=50)) == 20
    assert store.ensure_index() == "exists"


def test_upsert_twice_gives_one_document(store: TrackStore) -> None:
    desc = describe()
    assert store.upsert(desc) == "written"
    updated_at = store.get_track("cam:1", 1)["updated_at"]
    assert store.upsert(desc) == "unchanged"
    assert store.upsert_many([desc, desc]) == ["unchanged", "unchanged"]
    assert store.count_tracks() == 1
    assert store.get_track("cam:1", 1)["updated_at"] == updated_at


def test_newer_description_replaces_fields_and_older_is_stale(store: TrackStore) -> None:
    store.upsert(describe(frame_index=10, parts=[PartDescription("coat", 1.0, "green")]))
    newer = describe(frame_index=20, parts=[PartDescription("upper-clothes", 1.0, "red")])
    assert store.upsert(newer) == "written"
    assert store.upsert(describe(frame_index=15)) == "stale"
    assert store.find(build_tag_clause("coat_color", ["green"])) == []  # the coat came off
    track = store.get_track("cam:1", 1)
    assert track is not None and track["frame_index"] == 20
    assert [p["part"] for p in track["parts"]] == ["upper-clothes"]
    assert track["thumbnail"] == b"\xff\xd8thumb"
    final = describe(frame_index=20, parts=newer.parts, final=True)
    assert store.upsert(final) == "written"
    assert store.upsert(newer) == "stale"  # a retried non-final write cannot undo final


def test_tag_queries_find_by_part_and_characteristic(store: TrackStore) -> None:
    store.upsert_many([
        describe(track_id=1),
        describe(track_id=2, parts=[PartDescription("upper-clothes", 1.0, "blue"),
                                    PartDescription("pants", 1.0, "red", size="short")]),
        describe(track_id=3, parts=[PartDescription("hair", 1.0, "dark", size="long")]),
    ])  # fmt: skip

    def ids(query: str) -> set[int]:
        return {t["track_id"] for t in store.find(query, limit=10)}

    assert ids(build_tag_clause("upper_clothes_color", ["red"])) == {1}
    assert ids(build_tag_clause("pants_color", ["red", "blue"])) == {1, 2}
    assert ids(build_tag_clause("hair_size", ["long"])) == {3}
    assert ids(build_tag_clause("parts", ["hair"])) == {3}
    long_pants = build_tag_clause("pants_size", ["long"])
    blue_top = build_tag_clause("upper_clothes_color", ["blue"])
    assert ids(f"{long_pants} -{blue_top}") == {1}
    assert ids("@upper_clothes_color_conf:[0.75 +inf]") == {1}
    assert ids("@pants_presence:[0.85 +inf]") == {2}


@pytest.mark.parametrize("stream_id", HOSTILE_STREAMS)
def test_hostile_stream_ids_round_trip_and_match_only_themselves(
    store: TrackStore, stream_id: str
) -> None:
    store.upsert(describe(stream_id=stream_id, track_id=5))
    store.upsert(describe(stream_id="other", track_id=5))
    store.upsert(describe(stream_id=stream_id[:3], track_id=6))
    hits = store.find(build_tag_clause("stream", [stream_id]))
    assert [(t["stream_id"], t["track_id"]) for t in hits] == [(stream_id, 5)]
    assert store.get_track(stream_id, 5)["stream_id"] == stream_id


def test_injection_attempts_match_nothing(store: TrackStore) -> None:
    store.upsert(describe())
    for value in ["red} | @pants_color:{blue", "*", "red | blue", "-red"]:
        assert store.find(build_tag_clause("upper_clothes_color", [value])) == []


def test_vector_knn_ranks_the_matching_track_first(store: TrackStore) -> None:
    store.upsert_many([
        describe(track_id=1, parts=[PartDescription("coat", 1.0, "green")]),
        describe(track_id=2, parts=[PartDescription("upper-clothes", 1.0, "red")]),
        describe(track_id=3, parts=[PartDescription("hair", 1.0, "light", size="long")]),
    ])  # fmt: skip
    hits = store.knn(embed_text("red top"), k=3)
    assert [t["track_id"] for t, _ in hits][0] == 2
    distances = [d for _, d in hits]
    assert distances == sorted(distances) and 0.0 <= distances[0] < 1.0
    filtered = store.knn(
        embed_text("red top"), k=3, filter_query=build_tag_clause("parts", ["hair"])
    )
    assert [t["track_id"] for t, _ in filtered] == [3]


@pytest.mark.parametrize("protocol", [2, 3])
def test_count_and_find_work_with_both_protocols(
    redis_server: EmbeddedRedis, redis_prefix: str, protocol: int
) -> None:
    store = TrackStore(redis_server.client(protocol=protocol), prefix=redis_prefix)
    store.ensure_index()
    store.upsert_many([describe(track_id=i) for i in range(3)])
    assert store.count_tracks() == 3
    assert {t["track_id"] for t in store.find(build_tag_clause("stream", ["cam:1"]))} == {0, 1, 2}


def test_events_are_appended_once(store: TrackStore) -> None:
    appeared = TrackEvent("cam:1", 1, 10, 0.4, "appeared")
    changed = TrackEvent("cam:1", 1, 50, 2.0, "changed", "coat: present -> absent")
    assert store.append_events([appeared, appeared, changed]) == 2
    assert store.append_events([appeared, changed]) == 0
    events = store.read_events()
    assert [(e["kind"], e["detail"]) for e in events] == [
        ("appeared", ""),
        ("changed", "coat: present -> absent"),
    ]
    assert store.read_events(after=events[0]["id"])[0]["kind"] == "changed"


def test_file_status_round_trip(store: TrackStore) -> None:
    assert store.get_file_status("/videos/a b.mp4") is None
    store.set_file_status("/videos/a b.mp4", "running", 120)
    store.set_file_status("/videos/a b.mp4", "done", 795)
    status = store.get_file_status("/videos/a b.mp4")
    assert status is not None and (status.status, status.last_committed_frame) == ("done", 795)


def test_password_is_enforced_and_server_is_on_loopback(redis_server: EmbeddedRedis) -> None:
    address = {"host": redis_server.host, "port": redis_server.port, "retry": no_retry()}
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(**address).ping()
    with pytest.raises(redis.exceptions.AuthenticationError):
        redis.Redis(**address, password="wrong").ping()
    client = redis_server.client(decode_responses=True)
    assert client.config_get("bind")["bind"] == "127.0.0.1"
    assert client.config_get("protected-mode")["protected-mode"] == "yes"
    password_file = Path(client.config_get("dir")["dir"]) / "password"
    assert password_file.stat().st_mode & 0o777 == 0o600


def test_kill_9_and_restart_keeps_data(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path).start()
    store = TrackStore(server.client(), prefix="k:")
    store.ensure_index()
    store.upsert_many([describe(track_id=i) for i in range(5)])
    os.kill(server.pid, signal.SIGKILL)
    server._process.wait()
    restarted = EmbeddedRedis(tmp_path).start()
    try:
        assert restarted.owned and restarted.pid != server.pid
        store = TrackStore(restarted.client(), prefix="k:")
        assert store.ensure_index() == "exists"
        assert store.count_tracks() == 5
        assert store.get_track("cam:1", 4) is not None
    finally:
        restarted.stop()


def test_second_instance_reuses_the_running_server(tmp_path: Path) -> None:
    with EmbeddedRedis(tmp_path) as first:
        first.client().set("shared", "yes")
        second = EmbeddedRedis(tmp_path).start()
        assert (second.pid, second.port, second.owned) == (first.pid, first.port, False)
        assert second.url == first.url
        second.stop()  # does not stop a server it did not start
        assert first.client().get("shared") == b"yes"
    assert json.loads((tmp_path / "server.json").read_text())["pid"] is None


def test_explicit_busy_port_is_a_clear_error(tmp_path: Path) -> None:
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        with pytest.raises(ServiceError, match="busy"):
            EmbeddedRedis(tmp_path, port=busy.getsockname()[1]).start()


def test_module_load_failure_is_a_clear_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    fake_module = tmp_path / "broken.so"
    fake_module.write_bytes(b"not an ELF file")
    real = find_redis_binaries()
    monkeypatch.setattr(redis_server_module, "find_redis_binaries",
                        lambda: RedisBinaries(real.server, (fake_module,)))  # fmt: skip
    with pytest.raises(ServiceError, match="modules failed to load.*redis.log"):
        EmbeddedRedis(tmp_path / "data").start()


def test_redis_without_search_module_is_a_clear_error(tmp_path: Path) -> None:
    plain = EmbeddedRedis(tmp_path, password="pw")
    real = find_redis_binaries()
    original = redis_server_module.find_redis_binaries
    redis_server_module.find_redis_binaries = lambda: RedisBinaries(real.server, ())
    try:
        plain.start()
    finally:
        redis_server_module.find_redis_binaries = original
    try:
        with pytest.raises(ServiceError, match="no RediSearch module"):
            TrackStore(plain.client()).ensure_index()
    finally:
        plain.stop()


def test_redis_down_writes_are_spooled_and_replayed_after_restart(tmp_path: Path) -> None:
    server = EmbeddedRedis(tmp_path / "redis").start()
    port = server.port
    spool = tmp_path / "spool" / "sink.jsonl"
    store = TrackStore.from_url(server.url, prefix="s:")
    sink = BufferedSink(store, spool, max_memory=1)
    sink.upsert(describe(track_id=1))
    server.shutdown()
    for frame in (20, 30):
        sink.upsert(describe(track_id=2, frame_index=frame))
    sink.append_events([TrackEvent("cam:1", 2, 30, 1.2, "ended")])
    sink.set_file_status("a.mp4", "done", 30)
    assert sink.pending == 4 and spool.exists()
    sink.close()  # the process "exits" with writes on disk

    restarted = EmbeddedRedis(tmp_path / "redis").start()
    try:
        assert restarted.port == port  # the previous port is preferred, so URLs stay valid
        sink = BufferedSink(store, spool)
        assert sink.pending == 4
        assert sink.flush(force=True) is True
        assert not spool.exists()
        assert store.count_tracks() == 2
        assert store.get_track("cam:1", 2)["frame_index"] == 30
        assert [e["kind"] for e in store.read_events()] == ["ended"]
        assert store.get_file_status("a.mp4").status == "done"
        sink.close()
    finally:
        restarted.stop()


def test_embedding_vector_is_stored_as_float32(store: TrackStore) -> None:
    store.upsert(describe())
    vector = store.get_track("cam:1", 1)["vector"]
    assert vector.dtype == np.float32 and np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_a_later_process_reuses_a_server_left_running(tmp_path: Path) -> None:
    # `describeme run` (keep_running) then `describeme search` in another process.
    code = (
        "import sys; from describeme.operators.redis_server import EmbeddedRedis;"
        "s = EmbeddedRedis(sys.argv[1], keep_running=True).start();"
        "s.client().set('left', 'behind'); pid = s.pid; s.stop(); print(pid)"
    )
    done = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    later = EmbeddedRedis(tmp_path).start()
    try:
        assert later.pid == int(done.stdout.strip()) and not later.owned
        assert later.client().get("left") == b"behind"
    finally:
        later.shutdown()
    assert not pid_alive(int(done.stdout.strip()))


def test_both_modules_are_loaded(redis_client: Any) -> None:
    names = {module[b"name"] for module in redis_client.module_list()}
    assert {b"search", b"ReJSON"} <= names
    redis_client.json().set("json:probe", "$", {"ok": True})
    assert redis_client.json().get("json:probe") == {"ok": True}


def test_unreachable_redis_is_a_clear_error_without_the_password() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"redis://:topsecret@127.0.0.1:{closed_port}/0"
    with pytest.raises(ServiceError, match=f"cannot reach Redis at .*{closed_port}") as caught:
        TrackStore.from_url(url)
    assert "topsecret" not in str(caught.value)


def test_resolve_redis_starts_the_embedded_server(tmp_path: Path) -> None:
    url, server = resolve_redis(None, data_dir=tmp_path)
    try:
        assert server is not None and server.owned and url == server.url
        assert TrackStore.from_url(url).ensure_index() == "created"
    finally:
        server.stop()
