"""Self-describing checkpoints: weights + how to rebuild the model, in one file.

A checkpoint is a ``torch.save``'d dict (readable with ``weights_only=True``)::

    {"format": "describeme-checkpoint", "format_version": 1, "model_name": "hptr",
     "model_args": {...},   # explicit kwargs of the model's build function
     "config": {...},       # resolved config (plain data), for the record
     "metrics": {...}, "training_state": {...} | None, "state_dict": {...}}

:func:`load_checkpoint` rebuilds the model from ``model_name`` and ``model_args`` alone
(nanoGPT's ``model_args`` idea). Builders are looked up in :data:`MODEL_BUILDERS`; another
model registers itself with :func:`register_model`.
"""

from __future__ import annotations

import importlib
import logging
import os
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from describeme.errors import DataError

log = logging.getLogger(__name__)

FORMAT = "describeme-checkpoint"
FORMAT_VERSION = 1
# Model name -> "module:function" building it from ``model_args``.
MODEL_BUILDERS: dict[str, str] = {"hptr": "describeme.models.hptr.model:build_hptr"}
_REQUIRED_KEYS = ("format_version", "model_name", "model_args", "state_dict")


def register_model(name: str, builder: str) -> None:
    """Registers ``"module:function"`` as the builder of checkpoints named ``name``."""
    if ":" not in builder:
        raise ValueError(f"builder must look like 'package.module:function', got {builder!r}")
    MODEL_BUILDERS[name] = builder


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    config: Any = None,
    metrics: Mapping[str, float] | None = None,
    training_state: Mapping[str, Any] | None = None,
    model_name: str | None = None,
) -> Path:
    """Writes a checkpoint atomically (temporary file + rename).

    Args:
        path: destination file.
        model: a model with ``model_args`` (and ``model_name``) set by its build function.
        config: the resolved config (a pydantic model or plain mapping), stored as plain data.
        metrics: evaluation numbers to keep with the weights.
        training_state: optional optimizer/scheduler/epoch state for resuming.
        model_name: overrides ``model.model_name``.
    """
    name = model_name or getattr(model, "model_name", None)
    model_args = getattr(model, "model_args", None)
    if not name or not isinstance(model_args, Mapping) or not model_args:
        raise ValueError(
            f"{type(model).__name__} has no model_name/model_args; build it with its "
            "build_* function (e.g. build_hptr) so the checkpoint can rebuild it"
        )
    if hasattr(config, "model_dump"):
        config = config.model_dump(mode="json")
    payload = {
        "format": FORMAT,
        "format_version": FORMAT_VERSION,
        "model_name": name,
        "model_args": dict(model_args),
        "config": dict(config) if config is not None else {},
        "metrics": {k: float(v) for k, v in (metrics or {}).items()},
        "training_state": dict(training_state) if training_state is not None else None,
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
    }
    path = _atomic_save(payload, Path(path))
    log.info("saved %s checkpoint to %s", name, path)
    return path


def release_checkpoint(source: str | Path, dest: str | Path) -> Path:
    """Copies a checkpoint without its training state (optimizer moments, schedule): the
    weights-only file to ship or bundle, about a third of a training checkpoint's size.

    Raises:
        DataError: ``source`` is not a readable checkpoint.
    """
    payload = read_checkpoint(source)
    payload["training_state"] = None
    path = _atomic_save(payload, Path(dest))
    log.info("wrote the release checkpoint %s (%d bytes)", path, path.stat().st_size)
    return path


def _atomic_save(payload: Mapping[str, Any], path: Path) -> Path:
    """``torch.save`` to a temporary file, then rename (a crash leaves no partial file)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    torch.save(dict(payload), tmp)
    os.replace(tmp, path)
    return path


def read_checkpoint(path: str | Path) -> dict[str, Any]:
    """Reads and validates a checkpoint's dict without building the model.

    Raises:
        DataError: missing, non-checkpoint, truncated/corrupt, or newer-format file.
    """
    path = Path(path)
    if not path.is_file():
        raise DataError(f"{path}: checkpoint file not found")
    with path.open("rb") as handle:
        magic = handle.read(4)
    if magic != b"PK\x03\x04":
        raise DataError(
            f"{path}: not a describeme checkpoint (not a torch.save zip file); "
            "pass a .pt written by describeme train or save_checkpoint"
        )
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except (zipfile.BadZipFile, EOFError, RuntimeError, OSError) as exc:
        raise DataError(
            f"{path}: checkpoint is truncated or corrupt ({exc}); re-copy or re-save it"
        ) from None
    except Exception as exc:  # unpickling errors have no common base class
        raise DataError(f"{path}: cannot read checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, Mapping) or any(k not in payload for k in _REQUIRED_KEYS):
        keys = sorted(payload)[:6] if isinstance(payload, Mapping) else type(payload).__name__
        raise DataError(
            f"{path}: not a describeme checkpoint (needs keys {list(_REQUIRED_KEYS)}, "
            f"found {keys}); a bare state_dict must be loaded with the model's "
            "build function and load_state_dict"
        )
    if int(payload["format_version"]) > FORMAT_VERSION:
        raise DataError(
            f"{path}: checkpoint format {payload['format_version']} is newer than this "
            f"describeme reads ({FORMAT_VERSION}); upgrade describeme"
        )
    return dict(payload)


def load_checkpoint(
    path: str | Path, *, expected_model: str | None = None, map_location: str | torch.device = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds a model from a checkpoint with no other file.

    Args:
        path: checkpoint file.
        expected_model: raise unless the checkpoint holds this model (e.g. "hptr").
        map_location: device for the rebuilt model.

    Returns:
        ``(model, meta)``: the model in eval mode, and every checkpoint key except
        ``state_dict``.

    Raises:
        DataError: unreadable file, wrong model, or weights that do not fit the arguments.
    """
    payload = read_checkpoint(path)
    name = payload["model_name"]
    if expected_model is not None and name != expected_model:
        raise DataError(f"{path}: checkpoint holds a '{name}' model, expected '{expected_model}'")
    builder = _resolve_builder(name, path)
    try:
        model = builder(**payload["model_args"])
    except (TypeError, ValueError) as exc:
        raise DataError(
            f"{path}: cannot rebuild '{name}' from model_args {payload['model_args']}: {exc}"
        ) from None
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise DataError(
            f"{path}: weights do not fit the '{name}' model: {str(exc)[:400]}"
        ) from None
    model.to(map_location).eval()
    meta = {k: v for k, v in payload.items() if k != "state_dict"}
    return model, meta


def _resolve_builder(name: str, path: Path | str) -> Any:
    target = MODEL_BUILDERS.get(name)
    if target is None:
        raise DataError(f"{path}: unknown model '{name}'; known models: {sorted(MODEL_BUILDERS)}")
    module_name, _, function = target.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise DataError(
            f"{path}: model '{name}' is not available in this install ({exc})"
        ) from None
