"""The API routes: search, tracks, thumbnails, streams, health and metrics.

Handlers are plain ``def``: the Redis client blocks, so FastAPI runs them on its thread pool.
Every error is a JSON object ``{"error": "..."}`` whose text says what to change.
"""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response

from describeme.operators.query import Filters, parse_query, parse_time_bound
from describeme.operators.retrieval import MAX_LIMIT, MAX_OFFSET
from describeme.service.backend import TrackBackend, format_track_ref, parse_track_ref

__all__ = ["STREAM_CONTROL_MESSAGE", "ApiError", "add_routes"]

log = logging.getLogger(__name__)

STREAM_CONTROL_MESSAGE = ("stream control needs a running pipeline; not available in this "
                          "version (start streams with 'describeme run SOURCE...')")  # fmt: skip
MAX_CAMERAS = 32  # camera filters per query; each is one escaped TAG value


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def _backend(request: Request) -> TrackBackend:
    backend: TrackBackend = request.app.state.backend
    return backend


def _track_ref(ref: str) -> tuple[str, int]:
    try:
        return parse_track_ref(ref)
    except ValueError as exc:
        raise ApiError(400, str(exc)) from None


def _public_track(track: dict[str, Any]) -> dict[str, Any]:
    """A stored track as JSON: adds ``id`` and ``thumbnail_url``; drops bytes and vectors."""
    ref = format_track_ref(track["stream_id"], track["track_id"])
    out = {k: v for k, v in track.items() if k not in ("thumbnail", "vector")}
    out["id"] = ref
    out["thumbnail_url"] = f"/tracks/{ref}/thumbnail" if track.get("thumbnail") else None
    return out


def _filters(camera: list[str], since: str | None, until: str | None) -> Filters:
    if len(camera) > MAX_CAMERAS:
        raise ApiError(400, f"at most {MAX_CAMERAS} camera filters, got {len(camera)}")
    if any(not c.strip() for c in camera):
        raise ApiError(400, "camera filter must not be empty")
    return Filters(tuple(camera), parse_time_bound(since) if since else None,
                   parse_time_bound(until) if until else None)  # fmt: skip


def add_routes(router: FastAPI) -> None:
    """Adds the API routes to the app (directly, so each route keeps its path template for
    the metrics); the app supplies ``app.state.backend`` and ``app.state.metrics``."""

    @router.get("/search", summary="Find tracks by a person description")
    def search(
        request: Request,
        q: str = Query(..., description="e.g. 'red shirt and blue jeans, no hat'"),
        limit: int = Query(10, ge=1, le=MAX_LIMIT),
        offset: int = Query(0, ge=0, le=MAX_OFFSET),
        camera: list[str] = Query([], description="only these stream ids (repeat)"),
        since: str | None = Query(None, description="seen at/after: ISO time, 14:30, 10m, Unix s"),
        until: str | None = Query(None, description="seen at/before (same forms)"),
        thumbnails: bool = Query(True, description="inline base64 JPEG thumbnails"),
    ) -> dict[str, Any]:
        """Strict matches first, then near misses, each with matched and failed constraints."""
        parsed = parse_query(q)  # QueryError -> 400 with the parser's explanation
        result = _backend(request).search(parsed, limit=limit, offset=offset,
                                          filters=_filters(camera, since, until))  # fmt: skip
        body = result.to_dict(thumbnails=thumbnails)
        for hit in body["hits"]:
            ref = format_track_ref(hit["stream_id"], hit["track_id"])
            hit["id"] = ref
            has_thumb = hit.get("thumbnail_jpeg_base64") or not thumbnails
            hit["thumbnail_url"] = f"/tracks/{ref}/thumbnail" if has_thumb else None
        return body

    @router.get("/tracks/{track_ref}", summary="One track with its event history")
    def get_track(request: Request, track_ref: str) -> dict[str, Any]:
        """The stored description, first/last seen, and the track's recent events."""
        stream_id, track_id = _track_ref(track_ref)
        track = _backend(request).get_track(stream_id, track_id)
        if track is None:
            raise ApiError(404, f"no track {track_ref!r} in the store")
        out = _public_track(track)
        out["events"] = _backend(request).track_events(stream_id, track_id)
        return out

    @router.get("/tracks/{track_ref}/thumbnail", summary="The track's best JPEG thumbnail",
                response_class=Response)  # fmt: skip
    def get_thumbnail(request: Request, track_ref: str) -> Response:
        stream_id, track_id = _track_ref(track_ref)
        track = _backend(request).get_track(stream_id, track_id)
        if track is None:
            raise ApiError(404, f"no track {track_ref!r} in the store")
        if not track.get("thumbnail"):
            raise ApiError(404, f"track {track_ref!r} has no thumbnail")
        return Response(bytes(track["thumbnail"]), media_type="image/jpeg",
                        headers={"Cache-Control": "private, max-age=60"})  # fmt: skip

    @router.get("/streams", summary="Streams the store knows, with track counts")
    def list_streams(request: Request) -> dict[str, Any]:
        return {"streams": [s.to_dict() for s in _backend(request).streams()]}

    @router.post("/streams", summary="Start a stream (needs a running pipeline)", status_code=501)
    def add_stream() -> JSONResponse:
        return JSONResponse({"error": STREAM_CONTROL_MESSAGE}, status_code=501)

    @router.delete("/streams/{stream_ref}", summary="Stop a stream (needs a running pipeline)",
                   status_code=501)  # fmt: skip
    def remove_stream(stream_ref: str) -> JSONResponse:
        return JSONResponse({"error": STREAM_CONTROL_MESSAGE}, status_code=501)

    @router.get("/healthz", summary="Liveness and Redis reachability")
    def healthz(request: Request) -> JSONResponse:
        backend = _backend(request)
        if not backend.ping():
            return JSONResponse({"status": "unavailable", "redis": False}, status_code=503)
        return JSONResponse({"status": "ok", "redis": True})

    @router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    def metrics(request: Request) -> PlainTextResponse:
        backend = _backend(request)
        gauges: dict[str, tuple[str, float]] = {}
        try:
            gauges["describeme_tracks"] = ("Indexed tracks.", float(backend.count_tracks()))
        except Exception as exc:  # metrics must render while Redis is down
            log.warning("metrics: cannot count tracks: %s", exc)
        text = request.app.state.metrics.render(gauges)
        return PlainTextResponse(text, media_type="text/plain; version=0.0.4")
