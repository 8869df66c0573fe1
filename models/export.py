"""ONNX export of a model's raw heads (no decoding in the graph).

The graph takes ``images`` (B, 3, H, W) float32 RGB in [0, 1] and returns the model's
``output_names`` in order. Batch is always dynamic; height/width are fixed (the default,
what TensorRT profiles like) or dynamic. Export uses the TorchScript-based exporter
(``dynamo=False``, opset 17), which handles ``nn.MultiheadAttention`` and the sine
positional encodings with dynamic shapes.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import nn

log = logging.getLogger(__name__)

INPUT_NAME = "images"
OPSET = 17


class _OrderedOutputs(nn.Module):
    """Turns a dict-returning model into one returning a tuple in ``output_names`` order."""

    def __init__(self, model: nn.Module, output_names: Sequence[str]) -> None:
        super().__init__()
        self.model, self.output_names = model, tuple(output_names)

    def forward(self, images: torch.Tensor) -> tuple[torch.Tensor, ...]:
        outputs = self.model(images)
        return tuple(outputs[name] for name in self.output_names)


def export_onnx(
    model: nn.Module,
    path: str | Path,
    size: tuple[int, int] = (512, 512),
    *,
    dynamic_size: bool = False,
    opset: int = OPSET,
    output_names: Sequence[str] | None = None,
    metadata: Mapping[str, Any] | None = None,
    check: bool = True,
) -> Path:
    """Exports ``model`` to ONNX.

    Args:
        model: the network (set to eval for the export, restored afterwards).
        path: destination ``.onnx`` file.
        size: (height, width) of the traced input; the graph's fixed size unless dynamic.
        dynamic_size: make height and width dynamic too.
        opset: ONNX opset (17 is what the backends are tested with).
        output_names: defaults to ``model.output_names``.
        metadata: extra string metadata stored in the model (model name and args are added).
        check: run ``onnx.checker`` on the result.

    Returns:
        ``path``.
    """
    names: tuple[str, ...] = tuple(output_names or getattr(model, "output_names", None) or ())
    if not names:
        raise ValueError("model has no output_names; pass output_names=[...] to export_onnx")
    height, width = (int(v) for v in size)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    parameter = next(model.parameters())
    dummy = torch.rand(1, 3, height, width, dtype=parameter.dtype, device=parameter.device)
    was_training = model.training
    model.eval()
    try:
        strides = _output_strides(model, names, dummy) if dynamic_size else {}
        _trace_to_onnx(model, names, dummy, path, _dynamic_axes(names, strides), opset)
    finally:
        model.train(was_training)
    _add_metadata(path, model, height, width, dynamic_size, metadata, check)
    log.info(
        "exported %s (%dx%d%s) to %s",
        getattr(model, "model_name", "model"),
        height,
        width,
        ", dynamic size" if dynamic_size else "",
        path,
    )
    return path


def _output_strides(
    model: nn.Module, names: Sequence[str], dummy: torch.Tensor
) -> dict[str, int]:
    """Stride of every spatial (B, C, H', W') output relative to the input, found by running
    the model once: HPTR's heads are at stride 4, PersonLab's pose heads at 8 or 16."""
    with torch.no_grad():
        outputs = model(dummy)
    height = dummy.shape[2]
    return {
        name: height // outputs[name].shape[2]
        for name in names
        if outputs[name].ndim == 4 and outputs[name].shape[2] > 0
    }


def _dynamic_axes(names: Sequence[str], strides: Mapping[str, int]) -> dict[str, dict[int, str]]:
    """Batch is always dynamic; with a dynamic size (``strides`` given) the input's H, W and
    those of every spatial output, named by stride so shared sizes share a symbol."""
    axes: dict[str, dict[int, str]] = {INPUT_NAME: {0: "batch"}}
    if strides:
        axes[INPUT_NAME].update({2: "height", 3: "width"})
    for name in names:
        axes[name] = {0: "batch"}
        if name in strides:
            axes[name].update({2: f"height_{strides[name]}", 3: f"width_{strides[name]}"})
    return axes


def _trace_to_onnx(
    model: nn.Module,
    names: tuple[str, ...],
    dummy: torch.Tensor,
    path: Path,
    dynamic_axes: dict[str, dict[int, str]],
    opset: int,
) -> None:
    with torch.no_grad(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", category=torch.jit.TracerWarning)
        # dynamo=False is deliberate (see the module docstring): silence its deprecation.
        warnings.filterwarnings("ignore", category=DeprecationWarning)
        torch.onnx.export(
            _OrderedOutputs(model, names),
            (dummy,),
            str(path),
            input_names=[INPUT_NAME],
            output_names=list(names),
            dynamic_axes=dynamic_axes,
            opset_version=opset,
            do_constant_folding=True,
            dynamo=False,
        )


def _add_metadata(
    path: Path,
    model: nn.Module,
    height: int,
    width: int,
    dynamic_size: bool,
    metadata: Mapping[str, Any] | None,
    check: bool,
) -> None:
    import onnx

    proto = onnx.load(str(path))
    props = {
        "model_name": str(getattr(model, "model_name", "")),
        "model_args": json.dumps(getattr(model, "model_args", {}), sort_keys=True),
        "input_size": json.dumps([height, width]),
        "dynamic_size": json.dumps(dynamic_size),
        **{str(k): str(v) for k, v in (metadata or {}).items()},
    }
    for key, value in props.items():
        entry = proto.metadata_props.add()
        entry.key, entry.value = key, value
    if check:
        onnx.checker.check_model(proto)
    onnx.save(proto, str(path))


def file_sha256(path: str | Path, length: int = 16) -> str:
    """Hex digest prefix of a file's content (engine cache keys, provenance)."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()[:length]
