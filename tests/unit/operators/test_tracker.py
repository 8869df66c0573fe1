"""Tests for operators.tracker.HungarianTracker: lifecycle, ids, masks, state save/restore."""

from __future__ import annotations

import json

import numpy as np
import pytest
from pydantic import ValidationError

from describeme.masks import RunLengthMask
from describeme.messages import ParsedFrame, TrackedFrame
from describeme.operators.tracker import (
    HungarianTracker,
    TrackerConfig,
    build_tracker,
    kalman_init,
    kalman_predict,
    kalman_update,
)
from describeme.types import Persons

IMAGE = (200, 300)  # (height, width)


def _persons(boxes: list[list[float]], scores: list[float] | None = None,
             masks: list[RunLengthMask] | None = None) -> Persons:
    xyxy = np.asarray(boxes, np.float32).reshape(-1, 4)
    score = np.ones(len(xyxy), np.float32) if scores is None else np.asarray(scores, np.float32)
    return Persons(xyxy=xyxy, score=score, masks=masks)


def _box(x: float, y: float = 20.0, w: float = 30.0, h: float = 80.0) -> list[float]:
    return [x, y, x + w, y + h]


def _run(tracker: HungarianTracker, frames: list[list[list[float]]], start: int = 0) -> list:
    return [tracker.update(_persons(b), start + i).track_id.tolist() for i, b in enumerate(frames)]


@pytest.mark.parametrize(
    ("min_hits", "expected"),
    [
        (1, [[0], [0], [0], [0]]),
        (2, [[-1], [0], [0], [0]]),
        (3, [[-1], [-1], [0], [0]]),
        (5, [[-1], [-1], [-1], [-1]]),
    ],
)
def test_tentative_until_min_hits(min_hits: int, expected: list) -> None:
    tracker = HungarianTracker(min_hits=min_hits)
    assert _run(tracker, [[_box(10 + 2 * f)] for f in range(4)]) == expected


@pytest.mark.parametrize(
    ("frames", "expected"),
    [
        ([], []),  # no frames
        ([[], [], []], [[], [], []]),  # empty frames
        ([[_box(10)], [], [_box(10)]], [[0], [], [0]]),  # one missed frame: same id
        # Two people side by side keep their ids when listed in the other order.
        ([[_box(10), _box(100)], [_box(101), _box(11)]], [[0, 1], [1, 0]]),
        # Full overlap of two identical detections: one track each, both matched.
        ([[_box(10), _box(10)], [_box(10), _box(10)]], [[0, 1], [0, 1]]),
        # Out of frame (negative coordinates) is still tracked.
        ([[_box(-20)], [_box(-18)]], [[0], [0]]),
        # A jump larger than min_iou allows starts a new track.
        ([[_box(10)], [_box(200)]], [[0], [1]]),
    ],
)
def test_edge_cases_with_immediate_confirmation(frames: list, expected: list) -> None:
    tracker = HungarianTracker(min_hits=1, predict_motion=False)
    assert _run(tracker, frames) == expected


def test_tentative_track_dropped_on_miss_does_not_burn_an_id() -> None:
    tracker = HungarianTracker(min_hits=2)
    out = _run(tracker, [[_box(10)], [], [_box(150)], [_box(151)]])
    assert out == [[-1], [], [-1], [0]]


def test_lost_then_removed_after_max_lost_reports_ended_once() -> None:
    tracker = HungarianTracker(min_hits=1, max_lost=3)
    tracker.update(_persons([_box(10)]), 0)
    ended = []
    for frame in range(1, 7):
        tracker.update(_persons([]), frame)
        ended.append(list(tracker.ended_tracks))
        if frame <= 3:
            assert tracker.track_states() == {0: "lost"}
    assert ended == [[], [], [], [0], [], []]
    assert tracker.track_states() == {}


def test_lost_track_refound_keeps_id_and_is_confirmed_again() -> None:
    tracker = HungarianTracker(min_hits=1, max_lost=5)
    out = _run(tracker, [[_box(10)], [], [], [_box(10)]])
    assert out == [[0], [], [], [0]]
    assert tracker.track_states() == {0: "confirmed"}


def test_frame_gap_beyond_max_lost_ends_track_before_matching() -> None:
    tracker = HungarianTracker(min_hits=1, max_lost=30)
    tracker.update(_persons([_box(10)]), 0)
    out = tracker.update(_persons([_box(10)]), 40)  # same place, but 40 > 30 frames later
    assert tracker.ended_tracks == [0]
    assert out.track_id.tolist() == [1]


@pytest.mark.parametrize(("predict_motion", "expected_last"), [(True, [0]), (False, [1])])
def test_motion_prediction_bridges_an_occlusion(predict_motion: bool, expected_last: list) -> None:
    # 10 px per frame to the right, hidden for 4 frames: the unpredicted box no longer overlaps.
    tracker = HungarianTracker(min_hits=1, predict_motion=predict_motion)
    frames = [[_box(10 * f)] for f in range(5)] + [[]] * 4 + [[_box(90)]]
    assert _run(tracker, frames)[-1] == expected_last


def test_kalman_learns_a_constant_velocity_and_predicts_ahead() -> None:
    velocity = np.array([3.0, -1.0, 3.0, -1.0])  # xyxy moves 3 px right, 1 px up per frame
    box = np.array([100.0, 200.0, 140.0, 300.0])
    mean, cov = (a[None] for a in kalman_init(box))  # a batch of one track
    for _ in range(30):
        box = box + velocity
        mean, cov = kalman_update(*kalman_predict(mean, cov, np.array([1])), box[None])
    np.testing.assert_allclose(mean[0, 4:], [3.0, -1.0, 0.0, 0.0], atol=0.05)
    predicted, grown = kalman_predict(mean, cov, np.array([5]))
    np.testing.assert_allclose(predicted[0, :4], mean[0, :4] + 5 * mean[0, 4:], atol=1e-9)
    assert np.trace(grown[0]) > np.trace(cov[0])
    _, corrected = kalman_update(predicted, grown, (box + 5 * velocity)[None])
    assert np.trace(corrected[0]) < np.trace(grown[0])


def test_kalman_batch_equals_single_tracks() -> None:
    rng = np.random.default_rng(0)
    boxes = rng.uniform(0, 100, (3, 4)) + [0, 0, 120, 150]
    states = [kalman_init(b) for b in boxes]
    mean, cov = np.stack([m for m, _ in states]), np.stack([c for _, c in states])
    steps = np.array([1, 0, 4])
    batch = kalman_update(*kalman_predict(mean, cov, steps), boxes + 2)
    for i in range(3):
        single = kalman_update(*kalman_predict(mean[i : i + 1], cov[i : i + 1], steps[i : i + 1]),
                               boxes[i : i + 1] + 2)
        np.testing.assert_allclose(batch[0][i], single[0][0], rtol=1e-12)
        np.testing.assert_allclose(batch[1][i], single[1][0], rtol=1e-12, atol=1e-9)


def test_min_score_excludes_low_scores_from_tracking() -> None:
    tracker = HungarianTracker(min_hits=1, min_score=0.5)
    out = tracker.update(_persons([_box(10), _box(100)], scores=[0.9, 0.3]), 0)
    assert out.track_id.tolist() == [0, -1]
    out = tracker.update(_persons([_box(10), _box(100)], scores=[0.9, 0.6]), 1)
    assert out.track_id.tolist() == [0, 1]


@pytest.mark.parametrize(("min_iou", "shift", "same_track"), [
    (0.3, 10.0, True),  # IoU 20/40 = 0.5
    (0.6, 10.0, False),
    (0.5, 10.0, True),  # exactly at the threshold
    (0.3, 30.0, False),  # touching boxes
])  # fmt: skip
def test_min_iou_gate(min_iou: float, shift: float, same_track: bool) -> None:
    tracker = HungarianTracker(min_iou=min_iou, min_hits=1, predict_motion=False)
    out = _run(tracker, [[[0, 0, 30, 10]], [[shift, 0, 30 + shift, 10]]])
    assert (out[1] == [0]) is same_track


def test_default_gate_keeps_a_hidden_persons_identity_off_a_neighbour() -> None:
    """A tracked person goes undetected (hidden behind someone) while another person's box
    overlaps its last box at IoU 0.36. By default the other person starts a track of their
    own; a 0.3 gate hands them the hidden person's id (the switch that mixes two people's
    clothes into one description)."""
    hidden, neighbour = [0, 0, 40, 100], [19, 0, 59, 100]  # IoU 21 / 59 = 0.36
    for min_iou, inherits in ((None, False), (0.3, True)):
        options = {} if min_iou is None else {"min_iou": min_iou}
        tracker = HungarianTracker(predict_motion=False, **options)
        assert _run(tracker, [[hidden]] * 3) == [[-1], [-1], [0]]
        out = tracker.update(_persons([neighbour]), 3).track_id.tolist()
        assert (out == [0]) is inherits, (min_iou, out)


def _half_masks() -> tuple[RunLengthMask, RunLengthMask]:
    left, right = np.zeros(IMAGE, np.uint8), np.zeros(IMAGE, np.uint8)
    left[20:100, 10:25] = 5  # part labels, not just 1
    right[20:100, 25:40] = 9
    return RunLengthMask.from_full(left), RunLengthMask.from_full(right)


def test_masks_disambiguate_identical_boxes() -> None:
    left, right = _half_masks()
    tracker = HungarianTracker(min_hits=1, use_masks=True)
    box = [10, 20, 40, 100]
    first = tracker.update(_persons([box, box], masks=[left, right]), 0).track_id.tolist()
    for frame in range(1, 6):
        order = [right, left] if frame % 2 else [left, right]
        ids = tracker.update(_persons([box, box], masks=order), frame).track_id.tolist()
        expected = first[::-1] if frame % 2 else first
        assert ids == expected


def test_resolution_change_mid_stream_falls_back_to_boxes() -> None:
    tracker = HungarianTracker(min_hits=1)
    small = RunLengthMask.from_full(np.pad(np.ones((80, 30), np.uint8), ((20, 100), (10, 260))))
    big = np.zeros((400, 600), np.uint8)
    big[20:100, 10:40] = 1
    tracker.update(_persons([[10, 20, 40, 100]], masks=[small]), 0)
    out = tracker.update(_persons([[10, 20, 40, 100]], masks=[RunLengthMask.from_full(big)]), 1)
    assert out.track_id.tolist() == [0]


def test_update_returns_same_persons_with_ids() -> None:
    tracker = HungarianTracker(min_hits=1)
    persons = Persons(xyxy=np.array([_box(1)], np.float32), score=np.array([0.7], np.float32),
                      quality=np.array([0.4], np.float32))
    out = tracker.update(persons, 0)
    assert np.array_equal(out.xyxy, persons.xyxy)
    assert np.array_equal(out.quality, persons.quality)
    assert persons.track_id.tolist() == [-1]  # input is not modified


def test_trackers_do_not_share_ids_and_reset_restarts() -> None:
    a, b = HungarianTracker(min_hits=1), HungarianTracker(min_hits=1)
    assert a.update(_persons([_box(0), _box(100)]), 0).track_id.tolist() == [0, 1]
    assert b.update(_persons([_box(0)]), 0).track_id.tolist() == [0]
    a.reset()
    assert a.frame_index == -1
    assert a.update(_persons([_box(200)]), 0).track_id.tolist() == [0]


def test_track_turns_parsed_frames_into_tracked_frames() -> None:
    tracker = HungarianTracker(min_hits=1, max_lost=0)
    first = ParsedFrame("cam", 3, 0.12, 1000.0, IMAGE, _persons([_box(10)]), thumbnails=[b"j"])
    tracked = tracker.track(first)
    assert isinstance(tracked, TrackedFrame)
    assert (tracked.stream_id, tracked.frame_index, tracked.pts) == ("cam", 3, 0.12)
    assert (tracked.capture_time, tracked.image_size) == (1000.0, IMAGE)
    assert tracked.persons.track_id.tolist() == [0] and tracked.thumbnails == [b"j"]
    later = tracker.track(ParsedFrame("cam", 5, 0.2, 1000.1, IMAGE, _persons([])))
    assert later.ended_tracks == [0]
    with pytest.raises(TypeError, match="expects ParsedFrame"):
        tracker.track(later)  # type: ignore[arg-type]


def test_finish_ends_all_tracks_with_ids() -> None:
    tracker = HungarianTracker(min_hits=2)
    _run(tracker, [[_box(0), _box(100)], [_box(0), _box(100)], [_box(0), _box(100), _box(200)]])
    assert sorted(tracker.finish()) == [0, 1]
    assert sorted(tracker.ended_tracks) == [0, 1]
    assert tracker.track_states() == {}


def _random_walk(frames: int, people: int, seed: int) -> list[Persons]:
    rng = np.random.default_rng(seed)
    xy = rng.uniform(0, 250, (people, 2))
    out = []
    for _ in range(frames):
        xy += rng.normal(0, 2, xy.shape)
        keep = rng.random(people) > 0.2
        boxes = np.concatenate([xy, xy + [30, 60]], axis=1)[keep]
        masks = []
        for x0, y0, x1, y1 in boxes.astype(int):
            full = np.zeros(IMAGE, np.uint8)
            full[max(y0, 0) : max(y1, 0), max(x0, 0) : max(x1, 0)] = 1
            masks.append(RunLengthMask.from_full(full))
        out.append(Persons(xyxy=boxes, score=rng.uniform(0.3, 1, len(boxes)), masks=masks))
    return out


def test_state_dict_round_trip_through_json_resumes_identically() -> None:
    frames = _random_walk(30, 6, seed=3)
    reference = HungarianTracker(min_hits=2, max_lost=4, min_score=0.4)
    moved = HungarianTracker(min_hits=2, max_lost=4, min_score=0.4)
    for index, persons in enumerate(frames[:15]):
        reference.update(persons, index)
        moved.update(persons, index)
    moved_state = json.loads(json.dumps(moved.state_dict()))
    resumed = HungarianTracker(min_hits=2, max_lost=4, min_score=0.4)
    resumed.load_state_dict(moved_state)
    assert resumed.frame_index == 14
    for index, persons in enumerate(frames[15:], start=15):
        want = reference.update(persons, index).track_id.tolist()
        assert resumed.update(persons, index).track_id.tolist() == want
        assert resumed.ended_tracks == reference.ended_tracks
    assert resumed.state_dict() == reference.state_dict()


@pytest.mark.parametrize(
    ("state", "message"),
    [
        ({}, "not a tracker state"),
        ([], "not a tracker state"),
        ({"format": "other/1"}, "not a tracker state"),
        ({"format": "describeme.hungarian_tracker/2", "tracks": []}, "missing key"),
    ],
)
def test_load_state_dict_rejects_bad_state(state: object, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HungarianTracker().load_state_dict(state)  # type: ignore[arg-type]


def test_load_state_dict_rejects_unknown_track_state() -> None:
    tracker = HungarianTracker(min_hits=1)
    tracker.update(_persons([_box(0)]), 0)
    state = tracker.state_dict()
    state["tracks"][0]["state"] = "zombie"
    with pytest.raises(ValueError, match="unknown state 'zombie'"):
        HungarianTracker().load_state_dict(state)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"min_iou": 0.0}, "min_iou"),
        ({"min_iou": 1.5}, "min_iou"),
        ({"min_hits": 0}, "min_hits"),
        ({"max_lost": -1}, "max_lost"),
    ],
)
def test_constructor_rejects_bad_arguments(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        HungarianTracker(**kwargs)


def test_update_rejects_bad_input() -> None:
    tracker = HungarianTracker()
    with pytest.raises(TypeError, match="expects Persons"):
        tracker.update(np.zeros((1, 4)), 0)  # type: ignore[arg-type]
    tracker.update(_persons([]), 5)
    with pytest.raises(ValueError, match="frame_index must increase: got 5 after 5"):
        tracker.update(_persons([]), 5)


def test_build_tracker_from_config() -> None:
    tracker = build_tracker(TrackerConfig(min_hits=1, max_lost=7))
    assert (tracker.min_hits, tracker.max_lost) == (1, 7)
    assert build_tracker().min_hits == 3
    with pytest.raises(ValidationError, match="max_los"):
        TrackerConfig(max_los=3)  # type: ignore[call-arg]
