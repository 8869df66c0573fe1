"""``describeme eval``: table + JSON report from saved predictions; clear one-line errors."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

from describeme.cli.main import main

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "models"))
from test_metrics_files import CONTRACT_KEYS, make_image, write_dataset, write_predictions  # noqa: E402


def run_cli(argv: list[str]) -> int:
    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture()
def folders(tmp_path: Path) -> tuple[Path, Path]:
    rng = np.random.default_rng(3)
    images = [make_image(rng) for _ in range(4)]
    write_dataset(tmp_path / "data", images)
    write_predictions(tmp_path / "pred", images)
    return tmp_path / "data", tmp_path / "pred"


def test_eval_predictions_writes_contract_json(folders, tmp_path: Path, capsys) -> None:
    data, pred = folders
    out = tmp_path / "out" / "report.json"
    code = run_cli(
        [
            "eval",
            "--data",
            str(data),
            "--predictions",
            str(pred),
            "--limit",
            "3",
            "--json",
            str(out),
        ]
    )
    assert code == 0
    report = json.loads(out.read_text())
    for key in CONTRACT_KEYS:
        assert report[key] == pytest.approx(1.0), key
    assert report["num_images"] == 3
    assert report["config"]["limit"] == 3 and report["config"]["pgn_compat"] is False
    assert set(report["per_class"]) >= {"part_iou", "part_apr", "color_iou", "color_apcr"}
    assert report["data"]["hash"] and report["predictions"]["hash"]
    assert "AP^r_vol" in capsys.readouterr().out


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--model", "hptr"], "no trained 'hptr' model is bundled"),
        ([], "exactly one of --model"),
        (["--predictions", "PRED", "--limit", "0"], "--limit must be >= 1"),
        (["--predictions", "PRED", "--workers", "0"], "--workers must be >= 1"),
        (["--predictions", "MISSING"], "not found"),
        (["--predictions", "PRED", "--postprocess", "score_threshold=0.1"],
         "does not apply to saved --predictions"),
        (["--model", "personlab", "--postprocess", "parser.postprocess.score_threshold=0.1"],
         "not a dotted path"),
        (["--model", "personlab", "--postprocess", "score_threshold"], "must look like"),
    ],
)
def test_eval_errors_are_one_line(
    folders, tmp_path: Path, capsys, monkeypatch, extra: list[str], message: str
) -> None:
    data, pred = folders
    (tmp_path / "no-models").mkdir()
    monkeypatch.setenv("DESCRIBEME_MODELS_DIR", str(tmp_path / "no-models"))  # none bundled
    extra = [
        str(pred) if e == "PRED" else str(tmp_path / "missing") if e == "MISSING" else e
        for e in extra
    ]
    code = run_cli(["eval", "--data", str(data), *extra])
    assert code != 0
    err = capsys.readouterr().err.strip()
    assert message in err
    assert len(err.splitlines()) == 1 and "Traceback" not in err
