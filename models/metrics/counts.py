"""Per-image pixel counts shared by the instance metrics, each from one ``np.bincount``.

Two label maps describe a parsing: a class map (part, or a characteristic) and a person map.
An *instance* is a (person, class) pair. Every instance IoU the metrics need follows from one
joint histogram over (gt person, predicted person, gt class, predicted class), built with a
single ``np.bincount`` over the pixels that belong to a person in either map (pixels with no
person in both maps can never be part of an instance). No per-pixel Python loop.

Pixels whose ground-truth class is 255 are ignored everywhere (they count for nobody).
A predicted class outside ``[0, num_classes)`` (e.g. 255) counts as background of its person.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

IGNORE = 255


@dataclass(frozen=True)
class InstanceCounts:
    """Pixel counts of one image; row/column 0 (no person) is left at zero.

    Attributes:
        gt_area: (G+1, C) int64 ground-truth pixels per (person, class).
        pred_area: (P+1, C) int64 predicted pixels per (person, class).
        inter: (G+1, P+1, C) int64 pixels with gt person g, pred person p, same class c.
        fg_overlap: (G+1, P+1) int64 pixels where gt person g has a foreground class and
            pred person p has a foreground class (not necessarily the same one).
        num_valid: pixels of the image whose ground truth is not ignored.
    """

    gt_area: np.ndarray
    pred_area: np.ndarray
    inter: np.ndarray
    fg_overlap: np.ndarray
    num_valid: int

    @property
    def num_gt(self) -> int:
        return self.gt_area.shape[0] - 1

    @property
    def num_pred(self) -> int:
        return self.pred_area.shape[0] - 1


class PersonPixels:
    """The pixels covered by a person in either map, and their (gt, pred) person pair.

    Built once per image and shared by every class map (parts, color, size, pattern).

    Args:
        gt_persons: (H, W) ground-truth person index, 0 = none.
        pred_persons: (H, W) predicted person index, 0 = none.
    """

    def __init__(self, gt_persons: np.ndarray, pred_persons: np.ndarray) -> None:
        gh = gt_persons.reshape(-1)
        ph = pred_persons.reshape(-1)
        self.num_gt = int(gh.max()) if gh.size else 0
        self.num_pred = int(ph.max()) if ph.size else 0
        self.index = np.flatnonzero((gh != 0) | (ph != 0))  # (K,) flat pixel positions
        # (K,) pair id g * (P+1) + p of each selected pixel.
        self.pair = gh[self.index].astype(np.int64) * (self.num_pred + 1) + ph[self.index]


def instance_counts(
    gt_classes: np.ndarray, pred_classes: np.ndarray, persons: PersonPixels, num_classes: int
) -> InstanceCounts:
    """Counts pixels per (person, class) and per matching pair of instances.

    Args:
        gt_classes: (H, W) ground-truth class map, values in [0, num_classes) or 255.
        pred_classes: (H, W) predicted class map (values >= num_classes count as background).
        persons: the image's :class:`PersonPixels`.
        num_classes: C, background included.

    Returns:
        The counts; persons are indexed by their map value (0..max).
    """
    c = num_classes
    # Ground-truth 255 goes to an extra class C that is dropped below.
    gt_lut = np.full(256, c, dtype=np.int64)
    gt_lut[:c] = np.arange(c)
    pred_lut = np.zeros(256, dtype=np.int64)
    pred_lut[:c] = np.arange(c)
    gc = gt_lut[gt_classes.reshape(-1)[persons.index]]
    pc = pred_lut[pred_classes.reshape(-1)[persons.index]]
    num_g, num_p = persons.num_gt + 1, persons.num_pred + 1
    key = (persons.pair * (c + 1) + gc) * c + pc
    joint = np.bincount(key, minlength=num_g * num_p * (c + 1) * c)
    joint = joint.reshape(num_g, num_p, c + 1, c)[:, :, :c, :]  # (G+1, P+1, Cgt, Cpred)
    gt_area = joint.sum(axis=(1, 3))  # (G+1, C)
    pred_area = joint.sum(axis=(0, 2))  # (P+1, C)
    inter = np.diagonal(joint, axis1=2, axis2=3).copy()  # (G+1, P+1, C)
    fg_overlap = joint[:, :, 1:, 1:].sum(axis=(2, 3))
    # Row/column 0 (no person) saw only pixels of the other map's persons: meaningless.
    gt_area[0] = 0
    pred_area[0] = 0
    inter[0] = 0
    inter[:, 0] = 0
    fg_overlap[0] = 0
    fg_overlap[:, 0] = 0
    num_valid = int(gt_classes.size - np.count_nonzero(gt_classes == IGNORE))
    return InstanceCounts(gt_area, pred_area, inter, fg_overlap, num_valid)


def instance_iou(counts: InstanceCounts, cls: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """IoU between the ground-truth and predicted instances of one class.

    Args:
        counts: the image's counts.
        cls: class id (> 0).

    Returns:
        ``(gt_persons (G',), pred_persons (P',), iou (P', G'))``: the persons that have the
        class and the IoU of every predicted instance with every ground-truth one.
    """
    gt_ids = np.flatnonzero(counts.gt_area[:, cls])
    pred_ids = np.flatnonzero(counts.pred_area[:, cls])
    inter = counts.inter[:, :, cls][np.ix_(gt_ids, pred_ids)].T  # (P', G')
    union = counts.pred_area[pred_ids, cls][:, None] + counts.gt_area[gt_ids, cls][None, :] - inter
    return gt_ids, pred_ids, inter / np.maximum(union, 1)


def person_class_iou(counts: InstanceCounts) -> np.ndarray:
    """Per-class IoU of every predicted person's part map against every ground-truth one.

    Each person's map is its parts on its own pixels and background (class 0) everywhere
    else in the image, as in the MHP / Parsing R-CNN evaluation.

    Returns:
        (P, G, C) float IoU; nan where a class is in neither map (union 0).
    """
    gt_area = counts.gt_area[1:]  # (G, C)
    pred_area = counts.pred_area[1:]  # (P, C)
    gt_fg = gt_area[:, 1:].sum(axis=1)  # (G,)
    pred_fg = pred_area[:, 1:].sum(axis=1)  # (P,)
    inter = counts.inter[1:, 1:].transpose(1, 0, 2).astype(np.float64)  # (P, G, C)
    union = pred_area[:, None, :] + gt_area[None, :, :] - inter
    overlap = counts.fg_overlap[1:, 1:].T  # (P, G)
    # Background of both = valid pixels outside both persons' foregrounds.
    inter[..., 0] = counts.num_valid - gt_fg[None, :] - pred_fg[:, None] + overlap
    union[..., 0] = counts.num_valid - overlap
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, inter / np.where(union > 0, union, 1), np.nan)
