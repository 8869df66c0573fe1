"""End-to-end ``describeme run`` fps against the parser alone, on the same frames.

The pipeline adds decoding, letterboxing, actor hops, tracking, describing and Redis writes
around the parser; on a CPU the parser dominates, so the ratio end-to-end / parser-alone says
how much the graph costs. Target (pipeline issue): >= 0.90.

Steps, all in one invocation on the same clip (the first ``--frames`` frames of
``../shared/data/video/vtest.avi``, re-encoded once so both runs read the same file), repeated
``--rounds`` times, alternating, since a shared 2-core VM drifts by +-10 % between runs:

1. the parser alone: ``ModelParser.parse`` over every frame, batch size 1, after a warm-up
   (what a script calling the parser in a loop gets);
2. the pipeline: ``describeme run CLIP --model CKPT`` (local Ray, embedded Redis), its
   per-stream fps from the summary (Ray start-up excluded, reported separately).

The ratio is median pipeline fps / median parser-alone fps. For context the JSON also has the
parser alone with its two halves overlapped in two threads (``infer`` of batch n + 1 during
``finish`` of batch n, 4 frames a batch), which is what the pipeline's parser actor does: the
best a single process gets from the parser on this machine.

``--model`` defaults to the bundled ``personlab`` (the pipeline's default model); both runs
use the onnxruntime backend (the pipeline's default) at the model's training input size.
``--model untrained`` times a freshly initialised ``configs/models/hptr_mobile.yaml`` at
384x512 instead (random weights decode few people, so the tracker and describer idle).
Writes ``benchmarks/results/pipeline_vs_parser.json``.

    python benchmarks/pipeline_vs_parser.py [--frames 200] [--rounds 3]
        [--model personlab|CKPT|untrained]
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

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("RAY_AUTH_MODE", "disabled")

ROOT = Path(__file__).resolve().parents[1]
VTEST = ROOT.parent / "shared" / "data" / "video" / "vtest.avi"
RESULTS = ROOT / "benchmarks" / "results" / "pipeline_vs_parser.json"


def cut_clip(source: Path, out: Path, frames: int) -> int:
    """Re-encodes the first ``frames`` frames of ``source`` to H.264; returns the count."""
    import av

    written = 0
    with av.open(str(source)) as src, av.open(str(out), "w") as dst:
        in_stream = src.streams.video[0]
        stream = dst.add_stream("libx264", rate=int(in_stream.average_rate or 10))
        stream.width, stream.height = in_stream.codec_context.width, in_stream.codec_context.height
        stream.pix_fmt = "yuv420p"
        for frame in src.decode(in_stream):
            if written == frames:
                break
            for packet in stream.encode(frame.reformat(format="yuv420p")):
                dst.mux(packet)
            written += 1
        for packet in stream.encode():
            dst.mux(packet)
    return written


def untrained_checkpoint(path: Path) -> Path:
    from describeme.models.checkpoint import save_checkpoint
    from describeme.models.hptr.config import build_model_from_config, load_hptr_config

    config = load_hptr_config(ROOT / "configs" / "models" / "hptr_mobile.yaml")
    model = build_model_from_config(config)
    return save_checkpoint(path, model, config=config.model_dump(mode="json"))


def load_frames(clip: Path) -> list:
    from describeme.operators.sources import open_source

    with open_source(str(clip)) as source:
        return list(source)


def parser_alone(frames: list, parser) -> dict:
    """``ModelParser.parse`` frame by frame."""
    people = 0
    start = time.perf_counter()
    for frame in frames:
        people += len(parser.parse([frame])[0].persons)
    seconds = time.perf_counter() - start
    return {"frames": len(frames), "seconds": round(seconds, 3),
            "fps": round(len(frames) / seconds, 3),
            "mean_people": round(people / len(frames), 2)}


def parser_overlapped(frames: list, parser, batch: int = 4) -> dict:
    """``infer`` in this thread, ``finish`` in a second one, one batch apart."""
    import queue
    import threading

    handoff: queue.Queue = queue.Queue(maxsize=1)

    def finisher() -> None:
        while (item := handoff.get()) is not None:
            parser.finish(*item)

    start = time.perf_counter()
    worker = threading.Thread(target=finisher)
    worker.start()
    for i in range(0, len(frames), batch):
        chunk = frames[i : i + batch]
        handoff.put((chunk, parser.infer(chunk)))
    handoff.put(None)
    worker.join()
    seconds = time.perf_counter() - start
    return {"frames": len(frames), "seconds": round(seconds, 3),
            "fps": round(len(frames) / seconds, 3), "batch": batch}


def pipeline(clip: Path, model: str, input_size: list, work: Path) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    summary_path = work / "summary.json"
    env = {**os.environ, "XDG_DATA_HOME": str(work / "data")}
    command = [sys.executable, "-m", "describeme.cli.main", "run", str(clip), "--model", model,
               "--summary-json", str(summary_path), "--out-video", "none",
               "-o", f"parser.input_size=[{input_size[0]}, {input_size[1]}]"]
    subprocess.run(command, check=True, env=env, capture_output=True, timeout=3600)
    summary = json.loads(summary_path.read_text())
    stream = summary["streams"][0]
    return {"frames": stream["frames"], "stream_seconds": stream["elapsed_s"],
            "fps": stream["fps"], "total_seconds_with_startup": summary["elapsed_s"],
            "tracks": summary["tracks"], "stages": summary["stages"]}


def main() -> None:
    import statistics

    from describeme.pipeline.parsers import ModelParser

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--model", default="personlab",
                        help="bundled name, checkpoint, or 'untrained' (timing only)")
    parser.add_argument("--source", type=Path, default=VTEST)
    args = parser.parse_args()
    if not args.source.is_file():
        print(f"skipped: {args.source} not found (needs ../shared/data)")
        return
    rounds = []
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        clip = work / "clip.mp4"
        frames = cut_clip(args.source, clip, args.frames)
        untrained = args.model == "untrained"
        model = (str(untrained_checkpoint(work / "hptr_mobile_untrained.pt")) if untrained
                 else args.model)
        decoded = load_frames(clip)
        alone_parser = ModelParser(model, backend="onnxruntime",
                                   input_size=(384, 512) if untrained else None)
        alone_parser.parse(decoded[:2])  # warm-up: session creation, first-call allocations
        input_size = list(alone_parser.input_size)
        for index in range(args.rounds):
            alone = parser_alone(decoded, alone_parser)
            overlapped = parser_overlapped(decoded, alone_parser)
            graph = pipeline(clip, model, input_size, work / f"round{index}")
            rounds.append({"parser_alone": alone, "parser_overlapped": overlapped,
                           "pipeline": graph})
            print(f"round {index + 1}: parser alone {alone['fps']} fps, overlapped "
                  f"{overlapped['fps']} fps, pipeline {graph['fps']} fps", flush=True)

    def median(key: str) -> float:
        return round(statistics.median(r[key]["fps"] for r in rounds), 3)

    alone_fps, overlapped_fps, pipeline_fps = (
        median("parser_alone"), median("parser_overlapped"), median("pipeline"))
    result = {
        "benchmark": "pipeline_vs_parser",
        "source": f"{args.source.name}, first {frames} frames",
        "model": ("untrained configs/models/hptr_mobile.yaml (timing only)" if untrained
                  else args.model),
        "backend": "onnxruntime", "input_size": input_size,
        "rounds": rounds,
        "parser_alone_fps_median": alone_fps,
        "parser_overlapped_fps_median": overlapped_fps,
        "pipeline_fps_median": pipeline_fps,
        "ratio_pipeline_over_parser": round(pipeline_fps / alone_fps, 3),
        "ratio_pipeline_over_overlapped_parser": round(pipeline_fps / overlapped_fps, 3),
        "target_ratio": 0.90,
        "machine": {"cpus": os.cpu_count(), "python": platform.python_version(),
                    "platform": platform.platform(),
                    "load_average_1min": round(os.getloadavg()[0], 2),
                    "note": "2-core CPU VM, OMP_NUM_THREADS=1"},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({k: result[k] for k in result if k.startswith(("ratio", "parser_", "pipe"))}))
    print(f"-> {RESULTS}")


if __name__ == "__main__":
    main()
