"""Per-client token-bucket rate limiting for the HTTP API.

Each client (its bearer token's digest when it sends one, else its IP address) has a bucket
of ``burst`` requests that refills at ``rate_per_s``. A request takes one token or is refused
with the seconds until one is available (the ``Retry-After`` the API sends with 429).
Buckets are kept for at most ``max_clients`` clients; the idlest are forgotten first (a
forgotten client starts with a full bucket, which only errs towards letting it through).
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable

__all__ = ["RateLimiter"]


class RateLimiter:
    """Token buckets keyed by client.

    Args:
        rate_per_s: sustained requests per second per client (> 0).
        burst: requests a client may make at once (>= 1).
        max_clients: buckets kept in memory (>= 1).
        clock: monotonic seconds (tests pass a fake clock).
    """

    def __init__(self, rate_per_s: float, burst: int, *, max_clients: int = 10_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if not (isinstance(rate_per_s, (int, float)) and math.isfinite(rate_per_s)
                and rate_per_s > 0):  # fmt: skip
            raise ValueError(f"rate limit must be a finite number > 0 per s, got {rate_per_s!r}")
        if isinstance(burst, bool) or not isinstance(burst, int) or burst < 1:
            raise ValueError(f"rate-limit burst must be an integer >= 1, got {burst!r}")
        if isinstance(max_clients, bool) or not isinstance(max_clients, int) or max_clients < 1:
            raise ValueError(f"max_clients must be an integer >= 1, got {max_clients!r}")
        self.rate_per_s = float(rate_per_s)
        self.burst = burst
        self.max_clients = max_clients
        self.clock = clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # tokens, time
        self._lock = threading.Lock()  # sync endpoints run on a thread pool

    def acquire(self, client: str) -> float:
        """Takes one request from ``client``'s bucket.

        Returns:
            0.0 when allowed, else the seconds until the next request would be allowed.
        """
        now = self.clock()
        with self._lock:
            tokens, last = self._buckets.pop(client, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - last) * self.rate_per_s)
            wait = 0.0
            if tokens >= 1.0:
                tokens -= 1.0
            else:
                wait = (1.0 - tokens) / self.rate_per_s
            self._buckets[client] = (tokens, now)
            while len(self._buckets) > self.max_clients:
                self._buckets.popitem(last=False)
            return wait

    def __len__(self) -> int:
        return len(self._buckets)
