"""YAML configuration loaded into strict, typed pydantic models.

Every config section subclasses :class:`StrictModel`: an unknown key or a wrong type is an
error that names the file, the dotted key and the expected type. ``-o key.sub=value``
overrides are parsed as YAML scalars (``-o train.lr=3e-4``, ``-o data.sizes=[512,384]``) and
applied before validation, so they are checked exactly like file values.

Example::

    cfg = load_config("configs/synth/default.yaml", SynthConfig, overrides=["people.max=5"])
    print(dump_config(cfg))
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ConfigDict, ValidationError

from describeme.errors import ConfigError

log = logging.getLogger(__name__)


class StrictModel(BaseModel):
    """Base for config sections: unknown keys are errors, assignments are validated."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True, frozen=False)


ConfigT = TypeVar("ConfigT", bound=BaseModel)

_TYPE_WORDS = {
    "int_parsing": "an integer",
    "int_type": "an integer",
    "int_from_float": "an integer",
    "float_parsing": "a number",
    "float_type": "a number",
    "bool_parsing": "a boolean (true/false)",
    "bool_type": "a boolean (true/false)",
    "string_type": "a string",
    "list_type": "a list",
    "tuple_type": "a list",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "literal_error": None,  # pydantic's own message lists the allowed values
}


def format_validation_error(error: ValidationError, source: str) -> str:
    """Turns a pydantic error into one line per problem, naming file, key and expectation."""
    lines = []
    for item in error.errors():
        key = ".".join(str(part) for part in item["loc"]) or "<root>"
        kind = item["type"]
        if kind == "extra_forbidden":
            lines.append(f"{source}: unknown key '{key}' (check the spelling; see --dump-config)")
            continue
        if kind == "missing":
            lines.append(f"{source}: missing required key '{key}'")
            continue
        expected = _TYPE_WORDS.get(kind)
        got = item.get("input")
        got_text = f", got {got!r}" if not isinstance(got, (dict, list)) else ""
        if expected:
            lines.append(f"{source}: key '{key}' must be {expected}{got_text}")
        else:
            lines.append(f"{source}: key '{key}': {item['msg']}{got_text}")
    return "; ".join(lines)


def read_yaml(path: str | Path) -> dict[str, Any]:
    """Reads a YAML mapping, raising :class:`ConfigError` naming the file on any problem."""
    path = Path(path)
    if not path.is_file():
        raise ConfigError(f"{path}: config file not found")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
        raise ConfigError(f"{path}:{where}: invalid YAML: {problem}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read config: {exc}") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: top level must be a mapping of keys, got {type(data).__name__}")
    return data


def parse_overrides(overrides: Iterable[str]) -> dict[str, Any]:
    """Parses ``key.sub=value`` strings into a nested dict (values as YAML scalars)."""
    result: dict[str, Any] = {}
    for text in overrides:
        key, sep, raw = text.partition("=")
        key = key.strip()
        if not sep or not key or any(not part for part in key.split(".")):
            raise ConfigError(f"override {text!r} must look like key.sub=value")
        try:
            value = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            value = raw
        if isinstance(value, dict | list) and not raw.lstrip().startswith(("{", "[")):
            value = raw  # "prefix=cam:" is the text, not YAML's block mapping {cam: null}
        node = result
        parts = key.split(".")
        for part in parts[:-1]:
            child = node.setdefault(part, {})
            if not isinstance(child, dict):
                raise ConfigError(
                    f"override {text!r} conflicts with an earlier override of {part!r}"
                )
            node = child
        node[parts[-1]] = value
    return result


def deep_merge(base: Mapping[str, Any], update: Mapping[str, Any]) -> dict[str, Any]:
    """Returns ``base`` updated recursively by ``update`` (mappings merge, the rest replaces)."""
    merged = dict(base)
    for key, value in update.items():
        if isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def build_config(
    schema: type[ConfigT],
    data: Mapping[str, Any],
    source: str = "<config>",
    overrides: Iterable[str] = (),
) -> ConfigT:
    """Validates a mapping (plus overrides) into ``schema``; errors name ``source``."""
    override_map = parse_overrides(overrides)
    merged = deep_merge(data, override_map)
    try:
        return schema.model_validate(merged)
    except ValidationError as exc:
        label = source if not override_map else f"{source} (with -o overrides)"
        raise ConfigError(format_validation_error(exc, label)) from None


def load_config(
    path: str | Path | None, schema: type[ConfigT], overrides: Iterable[str] = ()
) -> ConfigT:
    """Loads ``path`` (or the schema's defaults when None) into ``schema``.

    Args:
        path: YAML file, or None for the defaults built into ``schema``.
        schema: a :class:`StrictModel` subclass.
        overrides: ``key.sub=value`` strings applied on top of the file.

    Raises:
        ConfigError: the file is missing or malformed, a key is unknown, or a value has the
            wrong type; the message names the file and the key.
    """
    data = read_yaml(path) if path is not None else {}
    config = build_config(schema, data, str(path) if path is not None else "<defaults>", overrides)
    log.debug("resolved config from %s:\n%s", path or "<defaults>", dump_config(config))
    return config


def dump_config(config: BaseModel) -> str:
    """The resolved config as YAML text (what gets saved with checkpoints and runs)."""
    return yaml.safe_dump(config.model_dump(mode="json"), sort_keys=False)
