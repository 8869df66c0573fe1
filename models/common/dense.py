"""Dense-map helpers shared by the parsers' postprocessing (numpy; no torch).

Head outputs come out of the exported graph at a stride of the letterboxed model input; these
helpers bring them back to the source frame's content region and aggregate them per part.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import cv2
import numpy as np

from describeme.geometry import Letterbox
from describeme.labels import NUM_PARTS


def part_distribution(
    labels: np.ndarray, weights: np.ndarray, probs: np.ndarray, present: np.ndarray
) -> np.ndarray:
    """Per part, the part-probability-weighted mean of one head's probabilities.

    Args:
        labels: (P,) part of each person pixel.
        weights: (P,) probability of that part.
        probs: (C, P) the head's class probabilities at those pixels.
        present: (22,) parts present in the person's source-frame mask.

    Returns:
        (22, C) rows summing to 1 for present parts, 0 elsewhere.
    """
    sums = np.stack(
        [np.bincount(labels, weights=weights * row, minlength=NUM_PARTS) for row in probs], axis=1
    )
    totals = sums.sum(1, keepdims=True)
    dist = np.divide(sums, totals, out=np.zeros_like(sums), where=totals > 0)
    return np.where(present[:, None], dist, 0.0).astype(np.float32)


def content_box(letterbox: Letterbox) -> tuple[int, int, int, int]:
    """(x0, y0, x1, y1) of the resized frame inside the model input."""
    new_h = round(letterbox.source_size[0] * letterbox.scale)
    new_w = round(letterbox.source_size[1] * letterbox.scale)
    return letterbox.pad_x, letterbox.pad_y, letterbox.pad_x + new_w, letterbox.pad_y + new_h


def upsample_crop(
    maps: np.ndarray, letterbox: Letterbox, content: tuple[int, int, int, int]
) -> np.ndarray:
    """(C, H/4, W/4) -> (h, w, C): bilinear to the model input size (half-pixel centres, as
    ``F.interpolate(align_corners=False)`` in training), then cropped to the content.

    Channel-last output avoids transposing full-resolution maps; cv2 takes at most 512
    channels per call.
    """
    height, width = letterbox.target_size
    x0, y0, x1, y1 = content
    small = np.ascontiguousarray(maps.astype(np.float32, copy=False).transpose(1, 2, 0))
    parts = []
    for start in range(0, small.shape[-1], 512):
        chunk = np.ascontiguousarray(small[..., start : start + 512])
        resized = cv2.resize(chunk, (width, height), interpolation=cv2.INTER_LINEAR)
        parts.append(resized.reshape(height, width, -1)[y0:y1, x0:x1])
    return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=-1)


def upsample_planes(
    maps: np.ndarray, letterbox: Letterbox, content: tuple[int, int, int, int]
) -> np.ndarray:
    """(C, H/4, W/4) -> (C, h, w): :func:`upsample_crop` channel-first.

    Per-pixel reductions over the channels (softmax, argmax) run 2-3x faster over the leading
    axis of a channel-first array than over the short last axis of a channel-last one.
    """
    height, width = letterbox.target_size
    x0, y0, x1, y1 = content
    out = np.empty((maps.shape[0], y1 - y0, x1 - x0), np.float32)
    for plane, small in zip(out, maps.astype(np.float32, copy=False), strict=True):
        plane[...] = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)[
            y0:y1, x0:x1
        ]
    return out


def softmax(x: np.ndarray, axis: int) -> np.ndarray:
    shifted = np.exp(x - x.max(axis=axis, keepdims=True))
    return shifted / shifted.sum(axis=axis, keepdims=True)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(x, -60.0, 60.0)))


def outputs_to_numpy(
    outputs: Mapping[str, Any], required: Iterable[str], model_name: str
) -> dict[str, np.ndarray]:
    """The ``required`` raw head outputs as numpy arrays (torch tensors are detached to fp32 on
    the CPU), raising ``ValueError`` naming any missing head."""
    arrays = {}
    for name in required:
        if name not in outputs:
            raise ValueError(f"{model_name} outputs lack '{name}'; got {sorted(outputs)}")
        value = outputs[name]
        if hasattr(value, "detach"):
            value = value.detach().float().cpu().numpy()
        arrays[name] = np.asarray(value)
    return arrays
