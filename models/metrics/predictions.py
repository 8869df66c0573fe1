"""Saved predictions on disk, and scoring a prediction folder against a dataset.

A prediction folder uses the dataset layout (``describeme.data.layout``) so a dataset scored
against itself gives 1.0 and other systems' outputs can be converted and scored::

    dataset.yaml          optional; present (format describeme-images) = ids are ours, absent =
                          read like a CIHP/CCIHP folder (same id mapping as the readers)
    Category_ids/<id>.png part class per pixel
    Human_ids/<id>.png    person index per pixel (1..P); a part instance is (person, class)
    Instance_ids/<id>.png optional, not needed (instances come from the two maps above)
    Color_ids/, Size_ids/, Pattern_ids/<id>.png   optional characteristic maps
    scores.json           optional scores; anything missing counts as 1.0
    keypoints.json        optional COCO results list (image_id = the image's file stem);
                          without it, the layout's annotations/person_keypoints.json (COCO
                          ground-truth format) is read as predictions with score 1.0

``scores.json``::

    {"<image_id>": {"persons": {"<human_id>": 0.93, ...},
                    "parts": {"<22*(human_id-1)+class>": 0.81, ...},
                    "rankings": {"qam": {"persons": {...}, "parts": {...}}}}}

``persons``/``parts`` are the raw ranking (``score``); each entry of ``rankings`` adds an
alternative ranking (e.g. QANet's ``qam``) scored as ``apr_vol_qam``, ``app_vol_qam``, ...

``keypoints.json``: ``[{"image_id": "<id>", "category_id": 1, "keypoints": [x, y, v] * 17,
"score": s}, ...]``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np

from describeme.data import layout
from describeme.errors import DataError
from describeme.labels import NUM_KEYPOINTS
from describeme.models.metrics.evaluator import Prediction, Scores

SCORES_JSON = "scores.json"
KEYPOINTS_JSON = "keypoints.json"
PRIMARY_RANKING = "score"


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: invalid JSON at line {exc.lineno}, column {exc.colno}: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read: {exc}") from None


def _score_map(value: Any, path: Path, key: str) -> dict[int, float]:
    if not isinstance(value, dict):
        raise DataError(
            f"{path}: {key} must be an object of id -> score, got {type(value).__name__}"
        )
    out: dict[int, float] = {}
    for raw_id, score in value.items():
        try:
            out[int(raw_id)] = float(score)
        except (TypeError, ValueError):
            raise DataError(
                f"{path}: {key}[{raw_id!r}] must map an integer id to a number, got {score!r}"
            ) from None
        if not np.isfinite(out[int(raw_id)]):
            raise DataError(f"{path}: {key}[{raw_id!r}] is not a finite number")
    return out


def load_scores(pred_root: str | Path) -> tuple[dict[str, dict[str, Scores]], tuple[str, ...]]:
    """Reads ``scores.json`` if present.

    Returns:
        ``(image_id -> ranking -> Scores, ranking names with the primary first)``.
    """
    path = Path(pred_root) / SCORES_JSON
    if not path.is_file():
        return {}, (PRIMARY_RANKING,)
    data = _read_json(path)
    if not isinstance(data, dict):
        raise DataError(
            f"{path}: must be an object keyed by image id "
            "(see describeme.models.metrics.predictions)"
        )
    out: dict[str, dict[str, Scores]] = {}
    rankings: list[str] = [PRIMARY_RANKING]
    for image_id, entry in data.items():
        if not isinstance(entry, dict):
            raise DataError(f"{path}: [{image_id!r}] must be an object with persons/parts")
        unknown = set(entry) - {"persons", "parts", "rankings"}
        if unknown:
            raise DataError(
                f"{path}: [{image_id!r}] has unknown key(s) {sorted(unknown)}; "
                "expected persons, parts, rankings"
            )
        where = f"[{image_id!r}]"
        per_image = {
            PRIMARY_RANKING: Scores(
                _score_map(entry.get("persons", {}), path, f"{where}.persons"),
                _score_map(entry.get("parts", {}), path, f"{where}.parts"),
            )
        }
        extra = entry.get("rankings", {})
        if not isinstance(extra, dict):
            raise DataError(f"{path}: {where}.rankings must be an object of name -> scores")
        for name, ranked in extra.items():
            if name == PRIMARY_RANKING or not isinstance(ranked, dict):
                raise DataError(
                    f"{path}: {where}.rankings[{name!r}] must be an object with "
                    f"persons/parts and not be named {PRIMARY_RANKING!r}"
                )
            per_image[name] = Scores(
                _score_map(ranked.get("persons", {}), path, f"{where}.rankings.{name}.persons"),
                _score_map(ranked.get("parts", {}), path, f"{where}.rankings.{name}.parts"),
            )
            if name not in rankings:
                rankings.append(name)
        out[str(image_id)] = per_image
    return out, tuple(rankings)


def load_keypoints(pred_root: str | Path) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """Reads ``keypoints.json`` (COCO results): image_id -> ((K, 17, 3), (K,)).

    Falls back to the dataset layout's COCO annotation file (so a dataset scored against
    itself gets keypoint AP 1.0); None when neither exists.
    """
    path = Path(pred_root) / KEYPOINTS_JSON
    if not path.is_file():
        return _keypoints_from_annotations(Path(pred_root) / layout.COCO_KEYPOINTS)
    data = _read_json(path)
    if not isinstance(data, list):
        raise DataError(f"{path}: must be a COCO results list of {{image_id, keypoints, score}}")
    grouped: dict[str, tuple[list[np.ndarray], list[float]]] = {}
    for index, item in enumerate(data):
        try:
            points = np.asarray(item["keypoints"], dtype=np.float32).reshape(NUM_KEYPOINTS, 3)
            score = float(item.get("score", 1.0))
            image_id = str(item["image_id"])
        except (KeyError, TypeError, ValueError, AttributeError):
            raise DataError(
                f"{path}: item {index} needs image_id, 51 keypoint numbers and a numeric score"
            ) from None
        points_list, scores = grouped.setdefault(image_id, ([], []))
        points_list.append(points)
        scores.append(score)
    return {k: (np.stack(p), np.asarray(s)) for k, (p, s) in grouped.items()}


def read_prediction(
    pred_root: str | Path,
    image_id: str,
    scores: dict[str, Scores] | None = None,
    keypoints: tuple[np.ndarray, np.ndarray] | None = None,
) -> Prediction:
    """Reads one image's predicted maps (a missing file raises ``DataError`` naming it)."""
    from describeme.data.readers import read_label_maps

    maps = read_label_maps(pred_root, image_id)
    return Prediction(
        parts=maps.parts,
        humans=maps.humans,
        color=maps.color,
        size=maps.size,
        pattern=maps.pattern,
        scores=scores or {},
        keypoints=None if keypoints is None else keypoints[0],
        keypoint_scores=None if keypoints is None else keypoints[1],
        source=maps.source,
    )


class PredictionWriter:
    """Writes predictions in the folder format above (for models and converters).

    Use as a context manager; ``scores.json``, ``keypoints.json`` and ``dataset.yaml`` are
    written on exit.

    Args:
        root: output folder (created).
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        self._scores: dict[str, Any] = {}
        self._keypoints: list[dict[str, Any]] = []

    def __enter__(self) -> PredictionWriter:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def write(self, image_id: str, prediction: Prediction) -> None:
        """Writes one image's maps (16-bit person map) and records its scores/keypoints."""
        import cv2

        maps = {
            layout.CATEGORY_IDS: prediction.parts.astype(np.uint8),
            layout.HUMAN_IDS: prediction.humans.astype(np.uint16),
        }
        for kind, folder in layout.CHARACTERISTIC_DIRS.items():
            if getattr(prediction, kind) is not None:
                maps[folder] = getattr(prediction, kind).astype(np.uint8)
        for folder, array in maps.items():
            path = self.root / folder / f"{image_id}.png"
            path.parent.mkdir(parents=True, exist_ok=True)
            if not cv2.imwrite(str(path), array):
                raise DataError(f"{path}: cannot write PNG")
        entry: dict[str, Any] = {}
        for name, ranked in prediction.scores.items():
            block = {
                "persons": {str(k): v for k, v in ranked.persons.items()},
                "parts": {str(k): v for k, v in ranked.parts.items()},
            }
            if name == PRIMARY_RANKING:
                entry.update(block)
            else:
                entry.setdefault("rankings", {})[name] = block
        if entry:
            self._scores[image_id] = entry
        if prediction.keypoints is not None:
            kp_scores = (
                np.ones(len(prediction.keypoints))
                if prediction.keypoint_scores is None
                else prediction.keypoint_scores
            )
            for points, score in zip(prediction.keypoints, kp_scores, strict=True):
                self._keypoints.append(
                    {
                        "image_id": image_id,
                        "category_id": 1,
                        "score": float(score),
                        "keypoints": np.asarray(points, float).reshape(-1).tolist(),
                    }
                )

    def close(self) -> None:
        """Writes the JSON side files and a ``dataset.yaml`` marking the ids as ours."""
        import yaml

        self.root.mkdir(parents=True, exist_ok=True)
        info = {
            "format": layout.FORMAT_IMAGES,
            "version": layout.LAYOUT_VERSION,
            "instance_id_rule": layout.RULE_CCIHP,
            "predictions": True,
        }
        (self.root / layout.DATASET_YAML).write_text(yaml.safe_dump(info), encoding="utf-8")
        if self._scores:
            (self.root / SCORES_JSON).write_text(json.dumps(self._scores), encoding="utf-8")
        if self._keypoints:
            (self.root / KEYPOINTS_JSON).write_text(json.dumps(self._keypoints), encoding="utf-8")


def _keypoints_from_annotations(path: Path) -> dict[str, tuple[np.ndarray, np.ndarray]] | None:
    """The layout's COCO ground truth as keypoint predictions (score 1.0 each).

    People without any labelled keypoint are left out: COCO ignores them as ground truth, so
    as predictions they could only be false positives.
    """
    if not path.is_file():
        return None
    from describeme.data.readers import CocoKeypointIndex

    grouped: dict[str, tuple[np.ndarray, np.ndarray]] = {}
    for stem, pairs in CocoKeypointIndex(path).items():
        try:
            points = [np.asarray(k, np.float32).reshape(NUM_KEYPOINTS, 3) for _, k in pairs]
        except (TypeError, ValueError):
            raise DataError(f"{path}: image {stem} has keypoints that are not 51 numbers") from None
        labelled = [p for p in points if (p[:, 2] > 0).any()]
        if labelled:
            grouped[stem] = (np.stack(labelled), np.ones(len(labelled)))
    return grouped
