"""PyAV plumbing: open a container with clear errors, decode packet by packet, convert to BGR.

Decoding one packet at a time (rather than ``container.decode``) is what lets a damaged packet
be counted and skipped while the rest of the stream keeps coming.
"""

from __future__ import annotations

import ctypes
import logging
import os
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from describeme.errors import DataError, ServiceError
from describeme.operators.sources.uri import SourceUri, redact_text

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)

# Consecutive damaged reads before a stream is declared unreadable (a real stream never has
# this many in a row; a hopeless one would otherwise spin forever).
MAX_CONSECUTIVE_DEMUX_ERRORS = 100
# FFmpeg's tty demuxer opens any text file as "ANSI art" video; such a stream is never a
# camera or a recording, so it is reported as not a video.
_TEXT_ART_CODECS = ("ansi", "bintext", "xbin", "idf")


# glibc mallopt parameters (malloc.h) and values, see retain_frame_memory.
_M_TOP_PAD = -2
_M_MMAP_THRESHOLD = -3
_TOP_PAD_BYTES = 64 << 20
_MMAP_THRESHOLD_BYTES = 32 << 20  # glibc's maximum on 64-bit; a 4K BGR frame is 25 MiB
_malloc_tuned = False


def retain_frame_memory() -> None:
    """Keeps freed frame buffers in the heap instead of returning them to the OS (glibc only).

    Every converted frame allocates and frees megabytes (swscale output, then the numpy copy).
    With glibc's defaults the freed top of the heap is trimmed and re-faulted page by page
    on the next frame: measured on vtest.avi (768x576), ~207 page faults and +0.5 ms CPU per
    frame, tripling the cost of conversion. Allocations up to 32 MiB from the heap plus a
    64 MiB top pad remove it for the whole process, at the price of up to 64 MiB of retained
    memory per malloc arena. Set
    ``DESCRIBEME_MALLOC_TOP_PAD=0`` to opt out (or another byte count).
    """
    global _malloc_tuned
    if _malloc_tuned or not sys.platform.startswith("linux"):
        return
    _malloc_tuned = True
    pad = int(os.environ.get("DESCRIBEME_MALLOC_TOP_PAD", _TOP_PAD_BYTES))
    if pad <= 0:
        return
    try:
        libc = ctypes.CDLL("libc.so.6")
        # Setting any parameter freezes glibc's adaptive mmap threshold wherever it stands
        # (128 KiB early on), so frames must also be kept out of mmap explicitly.
        ok = libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_THRESHOLD_BYTES), libc.mallopt(_M_TOP_PAD, pad)
    except (OSError, AttributeError):  # not glibc (musl, ...): nothing to tune
        return
    logger.debug("mallopt(M_MMAP_THRESHOLD, M_TOP_PAD=%d) -> %s", pad, ok)


class RateLimitedLog:
    """Logs the first ``burst`` messages, then at most one per ``interval_s`` with a count of
    the ones suppressed, so a badly damaged stream cannot flood the log."""

    def __init__(self, log: logging.Logger, burst: int = 5, interval_s: float = 10.0) -> None:
        self._log = log
        self._burst = burst
        self._interval_s = interval_s
        self._emitted = 0
        self._suppressed = 0
        self._last = float("-inf")

    def warning(self, msg: str, *args: object) -> None:
        now = time.monotonic()
        if self._emitted < self._burst or now - self._last >= self._interval_s:
            if self._suppressed:
                msg += f" ({self._suppressed} similar messages suppressed)"
                self._suppressed = 0
            self._log.warning(msg, *args)
            self._emitted += 1
            self._last = now
        else:
            self._suppressed += 1


def open_container(
    source: SourceUri,
    *,
    options: dict[str, str],
    timeout_s: float | None,
) -> av.container.InputContainer:
    """Opens ``source`` for reading and checks that it has a video stream.

    Args:
        source: the parsed URI.
        options: FFmpeg demuxer/protocol options (``rtsp_transport``, ``video_size``, ...).
        timeout_s: open and per-read timeout in seconds for live sources (None: no timeout).

    Raises:
        DataError: a missing or non-video file or device, or a stream without video.
        ServiceError: a network stream that cannot be opened (message names the redacted URL).
    """
    import av

    _check_local_path(source)
    try:
        container = av.open(
            source.uri,
            mode="r",
            format="v4l2" if source.kind == "device" else None,
            options=options,
            timeout=timeout_s,
        )
    except (av.error.FFmpegError, OSError) as err:
        reason = redact_text(str(err), source.uri)
        if source.kind == "network":
            raise ServiceError(f"cannot open video stream {source.redacted}: {reason}") from None
        raise DataError(f"{source.uri} is not a readable video ({reason})") from err
    problem = _not_video_reason(container)
    if problem:
        container.close()
        raise DataError(f"{source.redacted} is not a readable video ({problem})")
    return container


def _not_video_reason(container: av.container.InputContainer) -> str:
    if not container.streams.video:
        kinds = ", ".join(s.type for s in container.streams) or "none"
        return f"no video stream; has: {kinds}"
    codec = container.streams.video[0].codec_context.name
    if codec in _TEXT_ART_CODECS:
        return f"FFmpeg reads it as text art ({container.format.name}/{codec}), not video"
    return ""


def _check_local_path(source: SourceUri) -> None:
    if source.kind == "file":
        path = Path(source.uri)
        if not path.exists():
            raise DataError(f"no such video file: {path}")
        if path.is_dir():
            raise DataError(f"{path} is a directory, not a video file")
    elif source.kind == "device" and not Path(source.uri).exists():
        raise DataError(f"no such video device: {source.uri} (is the camera connected?)")


def iter_decoded(
    container: av.container.InputContainer,
    stream: av.video.stream.VideoStream,
    *,
    on_packet: Callable[[], bool],
    on_skip: Callable[[str], None],
) -> Iterator[av.VideoFrame]:
    """Yields the decoded frames of ``stream``, skipping packets that fail to demux or decode.

    Args:
        container: an open input container.
        stream: its video stream.
        on_packet: called before each packet; returning False stops decoding.
        on_skip: called with a reason for each skipped packet (the caller counts and logs).

    Raises:
        av.error.FFmpegError, OSError: reading failed for another reason than damaged data
            (connection lost, read timeout), or too many damaged reads in a row.
    """
    import av

    consecutive_errors = 0
    while True:
        # demux() ends on an exception; calling it again resumes after the damaged data.
        try:
            for packet in container.demux(stream):
                consecutive_errors = 0
                if not on_packet():
                    return
                yield from _decode_packet(packet, on_skip)
            return
        except av.error.InvalidDataError as err:
            consecutive_errors += 1
            on_skip(f"demux: {err}")
            if consecutive_errors >= MAX_CONSECUTIVE_DEMUX_ERRORS:
                raise


def _decode_packet(packet: av.Packet, on_skip: Callable[[str], None]) -> list[Any]:
    import av

    try:
        return packet.decode()
    except av.error.FFmpegError as err:
        # One damaged packet (InvalidDataError, a bitstream error...) costs its own frame(s)
        # only; the decoder resynchronises on the next packet or keyframe.
        on_skip(f"decode at pts {packet.pts}: {err}")
        return []


def frame_to_bgr(
    frame: av.VideoFrame, reformatter: av.video.reformatter.VideoReformatter | None = None
) -> np.ndarray:
    """Converts a decoded frame to an (H, W, 3) uint8 BGR array with swscale.

    Args:
        frame: any pixel format; its own colorspace tag selects the conversion matrix.
        reformatter: reuse one per stream: ``frame.to_ndarray`` builds a new swscale context
            for every frame, which here costs about as much as the conversion itself.
    """
    if reformatter is None:
        from av.video.reformatter import VideoReformatter

        reformatter = VideoReformatter()
    # One swscale thread: sources run one per stream next to decoder threads, and measured
    # CPU per frame is lowest single-threaded (0.17-0.20 ms vs 0.21-0.44 ms auto, 768x576).
    return reformatter.reformat(frame, format="bgr24", threads=1).to_ndarray()


def stream_rate(stream: av.video.stream.VideoStream, default_fps: float = 30.0) -> float:
    """Nominal frames per second of ``stream`` (``default_fps`` when the container has none)."""
    for rate in (stream.average_rate, stream.guessed_rate, stream.base_rate):
        if rate is not None and 0 < float(rate) < 1000:
            return float(rate)
    return default_fps


@dataclass(frozen=True)
class StreamTiming:
    """Per-stream constants to turn pts into seconds and frame indices without per-frame
    ``Fraction`` arithmetic (a measurable share of the decode thread's Python time).

    Attributes:
        time_base_s: seconds per pts tick, or None when the stream has no time base.
        start_pts: pts of the stream start (0 when unknown).
        rate: nominal frames per second.
    """

    time_base_s: float | None
    start_pts: int
    rate: float

    @classmethod
    def of(cls, stream: av.video.stream.VideoStream) -> StreamTiming:
        time_base = stream.time_base
        return cls(
            float(time_base) if time_base else None, stream.start_time or 0, stream_rate(stream)
        )

    def seconds(self, pts: int | None) -> float | None:
        """Raw presentation time in seconds (None without pts)."""
        if pts is None or self.time_base_s is None:
            return None
        return pts * self.time_base_s

    def index(self, pts: int | None) -> int | None:
        """Source frame index implied by ``pts`` at the nominal rate (None without pts)."""
        if pts is None or self.time_base_s is None:
            return None
        return round((pts - self.start_pts) * self.time_base_s * self.rate)
