"""Pipeline config, parser selection, CLI helpers and the run summary."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer
from typer.testing import CliRunner

from describeme.config import load_config
from describeme.errors import ConfigError, DataError
from describeme.operators.telemetry import Telemetry
from describeme.pipeline.config import PipelineConfig
from describeme.pipeline.parsers import NoModelError, build_parser, check_model_option
from describeme.pipeline.summary import SUMMARY_KEYS, build_summary, format_summary

REPO = Path(__file__).resolve().parents[3]


def test_default_yaml_mirrors_the_built_in_defaults() -> None:
    assert load_config(REPO / "configs/pipeline/default.yaml", PipelineConfig) == PipelineConfig()


@pytest.mark.parametrize(
    ("overrides", "match"),
    [(["parser.max_batch"] , "must look like"), (["parser.max_batchsize=4"], "unknown key"),
     (["parser.backend=tensorflow"], "parser.backend"),
     (["stream.max_in_flight=0"], "max_in_flight"),
     (["tracker.min_iou=2"], "tracker.min_iou"), (["describer.colour=1"], "unknown key")],
)  # fmt: skip
def test_bad_config_values_name_the_key(overrides: list[str], match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        load_config(None, PipelineConfig, overrides)


@pytest.mark.parametrize(
    ("model", "match"),
    [("hptr", "no trained 'hptr' model is bundled"),
     ("personlab", "no trained 'personlab' model is bundled"),
     ("/no/such/model.pt", "no such checkpoint file")],
)
def test_missing_model_says_what_was_looked_for_and_suggests_standin(
    model: str, match: str, tmp_path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESCRIBEME_MODELS_DIR", str(tmp_path))  # an empty models folder
    config = PipelineConfig()
    config.parser.model = model
    for call in (lambda: build_parser(config.parser), lambda: check_model_option(model)):
        with pytest.raises(NoModelError, match=f"{match}.*--model standin"):
            call()


def test_standin_is_selected_only_explicitly() -> None:
    config = PipelineConfig()
    config.parser.model = "standin"
    config.parser.standin.seed = 5
    parser = build_parser(config.parser)
    assert type(parser).__name__ == "GroundTruthParser" and parser.seed == 5
    check_model_option("standin")


@pytest.mark.parametrize(
    ("model", "postprocess", "match"),
    [("standin", {"score_threshold": 0.2}, "the stand-in parser has none"),
     ("personlab", {"mask_threshold": 0.5}, "personlab model: mask_threshold: Extra inputs"),
     ("personlab", {"max_people": 0}, "max_people: Input should be greater than or equal")],
)  # fmt: skip
def test_postprocess_settings_are_checked_before_ray_starts(
    model: str, postprocess: dict, match: str
) -> None:
    with pytest.raises(ConfigError, match=match):
        check_model_option(model, postprocess)


def test_postprocess_settings_reach_the_model_parser() -> None:
    config = PipelineConfig.model_validate(
        {"parser": {"backend": "torch", "postprocess": {"score_threshold": 0.4, "max_people": 7}}}
    )
    check_model_option(config.parser.model, config.parser.postprocess)  # valid: no error
    decoder = build_parser(config.parser).parser.postprocess
    assert (decoder.score_threshold, decoder.max_people) == (0.4, 7)


def _app() -> typer.Typer:
    from describeme.cli import run

    app = typer.Typer()

    @app.callback()
    def root() -> None:
        pass

    run.register(app)
    return app


def test_default_model_is_the_bundled_personlab_at_its_own_input_size() -> None:
    config = PipelineConfig()
    assert config.parser.model == "personlab" and config.parser.input_size is None


def test_cli_run_without_bundled_weights_fails_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DESCRIBEME_MODELS_DIR", str(tmp_path / "models"))  # weights removed
    video = tmp_path / "v.mp4"
    video.write_bytes(b"x")
    result = CliRunner().invoke(_app(), ["run", str(video)])
    assert isinstance(result.exception, NoModelError)
    assert "--model standin" in str(result.exception)


def test_cli_run_missing_file(tmp_path: Path) -> None:
    result = CliRunner().invoke(_app(), ["run", str(tmp_path / "nope.mp4"), "--model", "standin"])
    assert isinstance(result.exception, DataError) and "no such video file" in str(result.exception)


def test_cli_run_of_files_that_are_not_video_fails_before_starting_anything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import describeme.cli.run as run_cli

    started: list[bool] = []
    monkeypatch.setattr(run_cli, "_execute", lambda *args: started.append(True))
    text = tmp_path / "notes.mp4"
    text.write_text("not a video\n")
    result = CliRunner().invoke(_app(), ["run", str(text), "--model", "standin"])
    assert isinstance(result.exception, DataError)
    assert "is not a readable video" in str(result.exception) and not started
    result = CliRunner().invoke(_app(), ["run", str(text), str(text), "--model", "standin"])
    assert "none of the 2 sources is a readable video" in str(result.exception) and not started


def test_cli_dump_config_applies_flags() -> None:
    result = CliRunner().invoke(_app(), ["run", "--model", "standin", "--fps", "5", "--dump-config",
                                         "-o", "parser.max_batch_size=2"])
    assert result.exit_code == 0, result.output
    assert "model: standin" in result.output and "target_fps: 5.0" in result.output
    assert "max_batch_size: 2" in result.output


def test_ingest_expands_globs_and_rejects_empty_matches(tmp_path: Path) -> None:
    from describeme.cli.run import expand_paths

    for name in ("b.mp4", "a.mp4", "sub/c.mp4"):
        (tmp_path / name).parent.mkdir(exist_ok=True)
        (tmp_path / name).write_bytes(b"x")
    patterns = [str(tmp_path / "*.mp4"), str(tmp_path / "a.mp4"), str(tmp_path / "**/c.mp4")]
    files = expand_paths(patterns)
    assert [Path(f).name for f in files] == ["a.mp4", "b.mp4", "c.mp4"]
    with pytest.raises(DataError, match="no video file matches"):
        expand_paths([str(tmp_path / "*.mkv")])


def test_file_keys_are_stable_and_path_specific(tmp_path: Path) -> None:
    from describeme.pipeline.graph import file_key  # imports ray, but starts nothing

    a, b = tmp_path / "x" / "clip v1.mp4", tmp_path / "y" / "clip v1.mp4"
    assert file_key(a) == file_key(a) != file_key(b)
    assert file_key(a).startswith("clip_v1-")


def test_summary_has_the_contract_keys() -> None:
    telemetry = Telemetry()
    telemetry.observe("stage_latency_seconds", 0.01, stage="parse")
    telemetry.observe("end_to_end_latency_seconds", 0.2, stream="a")
    reports = [{"stream_id": "a", "frames": 30, "dropped_frames": 2, "skipped_packets": 1,
                "status": "done"},
               {"stream_id": "b", "frames": 10, "status": "stopped"}]
    summary = build_summary(reports, telemetry.snapshot(), tracks=4, elapsed_s=2.0)
    assert set(SUMMARY_KEYS) <= set(summary)
    assert (summary["frames"], summary["tracks"], summary["fps"]) == (40, 4, 20.0)
    assert (summary["dropped_frames"], summary["skipped_packets"]) == (2, 1)
    assert summary["stages"]["parse"]["p50_ms"] == pytest.approx(10.0)
    assert summary["end_to_end_latency"]["p50_ms"] == pytest.approx(200.0)
    assert summary["statuses"] == {"done": 1, "stopped": 1}
    assert "frames 40" in format_summary(summary)


def test_graph_refuses_streams_that_cannot_be_placed(monkeypatch: pytest.MonkeyPatch) -> None:
    from describeme.errors import ServiceError
    from describeme.pipeline import graph

    monkeypatch.setattr(graph.ray, "cluster_resources", lambda: {"CPU": 2.0})
    pipeline = graph.PipelineGraph(PipelineConfig(), "redis://127.0.0.1:1/0")
    pipeline._check_cpus(3)  # 0.5 parser + 3 x 0.25 stages + 3 x 0.25 streams = 2.0 fits
    with pytest.raises(ServiceError, match="needs 2.25 CPUs for 4 streams but Ray has 2"):
        pipeline._check_cpus(4)


def test_ray_errors_are_unwrapped_to_the_users_error() -> None:
    import ray

    from describeme.errors import ServiceError
    from describeme.pipeline.graph import clean_error

    class TaskError(ray.exceptions.RayError):
        cause = DataError("no such video file: x.mp4")

    assert str(clean_error(TaskError())) == "no such video file: x.mp4"
    died = ray.exceptions.RayError("actor died\n  traceback...\nServiceError: cannot reach Redis")
    cleaned = clean_error(died)
    assert isinstance(cleaned, ServiceError)
    assert str(cleaned) == "a pipeline actor failed: ServiceError: cannot reach Redis"
