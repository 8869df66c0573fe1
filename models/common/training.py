"""The optimizer-step loop shared by every model: :class:`Trainer`.

A model's train module supplies ``compute_loss(model, batch) -> {"loss": ..., terms...}``,
an optional ``evaluate(module) -> metrics`` and ``save(step, metrics, training_state) ->
path``; the Trainer does the rest: AMP (fp16 autocast + grad scaling) on CUDA, gradient
clipping, the learning-rate schedule, periodic evaluation and checkpoints, a JSON-lines log,
exact resume (optimizer, scheduler, scaler and RNG state in ``state_dict``) and an optional
wall-clock budget (:meth:`Trainer.run`).

Under ``torch.distributed`` (DDP) every rank steps; only rank 0 logs, evaluates and saves.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
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


# Time budget (Trainer.run): steps left out of the timing (allocator warm-up, cuDNN autotuning),
# steps timed before the first re-fit, and the share of the budget kept in hand.
BUDGET_WARMUP_STEPS = 3
BUDGET_CALIBRATION_STEPS = 20
BUDGET_MARGIN = 0.03


@dataclass
class _BudgetClock:
    """Where a time-budgeted run stands: when and at which step it started, the (elapsed,
    step) timing mark after the warm-up steps, and whether the half-way re-fit ran."""

    started: float = 0.0
    first_step: int = 0
    mark: tuple[float, int] | None = None
    refit_halfway: bool = False


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
        time_budget_s: wall-clock seconds of the step loop (None = no limit), periodic
            evaluations and checkpoints included; the final evaluation is kept inside it only
            once an earlier one has measured its length. See :meth:`run`.
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
        time_budget_s: float | None = None,
    ) -> None:
        if time_budget_s is not None and time_budget_s <= 0:
            raise ValueError(f"time_budget_s must be > 0, got {time_budget_s}")
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
        self.time_budget_s = time_budget_s
        self.planned_steps = total_steps  # total_steps before a time budget shortened it
        self._budget = _BudgetClock()
        self.step = 0
        self.metrics: dict[str, float] = {}
        self.last_losses: dict[str, float] = {}
        self.checkpoint: Path | None = None
        self._eval_seconds = 0.0

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
        self._set_total_steps(self.total_steps)  # this run's length, not the saved schedule's
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

        With ``time_budget_s`` the run fits its schedule to the clock: once
        ``BUDGET_CALIBRATION_STEPS`` steps are timed (and again at half the budget), the
        schedule's ``total_steps`` is shortened to the steps that fit in the time left, less
        the last evaluation's duration when one runs at the end, so the learning rate still
        anneals to its floor; whatever the estimate, no step starts after the budget is spent.
        Under DDP every rank decides from the slowest rank's clock, so all stop together.
        """
        remaining = self.total_steps - self.step
        items = batches if self.progress is None else self.progress(batches, remaining, "training")
        started = time.perf_counter()
        self._budget = _BudgetClock(started, self.step)
        for batch in items:
            if self.step >= self.total_steps:
                break
            tick = time.perf_counter()
            self.last_losses = self.train_step(batch)
            self._after_step(time.perf_counter() - tick)
            if self.time_budget_s is not None:
                self._fit_budget()
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
                "checkpoint": self.checkpoint, "seconds": elapsed,
                "total_steps": self.total_steps}  # fmt: skip

    def _set_total_steps(self, total: int) -> None:
        """Moves the run's last step, and the schedule's (an :class:`LrSchedule`) with it."""
        self.total_steps = total
        for fn in getattr(self.scheduler, "lr_lambdas", ()):
            if hasattr(fn, "total_steps"):
                fn.total_steps = total

    def _clock_s(self) -> tuple[float, float]:
        """Seconds since :meth:`run` started and the last evaluation's length, each the
        largest over ranks under DDP: only rank 0 evaluates, and every rank must fit the
        same schedule (a rank with more steps would wait forever in the loss all-reduce)."""
        values = [time.perf_counter() - self._budget.started, self._eval_seconds]
        if self.world_size > 1:
            tensor = torch.tensor(values, dtype=torch.float64, device=self.device)
            torch.distributed.all_reduce(tensor, op=torch.distributed.ReduceOp.MAX)
            values = tensor.tolist()
        return values[0], values[1]

    def _fit_budget(self) -> None:
        """After each step of a time-budgeted run: stop, or re-fit the schedule's length."""
        assert self.time_budget_s is not None
        clock, budget = self._budget, self.time_budget_s
        elapsed, eval_s = self._clock_s()
        done = self.step - clock.first_step
        if done == BUDGET_WARMUP_STEPS:
            clock.mark = (elapsed, self.step)  # first steps pay for allocator and autotuning
        if elapsed >= budget:
            if self.step < self.total_steps:
                log.info("time budget of %.1f min spent at step %d (planned %d): ending the run",
                         budget / 60, self.step, self.planned_steps)  # fmt: skip
                self._set_total_steps(self.step)
            return
        calibrate = done == BUDGET_CALIBRATION_STEPS
        halfway = (not clock.refit_halfway and elapsed >= budget / 2
                   and done > BUDGET_CALIBRATION_STEPS)  # fmt: skip
        if not (calibrate or halfway) or clock.mark is None:
            return
        clock.refit_halfway = clock.refit_halfway or halfway
        since, at_step = clock.mark
        per_step = (elapsed - since) / max(self.step - at_step, 1)
        reserve = eval_s if self.eval_at_end and self.evaluate is not None else 0.0
        left = budget - elapsed - reserve - BUDGET_MARGIN * budget
        fits = self.step + max(int(left / max(per_step, 1e-9)), 1)
        total = min(fits, self.planned_steps)
        if total != self.total_steps:
            log.info("time budget: %.2f s/step, %d steps fit in %.1f min; schedule length %d -> %d",
                     per_step, total, budget / 60, self.total_steps, total)  # fmt: skip
            if self.rank == 0 and self.json_log is not None:
                self.json_log.write({"kind": "budget", "step": self.step,
                                     "elapsed_s": elapsed, "seconds_per_step": per_step,
                                     "total_steps": total})  # fmt: skip
            self._set_total_steps(total)

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
        self._eval_seconds = time.perf_counter() - started
        if self.json_log is not None:
            self.json_log.write({"kind": "eval", "step": self.step, "metrics": self.metrics,
                            "seconds": self._eval_seconds})  # fmt: skip
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
