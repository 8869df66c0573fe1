"""Fixtures of the API unit tests: a fake track backend (no Redis) and a TestClient on it."""

from __future__ import annotations

import warnings
from collections.abc import Callable
from typing import Any

import pytest

with warnings.catch_warnings():
    # Starlette 1.x suggests httpx2 for its TestClient; httpx (a dependency) works the same.
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from describeme.operators.query import Filters, ParsedQuery
from describeme.operators.retrieval_results import SearchHit, SearchResult
from describeme.service.app import ServeSettings, build_app
from describeme.service.backend import StreamSummary

JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


def stored_track(stream_id: str, track_id: int, thumbnail: bytes | None = JPEG) -> dict[str, Any]:
    """A track as ``parse_track`` returns it."""
    return {
        "stream_id": stream_id, "track_id": track_id, "frame_index": 10, "num_observations": 5,
        "pts": 1.0, "first_seen": 0.0, "last_seen": 1.0, "first_seen_time": 1_800_000_000.0,
        "last_seen_time": 1_800_000_060.0, "quality": 0.9, "updated_at": 1_800_000_061.0,
        "final": True, "sentence": f"person {track_id} in a red top",
        "parts": [{"part": "upper-clothes", "presence": 0.9, "color": "red",
                   "color_confidence": 0.9, "size": None, "size_confidence": 0.0,
                   "pattern": None, "pattern_confidence": 0.0}],
        "thumbnail": thumbnail, "vector": None,
    }  # fmt: skip


class FakeBackend:
    """Tracks in a dict; records the searches it was asked for."""

    def __init__(self) -> None:
        self.tracks: dict[tuple[str, int], dict[str, Any]] = {
            ("cam-a", 1): stored_track("cam-a", 1),
            ("rtsp://host/s 1", 2): stored_track("rtsp://host/s 1", 2),
            ("cam-b", 3): stored_track("cam-b", 3, thumbnail=None),
        }
        self.searches: list[tuple[ParsedQuery, int, int, Filters | None]] = []
        self.healthy = True
        self.fail_with: Exception | None = None

    def ping(self) -> bool:
        return self.healthy

    def count_tracks(self) -> int:
        return len(self.tracks)

    def search(
        self, parsed: ParsedQuery, *, limit: int, offset: int, filters: Filters | None
    ) -> SearchResult:
        if self.fail_with is not None:
            raise self.fail_with
        self.searches.append((parsed, limit, offset, filters))
        hits = [
            SearchHit(dict(t), f"x:track:{s}:{i}", 0.9, True, ["upper-clothes color=red"], [])
            for (s, i), t in sorted(self.tracks.items())
        ][offset : offset + limit]
        return SearchResult(parsed, hits, len(hits), offset, limit)

    def get_track(self, stream_id: str, track_id: int) -> dict[str, Any] | None:
        if self.fail_with is not None:
            raise self.fail_with
        track = self.tracks.get((stream_id, track_id))
        return dict(track) if track else None

    def track_events(self, stream_id: str, track_id: int) -> list[dict[str, str]]:
        return [{"id": "1-0", "stream_id": stream_id, "track_id": str(track_id),
                 "frame_index": "3", "pts": "0.1", "kind": "appeared", "detail": ""}]  # fmt: skip

    def streams(self) -> list[StreamSummary]:
        return [StreamSummary("cam-a", 1), StreamSummary("/v/a.mp4", 0, "done", 99)]


@pytest.fixture
def backend() -> FakeBackend:
    return FakeBackend()


@pytest.fixture
def make_client(backend: FakeBackend) -> Callable[..., TestClient]:
    """``make_client(**settings)``: a TestClient on a fresh app over ``backend``."""

    def make(**settings: Any) -> TestClient:
        return TestClient(build_app(backend, ServeSettings(**settings)))

    return make


@pytest.fixture
def client(make_client: Callable[..., TestClient]) -> TestClient:
    return make_client()
