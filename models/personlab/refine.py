"""Differentiable bilinear sampling of offset fields and PersonLab's recurrent refinement.

Used by the loss (gradients flow through the sampled fields) and by the decoder (under
``torch.no_grad``), so training and inference refine offsets the same way.

Coordinates are input pixels; cell (i, j) of a stride-``s`` map sits at
``((j + 0.5) s - 0.5, (i + 0.5) s - 0.5)``. With that convention, normalising an input-pixel
coordinate against the input size ``s * w`` with ``align_corners=False`` addresses the map
exactly, whatever the stride.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from describeme.labels import NUM_KEYPOINTS
from describeme.models.personlab.model import DIRECTED_EDGES, NUM_EDGES

# Target keypoint of each directed edge (whose short offsets refine the mid-range offsets).
EDGE_TARGETS: tuple[int, ...] = tuple(b for _, b in DIRECTED_EDGES)


def cell_positions(
    height: int, width: int, stride: int, device: torch.device | None = None
) -> torch.Tensor:
    """(2, h, w) float32 input-pixel (x, y) of every cell centre of a stride-``stride`` map."""
    ys = (torch.arange(height, dtype=torch.float32, device=device) + 0.5) * stride - 0.5
    xs = (torch.arange(width, dtype=torch.float32, device=device) + 0.5) * stride - 0.5
    grid_y, grid_x = torch.meshgrid(ys, xs, indexing="ij")
    return torch.stack([grid_x, grid_y])


def sample_fields(field: torch.Tensor, points: torch.Tensor, stride: int) -> torch.Tensor:
    """Bilinearly samples a field at input-pixel points (border values outside the map).

    Args:
        field: (N, C, h, w) values on the stride-``stride`` grid.
        points: (N, 2, h', w') input-pixel (x, y) sample positions.
        stride: input pixels per cell.

    Returns:
        (N, C, h', w') sampled values.
    """
    height, width = field.shape[-2:]
    size = torch.tensor(
        [width * stride, height * stride], dtype=points.dtype, device=points.device
    ).view(1, 2, 1, 1)
    grid = ((points + 0.5) / size * 2 - 1).permute(0, 2, 3, 1)  # (N, h', w', 2)
    return F.grid_sample(field, grid, mode="bilinear", padding_mode="border", align_corners=False)


def _per_channel_pairs(offsets: torch.Tensor) -> torch.Tensor:
    """(B, 2M, h, w) -> (B, M, 2, h, w)."""
    batch, channels, height, width = offsets.shape
    return offsets.view(batch, channels // 2, 2, height, width)


def refine_mid_offsets(
    mid: torch.Tensor, short: torch.Tensor, stride: int, steps: int = 2
) -> torch.Tensor:
    """Mid-range refinement with short offsets: M_kl(x) <- M_kl(x) + S_l(x + M_kl(x)), ``steps``
    times (twice in the paper).

    Args:
        mid: (B, 64, h, w) mid-range offsets of :data:`DIRECTED_EDGES`, input pixels.
        short: (B, 34, h, w) short-range offsets.
        stride: output stride.

    Returns:
        (B, 64, h, w) refined mid-range offsets.
    """
    batch, _, height, width = mid.shape
    base = cell_positions(height, width, stride, mid.device).to(mid.dtype)  # (2, h, w)
    short_pairs = _per_channel_pairs(short)  # (B, K, 2, h, w)
    targets = short_pairs[:, list(EDGE_TARGETS)].reshape(batch * NUM_EDGES, 2, height, width)
    current = mid.reshape(batch * NUM_EDGES, 2, height, width)
    for _ in range(steps):
        current = current + sample_fields(targets, base + current, stride)
    return current.reshape(batch, 2 * NUM_EDGES, height, width)


def refine_long_offsets(
    long: torch.Tensor,
    short: torch.Tensor,
    stride: int,
    self_steps: int = 2,
    short_steps: int = 2,
) -> torch.Tensor:
    """Long-range refinement: L_k(x) <- L_k(x) + L_k(x + L_k(x)) ``self_steps`` times, then
    L_k(x) <- L_k(x) + S_k(x + L_k(x)) ``short_steps`` times (2 and 2 in the paper).

    Args:
        long: (B, 34, h, w) long-range offsets, input pixels.
        short: (B, 34, h, w) short-range offsets.
        stride: output stride.

    Returns:
        (B, 34, h, w) refined long-range offsets.
    """
    batch, _, height, width = long.shape
    base = cell_positions(height, width, stride, long.device).to(long.dtype)
    flat_shape = (batch * NUM_KEYPOINTS, 2, height, width)
    current = long.reshape(flat_shape)
    short_flat = short.reshape(flat_shape)
    for _ in range(self_steps):  # each step reads the field the previous step produced
        current = current + sample_fields(current, base + current, stride)
    for _ in range(short_steps):
        current = current + sample_fields(short_flat, base + current, stride)
    return current.reshape(batch, 2 * NUM_KEYPOINTS, height, width)
