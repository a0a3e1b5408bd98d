"""Maker mode (engine/maker.py) with a scripted model on hand-made books: post, fill, exits, re-quote, cancel."""

from pathlib import Path

import numpy as np
import pytest
from builders import T0, TickBuilder
from test_engine_core import DOWN, FLAT, UP, ScriptedPredictor

from scalper.backtest.driver import fills_table, run_backtest
from scalper.engine.config import EngineConfig, StrategyConfig
from scalper.engine.maker import MakerCore
from scalper.exec.config import ExecConfig
from scalper.exec.orders import OrderStatus
from scalper.exec.passive_venue import PassiveSimulatedExchange
from scalper.models.inference import ModelSet
from scalper.risk.config import RiskConfig
from scalper.risk.intent import RejectReason

MS = 1_000_000
S = 1_000_000_000

CFG = EngineConfig(
    strategy=StrategyConfig(mode="maker", queue_window_s=60.0),
    risk=RiskConfig(take_profit_bps=10.0, stop_loss_bps=10.0, max_position=10.0),
    exec=ExecConfig(latency_ms=1.0, taker_fee_bps=0.5, maker_fee_bps=0.0, decision_compute_ns=0),
)


def _replay(builder, script, cfg=CFG):
    models = ModelSet(Path("."), (ScriptedPredictor(script),))
    res = run_backtest(builder.build(), models, cfg, batch_predictions=False)
    return res, fills_table(res)


def _book(flow=5_000.0):
    # Sellers traded `flow` shares at the bid in the minute before: over a 5 s horizon that is
    # flow / 12 expected, more than the 100 shares bid ahead when flow = 5 000 (queue rule passes).
    b = TickBuilder()
    if flow:
        b.trade(T0 - 10 * S, -1, 10_000, flow)
    return b.snapshot(T0, [(10_000, 100.0), (9_999, 100.0)], [(10_001, 100.0), (10_002, 100.0)])


def test_maker_mode_builds_the_maker_core_on_the_passive_venue():
    res, _ = _replay(_book(), [FLAT])
    assert isinstance(res.core, MakerCore) and isinstance(res.adapter, PassiveSimulatedExchange)


def test_long_entry_posted_at_the_bid_fills_as_maker_and_takes_profit_as_maker():
    b = _book()
    b.trade(T0 + 100 * MS, -1, 10_000, 110.0)  # 100 ahead, then our 10
    # The offer lifts to 100.10, where our take-profit (100.00 * 1.001 = 10 010 ticks) rests first.
    b.message(T0 + 150 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_002, 0.0), (0, -1, 10_010, 5.0))
    b.trade(T0 + 200 * MS, 1, 10_010, 10.0)
    res, f = _replay(b, [UP])
    assert f["side"].tolist() == [1, -1]
    assert f["qty"].tolist() == [10.0, 10.0]
    assert f["price"].tolist() == pytest.approx([100.00, 100.10])
    assert f["reason"].tolist() == ["entry", "take_profit"]
    assert f["maker"].tolist() == [True, True]
    assert f["ts_ns"].tolist() == [T0 + 100 * MS, T0 + 200 * MS]
    assert res.core.risk.account.realized_pnl == pytest.approx(10 * 0.10)
    assert res.core.risk.account.fees_paid == 0.0  # maker fee 0
    assert res.core.posted == 1 and res.adapter.posted == 2  # the entry and the take-profit
    table = res.adapter.fills_table()
    assert table["queue_at_post"].tolist() == [100.0, 0.0]


def test_stop_loss_cancels_the_take_profit_then_crosses_as_taker():
    b = _book()
    b.trade(T0 + 100 * MS, -1, 10_000, 110.0)
    # The bid falls to 99.89, below the stop (99.90): cancel the take-profit (1 ms), then an IOC.
    b.message(T0 + 150 * MS, (0, 1, 10_000, 0.0), (0, 1, 9_999, 0.0), (0, 1, 9_989, 100.0))
    b.level(T0 + 300 * MS, -1, 10_005, 1.0)
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "stop_loss"]
    assert f["maker"].tolist() == [True, False]
    assert f["price"].tolist() == pytest.approx([100.00, 99.89])
    # Watch at 150 ms; the cancel is answered at 151 ms, the IOC sent then fills at 152 ms.
    assert f["ts_ns"].tolist() == [T0 + 100 * MS, T0 + 152 * MS]
    assert f["fee"][1] == pytest.approx(99.89 * 10 * 0.5 / 1e4)
    tp = [o for o in res.adapter._orders.values() if o.reason == "take_profit"]
    assert [o.status for o in tp] == [OrderStatus.CANCELED]
    assert res.core.risk.account.position == 0.0


def test_a_take_profit_the_market_went_through_is_taken_as_taker():
    b = _book()
    b.trade(T0 + 100 * MS, -1, 10_000, 110.0)
    # Before the take-profit (100.10) arrives at 101 ms the bid jumps to 100.12: post-only would cross.
    b.message(
        T0 + 100 * MS + 500_000, (0, -1, 10_001, 0.0), (0, -1, 10_002, 0.0), (0, -1, 10_014, 50.0), (0, 1, 10_012, 50.0)
    )
    b.level(T0 + 300 * MS, -1, 10_015, 1.0)
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "take_profit"]
    assert f["maker"].tolist() == [True, False]
    assert f["price"].tolist() == pytest.approx([100.00, 100.12])
    tp = [o for o in res.adapter._orders.values() if o.reason == "take_profit"]
    assert [o.status for o in tp] == [OrderStatus.EXPIRED, OrderStatus.FILLED]


def test_time_stop_cancels_the_take_profit_and_crosses():
    b = _book()
    b.trade(T0 + 100 * MS, -1, 10_000, 110.0)
    b.level(T0 + 6 * S, -1, 10_005, 1.0)
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "time_stop"]
    # Time stop at the fill + 5 s; cancel answered 1 ms later, the IOC fills 1 ms after that.
    assert f["ts_ns"].tolist() == [T0 + 100 * MS, T0 + 5_102 * MS]
    assert f["price"].tolist() == pytest.approx([100.00, 100.00])


def test_entry_is_cancelled_when_the_call_flips():
    b = _book()
    b.level(T0 + 100 * MS, -1, 10_006, 1.0)  # reveals the decision at T0 (an event per grid step)
    b.level(T0 + 400 * MS, -1, 10_005, 1.0)
    res, f = _replay(b, [UP, DOWN])
    assert len(f["qty"]) == 0
    assert res.core.canceled_fade == 1
    assert [o.status for o in res.adapter._orders.values()] == [OrderStatus.CANCELED]


def test_entry_is_requoted_when_the_touch_moves_away():
    b = _book()
    b.message(T0 + 100 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_003, 50.0), (0, 1, 10_001, 50.0))
    b.level(T0 + 400 * MS, -1, 10_005, 1.0)
    res, f = _replay(b, [UP, UP])
    assert res.core.requoted == 1
    (order,) = res.adapter._orders.values()
    assert order.limit_price == pytest.approx(100.01)  # moved up to the new best bid (same id)


def test_queue_rule_withholds_an_entry_that_would_not_fill_in_time():
    b = _book(flow=600.0)  # 600 / 60 s * 5 s = 50 shares expected < 100 ahead
    b.level(T0 + 400 * MS, -1, 10_005, 1.0)
    res, f = _replay(b, [UP])
    assert len(f["qty"]) == 0
    assert res.core.withheld_queue == 1 and res.adapter.posted == 0
    assert res.core.risk.approved_count == 1  # Kelly approved it; the queue rule kept it back


def test_one_tick_inside_a_wide_spread_has_nobody_ahead():
    b = TickBuilder().trade(T0 - 10 * S, -1, 10_000, 600.0)  # some flow: with none, no fill is expected
    b.snapshot(T0, [(10_000, 100.0)], [(10_004, 100.0)])
    b.trade(T0 + 100 * MS, -1, 10_001, 10.0)  # sellers at our improved bid: we are first
    b.level(T0 + 400 * MS, -1, 10_005, 1.0)
    cfg = CFG.model_copy(update={"strategy": StrategyConfig(mode="maker", inside_min_spread_ticks=2)})
    res, f = _replay(b, [UP], cfg)
    assert f["price"].tolist()[:1] == pytest.approx([100.01])
    assert f["maker"].tolist()[:1] == [True]


def test_maker_fees_decide_the_edge():
    # Taker 5 bp, maker 0 on 10 / 10 bps barriers: a win pays 0 + 0, a loss 0 + 5 (the crossing stop).
    # p = 0.55: 0.55 * 10 - 0.45 * 15 = -1.25 bp, refused; p = 0.65: 6.5 - 5.25 = 1.25 bp, posted
    # (taker mode would need 0.65 * 10 - 0.35 * 10 - 10 > 0: refused).
    b = _book()
    b.level(T0 + 400 * MS, -1, 10_005, 1.0)
    cfg = CFG.model_copy(update={"exec": ExecConfig(taker_fee_bps=5.0, maker_fee_bps=0.0, decision_compute_ns=0)})
    res, _ = _replay(b, [(0.05, 0.4, 0.55)], cfg)
    assert res.core.risk.reject_counts[RejectReason.EDGE_BELOW_FEES] == 1
    res, _ = _replay(b, [(0.05, 0.3, 0.65)], cfg)  # 0.65 * 10 - 0.35 * 15 = 1.25 > 0
    assert res.core.risk.reject_counts[RejectReason.EDGE_BELOW_FEES] == 0
    assert res.core.posted == 1


def test_decision_compute_time_delays_the_posted_entry():
    # Sellers trade 100 shares at 1.004 ms: with no compute time our entry (arrived at 1 ms) is first
    # in line behind the book's 100 and gets nothing; sent 8 us later it arrives after that trade too.
    b = _book()
    b.trade(T0 + 1 * MS + 4_000, -1, 10_000, 100.0)
    b.trade(T0 + 100 * MS, -1, 10_000, 10.0)
    fast = CFG.model_copy(update={"exec": ExecConfig(latency_ms=1.0, maker_fee_bps=0.0, decision_compute_ns=0)})
    slow = CFG.model_copy(update={"exec": ExecConfig(latency_ms=1.0, maker_fee_bps=0.0, decision_compute_ns=8_000)})
    _, f = _replay(b, [UP], fast)
    assert f["reason"].tolist()[:1] == ["entry"] and f["qty"][0] == 10.0  # 100 ahead traded first
    res, f = _replay(b, [UP], slow)
    assert len(f["qty"]) == 0  # posted behind 100 that never trade again
    assert res.adapter.order(1).client_ts_ns == T0


def test_taker_mode_is_unchanged_by_the_maker_settings():
    b = _book()
    b.message(T0 + 100 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_002, 0.0), (0, -1, 10_013, 30.0), (0, 1, 10_012, 50.0))
    b.level(T0 + 200 * MS, 1, 9_990, 1.0)
    taker = CFG.model_copy(update={"strategy": StrategyConfig(mode="taker", inside_min_spread_ticks=2)})
    res, f = _replay(b, [UP], taker)
    assert f["reason"].tolist() == ["entry", "take_profit"]
    assert f["maker"].tolist() == [False, False]
    assert not isinstance(res.core, MakerCore)
    assert np.all(f["fee"] > 0)


@pytest.mark.parametrize(("model", "filled"), [("risk_averse", []), ("prob_power", [10.0])])
def test_the_configured_queue_model_decides_whether_cancels_move_the_entry_up(model, filled):
    b = _book()
    b.message(T0 + 50 * MS, (0, 1, 10_000, 200.0))  # 100 more join behind our entry
    b.message(T0 + 80 * MS, (0, 1, 10_000, 40.0))  # 160 cancelled: 40 left, ours among them
    b.trade(T0 + 100 * MS, -1, 10_000, 30.0)
    # risk_averse: cancels never help, 40 ahead, 30 traded: not filled. prob_power(2): half the cancels
    # (by the 100 ahead vs the 100 behind) were ahead, 20 ahead, 30 traded: all 10 of ours fill.
    cfg = CFG.model_copy(update={"exec": CFG.exec.model_copy(update={"queue_model": model, "queue_param": 2.0})})
    _, f = _replay(b, [UP], cfg)
    assert f["qty"][f["reason"] == "entry"].tolist() == filled
