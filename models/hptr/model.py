"""HPTR (Loesch & Audigier, ICIP 2021): bottom-up multi-task human parsing transformer.

Common backbone (encoder + decoder pyramid) -> Human Instance Block (DETR transformer with
class, box and mask branches) and Semantic Block (attribute, size, pattern, color heads).
``forward`` returns raw head outputs only; decoding lives in :mod:`models.hptr.postprocess`.

Input: RGB float32 images in [0, 1], (B, 3, H, W) with H and W multiples of 32 (ImageNet
normalisation happens inside the graph so every backend takes the same input).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
from torch import nn

from describeme.models.common.backbones import MobileNetV2, ResNet, build_backbone
from describeme.models.common.heads import SEMANTIC_HEADS, build_semantic_heads
from describeme.models.common.inputs import check_input_shape
from describeme.models.common.pyramid import build_pyramid_decoder
from describeme.models.hptr.mask_head import QueryAttentionMap, build_mask_head
from describeme.models.hptr.transformer import PositionEmbeddingSine, build_transformer

MODEL_NAME = "hptr"
# Raw outputs of the exported graph, in order. Class index 0 = person, 1 = no-object.
OUTPUT_NAMES: tuple[str, ...] = ("logits", "boxes", "masks", *SEMANTIC_HEADS)
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


class MLP(nn.Module):
    """Stack of linear layers with ReLU between them (DETR's box head)."""

    def __init__(self, *, in_dim: int, hidden_dim: int, out_dim: int, layers: int) -> None:
        super().__init__()
        dims = [in_dim] + [hidden_dim] * (layers - 1) + [out_dim]
        self.layers = nn.ModuleList(
            nn.Linear(a, b) for a, b in zip(dims[:-1], dims[1:], strict=True)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        for index, layer in enumerate(self.layers):
            x = layer(x)
            if index < len(self.layers) - 1:
                x = torch.relu(x)
        return x


class HPTR(nn.Module):
    """The HPTR network. Build it with :func:`build_hptr`; arguments are explicit keywords.

    Args:
        backbone: module returning [C2..C5] with ``out_channels``.
        pyramid, transformer, mask_head, semantic_heads: the sub-blocks.
        hidden_dim: transformer width D.
        num_queries: N_Q person queries.
        aux_loss: also return per-decoder-layer class/box outputs while training.
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self,
        *,
        backbone: ResNet | MobileNetV2,
        pyramid: nn.Module,
        transformer: nn.Module,
        mask_head: nn.Module,
        semantic_heads: nn.Module,
        hidden_dim: int,
        heads: int,
        num_queries: int,
        aux_loss: bool = True,
    ) -> None:
        super().__init__()
        self.backbone, self.pyramid, self.transformer = backbone, pyramid, transformer
        self.mask_head, self.semantic_heads = mask_head, semantic_heads
        self.input_proj = nn.Conv2d(backbone.out_channels[-1], hidden_dim, 1)
        self.position = PositionEmbeddingSine(num_pos_feats=hidden_dim // 2)
        self.query_embed = nn.Embedding(num_queries, hidden_dim)
        self.class_embed = nn.Linear(hidden_dim, 2)
        self.bbox_embed = MLP(in_dim=hidden_dim, hidden_dim=hidden_dim, out_dim=4, layers=3)
        self.attention_map = QueryAttentionMap(dim=hidden_dim, heads=heads)
        self.register_buffer(
            "pixel_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )
        self.num_queries = num_queries
        self.aux_loss = aux_loss
        self.model_name = MODEL_NAME
        self.output_names = OUTPUT_NAMES
        self.model_args: dict[str, Any] = {}

    def forward(self, images: torch.Tensor) -> dict[str, Any]:
        """Runs the network.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1]; H, W multiples of 32.

        Returns:
            ``logits`` (B, Q, 2), ``boxes`` (B, Q, 4) normalised cxcywh, ``masks``
            (B, Q, H/4, W/4) logits, ``attribute`` (B, 22, H/4, W/4), ``size`` (B, 5, ...),
            ``pattern`` (B, 5, ...), ``color`` (B, 13, ...) logits; while training with
            ``aux_loss`` also ``aux``: a list of {logits, boxes} for earlier decoder layers.
        """
        if not torch.jit.is_tracing():
            check_input_shape(tuple(images.shape), "HPTR")
        x = (images - self.pixel_mean) / self.pixel_std
        features = self.backbone(x)  # [C2..C5], strides 4..32
        levels, upscaled = self.pyramid(features)
        semantic = self.semantic_heads(torch.cat(upscaled, 1))  # each (B, K, H/4, W/4)
        src = self.input_proj(features[-1])  # (B, D, H/32, W/32)
        hs, memory = self.transformer(src, self.position(src), self.query_embed.weight)
        logits = self.class_embed(hs)  # (L, B, Q, 2)
        boxes = self.bbox_embed(hs).sigmoid()  # (L, B, Q, 4)
        attention = self.attention_map(hs[-1], memory)  # (B, Q, M, H/32, W/32)
        masks = self.mask_head(src, attention, [levels[2], levels[1], levels[0]])
        out: dict[str, Any] = {"logits": logits[-1], "boxes": boxes[-1], "masks": masks, **semantic}
        if self.training and self.aux_loss:
            out["aux"] = [
                {"logits": a, "boxes": b} for a, b in zip(logits[:-1], boxes[:-1], strict=True)
            ]
        return out


def build_hptr(
    *,
    backbone: str = "resnet50",
    width_multiplier: float = 1.0,
    backbone_weights: str | Path | None = None,
    pyramid_channels: int = 128,
    convs_per_level: int = 4,
    hidden_dim: int = 256,
    heads: int = 8,
    encoder_layers: int = 6,
    decoder_layers: int = 6,
    ffn_dim: int = 2048,
    dropout: float = 0.1,
    num_queries: int = 40,
    mask_context_dim: int = 128,
    semantic_hidden: int = 64,
    aux_loss: bool = True,
) -> HPTR:
    """Builds HPTR from explicit arguments (the ones a checkpoint stores as ``model_args``).

    ``backbone_weights`` (a torchvision-style state_dict file) only initialises the encoder;
    it is left out of ``model.model_args`` because a checkpoint already holds the weights.
    """
    if num_queries < 1:
        raise ValueError(f"num_queries must be >= 1, got {num_queries}")
    encoder = build_backbone(backbone, width_multiplier=width_multiplier, weights=backbone_weights)
    pyramid = build_pyramid_decoder(encoder.out_channels, pyramid_channels, convs_per_level)
    model = HPTR(
        backbone=encoder,
        pyramid=pyramid,
        transformer=build_transformer(
            hidden_dim, heads, encoder_layers, decoder_layers, ffn_dim, dropout
        ),
        mask_head=build_mask_head(hidden_dim, heads, pyramid_channels, mask_context_dim),
        semantic_heads=build_semantic_heads(4 * pyramid_channels, semantic_hidden),
        hidden_dim=hidden_dim,
        heads=heads,
        num_queries=num_queries,
        aux_loss=aux_loss,
    )
    model.model_args = dict(
        backbone=backbone,
        width_multiplier=width_multiplier,
        pyramid_channels=pyramid_channels,
        convs_per_level=convs_per_level,
        hidden_dim=hidden_dim,
        heads=heads,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        ffn_dim=ffn_dim,
        dropout=dropout,
        num_queries=num_queries,
        mask_context_dim=mask_context_dim,
        semantic_hidden=semantic_hidden,
        aux_loss=aux_loss,
    )
    return model
