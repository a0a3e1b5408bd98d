"""The passive exchange as an execution adapter (exec/passive_venue.py): resting orders, queue, wakes, states."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.exec.orders import OrderStatus
from scalper.exec.passive_venue import PassiveSimulatedExchange, next_fill_candidate
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE
from scalper.risk.intent import OrderIntent, TimeInForce, _approve

TICK = 0.5
LOT = 0.1
ENTRY = 1_000  # ns
RESP = 300  # ns
NO_BOOK = (np.zeros((2, 1), np.int64), np.zeros((2, 1)), np.zeros(2, np.int64))  # on_time does not read it

# (ts, kind, side, tick, size): a book of 10 lots bid at 100 and 5 lots offered at 102, then sellers
# trade 6 lots at 100, 5 lots at 100, and 1 lot through it at 99.
EVENTS = [
    (0, KIND_BOOK, 1, 100, 1.0),
    (0, KIND_BOOK, -1, 102, 0.5),
    (1_500, KIND_BOOK, -1, 103, 0.5),  # the other side, away from any buy: no wake
    (2_000, KIND_TRADE, -1, 100, 0.6),
    (3_000, KIND_TRADE, -1, 100, 0.5),
    (4_000, KIND_TRADE, -1, 99, 0.1),
]


def venue(events=EVENTS, maker_fee_bps=1.0) -> PassiveSimulatedExchange:
    ts, kind, side, tick, size = (np.array(c) for c in zip(*events, strict=True))
    return PassiveSimulatedExchange(
        ts.astype(np.int64),
        kind.astype(np.int8),
        side.astype(np.int8),
        tick.astype(np.int64),
        size.astype(np.float64),
        tick_size=TICK,
        lot_size=LOT,
        entry_latency_ns=ENTRY,
        response_latency_ns=RESP,
        maker_fee_bps=maker_fee_bps,
        taker_fee_bps=5.0,
    )


def send(ex, ts, side, qty, price, tif=TimeInForce.GTX, reason="entry"):
    return ex.submit(_approve(OrderIntent(ts, side, qty, price, False, reason, tif), 1), ts)


def test_post_only_buy_rests_behind_the_queue_and_fills_as_maker_when_it_is_traded_away():
    ex = venue()
    order = send(ex, 10, 1, 0.2, 50.0)
    assert ex.next_wake_ns() == 10 + ENTRY  # the request's arrival
    assert ex.on_time(10 + ENTRY + RESP, *NO_BOOK) == []
    assert order.status is OrderStatus.ACCEPTED
    assert ex.queue_ahead(order.order_id) == pytest.approx(1.0)  # the 10 lots bid before it
    # Next wake: the first sell trade at the order's price (the ask at 103 cannot fill a buy at 100).
    assert ex.next_wake_ns() == 2_000 + RESP
    assert ex.on_time(2_000 + RESP, *NO_BOOK) == []  # 6 of the 10 lots ahead traded
    assert ex.queue_ahead(order.order_id) == pytest.approx(0.4)
    assert ex.next_wake_ns() == 3_000 + RESP
    (f,) = ex.on_time(3_000 + RESP, *NO_BOOK)  # 5 lots trade: 4 ahead, then 1 of ours
    assert (f.ts_ns, f.side, f.qty, f.price, f.is_maker) == (3_000, 1, pytest.approx(0.1), 50.0, True)
    assert f.fee == pytest.approx(50.0 * 0.1 * 1.0 / 1e4)  # the maker rate
    assert order.status is OrderStatus.PARTIALLY_FILLED
    (g,) = ex.on_time(4_000 + RESP, *NO_BOOK)  # a trade through the price fills the rest
    assert (g.qty, g.price, g.is_maker) == (pytest.approx(0.1), 50.0, True)
    assert order.status is OrderStatus.FILLED and ex.open_orders() == []
    assert ex.next_wake_ns() is None
    table = ex.fills_table()
    assert table["order_id"].tolist() == [order.order_id] * 2
    assert table["queue_at_post"].tolist() == [10.0, 10.0]
    assert table["queue_at_fill"][0] == pytest.approx(4.0)
    assert ex.posted == 1
    assert ex.traded_volume(-1, 0, 4_000) == pytest.approx(1.2)
    assert ex.traded_volume(1, 0, 4_000) == 0.0
    assert ex.traded_volume(-1, 2_000, 3_000) == pytest.approx(0.5)  # (from, to]


def test_fills_and_answers_are_seen_only_after_the_response_latency():
    ex = venue()
    order = send(ex, 10, 1, 0.1, 50.0)
    ex.on_time(10 + ENTRY + RESP - 1, *NO_BOOK)
    assert order.status is OrderStatus.NEW  # accepted at the exchange, the answer still on its way
    ex.on_time(3_000 + RESP - 1, *NO_BOOK)
    assert order.status is OrderStatus.ACCEPTED
    assert ex.order(order.order_id).filled_qty == 0.0
    assert len(ex.on_time(3_000 + RESP, *NO_BOOK)) == 1


def test_post_only_that_would_cross_expires_and_ioc_takes_as_taker():
    ex = venue()
    gtx = send(ex, 10, 1, 0.1, 51.0)  # at the ask: would cross
    ioc = send(ex, 10, 1, 0.2, 51.0, TimeInForce.IOC, "stop_loss")
    fills = ex.on_time(10 + ENTRY + RESP, *NO_BOOK)
    assert gtx.status is OrderStatus.EXPIRED
    assert [(f.qty, f.price, f.is_maker) for f in fills] == [(pytest.approx(0.2), 51.0, False)]
    assert fills[0].fee == pytest.approx(51.0 * 0.2 * 5.0 / 1e4)  # the taker rate
    assert ioc.status is OrderStatus.FILLED
    assert ex.posted == 1


def test_modify_moves_the_order_and_cancel_ends_it():
    ex = venue()
    order = send(ex, 10, 1, 0.2, 50.0)
    ex.on_time(1_500, *NO_BOOK)
    assert ex.modify(order.order_id, 49.5, 0.1, 1_500) is True  # arrives at 2 500, after the 6-lot trade
    ex.on_time(2_500 + RESP, *NO_BOOK)
    assert (order.limit_price, order.qty, order.status) == (49.5, pytest.approx(0.1), OrderStatus.ACCEPTED)
    assert ex.queue_ahead(order.order_id) == 0.0  # nobody bid at 99 before it
    # The sell trade at 100 (3 000) no longer reaches it; the cancel arrives before the one through 99.
    assert ex.cancel(order.order_id, 2_900) is True
    assert ex.on_time(3_900 + RESP, *NO_BOOK) == []
    assert order.status is OrderStatus.CANCELED and ex.open_orders() == []
    assert ex.cancel(order.order_id, 4_500) is False
    assert ex.modify(order.order_id, 50.0, 0.1, 4_500) is False


def test_a_fill_that_meets_the_modify_counts_in_the_order_s_size():
    ex = venue()
    order = send(ex, 10, 1, 0.2, 50.0)
    ex.on_time(2_000, *NO_BOOK)
    # The modify arrives with the 3 000 trade, which goes first (events before requests on a tie) and
    # fills 1 lot; the new open quantity is then 1 lot on top of the lot filled.
    assert ex.modify(order.order_id, 50.0, 0.1, 2_000) is True
    fills = ex.on_time(3_000 + RESP, *NO_BOOK)
    assert [f.qty for f in fills] == [pytest.approx(0.1)]
    assert (order.qty, order.filled_qty, order.status) == (
        pytest.approx(0.2),
        pytest.approx(0.1),
        OrderStatus.PARTIALLY_FILLED,
    )


def test_an_order_off_the_lot_grid_is_rejected_when_it_would_arrive():
    ex = venue()
    order = send(ex, 10, 1, 0.15, 50.0)
    assert ex.next_wake_ns() == 10 + ENTRY
    ex.on_time(10 + ENTRY, *NO_BOOK)
    assert order.status is OrderStatus.REJECTED and ex.open_orders() == []


def test_time_never_runs_backwards():
    ex = venue()
    ex.on_time(100, *NO_BOOK)
    with pytest.raises(ValueError, match="backwards"):
        ex.on_time(99, *NO_BOOK)


def test_a_negative_maker_fee_pays_a_rebate_on_maker_fills_and_the_order_nets_it():
    ex = venue(maker_fee_bps=-0.5)
    order = send(ex, 10, 1, 0.2, 50.0)
    fills = ex.on_time(4_000 + RESP, *NO_BOOK)
    assert [f.is_maker for f in fills] == [True, True]
    assert [f.fee for f in fills] == pytest.approx([-50.0 * 0.1 * 0.5 / 1e4] * 2)
    assert order.status is OrderStatus.FILLED
    assert ex.order(order.order_id).fees == pytest.approx(-50.0 * 0.2 * 0.5 / 1e4)


def test_fill_candidates_are_the_other_side_s_trades_and_rows_at_or_through_the_price():
    kind = np.array([KIND_BOOK, KIND_TRADE, KIND_TRADE, KIND_BOOK, KIND_BOOK], np.int8)
    side = np.array([1, 1, -1, -1, 1], np.int8)
    tick = np.array([100, 100, 101, 100, 105], np.int64)
    # A buy resting at 100: the bid row and the buyers' trade are ours; a sell trade at 101 is above it.
    assert next_fill_candidate(kind, side, tick, 0, 100, np.iinfo(np.int64).max) == 3
    # A sell resting at 105: only the bid row at 105 reaches it.
    assert next_fill_candidate(kind, side, tick, 0, np.iinfo(np.int64).min, 105) == 4
    assert next_fill_candidate(kind, side, tick, 0, 99, 106) == -1
