"""LOBSTER importer on tiny hand-made 2-level files: exact events, errors with file and row, time zones."""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import numpy as np
import pytest

from scalper.ingest.lobster import LobsterFormatError, import_lobster, orderbook_path
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT as SNAP
from scalper.ingest.tickfile import KIND_BOOK as BOOK
from scalper.ingest.tickfile import KIND_CLEAR as CLEAR
from scalper.ingest.tickfile import KIND_TRADE as TRADE
from scalper.ingest.tickfile import validate

# 2012-06-21 00:00 UTC; New York is on EDT (UTC-4) that day.
JUNE_21_UTC_S = 1_340_236_800
EDT_S = 4 * 3600
EST_S = 5 * 3600

STEM = "TEST_2012-06-21_34200000_57600000"

# time, type, order id, size, price (dollars x 10000), direction
MESSAGES = [
    "34200.000000001,1,11,100,1000100,-1",  # new ask 100.01
    "34200.5,1,12,50,999900,1",  # new best bid 99.99 pushes 99.97 out of the top 2
    "34201.25,4,11,30,1000100,-1",  # visible execution of the ask: a buyer-initiated trade
    "34201.25,5,0,10,1000050,1",  # hidden execution at the midpoint: book unchanged
    "34202,3,13,200,1000300,-1",  # ask 100.03 deleted, 100.05 moves into the top 2
    "34203,2,99,5,990000,1",  # partial cancel far from the top: nothing visible
    "34203,7,0,0,-1,-1",  # trading halt: book row repeated
]
# ask_px_1, ask_sz_1, bid_px_1, bid_sz_1, ask_px_2, ask_sz_2, bid_px_2, bid_sz_2
BOOK_ROWS = [
    "1000100,100,999800,300,1000300,200,999700,400",
    "1000100,100,999900,50,1000300,200,999800,300",
    "1000100,70,999900,50,1000300,200,999800,300",
    "1000100,70,999900,50,1000300,200,999800,300",
    "1000100,70,999900,50,1000500,10,999800,300",
    "1000100,70,999900,50,1000500,10,999800,300",
    "1000100,70,999900,50,1000500,10,999800,300",
]


def ts(seconds: int, ns: int = 0, day_utc_s: int = JUNE_21_UTC_S, offset_s: int = EDT_S) -> int:
    return (day_utc_s + offset_s + seconds) * 1_000_000_000 + ns


EXPECTED = [
    # ts, kind, side, price, size, flags
    (ts(34200, 1), CLEAR, 0, 0.0, 0.0, SNAP),
    (ts(34200, 1), BOOK, 1, 99.98, 300.0, SNAP),
    (ts(34200, 1), BOOK, 1, 99.97, 400.0, SNAP),
    (ts(34200, 1), BOOK, -1, 100.01, 100.0, SNAP),
    (ts(34200, 1), BOOK, -1, 100.03, 200.0, SNAP | LAST),
    (ts(34200, 500_000_000), BOOK, 1, 99.97, 0.0, 0),
    (ts(34200, 500_000_000), BOOK, 1, 99.99, 50.0, LAST),
    (ts(34201, 250_000_000), TRADE, 1, 100.01, 30.0, 0),
    (ts(34201, 250_000_000), BOOK, -1, 100.01, 70.0, LAST),
    (ts(34201, 250_000_000), TRADE, -1, 100.005, 10.0, LAST),
    (ts(34202), BOOK, -1, 100.03, 0.0, 0),
    (ts(34202), BOOK, -1, 100.05, 10.0, LAST),
]


def write_pair(
    folder: Path, messages: list[str], book: list[str], stem: str = STEM, levels: int = 2
) -> tuple[Path, Path]:
    msg = folder / f"{stem}_message_{levels}.csv"
    ob = folder / f"{stem}_orderbook_{levels}.csv"
    msg.write_text("".join(line + "\n" for line in messages))
    ob.write_text("".join(line + "\n" for line in book))
    return msg, ob


def event_rows(data) -> list[tuple]:
    return [
        (int(t), int(k), int(s), float(p), float(q), int(f))
        for t, k, s, p, q, f in zip(data.ts_event, data.kind, data.side, data.price, data.size, data.flags, strict=True)
    ]


def test_import_small_pair_gives_exact_events(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    result = import_lobster(msg, ob)
    assert event_rows(result.data) == EXPECTED
    assert (result.levels, result.rows, result.unchanged_rows, result.n_trades) == (2, 7, 2, 2)
    # Row 6 cancels at 99.00, below the two bid levels shown: its size change cannot be seen.
    assert (result.deep_rows, result.rounded_times) == (1, 0)
    np.testing.assert_array_equal(result.data.ts_recv, result.data.ts_event)
    validate(result.data)


def test_mbo_import_adds_each_messages_order_id_to_the_events_it_causes(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    plain = import_lobster(msg, ob)
    mbo = import_lobster(msg, ob, mbo=True)
    assert plain.data.order_id is None and plain.data.schema_version == 1
    assert event_rows(mbo.data) == EXPECTED  # the L2 events are the same
    assert mbo.data.schema_version == 2
    # snapshot; 99.97 pushed out (no order of its own); order 12's bid; order 11's execution (trade and
    # level); the hidden execution's trade (order 0); order 13's deletion; 100.05 revealed from deeper.
    assert mbo.data.order_id.tolist() == [-1] * 5 + [-1, 12, 11, 11, 0, 13, -1]
    validate(mbo.data)


def test_mbo_import_cross_trade_has_no_order_id(tmp_path):
    messages = ["34200,1,1,1,1000100,-1", "34201,6,44,500,1000000,1"]
    msg, ob = write_pair(tmp_path, messages, BOOK_ROWS[:1] * 2)
    assert import_lobster(msg, ob, mbo=True).data.order_id.tolist()[-1] == -1


def test_mbo_import_refuses_a_negative_order_id(tmp_path):
    messages = [*MESSAGES[:2], "34201.25,4,-11,30,1000100,-1"]
    msg, ob = write_pair(tmp_path, messages, BOOK_ROWS[:3])
    assert import_lobster(msg, ob).data.order_id is None  # the L2 import does not read ids
    with pytest.raises(LobsterFormatError, match=r"message_2.csv: row 3: negative order id -11 on a type 4 message"):
        import_lobster(msg, ob, mbo=True)


def test_import_small_pair_sets_instrument_from_file_name(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    inst = import_lobster(msg, ob).data.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("NASDAQ", "TEST", 0.01, 1.0)
    assert inst.source == f"lobster:{msg.name}"


def test_import_explicit_date_and_symbol_override_file_name(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS, stem="whatever")
    data = import_lobster(msg, ob, session_date=dt.date(2012, 1, 17), symbol="XYZ").data
    assert data.instrument.symbol == "XYZ"
    assert int(data.ts_event[0]) == ts(34200, 1, day_utc_s=1_326_758_400, offset_s=EST_S)


def test_import_unparseable_file_name_without_date_raises(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS, stem="whatever")
    with pytest.raises(LobsterFormatError, match="pass session_date and symbol") as err:
        import_lobster(msg, ob)
    assert str(msg) in str(err.value)


def test_import_reports_progress_stages(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    stages: list[str] = []
    import_lobster(msg, ob, progress=stages.append)
    assert stages[0] == f"reading {msg.name}" and len(stages) >= 3


def test_orderbook_path_swaps_message_for_orderbook():
    p = Path("/x/GOOG_2012-06-21_34200000_57600000_message_10.csv")
    assert orderbook_path(p) == Path("/x/GOOG_2012-06-21_34200000_57600000_orderbook_10.csv")
    with pytest.raises(LobsterFormatError):
        orderbook_path("/x/book.csv")


@pytest.mark.parametrize(
    ("day", "day_utc_s", "seconds", "offset_s"),
    [
        (dt.date(2012, 1, 17), 1_326_758_400, 34200, EST_S),  # winter
        (dt.date(2012, 6, 21), JUNE_21_UTC_S, 34200, EDT_S),  # summer
        (dt.date(2012, 3, 11), 1_331_424_000, 3600, EST_S),  # spring forward day, 01:00 still EST
        (dt.date(2012, 3, 11), 1_331_424_000, 34200, EDT_S),  # spring forward day, after 02:00
        (dt.date(2012, 11, 4), 1_351_987_200, 34200, EST_S),  # fall back day, after 02:00
    ],
)
def test_import_converts_new_york_time_to_utc_with_dst(tmp_path, day, day_utc_s, seconds, offset_s):
    stem = f"TEST_{day.isoformat()}_0_86400000"
    msg, ob = write_pair(tmp_path, [f"{seconds}.123456789,1,1,1,1000100,-1"], BOOK_ROWS[:1], stem=stem)
    data = import_lobster(msg, ob).data
    assert int(data.ts_event[0]) == ts(seconds, 123_456_789, day_utc_s=day_utc_s, offset_s=offset_s)


@pytest.mark.parametrize(
    ("text", "ns"),
    [("34200", 0), ("34200.5", 500_000_000), ("34200.000000001", 1), ("34200.015105074", 15_105_074)],
)
def test_import_parses_decimal_time_exactly(tmp_path, text, ns):
    msg, ob = write_pair(tmp_path, [f"{text},1,1,1,1000100,-1"], BOOK_ROWS[:1])
    assert int(import_lobster(msg, ob).data.ts_event[0]) == ts(34200, ns)


def test_import_row0_execution_trade_precedes_snapshot(tmp_path):
    msg, ob = write_pair(tmp_path, ["34200,4,7,25,999800,1"], BOOK_ROWS[:1])
    result = import_lobster(msg, ob)
    assert event_rows(result.data)[:2] == [
        (ts(34200), TRADE, -1, 99.98, 25.0, 0),
        (ts(34200), CLEAR, 0, 0.0, 0.0, SNAP),
    ]
    assert result.n_trades == 1


def test_import_cross_is_trade_without_aggressor_and_halt_emits_nothing(tmp_path):
    messages = ["34200,1,1,1,1000100,-1", "34201,6,0,500,1000000,1", "34202,7,0,0,-1,-1"]
    msg, ob = write_pair(tmp_path, messages, BOOK_ROWS[:1] * 3)
    result = import_lobster(msg, ob)
    assert event_rows(result.data)[5:] == [(ts(34201), TRADE, 0, 100.0, 500.0, LAST)]
    assert (result.unchanged_rows, result.n_trades) == (1, 1)
    assert (result.unchecked_crosses, result.deep_rows) == (1, 0)  # a cross's effect on the book is not defined


def test_import_empty_levels_are_absent(tmp_path):
    empty_ask, empty_bid = "9999999999,0", "-9999999999,0"
    book = [
        f"1000100,100,999900,10,{empty_ask},{empty_bid}",
        f"1000100,100,999900,10,1000200,50,{empty_bid}",
        f"1000100,100,{empty_bid},1000200,50,{empty_bid}",
    ]
    messages = ["34200,1,1,100,1000100,-1", "34201,1,2,50,1000200,-1", "34202,3,3,10,999900,1"]
    msg, ob = write_pair(tmp_path, messages, book)
    assert event_rows(import_lobster(msg, ob).data) == [
        (ts(34200), CLEAR, 0, 0.0, 0.0, SNAP),
        (ts(34200), BOOK, 1, 99.99, 10.0, SNAP),
        (ts(34200), BOOK, -1, 100.01, 100.0, SNAP | LAST),
        (ts(34201), BOOK, -1, 100.02, 50.0, LAST),
        (ts(34202), BOOK, 1, 99.99, 0.0, LAST),
    ]


def replace_row(rows: list[str], row: int, text: str) -> list[str]:
    """Return ``rows`` with 1-based ``row`` replaced by ``text``."""
    out = list(rows)
    out[row - 1] = text
    return out


def msg_row(row: int, text: str) -> tuple[list[str], list[str]]:
    return replace_row(MESSAGES, row, text), BOOK_ROWS


def book_row(row: int, text: str) -> tuple[list[str], list[str]]:
    return MESSAGES, replace_row(BOOK_ROWS, row, text)


BAD_INPUTS = [
    # (messages, book), file with the error, 1-based row (None: whole file), reason fragment
    pytest.param(
        msg_row(3, "34201.25,4,11,30,1000100"),
        "message",
        3,
        "expected 6 comma-separated fields, found 5",
        id="message column count",
    ),
    pytest.param(msg_row(2, ""), "message", 2, "found 1", id="message blank line"),
    pytest.param(
        book_row(2, "1000100,100,999900,50,1000300,200,999800"),
        "orderbook",
        2,
        "expected 8 comma-separated fields, found 7",
        id="book column count",
    ),
    pytest.param((MESSAGES, [r + ",1" for r in BOOK_ROWS]), "orderbook", 1, "4 per level", id="book not 4 per level"),
    pytest.param(
        msg_row(4, "34201.25,5,0,10,10000x0,1"),
        "message",
        4,
        "field 5 (price) '10000x0' is not an integer",
        id="message non-numeric",
    ),
    pytest.param(
        msg_row(2, "34200.5x,1,12,50,999900,1"),
        "message",
        2,
        "time '34200.5x'",
        id="message non-numeric time",
    ),
    pytest.param(
        msg_row(2, "34200.5000000004,1,12,50,999900,1"),
        "message",
        2,
        "not within 50 ps of a nanosecond",
        id="message time 10 decimals, 0.4 ns past",
    ),
    pytest.param(
        msg_row(2, "34200.500000000051,1,12,50,999900,1"),
        "message",
        2,
        "not within 50 ps of a nanosecond",
        id="message time 51 ps past",
    ),
    pytest.param(msg_row(2, "-34200.5,1,12,50,999900,1"), "message", 2, "not decimal seconds", id="negative time"),
    pytest.param(msg_row(2, "NaN,1,12,50,999900,1"), "message", 2, "not decimal seconds", id="NaN time"),
    pytest.param(msg_row(2, "3.42005e4,1,12,50,999900,1"), "message", 2, "not decimal seconds", id="exponent time"),
    pytest.param(
        msg_row(2, "34200.5000000000000000001,1,12,50,999900,1"),
        "message",
        2,
        "not decimal seconds",
        id="time with 19 decimals",
    ),
    pytest.param(msg_row(3, "34201.25,4,11,30,1000100,\u22121"), "message", 3, "not ASCII", id="message non-ascii"),
    pytest.param(
        book_row(5, "1000100,70,999900,5.5,1000500,10,999800,300"),
        "orderbook",
        5,
        "field 4 (bid_size_1) '5.5' is not an integer",
        id="book non-numeric",
    ),
    pytest.param(([], BOOK_ROWS), "message", None, "empty file", id="message empty"),
    pytest.param((MESSAGES, []), "orderbook", None, "empty file", id="book empty"),
    pytest.param(msg_row(4, "34201.2,5,0,10,1000050,1"), "message", 4, "goes backwards", id="time backwards"),
    pytest.param((MESSAGES, BOOK_ROWS[:-1]), "message", 7, "no matching row", id="book shorter"),
    pytest.param((MESSAGES[:-2], BOOK_ROWS), "orderbook", 6, "no matching row", id="message shorter"),
    pytest.param(
        book_row(3, "1000100,70,1000200,50,1000300,200,999800,300"),
        "orderbook",
        3,
        "crossed or locked",
        id="crossed book",
    ),
    pytest.param(
        book_row(6, "1000100,70,1000100,50,1000500,10,999800,300"),
        "orderbook",
        6,
        "crossed or locked",
        id="locked book",
    ),
    pytest.param(msg_row(2, "34200.5,8,12,50,999900,1"), "message", 2, "unknown message type 8", id="unknown type"),
    pytest.param(msg_row(2, "34200.5,1,12,50,999900,0"), "message", 2, "direction 0", id="bad direction"),
    pytest.param(msg_row(5, "34202,3,13,0,1000300,-1"), "message", 5, "non-positive size 0", id="message size zero"),
    pytest.param(
        msg_row(3, "34201.25,4,11,30,0,-1"),
        "message",
        3,
        "non-positive execution price",
        id="execution price zero",
    ),
    pytest.param(
        book_row(2, "1000100,100,999900,0,1000300,200,999800,300"),
        "orderbook",
        2,
        "bid level 1 has a non-positive size",
        id="book size zero",
    ),
    pytest.param(
        book_row(2, "1000100,100,999900,50,1000000,200,999800,300"),
        "orderbook",
        2,
        "ask level 2 is not strictly worse",
        id="book unordered",
    ),
    pytest.param(
        book_row(2, "1000100,100,-9999999999,0,1000300,200,999800,300"),
        "orderbook",
        2,
        "bid level 2 is occupied after an empty level",
        id="book level after empty",
    ),
]


@pytest.mark.parametrize(("pair", "which", "row", "reason"), BAD_INPUTS)
def test_import_bad_input_raises_naming_file_and_row(tmp_path, pair, which, row, reason):
    msg, ob = write_pair(tmp_path, *pair)
    with pytest.raises(LobsterFormatError) as err:
        import_lobster(msg, ob)
    text = str(err.value)
    bad_file = msg if which == "message" else ob
    assert text.startswith(f"{bad_file}: ")
    if row is not None:
        assert f": row {row}: " in text
    assert reason in text


def test_import_reports_the_earliest_of_several_bad_rows(tmp_path):
    messages = replace_row(replace_row(MESSAGES, 6, "34203,9,99,5,990000,1"), 3, "34201.25,4,11,-30,1000100,-1")
    msg, ob = write_pair(tmp_path, messages, BOOK_ROWS)
    with pytest.raises(LobsterFormatError, match=r": row 3: non-positive size -30"):
        import_lobster(msg, ob)


def test_import_accepts_crlf_line_ends(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    msg.write_bytes(msg.read_bytes().replace(b"\n", b"\r\n"))
    assert event_rows(import_lobster(msg, ob).data) == EXPECTED


@pytest.mark.parametrize(
    ("text", "seconds", "ns"),
    [
        ("34200.500000000004", 34200, 500_000_000),  # 4 ps past: a float's repr of 34200.5
        ("34200.5000000000", 34200, 500_000_000),  # ten decimals, exactly on the nanosecond
        ("34200.499999999996", 34200, 500_000_000),  # 4 ps before
        ("34200.999999999951", 34201, 0),  # 49 ps before the next second: carries into it
    ],
)
def test_time_within_50_ps_of_a_nanosecond_is_rounded_and_counted(tmp_path, text, seconds, ns):
    messages = replace_row(MESSAGES, 2, f"{text},1,12,50,999900,1")
    msg, ob = write_pair(tmp_path, messages, BOOK_ROWS)
    result = import_lobster(msg, ob)
    assert (result.rounded_times, result.first_rounded_row) == (1, 2)
    assert int(result.data.ts_event[5]) == ts(seconds, ns)


def test_times_with_nine_decimals_or_fewer_are_not_counted_as_rounded(tmp_path):
    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    result = import_lobster(msg, ob)
    assert (result.rounded_times, result.first_rounded_row) == (0, 0)


MISMATCHES = [
    # (messages, book), 1-based row, reason fragment
    pytest.param(
        msg_row(3, "34201.25,4,11,40,1000100,-1"),
        3,
        "type 4 of 40 at 1000100 on the ask: size there 100 -> 70, the message says -40",
        id="execution size",
    ),
    pytest.param(
        msg_row(2, "34200.5,1,12,50,999900,-1"),
        2,
        "type 1 of 50 at 999900 on the ask",
        id="wrong side",
    ),
    pytest.param(
        book_row(3, "1000100,70,999900,50,1000300,200,999800,301"),
        3,
        "the bid changed, but the message is on the ask",
        id="other side changed",
    ),
    pytest.param(
        book_row(3, "1000100,70,999900,50,1000300,201,999800,300"),
        3,
        "other ask levels changed",
        id="same side, another level changed",
    ),
    pytest.param(
        msg_row(4, "34201.25,2,0,10,1000100,-1"),
        4,
        "type 2 of 10 at 1000100 on the ask: size there 70 -> 70, the message says -10",
        id="cancel without change",
    ),
    pytest.param(
        book_row(7, "1000100,70,999900,50,1000500,11,999800,300"),
        7,
        "type 7 changed the book",
        id="halt changed the book",
    ),
    pytest.param(
        book_row(4, "1000100,60,999900,50,1000300,200,999800,300"),
        4,
        "type 5 changed the book",
        id="hidden execution changed the book",
    ),
]


@pytest.mark.parametrize(("pair", "row", "reason"), MISMATCHES)
def test_a_book_row_that_does_not_follow_from_its_message_is_refused(tmp_path, pair, row, reason):
    msg, ob = write_pair(tmp_path, *pair)
    with pytest.raises(LobsterFormatError) as err:
        import_lobster(msg, ob)
    text = str(err.value)
    assert text.startswith(f"{ob}: row {row}: does not follow from {msg.name} row {row}: "), text
    assert reason in text


def test_message_files_paired_with_another_book_are_refused_at_the_first_row(tmp_path):
    # The same messages against a book of other prices (another stock of the same length).
    shifted = [
        ",".join(str(int(v) // 2 if i % 2 == 0 else int(v)) for i, v in enumerate(r.split(","))) for r in BOOK_ROWS
    ]
    msg, ob = write_pair(tmp_path, MESSAGES, shifted)
    with pytest.raises(
        LobsterFormatError,
        match=r": row 2: does not follow from .*message_2\.csv row 2: type 1 of 50 at 999900 on the bid",
    ):
        import_lobster(msg, ob)


@pytest.mark.parametrize(("flag", "version"), [([], 1), (["--mbo"], 2)])
def test_cli_import_writes_schema_v2_with_mbo(tmp_path, flag, version):
    from typer.testing import CliRunner

    from scalper.engine.cli import app
    from scalper.ingest import tickfile

    msg, ob = write_pair(tmp_path, MESSAGES, BOOK_ROWS)
    out = tmp_path / "t.parquet"
    res = CliRunner().invoke(
        app, ["data", "import", "lobster", str(msg), str(ob), "-o", str(out), *flag], env={"COLUMNS": "400"}
    )
    assert res.exit_code == 0, res.output
    assert f"(schema v{version})" in res.output
    data = tickfile.read(out)
    assert event_rows(data) == EXPECTED
    assert (data.order_id is None) == (version == 1)
