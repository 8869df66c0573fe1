"""CPU latency of one HPTR forward pass at long side 512, torch eager vs ONNX Runtime.

Randomly initialised weights (latency does not depend on their values). Times the raw-head
forward (what the parser actor runs), batch 1, for the mobile config
(``configs/models/hptr_mobile.yaml``) and optionally the paper's ResNet-50 config, plus the
numpy postprocess on synthetic heads with 10 compact people (random weights would give
full-image masks, which no trained model does). Writes ``benchmarks/results/hptr_latency.json``.

Run: ``python benchmarks/hptr_latency.py [--threads 1] [--repeats 10] [--paper]``
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from describeme.geometry import Letterbox
from describeme.models.export import export_onnx
from describeme.models.hptr.config import (
    build_model_from_config,
    build_postprocessor_from_config,
    load_hptr_config,
)
from describeme.models.runtime import build_backend

log = logging.getLogger("hptr_latency")
ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "benchmarks" / "results" / "hptr_latency.json"
SIZES = ((512, 512), (384, 512))  # (height, width): square and 4:3 video at long side 512
SOURCE_SIZE = (576, 768)  # a 768x576 camera frame, letterboxed into the model input


def time_call(fn, repeats: int) -> dict[str, float]:
    """Median and min wall time of ``fn()`` in milliseconds, after one warm-up call."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append((time.perf_counter() - start) * 1000)
    return {"median_ms": float(np.median(times)), "min_ms": float(np.min(times))}


def synthetic_heads(queries: int, height: int, width: int, people: int) -> dict:
    """Head outputs with ``people`` confident queries holding compact 160x60 px masks."""
    rng = np.random.default_rng(0)
    h4, w4 = height // 4, width // 4
    masks = np.full((1, queries, h4, w4), -8.0, np.float32)
    logits = np.tile(np.array([-5.0, 5.0], np.float32), (1, queries, 1))
    for k in range(min(people, queries)):
        y, x = rng.integers(0, h4 - 40), rng.integers(0, w4 - 15)
        masks[0, k, y : y + 40, x : x + 15] = 8.0
        logits[0, k] = (5.0, -5.0)
    semantic = {
        name: rng.normal(size=(1, channels, h4, w4)).astype(np.float32)
        for name, channels in (("attribute", 22), ("size", 5), ("pattern", 5), ("color", 13))
    }
    boxes = rng.random((1, queries, 4)).astype(np.float32) * 0.5 + 0.2
    return {"logits": logits, "boxes": boxes, "masks": masks, **semantic}


def bench_config(name: str, threads: int, repeats: int) -> dict:
    """Times torch, onnxruntime and the postprocess for one model config at each size."""
    config = load_hptr_config(ROOT / "configs" / "models" / f"{name}.yaml")
    torch.manual_seed(0)
    model = build_model_from_config(config).eval()
    postprocess = build_postprocessor_from_config(config)
    result: dict = {"params": sum(p.numel() for p in model.parameters())}
    for height, width in SIZES:
        images = np.random.default_rng(0).random((1, 3, height, width), dtype=np.float32)
        entry: dict = {}
        torch_backend = build_backend("torch", model)
        entry["torch"] = time_call(lambda b=torch_backend, x=images: b.infer(x), repeats)
        with tempfile.TemporaryDirectory() as folder:
            path = export_onnx(model, Path(folder) / "hptr.onnx", (height, width))
            onnx_backend = build_backend("onnxruntime", path, threads=threads)
            entry["onnxruntime"] = time_call(lambda b=onnx_backend, x=images: b.infer(x), repeats)
        outputs = synthetic_heads(config.model.num_queries, height, width, people=10)
        letterbox = Letterbox.fit(SOURCE_SIZE, (height, width))
        entry["postprocess_10_people"] = time_call(
            lambda o=outputs, lb=letterbox: postprocess(o, [lb]), repeats
        )
        result[f"{height}x{width}"] = entry
        log.info("%s %dx%d: %s", name, height, width, entry)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=10)
    parser.add_argument("--paper", action="store_true", help="also time the ResNet-50 config")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.set_num_threads(args.threads)
    configs = ["hptr_mobile"] + (["hptr"] if args.paper else [])
    report = {
        "machine": f"{os.cpu_count()}-core CPU shared with other jobs, Python "
        f"{platform.python_version()}, torch {torch.__version__}",
        "threads": args.threads,
        "batch": 1,
        "note": "random weights; median of --repeats runs after a warm-up; other jobs shared "
        "the CPU, so the figures are upper bounds",
        "results": {name: bench_config(name, args.threads, args.repeats) for name in configs},
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(report, indent=2) + "\n")
    log.info("wrote %s", RESULTS)


if __name__ == "__main__":
    main()
