"""Rasterises one person into a local part-label map, back-to-front within the person.

Every pixel a person covers gets exactly one CCIHP part id here, so the image painted from
this map later has exact labels by construction. Drawing (:mod:`.drawer`) is in layers (far
leg, torso, near arm, head, ...) sorted by each layer's depth towards the camera, which is
what makes side and back views and crossed arms come out right.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from describeme.data.synth.drawer import Canvas, PersonDrawer
from describeme.data.synth.outfit import Outfit
from describeme.data.synth.pose import HEAD_CENTER, Body, Pose, joints_3d, project


@dataclass
class PersonSpec:
    """Everything needed to draw one person.

    Attributes:
        body, pose: proportions and joint angles.
        yaw: view angle in degrees (0 faces the camera, 180 the back, 90 faces image right).
        foot_xy: pixel position of the point between the feet on the ground.
        height_px: standing height in pixels.
        outfit: part styles.
        track_id: identity (video) or the index in the scene (images).
    """

    body: Body
    pose: Pose
    yaw: float
    foot_xy: tuple[float, float]
    height_px: float
    outfit: Outfit
    track_id: int = 0


@dataclass
class PersonRaster:
    """A person drawn in a local crop.

    Attributes:
        parts: (h, w) uint8 part ids, 0 outside the person.
        offset: (x, y) image position of the crop's top-left pixel.
        keypoints: (17, 2) float32 integer-valued pixel xy in image coordinates.
        self_hidden: (17,) bool, keypoints facing away from the camera (back of the head).
    """

    parts: np.ndarray
    offset: tuple[int, int]
    keypoints: np.ndarray
    self_hidden: np.ndarray


def rasterize(spec: PersonSpec) -> PersonRaster:
    """Draws ``spec`` into a local crop; see :class:`PersonRaster`."""
    joints = joints_3d(spec.body, spec.pose)
    xy, depth = project(joints, spec.yaw, spec.foot_xy, spec.height_px)
    margin = 0.16 * spec.height_px + 3
    x0, y0 = int(np.floor(xy[:, 0].min() - margin)), int(np.floor(xy[:, 1].min() - margin))
    x1, y1 = int(np.ceil(xy[:, 0].max() + margin)), int(np.ceil(xy[:, 1].max() + margin))
    canvas = Canvas((y1 - y0, x1 - x0))
    local = xy - np.array([x0, y0])
    drawer = PersonDrawer(spec, canvas, local, depth)
    drawer.draw()
    parts, (x0, y0) = _crop(canvas.map, x0, y0)
    keypoints = np.round(xy[:17]).astype(np.float32)
    head_depth = depth[HEAD_CENTER]
    hidden = np.zeros(17, dtype=bool)
    hidden[:5] = depth[:5] < head_depth - 0.25 * spec.body.head_radius
    return PersonRaster(parts, (x0, y0), keypoints, hidden)


def _crop(parts: np.ndarray, x0: int, y0: int) -> tuple[np.ndarray, tuple[int, int]]:
    """Crops a local map to its drawn pixels (less to paint and composite)."""
    bx, by, bw, bh = cv2.boundingRect(parts)
    if bw == 0 or bh == 0:
        return parts[:0, :0], (x0, y0)
    return parts[by : by + bh, bx : bx + bw], (x0 + bx, y0 + by)
