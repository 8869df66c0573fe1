"""The taxonomy every stage shares: CCIHP parts, their characteristics, COCO keypoints.

This module is the single source of label ids and names. Ids index the model heads, the
dataset maps and the Redis fields, so changing one here changes them everywhere.

Semantic attributes are CCIHP's 22 classes (Loesch & Audigier, ICIP 2021). Characteristics
(size, pattern, color) use 0 for "none" in every map: a pixel that is not on a characterized
part has characteristic 0. CIHP's 20 classes differ at 4 (sunglasses), 6 (dress) and 11
(scarf) and lack 20/21; :data:`CIHP_TO_CCIHP` maps them.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from types import MappingProxyType

import numpy as np

# --------------------------------------------------------------------------------------
# Semantic attributes (body parts and garments), CCIHP order.
# --------------------------------------------------------------------------------------
PARTS: tuple[str, ...] = (
    "background",  # 0
    "hat",  # 1
    "hair",  # 2
    "glove",  # 3
    "glasses",  # 4
    "upper-clothes",  # 5
    "face-mask",  # 6
    "coat",  # 7
    "socks",  # 8
    "pants",  # 9
    "torso-skin",  # 10
    "scarf-tie",  # 11
    "skirt",  # 12
    "face",  # 13
    "left-arm",  # 14
    "right-arm",  # 15
    "left-leg",  # 16
    "right-leg",  # 17
    "left-shoe",  # 18
    "right-shoe",  # 19
    "bag",  # 20
    "others",  # 21
)
NUM_PARTS = len(PARTS)  # 22, background included
PART_ID: Mapping[str, int] = MappingProxyType({name: i for i, name in enumerate(PARTS)})

BACKGROUND = 0
HAT, HAIR, GLOVE, GLASSES, UPPER_CLOTHES, FACE_MASK, COAT, SOCKS, PANTS = range(1, 10)
TORSO_SKIN, SCARF_TIE, SKIRT, FACE, LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG = range(10, 18)
LEFT_SHOE, RIGHT_SHOE, BAG, OTHERS = range(18, 22)

# Parts made of skin: they carry no color/size/pattern characteristic in CCIHP.
SKIN_PARTS: frozenset[int] = frozenset({TORSO_SKIN, FACE, LEFT_ARM, RIGHT_ARM, LEFT_LEG, RIGHT_LEG})
# Parts that carry characteristics (garments, accessories, hair). Hair has color and size
# (long/short/bald) but its pattern is always "none".
CHARACTERIZED_PARTS: frozenset[int] = frozenset(
    i for i in range(1, NUM_PARTS) if i not in SKIN_PARTS
)
# Which characteristics each characterized part can carry (CCIHP annotation rules as we apply
# them in the synthetic engine and the describer).
PART_HAS_SIZE: frozenset[int] = frozenset(
    {HAIR, UPPER_CLOTHES, COAT, SOCKS, PANTS, SCARF_TIE, SKIRT, LEFT_SHOE, RIGHT_SHOE, BAG, HAT}
)
PART_HAS_PATTERN: frozenset[int] = frozenset(CHARACTERIZED_PARTS - {HAIR, GLASSES})
PART_HAS_COLOR: frozenset[int] = CHARACTERIZED_PARTS

# Left/right pairs swapped by a horizontal flip.
FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (LEFT_ARM, RIGHT_ARM),
    (LEFT_LEG, RIGHT_LEG),
    (LEFT_SHOE, RIGHT_SHOE),
)

# Parts that describe one garment/region for a person-level description: left and right
# halves merge into one entry ("shoes", "arms", "legs").
DESCRIPTION_GROUPS: Mapping[str, tuple[int, ...]] = MappingProxyType(
    {
        "hat": (HAT,),
        "hair": (HAIR,),
        "glove": (GLOVE,),
        "glasses": (GLASSES,),
        "upper-clothes": (UPPER_CLOTHES,),
        "face-mask": (FACE_MASK,),
        "coat": (COAT,),
        "socks": (SOCKS,),
        "pants": (PANTS,),
        "scarf-tie": (SCARF_TIE,),
        "skirt": (SKIRT,),
        "shoes": (LEFT_SHOE, RIGHT_SHOE),
        "bag": (BAG,),
        "others": (OTHERS,),
    }
)

# --------------------------------------------------------------------------------------
# Characteristics. 0 = none in every map.
# --------------------------------------------------------------------------------------
SIZES: tuple[str, ...] = ("none", "short", "long", "undetermined", "sparse")
PATTERNS: tuple[str, ...] = ("none", "solid", "geometrical", "fancy", "letters")
COLORS: tuple[str, ...] = (
    "none",  # 0
    "dark",  # 1
    "medium",  # 2
    "light",  # 3
    "brown",  # 4
    "red",  # 5
    "pink",  # 6
    "yellow",  # 7
    "orange",  # 8
    "green",  # 9
    "blue",  # 10
    "purple",  # 11
    "multicolor",  # 12
)
NUM_SIZES, NUM_PATTERNS, NUM_COLORS = len(SIZES), len(PATTERNS), len(COLORS)
SIZE_ID: Mapping[str, int] = MappingProxyType({n: i for i, n in enumerate(SIZES)})
PATTERN_ID: Mapping[str, int] = MappingProxyType({n: i for i, n in enumerate(PATTERNS)})
COLOR_ID: Mapping[str, int] = MappingProxyType({n: i for i, n in enumerate(COLORS)})

# The four semantic maps of a sample/model, their class names and class counts.
CHARACTERISTICS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {"size": SIZES, "pattern": PATTERNS, "color": COLORS}
)
SEMANTIC_HEADS: Mapping[str, int] = MappingProxyType(
    {"attribute": NUM_PARTS, "size": NUM_SIZES, "pattern": NUM_PATTERNS, "color": NUM_COLORS}
)

# Human-readable wording of characteristics per part, for sentences ("short-sleeved top").
SIZE_WORDS: Mapping[int, Mapping[int, str]] = MappingProxyType(
    {
        HAIR: {1: "short", 2: "long", 4: "bald"},
        UPPER_CLOTHES: {1: "short-sleeved", 2: "long-sleeved"},
        COAT: {1: "short", 2: "long"},
        PANTS: {1: "short", 2: "long"},
        SKIRT: {1: "short", 2: "long"},
        SOCKS: {1: "short", 2: "long"},
        LEFT_SHOE: {1: "low", 2: "high"},
        RIGHT_SHOE: {1: "low", 2: "high"},
        SCARF_TIE: {1: "small", 2: "large"},
        BAG: {1: "small", 2: "large"},
        HAT: {1: "small", 2: "large"},
    }
)
PART_NOUNS: Mapping[int, str] = MappingProxyType(
    {
        HAT: "hat",
        HAIR: "hair",
        GLOVE: "gloves",
        GLASSES: "glasses",
        UPPER_CLOTHES: "top",
        FACE_MASK: "face mask",
        COAT: "coat",
        SOCKS: "socks",
        PANTS: "pants",
        SCARF_TIE: "scarf",
        SKIRT: "skirt",
        LEFT_SHOE: "shoes",
        RIGHT_SHOE: "shoes",
        BAG: "bag",
        OTHERS: "accessory",
    }
)

# Synonym hooks: the search vocabulary (operators) extends these; the table here only names
# the canonical words each label answers to, so labels and vocabulary never drift apart.
PART_SYNONYMS: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        HAT: ("hat", "cap", "beanie"),
        HAIR: ("hair",),
        GLOVE: ("glove", "gloves"),
        GLASSES: ("glasses", "sunglasses", "spectacles"),
        UPPER_CLOTHES: ("top", "shirt", "t-shirt", "sweater", "hoodie", "blouse", "dress"),
        FACE_MASK: ("mask", "face-mask"),
        COAT: ("coat", "jacket", "parka"),
        SOCKS: ("socks",),
        PANTS: ("pants", "trousers", "jeans", "shorts"),
        SCARF_TIE: ("scarf", "tie"),
        SKIRT: ("skirt",),
        LEFT_SHOE: ("shoes", "sneakers", "boots"),
        RIGHT_SHOE: ("shoes", "sneakers", "boots"),
        BAG: ("bag", "backpack", "handbag"),
        OTHERS: ("accessory",),
    }
)
COLOR_SYNONYMS: Mapping[int, tuple[str, ...]] = MappingProxyType(
    {
        1: ("dark", "black"),
        2: ("medium", "grey", "gray"),
        3: ("light", "white"),
        4: ("brown",),
        5: ("red",),
        6: ("pink",),
        7: ("yellow",),
        8: ("orange",),
        9: ("green",),
        10: ("blue",),
        11: ("purple",),
        12: ("multicolor", "multicolored"),
    }
)

# --------------------------------------------------------------------------------------
# CIHP (20 classes) -> CCIHP (22 classes).
# --------------------------------------------------------------------------------------
CIHP_PARTS: tuple[str, ...] = (
    "background", "hat", "hair", "glove", "sunglasses", "upper-clothes", "dress", "coat",
    "socks", "pants", "torso-skin", "scarf", "skirt", "face", "left-arm", "right-arm",
    "left-leg", "right-leg", "left-shoe", "right-shoe",
)  # fmt: skip
# CIHP's dress has no CCIHP class of its own; CCIHP annotates dresses as upper-clothes
# (with a long/short size), so that is where it goes. The CIHP reader takes this table as the
# default and lets a YAML file override it.
CIHP_TO_CCIHP: Mapping[int, int] = MappingProxyType(
    {
        0: BACKGROUND, 1: HAT, 2: HAIR, 3: GLOVE, 4: GLASSES, 5: UPPER_CLOTHES,
        6: UPPER_CLOTHES, 7: COAT, 8: SOCKS, 9: PANTS, 10: TORSO_SKIN, 11: SCARF_TIE,
        12: SKIRT, 13: FACE, 14: LEFT_ARM, 15: RIGHT_ARM, 16: LEFT_LEG, 17: RIGHT_LEG,
        18: LEFT_SHOE, 19: RIGHT_SHOE,
    }
)  # fmt: skip

# --------------------------------------------------------------------------------------
# COCO keypoints (PersonLab, the synthetic skeleton).
# --------------------------------------------------------------------------------------
KEYPOINTS: tuple[str, ...] = (
    "nose", "left_eye", "right_eye", "left_ear", "right_ear",
    "left_shoulder", "right_shoulder", "left_elbow", "right_elbow",
    "left_wrist", "right_wrist", "left_hip", "right_hip",
    "left_knee", "right_knee", "left_ankle", "right_ankle",
)  # fmt: skip
NUM_KEYPOINTS = len(KEYPOINTS)  # 17
KEYPOINT_ID: Mapping[str, int] = MappingProxyType({n: i for i, n in enumerate(KEYPOINTS)})
# COCO's skeleton, 0-based (the annotation file stores it 1-based).
SKELETON: tuple[tuple[int, int], ...] = (
    (15, 13), (13, 11), (16, 14), (14, 12), (11, 12), (5, 11), (6, 12), (5, 6), (5, 7),
    (6, 8), (7, 9), (8, 10), (1, 2), (0, 1), (0, 2), (1, 3), (2, 4), (3, 5), (4, 6),
)  # fmt: skip
# PersonLab's kinematic tree: 16 edges rooted at the nose, used for mid-range offsets.
KINEMATIC_TREE: tuple[tuple[int, int], ...] = (
    (0, 1), (1, 3), (0, 2), (2, 4), (0, 5), (5, 7), (7, 9), (5, 11), (11, 13), (13, 15),
    (0, 6), (6, 8), (8, 10), (6, 12), (12, 14), (14, 16),
)  # fmt: skip
KEYPOINT_FLIP_PAIRS: tuple[tuple[int, int], ...] = (
    (1, 2), (3, 4), (5, 6), (7, 8), (9, 10), (11, 12), (13, 14), (15, 16),
)  # fmt: skip
# COCO's per-keypoint OKS sigmas (pycocotools' defaults), for expected-OKS scoring.
KEYPOINT_SIGMAS: tuple[float, ...] = (
    0.026, 0.025, 0.025, 0.035, 0.035, 0.079, 0.079, 0.072, 0.072, 0.062, 0.062,
    0.107, 0.107, 0.087, 0.087, 0.089, 0.089,
)  # fmt: skip

# --------------------------------------------------------------------------------------
# Visualisation palettes (RGB). Part colours follow the usual LIP/CIHP palette, extended.
# --------------------------------------------------------------------------------------
PART_PALETTE = np.array(
    [
        (0, 0, 0), (128, 0, 0), (255, 0, 0), (0, 85, 0), (170, 0, 51), (255, 85, 0),
        (0, 0, 85), (0, 119, 221), (85, 85, 0), (0, 85, 85), (85, 51, 0), (52, 86, 128),
        (0, 128, 0), (0, 0, 255), (51, 170, 221), (0, 255, 255), (85, 255, 170),
        (170, 255, 85), (255, 255, 0), (255, 170, 0), (170, 0, 255), (255, 0, 255),
    ],
    dtype=np.uint8,
)  # fmt: skip
PART_PALETTE.setflags(write=False)
# A representative RGB for each color class (for thumbnails, legends, the synthetic engine's
# class centres are sampled around these in a perceptual space).
COLOR_PALETTE = np.array(
    [
        (0, 0, 0), (30, 30, 35), (128, 128, 128), (235, 235, 230), (120, 75, 40),
        (200, 30, 35), (240, 140, 180), (240, 220, 40), (245, 130, 20), (40, 150, 60),
        (40, 80, 200), (120, 50, 160), (200, 120, 200),
    ],
    dtype=np.uint8,
)  # fmt: skip
COLOR_PALETTE.setflags(write=False)


def _lookup(table: Sequence[str], value: int | str, kind: str) -> int:
    if isinstance(value, str):
        try:
            return table.index(value)
        except ValueError:
            raise ValueError(
                f"unknown {kind} name {value!r}; expected one of {list(table)}"
            ) from None
    if not 0 <= int(value) < len(table):
        raise ValueError(f"{kind} id {value} out of range [0, {len(table) - 1}]")
    return int(value)


def part_id(value: int | str) -> int:
    """Returns the CCIHP part id of a name or id, raising ``ValueError`` if unknown."""
    return _lookup(PARTS, value, "part")


def characteristic_id(kind: str, value: int | str) -> int:
    """Returns the id of a characteristic value (``kind`` is size, pattern or color)."""
    if kind not in CHARACTERISTICS:
        raise ValueError(
            f"unknown characteristic {kind!r}; expected one of {list(CHARACTERISTICS)}"
        )
    return _lookup(CHARACTERISTICS[kind], value, kind)


def flip_part_map(labels: np.ndarray) -> np.ndarray:
    """Mirrors a part-label map horizontally and swaps left/right classes.

    Args:
        labels: (H, W) integer CCIHP part ids.

    Returns:
        (H, W) array of the same dtype, flipped, with left/right ids exchanged.
    """
    lut = np.arange(256, dtype=labels.dtype if labels.dtype.itemsize == 1 else np.int64)
    for left, right in FLIP_PAIRS:
        lut[left], lut[right] = right, left
    flipped = labels[:, ::-1]
    return lut[flipped].astype(labels.dtype, copy=False)


def flip_keypoints(keypoints: np.ndarray, width: int) -> np.ndarray:
    """Mirrors (N, K, 3) pixel keypoints in an image ``width`` wide and swaps left/right."""
    out = keypoints.copy()
    out[..., 0] = np.where(out[..., 2] > 0, width - 1 - out[..., 0], out[..., 0])
    order = np.arange(NUM_KEYPOINTS)
    for left, right in KEYPOINT_FLIP_PAIRS:
        order[left], order[right] = right, left
    return out[:, order]


def cihp_to_ccihp_lut(mapping: Mapping[int, int] | None = None) -> np.ndarray:
    """A 256-entry lookup table from CIHP class ids to CCIHP ids (255 stays 255).

    Unmapped ids map to 255 (ignored) so a surprise in a user's data is visible in the
    metrics rather than silently merged into background.
    """
    mapping = CIHP_TO_CCIHP if mapping is None else mapping
    lut = np.full(256, 255, dtype=np.uint8)
    for src, dst in mapping.items():
        if not 0 <= int(src) < 256 or not (0 <= int(dst) < NUM_PARTS or int(dst) == 255):
            raise ValueError(f"CIHP->CCIHP mapping {src}->{dst} out of range")
        lut[int(src)] = int(dst)
    return lut
