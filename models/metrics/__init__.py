"""Evaluation metrics: the published human-parsing, keypoint and tracking protocols.

numpy + pycocotools + motmetrics only (no torch), so the metrics run anywhere the data does.

- :mod:`.confusion`: mIoU from one dataset-wide confusion matrix.
- :mod:`.region`: AP^r / AP^r_vol / AP^r_50 and AP^cr (PGN / CCIHP protocol).
- :mod:`.person`: AP^p / AP^p_50 / AP^p_vol / PCP (MHP v2, Parsing R-CNN, QANet).
- :mod:`.coco`: COCO keypoint AP and person mask AP through pycocotools.
- :mod:`.tracking`: MOTA, IDF1, ID switches, MT/ML through motmetrics.
- :mod:`.evaluator`: :class:`ParsingEvaluator` combining them image by image.
- :mod:`.predictions`: the saved-predictions folder format (reader and writer).
- :mod:`.dataset_eval`: scoring a dataset folder (a model's predict function or a folder).
"""

from __future__ import annotations

from describeme.models.metrics.ap import THRESHOLDS, average_precision, voc_ap
from describeme.models.metrics.confusion import ConfusionMatrix
from describeme.models.metrics.evaluator import ParsingEvaluator, Prediction, Scores
from describeme.models.metrics.person import PersonAP
from describeme.models.metrics.region import RegionAP
from describeme.models.metrics.tracking import evaluate_mot, read_mot_file

__all__ = [
    "THRESHOLDS",
    "ConfusionMatrix",
    "ParsingEvaluator",
    "PersonAP",
    "Prediction",
    "RegionAP",
    "Scores",
    "average_precision",
    "evaluate_mot",
    "read_mot_file",
    "voc_ap",
]
