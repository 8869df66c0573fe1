"""Builds the actor graph, runs streams (``run``) or an archive (``ingest``), shuts down cleanly.

Actors: a pool of :class:`ParserActor` (shared by every stream), one :class:`TrackerActor`
and one :class:`DescriberActor` holding per-stream objects, one :class:`SinkActor`, and one
:class:`StreamActor` per stream (or per parallel ingest slot). Every actor asks for a
fraction of a CPU, so the whole graph fits a 2-core laptop.
"""

from __future__ import annotations

import hashlib
import logging
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import ray

from describeme.errors import ServiceError
from describeme.operators.mot import tracks_file
from describeme.operators.telemetry import merge_snapshots
from describeme.pipeline.actors import DescriberActor, ParserActor, SinkActor, TrackerActor
from describeme.pipeline.config import PipelineConfig
from describeme.pipeline.stream import GraphHandles, StreamActor, StreamSpec
from describeme.pipeline.summary import build_summary

log = logging.getLogger(__name__)


def init_ray(config: PipelineConfig) -> bool:
    """Connects to ``config.ray.address`` or starts a small local Ray; True if we started it."""
    if ray.is_initialized():
        return False
    # Local runs need no cluster auth token on disk (Ray 2.60 writes one under ~/.ray otherwise).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if config.ray.address:
        kwargs["address"] = config.ray.address
    else:
        kwargs["num_cpus"] = config.ray.num_cpus
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        where = config.ray.address or "a local Ray"
        raise ServiceError(f"cannot start or reach {where}: {exc}") from None
    return True


def clean_error(exc: Exception) -> Exception:
    """The user's error inside a Ray error: the original exception of a failed task, or a
    ServiceError holding the last line of an actor's death report (not a wall of traceback)."""
    cause = getattr(exc, "cause", None)
    if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
        return cause
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return ServiceError(f"a pipeline actor failed: {lines[-1] if lines else type(exc).__name__}")


def get(refs: Any) -> Any:
    """``ray.get`` that raises the clean error (see :func:`clean_error`)."""
    try:
        return ray.get(refs)
    except ray.exceptions.RayError as exc:
        raise clean_error(exc) from None


@dataclass(eq=False)  # compared by identity: one handle per started stream
class StreamHandle:
    """One stream started by :meth:`PipelineGraph.start_stream`: its spec, actor and run ref."""

    spec: StreamSpec
    actor: Any
    ref: Any  # ObjectRef of StreamActor.run: the stream's report


def file_key(path: str | Path) -> str:
    """A stable id for an archive file: its stem plus a hash of its absolute path."""
    resolved = str(Path(path).expanduser().resolve())
    digest = hashlib.sha1(resolved.encode()).hexdigest()[:10]
    stem = "".join(c if c.isalnum() or c in "-_" else "_" for c in Path(path).stem)[:40]
    return f"{stem}-{digest}"


class PipelineGraph:
    """The running graph. Use as a context manager; :meth:`stop` may come from a signal.

    Args:
        config: the resolved pipeline config.
        redis_url: where the sink writes (the CLI resolves the embedded server).
    """

    def __init__(self, config: PipelineConfig, redis_url: str) -> None:
        self.config, self.redis_url = config, redis_url
        self._owns_ray = False
        self.handles: GraphHandles | None = None
        self._stream_actors: list[Any] = []
        self._stopping = False

    def start(self) -> PipelineGraph:
        cfg = self.config
        self._owns_ray = init_ray(cfg)
        stage_cpus = cfg.ray.stage_num_cpus
        parsers = [
            ParserActor.options(
                num_cpus=cfg.parser.num_cpus,
                num_gpus=cfg.parser.num_gpus,
                max_concurrency=cfg.parser.max_concurrency,
            ).remote(cfg.parser)
            for _ in range(cfg.parser.num_actors)
        ]
        self.handles = GraphHandles(
            parsers=parsers,
            tracker=TrackerActor.options(num_cpus=stage_cpus).remote(cfg),
            describer=DescriberActor.options(num_cpus=stage_cpus).remote(cfg),
            sink=SinkActor.options(num_cpus=cfg.sink.num_cpus).remote(self.redis_url, cfg.sink),
        )
        # Surface construction errors (no model, Redis unreachable) now, as one clear error.
        get([p.metrics.remote() for p in parsers] + [self.handles.sink.metrics.remote()])
        return self

    def _new_stream_actors(self, count: int) -> list[Any]:
        """Stream actors for one run/ingest call (released by :meth:`_release_streams`)."""
        self._check_cpus(count)
        actors = [
            StreamActor.options(num_cpus=self.config.stream.num_cpus).remote(
                self.handles, self.config
            )
            for _ in range(count)
        ]
        self._stream_actors.extend(actors)
        return actors

    def _release_streams(self) -> None:
        for actor in self._stream_actors:
            ray.kill(actor)
        self._stream_actors = []

    # One stream at a time, next to the others (``describeme serve --pipeline`` stream control).

    def start_stream(self, spec: StreamSpec) -> StreamHandle:
        """Starts one more stream actor running ``spec``; release it with :meth:`release_stream`.

        Raises:
            ServiceError: the graph is not started, or Ray has no CPU left for the actor.
        """
        if self.handles is None:
            raise ServiceError("the pipeline graph is not started")
        self._check_cpus(len(self._stream_actors) + 1)
        actor = StreamActor.options(num_cpus=self.config.stream.num_cpus).remote(
            self.handles, self.config
        )
        self._stream_actors.append(actor)
        return StreamHandle(spec, actor, actor.run.remote(spec))

    def finished_streams(self, streams: Sequence[StreamHandle],
                         timeout_s: float = 0.0) -> list[StreamHandle]:  # fmt: skip
        """The streams whose run has ended, waiting at most ``timeout_s`` for all of them."""
        if not streams:
            return []
        refs = [s.ref for s in streams]
        done, _ = ray.wait(refs, num_returns=len(refs), timeout=timeout_s)
        return [s for s in streams if s.ref in done]

    def stream_report(self, stream: StreamHandle) -> dict[str, Any]:
        """An ended stream's report (``status`` failed with ``error`` when it raised)."""
        return self._report(stream.ref, stream.spec)

    def stream_frames(self, streams: Sequence[StreamHandle],
                      timeout_s: float = 2.0) -> dict[str, int]:  # fmt: skip
        """Frames each running stream has sent so far, by stream id (missing on a timeout)."""
        refs = [s.actor.metrics.remote() for s in streams]
        try:
            snapshots = ray.get(refs, timeout=timeout_s)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayError) as exc:
            log.debug("stream frame counts unavailable: %s", exc)
            return {}
        frames = {}
        for stream, snapshot in zip(streams, snapshots, strict=True):
            key = ("frames", (("stage", "source"), ("stream", stream.spec.stream_id)))
            frames[stream.spec.stream_id] = int(snapshot["counters"].get(key, 0))
        return frames

    def stop_stream(self, stream: StreamHandle) -> None:
        """Asks one stream to stop reading; its in-flight frames still drain and are written."""
        stream.actor.stop.remote()

    def release_stream(self, stream: StreamHandle) -> None:
        """Kills an ended (or stuck) stream's actor."""
        ray.kill(stream.actor)
        if stream.actor in self._stream_actors:
            self._stream_actors.remove(stream.actor)

    def _check_cpus(self, streams: int) -> None:
        """Fails clearly instead of waiting forever for actors that cannot be placed."""
        cfg = self.config
        needed = (
            cfg.parser.num_cpus * cfg.parser.num_actors
            + 2 * cfg.ray.stage_num_cpus
            + cfg.sink.num_cpus
            + streams * cfg.stream.num_cpus
        )
        available = ray.cluster_resources().get("CPU", 0.0)
        if needed > available + 1e-9:
            raise ServiceError(
                f"the graph needs {needed:g} CPUs for {streams} streams but Ray has {available:g}; "
                "lower stream.num_cpus / parser.num_cpus, ingest.max_parallel_files, or the "
                "number of sources, or raise ray.num_cpus"
            )

    def run(
        self,
        uris: Sequence[str],
        stream_ids: Sequence[str],
        out_videos: Sequence[str | None],
        on_tick: Callable[[dict[str, Any]], None] | None = None,
        tracks_out: str | Path | None = None,
    ) -> dict[str, Any]:
        """Runs every stream until its end or :meth:`stop`; returns the summary.

        ``tracks_out``: a folder for one MOT-format tracker file per stream (``<stream>.txt``).
        """
        started = time.time()
        specs = [
            StreamSpec(u, s, None, o, str(tracks_file(tracks_out, s)) if tracks_out else None)
            for u, s, o in zip(uris, stream_ids, out_videos, strict=True)
        ]
        actors = self._new_stream_actors(len(specs))
        refs = [actor.run.remote(spec) for actor, spec in zip(actors, specs, strict=True)]
        self._wait_all(refs, on_tick)
        reports = [self._report(ref, spec) for ref, spec in zip(refs, specs, strict=True)]
        summary = self.summary(reports, time.time() - started)
        self._release_streams()
        return summary

    def _report(self, ref: Any, spec: StreamSpec) -> dict[str, Any]:
        """A finished stream's report; a failed stream is reported (and logged), so the other
        streams' results and the summary survive it."""
        try:
            return get(ref)
        except Exception as exc:  # any stream error: report it, keep the others
            log.error("stream %s (%s) failed: %s", spec.stream_id, spec.uri, exc)
            return {
                "stream_id": spec.stream_id,
                "uri": spec.uri,
                "frames": 0,
                "status": "failed",
                "error": f"{type(exc).__name__}: {exc}",
            }

    def ingest(
        self,
        paths: Sequence[str],
        on_file_done: Callable[[dict[str, Any]], None] | None = None,
        on_tick: Callable[[dict[str, Any]], None] | None = None,
    ) -> dict[str, Any]:
        """Processes files with ``ingest.max_parallel_files`` stream actors; resumable."""
        started = time.time()
        pending = [StreamSpec(p, file_key(p), file_key(p)) for p in paths]
        slots = self._new_stream_actors(min(self.config.ingest.max_parallel_files, len(pending)))
        running: dict[Any, Any] = {}
        specs: dict[Any, StreamSpec] = {}
        reports: list[dict[str, Any]] = []
        while pending or running:
            while pending and slots and not self._stopping:
                actor = slots.pop()
                spec = pending.pop(0)
                ref = actor.run.remote(spec)
                running[ref], specs[ref] = actor, spec
            if not running:
                break
            done = self._wait(list(running), 1)
            for ref in done:
                spec = specs.pop(ref)
                slots.append(running.pop(ref))
                reports.append(self._report(ref, spec))
                if on_file_done:
                    on_file_done(reports[-1])
            if on_tick:
                on_tick(self.metrics())
        for spec in pending:
            reports.append(
                {"stream_id": spec.stream_id, "uri": spec.uri, "frames": 0, "status": "not started"}
            )
        summary = self.summary(reports, time.time() - started)
        self._release_streams()
        return summary

    def _wait_all(self, refs: list[Any], on_tick: Callable[[dict[str, Any]], None] | None) -> None:
        remaining = list(refs)
        while remaining:
            done = self._wait(remaining, len(remaining))
            remaining = [r for r in remaining if r not in done]
            if on_tick and remaining:
                on_tick(self.metrics())

    def _wait(self, refs: list[Any], num_returns: int) -> list[Any]:
        """``ray.wait`` for one tick; Ctrl-C (or SIGTERM) turns into :meth:`stop` and the
        caller keeps waiting for the drained streams (a second interrupt aborts)."""
        try:
            done, _ = ray.wait(
                refs, num_returns=num_returns, timeout=self.config.metrics_interval_s
            )
        except KeyboardInterrupt:
            if self._stopping:
                raise
            self.stop()
            return []
        return done

    def stop(self) -> None:
        """Stops reading every source; in-flight work drains and the sink is flushed."""
        if self._stopping:
            return
        self._stopping = True
        log.info("stopping: draining in-flight frames and flushing the sink")
        for actor in self._stream_actors:
            actor.stop.remote()

    def metrics(self) -> dict[str, Any]:
        """Merged telemetry of every actor."""
        assert self.handles is not None
        h = self.handles
        actors = [*h.parsers, h.tracker, h.describer, h.sink, *self._stream_actors]
        return merge_snapshots(get([a.metrics.remote() for a in actors]))

    def summary(self, reports: list[dict[str, Any]], elapsed_s: float) -> dict[str, Any]:
        assert self.handles is not None
        tracks = get(self.handles.sink.track_count.remote())
        return build_summary(reports, self.metrics(), tracks=tracks, elapsed_s=elapsed_s)

    def shutdown(self) -> None:
        """Kills the actors (after the sink has written) and stops a Ray we started."""
        if self.handles is not None:
            h = self.handles
            self._release_streams()
            try:  # flush buffered writes (or leave them in the spool) before the kill
                get(h.sink.close.remote())
            except Exception as exc:  # noqa: BLE001 - shutdown must go on
                log.warning("sink did not close cleanly: %s", exc)
            for actor in [*h.parsers, h.tracker, h.describer, h.sink]:
                ray.kill(actor)
            self.handles = None
        if self._owns_ray:
            ray.shutdown()
            self._owns_ray = False

    def __enter__(self) -> PipelineGraph:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.shutdown()
