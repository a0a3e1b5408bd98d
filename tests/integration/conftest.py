"""Fixtures for integration tests: real ``redis-server`` and ``prometheus`` servers on free loopback ports."""

from __future__ import annotations

import dataclasses
import json
import shutil
import socket
import subprocess
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import redis
from builders import BTC_SAME_TICK, ETH_LIKE, ETH_LIKE_CFG, random_walk_ticks

from scalper.engine.config import EngineConfig
from scalper.ingest import tickfile
from scalper.ingest.binance import import_binance
from scalper.models.train import train_models

_START_TIMEOUT_S = 10.0
_PROMETHEUS_START_TIMEOUT_S = 30.0


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
                "--port",
                str(self.port),
                "--bind",
                "127.0.0.1",
                "--dir",
                str(self.data_dir),
                "--save",
                "",
                "--appendonly",
                "yes",
                "--appendfsync",
                "always",
                "--logfile",
                str(log),
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


class PrometheusServer:
    """A ``prometheus`` child process scraping given targets every second, and its HTTP query API.

    Parameters
    ----------
    binary : str
        Path of ``prometheus``.
    data_dir : Path
        Holds ``prometheus.yml``, the TSDB (``tsdb/``) and the log.
    targets : list of str
        ``host:port`` of the ``/metrics`` endpoints to scrape, all under job ``scalper``.
    """

    JOB = "scalper"

    def __init__(self, binary: str, data_dir: Path, targets: list[str]) -> None:
        self.binary = binary
        self.data_dir = data_dir
        self.targets = targets
        self.port = _free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen | None = None

    def start(self) -> None:
        """Write the config, start the server and return once ``/-/ready`` answers 200.

        Raises
        ------
        RuntimeError
            If it exits or is not ready within 30 s (the message includes its log).
        """
        config = self.data_dir / "prometheus.yml"
        # JSON strings are valid YAML scalars, so json.dumps quotes the targets safely.
        config.write_text(
            "global:\n"
            "  scrape_interval: 1s\n"
            "  scrape_timeout: 1s\n"
            "  evaluation_interval: 1s\n"
            "scrape_configs:\n"
            f"  - job_name: {self.JOB}\n"
            "    static_configs:\n"
            f"      - targets: {json.dumps(self.targets)}\n"
        )
        log = self.data_dir / "prometheus.log"
        with log.open("wb") as log_file:
            self.proc = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={config}",
                    f"--storage.tsdb.path={self.data_dir / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                ],
                stdout=log_file,
                stderr=subprocess.STDOUT,
            )
        deadline = time.monotonic() + _PROMETHEUS_START_TIMEOUT_S
        while time.monotonic() < deadline and self.proc.poll() is None:
            try:
                with urllib.request.urlopen(f"{self.base_url}/-/ready", timeout=1.0) as resp:
                    if resp.status == 200:
                        return
            except OSError:
                # Connection refused before it listens; 503 "not ready" while the TSDB opens.
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"prometheus on port {self.port} did not become ready:\n{log.read_text()}")

    def query(self, promql: str) -> list[dict]:
        """Run an instant query and return ``data.result`` of the HTTP API's answer.

        Each entry is ``{"metric": {label: value}, "value": [ts_s, "value"]}`` for a vector
        (``"values"`` for a range selector).

        Raises
        ------
        RuntimeError
            If the API answers with a status other than ``success``.
        """
        url = f"{self.base_url}/api/v1/query?" + urllib.parse.urlencode({"query": promql})
        with urllib.request.urlopen(url, timeout=5.0) as resp:
            body = json.load(resp)
        if body["status"] != "success":
            raise RuntimeError(f"query {promql!r} failed: {body}")
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        """Return the value of a query that selects at most one series; None when it selects none.

        Raises
        ------
        AssertionError
            If more than one series matches.
        """
        result = self.query(promql)
        assert len(result) <= 1, f"{promql!r} matched {len(result)} series: {result}"
        return float(result[0]["value"][1]) if result else None

    def stop(self) -> None:
        """Terminate the server (SIGTERM, SIGKILL after 10 s) and wait for it to exit."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10.0)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.proc = None


@pytest.fixture
def prometheus_server(tmp_path_factory):
    """Yield a factory ``start(targets: list[str]) -> PrometheusServer``; stop every server afterwards.

    Each call starts a fresh ``prometheus`` (empty TSDB, loopback, free port) scraping ``targets``
    (``host:port``) every second under job ``scalper``; its ``base_url``, ``query`` and ``value``
    reach the HTTP API. Skips the test, naming the binary, when ``prometheus`` is not on PATH.
    """
    binary = shutil.which("prometheus")
    if binary is None:
        pytest.skip("prometheus not found on PATH (install it, e.g. apt-get install prometheus)")
    servers: list[PrometheusServer] = []

    def start(targets: list[str]) -> PrometheusServer:
        server = PrometheusServer(binary, tmp_path_factory.mktemp("prometheus"), targets)
        servers.append(server)
        server.start()
        return server

    try:
        yield start
    finally:
        for server in servers:
            server.stop()


# Model fixtures shared by several test modules live here, not imported from one test module into
# another (an imported fixture is an unused import that each test parameter then redefines).
@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """A folder with ``eth.parquet`` (a random walk labelled BINANCE_USDM ETHUSDT, tick 0.01), the
    same walk as ``btc.parquet`` (BTCUSDT, same tick) and ``models/`` trained on the ETH file."""
    root = tmp_path_factory.mktemp("eth_like")
    walk = random_walk_ticks(2, 20_000)
    tickfile.write(root / "eth.parquet", dataclasses.replace(walk, instrument=ETH_LIKE))
    tickfile.write(root / "btc.parquet", dataclasses.replace(walk, instrument=BTC_SAME_TICK))
    train_models(root / "eth.parquet", root / "models", ETH_LIKE_CFG.features, ETH_LIKE_CFG.labels, ETH_LIKE_CFG.train)
    return root


@pytest.fixture(scope="module")
def eth_models(data_dir, tmp_path_factory) -> Path:
    """``models/`` trained with the default config on the two days of the real ETHUSDT USD-M recording."""
    root = tmp_path_factory.mktemp("eth_models")
    usdm = data_dir / "hftbacktest" / "binance_usdm"
    res = import_binance([usdm / "ethusdt_20240718.gz", usdm / "ethusdt_20240719.gz"])
    tickfile.write(root / "eth.parquet", res.data)
    cfg = EngineConfig()
    train_models(root / "eth.parquet", root / "models", cfg.features, cfg.labels, cfg.train)
    return root / "models"
