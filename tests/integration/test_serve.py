"""The HTTP API over real uvicorn and the real embedded Redis (RediSearch), and the CLI."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from describeme.messages import PartDescription as P
from describeme.messages import TrackDescription, TrackEvent
from describeme.operators.redis_probes import free_port
from describeme.operators.store import TrackStore
from describeme.service.app import ServeSettings, build_app
from describeme.service.backend import StoreBackend
from describeme.service.server import BackgroundServer

pytestmark = pytest.mark.integration

TOKEN = "integration-token-0123456789"
ODD_STREAM = "rtsp://cam.local:554/live 1"  # '/', ':' and a space must survive the track id
T0 = 1_800_000_000.0


def track(track_id: int, parts: list[P], stream: str = "cam-a", thumb: bool = True) -> Any:
    return TrackDescription(
        stream_id=stream, track_id=track_id, frame_index=100, pts=4.0, first_seen=0.0,
        last_seen=4.0, first_seen_time=T0, last_seen_time=T0 + 60.0, parts=parts,
        sentence=f"person {track_id}", thumbnail=b"\xff\xd8jpeg%d" % track_id if thumb else None,
        quality=0.8, num_observations=50, final=True,
    )  # fmt: skip


TRACKS = [
    track(1, [P("upper-clothes", 0.95, "red", 0.9, "long", 0.9),
              P("pants", 0.9, "blue", 0.9, "long", 0.9)]),
    track(2, [P("upper-clothes", 0.95, "blue", 0.9), P("pants", 0.9, "red", 0.9)]),
    track(3, [P("coat", 0.9, "green", 0.9), P("hat", 0.8, "dark", 0.9)], stream=ODD_STREAM),
    track(4, [P("upper-clothes", 0.9, "red", 0.5)], stream="cam-b", thumb=False),
]  # fmt: skip


@pytest.fixture
def store(redis_client: Any, redis_prefix: str) -> TrackStore:
    store = TrackStore(redis_client, prefix=redis_prefix)
    store.ensure_index()
    store.upsert_many(TRACKS)
    store.append_events([TrackEvent(ODD_STREAM, 3, 10, 0.4, "appeared", ""),
                         TrackEvent(ODD_STREAM, 3, 90, 3.6, "changed", "coat off"),
                         TrackEvent("cam-a", 1, 12, 0.5, "appeared", "")])  # fmt: skip
    store.set_file_status("/videos/a.mp4", "done", 795)
    store.wait_indexed()
    return store


@pytest.fixture
def api(store: TrackStore) -> Iterator[httpx.Client]:
    with BackgroundServer(build_app(StoreBackend(store))) as server:
        with httpx.Client(base_url=server.url, timeout=10) as client:
            yield client


def test_search_over_http_ranks_and_explains(api: httpx.Client) -> None:
    body = api.get("/search", params={"q": "red shirt and blue pants"}).json()
    first = body["hits"][0]
    assert (first["id"], first["strict"], first["thumbnail_url"]) == (
        "cam-a:1", True, "/tracks/cam-a:1/thumbnail")  # fmt: skip
    assert {"pants color=blue", "upper-clothes color=red"} <= set(first["matched"])
    assert first["failed"] == []
    assert body["strict_total"] == 1
    assert api.get(first["thumbnail_url"]).content == b"\xff\xd8jpeg1"


@pytest.mark.parametrize(
    "query",
    ['red shirt"} | @stream:{*', "red -@parts:{hat} (shirt)", "blue * jeans ~ ;;", "\u00e9 red"],
)
def test_hostile_queries_never_break_the_search(api: httpx.Client, query: str) -> None:
    response = api.get("/search", params={"q": query})
    assert response.status_code == 200, response.text
    assert all(
        hit["stream_id"] in {"cam-a", "cam-b", ODD_STREAM} for hit in response.json()["hits"]
    )


def test_track_with_odd_stream_id_and_its_history(api: httpx.Client) -> None:
    hits = api.get("/search", params={"q": "green coat"}).json()["hits"]
    ref = hits[0]["id"]
    assert ref == quote(ODD_STREAM, safe="") + ":3"
    track = api.get(f"/tracks/{quote(ref, safe=':')}").json()
    assert (track["stream_id"], track["track_id"]) == (ODD_STREAM, 3)
    history = [(e["kind"], e["detail"]) for e in track["events"]]
    assert history == [("appeared", ""), ("changed", "coat off")]
    thumb = api.get(f"/tracks/{quote(ref, safe=':')}/thumbnail")
    assert thumb.status_code == 200 and thumb.content == b"\xff\xd8jpeg3"
    assert api.get("/tracks/cam-b:4/thumbnail").status_code == 404
    assert api.get("/tracks/cam-a:77").status_code == 404


def test_streams_health_and_metrics(api: httpx.Client) -> None:
    streams = {s["stream_id"]: s for s in api.get("/streams").json()["streams"]}
    assert {k: v["tracks"] for k, v in streams.items()} == {
        "cam-a": 2, "cam-b": 1, ODD_STREAM: 1, "/videos/a.mp4": 0}  # fmt: skip
    assert streams["/videos/a.mp4"]["file_status"] == "done"
    assert streams["/videos/a.mp4"]["last_committed_frame"] == 795
    assert api.get("/healthz").json() == {"status": "ok", "redis": True}
    text = api.get("/metrics").text
    assert 'describeme_http_requests_total{method="GET",route="/streams",status="200"} 1' in text
    assert "describeme_tracks 4.0" in text


def test_token_on_a_real_server(store: TrackStore) -> None:
    app = build_app(StoreBackend(store), ServeSettings(token=TOKEN))
    with BackgroundServer(app) as server, httpx.Client(base_url=server.url) as client:
        assert client.get("/search", params={"q": "red shirt"}).status_code == 401
        auth = {"Authorization": f"Bearer {TOKEN}"}
        assert client.get("/search", params={"q": "red shirt"}, headers=auth).status_code == 200
        assert client.get("/healthz").status_code == 200


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "describeme.cli.main", *args],
                          capture_output=True, text=True, timeout=60, env=env)  # fmt: skip


def test_cli_refuses_open_bind_without_token() -> None:
    env = {k: v for k, v in os.environ.items() if k != "DESCRIBEME_API_TOKEN"}
    result = run_cli("serve", "--host", "0.0.0.0", env=env)
    assert result.returncode == 2
    assert result.stderr.strip().startswith("error: refusing to serve on 0.0.0.0 without a token")
    assert len(result.stderr.strip().splitlines()) == 1


def test_cli_serves_the_store(store: TrackStore, redis_url: str, redis_prefix: str) -> None:
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "describeme.cli.main", "serve", "--port", str(port),
         "--redis-url", redis_url, "--key-prefix", redis_prefix],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(base + "/healthz", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert process.poll() is None, process.communicate()[1]
            assert time.monotonic() < deadline, "describeme serve did not come up in 30 s"
            time.sleep(0.2)
        hits = httpx.get(base + "/search", params={"q": "red shirt"}).json()["hits"]
        assert hits[0]["id"] == "cam-a:1"
        assert "<title>describeme" in httpx.get(base + "/").text
    finally:
        process.send_signal(signal.SIGINT)
        process.communicate(timeout=15)
