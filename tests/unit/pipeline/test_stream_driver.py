"""StreamDriver logic without a cluster: actors are replaced by objects that run each call
at once and return a resolved ref, so the order of calls and the bookkeeping can be checked."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from describeme.messages import FrameBatch
from describeme.operators.standin import GroundTruthParser
from describeme.pipeline import stream as stream_module
from describeme.pipeline.config import PipelineConfig
from describeme.pipeline.stages import DescribingStage, SinkStage, TrackingStage
from describeme.pipeline.stream import GraphHandles, StreamDriver, StreamSpec

from .test_stages import FakeRedis, FakeStore


class Ref:
    def __init__(self, value: Any) -> None:
        self.value = value


class FakeActor:
    """``actor.method.remote(*args)`` runs ``target.method`` now, resolving Ref arguments."""

    def __init__(self, target: Any, name: str, calls: list[str]) -> None:
        self._target, self._name, self._calls = target, name, calls

    def __getattr__(self, method: str) -> Any:
        def remote(*args: Any) -> Ref:
            values = [a.value if isinstance(a, Ref) else a for a in args]
            self._calls.append(f"{self._name}.{method}")
            return Ref(getattr(self._target, method)(*values))

        return SimpleNamespace(remote=remote)


class ParserAdapter:
    def __init__(self) -> None:
        self.parser = GroundTruthParser()
        self.batch_sizes: list[int] = []

    def register_stream(self, stream_id: str, uri: str) -> None:
        self.parser.register_stream(stream_id, uri)

    def parse(self, batch: FrameBatch) -> list[Any]:
        self.batch_sizes.append(len(batch))
        return self.parser.parse(batch.frames)


def _fake_ray() -> SimpleNamespace:
    def get(refs: Any) -> Any:
        return [r.value for r in refs] if isinstance(refs, list) else refs.value

    def wait(refs: list[Ref], num_returns: int = 1, timeout: float | None = None) -> Any:
        return refs[:num_returns], refs[num_returns:]

    return SimpleNamespace(get=get, wait=wait)


@pytest.fixture
def graph(monkeypatch: pytest.MonkeyPatch) -> SimpleNamespace:
    monkeypatch.setattr(stream_module, "ray", _fake_ray())
    config = PipelineConfig()
    calls: list[str] = []
    store, redis = FakeStore(), FakeRedis()
    parser = ParserAdapter()
    handles = GraphHandles(
        parsers=[FakeActor(parser, "parser", calls)],
        tracker=FakeActor(TrackingStage(config.tracker.model_dump()), "tracker", calls),
        describer=FakeActor(DescribingStage(config.describer.model_dump()), "describer", calls),
        sink=FakeActor(SinkStage(store, redis), "sink", calls),
    )
    return SimpleNamespace(config=config, calls=calls, store=store, redis=redis, parser=parser,
                           handles=handles)


def _driver(graph: SimpleNamespace, clip: Path, file_key: str | None = None,
            out_video: str | None = None) -> StreamDriver:
    return StreamDriver(StreamSpec(str(clip), "cam", file_key, out_video), graph.handles,
                        graph.config)


def test_run_pushes_every_frame_through_the_chain_in_order(graph: SimpleNamespace,
                                                           clip: Path) -> None:
    graph.config.stream.frames_per_batch = 5
    report = _driver(graph, clip).run()
    assert report["status"] == "done" and report["frames"] == 12 and report["last_frame"] == 11
    assert graph.parser.batch_sizes == [5, 5, 2]
    chain = [c for c in graph.calls if c.endswith((".parse", ".update", ".write"))]
    assert chain[:4] == ["parser.parse", "tracker.update", "describer.update", "sink.write"]
    assert graph.calls[-3:] == ["describer.finish", "sink.write", "tracker.close_stream"]
    assert sorted(graph.store.docs) == [("cam", 0), ("cam", 1)]
    assert all(d.final for d in graph.store.docs.values())
    assert report["dropped_frames"] == 0 and report["skipped_packets"] == 0


@pytest.mark.parametrize(("live", "sizes"), [(False, [4, 4, 4]), (True, [1] * 12)])
def test_default_batching_is_per_frame_live_and_grouped_for_archives(
    graph: SimpleNamespace, clip: Path, live: bool, sizes: list[int]
) -> None:
    assert graph.config.stream.frames_per_batch is None
    assert stream_module.ARCHIVE_FRAMES_PER_BATCH == 4
    # The 12-frame clip read as an archive, or as a camera (which would reconnect at its end,
    # so the camera run stops after 12 frames).
    graph.config.stream.live = live
    graph.config.stream.max_frames = 12 if live else None
    report = _driver(graph, clip).run()
    assert report["frames"] == 12
    assert graph.parser.batch_sizes == sizes


def test_in_flight_batches_stay_bounded(graph: SimpleNamespace, clip: Path) -> None:
    graph.config.stream.max_in_flight = 2
    driver = _driver(graph, clip)
    depths: list[int] = []
    original = driver._drain

    def spy(keep_at_most: int) -> None:
        original(keep_at_most)
        depths.append(len(driver._in_flight))

    driver._drain = spy  # type: ignore[method-assign]
    driver.run()
    assert max(depths) == 2 and depths[-1] == 0


def test_ingest_commits_after_the_writes_it_covers(graph: SimpleNamespace, clip: Path) -> None:
    graph.config.sink.commit_every = 4
    report = _driver(graph, clip, file_key="f1").run()
    assert report["status"] == "done"
    commits = [i for i, c in enumerate(graph.calls) if c == "sink.commit"]
    writes = [i for i, c in enumerate(graph.calls) if c == "sink.write"]
    assert len(commits) == 4  # frames 3, 7, 11, then the final "done"
    assert all(any(w < c for w in writes) for c in commits)
    assert graph.store.status["f1"] == ("done", 11)


def test_a_done_file_is_skipped_and_a_partial_one_resumes(graph: SimpleNamespace,
                                                          clip: Path) -> None:
    graph.config.stream.max_frames = 5
    first = _driver(graph, clip, file_key="f1").run()
    assert (first["status"], first["frames"]) == ("stopped", 5)
    assert graph.store.status["f1"] == ("partial", 4)
    graph.config.stream.max_frames = None
    second = _driver(graph, clip, file_key="f1").run()
    assert (second["resumed_from"], second["frames"], second["status"]) == (5, 7, "done")
    third = _driver(graph, clip, file_key="f1").run()
    assert (third["status"], third["frames"]) == ("skipped", 0)
    assert sorted(graph.store.docs) == [("cam", 0), ("cam", 1)]


def test_stop_before_start_reads_nothing_and_still_flushes(graph: SimpleNamespace,
                                                           clip: Path) -> None:
    driver = _driver(graph, clip)
    driver.stop()
    report = driver.run()
    assert (report["status"], report["frames"]) == ("stopped", 0)
    assert "describer.finish" in graph.calls


def test_out_video_gets_one_annotated_frame_per_frame(graph: SimpleNamespace, clip: Path,
                                                      tmp_path: Path) -> None:
    import av

    out = tmp_path / "annotated.mp4"
    report = _driver(graph, clip, out_video=str(out)).run()
    with av.open(str(out)) as container:
        assert sum(1 for _ in container.decode(video=0)) == report["frames"] == 12


def test_tracks_out_writes_the_tracker_boxes_in_mot_format(
    graph: SimpleNamespace, clip: Path, tmp_path: Path
) -> None:
    import numpy as np

    from describeme.models.metrics import read_mot_file

    from .conftest import person_box

    out = tmp_path / "mot" / "cam.txt"
    spec = StreamSpec(str(clip), "cam", tracks_out=str(out))
    StreamDriver(spec, graph.handles, graph.config).run()
    rows = read_mot_file(out)
    frames = sorted(set(rows[:, 0].astype(int)))  # 1-based; tentative tracks have no id yet
    assert frames == list(range(frames[0], 13)) and frames[0] <= 3
    ids = sorted(set(rows[:, 1].astype(int)))
    assert len(ids) == 2 and len(rows) == 2 * len(frames)
    for frame, track_id, x, y, w, h in rows[:, :6]:
        # the stand-in reproduces the ground truth: each id keeps one person's boxes
        person = 1 + ids.index(int(track_id))
        np.testing.assert_allclose((x, y, w, h), person_box(person, int(frame)), atol=1.0)


def test_mot_lines_skip_people_without_a_track_id() -> None:
    import numpy as np

    from describeme.messages import TrackedFrame
    from describeme.operators.mot import MotWriter, mot_lines, tracks_file
    from describeme.types import Persons

    persons = Persons(xyxy=np.array([[1, 2, 11, 22], [0, 0, 5, 5]], np.float32),
                      score=np.array([0.9, 0.8]), track_id=np.array([7, -1]))  # fmt: skip
    frame = TrackedFrame("cam", 4, 0.4, 0.0, (30, 30), persons)
    assert mot_lines(frame) == ["5,7,1.0,2.0,10.0,20.0,0.9000,-1,-1,-1\n"]
    assert tracks_file("out", "rtsp://h/s").name == "rtsp%3A%2F%2Fh%2Fs.txt"
    writer = MotWriter(Path(tracks_file(Path(__import__("tempfile").mkdtemp()), "cam")))
    writer.close()  # no frames: an empty file, not a missing one
    assert writer.path.read_text() == ""
