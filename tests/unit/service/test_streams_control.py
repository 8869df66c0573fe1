"""Stream control without Ray: the source policy, stream id rules, and the controller's
bookkeeping over a fake graph (start, duplicate ids, default ids, end states, stop, close)."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest

from describeme.errors import ServiceError
from describeme.pipeline.control import (
    MAX_STREAM_ID_CHARS,
    SourceNotAllowedError,
    SourcePolicy,
    StreamController,
    StreamExistsError,
    UnknownStreamError,
    check_stream_id,
)


@pytest.fixture
def media(tmp_path: Path) -> Path:
    """``media/`` with a clip, a sub-folder clip, a link out of the folder and one inside it;
    ``secret.mp4`` lies outside."""
    root = tmp_path / "media"
    (root / "sub").mkdir(parents=True)
    (root / "clip.mp4").write_bytes(b"x")
    (root / "sub" / "b.mp4").write_bytes(b"x")
    (tmp_path / "secret.mp4").write_bytes(b"x")
    os.symlink(tmp_path / "secret.mp4", root / "escape.mp4")
    os.symlink(root / "clip.mp4", root / "alias.mp4")
    return root


@pytest.mark.parametrize(
    "source",
    ["rtsp://cam.local:554/live", "rtsps://u:p@cam/s", "http://cam/stream.m3u8",
     "https://cam/x.mp4", "/dev/video0"],
)  # fmt: skip
def test_policy_allows_network_and_webcams(source: str) -> None:
    assert SourcePolicy().check(source) == source


@pytest.mark.parametrize(
    ("source", "message"),
    [
        ("rtmp://host/app", "scheme 'rtmp' is not allowed"),
        ("udp://0.0.0.0:1234", "scheme 'udp' is not allowed"),
        ("tcp://127.0.0.1:6379", "scheme 'tcp' is not allowed"),
        ("/etc/passwd", "without --media-root"),
        ("file:///etc/passwd", "without --media-root"),
        ("clip.mp4", "without --media-root"),
    ],
)
def test_policy_refuses_without_media_root(source: str, message: str) -> None:
    with pytest.raises(SourceNotAllowedError, match=message):
        SourcePolicy().check(source)


@pytest.mark.parametrize(
    ("source", "expected"),
    [
        ("{root}/clip.mp4", "clip.mp4"),
        ("file://{root}/clip.mp4", "clip.mp4"),
        ("clip.mp4", "clip.mp4"),
        ("sub/b.mp4", "sub/b.mp4"),
        ("sub/../clip.mp4", "clip.mp4"),
        ("alias.mp4", "clip.mp4"),  # a link that stays inside resolves to its target
    ],
)
def test_policy_allows_files_under_media_root(media: Path, source: str, expected: str) -> None:
    resolved = SourcePolicy([media]).check(source.format(root=media))
    assert resolved == str((media / expected).resolve())


@pytest.mark.parametrize(
    ("source", "error", "message"),
    [
        ("{root}/../secret.mp4", SourceNotAllowedError, "not inside a --media-root"),
        ("../secret.mp4", SourceNotAllowedError, "not inside a --media-root"),
        ("escape.mp4", SourceNotAllowedError, "not inside a --media-root"),  # symlink out
        ("/etc/passwd", SourceNotAllowedError, "not inside a --media-root"),
        ("missing.mp4", ValueError, "no such video file under --media-root"),
        ("sub", ValueError, "no such video file"),  # a folder is not a video
        ("", ValueError, "empty"),
        ("   ", ValueError, "empty"),
        ("ftp://host/x.mp4", ValueError, "unsupported video URI scheme"),
        ("clip.mp4\n", ValueError, "control characters"),
        ("x" * 3000, ValueError, "at most 2048"),
    ],
)
def test_policy_refusals(media: Path, source: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error, match=message):
        SourcePolicy([media]).check(source.format(root=media))


def test_policy_needs_existing_media_roots(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="--media-root .*no such folder"):
        SourcePolicy([tmp_path / "nope"])
    with pytest.raises(TypeError, match="source must be a string"):
        SourcePolicy().check(b"rtsp://x")  # type: ignore[arg-type]


@pytest.mark.parametrize("stream_id", ["cam1", "rtsp host:554/live 1", "caméra-nord", "a"])
def test_good_stream_ids(stream_id: str) -> None:
    assert check_stream_id(stream_id) == stream_id


@pytest.mark.parametrize(
    ("stream_id", "message"),
    [
        ("", "empty"),
        ("   ", "empty"),
        ("cam\x1f1", "control characters"),  # the store's TAG separator
        ("cam\n1", "control characters"),
        (" cam1", "whitespace"),
        ("x" * (MAX_STREAM_ID_CHARS + 1), f"at most {MAX_STREAM_ID_CHARS}"),
    ],
)
def test_bad_stream_ids(stream_id: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        check_stream_id(stream_id)


class FakeHandle:
    def __init__(self, spec: Any) -> None:
        self.spec = spec
        self.report: dict[str, Any] | None = None  # set = the stream has ended
        self.stopped = self.released = False


class FakeGraph:
    """The stream methods of PipelineGraph; a stream ends when its test sets ``report``, or
    on stop when ``drains`` (as the real driver does)."""

    def __init__(self, capacity: int = 8, drains: bool = True) -> None:
        self.capacity, self.drains = capacity, drains
        self.handles: list[FakeHandle] = []

    def start_stream(self, spec: Any) -> FakeHandle:
        if sum(not h.released for h in self.handles) >= self.capacity:
            raise ServiceError("the graph needs 3 CPUs but Ray has 2")
        self.handles.append(FakeHandle(spec))
        return self.handles[-1]

    def finished_streams(self, streams: list[FakeHandle], timeout_s: float = 0.0) -> list[Any]:
        return [h for h in streams if h.report is not None]

    def stream_report(self, handle: FakeHandle) -> dict[str, Any]:
        assert handle.report is not None
        return handle.report

    def stream_frames(self, streams: list[FakeHandle], timeout_s: float = 2.0) -> dict[str, int]:
        return {h.spec.stream_id: 7 for h in streams}

    def stop_stream(self, handle: FakeHandle) -> None:
        handle.stopped = True
        if self.drains and handle.report is None:
            handle.report = {"status": "stopped", "frames": 9}

    def release_stream(self, handle: FakeHandle) -> None:
        handle.released = True


def test_add_list_and_finish() -> None:
    graph = FakeGraph()
    control = StreamController(graph)
    record = control.add("rtsp://admin:s3cret@cam.local:554/live", "door")
    assert (record["stream_id"], record["status"]) == ("door", "running")
    assert record["source"] == "rtsp://admin:***@cam.local:554/live"  # no secret in records
    assert graph.handles[0].spec.uri == "rtsp://admin:s3cret@cam.local:554/live"
    assert control.list()[0]["frames"] == 7
    graph.handles[0].report = {"status": "done", "frames": 40}
    (ended,) = control.list()
    assert (ended["status"], ended["frames"], ended["error"]) == ("finished", 40, None)
    assert ended["ended_at"] is not None and graph.handles[0].released


def test_failed_stream_reports_redacted_error() -> None:
    graph = FakeGraph()
    control = StreamController(graph)
    control.add("rtsp://cam/live", "door")
    graph.handles[0].report = {"status": "failed", "frames": 0,
                               "error": "DataError: cannot open rtsp://u:pw@cam/live"}
    (record,) = control.list()
    assert record["status"] == "failed" and record["error"].endswith("rtsp://u:***@cam/live")


def test_duplicate_running_id_is_refused_and_default_ids_number() -> None:
    graph = FakeGraph()
    control = StreamController(graph)
    assert control.add("rtsp://cam.local:554/live")["stream_id"] == "cam.local:554/live"
    assert control.add("rtsp://cam.local:554/live")["stream_id"] == "cam.local:554/live-2"
    with pytest.raises(StreamExistsError, match="already running"):
        control.add("rtsp://other/x", "cam.local:554/live")
    graph.handles[0].report = {"status": "done", "frames": 3}
    # An ended stream's id may be reused; its old record makes way.
    assert control.add("rtsp://other/x", "cam.local:554/live")["status"] == "running"
    assert [r["stream_id"] for r in control.list()] == ["cam.local:554/live-2",
                                                        "cam.local:554/live"]  # fmt: skip


def test_remove_drains_then_forgets() -> None:
    graph = FakeGraph()
    control = StreamController(graph)
    control.add("/dev/video0")
    record = control.remove("video0")
    assert graph.handles[0].stopped and graph.handles[0].released
    assert (record["status"], record["frames"]) == ("stopped", 9)
    assert control.list() == []
    with pytest.raises(UnknownStreamError, match="no stream 'video0'"):
        control.remove("video0")


def test_remove_releases_a_stream_that_does_not_drain() -> None:
    graph = FakeGraph(drains=False)
    control = StreamController(graph, stop_timeout_s=0.0)
    control.add("/dev/video0", "cam")
    record = control.remove("cam")
    assert record["status"] == "stopped" and "did not drain" in record["error"]
    assert graph.handles[0].released


def test_refusals_start_nothing(tmp_path: Path) -> None:
    graph = FakeGraph(capacity=1)
    control = StreamController(graph, SourcePolicy([tmp_path]))
    for source, stream_id, error in [("/etc/passwd", None, SourceNotAllowedError),
                                     ("rtsp://cam/x", "bad\x00id", ValueError)]:  # fmt: skip
        with pytest.raises(error):
            control.add(source, stream_id)
    assert graph.handles == []
    control.add("rtsp://cam/x", "one")
    with pytest.raises(ServiceError, match="needs 3 CPUs"):
        control.add("rtsp://cam/y", "two")
    assert [r["stream_id"] for r in control.list()] == ["one"]


def test_close_stops_every_stream() -> None:
    graph = FakeGraph()
    control = StreamController(graph)
    for i in range(3):
        control.add(f"rtsp://cam/{i}")
    control.close()
    assert all(h.stopped and h.released for h in graph.handles)
    assert {r["status"] for r in control.list()} == {"stopped"}
    control.close()  # idempotent


def test_policy_searches_every_media_root(media: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    (other / "only-here.mp4").write_bytes(b"x")
    policy = SourcePolicy([media, other])
    assert policy.check("only-here.mp4") == str((other / "only-here.mp4").resolve())
    assert policy.check("clip.mp4") == str((media / "clip.mp4").resolve())
    with pytest.raises(SourceNotAllowedError, match="not inside"):
        policy.check("/root/.ssh/id_rsa")


def test_remove_an_ended_stream_answers_its_final_record() -> None:
    graph = FakeGraph()
    control = StreamController(graph)
    control.add("rtsp://cam/live", "door")
    graph.handles[0].report = {"status": "done", "frames": 12}
    record = control.remove("door")
    assert (record["status"], record["frames"]) == ("finished", 12)
    assert not graph.handles[0].stopped  # it had ended: nothing to stop
    assert graph.handles[0].released
    assert control.list() == []
