"""Per-person part tables from an owner map, in a fixed number of whole-image passes.

Both parsers end their postprocess with the same question: given which person owns each pixel
(an owner map) and the semantic heads, what is each person's part area, part and instance
pixel score, QAM quality and color/size/pattern distribution per part? Answering it person by
person costs time in proportion to the number of people; here every table is one
``np.bincount`` over the whole map keyed by ``owner * 22 + part``, so the cost depends on the
image size only. That is what keeps a bottom-up parser's postprocess constant-time.

Owner maps are 1-based: 0 = nobody, ``k + 1`` = person ``k``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
from scipy.ndimage import find_objects

from describeme.labels import NUM_PARTS
from describeme.masks import RunLengthMask
from describeme.models.common.dense import softmax
from describeme.operators.quality import qam_score


@dataclass
class PartTables:
    """Tables of ``count`` people (row k = person k).

    Attributes:
        part_area: (K, 22) source-frame pixels of each part.
        part_score: (K, 22) QANet part pixel scores (0 for absent or never-confident parts).
        quality: (K,) QAM scores (0 for a person without a confident pixel or part).
        distributions: per head, (K, 22, C) part-probability-weighted class distributions;
            rows of absent parts are 0.
    """

    part_area: np.ndarray
    part_score: np.ndarray
    quality: np.ndarray
    distributions: dict[str, np.ndarray]


def keyed_sums(keys: np.ndarray, weights: np.ndarray | None, rows: int) -> np.ndarray:
    """(rows, 22) sums of ``weights`` (None = counts) per ``owner * 22 + part`` key."""
    sums = np.bincount(keys, weights=weights, minlength=rows * NUM_PARTS)
    return sums[: rows * NUM_PARTS].reshape(rows, NUM_PARTS)


def part_tables(
    owner: np.ndarray,
    count: int,
    part_logits: np.ndarray,
    part_map: np.ndarray,
    head_logits: Mapping[str, np.ndarray],
    instance_probs: np.ndarray,
    part_area: np.ndarray,
    box_scores: np.ndarray,
    *,
    threshold: float,
    qam_weights: tuple[float, float, float],
) -> PartTables:
    """Scores and distributions of every person of an owner map.

    Args:
        owner: (h, w) int owner map over the content region, values in [0, count].
        count: number of people K.
        part_logits: (22, h, w) attribute logits (channel-first: see ``upsample_planes``).
        part_map: (h, w) foreground argmax part (1..21).
        head_logits: color/size/pattern logits, (C, h, w) each.
        instance_probs: (h, w) probability, under the model's instance output, that the pixel
            belongs to its owner (QANet's instance pixel score reads it).
        part_area: (K, 22) part areas in the source frame (what "present" means).
        box_scores: (K,) detection scores (QAM's S_b).
        threshold: QANet's T.
        qam_weights: QAM exponents (a, b, c).
    """
    rows = count + 1  # row 0 collects nobody's pixels and is dropped
    keys = (owner.astype(np.int64) * NUM_PARTS + part_map).reshape(-1)
    part_probs = softmax(part_logits.reshape(NUM_PARTS, -1), axis=0)  # (22, P)
    prob_max = part_probs.max(0)
    confident = prob_max >= threshold
    sums = keyed_sums(keys[confident], prob_max[confident], rows)[1:]
    counts = keyed_sums(keys[confident], None, rows)[1:]
    present = part_area > 0
    part_score = np.where(present & (counts > 0), sums / np.maximum(counts, 1), 0.0)

    flat_owner = owner.reshape(-1)
    flat_instance = instance_probs.reshape(-1)
    sure = (flat_owner > 0) & (flat_instance >= threshold)
    instance_sums = np.bincount(flat_owner[sure], flat_instance[sure], minlength=rows)[1:rows]
    instance_counts = np.bincount(flat_owner[sure], minlength=rows)[1:rows]

    confident_parts = present[:, 1:] & (part_score[:, 1:] > 0)
    scored = (instance_counts > 0) & confident_parts.any(1)
    quality = np.zeros(count, np.float64)
    if scored.any():
        s_i = instance_sums[scored] / instance_counts[scored]
        s_p = (part_score[:, 1:] * confident_parts).sum(1)[scored] / confident_parts.sum(1)[scored]
        quality[scored] = qam_score(box_scores[scored], s_i, s_p, *qam_weights)

    weights = part_probs[part_map.reshape(-1), np.arange(keys.size)]  # probability of the label
    distributions = {}
    for name, logits in head_logits.items():
        probs = softmax(logits.reshape(logits.shape[0], -1), axis=0)  # (C, P)
        table = np.stack([keyed_sums(keys, weights * row, rows)[1:] for row in probs], axis=-1)
        # (K, 22, C)
        totals = table.sum(-1, keepdims=True)
        table = np.divide(table, totals, out=np.zeros_like(table), where=totals > 0)
        distributions[name] = np.where(present[..., None], table, 0.0).astype(np.float32)
    return PartTables(
        part_area=part_area.astype(np.float32),
        part_score=part_score.astype(np.float32),
        quality=quality,
        distributions=distributions,
    )


def owner_masks(
    source_owner: np.ndarray, source_parts: np.ndarray, count: int
) -> tuple[list[RunLengthMask | None], np.ndarray]:
    """Per person, its part-label mask in the source frame, and the (K, 22) part areas.

    As :meth:`RunLengthMask.label_areas` counts them: part 0 is the pixels of the mask's
    crop (the person's bounding box) that are not the person's.

    Args:
        source_owner: (H, W) owner map in the source frame, values in [0, count].
        source_parts: (H, W) part map in the source frame.
        count: number of people K.

    Returns:
        ``(masks, part_area)``: ``masks[k]`` is None when person k owns no source pixel.
    """
    keys = source_owner.astype(np.int64).reshape(-1) * NUM_PARTS + source_parts.reshape(-1)
    part_area = keyed_sums(keys, None, count + 1)[1:]
    size = (int(source_owner.shape[0]), int(source_owner.shape[1]))
    masks: list[RunLengthMask | None] = []
    for k, region in enumerate(find_objects(source_owner, max_label=count)):
        if region is None:
            masks.append(None)
            continue
        labels = np.where(source_owner[region] == k + 1, source_parts[region], 0)
        origin = (region[1].start, region[0].start)  # find_objects' box is already tight
        masks.append(RunLengthMask.encode(labels, origin, size, crop=False))
        part_area[k, 0] = labels.size - part_area[k, 1:].sum()
    return masks, part_area
