"""Rules of first-passage labels and uniqueness weights, against a plain-Python oracle."""

import math

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from scalper.models.labels import (
    DOWN,
    LONG,
    SHORT,
    STOP_LOSS,
    TAKE_PROFIT,
    TIME_STOP,
    UNRESOLVED,
    UP,
    first_passage,
    uniqueness_weights,
)
from scalper.models.touchpath import TouchPath


@st.composite
def paths(draw):
    n = draw(st.integers(1, 40))
    gaps = draw(st.lists(st.integers(0, 3), min_size=n, max_size=n))
    moves = draw(st.lists(st.integers(-3, 3), min_size=n, max_size=n))
    spreads = draw(st.lists(st.integers(1, 3), min_size=n, max_size=n))
    ts = np.cumsum(gaps).astype(np.int64)
    bid = (1_000 + np.cumsum(moves)).astype(np.int64)
    ask = bid + np.array(spreads, dtype=np.int64)
    decisions = np.sort(np.array(draw(st.lists(st.integers(-1, int(ts[-1]) + 2), min_size=1, max_size=10))))
    return TouchPath(ts, bid, ask), decisions.astype(np.int64)


def _oracle(path, g, side, horizon, tp, sl, latency):
    # The engine's rule written out plainly: entry touch as of g + latency, watch later message ends.
    ts, bid, ask = path.ts.tolist(), path.bid_tick.tolist(), path.ask_tick.tolist()
    e = max((i for i, t in enumerate(ts) if t <= g + latency), default=-1)
    if e < 0:
        return UNRESOLVED, g
    entry = ask[e] if side == LONG else bid[e]
    if side == LONG:
        up, down = math.ceil(entry * (1 + tp / 1e4)), math.floor(entry * (1 - sl / 1e4))
    else:
        up, down = math.floor(entry * (1 - tp / 1e4)), math.ceil(entry * (1 + sl / 1e4))
    stop = g + latency + horizon
    for j in range(e + 1, len(ts)):
        if ts[j] > stop:
            return TIME_STOP, stop
        px = bid[j] if side == LONG else ask[j]
        if (px >= up) if side == LONG else (px <= up):
            return TAKE_PROFIT, ts[j]
        if (px <= down) if side == LONG else (px >= down):
            return STOP_LOSS, ts[j]
    return UNRESOLVED, g


@given(
    paths(),
    st.integers(1, 6),
    st.sampled_from([5.0, 10.0, 20.0, 40.0]),
    st.sampled_from([5.0, 10.0, 30.0]),
    st.integers(0, 2),
)
def test_first_passage_matches_the_plain_rule_and_never_looks_past_its_horizon(p, horizon, tp, sl, latency):
    path, dec = p
    fp = first_passage(dec, path, horizon, tp, sl, latency_ns=latency)
    for m, g in enumerate(dec.tolist()):
        for side in (LONG, SHORT):
            outcome, end = _oracle(path, g, side, horizon, tp, sl, latency)
            assert (int(fp.outcome[m, side]), int(fp.end_ns[m, side])) == (outcome, end)
            if outcome != UNRESOLVED:
                assert g < fp.end_ns[m, side] <= g + latency + horizon
    classes, decided = fp.classes()
    resolved = classes >= 0
    assert (decided[resolved] <= dec[resolved] + latency + horizon).all()
    if tp >= sl:  # the two take-profits exclude each other
        assert not ((fp.outcome[:, LONG] == TAKE_PROFIT) & (fp.outcome[:, SHORT] == TAKE_PROFIT)).any()
    assert ((classes == UP) <= (fp.outcome[:, LONG] == TAKE_PROFIT)).all()
    assert ((classes == DOWN) <= (fp.outcome[:, SHORT] == TAKE_PROFIT)).all()


@given(st.lists(st.tuples(st.integers(0, 5), st.integers(0, 8), st.booleans()), min_size=1, max_size=50))
@example(rows=[(0, 0, True), (1, 0, True), (0, 0, True), (0, 0, True), (1, 0, True)])  # 1 + 2**-52 before the clip
def test_uniqueness_weights_times_coverage_add_up_to_the_covered_rows(rows):
    start = np.cumsum([g for g, _, _ in rows]).astype(np.int64)
    end = start + np.array([d for _, d, _ in rows], dtype=np.int64)
    keep = np.array([k for _, _, k in rows])
    w = uniqueness_weights(start, end, keep)
    first = np.searchsorted(start, start, side="left")
    last = np.searchsorted(start, end, side="right") - 1
    covered = np.zeros(len(start), dtype=bool)
    for i in np.flatnonzero(keep):
        covered[first[i] : last[i] + 1] = True
    assert ((w > 0) & (w <= 1) == keep).all()
    assert np.isclose(np.sum(w * (last - first + 1)), covered.sum())
