"""Run the API in a background thread (for tests, notebooks and embedding in other tools).

``with BackgroundServer(app) as server: httpx.get(server.url + "/healthz")`` serves on a free
loopback port and stops the server (and joins its thread) on exit.
"""

from __future__ import annotations

import threading
import time
from types import TracebackType
from typing import Any

from describeme.errors import ServiceError
from describeme.operators.redis_probes import free_port

__all__ = ["BackgroundServer"]


class BackgroundServer:
    """A uvicorn server on ``host``:``port`` in a daemon thread.

    Args:
        app: the ASGI app (:func:`describeme.service.app.build_app`).
        host: bind address (loopback by default; the bind rule is the caller's job).
        port: TCP port; None picks a free one.
        start_timeout_s: how long :meth:`start` waits for the socket to listen.
    """

    def __init__(self, app: Any, host: str = "127.0.0.1", port: int | None = None,
                 start_timeout_s: float = 10.0) -> None:  # fmt: skip
        import uvicorn

        self.host = host
        self.port = port if port is not None else free_port(host)
        config = uvicorn.Config(app, host=host, port=self.port, log_level="warning",
                                server_header=False, lifespan="off")  # fmt: skip
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, name="describeme-api",
                                        daemon=True)  # fmt: skip
        self.start_timeout_s = start_timeout_s

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    def start(self) -> BackgroundServer:
        """Starts serving; returns once the server accepts connections."""
        self._thread.start()
        deadline = time.monotonic() + self.start_timeout_s
        while not self._server.started:
            if not self._thread.is_alive():
                raise ServiceError(f"API server on {self.url} exited at start (port taken?)")
            if time.monotonic() > deadline:
                self.stop()
                raise ServiceError(
                    f"API server on {self.url} not up after {self.start_timeout_s} s"
                )
            time.sleep(0.02)
        return self

    def stop(self, timeout_s: float = 10.0) -> None:
        """Asks the server to exit and waits for its thread."""
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout_s)

    def __enter__(self) -> BackgroundServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:  # fmt: skip
        self.stop()
