"""Tests for operators.matching: box/mask IoU and gated linear assignment."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from describeme.masks import RunLengthMask
from describeme.operators.matching import box_iou, iou_cost, linear_assignment, mask_iou

IMAGE = (60, 80)  # (height, width)


def _rect_mask(x0: int, y0: int, x1: int, y1: int, value: int = 1) -> RunLengthMask:
    full = np.zeros(IMAGE, np.uint8)
    full[y0:y1, x0:x1] = value
    return RunLengthMask.from_full(full)


def _brute_force_iou(a: RunLengthMask, b: RunLengthMask) -> float:
    fa, fb = a.to_binary(), b.to_binary()
    union = np.count_nonzero(fa | fb)
    return np.count_nonzero(fa & fb) / union if union else 0.0


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # full overlap
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),  # half shifted
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching edges
        ([0, 0, 10, 10], [20, 20, 30, 30], 0.0),  # disjoint
        ([0, 0, 10, 10], [2, 2, 4, 4], 4 / 100),  # contained
        ([5, 5, 5, 5], [0, 0, 10, 10], 0.0),  # zero-area box
    ],
)
def test_box_iou_table(a: list[float], b: list[float], expected: float) -> None:
    iou = box_iou(np.array([a], np.float32), np.array([b], np.float32))
    assert iou.shape == (1, 1)
    assert iou[0, 0] == pytest.approx(expected, abs=1e-6)


@pytest.mark.parametrize("shape", [(0, 4), (3, 4)])
def test_box_iou_empty_side(shape: tuple[int, int]) -> None:
    assert box_iou(np.zeros(shape), np.zeros((0, 4))).shape == (shape[0], 0)


def test_box_iou_rejects_bad_shape() -> None:
    with pytest.raises(ValueError, match=r"boxes_b must have shape \(N, 4\)"):
        box_iou(np.zeros((2, 4)), np.zeros((2, 3)))


@pytest.mark.parametrize(
    ("rect_a", "rect_b"),
    [
        ((0, 0, 10, 10), (0, 0, 10, 10)),
        ((0, 0, 10, 10), (5, 5, 15, 15)),
        ((0, 0, 10, 10), (10, 0, 20, 10)),
        ((0, 0, 10, 10), (40, 40, 50, 50)),
        ((10, 10, 70, 50), (20, 20, 30, 30)),
    ],
)
def test_mask_iou_matches_brute_force(rect_a: tuple, rect_b: tuple) -> None:
    a, b = _rect_mask(*rect_a), _rect_mask(*rect_b)
    assert mask_iou([a], [b])[0, 0] == pytest.approx(_brute_force_iou(a, b), abs=1e-6)


def test_mask_iou_irregular_shapes_and_part_labels() -> None:
    rng = np.random.default_rng(0)
    masks = []
    for _ in range(5):
        full = np.zeros(IMAGE, np.uint8)
        x0, y0 = rng.integers(0, 40), rng.integers(0, 30)
        blob = rng.integers(0, 4, (25, 30)).astype(np.uint8)  # part labels 1..3 and holes
        full[y0 : y0 + 25, x0 : x0 + 30] = blob
        masks.append(RunLengthMask.from_full(full))
    iou = mask_iou(masks[:3], masks[2:])
    assert iou.shape == (3, 3)
    for i, j in itertools.product(range(3), range(3)):
        assert iou[i, j] == pytest.approx(_brute_force_iou(masks[i], masks[2 + j]), abs=1e-6)
    assert iou[2, 0] == pytest.approx(1.0)  # the same mask on both sides


def test_mask_iou_box_overlap_without_pixel_overlap() -> None:
    # Two L-shapes whose crop boxes overlap but whose pixels do not.
    full_a = np.zeros(IMAGE, np.uint8)
    full_a[0:20, 0:2] = 1
    full_a[0:2, 0:20] = 1
    full_b = np.zeros(IMAGE, np.uint8)
    full_b[18:20, 5:20] = 1
    full_b[5:20, 18:20] = 1
    iou = mask_iou([RunLengthMask.from_full(full_a)], [RunLengthMask.from_full(full_b)])
    assert iou[0, 0] == 0.0


def test_mask_iou_empty_masks_and_lists() -> None:
    empty = RunLengthMask.from_full(np.zeros(IMAGE, np.uint8))
    rect = _rect_mask(0, 0, 10, 10)
    assert mask_iou([empty], [empty])[0, 0] == 0.0
    assert mask_iou([empty], [rect])[0, 0] == 0.0
    assert mask_iou([], [rect]).shape == (0, 1)
    assert mask_iou([rect], []).shape == (1, 0)


def test_mask_iou_rejects_mixed_image_sizes() -> None:
    other = RunLengthMask.from_full(np.ones((10, 10), np.uint8))
    with pytest.raises(ValueError, match="different sizes"):
        mask_iou([_rect_mask(0, 0, 5, 5)], [other])


def test_mask_iou_rejects_non_masks() -> None:
    with pytest.raises(TypeError, match=r"masks_b\[0\] is ndarray"):
        mask_iou([_rect_mask(0, 0, 5, 5)], [np.ones(IMAGE, bool)])  # type: ignore[list-item]


@pytest.mark.parametrize(
    ("cost", "threshold", "matches", "unmatched_a", "unmatched_b"),
    [
        (np.zeros((0, 0)), 0.5, [], [], []),  # empty
        (np.zeros((0, 3)), 0.5, [], [], [0, 1, 2]),  # no rows
        (np.zeros((2, 0)), 0.5, [], [0, 1], []),  # no columns
        ([[0.1]], 0.5, [[0, 0]], [], []),  # one
        ([[0.9]], 0.5, [], [0], [0]),  # one, gated out
        ([[0.5]], 0.5, [[0, 0]], [], []),  # exactly at the threshold
        ([[0.1, 0.2], [0.2, 0.1]], 0.5, [[0, 0], [1, 1]], [], []),  # diagonal
        ([[0.2, 0.1], [0.1, 0.2]], 0.5, [[0, 1], [1, 0]], [], []),  # crossed
        ([[0.1, 0.9, 0.9]], 0.5, [[0, 0]], [], [1, 2]),  # more columns
        ([[0.9], [0.2], [0.3]], 0.5, [[1, 0]], [0, 2], []),  # more rows
        ([[np.inf, 0.2], [0.1, np.inf]], 0.5, [[0, 1], [1, 0]], [], []),  # forbidden pairs
        # Maximise matches: two matches at 0.45 beat one perfect match at 0.0.
        ([[0.0, 0.45], [0.45, 1.0]], 0.5, [[0, 1], [1, 0]], [], []),
    ],
)
def test_linear_assignment_table(cost, threshold, matches, unmatched_a, unmatched_b) -> None:
    got_matches, got_a, got_b = linear_assignment(np.asarray(cost, float), threshold)
    assert got_matches.shape == (len(matches), 2)
    assert got_matches.dtype == np.int64
    assert got_matches.tolist() == matches
    assert got_a.tolist() == unmatched_a
    assert got_b.tolist() == unmatched_b


def test_linear_assignment_ties_give_a_valid_one_to_one_matching() -> None:
    matches, unmatched_a, unmatched_b = linear_assignment(np.full((3, 3), 0.2), 0.5)
    assert len(matches) == 3 and not len(unmatched_a) and not len(unmatched_b)
    assert sorted(matches[:, 0].tolist()) == [0, 1, 2]
    assert sorted(matches[:, 1].tolist()) == [0, 1, 2]


def test_linear_assignment_is_optimal_on_random_costs() -> None:
    rng = np.random.default_rng(1)
    for _ in range(20):
        cost = rng.random((4, 4))
        matches, _, _ = linear_assignment(cost, 1.0)
        best = min(sum(cost[i, p[i]] for i in range(4)) for p in itertools.permutations(range(4)))
        assert cost[matches[:, 0], matches[:, 1]].sum() == pytest.approx(best)


@pytest.mark.parametrize(
    ("cost", "message"),
    [(np.zeros(3), "2-D"), (np.array([[np.nan]]), "NaN")],
)
def test_linear_assignment_rejects_bad_cost(cost: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        linear_assignment(cost, 0.5)


def test_iou_cost_uses_masks_only_for_rows_with_a_mask() -> None:
    boxes = np.array([[0, 0, 20, 20]], np.float32)
    # A diagonal-half triangle: box IoU with its own box is 1, mask IoU with the square < 1.
    tri = np.tril(np.ones((20, 20), np.uint8))
    full = np.zeros(IMAGE, np.uint8)
    full[0:20, 0:20] = tri
    triangle = RunLengthMask.from_full(full)
    square = _rect_mask(0, 0, 20, 20)
    with_mask = iou_cost(np.repeat(boxes, 2, 0), boxes, [triangle, None], [square])
    assert with_mask[0, 0] == pytest.approx(1 - tri.sum() / 400)
    assert with_mask[1, 0] == pytest.approx(0.0)
    assert iou_cost(boxes, boxes)[0, 0] == pytest.approx(0.0)


def test_iou_cost_rejects_mask_count_mismatch() -> None:
    boxes = np.zeros((2, 4), np.float32)
    with pytest.raises(ValueError, match="one mask"):
        iou_cost(boxes, boxes, [None], [_rect_mask(0, 0, 2, 2)] * 2)


def test_iou_cost_falls_back_to_boxes_for_empty_masks() -> None:
    boxes = np.array([[0, 0, 20, 20]], np.float32)
    empty = RunLengthMask.from_full(np.zeros(IMAGE, np.uint8))
    square = _rect_mask(0, 0, 20, 20)
    assert iou_cost(boxes, boxes, [square], [empty])[0, 0] == pytest.approx(0.0)
    assert iou_cost(boxes, boxes, [empty], [square])[0, 0] == pytest.approx(0.0)


def test_mask_iou_min_iou_prunes_only_pairs_below_it() -> None:
    rng = np.random.default_rng(2)
    masks = []
    for _ in range(12):
        x0, y0 = int(rng.integers(0, 50)), int(rng.integers(0, 30))
        w, h = int(rng.integers(3, 30)), int(rng.integers(3, 30))
        masks.append(_rect_mask(x0, y0, min(x0 + w, 80), min(y0 + h, 60)))
    exact = mask_iou(masks[:6], masks[6:])
    pruned = mask_iou(masks[:6], masks[6:], min_iou=0.3)
    keep = exact >= 0.3
    assert keep.any() and (~keep & (exact > 0)).any()  # the table exercises both sides
    np.testing.assert_allclose(pruned[keep], exact[keep])
    assert np.all((pruned[~keep] == 0) | np.isclose(pruned[~keep], exact[~keep]))
