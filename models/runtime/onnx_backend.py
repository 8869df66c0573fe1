"""ONNX Runtime engine (CPU; CUDA execution provider when the GPU build is installed)."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np
from torch import nn

from describeme.models.runtime.base import BackendUnavailableError, check_images, check_precision

log = logging.getLogger(__name__)


class OnnxRuntimeBackend:
    """Runs an exported ONNX graph.

    Args:
        model: a ``.onnx`` file, or an ``nn.Module``/checkpoint path exported here first
            (dynamic size) into a temporary folder.
        device: "cpu" or "cuda[:i]" (needs ``onnxruntime-gpu``'s CUDAExecutionProvider).
        precision: "fp32" only: the graph's own precision is used.
        threads: intra-op threads (0 = onnxruntime's default, one per core).
        spin: let idle intra-op threads busy-wait for the next parallel section (onnxruntime's
            default). Off here: a parser shares its cores with decoding and the other
            pipeline stages, and spinning threads burn the core those need; on an idle
            machine the difference is within noise (benchmarks/pipeline_vs_parser.py).
    """

    kind = "onnxruntime"

    def __init__(
        self,
        *,
        model: str | Path | nn.Module,
        device: str = "cpu",
        precision: str = "fp32",
        threads: int = 0,
        spin: bool = False,
    ) -> None:
        check_precision(precision, device)
        if precision != "fp32":
            raise ValueError(
                "the onnxruntime backend runs the graph in fp32; use the tensorrt "
                "backend (or torch on CUDA) for fp16"
            )
        try:
            import onnxruntime as ort
        except ImportError:
            raise BackendUnavailableError(
                "onnxruntime is not installed: pip install 'describeme[onnx]'"
            ) from None
        path = self._as_onnx(model)
        providers: list = ["CPUExecutionProvider"]
        if device.startswith("cuda"):
            if "CUDAExecutionProvider" not in ort.get_available_providers():
                raise BackendUnavailableError(
                    f"device={device!r} needs onnxruntime-gpu (CUDAExecutionProvider); "
                    f"available: {ort.get_available_providers()}"
                )
            index = int(device.split(":")[1]) if ":" in device else 0
            providers = [("CUDAExecutionProvider", {"device_id": index}), "CPUExecutionProvider"]
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        if not spin:
            options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=providers)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise ValueError(f"{path}: expected one image input, found {[i.name for i in inputs]}")
        self.input_name = inputs[0].name
        height, width = inputs[0].shape[2:]
        self.input_size = (
            (height, width) if isinstance(height, int) and isinstance(width, int) else None
        )
        self.output_names = tuple(o.name for o in self.session.get_outputs())
        self.device, self.precision, self.path = device, precision, path

    def _as_onnx(self, model: str | Path | nn.Module) -> Path:
        if isinstance(model, (str, Path)) and Path(model).suffix == ".onnx":
            if not Path(model).is_file():
                raise FileNotFoundError(f"ONNX model {model} does not exist")
            return Path(model)
        if isinstance(model, (str, Path)):
            from describeme.models.checkpoint import load_checkpoint

            model, _ = load_checkpoint(model)
        from describeme.models.export import export_onnx

        self._tmpdir = tempfile.TemporaryDirectory(prefix="describeme-onnx-")
        path = Path(self._tmpdir.name) / "model.onnx"
        log.info("exporting the model to %s for onnxruntime", path)
        return export_onnx(model, path, (64, 64), dynamic_size=True)  # any size: axes are dynamic

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(B, 3, H, W) float32 -> {name: float32 numpy array}."""
        images = check_images(images, self.input_size)
        outputs = self.session.run(list(self.output_names), {self.input_name: images})
        return {
            name: np.asarray(v, dtype=np.float32)
            for name, v in zip(self.output_names, outputs, strict=True)
        }
