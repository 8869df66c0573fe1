"""Time bookkeeping of a source: reconnect backoff, monotonic pts, sampling to a target fps.

All three are small pure objects so they can be tested without decoding anything.
"""

from __future__ import annotations

import math
import random
from dataclasses import dataclass


@dataclass(frozen=True)
class ReconnectPolicy:
    """Exponential backoff with jitter between attempts to reopen a live source.

    The delay before attempt ``n`` (1-based) is ``min(max_s, initial_s * 2**(n-1))`` scaled by a
    uniform factor in ``[1 - jitter, 1 + jitter]``, so cameras restarted together are not
    hammered in lockstep by every stream at once.

    Attributes:
        initial_s: delay before the first attempt, seconds.
        max_s: cap on the delay, seconds.
        jitter: relative jitter in [0, 1).
        max_attempts: consecutive failed attempts before giving up; ``None`` retries forever,
            ``0`` never reconnects.
    """

    initial_s: float = 0.5
    max_s: float = 30.0
    jitter: float = 0.2
    max_attempts: int | None = None

    def __post_init__(self) -> None:
        if not (math.isfinite(self.initial_s) and self.initial_s >= 0):
            raise ValueError(
                f"ReconnectPolicy.initial_s must be >= 0 seconds, got {self.initial_s}"
            )
        if not (math.isfinite(self.max_s) and self.max_s >= self.initial_s):
            raise ValueError(
                f"ReconnectPolicy.max_s must be >= initial_s ({self.initial_s}), got {self.max_s}"
            )
        if not 0 <= self.jitter < 1:
            raise ValueError(f"ReconnectPolicy.jitter must be in [0, 1), got {self.jitter}")
        if self.max_attempts is not None and self.max_attempts < 0:
            raise ValueError(
                f"ReconnectPolicy.max_attempts must be >= 0 or None, got {self.max_attempts}"
            )

    @property
    def enabled(self) -> bool:
        return self.max_attempts != 0

    def delay_s(self, attempt: int, rng: random.Random | None = None) -> float:
        """Seconds to wait before ``attempt`` (1-based)."""
        if attempt < 1:
            raise ValueError(f"reconnect attempt numbers start at 1, got {attempt}")
        # Cap the exponent so huge attempt counts do not overflow float.
        base = min(self.max_s, self.initial_s * 2.0 ** min(attempt - 1, 64))
        factor = 1.0 + (rng or random).uniform(-self.jitter, self.jitter)
        return base * factor

    def gives_up_after(self, failed_attempts: int) -> bool:
        return self.max_attempts is not None and failed_attempts >= self.max_attempts


class PtsClock:
    """Turns raw decoder timestamps into strictly increasing seconds for one stream.

    Raw pts can be missing, locally out of order (AVI files with B-frames label neighbouring
    frames swapped, e.g. Megamind.avi: 1, 2, 3, 5, 4, 6) or restart from an arbitrary value
    (a reconnected live stream). Small backward steps are nudged just past the previous value
    (no drift); a jump back by more than ``rebase_after_s`` starts a new segment that
    continues from the previous time.

    Args:
        frame_period_s: nominal seconds per frame, used when pts is missing.
        rebase_after_s: a backward jump larger than this is a discontinuity, not a reorder.
    """

    def __init__(self, frame_period_s: float, rebase_after_s: float = 1.0) -> None:
        if not (math.isfinite(frame_period_s) and frame_period_s > 0):
            raise ValueError(f"frame_period_s must be > 0, got {frame_period_s}")
        self.frame_period_s = frame_period_s
        self.rebase_after_s = rebase_after_s
        self._offset = 0.0  # added to raw seconds of the current segment
        self._origin_pending = True
        self._segment_start = 0.0
        self.last: float | None = None
        self.repaired = 0  # timestamps that had to be invented or nudged

    def start_segment(self, at_s: float | None = None, origin_s: float | None = None) -> None:
        """Begins a new segment (a new connection).

        Args:
            at_s: output time of the segment's first frame; default: one frame period after
                the last output (or 0 for the first segment).
            origin_s: raw time that maps to ``at_s``; default: the first raw pts seen.
        """
        if at_s is None:
            at_s = 0.0 if self.last is None else self.last + self.frame_period_s
        self._segment_start = at_s
        self._origin_pending = origin_s is None
        if origin_s is not None:
            self._offset = at_s - origin_s

    def to_seconds(self, raw_s: float | None) -> float:
        """Maps one frame's raw pts (seconds, or None) to its output time."""
        if raw_s is None or not math.isfinite(raw_s):
            self.repaired += 1
            t = self._segment_start if self.last is None else self.last + self.frame_period_s
            return self._emit(t)
        if self._origin_pending:
            self._offset = self._segment_start - raw_s
            self._origin_pending = False
        t = raw_s + self._offset
        if self.last is not None and t <= self.last:
            self.repaired += 1
            if self.last - t > self.rebase_after_s:
                self._offset += self.last + self.frame_period_s - t
                t = self.last + self.frame_period_s
            else:
                # A hundredth of a period keeps order without shifting later frames.
                t = self.last + self.frame_period_s / 100
        return self._emit(t)

    def _emit(self, t: float) -> float:
        self.last = t
        return t


class FpsSampler:
    """Keeps a frame when its pts reaches the next sampling slot of ``target_fps``.

    Slots sit at ``k / target_fps``; after a kept frame the next slot is the first one strictly
    after it, so a 30 fps stream sampled at 10 fps keeps every 3rd frame and a gap in the stream
    does not cause a burst of catch-up frames.

    Args:
        target_fps: frames per second to keep; ``None`` keeps every frame.
    """

    # Tolerance for pts that land a rounding error before their slot (3 * (1/30) < 0.1).
    _EPS_S = 1e-6

    def __init__(self, target_fps: float | None) -> None:
        if target_fps is not None and not (math.isfinite(target_fps) and target_fps > 0):
            raise ValueError(f"target_fps must be a positive number or None, got {target_fps}")
        self.target_fps = target_fps
        self._next_slot: int | None = None

    def keep(self, pts_s: float) -> bool:
        """Decides for one frame, in stream order."""
        if self.target_fps is None:
            return True
        position = pts_s * self.target_fps
        if self._next_slot is None:  # the first frame is always kept
            self._next_slot = math.floor(position + self._EPS_S * self.target_fps)
        if position + self._EPS_S * self.target_fps < self._next_slot:
            return False
        self._next_slot = math.floor(position + self._EPS_S * self.target_fps) + 1
        return True
