"""``metrics.json`` is strict JSON: a metric that is undefined (no trades, no labelled decisions) is null
and its dotted path is in ``undefined`` with the reason; nothing else is null and nothing is NaN. Each
metric sits beside its baseline, an unreliable Sharpe is flagged, and the model files are recorded."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from typer.testing import CliRunner

from scalper.backtest.metrics import break_even_hit_rate, sharpe_flags
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


def test_each_metric_sits_beside_its_baseline_and_the_models_are_recorded(trained, tmp_path):
    output, m = _backtest(trained, tmp_path, "take_profit_bps = 30.0\nstop_loss_bps = 10.0\nmax_position = 20.0")
    trips = pl.read_parquet(tmp_path / "report" / "trades.parquet")
    assert trips.height > 0
    assert m["baselines"]["net_pnl"] == 0.0 and m["baselines"]["sharpe"] == 0.0
    assert 0.0 < m["baselines"]["hit_rate"] < 1.0
    for acc in m["prediction_accuracy"].values():
        assert 0.0 <= acc["baseline_accuracy"] <= 1.0
    models = trained / "models"
    assert m["models"]["directory"] == str(models)
    versions = {v["model_file"]: v for v in m["models"]["versions"]}
    assert set(versions) == {"h5s.onnx", "h10s.onnx", "h30s.onnx"}
    for name, v in versions.items():
        assert v["onnx_sha256"] == hashlib.sha256((models / name).read_bytes()).hexdigest()
        card = models / name.replace(".onnx", ".card.json")
        assert v["card_sha256"] == hashlib.sha256(card.read_bytes()).hexdigest()
        assert v["trained_on"] == "eth.parquet"
    assert "baseline" in output and "models: " in output


def test_a_sharpe_from_few_trades_or_under_an_hour_is_flagged(trained, tmp_path):
    output, m = _backtest(trained, tmp_path, "take_profit_bps = 30.0\nstop_loss_bps = 10.0\nmax_position = 20.0")
    hours = (m["trading_to_ns"] - m["trading_from_ns"]) / 3.6e12
    assert hours < 1.0  # the test span of a 20,000-event walk
    flags = m["flags"]["sharpe"]
    assert f"annualised from {hours:.2f} h of trading (< 1 h)" in flags
    assert (f"annualised from {m['trades']} round trips (< 30)" in flags) == (m["trades"] < 30)
    assert "sharpe unreliable:" in output


def test_break_even_hit_rate_and_sharpe_flags_by_hand():
    # Winners average 3, losers 1: break even at a 25 % hit rate.
    assert break_even_hit_rate(np.array([2.0, 4.0, -1.0, -1.0])) == pytest.approx(0.25)
    assert break_even_hit_rate(np.array([1.0, 2.0])) is None
    assert sharpe_flags(30, 3_600_000_000_000) == []
    assert sharpe_flags(29, 1_800_000_000_000) == [
        "annualised from 29 round trips (< 30)",
        "annualised from 0.50 h of trading (< 1 h)",
    ]
