"""Hash layout, field names, escaping and (de)serialisation of track documents.

Pure functions shared by the store (writes, index) and the search (queries): user text
reaches a RediSearch query only through :func:`escape_tag_value` / :func:`build_tag_clause`.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from typing import Any
from urllib.parse import quote, unquote

import numpy as np

from describeme.labels import CHARACTERISTICS, DESCRIPTION_GROUPS, characteristic_id
from describeme.messages import PartDescription, TrackDescription
from describeme.operators import embedding

SCHEMA_VERSION = 1  # bump when the meaning of a field changes; field changes bump the digest too
TAG_SEPARATOR = "\x1f"  # stream ids may hold ',' (the default separator); this never occurs
KINDS = tuple(CHARACTERISTICS)  # ("size", "pattern", "color")

_FIELD_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
MAX_TAG_VALUE_CHARS = 4096  # far beyond any label or stream id; bounds hostile input


def escape_tag_value(text: str) -> str:
    """Escapes a value for a RediSearch TAG query (``@field:{...}``).

    Every ASCII character that is not a letter, digit or ``_`` gets a backslash, so quotes,
    braces, ``|``, ``-``, ``*``, ``@field:`` and spaces are literal and cannot change the
    query's structure. Non-ASCII characters pass unchanged: RediSearch's query syntax is all
    ASCII, and a backslash before a multi-byte character escapes only its first byte (that
    breaks matching, measured on RediSearch 2.10).

    Raises:
        ValueError: empty, longer than MAX_TAG_VALUE_CHARS, or holding control characters.
    """
    if not isinstance(text, str):
        raise TypeError(f"tag value must be a str, got {type(text).__name__}")
    if not text.strip():
        raise ValueError("tag value must not be empty or blank")
    if len(text) > MAX_TAG_VALUE_CHARS:
        raise ValueError(f"tag value is {len(text)} characters; at most {MAX_TAG_VALUE_CHARS}")
    if any(ord(c) < 32 or ord(c) == 127 for c in text):
        raise ValueError(f"tag value {text[:40]!r} holds control characters")
    return "".join("\\" + c if c < "\x80" and not (c.isalnum() or c == "_") else c for c in text)


def build_tag_clause(field: str, values: Iterable[str]) -> str:
    """``@field:{v1 | v2}`` matching any of ``values``, each escaped.

    Raises:
        ValueError: a malformed field name or no values.
    """
    if not isinstance(field, str) or not _FIELD_NAME.fullmatch(field):
        raise ValueError(f"field name {field!r} must match [A-Za-z_][A-Za-z0-9_]*")
    escaped = [escape_tag_value(value) for value in values]
    if not escaped:
        raise ValueError(f"a tag clause on {field!r} needs at least one value")
    return f"@{field}:{{{' | '.join(escaped)}}}"


def tag_safe(value: str) -> str:
    """A value stored in a TAG field: the separator character cannot split it."""
    return value.replace(TAG_SEPARATOR, " ")


def part_field(group: str, kind: str) -> str:
    """Hash/index field of one part group's characteristic: ("upper-clothes", "color") ->
    ``upper_clothes_color``; ``kind`` may also be ``presence`` or ``<kind>_conf``."""
    if group not in DESCRIPTION_GROUPS:
        raise ValueError(
            f"unknown part group {group!r}; expected one of {list(DESCRIPTION_GROUPS)}"
        )
    return f"{group.replace('-', '_')}_{kind}"


def shares_field(group: str, kind: str) -> str:
    """Hash field (not indexed) holding a part group's vote shares of one characteristic."""
    return part_field(group, f"{kind}_shares")


def format_shares(shares: Mapping[str, float]) -> str:
    """``{"dark": 0.45, "blue": 0.32}`` -> ``"dark=0.45 blue=0.32"`` (label names hold no
    spaces or '=')."""
    return " ".join(f"{value}={float(share):.3g}" for value, share in shares.items())


def parse_shares(text: bytes | str | None) -> dict[str, float]:
    """Inverse of :func:`format_shares`; malformed entries are skipped ({} for None)."""
    out: dict[str, float] = {}
    for item in _text(text or "").split():
        value, _, share = item.partition("=")
        try:
            out[value] = float(share)
        except ValueError:
            continue
    return out


def track_key(prefix: str, stream_id: str, track_id: int) -> str:
    """The hash key of (stream_id, track_id); the stream id is percent-encoded so ':' and
    spaces cannot collide with the key structure and distinct ids give distinct keys."""
    if not isinstance(stream_id, str) or not stream_id:
        raise ValueError(f"stream_id must be a non-empty string, got {stream_id!r}")
    if isinstance(track_id, bool) or not isinstance(track_id, (int, np.integer)) or track_id < 0:
        raise ValueError(f"track_id must be an integer >= 0, got {track_id!r}")
    return f"{prefix}track:{quote(stream_id, safe='')}:{int(track_id)}"


def index_schema() -> list[str]:
    """FT.CREATE SCHEMA arguments (after the word SCHEMA)."""
    tag = ["TAG", "SEPARATOR", TAG_SEPARATOR]
    args = ["stream", *tag, "CASESENSITIVE", "parts", *tag, "sentence", "TEXT"]
    for name in (
        "track_id",
        "frame_index",
        "first_seen",
        "last_seen",
        "first_seen_time",
        "last_seen_time",
        "quality",
        "num_observations",
        "final",
        "updated_at",
    ):
        args += [name, "NUMERIC", "SORTABLE"]
    for group in DESCRIPTION_GROUPS:
        # SORTABLE keeps the confidences in the index, so ranking a broad query ("person in
        # red", thousands of hits) does not load every matching hash: 3-4x faster at 100k
        # tracks for about 7% more memory (benchmarks/results/search_latency.json).
        args += [part_field(group, "presence"), "NUMERIC", "SORTABLE"]
        for kind in KINDS:
            conf = part_field(group, f"{kind}_conf")
            args += [part_field(group, kind), *tag, conf, "NUMERIC", "SORTABLE"]
    vector_params = ["TYPE", "FLOAT32", "DIM", str(embedding.DIM), "DISTANCE_METRIC", "COSINE"]
    return [*args, "vector", "VECTOR", "FLAT", str(len(vector_params)), *vector_params]


def schema_version() -> str:
    """``<SCHEMA_VERSION>-<digest of the schema>``: any field change migrates the index."""
    digest = hashlib.sha1("\n".join(index_schema()).encode()).hexdigest()[:12]
    return f"{SCHEMA_VERSION}-{digest}"


def _finite(name: str, value: float) -> str:
    """``repr`` of a finite float (RediSearch skips documents with a NaN NUMERIC field)."""
    number = float(value)
    if not np.isfinite(number):
        raise ValueError(f"{name} must be a finite number, got {value!r}")
    return repr(number)


def _check_part(part: PartDescription) -> None:
    if part.part not in DESCRIPTION_GROUPS:
        raise ValueError(
            f"PartDescription.part {part.part!r} is not a description group; "
            f"expected one of {list(DESCRIPTION_GROUPS)}"
        )
    for kind in KINDS:
        value = getattr(part, kind)
        if value is not None:
            characteristic_id(kind, value)  # raises naming the bad value
    if not isinstance(part.shares, Mapping):
        raise ValueError(f"{part.part}.shares must be a mapping, got {type(part.shares).__name__}")
    for kind, shares in part.shares.items():
        if kind not in KINDS or not isinstance(shares, Mapping):
            raise ValueError(f"{part.part}.shares[{kind!r}] must map {list(KINDS)} to "
                             "{value: share}")  # fmt: skip
        for value, share in shares.items():
            characteristic_id(kind, value)
            if not 0.0 <= float(share) <= 1.0:  # NaN fails too
                raise ValueError(f"{part.part}.shares[{kind!r}][{value!r}] = {share!r} is not "
                                 "a share in [0, 1]")  # fmt: skip


def description_to_hash(
    desc: TrackDescription, vector: np.ndarray | None = None
) -> dict[str, str | bytes]:
    """The hash fields of one description (``updated_at`` is set by the server on write).

    Args:
        desc: the description.
        vector: (384,) float32 embedding; default :func:`embedding.embed_description`.
    """
    seen: set[str] = set()
    fields: dict[str, str | bytes] = {
        "stream_id": desc.stream_id, "stream": tag_safe(desc.stream_id),
        "track_id": str(int(desc.track_id)), "frame_index": str(int(desc.frame_index)),
        "num_observations": str(int(desc.num_observations)),
        "final": "1" if desc.final else "0", "sentence": desc.sentence,
    }  # fmt: skip
    for name in ("pts", "first_seen", "last_seen", "first_seen_time", "last_seen_time", "quality"):
        fields[name] = _finite(f"TrackDescription.{name}", getattr(desc, name))
    for part in desc.parts:
        _check_part(part)
        if part.part in seen:
            raise ValueError(f"track {desc.key} describes part {part.part!r} twice")
        seen.add(part.part)
        fields[part_field(part.part, "presence")] = _finite(f"{part.part}.presence", part.presence)
        for kind in KINDS:
            value = getattr(part, kind)
            if value is not None and value != "none":
                fields[part_field(part.part, kind)] = value
                confidence = getattr(part, f"{kind}_confidence")
                fields[part_field(part.part, f"{kind}_conf")] = _finite(
                    f"{part.part}.{kind}_confidence", confidence
                )
        for kind, shares in part.shares.items():
            if shares:  # read back by search for near misses (not indexed)
                fields[shares_field(part.part, kind)] = format_shares(shares)
    fields["parts"] = TAG_SEPARATOR.join(sorted(g.replace("-", "_") for g in seen))
    fields["parts_json"] = json.dumps([vars(part) for part in desc.parts], sort_keys=True)
    vector = embedding.embed_description(desc) if vector is None else vector
    fields["vector"] = embedding.to_bytes(vector)
    if desc.thumbnail is not None:
        fields["thumbnail"] = bytes(desc.thumbnail)
    return fields


def _text(value: bytes | str) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else value


def parse_track(fields: Mapping[bytes | str, bytes | str]) -> dict[str, Any]:
    """Decodes a stored track hash into a TrackDescription-like dict.

    Returns:
        keys of :class:`TrackDescription` (``parts`` as a list of dicts, ``thumbnail`` bytes
        or None) plus ``updated_at`` (server Unix seconds) and ``vector`` ((384,) float32 or
        None).

    Raises:
        ValueError: the hash is empty or not a track written by :class:`TrackStore`.
    """
    raw = {_text(k): v for k, v in fields.items()}
    if "stream_id" not in raw or "track_id" not in raw:
        raise ValueError(f"not a describeme track hash (fields: {sorted(raw)[:10]})")
    text = {k: _text(v) for k, v in raw.items() if k not in ("thumbnail", "vector")}
    track: dict[str, Any] = {"stream_id": text["stream_id"], "track_id": int(text["track_id"])}
    for name in ("frame_index", "num_observations"):
        track[name] = int(text.get(name, "0"))
    for name in (
        "pts",
        "first_seen",
        "last_seen",
        "first_seen_time",
        "last_seen_time",
        "quality",
        "updated_at",
    ):
        track[name] = float(text.get(name, "0"))
    track["final"] = text.get("final") == "1"
    track["sentence"] = text.get("sentence", "")
    track["parts"] = json.loads(text.get("parts_json", "[]"))
    thumbnail = raw.get("thumbnail")
    track["thumbnail"] = thumbnail.encode("latin-1") if isinstance(thumbnail, str) else thumbnail
    vector = raw.get("vector")
    track["vector"] = embedding.from_bytes(vector) if isinstance(vector, bytes) else None
    return track


def description_from_track(track: Mapping[str, Any]) -> TrackDescription:
    """Rebuilds a :class:`TrackDescription` from :func:`parse_track` output."""
    names = TrackDescription.__dataclass_fields__
    kwargs = {k: v for k, v in track.items() if k in names and k != "parts"}
    return TrackDescription(parts=[PartDescription(**p) for p in track["parts"]], **kwargs)


def unquote_stream(quoted: str) -> str:
    """Inverse of the stream-id quoting in :func:`track_key`."""
    return unquote(quoted)
