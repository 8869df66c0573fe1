"""CPU seconds per HPTR training step at 384x512 with the mobile config, and what that means
for a 20k-image synthetic training run.

Times, separately: producing one augmented training image (synthetic render + augmentation,
what DataLoader workers do) and one optimizer step (forward, Hungarian matching, losses,
backward, AdamW) on pre-built batches, with the settings of ``configs/models/hptr_train.yaml``
(``model.input_size`` 384x512, MobileNetV2 HPTR). Writes
``benchmarks/results/train_step_speed.json``.

Run: ``python benchmarks/train_step_speed.py [--threads 2] [--batch 2 8] [--steps 2]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import time
from pathlib import Path

import numpy as np
import torch

from describeme.models.common.training import Trainer
from describeme.models.datasets import collate_parsing
from describeme.models.hptr.config import build_criterion_from_config, build_model_from_config
from describeme.models.hptr.criterion import HPTRLoss
from describeme.models.train import build_train_dataset, load_train_config
from describeme.models.training import build_optimizer, build_scheduler

ROOT = Path(__file__).resolve().parents[1]
CONFIG = ROOT / "configs" / "models" / "hptr_train.yaml"
RESULTS = ROOT / "benchmarks" / "results" / "train_step_speed.json"
IMAGES = 20_000


def measure(config_overrides: list[str], batch: int, steps: int) -> dict[str, float]:
    """Data seconds per image and median seconds per optimizer step at one batch size."""
    config = load_train_config(CONFIG, [f"batch_size={batch}", "device=cpu", *config_overrides])
    dataset = build_train_dataset(config)
    start = time.perf_counter()
    items = [dataset[i] for i in range(batch * (steps + 1))]
    data_s = (time.perf_counter() - start) / len(items)
    batches = [collate_parsing(items[i : i + batch]) for i in range(0, len(items), batch)]
    torch.manual_seed(0)
    model = build_model_from_config(config.model)
    optimizer = build_optimizer(model, **config.optimizer.model_dump())
    trainer = Trainer(
        model=model, compute_loss=HPTRLoss(build_criterion_from_config(config.model),
                                           torch.device("cpu")),
        optimizer=optimizer,
        scheduler=build_scheduler(optimizer, total_steps=100, **config.schedule.model_dump()),
        device=torch.device("cpu"), total_steps=100, clip_grad_norm=config.clip_grad_norm,
    )  # fmt: skip
    trainer.train_step(batches[0])  # warm-up (allocator, first matcher call)
    times = []
    for one in batches[1:]:
        tick = time.perf_counter()
        trainer.train_step(one)
        times.append(time.perf_counter() - tick)
    step_s = float(np.median(times))
    return {
        "seconds_per_step": step_s,
        "seconds_per_step_all": times,
        "seconds_per_image_train": step_s / batch,
        "seconds_per_image_data": data_s,
        "params": float(sum(p.numel() for p in model.parameters())),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch", type=int, nargs="+", default=[2, 8])
    parser.add_argument("--steps", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    torch.set_num_threads(args.threads)
    config = load_train_config(CONFIG)
    results = {str(b): measure([], b, args.steps) for b in args.batch}
    best = min(r["seconds_per_image_train"] for r in results.values())
    data_s = float(np.median([r["seconds_per_image_data"] for r in results.values()]))
    # Data workers share the same cores on this machine, so their time adds up.
    epoch_h = IMAGES * (best + data_s) / 3600
    report = {
        "machine": f"2-core CPU shared with other jobs, Python {platform.python_version()}, "
        f"torch {torch.__version__}",
        "threads": args.threads,
        "config": str(CONFIG.relative_to(ROOT)),
        "input_size": list(config.model.input_size),
        "by_batch": results,
        "cpu_hours_per_20k_image_epoch": epoch_h,
        "cpu_days_for_configured_run": epoch_h * (config.epochs or 1) / 24,
        "configured_epochs": config.epochs,
        "note": "median of --steps timed steps after one warm-up; other jobs shared the CPU, "
        "so figures are upper bounds",
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(report, indent=2))  # noqa: T201 - the benchmark's output


if __name__ == "__main__":
    os.environ.setdefault("OMP_NUM_THREADS", "2")
    main()
