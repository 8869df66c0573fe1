"""Bind rule, bearer tokens, track ids and the token-bucket rate limiter (no HTTP)."""

from __future__ import annotations

import pytest

from describeme.errors import ConfigError
from describeme.service.auth import check_bind, resolve_token, token_matches
from describeme.service.backend import format_track_ref, parse_track_ref
from describeme.service.ratelimit import RateLimiter

TOKEN = "s3cret-token-0123456789"


@pytest.mark.parametrize(
    ("host", "token", "ok"),
    [
        ("127.0.0.1", None, True),
        ("localhost", None, True),
        ("::1", None, True),
        ("127.0.0.2", None, True),
        ("0.0.0.0", None, False),
        ("192.168.1.5", None, False),
        ("::", None, False),
        ("example.com", None, False),
        ("0.0.0.0", TOKEN, True),
        ("192.168.1.5", TOKEN, True),
    ],
)
def test_non_loopback_bind_needs_a_token(host: str, token: str | None, ok: bool) -> None:
    if ok:
        check_bind(host, token)
    else:
        with pytest.raises(ConfigError, match="without a token"):
            check_bind(host, token)


def test_empty_host_is_refused() -> None:
    with pytest.raises(ConfigError, match="--host must not be empty"):
        check_bind(" ", TOKEN)


@pytest.mark.parametrize(
    ("header", "ok"),
    [
        (f"Bearer {TOKEN}", True),
        (f"bearer {TOKEN}", True),
        (f"Bearer {TOKEN} ", True),
        (None, False),
        ("", False),
        (TOKEN, False),
        (f"Basic {TOKEN}", False),
        (f"Bearer {TOKEN}x", False),
        (f"Bearer {TOKEN[:-1]}", False),
        ("Bearer ", False),
    ],
)
def test_token_matches(header: str | None, ok: bool) -> None:
    assert token_matches(header, TOKEN) is ok


def test_token_from_flag_then_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("DESCRIBEME_API_TOKEN", raising=False)
    assert resolve_token(None) is None
    monkeypatch.setenv("DESCRIBEME_API_TOKEN", TOKEN)
    assert resolve_token(None) == TOKEN
    assert resolve_token("flag-token-0123456789") == "flag-token-0123456789"


@pytest.mark.parametrize(
    ("token", "message"),
    [
        ("short", "16-512 characters"),
        ("x" * 600, "16-512 characters"),
        ("has space in the token", "printable ASCII"),
    ],  # fmt: skip
)
def test_weak_tokens_are_refused(token: str, message: str) -> None:
    with pytest.raises(ConfigError, match=message):
        resolve_token(token)


@pytest.mark.parametrize(
    ("stream_id", "track_id", "ref"),
    [
        ("cam-a", 3, "cam-a:3"),
        ("rtsp://h:554/s 1", 12, "rtsp%3A%2F%2Fh%3A554%2Fs%201:12"),
        ("cam:with:colons", 0, "cam%3Awith%3Acolons:0"),
        ("caméra", 7, "cam%C3%A9ra:7"),
    ],
)
def test_track_refs_round_trip(stream_id: str, track_id: int, ref: str) -> None:
    assert format_track_ref(stream_id, track_id) == ref
    assert parse_track_ref(ref) == (stream_id, track_id)


@pytest.mark.parametrize(
    ("ref", "message"),
    [
        ("cam-a", "STREAM:NUMBER"),
        ("cam-a:", "STREAM:NUMBER"),
        (":3", "STREAM:NUMBER"),
        ("cam-a:-3", "STREAM:NUMBER"),
        ("cam-a:3x", "STREAM:NUMBER"),
        ("cam a:3", "STREAM:NUMBER"),
        ("cam-a:3:4", "STREAM:NUMBER"),
        ('x"}|@a:{*}:1', "STREAM:NUMBER"),
        ("cam-a:99999999999999999", "STREAM:NUMBER"),
        ("cam-a:9999999999999999", "out of range"),
        ("%FF%FE:1", "not UTF-8"),
        ("a" * 600 + ":1", "at most 512"),
    ],
)
def test_bad_track_refs_are_refused(ref: str, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        parse_track_ref(ref)


class FakeClock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_rate_limiter_allows_burst_then_refills() -> None:
    clock = FakeClock()
    limiter = RateLimiter(2.0, 3, clock=clock)
    assert [limiter.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert limiter.acquire("a") == pytest.approx(0.5)  # one token every 0.5 s
    assert limiter.acquire("b") == 0.0  # clients have separate buckets
    clock.now += 0.5
    assert limiter.acquire("a") == 0.0
    assert limiter.acquire("a") > 0.0
    clock.now += 100.0  # refill stops at the burst size
    assert [limiter.acquire("a") for _ in range(4)][-1] > 0.0


def test_rate_limiter_forgets_the_idlest_clients_first() -> None:
    clock = FakeClock()
    limiter = RateLimiter(1.0, 1, max_clients=2, clock=clock)
    for client in ("a", "b", "c"):
        limiter.acquire(client)
    assert len(limiter) == 2
    assert limiter.acquire("a") == 0.0  # forgotten, so a full bucket again
    assert limiter.acquire("c") > 0.0  # remembered and empty


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"rate_per_s": 0, "burst": 1}, "rate limit"),
        ({"rate_per_s": float("nan"), "burst": 1}, "rate limit"),
        ({"rate_per_s": 1.0, "burst": 0}, "burst"),
        ({"rate_per_s": 1.0, "burst": True}, "burst"),
        ({"rate_per_s": 1.0, "burst": 1, "max_clients": 0}, "max_clients"),
    ],
)
def test_rate_limiter_rejects_bad_settings(kwargs: dict[str, object], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        RateLimiter(**kwargs)  # type: ignore[arg-type]
