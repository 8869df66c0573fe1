"""The deterministic hashing embedding."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from describeme.messages import PartDescription, TrackDescription
from describeme.operators.embedding import (
    DIM,
    embed_description,
    embed_phrases,
    embed_text,
    from_bytes,
    part_phrase,
    to_bytes,
    tokenize,
)


def describe(*parts: PartDescription, sentence: str = "") -> TrackDescription:
    return TrackDescription("cam", 1, 0, 0.0, 0.0, 0.0, 0.0, 0.0, list(parts), sentence)


@pytest.mark.parametrize(
    "text", ["", "red", "woman in a red striped top", "ünïcödé 中文 😀", "x" * 10000]
)
def test_embed_text_is_unit_norm_float32_384(text: str) -> None:
    vector = embed_text(text)
    assert vector.shape == (DIM,) and vector.dtype == np.float32
    assert np.linalg.norm(vector) == pytest.approx(1.0, abs=1e-5)


def test_embed_text_is_deterministic_across_processes() -> None:
    # Python's hash() is salted per process; the embedding must not depend on it.
    code = (
        "from describeme.operators.embedding import embed_text;"
        "import sys; sys.stdout.write(embed_text('red top blue jeans').tobytes().hex())"
    )
    other = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert bytes.fromhex(other.stdout) == embed_text("red top blue jeans").tobytes()


def test_case_and_punctuation_do_not_matter() -> None:
    np.testing.assert_array_equal(embed_text("Red, TOP!"), embed_text("red top"))


def test_matching_query_is_closer_than_a_mismatching_one() -> None:
    red_top = describe(PartDescription("upper-clothes", 1.0, "red"),
                       PartDescription("pants", 1.0, "blue"))  # fmt: skip
    doc = embed_description(red_top)
    assert float(doc @ embed_text("red top")) > float(doc @ embed_text("green coat")) + 0.2
    # Word order matters through bigrams: "red top" beats "blue top" for a red top.
    assert float(doc @ embed_text("red top")) > float(doc @ embed_text("blue top"))


def test_bigrams_do_not_cross_phrases() -> None:
    joined = embed_phrases(["red top blue pants"])
    separate = embed_phrases(["red top", "blue pants"])
    assert not np.array_equal(joined, separate)


@pytest.mark.parametrize(
    ("part", "phrase"),
    [
        (
            PartDescription("upper-clothes", 1.0, "red", pattern="geometrical"),
            "red geometrical top",
        ),
        (PartDescription("hair", 1.0, "dark", size="long"), "long dark hair"),
        (PartDescription("shoes", 1.0), "shoes"),
        (PartDescription("coat", 1.0, "none", size="none"), "coat"),
    ],
)
def test_part_phrase(part: PartDescription, phrase: str) -> None:
    assert part_phrase(part) == phrase


def test_tokenize_splits_hyphens_and_underscores() -> None:
    assert tokenize("Upper-clothes upper_clothes") == ["upper", "clothes", "upper", "clothes"]
    with pytest.raises(TypeError, match="str"):
        tokenize(None)


def test_bytes_round_trip_and_shape_checks() -> None:
    vector = embed_text("blue jeans")
    assert len(to_bytes(vector)) == DIM * 4
    np.testing.assert_array_equal(from_bytes(to_bytes(vector)), vector)
    with pytest.raises(ValueError, match="shape"):
        to_bytes(np.zeros(10, dtype=np.float32))
    with pytest.raises(ValueError, match="bytes"):
        from_bytes(b"\x00" * 12)


def test_phrase_weights_must_match() -> None:
    with pytest.raises(ValueError, match="weights"):
        embed_phrases(["a", "b"], [1.0])
