"""Label invariants of a read sample, as a list of violations (empty = consistent).

Used by the real-data smoke script and the tests; the readers themselves only reject what
would break training (shapes, ids out of range), since real datasets carry small slips.
"""

from __future__ import annotations

import numpy as np

from describeme import labels
from describeme.data import layout
from describeme.data.readers.mapping import DatasetMapping, build_lut
from describeme.data.sample import IGNORE, Sample

_STRIDES = {layout.RULE_CIHP: 20, layout.RULE_CCIHP: 22}
_LIMITS = {
    "parts": labels.NUM_PARTS,
    "color": labels.NUM_COLORS,
    "size": labels.NUM_SIZES,
    "pattern": labels.NUM_PATTERNS,
}


def sample_violations(sample: Sample, mapping: DatasetMapping | None = None) -> list[str]:
    """Checks every label invariant of ``sample``; each violation names ``sample.source``.

    Args:
        sample: from a reader (instance map in ``sample.extra["instances"]`` when present).
        mapping: the dataset's mapping; needed to check instance ids, which are stored in the
            dataset's own class ids (``ds.info["mapping"]`` holds it).

    Returns:
        One line per broken invariant.
    """
    where = sample.source or sample.image_id
    out = [f"{where}: {name} ids {bad} out of range" for name, bad in _out_of_range(sample)]
    humans, parts = sample.humans, sample.parts
    present = np.flatnonzero(np.bincount(humans.ravel())[1:]) + 1
    if present.size and not np.array_equal(present, np.arange(1, present.size + 1)):
        out.append(f"{where}: human ids {present.tolist()} are not contiguous 1..{present.size}")
    labelled = (parts > 0) & (parts != IGNORE)
    if np.any(labelled & (humans == 0)):
        out.append(f"{where}: {int(np.sum(labelled & (humans == 0)))} part pixels have no human")
    if np.any((humans > 0) & (parts == 0)):
        out.append(
            f"{where}: {int(np.sum((humans > 0) & (parts == 0)))} human pixels are background"
        )
    for person, box in enumerate(sample.boxes, start=1):
        if person in present and not (box[2] > box[0] and box[3] > box[1]):
            out.append(f"{where}: box of human {person} is empty: {box.tolist()}")
    for name in ("color", "size", "pattern"):
        value = getattr(sample, name)
        if value is not None and np.any((value > 0) & (value != IGNORE) & (parts == 0)):
            out.append(f"{where}: {name} is set on background pixels")
    instances = sample.extra.get("instances")
    rule = mapping.instance_id_rule if mapping is not None else None
    if instances is not None and rule is not None and mapping is not None:
        out.extend(_instance_violations(sample, instances, mapping, where))
    return out


def _out_of_range(sample: Sample) -> list[tuple[str, list[int]]]:
    bad = []
    for name, limit in _LIMITS.items():
        value = getattr(sample, name)
        if value is None:
            continue
        ids = np.flatnonzero(np.bincount(value.ravel(), minlength=256))
        wrong = [int(i) for i in ids if i >= limit and i != IGNORE]
        if wrong:
            bad.append((name, wrong))
    return bad


def _instance_violations(
    sample: Sample, instances: np.ndarray, mapping: DatasetMapping, where: str
) -> list[str]:
    """Instance id == stride*(h-1)+c on foreground and 0 elsewhere, in the stored class ids."""
    stride = _STRIDES[mapping.instance_id_rule]  # type: ignore[index]
    out = []
    foreground = (sample.humans > 0) & (sample.parts > 0) & (sample.parts != IGNORE)
    if np.any(instances[~foreground] != 0):
        out.append(
            f"{where}: {int(np.sum(instances[~foreground] != 0))} non-zero instance ids "
            "off the labelled foreground"
        )
    ids = instances[foreground].astype(np.int64)
    stored_class = ids % stride
    lut = build_lut(mapping.parts, labels.NUM_PARTS)
    decoded_human = ids // stride + 1
    wrong = (
        (stored_class == 0)
        | (decoded_human != sample.humans[foreground])
        | (lut[stored_class] != sample.parts[foreground])
    )
    if np.any(wrong):
        out.append(
            f"{where}: {int(wrong.sum())} foreground pixels break instance id == "
            f"{stride}*(human-1)+class"
        )
    return out
