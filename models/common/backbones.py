"""Hand-written image encoders: ResNet-18/34/50 and MobileNetV2.

torchvision does not match the project's CPU torch build, so the encoders are written here with
torchvision's module names: a user-supplied torchvision ``state_dict`` (``resnet50-*.pth``,
``mobilenet_v2-*.pth``) loads with :func:`load_backbone_weights` without renaming. Classifier
weights (``fc.*``, ``classifier.*``) and MobileNetV2's last 1x1 layer (``features.18``, unused
here) are ignored.

Every encoder returns four feature maps ``C2..C5`` and exposes their channel counts as
``out_channels`` and their strides as ``feature_strides``. With the default ``output_stride``
32 the strides are 4, 8, 16, 32. As torchvision's ``replace_stride_with_dilation`` (and
DeepLab's MobileNetV2), ``output_stride`` 16 or 8 keeps the last one or two stages at stride 1
and dilates their 3x3 convolutions instead (dilation 2, then 4), so the strides become
4, 8, 16, 16 or 4, 8, 8, 8. As in torchvision and timm, the conv that loses its stride keeps
the previous dilation and the convs after it take the new one: the dilated map sampled every
2 (or 4) cells is then exactly the strided map. Dilation changes no parameter: the state_dict
keys and shapes are the same in every mode, so weights move freely between modes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from pathlib import Path

import torch
from torch import nn

log = logging.getLogger(__name__)

RESNET_LAYERS: dict[str, tuple[str, tuple[int, int, int, int]]] = {
    "resnet18": ("basic", (2, 2, 2, 2)),
    "resnet34": ("basic", (3, 4, 6, 3)),
    "resnet50": ("bottleneck", (3, 4, 6, 3)),
}
BACKBONES: tuple[str, ...] = (*RESNET_LAYERS, "mobilenet_v2")
# Strides of C2..C5 without dilation; ``output_stride`` caps them.
NOMINAL_STRIDES = (4, 8, 16, 32)
ENCODER_OUTPUT_STRIDES = (8, 16, 32)


def block_schedule(
    block_strides: list[int], input_stride: int, output_stride: int
) -> list[tuple[int, int, int]]:
    """``(stride, first_dilation, dilation)`` of each block once the total stride is capped at
    ``output_stride``.

    A block that would push the stride past ``output_stride`` keeps stride 1; its strided conv
    keeps the current dilation (``first_dilation``) and every conv after it, in this block and
    the next ones, is dilated by that much more (``dilation``), as torchvision's
    ``_make_layer(dilate=True)`` and timm's ``first_dilation``.

    Args:
        block_strides: nominal stride of each block, in order.
        input_stride: stride of the first block's input.
        output_stride: the largest stride allowed.
    """
    stride, dilation = input_stride, 1
    schedule: list[tuple[int, int, int]] = []
    for block_stride in block_strides:
        first_dilation = dilation
        if stride * block_stride > output_stride:
            dilation *= block_stride
            block_stride = 1
        stride *= block_stride
        schedule.append((block_stride, first_dilation, dilation))
    return schedule


def _feature_strides(output_stride: int) -> tuple[int, ...]:
    return tuple(min(s, output_stride) for s in NOMINAL_STRIDES)


class BasicBlock(nn.Module):
    """ResNet-18/34 residual block: 3x3 conv (stride, ``first_dilation``), 3x3 (``dilation``)."""

    expansion = 1

    def __init__(
        self, *, in_channels: int, channels: int, stride: int = 1, dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        out = channels * self.expansion
        first = first_dilation or dilation
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, first, first, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, out, 3, 1, dilation, dilation=dilation, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50 residual block (1x1, 3x3 with the stride, 1x1; torchvision v1.5 layout).

    Its only 3x3 conv is the strided one, so it takes ``first_dilation`` (``dilation`` is
    accepted for a uniform block signature)."""

    expansion = 4

    def __init__(
        self, *, in_channels: int, channels: int, stride: int = 1, dilation: int = 1,
        first_dilation: int | None = None,
    ) -> None:  # fmt: skip
        super().__init__()
        out = channels * self.expansion
        first = first_dilation or dilation
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, first, first, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)
        self.conv3 = nn.Conv2d(channels, out, 1, bias=False)
        self.bn3 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        y = self.relu(self.bn2(self.conv2(y)))
        return self.relu(self.bn3(self.conv3(y)) + identity)


def _shortcut(in_channels: int, out_channels: int, stride: int) -> nn.Sequential | None:
    if stride == 1 and in_channels == out_channels:
        return None
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, 1, stride, bias=False), nn.BatchNorm2d(out_channels)
    )


class ResNet(nn.Module):
    """ResNet encoder without the classifier; returns ``[C2, C3, C4, C5]``.

    Args:
        block: "basic" (ResNet-18/34) or "bottleneck" (ResNet-50).
        layers: blocks per stage.
        output_stride: 32, or 16/8 to dilate the last one/two stages (see the module doc).
    """

    def __init__(
        self, *, block: str, layers: tuple[int, int, int, int], output_stride: int = 32
    ) -> None:
        super().__init__()
        block_cls = BasicBlock if block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        nominal = [
            2 if stage > 0 and i == 0 else 1 for stage, n in enumerate(layers) for i in range(n)
        ]
        schedule = iter(block_schedule(nominal, 4, output_stride))
        in_channels = 64
        self.out_channels: list[int] = []
        for index, (count, channels) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            blocks = []
            for _ in range(count):
                stride, first_dilation, dilation = next(schedule)
                blocks.append(
                    block_cls(
                        in_channels=in_channels, channels=channels, stride=stride,
                        dilation=dilation, first_dilation=first_dilation,
                    )
                )  # fmt: skip
                in_channels = channels * block_cls.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.out_channels.append(in_channels)
        self.output_stride = output_stride
        self.feature_strides = _feature_strides(output_stride)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, C_i, H/s_i, W/s_i)] for s_i in ``feature_strides``."""
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        features = []
        for name in ("layer1", "layer2", "layer3", "layer4"):
            x = getattr(self, name)(x)
            features.append(x)
        return features


def _make_divisible(value: float, divisor: int = 8) -> int:
    rounded = max(divisor, int(value + divisor / 2) // divisor * divisor)
    return rounded + divisor if rounded < 0.9 * value else rounded


def _conv_bn_relu6(
    in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1,
    dilation: int = 1,
) -> nn.Sequential:  # fmt: skip
    padding = dilation * (kernel // 2)  # keeps the size at stride 1 for any dilation
    return nn.Sequential(
        nn.Conv2d(in_channels, out_channels, kernel, stride, padding, dilation, groups, bias=False),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise (strided or dilated), 1x1 projection."""

    def __init__(
        self, *, in_channels: int, out_channels: int, stride: int, expand_ratio: int,
        dilation: int = 1, residual: bool | None = None,
    ) -> None:  # fmt: skip
        """``residual`` None = the usual rule (stride 1 and equal channels)."""
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        if residual is None:
            residual = stride == 1 and in_channels == out_channels
        self.use_residual = residual
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(in_channels, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden, dilation=dilation),
            nn.Conv2d(hidden, out_channels, 1, bias=False),
            nn.BatchNorm2d(out_channels),
        ]
        self.conv = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


# (expand ratio t, channels c, repeats n, first stride s), as in the MobileNetV2 paper.
_MOBILENET_V2_SETTINGS = (
    (1, 16, 1, 1),
    (6, 24, 2, 2),
    (6, 32, 3, 2),
    (6, 64, 4, 2),
    (6, 96, 3, 1),
    (6, 160, 3, 2),
    (6, 320, 1, 1),
)
# Index of the last ``features`` layer at nominal strides 4, 8, 16 and 32.
_MOBILENET_V2_TAPS = (3, 6, 13, 17)


class MobileNetV2(nn.Module):
    """MobileNetV2 encoder (``features.0..17``); returns ``[C2, C3, C4, C5]``.

    Args:
        width_multiplier: channel multiplier (1.0 = the published network).
        output_stride: 32, or 16/8 to turn the late stride-2 depthwise convs into dilated
            stride-1 ones (see the module doc).
    """

    def __init__(self, *, width_multiplier: float = 1.0, output_stride: int = 32) -> None:
        super().__init__()
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be positive, got {width_multiplier}")
        settings = [
            (expand, channels, stride if index == 0 else 1)
            for expand, channels, repeats, stride in _MOBILENET_V2_SETTINGS
            for index in range(repeats)
        ]
        schedule = block_schedule([stride for _, _, stride in settings], 2, output_stride)
        in_channels = _make_divisible(32 * width_multiplier)
        layers: list[nn.Module] = [_conv_bn_relu6(3, in_channels, stride=2)]
        blocks = zip(settings, schedule, strict=True)
        # A block's only 3x3 conv is its (maybe strided) depthwise one: it takes first_dilation.
        for (expand, channels, nominal), (stride, dilation, _) in blocks:
            out_channels = _make_divisible(channels * width_multiplier)
            # The residual follows the nominal stride: with a tiny width a dilated block could
            # gain a shortcut its stride-32 twin lacks, and weights would stop meaning the same.
            residual = nominal == 1 and in_channels == out_channels
            layers.append(
                InvertedResidual(
                    in_channels=in_channels, out_channels=out_channels, stride=stride,
                    expand_ratio=expand, dilation=dilation, residual=residual,
                )
            )  # fmt: skip
            in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.out_channels = [_output_channels(self.features[i]) for i in _MOBILENET_V2_TAPS]
        self.output_stride = output_stride
        self.feature_strides = _feature_strides(output_stride)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, C_i, H/s_i, W/s_i)] for s_i in ``feature_strides``."""
        features = []
        for index, layer in enumerate(self.features):
            x = layer(x)
            if index in _MOBILENET_V2_TAPS:
                features.append(x)
        return features


def _output_channels(block: nn.Module) -> int:
    convs = [m for m in block.modules() if isinstance(m, nn.Conv2d)]
    return convs[-1].out_channels


def _init_weights(module: nn.Module) -> None:
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)


_IGNORED_PREFIXES = ("fc.", "classifier.", "features.18.")


def load_backbone_weights(
    backbone: nn.Module, weights: str | Path | Mapping[str, torch.Tensor]
) -> None:
    """Loads a torchvision-style ``state_dict`` (file or mapping) into an encoder.

    Accepts a bare state_dict or one wrapped as ``{"state_dict": ...}``/``{"model": ...}``;
    strips ``module.``/``backbone.`` prefixes. Classifier keys are ignored.

    Raises:
        ValueError: the file is unreadable, a tensor has the wrong shape, or a weight the
            encoder needs is missing (the message lists the first few keys).
    """
    if isinstance(weights, (str, Path)):
        try:
            state = torch.load(Path(weights), map_location="cpu", weights_only=True)
        except FileNotFoundError:
            raise ValueError(f"backbone weights file {weights} does not exist") from None
        except Exception as exc:  # torch raises many types for corrupt files
            raise ValueError(f"cannot read backbone weights {weights}: {exc}") from None
        source = str(weights)
    else:
        state, source = weights, "<state_dict>"
    if isinstance(state, Mapping):
        for key in ("state_dict", "model"):
            if key in state and isinstance(state[key], Mapping):
                state = state[key]
    if not isinstance(state, Mapping):
        raise ValueError(f"{source}: expected a state_dict mapping, got {type(state).__name__}")
    cleaned = {}
    for key, value in state.items():
        for prefix in ("module.", "backbone."):
            key = key.removeprefix(prefix)
        if not key.startswith(_IGNORED_PREFIXES):
            cleaned[key] = value
    expected = backbone.state_dict()
    missing = [k for k in expected if k not in cleaned and not k.endswith("num_batches_tracked")]
    unexpected = [k for k in cleaned if k not in expected]
    if missing or unexpected:
        raise ValueError(
            f"{source} does not fit {type(backbone).__name__}: missing {missing[:5]} "
            f"({len(missing)} in all), unexpected {unexpected[:5]} ({len(unexpected)})"
        )
    for key, value in cleaned.items():
        if tuple(value.shape) != tuple(expected[key].shape):
            raise ValueError(
                f"{source}: '{key}' has shape {tuple(value.shape)}, the encoder "
                f"expects {tuple(expected[key].shape)} (wrong depth or width?)"
            )
    backbone.load_state_dict(cleaned, strict=False)
    log.info("loaded backbone weights from %s (%d tensors)", source, len(cleaned))


def build_backbone(
    name: str,
    *,
    width_multiplier: float = 1.0,
    weights: str | Path | None = None,
    output_stride: int = 32,
) -> ResNet | MobileNetV2:
    """Builds an encoder by name, randomly initialised or from a torchvision weights file.

    Args:
        name: one of :data:`BACKBONES`.
        width_multiplier: MobileNetV2 only; ResNets require 1.0.
        weights: optional path to a torchvision-style state_dict (fits every output stride).
        output_stride: one of :data:`ENCODER_OUTPUT_STRIDES`; below 32 the last stages are
            dilated instead of strided.
    """
    if type(output_stride) is not int or output_stride not in ENCODER_OUTPUT_STRIDES:
        raise ValueError(
            f"encoder output_stride must be one of {ENCODER_OUTPUT_STRIDES} "
            f"(32 = no dilation), got {output_stride!r}"
        )
    if name in RESNET_LAYERS:
        if width_multiplier != 1.0:
            raise ValueError(
                f"width_multiplier applies to mobilenet_v2 only, got {width_multiplier} for {name}"
            )
        block, layers = RESNET_LAYERS[name]
        backbone: ResNet | MobileNetV2 = ResNet(
            block=block, layers=layers, output_stride=output_stride
        )
    elif name == "mobilenet_v2":
        backbone = MobileNetV2(width_multiplier=width_multiplier, output_stride=output_stride)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if weights is not None:
        load_backbone_weights(backbone, weights)
    return backbone
