"""Encoders: feature strides/channels, torchvision parameter counts and key names, weights."""

from __future__ import annotations

import pytest
import torch

from describeme.models.common.backbones import build_backbone, load_backbone_weights

torch.set_num_threads(1)

# Parameter counts of torchvision's models minus their classifier (and, for MobileNetV2, minus
# the final 1x1 layer ``features.18`` the encoder does not use): the architectures match.
TORCHVISION_PARAMS = {
    "resnet18": 11_689_512 - 513_000,
    "resnet34": 21_797_672 - 513_000,
    "resnet50": 25_557_032 - 2_049_000,
    "mobilenet_v2": 3_504_872 - 1_281_000 - 412_160,
}


@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("resnet18", [64, 128, 256, 512]),
        ("resnet34", [64, 128, 256, 512]),
        ("resnet50", [256, 512, 1024, 2048]),
        ("mobilenet_v2", [24, 32, 96, 320]),
    ],
)
def test_features_have_strides_4_to_32_and_declared_channels(
    name: str, channels: list[int]
) -> None:
    backbone = build_backbone(name).eval()
    assert backbone.out_channels == channels
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 96))
    shapes = [tuple(f.shape) for f in features]
    assert shapes == [
        (1, c, 64 // s, 96 // s) for c, s in zip(channels, (4, 8, 16, 32), strict=True)
    ]


@pytest.mark.parametrize("name", sorted(TORCHVISION_PARAMS))
def test_parameter_count_matches_torchvision(name: str) -> None:
    backbone = build_backbone(name)
    assert sum(p.numel() for p in backbone.parameters()) == TORCHVISION_PARAMS[name]


@pytest.mark.parametrize(
    ("name", "keys"),
    [
        (
            "resnet18",
            [
                "conv1.weight",
                "bn1.running_var",
                "layer2.0.downsample.0.weight",
                "layer4.1.bn2.bias",
            ],
        ),
        (
            "resnet50",
            ["layer1.0.conv3.weight", "layer1.0.downsample.1.weight", "layer4.2.bn3.running_mean"],
        ),
        (
            "mobilenet_v2",
            [
                "features.0.0.weight",
                "features.1.conv.0.0.weight",
                "features.1.conv.1.weight",
                "features.2.conv.1.0.weight",
                "features.17.conv.3.running_var",
            ],
        ),
    ],
)
def test_state_dict_uses_torchvision_key_names(name: str, keys: list[str]) -> None:
    state = build_backbone(name).state_dict()
    for key in keys:
        assert key in state


def test_torchvision_style_file_loads_ignoring_classifier_and_prefixes(tmp_path) -> None:
    source = build_backbone("mobilenet_v2")
    state = {f"module.{k}": v for k, v in source.state_dict().items()}
    state["module.features.18.0.weight"] = torch.zeros(1280, 320, 1, 1)
    state["module.classifier.1.weight"] = torch.zeros(1000, 1280)
    path = tmp_path / "mobilenet_v2.pth"
    torch.save(state, path)
    target = build_backbone("mobilenet_v2", weights=path)
    for key, value in source.state_dict().items():
        assert torch.equal(target.state_dict()[key], value), key


def test_weights_wrapped_in_state_dict_key_load() -> None:
    source = build_backbone("resnet18")
    target = build_backbone("resnet18")
    load_backbone_weights(
        target, {"state_dict": {**source.state_dict(), "fc.weight": torch.zeros(1)}}
    )
    assert torch.equal(target.conv1.weight, source.conv1.weight)


@pytest.mark.parametrize(
    ("weights_of", "target", "message"),
    [
        ("resnet18", "resnet34", "missing"),
        ("resnet18", "resnet50", "shape|missing"),
        ("mobilenet_v2", "resnet18", "missing"),
    ],
)
def test_weights_of_another_encoder_are_rejected(
    weights_of: str, target: str, message: str
) -> None:
    state = build_backbone(weights_of).state_dict()
    with pytest.raises(ValueError, match=message):
        load_backbone_weights(build_backbone(target), state)


def test_wrong_width_weights_name_the_key_and_shapes() -> None:
    state = build_backbone("mobilenet_v2", width_multiplier=0.5).state_dict()
    with pytest.raises(ValueError, match=r"features\.0\.0\.weight.*shape"):
        load_backbone_weights(build_backbone("mobilenet_v2"), state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"name": "resnet101"}, "unknown backbone 'resnet101'"),
        ({"name": "resnet18", "width_multiplier": 0.5}, "mobilenet_v2 only"),
        ({"name": "mobilenet_v2", "width_multiplier": 0.0}, "positive"),
        ({"name": "resnet18", "weights": "/nonexistent/resnet18.pth"}, "does not exist"),
    ],
)
def test_bad_arguments_raise_clear_errors(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_backbone(**kwargs)


def test_corrupt_weights_file_is_reported(tmp_path) -> None:
    path = tmp_path / "broken.pth"
    path.write_bytes(b"not a torch file")
    with pytest.raises(ValueError, match="cannot read backbone weights"):
        build_backbone("resnet18", weights=path)
