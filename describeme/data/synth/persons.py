"""Ground-truth :class:`~describeme.types.Persons` from a synthetic sample (a perfect parser).

Pipeline and describer tests use this as a test-double parser: what a flawless model would
send for the frame, with one-hot characteristic distributions and confidence 1.
"""

from __future__ import annotations

import numpy as np

from describeme.data.sample import Sample
from describeme.labels import NUM_COLORS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES
from describeme.masks import RunLengthMask
from describeme.types import Persons


def _one_hot(values: np.ndarray, parts: np.ndarray, num_classes: int) -> np.ndarray:
    """(22, num_classes) one-hot of each present part's (constant) class; class 0 = none."""
    out = np.zeros((NUM_PARTS, num_classes), dtype=np.float32)
    out[parts, values] = 1.0
    return out


def persons_from_sample(sample: Sample, with_track_ids: bool = False) -> Persons:
    """The persons of a sample as a parser would report them.

    Args:
        sample: a synthetic sample (characteristic maps and keypoints required).
        with_track_ids: fill ``track_id`` from ``sample.extra['track_ids']`` (video frames);
            otherwise -1 (untracked), as a parser emits.

    Returns:
        Persons with boxes, score 1, keypoints (score 1 where visible, else 0), part-map masks,
        quality 1, part areas, part scores (1 where present) and one-hot color/size/pattern.
    """
    if sample.color is None or sample.size is None or sample.pattern is None:
        raise ValueError(f"{sample.image_id}: sample has no characteristic maps")
    n = sample.num_persons
    area = np.zeros((n, NUM_PARTS), np.float32)
    chars = {
        "color": np.zeros((n, NUM_PARTS, NUM_COLORS), np.float32),
        "size": np.zeros((n, NUM_PARTS, NUM_SIZES), np.float32),
        "pattern": np.zeros((n, NUM_PARTS, NUM_PATTERNS), np.float32),
    }
    masks = []
    for k in range(n):
        x0, y0, x1, y1 = (int(v) for v in sample.boxes[k])
        window = (slice(y0, y1), slice(x0, x1))
        mine = sample.humans[window] == k + 1
        local = np.where(mine, sample.parts[window], 0)
        masks.append(RunLengthMask.encode(local, (x0, y0), (sample.height, sample.width)))
        area[k] = np.bincount(local[mine], minlength=NUM_PARTS)
        parts = sample.parts[window][mine]
        for name, (values, width) in {
            "color": (sample.color, NUM_COLORS),
            "size": (sample.size, NUM_SIZES),
            "pattern": (sample.pattern, NUM_PATTERNS),
        }.items():
            chars[name][k] = _one_hot(values[window][mine], parts, width)
            chars[name][k, 0] = 0.0  # background row carries no distribution
    keypoints = None
    if sample.keypoints is not None:
        keypoints = sample.keypoints.copy()
        keypoints[..., 2] = (sample.keypoints[..., 2] == 2).astype(np.float32)
    track_id = None
    if with_track_ids:
        track_id = np.asarray(sample.extra["track_ids"], dtype=np.int64)
    ones = np.ones(n, np.float32)
    return Persons(
        xyxy=sample.boxes.astype(np.float32),
        score=ones,
        track_id=track_id,
        keypoints=keypoints,
        masks=masks,
        quality=ones.copy(),
        part_area=area,
        part_score=(area > 0).astype(np.float32),
        **chars,
    )
