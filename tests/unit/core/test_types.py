"""Persons: validation, indexing, concatenation, equality."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.masks import RunLengthMask
from describeme.types import Persons


def make_persons(n: int, with_masks: bool = True, with_keypoints: bool = True) -> Persons:
    rng = np.random.default_rng(n)
    xy = rng.uniform(0, 50, (n, 2)).astype(np.float32)
    masks = None
    if with_masks:
        masks = []
        for i in range(n):
            full = np.zeros((64, 64), np.uint8)
            full[i : i + 5, i : i + 3] = 5
            masks.append(RunLengthMask.from_full(full))
    return Persons(
        xyxy=np.concatenate([xy, xy + 10], axis=1),
        score=rng.uniform(size=n),
        keypoints=rng.uniform(size=(n, 17, 3)) if with_keypoints else None,
        masks=masks,
        color=np.zeros((n, 22, 13)),
    )


def test_defaults_and_dtypes() -> None:
    persons = make_persons(3)
    assert len(persons) == 3
    assert persons.xyxy.dtype == np.float32 and persons.track_id.dtype == np.int64
    assert persons.track_id.tolist() == [-1, -1, -1]
    assert persons.size is None and persons.quality is None


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("xyxy", np.zeros((2, 3)), r"xyxy must have shape \(N, 4\), got \(2, 3\)"),
        ("score", np.zeros(3), r"score must have shape \(2,\), got \(3,\)"),
        (
            "keypoints",
            np.zeros((2, 16, 3)),
            r"keypoints must have shape \(2, 17, 3\), got \(2, 16, 3\)",
        ),
        ("color", np.zeros((2, 22, 12)), r"color must have shape \(2, 22, 13\)"),
        ("track_id", np.zeros(1), r"track_id must have shape \(2,\)"),
    ],
)
def test_shape_errors_name_expected_and_actual(field: str, value: np.ndarray, message: str) -> None:
    kwargs = dict(xyxy=np.zeros((2, 4)), score=np.zeros(2))
    kwargs[field] = value
    with pytest.raises(ValueError, match=message):
        Persons(**kwargs)


def test_mask_count_and_type_are_checked() -> None:
    with pytest.raises(ValueError, match="must hold 2 masks, got 1"):
        Persons(
            xyxy=np.zeros((2, 4)),
            score=np.zeros(2),
            masks=[RunLengthMask.from_full(np.ones((2, 2)))],
        )
    with pytest.raises(TypeError, match="expected RunLengthMask"):
        Persons(xyxy=np.zeros((1, 4)), score=np.zeros(1), masks=[np.ones((2, 2))])


@pytest.mark.parametrize(
    "index",
    [
        1,
        -1,
        slice(0, 2),
        [2, 0],
        np.array([True, False, True, False]),
        np.array([], dtype=np.int64),
    ],
    ids=["int", "negative", "slice", "list", "bool", "empty"],
)
def test_indexing_selects_all_fields_consistently(index: object) -> None:
    persons = make_persons(4)
    expected = np.arange(4)[index]  # type: ignore[index]
    expected = np.atleast_1d(expected)
    picked = persons[index]  # type: ignore[index]
    assert len(picked) == len(expected)
    assert np.array_equal(picked.xyxy, persons.xyxy[expected])
    assert np.array_equal(picked.keypoints, persons.keypoints[expected])  # type: ignore[index]
    assert picked.masks == [persons.masks[i] for i in expected]  # type: ignore[index]


def test_index_errors() -> None:
    persons = make_persons(2)
    with pytest.raises(IndexError, match="out of range for 2"):
        persons[2]
    with pytest.raises(ValueError, match=r"boolean index must have shape \(2,\)"):
        persons[np.array([True])]


def test_cat_keeps_fields_present_in_all_and_drops_the_rest() -> None:
    a, b = make_persons(2), make_persons(3, with_keypoints=False)
    both = Persons.cat([a, b])
    assert len(both) == 5
    assert both.keypoints is None  # b lacks keypoints
    assert both.masks is not None and len(both.masks) == 5
    assert np.array_equal(both.xyxy[2:], b.xyxy)
    assert len(Persons.cat([])) == 0


def test_empty_has_requested_optional_fields() -> None:
    empty = Persons.empty(keypoints=True, masks=True)
    assert len(empty) == 0 and empty.keypoints.shape == (0, 17, 3) and empty.masks == []
    assert Persons.cat([empty, make_persons(1)]).keypoints.shape == (1, 17, 3)


def test_iteration_equality_and_track_ids() -> None:
    persons = make_persons(3)
    assert [len(p) for p in persons] == [1, 1, 1]
    assert persons == persons[[0, 1, 2]]
    tracked = persons.with_track_ids(np.array([7, 8, 9]))
    assert tracked.track_id.tolist() == [7, 8, 9] and tracked != persons
    with pytest.raises(ValueError, match="track_id"):
        persons.with_track_ids(np.array([1]))


def test_area_and_nbytes() -> None:
    persons = Persons(xyxy=np.array([[0, 0, 10, 5], [5, 5, 4, 9]]), score=np.ones(2))
    assert persons.area.tolist() == [50.0, 0.0]  # inverted box has zero area
    assert persons.nbytes() > 0
