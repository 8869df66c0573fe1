"""The track store: one Redis hash per track, a RediSearch index over it, a stream of events.

Layout under ``prefix`` (default ``describeme:``)::

    {prefix}track:{quoted stream_id}:{track_id}   HASH, one per track (indexed)
    {prefix}events                                STREAM of TrackEvent
    {prefix}event:{quoted key}                    marker that makes event appends idempotent
    {prefix}file:{quoted path key}                HASH, ingest progress of one file
    {prefix}meta                                  HASH, schema version of the index

Writes are keyed upserts run as Lua scripts, so a retried call (Ray may run one twice, the
spool replays after an outage) changes nothing: an identical description is a no-op, and a
description older than the stored one (lower ``frame_index``) is skipped as stale.
User text reaches a query only through :func:`escape_tag_value` / :func:`build_tag_clause`.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any
from urllib.parse import quote

import numpy as np

from describeme.errors import ServiceError
from describeme.messages import TrackDescription, TrackEvent
from describeme.operators import embedding
from describeme.operators.store_schema import (  # noqa: F401  (re-exported API)
    KINDS,
    MAX_TAG_VALUE_CHARS,
    SCHEMA_VERSION,
    TAG_SEPARATOR,
    _text,
    build_tag_clause,
    description_from_track,
    description_to_hash,
    escape_tag_value,
    index_schema,
    parse_track,
    part_field,
    schema_version,
    tag_safe,
    track_key,
    unquote_stream,
)

__all__ = [
    "TrackStore", "FileStatus", "track_key", "part_field", "description_to_hash", "parse_track",
    "description_from_track", "escape_tag_value", "build_tag_clause", "index_schema",
]  # fmt: skip

log = logging.getLogger(__name__)

_UPSERT_LUA = """
local cur = redis.call('HMGET', KEYS[1], 'frame_index', 'final', 'digest')
if cur[3] == ARGV[3] then return 0 end
if cur[1] then
  local stored, new = tonumber(cur[1]), tonumber(ARGV[1])
  if stored > new or (stored == new and cur[2] == '1' and ARGV[2] == '0') then return -1 end
end
local t = redis.call('TIME')
redis.call('DEL', KEYS[1])
local now = t[1] .. '.' .. string.format('%06d', t[2])
redis.call('HSET', KEYS[1], 'updated_at', now, unpack(ARGV, 4))
return 1
"""
_EVENT_LUA = """
if redis.call('SET', KEYS[1], '1', 'NX', 'EX', ARGV[1]) then
  local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[2], '*', unpack(ARGV, 3))
  redis.call('SET', KEYS[1], id, 'KEEPTTL')
  return id
end
return false
"""
UPSERT_RESULTS = {1: "written", 0: "unchanged", -1: "stale"}


@dataclass(frozen=True)
class FileStatus:
    """Ingest progress of one input file (for resuming an interrupted ingest)."""

    path_key: str
    status: str
    last_committed_frame: int
    updated_at: float


def _pairs(reply: Any) -> dict[str, Any]:
    """A RESP2 flat list or RESP3 map reply as a dict with str keys."""
    if isinstance(reply, dict):
        return {_text(k): v for k, v in reply.items()}
    return {_text(reply[i]): reply[i + 1] for i in range(0, len(reply) - 1, 2)}


def _search_fields(reply: Any) -> list[dict[Any, Any]]:
    """The field maps of an FT.SEARCH reply, RESP2 (flat list) or RESP3 (map)."""
    if isinstance(reply, dict):
        return [dict(_pairs(item)["extra_attributes"]) for item in _pairs(reply)["results"]]
    return [dict(zip(reply[i + 1][::2], reply[i + 1][1::2], strict=True))
            for i in range(1, len(reply), 2)]  # fmt: skip


class TrackStore:
    """Reads and writes tracks, events and ingest progress in one Redis database.

    Args:
        client: a ``redis.Redis`` created with ``decode_responses=False`` (hashes hold bytes).
        prefix: namespace of every key, so several deployments can share one database.
        index_name: RediSearch index name (default ``{prefix}idx:tracks``).
        embed: description -> (384,) float32 vector (default the hashing embedding).
        event_marker_ttl_s: how long an appended event's idempotency marker lives.
        events_maxlen: approximate cap on the event stream length.
    """

    def __init__(
        self,
        client: Any,
        *,
        prefix: str = "describeme:",
        index_name: str | None = None,
        embed: Callable[[TrackDescription], np.ndarray] = embedding.embed_description,
        event_marker_ttl_s: int = 7 * 24 * 3600,
        events_maxlen: int = 1_000_000,
    ) -> None:
        if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
            raise ValueError(f"key prefix must be non-empty and without spaces, got {prefix!r}")
        pool = getattr(client, "connection_pool", None)
        if pool is not None and pool.connection_kwargs.get("decode_responses"):
            raise ValueError("TrackStore needs a Redis client with decode_responses=False")
        self.client = client
        self.prefix = prefix
        self.index_name = index_name or f"{prefix}idx:tracks"
        self.events_key = f"{prefix}events"
        self.embed = embed
        self.event_marker_ttl_s = int(event_marker_ttl_s)
        self.events_maxlen = int(events_maxlen)
        self._upsert_script = client.register_script(_UPSERT_LUA)
        self._event_script = client.register_script(_EVENT_LUA)

    @classmethod
    def from_url(cls, url: str, **kwargs: Any) -> TrackStore:
        """Connects to ``url`` and checks it answers (raises :class:`ServiceError` if not).

        The client retries a failed command twice within about 0.3 s; longer outages are the
        job of :class:`~describeme.operators.spool.BufferedSink`, which buffers instead.
        """
        import redis
        from redis.backoff import ExponentialBackoff
        from redis.retry import Retry

        client = redis.Redis.from_url(
            url, decode_responses=False, socket_timeout=10, socket_connect_timeout=5,
            retry=Retry(ExponentialBackoff(cap=0.2, base=0.05), 2),
        )  # fmt: skip
        try:
            client.ping()
        except redis.exceptions.RedisError as exc:
            raise ServiceError(f"cannot reach Redis at {redact_url(url)}: {exc}") from None
        return cls(client, **kwargs)

    # ---- index --------------------------------------------------------------------------
    def ensure_index(self, wait: bool = True, timeout_s: float = 60.0) -> str:
        """Creates the index, or recreates it when the stored schema version differs.

        Dropping an index keeps its hashes, and FT.CREATE re-indexes existing hashes, so a
        migration loses no tracks. Returns ``"exists"``, ``"created"`` or ``"migrated"``.
        """
        import redis

        try:
            indexes = {_text(name) for name in self.client.execute_command("FT._LIST")}
        except redis.exceptions.ResponseError as exc:
            raise ServiceError(
                f"this Redis has no RediSearch module ({exc}); use the embedded server (omit "
                "--redis-url) or Redis 8 / Redis Stack with search and JSON"
            ) from None
        meta_key, version = f"{self.prefix}meta", schema_version()
        stored = self.client.hget(meta_key, f"schema:{self.index_name}")
        if self.index_name in indexes and stored is not None and _text(stored) == version:
            return "exists"
        outcome = "created"
        if self.index_name in indexes:
            log.info(
                "migrating index %s from schema %s to %s",
                self.index_name,
                _text(stored) if stored else "unknown",
                version,
            )
            self.client.execute_command("FT.DROPINDEX", self.index_name)  # no DD: keeps hashes
            outcome = "migrated"
        try:
            self.client.execute_command(
                "FT.CREATE",
                self.index_name,
                "ON",
                "HASH",
                "PREFIX",
                "1",
                f"{self.prefix}track:",
                "SCHEMA",
                *index_schema(),
            )
        except redis.exceptions.ResponseError as exc:
            if "already exists" not in str(exc).lower():  # another process won the race
                raise
        self.client.hset(meta_key, f"schema:{self.index_name}", version)
        if wait:
            self.wait_indexed(timeout_s)
        return outcome

    def wait_indexed(self, timeout_s: float = 60.0) -> None:
        """Blocks until background indexing of existing hashes has finished."""
        import time

        deadline = time.monotonic() + timeout_s
        while True:
            info = _pairs(self.client.execute_command("FT.INFO", self.index_name))
            if str(_text(info.get("indexing", 0))) in ("0", "0.0"):
                return
            if time.monotonic() > deadline:
                raise ServiceError(f"index {self.index_name} still indexing after {timeout_s} s")
            time.sleep(0.05)

    # ---- tracks -------------------------------------------------------------------------
    def _upsert_args(self, desc: TrackDescription) -> tuple[list[str], list[str | bytes]]:
        fields = description_to_hash(desc, self.embed(desc))
        flat: list[str | bytes] = []
        digest = hashlib.sha1()
        for name in sorted(fields):
            value = fields[name]
            flat += [name, value]
            digest.update(name.encode() + b"\0")
            digest.update(value if isinstance(value, bytes) else value.encode())
            digest.update(b"\0")
        key = track_key(self.prefix, desc.stream_id, desc.track_id)
        args: list[str | bytes] = [fields["frame_index"], fields["final"], digest.hexdigest()]
        return [key], [*args, "digest", digest.hexdigest(), *flat]

    def upsert(self, desc: TrackDescription) -> str:
        """Writes one track's hash. Returns ``"written"``, ``"unchanged"`` or ``"stale"``."""
        keys, args = self._upsert_args(desc)
        return UPSERT_RESULTS[int(self._upsert_script(keys=keys, args=args))]

    def upsert_many(self, descs: Iterable[TrackDescription]) -> list[str]:
        """Writes several tracks in one pipelined round trip (same results as :meth:`upsert`)."""
        pipe = self.client.pipeline(transaction=False)
        for desc in descs:
            keys, args = self._upsert_args(desc)
            self._upsert_script(keys=keys, args=args, client=pipe)
        return [UPSERT_RESULTS[int(code)] for code in pipe.execute()]

    def get_track(self, stream_id: str, track_id: int) -> dict[str, Any] | None:
        """The stored track as :func:`parse_track` returns it, or None."""
        fields = self.client.hgetall(track_key(self.prefix, stream_id, track_id))
        return parse_track(fields) if fields else None

    def count_tracks(self) -> int:
        """Number of indexed tracks."""
        reply = self.client.execute_command("FT.SEARCH", self.index_name, "*", "LIMIT", "0", "0")
        return int(_pairs(reply)["total_results"] if isinstance(reply, dict) else reply[0])

    def find(self, query: str, *, limit: int = 10, dialect: int = 2) -> list[dict[str, Any]]:
        """Runs a RediSearch query (built with :func:`build_tag_clause`; never raw user text).

        Returns:
            up to ``limit`` tracks as :func:`parse_track` dicts, in RediSearch order.
        """
        reply = self.client.execute_command(
            "FT.SEARCH", self.index_name, query, "LIMIT", "0", str(int(limit)),
            "DIALECT", str(int(dialect)),
        )  # fmt: skip
        return [parse_track(fields) for fields in _search_fields(reply)]

    def knn(
        self, vector: np.ndarray, k: int = 10, filter_query: str = "*"
    ) -> list[tuple[dict[str, Any], float]]:
        """The ``k`` tracks nearest to ``vector`` (cosine distance), optionally pre-filtered.

        Args:
            vector: (384,) float32 query embedding.
            k: number of neighbours.
            filter_query: a RediSearch filter built from escaped clauses, ``*`` for all.

        Returns:
            ``(track, distance)`` pairs, nearest first; distance is 1 - cosine similarity.
        """
        if int(k) < 1:
            raise ValueError(f"k must be >= 1, got {k}")
        where = "*" if filter_query.strip() == "*" else f"({filter_query})"
        reply = self.client.execute_command(
            "FT.SEARCH", self.index_name, f"{where}=>[KNN {int(k)} @vector $vec AS __dist]",
            "PARAMS", "2", "vec", embedding.to_bytes(vector), "SORTBY", "__dist",
            "LIMIT", "0", str(int(k)), "DIALECT", "2",
        )  # fmt: skip
        hits = []
        for fields in _search_fields(reply):
            distance = float(_text(fields.pop(b"__dist", fields.pop("__dist", b"nan"))))
            hits.append((parse_track(fields), distance))
        return hits

    # ---- events -------------------------------------------------------------------------
    def _event_args(self, event: TrackEvent) -> tuple[list[str], list[str]]:
        marker = ":".join(quote(str(part), safe="") for part in event.key)
        fields = [
            "stream_id",
            event.stream_id,
            "track_id",
            str(int(event.track_id)),
            "frame_index",
            str(int(event.frame_index)),
            "pts",
            repr(float(event.pts)),
            "kind",
            event.kind,
            "detail",
            event.detail,
        ]
        keys = [f"{self.prefix}event:{marker}", self.events_key]
        return keys, [str(self.event_marker_ttl_s), str(self.events_maxlen), *fields]

    def append_events(self, events: Iterable[TrackEvent]) -> int:
        """Appends events to the stream, skipping any whose ``key`` was appended before.

        Returns:
            the number of events actually appended.
        """
        pipe = self.client.pipeline(transaction=False)
        count = 0
        for event in events:
            keys, args = self._event_args(event)
            self._event_script(keys=keys, args=args, client=pipe)
            count += 1
        if not count:
            return 0
        return sum(1 for stream_id in pipe.execute() if stream_id)

    def read_events(self, count: int = 100, after: str = "-") -> list[dict[str, str]]:
        """Events in append order (``after`` an exclusive stream id, or ``-`` from the start)."""
        start = after if after == "-" else f"({after}"
        entries = self.client.xrange(self.events_key, min=start, count=count)
        return [{"id": _text(i), **{_text(k): _text(v) for k, v in f.items()}} for i, f in entries]

    # ---- ingest progress ----------------------------------------------------------------
    def set_file_status(self, path_key: str, status: str, last_committed_frame: int) -> None:
        """Records how far the ingest of one file got (idempotent overwrite)."""
        if not isinstance(path_key, str) or not path_key:
            raise ValueError(f"path_key must be a non-empty string, got {path_key!r}")
        if not isinstance(status, str) or not status.strip():
            raise ValueError(f"file status must be a non-empty string, got {status!r}")
        if int(last_committed_frame) < -1:
            raise ValueError(f"last_committed_frame must be >= -1, got {last_committed_frame}")
        import time

        self.client.hset(
            f"{self.prefix}file:{quote(path_key, safe='')}",
            mapping={
                "path_key": path_key,
                "status": status,
                "updated_at": repr(time.time()),
                "last_committed_frame": str(int(last_committed_frame)),
            },
        )

    def get_file_status(self, path_key: str) -> FileStatus | None:
        """The recorded progress of ``path_key``, or None if never recorded."""
        fields = self.client.hgetall(f"{self.prefix}file:{quote(path_key, safe='')}")
        if not fields:
            return None
        text = {_text(k): _text(v) for k, v in fields.items()}
        return FileStatus(
            path_key, text["status"], int(text["last_committed_frame"]), float(text["updated_at"])
        )


def redact_url(url: str) -> str:
    """``url`` with its password replaced by ``***`` (for logs and error messages)."""
    from urllib.parse import urlsplit, urlunsplit

    parts = urlsplit(url)
    if parts.password is None:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return urlunsplit(parts._replace(netloc=netloc))
