"""Typed schema of ``configs/models/hptr*.yaml`` and builders from it.

The schema mirrors the explicit keyword arguments of :func:`build_hptr`,
:func:`build_criterion` and :func:`build_postprocessor`; the builders unpack it so the model
classes never see a config object.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator

from describeme.config import StrictModel, load_config
from describeme.models.common.inputs import check_input_size
from describeme.models.hptr.criterion import HPTRCriterion, build_criterion
from describeme.models.hptr.model import HPTR, build_hptr
from describeme.models.hptr.postprocess import HPTRPostprocessor, build_postprocessor


class HPTRModelConfig(StrictModel):
    """Network architecture (the checkpoint's ``model_args``)."""

    backbone: Literal["resnet18", "resnet34", "resnet50", "mobilenet_v2"] = "resnet50"
    width_multiplier: float = Field(default=1.0, gt=0)
    backbone_weights: str | None = None  # torchvision-style state_dict file for the encoder
    pyramid_channels: int = Field(default=128, ge=8)
    convs_per_level: int = Field(default=4, ge=0)  # 4 in the paper
    hidden_dim: int = Field(default=256, ge=8)
    heads: int = Field(default=8, ge=1)
    encoder_layers: int = Field(default=6, ge=0)
    decoder_layers: int = Field(default=6, ge=1)
    ffn_dim: int = Field(default=2048, ge=1)
    dropout: float = Field(default=0.1, ge=0, lt=1)
    num_queries: int = Field(default=40, ge=1)  # N_Q = 40 in the paper: more than people per image
    mask_context_dim: int = Field(default=128, ge=8)
    semantic_hidden: int = Field(default=64, ge=1)
    aux_loss: bool = True


class HPTRLossConfig(StrictModel):
    """Matcher costs and loss weights (the paper sums the terms unweighted)."""

    cost_class: float = Field(default=1.0, ge=0)
    cost_bbox: float = Field(default=5.0, ge=0)
    cost_giou: float = Field(default=2.0, ge=0)
    no_object_weight: float = Field(
        default=0.1, ge=0
    )  # DETR's eos_coef: most queries are no-object
    weights: dict[str, float] = Field(default_factory=dict)


class HPTRPostprocessConfig(StrictModel):
    """Decoding thresholds."""

    score_threshold: float = Field(default=0.5, ge=0, le=1)
    mask_threshold: float = Field(default=0.5, ge=0, le=1)
    qam_threshold: float = Field(default=0.2, ge=0, le=1)  # QANet's T
    qam_weights: tuple[float, float, float] = (1.0, 1.0, 1.0)


class HPTRConfig(StrictModel):
    """Everything needed to build, train-loss and decode HPTR."""

    name: Literal["hptr"] = "hptr"
    input_size: tuple[int, int] = (512, 512)  # (height, width) of the letterboxed input
    model: HPTRModelConfig = HPTRModelConfig()
    loss: HPTRLossConfig = HPTRLossConfig()
    postprocess: HPTRPostprocessConfig = HPTRPostprocessConfig()

    @field_validator("input_size")
    @classmethod
    def _multiple_of_divisor(cls, value: tuple[int, int]) -> tuple[int, int]:
        return check_input_size(value)


def load_hptr_config(path: str | Path | None, overrides: Iterable[str] = ()) -> HPTRConfig:
    """Loads a model YAML (None = defaults); errors name the file and key."""
    return load_config(path, HPTRConfig, overrides)


def build_model_from_config(config: HPTRConfig) -> HPTR:
    """Builds the network from ``config.model``."""
    return build_hptr(**config.model.model_dump())


def build_criterion_from_config(config: HPTRConfig) -> HPTRCriterion:
    """Builds the loss from ``config.loss``."""
    return build_criterion(**config.loss.model_dump())


def build_postprocessor_from_config(config: HPTRConfig) -> HPTRPostprocessor:
    """Builds the decoder from ``config.postprocess``."""
    return build_postprocessor(**config.postprocess.model_dump())
