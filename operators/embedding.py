"""A deterministic 384-d text embedding of track descriptions, by signed feature hashing.

It needs no model: words and word bigrams are hashed (BLAKE2b, stable across processes and
machines, unlike Python's salted ``hash``) into 384 signed buckets and the vector is L2
normalised. Descriptions are embedded from their sentence plus one short phrase per part
("red striped top"), so a query phrase such as "red top" shares the unigrams and the bigram
with a matching description and its cosine similarity is high. The search component may
replace this with a learned encoder of the same width; the index only fixes ``DIM``.

Example::

    vector = embed_text("woman in a red top")  # (384,) float32, unit norm
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Iterable, Sequence
from functools import lru_cache

import numpy as np

from describeme.labels import DESCRIPTION_GROUPS, PART_NOUNS
from describeme.messages import PartDescription, TrackDescription

DIM = 384
BIGRAM_WEIGHT = 0.5  # bigrams add word-order evidence without drowning the unigrams
_EMPTY_TOKEN = "\x00empty"  # an empty text still needs a unit vector for COSINE distance
_WORD = re.compile(r"\w+", re.UNICODE)


def tokenize(text: str) -> list[str]:
    """Lower-cased word tokens; '-' and '_' split words ("upper-clothes" -> upper, clothes)."""
    if not isinstance(text, str):
        raise TypeError(f"text must be a str, got {type(text).__name__}")
    return _WORD.findall(text.lower().replace("_", " "))


@lru_cache(maxsize=65536)
def _bucket(feature: str) -> tuple[int, float]:
    digest = hashlib.blake2b(feature.encode("utf-8"), digest_size=8).digest()
    value = int.from_bytes(digest, "little")
    return value % DIM, 1.0 if (value >> 63) & 1 else -1.0


def _accumulate(vector: np.ndarray, tokens: Sequence[str], weight: float) -> None:
    for token in tokens:
        index, sign = _bucket(token)
        vector[index] += sign * weight
    for left, right in zip(tokens, tokens[1:], strict=False):
        index, sign = _bucket(f"{left} {right}")
        vector[index] += sign * weight * BIGRAM_WEIGHT


def _normalise(vector: np.ndarray) -> np.ndarray:
    norm = float(np.linalg.norm(vector))
    if norm == 0.0:
        vector = np.zeros(DIM, dtype=np.float64)
        index, sign = _bucket(_EMPTY_TOKEN)
        vector[index] = sign
        return vector.astype(np.float32)
    return (vector / norm).astype(np.float32)


def embed_phrases(phrases: Iterable[str], weights: Iterable[float] | None = None) -> np.ndarray:
    """Embeds several phrases into one vector; bigrams never cross phrase boundaries.

    Args:
        phrases: texts to embed together.
        weights: optional weight per phrase (default 1.0 each).

    Returns:
        (384,) float32 unit-norm vector.
    """
    phrases = list(phrases)
    weight_list = [1.0] * len(phrases) if weights is None else [float(w) for w in weights]
    if len(weight_list) != len(phrases):
        raise ValueError(f"got {len(phrases)} phrases but {len(weight_list)} weights")
    vector = np.zeros(DIM, dtype=np.float64)
    for phrase, weight in zip(phrases, weight_list, strict=True):
        _accumulate(vector, tokenize(phrase), weight)
    return _normalise(vector)


def embed_text(text: str) -> np.ndarray:
    """Embeds free text (a query or a sentence).

    Returns:
        (384,) float32 unit-norm vector; the same text always gives the same vector.
    """
    return embed_phrases([text])


def part_phrase(part: PartDescription) -> str:
    """The phrase "<size> <color> <pattern> <noun>" for one part, skipping missing values.

    e.g. PartDescription("upper-clothes", color="red", pattern="geometrical") ->
    "red geometrical top".
    """
    group = DESCRIPTION_GROUPS.get(part.part)
    noun = PART_NOUNS.get(group[0], part.part) if group else part.part
    words = [v for v in (part.size, part.color, part.pattern) if v and v != "none"]
    return " ".join([*words, str(noun)])


def embed_description(desc: TrackDescription) -> np.ndarray:
    """Embeds a track: one phrase per part (weighted by presence) plus the sentence.

    Returns:
        (384,) float32 unit-norm vector.
    """
    phrases = [part_phrase(part) for part in desc.parts]
    weights = [max(float(part.presence), 0.1) for part in desc.parts]
    return embed_phrases([*phrases, desc.sentence], [*weights, 1.0])


def to_bytes(vector: np.ndarray) -> bytes:
    """The little-endian FLOAT32 blob RediSearch VECTOR fields store; checks the shape."""
    vector = np.asarray(vector)
    if vector.shape != (DIM,):
        raise ValueError(f"embedding must have shape ({DIM},), got {vector.shape}")
    return vector.astype("<f4").tobytes()


def from_bytes(blob: bytes) -> np.ndarray:
    """Inverse of :func:`to_bytes`: (384,) float32."""
    if len(blob) != DIM * 4:
        raise ValueError(f"embedding blob must be {DIM * 4} bytes, got {len(blob)}")
    return np.frombuffer(blob, dtype="<f4").astype(np.float32)
