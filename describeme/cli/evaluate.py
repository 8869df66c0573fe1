"""``describeme eval``: score a model or saved predictions on a dataset, print a table, write JSON.

``--predictions DIR`` scores a folder in the dataset layout (format:
``describeme.models.metrics.predictions``). ``--model`` goes through one hook the model work
provides, :func:`describeme.models.registry.load_predictor` ``(model: str) ->
predict(sample, image_id) -> describeme.models.metrics.Prediction``; until it exists the
command says so in one line instead of pretending.
"""

from __future__ import annotations

import hashlib
import importlib
import json
import logging
import math
from pathlib import Path
from typing import Any

import typer
from rich.console import Console
from rich.table import Table

from describeme.cli.common import progress
from describeme.errors import DescribemeError

log = logging.getLogger(__name__)
MODEL_HOOK = "describeme.models.registry"
MODEL_HOOK_FUNCTION = "load_predictor"
# Headline rows of the printed table: (report key, label).
SUMMARY_ROWS: tuple[tuple[str, str], ...] = (
    ("miou", "mIoU (parts)"), ("apr_vol", "AP^r_vol"), ("apr_50", "AP^r_50"),
    ("app_vol", "AP^p_vol"), ("app_50", "AP^p_50"), ("pcp_50", "PCP_50"),
    ("color_miou", "color mIoU"), ("size_miou", "size mIoU"), ("pattern_miou", "pattern mIoU"),
    ("color_apcr_vol", "color AP^cr_vol"), ("size_apcr_vol", "size AP^cr_vol"),
    ("pattern_apcr_vol", "pattern AP^cr_vol"), ("kp_ap", "keypoint AP"), ("mask_ap", "mask AP"),
)  # fmt: skip


def load_model_predictor(model: str, postprocess: dict[str, Any] | None = None) -> Any:
    """Returns ``predict(sample, image_id) -> Prediction`` for ``--model`` via the model hook.

    ``postprocess``: decoding settings to change from the checkpoint's (``--postprocess``).

    Raises:
        DescribemeError: the hook is not available (no model can be loaded yet).
    """
    try:
        module = importlib.import_module(MODEL_HOOK)
    except ModuleNotFoundError as exc:
        if exc.name != MODEL_HOOK:
            raise
        module = None
    hook = getattr(module, MODEL_HOOK_FUNCTION, None)
    if hook is None:
        raise DescribemeError(
            f"cannot evaluate --model {model}: no model loader in this version "
            f"({MODEL_HOOK}.{MODEL_HOOK_FUNCTION} is not available yet); score saved predictions "
            "with --predictions DIR instead"
        )
    return hook(model, postprocess=postprocess) if postprocess else hook(model)


def model_hash(model: str) -> str:
    """sha256 (16 hex digits) of a checkpoint file, or of the bundled model's name."""
    path = Path(model)
    digest = hashlib.sha256()
    if path.is_file():
        with path.open("rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    else:
        digest.update(model.encode())
    return digest.hexdigest()[:16]


def _fmt(value: Any) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{100.0 * float(value):.2f}"


def print_report(report: dict[str, Any], console: Console | None = None) -> None:
    """Prints the headline metrics (percent) and the per-part AP^r / IoU table."""
    console = console or Console()
    summary = Table(title=f"describeme eval ({report.get('num_images', 0)} images)")
    summary.add_column("metric")
    summary.add_column("%", justify="right")
    for key, label in SUMMARY_ROWS:
        if report.get(key) is not None:
            summary.add_row(label, _fmt(report[key]))
    for key in sorted(k for k in report if k.startswith(("apr_vol_", "app_vol_"))):
        summary.add_row(key, _fmt(report[key]))
    console.print(summary)
    tables = report.get("per_class", {})
    parts = Table(title="per part")
    for column in ("part", "IoU %", "AP^r_vol %", "AP^r_50 %", "gt instances"):
        parts.add_column(column, justify="left" if column == "part" else "right")
    for name, iou in tables.get("part_iou", {}).items():
        ap = tables.get("part_apr", {}).get(name, {})
        parts.add_row(
            name,
            _fmt(iou),
            _fmt(ap.get("ap_vol")),
            _fmt(ap.get("ap_50")),
            str(ap.get("num_gt", "")),
        )
    console.print(parts)


def _json_safe(value: Any) -> Any:
    """nan/inf -> None, recursively (JSON has no nan)."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _json_safe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_json_safe(v) for v in value]
    return value


def run_eval(
    data: Path,
    predictions: Path | None,
    model: str | None,
    split: str | None,
    limit: int | None,
    pgn_compat: bool,
    workers: int = 1,
    postprocess: list[str] | None = None,
) -> dict[str, Any]:
    """The command's work without the CLI: returns the JSON report.

    ``postprocess``: ``KEY=VALUE`` decoding settings for ``--model`` (the model config's
    ``postprocess`` keys, e.g. ``score_threshold=0.05``; values are YAML scalars).
    """
    from describeme.config import parse_overrides
    from describeme.models.metrics import dataset_eval as saved

    if (predictions is None) == (model is None):
        raise DescribemeError("give exactly one of --model CKPT or --predictions DIR")
    settings = parse_overrides(postprocess or [])
    if settings and model is None:
        raise DescribemeError("--postprocess changes how --model decodes; it does not apply "
                              "to saved --predictions")  # fmt: skip
    if any(isinstance(value, dict) for value in settings.values()):
        nested = [key for key, value in settings.items() if isinstance(value, dict)]
        raise DescribemeError(
            f"--postprocess takes the setting's own name (e.g. score_threshold=0.05), not a "
            f"dotted path: {', '.join(nested)}"
        )
    if limit is not None and limit < 1:
        raise DescribemeError(f"--limit must be >= 1, got {limit}")
    if workers < 1:
        raise DescribemeError(f"--workers must be >= 1, got {workers}")
    wrap = lambda ids, total: progress(ids, total, "evaluating")  # noqa: E731
    if predictions is not None:
        report = saved.evaluate_predictions(
            data, predictions, split, limit, pgn_compat, wrap, workers=workers
        )
    else:
        assert model is not None
        predict = load_model_predictor(model, settings or None)
        # Both parsers score people with QANet's quality too (the CCIHP paper ranks its
        # instances by it): AP^r / AP^p under that ranking come as ``*_qam`` keys.
        report = saved.evaluate_dataset(
            data, predict, split, limit, pgn_compat, keypoints=True, wrap=wrap,
            rankings=("score", "qam"),
        )  # fmt: skip
        report["model"] = {"name": model, "hash": model_hash(model)}
    report["config"] = {
        "data": str(data),
        "predictions": None if predictions is None else str(predictions),
        "model": model,
        "split": split,
        "limit": limit,
        "pgn_compat": pgn_compat,
        "workers": workers,
        "postprocess": settings or None,
    }
    return _json_safe(report)


def register(app: typer.Typer) -> None:
    @app.command("eval")
    def eval_command(
        data: Path = typer.Option(
            ..., "--data", help="Dataset root (CIHP/CCIHP/synthetic layout)."
        ),
        predictions: Path | None = typer.Option(
            None, "--predictions", help="Saved predictions in the dataset layout."
        ),
        model: str | None = typer.Option(None, "--model", help="Checkpoint path or bundled name."),
        split: str | None = typer.Option(
            None, "--split", help="Split (<split>_id.txt); default all."
        ),
        limit: int | None = typer.Option(None, "--limit", help="Evaluate the first N images."),
        json_out: Path | None = typer.Option(None, "--json", help="Write the JSON report here."),
        pgn_compat: bool = typer.Option(
            False, "--pgn-compat", help="AP^r with PGN's duplicate quirk (published numbers)."
        ),
        workers: int = typer.Option(
            1, "--workers", help="Processes for --predictions (same report, faster)."
        ),
        postprocess: list[str] = typer.Option(
            [], "--postprocess", metavar="KEY=VALUE",
            help="Decoding setting for --model, e.g. score_threshold=0.05 (repeatable).",
        ),  # fmt: skip
    ) -> None:
        """Score parsing, characteristics, keypoints and masks against a dataset."""
        report = run_eval(data, predictions, model, split, limit, pgn_compat, workers,
                          postprocess)  # fmt: skip
        print_report(report)
        if json_out is not None:
            json_out.parent.mkdir(parents=True, exist_ok=True)
            json_out.write_text(json.dumps(report, indent=2, allow_nan=False), encoding="utf-8")
            log.info("report written to %s", json_out)
