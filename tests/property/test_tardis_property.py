"""Properties of the Tardis.dev CSV importer: replay equals a dict book after every message; mutated lines
only raise TardisFormatError."""

from __future__ import annotations

import tempfile
from pathlib import Path

from builders import books_at_message_ends
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.ingest.tardis import TardisFormatError, import_tardis
from scalper.ingest.tickfile import (
    KIND_BOOK,
    KIND_TRADE,
)

BOOK_HEADER = "exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount"
TRADE_HEADER = "exchange,symbol,timestamp,local_timestamp,id,side,price,amount"
GRIDS = [(0.5, 1), (0.01, 2), (0.0001, 4)]  # (tick_size, decimals printed)
SIZES = ["0", "1", "2.5", "10", "0.001", "12345"]
T0_US = 1_600_000_000_000_000
LOW_TICK, HIGH_TICK = 1000, 1040


@st.composite
def sessions(draw):
    """Return (grid, book messages, trades); a message is (ts, local_ts, is_snapshot, [(side, tick, size text)])."""
    grid = draw(st.sampled_from(GRIDS))
    level = st.tuples(st.sampled_from([1, -1]), st.integers(LOW_TICK, HIGH_TICK), st.sampled_from(SIZES))
    ts, local_ts = T0_US, T0_US + 100
    messages = []
    for _ in range(draw(st.integers(1, 15))):
        ts += draw(st.integers(0, 3))
        local_ts += draw(st.integers(1, 5))  # a new local_timestamp starts a new message
        messages.append((ts, local_ts, draw(st.booleans()), draw(st.lists(level, min_size=1, max_size=6))))
    trades = []
    ts, local_ts = T0_US + draw(st.integers(-2, 2)), T0_US + 100
    for _ in range(draw(st.integers(0, 8))):
        ts += draw(st.integers(0, 4))
        local_ts += draw(st.integers(0, 6))
        side = draw(st.sampled_from(["buy", "sell", "unknown"]))
        trades.append((ts, local_ts, side, draw(st.integers(LOW_TICK, HIGH_TICK)), draw(st.sampled_from(SIZES[1:]))))
    return grid, messages, trades


def price_text(tick: int, grid) -> str:
    size, decimals = grid
    return f"{tick * size:.{decimals}f}"


def book_csv(messages, grid) -> str:
    rows = [BOOK_HEADER]
    for ts, local_ts, is_snapshot, levels in messages:
        for side, tick, size in levels:
            word = "bid" if side == 1 else "ask"
            snap = "true" if is_snapshot else "false"
            rows.append(f"binance-futures,BTCUSDT,{ts},{local_ts},{snap},{word},{price_text(tick, grid)},{size}")
    return "".join(r + "\n" for r in rows)


def trades_csv(trades, grid) -> str:
    rows = [TRADE_HEADER]
    for k, (ts, local_ts, side, tick, size) in enumerate(trades):
        rows.append(f"binance-futures,BTCUSDT,{ts},{local_ts},{k},{side},{price_text(tick, grid)},{size}")
    return "".join(r + "\n" for r in rows)


def dict_books(messages) -> list[dict]:
    """Replay by Tardis's rule with a dict: a snapshot run that follows non-snapshot rows resets the book."""
    book: dict[tuple[int, int], float] = {}
    after = []
    was_snapshot = False
    for _, _, is_snapshot, levels in messages:
        if is_snapshot and not was_snapshot:
            book = {}
        was_snapshot = is_snapshot
        for side, tick, size in levels:
            if float(size) == 0.0:
                book.pop((side, tick), None)
            else:
                book[(side, tick)] = float(size)
        after.append(dict(book))
    return after


@settings(max_examples=120, deadline=None)
@given(sessions())
def test_replayed_import_equals_dict_book_after_every_message(session):
    grid, messages, trades = session
    with tempfile.TemporaryDirectory() as tmp:
        book_path, trades_path = Path(tmp) / "book.csv", Path(tmp) / "trades.csv"
        book_path.write_text(book_csv(messages, grid))
        trades_path.write_text(trades_csv(trades, grid))
        result = import_tardis(book_path, trades_path if trades else None, grid[0], 0.001)
    data = result.data
    expected = dict_books(messages)
    assert result.messages == len(messages)

    checked = 0
    for i, kind, book in books_at_message_ends(data, 2 * (HIGH_TICK - LOW_TICK + 1)):
        if kind == KIND_BOOK:
            assert int(data.ts_recv[i]) == messages[checked][1] * 1_000
            assert book == expected[checked]
            checked += 1
    assert checked == len(messages)

    price_tick = data.price_tick
    is_trade = data.kind == KIND_TRADE
    sides = {"buy": 1, "sell": -1, "unknown": 0}
    got = list(
        zip(data.side[is_trade].tolist(), price_tick[is_trade].tolist(), data.size[is_trade].tolist(), strict=True)
    )
    assert got == [(sides[s], tick, float(q)) for _, _, s, tick, q in trades]


BASE_BOOK = [
    BOOK_HEADER,
    "deribit,BTC-PERPETUAL,1000,1100,true,bid,100.5,10",
    "deribit,BTC-PERPETUAL,1000,1100,true,ask,101,20",
    "deribit,BTC-PERPETUAL,2000,2100,false,bid,100.5,0",
    "deribit,BTC-PERPETUAL,3000,3100,true,ask,102,2",
]
BASE_TRADES = [
    TRADE_HEADER,
    "deribit,BTC-PERPETUAL,500,600,t1,buy,101,10",
    "deribit,BTC-PERPETUAL,2000,2050,t2,sell,100.5,30",
]
ODD_FIELDS = ["", "nan", "inf", "-1", "0", "-0", "1e400", "9" * 30, "true", "bid", "sell", "unknown", '"', "\r", "\x00"]
ODD_FIELDS += ["1.25", "é"]


@st.composite
def mutated(draw, lines: list[str]) -> bytes:
    """Return ``lines`` with one random mutation, as file bytes."""
    rows = [line.encode() for line in lines]
    i = draw(st.integers(0, len(rows) - 1))
    row = rows[i]
    op = draw(st.sampled_from(["replace", "insert", "delete", "field", "duplicate", "drop"]))
    if op == "replace":
        rows[i] = draw(st.binary(max_size=60) | st.text(max_size=60).map(str.encode))
    elif op == "insert":
        at = draw(st.integers(0, len(row)))
        rows[i] = row[:at] + draw(st.binary(min_size=1, max_size=5)) + row[at:]
    elif op == "delete":
        a, b = sorted(draw(st.tuples(st.integers(0, len(row)), st.integers(0, len(row)))))
        rows[i] = row[:a] + row[b:]
    elif op == "field":
        fields = row.split(b",")
        j = draw(st.integers(0, len(fields) - 1))
        fields[j] = draw(st.sampled_from(ODD_FIELDS) | st.text(max_size=8)).encode()
        rows[i] = b",".join(fields)
    elif op == "duplicate":
        rows.insert(i, row)
    else:
        del rows[i]
    return b"".join(r + b"\n" for r in rows)


def body_rows(content: bytes) -> int:
    lines = content.split(b"\n")
    if lines[-1] == b"":
        lines.pop()
    return max(len(lines) - 1, 0)


@settings(max_examples=300, deadline=None)
@given(mutated(BASE_BOOK), mutated(BASE_TRADES), st.booleans())
def test_mutated_lines_raise_only_tardis_format_error(book_bytes, trade_bytes, skip_bad):
    with tempfile.TemporaryDirectory() as tmp:
        book_path, trades_path = Path(tmp) / "book.csv", Path(tmp) / "trades.csv"
        book_path.write_bytes(book_bytes)
        trades_path.write_bytes(trade_bytes)
        try:
            result = import_tardis(book_path, trades_path, 0.5, 10.0, skip_bad=skip_bad)
        except TardisFormatError:
            return
    if skip_bad:
        # Every body row is either imported or counted under one reason.
        imported = result.book_rows + result.trade_rows + sum(result.skipped.values())
        assert imported == body_rows(book_bytes) + body_rows(trade_bytes)
    else:
        assert result.skipped == {}
