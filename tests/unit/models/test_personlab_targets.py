"""PersonLab training targets on a hand case: disks, short/mid/long offsets and their masks."""

from __future__ import annotations

import pytest
import torch

from describeme.models.personlab.model import DIRECTED_EDGES
from describeme.models.personlab.targets import TARGET_KEYS, build_image_targets, build_targets

torch.set_num_threads(1)
STRIDE, RADIUS = 8, 10.0  # cell (i, j) sits at ((j + 0.5) * 8 - 0.5, (i + 0.5) * 8 - 0.5)
NOSE_TO_EYE = DIRECTED_EDGES.index((0, 1))
EYE_TO_NOSE = DIRECTED_EDGES.index((1, 0))


def _hand_case():
    """Person 0: nose at the centre of cell (3, 3), left eye at cell (3, 5), mask x, y in
    [16, 48); person 1: no keypoints, mask x in [40, 64), y in [16, 48) (shares column 5)."""
    keypoints = torch.zeros(2, 17, 3)
    keypoints[0, 0] = torch.tensor([27.5, 27.5, 2.0])
    keypoints[0, 1] = torch.tensor([43.5, 27.5, 1.0])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    masks[0, 16:48, 16:48] = True
    masks[1, 16:48, 40:64] = True
    return keypoints, masks


@pytest.fixture(scope="module")
def targets():
    keypoints, masks = _hand_case()
    return build_image_targets(keypoints, masks, STRIDE, RADIUS)


def test_heatmap_is_the_disk_of_radius_r_around_labelled_keypoints(targets) -> None:
    heat = targets["heatmaps"]
    # R = 10 px reaches the 4-neighbours (8 px) but not the diagonals (11.3 px).
    expected = torch.zeros(8, 8)
    expected[3, 3] = expected[2, 3] = expected[4, 3] = expected[3, 2] = expected[3, 4] = 1
    assert torch.equal(heat[0], expected)
    assert heat[1].sum() == 5 and heat[1, 3, 5] == 1
    assert heat[2:].sum() == 0  # unlabelled keypoints have no disk
    assert torch.equal(targets["short_mask"], heat)


def test_short_offsets_point_from_each_cell_to_the_keypoint(targets) -> None:
    short = targets["short_offsets"].view(17, 2, 8, 8)
    assert short[0, :, 3, 4].tolist() == [-8.0, 0.0]
    assert short[0, :, 2, 3].tolist() == [0.0, 8.0]
    assert short[0, :, 3, 3].tolist() == [0.0, 0.0]
    assert short[0, :, 0, 0].tolist() == [0.0, 0.0]  # outside the disk


def test_mid_offsets_live_on_source_disks_and_point_at_the_target(targets) -> None:
    mid = targets["mid_offsets"].view(32, 2, 8, 8)
    mask = targets["mid_mask"]
    assert mid[NOSE_TO_EYE, :, 3, 3].tolist() == [16.0, 0.0]
    assert mid[NOSE_TO_EYE, :, 2, 3].tolist() == [16.0, 8.0]
    assert mid[EYE_TO_NOSE, :, 3, 5].tolist() == [-16.0, 0.0]
    assert torch.equal(mask[NOSE_TO_EYE], targets["heatmaps"][0])
    assert torch.equal(mask[EYE_TO_NOSE], targets["heatmaps"][1])
    others = [i for i in range(32) if i not in (NOSE_TO_EYE, EYE_TO_NOSE)]
    assert mask[others].sum() == 0  # every other edge lacks a labelled end


def test_segmentation_is_the_union_of_half_covered_cells(targets) -> None:
    seg = targets["segmentation"][0]
    expected = torch.zeros(8, 8)
    expected[2:6, 2:8] = 1
    assert torch.equal(seg, expected)


def test_long_offsets_only_on_cells_of_exactly_one_person(targets) -> None:
    long = targets["long_offsets"].view(17, 2, 8, 8)
    mask = targets["long_mask"]
    expected = torch.zeros(8, 8)
    expected[2:6, 2:5] = 1  # column 5 is shared with person 1, columns 6-7 are person 1's
    assert torch.equal(mask[0], expected) and torch.equal(mask[1], expected)
    assert mask[2:].sum() == 0
    assert long[0, :, 2, 2].tolist() == [8.0, 8.0]  # (19.5, 19.5) -> nose (27.5, 27.5)
    assert long[1, :, 5, 4].tolist() == [8.0, -16.0]  # (35.5, 43.5) -> eye (43.5, 27.5)
    assert long[:, :, 3, 5].abs().sum() == 0


def test_nearest_person_wins_where_disks_overlap() -> None:
    keypoints = torch.zeros(2, 17, 3)
    keypoints[0, 0] = torch.tensor([27.5, 27.5, 2.0])
    keypoints[1, 0] = torch.tensor([45.5, 27.5, 2.0])
    masks = torch.zeros(2, 64, 64, dtype=torch.bool)
    out = build_image_targets(keypoints, masks, STRIDE, 20.0)
    short = out["short_offsets"].view(17, 2, 8, 8)
    assert short[0, :, 3, 4].tolist() == [-8.0, 0.0]  # 35.5: 8 px from person 0, 10 from 1
    assert short[0, :, 3, 5].tolist() == [2.0, 0.0]  # 43.5: 16 px from person 0, 2 from 1


def test_batched_targets_stack_images_with_different_people_counts() -> None:
    keypoints, masks = _hand_case()
    out = build_targets(
        [keypoints, torch.zeros(0, 17, 3)],
        [masks, torch.zeros(0, 64, 64, dtype=torch.bool)],
        STRIDE,
        RADIUS,
    )
    assert tuple(out) == TARGET_KEYS
    assert tuple(out["mid_offsets"].shape) == (2, 64, 8, 8)
    assert tuple(out["long_mask"].shape) == (2, 17, 8, 8)
    assert all(out[k][1].abs().sum() == 0 for k in TARGET_KEYS)


@pytest.mark.parametrize(
    ("keypoints", "masks", "message"),
    [
        (torch.zeros(1, 16, 3), torch.zeros(1, 64, 64, dtype=torch.bool), r"\(N, 17, 3\)"),
        (torch.zeros(2, 17, 3), torch.zeros(1, 64, 64, dtype=torch.bool), "N = 2 people"),
        (torch.zeros(1, 17, 3), torch.zeros(1, 60, 64, dtype=torch.bool), "multiple of the"),
    ],
)
def test_bad_inputs_raise_with_the_expected_shape(keypoints, masks, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_image_targets(keypoints, masks, STRIDE, RADIUS)


def test_mismatched_batch_lists_raise() -> None:
    with pytest.raises(ValueError, match="keypoint sets"):
        build_targets([torch.zeros(0, 17, 3)], [], STRIDE, RADIUS)
