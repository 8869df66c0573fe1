"""The ground-truth stand-in parser (a test double): boxes, descriptions, noise, errors."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from describeme import labels as L
from describeme.data.sample import Sample, boxes_from_humans
from describeme.errors import DataError
from describeme.messages import Frame
from describeme.operators.standin import (
    GroundTruthParser,
    find_sidecars,
    persons_from_sample,
    read_gt_boxes,
)

from .conftest import FPS, HEIGHT, WIDTH, person_box


def _frame(index: int, stream: str = "s") -> Frame:
    return Frame(stream, index, index / FPS, 0.0, np.zeros((HEIGHT, WIDTH, 3), np.uint8))


def _parser(clip: Path, **kwargs: float) -> GroundTruthParser:
    parser = GroundTruthParser(**kwargs)
    parser.register_stream("s", str(clip))
    return parser


def test_boxes_and_descriptions_follow_the_ground_truth(clip: Path) -> None:
    parsed = _parser(clip).parse([_frame(0), _frame(7)])
    assert [p.frame_index for p in parsed] == [0, 7]
    persons = parsed[1].persons
    assert len(persons) == 2
    x, y, w, h = person_box(1, 8)  # frame index 7 is MOT frame 8
    np.testing.assert_allclose(persons.xyxy[0], [x, y, x + w, y + h])
    upper = L.UPPER_CLOTHES
    assert persons.color[0, upper].argmax() == L.COLOR_ID["red"]
    assert persons.size[0, upper].argmax() == L.SIZE_ID["short"]
    assert persons.pattern[0, upper].argmax() == L.PATTERN_ID["solid"]
    # Both shoes carry the "shoes" group description.
    for shoe in (L.LEFT_SHOE, L.RIGHT_SHOE):
        assert persons.part_area[0, shoe] > 0
        assert persons.color[0, shoe].argmax() == L.COLOR_ID["dark"]
    # Skin parts have area but no characteristics.
    assert persons.part_area[0, L.FACE] > 0 and persons.color[0, L.FACE].sum() == 0
    assert parsed[1].thumbnails is not None and parsed[1].thumbnails[0][:2] == b"\xff\xd8"


@pytest.mark.parametrize(("index", "coat", "upper"), [(0, True, False), (4, True, False),
                                                     (5, False, True), (11, False, True)])
def test_appearance_segments_switch_at_the_right_frame(clip: Path, index: int, coat: bool,
                                                       upper: bool) -> None:
    persons = _parser(clip).parse([_frame(index)])[0].persons
    assert (persons.part_area[1, L.COAT] > 0) == coat
    assert (persons.part_area[1, L.UPPER_CLOTHES] > 0) == upper


def test_frames_without_people_give_empty_persons(clip: Path) -> None:
    parsed = _parser(clip).parse([_frame(40)])[0]
    assert len(parsed.persons) == 0 and parsed.persons.color is not None


def test_noise_is_seeded_per_frame_not_per_batch(clip: Path) -> None:
    noisy = {"seed": 3, "box_jitter": 0.05, "flip_prob": 0.5, "drop_prob": 0.2}
    batched = _parser(clip, **noisy).parse([_frame(i) for i in range(10)])
    single = [_parser(clip, **noisy).parse([_frame(i)])[0] for i in range(10)]
    assert all(a.persons == b.persons for a, b in zip(batched, single, strict=True))
    exact = _parser(clip).parse([_frame(i) for i in range(10)])
    assert any(a.persons != b.persons for a, b in zip(batched, exact, strict=True))
    other_seed = _parser(clip, **{**noisy, "seed": 4}).parse([_frame(i) for i in range(10)])
    assert any(a.persons != b.persons for a, b in zip(batched, other_seed, strict=True))


def test_unregistered_stream_is_a_clear_error(clip: Path) -> None:
    with pytest.raises(DataError, match="register_stream"):
        _parser(clip).parse([_frame(0, stream="other")])


def test_missing_sidecars_name_both_layouts(tmp_path: Path) -> None:
    video = tmp_path / "real.mp4"
    video.write_bytes(b"")
    with pytest.raises(DataError, match="gt.txt.*real_gt.txt.*not on real video"):
        find_sidecars(video)


def test_sample_clip_naming_is_found(tmp_path: Path, clip: Path) -> None:
    (tmp_path / "sample.mp4").write_bytes(b"")
    (tmp_path / "sample_gt.txt").write_text("1,1,0,0,10,10,1,1,1\n")
    (tmp_path / "sample_tracks.json").write_text('{"fps": 10, "tracks": []}')
    gt, tracks = find_sidecars(tmp_path / "sample.mp4")
    assert gt.name == "sample_gt.txt" and tracks.name == "sample_tracks.json"


@pytest.mark.parametrize(("content", "match"), [("1,2,3\n", "expected 'frame,id"),
                                                ("a,b,c,d,e,f,1,1,1\n", "expected 'frame,id")])
def test_bad_gt_rows_name_file_and_line(tmp_path: Path, content: str, match: str) -> None:
    path = tmp_path / "gt.txt"
    path.write_text("1,1,0,0,10,10,1,1,1\n" + content)
    with pytest.raises(DataError, match=f"gt.txt:2: {match}"):
        read_gt_boxes(path)


def test_unknown_part_name_in_tracks_json(tmp_path: Path, clip: Path) -> None:
    root = tmp_path / "v"
    (root / "gt").mkdir(parents=True)
    (root / "video.mp4").write_bytes(b"")
    (root / "gt" / "gt.txt").write_text("1,1,0,0,10,10,1,1,1\n")
    (root / "tracks.json").write_text(json.dumps({"fps": 10, "tracks": [{"id": 1, "segments": [
        {"from_frame": 1, "to_frame": 1, "parts": {"cape": {"color": "red"}}}]}]}))
    parser = GroundTruthParser()
    parser.register_stream("s", str(root / "video.mp4"))
    with pytest.raises(DataError, match="unknown part name 'cape'"):
        parser.parse([_frame(0)])


@pytest.mark.parametrize("name", ["box_jitter", "drop_prob", "flip_prob", "min_visibility"])
def test_bad_noise_settings(name: str) -> None:
    with pytest.raises(ValueError, match=name):
        GroundTruthParser(**{name: 1.5})


def test_persons_from_sample_counts_pixels_exactly() -> None:
    parts = np.zeros((20, 20), np.uint8)
    humans = np.zeros((20, 20), np.uint16)
    color = np.zeros((20, 20), np.uint8)
    parts[2:10, 2:8] = L.UPPER_CLOTHES  # 48 px: 42 red + 6 blue (last row)
    color[2:10, 2:8] = L.COLOR_ID["red"]
    color[9, 2:8] = L.COLOR_ID["blue"]
    parts[10:18, 2:8] = L.PANTS  # 48 px blue
    color[10:18, 2:8] = L.COLOR_ID["blue"]
    humans[2:18, 2:8] = 1
    parts[5:9, 12:16] = L.FACE
    humans[5:9, 12:16] = 2
    sample = Sample("x", np.zeros((20, 20, 3), np.uint8), parts, humans, boxes_from_humans(humans),
                    color=color, size=np.zeros_like(color), pattern=np.zeros_like(color))
    persons = persons_from_sample(sample)
    assert len(persons) == 2
    assert persons.part_area[0, L.UPPER_CLOTHES] == 48 and persons.part_area[1, L.FACE] == 16
    np.testing.assert_allclose(persons.color[0, L.UPPER_CLOTHES, [5, 10]], [42 / 48, 6 / 48])
    assert persons.color[1].sum() == 0
    np.testing.assert_array_equal(persons.masks[0].to_full(), np.where(humans == 1, parts, 0))
