"""Video sources: URI handling, timing helpers, queue policy, and real decoding of small clips
that the tests encode with PyAV (no ../shared, no network)."""

from __future__ import annotations

import logging
import math
import os
import random
import threading
import time
from pathlib import Path

import av
import numpy as np
import pytest
from av.video.reformatter import VideoReformatter

from describeme.errors import DataError, ServiceError
from describeme.messages import Frame
from describeme.operators.sources import (
    FpsSampler,
    PtsClock,
    ReconnectPolicy,
    build_frame_batch,
    default_stream_id,
    frame_to_bgr,
    iter_frame_batches,
    open_source,
    parse_source_uri,
    redact_uri,
)
from describeme.operators.sources.frame_queue import FrameQueue, QueueClosed

os.environ.setdefault("OMP_NUM_THREADS", "1")

FPS = 30
NUM_FRAMES = 30
BAR_WIDTH = 2  # frame i shows a white bar at x = i * BAR_WIDTH, so an image identifies its index


def encode_clip(path: Path, num_frames: int = NUM_FRAMES, noise: bool = False) -> Path:
    """Writes an MPEG-4 Part 2 AVI (the codec of the real Megamind files), 64x48 @ 30 fps,
    keyframe every 10 frames."""
    rng = np.random.default_rng(0)
    with av.open(str(path), "w") as container:
        stream = container.add_stream("mpeg4", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.gop_size = 10
        stream.bit_rate = 2_000_000
        for i in range(num_frames):
            if noise:
                image = rng.integers(0, 256, (48, 64, 3), dtype=np.uint8)
            else:
                image = np.zeros((48, 64, 3), dtype=np.uint8)
                image[:, i * BAR_WIDTH : (i + 1) * BAR_WIDTH] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return encode_clip(tmp_path_factory.mktemp("clips") / "gray.avi")


def read_all(uri: Path | str, **kwargs: object) -> tuple[list, dict]:
    with open_source(uri, **kwargs) as source:
        frames = list(source)
        return frames, source.stats()


def assert_image_matches_index(frame) -> None:
    column_brightness = frame.image.mean(axis=(0, 2))  # (W,)
    assert int(np.argmax(column_brightness)) // BAR_WIDTH == frame.frame_index


# ---- URIs -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("uri", "kind", "live"),
    [
        ("video.mp4", "file", False),
        ("/data/cam 1/video.avi", "file", False),
        ("file:///data/video.mkv", "file", False),
        ("/dev/video0", "device", True),
        ("/dev/video12", "device", True),
        ("/dev/videos/clip.mp4", "file", False),
        ("rtsp://10.0.0.5:554/stream1", "network", True),
        ("RTSPS://cam.local/live", "network", True),
        ("http://host/live/index.m3u8", "network", True),
        ("https://host/clip.mp4", "network", True),
        ("udp://239.0.0.1:1234", "network", True),
        ("srt://host:9000", "network", True),
    ],
)
def test_parse_source_uri_classifies(uri: str, kind: str, live: bool) -> None:
    parsed = parse_source_uri(uri)
    assert (parsed.kind, parsed.live) == (kind, live)
    if uri.startswith("file://"):
        assert parsed.uri == "/data/video.mkv"


@pytest.mark.parametrize(("uri", "message"), [("", "empty"), ("  ", "empty"), ("ftp://h/x", "ftp")])
def test_parse_source_uri_rejects(uri: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_source_uri(uri)


@pytest.mark.parametrize(
    ("uri", "expected"),
    [
        ("rtsp://admin:s3cret@10.0.0.5:554/live", "rtsp://admin:***@10.0.0.5:554/live"),
        ("rtsp://admin:p@ss@cam/live", "rtsp://admin:***@cam/live"),
        ("rtsp://:only-pass@cam/live", "rtsp://:***@cam/live"),
        ("rtsp://cam:554/live", "rtsp://cam:554/live"),
        ("rtsp://cam:554/path@x", "rtsp://cam:554/path@x"),
        ("http://h/live?user=a&password=hunter2&x=1", "http://h/live?user=a&password=***&x=1"),
        ("https://h/x.m3u8?token=abc", "https://h/x.m3u8?token=***"),
        ("/data/video.mp4", "/data/video.mp4"),
        (
            "failed rtsp://a:b@h1/x then http://c:d@h2/y",
            "failed rtsp://a:***@h1/x then http://c:***@h2/y",
        ),
    ],
)
def test_redact_uri_hides_passwords(uri: str, expected: str) -> None:
    assert redact_uri(uri) == expected


@pytest.mark.parametrize(
    ("uri", "stream_id"),
    [
        ("/data/cam1.mp4", "cam1"),
        ("/dev/video0", "video0"),
        ("rtsp://admin:pw@10.0.0.5:554/live/main", "10.0.0.5:554/live/main"),
        ("http://host/", "host"),
    ],
)
def test_default_stream_id_has_no_credentials(uri: str, stream_id: str) -> None:
    assert default_stream_id(parse_source_uri(uri)) == stream_id


# ---- timing helpers -------------------------------------------------------------------------


def test_reconnect_delays_double_then_cap_without_jitter() -> None:
    policy = ReconnectPolicy(initial_s=0.5, max_s=3.0, jitter=0.0)
    assert [policy.delay_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 3.0, 3.0, 3.0]
    assert policy.delay_s(10_000) == 3.0


def test_reconnect_jitter_stays_within_bounds_and_varies() -> None:
    policy = ReconnectPolicy(initial_s=1.0, max_s=8.0, jitter=0.2)
    rng = random.Random(0)
    delays = [policy.delay_s(3, rng) for _ in range(200)]
    assert all(3.2 <= d <= 4.8 for d in delays)
    assert len(set(delays)) > 100


@pytest.mark.parametrize(
    ("max_attempts", "failures", "gives_up"),
    [(None, 1000, False), (0, 0, True), (3, 2, False), (3, 3, True)],
)
def test_reconnect_gives_up_after_max_attempts(
    max_attempts: int | None, failures: int, gives_up: bool
) -> None:
    policy = ReconnectPolicy(max_attempts=max_attempts)
    assert policy.gives_up_after(failures) is gives_up
    assert policy.enabled is (max_attempts != 0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"initial_s": -1.0},
        {"initial_s": math.nan},
        {"initial_s": 2.0, "max_s": 1.0},
        {"jitter": 1.0},
        {"jitter": -0.1},
        {"max_attempts": -1},
    ],
)
def test_reconnect_policy_rejects_bad_values(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="ReconnectPolicy"):
        ReconnectPolicy(**kwargs)


@pytest.mark.parametrize(
    ("source_fps", "target_fps", "kept_every"),
    [(30, 10, 3), (30, 15, 2), (30, 7.5, 4), (30, 30, 1), (10, 30, 1), (30, None, 1), (25, 5, 5)],
)
def test_sampler_keeps_every_nth_frame(
    source_fps: float, target_fps: float | None, kept_every: int
) -> None:
    sampler = FpsSampler(target_fps)
    kept = [i for i in range(60) if sampler.keep(i / source_fps)]
    assert kept == list(range(0, 60, kept_every))


def test_sampler_does_not_burst_after_a_gap_and_keeps_first_frame() -> None:
    sampler = FpsSampler(10)
    times = [5.03, 5.06, 5.1, 9.0, 9.03, 9.1]
    assert [sampler.keep(t) for t in times] == [True, False, True, True, False, True]


@pytest.mark.parametrize("target_fps", [0, -5, math.nan, math.inf])
def test_sampler_rejects_bad_target(target_fps: float) -> None:
    with pytest.raises(ValueError, match="target_fps"):
        FpsSampler(target_fps)


@pytest.mark.parametrize(
    "raw",
    [
        [0.0, 0.1, 0.2, 0.3],
        [0.1, 0.2, 0.4, 0.3, 0.5],  # AVI with B-frames labels neighbours swapped
        [0.0, None, 0.2, None],
        [5.0, 5.1, 0.0, 0.1],  # a stream that restarted its clock
        [0.0, 0.0, 0.0],
    ],
)
def test_pts_clock_is_strictly_increasing(raw: list[float | None]) -> None:
    clock = PtsClock(frame_period_s=0.1)
    out = [clock.to_seconds(t) for t in raw]
    assert all(b > a for a, b in zip(out, out[1:], strict=False))
    assert out[0] == 0.0


def test_pts_clock_reorder_does_not_drift_and_reset_continues() -> None:
    clock = PtsClock(frame_period_s=0.1)
    out = [clock.to_seconds(t) for t in [0.0, 0.1, 0.3, 0.2, 0.4, 0.5]]
    assert out[4:] == pytest.approx([0.4, 0.5])  # back on the raw timeline after the swap
    assert clock.repaired == 1
    restarted = [clock.to_seconds(t) for t in [0.0, 0.1]]  # small step back: nudged, in order
    assert restarted == pytest.approx([0.501, 0.502])


def test_pts_clock_rebases_a_clock_reset_and_new_segments() -> None:
    clock = PtsClock(frame_period_s=0.1)
    out = [clock.to_seconds(t) for t in [5.0, 5.1, 0.0, 0.1]]  # jump back by > 1 s
    assert out == pytest.approx([0.0, 0.1, 0.2, 0.3])
    clock.start_segment(at_s=10.0)
    assert clock.to_seconds(123.0) == 10.0
    assert clock.to_seconds(123.5) == pytest.approx(10.5)


# ---- queue policy ---------------------------------------------------------------------------


def test_queue_drop_oldest_keeps_newest_and_counts() -> None:
    queue = FrameQueue(3, drop_oldest=True)
    evicted = [queue.put(i) for i in range(7)]
    assert evicted == [0, 0, 0, 1, 1, 1, 1]
    assert queue.dropped == 4
    assert [queue.get(0) for _ in range(3)] == [4, 5, 6]
    with pytest.raises(TimeoutError):
        queue.get(0.01)


def test_queue_blocking_put_waits_for_the_consumer() -> None:
    queue = FrameQueue(2, drop_oldest=False)
    queue.put(0)
    queue.put(1)
    done = threading.Event()
    thread = threading.Thread(target=lambda: (queue.put(2), done.set()))
    thread.start()
    assert not done.wait(0.05)  # the third put blocks while the queue is full
    assert queue.get() == 0
    thread.join(5)
    assert done.is_set() and queue.dropped == 0
    assert [queue.get(0), queue.get(0)] == [1, 2]


def _waiting_consumer(queue: FrameQueue, timeout_s: float | None = None):
    """A thread blocked in ``queue.get`` on an empty queue; returns (thread, results)."""
    results: list[object] = []
    thread = threading.Thread(target=lambda: results.append(queue.get(timeout_s)))
    thread.start()
    deadline = time.monotonic() + 5
    while not queue._consumer_waiting and time.monotonic() < deadline:
        time.sleep(0.001)
    assert queue._consumer_waiting
    return thread, results


def test_archive_queue_wakes_a_waiting_consumer_once_half_full() -> None:
    """Archives trade latency for throughput: a per-frame wake-up costs the decode thread."""
    queue = FrameQueue(8, drop_oldest=False)
    thread, results = _waiting_consumer(queue)
    for item in range(3):
        queue.put(item)
    thread.join(0.05)
    assert thread.is_alive() and not results  # 3 of 8: not yet
    queue.put(3)
    thread.join(5)
    assert results == [0]
    # A consumer polling with a timeout still gets what is queued when the timeout ends.
    queue = FrameQueue(8, drop_oldest=False)
    thread, results = _waiting_consumer(queue, timeout_s=0.1)
    queue.put("late")
    thread.join(5)
    assert results == ["late"]


def test_live_queue_wakes_a_waiting_consumer_for_every_frame() -> None:
    queue = FrameQueue(8, drop_oldest=True)
    thread, results = _waiting_consumer(queue)
    queue.put("now")
    thread.join(5)
    assert results == ["now"]


def test_end_marker_wakes_a_consumer_waiting_on_a_part_filled_archive_queue() -> None:
    queue = FrameQueue(8, drop_oldest=False)
    queue.put(0)
    assert queue.get() == 0
    thread, results = _waiting_consumer(queue)
    queue.put(1)
    queue.put_final("end")
    thread.join(5)
    assert results == [1]
    assert queue.get() == "end"


def test_queue_close_wakes_a_blocked_producer() -> None:
    queue = FrameQueue(1, drop_oldest=False)
    queue.put(0)
    errors: list[BaseException] = []

    def produce() -> None:
        try:
            queue.put(1)
        except QueueClosed as err:
            errors.append(err)

    thread = threading.Thread(target=produce)
    thread.start()
    queue.close()
    thread.join(5)
    assert not thread.is_alive() and len(errors) == 1
    assert queue.get() == 0  # what was queued can still be drained
    with pytest.raises(QueueClosed):
        queue.get()


# ---- decoding archives ----------------------------------------------------------------------


def test_archive_yields_every_frame_in_order_with_pts_and_capture_time(clip: Path) -> None:
    before = time.time()
    frames, stats = read_all(clip, stream_id="cam-1")
    assert [f.frame_index for f in frames] == list(range(NUM_FRAMES))
    assert [f.pts for f in frames] == pytest.approx([i / FPS for i in range(NUM_FRAMES)])
    assert all(f.stream_id == "cam-1" and f.image.shape == (48, 64, 3) for f in frames)
    assert all(before <= f.capture_time <= time.time() for f in frames)
    for frame in frames:
        assert_image_matches_index(frame)
    assert (stats["decoded"], stats["yielded"], stats["dropped_frames"]) == (NUM_FRAMES,) * 2 + (0,)
    assert stats["skipped_packets"] == 0 and stats["reconnects"] == 0


def test_sampling_30_to_10_fps_keeps_every_third_frame(clip: Path) -> None:
    frames, stats = read_all(clip, target_fps=10)
    assert [f.frame_index for f in frames] == list(range(0, NUM_FRAMES, 3))
    assert [f.pts for f in frames] == pytest.approx([i / 10 for i in range(NUM_FRAMES // 3)])
    assert stats["sampled_out"] == NUM_FRAMES - NUM_FRAMES // 3
    for frame in frames:
        assert_image_matches_index(frame)


@pytest.mark.parametrize("start_frame", [1, 9, 10, 11, 17, 29])
def test_start_frame_resumes_exactly(clip: Path, start_frame: int) -> None:
    full, _ = read_all(clip)
    resumed, stats = read_all(clip, start_frame=start_frame)
    assert [f.frame_index for f in resumed] == list(range(start_frame, NUM_FRAMES))
    assert stats["decoded"] == NUM_FRAMES - start_frame
    for got, want in zip(resumed, full[start_frame:], strict=True):
        assert got.pts == pytest.approx(want.pts)
        np.testing.assert_array_equal(got.image, want.image)


def test_start_frame_past_the_end_yields_nothing(clip: Path) -> None:
    frames, _ = read_all(clip, start_frame=NUM_FRAMES + 5)
    assert frames == []


def test_archive_never_drops_with_a_slow_consumer(clip: Path) -> None:
    with open_source(clip, queue_size=2) as source:
        indices = []
        for frame in source:
            time.sleep(0.005)
            indices.append(frame.frame_index)
        assert indices == list(range(NUM_FRAMES))
        assert source.stats()["dropped_frames"] == 0


def test_read_polls_and_reports_the_end(clip: Path) -> None:
    with open_source(clip) as source:
        got = []
        while (frame := source.read(timeout_s=5)) is not None:
            got.append(frame.frame_index)
        assert source.finished and got == list(range(NUM_FRAMES))
        assert source.read(0.01) is None


# ---- live behaviour on a file played as a camera ----------------------------------------------


def test_live_drops_oldest_when_consumer_is_behind(clip: Path) -> None:
    # realtime pacing (auto for a file forced live) delivers 30 fps; the consumer takes ~10 fps.
    with open_source(clip, live=True, reconnect=None, queue_size=2) as source:
        indices = []
        for frame in source:
            indices.append(frame.frame_index)
            time.sleep(0.1)
        stats = source.stats()
    assert stats["dropped_frames"] > 0
    assert stats["yielded"] + stats["dropped_frames"] == stats["decoded"] == NUM_FRAMES
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert (
        sum(b - a - 1 for a, b in zip(indices, indices[1:], strict=False)) + indices[0]
        == (stats["dropped_frames"])
    )
    assert indices[-1] == NUM_FRAMES - 1  # the newest frames survive


def test_live_reconnects_at_end_of_stream_and_keeps_counting(
    clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    policy = ReconnectPolicy(initial_s=0.01, max_s=0.05, jitter=0.1)
    caplog.set_level(logging.INFO, logger="describeme.operators.sources")
    with open_source(clip, live=True, realtime=False, reconnect=policy, queue_size=64) as source:
        frames = []
        while not frames or frames[-1].frame_index < 2 * NUM_FRAMES + 5:
            frame = source.read(timeout_s=10)
            assert frame is not None, "live source stopped instead of reconnecting"
            frames.append(frame)
        stats = source.stats()
    assert stats["reconnects"] >= 2
    assert all(b.frame_index > a.frame_index for a, b in zip(frames, frames[1:], strict=False))
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:], strict=False))
    assert any("reconnected" in r.getMessage() for r in caplog.records)


def test_live_gives_up_after_max_attempts(tmp_path: Path, clip: Path) -> None:
    copy = tmp_path / "cam.avi"
    copy.write_bytes(clip.read_bytes())
    policy = ReconnectPolicy(initial_s=0.01, max_s=0.02, max_attempts=2)
    with open_source(copy, live=True, realtime=False, reconnect=policy) as source:
        with pytest.raises(ServiceError, match=r"gave up reconnecting to .*cam\.avi after 2"):
            for _ in source:
                copy.unlink(missing_ok=True)


def test_live_sessions_without_frames_back_off_and_give_up(
    clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A server that accepts and hangs up at once must not be hammered at the initial delay.
    from describeme.operators.sources.source import VideoSource

    sessions: list[int] = []
    attempts: list[int] = []

    class SpyPolicy(ReconnectPolicy):
        def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
            attempts.append(attempt)
            return super().delay_s(attempt, rng)

    def empty_session(self: VideoSource, container: object) -> str:
        sessions.append(1)
        return "end of stream"

    monkeypatch.setattr(VideoSource, "_run_session", empty_session)
    policy = SpyPolicy(initial_s=0.001, max_s=0.01, max_attempts=3)
    with open_source(clip, live=True, reconnect=policy) as source:
        with pytest.raises(ServiceError, match="after 3 attempt.*ended without frames"):
            list(source)
    assert len(sessions) == 3  # the first connection and two reconnections
    assert attempts == [2, 3]  # each empty session moves one step up the backoff


def test_close_stops_a_live_source_mid_stream(clip: Path) -> None:
    source = open_source(clip, live=True, queue_size=1)
    assert source.read(timeout_s=5) is not None
    source.close()
    assert not source.running


# ---- damaged input and bad arguments --------------------------------------------------------


@pytest.fixture(scope="module")
def damaged_clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A noisy 60-frame clip with three packets overwritten by garbage (the decoder rejects
    them) and two packets damaged mid-payload (decoded, flagged corrupt)."""
    folder = tmp_path_factory.mktemp("damaged")
    path = encode_clip(folder / "noise.avi", num_frames=60, noise=True)
    with av.open(str(path)) as container:
        packets = [(p.pos, p.size) for p in container.demux(video=0) if p.size]
    data = bytearray(path.read_bytes())
    for k in (22, 33, 44):
        pos, size = packets[k]
        data[pos : pos + size] = bytes(i % 256 for i in range(size))
    for k in (13, 27):
        pos, size = packets[k]
        data[pos + size // 2 : pos + size // 2 + 64] = b"\xff" * 64
    path.write_bytes(bytes(data))
    return path


def test_damaged_packets_are_counted_and_skipped(
    damaged_clip: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="describeme.operators.sources")
    frames, stats = read_all(damaged_clip)
    indices = [f.frame_index for f in frames]
    assert stats["skipped_packets"] >= 1
    assert stats["yielded"] == len(frames) == stats["decoded"] - stats["corrupt_frames"]
    assert 45 < len(frames) < 60
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert indices[-1] == 59  # frames after the damage keep their source index
    assert any("damaged packet" in r.getMessage() for r in caplog.records)


def test_truncated_file_ends_early_without_error(tmp_path: Path, clip: Path) -> None:
    truncated = tmp_path / "truncated.avi"
    data = encode_clip(tmp_path / "long.avi", num_frames=60, noise=True).read_bytes()
    truncated.write_bytes(data[: len(data) * 6 // 10])
    frames, _ = read_all(truncated)
    assert 10 < len(frames) < 60
    assert [f.frame_index for f in frames] == sorted({f.frame_index for f in frames})


def _audio_only(path: Path) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("pcm_s16le", rate=8000)
        frame = av.AudioFrame.from_ndarray(
            np.zeros((1, 800), np.int16), format="s16", layout="mono"
        )
        frame.sample_rate = 8000
        for packet in stream.encode(frame):
            container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "missing.mp4", r"no such video file: .*missing\.mp4"),
        (lambda d: d, "is a directory"),
        (lambda d: _write(d / "notes.txt", b"just some text\n" * 50), "is not a readable video"),
        (lambda d: _write(d / "noise.mp4", bytes(range(256)) * 64), "is not a readable video"),
        (lambda d: _write(d / "empty.avi", b""), "is not a readable video"),
        (lambda d: _audio_only(d / "tone.wav"), r"no video stream; has: audio"),
    ],
)
def test_bad_files_raise_clear_data_errors(tmp_path: Path, make, message: str) -> None:
    with pytest.raises(DataError, match=message):
        open_source(make(tmp_path))


def _write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def test_missing_webcam_is_a_data_error() -> None:
    with pytest.raises(DataError, match="no such video device: /dev/video987"):
        open_source("/dev/video987")


def test_webcam_opens_with_v4l2_and_user_options(monkeypatch: pytest.MonkeyPatch) -> None:
    from describeme.operators.sources import decode

    calls: list[tuple[str, dict]] = []

    def fake_open(target: str, *args: object, **kwargs: object) -> None:
        calls.append((target, kwargs))
        raise av.error.PermissionError(13, "Permission denied", target)

    monkeypatch.setattr(decode, "_check_local_path", lambda source: None)
    monkeypatch.setattr(av, "open", fake_open)
    with pytest.raises(DataError, match="/dev/video3 is not a readable video.*Permission denied"):
        open_source("/dev/video3", options={"video_size": "640x480"}, reconnect=None)
    target, kwargs = calls[0]
    assert target == "/dev/video3" and kwargs["format"] == "v4l2"
    assert kwargs["options"] == {"video_size": "640x480"}
    assert kwargs["timeout"] == 10.0  # live: the stall timeout bounds open and reads


def test_unreachable_stream_error_names_url_without_password(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    url = "rtsp://admin:hunter2@10.9.8.7:554/live"

    def refuse(target: str, *args: object, **kwargs: object) -> None:
        assert kwargs["options"]["rtsp_transport"] == "tcp"
        raise av.error.ConnectionRefusedError(111, "Connection refused", target)

    monkeypatch.setattr(av, "open", refuse)
    with pytest.raises(ServiceError) as info:
        open_source(url, reconnect=None)
    assert "rtsp://admin:***@10.9.8.7:554/live" in str(info.value)
    assert "hunter2" not in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"target_fps": 0}, "target_fps"),
        ({"target_fps": -1.0}, "target_fps"),
        ({"start_frame": -1}, "start_frame"),
        ({"start_frame": 5, "live": True}, "archives only"),
        ({"rtsp_transport": "quic"}, "rtsp_transport"),
        ({"stall_timeout_s": 0}, "stall_timeout_s"),
        ({"queue_size": 0}, "queue_size"),
        ({"stream_id": ""}, "stream_id"),
    ],
)
def test_bad_arguments_raise_value_errors(clip: Path, kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        open_source(clip, **kwargs)


# ---- colour conversion ----------------------------------------------------------------------


@pytest.mark.parametrize("pix_fmt", ["yuv420p", "yuvj420p", "yuv444p", "nv12", "rgb24", "gray"])
def test_frame_to_bgr_converts_any_pixel_format(pix_fmt: str) -> None:
    ramp = np.linspace(0, 255, 64, dtype=np.float32)[None, :] * np.ones((48, 1), np.float32)
    bgr = np.stack([ramp, ramp[:, ::-1], np.full_like(ramp, 128)], axis=-1).astype(np.uint8)
    frame = av.VideoFrame.from_ndarray(bgr, format="bgr24").reformat(format=pix_fmt)
    reformatter = VideoReformatter()
    out = frame_to_bgr(frame, reformatter)
    assert out.shape == (48, 64, 3) and out.dtype == np.uint8
    np.testing.assert_array_equal(out, frame.to_ndarray(format="bgr24"))
    np.testing.assert_array_equal(frame_to_bgr(frame, reformatter), out)  # reused context
    if pix_fmt != "gray":  # gray drops colour by design
        assert np.abs(out.astype(int) - bgr.astype(int)).mean() < 4


def test_malloc_tuning_can_be_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    from describeme.operators.sources import decode

    def forbidden(*args: object) -> None:
        raise AssertionError("mallopt must not be called when opted out")

    monkeypatch.setattr(decode, "_malloc_tuned", False)
    monkeypatch.setenv("DESCRIBEME_MALLOC_TOP_PAD", "0")
    monkeypatch.setattr(decode.ctypes, "CDLL", forbidden)
    decode.retain_frame_memory()
    assert decode._malloc_tuned


# ---- batching -------------------------------------------------------------------------------


def _frame(index: int, size: tuple[int, int] = (48, 64), stream_id: str = "cam") -> Frame:
    return Frame(stream_id, index, index / 30, 0.0, np.zeros((*size, 3), np.uint8))


def test_frame_batches_carry_a_letterbox_that_inverts_to_source_pixels() -> None:
    frames = [_frame(i, size=(480, 640)) for i in range(5)]
    batches = list(iter_frame_batches(frames, batch_size=2, model_size=(512, 512)))
    assert [[f.frame_index for f in b.frames] for b in batches] == [[0, 1], [2, 3], [4]]
    letterbox = batches[0].letterbox
    assert letterbox is not None and letterbox.target_size == (512, 512)
    model_box = np.array([[letterbox.pad_x, letterbox.pad_y, 512 - letterbox.pad_x, 256.0]])
    np.testing.assert_allclose(letterbox.boxes_to_source(model_box), [[0, 0, 640, 240]], atol=1e-3)


def test_frame_batches_split_when_the_resolution_changes() -> None:
    frames = [_frame(0), _frame(1), _frame(2, size=(96, 128)), _frame(3, size=(96, 128))]
    batches = list(iter_frame_batches(frames, batch_size=8, model_size=None))
    assert [len(b) for b in batches] == [2, 2]
    assert batches[1].letterbox is None


@pytest.mark.parametrize(
    ("frames", "message"),
    [
        ([], "at least one frame"),
        ([_frame(0), _frame(1, size=(96, 128))], "share a size"),
        ([_frame(0), _frame(1, stream_id="other")], "holds a frame of"),
    ],
)
def test_build_frame_batch_rejects_bad_input(frames: list, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        build_frame_batch(frames, (256, 256))
