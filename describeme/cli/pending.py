"""Commands whose implementation lands with a later piece of work.

They are registered now with their real options so ``--help`` documents the interface the
rest of the system is built against; running one says plainly that it is not available yet.
"""

from __future__ import annotations

from pathlib import Path

import typer

from describeme.errors import NotImplementedYet


def _pending(what: str) -> None:
    raise NotImplementedYet(f"'describeme {what}' is not implemented in this version yet")


def register(app: typer.Typer) -> None:
    """Registers the commands that no other module has registered yet."""
    taken = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}

    def command(function):  # type: ignore[no-untyped-def]
        return function if function.__name__ in taken else app.command()(function)

    @command
    def train(
        config: Path = typer.Argument(..., help="Training config YAML (configs/models/...)."),
        override: list[str] = typer.Option([], "--override", "-o", help="key.sub=value override."),
        workers: int = typer.Option(1, help="Ray Train workers (DDP); 1 = a single Ray task."),
        gpus_per_worker: float = typer.Option(0.0, help="GPUs per worker (0 = CPU)."),
        resume: Path | None = typer.Option(None, help="Checkpoint to resume from."),
        ray_address: str | None = typer.Option(None, help="Ray cluster address (default: local)."),
    ) -> None:
        """Train a parser (HPTR or PersonLab) as a Ray job."""
        _pending("train")

    @command
    def export(
        model: str = typer.Option(..., "--model", help="Checkpoint path or bundled name."),
        format: str = typer.Option("onnx", "--format", help="onnx or tensorrt."),
        out: Path = typer.Option(Path("exported"), "--out", help="Output folder."),
        max_batch: int = typer.Option(8, help="Largest batch of the optimisation profile."),
        fp16: bool = typer.Option(True, help="Half precision for TensorRT."),
    ) -> None:
        """Export a model to ONNX or a TensorRT engine."""
        _pending("export")

    @command
    def run(
        sources: list[str] = typer.Argument(None, help="Files, rtsp://, http(s)://, /dev/video*."),
        model: str = typer.Option("hptr", "--model", help="Checkpoint path or bundled name."),
        redis_url: str | None = typer.Option(None, help="External Redis (default: embedded)."),
        ray_address: str | None = typer.Option(None, help="Ray cluster (default: local)."),
        fps: float | None = typer.Option(None, help="Sample sources to this frame rate."),
        out_video: Path | None = typer.Option(None, help="Write an annotated MP4 here."),
        summary_json: Path | None = typer.Option(None, help="Write the run summary here."),
    ) -> None:
        """Run the streaming pipeline on video sources and write tracks to Redis."""
        _pending("run")

    @command
    def ingest(
        paths: list[str] = typer.Argument(..., help="Video files or globs."),
        redis_url: str | None = typer.Option(None, help="External Redis (default: embedded)."),
        ray_address: str | None = typer.Option(None, help="Ray cluster (default: local)."),
    ) -> None:
        """Process a video archive as parallel Ray tasks, resumably."""
        _pending("ingest")

    @command
    def search(
        query: str = typer.Argument(..., help="Natural-language description of a person."),
        parse_only: bool = typer.Option(False, help="Print the parsed constraints only."),
        json_output: bool = typer.Option(False, "--json", help="Machine-readable output."),
        limit: int = typer.Option(10, help="Number of results."),
        redis_url: str | None = typer.Option(None, help="External Redis (default: embedded)."),
    ) -> None:
        """Search stored tracks by description."""
        _pending("search")

    @command
    def serve(
        host: str = typer.Option("127.0.0.1", help="Bind address (loopback by default)."),
        port: int = typer.Option(8080, help="Port."),
    ) -> None:
        """Serve the search API and web page."""
        _pending("serve")
