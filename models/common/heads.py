"""Semantic Block: per-pixel classification heads on the concatenated up-scaled pyramid."""

from __future__ import annotations

import torch
from torch import nn

from describeme.labels import NUM_COLORS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES
from describeme.models.common.pyramid import conv_gn_relu

# Head name -> number of classes (class 0 = background / none in every head).
SEMANTIC_HEADS: dict[str, int] = {
    "attribute": NUM_PARTS,
    "size": NUM_SIZES,
    "pattern": NUM_PATTERNS,
    "color": NUM_COLORS,
}


class SemanticHeads(nn.Module):
    """One small conv head per semantic task, all reading the same stride-4 features.

    Args:
        in_channels: channels of the concatenated up-scaled pyramid.
        hidden_channels: channels of each head's 3x3 conv.
        num_classes: head name -> classes (defaults to :data:`SEMANTIC_HEADS`).
    """

    def __init__(
        self, *, in_channels: int, hidden_channels: int, num_classes: dict[str, int] | None = None
    ) -> None:
        super().__init__()
        num_classes = dict(SEMANTIC_HEADS if num_classes is None else num_classes)
        self.heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    conv_gn_relu(in_channels, hidden_channels),
                    nn.Conv2d(hidden_channels, classes, 1),
                )
                for name, classes in num_classes.items()
            }
        )

    def forward(self, features: torch.Tensor) -> dict[str, torch.Tensor]:
        """(B, C, H/4, W/4) -> {name: (B, K_name, H/4, W/4) logits}."""
        return {name: head(features) for name, head in self.heads.items()}


def build_semantic_heads(in_channels: int, hidden_channels: int = 64) -> SemanticHeads:
    """Builds the attribute (22), size (5), pattern (5) and color (13) heads."""
    return SemanticHeads(in_channels=in_channels, hidden_channels=hidden_channels)
