"""Per-person outfits: which parts a person shows and each part's characteristic classes."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

import numpy as np

from describeme.data.synth import colors
from describeme.data.synth.config import OutfitConfig
from describeme.labels import (
    BAG,
    COAT,
    FACE_MASK,
    GLASSES,
    GLOVE,
    HAIR,
    HAT,
    LEFT_SHOE,
    OTHERS,
    PANTS,
    PART_HAS_PATTERN,
    PART_HAS_SIZE,
    RIGHT_SHOE,
    SCARF_TIE,
    SKIRT,
    SOCKS,
    UPPER_CLOTHES,
)  # fmt: skip

SHORT, LONG, UNDETERMINED, SPARSE = 1, 2, 3, 4
SOLID, GEOMETRICAL, FANCY, LETTERS = 1, 2, 3, 4
TEXTURES = {
    GEOMETRICAL: ("stripes", "checks", "dots"),
    FANCY: ("florals", "camouflage", "blobs"),
    LETTERS: ("text",),
    SOLID: ("solid",),
}
# Garment color classes: neutral colors dominate real clothing; multicolor is id 12.
COLOR_CUMULATIVE = np.cumsum([14, 10, 9, 6, 6, 4, 4, 3, 5, 9, 3, 4], dtype=float)
PATTERN_CUMULATIVE = np.cumsum([0.55, 0.2, 0.12, 0.13])


@dataclass
class PartStyle:
    """The look of one (person, part) instance.

    Attributes:
        color, size, pattern: characteristic class ids (0 where the part has none).
        palette: (3, 3) uint8 RGB main, tone and accent colors.
        texture: the texture painted for the pattern (stripes, florals, text, ...).
        texture_seed: seeds the texture so a part looks the same in every video frame.
    """

    color: int
    size: int
    pattern: int
    palette: np.ndarray
    texture: str = "solid"
    texture_seed: int = 0


@dataclass
class Outfit:
    """A person's appearance: part styles plus shape flags the rasteriser needs."""

    parts: dict[int, PartStyle]
    skin: np.ndarray  # (3,) uint8 RGB
    coat_open: bool = False
    facial_hair: bool = False
    neckline: bool = False  # shows torso skin
    extras: dict[str, float] = field(default_factory=dict)

    def without(self, part: int) -> Outfit:
        """A copy without ``part`` (a person taking a coat off)."""
        parts = {k: v for k, v in self.parts.items() if k != part}
        return replace(self, parts=parts)


def _style(
    rng: np.random.Generator, part: int, size: int = 0, color: int | None = None
) -> PartStyle:
    if color is None:
        color = 1 + colors.weighted_index(rng, COLOR_CUMULATIVE)
    pattern = 0
    if part in PART_HAS_PATTERN:
        pattern = 1 + colors.weighted_index(rng, PATTERN_CUMULATIVE)
        if color == colors.MULTICOLOR and pattern == SOLID:
            pattern = GEOMETRICAL if rng.random() < 0.5 else FANCY
    choices = TEXTURES[pattern] if pattern else ("solid",)
    texture = choices[int(rng.integers(len(choices)))]
    return PartStyle(
        color=color,
        size=size if part in PART_HAS_SIZE else 0,
        pattern=pattern,
        palette=colors.sample_palette(rng, color),
        texture=texture,
        texture_seed=int(rng.integers(0, 2**31)),
    )


def _coin(rng: np.random.Generator, p: float) -> bool:
    return bool(rng.random() < p)


def sample_outfit(rng: np.random.Generator, cfg: OutfitConfig) -> Outfit:
    """Samples every part a person shows and its classes (CCIHP rules: skin carries none)."""
    parts: dict[int, PartStyle] = {}
    size_of = lambda: LONG if _coin(rng, 0.5) else SHORT  # noqa: E731
    hair_size = SPARSE if _coin(rng, cfg.bald) else (LONG if _coin(rng, cfg.long_hair) else SHORT)
    parts[HAIR] = _style(rng, HAIR, hair_size, colors.sample_hair_color(rng))
    parts[HAIR].pattern, parts[HAIR].texture = 0, "solid"
    coat = _coin(rng, cfg.coat)
    upper_size = UNDETERMINED if coat and _coin(rng, 0.3) else size_of()
    parts[UPPER_CLOTHES] = _style(rng, UPPER_CLOTHES, upper_size)
    if coat:
        parts[COAT] = _style(rng, COAT, size_of())
    skirt = _coin(rng, cfg.skirt)
    if skirt:
        parts[SKIRT] = _style(rng, SKIRT, size_of())
    if not skirt or _coin(rng, 0.15):  # leggings under a skirt are long pants
        parts[PANTS] = _style(rng, PANTS, LONG if skirt else size_of())
    shoe = _style(rng, LEFT_SHOE, LONG if _coin(rng, 0.25) else SHORT)
    if _coin(rng, 0.05):
        shoe.size = UNDETERMINED
    parts[LEFT_SHOE], parts[RIGHT_SHOE] = shoe, replace(shoe)
    optional = (
        (HAT, cfg.hat, True),
        (GLOVE, cfg.glove, False),
        (FACE_MASK, cfg.face_mask, False),
        (SOCKS, cfg.socks, True),
        (SCARF_TIE, cfg.scarf_tie, True),
        (BAG, cfg.bag, True),
        (OTHERS, cfg.others, False),
    )
    for part, prob, sized in optional:
        if _coin(rng, prob):
            parts[part] = _style(rng, part, size_of() if sized else 0)
    if _coin(rng, cfg.glasses):  # sunglasses (dark) or clear glasses (light), sometimes colored
        glasses_color = (1, 3, 1, 3, 4, 5, 10)[int(rng.integers(7))]
        parts[GLASSES] = _style(rng, GLASSES, 0, glasses_color)
    neckline = _coin(rng, cfg.torso_skin)
    return Outfit(
        parts=parts,
        skin=colors.sample_skin(rng),
        coat_open=_coin(rng, 0.5),
        facial_hair=_coin(rng, cfg.facial_hair),
        neckline=neckline,
        extras={"tank_top": float(neckline and _coin(rng, 0.3))},
    )


def outfit_luts(outfit: Outfit) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(22,) uint8 color, size and pattern ids per part id (0 for skin and absent parts)."""
    luts = np.zeros((3, 22), dtype=np.uint8)
    for part, style in outfit.parts.items():
        luts[:, part] = (style.color, style.size, style.pattern)
    return luts[0], luts[1], luts[2]
