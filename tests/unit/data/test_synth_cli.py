"""``describeme data synth`` / ``describeme data check``: outputs, one-line errors, exit codes."""

from __future__ import annotations

from pathlib import Path

import pytest

from describeme.cli.data import parse_size
from describeme.cli.main import main
from describeme.data import layout
from describeme.errors import ConfigError


def run(capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str, str]:
    with pytest.raises(SystemExit) as exit_info:
        main(list(args))
    out, err = capsys.readouterr()
    return int(exit_info.value.code or 0), out, err


def test_synth_images_then_check(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    code, _, err = run(
        capsys,
        "data",
        "synth",
        "--out",
        str(out),
        "--images",
        "3",
        "--seed",
        "1",
        "--size",
        "96x64",
    )
    assert code == 0, err
    assert len(list((out / layout.IMAGES).glob("*.jpg"))) == 3
    code, stdout, _ = run(capsys, "data", "check", str(out))
    assert code == 0 and "ok" in stdout


def test_synth_video_then_check(tmp_path: Path, capsys) -> None:
    out = tmp_path / "clip"
    code, _, err = run(
        capsys,
        "data",
        "synth",
        "--out",
        str(out),
        "--video",
        "--seconds",
        "1",
        "--fps",
        "4",
        "--seed",
        "1",
        "--size",
        "96x64",
        "-o",
        "video.people=2",
    )
    assert code == 0, err
    assert (out / layout.VIDEO_FILE).stat().st_size > 0
    assert run(capsys, "data", "check", str(out))[0] == 0


def test_check_exits_1_on_violations(tmp_path: Path, capsys) -> None:
    out = tmp_path / "ds"
    run(capsys, "data", "synth", "--out", str(out), "--images", "1", "--size", "64x48")
    (out / layout.DESCRIPTIONS / "000000.json").unlink()
    code, stdout, _ = run(capsys, "data", "check", str(out))
    assert code == 1 and "000000.json: missing" in stdout and "1 violations" in stdout


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--images", "3", "--size", "512by384"], "--size '512by384' must look like"),
        (["--images", "3", "--size", "8x8"], "must look like"),
        (["--images", "0"], "--images must be positive"),
        (["--images", "-2"], "--images must be positive"),
        ([], "exactly one of --images N or --video"),
        (["--images", "2", "--video"], "exactly one of"),
        (["--images", "2", "-o", "people.maxx=1"], "unknown key 'people.maxx'"),
        (["--images", "2", "-o", "people.max=many"], "must be an integer"),
        (["--images", "2", "--workers", "0"], "--workers must be positive"),
        (["--video", "--size", "97x64"], "even"),
    ],
)
def test_bad_input_is_one_clear_line(tmp_path: Path, capsys, args: list[str], message: str) -> None:
    code, _, err = run(capsys, "data", "synth", "--out", str(tmp_path / "o"), *args)
    assert code == 2
    assert message in err and "Traceback" not in err
    assert err.strip().startswith("error:")


def test_existing_non_empty_out_needs_overwrite(tmp_path: Path, capsys) -> None:
    (tmp_path / "file.txt").write_text("keep")
    code, _, err = run(capsys, "data", "synth", "--out", str(tmp_path), "--images", "1")
    assert code == 2 and "--overwrite" in err
    code, _, _ = run(
        capsys,
        "data",
        "synth",
        "--out",
        str(tmp_path),
        "--images",
        "1",
        "--size",
        "64x48",
        "--overwrite",
    )
    assert code == 0


def test_dump_config_prints_yaml(tmp_path: Path, capsys) -> None:
    code, stdout, _ = run(
        capsys, "data", "synth", "--out", str(tmp_path), "--dump-config", "--size", "320x240"
    )
    assert code == 0 and "width: 320" in stdout and "height: 240" in stdout


def test_check_missing_folder(tmp_path: Path, capsys) -> None:
    code, _, err = run(capsys, "data", "check", str(tmp_path / "nope"))
    assert code == 2 and "not a folder" in err


@pytest.mark.parametrize(("text", "expected"), [("512x384", (512, 384)), (" 64X48 ", (64, 48))])
def test_parse_size(text: str, expected: tuple[int, int]) -> None:
    assert parse_size(text) == expected


@pytest.mark.parametrize("text", ["", "512", "x384", "512x", "-5x10", "1.5x2"])
def test_parse_size_rejects(text: str) -> None:
    with pytest.raises(ConfigError):
        parse_size(text)
