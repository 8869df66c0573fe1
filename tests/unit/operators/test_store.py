"""Track store logic that needs no server: escaping, keys, hash layout, decoding."""

from __future__ import annotations

import re

import numpy as np
import pytest

from describeme.labels import DESCRIPTION_GROUPS
from describeme.messages import PartDescription, TrackDescription
from describeme.operators import embedding
from describeme.operators.store import (
    TAG_SEPARATOR,
    TrackStore,
    build_tag_clause,
    description_from_track,
    description_to_hash,
    escape_tag_value,
    index_schema,
    parse_track,
    part_field,
    redact_url,
    schema_version,
    track_key,
)

HOSTILE = [
    'he said "hi"',
    "it's",
    "{braces}",
    "a}|@stream:{b",
    "@field:value",
    "x | y",
    "-negated",
    "wild*",
    "(paren) [bracket] ~tilde",
    "semi;colon,comma.dot",
    "back\\slash",
    "$param %fuzzy%",
    "emoji 😀 ünïcödé 中文",
    "a" * 4096,
]


def make_description(**overrides: object) -> TrackDescription:
    fields: dict[str, object] = dict(
        stream_id="cam:1",
        track_id=7,
        frame_index=30,
        pts=1.5,
        first_seen=0.25,
        last_seen=1.5,
        first_seen_time=1.7e9,
        last_seen_time=1.7e9 + 1.25,
        parts=[
            PartDescription("upper-clothes", 0.9, "red", 0.8, "short", 0.7, "geometrical", 0.6,
                            shares={"color": {"red": 0.8, "pink": 0.15}}),
            PartDescription("shoes", 0.4, "dark", 0.55),
        ],
        sentence="red short-sleeved striped top, dark shoes",
        thumbnail=b"\xff\xd8\xff\x00jpeg\x00bytes",
        quality=0.75,
        num_observations=12,
        final=False,
    )
    fields.update(overrides)
    return TrackDescription(**fields)  # type: ignore[arg-type]


@pytest.mark.parametrize("text", HOSTILE)
def test_escape_tag_value_leaves_no_ascii_syntax_unescaped(text: str) -> None:
    escaped = escape_tag_value(text)
    # Removing every backslash-escaped character must leave only letters, digits, '_' and
    # non-ASCII characters (RediSearch's query syntax is all ASCII).
    bare = re.sub(r"\\.", "", escaped, flags=re.DOTALL)
    assert all(c.isalnum() or c == "_" or ord(c) > 127 for c in bare)
    assert re.sub(r"\\(.)", r"\1", escaped, flags=re.DOTALL) == text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("red", "red"),
        ("light blue", "light\\ blue"),
        ("a-b", "a\\-b"),
        ("x|y", "x\\|y"),
        ("ünï 😀", "ünï\\ 😀"),
        ("a€b", "a€b"),
    ],
)
def test_escape_tag_value_examples(text: str, expected: str) -> None:
    assert escape_tag_value(text) == expected


@pytest.mark.parametrize(
    ("value", "error", "match"),
    [
        ("", ValueError, "empty"),
        ("   ", ValueError, "empty"),
        ("a" * 4097, ValueError, "at most"),
        ("line\nbreak", ValueError, "control"),
        ("nul\x00", ValueError, "control"),
        (42, TypeError, "str"),
    ],
)
def test_escape_tag_value_rejects_bad_input(value: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        escape_tag_value(value)


def test_build_tag_clause_joins_escaped_values() -> None:
    assert (
        build_tag_clause("pants_color", ["blue", "dark grey"])
        == "@pants_color:{blue | dark\\ grey}"
    )


@pytest.mark.parametrize("field", ["", "1abc", "a b", "x:{y}", "@pants", "pants-color"])
def test_build_tag_clause_rejects_bad_field_names(field: str) -> None:
    with pytest.raises(ValueError, match="field name"):
        build_tag_clause(field, ["red"])


def test_build_tag_clause_needs_a_value() -> None:
    with pytest.raises(ValueError, match="at least one"):
        build_tag_clause("pants_color", [])


@pytest.mark.parametrize(
    ("stream_id", "track_id", "expected"),
    [
        ("cam1", 0, "p:track:cam1:0"),
        ("cam:1", 3, "p:track:cam%3A1:3"),
        ("rtsp://h/x y", 12, "p:track:rtsp%3A%2F%2Fh%2Fx%20y:12"),
        ("/videos/a.mp4", 1, "p:track:%2Fvideos%2Fa.mp4:1"),
    ],
)
def test_track_key_quotes_the_stream_id(stream_id: str, track_id: int, expected: str) -> None:
    assert track_key("p:", stream_id, track_id) == expected


def test_track_keys_of_distinct_streams_never_collide() -> None:
    # Without quoting, ("a:1", 2) and ("a", ...) style ids could produce the same key.
    keys = {track_key("p:", s, t) for s, t in [("a:1", 2), ("a", 1), ("a:1:2", 0), ("a%3A1", 2)]}
    assert len(keys) == 4


@pytest.mark.parametrize(
    ("stream_id", "track_id"), [("", 1), (None, 1), ("cam", -1), ("cam", True), ("cam", 1.5)]
)
def test_track_key_rejects_bad_parts(stream_id: object, track_id: object) -> None:
    with pytest.raises(ValueError):
        track_key("p:", stream_id, track_id)


def test_part_field_names() -> None:
    assert part_field("upper-clothes", "color") == "upper_clothes_color"
    assert part_field("scarf-tie", "size_conf") == "scarf_tie_size_conf"
    with pytest.raises(ValueError, match="unknown part group"):
        part_field("left-shoe", "color")


def test_index_schema_has_a_tag_triple_per_group_and_a_384_vector() -> None:
    schema = index_schema()
    for group in DESCRIPTION_GROUPS:
        for kind in ("color", "size", "pattern"):
            position = schema.index(part_field(group, kind))
            assert schema[position + 1] == "TAG"
    vector_at = schema.index("vector")
    assert schema[vector_at + 1 : vector_at + 3] == ["VECTOR", "FLAT"]
    assert str(embedding.DIM) in schema[vector_at:]
    assert schema_version() == schema_version()


def test_description_to_hash_fields() -> None:
    fields = description_to_hash(make_description())
    assert fields["upper_clothes_color"] == "red"
    assert fields["upper_clothes_size"] == "short"
    assert fields["upper_clothes_pattern"] == "geometrical"
    assert float(fields["upper_clothes_color_conf"]) == pytest.approx(0.8)
    assert fields["shoes_color"] == "dark"
    assert "shoes_size" not in fields and "shoes_pattern" not in fields
    assert set(str(fields["parts"]).split(TAG_SEPARATOR)) == {"upper_clothes", "shoes"}
    assert fields["stream"] == "cam:1" and fields["final"] == "0"
    assert len(fields["vector"]) == embedding.DIM * 4


def test_description_to_hash_is_deterministic() -> None:
    assert description_to_hash(make_description()) == description_to_hash(make_description())


@pytest.mark.parametrize(
    ("part", "match"),
    [
        (PartDescription("left-shoe", 1.0, "red"), "not a description group"),
        (PartDescription("pants", 1.0, "crimson"), "unknown color"),
        (PartDescription("pants", 1.0, size="huge"), "unknown size"),
        (PartDescription("pants", 1.0, pattern="plaid"), "unknown pattern"),
        (PartDescription("pants", 1.0, shares={"colour": {"red": 0.5}}), "shares"),
        (PartDescription("pants", 1.0, shares={"color": {"navy": 0.5}}), "unknown color"),
        (PartDescription("pants", 1.0, shares={"color": {"red": 1.5}}), "not a share"),
        (PartDescription("pants", 1.0, shares={"color": {"red": float("nan")}}), "not a share"),
        (PartDescription("pants", 1.0, shares={"color": ["red"]}), "shares"),  # type: ignore[dict-item]
    ],
)
def test_description_to_hash_rejects_bad_parts(part: PartDescription, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        description_to_hash(make_description(parts=[part]))


@pytest.mark.parametrize(
    ("overrides", "match"),
    [
        ({"quality": float("nan")}, "TrackDescription.quality"),
        ({"first_seen_time": float("inf")}, "TrackDescription.first_seen_time"),
        ({"parts": [PartDescription("pants", float("nan"))]}, "pants.presence"),
        ({"parts": [PartDescription("pants", 1.0, "red", float("inf"))]}, "color_confidence"),
    ],
)
def test_description_to_hash_rejects_non_finite_numbers(
    overrides: dict[str, object], match: str
) -> None:
    with pytest.raises(ValueError, match=match):
        description_to_hash(make_description(**overrides))


def test_description_to_hash_rejects_a_part_described_twice() -> None:
    parts = [PartDescription("pants", 1.0, "blue"), PartDescription("pants", 0.5, "red")]
    with pytest.raises(ValueError, match="twice"):
        description_to_hash(make_description(parts=parts))


@pytest.mark.parametrize("thumbnail", [None, b"", b"\x00\xff" * 100])
def test_hash_round_trip_rebuilds_the_description(thumbnail: bytes | None) -> None:
    desc = make_description(thumbnail=thumbnail, final=True)
    stored = {k.encode(): v if isinstance(v, bytes) else v.encode() for k, v in
              description_to_hash(desc).items()}  # fmt: skip
    track = parse_track(stored)
    assert track["track_id"] == 7 and track["final"] is True
    assert track["vector"].shape == (embedding.DIM,)
    np.testing.assert_allclose(np.linalg.norm(track["vector"]), 1.0, rtol=1e-5)
    assert description_from_track(track) == desc


@pytest.mark.parametrize("fields", [{}, {b"foo": b"bar"}, {b"stream_id": b"x"}])
def test_parse_track_rejects_foreign_hashes(fields: dict[bytes, bytes]) -> None:
    with pytest.raises(ValueError, match="not a describeme track"):
        parse_track(fields)


class _DecodingClient:
    class connection_pool:  # noqa: N801 - mimics redis.Redis.connection_pool
        connection_kwargs = {"decode_responses": True}

    def register_script(self, script: str) -> None:
        return None


@pytest.mark.parametrize("prefix", ["", "has space:", None])
def test_track_store_rejects_bad_prefix(prefix: object) -> None:
    with pytest.raises(ValueError, match="prefix"):
        TrackStore(object(), prefix=prefix)


def test_track_store_rejects_a_decoding_client() -> None:
    with pytest.raises(ValueError, match="decode_responses=False"):
        TrackStore(_DecodingClient())


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("redis://:secret@127.0.0.1:6379/0", "redis://:***@127.0.0.1:6379/0"),
        ("redis://user:pw@host:1/2", "redis://user:***@host:1/2"),
        ("redis://127.0.0.1:6379/0", "redis://127.0.0.1:6379/0"),
    ],
)
def test_redact_url_hides_the_password(url: str, expected: str) -> None:
    assert redact_url(url) == expected


def test_shares_are_stored_per_group_and_kind_and_parse_back() -> None:
    from describeme.operators.store_schema import format_shares, parse_shares, shares_field

    fields = description_to_hash(make_description())
    name = shares_field("upper-clothes", "color")
    assert name == "upper_clothes_color_shares" and fields[name] == "red=0.8 pink=0.15"
    assert parse_shares(fields[name].encode()) == {"red": 0.8, "pink": 0.15}
    assert shares_field("shoes", "color") not in fields  # no shares given for the shoes
    assert format_shares({"dark": 1 / 3}) == "dark=0.333" and parse_shares(None) == {}
