"""Encoders: feature strides/channels, torchvision parameter counts and key names, weights,
dilated (output stride 16/8) modes, and the pyramid over their equal-stride levels."""

from __future__ import annotations

import pytest
import torch

from describeme.models.common.backbones import (
    BACKBONES,
    block_schedule,
    build_backbone,
    load_backbone_weights,
)
from describeme.models.common.pyramid import build_pyramid_decoder

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


# --- Dilated (atrous) encoder modes: output_stride 16 and 8 ---------------------------------

STRIDES_BY_MODE = {32: (4, 8, 16, 32), 16: (4, 8, 16, 16), 8: (4, 8, 8, 8)}


@pytest.mark.parametrize("output_stride", sorted(STRIDES_BY_MODE))
@pytest.mark.parametrize(
    ("name", "channels"),
    [
        ("resnet18", [64, 128, 256, 512]),
        ("resnet34", [64, 128, 256, 512]),
        ("resnet50", [256, 512, 1024, 2048]),
        ("mobilenet_v2", [24, 32, 96, 320]),
    ],
)
def test_each_mode_reports_and_produces_its_feature_strides(
    name: str, channels: list[int], output_stride: int
) -> None:
    backbone = build_backbone(name, output_stride=output_stride).eval()
    strides = STRIDES_BY_MODE[output_stride]
    assert backbone.feature_strides == strides
    assert backbone.output_stride == output_stride
    assert backbone.out_channels == channels
    with torch.no_grad():
        features = backbone(torch.rand(1, 3, 64, 96))
    assert [tuple(f.shape) for f in features] == [
        (1, c, 64 // s, 96 // s) for c, s in zip(channels, strides, strict=True)
    ]


@pytest.mark.parametrize("name", BACKBONES)
def test_state_dict_keys_and_shapes_are_the_same_in_every_mode(name: str) -> None:
    undilated = {k: tuple(v.shape) for k, v in build_backbone(name).state_dict().items()}
    for output_stride in (16, 8):
        state = build_backbone(name, output_stride=output_stride).state_dict()
        assert {k: tuple(v.shape) for k, v in state.items()} == undilated


def _dilations(backbone: torch.nn.Module, prefixes: tuple[str, ...]) -> list[tuple[int, int]]:
    """(stride, dilation) of every 3x3 conv under ``prefixes``, in module order."""
    return [
        (m.stride[0], m.dilation[0])
        for n, m in backbone.named_modules()
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3) and n.startswith(prefixes)
    ]


@pytest.mark.parametrize(
    ("output_stride", "layer3", "layer4"),
    [
        (32, [(2, 1), (1, 1), (1, 1), (1, 1)], [(2, 1), (1, 1), (1, 1), (1, 1)]),
        (16, [(2, 1), (1, 1), (1, 1), (1, 1)], [(1, 1), (1, 2), (1, 2), (1, 2)]),
        (8, [(1, 1), (1, 2), (1, 2), (1, 2)], [(1, 2), (1, 4), (1, 4), (1, 4)]),
    ],
)
def test_resnet18_dilates_like_torchvision(output_stride, layer3, layer4) -> None:
    # Each BasicBlock has two 3x3 convs; the one that lost its stride keeps the previous
    # dilation, the ones after it take the new one (torchvision's Bottleneck rule, timm's
    # first_dilation).
    backbone = build_backbone("resnet18", output_stride=output_stride)
    assert _dilations(backbone, ("layer3",)) == layer3
    assert _dilations(backbone, ("layer4",)) == layer4
    for m in backbone.modules():
        if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (3, 3):
            assert m.padding[0] == m.dilation[0]  # sizes hold at stride 1


# (stride, dilation) of the 3x3 conv of features.0..17 (features.0 is the stem conv, the
# others the blocks' depthwise convs), undilated, then what each dilated mode changes.
_MOBILENET_UNDILATED = {i: (2, 1) if i in (0, 2, 4, 7, 14) else (1, 1) for i in range(18)}


@pytest.mark.parametrize(
    ("output_stride", "changed"),
    [
        (32, {}),
        (16, {14: (1, 1), 15: (1, 2), 16: (1, 2), 17: (1, 2)}),
        (8, {7: (1, 1), **{i: (1, 2) for i in range(8, 15)}, 15: (1, 4), 16: (1, 4), 17: (1, 4)}),
    ],
)
def test_mobilenet_v2_dilates_its_late_depthwise_convs(output_stride, changed) -> None:
    backbone = build_backbone("mobilenet_v2", output_stride=output_stride)
    expected = [{**_MOBILENET_UNDILATED, **changed}[i] for i in range(18)]
    assert _dilations(backbone, ("features",)) == expected


@pytest.mark.parametrize(
    ("name", "width", "output_stride"),
    [
        ("resnet18", 1.0, 16),
        ("resnet18", 1.0, 8),
        ("resnet50", 1.0, 8),
        ("mobilenet_v2", 1.0, 16),
        ("mobilenet_v2", 1.0, 8),
        # Width 0.1 gives features.7 and .14 equal in/out channels: a dilated block must not
        # gain a shortcut its strided twin lacks.
        ("mobilenet_v2", 0.1, 8),
    ],
)
def test_dilated_encoder_with_strided_weights_is_the_strided_one_sampled_densely(
    name: str, width: float, output_stride: int
) -> None:
    """Loads the stride-32 weights: stages it left alone give identical maps, and a dilated
    stage's map at every (s/output_stride)-th cell equals the strided stage's map (the
    "a trous" identity), so dilation is the only thing that changed."""
    torch.manual_seed(0)
    strided = build_backbone(name, width_multiplier=width).eval()
    dilated = build_backbone(name, width_multiplier=width, output_stride=output_stride).eval()
    load_backbone_weights(dilated, strided.state_dict())
    images = torch.rand(2, 3, 64, 96)
    with torch.no_grad():
        expected, actual = strided(images), dilated(images)
    for level, stride in enumerate(dilated.feature_strides):
        step = strided.feature_strides[level] // stride
        assert actual[level].shape[-1] == expected[level].shape[-1] * step
        scale = float(expected[level].abs().max())
        torch.testing.assert_close(
            actual[level][..., ::step, ::step], expected[level], rtol=1e-4, atol=1e-5 * scale
        )
    assert dilated.feature_strides[-1] < strided.feature_strides[-1]  # a dilated stage compared


@pytest.mark.parametrize(
    ("block_strides", "input_stride", "output_stride", "expected"),
    [
        ([], 4, 8, []),
        ([1, 2, 1], 4, 32, [(1, 1, 1), (2, 1, 1), (1, 1, 1)]),
        ([1, 2, 1], 4, 8, [(1, 1, 1), (2, 1, 1), (1, 1, 1)]),  # reaches 8 exactly: no dilation
        ([2, 1, 2, 1], 4, 8, [(2, 1, 1), (1, 1, 1), (1, 1, 2), (1, 2, 2)]),
        (
            [2, 1, 2, 1, 2, 1],
            4,
            8,
            [(2, 1, 1), (1, 1, 1), (1, 1, 2), (1, 2, 2), (1, 2, 4), (1, 4, 4)],
        ),
        ([2, 2], 2, 4, [(2, 1, 1), (1, 1, 2)]),
        ([4, 1], 2, 4, [(1, 1, 4), (1, 4, 4)]),  # a stride-4 block that would overshoot
    ],
)
def test_block_schedule_table(block_strides, input_stride, output_stride, expected) -> None:
    assert block_schedule(block_strides, input_stride, output_stride) == expected


@pytest.mark.parametrize("output_stride", [12, 4, 64, 0, "16", 16.0, None])
@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2"])
def test_unsupported_output_stride_names_the_allowed_values(name, output_stride) -> None:
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32\)"):
        build_backbone(name, output_stride=output_stride)


# --- Pyramid over levels of equal stride ------------------------------------------------------


@pytest.mark.parametrize("output_stride", sorted(STRIDES_BY_MODE))
def test_pyramid_resizes_every_level_to_the_finest_for_any_encoder_mode(output_stride) -> None:
    torch.manual_seed(0)
    encoder = build_backbone("mobilenet_v2", width_multiplier=0.35, output_stride=output_stride)
    pyramid = build_pyramid_decoder(encoder.out_channels, 8, 1, encoder.feature_strides).eval()
    with torch.no_grad():
        levels, upscaled = pyramid(encoder.eval()(torch.rand(1, 3, 64, 96)))
    assert [tuple(x.shape) for x in levels] == [
        (1, 8, 64 // s, 96 // s) for s in STRIDES_BY_MODE[output_stride]
    ]
    assert [tuple(x.shape) for x in upscaled] == [(1, 8, 16, 24)] * 4


def test_pyramid_adds_equal_stride_levels_without_resizing() -> None:
    """With strides (8, 8) the top-down sum is lateral(C_fine) + lateral(C_coarse) exactly."""
    torch.manual_seed(0)
    pyramid = build_pyramid_decoder([3, 5], 4, 0, (8, 8)).eval()
    fine, coarse = torch.rand(1, 3, 6, 6), torch.rand(1, 5, 6, 6)
    with torch.no_grad():
        levels, upscaled = pyramid([fine, coarse])
        expected = pyramid.lateral[0](fine) + pyramid.lateral[1](coarse)
    torch.testing.assert_close(levels[0], expected)
    torch.testing.assert_close(upscaled[1], levels[1])


@pytest.mark.parametrize(
    ("strides", "message"),
    [
        ((4, 8, 16), "4 positive ints"),
        ((4, 8, 0, 32), "4 positive ints"),
        ((4, 8, 12, 32), "each dividing the next"),
        ((4, 16, 8, 32), "non-decreasing"),
    ],
)
def test_pyramid_rejects_strides_that_do_not_nest(strides, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_pyramid_decoder([8, 8, 8, 8], 8, 1, strides)
