"""``open_dataset`` and ``read_label_maps``: the readers' public entry points.

Kinds:

- ``cihp``: CIHP layout without ``dataset.yaml``; 20 classes mapped to CCIHP ids by
  ``configs/datasets/cihp.yaml`` (default ``labels.CIHP_TO_CCIHP``).
- ``ccihp``: CIHP layout plus Color_ids/Size_ids/Pattern_ids; ids mapped by
  ``configs/datasets/ccihp.yaml`` (identity by default).
- ``synthetic``: our own output (``dataset.yaml`` present), already in our ids.
- ``coco``: a COCO person-keypoints JSON; ``annotations=`` names it (default
  ``<root>/annotations/person_keypoints.json``), images are read from ``<root>/Images`` when
  that folder exists, else from ``root``.
- ``auto``: ``dataset.yaml`` -> synthetic; else a Color/Size/Pattern folder -> ccihp; else cihp.

Example::

    ds = open_dataset("../shared/data/cihp_real20")
    sample = ds[0]                      # Sample with CCIHP part ids
    maps = read_label_maps("preds/", sample.image_id, info=ds.info)
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

from describeme.config import build_config
from describeme.data import layout
from describeme.data.readers._io import read_id_list
from describeme.data.readers.coco import CocoReader
from describeme.data.readers.layout_reader import LabelMaps, LayoutReader
from describeme.data.readers.mapping import KINDS, DatasetMapping, default_mapping, load_mapping
from describeme.data.sample import Sample
from describeme.errors import DataError

MappingArg = DatasetMapping | Mapping[str, Any] | str | Path | None


class ParsingDataset:
    """An indexable dataset of :class:`Sample` objects.

    Attributes:
        root: dataset root folder.
        kind: ``cihp``, ``ccihp``, ``synthetic`` or ``coco``.
        ids: image ids (file stems) in index order.
        info: ``dataset.yaml`` content, or what the reader inferred; always has ``kind``.
    """

    def __init__(
        self,
        root: Path,
        kind: str,
        ids: list[str],
        info: dict[str, Any],
        load: Callable[[str], Sample],
    ):
        self.root = root
        self.kind = kind
        self.ids = ids
        self.info = info
        self._load = load
        self._index = {image_id: i for i, image_id in enumerate(ids)}

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, index: int) -> Sample:
        try:
            index = operator.index(index)  # ints and numpy integers (samplers yield both)
        except TypeError:
            raise TypeError(f"dataset index must be an int, got {type(index).__name__}") from None
        if not -len(self.ids) <= index < len(self.ids):
            raise IndexError(f"index {index} out of range for a dataset of {len(self.ids)} images")
        return self._load(self.ids[index])

    def __iter__(self) -> Iterator[Sample]:
        for image_id in self.ids:
            yield self._load(image_id)

    def sample_by_id(self, image_id: str) -> Sample:
        """The sample of one image id; ``KeyError`` naming the root when unknown."""
        if image_id not in self._index:
            raise KeyError(f"image id '{image_id}' is not in dataset {self.root}")
        return self._load(image_id)

    def __repr__(self) -> str:
        return f"ParsingDataset(kind={self.kind!r}, root={str(self.root)!r}, images={len(self)})"


def open_dataset(
    root: str | Path,
    split: str | None = None,
    kind: str = "auto",
    mapping: MappingArg = None,
    *,
    annotations: str | Path | None = None,
) -> ParsingDataset:
    """Opens a dataset folder.

    Args:
        root: dataset root (for ``coco``: a folder of images, or a root with ``Images/``).
        split: None for every image in the images folder; else ids from ``<root>/<split>_id.txt``.
        kind: ``auto``, ``cihp``, ``ccihp``, ``synthetic`` or ``coco``.
        mapping: a :class:`DatasetMapping`, a dict of its fields, or a YAML path; None = the
            built-in mapping of ``kind``.
        annotations: COCO JSON path (``coco`` only).

    Raises:
        DataError: a folder, split file or listed image is missing, or dataset.yaml is bad.
        ValueError: unknown ``kind`` or a mapping written for another kind.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"dataset root {root} not found or not a directory")
    if kind == "coco":
        return _open_coco(root, split, annotations)
    if annotations is not None:
        raise ValueError(f"annotations= is for kind='coco', not kind={kind!r}")
    resolved_kind, resolved, info = resolve_layout(root, kind, mapping)
    reader = LayoutReader(root, resolved, info["mapping_source"])
    ids = _select_ids(root, split, sorted(reader.images), reader.root / resolved.folders.images)
    return ParsingDataset(root, resolved_kind, ids, info, reader.read_sample)


def read_label_maps(
    root: str | Path, image_id: str, info: Mapping[str, Any] | None = None
) -> LabelMaps:
    """Reads the label maps of one image without its photo (e.g. saved predictions).

    Args:
        root: a folder in the dataset layout (Images/ not needed).
        image_id: file stem.
        info: a dataset's ``info`` (``ds.info``) saying how to read the ids; None = infer from
            ``root`` like ``open_dataset(kind="auto")``. Predictions already in our ids should
            carry a ``dataset.yaml`` or pass ``info={"kind": "synthetic"}``.
    """
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"label-map root {root} not found or not a directory")
    kind, mapping = "auto", None
    if info is not None:
        kind = str(
            info.get("kind")
            or ("synthetic" if info.get("format") == layout.FORMAT_IMAGES else "auto")
        )
        mapping = info.get("mapping")
    if kind == "coco":
        raise ValueError(
            "read_label_maps reads label-map folders (cihp, ccihp, synthetic); a "
            "COCO dataset has no label maps: use open_dataset(..., kind='coco')"
        )
    _, resolved, resolved_info = resolve_layout(root, kind, mapping, info)
    reader = LayoutReader(root, resolved, resolved_info["mapping_source"], require_images=False)
    return reader.read_label_maps(image_id)


def resolve_layout(
    root: Path, kind: str, mapping: MappingArg, info: Mapping[str, Any] | None = None
) -> tuple[str, DatasetMapping, dict[str, Any]]:
    """Decides the kind and mapping of a layout folder; returns (kind, mapping, info)."""
    yaml_info = _read_dataset_yaml(root) if info is None else dict(info)
    if kind == "auto":
        if isinstance(mapping, DatasetMapping):
            kind = mapping.kind
        elif yaml_info is not None:
            kind = "synthetic"
        elif any((root / folder).is_dir() for folder in layout.CHARACTERISTIC_DIRS.values()):
            kind = "ccihp"
        else:
            kind = "cihp"
    if kind not in KINDS:
        raise ValueError(
            f"unknown dataset kind {kind!r}; expected auto, coco or one of {list(KINDS)}"
        )
    resolved, source = _resolve_mapping(kind, mapping, yaml_info)
    if resolved.kind != kind:
        raise ValueError(
            f"mapping {source} is for kind {resolved.kind!r}, but kind={kind!r} was asked"
        )
    out = dict(yaml_info) if (kind == "synthetic" and yaml_info) else {}
    out.setdefault("kind", kind)
    out.setdefault("instance_id_rule", resolved.instance_id_rule)
    out["mapping"] = resolved.model_dump(mode="json")
    out["mapping_source"] = source
    return kind, resolved, out


def _resolve_mapping(
    kind: str, mapping: MappingArg, yaml_info: dict[str, Any] | None
) -> tuple[DatasetMapping, str]:
    if mapping is None:
        rule = (yaml_info or {}).get("instance_id_rule")
        if rule not in (None, layout.RULE_CCIHP, layout.RULE_CIHP):
            raise DataError(
                f"dataset.yaml: instance_id_rule {rule!r} unknown; expected "
                f"{layout.RULE_CCIHP!r} or {layout.RULE_CIHP!r}"
            )
        source = f"built-in {kind} mapping (configs/datasets/{kind}.yaml)"
        return default_mapping(kind, rule), source
    if isinstance(mapping, DatasetMapping):
        return mapping, "DatasetMapping argument"
    if isinstance(mapping, Mapping):
        return build_config(DatasetMapping, mapping, "<mapping dict>"), "mapping dict"
    if isinstance(mapping, (str, Path)):
        return load_mapping(mapping), str(mapping)
    raise TypeError(
        f"mapping must be a DatasetMapping, dict or YAML path, got {type(mapping).__name__}"
    )


def _read_dataset_yaml(root: Path) -> dict[str, Any] | None:
    path = root / layout.DATASET_YAML
    if not path.is_file():
        return None
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (yaml.YAMLError, OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read dataset description: {exc}") from None
    if not isinstance(data, dict):
        raise DataError(f"{path}: must be a mapping of keys, got {type(data).__name__}")
    if data.get("format") == layout.FORMAT_VIDEO:
        raise DataError(
            f"{path}: this is a video dataset ({layout.FORMAT_VIDEO}); "
            "open_dataset reads image datasets"
        )
    return data


def _select_ids(root: Path, split: str | None, available: list[str], images_dir: Path) -> list[str]:
    if split is None:
        return available
    ids = read_id_list(root / f"{split}_id.txt")
    known = set(available)
    missing = [image_id for image_id in ids if image_id not in known]
    if missing:
        raise DataError(
            f"{root / f'{split}_id.txt'} lists {len(missing)} id(s) with no image in "
            f"{images_dir}, e.g. {missing[:3]}"
        )
    return ids


def _open_coco(root: Path, split: str | None, annotations: str | Path | None) -> ParsingDataset:
    path = Path(annotations) if annotations is not None else root / layout.COCO_KEYPOINTS
    images_dir = root / layout.IMAGES if (root / layout.IMAGES).is_dir() else root
    reader = CocoReader(images_dir, path)
    ids = _select_ids(root, split, reader.ids, images_dir)
    info = {
        "kind": "coco",
        "annotations": str(path),
        "images": str(images_dir),
        "categories": reader.categories,
    }
    return ParsingDataset(root, "coco", ids, info, reader.read_sample)
