"""The comparison market maker (backtest/maker_peer.py) on hand-made event sequences: exact fills and times."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.backtest.maker_peer import MakerPeerParams, local_clock_offset, local_times, run_maker_peer
from scalper.exec import passive as px
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE, Instrument, TickData

INST = Instrument("TEST", "X", 1.0, 1.0, "hand-made")
# Grid 100 ns, entry and response 10 ns, maker rebate 1 bp.
PARAMS = MakerPeerParams(step_ns=100, entry_ns=10, response_ns=10, max_position=5, maker_bps=-1.0)


def data(rows: list[tuple]) -> TickData:
    """rows: (ts_event, kind, side, price, size[, ts_recv]); ts_recv defaults to ts_event."""
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    recv = np.array([r[5] if len(r) > 5 else r[0] for r in rows], dtype=np.int64)
    return TickData(
        INST,
        ts,
        recv,
        np.array([r[1] for r in rows], dtype=np.uint8),
        np.array([r[2] for r in rows], dtype=np.int8),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([r[4] for r in rows], dtype=np.float64),
        np.zeros(len(rows), dtype=np.uint8),
    )


def book(ts: int, bid: float = 99.0, bid_size: float = 5.0, ask: float = 101.0, ask_size: float = 3.0) -> list[tuple]:
    return [(ts, KIND_CLEAR, 0, 0.0, 0.0), (ts, KIND_BOOK, 1, bid, bid_size), (ts, KIND_BOOK, -1, ask, ask_size)]


def fills(res) -> list[tuple]:
    f = res.fills
    return list(
        zip(
            *(f[k].tolist() for k in ("exch_ts", "local_ts", "side", "price_tick", "qty_lots", "order_id")), strict=True
        )
    )


def test_a_quote_fills_only_when_trades_took_the_queue_ahead_and_one_lot():
    rows = [
        *book(0),
        (50, KIND_TRADE, 1, 101.0, 3.0),  # takes the 3 lots ahead of our sell: not filled yet
        (60, KIND_TRADE, 1, 101.0, 1.0),  # our lot
        (250, KIND_BOOK, 1, 99.0, 5.0),
    ]
    res = run_maker_peer(data(rows), PARAMS)
    # Decision at 0: buy id 0 @99, sell id 1 @101, both reach the exchange at 10.
    assert fills(res) == [(60, 70, -1, 101, 1, 1)]
    assert res.position_lots == -1
    assert res.balance == pytest.approx(101.0)
    assert res.fee == pytest.approx(-101.0 * 1e-4)
    # Decisions at 0, 100 and 200; at 100 the sell is seen filled and a new one goes out.
    assert res.steps == 3 and res.submitted == 3


def test_a_trade_through_the_price_fills_and_a_trade_before_arrival_does_not():
    rows = [
        *book(0),
        (5, KIND_TRADE, -1, 98.0, 1.0),  # before our buy arrives at 10
        (30, KIND_TRADE, -1, 98.0, 1.0),  # through our buy at 99 (5 lots ahead): fills
        (150, KIND_BOOK, 1, 99.0, 5.0),
    ]
    res = run_maker_peer(data(rows), PARAMS)
    assert fills(res) == [(30, 40, 1, 99, 1, 0)]
    assert res.position_lots == 1 and res.balance == pytest.approx(-99.0)


def test_the_best_ask_falling_to_a_resting_buy_fills_it():
    rows = [*book(0), (40, KIND_BOOK, -1, 99.0, 2.0), (150, KIND_BOOK, -1, 99.0, 2.0)]
    res = run_maker_peer(data(rows), PARAMS)
    assert fills(res) == [(40, 50, 1, 99, 1, 0)]


def test_a_post_only_order_that_would_cross_on_arrival_is_expired_and_requoted():
    rows = [
        *book(0),
        # At 5, before our orders arrive at 10: the bid 99 leaves, a bid at 98 and an ask at 99 appear.
        (5, KIND_BOOK, 1, 99.0, 0.0),
        (5, KIND_BOOK, 1, 98.0, 4.0),
        (5, KIND_BOOK, -1, 99.0, 2.0),
        (150, KIND_BOOK, 1, 98.0, 4.0),
    ]
    res = run_maker_peer(data(rows), PARAMS)
    # 0: buy 0 @99 (expired at 10), sell 1 @101; 100: buy 2 @98, sell 1 canceled and sell 3 @99.
    assert fills(res) == [] and res.submitted == 4


def test_the_position_limit_stops_the_side_that_adds_to_it():
    p = MakerPeerParams(step_ns=100, entry_ns=10, response_ns=10, max_position=1)
    rows = [*book(0)]
    for k in range(5):  # a sell trade through the bid in every step
        rows.append((30 + 100 * k, KIND_TRADE, -1, 98.0, 1.0))
    rows.append((600, KIND_BOOK, 1, 99.0, 5.0))
    res = run_maker_peer(data(rows), p)
    # Only the first buy fills: from the decision at 100 on the position is at the limit.
    assert fills(res) == [(30, 40, 1, 99, 1, 0)]
    assert res.position_lots == 1


def test_the_local_clock_is_shifted_so_no_event_arrives_before_it_happened():
    rows = [(1000, KIND_BOOK, 1, 99.0, 5.0, 400), (1010, KIND_BOOK, -1, 101.0, 3.0, 450)]
    assert local_clock_offset(data(rows)) == 600
    rows_late = [(1000, KIND_BOOK, 1, 99.0, 5.0, 1004)]
    assert local_clock_offset(data(rows_late)) == 0


def test_a_decision_sees_only_the_book_that_reached_the_local_side():
    # The ask at 100 happens at 40 but reaches the local side at 140: the decision at 100 still quotes 101.
    rows = [*book(0), (40, KIND_BOOK, -1, 100.0, 1.0, 140), (250, KIND_BOOK, 1, 99.0, 5.0, 250)]
    res = run_maker_peer(data(rows), replace(PARAMS, local_offset_ns=0))
    # 0: buy 0, sell 1 @101. 100: unchanged. 200: the local ask is 100, sell 1 canceled, sell 2 @100.
    assert res.submitted == 3 and fills(res) == []


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"step_ns": 0}, "step_ns"),
        ({"entry_ns": -1}, "entry_ns must be >= 0; got -1"),
        ({"response_ns": (5, -2)}, "response_ns must be >= 0 ns everywhere; got min -2"),
        ({"feed_latency_ns": -3}, "feed_latency_ns must be >= 0; got -3"),
        ({"max_position": 0}, "max_position"),
        ({"queue_model": 99}, "queue model"),
    ],
)
def test_bad_settings_are_refused_naming_them(change, match):
    with pytest.raises(ValueError, match=match):
        run_maker_peer(data(book(0)), MakerPeerParams(**change))


def test_the_feed_latency_is_per_event_where_recorded_and_a_constant_where_not():
    # ts_recv == ts_event marks an unknown receive time (tick-file schema): those rows get the constant.
    rows = [
        (1000, KIND_BOOK, 1, 99.0, 5.0, 1000),
        (1010, KIND_BOOK, -1, 101.0, 3.0, 1300),
        (1020, KIND_TRADE, 1, 101.0, 1.0, 1100),
    ]
    d = data(rows)
    assert local_clock_offset(d) == 0  # the unrecorded row's 0 does not count as a recorded latency
    assert local_times(d, 0, 25).tolist() == [1025, 1300, 1100]
    assert local_times(d, 7, 0).tolist() == [1000, 1307, 1107]


def _sell_prices(res) -> list[int]:
    """Prices of the sell orders submitted, in order (all still in their exchange slots)."""
    oi = res.exchange.oi
    return [int(oi[k, px.O_PRICE]) for k in range(res.submitted) if oi[k, px.O_SIDE] < 0]


def test_lobster_like_data_runs_on_the_exchange_clock_plus_the_constant_feed_latency():
    # No receive stamps: with a 60 ns feed latency the ask at 40 reaches the strategy at 100, in time
    # for the decision at 100 (ties: data first); 1 ns later it would not be.
    rows = [*book(0), (40, KIND_BOOK, -1, 100.0, 1.0), (250, KIND_BOOK, 1, 99.0, 5.0)]
    on_time = run_maker_peer(data(rows), replace(PARAMS, feed_latency_ns=60))
    late = run_maker_peer(data(rows), replace(PARAMS, feed_latency_ns=61))
    assert on_time.local_offset_ns == 0
    # book(0) reaches the strategy at 60/61: the first decision is at 100 in both runs.
    assert _sell_prices(on_time) == [100] and _sell_prices(late) == [101, 100]


_ROW = st.tuples(
    st.integers(0, 60),  # gap to the previous event, ns
    st.sampled_from([KIND_BOOK, KIND_BOOK, KIND_BOOK, KIND_TRADE, KIND_CLEAR]),
    st.sampled_from([1, -1]),
    st.integers(0, 4),  # distance from the mid tick 100, ticks
    st.integers(0, 3).map(float),  # size, lots (0 deletes a level)
    st.one_of(st.just(None), st.integers(-150, 400)),  # feed latency, ns; None = not recorded
)


@settings(max_examples=150, deadline=None)
@given(st.lists(_ROW, min_size=1, max_size=60), st.integers(0, 150), st.integers(0, 30), st.integers(0, 30))
def test_no_order_reacts_to_an_event_before_that_event_reaches_the_strategy(rows, feed, entry, resp):
    # Property over the runner: every order is priced at the touch of the local book made of exactly
    # the rows that reached the strategy by its decision time (nothing later), and fills only after
    # it reached the exchange; every fill is seen locally only a response latency after it happened.
    ts, out = 0, []
    for gap, kind, side, dist, size, lat in rows:
        ts += gap
        price = 100.0 + dist if side < 0 else 100.0 - dist
        if kind == KIND_TRADE:
            price = 100.0 + side * dist  # an aggressor buy trades on the ask side
        if lat == 0:
            lat = 1  # a recorded latency of 0 would read as unrecorded
        recv = ts if lat is None else ts + lat
        out.append((ts, kind, 0 if kind == KIND_CLEAR else side, price, size, recv))
    out = [(0, KIND_BOOK, 1, 99.0, 2.0, 0), (0, KIND_BOOK, -1, 101.0, 2.0, 0), *out]
    d = data(out)
    p = replace(PARAMS, feed_latency_ns=feed, entry_ns=entry, response_ns=resp, step_ns=50)
    res = run_maker_peer(d, p)
    assert res.submitted <= 64  # every order is still in its exchange slot
    local = local_times(d, local_clock_offset(d), feed)
    order = np.argsort(local, kind="stable")
    ex = res.exchange
    for k in range(res.submitted):
        t, s, price = (int(ex.oi[k, c]) for c in (px.O_TS_SUBMIT, px.O_SIDE, px.O_PRICE))
        assert t % p.step_ns == 0
        bids: dict[float, float] = {}
        asks: dict[float, float] = {}
        for i in order:
            if local[i] > t:
                break
            if d.kind[i] == KIND_CLEAR:
                bids.clear()
                asks.clear()
            elif d.kind[i] == KIND_BOOK:
                (bids if d.side[i] > 0 else asks)[float(d.price[i])] = float(d.size[i])
        live_bids = [q for q, v in bids.items() if v > 0]
        live_asks = [q for q, v in asks.items() if v > 0]
        assert live_bids and live_asks and max(live_bids) < min(live_asks)
        assert price == (max(live_bids) if s > 0 else min(live_asks))
    f = px.fills_table(ex)
    for oid, t_exch, t_local in zip(f["order_id"], f["ts_exch"], f["ts_local"], strict=True):
        assert t_exch >= ex.oi[oid, px.O_TS_SUBMIT] + entry
        assert t_local == t_exch + resp


def test_sampled_latencies_are_drawn_per_request_and_response_and_fixed_by_the_seed():
    rows = [*book(0)]
    for k in range(20):  # a sell trade through the bid and a buy trade through the ask in every step
        rows += [(30 + 100 * k, KIND_TRADE, -1, 98.0, 1.0), (31 + 100 * k, KIND_TRADE, 1, 102.0, 1.0)]
    rows.append((2_500, KIND_BOOK, 1, 99.0, 5.0))
    p = replace(PARAMS, entry_ns=(1, 2, 3, 4), response_ns=(5, 50), max_position=100, latency_seed=1)
    a, b = run_maker_peer(data(rows), p), run_maker_peer(data(rows), p)
    c = run_maker_peer(data(rows), replace(p, latency_seed=2))
    assert fills(a) == fills(b) and len(fills(a)) == 40
    lat = a.fills["local_ts"] - a.fills["exch_ts"]
    # A draw of 5 after one of 50 is lifted to the earlier answer's local time (FIFO): 5 <= lat <= 50.
    assert lat.min() == 5 and lat.max() == 50 and (np.diff(a.fills["local_ts"]) >= 0).all()
    assert fills(a) != fills(c)
    oi = a.exchange.oi
    arrivals = oi[: a.submitted, px.O_TS_ACCEPT] - oi[: a.submitted, px.O_TS_SUBMIT]
    assert set(arrivals.tolist()) <= {1, 2, 3, 4}
