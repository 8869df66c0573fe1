"""Torch ``Dataset`` adapters: a reader's :class:`Sample` -> training tensors.

Example::

    from describeme.data.readers import open_dataset
    from describeme.models.datasets import ParsingTorchDataset, collate_parsing

    train = ParsingTorchDataset(open_dataset("data/synth"), train=True, size=(384, 512), seed=1)
    loader = torch.utils.data.DataLoader(train, batch_size=8, collate_fn=collate_parsing)
    for epoch in range(epochs):
        train.set_epoch(epoch)  # new augmentations per epoch, same for every worker count

Determinism: item ``i`` of epoch ``e`` draws its augmentation from
``numpy.random.default_rng((seed, e, i))``, so it does not depend on worker count, worker
order or torch's global generator.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch.utils.data import Dataset

from describeme.data.sample import Sample
from describeme.models.augment import (
    ColorJitter,
    letterbox_placement,
    random_placement,
    transform_sample,
)

IMAGENET_MEAN_RGB = (0.485, 0.456, 0.406)
IMAGENET_STD_RGB = (0.229, 0.224, 0.225)
_MEAN = np.asarray(IMAGENET_MEAN_RGB, dtype=np.float32)
_STD = np.asarray(IMAGENET_STD_RGB, dtype=np.float32)
DENSE_KEYS = ("image", "parts", "color", "size", "pattern", "humans")


class ParsingTorchDataset(Dataset):
    """Wraps a sequence of :class:`Sample` (e.g. ``open_dataset(...)``) for training.

    Args:
        dataset: indexable, ``dataset[i] -> Sample``.
        train: random scale/crop/flip/jitter when True; deterministic letterbox when False.
        size: (H, W) output size in pixels.
        scale_range: random factor on the fit-inside scale (train only).
        flip_prob: probability of a horizontal flip (train only).
        color_jitter: bounded photometric jitter (train only), None to disable.
        seed: base seed of the per-item generators.

    Items are dicts: ``image`` (3, H, W) float32 normalised RGB; ``parts``, ``color``,
    ``size``, ``pattern`` (H, W) int64 with 255 = ignore (all 255 when the dataset has no
    such map); ``humans`` (H, W) int64 renumbered 1..N; ``boxes_xyxy`` (N, 4) float32
    output pixels; ``masks`` (N, H, W) bool; ``keypoints`` (N, 17, 3) float32 (zeros when
    unlabelled); ``affine`` (2, 3) float32 source-pixel -> output-pixel map; ``image_id``.
    """

    def __init__(
        self,
        dataset: Sequence[Sample],
        *,
        train: bool,
        size: tuple[int, int] = (384, 512),
        scale_range: tuple[float, float] = (0.75, 1.25),
        flip_prob: float = 0.5,
        color_jitter: ColorJitter | None = ColorJitter(),
        seed: int = 0,
    ):
        if len(size) != 2 or min(size) <= 0 or any(int(v) != v for v in size):
            raise ValueError(f"size must be two positive integers (H, W), got {size}")
        if len(scale_range) != 2 or not 0 < scale_range[0] <= scale_range[1]:
            raise ValueError(
                f"scale_range must be (low, high) with 0 < low <= high, got {scale_range}"
            )
        if not 0.0 <= flip_prob <= 1.0:
            raise ValueError(f"flip_prob must be in [0, 1], got {flip_prob}")
        if color_jitter is not None and not isinstance(color_jitter, ColorJitter):
            raise TypeError(
                f"color_jitter must be a ColorJitter or None, got {type(color_jitter).__name__}"
            )
        self.dataset = dataset
        self.train = train
        self.size = (int(size[0]), int(size[1]))
        self.scale_range = (float(scale_range[0]), float(scale_range[1]))
        self.flip_prob = float(flip_prob)
        self.color_jitter = color_jitter
        self.seed = int(seed)
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        """Selects the augmentation stream of ``epoch`` (call before iterating an epoch)."""
        self.epoch = int(epoch)

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, index: int) -> dict[str, Any]:
        sample = self.dataset[index]
        src_hw = sample.image.shape[:2]
        if self.train:
            rng = np.random.default_rng((self.seed, self.epoch, int(index)))
            placement = random_placement(src_hw, self.size, self.scale_range, rng)
            flip = bool(rng.random() < self.flip_prob)
            jitter = self.color_jitter
        else:
            rng = np.random.default_rng(0)  # unused: eval draws nothing
            placement, flip, jitter = letterbox_placement(src_hw, self.size), False, None
        maps = transform_sample(sample, placement, flip=flip, jitter=jitter, rng=rng,
                                normalize=normalize_image)  # fmt: skip
        affine = placement.matrix
        if flip:  # x -> W - 1 - x after the placement
            affine = np.array([[-affine[0, 0], 0.0, self.size[1] - 1 - affine[0, 2]], affine[1]],
                              dtype=np.float32)  # fmt: skip
        return to_tensors(maps, sample.image_id, affine)


def normalize_image(image: np.ndarray) -> np.ndarray:
    """(H, W, 3) uint8 BGR -> (H, W, 3) float32 RGB, ImageNet mean/std normalised."""
    rgb = image[:, :, ::-1].astype(np.float32) * np.float32(1 / 255)
    return (rgb - _MEAN) / _STD


def to_tensors(maps: dict[str, Any], image_id: str, affine: np.ndarray) -> dict[str, Any]:
    """Numpy maps from ``transform_sample`` (normalised image) -> the tensor dict of one item."""
    rgb = maps["image"]
    humans = torch.from_numpy(maps["humans"].astype(np.int64))
    count = len(maps["keypoints"])
    masks = humans.unsqueeze(0) == torch.arange(1, count + 1).view(-1, 1, 1)  # (N, H, W)
    item: dict[str, Any] = {
        "image": torch.from_numpy(np.ascontiguousarray(rgb.transpose(2, 0, 1))),  # (3, H, W)
        "humans": humans,
        "boxes_xyxy": torch.from_numpy(maps["boxes_xyxy"].astype(np.float32)),
        "masks": masks,
        "keypoints": torch.from_numpy(maps["keypoints"].astype(np.float32)),
        "affine": torch.from_numpy(affine.astype(np.float32)),
        "image_id": image_id,
    }
    for name in ("parts", "color", "size", "pattern"):
        item[name] = torch.from_numpy(maps[name].astype(np.int64))
    return item


def collate_parsing(batch: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """Stacks dense maps to (B, ...) tensors; per-instance fields stay lists of length B.

    Returns:
        ``image`` (B, 3, H, W), ``parts``/``color``/``size``/``pattern``/``humans`` (B, H, W),
        ``affine`` (B, 2, 3); ``boxes_xyxy``, ``masks``, ``keypoints``, ``image_id`` as lists.
    """
    if not batch:
        raise ValueError("collate_parsing needs at least one item")
    shapes = {tuple(item["image"].shape) for item in batch}
    if len(shapes) != 1:
        raise ValueError(f"items have different image shapes {sorted(shapes)}; use one size")
    out: dict[str, Any] = {key: torch.stack([item[key] for item in batch]) for key in DENSE_KEYS}
    out["affine"] = torch.stack([item["affine"] for item in batch])
    for key in ("boxes_xyxy", "masks", "keypoints", "image_id"):
        out[key] = [item[key] for item in batch]
    return out


def build_parsing_dataset(
    dataset: Sequence[Sample], *, train: bool, **kwargs: Any
) -> ParsingTorchDataset:
    """Builds the adapter (keyword arguments as :class:`ParsingTorchDataset`)."""
    return ParsingTorchDataset(dataset, train=train, **kwargs)
