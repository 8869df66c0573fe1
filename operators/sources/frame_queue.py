"""A bounded hand-off between the decode thread and the consumer.

Live sources drop the oldest queued item when the consumer is behind (the newest frame is the
one worth analysing); archives block the decoder instead, so no frame is ever lost.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from typing import Any


class QueueClosed(Exception):
    """The queue was closed while a caller was waiting on it."""


class FrameQueue:
    """Thread-safe bounded FIFO with a drop-oldest or blocking policy.

    Args:
        maxsize: items held at most (>= 1).
        drop_oldest: when full, ``put`` evicts the oldest item instead of waiting (live
            sources). Without it (archives), throughput comes before latency: a consumer
            waiting on an empty queue is woken once the queue is half full rather than for
            every item.
    """

    def __init__(self, maxsize: int, drop_oldest: bool) -> None:
        if maxsize < 1:
            raise ValueError(f"queue_size must be >= 1, got {maxsize}")
        self.maxsize = maxsize
        self.drop_oldest = drop_oldest
        self.dropped = 0
        # A blocked producer resumes only once the queue is down to half: waking it for every
        # freed slot makes the two threads hand over per frame, which on a loaded machine
        # costs a scheduler round trip each time.
        self._resume_below = maxsize // 2 + 1
        # The same the other way: a consumer faster than the decoder waits on an empty queue
        # for nearly every frame, and waking it per frame costs the decode thread (the
        # bottleneck) a futex wake and a GIL hand-over each time: 4-6% of an archive's decode
        # rate (vtest.avi, 2 cores: 0.94 -> 1.00 of `ffmpeg -f null`). A live consumer wants
        # each frame as soon as it exists.
        self._wake_at = 1 if drop_oldest else max(1, maxsize // 2)
        self._items: deque[Any] = deque()
        self._lock = threading.Lock()
        self._not_empty = threading.Condition(self._lock)
        self._not_full = threading.Condition(self._lock)
        self._producer_waiting = False
        self._consumer_waiting = False
        self._closed = False

    def __len__(self) -> int:
        with self._lock:
            return len(self._items)

    def put(self, item: Any) -> int:
        """Adds ``item``; returns how many old items were dropped to make room (0 or 1).

        Raises:
            QueueClosed: the queue was closed (possibly while waiting for room).
        """
        with self._lock:
            evicted = 0
            while len(self._items) >= self.maxsize and not self._closed:
                if self.drop_oldest:
                    self._items.popleft()
                    evicted += 1
                else:
                    self._producer_waiting = True
                    self._not_full.wait()
                    self._producer_waiting = False
            if self._closed:
                raise QueueClosed
            self._items.append(item)
            self.dropped += evicted
            if self._consumer_waiting and len(self._items) >= self._wake_at:
                self._not_empty.notify()
            return evicted

    def put_final(self, item: Any) -> None:
        """Appends an end marker past the size limit: it must never be dropped or wait."""
        with self._lock:
            self._items.append(item)
            self._not_empty.notify_all()

    def get(self, timeout_s: float | None = None) -> Any:
        """Removes and returns the oldest item.

        Raises:
            TimeoutError: nothing arrived within ``timeout_s``.
            QueueClosed: the queue was closed and is empty.
        """
        deadline = None if timeout_s is None else time.monotonic() + timeout_s
        with self._lock:
            while not self._items:
                if self._closed:
                    raise QueueClosed
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    raise TimeoutError
                self._consumer_waiting = True
                self._not_empty.wait(remaining)
                self._consumer_waiting = False
            item = self._items.popleft()
            if self._producer_waiting and len(self._items) < self._resume_below:
                self._not_full.notify()
            return item

    def close(self) -> None:
        """Wakes every waiter; later ``put`` raises, ``get`` drains what is left."""
        with self._lock:
            self._closed = True
            self._not_empty.notify_all()
            self._not_full.notify_all()
