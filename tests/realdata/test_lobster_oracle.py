"""Oracle: replaying the LOBSTER sample imports rebuilds LOBSTER's own order-book file after every row.

The order-book file is LOBSTER's reconstruction of the top-L book after each message
(LOBSTER_SampleFiles_ReadMe.txt), read here independently of the importer (plain
``pl.read_csv``); the importer only sees its diffs. Counts and spreads come from
../shared/data/README.md, section 1.
"""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path

import numpy as np
import polars as pl
import pytest
from numba import njit

from scalper.ingest.inspect import inspect_tickfile
from scalper.ingest.lobster import EMPTY_ASK_PRICE, EMPTY_BID_PRICE, LobsterImport, import_lobster
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_BOOK, KIND_CLEAR, KIND_TRADE, validate
from scalper.lowlevel.book import book_clear, book_set, side_index

pytestmark = pytest.mark.realdata

SESSION_UTC_NS = (1_340_236_800 + 4 * 3600) * 10**9  # 2012-06-21 00:00 in New York (EDT), as UTC ns
STEM = "{symbol}_2012-06-21_34200000_57600000_{kind}_{levels}.csv"
PAIRS = [("GOOG", 10), ("GOOG", 5), ("GOOG", 1), ("AAPL", 1)]
ROWS = {("GOOG", 10): 147_916, ("GOOG", 5): 112_673, ("GOOG", 1): 49_482, ("AAPL", 1): 118_497}
TYPE_COUNTS = {  # README: event types 1-5; types 6 and 7 never occur
    ("GOOG", 10): [71_258, 19, 64_961, 7_765, 3_913],
    ("AAPL", 1): [54_818, 252, 28_437, 23_658, 11_332],
}
MEDIAN_SPREAD_TICKS = {("GOOG", 10): 28, ("AAPL", 1): 15}
TRADE_TYPES = (4, 5, 6)
_imports: dict[tuple[str, int], LobsterImport] = {}


def pair_paths(data_dir: Path, symbol: str, levels: int) -> tuple[Path, Path]:
    folder = data_dir / "lobster"
    msg = folder / STEM.format(symbol=symbol, kind="message", levels=levels)
    ob = folder / STEM.format(symbol=symbol, kind="orderbook", levels=levels)
    for path in (msg, ob):
        if not path.is_file():
            pytest.skip(f"LOBSTER sample {path} not found")
    return msg, ob


def imported(data_dir: Path, symbol: str, levels: int) -> LobsterImport:
    # Several tests look at the same import; importing GOOG level 10 once keeps the tier fast.
    key = (symbol, levels)
    if key not in _imports:
        _imports[key] = import_lobster(*pair_paths(data_dir, symbol, levels))
    return _imports[key]


def read_book(path: Path, levels: int) -> np.ndarray:
    schema = {f"c{i}": pl.Int64 for i in range(4 * levels)}
    return pl.read_csv(path, has_header=False, schema=schema).to_numpy()


def read_messages(path: Path) -> pl.DataFrame:
    schema = {"time": pl.String} | {name: pl.Int64 for name in ("type", "id", "size", "price", "direction")}
    return pl.read_csv(path, has_header=False, schema=schema)


@njit(cache=True)
def replay_top_levels(kind, side, price_tick, size, flags, levels, out_px, out_sz, out_n):
    """At each message end record the top ``levels`` prices (ticks), sizes and level counts per side.

    The book holds twice ``levels`` so that an importer bug leaving extra levels shows up in ``out_n``.
    Returns the number of message ends.
    """
    px = np.zeros((2, 2 * levels), dtype=np.int64)
    sz = np.zeros((2, 2 * levels), dtype=np.float64)
    n = np.zeros(2, dtype=np.int64)
    m = 0
    for i in range(kind.shape[0]):
        if kind[i] == KIND_CLEAR:
            book_clear(n)
        elif kind[i] == KIND_BOOK:
            book_set(px, sz, n, side_index(side[i]), price_tick[i], size[i])
        if flags[i] & FLAG_LAST_IN_MESSAGE:
            for s in range(2):
                out_n[m, s] = n[s]
                for j in range(min(levels, n[s])):
                    out_px[m, s, j] = px[s, j]
                    out_sz[m, s, j] = sz[s, j]
            m += 1
    return m


def expected_books(book: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return LOBSTER's rows as (px ticks int64[rows, 2, L], sz float64[rows, 2, L], n int64[rows, 2]), side 0 bids."""
    ask_px, ask_sz, bid_px, bid_sz = (book[:, c::4] for c in range(4))
    present = np.stack([bid_px != EMPTY_BID_PRICE, ask_px != EMPTY_ASK_PRICE], axis=1)
    prices = np.stack([bid_px, ask_px], axis=1)
    assert np.all(prices[present] % 100 == 0), "book prices are whole cents"
    px = np.where(present, prices // 100, 0)
    sz = np.where(present, np.stack([bid_sz, ask_sz], axis=1), 0).astype(np.float64)
    return px, sz, present.sum(axis=2)


@pytest.mark.parametrize(("symbol", "levels"), PAIRS, ids=[f"{s}_{lv}" for s, lv in PAIRS])
def test_replayed_import_equals_lobster_book_after_every_row(data_dir, symbol, levels):
    msg_path, ob_path = pair_paths(data_dir, symbol, levels)
    result = imported(data_dir, symbol, levels)
    data = result.data
    validate(data)
    messages = read_messages(msg_path)
    book = read_book(ob_path, levels)
    rows = book.shape[0]
    assert (result.rows, result.levels, messages.height) == (ROWS[(symbol, levels)], levels, rows)

    # A row emits events iff it trades or its book differs from the row before.
    mtype = messages["type"].to_numpy()
    emits = np.ones(rows, dtype=bool)
    emits[1:] = (book[1:] != book[:-1]).any(axis=1) | np.isin(mtype[1:], TRADE_TYPES)
    assert result.unchanged_rows == rows - int(emits.sum())

    out_px = np.zeros((rows, 2, levels), dtype=np.int64)
    out_sz = np.zeros((rows, 2, levels), dtype=np.float64)
    out_n = np.zeros((rows, 2), dtype=np.int64)
    n_msgs = replay_top_levels(
        data.kind, data.side, data.price_tick, data.size, data.flags, levels, out_px, out_sz, out_n
    )
    assert n_msgs == int(emits.sum())
    # The book after row k is the one left by the last message end at or before k.
    at_row = np.cumsum(emits) - 1
    want_px, want_sz, want_n = expected_books(book)
    np.testing.assert_array_equal(out_n[at_row], want_n)
    np.testing.assert_array_equal(out_px[at_row], want_px)
    np.testing.assert_array_equal(out_sz[at_row], want_sz)

    want_ts = SESSION_UTC_NS + np.array([int(Decimal(t) * 10**9) for t in messages["time"]], dtype=np.int64)
    ends = np.flatnonzero(data.flags & FLAG_LAST_IN_MESSAGE)
    np.testing.assert_array_equal(data.ts_event[ends], want_ts[emits])


@pytest.mark.parametrize(("symbol", "levels"), PAIRS, ids=[f"{s}_{lv}" for s, lv in PAIRS])
def test_import_trades_equal_execution_messages(data_dir, symbol, levels):
    msg_path, _ = pair_paths(data_dir, symbol, levels)
    data = imported(data_dir, symbol, levels).data
    messages = read_messages(msg_path)
    mtype = messages["type"].to_numpy()
    if (symbol, levels) in TYPE_COUNTS:
        assert np.bincount(mtype, minlength=8)[1:].tolist() == TYPE_COUNTS[(symbol, levels)] + [0, 0]
    ex = messages.filter(pl.col("type").is_in(TRADE_TYPES))
    trades = data.kind == KIND_TRADE
    assert imported(data_dir, symbol, levels).n_trades == int(trades.sum()) == ex.height
    # The direction is the resting order's side; the aggressor is the opposite one.
    np.testing.assert_array_equal(data.side[trades], -ex["direction"].to_numpy())
    np.testing.assert_array_equal(data.price[trades], ex["price"].to_numpy() / 10_000)
    np.testing.assert_array_equal(data.size[trades], ex["size"].to_numpy())


@pytest.mark.parametrize(("symbol", "levels"), list(MEDIAN_SPREAD_TICKS), ids=["GOOG_10", "AAPL_1"])
def test_inspect_matches_readme_spreads_and_span(data_dir, symbol, levels):
    result = imported(data_dir, symbol, levels)
    d = inspect_tickfile(result.data)
    assert (d["spread_min_ticks"], d["spread_median_ticks"]) == (1, MEDIAN_SPREAD_TICKS[(symbol, levels)])
    assert (d["crossed"], d["locked"], d["book_overflows"]) == (0, 0, 0)
    assert d["messages"] == d["two_sided_messages"] == result.rows - result.unchanged_rows
    if symbol == "GOOG":
        assert (d["first_ts"], d["last_ts"]) == ("2012-06-21T13:30:00.015105074Z", "2012-06-21T19:59:59.871751084Z")
