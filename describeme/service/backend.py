"""What the API reads: tracks, search results and stream summaries from the track store.

Public track ids: ``{percent-encoded stream id}:{track id}``, the tail of the Redis key after
``{prefix}track:`` (e.g. ``cam-a:3``, ``rtsp%3A%2F%2Fhost%2Fs:12``). The stream id is encoded,
so an id holds only ``[A-Za-z0-9._~%-]``, one ``:`` and digits: safe in a URL path segment
(no ``/``) and parsed without ambiguity. User text reaches RediSearch only through
:func:`describeme.operators.retrieval.search_tracks`, which escapes every value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Protocol
from urllib.parse import quote, unquote

from describeme.operators.query import Filters, ParsedQuery

__all__ = ["MAX_TRACK_REF_CHARS", "StoreBackend", "TrackBackend", "StreamSummary",
           "format_track_ref", "parse_track_ref"]  # fmt: skip

MAX_TRACK_REF_CHARS = 512  # stream ids are URLs or camera names; far beyond any real one
MAX_TRACK_ID = 2**53  # ids must survive JSON numbers in the browser
_TRACK_REF = re.compile(r"([A-Za-z0-9._~%-]+):([0-9]{1,16})")
EVENT_SCAN = 2000  # most recent events scanned for one track's history


def format_track_ref(stream_id: str, track_id: int) -> str:
    """The public id of a track (see the module docstring)."""
    return f"{quote(stream_id, safe='')}:{int(track_id)}"


def parse_track_ref(ref: str) -> tuple[str, int]:
    """``(stream_id, track_id)`` of a public track id.

    Raises:
        ValueError: too long, malformed, a bad percent-encoding, or a track id out of range.
    """
    if not isinstance(ref, str) or len(ref) > MAX_TRACK_REF_CHARS:
        raise ValueError(f"track id must be a string of at most {MAX_TRACK_REF_CHARS} characters")
    match = _TRACK_REF.fullmatch(ref)
    if match is None:
        raise ValueError(
            f"track id {ref[:60]!r} must look like STREAM:NUMBER, e.g. 'cam-a:3' (the stream "
            "id percent-encoded, as the 'id' field of a search hit gives it)"
        )
    try:
        stream_id = unquote(match.group(1), errors="strict")
    except UnicodeDecodeError:
        raise ValueError(f"track id {ref[:60]!r} has a stream part that is not UTF-8") from None
    track_id = int(match.group(2))
    if not stream_id or track_id > MAX_TRACK_ID:
        raise ValueError(f"track id {ref[:60]!r} is out of range")
    return stream_id, track_id


@dataclass(frozen=True)
class StreamSummary:
    """One stream the store knows: its indexed track count and any file ingest status."""

    stream_id: str
    tracks: int
    file_status: str | None = None
    last_committed_frame: int | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"stream_id": self.stream_id, "tracks": self.tracks,
                "file_status": self.file_status,
                "last_committed_frame": self.last_committed_frame}  # fmt: skip


class TrackBackend(Protocol):
    """What the app needs; :class:`StoreBackend` is the Redis one, tests use a fake."""

    def ping(self) -> bool: ...
    def count_tracks(self) -> int: ...
    def search(self, parsed: ParsedQuery, *, limit: int, offset: int,
               filters: Filters | None) -> Any: ...  # fmt: skip
    def get_track(self, stream_id: str, track_id: int) -> dict[str, Any] | None: ...
    def track_events(self, stream_id: str, track_id: int) -> list[dict[str, str]]: ...
    def streams(self) -> list[StreamSummary]: ...


def _text(value: Any) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


class StoreBackend:
    """:class:`TrackBackend` over a :class:`~describeme.operators.store.TrackStore`.

    Args:
        store: a TrackStore whose index exists (``ensure_index`` was run).
    """

    def __init__(self, store: Any) -> None:
        self.store = store

    def ping(self) -> bool:
        import redis

        try:
            return bool(self.store.client.ping())
        except redis.exceptions.RedisError:
            return False

    def count_tracks(self) -> int:
        return int(self.store.count_tracks())

    def search(self, parsed: ParsedQuery, *, limit: int, offset: int,
               filters: Filters | None) -> Any:  # fmt: skip
        from describeme.operators.retrieval import search_tracks

        return search_tracks(self.store, parsed, limit=limit, offset=offset, filters=filters)

    def get_track(self, stream_id: str, track_id: int) -> dict[str, Any] | None:
        return self.store.get_track(stream_id, track_id)

    def track_events(self, stream_id: str, track_id: int) -> list[dict[str, str]]:
        """This track's events among the latest EVENT_SCAN, oldest first."""
        entries = self.store.client.xrevrange(self.store.events_key, count=EVENT_SCAN)
        events = []
        for entry_id, fields in entries:
            event = {"id": _text(entry_id), **{_text(k): _text(v) for k, v in fields.items()}}
            if event.get("stream_id") == stream_id and event.get("track_id") == str(track_id):
                events.append(event)
        return events[::-1]

    def streams(self) -> list[StreamSummary]:
        """Streams with indexed tracks plus files with ingest progress, sorted by id."""
        reply = self.store.client.execute_command(
            "FT.AGGREGATE", self.store.index_name, "*", "LOAD", "1", "@stream_id",
            "GROUPBY", "1", "@stream_id", "REDUCE", "COUNT", "0", "AS", "count",
            "LIMIT", "0", "10000", "DIALECT", "2",
        )  # fmt: skip
        counts: dict[str, int] = {}
        for row in _aggregate_rows(reply):
            counts[_text(row.get("stream_id", ""))] = int(_text(row.get("count", "0")))
        files = {}
        for key in self.store.client.scan_iter(match=f"{self.store.prefix}file:*", count=500):
            fields = {_text(k): _text(v) for k, v in self.store.client.hgetall(key).items()}
            if "path_key" in fields:
                files[fields["path_key"]] = fields
        out = []
        for stream_id in sorted(set(counts) | set(files)):
            info = files.get(stream_id, {})
            frame = info.get("last_committed_frame")
            out.append(StreamSummary(stream_id, counts.get(stream_id, 0), info.get("status"),
                                     int(frame) if frame is not None else None))  # fmt: skip
        return out


def _aggregate_rows(reply: Any) -> list[dict[str, Any]]:
    """Rows of an FT.AGGREGATE reply (RESP2 list or RESP3 map) with str keys."""
    if isinstance(reply, dict):
        results = {_text(k): v for k, v in reply.items()}.get("results", [])
        rows = []
        for item in results:
            attrs = {_text(k): v for k, v in item.items()}.get("extra_attributes", {})
            rows.append({_text(k): v for k, v in attrs.items()})
        return rows
    return [{_text(r[i]): r[i + 1] for i in range(0, len(r) - 1, 2)} for r in reply[1:]]
