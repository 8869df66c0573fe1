"""Parser training (HPTR or PersonLab, by the ``name`` of the config's model section): plain
torch, callable without Ray (``describeme train`` wraps it in a Ray job).

Example::

    from describeme.models.train import load_train_config, train_parser
    config = load_train_config("configs/models/hptr_train_tiny.yaml", ["steps=20"])
    result = train_parser(config)                    # runs/..., last.pt, log.jsonl
    result = train_parser(config, resume="auto")     # continue after an interruption

Both models share everything here (data, loop, optimiser, schedule, evaluation, checkpoints,
resume); :data:`MODEL_SPECS` holds the only model-specific parts: how to build the network
and the batch loss from the model section.

The run folder (``output_dir``) holds ``config.yaml`` (resolved), ``log.jsonl`` (one JSON
record per step and per evaluation), ``result.json`` (the final :class:`TrainResult`),
``checkpoint_<step>.pt`` (the newest ``keep_checkpoints``) and ``last.pt``: self-describing
checkpoints with the weights, model arguments, the resolved train config, the latest
evaluation metrics and the training state.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Annotated, Any

import torch
from pydantic import Discriminator, Field, Tag
from torch import nn

from describeme.config import (
    ConfigError,
    build_config,
    deep_merge,
    dump_config,
    parse_overrides,
    read_yaml,
)
from describeme.models.checkpoint import read_checkpoint, save_checkpoint
from describeme.models.common.training import BatchLoss, Trainer, Wrap
from describeme.models.datasets import collate_parsing
from describeme.models.hptr import config as hptr_config
from describeme.models.hptr.config import HPTRConfig
from describeme.models.hptr.criterion import HPTRLoss
from describeme.models.personlab import config as personlab_config
from describeme.models.personlab.config import PersonLabConfig
from describeme.models.personlab.criterion import PersonLabLoss
from describeme.models.training import (
    LAST_CHECKPOINT,
    LOG_NAME,
    DataConfig,
    EvalConfig,
    JsonLog,
    LoopConfig,
    OptimizerConfig,
    ScheduleConfig,
    build_batches,
    build_optimizer,
    build_scheduler,
    distributed_world,
    resolve_device,
    seed_everything,
)

log = logging.getLogger(__name__)
CONFIG_NAME = "config.yaml"
RESULT_NAME = "result.json"


@dataclass(frozen=True)
class ModelSpec:
    """How to build one model and its batch loss from its config section."""

    title: str
    build_model: Callable[[Any], nn.Module]
    build_loss: Callable[[Any, torch.device], BatchLoss]


MODEL_SPECS: dict[str, ModelSpec] = {
    "hptr": ModelSpec(
        "HPTR",
        hptr_config.build_model_from_config,
        lambda c, d: HPTRLoss(hptr_config.build_criterion_from_config(c), d),
    ),
    "personlab": ModelSpec(
        "PersonLab",
        personlab_config.build_model_from_config,
        lambda c, d: PersonLabLoss(personlab_config.build_criterion_from_config(c), d),
    ),
}


def _model_name(value: Any) -> str:
    """The model section's ``name`` (HPTR when the section does not say)."""
    if isinstance(value, Mapping):
        return str(value.get("name", "hptr"))
    return str(getattr(value, "name", "hptr"))


ModelSection = Annotated[
    Annotated[HPTRConfig, Tag("hptr")] | Annotated[PersonLabConfig, Tag("personlab")],
    Discriminator(_model_name),
]


class TrainConfig(LoopConfig):
    """``configs/models/*_train*.yaml``: the model (HPTR or PersonLab, by its ``name``), its
    data and the optimisation."""

    model: ModelSection = HPTRConfig()
    data: DataConfig = DataConfig()
    optimizer: OptimizerConfig = OptimizerConfig()
    schedule: ScheduleConfig = ScheduleConfig()
    eval: EvalConfig = EvalConfig()
    keep_checkpoints: int = Field(default=3, ge=1)  # newest checkpoint_<step>.pt files kept
    # Start from this checkpoint's weights (a release or training checkpoint of the same model
    # and arguments, or a bundled model's name: "personlab") with a fresh optimizer and
    # schedule; a resumed run takes its weights from the resumed checkpoint instead.
    init_weights: str | None = None


@dataclass
class TrainResult:
    """What a run ended with (plain data: it crosses the Ray boundary)."""

    step: int
    total_steps: int
    output_dir: str
    checkpoint: str | None
    log_path: str
    losses: dict[str, float] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    seconds: float = 0.0
    world_size: int = 1

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def load_train_config(path: str | Path | None, overrides: Iterable[str] = ()) -> TrainConfig:
    """Loads a train YAML; ``model`` may be a mapping or the name of a model YAML.

    A string ``model: hptr_tiny.yaml`` is read relative to the train YAML's folder (then
    the working directory), so train configs reuse ``configs/models/{hptr,personlab}*.yaml``;
    ``model: {base: hptr_mobile.yaml, input_size: [384, 512]}`` changes keys of it. Overrides
    (``-o steps=100``, ``-o model.model.hidden_dim=64``) apply on top of the resolved model.
    """
    source = str(path) if path is not None else "<defaults>"
    data = read_yaml(path) if path is not None else {}
    base = Path(path).parent if path is not None else Path.cwd()
    data = _resolve_model_file(data, base, source)
    override_map = parse_overrides(overrides)
    if isinstance(override_map.get("model"), str):
        data = _resolve_model_file({**data, "model": override_map.pop("model")}, base, source)
    merged = deep_merge(data, override_map)
    label = source if not override_map else f"{source} (with -o overrides)"
    return build_config(TrainConfig, merged, label)


def _resolve_model_file(data: Mapping[str, Any], base: Path, source: str) -> dict[str, Any]:
    """``model: FILE`` -> FILE's mapping; ``model: {base: FILE, k: v}`` -> FILE updated by k."""
    value = data.get("model")
    extra: Mapping[str, Any] = {}
    if isinstance(value, Mapping) and isinstance(value.get("base"), str):
        extra = {k: v for k, v in value.items() if k != "base"}
        value = value["base"]
    if not isinstance(value, str):
        return dict(data)
    for candidate in (base / value, Path(value)):
        if candidate.is_file():
            return {**data, "model": deep_merge(read_yaml(candidate), extra)}
    raise ConfigError(
        f"{source}: key 'model': model config {value!r} not found next to the train config "
        f"({base}) or in the working directory"
    )


def build_train_dataset(config: TrainConfig) -> Any:
    """The augmented training set: synthetic images on the fly, or a dataset folder."""
    from describeme.models.datasets import ParsingTorchDataset

    data = config.data
    if data.kind == "synthetic":
        samples: Any = build_synthetic(data, seed=data.seed, length=data.length)
    else:
        from describeme.data.readers import open_dataset

        assert data.root is not None  # validated by DataConfig
        samples = open_dataset(data.root, split=data.split)
    return ParsingTorchDataset(
        samples,
        train=True,
        size=config.model.input_size,
        scale_range=data.scale_range,
        flip_prob=data.flip_prob,
        seed=data.seed,
    )


def build_synthetic(data: DataConfig, *, seed: int, length: int) -> Any:
    """``SyntheticImages`` with the configured synth YAML and render size."""
    from describeme.config import load_config
    from describeme.data.synth import SynthConfig, SyntheticImages

    overrides = []
    if data.render_size is not None:
        overrides = [f"width={data.render_size[0]}", f"height={data.render_size[1]}"]
    synth = load_config(data.synth_config, SynthConfig, overrides)
    return SyntheticImages(synth, seed=seed, length=length)


def build_evaluate(config: TrainConfig, device: torch.device) -> Any:
    """``evaluate(module) -> metrics`` on ``eval.limit`` held-out images (contract keys)."""
    from describeme.models.inference import Predictor
    from describeme.models.metrics.evaluator import ParsingEvaluator
    from describeme.models.registry import parser_from_model
    from describeme.models.training import finite_metrics

    settings = config.eval
    holdout = None
    if settings.folder is None:
        holdout = build_synthetic(config.data, seed=settings.seed, length=settings.limit)

    def evaluate(module: nn.Module) -> dict[str, float]:
        predict = Predictor(parser_from_model(module, config.model, device=str(device)))
        if holdout is None:
            from describeme.models.metrics.dataset_eval import evaluate_dataset

            assert settings.folder is not None
            report = evaluate_dataset(settings.folder, predict, settings.split, settings.limit)
        else:
            evaluator = ParsingEvaluator()
            for sample in holdout:
                evaluator.update(sample, predict(sample, sample.image_id), sample.image_id)
            report = evaluator.compute()
        return finite_metrics(report)

    return evaluate


def train_parser(
    config: TrainConfig,
    *,
    resume: str | Path | None = None,
    device: str | None = None,
    progress: Wrap | None = None,
) -> TrainResult:
    """Trains the config's model; under ``torch.distributed`` each rank runs this with its
    data shard.

    Args:
        config: the resolved train config.
        resume: a checkpoint with training state, ``"auto"`` (``output_dir/last.pt`` when it
            exists), or None for a fresh run.
        device: overrides ``config.device`` (Ray Train passes each worker's device).
        progress: optional ``wrap(items, total, label)`` progress bar (rank 0).

    Returns:
        The final step, losses, metrics and checkpoint path.
    """
    rank, world_size = distributed_world()
    target = resolve_device(device or config.device)
    output_dir = Path(config.output_dir)
    seed_everything(config.seed)
    spec = MODEL_SPECS[config.model.name]
    module = spec.build_model(config.model).to(target)
    dataset = build_train_dataset(config)
    total_steps = config.total_steps(len(dataset), world_size)
    optimizer = build_optimizer(module, **config.optimizer.model_dump())
    scheduler = build_scheduler(optimizer, total_steps=total_steps, **config.schedule.model_dump())
    state = _resume_state(resume, output_dir, module, config.model.name)
    if state is None and config.init_weights:
        _init_weights(config.init_weights, module, config.model.name)
    model: nn.Module = module
    if world_size > 1:
        ids = [target.index] if target.type == "cuda" else None
        model = nn.parallel.DistributedDataParallel(module, device_ids=ids)
    if rank == 0:
        output_dir.mkdir(parents=True, exist_ok=True)
        (output_dir / CONFIG_NAME).write_text(dump_config(config), encoding="utf-8")
        log.info("training %s for %d steps on %d x %s; resolved config in %s", spec.title,
                 total_steps, world_size, target, output_dir / CONFIG_NAME)  # fmt: skip
        if config.max_minutes is not None:
            log.info("time budget %.1f min: the schedule is fitted to the steps that fit",
                     config.max_minutes)  # fmt: skip
    trainer = Trainer(
        model=model, compute_loss=spec.build_loss(config.model, target),
        optimizer=optimizer, scheduler=scheduler, device=target, total_steps=total_steps,
        clip_grad_norm=config.clip_grad_norm, amp=config.amp,
        json_log=JsonLog(output_dir / LOG_NAME, state["step"] if state else None)
        if rank == 0 else None,
        log_every=config.log_every, checkpoint_every=config.checkpoint_every,
        eval_every=config.eval.every_steps, evaluate=build_evaluate(config, target),
        eval_at_end=config.eval.at_end, save=_saver(config, module, output_dir),
        rank=rank, world_size=world_size, progress=progress if rank == 0 else None,
        time_budget_s=None if config.max_minutes is None else 60 * config.max_minutes,
    )  # fmt: skip
    if state is not None:
        trainer.load_state_dict(state)
    batches = build_batches(
        dataset, collate_parsing, batch_size=config.batch_size, seed=config.seed,
        start_step=trainer.step, total_steps=total_steps, workers=config.data.workers,
        rank=rank, world_size=world_size,
    )  # fmt: skip
    outcome = trainer.run(batches)
    checkpoint = outcome["checkpoint"]
    result = TrainResult(
        step=outcome["step"], total_steps=outcome["total_steps"], output_dir=str(output_dir),
        checkpoint=None if checkpoint is None else str(checkpoint),
        log_path=str(output_dir / LOG_NAME), losses=outcome["losses"],
        metrics=outcome["metrics"], seconds=outcome["seconds"], world_size=world_size,
    )  # fmt: skip
    if rank == 0:
        (output_dir / RESULT_NAME).write_text(json.dumps(result.to_dict(), indent=2) + "\n")
    return result


def _resume_state(
    resume: str | Path | None, output_dir: Path, module: nn.Module, model_name: str
) -> dict[str, Any] | None:
    """Loads the weights of ``resume`` into ``module``; returns its training state."""
    if resume is None:
        return None
    path = Path(resume) if str(resume) != "auto" else output_dir / LAST_CHECKPOINT
    if str(resume) == "auto" and not path.is_file():
        log.info("no %s to resume from: starting a new run", path)
        return None
    payload = _matching_checkpoint(path, module, model_name, "resume")
    if not payload.get("training_state"):
        raise ConfigError(
            f"{path}: has weights but no training state, so it cannot be resumed; "
            "resume from a checkpoint written by describeme train, or start from its weights "
            "with init_weights"
        )
    module.load_state_dict(payload["state_dict"])
    log.info("resuming from %s at step %d", path, payload["training_state"]["step"])
    return dict(payload["training_state"])


def _init_weights(name_or_path: str, module: nn.Module, model_name: str) -> None:
    """Loads ``init_weights`` (a checkpoint file or a bundled model's name) into ``module``:
    a fresh run that starts from trained weights."""
    from describeme.errors import DataError
    from describeme.models.registry import resolve_model_path

    try:
        path = resolve_model_path(name_or_path)
    except DataError as exc:
        raise ConfigError(f"init_weights: {str(exc).removeprefix('--model ')}") from None
    payload = _matching_checkpoint(path, module, model_name, "start from")
    module.load_state_dict(payload["state_dict"])
    log.info("starting from the weights of %s", path)


def _matching_checkpoint(
    path: Path, module: nn.Module, model_name: str, verb: str
) -> dict[str, Any]:
    """Reads ``path``, checking it holds ``model_name`` with ``module``'s arguments."""
    payload = read_checkpoint(path)
    if payload["model_name"] != model_name:
        raise ConfigError(
            f"{path}: holds a '{payload['model_name']}' model, not {model_name}; {verb} "
            "it with a train config of that model"
        )
    expected = getattr(module, "model_args", {})
    different = sorted(k for k in expected if payload["model_args"].get(k) != expected[k])
    if different:
        raise ConfigError(
            f"{path}: cannot {verb} it: the checkpoint's model differs from the config in "
            f"{different}; use the model settings it was trained with ({CONFIG_NAME} of its "
            "run, or its model card)"
        )
    return payload


def _saver(config: TrainConfig, module: nn.Module, output_dir: Path) -> Any:
    """``save(step, metrics, state)``: checkpoint_<step>.pt, last.pt, prune old ones."""

    def save(step: int, metrics: dict[str, float], state: dict[str, Any]) -> Path:
        path = output_dir / f"checkpoint_{step:07d}.pt"
        save_checkpoint(path, module, config=config, metrics=metrics, training_state=state)
        _replace_link(path, output_dir / LAST_CHECKPOINT)
        for old in sorted(output_dir.glob("checkpoint_*.pt"))[: -config.keep_checkpoints]:
            old.unlink(missing_ok=True)
        return path

    return save


def _replace_link(source: Path, link: Path) -> None:
    """Points ``link`` at ``source``'s bytes atomically (hard link, or a copy)."""
    tmp = link.with_name(f".{link.name}.tmp-{os.getpid()}")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        import shutil

        shutil.copyfile(source, tmp)
    os.replace(tmp, link)
