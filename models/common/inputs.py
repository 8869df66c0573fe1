"""Input-shape rules shared by the parsers: (B, 3, H, W) RGB with H, W multiples of 32."""

from __future__ import annotations

# The encoders downsample 5 times; every pyramid level must tile the input exactly.
SIZE_DIVISOR = 32


def check_input_shape(shape: tuple[int, ...], model_name: str) -> None:
    """Raises ValueError unless ``shape`` is (B, 3, H, W) with H, W positive multiples of 32."""
    if len(shape) != 4 or shape[1] != 3:
        raise ValueError(f"{model_name} expects images of shape (B, 3, H, W), got {shape}")
    height, width = shape[2], shape[3]
    if height <= 0 or width <= 0 or height % SIZE_DIVISOR or width % SIZE_DIVISOR:
        raise ValueError(
            f"{model_name} input height and width must be positive multiples of {SIZE_DIVISOR}, "
            f"got {height}x{width} (letterbox to e.g. 512x512)"
        )


def check_input_size(value: tuple[int, int]) -> tuple[int, int]:
    """Validates a config's (height, width) ``input_size``; returns it unchanged."""
    if min(value) <= 0 or value[0] % SIZE_DIVISOR or value[1] % SIZE_DIVISOR:
        raise ValueError(f"input_size must be positive multiples of {SIZE_DIVISOR}, got {value}")
    return value
