"""One-line English descriptions of a track from its voted part characteristics.

``describe_sentence`` is a pure function of a list of :class:`PartDescription`: it orders the
parts head to feet, words each one from :mod:`describeme.labels` ("short dark hair",
"red short-sleeved lettered top", "blue long pants", "dark shoes") and joins them after
"person with". We have no gender attribute, so the subject is always "person".
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

from describeme.labels import (
    COLOR_ID,
    DESCRIPTION_GROUPS,
    HAIR,
    PART_NOUNS,
    PATTERN_ID,
    SIZE_ID,
    SIZE_WORDS,
)
from describeme.messages import PartDescription

# Head to feet, then what is carried; "others" is too vague to say.
SENTENCE_ORDER: tuple[str, ...] = (
    "hair", "hat", "glasses", "face-mask", "scarf-tie", "coat", "upper-clothes", "glove",
    "pants", "skirt", "socks", "shoes", "bag",
)  # fmt: skip
# Colour words read better than the class names for two classes ("a medium top").
COLOR_WORDS: Mapping[str, str] = MappingProxyType(
    {"medium": "grey", "multicolor": "multicolored"}
)
# "solid" is the unmarked case and is not said.
PATTERN_WORDS: Mapping[str, str] = MappingProxyType(
    {"geometrical": "geometric-patterned", "fancy": "fancy-patterned", "letters": "lettered"}
)


def _size_word(group: str, size: str | None) -> str | None:
    if size is None:
        return None
    part = DESCRIPTION_GROUPS[group][0]
    return SIZE_WORDS.get(part, {}).get(SIZE_ID[size])


def _phrase(part: PartDescription, min_confidence: float) -> str:
    """Words for one part, e.g. ``"red short-sleeved lettered top"``."""
    color = part.color if part.color_confidence >= min_confidence else None
    size = part.size if part.size_confidence >= min_confidence else None
    pattern = part.pattern if part.pattern_confidence >= min_confidence else None
    color_word = COLOR_WORDS.get(color, color) if color not in (None, "none") else None
    size_word = _size_word(part.part, size)
    pattern_word = PATTERN_WORDS.get(pattern) if pattern is not None else None
    noun = PART_NOUNS[DESCRIPTION_GROUPS[part.part][0]]
    if DESCRIPTION_GROUPS[part.part][0] == HAIR:
        if size_word == "bald":
            return "bald head"
        words = [size_word, color_word, noun]  # "short dark hair"
    else:
        words = [color_word, size_word, pattern_word, noun]  # "blue long pants"
    return " ".join(w for w in words if w)


def _check_part(part: PartDescription) -> None:
    if not isinstance(part, PartDescription):
        raise TypeError(f"describe_sentence expects PartDescription, got {type(part).__name__}")
    if part.part not in DESCRIPTION_GROUPS:
        raise ValueError(
            f"unknown part group {part.part!r}; expected one of {list(DESCRIPTION_GROUPS)}"
        )
    for kind, value, table in (
        ("color", part.color, COLOR_ID),
        ("size", part.size, SIZE_ID),
        ("pattern", part.pattern, PATTERN_ID),
    ):
        if value is not None and value not in table:
            raise ValueError(
                f"unknown {kind} {value!r} for {part.part}; expected one of {list(table)}"
            )


def describe_sentence(
    parts: Sequence[PartDescription], *, min_presence: float = 0.5, min_confidence: float = 0.0
) -> str:
    """Builds the one-line description of a person.

    Args:
        parts: voted descriptions per part group (any order; groups from
            ``labels.DESCRIPTION_GROUPS``).
        min_presence: parts present in a smaller share of observations are left out.
        min_confidence: characteristics with a smaller vote share are not said.

    Returns:
        For example ``"person with short dark hair, red short-sleeved top, blue long pants,
        dark shoes"``; just ``"person"`` when no part qualifies.

    Raises:
        ValueError: for an unknown group or characteristic name, or a group given twice.
    """
    by_group: dict[str, PartDescription] = {}
    for part in parts:
        _check_part(part)
        if part.part in by_group:
            raise ValueError(f"part group {part.part!r} is described twice")
        by_group[part.part] = part
    phrases = [
        _phrase(by_group[group], min_confidence)
        for group in SENTENCE_ORDER
        if group in by_group and by_group[group].presence >= min_presence
    ]
    return "person with " + ", ".join(phrases) if phrases else "person"
