"""The synthetic scene engine: multi-person images and videos with exact labels.

Public API::

    from describeme.data.synth import SynthConfig, SyntheticImages, render_video
    sample = SyntheticImages(SynthConfig(), seed=0)[7]          # a Sample, no disk
    for index, image, sample in render_video(SynthConfig(), 1):  # frames of a clip
        ...
    write_image_dataset(out, config, seed, count)   # the layout of describeme.data.layout
    write_video_dataset(out, config, seed)          # video.mp4 + gt/gt.txt + tracks.json
    check_folder(out)                               # list of label-invariant violations
    sample_clip_path()                              # the bundled sample clip
    persons_from_sample(sample)                     # ground-truth Persons (test-double parser)

Heavy optional imports (PyAV) happen inside the functions that need them.
"""

from __future__ import annotations

from importlib import resources
from pathlib import Path

from describeme.data.synth.check import check_folder, check_sample
from describeme.data.synth.config import SynthConfig
from describeme.data.synth.images import SyntheticImages, render_image
from describeme.data.synth.persons import persons_from_sample
from describeme.data.synth.video import plan_video, render_video, write_video_dataset
from describeme.data.synth.writer import write_image_dataset

SAMPLE_CLIP = "sample.mp4"
SAMPLE_GT = "sample_gt.txt"
SAMPLE_TRACKS = "sample_tracks.json"


def _asset(name: str) -> Path:
    path = Path(str(resources.files("describeme") / "assets" / name))
    if not path.is_file():
        raise FileNotFoundError(f"bundled asset {name} missing at {path}; reinstall describeme")
    return path


def sample_clip_path() -> Path:
    """Path of the bundled synthetic sample clip (H.264 mp4, a few seconds, 512x384)."""
    return _asset(SAMPLE_CLIP)


def sample_clip_gt_path() -> Path:
    """MOT ground truth (gt.txt format) of the bundled sample clip."""
    return _asset(SAMPLE_GT)


def sample_clip_tracks_path() -> Path:
    """Per-track ground-truth descriptions (tracks.json format) of the bundled sample clip."""
    return _asset(SAMPLE_TRACKS)


__all__ = [
    "SynthConfig",
    "SyntheticImages",
    "check_folder",
    "check_sample",
    "plan_video",
    "render_image",
    "render_video",
    "sample_clip_gt_path",
    "sample_clip_path",
    "sample_clip_tracks_path",
    "persons_from_sample",
    "write_image_dataset",
    "write_video_dataset",
]
