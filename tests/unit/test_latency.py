"""Latency models (exec/latency.py) alone and inside the passive exchange (exec/passive.py)."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.exec import passive as px
from scalper.exec.latency import draw_latency, latency_model, new_rng_state, rng_below
from scalper.exec.queue import QUEUE_RISK_AVERSE
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE

# A recorded-looking distribution: a body near 2 ms and a tail to 40 ms (ns).
_RNG = np.random.default_rng(7)
DIST = np.concatenate([_RNG.integers(1_500_000, 2_500_000, 900), _RNG.integers(5_000_000, 40_000_000, 100)])


def exchange(entry, resp, seed=0, **kw):
    ex = px.new_exchange(
        tick_size=1.0,
        lot_size=1.0,
        entry_latency_ns=entry,
        response_latency_ns=resp,
        queue_model=QUEUE_RISK_AVERSE,
        latency_seed=seed,
        **kw,
    )
    assert px.on_event(ex, 0, KIND_BOOK, 1, 99, 5.0) == px.OK
    assert px.on_event(ex, 0, KIND_BOOK, -1, 101, 5.0) == px.OK
    return ex


def test_latency_model_takes_an_int_or_a_distribution_and_names_bad_input():
    assert latency_model("x", 7).tolist() == [7]
    assert latency_model("x", np.array([3.0, 4.0])).tolist() == [3, 4]
    with pytest.raises(ValueError, match="x must be >= 0; got -1"):
        latency_model("x", -1)
    with pytest.raises(ValueError, match="x must be >= 0 ns everywhere; got min -5"):
        latency_model("x", np.array([1, -5]))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        latency_model("x", np.array([], dtype=np.int64))
    with pytest.raises(ValueError, match="non-empty 1-D"):
        latency_model("x", np.ones((2, 2), dtype=np.int64))
    with pytest.raises(ValueError, match="whole ns"):
        latency_model("x", np.array([1.5]))
    with pytest.raises(ValueError, match="whole ns"):
        latency_model("x", np.array([np.nan, 1.0]))
    with pytest.raises(ValueError, match="integer ns"):
        latency_model("x", np.array(["a"]))


def test_a_constant_model_returns_its_value_and_leaves_the_generator_alone():
    rng = new_rng_state(5)
    model = latency_model("x", 1234)
    assert [draw_latency(model, rng) for _ in range(5)] == [1234] * 5
    assert rng[0] == np.uint64(5)


def test_the_generator_is_reproducible_from_its_seed_and_uniform():
    a, b, c = new_rng_state(1), new_rng_state(1), new_rng_state(2)
    xa = [rng_below(a, 10) for _ in range(20_000)]
    xb = [rng_below(b, 10) for _ in range(20_000)]
    xc = [rng_below(c, 10) for _ in range(20_000)]
    assert xa == xb and xa != xc
    counts = np.bincount(xa, minlength=10)
    assert min(xa) >= 0 and max(xa) < 10 and counts.size == 10
    # 2 000 expected per value; 5 standard deviations is about 212.
    assert np.all(np.abs(counts - 2_000) < 212)


def test_sampled_latencies_reproduce_the_recorded_quantiles():
    rng = new_rng_state(11)
    model = latency_model("x", DIST)
    draws = np.array([draw_latency(model, rng) for _ in range(100_000)])
    assert set(np.unique(draws)) <= set(DIST.tolist())
    for q in (0.1, 0.5, 0.9, 0.95, 0.99):
        # The empirical quantile of 100 000 draws sits within 1 % in probability of the recorded one.
        lo, hi = np.quantile(DIST, [max(q - 0.01, 0.0), min(q + 0.01, 1.0)])
        assert lo <= np.quantile(draws, q) <= hi, q


def _spaced_requests(ex, n, gap):
    """n cancels of one resting order, sent `gap` ns apart (wider than any latency: no FIFO lifting)."""
    oid = px.submit(ex, 0, 1, 99, 1, px.TIF_GTX)
    assert oid == 0
    sent = np.arange(1, n + 1, dtype=np.int64) * gap
    arrivals = []
    for t in sent:
        assert px.cancel(ex, int(t), oid) == px.OK
        r = (ex.ip[px.I_RQ_HEAD] + ex.ip[px.I_RQ_COUNT] - 1) % ex.rq.shape[0]
        arrivals.append(int(ex.rq[r, px.RQ_ARRIVAL]))
        assert px.flush_requests(ex, int(t) + gap - 1) == px.OK
    return sent, np.array(arrivals)


def test_the_exchange_samples_entry_and_response_latency_per_request_from_the_distributions():
    n = 20_000
    ex = exchange(DIST, DIST[::-1].copy(), seed=3, response_capacity=n + 8)
    sent, arrivals = _spaced_requests(ex, n, 100_000_000)
    entry = arrivals - sent
    resp = []
    r = px.next_response(ex, 2**62)
    while r >= 0:
        resp.append(int(ex.ri[r, px.R_TS_LOCAL] - ex.ri[r, px.R_TS_EXCH]))
        r = px.next_response(ex, 2**62)
    resp = np.array(resp)
    assert resp.size == n + 1  # the order's ack, then one answer per cancel
    for got in (entry, resp):
        assert set(np.unique(got)) <= set(DIST.tolist())
        for q in (0.5, 0.9, 0.99):
            lo, hi = np.quantile(DIST, [q - 0.02, min(q + 0.02, 1.0)])
            assert lo <= np.quantile(got, q) <= hi, q


def test_the_same_seed_gives_the_same_times_and_another_seed_other_times():
    def arrivals(seed):
        return _spaced_requests(exchange(DIST, DIST, seed=seed), 50, 100_000_000)[1].tolist()

    assert arrivals(9) == arrivals(9)
    assert arrivals(9) != arrivals(10)


def test_a_constant_latency_keeps_todays_times():
    ex = exchange(1_000, 300)
    sent, arrivals = _spaced_requests(ex, 5, 10_000)
    assert (arrivals - sent).tolist() == [1_000] * 5


def test_a_fill_is_seen_locally_when_its_response_is():
    ex = exchange(np.array([10, 20, 30]), np.array([100, 5_000, 70_000]), seed=4)
    oids = [px.submit(ex, t, 1, 99, 1, px.TIF_GTX) for t in (0, 1, 2)]
    assert px.on_event(ex, 1_000, KIND_TRADE, -1, 98, 1.0) == px.OK  # through the bid: all three fill
    f = px.fills_table(ex)
    assert f["order_id"].tolist() == oids
    seen = {}
    r = px.next_response(ex, 2**62)
    while r >= 0:
        if ex.ri[r, px.R_FILLED] > 0:
            seen[int(ex.ri[r, px.R_ID])] = int(ex.ri[r, px.R_TS_LOCAL])
        r = px.next_response(ex, 2**62)
    assert [seen[o] for o in oids] == f["ts_local"].tolist()


@settings(max_examples=200, deadline=None)
@given(
    st.lists(st.integers(0, 50_000), min_size=1, max_size=20),
    st.lists(st.integers(0, 50_000), min_size=1, max_size=20),
    st.lists(st.tuples(st.integers(0, 30_000), st.booleans()), min_size=1, max_size=40),
    st.integers(0, 2**32),
)
def test_fifo_no_request_or_response_overtakes_an_earlier_one(entry, resp, steps, seed):
    ex = exchange(np.array(entry), np.array(resp), seed=seed, order_capacity=64, response_capacity=256)
    t = 0
    last_arrival = -1
    last_local = -1
    for gap, is_trade in steps:
        t += gap
        if is_trade:
            # A trade through both sides fills whatever rests; the book is restored after it.
            assert px.on_event(ex, t, KIND_TRADE, -1, 90, 100.0) == px.OK
            assert px.on_event(ex, t, KIND_TRADE, 1, 110, 100.0) == px.OK
            continue
        oid = px.submit(ex, t, 1 if gap % 2 else -1, 99 if gap % 2 else 101, 1, px.TIF_GTX)
        assert oid >= 0
        r = (ex.ip[px.I_RQ_HEAD] + ex.ip[px.I_RQ_COUNT] - 1) % ex.rq.shape[0]
        arrival = int(ex.rq[r, px.RQ_ARRIVAL])
        assert arrival >= t + min(entry)  # never before the fastest entry latency allows
        assert arrival >= last_arrival  # never before an earlier request
        last_arrival = arrival
        r = px.next_response(ex, 2**62)
        while r >= 0:
            local = int(ex.ri[r, px.R_TS_LOCAL])
            assert local >= int(ex.ri[r, px.R_TS_EXCH]) + min(resp)
            assert local >= last_local
            last_local = local
            r = px.next_response(ex, 2**62)
    assert px.flush_requests(ex, 2**62) == px.OK
    f = px.fills_table(ex)
    assert np.all(f["ts_local"] >= f["ts_exch"] + min(resp))
    assert np.all(np.diff(f["ts_local"]) >= 0)
