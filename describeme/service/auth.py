"""Bearer-token authentication and the bind-address rule of ``describeme serve``.

The server binds 127.0.0.1 by default. Bound to any other address it refuses to start
without a token, and with a token every API route needs ``Authorization: Bearer TOKEN``
(compared in constant time). ``/healthz`` and the static page stay open: they show no data,
and load balancers probe health without credentials.
"""

from __future__ import annotations

import hmac
import os

from describeme.errors import ConfigError
from describeme.operators.redis_probes import is_loopback

__all__ = ["MIN_TOKEN_CHARS", "TOKEN_ENV", "check_bind", "check_token_text", "resolve_token",
           "token_matches"]  # fmt: skip

TOKEN_ENV = "DESCRIBEME_API_TOKEN"
MIN_TOKEN_CHARS = 16  # a guessable token on an open port is no protection
MAX_TOKEN_CHARS = 512


def check_token_text(token: str) -> str:
    """Returns ``token`` if usable as a bearer token; raises ConfigError saying why not."""
    if len(token) < MIN_TOKEN_CHARS or len(token) > MAX_TOKEN_CHARS:
        raise ConfigError(
            f"API token must be {MIN_TOKEN_CHARS}-{MAX_TOKEN_CHARS} characters (got "
            f"{len(token)}); generate one with: python -c 'import secrets; "
            "print(secrets.token_urlsafe(32))'"
        )
    if not all(33 <= ord(c) < 127 for c in token):
        raise ConfigError("API token must be printable ASCII without spaces")
    return token


def resolve_token(cli_token: str | None) -> str | None:
    """The token from ``--token`` or else ``$DESCRIBEME_API_TOKEN`` (None when neither)."""
    token = cli_token if cli_token is not None else os.environ.get(TOKEN_ENV)
    if token is None or token == "":
        return None
    return check_token_text(token)


def check_bind(host: str, token: str | None) -> None:
    """Refuses a non-loopback bind address without a token.

    Raises:
        ConfigError: ``host`` is empty, or is not loopback and ``token`` is None.
    """
    if not host or not host.strip():
        raise ConfigError("--host must not be empty (default 127.0.0.1)")
    if not is_loopback(host) and token is None:
        raise ConfigError(
            f"refusing to serve on {host} without a token: anyone who can reach it could "
            f"read every track; pass --token or set {TOKEN_ENV} (clients then send "
            "'Authorization: Bearer TOKEN'), or bind 127.0.0.1"
        )


def token_matches(header: str | None, token: str) -> bool:
    """Whether an ``Authorization`` header carries ``Bearer <token>`` (constant-time)."""
    if not header:
        return False
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(value.strip().encode(), token.encode())
