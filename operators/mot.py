"""Tracker output in the MOT Challenge text format, for ``describeme run --tracks-out``.

One row per tracked person per frame: ``frame, id, x, y, w, h, score, -1, -1, -1`` with
1-based frame numbers (the source frame index + 1) and boxes in source pixels, the format
:func:`describeme.models.metrics.read_mot_file` and ``motmetrics`` read, so a run over a video
with ground truth can be scored with MOTA / IDF1. People the tracker has not (yet) given an id
(``track_id < 0``) are left out.
"""

from __future__ import annotations

from pathlib import Path
from typing import TextIO
from urllib.parse import quote

from describeme.messages import TrackedFrame


def tracks_file(folder: str | Path, stream_id: str) -> Path:
    """``folder/<stream id>.txt``, the stream id percent-encoded (URLs hold ``/`` and ``:``)."""
    return Path(folder) / f"{quote(stream_id, safe='')}.txt"


def mot_lines(frame: TrackedFrame) -> list[str]:
    """The MOT rows of one tracked frame."""
    persons = frame.persons
    if persons.track_id is None:
        return []
    lines = []
    for (x0, y0, x1, y1), track_id, score in zip(
        persons.xyxy.tolist(), persons.track_id.tolist(), persons.score.tolist(), strict=True
    ):
        if track_id >= 0:
            lines.append(
                f"{frame.frame_index + 1},{track_id},{x0:.1f},{y0:.1f},{x1 - x0:.1f},"
                f"{y1 - y0:.1f},{score:.4f},-1,-1,-1\n"
            )
    return lines


class MotWriter:
    """Appends tracked frames to a MOT file (created with its folder on the first write).

    Args:
        path: the output file; an existing file is replaced.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self._handle: TextIO | None = None
        self.rows = 0

    def write(self, frame: TrackedFrame) -> None:
        if self._handle is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._handle = self.path.open("w", encoding="utf-8")
        lines = mot_lines(frame)
        self._handle.writelines(lines)
        self.rows += len(lines)

    def close(self) -> None:
        if self._handle is None:  # a stream without frames still leaves an (empty) file
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self.path.touch()
            return
        self._handle.close()
        self._handle = None
