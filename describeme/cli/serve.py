"""``describeme serve``: the HTTP API and search web page over the track store.

Binds 127.0.0.1:8080 by default. Any other address needs a token (``--token`` or
``$DESCRIBEME_API_TOKEN``), which clients then send as ``Authorization: Bearer TOKEN``.
FastAPI, uvicorn and redis are imported inside the command, so ``describeme --help`` stays fast.
"""

from __future__ import annotations

import logging

import typer

log = logging.getLogger(__name__)


def _serve(host: str, port: int, token: str | None, redis_url: str | None, prefix: str,
           rate: float, burst: int) -> None:  # fmt: skip
    """Connects to the store (embedded Redis unless a URL), then runs uvicorn until stopped."""
    import uvicorn

    from describeme.operators.redis_server import resolve_redis
    from describeme.operators.store import TrackStore, redact_url
    from describeme.service.app import ServeSettings, build_app
    from describeme.service.backend import StoreBackend

    settings = ServeSettings(token=token, rate_per_s=rate, burst=burst)
    url, server = resolve_redis(redis_url)
    try:
        store = TrackStore.from_url(url, prefix=prefix)
        store.ensure_index()
        app = build_app(StoreBackend(store), settings)
        log.info("serving %s on http://%s:%d (store %s, auth %s)", prefix, host, port,
                 redact_url(url), "bearer token" if token else "off (loopback only)")  # fmt: skip
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    finally:
        if server is not None:
            server.stop()


def register(app: typer.Typer) -> None:
    """Adds the ``serve`` command to ``app``."""

    @app.command()
    def serve(
        host: str = typer.Option(
            "127.0.0.1", "--host", help="Bind address; beyond loopback a token is required."
        ),
        port: int = typer.Option(8080, "--port", min=1, max=65535, help="TCP port."),
        token: str | None = typer.Option(
            None, "--token", help="Bearer token clients must send (or $DESCRIBEME_API_TOKEN)."
        ),
        redis_url: str | None = typer.Option(
            None, "--redis-url", help="External Redis (default: embedded)."
        ),
        key_prefix: str = typer.Option(
            "describeme:", "--key-prefix", help="Key namespace the tracks were written under."
        ),
        rate: float = typer.Option(
            20.0, "--rate-limit", min=0.01, help="Requests per second per client."
        ),
        burst: int = typer.Option(40, "--burst", min=1, help="Requests a client may make at once."),
    ) -> None:
        """Serve the search API (OpenAPI at /openapi.json) and the search web page at /."""
        from describeme.service.auth import check_bind, resolve_token

        resolved = resolve_token(token)
        check_bind(host, resolved)  # before Redis starts: refuse fast and change nothing
        _serve(host, port, resolved, redis_url, key_prefix, rate, burst)
