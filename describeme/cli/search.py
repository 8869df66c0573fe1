"""``describeme search``: find stored tracks by a natural-language person description.

``describeme search "red shirt and blue jeans"`` prints a ranked table;
``--json`` prints the whole result (hits with scores, matched/failed constraints, base64
thumbnails); ``--parse-only --json`` prints only the constraints as a JSON list of
``{part, color, size, pattern, negated, weight}`` objects (a contract other tools rely on).
redis is imported inside the command, so ``describeme --help`` stays fast.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
from typing import Any

import typer

from describeme.cli import common

log = logging.getLogger(__name__)


def _print_explanation(lines: list[str]) -> None:
    for line in lines:
        common.stderr.print(line, markup=False, highlight=False, soft_wrap=True)


def _when(seconds: float) -> str:
    if not seconds:
        return "-"
    return dt.datetime.fromtimestamp(seconds).astimezone().strftime("%Y-%m-%d %H:%M:%S")


def _table(result: Any) -> None:
    from rich.console import Console
    from rich.table import Table

    strict = sum(hit.strict for hit in result.hits)
    table = Table(title=f"{strict} strict hits shown of {result.strict_total} stored; "
                        f"{len(result.hits) - strict} near misses with what failed")  # fmt: skip
    for name in ("#", "camera", "track", "score", "match", "seen", "description", "failed"):
        table.add_column(name, overflow="fold")
    for rank, hit in enumerate(result.hits, start=result.offset + 1):
        track = hit.track
        table.add_row(
            str(rank), track["stream_id"], str(track["track_id"]), f"{hit.score:.3f}",
            "strict" if hit.strict else "relaxed",
            f"{_when(track['first_seen_time'])} (+{track['last_seen'] - track['first_seen']:.0f}s)",
            track["sentence"], _failed_text(hit) or "-",
        )  # fmt: skip
    Console().print(table)


def _failed_text(hit: Any) -> str:
    """Failed conditions, each with the vote share its asked value got ("runner-up 35%")."""
    shares = hit.near_misses
    return "; ".join(f"{label} (runner-up {shares[label]:.0%})" if label in shares else label
                     for label in hit.failed)  # fmt: skip


def _run_search(query: Any, limit: int, offset: int, filters: Any, redis_url: str | None,
                use_vector: bool | None, prefix: str) -> Any:  # fmt: skip
    """Connects (embedded Redis unless a URL), makes sure the index exists, searches."""
    import redis

    from describeme.errors import ServiceError
    from describeme.operators.redis_server import resolve_redis
    from describeme.operators.retrieval import search_tracks
    from describeme.operators.store import TrackStore, redact_url

    url, server = resolve_redis(redis_url)
    try:
        store = TrackStore.from_url(url, prefix=prefix)
        try:
            store.ensure_index()
            return search_tracks(store, query, limit=limit, offset=offset, filters=filters,
                                 use_vector=use_vector)  # fmt: skip
        except redis.exceptions.RedisError as exc:
            raise ServiceError(f"Redis at {redact_url(url)} failed during search: {exc}") from None
        finally:
            store.client.close()
    finally:
        if server is not None:
            server.stop()


def register(app: typer.Typer) -> None:
    """Adds the ``search`` command to ``app``."""

    @app.command()
    def search(
        query: str = typer.Argument(
            ..., help="Description of a person, e.g. 'red shirt and blue jeans, no hat'."
        ),  # fmt: skip
        parse_only: bool = typer.Option(
            False, "--parse-only", help="Print the parsed constraints, do not search."
        ),
        json_output: bool = typer.Option(False, "--json", help="Machine-readable output."),
        limit: int = typer.Option(10, "--limit", min=1, max=100, help="Hits per page."),
        offset: int = typer.Option(0, "--offset", min=0, max=10_000, help="Hits to skip."),
        camera: list[str] = typer.Option([], "--camera", help="Only this stream id (repeat)."),
        since: str | None = typer.Option(
            None,
            "--since",
            help="Seen at or after: 2026-11-22T14:30, 14:30, 2pm, 10m (ago), Unix s.",
        ),
        until: str | None = typer.Option(None, "--until", help="Seen at or before (same forms)."),
        vector: bool | None = typer.Option(
            None,
            "--vector/--no-vector",
            help="Re-rank by the description embedding (default: with unknown words).",
        ),  # fmt: skip
        thumbnails: bool = typer.Option(
            True, "--thumbnails/--no-thumbnails", help="Include base64 JPEG thumbnails in --json."
        ),
        redis_url: str | None = typer.Option(
            None, "--redis-url", help="External Redis (default: embedded)."
        ),
        key_prefix: str = typer.Option(
            "describeme:", "--key-prefix", help="Key namespace the tracks were written under."
        ),
    ) -> None:
        """Search stored tracks by description (strict matches first, then near misses)."""
        from describeme.operators.query import Filters, parse_query, parse_time_bound

        parsed = parse_query(query)
        if parse_only:
            if json_output:
                typer.echo(json.dumps([c.to_dict() for c in parsed.constraints]))
                if parsed.unknown_words:
                    log.warning("unknown words (not used): %s", ", ".join(parsed.unknown_words))
            else:
                typer.echo("\n".join(parsed.explain()))
            return
        filters = Filters(tuple(camera), parse_time_bound(since) if since else None,
                          parse_time_bound(until) if until else None)  # fmt: skip
        result = _run_search(parsed, limit, offset, filters, redis_url, vector, key_prefix)
        if json_output:
            typer.echo(json.dumps(result.to_dict(thumbnails=thumbnails)))
            return
        _print_explanation(result.parsed.explain())
        if not result.hits:
            common.stderr.print("no stored track matches any of these constraints",
                                markup=False, highlight=False)  # fmt: skip
            return
        _table(result)
