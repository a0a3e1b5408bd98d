"""Model directories that must be refused with one line naming the file: a corrupt .onnx, a card whose
.onnx is gone, a model trained on another instrument. At start-up (``scalper run``, ``scalper backtest``)
that is ``error: ...`` and exit 2; on SIGHUP the daemon keeps its running models and counts the refusal."""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
from builders import BTC_SAME_TICK, ETH_LIKE, ETH_LIKE_CFG
from typer.testing import CliRunner

from scalper.engine.cli import app
from scalper.engine.config import load_config
from scalper.engine.daemon import Daemon
from scalper.engine.metrics import snapshot
from scalper.models.card import ModelCardMismatch
from scalper.models.inference import load_model_dir

CFG = ETH_LIKE_CFG
REFUSED = "scalper_model_reloads_refused_total"


def _copy(trained: Path, tmp_path: Path) -> Path:
    live = tmp_path / "models"
    shutil.copytree(trained / "models", live)
    return live


def corrupt(models: Path) -> str:
    onnx = models / "h10s.onnx"
    onnx.write_bytes(onnx.read_bytes()[:200])  # a copy cut short: not a whole protobuf
    return rf"{onnx}: not a valid ONNX model"


def delete_onnx(models: Path) -> str:
    (models / "h10s.onnx").unlink()
    return rf"{models / 'h10s.card.json'}: its model h10s\.onnx is missing"


def other_instrument(models: Path) -> str:
    card_path = models / "h10s.card.json"
    card = json.loads(card_path.read_text())
    card["instrument"]["symbol"] = "BTCUSDT"
    card_path.write_text(json.dumps(card))
    return rf"{models / 'h10s.onnx'}: trained on BINANCE_USDM BTCUSDT, this engine trades BINANCE_USDM ETHUSDT"


def no_tick_size(models: Path) -> str:
    card_path = models / "h10s.card.json"
    card = json.loads(card_path.read_text())
    del card["instrument"]["tick_size"]
    card_path.write_text(json.dumps(card))
    return rf"{models / 'h10s.onnx'}: the card gives no tick size \(None\), this engine trades 0\.01"


BREAKS = [corrupt, delete_onnx, other_instrument, no_tick_size]


def _daemon_config(tmp_path: Path, models: Path, symbol: str = "ETHUSDT") -> Path:
    cfg = tmp_path / "daemon.toml"
    cfg.write_text(
        f'[labels]\ndead_zone_ticks = 0.0\n\n[daemon]\nmarket = "usdm"\nsymbol = "{symbol}"\ntick_size = 0.01\n'
        f'lot_size = 0.001\nmodel_dir = "{models}"\nmetrics_port = 0\njournal = "file"\n'
        f'journal_path = "{tmp_path / "journal.jsonl"}"\n'
    )
    return cfg


def _one_error_line(output: str) -> str:
    lines = [ln for ln in output.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: "), output
    assert "Traceback" not in output
    return lines[0]


@pytest.mark.parametrize("break_models", [corrupt, delete_onnx])
def test_loading_refuses_a_broken_directory_naming_the_file(trained, tmp_path, break_models):
    live = _copy(trained, tmp_path)
    reason = break_models(live)
    with pytest.raises(ModelCardMismatch, match=reason):
        load_model_dir(live)


def test_models_of_another_instrument_with_the_same_tick_are_refused(trained):
    models = load_model_dir(trained / "models")
    models.check_compatible(CFG.features.grid_ms, ETH_LIKE)
    with pytest.raises(
        ModelCardMismatch, match=r"h5s\.onnx: trained on BINANCE_USDM ETHUSDT, this engine trades BINANCE_USDM BTCUSDT"
    ):
        models.check_compatible(CFG.features.grid_ms, BTC_SAME_TICK)


@pytest.mark.parametrize("break_models", BREAKS)
def test_backtest_with_a_broken_model_directory_exits_2_with_one_line(trained, tmp_path, break_models):
    live = _copy(trained, tmp_path)
    reason = break_models(live)
    res = CliRunner().invoke(
        app,
        ["backtest", "-t", str(trained / "eth.parquet"), "-m", str(live), "-o", str(tmp_path / "r")],
        env={"COLUMNS": "400"},
    )
    assert res.exit_code == 2, res.output
    assert re.search(reason, _one_error_line(res.output))
    assert not (tmp_path / "r").exists()


def test_backtest_of_another_instruments_file_exits_2(trained, tmp_path):
    res = CliRunner().invoke(
        app,
        ["backtest", "-t", str(trained / "btc.parquet"), "-m", str(trained / "models"), "-o", str(tmp_path / "r")],
        env={"COLUMNS": "400"},
    )
    assert res.exit_code == 2, res.output
    line = _one_error_line(res.output)
    assert "trained on BINANCE_USDM ETHUSDT, this engine trades BINANCE_USDM BTCUSDT" in line


def scalper_run(config: Path, timeout_s: float = 60.0) -> tuple[int, str]:
    """Run ``scalper run -c config`` as a process against a closed loopback port; return (exit code, output).

    A daemon that starts instead of refusing is stopped after ``timeout_s`` and fails the test."""
    dead = f"127.0.0.1:{_closed_port()}"
    args = [
        sys.executable,
        "-m",
        "scalper.engine.cli",
        "run",
        "-c",
        str(config),
        "--feed-url",
        f"ws://{dead}",
        "--rest-url",
        f"http://{dead}",
    ]
    proc = subprocess.Popen(
        args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env={**os.environ, "COLUMNS": "400"}
    )
    try:
        out, _ = proc.communicate(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        pytest.fail(f"scalper run did not refuse within {timeout_s} s:\n{out.decode(errors='replace')}")
    return proc.returncode, out.decode(errors="replace")


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("break_models", BREAKS)
def test_run_with_a_broken_model_directory_exits_2_with_one_line(trained, tmp_path, break_models):
    live = _copy(trained, tmp_path)
    reason = break_models(live)
    rc, out = scalper_run(_daemon_config(tmp_path, live))
    assert rc == 2, out
    assert re.search(reason, _one_error_line(out))
    assert not (tmp_path / "journal.jsonl").exists()  # refused before the journal was opened


def test_run_refuses_models_of_another_symbol(trained, tmp_path):
    rc, out = scalper_run(_daemon_config(tmp_path, trained / "models", symbol="BTCUSDT"))
    assert rc == 2, out
    assert "trained on BINANCE_USDM ETHUSDT, this engine trades BINANCE_USDM BTCUSDT" in _one_error_line(out)


def test_sighup_reload_keeps_the_running_models_logs_one_line_and_counts_each_refusal(trained, tmp_path, caplog):
    live = _copy(trained, tmp_path)
    daemon = Daemon(load_config(_daemon_config(tmp_path, live)))
    daemon.build_core(1)
    running = daemon.models
    assert [p.card.horizon_s for p in running.predictors] == [5.0, 10.0, 30.0]
    for n, break_models in enumerate(BREAKS, start=1):
        shutil.rmtree(live)
        shutil.copytree(trained / "models", live)
        reason = break_models(live)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="scalper.daemon"):
            assert daemon.reload_models() is False
        assert daemon.models is running and daemon.core.models is running
        assert snapshot(daemon.metrics)[REFUSED] == n
        assert [(r.levelno, r.name) for r in caplog.records] == [(logging.ERROR, "scalper.daemon")]
        assert re.search(reason, caplog.records[0].getMessage()), caplog.records[0].getMessage()
    shutil.rmtree(live)
    shutil.copytree(trained / "models", live)
    assert daemon.reload_models() is True
    assert daemon.models is not running and [p.card.horizon_s for p in daemon.models.predictors] == [5.0, 10.0, 30.0]
    assert snapshot(daemon.metrics)[REFUSED] == len(BREAKS)


def _wait_for(log: Path, proc: subprocess.Popen, pattern: str, count: int = 1, timeout_s: float = 60.0) -> list[str]:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        found = re.findall(pattern, log.read_text(errors="replace"))
        if len(found) >= count:
            return found
        assert proc.poll() is None, f"daemon exited:\n{log.read_text(errors='replace')}"
        time.sleep(0.1)
    raise AssertionError(f"{count} x {pattern!r} not seen in {timeout_s} s:\n{log.read_text(errors='replace')}")


def test_sighup_to_a_running_daemon_refuses_each_broken_directory_and_it_keeps_running(trained, tmp_path):
    live = _copy(trained, tmp_path)
    dead = f"127.0.0.1:{_closed_port()}"  # no feed: the reload does not need one
    log = tmp_path / "daemon.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "scalper.engine.cli",
                "run",
                "-c",
                str(_daemon_config(tmp_path, live)),
                "--feed-url",
                f"ws://{dead}",
                "--rest-url",
                f"http://{dead}",
            ],
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        port = int(_wait_for(log, proc, r"metrics on http://127\.0\.0\.1:(\d+)/metrics")[0])
        for n, break_models in enumerate(BREAKS, start=1):
            shutil.rmtree(live)
            shutil.copytree(trained / "models", live)
            reason = break_models(live)
            proc.send_signal(signal.SIGHUP)
            refusals = _wait_for(
                log, proc, r"ERROR scalper\.daemon: model reload refused, keeping the running models: (.*)", n
            )
            assert re.search(reason, refusals[-1])
            body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
            assert re.search(rf"^{REFUSED} {n}\.0$", body, re.M)
        shutil.rmtree(live)
        shutil.copytree(trained / "models", live)
        proc.send_signal(signal.SIGHUP)
        _wait_for(log, proc, re.escape("models reloaded: horizons [5.0, 10.0, 30.0]"))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
        rc = proc.wait(timeout=30)
    text = log.read_text(errors="replace")
    assert rc == 0, text
    assert "Traceback" not in text and "Exception in callback" not in text
    assert "models reloaded: horizons [5.0, 30.0]" not in text
