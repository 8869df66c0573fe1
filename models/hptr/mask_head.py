"""Instance-mask branch in DETR's segmentation-head style.

Each query's attention map over the encoder memory (``QueryAttentionMap``) is joined with the
projected stride-32 features and refined by a top-down pathway whose lateral connections are
the decoder pyramid's levels at strides 16, 8 and 4 (``MaskHead``). Queries are folded into
the batch axis, so channels shrink as resolution grows to keep the cost down.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _conv_gn_relu(in_channels: int, out_channels: int) -> nn.Sequential:
    groups = 8
    while out_channels % groups:
        groups //= 2
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 3, padding=1),
        nn.GroupNorm(groups, out_channels),
        nn.ReLU(inplace=True),
    )


class QueryAttentionMap(nn.Module):
    """Multi-head attention weights of every query over every memory position (softmax over
    heads and positions jointly, as DETR's ``MHAttentionMap``).

    Args:
        dim: query/memory width D.
        heads: attention heads M.
    """

    def __init__(self, *, dim: int, heads: int) -> None:
        super().__init__()
        self.heads = heads
        self.q_linear = nn.Linear(dim, dim)
        self.k_linear = nn.Linear(dim, dim)
        self.scale = float(dim / heads) ** -0.5

    def forward(self, queries: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        """queries (B, Q, D), memory (B, D, h, w) -> (B, Q, M, h, w) weights."""
        b, q, d = queries.shape
        per_head = d // self.heads
        query = self.q_linear(queries).reshape(b, q, self.heads, per_head)
        key = F.conv2d(memory, self.k_linear.weight[:, :, None, None], self.k_linear.bias)
        key = key.reshape(b, self.heads, per_head, memory.shape[-2], memory.shape[-1])
        weights = torch.einsum("bqnc,bnchw->bqnhw", query * self.scale, key)
        flat = weights.flatten(2).softmax(-1)
        return flat.reshape(weights.shape)


class MaskHead(nn.Module):
    """Top-down pathway from (features, attention maps) at stride 32 to mask logits at stride 4.

    Args:
        dim: width D of the projected stride-32 features.
        heads: attention heads M (extra input channels).
        lateral_channels: channels of the pyramid laterals (strides 16, 8, 4).
        context_dim: width of the first conv; later stages use /2, /4, /8.
    """

    def __init__(self, *, dim: int, heads: int, lateral_channels: int, context_dim: int) -> None:
        super().__init__()
        widths = [context_dim, context_dim // 2, context_dim // 4, context_dim // 8]
        if widths[-1] < 1:
            raise ValueError(f"mask context_dim must be >= 8, got {context_dim}")
        self.stem = nn.Sequential(
            _conv_gn_relu(dim + heads, widths[0]), _conv_gn_relu(widths[0], widths[0])
        )
        self.adapters = nn.ModuleList(nn.Conv2d(lateral_channels, w, 1) for w in widths[:3])
        self.refine = nn.ModuleList(_conv_gn_relu(widths[i], widths[i + 1]) for i in range(3))
        self.out = nn.Conv2d(widths[-1], 1, 3, padding=1)

    def forward(
        self, features: torch.Tensor, attention: torch.Tensor, laterals: list[torch.Tensor]
    ) -> torch.Tensor:
        """Builds one mask per query.

        Args:
            features: (B, D, h, w) projected stride-32 features.
            attention: (B, Q, M, h, w) query attention maps.
            laterals: pyramid levels [(B, C, H/16, W/16), (B, C, H/8, W/8), (B, C, H/4, W/4)].

        Returns:
            (B, Q, H/4, W/4) mask logits.
        """
        num_queries = attention.shape[1]
        x = torch.cat([_repeat_per_query(features, num_queries), attention.flatten(0, 1)], 1)
        x = self.stem(x)  # (B*Q, C0, h, w)
        for adapter, refine, lateral in zip(self.adapters, self.refine, laterals, strict=True):
            lateral = _repeat_per_query(adapter(lateral), num_queries)
            x = refine(lateral + F.interpolate(x, scale_factor=2.0, mode="nearest"))
        masks = self.out(x)  # (B*Q, 1, H/4, W/4)
        return masks.reshape(attention.shape[0], num_queries, masks.shape[-2], masks.shape[-1])


def _repeat_per_query(x: torch.Tensor, num_queries: int) -> torch.Tensor:
    """(B, C, H, W) -> (B*Q, C, H, W), each image repeated for its queries."""
    return x.unsqueeze(1).repeat(1, num_queries, 1, 1, 1).flatten(0, 1)


def build_mask_head(
    dim: int, heads: int, lateral_channels: int, context_dim: int = 128
) -> MaskHead:
    """Builds the mask branch for a transformer of width ``dim`` with ``heads`` heads."""
    return MaskHead(
        dim=dim, heads=heads, lateral_channels=lateral_channels, context_dim=context_dim
    )
