"""The FastAPI app of ``describeme serve``: routes, auth, limits, metrics, the web page.

One HTTP middleware runs for every request, in this order: size limits (414 URL, 413 body),
bearer auth when a token is set (401), the per-client rate limit (429 with Retry-After),
then the route; it records each request's count and latency under its route template.
The web page (``/`` and ``/static/*``) and ``/healthz`` need no token and no rate budget.
"""

from __future__ import annotations

import hashlib
import logging
import time
from collections.abc import MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.routing import Match

from describeme.errors import ServiceError
from describeme.operators.query import QueryError
from describeme.service.auth import check_token_text, token_matches
from describeme.service.backend import TrackBackend
from describeme.service.metrics import RequestMetrics
from describeme.service.ratelimit import RateLimiter
from describeme.service.routes import ApiError, StreamControl, add_routes

__all__ = ["ServeSettings", "build_app", "STATIC_DIR"]

log = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
OPEN_PATHS = ("/", "/healthz", "/favicon.ico")
# The page loads only its own script and style; thumbnails come inline (data:) or as blobs.
PAGE_HEADERS = {
    "Content-Security-Policy": "default-src 'self'; img-src 'self' data: blob:; "
    "object-src 'none'; base-uri 'none'; frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}


@dataclass(frozen=True)
class ServeSettings:
    """Limits and credentials of the API.

    Attributes:
        token: bearer token required on API routes (None: no auth; loopback only).
        rate_per_s, burst: per-client request budget (token bucket).
        max_url_chars: longest accepted path + query string (414 beyond).
        max_body_bytes: largest accepted request body (413 beyond; POST /streams reads one).
    """

    token: str | None = None
    rate_per_s: float = 20.0
    burst: int = 40
    max_url_chars: int = 2048  # a 300-character query, percent-encoded, fits with room
    max_body_bytes: int = 16_384

    def __post_init__(self) -> None:
        if self.token is not None:
            check_token_text(self.token)
        if not 64 <= int(self.max_url_chars) <= 65_536:
            raise ValueError(f"max_url_chars must be in [64, 65536], got {self.max_url_chars}")
        if not 0 <= int(self.max_body_bytes) <= 10_000_000:
            raise ValueError(f"max_body_bytes must be in [0, 1e7], got {self.max_body_bytes}")


def _error(status: int, message: str, headers: dict[str, str] | None = None) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status, headers=headers)


def _route_template(app: FastAPI, scope: MutableMapping[str, Any]) -> str:
    """The matching route's path template (bounded label set for metrics), or ``other``."""
    for route in app.router.routes:
        match, _ = route.matches(scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    return "other"


def _client_key(request: Request) -> str:
    header = request.headers.get("authorization")
    if header:  # one budget per credential, whatever address it comes from
        return "token:" + hashlib.sha256(header.encode()).hexdigest()[:16]
    return "ip:" + (request.client.host if request.client else "unknown")


def _is_open(path: str) -> bool:
    return path in OPEN_PATHS or path.startswith("/static/")


def _guard(request: Request, settings: ServeSettings, limiter: RateLimiter) -> Response | None:
    """The refusal of a request that breaks a size limit, lacks the token or is over budget."""
    url_chars = len(request.url.path) + len(request.url.query)
    if url_chars > settings.max_url_chars:
        return _error(
            414,
            f"request URL is {url_chars} characters; at most "
            f"{settings.max_url_chars} (queries are at most 300 characters)",
        )
    length = request.headers.get("content-length")
    if length is not None and (not length.isdigit() or int(length) > settings.max_body_bytes):
        return _error(413, f"request body must be at most {settings.max_body_bytes} bytes")
    if _is_open(request.url.path):
        return None
    if settings.token is not None and not token_matches(
        request.headers.get("authorization"), settings.token
    ):
        return _error(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' (the "
                           "--token / DESCRIBEME_API_TOKEN the server was started with)",
                      {"WWW-Authenticate": "Bearer"})  # fmt: skip
    wait = limiter.acquire(_client_key(request))
    if wait > 0:
        return _error(429, f"rate limit of {settings.rate_per_s:g} requests/s (burst "
                           f"{settings.burst}) exceeded; retry in {wait:.1f} s",
                      {"Retry-After": str(max(1, int(wait + 0.999)))})  # fmt: skip
    return None


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(ApiError)
    def _api_error(request: Request, exc: ApiError) -> JSONResponse:
        return _error(exc.status, exc.message)

    @app.exception_handler(QueryError)
    def _query_error(request: Request, exc: QueryError) -> JSONResponse:
        return _error(400, str(exc))

    @app.exception_handler(RequestValidationError)
    def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in e.get('loc', ())[1:]) or 'request'}: {e.get('msg')}"
            for e in exc.errors()
        )
        return _error(400, f"bad request parameters: {problems}")

    def _unavailable(request: Request, exc: Exception) -> JSONResponse:
        log.warning("store unavailable during %s: %s", request.url.path, exc)
        return _error(503, f"the track store is unavailable ({type(exc).__name__}); retry later")

    app.add_exception_handler(ServiceError, _unavailable)
    try:
        import redis
    except ImportError:  # pragma: no cover - redis is a dependency
        return
    app.add_exception_handler(redis.exceptions.RedisError, _unavailable)


def build_app(backend: TrackBackend, settings: ServeSettings | None = None,
              controller: StreamControl | None = None) -> FastAPI:  # fmt: skip
    """The API with its web page.

    Args:
        backend: where tracks are read (:class:`~describeme.service.backend.StoreBackend`).
        settings: auth and limits (default: no token, 20 requests/s, burst 40).
        controller: starts and stops streams on a running pipeline
            (:class:`~describeme.pipeline.control.StreamController`); None: ``POST`` and
            ``DELETE /streams`` answer 501.
    """
    settings = settings or ServeSettings()
    app = FastAPI(
        title="describeme",
        summary="Find people in video by description.",
        docs_url=None,
        redoc_url=None,
    )  # the docs pages load scripts from a CDN
    app.state.backend = backend
    app.state.controller = controller
    app.state.settings = settings
    app.state.metrics = RequestMetrics()
    limiter = RateLimiter(settings.rate_per_s, settings.burst)
    add_routes(app)
    _add_error_handlers(app)

    @app.get("/", include_in_schema=False)
    def index() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", headers=PAGE_HEADERS)

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    @app.middleware("http")
    async def guard_and_measure(request: Request, call_next: Any) -> Response:
        start = time.perf_counter()
        route = _route_template(app, request.scope)
        response = _guard(request, settings, limiter)
        if response is None:
            try:
                response = await call_next(request)
            except Exception:  # a bug, not a bad request: log it, answer JSON, keep counting
                log.exception("unhandled error in %s %s", request.method, route)
                response = _error(500, "internal error; the server log has the details")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        app.state.metrics.observe(request.method, route, response.status_code,
                                  time.perf_counter() - start)  # fmt: skip
        return response

    return app
