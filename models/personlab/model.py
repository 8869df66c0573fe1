"""PersonLab (Papandreou et al., ECCV 2018) on the shared encoder, pyramid and semantic heads.

The network shares HPTR's common backbone (encoder + FPN decoder pyramid) and its Semantic
Block (attribute, size, pattern, color heads at stride 4). The PersonLab heads read the
up-scaled pyramid average-pooled to ``output_stride`` (8 or 16).

``encoder_output_stride`` picks how the fine-stride map gets its context. At 32 (the default,
and every checkpoint written before the option existed) the encoder is strided throughout and
the FPN's top-down path brings the stride-32 context down to the fine levels. At 16 or 8 the
encoder's last one or two stages are dilated instead of strided (the paper's atrous
convolution): ``C4``/``C5`` keep stride 16 or 8, and the pyramid merges levels of equal size.
Dilation adds no parameter, so the same weights fit every mode; it costs compute: the
dilated stages run on 4x (stride 16) or 4x and 16x (stride 8) more cells, and so do the
pyramid levels they feed.

Heads at the output stride (h = H / output_stride, w = W / output_stride):

- ``heatmaps`` (B, 17, h, w): logits of "within R of keypoint k" (disk heatmaps).
- ``short_offsets`` (B, 34, h, w): channel 2k is dx, 2k+1 is dy, in input pixels.
- ``mid_offsets`` (B, 64, h, w): the 32 directed edges of :data:`DIRECTED_EDGES` (the 16
  :data:`describeme.labels.KINEMATIC_TREE` edges parent->child, then child->parent), dx/dy.
- ``segmentation`` (B, 1, h, w): person-vs-background logits.
- ``long_offsets`` (B, 34, h, w): from any person pixel to each keypoint of its person.

Offsets are produced in units of the disk radius R and multiplied by R inside the graph, so
every backend returns input pixels. Cell (i, j) sits at input pixel
``((j + 0.5) * stride - 0.5, (i + 0.5) * stride - 0.5)`` (``align_corners=False`` centres).

Input: RGB float32 images in [0, 1], (B, 3, H, W) with H and W multiples of 32; ImageNet
normalisation happens inside the graph so every backend takes the same input.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from describeme.labels import KINEMATIC_TREE, NUM_KEYPOINTS
from describeme.models.common.backbones import MobileNetV2, ResNet, build_backbone
from describeme.models.common.heads import SEMANTIC_HEADS, build_semantic_heads
from describeme.models.common.inputs import check_input_shape
from describeme.models.common.pyramid import build_pyramid_decoder, conv_gn_relu

MODEL_NAME = "personlab"
# Forward edges of the kinematic tree, then the same edges reversed: 2 (K - 1) = 32.
DIRECTED_EDGES: tuple[tuple[int, int], ...] = (
    *KINEMATIC_TREE,
    *((child, parent) for parent, child in KINEMATIC_TREE),
)
NUM_EDGES = len(DIRECTED_EDGES)
# Head name -> channels, in graph order (the semantic heads follow).
KEYPOINT_HEADS: dict[str, int] = {
    "heatmaps": NUM_KEYPOINTS,
    "short_offsets": 2 * NUM_KEYPOINTS,
    "mid_offsets": 2 * NUM_EDGES,
    "segmentation": 1,
    "long_offsets": 2 * NUM_KEYPOINTS,
}
OFFSET_HEADS = ("short_offsets", "mid_offsets", "long_offsets")
OUTPUT_NAMES: tuple[str, ...] = (*KEYPOINT_HEADS, *SEMANTIC_HEADS)
OUTPUT_STRIDES = (8, 16)
# The paper's disk radius is 32 px for 801 px training crops; it scales with the input.
PAPER_RADIUS, PAPER_INPUT = 32.0, 801.0
_IMAGENET_MEAN = (0.485, 0.456, 0.406)
_IMAGENET_STD = (0.229, 0.224, 0.225)


def default_disk_radius(input_size: tuple[int, int]) -> float:
    """The paper's R = 32 px at 801 px scaled to the shorter side of ``input_size``, in whole
    pixels (20 px at 512, 13 px at 320)."""
    return float(round(PAPER_RADIUS * min(input_size) / PAPER_INPUT))


class PersonLab(nn.Module):
    """The PersonLab network. Build it with :func:`build_personlab`.

    Args:
        backbone: encoder returning [C2..C5] with ``out_channels`` and ``feature_strides``.
        pyramid: FPN decoder returning (levels, stride-4 up-scaled levels).
        semantic_heads: attribute/size/pattern/color heads on the stride-4 concatenation.
        in_channels: channels of the concatenated up-scaled pyramid.
        head_hidden: channels of each PersonLab head's 3x3 conv.
        output_stride: 8 or 16, stride of the PersonLab heads.
        disk_radius: R in input pixels (offsets are predicted in units of R).
    """

    pixel_mean: torch.Tensor
    pixel_std: torch.Tensor

    def __init__(
        self,
        *,
        backbone: ResNet | MobileNetV2,
        pyramid: nn.Module,
        semantic_heads: nn.Module,
        in_channels: int,
        head_hidden: int,
        output_stride: int,
        disk_radius: float,
    ) -> None:
        super().__init__()
        self.backbone, self.pyramid, self.semantic_heads = backbone, pyramid, semantic_heads
        self.keypoint_heads = nn.ModuleDict(
            {
                name: nn.Sequential(
                    conv_gn_relu(in_channels, head_hidden), nn.Conv2d(head_hidden, channels, 1)
                )
                for name, channels in KEYPOINT_HEADS.items()
            }
        )
        for name in OFFSET_HEADS:  # start near zero offsets (each cell points at itself)
            last = self.keypoint_heads[name][-1]  # type: ignore[index]
            nn.init.normal_(last.weight, std=0.01)
            nn.init.zeros_(last.bias)
        self.register_buffer(
            "pixel_mean", torch.tensor(_IMAGENET_MEAN).view(1, 3, 1, 1), persistent=False
        )
        self.register_buffer(
            "pixel_std", torch.tensor(_IMAGENET_STD).view(1, 3, 1, 1), persistent=False
        )
        self.output_stride = output_stride
        self.disk_radius = float(disk_radius)
        self.model_name = MODEL_NAME
        self.output_names = OUTPUT_NAMES
        self.model_args: dict[str, Any] = {}

    def forward(self, images: torch.Tensor) -> dict[str, torch.Tensor]:
        """Runs the network.

        Args:
            images: (B, 3, H, W) float RGB in [0, 1]; H, W multiples of 32.

        Returns:
            ``heatmaps`` (B, 17, h, w), ``short_offsets`` (B, 34, h, w), ``mid_offsets``
            (B, 64, h, w), ``segmentation`` (B, 1, h, w), ``long_offsets`` (B, 34, h, w) with
            h, w = H, W / output_stride (logits and input-pixel offsets); ``attribute``
            (B, 22, H/4, W/4), ``size`` (B, 5, ...), ``pattern`` (B, 5, ...), ``color``
            (B, 13, ...) logits.
        """
        if not torch.jit.is_tracing():
            check_input_shape(tuple(images.shape), "PersonLab")
        x = (images - self.pixel_mean) / self.pixel_std
        _, upscaled = self.pyramid(self.backbone(x))
        stride4 = torch.cat(upscaled, 1)  # (B, 4D, H/4, W/4)
        semantic = self.semantic_heads(stride4)
        pooled = F.avg_pool2d(stride4, self.output_stride // 4)  # (B, 4D, h, w)
        out: dict[str, torch.Tensor] = {}
        for name, head in self.keypoint_heads.items():
            value = head(pooled)
            out[name] = value * self.disk_radius if name in OFFSET_HEADS else value
        out.update(semantic)
        return out


def build_personlab(
    *,
    backbone: str = "resnet50",
    width_multiplier: float = 1.0,
    backbone_weights: str | Path | None = None,
    pyramid_channels: int = 128,
    convs_per_level: int = 4,
    head_hidden: int = 128,
    semantic_hidden: int = 64,
    output_stride: int = 8,
    disk_radius: float = 20.0,
    encoder_output_stride: int = 32,
) -> PersonLab:
    """Builds PersonLab from explicit arguments (the ones a checkpoint stores as ``model_args``).

    ``disk_radius`` defaults to 20 px, the paper's 32 px scaled to 512 px inputs (see
    :func:`default_disk_radius`). ``backbone_weights`` only initialises the encoder and is
    left out of ``model_args`` because a checkpoint already holds the weights.
    ``encoder_output_stride`` (32, 16 or 8) dilates the encoder's last stages instead of
    striding them (see the module doc); 32 is the undilated network older checkpoints hold.
    """
    if output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"output_stride must be one of {OUTPUT_STRIDES}, got {output_stride}")
    if disk_radius <= 0:
        raise ValueError(f"disk_radius must be positive (input pixels), got {disk_radius}")
    if head_hidden < 1:
        raise ValueError(f"head_hidden must be >= 1, got {head_hidden}")
    encoder = build_backbone(
        backbone,
        width_multiplier=width_multiplier,
        weights=backbone_weights,
        output_stride=encoder_output_stride,
    )
    pyramid = build_pyramid_decoder(
        encoder.out_channels, pyramid_channels, convs_per_level, encoder.feature_strides
    )
    model = PersonLab(
        backbone=encoder,
        pyramid=pyramid,
        semantic_heads=build_semantic_heads(4 * pyramid_channels, semantic_hidden),
        in_channels=4 * pyramid_channels,
        head_hidden=head_hidden,
        output_stride=output_stride,
        disk_radius=disk_radius,
    )
    model.model_args = dict(
        backbone=backbone,
        width_multiplier=width_multiplier,
        pyramid_channels=pyramid_channels,
        convs_per_level=convs_per_level,
        head_hidden=head_hidden,
        semantic_hidden=semantic_hidden,
        output_stride=output_stride,
        disk_radius=float(disk_radius),
        encoder_output_stride=encoder_output_stride,
    )
    return model
