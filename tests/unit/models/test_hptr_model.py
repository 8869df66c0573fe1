"""HPTR network: output heads and shapes, input checks, batched == single, config schema."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from describeme.errors import ConfigError
from describeme.models.hptr.config import build_model_from_config, load_hptr_config
from describeme.models.hptr.model import OUTPUT_NAMES, build_hptr

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model_from_config(load_hptr_config(CONFIGS / "hptr_tiny.yaml")).eval()


def test_eval_outputs_are_raw_heads_with_documented_shapes(tiny) -> None:
    with torch.no_grad():
        out = tiny(torch.rand(2, 3, 64, 96))
    assert tuple(out) == OUTPUT_NAMES
    expected = {
        "logits": (2, 8, 2),
        "boxes": (2, 8, 4),
        "masks": (2, 8, 16, 24),
        "attribute": (2, 22, 16, 24),
        "size": (2, 5, 16, 24),
        "pattern": (2, 5, 16, 24),
        "color": (2, 13, 16, 24),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected
    assert bool(((out["boxes"] >= 0) & (out["boxes"] <= 1)).all())


def test_training_mode_adds_one_aux_output_per_earlier_decoder_layer(tiny) -> None:
    tiny.train()
    try:
        out = tiny(torch.rand(1, 3, 64, 64))
    finally:
        tiny.eval()
    assert len(out["aux"]) == 1  # decoder_layers = 2 in the tiny config
    assert tuple(out["aux"][0]["logits"].shape) == (1, 8, 2)
    assert tuple(out["aux"][0]["boxes"].shape) == (1, 8, 4)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 1, 64, 64), r"\(B, 3, H, W\), got \(1, 1, 64, 64\)"),
        ((3, 64, 64), r"\(B, 3, H, W\), got \(3, 64, 64\)"),
        ((1, 4, 64, 64), r"got \(1, 4, 64, 64\)"),
        ((1, 3, 60, 64), "multiples of 32, got 60x64"),
        ((1, 3, 64, 100), "multiples of 32, got 64x100"),
    ],
)
def test_wrong_input_shape_names_expected_and_actual(tiny, shape, message) -> None:
    with pytest.raises(ValueError, match=message):
        tiny(torch.rand(*shape))


def test_batched_forward_equals_single_image_forwards(tiny) -> None:
    images = torch.rand(3, 3, 64, 64)
    with torch.no_grad():
        batched = tiny(images)
        singles = [tiny(images[i : i + 1]) for i in range(3)]
    for name in OUTPUT_NAMES:
        stacked = torch.cat([s[name] for s in singles])
        torch.testing.assert_close(batched[name], stacked, rtol=1e-4, atol=1e-5)


def test_model_args_rebuild_the_same_architecture(tiny) -> None:
    rebuilt = build_hptr(**tiny.model_args)
    assert rebuilt.state_dict().keys() == tiny.state_dict().keys()
    assert "backbone_weights" not in tiny.model_args


@pytest.mark.parametrize("name", ["hptr.yaml", "hptr_mobile.yaml", "hptr_tiny.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_hptr_config(CONFIGS / name)
    assert config.name == "hptr"
    assert config.model.num_queries >= 1


def test_paper_config_has_40_queries_and_resnet50() -> None:
    config = load_hptr_config(CONFIGS / "hptr.yaml")
    assert (config.model.num_queries, config.model.backbone) == (40, "resnet50")


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.nonsense=1"], "unknown key 'model.nonsense'"),
        (["model.backbone=vgg16"], "model.backbone"),
        (["input_size=[500,512]"], "multiples of 32"),
        (["model.num_queries=0"], "model.num_queries"),
    ],
)
def test_bad_config_values_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_hptr_config(CONFIGS / "hptr_tiny.yaml", overrides)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"hidden_dim": 30, "heads": 4}, "divisible by heads"),
        ({"num_queries": 0}, "num_queries"),
        ({"decoder_layers": 0}, "decoder_layers"),
    ],
)
def test_bad_model_arguments_raise(kwargs: dict, message: str) -> None:
    base = dict(
        backbone="mobilenet_v2",
        width_multiplier=0.35,
        pyramid_channels=16,
        hidden_dim=32,
        heads=4,
        encoder_layers=0,
        decoder_layers=1,
        ffn_dim=32,
        mask_context_dim=16,
    )
    with pytest.raises(ValueError, match=message):
        build_hptr(**{**base, **kwargs})
