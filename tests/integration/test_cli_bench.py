"""`scalper bench --quick` on the real recordings: every stage measured, positive, and written as JSON."""

import json

import pytest
from typer.testing import CliRunner

from scalper.engine.cli import app

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

STAGES = (
    "decode",
    "parse",
    "sequence + book apply",
    "live step",
    "inference 1 row",
    "inference batched",
    "risk",
    "adapter submit",
    "tick-to-decision",
    "tick-to-book",
    "tick-to-prediction",
    "batch path",
    "replay pass",
    "full backtest",
    "maker + queue (GOOG L10)",
    "maker + queue (ETHUSDT)",
)


def test_bench_quick_measures_every_stage(data_dir, tmp_path):
    out = tmp_path / "bench.json"
    res = CliRunner().invoke(app, ["bench", "--quick", "--data-dir", str(data_dir), "--json", str(out)])
    assert res.exit_code == 0, res.output
    rows = json.loads(out.read_text())["results"]
    for stage in STAGES:
        assert any(stage in r["stage"] for r in rows), stage
    for r in rows:
        assert r["ops_per_s"] > 0
        if r["p50_us"]:
            assert 0 < r["p50_us"] <= r["p99_us"] <= r["p99_9_us"] <= r["max_us"]
    assert sum("inference 1 row" in r["stage"] for r in rows) == 4  # three 300-tree horizons and one 102-tree model
    assert not any("hftbacktest" in r["stage"] for r in rows)  # no peer interpreter given
