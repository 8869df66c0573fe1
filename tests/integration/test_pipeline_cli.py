"""``describeme run`` as a process: Prometheus /metrics while running, SIGTERM -> drain, flush,
summary JSON, exit 0 (real local Ray + the session's embedded Redis)."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
import pytest

pytestmark = pytest.mark.integration

FPS, FRAMES, WIDTH, HEIGHT = 10, 300, 160, 120

def _long_clip(root: Path) -> Path:
    """A 30 s clip of one person walking, with gt.txt and tracks.json, so a live-paced run is
    still going when the test stops it."""
    import av

    (root / "gt").mkdir(parents=True)
    rows = []
    with av.open(str(root / "video.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for f in range(1, FRAMES + 1):
            x = 10 + (f * 0.4) % 110
            image = np.full((HEIGHT, WIDTH, 3), 80, np.uint8)
            image[20:100, int(x):int(x) + 30] = (30, 30, 200)
            rows.append(f"{f},1,{x},20,30,80,1,1,1.0")
            for packet in stream.encode(av.VideoFrame.from_ndarray(image, format="bgr24")):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (root / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    parts = {"upper-clothes": {"color": "red", "size": "short", "pattern": "solid"},
             "pants": {"color": "blue", "size": "long", "pattern": "solid"}}
    (root / "tracks.json").write_text(json.dumps({"fps": FPS, "tracks": [
        {"id": 1, "first_frame": 1, "last_frame": FRAMES,
         "segments": [{"from_frame": 1, "to_frame": FRAMES, "parts": parts}]}]}))
    return root / "video.mp4"


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _sink_frames(port: int) -> float:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as reply:
            text = reply.read().decode()
    except OSError:
        return 0.0
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines()
               if line.startswith('describeme_frames_total{stage="sink"'))


def test_sigterm_drains_flushes_and_summarises(tmp_path: Path, redis_server: Any,
                                               redis_prefix: str) -> None:
    from describeme.operators.store import parse_track

    clip = _long_clip(tmp_path / "clip")
    port, summary_path = _free_port(), tmp_path / "summary.json"
    env = {**os.environ, "OMP_NUM_THREADS": "1", "RAY_AUTH_MODE": "disabled",
           "XDG_DATA_HOME": str(tmp_path / "data")}  # the default annotated video goes here
    command = [sys.executable, "-m", "describeme.cli.main", "run", str(clip), "--model", "standin",
               "--redis-url", redis_server.url, "--metrics-port", str(port),
               "--summary-json", str(summary_path), "-o", "stream.live=true",
               "-o", f"sink.prefix='{redis_prefix}'", "-o", "metrics_interval_s=0.5"]
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        deadline = time.monotonic() + 90
        while _sink_frames(port) < 10 and time.monotonic() < deadline:
            assert process.poll() is None, process.stdout.read().decode()[-3000:]
            time.sleep(0.3)
        assert _sink_frames(port) >= 10, "no frames reached the sink in 90 s"
        process.send_signal(signal.SIGTERM)
        output = process.communicate(timeout=90)[0].decode()
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, output[-3000:]
    summary = json.loads(summary_path.read_text())
    assert summary["streams"][0]["status"] == "stopped"
    assert 10 <= summary["frames"] < FRAMES
    (video,) = (tmp_path / "data" / "describeme" / "runs").glob("*/annotated.mp4")
    assert f"annotated video: {video}" in output and video.stat().st_size > 0
    assert summary["tracks"] == 1 and summary["dropped_frames"] >= 0
    assert summary["config"]["parser"]["model"] == "standin"  # the run's resolved config
    client = redis_server.client()
    keys = client.scan_iter(match=f"{redis_prefix}track:*")
    stored = [parse_track(client.hgetall(key)) for key in keys]
    assert len(stored) == 1 and stored[0]["final"]  # the sink was flushed before exit
    parts = {p["part"]: p["color"] for p in stored[0]["parts"]}
    assert parts == {"upper-clothes": "red", "pants": "blue"}
