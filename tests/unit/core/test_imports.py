"""Import hygiene: the root package and the models package stay free of ray, av and redis.

The GPU machines that train models have torch but not ray/av/redis; the CLI must start fast.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

HEAVY = ("ray", "av", "redis")


@pytest.mark.parametrize(
    "module",
    [
        "describeme",
        "describeme.labels",
        "describeme.types",
        "describeme.messages",
        "describeme.config",
        "describeme.models",
        "describeme.operators",
        "describeme.data",
    ],
)
def test_module_does_not_import_heavy_dependencies(module: str) -> None:
    code = (
        f"import sys, {module}\n"
        f"bad = [m for m in {HEAVY!r} if m in sys.modules]\n"
        "print(','.join(bad))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "", f"{module} imported {result.stdout.strip()}"


def test_root_package_does_not_import_torch() -> None:
    code = (
        "import sys, describeme, describeme.labels, describeme.types; print('torch' in sys.modules)"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=120
    )
    assert result.stdout.strip() == "False"


def test_subpackages_resolve_to_top_level_folders() -> None:
    import describeme.models
    import describeme.operators
    import describeme.pipeline

    assert describeme.pipeline.__file__.replace("\\", "/").endswith("pipeline/__init__.py")
    assert describeme.operators.__file__.replace("\\", "/").endswith("operators/__init__.py")
    assert describeme.models.__file__.replace("\\", "/").endswith("models/__init__.py")
