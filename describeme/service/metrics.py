"""Request counters and latency histograms in the Prometheus text format (version 0.0.4).

Written by hand to avoid a dependency for two metric families. Label values are route
*templates* (``/tracks/{track_ref}``), never raw paths, so a scan of random URLs cannot grow
the series without bound.
"""

from __future__ import annotations

import threading
from collections import defaultdict

__all__ = ["LATENCY_BUCKETS_S", "RequestMetrics"]

LATENCY_BUCKETS_S = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


class RequestMetrics:
    """Counts requests by (method, route, status) and their latency by (method, route)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str, int], int] = defaultdict(int)
        # (method, route) -> per-bucket counts (last = +Inf), sum of seconds
        self._hist: dict[tuple[str, str], tuple[list[int], float]] = {}

    def observe(self, method: str, route: str, status: int, seconds: float) -> None:
        """Records one finished request."""
        with self._lock:
            self._counts[(method, route, int(status))] += 1
            buckets, total = self._hist.get((method, route), ([0] * (len(LATENCY_BUCKETS_S) + 1),
                                                              0.0))  # fmt: skip
            index = next((i for i, b in enumerate(LATENCY_BUCKETS_S) if seconds <= b),
                         len(LATENCY_BUCKETS_S))  # fmt: skip
            buckets[index] += 1
            self._hist[(method, route)] = (buckets, total + max(seconds, 0.0))

    def render(self, extra_gauges: dict[str, tuple[str, float]] | None = None) -> str:
        """The exposition text; ``extra_gauges`` maps a name to (help, value)."""
        lines = ["# HELP describeme_http_requests_total HTTP requests by route and status.",
                 "# TYPE describeme_http_requests_total counter"]  # fmt: skip
        with self._lock:
            counts = sorted(self._counts.items())
            hist = sorted((k, (list(b), s)) for k, (b, s) in self._hist.items())
        for (method, route, status), count in counts:
            lines.append(f'describeme_http_requests_total{{method="{method}",'
                         f'route="{_label(route)}",status="{status}"}} {count}')  # fmt: skip
        name = "describeme_http_request_duration_seconds"
        lines += [f"# HELP {name} HTTP request latency by route.", f"# TYPE {name} histogram"]
        for (method, route), (buckets, total) in hist:
            labels = f'method="{method}",route="{_label(route)}"'
            cumulative = 0
            for bound, count in zip((*LATENCY_BUCKETS_S, "+Inf"), buckets, strict=True):
                cumulative += count
                lines.append(f'{name}_bucket{{{labels},le="{bound}"}} {cumulative}')
            lines.append(f"{name}_sum{{{labels}}} {total!r}")
            lines.append(f"{name}_count{{{labels}}} {cumulative}")
        for gauge, (help_text, value) in sorted((extra_gauges or {}).items()):
            lines += [f"# HELP {gauge} {help_text}", f"# TYPE {gauge} gauge", f"{gauge} {value!r}"]
        return "\n".join(lines) + "\n"
