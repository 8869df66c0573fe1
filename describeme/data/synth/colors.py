"""Colors sampled per named color class in CIE LCh (a perceptual space), converted to sRGB."""

from __future__ import annotations

import math

import numpy as np

from describeme.labels import COLOR_ID

# (L range, C range, hue range in degrees) per class; hue ranges may wrap past 360.
COLOR_CLASS_LCH: dict[int, tuple[tuple[float, float], tuple[float, float], tuple[float, float]]] = {
    COLOR_ID["dark"]: ((6, 24), (0, 10), (0, 360)),
    COLOR_ID["medium"]: ((42, 64), (0, 7), (0, 360)),
    COLOR_ID["light"]: ((84, 97), (0, 7), (0, 360)),
    COLOR_ID["brown"]: ((26, 48), (18, 38), (45, 75)),
    COLOR_ID["red"]: ((38, 54), (55, 78), (22, 40)),
    COLOR_ID["pink"]: ((66, 84), (25, 45), (345, 370)),
    COLOR_ID["yellow"]: ((82, 93), (60, 85), (88, 100)),
    COLOR_ID["orange"]: ((60, 72), (60, 80), (52, 68)),
    COLOR_ID["green"]: ((38, 68), (35, 60), (125, 160)),
    COLOR_ID["blue"]: ((28, 58), (35, 65), (255, 295)),
    COLOR_ID["purple"]: ((28, 52), (35, 60), (305, 330)),
}
MULTICOLOR = COLOR_ID["multicolor"]
CHROMATIC = (4, 5, 6, 7, 8, 9, 10, 11)
# Natural hair colors (dark, brown, yellow = blond, medium = grey, light = white, orange = ginger)
# with weights; any other class is possible but rare (dyed hair).
HAIR_COLORS = (1, 4, 7, 2, 3, 8, 5, 6, 9, 10, 11)
HAIR_WEIGHTS = np.array([40, 25, 12, 6, 3, 5, 2, 2, 1, 1, 1], dtype=float)
HAIR_CUMULATIVE = np.cumsum(HAIR_WEIGHTS)

_D65 = np.array([0.95047, 1.0, 1.08883])
_XYZ_TO_RGB = np.array(
    [[3.2404542, -1.5371385, -0.4985314], [-0.9692660, 1.8760108, 0.0415560],
     [0.0556434, -0.2040259, 1.0572252]]
)  # fmt: skip


def lch_to_rgb(lch: np.ndarray) -> np.ndarray:
    """Converts (..., 3) CIE LCh(ab) (D65) to (..., 3) float sRGB in [0, 1], clipped."""
    lch = np.asarray(lch, dtype=np.float64)
    lum, chroma, hue = lch[..., 0], lch[..., 1], np.deg2rad(lch[..., 2])
    a, b = chroma * np.cos(hue), chroma * np.sin(hue)
    fy = (lum + 16) / 116
    f = np.stack([fy + a / 500, fy, fy - b / 200], axis=-1)
    xyz = np.where(f > 6 / 29, f**3, 3 * (6 / 29) ** 2 * (f - 4 / 29)) * _D65
    lin = xyz @ _XYZ_TO_RGB.T
    srgb = np.where(lin <= 0.0031308, 12.92 * lin, 1.055 * np.abs(lin) ** (1 / 2.4) - 0.055)
    return np.clip(srgb, 0.0, 1.0)


def _lch_to_rgb8(lum: float, chroma: float, hue_deg: float) -> tuple[int, int, int]:
    """Scalar :func:`lch_to_rgb` in plain Python (numpy is slow on 3-element arrays)."""
    hue = math.radians(hue_deg)
    a, b = chroma * math.cos(hue), chroma * math.sin(hue)
    fy = (lum + 16) / 116
    xyz = []
    for f, white in zip((fy + a / 500, fy, fy - b / 200), _D65, strict=True):
        xyz.append(white * (f**3 if f > 6 / 29 else 3 * (6 / 29) ** 2 * (f - 4 / 29)))
    out = []
    for row in _XYZ_TO_RGB:
        lin = row[0] * xyz[0] + row[1] * xyz[1] + row[2] * xyz[2]
        srgb = 12.92 * lin if lin <= 0.0031308 else 1.055 * abs(lin) ** (1 / 2.4) - 0.055
        out.append(int(round(min(1.0, max(0.0, srgb)) * 255)))
    return out[0], out[1], out[2]


def _class_table(color_id: int, size: int = 1024) -> np.ndarray:
    """(size, 3) uint8 RGB colors spread uniformly over a class's LCh box (fixed seed)."""
    (l0, l1), (c0, c1), (h0, h1) = COLOR_CLASS_LCH[color_id]
    u = np.random.default_rng(color_id).random((size, 3))
    lch = np.stack(
        [l0 + (l1 - l0) * u[:, 0], c0 + (c1 - c0) * u[:, 1], (h0 + (h1 - h0) * u[:, 2]) % 360],
        axis=1,
    )
    return np.round(lch_to_rgb(lch) * 255).astype(np.uint8)


# Pre-sampled per class: converting one color at a time costs more than rendering a person.
COLOR_TABLES = {color_id: _class_table(color_id) for color_id in COLOR_CLASS_LCH}
for _table in COLOR_TABLES.values():
    _table.setflags(write=False)


def sample_rgb(rng: np.random.Generator, color_id: int) -> np.ndarray:
    """One (3,) uint8 RGB color of a named class (multicolor draws a chromatic class)."""
    if color_id == MULTICOLOR:
        color_id = CHROMATIC[int(rng.integers(len(CHROMATIC)))]
    table = COLOR_TABLES[color_id]
    return table[int(rng.integers(len(table)))]


def sample_palette(rng: np.random.Generator, color_id: int) -> np.ndarray:
    """(3, 3) uint8 RGB: a main color, a tone of it and a contrasting accent.

    Multicolor garments get three different chromatic classes so no single class dominates.
    """
    if color_id == MULTICOLOR:
        classes = rng.permutation(len(CHROMATIC))[:3]
        return np.stack([sample_rgb(rng, CHROMATIC[int(c)]) for c in classes])
    main = sample_rgb(rng, color_id)
    u = rng.random(2)
    tone = [min(255, int(c * (0.6 + 0.25 * u[0]) + 25 * u[1])) for c in main.tolist()]
    accent = (235, 235, 230) if sum(main.tolist()) < 330 else (25, 25, 30)
    return np.array([main.tolist(), tone, accent], dtype=np.uint8)


def sample_skin(rng: np.random.Generator) -> np.ndarray:
    """(3,) uint8 RGB skin tone, from very dark to very light."""
    u = rng.random(3)
    return np.array(_lch_to_rgb8(25 + 60 * u[0], 12 + 18 * u[1], 40 + 25 * u[2]), dtype=np.uint8)


def sample_hair_color(rng: np.random.Generator) -> int:
    """A hair color class id, natural colors first."""
    return HAIR_COLORS[weighted_index(rng, HAIR_CUMULATIVE)]


def weighted_index(rng: np.random.Generator, cumulative: np.ndarray) -> int:
    """Index drawn with probabilities given as a cumulative sum ending at 1 (fast ``choice``)."""
    return int(np.searchsorted(cumulative, rng.random() * cumulative[-1], side="right"))
