"""Network sources against real local servers on 127.0.0.1.

RTSP: a real GStreamer RTSP server (``rtsp_server.py``, run by Debian's system Python) serves a
synthetic H.264 clip encoded here with PyAV. The tests read frames, SIGKILL (or SIGSTOP) the
server, restart it on the same port, and check that the source reconnects by itself.
HTTP: an HLS playlist served by Python's ``http.server``, read as an archive and as live.
"""

from __future__ import annotations

import functools
import http.server
import logging
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import av
import numpy as np
import pytest

from describeme.errors import ServiceError
from describeme.operators.sources import ReconnectPolicy, open_source

pytestmark = pytest.mark.integration

SERVER_SCRIPT = Path(__file__).with_name("rtsp_server.py")
SYSTEM_PYTHON = Path("/usr/bin/python3")


def _gstreamer_problem() -> str | None:
    if not SYSTEM_PYTHON.exists():
        return f"{SYSTEM_PYTHON} not found (the GStreamer bindings live in the system Python)"
    check = subprocess.run(
        [str(SYSTEM_PYTHON), str(SERVER_SCRIPT), "--check"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    if check.returncode != 0:
        return (check.stderr or check.stdout).strip().splitlines()[-1]
    return None


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _encode_h264_clip(path: Path, seconds: int = 30, fps: int = 25) -> Path:
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx264 encoder for the RTSP test clip")
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = 128, 96, "yuv420p"
        stream.gop_size = fps  # a keyframe every second: a reconnecting client resyncs fast
        stream.options = {"preset": "ultrafast", "tune": "zerolatency"}
        for i in range(seconds * fps):
            image = np.full((96, 128, 3), (i * 3) % 256, dtype=np.uint8)
            image[:, i % 128] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    return path


class RtspServer:
    """The GStreamer server as a child process that can be killed and restarted."""

    def __init__(self, clip: Path, port: int) -> None:
        self.clip, self.port = clip, port
        self.url = f"rtsp://127.0.0.1:{port}/test"
        self.process: subprocess.Popen[str] | None = None

    def start(self, timeout_s: float = 30.0) -> None:
        self.process = subprocess.Popen(
            [str(SYSTEM_PYTHON), str(SERVER_SCRIPT), "--file", str(self.clip)]
            + ["--port", str(self.port), "--host", "127.0.0.1"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        assert self.process.stdout is not None
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            line = self.process.stdout.readline()
            if line.startswith("READY"):
                return
            if not line and self.process.poll() is not None:
                break
        self.kill()
        pytest.fail(f"RTSP server did not start: {self.process.stderr.read()[-2000:]}")

    def kill(self) -> None:
        if self.process and self.process.poll() is None:
            os.kill(self.process.pid, signal.SIGKILL)
            self.process.wait(10)
        if self.process:
            for pipe in (self.process.stdout, self.process.stderr):
                if pipe:
                    pipe.close()


@pytest.fixture
def rtsp_server(tmp_path: Path) -> Iterator[RtspServer]:
    problem = _gstreamer_problem()
    if problem:
        pytest.skip(f"GStreamer RTSP server unavailable: {problem}")
    server = RtspServer(_encode_h264_clip(tmp_path / "clip.mp4"), _free_port())
    server.start()
    try:
        yield server
    finally:
        server.kill()


def _read_frames(source, count: int, timeout_s: float = 30.0) -> list:
    frames = []
    while len(frames) < count:
        frame = source.read(timeout_s=timeout_s)
        assert frame is not None, f"no frame within {timeout_s} s (stats {source.stats()})"
        frames.append(frame)
    return frames


def test_rtsp_source_reconnects_after_server_restart(
    rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.INFO, logger="describeme.operators.sources")
    policy = ReconnectPolicy(initial_s=0.2, max_s=1.0, jitter=0.2)
    with open_source(
        rtsp_server.url, stream_id="cam", reconnect=policy, stall_timeout_s=5.0
    ) as source:
        before = _read_frames(source, 10)
        rtsp_server.kill()
        time.sleep(1.5)  # the source is now retrying against a closed port
        rtsp_server.start()
        # Frames queued before the kill may come first; then 10 from the new connection.
        during = []
        while source.stats()["reconnects"] < 1:
            during += _read_frames(source, 1)
            assert len(during) < 500, f"never reconnected: {source.stats()}"
        after = _read_frames(source, 10)
        stats = source.stats()
    frames = before + during + after
    assert stats["reconnects"] >= 1
    assert all(f.stream_id == "cam" and f.image.shape == (96, 128, 3) for f in frames)
    indices = [f.frame_index for f in frames]
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False)), indices
    assert all(b.pts > a.pts for a, b in zip(frames, frames[1:], strict=False))
    messages = [r.getMessage() for r in caplog.records]
    assert any("reconnecting" in m for m in messages), messages
    assert any("reconnected to rtsp://127.0.0.1" in m for m in messages), messages


def test_unreachable_rtsp_without_reconnect_names_url_not_password() -> None:
    port = _free_port()  # nothing listens there
    url = f"rtsp://admin:hunter2@127.0.0.1:{port}/live"
    with pytest.raises(ServiceError) as info:
        open_source(url, reconnect=None, stall_timeout_s=5.0)
    message = str(info.value)
    assert f"rtsp://admin:***@127.0.0.1:{port}/live" in message
    assert "hunter2" not in message


def test_rtsp_stall_counts_as_disconnect(
    rtsp_server: RtspServer, caplog: pytest.LogCaptureFixture
) -> None:
    assert rtsp_server.process is not None
    caplog.set_level(logging.INFO, logger="describeme.operators.sources")
    policy = ReconnectPolicy(initial_s=0.2, max_s=1.0, jitter=0.2)
    with open_source(rtsp_server.url, reconnect=policy, stall_timeout_s=2.0) as source:
        _read_frames(source, 5)
        os.kill(rtsp_server.process.pid, signal.SIGSTOP)  # connection open, nothing sent
        try:
            deadline = time.monotonic() + 30
            while not any("ended" in r.getMessage() for r in caplog.records):
                source.read(timeout_s=0.2)
                assert time.monotonic() < deadline, "stall was never detected"
        finally:
            os.kill(rtsp_server.process.pid, signal.SIGCONT)
        while source.stats()["reconnects"] < 1:
            _read_frames(source, 1)
        _read_frames(source, 5)
    ended = [r.getMessage() for r in caplog.records if "ended" in r.getMessage()]
    assert "read failed" in ended[0] or "no frame for" in ended[0], ended


class _QuietHandler(http.server.SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


@pytest.fixture
def hls_url(tmp_path: Path) -> Iterator[str]:
    """An HLS VOD playlist (90 frames at 30 fps, 1 s segments) served over HTTP."""
    if "libx264" not in av.codecs_available:
        pytest.skip("this PyAV build has no libx264 encoder for the HLS test clip")
    options = {"hls_time": "1", "hls_list_size": "0", "hls_playlist_type": "vod"}
    with av.open(str(tmp_path / "index.m3u8"), "w", format="hls", options=options) as container:
        stream = container.add_stream("libx264", rate=30)
        stream.width, stream.height, stream.pix_fmt = 64, 48, "yuv420p"
        stream.options = {"preset": "ultrafast"}
        for i in range(90):
            image = np.zeros((48, 64, 3), dtype=np.uint8)
            image[:, i % 64] = 255
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    handler = functools.partial(_QuietHandler, directory=str(tmp_path))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/index.m3u8"
    finally:
        server.shutdown()
        server.server_close()


def test_hls_over_http_as_archive_reads_every_frame(hls_url: str) -> None:
    with open_source(hls_url, live=False) as source:
        frames = list(source)
    assert [f.frame_index for f in frames] == list(range(90))
    assert frames[0].pts == 0.0


def test_hls_over_http_as_live_reconnects_at_end(hls_url: str) -> None:
    policy = ReconnectPolicy(initial_s=0.01, max_s=0.05)
    with open_source(hls_url, reconnect=policy, queue_size=256) as source:
        frames = _read_frames(source, 200)
        stats = source.stats()
    assert stats["reconnects"] >= 2
    indices = [f.frame_index for f in frames]
    assert all(b > a for a, b in zip(indices, indices[1:], strict=False))
    assert indices[-1] >= 199
