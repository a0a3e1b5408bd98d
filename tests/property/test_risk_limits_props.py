import math

import risk_oracle
from hypothesis import given
from hypothesis import strategies as st

from scalper.features.kernels import I_IS_VALID, I_LAST_BOOK_TS, FeatureState
from scalper.risk import ApprovedOrder, MarketState, OrderIntent, Rejection, RiskConfig, RiskManager, TradingState
from scalper.risk.lots import exceeds

T0 = 1_700_000_000_000_000_000
LOT = 0.01

orders = st.lists(
    st.tuples(
        st.sampled_from([1, -1]),  # side
        st.integers(1, 3000),  # qty in lots
        st.booleans(),  # is_exit
        st.floats(50.0, 150.0),  # limit price, quote
        st.integers(0, 400_000_000),  # ns since the previous order
    ),
    max_size=40,
)


@given(orders=orders, max_position=st.floats(0.05, 20.0))
def test_approved_entry_never_takes_position_beyond_max_position(orders, max_position):
    cfg = RiskConfig(max_position=max_position, max_order_notional=1e6, max_drawdown=1e9)
    rm = RiskManager(cfg, tick_size=0.01, lot_size=LOT, fee_bps=1.0)
    ts_ns = T0
    for side, lots, is_exit, price, gap_ns in orders:
        ts_ns += gap_ns
        intent = OrderIntent(ts_ns, side, lots * LOT, price, is_exit, "stop_loss" if is_exit else "entry")
        held_before = abs(rm.account.position)
        result = rm.check(intent, MarketState(ts_ns, price - 0.01, price, 1, ts_ns, True))
        if not isinstance(result, ApprovedOrder):
            continue
        rm.on_fill(side, intent.qty, price, 0.0)
        if is_exit:
            assert abs(rm.account.position) < held_before
        assert not exceeds(abs(rm.account.position), max_position, LOT)


@given(
    probabilities=st.lists(st.floats(0.0, 1.0), max_size=20),
    sides=st.lists(st.sampled_from([1, -1]), min_size=20, max_size=20),
    max_position=st.floats(0.05, 20.0),
    max_order_notional=st.floats(10.0, 5000.0),
)
def test_kelly_sized_entries_pass_size_limits_and_stay_within_them(
    probabilities, sides, max_position, max_order_notional
):
    cfg = RiskConfig(
        max_position=max_position,
        max_order_notional=max_order_notional,
        max_orders_per_second=1000,
        take_profit_bps=20.0,
        max_drawdown=1e9,
    )
    rm = RiskManager(cfg, tick_size=0.01, lot_size=LOT, fee_bps=1.0)
    for i, (p, side) in enumerate(zip(probabilities, sides, strict=False)):
        ts_ns = T0 + i
        qty, _ = rm.size_entry(p, 100.0)
        if qty == 0.0:
            continue
        intent = OrderIntent(ts_ns, side, qty, 100.0, False, "entry")
        # Kelly caps |position| + qty, so even an entry adding to the position passes both size checks.
        result = rm.check(intent, MarketState(ts_ns, 99.99, 100.0, 1, ts_ns, True))
        assert isinstance(result, ApprovedOrder), result.detail
        rm.on_fill(side, intent.qty, 100.0, 0.0)
        assert not exceeds(abs(rm.account.position), max_position, LOT)


@given(
    orders=st.lists(
        st.tuples(
            st.sampled_from([1, -1]),  # side
            st.integers(1, 600),  # qty in lots
            st.booleans(),  # is_exit
            st.floats(1.0, 200.0),  # limit price
            st.integers(0, 400_000_000),  # ns since the previous order
            st.integers(0, 2_000_000_000),  # book age, ns
            st.integers(0, 12),  # spread, ticks
            st.booleans(),  # book valid
            st.sampled_from([0, 0, 0, 1, 2]),  # trading state
            st.booleans(),  # fill the approved order
        ),
        max_size=30,
    ),
    max_position=st.floats(0.05, 5.0),
    max_order_notional=st.floats(5.0, 500.0),
    max_orders_per_second=st.integers(1, 4),
)
def test_check_equals_the_plain_python_rules(orders, max_position, max_order_notional, max_orders_per_second):
    cfg = RiskConfig(
        max_position=max_position,
        max_order_notional=max_order_notional,
        max_orders_per_second=max_orders_per_second,
        stale_book_ms=1000.0,
        max_spread_ticks=8,
        max_drawdown=1e9,
    )
    rm = RiskManager(cfg, tick_size=0.01, lot_size=LOT, fee_bps=1.0)
    oracle = risk_oracle.OracleRisk(cfg, LOT, 1.0)
    ts_ns = T0
    for side, lots, is_exit, price, gap_ns, age_ns, spread, valid, state, fill in orders:
        ts_ns += gap_ns
        rm.set_state(TradingState(state))
        qty = lots * LOT
        want = oracle.check(
            TradingState(state), rm.account.position, side, qty, price, is_exit, ts_ns, spread, ts_ns - age_ns, valid
        )
        intent = OrderIntent(ts_ns, side, qty, price, is_exit, "stop_loss" if is_exit else "entry")
        got = rm.check(intent, MarketState(ts_ns, price - 0.01, price, spread, ts_ns - age_ns, valid))
        assert (got.reason if isinstance(got, Rejection) else None) == want
        if want is None and fill:
            rm.on_fill(side, qty, price, 0.0)


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([1, -1]),  # side
            st.one_of(st.floats(0.0, 1.0), st.just(0.5), st.sampled_from([math.nan, -0.1, 1.5])),  # p
            st.integers(9_000, 11_000),  # best bid, ticks
            st.integers(0, 12),  # spread, ticks (0: locked)
            st.booleans(),
            st.booleans(),  # bid side, ask side present
            st.integers(0, 2_000_000_000),  # book age, ns
            st.booleans(),  # book valid
            st.sampled_from([0, 0, 0, 1, 2]),  # trading state
            st.integers(0, 400_000_000),  # ns since the previous decision
            st.booleans(),  # fill the approved entry
        ),
        max_size=30,
    ),
    slippage_bps=st.floats(0.0, 20.0),
    max_position=st.floats(0.05, 5.0),
    max_order_notional=st.floats(5.0, 500.0),
    max_orders_per_second=st.integers(1, 4),
    min_probability=st.sampled_from([0.0, 0.55]),
)
def test_enter_at_touch_equals_the_plain_python_sizing_and_rules(
    steps, slippage_bps, max_position, max_order_notional, max_orders_per_second, min_probability
):
    # The engine's one compiled entry call against the oracle: same limit, size, reason, counts, ids.
    cfg = RiskConfig(
        max_position=max_position,
        max_order_notional=max_order_notional,
        max_orders_per_second=max_orders_per_second,
        min_probability=min_probability,
        take_profit_bps=20.0,
        stop_loss_bps=10.0,
        stale_book_ms=1000.0,
        max_spread_ticks=8,
        max_drawdown=1e9,
    )
    tick, slippage = 0.01, slippage_bps / 1e4
    rm = RiskManager(cfg, tick_size=tick, lot_size=LOT, fee_bps=1.0)
    oracle = risk_oracle.OracleRisk(cfg, LOT, 1.0)
    counts = dict(rm.reject_counts)
    approved = 0
    book = FeatureState()
    ts_ns = T0
    for side, p, bid, spread, has_bid, has_ask, age_ns, valid, state, gap_ns, fill in steps:
        ts_ns += gap_ns
        book.px[0, 0], book.px[1, 0] = bid, bid + spread
        book.n[:] = (int(has_bid), int(has_ask))
        book.ist[I_LAST_BOOK_TS], book.ist[I_IS_VALID] = ts_ns - age_ns, int(valid)
        rm.set_state(TradingState(state))
        want_qty, want_limit, want_reason = oracle.enter_at_touch(
            TradingState(state),
            rm.account.equity,
            rm.account.position,
            ts_ns,
            side,
            p,
            slippage,
            tick,
            bid if has_bid else None,
            bid + spread if has_ask else None,
            ts_ns - age_ns,
            valid,
        )
        got = rm.enter_at_touch(ts_ns, side, p, slippage, tick, book.px, book.n, book.ist)
        assert got.intent == OrderIntent(ts_ns, side, want_qty, want_limit, False, "entry")
        if want_reason is None:
            approved += 1
            assert isinstance(got, ApprovedOrder) and got.approval_id == approved
            if fill:
                rm.on_fill(side, want_qty, want_limit, 0.01)
        else:
            assert isinstance(got, Rejection) and got.reason == want_reason, got.detail
            assert got.detail  # every refusal explains itself
            counts[want_reason] += 1
        assert rm.reject_counts == counts and rm.approved_count == approved
