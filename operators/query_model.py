"""The parsed form of a search query: constraints, filters, and the parse result.

Plain data shared by the parser (:mod:`describeme.operators.query`), the binder
(:mod:`describeme.operators.query_binding`) and retrieval.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from dataclasses import dataclass, replace

from describeme.errors import DescribemeError
from describeme.labels import (
    CHARACTERISTICS,
    DESCRIPTION_GROUPS,
    PART_HAS_PATTERN,
    PART_HAS_SIZE,
    characteristic_id,
)
from describeme.operators.vocabulary import WordReading

MAX_QUERY_CHARS = 300  # a description of one person fits easily; bounds hostile input
MAX_QUERY_WORDS = 60
KINDS = tuple(CHARACTERISTICS)  # ("size", "pattern", "color")
# "&", "/" and "+" join like "and" ("black/white shirt"); these end a clause like a comma.


class QueryError(DescribemeError, ValueError):
    """A query that cannot be searched; the message says what to change."""


@dataclass(frozen=True)
class Constraint:
    """One condition on a part group: its characteristics must (or, negated, must not) match.

    Attributes:
        part: a ``labels.DESCRIPTION_GROUPS`` key ("upper-clothes").
        color, size, pattern: label names from ``labels.COLORS/SIZES/PATTERNS`` or None
            (None: any). A constraint with all three None asks for the part's presence.
        negated: True: the person must not have the part with these characteristics.
        weight: importance in ranking (0.5 for guesses such as "a man in red" -> top).
        words: the query words it came from (for the explanation).
    """

    part: str
    color: str | None = None
    size: str | None = None
    pattern: str | None = None
    negated: bool = False
    weight: float = 1.0
    words: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.part not in DESCRIPTION_GROUPS:
            raise ValueError(
                f"unknown part {self.part!r}; expected one of {list(DESCRIPTION_GROUPS)}"
            )
        for kind in KINDS:
            value = getattr(self, kind)
            if value is not None and (value == "none" or characteristic_id(kind, value) < 0):
                raise ValueError(f"{kind} 'none' is not a searchable value")
        if not self.weight > 0:
            raise ValueError(f"constraint weight must be > 0, got {self.weight}")

    @property
    def attributes(self) -> dict[str, str]:
        """The characteristics this constraint fixes, e.g. ``{"color": "red"}``."""
        return {k: v for k in ("color", "size", "pattern") if (v := getattr(self, k)) is not None}

    def to_dict(self) -> dict[str, object]:
        """The JSON shape other tools rely on (``part color size pattern negated`` + weight)."""
        return {
            "part": self.part,
            "color": self.color,
            "size": self.size,
            "pattern": self.pattern,
            "negated": self.negated,
            "weight": self.weight,
        }

    def describe(self) -> str:
        """``"NOT hat"``, ``"upper-clothes color=red size=long"``."""
        attrs = " ".join(f"{k}={v}" for k, v in self.attributes.items())
        text = f"{self.part} {attrs}".strip()
        return f"NOT {text}" if self.negated else text


@dataclass(frozen=True)
class Filters:
    """Where and when: stream ids (any of) and a time window on wall-clock seen times.

    Attributes:
        cameras: stream ids; empty means every camera.
        since: Unix seconds; tracks last seen before it are excluded.
        until: Unix seconds; tracks first seen after it are excluded.
    """

    cameras: tuple[str, ...] = ()
    since: float | None = None
    until: float | None = None

    def __post_init__(self) -> None:
        if self.since is not None and self.until is not None and self.since > self.until:
            raise QueryError(
                f"time window is empty: since {self.since} is after until {self.until}"
            )

    def merged(self, other: Filters) -> Filters:
        """Both filters: cameras united, the later since and the earlier until."""
        since = max((t for t in (self.since, other.since) if t is not None), default=None)
        until = min((t for t in (self.until, other.until) if t is not None), default=None)
        cameras = tuple(dict.fromkeys(self.cameras + other.cameras))
        return Filters(cameras, since, until)

    @property
    def empty(self) -> bool:
        return not self.cameras and self.since is None and self.until is None

    def to_dict(self) -> dict[str, object]:
        return {"cameras": list(self.cameras), "since": self.since, "until": self.until}


@dataclass(frozen=True)
class ParsedQuery:
    """The result of :func:`parse_query`."""

    text: str
    constraints: tuple[Constraint, ...]
    filters: Filters
    readings: tuple[WordReading, ...]
    ignored_symbols: tuple[str, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def unknown_words(self) -> list[str]:
        return [r.word for r in self.readings if r.role == "unknown"]

    @property
    def corrections(self) -> dict[str, str]:
        return {r.word: r.read_as for r in self.readings if r.read_as}

    def explain(self) -> list[str]:
        """Human-readable lines: constraints with their words, typos, ignored and unknown."""
        lines = [f"understood: {c.describe()}  <- {' '.join(c.words)!r}" +
                 (f" (weight {c.weight:g})" if c.weight != 1.0 else "")
                 for c in self.constraints]  # fmt: skip
        if self.filters.cameras:
            lines.append(f"filter: camera {' or '.join(self.filters.cameras)}")
        for name in ("since", "until"):
            value = getattr(self.filters, name)
            if value is not None:
                stamp = dt.datetime.fromtimestamp(value).astimezone().isoformat(timespec="seconds")
                lines.append(f"filter: seen {name} {stamp}")
        lines += [f"typo: {w!r} read as {r!r}" for w, r in self.corrections.items()]
        lines += [f"note: {note}" for note in self.notes]
        people = sorted({r.word for r in self.readings if r.role == "person"})
        if people:
            lines.append(
                f"ignored person words (no gender/age attribute is stored): {', '.join(people)}"
            )
        if self.unknown_words:
            lines.append(f"unknown words (not used): {', '.join(self.unknown_words)}")
        if self.ignored_symbols:
            lines.append(f"ignored characters: {' '.join(self.ignored_symbols)}")
        return lines

    def to_dict(self) -> dict[str, object]:
        return {
            "query": self.text, "constraints": [c.to_dict() for c in self.constraints],
            "filters": self.filters.to_dict(), "unknown_words": self.unknown_words,
            "corrections": self.corrections, "ignored_symbols": list(self.ignored_symbols),
            "explanation": self.explain(),
            "words": [vars(reading) for reading in self.readings],
        }  # fmt: skip


# ---- tokens and typos ---------------------------------------------------------------------
@dataclass
class Token:
    word: str  # lower case, phrase-merged
    raw: str  # as typed (case kept), for camera ids
    chunk: int = -1  # index of the typed word it came from (hyphen compounds split)
    reading: WordReading | None = None


def dedupe(constraints: Sequence[Constraint]) -> list[Constraint]:
    """Drops repeats and merges positive constraints on one part that do not conflict."""
    out: list[Constraint] = []
    for new in constraints:
        for i, old in enumerate(out):
            if old.part != new.part or old.negated != new.negated:
                continue
            conflict = any(
                getattr(old, k) not in (None, getattr(new, k)) and getattr(new, k) is not None
                for k in KINDS
            )
            if new.negated and old.attributes != new.attributes:
                continue
            if not conflict:
                merged = {k: getattr(old, k) or getattr(new, k) for k in KINDS}
                out[i] = replace(
                    old,
                    **merged,
                    weight=max(old.weight, new.weight),
                    words=tuple(dict.fromkeys(old.words + new.words)),
                )
                break
        else:
            out.append(new)
    return out


def part_can_carry(part: str, kind: str) -> bool:
    """Whether CCIHP annotates ``kind`` (size/pattern/color) on the part group ``part``."""
    first = DESCRIPTION_GROUPS[part][0]
    return {"size": first in PART_HAS_SIZE, "pattern": first in PART_HAS_PATTERN}.get(kind, True)
