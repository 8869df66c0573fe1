"""Typed schema of ``configs/models/personlab*.yaml`` and builders from it.

The schema mirrors the explicit keyword arguments of :func:`build_personlab`,
:func:`build_criterion` and :func:`build_postprocessor`. The disk radius is a model argument
(offsets are predicted in units of R); the loss and the decoder take it from the model
section so the three can never disagree.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator, model_validator

from describeme.config import StrictModel, load_config
from describeme.models.common.inputs import check_input_size
from describeme.models.personlab.criterion import PersonLabCriterion, build_criterion
from describeme.models.personlab.model import (
    PersonLab,
    build_personlab,
)
from describeme.models.personlab.postprocess import PersonLabPostprocessor, build_postprocessor


class PersonLabModelConfig(StrictModel):
    """Network architecture (the checkpoint's ``model_args``)."""

    backbone: Literal["resnet18", "resnet34", "resnet50", "mobilenet_v2"] = "resnet50"
    width_multiplier: float = Field(default=1.0, gt=0)
    backbone_weights: str | None = None  # torchvision-style state_dict file for the encoder
    pyramid_channels: int = Field(default=128, ge=8)
    convs_per_level: int = Field(default=4, ge=0)
    head_hidden: int = Field(default=128, ge=1)
    semantic_hidden: int = Field(default=64, ge=1)
    output_stride: Literal[8, 16] = 8
    disk_radius: float = Field(default=20.0, gt=0)  # the paper's 32 px at 801 px, scaled to 512
    # 32 = undilated encoder (older checkpoints); 16/8 dilate the last encoder stages.
    encoder_output_stride: Literal[8, 16, 32] = 32


class PersonLabLossConfig(StrictModel):
    """Loss weights (missing terms keep the paper's 4, 2, 1, 1/4, 1/8) and refinement steps."""

    weights: dict[str, float] = Field(default_factory=dict)
    mid_refine_steps: int = Field(default=2, ge=0)
    long_self_steps: int = Field(default=2, ge=0)
    long_short_steps: int = Field(default=2, ge=0)


class PersonLabPostprocessConfig(StrictModel):
    """Decoding thresholds (the paper's values unless noted)."""

    score_threshold: float = Field(default=0.15, ge=0, le=1)
    peak_threshold: float = Field(default=0.01, ge=0, le=1)
    nms_radius: float = Field(default=10.0, gt=0)
    hough_stride: int = Field(default=1, ge=1)
    max_people: int = Field(default=40, ge=1, le=255)
    embedding_threshold: float = Field(default=0.25, gt=0)
    segmentation_threshold: float = Field(default=0.5, ge=0, le=1)
    exclusive_masks: bool = True  # the tracker's mask IoU expects disjoint people
    qam_threshold: float = Field(default=0.2, ge=0, le=1)  # QANet's T
    qam_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)
    keypoint_box_threshold: float = Field(default=0.5, ge=0, le=1)


class PersonLabConfig(StrictModel):
    """Everything needed to build, train-loss and decode PersonLab."""

    name: Literal["personlab"] = "personlab"
    input_size: tuple[int, int] = (512, 512)  # (height, width) of the letterboxed input
    model: PersonLabModelConfig = PersonLabModelConfig()
    loss: PersonLabLossConfig = PersonLabLossConfig()
    postprocess: PersonLabPostprocessConfig = PersonLabPostprocessConfig()

    @field_validator("input_size")
    @classmethod
    def _multiple_of_divisor(cls, value: tuple[int, int]) -> tuple[int, int]:
        return check_input_size(value)

    @model_validator(mode="after")
    def _radius_fits_input(self) -> PersonLabConfig:
        if self.model.disk_radius >= min(self.input_size) / 2:
            raise ValueError(
                f"model.disk_radius {self.model.disk_radius} px is too large for input_size "
                f"{self.input_size}; scale it with the input (32 px at 801 px in the paper)"
            )
        return self


def load_personlab_config(
    path: str | Path | None, overrides: Iterable[str] = ()
) -> PersonLabConfig:
    """Loads a model YAML (None = defaults); errors name the file and key."""
    return load_config(path, PersonLabConfig, overrides)


def build_model_from_config(config: PersonLabConfig) -> PersonLab:
    """Builds the network from ``config.model``."""
    return build_personlab(**config.model.model_dump())


def build_criterion_from_config(config: PersonLabConfig) -> PersonLabCriterion:
    """Builds the loss with the model's stride and radius."""
    return build_criterion(
        output_stride=config.model.output_stride,
        disk_radius=config.model.disk_radius,
        **config.loss.model_dump(),
    )


def build_postprocessor_from_config(config: PersonLabConfig) -> PersonLabPostprocessor:
    """Builds the decoder with the model's radius."""
    return build_postprocessor(
        disk_radius=config.model.disk_radius, **config.postprocess.model_dump()
    )
