"""Box conversions, letterbox inversion and message validation."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.geometry import Letterbox, box_cxcywh_to_xyxy, box_iou_xyxy, box_xyxy_to_cxcywh
from describeme.messages import (
    Frame,
    FrameBatch,
    ParsedFrame,
    TrackDescription,
    TrackEvent,
)
from describeme.types import Persons


def test_box_format_round_trip() -> None:
    boxes = np.array([[0, 0, 10, 20], [5, 5, 6, 9]], np.float32)
    assert np.allclose(box_cxcywh_to_xyxy(box_xyxy_to_cxcywh(boxes)), boxes)
    assert box_xyxy_to_cxcywh(boxes)[0].tolist() == [5, 10, 10, 20]


@pytest.mark.parametrize(
    ("a", "b", "iou"),
    [
        ([0, 0, 10, 10], [0, 0, 10, 10], 1.0),  # full overlap
        ([0, 0, 10, 10], [10, 0, 20, 10], 0.0),  # touching
        ([0, 0, 10, 10], [5, 0, 15, 10], 50 / 150),  # half
        ([0, 0, 0, 0], [0, 0, 0, 0], 0.0),  # degenerate
    ],
)
def test_box_iou_table(a: list[float], b: list[float], iou: float) -> None:
    assert box_iou_xyxy(np.array([a]), np.array([b]))[0, 0] == pytest.approx(iou)


def test_box_iou_empty_shapes() -> None:
    assert box_iou_xyxy(np.zeros((0, 4)), np.zeros((3, 4))).shape == (0, 3)


def test_letterbox_inverts_boxes_and_pads_centered() -> None:
    box = Letterbox.fit((576, 768), (384, 512))
    assert box.scale == pytest.approx(2 / 3) and (box.pad_x, box.pad_y) == (0, 0)
    tall = Letterbox.fit((400, 200), (256, 256))
    assert tall.pad_x == 64 and tall.pad_y == 0
    source = np.array([[20, 40, 100, 300]], np.float32)
    model = source * tall.scale + np.array([tall.pad_x, tall.pad_y] * 2)
    assert np.allclose(tall.boxes_to_source(model), source, atol=1e-4)
    image = np.zeros((400, 200, 3), np.uint8)
    assert tall.apply(image).shape == (256, 256, 3)
    with pytest.raises(ValueError, match="letterbox expects"):
        tall.apply(np.zeros((10, 10, 3), np.uint8))
    with pytest.raises(ValueError, match="positive"):
        Letterbox.fit((0, 10), (10, 10))


def _frame(stream: str = "cam1", index: int = 0) -> Frame:
    return Frame(stream, index, 0.1 * index, 1.7e9, np.zeros((4, 4, 3), np.uint8))


def test_frame_validation() -> None:
    with pytest.raises(ValueError, match=r"\(H, W, 3\) uint8"):
        Frame("cam", 0, 0.0, 0.0, np.zeros((4, 4), np.uint8))
    with pytest.raises(ValueError, match="stream_id"):
        Frame("", 0, 0.0, 0.0, np.zeros((4, 4, 3), np.uint8))
    with pytest.raises(ValueError, match="frame_index"):
        _frame(index=-1)


def test_frame_batch_rejects_mixed_streams() -> None:
    batch = FrameBatch("cam1", [_frame(index=3), _frame(index=4)])
    assert len(batch) == 2 and batch.frame_index == 3
    with pytest.raises(ValueError, match="holds a frame of 'cam2'"):
        FrameBatch("cam1", [_frame(), _frame("cam2")])


def test_parsed_frame_thumbnail_count() -> None:
    persons = Persons(xyxy=np.zeros((2, 4)), score=np.ones(2))
    ParsedFrame("cam", 0, 0.0, 0.0, (4, 4), persons, thumbnails=[b"a", b"b"])
    with pytest.raises(ValueError, match="2 persons but 1 thumbnails"):
        ParsedFrame("cam", 0, 0.0, 0.0, (4, 4), persons, thumbnails=[b"a"])


def test_track_description_and_event_validation() -> None:
    desc = TrackDescription("cam", 3, 10, 1.0, 0.5, 1.0, 0.0, 0.0, [], "person")
    assert desc.key == ("cam", 3)
    with pytest.raises(ValueError, match="track_id"):
        TrackDescription("cam", -1, 10, 1.0, 0.5, 1.0, 0.0, 0.0, [], "")
    with pytest.raises(ValueError, match="precedes"):
        TrackDescription("cam", 1, 10, 1.0, 2.0, 1.0, 0.0, 0.0, [], "")
    event = TrackEvent("cam", 3, 10, 1.0, "changed", "coat: present -> absent")
    assert event.key == ("cam", 3, 10, "changed")
    with pytest.raises(ValueError, match="kind must be one of"):
        TrackEvent("cam", 3, 10, 1.0, "exploded")
