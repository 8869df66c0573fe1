"""Annotated video: part masks in part colours, boxes, track ids and short descriptions.

:func:`draw_persons` paints one frame (pure numpy/OpenCV, unit-tested);
:class:`AnnotatedVideoWriter` encodes the painted frames to an H.264 MP4 with PyAV, timing
each frame by its pts so sampled or irregular streams play at the right speed.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from fractions import Fraction
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from describeme.errors import DataError
from describeme.labels import PART_PALETTE
from describeme.types import Persons

log = logging.getLogger(__name__)

_PALETTE_BGR = PART_PALETTE[:, ::-1].copy()
_UNTRACKED = (160, 160, 160)
_MILLISECOND = Fraction(1, 1000)


def track_color(track_id: int) -> tuple[int, int, int]:
    """A stable, distinct BGR colour per track id (grey for untracked, id -1)."""
    if track_id < 0:
        return _UNTRACKED
    hue = (track_id * 47) % 180  # golden-ish stride spreads consecutive ids over the hue circle
    bgr = cv2.cvtColor(np.array([[[hue, 200, 255]]], np.uint8), cv2.COLOR_HSV2BGR)[0, 0]
    return int(bgr[0]), int(bgr[1]), int(bgr[2])


def crop_jpeg(image: np.ndarray, xyxy: np.ndarray, height: int = 96, quality: int = 80) -> bytes:
    """JPEG bytes of a person's box crop, resized to ``height`` pixels (the track thumbnail).

    Args:
        image: (H, W, 3) uint8 BGR frame.
        xyxy: (4,) box in pixels; clipped to the frame (an empty box gives a 1-pixel crop).
        height: output height in pixels (> 0).
    """
    if height <= 0:
        raise ValueError(f"thumbnail height must be > 0, got {height}")
    x0, y0, x1, y1 = (int(v) for v in np.round(np.asarray(xyxy, np.float64)))
    x0, y0 = min(max(x0, 0), image.shape[1] - 1), min(max(y0, 0), image.shape[0] - 1)
    crop = image[y0:max(y1, y0 + 1), x0:max(x1, x0 + 1)]
    width = max(1, round(crop.shape[1] * height / crop.shape[0]))
    ok, data = cv2.imencode(".jpg", cv2.resize(crop, (width, height)),
                            [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise ValueError(f"could not encode a thumbnail of box {xyxy}")
    return data.tobytes()


def _shorten(text: str, max_chars: int) -> str:
    return text if len(text) <= max_chars else text[: max_chars - 3].rstrip(" ,") + "..."


def draw_persons(image: np.ndarray, persons: Persons, captions: Mapping[int, str] | None = None,
                 *, mask_alpha: float = 0.5, max_caption_chars: int = 48) -> np.ndarray:
    """Draws persons on a copy of ``image``.

    Args:
        image: (H, W, 3) uint8 BGR frame.
        persons: people in this frame (source pixels); masks hold part labels.
        captions: short text per track id (e.g. the track's sentence).
        mask_alpha: opacity of the part colours.
        max_caption_chars: captions are cut to this length.

    Returns:
        (H, W, 3) uint8 BGR annotated copy.
    """
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"image must be (H, W, 3) uint8, got {image.shape} {image.dtype}")
    if not 0.0 <= mask_alpha <= 1.0:
        raise ValueError(f"mask_alpha must lie in [0, 1], got {mask_alpha}")
    out = image.copy()
    height, width = out.shape[:2]
    for i, mask in enumerate(persons.masks or []):
        if tuple(mask.image_size) != (height, width):
            raise ValueError(f"mask of person {i} is for a {mask.image_size} image, frame is "
                             f"{(height, width)}")
        x0, y0, x1, y1 = mask.box
        labels = mask.decode()  # (y1-y0, x1-x0) part ids
        on = labels > 0
        if not on.any():
            continue
        region = out[y0:y1, x0:x1]
        colours = _PALETTE_BGR[np.minimum(labels, len(_PALETTE_BGR) - 1)]
        blended = (region * (1 - mask_alpha) + colours * mask_alpha).astype(np.uint8)
        region[on] = blended[on]
    captions = captions or {}
    track_ids = persons.track_id
    assert track_ids is not None  # Persons fills -1 when absent
    for i in range(len(persons)):
        track_id = int(track_ids[i])
        colour = track_color(track_id)
        x0, y0, x1, y1 = (int(round(v)) for v in persons.xyxy[i])
        cv2.rectangle(out, (x0, y0), (x1, y1), colour, 2)
        label = f"#{track_id}" if track_id >= 0 else "?"
        caption = captions.get(track_id)
        if caption:
            label = f"{label} {_shorten(caption, max_caption_chars)}"
        _put_label(out, label, (x0, y0), colour)
    return out


def _put_label(image: np.ndarray, text: str, corner: tuple[int, int],
               colour: tuple[int, int, int]) -> None:
    font, scale, thickness = cv2.FONT_HERSHEY_SIMPLEX, 0.4, 1
    (w, h), base = cv2.getTextSize(text, font, scale, thickness)
    x = int(np.clip(corner[0], 0, max(image.shape[1] - w, 0)))
    y = int(np.clip(corner[1] - 4, h + 2, image.shape[0] - 2))
    cv2.rectangle(image, (x, y - h - 2), (x + w + 2, y + base), colour, -1)
    cv2.putText(image, text, (x + 1, y), font, scale, (0, 0, 0), thickness, cv2.LINE_AA)


class AnnotatedVideoWriter:
    """Writes BGR frames to an H.264 (yuv420p) MP4, each at its own pts.

    Args:
        path: output ``.mp4`` path (parent folders are created).
        nominal_fps: frame rate written in the header (players use the pts).
    """

    def __init__(self, path: str | Path, nominal_fps: float = 30.0) -> None:
        self.path = Path(path)
        if self.path.suffix.lower() not in (".mp4", ".m4v", ".mov"):
            raise DataError(f"--out-video {self.path}: use an .mp4 file name")
        if nominal_fps <= 0:
            raise ValueError(f"nominal_fps must be > 0, got {nominal_fps}")
        self.nominal_fps = nominal_fps
        self._container: Any = None
        self._stream: Any = None
        self._last_pts = -1
        self.frames_written = 0

    def _open(self, width: int, height: int) -> None:
        import av

        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._container = av.open(str(self.path), mode="w")
        except OSError as exc:
            raise DataError(f"cannot write annotated video {self.path}: {exc}") from None
        self._stream = self._container.add_stream("libx264", rate=round(self.nominal_fps))
        self._stream.width, self._stream.height = width - width % 2, height - height % 2
        self._stream.pix_fmt = "yuv420p"
        # Millisecond ticks in the encoder too, so close pts never collapse onto one tick.
        self._stream.time_base = _MILLISECOND
        self._stream.codec_context.time_base = _MILLISECOND

    def write(self, image: np.ndarray, pts: float) -> None:
        """Encodes one (H, W, 3) uint8 BGR frame shown at ``pts`` seconds."""
        import av

        if self._container is None:
            self._open(image.shape[1], image.shape[0])
        image = image[: self._stream.height, : self._stream.width]
        frame = av.VideoFrame.from_ndarray(np.ascontiguousarray(image), format="bgr24")
        # Encoders need strictly increasing pts; repeated or backward stamps move forward 1 ms.
        millis = max(int(round(pts * 1000)), self._last_pts + 1)
        # The muxer may change the stream's time base when it writes the header; frames keep ms.
        frame.pts, frame.time_base = millis, _MILLISECOND
        self._last_pts = millis
        for packet in self._stream.encode(frame):
            self._container.mux(packet)
        self.frames_written += 1

    def close(self) -> None:
        """Flushes the encoder and closes the file (safe to call twice)."""
        if self._container is None:
            return
        for packet in self._stream.encode():
            self._container.mux(packet)
        self._container.close()
        self._container = None
        log.info("annotated video: %d frames -> %s", self.frames_written, self.path)

    def __enter__(self) -> AnnotatedVideoWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
