"""PersonLab decoding: Hough voting, peaks, greedy grouping, expected OKS, soft-NMS, embedding."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from describeme.labels import KEYPOINT_SIGMAS, KINEMATIC_TREE, NUM_KEYPOINTS
from describeme.models.personlab.decode import (
    TRAVERSALS,
    decode_poses,
    expected_oks,
    find_peaks,
    group_poses,
    hough_scores,
    keypoint_soft_nms,
    sample_bilinear,
    sample_per_point,
)
from describeme.models.personlab.refine import refine_mid_offsets
from describeme.models.personlab.segment import (
    assign_pixels,
    embedding_distances,
    exclusive_owner,
)
from describeme.models.personlab.synthetic import box_owners, ideal_outputs, standing_pose

torch.set_num_threads(1)
STRIDE, RADIUS, SIZE = 8, 20.0, (256, 256)


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-x))


def _planted_fields(points: np.ndarray, size=(128, 128), stride=STRIDE, radius=RADIUS):
    """Disk heatmaps (p = 1) and exact short offsets for one keypoint type at ``points``."""
    h, w = size[0] // stride, size[1] // stride
    ys, xs = np.mgrid[:h, :w]
    cells = np.stack([(xs + 0.5) * stride - 0.5, (ys + 0.5) * stride - 0.5])  # (2, h, w)
    diff = points[:, :, None, None] - cells[None]  # (P, 2, h, w)
    dist = np.linalg.norm(diff, axis=1)
    nearest = dist.argmin(0)
    inside = dist.min(0) <= radius
    short = np.take_along_axis(diff, nearest[None, None].repeat(2, 1), 0)[0] * inside
    return inside[None].astype(np.float64), short[None]


@pytest.mark.parametrize("hough_stride", [1, 2])
@pytest.mark.parametrize(
    "points",
    [
        [(37.3, 52.8)],
        [(64.0, 64.0)],
        [(20.71, 90.25), (100.4, 30.6)],
        [(3.2, 5.9)],  # near the border: part of the disk is outside the image
    ],
)
def test_hough_voting_recovers_planted_keypoints_to_sub_pixel_accuracy(points, hough_stride):
    planted = np.asarray(points, dtype=np.float64)
    heat, short = _planted_fields(planted)
    scores = hough_scores(heat, short, STRIDE, RADIUS, (128, 128), hough_stride)
    types, xy, _ = find_peaks(scores, 0.01, hough_stride)
    for point in planted:
        errors = np.linalg.norm(xy - point, axis=1)
        assert errors.min() < 0.05, (point, xy)
    assert len(xy) == len(planted)
    assert (types == 0).all()


def test_hough_scores_are_the_vote_mass_normalised_by_the_disk_area() -> None:
    heat, short = _planted_fields(np.array([[64.0, 64.0]]))
    scores = hough_scores(heat * 0.5, short, STRIDE, RADIUS, (128, 128))
    assert scores.sum() == pytest.approx(0.5 * heat.sum() * STRIDE**2 / (np.pi * RADIUS**2))


def test_peaks_below_threshold_are_dropped_and_order_is_by_score() -> None:
    scores = np.zeros((2, 20, 20))
    scores[0, 5, 5], scores[1, 10, 12], scores[1, 2, 2] = 0.3, 0.8, 0.005
    types, xy, values = find_peaks(scores, threshold=0.01)
    assert types.tolist() == [1, 0]
    np.testing.assert_allclose(xy, [[12, 10], [5, 5]])
    np.testing.assert_allclose(values, [0.8, 0.3])


def _reference_peaks(scores: np.ndarray, threshold: float) -> list[tuple[int, float, float]]:
    """Plain 3x3 local maxima (cells past the edge ignored) and their 3x3 centroids, one cell
    at a time: ``(type, x, y)`` sorted."""
    channels, height, width = scores.shape
    peaks = []
    for k in range(channels):
        for y in range(height):
            for x in range(width):
                y0, x0 = max(y - 1, 0), max(x - 1, 0)
                window = scores[k, y0 : y + 2, x0 : x + 2]
                if scores[k, y, x] > threshold and scores[k, y, x] >= window.max():
                    rows, cols = np.mgrid[y0 : y0 + window.shape[0], x0 : x0 + window.shape[1]]
                    mass = window / window.sum()
                    peaks.append((k, round(float((mass * cols).sum()), 9),
                                  round(float((mass * rows).sum()), 9)))  # fmt: skip
    return sorted(peaks)


@pytest.mark.parametrize("seed", range(4))
def test_peaks_match_a_cell_by_cell_reference_at_edges_and_plateaus(seed: int) -> None:
    rng = np.random.default_rng(seed)
    # Coarse levels make plateaus and ties; sparse zeros leave cells below the threshold.
    scores = np.round(rng.random((3, 9, 11)) * 4) / 4 * (rng.random((3, 9, 11)) > 0.3)
    types, xy, values = find_peaks(scores, threshold=0.01)
    found = sorted((int(k), round(float(x), 9), round(float(y), 9))
                   for k, (x, y) in zip(types, xy, strict=True))  # fmt: skip
    expected = _reference_peaks(scores, 0.01)
    assert len(found) == len(expected) > 0
    np.testing.assert_allclose(np.array(found), np.array(expected), atol=1e-9)
    assert np.all(np.diff(values) <= 0)


@pytest.mark.parametrize(("stride", "height", "width"), [(4, 6, 9), (8, 6, 9), (4, 1, 9),
                                                          (4, 6, 1), (4, 1, 1)])
def test_bilinear_sampling_matches_grid_sample_with_border_clamping(
    stride: int, height: int, width: int
) -> None:
    """Input-pixel points, half-pixel cell centres, clamped at the edges: ``grid_sample``
    (align_corners=False, border padding) is the reference; off-map points and maps one cell
    high or wide included."""
    rng = np.random.default_rng(stride)
    field = rng.standard_normal((5, height, width))
    xy = np.concatenate([rng.uniform(-20, width * stride + 20, (40, 1)),
                         rng.uniform(-20, height * stride + 20, (40, 1))], axis=1)  # fmt: skip
    gx, gy = (xy[:, 0] + 0.5) / stride - 0.5, (xy[:, 1] + 0.5) / stride - 0.5
    grid = np.stack([(2 * gx + 1) / width - 1, (2 * gy + 1) / height - 1], axis=1)
    reference = torch.nn.functional.grid_sample(
        torch.from_numpy(field)[None], torch.from_numpy(grid)[None, None],
        align_corners=False, padding_mode="border",
    )[0, :, 0].T.numpy()  # fmt: skip
    np.testing.assert_allclose(sample_bilinear(field, xy, stride), reference, atol=1e-12)
    # One field per point: the value of that point's own field, as sampling every field.
    which = rng.integers(0, 5, 40)
    own = sample_per_point(field.reshape(-1, 1), (height, width), which, xy, stride)[:, 0]
    np.testing.assert_allclose(own, reference[np.arange(40), which], atol=1e-12)


def test_no_votes_give_no_peaks_and_no_people() -> None:
    heat = np.zeros((NUM_KEYPOINTS, 16, 16))
    short = np.zeros((NUM_KEYPOINTS, 2, 16, 16))
    mid = np.zeros((32, 2, 16, 16))
    poses = decode_poses(heat, short, mid, stride=8, radius=RADIUS, input_size=(128, 128))
    assert len(poses) == 0
    assert poses.keypoints.shape == (0, NUM_KEYPOINTS, 3)


def test_every_seed_type_reaches_every_keypoint_along_the_tree() -> None:
    undirected = {frozenset(e) for e in KINEMATIC_TREE}
    for seed, steps in enumerate(TRAVERSALS):
        reached = {seed} | {target for _, target, _ in steps}
        assert reached == set(range(NUM_KEYPOINTS))
        assert all(frozenset((s, t)) in undirected for s, t, _ in steps)


def _three_overlapping_people() -> np.ndarray:
    """Three people whose boxes overlap by more than half, same-type keypoints >= 30 px apart."""
    return np.stack(
        [standing_pose(90, 128, 170), standing_pose(125, 140, 170), standing_pose(160, 120, 170)]
    )


def _decode(outputs: dict[str, np.ndarray], nms_radius: float = 10.0, min_score: float = 0.0):
    short = torch.from_numpy(outputs["short_offsets"])[None]
    mid = refine_mid_offsets(torch.from_numpy(outputs["mid_offsets"])[None], short, STRIDE)
    h, w = outputs["heatmaps"].shape[-2:]
    return decode_poses(
        _sigmoid(outputs["heatmaps"].astype(np.float64)),
        outputs["short_offsets"].reshape(NUM_KEYPOINTS, 2, h, w).astype(np.float64),
        mid[0].numpy().reshape(32, 2, h, w).astype(np.float64),
        stride=STRIDE,
        radius=RADIUS,
        input_size=SIZE,
        nms_radius=nms_radius,
        min_score=min_score,
    )


def test_greedy_decoding_groups_three_overlapping_people() -> None:
    people = _three_overlapping_people()
    outputs = ideal_outputs(people, box_owners(people, SIZE), stride=STRIDE, radius=RADIUS)
    poses = _decode(outputs)
    assert len(poses) == 3
    for decoded in poses.keypoints:
        errors = np.linalg.norm(decoded[None, :, :2] - people[:, :, :2], axis=-1)  # (3, 17)
        match = errors.mean(1).argmin()
        assert errors[match].max() < 0.5  # every keypoint of one person, none of another
    matched = {np.linalg.norm(d[None, :, :2] - people[:, :, :2], axis=-1).mean(1).argmin()
               for d in poses.keypoints}  # fmt: skip
    assert matched == {0, 1, 2}
    assert (poses.scores > 0.5).all()
    assert (np.diff(poses.scores) <= 0).all()


@pytest.mark.parametrize("min_score", [0.05, 0.2, 0.5, 0.9])
def test_min_score_returns_exactly_the_full_decodings_people_above_it(min_score: float) -> None:
    people = _three_overlapping_people()
    outputs = ideal_outputs(people, box_owners(people, SIZE), stride=STRIDE, radius=RADIUS)
    rng = np.random.default_rng(3)  # noisy heads: dozens of spurious, weak people
    for name, sigma in (("heatmaps", 2.0), ("short_offsets", 3.0), ("mid_offsets", 6.0)):
        outputs[name] = (outputs[name] + rng.normal(0, sigma, outputs[name].shape)).astype(
            np.float32
        )
    full, pruned = _decode(outputs), _decode(outputs, min_score=min_score)
    keep = full.scores >= min_score
    assert len(full) > keep.sum() > 0 or min_score == 0.9  # the cut is not vacuous
    np.testing.assert_allclose(pruned.scores, full.scores[keep])
    np.testing.assert_allclose(pruned.keypoints, full.keypoints[keep])
    np.testing.assert_allclose(pruned.keypoint_probs, full.keypoint_probs[keep])


def test_a_person_with_only_some_keypoints_is_grouped_from_whichever_seed_survives() -> None:
    # Only the left side and the nose are labelled: a connected part of the kinematic tree.
    labelled = [0, 1, 3, 5, 7, 9, 11, 13, 15]
    hidden = [k for k in range(NUM_KEYPOINTS) if k not in labelled]
    people = _three_overlapping_people()[:1].copy()
    people[0, hidden, 2] = 0
    outputs = ideal_outputs(people, box_owners(people, SIZE), stride=STRIDE, radius=RADIUS)
    poses = _decode(outputs)
    assert len(poses) == 1
    errors = np.linalg.norm(poses.keypoints[0, labelled, :2] - people[0, labelled, :2], axis=-1)
    assert errors.max() < 0.5
    assert (poses.keypoints[0, labelled, 2] > 0.5).all()
    assert (poses.keypoints[0, hidden, 2] < 0.2).all()  # unsupported keypoints score low


def test_rejection_window_decodes_exactly_what_rejecting_every_seed_does(monkeypatch) -> None:
    """group_poses rejects seeds against each new person on a window of the best ones, and
    seeds entering a grown window against every person found so far: the people must be
    those of the plain greedy pass over all seeds."""
    import describeme.models.personlab.decode as decode

    rng = np.random.default_rng(5)
    seeds = 900  # a crowd's worth of candidates, many within nms_radius of each other
    types = rng.integers(0, NUM_KEYPOINTS, seeds)
    xy = rng.uniform(0, 128, (seeds, 2))
    mid = rng.normal(0, 6, (32, 2, 16, 16))
    monkeypatch.setattr(decode, "_NMS_WINDOW", 10**9)
    plain = group_poses(types, xy, mid, stride=8, nms_radius=10.0, max_people=60)
    for window in (1, 7, 64):
        monkeypatch.setattr(decode, "_NMS_WINDOW", window)
        windowed = group_poses(types, xy, mid, stride=8, nms_radius=10.0, max_people=60)
        np.testing.assert_array_equal(windowed, plain)
    assert len(plain) == 60  # the cap, not the seeds, ended the pass
    everyone = group_poses(types, xy, mid, stride=8, nms_radius=10.0, max_people=255)
    monkeypatch.setattr(decode, "_NMS_WINDOW", 10**9)
    np.testing.assert_array_equal(
        everyone, group_poses(types, xy, mid, stride=8, nms_radius=10.0, max_people=255)
    )
    assert 60 < len(everyone) < 255  # here the seeds ran out first


def test_seed_within_nms_radius_of_a_decoded_keypoint_is_rejected() -> None:
    mid = np.zeros((32, 2, 4, 4))  # every edge points at its own source
    types = np.array([0, 0, 0])
    xy = np.array([[10.0, 10.0], [14.0, 10.0], [30.0, 10.0]])
    people = group_poses(types, xy, mid, stride=8, nms_radius=5.0)
    assert people.shape == (2, NUM_KEYPOINTS, 2)
    np.testing.assert_allclose(people[:, 0], [[10, 10], [30, 10]])


def test_expected_oks_of_a_perfect_vote_is_the_heatmap_probability() -> None:
    scores = np.zeros((NUM_KEYPOINTS, 64, 64))
    scores[:, 30, 30] = 1.0  # every vote exactly on the keypoint
    keypoints = np.zeros((1, NUM_KEYPOINTS, 2))
    keypoints[0] = 30.0
    keypoints[0, 0] = (10.0, 10.0)  # far from its votes: nothing in its disk
    keypoints[0, 1] = (10.0, 40.0)  # spreads the person's box so its scale is not ~1 px
    probs = np.full((1, NUM_KEYPOINTS), 0.8)
    oks = expected_oks(keypoints, probs, scores, radius=5.0)
    assert oks[0, 0] == 0.0
    np.testing.assert_allclose(oks[0, 2:], 0.8)


def test_expected_oks_falls_with_distance_as_the_coco_kernel() -> None:
    scores = np.zeros((NUM_KEYPOINTS, 64, 64))
    scores[:, 30, 33] = 1.0  # votes 3 px to the right of the keypoints
    keypoints = np.full((1, NUM_KEYPOINTS, 2), 30.0)
    keypoints[0, 0] = (0.0, 0.0)
    keypoints[0, 1] = (40.0, 40.0)
    probs = np.ones((1, NUM_KEYPOINTS))
    oks = expected_oks(keypoints, probs, scores, radius=5.0)
    scale2 = 40.0 * 40.0
    kappa = 2 * np.asarray(KEYPOINT_SIGMAS)
    expected = np.exp(-9.0 / (2 * scale2 * kappa**2))
    np.testing.assert_allclose(oks[0, 2:], expected[2:], rtol=1e-9)


@pytest.mark.parametrize("hough_stride", [1, 2])
def test_expected_oks_equals_the_formula_cell_by_cell(hough_stride: int) -> None:
    # Random votes, people near and across the map's edges, sub-pixel keypoints: the
    # vectorised (separable-kernel) scoring against eq. 3 summed one disk cell at a time.
    rng = np.random.default_rng(3)
    scores = rng.uniform(size=(NUM_KEYPOINTS, 24, 32)) * (rng.uniform(size=(1, 24, 32)) < 0.5)
    keypoints = rng.uniform(-4, 68, size=(3, NUM_KEYPOINTS, 2))
    probs = rng.uniform(size=(3, NUM_KEYPOINTS))
    radius = 5.0
    oks = expected_oks(keypoints, probs, scores, radius, hough_stride)
    scales = np.sqrt(np.maximum(np.ptp(keypoints[..., 0], 1) * np.ptp(keypoints[..., 1], 1), 1))
    kappa = 2 * np.asarray(KEYPOINT_SIGMAS)
    reach = int(np.ceil(radius / hough_stride))
    for n, k in np.ndindex(3, NUM_KEYPOINTS):
        cx, cy = np.rint((keypoints[n, k] + 0.5) / hough_stride - 0.5).astype(int)
        mass = weighted = 0.0
        for dy in range(-reach, reach + 1):
            for dx in range(-reach, reach + 1):
                u, v = cx + dx, cy + dy
                if (dx * dx + dy * dy) * hough_stride**2 > radius**2:
                    continue
                if not (0 <= u < 32 and 0 <= v < 24):
                    continue
                x, y = (u + 0.5) * hough_stride - 0.5, (v + 0.5) * hough_stride - 0.5
                d2 = (x - keypoints[n, k, 0]) ** 2 + (y - keypoints[n, k, 1]) ** 2
                mass += scores[k, v, u]
                weighted += scores[k, v, u] * np.exp(-d2 / (2 * scales[n] ** 2 * kappa[k] ** 2))
        expected = probs[n, k] * weighted / mass if mass > 0 else 0.0
        assert oks[n, k] == pytest.approx(expected, rel=1e-12, abs=1e-15)


def test_keypoint_soft_nms_zeroes_keypoints_claimed_by_a_better_person() -> None:
    keypoints = np.zeros((3, NUM_KEYPOINTS, 2))
    keypoints[0] = np.arange(NUM_KEYPOINTS)[:, None] * 50.0
    keypoints[1] = keypoints[0] + 100.0
    keypoints[1, :5] = keypoints[0, :5] + 3.0  # five keypoints on top of person 0's
    keypoints[2] = keypoints[0] + 1000.0
    scores = np.stack([np.full(17, 0.9), np.full(17, 0.8), np.full(17, 0.5)])
    order, final = keypoint_soft_nms(keypoints, scores, nms_radius=10.0)
    assert order.tolist() == [0, 1, 2]
    np.testing.assert_allclose(final, [0.9, 0.8 * 12 / 17, 0.5])


def test_duplicate_person_loses_all_its_score() -> None:
    keypoints = np.random.default_rng(0).random((1, NUM_KEYPOINTS, 2)) * 100
    keypoints = np.concatenate([keypoints, keypoints + 1.0])
    scores = np.stack([np.full(17, 0.7), np.full(17, 0.9)])
    order, final = keypoint_soft_nms(keypoints, scores, nms_radius=5.0)
    assert order.tolist() == [1, 0]
    np.testing.assert_allclose(final, [0.9, 0.0])


def _two_people_long_fields():
    """Two people on a 1-row strip of 8 cells; cells 0-3 point at person A's keypoints, 4-7 at
    B's, and cell 3 points half-way between (ambiguous)."""
    stride = 8
    cells_x = (np.arange(8) + 0.5) * stride - 0.5
    person_a = np.zeros((NUM_KEYPOINTS, 2))
    person_a[:, 0] = np.linspace(0, 20, NUM_KEYPOINTS)
    person_b = person_a + [40.0, 0.0]
    people = np.stack([person_a, person_b])
    target = np.where(np.arange(8)[:, None, None] < 4, person_a[None], person_b[None])  # (8, K, 2)
    target[3] = (person_a + person_b) / 2
    long = np.zeros((NUM_KEYPOINTS, 2, 1, 8))
    long[:, 0, 0] = (target[..., 0] - cells_x[:, None]).T
    long[:, 1, 0] = (target[..., 1] - 3.5).T
    return people, long, stride


def test_embedding_distance_is_zero_for_pixels_pointing_at_their_person() -> None:
    people, long, stride = _two_people_long_fields()
    weights = np.ones((2, NUM_KEYPOINTS))
    distances = embedding_distances(long, people, weights, stride)  # (2, 1, 8)
    np.testing.assert_allclose(distances[0, 0, :3], 0, atol=1e-5)
    np.testing.assert_allclose(distances[1, 0, 4:], 0, atol=1e-5)
    # Cell 3 points 20 px from every keypoint of both; the scale is 1 px (a flat 20 x 0 box).
    np.testing.assert_allclose(distances[:, 0, 3], 20.0, rtol=1e-5)
    np.testing.assert_allclose(distances[0, 0, 4:], 40.0, rtol=1e-5)


def test_embedding_distance_weights_keypoints_and_divides_by_the_person_scale() -> None:
    people, long, stride = _two_people_long_fields()
    people = people.copy()
    people[:, -1, 1] += 10.0  # box 20 x 10 px -> scale sqrt(200)
    long[-1, 1] += 10.0  # cells keep pointing at the moved keypoint
    weights = np.zeros((2, NUM_KEYPOINTS))
    weights[:, 0] = 1.0  # only keypoint 0 counts
    distances = embedding_distances(long, people, weights, stride)
    np.testing.assert_allclose(distances[0, 0, 4], 40.0 / np.sqrt(200.0), rtol=1e-5)


@pytest.mark.parametrize(
    ("exclusive", "expected_a", "expected_b"),
    [
        (False, [1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 1, 1, 1, 1, 0]),
        (True, [1, 1, 1, 1, 0, 0, 0, 0], [0, 0, 0, 0, 1, 1, 1, 0]),
    ],
)
def test_assignment_by_threshold_non_exclusive_and_exclusive(exclusive, expected_a, expected_b):
    distances = np.array(
        [[[0.0, 0.1, 0.2, 0.2, 0.9, 0.9, 0.9, 0.9]], [[0.9, 0.9, 0.9, 0.24, 0.0, 0.1, 0.1, 0.0]]]
    )
    seg = np.array([[0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9, 0.4]])  # last pixel is background
    member = assign_pixels(distances, seg, threshold=0.25, exclusive=exclusive)
    assert member[0, 0].astype(int).tolist() == expected_a
    assert member[1, 0].astype(int).tolist() == expected_b


@pytest.mark.parametrize("people", [1, 3, 12])
def test_exclusive_owner_map_is_the_exclusive_assignment(people: int) -> None:
    """The owner map is 1 + the first (best-scoring) person each pixel is within t of
    (0 = none), and assign_pixels' exclusive memberships are that map."""
    rng = np.random.default_rng(people)
    distances = np.round(rng.uniform(0, 0.6, (20, 30, people)), 1)
    seg = rng.uniform(0, 1, (20, 30))
    # Reference, pixel by pixel: people in order, the first within t (p_S >= 0.5) owns it.
    expected = np.zeros((20, 30), int)
    for y, x in np.ndindex(20, 30):
        if seg[y, x] >= 0.5:
            claimants = [j for j in range(people) if distances[y, x, j] < 0.25]
            expected[y, x] = claimants[0] + 1 if claimants else 0
    owner = exclusive_owner(distances, seg, 0.25, 0.5)
    np.testing.assert_array_equal(owner, expected)
    assert 0 < (owner > 0).sum() < owner.size
    memberships = assign_pixels(distances.transpose(2, 0, 1), seg, 0.25, 0.5, exclusive=True)
    people_ids = np.arange(1, people + 1)[:, None, None]
    np.testing.assert_array_equal(memberships, owner[None] == people_ids)
    with pytest.raises(ValueError, match="must be"):
        exclusive_owner(distances[:, :-1], seg)


def test_a_weak_duplicate_nearer_to_the_pixels_does_not_take_them_from_the_better_person():
    """Exclusive masks follow score order: a second, lower-scoring pose on the same body
    (nearer in embedding distance for some pixels) gets none of the pixels both claim, and
    keeps only those no better person claims."""
    distances = np.array([[[0.10, 0.05], [0.20, 0.02], [0.24, 0.01], [0.40, 0.01]]])  # (1, 4, 2)
    seg = np.ones((1, 4))
    owner = exclusive_owner(distances, seg, 0.25, 0.5)
    assert owner.tolist() == [[1, 1, 1, 2]]


def test_assignment_rejects_mismatched_shapes() -> None:
    with pytest.raises(ValueError, match="must share"):
        assign_pixels(np.zeros((2, 4, 4)), np.zeros((4, 5)))


def test_embedding_with_no_people_is_empty() -> None:
    long = np.zeros((NUM_KEYPOINTS, 2, 4, 4))
    out = embedding_distances(long, np.zeros((0, NUM_KEYPOINTS, 2)), np.zeros((0, 17)), 8)
    assert out.shape == (0, 4, 4)
