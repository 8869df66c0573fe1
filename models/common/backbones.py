"""Hand-written image encoders: ResNet-18/34/50 and MobileNetV2.

torchvision does not match the project's CPU torch build, so the encoders are written here with
torchvision's module names: a user-supplied torchvision ``state_dict`` (``resnet50-*.pth``,
``mobilenet_v2-*.pth``) loads with :func:`load_backbone_weights` without renaming. Classifier
weights (``fc.*``, ``classifier.*``) and MobileNetV2's last 1x1 layer (``features.18``, unused
here) are ignored.

Every encoder returns four feature maps at strides 4, 8, 16 and 32 (``C2..C5``) and exposes
their channel counts as ``out_channels``.
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


class BasicBlock(nn.Module):
    """ResNet-18/34 residual block (two 3x3 convs)."""

    expansion = 1

    def __init__(self, *, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = _shortcut(in_channels, out, stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        identity = x if self.downsample is None else self.downsample(x)
        y = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(y)) + identity)


class Bottleneck(nn.Module):
    """ResNet-50 residual block (1x1, 3x3 with the stride, 1x1; torchvision v1.5 layout)."""

    expansion = 4

    def __init__(self, *, in_channels: int, channels: int, stride: int = 1) -> None:
        super().__init__()
        out = channels * self.expansion
        self.conv1 = nn.Conv2d(in_channels, channels, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.conv2 = nn.Conv2d(channels, channels, 3, stride, 1, bias=False)
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
    """

    def __init__(self, *, block: str, layers: tuple[int, int, int, int]) -> None:
        super().__init__()
        block_cls = BasicBlock if block == "basic" else Bottleneck
        self.conv1 = nn.Conv2d(3, 64, 7, 2, 3, bias=False)
        self.bn1 = nn.BatchNorm2d(64)
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, 2, 1)
        in_channels = 64
        self.out_channels: list[int] = []
        for index, (count, channels) in enumerate(zip(layers, (64, 128, 256, 512), strict=True)):
            blocks = []
            for block_index in range(count):
                stride = 2 if index > 0 and block_index == 0 else 1
                blocks.append(block_cls(in_channels=in_channels, channels=channels, stride=stride))
                in_channels = channels * block_cls.expansion
            setattr(self, f"layer{index + 1}", nn.Sequential(*blocks))
            self.out_channels.append(in_channels)
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, C2, H/4, W/4), ..., (B, C5, H/32, W/32)]."""
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
    in_channels: int, out_channels: int, kernel: int = 3, stride: int = 1, groups: int = 1
) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(
            in_channels, out_channels, kernel, stride, kernel // 2, groups=groups, bias=False
        ),
        nn.BatchNorm2d(out_channels),
        nn.ReLU6(inplace=True),
    )


class InvertedResidual(nn.Module):
    """MobileNetV2 block: 1x1 expand, 3x3 depthwise, 1x1 linear projection."""

    def __init__(
        self, *, in_channels: int, out_channels: int, stride: int, expand_ratio: int
    ) -> None:
        super().__init__()
        hidden = round(in_channels * expand_ratio)
        self.use_residual = stride == 1 and in_channels == out_channels
        layers: list[nn.Module] = []
        if expand_ratio != 1:
            layers.append(_conv_bn_relu6(in_channels, hidden, kernel=1))
        layers += [
            _conv_bn_relu6(hidden, hidden, stride=stride, groups=hidden),
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
# Index of the last ``features`` layer at strides 4, 8, 16 and 32.
_MOBILENET_V2_TAPS = (3, 6, 13, 17)


class MobileNetV2(nn.Module):
    """MobileNetV2 encoder (``features.0..17``); returns ``[C2, C3, C4, C5]``.

    Args:
        width_multiplier: channel multiplier (1.0 = the published network).
    """

    def __init__(self, *, width_multiplier: float = 1.0) -> None:
        super().__init__()
        if width_multiplier <= 0:
            raise ValueError(f"width_multiplier must be positive, got {width_multiplier}")
        in_channels = _make_divisible(32 * width_multiplier)
        layers: list[nn.Module] = [_conv_bn_relu6(3, in_channels, stride=2)]
        for expand, channels, repeats, stride in _MOBILENET_V2_SETTINGS:
            out_channels = _make_divisible(channels * width_multiplier)
            for index in range(repeats):
                layers.append(
                    InvertedResidual(
                        in_channels=in_channels,
                        out_channels=out_channels,
                        stride=stride if index == 0 else 1,
                        expand_ratio=expand,
                    )
                )
                in_channels = out_channels
        self.features = nn.Sequential(*layers)
        self.out_channels = [_output_channels(self.features[i]) for i in _MOBILENET_V2_TAPS]
        _init_weights(self)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        """(B, 3, H, W) -> [(B, C2, H/4, W/4), ..., (B, C5, H/32, W/32)]."""
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
    name: str, *, width_multiplier: float = 1.0, weights: str | Path | None = None
) -> ResNet | MobileNetV2:
    """Builds an encoder by name, randomly initialised or from a torchvision weights file.

    Args:
        name: one of :data:`BACKBONES`.
        width_multiplier: MobileNetV2 only; ResNets require 1.0.
        weights: optional path to a torchvision-style state_dict.
    """
    if name in RESNET_LAYERS:
        if width_multiplier != 1.0:
            raise ValueError(
                f"width_multiplier applies to mobilenet_v2 only, got {width_multiplier} for {name}"
            )
        block, layers = RESNET_LAYERS[name]
        backbone: ResNet | MobileNetV2 = ResNet(block=block, layers=layers)
    elif name == "mobilenet_v2":
        backbone = MobileNetV2(width_multiplier=width_multiplier)
    else:
        raise ValueError(f"unknown backbone {name!r}; choose one of {', '.join(BACKBONES)}")
    if weights is not None:
        load_backbone_weights(backbone, weights)
    return backbone
