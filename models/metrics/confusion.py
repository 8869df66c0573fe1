"""Semantic-segmentation mIoU from one confusion matrix accumulated over a dataset."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from describeme.errors import DataError

IGNORE = 255


def check_label_range(labels: np.ndarray, num_classes: int, what: str) -> None:
    """Raises :class:`DataError` naming ``what`` if a value is outside [0, C) and not 255."""
    flat = labels.reshape(-1)
    if flat.size == 0:
        return
    if flat.dtype.kind not in "ui":
        raise DataError(f"{what}: label map must be integer, got dtype {labels.dtype}")
    low = int(flat.min())
    if low < 0:
        raise DataError(
            f"{what}: label {low} is negative; expected ids in [0, {num_classes - 1}] or 255"
        )
    bad = (flat >= num_classes) & (flat != IGNORE)
    if bad.any():
        value = int(flat[np.argmax(bad)])
        raise DataError(
            f"{what}: label {value} out of range; "
            f"expected ids in [0, {num_classes - 1}] or 255 (ignore)"
        )


def _as_uint8(labels: np.ndarray, num_classes: int, what: str) -> np.ndarray:
    """The map as uint8 (checked first when it comes in a wider dtype)."""
    labels = np.asarray(labels)
    if labels.dtype == np.uint8:
        return labels
    check_label_range(labels, num_classes, what)
    return labels.astype(np.uint8)


class ConfusionMatrix:
    """Accumulates a (C, C+1) confusion matrix: rows ground truth, columns prediction.

    Ground-truth 255 pixels are skipped. A predicted 255 (no decision) goes to an extra last
    column: it is a miss for the true class and a false positive for none.

    Args:
        class_names: names of the C classes, background (id 0) included.
    """

    def __init__(self, class_names: Sequence[str]) -> None:
        self.class_names = tuple(class_names)
        self.num_classes = len(self.class_names)
        self.matrix = np.zeros((self.num_classes, self.num_classes + 1), dtype=np.int64)

    def counts(
        self,
        gt: np.ndarray,
        pred: np.ndarray,
        gt_what: str = "ground truth",
        pred_what: str = "prediction",
    ) -> np.ndarray:
        """One image's (C, C+1) confusion counts, checking the labels on the way.

        Raises:
            DataError: a label outside [0, C) and not 255, naming ``gt_what``/``pred_what``.
        """
        c = self.num_classes
        gt, pred = _as_uint8(gt, c, gt_what), _as_uint8(pred, c, pred_what)
        # One bincount over the 16-bit (gt, pred) code: 65,536 bins, no lookup tables; the
        # bins outside [0, C) and 255 double as the range check.
        code = (gt.reshape(-1).astype(np.uint16) << 8) | pred.reshape(-1)
        hist = np.bincount(code, minlength=1 << 16).reshape(256, 256)
        keep = np.r_[0:c, IGNORE]
        if hist[keep][:, keep].sum() != gt.size:
            check_label_range(gt, c, gt_what)
            check_label_range(pred, c, pred_what)
        return hist[:c][:, keep]  # (C, C+1): rows gt, last column "predicted 255"

    def add(self, counts: np.ndarray) -> None:
        """Adds counts from :meth:`counts`."""
        self.matrix += counts

    def merge(self, other: ConfusionMatrix) -> None:
        """Adds another accumulator's counts (e.g. from a worker process)."""
        self.add(other.matrix)

    def update(self, gt: np.ndarray, pred: np.ndarray) -> None:
        """Adds one image (labels checked, see :meth:`counts`)."""
        self.add(self.counts(gt, pred))

    def iou(self) -> np.ndarray:
        """(C,) IoU per class; nan for a class in neither ground truth nor prediction."""
        inter = np.diag(self.matrix[:, : self.num_classes]).astype(np.float64)
        union = self.matrix.sum(axis=1) + self.matrix[:, : self.num_classes].sum(axis=0) - inter
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)

    def miou(self) -> float:
        """Mean IoU over the classes present in ground truth or prediction (nanmean)."""
        iou = self.iou()
        return float(np.nanmean(iou)) if np.isfinite(iou).any() else float("nan")

    def pixel_accuracy(self) -> float:
        total = self.matrix.sum()
        return (
            float(np.trace(self.matrix[:, : self.num_classes]) / total) if total else float("nan")
        )

    def table(self) -> dict[str, float | None]:
        """Per-class IoU keyed by class name (None where undefined, for JSON)."""
        return {
            name: (None if np.isnan(v) else float(v))
            for name, v in zip(self.class_names, self.iou(), strict=True)
        }
