"""Typed configuration of the synthetic scene engine (mirrored in configs/synth/*.yaml)."""

from __future__ import annotations

from typing import Annotated

from pydantic import Field, model_validator

from describeme.config import StrictModel


class RangeModel(StrictModel):
    """A closed numeric interval ``[min, max]``."""

    min: float
    max: float

    @model_validator(mode="after")
    def _ordered(self) -> RangeModel:
        if self.min > self.max:
            raise ValueError(f"min ({self.min}) must not exceed max ({self.max})")
        return self


class PeopleConfig(StrictModel):
    """How many people, how tall, how crowded."""

    min: Annotated[int, Field(ge=0)] = 0
    # 20+ people in a 512x384 image is already a dense crowd; more only costs time.
    max: Annotated[int, Field(ge=0, le=250)] = 24
    # count = min + (max - min + 1) * u**crowd_skew: 4 gives ~5.5 people on average, 12+
    # in about one image in six and 20+ in one in twenty (crowds are slow to render).
    crowd_skew: Annotated[float, Field(gt=0, le=20)] = 4.0
    # Person heights in pixels at the configured image height of 384 (scaled with the image).
    height: RangeModel = RangeModel(min=20, max=400)
    # Share of people whose size follows the ground-plane perspective (the rest are random).
    perspective_fraction: Annotated[float, Field(ge=0, le=1)] = 0.7

    @model_validator(mode="after")
    def _ordered(self) -> PeopleConfig:
        if self.min > self.max:
            raise ValueError(f"people.min ({self.min}) must not exceed people.max ({self.max})")
        return self


class PoseConfig(StrictModel):
    """Relative weights of pose families (normalised)."""

    walk: Annotated[float, Field(ge=0)] = 4.0
    stand: Annotated[float, Field(ge=0)] = 2.0
    arms_raised: Annotated[float, Field(ge=0)] = 1.0
    arms_crossed: Annotated[float, Field(ge=0)] = 1.0
    sit: Annotated[float, Field(ge=0)] = 0.7
    bend: Annotated[float, Field(ge=0)] = 0.7


class OutfitConfig(StrictModel):
    """Probabilities that a person wears or shows each optional item."""

    hat: Annotated[float, Field(ge=0, le=1)] = 0.25
    glove: Annotated[float, Field(ge=0, le=1)] = 0.12
    glasses: Annotated[float, Field(ge=0, le=1)] = 0.25
    face_mask: Annotated[float, Field(ge=0, le=1)] = 0.12
    coat: Annotated[float, Field(ge=0, le=1)] = 0.3
    socks: Annotated[float, Field(ge=0, le=1)] = 0.3
    skirt: Annotated[float, Field(ge=0, le=1)] = 0.2
    scarf_tie: Annotated[float, Field(ge=0, le=1)] = 0.2
    bag: Annotated[float, Field(ge=0, le=1)] = 0.3
    others: Annotated[float, Field(ge=0, le=1)] = 0.15
    facial_hair: Annotated[float, Field(ge=0, le=1)] = 0.12
    # Shows torso skin (a tank top or a deep neckline); CCIHP's torso-skin class is rare.
    torso_skin: Annotated[float, Field(ge=0, le=1)] = 0.3
    bald: Annotated[float, Field(ge=0, le=1)] = 0.08
    long_hair: Annotated[float, Field(ge=0, le=1)] = 0.4


class PhotometricConfig(StrictModel):
    """Image degradations applied after painting (labels are unaffected)."""

    blur: Annotated[float, Field(ge=0, le=1)] = 0.3
    motion_blur: Annotated[float, Field(ge=0, le=1)] = 0.1
    noise_sigma: RangeModel = RangeModel(min=0.0, max=8.0)
    jpeg: Annotated[float, Field(ge=0, le=1)] = 0.4
    jpeg_quality: RangeModel = RangeModel(min=30, max=95)
    color_cast: Annotated[float, Field(ge=0, le=0.5)] = 0.08
    light_gradient: Annotated[float, Field(ge=0, le=1)] = 0.35
    shadows: Annotated[float, Field(ge=0, le=1)] = 0.4


class SceneConfig(StrictModel):
    """Backgrounds and scene objects."""

    clutter: RangeModel = RangeModel(min=2, max=12)
    # Objects standing in front of people (poles, benches, cars): they occlude and are background.
    occluders: RangeModel = RangeModel(min=0, max=3)


class VideoConfig(StrictModel):
    """Synthetic video sequences."""

    fps: Annotated[float, Field(gt=0, le=120)] = 15.0
    seconds: Annotated[float, Field(gt=0, le=3600)] = 10.0
    people: Annotated[int, Field(ge=1, le=60)] = 6
    # Probability that a walker stops for a while (tests lost/recovered tracks and stills).
    stop: Annotated[float, Field(ge=0, le=1)] = 0.3
    # One person takes a coat off mid-clip when enabled (the describer's change event).
    coat_removal: bool = True
    speed_px_per_s: RangeModel = RangeModel(min=30, max=90)


class SynthConfig(StrictModel):
    """All settings of the synthetic scene engine."""

    width: Annotated[int, Field(ge=16, le=8192)] = 512
    height: Annotated[int, Field(ge=16, le=8192)] = 384
    people: PeopleConfig = PeopleConfig()
    poses: PoseConfig = PoseConfig()
    outfit: OutfitConfig = OutfitConfig()
    photometric: PhotometricConfig = PhotometricConfig()
    scene: SceneConfig = SceneConfig()
    video: VideoConfig = VideoConfig()
    # Quality of the JPEG files written to Images/ (the degradation above is separate).
    image_quality: Annotated[int, Field(ge=10, le=100)] = 95
