"""Shared CLI helpers: logging, the error line, progress bars, config options."""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)

T = TypeVar("T")
stderr = Console(stderr=True)

CONFIG_OPTION = typer.Option(None, "--config", "-c", help="YAML config file (defaults built in).")
OVERRIDE_OPTION = typer.Option(
    [], "--override", "-o", help="Override a config key: -o key.sub=value (repeatable)."
)
DUMP_CONFIG_OPTION = typer.Option(
    False, "--dump-config", help="Print the resolved config and exit."
)


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h, RichHandler) for h in root.handlers):
        root.setLevel(level)
        return
    handler = RichHandler(console=stderr, show_path=False, rich_tracebacks=False, markup=False)
    logging.basicConfig(level=level, format="%(message)s", datefmt="[%X]", handlers=[handler])


def error_line(message: str) -> None:
    """Prints ``error: message`` on one line to stderr (no markup interpretation)."""
    first = message.strip().splitlines()[0] if message.strip() else "error"
    rest = " ".join(line.strip() for line in message.strip().splitlines()[1:])
    stderr.print(
        f"error: {first}{(' ' + rest) if rest else ''}",
        markup=False,
        highlight=False,
        soft_wrap=True,
    )


def progress(items: Iterable[T], total: int | None, description: str) -> Iterator[T]:
    """Iterates ``items`` with a rich progress bar on stderr (plain when not a terminal)."""
    columns = [
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TimeRemainingColumn(),
    ]
    with Progress(
        *columns, console=stderr, transient=False, disable=not sys.stderr.isatty()
    ) as bar:
        task = bar.add_task(description, total=total)
        for item in items:
            yield item
            bar.advance(task)
