"""Drawing primitives and the per-layer drawing of one person's parts (pixel units)."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

import cv2
import numpy as np

from describeme.data.synth.outfit import LONG, SHORT, SPARSE
from describeme.data.synth.pose import HEAD_CENTER, NECK, PELVIS
from describeme.labels import (
    BAG,
    COAT,
    FACE,
    FACE_MASK,
    GLASSES,
    GLOVE,
    HAIR,
    HAT,
    LEFT_ARM,
    LEFT_LEG,
    LEFT_SHOE,
    OTHERS,
    PANTS,
    SCARF_TIE,
    SKIRT,
    SOCKS,
    TORSO_SKIN,
    UPPER_CLOTHES,
)  # fmt: skip

if TYPE_CHECKING:
    from describeme.data.synth.person import PersonSpec


class Canvas:
    """Integer drawing helpers on the local part map (pixel units)."""

    def __init__(self, shape: tuple[int, int]) -> None:
        self.map = np.zeros(shape, dtype=np.uint8)

    def seg(self, p: np.ndarray, q: np.ndarray, width: float, value: int) -> None:
        cv2.line(self.map, _pt(p), _pt(q), int(value), max(1, int(round(width))), cv2.LINE_8)

    def poly(self, points: np.ndarray, value: int) -> None:
        cv2.fillPoly(self.map, [np.round(points).astype(np.int32)], int(value))

    def ellipse(
        self,
        center: np.ndarray,
        axes: tuple[float, float],
        value: int,
        angle: float = 0.0,
        start: float = 0,
        end: float = 360,
    ) -> None:
        ax = (max(1, int(round(axes[0]))), max(1, int(round(axes[1]))))
        cv2.ellipse(self.map, _pt(center), ax, angle, start, end, int(value), -1)


def _pt(p: np.ndarray) -> tuple[int, int]:
    return int(round(float(p[0]))), int(round(float(p[1])))


def _lerp(a: np.ndarray, b: np.ndarray, t: float) -> np.ndarray:
    return a + (b - a) * t


class PersonDrawer:
    """Draws the layers of one person; sizes in pixels derive from the person's height."""

    def __init__(self, spec: PersonSpec, canvas: Canvas, xy: np.ndarray, depth: np.ndarray):
        self.s, self.c, self.xy, self.depth = spec, canvas, xy, depth
        self.h = spec.height_px
        self.parts = spec.outfit.parts
        yaw = np.deg2rad(spec.yaw)
        self.cos, self.sin = float(np.cos(yaw)), float(np.sin(yaw))
        self.facing = self.cos > -0.3  # the face is visible

    def _depth_of(self, lateral: float, forward: float, joint: int) -> float:
        return float(self.depth[joint] - lateral * self.sin + forward * self.cos)

    def draw(self) -> None:
        b = self.s.body
        layers: list[tuple[float, int, Callable[[], None]]] = [
            (self._depth_of(0, 0.0, NECK), 0, self._torso),
            (self._depth_of(0, 0.0, HEAD_CENTER) + 0.05, 1, self._head),
        ]
        d = self.depth.tolist()
        for side in (0, 1):
            leg_d = (d[11 + side] + d[13 + side] + d[15 + side]) / 3 - 0.03
            if self.s.pose.kind != "sit":  # skirts and coats cover the legs, except on a seat
                leg_d = min(leg_d, layers[0][0] - 0.01)
            arm_d = (d[5 + side] + d[7 + side] + d[9 + side]) / 3 + 0.02
            layers.append((leg_d, 0, partial(self._leg, side)))
            layers.append((arm_d, 0, partial(self._arm, side)))
        hair = self.parts.get(HAIR)
        if hair is not None and hair.size == LONG:
            layers.append((self._depth_of(0, -b.head_radius, HEAD_CENTER), 0, self._long_hair))
        bag = self.parts.get(BAG)
        if bag is not None and bag.size == LONG:
            layers.append((self._depth_of(0, -b.girth, NECK), 0, self._backpack))
        elif bag is not None:
            side = int(bag.texture_seed % 2)
            lat = (1 if side == 0 else -1) * (b.hip_half + 0.04)
            layers.append((self._depth_of(lat, 0, PELVIS), 0, partial(self._handbag, side)))
        for _, _, fn in sorted(layers, key=lambda item: (item[0], item[1])):
            fn()

    # ---- widths -----------------------------------------------------------------------
    def _half_width(self, lateral: float) -> float:
        """Image half width of a torso section with ``lateral`` half width (pixels)."""
        return self.h * (lateral * abs(self.cos) + 0.5 * self.s.body.girth * abs(self.sin))

    def _torso_quad(
        self,
        grow: float = 1.0,
        top_t: float = 0.0,
        bottom: np.ndarray | None = None,
        bottom_half: float | None = None,
    ) -> np.ndarray:
        b, neck, pelvis = self.s.body, self.xy[NECK], self.xy[PELVIS]
        axis = (pelvis - neck) / (np.linalg.norm(pelvis - neck) + 1e-6)
        perp = np.array([-axis[1], axis[0]])
        top = _lerp(neck, pelvis, top_t) - axis * 0.02 * self.h
        bottom = pelvis + axis * 0.02 * self.h if bottom is None else bottom
        ws = self._half_width(b.shoulder_half * 0.95) * grow
        wh = (
            bottom_half if bottom_half is not None else self._half_width(b.hip_half + 0.01)
        ) * grow
        return np.array([top + perp * ws, top - perp * ws, bottom - perp * wh, bottom + perp * wh])

    # ---- layers -----------------------------------------------------------------------
    def _torso(self) -> None:
        c, xy, b, h = self.c, self.xy, self.s.body, self.h
        c.seg(xy[NECK], _lerp(xy[NECK], xy[HEAD_CENTER], 0.5), 0.07 * h, TORSO_SKIN)
        if PANTS in self.parts:  # the seat and crotch between the thighs
            crotch = _lerp(xy[PELVIS], (xy[13] + xy[14]) / 2, 0.25)
            c.poly(np.array([xy[11], xy[12], crotch]), PANTS)
            c.seg(xy[11], xy[12], 0.08 * h, PANTS)
        skirt = self.parts.get(SKIRT)
        if skirt is not None:
            t = 0.75 if skirt.size == SHORT else 1.6
            knees = (xy[13] + xy[14]) / 2
            hem = xy[PELVIS] + (knees - xy[PELVIS]) * t
            half = self._half_width(b.hip_half + 0.02) * (1.3 + 0.25 * t)
            spread = abs(xy[15, 0] - xy[16, 0]) * 0.35
            c.poly(self._torso_quad(1.05, 0.8, hem, max(half, spread + 0.03 * h)), SKIRT)
        c.poly(self._torso_quad(1.0), TORSO_SKIN)
        tank = self.s.outfit.extras.get("tank_top", 0.0) > 0
        c.poly(self._torso_quad(0.75 if tank else 1.0, 0.1 if tank else 0.0), UPPER_CLOTHES)
        if self.s.outfit.neckline and self.facing:
            neck = xy[NECK]
            w = self._half_width(b.shoulder_half * 0.35)
            c.poly(
                np.array(
                    [neck + [-w, -0.01 * h], neck + [w, -0.01 * h], _lerp(neck, xy[PELVIS], 0.3)]
                ),
                TORSO_SKIN,
            )
        if COAT in self.parts:
            self._coat()
        if SCARF_TIE in self.parts:
            self._scarf()

    def _coat(self) -> None:
        xy, b = self.xy, self.s.body
        long = self.parts[COAT].size == LONG
        knees = (xy[13] + xy[14]) / 2
        hem = _lerp(xy[PELVIS], knees, 0.8 if long else 0.15)
        quad = self._torso_quad(
            1.04, 0.0, hem, self._half_width(b.hip_half + 0.03) * (1.3 if long else 1.1)
        )
        if self.s.outfit.coat_open and self.cos > 0.5:  # open front: two panels, shirt between
            gap = 0.35 * self.cos
            left = np.array(
                [
                    quad[0],
                    _lerp(quad[0], quad[1], 0.5 - gap / 2),
                    _lerp(quad[3], quad[2], 0.5 - gap / 2),
                    quad[3],
                ]
            )
            right = np.array(
                [
                    _lerp(quad[0], quad[1], 0.5 + gap / 2),
                    quad[1],
                    quad[2],
                    _lerp(quad[3], quad[2], 0.5 + gap / 2),
                ]
            )
            self.c.poly(left, COAT)
            self.c.poly(right, COAT)
        else:
            self.c.poly(quad, COAT)

    def _scarf(self) -> None:
        xy, h = self.xy, self.h
        neck = xy[NECK]
        if self.parts[SCARF_TIE].size == LONG:  # scarf around the neck with a hanging end
            w = self._half_width(self.s.body.shoulder_half * 0.55)
            self.c.seg(neck + [-w, -0.015 * h], neck + [w, -0.015 * h], 0.045 * h, SCARF_TIE)
            end = neck + [0.3 * w * self.cos, 0]
            self.c.seg(end, _lerp(end, xy[PELVIS], 0.45), 0.035 * h, SCARF_TIE)
        elif self.facing and self.cos > 0.3:  # tie
            top, tip = neck + [0, 0.005 * h], _lerp(neck, xy[PELVIS], 0.6)
            w = 0.014 * h
            self.c.poly(
                np.array(
                    [top + [-w * 0.6, 0], top + [w * 0.6, 0], tip + [w, -w], tip, tip + [-w, -w]]
                ),
                SCARF_TIE,
            )

    def _leg(self, side: int) -> None:
        c, xy, h, parts = self.c, self.xy, self.h, self.parts
        hip, knee, ankle = xy[11 + side], xy[13 + side], xy[15 + side]
        leg = LEFT_LEG + side
        c.seg(hip, knee, 0.075 * h, leg)
        c.seg(knee, ankle, 0.055 * h, leg)
        socks = parts.get(SOCKS)
        if socks is not None:
            c.seg(ankle, _lerp(ankle, knee, 0.6 if socks.size == LONG else 0.25), 0.058 * h, SOCKS)
        pants = parts.get(PANTS)
        if pants is not None:
            if pants.size == LONG:
                c.seg(hip, knee, 0.085 * h, PANTS)
                c.seg(knee, _lerp(knee, ankle, 0.9), 0.068 * h, PANTS)
            else:
                c.seg(hip, _lerp(hip, knee, 0.55), 0.09 * h, PANTS)
        shoe = parts.get(LEFT_SHOE + side)
        if shoe is not None:
            # The foot points along the walking direction; seen from the front it is short.
            toe = ankle + np.array([0.045 * h * self.sin, (0.01 + 0.012 * abs(self.cos)) * h])
            c.seg(ankle + [0, 0.005 * h], toe, 0.036 * h, LEFT_SHOE + side)
            if shoe.size == LONG:  # boots
                c.seg(ankle, _lerp(ankle, knee, 0.4), 0.062 * h, LEFT_SHOE + side)

    def _arm(self, side: int) -> None:
        c, xy, h, parts = self.c, self.xy, self.h, self.parts
        shoulder, elbow, wrist = xy[5 + side], xy[7 + side], xy[9 + side]
        hand = wrist + (wrist - elbow) * 0.22
        arm = LEFT_ARM + side
        c.seg(shoulder, elbow, 0.055 * h, arm)
        c.seg(elbow, wrist, 0.045 * h, arm)
        c.ellipse(hand, (0.026 * h, 0.026 * h), arm)
        upper = parts.get(UPPER_CLOTHES)
        if upper is not None and self.s.outfit.extras.get("tank_top", 0.0) == 0:
            if upper.size == SHORT:
                c.seg(shoulder, _lerp(shoulder, elbow, 0.5), 0.065 * h, UPPER_CLOTHES)
            else:
                c.seg(shoulder, elbow, 0.065 * h, UPPER_CLOTHES)
                c.seg(elbow, _lerp(elbow, wrist, 0.92), 0.055 * h, UPPER_CLOTHES)
        if COAT in parts:
            c.seg(shoulder, elbow, 0.075 * h, COAT)
            c.seg(elbow, _lerp(elbow, wrist, 0.95), 0.062 * h, COAT)
        if GLOVE in parts:
            c.ellipse(hand, (0.03 * h, 0.032 * h), GLOVE)
        if OTHERS in parts and side == 1:  # something held: a phone, a stick, an umbrella
            kind = parts[OTHERS].texture_seed % 3
            if kind == 0:
                c.seg(hand, hand + [0.01 * h, -0.05 * h], 0.03 * h, OTHERS)
            else:
                length = 0.45 if kind == 1 else 0.3
                c.seg(hand + [0, -0.05 * h], hand + [0.02 * h, length * h], 0.015 * h, OTHERS)

    def _long_hair(self) -> None:
        xy, b, h = self.xy, self.s.body, self.h
        head, neck = xy[HEAD_CENTER], xy[NECK]
        r = b.head_radius * h
        bottom = _lerp(neck, xy[PELVIS], 0.3 if self.cos < 0 else 0.15)
        self.c.poly(
            np.array(
                [
                    head + [-1.05 * r, -0.2 * r],
                    head + [1.05 * r, -0.2 * r],
                    bottom + [1.3 * r, 0],
                    bottom + [-1.3 * r, 0],
                ]
            ),
            HAIR,
        )

    def _backpack(self) -> None:
        xy, b, h = self.xy, self.s.body, self.h
        center = _lerp(xy[NECK], xy[PELVIS], 0.45) + [-self.sin * (0.5 * b.girth + 0.04) * h, 0]
        half_w = h * (0.09 * abs(self.cos) + 0.04 * abs(self.sin))
        half_h = 0.1 * h
        self.c.poly(
            np.array(
                [
                    center + [-half_w, -half_h],
                    center + [half_w, -half_h],
                    center + [half_w, half_h],
                    center + [-half_w, half_h],
                ]
            ),
            BAG,
        )

    def _handbag(self, side: int) -> None:
        xy, h = self.xy, self.h
        sign = 1.0 if side == 0 else -1.0
        hip = xy[11 + side] + [sign * self.cos * 0.045 * h, 0.02 * h]
        self.c.seg(xy[5 + side], hip, 0.01 * h, BAG)
        self.c.poly(
            np.array(
                [
                    hip + [-0.04 * h, 0],
                    hip + [0.04 * h, 0],
                    hip + [0.045 * h, 0.07 * h],
                    hip + [-0.045 * h, 0.07 * h],
                ]
            ),
            BAG,
        )

    def _head(self) -> None:
        c, xy, b, h, parts = self.c, self.xy, self.s.body, self.h, self.parts
        r = b.head_radius * h
        head = xy[HEAD_CENTER]
        hair = parts.get(HAIR)
        forward = np.array([self.sin * 0.25 * r, 0.0])
        c.ellipse(head, (0.85 * r, r), FACE)
        if hair is not None and hair.size != SPARSE:
            c.ellipse(head + [0, -0.08 * r], (0.92 * r, 1.02 * r), HAIR)
            if self.facing:
                face_c = head + forward * 1.6 + [0, 0.18 * r]
                c.ellipse(face_c, (0.68 * r * (0.5 + 0.5 * abs(self.cos)), 0.8 * r), FACE)
        elif hair is not None:  # bald: a fringe at the back and sides
            c.ellipse(head - forward * 2 + [0, 0.3 * r], (0.5 * r, 0.35 * r), HAIR)
        if self.facing:
            self._face_items(head + forward * 1.6, r)
        if HAT in parts:
            if parts[HAT].size == LONG:  # brimmed hat
                c.ellipse(head + [0, -0.55 * r], (1.6 * r, 0.22 * r), HAT)
                c.ellipse(head + [0, -0.8 * r], (0.8 * r, 0.45 * r), HAT)
            else:  # cap / beanie
                c.ellipse(head + [0, -0.2 * r], (0.95 * r, 0.85 * r), HAT, 0, 180, 360)

    def _face_items(self, face: np.ndarray, r: float) -> None:
        c, parts, s_out = self.c, self.parts, self.s.outfit
        if s_out.facial_hair and parts.get(HAIR) is not None:
            c.ellipse(face + [0, 0.45 * r], (0.55 * r, 0.4 * r), HAIR, 0, 0, 180)
        if FACE_MASK in parts:
            c.ellipse(face + [0, 0.3 * r], (0.6 * r, 0.5 * r), FACE_MASK, 0, 0, 180)
            c.poly(
                np.array(
                    [
                        face + [-0.6 * r, 0.3 * r],
                        face + [0.6 * r, 0.3 * r],
                        face + [0.5 * r, 0.1 * r],
                        face + [-0.5 * r, 0.1 * r],
                    ]
                ),
                FACE_MASK,
            )
        if GLASSES in parts:
            eye_y = -0.1 * r
            lens = (0.22 * r, 0.15 * r)
            dx = 0.3 * r * abs(self.cos)
            if abs(self.cos) > 0.4:
                c.ellipse(face + [-dx, eye_y], lens, GLASSES)
                c.ellipse(face + [dx, eye_y], lens, GLASSES)
                c.seg(face + [-dx, eye_y], face + [dx, eye_y], 0.05 * r, GLASSES)
            else:
                c.ellipse(face + [self.sin * 0.35 * r, eye_y], lens, GLASSES)
