"""Stream control for ``describeme serve --pipeline``: start, stop and list streams at run time.

:class:`StreamController` wraps a started :class:`~describeme.pipeline.graph.PipelineGraph`:
``add`` starts one stream actor for a source, ``remove`` stops it (the driver drains its
in-flight frames and writes the final descriptions before the actor is released), ``list``
reports every stream with its status. It touches Ray only through the graph's stream methods
(``start_stream``, ``finished_streams``, ``stream_report``, ``stream_frames``,
``stop_stream``, ``release_stream``), so this module imports no Ray and its logic is unit
tested with a fake graph.

:class:`SourcePolicy` decides which sources an API client may start. A client must not make
the server read arbitrary local files, so network streams (``rtsp``, ``rtsps``, ``http``,
``https``) and webcams (``/dev/videoN``) are allowed, and a local file only when it resolves
(after symlinks) inside a media folder the operator named with ``--media-root``.
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from describeme.operators.sources import default_stream_id
from describeme.operators.sources.uri import parse_source_uri, redact_uri
from describeme.operators.store_schema import escape_tag_value

__all__ = [
    "ALLOWED_SCHEMES", "MAX_SOURCE_CHARS", "MAX_STREAM_ID_CHARS", "SourceNotAllowedError",
    "SourcePolicy", "StreamController", "StreamExistsError", "UnknownStreamError",
    "check_stream_id",
]  # fmt: skip

log = logging.getLogger(__name__)

ALLOWED_SCHEMES = ("rtsp", "rtsps", "http", "https")
MAX_SOURCE_CHARS = 2048
# Stream ids end up percent-encoded in track ids (at most 512 characters): room to spare.
MAX_STREAM_ID_CHARS = 160
# Ended streams kept for GET /streams after they stop (oldest forgotten first).
MAX_ENDED_RECORDS = 64
_STATUS = {"done": "finished", "stopped": "stopped", "failed": "failed", "skipped": "finished"}


class SourceNotAllowedError(PermissionError):
    """The source is well formed but the server's policy refuses it (HTTP 403)."""


class StreamExistsError(ValueError):
    """A stream with this id is already running (HTTP 409)."""


class UnknownStreamError(LookupError):
    """No stream with this id is known to the controller (HTTP 404)."""


def check_stream_id(stream_id: str) -> str:
    """Validates a client-chosen stream id with the store's rules for stored ids.

    Raises:
        TypeError: not a string.
        ValueError: empty, blank, longer than MAX_STREAM_ID_CHARS, or holding control
            characters (the store's TAG separator is one).
    """
    if not isinstance(stream_id, str):
        raise TypeError(f"stream_id must be a string, got {type(stream_id).__name__}")
    if len(stream_id) > MAX_STREAM_ID_CHARS:
        raise ValueError(
            f"stream_id is {len(stream_id)} characters; at most {MAX_STREAM_ID_CHARS}"
        )
    try:
        escape_tag_value(stream_id)  # the store's checks: not blank, no control characters
    except ValueError as exc:
        raise ValueError(f"stream_id: {exc}") from None
    if stream_id != stream_id.strip():
        raise ValueError(f"stream_id {stream_id!r} must not start or end with whitespace")
    return stream_id


class SourcePolicy:
    """Which sources API clients may start (see the module docstring).

    Args:
        media_roots: folders whose files (after resolving symlinks) clients may name, as
            absolute paths or relative to a root; empty = no local files.
    """

    def __init__(self, media_roots: tuple[str | Path, ...] | list[str | Path] = ()) -> None:
        roots = []
        for root in media_roots:
            resolved = Path(root).expanduser().resolve()
            if not resolved.is_dir():
                raise ValueError(f"--media-root {root}: no such folder")
            roots.append(resolved)
        self.media_roots: tuple[Path, ...] = tuple(roots)

    def check(self, source: str) -> str:
        """The URI to open for ``source``; local files come back absolute and resolved.

        Raises:
            TypeError: not a string.
            ValueError: empty, too long, malformed, or a missing file inside a media folder.
            SourceNotAllowedError: a scheme other than ALLOWED_SCHEMES, or a local file
                outside every ``--media-root``.
        """
        if not isinstance(source, str):
            raise TypeError(f"source must be a string, got {type(source).__name__}")
        if len(source) > MAX_SOURCE_CHARS:
            raise ValueError(f"source is {len(source)} characters; at most {MAX_SOURCE_CHARS}")
        if any(ord(c) < 32 or ord(c) == 127 for c in source):
            raise ValueError("source must not hold control characters")
        parsed = parse_source_uri(source)  # ValueError: empty or an unknown scheme
        if parsed.kind == "device":
            return parsed.uri
        if parsed.kind == "network":
            if parsed.scheme not in ALLOWED_SCHEMES:
                raise SourceNotAllowedError(
                    f"source scheme {parsed.scheme!r} is not allowed from the API; use one of "
                    f"{', '.join(ALLOWED_SCHEMES)}, /dev/videoN, or a file under --media-root"
                )
            return parsed.uri
        return str(self._local_file(parsed.uri))

    def _local_file(self, path_text: str) -> Path:
        if not self.media_roots:
            raise SourceNotAllowedError(
                "local files are refused: the server was started without --media-root; "
                "start 'describeme serve --pipeline --media-root DIR' to allow files under DIR"
            )
        path = Path(path_text)  # no ~ expansion: a client names files, not server homes
        candidates = [path] if path.is_absolute() else [root / path for root in self.media_roots]
        inside = []
        for candidate in candidates:
            resolved = candidate.resolve()  # follows symlinks: a link out of a root is refused
            if any(resolved.is_relative_to(root) for root in self.media_roots):
                if resolved.is_file():
                    return resolved
                inside.append(resolved)
        if inside:
            raise ValueError(f"no such video file under --media-root: {path_text}")
        raise SourceNotAllowedError(
            f"{path_text} is not inside a --media-root folder "
            f"({', '.join(str(r) for r in self.media_roots)}); API clients may only start "
            "files under those folders"
        )


@dataclass
class _Stream:
    """The controller's record of one stream; ``handle`` is the graph's (None once ended)."""

    stream_id: str
    source: str  # redacted: records are served to API clients
    handle: Any
    status: str = "running"
    frames: int = 0
    error: str | None = None
    started_at: float = field(default_factory=time.time)
    ended_at: float | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "source": self.source, "status": self.status,
                "frames": self.frames, "error": self.error, "started_at": self.started_at,
                "ended_at": self.ended_at}  # fmt: skip


class StreamController:
    """Starts, stops and lists streams on a started graph; safe to call from many threads.

    Args:
        graph: a started :class:`~describeme.pipeline.graph.PipelineGraph` (or a test double
            with the same stream methods).
        policy: which sources may be started.
        stop_timeout_s: how long :meth:`remove` waits for a stream to drain before it
            releases the actor anyway.
    """

    def __init__(self, graph: Any, policy: SourcePolicy | None = None,
                 stop_timeout_s: float = 30.0) -> None:  # fmt: skip
        self.graph = graph
        self.policy = policy or SourcePolicy()
        self.stop_timeout_s = float(stop_timeout_s)
        self._streams: dict[str, _Stream] = {}
        self._lock = threading.RLock()

    def add(self, source: str, stream_id: str | None = None) -> dict[str, Any]:
        """Starts a stream; returns its record (status ``running``).

        Raises:
            ValueError, TypeError: a malformed source or stream id.
            SourceNotAllowedError: the policy refuses the source.
            StreamExistsError: ``stream_id`` is already running.
            ServiceError: Ray has no CPU left for another stream actor.
        """
        from describeme.pipeline.stream import StreamSpec

        uri = self.policy.check(source)
        if stream_id is not None:
            check_stream_id(stream_id)
        with self._lock:
            self._poll()
            sid = self._free_id(stream_id, source)
            handle = self.graph.start_stream(StreamSpec(uri, sid))
            record = _Stream(sid, redact_uri(source.strip()), handle)
            self._streams.pop(sid, None)  # an ended stream of that id makes way
            self._streams[sid] = record
            self._forget_old()
            log.info("stream %s started: %s", sid, record.source)
            return record.to_dict()

    def _free_id(self, stream_id: str | None, source: str) -> str:
        """The id to use: the given one unless running; else ``name``, ``name-2``, ... as
        ``describeme run`` names its sources."""
        running = {s for s, r in self._streams.items() if r.handle is not None}
        if stream_id is not None:
            if stream_id in running:
                raise StreamExistsError(
                    f"stream {stream_id!r} is already running; stop it first (DELETE "
                    "/streams/ID) or choose another stream_id"
                )
            return stream_id
        base = default_stream_id(parse_source_uri(source))[:MAX_STREAM_ID_CHARS - 8] or "stream"
        name, n = base, 1
        while name in running:
            n += 1
            name = f"{base}-{n}"
        return check_stream_id(name)

    def remove(self, stream_id: str) -> dict[str, Any]:
        """Stops a stream and waits for it to drain; returns its final record and forgets it.

        Raises:
            UnknownStreamError: no such stream.
        """
        with self._lock:
            self._poll()  # a stream that already ended keeps its own final status
            record = self._streams.get(stream_id)
            if record is None:
                raise UnknownStreamError(
                    f"no stream {stream_id!r}; GET /streams lists the running ones"
                )
            handle = record.handle
            if handle is not None:
                self.graph.stop_stream(handle)
                record.status = "stopping"
        drained = handle is None or bool(self.graph.finished_streams([handle], self.stop_timeout_s))
        with self._lock:
            if record.handle is not None:  # else list() collected it meanwhile
                if drained:
                    self._end(record, self.graph.stream_report(record.handle))
                else:
                    log.warning("stream %s did not drain within %g s; releasing it",
                                stream_id, self.stop_timeout_s)  # fmt: skip
                    self._end(record, None, f"did not drain within {self.stop_timeout_s:g} s")
            if self._streams.get(stream_id) is record:
                del self._streams[stream_id]
            return record.to_dict()

    def list(self) -> list[dict[str, Any]]:
        """Every running stream and the most recent ended ones, oldest first."""
        with self._lock:
            self._poll()
            running = [r for r in self._streams.values() if r.handle is not None]
        frames = self.graph.stream_frames([r.handle for r in running]) if running else {}
        with self._lock:
            for record in running:
                if record.handle is not None and record.stream_id in frames:
                    record.frames = max(record.frames, int(frames[record.stream_id]))
            return [r.to_dict() for r in self._streams.values()]

    def close(self) -> None:
        """Stops every running stream (each drains), then releases them. Idempotent."""
        with self._lock:
            running = [r for r in self._streams.values() if r.handle is not None]
            for record in running:
                self.graph.stop_stream(record.handle)
                record.status = "stopping"
        if running:
            self.graph.finished_streams([r.handle for r in running], self.stop_timeout_s)
        with self._lock:
            self._poll()
            for record in running:
                if record.handle is not None:
                    self._end(record, None, f"did not drain within {self.stop_timeout_s:g} s")

    def _poll(self) -> None:
        """Collects the reports of streams that ended on their own (caller holds the lock)."""
        running = [r for r in self._streams.values() if r.handle is not None]
        if not running:
            return
        done = self.graph.finished_streams([r.handle for r in running], 0.0)
        for record in running:
            if record.handle in done:
                self._end(record, self.graph.stream_report(record.handle))

    def _end(self, record: _Stream, report: dict[str, Any] | None,
             error: str | None = None) -> None:  # fmt: skip
        """Records the final state and releases the actor (caller holds the lock)."""
        if report is not None:
            record.status = _STATUS.get(str(report.get("status")), "finished")
            record.frames = int(report.get("frames", record.frames))
            if report.get("error"):
                record.error = redact_uri(str(report["error"]))
        else:
            record.status, record.error = "stopped", error
        record.ended_at = time.time()
        try:
            self.graph.release_stream(record.handle)
        except Exception as exc:  # noqa: BLE001 - the actor may already be gone
            log.warning("stream %s: releasing its actor failed: %s", record.stream_id, exc)
        record.handle = None
        log.info("stream %s %s after %d frames%s", record.stream_id, record.status,
                 record.frames, f": {record.error}" if record.error else "")  # fmt: skip

    def _forget_old(self) -> None:
        ended = [s for s, r in self._streams.items() if r.handle is None]
        for sid in ended[: max(0, len(ended) - MAX_ENDED_RECORDS)]:
            del self._streams[sid]

