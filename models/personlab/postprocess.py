"""PersonLab raw head outputs -> :class:`describeme.types.Persons` in source-frame pixels.

Runs outside the exported graph. Per image: mid-range offsets are refined with the short
offsets (twice) and long-range offsets by themselves (twice) and by the short offsets (twice),
as in training; poses come from :func:`decode_poses` (Hough voting, greedy grouping,
expected-OKS scores, keypoint soft-NMS); people scoring below ``score_threshold`` are dropped.
Each person's pixels come from the geometric embedding (:mod:`.segment`), computed at the
output stride and bilinearly upsampled to the letterboxed content region with the
segmentation probability. ``exclusive_masks`` (the default, what the tracker's mask IoU
expects) gives a pixel claimed by several people to the best-scoring of them (people come
best first; :mod:`.segment`); without it masks may overlap, as in the paper.

Inside a person, each pixel's part is the semantic argmax over the foreground classes, and per
part the color/size/pattern distributions are the part-probability-weighted head
probabilities, as HPTR does (its helpers are imported, not copied), but read once per cell of
the semantic heads' stride-4 grid rather than at every upsampled pixel (a sixteenth of the
work for the same area-weighted means) in the default exclusive mode. ``quality`` is
QANet's QAM score with S_b = the soft-NMS score, S_i = the pixel score of the segmentation
probability over the person and S_p = the mean part pixel score. Boxes are the mask's box in
the source frame, or the box of the confident keypoints for a person without pixels.
Keypoints are (x, y, expected-OKS score) in source pixels; people come best first.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch

from describeme.geometry import Letterbox
from describeme.labels import NUM_KEYPOINTS, NUM_PARTS
from describeme.masks import RunLengthMask
from describeme.models.common.dense import (
    content_box,
    outputs_to_numpy,
    part_distribution,
    sigmoid,
    softmax,
    upsample_crop,
)
from describeme.models.common.tables import owner_masks, pixel_tables
from describeme.models.personlab.content import (
    CHARACTERISTIC_HEADS,
    ContentMaps,
    content_maps,
    foreground_parts,
    semantic_samples,
    source_mask,
    source_sampling,
)
from describeme.models.personlab.decode import Poses, decode_poses
from describeme.models.personlab.model import NUM_EDGES, OUTPUT_STRIDES
from describeme.models.personlab.refine import refine_long_offsets, refine_mid_offsets
from describeme.models.personlab.segment import (
    assign_pixels,
    embedding_distances,
    exclusive_owner,
)
from describeme.operators.quality import part_pixel_scores, pixel_score, qam_score
from describeme.types import Persons

_SHAPES = {
    "heatmaps": NUM_KEYPOINTS,
    "short_offsets": 2 * NUM_KEYPOINTS,
    "mid_offsets": 2 * NUM_EDGES,
    "segmentation": 1,
    "long_offsets": 2 * NUM_KEYPOINTS,
}
_REQUIRED = (*_SHAPES, "attribute", *CHARACTERISTIC_HEADS)
_EMPTY_FIELDS = dict(
    keypoints=True, quality=True, part_area=True, part_score=True, color=True, size=True,
    pattern=True, masks=True,
)  # fmt: skip
_FAR = 1e6  # stands in for "infinitely far" before bilinear upsampling


class PersonLabPostprocessor:
    """Decodes PersonLab head outputs into people.

    Args:
        disk_radius: the model's R in input pixels (``model.model_args["disk_radius"]``).
        score_threshold: minimum soft-NMS person score.
        peak_threshold: minimum Hough score of a seed (0.01 in the paper).
        nms_radius: r in input pixels for seed rejection and soft-NMS (10 in the paper).
        hough_stride: input pixels per Hough score-map cell.
        max_people: most people decoded per image (at most 255: mask labels are uint8).
        embedding_threshold: t of the embedding assignment (0.25 in the paper).
        segmentation_threshold: minimum person probability of a pixel (0.5).
        exclusive_masks: give shared pixels to the best-scoring claimant (for the tracker).
        qam_threshold: QANet's T; qam_weights: exponents (a, b, c).
        keypoint_box_threshold: heatmap probability a keypoint needs to shape a maskless
            person's box.
    """

    def __init__(
        self,
        *,
        disk_radius: float,
        score_threshold: float = 0.15,
        peak_threshold: float = 0.01,
        nms_radius: float = 10.0,
        hough_stride: int = 1,
        max_people: int = 40,
        embedding_threshold: float = 0.25,
        segmentation_threshold: float = 0.5,
        exclusive_masks: bool = True,
        qam_threshold: float = 0.2,
        qam_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        keypoint_box_threshold: float = 0.5,
    ) -> None:
        for name, value in (
            ("score_threshold", score_threshold),
            ("peak_threshold", peak_threshold),
            ("segmentation_threshold", segmentation_threshold),
            ("qam_threshold", qam_threshold),
            ("keypoint_box_threshold", keypoint_box_threshold),
        ):
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {value}")
        if disk_radius <= 0 or nms_radius <= 0 or embedding_threshold <= 0:
            raise ValueError(
                "disk_radius, nms_radius and embedding_threshold must be positive, got "
                f"{disk_radius}, {nms_radius}, {embedding_threshold}"
            )
        if hough_stride < 1 or not 1 <= max_people <= 255:
            raise ValueError(
                f"hough_stride must be >= 1 and max_people in [1, 255], got {hough_stride}, "
                f"{max_people}"
            )
        self.disk_radius, self.score_threshold = float(disk_radius), score_threshold
        self.peak_threshold, self.nms_radius = peak_threshold, float(nms_radius)
        self.hough_stride, self.max_people = int(hough_stride), int(max_people)
        self.embedding_threshold = embedding_threshold
        self.segmentation_threshold = segmentation_threshold
        self.exclusive_masks = exclusive_masks
        self.qam_threshold, self.qam_weights = qam_threshold, tuple(qam_weights)
        self.keypoint_box_threshold = keypoint_box_threshold

    def __call__(
        self, outputs: Mapping[str, Any], letterboxes: Sequence[Letterbox]
    ) -> list[Persons]:
        """Decodes a batch (outputs with a leading batch axis; one letterbox per image)."""
        arrays = outputs_to_numpy(outputs, _REQUIRED, "PersonLab")
        batch = arrays["heatmaps"].shape[0]
        if len(letterboxes) != batch:
            raise ValueError(f"got {len(letterboxes)} letterboxes for a batch of {batch} images")
        return [
            self.decode_image({k: v[i] for k, v in arrays.items()}, letterboxes[i])
            for i in range(batch)
        ]

    def image_poses(
        self, outputs: Mapping[str, np.ndarray], input_size: tuple[int, int]
    ) -> tuple[Poses, np.ndarray]:
        """Poses scoring at least ``score_threshold`` (model input pixels) and refined
        long-range offsets (17, 2, h, w) of one image."""
        stride = _check_image_outputs(outputs, input_size)
        height, width = outputs["heatmaps"].shape[-2:]
        mid, long = _refined_offsets(outputs, stride)
        poses = decode_poses(
            sigmoid(outputs["heatmaps"].astype(np.float64)),
            outputs["short_offsets"].astype(np.float64).reshape(NUM_KEYPOINTS, 2, height, width),
            mid.astype(np.float64).reshape(NUM_EDGES, 2, height, width),
            stride=stride,
            radius=self.disk_radius,
            input_size=input_size,
            peak_threshold=self.peak_threshold,
            nms_radius=self.nms_radius,
            hough_stride=self.hough_stride,
            max_people=self.max_people,
            min_score=self.score_threshold,
        )
        return poses, long.reshape(NUM_KEYPOINTS, 2, height, width)

    def decode_image(self, outputs: Mapping[str, np.ndarray], letterbox: Letterbox) -> Persons:
        """Decodes one image's outputs (no batch axis) into people in source pixels."""
        poses, long = self.image_poses(outputs, letterbox.target_size)
        keep = poses.scores >= self.score_threshold
        if not keep.any():
            return Persons.empty(**_EMPTY_FIELDS)
        keypoints, scores, probs = (
            poses.keypoints[keep],
            poses.scores[keep],
            poses.keypoint_probs[keep],
        )
        stride = letterbox.target_size[0] // outputs["heatmaps"].shape[-2]
        distances = np.minimum(embedding_distances(long, keypoints, probs, stride), _FAR)
        maps = content_maps(outputs, letterbox, heads=not self.exclusive_masks)
        content = content_box(letterbox)
        up = upsample_crop(distances, letterbox, content)  # (h, w, N)
        source_keypoints = keypoints.copy()
        source_keypoints[..., :2] = letterbox.points_to_source(keypoints[..., :2])
        if self.exclusive_masks:
            owner = exclusive_owner(
                up, maps.segmentation, self.embedding_threshold, self.segmentation_threshold
            )
            return self._exclusive_people(owner, maps, scores, source_keypoints, probs)
        members = assign_pixels(
            up.transpose(2, 0, 1), maps.segmentation, self.embedding_threshold,
            self.segmentation_threshold,
        )  # fmt: skip
        rows_any, cols_any = members.any(2), members.any(1)  # (N, h), (N, w)
        part_map = foreground_parts(maps.part_logits)
        people = []
        for j in range(len(scores)):
            rows, cols = np.flatnonzero(rows_any[j]), np.flatnonzero(cols_any[j])
            region = None
            if rows.size:
                region = (slice(rows[0], rows[-1] + 1), slice(cols[0], cols[-1] + 1))
            fields = self._pixel_fields(members[j], region, maps, part_map, float(scores[j]))
            box = fields.pop("box")
            if box is None:
                box = self._keypoint_box(source_keypoints[j], probs[j], letterbox.source_size)
            people.append(
                Persons(
                    xyxy=box[None],
                    score=scores[j : j + 1],
                    keypoints=source_keypoints[j : j + 1],
                    **fields,
                )
            )
        return Persons.cat(people)

    def _exclusive_people(
        self,
        owner: np.ndarray,
        maps: ContentMaps,
        scores: np.ndarray,
        keypoints: np.ndarray,
        probs: np.ndarray,
    ) -> Persons:
        """People from the exclusive owner map, with every table a whole-image pass
        (:mod:`describeme.models.common.tables`) over the owned cells of the semantic heads'
        own grid (:func:`semantic_samples`): the cost does not grow with the crowd.

        Args:
            owner: (h, w) content-region owner map, 1 + person index (0 = nobody).
            keypoints: (N, 17, 3) in source pixels; probs: (N, 17) heatmap probabilities.
        """
        count = len(scores)
        part_map = foreground_parts(maps.part_logits, owner > 0)  # nobody's pixels are unread
        rows, cols = source_sampling(maps.content_shape, maps.source_size)
        # Nearest neighbour as whole rows, then columns: 4-5x faster than one 2-D fancy index.
        source_owner = owner.astype(np.uint8)[rows][:, cols]
        source_parts = part_map[rows][:, cols]
        masks, part_area = owner_masks(source_owner, source_parts, count)
        rows, cols, logits = semantic_samples(maps, owner)
        seg = maps.segmentation[rows, cols]
        tables = pixel_tables(
            owner[rows, cols], part_map[rows, cols], logits["attribute"],
            {n: logits[n] for n in CHARACTERISTIC_HEADS}, np.maximum(seg, 1 - seg), count,
            part_area, scores.astype(np.float64),
            threshold=self.qam_threshold, qam_weights=self.qam_weights,
        )  # fmt: skip
        empty = RunLengthMask.encode(np.zeros((0, 0), np.uint8), (0, 0), maps.source_size)
        boxes = [
            np.asarray(m.box, np.float32)
            if m is not None and m.area
            else self._keypoint_box(keypoints[j], probs[j], maps.source_size)
            for j, m in enumerate(masks)
        ]
        return Persons(
            xyxy=np.stack(boxes),
            score=scores,
            keypoints=keypoints,
            masks=[m if m is not None else empty for m in masks],
            quality=tables.quality.astype(np.float32),
            part_area=tables.part_area,
            part_score=tables.part_score,
            **tables.distributions,
        )

    def _pixel_fields(
        self,
        member: np.ndarray,
        region: tuple[slice, slice] | None,
        maps: ContentMaps,
        part_map: np.ndarray,
        score: float,
    ) -> dict[str, Any]:
        """Mask, box, part and characteristic fields of one person, each with a leading axis
        of 1 (``box`` is None for a person without pixels).

        Args:
            member: (h, w) bool content-region membership.
            region: bounding slices of ``member`` (None when empty).
            maps: the image's content-region maps.
            part_map: (h, w) content-region part labels (:func:`foreground_parts`).
            score: the person's soft-NMS score (QAM's S_b).
        """
        heads = maps.heads
        empty_mask = RunLengthMask.encode(np.zeros((0, 0), np.uint8), (0, 0), maps.source_size)
        fields: dict[str, Any] = {
            "masks": [empty_mask],
            "box": None,
            "quality": np.zeros(1, np.float32),
            "part_area": np.zeros((1, NUM_PARTS), np.float32),
            "part_score": np.zeros((1, NUM_PARTS), np.float32),
            **{n: np.zeros((1, NUM_PARTS, heads[n].shape[-1]), np.float32) for n in heads},
        }
        if region is None:
            return fields
        inside = member[region]  # (h_j, w_j) bool
        labels_crop = np.where(inside, part_map[region], 0).astype(np.uint8)
        origin = (region[0].start, region[1].start)
        mask = source_mask(labels_crop, origin, maps.content_shape, maps.source_size)
        part_area = mask.label_areas(NUM_PARTS).astype(np.float32)
        present = part_area > 0
        labels = labels_crop[inside].astype(np.int64)  # (P,)
        part_probs = softmax(maps.part_logits[region][inside], axis=-1)  # (P, 22)
        # quality's functions take (C, H, W) maps: the person's pixels as a 1 x P image.
        flat_probs = part_probs.T[:, None]  # (22, 1, P)
        everyone = np.ones((1, labels.size), bool)
        raw = part_pixel_scores(flat_probs, labels[None], everyone, self.qam_threshold)
        part_scores = np.where(present, np.nan_to_num(raw), 0.0).astype(np.float32)
        seg = maps.segmentation[region][inside]
        instance_score = pixel_score(np.maximum(seg, 1 - seg)[None], everyone, self.qam_threshold)
        confident = part_scores[1:][present[1:] & (part_scores[1:] > 0)]
        if not np.isnan(instance_score) and confident.size:
            s_p = confident.mean()
            fields["quality"][0] = qam_score(score, instance_score, s_p, *self.qam_weights)
        weights = np.take_along_axis(part_probs, labels[:, None], axis=1)[:, 0]  # (P,)
        for name, logits in heads.items():
            head_probs = softmax(logits[region][inside], axis=-1).T  # (C, P)
            fields[name] = part_distribution(labels, weights, head_probs, present)[None]
        fields.update(
            masks=[mask], part_area=part_area[None], part_score=part_scores[None],
            box=np.asarray(mask.box, dtype=np.float32) if mask.area else None,
        )  # fmt: skip
        return fields

    def _keypoint_box(
        self, keypoints: np.ndarray, probs: np.ndarray, source_size: tuple[int, int]
    ) -> np.ndarray:
        """Box of the keypoints with probability >= the threshold (all when none), clipped."""
        confident = keypoints[probs >= self.keypoint_box_threshold, :2]
        if confident.size == 0:
            confident = keypoints[:, :2]
        height, width = source_size
        x = np.clip(confident[:, 0], 0, width)
        y = np.clip(confident[:, 1], 0, height)
        return np.array([x.min(), y.min(), x.max(), y.max()], dtype=np.float32)


def _refined_offsets(
    outputs: Mapping[str, np.ndarray], stride: int
) -> tuple[np.ndarray, np.ndarray]:
    """Refined mid (64, h, w) and long (34, h, w) offsets, with the training-time refinement."""

    def tensor(name: str) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(outputs[name], dtype=np.float32))[None]

    with torch.no_grad():
        short = tensor("short_offsets")
        mid = refine_mid_offsets(tensor("mid_offsets"), short, stride)
        long = refine_long_offsets(tensor("long_offsets"), short, stride)
    return mid[0].numpy(), long[0].numpy()


def _check_image_outputs(outputs: Mapping[str, np.ndarray], input_size: tuple[int, int]) -> int:
    """Validates one image's heads and returns the output stride."""
    missing = [n for n in _REQUIRED if n not in outputs]
    if missing:
        raise ValueError(f"PersonLab outputs lack {missing}; got {sorted(outputs)}")
    heat = outputs["heatmaps"]
    if heat.ndim != 3:
        raise ValueError(f"heatmaps must be (17, h, w) per image, got {heat.shape}")
    height, width = heat.shape[-2:]
    stride = input_size[0] // height if height else 0
    if stride not in OUTPUT_STRIDES or (height * stride, width * stride) != tuple(input_size):
        raise ValueError(
            f"heatmaps are {height}x{width} but the letterbox targets {tuple(input_size)}: "
            f"expected maps at output stride {' or '.join(map(str, OUTPUT_STRIDES))}"
        )
    for name, channels in _SHAPES.items():
        if outputs[name].shape != (channels, height, width):
            raise ValueError(
                f"{name} must be ({channels}, {height}, {width}), got {outputs[name].shape}"
            )
    expected = (NUM_PARTS, input_size[0] // 4, input_size[1] // 4)
    if outputs["attribute"].shape != expected:
        raise ValueError(f"attribute must be {expected}, got {outputs['attribute'].shape}")
    return stride


def build_postprocessor(
    disk_radius: float = 20.0,
    score_threshold: float = 0.15,
    peak_threshold: float = 0.01,
    nms_radius: float = 10.0,
    hough_stride: int = 1,
    max_people: int = 40,
    embedding_threshold: float = 0.25,
    segmentation_threshold: float = 0.5,
    exclusive_masks: bool = True,
    qam_threshold: float = 0.2,
    qam_weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
    keypoint_box_threshold: float = 0.5,
) -> PersonLabPostprocessor:
    """Builds the postprocessor (``disk_radius`` must be the model's)."""
    return PersonLabPostprocessor(
        disk_radius=disk_radius,
        score_threshold=score_threshold,
        peak_threshold=peak_threshold,
        nms_radius=nms_radius,
        hough_stride=hough_stride,
        max_people=max_people,
        embedding_threshold=embedding_threshold,
        segmentation_threshold=segmentation_threshold,
        exclusive_masks=exclusive_masks,
        qam_threshold=qam_threshold,
        qam_weights=qam_weights,
        keypoint_box_threshold=keypoint_box_threshold,
    )
