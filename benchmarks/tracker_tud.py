"""Tracking accuracy on the real TUD-Campus and TUD-Stadtmitte ground truth (motmetrics wheel).

Detections are the ground-truth boxes with seeded noise (centre/size jitter, dropped boxes,
random false positives with overlapping scores); the same detections go to describeme's
HungarianTracker (a few settings) and to a library tracker, supervision's ByteTrack. Writes
MOTA / IDF1 / ID switches per sequence and tracker to ``benchmarks/results/tracker_tud.json``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/tracker_tud.py [--seeds 3]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from describeme.models.metrics.tracking import evaluate_mot, read_mot_file
from describeme.operators.tracker import HungarianTracker
from describeme.types import Persons

log = logging.getLogger("tracker_tud")
SEQUENCES = ("TUD-Campus", "TUD-Stadtmitte")
FRAME_RATE = 25.0  # both TUD sequences are 25 fps
IMAGE_SIZE = (480, 640)  # (height, width)
RESULTS = Path(__file__).resolve().parent / "results" / "tracker_tud.json"


def gt_path(sequence: str) -> Path:
    import motmetrics

    path = Path(motmetrics.__file__).parent / "data" / sequence / "gt.txt"
    if not path.is_file():
        raise FileNotFoundError(f"{path} not found; reinstall motmetrics (it ships TUD gt)")
    return path


def load_gt(sequence: str) -> np.ndarray:
    """(R, 6) float64 MOT rows: frame, id, x, y, w, h."""
    return read_mot_file(gt_path(sequence))[:, :6]


Detections = dict[int, tuple[np.ndarray, np.ndarray]]


def make_detections(gt: np.ndarray, seed: int, drop: float = 0.1, jitter: float = 0.05,
                    false_positives_per_frame: float = 1.0) -> Detections:
    """Noisy detections per frame: {frame: ((D, 4) xyxy pixels, (D,) score)}.

    True boxes: centre and size jittered by ``jitter`` of their size, ``drop`` of them removed,
    scores uniform in [0.5, 1]. False positives: Poisson(``false_positives_per_frame``) boxes
    of ground-truth sizes at uniform positions, scores uniform in [0.3, 0.9].
    """
    rng = np.random.default_rng(seed)
    height, width = IMAGE_SIZE
    sizes = gt[:, 4:6]
    out: dict[int, tuple[np.ndarray, np.ndarray]] = {}
    for frame in np.unique(gt[:, 0]).astype(int):
        rows = gt[gt[:, 0] == frame]
        rows = rows[rng.random(len(rows)) >= drop]
        x, y, w, h = rows[:, 2], rows[:, 3], rows[:, 4], rows[:, 5]
        cx = x + w / 2 + rng.normal(0, jitter, len(rows)) * w
        cy = y + h / 2 + rng.normal(0, jitter, len(rows)) * h
        w = w * np.exp(rng.normal(0, jitter, len(rows)))
        h = h * np.exp(rng.normal(0, jitter, len(rows)))
        boxes = np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=1)
        scores = rng.uniform(0.5, 1.0, len(rows))
        num_fp = rng.poisson(false_positives_per_frame)
        fp_wh = sizes[rng.integers(0, len(sizes), num_fp)]
        fp_xy = rng.uniform([0, 0], [width, height], (num_fp, 2)) - fp_wh / 2
        fp_boxes = np.concatenate([fp_xy, fp_xy + fp_wh], axis=1)
        fp_scores = rng.uniform(0.3, 0.9, num_fp)
        out[int(frame)] = (
            np.concatenate([boxes, fp_boxes]).astype(np.float32),
            np.concatenate([scores, fp_scores]).astype(np.float32),
        )
    return out


def hyp_rows(frame: int, boxes: np.ndarray, ids: np.ndarray) -> list[list[float]]:
    keep = ids >= 0
    return [[frame, int(i), b[0], b[1], b[2] - b[0], b[3] - b[1]]
            for b, i in zip(boxes[keep], ids[keep], strict=True)]


def run_hungarian(detections: Detections, **kwargs: Any) -> np.ndarray:
    tracker = HungarianTracker(use_masks=False, **kwargs)
    rows: list[list[float]] = []
    for frame in sorted(detections):
        boxes, scores = detections[frame]
        tracked = tracker.update(Persons(xyxy=boxes, score=scores), frame)
        rows += hyp_rows(frame, tracked.xyxy, tracked.track_id)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


def run_bytetrack(detections: Detections) -> np.ndarray:
    import warnings

    import supervision as sv

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", FutureWarning)  # ByteTrack is deprecated in 0.30
        tracker = sv.ByteTrack(frame_rate=FRAME_RATE)
    rows: list[list[float]] = []
    for frame in sorted(detections):
        boxes, scores = detections[frame]
        found = sv.Detections(xyxy=boxes, confidence=scores, class_id=np.zeros(len(boxes), int))
        tracked = tracker.update_with_detections(found)
        ids = np.asarray(tracked.tracker_id if tracked.tracker_id is not None else [], np.int64)
        rows += hyp_rows(frame, tracked.xyxy, ids)
    return np.asarray(rows, dtype=np.float64).reshape(-1, 6)


def evaluate(gt: np.ndarray, hyp: np.ndarray) -> dict[str, float]:
    """CLEAR-MOT and identity metrics of one sequence (motmetrics, IoU >= 0.5 matches)."""
    result = evaluate_mot(gt, hyp, iou_threshold=0.5)
    return {name: float(value) for name, value in result.items()}


def trackers() -> dict[str, Callable[[Detections], np.ndarray]]:
    runs: dict[str, Callable[[Detections], np.ndarray]] = {
        "hungarian (default: min_hits=3, motion)": lambda d: run_hungarian(d),
        "hungarian (no motion prediction)": lambda d: run_hungarian(d, predict_motion=False),
        "hungarian (min_hits=1)": lambda d: run_hungarian(d, min_hits=1),
        "hungarian (min_hits=2, min_score=0.5)": lambda d: run_hungarian(
            d, min_hits=2, min_score=0.5),
    }
    try:
        import supervision as sv
    except ImportError:
        log.warning("supervision is not installed: no library tracker to compare with "
                    "(pip install 'supervision==0.30.9')")
        return runs
    if not hasattr(sv, "ByteTrack"):
        log.warning("supervision %s has no ByteTrack (removed in 0.31); "
                    "pip install 'supervision==0.30.9'", sv.__version__)
        return runs
    runs[f"supervision ByteTrack {sv.__version__} (defaults, 25 fps)"] = run_bytetrack
    return runs


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3, help="noise seeds averaged per sequence")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    table: dict[str, dict[str, dict[str, float]]] = {}
    for sequence in SEQUENCES:
        gt = load_gt(sequence)
        per_tracker: dict[str, list[dict[str, float]]] = {}
        for seed in range(args.seeds):
            detections = make_detections(gt, seed)
            for name, run in trackers().items():
                start = time.perf_counter()
                hyp = run(detections)
                seconds = time.perf_counter() - start
                metrics = evaluate(gt, hyp)
                metrics["ms_per_frame"] = 1000 * seconds / len(detections)
                per_tracker.setdefault(name, []).append(metrics)
        table[sequence] = {
            name: {k: float(np.mean([r[k] for r in runs])) for k in runs[0]}
            for name, runs in per_tracker.items()
        }
        for name, m in table[sequence].items():
            log.info("%-16s %-48s MOTA %.3f IDF1 %.3f IDsw %.1f", sequence, name, m["mota"],
                     m["idf1"], m["num_switches"])
    report = {
        "machine": f"{os.cpu_count()}-core CPU, Python {platform.python_version()}",
        "metric_backend": "describeme.models.metrics.tracking.evaluate_mot (motmetrics 1.4.0)",
        "noise": {"drop": 0.1, "jitter_sigma_of_size": 0.05, "false_positives_per_frame": 1.0,
                  "true_scores": [0.5, 1.0], "false_positive_scores": [0.3, 0.9],
                  "seeds": args.seeds},
        "results": table,
        "notes": [
            "ms_per_frame includes Persons construction for describeme and sv.Detections "
            "construction for ByteTrack.",
            "Before the Kalman filter, an exponential average of the box centre's velocity "
            "(weight 0.85) scored IDF1 0.872 (Campus) / 0.837 (Stadtmitte), MOTA 0.832 / "
            "0.866 on these detections.",
            "With min_iou 0.3 (the default until 2026-12-07; 0.4 since) the default tracker "
            "scored MOTA 0.835 / 0.870, IDF1 0.888 / 0.885, ID switches 1.4 / 3.2 "
            "(Campus / Stadtmitte, 5 seeds).",
        ],
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
