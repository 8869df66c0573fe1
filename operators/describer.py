"""Per-track descriptions: temporal votes of part characteristics, thumbnail, change events.

For every tracked person in a :class:`~describeme.messages.TrackedFrame` the describer adds
the frame's evidence to its track, per part group of ``labels.DESCRIPTION_GROUPS`` (left and
right shoes merge into "shoes"):

- **Presence** is a weighted fraction over the frames in which the group's *host region* was
  visible: pants are judged only when some of the legs/lower garments are visible, shoes only
  when feet are. A leg cut off by the image border or hidden behind a car is no evidence that
  the person wears no pants; a visible pair of legs without pants is.
- **Characteristics** (color, size, pattern) are votes ``sum(w * part_score * part_area *
  distribution)`` over frames, ``w`` being the observation's QAM quality (detection score when
  the parser gives no quality). The winner excludes class 0 ("none"); its confidence is its
  share of the whole vote, and every value with at least ``SHARE_FLOOR`` of the vote is kept
  in the part's ``shares`` (search credits a runner-up that was asked for).
- **Changes**: once a group's presence is settled, ``change_frames`` consecutive contrary
  observations flip it ("coat: present -> absent"), emit a ``changed`` event, and restart the
  group's votes from the evidence of the flip period, so the description follows the person.

Descriptions go out when a track first has ``min_observations`` observations (with an
``appeared`` event), whenever what the sentence says changes, every ``update_every`` frames,
and once more with ``final=True`` when the tracker ends the track. The evidence records and
their JSON state live in the sibling :mod:`describeme.operators.describer_state`.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
from pydantic import Field

from describeme import labels
from describeme.config import StrictModel
from describeme.labels import CHARACTERISTICS, DESCRIPTION_GROUPS, NUM_PARTS
from describeme.messages import (
    SHARE_FLOOR,
    PartDescription,
    TrackDescription,
    TrackedFrame,
    TrackEvent,
)
from describeme.operators import describer_state
from describeme.operators.describer_state import (
    VOTE_KINDS,
    GroupEvidence,
    TrackEvidence,
    Votes,
    tracks_from_state,
    tracks_to_state,
)
from describeme.operators.sentence import describe_sentence
from describeme.types import Persons

log = logging.getLogger(__name__)

_HEAD = (labels.HAT, labels.HAIR, labels.GLASSES, labels.FACE_MASK, labels.FACE)
_TORSO = (
    labels.UPPER_CLOTHES,
    labels.COAT,
    labels.TORSO_SKIN,
    labels.SCARF_TIE,
    labels.LEFT_ARM,
    labels.RIGHT_ARM,
)
_LEGS = (labels.PANTS, labels.SKIRT, labels.LEFT_LEG, labels.RIGHT_LEG)
_FEET = (labels.SOCKS, labels.LEFT_SHOE, labels.RIGHT_SHOE)
_BODY = tuple(range(1, NUM_PARTS))
# The body region whose visibility makes a frame evidence for or against a group.
HOST_REGIONS: dict[str, tuple[int, ...]] = {
    "hat": _HEAD, "hair": _HEAD, "glasses": _HEAD, "face-mask": _HEAD,
    "upper-clothes": _TORSO, "coat": _TORSO, "scarf-tie": _TORSO,
    "glove": (labels.GLOVE, labels.LEFT_ARM, labels.RIGHT_ARM),
    "pants": _LEGS, "skirt": _LEGS, "socks": _FEET, "shoes": _FEET,
    "bag": _BODY, "others": _BODY,
}  # fmt: skip
# Accessories that cover a small share of their host region even when plainly there.
_SMALL_GROUPS = {"glasses": 0.2, "face-mask": 0.5, "glove": 0.5}  # x min_part_fraction
_HAS_KIND = {
    "color": labels.PART_HAS_COLOR,
    "size": labels.PART_HAS_SIZE,
    "pattern": labels.PART_HAS_PATTERN,
}


class TrackDescriber:
    """Accumulates per-track evidence and emits descriptions and events.

    Args:
        min_observations: observations before a track is described (and a group's presence
            is settled); filters tracker flicker.
        change_frames: consecutive contrary observations that flip a part's presence.
        update_every: frames between periodic re-sends of an unchanged description.
        presence_threshold: presence share above which a part is described.
        min_part_fraction: a group counts as visible in a frame when its area is at least
            this fraction of its host region's area (a fifth of it for glasses, half for
            face masks and gloves).
        min_host_pixels: host regions smaller than this are treated as not visible.
        min_confidence: characteristics with a smaller vote share are left out of sentences.
        lost_frames: frames without an observation before a ``lost`` event.
        forget_after_frames: a track unseen this long is finalised even if the tracker never
            reported its end (guards memory against a missing ``ended_tracks``).
    """

    def __init__(
        self,
        *,
        min_observations: int = 3,
        change_frames: int = 15,
        update_every: int = 30,
        presence_threshold: float = 0.5,
        min_part_fraction: float = 0.05,
        min_host_pixels: float = 30.0,
        min_confidence: float = 0.3,
        lost_frames: int = 10,
        forget_after_frames: int = 1000,
    ) -> None:
        for name, value in (("min_observations", min_observations),
                            ("change_frames", change_frames), ("update_every", update_every),
                            ("lost_frames", lost_frames),
                            ("forget_after_frames", forget_after_frames)):  # fmt: skip
            if value < 1:
                raise ValueError(f"{name} must be >= 1, got {value}")
        for name, fraction in (("presence_threshold", presence_threshold),
                               ("min_part_fraction", min_part_fraction),
                               ("min_confidence", min_confidence)):  # fmt: skip
            if not 0.0 <= fraction <= 1.0:
                raise ValueError(f"{name} must lie in [0, 1], got {fraction}")
        if min_host_pixels < 0:
            raise ValueError(f"min_host_pixels must be >= 0, got {min_host_pixels}")
        self.min_observations = int(min_observations)
        self.change_frames = int(change_frames)
        self.update_every = int(update_every)
        self.presence_threshold = float(presence_threshold)
        self.min_part_fraction = float(min_part_fraction)
        self.min_host_pixels = float(min_host_pixels)
        self.min_confidence = float(min_confidence)
        self.lost_frames = int(lost_frames)
        self.forget_after_frames = int(forget_after_frames)
        self.reset()

    def reset(self) -> None:
        """Forgets every track."""
        self._tracks: dict[tuple[str, int], TrackEvidence] = {}

    @property
    def num_tracks(self) -> int:
        return len(self._tracks)

    STATE_FORMAT = describer_state.STATE_FORMAT

    def state_dict(self) -> dict[str, Any]:
        """All accumulated evidence as plain JSON types, so a stream can resume elsewhere."""
        return tracks_to_state(list(self._tracks.values()))

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restores :meth:`state_dict` output; raises ``ValueError`` on another format."""
        tracks = tracks_from_state(state)
        self._tracks = {(t.stream_id, t.track_id): t for t in tracks}

    def update(self, frame: TrackedFrame) -> tuple[list[TrackDescription], list[TrackEvent]]:
        """Adds one tracked frame's evidence.

        Args:
            frame: persons with ``track_id`` set (ids < 0 are ignored), optional thumbnails,
                and the ids the tracker ended at this frame.

        Returns:
            The descriptions to upsert (new, changed, periodic, final) and the events.
        """
        if not isinstance(frame, TrackedFrame):
            raise TypeError(f"update expects TrackedFrame, got {type(frame).__name__}")
        persons = frame.persons
        ids = persons.track_id.tolist()  # type: ignore[union-attr]  # set in __post_init__
        tracked = [i for i, tid in enumerate(ids) if tid >= 0]
        if len({ids[i] for i in tracked}) != len(tracked):
            raise ValueError(f"frame {frame.frame_index} of {frame.stream_id!r} repeats a track id")
        descriptions: list[TrackDescription] = []
        events: list[TrackEvent] = []
        for index in tracked:
            track = self._observe(frame, index)
            self._after_observation(frame, track, descriptions, events)
        self._check_absent(frame, events)
        ended = [(frame.stream_id, tid) for tid in frame.ended_tracks]
        ended += [
            key
            for key, track in self._tracks.items()
            if key[0] == frame.stream_id
            and frame.frame_index - track.last_frame > self.forget_after_frames
        ]
        for key in dict.fromkeys(ended):
            self._finalise(key, frame.frame_index, frame.pts, descriptions, events)
        return descriptions, events

    def finish(self, stream_id: str) -> tuple[list[TrackDescription], list[TrackEvent]]:
        """Ends every track of a stream (end of an archive): final descriptions and events."""
        descriptions: list[TrackDescription] = []
        events: list[TrackEvent] = []
        for key in [k for k in self._tracks if k[0] == stream_id]:
            track = self._tracks[key]
            self._finalise(key, track.last_frame, track.last_seen, descriptions, events)
        return descriptions, events

    # ------------------------------------------------------------------ evidence
    def _observe(self, frame: TrackedFrame, index: int) -> TrackEvidence:
        persons = frame.persons
        track_id = int(persons.track_id[index])  # type: ignore[index]
        key = (frame.stream_id, track_id)
        track = self._tracks.get(key)
        if track is None:
            track = TrackEvidence(
                frame.stream_id, track_id, frame.pts, frame.capture_time, frame.frame_index,
                groups={name: GroupEvidence() for name in HOST_REGIONS},
            )  # fmt: skip
            self._tracks[key] = track
        track.last_seen = max(track.last_seen, frame.pts, track.first_seen)
        track.last_seen_time = frame.capture_time
        track.last_frame = frame.frame_index
        track.num_observations += 1
        track.lost_reported = False
        weight = _observation_weight(persons, index)
        if frame.thumbnails is not None and frame.thumbnails[index] is not None:
            if weight > track.quality:
                track.thumbnail, track.quality = frame.thumbnails[index], weight
        if persons.part_area is not None:
            self._add_part_evidence(track, persons, index, weight)
        return track

    def _add_part_evidence(
        self, track: TrackEvidence, persons: Persons, index: int, weight: float
    ) -> None:
        # A model's NaN or negative output must not poison a track's evidence for good.
        area = _clean(persons.part_area[index])  # type: ignore[index]
        part_score = persons.part_score
        score = np.ones(NUM_PARTS) if part_score is None else _clean(part_score[index])
        for name, group in track.groups.items():
            host_area = float(area[list(HOST_REGIONS[name])].sum())
            if host_area < max(self.min_host_pixels, 1e-9):
                continue  # host region not visible: no evidence either way
            parts = list(DESCRIPTION_GROUPS[name])
            group_area = float(area[parts].sum())
            fraction = self.min_part_fraction * _SMALL_GROUPS.get(name, 1.0)
            present = group_area > 0 and group_area >= fraction * host_area
            votes = {}
            if present:
                for kind in VOTE_KINDS:
                    dist = getattr(persons, kind)
                    if dist is not None and parts[0] in _HAS_KIND[kind]:
                        part_weight = area[parts] * score[parts]  # (P,)
                        votes[kind] = weight * part_weight @ _clean(dist[index, parts])
            group.votes.add(weight, present, votes)
            self._track_change(track, name, group, weight, present, votes)

    def _track_change(
        self,
        track: TrackEvidence,
        name: str,
        group: GroupEvidence,
        weight: float,
        present: bool,
        votes: dict[str, np.ndarray],
    ) -> None:
        """Hysteresis on a group's presence; a flip restarts its votes from the streak."""
        if group.state is None:
            if group.votes.count >= self.min_observations:
                group.state = group.votes.presence >= self.presence_threshold
            return
        if present == group.state:
            group.streak, group.pending = 0, Votes()
            return
        group.streak += 1
        group.pending.add(weight, present, votes)
        if group.streak >= self.change_frames:
            track.changes.append(f"{name}: {_word(group.state)} -> {_word(present)}")
            group.state, group.votes = present, group.pending
            group.streak, group.pending = 0, Votes()

    # ------------------------------------------------------------------ output
    def _after_observation(
        self,
        frame: TrackedFrame,
        track: TrackEvidence,
        descriptions: list[TrackDescription],
        events: list[TrackEvent],
    ) -> None:
        changes, track.changes = track.changes, []
        if not track.appeared:
            if track.num_observations < self.min_observations:
                return
            track.appeared = True
            events.append(self._event(frame, track, "appeared"))
        else:
            events.extend(self._event(frame, track, "changed", c) for c in changes)
        description = self._describe(track, frame.frame_index, frame.pts, final=False)
        signature = (
            description.sentence,
            tuple((p.part, p.color, p.size, p.pattern) for p in description.parts),
        )
        due = frame.frame_index - track.last_emitted_frame >= self.update_every
        if signature != track.last_signature or due or changes:
            track.last_signature, track.last_emitted_frame = signature, frame.frame_index
            descriptions.append(description)

    def _check_absent(self, frame: TrackedFrame, events: list[TrackEvent]) -> None:
        for (stream_id, _), track in self._tracks.items():
            if stream_id != frame.stream_id or not track.appeared or track.lost_reported:
                continue
            if frame.frame_index - track.last_frame >= self.lost_frames:
                track.lost_reported = True
                events.append(self._event(frame, track, "lost"))

    def _finalise(
        self,
        key: tuple[str, int],
        frame_index: int,
        pts: float,
        descriptions: list[TrackDescription],
        events: list[TrackEvent],
    ) -> None:
        track = self._tracks.pop(key, None)
        if track is None or not track.appeared:
            return  # never described: tracker flicker, nothing to close
        descriptions.append(self._describe(track, frame_index, pts, final=True))
        events.append(TrackEvent(key[0], track.track_id, frame_index, pts, "ended"))

    def _describe(
        self, track: TrackEvidence, frame_index: int, pts: float, *, final: bool
    ) -> TrackDescription:
        parts = self._part_descriptions(track)
        return TrackDescription(
            stream_id=track.stream_id, track_id=track.track_id,
            frame_index=frame_index, pts=pts, first_seen=track.first_seen,
            last_seen=track.last_seen, first_seen_time=track.first_seen_time,
            last_seen_time=track.last_seen_time, parts=parts,
            # The parts are already the presence decision (hysteresis included).
            sentence=describe_sentence(parts, min_presence=0.0,
                                       min_confidence=self.min_confidence),
            thumbnail=track.thumbnail, quality=max(track.quality, 0.0),
            num_observations=track.num_observations, final=final,
        )  # fmt: skip

    def _part_descriptions(self, track: TrackEvidence) -> list[PartDescription]:
        """Voted description of each group judged present (settled state, else majority)."""
        out = []
        for name, group in track.groups.items():
            presence = group.votes.presence
            # Once settled, the hysteresis state decides, so alternating noise cannot toggle
            # a part in and out of the description.
            described = presence >= self.presence_threshold if group.state is None else group.state
            if group.votes.seen <= 0 or not described:
                continue
            fields: dict[str, object] = {}
            shares: dict[str, dict[str, float]] = {}
            for kind in VOTE_KINDS:
                vote = group.votes.kinds[kind]
                total = float(vote.sum())
                if DESCRIPTION_GROUPS[name][0] not in _HAS_KIND[kind] or vote[1:].sum() <= 0:
                    continue
                winner = int(np.argmax(vote[1:])) + 1
                fields[kind] = CHARACTERISTICS[kind][winner]
                fields[f"{kind}_confidence"] = float(vote[winner] / total)
                shares[kind] = {CHARACTERISTICS[kind][i]: round(float(vote[i] / total), 3)
                                for i in np.argsort(-vote[1:]) + 1
                                if vote[i] / total >= SHARE_FLOOR}  # fmt: skip
            out.append(PartDescription(part=name, presence=float(presence), shares=shares,
                                       **fields))  # type: ignore[arg-type]
        return out

    @staticmethod
    def _event(
        frame: TrackedFrame, track: TrackEvidence, kind: str, detail: str = ""
    ) -> TrackEvent:
        return TrackEvent(
            frame.stream_id, track.track_id, frame.frame_index, frame.pts, kind, detail
        )


def _word(present: bool) -> str:
    return "present" if present else "absent"


def _clean(values: np.ndarray) -> np.ndarray:
    """float64 copy with NaN/inf and negatives set to 0."""
    return np.clip(np.nan_to_num(values.astype(np.float64), nan=0.0, posinf=0.0), 0.0, None)


def _observation_weight(persons: Persons, index: int) -> float:
    """QAM quality of the observation, the detection score when there is none."""
    value = persons.quality[index] if persons.quality is not None else persons.score[index]
    # A floor keeps a zero-quality observation from erasing the frame's evidence entirely.
    return float(np.clip(np.nan_to_num(value, nan=0.0), 1e-3, 1.0))


class DescriberConfig(StrictModel):
    """YAML section for :class:`TrackDescriber` (same names as its arguments)."""

    min_observations: int = Field(default=3, ge=1)
    change_frames: int = Field(default=15, ge=1)  # about half a second at 30 fps: a real change
    update_every: int = Field(default=30, ge=1)
    presence_threshold: float = Field(default=0.5, ge=0.0, le=1.0)
    min_part_fraction: float = Field(default=0.05, ge=0.0, le=1.0)
    min_host_pixels: float = Field(default=30.0, ge=0.0)
    min_confidence: float = Field(default=0.3, ge=0.0, le=1.0)
    lost_frames: int = Field(default=10, ge=1)
    forget_after_frames: int = Field(default=1000, ge=1)


def build_describer(config: DescriberConfig | None = None) -> TrackDescriber:
    """Builds a describer from its config section (defaults when ``None``)."""
    config = config or DescriberConfig()
    return TrackDescriber(**config.model_dump())
