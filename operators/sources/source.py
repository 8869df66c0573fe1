"""``VideoSource``: a decode thread feeding a bounded queue of frames, with reconnects.

The decode thread owns the PyAV container; the consumer iterates ``Frame`` messages. Frames
cross the queue still decoded-but-unconverted, and are converted to BGR when taken, so frames
that a live source drops while the consumer is behind never pay for colour conversion and the
conversion of one frame overlaps the decoding of the next.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from describeme.errors import DataError, ServiceError
from describeme.messages import Frame
from describeme.operators.sources.decode import (
    RateLimitedLog,
    StreamTiming,
    frame_to_bgr,
    iter_decoded,
    open_container,
)
from describeme.operators.sources.frame_queue import FrameQueue, QueueClosed
from describeme.operators.sources.timing import FpsSampler, PtsClock, ReconnectPolicy
from describeme.operators.sources.uri import SourceUri, redact_text

if TYPE_CHECKING:
    import av

logger = logging.getLogger(__name__)


@dataclass(slots=True)
class _Decoded:
    frame_index: int
    pts: float
    capture_time: float
    frame: Any  # av.VideoFrame, converted to BGR by the consumer


@dataclass
class _End:
    error: BaseException | None = None


_COUNTERS = ("decoded", "sampled_out", "yielded", "skipped_packets", "corrupt_frames", "reconnects")


class _Stalled(Exception):
    """No frame decoded within the stall timeout although packets kept arriving."""


@dataclass(frozen=True)
class SourceSettings:
    """Validated arguments of :func:`describeme.operators.sources.open_source`."""

    stream_id: str
    live: bool
    target_fps: float | None
    start_frame: int
    stall_timeout_s: float
    reconnect: ReconnectPolicy
    queue_size: int
    realtime: bool
    options: dict[str, str]


class VideoSource:
    """Iterator of :class:`describeme.messages.Frame` decoded from one video source.

    Use :func:`describeme.operators.sources.open_source` to build one. Iterating blocks until
    the next frame; ``read(timeout_s)`` polls. ``close()`` (or leaving a ``with`` block) stops
    the decode thread.
    """

    def __init__(
        self,
        source: SourceUri,
        settings: SourceSettings,
        container: av.container.InputContainer | None,
    ) -> None:
        self.source = source
        self.settings = settings
        self.stream_id = settings.stream_id
        self.live = settings.live
        self._queue = FrameQueue(settings.queue_size, drop_oldest=settings.live)
        self._stop = threading.Event()
        self._skip_log = RateLimitedLog(logger)
        self._sampler = FpsSampler(settings.target_fps)
        self._clock: PtsClock | None = None
        self._counts = dict.fromkeys(_COUNTERS, 0)
        self._next_index = settings.start_frame
        self._failures = 0  # consecutive failed (re)connection attempts
        self._last_failure = "the stream ended without frames"
        self._last_frame_mono = time.monotonic()
        self._last_frame_wall: float | None = None
        from av.video.reformatter import VideoReformatter

        self._reformatter = VideoReformatter()  # used by the consumer thread only
        self._pace_origin: float | None = None  # monotonic time at which pts 0 is due
        self._started = time.monotonic()
        self._finished = False
        self._thread = threading.Thread(
            target=self._run, args=(container,), name=f"source-{self.stream_id}", daemon=True
        )
        self._thread.start()

    # ---- consumer side -------------------------------------------------------------------

    def __iter__(self) -> Iterator[Frame]:
        return self

    def __next__(self) -> Frame:
        frame = self._take(None)
        if frame is None:
            raise StopIteration
        return frame

    def read(self, timeout_s: float | None = None) -> Frame | None:
        """Returns the next frame, or None after ``timeout_s`` or at the end (see ``finished``).

        Raises:
            ServiceError: a live source gave up reconnecting.
            DataError: an archive became unreadable mid-file.
        """
        try:
            return self._take(timeout_s)
        except TimeoutError:
            return None

    @property
    def running(self) -> bool:
        """True while the decode thread is alive."""
        return self._thread.is_alive()

    @property
    def finished(self) -> bool:
        """True once the source has delivered its last frame."""
        return self._finished

    def _take(self, timeout_s: float | None) -> Frame | None:
        if self._finished:
            return None
        try:
            item = self._queue.get(timeout_s)
        except QueueClosed:
            self._finished = True
            return None
        if isinstance(item, _End):
            self._finished = True
            if item.error is not None:
                raise item.error
            return None
        self._counts["yielded"] += 1
        image = frame_to_bgr(item.frame, self._reformatter)
        return Frame(self.stream_id, item.frame_index, item.pts, item.capture_time, image)

    def stats(self) -> dict[str, float]:
        """Counters since the source was opened.

        Returns:
            ``decoded`` (frames out of the decoder at or after ``start_frame``), ``sampled_out``
            (skipped by fps sampling), ``yielded``, ``dropped_frames`` (evicted because the
            consumer was behind; live only), ``skipped_packets`` (damaged packets skipped),
            ``corrupt_frames`` (frames the decoder flagged corrupt, skipped), ``reconnects``,
            ``pts_repaired`` (missing/out-of-order timestamps fixed), ``queued`` and ``fps``
            (yielded frames per second since opening).
        """
        elapsed = max(time.monotonic() - self._started, 1e-9)
        out: dict[str, float] = dict(self._counts)
        out["dropped_frames"] = self._queue.dropped
        out["pts_repaired"] = self._clock.repaired if self._clock else 0
        out["queued"] = len(self._queue)
        out["fps"] = self._counts["yielded"] / elapsed
        return out

    def close(self, timeout_s: float = 2.0) -> None:
        """Stops the decode thread and releases the container.

        A read blocked on a silent network peer returns within ``stall_timeout_s``; the thread
        is a daemon, so ``close`` does not wait longer than ``timeout_s`` for it.
        """
        self._stop.set()
        self._finished = True
        self._queue.close()
        self._thread.join(timeout_s)
        if self._thread.is_alive():
            logger.debug("source %s: decode thread still blocked in a read", self.stream_id)

    def __enter__(self) -> VideoSource:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ---- decode thread -------------------------------------------------------------------

    def _run(self, container: av.container.InputContainer | None) -> None:
        try:
            self._produce(container)
            self._queue.put_final(_End())
        except QueueClosed:
            pass
        except Exception as err:  # handed to the consumer, which raises it
            logger.error("source %s stopped: %s", self.stream_id, err)
            self._queue.put_final(_End(err))

    def _produce(self, container: av.container.InputContainer | None) -> None:
        connected_once = container is not None
        while not self._stop.is_set():
            if container is None:
                container = self._reconnect(count_it=connected_once)
                if container is None:
                    return
                connected_once = True
            decoded_before = self._counts["decoded"]
            try:
                reason = self._run_session(container)
            finally:
                container.close()
                container = None
            if self._stop.is_set() or not self.live:
                return
            if self._counts["decoded"] == decoded_before:
                self._failures += 1  # connected but got nothing: keep backing off
            if not self.settings.reconnect.enabled:
                logger.info(
                    "source %s ended (%s); reconnecting is disabled", self.stream_id, reason
                )
                return
            logger.warning(
                "source %s (%s) ended: %s; reconnecting",
                self.stream_id,
                self.source.redacted,
                reason,
            )

    def _reconnect(self, count_it: bool) -> av.container.InputContainer | None:
        policy = self.settings.reconnect
        while not self._stop.is_set():
            if policy.gives_up_after(self._failures):
                raise ServiceError(
                    f"gave up reconnecting to {self.source.redacted} after {self._failures} "
                    f"attempt(s): {self._last_failure}"
                )
            delay_s = policy.delay_s(self._failures + 1)
            logger.info(
                "source %s: reconnecting to %s in %.2f s (attempt %d)",
                self.stream_id, self.source.redacted, delay_s, self._failures + 1,
            )  # fmt: skip
            if self._stop.wait(delay_s):
                return None
            try:
                container = open_container(
                    self.source,
                    options=self.settings.options,
                    timeout_s=self.settings.stall_timeout_s,
                )
            except (DataError, ServiceError) as err:
                self._failures += 1
                self._last_failure = str(err)
                logger.warning(
                    "source %s: attempt %d failed: %s", self.stream_id, self._failures, err
                )
                continue
            if count_it:
                self._counts["reconnects"] += 1
            logger.warning(
                "source %s: reconnected to %s after %d failed attempt(s)",
                self.stream_id, self.source.redacted, self._failures,
            )  # fmt: skip
            return container
        return None

    def _run_session(self, container: av.container.InputContainer) -> str:
        """Decodes one connection until it ends; returns why it ended."""
        import av

        stream = container.streams.video[0]
        # Frame threading adds a few frames of latency: fine for archives, not for cameras.
        stream.thread_type = "SLICE" if self.live else "AUTO"
        timing = StreamTiming.of(stream)
        self._start_clock(timing)
        self._last_frame_mono = time.monotonic()
        try:
            for index, frame in self._indexed_frames(container, stream, timing):
                self._handle_frame(index, frame, timing)
        except _Stalled:
            return f"no frame for {self.settings.stall_timeout_s:.1f} s"
        except (av.error.FFmpegError, OSError) as err:
            reason = redact_text(str(err), self.source.uri)
            if not self.live:
                raise DataError(
                    f"{self.source.uri} became unreadable after frame {self._next_index - 1}: "
                    f"{reason}"
                ) from err
            return f"read failed: {reason}"
        return "end of stream"

    def _start_clock(self, timing: StreamTiming) -> None:
        if self._clock is None:
            self._clock = PtsClock(1.0 / timing.rate)
        if not self.live:
            start = timing.seconds(timing.start_pts) or 0.0
            self._clock.start_segment(at_s=0.0, origin_s=start)
        elif self._last_frame_wall is None or self._clock.last is None:
            self._clock.start_segment(at_s=0.0)
        else:
            # A live stream's clock restarts on reconnect; continue it from the wall-clock gap.
            gap_s = max(time.time() - self._last_frame_wall, self._clock.frame_period_s)
            self._clock.start_segment(at_s=self._clock.last + gap_s)

    def _indexed_frames(
        self,
        container: av.container.InputContainer,
        stream: av.video.stream.VideoStream,
        timing: StreamTiming,
        seek: bool = True,
    ) -> Iterator[tuple[int, Any]]:
        """Yields (source frame index, frame).

        Live: a counter that continues across reconnects. Archive: ``max(previous + 1,
        round(pts * nominal fps))``, so frames lost to damaged packets leave a gap instead of
        shifting every later index, and a resumed read (seek to the keyframe before
        ``start_frame``) numbers frames exactly as a read from the beginning does.
        """
        frames = iter_decoded(container, stream, on_packet=self._on_packet, on_skip=self._on_skip)
        if self.live:
            for frame in frames:
                yield self._next_index, frame  # _handle_frame advances _next_index
            return
        start = self.settings.start_frame
        seeked = seek and start > 0 and self._seek_near(container, stream, timing, start)
        previous = -1
        for frame in frames:
            pts_index = timing.index(frame.pts)
            if seeked and previous < 0 and (pts_index is None or pts_index > start):
                logger.warning(
                    "source %s: seek to frame %d landed at frame %s; decoding from the start",
                    self.stream_id, start, pts_index,
                )  # fmt: skip
                container.seek(stream.start_time or 0, stream=stream, backward=True)
                yield from self._indexed_frames(container, stream, timing, seek=False)
                return
            index = previous + 1 if pts_index is None else max(previous + 1, pts_index)
            previous = index
            if index >= start:
                yield index, frame

    def _seek_near(
        self, container: av.container.InputContainer, stream: av.video.stream.VideoStream,
        timing: StreamTiming, start: int,
    ) -> bool:  # fmt: skip
        """Seeks to the keyframe at or before frame ``start``; False when not seekable."""
        import av

        if timing.time_base_s is None:
            return False
        target = timing.start_pts + int(start / timing.rate / timing.time_base_s)
        try:
            container.seek(target, stream=stream, backward=True)
        except (av.error.FFmpegError, OSError) as err:
            logger.warning(
                "source %s: cannot seek (%s); decoding from the start", self.stream_id, err
            )
            return False
        return True

    def _handle_frame(self, index: int, frame: Any, timing: StreamTiming) -> None:
        assert self._clock is not None
        pts = self._clock.to_seconds(timing.seconds(frame.pts))
        self._next_index = index + 1
        self._last_frame_mono = time.monotonic()
        self._last_frame_wall = capture_time = time.time()
        self._counts["decoded"] += 1
        self._failures = 0  # the backoff restarts once a connection delivers frames
        if frame.is_corrupt:
            self._counts["corrupt_frames"] += 1
            self._skip_log.warning("source %s: skipped corrupt frame %d", self.stream_id, index)
            return
        if not self._sampler.keep(pts):
            self._counts["sampled_out"] += 1
            return
        if self.settings.realtime:
            self._pace(pts)
            self._last_frame_mono = time.monotonic()  # pacing is not a stall
            capture_time = time.time()
        self._queue.put(_Decoded(index, pts, capture_time, frame))

    def _pace(self, pts: float) -> None:
        """Sleeps until ``pts`` is due on the wall clock (files played as if live)."""
        if self._pace_origin is None:
            self._pace_origin = time.monotonic() - pts
        delay = self._pace_origin + pts - time.monotonic()
        if delay > 0:
            self._stop.wait(delay)

    def _on_packet(self) -> bool:
        if self._stop.is_set():
            return False
        if self.live and time.monotonic() - self._last_frame_mono > self.settings.stall_timeout_s:
            raise _Stalled
        return True

    def _on_skip(self, reason: str) -> None:
        self._counts["skipped_packets"] += 1
        self._skip_log.warning(
            "source %s: skipped a damaged packet (%s)",
            self.stream_id, redact_text(reason, self.source.uri),
        )  # fmt: skip
