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


def _side(name, rows, wall_s, keys):
    import numpy as np

    from scalper.benchmarks.peer_maker import FILL_KEY, SideResult

    fills = {k: np.array([key[i] for key in keys], dtype=np.int64) for i, k in enumerate(FILL_KEY)}
    return SideResult(name, fills, 0, 0.0, 0.0, 0.0, rows, wall_s, 0)


def test_the_maker_stage_runs_goog_alone_and_the_peer_comparison_on_ethusdt(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from scalper.benchmarks import harness as bench
    from scalper.benchmarks import peer_maker

    ran = []

    def run_scalper(data, params, repeat):
        ran.append((data, repeat))
        return _side("scalper", 1_000, 0.0001 if data == "goog" else 0.0002, [])

    def compare(files, python, params=None, repeat=3):
        assert [f.name for f in files] == ["ethusdt_20240718.gz", "ethusdt_20240719.gz"]
        assert python == Path("/opt/hbt/bin/python") and repeat == 2  # the peer's first run compiles
        keys = [(1, 1, 100, 1), (2, -1, 101, 1), (3, 1, 100, 1), (4, -1, 101, 1)]
        mine, peer = (
            _side("scalper", 2_000, 0.0001, keys),
            _side("hftbacktest", 2_400, 0.004, keys[:3] + [(5, 1, 1, 1)]),
        )
        return peer_maker.Comparison(mine, peer, 3, [keys[3]], [(5, 1, 1, 1)])

    monkeypatch.setattr(peer_maker, "run_scalper", run_scalper)
    monkeypatch.setattr(peer_maker, "with_warmup", lambda data, params: params)
    monkeypatch.setattr(peer_maker, "compare", compare)
    d = SimpleNamespace(goog="goog", eth="eth")
    alone = bench.stage_maker(d, True, tmp_path)
    assert [(r.stage, r.ops, r.ops_per_s, r.note) for r in alone] == [
        (bench.MAKER_GOOG, 1_000, pytest.approx(1e7), "events/s"),
        (bench.MAKER_ETH, 1_000, pytest.approx(5e6), "events/s"),
    ]
    assert ran == [("goog", 2), ("eth", 2)]
    rows = bench.stage_maker(d, True, tmp_path / "data", Path("/opt/hbt/bin/python"))
    assert [r.stage for r in rows] == [bench.MAKER_GOOG, bench.MAKER_ETH, bench.MAKER_PEER]
    assert rows[1].ops_per_s == pytest.approx(2e7) and rows[2].ops_per_s == pytest.approx(6e5)
    assert rows[1].note == "events/s, 40.00x hftbacktest; fills identical 3/4 = 75.0%"


def test_a_failed_peer_maker_run_is_a_peer_error(monkeypatch, tmp_path):
    from types import SimpleNamespace

    from scalper.benchmarks import harness as bench
    from scalper.benchmarks import peer_maker

    def compare(*_a, **_k):
        raise peer_maker.PeerMakerError("peer_maker_hbt.py exited 1: no hftbacktest")

    monkeypatch.setattr(peer_maker, "run_scalper", lambda data, params, repeat: _side("scalper", 1, 1.0, []))
    monkeypatch.setattr(peer_maker, "with_warmup", lambda data, params: params)
    monkeypatch.setattr(peer_maker, "compare", compare)
    with pytest.raises(PeerError, match="no hftbacktest"):
        bench.stage_maker(SimpleNamespace(goog="g", eth="e"), True, tmp_path, Path("/x/python"))
