"""The describer's per-track evidence records and their JSON (de)serialisation.

:class:`TrackEvidence` holds what :class:`~describeme.operators.describer.TrackDescriber`
has gathered about one track: per part group a :class:`GroupEvidence` (settled presence,
contrary streak, and :class:`Votes` for presence and characteristics), the best thumbnail and
what was last emitted. :func:`tracks_to_state` and :func:`tracks_from_state` turn them into
plain JSON types and back, so a stream can resume in another process. The voting rules that
fill these records live in the sibling module :mod:`describeme.operators.describer`.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, field, fields
from typing import Any

import numpy as np

from describeme.labels import CHARACTERISTICS

STATE_FORMAT = "describeme.track_describer/1"
VOTE_KINDS = ("color", "size", "pattern")  # the characteristics a group votes on


@dataclass
class Votes:
    """Weighted evidence for one part group over a run of frames."""

    seen: float = 0.0  # weight of frames where the host region was visible
    present: float = 0.0  # weight of those where the group was visible too
    count: int = 0  # number of such frames
    kinds: dict[str, np.ndarray] = field(
        default_factory=lambda: {k: np.zeros(len(CHARACTERISTICS[k])) for k in VOTE_KINDS}
    )

    def add(self, weight: float, present: bool, votes: dict[str, np.ndarray]) -> None:
        self.seen += weight
        self.count += 1
        if present:
            self.present += weight
            for kind, vote in votes.items():
                self.kinds[kind] += vote

    @property
    def presence(self) -> float:
        return self.present / self.seen if self.seen > 0 else 0.0


@dataclass
class GroupEvidence:
    """One part group of a track: its votes and the hysteresis on its presence."""

    votes: Votes = field(default_factory=Votes)
    pending: Votes = field(default_factory=Votes)  # evidence since a contrary streak began
    state: bool | None = None  # settled presence; None until min_observations
    streak: int = 0


@dataclass
class TrackEvidence:
    """Everything the describer keeps about one track (``groups`` keyed by group name)."""

    stream_id: str
    track_id: int
    first_seen: float
    first_seen_time: float
    first_frame: int
    last_seen: float = 0.0
    last_seen_time: float = 0.0
    last_frame: int = 0
    num_observations: int = 0
    groups: dict[str, GroupEvidence] = field(default_factory=dict)
    thumbnail: bytes | None = None
    quality: float = -1.0
    appeared: bool = False
    lost_reported: bool = False
    last_emitted_frame: int = -1
    last_signature: tuple = ()
    changes: list[str] = field(default_factory=list)  # flips not yet reported


def tracks_to_state(tracks: list[TrackEvidence]) -> dict[str, Any]:
    """All tracks' evidence as plain JSON types, tagged with :data:`STATE_FORMAT`."""
    return {"format": STATE_FORMAT, "tracks": [_track_to_state(track) for track in tracks]}


def tracks_from_state(state: dict[str, Any]) -> list[TrackEvidence]:
    """Restores :func:`tracks_to_state` output; raises ``ValueError`` on another format."""
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        found = state.get("format") if isinstance(state, dict) else type(state).__name__
        raise ValueError(f"describer state must have format {STATE_FORMAT!r}, got {found!r}")
    return [_track_from_state(item) for item in state["tracks"]]


def _votes_to_state(votes: Votes) -> dict[str, Any]:
    return {
        "seen": votes.seen,
        "present": votes.present,
        "count": votes.count,
        "kinds": {kind: values.tolist() for kind, values in votes.kinds.items()},
    }


def _votes_from_state(state: dict[str, Any]) -> Votes:
    kinds = {kind: np.asarray(state["kinds"][kind], dtype=np.float64) for kind in VOTE_KINDS}
    return Votes(float(state["seen"]), float(state["present"]), int(state["count"]), kinds)


def _track_to_state(track: TrackEvidence) -> dict[str, Any]:
    state = {f.name: getattr(track, f.name) for f in fields(track)}
    state["groups"] = {
        name: {
            "votes": _votes_to_state(group.votes),
            "pending": _votes_to_state(group.pending),
            "state": group.state,
            "streak": group.streak,
        }
        for name, group in track.groups.items()
    }
    thumbnail = track.thumbnail
    state["thumbnail"] = None if thumbnail is None else base64.b64encode(thumbnail).decode("ascii")
    state["last_signature"] = _to_lists(track.last_signature)
    state["changes"] = list(track.changes)
    return state


def _track_from_state(state: dict[str, Any]) -> TrackEvidence:
    values = dict(state)
    values["groups"] = {
        name: GroupEvidence(
            _votes_from_state(group["votes"]),
            _votes_from_state(group["pending"]),
            group["state"],
            int(group["streak"]),
        )
        for name, group in state["groups"].items()
    }
    thumbnail = state.get("thumbnail")
    values["thumbnail"] = None if thumbnail is None else base64.b64decode(thumbnail)
    values["last_signature"] = _to_tuples(state.get("last_signature", []))
    return TrackEvidence(**values)


def _to_lists(value: Any) -> Any:
    return [_to_lists(v) for v in value] if isinstance(value, (tuple, list)) else value


def _to_tuples(value: Any) -> Any:
    return tuple(_to_tuples(v) for v in value) if isinstance(value, list) else value
