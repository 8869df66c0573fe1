"""``describeme eval`` (filled by the evaluation-suite work)."""

from __future__ import annotations

import typer


def register(app: typer.Typer) -> None:
    pass
