"""scalper bench's peer run: hftbacktest's events/s read from its own interpreter, ratios in the table."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from scalper.benchmarks.harness import PEER_SCRIPT, PeerError, StageResult, peer_throughput, with_peer_ratios


def _script(tmp_path: Path, body: str) -> Path:
    path = tmp_path / "peer.py"
    path.write_text(body)
    return path


def test_the_peer_rate_is_read_from_its_output(tmp_path):
    script = _script(
        tmp_path,
        "import sys\nassert len(sys.argv) == 3\n"
        'print("hftbacktest no-op replay: 380,522 events in 0.034 s = 11,174,059 events/s (1919 steps)")\n',
    )
    r = peer_throughput(tmp_path, Path(sys.executable), script)
    assert r.ops_per_s == 11_174_059 and r.stage.startswith("hftbacktest")


def test_a_failed_peer_run_names_the_command_and_its_last_words(tmp_path):
    script = _script(tmp_path, 'raise SystemExit("hftbacktest is not installed here")\n')
    with pytest.raises(PeerError, match="peer.py.*exited 1.*hftbacktest is not installed here"):
        peer_throughput(tmp_path, Path(sys.executable), script)
    with pytest.raises(PeerError, match="not found"):
        peer_throughput(tmp_path, Path(sys.executable), tmp_path / "missing.py")
    assert PEER_SCRIPT.is_file()  # the real script ships in benchmarks/


def test_ratios_go_on_the_ethusdt_throughput_rows_only():
    rows = [
        StageResult("full backtest (ETHUSDT)", 1, 0, 0, 0, 0, 16_000_000.0, "events/s"),
        StageResult("full backtest (GOOG L10)", 1, 0, 0, 0, 0, 700_000.0, "events/s"),
        StageResult("tick-to-decision (raw depthUpdate -> risk-checked intent)", 10, 1, 2, 3, 4, 5.0, "daemon"),
    ]
    peer = StageResult("hftbacktest no-op replay (peer, ETHUSDT)", 0, 0, 0, 0, 0, 10_000_000.0, "events/s")
    out = with_peer_ratios(rows, peer)
    assert [r.note for r in out] == ["events/s, 1.60x hftbacktest", "events/s", "daemon", "events/s"]
    assert out[-1] is peer


def test_bench_cli_passes_the_peer_interpreter_and_reports_its_failure(tmp_path, monkeypatch):
    from typer.testing import CliRunner

    from scalper.benchmarks import harness as bench
    from scalper.engine.cli import app

    seen = {}

    def run_suite(data_dir, quick, progress=None, peer_python=None):
        seen["peer"] = peer_python
        raise PeerError("peer.py exited 1 without an events/s line: no hftbacktest")

    monkeypatch.setattr(bench, "run_suite", run_suite)
    res = CliRunner().invoke(
        app, ["bench", "--quick", "--data-dir", str(tmp_path), "--peer-python", "/opt/hbt/bin/python"]
    )
    assert res.exit_code == 2 and "no hftbacktest" in res.output
    assert seen["peer"] == Path("/opt/hbt/bin/python")
