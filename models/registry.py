"""Models by bundled name or checkpoint path: ``load_model``, ``load_parser``, ``load_predictor``.

``--model`` everywhere takes a checkpoint path (``.pt`` from ``describeme train``; an
``.onnx`` from ``describeme export`` for the onnxruntime/tensorrt backends) or a bundled
model's name (``hptr``, ``personlab``). Bundled weights live in ``$DESCRIBEME_MODELS_DIR``
(default: the package's ``assets/models``) as ``<name>.pt``; ``personlab.pt`` ships (see
``models/personlab/MODEL_CARD.md``), ``hptr.pt`` not yet, and asking for a bundled name without
its file is a clear error, never random weights.

Example::

    from describeme.models.registry import load_parser, load_predictor
    parser = load_parser("runs/tiny/last.pt", backend="onnxruntime")
    persons = parser.parse([frame_bgr])                     # list[Persons]
    predict = load_predictor("runs/tiny/last.pt")          # describeme eval --model
    prediction = predict(sample, sample.image_id)          # metrics.Prediction
"""

from __future__ import annotations

import importlib
import json
import logging
import os
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from torch import nn

from describeme.errors import ConfigError, DataError, DescribemeError
from describeme.models.checkpoint import load_checkpoint
from describeme.models.inference import Parser, Predictor

log = logging.getLogger(__name__)

BUNDLED_MODELS = ("hptr", "personlab")
MODELS_DIR_ENV = "DESCRIBEME_MODELS_DIR"
ParserFactory = Callable[[Any, Mapping[str, Any], "tuple[int, int] | None"], Parser]


class NoBundledModelError(DescribemeError):
    """A bundled model name was given but its weights file is not installed."""


def models_dir() -> Path:
    """Folder of bundled weights: ``$DESCRIBEME_MODELS_DIR`` or the package's assets/models."""
    configured = os.environ.get(MODELS_DIR_ENV)
    if configured:
        return Path(configured).expanduser()
    from importlib import resources

    return Path(str(resources.files("describeme"))) / "assets" / "models"


def resolve_model_path(name_or_path: str | Path) -> Path:
    """The checkpoint file behind ``--model``.

    Raises:
        NoBundledModelError: a bundled name whose weights are not installed.
        DataError: neither an existing file nor a bundled name.
    """
    text = str(name_or_path)
    if text in BUNDLED_MODELS:
        path = models_dir() / f"{text}.pt"
        if not path.is_file():
            raise NoBundledModelError(
                f"no trained '{text}' model is bundled with this version (looked for {path}); "
                "pass --model PATH to a checkpoint written by 'describeme train', or set "
                f"{MODELS_DIR_ENV} to a folder holding {text}.pt"
            )
        return path
    path = Path(text).expanduser()
    if path.is_file():
        return path
    if path.exists():
        raise DataError(f"--model {text}: is a directory; pass the checkpoint file inside it")
    raise DataError(
        f"--model {text!r}: no such checkpoint file, and not a bundled model name "
        f"({', '.join(BUNDLED_MODELS)})"
    )


def load_model(
    name_or_path: str | Path, *, expected_model: str | None = None, device: str = "cpu"
) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuilds a model from a checkpoint or bundled name: ``(model in eval mode, meta)``.

    ``meta`` holds ``model_name``, ``model_args``, ``config``, ``metrics`` and
    ``training_state``. ``expected_model`` (e.g. "hptr") rejects other models clearly.
    """
    path = resolve_model_path(name_or_path)
    load_plugins()
    if path.suffix == ".onnx":
        raise DataError(
            f"{path}: is an exported ONNX graph; load_model needs a checkpoint (.pt). Use "
            "load_parser(..., backend='onnxruntime') to run it"
        )
    return load_checkpoint(path, expected_model=expected_model, map_location=device)


def hptr_config_from_meta(meta: Mapping[str, Any]) -> Any:
    """The HPTR config saved with a checkpoint (a train config's ``model`` section or a
    model config itself); defaults when the checkpoint carries none."""
    from describeme.models.hptr.config import HPTRConfig

    config = meta.get("config") or {}
    if isinstance(config, str):
        config = json.loads(config)
    candidate = config.get("model") if isinstance(config.get("model"), Mapping) else config
    if isinstance(candidate, Mapping) and candidate.get("name") == "hptr":
        try:
            return HPTRConfig.model_validate(dict(candidate))
        except ValidationError as exc:
            log.warning("checkpoint config is not a valid HPTR config (%s); using defaults",
                        str(exc).splitlines()[0])  # fmt: skip
    return HPTRConfig()


POSTPROCESS_OVERRIDES = "postprocess_overrides"  # meta key load_parser adds for the factories


def with_postprocess_overrides(config: Any, meta: Mapping[str, Any]) -> Any:
    """``config`` (a model config with a ``postprocess`` section) with the settings
    :func:`load_parser` was asked to change, validated by that section's own schema.

    Raises:
        ConfigError: an unknown key or a bad value, naming the keys the model has.
    """
    overrides = dict(meta.get(POSTPROCESS_OVERRIDES) or {})
    if not overrides:
        return config
    section = type(config.postprocess)
    try:
        postprocess = section.model_validate({**config.postprocess.model_dump(), **overrides})
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in exc.errors())
        raise ConfigError(
            f"parser.postprocess for a {config.name} model: {problems} (its settings: "
            f"{', '.join(section.model_fields)})"
        ) from None
    return config.model_copy(update={"postprocess": postprocess})


def _hptr_parser(backend: Any, meta: Mapping[str, Any], size: tuple[int, int] | None) -> Parser:
    from describeme.models.hptr.config import build_postprocessor_from_config

    config = with_postprocess_overrides(hptr_config_from_meta(meta), meta)
    return Parser(
        backend=backend,
        postprocess=build_postprocessor_from_config(config),
        input_size=tuple(size) if size is not None else tuple(config.input_size),
        model_name="hptr",
    )


# Checkpoint model name -> factory(backend, meta, size) building its Parser.
PARSER_FACTORIES: dict[str, ParserFactory] = {"hptr": _hptr_parser}
# Other models' "module:function" registering their checkpoint builder and parser factory;
# called once, before the first load, when the module is installed.
MODEL_PLUGINS: tuple[str, ...] = ("describeme.models.personlab.parser:register",)


def register_parser(model_name: str, factory: ParserFactory) -> None:
    """Lets another model (e.g. PersonLab) provide its Parser factory."""
    PARSER_FACTORIES[model_name] = factory


def load_plugins() -> None:
    """Runs each installed :data:`MODEL_PLUGINS` registration (idempotent and cheap, so it runs
    before every load: a registration table replaced since the last call is filled again)."""
    for target in MODEL_PLUGINS:
        module_name, _, function = target.partition(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name is None or not module_name.startswith(exc.name):
                raise  # the plugin exists but one of its own imports is missing
            log.debug("model plugin %s is not installed", module_name)
            continue
        getattr(module, function)()


def load_parser(
    name_or_path: str | Path,
    *,
    backend: str = "torch",
    size: tuple[int, int] | None = None,
    device: str = "cpu",
    precision: str = "fp32",
    postprocess: Mapping[str, Any] | None = None,
    **options: Any,
) -> Parser:
    """A :class:`Parser` (``parse(frames) -> list[Persons]``) for a checkpoint or bundled name.

    Args:
        name_or_path: ``.pt`` checkpoint, ``.onnx`` graph (onnxruntime/tensorrt), or a name.
        backend: "torch", "onnxruntime" or "tensorrt" (an ``.onnx`` file with "torch" runs
            on onnxruntime).
        size: (height, width) model input; default the checkpoint config's ``input_size``.
        device, precision, options: passed to ``build_backend``.
        postprocess: decoding settings to change from the checkpoint's (keys of the model
            config's ``postprocess`` section, e.g. ``score_threshold``).

    Raises:
        ConfigError: ``postprocess`` names an unknown setting or a bad value.
    """
    from describeme.models.runtime import build_backend

    path = resolve_model_path(name_or_path)
    load_plugins()
    if path.suffix == ".onnx":
        meta, fixed = _onnx_meta(path)
        if fixed is not None and size is not None and tuple(size) != fixed:
            raise ValueError(f"{path}: graph input is fixed at {fixed}, got size={tuple(size)}")
        size = size if size is not None else fixed
        if backend == "torch":  # a graph cannot run in eager torch: its natural engine
            log.info("%s is an ONNX graph: running it with onnxruntime", path)
            backend = "onnxruntime"
        factory = _parser_factory(path, meta)
        engine = build_backend(backend, path, device, precision, **options)
    else:
        model, meta = load_checkpoint(path)
        factory = _parser_factory(path, meta)
        engine = build_backend(backend, model, device, precision, **options)
    if postprocess:
        meta = {**meta, POSTPROCESS_OVERRIDES: dict(postprocess)}
    return factory(engine, meta, None if size is None else (int(size[0]), int(size[1])))


def check_postprocess(name_or_path: str | Path, postprocess: Mapping[str, Any]) -> None:
    """Validates :func:`load_parser`'s ``postprocess`` against the model's settings without
    building its network or backend (the CLI checks before starting Ray).

    Raises:
        ConfigError: an unknown setting or a bad value. DataError: an unreadable model.
    """
    from describeme.models.checkpoint import read_checkpoint

    path = resolve_model_path(name_or_path)
    load_plugins()
    meta = _onnx_meta(path)[0] if path.suffix == ".onnx" else read_checkpoint(path)
    factory = _parser_factory(path, meta)
    factory(None, {**meta, POSTPROCESS_OVERRIDES: dict(postprocess)}, None)


def trained_input_size(meta: Mapping[str, Any]) -> tuple[int, int]:
    """(height, width) a checkpoint's model was trained at, from its saved config."""
    load_plugins()
    parser = _parser_factory(Path(f"<{meta.get('model_name', '')} checkpoint>"), meta)(
        None, meta, None
    )  # a Parser only stores its backend: None is never called here
    return parser.input_size


def _parser_factory(path: Path, meta: Mapping[str, Any]) -> ParserFactory:
    name = str(meta.get("model_name", ""))
    factory = PARSER_FACTORIES.get(name)
    if factory is None:
        raise DataError(
            f"{path}: holds a '{name}' model, which has no parser in this version "
            f"(parsers exist for: {', '.join(sorted(PARSER_FACTORIES))})"
        )
    return factory


def load_predictor(
    name_or_path: str | Path,
    *,
    backend: str = "torch",
    size: tuple[int, int] | None = None,
    device: str = "cpu",
    **options: Any,
) -> Predictor:
    """``predict(sample, image_id) -> Prediction`` for ``describeme eval --model``."""
    return Predictor(load_parser(name_or_path, backend=backend, size=size, device=device,
                                 **options))  # fmt: skip


def parser_from_model(model: nn.Module, config: Any, *, device: str = "cpu") -> Parser:
    """A torch-backend :class:`Parser` around an in-memory model (evaluation during training),
    decoded by the parser factory of its ``model_name``."""
    from describeme.models.runtime.torch_backend import TorchBackend

    load_plugins()
    meta = {"model_name": getattr(model, "model_name", "hptr"),
            "config": config.model_dump(mode="json")}  # fmt: skip
    factory = _parser_factory(Path(f"<in-memory {meta['model_name']}>"), meta)
    return factory(TorchBackend(model=model, device=device), meta, None)


def _onnx_meta(path: Path) -> tuple[dict[str, Any], tuple[int, int] | None]:
    """(meta, fixed input size or None) from an exported graph's metadata."""
    import onnx

    try:
        props = {p.key: p.value for p in onnx.load(str(path), load_external_data=False)
                 .metadata_props}  # fmt: skip
    except Exception as exc:  # onnx raises DecodeError and friends with no common base
        raise DataError(f"{path}: cannot read the ONNX graph ({type(exc).__name__})") from None
    dynamic = json.loads(props.get("dynamic_size", "true"))
    size = tuple(json.loads(props["input_size"])) if "input_size" in props else None
    meta = {"model_name": props.get("model_name", ""), "config": props.get("config", "{}")}
    return meta, (None if dynamic or size is None else (int(size[0]), int(size[1])))
