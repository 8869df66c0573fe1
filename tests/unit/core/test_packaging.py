"""A built wheel installs the remapped folders as describeme.pipeline/operators/models, and a
plain ``pip install`` (no extras) brings what the default pipeline needs."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[3]
# Distributions each parser backend imports on the default path (a .pt checkpoint exported
# to ONNX in the actor for onnxruntime).
BACKEND_DISTRIBUTIONS = {"torch": {"torch"}, "onnxruntime": {"onnxruntime", "onnx"}}


def test_default_backend_needs_no_extras() -> None:
    """The README's run command installs no extras: the default backend must not need one."""
    tomllib = pytest.importorskip("tomllib")  # Python 3.11+
    from packaging.requirements import Requirement

    from describeme.pipeline.config import ParserConfig

    project = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))["project"]
    core = {Requirement(r).name.lower() for r in project["dependencies"]}
    shipped = yaml.safe_load((ROOT / "configs/pipeline/default.yaml").read_text())["parser"]
    for backend in {ParserConfig().backend, shipped["backend"]}:
        missing = BACKEND_DISTRIBUTIONS[backend] - core
        assert not missing, f"default backend {backend!r} needs extras: {sorted(missing)}"


@pytest.fixture(scope="module")
def wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("wheel")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "--no-build-isolation",
            "-q",
            "-w",
            str(out),
            str(ROOT),
        ],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    (path,) = out.glob("describeme-*.whl")
    return path


def test_wheel_contains_remapped_packages_and_assets(wheel: Path) -> None:
    names = zipfile.ZipFile(wheel).namelist()
    for package in ("pipeline", "operators", "models"):
        assert f"describeme/{package}/__init__.py" in names
        assert not any(n.startswith(f"{package}/") for n in names), f"stray top-level {package}/"
    assert "describeme/labels.py" in names
    assert "describeme/assets/sample.mp4" in names  # `describeme run` with no argument needs it
    assert "describeme/service/static/index.html" in names  # the web page of `describeme serve`
    assert not any(n.startswith("tests/") for n in names)


def test_wheel_imports_subpackages(wheel: Path, tmp_path: Path) -> None:
    target = tmp_path / "site"
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--no-deps",
            "-q",
            "--target",
            str(target),
            str(wheel),
        ],
        check=True,
        capture_output=True,
        timeout=300,
    )
    code = (
        "import describeme.pipeline, describeme.operators, describeme.models, describeme.labels\n"
        "print(describeme.models.__file__)"
    )
    result = subprocess.run(
        [
            sys.executable,
            "-I",
            "-c",
            f"import sys; sys.path.insert(0, {str(target)!r}); "
            + "import site; [sys.path.append(p) for p in site.getsitepackages()]\n"
            + code,
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().startswith(str(target))
