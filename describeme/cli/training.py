"""``describeme train`` and ``describeme export``.

Examples::

    describeme train configs/models/hptr_train_tiny.yaml --out runs/tiny -o steps=50
    describeme train configs/models/hptr_train.yaml --workers 4 --gpus-per-worker 1
    describeme train configs/models/hptr_train.yaml --resume auto      # after an interruption
    describeme train configs/models/personlab_train_cpu.yaml --out runs/personlab_cpu
    describeme export --model runs/tiny/last.pt --format onnx --out exported
    describeme export --model runs/tiny/last.pt --format checkpoint --out release  # weights only
"""

from __future__ import annotations

import json
import logging
import re
from pathlib import Path
from typing import Any

import typer

from describeme.cli.common import DUMP_CONFIG_OPTION, OVERRIDE_OPTION, progress
from describeme.errors import ConfigError

log = logging.getLogger(__name__)
EXPORT_FORMATS = ("onnx", "tensorrt", "checkpoint")
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_hw(text: str) -> tuple[int, int]:
    """``HxW`` (e.g. ``384x512``) -> (height, width), multiples of 32."""
    match = _SIZE.match(text)
    if not match:
        raise ConfigError(f"--size {text!r} must look like HEIGHTxWIDTH, e.g. 384x512")
    height, width = int(match.group(1)), int(match.group(2))
    if min(height, width) <= 0 or height % 32 or width % 32:
        raise ConfigError(f"--size {text!r}: height and width must be positive multiples of 32")
    return height, width


def run_train(
    config_path: Path,
    overrides: list[str],
    *,
    workers: int = 1,
    gpus_per_worker: float = 0.0,
    resume: str | None = None,
    ray_address: str | None = None,
    out: Path | None = None,
    show_progress: bool = True,
) -> dict[str, Any]:
    """The train command without the CLI: returns the final result dict."""
    from describeme.models.train import load_train_config
    from describeme.pipeline.train_job import run_training

    config = load_train_config(config_path, _with_out(overrides, out))
    return run_training(
        config, workers=workers, gpus_per_worker=gpus_per_worker, resume=resume,
        ray_address=ray_address, progress=progress if show_progress else None,
    )  # fmt: skip


def _with_out(overrides: list[str], out: Path | None) -> list[str]:
    return [*overrides, f"output_dir={out}"] if out is not None else list(overrides)


def run_export(
    model: str,
    export_format: str,
    out: Path,
    *,
    size: tuple[int, int] | None = None,
    dynamic_size: bool = False,
    max_batch: int = 8,
    fp16: bool = True,
) -> Path:
    """Exports a checkpoint to ONNX (and builds a TensorRT engine); returns the written file."""
    if export_format not in EXPORT_FORMATS:
        raise ConfigError(f"--format {export_format!r}: choose one of {', '.join(EXPORT_FORMATS)}")
    if max_batch < 1:
        raise ConfigError(f"--max-batch must be >= 1, got {max_batch}")
    if export_format == "tensorrt" and dynamic_size:
        raise ConfigError("--dynamic-size is for ONNX only: a TensorRT engine has a fixed size")
    if export_format == "tensorrt":
        from describeme.models.runtime.tensorrt_backend import import_tensorrt

        import_tensorrt()  # fails in one line before any work when TensorRT is missing
    name = Path(model).stem if Path(model).is_file() else model
    if export_format == "checkpoint":
        from describeme.models.checkpoint import release_checkpoint
        from describeme.models.registry import resolve_model_path

        return release_checkpoint(resolve_model_path(model), out / f"{name}.pt")
    from describeme.models.export import export_onnx
    from describeme.models.registry import load_model, trained_input_size

    network, meta = load_model(model)
    if size is None:
        size = trained_input_size(meta)
    onnx_path = out / f"{name}.onnx"
    config = json.dumps(meta.get("config") or {}, sort_keys=True)
    export_onnx(network, onnx_path, size, dynamic_size=dynamic_size, metadata={"config": config})
    if export_format == "onnx":
        return onnx_path
    from describeme.models.runtime import build_backend

    precision = "fp16" if fp16 else "fp32"
    engine = build_backend("tensorrt", onnx_path, "cuda", precision,
                           max_batch_size=max_batch, cache_dir=out)  # fmt: skip
    return Path(getattr(engine, "engine_path", out))


def register(app: typer.Typer) -> None:
    """Adds ``train`` and ``export`` to the root command."""

    @app.command("train")
    def train(
        config: Path = typer.Argument(
            ..., help="Train config YAML (configs/models/{hptr,personlab}_train*.yaml)."
        ),
        override: list[str] = OVERRIDE_OPTION,
        workers: int = typer.Option(
            1, "--workers", help="Ray Train DDP workers; 1 = a single process."
        ),
        gpus_per_worker: float = typer.Option(
            0.0, "--gpus-per-worker", help="GPUs per worker (0 = CPU training)."
        ),
        resume: str | None = typer.Option(
            None, "--resume", help="Checkpoint to resume, or 'auto' (OUT/last.pt if present)."
        ),
        ray_address: str | None = typer.Option(
            None, "--ray-address", help="Ray cluster address (default: local Ray when needed)."
        ),
        out: Path | None = typer.Option(
            None, "--out", help="Run folder (overrides output_dir): checkpoints, log.jsonl."
        ),
        dump_config: bool = DUMP_CONFIG_OPTION,
    ) -> None:
        """Train a parser (HPTR or PersonLab, by the config's model). With --workers 1, no GPU
        and no --ray-address it runs in this process; otherwise as a Ray job (one Ray task, or
        Ray Train DDP for N workers)."""
        if dump_config:
            from describeme.config import dump_config as dump
            from describeme.models.train import load_train_config

            typer.echo(dump(load_train_config(config, _with_out(override, out))), nl=False)
            return
        result = run_train(config, override, workers=workers, gpus_per_worker=gpus_per_worker,
                           resume=resume, ray_address=ray_address, out=out)  # fmt: skip
        typer.echo(json.dumps(_summary(result), indent=2))

    @app.command("export")
    def export(
        model: str = typer.Option(..., "--model", help="Checkpoint path or bundled name."),
        format: str = typer.Option(
            "onnx",
            "--format",
            help="onnx, tensorrt, or checkpoint (weights only, no optimizer state: to ship).",
        ),  # fmt: skip
        out: Path = typer.Option(Path("exported"), "--out", help="Output folder."),
        size: str | None = typer.Option(
            None, "--size", help="Input HxW, e.g. 384x512 (default: the model's input_size)."
        ),
        dynamic_size: bool = typer.Option(
            False, "--dynamic-size", help="ONNX with dynamic height/width."
        ),
        max_batch: int = typer.Option(8, "--max-batch", help="Largest TensorRT batch."),
        fp16: bool = typer.Option(True, "--fp16/--fp32", help="TensorRT precision."),
    ) -> None:
        """Export a model to ONNX, build a TensorRT engine (needs TensorRT and a GPU), or write
        a weights-only checkpoint (OUT/NAME.pt) to ship."""
        written = run_export(model, format, out, size=None if size is None else parse_hw(size),
                             dynamic_size=dynamic_size, max_batch=max_batch, fp16=fp16)  # fmt: skip
        typer.echo(str(written))


def _summary(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("miou", "apr_vol", "app_vol", "color_miou", "size_miou", "pattern_miou")
    return {
        "step": result["step"],
        "checkpoint": result["checkpoint"],
        "log": result["log_path"],
        "loss": result["losses"].get("loss"),
        "metrics": {k: result["metrics"][k] for k in keys if k in result["metrics"]},
        "seconds": round(result["seconds"], 2),
        "workers": result["world_size"],
    }
