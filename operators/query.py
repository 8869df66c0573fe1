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

import re
import time

from describeme.operators import vocabulary as vocab
from describeme.operators.query_binding import bind_tokens, parse_time_bound
from describeme.operators.query_model import (
    MAX_QUERY_CHARS,
    MAX_QUERY_WORDS,
    Constraint,
    Filters,
    ParsedQuery,
    QueryError,
    Token,
)
from describeme.operators.vocabulary import WordReading, correct_typo

__all__ = [
    "Constraint", "Filters", "WordReading", "ParsedQuery", "QueryError", "parse_query",
    "parse_time_bound", "tokenize_query", "correct_typo", "MAX_QUERY_CHARS",
]  # fmt: skip

_JOINERS = {"&": "and", "/": "and", "+": "and", ",": ",", ";": ";", ".": ";", "!": ";", "?": ";"}
_TOKEN = re.compile(r"\d{1,2}:\d{2}(?:am|pm)?|\d{1,2}(?:am|pm)|\w+(?:'\w+)*(?:-\w+(?:'\w+)*)*|\S")


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


def tokenize_query(text: str) -> tuple[list[Token], list[str]]:
    """Words (phrases merged, hyphen compounds split when unknown) and ignored symbols."""
    tokens: list[Token] = []
    symbols: list[str] = []
    matches = list(_TOKEN.finditer(text.replace("\u2019", "'")))
    for chunk, match in enumerate(matches):
        raw, word = match.group(), match.group().lower()
        if len(word) == 1 and not word.isalnum() and word != "_":
            glued = chunk + 1 < len(matches) and matches[chunk + 1].start() == match.end()
            if word in _JOINERS:
                tokens.append(Token(_JOINERS[word], raw, chunk))
            elif word == "-":
                # "-hat" reads as "not hat"; a free-standing dash separates like a comma.
                tokens.append(Token("not" if glued else ",", raw, chunk))
            elif word not in symbols:
                symbols.append(word)
            continue
        word = word.removesuffix("'s")
        parts = [word] if word in vocab.KNOWN_WORDS or "-" not in word else word.split("-")
        tokens += [Token(part, raw, chunk) for part in parts if part]
    if len(tokens) > MAX_QUERY_WORDS:
        raise QueryError(f"query has {len(tokens)} words; at most {MAX_QUERY_WORDS}")
    return _merge_phrases(tokens), symbols


def _merge_phrases(tokens: list[Token]) -> list[Token]:
    out: list[Token] = []
    i = 0
    while i < len(tokens):
        for n in range(min(vocab.MAX_PHRASE_WORDS, len(tokens) - i), 1, -1):
            key = tuple(t.word for t in tokens[i : i + n])
            if key in vocab.PHRASES:
                raw = " ".join(dict.fromkeys(t.raw for t in tokens[i : i + n]))
                out.append(Token(vocab.PHRASES[key], raw, tokens[i].chunk))
                i += n
                break
        else:
            out.append(tokens[i])
            i += 1
    return out


# ---- time --------------------------------------------------------------------------------


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
