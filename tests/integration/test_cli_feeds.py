"""The feed-side commands on real recordings: import binance and replay-server as a real process."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request

import orjson
import pytest
from typer.testing import CliRunner
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from scalper.engine.cli import app
from scalper.ingest import tickfile

pytestmark = pytest.mark.realdata

ETH = "hftbacktest/binance_usdm/ethusdt_20240718.gz"


def test_import_binance_writes_a_valid_tick_file(data_dir, tmp_path):
    out = tmp_path / "eth.parquet"
    res = CliRunner().invoke(app, ["data", "import", "binance", str(data_dir / ETH), "-o", str(out)])
    assert res.exit_code == 0, res.output
    assert "mismatches 0" in res.output
    data = tickfile.read(out)
    assert data.instrument.venue == "BINANCE_USDM" and data.instrument.tick_size == 0.01
    assert int((data.kind == tickfile.KIND_TRADE).sum()) == 1_640


def test_import_of_a_continuation_file_alone_is_refused(data_dir, tmp_path):
    res = CliRunner().invoke(
        app,
        [
            "data",
            "import",
            "binance",
            str(data_dir / "hftbacktest/binance_usdm/ethusdt_20240719.gz"),
            "-o",
            str(tmp_path / "x.parquet"),
        ],
    )
    assert res.exit_code == 2
    assert "ethusdt_20240719.gz" in res.output


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_replay_server_process_streams_serves_rest_and_drops_on_sigusr1(data_dir):
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "scalper.engine.cli",
            "replay-server",
            str(data_dir / ETH),
            "--port",
            str(port),
            "--speed",
            "0",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        env={**os.environ, "COLUMNS": "200"},
    )
    try:
        for _ in range(200):
            try:
                body = urllib.request.urlopen(
                    f"http://127.0.0.1:{port}/fapi/v1/depth?symbol=ETHUSDT&limit=5", timeout=1
                ).read()
                break
            except OSError:
                time.sleep(0.1)
        snap = orjson.loads(body)
        assert len(snap["bids"]) == 5 and float(snap["bids"][0][0]) < float(snap["asks"][0][0])

        async def client():
            async with connect(f"ws://127.0.0.1:{port}/stream?streams=ethusdt@depth@0ms") as ws:
                first = orjson.loads(await ws.recv())
                os.kill(proc.pid, signal.SIGUSR1)
                with pytest.raises(ConnectionClosed):
                    while True:
                        await asyncio.wait_for(ws.recv(), 5)
                return first

        first = asyncio.run(client())
        assert first["stream"] == "ethusdt@depth@0ms" and first["data"]["e"] == "depthUpdate"
    finally:
        proc.send_signal(signal.SIGTERM)
        out, _ = proc.communicate(timeout=10)
    assert proc.returncode == 0, out.decode()
    assert b"replayed" in out
