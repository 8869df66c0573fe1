"""Retrieval's query text: parsed constraints -> atoms -> escaped RediSearch clauses.

Each constraint becomes *atoms*, one checkable condition each: a positive constraint gives
one atom per characteristic it fixes (``@upper_clothes_color:{red}``) or, with none, a presence
atom (``@parts:{upper_clothes}``); a negated constraint is one atom (``-(@hat_color:{red})``).
Every value passes through :func:`describeme.operators.store.build_tag_clause`, and field
names and numbers are generated here, so user text never reaches the query syntax. The tiers
that run these queries and rank their hits live in the sibling
:mod:`describeme.operators.retrieval`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from describeme.operators.query import Constraint, Filters
from describeme.operators.store import TAG_SEPARATOR, build_tag_clause, part_field, tag_safe

__all__ = ["Atom", "build_atoms", "build_filter_clause", "build_query"]


@dataclass(frozen=True)
class Atom:
    """One condition of a constraint.

    Attributes:
        label: human-readable, e.g. ``upper-clothes color=red`` or ``NOT hat``.
        clause: escaped RediSearch clause that holds when the atom holds.
        conf_field: numeric field whose value scores a holding atom (None: full weight).
        weight: the constraint's weight.
        checks: (field, value) pairs that all hold when the positive condition holds
            (field ``parts`` tests a group's presence), for scoring documents in Python.
        negated: the atom holds when the checks do *not* all hold.
        characteristic: ``(part, kind, value)`` of a positive characteristic atom, whose
            vote share ranks a track that fails it (see ``PartDescription.shares``).
    """

    label: str
    clause: str
    conf_field: str | None
    weight: float
    checks: tuple[tuple[str, str], ...]
    negated: bool = False
    characteristic: tuple[str, str, str] | None = None

    def holds(self, doc: dict[str, Any]) -> bool:
        """Whether the atom holds for a document's fields (str keys, bytes or str values)."""
        parts = set(_text(doc.get("parts", b"")).split(TAG_SEPARATOR))
        positive = all(value in parts if name == "parts" else _text(doc.get(name, b"")) == value
                       for name, value in self.checks)  # fmt: skip
        return positive != self.negated


_Clause = tuple[str, str, str, tuple[str, str], tuple[str, str, str] | None]


def _positive_clauses(constraint: Constraint) -> list[_Clause]:
    """(label, clause, conf_field, check, characteristic) per condition of ``constraint``."""
    part = constraint.part
    if not constraint.attributes:
        tag = part.replace("-", "_")
        return [(part, build_tag_clause("parts", [tag]), part_field(part, "presence"),
                 ("parts", tag), None)]  # fmt: skip
    return [(f"{part} {kind}={value}", build_tag_clause(part_field(part, kind), [value]),
             part_field(part, f"{kind}_conf"), (part_field(part, kind), value),
             (part, kind, value))
            for kind, value in constraint.attributes.items()]  # fmt: skip


def build_atoms(constraints: Sequence[Constraint]) -> list[Atom]:
    """The atoms of all constraints, in order (see the module docstring)."""
    atoms: list[Atom] = []
    for constraint in constraints:
        clauses = _positive_clauses(constraint)
        if constraint.negated:
            inner = " ".join(c[1] for c in clauses)
            checks = tuple(c[3] for c in clauses)
            atoms.append(Atom(constraint.describe(), f"-({inner})", None, constraint.weight,
                              checks, negated=True))  # fmt: skip
            continue
        for label, clause, conf, check, characteristic in clauses:
            atoms.append(Atom(label, clause, conf, constraint.weight, (check,),
                              characteristic=characteristic))  # fmt: skip
    return atoms


def build_filter_clause(filters: Filters) -> str:
    """Escaped camera and time clauses ("" when the filters are empty)."""
    clauses = []
    if filters.cameras:
        clauses.append(build_tag_clause("stream", [tag_safe(c) for c in filters.cameras]))
    if filters.since is not None:
        clauses.append(f"@last_seen_time:[{float(filters.since)!r} +inf]")
    if filters.until is not None:
        clauses.append(f"@first_seen_time:[-inf {float(filters.until)!r}]")
    return " ".join(clauses)


def build_query(atoms: Sequence[Atom], dropped: Sequence[int], filters: Filters) -> str:
    """The query of one tier: the filters and every atom not in ``dropped``.

    The dropped atoms are not negated in the query (a NOT clause walks every document id);
    tracks that meet them too belong to an earlier tier, which is complete by then, and are
    skipped by key.
    """
    dropped_set = set(dropped)
    parts = [a.clause for i, a in enumerate(atoms) if i not in dropped_set]
    text = " ".join([build_filter_clause(filters), *parts]).strip()
    return text or "*"


def _text(value: Any) -> str:
    return value.decode("utf-8") if isinstance(value, bytes) else str(value)
