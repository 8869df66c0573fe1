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
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
from scipy.ndimage import find_objects

from describeme.geometry import Letterbox, box_cxcywh_to_xyxy
from describeme.labels import NUM_PARTS
from describeme.masks import RunLengthMask
from describeme.models.common.dense import (
    content_box,
    outputs_to_numpy,
    part_distribution,
    sigmoid,
    softmax,
    upsample_crop,
)
from describeme.operators.quality import part_pixel_scores, pixel_score, qam_score
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
        maps = _dense_maps(outputs, keep, scores[keep], letterbox, self.mask_threshold)
        height, width = letterbox.target_size
        model_boxes = box_cxcywh_to_xyxy(outputs["boxes"][keep].astype(np.float32))
        scale = np.array([width, height, width, height], dtype=np.float32)
        source_boxes = letterbox.boxes_to_source(model_boxes * scale)
        people = [
            self._describe(k, maps, float(scores[keep][k]), source_boxes[k])
            for k in range(keep.size)
        ]
        found = [p for p in people if p is not None]
        return Persons.cat(found) if found else Persons.empty(**_EMPTY_FIELDS)

    def _describe(self, k: int, maps: _DenseMaps, score: float, box: np.ndarray) -> Persons | None:
        """Builds person ``k``'s fields inside its bounding slices; None when it owns no pixel
        in the source frame (hidden by stronger people)."""
        region, source_region = maps.regions[k], maps.source_regions[k]
        if region is None or source_region is None:
            return None
        rows, cols = region
        person = maps.owner[region] == k + 1  # (h_k, w_k) bool
        source_labels = np.where(
            maps.source_owner[source_region] == k + 1, maps.source_parts[source_region], 0
        )
        offset = (source_region[1].start, source_region[0].start)
        mask = RunLengthMask.encode(source_labels, offset, maps.source_size)
        part_area = mask.label_areas(NUM_PARTS).astype(np.float32)
        present = part_area > 0
        # Softmaxes run on the person's crop only: most of a frame is nobody's.
        part_probs = softmax(maps.part_logits[rows, cols], axis=-1).transpose(2, 0, 1)
        part_scores = part_pixel_scores(
            part_probs, maps.part_map[region], person, self.qam_threshold
        )
        part_scores = np.where(present, np.nan_to_num(part_scores), 0.0)
        instance_score = pixel_score(maps.mask_probs[rows, cols, k], person, self.qam_threshold)
        confident_parts = part_scores[1:][present[1:] & (part_scores[1:] > 0)]
        quality = 0.0
        if not np.isnan(instance_score) and confident_parts.size:
            s_p = confident_parts.mean()
            quality = float(qam_score(score, instance_score, s_p, *self.qam_weights))
        labels = maps.part_map[region][person].astype(np.int64)  # (P,)
        weights = np.take_along_axis(part_probs[:, person], labels[None], axis=0)[0]  # (P,)
        distributions = {
            name: part_distribution(
                labels, weights, softmax(logits[rows, cols][person], axis=-1).T, present
            )
            for name, logits in maps.head_logits.items()
        }
        return Persons(
            xyxy=box[None],
            score=np.array([score]),
            masks=[mask],
            quality=np.array([quality]),
            part_area=part_area[None],
            part_score=part_scores[None],
            **{n: d[None] for n, d in distributions.items()},
        )


@dataclass
class _DenseMaps:
    """One image's decoded maps over the letterbox content region (h, w) and the source frame.

    Attributes:
        owner: (h, w) int32 1-based index of the kept person owning each pixel, 0 = nobody.
        mask_probs: (h, w, K) instance mask probabilities (channel-last, as cv2 resizes).
        part_logits: (h, w, 22) attribute logits.
        part_map: (h, w) uint8 foreground argmax part.
        head_logits: color/size/pattern logits, (h, w, C) each.
        source_owner, source_parts: owner and part map resized to the source frame.
        source_size: (height, width) of the source frame.
        regions, source_regions: per person, bounding slices in each map (None = no pixel).
    """

    owner: np.ndarray
    mask_probs: np.ndarray
    part_logits: np.ndarray
    part_map: np.ndarray
    head_logits: dict[str, np.ndarray]
    source_owner: np.ndarray
    source_parts: np.ndarray
    source_size: tuple[int, int]
    regions: list
    source_regions: list


def _dense_maps(
    outputs: Mapping[str, np.ndarray],
    keep: np.ndarray,
    scores: np.ndarray,
    letterbox: Letterbox,
    mask_threshold: float,
) -> _DenseMaps:
    """Upsamples the kept queries' masks and the semantic heads and resolves overlaps."""
    content = content_box(letterbox)
    mask_probs = sigmoid(upsample_crop(outputs["masks"][keep], letterbox, content))
    owner = _resolve_overlaps(mask_probs, scores, mask_threshold) + 1  # (h, w), 0 = none
    part_logits = upsample_crop(outputs["attribute"], letterbox, content)
    part_map = part_logits[..., 1:].argmax(-1).astype(np.uint8) + 1  # as argmax of softmax
    head_logits = {n: upsample_crop(outputs[n], letterbox, content) for n in CHARACTERISTIC_HEADS}
    source_owner, source_parts = _to_source(owner, part_map, letterbox)
    return _DenseMaps(
        owner=owner,
        mask_probs=mask_probs,
        part_logits=part_logits,
        part_map=part_map,
        head_logits=head_logits,
        source_owner=source_owner,
        source_parts=source_parts,
        source_size=letterbox.source_size,
        regions=find_objects(owner, max_label=keep.size),
        source_regions=find_objects(source_owner, max_label=keep.size),
    )


def _resolve_overlaps(mask_probs: np.ndarray, scores: np.ndarray, threshold: float) -> np.ndarray:
    """(h, w, K) probabilities -> (h, w) int owner index (-1 = nobody); a contested pixel goes
    to the person with the highest score * probability (ties: the higher-ranked person)."""
    claims = np.where(mask_probs > threshold, mask_probs * scores, -1.0)
    owner = claims.argmax(-1)
    return np.where(claims.max(-1) > 0, owner, -1).astype(np.int32)


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
