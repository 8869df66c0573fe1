"""PersonLab behind :mod:`describeme.models.registry`: checkpoint builder and Parser factory.

:func:`register` adds ``personlab`` to the checkpoint builders
(:func:`describeme.models.checkpoint.register_model`) and to the registry's parser factories
(:func:`describeme.models.registry.register_parser`), so ``load_checkpoint`` and
``load_parser`` handle PersonLab checkpoints and exported graphs. It is explicit, not an
import side effect, so importing this package never changes global tables.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError

from describeme.models.personlab.config import PersonLabConfig, build_postprocessor_from_config
from describeme.models.personlab.model import MODEL_NAME

log = logging.getLogger(__name__)
BUILDER = "describeme.models.personlab.model:build_personlab"


def personlab_config_from_meta(meta: Mapping[str, Any]) -> PersonLabConfig:
    """The PersonLab config saved with a checkpoint or graph (a train config's ``model``
    section or a model config itself; defaults when absent), with the model section taken
    from the stored ``model_args`` when present, since those built the weights."""
    config = _as_mapping(meta.get("config"))
    candidate = config
    if config.get("name") != MODEL_NAME and isinstance(config.get("model"), Mapping):
        candidate = config["model"]  # a training config: its model section
    result = PersonLabConfig()
    if isinstance(candidate, Mapping) and candidate.get("name") == MODEL_NAME:
        try:
            result = PersonLabConfig.model_validate(dict(candidate))
        except ValidationError as exc:
            log.warning("checkpoint config is not a valid PersonLab config (%s); using "
                        "defaults", str(exc).splitlines()[0])  # fmt: skip
    model_args = _as_mapping(meta.get("model_args"))
    if model_args:
        known = {k: v for k, v in model_args.items() if k in type(result.model).model_fields}
        result = result.model_copy(update={"model": result.model.model_copy(update=known)})
    return result


def personlab_parser(backend: Any, meta: Mapping[str, Any], size: tuple[int, int] | None) -> Any:
    """A registry :class:`~describeme.models.inference.Parser` decoding PersonLab heads."""
    from describeme.models.inference import Parser
    from describeme.models.registry import with_postprocess_overrides

    config = with_postprocess_overrides(personlab_config_from_meta(meta), meta)
    return Parser(
        backend=backend,
        postprocess=build_postprocessor_from_config(config),
        input_size=tuple(size) if size is not None else tuple(config.input_size),
        model_name=MODEL_NAME,
    )


def register() -> None:
    """Makes ``personlab`` checkpoints loadable and parseable (idempotent)."""
    from describeme.models.checkpoint import register_model
    from describeme.models.registry import register_parser

    register_model(MODEL_NAME, BUILDER)
    register_parser(MODEL_NAME, personlab_parser)


def _as_mapping(value: Any) -> dict[str, Any]:
    """A dict from a mapping or a JSON object string (ONNX metadata); {} otherwise."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except json.JSONDecodeError:
            return {}
    return dict(value) if isinstance(value, Mapping) else {}
