"""The real graph: local Ray (2 CPUs) + the embedded Redis, on a synthetic clip with ground truth.

Runs the stand-in parser (a test double that emits the clip's ground truth) through the real
actors, then checks what landed in Redis against the clip's ground truth; ingests a file in two
halves (interrupted, then resumed) and a third time (skipped) and checks that no track is
duplicated and that the resumed ingest wrote the same tracks as an uninterrupted run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from describeme import labels as L
from describeme.operators.standin import read_gt_boxes

pytestmark = pytest.mark.integration

SECONDS, SEED = 4, 3
MIN_VISIBILITY = 0.15


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """``describeme data synth --video --seconds 4`` into a temporary folder."""
    out = tmp_path_factory.mktemp("synth") / "clip"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run([sys.executable, "-m", "describeme.cli.main", "data", "synth", "--out", str(out),
                    "--video", "--seconds", str(SECONDS), "--seed", str(SEED)],
                   check=True, env=env, capture_output=True, timeout=120)
    return out / "video.mp4"


@pytest.fixture(scope="module")
def local_ray() -> Iterator[None]:
    import ray

    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    try:
        yield
    finally:
        ray.shutdown()


def _config(prefix: str, **stream: Any) -> Any:
    from describeme.pipeline.config import PipelineConfig

    config = PipelineConfig()
    config.parser.model = "standin"
    config.parser.standin.min_visibility = MIN_VISIBILITY
    config.sink.prefix = prefix
    config.sink.commit_every = 10
    config.metrics_interval_s = 0.5
    for key, value in stream.items():
        setattr(config.stream, key, value)
    return config


def _stored_tracks(client: Any, prefix: str, stream_id: str) -> dict[int, dict[str, Any]]:
    from describeme.operators.store import parse_track

    tracks = {}
    for key in client.scan_iter(match=f"{prefix}track:*"):
        track = parse_track(client.hgetall(key))
        if track["stream_id"] == stream_id:
            assert track["track_id"] not in tracks, "two hashes for one track"
            tracks[track["track_id"]] = track
    return tracks


def _ground_truth(clip: Path) -> tuple[set[int], dict[int, set[tuple[str, str]]]]:
    """(ids visible enough to be confirmed, {id: {(group, color)} over all segments})."""
    import json

    frames_seen: dict[int, int] = {}
    for boxes in read_gt_boxes(clip.parent / "gt" / "gt.txt").values():
        for box in boxes:
            if box.visibility >= MIN_VISIBILITY:
                frames_seen[box.track] = frames_seen.get(box.track, 0) + 1
    trackable = {t for t, n in frames_seen.items() if n >= 3}  # the tracker's min_hits
    group_of = {p: g for g, ids in L.DESCRIPTION_GROUPS.items() for p in ids}
    colors: dict[int, set[tuple[str, str]]] = {}
    for track in json.loads((clip.parent / "tracks.json").read_text())["tracks"]:
        pairs = colors.setdefault(int(track["id"]), set())
        for segment in track["segments"]:
            for part, attributes in segment["parts"].items():
                group = part if part in L.DESCRIPTION_GROUPS else group_of[L.PART_ID[part]]
                if attributes.get("color") not in (None, "none"):
                    pairs.add((group, attributes["color"]))
    return trackable, colors


def test_run_writes_ground_truth_tracks_to_redis(clip: Path, local_ray: None, redis_server: Any,
                                                 redis_prefix: str, tmp_path: Path) -> None:
    from describeme.operators.telemetry import to_prometheus
    from describeme.pipeline.graph import PipelineGraph

    ticks: list[str] = []
    out_video = tmp_path / "annotated.mp4"
    with PipelineGraph(_config(redis_prefix), redis_server.url) as graph:
        summary = graph.run([str(clip)], ["cam1"], [str(out_video)],
                            on_tick=lambda snap: ticks.append(to_prometheus(snap)))
        final_metrics = to_prometheus(graph.metrics())
    assert summary["frames"] == 15 * SECONDS
    assert summary["dropped_frames"] == 0 and summary["skipped_packets"] == 0
    assert {"parse", "track", "describe", "sink"} <= set(summary["stages"])
    assert summary["end_to_end_latency"]["count"] == summary["frames"]

    trackable, gt_colors = _ground_truth(clip)
    stored = _stored_tracks(redis_server.client(), redis_prefix, "cam1")
    assert summary["tracks"] == len(stored)
    assert abs(len(stored) - len(trackable)) <= 1, (sorted(stored), sorted(trackable))
    assert all(t["final"] for t in stored.values())
    best_matches = []
    for track in stored.values():
        described = {(p["part"], p["color"]) for p in track["parts"] if p["color"]}
        assert described, f"track {track['track_id']} has no described colors"
        agreement = {gt: len(described & pairs) / len(described) for gt, pairs in gt_colors.items()}
        best = max(agreement, key=agreement.get)
        assert agreement[best] >= 0.75, (track["sentence"], agreement)
        best_matches.append(best)
    assert len(set(best_matches)) >= len(best_matches) - 1  # at most one id switch

    assert 'describeme_frames_total{stage="sink",stream="cam1"} 60' in final_metrics
    assert "describeme_stage_latency_seconds" in final_metrics
    import av

    with av.open(str(out_video)) as container:
        assert sum(1 for _ in container.decode(video=0)) == summary["frames"]


@pytest.fixture(scope="module")
def ingested(clip: Path, local_ray: None, redis_server: Any,
             tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    """Ingest interrupted after 30 frames; resumed next to a copy ingested from scratch; a
    third ingest; and an uninterrupted ``run`` of the same clip for reference."""
    from describeme.operators.store import TrackStore
    from describeme.pipeline.graph import PipelineGraph, file_key

    prefix, client = f"ingest{uuid.uuid4().hex[:8]}:", redis_server.client()
    store = TrackStore(client, prefix=prefix)
    result: dict[str, Any] = {"key": file_key(clip)}
    with PipelineGraph(_config(prefix, max_frames=30), redis_server.url) as graph:
        result["first"] = graph.ingest([str(clip)])  # max_frames stops it like Ctrl-C would
    result["partial_status"] = store.get_file_status(result["key"])
    result["partial"] = _stored_tracks(client, prefix, result["key"])
    copy = tmp_path_factory.mktemp("copy") / "clip" / "video.mp4"
    shutil.copytree(clip.parent, copy.parent)
    with PipelineGraph(_config(prefix), redis_server.url) as graph:
        result["second"] = graph.ingest([str(clip), str(copy)])
        result["third"] = graph.ingest([str(clip), str(copy)])
        graph.run([str(clip)], ["reference"], [None])
    result["final_status"] = store.get_file_status(result["key"])
    result["resumed"] = _stored_tracks(client, prefix, result["key"])
    result["copy"] = _stored_tracks(client, prefix, file_key(copy))
    result["reference"] = _stored_tracks(client, prefix, "reference")
    result["clip"], result["copy_path"] = str(clip), str(copy)
    return result


def test_ingest_resumes_without_duplicate_tracks(ingested: dict[str, Any]) -> None:
    first, second, third = ingested["first"], ingested["second"], ingested["third"]
    assert first["statuses"] == {"stopped": 1} and first["frames"] == 30
    status = ingested["partial_status"]
    assert status is not None and (status.status, status.last_committed_frame) == ("partial", 29)
    by_uri = {r["uri"]: r for r in second["streams"]}
    assert by_uri[ingested["clip"]]["resumed_from"] == 30
    assert by_uri[ingested["clip"]]["frames"] == 15 * SECONDS - 30
    assert by_uri[ingested["copy_path"]]["resumed_from"] == 0
    assert by_uri[ingested["copy_path"]]["status"] == "done"
    assert third["statuses"] == {"skipped": 2} and third["frames"] == 0
    assert ingested["final_status"].status == "done"

    resumed, reference = ingested["resumed"], ingested["reference"]
    assert set(ingested["partial"]) <= set(resumed)
    assert sorted(resumed) == sorted(reference)  # same ids: tracks continued, none duplicated
    assert sorted(ingested["copy"]) == sorted(reference)
    assert all(track["final"] for track in resumed.values())
    for track_id, track in resumed.items():
        assert track["last_seen"] == pytest.approx(reference[track_id]["last_seen"])


def test_resumed_descriptions_keep_their_evidence(ingested: dict[str, Any]) -> None:
    from describeme.operators.describer import TrackDescriber

    resumed, reference = ingested["resumed"], ingested["reference"]
    changed = sorted(t for t, track in resumed.items()
                     if track["first_seen"] != pytest.approx(reference[t]["first_seen"]))
    assert hasattr(TrackDescriber, "load_state_dict")
    assert not changed, f"tracks {changed} restarted their description evidence at the resume"
