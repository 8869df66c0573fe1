"""Search quality on synthetic tracks whose ground-truth descriptions are known.

Renders a few synthetic videos (one camera each), stores every track's ground-truth
description (confidence 1.0, the final appearance segment) in an embedded Redis through the
real ``TrackStore``, then asks queries of 1 to 4 constraints phrased from a track's ground truth
by templates ("person with a red t-shirt and black trousers", "someone wearing white boots",
"long dark hair, striped blue skirt") and ranks with the real parser and retrieval.

Several tracks can satisfy the same query ("blue pants"), so quality is reported three ways:

- ``recall_at_1``: the first hit satisfies every constraint on the ground truth;
- ``recall_at_5``: the track the query was made from is among the first 5 hits;
- ``map``: mean average precision, relevant = every track satisfying the query on the ground
  truth.

Storing the ground truth isolates the search from the model (target recall@1 >= 0.98).
Every query is ranked twice, with the retrieval's near-miss credit (the default: a failed
attribute counts the vote share its asked value got on the track) and without it, so the
result shows what that credit buys (ground-truth descriptions have no runner-up votes).

With ``--model`` (a checkpoint or the bundled ``personlab``) the tracks come from the pipeline
instead: ``describeme run`` parses every video with the model into the same embedded Redis
(``--tracks-out`` keeps the tracker's boxes), each model track is matched to the ground-truth
person it follows (per-frame Hungarian box matching at IoU >= 0.4, majority vote), and the
same queries are asked of the model's descriptions (target recall@1 >= 0.8). Relevance is
judged on the ground truth of the person a track follows; a track that follows nobody is
never relevant, and a person the model never tracked makes its queries' recall@5 fail.
Writes ``benchmarks/results/search_recall.json`` (``search_recall_model.json`` with --model).

    python benchmarks/search_recall.py [--videos 10] [--seconds 60] [--queries 400]
    python benchmarks/search_recall.py --model personlab --videos 6 --seconds 20
        [-o parser.postprocess.score_threshold=0.1 ...] [--out results.json]

``-o`` settings go to ``describeme run`` as its own ``-o`` overrides (decoding and tracking
choices measured by the search they give).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import random
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

RESULTS = Path(__file__).resolve().parent / "results" / "search_recall.json"
COLOR_WORDS = {"dark": "black", "medium": "grey", "light": "white", "multicolor": "multicolored"}
PATTERN_WORDS = {"geometrical": "striped", "fancy": "floral", "letters": "logo", "solid": "plain"}
TEMPLATES = ["person with {}", "someone wearing {}", "a man in {}", "woman with {}", "{}"]


def render_videos(root: Path, count: int, seconds: float) -> list[Path]:
    folders = []
    for seed in range(1, count + 1):
        out = root / f"cam{seed}"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "describeme.cli.main",
                "data",
                "synth",
                "--out",
                str(out),
                "--video",
                "--seconds",
                str(seconds),
                "--seed",
                str(seed),
            ],
            check=True,
            capture_output=True,
        )
        folders.append(out)
    return folders


def ground_truth_groups(parts: dict[str, dict[str, str]]) -> dict[str, dict[str, str | None]]:
    """A segment's parts merged into description groups ("left-shoe" -> "shoes")."""
    from describeme.labels import DESCRIPTION_GROUPS, PARTS

    groups: dict[str, dict[str, str | None]] = {}
    for group, ids in DESCRIPTION_GROUPS.items():
        names = [PARTS[i] for i in ids if PARTS[i] in parts]
        if names:
            values = parts[names[0]]
            groups[group] = {
                k: (None if values.get(k) in (None, "none") else values[k])
                for k in ("color", "size", "pattern")
            }
    return groups


def to_description(camera: str, track: dict[str, Any], fps: float) -> Any:
    from describeme.messages import PartDescription, TrackDescription
    from describeme.operators.sentence import describe_sentence

    segment = track["segments"][-1]
    parts = []
    for group, values in ground_truth_groups(segment["parts"]).items():
        confidences = {f"{k}_confidence": 1.0 for k, v in values.items() if v is not None}
        parts.append(PartDescription(group, 1.0, **values, **confidences))
    first, last = (track["first_frame"] - 1) / fps, (track["last_frame"] - 1) / fps
    return TrackDescription(
        camera,
        int(track["id"]),
        track["last_frame"] - 1,
        last,
        first,
        last,
        1.7e9 + first,
        1.7e9 + last,
        parts,
        describe_sentence(parts),
        final=True,
    )


def phrase(group: str, values: dict[str, str | None], rng: random.Random) -> tuple[str, dict]:
    """Words for one constraint, and the constraint they mean (None = not asked)."""
    color, size, pattern = values["color"], values["size"], values["pattern"]
    asked = {"color": color, "size": None, "pattern": None}
    noun = {
        "upper-clothes": "top",
        "coat": "coat",
        "pants": "pants",
        "skirt": "skirt",
        "hat": "hat",
        "shoes": "shoes",
        "glasses": "glasses",
        "scarf-tie": "scarf",
        "bag": "bag",
        "glove": "gloves",
        "face-mask": "mask",
        "socks": "socks",
        "hair": "hair",
        "others": "accessory",
    }[group]
    if group == "upper-clothes" and size in ("short", "long"):
        noun, asked["size"] = {"short": "t-shirt", "long": "sweater"}[size], size
    elif group == "pants" and size in ("short", "long"):
        noun, asked["size"] = {"short": "shorts", "long": "trousers"}[size], size
    elif group in ("skirt", "hair") and size in ("short", "long"):
        noun, asked["size"] = f"{size} {noun}", size
    elif group == "shoes" and size == "long":
        noun, asked["size"] = "boots", size
    if group == "hair" and size == "sparse":
        return "bald head", {"color": None, "size": "sparse", "pattern": None}
    words = []
    if pattern is not None and pattern != "solid" and rng.random() < 0.4:
        words.append(PATTERN_WORDS[pattern])
        asked["pattern"] = pattern
    if color is not None:
        words.append(COLOR_WORDS.get(color, color))
    return " ".join([*words, noun]), asked


def make_query(
    groups: dict[str, dict[str, str | None]], rng: random.Random
) -> tuple[str, list[tuple[str, dict]]]:
    usable = [g for g, v in groups.items() if v["color"] is not None and g != "others"]
    chosen = rng.sample(usable, k=min(len(usable), rng.randint(1, 4)))
    pieces = [phrase(g, groups[g], rng) for g in chosen]
    text = (
        pieces[0][0]
        if len(pieces) == 1
        else ", ".join(p for p, _ in pieces[:-1]) + " and " + pieces[-1][0]
    )
    return rng.choice(TEMPLATES).format(text), [
        (g, asked) for g, (_, asked) in zip(chosen, pieces, strict=True)
    ]


def satisfies(groups: dict[str, dict[str, str | None]], wanted: list[tuple[str, dict]]) -> bool:
    return all(
        g in groups and all(v is None or groups[g][k] == v for k, v in asked.items())
        for g, asked in wanted
    )


def model_tracks(
    url: str, folders: list[Path], model: str, work: Path, prefix: str,
    overrides: Sequence[str] = (),
) -> dict[tuple[str, int], tuple[str, int] | None]:  # fmt: skip
    """Runs the pipeline with ``model`` over the videos (stream id = folder name) into the
    store at ``url``; returns model track key -> the ground-truth key it follows (or None)."""
    links = work / "streams"
    links.mkdir()
    for folder in folders:
        (links / f"{folder.name}.mp4").symlink_to(folder / "video.mp4")
    command = [sys.executable, "-m", "describeme.cli.main", "run",
               *[str(links / f"{f.name}.mp4") for f in folders], "--model", model,
               "--redis-url", url, "--tracks-out", str(work / "mot"), "--out-video", "none",
               "-o", f"sink.prefix={prefix}", "-o", "stream.num_cpus=0.05"]  # fmt: skip
    for override in overrides:
        command += ["-o", override]
    subprocess.run(command, check=True)
    links_to_truth = {}
    for folder in folders:
        links_to_truth.update(match_tracks(folder, work / "mot" / f"{folder.name}.txt"))
    return links_to_truth


def match_tracks(folder: Path, predicted: Path) -> dict[tuple[str, int], tuple[str, int] | None]:
    """Model track -> ground-truth person, by a majority of per-frame IoU matches."""
    from collections import Counter

    import numpy as np
    from scipy.optimize import linear_sum_assignment

    from describeme.geometry import box_iou_xyxy
    from describeme.models.metrics import read_mot_file

    def boxes(rows: Any) -> Any:
        return np.column_stack([rows[:, 2], rows[:, 3], rows[:, 2] + rows[:, 4],
                                rows[:, 3] + rows[:, 5]])  # fmt: skip

    truth, ours = read_mot_file(folder / "gt" / "gt.txt"), read_mot_file(predicted)
    votes: dict[int, Counter] = {int(t): Counter() for t in np.unique(ours[:, 1])}
    for frame in np.unique(ours[:, 0]):
        mine, theirs = ours[ours[:, 0] == frame], truth[truth[:, 0] == frame]
        if len(theirs) == 0:
            continue
        iou = box_iou_xyxy(boxes(mine), boxes(theirs))
        for i, j in zip(*linear_sum_assignment(-iou), strict=True):
            if iou[i, j] >= 0.4:
                votes[int(mine[i, 1])][int(theirs[j, 1])] += 1
    result: dict[tuple[str, int], tuple[str, int] | None] = {}
    for track, counter in votes.items():
        frames = int((ours[:, 1] == track).sum())
        best = counter.most_common(1)
        follows = best and best[0][1] >= frames / 2
        result[(folder.name, track)] = (folder.name, best[0][0]) if follows else None
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=10)
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--queries", type=int, default=400)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--model", default=None, help="describe with this model (pipeline)")
    parser.add_argument("-o", "--override", action="append", default=[], metavar="KEY=VALUE",
                        help="with --model: a describeme run -o override (repeatable)")
    parser.add_argument("--out", type=Path, default=None, help="JSON result path")
    args = parser.parse_args()
    if args.override and args.model is None:
        parser.error("-o applies to --model runs (the pipeline's settings)")

    from describeme.operators.redis_server import EmbeddedRedis
    from describeme.operators.retrieval import search_tracks
    from describeme.operators.store import TrackStore

    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory() as tmp:
        truth: dict[tuple[str, int], dict[str, dict[str, str | None]]] = {}
        with EmbeddedRedis(Path(tmp) / "redis") as redis:
            store = TrackStore.from_url(redis.url, prefix="recall:")
            store.ensure_index()
            folders = render_videos(Path(tmp), args.videos, args.seconds)
            for folder in folders:
                data = json.loads((folder / "tracks.json").read_text())
                for track in data["tracks"]:
                    description = to_description(folder.name, track, data["fps"])
                    if args.model is None:
                        store.upsert(description)
                    truth[description.key] = ground_truth_groups(track["segments"][-1]["parts"])
            if args.model is None:
                follows = {key: key for key in truth}  # each stored track is its own truth
            else:
                follows = model_tracks(redis.url, folders, args.model, Path(tmp), "recall:",
                                       args.override)  # fmt: skip
            store.wait_indexed()
            keys = sorted(truth)
            # The same queries ranked with and without near-miss credit (runner-up shares).
            runs = {near: {"at_1": 0, "at_5": 0, "ap": 0.0, "n": 0} for near in (True, False)}
            for _ in range(args.queries):
                target = keys[rng.randrange(len(keys))]
                text, wanted = make_query(truth[target], rng)
                relevant = {k for k, t in follows.items() if t and satisfies(truth[t], wanted)}
                for near, stats in runs.items():
                    hits = search_tracks(store, text, limit=50, near_miss=near).hits
                    ranked = [(h.track["stream_id"], int(h.track["track_id"])) for h in hits]
                    found = [i for i, key in enumerate(ranked, start=1) if key in relevant]
                    stats["at_1"] += bool(ranked) and ranked[0] in relevant
                    stats["at_5"] += any(follows.get(k) == target for k in ranked[:5])
                    stats["ap"] += sum((j + 1) / r for j, r in enumerate(found)) / max(
                        len(relevant), 1)
                    stats["n"] += 1
    stats, plain = runs[True], runs[False]
    n = stats["n"]
    followed = {t for t in follows.values() if t is not None}
    result = {
        "benchmark": "search_recall",
        "descriptions": f"model {args.model} through describeme run"
        if args.model
        else "ground truth (isolates the search)",
        "videos": args.videos,
        "seconds": args.seconds,
        "tracks": len(truth),
        "stored_tracks": len(follows),
        "stored_tracks_following_a_person": sum(t is not None for t in follows.values()),
        "people_with_a_track": round(len(followed) / max(len(truth), 1), 4),
        "queries": n,
        "recall_at_1": round(stats["at_1"] / n, 4),
        "recall_at_5": round(stats["at_5"] / n, 4),
        "map": round(stats["ap"] / n, 4),
        "without_near_miss_credit": {"recall_at_1": round(plain["at_1"] / n, 4),
                                     "recall_at_5": round(plain["at_5"] / n, 4),
                                     "map": round(plain["ap"] / n, 4)},
        "target_recall_at_1": 0.8 if args.model else 0.98,
        "machine": f"2-core CPU VM, Python {platform.python_version()}",
    }
    if args.override:
        result["overrides"] = args.override
    out = args.out or (RESULTS.with_name("search_recall_model.json") if args.model else RESULTS)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result))


if __name__ == "__main__":
    main()
