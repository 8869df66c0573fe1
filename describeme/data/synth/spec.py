"""Scene specifications sampled from a random stream: who stands where, wearing what.

Sampling and rendering are separate steps (spec -> render): a video evolves the same specs
over time and renders each frame with the same renderer as still images.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from describeme.data.synth.colors import weighted_index
from describeme.data.synth.config import SynthConfig
from describeme.data.synth.outfit import sample_outfit
from describeme.data.synth.person import PersonSpec
from describeme.data.synth.pose import POSES, Body, Pose
from describeme.data.synth.scene import OCCLUDER_KINDS, Occluder

# Chance that an image may be empty when people.min is 0 (then about 2% are): enough to
# teach "nobody here", few enough not to waste samples.
EMPTY_FRACTION = 0.05


@dataclass
class SceneSpec:
    """One image's content.

    Attributes:
        width, height: image size in pixels.
        horizon: pixel row where floor meets wall (people shrink towards it).
        background_seed: seeds the procedural background.
        persons: people, any order (rendering sorts them by depth).
        occluders: scene objects in front of people that stand behind them.
        photometrics: parameters of :func:`describeme.data.synth.scene.apply_photometrics`.
        noise_seed: seeds the per-image noise and shadows.
        shade_seed: seeds each person's brightness (fixed over a video, unlike noise).
        clutter: number of background objects.
    """

    width: int
    height: int
    horizon: float
    background_seed: int
    persons: list[PersonSpec] = field(default_factory=list)
    occluders: list[Occluder] = field(default_factory=list)
    photometrics: dict[str, float | list[float]] = field(default_factory=dict)
    noise_seed: int = 0
    shade_seed: int = 0
    clutter: int = 6


def image_rng(seed: int, index: int) -> np.random.Generator:
    """The random stream of image ``index`` under ``seed`` (independent of worker count)."""
    return np.random.default_rng(np.random.SeedSequence([int(seed), int(index)]))


def sample_yaw(rng: np.random.Generator) -> float:
    """A view angle: mostly near front/back/side, sometimes anything in between."""
    if rng.random() < 0.6:
        return float(90.0 * rng.integers(4) + rng.normal(0, 12))
    return float(rng.uniform(0, 360))


def sample_pose_kind(rng: np.random.Generator, config: SynthConfig) -> str:
    cumulative = np.cumsum([getattr(config.poses, name) for name in POSES], dtype=float)
    if cumulative[-1] <= 0:
        raise ValueError("poses: at least one pose weight must be positive")
    return POSES[weighted_index(rng, cumulative)]


def sample_person(
    rng: np.random.Generator, config: SynthConfig, horizon: float, track_id: int = 0
) -> PersonSpec:
    """A person at a random place, size, pose, view and outfit."""
    w, h = config.width, config.height
    scale = h / 384.0
    h_min, h_max = config.people.height.min * scale, config.people.height.max * scale
    if rng.random() < config.people.perspective_fraction:
        foot_y = float(rng.uniform(horizon + 2, h * 1.15))
        height = float(np.clip((foot_y - horizon) * rng.uniform(0.9, 2.0), h_min, h_max))
    else:
        height = float(np.exp(rng.uniform(np.log(max(h_min, 1.0)), np.log(max(h_max, 1.0)))))
        foot_y = float(rng.uniform(horizon, h + 0.3 * height))
    foot_x = float(rng.uniform(-0.08 * w, 1.08 * w))
    return PersonSpec(
        body=Body.sample(rng),
        pose=Pose.sample(rng, sample_pose_kind(rng, config)),
        yaw=sample_yaw(rng),
        foot_xy=(foot_x, foot_y),
        height_px=height,
        outfit=sample_outfit(rng, config.outfit),
        track_id=track_id,
    )


def sample_photometrics(
    rng: np.random.Generator, config: SynthConfig
) -> dict[str, float | list[float]]:
    p = config.photometric
    cast = (1.0 + rng.uniform(-p.color_cast, p.color_cast, size=3)).tolist()
    return {
        "gradient": float(rng.uniform(-p.light_gradient, p.light_gradient)),
        "gradient_y": float(rng.uniform(-p.light_gradient, p.light_gradient) / 2),
        "shadow": float(rng.uniform(0.15, 0.45)) if rng.random() < p.shadows else 0.0,
        "cast": cast,
        "blur": float(rng.integers(1, 3)) if rng.random() < p.blur else 0.0,
        "motion": float(rng.integers(1, 4)) if rng.random() < p.motion_blur else 0.0,
        "noise": float(rng.uniform(p.noise_sigma.min, p.noise_sigma.max)),
        "jpeg": float(rng.uniform(p.jpeg_quality.min, p.jpeg_quality.max))
        if rng.random() < p.jpeg
        else 0.0,
    }


def sample_occluders(
    rng: np.random.Generator, config: SynthConfig, horizon: float
) -> list[Occluder]:
    lo, hi = config.scene.occluders.min, config.scene.occluders.max
    count = int(rng.integers(int(lo), int(hi) + 1))
    out = []
    for _ in range(count):
        kind = str(rng.choice(OCCLUDER_KINDS))
        foot_y = float(rng.uniform(horizon + 4, config.height * 1.05))
        size = (
            (foot_y - horizon) * rng.uniform(0.5, 1.1) * (1.8 if kind in ("pole", "sign") else 1.0)
        )
        out.append(
            Occluder(
                kind,
                (float(rng.uniform(0, config.width)), foot_y),
                float(size),
                int(rng.integers(0, 2**31)),
            )
        )
    return out


def sample_scene(rng: np.random.Generator, config: SynthConfig) -> SceneSpec:
    """Samples a whole still image's spec."""
    horizon = float(rng.uniform(0.2, 0.6) * config.height)
    lo, hi = config.people.min, config.people.max
    if lo == 0 and hi > 0 and rng.random() > EMPTY_FRACTION:
        lo = 1
    count = min(hi, lo + int((hi - lo + 1) * rng.random() ** config.people.crowd_skew))
    spec = SceneSpec(
        width=config.width,
        height=config.height,
        horizon=horizon,
        background_seed=int(rng.integers(0, 2**31)),
        noise_seed=int(rng.integers(0, 2**31)),
    )
    spec.shade_seed = spec.noise_seed
    spec.clutter = int(
        rng.integers(int(config.scene.clutter.min), int(config.scene.clutter.max) + 1)
    )
    spec.persons = [sample_person(rng, config, horizon, track_id=i + 1) for i in range(count)]
    spec.occluders = sample_occluders(rng, config, horizon)
    spec.photometrics = sample_photometrics(rng, config)
    return spec
