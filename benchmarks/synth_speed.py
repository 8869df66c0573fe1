"""Speed of the synthetic scene engine at 512x384: images per second on one core.

Measures render only (image + all label maps + keypoints + descriptions, in memory) and
render + write (the full dataset layout on disk, PNG/JPEG encoding included), single
process, after a short warm-up. Writes ``benchmarks/results/synth_speed.json``.

Two figures per mode: ``*_cpu`` divides by the process's CPU time (what one core delivers,
robust when the machine is shared), ``*_wall`` by elapsed time (what you see on this machine
now; the 1-minute load average is recorded next to it).

Run: ``python benchmarks/synth_speed.py [--images 200] [--seed 0]``
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import cv2  # noqa: E402

from describeme.data.synth import SynthConfig, render_image  # noqa: E402
from describeme.data.synth.writer import write_image_dataset  # noqa: E402

RESULT = Path(__file__).resolve().parent / "results" / "synth_speed.json"


def _rates(count: int, wall0: float, cpu0: float) -> tuple[float, float]:
    return count / (time.process_time() - cpu0), count / (time.perf_counter() - wall0)


def bench_render(config: SynthConfig, seed: int, count: int) -> tuple[float, float, int]:
    persons = 0
    wall0, cpu0 = time.perf_counter(), time.process_time()
    for index in range(count):
        persons += render_image(config, seed, index).num_persons
    return (*_rates(count, wall0, cpu0), persons)


def bench_write(config: SynthConfig, seed: int, count: int) -> tuple[float, float]:
    with tempfile.TemporaryDirectory() as tmp:
        wall0, cpu0 = time.perf_counter(), time.process_time()
        write_image_dataset(Path(tmp) / "ds", config, seed, count, workers=1)
        return _rates(count, wall0, cpu0)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--images", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    cv2.setNumThreads(1)  # one core: the figure is per core
    config = SynthConfig(width=512, height=384)
    bench_render(config, args.seed + 1, 5)  # warm-up (imports, caches)
    render_cpu, render_wall, persons = bench_render(config, args.seed, args.images)
    write_cpu, write_wall = bench_write(config, args.seed, args.images)
    result = {
        "benchmark": "synth_speed",
        "image_size": [512, 384],
        "images": args.images,
        "mean_persons_per_image": round(persons / args.images, 2),
        "render_images_per_s_per_core_cpu": round(render_cpu, 1),
        "render_write_images_per_s_per_core_cpu": round(write_cpu, 1),
        "render_images_per_s_wall": round(render_wall, 1),
        "render_write_images_per_s_wall": round(write_wall, 1),
        "load_average_1min": round(os.getloadavg()[0], 2),
        "target_images_per_s_per_core": 50,
        "machine": f"2-core CPU shared, {platform.machine()}, Python {sys.version.split()[0]}, "
        f"OpenCV {cv2.__version__}, single process, cv2/OMP threads = 1",
    }
    RESULT.parent.mkdir(parents=True, exist_ok=True)
    RESULT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
