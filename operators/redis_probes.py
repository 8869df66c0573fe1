"""Checks an embedded Redis makes of its host: loopback addresses, free ports, live processes.

Also the fail-fast redis-py retry policy used when probing a server. The embedded server's
lifecycle, which relies on these checks, lives in the sibling
:mod:`describeme.operators.redis_server`; the HTTP service uses :func:`is_loopback` and
:func:`free_port` too.
"""

from __future__ import annotations

import contextlib
import ipaddress
import os
import socket
from pathlib import Path
from typing import Any


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port free on ``host`` right now (another process may still take it)."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def port_is_free(host: str, port: int) -> bool:
    """True when ``port`` can be bound on ``host`` right now."""
    with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((host, port))
        except OSError:
            return False
    return True


def pid_alive(pid: int) -> bool:
    """True when ``pid`` runs and is not a zombie (a killed child not yet reaped)."""
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    stat = Path(f"/proc/{pid}/stat")
    with contextlib.suppress(OSError, IndexError):
        # The state letter follows the parenthesised command name.
        if stat.read_text().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
            return False
    return True


def is_redis_process(pid: int) -> bool:
    """True when ``pid``'s command line names redis-server (True where /proc is missing)."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
    except FileNotFoundError:
        return not Path("/proc/self").exists()
    except OSError:
        return True
    return b"redis-server" in cmdline


def no_retry() -> Any:
    """A redis-py ``Retry`` that fails at once (the default retries with backoff for seconds,
    which would hide a dead server behind long waits)."""
    from redis.backoff import NoBackoff
    from redis.retry import Retry

    return Retry(NoBackoff(), 0)
