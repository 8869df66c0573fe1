"""Retrieval: runs the tier queries of a search and ranks the explained hits.

The atoms and their escaped query text come from the sibling
:mod:`describeme.operators.retrieval_query`; the hit and page types this module returns live
in :mod:`describeme.operators.retrieval_results`.

Ranking, in tiers:

1. strict: every atom holds (one query);
2. relaxed: for each set of failed atoms (one failed atom, then two, ...), a query that keeps
   only the other atoms. A level runs only when the earlier ones returned fewer tracks than
   the page needs, so they are complete, and a returned track not found before fails exactly
   the dropped atoms; the queries need no NOT clauses (which walk every document id). A person
   with one wrong attribute is therefore found just below the strict hits. Levels run until
   the page is full or ``MAX_RELAXED_QUERIES`` is spent, then one "any atom" union (scored in
   Python) catches the rest. Each level is one pipelined round trip.

Within a tier RediSearch computes the score itself, ``sum(weight * stored confidence)`` over
the atoms that hold (a negation that holds counts its full weight), divided by the total
weight, and keeps the tier's best ``offset + limit`` (all a tier can add to the page; with
vector re-ranking, ``max_candidates``). Confidence fields declared SORTABLE in the index are
read from the index; others are LOADed from each matching hash (the cost of broad queries at
100k tracks). A tier whose kept atoms are all negations scores the same for every track and
needs no sort (the first matches in index order). Hits sort by (failed weight, -score).

Near misses: a relaxed tier keeps its best ``max_candidates`` instead, loads (after its sort,
so only for those rows) the stored vote shares of the values it dropped, and each failed
characteristic then adds ``weight * share`` (over the total weight) to a track's score, where
``share`` is the vote its asked value got on that track (``PartDescription.shares``, stored as
``<group>_<kind>_shares``; at most ``MAX_NEAR_MISS_SHARE``): a person the model saw as 40% dark
and 35% blue ranks above one never seen in blue when the query says "blue"
(``benchmarks/search_recall.py --model`` measures the ranking with and without). With unknown
query words, the cosine similarity of the query's embedding to the stored description vector
adds ``vector_weight`` at most, as a tie-breaker.
"""

from __future__ import annotations

import functools
import itertools
import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from describeme.operators import embedding
from describeme.operators import store as store_module
from describeme.operators.query import Filters, ParsedQuery, parse_query
from describeme.operators.retrieval_query import Atom, build_atoms, build_filter_clause, build_query
from describeme.operators.retrieval_results import SearchHit, SearchResult
from describeme.operators.store import TrackStore, parse_track
from describeme.operators.store_schema import parse_shares, shares_field

__all__ = ["search_tracks"]

log = logging.getLogger(__name__)

MAX_LIMIT = 100  # one page; more is pagination's job
MAX_OFFSET = 10_000
MAX_RELAXED_QUERIES = 32  # relaxed tier queries per search (pipelined in one round trip/level)
MAX_NEAR_MISS_SHARE = 0.5  # a value that lost the vote holds at most half of it
_INDEXES_WITHOUT_SORTABLE: set[str] = set()  # live indexes older than the declared schema
DEFAULT_MAX_CANDIDATES = 50  # tracks per tier query re-ranked by vector or near-miss credit


def sortable_numeric_fields() -> frozenset[str]:
    """NUMERIC fields the store's index declares SORTABLE (readable without a hash LOAD)."""
    return _sortable_fields(store_module.index_schema)


@functools.lru_cache(maxsize=1)
def _sortable_fields(build: Any) -> frozenset[str]:
    """:func:`sortable_numeric_fields` of one ``index_schema`` function, remembered: building
    the schema costs ~50 us, and a search of seven atoms asks once per tier query (29 times);
    a patched schema function (tests, the benchmark's experiment) is a new key."""
    schema = build()
    return frozenset(schema[i - 2] for i in range(2, len(schema))
                     if schema[i] == "SORTABLE" and schema[i - 1] == "NUMERIC")  # fmt: skip


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)


def _rows(reply: Any) -> list[dict[str, Any]]:
    """Rows of an FT.AGGREGATE reply (RESP2 list or RESP3 map) as dicts with str keys."""
    if isinstance(reply, dict):
        results = {_text(k): v for k, v in reply.items()}.get("results", [])
        rows = []
        for item in results:
            item = {_text(k): v for k, v in item.items()}
            attrs = item.get("extra_attributes", {})
            rows.append({_text(k): v for k, v in attrs.items()})
        return rows
    return [{_text(r[i]): r[i + 1] for i in range(0, len(r) - 1, 2)} for r in reply[1:]]


def _search_rows(reply: Any) -> list[tuple[str, dict[str, Any]]]:
    """(id, fields) of an FT.SEARCH reply, RESP2 or RESP3."""
    if isinstance(reply, dict):
        out = []
        for item in {_text(k): v for k, v in reply.items()}.get("results", []):
            item = {_text(k): v for k, v in item.items()}
            attrs = {_text(k): v for k, v in item.get("extra_attributes", {}).items()}
            out.append((_text(item["id"]), attrs))
        return out
    return [(_text(reply[i]), {_text(k): v for k, v in zip(reply[i + 1][::2],
                                                              reply[i + 1][1::2], strict=True)})
            for i in range(1, len(reply), 2)]  # fmt: skip


def _keys(reply: Any) -> list[str]:
    """Document ids of an ``FT.SEARCH ... NOCONTENT`` reply, RESP2 or RESP3."""
    if isinstance(reply, dict):
        results = {_text(k): v for k, v in reply.items()}.get("results", [])
        return [_text({_text(k): v for k, v in item.items()}["id"]) for item in results]
    return [_text(key) for key in reply[1:]]


def _total(reply: Any) -> int:
    if isinstance(reply, dict):
        return int({_text(k): v for k, v in reply.items()}["total_results"])
    return int(reply[0])


@dataclass
class _Candidate:
    key: str
    failed: tuple[int, ...]
    score: float
    similarity: float | None = None
    near_misses: dict[int, float] = field(default_factory=dict)  # failed atom -> vote share


class _Searcher:
    """Runs the tier queries of one search.

    Args:
        cap: tracks kept per strict query. Hits sort by (failed weight, -score) and every
            track of a tier shares its failed weight, so a tier's best ``offset + limit`` are
            all it can contribute to the page; vector re-ranking needs a deeper pool.
        relaxed_cap: tracks kept per relaxed query, deeper than ``cap`` when the vote shares
            of the failed atoms re-rank them after the query (near misses).
        near_miss: read the failed characteristics' vote shares with each relaxed hit and
            credit them (:meth:`credit`).
    """

    def __init__(self, store: TrackStore, atoms: list[Atom], filters: Filters, cap: int,
                 relaxed_cap: int | None = None, near_miss: bool = False) -> None:  # fmt: skip
        self.store, self.atoms, self.filters, self.cap = store, atoms, filters, cap
        self.relaxed_cap = cap if relaxed_cap is None else relaxed_cap
        self.near_miss = near_miss
        self.total_weight = sum(a.weight for a in atoms) or 1.0
        self.queries: list[str] = []
        # An index created before a schema change may lack the SORTABLE flags the code
        # declares (ensure_index migrates it; a caller may not have run it): then LOAD all.
        self.load_all = self.store.index_name in _INDEXES_WITHOUT_SORTABLE

    def tier_command(
        self, failed: tuple[int, ...], skip: int = 0
    ) -> tuple[list[Any], float | None]:
        """The command of one failed set, and its score when it is the same for every track.

        ``skip`` tracks already found in earlier tiers may come back too (the query does not
        exclude them), so the query keeps ``cap + skip`` (``relaxed_cap`` for relaxed tiers).

        Atoms with a stored confidence are scored by RediSearch (``FT.AGGREGATE`` ... APPLY
        ... SORTBY ... MAX); a tier whose kept atoms are all negations has a constant score
        and needs no sort.
        """
        kept = [a for i, a in enumerate(self.atoms) if i not in failed]
        query = build_query(self.atoms, failed, self.filters)
        self.queries.append(query)
        cap = str((self.relaxed_cap if failed else self.cap) + skip)
        # Read after the sort, so only for the rows kept: the shares of the dropped values.
        keys = ["@__key", *[f"@{name}" for name in self.shares_fields(failed)]]
        scored = sorted({a.conf_field for a in kept if a.conf_field})
        if not scored:
            constant = sum(a.weight for a in kept) / self.total_weight
            # No SORTBY: the aggregation stops after ``cap`` rows instead of walking every
            # match ("no hat" matches most of the store), so these come in index order.
            return ["FT.AGGREGATE", self.store.index_name, query, "LOAD", str(len(keys)),
                    *keys, "LIMIT", "0", cap, "DIALECT", "2"], constant  # fmt: skip
        # SORTABLE fields are read from the index itself; others must be LOADed from every
        # matching hash, which is what a broad query ("red shirt" at 100k) spends its time on.
        sortable = frozenset() if self.load_all else sortable_numeric_fields()
        loads = [f"@{name}" for name in scored if name not in sortable]
        terms = [f"{a.weight!r}*@{a.conf_field}" if a.conf_field else repr(a.weight)
                 for a in kept]  # fmt: skip
        return ["FT.AGGREGATE", self.store.index_name, query,
                *(["LOAD", str(len(loads)), *loads] if loads else []),
                "APPLY", " + ".join(terms), "AS", "__score",
                "SORTBY", "2", "@__score", "DESC", "MAX", cap,
                "LOAD", str(len(keys)), *keys, "LIMIT", "0", cap, "DIALECT", "2"], None  # fmt: skip

    def run_tier(
        self, failed_sets: list[tuple[int, ...]], skip: int = 0, count_strict: bool = False
    ) -> tuple[list[_Candidate], int | None]:
        """Runs one level's queries in one round trip (plus the strict count if asked)."""
        import redis

        try:
            return self._run_tier(failed_sets, skip, count_strict)
        except redis.exceptions.ResponseError as exc:
            if "not loaded" not in str(exc) or self.load_all:
                raise
            log.warning(
                "index %s lacks SORTABLE confidence fields; run ensure_index() to "
                "migrate it (searching with LOADs meanwhile)",
                self.store.index_name,
            )
            _INDEXES_WITHOUT_SORTABLE.add(self.store.index_name)
            self.load_all = True
            return self._run_tier(failed_sets, skip, count_strict)

    def _run_tier(
        self, failed_sets: list[tuple[int, ...]], skip: int, count_strict: bool
    ) -> tuple[list[_Candidate], int | None]:
        pipe = self.store.client.pipeline(transaction=False)
        constants = []
        for failed in failed_sets:
            args, constant = self.tier_command(failed, skip)
            pipe.execute_command(*args)
            constants.append(constant)
        if count_strict:
            pipe.execute_command("FT.SEARCH", self.store.index_name,
                                 build_query(self.atoms, (), self.filters),
                                 "LIMIT", "0", "0", "DIALECT", "2")  # fmt: skip
        replies = pipe.execute()
        out = []
        for failed, constant, reply in zip(failed_sets, constants, replies, strict=False):
            for row in _rows(reply):
                score = constant
                if score is None:
                    score = float(_text(row["__score"])) / self.total_weight
                out.append(self.credit(_Candidate(_text(row["__key"]), failed, score), row))
        return out, _total(replies[-1]) if count_strict else None

    def shares_fields(self, failed: Sequence[int]) -> list[str]:
        """Hash fields with the vote shares of the failed characteristic atoms."""
        if not self.near_miss:
            return []
        return sorted({shares_field(*self.atoms[i].characteristic[:2]) for i in failed
                       if self.atoms[i].characteristic})  # fmt: skip

    def credit(self, cand: _Candidate, row: dict[str, Any]) -> _Candidate:
        """Adds ``weight * share / total_weight`` for each failed characteristic atom whose
        asked value has a vote share in ``row`` (the loaded shares fields).

        The score stays in [0, 1]: each atom adds its weight times either its confidence
        (held) or its asked value's share (failed; at most ``MAX_NEAR_MISS_SHARE``, all a
        value that lost the vote can hold), never both. Tiers do not change.
        """
        if not self.near_miss:
            return cand
        for i in cand.failed:
            atom = self.atoms[i]
            if atom.characteristic is None:
                continue
            part, kind, value = atom.characteristic
            shares = parse_shares(row.get(shares_field(part, kind)))
            share = min(shares.get(value, 0.0), MAX_NEAR_MISS_SHARE)
            if share > 0:
                cand.near_misses[i] = share
                cand.score += atom.weight * share / self.total_weight
        return cand

    def any_atom(self, seen: set[str], need: int) -> list[_Candidate]:
        """Tracks meeting at least one positive atom, scored in Python (the last tier).

        RediSearch's default scorer sums over the union's matched clauses, so its top
        ``need + len(seen)`` are the tracks meeting the most atoms (approximately: rarer
        values weigh more); the exact failed set and score are then computed here.
        """
        positives = [a.clause for a in self.atoms if not a.negated]
        if not positives:
            return []
        where = f"({' | '.join(positives)})"
        query = f"{build_filter_clause(self.filters)} {where}".strip()
        self.queries.append(query)
        fields = sorted(
            {a.conf_field for a in self.atoms if a.conf_field}
            | {name for a in self.atoms for name, _ in a.checks} - {"parts"}
            | set(self.shares_fields(range(len(self.atoms))))
        )
        pool = str(need + len(seen))
        reply = self.store.client.execute_command(
            "FT.SEARCH", self.store.index_name, query, "RETURN", str(len(fields) + 1), "parts",
            *fields, "LIMIT", "0", pool, "DIALECT", "2")  # fmt: skip
        out = []
        for key, doc in _search_rows(reply):
            if key not in seen:
                failed, score = self.score_doc(doc)
                out.append(self.credit(_Candidate(key, failed, score), doc))
        return out

    def score_doc(self, doc: dict[str, Any]) -> tuple[tuple[int, ...], float]:
        """Failed atoms and score of one document's fields (same rule as the server)."""
        failed, total = [], 0.0
        for i, atom in enumerate(self.atoms):
            if not atom.holds(doc):
                failed.append(i)
                continue
            conf = _text(doc.get(atom.conf_field, b"0")) if atom.conf_field else "1"
            total += atom.weight * float(conf)
        return tuple(failed), total / self.total_weight


def _tiers(atoms: Sequence[Atom]) -> tuple[list[list[tuple[int, ...]]], bool]:
    """Failed-atom sets by level (0, 1, 2 ...) within the relaxed query budget, and whether
    the levels cover every track that meets a positive atom. Sets that fail every positive
    atom are left out: a track that only "has no hat" is no answer to a description."""
    positive = {i for i, a in enumerate(atoms) if not a.negated}
    levels: list[list[tuple[int, ...]]] = [[()]]
    budget = MAX_RELAXED_QUERIES
    for level in range(1, len(atoms)):
        combos = [c for c in itertools.combinations(range(len(atoms)), level)
                  if not positive <= set(c)]  # fmt: skip
        if len(combos) > budget:
            return levels, False
        budget -= len(combos)
        if combos:
            levels.append(combos)
    return levels, True


def _check_paging(limit: int, offset: int, max_candidates: int) -> None:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise ValueError(f"limit must be an integer in [1, {MAX_LIMIT}], got {limit!r}")
    if isinstance(offset, bool) or not isinstance(offset, int) or not 0 <= offset <= MAX_OFFSET:
        raise ValueError(f"offset must be an integer in [0, {MAX_OFFSET}], got {offset!r}")
    if not 1 <= int(max_candidates) <= 10_000:
        raise ValueError(f"max_candidates must be in [1, 10000], got {max_candidates}")


def search_tracks(
    store: TrackStore,
    query: str | ParsedQuery,
    *,
    limit: int = 10,
    offset: int = 0,
    filters: Filters | None = None,
    use_vector: bool | None = None,
    vector_weight: float = 0.1,
    max_candidates: int = DEFAULT_MAX_CANDIDATES,
    near_miss: bool = True,
) -> SearchResult:
    """Finds tracks matching a person description, strict matches first.

    Args:
        store: the track store (its index must exist: :meth:`TrackStore.ensure_index`).
        query: text (parsed with :func:`parse_query`) or an already parsed query.
        limit, offset: the page (limit <= MAX_LIMIT).
        filters: camera/time filters added to those written in the query.
        use_vector: re-rank by the description embedding; default: when the query has
            unknown words.
        vector_weight: the most the similarity adds to a hit's score (scores are in [0, 1]).
        max_candidates: tracks kept per tier query when re-ranking by vector, and per
            relaxed tier query when re-ranking near misses.
        near_miss: within a relaxed tier, credit each failed characteristic with the vote
            share its asked value got on the track (``PartDescription.shares``), so a track
            whose runner-up color is the asked one ranks above one that never showed it.

    Returns:
        the page of hits, each with its score and the constraints it matched and failed.

    Raises:
        QueryError: the text cannot be searched. ValueError: bad paging arguments.
    """
    _check_paging(limit, offset, max_candidates)
    parsed = parse_query(query) if isinstance(query, str) else query
    all_filters = parsed.filters.merged(filters) if filters is not None else parsed.filters
    atoms = build_atoms(parsed.constraints)
    if not atoms:
        return _recent_only(store, parsed, all_filters, limit, offset)
    need = offset + limit
    vector = use_vector if use_vector is not None else bool(parsed.unknown_words)
    deep = max(max_candidates, need)
    near = near_miss and any(a.characteristic for a in atoms)
    searcher = _Searcher(store, atoms, all_filters, deep if vector else need,
                         deep if vector or near else need, near)  # fmt: skip
    found: dict[str, _Candidate] = {}
    levels, complete = _tiers(atoms)
    strict_total = 0
    for level, failed_sets in enumerate(levels):
        candidates, count = searcher.run_tier(failed_sets, len(found), count_strict=level == 0)
        strict_total = count if count is not None else strict_total
        for cand in candidates:
            found.setdefault(cand.key, cand)
        if len(found) >= need:
            break
    else:
        if not complete:
            for cand in searcher.any_atom(set(found), searcher.cap):
                found.setdefault(cand.key, cand)
    ranked = list(found.values())
    if vector:  # reorders within a tier only: tiers below the page need no vectors
        _add_similarity(store, _page_tiers(ranked, atoms, need), parsed.text, vector_weight)
    ranked.sort(key=lambda c: (_failed_weight(c, atoms), -c.score, c.key))
    hits = _fetch_hits(store, ranked[offset:need], atoms)
    return SearchResult(parsed, hits, strict_total, offset, limit, searcher.queries)


def _failed_weight(cand: _Candidate, atoms: list[Atom]) -> float:
    """The candidate's tier: the total weight of the atoms it fails (0 = strict)."""
    return sum(atoms[i].weight for i in cand.failed)


def _page_tiers(ranked: list[_Candidate], atoms: list[Atom], need: int) -> list[_Candidate]:
    """The candidates whose tier (failed weight) reaches the first ``need`` places."""
    if len(ranked) <= need:
        return ranked
    weights = [_failed_weight(c, atoms) for c in ranked]
    boundary = sorted(weights)[need - 1]
    return [c for c, w in zip(ranked, weights, strict=True) if w <= boundary]


def _add_similarity(store: TrackStore, ranked: list[_Candidate], text: str,
                    weight: float) -> None:  # fmt: skip
    query_vector = embedding.embed_text(text)
    pipe = store.client.pipeline(transaction=False)
    for cand in ranked:
        pipe.hget(cand.key, "vector")
    for cand, blob in zip(ranked, pipe.execute(), strict=True):
        if isinstance(blob, bytes) and len(blob) == embedding.DIM * 4:
            cand.similarity = float(np.dot(embedding.from_bytes(blob), query_vector))
            cand.score += weight * max(cand.similarity, 0.0)


# The hash fields a hit shows; the vector and the per-part index fields stay in Redis.
HIT_FIELDS = ("stream_id", "track_id", "frame_index", "num_observations", "pts", "first_seen",
              "last_seen", "first_seen_time", "last_seen_time", "quality", "updated_at",
              "final", "sentence", "parts_json", "thumbnail")  # fmt: skip


def _fetch_hits(store: TrackStore, page: list[_Candidate], atoms: list[Atom]) -> list[SearchHit]:
    pipe = store.client.pipeline(transaction=False)
    for cand in page:
        pipe.hmget(cand.key, HIT_FIELDS)
    hits = []
    for cand, values in zip(page, pipe.execute(), strict=True):
        fields = {k: v for k, v in zip(HIT_FIELDS, values or (), strict=False) if v is not None}
        if "track_id" not in fields:  # deleted between the search and the fetch
            continue
        track = parse_track(fields)
        track.pop("vector", None)
        failed = set(cand.failed)
        hits.append(SearchHit(
            track, cand.key, cand.score, not failed,
            [a.label for i, a in enumerate(atoms) if i not in failed],
            [a.label for i, a in enumerate(atoms) if i in failed], cand.similarity,
            {atoms[i].label: share for i, share in sorted(cand.near_misses.items())},
        ))  # fmt: skip
    return hits


def _recent_only(store: TrackStore, parsed: ParsedQuery, filters: Filters, limit: int,
                 offset: int) -> SearchResult:  # fmt: skip
    """A query with filters but no constraints: the most recently seen tracks."""
    query = build_filter_clause(filters) or "*"
    reply = store.client.execute_command(
        "FT.SEARCH", store.index_name, query, "NOCONTENT", "SORTBY", "last_seen_time", "DESC",
        "LIMIT", str(offset), str(limit), "DIALECT", "2")  # fmt: skip
    keys = _keys(reply)
    page = [_Candidate(k, (), 1.0) for k in keys]
    return SearchResult(parsed, _fetch_hits(store, page, []), _total(reply), offset, limit,
                        [query])  # fmt: skip
