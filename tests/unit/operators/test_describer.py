"""Tests for operators.describer (temporal votes, presence, changes) and operators.sentence."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pydantic import ValidationError

from describeme import labels as L
from describeme.messages import PartDescription, TrackedFrame
from describeme.operators.describer import DescriberConfig, TrackDescriber, build_describer
from describeme.operators.sentence import describe_sentence
from describeme.types import Persons

# part id -> (area px, color id, size id, pattern id); one-hot distributions.
DRESSED = {
    L.HAIR: (200, L.COLOR_ID["dark"], L.SIZE_ID["short"], 0),
    L.FACE: (150, 0, 0, 0),
    L.UPPER_CLOTHES: (800, L.COLOR_ID["red"], L.SIZE_ID["short"], L.PATTERN_ID["letters"]),
    L.LEFT_ARM: (100, 0, 0, 0),
    L.PANTS: (700, L.COLOR_ID["blue"], L.SIZE_ID["long"], L.PATTERN_ID["solid"]),
    L.LEFT_SHOE: (60, L.COLOR_ID["dark"], 0, L.PATTERN_ID["solid"]),
    L.RIGHT_SHOE: (60, L.COLOR_ID["dark"], 0, L.PATTERN_ID["solid"]),
}
COAT = {L.COAT: (900, L.COLOR_ID["green"], L.SIZE_ID["long"], L.PATTERN_ID["solid"])}


def _evidence(parts: dict, quality: float = 0.9, color: dict | None = None) -> dict:
    area = np.zeros((L.NUM_PARTS,), np.float32)
    counts = {"color": L.NUM_COLORS, "size": L.NUM_SIZES, "pattern": L.NUM_PATTERNS}
    dists = {k: np.zeros((L.NUM_PARTS, n), np.float32) for k, n in counts.items()}
    for part, (pixels, c, s, p) in parts.items():
        area[part] = pixels
        dists["color"][part, c] = 1
        dists["size"][part, s] = 1
        dists["pattern"][part, p] = 1
    for part, distribution in (color or {}).items():
        dists["color"][part] = distribution
    return {"part_area": area, "quality": quality, **dists}


def _frame(
    index: int,
    people: list[tuple[int, dict]],
    stream: str = "cam",
    ended=(),
    thumbnails: list | None = None,
) -> TrackedFrame:
    n = len(people)
    fields = {
        k: np.stack([e[k] for _, e in people]) if n else None
        for k in ("part_area", "color", "size", "pattern")
    }
    persons = Persons(
        xyxy=np.tile(np.array([[0, 0, 50, 100]], np.float32), (n, 1)),
        score=np.ones(n, np.float32),
        track_id=np.array([tid for tid, _ in people], np.int64),
        quality=np.array([e["quality"] for _, e in people], np.float32),
        part_score=np.ones((n, L.NUM_PARTS), np.float32),
        **fields,
    )
    return TrackedFrame(
        stream,
        index,
        index / 25,
        1000.0 + index,
        (100, 50),
        persons,
        thumbnails=thumbnails,
        ended_tracks=list(ended),
    )


def _feed(describer: TrackDescriber, sequence: list[dict], track_id: int = 0, start: int = 0):
    descriptions, events = [], []
    for offset, evidence in enumerate(sequence):
        d, e = describer.update(_frame(start + offset, [(track_id, evidence)]))
        descriptions += d
        events += e
    return descriptions, events


def _parts(description) -> dict[str, PartDescription]:
    return {p.part: p for p in description.parts}


# ---------------------------------------------------------------- sentence
P = PartDescription
HAIR = P("hair", 1.0, "dark", 1.0, "short", 1.0)
TOP = P("upper-clothes", 1.0, "red", 0.9, "short", 0.8, "letters", 0.7)
PANTS = P("pants", 0.9, "blue", 1.0, "long", 1.0, "solid", 1.0)
SHOES = P("shoes", 1.0, "dark", 1.0)


@pytest.mark.parametrize(
    ("parts", "kwargs", "expected"),
    [
        (
            [HAIR, TOP, PANTS, SHOES],
            {},
            "person with short dark hair, red short-sleeved lettered top, blue long pants, "
            "dark shoes",
        ),
        ([], {}, "person"),
        ([P("pants", 0.4, "blue", 1.0)], {}, "person"),  # below min_presence
        ([P("pants", 0.4, "blue", 1.0)], {"min_presence": 0.3}, "person with blue pants"),
        ([TOP], {"min_confidence": 0.75}, "person with red short-sleeved top"),
        ([P("hair", 1.0, "dark", 1.0, "sparse", 1.0)], {}, "person with bald head"),
        (
            [P("coat", 1.0, "medium", 1.0, "long", 1.0, "geometrical", 1.0)],
            {},
            "person with grey long geometric-patterned coat",
        ),
        (
            [P("bag", 1.0, "multicolor", 1.0, "undetermined", 1.0, "solid", 1.0)],
            {},
            "person with multicolored bag",
        ),
        ([P("glasses", 1.0, "none", 1.0)], {}, "person with glasses"),
        ([P("others", 1.0, "red", 1.0)], {}, "person"),  # too vague to say
    ],
)
def test_describe_sentence_table(parts: list, kwargs: dict, expected: str) -> None:
    assert describe_sentence(parts, **kwargs) == expected


def test_describe_sentence_orders_head_to_feet_whatever_the_input_order() -> None:
    parts = [SHOES, PANTS, TOP, HAIR, P("coat", 1.0, "green", 1.0)]
    expected = describe_sentence(parts)
    for seed in range(5):
        random.Random(seed).shuffle(parts)
        assert describe_sentence(parts) == expected
    assert expected.index("hair") < expected.index("coat") < expected.index("top")


@pytest.mark.parametrize(
    ("parts", "error", "message"),
    [
        ([P("cape", 1.0)], ValueError, "unknown part group 'cape'"),
        ([P("pants", 1.0, "teal", 1.0)], ValueError, "unknown color 'teal'"),
        ([P("pants", 1.0, size="huge")], ValueError, "unknown size 'huge'"),
        ([HAIR, HAIR], ValueError, "described twice"),
        (["hair"], TypeError, "expects PartDescription"),
    ],
)
def test_describe_sentence_rejects_bad_parts(parts: list, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        describe_sentence(parts)


# ---------------------------------------------------------------- describer
def test_describes_after_min_observations_with_appeared_event() -> None:
    describer = TrackDescriber(min_observations=3)
    descriptions, events = _feed(describer, [_evidence(DRESSED)] * 3)
    assert [e.kind for e in events] == ["appeared"]
    assert events[0].frame_index == 2
    assert len(descriptions) == 1
    assert descriptions[0].sentence == (
        "person with short dark hair, red short-sleeved lettered top, blue long pants, dark shoes"
    )
    assert descriptions[0].num_observations == 3 and not descriptions[0].final


def test_vote_is_area_and_quality_weighted() -> None:
    red = {L.PANTS: (800, L.COLOR_ID["red"], L.SIZE_ID["long"], 1), L.LEFT_LEG: (10, 0, 0, 0)}
    blue = {L.PANTS: (200, L.COLOR_ID["blue"], L.SIZE_ID["long"], 1), L.LEFT_LEG: (10, 0, 0, 0)}
    describer = TrackDescriber(min_observations=1, update_every=1)
    # Two small, confident blue frames against one large, lower-quality red frame.
    sequence = [_evidence(red, 0.5)] + [_evidence(blue, 0.9)] * 2
    descriptions, _ = _feed(describer, sequence)
    pants = _parts(descriptions[-1])["pants"]
    red_vote, blue_vote = 800 * 0.5, 2 * 200 * 0.9
    assert pants.color == "red"
    assert pants.color_confidence == pytest.approx(red_vote / (red_vote + blue_vote))
    assert pants.size == "long" and pants.size_confidence == pytest.approx(1.0)


def test_soft_distributions_and_none_class_share() -> None:
    soft = np.zeros(L.NUM_COLORS, np.float32)
    soft[[0, L.COLOR_ID["red"], L.COLOR_ID["blue"]]] = (0.2, 0.5, 0.3)
    evidence = _evidence(DRESSED, color={L.PANTS: soft})
    describer = TrackDescriber(min_observations=2)
    descriptions, _ = _feed(describer, [evidence] * 2)
    pants = _parts(descriptions[-1])["pants"]
    assert pants.color == "red"  # "none" never wins, but its mass counts in the share
    assert pants.color_confidence == pytest.approx(0.5)


def test_shares_keep_the_runner_up_values_above_the_floor() -> None:
    soft = np.zeros(L.NUM_COLORS, np.float32)
    soft[[0, L.COLOR_ID["dark"], L.COLOR_ID["blue"], L.COLOR_ID["green"]]] = (0.2, 0.45, 0.32, 0.03)
    describer = TrackDescriber(min_observations=2)
    descriptions, _ = _feed(describer, [_evidence(DRESSED, color={L.PANTS: soft})] * 2)
    pants = _parts(descriptions[-1])["pants"]
    # Winner first, the runner-up kept, green (3% < SHARE_FLOOR) and "none" left out.
    assert list(pants.shares["color"].items()) == [("dark", 0.45), ("blue", 0.32)]
    assert pants.shares["color"]["dark"] == pytest.approx(pants.color_confidence, abs=1e-3)
    assert pants.shares["size"] == {"long": 1.0} and pants.shares["pattern"] == {"solid": 1.0}
    shoes = _parts(descriptions[-1])["shoes"]
    assert "size" not in shoes.shares  # shoes of DRESSED carry no size


def test_occluded_legs_are_not_evidence_against_pants() -> None:
    upper_only = {k: v for k, v in DRESSED.items() if k in (L.HAIR, L.FACE, L.UPPER_CLOTHES)}
    describer = TrackDescriber(min_observations=3, change_frames=5, update_every=1)
    descriptions, events = _feed(describer, [_evidence(DRESSED)] * 3 + [_evidence(upper_only)] * 20)
    pants = _parts(descriptions[-1])["pants"]
    assert pants.presence == pytest.approx(1.0)
    assert "changed" not in [e.kind for e in events]
    assert "blue long pants" in descriptions[-1].sentence


def test_visible_bare_legs_are_evidence_of_no_pants() -> None:
    shorts_off = {k: v for k, v in DRESSED.items() if k != L.PANTS}
    shorts_off[L.LEFT_LEG] = (300, 0, 0, 0)
    describer = TrackDescriber(min_observations=3, change_frames=5, update_every=1)
    descriptions, events = _feed(describer, [_evidence(DRESSED)] * 3 + [_evidence(shorts_off)] * 5)
    assert [e.detail for e in events if e.kind == "changed"] == ["pants: present -> absent"]
    assert "pants" not in _parts(descriptions[-1])


@pytest.mark.parametrize(("coat_off_frames", "changed"), [(4, False), (5, True), (12, True)])
def test_coat_removed_only_after_sustained_evidence(coat_off_frames: int, changed: bool) -> None:
    describer = TrackDescriber(min_observations=3, change_frames=5, update_every=1000)
    with_coat = _evidence({**DRESSED, **COAT})
    sequence = [with_coat] * 10 + [_evidence(DRESSED)] * coat_off_frames
    descriptions, events = _feed(describer, sequence)
    details = [e.detail for e in events if e.kind == "changed"]
    assert details == (["coat: present -> absent"] if changed else [])
    last = descriptions[-1]
    assert ("coat" in _parts(last)) is not changed
    assert ("green long coat" in last.sentence) is not changed
    if changed:  # the change itself triggers a description at the flip frame
        assert last.frame_index == 10 + 4


def test_flicker_does_not_toggle_a_part() -> None:
    describer = TrackDescriber(min_observations=3, change_frames=3, update_every=1)
    with_coat, without = _evidence({**DRESSED, **COAT}), _evidence(DRESSED)
    sequence = [with_coat] * 6 + [without, without, with_coat] * 5
    descriptions, events = _feed(describer, sequence)
    assert not [e for e in events if e.kind == "changed"]
    assert "coat" in _parts(descriptions[-1])


@pytest.mark.parametrize(
    ("part", "pixels", "host_pixels", "present"),
    [
        (L.GLASSES, 15, 600, True),  # 2.5 % of the head: small accessories count
        (L.GLASSES, 3, 600, False),
        (L.PANTS, 15, 600, False),  # 2.5 % of the legs: a stray blob, not pants
        (L.PANTS, 60, 600, True),
    ],
)
def test_min_part_fraction_per_group(
    part: int, pixels: int, host_pixels: int, present: bool
) -> None:
    host = L.FACE if part == L.GLASSES else L.LEFT_LEG
    evidence = _evidence({part: (pixels, L.COLOR_ID["dark"], 0, 1), host: (host_pixels, 0, 0, 0)})
    describer = TrackDescriber(min_observations=1, min_part_fraction=0.05)
    descriptions, _ = _feed(describer, [evidence])
    group = "glasses" if part == L.GLASSES else "pants"
    assert (group in _parts(descriptions[0])) is present


def test_left_and_right_shoes_merge_into_one_group() -> None:
    left = {L.LEFT_SHOE: (60, L.COLOR_ID["dark"], 0, 1)}
    right = {L.RIGHT_SHOE: (60, L.COLOR_ID["dark"], 0, 1)}
    describer = TrackDescriber(min_observations=2)
    descriptions, _ = _feed(describer, [_evidence(left), _evidence(right)])
    parts = _parts(descriptions[-1])
    assert list(parts) == ["shoes"] and parts["shoes"].presence == pytest.approx(1.0)


def test_characteristic_a_part_cannot_carry_is_none() -> None:
    patterned_hair = {L.HAIR: (200, L.COLOR_ID["dark"], L.SIZE_ID["long"], 2)}
    describer = TrackDescriber(min_observations=1)
    descriptions, _ = _feed(describer, [_evidence(patterned_hair)])
    hair = _parts(descriptions[0])["hair"]
    assert (hair.color, hair.size, hair.pattern) == ("dark", "long", None)


def test_best_thumbnail_times_and_counts() -> None:
    describer = TrackDescriber(min_observations=1, update_every=1)
    qualities = [0.3, 0.8, 0.5, 0.95]
    thumbnails = [b"a", b"b", b"c", None]  # the best observation has no thumbnail
    last = None
    for index, (quality, thumb) in enumerate(zip(qualities, thumbnails, strict=True)):
        frame = _frame(index + 10, [(7, _evidence(DRESSED, quality))], thumbnails=[thumb])
        last = describer.update(frame)[0][-1]
    assert last.thumbnail == b"b" and last.quality == pytest.approx(0.8)
    assert (last.first_seen, last.last_seen) == pytest.approx((10 / 25, 13 / 25))
    assert (last.first_seen_time, last.last_seen_time) == (1010.0, 1013.0)
    assert last.num_observations == 4 and last.track_id == 7


def test_periodic_resend_and_no_resend_when_unchanged() -> None:
    describer = TrackDescriber(min_observations=1, update_every=10)
    descriptions, _ = _feed(describer, [_evidence(DRESSED)] * 25)
    assert [d.frame_index for d in descriptions] == [0, 10, 20]


def test_ended_track_gets_final_description_and_is_forgotten() -> None:
    describer = TrackDescriber(min_observations=2)
    _feed(describer, [_evidence(DRESSED)] * 3, track_id=4)
    _feed(describer, [_evidence(DRESSED)] * 1, track_id=5, start=3)  # never described
    descriptions, events = describer.update(_frame(9, [], ended=[4, 5]))
    assert [(d.track_id, d.final, d.frame_index) for d in descriptions] == [(4, True, 9)]
    assert [(e.track_id, e.kind) for e in events] == [(4, "ended")]
    assert describer.num_tracks == 0


def test_lost_event_once_and_again_after_reappearing() -> None:
    describer = TrackDescriber(min_observations=1, lost_frames=3)
    _feed(describer, [_evidence(DRESSED)])
    kinds = []
    for index in range(1, 6):
        kinds.append([e.kind for e in describer.update(_frame(index, []))[1]])
    assert kinds == [[], [], ["lost"], [], []]
    describer.update(_frame(6, [(0, _evidence(DRESSED))]))
    later = [describer.update(_frame(i, []))[1] for i in range(7, 10)]
    assert [e.kind for events in later for e in events] == ["lost"]


def test_forgets_tracks_whose_end_never_arrives() -> None:
    describer = TrackDescriber(min_observations=1, forget_after_frames=5)
    _feed(describer, [_evidence(DRESSED)])
    descriptions, events = describer.update(_frame(6, []))
    assert [d.final for d in descriptions] == [True]
    assert "ended" in [e.kind for e in events] and describer.num_tracks == 0


def test_untracked_persons_ignored_and_streams_kept_apart() -> None:
    describer = TrackDescriber(min_observations=1)
    red = _evidence({L.PANTS: (500, L.COLOR_ID["red"], 2, 1)})
    blue = _evidence({L.PANTS: (500, L.COLOR_ID["blue"], 2, 1)})
    a, _ = describer.update(_frame(0, [(0, red), (-1, blue)], stream="a"))
    b, _ = describer.update(_frame(0, [(0, blue)], stream="b"))
    assert [(d.stream_id, _parts(d)["pants"].color) for d in a + b] == [("a", "red"), ("b", "blue")]
    finals, events = describer.finish("a")
    assert [(d.stream_id, d.final) for d in finals] == [("a", True)]
    assert [e.kind for e in events] == ["ended"] and describer.num_tracks == 1


def test_persons_without_part_fields_are_still_described() -> None:
    persons = Persons(xyxy=np.zeros((1, 4)), score=np.ones(1), track_id=np.array([3]))
    frame = TrackedFrame("cam", 0, 0.0, 0.0, (10, 10), persons)
    descriptions, _ = TrackDescriber(min_observations=1).update(frame)
    assert descriptions[0].sentence == "person" and descriptions[0].parts == []


def test_non_finite_model_output_does_not_poison_the_track() -> None:
    bad = _evidence(DRESSED, quality=float("nan"))
    bad["part_area"][L.PANTS] = np.nan
    bad["color"][L.HAIR, L.COLOR_ID["red"]] = np.inf
    describer = TrackDescriber(min_observations=1, update_every=1)
    descriptions, _ = _feed(describer, [bad] + [_evidence(DRESSED)] * 3)
    for description in descriptions:
        for part in description.parts:
            assert np.isfinite([part.presence, part.color_confidence, part.size_confidence]).all()
    assert _parts(descriptions[-1])["hair"].color == "dark"


def test_rejects_bad_input() -> None:
    describer = TrackDescriber()
    with pytest.raises(TypeError, match="expects TrackedFrame"):
        describer.update(object())  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="repeats a track id"):
        describer.update(_frame(0, [(1, _evidence(DRESSED)), (1, _evidence(DRESSED))]))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_observations": 0}, "min_observations"),
        ({"change_frames": 0}, "change_frames"),
        ({"presence_threshold": 1.5}, "presence_threshold"),
        ({"min_confidence": -0.1}, "min_confidence"),
        ({"min_host_pixels": -1}, "min_host_pixels"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        TrackDescriber(**kwargs)


def test_build_describer_from_config() -> None:
    assert build_describer(DescriberConfig(change_frames=4)).change_frames == 4
    with pytest.raises(ValidationError, match="change_frame"):
        DescriberConfig(change_frame=4)  # type: ignore[call-arg]


# ---------------------------------------------------------------- save / restore
def test_state_round_trip_continues_exactly_like_an_uninterrupted_describer() -> None:
    import json

    sequence = [_evidence(DRESSED | COAT)] * 20 + [_evidence(DRESSED)] * 25
    thumbs = [b"\xff\xd8jpeg"]
    reference = TrackDescriber(change_frames=5, update_every=7)
    first = TrackDescriber(change_frames=5, update_every=7)
    for index, evidence in enumerate(sequence[:22]):
        for describer in (reference, first):
            describer.update(_frame(index, [(0, evidence)], thumbnails=thumbs))
    state = json.loads(json.dumps(first.state_dict()))  # must survive a JSON checkpoint
    resumed = TrackDescriber(change_frames=5, update_every=7)
    resumed.load_state_dict(state)
    events_after_resume = []
    for index, evidence in enumerate(sequence[22:], start=22):
        expected = reference.update(_frame(index, [(0, evidence)], thumbnails=thumbs))
        actual = resumed.update(_frame(index, [(0, evidence)], thumbnails=thumbs))
        assert actual == expected
        events_after_resume += actual[1]
    # The coat came off two frames before the checkpoint: the streak carried over the resume.
    assert [e.detail for e in events_after_resume if e.kind == "changed"] == [
        "coat: present -> absent"
    ]
    final_ref, final_res = reference.finish("cam"), resumed.finish("cam")
    assert final_res == final_ref and final_res[0][0].thumbnail == thumbs[0]


def test_load_state_rejects_other_formats() -> None:
    with pytest.raises(ValueError, match="format"):
        TrackDescriber().load_state_dict({"format": "describeme.hungarian_tracker/2"})
