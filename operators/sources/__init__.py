"""Video sources: files, ``rtsp://``, ``http(s)://``/HLS and ``/dev/video*`` decoded by PyAV.

``open_source(uri)`` returns a :class:`VideoSource`, an iterator of
:class:`describeme.messages.Frame` (BGR uint8, source frame index, monotonic pts seconds,
wall-clock capture time). Decoding runs in a background thread. Live sources reconnect with
exponential backoff and jitter, treat a stall as a disconnect, and drop the oldest frames when
the consumer is behind; archives never drop and can resume at a frame index. Damaged packets
are logged (rate-limited), counted and skipped. ``iter_frame_batches`` groups frames into
``FrameBatch`` messages carrying the letterbox to the model input (and its inverse).

PyAV is imported lazily, so importing this package does not load FFmpeg.
"""

from __future__ import annotations

import logging
import math
from pathlib import Path
from urllib.parse import urlsplit

from describeme.errors import ServiceError
from describeme.operators.sources.batching import build_frame_batch, iter_frame_batches
from describeme.operators.sources.decode import (
    frame_to_bgr,
    open_container,
    retain_frame_memory,
)
from describeme.operators.sources.source import SourceSettings, VideoSource
from describeme.operators.sources.timing import FpsSampler, PtsClock, ReconnectPolicy
from describeme.operators.sources.uri import SourceUri, parse_source_uri, redact_uri

__all__ = [
    "FpsSampler",
    "PtsClock",
    "ReconnectPolicy",
    "SourceUri",
    "VideoSource",
    "build_frame_batch",
    "default_stream_id",
    "frame_to_bgr",
    "iter_frame_batches",
    "open_source",
    "parse_source_uri",
    "redact_uri",
]

logger = logging.getLogger(__name__)
RTSP_TRANSPORTS = ("tcp", "udp", "udp_multicast", "http", "https")


def open_source(
    uri: str | Path,
    *,
    stream_id: str | None = None,
    target_fps: float | None = None,
    live: bool | None = None,
    start_frame: int = 0,
    rtsp_transport: str = "tcp",
    stall_timeout_s: float = 10.0,
    reconnect: ReconnectPolicy | None = ReconnectPolicy(),  # frozen: safe as a default
    queue_size: int = 8,
    realtime: bool | None = None,
    options: dict[str, str] | None = None,
) -> VideoSource:
    """Opens a video source and starts decoding it in a background thread.

    Args:
        uri: file path (or ``file://``), ``/dev/videoN``, or ``rtsp[s]://``, ``http(s)://``,
            ``rtmp://``, ``udp://``, ``srt://`` URL.
        stream_id: id carried by every frame; default derived from the URI (never holds
            credentials).
        target_fps: keep frames at about this rate by pts; None keeps every frame.
        live: drop-oldest + reconnect (True) or block + never drop (False); default True for
            network URLs and webcams, False for files. ``http(s)`` archives need ``live=False``.
        start_frame: archives only: first source frame index to deliver (resume point).
        rtsp_transport: FFmpeg ``rtsp_transport`` (TCP by default: UDP loses packets on busy
            networks and is blocked by most NATs).
        stall_timeout_s: live only: a read blocked this long, or this long without a decoded
            frame, counts as a disconnect. Also the open timeout.
        reconnect: backoff for live sources; None (or ``max_attempts=0``) never reconnects.
        queue_size: decoded frames buffered between the decode thread and the consumer.
        realtime: pace decoding to pts on the wall clock; default True for files forced
            live (simulated cameras), False otherwise.
        options: extra FFmpeg demuxer/protocol options, e.g. ``{"video_size": "1280x720"}``
            for a webcam.

    Returns:
        A started :class:`VideoSource`; close it (or use ``with``).

    Raises:
        DataError: missing path ("no such video file: PATH"), a file that is not a video, a
            missing webcam device.
        ServiceError: a network stream that cannot be opened while reconnecting is disabled.
        ValueError: an invalid argument.
    """
    retain_frame_memory()
    source = parse_source_uri(uri)
    settings = _build_settings(
        source, stream_id=stream_id, target_fps=target_fps, live=live, start_frame=start_frame,
        rtsp_transport=rtsp_transport, stall_timeout_s=stall_timeout_s, reconnect=reconnect,
        queue_size=queue_size, realtime=realtime, options=options,
    )  # fmt: skip
    try:
        container = open_container(
            source,
            options=settings.options,
            timeout_s=settings.stall_timeout_s if settings.live else None,
        )
    except ServiceError as err:
        if not (settings.live and settings.reconnect.enabled):
            raise
        logger.warning("source %s: %s; will keep retrying", settings.stream_id, err)
        container = None
    return VideoSource(source, settings, container)


def _build_settings(
    source: SourceUri,
    *,
    stream_id: str | None,
    target_fps: float | None,
    live: bool | None,
    start_frame: int,
    rtsp_transport: str,
    stall_timeout_s: float,
    reconnect: ReconnectPolicy | None,
    queue_size: int,
    realtime: bool | None,
    options: dict[str, str] | None,
) -> SourceSettings:
    is_live = source.live if live is None else bool(live)
    if stream_id is not None and (not isinstance(stream_id, str) or not stream_id.strip()):
        raise ValueError(f"stream_id must be a non-empty string or None, got {stream_id!r}")
    FpsSampler(target_fps)  # validates target_fps
    if not isinstance(start_frame, int) or start_frame < 0:
        raise ValueError(f"start_frame must be an integer >= 0, got {start_frame!r}")
    if start_frame and is_live:
        raise ValueError("start_frame applies to archives only; a live source cannot resume")
    if rtsp_transport not in RTSP_TRANSPORTS:
        raise ValueError(f"rtsp_transport must be one of {RTSP_TRANSPORTS}, got {rtsp_transport!r}")
    if not (math.isfinite(stall_timeout_s) and stall_timeout_s > 0):
        raise ValueError(f"stall_timeout_s must be > 0 seconds, got {stall_timeout_s}")
    if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
        raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")
    ffmpeg_options = dict(options or {})
    if source.scheme in ("rtsp", "rtsps"):
        ffmpeg_options.setdefault("rtsp_transport", rtsp_transport)
    return SourceSettings(
        stream_id=stream_id or default_stream_id(source),
        live=is_live,
        target_fps=target_fps,
        start_frame=start_frame,
        stall_timeout_s=stall_timeout_s,
        reconnect=reconnect if reconnect is not None else ReconnectPolicy(max_attempts=0),
        queue_size=queue_size,
        realtime=(is_live and source.kind == "file") if realtime is None else bool(realtime),
        options=ffmpeg_options,
    )


def default_stream_id(source: SourceUri) -> str:
    """A readable id without credentials: the file stem, ``video0``, or ``host:port/path``."""
    if source.kind in ("file", "device"):
        return Path(source.uri).stem or source.uri
    parts = urlsplit(source.uri)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{host}{port}{parts.path}".rstrip("/") or source.scheme
