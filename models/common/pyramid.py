"""Decoder pyramid: FPN top-down merge, each level through 4 convs, resized to the finest level.

As in HPTR's common backbone: the encoder's ``C2..C5`` get 1x1 lateral projections and a
top-down sum (FPN); each level then goes through four 3x3 conv + GroupNorm + ReLU layers and
is upsampled to the finest level's stride (4). The level strides come from the encoder
(``feature_strides``): a dilated encoder has levels of equal stride (4, 8, 8, 8), which the
top-down path sums without resizing. Resize factors are fixed integers from the strides, not
read from tensor shapes, so the exported graph has no shape arithmetic. GroupNorm (not
BatchNorm) keeps the heads independent of the batch, so a batched forward equals single-image
forwards.
"""

from __future__ import annotations

from itertools import pairwise

import torch
import torch.nn.functional as F
from torch import nn


def conv_gn_relu(in_channels: int, out_channels: int, groups: int = 8) -> nn.Sequential:
    """3x3 conv + GroupNorm + ReLU (groups shrink to divide ``out_channels``)."""
    while out_channels % groups:
        groups //= 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False),
        nn.GroupNorm(groups, out_channels),
        nn.ReLU(inplace=True),
    )


class PyramidDecoder(nn.Module):
    """FPN-style decoder returning per-level features and their stride-4 up-scaled versions.

    Args:
        in_channels: channels of ``C2..C5``.
        channels: channels of every pyramid level.
        convs_per_level: conv layers each level goes through (4 in HPTR).
        strides: stride of each input level, finest first; each divides the next (equal
            strides allowed). Default (4, 8, 16, 32).
    """

    def __init__(
        self,
        *,
        in_channels: list[int],
        channels: int,
        convs_per_level: int = 4,
        strides: tuple[int, ...] = (4, 8, 16, 32),
    ) -> None:
        super().__init__()
        self.strides = _check_strides(tuple(strides), len(in_channels))
        self.lateral = nn.ModuleList(nn.Conv2d(c, channels, 1) for c in in_channels)
        self.level_convs = nn.ModuleList(
            nn.Sequential(*(conv_gn_relu(channels, channels) for _ in range(convs_per_level)))
            for _ in in_channels
        )
        self.channels = channels

    def forward(
        self, features: list[torch.Tensor]
    ) -> tuple[list[torch.Tensor], list[torch.Tensor]]:
        """Merges encoder features.

        Args:
            features: ``[C2, C3, C4, C5]``, (B, C_i, H/s_i, W/s_i) for s_i in ``strides``.

        Returns:
            ``levels``: [P2, P3, P4, P5] after their convs, (B, D, H/s_i, W/s_i);
            ``upscaled``: the same four resized to the finest stride, each (B, D, H/4, W/4).
        """
        merged = self.lateral[-1](features[-1])
        laterals = [merged]
        for index in range(len(features) - 2, -1, -1):
            factor = self.strides[index + 1] // self.strides[index]
            merged = self.lateral[index](features[index]) + _upsample(merged, factor, "nearest")
            laterals.insert(0, merged)
        levels = [convs(x) for convs, x in zip(self.level_convs, laterals, strict=True)]
        upscaled = [
            _upsample(x, stride // self.strides[0], "bilinear")
            for x, stride in zip(levels, self.strides, strict=True)
        ]
        return levels, upscaled


def _upsample(x: torch.Tensor, factor: int, mode: str) -> torch.Tensor:
    """Resizes by an integer ``factor``; 1 (levels of equal stride) is the identity."""
    if factor == 1:
        return x
    if mode == "nearest":
        return F.interpolate(x, scale_factor=float(factor), mode="nearest")
    return F.interpolate(x, scale_factor=float(factor), mode=mode, align_corners=False)


def _check_strides(strides: tuple[int, ...], levels: int) -> tuple[int, ...]:
    if len(strides) != levels or any(s < 1 for s in strides):
        raise ValueError(f"pyramid strides must be {levels} positive ints, got {strides}")
    if any(coarse % fine for fine, coarse in pairwise(strides)):  # also catches fine > coarse
        raise ValueError(
            f"pyramid strides must be non-decreasing, each dividing the next, got {strides}"
        )
    return strides


def build_pyramid_decoder(
    in_channels: list[int],
    channels: int = 128,
    convs_per_level: int = 4,
    strides: tuple[int, ...] = (4, 8, 16, 32),
) -> PyramidDecoder:
    """Builds the decoder pyramid for an encoder with ``in_channels`` at ``strides`` (pass the
    encoder's ``feature_strides``; the default is the undilated 4..32)."""
    return PyramidDecoder(
        in_channels=in_channels,
        channels=channels,
        convs_per_level=convs_per_level,
        strides=strides,
    )
