"""Paints a person's RGB crop from its part-label map: colors, textures, shading.

Painting reads the label map and never changes it, so labels stay exact. Textures are in
the person's local coordinates and seeded per part, so a garment looks the same in every
video frame.
"""

from __future__ import annotations

import cv2
import numpy as np

from describeme.data.synth.outfit import Outfit, PartStyle
from describeme.labels import FACE, SKIN_PARTS

WORDS = (
    "NY",
    "LOVE",
    "23",
    "GO",
    "RUN",
    "ZEN",
    "ART",
    "OK",
    "HI",
    "99",
    "SUN",
    "CITY",
    "TEAM",
    "BE",
    "XO",
    "COOL",
    "7",
    "ABC",
    "WOW",
    "USA",
)


def _pattern_index(
    style: PartStyle, shape: tuple[int, int], origin: tuple[int, int], scale: float
) -> np.ndarray:
    """(h, w) uint8 palette index (0 main, 1 tone, 2 accent) of a texture over a box."""
    rng = np.random.default_rng(style.texture_seed)
    h, w = shape
    period = max(2.0, scale * rng.uniform(0.025, 0.06))
    ys = np.arange(origin[1], origin[1] + h, dtype=np.float32)[:, None]
    xs = np.arange(origin[0], origin[0] + w, dtype=np.float32)[None, :]
    second = 2 if rng.random() < 0.5 or style.color == 12 else 1
    kind = style.texture
    if kind == "stripes":
        angle = rng.choice([0.0, np.pi / 2, np.pi / 4, -np.pi / 4])
        band = np.floor((xs * np.cos(angle) + ys * np.sin(angle)) / period).astype(np.int32) % 2
        return (band * second).astype(np.uint8)
    if kind == "checks":
        cells = (np.floor(xs / period) + np.floor(ys / period)).astype(np.int32) % 2
        return (cells * second).astype(np.uint8)
    if kind == "dots":
        dx, dy = (xs % (2 * period)) - period, (ys % (2 * period)) - period
        return ((dx * dx + dy * dy) < (0.45 * period) ** 2).astype(np.uint8) * second
    if kind in ("camouflage", "blobs"):
        cell = max(2, int(period * (1.5 if kind == "blobs" else 1.0)))
        gh, gw = h // cell + 2, w // cell + 2
        field = cv2.resize(
            rng.random((gh, gw), dtype=np.float32),
            (gw * cell, gh * cell),
            interpolation=cv2.INTER_CUBIC,
        )[:h, :w]
        if kind == "blobs":
            return (field > 0.6).astype(np.uint8) * 2
        return np.digitize(field, [0.4, 0.65]).astype(np.uint8)
    if kind == "florals":
        out = np.zeros(shape, dtype=np.uint8)
        radius = max(1, int(period * 0.35))
        count = max(1, int(h * w / (3 * period) ** 2))
        for cx, cy in zip(rng.integers(0, w, count), rng.integers(0, h, count), strict=True):
            for a in np.linspace(0, 2 * np.pi, 5, endpoint=False):
                petal = (int(cx + 1.3 * radius * np.cos(a)), int(cy + 1.3 * radius * np.sin(a)))
                cv2.circle(out, petal, radius, 2, -1)
            cv2.circle(out, (int(cx), int(cy)), max(1, radius // 2 + 1), 1, -1)
        return out
    if kind == "text":
        out = np.zeros(shape, dtype=np.uint8)
        word = str(rng.choice(WORDS))
        font_scale = max(0.2, min(w / (22.0 * len(word)), h / 30.0))
        thick = max(1, int(font_scale * 2))
        (tw, th), _ = cv2.getTextSize(word, cv2.FONT_HERSHEY_SIMPLEX, font_scale, thick)
        org = (max(0, (w - tw) // 2), min(h - 1, (h + th) // 2))
        cv2.putText(out, word, org, cv2.FONT_HERSHEY_SIMPLEX, font_scale, 2, thick, cv2.LINE_8)
        return out
    return np.zeros(shape, dtype=np.uint8)


def paint_person(
    parts: np.ndarray, outfit: Outfit, height_px: float, rng: np.random.Generator
) -> np.ndarray:
    """Paints a person crop.

    Args:
        parts: (h, w) uint8 local part map.
        outfit: the person's part styles and skin color.
        height_px: person height, sets texture scale.
        rng: per-person random stream (shading direction and strength).

    Returns:
        (h, w, 3) uint8 RGB (undefined where ``parts == 0``).
    """
    lut = np.zeros((1, 256, 3), dtype=np.uint8)
    for part in SKIN_PARTS:
        lut[0, part] = outfit.skin
    for part, style in outfit.parts.items():
        lut[0, part] = style.palette[0]
    rgb = cv2.LUT(cv2.merge([parts, parts, parts]), lut)
    for part, style in outfit.parts.items():
        if style.texture == "solid":
            continue
        mask = (parts == part).view(np.uint8)
        x0, y0, w, h = cv2.boundingRect(mask)
        if w == 0:  # not visible on this person (covered by another part)
            continue
        index = _pattern_index(style, (h, w), (0, 0), height_px)
        window = (slice(y0, y0 + h), slice(x0, x0 + w))
        cv2.copyTo(style.palette[index], mask[window], rgb[window])
    _face_details(rgb, parts, outfit, height_px)
    return _shade(rgb, parts, rng)


def _face_details(rgb: np.ndarray, parts: np.ndarray, outfit: Outfit, height_px: float) -> None:
    """Darker eyes/mouth hints on large faces (paint only; the label stays face)."""
    if height_px < 80:
        return
    face = (parts == FACE).view(np.uint8)
    x, y, w, h = cv2.boundingRect(face)
    if w * h < 60 or h < 0.08 * height_px:  # small or only a sliver (seen from the back)
        return
    cy, cx = h // 2, w // 2
    r = max(1, int(height_px * 0.006))
    eye_dx, eye_dy = int(height_px * 0.018), int(height_px * 0.012)
    spots = np.zeros((h, w), dtype=np.uint8)
    for ex in (cx - eye_dx, cx + eye_dx):
        cv2.circle(spots, (ex, cy - eye_dy), r, 1, -1)
    cv2.line(spots, (cx - eye_dx // 2, cy + 2 * eye_dy), (cx + eye_dx // 2, cy + 2 * eye_dy), 1, r)
    window = (slice(y, y + h), slice(x, x + w))
    dark = np.empty((h, w, 3), dtype=np.uint8)
    dark[:] = (outfit.skin.astype(np.int32) * 45 // 100).astype(np.uint8)
    cv2.copyTo(dark, cv2.bitwise_and(spots, face[window]), rgb[window])


def _shade(rgb: np.ndarray, parts: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Darker part edges (fabric folds, limb rounding) and an overall brightness per person."""
    edges = cv2.morphologyEx(parts, cv2.MORPH_GRADIENT, np.ones((3, 3), np.uint8))
    brightness = float(rng.uniform(0.75, 1.15))
    out = cv2.convertScaleAbs(rgb, alpha=brightness)
    cv2.copyTo(cv2.convertScaleAbs(rgb, alpha=0.75 * brightness), edges, out)
    return out
