"""Tests of the synthetic order-flow generator: determinism, schema, book invariants, Poisson rates, signal."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from numba import njit

from scalper.ingest.synthetic import SyntheticConfig, _emit, generate_session
from scalper.ingest.tickfile import (
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    KIND_TRADE,
    TickData,
    validate,
)
from scalper.lowlevel.book import book_clear, book_set, is_crossed, new_book, side_index

NS = 1_000_000_000

# Columns of the per-message replay record.
BID_PX, BID_SZ, ASK_PX, ASK_SZ, N_BID, N_ASK, WORST_BID, WORST_ASK, DEPTH, CROSSED, ORIGIN, FILL_AT_TOUCH = range(12)
LIMIT, CANCEL, MARKET = 0, 1, 2


@njit(cache=True)
def _size_at(px, sz, n, s, tick):
    for j in range(n[s]):
        if px[s, j] == tick:
            return sz[s, j]
    return 0.0


@njit(cache=True)
def _replay(px, sz, n, kind, side, tick, size, flags):
    # One record per message, taken on the book as it stands at the message's last row. ORIGIN is what
    # the message's first row says about the event: a trade (MARKET), or a level that grew (LIMIT) or shrank.
    n_msg = int(np.sum((flags & FLAG_LAST_IN_MESSAGE) != 0))
    rec = np.zeros((n_msg, 12))
    m = 0
    first = True
    touch_ok = 1.0
    origin = -1.0
    for i in range(kind.shape[0]):
        if kind[i] == KIND_CLEAR:
            book_clear(n)
        elif kind[i] == KIND_TRADE:
            if first:
                origin = MARKET
                opp = 1 - side_index(side[i])
                touch_ok = 1.0 if n[opp] > 0 and px[opp, 0] == tick[i] else 0.0
        else:
            s = side_index(side[i])
            if first:
                origin = LIMIT if size[i] > _size_at(px, sz, n, s, tick[i]) else CANCEL
            book_set(px, sz, n, s, tick[i], size[i])
        first = False
        if flags[i] & FLAG_LAST_IN_MESSAGE:
            rec[m, BID_PX] = px[0, 0]
            rec[m, BID_SZ] = sz[0, 0]
            rec[m, ASK_PX] = px[1, 0]
            rec[m, ASK_SZ] = sz[1, 0]
            rec[m, N_BID] = n[0]
            rec[m, N_ASK] = n[1]
            rec[m, WORST_BID] = px[0, max(n[0] - 1, 0)]
            rec[m, WORST_ASK] = px[1, max(n[1] - 1, 0)]
            rec[m, DEPTH] = np.sum(sz[0, : n[0]]) + np.sum(sz[1, : n[1]])
            rec[m, CROSSED] = is_crossed(px, n)
            rec[m, ORIGIN] = origin
            rec[m, FILL_AT_TOUCH] = touch_ok
            m += 1
            first = True
            touch_ok = 1.0
    return rec


def replay(data: TickData) -> tuple[np.ndarray, np.ndarray]:
    """Return (ts of each message end, replay record per message); sizes in lots, prices in ticks."""
    lots = data.size / data.instrument.lot_size
    rec = _replay(*new_book(1024), data.kind, data.side, data.price_tick, lots, data.flags)
    return data.ts_event[(data.flags & FLAG_LAST_IN_MESSAGE) != 0], rec


def assert_book_sound(rec: np.ndarray, depth_ticks: int) -> None:
    assert np.all(rec[:, N_BID] > 0) and np.all(rec[:, N_ASK] > 0), "a side emptied out"
    assert not rec[:, CROSSED].any(), "crossed or locked book"
    assert np.all(rec[:, BID_PX] >= 1), "non-positive price"
    mid2 = rec[:, BID_PX] + rec[:, ASK_PX]
    assert np.all(mid2 - 2 * rec[:, WORST_BID] <= 2 * depth_ticks), "bid level outside the depth window"
    assert np.all(2 * rec[:, WORST_ASK] - mid2 <= 2 * depth_ticks), "ask level outside the depth window"


def within_sigmas(count: int, expected: float, k: float = 5.0) -> bool:
    return abs(count - expected) <= k * np.sqrt(expected)


@pytest.fixture(scope="module")
def cfg() -> SyntheticConfig:
    return SyntheticConfig(seed=7)


@pytest.fixture(scope="module")
def session(cfg):
    return generate_session(cfg)


@pytest.fixture(scope="module")
def replayed(session):
    return replay(session)


def session_messages(rec: np.ndarray) -> np.ndarray:
    return rec[1:]  # the first message is the snapshot


# --- determinism -------------------------------------------------------------------------------


def test_same_seed_gives_identical_arrays(session, cfg):
    again = generate_session(cfg)
    for name, col in session.columns().items():
        assert np.array_equal(col, getattr(again, name)), name
    assert again.instrument == session.instrument


def test_different_seed_gives_different_flow(session):
    other = generate_session(SyntheticConfig(seed=8))
    assert other.instrument.source == "synthetic:seed=8"
    assert not np.array_equal(session.size[:100], other.size[:100]), "same opening snapshot"
    assert not np.array_equal(session.ts_event[1000:1100], other.ts_event[1000:1100]), "same event times"


def test_output_buffer_grows_and_keeps_its_rows():
    # Sessions size their buffer from the configured rates; an unlucky long one must still fit.
    out = np.arange(6, dtype=np.int64).reshape(1, 6)
    out, n = _emit(out, 1, 10, KIND_TRADE, 1, 500, 3, FLAG_LAST_IN_MESSAGE)
    assert n == 2 and out.shape == (2, 6)
    assert out[0].tolist() == [0, 1, 2, 3, 4, 5]
    assert out[1].tolist() == [10, KIND_TRADE, 1, 500, 3, FLAG_LAST_IN_MESSAGE]


# --- schema ------------------------------------------------------------------------------------


def test_output_passes_schema_validation_and_says_synthetic(session, cfg):
    validate(session)
    inst = session.instrument
    assert (inst.venue, inst.symbol) == ("SYNTHETIC", "SYN")
    assert inst.source == "synthetic:seed=7"
    assert (inst.tick_size, inst.lot_size) == (cfg.tick_size, cfg.lot_size)
    assert np.array_equal(session.ts_recv, session.ts_event)


def test_snapshot_comes_first_and_opens_at_the_configured_mid(session, replayed, cfg):
    snap = (session.flags & FLAG_SNAPSHOT) != 0
    k = int(snap.sum())
    assert k > cfg.depth_ticks, "the snapshot should hold a deep book on both sides"
    assert snap[:k].all() and not snap[k:].any(), "snapshot rows must be the leading block"
    assert session.kind[0] == KIND_CLEAR
    assert np.all(session.kind[1:k] == KIND_BOOK)
    assert np.all(session.ts_event[:k] == cfg.start_ns)
    last = np.flatnonzero(session.flags & FLAG_LAST_IN_MESSAGE)
    assert last[0] == k - 1, "the snapshot is exactly one message"
    _, rec = replayed
    assert (rec[0, BID_PX] + rec[0, ASK_PX]) // 2 == cfg.mid_ticks


def test_every_message_is_one_event_time_and_ends_flagged(session):
    ends = np.flatnonzero(session.flags & FLAG_LAST_IN_MESSAGE)
    assert ends[-1] == len(session) - 1, "the last row must close its message"
    msg_id = np.concatenate(([0], np.cumsum((session.flags[:-1] & FLAG_LAST_IN_MESSAGE) != 0)))
    first_ts = session.ts_event[np.concatenate(([0], ends[:-1] + 1))]
    assert np.array_equal(session.ts_event, first_ts[msg_id]), "rows of one message share ts_event"


def test_prices_sizes_and_timestamps_are_well_formed(session, cfg):
    levels = session.kind != KIND_CLEAR
    assert np.all(session.price[levels] > 0)
    assert np.all(np.diff(session.ts_event) >= 0)
    assert session.ts_event[-1] < cfg.start_ns + cfg.duration_s * NS
    lots = session.size / cfg.lot_size
    assert np.array_equal(lots, np.round(lots))
    assert np.all(session.size[session.kind == KIND_TRADE] > 0)
    ticks = session.price_tick[levels]
    assert np.allclose(ticks * cfg.tick_size, session.price[levels], rtol=0, atol=1e-9)


# --- book invariants ---------------------------------------------------------------------------


def test_replayed_book_is_never_crossed_or_one_sided(replayed, cfg):
    _, rec = replayed
    assert_book_sound(rec, cfg.depth_ticks)


def test_market_orders_fill_at_the_touch(replayed):
    _, rec = replayed
    market = session_messages(rec)[:, ORIGIN] == MARKET
    assert market.any()
    assert np.all(session_messages(rec)[market, FILL_AT_TOUCH] == 1.0)


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    depth=st.integers(2, 40),
    mid_extra=st.integers(0, 50),
    market_rate=st.floats(0.5, 8.0),
    strength=st.floats(0.0, 1.0),
    size_mean=st.floats(1.0, 6.0),
)
def test_book_stays_sound_for_any_parameters(seed, depth, mid_extra, market_rate, strength, size_mean):
    # Shallow windows, aggressive flow and a mid near the zero-price floor stress refills and purges.
    cfg = SyntheticConfig(
        seed=seed,
        duration_s=60.0,
        warmup_s=20.0,
        tick_size=0.01,
        mid_price=(depth + 2 + mid_extra) * 0.01,
        depth_ticks=depth,
        market_rate=market_rate,
        regime_strength=strength,
        regime_mean_s=5.0,
        size_mean_lots=size_mean,
    )
    data = generate_session(cfg)
    validate(data)
    _, rec = replay(data)
    assert_book_sound(rec, depth)


# --- Poisson rates -----------------------------------------------------------------------------


def test_market_order_count_matches_the_configured_rate(replayed, cfg):
    # Regimes only tilt buy against sell; the summed market-order intensity stays 2 * market_rate.
    _, rec = replayed
    count = int(np.sum(session_messages(rec)[:, ORIGIN] == MARKET))
    assert within_sigmas(count, 2 * cfg.market_rate * cfg.duration_s)


def test_limit_order_count_matches_the_configured_rate(replayed, cfg):
    _, rec = replayed
    count = int(np.sum(session_messages(rec)[:, ORIGIN] == LIMIT))
    assert within_sigmas(count, 2 * cfg.limit_rate * cfg.duration_s)


def test_cancellation_count_follows_the_resting_depth(replayed, cfg):
    # Given the path, cancellations are Poisson with compensator cancel_rate / size_mean * integral of depth dt.
    ts, rec = replayed
    depth = rec[:, DEPTH]
    dwell_s = np.diff(np.append(ts, cfg.start_ns + cfg.duration_s * NS)) / NS
    expected = cfg.cancel_rate / cfg.size_mean_lots * float(np.sum(depth * dwell_s))
    count = int(np.sum(session_messages(rec)[:, ORIGIN] == CANCEL))
    assert within_sigmas(count, expected)


def test_message_rate_is_in_the_demo_band(replayed, cfg):
    ts, _ = replayed
    assert 20 <= (len(ts) - 1) / cfg.duration_s <= 50


# --- predictive content ------------------------------------------------------------------------


def mid_ticks(rec: np.ndarray) -> np.ndarray:
    return (rec[:, BID_PX] + rec[:, ASK_PX]) / 2


def t_stat(r: float, n: int) -> float:
    return r * np.sqrt((n - 2) / (1 - r * r))


def test_queue_imbalance_predicts_the_next_mid_change(replayed, cfg):
    ts, rec = replayed
    mid = mid_ticks(rec)
    sample_ts = cfg.start_ns + np.arange(1, int(cfg.duration_s) - 60) * NS
    at = np.searchsorted(ts, sample_ts, side="right") - 1
    qi = (rec[at, BID_SZ] - rec[at, ASK_SZ]) / (rec[at, BID_SZ] + rec[at, ASK_SZ])
    changes = np.flatnonzero(np.diff(mid) != 0) + 1
    nxt = changes[np.searchsorted(changes, at, side="right")]
    move = mid[nxt] - mid[at]
    r = float(np.corrcoef(qi, move)[0, 1])
    assert r > 0.2
    assert t_stat(r, len(qi)) > 5


def signed_flow_vs_future_mid(data: TickData, cfg: SyntheticConfig, horizon_s: int) -> float:
    """Correlation of signed market-order volume over the past horizon with the mid change over the next."""
    ts, rec = replay(data)
    mid = mid_ticks(rec)
    trades = data.kind == KIND_TRADE
    t_ts = data.ts_event[trades]
    cum = np.concatenate(([0.0], np.cumsum(data.side[trades] * data.size[trades])))
    now = cfg.start_ns + np.arange(horizon_s, int(cfg.duration_s) - horizon_s, horizon_s) * NS

    def cum_at(t):
        return cum[np.searchsorted(t_ts, t, side="right")]

    def mid_at(t):
        return mid[np.searchsorted(ts, t, side="right") - 1]

    flow = cum_at(now) - cum_at(now - horizon_s * NS)
    move = mid_at(now + horizon_s * NS) - mid_at(now)
    return float(np.corrcoef(flow, move)[0, 1])


def test_regimes_make_recent_trade_flow_predictive(session, cfg):
    # A 5 s horizon against 20 s regimes gives 358 non-overlapping samples in 30 minutes. Without
    # regimes the same statistic is near zero or slightly negative (the book mean-reverts).
    n = int(cfg.duration_s) // 5 - 2
    with_regimes = signed_flow_vs_future_mid(session, cfg, 5)
    flat_cfg = SyntheticConfig(seed=cfg.seed, regime_strength=0.0)
    without = signed_flow_vs_future_mid(generate_session(flat_cfg), flat_cfg, 5)
    assert t_stat(with_regimes, n) > 3
    assert with_regimes > without + 0.1


def test_config_rejects_meaningless_parameters():
    with pytest.raises(ValueError, match="regime_strength"):
        SyntheticConfig(regime_strength=1.5)
    with pytest.raises(ValueError, match="mid_price"):
        SyntheticConfig(mid_price=1.0, depth_ticks=200)
    with pytest.raises(ValueError, match="rates"):
        SyntheticConfig(cancel_rate=0.0)
