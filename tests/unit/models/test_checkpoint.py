"""Self-describing checkpoints: round trip and every bad-file case."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from describeme.errors import DataError
from describeme.models.checkpoint import (
    FORMAT_VERSION,
    load_checkpoint,
    read_checkpoint,
    save_checkpoint,
)
from describeme.models.hptr.config import build_model_from_config, load_hptr_config

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"


@pytest.fixture(scope="module")
def config():
    return load_hptr_config(CONFIGS / "hptr_tiny.yaml")


@pytest.fixture(scope="module")
def model(config):
    torch.manual_seed(0)
    return build_model_from_config(config).eval()


@pytest.fixture()
def saved(tmp_path, model, config) -> Path:
    return save_checkpoint(
        tmp_path / "ckpt" / "hptr.pt", model, config=config, metrics={"miou": 0.5}
    )


def test_round_trip_rebuilds_the_same_model_from_the_file_alone(saved, model, config) -> None:
    loaded, meta = load_checkpoint(saved, expected_model="hptr")
    assert not loaded.training
    images = torch.rand(1, 3, 64, 64)
    with torch.no_grad():
        expected, actual = model(images), loaded(images)
    for name in model.output_names:
        assert torch.equal(expected[name], actual[name])
    assert meta["model_name"] == "hptr"
    assert meta["format_version"] == FORMAT_VERSION
    assert meta["model_args"] == model.model_args
    assert meta["config"] == config.model_dump(mode="json")
    assert meta["metrics"] == {"miou": 0.5}
    assert "state_dict" not in meta


def test_training_state_is_kept(tmp_path, model) -> None:
    path = save_checkpoint(tmp_path / "a.pt", model, training_state={"epoch": 3, "step": 120})
    assert read_checkpoint(path)["training_state"] == {"epoch": 3, "step": 120}


def test_checkpoint_of_another_model_is_rejected(tmp_path, model, monkeypatch) -> None:
    from describeme.models import checkpoint

    # A model this installation has no builder for (whatever earlier tests registered).
    monkeypatch.setattr(checkpoint, "MODEL_BUILDERS", {"hptr": checkpoint.MODEL_BUILDERS["hptr"]})
    path = save_checkpoint(tmp_path / "personlab.pt", model, model_name="personlab")
    with pytest.raises(DataError, match="holds a 'personlab' model, expected 'hptr'"):
        load_checkpoint(path, expected_model="hptr")
    with pytest.raises(DataError, match="unknown model 'personlab'"):
        load_checkpoint(path)


@pytest.mark.parametrize("keep", [0.5, 0.05])
def test_truncated_file_is_reported(saved, keep: float) -> None:
    data = saved.read_bytes()
    saved.write_bytes(data[: int(len(data) * keep)])
    with pytest.raises(DataError, match="truncated or corrupt"):
        load_checkpoint(saved)


def test_corrupted_bytes_are_reported(saved) -> None:
    data = bytearray(saved.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 4096] = bytes(4096)
    saved.write_bytes(bytes(data))
    with pytest.raises(DataError, match="checkpoint"):
        load_checkpoint(saved)


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"name: hptr\n", "not a describeme checkpoint"),
        (b"", "not a describeme checkpoint"),
    ],
)
def test_non_checkpoint_files_are_reported(tmp_path, content: bytes, message: str) -> None:
    path = tmp_path / "model.pt"
    path.write_bytes(content)
    with pytest.raises(DataError, match=message):
        load_checkpoint(path)


def test_bare_state_dict_is_reported(tmp_path, model) -> None:
    path = tmp_path / "weights.pt"
    torch.save(model.state_dict(), path)
    with pytest.raises(DataError, match="bare state_dict"):
        load_checkpoint(path)


def test_missing_file_is_reported(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_checkpoint(tmp_path / "nope.pt")


def test_newer_format_is_reported(saved) -> None:
    payload = torch.load(saved, weights_only=True)
    payload["format_version"] = FORMAT_VERSION + 1
    torch.save(payload, saved)
    with pytest.raises(DataError, match="newer"):
        load_checkpoint(saved)


def test_weights_that_do_not_fit_the_arguments_are_reported(saved) -> None:
    payload = torch.load(saved, weights_only=True)
    payload["model_args"]["hidden_dim"] = 32
    torch.save(payload, saved)
    with pytest.raises(DataError, match="weights do not fit the 'hptr' model"):
        load_checkpoint(saved)


def test_unknown_model_argument_is_reported(saved) -> None:
    payload = torch.load(saved, weights_only=True)
    payload["model_args"]["depth"] = 3
    torch.save(payload, saved)
    with pytest.raises(DataError, match="cannot rebuild 'hptr'"):
        load_checkpoint(saved)


def test_model_without_model_args_cannot_be_saved(tmp_path) -> None:
    with pytest.raises(ValueError, match="build it with its build_"):
        save_checkpoint(tmp_path / "x.pt", torch.nn.Linear(2, 2))


def test_release_checkpoint_drops_training_state_and_keeps_the_model(tmp_path, model) -> None:
    from describeme.models.checkpoint import release_checkpoint

    state = {"optimizer": {"m": torch.zeros(50_000)}, "step": 7}
    source = save_checkpoint(tmp_path / "last.pt", model, metrics={"miou": 0.5},
                             training_state=state)  # fmt: skip
    released = release_checkpoint(source, tmp_path / "out" / "hptr.pt")
    payload = read_checkpoint(released)
    assert payload["training_state"] is None and payload["metrics"] == {"miou": 0.5}
    assert released.stat().st_size < source.stat().st_size - 150_000
    rebuilt, _ = load_checkpoint(released)
    for key, value in model.state_dict().items():
        assert torch.equal(rebuilt.state_dict()[key], value)


def test_release_of_a_non_checkpoint_is_reported(tmp_path) -> None:
    from describeme.models.checkpoint import release_checkpoint

    bad = tmp_path / "x.pt"
    bad.write_bytes(b"not a zip")
    with pytest.raises(DataError, match="not a describeme checkpoint"):
        release_checkpoint(bad, tmp_path / "y.pt")
    assert not (tmp_path / "y.pt").exists()
