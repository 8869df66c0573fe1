"""``describeme data``: make and check datasets (filled by the synthetic-engine work)."""

from __future__ import annotations

import typer

app = typer.Typer(help="Generate and check datasets.", no_args_is_help=True)
