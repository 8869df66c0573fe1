"""Throughput and latency of the whole actor graph (local Ray, embedded Redis).

Renders a synthetic clip with ground truth, then runs ``describeme run``'s graph on it with the
ground-truth stand-in parser (so the figures measure the graph: decode, actor hops, tracking,
describing, Redis writes; not a model) for 1 and 2 streams, with and without cross-stream
batching. Writes ``benchmarks/results/pipeline_fps.json``.

    python benchmarks/pipeline_fps.py [--seconds 10] [--model standin|CKPT]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

RESULTS = Path(__file__).resolve().parent / "results" / "pipeline_fps.json"
CASES = [  # (name, streams, max_batch_size)
    ("1 stream, batch<=8", 1, 8),
    ("2 streams, batch<=8", 2, 8),
    ("2 streams, batch=1", 2, 1),
    ("4 streams, batch<=8", 4, 8),
]


def render_clip(out: Path, seconds: float, seed: int) -> Path:
    subprocess.run([sys.executable, "-m", "describeme.cli.main", "data", "synth", "--out", str(out),
                    "--video", "--seconds", str(seconds), "--seed", str(seed)],
                   check=True, capture_output=True)
    return out / "video.mp4"


def run_case(clip: Path, redis_url: str, model: str, streams: int,
             max_batch: int) -> dict[str, Any]:
    from describeme.pipeline.config import PipelineConfig
    from describeme.pipeline.graph import PipelineGraph

    config = PipelineConfig()
    config.parser.model = model
    config.parser.max_batch_size = max_batch
    config.sink.prefix = f"bench{streams}x{max_batch}:"
    if streams > 2:  # fit the graph on Ray's 2 CPUs: a reservation, not a limit on work
        config.stream.num_cpus = round(0.5 / streams, 3)
    with PipelineGraph(config, redis_url) as graph:
        started = time.perf_counter()
        summary = graph.run([str(clip)] * streams, [f"cam{i}" for i in range(streams)],
                            [None] * streams)
        wall = time.perf_counter() - started
        batches = graph.metrics()["latency"].get(("batch_size", ()), [])
    # Steady state: from each stream's source opening to its last write (actor start excluded).
    streaming_s = max(r["elapsed_s"] for r in summary["streams"])
    return {
        "streams": streams, "max_batch_size": max_batch, "frames": summary["frames"],
        "stream_num_cpus": config.stream.num_cpus,
        "tracks": summary["tracks"], "wall_s_with_actor_start": round(wall, 3),
        "streaming_s": streaming_s,
        "fps_total": round(summary["frames"] / streaming_s, 2),
        "fps_per_stream": round(summary["frames"] / streaming_s / streams, 2),
        "mean_parser_batch": round(sum(batches) / len(batches), 2) if batches else None,
        "stages_ms": summary["stages"], "end_to_end_ms": summary["end_to_end_latency"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--model", default="standin")
    args = parser.parse_args()

    import ray

    from describeme.operators.redis_server import EmbeddedRedis

    with tempfile.TemporaryDirectory() as tmp:
        clip = render_clip(Path(tmp) / "clip", args.seconds, args.seed)
        with EmbeddedRedis(Path(tmp) / "redis") as redis:
            started = time.perf_counter()
            ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
            ray_init_s = time.perf_counter() - started
            try:
                results = {name: run_case(clip, redis.url, args.model, n, b)
                           for name, n, b in CASES}
            finally:
                ray.shutdown()
    report = {
        "benchmark": "pipeline_fps",
        "machine": f"2-core CPU shared with other jobs, {platform.platform()}, "
                   f"Python {platform.python_version()}",
        "model": args.model,
        "note": "standin = ground-truth test double: measures the graph, not a model",
        "clip": {"seconds": args.seconds, "fps": 15, "size": [512, 384], "seed": args.seed},
        "ray_init_s": round(ray_init_s, 2),
        "cases": results,
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    for name, case in results.items():
        print(f"{name:22s} {case['fps_total']:7.1f} fps total  {case['fps_per_stream']:6.1f}/stream"
              f"  mean batch {case['mean_parser_batch']}  e2e p50 "
              f"{case['end_to_end_ms'].get('p50_ms')} ms")
    print(f"wrote {RESULTS}")


if __name__ == "__main__":
    main()
