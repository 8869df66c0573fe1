"""PersonLab postprocess: hand-made head outputs -> Persons in source pixels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from describeme.geometry import Letterbox
from describeme.labels import NUM_KEYPOINTS, UPPER_CLOTHES
from describeme.models.personlab.config import (
    build_model_from_config,
    build_postprocessor_from_config,
    load_personlab_config,
)
from describeme.models.personlab.postprocess import build_postprocessor
from describeme.models.personlab.synthetic import box_owners, ideal_outputs, standing_pose

torch.set_num_threads(1)
CONFIGS = Path(__file__).resolve().parents[3] / "configs" / "models"
STRIDE, RADIUS, SIZE = 8, 20.0, (256, 256)
SOURCE = (384, 512)  # letterboxed at scale 0.5 with 32 px of padding above and below


def _people() -> np.ndarray:
    return np.stack(
        [standing_pose(90, 128, 170), standing_pose(125, 140, 170), standing_pose(160, 120, 170)]
    )


@pytest.fixture(scope="module")
def scene():
    people = _people()
    owners = box_owners(people, SIZE)
    outputs = ideal_outputs(people, owners, stride=STRIDE, radius=RADIUS)
    letterbox = Letterbox.fit(SOURCE, SIZE)
    return people, owners, outputs, letterbox


@pytest.fixture(scope="module")
def decoded(scene):
    _, _, outputs, letterbox = scene
    post = build_postprocessor(disk_radius=RADIUS)
    return post({k: v[None] for k, v in outputs.items()}, [letterbox])[0]


def test_three_people_with_keypoints_in_source_pixels(scene, decoded) -> None:
    people, _, _, letterbox = scene
    assert len(decoded) == 3
    expected = letterbox.points_to_source(people[:, :, :2])  # (3, 17, 2)
    for keypoints in decoded.keypoints:
        errors = np.linalg.norm(keypoints[None, :, :2] - expected, axis=-1).mean(1)
        assert errors.min() < 1.0
    assert (decoded.keypoints[..., 2] > 0.5).all()
    assert (decoded.score > 0.5).all() and (np.diff(decoded.score) <= 0).all()


def test_exclusive_masks_follow_the_owners_and_do_not_overlap(scene, decoded) -> None:
    people, owners, _, letterbox = scene
    full = np.stack([m.to_binary() for m in decoded.masks])  # (3, 384, 512)
    assert full.shape[1:] == SOURCE
    assert full.sum(0).max() == 1
    source_points = letterbox.points_to_source(people[:, :, :2])
    scale, pad_y = letterbox.scale, letterbox.pad_y
    rows = np.clip(((np.arange(SOURCE[0]) + 0.5) * scale + pad_y).astype(int), 0, SIZE[0] - 1)
    cols = np.clip(((np.arange(SOURCE[1]) + 0.5) * scale).astype(int), 0, SIZE[1] - 1)
    source_owners = owners[rows[:, None], cols[None]]
    for mask, keypoints in zip(full, decoded.keypoints, strict=True):
        person = np.linalg.norm(keypoints[None, :, :2] - source_points, axis=-1).mean(1).argmin()
        truth = source_owners == person + 1
        iou = (mask & truth).sum() / (mask | truth).sum()
        assert iou > 0.8


def test_part_and_characteristic_fields(decoded) -> None:
    areas = decoded.part_area
    assert (areas[:, UPPER_CLOTHES] > 0).all()
    # Every person pixel is part 5 (index 0 counts the crop's background, as in HPTR).
    assert areas[:, 1:].sum(1).tolist() == areas[:, UPPER_CLOTHES].tolist()
    np.testing.assert_allclose(areas[:, UPPER_CLOTHES], [m.area for m in decoded.masks])
    assert (decoded.part_score[:, UPPER_CLOTHES] > 0.9).all()
    for name, label in (("color", 10), ("size", 2), ("pattern", 1)):
        dist = getattr(decoded, name)
        np.testing.assert_allclose(dist[:, UPPER_CLOTHES].sum(-1), 1.0, rtol=1e-5)
        assert (dist[:, UPPER_CLOTHES].argmax(-1) == label).all()
        assert dist[:, :UPPER_CLOTHES].sum() == 0 and dist[:, UPPER_CLOTHES + 1 :].sum() == 0
    assert ((decoded.quality > 0.5) & (decoded.quality <= 1.0)).all()


def test_boxes_are_the_masks_boxes(decoded) -> None:
    np.testing.assert_allclose(decoded.xyxy, [m.box for m in decoded.masks])


def test_non_exclusive_masks_cover_at_least_the_exclusive_ones(scene, decoded) -> None:
    _, _, outputs, letterbox = scene
    post = build_postprocessor(disk_radius=RADIUS, exclusive_masks=False)
    shared = post.decode_image(outputs, letterbox)
    assert sum(m.area for m in shared.masks) >= sum(m.area for m in decoded.masks)


def test_person_without_pixels_keeps_its_pose_and_gets_a_keypoint_box(scene) -> None:
    people, _, outputs, letterbox = scene
    no_segmentation = {**outputs, "segmentation": np.full_like(outputs["segmentation"], -9.0)}
    persons = build_postprocessor(disk_radius=RADIUS).decode_image(no_segmentation, letterbox)
    assert len(persons) == 3
    assert all(m.area == 0 for m in persons.masks)
    assert (persons.quality == 0).all() and (persons.part_area == 0).all()
    x0, y0, x1, y1 = persons.xyxy.T
    assert ((x1 - x0) > 50).all() and ((y1 - y0) > 200).all()


def test_no_keypoint_evidence_gives_an_empty_persons_with_every_field(scene) -> None:
    _, _, outputs, letterbox = scene
    quiet = {**outputs, "heatmaps": np.full_like(outputs["heatmaps"], -9.0)}
    persons = build_postprocessor(disk_radius=RADIUS).decode_image(quiet, letterbox)
    assert len(persons) == 0
    assert persons.keypoints.shape == (0, NUM_KEYPOINTS, 3)
    assert persons.masks == []


def test_batch_of_torch_tensors_equals_single_numpy_images(scene) -> None:
    _, _, outputs, letterbox = scene
    post = build_postprocessor(disk_radius=RADIUS)
    quiet = {**outputs, "heatmaps": np.full_like(outputs["heatmaps"], -9.0)}
    batch = {k: torch.from_numpy(np.stack([outputs[k], quiet[k]])) for k in outputs}
    results = post(batch, [letterbox, letterbox])
    assert results[0] == post.decode_image(outputs, letterbox)
    assert len(results[1]) == 0


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ("missing", "lack"),
        ("short_channels", r"short_offsets must be \(34, 32, 32\)"),
        ("wrong_size", "expected maps at output stride"),
        ("letterboxes", "got 2 letterboxes for a batch of 1"),
    ],
)
def test_bad_outputs_raise_actionable_errors(scene, change, message) -> None:
    _, _, outputs, letterbox = scene
    outputs = dict(outputs)
    letterboxes = [letterbox]
    if change == "missing":
        del outputs["long_offsets"]
    elif change == "short_channels":
        outputs["short_offsets"] = outputs["short_offsets"][:30]
    elif change == "wrong_size":
        letterboxes = [Letterbox.fit(SOURCE, (384, 384))]
    else:
        letterboxes = [letterbox, letterbox]
    post = build_postprocessor(disk_radius=RADIUS)
    with pytest.raises(ValueError, match=message):
        post({k: v[None] for k, v in outputs.items()}, letterboxes)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"score_threshold": 1.5}, "score_threshold"),
        ({"disk_radius": 0.0}, "must be positive"),
        ({"max_people": 300}, "max_people"),
        ({"hough_stride": 0}, "hough_stride"),
    ],
)
def test_bad_postprocess_arguments_raise(kwargs, message) -> None:
    with pytest.raises(ValueError, match=message):
        build_postprocessor(**{"disk_radius": RADIUS, **kwargs})


def test_coarser_hough_maps_find_the_same_people(scene, decoded) -> None:
    _, _, outputs, letterbox = scene
    coarse = build_postprocessor(disk_radius=RADIUS, hough_stride=2).decode_image(
        outputs, letterbox
    )
    assert len(coarse) == len(decoded)
    for keypoints in coarse.keypoints:
        errors = np.linalg.norm(keypoints[None, :, :2] - decoded.keypoints[:, :, :2], axis=-1)
        assert errors.mean(1).min() < 1.0


def test_max_people_caps_the_number_decoded(scene) -> None:
    _, _, outputs, letterbox = scene
    persons = build_postprocessor(disk_radius=RADIUS, max_people=2).decode_image(outputs, letterbox)
    assert len(persons) == 2


def test_untrained_model_outputs_decode_to_consistent_persons() -> None:
    config = load_personlab_config(CONFIGS / "personlab_tiny.yaml")
    torch.manual_seed(0)
    model = build_model_from_config(config).eval()
    with torch.no_grad():
        outputs = model(torch.rand(2, 3, 64, 96))
    letterboxes = [Letterbox.fit((90, 160), (64, 96)), Letterbox.fit((200, 120), (64, 96))]
    results = build_postprocessor_from_config(config)(outputs, letterboxes)
    for persons, letterbox in zip(results, letterboxes, strict=True):
        assert len(persons) <= config.postprocess.max_people
        assert persons.masks is not None and len(persons.masks) == len(persons)
        assert all(m.image_size == letterbox.source_size for m in persons.masks)
        assert np.isfinite(persons.keypoints).all() and np.isfinite(persons.quality).all()


def test_foreground_parts_where_equals_the_full_map_there_and_zero_elsewhere() -> None:
    """The exclusive postprocess computes part labels at owned pixels only; there they are
    the full map's (foreground argmax, background never chosen)."""
    from describeme.models.personlab.content import foreground_parts

    rng = np.random.default_rng(0)
    logits = rng.standard_normal((12, 16, 22)).astype(np.float32)
    logits[..., 0] += 10.0  # background wins the plain argmax everywhere
    full = foreground_parts(logits)
    np.testing.assert_array_equal(full, logits[..., 1:].argmax(-1) + 1)
    assert full.min() >= 1
    where = rng.uniform(size=(12, 16)) < 0.3
    partial = foreground_parts(logits, where)
    np.testing.assert_array_equal(partial[where], full[where])
    assert not partial[~where].any()
    # A cropped (non-contiguous) map, as a pillarboxed content region gives: same labels.
    wide = np.concatenate([rng.standard_normal((12, 3, 22)), logits], 1).astype(np.float32)
    cropped = wide[:, 3:]
    assert not cropped.flags.c_contiguous
    np.testing.assert_array_equal(foreground_parts(cropped, where), partial)
    assert np.isfinite(logits).all() and np.isfinite(cropped).all()  # inputs left untouched


@pytest.mark.parametrize("origin", [(0, 0), (5, 0), (0, 9), (3, 6)])
def test_semantic_samples_are_bilinear_samples_of_the_heads_at_the_owned_pixels(origin) -> None:
    """semantic_samples blends the heads' grid once and reads it at the owned cells; the
    values must be the per-point bilinear samples (clamped at the map's edge), for content
    regions at any letterbox offset, owned cells at the last row and column included."""
    from describeme.models.personlab.content import (
        SEMANTIC_STRIDE,
        ContentMaps,
        semantic_samples,
    )
    from describeme.models.personlab.decode import sample_bilinear

    rng = np.random.default_rng(sum(origin))
    grid = (12, 16)  # the heads' grid over a 48 x 64 model input
    semantic = {name: rng.standard_normal((channels, *grid)).astype(np.float32)
                for name, channels in (("attribute", 22), ("color", 13), ("size", 5),
                                       ("pattern", 5))}  # fmt: skip
    content = (48 - origin[0], 64 - origin[1])
    owner = (rng.uniform(size=content) < 0.4).astype(np.int32)
    owner[-1, :] = owner[:, -1] = 1  # the edge cells, where sampling clamps
    maps = ContentMaps(
        segmentation=np.zeros(content), part_logits=np.zeros((*content, 22)), heads={},
        content_shape=content, source_size=content, semantic=semantic, origin=origin,
    )  # fmt: skip
    inner = np.zeros_like(owner)  # a person off the edges: blending needs the cells past it
    inner[10:30, 12:40] = 2
    for owned in (owner, inner):
        rows, cols, logits = semantic_samples(maps, owned)
        assert rows.size > 20 and owned[rows, cols].all()
        assert ((rows + origin[0]) % SEMANTIC_STRIDE == SEMANTIC_STRIDE // 2).all()
        assert ((cols + origin[1]) % SEMANTIC_STRIDE == SEMANTIC_STRIDE // 2).all()
        points = np.stack([cols + origin[1], rows + origin[0]], 1).astype(np.float64)
        for name, values in semantic.items():
            expected = sample_bilinear(values, points, SEMANTIC_STRIDE)
            np.testing.assert_allclose(logits[name], expected, rtol=0, atol=1e-12)
    nobody = semantic_samples(maps, np.zeros(content, np.int32))
    assert nobody[0].size == 0 and all(v.shape == (0, semantic[n].shape[0])
                                       for n, v in nobody[2].items())  # fmt: skip
