"""TensorRT engine built from the exported ONNX graph (TensorRT 10 name-based tensor API).

Needs the ``tensorrt`` extra (NVIDIA's wheels, GPU nodes only) and CUDA torch: I/O is bound to
torch CUDA tensors, so no pycuda is needed. The engine is built once with fp16 (or fp32) and
an optimisation profile covering batch 1..max_batch_size at the graph's fixed size, and cached
on disk under a key made of the ONNX file's hash, precision, batch range, input size,
TensorRT version and GPU compute capability: a change in any of them builds a new engine.

Written against NVIDIA's documented TensorRT 10 Python API; TensorRT cannot be installed on
the machines this project is developed on, so only the missing-package path is unit-tested.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path
from typing import Any

import numpy as np

from describeme.models.export import file_sha256
from describeme.models.runtime.base import BackendUnavailableError, check_images, check_precision

log = logging.getLogger(__name__)

DEFAULT_CACHE_DIR = Path(
    os.environ.get("DESCRIBEME_ENGINE_CACHE", Path.home() / ".cache" / "describeme" / "engines")
)
WORKSPACE_BYTES = 2 << 30  # TensorRT tactic scratch space; 2 GiB suits 512x512 HPTR


def import_tensorrt() -> Any:
    """Imports ``tensorrt`` or raises an error saying how to get it."""
    try:
        import tensorrt
    except ImportError:
        raise BackendUnavailableError(
            "the tensorrt backend needs NVIDIA TensorRT >= 10: on a CUDA machine run "
            "pip install 'describeme[tensorrt]' (or use --backend onnxruntime / torch)"
        ) from None
    return tensorrt


def engine_cache_key(
    onnx_path: str | Path,
    *,
    precision: str,
    max_batch_size: int,
    input_size: tuple[int, int],
    trt_version: str,
    compute_capability: tuple[int, int],
) -> str:
    """File name of the cached engine for these build settings."""
    major, minor = compute_capability
    return (
        f"{file_sha256(onnx_path)}-{precision}-b1-{max_batch_size}-{input_size[0]}x{input_size[1]}"
        f"-trt{trt_version}-sm{major}{minor}.engine"
    )


class TensorRTBackend:
    """Runs a TensorRT engine on one GPU.

    Args:
        model: the ``.onnx`` file (exported with a fixed size, dynamic batch).
        device: "cuda" or "cuda:i".
        precision: "fp16" (default) or "fp32".
        max_batch_size: top of the optimisation profile.
        cache_dir: where engines are cached.
    """

    kind = "tensorrt"

    def __init__(
        self,
        *,
        model: str | Path,
        device: str = "cuda",
        precision: str = "fp16",
        max_batch_size: int = 8,
        cache_dir: str | Path | None = None,
    ) -> None:
        trt = import_tensorrt()
        import torch

        check_precision(precision, device)
        if not device.startswith("cuda") or not torch.cuda.is_available():
            raise BackendUnavailableError(
                f"the tensorrt backend needs a CUDA device, got {device!r} "
                f"(torch CUDA available: {torch.cuda.is_available()})"
            )
        if max_batch_size < 1:
            raise ValueError(f"max_batch_size must be >= 1, got {max_batch_size}")
        onnx_path = Path(model)
        if onnx_path.suffix != ".onnx" or not onnx_path.is_file():
            raise ValueError(
                f"the tensorrt backend builds from an exported .onnx file, got {model}"
            )
        self.torch, self.trt = torch, trt
        self.device, self.precision, self.max_batch_size = device, precision, max_batch_size
        self.logger = trt.Logger(trt.Logger.WARNING)
        self.input_size = _onnx_input_size(onnx_path)
        engine_path = self._engine_path(onnx_path, cache_dir)
        if not engine_path.is_file():
            self._build_engine(onnx_path, engine_path)
        # The runtime must outlive the engines it deserialises: keep a reference.
        self.runtime = trt.Runtime(self.logger)
        self.engine = self.runtime.deserialize_cuda_engine(engine_path.read_bytes())
        if self.engine is None:
            raise RuntimeError(
                f"TensorRT could not load engine {engine_path}; delete it to rebuild"
            )
        self.context = self.engine.create_execution_context()
        names = [self.engine.get_tensor_name(i) for i in range(self.engine.num_io_tensors)]
        self.input_name = next(
            n for n in names if self.engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT
        )
        self.output_names = tuple(n for n in names if n != self.input_name)
        self.engine_path = engine_path

    def _engine_path(self, onnx_path: Path, cache_dir: str | Path | None) -> Path:
        """Cache location keyed by model hash, precision, batch range, size, TRT and GPU."""
        torch = self.torch
        capability = torch.cuda.get_device_capability(torch.device(self.device))
        key = engine_cache_key(
            onnx_path,
            precision=self.precision,
            max_batch_size=self.max_batch_size,
            input_size=self.input_size,
            trt_version=self.trt.__version__,
            compute_capability=capability,
        )
        return Path(cache_dir or DEFAULT_CACHE_DIR) / key

    def _build_engine(self, onnx_path: Path, engine_path: Path) -> None:
        """Parses the ONNX graph and serialises an engine with a batch 1..max profile."""
        trt = self.trt
        builder = trt.Builder(self.logger)
        network = builder.create_network(0)  # explicit batch is the only mode in TensorRT 10
        parser = trt.OnnxParser(network, self.logger)
        if not parser.parse(onnx_path.read_bytes()):
            errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
            raise RuntimeError(f"TensorRT cannot parse {onnx_path}: {errors}")
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, WORKSPACE_BYTES)
        if self.precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        profile = builder.create_optimization_profile()
        height, width = self.input_size
        name = network.get_input(0).name
        profile.set_shape(
            name,
            (1, 3, height, width),
            (max(1, self.max_batch_size // 2), 3, height, width),
            (self.max_batch_size, 3, height, width),
        )
        config.add_optimization_profile(profile)
        log.info("building TensorRT engine %s (minutes the first time)", engine_path.name)
        serialized = builder.build_serialized_network(network, config)
        if serialized is None:
            raise RuntimeError(f"TensorRT failed to build an engine from {onnx_path}")
        engine_path.parent.mkdir(parents=True, exist_ok=True)
        tmp = engine_path.with_name(f".{engine_path.name}.tmp-{os.getpid()}")
        tmp.write_bytes(bytes(serialized))
        os.replace(tmp, engine_path)

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(B, 3, H, W) float32 -> {name: float32 numpy array}; I/O lives in torch CUDA tensors."""
        torch, trt = self.torch, self.trt
        images = check_images(images, self.input_size, self.max_batch_size)
        stream = torch.cuda.current_stream(torch.device(self.device))
        batch = torch.from_numpy(images).to(self.device, non_blocking=True)
        self.context.set_input_shape(self.input_name, tuple(batch.shape))
        self.context.set_tensor_address(self.input_name, batch.data_ptr())
        outputs = {}
        for name in self.output_names:
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = torch.from_numpy(
                np.zeros(0, dtype=trt.nptype(self.engine.get_tensor_dtype(name)))
            ).dtype
            outputs[name] = torch.empty(shape, dtype=dtype, device=self.device)
            self.context.set_tensor_address(name, outputs[name].data_ptr())
        if not self.context.execute_async_v3(stream.cuda_stream):
            raise RuntimeError("TensorRT execution failed")
        stream.synchronize()
        return {name: tensor.float().cpu().numpy() for name, tensor in outputs.items()}


def _onnx_input_size(path: Path) -> tuple[int, int]:
    """(height, width) of the graph's fixed-size image input."""
    import onnx

    graph_input = onnx.load(str(path), load_external_data=False).graph.input[0]
    dims = [
        d.dim_value if d.HasField("dim_value") else None
        for d in graph_input.type.tensor_type.shape.dim
    ]
    if len(dims) != 4 or dims[2] is None or dims[3] is None:
        raise ValueError(
            f"{path}: the tensorrt backend needs an ONNX graph with a fixed height and width "
            f"(export without dynamic_size), got input dims {dims}"
        )
    return int(dims[2]), int(dims[3])
