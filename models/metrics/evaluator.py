"""``ParsingEvaluator``: every parsing metric of the project, accumulated image by image.

Each :meth:`ParsingEvaluator.update` turns one image's ground-truth and predicted maps into
small count tables (confusion matrices, instance areas and intersections) and per-detection
true-positive flags, then drops the maps, so a whole dataset streams through in bounded
memory. :meth:`ParsingEvaluator.compute` returns the JSON-ready report with the command
contract's keys (``miou``, ``apr_vol``, ``app_vol``, ``pcp_50``, ``color_apcr_vol``, ...).

Scores: a prediction may carry several *rankings* (``score`` = the model's raw scores,
``qam`` = QANet quality, ...). AP^r and AP^p are computed once per ranking; the first is the
primary one and gives the contract keys, the others add ``<key>_<ranking>`` entries, which is
how a QAM-vs-raw comparison is reported. A missing score counts as 1.0.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np

from describeme.errors import DataError
from describeme.labels import CHARACTERISTICS, NUM_PARTS, PARTS
from describeme.models.metrics.ap import json_number
from describeme.models.metrics.coco import CocoEvaluator
from describeme.models.metrics.confusion import ConfusionMatrix
from describeme.models.metrics.counts import PersonPixels, instance_counts
from describeme.models.metrics.person import PersonAP
from describeme.models.metrics.region import RegionAP

PART_INSTANCE_STRIDE = 22  # our instance-id rule 22*(human-1)+class (describeme.data.layout)
MAX_HUMAN_ID = 2978  # largest person index the 16-bit 22h+c rule can encode


class LabelMapsLike(Protocol):
    """What the evaluator reads from a ground truth (a ``Sample`` or reader ``LabelMaps``)."""

    parts: np.ndarray
    humans: np.ndarray
    color: np.ndarray | None
    size: np.ndarray | None
    pattern: np.ndarray | None


@dataclass
class Scores:
    """Scores of one prediction under one ranking.

    Attributes:
        persons: person index (value in the Human_ids map) -> score.
        parts: part-instance id ``22*(person-1)+class`` -> score.
    """

    persons: dict[int, float] = field(default_factory=dict)
    parts: dict[int, float] = field(default_factory=dict)


@dataclass
class Prediction:
    """One image's prediction in the dataset's own layout.

    Attributes:
        parts: (H, W) part class map (0 = background).
        humans: (H, W) person index map (0 = none, 1..P).
        color, size, pattern: (H, W) characteristic maps, or None.
        scores: ranking name -> :class:`Scores`; empty = every score 1.0.
        keypoints: (K, 17, 3) predicted keypoints (x, y, confidence) or None.
        keypoint_scores: (K,) their person scores (default 1.0).
        source: where it came from, for error messages.
    """

    parts: np.ndarray
    humans: np.ndarray
    color: np.ndarray | None = None
    size: np.ndarray | None = None
    pattern: np.ndarray | None = None
    scores: dict[str, Scores] = field(default_factory=dict)
    keypoints: np.ndarray | None = None
    keypoint_scores: np.ndarray | None = None
    source: str = ""


class ParsingEvaluator:
    """Accumulates mIoU, AP^r, AP^p/PCP, AP^cr and COCO keypoint/mask AP over a dataset.

    Args:
        pgn_compat: AP^r/AP^cr with PGN's duplicate quirk instead of one-to-one matching.
        characteristics: also score color/size/pattern maps (mIoU and AP^cr).
        keypoints: score keypoints with pycocotools (needs ground-truth keypoints).
        masks: score person masks with pycocotools.
        rankings: ranking names; the first is primary (see the module docstring).
    """

    def __init__(
        self,
        pgn_compat: bool = False,
        characteristics: bool = True,
        keypoints: bool = False,
        masks: bool = True,
        rankings: tuple[str, ...] = ("score",),
    ) -> None:
        if not rankings:
            raise ValueError("rankings must name at least one score ranking")
        self.pgn_compat = pgn_compat
        self.characteristics = characteristics
        self.rankings = tuple(rankings)
        self.num_images = 0
        self.parts_iou = ConfusionMatrix(PARTS)
        self.region_ap = {r: RegionAP(PARTS, pgn_compat) for r in self.rankings}
        self.person_ap = {r: PersonAP() for r in self.rankings}
        self.char_iou = {k: ConfusionMatrix(names) for k, names in CHARACTERISTICS.items()}
        self.char_ap = {k: RegionAP(names, pgn_compat) for k, names in CHARACTERISTICS.items()}
        self.coco = CocoEvaluator(expect_keypoints=keypoints, expect_masks=masks)
        self.keypoints = keypoints
        self.masks = masks

    def update(self, gt: LabelMapsLike, pred: Prediction, image_id: str = "") -> None:
        """Adds one image (raises :class:`DataError` naming the source on bad input)."""
        where = _where(gt, pred, image_id)
        self._check(gt, pred, where)
        # Confusion counts first: they validate every class map before any state changes.
        kinds = ["parts", *(CHARACTERISTICS if self.characteristics else ())]
        matrices = {
            kind: self._confusion(kind).counts(
                getattr(gt, kind),
                getattr(pred, kind),
                f"{where} ground-truth {kind}",
                f"{where} predicted {kind}",
            )
            for kind in kinds
        }
        num_pred = int(pred.humans.max()) if pred.humans.size else 0
        tables = {
            r: _score_tables(pred.scores.get(r, Scores()), num_pred, where, r)
            for r in self.rankings
        }
        for kind, matrix in matrices.items():
            self._confusion(kind).add(matrix)
        persons = PersonPixels(gt.humans, pred.humans)
        counts = instance_counts(gt.parts, pred.parts, persons, NUM_PARTS)
        for ranking, (person_scores, part_scores) in tables.items():
            self.region_ap[ranking].update(counts, part_scores)
            self.person_ap[ranking].update(counts, person_scores)
        primary_person_scores = tables[self.rankings[0]][0]
        for kind in kinds[1:]:
            num_classes = len(CHARACTERISTICS[kind])
            char_counts = instance_counts(
                getattr(gt, kind), getattr(pred, kind), persons, num_classes
            )
            # A characterized region is scored by its person's score.
            table = np.repeat(primary_person_scores[:, None], num_classes, axis=1)
            self.char_ap[kind].update(char_counts, table)
        self._update_coco(gt, pred, image_id or str(self.num_images), primary_person_scores)
        self.num_images += 1

    def _confusion(self, kind: str) -> ConfusionMatrix:
        return self.parts_iou if kind == "parts" else self.char_iou[kind]

    def _update_coco(
        self, gt: LabelMapsLike, pred: Prediction, image_id: str, person_scores: np.ndarray
    ) -> None:
        gt_keypoints = getattr(gt, "keypoints", None) if self.keypoints else None
        if not (self.masks or gt_keypoints is not None):
            return
        self.coco.add_ground_truth(image_id, np.asarray(gt.humans), gt_keypoints)
        if self.masks:
            self.coco.add_mask_detections(image_id, np.asarray(pred.humans), person_scores)
        if self.keypoints and pred.keypoints is not None and len(pred.keypoints):
            kp_scores = (
                np.ones(len(pred.keypoints))
                if pred.keypoint_scores is None
                else pred.keypoint_scores
            )
            self.coco.add_keypoint_detections(image_id, *gt.humans.shape, pred.keypoints, kp_scores)

    def _check(self, gt: LabelMapsLike, pred: Prediction, where: str) -> None:
        shape = gt.parts.shape
        maps = ["parts", "humans"] + (list(CHARACTERISTICS) if self.characteristics else [])
        for name in maps:
            g, p = getattr(gt, name), getattr(pred, name)
            if g is None:
                raise DataError(
                    f"{where}: ground truth has no {name} map; evaluate with "
                    "characteristics disabled"
                )
            if p is None:
                raise DataError(f"{where}: prediction has no {name} map (missing file?)")
            if g.shape != shape or p.shape != shape:
                raise DataError(
                    f"{where}: {name} map size mismatch: ground truth {g.shape}, "
                    f"prediction {p.shape}, expected {shape}"
                )
        for label, humans in (("ground-truth", gt.humans), ("predicted", pred.humans)):
            if humans.dtype.kind not in "ui":
                raise DataError(f"{where}: {label} person map must be integer, got {humans.dtype}")
            if humans.size and (int(humans.min()) < 0 or int(humans.max()) > MAX_HUMAN_ID):
                raise DataError(
                    f"{where}: {label} person ids must lie in [0, {MAX_HUMAN_ID}], "
                    f"got {int(humans.min())}..{int(humans.max())}"
                )

    def merge(self, other: ParsingEvaluator) -> None:
        """Folds in an evaluator that scored later images with the same settings.

        Merging evaluators of consecutive chunks, in order, gives the report of one evaluator
        over all images (detections keep their dataset order for tie-breaking; PCP sums may
        differ in the last bits from the summation order).
        """
        if (other.rankings, other.pgn_compat, other.characteristics) != (
            self.rankings,
            self.pgn_compat,
            self.characteristics,
        ):
            raise ValueError("cannot merge evaluators with different settings")
        self.num_images += other.num_images
        self.parts_iou.merge(other.parts_iou)
        for ranking in self.rankings:
            self.region_ap[ranking].merge(other.region_ap[ranking])
            self.person_ap[ranking].merge(other.person_ap[ranking])
        for kind in CHARACTERISTICS:
            self.char_iou[kind].merge(other.char_iou[kind])
            self.char_ap[kind].merge(other.char_ap[kind])
        self.coco.merge(other.coco)

    def compute(self) -> dict[str, Any]:
        """The report: contract keys, per-threshold lists and per-class tables."""
        if self.num_images == 0:
            raise DataError("no images were evaluated (empty dataset or --limit 0)")
        primary = self.rankings[0]
        region = {r: ap.compute() for r, ap in self.region_ap.items()}
        person = {r: ap.compute() for r, ap in self.person_ap.items()}
        report: dict[str, Any] = {
            "num_images": self.num_images,
            "miou": json_number(self.parts_iou.miou()),
            "pixel_accuracy": json_number(self.parts_iou.pixel_accuracy()),
            **_ap_keys(region[primary], person[primary], ""),
        }
        for kind in CHARACTERISTICS:
            enabled = self.characteristics
            report[f"{kind}_miou"] = json_number(self.char_iou[kind].miou()) if enabled else None
            char = self.char_ap[kind].compute() if enabled else None
            report[f"{kind}_apcr_vol"] = char["ap_vol"] if char else None
            report[f"{kind}_apcr_50"] = char["ap_50"] if char else None
        report.update(self.coco.compute())
        for ranking in self.rankings[1:]:
            report.update(_ap_keys(region[ranking], person[ranking], f"_{ranking}"))
        report["apr"] = region[primary]["ap"]
        report["app"] = person[primary]["ap"]
        report["pcp"] = person[primary]["pcp"]
        report["per_class"] = self._tables(region[primary])
        report["settings"] = {
            "pgn_compat": self.pgn_compat,
            "characteristics": self.characteristics,
            "rankings": list(self.rankings),
        }
        return report

    def _tables(self, region: Mapping[str, Any]) -> dict[str, Any]:
        tables: dict[str, Any] = {
            "part_iou": self.parts_iou.table(),
            "part_apr": region["per_class"],
        }
        if self.characteristics:
            for kind in CHARACTERISTICS:
                tables[f"{kind}_iou"] = self.char_iou[kind].table()
                tables[f"{kind}_apcr"] = self.char_ap[kind].compute()["per_class"]
        return tables


def _ap_keys(region: Mapping[str, Any], person: Mapping[str, Any], suffix: str) -> dict[str, Any]:
    return {
        f"apr_vol{suffix}": region["ap_vol"],
        f"apr_50{suffix}": region["ap_50"],
        f"app_vol{suffix}": person["ap_vol"],
        f"app_50{suffix}": person["ap_50"],
        f"pcp_50{suffix}": person["pcp_50"],
    }


def _where(gt: LabelMapsLike, pred: Prediction, image_id: str) -> str:
    source = pred.source or getattr(gt, "source", "") or ""
    return (
        f"image {image_id!r}" + (f" ({source})" if source else "")
        if image_id
        else (source or "image")
    )


def _score_tables(
    scores: Scores, num_pred: int, where: str, ranking: str
) -> tuple[np.ndarray, np.ndarray]:
    """(P+1,) person and (P+1, C) part-instance score tables, 1.0 where not given."""
    person = np.ones(num_pred + 1)
    for human, value in scores.persons.items():
        if not 1 <= int(human) <= num_pred:
            raise DataError(
                f"{where}: {ranking} score for person {human}, but the predicted "
                f"person map has persons 1..{num_pred}"
            )
        person[int(human)] = float(value)
    parts = np.ones((num_pred + 1, NUM_PARTS))
    for instance, value in scores.parts.items():
        human, cls = divmod(int(instance), PART_INSTANCE_STRIDE)
        human += 1
        if cls == 0 or not 1 <= human <= num_pred:
            raise DataError(
                f"{where}: {ranking} score for part instance {instance} "
                f"(= 22*(person-1)+class), which names no predicted part instance"
            )
        parts[human, cls] = float(value)
    return person, parts
