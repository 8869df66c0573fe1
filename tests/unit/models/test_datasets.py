"""Torch dataset adapter and augmentation: shapes, flips, crops, padding, determinism."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
import torch

from describeme import labels
from describeme.data.sample import Sample, boxes_from_humans
from describeme.models.augment import ColorJitter, Placement, transform_sample
from describeme.models.datasets import (
    IMAGENET_MEAN_RGB,
    IMAGENET_STD_RGB,
    ParsingTorchDataset,
    collate_parsing,
)

torch.set_num_threads(1)
H, W = 20, 40


def make_sample(characteristics: bool = True, seed: int = 0) -> Sample:
    """Person 1 on the left (left-arm + upper-clothes), person 2 on the right (right-leg)."""
    rng = np.random.default_rng(seed)
    image = rng.integers(0, 255, (H, W, 3), dtype=np.uint8)
    parts = np.zeros((H, W), np.uint8)
    humans = np.zeros((H, W), np.uint16)
    humans[2:18, 2:12] = 1
    parts[2:18, 2:6] = labels.LEFT_ARM
    parts[2:18, 6:12] = labels.UPPER_CLOTHES
    humans[4:16, 26:36] = 2
    parts[4:16, 26:36] = labels.RIGHT_LEG
    keypoints = np.zeros((2, 17, 3), np.float32)
    keypoints[0, labels.KEYPOINT_ID["left_wrist"]] = (3, 10, 2)
    keypoints[1, labels.KEYPOINT_ID["right_knee"]] = (30, 9, 2)
    color = size = pattern = None
    if characteristics:
        color = np.where(parts == labels.UPPER_CLOTHES, labels.COLOR_ID["red"], 0).astype(np.uint8)
        size = np.where(parts == labels.UPPER_CLOTHES, 1, 0).astype(np.uint8)
        pattern = np.where(parts == labels.UPPER_CLOTHES, 2, 0).astype(np.uint8)
    return Sample("s", image, parts, humans, boxes_from_humans(humans), color=color, size=size,
                  pattern=pattern, keypoints=keypoints)  # fmt: skip


def test_eval_letterbox_shapes_dtypes_and_alignment() -> None:
    item = ParsingTorchDataset([make_sample()], train=False, size=(32, 48))[0]
    # fit scale min(32/20, 48/40) = 1.2 -> 24 x 48, pad_y = 4
    assert item["image"].shape == (3, 32, 48) and item["image"].dtype == torch.float32
    for name in ("parts", "color", "size", "pattern", "humans"):
        assert item[name].shape == (32, 48) and item[name].dtype == torch.int64
    assert (item["parts"][:4] == 255).all() and (item["parts"][-4:] == 255).all()
    assert (item["humans"][:4] == 0).all()
    assert (item["image"][:, :4] == 0).all()  # padding normalises to exactly 0
    assert item["masks"].shape == (2, 32, 48) and item["masks"].dtype == torch.bool
    assert torch.equal(item["masks"][1], item["humans"] == 2)
    torch.testing.assert_close(item["boxes_xyxy"], torch.tensor([[2.4, 6.4, 14.4, 25.6],
                                                                 [31.2, 8.8, 43.2, 23.2]]),
                               atol=0.6, rtol=0)  # fmt: skip
    assert item["keypoints"].shape == (2, 17, 3)
    x, y, v = item["keypoints"][1, labels.KEYPOINT_ID["right_knee"]].tolist()
    assert v == 2 and item["humans"][round(y), round(x)] == 2
    assert item["parts"][round(y), round(x)] == labels.RIGHT_LEG
    sx, ty = 1.2, 4 + 0.5 * 1.2 - 0.5
    assert (x, y) == pytest.approx((30 * sx + 0.5 * sx - 0.5, 9 * 1.2 + ty), abs=1e-4)


def test_image_is_normalised_rgb() -> None:
    sample = make_sample()
    item = ParsingTorchDataset([sample], train=False, size=(H, W))[0]  # identity placement
    rgb = sample.image[5, 7, ::-1] / 255.0
    expected = (rgb - np.array(IMAGENET_MEAN_RGB)) / np.array(IMAGENET_STD_RGB)
    np.testing.assert_allclose(item["image"][:, 5, 7].numpy(), expected, atol=1e-5)


def test_missing_characteristics_are_ignore_and_present_ones_survive() -> None:
    plain = ParsingTorchDataset([make_sample(characteristics=False)], train=False, size=(H, W))[0]
    for name in ("color", "size", "pattern"):
        assert (plain[name] == 255).all()
    full = ParsingTorchDataset([make_sample()], train=False, size=(H, W))[0]
    assert full["color"][10, 8] == labels.COLOR_ID["red"] and full["color"][0, 0] == 0


def test_flip_swaps_left_right_classes_and_keypoints() -> None:
    sample = make_sample()
    ds = ParsingTorchDataset([sample], train=True, size=(H, W), scale_range=(1.0, 1.0),
                             flip_prob=1.0, color_jitter=None)  # fmt: skip
    item = ds[0]
    np.testing.assert_array_equal(item["parts"].numpy(), labels.flip_part_map(sample.parts))
    assert item["parts"][10, W - 1 - 3] == labels.RIGHT_ARM  # was left-arm at x = 3
    assert item["parts"][10, W - 1 - 30] == labels.LEFT_LEG  # was right-leg at x = 30
    np.testing.assert_array_equal(item["humans"].numpy(), sample.humans[:, ::-1])
    wrist = item["keypoints"][0, labels.KEYPOINT_ID["right_wrist"]].tolist()
    assert wrist == [W - 1 - 3, 10, 2]  # left wrist became the right wrist, mirrored
    assert item["keypoints"][0, labels.KEYPOINT_ID["left_wrist"], 2] == 0
    knee = item["keypoints"][1, labels.KEYPOINT_ID["left_knee"]].tolist()
    assert knee == [W - 1 - 30, 9, 2]
    torch.testing.assert_close(item["boxes_xyxy"][0], torch.tensor([28.0, 2, 38, 18]))
    rgb = sample.image[:, ::-1][:, :, ::-1] / 255.0
    expected = (rgb - np.array(IMAGENET_MEAN_RGB)) / np.array(IMAGENET_STD_RGB)
    np.testing.assert_allclose(item["image"].permute(1, 2, 0).numpy(), expected, atol=1e-5)
    kp = np.array([3.0, 10.0, 1.0])  # the affine maps source points to output points
    np.testing.assert_allclose(item["affine"].numpy() @ kp, [W - 1 - 3, 10], atol=1e-5)


def test_cropped_away_person_is_dropped_and_renumbered() -> None:
    sample = make_sample()
    crop_right_half = Placement(
        src_hw=(H, W), resized_hw=(H, W), offset_xy=(-20, 0), out_hw=(H, 20)
    )
    maps = transform_sample(sample, crop_right_half, flip=False, jitter=None,
                            rng=np.random.default_rng(0))  # fmt: skip
    assert maps["humans"].max() == 1 and maps["keypoints"].shape == (1, 17, 3)
    assert maps["keypoints"][0, labels.KEYPOINT_ID["right_knee"]].tolist() == [10, 9, 2]
    np.testing.assert_array_equal(maps["boxes_xyxy"], [[6, 4, 16, 16]])
    assert (maps["parts"][maps["humans"] == 1] == labels.RIGHT_LEG).all()


def test_partly_cropped_keypoint_becomes_unlabelled() -> None:
    sample = make_sample()
    keep_left = Placement(src_hw=(H, W), resized_hw=(H, W), offset_xy=(0, 0), out_hw=(H, 5))
    maps = transform_sample(sample, keep_left, flip=False, jitter=None,
                            rng=np.random.default_rng(0))  # fmt: skip
    assert maps["keypoints"].shape == (1, 17, 3)  # person 2 gone, person 1 kept
    assert maps["keypoints"][0, labels.KEYPOINT_ID["left_wrist"]].tolist() == [3, 10, 2]
    keep_top = Placement(src_hw=(H, W), resized_hw=(H, W), offset_xy=(0, 0), out_hw=(8, W))
    maps = transform_sample(sample, keep_top, flip=False, jitter=None,
                            rng=np.random.default_rng(0))  # fmt: skip
    assert maps["keypoints"][0, labels.KEYPOINT_ID["left_wrist"]].tolist() == [0, 0, 0]


def test_padding_is_ignored_when_zoomed_out() -> None:
    ds = ParsingTorchDataset([make_sample()], train=True, size=(H, W), scale_range=(0.5, 0.5),
                             flip_prob=0.0, color_jitter=None)  # fmt: skip
    item = ds[0]
    placed = item["image"].abs().sum(0) > 0  # non-pad pixels (random photo is never the mean)
    assert int(placed.sum()) == 10 * 20
    assert (item["parts"][~placed] == 255).all() and (item["humans"][~placed] == 0).all()
    assert (item["color"][~placed] == 255).all()
    assert (item["parts"][placed] != 255).all()


def test_augmentation_is_deterministic_per_seed_epoch_index() -> None:
    samples = [make_sample(seed=i) for i in range(4)]
    a = ParsingTorchDataset(samples, train=True, size=(16, 24), seed=3)
    b = ParsingTorchDataset(samples, train=True, size=(16, 24), seed=3)
    for i in range(4):
        torch.testing.assert_close(a[i]["image"], b[i]["image"])
        assert torch.equal(a[i]["parts"], b[i]["parts"])
    before = [a[i]["image"] for i in range(4)]
    a.set_epoch(1)
    assert any(not torch.equal(before[i], a[i]["image"]) for i in range(4))
    c = ParsingTorchDataset(samples, train=True, size=(16, 24), seed=4)
    assert any(not torch.equal(before[i], c[i]["image"]) for i in range(4))
    for workers in (0, 2):  # the same items whatever the worker count
        loader = torch.utils.data.DataLoader(b, batch_size=2, num_workers=workers,
                                             collate_fn=collate_parsing)  # fmt: skip
        batches = list(loader)
        torch.testing.assert_close(batches[1]["image"][0], before[2])
        assert batches[0]["image_id"] == ["s", "s"]


def test_color_jitter_is_bounded_and_keeps_hue() -> None:
    with pytest.raises(ValueError, match=r"ColorJitter.brightness=0.5 must be in \[0, 0.2\]"):
        ColorJitter(brightness=0.5)
    with pytest.raises(ValueError, match="gamma"):
        ColorJitter(gamma=-0.1)
    palette = np.repeat(labels.COLOR_PALETTE[None, 1:, ::-1], 4, axis=0).copy()  # BGR rows
    hsv_before = cv2.cvtColor(palette, cv2.COLOR_BGR2HSV).astype(int)
    jitter = ColorJitter(0.2, 0.2, 0.2)
    for seed in range(20):
        out = jitter.apply(palette, np.random.default_rng(seed))
        hsv = cv2.cvtColor(out, cv2.COLOR_BGR2HSV).astype(int)
        saturated = hsv_before[0, :, 1] > 80
        hue_change = np.abs(hsv[0, :, 0] - hsv_before[0, :, 0])
        assert (np.minimum(hue_change, 180 - hue_change)[saturated] <= 6).all()
        grey = out[0, :3, 0].astype(int)  # dark < medium < light stays ordered
        assert grey[0] < grey[1] < grey[2]


def test_collate_stacks_dense_maps_and_lists_instances() -> None:
    ds = ParsingTorchDataset([make_sample(), make_sample(seed=1)], train=False, size=(16, 32))
    batch = collate_parsing([ds[0], ds[1]])
    assert batch["image"].shape == (2, 3, 16, 32) and batch["parts"].shape == (2, 16, 32)
    assert batch["affine"].shape == (2, 2, 3)
    assert isinstance(batch["masks"], list) and batch["masks"][0].shape == (2, 16, 32)
    assert batch["image_id"] == ["s", "s"] and len(batch["boxes_xyxy"]) == 2
    with pytest.raises(ValueError, match="at least one"):
        collate_parsing([])
    other = ParsingTorchDataset([make_sample()], train=False, size=(8, 8))[0]
    with pytest.raises(ValueError, match="different image shapes"):
        collate_parsing([ds[0], other])


@pytest.mark.parametrize(
    "kwargs, error, message",
    [({"size": (0, 10)}, ValueError, "size"), ({"size": (10,)}, ValueError, "size"),
     ({"scale_range": (1.5, 1.0)}, ValueError, "scale_range"),
     ({"flip_prob": 1.5}, ValueError, "flip_prob"),
     ({"color_jitter": 0.2}, TypeError, "color_jitter")],
)  # fmt: skip
def test_bad_arguments(kwargs: dict, error: type, message: str) -> None:
    with pytest.raises(error, match=message):
        ParsingTorchDataset([make_sample()], train=True, **kwargs)


def test_sample_without_persons() -> None:
    image = np.zeros((10, 10, 3), np.uint8)
    empty = Sample("e", image, np.zeros((10, 10), np.uint8), np.zeros((10, 10), np.uint16),
                   np.zeros((0, 4), np.float32))  # fmt: skip
    item = ParsingTorchDataset([empty], train=True, size=(8, 8))[0]
    assert item["masks"].shape == (0, 8, 8) and item["boxes_xyxy"].shape == (0, 4)
    assert item["keypoints"].shape == (0, 17, 3)
