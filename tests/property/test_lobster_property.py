"""Property: replaying an imported LOBSTER pair rebuilds every order-book row exactly."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.features.book import book_clear, book_set, new_book, side_index, top_levels
from scalper.ingest.lobster import EMPTY_ASK_PRICE, EMPTY_BID_PRICE, import_lobster
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_BOOK, KIND_CLEAR, KIND_TRADE

TICK = 100  # $0.01 in LOBSTER price units
TRADE_TYPES = (4, 5, 6)


@st.composite
def book_rows(draw, levels: int) -> tuple[tuple[int, int], ...]:
    """One book: ((bid_px, bid_sz) best first, ...), ((ask_px, ask_sz) ...), strictly ordered, uncrossed."""
    # A narrow mid range makes consecutive random books share many prices.
    mid = draw(st.integers(10_000, 10_003))
    sides = []
    for sign in (-1, 1):
        offsets = sorted(draw(st.lists(st.integers(1, 8), max_size=levels, unique=True)))
        sizes = draw(st.lists(st.integers(1, 500), min_size=len(offsets), max_size=len(offsets)))
        sides.append(tuple(((mid + sign * o) * TICK, q) for o, q in zip(offsets, sizes)))
    return tuple(sides)


@st.composite
def sessions(draw):
    """Return (levels, message rows, book rows) as lists of ints; book rows are (bids, asks)."""
    levels = draw(st.integers(1, 4))
    n = draw(st.integers(1, 25))
    t_ns = 34_200 * 10**9
    books, messages = [], []
    for k in range(n):
        action = "new" if k == 0 else draw(st.sampled_from(["same", "resize", "new"]))
        if action == "new":
            book = draw(book_rows(levels))
        else:
            book = books[-1]
            occupied = [(s, i) for s in (0, 1) for i in range(len(book[s]))]
            if action == "resize" and occupied:
                s, i = draw(st.sampled_from(occupied))
                side = list(book[s])
                side[i] = (side[i][0], draw(st.integers(1, 500)))
                book = (tuple(side), book[1]) if s == 0 else (book[0], tuple(side))
        books.append(book)
        t_ns += draw(st.integers(0, 2 * 10**9))
        mtype = 7 if action == "same" and draw(st.booleans()) else draw(st.integers(1, 6))
        if mtype == 7:
            messages.append((t_ns, 7, 0, 0, -1, -1))
        else:
            size, price = draw(st.integers(1, 999)), draw(st.integers(1, 10**7))
            messages.append((t_ns, mtype, k, size, price, draw(st.sampled_from([-1, 1]))))
    return levels, messages, books


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
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


@settings(max_examples=80, deadline=None)
@given(sessions())
def test_replayed_import_matches_every_book_row(session):
    levels, messages, books = session
    with tempfile.TemporaryDirectory() as tmp:
        msg = Path(tmp) / f"PROP_2012-06-21_34200000_57600000_message_{levels}.csv"
        ob = Path(tmp) / f"PROP_2012-06-21_34200000_57600000_orderbook_{levels}.csv"
        msg.write_text("".join(f"{time_text(m[0])},{','.join(map(str, m[1:]))}\n" for m in messages))
        ob.write_text("".join(book_line(b, levels) + "\n" for b in books))
        result = import_lobster(msg, ob)
    data = result.data

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
