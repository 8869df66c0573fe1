"""``describeme train`` as a Ray job: Ray Train (DDP) for several workers, one Ray task else.

The training itself is :func:`describeme.models.train.train_parser` (plain torch); this
module only places it:

- ``workers == 1``, no ``gpus_per_worker`` and no Ray address: in this process (no Ray
  start-up cost, and no Ray needed at all: a bare GPU machine trains this way, on the
  config's ``device``, ``auto`` = CUDA when present);
- ``workers == 1`` otherwise: one Ray task asking for ``gpus_per_worker`` GPUs;
- ``workers > 1``: a Ray Train ``TorchTrainer``; Ray sets up the process group (NCCL on
  GPUs, gloo on CPUs) and each worker trains on its shard of every global batch.

Rank 0 writes the run folder (``output_dir``); on a multi-node cluster it must be on storage
every node can reach for ``--resume auto`` to find ``last.pt``.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from pathlib import Path
from typing import Any

from describeme.errors import DescribemeError, ServiceError

log = logging.getLogger(__name__)
CPUS_PER_WORKER = 1.0
RESULT_JSON = "train_result.json"


def run_training(
    config: Any,
    *,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    resume: str | None = None,
    ray_address: str | None = None,
    in_process: bool | None = None,
    progress: Any = None,
) -> dict[str, Any]:
    """Runs a training job; returns the final :class:`TrainResult` as a dict.

    Args:
        config: a ``TrainConfig``.
        workers: DDP workers (Ray Train) when > 1.
        gpus_per_worker: GPUs each worker asks Ray for (0 = CPU training).
        resume: checkpoint path, ``"auto"`` or None.
        ray_address: Ray cluster address (None = local Ray when Ray is needed).
        in_process: force (True) or forbid (False) training in this process; default: in
            process exactly when one CPU worker runs without a Ray address.
        progress: progress-bar wrapper for in-process runs.
    """
    if workers < 1:
        raise ValueError(f"--workers must be >= 1, got {workers}")
    if gpus_per_worker < 0:
        raise ValueError(f"--gpus-per-worker must be >= 0, got {gpus_per_worker}")
    local = workers == 1 and gpus_per_worker == 0 and ray_address is None
    if in_process is None:
        in_process = local
    if in_process:
        if workers != 1:
            raise ValueError("in-process training runs one worker; use Ray for --workers > 1")
        return _train(config.model_dump(mode="json"), resume, None, progress)
    _init_ray(ray_address)
    payload = config.model_dump(mode="json")
    if workers == 1:
        return _run_task(payload, resume, gpus_per_worker)
    return _run_ray_train(payload, resume, workers, gpus_per_worker, config.output_dir)


def _train(
    payload: dict[str, Any], resume: str | None, device: str | None, progress: Any = None
) -> dict[str, Any]:
    """Rebuilds the config from plain data and trains (runs in a task or a Train worker)."""
    from describeme.config import build_config
    from describeme.models.train import TrainConfig, train_parser

    config = build_config(TrainConfig, payload, "<train job config>")
    return train_parser(config, resume=resume, device=device, progress=progress).to_dict()


def _import_ray() -> Any:
    """Ray, imported only by the runs that need it (in-process training does not)."""
    try:
        import ray
    except ImportError:
        raise ServiceError(
            "Ray is not installed: install describeme with its dependencies for --workers > 1,"
            " --gpus-per-worker or --ray-address, or train in this process (--workers 1, no "
            "--gpus-per-worker; the config's device 'auto' uses a GPU when there is one)"
        ) from None
    return ray


def _init_ray(address: str | None) -> None:
    ray = _import_ray()
    if ray.is_initialized():
        return
    # Local runs need no cluster auth token on disk (Ray 2.60 writes one under ~/.ray otherwise).
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    kwargs: dict[str, Any] = {"include_dashboard": False, "logging_level": logging.WARNING}
    if address:
        kwargs["address"] = address
    try:
        ray.init(**kwargs)
    except (ConnectionError, RuntimeError, ValueError) as exc:
        raise ServiceError(f"cannot start or reach {address or 'a local Ray'}: {exc}") from None


def _run_task(payload: dict[str, Any], resume: str | None, gpus: float) -> dict[str, Any]:
    """One Ray task; its device is the GPU Ray assigned (or the CPU)."""
    ray = _import_ray()
    task = ray.remote(num_cpus=CPUS_PER_WORKER, num_gpus=gpus)(_task_entry)
    try:
        return ray.get(task.remote(payload, resume, gpus > 0))
    except ray.exceptions.RayTaskError as exc:
        cause = getattr(exc, "cause", None)
        if isinstance(cause, Exception) and not isinstance(cause, ray.exceptions.RayError):
            raise cause from None
        raise DescribemeError(f"the training task failed: {_last_line(exc)}") from None


def _task_entry(payload: dict[str, Any], resume: str | None, use_gpu: bool) -> dict[str, Any]:
    return _train(payload, resume, "cuda" if use_gpu else "cpu")


def _worker_entry(loop_config: dict[str, Any]) -> None:
    """Ray Train per-worker loop: train on Ray's device, then report the result once."""
    import ray.train
    import ray.train.torch

    device = str(ray.train.torch.get_device())
    result = _train(loop_config["config"], loop_config["resume"], device)
    # Every worker reports once (Ray Train synchronises reports); rank 0 attaches the result
    # as a small Ray checkpoint, which Ray copies to its storage for the driver to read.
    if ray.train.get_context().get_world_rank() != 0:
        ray.train.report({"step": result["step"]})
        return
    with tempfile.TemporaryDirectory(prefix="describeme-result-") as folder:
        (Path(folder) / RESULT_JSON).write_text(json.dumps(result), encoding="utf-8")
        checkpoint = ray.train.Checkpoint.from_directory(folder)
        ray.train.report({"step": result["step"]}, checkpoint=checkpoint)


def _run_ray_train(
    payload: dict[str, Any], resume: str | None, workers: int, gpus: float, output_dir: str
) -> dict[str, Any]:
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer

    resources = {"CPU": CPUS_PER_WORKER, **({"GPU": gpus} if gpus > 0 else {})}
    trainer = TorchTrainer(
        _worker_entry,
        train_loop_config={"config": payload, "resume": resume},
        scaling_config=ScalingConfig(
            num_workers=workers, use_gpu=gpus > 0, resources_per_worker=resources
        ),
        run_config=RunConfig(
            name="describeme-train", storage_path=str(Path(output_dir).resolve() / "ray_train")
        ),
    )
    try:
        result = trainer.fit()
    except Exception as exc:  # Ray Train wraps worker errors in its own types
        raise DescribemeError(f"Ray Train failed: {_last_line(exc)}") from None
    if result.error is not None:
        raise DescribemeError(f"Ray Train failed: {_last_line(result.error)}")
    if result.checkpoint is None:
        raise DescribemeError("Ray Train finished without a result from rank 0")
    with result.checkpoint.as_directory() as folder:
        return json.loads((Path(folder) / RESULT_JSON).read_text(encoding="utf-8"))


def _last_line(exc: BaseException) -> str:
    lines = [line.strip() for line in str(exc).splitlines() if line.strip()]
    return lines[-1] if lines else type(exc).__name__
