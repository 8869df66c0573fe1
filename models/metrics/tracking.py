"""Multi-object tracking metrics (MOTA, IDF1, ID switches, MT/ML) through ``motmetrics``.

The metric definitions are motmetrics' own (CLEAR MOT and identity metrics); this module only
converts MOT-format rows, builds the per-frame IoU distances with ``motmetrics.distances`` and
reads the summary.

motmetrics 1.4.0 (the latest release) calls ``np.asfarray``, which NumPy 2 removed.
:func:`_import_motmetrics` installs the one-line equivalent on the ``numpy`` module before
importing it, and only when the attribute is missing, so a fixed motmetrics is unaffected.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from describeme.errors import DataError
from describeme.messages import TrackedFrame
from describeme.types import Persons

# Summary columns returned by evaluate_mot (motmetrics metric names).
MOT_METRICS: tuple[str, ...] = (
    "mota", "motp", "idf1", "idp", "idr", "num_switches", "mostly_tracked", "partially_tracked",
    "mostly_lost", "num_fragmentations", "num_false_positives", "num_misses", "precision",
    "recall", "num_unique_objects", "num_frames",
)  # fmt: skip


def _import_motmetrics():  # noqa: ANN202 - module object
    """Imports motmetrics, first restoring ``np.asfarray`` (removed in NumPy 2.0) if needed."""
    if not hasattr(np, "asfarray"):

        def asfarray(a, dtype=np.float64):  # noqa: ANN001, ANN202 - NumPy 1.x signature
            """NumPy 1.x ``asfarray``: ``asarray`` with a floating dtype."""
            if not np.issubdtype(dtype, np.inexact):
                dtype = np.float64
            return np.asarray(a, dtype=dtype)

        np.asfarray = asfarray  # type: ignore[attr-defined]
    import motmetrics

    return motmetrics


def read_mot_file(path: str | Path) -> np.ndarray:
    """Reads a MOT-format text file (``frame, id, x, y, w, h, ...`` comma-separated).

    Args:
        path: ``gt.txt`` or a tracker's result file.

    Returns:
        (M, K) float64 rows, K >= 6; (0, 6) for an empty file.

    Raises:
        DataError: the file is missing, unreadable or has fewer than 6 columns.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"MOT file not found: {path}")
    text = path.read_text().strip()
    if not text:
        return np.zeros((0, 6))
    try:
        rows = np.loadtxt(path, delimiter=",", ndmin=2, dtype=np.float64)
    except ValueError as exc:
        raise DataError(f"{path}: not a comma-separated MOT file ({exc})") from None
    if rows.shape[1] < 6:
        raise DataError(
            f"{path}: MOT rows need at least 6 columns (frame,id,x,y,w,h), got {rows.shape[1]}"
        )
    return rows


def persons_to_mot_rows(frame: int, persons: Persons) -> np.ndarray:
    """MOT rows ``frame, id, x, y, w, h, score`` of a frame's tracked persons.

    Untracked persons (``track_id == -1``) are left out: they belong to no trajectory.

    Args:
        frame: MOT frame number (1-based: a pipeline's 0-based ``frame_index`` + 1).
        persons: the frame's :class:`Persons` after tracking.

    Returns:
        (N, 7) float64 rows.
    """
    track_id = np.asarray(persons.track_id)  # Persons always fills it (-1 = none)
    tracked = track_id >= 0
    xyxy = persons.xyxy[tracked].astype(np.float64)
    out = np.empty((int(np.count_nonzero(tracked)), 7))
    out[:, 0] = frame
    out[:, 1] = track_id[tracked]
    out[:, 2:4] = xyxy[:, :2]
    out[:, 4:6] = xyxy[:, 2:] - xyxy[:, :2]
    out[:, 6] = persons.score[tracked]
    return out


def tracked_frames_to_mot_rows(frames: Iterable[TrackedFrame]) -> np.ndarray:
    """MOT rows of a stream's :class:`TrackedFrame` sequence (frame = ``frame_index + 1``)."""
    rows = [persons_to_mot_rows(f.frame_index + 1, f.persons) for f in frames]
    return np.concatenate(rows) if rows else np.zeros((0, 7))


def write_mot_file(path: str | Path, rows: np.ndarray) -> None:
    """Writes MOT rows as ``frame,id,x,y,w,h,...`` text (what :func:`read_mot_file` reads)."""
    rows = _check_rows(rows, "rows")
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    np.savetxt(path, rows, delimiter=",", fmt="%.6g")


def _check_rows(rows: np.ndarray, what: str) -> np.ndarray:
    rows = np.asarray(rows, dtype=np.float64)
    if rows.size == 0:
        return np.zeros((0, 6))
    if rows.ndim != 2 or rows.shape[1] < 6:
        raise ValueError(f"{what} must be (M, >=6) rows frame,id,x,y,w,h; got shape {rows.shape}")
    if not np.isfinite(rows[:, :6]).all():
        raise ValueError(f"{what}: non-finite values in frame/id/box columns")
    return rows


def evaluate_mot(gt_rows: np.ndarray, hyp_rows: np.ndarray, iou_threshold: float = 0.5) -> dict:
    """Scores a tracker's output against MOT ground truth with motmetrics.

    A hypothesis box can match a ground-truth box when their IoU is at least
    ``iou_threshold`` (motmetrics' ``max_iou = 1 - iou_threshold`` distance). Ground-truth rows
    whose 7th column (MOT "consider" flag) is 0 are dropped, as in the MOT challenge.

    Args:
        gt_rows: (M, >=6) ground truth ``frame, id, x, y, w, h[, conf, ...]``, box top-left
            and size in pixels.
        hyp_rows: (N, >=6) tracker output in the same format.
        iou_threshold: minimum IoU for a match, in (0, 1].

    Returns:
        Metric name -> value for every name in :data:`MOT_METRICS` (fractions for
        rates, ints for counts).
    """
    if not 0.0 < iou_threshold <= 1.0:
        raise ValueError(f"iou_threshold must be in (0, 1], got {iou_threshold}")
    gt = _check_rows(gt_rows, "gt_rows")
    hyp = _check_rows(hyp_rows, "hyp_rows")
    if gt.shape[1] >= 7:
        gt = gt[gt[:, 6] != 0]
    mm = _import_motmetrics()
    acc = mm.MOTAccumulator(auto_id=False)
    frames = np.union1d(gt[:, 0], hyp[:, 0]).astype(np.int64)
    for frame in frames:
        g = gt[gt[:, 0] == frame]
        h = hyp[hyp[:, 0] == frame]
        distances = mm.distances.iou_matrix(g[:, 2:6], h[:, 2:6], max_iou=1.0 - iou_threshold)
        acc.update(
            g[:, 1].astype(np.int64), h[:, 1].astype(np.int64), distances, frameid=int(frame)
        )
    summary = mm.metrics.create().compute(acc, metrics=list(MOT_METRICS), name="all")
    row = summary.loc["all"]
    return {name: _to_python(name, row[name]) for name in MOT_METRICS}


def _to_python(name: str, value: object) -> float | int:
    """Counts as int, rates as float (nan stays nan, e.g. MOTP with no match)."""
    number = float(value)  # type: ignore[arg-type]
    is_count = name.startswith(("num_", "mostly_", "partially_"))
    return int(number) if is_count and np.isfinite(number) else number
