from hypothesis import given
from hypothesis import strategies as st

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
        intent = rm.entry_intent(ts_ns, side, p, 100.0)
        if not isinstance(intent, OrderIntent):
            continue
        # Kelly caps |position| + qty, so even an entry adding to the position passes both size checks.
        result = rm.check(intent, MarketState(ts_ns, 99.99, 100.0, 1, ts_ns, True))
        assert isinstance(result, ApprovedOrder), result.detail
        rm.on_fill(side, intent.qty, 100.0, 0.0)
        assert not exceeds(abs(rm.account.position), max_position, LOT)


entries = st.lists(
    st.tuples(
        st.sampled_from([1, -1]),  # side
        st.one_of(st.floats(0.0, 1.0), st.just(0.5), st.sampled_from([float("nan"), -0.1, 1.5])),  # p
        st.one_of(st.floats(1.0, 200.0), st.sampled_from([0.0, -5.0, float("inf")])),  # limit price
        st.integers(0, 400_000_000),  # ns since the previous decision
        st.integers(0, 2_000_000_000),  # book age, ns
        st.integers(1, 12),  # spread, ticks
        st.booleans(),  # book valid
        st.sampled_from([0, 0, 0, 1, 2]),  # trading state
        st.booleans(),  # fill the approved entry
    ),
    max_size=30,
)


@given(
    steps=entries,
    max_position=st.floats(0.05, 5.0),
    max_order_notional=st.floats(5.0, 500.0),
    max_orders_per_second=st.integers(1, 4),
    min_probability=st.sampled_from([0.0, 0.55]),
)
def test_enter_equals_check_of_entry_intent(
    steps, max_position, max_order_notional, max_orders_per_second, min_probability
):
    # The hot path's one compiled call and the two public steps, on twin managers fed the same fills.
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
    fused, steps_rm = (RiskManager(cfg, tick_size=0.01, lot_size=LOT, fee_bps=1.0) for _ in range(2))
    ts_ns = T0
    for side, p, price, gap_ns, age_ns, spread, valid, state, fill in steps:
        ts_ns += gap_ns
        market = MarketState(ts_ns, price - 0.01, price, spread, ts_ns - age_ns, valid)
        for rm in (fused, steps_rm):
            rm.set_state(TradingState(state))
        got = fused.enter(ts_ns, side, p, price, market)
        intent = steps_rm.entry_intent(ts_ns, side, p, price)
        want = intent if isinstance(intent, Rejection) else steps_rm.check(intent, market)
        assert type(got) is type(want)
        if isinstance(want, Rejection):
            assert (got.reason, got.intent, got.detail) == (want.reason, want.intent, want.detail)
        else:
            assert (got.intent, got.approval_id) == (want.intent, want.approval_id)
            if fill:
                for rm in (fused, steps_rm):
                    rm.on_fill(side, want.intent.qty, price, 0.01)
        assert fused.reject_counts == steps_rm.reject_counts and fused.approved_count == steps_rm.approved_count


@given(
    steps=st.lists(
        st.tuples(
            st.sampled_from([1, -1]),  # side
            st.floats(0.0, 1.0),  # p
            st.integers(9_000, 11_000),  # best bid, ticks
            st.integers(0, 12),  # spread, ticks (0: locked)
            st.booleans(),
            st.booleans(),  # bid side, ask side present
            st.integers(0, 2_000_000_000),  # book age, ns
            st.booleans(),  # book valid
            st.integers(0, 400_000_000),  # ns since the previous decision
        ),
        max_size=30,
    ),
    slippage_bps=st.floats(0.0, 20.0),
    max_orders_per_second=st.integers(1, 4),
)
def test_enter_at_touch_equals_enter_at_the_touch_limit(steps, slippage_bps, max_orders_per_second):
    from scalper.features.kernels import I_IS_VALID, I_LAST_BOOK_TS, FeatureState

    cfg = RiskConfig(
        max_position=2.0,
        max_order_notional=150.0,
        max_orders_per_second=max_orders_per_second,
        take_profit_bps=20.0,
        stop_loss_bps=10.0,
        stale_book_ms=1000.0,
        max_spread_ticks=8,
        max_drawdown=1e9,
    )
    tick, slippage = 0.01, slippage_bps / 1e4
    at_touch, given_limit = (RiskManager(cfg, tick_size=tick, lot_size=LOT, fee_bps=1.0) for _ in range(2))
    book = FeatureState()
    ts_ns = T0
    for side, p, bid, spread, has_bid, has_ask, age_ns, valid, gap_ns in steps:
        ts_ns += gap_ns
        book.px[0, 0], book.px[1, 0] = bid, bid + spread
        book.n[:] = (int(has_bid), int(has_ask))
        book.ist[I_LAST_BOOK_TS], book.ist[I_IS_VALID] = ts_ns - age_ns, int(valid)
        touch = book.best_ask_tick if side > 0 else book.best_bid_tick
        limit = touch * tick * (1.0 + side * slippage)
        got = at_touch.enter_at_touch(ts_ns, side, p, slippage, tick, book.px, book.n, book.ist)
        want = given_limit.enter(ts_ns, side, p, limit, MarketState.of_book(ts_ns, book.px, book.n, book.ist, tick))
        assert type(got) is type(want)
        if isinstance(want, Rejection):
            assert (got.reason, got.intent, got.detail) == (want.reason, want.intent, want.detail)
        else:
            assert (got.intent, got.approval_id) == (want.intent, want.approval_id)
        assert at_touch.reject_counts == given_limit.reject_counts
