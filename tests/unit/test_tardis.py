"""Tardis.dev CSV importer on tiny literal files: exact events, snapshot boundaries, merge order, errors with
file and line."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from scalper.ingest import tardis
from scalper.ingest.tardis import TardisFormatError, import_tardis
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT as SNAP
from scalper.ingest.tickfile import KIND_BOOK as BOOK
from scalper.ingest.tickfile import KIND_CLEAR as CLEAR
from scalper.ingest.tickfile import KIND_TRADE as TRADE
from scalper.ingest.tickfile import validate

BOOK_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADE_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
TICK, LOT = 0.5, 10.0

BOOK_ROWS = [
    "deribit,BTC-PERPETUAL,1000,1100,true,bid,100.5,10",  # snapshot, message 1
    "deribit,BTC-PERPETUAL,1000,1100,true,ask,101,20",
    "deribit,BTC-PERPETUAL,1000,1200,true,ask,101.5,30",  # same snapshot, message 2
    "deribit,BTC-PERPETUAL,2000,2100,false,bid,100.5,0",  # delta, message 3
    "deribit,BTC-PERPETUAL,2000,2100,false,bid,100,5",
    "deribit,BTC-PERPETUAL,3000,3100,true,bid,99.5,1",  # reconnect: new snapshot, message 4
    "deribit,BTC-PERPETUAL,3000,3100,true,ask,102,2",
]
TRADE_ROWS = [
    "deribit,BTC-PERPETUAL,500,600,t1,buy,101,10",  # before any book row
    "deribit,BTC-PERPETUAL,2000,2050,t2,sell,100.5,30",  # same exchange time as message 3, received earlier
    "deribit,BTC-PERPETUAL,3000,3100,t3,unknown,101.25,20",  # full tie with message 4; off-grid trade price is fine
]


def us(t: int) -> int:
    return t * 1_000


EXPECTED_BOOK = [
    # ts_event, ts_recv, kind, side, price, size, flags
    (us(1000), us(1100), CLEAR, 0, 0.0, 0.0, SNAP),
    (us(1000), us(1100), BOOK, 1, 100.5, 10.0, SNAP),
    (us(1000), us(1100), BOOK, -1, 101.0, 20.0, SNAP | LAST),
    (us(1000), us(1200), BOOK, -1, 101.5, 30.0, SNAP | LAST),
    (us(2000), us(2100), BOOK, 1, 100.5, 0.0, 0),
    (us(2000), us(2100), BOOK, 1, 100.0, 5.0, LAST),
    (us(3000), us(3100), CLEAR, 0, 0.0, 0.0, SNAP),
    (us(3000), us(3100), BOOK, 1, 99.5, 1.0, SNAP),
    (us(3000), us(3100), BOOK, -1, 102.0, 2.0, SNAP | LAST),
]
EXPECTED_TRADES = [
    (us(500), us(600), TRADE, 1, 101.0, 10.0, LAST),
    (us(2000), us(2050), TRADE, -1, 100.5, 30.0, LAST),
    (us(3000), us(3100), TRADE, 0, 101.25, 20.0, LAST),
]


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("".join(line + "\n" for line in [header, *rows]))
    return path


def book_file(folder: Path, rows: list[str] = BOOK_ROWS, name: str = "book.csv") -> Path:
    return write_csv(folder / name, BOOK_HEADER, rows)


def trades_file(folder: Path, rows: list[str] = TRADE_ROWS, name: str = "trades.csv") -> Path:
    return write_csv(folder / name, TRADE_HEADER, rows)


def event_rows(data) -> list[tuple]:
    return [
        (int(t), int(r), int(k), int(s), float(p), float(q), int(f))
        for t, r, k, s, p, q, f in zip(
            data.ts_event, data.ts_recv, data.kind, data.side, data.price, data.size, data.flags, strict=True
        )
    ]


def test_import_book_gives_exact_events_with_clear_before_each_snapshot(tmp_path):
    result = import_tardis(book_file(tmp_path), None, TICK, LOT)
    assert event_rows(result.data) == EXPECTED_BOOK
    assert (result.book_rows, result.trade_rows, result.snapshots, result.messages) == (7, 0, 2, 4)
    assert (result.rows_before_snapshot, result.skipped) == (0, {})
    validate(result.data)


def test_import_trades_maps_aggressor_side_and_flags_each_trade_as_a_message(tmp_path):
    result = import_tardis(None, trades_file(tmp_path), TICK, LOT)
    assert event_rows(result.data) == EXPECTED_TRADES
    assert (result.book_rows, result.trade_rows, result.snapshots, result.messages) == (0, 3, 0, 0)


def test_import_both_merges_by_exchange_time_then_receive_time_book_first_on_a_tie(tmp_path):
    result = import_tardis(book_file(tmp_path), trades_file(tmp_path), TICK, LOT)
    b, t = EXPECTED_BOOK, EXPECTED_TRADES
    assert event_rows(result.data) == [t[0], *b[:4], t[1], *b[4:], t[2]]


def test_import_sets_instrument_from_the_file_and_arguments(tmp_path):
    book, trades = book_file(tmp_path), trades_file(tmp_path)
    inst = import_tardis(book, trades, TICK, LOT).data.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("DERIBIT", "BTC-PERPETUAL", 0.5, 10.0)
    assert inst.source == "tardis:book.csv,trades.csv"


def test_snapshot_rows_after_a_snapshot_message_continue_it_without_a_second_clear(tmp_path):
    rows = [r.replace(",false,", ",true,") for r in BOOK_ROWS]
    data = import_tardis(book_file(tmp_path, rows), None, TICK, LOT).data
    assert int((data.kind == CLEAR).sum()) == 1 and bool(np.all(data.flags & SNAP))


def test_book_rows_before_the_first_snapshot_pass_through_and_are_counted(tmp_path):
    rows = ["deribit,BTC-PERPETUAL,900,950,false,ask,103,1", *BOOK_ROWS]
    result = import_tardis(book_file(tmp_path, rows), None, TICK, LOT)
    assert result.rows_before_snapshot == 1
    assert event_rows(result.data)[0] == (us(900), us(950), BOOK, -1, 103.0, 1.0, LAST)
    assert event_rows(result.data)[1:] == EXPECTED_BOOK


def test_import_reads_gzip_and_crlf_files(tmp_path):
    text = "".join(line + "\r\n" for line in [BOOK_HEADER, *BOOK_ROWS])
    path = tmp_path / "book.csv.gz"
    path.write_bytes(gzip.compress(text.encode()))
    assert event_rows(import_tardis(path, None, TICK, LOT).data) == EXPECTED_BOOK


def test_header_only_file_has_no_row_to_take_the_instrument_from(tmp_path):
    with pytest.raises(TardisFormatError, match="no valid row"):
        import_tardis(book_file(tmp_path, []), None, TICK, LOT)


@pytest.mark.parametrize(
    ("content", "reason"),
    [
        (b"", "empty file"),
        (b"exchange,symbol,timestamp,local_timestamp,side,price,amount\n", "line 1: header"),
        (b"\n", "line 1: header ''"),
    ],
)
def test_empty_file_or_wrong_header_raises_even_with_skip_bad(tmp_path, content, reason):
    path = tmp_path / "book.csv"
    path.write_bytes(content)
    with pytest.raises(TardisFormatError, match=reason) as err:
        import_tardis(path, None, TICK, LOT, skip_bad=True)
    assert str(path) in str(err.value)


def test_missing_files_or_bad_steps_raise_value_error(tmp_path):
    with pytest.raises(ValueError, match="book_csv, trades_csv or both"):
        import_tardis(None, None, TICK, LOT)
    for tick, lot in [(0.0, LOT), (TICK, -1.0), (float("nan"), LOT), (True, LOT)]:
        with pytest.raises(ValueError, match="positive finite"):
            import_tardis(book_file(tmp_path), None, tick, lot)


BAD_BOOK_ROWS = [
    # line 3 of the book file, reason pattern, skip key
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,100.5", "expected 8 fields, found 7", tardis.FIELD_COUNT),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,100.5,10,1", "expected 8 fields, found 9", tardis.FIELD_COUNT),
    ("", "expected 8 fields, found 1", tardis.FIELD_COUNT),
    (",BTC-PERPETUAL,1000,1100,true,bid,100.5,10", "exchange or symbol is empty", tardis.EMPTY_FIELD),
    ("deribit,BTC-PERPETUAL,1e3,1100,true,bid,100.5,10", r"field 3 \(timestamp\) '1e3'", tardis.BAD_NUMBER),
    ("deribit,BTC-PERPETUAL,1000,-5,true,bid,100.5,10", r"field 4 \(local_timestamp\) '-5'", tardis.BAD_NUMBER),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,abc,10", r"field 7 \(price\) 'abc' is not a finite", tardis.BAD_NUMBER),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,100.5,inf", r"field 8 \(amount\) 'inf'", tardis.BAD_NUMBER),
    ("deribit,BTC-PERPETUAL,1000,1100,yes,bid,100.5,10", r"field 5 \(is_snapshot\) 'yes'", tardis.BAD_IS_SNAPSHOT),
    (
        "deribit,BTC-PERPETUAL,1000,1100,true,buy,100.5,10",
        r"field 6 \(side\) 'buy' is not 'bid' or 'ask'",
        tardis.UNKNOWN_SIDE,
    ),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,-100.5,10", "price -100.5 is not positive", tardis.NON_POSITIVE_PRICE),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,100.5,-1", "amount -1 is negative", tardis.NEGATIVE_AMOUNT),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,100.25,10", "not a multiple of tick_size 0.5", tardis.OFF_TICK_GRID),
    ("deribit,BTC-PERPETUAL,1000,1100,true,bid,1e300,10", "not a multiple of tick_size", tardis.OFF_TICK_GRID),
    (
        "deribit,ETH-PERPETUAL,1000,1100,true,bid,100.5,10",
        "ETH-PERPETUAL differs from deribit:BTC-PERPETUAL",
        tardis.MIXED_SYMBOLS,
    ),
    ("bitmex,BTC-PERPETUAL,1000,1100,true,bid,100.5,10", "bitmex:BTC-PERPETUAL differs", tardis.MIXED_SYMBOLS),
    (
        "deribit,BTC-PERPETUAL,999,1100,true,bid,100.5,10",
        r"timestamp 999 µs goes backwards \(an earlier row has 1000",
        tardis.TIME_BACKWARDS,
    ),
    (
        "deribit,BTC-PERPETUAL,1000,1099,true,bid,100.5,10",
        "local_timestamp 1099 µs goes backwards",
        tardis.TIME_BACKWARDS,
    ),
]
GOOD_FIRST = "deribit,BTC-PERPETUAL,1000,1100,true,ask,101,20"
GOOD_LAST = "deribit,BTC-PERPETUAL,2000,2100,false,bid,100,5"


@pytest.mark.parametrize(("row", "reason", "key"), BAD_BOOK_ROWS)
def test_bad_book_row_raises_naming_file_line_and_reason(tmp_path, row, reason, key):
    path = book_file(tmp_path, [GOOD_FIRST, row, GOOD_LAST])
    with pytest.raises(TardisFormatError, match=reason) as err:
        import_tardis(path, None, TICK, LOT)
    assert str(err.value).startswith(f"{path}: line 3: ")


@pytest.mark.parametrize(("row", "reason", "key"), BAD_BOOK_ROWS)
def test_bad_book_row_with_skip_bad_is_dropped_and_counted_by_reason(tmp_path, row, reason, key):
    result = import_tardis(book_file(tmp_path, [GOOD_FIRST, row, GOOD_LAST]), None, TICK, LOT, skip_bad=True)
    assert result.skipped == {key: 1}
    assert result.book_rows == 2
    assert list(result.data.price[result.data.kind == BOOK]) == [101.0, 100.0]


def test_non_utf8_row_raises_naming_its_line(tmp_path):
    path = tmp_path / "book.csv"
    path.write_bytes(f"{BOOK_HEADER}\n{GOOD_FIRST}\n".encode() + b"deribit,BTC-\xff,1000,1100,true,bid,100.5,10\n")
    with pytest.raises(TardisFormatError, match=f"{path}: line 3: text is not UTF-8"):
        import_tardis(path, None, TICK, LOT)
    assert import_tardis(path, None, TICK, LOT, skip_bad=True).skipped == {tardis.NOT_UTF8: 1}


BAD_TRADE_ROWS = [
    (
        "deribit,BTC-PERPETUAL,2000,2100,t9,bid,100,10",
        r"field 6 \(side\) 'bid' is not 'buy' or 'sell' or 'unknown'",
        tardis.UNKNOWN_SIDE,
    ),
    ("deribit,BTC-PERPETUAL,2000,2100,t9,buy,100,0", "trade amount 0 is not positive", tardis.NON_POSITIVE_AMOUNT),
    ("deribit,BTC-PERPETUAL,2000,2100,t9,buy,0,10", "price 0 is not positive", tardis.NON_POSITIVE_PRICE),
    ("deribit,BTC-PERPETUAL,2000,2100,t9,buy,100", "expected 8 fields, found 7", tardis.FIELD_COUNT),
    ("deribit,BTC-PERPETUAL,400,2100,t9,buy,100,10", "timestamp 400 µs goes backwards", tardis.TIME_BACKWARDS),
]


@pytest.mark.parametrize(("row", "reason", "key"), BAD_TRADE_ROWS)
def test_bad_trade_row_raises_naming_file_line_and_reason(tmp_path, row, reason, key):
    path = trades_file(tmp_path, [TRADE_ROWS[0], row])
    with pytest.raises(TardisFormatError, match=reason) as err:
        import_tardis(None, path, TICK, LOT)
    assert str(err.value).startswith(f"{path}: line 3: ")
    result = import_tardis(None, path, TICK, LOT, skip_bad=True)
    assert (result.skipped, result.trade_rows) == ({key: 1}, 1)


def test_trades_of_another_instrument_than_the_book_are_mixed_symbols(tmp_path):
    book = book_file(tmp_path)
    trades = trades_file(tmp_path, [TRADE_ROWS[0].replace("BTC-PERPETUAL", "ETH-PERPETUAL")])
    with pytest.raises(TardisFormatError, match=f"{trades}: line 2: .*line 2 of book.csv"):
        import_tardis(book, trades, TICK, LOT)


def test_first_bad_row_is_reported_even_when_a_later_check_catches_it(tmp_path):
    # Row 3 is late (time check, computed last) and row 4 is unparseable (field check, computed first).
    rows = [GOOD_LAST, GOOD_FIRST, "deribit,BTC-PERPETUAL,x,2100,false,bid,100,5"]
    with pytest.raises(TardisFormatError, match="line 3: timestamp 1000 µs goes backwards"):
        import_tardis(book_file(tmp_path, rows), None, TICK, LOT)


def test_skip_bad_drops_rows_before_the_running_maximum_time_only(tmp_path):
    rows = [
        "deribit,BTC-PERPETUAL,1000,1100,false,bid,100,1",
        "deribit,BTC-PERPETUAL,5000,5100,false,bid,100,2",
        "deribit,BTC-PERPETUAL,2000,2100,false,bid,100,3",  # before 5000: dropped
        "deribit,BTC-PERPETUAL,6000,6100,false,bid,100,4",
    ]
    result = import_tardis(book_file(tmp_path, rows), None, TICK, LOT, skip_bad=True)
    assert list(result.data.size) == [1.0, 2.0, 4.0]
    assert result.skipped == {tardis.TIME_BACKWARDS: 1}


def test_skip_bad_moves_the_message_end_flag_to_the_last_kept_row(tmp_path):
    rows = [BOOK_ROWS[0], BOOK_ROWS[1].replace(",101,", ",oops,")]
    data = import_tardis(book_file(tmp_path, rows), None, TICK, LOT, skip_bad=True).data
    assert event_rows(data) == [EXPECTED_BOOK[0], (us(1000), us(1100), BOOK, 1, 100.5, 10.0, SNAP | LAST)]


def test_skip_bad_counts_several_reasons(tmp_path):
    rows = [GOOD_FIRST, BAD_BOOK_ROWS[0][0], BAD_BOOK_ROWS[0][0], BAD_BOOK_ROWS[9][0], GOOD_LAST]
    result = import_tardis(book_file(tmp_path, rows), None, TICK, LOT, skip_bad=True)
    assert result.skipped == {tardis.FIELD_COUNT: 2, tardis.UNKNOWN_SIDE: 1}


def test_corrupt_gzip_raises_naming_the_file(tmp_path):
    path = tmp_path / "book.csv.gz"
    path.write_bytes(gzip.compress(BOOK_HEADER.encode())[:-6])
    with pytest.raises(TardisFormatError, match=f"{path}: not a readable gzip file"):
        import_tardis(path, None, TICK, LOT)


def test_file_holding_every_ascii_byte_is_not_text(tmp_path):
    path = tmp_path / "book.csv"
    path.write_bytes(f"{BOOK_HEADER}\n".encode() + bytes(range(1, 128)) + b"\n")
    with pytest.raises(TardisFormatError, match=f"{path}: not a text file"):
        import_tardis(path, None, TICK, LOT, skip_bad=True)
