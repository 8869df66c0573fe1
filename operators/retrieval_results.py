"""What a search returns: ranked hits and the page they form, as JSON-ready dicts.

:class:`SearchResult` is what :func:`describeme.operators.retrieval.search_tracks` (the
sibling module that finds and ranks the hits) returns to the CLI and the HTTP API.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field
from typing import Any

from describeme.operators.query import ParsedQuery

__all__ = ["SearchHit", "SearchResult"]


@dataclass
class SearchHit:
    """One ranked track. ``track`` is :func:`~describeme.operators.store.parse_track` output
    without the vector.
    """

    track: dict[str, Any]
    key: str
    score: float
    strict: bool
    matched: list[str]
    failed: list[str]
    similarity: float | None = None
    near_misses: dict[str, float] = field(default_factory=dict)  # failed label -> vote share

    def to_dict(self, thumbnails: bool = True) -> dict[str, Any]:
        track = {k: v for k, v in self.track.items() if k not in ("thumbnail", "vector")}
        thumb = self.track.get("thumbnail")
        out = {
            **track,
            "key": self.key,
            "score": round(self.score, 6),
            "strict": self.strict,
            "matched": self.matched,
            "failed": self.failed,
            "similarity": self.similarity,
            "near_misses": self.near_misses,
        }
        if thumbnails:
            out["thumbnail_jpeg_base64"] = base64.b64encode(thumb).decode() if thumb else None
        return out


@dataclass
class SearchResult:
    """Hits of one page plus how they were found."""

    parsed: ParsedQuery
    hits: list[SearchHit]
    strict_total: int
    offset: int
    limit: int
    queries: list[str] = field(default_factory=list)

    def to_dict(self, thumbnails: bool = True) -> dict[str, Any]:
        return {**self.parsed.to_dict(), "strict_total": self.strict_total,
                "offset": self.offset, "limit": self.limit,
                "hits": [h.to_dict(thumbnails) for h in self.hits]}  # fmt: skip
