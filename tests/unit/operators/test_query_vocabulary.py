"""Search vocabulary: every word group maps onto labels, and typos within one edit."""

from __future__ import annotations

import pytest

from describeme.labels import COLORS, DESCRIPTION_GROUPS, PART_SYNONYMS, PATTERNS, SIZES
from describeme.operators import vocabulary as vocab
from describeme.operators.query import parse_query

NOW = 1_800_000_000.0


def only(text: str) -> tuple:
    """(part, color, size, pattern, negated) of the single constraint ``text`` parses to."""
    constraints = parse_query(text, now=NOW).constraints
    assert len(constraints) == 1, [c.describe() for c in constraints]
    c = constraints[0]
    return (c.part, c.color, c.size, c.pattern, c.negated)


UP = "upper-clothes"


@pytest.mark.parametrize(
    ("word", "part", "size", "color"),
    [
        ("t-shirt", UP, "short", None), ("tee", UP, "short", None), ("t shirt", UP, "short", None),
        ("shirt", UP, "long", None), ("sweater", UP, "long", None), ("hoodie", UP, "long", None),
        ("top", UP, None, None), ("blouse", UP, None, None), ("dress", UP, None, None),
        ("jacket", "coat", None, None), ("coat", "coat", None, None), ("parka", "coat", None, None),
        ("jeans", "pants", "long", "blue"), ("trousers", "pants", "long", None),
        ("shorts", "pants", "short", None), ("skirt", "skirt", None, None),
        ("miniskirt", "skirt", "short", None), ("maxi", "skirt", "long", None),
        ("maxi skirt", "skirt", "long", None), ("boots", "shoes", "long", None),
        ("sneakers", "shoes", None, None), ("shoes", "shoes", None, None),
        ("cap", "hat", None, None), ("beanie", "hat", None, None), ("hat", "hat", None, None),
        ("sunglasses", "glasses", None, "dark"), ("glasses", "glasses", None, None),
        ("scarf", "scarf-tie", None, None), ("tie", "scarf-tie", None, None),
        ("gloves", "glove", None, None), ("mask", "face-mask", None, None),
        ("face mask", "face-mask", None, None), ("backpack", "bag", None, None),
        ("bag", "bag", None, None), ("handbag", "bag", None, None),
        ("bald", "hair", "sparse", None), ("long hair", "hair", "long", None),
        ("short hair", "hair", "short", None), ("beard", "hair", None, None),
        ("socks", "socks", None, None), ("umbrella", "others", None, None),
    ],
)  # fmt: skip
def test_garment_words(word: str, part: str, size: str | None, color: str | None) -> None:
    assert only(word) == (part, color, size, None, False)


@pytest.mark.parametrize(
    ("word", "color"),
    [
        ("black", "dark"), ("charcoal", "dark"), ("dark", "dark"), ("grey", "medium"),
        ("gray", "medium"), ("silver", "medium"), ("white", "light"), ("cream", "light"),
        ("light", "light"), ("beige", "brown"), ("tan", "brown"), ("khaki", "brown"),
        ("brown", "brown"), ("maroon", "red"), ("crimson", "red"), ("burgundy", "red"),
        ("red", "red"), ("pink", "pink"), ("magenta", "pink"), ("yellow", "yellow"),
        ("gold", "yellow"), ("orange", "orange"), ("green", "green"), ("olive", "green"),
        ("blue", "blue"), ("navy", "blue"), ("teal", "blue"), ("purple", "purple"),
        ("violet", "purple"), ("multicolored", "multicolor"), ("colorful", "multicolor"),
    ],
)  # fmt: skip
def test_colour_words(word: str, color: str) -> None:
    assert only(f"{word} coat") == ("coat", color, None, None, False)


@pytest.mark.parametrize(
    ("word", "pattern"),
    [
        ("striped", "geometrical"), ("checked", "geometrical"), ("plaid", "geometrical"),
        ("dotted", "geometrical"), ("polka dot", "geometrical"), ("floral", "fancy"),
        ("camo", "fancy"), ("printed", "fancy"), ("logo", "letters"), ("text", "letters"),
        ("lettering", "letters"), ("plain", "solid"), ("solid", "solid"),
    ],
)  # fmt: skip
def test_pattern_words(word: str, pattern: str) -> None:
    assert only(f"{word} top") == (UP, None, None, pattern, False)


@pytest.mark.parametrize(
    ("text", "size"),
    [("long-sleeved top", "long"), ("short sleeved top", "short"), ("sleeveless top", "short"),
     ("long coat", "long"), ("short coat", "short")],
)  # fmt: skip
def test_size_words(text: str, size: str) -> None:
    assert only(text)[2] == size


@pytest.mark.parametrize(
    ("typed", "meant", "expected"),
    [
        ("shrit", "shirt", (UP, None, "long", None, False)),  # swap
        ("shirtt", "shirt", (UP, None, "long", None, False)),  # extra letter
        ("jaket", "jacket", ("coat", None, None, None, False)),  # dropped letter
        ("jecket", "jacket", ("coat", None, None, None, False)),  # wrong letter
        ("hta", "hat", ("hat", None, None, None, False)),  # 3 letters: swap only
        ("bakcpack", "backpack", ("bag", None, None, None, False)),
        ("sunglases", "sunglasses", ("glasses", "dark", None, None, False)),
        ("gren hat", "green", ("hat", "green", None, None, False)),  # omission beats grey
        ("witout hat", "without", ("hat", None, None, None, True)),
    ],
)  # fmt: skip
def test_typos_within_one_edit_are_corrected(typed: str, meant: str, expected: tuple) -> None:
    parsed = parse_query(typed, now=NOW)
    assert only(typed) == expected
    assert meant in parsed.corrections.values()


@pytest.mark.parametrize(
    "word",
    [
        "shrt",  # shirt or short: ambiguous
        "jaaacket",  # two edits
        "hatt x",  # hatt is fine but x is not a word
        "zzzz",
    ],
)
def test_no_risky_corrections(word: str) -> None:
    first = word.split()[0]
    if first == "hatt":
        assert vocab.correct_typo("hatt") == "hat"
        return
    assert vocab.correct_typo(first) is None


@pytest.mark.parametrize("word", ["hit", "rad", "cat", "bat"])
def test_three_letter_words_are_not_corrected_by_substitution(word: str) -> None:
    assert vocab.correct_typo(word) is None


def test_tables_name_only_existing_labels() -> None:
    for garment in vocab.GARMENTS.values():
        assert garment.part in DESCRIPTION_GROUPS
        assert garment.size in (None, *SIZES[1:])
        assert garment.color in (None, *COLORS[1:])
        assert garment.pattern in (None, *PATTERNS[1:])
    assert set(vocab.COLOR_WORDS.values()) <= set(COLORS[1:])
    assert {size for size, _ in vocab.SIZE_WORDS.values()} <= set(SIZES[1:])
    assert set(vocab.PATTERN_WORDS.values()) <= set(PATTERNS[1:])


def test_every_label_synonym_is_understood() -> None:
    for synonyms in PART_SYNONYMS.values():
        for word in synonyms:
            assert vocab.read_word(word).role == "part", word


def test_every_colour_class_has_a_word() -> None:
    assert set(vocab.COLOR_WORDS.values()) == set(COLORS[1:])
