"""Scoring a whole dataset: a model's predict function or a saved-predictions folder.

The loop streams: each image's ground truth and prediction are read, folded into a
:class:`ParsingEvaluator` and dropped. For a folder, reader threads work a few images ahead
(PNG decoding releases the GIL), and ``workers > 1`` splits the images into consecutive
chunks scored in separate processes whose evaluators are merged in order, which gives the
same report as one process.
"""

from __future__ import annotations

import hashlib
import logging
import multiprocessing
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from describeme.data import layout
from describeme.errors import DataError
from describeme.labels import NUM_KEYPOINTS
from describeme.models.metrics.evaluator import ParsingEvaluator, Prediction, Scores
from describeme.models.metrics.predictions import (
    KEYPOINTS_JSON,
    PRIMARY_RANKING,
    SCORES_JSON,
    load_keypoints,
    load_scores,
    read_prediction,
)

log = logging.getLogger(__name__)
PredictFn = Callable[[Any, str], Prediction]  # (sample, image_id) -> its prediction
Wrap = Callable[[Iterable[str], int], Iterable[str]]  # (ids, total) -> ids, e.g. a progress bar


def files_hash(paths: Iterable[Path]) -> str:
    """sha256 over the names and bytes of ``paths`` (in the given order); first 16 hex digits."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.name.encode())
        if path.is_file():
            digest.update(path.read_bytes())
    return digest.hexdigest()[:16]


def _label_files(root: Path, ids: Iterable[str]) -> Iterator[Path]:
    yield root / layout.DATASET_YAML
    for folder in (layout.CATEGORY_IDS, layout.HUMAN_IDS, *layout.CHARACTERISTIC_DIRS.values()):
        for image_id in ids:
            yield root / folder / f"{image_id}.png"
    yield root / SCORES_JSON
    yield root / KEYPOINTS_JSON


def has_characteristics(root: Path) -> bool:
    """Whether a layout folder holds all three characteristic map folders."""
    return all((root / folder).is_dir() for folder in layout.CHARACTERISTIC_DIRS.values())


@dataclass
class FolderPredictor:
    """``predict(sample, image_id)`` reading saved predictions (picklable, for workers).

    Attributes:
        root: the predictions folder.
        scores: image id -> ranking -> scores, from ``scores.json``.
        keypoints: image id -> ((K, 17, 3), (K,)) from ``keypoints.json``, or None.
    """

    root: Path
    scores: dict[str, dict[str, Scores]] = field(default_factory=dict)
    keypoints: dict[str, tuple[np.ndarray, np.ndarray]] | None = None

    def __call__(self, sample: Any, image_id: str) -> Prediction:
        kp = None
        if self.keypoints is not None:
            empty = (np.zeros((0, NUM_KEYPOINTS, 3), np.float32), np.zeros(0))
            kp = self.keypoints.get(image_id, empty)
        return read_prediction(self.root, image_id, self.scores.get(image_id), kp)


@dataclass
class TruthReader:
    """Reads an image's ground truth: the full ``Sample``, or only its label maps.

    Label maps are enough (and skip decoding the photo) when keypoints are not scored and the
    prediction does not need the image. Picklable: each process opens the dataset itself.
    """

    root: Path
    split: str | None
    maps_only: bool
    _dataset: Any = field(default=None, repr=False)

    def __call__(self, image_id: str) -> Any:
        from describeme.data.readers import open_dataset, read_label_maps

        if self._dataset is None:
            self._dataset = open_dataset(self.root, split=self.split)
        if self.maps_only:
            return read_label_maps(self.root, image_id, info=self._dataset.info)
        return self._dataset.sample_by_id(image_id)

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "_dataset": None}


def _score_images(
    ids: list[str],
    read_truth: TruthReader,
    predict: PredictFn,
    settings: dict[str, Any],
    prefetch: int,
    wrap: Wrap | None = None,
) -> ParsingEvaluator:
    """Scores ``ids`` in order with a fresh evaluator (runs in a worker process too)."""
    evaluator = ParsingEvaluator(**settings)

    def load(image_id: str) -> tuple[Any, Prediction]:
        sample = read_truth(image_id)
        return sample, predict(sample, image_id)

    ordered = wrap(ids, len(ids)) if wrap is not None else ids
    for image_id, (sample, prediction) in _read_ahead(ordered, load, prefetch):
        evaluator.update(sample, prediction, image_id)
    return evaluator


def _score_chunk(job: tuple) -> ParsingEvaluator:
    return _score_images(*job)


def evaluate_dataset(
    data_root: str | Path,
    predict: PredictFn,
    split: str | None = None,
    limit: int | None = None,
    pgn_compat: bool = False,
    characteristics: bool = True,
    keypoints: bool = False,
    rankings: tuple[str, ...] = (PRIMARY_RANKING,),
    wrap: Wrap | None = None,
    label_roots: dict[str, Path] | None = None,
    prefetch: int = 0,
    needs_image: bool = True,
    workers: int = 1,
) -> dict[str, Any]:
    """Scores ``predict`` on every image of a dataset folder; returns the report dict.

    Args:
        data_root: dataset root (any layout ``open_dataset`` reads).
        predict: ``predict(sample, image_id) -> Prediction`` (a model, or a folder reader).
        split: dataset split (``<split>_id.txt``) or None for every image.
        limit: evaluate the first N images only.
        pgn_compat: PGN's duplicate quirk for AP^r / AP^cr.
        characteristics: score color/size/pattern when the dataset has them.
        keypoints: score keypoints when the dataset has them.
        rankings: score rankings, the primary first.
        wrap: optional ``wrap(ids, total)`` iterator wrapper (a progress bar; one process).
        label_roots: report name -> another layout folder to record (root and content hash of
            the evaluated images' files), e.g. ``{"predictions": pred_root}``.
        prefetch: read (and predict) this many images ahead in reader threads; use it when
            ``predict`` only reads files (PNG decoding releases the GIL), not for a model.
        needs_image: ``predict`` uses ``sample.image``; False lets ground truth be read as
            label maps only (no photo decoding) when keypoints are not scored.
        workers: processes; > 1 needs a picklable ``predict`` (e.g. :class:`FolderPredictor`).
    """
    from describeme.data.readers import open_dataset

    data_root = Path(data_root)
    if limit is not None and limit < 0:
        raise ValueError(f"limit must be >= 0, got {limit}")
    if workers < 1:
        raise ValueError(f"workers must be >= 1, got {workers}")
    dataset = open_dataset(data_root, split=split)
    ids = list(dataset.ids[:limit])
    if not ids:
        where = f" (split {split!r})" if split else ""
        raise DataError(f"no images to evaluate in {data_root}{where}")
    first = dataset.sample_by_id(ids[0])
    keypoints = keypoints and first.keypoints is not None
    settings = {"pgn_compat": pgn_compat, "keypoints": keypoints, "rankings": rankings,
                "characteristics": characteristics and first.has_characteristics}  # fmt: skip
    maps_only = not keypoints and not needs_image and dataset.kind != "coco"
    read_truth = TruthReader(data_root, split, maps_only)
    chunks = [list(c) for c in np.array_split(np.array(ids, dtype=object), min(workers, len(ids)))]
    if len(chunks) == 1:
        evaluator = _score_images(ids, read_truth, predict, settings, prefetch, wrap)
    else:
        jobs = [(chunk, read_truth, predict, settings, prefetch) for chunk in chunks]
        context = multiprocessing.get_context("spawn")  # no fork: threads may be running
        with ProcessPoolExecutor(len(chunks), mp_context=context) as pool:
            evaluator, *rest = pool.map(_score_chunk, jobs)
        for other in rest:
            evaluator.merge(other)
    report = evaluator.compute()
    data_hash = files_hash(_label_files(data_root, ids))
    report["data"] = {"root": str(data_root), "split": split, "kind": dataset.kind,
                      "images": len(ids), "hash": data_hash}  # fmt: skip
    for name, root in (label_roots or {}).items():
        report[name] = {"root": str(root), "hash": files_hash(_label_files(root, ids))}
    return report


def _read_ahead(
    ids: Iterable[str], load: Callable[[str], Any], depth: int
) -> Iterator[tuple[str, Any]]:
    """Yields ``(id, load(id))`` in order, loading up to ``depth`` ids ahead in two threads."""
    if depth <= 0:
        for image_id in ids:
            yield image_id, load(image_id)
        return
    # Two readers: decoding (OpenCV, numpy) releases the GIL, so they overlap with scoring.
    with ThreadPoolExecutor(max_workers=2, thread_name_prefix="eval-read") as pool:
        pending: deque = deque()
        for image_id in ids:
            pending.append((image_id, pool.submit(load, image_id)))
            if len(pending) > depth:
                done_id, future = pending.popleft()
                yield done_id, future.result()
        while pending:
            done_id, future = pending.popleft()
            yield done_id, future.result()


def evaluate_predictions(
    data_root: str | Path,
    pred_root: str | Path,
    split: str | None = None,
    limit: int | None = None,
    pgn_compat: bool = False,
    wrap: Wrap | None = None,
    workers: int = 1,
) -> dict[str, Any]:
    """Scores a prediction folder (``describeme.models.metrics.predictions``) against a dataset.

    Characteristic metrics are skipped when the folder has no characteristic maps, keypoint AP
    when it has no ``keypoints.json``; every other file missing for an evaluated image is an
    error naming it.
    """
    from describeme.data.readers import open_dataset

    pred_root = Path(pred_root)
    if not pred_root.is_dir():
        raise DataError(f"predictions folder {pred_root} not found or not a directory")
    scores, rankings = load_scores(pred_root)
    unknown = sorted(set(scores) - set(open_dataset(data_root, split=split).ids))
    if unknown:
        raise DataError(f"{pred_root / SCORES_JSON}: scores for image id(s) not in the dataset, "
                        f"e.g. {unknown[:3]}")  # fmt: skip
    predict = FolderPredictor(pred_root, scores, load_keypoints(pred_root))
    characteristics = has_characteristics(pred_root)
    if not characteristics:
        log.info("%s has no Color/Size/Pattern_ids: characteristic metrics skipped", pred_root)
    return evaluate_dataset(data_root, predict, split, limit, pgn_compat, characteristics,
                            predict.keypoints is not None, rankings, wrap,
                            {"predictions": pred_root}, prefetch=4, needs_image=False,
                            workers=workers)  # fmt: skip
