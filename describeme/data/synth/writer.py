"""Writes synthetic samples in the dataset layout of :mod:`describeme.data.layout`."""

from __future__ import annotations

import json
import logging
import multiprocessing
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import yaml

from describeme.data import layout
from describeme.data.sample import Sample
from describeme.data.synth.config import SynthConfig
from describeme.data.synth.images import render_image
from describeme.errors import DataError
from describeme.labels import KEYPOINTS, PARTS, SKELETON

log = logging.getLogger(__name__)
# Label maps are flat regions: run-length deflate without row filters is 3x faster to write
# than the defaults and about as small.
PNG_PARAMS = [
    cv2.IMWRITE_PNG_COMPRESSION,
    1,
    cv2.IMWRITE_PNG_STRATEGY,
    cv2.IMWRITE_PNG_STRATEGY_RLE,
    cv2.IMWRITE_PNG_FILTER,
    cv2.IMWRITE_PNG_FILTER_NONE,
]
MAP_DIRS = (
    layout.IMAGES,
    layout.CATEGORY_IDS,
    layout.HUMAN_IDS,
    layout.INSTANCE_IDS,
    layout.COLOR_IDS,
    layout.SIZE_IDS,
    layout.PATTERN_IDS,
    layout.DESCRIPTIONS,
)


def prepare_output(out: Path, overwrite: bool) -> None:
    """Creates ``out``; refuses a non-empty folder unless ``overwrite``."""
    if out.exists() and not out.is_dir():
        raise DataError(f"--out {out} exists and is not a folder")
    if out.is_dir() and any(out.iterdir()) and not overwrite:
        raise DataError(f"--out {out} is not empty; pass --overwrite or choose a new folder")
    out.mkdir(parents=True, exist_ok=True)


def rle_column_major(mask: np.ndarray) -> dict[str, Any]:
    """COCO uncompressed RLE of a (H, W) bool mask: column-major runs starting with zeros."""
    return _rle_flat(np.asarray(mask, dtype=bool).ravel(order="F"), mask.shape[:2])


def _rle_flat(flat: np.ndarray, shape: tuple[int, ...]) -> dict[str, Any]:
    """RLE of a mask already flattened in column-major order."""
    change = np.flatnonzero(flat[1:] != flat[:-1]) + 1
    bounds = np.concatenate(([0], change, [flat.size]))
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0]:
        counts = [0] + counts
    return {"size": [int(shape[0]), int(shape[1])], "counts": counts}


def coco_annotations(sample: Sample, image_index: int) -> list[dict[str, Any]]:
    """COCO person annotations of one sample (ids are filled in by the caller)."""
    anns = []
    humans_f = sample.humans.ravel(order="F")  # one column-major copy shared by every person
    for k in range(sample.num_persons):
        flat = humans_f == k + 1
        x0, y0, x1, y1 = (float(v) for v in sample.boxes[k])
        kps = sample.keypoints[k] if sample.keypoints is not None else np.zeros((17, 3))
        anns.append(
            {
                "image_id": image_index,
                "category_id": 1,
                "iscrowd": 0,
                "bbox": [x0, y0, x1 - x0, y1 - y0],
                "area": float(flat.sum()),
                "segmentation": _rle_flat(flat, sample.humans.shape),
                "keypoints": [int(round(v)) for v in kps.ravel()],
                "num_keypoints": int((kps[:, 2] > 0).sum()),
            }
        )
    return anns


def write_sample(root: Path, sample: Sample, jpeg_quality: int = 95) -> None:
    """Writes one sample's image, label maps and description JSON under ``root``."""
    stem = sample.image_id
    maps = {
        layout.CATEGORY_IDS: sample.parts,
        layout.HUMAN_IDS: sample.humans.astype(np.uint8),
        layout.INSTANCE_IDS: layout.instance_ids(sample.humans, sample.parts),
        layout.COLOR_IDS: sample.color,
        layout.SIZE_IDS: sample.size,
        layout.PATTERN_IDS: sample.pattern,
    }
    if sample.num_persons > 255:
        raise DataError(f"{stem}: {sample.num_persons} people do not fit the 8-bit Human_ids map")
    ok = cv2.imwrite(
        str(root / layout.IMAGES / f"{stem}.jpg"),
        sample.image,
        [cv2.IMWRITE_JPEG_QUALITY, int(jpeg_quality)],
    )
    for folder, array in maps.items():
        ok &= cv2.imwrite(str(root / folder / f"{stem}.png"), array, PNG_PARAMS)
    if not ok:
        raise DataError(f"could not write sample {stem} under {root} (disk full or read-only?)")
    description = {
        "image_id": stem,
        "height": sample.height,
        "width": sample.width,
        "persons": sample.descriptions or [],
    }
    (root / layout.DESCRIPTIONS / f"{stem}.json").write_text(json.dumps(description))


def _render_and_write(job: tuple[SynthConfig, int, int, str]) -> list[dict[str, Any]]:
    config, seed, index, root = job
    sample = render_image(config, seed, index)
    write_sample(Path(root), sample, config.image_quality)
    return coco_annotations(sample, index)


def _jobs(config: SynthConfig, seed: int, count: int, root: Path) -> Iterator[tuple]:
    for index in range(count):
        yield config, seed, index, str(root)


def write_image_dataset(
    out: Path,
    config: SynthConfig,
    seed: int,
    count: int,
    workers: int = 1,
    overwrite: bool = False,
    wrap: Callable[[Iterable, int], Iterable] | None = None,
) -> Path:
    """Renders ``count`` images into ``out`` in the image-dataset layout.

    Args:
        out: output folder (created; must be empty unless ``overwrite``).
        config: engine settings.
        seed: stream seed; image ``i`` depends only on ``(seed, i)``, whatever ``workers`` is.
        count: number of images (> 0).
        workers: processes rendering in parallel.
        overwrite: allow a non-empty ``out``.
        wrap: wraps the result iterator (a progress bar), called with (iterable, count).

    Returns:
        ``out``.
    """
    if count <= 0:
        raise ValueError(f"--images must be positive, got {count}")
    if workers <= 0:
        raise ValueError(f"--workers must be positive, got {workers}")
    out = Path(out)
    prepare_output(out, overwrite)
    for folder in MAP_DIRS:
        (out / folder).mkdir(exist_ok=True)
    (out / layout.COCO_KEYPOINTS).parent.mkdir(exist_ok=True)
    images: list[dict[str, Any]] = []
    annotations: list[dict[str, Any]] = []
    for index, anns in enumerate(_run_jobs(_jobs(config, seed, count, out), workers, count, wrap)):
        size = {"height": config.height, "width": config.width}
        images.append({"id": index, "file_name": f"{index:06d}.jpg", **size})
        for ann in anns:
            ann["id"] = len(annotations) + 1
            annotations.append(ann)
    _write_coco(out / layout.COCO_KEYPOINTS, images, annotations)
    write_dataset_yaml(out, layout.FORMAT_IMAGES, config, seed, {"images": count})
    log.info("wrote %d images with %d people to %s", count, len(annotations), out)
    return out


def _run_jobs(
    jobs: Iterator[tuple], workers: int, count: int, wrap: Callable | None
) -> Iterator[list[dict[str, Any]]]:
    """Yields each job's COCO annotations in index order, in ``workers`` processes."""
    # spawn, not fork: the parent may hold threads (progress bar, torch) that fork would copy.
    pool = multiprocessing.get_context("spawn").Pool(workers) if workers > 1 else None
    try:
        results = (
            pool.imap(_render_and_write, jobs, chunksize=4)
            if pool
            else map(_render_and_write, jobs)
        )
        yield from (wrap(results, count) if wrap else results)
    finally:
        if pool:
            pool.close()
            pool.join()


def _write_coco(path: Path, images: list, annotations: list) -> None:
    categories = [
        {
            "id": 1,
            "name": "person",
            "supercategory": "person",
            "keypoints": list(KEYPOINTS),
            "skeleton": [[a + 1, b + 1] for a, b in SKELETON],
        }
    ]
    path.write_text(
        json.dumps(
            {
                "info": {"description": "describeme synthetic"},
                "images": images,
                "annotations": annotations,
                "categories": categories,
            }
        )
    )


def write_dataset_yaml(
    out: Path, fmt: str, config: SynthConfig, seed: int, extra: dict[str, Any]
) -> None:
    """Writes ``dataset.yaml`` naming the format, class set, id rule and generator args."""
    data = {
        "format": fmt,
        "version": layout.LAYOUT_VERSION,
        "classes": "ccihp",
        "parts": list(PARTS),
        "instance_id_rule": layout.RULE_CCIHP,
        "generator": {
            "name": "describeme.data.synth",
            "seed": int(seed),
            **extra,
            "config": config.model_dump(mode="json"),
        },
    }
    (out / layout.DATASET_YAML).write_text(yaml.safe_dump(data, sort_keys=False))
