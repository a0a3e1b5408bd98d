"""A batched replay (backtest/batched.py) trades exactly as the per-decision replay, on generated data.

The model is a fixed function of the features, so one row predicts the same alone or in a batch;
whatever differs between the two replays is the batched bookkeeping: which rows it predicts, the
refusals it counts in bulk, the quiet positions it marks in bulk.
"""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

from scalper.backtest.driver import fills_table, run_backtest
from scalper.backtest.report import prediction_accuracy
from scalper.engine.config import EngineConfig, StrategyConfig
from scalper.exec.config import ExecConfig
from scalper.ingest.synthetic import SyntheticConfig, generate_session
from scalper.models.card import LabelSpec
from scalper.models.inference import ModelSet
from scalper.risk.config import RiskConfig

IMBALANCE = 4  # features.registry: level-1 size imbalance in [-1, 1]


class ImbalancePredictor:
    """Down / flat / up from the level-1 imbalance: a deterministic stand-in for a trained model."""

    def __init__(self, horizon_s: float) -> None:
        self.horizon_ns = int(horizon_s * 1e9)
        self.card = SimpleNamespace(
            dead_zone_ticks=0.0, horizon_s=horizon_s, labels=LabelSpec(kind="direction", dead_zone_ticks=0.0)
        )
        self.rows = 0

    def predict_batch(self, X: np.ndarray) -> np.ndarray:
        self.rows += len(X)
        x = np.asarray(X, dtype=np.float64)[:, IMBALANCE]
        up = np.clip(0.5 + 0.45 * x, 0.0, 1.0)
        down = np.clip(0.5 - 0.45 * x, 0.0, 1.0)
        flat = np.full(len(x), 0.2)
        p = np.stack([down, flat, up], axis=1)
        return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.predict_batch(np.asarray(features)[None, :])[0]


CFG = EngineConfig(
    risk=RiskConfig(take_profit_bps=6.0, stop_loss_bps=3.0, max_position=5.0, min_probability=0.5),
    exec=ExecConfig(latency_ms=2.0, taker_fee_bps=0.1),
)


# Maker mode on the same data: posted entries and take-profits, crossing stops (engine/maker.py).
MAKER_CFG = CFG.model_copy(
    update={
        "strategy": StrategyConfig(mode="maker", queue_window_s=30.0),
        "exec": ExecConfig(latency_ms=2.0, taker_fee_bps=0.1, maker_fee_bps=0.0),
    }
)


@pytest.fixture(scope="module")
def session():
    return generate_session(SyntheticConfig(seed=11, duration_s=600.0))


def _models():
    return ModelSet(Path("."), (ImbalancePredictor(5.0), ImbalancePredictor(10.0)))


@pytest.mark.parametrize("trade_from_s", [0.0, 300.0], ids=["all", "second-half"])
def test_batched_replay_trades_as_the_per_decision_replay(session, trade_from_s):
    trade_from = int(session.ts_event[0] + trade_from_s * 1e9)
    batched_models, live_models = _models(), _models()
    batch = run_backtest(session, batched_models, CFG, trade_from_ns=trade_from, batch_predictions=True)
    live = run_backtest(session, live_models, CFG, trade_from_ns=trade_from, batch_predictions=False)
    fb, fl = fills_table(batch), fills_table(live)
    assert len(fb["qty"]) > 20  # positions opened and closed, so rows were passed over
    for col in ("ts_ns", "side", "qty", "price", "fee", "reason"):
        assert np.array_equal(fb[col], fl[col]), col
    rb, rl = batch.core.risk, live.core.risk
    assert rb.reject_counts == rl.reject_counts and rb.approved_count == rl.approved_count
    for field in ("realized_pnl", "fees_paid", "peak_equity", "drawdown", "max_drawdown", "last_mark"):
        assert getattr(rb.account, field) == getattr(rl.account, field), field
    # The batched replay predicted only part of the trading span; the report's accuracy is unchanged.
    traded = int(np.sum(batch.features.ts >= trade_from))
    assert 0 < batched_models.predictors[0].rows < traded
    fm = batch.features
    assert prediction_accuracy(batch, fm, trade_from) == prediction_accuracy(live, fm, trade_from)


@pytest.mark.parametrize("trade_from_s", [0.0, 300.0], ids=["all", "second-half"])
def test_batched_replay_trades_as_the_per_decision_replay_in_maker_mode(session, trade_from_s):
    # Posted orders: every decision with an entry working is taken (it may re-quote or cancel), quiet
    # positions (the take-profit resting) are passed over and marked in bulk.
    trade_from = int(session.ts_event[0] + trade_from_s * 1e9)
    batch = run_backtest(session, _models(), MAKER_CFG, trade_from_ns=trade_from, batch_predictions=True)
    live = run_backtest(session, _models(), MAKER_CFG, trade_from_ns=trade_from, batch_predictions=False)
    fb, fl = fills_table(batch), fills_table(live)
    assert fb["maker"].sum() > 10 and (~fb["maker"]).sum() > 0  # posted fills and crossing exits
    for col in ("ts_ns", "order_id", "side", "qty", "price", "fee", "reason", "maker"):
        assert np.array_equal(fb[col], fl[col]), col
    rb, rl = batch.core.risk, live.core.risk
    assert rb.reject_counts == rl.reject_counts and rb.approved_count == rl.approved_count
    for field in ("realized_pnl", "fees_paid", "peak_equity", "drawdown", "max_drawdown", "last_mark"):
        assert getattr(rb.account, field) == getattr(rl.account, field), field
    counts = ("posted", "requoted", "canceled_fade", "canceled_queue", "withheld_queue")
    assert [getattr(batch.core, c) for c in counts] == [getattr(live.core, c) for c in counts]
    assert batch.adapter.posted == live.adapter.posted


def test_a_row_the_batch_did_not_predict_takes_the_general_path(session, monkeypatch):
    # Every third row of each batch loses its prediction (the rows that may enter, screened on the real
    # p, stay): the decisions on those rows ask the models one row at a time, and trade as the
    # per-decision replay; a decision that took the erased answer (p = 0) would be refused instead.
    from scalper.backtest.batched import BatchedDecisions

    predict_next_batch = BatchedDecisions._predict_next_batch

    def forgetful(self):
        lo = self._done
        if not predict_next_batch(self):
            return False
        self._classes[lo : self._done : 3] = -1
        self._p[lo : self._done : 3] = 0.0
        return True

    monkeypatch.setattr(BatchedDecisions, "_predict_next_batch", forgetful)
    fallbacks = []
    signal = BatchedDecisions.signal

    def counted(self, features):
        out = signal(self, features)
        fallbacks.append(self.fallbacks)
        return out

    monkeypatch.setattr(BatchedDecisions, "signal", counted)
    batch = run_backtest(session, _models(), CFG, batch_predictions=True)
    live = run_backtest(session, _models(), CFG, batch_predictions=False)
    assert fallbacks[-1] > 10  # the general path answered some of the decisions that could enter
    fb, fl = fills_table(batch), fills_table(live)
    assert len(fb["qty"]) > 20
    for col in ("ts_ns", "side", "qty", "price", "fee", "reason"):
        assert np.array_equal(fb[col], fl[col]), col
    rb, rl = batch.core.risk, live.core.risk
    assert rb.reject_counts == rl.reject_counts and rb.approved_count == rl.approved_count
    for field in ("realized_pnl", "fees_paid", "peak_equity", "drawdown", "max_drawdown", "last_mark"):
        assert getattr(rb.account, field) == getattr(rl.account, field), field


@pytest.mark.parametrize("batch_predictions", [True, False], ids=["batched", "per-decision"])
def test_the_progress_slices_change_nothing_but_the_reports(session, monkeypatch, batch_predictions):
    import scalper.backtest.driver as driver

    whole = run_backtest(session, _models(), CFG, batch_predictions=batch_predictions)
    monkeypatch.setattr(driver, "PROGRESS_EVENTS", 997)  # a code lands on a slice's last event now and then
    reports = []
    sliced = run_backtest(session, _models(), CFG, batch_predictions=batch_predictions, on_progress=reports.append)
    n = len(session)
    assert reports == [*range(0, n, 997), n]
    fw, fs = fills_table(whole), fills_table(sliced)
    assert len(fw["qty"]) > 20
    for col in ("ts_ns", "side", "qty", "price", "fee", "reason"):
        assert np.array_equal(fw[col], fs[col]), col
    rw, rs = whole.core.risk, sliced.core.risk
    assert rw.reject_counts == rs.reject_counts and rw.approved_count == rs.approved_count
    assert rw.account.max_drawdown == rs.account.max_drawdown and rw.account.last_mark == rs.account.last_mark
    pw, ps = whole.core.predictions, sliced.core.predictions
    assert np.array_equal(np.asarray(pw.ts), np.asarray(ps.ts))
    assert np.array_equal(np.array(pw.classes), np.array(ps.classes))
