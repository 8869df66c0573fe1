"""In-memory access to synthetic images: ``SyntheticImages(config, seed)[index] -> Sample``."""

from __future__ import annotations

from collections.abc import Iterator

from describeme.data.sample import Sample
from describeme.data.synth.config import SynthConfig
from describeme.data.synth.render import render_scene
from describeme.data.synth.spec import image_rng, sample_scene


def image_id(index: int) -> str:
    """The file stem of image ``index`` (zero-padded so names sort in index order)."""
    return f"{index:06d}"


def render_image(config: SynthConfig, seed: int, index: int) -> Sample:
    """Renders image ``index`` of stream ``seed``; the same pair always gives the same sample."""
    if index < 0:
        raise ValueError(f"image index must be >= 0, got {index}")
    return render_scene(sample_scene(image_rng(seed, index), config), image_id=image_id(index))


class SyntheticImages:
    """An endless, deterministic, indexable dataset of synthetic samples (no disk).

    Args:
        config: engine settings.
        seed: stream seed; image ``i`` depends only on ``(seed, i)``.
        length: the value of ``len()`` (for samplers and data loaders).

    Example::

        data = SyntheticImages(SynthConfig(), seed=0, length=1000)
        sample = data[3]  # Sample with image, parts, humans, color/size/pattern, keypoints
    """

    def __init__(self, config: SynthConfig | None = None, seed: int = 0, length: int = 10_000):
        if length <= 0:
            raise ValueError(f"length must be positive, got {length}")
        self.config = config or SynthConfig()
        self.seed = int(seed)
        self.length = int(length)

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int) -> Sample:
        if not 0 <= index < self.length:
            raise IndexError(f"index {index} out of range [0, {self.length})")
        return render_image(self.config, self.seed, index)

    def __iter__(self) -> Iterator[Sample]:
        for index in range(self.length):
            yield self[index]
