"""The main job on real input: LOBSTER GOOG level 10 -> train -> ONNX -> backtest -> report."""

import json

import polars as pl
import pytest

from scalper.backtest.session import backtest_file
from scalper.engine.config import EngineConfig
from scalper.models.train import train_models
from scalper.risk.config import RiskConfig

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

# b = take-profit / stop-loss = 3 lets Kelly bet on the model's 25-35 % up/down calls, so the replay trades.
CFG = EngineConfig(risk=RiskConfig(take_profit_bps=30.0, stop_loss_bps=10.0, max_position=50.0))


@pytest.fixture(scope="module")
def pipeline(goog10_tickfile, tmp_path_factory):
    out = tmp_path_factory.mktemp("goog_pipeline")
    results = train_models(goog10_tickfile, out / "models", CFG.features, CFG.labels, CFG.train)
    metrics = backtest_file(goog10_tickfile, out / "models", CFG, out / "report")
    return out, results, metrics


def test_goog_models_pass_parity_and_match_or_beat_the_prior_on_log_loss(pipeline):
    _, results, _ = pipeline
    assert [r.horizon_s for r in results] == [5.0, 10.0, 30.0]
    for r in results:
        test = r.card.metrics["test"]
        assert r.card.parity_max_abs_diff <= 1e-5
        assert test.rows > 6_000
        assert r.card.dead_zone_ticks == 14.0  # half the 28-tick median spread of the training span
        assert r.card.instrument["symbol"] == "GOOG"
    # Early stopping keeps every model within a hair of the class prior, and some horizon beats it.
    tests = [r.card.metrics["test"] for r in results]
    assert all(t.log_loss < t.baseline_log_loss + 0.002 for t in tests)
    assert any(t.log_loss < t.baseline_log_loss for t in tests)


def test_goog_backtest_report_adds_up_and_ends_flat(pipeline):
    out, results, m = pipeline
    report = out / "report"
    assert json.loads((report / "metrics.json").read_text()) == json.loads(json.dumps(m))
    assert m["events"] == 245_260
    assert m["trades"] > 0
    assert m["ends_flat"]
    assert m["final_equity"] == pytest.approx(CFG.risk.initial_equity + m["net_pnl"], abs=1e-6)
    fills = pl.read_parquet(report / "trades.parquet")
    assert (-fills["side"].cast(pl.Float64) * fills["qty"] * fills["price"]).sum() == pytest.approx(
        m["gross_pnl"], abs=1e-6
    )
    assert m["account_net_pnl"] == pytest.approx(m["net_pnl"], abs=1e-6)
    assert fills["ts_ns"].min() >= max(r.card.test_span_ns[0] for r in results)
    assert m["prediction_accuracy"]["5s"]["decisions"] > 6_000
    assert (report / "equity.png").stat().st_size > 10_000
    assert m["data_quality"] == {"crossed_books": 0, "book_overflows": 0, "ring_overflows": 0}
