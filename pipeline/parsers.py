"""Frame parsers the parser actor can hold: a model behind a runtime backend, or the test double.

A frame parser is a plain object with ``parse(frames: list[Frame]) -> list[ParsedFrame]`` and
``register_stream(stream_id, uri)`` (a model ignores the latter; the ground-truth stand-in
uses it to find the video's sidecar ground truth). A model parser also splits ``parse`` into
``infer`` (network) and ``finish`` (decoding), which the parser actor overlaps across batches.
:func:`build_parser` picks one from the ``--model`` value (default: the bundled ``personlab``)
and never falls back silently: a missing checkpoint or bundled file -> a clear error.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Protocol

from describeme.errors import ConfigError, DescribemeError
from describeme.messages import Frame, ParsedFrame
from describeme.pipeline.config import ParserConfig

log = logging.getLogger(__name__)

STANDIN = "standin"


class NoModelError(DescribemeError):
    """No trained model is available for the requested ``--model``."""


class FrameParser(Protocol):
    def register_stream(self, stream_id: str, uri: str) -> None: ...

    def parse(self, frames: list[Frame]) -> list[ParsedFrame]: ...


class ModelParser:
    """A checkpoint (or bundled name) behind a runtime backend, loaded through the model
    registry so every registered model (HPTR, PersonLab) decodes with its own postprocess and
    the thresholds saved in its checkpoint.

    Args:
        model: checkpoint path, ``.onnx`` graph, or bundled name.
        backend: ``torch``, ``onnxruntime`` or ``tensorrt``.
        device: ``cpu`` or ``cuda[:N]``.
        precision: ``fp32`` or ``fp16``.
        input_size: (height, width) of the model input; None = the model's training size.
        thumbnail_height: JPEG crop height per person for the describer (0 = none).
        threads: onnxruntime intra-op threads (0 = one per core); other backends ignore it.
        postprocess: decoding settings changed from the checkpoint's (``score_threshold``...).
    """

    def __init__(self, model: str | Path, *, backend: str = "onnxruntime", device: str = "cpu",
                 precision: str = "fp32", input_size: tuple[int, int] | None = None,
                 thumbnail_height: int = 96, threads: int = 0,
                 postprocess: Mapping[str, Any] | None = None) -> None:  # fmt: skip
        from describeme.models.registry import load_parser  # torch stays inside the actor

        size = None if input_size is None else (int(input_size[0]), int(input_size[1]))
        options = {"threads": int(threads)} if backend == "onnxruntime" else {}
        self.parser = load_parser(model, backend=backend, size=size, device=device,
                                  precision=precision, postprocess=postprocess, **options)
        self.input_size = self.parser.input_size
        self.thumbnail_height = int(thumbnail_height)

    def register_stream(self, stream_id: str, uri: str) -> None:
        """Models need nothing per stream."""

    def parse(self, frames: list[Frame]) -> list[ParsedFrame]:
        """Parses a batch of frames (any sizes; each is letterboxed to ``input_size``)."""
        return self.finish(frames, self.infer(frames)) if frames else []

    def infer(self, frames: list[Frame]) -> tuple[Any, float]:
        """Network half of :meth:`parse` (non-empty batch): raw outputs and seconds spent."""
        start = time.perf_counter()
        raw = self.parser.infer([frame.image for frame in frames])
        return raw, time.perf_counter() - start

    def finish(self, frames: list[Frame], inferred: tuple[Any, float]) -> list[ParsedFrame]:
        """Decoding half of :meth:`parse`: people, thumbnails and per-frame timing."""
        from describeme.operators.annotate import crop_jpeg

        raw, network_s = inferred
        start = time.perf_counter()
        persons = self.parser.decode(raw)
        per_frame_ms = (network_s + time.perf_counter() - start) * 1000 / len(frames)
        out = []
        for frame, people in zip(frames, persons, strict=True):
            thumbs = ([crop_jpeg(frame.image, xyxy, self.thumbnail_height) for xyxy in people.xyxy]
                      if self.thumbnail_height > 0 else None)
            out.append(ParsedFrame(frame.stream_id, frame.frame_index, frame.pts,
                                   frame.capture_time, frame.image.shape[:2], people,
                                   thumbnails=thumbs, inference_ms=per_frame_ms))
        return out


def build_parser(config: ParserConfig) -> FrameParser:
    """The frame parser named by ``config.model``.

    Raises:
        NoModelError: the checkpoint path does not exist, or the bundled file is missing.
    """
    model = config.model
    if model == STANDIN:
        from describeme.operators.standin import GroundTruthParser

        log.warning("using the ground-truth stand-in parser (a test double, not a model)")
        return GroundTruthParser(**config.standin.model_dump())
    check_model_option(model)  # the load below checks config.postprocess itself
    return ModelParser(model, backend=config.backend, device=config.device,
                       precision=config.precision, input_size=config.input_size,
                       thumbnail_height=config.standin.thumbnail_height,
                       threads=config.threads, postprocess=config.postprocess)


def check_model_option(model: str, postprocess: Mapping[str, Any] | None = None) -> None:
    """Fails fast in the CLI (before starting Ray) when ``--model`` or
    ``parser.postprocess`` cannot work.

    Raises:
        NoModelError: no such checkpoint or bundled model.
        ConfigError: ``postprocess`` names a setting the model lacks, or a bad value, or is
            given for the stand-in (which decodes nothing).
    """
    if model == STANDIN:
        if postprocess:
            raise ConfigError("parser.postprocess changes a model's decoding; the stand-in "
                              "parser has none (use parser.standin.* for its noise)")  # fmt: skip
        return
    from describeme.models.registry import check_postprocess, resolve_model_path

    try:
        resolve_model_path(model)
    except DescribemeError as exc:
        raise NoModelError(f"{exc}. Or pass --model standin to run the ground-truth test double "
                           "on synthetic clips that have ground truth ('describeme data synth "
                           "--video')") from None
    if postprocess:
        check_postprocess(model, postprocess)
