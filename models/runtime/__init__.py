"""Inference engines behind one interface: ``build_backend(kind, ...) -> Backend``.

Every backend takes (B, 3, H, W) float32 RGB in [0, 1] and returns the graph's raw heads as
float32 numpy arrays; decoding happens afterwards (``models.hptr.postprocess``).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from torch import nn

from describeme.models.runtime.base import Backend, BackendUnavailableError, check_images

BACKENDS = ("torch", "onnxruntime", "tensorrt")

__all__ = ["BACKENDS", "Backend", "BackendUnavailableError", "build_backend", "check_images"]


def build_backend(
    kind: str,
    model_or_path: nn.Module | str | Path,
    device: str = "cpu",
    precision: str = "fp32",
    **options: Any,
) -> Backend:
    """Builds an engine.

    Args:
        kind: "torch", "onnxruntime" (alias "onnx") or "tensorrt".
        model_or_path: an ``nn.Module``, a checkpoint path (torch, onnxruntime) or an ``.onnx``
            file (onnxruntime, tensorrt).
        device: "cpu" or "cuda[:i]".
        precision: "fp32" or "fp16" (fp16 needs CUDA; onnxruntime runs fp32 only).
        **options: backend-specific (``threads`` for onnxruntime; ``max_batch_size``,
            ``cache_dir`` for tensorrt; ``output_names`` for torch).

    Raises:
        ValueError: unknown kind or bad option.
        BackendUnavailableError: the engine's package or device is missing.
    """
    if kind == "torch":
        from describeme.models.runtime.torch_backend import TorchBackend

        return TorchBackend(model=model_or_path, device=device, precision=precision, **options)
    if kind in ("onnxruntime", "onnx"):
        from describeme.models.runtime.onnx_backend import OnnxRuntimeBackend

        return OnnxRuntimeBackend(
            model=model_or_path, device=device, precision=precision, **options
        )
    if kind == "tensorrt":
        from describeme.models.runtime.tensorrt_backend import TensorRTBackend

        if isinstance(model_or_path, nn.Module):
            raise TypeError(
                "the tensorrt backend builds from an .onnx file; export the model first "
                "(describeme.models.export.export_onnx)"
            )
        return TensorRTBackend(model=model_or_path, device=device, precision=precision, **options)
    raise ValueError(f"unknown backend {kind!r}; choose one of {', '.join(BACKENDS)}")
