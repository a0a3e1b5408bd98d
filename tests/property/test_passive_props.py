"""Rules the passive exchange (exec/passive.py) keeps on any event sequence and any orders."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.exec import passive as px
from scalper.exec.queue import QUEUE_PROB_LOG, QUEUE_PROB_POWER, QUEUE_RISK_AVERSE, queue_ahead
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE

LOT = 0.5
ENTRY = 3
RESP = 2
LIVE = (px.ST_ACCEPTED, px.ST_PARTIALLY_FILLED)

book_ev = st.tuples(st.just(KIND_BOOK), st.sampled_from([1, -1]), st.integers(95, 105), st.integers(0, 12))
trade_ev = st.tuples(st.just(KIND_TRADE), st.sampled_from([1, -1]), st.integers(95, 105), st.integers(1, 8))
order_req = st.tuples(st.just(-1), st.sampled_from([1, -1]), st.integers(95, 105), st.integers(1, 4), st.integers(0, 2))
cancel_req = st.tuples(st.just(-2), st.integers(0, 20))
STEPS = st.lists(
    st.one_of(book_ev, book_ev, trade_ev, trade_ev, order_req, order_req, cancel_req), min_size=1, max_size=80
)
MODELS = st.sampled_from([(QUEUE_RISK_AVERSE, 0.0), (QUEUE_PROB_POWER, 2.0), (QUEUE_PROB_LOG, 0.0)])


def _start(model, param):
    ex = px.new_exchange(
        tick_size=1.0,
        lot_size=LOT,
        entry_latency_ns=ENTRY,
        response_latency_ns=RESP,
        queue_model=model,
        queue_param=param,
        order_capacity=32,
    )
    for p in range(96, 100):
        px.on_event(ex, 0, KIND_BOOK, 1, p, 2.0)
    for p in range(101, 105):
        px.on_event(ex, 0, KIND_BOOK, -1, p, 2.0)
    return ex


def _crosses(ref, side, price):
    if side > 0:
        asks = [p for p, q in ref[-1].items() if q > 0]
        return bool(asks) and price >= min(asks)
    bids = [p for p, q in ref[1].items() if q > 0]
    return bool(bids) and price <= max(bids)


@settings(max_examples=150, deadline=None)
@given(MODELS, STEPS)
def test_sizes_conserved_no_early_fill_post_only_refused_queue_never_grows_time_priority_kept(model_param, steps):
    ex = _start(*model_param)
    ref = {1: {p: 2.0 for p in range(96, 100)}, -1: {p: 2.0 for p in range(101, 105)}}
    orders: dict[int, tuple[int, int, int, int]] = {}  # id -> (arrival, side, price, tif)
    judged: dict[int, bool] = {}  # post-only id -> crossed the book at arrival
    fronts: dict[int, float] = {}
    ts = 10
    for step in steps:
        ts += 1
        if step[0] == -1:
            _, side, price, qty, tif = step
            oid = px.submit(ex, ts, side, price, qty, tif)
            if oid >= 0:
                orders[oid] = (ts + ENTRY, side, price, tif)
            continue
        if step[0] == -2:
            if orders:
                px.cancel(ex, ts, step[1] % len(orders))
            continue
        kind, side, price, lots = step
        # Judge the post-only orders arriving before this event against the book they will meet.
        for oid, (arrival, o_side, o_price, tif) in orders.items():
            if tif == px.TIF_GTX and oid not in judged and arrival < ts:
                judged[oid] = _crosses(ref, o_side, o_price)
        assert px.on_event(ex, ts, kind, side, price, lots * LOT) == px.OK
        if kind == KIND_BOOK:
            ref[side][price] = lots * LOT
        for oid in orders:
            o = ex.oi[oid % ex.oi.shape[0]]
            if o[px.O_ID] != oid:
                continue  # the slot serves a later order now
            assert o[px.O_FILLED] + o[px.O_LEAVES] == o[px.O_QTY]
            assert 0 <= o[px.O_FILLED] <= o[px.O_QTY]
            if o[px.O_STATUS] in LIVE:
                f = ex.of[oid % ex.of.shape[0], px.OF_FRONT]
                assert queue_ahead(f) >= 0.0
                if oid in fronts:
                    assert f <= fronts[oid] + 1e-9
                fronts[oid] = f
        # Time priority among our own orders: at one side and price, earlier accepted is never further back.
        live = [int(s) for s in ex.live[: ex.ip[px.I_N_LIVE]]]
        for i, a in enumerate(live):
            for c in live[i + 1 :]:
                same = ex.oi[a, px.O_SIDE] == ex.oi[c, px.O_SIDE] and ex.oi[a, px.O_PRICE] == ex.oi[c, px.O_PRICE]
                if same:
                    assert queue_ahead(ex.of[a, px.OF_FRONT]) <= queue_ahead(ex.of[c, px.OF_FRONT]) + 1e-9
    fills = px.fills_table(ex)
    for i, oid in enumerate(fills["order_id"].tolist()):
        arrival, _, _, tif = orders[oid]
        assert fills["ts_exch"][i] >= arrival
        assert fills["ts_local"][i] == fills["ts_exch"][i] + RESP
        if tif == px.TIF_GTX:
            assert fills["maker"][i]
    for oid, crossed in judged.items():
        o = ex.oi[oid % ex.oi.shape[0]]
        if o[px.O_ID] == oid:
            assert (o[px.O_STATUS] == px.ST_EXPIRED) == crossed
