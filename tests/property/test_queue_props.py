"""Rules every queue-position model of exec/queue.py keeps on any sequence of level events."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.exec.queue import (
    QUEUE_PROB_LOG,
    QUEUE_PROB_LOG2,
    QUEUE_PROB_POWER,
    QUEUE_PROB_POWER2,
    QUEUE_PROB_POWER3,
    QUEUE_RISK_AVERSE,
    queue_ahead,
    queue_behind,
    queue_on_depth,
    queue_on_trade,
    queue_take_fill,
)

MODELS = st.sampled_from(
    [
        (QUEUE_RISK_AVERSE, 0.0),
        (QUEUE_PROB_POWER, 1.0),
        (QUEUE_PROB_POWER, 2.0),
        (QUEUE_PROB_POWER, 3.0),
        (QUEUE_PROB_LOG, 0.0),
        (QUEUE_PROB_LOG2, 0.0),
        (QUEUE_PROB_POWER2, 2.0),
        (QUEUE_PROB_POWER3, 2.0),
    ]
)
# (kind, amount): 0 = a new order of ours joins; 1 = trade of `amount` lots; 2 = the level's size becomes `amount`.
# Base units per lot: the log models' probabilities depend on it (ETHUSDT 0.001, GOOG 1).
LOTS = st.sampled_from([1.0, 0.001, 0.01, 100.0])
EVENTS = st.lists(st.tuples(st.sampled_from([0, 1, 2, 2]), st.integers(0, 40).map(float)), min_size=1, max_size=80)


def _replay(model, param, level0, events, lot=1.0):
    """Yield, after each event, the fronts of the orders of ours that joined so far (earliest first).

    Orders are updated earliest first and kept behind the one before, as the passive exchange does.
    """
    level = level0
    fronts: list[float] = []
    cums: list[float] = []
    for kind, amount in events:
        if kind == 0:
            fronts.append(level)
            cums.append(0.0)
        elif kind == 1:
            qty = min(amount, level) if level > 0 else amount
            for i in range(len(fronts)):
                fronts[i], cums[i] = queue_on_trade(fronts[i], cums[i], qty)
                if i:
                    fronts[i] = queue_behind(fronts[i], fronts[i - 1])
        else:
            for i in range(len(fronts)):
                fronts[i], cums[i] = queue_on_depth(model, param, lot, fronts[i], cums[i], level, amount)
                if i:
                    fronts[i] = queue_behind(fronts[i], fronts[i - 1])
            level = amount
        yield list(fronts)


@settings(max_examples=300, deadline=None)
@given(MODELS, st.integers(0, 50).map(float), EVENTS, LOTS)
def test_queue_ahead_is_never_negative_and_never_grows(model_param, level0, events, lot):
    model, param = model_param
    before: list[float] = []
    for fronts in _replay(model, param, level0, events, lot):
        for i, f in enumerate(fronts):
            assert queue_ahead(f) >= 0.0
            if i < len(before):
                assert f <= before[i] + 1e-9
        before = fronts


@settings(max_examples=300, deadline=None)
@given(MODELS, st.integers(0, 50).map(float), EVENTS, LOTS)
def test_a_later_order_is_never_ahead_of_an_earlier_one(model_param, level0, events, lot):
    model, param = model_param
    for fronts in _replay(model, param, level0, events, lot):
        for a, b in zip(fronts, fronts[1:], strict=False):
            assert queue_ahead(a) <= queue_ahead(b) + 1e-9


@settings(max_examples=300, deadline=None)
@given(st.integers(0, 30).map(float), st.lists(st.integers(0, 10).map(float), max_size=30), st.integers(1, 20))
def test_trades_at_the_level_fill_exactly_what_passes_the_queue(front0, trades, qty):
    # Lots filled from trades at the level equal the traded size beyond the queue ahead, capped by the order.
    front, cum, filled = front0, 0.0, 0
    for t in trades:
        front, cum = queue_on_trade(front, cum, t)
        lots, front = queue_take_fill(front)
        filled += min(lots, qty - filled)
    assert filled == min(qty, max(0, int(sum(trades) - front0)))


def test_prob_model_alone_can_pass_an_earlier_order_which_queue_behind_prevents():
    # The module docstring's example: PowerProbQueueFunc(2), fronts 1 and 2 at a level 3 -> 1.
    a = queue_on_depth(QUEUE_PROB_POWER, 2.0, 1.0, 1.0, 0.0, 3.0, 1.0)[0]
    b = queue_on_depth(QUEUE_PROB_POWER, 2.0, 1.0, 2.0, 0.0, 3.0, 1.0)[0]
    assert (round(a, 9), round(b, 9)) == (0.6, 0.4)
    assert queue_behind(b, a) == a
