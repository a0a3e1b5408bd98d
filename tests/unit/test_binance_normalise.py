"""Binance normaliser: exact schema-v1 rows for snapshots, diffs and trades; the growable buffer."""

from __future__ import annotations

import numpy as np
import pytest

from scalper.ingest.binance.messages import DepthSnapshot, DepthUpdate, Trade
from scalper.ingest.binance.normalise import EventBuffer, event_time_ns
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT as SNAP
from scalper.ingest.tickfile import KIND_BOOK as BOOK
from scalper.ingest.tickfile import KIND_CLEAR as CLEAR
from scalper.ingest.tickfile import KIND_TRADE as TRADE
from scalper.ingest.tickfile import Instrument, validate

MS = 1_000_000
INSTRUMENT = Instrument("BINANCE_USDM", "BTCUSDT", 0.1, 0.001, "binance:test")


def levels(*rows: tuple[float, float]) -> np.ndarray:
    return np.array(rows, dtype=np.float64).reshape(-1, 2)


def rows(buf: EventBuffer) -> list[tuple]:
    c = buf.columns()
    return [
        (
            int(c["ts_event"][i]),
            int(c["ts_recv"][i]),
            int(c["kind"][i]),
            int(c["side"][i]),
            float(c["price"][i]),
            float(c["size"][i]),
            int(c["flags"][i]),
        )
        for i in range(len(buf))
    ]


DIFF = DepthUpdate(
    "BTCUSDT",
    1_700_000_000_005,
    1_700_000_000_003,
    10,
    12,
    9,
    levels((61800.2, 1.5), (61700.0, 0.0)),
    levels((61800.3, 2.0)),
)


def test_diff_becomes_bid_then_ask_levels_last_flagged_with_transaction_time():
    buf = EventBuffer()
    buf.append_diff(DIFF, ts_recv_ns=42)
    t = 1_700_000_000_003 * MS
    assert rows(buf) == [
        (t, 42, BOOK, 1, 61800.2, 1.5, 0),
        (t, 42, BOOK, 1, 61700.0, 0.0, 0),
        (t, 42, BOOK, -1, 61800.3, 2.0, LAST),
    ]


def test_spot_diff_uses_event_time_and_override_wins():
    spot = DepthUpdate("BTCUSDT", 1_700_000_000_100, None, 1, 2, None, levels(), levels((10.0, 1.0)))
    assert event_time_ns(spot) == 1_700_000_000_100 * MS
    buf = EventBuffer()
    buf.append_diff(spot, ts_recv_ns=7, ts_event_ns=99)
    assert rows(buf) == [(99, 7, BOOK, -1, 10.0, 1.0, LAST)]


def test_diff_without_levels_emits_nothing():
    buf = EventBuffer()
    buf.append_diff(DepthUpdate("X", 1, None, 1, 1, None, levels(), levels()), ts_recv_ns=1)
    assert len(buf) == 0


def test_snapshot_is_clear_plus_levels_all_flagged_snapshot():
    snap = DepthSnapshot(500, None, None, levels((100.0, 1.0), (99.0, 2.0)), levels((101.0, 3.0)))
    buf = EventBuffer()
    buf.append_snapshot(snap, ts_event_ns=1000, ts_recv_ns=900)
    assert rows(buf) == [
        (1000, 900, CLEAR, 0, 0.0, 0.0, SNAP),
        (1000, 900, BOOK, 1, 100.0, 1.0, SNAP),
        (1000, 900, BOOK, 1, 99.0, 2.0, SNAP),
        (1000, 900, BOOK, -1, 101.0, 3.0, SNAP | LAST),
    ]


def test_empty_snapshot_flags_the_clear_as_last():
    buf = EventBuffer()
    buf.append_snapshot(DepthSnapshot(1, None, None, levels(), levels()), 5, 5)
    assert rows(buf) == [(5, 5, CLEAR, 0, 0.0, 0.0, SNAP | LAST)]


def test_lone_clear_is_its_own_message_without_snapshot_flag():
    buf = EventBuffer()
    buf.append_clear(ts_event_ns=11, ts_recv_ns=12)
    assert rows(buf) == [(11, 12, CLEAR, 0, 0.0, 0.0, LAST)]


@pytest.mark.parametrize("buyer_is_maker, side", [(True, -1), (False, 1)])
def test_trade_aggressor_side_and_trade_time(buyer_is_maker, side):
    trade = Trade("BTCUSDT", 1_700_000_000_010, 1_700_000_000_008, 77, 61800.3, 0.25, buyer_is_maker)
    assert event_time_ns(trade) == 1_700_000_000_008 * MS
    buf = EventBuffer()
    buf.append_trade(trade, ts_recv_ns=3)
    assert rows(buf) == [(1_700_000_000_008 * MS, 3, TRADE, side, 61800.3, 0.25, LAST)]


def test_snapshot_without_times_has_no_event_time():
    assert event_time_ns(DepthSnapshot(1, None, None, levels(), levels())) is None
    assert event_time_ns(DepthSnapshot(1, 5, None, levels(), levels())) == 5 * MS
    assert event_time_ns(DepthSnapshot(1, 5, 4, levels(), levels())) == 4 * MS


def test_buffer_grows_past_capacity_and_keeps_rows():
    buf = EventBuffer(capacity=2)
    for k in range(50):
        buf.append_diff(DIFF, ts_recv_ns=k)
    assert len(buf) == 150
    c = buf.columns()
    np.testing.assert_array_equal(c["ts_recv"], np.repeat(np.arange(50), 3))
    np.testing.assert_array_equal(c["flags"][2::3], LAST)


def test_truncate_drops_rows_and_checks_range():
    buf = EventBuffer()
    buf.append_diff(DIFF, 1)
    buf.append_diff(DIFF, 2)
    buf.truncate(3)
    assert len(buf) == 3 and set(buf.columns()["ts_recv"]) == {1}
    with pytest.raises(ValueError):
        buf.truncate(4)
    buf.truncate()
    assert len(buf) == 0


def test_to_tickdata_sorts_stably_by_event_time():
    buf = EventBuffer()
    buf.append_diff(DIFF, ts_recv_ns=1)  # T = ...003
    early = Trade("BTCUSDT", 0, 1_700_000_000_001, 1, 61800.3, 0.1, False)
    same = Trade("BTCUSDT", 0, 1_700_000_000_003, 2, 61800.3, 0.2, True)
    buf.append_trade(early, ts_recv_ns=2)
    buf.append_trade(same, ts_recv_ns=3)
    data = buf.to_tickdata(INSTRUMENT)
    validate(data)
    # The earlier trade moves first; the one at the diff's time stays after the whole diff.
    assert data.ts_recv.tolist() == [2, 1, 1, 1, 3]
    assert data.kind.tolist() == [TRADE, BOOK, BOOK, BOOK, TRADE]
    assert data.instrument is INSTRUMENT
