"""QANet's quality scores for any parser's output (numpy only).

QANet (Yang et al., "Quality-Aware Network for Human Parsing") rescores each parsed person:

- pixel score: the mean of the per-pixel maximum probability over the pixels whose maximum
  probability is at least T (T = 0.2), inside the person (instance score S_i) or inside one
  of its parts (part score, then averaged into S_p);
- Quality-Aware Module: S = (S_b^a * S_i^b * S_p^c)^(1 / (a + b + c)), with S_b the
  detector's box score. Ranking people by S instead of S_b is what lifts AP^r / AP^p.

These functions take plain arrays so HPTR, PersonLab or a converted external parser can use
them; :func:`person_quality` bundles the usual sequence for one person.
"""

from __future__ import annotations

import numpy as np

DEFAULT_THRESHOLD = 0.2  # QANet's T: pixels less confident than this say nothing about quality


def _check_threshold(threshold: float) -> None:
    if not 0.0 <= threshold <= 1.0:
        raise ValueError(f"threshold must be in [0, 1], got {threshold}")


def pixel_score(
    prob_max: np.ndarray, mask: np.ndarray | None = None, threshold: float = DEFAULT_THRESHOLD
) -> float:
    """Mean maximum probability over confident pixels.

    Args:
        prob_max: (H, W) float per-pixel maximum class probability in [0, 1].
        mask: optional (H, W) bool region (the person, or one part); None = whole map.
        threshold: T; pixels with ``prob_max < T`` are left out.

    Returns:
        The mean over pixels inside ``mask`` with ``prob_max >= T``; nan if there are none.
    """
    _check_threshold(threshold)
    prob_max = np.asarray(prob_max, dtype=np.float64)
    if mask is not None:
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != prob_max.shape:
            raise ValueError(
                f"mask shape {mask.shape} does not match prob_max shape {prob_max.shape}"
            )
        values = prob_max[mask]
    else:
        values = prob_max.reshape(-1)
    values = values[values >= threshold]
    return float(values.mean()) if values.size else float("nan")


def part_pixel_scores(
    part_probs: np.ndarray,
    part_map: np.ndarray,
    person_mask: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
) -> np.ndarray:
    """Pixel score of every part of one person, in one pass.

    Args:
        part_probs: (C, H, W) float per-class probabilities (softmax output).
        part_map: (H, W) int part label per pixel (argmax), values in [0, C).
        person_mask: (H, W) bool pixels of the person.
        threshold: T.

    Returns:
        (C,) float: for part c, the mean of the max probability over the person's pixels
        labelled c with max probability >= T; nan for parts absent (or never confident).
    """
    _check_threshold(threshold)
    part_probs = np.asarray(part_probs)
    if part_probs.ndim != 3:
        raise ValueError(f"part_probs must be (C, H, W), got shape {part_probs.shape}")
    num_classes, height, width = part_probs.shape
    part_map = np.asarray(part_map)
    person_mask = np.asarray(person_mask, dtype=bool)
    for name, array in (("part_map", part_map), ("person_mask", person_mask)):
        if array.shape != (height, width):
            raise ValueError(
                f"{name} shape {array.shape} does not match part_probs {(height, width)}"
            )
    labels = part_map[person_mask].astype(np.int64)
    if labels.size and (labels.min() < 0 or labels.max() >= num_classes):
        raise ValueError(
            f"part_map ids must lie in [0, {num_classes - 1}], got {labels.min()}..{labels.max()}"
        )
    prob_max = part_probs.max(axis=0)[person_mask].astype(np.float64)
    keep = prob_max >= threshold
    sums = np.bincount(labels[keep], weights=prob_max[keep], minlength=num_classes)
    counts = np.bincount(labels[keep], minlength=num_classes)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(counts > 0, sums / np.maximum(counts, 1), np.nan)


def qam_score(
    box_score: np.ndarray | float,
    instance_score: np.ndarray | float,
    part_score: np.ndarray | float,
    a: float = 1.0,
    b: float = 1.0,
    c: float = 1.0,
) -> np.ndarray | float:
    """QANet's combined score (S_b^a * S_i^b * S_p^c)^(1 / (a + b + c)), broadcasting.

    Args:
        box_score: S_b, detection confidence in [0, 1].
        instance_score: S_i, pixel score of the person.
        part_score: S_p, mean of the person's part pixel scores.
        a, b, c: non-negative exponents (weights), not all zero.

    Returns:
        The score, a float for scalar inputs or an array of the broadcast shape.
    """
    if min(a, b, c) < 0 or a + b + c <= 0:
        raise ValueError(f"QAM weights must be >= 0 and not all zero, got a={a}, b={b}, c={c}")
    s_b, s_i, s_p = (
        np.asarray(v, dtype=np.float64) for v in (box_score, instance_score, part_score)
    )
    for name, value in (("box_score", s_b), ("instance_score", s_i), ("part_score", s_p)):
        if np.any(value < 0):
            raise ValueError(f"{name} must be non-negative, got min {np.nanmin(value)}")
    out = (s_b**a * s_i**b * s_p**c) ** (1.0 / (a + b + c))
    return float(out) if out.ndim == 0 else out


def person_quality(
    box_score: float,
    part_probs: np.ndarray,
    part_map: np.ndarray,
    person_mask: np.ndarray,
    threshold: float = DEFAULT_THRESHOLD,
    weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> tuple[float, np.ndarray]:
    """QAM score of one person and its per-part pixel scores.

    S_i is the pixel score over the person's foreground; S_p the mean over its present parts
    (background excluded). A person with no confident pixel gets quality 0.

    Returns:
        ``(quality, part_scores (C,))``.
    """
    prob_max = np.asarray(part_probs).max(axis=0)
    foreground = np.asarray(person_mask, dtype=bool) & (np.asarray(part_map) > 0)
    instance = pixel_score(prob_max, foreground, threshold)
    parts = part_pixel_scores(part_probs, part_map, person_mask, threshold)
    foreground_parts = parts[1:]
    part_mean = (
        float(np.nanmean(foreground_parts)) if np.isfinite(foreground_parts).any() else float("nan")
    )
    if np.isnan(instance) or np.isnan(part_mean):
        return 0.0, parts
    return float(qam_score(box_score, instance, part_mean, *weights)), parts
