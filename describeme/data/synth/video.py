"""Synthetic video: persistent people walking through one scene, with MOT ground truth.

A :class:`VideoPlan` holds the static scene and one :class:`Track` per person (path, speed,
stops, an optional coat removal). Each frame evolves the tracks to time ``t`` and renders
with the same renderer as still images, so frame labels are exact too.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, replace
from fractions import Fraction
from pathlib import Path

import numpy as np

from describeme.data import layout
from describeme.data.sample import Sample
from describeme.data.synth.config import SynthConfig
from describeme.data.synth.outfit import Outfit, sample_outfit
from describeme.data.synth.person import PersonSpec
from describeme.data.synth.pose import Body, Pose, walking
from describeme.data.synth.render import render_scene
from describeme.data.synth.scene import render_background
from describeme.data.synth.spec import SceneSpec, image_rng, sample_occluders
from describeme.data.synth.writer import prepare_output, write_dataset_yaml
from describeme.errors import ConfigError
from describeme.labels import COAT, COLORS, PARTS, PATTERNS, SIZES

log = logging.getLogger(__name__)


@dataclass
class Track:
    """One person's trajectory.

    Attributes:
        track_id: identity (1-based, as in MOT).
        start, end: (x, y) foot positions in pixels at the path's ends.
        t0: time (s) the person is at ``start`` (negative: already in the scene at t = 0).
        speed: pixels per second along the path at the reference height.
        size_k: height = size_k * (foot_y - horizon), the ground-plane perspective.
        stop_at, stop_for: path fraction where the person stands still, and for how long (s).
        change_at: time (s) the person takes the coat off, or None.
    """

    track_id: int
    body: Body
    outfit: Outfit
    start: tuple[float, float]
    end: tuple[float, float]
    t0: float
    speed: float
    size_k: float
    stop_at: float = 0.0
    stop_for: float = 0.0
    change_at: float | None = None

    def length(self) -> float:
        return float(np.hypot(self.end[0] - self.start[0], self.end[1] - self.start[1]))

    def progress(self, t: float) -> float | None:
        """Path fraction walked at time ``t`` (None before entering or after leaving)."""
        moving = t - self.t0
        stop_start = self.stop_at * self.length() / self.speed
        if moving > stop_start:
            moving = max(stop_start, moving - self.stop_for)
        if moving < 0:
            return None
        frac = moving * self.speed / self.length()
        return frac if frac <= 1.0 else None

    def stopped(self, t: float) -> bool:
        stop_start = self.t0 + self.stop_at * self.length() / self.speed
        return self.stop_for > 0 and stop_start <= t < stop_start + self.stop_for

    def outfit_at(self, t: float) -> Outfit:
        if self.change_at is not None and t >= self.change_at:
            return self.outfit.without(COAT)
        return self.outfit


@dataclass
class VideoPlan:
    """A clip: static scene, tracks, timing."""

    scene: SceneSpec
    tracks: list[Track]
    fps: float
    num_frames: int


def _sample_track(
    rng: np.random.Generator, config: SynthConfig, horizon: float, track_id: int, duration: float
) -> Track:
    w, h = config.width, config.height
    near = lambda: float(rng.uniform(horizon + 0.25 * (h - horizon), h * 0.98))  # noqa: E731
    if rng.random() < 0.75:  # across the scene, left <-> right
        y0, y1 = near(), near()
        x0, x1 = (-0.08 * w, 1.08 * w) if rng.random() < 0.5 else (1.08 * w, -0.08 * w)
    else:  # towards or away from the camera
        x0, x1 = float(rng.uniform(0.1, 0.9) * w), float(rng.uniform(0.1, 0.9) * w)
        y0, y1 = (horizon + 0.2 * (h - horizon), h * 1.1)
        if rng.random() < 0.5:
            y0, y1 = y1, y0
    speed = float(rng.uniform(config.video.speed_px_per_s.min, config.video.speed_px_per_s.max))
    speed *= w / 512
    length = float(np.hypot(x1 - x0, y1 - y0))
    t0 = float(rng.uniform(-0.6 * length / speed, 0.6 * duration))
    stop = rng.random() < config.video.stop
    return Track(
        track_id=track_id,
        body=Body.sample(rng),
        outfit=sample_outfit(rng, config.outfit),
        start=(float(x0), float(y0)),
        end=(float(x1), float(y1)),
        t0=t0,
        speed=speed,
        # standing at the bottom edge, a person is 40-75% of the frame tall
        size_k=float(rng.uniform(0.4, 0.75)) * h / max(h - horizon, 1),
        stop_at=float(rng.uniform(0.2, 0.8)) if stop else 0.0,
        stop_for=float(rng.uniform(1.0, 3.0)) if stop else 0.0,
    )


def plan_video(config: SynthConfig, seed: int) -> VideoPlan:
    """Samples the scene and the tracks of a clip (deterministic per seed)."""
    if config.width % 2 or config.height % 2:
        raise ConfigError(
            f"video size must be even for H.264 yuv420p, got {config.width}x{config.height}"
        )
    rng = image_rng(seed, 2**31)
    vc = config.video
    num_frames = int(round(vc.fps * vc.seconds))
    if num_frames < 1:
        raise ConfigError(f"video.fps * video.seconds gives {num_frames} frames; need at least 1")
    horizon = float(rng.uniform(0.25, 0.45) * config.height)
    photometrics = {
        "gradient": float(rng.uniform(-0.2, 0.2)),
        "gradient_y": 0.0,
        "shadow": 0.0,
        "cast": (1 + rng.uniform(-0.05, 0.05, 3)).tolist(),
        "blur": 0.0,
        "motion": 0.0,
        "noise": float(rng.uniform(1, 4)),
        "jpeg": 0.0,
    }
    scene = SceneSpec(
        width=config.width,
        height=config.height,
        horizon=horizon,
        background_seed=int(rng.integers(0, 2**31)),
        occluders=sample_occluders(rng, config, horizon),
        photometrics=photometrics,
        shade_seed=int(rng.integers(0, 2**31)),
        clutter=int(rng.integers(int(config.scene.clutter.min), int(config.scene.clutter.max) + 1)),
    )
    tracks = [_sample_track(rng, config, horizon, i + 1, vc.seconds) for i in range(vc.people)]
    if vc.coat_removal:
        _plan_coat_removal(rng, tracks, vc.seconds, config)
    return VideoPlan(scene=scene, tracks=tracks, fps=vc.fps, num_frames=num_frames)


def _plan_coat_removal(
    rng: np.random.Generator, tracks: list[Track], duration: float, config: SynthConfig
) -> None:
    """Makes one on-screen person take a coat off mid-clip (the describer's change event)."""
    track = tracks[0]
    track.t0 = -0.1 * track.length() / track.speed  # on screen from the start
    if COAT not in track.outfit.parts:
        coat_rng = np.random.default_rng(track.outfit.parts[PARTS.index("hair")].texture_seed)
        with_coat = sample_outfit(coat_rng, config.outfit.model_copy(update={"coat": 1.0}))
        track.outfit.parts[COAT] = with_coat.parts[COAT]
    track.stop_at, track.stop_for = 0.3, max(track.stop_for, 1.0)
    stop_start = track.t0 + track.stop_at * track.length() / track.speed
    track.change_at = float(min(max(stop_start + 0.5, 0.25 * duration), 0.75 * duration))


def person_at(track: Track, t: float, horizon: float) -> PersonSpec | None:
    """The track's person at time ``t`` (None when off the path)."""
    frac = track.progress(t)
    if frac is None:
        return None
    x = track.start[0] + (track.end[0] - track.start[0]) * frac
    y = track.start[1] + (track.end[1] - track.start[1]) * frac
    height = max(8.0, track.size_k * (y - horizon))
    dx, dy = track.end[0] - track.start[0], track.end[1] - track.start[1]
    yaw = float(np.degrees(np.arctan2(dx, dy)))
    walked = frac * track.length() / max(height, 1.0)  # in body heights
    pose = Pose("stand") if track.stopped(t) else walking(walked / 0.7 * np.pi)
    return PersonSpec(
        body=track.body,
        pose=pose,
        yaw=yaw,
        foot_xy=(x, y),
        height_px=height,
        outfit=track.outfit_at(t),
        track_id=track.track_id,
    )


def render_video(
    config: SynthConfig, seed: int, plan: VideoPlan | None = None
) -> Iterator[tuple[int, np.ndarray, Sample]]:
    """Yields ``(frame_index, image, sample)`` per frame; frame_index is 0-based.

    ``image`` is the (H, W, 3) uint8 BGR frame (``sample.image``); ``sample.extra['track_ids']``
    maps human index i+1 to its persistent track id.
    """
    plan = plan or plan_video(config, seed)
    scene = plan.scene
    background = render_background(
        scene.background_seed, scene.width, scene.height, scene.horizon, scene.clutter
    )
    for index in range(plan.num_frames):
        t = index / plan.fps
        persons = [p for p in (person_at(tr, t, scene.horizon) for tr in plan.tracks) if p]
        frame = replace(
            scene, persons=persons, noise_seed=int(image_rng(seed, index).integers(2**31))
        )
        sample = render_scene(frame, background, image_id=f"{index:06d}")
        yield index, sample.image, sample


def describe_outfit(outfit: Outfit) -> dict[str, dict[str, str]]:
    """Part name -> {color, size, pattern} names (the Descriptions JSON format)."""
    return {
        PARTS[p]: {"color": COLORS[s.color], "size": SIZES[s.size], "pattern": PATTERNS[s.pattern]}
        for p, s in sorted(outfit.parts.items())
    }


def mot_rows(frame_number: int, sample: Sample) -> list[str]:
    """MOT gt.txt rows of one frame (1-based frame number); visible people only."""
    rows = []
    extra = sample.extra
    for k, tid in enumerate(extra["track_ids"]):
        x0, y0, x1, y1 = (float(v) for v in extra["amodal_boxes"][k])
        vis = float(np.clip(extra["visibility"][k], 0.001, 1.0))  # >0: the person is visible
        rows.append(
            f"{frame_number},{int(tid)},{x0:.0f},{y0:.0f},{x1 - x0:.0f},{y1 - y0:.0f},1,1,{vis:.3f}"
        )
    return rows


def tracks_json(plan: VideoPlan, seen: dict[int, list[int]]) -> dict:
    """tracks.json content: span of each seen track and its appearance segments."""
    out = []
    for track in plan.tracks:
        frames = seen.get(track.track_id)
        if not frames:
            continue
        f0, f1 = min(frames), max(frames)
        segments = []
        change = None if track.change_at is None else int(np.ceil(track.change_at * plan.fps)) + 1
        if change is not None and f0 < change <= f1:
            segments.append(
                {"from_frame": f0, "to_frame": change - 1, "parts": describe_outfit(track.outfit)}
            )
            segments.append(
                {
                    "from_frame": change,
                    "to_frame": f1,
                    "parts": describe_outfit(track.outfit.without(COAT)),
                }
            )
        else:
            outfit = track.outfit_at((f0 - 1) / plan.fps)
            segments.append({"from_frame": f0, "to_frame": f1, "parts": describe_outfit(outfit)})
        out.append(
            {"id": track.track_id, "first_frame": f0, "last_frame": f1, "segments": segments}
        )
    return {"fps": plan.fps, "tracks": out}


def write_video_dataset(
    out: Path,
    config: SynthConfig,
    seed: int,
    overwrite: bool = False,
    wrap: Callable[[Iterable, int], Iterable] | None = None,
) -> Path:
    """Renders a clip into ``out``: video.mp4 (H.264), gt/gt.txt, tracks.json, dataset.yaml."""
    import av

    out = Path(out)
    plan = plan_video(config, seed)
    prepare_output(out, overwrite)
    (out / layout.MOT_GT).parent.mkdir(exist_ok=True)
    rows: list[str] = []
    seen: dict[int, list[int]] = {}
    with av.open(str(out / layout.VIDEO_FILE), "w") as container:
        stream = container.add_stream("libx264", rate=Fraction(plan.fps).limit_denominator(1001))
        stream.width, stream.height, stream.pix_fmt = config.width, config.height, "yuv420p"
        stream.options = {"crf": "23", "preset": "veryfast"}
        frames = render_video(config, seed, plan)
        for index, image, sample in wrap(frames, plan.num_frames) if wrap else frames:
            rows += mot_rows(index + 1, sample)
            for tid in sample.extra["track_ids"]:
                seen.setdefault(int(tid), []).append(index + 1)
            frame = av.VideoFrame.from_ndarray(image, format="bgr24")
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    (out / layout.MOT_GT).write_text("\n".join(rows) + ("\n" if rows else ""))
    (out / layout.TRACKS_JSON).write_text(json.dumps(tracks_json(plan, seen), indent=1))
    write_dataset_yaml(out, layout.FORMAT_VIDEO, config, seed, {"frames": plan.num_frames})
    _add_video_keys(out, config)
    log.info("wrote %d frames, %d tracks to %s", plan.num_frames, len(seen), out)
    return out


def _add_video_keys(out: Path, config: SynthConfig) -> None:
    import yaml

    path = out / layout.DATASET_YAML
    data = yaml.safe_load(path.read_text())
    data = {
        "format": data.pop("format"),
        "fps": config.video.fps,
        "seconds": config.video.seconds,
        "size": [config.width, config.height],
        **data,
    }
    path.write_text(yaml.safe_dump(data, sort_keys=False))
