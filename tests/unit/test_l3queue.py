"""Exact (market-by-order) queue rules of exec/l3queue.py on hand-made schema-v2 streams, and the post
replay's L2 models checked against the passive exchange with one order each."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
from builders import T0, TickBuilder, random_walk_ticks

from scalper.exec import passive as px
from scalper.exec.l3queue import (
    NO_FILL,
    POST_LEFT_VIEW,
    POST_NOT_PLACED,
    QUEUE_L3,
    order_arrivals,
    replay_posts,
)
from scalper.exec.queue import QUEUE_MODEL_NAMES, QUEUE_RISK_AVERSE
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE

BOOK, TRADE = KIND_BOOK, KIND_TRADE
BID, ASK = 1, -1
S = 1_000_000_000  # ns


class MboBuilder:
    """TickBuilder rows plus one order id per event (-1 unknown)."""

    def __init__(self) -> None:
        self.b = TickBuilder()
        self.ids: list[int] = []

    def snapshot(self, t, bids, asks):
        self.b.snapshot(t, bids, asks)
        self.ids += [-1] * (1 + len(bids) + len(asks))
        return self

    def level(self, t, side, tick, size, oid):
        self.b.level(t, side, tick, size)
        self.ids.append(oid)
        return self

    def execution(self, t, resting_side, tick, qty, level_after, oid):
        """A visible execution: the trade (aggressor = other side) and the level it leaves, one message."""
        self.b.message(t, (TRADE, -resting_side, tick, qty), (BOOK, resting_side, tick, level_after))
        self.ids += [oid, oid]
        return self

    def trade(self, t, aggressor, tick, qty, oid):
        self.b.trade(t, aggressor, tick, qty)
        self.ids.append(oid)
        return self

    def build(self):
        return replace(self.b.build(), order_id=np.array(self.ids, dtype=np.int64))


def one_post(data, t_post, side, model=QUEUE_L3, expiry=None, qty=1, param=0.0):
    out = replay_posts(
        data,
        np.array([t_post]),
        np.array([side]),
        np.array([expiry if expiry is not None else t_post + 1000 * S]),
        model=model,
        param=param,
        qty=qty,
    )
    return {k: v[0] for k, v in out.items()}


def base():
    # Bid 100 holds 5 lots from before the data (no ids); ask 103.
    return MboBuilder().snapshot(T0, [(100, 5.0), (99, 4.0)], [(103, 2.0)])


def test_order_arrivals_maps_each_event_to_its_orders_submission():
    b = base()
    b.level(T0 + 1 * S, BID, 100, 8.0, 7)  # order 7 arrives (event 4, after the clear and 3 levels)
    b.level(T0 + 2 * S, BID, 100, 6.0, 50)  # order 50 first seen cancelling: arrived out of view
    b.execution(T0 + 3 * S, BID, 100, 3.0, 3.0, 7)
    b.trade(T0 + 4 * S, ASK, 100, 1.0, 0)  # a hidden order's execution: never on the book
    assert order_arrivals(b.build()).tolist() == [-1] * 4 + [4, -1, 4, 4, -1]


def test_order_arrivals_needs_order_ids():
    with pytest.raises(ValueError, match="no order ids"):
        order_arrivals(base().b.build())


def test_an_execution_of_an_order_behind_ours_fills_ours_the_l2_risk_averse_model_does_not():
    b = base()
    b.level(T0 + 2 * S, BID, 100, 8.0, 7)  # order 7 arrives behind us
    b.level(T0 + 3 * S, BID, 100, 6.0, 50)  # an order ahead cancels 2: 3 ahead
    b.execution(T0 + 4 * S, BID, 100, 2.0, 4.0, 7)  # order 7 executed: ours would have gone first
    d = b.build()
    l3 = one_post(d, T0 + 1 * S, BID)
    assert (l3["price"], l3["front_at_post"], l3["fill_ts"], l3["filled"], l3["flags"]) == (100, 5.0, T0 + 4 * S, 1, 0)
    ra = one_post(d, T0 + 1 * S, BID, model=QUEUE_RISK_AVERSE)
    assert ra["fill_ts"] == NO_FILL  # it still sees 3 lots ahead after the trade of 2


def test_an_order_arriving_in_the_same_ns_before_our_post_is_ahead():
    b = base()
    b.level(T0 + 1 * S, BID, 100, 8.0, 7)  # same ns as the post: the event comes first
    b.execution(T0 + 4 * S, BID, 100, 2.0, 6.0, 7)
    assert one_post(b.build(), T0 + 1 * S, BID)["fill_ts"] == NO_FILL


def test_cancels_and_executions_ahead_count_exactly_then_any_execution_fills_ours():
    b = base()
    b.level(T0 + 2 * S, BID, 100, 9.0, 8)  # order 8 behind us
    b.level(T0 + 3 * S, BID, 100, 7.0, 51)  # 2 ahead cancelled: 3 ahead
    b.level(T0 + 3 * S + 1, BID, 100, 8.0, 8)  # a later order's size change does not move us
    b.execution(T0 + 4 * S, BID, 100, 3.0, 5.0, 52)  # the last 3 ahead executed: the trade does not reach us
    b.trade(T0 + 5 * S, ASK, 100, 2.0, 0)  # a hidden execution with nothing ahead: ours first
    out = one_post(b.build(), T0 + 1 * S, BID, qty=3)
    assert (out["fill_ts"], out["filled"]) == (T0 + 5 * S, 2)  # partial: the execution's size


def test_cancels_of_orders_behind_do_not_move_the_queue():
    b = base()
    b.level(T0 + 2 * S, BID, 100, 9.0, 8)
    b.level(T0 + 3 * S, BID, 100, 5.0, 8)  # order 8 (behind) cancelled
    b.execution(T0 + 4 * S, BID, 100, 4.0, 1.0, 53)  # 4 of the 5 ahead executed
    assert one_post(b.build(), T0 + 1 * S, BID)["fill_ts"] == NO_FILL


def test_a_level_leaving_the_view_keeps_the_queue_and_flags_the_post():
    b = base()
    b.level(T0 + 2 * S, BID, 101, 3.0, 9)  # a better bid ...
    b.level(T0 + 2 * S, BID, 100, 0.0, -1)  # ... pushes our level out of a 1-level view
    b.level(T0 + 3 * S, BID, 101, 0.0, 9)
    b.level(T0 + 3 * S, BID, 100, 4.0, -1)  # back in view with 4: at most 4 ahead
    b.execution(T0 + 4 * S, BID, 100, 4.0, 0.0, 54)
    b.trade(T0 + 5 * S, ASK, 100, 1.0, 0)
    out = one_post(b.build(), T0 + 1 * S, BID)
    assert (out["fill_ts"], out["flags"]) == (T0 + 5 * S, POST_LEFT_VIEW)
    ra = one_post(b.build(), T0 + 1 * S, BID, model=QUEUE_RISK_AVERSE)
    assert ra["fill_ts"] == T0 + 4 * S  # the L2 model took the window edge for a deletion


def test_trade_through_fills_by_its_size_and_best_through_fills_completely():
    b = base()
    b.trade(T0 + 2 * S, ASK, 99, 2.0, 60)  # a sell paid 99 < our bid 100
    out = one_post(b.build(), T0 + 1 * S, BID, qty=3)
    assert (out["fill_ts"], out["filled"]) == (T0 + 2 * S, 2)
    b = base()
    b.level(T0 + 2 * S, ASK, 100, 1.0, 61)  # the best ask moves onto our bid
    out = one_post(b.build(), T0 + 1 * S, BID, qty=3)
    assert (out["fill_ts"], out["filled"]) == (T0 + 2 * S, 3)


def test_a_canceled_post_does_not_fill_and_an_empty_side_is_not_placed():
    b = base()
    b.execution(T0 + 4 * S, BID, 100, 5.0, 0.0, 55)
    b.trade(T0 + 5 * S, ASK, 100, 1.0, 0)
    assert one_post(b.build(), T0 + 1 * S, BID, expiry=T0 + 5 * S - 1)["fill_ts"] == NO_FILL
    assert one_post(b.build(), T0 + 1 * S, BID, expiry=T0 + 5 * S)["fill_ts"] == T0 + 5 * S  # cancel after the event
    after_end = one_post(b.build(), T0 + 9 * S, BID)
    assert after_end["flags"] == POST_NOT_PLACED


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"post_ts": [2, 1]}, "non-decreasing"),
        ({"expiry_ts": [0, 0]}, "expiry_ts must be >= its post_ts"),
        ({"post_side": [1, 0]}, r"\+1 \(bid\) or -1"),
        ({"qty": 0}, "qty must be >= 1"),
        ({"model": 99}, "queue model id 99"),
    ],
)
def test_replay_posts_refuses_bad_input(kwargs, message):
    args = {"post_ts": [1, 2], "post_side": [1, -1], "expiry_ts": [5, 5], "model": QUEUE_RISK_AVERSE}
    args |= kwargs
    with pytest.raises(ValueError, match=message):
        replay_posts(
            base().build(),
            np.array(args.pop("post_ts")),
            np.array(args.pop("post_side")),
            np.array(args.pop("expiry_ts")),
            **args,
        )


def _passive_first_fill(data, t_post, side, price, expiry, model, param):
    ex = px.new_exchange(
        tick_size=data.instrument.tick_size,
        lot_size=data.instrument.lot_size,
        entry_latency_ns=0,
        response_latency_ns=0,
        queue_model=model,
        queue_param=param,
    )
    ts, kind, sd, tick, size = data.ts_event, data.kind, data.side, data.price_tick, data.size
    px.raise_for(px.run_events(ex, ts, kind, sd, tick, size, 0, int(np.searchsorted(ts, t_post, "right"))))
    px.raise_for(px.submit(ex, t_post, side, price, 1, px.TIF_GTX))
    stop = int(np.searchsorted(ts, expiry, "right"))
    px.raise_for(px.run_events(ex, ts, kind, sd, tick, size, int(np.searchsorted(ts, t_post, "right")), stop))
    fills = px.fills_table(ex)
    return int(fills["ts_exch"][0]) if fills["ts_exch"].size else NO_FILL


@pytest.mark.parametrize("name", sorted(QUEUE_MODEL_NAMES))
def test_l2_models_replayed_post_by_post_fill_as_the_passive_exchange_with_that_one_order(name):
    data = random_walk_ticks(seed=5, n_messages=3000)
    model = QUEUE_MODEL_NAMES[name]
    param = 0.0 if model == QUEUE_RISK_AVERSE else 2.0
    rng = np.random.default_rng(1)
    post_ts = np.sort(rng.integers(data.ts_event[10], data.ts_event[-1], 60))
    side = rng.choice([-1, 1], 60)
    expiry = post_ts + 20 * S
    out = replay_posts(data, post_ts, side, expiry, model=model, param=param)
    assert np.count_nonzero(out["fill_ts"] != NO_FILL) >= 10
    for j in range(60):
        want = _passive_first_fill(
            data, int(post_ts[j]), int(side[j]), int(out["price"][j]), int(expiry[j]), model, param
        )
        assert out["fill_ts"][j] == want, j
