"""Retrieval logic that needs no server: atoms, escaped queries, tiers, scoring, paging."""

from __future__ import annotations

import re
from typing import Any

import pytest

from describeme.operators.query import Constraint, Filters, parse_query
from describeme.operators.retrieval import (
    MAX_LIMIT,
    MAX_RELAXED_QUERIES,
    _Searcher,
    _tiers,
    search_tracks,
)
from describeme.operators.retrieval_query import build_atoms, build_filter_clause, build_query
from describeme.operators.retrieval_results import SearchHit
from describeme.operators.store import TAG_SEPARATOR

UP = "upper-clothes"


class RecordingClient:
    """Stands in for redis.Redis: records every command, answers with empty results."""

    def __init__(self) -> None:
        self.commands: list[tuple[Any, ...]] = []

    def execute_command(self, *args: Any) -> Any:
        self.commands.append(args)
        return [0]

    def pipeline(self, transaction: bool = False) -> RecordingPipeline:
        return RecordingPipeline(self)


class RecordingPipeline:
    def __init__(self, client: RecordingClient) -> None:
        self.client, self.queued = client, 0

    def execute_command(self, *args: Any) -> None:
        self.client.commands.append(args)
        self.queued += 1

    def hget(self, *args: Any) -> None:
        self.execute_command("HGET", *args)

    def hgetall(self, *args: Any) -> None:
        self.execute_command("HGETALL", *args)

    def execute(self) -> list[Any]:
        return [[0] for _ in range(self.queued)]


class FakeStore:
    def __init__(self) -> None:
        self.client = RecordingClient()
        self.index_name = "t:idx:tracks"


def test_atoms_of_positive_negated_and_presence_constraints() -> None:
    atoms = build_atoms([
        Constraint(UP, color="red", size="long"), Constraint("hat", negated=True),
        Constraint("bag"),
    ])  # fmt: skip
    assert [a.label for a in atoms] == [
        "upper-clothes color=red",
        "upper-clothes size=long",
        "NOT hat",
        "bag",
    ]
    assert atoms[0].clause == "@upper_clothes_color:{red}"
    assert atoms[0].conf_field == "upper_clothes_color_conf"
    assert atoms[2].clause == "-(@parts:{hat})"
    assert atoms[2].conf_field is None and atoms[2].negated
    assert atoms[3].clause == "@parts:{bag}" and atoms[3].conf_field == "bag_presence"


def test_negated_constraint_with_attributes_is_one_atom() -> None:
    (atom,) = build_atoms([Constraint("scarf-tie", color="red", pattern="fancy", negated=True)])
    assert atom.clause == "-(@scarf_tie_color:{red} @scarf_tie_pattern:{fancy})"
    assert atom.holds({"scarf_tie_color": b"red", "scarf_tie_pattern": b"solid"})
    assert not atom.holds({"scarf_tie_color": b"red", "scarf_tie_pattern": b"fancy"})


@pytest.mark.parametrize(
    ("doc", "holds"),
    [
        ({"upper_clothes_color": b"red"}, [True, False, True]),
        ({"upper_clothes_color": "blue", "parts": f"hat{TAG_SEPARATOR}upper_clothes"},
         [False, False, False]),
        ({}, [False, False, True]),
        ({"parts": "bag"}, [False, True, True]),
    ],
)  # fmt: skip
def test_atom_holds(doc: dict, holds: list[bool]) -> None:
    atoms = build_atoms([Constraint(UP, color="red"), Constraint("bag"),
                         Constraint("hat", negated=True)])  # fmt: skip
    assert [a.holds(doc) for a in atoms] == holds


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (Filters(), ""),
        (Filters(("lobby",)), "@stream:{lobby}"),
        (Filters(("cam 1", "a}|@x:{b")), r"@stream:{cam\ 1 | a\}\|\@x\:\{b}"),
        (Filters(since=10.5), "@last_seen_time:[10.5 +inf]"),
        (Filters(until=20.0), "@first_seen_time:[-inf 20.0]"),
        (Filters(("x",), 1.0, 2.0), "@stream:{x} @last_seen_time:[1.0 +inf] "
                                    "@first_seen_time:[-inf 2.0]"),
    ],
)  # fmt: skip
def test_filter_clause_is_escaped(filters: Filters, expected: str) -> None:
    assert build_filter_clause(filters) == expected


def test_tier_query_keeps_atoms_and_drops_the_failed_ones() -> None:
    atoms = build_atoms([Constraint(UP, color="red"), Constraint("pants", color="blue"),
                         Constraint("hat", negated=True)])  # fmt: skip
    assert build_query(atoms, (), Filters()) == (
        "@upper_clothes_color:{red} @pants_color:{blue} -(@parts:{hat})"
    )
    assert build_query(atoms, (0, 2), Filters(("c",))) == "@stream:{c} @pants_color:{blue}"
    assert build_query([], (), Filters()) == "*"


def test_later_tiers_ask_for_the_tracks_already_found_too() -> None:
    atoms = build_atoms([Constraint(UP, color="red"), Constraint("pants", color="blue")])
    args, _ = _Searcher(FakeStore(), atoms, Filters(), 10).tier_command((1,), skip=7)  # type: ignore[arg-type]
    assert args[args.index("MAX") + 1] == "17" and args[-3] == "17"


@pytest.mark.parametrize("n_atoms", [1, 2, 3, 4, 5, 6, 8, 12])
def test_tiers_are_disjoint_levels_within_budget(n_atoms: int) -> None:
    atoms = build_atoms([Constraint(UP, color="red")] * n_atoms)
    levels, complete = _tiers(atoms)
    flat = [s for level in levels for s in level]
    assert levels[0] == [()]
    assert len(flat) == len(set(flat))  # each failed set once: tiers are disjoint
    assert len(flat) - 1 <= MAX_RELAXED_QUERIES
    assert all(len(s) == i for i, level in enumerate(levels) for s in level)
    assert all(len(s) < n_atoms for s in flat)  # never "every positive atom failed"
    assert complete == (len(levels) == n_atoms)


def test_tiers_skip_sets_where_only_negations_hold() -> None:
    atoms = build_atoms([Constraint(UP, color="red"), Constraint("hat", negated=True)])
    levels, complete = _tiers(atoms)
    assert levels == [[()], [(1,)]] and complete


def test_score_doc_weights_confidences() -> None:
    atoms = build_atoms([Constraint(UP, color="red", size="long"),
                         Constraint("hat", negated=True, weight=0.5)])  # fmt: skip
    searcher = _Searcher(FakeStore(), atoms, Filters(), 10)  # type: ignore[arg-type]
    doc = {"upper_clothes_color": b"red", "upper_clothes_color_conf": b"0.8",
           "upper_clothes_size": b"short", "upper_clothes_size_conf": b"0.9"}  # fmt: skip
    failed, score = searcher.score_doc(doc)
    assert failed == (1,)
    assert score == pytest.approx((0.8 + 0.5) / 2.5)


LABEL_CLAUSE = re.compile(r"-?\(?@[a-z_]+:\{[a-z_]+\}\)?")


@pytest.mark.parametrize(
    "text",
    ['red shirt" | @pants:{*}', "red shirt {x} (y) * -z", "red shirt @upper_clothes_color:{blue}",
     'red shirt\\" ) | @stream:{*} =>[KNN 10 @vector $v]'],
)  # fmt: skip
def test_user_text_never_reaches_the_query_syntax(text: str) -> None:
    """Every clause sent is ``@field:{label}`` (or its negation) plus the escaped filters."""
    store = FakeStore()
    hostile_camera = 'a}|@stream:{b" *'
    search_tracks(store, text, limit=5, filters=Filters((hostile_camera,)))  # type: ignore[arg-type]
    queries = [cmd[2] for cmd in store.client.commands if cmd[0].startswith("FT.")]
    assert queries, "no query was sent"
    stream_clause = re.compile(r"^@stream:\{((?:\\.|[^\\}])*)\}")  # ends at the first bare }
    for query in queries:
        match = stream_clause.match(query)
        assert match is not None, query
        assert r"a\}\|\@stream\:\{b\"\ \*" in match.group(1).split(" | ")
        rest = LABEL_CLAUSE.sub("", query[match.end() :])
        assert rest.replace("(", "").replace(")", "").replace("|", "").strip() == "", query


def test_queries_only_hold_label_values() -> None:
    store = FakeStore()
    search_tracks(store, "red shirt and blue jeans without a hat")  # type: ignore[arg-type]
    sent = [cmd for cmd in store.client.commands if cmd[0] == "FT.AGGREGATE"]
    # strict + 4 one-failed + 6 two-failed + 4 three-failed + ... within the budget
    assert sent[0][2] == (
        "@upper_clothes_color:{red} @upper_clothes_size:{long} "
        "@pants_color:{blue} @pants_size:{long} -(@parts:{hat})"
    )
    apply = sent[0][sent[0].index("APPLY") + 1]
    assert apply == (
        "1.0*@upper_clothes_color_conf + 1.0*@upper_clothes_size_conf + "
        "1.0*@pants_color_conf + 1.0*@pants_size_conf + 1.0"
    )


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"limit": 0}, "limit must be"), ({"limit": MAX_LIMIT + 1}, "limit must be"),
        ({"limit": True}, "limit must be"), ({"offset": -1}, "offset must be"),
        ({"offset": 10**6}, "offset must be"), ({"max_candidates": 0}, "max_candidates"),
    ],
)  # fmt: skip
def test_bad_paging_is_rejected(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        search_tracks(FakeStore(), "red shirt", **kwargs)  # type: ignore[arg-type]


def test_filters_only_query_lists_recent_tracks() -> None:
    store = FakeStore()
    result = search_tracks(store, parse_query("camera lobby"))  # type: ignore[arg-type]
    (cmd,) = [c for c in store.client.commands if c[0] == "FT.SEARCH"]
    assert cmd[2] == "@stream:{lobby}" and "last_seen_time" in cmd
    assert result.hits == [] and result.strict_total == 0


def test_hit_to_dict_encodes_thumbnail() -> None:
    hit = SearchHit({"stream_id": "c", "track_id": 1, "thumbnail": b"\xff\xd8"}, "k", 0.5,
                    True, ["hat"], [])  # fmt: skip
    out = hit.to_dict()
    assert out["thumbnail_jpeg_base64"] == "/9g=" and out["strict"] and out["matched"] == ["hat"]
    assert "thumbnail_jpeg_base64" not in hit.to_dict(thumbnails=False)


def test_sortable_confidences_are_not_loaded(monkeypatch: pytest.MonkeyPatch) -> None:
    from describeme.operators import store as store_module

    shipped = store_module.index_schema()
    # Every confidence ships SORTABLE; make one field not sortable: only it must be loaded.
    patched = [token for i, token in enumerate(shipped)
               if not (token == "SORTABLE" and shipped[i - 2] == "upper_clothes_size_conf")]
    assert len(patched) == len(shipped) - 1
    monkeypatch.setattr(store_module, "index_schema", lambda: patched)
    atoms = build_atoms([Constraint(UP, color="red", size="long")])
    args, constant = _Searcher(FakeStore(), atoms, Filters(), 10).tier_command(())  # type: ignore[arg-type]
    assert constant is None
    assert args[3:6] == ["LOAD", "1", "@upper_clothes_size_conf"]  # only the unsortable one
    assert args[args.index("MAX") + 2 : args.index("MAX") + 5] == ["LOAD", "1", "@__key"]


def test_negation_only_tier_needs_no_sort() -> None:
    atoms = build_atoms([Constraint(UP, color="red"), Constraint("hat", negated=True)])
    args, constant = _Searcher(FakeStore(), atoms, Filters(), 10).tier_command((0,))  # type: ignore[arg-type]
    assert args[0] == "FT.AGGREGATE" and "SORTBY" not in args and "APPLY" not in args
    assert constant == pytest.approx(0.5)


def test_index_without_sortable_fields_falls_back_to_loads(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The code declares SORTABLE confidences but the live index predates that."""
    import redis

    from describeme.operators import retrieval
    from describeme.operators import store as store_module

    shipped = store_module.index_schema()
    patched: list[str] = []
    for i, token in enumerate(shipped):
        patched.append(token)
        if token == "NUMERIC" and shipped[i - 1].endswith("_conf"):
            patched.append("SORTABLE")
    monkeypatch.setattr(store_module, "index_schema", lambda: patched)
    monkeypatch.setattr(retrieval, "_INDEXES_WITHOUT_SORTABLE", set())
    store = FakeStore()
    sent: list[tuple[Any, ...]] = store.client.commands

    def execute(self: RecordingPipeline) -> list[Any]:
        if sent[-1][0] == "FT.SEARCH" and sent[-2][3] == "APPLY":  # strict tier without LOAD
            raise redis.exceptions.ResponseError("Property `x_conf` not loaded nor in pipeline")
        return [[0] for _ in range(self.queued)]

    monkeypatch.setattr(RecordingPipeline, "execute", execute)
    search_tracks(store, "red shirt")  # type: ignore[arg-type]
    aggregates = [c for c in sent if c[0] == "FT.AGGREGATE"]
    assert aggregates[0][3] == "APPLY"  # first try: scored from the index
    assert aggregates[1][3:5] == ("LOAD", "2")  # retry: confidences loaded from the hashes
    assert store.index_name in retrieval._INDEXES_WITHOUT_SORTABLE


def test_relaxed_tiers_keep_a_deeper_pool_for_near_misses() -> None:
    atoms = build_atoms([Constraint(UP, color="red"), Constraint("pants", color="blue")])
    searcher = _Searcher(FakeStore(), atoms, Filters(), 10, relaxed_cap=50)  # type: ignore[arg-type]
    strict, _ = searcher.tier_command(())
    relaxed, _ = searcher.tier_command((0,), skip=3)
    assert strict[strict.index("MAX") + 1] == "10"
    assert relaxed[relaxed.index("MAX") + 1] == "53" and relaxed[-3] == "53"
    # search_tracks asks for the deeper pool only when near-miss credit is on.
    for near, cap in ((True, "50"), (False, "10")):
        store = FakeStore()
        search_tracks(store, "red shirt and blue jeans", near_miss=near)  # type: ignore[arg-type]
        relaxed_commands = [c for c in store.client.commands
                            if c[0] == "FT.AGGREGATE" and "@upper_clothes_color:{red}" not in c[2]]
        assert relaxed_commands and all(c[c.index("MAX") + 1] == cap for c in relaxed_commands)


def test_relaxed_tiers_load_the_dropped_values_shares() -> None:
    atoms = build_atoms([Constraint(UP, color="red", size="long"), Constraint("hat")])
    searcher = _Searcher(FakeStore(), atoms, Filters(), 10, 50, near_miss=True)  # type: ignore[arg-type]
    strict, _ = searcher.tier_command(())
    assert strict[strict.index("MAX") + 2 : strict.index("MAX") + 5] == ["LOAD", "1", "@__key"]
    relaxed, _ = searcher.tier_command((0, 2))  # color and the presence atom dropped
    after_sort = relaxed[relaxed.index("MAX") + 2 :]
    assert after_sort[:4] == ["LOAD", "2", "@__key", "@upper_clothes_color_shares"]
    plain = _Searcher(FakeStore(), atoms, Filters(), 10, 50)  # type: ignore[arg-type]
    assert "@upper_clothes_color_shares" not in plain.tier_command((0,))[0]


@pytest.mark.parametrize(
    ("row", "credit"),
    [
        ({"upper_clothes_color_shares": b"dark=0.5 red=0.3"}, 0.3),
        ({"upper_clothes_color_shares": "red=0.9"}, 0.5),  # a loser holds at most half
        ({"upper_clothes_color_shares": b"dark=0.5 blue=0.3"}, None),  # never seen in red
        ({}, None),  # written before shares were stored
        ({"upper_clothes_color_shares": b"red=x =0.2 dark"}, None),  # malformed: skipped
    ],
)
def test_near_miss_credit_reads_the_loaded_shares(row: dict, credit: float | None) -> None:
    from describeme.operators.retrieval import _Candidate

    atoms = build_atoms([Constraint(UP, color="red"), Constraint("pants", color="blue")])
    searcher = _Searcher(FakeStore(), atoms, Filters(), 10, near_miss=True)  # type: ignore[arg-type]
    cand = searcher.credit(_Candidate("k", (0,), 0.25), row)
    if credit is None:
        assert cand.near_misses == {} and cand.score == 0.25
    else:
        assert cand.near_misses == {0: credit}
        assert cand.score == pytest.approx(0.25 + credit / 2.0)
    off = _Searcher(FakeStore(), atoms, Filters(), 10)  # type: ignore[arg-type]
    assert off.credit(_Candidate("k", (0,), 0.25), row).score == 0.25


def test_page_tiers_keep_every_tier_that_reaches_the_page() -> None:
    from describeme.operators.retrieval import _Candidate, _page_tiers

    atoms = build_atoms([Constraint(UP, color="red"), Constraint("pants", color="blue")])
    ranked = [_Candidate("a", (), 0.9), _Candidate("b", (0,), 0.5), _Candidate("c", (1,), 0.4),
              _Candidate("d", (0, 1), 0.0)]  # fmt: skip
    assert [c.key for c in _page_tiers(ranked, atoms, 2)] == ["a", "b", "c"]  # whole tier 1
    assert [c.key for c in _page_tiers(ranked, atoms, 1)] == ["a"]
    assert len(_page_tiers(ranked, atoms, 10)) == 4
