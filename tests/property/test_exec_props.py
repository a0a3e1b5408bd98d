"""Properties of the simulated exchange's IOC fills over random books and orders.

Each book level is built as ``(whole_lots + fraction) * lot_size`` with ``fraction < 0.9``, so the
lot-rounded liquidity the oracle expects is known by construction rather than recomputed the way
the exchange does it.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.exec.orders import OrderStatus
from scalper.exec.simulated import SimulatedExchange
from scalper.lowlevel.book import ASK, BID, book_set, new_book
from scalper.risk.intent import OrderIntent, _approve

T0 = 1_700_000_000_000_000_000  # ns since the epoch


@dataclass
class Scenario:
    tick_size: float
    lot_size: float
    fee_bps: float
    side: int
    order_lots: int
    limit_tick: int
    limit_price: float
    levels: dict[int, list[tuple[int, int]]]  # row -> [(price tick, whole lots)], best first
    book: tuple[np.ndarray, np.ndarray, np.ndarray]

    def expected_lots(self) -> int:
        row = ASK if self.side == 1 else BID
        inside = [
            lots
            for tick, lots in self.levels[row]
            if (tick <= self.limit_tick if self.side == 1 else tick >= self.limit_tick)
        ]
        return min(self.order_lots, sum(inside))


@st.composite
def scenarios(draw) -> Scenario:
    tick_size = draw(st.sampled_from([0.01, 0.1, 0.25, 0.5, 1.0, 5.0]))
    lot_size = draw(st.sampled_from([0.001, 0.01, 0.1, 1.0]))
    best_bid = draw(st.integers(100, 100_000))
    best_ask = best_bid + draw(st.integers(1, 5))
    px, sz, n = new_book(32)
    levels: dict[int, list[tuple[int, int]]] = {BID: [], ASK: []}
    for row, best, step in ((BID, best_bid, -1), (ASK, best_ask, 1)):
        gaps = draw(st.lists(st.integers(1, 3), max_size=20))
        tick = best
        for gap in gaps:
            whole = draw(st.integers(0, 30))
            fraction = draw(st.floats(0.0, 0.9))
            size = (whole + fraction) * lot_size
            if size > 0.0:  # a zero size would delete the level instead of setting it
                book_set(px, sz, n, row, tick, size)
                levels[row].append((tick, whole))
            tick += step * gap
    side = draw(st.sampled_from([1, -1]))
    touch = best_ask if side == 1 else best_bid
    limit_tick = touch + side * draw(st.integers(-3, 60))
    off_grid = draw(st.floats(0.0, 0.99))
    # A buy limit between ticks rounds down to limit_tick, a sell limit rounds up to it.
    limit_price = (limit_tick + side * off_grid) * tick_size
    return Scenario(
        tick_size=tick_size,
        lot_size=lot_size,
        fee_bps=draw(st.floats(0.0, 30.0)),
        side=side,
        order_lots=draw(st.integers(1, 400)),
        limit_tick=limit_tick,
        limit_price=limit_price,
        levels=levels,
        book=(px, sz, n),
    )


@settings(deadline=None, max_examples=300)
@given(scenarios())
def test_ioc_fills_respect_quantity_limit_order_and_fees(sc: Scenario):
    ex = SimulatedExchange(0, sc.fee_bps, sc.tick_size, sc.lot_size)
    qty = sc.order_lots * sc.lot_size
    order = ex.submit(_approve(OrderIntent(T0, sc.side, qty, sc.limit_price, False, "entry"), 1), T0)
    before = tuple(a.copy() for a in sc.book)
    fills = ex.on_time(T0, *sc.book)

    filled = sum(f.qty for f in fills)
    assert filled <= qty * (1.0 + 1e-12)
    assert filled == pytest.approx(sc.expected_lots() * sc.lot_size, rel=1e-12, abs=1e-12)
    assert order.filled_qty == pytest.approx(filled, rel=1e-12, abs=1e-12)

    for f in fills:
        assert (f.price <= sc.limit_price) if sc.side == 1 else (f.price >= sc.limit_price)
        whole = f.qty / sc.lot_size
        assert whole >= 1.0 - 1e-9 and whole == pytest.approx(round(whole), abs=1e-9)
        assert f.fee == pytest.approx(sc.fee_bps * f.price * f.qty / 1e4, rel=1e-12, abs=1e-15)
        assert not f.is_maker and f.side == sc.side and f.order_id == order.order_id

    prices = [f.price for f in fills]
    best_first = sorted(prices, reverse=(sc.side == -1))
    assert prices == best_first and len(set(prices)) == len(prices)
    assert order.fees == pytest.approx(sum(f.fee for f in fills), rel=1e-12, abs=1e-15)
    if fills:
        vwap = sum(f.price * f.qty for f in fills) / filled
        assert order.avg_fill_price == pytest.approx(vwap, rel=1e-12)

    complete = sc.expected_lots() == sc.order_lots
    assert order.status is (OrderStatus.FILLED if complete else OrderStatus.CANCELED)
    assert ex.fills(order.order_id) == fills
    assert all((a == b).all() for a, b in zip(sc.book, before, strict=True))


ops = st.lists(
    st.one_of(
        st.tuples(st.just("submit"), st.sampled_from([1, -1]), st.integers(1, 5)),
        st.tuples(st.just("cancel"), st.integers(1, 12)),
        st.tuples(st.just("advance"), st.integers(0, 2_000)),
    ),
    max_size=40,
)


@settings(deadline=None, max_examples=200)
@given(ops)
def test_random_submit_cancel_advance_keeps_order_book_keeping_consistent(steps):
    latency_ns = 700
    px, sz, n = new_book(4)
    book_set(px, sz, n, BID, 99, 3.0)
    book_set(px, sz, n, ASK, 101, 3.0)
    ex = SimulatedExchange(latency_ns, 5.0, 1.0, 1.0)
    now = T0
    arrival: dict[int, int] = {}
    for step in steps:
        if step[0] == "submit":
            _, side, lots = step
            limit = 101.0 if side == 1 else 99.0
            order_intent = OrderIntent(now, side, float(lots), limit, False, "entry")
            order = ex.submit(_approve(order_intent, 1), now)
            arrival[order.order_id] = now + latency_ns
        elif step[0] == "cancel":
            was_open = step[1] in {o.order_id for o in ex.open_orders()}
            assert ex.cancel(step[1], now) is was_open
        else:
            now += step[1]
            ex.on_time(now, px, sz, n)

        open_ids = [o.order_id for o in ex.open_orders()]
        assert all(ex.order(i).status is OrderStatus.NEW for i in open_ids)
        assert all(arrival[i] > now for i in open_ids)  # everything due has been executed
        terminal = [i for i in arrival if i not in open_ids]
        assert all(ex.order(i).status.is_terminal for i in terminal)
        assert ex.next_wake_ns() == (min(arrival[i] for i in open_ids) if open_ids else None)
        counts = ex.status_counts()
        assert sum(counts.values()) == len(arrival)
        assert counts[OrderStatus.ACCEPTED] == counts[OrderStatus.PARTIALLY_FILLED] == 0
        for i in terminal:
            o = ex.order(i)
            assert o.filled_qty == pytest.approx(sum(f.qty for f in ex.fills(i)))
            if o.status is OrderStatus.FILLED:
                assert o.filled_qty == pytest.approx(o.qty)
