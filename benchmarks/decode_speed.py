"""PyAV source decode speed vs the ``ffmpeg`` command line on the same file (target >= 0.95).

Usage::

    python benchmarks/decode_speed.py [--video ../shared/data/video/vtest.avi] [--repeats 5]
        [--out benchmarks/results/decode_speed.json]

Measures, interleaved and best of ``--repeats`` (the machine is shared, so the best run is
the least disturbed one):

- ``source``: ``open_source(video)`` iterated to the end, every frame as a BGR ``Frame``
  (open + threaded decode + conversion), frames / wall seconds;
- ``pyav_decode_only``: a bare ``container.decode`` loop without conversion, for reference;
- ``pyav_decode_bgr_bare``: the least any threaded BGR source can do: one thread decodes into
  a bounded ``queue.Queue``, the caller converts each frame to BGR with one reused swscale
  context (no timestamps, sampling, counters or reconnects). Its ratio to ``ffmpeg_null``
  bounds what the source's own bookkeeping could gain;
- ``ffmpeg_null``: ``ffmpeg -i video -f null -`` (decode only, no pixel conversion), timed by
  ffmpeg's own ``-benchmark`` real time;
- ``ffmpeg_bgr24_null``: the same plus ``-pix_fmt bgr24`` (the work the source does).

The headline ratio is best ``source`` / best ``ffmpeg_null`` (medians are reported too).
CPU milliseconds per frame (all threads) are reported as well: unlike fps they do not depend
on what else the shared machine runs. Also decodes ``Megamind_bugy.avi`` (when
present) and reports the source's damage counters. Exits 0 with a message when the video is
absent (data is not part of the project); without ``ffmpeg`` the ffmpeg rows are skipped.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("OMP_NUM_THREADS", "1")

log = logging.getLogger("decode_speed")
REPO = Path(__file__).resolve().parents[1]
VIDEO_DIR = REPO.parent / "shared" / "data" / "video"
TARGET_RATIO = 0.95


def _cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)  # all threads of this process
    return usage.ru_utime + usage.ru_stime


def time_source(video: Path) -> tuple[int, float, float]:
    """Frames, wall seconds and CPU seconds for the project source, BGR frames included."""
    from describeme.operators.sources import open_source

    started, cpu = time.perf_counter(), _cpu_s()
    with open_source(video) as source:
        frames = sum(1 for _ in source)
    return frames, time.perf_counter() - started, _cpu_s() - cpu


def _bare_decode(video: Path) -> Iterator[Any]:
    """Every frame of the first video stream, threaded decode, nothing else."""
    import av

    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        stream.thread_type = "AUTO"
        yield from container.decode(stream)


def time_pyav_decode_only(video: Path) -> tuple[int, float, float]:
    started, cpu = time.perf_counter(), _cpu_s()
    frames = sum(1 for _ in _bare_decode(video))
    return frames, time.perf_counter() - started, _cpu_s() - cpu


def time_pyav_decode_bgr_bare(video: Path) -> tuple[int, float, float]:
    import queue
    import threading

    from av.video.reformatter import VideoReformatter

    handoff: queue.Queue = queue.Queue(maxsize=16)

    def decode() -> None:
        try:
            for frame in _bare_decode(video):
                handoff.put(frame)
        finally:
            handoff.put(None)  # a decode error ends the loop below instead of hanging it

    started, cpu = time.perf_counter(), _cpu_s()
    thread = threading.Thread(target=decode, daemon=True)
    thread.start()
    reformatter, frames = VideoReformatter(), 0
    while (frame := handoff.get()) is not None:
        reformatter.reformat(frame, format="bgr24", threads=1).to_ndarray()
        frames += 1
    thread.join()
    return frames, time.perf_counter() - started, _cpu_s() - cpu


def ffmpeg_timer(ffmpeg: str, extra: list[str]) -> Callable[[Path], tuple[int, float, float]]:
    """A timer running ffmpeg to the null muxer; seconds are ffmpeg's ``-benchmark`` rtime
    and utime + stime (the decode itself, without process start-up), frames its final
    ``frame=`` count."""

    def run(video: Path) -> tuple[int, float, float]:
        command = [ffmpeg, "-hide_banner", "-nostdin", "-benchmark", "-i", str(video)]
        done = subprocess.run(
            command + extra + ["-f", "null", "-"], capture_output=True, text=True, check=True
        )
        bench = re.findall(r"utime=([\d.]+)s stime=([\d.]+)s rtime=([\d.]+)s", done.stderr)
        frames = re.findall(r"frame=\s*(\d+)", done.stderr)
        if not bench or not frames:
            raise RuntimeError(f"cannot parse ffmpeg -benchmark output: {done.stderr[-500:]}")
        utime, stime, rtime = map(float, bench[-1])
        return int(frames[-1]), rtime, utime + stime

    return run


def measure(timers: dict[str, Callable], video: Path, repeats: int) -> dict[str, dict]:
    """Runs every timer ``repeats`` times, interleaved; returns fps and CPU stats per timer."""
    runs: dict[str, list[tuple[int, float, float]]] = {name: [] for name in timers}
    for _ in range(repeats):
        for name, timer in timers.items():
            runs[name].append(timer(video))
    out = {}
    for name, results in runs.items():
        fps = [frames / wall_s for frames, wall_s, _ in results]
        cpu_ms = [1e3 * cpu_s / frames for frames, _, cpu_s in results]
        out[name] = {
            "frames": results[0][0],
            "best_fps": max(fps),
            "median_fps": statistics.median(fps),
            "all_fps": [round(v, 1) for v in fps],
            "best_cpu_ms_per_frame": min(cpu_ms),
            "median_cpu_ms_per_frame": statistics.median(cpu_ms),
        }
    return out


def damage_report(video: Path) -> dict:
    """Decodes a damaged file with the source and returns its counters."""
    from describeme.operators.sources import open_source

    with open_source(video) as source:
        indices = [frame.frame_index for frame in source]
        stats = source.stats()
    keys = ("decoded", "yielded", "skipped_packets", "corrupt_frames", "pts_repaired")
    return {
        "file": video.name,
        **{key: stats[key] for key in keys},
        "frame_index_strictly_increasing": all(
            b > a for a, b in zip(indices, indices[1:], strict=False)
        ),
    }


def machine() -> dict:
    import av

    return {
        "machine": f"{os.cpu_count()}-core CPU ({platform.processor() or platform.machine()})",
        "python": platform.python_version(),
        "platform": platform.platform(),
        "pyav": av.__version__,
        "pyav_ffmpeg": ".".join(map(str, av.library_versions["libavcodec"])),
    }


def ffmpeg_version(ffmpeg: str) -> str:
    done = subprocess.run([ffmpeg, "-version"], capture_output=True, text=True, check=True)
    return done.stdout.splitlines()[0]


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--video", type=Path, default=VIDEO_DIR / "vtest.avi")
    parser.add_argument("--damaged", type=Path, default=VIDEO_DIR / "Megamind_bugy.avi")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks/results/decode_speed.json")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    args = parse_args(argv)
    if not args.video.is_file():
        log.info("skipped: %s not found (benchmark data is not part of the project)", args.video)
        return 0
    timers: dict[str, Callable] = {
        "source": time_source,
        "pyav_decode_only": time_pyav_decode_only,
        "pyav_decode_bgr_bare": time_pyav_decode_bgr_bare,
    }
    ffmpeg = shutil.which("ffmpeg")
    if ffmpeg:
        timers["ffmpeg_null"] = ffmpeg_timer(ffmpeg, [])
        timers["ffmpeg_bgr24_null"] = ffmpeg_timer(ffmpeg, ["-pix_fmt", "bgr24"])
    else:
        log.info("ffmpeg not found: ffmpeg rows skipped (install it with .ci/system-deps.sh)")
    load_before = os.getloadavg()
    time_source(args.video)  # warm-up: imports, page cache
    results = measure(timers, args.video, args.repeats)
    report = {
        **machine(),
        "ffmpeg": ffmpeg_version(ffmpeg) if ffmpeg else None,
        "video": str(args.video.name),
        "repeats": args.repeats,
        "load_average_1_5_15min_before": load_before,
        "results": results,
        "target_ratio": TARGET_RATIO,
    }
    if ffmpeg:
        source_fps = results["source"]["best_fps"]
        report["ratio_vs_ffmpeg_null"] = source_fps / results["ffmpeg_null"]["best_fps"]
        report["ratio_vs_ffmpeg_bgr24"] = source_fps / results["ffmpeg_bgr24_null"]["best_fps"]
        report["bare_bgr_ratio_vs_ffmpeg_null"] = (
            results["pyav_decode_bgr_bare"]["best_fps"] / results["ffmpeg_null"]["best_fps"]
        )
        report["median_ratio_vs_ffmpeg_null"] = (
            results["source"]["median_fps"] / results["ffmpeg_null"]["median_fps"]
        )
        report["meets_target"] = report["ratio_vs_ffmpeg_null"] >= TARGET_RATIO
        # CPU seconds per frame do not depend on what else the shared machine runs.
        report["cpu_ratio_vs_ffmpeg_null"] = (
            results["ffmpeg_null"]["best_cpu_ms_per_frame"]
            / results["source"]["best_cpu_ms_per_frame"]
        )
    if args.damaged.is_file():
        report["damaged_file"] = damage_report(args.damaged)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    for name, row in results.items():
        log.info(
            "%-20s best %7.1f fps  median %7.1f fps  cpu %.3f ms/frame",
            name, row["best_fps"], row["median_fps"], row["best_cpu_ms_per_frame"],
        )  # fmt: skip
    if ffmpeg:
        log.info("source / ffmpeg -f null: %.3f (target >= %.2f)", report["ratio_vs_ffmpeg_null"],
                 TARGET_RATIO)  # fmt: skip
        log.info("bare decode + BGR / ffmpeg -f null: %.3f",
                 report["bare_bgr_ratio_vs_ffmpeg_null"])  # fmt: skip
    log.info("wrote %s", args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
