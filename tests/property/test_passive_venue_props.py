"""Rules of the passive venue adapter (exec/passive_venue.py) on random event streams and requests: every order
moves only through the state machine, its fills add up, and nothing stays unanswered once time has passed."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.exec.orders import OrderStatus
from scalper.exec.passive_venue import PassiveSimulatedExchange
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE
from scalper.risk.intent import OrderIntent, TimeInForce, _approve

LOT = 0.1
TICK = 1.0
LAT = 50


@st.composite
def scenario(draw):
    n = draw(st.integers(5, 60))
    events = []
    t = 0
    for _ in range(n):
        t += draw(st.integers(0, 40))
        kind = draw(st.sampled_from([KIND_BOOK, KIND_BOOK, KIND_TRADE]))
        side = draw(st.sampled_from([1, -1]))
        # Bids at or below 100, asks at or above 101, trades anywhere near the touch.
        tick = draw(st.integers(95, 100)) if (kind == KIND_BOOK and side > 0) else draw(st.integers(101, 106))
        if kind == KIND_TRADE:
            tick = draw(st.integers(97, 104))
        size = draw(st.sampled_from([0.0, 0.1, 0.3, 1.0])) if kind == KIND_BOOK else draw(st.sampled_from([0.1, 0.5]))
        events.append((t, kind, side, tick, size))
    actions = draw(
        st.lists(
            st.tuples(
                st.integers(0, t + 100),
                st.sampled_from(["gtx", "gtx", "ioc", "cancel", "modify"]),
                st.sampled_from([1, -1]),
                st.integers(97, 104),
                st.integers(1, 4),
            ),
            max_size=12,
        )
    )
    return events, sorted(actions), t


@settings(max_examples=150, deadline=None)
@given(scenario())
def test_orders_and_fills_stay_consistent(sc):
    events, actions, t_end = sc
    ts, kind, side, tick, size = (np.array(c) for c in zip(*events, strict=True))
    ex = PassiveSimulatedExchange(
        ts.astype(np.int64),
        kind.astype(np.int8),
        side.astype(np.int8),
        tick.astype(np.int64),
        size.astype(np.float64),
        tick_size=TICK,
        lot_size=LOT,
        entry_latency_ns=LAT,
        response_latency_ns=LAT // 2,
        maker_fee_bps=0.0,
        taker_fee_bps=1.0,
    )
    seen = []
    ids = []
    ioc = set()
    for t, what, s, price, lots in actions:
        seen += ex.on_time(t, None, None, None)
        if what in ("gtx", "ioc"):
            tif = TimeInForce.GTX if what == "gtx" else TimeInForce.IOC
            intent = OrderIntent(t, s, lots * LOT, float(price), False, "entry", tif)
            ids.append(ex.submit(_approve(intent, 1), t).order_id)
            if what == "ioc":
                ioc.add(ids[-1])
        elif ids:
            oid = ids[(lots - 1) % len(ids)]
            if what == "cancel":
                ex.cancel(oid, t)
            else:
                ex.modify(oid, float(price), lots * LOT, t)
    # Well after the last event, every request is answered: only resting orders stay open.
    seen += ex.on_time(t_end + 10_000, None, None, None)
    for oid in ids:
        order = ex.order(oid)
        mine = [f for f in seen if f.order_id == oid]
        assert order.filled_qty == pytest.approx(sum(f.qty for f in mine))
        assert order.filled_qty <= order.qty + 1e-9
        assert order.status is not OrderStatus.NEW
        assert (order.status is OrderStatus.FILLED) == (order.filled_qty >= order.qty - 1e-9)
        assert (order in ex.open_orders()) == (not order.status.is_terminal)
        if order.status is OrderStatus.EXPIRED:
            assert mine == []
        if oid in ioc:  # an IOC only takes; it never rests, so it is never open once answered
            assert not any(f.is_maker for f in mine) and order.status.is_terminal
    assert len(seen) == len(ex.fills_table()["qty"])  # every fill the exchange made reached the engine
    assert all(f.fee >= 0.0 for f in seen)
