"""``describeme data``: make and check datasets.

Examples::

    describeme data synth --out data/synth --images 20000 --seed 1 --workers 8
    describeme data synth --out data/clip --video --seconds 20 --seed 1 --fps 15
    describeme data check data/synth
"""

from __future__ import annotations

import logging
import re
from pathlib import Path

import typer

from describeme.cli.common import (
    CONFIG_OPTION,
    DUMP_CONFIG_OPTION,
    OVERRIDE_OPTION,
    progress,
    stderr,
)
from describeme.errors import ConfigError

app = typer.Typer(help="Generate and check datasets.", no_args_is_help=True)
log = logging.getLogger(__name__)
_SIZE = re.compile(r"^\s*(\d+)\s*[xX]\s*(\d+)\s*$")


def parse_size(text: str) -> tuple[int, int]:
    """Parses ``WxH`` (e.g. ``512x384``) into (width, height), raising a clear error."""
    match = _SIZE.match(text)
    if not match or int(match.group(1)) < 16 or int(match.group(2)) < 16:
        raise ConfigError(
            f"--size {text!r} must look like WIDTHxHEIGHT with both >= 16, e.g. 512x384"
        )
    return int(match.group(1)), int(match.group(2))


def _overrides(
    override: list[str], size: str | None, fps: float | None, seconds: float | None
) -> list[str]:
    """Config overrides from the -o options plus the shortcut flags (flags win)."""
    overrides = list(override)
    if size is not None:
        width, height = parse_size(size)
        overrides += [f"width={width}", f"height={height}"]
    if fps is not None:
        overrides.append(f"video.fps={fps}")
    if seconds is not None:
        overrides.append(f"video.seconds={seconds}")
    return overrides


@app.command()
def synth(
    out: Path = typer.Option(..., "--out", help="Output folder (must be empty or new)."),
    images: int | None = typer.Option(None, "--images", help="Number of still images to render."),
    video: bool = typer.Option(False, "--video", help="Render a video clip instead of images."),
    seconds: float | None = typer.Option(
        None, "--seconds", help="Video length (default from config)."
    ),
    seed: int = typer.Option(0, "--seed", help="Random seed; same seed, same data."),
    size: str | None = typer.Option(None, "--size", help="Image size WxH (default 512x384)."),
    fps: float | None = typer.Option(None, "--fps", help="Video frame rate (default from config)."),
    workers: int = typer.Option(
        1, "--workers", help="Processes for --images (same output for any K)."
    ),
    overwrite: bool = typer.Option(False, "--overwrite", help="Allow a non-empty --out."),
    config: Path | None = CONFIG_OPTION,
    override: list[str] = OVERRIDE_OPTION,
    dump_config: bool = DUMP_CONFIG_OPTION,
) -> None:
    """Render a synthetic dataset (images) or clip (--video) with exact labels."""
    from describeme.config import dump_config as dump
    from describeme.config import load_config
    from describeme.data.synth.config import SynthConfig

    cfg = load_config(config, SynthConfig, _overrides(override, size, fps, seconds))
    if dump_config:
        typer.echo(dump(cfg), nl=False)
        return
    if video == (images is not None):
        raise ConfigError("pass exactly one of --images N or --video")
    if video:
        from describeme.data.synth.video import write_video_dataset

        write_video_dataset(
            out,
            cfg,
            seed,
            overwrite=overwrite,
            wrap=lambda it, n: progress(it, n, "rendering frames"),
        )
        stderr.print(f"wrote {out}", markup=False, highlight=False)
        return
    from describeme.data.synth.writer import write_image_dataset

    assert images is not None
    write_image_dataset(
        out,
        cfg,
        seed,
        images,
        workers=workers,
        overwrite=overwrite,
        wrap=lambda it, n: progress(it, n, "rendering images"),
    )
    stderr.print(f"wrote {images} images to {out}", markup=False, highlight=False)


@app.command()
def check(
    folder: Path = typer.Argument(..., help="Dataset or synthetic video folder."),
    limit: int | None = typer.Option(None, "--limit", help="Check only the first N images."),
    show: int = typer.Option(20, "--show", help="Print at most this many violations."),
) -> None:
    """Check a generated folder's label invariants; exit 1 if any is violated."""
    from describeme.data.synth.check import check_folder

    if not folder.is_dir():
        raise ConfigError(f"{folder}: not a folder")
    violations = check_folder(folder, limit)
    for line in violations[:show]:
        typer.echo(line)
    if violations:
        more = f" (showing {show})" if len(violations) > show else ""
        typer.echo(f"{folder}: {len(violations)} violations{more}")
        raise typer.Exit(1)
    typer.echo(f"{folder}: ok, no violations")
