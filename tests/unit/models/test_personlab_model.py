"""PersonLab network: heads and shapes, input checks, batched == single, configs, checkpoint
round trip, ONNX export == eager, and the same for the dilated encoder modes."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnxruntime as ort
import pytest
import torch

from describeme.errors import ConfigError
from describeme.models import checkpoint, registry
from describeme.models.checkpoint import load_checkpoint, save_checkpoint
from describeme.models.export import export_onnx
from describeme.models.personlab import (
    OUTPUT_NAMES,
    build_personlab,
    default_disk_radius,
    register,
)
from describeme.models.personlab.config import build_model_from_config, load_personlab_config

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
# Measured max abs difference ~4e-6 (offsets are scaled by R = 12 inside the graph); a wrong op
# differs by order 1e-1.
RTOL = ATOL = 1e-4


@pytest.fixture(scope="module")
def tiny():
    torch.manual_seed(0)
    return build_model_from_config(load_personlab_config(CONFIGS / "personlab_tiny.yaml")).eval()


def test_eval_outputs_are_raw_heads_with_documented_shapes(tiny) -> None:
    with torch.no_grad():
        out = tiny(torch.rand(2, 3, 64, 96))
    assert tuple(out) == OUTPUT_NAMES
    expected = {
        "heatmaps": (2, 17, 8, 12),
        "short_offsets": (2, 34, 8, 12),
        "mid_offsets": (2, 64, 8, 12),
        "segmentation": (2, 1, 8, 12),
        "long_offsets": (2, 34, 8, 12),
        "attribute": (2, 22, 16, 24),
        "size": (2, 5, 16, 24),
        "pattern": (2, 5, 16, 24),
        "color": (2, 13, 16, 24),
    }
    assert {k: tuple(v.shape) for k, v in out.items()} == expected


def test_output_stride_16_halves_the_keypoint_maps() -> None:
    model = build_personlab(
        backbone="mobilenet_v2", width_multiplier=0.35, pyramid_channels=8, convs_per_level=0,
        head_hidden=8, semantic_hidden=4, output_stride=16, disk_radius=12.0,
    ).eval()  # fmt: skip
    with torch.no_grad():
        out = model(torch.rand(1, 3, 64, 64))
    assert tuple(out["heatmaps"].shape) == (1, 17, 4, 4)
    assert tuple(out["attribute"].shape) == (1, 22, 16, 16)


@pytest.mark.parametrize(
    ("shape", "message"),
    [
        ((1, 1, 64, 64), r"\(B, 3, H, W\), got \(1, 1, 64, 64\)"),
        ((3, 64, 64), r"\(B, 3, H, W\), got \(3, 64, 64\)"),
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
        torch.testing.assert_close(batched[name], stacked, rtol=1e-4, atol=1e-4)


def test_model_args_rebuild_the_same_architecture(tiny) -> None:
    rebuilt = build_personlab(**tiny.model_args)
    assert rebuilt.state_dict().keys() == tiny.state_dict().keys()
    assert "backbone_weights" not in tiny.model_args
    assert tiny.model_name == "personlab"


@pytest.fixture
def registered(monkeypatch: pytest.MonkeyPatch) -> None:
    """``register()`` on copies of the global tables, restored after the test."""
    monkeypatch.setattr(checkpoint, "MODEL_BUILDERS", dict(checkpoint.MODEL_BUILDERS))
    monkeypatch.setattr(registry, "PARSER_FACTORIES", dict(registry.PARSER_FACTORIES))
    register()


def test_checkpoint_round_trip_rebuilds_personlab_from_the_file_alone(
    tiny, tmp_path, registered
) -> None:
    path = save_checkpoint(tmp_path / "personlab.pt", tiny, metrics={"kp_ap": 0.1})
    loaded, meta = load_checkpoint(path, expected_model="personlab")
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = tiny(images), loaded(images)
    for name in OUTPUT_NAMES:
        assert torch.equal(expected[name], actual[name])
    assert meta["model_args"] == tiny.model_args


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"output_stride": 4}, "output_stride must be one of"),
        ({"disk_radius": 0.0}, "disk_radius must be positive"),
        ({"head_hidden": 0}, "head_hidden"),
        ({"backbone": "vgg16"}, "unknown backbone"),
    ],
)
def test_bad_model_arguments_raise(kwargs: dict, message: str) -> None:
    base = dict(backbone="mobilenet_v2", width_multiplier=0.35, pyramid_channels=8)
    with pytest.raises(ValueError, match=message):
        build_personlab(**{**base, **kwargs})


@pytest.mark.parametrize("name", ["personlab.yaml", "personlab_mobile.yaml", "personlab_tiny.yaml"])
def test_shipped_configs_validate(name: str) -> None:
    config = load_personlab_config(CONFIGS / name)
    assert config.name == "personlab"
    assert config.model.output_stride in (8, 16)


def test_paper_config_states_the_scaled_disk_radius_and_decoding_constants() -> None:
    config = load_personlab_config(CONFIGS / "personlab.yaml")
    assert config.model.disk_radius == default_disk_radius(config.input_size) == 20.0
    assert config.postprocess.peak_threshold == 0.01
    assert config.postprocess.embedding_threshold == 0.25
    assert config.postprocess.nms_radius == 10.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["model.nonsense=1"], "unknown key 'model.nonsense'"),
        (["model.output_stride=4"], "model.output_stride"),
        (["input_size=[500,512]"], "multiples of 32"),
        (["model.disk_radius=40"], "too large for input_size"),
        (["postprocess.max_people=300"], "postprocess.max_people"),
    ],
)
def test_bad_config_values_name_the_key(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_personlab_config(CONFIGS / "personlab_tiny.yaml", overrides)


def test_onnx_export_matches_eager(tiny, tmp_path) -> None:
    path = export_onnx(tiny, tmp_path / "personlab.onnx", (64, 96))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    assert [o.name for o in session.get_outputs()] == list(OUTPUT_NAMES)
    images = np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)
    onnx_out = dict(zip(OUTPUT_NAMES, session.run(None, {"images": images}), strict=True))
    with torch.no_grad():
        eager = {k: v.numpy() for k, v in tiny(torch.from_numpy(images)).items()}
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(onnx_out[name], eager[name], rtol=RTOL, atol=ATOL, err_msg=name)
        assert np.abs(eager[name]).max() > 1e-3, f"{name} is all ~0: parity would prove nothing"


def test_dynamic_size_export_runs_other_sizes_like_eager(tiny, tmp_path) -> None:
    path = export_onnx(tiny, tmp_path / "dynamic.onnx", (64, 64), dynamic_size=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(1).random((1, 3, 96, 128), dtype=np.float32)
    onnx_out = dict(zip(OUTPUT_NAMES, session.run(None, {"images": images}), strict=True))
    with torch.no_grad():
        eager = {k: v.numpy() for k, v in tiny(torch.from_numpy(images)).items()}
    assert onnx_out["heatmaps"].shape == (1, 17, 12, 16)
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(onnx_out[name], eager[name], rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.fixture(scope="module")
def tiny_config():
    return load_personlab_config(CONFIGS / "personlab_tiny.yaml")


@pytest.mark.parametrize("kind", ["checkpoint", "onnx"])
def test_registered_parser_turns_frames_into_persons(tiny, tiny_config, tmp_path, registered, kind):
    config_json = json.dumps(tiny_config.model_dump(mode="json"))
    if kind == "checkpoint":
        path = save_checkpoint(tmp_path / "personlab.pt", tiny, config=tiny_config)
    else:
        path = export_onnx(
            tiny, tmp_path / "personlab.onnx", (64, 64), metadata={"config": config_json}
        )
    parser = registry.load_parser(path)
    assert parser.model_name == "personlab" and parser.input_size == (64, 64)
    frames = [np.random.default_rng(2).integers(0, 255, (48, 80, 3), dtype=np.uint8)]
    (persons,) = parser.parse(frames)
    assert persons.keypoints is not None and persons.masks is not None
    assert all(m.image_size == (48, 80) for m in persons.masks)


def test_parser_takes_the_disk_radius_from_the_model_args(tiny_config) -> None:
    from describeme.models.personlab.parser import personlab_config_from_meta

    meta = {"config": tiny_config.model_dump(mode="json"), "model_args": {"disk_radius": 9.0}}
    assert personlab_config_from_meta(meta).model.disk_radius == 9.0
    assert personlab_config_from_meta({}).model.disk_radius == 20.0
    train_meta = {"config": {"epochs": 3, "model": tiny_config.model_dump(mode="json")}}
    assert personlab_config_from_meta(train_meta).input_size == (64, 64)
    assert personlab_config_from_meta({"config": "not json"}).input_size == (512, 512)


# --- Dilated encoder (encoder_output_stride 16 / 8) -----------------------------------------


@pytest.fixture(scope="module")
def dilated_config():
    return load_personlab_config(CONFIGS / "personlab_tiny.yaml", ["model.encoder_output_stride=8"])


@pytest.fixture(scope="module")
def dilated(dilated_config):
    torch.manual_seed(0)
    return build_model_from_config(dilated_config).eval()


def test_shipped_configs_keep_the_undilated_encoder(tiny) -> None:
    for name in ("personlab.yaml", "personlab_mobile.yaml", "personlab_tiny.yaml"):
        assert load_personlab_config(CONFIGS / name).model.encoder_output_stride == 32
    assert tiny.backbone.feature_strides == (4, 8, 16, 32)
    assert tiny.model_args["encoder_output_stride"] == 32


@pytest.mark.parametrize(
    ("encoder_output_stride", "strides"), [(16, (4, 8, 16, 16)), (8, (4, 8, 8, 8))]
)
def test_dilated_encoder_keeps_head_shapes_and_weights(encoder_output_stride, strides) -> None:
    args = dict(
        backbone="mobilenet_v2", width_multiplier=0.35, pyramid_channels=8, convs_per_level=1,
        head_hidden=8, semantic_hidden=4, output_stride=8, disk_radius=12.0,
    )  # fmt: skip
    strided = build_personlab(**args).eval()
    model = build_personlab(**args, encoder_output_stride=encoder_output_stride).eval()
    assert model.backbone.feature_strides == strides
    assert model.pyramid.strides == strides
    model.load_state_dict(strided.state_dict())  # strict: the same weights fit both modes
    images = torch.rand(1, 3, 64, 96)
    with torch.no_grad():
        expected, actual = strided(images), model(images)
    for name in OUTPUT_NAMES:
        assert actual[name].shape == expected[name].shape, name
    # Same weights, different receptive fields: the dilated network computes something else.
    assert not torch.allclose(actual["heatmaps"], expected["heatmaps"], atol=1e-4)


def test_dilated_model_args_rebuild_the_dilated_network(dilated, tmp_path, registered) -> None:
    assert dilated.model_args["encoder_output_stride"] == 8
    path = save_checkpoint(tmp_path / "dilated.pt", dilated)
    loaded, _ = load_checkpoint(path, expected_model="personlab")
    assert loaded.backbone.feature_strides == (4, 8, 8, 8)
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = dilated(images), loaded(images)
    for name in OUTPUT_NAMES:
        assert torch.equal(expected[name], actual[name]), name


def test_model_args_without_the_option_rebuild_the_undilated_network(tiny) -> None:
    """Checkpoints written before ``encoder_output_stride`` existed lack the key."""
    older = {k: v for k, v in tiny.model_args.items() if k != "encoder_output_stride"}
    assert build_personlab(**older).backbone.feature_strides == (4, 8, 16, 32)


def test_parser_config_takes_the_encoder_stride_from_the_model_args(tiny_config) -> None:
    from describeme.models.personlab.parser import personlab_config_from_meta

    meta = {
        "config": tiny_config.model_dump(mode="json"),
        "model_args": {"encoder_output_stride": 16},
    }
    assert personlab_config_from_meta(meta).model.encoder_output_stride == 16


def test_dilated_onnx_export_matches_eager(dilated, tmp_path) -> None:
    path = export_onnx(dilated, tmp_path / "dilated.onnx", (64, 96))
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    images = np.random.default_rng(3).random((2, 3, 64, 96), dtype=np.float32)
    onnx_out = dict(zip(OUTPUT_NAMES, session.run(None, {"images": images}), strict=True))
    with torch.no_grad():
        eager = {k: v.numpy() for k, v in dilated(torch.from_numpy(images)).items()}
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(onnx_out[name], eager[name], rtol=RTOL, atol=ATOL, err_msg=name)
        assert np.abs(eager[name]).max() > 1e-3, f"{name} is all ~0: parity would prove nothing"


def test_dilated_dynamic_size_export_runs_other_sizes_like_eager(dilated, tmp_path) -> None:
    path = export_onnx(dilated, tmp_path / "dilated_dynamic.onnx", (64, 64), dynamic_size=True)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    images = np.random.default_rng(4).random((1, 3, 96, 128), dtype=np.float32)
    onnx_out = dict(zip(OUTPUT_NAMES, session.run(None, {"images": images}), strict=True))
    with torch.no_grad():
        eager = {k: v.numpy() for k, v in dilated(torch.from_numpy(images)).items()}
    assert onnx_out["heatmaps"].shape == (1, 17, 12, 16)
    for name in OUTPUT_NAMES:
        np.testing.assert_allclose(onnx_out[name], eager[name], rtol=RTOL, atol=ATOL, err_msg=name)


@pytest.mark.parametrize("value", [12, 4, 64])
def test_bad_encoder_output_stride_names_the_allowed_values(value: int) -> None:
    with pytest.raises(ValueError, match=r"output_stride must be one of \(8, 16, 32\)"):
        build_personlab(backbone="mobilenet_v2", width_multiplier=0.35, pyramid_channels=8,
                        encoder_output_stride=value)  # fmt: skip
    with pytest.raises(ConfigError, match=r"model\.encoder_output_stride.*8, 16 or 32"):
        load_personlab_config(
            CONFIGS / "personlab_tiny.yaml", [f"model.encoder_output_stride={value}"]
        )


def test_export_cli_uses_personlab_training_size(tmp_path, registered) -> None:
    """``describeme export`` of a PersonLab checkpoint exports at the size the model was
    trained at, read from its own config (not HPTR's defaults)."""
    from describeme.cli.training import run_export
    from describeme.models.registry import trained_input_size

    config = load_personlab_config(CONFIGS / "personlab_tiny.yaml", ["input_size=[64, 96]"])
    model = build_model_from_config(config)
    path = save_checkpoint(
        tmp_path / "pl.pt", model, config={"model": config.model_dump(mode="json")}
    )
    _, meta = load_checkpoint(path)
    assert trained_input_size(meta) == (64, 96)
    onnx_path = run_export(str(path), "onnx", tmp_path / "out")
    session = ort.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [64, 96]
