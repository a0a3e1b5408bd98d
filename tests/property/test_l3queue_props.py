"""Property: on market-by-order data that obeys price-time priority, the exact queue of exec/l3queue.py fills
a resting order exactly when an order-by-order replay says it would, and the risk-averse L2 model never
fills it earlier.

Streams are generated at one bid price by a FIFO book: submissions, partial or full cancels of any resting
order, and executions that take the head of the queue. Orders resting before the data begins have ids the
data never shows arriving. The order-by-order replay keeps the ids that rested ahead of ours when it was
posted; ours fills at the first execution once none of them is left.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from builders import T0, TickBuilder
from hypothesis import given
from hypothesis import strategies as st

from scalper.exec.l3queue import NO_FILL, QUEUE_L3, replay_posts
from scalper.exec.queue import QUEUE_RISK_AVERSE
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE, TickData

P = 100
EARLY_IDS = 10**9  # ids of the orders resting before the data begins
OPS = st.lists(
    st.tuples(st.sampled_from(["submit", "cancel", "execute"]), st.integers(0, 10**6), st.integers(1, 5)),
    min_size=1,
    max_size=60,
)


def fifo_stream(initial: list[int], ops: list[tuple[str, int, int]]) -> tuple[TickData, list[dict[int, int]]]:
    """Return the events and, per event, the orders resting at ``P`` after it (id -> size)."""
    queue = [(EARLY_IDS + j, q) for j, q in enumerate(initial)]
    b = TickBuilder().snapshot(T0, [(P, float(sum(initial)))], [(P + 5, 10.0)])
    ids = [-1, -1, -1]
    states = [dict(queue)] * 3
    t = T0
    next_id = 1
    for kind, pick, qty in ops:
        t += 1000
        total = sum(q for _, q in queue)
        if kind == "submit":
            queue.append((next_id, qty))
            b.level(t, 1, P, float(total + qty))
            ids.append(next_id)
            next_id += 1
        elif queue:
            j = pick % len(queue) if kind == "cancel" else 0  # executions take the head: FIFO
            oid, q = queue[j]
            take = min(qty, q)
            queue[j] = (oid, q - take)
            if kind == "cancel":
                b.level(t, 1, P, float(total - take))
                ids.append(oid)
            else:
                b.message(t, (KIND_TRADE, -1, P, float(take)), (KIND_BOOK, 1, P, float(total - take)))
                ids += [oid, oid]
        queue = [(o, q) for o, q in queue if q > 0]
        states += [dict(queue)] * (len(ids) - len(states))
    return replace(b.build(), order_id=np.array(ids, dtype=np.int64)), states


@given(initial=st.lists(st.integers(1, 5), min_size=1, max_size=4), ops=OPS, at=st.integers(0, 10**6))
def test_exact_queue_equals_an_order_by_order_replay(initial, ops, at):
    data, states = fifo_stream(initial, ops)
    n = len(data)
    if n <= 3:
        return
    i = 3 + at % (n - 3)  # our order arrives just before event i, the first of its message
    while data.ts_event[i - 1] == data.ts_event[i]:
        i -= 1
    post_ts = int(data.ts_event[i]) - 1
    ahead = set(states[i - 1])
    want = NO_FILL
    for e in range(i, n):
        # An execution takes the head of the queue: ours, once nothing that was ahead of it is left.
        if data.kind[e] == KIND_TRADE and not ahead & set(states[e - 1]):
            want = int(data.ts_event[e])
            break
    out = {
        m: replay_posts(data, np.array([post_ts]), np.array([1]), np.array([post_ts + 10**12]), model=m)
        for m in (QUEUE_L3, QUEUE_RISK_AVERSE)
    }
    if not ahead:
        return  # the level was empty: nothing to join at the touch
    assert out[QUEUE_L3]["front_at_post"][0] == sum(states[i - 1].values())
    assert out[QUEUE_L3]["fill_ts"][0] == want
    ra = out[QUEUE_RISK_AVERSE]["fill_ts"][0]
    assert ra == NO_FILL or (want != NO_FILL and ra >= want)
