"""The API through FastAPI's TestClient over a fake backend: routes, errors, auth, limits."""

from __future__ import annotations

import asyncio
import base64
from collections.abc import Callable
from urllib.parse import quote

import httpx
import pytest
import redis
from fastapi.testclient import TestClient

from describeme.operators.query import MAX_QUERY_CHARS
from describeme.service.app import ServeSettings, build_app

TOKEN = "s3cret-token-0123456789"
JPEG = b"\xff\xd8\xff\xe0fake-jpeg\xff\xd9"


def test_search_returns_hits_with_ids_and_thumbnails(client: TestClient, backend) -> None:
    response = client.get("/search", params={"q": "red shirt", "limit": 2})
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["constraints"][0]["part"] == "upper-clothes"
    assert [hit["id"] for hit in body["hits"]] == ["cam-a:1", "cam-b:3"]
    first = body["hits"][0]
    assert base64.b64decode(first["thumbnail_jpeg_base64"]) == JPEG
    assert first["thumbnail_url"] == "/tracks/cam-a:1/thumbnail"
    assert body["hits"][1]["thumbnail_url"] is None  # cam-b:3 has none
    assert first["matched"] == ["upper-clothes color=red"]
    assert "vector" not in first and "thumbnail" not in first
    parsed, limit, offset, _ = backend.searches[-1]
    assert (parsed.text, limit, offset) == ("red shirt", 2, 0)


def test_search_passes_filters_and_paging(client: TestClient, backend) -> None:
    response = client.get(
        "/search",
        params={"q": "blue jeans", "offset": 1, "camera": ["cam-a", "cam b"], "since": "1800000000",
                "thumbnails": "false"},
    )  # fmt: skip
    assert response.status_code == 200, response.text
    assert "thumbnail_jpeg_base64" not in response.json()["hits"][0]
    _, _, offset, filters = backend.searches[-1]
    assert offset == 1
    assert filters.cameras == ("cam-a", "cam b") and filters.since == 1_800_000_000.0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"q": "hello world"}, "nothing to search for"),
        ({"q": "   "}, "query is empty"),
        ({"q": "red shirt " * 40}, f"at most {MAX_QUERY_CHARS}"),
        ({"q": "red\x00shirt"}, "control characters"),
        ({}, "q: Field required"),
        ({"q": "red shirt", "limit": 0}, "limit"),
        ({"q": "red shirt", "limit": 101}, "limit"),
        ({"q": "red shirt", "offset": -1}, "offset"),
        ({"q": "red shirt", "limit": "many"}, "limit"),
        ({"q": "red shirt", "since": "yesterday-ish"}, "cannot read time"),
        ({"q": "red shirt", "camera": ""}, "camera filter must not be empty"),
        ({"q": "red shirt", "camera": [f"c{i}" for i in range(33)]}, "at most 32 camera"),
    ],
)
def test_bad_search_requests_get_400_with_a_reason(
    client: TestClient, params: dict[str, object], message: str
) -> None:
    response = client.get("/search", params=params)
    assert response.status_code == 400
    assert message in response.json()["error"]


def test_track_detail_has_history_and_no_bytes(backend) -> None:
    # Through httpx's ASGI transport: Starlette's TestClient unquotes the path twice, unlike
    # uvicorn, so it cannot carry a percent-encoded stream id.
    ref = "rtsp%3A%2F%2Fhost%2Fs%201:2"
    app = build_app(backend, ServeSettings())

    async def get() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(f"/tracks/{quote(ref, safe=':')}")

    response = asyncio.run(get())
    assert response.status_code == 200, response.text
    body = response.json()
    assert (body["stream_id"], body["track_id"], body["id"]) == ("rtsp://host/s 1", 2, ref)
    assert body["events"][0]["kind"] == "appeared"
    assert "thumbnail" not in body and "vector" not in body


@pytest.mark.parametrize(
    ("path", "status", "message"),
    [
        ("/tracks/cam-a:99", 404, "no track 'cam-a:99'"),
        ("/tracks/cam-a", 400, "STREAM:NUMBER"),
        ("/tracks/cam-a:1x", 400, "STREAM:NUMBER"),
        ("/tracks/%2A%7D%7C:1", 400, "STREAM:NUMBER"),
        ("/tracks/cam-a:99/thumbnail", 404, "no track"),
        ("/tracks/cam-b:3/thumbnail", 404, "has no thumbnail"),
        ("/tracks/bad/thumbnail", 400, "STREAM:NUMBER"),
    ],
)
def test_track_errors(client: TestClient, path: str, status: int, message: str) -> None:
    response = client.get(path)
    assert response.status_code == status
    assert message in response.json()["error"]


def test_thumbnail_is_jpeg(client: TestClient) -> None:
    response = client.get("/tracks/cam-a:1/thumbnail")
    assert response.status_code == 200
    assert response.headers["content-type"] == "image/jpeg"
    assert response.content == JPEG


def test_streams_list_and_control_is_501_without_pipeline(client: TestClient) -> None:
    body = client.get("/streams").json()
    assert body["streams"][0] == {"stream_id": "cam-a", "tracks": 1, "file_status": None,
                                  "last_committed_frame": None}  # fmt: skip
    assert body["streams"][1]["file_status"] == "done"
    assert "live" not in body
    for response in (client.post("/streams", json={"source": "x"}), client.delete("/streams/a")):
        assert response.status_code == 501
        assert "describeme serve --pipeline" in response.json()["error"]


def test_healthz_reports_redis(client: TestClient, backend) -> None:
    assert client.get("/healthz").json() == {"status": "ok", "redis": True}
    backend.healthy = False
    response = client.get("/healthz")
    assert response.status_code == 503 and response.json()["redis"] is False


def test_store_failure_is_503(client: TestClient, backend) -> None:
    backend.fail_with = redis.exceptions.ConnectionError("connection refused")
    for path in ("/search?q=red+shirt", "/tracks/cam-a:1"):
        response = client.get(path)
        assert response.status_code == 503
        assert "track store is unavailable" in response.json()["error"]


def test_unexpected_errors_are_json_500_and_counted(
    client: TestClient, backend, caplog: pytest.LogCaptureFixture
) -> None:
    backend.fail_with = RuntimeError("bug in the backend")
    response = client.get("/tracks/cam-a:1")
    assert response.status_code == 500
    assert response.json() == {"error": "internal error; the server log has the details"}
    assert "bug in the backend" in caplog.text  # logged with its traceback, not shown
    backend.fail_with = None
    assert 'route="/tracks/{track_ref}",status="500"} 1' in client.get("/metrics").text


def test_metrics_count_requests_by_route_template(client: TestClient) -> None:
    client.get("/tracks/cam-a:1")
    client.get("/tracks/cam-a:99")
    client.get("/search", params={"q": "hello world"})
    text = client.get("/metrics").text
    assert ('describeme_http_requests_total{method="GET",route="/tracks/{track_ref}",'
            'status="200"} 1') in text  # fmt: skip
    assert 'route="/tracks/{track_ref}",status="404"} 1' in text
    assert 'route="/search",status="400"} 1' in text
    assert ('describeme_http_request_duration_seconds_count{method="GET",'
            'route="/tracks/{track_ref}"} 2') in text  # fmt: skip
    assert 'le="+Inf"} 2' in text
    assert "describeme_tracks 3.0" in text
    assert "cam-a:99" not in text  # raw paths never become labels


@pytest.mark.parametrize(
    "path",
    [
        "/search?q=red+shirt",
        "/tracks/cam-a:1",
        "/tracks/cam-a:1/thumbnail",
        "/streams",
        "/metrics",
        "/openapi.json",
    ],  # fmt: skip
)
def test_token_is_required_on_api_routes(make_client: Callable[..., TestClient], path: str) -> None:
    client = make_client(token=TOKEN)
    response = client.get(path)
    assert response.status_code == 401
    assert response.headers["www-authenticate"] == "Bearer"
    assert "Authorization: Bearer" in response.json()["error"]
    wrong = client.get(path, headers={"Authorization": "Bearer wrong-token-0123456789"})
    assert wrong.status_code == 401
    assert client.get(path, headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200


@pytest.mark.parametrize("path", ["/", "/static/app.js", "/static/style.css", "/healthz"])
def test_page_and_health_are_open(make_client: Callable[..., TestClient], path: str) -> None:
    assert make_client(token=TOKEN).get(path).status_code == 200


def test_page_is_served_with_a_strict_content_policy(client: TestClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    assert '<input id="query"' in response.text
    assert "script-src" not in response.headers["content-security-policy"]  # only 'self'
    assert "default-src 'self'" in response.headers["content-security-policy"]
    assert response.headers["x-content-type-options"] == "nosniff"


def test_rate_limit_answers_429_with_retry_after(make_client: Callable[..., TestClient]) -> None:
    client = make_client(rate_per_s=0.01, burst=2)
    assert [client.get("/streams").status_code for _ in range(2)] == [200, 200]
    response = client.get("/streams")
    assert response.status_code == 429
    assert int(response.headers["retry-after"]) >= 1
    assert "rate limit" in response.json()["error"]
    assert client.get("/healthz").status_code == 200  # probes are never throttled


def test_rate_limit_is_per_token(make_client: Callable[..., TestClient]) -> None:
    client = make_client(rate_per_s=0.01, burst=1, token=TOKEN)
    other = "other-token-0123456789"
    assert client.get("/streams", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 200
    assert client.get("/streams", headers={"Authorization": f"Bearer {TOKEN}"}).status_code == 429
    # a wrong token is refused before it can spend anyone's budget
    assert client.get("/streams", headers={"Authorization": f"Bearer {other}"}).status_code == 401


def test_size_limits(make_client: Callable[..., TestClient]) -> None:
    client = make_client(max_url_chars=256, max_body_bytes=100)
    response = client.get("/search", params={"q": "red " * 100})
    assert response.status_code == 414 and "at most 256" in response.json()["error"]
    response = client.post("/streams", content=b"x" * 101)
    assert response.status_code == 413 and "at most 100 bytes" in response.json()["error"]


def test_openapi_lists_the_api(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    for path in ("/search", "/tracks/{track_ref}", "/tracks/{track_ref}/thumbnail", "/streams",
                 "/healthz", "/metrics"):  # fmt: skip
        assert path in paths
    assert "/" not in paths


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"token": "short"}, "16-512"),
        ({"max_url_chars": 10}, "max_url_chars"),
        ({"max_body_bytes": -1}, "max_body_bytes"),
        ({"rate_per_s": 0.0}, "rate limit"),
    ],  # fmt: skip
)
def test_bad_settings_are_refused(
    make_client: Callable[..., TestClient], settings: dict[str, object], message: str
) -> None:
    with pytest.raises(ValueError, match=message):
        make_client(**settings)
