"""``PipelineConfig``: everything the actor graph needs, validated (YAML in configs/pipeline/)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field

from describeme.config import StrictModel
from describeme.operators.describer import DescriberConfig
from describeme.operators.tracker import TrackerConfig


class StandinConfig(StrictModel):
    """Noise of the ground-truth test-double parser (0 = exact ground truth)."""

    seed: int = 0
    box_jitter: float = Field(default=0.0, ge=0.0, le=1.0)
    drop_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    flip_prob: float = Field(default=0.0, ge=0.0, le=1.0)
    min_visibility: float = Field(default=0.15, ge=0.0, le=1.0)
    thumbnail_height: int = Field(default=96, ge=0)


class ParserConfig(StrictModel):
    """The parser pool: which model, which runtime, how many actors, how they batch."""

    # Checkpoint path, a bundled name, or "standin" (test double). PersonLab is the bundled
    # default until an HPTR model is trained (models/hptr/MODEL_CARD.md).
    model: str = "personlab"
    backend: Literal["torch", "onnxruntime", "tensorrt"] = "onnxruntime"
    device: str = "cpu"
    precision: Literal["fp32", "fp16"] = "fp32"
    # (height, width) of the model input; None = the size the model was trained at (its config)
    input_size: tuple[int, int] | None = None
    num_actors: int = Field(default=1, ge=1)
    # Fractional CPUs: the whole graph must fit on a 2-core laptop (three 1-CPU actors on two
    # CPUs leave one pending forever).
    num_cpus: float = Field(default=0.5, gt=0.0)
    num_gpus: float = Field(default=0.0, ge=0.0)
    # onnxruntime intra-op threads per actor (0 = one per core); other backends ignore it.
    threads: int = Field(default=0, ge=0)
    max_batch_size: int = Field(default=8, ge=1)
    max_wait_ms: float = Field(default=10.0, ge=0.0)
    max_concurrency: int = Field(default=32, ge=1)  # parse calls an actor accepts at once (async)
    # Decoding settings changed from the checkpoint's: keys of the model config's postprocess
    # section (-o parser.postprocess.score_threshold=0.25), checked when the model loads.
    postprocess: dict[str, Any] = Field(default_factory=dict)
    standin: StandinConfig = StandinConfig()


class StreamConfig(StrictModel):
    """Per-stream source settings and backpressure."""

    target_fps: float | None = Field(default=None, gt=0.0)
    # Frames of one stream per parse call; None: 1 for live sources (lowest latency),
    # ARCHIVE_FRAMES_PER_BATCH for files (a quarter of the per-frame actor calls).
    frames_per_batch: int | None = Field(default=None, ge=1)
    max_in_flight: int = Field(default=4, ge=1)  # batches submitted but not yet written by the sink
    queue_size: int = Field(default=8, ge=1)
    live: bool | None = None  # None: rtsp/http/dev are live, files are archives
    num_cpus: float = Field(default=0.25, gt=0.0)
    # Stop a stream after this many frames (smoke runs, tests); None = run to the end.
    max_frames: int | None = Field(default=None, ge=1)


class SinkConfig(StrictModel):
    """The Redis sink and ingest checkpoints."""

    prefix: str = "describeme:"
    commit_every: int = Field(default=50, ge=1)  # frames between ingest resume checkpoints
    num_cpus: float = Field(default=0.25, gt=0.0)


class RayConfig(StrictModel):
    """Where the graph runs."""

    address: str | None = None  # None: start a local Ray in this process
    num_cpus: int = Field(default=2, ge=1)  # for a local Ray only
    stage_num_cpus: float = Field(default=0.25, gt=0.0)  # tracker and describer actors


class IngestConfig(StrictModel):
    """Archive ingestion."""

    # Files processed at once, one stream actor each.
    max_parallel_files: int = Field(default=2, ge=1)


class PipelineConfig(StrictModel):
    """The resolved configuration of one ``describeme run`` / ``ingest``."""

    parser: ParserConfig = ParserConfig()
    stream: StreamConfig = StreamConfig()
    tracker: TrackerConfig = TrackerConfig()
    describer: DescriberConfig = DescriberConfig()
    sink: SinkConfig = SinkConfig()
    ray: RayConfig = RayConfig()
    ingest: IngestConfig = IngestConfig()
    # Serve Prometheus text at http://127.0.0.1:PORT/metrics; None = off.
    metrics_port: int | None = Field(default=None, ge=0, le=65535)
    metrics_interval_s: float = Field(default=2.0, gt=0.0)
