"""Label-preserving augmentation of a :class:`Sample` (numpy + OpenCV; no torch).

Geometry: one uniform scale, then a crop or pad to the output size (a :class:`Placement`),
then an optional horizontal flip that swaps left/right part classes and keypoints. Photos use
area/linear interpolation, label maps nearest-exact; padding is 255 (ignore) in the semantic
maps and 0 (no person) in the human map. Keypoints follow the photo's pixel mapping
(pixel-index convention, as ``labels.flip_keypoints``); one that leaves the frame becomes
(0, 0, 0), COCO's "not labelled".

Photometry: :class:`ColorJitter` only changes brightness, contrast and gamma, by small bounded
amounts, through one monotonic lookup table shared by the three channels. No hue or saturation
change: CCIHP's color classes are named hues (red, orange, brown, pink, ...) and luminance
levels (dark, medium, light), so a hue shift or a large brightness change would make the color
label false. A shared monotonic table keeps the hue of saturated colours and the luminance
order of regions. The default +-10 % per knob moves a mid-grey 128 to about 108..150 in the
worst combination; the hard cap of 20 % (about 90..176) is where dark/medium/light would start
to blur. These bounds are a judgement, not a measurement on CCIHP.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from describeme import labels
from describeme.data.sample import IGNORE, Sample, boxes_from_humans
from describeme.geometry import Letterbox

MAX_JITTER = 0.2  # largest allowed relative change per photometric knob (see module docstring)
SEMANTIC_MAPS = ("parts", "color", "size", "pattern")


@dataclass(frozen=True)
class ColorJitter:
    """Bounded photometric jitter that keeps color labels truthful.

    Attributes:
        brightness: intensity factor drawn from [1 - b, 1 + b].
        contrast: factor around the image mean drawn from [1 - c, 1 + c].
        gamma: exponent drawn from [1 - g, 1 + g].
    Each must lie in [0, ``MAX_JITTER``].
    """

    brightness: float = 0.1
    contrast: float = 0.1
    gamma: float = 0.1

    def __post_init__(self) -> None:
        for name in ("brightness", "contrast", "gamma"):
            value = getattr(self, name)
            if not 0.0 <= value <= MAX_JITTER:
                raise ValueError(
                    f"ColorJitter.{name}={value} must be in [0, {MAX_JITTER}]: larger changes "
                    "would move pixels across color classes (dark/medium/light)"
                )

    def apply(self, image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Jitters an (H, W, 3) uint8 image through one monotonic 256-entry table."""
        gamma = rng.uniform(1 - self.gamma, 1 + self.gamma)
        contrast = rng.uniform(1 - self.contrast, 1 + self.contrast)
        brightness = rng.uniform(1 - self.brightness, 1 + self.brightness)
        levels = 255.0 * (np.arange(256) / 255.0) ** gamma
        histogram = np.bincount(image.ravel(), minlength=256)
        mean = float(histogram @ levels) / max(int(histogram.sum()), 1)
        table = ((levels - mean) * contrast + mean) * brightness
        return cv2.LUT(image, np.clip(np.rint(table), 0, 255).astype(np.uint8))


@dataclass(frozen=True)
class Placement:
    """Source image -> output canvas: resize to ``resized_hw``, then paste at ``offset_xy``.

    The offset may be negative (a crop). In pixel-index coordinates a source point maps to
    ``x_out = (x + 0.5) * resized_w / src_w - 0.5 + offset_x`` (same for y), which is what
    ``cv2.resize`` does to pixel centres.
    """

    src_hw: tuple[int, int]
    resized_hw: tuple[int, int]
    offset_xy: tuple[int, int]
    out_hw: tuple[int, int]

    @property
    def matrix(self) -> np.ndarray:
        """(2, 3) float32 affine map of source pixel-index points to output points."""
        sy = self.resized_hw[0] / self.src_hw[0]
        sx = self.resized_hw[1] / self.src_hw[1]
        tx = 0.5 * sx - 0.5 + self.offset_xy[0]
        ty = 0.5 * sy - 0.5 + self.offset_xy[1]
        return np.array([[sx, 0.0, tx], [0.0, sy, ty]], dtype=np.float32)


def random_placement(
    src_hw: tuple[int, int],
    out_hw: tuple[int, int],
    scale_range: tuple[float, float],
    rng: np.random.Generator,
) -> Placement:
    """Scale = (fit-inside scale) x U(scale_range); a random crop or pad position."""
    fit = min(out_hw[0] / src_hw[0], out_hw[1] / src_hw[1])
    scale = fit * rng.uniform(*scale_range)
    resized = (max(1, round(src_hw[0] * scale)), max(1, round(src_hw[1] * scale)))
    offsets = []
    for axis in (1, 0):  # x then y
        slack = out_hw[axis] - resized[axis]  # > 0: pad, < 0: crop
        offsets.append(int(rng.integers(min(0, slack), max(0, slack) + 1)))
    return Placement(src_hw, resized, (offsets[0], offsets[1]), out_hw)


def letterbox_placement(src_hw: tuple[int, int], out_hw: tuple[int, int]) -> Placement:
    """The inference letterbox (``describeme.geometry.Letterbox``): fit inside, centred."""
    box = Letterbox.fit(src_hw, out_hw)
    resized = (round(src_hw[0] * box.scale), round(src_hw[1] * box.scale))
    return Placement(src_hw, resized, (box.pad_x, box.pad_y), out_hw)


def place(array: np.ndarray, placement: Placement, fill: Any, is_label: bool) -> np.ndarray:
    """Resizes ``array`` ((H, W) or (H, W, C)) and pastes it on a ``fill`` canvas."""
    new_h, new_w = placement.resized_hw
    if is_label:
        interpolation = cv2.INTER_NEAREST_EXACT  # INTER_NEAREST is off by half a pixel
    elif new_h < array.shape[0]:
        interpolation = cv2.INTER_AREA  # no aliasing when shrinking
    else:
        interpolation = cv2.INTER_LINEAR
    resized = cv2.resize(array, (new_w, new_h), interpolation=interpolation)
    out_h, out_w = placement.out_hw
    canvas = np.empty((out_h, out_w, *array.shape[2:]), dtype=array.dtype)
    canvas[...] = fill
    ox, oy = placement.offset_xy
    x0, y0 = max(ox, 0), max(oy, 0)
    x1, y1 = min(ox + new_w, out_w), min(oy + new_h, out_h)
    if x1 > x0 and y1 > y0:
        canvas[y0:y1, x0:x1] = resized[y0 - oy : y1 - oy, x0 - ox : x1 - ox]
    return canvas


def place_keypoints(keypoints: np.ndarray, placement: Placement) -> np.ndarray:
    """Maps (N, K, 3) keypoints; points that leave the canvas become (0, 0, 0)."""
    out = keypoints.astype(np.float32, copy=True)
    matrix = placement.matrix
    out[..., 0] = keypoints[..., 0] * matrix[0, 0] + matrix[0, 2]
    out[..., 1] = keypoints[..., 1] * matrix[1, 1] + matrix[1, 2]
    out_h, out_w = placement.out_hw
    inside = (out[..., 0] >= 0) & (out[..., 0] <= out_w - 1) \
        & (out[..., 1] >= 0) & (out[..., 1] <= out_h - 1)  # fmt: skip
    out[(keypoints[..., 2] <= 0) | ~inside] = 0.0
    return out


def flip_maps(maps: dict[str, Any], width: int) -> dict[str, Any]:
    """Mirrors every map; left/right part classes and keypoints swap."""
    out = dict(maps)
    out["image"] = np.ascontiguousarray(maps["image"][:, ::-1])
    out["parts"] = np.ascontiguousarray(labels.flip_part_map(maps["parts"]))
    for name in ("color", "size", "pattern", "humans"):
        out[name] = np.ascontiguousarray(maps[name][:, ::-1])
    out["keypoints"] = labels.flip_keypoints(maps["keypoints"], width)
    return out


def renumber_persons(humans: np.ndarray, keypoints: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Drops persons with no pixel left and renumbers the rest 1..M in their old order.

    Args:
        humans: (H, W) uint16 person index.
        keypoints: (N, K, 3), row i = person i+1.

    Returns:
        (H, W) renumbered human map and the (M, K, 3) keypoints of the persons kept.
    """
    count = max(int(humans.max()) if humans.size else 0, len(keypoints))
    present = np.bincount(humans.ravel(), minlength=count + 1) > 0
    present[0] = False
    lut = np.zeros(count + 1, dtype=np.uint16)
    lut[present] = np.arange(1, int(present.sum()) + 1)
    kept_rows = np.flatnonzero(present[1 : len(keypoints) + 1])
    return lut[humans], keypoints[kept_rows]


def transform_sample(
    sample: Sample,
    placement: Placement,
    *,
    flip: bool,
    jitter: ColorJitter | None,
    rng: np.random.Generator,
    normalize: Callable[[np.ndarray], np.ndarray] | None = None,
) -> dict[str, Any]:
    """Applies placement, flip and jitter to every map of ``sample``.

    Args:
        normalize: (H, W, 3) uint8 BGR -> (H, W, 3) float32, applied to the output canvas;
            the padding is then set to exactly 0. None keeps uint8 BGR padded with 0.

    Returns:
        ``image`` (H, W, 3) (see ``normalize``); ``parts``, ``color``, ``size``, ``pattern``
        (H, W) uint8 (255 where the sample has no such map); ``humans`` (H, W) uint16
        renumbered 1..M; ``keypoints`` (M, 17, 3) float32; ``boxes_xyxy`` (M, 4) float32.
    """
    image = sample.image if jitter is None else jitter.apply(sample.image, rng)
    maps: dict[str, Any] = {"image": place(image, placement, 0, is_label=False)}
    for name in SEMANTIC_MAPS:
        value = getattr(sample, name)
        if value is None:  # no such labels: ignore everywhere
            maps[name] = np.full(placement.out_hw, IGNORE, dtype=np.uint8)
        else:
            maps[name] = place(value, placement, IGNORE, is_label=True)
    maps["humans"] = place(sample.humans, placement, 0, is_label=True)
    keypoints = sample.keypoints
    if keypoints is None:
        keypoints = np.zeros((sample.num_persons, labels.NUM_KEYPOINTS, 3), dtype=np.float32)
    maps["keypoints"] = place_keypoints(keypoints, placement)
    if flip:
        maps = flip_maps(maps, placement.out_hw[1])
    if normalize is not None:
        maps["image"] = normalize(maps["image"])
        maps["image"][~content_mask(placement, flip)] = 0.0
    maps["humans"], maps["keypoints"] = renumber_persons(maps["humans"], maps["keypoints"])
    maps["boxes_xyxy"] = boxes_from_humans(maps["humans"], len(maps["keypoints"]))
    return maps


def content_mask(placement: Placement, flip: bool = False) -> np.ndarray:
    """(H, W) bool output pixels covered by the photo (False on padding)."""
    out_h, out_w = placement.out_hw
    new_h, new_w = placement.resized_hw
    ox, oy = placement.offset_xy
    mask = np.zeros((out_h, out_w), dtype=bool)
    mask[max(oy, 0) : min(oy + new_h, out_h), max(ox, 0) : min(ox + new_w, out_w)] = True
    return mask[:, ::-1] if flip else mask
