"""ModelParser on a real (tiny, untrained) HPTR checkpoint, and thumbnails."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from describeme.messages import Frame
from describeme.operators.annotate import crop_jpeg

TINY = dict(backbone="mobilenet_v2", width_multiplier=0.5, pyramid_channels=32, hidden_dim=64,
            heads=4, encoder_layers=1, decoder_layers=2, ffn_dim=128, dropout=0.0,
            num_queries=8, mask_context_dim=32, semantic_hidden=32)


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    import torch

    from describeme.models.checkpoint import save_checkpoint
    from describeme.models.hptr.model import build_hptr

    torch.set_num_threads(1)
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    save_checkpoint(path, build_hptr(**TINY))
    return path


def test_model_parser_returns_one_parsed_frame_per_frame(checkpoint: Path) -> None:
    from describeme.pipeline.parsers import ModelParser

    parser = ModelParser(checkpoint, backend="torch", input_size=(64, 64))
    rng = np.random.default_rng(0)
    frames = [Frame("cam", i, i / 10, 0.0, rng.integers(0, 255, (48, 80, 3), dtype=np.uint8))
              for i in range(3)]
    parsed = parser.parse(frames)
    assert [p.frame_index for p in parsed] == [0, 1, 2]
    for p in parsed:
        assert p.image_size == (48, 80) and p.inference_ms > 0
        assert p.persons.color is not None and p.persons.part_area is not None
        if len(p.persons):  # untrained weights: any number of people, boxes in frame pixels
            assert (p.persons.xyxy[:, 2] <= 80 + 1e-3).all()
            assert p.thumbnails is not None and len(p.thumbnails) == len(p.persons)
    assert parser.parse([]) == []


def test_model_parser_rejects_a_non_checkpoint(tmp_path: Path) -> None:
    from describeme.errors import DataError
    from describeme.pipeline.parsers import ModelParser

    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"not a checkpoint")
    with pytest.raises(DataError):
        ModelParser(bad, backend="torch")


@pytest.mark.parametrize("box", [[10, 5, 30, 45], [-20, -20, 5, 5], [70, 40, 500, 500],
                                 [30, 30, 30, 30]])
def test_crop_jpeg_is_a_jpeg_of_the_requested_height(box: list[float]) -> None:
    import cv2

    image = np.full((48, 80, 3), 128, np.uint8)
    data = crop_jpeg(image, np.array(box, np.float32), height=32)
    decoded = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR)
    assert data[:2] == b"\xff\xd8" and decoded.shape[0] == 32


def test_crop_jpeg_rejects_zero_height() -> None:
    with pytest.raises(ValueError, match="height"):
        crop_jpeg(np.zeros((8, 8, 3), np.uint8), np.array([0, 0, 4, 4]), height=0)
