"""Fixtures for integration tests: a real ``redis-server`` on a free loopback port."""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from pathlib import Path

import pytest
import redis

_START_TIMEOUT_S = 10.0


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class RedisProcess:
    """A ``redis-server`` child process that a test can crash and restart on the same port and data.

    Persistence is an append-only file fsync'd on every write (``appendfsync always``), no RDB
    snapshots, so anything Redis acknowledged survives :meth:`kill`.

    Parameters
    ----------
    binary : str
        Path of ``redis-server``.
    data_dir : Path
        Working directory for the AOF and the log.
    """

    def __init__(self, binary: str, data_dir: Path) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.port = _free_port()
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Start the server and return once it answers PING.

        Raises
        ------
        RuntimeError
            If it exits or does not answer within 10 s (the message includes its log).
        """
        log = self.data_dir / "redis.log"
        self.proc = subprocess.Popen(
            [
                self.binary,
                "--port", str(self.port),
                "--bind", "127.0.0.1",
                "--dir", str(self.data_dir),
                "--save", "",
                "--appendonly", "yes",
                "--appendfsync", "always",
                "--logfile", str(log),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )
        client = redis.Redis(host="127.0.0.1", port=self.port, socket_timeout=0.5)
        deadline = time.monotonic() + _START_TIMEOUT_S
        try:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    if client.ping():
                        return
                except redis.exceptions.RedisError:
                    # Connection refused, or "LOADING" while it replays the AOF after a restart.
                    time.sleep(0.02)
        finally:
            client.close()
        self.kill()
        text = log.read_text() if log.exists() else "(no log)"
        raise RuntimeError(f"redis-server on port {self.port} did not start:\n{text}")

    def kill(self) -> None:
        """SIGKILL the server (a crash: no shutdown, no save) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait()
        self.proc = None


@pytest.fixture
def redis_process(tmp_path_factory) -> RedisProcess:
    """Yield a started :class:`RedisProcess`; kill it afterwards.

    Skips the test, naming the binary, when ``redis-server`` is not on PATH.
    """
    binary = shutil.which("redis-server")
    if binary is None:
        pytest.skip("redis-server not found on PATH (install it, e.g. apt-get install redis-server)")
    server = RedisProcess(binary, tmp_path_factory.mktemp("redis"))
    server.start()
    try:
        yield server
    finally:
        server.kill()


@pytest.fixture
def redis_server(redis_process: RedisProcess) -> str:
    """Return the URL (``redis://127.0.0.1:<port>/0``) of a fresh, empty redis-server for this test."""
    return redis_process.url
