"""Training targets of PersonLab's keypoint heads from dataset items.

From per-image ``keypoints`` (N, 17, 3) (x, y, visibility) in input pixels and ``masks``
(N, H, W) bool (what :mod:`describeme.models.datasets` yields), on the stride-``s`` grid of
cell centres (see :mod:`describeme.models.personlab.refine`):

- heatmap k: 1 inside the disk of radius R around any labelled keypoint k;
- short offsets k: from the cell to the nearest labelled keypoint k whose disk holds it;
- mid offsets (k -> l): on the disks of keypoint k of people with both k and l labelled,
  to keypoint l of the person whose keypoint k is nearest;
- segmentation: 1 where at least half of the cell is covered by people;
- long offsets k: on cells that belong to exactly one person (at least half covered by that
  person, by no other), to that person's keypoint k when it is labelled.

Each offset target comes with a mask saying where its loss applies. Everything is vectorised
over people, keypoints and cells.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
import torch.nn.functional as F

from describeme.labels import NUM_KEYPOINTS
from describeme.models.personlab.model import DIRECTED_EDGES, NUM_EDGES
from describeme.models.personlab.refine import cell_positions

TARGET_KEYS = (
    "heatmaps",
    "short_offsets",
    "short_mask",
    "mid_offsets",
    "mid_mask",
    "segmentation",
    "long_offsets",
    "long_mask",
)
_SOURCES = [a for a, _ in DIRECTED_EDGES]
_TARGETS = [b for _, b in DIRECTED_EDGES]


def build_image_targets(
    keypoints: torch.Tensor, masks: torch.Tensor, stride: int, radius: float
) -> dict[str, torch.Tensor]:
    """Targets of one image.

    Args:
        keypoints: (N, 17, 3) float (x, y, v) input pixels; v > 0 = labelled.
        masks: (N, H, W) bool person masks at the input resolution (H, W multiples of stride).
        stride: output stride of the heads.
        radius: disk radius R in input pixels.

    Returns:
        ``heatmaps`` (17, h, w), ``short_offsets`` (34, h, w), ``short_mask`` (17, h, w),
        ``mid_offsets`` (64, h, w), ``mid_mask`` (32, h, w), ``segmentation`` (1, h, w),
        ``long_offsets`` (34, h, w), ``long_mask`` (17, h, w); float32, offsets in pixels.
    """
    _check_image_inputs(keypoints, masks, stride)
    _, height, width = masks.shape
    h, w = height // stride, width // stride
    positions = cell_positions(h, w, stride, keypoints.device)  # (2, h, w)
    xy = keypoints[..., :2].float()  # (N, K, 2)
    labelled = keypoints[..., 2] > 0  # (N, K)
    diff = xy[..., None, None] - positions  # (N, K, 2, h, w)
    dist = diff.norm(dim=2)  # (N, K, h, w)
    inside = (dist <= radius) & labelled[..., None, None]

    heatmaps = inside.any(0).float()  # (K, h, w)
    short, short_mask = _nearest_offsets(diff, dist, inside)  # (K, 2, h, w), (K, h, w)

    both = labelled[:, _SOURCES] & labelled[:, _TARGETS]  # (N, E)
    edge_inside = inside[:, _SOURCES] & both[..., None, None]  # (N, E, h, w)
    mid, mid_mask = _nearest_offsets(diff[:, _TARGETS], dist[:, _SOURCES], edge_inside)

    union = _cell_coverage(masks.any(0, keepdim=True), stride)[0]  # (h, w)
    long, long_mask = _long_offsets(diff, labelled, _cell_coverage(masks, stride) >= 0.5)
    return {
        "heatmaps": heatmaps,
        "short_offsets": short.reshape(2 * NUM_KEYPOINTS, h, w),
        "short_mask": short_mask.float(),
        "mid_offsets": mid.reshape(2 * NUM_EDGES, h, w),
        "mid_mask": mid_mask.float(),
        "segmentation": (union >= 0.5).float()[None],
        "long_offsets": long.reshape(2 * NUM_KEYPOINTS, h, w),
        "long_mask": long_mask.float(),
    }


def build_targets(
    keypoints: Sequence[torch.Tensor],
    masks: Sequence[torch.Tensor],
    stride: int,
    radius: float,
) -> dict[str, torch.Tensor]:
    """Batched :func:`build_image_targets`: lists of B per-image tensors -> (B, ...) tensors."""
    if len(keypoints) != len(masks):
        raise ValueError(f"got {len(keypoints)} keypoint sets for {len(masks)} mask sets")
    if not keypoints:
        raise ValueError("build_targets needs at least one image")
    images = [
        build_image_targets(k, m, stride, radius) for k, m in zip(keypoints, masks, strict=True)
    ]
    return {key: torch.stack([item[key] for item in images]) for key in TARGET_KEYS}


def _long_offsets(
    diff: torch.Tensor, labelled: torch.Tensor, members: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Long-range targets on cells of exactly one person.

    Args:
        diff: (N, K, 2, h, w) offsets from each cell to each person's keypoints.
        labelled: (N, K) bool labelled keypoints.
        members: (N, h, w) bool cells at least half covered by each person.

    Returns:
        ``(offsets (K, 2, h, w), mask (K, h, w) bool)``; offsets are 0 outside the mask.
    """
    count, _, _, h, w = diff.shape
    if count == 0:
        return (
            torch.zeros(NUM_KEYPOINTS, 2, h, w, device=diff.device),
            torch.zeros(NUM_KEYPOINTS, h, w, dtype=torch.bool, device=diff.device),
        )
    single = members.sum(0) == 1  # (h, w)
    owner = members.float().argmax(0)  # (h, w), meaningful where single
    index = owner[None, None, None].expand(1, NUM_KEYPOINTS, 2, h, w)
    offsets = diff.gather(0, index)[0]  # (K, 2, h, w)
    mask = single & labelled[owner].permute(2, 0, 1)  # (K, h, w)
    return offsets * mask[:, None], mask


def _nearest_offsets(
    diff: torch.Tensor, dist: torch.Tensor, inside: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Per channel, the offset towards the person whose disk centre is nearest.

    Args:
        diff: (N, C, 2, h, w) offsets from each cell to each person's target point.
        dist: (N, C, h, w) distance to each person's disk centre.
        inside: (N, C, h, w) bool, cell inside that person's disk (and labelled).

    Returns:
        ``(offsets (C, 2, h, w), mask (C, h, w) bool)``; offsets are 0 outside the mask.
    """
    count, channels, _, h, w = diff.shape
    if count == 0:
        return (
            torch.zeros(channels, 2, h, w, device=diff.device),
            torch.zeros(channels, h, w, dtype=torch.bool, device=diff.device),
        )
    nearest = torch.where(inside, dist, torch.full_like(dist, float("inf"))).argmin(0)
    index = nearest[None, :, None].expand(1, channels, 2, h, w)
    offsets = diff.gather(0, index)[0]  # (C, 2, h, w)
    mask = inside.any(0)
    return offsets * mask[:, None], mask


def _cell_coverage(masks: torch.Tensor, stride: int) -> torch.Tensor:
    """(N, H, W) bool -> (N, h, w) fraction of each stride x stride cell covered."""
    return F.avg_pool2d(masks.float()[:, None], stride)[:, 0]


def _check_image_inputs(keypoints: torch.Tensor, masks: torch.Tensor, stride: int) -> None:
    if keypoints.ndim != 3 or tuple(keypoints.shape[1:]) != (NUM_KEYPOINTS, 3):
        raise ValueError(f"keypoints must be (N, {NUM_KEYPOINTS}, 3), got {tuple(keypoints.shape)}")
    if masks.ndim != 3 or masks.shape[0] != keypoints.shape[0]:
        raise ValueError(
            f"masks must be (N, H, W) with N = {keypoints.shape[0]} people, "
            f"got {tuple(masks.shape)}"
        )
    if masks.shape[1] % stride or masks.shape[2] % stride:
        raise ValueError(
            f"mask size {tuple(masks.shape[1:])} must be a multiple of the output stride {stride}"
        )
