"""Hungarian matcher on hand-made cases, empty targets, and batched == single."""

from __future__ import annotations

import pytest
import torch

from describeme.models.hptr.matcher import build_matcher

torch.set_num_threads(1)
PERSON, NOBODY = [4.0, -4.0], [-4.0, 4.0]


def _match(logits, boxes, targets, **costs):
    matcher = build_matcher(**costs)
    result = matcher(torch.tensor([logits]), torch.tensor([boxes]), [torch.tensor(targets)])
    return [r.tolist() for r in result[0]]


@pytest.mark.parametrize(
    ("logits", "boxes", "targets", "expected"),
    [
        # Each target has one exact box among the queries: matched by box.
        (
            [PERSON, PERSON, PERSON],
            [[0.2, 0.2, 0.1, 0.1], [0.9, 0.9, 0.1, 0.1], [0.5, 0.5, 0.2, 0.2]],
            [[0.5, 0.5, 0.2, 0.2], [0.2, 0.2, 0.1, 0.1]],
            [[0, 2], [1, 0]],
        ),
        # Identical boxes: the query more confident of a person wins.
        (
            [NOBODY, PERSON],
            [[0.5, 0.5, 0.2, 0.2], [0.5, 0.5, 0.2, 0.2]],
            [[0.5, 0.5, 0.2, 0.2]],
            [[1], [0]],
        ),
        # More targets than queries: every query is used once.
        (
            [PERSON, PERSON],
            [[0.2, 0.2, 0.1, 0.1], [0.8, 0.8, 0.1, 0.1]],
            [[0.8, 0.8, 0.1, 0.1], [0.5, 0.5, 0.1, 0.1], [0.2, 0.2, 0.1, 0.1]],
            [[0, 1], [2, 0]],
        ),
        # One query, one target.
        ([NOBODY], [[0.1, 0.1, 0.1, 0.1]], [[0.9, 0.9, 0.1, 0.1]], [[0], [0]]),
    ],
)
def test_hand_cases(logits, boxes, targets, expected) -> None:
    assert _match(logits, boxes, targets) == expected


def test_giou_only_cost_prefers_overlapping_box() -> None:
    boxes = [[0.30, 0.5, 0.2, 0.2], [0.52, 0.5, 0.2, 0.2]]
    assert _match([PERSON, PERSON], boxes, [[0.5, 0.5, 0.2, 0.2]], cost_class=0, cost_bbox=0) == [
        [1],
        [0],
    ]


def test_empty_targets_give_empty_int64_matches() -> None:
    matcher = build_matcher()
    result = matcher(
        torch.randn(2, 5, 2), torch.rand(2, 5, 4), [torch.zeros(0, 4), torch.zeros(0, 4)]
    )
    for queries, targets in result:
        assert queries.dtype == targets.dtype == torch.int64
        assert queries.numel() == targets.numel() == 0


def test_batched_equals_single() -> None:
    torch.manual_seed(3)
    matcher = build_matcher()
    logits, boxes = torch.randn(4, 10, 2), torch.rand(4, 10, 4) * 0.5 + 0.1
    targets = [torch.rand(n, 4) * 0.5 + 0.1 for n in (3, 0, 10, 1)]
    batched = matcher(logits, boxes, targets)
    for index in range(4):
        single = matcher(logits[index : index + 1], boxes[index : index + 1], [targets[index]])[0]
        assert torch.equal(batched[index][0], single[0])
        assert torch.equal(batched[index][1], single[1])
        assert len(batched[index][0]) == min(10, len(targets[index]))


def test_matching_is_optimal_against_brute_force() -> None:
    import itertools

    torch.manual_seed(5)
    matcher = build_matcher()
    logits, boxes, targets = (
        torch.randn(1, 4, 2),
        torch.rand(1, 4, 4) * 0.5 + 0.1,
        torch.rand(3, 4) * 0.5 + 0.1,
    )
    queries, chosen = matcher(logits, boxes, [targets])[0]

    def cost(q: int, t: int) -> float:
        single = build_matcher()
        # The matcher's cost for one pair equals its assignment cost on a 1x1 problem: rebuild it.
        from describeme.models.hptr.box_ops import box_cxcywh_to_xyxy, generalized_box_iou

        prob = logits[0, q].softmax(-1)[0]
        l1 = (boxes[0, q] - targets[t]).abs().sum()
        giou = generalized_box_iou(
            box_cxcywh_to_xyxy(boxes[0, q : q + 1]), box_cxcywh_to_xyxy(targets[t : t + 1])
        )[0, 0]
        return float(-single.cost_class * prob + single.cost_bbox * l1 - single.cost_giou * giou)

    found = sum(cost(q, t) for q, t in zip(queries.tolist(), chosen.tolist(), strict=True))
    best = min(
        sum(cost(q, t) for t, q in enumerate(perm)) for perm in itertools.permutations(range(4), 3)
    )
    assert found == pytest.approx(best, abs=1e-5)


def test_batch_and_target_count_mismatch_raises() -> None:
    with pytest.raises(ValueError, match="2 target lists for a batch of 1"):
        build_matcher()(
            torch.randn(1, 3, 2), torch.rand(1, 3, 4), [torch.rand(1, 4), torch.rand(1, 4)]
        )


def test_all_zero_costs_rejected() -> None:
    with pytest.raises(ValueError, match="non-zero"):
        build_matcher(0, 0, 0)
