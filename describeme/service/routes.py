"""The API routes: search, tracks, thumbnails, streams, health and metrics.

Handlers are plain ``def``: the Redis client blocks, so FastAPI runs them on its thread pool.
Every error is a JSON object ``{"error": "..."}`` whose text says what to change.
"""

from __future__ import annotations

import logging
import re
from typing import Any, Protocol
from urllib.parse import quote, unquote

from fastapi import Body, FastAPI, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response
from pydantic import BaseModel, ConfigDict, Field

from describeme.errors import ServiceError
from describeme.operators.query import Filters, parse_query, parse_time_bound
from describeme.operators.retrieval import MAX_LIMIT, MAX_OFFSET
from describeme.pipeline.control import (
    MAX_SOURCE_CHARS,
    MAX_STREAM_ID_CHARS,
    StreamExistsError,
    UnknownStreamError,
)
from describeme.service.backend import (
    MAX_TRACK_REF_CHARS,
    TrackBackend,
    format_track_ref,
    parse_track_ref,
)

__all__ = ["STREAM_CONTROL_MESSAGE", "ApiError", "StreamControl", "StreamRequest", "add_routes",
           "parse_stream_ref"]  # fmt: skip

log = logging.getLogger(__name__)

STREAM_CONTROL_MESSAGE = ("stream control needs a running pipeline: start the server with "
                          "'describeme serve --pipeline' (or run streams with 'describeme run "
                          "SOURCE...')")  # fmt: skip
_STREAM_REF = re.compile(r"[A-Za-z0-9._~%-]+")
MAX_CAMERAS = 32  # camera filters per query; each is one escaped TAG value


class ApiError(Exception):
    """An error answered as ``{"error": message}`` with ``status``."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


class StreamControl(Protocol):
    """What the stream routes need: :class:`describeme.pipeline.control.StreamController`."""

    def add(self, source: str, stream_id: str | None = None) -> dict[str, Any]: ...
    def remove(self, stream_id: str) -> dict[str, Any]: ...
    def list(self) -> list[dict[str, Any]]: ...


class StreamRequest(BaseModel):
    """Body of ``POST /streams``."""

    model_config = ConfigDict(extra="forbid")

    source: str = Field(..., min_length=1, max_length=MAX_SOURCE_CHARS,
                        description="rtsp(s):// or http(s):// URL, /dev/videoN, or a file "
                                    "under the server's --media-root")  # fmt: skip
    stream_id: str | None = Field(None, min_length=1, max_length=MAX_STREAM_ID_CHARS,
                                  description="default: derived from the source (as "
                                              "'describeme run' does)")  # fmt: skip


def parse_stream_ref(ref: str) -> str:
    """The stream id of a ``/streams/{stream_ref}`` path: the id percent-encoded (the
    record's ``id``), e.g. ``cam1`` or ``host%3A554%2Flive``.

    Raises:
        ValueError: too long, characters outside ``[A-Za-z0-9._~%-]``, or bad encoding.
    """
    if len(ref) > MAX_TRACK_REF_CHARS or not _STREAM_REF.fullmatch(ref):
        raise ValueError(f"stream id {ref[:60]!r} must be the percent-encoded stream id (the "
                         "'id' field of a GET /streams record), e.g. 'cam1'")  # fmt: skip
    try:
        return unquote(ref, errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"stream id {ref[:60]!r} is not UTF-8 once decoded") from None


def _controller(request: Request) -> StreamControl:
    controller: StreamControl | None = getattr(request.app.state, "controller", None)
    if controller is None:
        raise ApiError(501, STREAM_CONTROL_MESSAGE)
    return controller


def _stream_record(record: dict[str, Any]) -> dict[str, Any]:
    return {"id": quote(str(record["stream_id"]), safe=""), **record}


def _control_error(exc: Exception) -> ApiError:
    """The HTTP answer to a refused stream request (the message says what to change)."""
    if isinstance(exc, PermissionError):
        return ApiError(403, str(exc))
    if isinstance(exc, StreamExistsError):
        return ApiError(409, str(exc))
    if isinstance(exc, UnknownStreamError):
        return ApiError(404, str(exc.args[0] if exc.args else exc))
    if isinstance(exc, ServiceError):
        return ApiError(503, f"cannot start another stream: {exc}")
    return ApiError(400, str(exc))


_ERROR_TEXT = {
    400: "malformed body, source or stream id", 403: "source refused by the server's policy "
    "(network URLs, /dev/videoN, files under --media-root)", 404: "no such stream",
    409: "a stream with this id is running", 501: "server started without --pipeline",
    503: "no CPU left in Ray for another stream",
}  # fmt: skip


def _errors(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` for the stream routes' error answers (``{"error": ...}``)."""
    return {status: {"description": _ERROR_TEXT[status]} for status in statuses}


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

    @router.get("/streams", summary="Streams in the store (track counts) and live streams")
    def list_streams(request: Request) -> dict[str, Any]:
        """``streams``: what the store holds; ``live`` (with ``--pipeline`` only): streams
        this server runs, with status running/stopping/finished/stopped/failed."""
        body: dict[str, Any] = {"streams": [s.to_dict() for s in _backend(request).streams()]}
        controller = getattr(request.app.state, "controller", None)
        if controller is not None:
            body["live"] = [_stream_record(r) for r in controller.list()]
        return body

    @router.post("/streams", summary="Start a stream on the running pipeline (serve --pipeline)",
                 status_code=201, responses=_errors(400, 403, 409, 501, 503))  # fmt: skip
    def add_stream(request: Request, body: StreamRequest = Body(...)) -> dict[str, Any]:
        """Starts reading ``source`` into the pipeline; 201 with the stream's record."""
        controller = _controller(request)
        try:
            record = controller.add(body.source, body.stream_id)
        except (ValueError, TypeError, PermissionError, ServiceError) as exc:
            raise _control_error(exc) from None
        return _stream_record(record)

    @router.delete("/streams/{stream_ref}", summary="Stop a live stream (serve --pipeline)",
                   responses=_errors(400, 404, 501))  # fmt: skip
    def remove_stream(request: Request, stream_ref: str) -> dict[str, Any]:
        """Stops the stream (its in-flight frames are still described and written) and
        answers its final record; 404 for a stream this server does not know."""
        controller = _controller(request)
        try:
            stream_id = parse_stream_ref(stream_ref)
        except ValueError as exc:
            raise ApiError(400, str(exc)) from None
        try:
            record = controller.remove(stream_id)
        except LookupError as exc:
            raise _control_error(exc) from None
        return _stream_record(record)

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
