from hypothesis import given
from hypothesis import strategies as st

from scalper.risk import ApprovedOrder, MarketState, OrderIntent, RiskConfig, RiskManager
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
