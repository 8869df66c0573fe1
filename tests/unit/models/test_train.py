"""Parser training loop (HPTR, and PersonLab through the same loop): config, schedule, data
order, loss going down, exact resume, log, errors."""

from __future__ import annotations

import json
import shutil
import time
from pathlib import Path

import pytest
import torch
from torch import nn

from describeme.errors import ConfigError
from describeme.models.checkpoint import read_checkpoint, save_checkpoint
from describeme.models.common.training import BUDGET_CALIBRATION_STEPS, Trainer
from describeme.models.hptr.config import build_model_from_config
from describeme.models.train import load_train_config, train_parser
from describeme.models.training import (
    JsonLog,
    StepBatches,
    build_optimizer,
    build_scheduler,
    lr_factor,
    read_log,
    step_batch_keys,
)

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
TINY = CONFIGS / "hptr_train_tiny.yaml"
PERSONLAB_TINY = CONFIGS / "personlab_train_tiny.yaml"
# One fixed 2-image batch, no augmentation, no evaluation: fast and deterministic.
FAST = ["data.length=2", "data.flip_prob=0", "data.scale_range=[1,1]", "eval.at_end=false",
        "checkpoint_every=0", "device=cpu", "log_every=1"]  # fmt: skip


def _config(out: Path, *extra: str):  # type: ignore[no-untyped-def]
    return load_train_config(TINY, [*FAST, f"output_dir={out}", *extra])


@pytest.mark.parametrize(
    ("step", "kind", "warmup", "expected"),
    [
        (0, "cosine", 4, 0.25),  # warmup ramps linearly from 1/warmup
        (3, "cosine", 4, 1.0),
        (4, "cosine", 4, 1.0),  # cosine starts at the top after warmup
        (100, "cosine", 0, 0.01),  # ends at min_factor
        (50, "cosine", 0, 0.505),
        (0, "step", 0, 1.0),
        (67, "step", 0, 0.1),  # first milestone at 0.67 * total
        (95, "step", 0, 0.01),
        (80, "constant", 0, 1.0),
    ],
)
def test_lr_factor_table(step: int, kind: str, warmup: int, expected: float) -> None:
    value = lr_factor(step, total_steps=100, kind=kind, warmup_steps=warmup)
    assert value == pytest.approx(expected, rel=1e-6)


def test_a_run_shorter_than_its_warmup_still_reaches_the_rate_and_anneals() -> None:
    # 100 steps with a 1,000-step warmup: the warmup is capped at 20 steps.
    assert lr_factor(0, total_steps=100, warmup_steps=1000) == pytest.approx(1 / 20)
    assert lr_factor(19, total_steps=100, warmup_steps=1000) == pytest.approx(1.0)
    assert lr_factor(100, total_steps=100, warmup_steps=1000) == pytest.approx(0.01)
    # A warmup within a fifth of the run is left as configured.
    assert lr_factor(0, total_steps=100, warmup_steps=20) == pytest.approx(1 / 20)
    assert lr_factor(0, total_steps=100, warmup_steps=10) == pytest.approx(1 / 10)


def test_unknown_schedule_is_an_error() -> None:
    optimizer = torch.optim.SGD(nn.Linear(1, 1).parameters(), lr=1.0)
    with pytest.raises(ValueError, match="unknown schedule kind 'linear'"):
        build_scheduler(optimizer, total_steps=10, kind="linear")


def test_batch_order_is_sharded_and_covers_each_epoch() -> None:
    single = [step_batch_keys(s, 12, 4, seed=3) for s in range(3)]
    shards = [[step_batch_keys(s, 12, 2, seed=3, rank=r, world_size=2) for r in (0, 1)]
              for s in range(3)]  # fmt: skip
    for step in range(3):
        assert sorted(shards[step][0] + shards[step][1]) == sorted(single[step])
    assert sorted(i for batch in single for _, i in batch) == list(range(12))
    assert step_batch_keys(3, 12, 4, seed=3)[0][0] == 1  # step 3 starts epoch 1
    assert step_batch_keys(1, 12, 4, seed=3) == single[1]  # pure function of (seed, step)
    with pytest.raises(ValueError, match="cannot fill one global batch"):
        step_batch_keys(0, 3, 2, seed=0, world_size=2)


@pytest.mark.parametrize(("start", "rank", "world_size"), [(0, 0, 1), (5, 1, 2), (2, 0, 2)])
def test_step_batches_are_the_step_keys_with_one_permutation_per_epoch(
    start: int, rank: int, world_size: int
) -> None:
    # 13 images, batches of 2 per rank: epochs of 6 or 3 steps, the last image left over.
    sampler = StepBatches(13, 2, seed=5, start_step=start, total_steps=20, rank=rank,
                          world_size=world_size)  # fmt: skip
    expected = [step_batch_keys(s, 13, 2, 5, rank, world_size) for s in range(start, 20)]
    assert list(sampler) == expected and len(sampler) == 20 - start


def test_config_resolves_model_files_and_overrides() -> None:
    config = load_train_config(TINY, ["model.model.hidden_dim=32"])
    assert config.model.input_size == (64, 64) and config.model.model.hidden_dim == 32
    full = load_train_config(CONFIGS / "hptr_train.yaml")
    assert full.model.input_size == (384, 512) and full.model.model.backbone == "mobilenet_v2"


@pytest.mark.parametrize(
    ("overrides", "message"),
    [
        (["bogus=1"], "unknown key 'bogus'"),
        (["epochs=2"], "exactly one of steps or epochs"),
        (["data.kind=folder"], "data.root is required"),
        (["model=missing_model.yaml"], "model config 'missing_model.yaml' not found"),
        (["batch_size=0"], "batch_size"),
        (["schedule.kind=linear"], "schedule.kind"),
        (["max_minutes=0"], "max_minutes"),
    ],
)
def test_bad_config_names_the_problem(overrides: list[str], message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        load_train_config(TINY, overrides)


def test_a_few_steps_lower_the_loss_and_write_log_and_checkpoint(tmp_path: Path) -> None:
    config = _config(tmp_path, "steps=8", "schedule.kind=constant", "schedule.warmup_steps=0",
                     "eval.at_end=true", "eval.limit=1")  # fmt: skip
    result = train_parser(config)
    losses = [r["loss"] for r in read_log(tmp_path / "log.jsonl", "train")]
    assert len(losses) == 8
    assert (losses[-1] + losses[-2]) / 2 < 0.85 * losses[0]
    evals = read_log(tmp_path / "log.jsonl", "eval")
    assert [r["step"] for r in evals] == [8] and "miou" in evals[0]["metrics"]
    meta = read_checkpoint(tmp_path / "last.pt")
    assert meta["config"]["model"]["name"] == "hptr" and meta["config"]["steps"] == 8
    assert meta["metrics"]["miou"] == pytest.approx(result.metrics["miou"])
    assert meta["training_state"]["step"] == 8 and (tmp_path / "config.yaml").is_file()
    assert json.loads((tmp_path / "result.json").read_text())["step"] == 8


def test_resume_continues_exactly_like_an_uninterrupted_run(tmp_path: Path) -> None:
    full, resumed = tmp_path / "full", tmp_path / "resumed"
    train_parser(_config(full, "steps=4", "checkpoint_every=2", "keep_checkpoints=3"))
    resumed.mkdir()
    # An interrupted run: its folder holds the step-2 checkpoint as last.pt and a longer log.
    shutil.copy(full / "checkpoint_0000002.pt", resumed / "last.pt")
    shutil.copy(full / "log.jsonl", resumed / "log.jsonl")
    result = train_parser(_config(resumed, "steps=4", "checkpoint_every=2"), resume="auto")
    assert result.step == 4
    expected = read_log(full / "log.jsonl", "train")
    got = read_log(resumed / "log.jsonl", "train")
    assert [r["step"] for r in got] == [1, 2, 3, 4]
    for want, have in zip(expected, got, strict=True):
        assert have["loss"] == pytest.approx(want["loss"], rel=1e-6, abs=1e-7)
        assert have["lr"] == pytest.approx(want["lr"], rel=1e-9)
    state_full = read_checkpoint(full / "last.pt")
    state_resumed = read_checkpoint(resumed / "last.pt")
    for name, tensor in state_full["state_dict"].items():
        torch.testing.assert_close(state_resumed["state_dict"][name], tensor, rtol=1e-5, atol=1e-6)
    steps = state_resumed["training_state"]["scheduler"]["last_epoch"]
    assert steps == state_full["training_state"]["scheduler"]["last_epoch"] == 4


def test_resume_errors_are_clear(tmp_path: Path) -> None:
    train_parser(_config(tmp_path / "run", "steps=1"))
    with pytest.raises(ConfigError, match=r"differs from the config in \['hidden_dim'\]"):
        train_parser(_config(tmp_path / "other", "steps=2", "model.model.hidden_dim=32"),
                   resume=tmp_path / "run" / "last.pt")  # fmt: skip
    model = build_model_from_config(_config(tmp_path, "steps=1").model)
    weights_only = save_checkpoint(tmp_path / "weights.pt", model)
    with pytest.raises(ConfigError, match="no training state"):
        train_parser(_config(tmp_path / "w", "steps=2"), resume=weights_only)
    fresh = train_parser(_config(tmp_path / "new", "steps=1"), resume="auto")  # nothing to resume
    assert fresh.step == 1


def test_init_weights_starts_a_fresh_run_from_trained_weights(tmp_path: Path) -> None:
    trained = train_parser(_config(tmp_path / "run", "steps=3"))
    weights = read_checkpoint(trained.checkpoint)["state_dict"]
    release = save_checkpoint(tmp_path / "release.pt",
                              build_model_from_config(_config(tmp_path, "steps=1").model))
    release_weights = read_checkpoint(release)["state_dict"]
    # Zero steps are impossible: see the starting point through one step at a negligible lr.
    start = train_parser(_config(tmp_path / "tune", "steps=1", "optimizer.lr=1e-12",
                                 f"init_weights={trained.checkpoint}", "schedule.warmup_steps=0"))
    tuned = read_checkpoint(start.checkpoint)
    assert tuned["training_state"]["step"] == 1  # a new run, not a resumed one
    assert all(torch.allclose(tuned["state_dict"][k].float(), weights[k].float(), atol=1e-8)
               for k in weights if "running" not in k and "num_batches" not in k)  # fmt: skip
    assert any(not torch.allclose(release_weights[k].float(), weights[k].float(), atol=1e-4)
               for k in weights)  # a fresh model differs: the comparison can fail
    with pytest.raises(ConfigError, match=r"cannot start from it.*\['hidden_dim'\]"):
        train_parser(_config(tmp_path / "other", "steps=1", "model.model.hidden_dim=32",
                             f"init_weights={trained.checkpoint}"))  # fmt: skip
    with pytest.raises(ConfigError, match="init_weights: 'nowhere.pt': no such checkpoint"):
        train_parser(_config(tmp_path / "none", "steps=1", "init_weights=nowhere.pt"))
    with pytest.raises(ConfigError, match="holds a 'hptr' model, not personlab"):
        train_parser(load_train_config(PERSONLAB_TINY, [
            *FAST, f"output_dir={tmp_path / 'pl'}", "steps=1",
            f"init_weights={trained.checkpoint}"]))  # fmt: skip


def test_model_section_picks_the_model_by_name() -> None:
    from describeme.models.hptr.config import HPTRConfig
    from describeme.models.personlab.config import PersonLabConfig

    assert isinstance(load_train_config(TINY).model, HPTRConfig)
    personlab = load_train_config(PERSONLAB_TINY)
    assert isinstance(personlab.model, PersonLabConfig) and personlab.model.input_size == (64, 64)
    cpu = load_train_config(CONFIGS / "personlab_train_cpu.yaml")
    assert cpu.model.input_size == (192, 256) and cpu.model.model.disk_radius == 10.0
    with pytest.raises(ConfigError, match="model"):
        load_train_config(TINY, ["model.name=segformer"])


def test_personlab_trains_through_the_same_loop(tmp_path: Path) -> None:
    config = load_train_config(
        PERSONLAB_TINY,
        [*FAST, f"output_dir={tmp_path / 'run'}", "steps=8", "schedule.kind=constant",
         "schedule.warmup_steps=0", "eval.at_end=true", "eval.limit=1"],
    )  # fmt: skip
    result = train_parser(config)
    losses = [r["loss"] for r in read_log(tmp_path / "run" / "log.jsonl", "train")]
    assert len(losses) == 8 and (losses[-1] + losses[-2]) / 2 < losses[0]
    assert "miou" in result.metrics  # evaluated through PersonLab's own decoder
    meta = read_checkpoint(tmp_path / "run" / "last.pt")
    assert meta["model_name"] == "personlab" and meta["training_state"]["step"] == 8
    hptr = _config(tmp_path / "hptr", "steps=1")
    with pytest.raises(ConfigError, match="holds a 'personlab' model, not hptr"):
        train_parser(hptr, resume=tmp_path / "run" / "last.pt")


def test_json_log_truncates_after_the_resumed_step(tmp_path: Path) -> None:
    path = tmp_path / "log.jsonl"
    first = JsonLog(path)
    for step in (1, 2, 3):
        first.write({"kind": "train", "step": step, "loss": float(step)})
    JsonLog(path, resume_step=2).write({"kind": "train", "step": 3, "loss": 9.0})
    assert [(r["step"], r["loss"]) for r in read_log(path)] == [(1, 1.0), (2, 2.0), (3, 9.0)]


class _Line(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.backbone = nn.Linear(1, 1)


def _line_trainer(total: int, calls: list, step_s: float = 0.0, schedule: str = "constant",
                  **kwargs: object) -> Trainer:  # fmt: skip
    torch.manual_seed(0)
    model = _Line()
    optimizer = build_optimizer(model, lr=0.1, backbone_lr_factor=1.0)

    def loss_fn(m: nn.Module, batch: torch.Tensor) -> dict:
        time.sleep(step_s)
        return {"loss": ((m.backbone(batch) - 2 * batch) ** 2).mean()}

    return Trainer(
        model=model, compute_loss=loss_fn, optimizer=optimizer,
        scheduler=build_scheduler(optimizer, total_steps=total, kind=schedule, min_factor=0.05),
        device=torch.device("cpu"), total_steps=total,
        evaluate=lambda m: calls.append(("eval", m.training)) or {"score": 1.0},
        save=lambda step, metrics, state: calls.append(("save", step, dict(metrics))) or Path(),
        **kwargs,
    )  # fmt: skip


def test_generic_trainer_schedules_eval_and_saves() -> None:
    calls: list = []
    trainer = _line_trainer(5, calls, eval_every=2, checkpoint_every=2)
    batches = [torch.linspace(-1, 1, 8)[:, None]] * 5
    before = trainer.compute_loss(trainer.model, batches[0])["loss"].item()
    outcome = trainer.run(batches)
    assert outcome["step"] == 5 and outcome["losses"]["loss"] < before
    assert calls == [("eval", False), ("save", 2, {"score": 1.0}), ("eval", False),
                     ("save", 4, {"score": 1.0}), ("eval", False),
                     ("save", 5, {"score": 1.0})]  # fmt: skip


def test_time_budget_shortens_the_schedule_to_the_steps_that_fit() -> None:
    # 10 ms steps, a 0.6 s budget and 10,000 planned steps: ~55 fit. The run must end within
    # its budget with the cosine annealed to its floor at its last step, not cut off mid-way.
    calls: list = []
    trainer = _line_trainer(10_000, calls, step_s=0.01, schedule="cosine", time_budget_s=0.6)
    outcome = trainer.run([torch.linspace(-1, 1, 8)[:, None]] * 10_000)
    step = outcome["step"]
    assert BUDGET_CALIBRATION_STEPS < step < 200
    assert outcome["total_steps"] == step == trainer.total_steps
    assert trainer.planned_steps == 10_000
    assert trainer.scheduler.lr_lambdas[0].total_steps == step  # the schedule moved with it
    assert trainer.optimizer.param_groups[0]["lr"] == pytest.approx(0.1 * 0.05, rel=0.2)
    assert outcome["seconds"] < 0.6 + 0.4
    assert calls[-1][:2] == ("save", step)  # evaluated and saved as at a normal end


def test_every_rank_fits_the_budget_with_rank_0s_evaluation_time(monkeypatch) -> None:
    """Only rank 0 evaluates, so only it measures the end-of-run evaluation the budget keeps
    time for; every rank must fit the same schedule (the per-step loss all-reduce would hang
    a rank with more steps), so the reserve is reduced over ranks with the clock. Rank 1 is
    run alone here, its all-reduce standing in for rank 0's measured 0.3 s evaluation."""

    def fitted_steps(rank0_eval_s: float) -> int:
        def all_reduce(tensor: torch.Tensor, op: object = None) -> None:
            if tensor.dtype == torch.float64 and tensor.numel() == 2:  # (elapsed, eval s)
                tensor[1] = max(float(tensor[1]), rank0_eval_s)
            elif tensor.dtype != torch.float64:
                tensor.mul_(2)  # the loss terms: a sum over two equal ranks

        monkeypatch.setattr(torch.distributed, "all_reduce", all_reduce)
        trainer = _line_trainer(10_000, [], step_s=0.01, time_budget_s=0.6, rank=1,
                                world_size=2, eval_at_end=True)  # fmt: skip
        return trainer.run([torch.linspace(-1, 1, 8)[:, None]] * 10_000)["total_steps"]

    without, with_eval = fitted_steps(0.0), fitted_steps(0.3)
    assert with_eval < 0.8 * without  # half the budget reserved: far fewer steps fit


def test_time_budget_stops_the_run_when_spent() -> None:
    # Steps that slow down after the estimate: whatever the estimate, no step starts after
    # the budget is spent.
    trainer = _line_trainer(10_000, [], step_s=0.0, time_budget_s=0.3)
    slow = trainer.compute_loss

    def slower(m: nn.Module, batch: torch.Tensor) -> dict:
        time.sleep(0.0 if trainer.step < BUDGET_CALIBRATION_STEPS else 0.05)
        return slow(m, batch)

    trainer.compute_loss = slower
    outcome = trainer.run([torch.linspace(-1, 1, 8)[:, None]] * 10_000)
    assert outcome["step"] < 40 and outcome["total_steps"] == outcome["step"]
    assert outcome["seconds"] < 0.3 + 0.3


def test_resume_keeps_this_runs_length_not_the_saved_schedules() -> None:
    # A run continued with more steps (train on from a finished run) must follow its own
    # schedule, although LambdaLR restores the saved schedule object's total.
    short = _line_trainer(4, [], schedule="cosine")
    short.run([torch.ones(2, 1)] * 4)
    longer = _line_trainer(10, [], schedule="cosine")
    longer.load_state_dict(short.state_dict())
    assert longer.scheduler.lr_lambdas[0].total_steps == 10


def test_trainer_rejects_short_data_and_nan_loss() -> None:
    with pytest.raises(RuntimeError, match="data ran out at step 2 of 5"):
        _line_trainer(5, []).run([torch.ones(2, 1)] * 2)
    with pytest.raises(FloatingPointError, match="loss is nan at step 1"):
        _line_trainer(5, []).run([torch.full((2, 1), float("nan"))] * 5)


@pytest.mark.gpu
def test_amp_training_on_cuda_saves_scaler_state(tmp_path: Path) -> None:
    result = train_parser(_config(tmp_path, "steps=3", "device=cuda", "amp=true"))
    assert result.step == 3 and torch.isfinite(torch.tensor(result.losses["loss"]))
    meta = read_checkpoint(tmp_path / "last.pt")  # weights saved on CPU, scaler state kept
    assert meta["training_state"]["scaler"] and meta["training_state"]["step"] == 3
