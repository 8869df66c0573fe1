"""File access for the readers: every failure becomes a :class:`DataError` naming the file."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import cv2
import numpy as np

from describeme.errors import DataError

IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".tif", ".tiff")


def require_dir(root: Path, name: str, what: str) -> Path:
    """Returns ``root / name``, raising ``DataError`` saying which folder is missing where."""
    path = root / name
    if not path.is_dir():
        raise DataError(f"missing {what} folder '{name}' under {root} (expected directory {path})")
    return path


def list_images(folder: Path) -> dict[str, Path]:
    """Maps file stem -> image path for every image file in ``folder`` (not recursive).

    Raises:
        DataError: two files share a stem (``a.jpg`` and ``a.png``), so an id is ambiguous.
    """
    found: dict[str, Path] = {}
    for path in sorted(folder.iterdir()):
        if path.suffix.lower() not in IMAGE_EXTENSIONS or not path.is_file():
            continue
        if path.stem in found:
            raise DataError(
                f"{folder}: image id '{path.stem}' is ambiguous ({found[path.stem].name} "
                f"and {path.name}); keep one file per id"
            )
        found[path.stem] = path
    return found


def _read_bytes(path: Path, what: str) -> np.ndarray:
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        # np.fromfile + imdecode instead of cv2.imread: imread returns None for any reason,
        # including non-ASCII paths, and we want to tell "missing" from "corrupt".
        return np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise DataError(f"{path}: cannot read {what} file: {exc}") from None


def read_image(path: Path) -> np.ndarray:
    """Reads a photo as (H, W, 3) uint8 BGR.

    EXIF orientation is ignored on purpose: the label PNGs are stored unrotated, so rotating
    the photo would misalign it with its labels.
    """
    data = _read_bytes(path, "image")
    image = (
        cv2.imdecode(data, cv2.IMREAD_COLOR | cv2.IMREAD_IGNORE_ORIENTATION) if data.size else None
    )
    if image is None:
        raise DataError(f"{path}: cannot decode image (corrupt, empty or not an image file)")
    return image


def read_label_png(path: Path, what: str) -> np.ndarray:
    """Reads a single-channel label map (8- or 16-bit PNG, or an indexed-palette PNG).

    Returns:
        (H, W) uint8 or uint16 array of the stored ids.
    """
    data = _read_bytes(path, what)
    labels = cv2.imdecode(data, cv2.IMREAD_UNCHANGED) if data.size else None
    if labels is None:
        raise DataError(f"{path}: cannot decode {what} PNG (corrupt, empty or not an image file)")
    if labels.ndim == 3:
        labels = _palette_indices(path, what)
    if labels.dtype not in (np.uint8, np.uint16):
        raise DataError(f"{path}: {what} map must be 8- or 16-bit, got {labels.dtype}")
    return labels


def _palette_indices(path: Path, what: str) -> np.ndarray:
    """OpenCV expands palette PNGs to colours; PIL keeps the indices, which are the labels."""
    from PIL import Image

    with Image.open(path) as image:
        if image.mode != "P":
            raise DataError(
                f"{path}: {what} map must be single-channel (mode L, I;16 or P), "
                f"got a {image.mode} colour image (a visualisation, not ids?)"
            )
        return np.asarray(image, dtype=np.uint8)


def read_json(path: Path, what: str) -> Any:
    """Parses a JSON file, raising ``DataError`` naming the file and the position of an error."""
    if not path.is_file():
        raise DataError(f"{path}: {what} file not found")
    try:
        with path.open(encoding="utf-8") as handle:
            return json.load(handle)
    except json.JSONDecodeError as exc:
        raise DataError(
            f"{path}: invalid JSON in {what} file at line {exc.lineno}, "
            f"column {exc.colno}: {exc.msg}"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read {what} file: {exc}") from None


def read_id_list(path: Path) -> list[str]:
    """Reads a CIHP-style ``<split>_id.txt``: one image id per line, blanks ignored."""
    if not path.is_file():
        raise DataError(f"split file {path} not found (a split 'x' needs <root>/x_id.txt)")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: cannot read split file: {exc}") from None
    return [line.strip() for line in lines if line.strip()]


def read_coco_json(path: Path, what: str) -> dict[str, Any]:
    """Reads a COCO annotation file, checking it has ``images`` and ``annotations`` lists."""
    data = read_json(path, what)
    if (
        not isinstance(data, dict)
        or not isinstance(data.get("images"), list)
        or not isinstance(data.get("annotations"), list)
    ):
        raise DataError(
            f"{path}: not a COCO annotation file (needs 'images' and 'annotations' lists)"
        )
    return data
