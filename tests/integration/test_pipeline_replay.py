"""Train -> ONNX -> backtest on a generated book stream; the report must add up."""

import json
import shutil

import numpy as np
import polars as pl
import pytest
from builders import random_walk_ticks

from scalper.backtest.session import backtest_file
from scalper.engine.config import EngineConfig
from scalper.features.batch import compute_features
from scalper.ingest import tickfile
from scalper.models.card import ModelCard, ModelCardMismatch
from scalper.models.config import LabelsConfig
from scalper.models.inference import OnnxPredictor, load_model_dir
from scalper.models.train import train_models
from scalper.risk.config import RiskConfig

# Take-profit three times the stop makes b = 3, so Kelly bets at p > 0.25 and the replay trades.
CFG = EngineConfig(
    labels=LabelsConfig(dead_zone_ticks=0.0),
    risk=RiskConfig(take_profit_bps=30.0, stop_loss_bps=10.0, max_position=20.0),
)


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    root = tmp_path_factory.mktemp("pipe")
    ticks = root / "rw.parquet"
    tickfile.write(ticks, random_walk_ticks(3, 40_000))
    results = train_models(ticks, root / "models", CFG.features, CFG.labels, CFG.train)
    return root, ticks, results


@pytest.fixture(scope="module")
def report(trained):
    root, ticks, _ = trained
    metrics = backtest_file(ticks, root / "models", CFG, root / "report")
    return root / "report", metrics


def test_training_writes_one_model_and_card_per_horizon(trained):
    root, _, results = trained
    assert [r.horizon_s for r in results] == [5.0, 10.0, 30.0]
    for r in results:
        card = ModelCard.load(r.onnx_path.with_name(r.onnx_path.stem + ".card.json"))
        assert card.parity_max_abs_diff <= 1e-5
        assert card.train_span_ns[1] + 30e9 < card.val_span_ns[0]
        assert card.metrics["test"].rows > 0
        assert sum(card.metrics["test"].class_counts) == card.metrics["test"].rows


def test_single_row_inference_equals_batched_inference(trained):
    root, ticks, _ = trained
    fm = compute_features(tickfile.read(ticks))
    X = fm.X[:500].astype(np.float32)
    for p in load_model_dir(root / "models").predictors:
        batch = p.predict_batch(X)
        single = np.array([p.predict(x).copy() for x in X])
        np.testing.assert_array_equal(single, batch)


def test_model_with_reordered_features_is_refused(trained, tmp_path):
    root, _, _ = trained
    shutil.copytree(root / "models", tmp_path / "m")
    card_path = tmp_path / "m" / "h5s.card.json"
    card = json.loads(card_path.read_text())
    card["feature_names"][0], card["feature_names"][1] = card["feature_names"][1], card["feature_names"][0]
    card_path.write_text(json.dumps(card))
    with pytest.raises(ModelCardMismatch, match="feature 0 is 'mid_return_1s_bps'"):
        OnnxPredictor(tmp_path / "m" / "h5s.onnx")
    with pytest.raises(ModelCardMismatch):
        load_model_dir(tmp_path / "m")


def test_model_without_card_is_refused(trained, tmp_path):
    root, _, _ = trained
    shutil.copy(root / "models" / "h5s.onnx", tmp_path / "h5s.onnx")
    with pytest.raises(ModelCardMismatch, match="no model card"):
        OnnxPredictor(tmp_path / "h5s.onnx")


def test_backtest_report_adds_up(report):
    out, m = report
    assert m["trades"] > 10
    assert m["final_equity"] == pytest.approx(CFG.risk.initial_equity + m["net_pnl"], abs=1e-6)
    trades = pl.read_parquet(out / "trades.parquet")
    cash = (-trades["side"].cast(pl.Float64) * trades["qty"] * trades["price"]).sum()
    assert cash == pytest.approx(m["gross_pnl"], abs=1e-6)
    assert trades["fee"].sum() == pytest.approx(m["fees"], abs=1e-9)
    assert (trades["side"].cast(pl.Float64) * trades["qty"]).sum() == pytest.approx(0.0, abs=1e-9)
    assert m["ends_flat"]
    assert m["account_net_pnl"] == pytest.approx(m["net_pnl"], abs=1e-6)
    assert set(trades["reason"].unique()) <= {"entry", "take_profit", "stop_loss", "time_stop", "end_of_data"}
    assert {"take_profit", "stop_loss"} & set(trades["reason"].unique())
    assert (out / "equity.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_backtest_trades_only_the_test_span_of_its_own_training_file(report, trained):
    root, _, results = trained
    _, m = report
    out = report[0]
    first_fill = pl.read_parquet(out / "trades.parquet")["ts_ns"].min()
    test_start = max(r.card.test_span_ns[0] for r in results)
    assert m["trading_from_ns"] == test_start
    assert first_fill >= test_start


def test_prediction_accuracy_is_reported_per_horizon(report):
    _, m = report
    acc = m["prediction_accuracy"]
    assert set(acc) == {"5s", "10s", "30s"}
    for v in acc.values():
        assert v["decisions"] > 1000 and 0.0 <= v["accuracy"] <= 1.0


def test_backtest_refuses_models_trained_on_another_grid(trained, tmp_path):
    root, ticks, _ = trained
    other = CFG.model_copy(update={"features": CFG.features.model_copy(update={"grid_ms": 100.0})})
    with pytest.raises(ModelCardMismatch, match="250 ms grid, engine runs 100 ms"):
        backtest_file(ticks, root / "models", other, tmp_path / "r")
