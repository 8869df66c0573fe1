"""Whole-image part tables: hand-made owner maps -> the per-person figures, person by person."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.labels import NUM_PARTS
from describeme.models.common.dense import softmax
from describeme.models.common.tables import owner_masks, part_tables
from describeme.operators.quality import part_pixel_scores, pixel_score, qam_score

HAIR, UPPER, PANTS = 2, 5, 9


def _scene() -> dict:
    """Two people on a 6x8 map: person 1 = columns 0-3 (hair over upper clothes), person 2 =
    columns 5-7 (upper clothes over pants); column 4 is nobody's."""
    rng = np.random.default_rng(0)
    owner = np.zeros((6, 8), np.int32)
    owner[:, :4], owner[:, 5:] = 1, 2
    part_map = np.full((6, 8), UPPER, np.uint8)
    part_map[:2, :4], part_map[4:, 5:] = HAIR, PANTS
    logits = rng.normal(0, 1, (6, 8, NUM_PARTS)).astype(np.float32)
    np.put_along_axis(logits, part_map[..., None].astype(np.int64), 4.0, axis=-1)
    heads = {"color": rng.normal(0, 2, (6, 8, 13)).astype(np.float32)}
    instance = rng.uniform(0.1, 1.0, (6, 8)).astype(np.float32)
    return dict(owner=owner, part_map=part_map, logits=logits, heads=heads, instance=instance)


def _tables(scene: dict, area: np.ndarray, instance: np.ndarray | None = None):
    """``part_tables`` of the scene's two people (channel-last maps, T = 0.2)."""
    return part_tables(
        scene["owner"], 2, scene["logits"], scene["part_map"], scene["heads"],
        scene["instance"] if instance is None else instance, area, np.array([0.9, 0.6]),
        threshold=0.2, qam_weights=(1.0, 1.0, 1.0),
    )  # fmt: skip


@pytest.mark.parametrize("count", [3, 255, 3000])  # 16-bit keys up to 2,978 people, then 64
def test_owner_mask_part_areas_count_every_persons_pixels(count: int) -> None:
    rng = np.random.default_rng(count)
    owner = rng.integers(0, count + 1, (40, 60)).astype(np.uint8 if count < 256 else np.int32)
    owner[0, :3] = (count, 1, 2)  # the largest id present
    parts = rng.integers(1, NUM_PARTS, (40, 60)).astype(np.uint8)
    masks, area = owner_masks(owner, parts, count)
    for k in (0, 1, count - 1):
        expected = np.bincount(parts[owner == k + 1], minlength=NUM_PARTS)
        np.testing.assert_array_equal(area[k, 1:], expected[1:])
        assert masks[k] is not None and masks[k].area == expected.sum()


def test_tables_equal_the_person_by_person_computation() -> None:
    scene = _scene()
    owner, part_map = scene["owner"], scene["part_map"]
    masks, area = owner_masks(owner.astype(np.uint8), part_map, 2)
    scores = np.array([0.9, 0.6])
    tables = _tables(scene, area)
    probs = softmax(scene["logits"], axis=-1).transpose(2, 0, 1)
    for k in range(2):
        person = owner == k + 1
        expected_area = np.bincount(part_map[person], minlength=NUM_PARTS)
        np.testing.assert_array_equal(tables.part_area[k, 1:], expected_area[1:])
        assert tables.part_area[k, 0] == 0  # tight boxes: the crop is all person
        np.testing.assert_array_equal(masks[k].label_areas(NUM_PARTS), tables.part_area[k])
        present = expected_area > 0
        raw = part_pixel_scores(probs, part_map, person, 0.2)
        np.testing.assert_allclose(tables.part_score[k], np.where(present, raw, 0), rtol=1e-5)
        s_i = pixel_score(scene["instance"], person, 0.2)
        s_p = raw[1:][present[1:]].mean()
        assert tables.quality[k] == pytest.approx(qam_score(scores[k], s_i, s_p), rel=1e-5)
        color = softmax(scene["heads"]["color"], axis=-1)
        weights = np.take_along_axis(probs, part_map[None].astype(np.int64), 0)[0]
        for part in (HAIR, UPPER, PANTS):
            where = person & (part_map == part)
            if not where.any():
                assert not tables.distributions["color"][k, part].any()
                continue
            expected = (weights[where][:, None] * color[where]).sum(0)
            np.testing.assert_allclose(
                tables.distributions["color"][k, part], expected / expected.sum(), rtol=1e-5
            )


def test_person_without_source_pixels_gets_no_mask_and_zero_tables() -> None:
    scene = _scene()
    source_owner = np.where(scene["owner"] == 2, 0, scene["owner"]).astype(np.uint8)
    masks, area = owner_masks(source_owner, scene["part_map"], 2)
    assert masks[0] is not None and masks[1] is None and not area[1].any()
    tables = _tables(scene, area)
    assert tables.quality[1] == 0 and not tables.part_score[1].any()
    assert not tables.distributions["color"][1].any()


def test_never_confident_person_has_quality_zero() -> None:
    scene = _scene()
    _, area = owner_masks(scene["owner"].astype(np.uint8), scene["part_map"], 2)
    tables = _tables(scene, area, instance=np.zeros((6, 8), np.float32))
    np.testing.assert_array_equal(tables.quality, [0.0, 0.0])
    assert tables.part_score[0, HAIR] > 0  # part scores do not depend on the instance map
