"""Engine backends behind one interface: torch == onnxruntime; clear errors otherwise."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import torch

from describeme.models.checkpoint import save_checkpoint
from describeme.models.export import export_onnx
from describeme.models.hptr.config import build_model_from_config, load_hptr_config
from describeme.models.runtime import Backend, BackendUnavailableError, build_backend
from describeme.models.runtime.tensorrt_backend import engine_cache_key

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
HAS_TENSORRT = importlib.util.find_spec("tensorrt") is not None


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model_from_config(load_hptr_config(CONFIGS / "hptr_tiny.yaml")).eval()


@pytest.fixture(scope="module")
def onnx_path(model, tmp_path_factory) -> Path:
    return export_onnx(model, tmp_path_factory.mktemp("onnx") / "hptr.onnx", (64, 96))


@pytest.fixture()
def images() -> np.ndarray:
    return np.random.default_rng(0).random((2, 3, 64, 96), dtype=np.float32)


def test_torch_and_onnxruntime_give_the_same_outputs(model, onnx_path, images) -> None:
    torch_backend = build_backend("torch", model)
    onnx_backend = build_backend("onnxruntime", onnx_path, threads=1)
    assert isinstance(torch_backend, Backend) and isinstance(onnx_backend, Backend)
    assert torch_backend.output_names == onnx_backend.output_names == model.output_names
    expected, actual = torch_backend.infer(images), onnx_backend.infer(images)
    for name in model.output_names:
        assert actual[name].dtype == np.float32 and actual[name].shape[0] == 2
        np.testing.assert_allclose(actual[name], expected[name], rtol=1e-4, atol=1e-4, err_msg=name)


def test_backends_accept_a_checkpoint_path(tmp_path, model, images) -> None:
    path = save_checkpoint(tmp_path / "hptr.pt", model)
    expected = build_backend("torch", model).infer(images)
    for kind in ("torch", "onnxruntime"):
        actual = build_backend(kind, path).infer(images)
        np.testing.assert_allclose(
            actual["masks"], expected["masks"], rtol=1e-4, atol=1e-4, err_msg=kind
        )


@pytest.mark.skipif(HAS_TENSORRT, reason="tensorrt is installed here")
def test_tensorrt_without_the_package_raises_a_clear_error(onnx_path) -> None:
    with pytest.raises(BackendUnavailableError, match=r"pip install 'describeme\[tensorrt\]'"):
        build_backend("tensorrt", onnx_path, device="cuda", precision="fp16")


def test_tensorrt_needs_an_onnx_file_not_a_module(model) -> None:
    with pytest.raises(TypeError, match="export the model first"):
        build_backend("tensorrt", model, device="cuda")


def test_engine_cache_key_changes_with_every_build_setting(onnx_path, tmp_path) -> None:
    base = dict(
        precision="fp16",
        max_batch_size=8,
        input_size=(512, 512),
        trt_version="10.3.0",
        compute_capability=(8, 6),
    )
    key = engine_cache_key(onnx_path, **base)
    assert key.endswith("-fp16-b1-8-512x512-trt10.3.0-sm86.engine")
    variants = [
        dict(precision="fp32"),
        dict(max_batch_size=4),
        dict(input_size=(384, 512)),
        dict(trt_version="10.4.0"),
        dict(compute_capability=(9, 0)),
    ]
    keys = {engine_cache_key(onnx_path, **{**base, **v}) for v in variants}
    other = tmp_path / "other.onnx"
    other.write_bytes(onnx_path.read_bytes() + b"\0")
    keys.add(engine_cache_key(other, **base))
    assert key not in keys and len(keys) == len(variants) + 1


@pytest.mark.parametrize(
    ("kind", "kwargs", "error", "message"),
    [
        ("openvino", {}, ValueError, "unknown backend 'openvino'"),
        ("torch", {"precision": "fp16"}, ValueError, "fp16 needs a CUDA device"),
        ("torch", {"precision": "int8"}, ValueError, "precision must be one of"),
        ("onnxruntime", {"precision": "fp16"}, ValueError, "fp16"),
    ],
)
def test_bad_backend_options_raise(model, onnx_path, kind, kwargs, error, message) -> None:
    source = onnx_path if kind == "onnxruntime" else model
    with pytest.raises(error, match=message):
        build_backend(kind, source, **kwargs)


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is available here")
def test_cuda_without_cuda_raises(model) -> None:
    with pytest.raises(BackendUnavailableError, match="no CUDA"):
        build_backend("torch", model, device="cuda")


@pytest.mark.parametrize(
    ("batch", "error", "message"),
    [
        ([[0.0]], TypeError, "numpy array"),
        (np.zeros((3, 64, 96), np.float32), ValueError, r"\(B, 3, H, W\), got \(3, 64, 96\)"),
        (np.zeros((1, 1, 64, 64), np.float32), ValueError, r"got \(1, 1, 64, 64\)"),
        (np.zeros((0, 3, 64, 64), np.float32), ValueError, "empty"),
        (np.zeros((1, 3, 96, 64), np.float32), ValueError, "takes 64x96 images, got 96x64"),
    ],
)
def test_bad_images_raise(onnx_path, batch, error, message) -> None:
    backend = build_backend("onnxruntime", onnx_path, threads=1)
    with pytest.raises(error, match=message):
        backend.infer(batch)


def test_missing_onnx_file_raises(tmp_path) -> None:
    with pytest.raises(FileNotFoundError, match="does not exist"):
        build_backend("onnxruntime", tmp_path / "missing.onnx")


def test_float64_images_are_converted(model, images) -> None:
    backend = build_backend("torch", model)
    out64 = backend.infer(images.astype(np.float64))
    np.testing.assert_array_equal(out64["logits"], backend.infer(images)["logits"])


@pytest.mark.gpu
def test_torch_fp16_on_cuda_is_close_to_fp32(model, images) -> None:
    import copy

    # The torch backend moves (and for fp16 converts) the module it is given: use copies.
    fp32 = build_backend("torch", copy.deepcopy(model), device="cuda").infer(images)
    fp16 = build_backend("torch", copy.deepcopy(model), device="cuda", precision="fp16").infer(
        images
    )
    np.testing.assert_allclose(fp16["boxes"], fp32["boxes"], atol=2e-2)


class _FakeTensorRT:
    """Stand-in for the ``tensorrt`` module recording the engine-build calls (no GPU needed)."""

    __version__ = "10.0.fake"

    class Logger:
        WARNING = 2

        def __init__(self, level: int) -> None:
            self.level = level

    class MemoryPoolType:
        WORKSPACE = "workspace"

    class BuilderFlag:
        FP16 = "fp16"

    class TensorIOMode:
        INPUT, OUTPUT = "input", "output"

    def __init__(self) -> None:
        self.builds: list[dict] = []
        fake = self

        class Profile:
            def set_shape(self, name, minimum, optimum, maximum) -> None:
                fake.builds[-1]["profile"] = (name, minimum, optimum, maximum)

        class Config:
            def set_memory_pool_limit(self, pool, size) -> None:
                fake.builds[-1]["workspace"] = size

            def set_flag(self, flag) -> None:
                fake.builds[-1].setdefault("flags", []).append(flag)

            def add_optimization_profile(self, profile) -> None:
                fake.builds[-1]["profiles"] = fake.builds[-1].get("profiles", 0) + 1

        class Input:
            name = "images"

        class Network:
            def get_input(self, index: int):
                return Input()

        class Builder:
            def __init__(self, logger) -> None:
                fake.builds.append({})

            def create_network(self, flags: int):
                return Network()

            def create_builder_config(self):
                return Config()

            def create_optimization_profile(self):
                return Profile()

            def build_serialized_network(self, network, config):
                return b"engine-bytes"

        class OnnxParser:
            num_errors = 0

            def __init__(self, network, logger) -> None:
                pass

            def parse(self, data: bytes) -> bool:
                fake.builds[-1]["onnx_bytes"] = len(data)
                return True

        class Engine:
            num_io_tensors = 3

            def get_tensor_name(self, index: int) -> str:
                return ("images", "logits", "boxes")[index]

            def get_tensor_mode(self, name: str) -> str:
                return "input" if name == "images" else "output"

            def create_execution_context(self):
                return object()

        class Runtime:
            def __init__(self, logger) -> None:
                pass

            def deserialize_cuda_engine(self, data: bytes):
                assert data == b"engine-bytes"
                return Engine()

        self.Builder, self.OnnxParser, self.Runtime = Builder, OnnxParser, Runtime


def test_tensorrt_engine_is_built_once_with_the_profile_and_then_cached(
    onnx_path, tmp_path, monkeypatch
) -> None:
    import sys

    fake = _FakeTensorRT()
    monkeypatch.setitem(sys.modules, "tensorrt", fake)
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "get_device_capability", lambda device=None: (8, 9))
    options = dict(device="cuda", precision="fp16", max_batch_size=4, cache_dir=tmp_path)
    backend = build_backend("tensorrt", onnx_path, **options)
    assert len(fake.builds) == 1
    build = fake.builds[0]
    assert build["profile"] == ("images", (1, 3, 64, 96), (2, 3, 64, 96), (4, 3, 64, 96))
    assert build["flags"] == ["fp16"] and build["profiles"] == 1
    assert backend.engine_path.parent == tmp_path
    assert backend.engine_path.name.endswith("-fp16-b1-4-64x96-trt10.0.fake-sm89.engine")
    assert backend.input_name == "images" and backend.output_names == ("logits", "boxes")
    build_backend("tensorrt", onnx_path, **options)
    assert len(fake.builds) == 1  # second backend loads the cached engine
    build_backend("tensorrt", onnx_path, **{**options, "precision": "fp32"})
    assert len(fake.builds) == 2 and "flags" not in fake.builds[1]


def test_tensorrt_rejects_a_dynamic_size_graph(model, tmp_path, monkeypatch) -> None:
    import sys

    monkeypatch.setitem(sys.modules, "tensorrt", _FakeTensorRT())
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    path = export_onnx(model, tmp_path / "dynamic.onnx", (64, 64), dynamic_size=True)
    with pytest.raises(ValueError, match="fixed height and width"):
        build_backend("tensorrt", path, device="cuda", cache_dir=tmp_path)
