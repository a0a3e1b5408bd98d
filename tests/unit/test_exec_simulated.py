"""What only the simulated exchange promises: wake times, no impact, arrival order, clock, counters."""

from __future__ import annotations

import math

import pytest

from scalper.exec.orders import OrderStatus
from scalper.exec.simulated import SimulatedExchange
from scalper.lowlevel.book import ASK, BID, book_set, new_book
from scalper.risk.intent import OrderIntent, _approve

TICK = 0.5  # quote currency per tick
LOT = 0.1  # base units
FEE_BPS = 10.0
LATENCY_NS = 500_000
T0 = 1_700_000_000_000_000_000  # ns since the epoch


def make_book():
    # Bids 99.5 x 1.0, 99.0 x 2.0; asks 100.5 x 0.25 (2 lots), 101.0 x 0.3, 101.5 x 5.0.
    px, sz, n = new_book(8)
    levels = [(BID, 199, 1.0), (BID, 198, 2.0), (ASK, 201, 0.25), (ASK, 202, 0.3), (ASK, 203, 5.0)]
    for row, tick, size in levels:
        book_set(px, sz, n, row, tick, size)
    return px, sz, n


def exchange() -> SimulatedExchange:
    return SimulatedExchange(LATENCY_NS, FEE_BPS, TICK, LOT)


def send(ex: SimulatedExchange, side: int, qty: float, limit_price: float, ts_ns: int = T0):
    return ex.submit(_approve(OrderIntent(ts_ns, side, qty, limit_price, False, "entry"), 1), ts_ns)


@pytest.mark.parametrize(
    "args",
    [
        (-1, 1.0, 0.5, 0.1),
        (0, -1.0, 0.5, 0.1),
        (0, 1.0, 0.0, 0.1),
        (0, 1.0, 0.5, 0.0),
        (0, math.nan, 0.5, 0.1),
    ],
    ids=["negative_latency", "negative_fee", "zero_tick", "zero_lot", "nan_fee"],
)
def test_constructor_out_of_range_raises_value_error(args):
    with pytest.raises(ValueError):
        SimulatedExchange(*args)


def test_next_wake_is_earliest_arrival_and_skips_canceled():
    ex = exchange()
    assert ex.next_wake_ns() is None
    first = send(ex, 1, 0.2, 101.5, T0)
    send(ex, 1, 0.2, 101.5, T0 + 100)
    assert ex.next_wake_ns() == T0 + LATENCY_NS
    ex.cancel(first.order_id, T0 + 200)
    assert ex.next_wake_ns() == T0 + 100 + LATENCY_NS
    ex.on_time(T0 + 100 + LATENCY_NS, *make_book())
    assert ex.next_wake_ns() is None


def test_on_time_leaves_book_arrays_unchanged():
    px, sz, n = make_book()
    before = (px.copy(), sz.copy(), n.copy())
    ex = exchange()
    send(ex, 1, 5.0, 101.5)
    send(ex, -1, 5.0, 98.5)
    ex.on_time(T0 + LATENCY_NS, px, sz, n)
    assert (px == before[0]).all() and (sz == before[1]).all() and (n == before[2]).all()


def test_orders_arriving_together_both_take_the_same_level():
    # No market impact: the second order sees the liquidity the first one took.
    ex = exchange()
    a = send(ex, 1, 0.2, 100.5)
    b = send(ex, 1, 0.2, 100.5)
    fills = ex.on_time(T0 + LATENCY_NS, *make_book())
    assert [f.order_id for f in fills] == [a.order_id, b.order_id]
    assert all(f.qty == pytest.approx(0.2) and f.price == 100.5 for f in fills)
    assert a.status is b.status is OrderStatus.FILLED


def test_on_time_executes_arrived_orders_in_arrival_order():
    ex = exchange()
    first = send(ex, 1, 0.1, 101.5, T0)
    tie_a = send(ex, -1, 0.1, 98.5, T0 + 100)
    tie_b = send(ex, 1, 0.1, 101.5, T0 + 100)
    send(ex, 1, 0.1, 101.5, T0 + 101)  # arrives one ns too late for this call
    fills = ex.on_time(T0 + 100 + LATENCY_NS, *make_book())
    assert [f.order_id for f in fills] == [first.order_id, tie_a.order_id, tie_b.order_id]
    assert len(ex.open_orders()) == 1


def test_empty_side_cancels_order_with_zero_fill():
    ex = exchange()
    order = send(ex, 1, 0.2, 101.5)
    assert ex.on_time(T0 + LATENCY_NS, *new_book(4)) == []
    assert order.status is OrderStatus.CANCELED


@pytest.mark.parametrize(
    ("side", "qty", "limit_price"),
    [
        (0, 0.2, 101.5),
        (1, 0.0, 101.5),
        (1, -0.2, 101.5),
        (1, math.nan, 101.5),
        (1, 0.2, math.nan),
        (-1, 0.2, 0.0),
        (1, 0.2, math.inf),
    ],
    ids=["zero_side", "zero_qty", "negative_qty", "nan_qty", "nan_limit", "zero_limit", "inf_limit"],
)
def test_malformed_order_is_rejected_on_arrival(side, qty, limit_price):
    ex = exchange()
    order = send(ex, side, qty, limit_price)
    assert ex.on_time(T0 + LATENCY_NS, *make_book()) == []
    assert order.status is OrderStatus.REJECTED


def test_time_going_backwards_raises_value_error():
    ex = exchange()
    ex.on_time(T0, *make_book())
    with pytest.raises(ValueError):
        ex.on_time(T0 - 1, *make_book())
    with pytest.raises(ValueError):
        send(ex, 1, 0.2, 101.5, T0 - 1)
    with pytest.raises(ValueError):
        ex.cancel(1, T0 - 1)


def test_fills_returns_copy_per_order_and_unknown_raises_key_error():
    ex = exchange()
    order = send(ex, 1, 0.7, 101.5)
    made = ex.on_time(T0 + LATENCY_NS, *make_book())
    got = ex.fills(order.order_id)
    assert got == made
    got.clear()
    assert ex.fills(order.order_id) == made
    with pytest.raises(KeyError):
        ex.fills(99)


def test_status_counts_counts_every_status():
    ex = exchange()
    send(ex, 1, 0.7, 101.5)  # FILLED
    send(ex, 1, 1.0, 101.0)  # CANCELED after a partial fill
    send(ex, 1, 0.15, 101.5)  # REJECTED, off the lot grid
    canceled = send(ex, 1, 0.2, 101.5)
    ex.cancel(canceled.order_id, T0)
    ex.on_time(T0 + LATENCY_NS, *make_book())
    send(ex, 1, 0.2, 101.5, T0 + LATENCY_NS)  # still in flight
    assert ex.status_counts() == {
        OrderStatus.NEW: 1,
        OrderStatus.ACCEPTED: 0,
        OrderStatus.PARTIALLY_FILLED: 0,
        OrderStatus.FILLED: 1,
        OrderStatus.CANCELED: 2,
        OrderStatus.REJECTED: 1,
        OrderStatus.EXPIRED: 0,  # post-only orders only: this exchange takes IOC
    }


def test_paper_mode_forgets_finished_orders_but_keeps_counting_them():
    from scalper.exec.orders import OrderStatus
    from scalper.exec.simulated import SimulatedExchange
    from scalper.lowlevel.book import book_set, new_book
    from scalper.risk.intent import OrderIntent, _approve

    ex = SimulatedExchange(0, 0.0, 1.0, 1.0, first_order_id=41, keep_history=False)
    px, sz, n = new_book(4)
    book_set(px, sz, n, 1, 101, 5.0)
    book_set(px, sz, n, 0, 100, 5.0)
    first = ex.submit(_approve(OrderIntent(0, 1, 2.0, 101.0, False, "entry"), 1), 0)
    assert first.order_id == 41
    ex.on_time(0, px, sz, n)
    second = ex.submit(_approve(OrderIntent(1, 1, 2.0, 99.0, False, "entry"), 2), 1)
    ex.on_time(1, px, sz, n)
    assert second.order_id == 42
    assert ex.status_counts()[OrderStatus.FILLED] == 1 and ex.status_counts()[OrderStatus.CANCELED] == 1
    assert not ex.open_orders()
    with pytest.raises(KeyError):
        ex.order(41)
