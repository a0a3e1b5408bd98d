"""The comparison market maker (backtest/maker_peer.py) on hand-made event sequences: exact fills and times."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from scalper.backtest.maker_peer import MakerPeerParams, local_clock_offset, run_maker_peer
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE, Instrument, TickData

INST = Instrument("TEST", "X", 1.0, 1.0, "hand-made")
# Grid 100 ns, entry and response 10 ns, maker rebate 1 bp.
PARAMS = MakerPeerParams(step_ns=100, entry_ns=10, response_ns=10, max_position=5, maker_bps=-1.0)


def data(rows: list[tuple]) -> TickData:
    """rows: (ts_event, kind, side, price, size[, ts_recv]); ts_recv defaults to ts_event."""
    ts = np.array([r[0] for r in rows], dtype=np.int64)
    recv = np.array([r[5] if len(r) > 5 else r[0] for r in rows], dtype=np.int64)
    return TickData(
        INST,
        ts,
        recv,
        np.array([r[1] for r in rows], dtype=np.uint8),
        np.array([r[2] for r in rows], dtype=np.int8),
        np.array([r[3] for r in rows], dtype=np.float64),
        np.array([r[4] for r in rows], dtype=np.float64),
        np.zeros(len(rows), dtype=np.uint8),
    )


def book(ts: int, bid: float = 99.0, bid_size: float = 5.0, ask: float = 101.0, ask_size: float = 3.0) -> list[tuple]:
    return [(ts, KIND_CLEAR, 0, 0.0, 0.0), (ts, KIND_BOOK, 1, bid, bid_size), (ts, KIND_BOOK, -1, ask, ask_size)]


def fills(res) -> list[tuple]:
    f = res.fills
    return list(
        zip(
            *(f[k].tolist() for k in ("exch_ts", "local_ts", "side", "price_tick", "qty_lots", "order_id")), strict=True
        )
    )


def test_a_quote_fills_only_when_trades_took_the_queue_ahead_and_one_lot():
    rows = [
        *book(0),
        (50, KIND_TRADE, 1, 101.0, 3.0),  # takes the 3 lots ahead of our sell: not filled yet
        (60, KIND_TRADE, 1, 101.0, 1.0),  # our lot
        (250, KIND_BOOK, 1, 99.0, 5.0),
    ]
    res = run_maker_peer(data(rows), PARAMS)
    # Decision at 0: buy id 0 @99, sell id 1 @101, both reach the exchange at 10.
    assert fills(res) == [(60, 70, -1, 101, 1, 1)]
    assert res.position_lots == -1
    assert res.balance == pytest.approx(101.0)
    assert res.fee == pytest.approx(-101.0 * 1e-4)
    # Decisions at 0, 100 and 200; at 100 the sell is seen filled and a new one goes out.
    assert res.steps == 3 and res.submitted == 3


def test_a_trade_through_the_price_fills_and_a_trade_before_arrival_does_not():
    rows = [
        *book(0),
        (5, KIND_TRADE, -1, 98.0, 1.0),  # before our buy arrives at 10
        (30, KIND_TRADE, -1, 98.0, 1.0),  # through our buy at 99 (5 lots ahead): fills
        (150, KIND_BOOK, 1, 99.0, 5.0),
    ]
    res = run_maker_peer(data(rows), PARAMS)
    assert fills(res) == [(30, 40, 1, 99, 1, 0)]
    assert res.position_lots == 1 and res.balance == pytest.approx(-99.0)


def test_the_best_ask_falling_to_a_resting_buy_fills_it():
    rows = [*book(0), (40, KIND_BOOK, -1, 99.0, 2.0), (150, KIND_BOOK, -1, 99.0, 2.0)]
    res = run_maker_peer(data(rows), PARAMS)
    assert fills(res) == [(40, 50, 1, 99, 1, 0)]


def test_a_post_only_order_that_would_cross_on_arrival_is_expired_and_requoted():
    rows = [
        *book(0),
        # At 5, before our orders arrive at 10: the bid 99 leaves, a bid at 98 and an ask at 99 appear.
        (5, KIND_BOOK, 1, 99.0, 0.0),
        (5, KIND_BOOK, 1, 98.0, 4.0),
        (5, KIND_BOOK, -1, 99.0, 2.0),
        (150, KIND_BOOK, 1, 98.0, 4.0),
    ]
    res = run_maker_peer(data(rows), PARAMS)
    # 0: buy 0 @99 (expired at 10), sell 1 @101; 100: buy 2 @98, sell 1 canceled and sell 3 @99.
    assert fills(res) == [] and res.submitted == 4


def test_the_position_limit_stops_the_side_that_adds_to_it():
    p = MakerPeerParams(step_ns=100, entry_ns=10, response_ns=10, max_position=1)
    rows = [*book(0)]
    for k in range(5):  # a sell trade through the bid in every step
        rows.append((30 + 100 * k, KIND_TRADE, -1, 98.0, 1.0))
    rows.append((600, KIND_BOOK, 1, 99.0, 5.0))
    res = run_maker_peer(data(rows), p)
    # Only the first buy fills: from the decision at 100 on the position is at the limit.
    assert fills(res) == [(30, 40, 1, 99, 1, 0)]
    assert res.position_lots == 1


def test_the_local_clock_is_shifted_so_no_event_arrives_before_it_happened():
    rows = [(1000, KIND_BOOK, 1, 99.0, 5.0, 400), (1010, KIND_BOOK, -1, 101.0, 3.0, 450)]
    assert local_clock_offset(data(rows)) == 600
    rows_late = [(1000, KIND_BOOK, 1, 99.0, 5.0, 1004)]
    assert local_clock_offset(data(rows_late)) == 0


def test_a_decision_sees_only_the_book_that_reached_the_local_side():
    # The ask at 100 happens at 40 but reaches the local side at 140: the decision at 100 still quotes 101.
    rows = [*book(0), (40, KIND_BOOK, -1, 100.0, 1.0, 140), (250, KIND_BOOK, 1, 99.0, 5.0, 250)]
    res = run_maker_peer(data(rows), replace(PARAMS, local_offset_ns=0))
    # 0: buy 0, sell 1 @101. 100: unchanged. 200: the local ask is 100, sell 1 canceled, sell 2 @100.
    assert res.submitted == 3 and fills(res) == []


@pytest.mark.parametrize(
    ("change", "match"),
    [
        ({"step_ns": 0}, "step_ns"),
        ({"entry_ns": -1}, "latencies"),
        ({"max_position": 0}, "max_position"),
        ({"queue_model": 99}, "queue model"),
    ],
)
def test_bad_settings_are_refused_naming_them(change, match):
    with pytest.raises(ValueError, match=match):
        run_maker_peer(data(book(0)), MakerPeerParams(**change))
