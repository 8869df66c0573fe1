"""Annotated frames and the MP4 writer."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from describeme import labels as L
from describeme.errors import DataError
from describeme.masks import RunLengthMask
from describeme.operators.annotate import AnnotatedVideoWriter, draw_persons, track_color
from describeme.types import Persons


def _persons(track_ids: list[int], with_masks: bool = True) -> Persons:
    n = len(track_ids)
    boxes = np.array([[10 + 30 * i, 20, 30 + 30 * i, 60] for i in range(n)], np.float32)
    masks = None
    if with_masks:
        masks = []
        for i in range(n):
            labels = np.zeros((80, 120), np.uint8)
            labels[20:40, 10 + 30 * i:30 + 30 * i] = L.UPPER_CLOTHES
            labels[40:60, 10 + 30 * i:30 + 30 * i] = L.PANTS
            masks.append(RunLengthMask.encode(labels))
    return Persons(xyxy=boxes.reshape(n, 4), score=np.ones(n, np.float32),
                   track_id=np.array(track_ids, np.int64), masks=masks)


def test_masks_are_painted_in_part_colours_and_outside_untouched() -> None:
    image = np.full((80, 120, 3), 100, np.uint8)
    out = draw_persons(image, _persons([0]), mask_alpha=1.0)
    assert out is not image and (image == 100).all()
    bgr_upper = L.PART_PALETTE[L.UPPER_CLOTHES][::-1]
    np.testing.assert_array_equal(out[30, 20], bgr_upper)
    np.testing.assert_array_equal(out[50, 20], L.PART_PALETTE[L.PANTS][::-1])
    np.testing.assert_array_equal(out[75, 110], [100, 100, 100])


@pytest.mark.parametrize("track_ids", [[], [-1], [0, 1, 2]])
def test_boxes_and_captions_are_drawn(track_ids: list[int]) -> None:
    image = np.zeros((80, 120, 3), np.uint8)
    out = draw_persons(image, _persons(track_ids, with_masks=False),
                       captions={0: "person with a very long description " * 4})
    assert (out != 0).any() == bool(track_ids)


def test_track_colours_are_stable_and_distinct() -> None:
    assert track_color(3) == track_color(3)
    assert len({track_color(i) for i in range(10)}) == 10
    assert track_color(-1) == (160, 160, 160)


@pytest.mark.parametrize(
    ("image", "kwargs", "match"),
    [(np.zeros((80, 120), np.uint8), {}, "must be \\(H, W, 3\\) uint8"),
     (np.zeros((80, 120, 3), np.uint8), {"mask_alpha": 2.0}, "mask_alpha"),
     (np.zeros((40, 120, 3), np.uint8), {}, "mask of person 0 is for a")],
)  # fmt: skip
def test_bad_inputs(image: np.ndarray, kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        draw_persons(image, _persons([0]), **kwargs)


def test_writer_encodes_every_frame_in_pts_order(tmp_path: Path) -> None:
    import av

    path = tmp_path / "out" / "annotated.mp4"
    stamps = [0.0, 0.1, 0.1, 0.3, 0.2] + [0.4 + i / 15 for i in range(40)]  # repeats, backward
    with AnnotatedVideoWriter(path, nominal_fps=30) as writer:
        for i, pts in enumerate(stamps):
            writer.write(np.full((81, 121, 3), 5 * i, np.uint8), pts)
    with av.open(str(path)) as container:
        frames = list(container.decode(video=0))
    assert len(frames) == len(stamps)
    assert (frames[0].height, frames[0].width) == (80, 120)  # even sizes for yuv420p
    times = [f.time for f in frames]
    assert times == sorted(times) and len(set(times)) == len(stamps)
    assert times[-1] == pytest.approx(stamps[-1], abs=0.002)


def test_writer_rejects_non_mp4_names(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="use an .mp4"):
        AnnotatedVideoWriter(tmp_path / "out.avi")
