"""Reads the 20 real CIHP images with the CIHP reader and checks every label invariant.

Usage::

    python benchmarks/cihp_real20_smoke.py [--root ../shared/data/cihp_real20]
        [--out benchmarks/results/cihp_real20_smoke.json]

Checks per image: every map has the photo's size; part ids known to the CIHP mapping and
< 22 (or 255) after mapping; instance id == 20*(human-1)+class on foreground and 0 elsewhere;
human ids contiguous 1..N; part pixels <-> human pixels; every person's box non-empty. Also
times reading (reader only, and reader + training adapter at 384x512). Exits 0 with a message
when the folder is absent (the data is not part of the project), 1 on any violation.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

from describeme import labels
from describeme.data.readers import DatasetMapping, open_dataset, sample_violations
from describeme.data.sample import boxes_from_humans

log = logging.getLogger("cihp_real20_smoke")
REPO = Path(__file__).resolve().parents[1]
DEFAULT_ROOT = REPO.parent / "shared" / "data" / "cihp_real20"


def check_dataset(root: Path) -> dict:
    """Reads every image, returns per-image stats, violations and timings."""
    started = time.perf_counter()
    ds = open_dataset(root, kind="cihp")
    open_s = time.perf_counter() - started
    mapping = DatasetMapping(**ds.info["mapping"])
    violations: list[str] = []
    per_image: list[dict] = []
    read_times: list[float] = []
    class_pixels = np.zeros(labels.NUM_PARTS, dtype=np.int64)
    for image_id in ds.ids:
        t0 = time.perf_counter()
        sample = ds.sample_by_id(image_id)
        read_times.append(time.perf_counter() - t0)
        violations += sample_violations(sample, mapping)
        violations += _extra_checks(sample)
        counts = np.bincount(sample.parts.ravel(), minlength=256)
        class_pixels += counts[: labels.NUM_PARTS]
        per_image.append({
            "id": image_id, "height": sample.height, "width": sample.width,
            "persons": sample.num_persons, "ignore_pixels": int(counts[255]),
            "classes": [labels.PARTS[i] for i in np.flatnonzero(counts[1 : labels.NUM_PARTS]) + 1],
        })  # fmt: skip
    return {
        "images": len(ds), "open_s": open_s, "violations": violations, "per_image": per_image,
        "read_ms_mean": 1000 * float(np.mean(read_times)),
        "read_ms_max": 1000 * float(np.max(read_times)),
        "persons_total": int(sum(item["persons"] for item in per_image)),
        "class_pixels": {labels.PARTS[i]: int(n) for i, n in enumerate(class_pixels)},
    }  # fmt: skip


def _extra_checks(sample) -> list[str]:
    """What the Sample contract does not already enforce on construction."""
    out = []
    where = sample.source
    if sample.extra.get("instances") is None:
        out.append(f"{where}: no instance map read")
    elif sample.extra["instances"].shape != sample.image.shape[:2]:
        out.append(f"{where}: instance map size differs from the photo")
    if sample.num_persons == 0:
        out.append(f"{where}: no person")
    if not np.array_equal(sample.boxes, boxes_from_humans(sample.humans)):
        out.append(f"{where}: boxes do not match the human map")
    if sample.parts.dtype != np.uint8 or sample.humans.dtype != np.uint16:
        out.append(f"{where}: dtypes {sample.parts.dtype}/{sample.humans.dtype}")
    return out


def time_adapter(root: Path, repeats: int = 3) -> tuple[float, list[str]]:
    """Mean ms per item of the training adapter (read + augment + tensors) at 384x512.

    Also checks the augmented maps of every item (``_adapter_violations``).
    """
    import torch

    from describeme.models.datasets import ParsingTorchDataset

    torch.set_num_threads(1)
    adapter = ParsingTorchDataset(open_dataset(root, kind="cihp"), train=True, size=(384, 512))
    problems: list[str] = []
    elapsed = 0.0
    for epoch in range(repeats):
        adapter.set_epoch(epoch)
        for index in range(len(adapter)):
            started = time.perf_counter()
            item = adapter[index]
            elapsed += time.perf_counter() - started  # the checks below are not timed
            problems += _adapter_violations(item, f"{adapter.dataset.ids[index]}@{epoch}")
    return 1000 * elapsed / (repeats * len(adapter)), problems


def _adapter_violations(item: dict, where: str) -> list[str]:
    """Augmented maps must stay aligned: person pixels == labelled part pixels, masks == humans."""
    parts, humans = item["parts"], item["humans"]
    out = []
    if not bool(((humans > 0) == ((parts > 0) & (parts != 255))).all()):
        out.append(f"{where}: augmented human and part maps disagree")
    count = item["masks"].shape[0]
    if count != int(humans.max()) or item["boxes_xyxy"].shape[0] != count:
        out.append(f"{where}: {count} masks for {int(humans.max())} persons")
    elif count and not bool((item["masks"].sum(0) == (humans > 0)).all()):
        out.append(f"{where}: masks do not partition the person pixels")
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", type=Path, default=DEFAULT_ROOT)
    default_out = REPO / "benchmarks" / "results" / "cihp_real20_smoke.json"
    parser.add_argument("--out", type=Path, default=default_out)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (args.root / "Images").is_dir():
        log.info("%s not found: nothing to check (the real CIHP slice is optional)", args.root)
        return 0
    report = check_dataset(args.root)
    report["adapter_ms_per_item_384x512"], adapter_problems = time_adapter(args.root)
    report["violations"] += adapter_problems
    python = platform.python_version()
    report["machine"] = f"{platform.machine()} CPU, {_cores()} cores, Python {python}"
    report["root"] = str(args.root)
    # The machine is shared: the load says how much the timings above are to be trusted.
    report["load_average_1min"] = os.getloadavg()[0]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    log.info("%d images, %d persons, %d violations; read %.1f ms/image (max %.1f), "
             "adapter %.1f ms/item -> %s", report["images"], report["persons_total"],
             len(report["violations"]), report["read_ms_mean"], report["read_ms_max"],
             report["adapter_ms_per_item_384x512"], args.out)  # fmt: skip
    for line in report["violations"]:
        log.error("%s", line)
    return 1 if report["violations"] else 0


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 0


if __name__ == "__main__":
    sys.exit(main())
