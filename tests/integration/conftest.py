"""Shared integration fixtures: one embedded Redis (RediSearch + JSON) for the whole session.

Use ``redis_server`` (an :class:`EmbeddedRedis`: ``.url``, ``.client()``), ``redis_url``,
``redis_client`` (bytes responses) and ``redis_prefix`` (a fresh key prefix per test, so tests
sharing the server never see each other's keys; pass it as ``TrackStore(prefix=...)``).
The server runs on 127.0.0.1 with a generated password in a temporary folder; tests that need
their own server (restarts, kill -9) start an ``EmbeddedRedis`` on their own ``tmp_path``.
Without the server binaries (non-Linux) these fixtures skip the test with the reason.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from describeme.errors import ServiceError
from describeme.operators.redis_files import find_redis_binaries
from describeme.operators.redis_server import EmbeddedRedis


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """One embedded Redis for all integration tests (stopped at session end)."""
    try:
        find_redis_binaries()
    except ServiceError as exc:
        pytest.skip(f"embedded Redis unavailable: {exc}")
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis-session"))
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def redis_url(redis_server: EmbeddedRedis) -> str:
    """``redis://:password@127.0.0.1:port/0`` of the session server."""
    return redis_server.url


@pytest.fixture
def redis_client(redis_server: EmbeddedRedis) -> Iterator[Any]:
    """A ``redis.Redis`` on the session server with ``decode_responses=False``."""
    client = redis_server.client()
    try:
        yield client
    finally:
        client.close()


@pytest.fixture
def redis_prefix() -> str:
    """A key prefix unique to this test, e.g. ``t3f9a1c2e:``."""
    return f"t{uuid.uuid4().hex[:8]}:"
