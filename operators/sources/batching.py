"""Groups a source's frames into :class:`describeme.messages.FrameBatch` messages.

The batch carries the letterbox from frame pixels to the model input, so the parser can map
its outputs back to source pixels (``Letterbox.boxes_to_source``) without seeing the frame.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator

from describeme.geometry import Letterbox
from describeme.messages import Frame, FrameBatch


def build_frame_batch(frames: list[Frame], model_size: tuple[int, int] | None) -> FrameBatch:
    """Wraps consecutive frames of one stream into a batch.

    Args:
        frames: non-empty, same ``stream_id`` and image size.
        model_size: (height, width) of the model input, or None for no letterbox.

    Raises:
        ValueError: empty list, mixed streams or mixed image sizes (a camera that changed
            resolution needs a new batch, since the letterbox differs).
    """
    if not frames:
        raise ValueError("build_frame_batch needs at least one frame")
    size = frames[0].image.shape[:2]
    for frame in frames[1:]:
        if frame.image.shape[:2] != size:
            raise ValueError(
                f"frames of one batch must share a size: frame {frame.frame_index} is "
                f"{frame.image.shape[:2]}, frame {frames[0].frame_index} is {size}"
            )
    letterbox = None if model_size is None else Letterbox.fit((size[0], size[1]), model_size)
    return FrameBatch(frames[0].stream_id, list(frames), letterbox)


def iter_frame_batches(
    frames: Iterable[Frame], batch_size: int, model_size: tuple[int, int] | None
) -> Iterator[FrameBatch]:
    """Cuts a frame stream into batches of up to ``batch_size``, starting a new batch early
    when the image size changes; the last batch may be shorter."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    pending: list[Frame] = []
    for frame in frames:
        if pending and frame.image.shape[:2] != pending[0].image.shape[:2]:
            yield build_frame_batch(pending, model_size)
            pending = []
        pending.append(frame)
        if len(pending) == batch_size:
            yield build_frame_batch(pending, model_size)
            pending = []
    if pending:
        yield build_frame_batch(pending, model_size)
