"""Config loading: strict keys, typed values, overrides, errors naming file and key."""

from __future__ import annotations

from pathlib import Path

import pytest

from describeme.config import StrictModel, dump_config, load_config, parse_overrides
from describeme.errors import ConfigError


class Optimizer(StrictModel):
    lr: float = 1e-3
    betas: tuple[float, float] = (0.9, 0.999)


class Train(StrictModel):
    name: str = "hptr"
    epochs: int = 10
    amp: bool = True
    optimizer: Optimizer = Optimizer()


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "train.yaml"
    path.write_text(text)
    return path


def test_defaults_without_file() -> None:
    assert load_config(None, Train).epochs == 10


def test_file_values_and_overrides(tmp_path: Path) -> None:
    path = write(tmp_path, "epochs: 3\noptimizer:\n  lr: 0.01\n")
    cfg = load_config(path, Train, overrides=["optimizer.lr=3e-4", "amp=false", "name=x"])
    assert cfg.epochs == 3 and cfg.optimizer.lr == pytest.approx(3e-4) and cfg.amp is False
    assert cfg.name == "x"


@pytest.mark.parametrize(
    ("text", "overrides", "message"),
    [
        ("epochz: 3\n", [], r"train\.yaml: unknown key 'epochz'"),
        ("optimizer:\n  lrr: 1\n", [], r"unknown key 'optimizer\.lrr'"),
        ("epochs: many\n", [], r"key 'epochs' must be an integer, got 'many'"),
        ("amp: maybe\n", [], r"key 'amp' must be a boolean"),
        ("optimizer: 3\n", [], r"key 'optimizer' must be a mapping"),
        ("", ["optimizer.lr=fast"], r"with -o overrides\): key 'optimizer\.lr' must be a number"),
        ("- 1\n- 2\n", [], r"top level must be a mapping"),
        ("epochs: [1\n", [], r"train\.yaml: line \d+, column \d+: invalid YAML"),
    ],
)
def test_errors_name_file_key_and_type(
    tmp_path: Path, text: str, overrides: list[str], message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(write(tmp_path, text), Train, overrides=overrides)


def test_missing_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config file not found"):
        load_config(tmp_path / "nope.yaml", Train)


@pytest.mark.parametrize("bad", ["noequals", "=1", "a..b=1"])
def test_bad_override_syntax(bad: str) -> None:
    with pytest.raises(ConfigError, match="key.sub=value"):
        parse_overrides([bad])


def test_override_values_are_yaml_scalars() -> None:
    assert parse_overrides(["a.b=[1, 2]", "c=null", "d=hello"]) == {
        "a": {"b": [1, 2]},
        "c": None,
        "d": "hello",
    }


@pytest.mark.parametrize(
    ("text", "value"),
    [("p=cam:", "cam:"), ("p=a: b", "a: b"), ("p=- x", "- x"), ("p={a: 1}", {"a": 1}),
     ("p= [1]", [1])],
)  # fmt: skip
def test_block_yaml_in_an_override_stays_text_flow_yaml_parses(text: str, value) -> None:
    assert parse_overrides([text]) == {"p": value}


def test_dump_round_trips(tmp_path: Path) -> None:
    cfg = load_config(None, Train, overrides=["epochs=7"])
    path = write(tmp_path, dump_config(cfg))
    assert load_config(path, Train) == cfg
