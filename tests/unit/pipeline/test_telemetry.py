"""Telemetry: counters, gauges, latency reservoirs, merging, Prometheus text, percentiles."""

from __future__ import annotations

import math

import pytest

from describeme.operators.telemetry import (
    Telemetry,
    counter_total,
    merge_snapshots,
    quantile,
    stage_percentiles,
    to_prometheus,
)


@pytest.mark.parametrize(
    ("values", "q", "expected"),
    [([], 0.5, math.nan), ([3.0], 0.95, 3.0), ([1.0, 2.0, 3.0, 4.0], 0.5, 2.5),
     ([4.0, 1.0, 3.0, 2.0], 0.0, 1.0), ([1.0, 2.0], 1.0, 2.0), ([5.0, 5.0, 5.0], 0.95, 5.0)],
)  # fmt: skip
def test_quantile_table(values: list[float], q: float, expected: float) -> None:
    result = quantile(values, q)
    assert (math.isnan(result) and math.isnan(expected)) or result == pytest.approx(expected)


def test_counters_add_and_reject_negative() -> None:
    t = Telemetry()
    t.count("frames", stage="parse", stream="a")
    t.count("frames", 2, stage="parse", stream="a")
    t.count("frames", 5, stage="parse", stream="b")
    snap = t.snapshot()
    assert counter_total(snap, "frames", stream="a") == 3
    assert counter_total(snap, "frames", stage="parse") == 8
    with pytest.raises(ValueError, match="can only grow"):
        t.count("frames", -1)


@pytest.mark.parametrize("bad", ["1abc", "has space", "dash-name", ""])
def test_bad_metric_and_label_names_are_rejected(bad: str) -> None:
    t = Telemetry()
    with pytest.raises(ValueError, match="invalid metric name"):
        t.count(bad)
    if bad:
        with pytest.raises(ValueError, match="invalid metric label name"):
            t.gauge("depth", 1, **{bad: "x"})


def test_reservoir_keeps_recent_samples_but_counts_all() -> None:
    t = Telemetry(reservoir_size=3)
    for value in (1.0, 2.0, 3.0, 4.0, 5.0):
        t.observe("lat", value)
    snap = t.snapshot()
    key = ("lat", ())
    assert snap["latency"][key] == [3.0, 4.0, 5.0]
    assert snap["latency_count"][key] == 5
    assert snap["latency_sum"][key] == 15.0
    with pytest.raises(ValueError, match="finite"):
        t.observe("lat", float("nan"))


def test_merge_adds_counters_and_pools_latencies() -> None:
    a, b = Telemetry(), Telemetry()
    a.count("frames", 2, stage="sink")
    b.count("frames", 3, stage="sink")
    a.gauge("queue_depth", 1)
    b.gauge("queue_depth", 4)
    with a.timer("parse"):
        pass
    b.observe("stage_latency_seconds", 0.5, stage="parse")
    merged = merge_snapshots([a.snapshot(), b.snapshot()])
    assert counter_total(merged, "frames") == 5
    assert merged["gauges"][("queue_depth", ())] == 5
    stats = stage_percentiles(merged)
    assert stats["parse"]["count"] == 2
    assert stats["parse"]["p95_ms"] <= 500.0


def test_prometheus_exposition_format() -> None:
    t = Telemetry()
    t.count("frames", 7, stage="parse", stream='cam "1"')
    t.gauge("in_flight_batches", 3, stream="cam1")
    t.observe("stage_latency_seconds", 0.25, stage="track")
    text = to_prometheus(t.snapshot())
    lines = text.splitlines()
    assert "# TYPE describeme_frames_total counter" in lines
    assert 'describeme_frames_total{stage="parse",stream="cam \\"1\\""} 7' in lines
    assert "# TYPE describeme_in_flight_batches gauge" in lines
    assert 'describeme_in_flight_batches{stream="cam1"} 3' in lines
    assert "# TYPE describeme_stage_latency_seconds summary" in lines
    assert 'describeme_stage_latency_seconds{stage="track",quantile="0.5"} 0.25' in lines
    assert 'describeme_stage_latency_seconds_count{stage="track"} 1' in lines
    assert text.endswith("\n")
