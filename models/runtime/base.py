"""The one interface every inference engine implements, and input checks they share."""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import numpy as np

from describeme.errors import DescribemeError

PRECISIONS = ("fp32", "fp16")


class BackendUnavailableError(DescribemeError, RuntimeError):
    """An engine's package or device is missing on this machine."""


@runtime_checkable
class Backend(Protocol):
    """Runs a model's exported graph: images in, raw head outputs out.

    Attributes:
        kind: "torch", "onnxruntime" or "tensorrt".
        device: "cpu" or "cuda[:i]".
        precision: "fp32" or "fp16".
        output_names: keys of :meth:`infer`'s result, in graph order.
    """

    kind: str
    device: str
    precision: str
    output_names: tuple[str, ...]

    def infer(self, images: np.ndarray) -> dict[str, np.ndarray]:
        """(B, 3, H, W) float32 RGB in [0, 1] -> {name: float32 array with leading B}."""
        ...


def check_images(
    images: np.ndarray, input_size: tuple[int, int] | None = None, max_batch_size: int | None = None
) -> np.ndarray:
    """Validates a batch and returns it as a contiguous float32 array.

    Raises:
        TypeError: not a numpy array.
        ValueError: wrong rank, channels, size (when the engine's size is fixed) or batch.
    """
    if not isinstance(images, np.ndarray):
        raise TypeError(f"images must be a numpy array (B, 3, H, W), got {type(images).__name__}")
    if images.ndim != 4 or images.shape[1] != 3:
        raise ValueError(f"images must have shape (B, 3, H, W), got {images.shape}")
    if images.shape[0] == 0:
        raise ValueError("images batch is empty")
    if input_size is not None and tuple(images.shape[2:]) != tuple(input_size):
        raise ValueError(
            f"this engine takes {input_size[0]}x{input_size[1]} images, got "
            f"{images.shape[2]}x{images.shape[3]} (letterbox to the engine size)"
        )
    if max_batch_size is not None and images.shape[0] > max_batch_size:
        raise ValueError(
            f"batch of {images.shape[0]} exceeds the engine's max_batch_size "
            f"{max_batch_size}; split the batch or rebuild the engine"
        )
    return np.ascontiguousarray(images, dtype=np.float32)


def check_precision(precision: str, device: str) -> None:
    """fp16 is a CUDA-only option."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    if precision == "fp16" and not device.startswith("cuda"):
        raise ValueError(
            f"fp16 needs a CUDA device, got device={device!r}; use precision='fp32' on CPU"
        )
