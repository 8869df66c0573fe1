"""Fixtures for the pipeline unit tests: a tiny hand-made 'synthetic video' with ground truth."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

WIDTH, HEIGHT, FPS = 160, 120, 10

# Two people walking right / left; person 2 takes a coat off at frame 6 (1-based MOT frames).
TRACKS = {
    "fps": FPS,
    "tracks": [
        {"id": 1, "first_frame": 1, "last_frame": 12, "segments": [
            {"from_frame": 1, "to_frame": 12, "parts": {
                "hair": {"color": "dark", "size": "short"},
                "upper-clothes": {"color": "red", "size": "short", "pattern": "solid"},
                "pants": {"color": "blue", "size": "long", "pattern": "solid"},
                "shoes": {"color": "dark", "size": "short", "pattern": "solid"}}}]},
        {"id": 2, "first_frame": 1, "last_frame": 12, "segments": [
            {"from_frame": 1, "to_frame": 5, "parts": {
                "coat": {"color": "green", "size": "long", "pattern": "geometrical"},
                "pants": {"color": "dark", "size": "long", "pattern": "solid"}}},
            {"from_frame": 6, "to_frame": 12, "parts": {
                "upper-clothes": {"color": "yellow", "size": "long", "pattern": "letters"},
                "pants": {"color": "dark", "size": "long", "pattern": "solid"}}}]},
    ],
}  # fmt: skip


def person_box(track: int, frame: int) -> tuple[float, float, float, float]:
    """(x, y, w, h) of a person at a 1-based frame."""
    if track == 1:
        return 10.0 + 4 * frame, 20.0, 30.0, 80.0
    return 120.0 - 4 * frame, 25.0, 28.0, 75.0


def write_clip(root: Path, frames: int = 12) -> Path:
    """Writes video.mp4 + gt/gt.txt + tracks.json in the synthetic video layout."""
    import av

    root.mkdir(parents=True, exist_ok=True)
    rows = []
    with av.open(str(root / "video.mp4"), "w") as container:
        stream = container.add_stream("libx264", rate=FPS)
        stream.width, stream.height, stream.pix_fmt = WIDTH, HEIGHT, "yuv420p"
        for f in range(1, frames + 1):
            image = np.full((HEIGHT, WIDTH, 3), 90, np.uint8)
            for track in (1, 2):
                x, y, w, h = person_box(track, f)
                image[int(y):int(y + h), int(x):int(x + w)] = (40 * track, 30, 200)
                rows.append(f"{f},{track},{x},{y},{w},{h},1,1,1.0")
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)
    (root / "gt").mkdir(exist_ok=True)
    (root / "gt" / "gt.txt").write_text("\n".join(rows) + "\n")
    (root / "tracks.json").write_text(json.dumps(TRACKS))
    return root / "video.mp4"


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip"))
