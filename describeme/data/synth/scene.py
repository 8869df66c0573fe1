"""Procedural backgrounds, scene objects that occlude people, and photometric degradations."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from describeme.data.synth import colors

OCCLUDER_KINDS = ("pole", "bench", "bin", "car", "bush", "sign")


@dataclass
class Occluder:
    """A scene object standing on the ground at ``foot_xy``, ``size_px`` tall."""

    kind: str
    foot_xy: tuple[float, float]
    size_px: float
    seed: int


def _any_color(rng: np.random.Generator, muted: bool = True) -> np.ndarray:
    rgb = colors.sample_rgb(rng, int(rng.integers(1, 12))).astype(np.float32)
    if muted:  # scenes are mostly desaturated; keeps people from being trivially salient
        gray = float(rgb[0] + rgb[1] + rgb[2]) / 3
        rgb = gray + (rgb - gray) * rng.uniform(0.2, 0.8)
    return rgb


def _blotches(seed: int, shape: tuple[int, int]) -> np.ndarray:
    """(h, w) float32 smooth relative brightness variation (stains, uneven light).

    Seeded by the scene, so it stays put over the frames of a video.
    """
    rng = np.random.default_rng(seed)
    cells = int(rng.integers(3, 12))
    grid = rng.standard_normal((cells, cells * 4 // 3)).astype(np.float32) * rng.uniform(0.02, 0.1)
    return cv2.resize(grid, (shape[1], shape[0]), interpolation=cv2.INTER_CUBIC)


def render_background(
    seed: int, width: int, height: int, horizon: float, clutter: int = 6
) -> np.ndarray:
    """(H, W, 3) uint8 RGB scene: wall or sky above ``horizon`` (pixel row), floor below,
    with ``clutter`` background objects."""
    rng = np.random.default_rng(seed)
    hz = int(np.clip(horizon, 0, height))
    wall, floor = _any_color(rng), _any_color(rng)
    ys = np.linspace(0, 1, height, dtype=np.float32)[:, None]
    rows = np.empty((height, 3), dtype=np.float32)
    rows[:hz] = wall * (1 + rng.uniform(-0.25, 0.25) * ys[:hz])
    rows[hz:] = floor * (0.8 + 0.4 * ys[hz:])
    if rng.random() < 0.25 and hz > 0:  # outdoors: sky instead of a wall
        sky = np.array([120.0, 160, 220]) * rng.uniform(0.7, 1.1)
        rows[:hz] = sky * np.linspace(0.8, 1.15, hz, dtype=np.float32)[:, None]
    column = np.clip(rows, 0, 255).astype(np.uint8)[:, None, :]
    img = cv2.resize(column, (width, height), interpolation=cv2.INTER_NEAREST)
    _wall_texture(rng, img, hz)
    _floor_texture(rng, img, hz)
    for _ in range(clutter):
        _clutter(rng, img, hz)
    return img


def _wall_texture(rng: np.random.Generator, img: np.ndarray, hz: int) -> None:
    w = img.shape[1]
    kind = rng.choice(["plain", "bricks", "panels", "windows"])
    line = _any_color(rng) * 0.6
    if kind == "bricks" and hz > 4:
        step = int(rng.integers(6, 20))
        for k, y in enumerate(range(0, hz, step)):
            cv2.line(img, (0, y), (w, y), line.tolist(), 1)
            for x in range((k % 2) * step, w, 2 * step):
                cv2.line(img, (x, y), (x, min(hz, y + step)), line.tolist(), 1)
    elif kind == "panels":
        step = int(rng.integers(20, 90))
        for x in range(int(rng.integers(0, step)), w, step):
            cv2.line(img, (x, 0), (x, hz), line.tolist(), int(rng.integers(1, 4)))
    elif kind == "windows" and hz > 20:
        ww, wh = int(rng.integers(15, 60)), int(rng.integers(15, max(16, hz // 2)))
        glass = _any_color(rng, muted=False) * 0.5 + 80
        for x in range(int(rng.integers(0, ww)), w - ww, int(ww * rng.uniform(1.4, 2.5))):
            y0 = int(rng.integers(0, max(1, hz - wh)))
            cv2.rectangle(img, (x, y0), (x + ww, min(hz, y0 + wh)), glass.tolist(), -1)
            cv2.rectangle(img, (x, y0), (x + ww, min(hz, y0 + wh)), line.tolist(), 2)


def _floor_texture(rng: np.random.Generator, img: np.ndarray, hz: int) -> None:
    h, w = img.shape[:2]
    kind = rng.choice(["plain", "tiles", "planks", "road"])
    line = (_any_color(rng) * 0.7).tolist()
    if kind == "tiles":
        vx = rng.uniform(0, w)
        for k in range(-12, 13):
            cv2.line(img, (int(vx), hz), (int(vx + k * w / 6), h), line, 1)
        y, step = float(hz), 2.0
        while y < h:
            cv2.line(img, (0, int(y)), (w, int(y)), line, 1)
            step *= 1.35
            y += step
    elif kind == "planks":
        step = int(rng.integers(4, 14))
        for y in range(hz, h, step):
            cv2.line(img, (0, y), (w, y), line, 1)
    elif kind == "road":
        cv2.line(
            img, (0, int(hz + (h - hz) * 0.6)), (w, int(hz + (h - hz) * 0.6)), [220, 220, 200], 3
        )


def _clutter(rng: np.random.Generator, img: np.ndarray, hz: int) -> None:
    """Background furniture and decoration behind everyone (posters, trees, lamps, boxes)."""
    h, w = img.shape[:2]
    color = _any_color(rng, muted=rng.random() < 0.7).tolist()
    x, y = int(rng.integers(0, w)), int(rng.integers(0, max(1, hz + (h - hz) // 3)))
    size = int(rng.integers(6, max(8, h // 4)))
    kind = rng.integers(0, 5)
    if kind == 0:  # poster with text
        cv2.rectangle(img, (x, y), (x + size, y + int(size * 1.4)), color, -1)
        cv2.putText(
            img,
            str(rng.choice(["SALE", "OPEN", "EXIT", "CAFE", "BUS"])),
            (x + 2, y + size // 2),
            cv2.FONT_HERSHEY_SIMPLEX,
            size / 60,
            (20, 20, 20),
            1,
        )
    elif kind == 1:  # tree
        base = max(y, hz)
        cv2.line(img, (x, base), (x, base - size), (70, 50, 30), max(1, size // 10))
        cv2.circle(img, (x, base - size), size // 2, [40, 110 + int(rng.integers(0, 60)), 50], -1)
    elif kind == 2:  # lamp post
        base = max(y, hz)
        cv2.line(img, (x, base), (x, base - 2 * size), color, max(1, size // 12))
        cv2.circle(img, (x, base - 2 * size), max(2, size // 8), (240, 240, 200), -1)
    elif kind == 3:
        cv2.circle(img, (x, y), size // 2, color, -1)
    else:
        cv2.rectangle(img, (x, y), (x + size, y + size // 2), color, -1)


def _occluder_shape(
    local: np.ndarray, kind: str, foot: tuple[int, int], s: float, rng: np.random.Generator
) -> None:
    """Draws the silhouette (value 1) of a scene object ``s`` pixels tall standing at ``foot``."""
    cx, cy = foot
    si = int(s)
    if kind == "pole":
        cv2.rectangle(local, (cx - max(1, si // 25), cy - si), (cx + max(1, si // 25), cy), 1, -1)
    elif kind == "bench":
        cv2.rectangle(local, (cx - si // 2, cy - si // 3), (cx + si // 2, cy - si // 4), 1, -1)
        cv2.rectangle(
            local,
            (cx - si // 2, cy - si // 2),
            (cx + si // 2, cy - si // 2 + max(1, si // 15)),
            1,
            -1,
        )
        for dx in (-si // 2 + 1, si // 2 - 2):
            cv2.rectangle(local, (cx + dx, cy - si // 3), (cx + dx + max(1, si // 20), cy), 1, -1)
    elif kind == "bin":
        cv2.rectangle(local, (cx - si // 5, cy - si // 2), (cx + si // 5, cy), 1, -1)
    elif kind == "car":
        cv2.rectangle(
            local, (cx - int(1.4 * s), cy - int(0.45 * s)), (cx + int(1.4 * s), cy - si // 8), 1, -1
        )
        cv2.rectangle(
            local, (cx - int(0.8 * s), cy - int(0.8 * s)), (cx + int(0.7 * s), cy - si // 3), 1, -1
        )
        for wheel in (-0.9, 0.9):
            cv2.circle(local, (cx + int(wheel * s), cy - si // 8), max(1, si // 6), 1, -1)
    elif kind == "bush":
        for _ in range(6):
            cv2.circle(
                local,
                (cx + int(rng.normal(0, s / 4)), cy - int(abs(rng.normal(s / 4, s / 8)))),
                max(1, si // 5),
                1,
                -1,
            )
    else:  # sign on a post
        cv2.rectangle(local, (cx - max(1, si // 40), cy - si), (cx + max(1, si // 40), cy), 1, -1)
        cv2.rectangle(local, (cx - si // 5, cy - si), (cx + si // 5, cy - int(0.7 * s)), 1, -1)


def draw_occluder(
    occ: Occluder, shape: tuple[int, int]
) -> tuple[np.ndarray, np.ndarray, tuple[int, int]]:
    """Rasterises a scene object in a local crop.

    Returns:
        mask (h, w) bool, rgb (h, w, 3) uint8 and the crop's (x, y) image offset.
    """
    rng = np.random.default_rng(occ.seed)
    s = max(4.0, occ.size_px)
    fx, fy = occ.foot_xy
    x0, y0 = int(fx - 1.6 * s), int(fy - 1.6 * s)
    local = np.zeros((int(1.7 * s) + 2, int(3.2 * s) + 2), dtype=np.uint8)
    cx, cy = int(fx - x0), int(fy - y0)
    color = _any_color(rng, muted=rng.random() < 0.6)
    if occ.kind == "bush":
        color = np.array([40.0, 100 + rng.uniform(0, 60), 45])
    _occluder_shape(local, occ.kind, (cx, cy), s, rng)
    bx, by, bw, bh = cv2.boundingRect(local)  # the canvas is generous; paint only the object
    if bw == 0 or bh == 0:
        return np.zeros((0, 0), dtype=bool), np.zeros((0, 0, 3), dtype=np.uint8), (x0, y0)
    local = local[by : by + bh, bx : bx + bw]
    shade = np.linspace(1.15, 0.75, bh, dtype=np.float32)[:, None, None]
    column = np.clip(color * shade, 0, 255).astype(np.uint8)  # (h, 1, 3)
    rgb = cv2.resize(column, (bw, bh), interpolation=cv2.INTER_NEAREST).reshape(bh, bw, 3)
    return local > 0, rgb, (x0 + bx, y0 + by)


GAIN_CELL = 8  # the illumination map is built at 1/8 resolution: it is smooth anyway


def apply_photometrics(
    img: np.ndarray, params: dict, rng: np.random.Generator, blotch_seed: int = 0
) -> np.ndarray:
    """Light gradient, blotches, soft shadow, color cast, blur, noise, JPEG on (H, W, 3) uint8.

    Works in uint8 with saturation throughout (gain in 1/128 steps): several times faster
    than float images, and the quantisation is below the noise added anyway.
    """
    h, w = img.shape[:2]
    gh, gw = max(2, h // GAIN_CELL), max(2, w // GAIN_CELL)
    gain = (
        1.0
        + params["gradient"] * np.linspace(-1, 1, gw, dtype=np.float32)[None, :]
        + params["gradient_y"] * np.linspace(-1, 1, gh, dtype=np.float32)[:, None]
        + _blotches(blotch_seed, (gh, gw))
    )
    if params["shadow"] > 0:
        mask = np.zeros((gh, gw), dtype=np.uint8)
        pts = rng.uniform([0, 0], [gw, gh], size=(4, 2)).astype(np.int32)
        cv2.fillPoly(mask, [cv2.convexHull(pts)], 1)
        gain[mask > 0] *= 1.0 - params["shadow"]
    gain3 = gain[..., None] * np.asarray(params["cast"], dtype=np.float32) * 128
    gain3 = np.clip(gain3, 0, 255).astype(np.uint8)
    out = cv2.multiply(
        img, cv2.resize(gain3, (w, h), interpolation=cv2.INTER_LINEAR), scale=1 / 128
    )
    if params["blur"] > 0:
        k = int(params["blur"]) * 2 + 1
        out = cv2.GaussianBlur(out, (k, k), 0)
    if params["motion"] > 0:
        k = int(params["motion"]) * 2 + 1
        kernel = np.zeros((k, k), np.float32)
        kernel[k // 2, :] = 1.0 / k
        out = cv2.filter2D(out, -1, kernel)
    if params["noise"] >= 0.5:
        noise = np.empty((h, w), np.int16)
        # cv2's generator is global: seed it from ours so output depends only on the seed.
        cv2.setRNGSeed(int(rng.integers(0, 2**31)))
        cv2.randn(noise, 0.0, float(params["noise"]))  # type: ignore[call-overload]
        out = cv2.add(out, cv2.merge([noise, noise, noise]), dtype=cv2.CV_8U)
    if params["jpeg"] > 0:
        ok, buf = cv2.imencode(".jpg", out, [cv2.IMWRITE_JPEG_QUALITY, int(params["jpeg"])])
        decoded = cv2.imdecode(buf, cv2.IMREAD_COLOR) if ok else None
        if decoded is not None:
            out = decoded
    return out
