"""Typed configuration of the synthetic scene engine (mirrored in configs/synth/*.yaml)."""

from __future__ import annotations

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

    min: int = Field(0, ge=0)
    # 20+ people in a 512x384 image is already a dense crowd; more only costs time.
    max: int = Field(12, ge=0, le=250)
    # Person heights in pixels at the configured image height of 384 (scaled with the image).
    height: RangeModel = RangeModel(min=20, max=400)
    # Share of people whose size follows the ground-plane perspective (the rest are random).
    perspective_fraction: float = Field(0.7, ge=0, le=1)

    @model_validator(mode="after")
    def _ordered(self) -> PeopleConfig:
        if self.min > self.max:
            raise ValueError(f"people.min ({self.min}) must not exceed people.max ({self.max})")
        return self


class PoseConfig(StrictModel):
    """Relative weights of pose families (normalised)."""

    walk: float = Field(4.0, ge=0)
    stand: float = Field(2.0, ge=0)
    arms_raised: float = Field(1.0, ge=0)
    arms_crossed: float = Field(1.0, ge=0)
    sit: float = Field(0.7, ge=0)
    bend: float = Field(0.7, ge=0)


class OutfitConfig(StrictModel):
    """Probabilities that a person wears or shows each optional item."""

    hat: float = Field(0.25, ge=0, le=1)
    glove: float = Field(0.12, ge=0, le=1)
    glasses: float = Field(0.25, ge=0, le=1)
    face_mask: float = Field(0.12, ge=0, le=1)
    coat: float = Field(0.3, ge=0, le=1)
    socks: float = Field(0.3, ge=0, le=1)
    skirt: float = Field(0.2, ge=0, le=1)
    scarf_tie: float = Field(0.2, ge=0, le=1)
    bag: float = Field(0.3, ge=0, le=1)
    others: float = Field(0.15, ge=0, le=1)
    facial_hair: float = Field(0.12, ge=0, le=1)
    # Shows torso skin (a tank top or a deep neckline); CCIHP's torso-skin class is rare.
    torso_skin: float = Field(0.3, ge=0, le=1)
    bald: float = Field(0.08, ge=0, le=1)
    long_hair: float = Field(0.4, ge=0, le=1)


class PhotometricConfig(StrictModel):
    """Image degradations applied after painting (labels are unaffected)."""

    blur: float = Field(0.3, ge=0, le=1)
    motion_blur: float = Field(0.1, ge=0, le=1)
    noise_sigma: RangeModel = RangeModel(min=0.0, max=8.0)
    jpeg: float = Field(0.4, ge=0, le=1)
    jpeg_quality: RangeModel = RangeModel(min=30, max=95)
    color_cast: float = Field(0.08, ge=0, le=0.5)
    light_gradient: float = Field(0.35, ge=0, le=1)
    shadows: float = Field(0.4, ge=0, le=1)


class SceneConfig(StrictModel):
    """Backgrounds and scene objects."""

    clutter: RangeModel = RangeModel(min=2, max=12)
    # Objects standing in front of people (poles, benches, cars): they occlude and are background.
    occluders: RangeModel = RangeModel(min=0, max=3)


class VideoConfig(StrictModel):
    """Synthetic video sequences."""

    fps: float = Field(15.0, gt=0, le=120)
    seconds: float = Field(10.0, gt=0, le=3600)
    people: int = Field(6, ge=1, le=60)
    # Probability that a walker stops for a while (tests lost/recovered tracks and stills).
    stop: float = Field(0.3, ge=0, le=1)
    # One person takes a coat off mid-clip when enabled (the describer's change event).
    coat_removal: bool = True
    speed_px_per_s: RangeModel = RangeModel(min=30, max=90)


class SynthConfig(StrictModel):
    """All settings of the synthetic scene engine."""

    width: int = Field(512, ge=16, le=8192)
    height: int = Field(384, ge=16, le=8192)
    people: PeopleConfig = PeopleConfig()
    poses: PoseConfig = PoseConfig()
    outfit: OutfitConfig = OutfitConfig()
    photometric: PhotometricConfig = PhotometricConfig()
    scene: SceneConfig = SceneConfig()
    video: VideoConfig = VideoConfig()
    # Quality of the JPEG files written to Images/ (the degradation above is separate).
    image_quality: int = Field(95, ge=10, le=100)
