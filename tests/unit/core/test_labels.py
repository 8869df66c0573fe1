"""The taxonomy is internally consistent and its helpers invert correctly."""

from __future__ import annotations

import numpy as np
import pytest

from describeme import labels


def test_ccihp_has_22_parts_in_paper_order() -> None:
    assert labels.NUM_PARTS == 22
    assert labels.PARTS[labels.UPPER_CLOTHES] == "upper-clothes"
    assert labels.PARTS[labels.BAG] == "bag" and labels.PARTS[labels.OTHERS] == "others"
    assert labels.PART_ID["face"] == 13


def test_characteristics_have_none_at_zero() -> None:
    for names in labels.CHARACTERISTICS.values():
        assert names[0] == "none"
    assert labels.NUM_COLORS == 13 and labels.NUM_SIZES == 5 and labels.NUM_PATTERNS == 5
    assert labels.COLORS[10] == "blue" and labels.SIZES[4] == "sparse"


def test_skin_parts_carry_no_characteristics() -> None:
    assert not labels.SKIN_PARTS & labels.CHARACTERIZED_PARTS
    assert labels.PART_HAS_SIZE <= labels.CHARACTERIZED_PARTS
    assert labels.PART_HAS_PATTERN <= labels.CHARACTERIZED_PARTS
    assert labels.BACKGROUND not in labels.CHARACTERIZED_PARTS


def test_description_groups_cover_every_characterized_part_once() -> None:
    grouped = [p for parts in labels.DESCRIPTION_GROUPS.values() for p in parts]
    assert sorted(grouped) == sorted(labels.CHARACTERIZED_PARTS)


@pytest.mark.parametrize(
    ("cihp", "ccihp"),
    [
        (0, 0),
        (4, labels.GLASSES),
        (6, labels.UPPER_CLOTHES),
        (11, labels.SCARF_TIE),
        (19, labels.RIGHT_SHOE),
    ],
)
def test_cihp_mapping(cihp: int, ccihp: int) -> None:
    assert labels.cihp_to_ccihp_lut()[cihp] == ccihp


def test_cihp_lut_marks_unknown_ids_ignored() -> None:
    lut = labels.cihp_to_ccihp_lut()
    assert lut[20] == 255 and lut[255] == 255
    with pytest.raises(ValueError, match="out of range"):
        labels.cihp_to_ccihp_lut({3: 40})


def test_flip_part_map_swaps_left_right_and_mirrors() -> None:
    parts = np.array([[labels.LEFT_ARM, labels.FACE, labels.RIGHT_SHOE]], dtype=np.uint8)
    flipped = labels.flip_part_map(parts)
    assert flipped.tolist() == [[labels.LEFT_SHOE, labels.FACE, labels.RIGHT_ARM]]
    assert np.array_equal(labels.flip_part_map(flipped), parts)


def test_flip_keypoints_swaps_and_keeps_invisible_in_place() -> None:
    kp = np.zeros((1, 17, 3), np.float32)
    kp[0, labels.KEYPOINT_ID["left_wrist"]] = (10, 5, 2)
    kp[0, labels.KEYPOINT_ID["nose"]] = (3, 3, 0)
    out = labels.flip_keypoints(kp, width=100)
    assert out[0, labels.KEYPOINT_ID["right_wrist"]].tolist() == [89, 5, 2]
    assert out[0, labels.KEYPOINT_ID["nose"]].tolist() == [3, 3, 0]


def test_skeleton_and_tree_reference_valid_keypoints() -> None:
    assert len(labels.KINEMATIC_TREE) == 16
    flat = [k for edge in labels.SKELETON + labels.KINEMATIC_TREE for k in edge]
    assert min(flat) == 0 and max(flat) == 16
    assert len(labels.KEYPOINT_SIGMAS) == 17


@pytest.mark.parametrize(
    ("kind", "value", "expected"), [("color", "red", 5), ("size", 2, 2), ("pattern", "letters", 4)]
)
def test_characteristic_id(kind: str, value: int | str, expected: int) -> None:
    assert labels.characteristic_id(kind, value) == expected


@pytest.mark.parametrize(
    ("kind", "value", "message"),
    [
        ("color", "teal", "unknown color name"),
        ("size", 9, "out of range"),
        ("shape", 1, "unknown characteristic"),
    ],
)
def test_characteristic_id_errors(kind: str, value: int | str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        labels.characteristic_id(kind, value)


def test_palettes_are_read_only_and_sized() -> None:
    assert labels.PART_PALETTE.shape == (22, 3) and labels.COLOR_PALETTE.shape == (13, 3)
    with pytest.raises(ValueError):
        labels.PART_PALETTE[0, 0] = 1
