"""The run summary (``--summary-json`` and the table printed on exit), from plain values."""

from __future__ import annotations

from typing import Any

from describeme.operators.telemetry import stage_percentiles

SUMMARY_KEYS = ("frames", "tracks", "fps", "dropped_frames", "skipped_packets")


def build_summary(reports: list[dict[str, Any]], snapshot: dict[str, Any], *, tracks: int,
                  elapsed_s: float) -> dict[str, Any]:
    """Summarises a run.

    Args:
        reports: one per stream (``StreamDriver.report``).
        snapshot: merged telemetry of every actor.
        tracks: distinct (stream, track) pairs the sink wrote.
        elapsed_s: wall-clock seconds of the run.

    Returns:
        ``frames``, ``tracks``, ``fps`` (frames per wall-clock second over all streams),
        ``dropped_frames``, ``skipped_packets``, ``elapsed_s``, per-stage latency percentiles
        ``stages``, ``end_to_end_latency`` and ``streams`` (the per-stream reports).
    """
    frames = sum(int(r.get("frames", 0)) for r in reports)
    end_to_end = stage_percentiles(snapshot, "end_to_end_latency_seconds", group_by="")
    statuses: dict[str, int] = {}
    for report in reports:
        statuses[report.get("status", "?")] = statuses.get(report.get("status", "?"), 0) + 1
    return {
        "frames": frames,
        "tracks": int(tracks),
        "fps": round(frames / elapsed_s, 3) if elapsed_s > 0 else 0.0,
        "dropped_frames": sum(int(r.get("dropped_frames", 0)) for r in reports),
        "skipped_packets": sum(int(r.get("skipped_packets", 0)) for r in reports),
        "elapsed_s": round(elapsed_s, 3),
        "stages": stage_percentiles(snapshot),
        "end_to_end_latency": end_to_end.get("", {}),
        "statuses": statuses,
        "streams": reports,
    }


def format_summary(summary: dict[str, Any]) -> str:
    """A few human lines for the terminal."""
    lines = [
        f"frames {summary['frames']}  tracks {summary['tracks']}  fps {summary['fps']:.1f}  "
        f"dropped {summary['dropped_frames']}  skipped packets {summary['skipped_packets']}  "
        f"elapsed {summary['elapsed_s']:.1f}s"
    ]
    for stage, stats in summary["stages"].items():
        lines.append(f"  {stage:<10} p50 {stats['p50_ms']:.1f} ms  p95 {stats['p95_ms']:.1f} ms  "
                     f"n={stats['count']}")
    e2e = summary.get("end_to_end_latency") or {}
    if e2e:
        lines.append(f"  end-to-end p50 {e2e['p50_ms']:.1f} ms  p95 {e2e['p95_ms']:.1f} ms")
    for report in summary["streams"]:
        lines.append(f"  stream {report['stream_id']}: {report.get('status')} "
                     f"{report.get('frames', 0)} frames")
    return "\n".join(lines)
