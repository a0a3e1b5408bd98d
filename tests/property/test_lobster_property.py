"""Properties of the LOBSTER importer: a pair that belongs together imports and replays to every book row;
a book row that does not follow from its message is refused at that row; the time parser rounds float
artifacts to the nanosecond and refuses everything else that is not decimal seconds."""

from __future__ import annotations

import re
import tempfile
from pathlib import Path
from unittest import mock

import numpy as np
import pytest
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scalper.ingest import lobster
from scalper.ingest.lobster import EMPTY_ASK_PRICE, EMPTY_BID_PRICE, LobsterFormatError, import_lobster
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_BOOK, KIND_CLEAR, KIND_TRADE
from scalper.lowlevel.book import book_clear, book_set, new_book, side_index, top_levels

TICK = 100  # $0.01 in LOBSTER price units
TRADE_TYPES = (4, 5, 6)


def top(book: dict[int, int], sign: int, levels: int) -> tuple[tuple[int, int], ...]:
    """The best ``levels`` (price, size) of one side of a deep book, best first (sign +1 bids, -1 asks)."""
    return tuple(sorted(book.items(), key=lambda kv: -sign * kv[0])[:levels])


def seen(row_side: tuple[tuple[int, int], ...], price: int, sign: int, levels: int) -> bool:
    """Whether ``price`` lies inside a row's top-``levels`` range on that side (an absent price there has size 0)."""
    return len(row_side) < levels or any(p == price for p, _ in row_side) or sign * price > sign * row_side[-1][0]


@st.composite
def sessions(draw):
    """Return (levels, message rows, book rows, deep rows) of a LOBSTER pair that belongs together.

    A book deeper than ``levels`` takes random messages (submit, cancel, delete, execution at the
    touch, hidden execution, cross, halt); each book row is its top ``levels`` after the message,
    as LOBSTER writes it. ``deep`` counts type 1-4 messages beyond the top ``levels`` before and after."""
    levels = draw(st.integers(1, 4))
    n = draw(st.integers(1, 25))
    mid = draw(st.integers(10_000, 10_003))
    deep_book = ({}, {})  # bids, asks: price (file units) -> shares
    for s, sign in ((0, 1), (1, -1)):
        for o in draw(st.lists(st.integers(1, 8), max_size=levels + 2, unique=True)):
            deep_book[s][(mid - sign * o) * TICK] = draw(st.integers(1, 500))
    t_ns = 34_200 * 10**9
    books, messages, deep = [], [], 0
    for k in range(n):
        t_ns += draw(st.integers(0, 2 * 10**9))
        s = draw(st.sampled_from([0, 1]))
        sign = 1 - 2 * s
        side = deep_book[s]
        before = (top(deep_book[0], 1, levels), top(deep_book[1], -1, levels))
        mtype = draw(st.sampled_from([1, 1, 2, 3, 4, 5, 6, 7]))
        if mtype in (2, 3, 4) and not side:
            mtype = 1
        size, price = draw(st.integers(1, 500)), 0
        if mtype == 1:
            best_other = max(deep_book[1 - s], key=lambda p: -sign * p) if deep_book[1 - s] else None
            price = (mid - sign * draw(st.integers(0, 9))) * TICK
            if best_other is not None and sign * price >= sign * best_other:
                price = best_other - sign * TICK  # stay uncrossed
            side[price] = side.get(price, 0) + size
        elif mtype in (2, 3, 4):
            price = max(side, key=lambda p: sign * p) if mtype == 4 else draw(st.sampled_from(sorted(side)))
            size = side[price] if mtype == 3 else draw(st.integers(1, side[price]))
            side[price] -= size
            if side[price] == 0:
                del side[price]
        elif mtype in (5, 6):
            price = draw(st.integers(1, 10**7))
        if mtype == 7:
            messages.append((t_ns, 7, 0, 0, -1, -1))
        else:
            messages.append((t_ns, mtype, k + 1, size, price, 1 if s == 0 else -1))
        books.append((top(deep_book[0], 1, levels), top(deep_book[1], -1, levels)))
        if (
            k
            and mtype <= 4
            and not seen(before[s], price, sign, levels)
            and not seen(books[-1][s], price, sign, levels)
        ):
            deep += 1
    return levels, messages, books, deep


def write_session(folder: Path, levels: int, messages, books) -> tuple[Path, Path]:
    msg = folder / f"PROP_2012-06-21_34200000_57600000_message_{levels}.csv"
    ob = folder / f"PROP_2012-06-21_34200000_57600000_orderbook_{levels}.csv"
    msg.write_text("".join(f"{time_text(m[0])},{','.join(map(str, m[1:]))}\n" for m in messages))
    ob.write_text("".join(book_line(b, levels) + "\n" for b in books))
    return msg, ob


def time_text(t_ns: int) -> str:
    sec, ns = divmod(t_ns, 10**9)
    return f"{sec}.{ns:09d}".rstrip("0").rstrip(".")


def book_line(book, levels: int) -> str:
    bids, asks = book
    fields = []
    for i in range(levels):
        ask = asks[i] if i < len(asks) else (EMPTY_ASK_PRICE, 0)
        bid = bids[i] if i < len(bids) else (EMPTY_BID_PRICE, 0)
        fields += [ask[0], ask[1], bid[0], bid[1]]
    return ",".join(map(str, fields))


def expected_top(book, levels: int) -> tuple[np.ndarray, ...]:
    out = []
    for side in book:
        px = np.zeros(levels, dtype=np.int64)
        sz = np.zeros(levels, dtype=np.float64)
        for i, (p, q) in enumerate(side):
            px[i], sz[i] = p // TICK, q
        out += [px, sz]
    return tuple(out)


def assert_same_top(got, want):
    for g, w in zip(got, want, strict=True):
        np.testing.assert_array_equal(g, w)


@settings(max_examples=80, deadline=None)
@given(sessions(), st.integers(1, 8))
def test_replayed_import_matches_every_book_row(session, chunk):
    levels, messages, books, deep = session
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(lobster, "_PAIR_CHUNK_ROWS", chunk):
        result = import_lobster(*write_session(Path(tmp), levels, messages, books))
    data = result.data
    assert result.deep_rows == deep

    emits = [k == 0 or books[k] != books[k - 1] or messages[k][1] in TRADE_TYPES for k in range(len(books))]
    assert result.unchanged_rows == emits.count(False)
    assert result.n_trades == sum(m[1] in TRADE_TYPES for m in messages)
    ends = np.flatnonzero(data.flags & FLAG_LAST_IN_MESSAGE)
    assert len(ends) == emits.count(True) and (len(data) == 0 or ends[-1] == len(data) - 1)

    px, sz, n = new_book(2 * levels)
    price_tick = data.price_tick
    at = 0
    for k, book in enumerate(books):
        if emits[k]:
            end = ends[np.searchsorted(ends, at)]
            assert set(data.ts_event[at : end + 1]) == {data.ts_event[0] + messages[k][0] - messages[0][0]}
            for i in range(at, end + 1):
                if data.kind[i] == KIND_CLEAR:
                    book_clear(n)
                elif data.kind[i] == KIND_BOOK:
                    book_set(px, sz, n, side_index(data.side[i]), price_tick[i], data.size[i])
            assert data.kind[at] == KIND_TRADE or messages[k][1] not in TRADE_TYPES
            at = end + 1
        assert_same_top(top_levels(px, sz, n, levels), expected_top(book, levels))


@settings(max_examples=60, deadline=None)
@given(sessions(), st.data())
def test_a_book_row_that_does_not_follow_is_refused_at_that_row(session, data):
    levels, messages, books, _ = session

    def checkable(k: int, s: int) -> list[int]:
        # A level that entered at the L-th place (a deeper one revealed) has no earlier size to
        # compare with: the next row checks it. Every other level's size follows from the message.
        before = {p for p, _ in books[k - 1][s]}
        mprice = messages[k][4] if (messages[k][5] > 0) == (s == 0) else None
        return [i for i, (p, _) in enumerate(books[k][s]) if p in before or p == mprice]

    # A cross (type 6) is not checked, so its row would be caught one row later.
    spots = [(k, s, i) for k in range(1, len(books)) if messages[k][1] != 6 for s in (0, 1) for i in checkable(k, s)]
    assume(spots)
    k, s, i = data.draw(st.sampled_from(spots))
    side = list(books[k][s])
    side[i] = (side[i][0], side[i][1] + data.draw(st.integers(1, 50)))
    bad = list(books)
    bad[k] = (tuple(side), books[k][1]) if s == 0 else (books[k][0], tuple(side))
    chunk = data.draw(st.integers(1, 8))  # rows per vectorised pass: the first bad row whatever the chunking
    with tempfile.TemporaryDirectory() as tmp, mock.patch.object(lobster, "_PAIR_CHUNK_ROWS", chunk):
        msg, ob = write_session(Path(tmp), levels, messages, bad)
        with pytest.raises(LobsterFormatError, match=rf": row {k + 1}: does not follow from {msg.name} row {k + 1}: "):
            import_lobster(msg, ob)


def import_one_time(text: str):
    with tempfile.TemporaryDirectory() as tmp:
        msg = Path(tmp) / "PROP_2012-06-21_0_86400000_message_1.csv"
        ob = Path(tmp) / "PROP_2012-06-21_0_86400000_orderbook_1.csv"
        msg.write_text(f"{text},1,1,5,1000100,-1\n")
        ob.write_text("1000100,5,999900,7\n")
        return import_lobster(msg, ob)


MIDNIGHT_UTC_NS = (1_340_236_800 + 4 * 3600) * 10**9  # 2012-06-21 00:00 New York (EDT) as UTC ns
seconds = st.integers(1, 86_399)
nanos = st.integers(0, 10**9 - 1)


@settings(max_examples=150, deadline=None)
@given(seconds, nanos)
def test_a_time_with_at_most_nine_decimals_is_exact_and_not_rounded(sec, ns):
    res = import_one_time(time_text(sec * 10**9 + ns))
    assert int(res.data.ts_event[0]) == MIDNIGHT_UTC_NS + sec * 10**9 + ns and res.rounded_times == 0


@settings(max_examples=150, deadline=None)
@given(seconds, nanos)
def test_a_float64_artifact_of_a_time_rounds_to_that_nanosecond(sec, ns):
    text = repr(sec + ns / 1e9)  # a time computed in float64 and written with repr, as in the AMZN sample
    res = import_one_time(text)
    assert int(res.data.ts_event[0]) == MIDNIGHT_UTC_NS + sec * 10**9 + ns, text
    assert res.rounded_times == (1 if len(text.partition(".")[2]) > 9 else 0)


@settings(max_examples=100, deadline=None)
@given(seconds, nanos, st.integers(50, 949), st.text("0123456789", max_size=6))
def test_a_time_that_is_not_within_50_ps_of_a_nanosecond_is_refused(sec, ns, ps, more):
    text = f"{sec}.{ns:09d}{ps:03d}{more}"
    with pytest.raises(LobsterFormatError, match=r"row 1: .*not within 50 ps of a nanosecond"):
        import_one_time(text)


@settings(max_examples=150, deadline=None)
@given(
    st.one_of(
        st.text("0123456789.-+eE naNIifx", min_size=1, max_size=12),
        st.sampled_from(
            [
                "NaN",
                "nan",
                "inf",
                "-inf",
                "-1.5",
                "+34200",
                "3.42e4",
                "1E5",
                " 34200",
                "34200 ",
                ".5",
                "34200.",
                "1.2.3",
                "",
            ]
        ),
        st.builds(lambda s, d: f"{s}.{d}", seconds, st.text("0123456789", min_size=19, max_size=25)),
    )
)
def test_anything_but_decimal_seconds_is_refused_naming_the_row(text):
    assume(not re.fullmatch(r"[0-9]{1,6}(\.[0-9]{1,18})?", text) and "," not in text)
    with pytest.raises(LobsterFormatError, match=r"row 1: "):
        import_one_time(text)
