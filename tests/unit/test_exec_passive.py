"""Each rule of the passive simulated exchange (exec/passive.py) on tiny hand-made event sequences."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.exec import passive as px
from scalper.exec.queue import QUEUE_PROB_POWER, QUEUE_RISK_AVERSE
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE

TICK = 0.5
LOT = 0.1
ENTRY = 1_000  # ns
RESP = 300  # ns
BUY, SELL = 1, -1


def make(bids=((100, 1.0),), asks=((102, 0.5),), model=QUEUE_RISK_AVERSE, param=0.0, **kw):
    """Exchange with a book at ts 0: bids/asks as (tick, size in base units); 1 lot = 0.1."""
    opts = {"maker_fee_bps": -1.0, "taker_fee_bps": 5.0, **kw}
    ex = px.new_exchange(
        tick_size=TICK,
        lot_size=LOT,
        entry_latency_ns=ENTRY,
        response_latency_ns=RESP,
        queue_model=model,
        queue_param=param,
        **opts,
    )
    for tick, size in bids:
        assert px.on_event(ex, 0, KIND_BOOK, 1, tick, size) == px.OK
    for tick, size in asks:
        assert px.on_event(ex, 0, KIND_BOOK, -1, tick, size) == px.OK
    return ex


def book(ex, ts, side, tick, size):
    assert px.on_event(ex, ts, KIND_BOOK, side, tick, size) == px.OK


def trade(ex, ts, aggressor, tick, size):
    assert px.on_event(ex, ts, KIND_TRADE, aggressor, tick, size) == px.OK


def order(ex, oid):
    return ex.oi[oid % ex.oi.shape[0]]


def front(ex, oid):
    return ex.of[oid % ex.of.shape[0], px.OF_FRONT]


def responses(ex, until=10**18):
    out = []
    r = px.next_response(ex, until)
    while r >= 0:
        out.append(tuple(int(v) for v in ex.ri[r]))
        r = px.next_response(ex, until)
    return out


def fills(ex):
    return px.fills_table(ex)


def test_post_only_joins_the_back_and_fills_only_past_the_queue_ahead():
    ex = make()  # bid 100 x 10 lots
    oid = px.submit(ex, 5_000, BUY, 100, 2, px.TIF_GTX)
    assert oid == 0 and order(ex, oid)[px.O_STATUS] == px.ST_NEW
    trade(ex, 6_000, SELL, 100, 0.3)  # before arrival at 6 000: a tie goes to the market event first
    assert order(ex, oid)[px.O_STATUS] == px.ST_NEW
    book(ex, 6_000, 1, 100, 0.7)
    trade(ex, 7_000, SELL, 100, 0.6)  # arrives at 6 000 with 7 lots ahead; 6 traded -> 1 ahead
    assert order(ex, oid)[px.O_STATUS] == px.ST_ACCEPTED
    assert front(ex, oid) == pytest.approx(1.0)
    assert fills(ex)["qty"].size == 0
    trade(ex, 8_000, SELL, 100, 0.2)  # 1 ahead, then 1 of ours
    f = fills(ex)
    assert f["ts_exch"].tolist() == [8_000] and f["ts_local"].tolist() == [8_300]
    assert f["qty"].tolist() == [1] and f["maker"].tolist() == [True] and f["side"].tolist() == [BUY]
    assert f["queue_at_post"].tolist() == pytest.approx([7.0]) and f["queue_at_fill"].tolist() == pytest.approx([1.0])
    assert f["fee"][0] == pytest.approx(100 * TICK * 1 * LOT * -1.0 / 1e4)  # a rebate
    o = order(ex, oid)
    assert (o[px.O_STATUS], o[px.O_FILLED], o[px.O_LEAVES]) == (px.ST_PARTIALLY_FILLED, 1, 1)
    trade(ex, 9_000, SELL, 100, 0.1)
    assert order(ex, oid)[px.O_STATUS] == px.ST_FILLED
    got = [(r[px.R_TS_EXCH], r[px.R_TS_LOCAL], r[px.R_REQ], r[px.R_STATUS]) for r in responses(ex)]
    assert got == [
        (6_000, 6_300, px.REQ_NEW, px.ST_ACCEPTED),
        (8_000, 8_300, px.REQ_NONE, px.ST_PARTIALLY_FILLED),
        (9_000, 9_300, px.REQ_NONE, px.ST_FILLED),
    ]


def test_responses_are_seen_only_after_the_response_latency():
    ex = make()
    px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)
    trade(ex, 2_000, SELL, 99, 0.1)
    assert px.next_response(ex, 1_299) == -1
    assert len(responses(ex, 1_300)) == 1


def test_post_only_that_would_cross_is_expired_on_arrival():
    ex = make()  # best ask 102
    oid = px.submit(ex, 0, BUY, 102, 1, px.TIF_GTX)
    assert px.flush_requests(ex, 1_000) == px.OK
    assert order(ex, oid)[px.O_STATUS] == px.ST_EXPIRED
    assert fills(ex)["qty"].size == 0
    assert responses(ex)[0][px.R_STATUS] == px.ST_EXPIRED


def test_post_only_is_judged_against_the_book_at_arrival_not_at_sending():
    ex = make()
    oid = px.submit(ex, 0, SELL, 101, 1, px.TIF_GTX)  # does not cross bid 100 when sent
    book(ex, 500, 1, 101, 0.4)  # bid moves to 101 before the order arrives at 1 000
    px.flush_requests(ex, 1_000)
    assert order(ex, oid)[px.O_STATUS] == px.ST_EXPIRED


def test_limit_takes_what_crosses_then_rests_and_impact_holds_until_the_level_updates():
    ex = make(asks=((102, 0.2), (103, 0.1), (105, 1.0)))
    a = px.submit(ex, 0, BUY, 103, 5, px.TIF_GTC)  # takes 2 @102 and 1 @103, rests 2 @103
    px.flush_requests(ex, 1_000)
    f = fills(ex)
    assert f["price_tick"].tolist() == [102, 103] and f["qty"].tolist() == [2, 1]
    assert f["maker"].tolist() == [False, False]
    assert f["fee"].tolist() == pytest.approx([102 * TICK * 2 * LOT * 5e-4, 103 * TICK * 1 * LOT * 5e-4])
    o = order(ex, a)
    assert (o[px.O_STATUS], o[px.O_FILLED], o[px.O_LEAVES]) == (px.ST_PARTIALLY_FILLED, 3, 2)
    assert front(ex, a) == 0.0
    b = px.submit(ex, 2_000, BUY, 103, 1, px.TIF_IOC)  # the book still shows 102 and 103, but we took them
    px.flush_requests(ex, 3_000)
    assert order(ex, b)[px.O_STATUS] == px.ST_CANCELED and order(ex, b)[px.O_FILLED] == 0
    book(ex, 3_500, -1, 102, 0.2)  # the replayed book refreshes 102: available again
    c = px.submit(ex, 3_500, BUY, 102, 5, px.TIF_IOC)
    px.flush_requests(ex, 4_500)
    assert order(ex, c)[px.O_FILLED] == 2
    # The resting remainder at 103 waits for a trade or a new lower best ask (hftbacktest's rules).
    assert order(ex, a)[px.O_STATUS] == px.ST_PARTIALLY_FILLED
    book(ex, 5_000, -1, 101, 0.1)
    assert order(ex, a)[px.O_STATUS] == px.ST_FILLED
    assert fills(ex)["maker"].tolist()[-1] and fills(ex)["price_tick"].tolist()[-1] == 103


def test_ioc_takes_up_to_its_price_and_cancels_the_rest():
    ex = make(asks=((102, 0.2), (104, 1.0)))
    oid = px.submit(ex, 0, BUY, 103, 5, px.TIF_IOC)
    px.flush_requests(ex, 1_000)
    assert fills(ex)["qty"].tolist() == [2]
    o = order(ex, oid)
    assert (o[px.O_STATUS], o[px.O_FILLED], o[px.O_LEAVES], o[px.O_QTY]) == (px.ST_CANCELED, 2, 3, 5)
    assert ex.ip[px.I_N_LIVE] == 0


def test_trade_through_the_price_fills_everything_left():
    ex = make()
    oid = px.submit(ex, 0, BUY, 100, 3, px.TIF_GTX)
    trade(ex, 2_000, SELL, 99, 0.1)  # sold below our bid: the whole level traded
    f = fills(ex)
    assert f["qty"].tolist() == [3] and f["ts_exch"].tolist() == [2_000] and order(ex, oid)[px.O_STATUS] == px.ST_FILLED


def test_trade_on_the_other_side_or_without_aggressor_does_nothing():
    ex = make()
    oid = px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)
    trade(ex, 2_000, BUY, 99, 5.0)
    trade(ex, 2_000, 0, 99, 5.0)
    assert order(ex, oid)[px.O_STATUS] == px.ST_ACCEPTED and front(ex, oid) == pytest.approx(10.0)


def test_opposite_best_moving_through_the_price_fills_as_maker():
    ex = make(bids=((100, 1.0),), asks=((103, 0.5),))
    oid = px.submit(ex, 0, SELL, 102, 1, px.TIF_GTX)
    book(ex, 2_000, 1, 101, 0.3)  # best bid 101 < 102: nothing
    assert order(ex, oid)[px.O_STATUS] == px.ST_ACCEPTED
    book(ex, 3_000, 1, 102, 0.3)
    f = fills(ex)
    assert f["ts_exch"].tolist() == [3_000] and f["price_tick"].tolist() == [102] and f["maker"].tolist() == [True]


def test_risk_averse_queue_ignores_cancels_but_not_a_level_smaller_than_the_front():
    ex = make(bids=((100, 3.0),))  # 30 lots
    oid = px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)
    book(ex, 1_500, 1, 100, 4.0)  # 10 lots join behind us
    book(ex, 2_000, 1, 100, 3.2)  # 8 cancelled: risk-averse says all behind
    assert front(ex, oid) == pytest.approx(30.0)
    book(ex, 3_000, 1, 100, 0.8)
    assert front(ex, oid) == pytest.approx(8.0)


def test_power_queue_model_advances_on_cancels():
    ex = make(bids=((100, 1.0),), model=QUEUE_PROB_POWER, param=2.0)  # 10 lots ahead
    oid = px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)
    book(ex, 1_500, 1, 100, 3.0)  # 20 lots join behind
    book(ex, 2_000, 1, 100, 2.0)  # 10 cancelled: p(behind) = 400/500 -> 2 of them were ahead
    assert front(ex, oid) == pytest.approx(8.0)


def test_clear_empties_the_book_and_keeps_the_queue():
    ex = make()
    oid = px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)
    assert px.on_event(ex, 2_000, KIND_CLEAR, 0, 0, 0.0) == px.OK
    assert ex.n.tolist() == [0, 0] and front(ex, oid) == pytest.approx(10.0)
    book(ex, 2_000, -1, 101, 0.1)  # snapshot: best ask 101 does not reach our bid at 100
    assert order(ex, oid)[px.O_STATUS] == px.ST_ACCEPTED


def test_cancel_of_a_live_order_and_of_a_filled_one():
    ex = make()
    a = px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)
    b = px.submit(ex, 0, SELL, 103, 1, px.TIF_GTX)
    assert px.cancel(ex, 1_500, a) == px.OK
    trade(ex, 2_000, BUY, 104, 0.1)  # fills b
    assert px.cancel(ex, 2_000, b) == px.OK
    px.flush_requests(ex, 3_000)
    assert order(ex, a)[px.O_STATUS] == px.ST_CANCELED
    got = [(r[px.R_ID], r[px.R_REQ], r[px.R_STATUS], r[px.R_REJECTED], r[px.R_TS_EXCH]) for r in responses(ex)]
    assert got == [
        (a, px.REQ_NEW, px.ST_ACCEPTED, 0, 1_000),
        (b, px.REQ_NEW, px.ST_ACCEPTED, 0, 1_000),
        (b, px.REQ_NONE, px.ST_FILLED, 0, 2_000),
        (a, px.REQ_CANCEL, px.ST_CANCELED, 0, 2_500),
        (b, px.REQ_CANCEL, px.ST_FILLED, 1, 3_000),
    ]
    assert px.cancel(ex, 3_000, 7) == px.ERR_UNKNOWN_ORDER


def test_modify_keeps_the_queue_for_a_smaller_size_and_loses_it_otherwise():
    ex = make(bids=((100, 1.0),))
    oid = px.submit(ex, 0, BUY, 100, 3, px.TIF_GTX)
    book(ex, 1_500, 1, 100, 1.5)
    trade(ex, 1_600, SELL, 100, 0.4)  # 10 -> 6 ahead
    assert px.modify(ex, 2_000, oid, 100, 2) == px.OK
    px.flush_requests(ex, 3_000)
    o = order(ex, oid)
    assert front(ex, oid) == pytest.approx(6.0) and (o[px.O_QTY], o[px.O_LEAVES]) == (2, 2)
    assert px.modify(ex, 3_000, oid, 100, 4) == px.OK  # larger: back of the queue (15 lots shown)
    px.flush_requests(ex, 4_000)
    assert front(ex, oid) == pytest.approx(15.0) and order(ex, oid)[px.O_TS_ACCEPT] == 4_000
    assert px.modify(ex, 4_000, oid, 99, 4) == px.OK  # new price: joins 99, empty
    px.flush_requests(ex, 5_000)
    assert front(ex, oid) == 0.0 and order(ex, oid)[px.O_PRICE] == 99
    assert px.modify(ex, 5_000, oid, 102, 4) == px.OK  # post-only across the ask: expired
    px.flush_requests(ex, 6_000)
    assert order(ex, oid)[px.O_STATUS] == px.ST_EXPIRED and ex.ip[px.I_N_LIVE] == 0
    assert [r[px.R_REQ] for r in responses(ex)] == [px.REQ_NEW] + [px.REQ_MODIFY] * 4


def test_two_orders_at_one_price_share_a_trade_and_keep_time_priority():
    ex = make(bids=((100, 0.2),))
    a = px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX)  # 2 ahead
    book(ex, 1_500, 1, 100, 0.4)
    b = px.submit(ex, 1_500, BUY, 100, 1, px.TIF_GTX)  # 4 ahead
    trade(ex, 3_000, SELL, 100, 0.3)  # 3 lots: 2 ahead of a, then a's lot; nothing left for b
    f = fills(ex)
    assert f["order_id"].tolist() == [a] and f["qty"].tolist() == [1]
    assert front(ex, b) == pytest.approx(1.0)


def test_capacities_and_bad_orders_are_errors():
    ex = make(order_capacity=2)
    assert px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX) == 0
    assert px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX) == 1
    assert px.submit(ex, 0, BUY, 100, 1, px.TIF_GTX) == px.ERR_ORDERS_FULL
    assert ex.ip[px.I_ERROR] == px.ERR_ORDERS_FULL
    with pytest.raises(OverflowError, match="order slots full"):
        px.raise_for(px.ERR_ORDERS_FULL)
    assert px.submit(ex, 0, 0, 100, 1, px.TIF_GTX) == px.ERR_BAD_ORDER
    assert px.submit(ex, 0, BUY, 100, 0, px.TIF_GTX) == px.ERR_BAD_ORDER
    with pytest.raises(ValueError, match="bad order"):
        px.raise_for(px.ERR_BAD_ORDER)
    px.raise_for(3)
    fl = make(fill_capacity=1)
    px.submit(fl, 0, BUY, 100, 2, px.TIF_GTX)
    px.submit(fl, 0, BUY, 100, 2, px.TIF_GTX)
    px.flush_requests(fl, 1_000)
    ts = np.array([2_000], dtype=np.int64)
    code = px.run_events(
        fl,
        ts,
        np.array([KIND_TRADE], np.uint8),
        np.array([SELL], np.int8),
        np.array([99], np.int64),
        np.array([1.0]),
        0,
        1,
    )
    assert code == px.ERR_FILLS_FULL


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"tick_size": 0.0}, "tick_size must be a finite number > 0; got 0.0"),
        ({"entry_latency_ns": -1}, "entry_latency_ns must be >= 0; got -1"),
        ({"taker_fee_bps": -1.0}, "taker_fee_bps must be a finite number >= 0; got -1.0"),
        ({"queue_model": 42}, "queue model id 42"),
        ({"fill_capacity": 0}, "fill_capacity must be >= 1; got 0"),
    ],
)
def test_bad_parameters_are_refused_by_name(kw, match):
    base = {
        "tick_size": TICK,
        "lot_size": LOT,
        "entry_latency_ns": 0,
        "response_latency_ns": 0,
        "queue_model": QUEUE_RISK_AVERSE,
    }
    with pytest.raises(ValueError, match=match):
        px.new_exchange(**{**base, **kw})


# ----------------------------------------------------------------------------- L3 mode (market-by-order)


def run_l3(ex, rows, l3=True):
    """Apply rows (ts, kind, side, tick, size, order_id, arrival index) in L3 mode (or L2 with l3=False)."""
    cols = list(zip(*rows, strict=True))
    ts, kind, side, tick, size, oid, arrival = (
        np.array(cols[0], dtype=np.int64),
        np.array(cols[1], dtype=np.uint8),
        np.array(cols[2], dtype=np.int8),
        np.array(cols[3], dtype=np.int64),
        np.array(cols[4], dtype=np.float64),
        np.array(cols[5], dtype=np.int64),
        np.array(cols[6], dtype=np.int64),
    )
    if l3:
        return px.run_events_l3(ex, ts, kind, side, tick, size, oid, arrival, 0, len(ts))
    return px.run_events(ex, ts, kind, side, tick, size, 0, len(ts))


L3_ROWS = [
    (0, KIND_BOOK, 1, 100, 1.0, -1, -1),  # 10 lots from before the data
    (0, KIND_BOOK, -1, 102, 0.5, -1, -1),
    (6_000, KIND_BOOK, 1, 100, 1.1, 6, 2),  # order 6 arrives in the ns our order arrives: ahead of it
    (7_000, KIND_BOOK, 1, 100, 1.4, 7, 3),  # order 7 arrives behind ours
    (8_000, KIND_BOOK, 1, 100, 1.2, 50, -1),  # an order ahead cancels 2 lots: 9 ahead
    (9_000, KIND_TRADE, SELL, 100, 0.3, 7, 3),  # order 7 executed: ours would have gone first
    (9_000, KIND_BOOK, 1, 100, 0.9, 7, 3),
]


def test_l3_mode_fills_when_an_order_behind_ours_is_executed():
    ex = make(bids=(), asks=())
    oid = px.submit(ex, 5_000, BUY, 100, 2, px.TIF_GTX)  # arrives at 6 000, after that ns's event
    assert run_l3(ex, L3_ROWS) == px.OK
    o = order(ex, oid)
    assert o[px.O_SEQ] == 3
    f = fills(ex)
    assert f["ts_exch"].tolist() == [9_000] and f["qty"].tolist() == [2]  # by the execution's size
    assert f["queue_at_post"].tolist() == pytest.approx([11.0]) and f["queue_at_fill"].tolist() == pytest.approx([9.0])
    assert o[px.O_STATUS] == px.ST_FILLED


def test_l3_mode_against_the_risk_averse_model_on_the_same_events():
    ex = make(bids=(), asks=())
    px.submit(ex, 5_000, BUY, 100, 2, px.TIF_GTX)
    assert run_l3(ex, L3_ROWS, l3=False) == px.OK
    assert fills(ex)["qty"].size == 0  # it sees 11 - 3 = 8 lots still ahead
    assert front(ex, 0) == pytest.approx(8.0)


def test_l3_mode_counts_cancels_ahead_exactly_and_ignores_those_behind():
    rows = [
        *L3_ROWS[:5],
        (8_500, KIND_BOOK, 1, 100, 1.0, 7, 3),  # order 7 (behind) cancelled: the queue ahead stays 9
        (9_000, KIND_TRADE, SELL, 100, 0.8, 51, -1),  # 8 of the 9 ahead executed
        (9_000, KIND_BOOK, 1, 100, 0.2, 51, -1),
    ]
    ex = make(bids=(), asks=())
    px.submit(ex, 5_000, BUY, 100, 1, px.TIF_GTX)
    assert run_l3(ex, rows) == px.OK
    assert fills(ex)["qty"].size == 0
    assert front(ex, 0) == pytest.approx(1.0)
    rows += [(9_500, KIND_TRADE, SELL, 100, 0.1, 52, -1), (9_500, KIND_BOOK, 1, 100, 0.1, 52, -1)]
    rows += [(9_600, KIND_TRADE, SELL, 100, 0.1, 0, -1)]  # nothing ahead: any execution at 100 is ours first
    ex = make(bids=(), asks=())
    px.submit(ex, 5_000, BUY, 100, 1, px.TIF_GTX)
    assert run_l3(ex, rows) == px.OK
    assert fills(ex)["ts_exch"].tolist() == [9_600]
