"""RunLengthMask encodes exactly and rejects inconsistent data."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.masks import RunLengthMask, paste_masks


@pytest.mark.parametrize(
    "labels",
    [
        np.zeros((5, 7), np.uint8),  # empty
        np.ones((1, 1), np.uint8),  # one pixel
        np.ones((4, 4), np.uint8),  # full
        np.eye(6, dtype=np.uint8) * 13,  # diagonal
        np.random.default_rng(0).integers(0, 22, (37, 23)).astype(np.uint8),  # noise
    ],
    ids=["empty", "one", "full", "diagonal", "noise"],
)
def test_round_trip_is_exact(labels: np.ndarray) -> None:
    mask = RunLengthMask.from_full(labels)
    assert np.array_equal(mask.to_full(), labels)
    assert mask.area == int((labels > 0).sum())


def test_crop_box_is_tight_and_offset_applies() -> None:
    full = np.zeros((20, 30), np.uint8)
    full[5:9, 10:14] = 2
    full[7, 13] = 5
    mask = RunLengthMask.from_full(full)
    assert mask.box == (10, 5, 14, 9)
    assert mask.crop_shape == (4, 4)
    shifted = RunLengthMask.encode(
        full[5:9, 10:14], offset=(10, 5), image_size=(20, 30), crop=False
    )
    assert shifted == mask


def test_label_areas_counts_without_decoding() -> None:
    full = np.zeros((10, 10), np.uint8)
    full[0:2, 0:5] = 3
    full[5, 5] = 7
    areas = RunLengthMask.from_full(full).label_areas(22)
    assert areas[3] == 10 and areas[7] == 1
    # The tight crop spans rows 0..5 and cols 0..5 (36 px): the rest of it is label 0.
    assert areas[0] == 36 - 11 and areas.shape == (22,)


def test_boolean_mask_encodes_as_ones() -> None:
    mask = RunLengthMask.from_full(np.array([[True, False], [True, True]]))
    assert mask.decode().tolist() == [[1, 0], [1, 1]]


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        (
            dict(
                box=(0, 0, 3, 3),
                image_size=(2, 2),
                values=np.zeros(1, np.uint8),
                lengths=np.array([9], np.uint32),
            ),
            "not inside image",
        ),
        (
            dict(
                box=(0, 0, 2, 2),
                image_size=(2, 2),
                values=np.zeros(2, np.uint8),
                lengths=np.array([4], np.uint32),
            ),
            "equal-length",
        ),
        (
            dict(
                box=(0, 0, 2, 2),
                image_size=(2, 2),
                values=np.zeros(1, np.uint8),
                lengths=np.array([3], np.uint32),
            ),
            "expected crop area 4",
        ),
    ],
)
def test_invalid_masks_raise(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RunLengthMask(**kwargs)


def test_encode_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match=r"\(h, w\)"):
        RunLengthMask.encode(np.zeros((2, 2, 2), np.uint8))
    with pytest.raises(ValueError, match=r"\[0, 255\]"):
        RunLengthMask.encode(np.full((2, 2), 300, np.int32))


def test_paste_masks_later_on_top() -> None:
    a = np.zeros((4, 4), bool)
    a[0:3, 0:3] = True
    b = np.zeros((4, 4), bool)
    b[2:4, 2:4] = True
    out = paste_masks([RunLengthMask.from_full(a), RunLengthMask.from_full(b)], (4, 4))
    assert out[2, 2] == 2 and out[0, 0] == 1 and out[3, 0] == 0
    with pytest.raises(ValueError, match="is for image"):
        paste_masks([RunLengthMask.from_full(a)], (5, 5))
