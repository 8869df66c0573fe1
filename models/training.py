"""Model-agnostic training pieces shared by HPTR and PersonLab.

- config sections (:class:`OptimizerConfig`, :class:`ScheduleConfig`, :class:`DataConfig`,
  :class:`EvalConfig`, :class:`LoopConfig`) that a model's train config composes;
- AdamW with a slower encoder group, warmup + cosine/step/constant learning-rate factors;
- deterministic seeding and a resumable, rank-sharded batch order: the batch of step ``s``
  depends only on ``(seed, s)``, so a resumed run sees exactly the batches an uninterrupted
  one would have seen, with no sampler state in the checkpoint;
- a JSON-lines training log that a resumed run truncates to the resumed step.

The step loop itself is :class:`describeme.models.common.training.Trainer`.

Plain torch: ``torch.distributed`` is used when a process group exists (Ray Train sets one
up); nothing here imports ray.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import random
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch
from pydantic import Field, model_validator
from torch import nn

from describeme.config import StrictModel

log = logging.getLogger(__name__)

LOG_NAME = "log.jsonl"
LAST_CHECKPOINT = "last.pt"


class OptimizerConfig(StrictModel):
    """AdamW settings."""

    lr: float = Field(default=1e-4, gt=0)  # DETR's transformer learning rate
    backbone_lr_factor: float = Field(default=0.1, ge=0)  # DETR trains the encoder 10x slower
    weight_decay: float = Field(default=1e-4, ge=0)
    betas: tuple[float, float] = (0.9, 0.999)


class ScheduleConfig(StrictModel):
    """Learning-rate factor over steps: linear warmup, then cosine, step or constant."""

    kind: Literal["cosine", "step", "constant"] = "cosine"
    warmup_steps: int = Field(default=0, ge=0)
    min_factor: float = Field(default=0.01, ge=0, le=1)  # cosine floor, as a fraction of lr
    milestones: list[float] = [0.67, 0.89]  # step schedule: fractions of the total steps
    gamma: float = Field(default=0.1, gt=0)


class DataConfig(StrictModel):
    """Training images: synthetic on the fly (no disk) or a dataset folder."""

    kind: Literal["synthetic", "folder"] = "synthetic"
    root: str | None = None  # dataset folder for kind=folder (any layout open_dataset reads)
    split: str | None = None
    seed: int = 0  # synthetic stream of the training images; also the augmentation seed
    length: int = Field(default=20_000, ge=1)  # synthetic images per epoch
    synth_config: str | None = None  # synth YAML (None = the engine's defaults)
    render_size: tuple[int, int] | None = None  # (width, height) rendered; None = synth config
    scale_range: tuple[float, float] = (0.75, 1.25)
    flip_prob: float = Field(default=0.5, ge=0, le=1)
    workers: int = Field(default=0, ge=0)  # DataLoader processes (0 = in the training process)

    @model_validator(mode="after")
    def _root_for_folder(self) -> DataConfig:
        if self.kind == "folder" and not self.root:
            raise ValueError("data.root is required when data.kind is 'folder'")
        return self


class EvalConfig(StrictModel):
    """Periodic evaluation on held-out images with the evaluation suite."""

    every_steps: int = Field(default=0, ge=0)  # 0 = only at the end
    at_end: bool = True
    limit: int = Field(default=16, ge=1)  # images per evaluation
    seed: int = 1_000_003  # synthetic stream disjoint from any training seed in the configs
    folder: str | None = None  # evaluate on this dataset folder instead of synthetic images
    split: str | None = None


class LoopConfig(StrictModel):
    """Step-loop settings every model's train config shares."""

    batch_size: int = Field(default=8, ge=1)  # per worker
    steps: int | None = Field(default=None, ge=1)
    epochs: int | None = Field(default=None, ge=1)
    clip_grad_norm: float = Field(default=0.1, ge=0)  # DETR's max norm; 0 = off
    amp: bool = True  # fp16 autocast + grad scaling on CUDA; ignored on CPU
    seed: int = 0
    device: str = "auto"  # auto = cuda when available
    log_every: int = Field(default=10, ge=1)
    checkpoint_every: int = Field(default=1000, ge=0)  # 0 = only at the end
    output_dir: str = "runs/train"
    # Wall-clock budget of the run (None = none): the schedule is shortened to the steps that
    # fit (see Trainer), so a lent GPU's fixed minutes end with an annealed model.
    max_minutes: float | None = Field(default=None, gt=0)

    @model_validator(mode="after")
    def _one_length(self) -> LoopConfig:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError("give exactly one of steps or epochs")
        return self

    def total_steps(self, dataset_length: int, world_size: int = 1) -> int:
        """Number of optimizer steps of the whole run."""
        if self.steps is not None:
            return self.steps
        assert self.epochs is not None
        return self.epochs * steps_per_epoch(dataset_length, self.batch_size, world_size)


def seed_everything(seed: int) -> None:
    """Seeds Python, numpy and torch (CPU and CUDA) generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def steps_per_epoch(length: int, batch_size: int, world_size: int = 1) -> int:
    """Full global batches per epoch (the last partial batch is dropped)."""
    per_epoch = length // (batch_size * world_size)
    if per_epoch < 1:
        raise ValueError(
            f"{length} training images cannot fill one global batch of "
            f"{batch_size} x {world_size} workers; lower batch_size or add images"
        )
    return per_epoch


@functools.lru_cache(maxsize=2)
def epoch_order(seed: int, epoch: int, length: int) -> np.ndarray:
    """The read-only permutation of ``range(length)`` that epoch ``epoch`` visits, drawn from
    ``(seed, epoch)``; remembered, since every step of the epoch asks for it (a 640,000-image
    epoch takes 10-30 ms to permute: drawn per step, 20,000 steps took 251 s)."""
    order = np.random.default_rng((seed, epoch)).permutation(length)
    order.flags.writeable = False
    return order


def step_batch_keys(
    step: int, length: int, batch_size: int, seed: int, rank: int = 0, world_size: int = 1
) -> list[tuple[int, int]]:
    """``(epoch, index)`` keys of this rank's share of global batch ``step`` (0-based).

    Each epoch visits a permutation of ``range(length)`` drawn from ``(seed, epoch)``; the
    global batch is split across ranks round-robin, so the union over ranks does not depend
    on the worker count.
    """
    per_epoch = steps_per_epoch(length, batch_size, world_size)
    epoch, within = divmod(step, per_epoch)
    order = epoch_order(seed, epoch, length)
    global_batch = batch_size * world_size
    chosen = order[within * global_batch : (within + 1) * global_batch]
    return [(epoch, int(i)) for i in chosen[rank::world_size]]


class StepBatches:
    """The keys of :func:`step_batch_keys` for steps ``start_step .. total_steps - 1``, as a
    lazy ``batch_sampler`` (a list for a 640,000-image run would hold 640,000 tuples)."""

    def __init__(self, length: int, batch_size: int, seed: int, start_step: int,
                 total_steps: int, rank: int = 0, world_size: int = 1) -> None:  # fmt: skip
        self.length, self.batch_size, self.seed = length, batch_size, seed
        self.start_step, self.total_steps = start_step, total_steps
        self.rank, self.world_size = rank, world_size

    def __len__(self) -> int:
        return max(self.total_steps - self.start_step, 0)

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        for step in range(self.start_step, self.total_steps):
            yield step_batch_keys(step, self.length, self.batch_size, self.seed, self.rank,
                                  self.world_size)  # fmt: skip


class EpochIndexed(torch.utils.data.Dataset):
    """``dataset[(epoch, index)]``: selects the augmentation epoch per item (worker-safe)."""

    def __init__(self, dataset: Any) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, key: tuple[int, int]) -> Any:
        epoch, index = key
        if hasattr(self.dataset, "set_epoch"):
            self.dataset.set_epoch(epoch)
        return self.dataset[index]


def build_batches(
    dataset: Any,
    collate: Callable[[list[Any]], Any],
    *,
    batch_size: int,
    seed: int,
    start_step: int,
    total_steps: int,
    workers: int = 0,
    rank: int = 0,
    world_size: int = 1,
) -> Iterable[Any]:
    """A DataLoader yielding the batches of steps ``start_step .. total_steps - 1``."""
    keys = StepBatches(len(dataset), batch_size, seed, start_step, total_steps, rank, world_size)
    return torch.utils.data.DataLoader(
        EpochIndexed(dataset),
        batch_sampler=keys,
        collate_fn=collate,
        num_workers=workers,
        persistent_workers=False,
    )


def lr_factor(
    step: int,
    *,
    total_steps: int,
    kind: str = "cosine",
    warmup_steps: int = 0,
    min_factor: float = 0.01,
    milestones: Iterable[float] = (0.67, 0.89),
    gamma: float = 0.1,
) -> float:
    """Multiplier of the base learning rate at ``step`` (0-based optimizer step).

    The warmup takes at most a fifth of ``total_steps``: a run shorter than its configured
    warmup (a time budget fitted a GPU config's schedule to a few minutes, or a short trial
    run) still reaches the full rate and anneals, instead of ending mid-ramp.
    """
    warmup_steps = min(warmup_steps, total_steps // 5)
    if warmup_steps and step < warmup_steps:
        return (step + 1) / warmup_steps
    if kind == "constant":
        return 1.0
    if kind == "step":
        passed = sum(step >= m * total_steps for m in milestones)
        return float(gamma**passed)
    if kind == "cosine":
        span = max(total_steps - warmup_steps, 1)
        progress = min(max(step - warmup_steps, 0) / span, 1.0)
        return min_factor + (1 - min_factor) * 0.5 * (1 + math.cos(math.pi * progress))
    raise ValueError(f"unknown schedule kind {kind!r}; choose cosine, step or constant")


def build_optimizer(
    model: nn.Module,
    *,
    lr: float,
    backbone_lr_factor: float = 0.1,
    weight_decay: float = 1e-4,
    betas: tuple[float, float] = (0.9, 0.999),
    backbone_prefix: str = "backbone.",
) -> torch.optim.AdamW:
    """AdamW with two groups: the encoder (``backbone_prefix``) at ``lr * factor``, the rest."""
    encoder: list[nn.Parameter] = []
    rest: list[nn.Parameter] = []
    for name, parameter in model.named_parameters():
        if parameter.requires_grad:
            (encoder if name.startswith(backbone_prefix) else rest).append(parameter)
    groups = [{"params": rest, "lr": lr}]
    if encoder:
        groups.append({"params": encoder, "lr": lr * backbone_lr_factor})
    return torch.optim.AdamW(groups, lr=lr, weight_decay=weight_decay, betas=betas)


class LrSchedule:
    """:func:`lr_factor` as a ``LambdaLR`` function whose length can change mid-run.

    A time-budgeted run (``max_minutes``) learns how many steps fit only once it has timed
    some, and then shortens ``total_steps`` so the cosine still reaches its floor by the end
    (:class:`describeme.models.common.training.Trainer` does it). ``LambdaLR`` saves this
    object's attributes with its state; the trainer re-applies its own total after a resume.
    """

    def __init__(self, total_steps: int, **schedule: Any) -> None:
        lr_factor(0, total_steps=total_steps, **schedule)  # fail fast on a bad kind
        self.total_steps = total_steps
        self.schedule = schedule

    def __call__(self, step: int) -> float:
        return lr_factor(step, total_steps=self.total_steps, **self.schedule)


def build_scheduler(
    optimizer: torch.optim.Optimizer, *, total_steps: int, **schedule: Any
) -> torch.optim.lr_scheduler.LambdaLR:
    """LambdaLR following :func:`lr_factor` (``schedule`` = ScheduleConfig fields)."""
    return torch.optim.lr_scheduler.LambdaLR(optimizer, LrSchedule(total_steps, **schedule))


def distributed_world() -> tuple[int, int]:
    """(rank, world size) of the torch.distributed group, (0, 1) without one."""
    if torch.distributed.is_available() and torch.distributed.is_initialized():
        return torch.distributed.get_rank(), torch.distributed.get_world_size()
    return 0, 1


def resolve_device(device: str) -> torch.device:
    """``auto`` -> cuda when available else cpu; ``cuda`` without CUDA is an error."""
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(f"device {device!r} requested but torch has no CUDA here; use cpu")
    try:
        return torch.device(device)
    except RuntimeError:
        raise ValueError(f"device must be auto, cpu or cuda[:N], got {device!r}") from None


class JsonLog:
    """Append-only JSON-lines log; on resume, records after the resumed step are dropped.

    Args:
        path: the ``log.jsonl`` file.
        resume_step: keep records with ``step <= resume_step`` (None = start a new log).
    """

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        kept: list[str] = []
        if resume_step is not None and self.path.is_file():
            for line in self.path.read_text(encoding="utf-8").splitlines():
                if line.strip() and json.loads(line).get("step", 0) <= resume_step:
                    kept.append(line)
        self.path.write_text("".join(f"{line}\n" for line in kept), encoding="utf-8")

    def write(self, record: Mapping[str, Any]) -> None:
        with self.path.open("a", encoding="utf-8") as handle:
            handle.write(json.dumps(record, allow_nan=False, default=_json_default) + "\n")


def read_log(path: str | Path, kind: str | None = None) -> list[dict[str, Any]]:
    """Records of a ``log.jsonl`` (optionally only ``kind`` = "train" or "eval")."""
    records = [
        json.loads(line)
        for line in Path(path).read_text(encoding="utf-8").splitlines()
        if line.strip()
    ]
    return [r for r in records if kind is None or r.get("kind") == kind]


def _json_default(value: Any) -> Any:
    if isinstance(value, (np.floating, np.integer)):
        return value.item()
    raise TypeError(f"cannot log {type(value).__name__}")


def finite_metrics(report: Mapping[str, Any]) -> dict[str, float]:
    """The top-level finite numbers of an evaluation report (what a checkpoint keeps)."""
    return {
        k: float(v)
        for k, v in report.items()
        if isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)
    }
