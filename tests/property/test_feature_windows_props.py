"""Ring-buffer windows and every feature against a from-scratch reference, on hypothesis-built streams."""

import numpy as np
from builders import T0, TickBuilder
from hypothesis import given, settings
from hypothesis import strategies as st
from reference_features import assert_features_equal_reference

from scalper.features.batch import compute_features
from scalper.features.kernels import FeatureState
from scalper.features.state_layout import I_HEAD, I_TAIL, W_30S

MS = 1_000_000

events = st.lists(
    st.tuples(
        st.integers(0, 3_000),  # gap to the previous message, ms (spans the 1 s and 5 s windows)
        st.sampled_from(["trade", "bid", "ask"]),
        st.integers(0, 4),  # level offset from the touch, ticks
        st.sampled_from([0.0, 1.0, 2.0, 5.0, 13.0]),
    ),
    min_size=1,
    max_size=120,
)


def _stream(spec):
    b = TickBuilder().snapshot(T0, [(1000, 5.0), (999, 5.0)], [(1002, 5.0), (1003, 5.0)])
    bids, asks = {1000: 5.0, 999: 5.0}, {1002: 5.0, 1003: 5.0}
    t = T0
    for gap, what, off, size in spec:
        t += gap * MS + 1
        if what == "trade":
            b.trade(t, 1 if off % 2 else -1, max(bids), max(size, 1.0))
            continue
        book, other = (bids, asks) if what == "bid" else (asks, bids)
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
def test_windowed_features_equal_reference_at_every_decision(spec, grid_ms):
    data = _stream(spec)
    fm = compute_features(data, FeatureState(grid_ns=grid_ms * MS))
    if len(fm.ts) == 0:
        return
    assert_features_equal_reference(fm.X, data, fm.ts)


@settings(max_examples=50, deadline=None)
@given(events)
def test_tiny_ring_counts_overflow_and_never_holds_more_than_capacity(spec):
    data = _stream(spec * 20)
    state = FeatureState(ring_capacity=1024)
    fm = compute_features(data, state)
    head, tail30 = state.ist[I_HEAD], state.ist[I_TAIL + W_30S]
    assert 0 <= head - tail30 <= 1024
    assert np.all(np.isfinite(fm.X))
