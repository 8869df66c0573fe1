"""Decoder pyramid: FPN top-down merge, each level through 4 convs, resized to the finest level.

As in HPTR's common backbone: the encoder's ``C2..C5`` get 1x1 lateral projections and a
top-down sum (FPN); each level then goes through four 3x3 conv + GroupNorm + ReLU layers and
is upsampled to stride 4. GroupNorm (not BatchNorm) keeps the heads independent of the batch,
so a batched forward equals single-image forwards.
"""

from __future__ import annotations

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
        in_channels: channels of ``C2..C5`` (strides 4, 8, 16, 32).
        channels: channels of every pyramid level.
        convs_per_level: conv layers each level goes through (4 in HPTR).
    """

    def __init__(self, *, in_channels: list[int], channels: int, convs_per_level: int = 4) -> None:
        super().__init__()
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
            features: ``[C2, C3, C4, C5]``, (B, C_i, H/2^(i+2), W/2^(i+2)).

        Returns:
            ``levels``: [P2, P3, P4, P5] after their convs, (B, D, H/4..H/32, W/4..W/32);
            ``upscaled``: the same four resized to stride 4, each (B, D, H/4, W/4).
        """
        merged = self.lateral[-1](features[-1])
        laterals = [merged]
        for index in range(len(features) - 2, -1, -1):
            merged = self.lateral[index](features[index]) + F.interpolate(
                merged, scale_factor=2.0, mode="nearest"
            )
            laterals.insert(0, merged)
        levels = [convs(x) for convs, x in zip(self.level_convs, laterals, strict=True)]
        upscaled = [levels[0]] + [
            F.interpolate(x, scale_factor=float(2**i), mode="bilinear", align_corners=False)
            for i, x in enumerate(levels[1:], start=1)
        ]
        return levels, upscaled


def build_pyramid_decoder(
    in_channels: list[int], channels: int = 128, convs_per_level: int = 4
) -> PyramidDecoder:
    """Builds the decoder pyramid for an encoder with ``in_channels`` at strides 4..32."""
    return PyramidDecoder(
        in_channels=in_channels, channels=channels, convs_per_level=convs_per_level
    )
