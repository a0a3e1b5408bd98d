"""``scalper run`` start-up failures as a process: one ``error: ...`` line naming what and where, exit 2,
and the metrics port is checked before the journal is touched."""

from __future__ import annotations

import logging
import socket
from pathlib import Path

import pytest
from test_model_files import _closed_port, _daemon_config, _one_error_line, scalper_run

from scalper.engine.config import load_config
from scalper.engine.daemon import Daemon, StartupError


def _with(cfg: Path, **daemon_keys) -> Path:
    """Rewrite a config from :func:`_daemon_config` with these ``[daemon]`` keys set (TOML values)."""
    kept = [ln for ln in cfg.read_text().splitlines() if ln.split("=")[0].strip() not in daemon_keys]
    at = kept.index("[daemon]") + 1
    extra = [f'{k} = "{v}"' if isinstance(v, str) else f"{k} = {str(v).lower()}" for k, v in daemon_keys.items()]
    cfg.write_text("\n".join(kept[:at] + extra + kept[at:]) + "\n")
    return cfg


def test_metrics_port_in_use_is_one_line_before_the_journal_is_read(trained, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        cfg = _with(_daemon_config(tmp_path, trained / "models"), metrics_port=port)
        rc, out = scalper_run(cfg)
    assert rc == 2, out
    line = _one_error_line(out)
    assert f"metrics endpoint 127.0.0.1:{port}" in line and "daemon.metrics_port" in line
    assert "Address already in use" in line
    assert not (tmp_path / "journal.jsonl").exists(), "the journal was opened before the port was checked"


def test_redis_unreachable_is_one_line_naming_the_url(trained, tmp_path):
    port = _closed_port()
    cfg = _with(
        _daemon_config(tmp_path, trained / "models"),
        journal="redis",
        redis_url=f"redis://127.0.0.1:{port}/0",
        journal_fallback_path=str(tmp_path / "fallback.jsonl"),
    )
    rc, out = scalper_run(cfg)
    assert rc == 2, out
    line = _one_error_line(out)
    assert f"Redis at redis://127.0.0.1:{port}/0" in line and "daemon.redis_url" in line
    assert "Connection refused" in line


def test_a_public_metrics_endpoint_logs_a_warning(trained, tmp_path, caplog):
    cfg = load_config(_with(_daemon_config(tmp_path, trained / "models"), metrics_host="0.0.0.0", metrics_public=True))
    daemon = Daemon(cfg)
    with caplog.at_level(logging.WARNING, logger="scalper.daemon"):
        server, port = daemon._serve_metrics()
    server.shutdown()
    server.server_close()
    assert port > 0
    assert [r.levelno for r in caplog.records] == [logging.WARNING]
    assert "0.0.0.0" in caplog.records[0].getMessage() and "other hosts" in caplog.records[0].getMessage()


def test_serving_metrics_on_a_taken_port_raises_startup_error(trained, tmp_path):
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        daemon = Daemon(load_config(_with(_daemon_config(tmp_path, trained / "models"), metrics_port=port)))
        with pytest.raises(StartupError, match=rf"metrics endpoint 127\.0\.0\.1:{port}"):
            daemon._serve_metrics()
