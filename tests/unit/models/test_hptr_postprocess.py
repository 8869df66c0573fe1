"""Postprocess: hand-made head outputs -> expected Persons; letterbox inversion; batching."""

from __future__ import annotations

import numpy as np
import pytest

from describeme.geometry import Letterbox
from describeme.labels import NUM_COLORS, NUM_PARTS, NUM_PATTERNS, NUM_SIZES
from describeme.models.hptr.postprocess import build_postprocessor
from describeme.types import Persons

HAIR, UPPER, LIGHT, RED = 2, 5, 3, 5
MODEL = 32  # model input side; head maps are 8x8


def _outputs(
    people: list[tuple[float, tuple[float, float, float, float], slice]], queries: int = 4
) -> dict[str, np.ndarray]:
    """Heads for ``people`` = [(person logit, cxcywh box, column slice of the 8x8 mask)]:
    hair on mask rows 0-1, upper-clothes on rows 2-7, light hair and red clothes."""
    logits = np.tile(np.array([-6.0, 6.0], np.float32), (queries, 1))
    boxes = np.full((queries, 4), 0.5, np.float32)
    masks = np.full((queries, 8, 8), -10.0, np.float32)
    for index, (logit, box, columns) in enumerate(people):
        logits[index] = (logit, -logit)
        boxes[index] = box
        masks[index][:, columns] = 10.0
    attribute = np.zeros((NUM_PARTS, 8, 8), np.float32)
    attribute[HAIR, :2], attribute[UPPER, 2:] = 8.0, 8.0
    color = np.zeros((NUM_COLORS, 8, 8), np.float32)
    color[LIGHT, :2], color[RED, 2:] = 8.0, 8.0
    size = np.zeros((NUM_SIZES, 8, 8), np.float32)
    size[2] = 8.0
    pattern = np.zeros((NUM_PATTERNS, 8, 8), np.float32)
    pattern[1] = 8.0
    return {
        "logits": logits,
        "boxes": boxes,
        "masks": masks,
        "attribute": attribute,
        "size": size,
        "pattern": pattern,
        "color": color,
    }


def _batch(*items: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    return {k: np.stack([item[k] for item in items]) for k in items[0]}


IDENTITY = Letterbox.fit((MODEL, MODEL), (MODEL, MODEL))


def test_one_person_gets_box_mask_parts_and_distributions() -> None:
    outputs = _outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))])
    persons = build_postprocessor()(_batch(outputs), [IDENTITY])[0]
    assert len(persons) == 1
    np.testing.assert_allclose(persons.xyxy, [[0, 0, 16, 32]], atol=1e-5)
    assert persons.score[0] == pytest.approx(1 / (1 + np.exp(-12)), rel=1e-6)
    expected = np.zeros((MODEL, MODEL), np.uint8)
    expected[:8, :16], expected[8:, :16] = HAIR, UPPER  # 8x8 step edges land on 4-pixel multiples
    np.testing.assert_array_equal(persons.masks[0].to_full(), expected)
    area = np.zeros(NUM_PARTS, np.float32)
    area[HAIR], area[UPPER] = 8 * 16, 24 * 16
    np.testing.assert_array_equal(persons.part_area[0], area)
    assert persons.color[0, HAIR].argmax() == LIGHT and persons.color[0, UPPER].argmax() == RED
    assert persons.color[0, HAIR, LIGHT] > 0.9
    for field in (persons.color, persons.size, persons.pattern):
        sums = field[0].sum(-1)
        np.testing.assert_allclose(sums[[HAIR, UPPER]], 1.0, atol=1e-5)
        assert np.all(np.delete(sums, [HAIR, UPPER]) == 0)
    assert persons.size[0, UPPER].argmax() == 2 and persons.pattern[0, UPPER].argmax() == 1
    assert persons.part_score[0, HAIR] > 0.9 and persons.part_score[0, 0] == 0
    assert 0.9 < persons.quality[0] <= 1.0


def test_overlap_goes_to_the_higher_scoring_person_and_people_are_sorted() -> None:
    outputs = _outputs(
        [(2.0, (0.5, 0.5, 0.5, 1.0), slice(2, 8)), (6.0, (0.375, 0.5, 0.75, 1.0), slice(0, 6))]
    )
    persons = build_postprocessor()(_batch(outputs), [IDENTITY])[0]
    assert len(persons) == 2
    assert persons.score[0] > persons.score[1]
    first, second = (m.to_binary() for m in persons.masks)
    assert not (first & second).any()
    # Contested columns 8..23 go to the stronger person (score * probability); its own soft
    # edge pixel (x = 23, probability 0.92) loses to the other's confident interior.
    assert first[:, :23].all() and not first[:, 24:].any()
    assert second[:, 24:].all() and not second[:, :23].any()
    assert (first | second).all()


def test_person_hidden_behind_a_stronger_one_is_dropped() -> None:
    outputs = _outputs(
        [(6.0, (0.5, 0.5, 1.0, 1.0), slice(0, 8)), (3.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))]
    )
    persons = build_postprocessor()(_batch(outputs), [IDENTITY])[0]
    assert len(persons) == 1 and persons.masks[0].area == MODEL * MODEL


@pytest.mark.parametrize(
    ("people", "threshold", "count"),
    [
        ([], 0.5, 0),
        ([(-1.0, (0.5, 0.5, 0.5, 0.5), slice(0, 4))], 0.5, 0),  # p(person) = 0.12
        ([(-1.0, (0.5, 0.5, 0.5, 0.5), slice(0, 4))], 0.1, 1),
        ([(6.0, (0.5, 0.5, 0.5, 0.5), slice(0, 0))], 0.5, 0),  # confident but no mask pixel
    ],
)
def test_score_threshold_and_empty_results(people, threshold: float, count: int) -> None:
    persons = build_postprocessor(score_threshold=threshold)(_batch(_outputs(people)), [IDENTITY])[
        0
    ]
    assert len(persons) == count
    assert persons.masks is not None and persons.color is not None and persons.quality is not None


def test_boxes_and_masks_are_mapped_back_through_the_letterbox() -> None:
    letterbox = Letterbox.fit((8, 16), (MODEL, MODEL))  # scale 2, 8 px of padding top and bottom
    assert (letterbox.scale, letterbox.pad_x, letterbox.pad_y) == (2.0, 0, 8)
    outputs = _outputs([(6.0, (0.25, 0.5, 0.5, 0.5), slice(0, 4))])
    persons = build_postprocessor()(_batch(outputs), [letterbox])[0]
    np.testing.assert_allclose(persons.xyxy, [[0, 0, 8, 8]], atol=1e-5)
    mask = persons.masks[0]
    assert mask.image_size == (8, 16)
    binary = mask.to_binary()
    assert binary[:, :8].all() and not binary[:, 8:].any()
    assert persons.part_area[0].sum() == 64


def test_batched_equals_single_images() -> None:
    first = _outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))])
    second = _outputs(
        [(3.0, (0.75, 0.5, 0.5, 1.0), slice(4, 8)), (5.0, (0.2, 0.5, 0.4, 1.0), slice(0, 3))]
    )
    postprocess = build_postprocessor()
    batched = postprocess(_batch(first, second), [IDENTITY, IDENTITY])
    singles = [postprocess(_batch(o), [IDENTITY])[0] for o in (first, second)]
    assert batched[0] == singles[0] and batched[1] == singles[1]
    assert [len(p) for p in batched] == [1, 2]


def test_accepts_torch_tensors() -> None:
    import torch

    outputs = _outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))])
    tensors = {k: torch.from_numpy(v) for k, v in _batch(outputs).items()}
    postprocess = build_postprocessor()
    assert postprocess(tensors, [IDENTITY])[0] == postprocess(_batch(outputs), [IDENTITY])[0]


def test_quality_drops_for_uncertain_parts() -> None:
    sure = _outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))])
    unsure = _outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))])
    unsure["attribute"][[HAIR, UPPER, 9]] = 1.0  # three parts equally likely
    postprocess = build_postprocessor()
    quality_sure = postprocess(_batch(sure), [IDENTITY])[0].quality[0]
    quality_unsure = postprocess(_batch(unsure), [IDENTITY])[0].quality[0]
    assert quality_unsure < quality_sure - 0.2


@pytest.mark.parametrize(
    ("mutate", "letterboxes", "message"),
    [
        (lambda o: o.pop("color"), [IDENTITY], "lack 'color'"),
        (
            lambda o: None,
            [Letterbox.fit((64, 64), (64, 64))],
            "mask maps are 8x8 but the letterbox targets",
        ),
        (lambda o: None, [IDENTITY, IDENTITY], "2 letterboxes for a batch of 1"),
        (
            lambda o: o.update(attribute=o["attribute"][:, :20]),
            [IDENTITY],
            r"attribute must be \(22, 8, 8\)",
        ),
    ],
)
def test_bad_inputs_raise(mutate, letterboxes, message: str) -> None:
    outputs = _batch(_outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))]))
    mutate(outputs)
    with pytest.raises(ValueError, match=message):
        build_postprocessor()(outputs, letterboxes)


@pytest.mark.parametrize(
    "kwargs", [{"score_threshold": 1.5}, {"mask_threshold": -0.1}, {"qam_threshold": 2}]
)
def test_bad_thresholds_raise(kwargs: dict) -> None:
    with pytest.raises(ValueError, match="must be in"):
        build_postprocessor(**kwargs)


def test_result_is_persons_with_all_hptr_fields() -> None:
    persons = build_postprocessor()(
        _batch(_outputs([(6.0, (0.25, 0.5, 0.5, 1.0), slice(0, 4))])), [IDENTITY]
    )[0]
    assert isinstance(persons, Persons) and persons.keypoints is None
    assert persons.track_id.tolist() == [-1]


def test_end_to_end_from_the_tiny_model_through_a_backend() -> None:
    from pathlib import Path

    import torch

    from describeme.models.hptr.config import build_model_from_config, load_hptr_config
    from describeme.models.runtime import build_backend

    torch.manual_seed(0)
    config = load_hptr_config(Path(__file__).resolve().parents[3] / "configs/models/hptr_tiny.yaml")
    backend = build_backend("torch", build_model_from_config(config))
    frames = np.random.default_rng(0).integers(0, 255, (2, 48, 64, 3), dtype=np.uint8)
    letterboxes = [Letterbox.fit((48, 64), (64, 64)) for _ in frames]
    images = np.stack([lb.apply(f) for lb, f in zip(letterboxes, frames, strict=True)])
    outputs = backend.infer(images.transpose(0, 3, 1, 2).astype(np.float32) / 255)
    results = build_postprocessor(score_threshold=0.0)(outputs, letterboxes)
    assert len(results) == 2
    for persons in results:
        assert len(persons) >= 1  # every query kept; overlaps leave at least one owner
        assert all(mask.image_size == (48, 64) for mask in persons.masks)
        assert np.all((persons.xyxy >= 0) & (persons.xyxy <= [64, 48, 64, 48]))
        np.testing.assert_array_equal(
            persons.part_area, np.stack([m.label_areas(NUM_PARTS) for m in persons.masks])
        )
