"""``metrics.json`` is strict JSON: a metric that is undefined (no trades, no labelled decisions) is null
and its dotted path is in ``undefined`` with the reason; nothing else is null and nothing is NaN."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from scalper.engine.cli import app


def _strict(text: str):
    def refuse(name: str):
        raise ValueError(f"not JSON: {name}")

    return json.loads(text, parse_constant=refuse)


def _nulls(obj, path: str = "") -> set[str]:
    if obj is None:
        return {path}
    if isinstance(obj, dict):
        return set().union(*(_nulls(v, f"{path}.{k}" if path else k) for k, v in obj.items())) if obj else set()
    return set()


def _backtest(trained: Path, tmp_path: Path, risk: str) -> tuple[str, dict]:
    cfg = tmp_path / "c.toml"
    cfg.write_text(f"[labels]\ndead_zone_ticks = 0.0\n\n[risk]\n{risk}\n")
    out = tmp_path / "report"
    res = CliRunner().invoke(
        app,
        ["backtest", "-t", str(trained / "eth.parquet"), "-m", str(trained / "models"), "-o", str(out), "-c", str(cfg)],
        env={"COLUMNS": "200"},
    )
    assert res.exit_code == 0, res.output
    return res.output, _strict((out / "metrics.json").read_text())


def test_a_backtest_without_trades_writes_null_and_the_reason(trained, tmp_path):
    output, m = _backtest(trained, tmp_path, "min_probability = 1.0")
    assert m["trades"] == 0 and m["fills"] == 0
    assert m["hit_rate"] is None
    assert m["undefined"]["hit_rate"] == "no round trips"
    assert m["sharpe"] is None  # 0/0 with a flat equity curve, not a Sharpe ratio of 0
    assert m["undefined"]["sharpe"] == "fewer than two 1-minute equity changes, or all of them equal (no position held)"
    assert _nulls(m) == set(m["undefined"])  # every null has its reason, and only nulls have one
    assert "n/a (no round trips)" in output


def test_a_trading_backtest_has_no_undefined_metric(trained, tmp_path):
    _, m = _backtest(trained, tmp_path, "take_profit_bps = 30.0\nstop_loss_bps = 10.0\nmax_position = 20.0")
    assert m["trades"] > 0 and 0.0 <= m["hit_rate"] <= 1.0
    assert m["undefined"] == {} and _nulls(m) == set()
