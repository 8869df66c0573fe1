"""How long ``describeme eval --predictions`` takes on N 512x384 images (default 1,000).

Builds a dataset in the synthetic layout (or uses ``--data`` with ``--predictions``), writes
predictions that differ from the ground truth (people shifted by a few pixels, some parts
relabelled, so matching does real work), then times the full evaluation: reading every PNG,
mIoU, AP^r, AP^p/PCP, AP^cr x3 and COCO mask AP. Writes
``benchmarks/results/eval_speed.json``.

Run: ``OMP_NUM_THREADS=1 python benchmarks/eval_speed.py [--images 1000]``
Machine of record: 2-core shared CPU VM, Python 3.11, numpy 2 (see the JSON).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402
import numpy as np  # noqa: E402
import yaml  # noqa: E402

from describeme.data import layout  # noqa: E402
from describeme.models.metrics import Prediction, Scores  # noqa: E402
from describeme.models.metrics.dataset_eval import evaluate_predictions  # noqa: E402
from describeme.models.metrics.predictions import PredictionWriter  # noqa: E402

FOLDERS = {
    "parts": layout.CATEGORY_IDS,
    "humans": layout.HUMAN_IDS,
    "color": layout.COLOR_IDS,
    "size": layout.SIZE_IDS,
    "pattern": layout.PATTERN_IDS,
}
PART_ROWS = (
    (2, 0.0, 0.12),
    (13, 0.12, 0.2),
    (5, 0.2, 0.5),
    (14, 0.2, 0.5),
    (9, 0.5, 0.9),
    (18, 0.9, 1.0),
)  # (class, top, bottom) as fractions of the person's height


def make_maps(rng: np.random.Generator, height: int, width: int) -> dict[str, np.ndarray]:
    """A few overlapping box-people with six parts each and random characteristics."""
    maps = {name: np.zeros((height, width), np.uint8) for name in FOLDERS}
    maps["humans"] = np.zeros((height, width), np.uint16)
    for person in range(1, int(rng.integers(2, 8)) + 1):
        h = int(rng.integers(60, height))
        w = max(h // 3, 8)
        x0, y0 = int(rng.integers(0, width - w)), int(rng.integers(0, height - h + 1))
        for cls, top, bottom in PART_ROWS:
            rows = slice(y0 + int(top * h), y0 + int(bottom * h))
            cols = slice(x0 + (w // 2 if cls == 14 else 0), x0 + w)
            maps["parts"][rows, cols] = cls
            maps["humans"][rows, cols] = person
            maps["color"][rows, cols] = 0 if cls in (13, 14) else int(rng.integers(1, 13))
            maps["size"][rows, cols] = 0 if cls in (13, 14) else int(rng.integers(1, 5))
            maps["pattern"][rows, cols] = 0 if cls in (2, 13, 14) else int(rng.integers(1, 5))
    return maps


def build(root: Path, num_images: int, height: int, width: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    for folder in (layout.IMAGES, *FOLDERS.values()):
        (root / "data" / folder).mkdir(parents=True, exist_ok=True)
    (root / "data" / layout.DATASET_YAML).write_text(
        yaml.safe_dump(
            {
                "format": layout.FORMAT_IMAGES,
                "version": layout.LAYOUT_VERSION,
                "instance_id_rule": layout.RULE_CCIHP,
            }
        )
    )
    image = np.full((height, width, 3), 127, np.uint8)
    with PredictionWriter(root / "pred") as writer:
        for index in range(num_images):
            image_id = f"{index:06d}"
            maps = make_maps(rng, height, width)
            cv2.imwrite(str(root / "data" / layout.IMAGES / f"{image_id}.jpg"), image)
            for name, folder in FOLDERS.items():
                cv2.imwrite(str(root / "data" / folder / f"{image_id}.png"), maps[name])
            shift = int(rng.integers(-4, 5))
            pred = {k: np.roll(v, shift, axis=1) for k, v in maps.items()}
            pred["parts"] = np.where(pred["parts"] == 14, 15, pred["parts"]).astype(np.uint8)
            num = int(pred["humans"].max())
            scores = Scores(
                persons={h: float(rng.random()) for h in range(1, num + 1)},
                parts={
                    22 * (h - 1) + c: float(rng.random())
                    for h in range(1, num + 1)
                    for c in (2, 5, 9)
                },
            )
            writer.write(image_id, Prediction(**pred, scores={"score": scores}))


def _cpu_seconds() -> float:
    """CPU time of this process and its finished children (the worker processes)."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return time.process_time() + children.ru_utime + children.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=1000)
    parser.add_argument("--size", default="512x384", help="WxH of generated images")
    parser.add_argument("--data", type=Path, help="existing dataset (with --predictions)")
    parser.add_argument("--predictions", type=Path)
    parser.add_argument("--workers", type=int, default=2, help="evaluation processes")
    parser.add_argument(
        "--out", type=Path, default=Path(__file__).parent / "results" / "eval_speed.json"
    )
    args = parser.parse_args()
    width, height = (int(v) for v in args.size.lower().split("x"))
    with tempfile.TemporaryDirectory() as tmp:
        data, pred = args.data, args.predictions
        if data is None:
            start = time.perf_counter()
            build(Path(tmp), args.images, height, width, seed=1)
            print(f"built {args.images} images in {time.perf_counter() - start:.1f} s")
            data, pred = Path(tmp) / "data", Path(tmp) / "pred"
        start, cpu_start = time.perf_counter(), _cpu_seconds()
        report = evaluate_predictions(data, pred, limit=args.images, workers=args.workers)
        seconds = time.perf_counter() - start
        cpu_seconds = _cpu_seconds() - cpu_start
    result = {
        "benchmark": "eval_speed",
        "images": report["num_images"],
        "size": f"{width}x{height}",
        "seconds": round(seconds, 2),
        "images_per_second": round(report["num_images"] / seconds, 1),
        "workers": args.workers,
        "cpu_seconds": round(cpu_seconds, 2),  # this process + worker processes
        "load_average_1min": round(os.getloadavg()[0], 2),
        "metrics": {
            k: report[k]
            for k in ("miou", "apr_vol", "app_vol", "pcp_50", "color_apcr_vol", "mask_ap")
        },
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "numpy": np.__version__,
            "platform": platform.platform(),
            "note": "2-core CPU VM shared with other jobs; OMP_NUM_THREADS=1",
        },
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
