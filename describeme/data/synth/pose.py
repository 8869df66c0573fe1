"""Articulated 3D stick figures on the COCO skeleton, posed and projected to the image.

Units are person heights; y points up from the ground, x to the person's left, z forward.
A view is a yaw angle: 0 faces the camera, 180 shows the back, +90 walks to the image's
right. Projection is orthographic per person (people are small against their distance).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

POSES = ("walk", "stand", "arms_raised", "arms_crossed", "sit", "bend")
HEAD_CENTER = 17  # extra joint after the 17 COCO keypoints: centre of the head
NECK = 18  # extra joint: base of the neck (shoulder centre)
PELVIS = 19  # extra joint: hip centre
NUM_JOINTS = 20


@dataclass
class Body:
    """Body proportions in person heights."""

    head_radius: float
    shoulder_half: float
    hip_half: float
    torso: float
    neck: float
    upper_arm: float
    forearm: float
    thigh: float
    shin: float
    girth: float  # torso depth (front to back), for side views

    @classmethod
    def sample(cls, rng: np.random.Generator) -> Body:
        build = rng.uniform(0.85, 1.2)  # slim .. broad
        head = rng.uniform(0.06, 0.075)
        return cls(
            head_radius=head,
            shoulder_half=rng.uniform(0.1, 0.125) * build,
            hip_half=rng.uniform(0.07, 0.095) * build,
            torso=rng.uniform(0.28, 0.31),
            neck=rng.uniform(0.03, 0.045),
            upper_arm=rng.uniform(0.16, 0.18),
            forearm=rng.uniform(0.14, 0.16),
            thigh=rng.uniform(0.23, 0.26),
            shin=rng.uniform(0.22, 0.25),
            girth=rng.uniform(0.1, 0.14) * build,
        )


@dataclass
class Pose:
    """Joint angles (radians) of one pose; the walking cycle is a function of ``phase``."""

    kind: str
    phase: float = 0.0
    lean: float = 0.0  # torso pitch forward
    thigh: tuple[float, float] = (0.0, 0.0)  # (left, right) forward swing from vertical
    knee: tuple[float, float] = (0.0, 0.0)  # knee bend
    arm: tuple[float, float] = (0.0, 0.0)  # shoulder flexion forward (pi = straight up)
    abduct: tuple[float, float] = (0.1, 0.1)  # sideways lift of the upper arm
    elbow: tuple[float, float] = (0.1, 0.1)  # elbow flexion
    crossed: bool = False

    @classmethod
    def sample(cls, rng: np.random.Generator, kind: str, phase: float | None = None) -> Pose:
        phase = float(rng.uniform(0, 2 * np.pi)) if phase is None else phase
        if kind == "walk":
            return walking(phase, stride=float(rng.uniform(0.25, 0.45)))
        j = lambda s: float(rng.normal(0, s))  # noqa: E731 - small random jitter
        if kind == "stand":
            return cls(
                kind,
                thigh=(j(0.08), j(0.08)),
                knee=(abs(j(0.05)), abs(j(0.05))),
                arm=(j(0.15), j(0.15)),
                abduct=(0.08 + abs(j(0.1)), 0.08 + abs(j(0.1))),
                elbow=(abs(j(0.3)), abs(j(0.3))),
            )
        if kind == "arms_raised":
            both = rng.random() < 0.6
            up = (float(rng.uniform(2.4, 3.1)), float(rng.uniform(2.4, 3.1)) if both else j(0.2))
            return cls(
                kind,
                thigh=(j(0.05), j(0.05)),
                arm=up,
                abduct=(0.3 + j(0.1), 0.3 + j(0.1)),
                elbow=(abs(j(0.4)), abs(j(0.4))),
            )
        if kind == "arms_crossed":
            return cls(
                kind,
                thigh=(j(0.05), j(0.05)),
                arm=(0.25, 0.25),
                abduct=(0.05, 0.05),
                elbow=(1.9, 1.9),
                crossed=True,
            )
        if kind == "sit":
            return cls(
                kind,
                lean=j(0.1),
                thigh=(1.5 + j(0.1), 1.5 + j(0.1)),
                knee=(1.5 + j(0.1), 1.5 + j(0.1)),
                arm=(0.4 + j(0.2), 0.4 + j(0.2)),
                elbow=(0.8 + j(0.2), 0.8 + j(0.2)),
            )
        if kind == "bend":
            lean = float(rng.uniform(0.5, 1.2))
            return cls(
                kind,
                lean=lean,
                thigh=(-0.2, -0.2),
                knee=(0.2, 0.2),
                arm=(lean + 0.2, lean + 0.3),
                elbow=(0.2, 0.3),
            )
        raise ValueError(f"unknown pose {kind!r}; expected one of {POSES}")


def walking(phase: float, stride: float = 0.35) -> Pose:
    """The pose at ``phase`` (radians) of a walking cycle; legs and arms swing in antiphase."""
    s = np.sin(phase)
    knee_l = 0.15 + 0.45 * max(0.0, -np.sin(phase + 0.9))
    knee_r = 0.15 + 0.45 * max(0.0, np.sin(phase + 0.9))
    return Pose(
        "walk",
        phase=phase,
        lean=0.05,
        thigh=(stride * s, -stride * s),
        knee=(knee_l, knee_r),
        arm=(-0.6 * stride * s, 0.6 * stride * s),
        abduct=(0.08, 0.08),
        elbow=(0.2 + 0.2 * max(0, s), 0.2 + 0.2 * max(0, -s)),
    )


def joints_3d(body: Body, pose: Pose) -> np.ndarray:
    """(20, 3) joint positions: the 17 COCO keypoints, head centre, neck, pelvis."""
    out = np.zeros((NUM_JOINTS, 3))
    pelvis = np.array([0.0, body.thigh + body.shin + 0.03, 0.0])
    spine = np.array([0.0, np.cos(pose.lean), np.sin(pose.lean)])
    neck = pelvis + body.torso * spine
    head = neck + (body.neck + body.head_radius) * np.array(
        [0, np.cos(pose.lean * 0.5), np.sin(pose.lean * 0.5)]
    )
    out[PELVIS], out[NECK], out[HEAD_CENTER] = pelvis, neck, head
    r = body.head_radius
    out[0] = head + [0, -0.1 * r, r]
    out[1], out[2] = head + [0.35 * r, 0.25 * r, 0.85 * r], head + [-0.35 * r, 0.25 * r, 0.85 * r]
    out[3], out[4] = head + [0.95 * r, 0, 0], head + [-0.95 * r, 0, 0]
    for side, sign in ((0, 1.0), (1, -1.0)):  # 0 = left (+x), 1 = right
        shoulder = neck + [sign * body.shoulder_half, -0.02, 0]
        flex, abd = pose.arm[side], pose.abduct[side]
        upper = np.array(
            [sign * np.sin(abd), -np.cos(abd) * np.cos(flex), np.cos(abd) * np.sin(flex)]
        )
        elbow = shoulder + body.upper_arm * upper
        if pose.crossed:  # forearm across the chest towards the other side
            fore = np.array([-sign * 0.85, 0.35, 0.4])
            fore /= np.linalg.norm(fore)
        else:
            ang = flex + pose.elbow[side]
            fore = np.array([sign * np.sin(abd) * 0.5, -np.cos(ang), np.sin(ang)])
            fore /= np.linalg.norm(fore)
        out[5 + side], out[7 + side] = shoulder, elbow
        out[9 + side] = elbow + body.forearm * fore
        hip = pelvis + [sign * body.hip_half, 0, 0]
        th, kn = pose.thigh[side], pose.knee[side]
        knee = hip + body.thigh * np.array([0, -np.cos(th), np.sin(th)])
        out[11 + side], out[13 + side] = hip, knee
        out[15 + side] = knee + body.shin * np.array([0, -np.cos(th - kn), np.sin(th - kn)])
    out[:, 1] -= out[[15, 16], 1].min() - 0.03  # feet on the ground
    return out


def project(
    joints: np.ndarray, yaw_deg: float, foot_xy: tuple[float, float], height_px: float
) -> tuple[np.ndarray, np.ndarray]:
    """Projects (J, 3) joints for a view; returns (J, 2) pixel xy and (J,) depth to camera.

    Depth grows towards the camera, in person heights.
    """
    yaw = np.deg2rad(yaw_deg)
    cos, sin = np.cos(yaw), np.sin(yaw)
    x = joints[:, 0] * cos + joints[:, 2] * sin
    depth = -joints[:, 0] * sin + joints[:, 2] * cos
    xy = np.stack([foot_xy[0] + height_px * x, foot_xy[1] - height_px * joints[:, 1]], axis=1)
    return xy, depth


def view_name(yaw_deg: float) -> str:
    """The nearest of front/right/back/left for a yaw (for descriptions)."""
    names = ("front", "right", "back", "left")
    return names[int(np.round((yaw_deg % 360) / 90)) % 4]
