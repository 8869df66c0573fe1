"""Eager torch engine (CPU or CUDA; fp16 autocast-free half weights on CUDA)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from torch import nn

from describeme.models.runtime.base import BackendUnavailableError, check_images, check_precision


class TorchBackend:
    """Runs an ``nn.Module`` returning a dict of heads.

    Args:
        model: the network, or a checkpoint path (rebuilt with ``load_checkpoint``).
        device: "cpu" or "cuda[:i]".
        precision: "fp32", or "fp16" on CUDA.
        output_names: heads to return (default ``model.output_names``).

    The module is moved to ``device`` (and converted to half for fp16) in place; pass a copy
    to keep the original.
    """

    kind = "torch"

    def __init__(
        self,
        *,
        model: nn.Module | str | Path,
        device: str = "cpu",
        precision: str = "fp32",
        output_names: tuple[str, ...] | None = None,
    ) -> None:
        check_precision(precision, device)
        if device.startswith("cuda") and not torch.cuda.is_available():
            raise BackendUnavailableError(f"device={device!r} requested but torch has no CUDA here")
        if isinstance(model, (str, Path)):
            from describeme.models.checkpoint import load_checkpoint

            model = load_checkpoint(model)[0]
        assert isinstance(model, nn.Module)  # narrowed above: a path was loaded
        self.model = model.eval().to(device)
        if precision == "fp16":
            self.model = self.model.half()
        self.device, self.precision = device, precision
        names = output_names or getattr(model, "output_names", None) or ()
        self.output_names: tuple[str, ...] = tuple(names)
        if not self.output_names:
            raise ValueError("model has no output_names; pass output_names=(...)")

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(B, 3, H, W) float32 -> {name: float32 numpy array}."""
        images = check_images(images)
        dtype = torch.float16 if self.precision == "fp16" else torch.float32
        with torch.inference_mode():
            batch = torch.from_numpy(images).to(self.device, dtype=dtype, non_blocking=True)
            outputs = self.model(batch)
            return {name: outputs[name].float().cpu().numpy() for name in self.output_names}
