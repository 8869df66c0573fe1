"""Synthetic still images: exact label invariants, determinism, class coverage, config."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from describeme.config import load_config
from describeme.data.synth import SynthConfig, SyntheticImages, check_sample, render_image
from describeme.errors import ConfigError
from describeme.labels import NUM_COLORS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES

cv2.setNumThreads(1)
REPO = Path(__file__).resolve().parents[3]


def small(size: tuple[int, int] = (160, 120), **people) -> SynthConfig:
    return SynthConfig.model_validate({"width": size[0], "height": size[1], "people": people})


@pytest.fixture(scope="module")
def samples():
    cfg = small(min=2, max=8)
    return [render_image(cfg, seed=3, index=i) for i in range(16)]


def test_every_sample_satisfies_the_label_invariants(samples) -> None:
    for sample in samples:
        assert check_sample(sample) == [], sample.image_id


def test_sample_fields_have_the_documented_types(samples) -> None:
    for s in samples:
        assert s.image.dtype == np.uint8 and s.image.shape == (120, 160, 3)
        assert s.parts.dtype == np.uint8 and s.humans.dtype == np.uint16
        for arr in (s.color, s.size, s.pattern):
            assert arr.dtype == np.uint8 and arr.shape == (120, 160)
        n = s.num_persons
        assert s.keypoints.shape == (n, 17, 3) and s.boxes.shape == (n, 4)
        assert len(s.descriptions) == n and len(s.extra["track_ids"]) == n
        # every person index 1..N has at least one visible pixel
        assert set(np.unique(s.humans)) - {0} == set(range(1, n + 1))


def test_keypoint_visibility_follows_coco(samples) -> None:
    seen = {0: 0, 1: 0, 2: 0}
    for s in samples:
        for k, person in enumerate(s.keypoints):
            for x, y, v in person:
                seen[int(v)] += 1
                if v == 0:
                    assert (x, y) == (0, 0)
                else:
                    assert 0 <= x < s.width and 0 <= y < s.height
                if v == 2:
                    assert s.humans[int(y), int(x)] == k + 1
    assert all(count > 0 for count in seen.values()), seen


def test_skin_and_background_carry_no_characteristics(samples) -> None:
    for s in samples:
        skin_or_bg = np.isin(s.parts, [0, 10, 13, 14, 15, 16, 17])
        for arr in (s.color, s.size, s.pattern):
            assert not arr[skin_or_bg].any()
        assert (s.color[~skin_or_bg] > 0).all()


def test_same_seed_same_bytes_different_seed_differs() -> None:
    cfg = small(min=3, max=5)
    a, b = render_image(cfg, 11, 4), render_image(cfg, 11, 4)
    for name in ("image", "parts", "humans", "color", "size", "pattern", "keypoints"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name
    c = render_image(cfg, 12, 4)
    assert not np.array_equal(a.parts, c.parts) or not np.array_equal(a.image, c.image)
    d = render_image(cfg, 11, 5)
    assert not np.array_equal(a.image, d.image)


def test_dataset_object_indexes_deterministically() -> None:
    data = SyntheticImages(small(max=3), seed=5, length=3)
    assert len(data) == 3
    assert np.array_equal(data[2].parts, render_image(small(max=3), 5, 2).parts)
    with pytest.raises(IndexError):
        data[3]
    with pytest.raises(ValueError, match="length"):
        SyntheticImages(small(), length=0)


def test_every_part_and_characteristic_class_appears() -> None:
    cfg = small(min=4, max=6, height={"min": 150, "max": 300})
    parts, colors, sizes, patterns = (set() for _ in range(4))
    for i in range(40):
        s = render_image(cfg, 21, i)
        parts |= set(np.unique(s.parts).tolist())
        colors |= set(np.unique(s.color).tolist())
        sizes |= set(np.unique(s.size).tolist())
        patterns |= set(np.unique(s.pattern).tolist())
    assert parts == set(range(NUM_PARTS))
    assert colors == set(range(NUM_COLORS))
    assert sizes == set(range(NUM_SIZES))
    assert patterns == set(range(NUM_PATTERNS))


@pytest.mark.parametrize(
    ("width", "height", "people"),
    [(160, 120, 0), (32, 32, 3), (160, 120, 1), (96, 72, 20)],
    ids=["empty", "tiny-image", "one", "crowd"],
)
def test_edge_cases_still_valid(width: int, height: int, people: int) -> None:
    cfg = small((width, height), min=people, max=people)
    for i in range(3):
        s = render_image(cfg, 2, i)
        assert check_sample(s) == []
        if people == 0:
            assert s.num_persons == 0 and s.keypoints.shape == (0, 17, 3)
        assert s.num_persons <= people


def test_default_yaml_mirrors_the_schema_defaults() -> None:
    assert load_config(REPO / "configs/synth/default.yaml", SynthConfig) == SynthConfig()
    video = load_config(REPO / "configs/synth/video.yaml", SynthConfig)
    assert video.video.seconds == 20.0


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["people.maxx=3"], "unknown key 'people.maxx'"),
        (["people.max=lots"], "'people.max' must be an integer"),
        (["people.min=5", "people.max=2"], "must not exceed"),
        (["outfit.hat=1.5"], "outfit.hat"),
        (["width=4"], "width"),
    ],
)
def test_bad_config_is_a_clear_error(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_config(None, SynthConfig, overrides)


def test_bad_config_file_names_file_and_key(tmp_path: Path) -> None:
    path = tmp_path / "synth.yaml"
    path.write_text("people:\n  max: 4\n  colour: red\n")
    with pytest.raises(ConfigError, match=r"synth\.yaml.*people\.colour"):
        load_config(path, SynthConfig)


def test_negative_index_rejected() -> None:
    with pytest.raises(ValueError, match="index"):
        render_image(small(), 0, -1)


def test_ground_truth_persons_match_the_sample(samples) -> None:
    from describeme.data.synth.persons import persons_from_sample

    for sample in samples[:6]:
        persons = persons_from_sample(sample)
        assert len(persons) == sample.num_persons
        assert (persons.track_id == -1).all()
        for k in range(len(persons)):
            full = persons.masks[k].to_full()
            assert np.array_equal(full > 0, sample.humans == k + 1)
            assert np.array_equal(full[full > 0], sample.parts[full > 0])
            present = persons.part_area[k] > 0
            # one distribution per present characterized part, none elsewhere
            color_rows = persons.color[k].sum(axis=1)
            assert set(np.unique(color_rows[present])) <= {0.0, 1.0}
            assert not color_rows[~present].any()
            for part in np.flatnonzero(color_rows):
                where = (sample.humans == k + 1) & (sample.parts == part)
                assert persons.color[k, part].argmax() == sample.color[where][0]
