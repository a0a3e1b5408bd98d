import math

import numpy as np
import pytest

from scalper.risk import (
    ApprovedOrder,
    MarketState,
    OrderIntent,
    Rejection,
    RejectReason,
    RiskConfig,
    RiskManager,
    TradingState,
)

R = RejectReason
T0 = 1_700_000_000_000_000_000
SECOND_NS = 1_000_000_000
CFG = RiskConfig(
    max_position=10.0,
    max_order_notional=10_000.0,
    max_orders_per_second=2,
    stale_book_ms=1000.0,
    max_spread_ticks=5,
    max_drawdown=100.0,
    initial_equity=100_000.0,
)


def make_rm(cfg: RiskConfig = CFG) -> RiskManager:
    return RiskManager(cfg, tick_size=0.01, lot_size=0.1, fee_bps=1.0)


def market(ts_ns: int = T0, *, age_ns: int = 1_000_000, spread_ticks: int = 1, valid: bool = True) -> MarketState:
    return MarketState(ts_ns, 99.99, 100.0, spread_ticks, ts_ns - age_ns, valid)


def entry(side: int = 1, qty: float = 1.0, price: float = 100.0, ts_ns: int = T0) -> OrderIntent:
    return OrderIntent(ts_ns, side, qty, price, False, "entry")


def exit_(side: int = -1, qty: float = 1.0, price: float = 99.0, ts_ns: int = T0) -> OrderIntent:
    return OrderIntent(ts_ns, side, qty, price, True, "stop_loss")


def enter(rm: RiskManager, ts_ns: int, side: int, p: float, price: float):
    """``rm.enter_at_touch`` with no slippage on a valid one-tick-wide book whose touch is ``price``."""
    from scalper.features.kernels import I_IS_VALID, I_LAST_BOOK_TS, FeatureState

    book = FeatureState()
    t = round(price / 0.01)
    book.px[0, 0], book.px[1, 0] = (t - 1, t) if side > 0 else (t, t + 1)
    book.n[:] = 1
    book.ist[I_LAST_BOOK_TS], book.ist[I_IS_VALID] = ts_ns, 1
    return rm.enter_at_touch(ts_ns, side, p, 0.0, 0.01, book.px, book.n, book.ist)


def assert_rejected(result, reason: RejectReason, rm: RiskManager, count: int = 1) -> None:
    assert isinstance(result, Rejection)
    assert result.reason == reason, result.detail
    assert rm.reject_counts[reason] == count


def test_risk_manager_starts_active_with_zero_counts():
    rm = make_rm()
    assert rm.state == TradingState.ACTIVE
    assert rm.approved_count == 0
    assert rm.reject_counts == {reason: 0 for reason in RejectReason}
    assert rm.account.equity == 100_000.0


@pytest.mark.parametrize(("tick", "lot", "fee"), [(0.0, 0.1, 1.0), (0.01, -0.1, 1.0), (0.01, 0.1, math.nan)])
def test_risk_manager_with_bad_instrument_parameters_raises(tick, lot, fee):
    with pytest.raises(ValueError, match="tick_size|lot_size|fee_bps"):
        RiskManager(CFG, tick, lot, fee)


def test_check_of_valid_entry_approves_with_increasing_ids():
    rm = make_rm()
    first = rm.check(entry(), market())
    second = rm.check(entry(side=-1), market(T0 + 1))
    assert isinstance(first, ApprovedOrder) and isinstance(second, ApprovedOrder)
    assert (first.approval_id, second.approval_id) == (1, 2)
    assert first.intent == entry()
    assert rm.approved_count == 2
    assert sum(rm.reject_counts.values()) == 0


@pytest.mark.parametrize(
    ("intent", "match"),
    [
        (entry(side=0), "side=0"),
        (entry(side=2), "side=2"),
        (entry(qty=0.0), "qty=0.0"),
        (entry(qty=-1.0), "qty=-1.0"),
        (entry(qty=0.15), "lot_size=0.1"),
        (entry(qty=math.nan), "qty=nan"),
        (entry(qty=math.inf), "qty=inf"),
        (entry(price=math.nan), "limit_price=nan"),
        (entry(price=math.inf), "limit_price=inf"),
        (entry(price=0.0), "limit_price=0.0"),
        (exit_(side=0), "side=0"),
    ],
)
def test_check_of_malformed_intent_is_invalid_intent(intent, match):
    rm = make_rm()
    result = rm.check(intent, market())
    assert_rejected(result, RejectReason.INVALID_INTENT, rm)
    assert match in result.detail


def test_check_of_float_sum_lot_multiple_is_valid():
    rm = make_rm()
    assert isinstance(rm.check(entry(qty=0.1 + 0.2), market()), ApprovedOrder)


def test_check_when_halted_refuses_entries_and_exits():
    rm = make_rm()
    rm.on_fill(+1, 2.0, 100.0, 0.0)
    rm.set_state(TradingState.HALTED)
    assert_rejected(rm.check(entry(), market()), RejectReason.HALTED, rm, count=1)
    assert_rejected(rm.check(exit_(), market()), RejectReason.HALTED, rm, count=2)


def test_check_of_exit_when_flat_exceeds_position():
    rm = make_rm()
    result = rm.check(exit_(), market())
    assert_rejected(result, RejectReason.EXIT_EXCEEDS_POSITION, rm)
    assert "position=0.0" in result.detail


def test_check_of_exit_on_the_side_that_adds_exceeds_position():
    rm = make_rm()
    rm.on_fill(+1, 2.0, 100.0, 0.0)
    assert_rejected(rm.check(exit_(side=+1), market()), RejectReason.EXIT_EXCEEDS_POSITION, rm)


def test_check_of_exit_larger_than_position_exceeds_position():
    rm = make_rm()
    rm.on_fill(-1, 2.0, 100.0, 0.0)
    result = rm.check(exit_(side=+1, qty=2.1), market())
    assert_rejected(result, RejectReason.EXIT_EXCEEDS_POSITION, rm)
    assert "qty=2.1" in result.detail and "|position|=2.0" in result.detail


def test_check_of_exit_closing_float_sum_position_is_approved():
    rm = make_rm()
    rm.on_fill(+1, 0.1, 100.0, 0.0)
    rm.on_fill(+1, 0.2, 100.0, 0.0)
    assert isinstance(rm.check(exit_(qty=0.3), market()), ApprovedOrder)


def test_check_of_exit_passes_on_bad_book_and_in_reducing_only():
    rm = make_rm()
    rm.on_fill(+1, 2.0, 100.0, 0.0)
    rm.set_state(TradingState.REDUCING_ONLY)
    bad_market = market(age_ns=10 * SECOND_NS, spread_ticks=50, valid=False)
    result = rm.check(exit_(qty=2.0), bad_market)
    assert isinstance(result, ApprovedOrder)
    assert result.intent.qty == 2.0


def test_check_of_exits_is_not_rate_limited():
    rm = make_rm()
    rm.on_fill(+1, 5.0, 100.0, 0.0)
    for i in range(2):
        assert isinstance(rm.check(entry(ts_ns=T0 + i), market(T0 + i)), ApprovedOrder)
    results = [rm.check(exit_(qty=1.0), market(T0 + 2)) for _ in range(5)]
    assert all(isinstance(r, ApprovedOrder) for r in results)
    assert rm.reject_counts[RejectReason.MAX_ORDERS_PER_SECOND] == 0
    # Exits do not use up the entry budget either: the window still holds only the 2 entries.
    assert_rejected(rm.check(entry(), market(T0 + 3)), RejectReason.MAX_ORDERS_PER_SECOND, rm)


def test_check_of_entry_in_reducing_only_is_refused():
    rm = make_rm()
    rm.set_state(TradingState.REDUCING_ONLY)
    assert_rejected(rm.check(entry(), market()), RejectReason.REDUCING_ONLY, rm)


def test_check_of_entry_on_invalid_book_is_refused():
    rm = make_rm()
    assert_rejected(rm.check(entry(), market(valid=False)), RejectReason.BOOK_INVALID, rm)


def test_check_of_entry_on_book_exactly_at_stale_limit_is_approved():
    rm = make_rm()
    assert isinstance(rm.check(entry(), market(age_ns=1000 * 1_000_000)), ApprovedOrder)


def test_check_of_entry_on_book_older_than_stale_limit_is_stale_book():
    rm = make_rm()
    result = rm.check(entry(), market(age_ns=1000 * 1_000_000 + 1))
    assert_rejected(result, RejectReason.STALE_BOOK, rm)
    assert "stale_book_ms=1000.0" in result.detail


def test_check_of_entry_with_spread_above_limit_is_max_spread():
    rm = make_rm()
    assert isinstance(rm.check(entry(), market(spread_ticks=5)), ApprovedOrder)
    result = rm.check(entry(), market(T0 + SECOND_NS, spread_ticks=6))
    assert_rejected(result, RejectReason.MAX_SPREAD, rm)
    assert "spread_ticks=6" in result.detail and "max_spread_ticks=5" in result.detail


def test_check_of_entry_beyond_max_position_is_refused():
    rm = make_rm()
    rm.on_fill(+1, 8.0, 100.0, 0.0)
    result = rm.check(entry(qty=2.1), market())
    assert_rejected(result, RejectReason.MAX_POSITION, rm)
    assert "max_position=10.0" in result.detail
    assert isinstance(rm.check(entry(qty=2.0), market()), ApprovedOrder)


def test_check_of_entry_reducing_a_position_is_judged_on_the_result():
    # Long 8, sell 10: |8 - 10| = 2 <= 10 although the order alone would flip the position.
    rm = make_rm()
    rm.on_fill(+1, 8.0, 100.0, 0.0)
    assert isinstance(rm.check(entry(side=-1, qty=10.0), market()), ApprovedOrder)


def test_check_of_entry_reaching_max_position_by_float_sum_is_approved():
    rm = make_rm(CFG.model_copy(update={"max_position": 0.3}))
    rm.on_fill(+1, 0.1, 100.0, 0.0)
    rm.on_fill(+1, 0.1, 100.0, 0.0)
    assert isinstance(rm.check(entry(qty=0.1), market()), ApprovedOrder)


def test_check_of_entry_above_max_notional_is_refused():
    rm = make_rm()
    assert isinstance(rm.check(entry(qty=10.0, price=1000.0), market()), ApprovedOrder)
    result = rm.check(entry(qty=10.0, price=1000.1), market(T0 + 1))
    assert_rejected(result, RejectReason.MAX_ORDER_NOTIONAL, rm)
    assert "max_order_notional=10000.0" in result.detail


def test_check_of_entries_beyond_rate_in_trailing_second_is_refused():
    rm = make_rm()
    assert isinstance(rm.check(entry(), market(T0)), ApprovedOrder)
    assert isinstance(rm.check(entry(side=-1), market(T0 + 1)), ApprovedOrder)
    result = rm.check(entry(), market(T0 + SECOND_NS - 1))
    assert_rejected(result, RejectReason.MAX_ORDERS_PER_SECOND, rm)
    assert "max_orders_per_second=2" in result.detail
    # One second after the first approval it has left the window; the refusal did not enter it.
    assert isinstance(rm.check(entry(side=-1), market(T0 + SECOND_NS)), ApprovedOrder)
    assert_rejected(rm.check(entry(), market(T0 + SECOND_NS)), RejectReason.MAX_ORDERS_PER_SECOND, rm, count=2)
    assert rm.approved_count == 3


def test_check_rules_apply_in_documented_order():
    rm = make_rm()
    rm.set_state(TradingState.REDUCING_ONLY)
    # Invalid beats every state; reducing-only beats every book and size rule.
    assert_rejected(rm.check(entry(qty=0.0), market(valid=False)), RejectReason.INVALID_INTENT, rm)
    assert_rejected(rm.check(entry(qty=50.0), market(valid=False)), RejectReason.REDUCING_ONLY, rm)
    rm.set_state(TradingState.ACTIVE)
    stale = 10 * SECOND_NS
    assert_rejected(rm.check(entry(qty=50.0), market(valid=False, age_ns=stale)), RejectReason.BOOK_INVALID, rm)
    assert_rejected(rm.check(entry(qty=50.0), market(age_ns=stale, spread_ticks=9)), RejectReason.STALE_BOOK, rm)
    assert_rejected(rm.check(entry(qty=50.0), market(spread_ticks=9)), RejectReason.MAX_SPREAD, rm)
    assert_rejected(rm.check(entry(qty=50.0, price=1e6), market()), RejectReason.MAX_POSITION, rm)


def test_check_that_raises_is_risk_check_error():
    rm = make_rm()
    result = rm.check(entry(), None)
    assert_rejected(result, RejectReason.RISK_CHECK_ERROR, rm)
    assert result.detail.startswith("AttributeError(")
    result = rm.check(entry(qty="1"), market())
    assert_rejected(result, RejectReason.RISK_CHECK_ERROR, rm, count=2)
    assert result.detail.startswith("TypeError(")
    assert rm.approved_count == 0


def test_size_entry_uses_account_equity_and_position():
    # net b = (10 - 2) / (10 + 2) = 2/3; f* = 0.7 - 0.3 * 1.5 = 0.25; stake = 0.1 * 0.25 * 10_000 = 250
    # quote; loss per unit = 50_000 * 12 / 1e4 = 60 quote; 250 / 60 = 4.17 -> 4.1 lots of 0.1.
    cfg = CFG.model_copy(update={"kelly_fraction": 0.1, "initial_equity": 10_000.0, "max_order_notional": 1e6})
    rm = make_rm(cfg)
    qty, reason = rm.size_entry(0.7, 50_000.0)
    assert (qty, reason) == (pytest.approx(4.1), None)
    rm.on_fill(+1, 7.0, 50_000.0, 0.0)
    assert rm.size_entry(0.7, 50_000.0) == (pytest.approx(3.0), None)  # max_position 10 leaves 3
    rm.on_fill(+1, 3.0, 50_000.0, 0.0)
    assert rm.size_entry(0.7, 50_000.0) == (0.0, RejectReason.MAX_POSITION)
    assert sum(rm.reject_counts.values()) == 0 and rm.approved_count == 0  # a query: nothing counted


def test_size_entry_with_out_of_range_input_raises():
    with pytest.raises(ValueError, match="p="):
        make_rm().size_entry(math.nan, 100.0)


def test_enter_at_touch_with_edge_approves_a_sized_entry_at_the_touch():
    cfg = CFG.model_copy(update={"kelly_fraction": 0.1, "initial_equity": 10_000.0, "max_order_notional": 1e6})
    rm = make_rm(cfg)
    result = enter(rm, T0, -1, 0.7, 50_000.0)
    assert isinstance(result, ApprovedOrder)
    assert result.intent == OrderIntent(T0, -1, result.intent.qty, 50_000.0, False, "entry")
    assert result.intent.qty == pytest.approx(4.1)
    assert sum(rm.reject_counts.values()) == 0 and rm.approved_count == 1


def test_enter_at_touch_limit_is_slippage_past_the_touch():
    from scalper.features.kernels import I_IS_VALID, I_LAST_BOOK_TS, FeatureState

    rm = make_rm(CFG.model_copy(update={"max_order_notional": 1e6}))
    book = FeatureState()
    book.px[0, 0], book.px[1, 0] = 10_000, 10_002
    book.n[:] = 1
    book.ist[I_LAST_BOOK_TS], book.ist[I_IS_VALID] = T0, 1
    buy = rm.enter_at_touch(T0, 1, 0.7, 5e-4, 0.01, book.px, book.n, book.ist)
    sell = rm.enter_at_touch(T0 + 1, -1, 0.7, 5e-4, 0.01, book.px, book.n, book.ist)
    assert buy.intent.limit_price == pytest.approx(100.02 * 1.0005)
    assert sell.intent.limit_price == pytest.approx(100.00 * 0.9995)


@pytest.mark.parametrize(
    ("update", "p", "price", "reason", "match"),
    [
        ({"min_probability": 0.8}, 0.7, 100.0, RejectReason.BELOW_MIN_PROBABILITY, "min_probability=0.8"),
        ({}, 0.5, 100.0, RejectReason.KELLY_NON_POSITIVE, "f*=0"),
        ({}, 0.6, 100.0, RejectReason.EDGE_BELOW_FEES, "expected edge="),
        ({"max_order_notional": 5.0}, 0.7, 100.0, RejectReason.MAX_ORDER_NOTIONAL, "max_order_notional=5.0"),
        ({"initial_equity": 1.0}, 0.7, 50_000.0, RejectReason.KELLY_NON_POSITIVE, "below one lot"),
    ],
)
def test_enter_at_touch_with_zero_size_is_counted_rejection(update, p, price, reason, match):
    rm = make_rm(CFG.model_copy(update=update))
    result = enter(rm, T0, 1, p, price)
    assert_rejected(result, reason, rm)
    assert match in result.detail
    assert result.intent.qty == 0.0


def test_enter_at_touch_at_max_position_is_max_position():
    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    result = enter(rm, T0, 1, 0.7, 100.0)
    assert_rejected(result, RejectReason.MAX_POSITION, rm)
    assert "max_position=10.0" in result.detail


def test_enter_at_touch_with_nan_probability_is_risk_check_error():
    rm = make_rm()
    result = enter(rm, T0, 1, math.nan, 100.0)
    assert_rejected(result, RejectReason.RISK_CHECK_ERROR, rm)
    assert "ValueError" in result.detail


def test_kill_switch_on_mark_at_max_drawdown_moves_to_reducing_only():
    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.mark(90.01)  # drawdown 99.9 < 100
    assert rm.state == TradingState.ACTIVE
    rm.mark(90.0)  # drawdown 100 reaches the limit
    assert rm.account.drawdown == pytest.approx(100.0)
    assert rm.state == TradingState.REDUCING_ONLY


def test_kill_switch_on_fill_loss_moves_to_reducing_only():
    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.on_fill(-1, 5.0, 80.0, 0.0)  # realizes -100 and marks the rest at 80: drawdown 200
    assert rm.account.realized_pnl == pytest.approx(-100.0)
    assert rm.state == TradingState.REDUCING_ONLY


def test_kill_switch_refuses_entries_but_exits_still_pass():
    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.mark(85.0)
    assert rm.state == TradingState.REDUCING_ONLY
    assert_rejected(rm.check(entry(side=-1), market()), RejectReason.REDUCING_ONLY, rm)
    partial = rm.check(exit_(qty=4.0, price=84.0), market())
    assert isinstance(partial, ApprovedOrder)
    rm.on_fill(-1, 4.0, 85.0, 0.0)
    final = rm.check(exit_(qty=6.0, price=84.0), market())
    assert isinstance(final, ApprovedOrder)
    rm.on_fill(-1, 6.0, 85.0, 0.0)
    assert rm.account.position == 0.0
    assert rm.account.realized_pnl == pytest.approx(-150.0)


def test_kill_switch_does_not_reset_when_equity_recovers():
    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.mark(85.0)
    rm.mark(120.0)
    assert rm.account.drawdown == 0.0
    assert rm.state == TradingState.REDUCING_ONLY


def test_kill_switch_does_not_loosen_operator_halt():
    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.set_state(TradingState.HALTED)
    rm.mark(50.0)
    assert rm.state == TradingState.HALTED


def test_set_state_by_operator_reactivates_and_rejects_unknown_state():
    rm = make_rm()
    rm.set_state(TradingState.REDUCING_ONLY)
    rm.set_state(TradingState.ACTIVE)
    assert rm.state == TradingState.ACTIVE
    assert isinstance(rm.check(entry(), market()), ApprovedOrder)
    with pytest.raises(ValueError, match="7"):
        rm.set_state(7)
    assert rm.state == TradingState.ACTIVE


def test_every_reject_reason_is_reachable_and_counted_once():
    rm = make_rm()
    rm.check(entry(qty=0.0), market())  # INVALID_INTENT
    rm.check(entry(), None)  # RISK_CHECK_ERROR
    rm.check(exit_(), market())  # EXIT_EXCEEDS_POSITION
    rm.check(entry(), market(valid=False))  # BOOK_INVALID
    rm.check(entry(), market(age_ns=2 * SECOND_NS))  # STALE_BOOK
    rm.check(entry(), market(spread_ticks=6))  # MAX_SPREAD
    rm.check(entry(qty=11.0), market())  # MAX_POSITION
    rm.check(entry(qty=10.0, price=2000.0), market())  # MAX_ORDER_NOTIONAL
    rm.check(entry(), market(T0))
    rm.check(entry(side=-1), market(T0 + 1))
    rm.check(entry(), market(T0 + 2))  # MAX_ORDERS_PER_SECOND
    enter(rm, T0, 1, 0.5, 100.0)  # KELLY_NON_POSITIVE
    enter(rm, T0, 1, 0.6, 100.0)  # EDGE_BELOW_FEES
    min_p = make_rm(CFG.model_copy(update={"min_probability": 0.9}))
    enter(min_p, T0, 1, 0.7, 100.0)  # BELOW_MIN_PROBABILITY
    rm.set_state(TradingState.REDUCING_ONLY)
    rm.check(entry(), market(T0 + 3))  # REDUCING_ONLY
    rm.set_state(TradingState.HALTED)
    rm.check(entry(), market(T0 + 4))  # HALTED

    counts = {r: rm.reject_counts[r] + min_p.reject_counts[r] for r in RejectReason}
    assert counts == {reason: 1 for reason in RejectReason}
    assert rm.approved_count == 2


def test_kill_switch_latch_is_not_undone_by_the_key_and_only_the_operator_releases_it():
    from scalper.risk.control import Source

    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.mark(85.0)
    assert rm.impose(Source.KEY, TradingState.ACTIVE) == TradingState.REDUCING_ONLY
    assert rm.impose(Source.RISK, TradingState.ACTIVE) == TradingState.REDUCING_ONLY  # a latch never loosens itself
    assert_rejected(rm.check(entry(side=-1), market()), RejectReason.REDUCING_ONLY, rm)
    rm.impose(Source.KEY, TradingState.HALTED)  # the key may make it safer
    assert rm.state == TradingState.HALTED
    assert rm.set_state(TradingState.ACTIVE) == TradingState.HALTED  # the operator releases the latches, not the key
    assert rm.impose(Source.KEY, TradingState.ACTIVE) == TradingState.ACTIVE
    assert rm.control.slot(Source.RISK) == TradingState.ACTIVE


def test_mark_many_latches_the_kill_switch_like_mark():
    import numpy as np

    from scalper.risk.control import Source

    rm = make_rm()
    rm.on_fill(+1, 10.0, 100.0, 0.0)
    rm.mark_many(np.array([95.0, 85.0, 120.0]))
    assert rm.state == TradingState.REDUCING_ONLY and rm.control.slot(Source.RISK) == TradingState.REDUCING_ONLY


def test_refusals_by_p_are_the_refusals_of_the_sizing_by_p_alone():
    # tp = sl = 10 bps, fee 1 bp a side: p = 0.5 has no Kelly edge, p = 0.6 no edge after 2 bps of fees.
    rm = make_rm(CFG.model_copy(update={"min_probability": 0.3}))
    p = np.array([0.2, 0.5, 0.6, 0.7, 1.0, math.nan, 1.5])
    got = rm.refusals_by_p(p)
    want = [R.BELOW_MIN_PROBABILITY, R.KELLY_NON_POSITIVE, R.EDGE_BELOW_FEES, 0, 0, 0, 0]
    assert got.dtype == np.int8 and got.tolist() == [int(w) for w in want]
    out = np.full(len(p), 99, dtype=np.int8)
    assert rm.refusals_by_p(p, out=out) is out and out.tolist() == got.tolist()
    assert sum(rm.reject_counts.values()) == 0  # screening counts nothing
    with pytest.raises(ValueError, match="int8"):
        rm.refusals_by_p(p, out=np.zeros(len(p), dtype=np.int64))


def test_count_refusals_adds_to_the_reason_and_refuses_a_negative_count():
    rm = make_rm()
    rm.count_refusals(RejectReason.EDGE_BELOW_FEES, 3)
    rm.count_refusals(RejectReason.EDGE_BELOW_FEES)
    rm.count_refusals(RejectReason.KELLY_NON_POSITIVE, 0)
    assert rm.reject_counts == {r: (4 if r == RejectReason.EDGE_BELOW_FEES else 0) for r in RejectReason}
    with pytest.raises(ValueError, match="n=-1"):
        rm.count_refusals(RejectReason.EDGE_BELOW_FEES, -1)
    with pytest.raises(ValueError):
        rm.count_refusals(99, 1)
    assert rm.reject_counts[RejectReason.EDGE_BELOW_FEES] == 4
