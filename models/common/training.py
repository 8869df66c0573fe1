"""The optimizer-step loop shared by every model: :class:`Trainer`.

A model's train module supplies ``compute_loss(model, batch) -> {"loss": ..., terms...}``,
an optional ``evaluate(module) -> metrics`` and ``save(step, metrics, training_state) ->
path``; the Trainer does the rest: AMP (fp16 autocast + grad scaling) on CUDA, gradient
clipping, the learning-rate schedule, periodic evaluation and checkpoints, a JSON-lines log,
and exact resume (optimizer, scheduler, scaler and RNG state in ``state_dict``).

Under ``torch.distributed`` (DDP) every rank steps; only rank 0 logs, evaluates and saves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from describeme.models.training import JsonLog

log = logging.getLogger(__name__)
LossFn = Callable[[nn.Module, Any], Mapping[str, torch.Tensor]]
EvalFn = Callable[[nn.Module], dict[str, float]]
SaveFn = Callable[[int, dict[str, float], dict[str, Any]], Path]
Wrap = Callable[[Iterable[Any], int, str], Iterator[Any]]  # (items, total, label) -> items


class Trainer:
    """Runs optimizer steps ``step + 1 .. total_steps`` over a batch iterable.

    Args:
        model: the network, possibly wrapped in DDP (``.module`` is used to eval and save).
        compute_loss: ``(model, batch) -> dict`` with the scalar ``loss`` to minimise.
        optimizer, scheduler: built for ``model``'s parameters; the scheduler steps per step.
        device: where the model lives (AMP only applies on CUDA).
        total_steps: the run's last step.
        clip_grad_norm: max global gradient norm (0 = no clipping).
        amp: fp16 autocast with a GradScaler on CUDA.
        json_log: JSON-lines log (rank 0; None = no file).
        log_every, checkpoint_every, eval_every: periods in steps (0 = never periodic).
        evaluate: ``(module) -> metrics`` on held-out data (rank 0).
        eval_at_end: evaluate after the last step too.
        save: ``(step, metrics, training_state) -> checkpoint path`` (rank 0).
        rank, world_size: this process in the distributed group.
        progress: optional ``wrap(items, total, label)`` progress bar.
    """

    def __init__(
        self,
        *,
        model: nn.Module,
        compute_loss: LossFn,
        optimizer: torch.optim.Optimizer,
        scheduler: torch.optim.lr_scheduler.LRScheduler,
        device: torch.device,
        total_steps: int,
        clip_grad_norm: float = 0.0,
        amp: bool = False,
        json_log: JsonLog | None = None,
        log_every: int = 10,
        checkpoint_every: int = 0,
        eval_every: int = 0,
        evaluate: EvalFn | None = None,
        eval_at_end: bool = True,
        save: SaveFn | None = None,
        rank: int = 0,
        world_size: int = 1,
        progress: Wrap | None = None,
    ) -> None:
        self.model, self.compute_loss = model, compute_loss
        self.module: nn.Module = getattr(model, "module", model)
        self.optimizer, self.scheduler, self.device = optimizer, scheduler, device
        self.total_steps, self.clip_grad_norm = total_steps, clip_grad_norm
        self.amp = amp and device.type == "cuda"
        if amp and not self.amp:
            log.info("amp requested but the device is %s: training in fp32", device)
        self.scaler = torch.amp.GradScaler("cuda", enabled=self.amp)
        self.json_log, self.log_every = json_log, log_every
        self.checkpoint_every, self.eval_every = checkpoint_every, eval_every
        self.evaluate, self.eval_at_end, self.save = evaluate, eval_at_end, save
        self.rank, self.world_size, self.progress = rank, world_size, progress
        self.step = 0
        self.metrics: dict[str, float] = {}
        self.last_losses: dict[str, float] = {}
        self.checkpoint: Path | None = None

    def state_dict(self) -> dict[str, Any]:
        """Everything a resumed run needs besides the weights (``weights_only``-loadable)."""
        state: dict[str, Any] = {
            "step": self.step,
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "scaler": self.scaler.state_dict(),
            "torch_rng": torch.get_rng_state(),
            "metrics": dict(self.metrics),
        }
        if torch.cuda.is_available():
            state["cuda_rng"] = torch.cuda.get_rng_state_all()
        return state

    def load_state_dict(self, state: Mapping[str, Any]) -> None:
        """Restores :meth:`state_dict` (call before :meth:`run`)."""
        self.step = int(state["step"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        if state.get("scaler"):
            self.scaler.load_state_dict(state["scaler"])
        torch.set_rng_state(state["torch_rng"])
        if "cuda_rng" in state and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["cuda_rng"])
        self.metrics = dict(state.get("metrics", {}))

    def train_step(self, batch: Any) -> dict[str, float]:
        """One forward/backward/update; returns the (rank-averaged) loss terms as floats."""
        self.model.train()
        self.optimizer.zero_grad(set_to_none=True)
        with torch.autocast("cuda", dtype=torch.float16, enabled=self.amp):
            losses = self.compute_loss(self.model, batch)
        loss = losses["loss"]
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"loss is {loss.item()} at step {self.step + 1}; lower the learning rate or "
                "enable gradient clipping (clip_grad_norm)"
            )
        self.scaler.scale(loss).backward()
        if self.clip_grad_norm > 0:
            self.scaler.unscale_(self.optimizer)
            nn.utils.clip_grad_norm_(self.model.parameters(), self.clip_grad_norm)
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.scheduler.step()
        self.step += 1
        return self._averaged({k: v.detach().float() for k, v in losses.items()})

    def _averaged(self, losses: dict[str, torch.Tensor]) -> dict[str, float]:
        """Mean of each term over ranks (one all-reduce), so the log shows the global loss."""
        names = sorted(losses)
        values = torch.stack([losses[n].reshape(()) for n in names])
        if self.world_size > 1:
            torch.distributed.all_reduce(values)
            values = values / self.world_size
        return dict(zip(names, values.cpu().tolist(), strict=True))

    def run(self, batches: Iterable[Any]) -> dict[str, Any]:
        """Trains until ``total_steps``; returns ``step``, ``losses``, ``metrics``, ``checkpoint``.

        ``batches`` must yield the batches of steps ``self.step + 1 ..`` in order.
        """
        remaining = self.total_steps - self.step
        items = batches if self.progress is None else self.progress(batches, remaining, "training")
        started = time.perf_counter()
        for batch in items:
            if self.step >= self.total_steps:
                break
            tick = time.perf_counter()
            self.last_losses = self.train_step(batch)
            self._after_step(time.perf_counter() - tick)
        if self.step < self.total_steps:
            raise RuntimeError(
                f"the data ran out at step {self.step} of {self.total_steps}; the batch "
                "iterable must cover every remaining step"
            )
        if self.eval_at_end or self._due(self.eval_every):
            self._evaluate()
        self._save()  # the last checkpoint always carries the final metrics
        elapsed = time.perf_counter() - started
        return {"step": self.step, "losses": self.last_losses, "metrics": self.metrics,
                "checkpoint": self.checkpoint, "seconds": elapsed}  # fmt: skip

    def _due(self, every: int) -> bool:
        return every > 0 and self.step % every == 0

    def _after_step(self, seconds: float) -> None:
        record = {"kind": "train", "step": self.step, "lr": self.scheduler.get_last_lr()[0],
                  "seconds_per_step": seconds, "world_size": self.world_size,
                  **self.last_losses}  # fmt: skip
        if self.rank == 0 and self.json_log is not None:
            self.json_log.write(record)
        if self.rank == 0 and (self.step % self.log_every == 0 or self.step == self.total_steps):
            log.info("step %d/%d loss %.4f lr %.2e (%.2f s/step)", self.step, self.total_steps,
                     record["loss"], record["lr"], seconds)  # fmt: skip
        if self.step == self.total_steps:
            return  # run() evaluates and saves the final step
        if self._due(self.eval_every):
            self._evaluate()
        if self._due(self.checkpoint_every):
            self._save()

    def _save(self) -> None:
        if self.save is not None and self.rank == 0:
            self.checkpoint = self.save(self.step, self.metrics, self.state_dict())

    def _evaluate(self) -> None:
        if self.rank != 0 or self.evaluate is None:
            return
        was_training = self.module.training
        started = time.perf_counter()
        try:
            self.metrics = self.evaluate(self.module.eval())
        finally:
            self.module.train(was_training)
        if self.json_log is not None:
            self.json_log.write({"kind": "eval", "step": self.step, "metrics": self.metrics,
                            "seconds": time.perf_counter() - started})  # fmt: skip
        log.info(
            "eval at step %d: %s",
            self.step,
            ", ".join(f"{k} {v:.4f}" for k, v in sorted(self.metrics.items())[:8]),
        )


class BatchLoss:
    """``(model, batch) -> losses`` for :class:`Trainer`: a ``collate_parsing`` batch -> model
    input and criterion targets, shared by every parser.

    The dataset adapter normalises images with ImageNet statistics, but the parsers normalise
    inside their graphs (every backend takes [0, 1] RGB), so the batch is mapped back first.
    The criterion runs in fp32 even under autocast (log/exp of small numbers). Subclasses
    name the per-instance targets their criterion takes in ``INSTANCE_FIELDS``.
    """

    INSTANCE_FIELDS: tuple[str, ...] = ()

    def __init__(self, criterion: nn.Module, device: torch.device) -> None:
        from describeme.models.common.losses import SEMANTIC_TARGETS
        from describeme.models.datasets import IMAGENET_MEAN_RGB, IMAGENET_STD_RGB

        self.criterion, self.device = criterion.to(device), device
        self.semantic_names = tuple(SEMANTIC_TARGETS)
        self.mean = torch.tensor(IMAGENET_MEAN_RGB, device=device).view(1, 3, 1, 1)
        self.std = torch.tensor(IMAGENET_STD_RGB, device=device).view(1, 3, 1, 1)

    def __call__(self, model: nn.Module, batch: Mapping[str, Any]) -> dict[str, torch.Tensor]:
        images = batch["image"].to(self.device, non_blocking=True) * self.std + self.mean
        outputs = model(images.clamp_(0.0, 1.0))  # (B, 3, H, W) RGB in [0, 1]
        columns = [batch[name] for name in self.INSTANCE_FIELDS]
        instances = [
            {
                name: value.to(self.device)
                for name, value in zip(self.INSTANCE_FIELDS, row, strict=True)
            }
            for row in zip(*columns, strict=True)
        ]
        semantic = {name: batch[name].to(self.device) for name in self.semantic_names}
        with torch.autocast(self.device.type, enabled=False):
            return self.criterion(to_float(outputs), instances, semantic)


def to_float(outputs: Any) -> Any:
    """Casts every tensor in nested dicts/lists of model outputs to fp32."""
    if isinstance(outputs, torch.Tensor):
        return outputs.float()
    if isinstance(outputs, Mapping):
        return {k: to_float(v) for k, v in outputs.items()}
    if isinstance(outputs, list):
        return [to_float(v) for v in outputs]
    return outputs
