"""POST/GET/DELETE /streams over a fake stream controller (no Ray): bodies, status codes,
stream ids in paths, and the 501 answer of a server started without ``--pipeline``."""

from __future__ import annotations

import warnings
from typing import Any
from urllib.parse import quote

import httpx
import pytest

with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message=".*httpx2.*")
    from fastapi.testclient import TestClient

from describeme.errors import ServiceError
from describeme.pipeline.control import (
    SourceNotAllowedError,
    StreamExistsError,
    UnknownStreamError,
)
from describeme.service.app import ServeSettings, build_app
from describeme.service.routes import STREAM_CONTROL_MESSAGE, parse_stream_ref

TOKEN = "unit-test-token-0123456789"


class FakeController:
    """Records calls; ``fail_with`` makes the next add/remove raise."""

    def __init__(self) -> None:
        self.records: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, Any, Any]] = []
        self.fail_with: Exception | None = None

    def add(self, source: str, stream_id: str | None = None) -> dict[str, Any]:
        self.calls.append(("add", source, stream_id))
        if self.fail_with is not None:
            raise self.fail_with
        sid = stream_id or "derived"
        self.records[sid] = {"stream_id": sid, "source": source, "status": "running",
                             "frames": 0, "error": None}  # fmt: skip
        return dict(self.records[sid])

    def remove(self, stream_id: str) -> dict[str, Any]:
        self.calls.append(("remove", stream_id, None))
        if stream_id not in self.records:
            raise UnknownStreamError(f"no stream {stream_id!r}")
        return {**self.records.pop(stream_id), "status": "stopped"}

    def list(self) -> list[dict[str, Any]]:
        return list(self.records.values())


@pytest.fixture
def controller() -> FakeController:
    return FakeController()


@pytest.fixture
def live(backend: Any, controller: FakeController) -> TestClient:
    return TestClient(build_app(backend, ServeSettings(), controller=controller))


def test_post_starts_a_stream(live: TestClient, controller: FakeController) -> None:
    response = live.post("/streams", json={"source": "rtsp://cam/live", "stream_id": "door 1"})
    assert response.status_code == 201
    assert response.json() == {"id": "door%201", "stream_id": "door 1",
                               "source": "rtsp://cam/live", "status": "running", "frames": 0,
                               "error": None}  # fmt: skip
    assert controller.calls == [("add", "rtsp://cam/live", "door 1")]
    response = live.post("/streams", json={"source": "rtsp://cam/live"})
    assert response.status_code == 201 and controller.calls[-1] == ("add", "rtsp://cam/live", None)


def test_get_lists_store_and_live_streams(live: TestClient, client: TestClient) -> None:
    live.post("/streams", json={"source": "rtsp://cam/live", "stream_id": "cam/1"})
    body = live.get("/streams").json()
    assert [s["stream_id"] for s in body["streams"]] == ["cam-a", "/v/a.mp4"]  # the store's
    assert [(s["id"], s["status"]) for s in body["live"]] == [("cam%2F1", "running")]
    assert "live" not in client.get("/streams").json()  # no pipeline, no live records


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "source: Field required"),
        ({"source": ""}, "source: String should have at least 1 character"),
        ({"source": "x" * 2049}, "source: String should have at most 2048"),
        ({"source": 5}, "source: Input should be a valid string"),
        ({"source": "rtsp://c/x", "stream_id": ""}, "stream_id: String should have at least"),
        ({"source": "rtsp://c/x", "stream_id": "x" * 161}, "stream_id: String should have at"),
        ({"source": "rtsp://c/x", "camera": "x"}, "camera: Extra inputs are not permitted"),
        (["rtsp://c/x"], "Input should be a valid dictionary"),
    ],
)
def test_bad_bodies_are_400(live: TestClient, controller: FakeController, body: Any,
                            message: str) -> None:  # fmt: skip
    response = live.post("/streams", json=body)
    assert response.status_code == 400
    assert message in response.json()["error"]
    assert controller.calls == []


def test_body_must_be_json(live: TestClient) -> None:
    response = live.post("/streams", content=b"source=x",
                         headers={"content-type": "application/x-www-form-urlencoded"})
    assert response.status_code == 400 and "bad request parameters" in response.json()["error"]


@pytest.mark.parametrize(
    ("error", "status"),
    [
        (SourceNotAllowedError("local files are refused: ... --media-root DIR"), 403),
        (StreamExistsError("stream 'a' is already running"), 409),
        (ValueError("no such video file under --media-root /m: x.mp4"), 400),
        (TypeError("source must be a string"), 400),
        (ServiceError("the graph needs 3 CPUs for 3 streams but Ray has 2"), 503),
    ],
)
def test_refused_starts_map_to_statuses(live: TestClient, controller: FakeController,
                                        error: Exception, status: int) -> None:  # fmt: skip
    controller.fail_with = error
    response = live.post("/streams", json={"source": "rtsp://cam/x"})
    assert response.status_code == status
    assert str(error) in response.json()["error"]


def test_delete_stops_and_unknown_is_404(live: TestClient, controller: FakeController) -> None:
    live.post("/streams", json={"source": "rtsp://cam/live", "stream_id": "host:554/live"})
    ref = quote("host:554/live", safe="")
    # The id's '/' is encoded twice in the path, as for track ids.
    response = _delete_raw(live.app, f"/streams/{quote(ref)}")
    assert response.status_code == 200
    assert (response.json()["stream_id"], response.json()["status"]) == ("host:554/live",
                                                                         "stopped")  # fmt: skip
    response = live.delete("/streams/cam9")
    assert response.status_code == 404 and "no stream 'cam9'" in response.json()["error"]


def _delete_raw(app: Any, path: str) -> httpx.Response:
    """A DELETE whose path is sent as given (the TestClient would unquote it once more)."""
    import asyncio

    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as http:
            return await http.delete(path)

    return asyncio.run(go())


@pytest.mark.parametrize(
    ("ref", "expected"),
    [("cam1", "cam1"), ("host%3A554%2Flive", "host:554/live"), ("cam%201", "cam 1"),
     ("caf%C3%A9", "café")],
)  # fmt: skip
def test_parse_stream_ref(ref: str, expected: str) -> None:
    assert parse_stream_ref(ref) == expected


@pytest.mark.parametrize(
    ("ref", "message"),
    [("a:b", "percent-encoded"), ("a b", "percent-encoded"), ("%FF", "not UTF-8"),
     ("x" * 600, "percent-encoded")],
)  # fmt: skip
def test_bad_stream_refs(ref: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_stream_ref(ref)


def test_delete_with_bad_ref_is_400(live: TestClient, controller: FakeController) -> None:
    response = live.delete("/streams/a:b")
    assert response.status_code == 400 and "percent-encoded" in response.json()["error"]
    assert controller.calls == []


def test_without_pipeline_control_is_501(client: TestClient) -> None:
    for response in (client.post("/streams", json={"source": "rtsp://cam/x"}),
                     client.delete("/streams/cam1")):  # fmt: skip
        assert response.status_code == 501
        assert response.json()["error"] == STREAM_CONTROL_MESSAGE
        assert "describeme serve --pipeline" in STREAM_CONTROL_MESSAGE


def test_stream_control_needs_the_token(backend: Any, controller: FakeController) -> None:
    client = TestClient(build_app(backend, ServeSettings(token=TOKEN), controller=controller))
    assert client.post("/streams", json={"source": "rtsp://cam/x"}).status_code == 401
    assert client.delete("/streams/derived").status_code == 401
    assert controller.calls == []
    response = client.post("/streams", json={"source": "rtsp://cam/x"},
                           headers={"Authorization": f"Bearer {TOKEN}"})  # fmt: skip
    assert response.status_code == 201


def test_openapi_describes_stream_control(live: TestClient) -> None:
    paths = live.get("/openapi.json").json()["paths"]
    assert "201" in paths["/streams"]["post"]["responses"]
    assert "serve --pipeline" in paths["/streams"]["post"]["summary"]
    assert "StreamRequest" in str(paths["/streams"]["post"]["requestBody"])
    assert "serve --pipeline" in paths["/streams/{stream_ref}"]["delete"]["summary"]
    assert {"403", "409", "501"} <= set(paths["/streams"]["post"]["responses"])
    assert "404" in paths["/streams/{stream_ref}"]["delete"]["responses"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--model", "standin"], "--model only work with --pipeline"),
        (["--media-root", ".", "--config", "x.yaml"], "--media-root, --config only work with"),
        (["--pipeline", "--model", "standin", "--media-root", "/no/such/dir"],
         "--media-root /no/such/dir: no such folder"),
        (["--pipeline", "--model", "standin", "-o", "stream.bogus=1"], "bogus"),
    ],
)  # fmt: skip
def test_serve_cli_refuses_bad_pipeline_flags(capsys: pytest.CaptureFixture[str],
                                              monkeypatch: pytest.MonkeyPatch, args: list[str],
                                              message: str) -> None:  # fmt: skip
    """Refused before Redis, Ray or the server start (``_serve`` is never reached)."""
    from describeme.cli import main, serve

    def never(*_: Any) -> None:
        raise AssertionError("serve started despite bad flags")

    monkeypatch.setattr(serve, "_serve", never)
    with pytest.raises(SystemExit) as exit_info:
        main.main(["serve", *args])
    assert exit_info.value.code == 2
    assert message in capsys.readouterr().err.replace("\n", " ")


@pytest.mark.parametrize("pipeline", [False, True])
def test_serve_cli_builds_pipeline_options(monkeypatch: pytest.MonkeyPatch, tmp_path: Any,
                                           pipeline: bool) -> None:  # fmt: skip
    from describeme.cli import main, serve

    seen: list[Any] = []
    monkeypatch.setattr(serve, "_serve", lambda *args: seen.append(args))
    extra = ["--pipeline", "--model", "standin", "--media-root", str(tmp_path),
             "-o", "stream.target_fps=5"] if pipeline else []  # fmt: skip
    with pytest.raises(SystemExit) as exit_info:
        main.main(["serve", "--key-prefix", "k:", *extra])
    assert exit_info.value.code == 0
    options = seen[0][-1]
    if not pipeline:
        assert options is None
        return
    assert options.config.sink.prefix == "k:"  # the pipeline writes where the API reads
    assert options.config.parser.model == "standin" and options.config.stream.target_fps == 5
    assert options.policy.media_roots == (tmp_path.resolve(),)
