"""Tracker association time for a crowd: 50 people walking in a 1920x1080 frame.

Times ``HungarianTracker.update`` per frame with box IoU and with mask IoU (run-length part
masks of every person), plus the matching pieces alone (box IoU + assignment, mask IoU).
Writes ``benchmarks/results/tracker_speed.json``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/tracker_speed.py [--people 50 --frames 200]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np

from describeme.masks import RunLengthMask
from describeme.operators.matching import box_iou, linear_assignment, mask_iou
from describeme.operators.tracker import HungarianTracker
from describeme.types import Persons

log = logging.getLogger("tracker_speed")
IMAGE_SIZE = (1080, 1920)  # (height, width)
RESULTS = Path(__file__).resolve().parent / "results" / "tracker_speed.json"


def person_mask(box: np.ndarray) -> RunLengthMask:
    """An ellipse-shaped person with horizontal part bands (head, torso, legs, feet)."""
    height, width = IMAGE_SIZE
    x0, y0, x1, y1 = np.clip(box, 0, [width, height, width, height]).astype(int)
    h, w = max(y1 - y0, 1), max(x1 - x0, 1)
    yy, xx = np.mgrid[0:h, 0:w]
    inside = ((xx - w / 2) / (w / 2)) ** 2 + ((yy - h / 2) / (h / 2)) ** 2 <= 1
    bands = np.select([yy < h * 0.15, yy < h * 0.5, yy < h * 0.9], [2, 5, 9], default=18)
    labels = np.where(inside, bands, 0).astype(np.uint8)
    return RunLengthMask.encode(labels, offset=(int(x0), int(y0)), image_size=IMAGE_SIZE)


def crowd(people: int, frames: int, seed: int, with_masks: bool) -> list[Persons]:
    """People of 60-160 x 150-420 px walking at 1-4 px/frame, 5% missed per frame."""
    rng = np.random.default_rng(seed)
    height, width = IMAGE_SIZE
    size = np.stack([rng.uniform(60, 160, people), rng.uniform(150, 420, people)], axis=1)
    xy = rng.uniform([0, 0], [width - 160, height - 420], (people, 2))
    velocity = rng.normal(0, 2, (people, 2))
    sequence = []
    for _ in range(frames):
        xy = np.clip(xy + velocity + rng.normal(0, 1, xy.shape), 0, [width - 160, height - 420])
        keep = rng.random(people) > 0.05
        boxes = np.concatenate([xy, xy + size], axis=1)[keep].astype(np.float32)
        masks = [person_mask(b) for b in boxes] if with_masks else None
        sequence.append(Persons(xyxy=boxes, score=rng.uniform(0.5, 1, len(boxes)), masks=masks))
    return sequence


def summarise(seconds: list[float]) -> dict[str, float]:
    ms = np.asarray(seconds) * 1000
    return {"median_ms": float(np.median(ms)), "p90_ms": float(np.percentile(ms, 90)),
            "mean_ms": float(ms.mean())}


def time_updates(sequence: list[Persons], use_masks: bool) -> dict[str, float]:
    tracker = HungarianTracker(use_masks=use_masks)
    seconds = []
    for index, persons in enumerate(sequence):
        start = time.perf_counter()
        tracker.update(persons, index)
        seconds.append(time.perf_counter() - start)
    result = summarise(seconds[5:])  # the first frames have no tracks to match
    result["confirmed_tracks_at_end"] = float(len(tracker.track_states()))
    return result


def time_pieces(sequence: list[Persons]) -> dict[str, dict[str, float]]:
    box_seconds, mask_seconds = [], []
    for previous, current in zip(sequence, sequence[1:], strict=False):
        start = time.perf_counter()
        linear_assignment(1 - box_iou(previous.xyxy, current.xyxy), 0.7)
        box_seconds.append(time.perf_counter() - start)
        start = time.perf_counter()
        mask_iou(previous.masks or [], current.masks or [])
        mask_seconds.append(time.perf_counter() - start)
    return {"box_iou_plus_assignment": summarise(box_seconds),
            "mask_iou_only": summarise(mask_seconds)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=50)
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    sequence = crowd(args.people, args.frames, seed=0, with_masks=True)
    results = {
        "update_box_iou": time_updates(sequence, use_masks=False),
        "update_mask_iou": time_updates(sequence, use_masks=True),
        **time_pieces(sequence),
    }
    for name, values in results.items():
        log.info("%-26s median %.2f ms  p90 %.2f ms", name, values["median_ms"], values["p90_ms"])
    report = {
        "machine": f"{os.cpu_count()}-core CPU (shared), Python {platform.python_version()}, "
                   f"OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', 'unset')}",
        "load_average_1min_at_end": os.getloadavg()[0],  # the 2 cores are shared
        "scene": {"people": args.people, "frames": args.frames, "image_size": IMAGE_SIZE,
                  "person_px": "60-160 x 150-420", "missed_per_frame": 0.05},
        "results": results,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2))
    log.info("wrote %s", args.out)


if __name__ == "__main__":
    main()
