"""Binding words to garments: adjectives and nouns -> constraints, plus time filters.

"red shirt and blue jeans" must never match a blue shirt with red jeans: the binder walks the
tokens keeping the modifiers seen since the last garment and attaches them to the garment that
follows (or, for trailing words, the one before), within a scope that ends at joiners.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from dataclasses import dataclass, field, replace

from describeme.operators import vocabulary as vocab
from describeme.operators.query_model import (
    KINDS,
    Constraint,
    Filters,
    QueryError,
    Token,
    dedupe,
    part_can_carry,
)
from describeme.operators.vocabulary import WordReading

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

    def __init__(self, tokens: list[Token], now: float) -> None:
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


def bind_tokens(tokens: list[Token], now: float) -> tuple[list[Constraint], Filters, list[str]]:
    """Reads every token and binds them into constraints and filters."""
    return _Binder(tokens, now).run()
