"""DETR transformer (post-norm encoder/decoder) and sine positional encodings.

Follows DETR's ``models/transformer.py`` and ``models/position_encoding.py``: positional
encodings are added to queries and keys of every attention layer (never to values), and the
decoder returns every layer's normalised output for the auxiliary losses. Sequences are
(S, B, D) as in ``nn.MultiheadAttention`` with ``batch_first=False``.
"""

from __future__ import annotations

import math

import torch
from torch import nn


class PositionEmbeddingSine(nn.Module):
    """2-D sine/cosine encoding of normalised pixel positions (no padding mask: inputs are
    letterboxed to a fixed size, and the padding is image content the model sees).

    Args:
        num_pos_feats: features per axis; the output has ``2 * num_pos_feats`` channels.
        temperature: wavelength base.
    """

    def __init__(self, *, num_pos_feats: int, temperature: float = 10000.0) -> None:
        super().__init__()
        self.num_pos_feats = num_pos_feats
        self.temperature = temperature

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C, h, w) -> (B, 2 * num_pos_feats, h, w); built from x's shape so it exports
        with dynamic sizes."""
        ones = torch.ones_like(x[:, 0])  # (B, h, w)
        y_embed = ones.cumsum(1)
        x_embed = ones.cumsum(2)
        eps, scale = 1e-6, 2 * math.pi
        y_embed = y_embed / (y_embed[:, -1:, :] + eps) * scale
        x_embed = x_embed / (x_embed[:, :, -1:] + eps) * scale
        dim_t = torch.arange(self.num_pos_feats, dtype=x.dtype, device=x.device)
        dim_t = self.temperature ** (
            2 * torch.div(dim_t, 2, rounding_mode="floor") / self.num_pos_feats
        )
        pos_x = x_embed[..., None] / dim_t  # (B, h, w, F)
        pos_y = y_embed[..., None] / dim_t
        pos_x = torch.stack((pos_x[..., 0::2].sin(), pos_x[..., 1::2].cos()), dim=4).flatten(3)
        pos_y = torch.stack((pos_y[..., 0::2].sin(), pos_y[..., 1::2].cos()), dim=4).flatten(3)
        return torch.cat((pos_y, pos_x), dim=3).permute(0, 3, 1, 2)


class EncoderLayer(nn.Module):
    """Self-attention + feed-forward, post-norm."""

    def __init__(self, *, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, dim),
        )
        self.norm1, self.norm2 = nn.LayerNorm(dim), nn.LayerNorm(dim)
        self.drop1, self.drop2 = nn.Dropout(dropout), nn.Dropout(dropout)

    def forward(self, src: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
        """src, pos: (S, B, D) -> (S, B, D)."""
        q = k = src + pos
        src = self.norm1(src + self.drop1(self.attn(q, k, src, need_weights=False)[0]))
        return self.norm2(src + self.drop2(self.ffn(src)))


class DecoderLayer(nn.Module):
    """Query self-attention, cross-attention over the memory, feed-forward; post-norm."""

    def __init__(self, *, dim: int, heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout)
        self.ffn = nn.Sequential(
            nn.Linear(dim, ffn_dim),
            nn.ReLU(inplace=True),
            nn.Dropout(dropout),
            nn.Linear(ffn_dim, dim),
        )
        self.norms = nn.ModuleList(nn.LayerNorm(dim) for _ in range(3))
        self.drops = nn.ModuleList(nn.Dropout(dropout) for _ in range(3))

    def forward(
        self, tgt: torch.Tensor, memory: torch.Tensor, pos: torch.Tensor, query_pos: torch.Tensor
    ) -> torch.Tensor:
        """tgt, query_pos: (Q, B, D); memory, pos: (S, B, D) -> (Q, B, D)."""
        q = k = tgt + query_pos
        tgt = self.norms[0](tgt + self.drops[0](self.self_attn(q, k, tgt, need_weights=False)[0]))
        attended = self.cross_attn(tgt + query_pos, memory + pos, memory, need_weights=False)[0]
        tgt = self.norms[1](tgt + self.drops[1](attended))
        return self.norms[2](tgt + self.drops[2](self.ffn(tgt)))


class Transformer(nn.Module):
    """DETR encoder-decoder.

    Args:
        dim: model width D.
        heads: attention heads.
        encoder_layers, decoder_layers: layer counts.
        ffn_dim: feed-forward width.
        dropout: dropout in attention and feed-forward.
    """

    def __init__(
        self,
        *,
        dim: int,
        heads: int,
        encoder_layers: int,
        decoder_layers: int,
        ffn_dim: int,
        dropout: float = 0.1,
    ) -> None:
        super().__init__()
        if dim % heads:
            raise ValueError(f"transformer dim {dim} must be divisible by heads {heads}")
        if decoder_layers < 1:
            raise ValueError(f"decoder_layers must be >= 1, got {decoder_layers}")
        self.encoder = nn.ModuleList(
            EncoderLayer(dim=dim, heads=heads, ffn_dim=ffn_dim, dropout=dropout)
            for _ in range(encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderLayer(dim=dim, heads=heads, ffn_dim=ffn_dim, dropout=dropout)
            for _ in range(decoder_layers)
        )
        self.decoder_norm = nn.LayerNorm(dim)
        for p in self.parameters():
            if p.dim() > 1:
                nn.init.xavier_uniform_(p)

    def forward(
        self, src: torch.Tensor, pos: torch.Tensor, query_embed: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Runs encoder and decoder.

        Args:
            src: (B, D, h, w) projected encoder features.
            pos: (B, D, h, w) positional encodings.
            query_embed: (Q, D) learned query positions.

        Returns:
            ``hs`` (L, B, Q, D): every decoder layer's normalised output;
            ``memory`` (B, D, h, w): the encoder output.
        """
        batch = src.shape[0]
        memory = src.flatten(2).permute(2, 0, 1)  # (h*w, B, D)
        pos_seq = pos.flatten(2).permute(2, 0, 1)
        query_pos = query_embed.unsqueeze(1).repeat(1, batch, 1)  # (Q, B, D)
        for layer in self.encoder:
            memory = layer(memory, pos_seq)
        tgt = torch.zeros_like(query_pos)
        outputs = []
        for layer in self.decoder:
            tgt = layer(tgt, memory, pos_seq, query_pos)
            outputs.append(self.decoder_norm(tgt))
        hs = torch.stack(outputs).transpose(1, 2)  # (L, B, Q, D)
        return hs, memory.permute(1, 2, 0).reshape(src.shape)


def build_transformer(
    dim: int = 256,
    heads: int = 8,
    encoder_layers: int = 6,
    decoder_layers: int = 6,
    ffn_dim: int = 2048,
    dropout: float = 0.1,
) -> Transformer:
    """Builds the DETR transformer (defaults are DETR's)."""
    return Transformer(
        dim=dim,
        heads=heads,
        encoder_layers=encoder_layers,
        decoder_layers=decoder_layers,
        ffn_dim=ffn_dim,
        dropout=dropout,
    )
