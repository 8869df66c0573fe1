"""Box formats and the letterbox transform between frame and model input.

One box format crosses stage boundaries: absolute pixel xyxy. Normalised cxcywh stays inside
HPTR; the names here say which format goes in and which comes out.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def box_xyxy_to_cxcywh(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) xyxy -> (N, 4) cxcywh, same units."""
    x0, y0, x1, y1 = np.moveaxis(np.asarray(boxes, dtype=np.float32), -1, 0)
    return np.stack([(x0 + x1) / 2, (y0 + y1) / 2, x1 - x0, y1 - y0], axis=-1)


def box_cxcywh_to_xyxy(boxes: np.ndarray) -> np.ndarray:
    """(N, 4) cxcywh -> (N, 4) xyxy, same units."""
    cx, cy, w, h = np.moveaxis(np.asarray(boxes, dtype=np.float32), -1, 0)
    return np.stack([cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], axis=-1)


def box_iou_xyxy(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Pairwise IoU of (N, 4) and (M, 4) xyxy boxes -> (N, M) float32 (0 for empty boxes)."""
    a = np.asarray(a, dtype=np.float32).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float32).reshape(-1, 4)
    area_a = np.clip(a[:, 2] - a[:, 0], 0, None) * np.clip(a[:, 3] - a[:, 1], 0, None)
    area_b = np.clip(b[:, 2] - b[:, 0], 0, None) * np.clip(b[:, 3] - b[:, 1], 0, None)
    lt = np.maximum(a[:, None, :2], b[None, :, :2])
    rb = np.minimum(a[:, None, 2:], b[None, :, 2:])
    wh = np.clip(rb - lt, 0, None)
    inter = wh[..., 0] * wh[..., 1]
    union = area_a[:, None] + area_b[None, :] - inter
    return np.where(union > 0, inter / np.maximum(union, 1e-12), 0.0).astype(np.float32)


@dataclass(frozen=True)
class Letterbox:
    """Uniform scale + padding from a source frame to a fixed model input size.

    ``model = source * scale + (pad_x, pad_y)``; :meth:`boxes_to_source` inverts it.

    Attributes:
        source_size: (height, width) of the original frame.
        target_size: (height, width) of the model input.
        scale: source-to-model scale factor.
        pad_x, pad_y: left/top padding in model pixels.
    """

    source_size: tuple[int, int]
    target_size: tuple[int, int]
    scale: float
    pad_x: int
    pad_y: int

    @classmethod
    def fit(cls, source_size: tuple[int, int], target_size: tuple[int, int]) -> Letterbox:
        (sh, sw), (th, tw) = source_size, target_size
        if min(sh, sw, th, tw) <= 0:
            raise ValueError(
                f"letterbox sizes must be positive, got {source_size} -> {target_size}"
            )
        scale = min(th / sh, tw / sw)
        new_h, new_w = round(sh * scale), round(sw * scale)
        return cls(source_size, target_size, scale, (tw - new_w) // 2, (th - new_h) // 2)

    def apply(self, image: np.ndarray, pad_value: int = 114) -> np.ndarray:
        """Resizes and pads an (H, W, C) image to ``target_size``."""
        import cv2

        if image.shape[:2] != self.source_size:
            raise ValueError(f"image is {image.shape[:2]}, letterbox expects {self.source_size}")
        th, tw = self.target_size
        new_h, new_w = (
            round(self.source_size[0] * self.scale),
            round(self.source_size[1] * self.scale),
        )
        resized = cv2.resize(image, (new_w, new_h), interpolation=cv2.INTER_LINEAR)
        out = np.full((th, tw, image.shape[2]), pad_value, dtype=image.dtype)
        out[self.pad_y : self.pad_y + new_h, self.pad_x : self.pad_x + new_w] = resized
        return out

    def points_to_source(self, xy: np.ndarray) -> np.ndarray:
        """Maps (..., 2) model-pixel points back to source pixels."""
        xy = np.asarray(xy, dtype=np.float32)
        offset = np.array([self.pad_x, self.pad_y], dtype=np.float32)
        return (xy - offset) / self.scale

    def boxes_to_source(self, xyxy: np.ndarray) -> np.ndarray:
        """Maps (N, 4) model-pixel xyxy boxes back to source pixels, clipped to the frame."""
        pts = self.points_to_source(np.asarray(xyxy, dtype=np.float32).reshape(-1, 2, 2))
        h, w = self.source_size
        pts[..., 0] = np.clip(pts[..., 0], 0, w)
        pts[..., 1] = np.clip(pts[..., 1], 0, h)
        return pts.reshape(-1, 4)
