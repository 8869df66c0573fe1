"""Synthetic video: persistent identities, frame count, coat removal, MOT files."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest

from describeme.data import layout
from describeme.data.synth import SynthConfig, check_folder, check_sample, plan_video, render_video
from describeme.data.synth.check import load_mot
from describeme.data.synth.video import write_video_dataset
from describeme.errors import ConfigError
from describeme.labels import COAT

cv2.setNumThreads(1)


def config(**video) -> SynthConfig:
    base = {"fps": 5.0, "seconds": 3.0, "people": 4, "coat_removal": True}
    return SynthConfig.model_validate({"width": 160, "height": 120, "video": {**base, **video}})


@pytest.fixture(scope="module")
def frames():
    return list(render_video(config(), seed=2))


def test_frame_count_is_fps_times_seconds(frames) -> None:
    assert [index for index, _, _ in frames] == list(range(15))


def test_frames_satisfy_label_invariants(frames) -> None:
    for index, image, sample in frames:
        assert image is sample.image and image.shape == (120, 160, 3)
        assert check_sample(sample) == [], index


def test_track_ids_are_unique_per_frame_and_outfits_persist(frames) -> None:
    first_parts: dict[int, dict] = {}
    for _, _, sample in frames:
        ids = sample.extra["track_ids"].tolist()
        assert len(ids) == len(set(ids))
        for k, tid in enumerate(ids):
            desc = sample.descriptions[k]
            assert desc["track_id"] == tid
            parts = {n: (p["color"], p["pattern"]) for n, p in desc["parts"].items() if n != "coat"}
            first_parts.setdefault(tid, parts)
            assert parts == first_parts[tid], tid  # same person, same clothes (coat aside)


def test_coat_removal_segment(frames) -> None:
    plan = plan_video(config(), seed=2)
    track = plan.tracks[0]
    assert track.change_at is not None and COAT in track.outfit.parts
    change_frame = int(np.ceil(track.change_at * plan.fps))
    coat_before = coat_after = 0
    for index, _, sample in frames:
        ids = sample.extra["track_ids"].tolist()
        if track.track_id not in ids:
            continue
        human = ids.index(track.track_id) + 1
        coat = int(((sample.humans == human) & (sample.parts == COAT)).sum())
        if index < change_frame:
            coat_before += coat
        else:
            coat_after += coat
    assert coat_before > 0 and coat_after == 0


def test_coat_removal_can_be_disabled() -> None:
    plan = plan_video(config(coat_removal=False), seed=2)
    assert all(t.change_at is None for t in plan.tracks)


def test_same_seed_same_frames() -> None:
    cfg = config(seconds=1.0)
    a = [s.parts for _, _, s in render_video(cfg, 7)]
    b = [s.parts for _, _, s in render_video(cfg, 7)]
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_written_clip_passes_the_checker(tmp_path: Path) -> None:
    out = write_video_dataset(tmp_path / "clip", config(), seed=2)
    assert check_folder(out) == []
    rows = load_mot(out / layout.MOT_GT)
    assert rows.shape[1] == 9 and rows[:, 0].min() >= 1 and rows[:, 0].max() <= 15
    import json

    tracks = json.loads((out / layout.TRACKS_JSON).read_text())["tracks"]
    changed = [t for t in tracks if len(t["segments"]) == 2]
    assert changed and "coat" in changed[0]["segments"][0]["parts"]
    assert "coat" not in changed[0]["segments"][1]["parts"]


def test_checker_catches_duplicate_mot_rows(tmp_path: Path) -> None:
    out = write_video_dataset(tmp_path / "clip", config(seconds=1.0), seed=3)
    gt = out / layout.MOT_GT
    lines = gt.read_text().splitlines()
    gt.write_text("\n".join(lines + [lines[0]]) + "\n")
    assert any("more than one row" in v for v in check_folder(out))


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        ({"width": 161}, "even"),
        ({"video": {"fps": 1.0, "seconds": 0.2}}, "frames"),
    ],
)
def test_bad_video_config(overrides: dict, message: str) -> None:
    cfg = SynthConfig.model_validate({"width": 160, "height": 120, **overrides})
    with pytest.raises(ConfigError, match=message):
        plan_video(cfg, 0)


def test_bundled_sample_clip_is_consistent() -> None:
    from describeme.data.synth import sample_clip_gt_path, sample_clip_path, sample_clip_tracks_path
    from describeme.data.synth.check import check_mot, check_tracks, count_video_frames

    clip = sample_clip_path()
    assert clip.suffix == ".mp4" and clip.stat().st_size < 3 * 1024 * 1024
    frames = count_video_frames(clip)
    assert frames == 90
    assert check_mot(sample_clip_gt_path(), frames, 512, 384) == []
    assert check_tracks(sample_clip_tracks_path(), sample_clip_gt_path(), frames) == []


@pytest.mark.slow
def test_bundled_sample_clip_matches_the_documented_command() -> None:
    """describeme/assets/README.md's command regenerates sample_gt.txt exactly (not stale)."""
    from describeme.data.synth import sample_clip_gt_path
    from describeme.data.synth.video import mot_rows

    cfg = SynthConfig.model_validate({"video": {"fps": 15.0, "seconds": 6.0, "people": 6}})
    rows = [row for index, _, s in render_video(cfg, seed=7) for row in mot_rows(index + 1, s)]
    assert rows == sample_clip_gt_path().read_text().splitlines()
