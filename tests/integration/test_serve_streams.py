"""Stream control over HTTP: the real graph (local Ray, 2 CPUs, stand-in parser), the embedded
Redis and real uvicorn. A client starts the bundled synthetic clip from a media folder, polls
``GET /streams`` until it has finished and finds its tracks in the store; then, with files
played as live (paced and looping, so the stream never ends by itself), starts a stream,
stops it with ``DELETE`` and checks that it drained and wrote its tracks; closing the
controller stops what is still running.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest

pytestmark = pytest.mark.integration

CLIP_FRAMES = 90  # the bundled sample clip: 6 s at 15 fps


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


@pytest.fixture(scope="module")
def media(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A media folder holding the bundled clip with its ground truth (for the stand-in)."""
    from describeme.data.synth import (
        sample_clip_gt_path,
        sample_clip_path,
        sample_clip_tracks_path,
    )

    root = tmp_path_factory.mktemp("media")
    shutil.copy(sample_clip_path(), root / "clip.mp4")
    shutil.copy(sample_clip_gt_path(), root / "clip_gt.txt")
    shutil.copy(sample_clip_tracks_path(), root / "clip_tracks.json")
    return root


def _config(prefix: str, live: bool | None) -> Any:
    from describeme.pipeline.config import PipelineConfig

    config = PipelineConfig()
    config.parser.model = "standin"
    config.sink.prefix = prefix
    config.stream.live = live
    return config


@contextmanager
def _serving(config: Any, redis_url: str, media: Path) -> Iterator[tuple[httpx.Client, Any]]:
    """(client, controller) of an API with stream control over a started graph."""
    from describeme.operators.store import TrackStore
    from describeme.pipeline.control import SourcePolicy, StreamController
    from describeme.pipeline.graph import PipelineGraph
    from describeme.service.app import build_app
    from describeme.service.backend import StoreBackend
    from describeme.service.server import BackgroundServer

    store = TrackStore.from_url(redis_url, prefix=config.sink.prefix)
    store.ensure_index()
    graph = PipelineGraph(config, redis_url).start()
    controller = StreamController(graph, SourcePolicy([media]), stop_timeout_s=20)
    try:
        app = build_app(StoreBackend(store), controller=controller)
        with BackgroundServer(app) as server, httpx.Client(base_url=server.url,
                                                           timeout=30) as client:  # fmt: skip
            yield client, controller
    finally:
        controller.close()
        graph.shutdown()


def _poll(client: httpx.Client, until: Callable[[dict[str, Any]], bool],
          timeout_s: float = 30.0) -> dict[str, Any]:  # fmt: skip
    """GET /streams until ``until(body)``; the last body."""
    deadline = time.monotonic() + timeout_s
    while True:
        body = client.get("/streams").json()
        if until(body):
            return body
        assert time.monotonic() < deadline, f"timed out waiting; last GET /streams: {body}"
        time.sleep(0.2)


def _live(body: dict[str, Any], stream_id: str) -> dict[str, Any] | None:
    return next((s for s in body["live"] if s["stream_id"] == stream_id), None)


def _store_tracks(body: dict[str, Any], stream_id: str) -> int:
    return next((s["tracks"] for s in body["streams"] if s["stream_id"] == stream_id), 0)


def test_post_runs_a_file_to_the_end(local_ray: None, redis_url: str, redis_prefix: str,
                                     media: Path) -> None:  # fmt: skip
    with _serving(_config(redis_prefix, live=None), redis_url, media) as (client, _):
        refused = client.post("/streams", json={"source": str(media.parent / "elsewhere.mp4")})
        assert refused.status_code == 403 and "--media-root" in refused.json()["error"]

        response = client.post("/streams", json={"source": "clip.mp4", "stream_id": "door"})
        assert response.status_code == 201, response.text
        assert (response.json()["id"], response.json()["status"]) == ("door", "running")

        body = _poll(client, lambda b: _live(b, "door")["status"] != "running")
        record = _live(body, "door")
        assert (record["status"], record["frames"], record["error"]) == (
            "finished", CLIP_FRAMES, None)  # fmt: skip
        body = _poll(client, lambda b: _store_tracks(b, "door") > 0, timeout_s=10)
        track = client.get(f"/tracks/door:{_first_track_id(client, 'door')}").json()
        assert track["final"] and track["sentence"]


def _first_track_id(client: httpx.Client, stream_id: str) -> int:
    hits = client.get("/search", params={"q": "shirt", "camera": stream_id, "limit": 1,
                                         "thumbnails": "false"}).json()["hits"]  # fmt: skip
    assert hits, f"no track of {stream_id} found by /search"
    return int(hits[0]["track_id"])


def test_delete_stops_a_live_stream(local_ray: None, redis_url: str, redis_prefix: str,
                                    media: Path) -> None:  # fmt: skip
    # Files played as live are paced at 15 fps and loop at their end: they stop only on DELETE.
    with _serving(_config(redis_prefix, live=True), redis_url, media) as (client, controller):
        assert client.post("/streams", json={"source": str(media / "clip.mp4")}).status_code == 201
        assert client.post("/streams", json={"source": "clip.mp4"}).json()["stream_id"] == "clip-2"
        _poll(client, lambda b: _live(b, "clip")["frames"] >= 30)
        duplicate = client.post("/streams", json={"source": "clip.mp4", "stream_id": "clip"})
        assert duplicate.status_code == 409 and "already running" in duplicate.json()["error"]

        response = client.delete("/streams/clip")
        assert response.status_code == 200, response.text
        record = response.json()
        assert (record["status"], record["error"]) == ("stopped", None)
        assert record["frames"] >= 30 and record["ended_at"] >= record["started_at"]
        body = client.get("/streams").json()
        assert [s["stream_id"] for s in body["live"]] == ["clip-2"]
        assert _store_tracks(body, "clip") > 0  # drained: the final descriptions were written
        assert client.delete("/streams/clip").status_code == 404
    # Leaving the server closed the controller, which stopped the other stream.
    (other,) = controller.list()
    assert (other["stream_id"], other["status"]) == ("clip-2", "stopped")
