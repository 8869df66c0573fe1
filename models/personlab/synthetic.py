"""Hand-made PersonLab head outputs for tests and the decoding benchmark.

:func:`ideal_outputs` builds the raw heads a perfect network would return for planted people:
heatmaps, short and mid-range offsets from the training targets, long-range offsets towards
the keypoints of the person owning each cell (given as an owner map, so overlapping people
get well-defined fields), a segmentation of the owned cells, and semantic logits from an
optional part map.
"""

from __future__ import annotations

import numpy as np
import torch

from describeme.labels import NUM_COLORS, NUM_KEYPOINTS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES
from describeme.models.personlab.refine import cell_positions
from describeme.models.personlab.targets import build_image_targets

# A standing person in COCO keypoint order: (x, y) as fractions of the person's height,
# relative to the body centre.
_STANDING = np.array(
    [
        (0.0, -0.45), (-0.03, -0.48), (0.03, -0.48), (-0.07, -0.46), (0.07, -0.46),
        (-0.15, -0.3), (0.15, -0.3), (-0.2, -0.1), (0.2, -0.1), (-0.22, 0.08), (0.22, 0.08),
        (-0.1, 0.05), (0.1, 0.05), (-0.11, 0.27), (0.11, 0.27), (-0.12, 0.48), (0.12, 0.48),
    ]
)  # fmt: skip


def standing_pose(center_x: float, center_y: float, height: float) -> np.ndarray:
    """(17, 3) float32 keypoints (x, y, v=2) of a standing person ``height`` px tall."""
    xy = _STANDING * height + np.array([center_x, center_y])
    return np.concatenate([xy, np.full((NUM_KEYPOINTS, 1), 2.0)], 1).astype(np.float32)


def box_owners(keypoints: np.ndarray, size: tuple[int, int], margin: float = 6.0) -> np.ndarray:
    """(H, W) int owner map: person i + 1 on its keypoints' box grown by ``margin``; where
    boxes overlap, the person whose box centre is nearest owns the pixel; 0 = background."""
    height, width = size
    yy, xx = np.mgrid[:height, :width].astype(np.float32)
    best = np.full(size, np.inf, np.float32)
    owners = np.zeros(size, np.int32)
    for index, person in enumerate(keypoints):
        (x0, y0), (x1, y1) = person[:, :2].min(0) - margin, person[:, :2].max(0) + margin
        inside = (xx >= x0) & (xx <= x1) & (yy >= y0) & (yy <= y1)
        distance = np.hypot(xx - (x0 + x1) / 2, yy - (y0 + y1) / 2)
        closer = inside & (distance < best)
        owners[closer], best[closer] = index + 1, distance[closer]
    return owners


def ideal_outputs(
    keypoints: np.ndarray,
    owners: np.ndarray,
    *,
    stride: int,
    radius: float,
    parts: np.ndarray | None = None,
    heat_prob: float = 0.95,
) -> dict[str, np.ndarray]:
    """Raw heads of one image (no batch axis) for planted people.

    Args:
        keypoints: (N, 17, 3) input pixels.
        owners: (H, W) int owner map (i + 1 = person i, 0 = background).
        stride, radius: the model's output stride and disk radius.
        parts: optional (H, W) CCIHP part map; default part 5 (upper-clothes) on people.
        heat_prob: heatmap probability inside disks (1 - heat_prob outside).

    Returns:
        Every PersonLab output, float32, shapes as the model's without the batch axis.
    """
    height, width = owners.shape
    count = keypoints.shape[0]
    masks = torch.from_numpy(owners[None] == np.arange(1, count + 1)[:, None, None])
    targets = build_image_targets(torch.from_numpy(keypoints), masks, stride, radius)
    logit = float(np.log(heat_prob / (1 - heat_prob)))
    h, w = height // stride, width // stride
    positions = cell_positions(h, w, stride).numpy()  # (2, h, w)
    cell_owner = owners[np.clip(np.rint(positions[1]).astype(int), 0, height - 1),
                        np.clip(np.rint(positions[0]).astype(int), 0, width - 1)]  # fmt: skip
    long = np.zeros((NUM_KEYPOINTS, 2, h, w), np.float32)
    if count:
        own = keypoints[np.maximum(cell_owner - 1, 0), :, :2]  # (h, w, K, 2)
        long = (own.transpose(2, 3, 0, 1) - positions[None]) * (cell_owner > 0)
    outputs = {
        "heatmaps": np.where(targets["heatmaps"].numpy() > 0, logit, -logit),
        "short_offsets": targets["short_offsets"].numpy(),
        "mid_offsets": targets["mid_offsets"].numpy(),
        "segmentation": np.where(cell_owner > 0, 6.0, -6.0)[None],
        "long_offsets": long.reshape(2 * NUM_KEYPOINTS, h, w),
    }
    outputs.update(_semantic_logits(owners, parts))
    return {name: value.astype(np.float32) for name, value in outputs.items()}


def _semantic_logits(owners: np.ndarray, parts: np.ndarray | None) -> dict[str, np.ndarray]:
    """One-hot-like stride-4 logits: the part map (default 5 on people) and characteristics
    color 10 (blue), size 2 (long), pattern 1 (solid) on people."""
    small_owners = owners[2::4, 2::4]
    if parts is None:
        part_map = np.where(small_owners > 0, 5, 0)
    else:
        part_map = parts[2::4, 2::4]
    person = small_owners > 0
    out = {}
    for name, classes, label in (
        ("attribute", NUM_PARTS, None),
        ("size", NUM_SIZES, 2),
        ("pattern", NUM_PATTERNS, 1),
        ("color", NUM_COLORS, 10),
    ):
        labels = part_map if label is None else np.where(person, label, 0)
        out[name] = np.where(np.arange(classes)[:, None, None] == labels[None], 4.0, -4.0)
    return out
