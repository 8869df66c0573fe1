"""Buffered, ordered, durable writes to the track store while Redis is unreachable.

:class:`BufferedSink` wraps a :class:`~describeme.operators.store.TrackStore`. While Redis
answers, writes go straight through. When it does not, writes queue in memory; past
``max_memory`` queued writes they move to an append-only JSON-lines spool file, so memory
stays bounded. :meth:`BufferedSink.flush` (called on every write, or by the caller's timer)
retries with exponential backoff and replays spool then memory in order. A spool left by a
crashed or stopped process is replayed by the next sink opened on the same path. Replays are
safe to repeat: upserts are keyed and events carry idempotency markers.

``max_memory=0`` writes every buffered record to the spool at once (survives ``kill -9``).
A sink is used from one thread (a Ray actor's); it is not thread-safe.

Example::

    store = TrackStore.from_url(url)
    sink = BufferedSink(store, default_spool_path("sink"))
    sink.upsert(description)  # written, or buffered if Redis is down
    sink.flush()              # call periodically; replays when Redis is back
"""

from __future__ import annotations

import base64
import contextlib
import fcntl
import json
import logging
import os
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from describeme.errors import ServiceError
from describeme.messages import PartDescription, TrackDescription, TrackEvent
from describeme.paths import data_dir as user_data_dir

log = logging.getLogger(__name__)

Record = dict[str, Any]


def default_spool_path(name: str = "sink") -> Path:
    """``<describeme data folder>/spool/<name>.jsonl`` next to the embedded Redis data.

    A restarted sink must use the same ``name`` to replay what its predecessor spooled.
    """
    if not name or any(c in name for c in "/\\\0") or name.startswith("."):
        raise ValueError(f"spool name {name!r} must be a plain file name")
    return user_data_dir() / "spool" / f"{name}.jsonl"


def description_to_record(desc: TrackDescription) -> Record:
    """A JSON-serialisable dict of ``desc`` (thumbnail as base64)."""
    record = asdict(desc)
    if desc.thumbnail is not None:
        record["thumbnail"] = base64.b64encode(desc.thumbnail).decode("ascii")
    return record


def description_from_record(record: Record) -> TrackDescription:
    """Inverse of :func:`description_to_record`."""
    fields = dict(record)
    fields["parts"] = [PartDescription(**part) for part in fields.get("parts", [])]
    if fields.get("thumbnail") is not None:
        fields["thumbnail"] = base64.b64decode(fields["thumbnail"])
    return TrackDescription(**fields)


def to_record(op: str, payload: Any) -> Record:
    """One spool line: ``{"op": "upsert"|"events"|"file_status", ...}``."""
    if op == "upsert":
        return {"op": op, "desc": description_to_record(payload)}
    if op == "events":
        return {"op": op, "events": [asdict(event) for event in payload]}
    if op == "file_status":
        path_key, status, frame = payload
        return {"op": op, "path_key": path_key, "status": status, "frame": int(frame)}
    raise ValueError(f"unknown spool operation {op!r}")


def from_record(record: Record) -> tuple[str, Any]:
    """Inverse of :func:`to_record`: ``(op, payload)``."""
    op = record.get("op")
    if op == "upsert":
        return op, description_from_record(record["desc"])
    if op == "events":
        return op, [TrackEvent(**event) for event in record["events"]]
    if op == "file_status":
        return op, (record["path_key"], record["status"], record["frame"])
    raise ValueError(f"unknown spool operation {op!r}")


def read_spool(path: Path) -> list[Record]:
    """The records of a spool file; a torn or corrupt line is logged and skipped."""
    if not path.exists():
        return []
    records = []
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                records.append(json.loads(line))
            except ValueError:
                log.warning("%s:%d: skipping an unreadable spool line (torn write?)", path, number)
    return records


def append_spool(path: Path, records: Iterable[Record]) -> int:
    """Appends records as JSON lines and fsyncs; returns how many were written."""
    lines = [json.dumps(record, separators=(",", ":")) + "\n" for record in records]
    if lines:
        with open(path, "a", encoding="utf-8") as handle:
            handle.writelines(lines)
            handle.flush()
            os.fsync(handle.fileno())
    return len(lines)


def _rewrite_spool(path: Path, records: list[Record]) -> None:
    """Atomically replaces the spool with ``records`` (or removes it when empty)."""
    if not records:
        path.unlink(missing_ok=True)
        return
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.unlink(missing_ok=True)
    append_spool(tmp, records)
    os.replace(tmp, path)


def is_transient(exc: BaseException) -> bool:
    """True for errors that mean "Redis unreachable, try later" (not a wrong password)."""
    import redis

    if isinstance(exc, (redis.exceptions.AuthenticationError, redis.exceptions.AuthorizationError)):
        return False
    transient = (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError, OSError)
    return isinstance(exc, transient)


def describe_client(client: Any) -> str:
    """``host:port/db`` of a redis client, without credentials."""
    kwargs = getattr(getattr(client, "connection_pool", None), "connection_kwargs", {})
    if "path" in kwargs:
        return f"unix:{kwargs['path']}"
    return f"{kwargs.get('host', '?')}:{kwargs.get('port', '?')}/{kwargs.get('db', 0)}"


class BufferedSink:
    """A store front that never loses a write while Redis is down.

    Args:
        store: the TrackStore to write to (its ``ensure_index`` runs before the first write).
        spool_path: JSON-lines file for writes beyond ``max_memory`` (its folder is created).
        max_memory: queued writes kept in memory before they move to the spool.
        initial_backoff_s, max_backoff_s: retry delay after a failure, doubling per failure.
        clock: monotonic seconds (injectable for tests).
    """

    def __init__(
        self,
        store: Any,
        spool_path: str | Path,
        *,
        max_memory: int = 1000,
        initial_backoff_s: float = 0.5,
        max_backoff_s: float = 30.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        if max_memory < 0:
            raise ValueError(f"max_memory must be >= 0, got {max_memory}")
        if not 0 < initial_backoff_s <= max_backoff_s:
            raise ValueError(
                "need 0 < initial_backoff_s <= max_backoff_s, "
                f"got {initial_backoff_s} and {max_backoff_s}"
            )
        self.store = store
        self.spool_path = Path(spool_path)
        self.spool_path.parent.mkdir(parents=True, exist_ok=True)
        self.max_memory = max_memory
        self.initial_backoff_s = initial_backoff_s
        self.max_backoff_s = max_backoff_s
        self.clock = clock
        self.target = describe_client(getattr(store, "client", None))
        self._memory: deque[tuple[str, Any]] = deque()
        self._backoff_s = initial_backoff_s
        self._next_retry = 0.0
        self._index_ready = False
        self._lock = self._acquire_lock()
        self._spooled = len(read_spool(self.spool_path))
        if self._spooled:
            log.info("found %d spooled writes in %s; replaying them before new writes",
                     self._spooled, self.spool_path)

    # ---- public API ---------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Writes not yet in Redis (spool + memory)."""
        return self._spooled + len(self._memory)

    def upsert(self, desc: TrackDescription) -> None:
        """Upserts one track description now, or buffers it."""
        self._submit("upsert", desc)

    def append_events(self, events: Iterable[TrackEvent]) -> None:
        """Appends events now, or buffers them."""
        events = list(events)
        if events:
            self._submit("events", events)

    def set_file_status(self, path_key: str, status: str, last_committed_frame: int) -> None:
        """Records ingest progress now, or buffers it (in order with the track writes)."""
        self._submit("file_status", (path_key, status, int(last_committed_frame)))

    def flush(self, force: bool = False) -> bool:
        """Replays buffered writes in order if the backoff delay has passed (or ``force``).

        Returns:
            True when nothing is left pending.
        """
        if not self.pending:
            return True
        if not force and self.clock() < self._next_retry:
            return False
        replayed = self.pending
        try:
            self._ensure_index()
            self._replay_spool()
            while self._memory:
                op, payload = self._memory[0]
                self._apply_or_drop(op, payload, payload)
                self._memory.popleft()
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._on_failure(exc)
            return False
        log.info("Redis at %s reachable again: replayed %d buffered writes", self.target, replayed)
        self._backoff_s = self.initial_backoff_s
        return True

    def close(self) -> None:
        """Tries a last flush, then moves what is still in memory to the spool file."""
        with contextlib.suppress(Exception):
            self.flush(force=True)
        if self._memory:
            self._spill()
            log.warning("closing with %d writes spooled in %s; they replay on next start",
                        self._spooled, self.spool_path)
        if self._lock is not None:
            self._lock.close()
            self._lock = None

    def __enter__(self) -> BufferedSink:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # ---- internals ----------------------------------------------------------------------
    def _acquire_lock(self) -> Any:
        handle = open(self.spool_path.with_suffix(self.spool_path.suffix + ".lock"), "a+b")
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            handle.close()
            raise ServiceError(
                f"spool {self.spool_path} is in use by another process; give each sink its own "
                "spool path"
            ) from None
        return handle

    def _submit(self, op: str, payload: Any) -> None:
        if self.pending:
            self._enqueue(op, payload)  # keep order: nothing overtakes buffered writes
            self.flush()
            return
        try:
            self._ensure_index()
            self._apply(op, payload)
        except Exception as exc:
            if not is_transient(exc):
                raise
            self._enqueue(op, payload)
            self._on_failure(exc)

    def _ensure_index(self) -> None:
        if not self._index_ready:
            self.store.ensure_index()
            self._index_ready = True

    def _apply_or_drop(self, op: str, payload: Any, shown: Any) -> None:
        """Applies a buffered write; one Redis rejects as invalid is logged and dropped,
        because retrying it can never succeed and it would block every later write."""
        import redis

        try:
            self._apply(op, payload)
        except (ValueError, TypeError, redis.exceptions.ResponseError) as exc:
            log.error("dropping buffered %s write that is rejected (%s): %.200r", op, exc, shown)

    def _apply(self, op: str, payload: Any) -> None:
        if op == "upsert":
            self.store.upsert(payload)
        elif op == "events":
            self.store.append_events(payload)
        elif op == "file_status":
            self.store.set_file_status(*payload)
        else:
            raise ValueError(f"unknown spool operation {op!r}")

    def _enqueue(self, op: str, payload: Any) -> None:
        to_record(op, payload)  # fail now, not at replay, on something unserialisable
        self._memory.append((op, payload))
        if len(self._memory) > self.max_memory:
            self._spill()

    def _spill(self) -> None:
        # The spool always holds the oldest pending writes, so memory appends after it.
        self._spooled += append_spool(self.spool_path, (to_record(*item) for item in self._memory))
        self._memory.clear()

    def _replay_spool(self) -> None:
        if not self._spooled:
            return
        records = read_spool(self.spool_path)
        for done, record in enumerate(records):
            try:
                try:
                    op, payload = from_record(record)
                except (ValueError, TypeError, KeyError) as exc:
                    log.error("dropping unreadable spool record (%s): %.200r", exc, record)
                    continue
                self._apply_or_drop(op, payload, record)
            except Exception:
                # Keep what is not yet in Redis; replaying a write twice is harmless.
                _rewrite_spool(self.spool_path, records[done:])
                self._spooled = len(records) - done
                raise
        _rewrite_spool(self.spool_path, [])
        self._spooled = 0

    def _on_failure(self, exc: BaseException) -> None:
        self._index_ready = False  # a restarted Redis may come back without the index
        self._next_retry = self.clock() + self._backoff_s
        log.warning("Redis unreachable at %s: buffering %d writes (retry in %.1f s): %s",
                    self.target, self.pending, self._backoff_s, exc)
        self._backoff_s = min(self._backoff_s * 2.0, self.max_backoff_s)
