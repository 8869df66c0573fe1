"""PersonLab decoding time against the number of people, on hand-made head outputs.

Usage::

    python benchmarks/personlab_decode.py [--people 1 2 5 10 20 40] [--repeats 7]
        [--size 512] [--out benchmarks/results/personlab_decode.json]

For each count, people are planted on a grid of a ``size`` x ``size`` model input and the raw
heads a perfect network would return are built with
:func:`describeme.models.personlab.synthetic.ideal_outputs` (stride 8, R = 20 px, the
``personlab.yaml`` settings); building them is not timed. Timed, interleaved, best and median
of ``--repeats`` (the machine is shared, so the best run is the least disturbed one):

- ``poses``: offset refinement + Hough voting + peaks + greedy grouping + expected OKS +
  soft-NMS (``PersonLabPostprocessor.image_poses``);
- ``full``: everything up to :class:`Persons` (embedding assignment, upsampling, masks, part
  and characteristic aggregation, QAM), for a 720p source frame letterboxed to the input.

Both run with ``hough_stride`` 1 (paper) and 2. Measure only: nothing here is a pass/fail
threshold. Single thread (``OMP_NUM_THREADS=1``, ``torch.set_num_threads(1)``).
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import statistics
import sys
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402  (after the thread setting)
import torch  # noqa: E402

from describeme.geometry import Letterbox  # noqa: E402
from describeme.models.personlab.postprocess import build_postprocessor  # noqa: E402
from describeme.models.personlab.synthetic import (  # noqa: E402
    box_owners,
    ideal_outputs,
    standing_pose,
)

log = logging.getLogger("personlab_decode")
REPO = Path(__file__).resolve().parents[1]
STRIDE, RADIUS = 8, 20.0
SOURCE = (720, 1280)


def plant_people(count: int, size: int) -> np.ndarray:
    """(count, 17, 3) standing people on a grid filling a ``size`` x ``size`` input."""
    columns = int(np.ceil(np.sqrt(count * 1.6)))
    rows = int(np.ceil(count / columns))
    cell_w, cell_h = size / columns, size / rows
    height = min(0.9 * cell_h, 2.0 * cell_w, 0.8 * size)
    people = [
        standing_pose((i % columns + 0.5) * cell_w, (i // columns + 0.5) * cell_h, height)
        for i in range(count)
    ]
    return np.stack(people)


def time_call(function, repeats: int) -> list[float]:
    times = []
    for _ in range(repeats):
        started = time.perf_counter()
        function()
        times.append(1e3 * (time.perf_counter() - started))
    return times


def measure(count: int, size: int, repeats: int) -> dict:
    people = plant_people(count, size)
    outputs = ideal_outputs(people, box_owners(people, (size, size)), stride=STRIDE, radius=RADIUS)
    letterbox = Letterbox.fit(SOURCE, (size, size))
    row: dict = {"people": count}
    for hough_stride in (1, 2):
        post = build_postprocessor(disk_radius=RADIUS, hough_stride=hough_stride)
        poses, _ = post.image_poses(outputs, (size, size))
        persons = post.decode_image(outputs, letterbox)
        poses_ms = time_call(lambda p=post: p.image_poses(outputs, (size, size)), repeats)
        full_ms = time_call(lambda p=post: p.decode_image(outputs, letterbox), repeats)
        row[f"hough_stride_{hough_stride}"] = {
            "decoded_people": len(poses),
            "persons_after_threshold": len(persons),
            "poses_best_ms": round(min(poses_ms), 2),
            "poses_median_ms": round(statistics.median(poses_ms), 2),
            "full_best_ms": round(min(full_ms), 2),
            "full_median_ms": round(statistics.median(full_ms), 2),
        }
        log.info(
            "%2d people, hough_stride %d: %s",
            count,
            hough_stride,
            row[f"hough_stride_{hough_stride}"],
        )
    return row


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, nargs="+", default=[1, 2, 5, 10, 20, 40])
    parser.add_argument("--repeats", type=int, default=7)
    parser.add_argument("--size", type=int, default=512)
    parser.add_argument(
        "--out", type=Path, default=REPO / "benchmarks/results/personlab_decode.json"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(1)
    if args.size % 32 or args.repeats < 1 or min(args.people) < 1:
        parser.error("--size must be a multiple of 32, --repeats and --people positive")
    rows = [measure(count, args.size, args.repeats) for count in args.people]
    result = {
        "machine": f"2-core CPU ({platform.machine()}), shared with other jobs",
        "python": platform.python_version(),
        "numpy": np.__version__,
        "torch": torch.__version__,
        "threads": 1,
        "input_size": [args.size, args.size],
        "source_size": list(SOURCE),
        "output_stride": STRIDE,
        "disk_radius": RADIUS,
        "repeats": args.repeats,
        "load_average_1_5_15min_before": list(os.getloadavg()),
        "results": rows,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
