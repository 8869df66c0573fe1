"""Stage timers, counters and gauges, merged across actors and exposed as Prometheus text.

Each actor keeps one :class:`Telemetry`; the driver pulls :meth:`Telemetry.snapshot` from every
actor (a plain dict, cheap to ship), merges them with :func:`merge_snapshots`, serves the
result as Prometheus exposition text (:func:`to_prometheus`) and summarises it on exit
(:func:`summarize`). Latencies keep a bounded reservoir of recent samples per series, so
percentiles cost O(reservoir) memory however long a stream runs.

Series are keyed by a metric name and a sorted tuple of label pairs, for example
``("stage_latency_seconds", (("stage", "parse"), ("stream", "cam1")))``.
"""

from __future__ import annotations

import math
import re
import time
from collections import deque
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

Labels = tuple[tuple[str, str], ...]
SeriesKey = tuple[str, Labels]

_NAME_RE = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_LABEL_RE = re.compile(r"^[a-zA-Z_][a-zA-Z0-9_]*$")
PREFIX = "describeme_"
QUANTILES = (0.5, 0.95, 0.99)


def _labels(labels: Mapping[str, Any] | None) -> Labels:
    if not labels:
        return ()
    for name in labels:
        if not _LABEL_RE.match(name):
            raise ValueError(f"invalid metric label name {name!r}: use letters, digits and _")
    return tuple(sorted((str(k), str(v)) for k, v in labels.items()))


def _check_name(name: str) -> str:
    if not _NAME_RE.match(name):
        raise ValueError(f"invalid metric name {name!r}: use letters, digits, _ and :")
    return name


class Telemetry:
    """Counters, gauges and latency reservoirs of one process.

    Args:
        reservoir_size: latency samples kept per series (the most recent ones).
    """

    def __init__(self, reservoir_size: int = 2048) -> None:
        if reservoir_size < 1:
            raise ValueError(f"reservoir_size must be >= 1, got {reservoir_size}")
        self.reservoir_size = int(reservoir_size)
        self.started = time.time()
        self._counters: dict[SeriesKey, float] = {}
        self._gauges: dict[SeriesKey, float] = {}
        self._latency: dict[SeriesKey, deque[float]] = {}
        self._latency_count: dict[SeriesKey, int] = {}
        self._latency_sum: dict[SeriesKey, float] = {}

    def count(self, name: str, value: float = 1.0, **labels: Any) -> None:
        """Adds ``value`` (>= 0) to a monotonic counter."""
        if value < 0:
            raise ValueError(f"counter {name} can only grow, got increment {value}")
        key = (_check_name(name), _labels(labels))
        self._counters[key] = self._counters.get(key, 0.0) + float(value)

    def gauge(self, name: str, value: float, **labels: Any) -> None:
        """Sets a gauge (a value that goes up and down, e.g. queue depth)."""
        self._gauges[(_check_name(name), _labels(labels))] = float(value)

    def observe(self, name: str, seconds: float, **labels: Any) -> None:
        """Records one latency sample in seconds."""
        if not math.isfinite(seconds) or seconds < 0:
            raise ValueError(f"latency {name} must be finite and >= 0 seconds, got {seconds}")
        key = (_check_name(name), _labels(labels))
        samples = self._latency.get(key)
        if samples is None:
            samples = self._latency[key] = deque(maxlen=self.reservoir_size)
        samples.append(float(seconds))
        self._latency_count[key] = self._latency_count.get(key, 0) + 1
        self._latency_sum[key] = self._latency_sum.get(key, 0.0) + float(seconds)

    @contextmanager
    def timer(self, stage: str, **labels: Any) -> Iterator[None]:
        """Times a block into ``stage_latency_seconds{stage=...}``."""
        start = time.perf_counter()
        try:
            yield
        finally:
            elapsed = time.perf_counter() - start
            self.observe("stage_latency_seconds", elapsed, stage=stage, **labels)

    def snapshot(self) -> dict[str, Any]:
        """A plain, picklable copy of every series (what actors return to the driver)."""
        return {
            "started": self.started,
            "counters": dict(self._counters),
            "gauges": dict(self._gauges),
            "latency": {k: list(v) for k, v in self._latency.items()},
            "latency_count": dict(self._latency_count),
            "latency_sum": dict(self._latency_sum),
        }


def merge_snapshots(snapshots: list[dict[str, Any]]) -> dict[str, Any]:
    """Merges snapshots of several processes: counters and latency counts add up, gauges of
    the same series add up (queue depths of several actors), reservoirs concatenate."""
    merged: dict[str, Any] = {
        "started": min((s["started"] for s in snapshots), default=time.time()),
        "counters": {}, "gauges": {}, "latency": {}, "latency_count": {}, "latency_sum": {},
    }  # fmt: skip
    for snap in snapshots:
        for section in ("counters", "gauges", "latency_count", "latency_sum"):
            target = merged[section]
            for key, value in snap[section].items():
                target[key] = target.get(key, 0) + value
        for key, values in snap["latency"].items():
            merged["latency"].setdefault(key, []).extend(values)
    return merged


def quantile(values: list[float], q: float) -> float:
    """Linear-interpolated quantile of ``values`` (NaN when empty)."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _format_labels(labels: Labels, extra: Labels = ()) -> str:
    items = labels + extra
    if not items:
        return ""
    return "{" + ",".join(f'{k}="{_escape(v)}"' for k, v in items) + "}"


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    return repr(float(value)) if not float(value).is_integer() else str(int(value))


def to_prometheus(snapshot: dict[str, Any]) -> str:
    """Prometheus text exposition (version 0.0.4) of a (merged) snapshot.

    Counters get ``_total``; latencies are summaries with quantiles 0.5/0.95/0.99 and
    ``_sum``/``_count``; every name is prefixed with ``describeme_``.
    """
    lines: list[str] = []
    by_name: dict[tuple[str, str], list[tuple[Labels, Any]]] = {}
    for section, kind in (("counters", "counter"), ("gauges", "gauge"), ("latency", "summary")):
        for (name, labels), value in snapshot[section].items():
            by_name.setdefault((name, kind), []).append((labels, value))
    for (name, kind), series in sorted(by_name.items()):
        suffix = "_total" if kind == "counter" and not name.endswith("_total") else ""
        full = PREFIX + name + suffix
        lines.append(f"# TYPE {full} {kind}")
        for labels, value in sorted(series, key=lambda item: item[0]):
            if kind != "summary":
                lines.append(f"{full}{_format_labels(labels)} {_number(value)}")
                continue
            for q in QUANTILES:
                quant = (("quantile", str(q)),)
                lines.append(f"{full}{_format_labels(labels, quant)} {_number(quantile(value, q))}")
            key = (name, labels)
            total = _number(snapshot["latency_sum"][key])
            lines.append(f"{full}_sum{_format_labels(labels)} {total}")
            lines.append(f"{full}_count{_format_labels(labels)} {snapshot['latency_count'][key]}")
    return "\n".join(lines) + "\n"


def counter_total(snapshot: dict[str, Any], name: str, **labels: Any) -> float:
    """Sum of a counter over every series whose labels include ``labels``."""
    want = set(_labels(labels))
    return sum(v for (n, lab), v in snapshot["counters"].items() if n == name and want <= set(lab))


def stage_percentiles(snapshot: dict[str, Any], name: str = "stage_latency_seconds",
                      group_by: str = "stage") -> dict[str, dict[str, float]]:
    """``{stage: {"p50_ms", "p95_ms", "count"}}`` over the series of ``name``, pooled by the
    value of one label (``group_by``; "" pools everything into one group)."""
    pooled: dict[str, list[float]] = {}
    counts: dict[str, int] = {}
    for (series_name, labels), values in snapshot["latency"].items():
        if series_name != name:
            continue
        group = dict(labels).get(group_by, "")
        pooled.setdefault(group, []).extend(values)
        counts[group] = counts.get(group, 0) + snapshot["latency_count"][(series_name, labels)]
    return {
        group: {
            "p50_ms": round(quantile(values, 0.5) * 1000, 3),
            "p95_ms": round(quantile(values, 0.95) * 1000, 3),
            "count": counts[group],
        }
        for group, values in sorted(pooled.items())
    }
