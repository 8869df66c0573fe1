"""``describeme serve``: the HTTP API and search web page over the track store.

Binds 127.0.0.1:8080 by default. Any other address needs a token (``--token`` or
``$DESCRIBEME_API_TOKEN``), which clients then send as ``Authorization: Bearer TOKEN``.
FastAPI, uvicorn and redis are imported inside the command, so ``describeme --help`` stays fast.

Stream control: with ``--pipeline`` the server also starts the pipeline graph (a local Ray, or
``--ray-address``; the config is loaded as ``describeme run`` loads it) writing to the same
Redis and key prefix the API reads, and ``POST /streams {"source": ..., "stream_id": ...}``
starts a stream, ``DELETE /streams/ID`` stops it (its in-flight frames are still described and
written) and ``GET /streams`` lists live streams under ``live``. API clients may start
rtsp(s):// and http(s):// streams and /dev/videoN webcams; local files only inside a
``--media-root`` folder (symlinks resolved). Stopping the server stops every stream first.
"""

from __future__ import annotations

import logging
import signal
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import typer

from describeme.cli import common

log = logging.getLogger(__name__)

MEDIA_ROOT_HELP = ("With --pipeline: a folder whose video files API clients may start "
                   "(repeatable); without it clients may start only network streams and "
                   "webcams.")  # fmt: skip


@dataclass
class PipelineOptions:
    """What ``--pipeline`` starts: the resolved PipelineConfig and the source policy."""

    config: Any  # PipelineConfig
    policy: Any  # SourcePolicy
    media_roots: list[Path] = field(default_factory=list)


def _pipeline_options(config: Path | None, override: list[str], model: str | None,
                      ray_address: str | None, media_roots: list[Path],
                      key_prefix: str) -> PipelineOptions:  # fmt: skip
    """Loads and checks everything ``--pipeline`` needs before any server starts."""
    from describeme.cli.run import _load
    from describeme.pipeline.control import SourcePolicy
    from describeme.pipeline.parsers import check_model_option

    cfg = _load(config, override, model=model, ray_address=ray_address)
    # The pipeline writes where the API reads: --key-prefix wins over the config's sink.prefix.
    cfg.sink.prefix = key_prefix
    check_model_option(cfg.parser.model, cfg.parser.postprocess)
    return PipelineOptions(cfg, SourcePolicy(media_roots), media_roots)


def _serve(host: str, port: int, token: str | None, redis_url: str | None, prefix: str,
           rate: float, burst: int, pipeline: PipelineOptions | None) -> None:  # fmt: skip
    """Connects to the store (embedded Redis unless a URL), starts the pipeline when asked,
    then runs uvicorn until stopped; on exit stops streams, the graph and Redis."""
    import uvicorn

    from describeme.operators.redis_server import resolve_redis
    from describeme.operators.store import TrackStore, redact_url
    from describeme.service.app import ServeSettings, build_app
    from describeme.service.backend import StoreBackend

    settings = ServeSettings(token=token, rate_per_s=rate, burst=burst)
    url, server = resolve_redis(redis_url)
    controller = None
    try:
        store = TrackStore.from_url(url, prefix=prefix)
        store.ensure_index()
        if pipeline is not None:
            controller = _start_pipeline(pipeline, url)
        app = build_app(StoreBackend(store), settings, controller=controller)
        log.info("serving %s on http://%s:%d (store %s, auth %s, stream control %s)", prefix,
                 host, port, redact_url(url), "bearer token" if token else "off (loopback only)",
                 "on" if controller else "off")  # fmt: skip
        # uvicorn shuts down gracefully on SIGTERM, then re-raises it under the handler it
        # found; a no-op one (instead of Ray's hard exit) lets the cleanup below run.
        signal.signal(signal.SIGTERM, _ignore_signal)
        uvicorn.run(app, host=host, port=port, log_level="warning", server_header=False)
    finally:
        if controller is not None:
            _stop_pipeline(controller)
        if server is not None:
            server.stop()


def _start_pipeline(pipeline: PipelineOptions, redis_url: str) -> Any:
    from describeme.pipeline.control import StreamController
    from describeme.pipeline.graph import PipelineGraph

    graph = PipelineGraph(pipeline.config, redis_url)
    try:
        graph.start()
    except BaseException:
        graph.shutdown()
        raise
    roots = ", ".join(str(r) for r in pipeline.policy.media_roots) or "none"
    log.info("pipeline started (model %s); media roots: %s", pipeline.config.parser.model, roots)
    return StreamController(graph, pipeline.policy)


def _stop_pipeline(controller: Any) -> None:
    log.info("stopping streams and the pipeline")
    try:
        controller.close()
    finally:
        controller.graph.shutdown()


def _ignore_signal(signum: int, frame: Any) -> None:
    log.debug("signal %d after shutdown: already stopping", signum)


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
        pipeline: bool = typer.Option(
            False, "--pipeline", help="Also run the pipeline, so POST/DELETE /streams start and "
            "stop streams (written under --key-prefix)."),
        model: str | None = typer.Option(
            None, "--model", help="With --pipeline: checkpoint path, a bundled name (hptr, "
            "personlab), or 'standin' (test double)."),
        media_root: list[Path] = typer.Option([], "--media-root", help=MEDIA_ROOT_HELP),
        ray_address: str | None = typer.Option(
            None, "--ray-address", help="With --pipeline: Ray cluster (default: local)."),
        config: Path | None = typer.Option(
            None, "--config", "-c", help="With --pipeline: pipeline YAML (defaults built in)."),
        override: list[str] = common.OVERRIDE_OPTION,
    ) -> None:
        """Serve the search API (OpenAPI at /openapi.json) and the search web page at /.

        With --pipeline, also run the pipeline and let API clients start and stop streams
        (POST /streams {"source": URL}, DELETE /streams/ID): rtsp(s)/http(s) URLs and
        /dev/videoN, and files only inside a --media-root folder.
        """
        from describeme.service.auth import check_bind, resolve_token

        resolved = resolve_token(token)
        check_bind(host, resolved)  # before Redis starts: refuse fast and change nothing
        options = None
        if pipeline:
            options = _pipeline_options(config, override, model, ray_address, media_root,
                                        key_prefix)  # fmt: skip
        else:
            _refuse_pipeline_flags(model=model, media_root=media_root, ray_address=ray_address,
                                   config=config, override=override)  # fmt: skip
        _serve(host, port, resolved, redis_url, key_prefix, rate, burst, options)


def _refuse_pipeline_flags(**flags: Any) -> None:
    given = [f"--{name.replace('_', '-')}" for name, value in flags.items() if value]
    if given:
        raise ValueError(f"{', '.join(given)} only work with --pipeline; add --pipeline to run "
                         "the pipeline inside serve, or drop them")  # fmt: skip
