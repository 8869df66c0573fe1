"""Query parser: binding, negation, person words, unknown words, filters, hostile input."""

from __future__ import annotations

import datetime as dt
import json

import pytest

from describeme.errors import DescribemeError
from describeme.operators.query import (
    MAX_QUERY_CHARS,
    Constraint,
    Filters,
    QueryError,
    parse_query,
    parse_time_bound,
)

NOW = 1_800_000_000.0  # fixed "now" so relative times are deterministic


def keys(text: str) -> set[tuple]:
    """The constraint set of ``text`` as (part, color, size, pattern, negated) tuples."""
    parsed = parse_query(text, now=NOW)
    return {(c.part, c.color, c.size, c.pattern, c.negated) for c in parsed.constraints}


UP, PANTS = "upper-clothes", "pants"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("red shirt and blue jeans", {(UP, "red", "long", None, False),
                                      (PANTS, "blue", "long", None, False)}),
        ("blue shirt and red jeans", {(UP, "blue", "long", None, False),
                                      (PANTS, "red", "long", None, False)}),
        ("blue jeans, red shirt", {(UP, "red", "long", None, False),
                                   (PANTS, "blue", "long", None, False)}),
        ("the jacket is green and the pants are black", {("coat", "green", None, None, False),
                                                         (PANTS, "dark", "long", None, False)}),
        ("a coat in red", {("coat", "red", None, None, False)}),
        ("jacket with long sleeves", {("coat", None, "long", None, False)}),
        ("shirt with stripes", {(UP, None, "long", "geometrical", False)}),
        ("red and white striped t-shirt", {(UP, "multicolor", "short", "geometrical", False)}),
        ("black-and-white scarf", {("scarf-tie", "multicolor", None, None, False)}),
        ("dark blue jeans", {(PANTS, "blue", "long", None, False)}),
        ("navy blue coat", {("coat", "blue", None, None, False)}),
        ("dark coat", {("coat", "dark", None, None, False)}),
        ("blond man in a black jacket", {("hair", "yellow", None, None, False),
                                         ("coat", "dark", None, None, False)}),
        ("long blond hair", {("hair", "yellow", "long", None, False)}),
        ("green hat with a red shirt", {("hat", "green", None, None, False),
                                        (UP, "red", "long", None, False)}),
    ],
)  # fmt: skip
def test_adjectives_bind_to_their_own_garment(text: str, expected: set[tuple]) -> None:
    assert keys(text) == expected


def test_binding_is_not_a_bag_of_words() -> None:
    assert keys("red shirt and blue jeans") != keys("blue shirt and red jeans")


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("no hat", {("hat", None, None, None, True)}),
        ("without glasses", {("glasses", None, None, None, True)}),
        ("man without a hat or glasses", {("hat", None, None, None, True),
                                          ("glasses", None, None, None, True)}),
        ("without a hat and glasses", {("hat", None, None, None, True),
                                       ("glasses", None, None, None, True)}),
        ("neither hat nor gloves", {("hat", None, None, None, True),
                                    ("glove", None, None, None, True)}),
        ("no hat and blue jeans", {("hat", None, None, None, True),
                                   (PANTS, "blue", "long", None, False)}),
        ("no hat, red shirt", {("hat", None, None, None, True),
                               (UP, "red", "long", None, False)}),
        ("not wearing a mask", {("face-mask", None, None, None, True)}),
        ("he isn't wearing a coat", {("coat", None, None, None, True)}),
        ("no scarf wearing a green coat", {("scarf-tie", None, None, None, True),
                                           ("coat", "green", None, None, False)}),
        ("no red shirt", {(UP, "red", None, None, True)}),
        ("no t-shirt", {(UP, None, "short", None, True)}),
        ("no sunglasses", {("glasses", "dark", None, None, True)}),
        ("shirt that is not red", {(UP, None, "long", None, False),
                                   (UP, "red", None, None, True)}),
        ("t-shirt without a logo", {(UP, None, "short", None, False),
                                    (UP, None, None, "letters", True)}),
        ("shirt with no sleeves", {(UP, None, "short", None, False)}),
        ("blue jeans -hat", {(PANTS, "blue", "long", None, False),
                             ("hat", None, None, None, True)}),
        ("red shirt - blue jeans", {(UP, "red", "long", None, False),
                                    (PANTS, "blue", "long", None, False)}),
    ],
)  # fmt: skip
def test_negation_scope(text: str, expected: set[tuple]) -> None:
    assert keys(text) == expected


@pytest.mark.parametrize("person", ["man", "woman", "person", "kid", "girl", "guy", "lady"])
def test_person_words_are_accepted_and_ignored(person: str) -> None:
    parsed = parse_query(f"{person} in a red shirt", now=NOW)
    assert keys(f"{person} in a red shirt") == {(UP, "red", "long", None, False)}
    assert parsed.unknown_words == []
    assert any(person in line and "person words" in line for line in parsed.explain())


def test_dangling_colour_reads_as_the_top_at_half_weight() -> None:
    parsed = parse_query("person in red", now=NOW)
    assert [(c.part, c.color, c.weight) for c in parsed.constraints] == [(UP, "red", 0.5)]
    assert any("read as the top" in line for line in parsed.explain())


def test_unknown_words_are_reported_not_dropped() -> None:
    parsed = parse_query("tall man with headphones and a red shirt", now=NOW)
    assert parsed.unknown_words == ["tall", "headphones"]
    assert keys("tall man with headphones and a red shirt") == {(UP, "red", "long", None, False)}
    assert "unknown words (not used): tall, headphones" in parsed.explain()
    assert parsed.to_dict()["unknown_words"] == ["tall", "headphones"]


@pytest.mark.parametrize("text", ["zebra giraffe", "the man", "a person who is", "xyzzy"])
def test_nothing_understood_is_a_clear_error(text: str) -> None:
    with pytest.raises(QueryError, match="nothing to search for") as info:
        parse_query(text, now=NOW)
    assert isinstance(info.value, DescribemeError) and isinstance(info.value, ValueError)
    assert "red shirt and blue jeans" in str(info.value)  # says what a query looks like


def test_unknown_words_are_named_in_the_error() -> None:
    with pytest.raises(QueryError, match="unknown words: zebra, giraffe"):
        parse_query("zebra giraffe", now=NOW)


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("", "empty"),
        ("   \t ", "empty"),
        ("red shirt " * 40, f"at most {MAX_QUERY_CHARS}"),
        ("x" * 100_000, f"at most {MAX_QUERY_CHARS}"),
        ("red\x00shirt", "control characters"),
        ("red shirt\x1b[31m", "control characters"),
        ("hat " * 70, "at most 60"),
    ],
)
def test_bad_text_is_rejected(text: str, match: str) -> None:
    with pytest.raises(QueryError, match=match):
        parse_query(text, now=NOW)


def test_non_text_is_rejected() -> None:
    with pytest.raises(QueryError, match="must be text"):
        parse_query(123)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "text",
    [
        'red shirt" | @pants:{*}',
        "red shirt @upper_clothes_color:{blue}",
        "red shirt {blue} | (hat) *",
        "red shirt; FT.DROPINDEX idx",
        "red shirt $param %fuzzy% ~opt",
        'red shirt \\" \\\\',
        "red shirt `rm -rf` [0 10]",
    ],
)
def test_query_syntax_in_text_is_inert(text: str) -> None:
    """Operators become ignored symbols or plain words; constraints hold label names only."""
    parsed = parse_query(text, now=NOW)
    assert (UP, "red", "long", None, False) in keys(text)
    for constraint in parsed.constraints:
        for value in (constraint.part, *constraint.attributes.values()):
            assert value.replace("-", "").isalpha()
    symbols = set(parsed.ignored_symbols)
    assert symbols <= set('"|@:{}*()$%~\\`[]')
    if symbols:
        assert any(line.startswith("ignored characters:") for line in parsed.explain())


def test_unicode_text_parses() -> None:
    parsed = parse_query("femme 👗 with a red shirt — très chic", now=NOW)
    assert keys("femme 👗 with a red shirt — très chic") == {(UP, "red", "long", None, False)}
    assert {"femme", "très", "chic"} <= set(parsed.unknown_words)


def test_case_is_ignored() -> None:
    assert keys("RED SHIRT, Blue Jeans!") == keys("red shirt and blue jeans")


def test_constraint_json_shape_is_the_contract() -> None:
    parsed = parse_query("red striped t-shirt, no hat", now=NOW)
    dumped = json.loads(json.dumps([c.to_dict() for c in parsed.constraints]))
    assert dumped == [
        {"part": UP, "color": "red", "size": "short", "pattern": "geometrical",
         "negated": False, "weight": 1.0},
        {"part": "hat", "color": None, "size": None, "pattern": None, "negated": True,
         "weight": 1.0},
    ]  # fmt: skip


def test_explanation_says_how_each_constraint_was_read() -> None:
    lines = parse_query("red shrit and bleu jeans", now=NOW).explain()
    assert "understood: upper-clothes color=red size=long  <- 'red shrit'" in lines
    assert "typo: 'shrit' read as 'shirt'" in lines
    assert "typo: 'bleu' read as 'blue'" in lines


def test_duplicates_merge_and_conflicts_stay_apart() -> None:
    assert keys("red shirt, red shirt") == {(UP, "red", "long", None, False)}
    assert keys("striped shirt and a red top") == {(UP, "red", "long", "geometrical", False)}
    assert len(parse_query("red shirt and a blue t-shirt", now=NOW).constraints) == 2


def test_size_word_that_a_part_cannot_carry_is_noted() -> None:
    parsed = parse_query("big sunglasses", now=NOW)
    assert keys("big sunglasses") == {("glasses", "dark", None, None, False)}
    assert any("'big' does not describe glasses" in line for line in parsed.explain())


@pytest.mark.parametrize(
    ("text", "cameras", "since", "until"),
    [
        ("red hat on camera lobby", ("lobby",), None, None),
        ("camera Door-2 red hat", ("Door-2",), None, None),
        ("cam front_door or camera back red hat", ("front_door", "back"), None, None),
        ("red hat in the last 10 minutes", (), NOW - 600, None),
        ("red hat in the past hour", (), NOW - 3600, None),
    ],
)
def test_filters_in_text(text: str, cameras: tuple, since: float | None,
                         until: float | None) -> None:  # fmt: skip
    parsed = parse_query(text, now=NOW)
    assert parsed.filters == Filters(cameras, since, until)
    assert keys(text) == {("hat", "red", None, None, False)}


def test_clock_filters_are_today_local_time() -> None:
    day = dt.datetime.fromtimestamp(NOW).astimezone()
    at_1430 = day.replace(hour=14, minute=30, second=0, microsecond=0).timestamp()
    at_0900 = day.replace(hour=9, minute=0, second=0, microsecond=0).timestamp()
    parsed = parse_query("red hat since 14:30", now=NOW)
    assert parsed.filters.since == at_1430
    assert parse_query("red hat before 9am", now=NOW).filters.until == at_0900
    midnight = day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
    assert parse_query("red hat today", now=NOW).filters.since == midnight


def test_filters_alone_are_searchable() -> None:
    parsed = parse_query("camera lobby", now=NOW)
    assert parsed.constraints == () and parsed.filters.cameras == ("lobby",)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("now", NOW),
        ("1763800000", 1763800000.0),
        ("10m", NOW - 600),
        ("2h", NOW - 7200),
        ("1d", NOW - 86400),
        ("30s", NOW - 30),
        ("2026-11-22T14:30:00+00:00", dt.datetime(2026, 11, 22, 14, 30, tzinfo=dt.UTC).timestamp()),
    ],
)
def test_parse_time_bound(text: str, expected: float) -> None:
    assert parse_time_bound(text, now=NOW) == pytest.approx(expected)


@pytest.mark.parametrize("text", ["yesterday-ish", "25:00", "13pm", "", "10 parsecs"])
def test_bad_time_bound_is_a_clear_error(text: str) -> None:
    with pytest.raises(QueryError, match="ISO 8601"):
        parse_time_bound(text, now=NOW)


def test_empty_time_window_is_rejected() -> None:
    with pytest.raises(QueryError, match="time window is empty"):
        Filters(since=NOW, until=NOW - 1)


def test_filters_merge_keeps_the_narrower_window() -> None:
    merged = Filters(("a",), NOW - 100, None).merged(Filters(("b",), NOW - 50, NOW))
    assert merged == Filters(("a", "b"), NOW - 50, NOW)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"part": "wings"}, "unknown part"),
        ({"part": "hat", "color": "teal"}, "unknown color"),
        ({"part": "hat", "size": "none"}, "not a searchable value"),
        ({"part": "hat", "weight": 0.0}, "weight must be > 0"),
    ],
)
def test_constraint_validates(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        Constraint(**kwargs)


def test_every_word_has_a_reading() -> None:
    words = parse_query("a man in a red shrit, no hat zebra", now=NOW).to_dict()["words"]
    assert [(w["word"], w["role"]) for w in words] == [
        ("a", "filler"), ("man", "person"), ("in", "filler"), ("a", "filler"), ("red", "color"),
        ("shrit", "part"), (",", "conjunction"), ("no", "negation"), ("hat", "part"),
        ("zebra", "unknown"),
    ]  # fmt: skip
    assert words[5]["read_as"] == "shirt"
