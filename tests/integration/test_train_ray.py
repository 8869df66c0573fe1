"""``describeme train`` through Ray: 2 Ray Train workers (gloo DDP) on CPU, and one Ray task.

Tiny HPTR at 64x64 for 2 steps; checks that both ranks trained together (the logged world
size, one record per global step) and that rank 0 wrote a loadable checkpoint carrying the
config, the training state and the final evaluation metrics. About 30-60 s, mostly Ray
start-up, on the 2-core machine.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from describeme.models.checkpoint import load_checkpoint
from describeme.models.train import load_train_config
from describeme.models.training import read_log

pytestmark = pytest.mark.integration
CONFIG = Path(__file__).resolve().parents[2] / "configs" / "models" / "hptr_train_tiny.yaml"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def _config(out: Path, steps: int) -> object:
    return load_train_config(
        CONFIG,
        [f"steps={steps}", "batch_size=1", f"output_dir={out}", "checkpoint_every=0",
         "eval.limit=1", "log_every=1", "device=cpu"],
    )  # fmt: skip


def test_two_gloo_workers_train_and_rank0_saves(local_ray: None, tmp_path: Path) -> None:
    from describeme.pipeline.train_job import run_training

    result = run_training(_config(tmp_path, 2), workers=2)
    assert result["step"] == 2 and result["world_size"] == 2
    records = read_log(tmp_path / "log.jsonl", "train")
    assert [r["step"] for r in records] == [1, 2]
    assert all(r["world_size"] == 2 for r in records)
    model, meta = load_checkpoint(tmp_path / "last.pt", expected_model="hptr")
    assert meta["training_state"]["step"] == 2
    assert meta["config"]["batch_size"] == 1 and "miou" in meta["metrics"]


def test_one_worker_runs_as_a_ray_task(local_ray: None, tmp_path: Path) -> None:
    from describeme.pipeline.train_job import run_training

    result = run_training(_config(tmp_path, 2), workers=1, in_process=False)
    assert result["step"] == 2 and result["world_size"] == 1
    assert Path(result["checkpoint"]).is_file()
