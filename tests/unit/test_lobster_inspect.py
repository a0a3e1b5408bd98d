"""Tick-file inspector on a tiny LOBSTER import and on hand-made locked/crossed events."""

from __future__ import annotations

import numpy as np

from scalper.ingest.inspect import format_report, inspect_tickfile
from scalper.ingest.lobster import import_lobster
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT as SNAP
from scalper.ingest.tickfile import KIND_BOOK as BOOK
from scalper.ingest.tickfile import KIND_CLEAR as CLEAR
from scalper.ingest.tickfile import KIND_TRADE as TRADE
from scalper.ingest.tickfile import Instrument, TickData

MESSAGES = [
    "34200.000000001,1,11,100,1000100,-1",
    "34200.5,1,12,50,999900,1",
    "34201.25,4,11,30,1000100,-1",
    "34201.25,5,0,10,1000050,1",
    "34202,3,13,200,1000300,-1",
    "34203,7,0,0,-1,-1",
]
BOOK_ROWS = [
    "1000100,100,999800,300,1000300,200,999700,400",  # spread 3 ticks
    "1000100,100,999900,50,1000300,200,999800,300",  # 2 ticks from here on
    "1000100,70,999900,50,1000300,200,999800,300",
    "1000100,70,999900,50,1000300,200,999800,300",
    "1000100,70,999900,50,1000500,10,999800,300",
    "1000100,70,999900,50,1000500,10,999800,300",
]


def tick_data(events: list[tuple]) -> TickData:
    ts, kind, side, price, size, flags = (np.array(c) for c in zip(*events, strict=True))
    return TickData(
        Instrument("TEST", "X", 0.01, 1.0, "hand-made"),
        ts.astype(np.int64),
        ts.astype(np.int64),
        kind.astype(np.uint8),
        side.astype(np.int8),
        price.astype(np.float64),
        size.astype(np.float64),
        flags.astype(np.uint8),
    )


def test_inspect_small_lobster_import(tmp_path):
    msg = tmp_path / "TEST_2012-06-21_34200000_57600000_message_2.csv"
    ob = tmp_path / "TEST_2012-06-21_34200000_57600000_orderbook_2.csv"
    msg.write_text("\n".join(MESSAGES) + "\n")
    ob.write_text("\n".join(BOOK_ROWS) + "\n")
    d = inspect_tickfile(import_lobster(msg, ob).data)
    assert d["instrument"]["symbol"] == "TEST" and d["instrument"]["venue"] == "NASDAQ"
    assert d["events"] == 12
    assert d["first_ts"] == "2012-06-21T13:30:00.000000001Z"
    assert d["last_ts"] == "2012-06-21T13:30:02.000000000Z"
    assert d["span_s"] == 1.999999999
    assert d["events_by_kind"] == {"book": 9, "trade": 2, "clear": 1}
    assert (d["snapshots"], d["snapshot_events"], d["messages"], d["two_sided_messages"]) == (1, 5, 5, 5)
    assert (d["spread_min_ticks"], d["spread_median_ticks"]) == (2, 2.0)
    assert (d["crossed"], d["crossed_rows"], d["locked"], d["locked_rows"]) == (0, [], 0, [])
    assert d["book_overflows"] == 0


def test_inspect_counts_locked_and_crossed_message_ends_only():
    data = tick_data(
        [
            (1, CLEAR, 0, 0.0, 0.0, SNAP),
            (1, BOOK, 1, 1.00, 5.0, SNAP),
            (1, BOOK, -1, 1.02, 5.0, SNAP | LAST),  # spread 2
            (2, BOOK, 1, 1.03, 5.0, 0),  # crossed inside a message: not counted
            (2, BOOK, 1, 1.03, 0.0, 0),
            (2, BOOK, 1, 1.02, 5.0, LAST),  # locked
            (3, BOOK, 1, 1.03, 5.0, LAST),  # crossed
            (4, TRADE, 1, 1.02, 1.0, LAST),  # still crossed
            (5, BOOK, -1, 1.02, 0.0, LAST),  # one-sided: no spread
        ]
    )
    d = inspect_tickfile(data)
    assert (d["messages"], d["two_sided_messages"]) == (5, 4)
    assert (d["spread_min_ticks"], d["spread_median_ticks"]) == (-1, -0.5)
    assert (d["locked"], d["locked_rows"]) == (1, [5])
    assert (d["crossed"], d["crossed_rows"]) == (2, [6, 7])
    report = format_report(d)
    assert "crossed books   2 (rows 6, 7)" in report
    assert "locked books    1 (rows 5)" in report
    assert "spread, ticks   min -1, median -0.5" in report


def test_inspect_lists_only_the_first_few_crossed_rows():
    events = [(1, CLEAR, 0, 0.0, 0.0, SNAP), (1, BOOK, 1, 1.05, 1.0, SNAP), (1, BOOK, -1, 1.00, 1.0, SNAP | LAST)]
    events += [(2 + i, TRADE, 1, 1.0, 1.0, LAST) for i in range(7)]
    d = inspect_tickfile(tick_data(events))
    assert (d["crossed"], d["crossed_rows"]) == (8, [2, 3, 4, 5, 6])
    assert "8 (rows 2, 3, 4, 5, 6, ...)" in format_report(d)


def test_inspect_counts_overflow_of_a_small_replay_book():
    events = [(1, CLEAR, 0, 0.0, 0.0, SNAP)] + [(1, BOOK, 1, 1.0 - 0.01 * i, 1.0, SNAP) for i in range(3)]
    events[-1] = events[-1][:5] + (SNAP | LAST,)
    d = inspect_tickfile(tick_data(events), capacity=2)
    assert d["book_overflows"] == 1


def test_inspect_empty_tick_data():
    empty = TickData(
        Instrument("TEST", "X", 0.01, 1.0, "hand-made"),
        *(np.empty(0, dtype=dt) for dt in (np.int64, np.int64, np.uint8, np.int8, np.float64, np.float64, np.uint8)),
    )
    d = inspect_tickfile(empty)
    assert (d["events"], d["first_ts"], d["span_s"], d["messages"], d["spread_min_ticks"]) == (0, None, 0.0, 0, None)
    assert "n/a" in format_report(d)
