"""ONNX export: parity with eager (rtol 1e-4, atol 1e-4), dynamic axes, metadata."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
import torch

from describeme.models.export import export_onnx
from describeme.models.hptr.config import build_model_from_config, load_hptr_config

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
# Measured max abs difference is ~4e-6 on this model; the tolerance leaves headroom for other
# CPUs' kernels while still catching a wrong op (differences of order 1e-1).
RTOL = ATOL = 1e-4


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model_from_config(load_hptr_config(CONFIGS / "hptr_tiny.yaml")).eval()


@pytest.fixture(scope="module")
def static_path(model, tmp_path_factory) -> Path:
    folder = tmp_path_factory.mktemp("static")
    return export_onnx(model, folder / "hptr.onnx", (64, 96), metadata={"git": "abc"})


@pytest.fixture(scope="module")
def dynamic_path(model, tmp_path_factory) -> Path:
    return export_onnx(
        model, tmp_path_factory.mktemp("dynamic") / "hptr.onnx", (64, 64), dynamic_size=True
    )


def _run(path: Path, images: np.ndarray) -> dict[str, np.ndarray]:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    names = [o.name for o in session.get_outputs()]
    return dict(zip(names, session.run(None, {"images": images}), strict=True))


def _eager(model, images: np.ndarray) -> dict[str, np.ndarray]:
    with torch.no_grad():
        return {k: v.numpy() for k, v in model(torch.from_numpy(images)).items()}


@pytest.mark.parametrize("batch", [1, 3])
def test_fixed_size_export_matches_eager_for_any_batch(static_path, model, batch: int) -> None:
    path = static_path
    images = np.random.default_rng(batch).random((batch, 3, 64, 96), dtype=np.float32)
    onnx_out, eager_out = _run(path, images), _eager(model, images)
    assert list(onnx_out) == list(model.output_names)
    for name in model.output_names:
        np.testing.assert_allclose(
            onnx_out[name], eager_out[name], rtol=RTOL, atol=ATOL, err_msg=name
        )


@pytest.mark.parametrize("size", [(64, 96), (96, 64)])
def test_dynamic_size_export_matches_eager(dynamic_path, model, size) -> None:
    path = dynamic_path
    images = np.random.default_rng(0).random((2, 3, *size), dtype=np.float32)
    onnx_out, eager_out = _run(path, images), _eager(model, images)
    for name in model.output_names:
        np.testing.assert_allclose(
            onnx_out[name], eager_out[name], rtol=RTOL, atol=ATOL, err_msg=name
        )


def test_graph_declares_dynamic_batch_fixed_size_and_metadata(static_path, model) -> None:
    proto = onnx.load(str(static_path))
    dims = proto.graph.input[0].type.tensor_type.shape.dim
    assert dims[0].dim_param == "batch" and [d.dim_value for d in dims[1:]] == [3, 64, 96]
    assert proto.opset_import[0].version == 17
    props = {p.key: p.value for p in proto.metadata_props}
    assert props["model_name"] == "hptr" and props["git"] == "abc"
    assert json.loads(props["model_args"]) == model.model_args
    assert json.loads(props["input_size"]) == [64, 96]


def test_export_keeps_training_flag(tmp_path) -> None:
    small = build_model_from_config(load_hptr_config(CONFIGS / "hptr_tiny.yaml")).train()
    export_onnx(small, tmp_path / "hptr.onnx", (32, 32), check=False)
    assert small.training


def test_model_without_output_names_is_rejected(tmp_path) -> None:
    with pytest.raises(ValueError, match="output_names"):
        export_onnx(torch.nn.Conv2d(3, 3, 1), tmp_path / "x.onnx", (32, 32))
