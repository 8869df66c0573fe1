"""The ``describeme`` command line: one entry point, one module per subcommand group.

Errors a user can act on (:class:`describeme.errors.DescribemeError`, ``ValueError``,
``OSError``) print one line and exit non-zero; ``--debug`` (or ``DESCRIBEME_DEBUG=1``) shows
the traceback instead.
"""

from __future__ import annotations

import logging
import os
import sys

import typer

from describeme import __version__
from describeme.cli import common, data, evaluate, run, search, serve, training
from describeme.errors import DescribemeError

app = typer.Typer(
    name="describeme",
    help="Describe and find people in video: parse, track, describe, store, search.",
    no_args_is_help=True,
    add_completion=False,
    pretty_exceptions_enable=False,
    context_settings={"help_option_names": ["-h", "--help"]},
)
app.add_typer(data.app, name="data")
# Each module adds its commands with register(app); the heavy imports stay inside commands.
for _module in (evaluate, run, search, serve, training):
    _module.register(app)


def _version(value: bool) -> None:
    if value:
        typer.echo(f"describeme {__version__}")
        raise typer.Exit()


@app.callback()
def root(
    verbose: int = typer.Option(
        0, "--verbose", "-v", count=True, help="More logging (-vv for debug)."
    ),
    debug: bool = typer.Option(False, "--debug", help="Show tracebacks on errors."),
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="Print the version and exit."
    ),
) -> None:
    """Describe and find people in video: parse, track, describe, store, search."""
    common.setup_logging(logging.WARNING - 10 * verbose if verbose else logging.INFO)
    if debug:
        os.environ["DESCRIBEME_DEBUG"] = "1"


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point. Typer handles usage errors (exit 2) and --help itself."""
    try:
        app(args=argv, prog_name="describeme")
    except KeyboardInterrupt:
        common.error_line("interrupted")
        sys.exit(130)
    except (DescribemeError, ValueError, TypeError, OSError) as exc:
        if os.environ.get("DESCRIBEME_DEBUG"):
            raise
        common.error_line(str(exc) or type(exc).__name__)
        sys.exit(getattr(exc, "exit_code", 2))


if __name__ == "__main__":
    main()
