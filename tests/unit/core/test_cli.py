"""The command line: help for every command, one-line errors, non-zero exits."""

from __future__ import annotations

import subprocess
import sys

import pytest

COMMANDS = ["data", "train", "eval", "export", "run", "ingest", "search", "serve"]


def describeme(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "describeme.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin", "COLUMNS": "120", "OMP_NUM_THREADS": "1"},
    )


def test_root_help_lists_every_command() -> None:
    result = describeme("--help")
    assert result.returncode == 0
    for name in COMMANDS:
        assert f" {name} " in result.stdout, name


@pytest.mark.parametrize("name", COMMANDS)
def test_each_command_has_help(name: str) -> None:
    result = describeme(name, "--help")
    assert result.returncode == 0, result.stderr
    assert "Usage:" in result.stdout and "--help" in result.stdout


def test_unknown_command_is_a_usage_error() -> None:
    result = describeme("frobnicate")
    assert result.returncode == 2
    assert "No such command" in result.stderr


def test_version() -> None:
    result = describeme("--version")
    assert result.returncode == 0 and result.stdout.startswith("describeme ")
