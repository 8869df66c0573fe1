"""``describeme run`` (streams -> Redis) and ``describeme ingest`` (an archive, resumable).

Ray, PyAV and redis are imported inside the commands, so ``describeme --help`` stays fast and
``import describeme`` never pulls them in.
"""

from __future__ import annotations

import glob
import json
import logging
import signal
import time
from pathlib import Path
from typing import Any

import typer

from describeme.cli import common
from describeme.config import dump_config, load_config
from describeme.errors import DataError, DescribemeError
from describeme.paths import data_dir as user_data_dir

log = logging.getLogger(__name__)

MODEL_HELP = (
    "Checkpoint path, a bundled name (personlab; hptr once trained), or 'standin' (test double)."
)


def _load(config: Path | None, override: list[str], **cli: Any) -> Any:
    """The resolved PipelineConfig: file (or defaults), then -o overrides, then CLI flags."""
    from describeme.pipeline.config import PipelineConfig

    extra = []
    if cli.get("model") is not None:
        extra.append(f"parser.model={cli['model']}")
    if cli.get("fps") is not None:
        extra.append(f"stream.target_fps={cli['fps']}")
    if cli.get("ray_address"):
        extra.append(f"ray.address={cli['ray_address']}")
    if cli.get("metrics_port") is not None:
        extra.append(f"metrics_port={cli['metrics_port']}")
    return load_config(config, PipelineConfig, [*override, *extra])


def _stream_ids(uris: list[str]) -> list[str]:
    """Readable, unique stream ids (``name``, ``name-2``, ...)."""
    from describeme.operators.sources import default_stream_id
    from describeme.operators.sources.uri import parse_source_uri

    ids: list[str] = []
    for uri in uris:
        base = default_stream_id(parse_source_uri(uri))
        name, n = base, 1
        while name in ids:
            n += 1
            name = f"{base}-{n}"
        ids.append(name)
    return ids


def _local_files(uris: list[str]) -> list[str]:
    return [uri for uri in uris if "://" not in uri and not uri.startswith("/dev/video")]


def _check_local(uris: list[str]) -> None:
    for uri in _local_files(uris):
        if not Path(uri).exists():
            raise DataError(f"no such video file: {uri}")


def _probe_local(uris: list[str]) -> None:
    """Opens every local file once (milliseconds each): a run whose sources are all
    unreadable fails here, before Ray and Redis start, and an unreadable file among readable
    sources is named at once (its stream still fails on its own; the others go on)."""
    from describeme.operators.sources.decode import open_container
    from describeme.operators.sources.uri import parse_source_uri

    unreadable: list[DataError] = []
    for uri in _local_files(uris):
        try:
            open_container(parse_source_uri(uri), options={}, timeout_s=None).close()
        except DataError as err:
            unreadable.append(err)
    if unreadable and len(unreadable) == len(uris):
        if len(uris) == 1:
            raise unreadable[0]
        raise DataError(f"none of the {len(uris)} sources is a readable video; first: "
                        f"{unreadable[0]}")  # fmt: skip
    for problem in unreadable:
        log.warning("%s; its stream will fail, the others go on", problem)


def _default_out_video(out_video: Path | None) -> Path | None:
    """``--out-video``: 'none' skips it; unset writes under the per-user data folder."""
    if out_video is not None:
        return None if str(out_video).lower() == "none" else out_video
    return user_data_dir() / "runs" / time.strftime("%Y%m%d-%H%M%S") / "annotated.mp4"


def _out_videos(out_video: Path | None, count: int) -> list[str | None]:
    if out_video is None:
        return [None] * count
    if count == 1:
        return [str(out_video)]
    return [str(out_video.with_name(f"{out_video.stem}_{i}{out_video.suffix}"))
            for i in range(count)]


def _execute(cfg: Any, redis_url: str | None, body: Any) -> dict[str, Any]:
    """Starts Redis (embedded unless a URL), the graph and the metrics endpoint; runs ``body``."""
    from describeme.operators.redis_server import resolve_redis
    from describeme.operators.store import TrackStore
    from describeme.operators.telemetry import to_prometheus
    from describeme.pipeline.graph import PipelineGraph
    from describeme.pipeline.metrics_server import MetricsServer

    url, server = resolve_redis(redis_url)
    TrackStore.from_url(url).client.close()  # fail in a second, not after starting Ray
    metrics = MetricsServer(cfg.metrics_port).start() if cfg.metrics_port is not None else None

    def on_tick(snapshot: dict[str, Any]) -> None:
        if metrics is not None:
            metrics.update(to_prometheus(snapshot))

    try:
        with PipelineGraph(cfg, url) as graph:
            # After ray.init, which installs its own SIGTERM handler (a hard abort).
            previous = signal.signal(signal.SIGTERM, _raise_interrupt)
            try:
                return body(graph, on_tick)
            finally:
                if previous is not None:  # None: the old handler was not set from Python
                    signal.signal(signal.SIGTERM, previous)
    finally:
        if metrics is not None:
            metrics.stop()
        if server is not None:
            server.stop()


def _raise_interrupt(signum: int, frame: Any) -> None:
    raise KeyboardInterrupt  # SIGTERM shuts down like Ctrl-C: drain, flush, summarise


def _finish(summary: dict[str, Any], summary_json: Path | None) -> None:
    from describeme.pipeline.summary import format_summary

    common.stderr.print(format_summary(summary), markup=False, highlight=False)
    if summary_json is not None:
        summary_json.parent.mkdir(parents=True, exist_ok=True)
        summary_json.write_text(json.dumps(summary, indent=2, default=str) + "\n", encoding="utf-8")
    failed = [r for r in summary["streams"] if r.get("status") == "failed"]
    if failed:
        raise DescribemeError(f"{len(failed)} of {len(summary['streams'])} streams failed; first: "
                              f"{failed[0]['uri']}: {failed[0].get('error')}")


def expand_paths(patterns: list[str]) -> list[str]:
    """Files named by paths or globs (``**`` recursive), sorted, without duplicates."""
    files: list[str] = []
    for pattern in patterns:
        magic = glob.has_magic(pattern)
        matches = sorted(glob.glob(pattern, recursive=True)) if magic else [pattern]
        matches = [m for m in matches if Path(m).is_file()]
        if not matches:
            raise DataError(f"no video file matches {pattern!r}")
        files.extend(m for m in matches if m not in files)
    return files


def register(app: typer.Typer) -> None:
    """Adds ``run`` and ``ingest`` to the root app."""

    @app.command()
    def run(
        sources: list[str] = typer.Argument(None, help="Files, rtsp://, http(s)://, /dev/video*."),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        redis_url: str | None = typer.Option(None, help="External Redis (default: embedded)."),
        ray_address: str | None = typer.Option(None, help="Ray cluster (default: local)."),
        fps: float | None = typer.Option(None, help="Sample sources to this frame rate."),
        out_video: Path | None = typer.Option(
            None, help="Annotated MP4 path (default: a new file under the per-user data folder "
            "describeme/runs/; 'none' to skip)."),
        summary_json: Path | None = typer.Option(None, help="Write the run summary here."),
        tracks_out: Path | None = typer.Option(
            None, help="Folder for the tracker's boxes, one MOT-format <stream>.txt per stream "
            "(frame,id,x,y,w,h,score: what MOTA/IDF1 tools read)."),
        metrics_port: int | None = typer.Option(None, help="Serve Prometheus /metrics here."),
        config: Path | None = common.CONFIG_OPTION,
        override: list[str] = common.OVERRIDE_OPTION,
        dump: bool = common.DUMP_CONFIG_OPTION,
    ) -> None:
        """Run the streaming pipeline on video sources and write tracks to Redis."""
        from describeme.pipeline.parsers import check_model_option

        cfg = _load(config, override, model=model, fps=fps, ray_address=ray_address,
                    metrics_port=metrics_port)
        if dump:
            typer.echo(dump_config(cfg), nl=False)
            return
        uris = list(sources or []) or [_sample_clip()]
        _check_local(uris)
        check_model_option(cfg.parser.model, cfg.parser.postprocess)
        _probe_local(uris)
        log.debug("resolved config:\n%s", dump_config(cfg))
        ids, videos = _stream_ids(uris), _out_videos(_default_out_video(out_video), len(uris))
        summary = _execute(cfg, redis_url, lambda graph, tick: graph.run(
            uris, ids, videos, tick, tracks_out=tracks_out))
        _finish({**summary, "config": cfg.model_dump(mode="json")}, summary_json)
        for video in videos:
            if video is not None:
                common.stderr.print(
                    f"annotated video: {video}", markup=False, highlight=False, soft_wrap=True
                )

    @app.command()
    def ingest(
        paths: list[str] = typer.Argument(..., help="Video files or globs."),
        model: str | None = typer.Option(None, "--model", help=MODEL_HELP),
        redis_url: str | None = typer.Option(None, help="External Redis (default: embedded)."),
        ray_address: str | None = typer.Option(None, help="Ray cluster (default: local)."),
        fps: float | None = typer.Option(None, help="Sample files to this frame rate."),
        summary_json: Path | None = typer.Option(None, help="Write the run summary here."),
        metrics_port: int | None = typer.Option(None, help="Serve Prometheus /metrics here."),
        config: Path | None = common.CONFIG_OPTION,
        override: list[str] = common.OVERRIDE_OPTION,
    ) -> None:
        """Process a video archive in parallel, resumably (done files are skipped)."""
        from describeme.pipeline.parsers import check_model_option

        cfg = _load(config, override, model=model, fps=fps, ray_address=ray_address,
                    metrics_port=metrics_port)
        files = expand_paths(paths)
        check_model_option(cfg.parser.model, cfg.parser.postprocess)
        log.debug("resolved config:\n%s", dump_config(cfg))
        summary = _execute(cfg, redis_url, lambda graph, tick: _ingest(graph, files, tick))
        _finish({**summary, "config": cfg.model_dump(mode="json")}, summary_json)


def _ingest(graph: Any, files: list[str], on_tick: Any) -> dict[str, Any]:
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    columns = [TextColumn("ingest"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn()]
    with Progress(*columns, console=common.stderr, disable=not common.stderr.is_terminal) as bar:
        task = bar.add_task("ingest", total=len(files))

        def done(report: dict[str, Any]) -> None:
            bar.advance(task)
            log.info("%s: %s (%d frames)", report["uri"], report["status"], report.get("frames", 0))

        return graph.ingest(files, on_file_done=done, on_tick=on_tick)


def _sample_clip() -> str:
    try:
        from describeme.data.synth import sample_clip_path
    except ImportError:
        raise DataError("no SOURCE given and no bundled sample clip is available; "
                        "pass a video file or URL") from None
    return str(sample_clip_path())
