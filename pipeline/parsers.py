"""Frame parsers the parser actor can hold: a model behind a runtime backend, or the test double.

A frame parser is a plain object with ``parse(frames: list[Frame]) -> list[ParsedFrame]`` and
``register_stream(stream_id, uri)`` (a model ignores the latter; the ground-truth stand-in
uses it to find the video's sidecar ground truth). :func:`build_parser` picks one from the
``--model`` value and never falls back silently: no model bundled -> a clear error.
"""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Protocol

import numpy as np

from describeme.errors import DescribemeError
from describeme.geometry import Letterbox
from describeme.messages import Frame, ParsedFrame
from describeme.pipeline.config import ParserConfig

log = logging.getLogger(__name__)

STANDIN = "standin"
BUNDLED_NAMES = ("hptr", "personlab")


class NoModelError(DescribemeError):
    """No trained model is available for the requested ``--model``."""


class FrameParser(Protocol):
    def register_stream(self, stream_id: str, uri: str) -> None: ...

    def parse(self, frames: list[Frame]) -> list[ParsedFrame]: ...


def no_model_message(model: str | None) -> str:
    what = f"model {model!r}" if model else "a default model"
    return (
        f"no trained model is bundled yet, so {what} cannot be loaded (the model work lands "
        "later). Pass --model PATH to a trained checkpoint, or --model standin to run the "
        "ground-truth test double on synthetic clips that have ground truth "
        "('describeme data synth --video')"
    )


class ModelParser:
    """A trained checkpoint behind a runtime backend: letterbox, infer, decode outside the graph.

    Args:
        checkpoint: path of a self-describing checkpoint (``describeme.models.checkpoint``).
        backend: ``torch``, ``onnxruntime`` or ``tensorrt``.
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32`` or ``fp16``.
        input_size: (height, width) of the model input.
        thumbnail_height: JPEG crop height per person for the describer (0 = none).
    """

    def __init__(self, checkpoint: str | Path, *, backend: str = "onnxruntime", device: str = "cpu",
                 precision: str = "fp32", input_size: tuple[int, int] = (384, 512),
                 thumbnail_height: int = 96) -> None:
        from describeme.models.hptr.postprocess import build_postprocessor  # torch stays here
        from describeme.models.runtime import build_backend

        self.backend = build_backend(backend, Path(checkpoint), device, precision)
        self.postprocess = build_postprocessor()
        self.input_size = (int(input_size[0]), int(input_size[1]))
        self.thumbnail_height = int(thumbnail_height)

    def register_stream(self, stream_id: str, uri: str) -> None:
        """Models need nothing per stream."""

    def parse(self, frames: list[Frame]) -> list[ParsedFrame]:
        """Parses a batch of frames (any sizes; each is letterboxed to ``input_size``)."""
        from describeme.operators.annotate import crop_jpeg

        if not frames:
            return []
        start = time.perf_counter()
        boxes = [Letterbox.fit(f.image.shape[:2], self.input_size) for f in frames]
        images = np.stack([_to_model_input(b.apply(f.image))
                           for f, b in zip(frames, boxes, strict=True)])  # (B, 3, H, W)
        persons = self.postprocess(self.backend.infer(images), boxes)
        per_frame_ms = (time.perf_counter() - start) * 1000 / len(frames)
        out = []
        for frame, people in zip(frames, persons, strict=True):
            thumbs = ([crop_jpeg(frame.image, xyxy, self.thumbnail_height) for xyxy in people.xyxy]
                      if self.thumbnail_height > 0 else None)
            out.append(ParsedFrame(frame.stream_id, frame.frame_index, frame.pts,
                                   frame.capture_time, frame.image.shape[:2], people,
                                   thumbnails=thumbs, inference_ms=per_frame_ms))
        return out


def _to_model_input(image_bgr: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (3, H, W) float32 RGB in [0, 1] (the model normalises inside)."""
    return (image_bgr[..., ::-1].astype(np.float32) / 255.0).transpose(2, 0, 1)


def build_parser(config: ParserConfig) -> FrameParser:
    """The frame parser named by ``config.model``.

    Raises:
        NoModelError: no model given, or a bundled name while no model is bundled.
        DescribemeError: the checkpoint path does not exist.
    """
    model = config.model
    if model == STANDIN:
        from describeme.operators.standin import GroundTruthParser

        log.warning("using the ground-truth stand-in parser (a test double, not a model)")
        return GroundTruthParser(**config.standin.model_dump())
    if model is None or model in BUNDLED_NAMES:
        raise NoModelError(no_model_message(model))
    path = Path(model)
    if not path.is_file():
        raise NoModelError(f"--model {model!r} is neither a checkpoint file nor a bundled name "
                           f"({', '.join(BUNDLED_NAMES)}) nor 'standin'. " + no_model_message(None))
    return ModelParser(path, backend=config.backend, device=config.device,
                       precision=config.precision, input_size=config.input_size,
                       thumbnail_height=config.standin.thumbnail_height)


def check_model_option(model: str | None) -> None:
    """Fails fast in the CLI (before starting Ray) when ``--model`` cannot work."""
    if model == STANDIN:
        return
    if model is None or model in BUNDLED_NAMES:
        raise NoModelError(no_model_message(model))
    if not Path(model).is_file():
        raise NoModelError(f"--model {model!r}: no such checkpoint file. " + no_model_message(None))
