"""Feature set v2 against its from-scratch reference on hypothesis-built streams, executions included."""

from builders import T0, TickBuilder
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_features import assert_features_v2_equal_reference

from scalper.features.batch import compute_features
from scalper.features.kernels import FeatureState
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE

MS = 1_000_000

events = st.lists(
    st.tuples(
        st.integers(0, 3_000),  # gap to the previous message, ms (spans the 5 s window)
        st.sampled_from(["trade", "exec", "bid", "ask"]),
        st.integers(0, 7),  # level offset from the touch, ticks (beyond the best 5 too); trade side by parity
        st.sampled_from([0.0, 1.0, 2.0, 5.0, 13.0]),
    ),
    min_size=1,
    max_size=100,
)


def _stream(spec):
    """Single-event messages, and executions: a trade and the touch's decrease in one message (as LOBSTER)."""
    bids = {1000: 5.0, 999: 5.0, 998: 3.0}
    asks = {1002: 5.0, 1003: 5.0}
    b = TickBuilder().snapshot(T0, list(bids.items()), list(asks.items()))
    t = T0
    for gap, what, off, size in spec:
        t += gap * MS + 1
        if what in ("trade", "exec"):
            side = 1 if off % 2 else -1
            book = asks if side > 0 else bids
            price = min(asks) if side > 0 else max(bids)
            q = max(size, 1.0)
            if what == "trade":
                b.trade(t, side, price, q)
                continue
            left = book[price] - q
            if left <= 0.0 and len(book) == 1:
                continue
            if left <= 0.0:
                del book[price]
            else:
                book[price] = left
            b.message(t, (KIND_TRADE, side, price, q), (KIND_BOOK, -side, price, max(left, 0.0)))
            continue
        book = bids if what == "bid" else asks
        price = (max(bids) - off + 1) if what == "bid" else (min(asks) + off - 1)
        crosses = price >= min(asks) if what == "bid" else price <= max(bids)
        if crosses or (size == 0.0 and len(book) == 1 and price in book):
            continue
        if size == 0.0:
            book.pop(price, None)
        else:
            book[price] = size
        b.level(t, 1 if what == "bid" else -1, price, size)
    return b.build()


@settings(max_examples=150, deadline=None)
@given(events, st.sampled_from([50, 250, 1000]))
def test_v2_features_equal_reference_at_every_decision(spec, grid_ms):
    data = _stream(spec)
    fm = compute_features(data, FeatureState(grid_ns=grid_ms * MS, feature_set=2))
    if len(fm.ts) == 0:
        return
    assert_features_v2_equal_reference(fm.X, data, fm.ts)
