"""Engine core with a scripted model: entries, take-profit, stop-loss and time-stop exits."""

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from builders import T0, TickBuilder

from scalper.backtest.driver import fills_table, run_backtest
from scalper.engine.config import EngineConfig
from scalper.exec.config import ExecConfig
from scalper.models.inference import ModelSet
from scalper.risk.config import RiskConfig
from scalper.risk.intent import RejectReason, TradingState

MS = 1_000_000
UP = (0.05, 0.05, 0.9)
DOWN = (0.9, 0.05, 0.05)
FLAT = (0.0, 1.0, 0.0)


class ScriptedPredictor:
    """Answers the scripted probabilities one decision at a time, then 'flat' forever."""

    def __init__(self, script, horizon_s=5.0):
        self.script = [np.array(p, dtype=np.float32) for p in script]
        self.horizon_ns = int(horizon_s * 1e9)
        self.card = SimpleNamespace(dead_zone_ticks=0.0, horizon_s=horizon_s)

    def predict(self, features):
        return self.script.pop(0) if self.script else np.array(FLAT, dtype=np.float32)


# No decision compute time: the hand-worked times below are the decision's plus the latency.
CFG = EngineConfig(
    risk=RiskConfig(take_profit_bps=10.0, stop_loss_bps=10.0, max_position=10.0),
    exec=ExecConfig(latency_ms=1.0, taker_fee_bps=0.0, decision_compute_ns=0),
)


def _replay(builder, script, cfg=CFG):
    # One decision at a time, so the script's k-th answer is the k-th decision's (a batched replay
    # predicts only the decisions that can enter; tests/unit/test_batched_replay.py covers it).
    models = ModelSet(Path("."), (ScriptedPredictor(script),))
    res = run_backtest(builder.build(), models, cfg, batch_predictions=False)
    return res, fills_table(res)


def _book():
    return TickBuilder().snapshot(T0, [(10_000, 100.0), (9_999, 100.0)], [(10_001, 100.0), (10_002, 100.0)])


def test_decision_compute_time_delays_the_decision_s_orders_only():
    # The entry decided at T0 leaves 8 us later and fills at T0 + 1 ms + 8 us; the take-profit exit
    # reacts to a price watch, not a decision, and goes out at the watch's event time as before.
    b = _book()
    b.message(T0 + 100 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_002, 0.0), (0, -1, 10_013, 30.0), (0, 1, 10_012, 50.0))
    b.level(T0 + 200 * MS, 1, 9_990, 1.0)
    cfg = CFG.model_copy(update={"exec": ExecConfig(latency_ms=1.0, taker_fee_bps=0.0, decision_compute_ns=8_000)})
    res, f = _replay(b, [UP], cfg)
    assert f["ts_ns"].tolist() == [T0 + 1 * MS + 8_000, T0 + 101 * MS]
    assert f["price"].tolist() == pytest.approx([100.01, 100.12])
    assert res.core.adapter.order(1).client_ts_ns == T0  # the intent keeps its decision time


def test_long_entry_fills_at_ask_and_exits_at_take_profit():
    b = _book()
    # the market moves up: asks lifted to 100.13, bid to 100.12 >= 100.01 * 1.001
    b.message(T0 + 100 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_002, 0.0), (0, -1, 10_013, 30.0), (0, 1, 10_012, 50.0))
    b.level(T0 + 200 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [UP])
    assert f["side"].tolist() == [1, -1]
    assert f["qty"].tolist() == [10.0, 10.0]
    assert f["price"].tolist() == pytest.approx([100.01, 100.12])
    assert f["reason"].tolist() == ["entry", "take_profit"]
    assert f["ts_ns"].tolist() == [T0 + 1 * MS, T0 + 101 * MS]
    assert res.core.risk.account.realized_pnl == pytest.approx(10 * 0.11)
    assert res.core.risk.account.position == 0.0


def test_short_entry_exits_at_stop_loss_on_the_ask():
    b = _book()
    b.message(T0 + 100 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_002, 0.0), (0, -1, 10_020, 30.0))  # ask to 100.20
    b.level(T0 + 200 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [DOWN])
    assert f["side"].tolist() == [-1, 1]
    assert f["price"].tolist() == pytest.approx([100.00, 100.20])
    assert f["reason"].tolist() == ["entry", "stop_loss"]
    assert res.core.risk.account.realized_pnl == pytest.approx(-10 * 0.20)


def test_position_without_price_move_exits_at_the_horizon():
    b = _book()
    b.level(T0 + 100 * MS, 1, 9_990, 1.0)
    b.level(T0 + 6_000 * MS, 1, 9_991, 1.0)
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "time_stop"]
    # time stop = entry fill (T0 + 1 ms) + 5 s horizon; the exit fills one latency later
    assert f["ts_ns"].tolist() == [T0 + 1 * MS, T0 + 5_002 * MS]
    assert f["price"].tolist() == pytest.approx([100.01, 100.00])


def test_open_position_is_closed_at_end_of_data():
    b = _book()
    b.level(T0 + 100 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "end_of_data"]
    assert res.core.risk.account.position == 0.0


def test_no_trade_when_model_is_not_confident_enough():
    b = _book()
    b.level(T0 + 100 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [(0.3, 0.4, 0.3)])
    assert len(f["qty"]) == 0
    assert res.core.risk.reject_counts[RejectReason.KELLY_NON_POSITIVE] == 1


def test_entry_still_in_flight_at_end_of_data_is_closed():
    b = _book()
    b.level(T0 + 100, 1, 9_990, 1.0)  # decision at T0, data ends before the 1 ms order latency
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "end_of_data"]
    assert res.core.risk.account.position == 0.0


def test_exit_levels_use_the_average_price_of_a_multi_level_entry():
    b = TickBuilder().snapshot(T0, [(10_000, 100.0)], [(10_001, 4.0), (10_003, 100.0)])
    # avg entry = (4 * 100.01 + 6 * 100.03) / 10 = 100.022; take-profit at 100.022 * 1.001 = 100.122 -> 10013 ticks
    b.message(T0 + 100 * MS, (0, -1, 10_001, 0.0), (0, -1, 10_003, 0.0), (0, -1, 10_013, 30.0), (0, 1, 10_012, 50.0))
    b.message(T0 + 200 * MS, (0, -1, 10_013, 0.0), (0, -1, 10_014, 30.0), (0, 1, 10_013, 50.0))
    b.level(T0 + 300 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [UP])
    assert f["price"].tolist() == pytest.approx([100.01, 100.03, 100.13])
    assert f["reason"].tolist() == ["entry", "entry", "take_profit"]
    assert f["ts_ns"][-1] == T0 + 201 * MS  # not at 100 ms: 100.12 is below the averaged take-profit


def test_drawdown_kill_switch_trips_on_unrealized_loss_and_still_exits():
    cfg = CFG.model_copy(
        update={
            "risk": CFG.risk.model_copy(update={"max_drawdown": 1.0, "stop_loss_bps": 500.0, "take_profit_bps": 500.0})
        }
    )
    b = _book()
    # bid falls 30 ticks: unrealized loss ~1.6 > 1 quote at the mid, far from the 5 % take-profit and stop-loss
    b.message(T0 + 100 * MS, (0, 1, 10_000, 0.0), (0, 1, 9_999, 0.0), (0, 1, 9_970, 50.0))
    b.level(T0 + 300 * MS, -1, 10_050, 1.0)  # decision at 250 ms marks the position
    b.level(T0 + 6_000 * MS, -1, 10_051, 1.0)  # the time stop still closes it
    res, f = _replay(b, [UP, UP, UP], cfg)
    assert res.core.risk.state == TradingState.REDUCING_ONLY
    assert f["reason"].tolist() == ["entry", "time_stop"]
    assert res.core.risk.account.position == 0.0
    assert res.core.risk.reject_counts[RejectReason.REDUCING_ONLY] >= 1


def test_exit_waits_while_the_book_is_crossed_and_goes_out_when_it_uncrosses():
    b = _book()
    b.level(T0 + 100 * MS, 1, 9_990, 1.0)
    b.level(T0 + 4_000 * MS, 1, 10_005, 5.0)  # crossed before the 5 s time stop is due
    b.level(T0 + 5_600 * MS, 1, 9_991, 1.0)  # time stop fires here: book crossed, no exit order
    b.level(T0 + 7_000 * MS, 1, 10_005, 0.0)  # uncrossed: the waiting exit goes out
    b.level(T0 + 8_000 * MS, 1, 9_992, 1.0)
    res, f = _replay(b, [UP])
    assert f["reason"].tolist() == ["entry", "time_stop"]
    assert f["ts_ns"].tolist() == [T0 + 1 * MS, T0 + 7_001 * MS]
    assert f["price"].tolist() == pytest.approx([100.01, 100.00])


def test_stale_book_and_wide_spread_block_entries():
    stale = CFG.model_copy(update={"risk": CFG.risk.model_copy(update={"stale_book_ms": 100.0})})
    b = _book()
    b.trade(T0 + 400 * MS, 1, 10_001, 1.0)  # trades do not refresh the book's age
    b.level(T0 + 600 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [FLAT, UP], stale)
    assert len(f["qty"]) == 0
    assert res.core.risk.reject_counts[RejectReason.STALE_BOOK] == 1
    wide = CFG.model_copy(update={"risk": CFG.risk.model_copy(update={"max_spread_ticks": 1})})
    b = TickBuilder().snapshot(T0, [(10_000, 100.0)], [(10_002, 100.0)])
    b.level(T0 + 100 * MS, 1, 9_990, 1.0)
    res, f = _replay(b, [UP], wide)
    assert res.core.risk.reject_counts[RejectReason.MAX_SPREAD] == 1


class CountingPredictor(ScriptedPredictor):
    def __init__(self):
        super().__init__([])
        self.calls = 0

    def predict(self, features):
        self.calls += 1
        return np.array(FLAT, dtype=np.float32)


@pytest.mark.parametrize("record", [False, True])
def test_a_core_without_records_asks_no_model_while_it_cannot_enter(record):
    from scalper.engine.core import EngineCore, OpenPosition
    from scalper.exec.simulated import SimulatedExchange
    from scalper.features.kernels import FeatureState
    from scalper.ingest.tickfile import Instrument
    from scalper.risk.limits import RiskManager

    predictor = CountingPredictor()
    state = FeatureState()
    core = EngineCore(
        Instrument("TEST", "X", 0.01, 1.0, "test"),
        state,
        ModelSet(Path("."), (predictor,)),
        RiskManager(CFG.risk, 0.01, 1.0, 0.0),
        SimulatedExchange(MS, 0.0, 0.01, 1.0),
        1.0,
        10.0,
        10.0,
        record=record,
    )
    assert core.on_decision(T0, state.feat) is True and predictor.calls == 1  # flat: the model is asked
    core.position = OpenPosition(1, 10_010, 9_990, T0 + 5_000_000_000)
    # In position: the daemon's core (no records) predicts nothing; a backtest's keeps every prediction.
    assert core.on_decision(T0 + 250 * MS, state.feat) is record
    assert predictor.calls == (2 if record else 1)


class _Twin:
    """A daemon-style core (no records) on a kernel state, driven event by event from a TickBuilder,
    with the daemon's latency component (``ahead``: decisions prepared between frames)."""

    def __init__(self, script, record=False, prepare=True):
        from scalper.engine.core import EngineCore
        from scalper.engine.prepared import PreparedDecisions
        from scalper.exec.simulated import SimulatedExchange
        from scalper.features.kernels import FeatureState
        from scalper.ingest.tickfile import Instrument
        from scalper.risk.limits import RiskManager

        self.predictor = CountingScript(script)
        self.state = FeatureState()
        self.venue = SimulatedExchange(MS, 0.0, 0.01, 1.0)
        self.core = EngineCore(
            Instrument("TEST", "X", 0.01, 1.0, "test"),
            self.state,
            ModelSet(Path("."), (self.predictor,)),
            RiskManager(CFG.risk, 0.01, 1.0, 0.0),
            self.venue,
            1.0,
            10.0,
            10.0,
            record=record,
        )
        self.ahead = PreparedDecisions(self.core, prepare=prepare)
        self.asked = []

    skips_inert = False  # the core's Decisions: the general path, recording whether the models were asked

    def decide(self, g, i):
        self.asked.append(self.core.on_decision(g, self.state.feat))

    def on_invalid(self):
        pass

    def run(self, builder):
        from scalper.features.kernels import EventColumns

        d = builder.build()
        ticks = np.rint(d.price / 0.01).astype(np.int64)
        self.core.drive(EventColumns(d.ts_event, d.kind, d.side, ticks, d.size, d.flags), self)


class CountingScript(ScriptedPredictor):
    def __init__(self, script):
        super().__init__(script)
        self.calls = 0

    def predict(self, features):
        self.calls += 1
        return super().predict(features)


def _entry(core):
    acc = core.risk.account
    return acc.position, acc.avg_entry_price, core.risk.approved_count


def _started(twin):
    # The book at T0 (a grid point), then an event that takes the decision at T0 (the model says
    # flat): the next grid point is T0 + 250 ms.
    twin.run(_book().level(T0 + 100 * MS, 1, 9_990, 1.0))
    assert twin.asked == [True] and twin.predictor.calls == 1
    twin.asked.clear()
    return twin


def test_a_decision_prepared_between_frames_is_taken_without_asking_the_model():
    prepared, plain = _started(_Twin([FLAT, UP])), _started(_Twin([FLAT, UP]))
    assert prepared.ahead.prepare_decision() == pytest.approx(0.9) and prepared.predictor.calls == 2
    for twin in (prepared, plain):
        twin.run(TickBuilder().level(T0 + 300 * MS, 1, 9_991, 1.0))  # after the grid point: decide at T0 + 250 ms
    assert prepared.asked == [False] and prepared.predictor.calls == 2 and prepared.ahead.hits == 1
    assert plain.asked == [True] and plain.predictor.calls == 2 and plain.ahead.hits == 0
    # The same entry as the decision that asked the model: sized, checked, sent and filled.
    assert _entry(prepared.core) == _entry(plain.core) == (10.0, pytest.approx(100.01), 1)


def test_an_event_before_the_grid_point_makes_the_decision_ask_the_model():
    # The prepared row is not the decision's: the general path decides, exactly as without the component.
    twin, plain = _started(_Twin([FLAT, FLAT, UP])), _started(_Twin([FLAT, UP], prepare=False))
    assert twin.ahead.prepare_decision() == 0.0  # the scripted flat call: no up or down probability
    for t in (twin, plain):
        t.run(TickBuilder().level(T0 + 200 * MS, 1, 10_000, 50.0).level(T0 + 300 * MS, 1, 9_991, 1.0))
    assert twin.asked == plain.asked == [True] and twin.predictor.calls == 3 and twin.ahead.hits == 0
    assert twin.core.risk.approved_count == 1  # the decision acted on the model's fresh answer (UP)
    assert _entry(twin.core) == _entry(plain.core) and twin.core.risk.reject_counts == plain.core.risk.reject_counts


def test_new_models_are_asked_even_for_a_prepared_row():
    twin = _started(_Twin([FLAT, FLAT]))
    twin.ahead.prepare_decision()
    fresh = CountingScript([UP])
    twin.core.models = ModelSet(Path("."), (fresh,))
    twin.run(TickBuilder().level(T0 + 300 * MS, 1, 9_991, 1.0))
    assert fresh.calls == 1 and twin.ahead.hits == 0 and twin.core.risk.approved_count == 1


def test_only_a_flat_core_without_records_prepares():
    from scalper.engine.core import OpenPosition

    recording = _started(_Twin([FLAT], record=True))
    assert recording.ahead.prepare_decision() is None and recording.predictor.calls == 1
    twin = _started(_Twin([FLAT]))
    twin.core.position = OpenPosition(1, 10_010, 9_990, T0 + 5_000_000_000)
    twin.core.risk.account.restore(1.0, 100.0, 0.0, 0.0)
    assert twin.ahead.prepare_decision() is None and twin.predictor.calls == 1


def test_the_core_takes_its_signal_from_the_models_unless_the_component_prepares():
    twin = _Twin([UP], prepare=False)
    assert twin.core.signal == twin.core.predict  # keep-warm only: the core's own signal, no wrapper
    p, side, horizon_ns, classes, asked = twin.core.signal(twin.state.feat)
    assert (p, side, horizon_ns, classes.tolist(), asked) == (pytest.approx(0.9), 1, 5_000_000_000, [2], True)
    preparing = _Twin([UP])
    assert preparing.core.signal == preparing.ahead.signal
    # Nothing prepared: the component answers with the models' own signal.
    p, side, _, _, asked = preparing.core.signal(preparing.state.feat)
    assert (p, side, asked) == (pytest.approx(0.9), 1, True)
    assert preparing.ahead.hits == 0 and preparing.predictor.calls == 1


class _Recorder:
    """Decisions that only record what drive hands them (skips_inert chosen per test)."""

    def __init__(self, skips_inert):
        self.skips_inert = skips_inert
        self.log = []

    def decide(self, g, i):
        self.log.append(("decide", g))

    def on_invalid(self):
        self.log.append(("invalid",))

    def before(self, code):
        self.log.append(("before", code))

    def after(self):
        self.log.append(("after",))


@pytest.mark.parametrize("skips_inert", [False, True])
def test_drive_calls_before_and_after_around_each_code_only_for_a_replay_that_skips(skips_inert):
    from scalper.features.kernels import CODE_DECISION, EventColumns

    twin = _Twin([FLAT])
    d = _book().level(T0 + 100 * MS, 1, 9_990, 1.0).level(T0 + 600 * MS, 1, 9_991, 1.0).build()
    events = EventColumns(d.ts_event, d.kind, d.side, np.rint(d.price / 0.01).astype(np.int64), d.size, d.flags)
    rec = _Recorder(skips_inert)
    twin.core.drive(events, rec)
    decisions = [e for e in rec.log if e[0] == "decide"]
    # The grid point T0 + 250 ms passed with no event: the event at T0 + 600 ms decides at T0 + 500 ms.
    assert decisions == [("decide", T0), ("decide", T0 + 500 * MS)]
    if not skips_inert:
        assert rec.log == decisions
    else:  # each code between its before and after: here every code is a decision
        assert rec.log == [e for g in decisions for e in (("before", CODE_DECISION), g, ("after",))]
