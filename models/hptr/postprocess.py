"""HPTR raw head outputs -> :class:`describeme.types.Persons` in source-frame pixels.

Runs outside the exported graph, on numpy. For each image: queries whose person probability
exceeds ``score_threshold`` become people; their mask probabilities are upsampled to the
letterboxed content region and overlaps go to the person with the highest
``score * mask probability``. Inside a person, each pixel's part is the semantic argmax over
the foreground classes (the instance branch decides who is a person, the semantic block
decides which part). Per part, color/size/pattern distributions are the average of the
heads' probabilities weighted by the pixel's part probability (so area- and
probability-weighted). QANet's QAM rescoring gives ``quality``. Label maps are mapped to the
source frame with nearest-neighbour resizing (inverting the :class:`Letterbox`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import cv2
import numpy as np

from describeme.geometry import Letterbox, box_cxcywh_to_xyxy
from describeme.labels import NUM_PARTS
from describeme.models.common.dense import (
    content_box,
    outputs_to_numpy,
    sigmoid,
    softmax,
    upsample_planes,
)
from describeme.models.common.tables import owner_masks, part_tables
from describeme.types import Persons

CHARACTERISTIC_HEADS = ("color", "size", "pattern")
_REQUIRED = ("logits", "boxes", "masks", "attribute", *CHARACTERISTIC_HEADS)
_EMPTY_FIELDS = dict(
    quality=True, part_area=True, part_score=True, color=True, size=True, pattern=True, masks=True
)


class HPTRPostprocessor:
    """Decodes HPTR head outputs into people.

    Args:
        score_threshold: minimum person probability of a query.
        mask_threshold: minimum mask probability for a pixel to belong to a person.
        qam_threshold: QANet's T for pixel scores.
        qam_weights: exponents (a, b, c) of box, instance and part scores.
    """

    def __init__(
        self,
        *,
        score_threshold: float = 0.5,
        mask_threshold: float = 0.5,
        qam_threshold: float = 0.2,
        qam_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    ) -> None:
        for name, value in (
            ("score_threshold", score_threshold),
            ("mask_threshold", mask_threshold),
            ("qam_threshold", qam_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        self.score_threshold, self.mask_threshold = score_threshold, mask_threshold
        self.qam_threshold, self.qam_weights = qam_threshold, tuple(qam_weights)

    def __call__(
        self, outputs: Mapping[str, Any], letterboxes: Sequence[Letterbox]
    ) -> list[Persons]:
        """Decodes a batch.

        Args:
            outputs: raw heads with a leading batch axis (numpy arrays or torch tensors).
            letterboxes: one per image; ``target_size`` must be the model input size.

        Returns:
            One :class:`Persons` per image (with masks, quality, part and characteristic fields).
        """
        arrays = outputs_to_numpy(outputs, _REQUIRED, "HPTR")
        batch = arrays["logits"].shape[0]
        if len(letterboxes) != batch:
            raise ValueError(f"got {len(letterboxes)} letterboxes for a batch of {batch} images")
        return [
            self.decode_image({k: v[i] for k, v in arrays.items()}, letterboxes[i])
            for i in range(batch)
        ]

    def decode_image(self, outputs: Mapping[str, np.ndarray], letterbox: Letterbox) -> Persons:
        """Decodes one image's outputs (no batch axis): logits (Q, 2), boxes (Q, 4), masks
        (Q, H/4, W/4), attribute (22, H/4, W/4), color/size/pattern (K, H/4, W/4)."""
        _check_image_outputs(outputs, letterbox)
        scores = softmax(outputs["logits"].astype(np.float32), axis=-1)[:, 0]  # (Q,)
        order = np.argsort(-scores, kind="stable")
        keep = order[scores[order] > self.score_threshold]
        if keep.size == 0:
            return Persons.empty(**_EMPTY_FIELDS)
        content = content_box(letterbox)
        owner, instance_probs = _resolve_overlaps(
            outputs["masks"][keep], scores[keep], self.mask_threshold, letterbox, content
        )
        part_logits = upsample_planes(outputs["attribute"], letterbox, content)
        part_map = part_logits[1:].argmax(0).astype(np.uint8) + 1  # as argmax of softmax
        source_owner, source_parts = _to_source(owner, part_map, letterbox)
        masks, part_area = owner_masks(source_owner, source_parts, keep.size)
        tables = part_tables(
            owner, keep.size, part_logits.transpose(1, 2, 0), part_map,
            {
                n: upsample_planes(outputs[n], letterbox, content).transpose(1, 2, 0)
                for n in CHARACTERISTIC_HEADS
            },
            instance_probs, part_area, scores[keep].astype(np.float64),
            threshold=self.qam_threshold, qam_weights=self.qam_weights,
        )  # fmt: skip
        found = np.array([m is not None for m in masks])  # hidden people own no pixel
        if not found.any():
            return Persons.empty(**_EMPTY_FIELDS)
        height, width = letterbox.target_size
        model_boxes = box_cxcywh_to_xyxy(outputs["boxes"][keep].astype(np.float32))
        scale = np.array([width, height, width, height], dtype=np.float32)
        return Persons(
            xyxy=letterbox.boxes_to_source(model_boxes * scale)[found],
            score=scores[keep][found].astype(np.float64),
            masks=[m for m in masks if m is not None],
            quality=tables.quality[found],
            part_area=tables.part_area[found],
            part_score=tables.part_score[found],
            **{n: d[found] for n, d in tables.distributions.items()},
        )


def _resolve_overlaps(
    mask_logits: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    letterbox: Letterbox,
    content: tuple[int, int, int, int],
) -> tuple[np.ndarray, np.ndarray]:
    """Owner map of the kept queries over the content region.

    A pixel goes to the person with the highest ``score * mask probability`` among those whose
    probability exceeds ``threshold`` (ties: the higher-ranked person). Queries are visited in
    rank order and each touches only the pixels it claims, so a person costs in proportion
    to its area, not to the frame's.

    Args:
        mask_logits: (K, H/4, W/4) mask logits of the kept queries, best first.
        scores: (K,) their person probabilities.

    Returns:
        ``(owner, probability)``: (h, w) int32 1-based owner (0 = nobody) and the owner's mask
        probability at each pixel (0 where nobody).
    """
    height, width = letterbox.target_size
    x0, y0, x1, y1 = content
    cutoff = np.log(threshold / (1.0 - threshold)) if 0.0 < threshold < 1.0 else None
    best = np.zeros((y1 - y0, x1 - x0), np.float32)  # claims are > 0
    owner = np.zeros(best.shape, np.int32)
    probability = np.zeros(best.shape, np.float32)
    for k, small in enumerate(mask_logits.astype(np.float32, copy=False)):
        logits = cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)[y0:y1, x0:x1]
        # threshold in logit space first: the sigmoid runs on the claimed pixels only
        candidates = np.flatnonzero(logits > cutoff) if cutoff is not None else None
        if candidates is None:
            candidates = np.arange(logits.size)
        probs = sigmoid(logits.reshape(-1)[candidates])
        claimed = probs > threshold
        candidates, probs = candidates[claimed], probs[claimed]
        claims = probs * scores[k]
        wins = claims > best.reshape(-1)[candidates]
        where = candidates[wins]
        best.reshape(-1)[where] = claims[wins]
        owner.reshape(-1)[where] = k + 1
        probability.reshape(-1)[where] = probs[wins]
    return owner, probability


def _to_source(
    owner: np.ndarray, part_map: np.ndarray, letterbox: Letterbox
) -> tuple[np.ndarray, np.ndarray]:
    """Nearest-resizes the owner (1-based, 0 = none) and part maps to the source frame."""
    source_h, source_w = letterbox.source_size
    owner_u8 = owner.astype(np.uint8)
    size = (source_w, source_h)
    return (
        cv2.resize(owner_u8, size, interpolation=cv2.INTER_NEAREST),
        cv2.resize(part_map, size, interpolation=cv2.INTER_NEAREST),
    )


def _check_image_outputs(outputs: Mapping[str, np.ndarray], letterbox: Letterbox) -> None:
    missing = [n for n in _REQUIRED if n not in outputs]
    if missing:
        raise ValueError(f"HPTR outputs lack {missing}; got {sorted(outputs)}")
    num_queries, height4, width4 = outputs["masks"].shape
    expected = (letterbox.target_size[0] // 4, letterbox.target_size[1] // 4)
    if (height4, width4) != expected:
        raise ValueError(
            f"mask maps are {height4}x{width4} but the letterbox targets "
            f"{letterbox.target_size} (expected {expected[0]}x{expected[1]} maps)"
        )
    if num_queries > 254:
        raise ValueError(f"at most 254 queries are supported, got {num_queries}")
    if outputs["logits"].shape != (num_queries, 2) or outputs["boxes"].shape != (num_queries, 4):
        raise ValueError(
            f"expected logits ({num_queries}, 2) and boxes ({num_queries}, 4), got "
            f"{outputs['logits'].shape} and {outputs['boxes'].shape}"
        )
    if outputs["attribute"].shape != (NUM_PARTS, height4, width4):
        raise ValueError(
            f"attribute must be ({NUM_PARTS}, {height4}, {width4}), "
            f"got {outputs['attribute'].shape}"
        )


def build_postprocessor(
    score_threshold: float = 0.5,
    mask_threshold: float = 0.5,
    qam_threshold: float = 0.2,
    qam_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
) -> HPTRPostprocessor:
    """Builds the postprocessor (thresholds as in the paper's evaluation defaults)."""
    return HPTRPostprocessor(
        score_threshold=score_threshold,
        mask_threshold=mask_threshold,
        qam_threshold=qam_threshold,
        qam_weights=qam_weights,
    )
