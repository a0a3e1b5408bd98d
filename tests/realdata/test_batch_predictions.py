"""DESIGN: a batch run (one numba loop, batched ONNX calls) gives the same features and predictions
as feeding the events one by one. Proved on GOOG level 10 through two complete backtests."""

import numpy as np
import pytest

from scalper.backtest.driver import fills_table, run_backtest
from scalper.backtest.report import prediction_accuracy
from scalper.engine.config import EngineConfig
from scalper.ingest import tickfile
from scalper.models.inference import load_model_dir
from scalper.models.train import train_models
from scalper.risk.config import RiskConfig

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

CFG = EngineConfig(risk=RiskConfig(take_profit_bps=30.0, stop_loss_bps=10.0, max_position=50.0))


@pytest.fixture(scope="module")
def goog_models(goog10_tickfile, tmp_path_factory):
    out = tmp_path_factory.mktemp("m")
    train_models(goog10_tickfile, out, CFG.features, CFG.labels, CFG.train)
    return out


# 0: trade the whole session; the other: trade from the middle, so the first half is not predicted.
@pytest.mark.parametrize("trade_from_ns", [0, 1_340_297_100_000_000_000], ids=["all", "second-half"])
def test_batched_and_per_decision_predictions_give_the_same_backtest(goog10_tickfile, goog_models, trade_from_ns):
    data = tickfile.read(goog10_tickfile)
    assert data.ts_event[0] < trade_from_ns < data.ts_event[-1] or trade_from_ns == 0
    batch = run_backtest(data, load_model_dir(goog_models), CFG, trade_from_ns=trade_from_ns, batch_predictions=True)
    live = run_backtest(data, load_model_dir(goog_models), CFG, trade_from_ns=trade_from_ns, batch_predictions=False)
    assert np.array_equal(batch.core.predictions.ts, live.core.predictions.ts)
    assert len(batch.core.predictions.ts) == len(batch.features.ts) == 29_000
    ts = np.asarray(batch.core.predictions.ts)
    traded = ts >= trade_from_ns
    batch_classes, live_classes = np.array(batch.core.predictions.classes), np.array(live.core.predictions.classes)
    predicted = batch_classes[:, 0] >= 0
    assert np.array_equal(batch_classes[predicted], live_classes[predicted])
    assert not predicted[~traded].any()  # rows before trade_from_ns are not predicted
    # Only decisions that could open a position are predicted by the replay; the report predicts the rest.
    assert 0 < predicted.sum() < traded.sum()
    assert prediction_accuracy(batch, batch.features, trade_from_ns) == prediction_accuracy(
        live, batch.features, trade_from_ns
    )
    fb, fl = fills_table(batch), fills_table(live)
    assert len(fb["qty"]) > 0
    for col in ("ts_ns", "side", "qty", "price", "fee"):
        assert np.array_equal(fb[col], fl[col]), col
    assert batch.core.risk.account.realized_pnl == live.core.risk.account.realized_pnl
    assert batch.core.risk.reject_counts == live.core.risk.reject_counts  # skipped decisions counted too
    assert batch.core.risk.approved_count == live.core.risk.approved_count
    for field in ("peak_equity", "drawdown", "max_drawdown", "unrealized_pnl", "last_mark"):
        assert getattr(batch.core.risk.account, field) == getattr(live.core.risk.account, field), field


def test_rows_the_batch_did_not_predict_are_decided_by_the_general_path(goog10_tickfile, goog_models, monkeypatch):
    # Every third row of each batch loses its answer (p = 0; the rows that may enter, screened on the
    # real p, stay): those decisions ask the ONNX models one row at a time and trade as the live replay.
    from scalper.backtest.batched import BatchedDecisions

    predict_next_batch = BatchedDecisions._predict_next_batch
    made = []

    def forgetful(self):
        lo = self._done
        if not predict_next_batch(self):
            return False
        self._classes[lo : self._done : 3] = -1
        self._p[lo : self._done : 3] = 0.0
        made.append(self)
        return True

    monkeypatch.setattr(BatchedDecisions, "_predict_next_batch", forgetful)
    data = tickfile.read(goog10_tickfile)
    batch = run_backtest(data, load_model_dir(goog_models), CFG, batch_predictions=True)
    live = run_backtest(data, load_model_dir(goog_models), CFG, batch_predictions=False)
    assert made[0].fallbacks > 10
    fb, fl = fills_table(batch), fills_table(live)
    assert len(fb["qty"]) > 0
    for col in ("ts_ns", "side", "qty", "price", "fee"):
        assert np.array_equal(fb[col], fl[col]), col
    rb, rl = batch.core.risk, live.core.risk
    assert rb.reject_counts == rl.reject_counts and rb.approved_count == rl.approved_count
    for field in ("realized_pnl", "peak_equity", "drawdown", "max_drawdown", "unrealized_pnl", "last_mark"):
        assert getattr(rb.account, field) == getattr(rl.account, field), field
