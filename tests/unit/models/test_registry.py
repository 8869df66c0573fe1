"""Model registry and predictor: name/path resolution, clear errors, painting people into
evaluation maps, eval/export through the CLI on a freshly saved tiny checkpoint."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn
from typer.testing import CliRunner

from describeme.errors import ConfigError, DataError
from describeme.labels import NUM_COLORS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES, PART_HAS_COLOR
from describeme.masks import RunLengthMask
from describeme.models import checkpoint as ckpt
from describeme.models.hptr.config import build_model_from_config, load_hptr_config
from describeme.models.inference import Parser, persons_to_prediction
from describeme.models.registry import (
    MODEL_PLUGINS,
    MODELS_DIR_ENV,
    PARSER_FACTORIES,
    NoBundledModelError,
    check_postprocess,
    load_model,
    load_parser,
    load_predictor,
    resolve_model_path,
)
from describeme.types import Persons

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
CONTRACT_KEYS = ("miou", "apr_vol", "apr_50", "app_vol", "app_50", "pcp_50", "color_miou",
                 "size_miou", "pattern_miou", "color_apcr_vol", "size_apcr_vol",
                 "pattern_apcr_vol")  # fmt: skip


@pytest.fixture(scope="module")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An untrained tiny HPTR saved like ``describeme train`` does (config with a model part);
    the score threshold is lowered so the untrained model still emits people."""
    config = load_hptr_config(CONFIGS / "hptr_tiny.yaml", ["postprocess.score_threshold=0.05"])
    torch.manual_seed(0)
    model = build_model_from_config(config)
    path = tmp_path_factory.mktemp("ckpt") / "tiny.pt"
    return ckpt.save_checkpoint(path, model, config={"model": config.model_dump(mode="json")})


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from describeme.data.synth import SynthConfig, write_image_dataset

    out = tmp_path_factory.mktemp("synth") / "data"
    write_image_dataset(out, SynthConfig(width=96, height=64), 7, 2)
    return out


@pytest.mark.parametrize(
    ("name", "error", "message"),
    [
        ("hptr", NoBundledModelError, "no trained 'hptr' model is bundled"),
        ("personlab", NoBundledModelError, "no trained 'personlab' model is bundled"),
        ("nope.pt", DataError, "no such checkpoint file, and not a bundled model name"),
        ("", DataError, "is a directory"),  # '' is the working directory
    ],
)
def test_resolve_errors_are_clear(
    name: str, error: type, message: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path / "empty"))
    monkeypatch.chdir(tmp_path)
    with pytest.raises(error, match=message):
        load_model(name)


def test_bundled_name_loads_from_models_dir(
    tiny_checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "hptr.pt").write_bytes(tiny_checkpoint.read_bytes())
    monkeypatch.setenv(MODELS_DIR_ENV, str(tmp_path))
    assert resolve_model_path("hptr") == tmp_path / "hptr.pt"
    model, meta = load_model("hptr", expected_model="hptr")
    assert meta["model_name"] == "hptr" and not model.training


def test_other_model_is_rejected_clearly(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(ckpt.MODEL_BUILDERS, "segnet", "torch.nn:Identity")
    other = nn.Identity()
    other.model_name, other.model_args = "segnet", {"unused": 1}
    path = ckpt.save_checkpoint(tmp_path / "seg.pt", other)
    with pytest.raises(DataError, match="holds a 'segnet' model, expected 'hptr'"):
        load_model(path, expected_model="hptr")
    with pytest.raises(DataError, match="'segnet' model, which has no parser"):
        load_parser(path)


def test_installed_model_plugins_register_their_parsers(tiny_checkpoint: Path) -> None:
    load_model(tiny_checkpoint)  # the first load runs the plugins
    for target in MODEL_PLUGINS:
        module_name = target.partition(":")[0]
        if importlib.util.find_spec(module_name.rsplit(".", 1)[0]) is not None:
            name = module_name.split(".")[-2]  # describeme.models.<name>.parser
            assert name in PARSER_FACTORIES and name in ckpt.MODEL_BUILDERS


def _person(box: tuple[int, int, int, int], part: int, score: float, size=(8, 10)) -> Persons:
    labels = np.zeros(size, np.uint8)
    x0, y0, x1, y1 = box
    labels[y0:y1, x0:x1] = part
    color = np.zeros((1, NUM_PARTS, NUM_COLORS), np.float32)
    color[0, part, 5] = color[0, 0, 1] = 1.0  # red part
    return Persons(
        xyxy=np.array([box], np.float32), score=np.array([score]),
        masks=[RunLengthMask.from_full(labels)], quality=np.array([score / 2]),
        part_area=np.eye(NUM_PARTS, dtype=np.float32)[[part]],
        part_score=np.full((1, NUM_PARTS), 0.5, np.float32), color=color,
        size=np.zeros((1, NUM_PARTS, NUM_SIZES), np.float32),
        pattern=np.zeros((1, NUM_PARTS, NUM_PATTERNS), np.float32),
    )  # fmt: skip


@pytest.mark.parametrize(
    ("people", "humans_sum", "persons_scores"),
    [
        ([], 0, {}),
        ([((0, 0, 2, 2), 5, 0.9)], 4, {1: 0.9}),
        # Overlap: the stronger person is numbered 1 and keeps the shared pixels.
        ([((0, 0, 4, 4), 5, 0.4), ((2, 2, 6, 6), 9, 0.8)], 16 + 12 * 2, {1: 0.8, 2: 0.4}),
        # Fully hidden weaker person: dropped, not an empty detection.
        ([((1, 1, 3, 3), 5, 0.3), ((0, 0, 4, 4), 9, 0.8)], 16, {1: 0.8}),
    ],
)
def test_persons_to_prediction_table(people: list, humans_sum: int, persons_scores: dict) -> None:
    items = [_person(*p) for p in people]
    persons = Persons.cat(items) if items else Persons.empty(masks=True)
    prediction = persons_to_prediction(persons, (8, 10))
    assert int(prediction.humans.sum()) == humans_sum
    assert prediction.scores["score"].persons == pytest.approx(persons_scores)
    if items:
        assert prediction.scores["qam"].persons[1] == pytest.approx(persons_scores[1] / 2)
        top = prediction.parts[prediction.humans == 1]
        assert set(top.tolist()) == {9 if len(people) > 1 else 5}
        cls = int(top[0])
        assert prediction.scores["score"].parts[cls] == pytest.approx(persons_scores[1] * 0.5)
        expected_color = 5 if cls in PART_HAS_COLOR else 0
        assert set(prediction.color[prediction.humans == 1].tolist()) == {expected_color}


def test_persons_to_prediction_carries_every_pose_for_keypoint_ap() -> None:
    painted = _person((0, 0, 2, 2), 5, 0.9)
    hidden = _person((0, 0, 2, 2), 9, 0.3)  # fully covered: no pixel left, pose still scored
    persons = Persons.cat([painted, hidden])
    persons.keypoints = np.arange(2 * 17 * 3, dtype=np.float32).reshape(2, 17, 3)
    prediction = persons_to_prediction(persons, (8, 10))
    assert set(np.unique(prediction.humans).tolist()) == {0, 1}
    np.testing.assert_array_equal(prediction.keypoints, persons.keypoints)
    np.testing.assert_allclose(prediction.keypoint_scores, [0.9, 0.3], rtol=1e-6)
    assert persons_to_prediction(painted, (8, 10)).keypoints is None  # HPTR: no poses


def test_persons_to_prediction_rejects_other_frame_size() -> None:
    with pytest.raises(ValueError, match=r"mask is for a \(8, 10\) frame"):
        persons_to_prediction(_person((0, 0, 2, 2), 5, 0.9), (16, 16))


def test_parser_batches_frames_of_any_size(tiny_checkpoint: Path) -> None:
    parser = load_parser(tiny_checkpoint)
    frames = [np.full((48, 80, 3), 90, np.uint8), np.full((100, 60, 3), 160, np.uint8)]
    people = parser.parse(frames)
    assert len(people) == 2 and parser.parse([]) == []
    for frame, persons in zip(frames, people, strict=True):
        assert all(m.image_size == frame.shape[:2] for m in persons.masks)
    with pytest.raises(ValueError, match=r"frame 0 must be an \(H, W, 3\) BGR array"):
        parser.parse([np.zeros((4, 4), np.uint8)])
    with pytest.raises(ValueError, match="multiples of 32"):
        Parser(backend=None, postprocess=None, input_size=(50, 64))  # type: ignore[arg-type]


def test_postprocess_overrides_change_the_decoding_and_are_checked(tiny_checkpoint: Path) -> None:
    image = np.random.default_rng(0).integers(0, 255, (48, 64, 3), dtype=np.uint8)
    saved = load_parser(tiny_checkpoint, backend="torch")  # threshold 0.05 from its config
    strict = load_parser(tiny_checkpoint, backend="torch", postprocess={"score_threshold": 1.0})
    assert saved.postprocess.score_threshold == pytest.approx(0.05)
    assert strict.postprocess.score_threshold == 1.0
    assert len(saved.parse([image])[0]) > 0 and len(strict.parse([image])[0]) == 0
    check_postprocess(tiny_checkpoint, {"score_threshold": 0.3, "mask_threshold": 0.4})
    with pytest.raises(ConfigError, match=r"hptr model: max_people: Extra inputs.*score_thr"):
        check_postprocess(tiny_checkpoint, {"max_people": 3})  # a PersonLab setting
    with pytest.raises(ConfigError, match="score_threshold: Input should be less than"):
        load_parser(tiny_checkpoint, backend="torch", postprocess={"score_threshold": 2})


def test_predictor_runs_on_a_two_image_dataset(tiny_checkpoint: Path, synth_dir: Path) -> None:
    from describeme.models.metrics.dataset_eval import evaluate_dataset

    predict = load_predictor(tiny_checkpoint)
    report = evaluate_dataset(synth_dir, predict)
    assert report["num_images"] == 2
    assert all(0.0 <= report[k] <= 1.0 for k in CONTRACT_KEYS)


def test_eval_and_export_commands(tiny_checkpoint: Path, synth_dir: Path, tmp_path: Path) -> None:
    from describeme.cli.main import app

    runner = CliRunner()
    out = tmp_path / "eval.json"
    args = ["eval", "--model", str(tiny_checkpoint), "--data", str(synth_dir), "--json", str(out)]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert all(isinstance(report[k], float) for k in CONTRACT_KEYS)
    # People are also ranked by their QAM quality: the same AP keys with a _qam suffix.
    assert all(isinstance(report[f"{k}_qam"], float) for k in ("apr_vol", "app_vol", "pcp_50"))
    result = runner.invoke(app, ["export", "--model", str(tiny_checkpoint), "--format", "onnx",
                                 "--out", str(tmp_path / "onnx")])  # fmt: skip
    assert result.exit_code == 0, result.output
    onnx_path = tmp_path / "onnx" / "tiny.onnx"
    import onnxruntime

    session = onnxruntime.InferenceSession(str(onnx_path), providers=["CPUExecutionProvider"])
    assert session.get_inputs()[0].shape[2:] == [64, 64]
    # The graph runs as --model with its stored config, and matches eager torch. (Decoded
    # people are not compared: an untrained model's queries tie, so 1e-6 noise reorders them.)
    graph = load_parser(onnx_path)  # an .onnx file runs on onnxruntime
    eager = load_parser(tiny_checkpoint)
    assert graph.backend.kind == "onnxruntime" and graph.input_size == (64, 64)
    assert graph.postprocess.score_threshold == pytest.approx(0.05)
    images = np.random.default_rng(0).random((2, 3, 64, 64), dtype=np.float32)
    want, got = eager.backend.infer(images), graph.backend.infer(images)
    for name, value in want.items():
        np.testing.assert_allclose(got[name], value, rtol=1e-4, atol=1e-4, err_msg=name)
    frame = np.full((64, 96, 3), 128, np.uint8)
    assert all(m.image_size == (64, 96) for m in graph.parse([frame])[0].masks)


def test_eval_postprocess_settings_reach_the_parser(
    tiny_checkpoint: Path, synth_dir: Path, tmp_path: Path
) -> None:
    from describeme.cli.main import app

    runner = CliRunner()
    out = tmp_path / "eval.json"
    args = ["eval", "--model", str(tiny_checkpoint), "--data", str(synth_dir), "--json", str(out)]
    result = runner.invoke(app, [*args, "--postprocess", "score_threshold=1.0"])
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["config"]["postprocess"] == {"score_threshold": 1.0}
    assert report["mask_ap"] == 0.0  # nobody scores 1.0: every person is dropped
    result = runner.invoke(app, [*args, "--postprocess", "score_treshold=0.5"])
    assert result.exit_code != 0  # a ConfigError naming the key and the model's settings
    message = str(result.exception)
    assert "score_treshold" in message and "score_threshold" in message


def test_export_errors_are_one_line(tiny_checkpoint: Path, tmp_path: Path) -> None:
    from describeme.cli.training import run_export
    from describeme.models.runtime import BackendUnavailableError

    with pytest.raises(ValueError, match="--format 'trt'"):
        run_export(str(tiny_checkpoint), "trt", tmp_path)
    try:
        import tensorrt  # noqa: F401
    except ImportError:
        with pytest.raises(BackendUnavailableError, match="needs NVIDIA TensorRT"):
            run_export(str(tiny_checkpoint), "tensorrt", tmp_path)
    assert not list(tmp_path.iterdir())  # failed before writing anything
