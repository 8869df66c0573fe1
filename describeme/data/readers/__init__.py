"""Dataset readers: CIHP / CCIHP / our synthetic layout and COCO keypoints -> ``Sample``.

Public API::

    from describeme.data.readers import open_dataset, read_label_maps, LabelMaps, ParsingDataset
    ds = open_dataset(root, split=None, kind="auto", mapping=None)
    sample = ds[0]; sample = ds.sample_by_id("0000006")
    maps = read_label_maps(pred_root, "0000006", info=ds.info)
"""

from __future__ import annotations

from describeme.data.readers.checks import sample_violations
from describeme.data.readers.dataset import ParsingDataset, open_dataset, read_label_maps
from describeme.data.readers.layout_reader import CocoKeypointIndex, LabelMaps
from describeme.data.readers.mapping import DatasetMapping, default_mapping, load_mapping

__all__ = [
    "CocoKeypointIndex",
    "DatasetMapping",
    "LabelMaps",
    "ParsingDataset",
    "default_mapping",
    "load_mapping",
    "open_dataset",
    "read_label_maps",
    "sample_violations",
]
