"""Query understanding: person-search text -> constraints on CCIHP parts, plus filters.

``parse_query("woman in a red striped top and blue jeans, no hat")`` gives::

    upper-clothes color=red pattern=geometrical      <- "red striped top"
    pants color=blue size=long                        <- "blue jeans"
    NOT hat                                           <- "no hat"

How words are bound (the rules the tests and ``benchmarks/search_queries.yaml`` pin down):

- Adjectives (colour, size, pattern) wait for the next garment noun and bind to it, so "red
  shirt and blue jeans" never gives a blue shirt. After a copula or "with" ("the jacket is
  red", "a jacket with long sleeves", "a coat in green") they bind back to the garment named
  just before when no garment follows. Two colour classes on one garment make it
  ``multicolor``; a shade word before a hue ("dark blue") is a shade of that hue.
- Adjectives with no garment: "blond", "bald" name hair; others ("a man in red") are read as
  the top (upper-clothes) with half weight, and the explanation says so.
- Negation ("no", "not", "without", "isn't wearing", ...) covers the next garment; ", or nor"
  carry it to the following garments, and "and" does too when a bare garment follows
  ("without a hat and glasses"), not when adjectives do ("no hat and blue jeans").
  "a shirt that is not red" keeps the shirt and negates red on it.
- Person words (man, woman, kid, ...) are accepted and ignored: no gender or age attribute
  is stored. Unknown words are reported, never silently dropped; a word one edit (insert,
  delete, substitute, swap) from exactly one known meaning is corrected and reported.
- "camera X" / "cam X" filter by stream id; "in the last 10 minutes", "since 14:30",
  "before 9:00", "today" filter by the time a track was seen.

User text never reaches RediSearch syntax: constraints hold label names only and retrieval
escapes every value; other characters are listed as ignored in the explanation.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace

from describeme.errors import DescribemeError
from describeme.labels import (
    CHARACTERISTICS,
    DESCRIPTION_GROUPS,
    PART_HAS_PATTERN,
    PART_HAS_SIZE,
    characteristic_id,
)
from describeme.operators import vocabulary as vocab
from describeme.operators.vocabulary import WordReading, correct_typo

__all__ = [
    "Constraint", "Filters", "WordReading", "ParsedQuery", "QueryError", "parse_query",
    "parse_time_bound", "tokenize_query", "correct_typo", "MAX_QUERY_CHARS",
]  # fmt: skip

MAX_QUERY_CHARS = 300  # a description of one person fits easily; bounds hostile input
MAX_QUERY_WORDS = 60
KINDS = tuple(CHARACTERISTICS)  # ("size", "pattern", "color")
# "&", "/" and "+" join like "and" ("black/white shirt"); these end a clause like a comma.
_JOINERS = {"&": "and", "/": "and", "+": "and", ",": ",", ";": ";", ".": ";", "!": ";", "?": ";"}
_TOKEN = re.compile(r"\d{1,2}:\d{2}(?:am|pm)?|\d{1,2}(?:am|pm)|\w+(?:'\w+)*(?:-\w+(?:'\w+)*)*|\S")


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
class _Token:
    word: str  # lower case, phrase-merged
    raw: str  # as typed (case kept), for camera ids
    chunk: int = -1  # index of the typed word it came from (hyphen compounds split)
    reading: WordReading | None = None


def check_query_text(text: object) -> str:
    """Returns ``text`` stripped, or raises QueryError for non-text, empty, long or control."""
    if not isinstance(text, str):
        raise QueryError(f"query must be text, got {type(text).__name__}")
    if len(text) > MAX_QUERY_CHARS:
        raise QueryError(
            f"query is {len(text)} characters long; at most {MAX_QUERY_CHARS} are "
            "accepted (describe one person in a sentence)"
        )
    bad = sorted({f"U+{ord(c):04X}" for c in text if ord(c) < 32 and c not in "\t\n"
                  or 127 <= ord(c) < 160})  # fmt: skip
    if bad:
        raise QueryError(f"query holds control characters ({', '.join(bad)}); remove them")
    if not text.strip():
        raise QueryError("query is empty; describe the person, e.g. 'red shirt and blue jeans'")
    return text.strip()


def tokenize_query(text: str) -> tuple[list[_Token], list[str]]:
    """Words (phrases merged, hyphen compounds split when unknown) and ignored symbols."""
    tokens: list[_Token] = []
    symbols: list[str] = []
    matches = list(_TOKEN.finditer(text.replace("\u2019", "'")))
    for chunk, match in enumerate(matches):
        raw, word = match.group(), match.group().lower()
        if len(word) == 1 and not word.isalnum() and word != "_":
            glued = chunk + 1 < len(matches) and matches[chunk + 1].start() == match.end()
            if word in _JOINERS:
                tokens.append(_Token(_JOINERS[word], raw, chunk))
            elif word == "-":
                # "-hat" reads as "not hat"; a free-standing dash separates like a comma.
                tokens.append(_Token("not" if glued else ",", raw, chunk))
            elif word not in symbols:
                symbols.append(word)
            continue
        word = word.removesuffix("'s")
        parts = [word] if word in vocab.KNOWN_WORDS or "-" not in word else word.split("-")
        tokens += [_Token(part, raw, chunk) for part in parts if part]
    if len(tokens) > MAX_QUERY_WORDS:
        raise QueryError(f"query has {len(tokens)} words; at most {MAX_QUERY_WORDS}")
    return _merge_phrases(tokens), symbols


def _merge_phrases(tokens: list[_Token]) -> list[_Token]:
    out: list[_Token] = []
    i = 0
    while i < len(tokens):
        for n in range(min(vocab.MAX_PHRASE_WORDS, len(tokens) - i), 1, -1):
            key = tuple(t.word for t in tokens[i : i + n])
            if key in vocab.PHRASES:
                raw = " ".join(dict.fromkeys(t.raw for t in tokens[i : i + n]))
                out.append(_Token(vocab.PHRASES[key], raw, tokens[i].chunk))
                i += n
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


# ---- time --------------------------------------------------------------------------------
_DURATION = re.compile(r"(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d)", re.IGNORECASE)
_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400}


def _clock_today(text: str, now: float) -> float | None:
    match = re.fullmatch(r"(\d{1,2})(?::(\d{2}))?\s*(am|pm)?", text.strip().lower())
    if not match or (match.group(2) is None and match.group(3) is None):
        return None
    hour, minute = int(match.group(1)), int(match.group(2) or 0)
    if match.group(3):
        if not 1 <= hour <= 12:
            return None
        hour = hour % 12 + (12 if match.group(3) == "pm" else 0)
    if hour > 23 or minute > 59:
        return None
    day = dt.datetime.fromtimestamp(now).astimezone()
    return day.replace(hour=hour, minute=minute, second=0, microsecond=0).timestamp()


def parse_time_bound(text: str, now: float | None = None) -> float:
    """A time given on the command line -> Unix seconds.

    Accepts ``now``, Unix seconds (``1763800000``), ISO 8601 (``2026-11-22T14:30``, local
    time unless it names a zone), a clock time today (``14:30``, ``2pm``) and a duration ago
    (``10m``, ``2h``, ``1d``, ``30s``).

    Raises:
        QueryError: anything else, with the accepted forms.
    """
    now = time.time() if now is None else float(now)
    value = text.strip() if isinstance(text, str) else ""
    if value.lower() == "now":
        return now
    if re.fullmatch(r"\d{9,11}(\.\d+)?", value):
        return float(value)
    if (match := _DURATION.fullmatch(value)) is not None:
        return now - float(match.group(1)) * _SECONDS[match.group(2).lower()]
    if (clock := _clock_today(value, now)) is not None:
        return clock
    try:
        stamp = dt.datetime.fromisoformat(value)
    except ValueError:
        raise QueryError(
            f"cannot read time {text!r}; use ISO 8601 (2026-11-22T14:30), a clock time today "
            "(14:30, 2pm), a duration ago (10m, 2h, 1d) or Unix seconds"
        ) from None
    return (stamp if stamp.tzinfo else stamp.astimezone()).timestamp()


# ---- binding words into constraints ---------------------------------------------------------
_MODIFIER_ROLES = frozenset({"color", "shade", "size", "pattern", "sleeves"})
_LINK_WORDS = frozenset({"with", "that", "which"}) | vocab.COPULAS
_SCOPE_ENDING = frozenset({"with", "wearing", "wears", "has", "have", "carrying", "holding",
                           "in", "is", "are"})  # fmt: skip
_TOP = "upper-clothes"


@dataclass
class _Mod:
    kind: str  # color, size, pattern or sleeves
    value: str | None
    word: str
    parts: frozenset[str] | None = None  # parts a size word may describe (None: any)
    implied_part: str | None = None


@dataclass
class _Draft:
    part: str
    negated: bool
    weight: float
    words: list[str]
    values: dict[str, str] = field(default_factory=dict)


class _Binder:
    """One left-to-right pass that binds modifiers to garments (rules in the module doc)."""

    def __init__(self, tokens: list[_Token], now: float) -> None:
        self.tokens, self.now = tokens, now
        self.drafts: list[_Draft] = []
        self.pending: list[_Mod] = []
        self.anchor: _Draft | None = None  # garment that postpositive modifiers describe
        self.last: _Draft | None = None
        self.recent = False  # only link words since `last` was made
        self.negate = False
        self.negated_made = False  # a garment was negated in the current scope
        self.negation_word = ""
        self.notes: list[str] = []
        self.cameras: list[str] = []
        self.since: float | None = None
        self.until: float | None = None

    def run(self) -> tuple[list[Constraint], Filters, list[str]]:
        for token in self.tokens:
            token.reading = vocab.read_word(token.word)
        i = 0
        while i < len(self.tokens):
            i = self.step(i)
        self.flush()
        constraints = [Constraint(d.part, d.values.get("color"), d.values.get("size"),
                                  d.values.get("pattern"), d.negated, d.weight, tuple(d.words))
                       for d in self.drafts]  # fmt: skip
        filters = Filters(tuple(dict.fromkeys(self.cameras)), self.since, self.until)
        return dedupe(constraints), filters, list(dict.fromkeys(self.notes))

    def next_role(self, i: int) -> str:
        """Role of the next token after ``i`` that is not an article-like filler."""
        for token in self.tokens[i + 1 :]:
            reading = token.reading
            assert reading is not None
            if reading.role != "filler" or reading.word in _LINK_WORDS:
                return reading.role
        return "end"

    def step(self, i: int) -> int:
        token = self.tokens[i]
        reading = token.reading
        assert reading is not None
        word, role = reading.read_as or reading.word, reading.role
        if role in ("color", "shade"):
            self.on_color(i, word)
        elif role == "size":
            size, parts = vocab.SIZE_WORDS[word]
            self.pending.append(_Mod("size", size, reading.word, parts,
                                     vocab.IMPLIED_PART.get(word)))  # fmt: skip
        elif role == "pattern":
            self.pending.append(_Mod("pattern", vocab.PATTERN_WORDS[word], reading.word))
        elif role == "sleeves":
            self.pending.append(_Mod("sleeves", None, reading.word))
        elif role == "part":
            self.on_garment(word, reading.word)
        elif role == "negation":
            self.flush()
            self.anchor = self.last if self.recent else None
            self.negate, self.negated_made = True, False
            self.negation_word = reading.word
        elif role == "person":
            self.flush()
            self.anchor, self.recent = None, False
        elif role == "conjunction":
            self.on_conjunction(i, word)
        elif role == "filler" and (word in _LINK_WORDS or word in _SCOPE_ENDING):
            self.on_link(word)
        elif role == "camera":
            return self.on_camera(i)
        elif role == "time":
            return self.on_time(i, word)
        return i + 1

    def on_color(self, i: int, word: str) -> None:
        token = self.tokens[i]
        following = self.tokens[i + 1].reading if i + 1 < len(self.tokens) else None
        reading = token.reading
        assert reading is not None
        if word in vocab.SHADE_WORDS and following is not None and following.role == "color":
            shade_of = following.read_as or following.word
            token.reading = replace(reading, role="shade", meaning=f"shade of {shade_of}")
            self.pending.append(_Mod("shade", None, token.word))
            return
        value = vocab.shade_alone(word)
        if value is None:
            token.reading = replace(reading, role="filler", meaning="no colour class; ignored")
            return
        self.pending.append(_Mod("color", value, token.word, None, vocab.IMPLIED_PART.get(word)))

    def on_garment(self, word: str, typed: str) -> None:
        garment = vocab.GARMENTS[word]
        draft = _Draft(garment.part, self.negate, garment.weight, [])
        for kind in KINDS:
            value = getattr(garment, kind)
            if value is not None and (not self.negate or kind in garment.defining):
                draft.values[kind] = value
        if garment.note:
            self.notes.append(f"{word!r}: {garment.note}")
        mods, self.pending = self.pending, []
        draft.words = [m.word for m in mods] + [typed]
        if self.negate:
            draft.words.insert(0, self.negation_word)
        self.apply(draft, [m for m in mods if m.kind != "sleeves"])
        self.drafts.append(draft)
        self.last, self.anchor, self.recent = draft, None, True
        self.negated_made = self.negated_made or self.negate

    def on_link(self, word: str) -> None:
        if word == "with":
            self.flush()
        if self.negate and self.negated_made and word in _SCOPE_ENDING:
            self.negate = False
        if word in _LINK_WORDS:
            self.anchor = self.last if self.recent else self.anchor

    def on_conjunction(self, i: int, word: str) -> None:
        following = self.next_role(i)
        if self.pending:
            nouns = vocab.PATTERN_NOUNS | vocab.SLEEVE_WORDS
            if all(m.implied_part for m in self.pending) and word != "or":
                self.flush()
            elif any(m.word in nouns for m in self.pending):
                self.flush()  # "a t-shirt with a logo, blue shorts": the phrase has ended
            elif following in _MODIFIER_ROLES:
                pass  # "red and white shirt": both colours wait for the garment
            elif following == "part" and self.anchor is None:
                pass
            else:
                self.flush()
        if word in ("or", "nor"):
            return
        if word in ("and", ",") and following == "part":
            return
        self.negate = False
        if word in (";", "but"):
            self.anchor, self.recent = None, False

    def on_camera(self, i: int) -> int:
        if i + 1 >= len(self.tokens):
            self.notes.append(f"{self.tokens[i].word!r} needs a camera id after it; ignored")
            return i + 1
        chunk = self.tokens[i + 1].chunk
        j = i + 1
        while j < len(self.tokens) and self.tokens[j].chunk == chunk:
            self.tokens[j].reading = WordReading(
                self.tokens[j].word, "camera", f"camera id {self.tokens[i + 1].raw}"
            )
            j += 1
        self.cameras.append(self.tokens[i + 1].raw)
        return j

    def on_time(self, i: int, word: str) -> int:
        nxt = [t.word for t in self.tokens[i + 1 : i + 3]]
        if word in ("last", "past") and nxt:
            count, unit = (float(nxt[0]), nxt[1:2]) if nxt[0].isdigit() else (1.0, nxt[:1])
            if unit and unit[0] in vocab.TIME_UNITS:
                self.since = self.now - count * vocab.TIME_UNITS[unit[0]]
                return self.mark_time(i, i + (3 if nxt[0].isdigit() else 2))
        elif word in ("since", "after", "before", "until") and nxt:
            clock = _clock_today(nxt[0], self.now)
            if clock is not None:
                if word in ("since", "after"):
                    self.since = clock
                else:
                    self.until = clock
                return self.mark_time(i, i + 2)
        elif word == "today":
            day = dt.datetime.fromtimestamp(self.now).astimezone()
            self.since = day.replace(hour=0, minute=0, second=0, microsecond=0).timestamp()
            return self.mark_time(i, i + 1)
        self.tokens[i].reading = WordReading(word, "filler", "filler (no time given)")
        return i + 1

    def mark_time(self, start: int, stop: int) -> int:
        phrase = " ".join(t.word for t in self.tokens[start:stop])
        for token in self.tokens[start:stop]:
            token.reading = WordReading(token.word, "time", f"time filter {phrase!r}")
        return stop

    def flush(self) -> None:
        """Binds modifiers that met no garment noun (see the module doc for the order)."""
        if not self.pending:
            return
        mods, self.pending = self.pending, []
        words = [m.word for m in mods]
        sleeves = any(m.kind == "sleeves" for m in mods)
        mods = [m for m in mods if m.kind != "sleeves"]
        anchor = self.anchor
        if sleeves and self.negate and not any(m.kind == "size" for m in mods):
            mods.append(_Mod("size", "short", "no sleeves"))  # "with no sleeves": sleeveless
            self.negate = False
        if sleeves and (anchor is None or anchor.part not in (_TOP, "coat")):
            anchor = None
            draft = _Draft(_TOP, self.negate, 1.0, words)
        elif anchor is not None and not self.negate:
            anchor.words += words
            self.apply(anchor, mods)
            return
        elif anchor is not None:
            draft = _Draft(anchor.part, True, anchor.weight, [self.negation_word, *words])
        elif implied := next((m.implied_part for m in mods if m.implied_part), None):
            draft = _Draft(implied, self.negate, 1.0, words)
        else:
            draft = _Draft(_TOP, self.negate, 0.5, words)
            self.notes.append(
                f"no garment named for {' '.join(words)!r}: read as the top "
                "(upper-clothes), at half weight"
            )
        self.apply(draft, mods)
        self.drafts.append(draft)
        self.last, self.recent = draft, True

    def apply(self, draft: _Draft, mods: list[_Mod]) -> None:
        """Sets explicit modifiers on ``draft``; words a part cannot carry become notes."""
        colors = list(dict.fromkeys(m.value for m in mods if m.kind == "color" and m.value))
        if len(colors) > 1:
            self.notes.append(f"colours {', '.join(colors)} on one {draft.part}: multicolor")
            draft.values["color"] = "multicolor"
        elif colors:
            draft.values["color"] = colors[0]
        for mod in mods:
            if mod.kind not in ("size", "pattern") or mod.value is None:
                continue
            if mod.parts is not None and draft.part not in mod.parts:
                self.notes.append(f"{mod.word!r} does not describe {draft.part}; ignored")
            elif not part_can_carry(draft.part, mod.kind):
                self.notes.append(f"CCIHP has no {mod.kind} for {draft.part}; {mod.word!r} ignored")
            else:
                draft.values[mod.kind] = mod.value


def bind_tokens(tokens: list[_Token], now: float) -> tuple[list[Constraint], Filters, list[str]]:
    """Reads every token and binds them into constraints and filters."""
    return _Binder(tokens, now).run()


def parse_query(text: str, *, now: float | None = None) -> ParsedQuery:
    """Parses a person description into constraints and filters.

    Args:
        text: the query, at most MAX_QUERY_CHARS characters.
        now: Unix seconds that relative times ("last 10 minutes") count back from.

    Returns:
        the constraints (deduplicated, in query order), filters, per-word readings, ignored
        symbols and notes; see :meth:`ParsedQuery.explain`.

    Raises:
        QueryError: empty, too long, control characters, or nothing searchable understood.
    """
    text = check_query_text(text)
    tokens, symbols = tokenize_query(text)
    constraints, filters, notes = bind_tokens(tokens, time.time() if now is None else now)
    parsed = ParsedQuery(text, tuple(constraints), filters,
                         tuple(t.reading for t in tokens if t.reading is not None),
                         tuple(symbols), tuple(notes))  # fmt: skip
    if not constraints and filters.empty:
        raise QueryError(_nothing_understood(parsed))
    return parsed


def _nothing_understood(parsed: ParsedQuery) -> str:
    unknown = parsed.unknown_words
    detail = (
        f"unknown words: {', '.join(unknown)}"
        if unknown
        else "it names no clothing, colour, accessory or hair"
    )
    return (
        f"nothing to search for in {parsed.text[:60]!r} ({detail}); describe what the "
        "person wears, e.g. 'red shirt and blue jeans' or 'woman with a black backpack'"
    )


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
