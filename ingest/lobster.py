"""LOBSTER importer: a NASDAQ message file and order-book file pair -> tick data (schema v1, or v2 with order ids).

LOBSTER (lobsterdata.com, "Limit Order Book System - The Efficient Reconstructor") writes two CSVs
per session and book depth ``L`` (``LOBSTER_SampleFiles_ReadMe.txt``, "Output Structure"):

* ``SYMBOL_YYYY-MM-DD_start_end_message_L.csv``: 6 columns, one row per event touching the top
  ``L`` levels: time (seconds after midnight, exchange local time, up to 9 decimals), type
  (1 submit, 2 partial cancel, 3 delete, 4 visible execution, 5 hidden execution, 6 cross,
  7 trading halt), order id, size (shares), price (dollars x 10000), direction (-1 sell,
  +1 buy limit order; for executions the side of the *resting* order).
* ``SYMBOL_YYYY-MM-DD_start_end_orderbook_L.csv``: ``4 L`` columns, row k is the top-``L`` book
  *after* message k: ``ask_price_1, ask_size_1, bid_price_1, bid_size_1, ask_price_2, ...``.
  Unoccupied levels hold the dummy prices 9999999999 (ask) / -9999999999 (bid) with size 0.

The importer turns the pair into the event stream of DESIGN.md ("Tick files"):

* The book of row 0 becomes a snapshot: a ``KIND_CLEAR`` event (side 0, price 0, size 0)
  followed by one level event per occupied level, all flagged ``FLAG_SNAPSHOT``.
* Row k >= 1 becomes, in this order: a trade for an execution message (type 4 or 5: aggressor
  side = -direction, as the ReadMe notes "execution of a sell (buy) limit order corresponds to a
  buyer (seller) initiated trade"; type 6: side 0), then level deletions (size 0) for prices
  that left the top ``L``, then level sets for prices that entered it or changed size. Deletions
  come first so a book of capacity ``L`` never overflows in the middle of a message.
* Message 0's own trade, if any, is kept and comes before the snapshot (it happened before the
  row-0 book was observed).
* Every event of row k carries the time of message k (``ts_recv == ts_event``); the last one has
  ``FLAG_LAST_IN_MESSAGE``. A row that neither trades nor changes the visible book (a cancel
  outside the top ``L``, a halt, ...) emits nothing and is counted in
  :attr:`LobsterImport.unchanged_rows`.

Replaying the events through :func:`scalper.lowlevel.book.book_set` therefore rebuilds, at each
message end, exactly the top-``L`` book of the order-book file.

Market-by-order (``mbo=True``, schema v2): the same events, plus each message's order id (LOBSTER's
"unique order reference number") in ``order_id`` on the events that message itself causes: the trade of
a type 4 or 5 execution (the executed resting order) and the level event at the message's own price and
side (its submission, cancel, deletion or visible execution). Every other event has ``ORDER_ID_UNKNOWN``
(-1): the snapshot, a cross's trade (type 6: no resting order), and a level that enters or leaves the
top ``L`` as a consequence (a level revealed from deeper, or pushed out, belongs to no single order).
A LOBSTER id is never negative; a negative one on a type 1-5 message is refused in this mode.

Two checks go beyond the format: a time with more than 9 decimals (a float64 artifact such as
``43002.632812672004`` in a genuine sample) is rounded to the nanosecond when within
``TIME_ROUND_PS`` of one and counted, and every book row must follow from its message
(:func:`check_pairing`), so a message file paired with another stock's book of the same length is
refused at its first row.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import polars as pl
from numba import njit

from scalper.ingest.tickfile import (
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    KIND_TRADE,
    ORDER_ID_UNKNOWN,
    Instrument,
    TickData,
)

VENUE = "NASDAQ"
EXCHANGE_TZ = ZoneInfo("America/New_York")
PRICE_SCALE = 10_000
TICK_SIZE = 0.01
LOT_SIZE = 1.0
EMPTY_ASK_PRICE = 9_999_999_999
EMPTY_BID_PRICE = -9_999_999_999

TYPE_SUBMIT = 1
TYPE_EXECUTE_VISIBLE = 4
TYPE_EXECUTE_HIDDEN = 5
TYPE_CROSS = 6
TYPE_HALT = 7

MESSAGE_COLUMNS = ("time", "type", "order_id", "size", "price", "direction")

_NAME_RE = re.compile(r"^(?P<symbol>.+?)_(?P<date>\d{4}-\d{2}-\d{2})_\d+_\d+_message_\d+\.csv$")
# Decimal seconds after midnight. LOBSTER promises at most 9 decimals (ns), but genuine sample files
# carry a few float artifacts such as 43002.632812672004 (a float64's repr, 4 ps past a nanosecond).
_TIME_RE = r"^[0-9]{1,6}(\.[0-9]{1,18})?$"
TIME_ROUND_PS = 50
"""A time with more than 9 decimals is rounded to the nearest ns when it lies less than this many
picoseconds past a nanosecond or at most this many before the next one: over 3 float64 ulps at any
time of day (an ulp is at most 14.6 ps below 86,400 s), and far from the half-nanosecond where the
nearest ns would be a guess. Anything else with more than 9 decimals is refused."""
_NS_PER_S = 1_000_000_000


class LobsterFormatError(ValueError):
    """A LOBSTER file breaks the format; the message names the file, the 1-based row and the reason."""


@dataclass(frozen=True)
class LobsterImport:
    """Result of :func:`import_lobster`.

    Attributes
    ----------
    data : TickData
        The events: schema v1, or v2 (``data.order_id`` set) when imported with ``mbo=True``.
    levels : int
        Book depth ``L`` of the order-book file.
    rows : int
        Rows in the message file (equal to the order-book rows).
    unchanged_rows : int
        Rows after the first that emitted no event (no trade and no visible book change).
    n_trades : int
        Trade events emitted (message types 4, 5 and 6).
    rounded_times : int
        Message times with more than 9 decimals, rounded to the nanosecond (see ``TIME_ROUND_PS``).
    first_rounded_row : int
        1-based row of the first of them; 0 when there is none.
    deep_rows : int
        Messages (types 1-4) whose price lies beyond the top ``L`` levels in the book row before
        and after them, so that their size change cannot be seen; the rest of that book row is
        still checked to be unchanged (see :func:`check_pairing`).
    unchecked_crosses : int
        Cross trades (type 6) after the first row: LOBSTER does not define their effect on the
        book, so their book rows are not checked against them.
    """

    data: TickData
    levels: int
    rows: int
    unchanged_rows: int
    n_trades: int
    rounded_times: int = 0
    first_rounded_row: int = 0
    deep_rows: int = 0
    unchecked_crosses: int = 0


def orderbook_path(message_csv: str | Path) -> Path:
    """Return the order-book file that LOBSTER names next to ``message_csv``.

    Raises
    ------
    LobsterFormatError
        If the name has no ``_message_`` part.
    """
    path = Path(message_csv)
    if "_message_" not in path.name:
        raise LobsterFormatError(f"{path}: not a LOBSTER message file name (no '_message_')")
    return path.with_name(path.name.replace("_message_", "_orderbook_"))


def import_lobster(
    message_csv: str | Path,
    orderbook_csv: str | Path,
    session_date: dt.date | None = None,
    symbol: str | None = None,
    progress: Callable[[str], None] | None = None,
    mbo: bool = False,
) -> LobsterImport:
    """Import a LOBSTER message/order-book pair as schema-v1 events, or v2 with order ids (see the module docstring).

    Parameters
    ----------
    message_csv, orderbook_csv : str or Path
        The two CSVs (no header). The book depth ``L`` is the order-book column count / 4.
    session_date : datetime.date, optional
        Trading day; LOBSTER times are seconds after its midnight in America/New_York.
        Default: the date in the message file name ``SYMBOL_YYYY-MM-DD_start_end_message_L.csv``.
    symbol : str, optional
        Default: the symbol in the message file name.
    progress : callable, optional
        Called with a short description before each stage (for a CLI status line).
    mbo : bool
        Market-by-order: also fill ``order_id`` (schema v2). The other columns are the same either way.

    Returns
    -------
    LobsterImport
        ``data`` holds int64 ``ts_event``/``ts_recv`` in ns since the epoch, UTC (converted
        exactly, DST aware); prices in dollars (file price / 10000); sizes in shares. The
        instrument is venue ``"NASDAQ"``, tick 0.01, lot 1, source ``"lobster:<message file name>"``.

    Raises
    ------
    LobsterFormatError
        Naming the file, the 1-based row and the reason: empty file, wrong column count, a
        field that is not an integer (or, for time, not decimal seconds, or more than 9
        decimals not within ``TIME_ROUND_PS`` of a nanosecond), time going backwards, files of
        different length, unknown message type, direction not +-1, non-positive size,
        non-positive execution price, and in the book: a non-positive level size or price, an
        occupied level after an empty one, levels not strictly ordered, or a crossed or locked
        book (best bid >= best ask); a book row that does not follow from its message
        (:func:`check_pairing`: files of another stock or depth). Also when the file name cannot
        be parsed and ``session_date`` or ``symbol`` is missing. With ``mbo``: a negative order id on a
        type 1-5 message.
    """
    message_csv, orderbook_csv = Path(message_csv), Path(orderbook_csv)
    say = progress or (lambda _msg: None)
    if session_date is None or symbol is None:
        name_symbol, name_date = _parse_name(message_csv)
        session_date = name_date if session_date is None else session_date
        symbol = name_symbol if symbol is None else symbol

    say(f"reading {message_csv.name}")
    time_s, msg = _read_messages(message_csv)
    say(f"reading {orderbook_csv.name}")
    book = _read_book(orderbook_csv)
    _check_same_length(message_csv, msg.shape[0], orderbook_csv, book.shape[0])
    sec, frac_ns, rounded = _split_time(message_csv, time_s)
    say("checking rows")
    _check_messages(message_csv, time_s, sec * _NS_PER_S + frac_ns, msg)
    if mbo:
        _check_order_ids(message_csv, msg)
    px, sz, nlev = _book_sides(orderbook_csv, book)
    say("checking that each book row follows from its message")
    deep_rows = check_pairing(message_csv, orderbook_csv, msg, px, sz, nlev)

    say("building events")
    ts = _utc_ns(sec, frac_ns, session_date)
    (ts_event, kind, side, price, size, flags, order_id), unchanged = _events(ts, msg, px, sz, nlev)
    instrument = Instrument(VENUE, symbol, TICK_SIZE, LOT_SIZE, f"lobster:{message_csv.name}")
    data = TickData(instrument, ts_event, ts_event.copy(), kind, side, price, size, flags, order_id if mbo else None)
    return LobsterImport(
        data=data,
        levels=px.shape[2],
        rows=msg.shape[0],
        unchanged_rows=unchanged,
        n_trades=int(np.count_nonzero(kind == KIND_TRADE)),
        rounded_times=int(rounded.sum()),
        first_rounded_row=int(np.argmax(rounded)) + 1 if rounded.any() else 0,
        deep_rows=deep_rows,
        unchecked_crosses=int(np.count_nonzero(msg[1:, 0] == TYPE_CROSS)),
    )


def _fail(path: Path, row: int, reason: str) -> LobsterFormatError:
    return LobsterFormatError(f"{path}: row {row}: {reason}")


def _parse_name(path: Path) -> tuple[str, dt.date]:
    match = _NAME_RE.match(path.name)
    if match:
        try:
            return match["symbol"], dt.date.fromisoformat(match["date"])
        except ValueError:
            pass
    raise LobsterFormatError(
        f"{path}: file name is not SYMBOL_YYYY-MM-DD_start_end_message_L.csv; pass session_date and symbol"
    )


def _check_same_length(message_csv: Path, n_messages: int, orderbook_csv: Path, n_book: int) -> None:
    # LOBSTER writes one book row per message; the first unmatched row is in the longer file.
    if n_messages != n_book:
        longer, other = (message_csv, orderbook_csv) if n_messages > n_book else (orderbook_csv, message_csv)
        raise _fail(
            longer,
            min(n_messages, n_book) + 1,
            f"no matching row in {other} (message file {n_messages} rows, order-book file {n_book} rows)",
        )


def _lines(path: Path) -> pl.Series:
    # Splitting lines ourselves (not pl.read_csv) keeps row i == line i + 1 even for blank or
    # ragged lines, which a CSV reader would pad, skip or reject without a line number.
    raw = path.read_bytes()
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        raise _fail(path, raw.count(b"\n", 0, exc.start) + 1, f"byte {raw[exc.start]:#04x} is not ASCII text") from None
    lines = text.split("\n")
    if lines[-1] == "":
        lines.pop()
    if not lines:
        raise LobsterFormatError(f"{path}: empty file")
    return pl.Series("line", lines, dtype=pl.String).str.strip_suffix("\r")


def _fields(path: Path, lines: pl.Series, n_fields: int) -> pl.DataFrame:
    # String columns field_0 .. field_{n-1}; a row with another field count is an error, not padding.
    counts = (lines.str.count_matches(",", literal=True) + 1).to_numpy()
    bad = np.flatnonzero(counts != n_fields)
    if bad.size:
        r = int(bad[0])
        raise _fail(path, r + 1, f"expected {n_fields} comma-separated fields, found {counts[r]}")
    return lines.str.split_exact(",", n_fields - 1).struct.unnest().rechunk()


def _ints(path: Path, fields: pl.DataFrame, names: list[str], first_field: int = 1) -> np.ndarray:
    # Return int64[rows, columns]; the first field that is not an integer is an error.
    # first_field is the 1-based file column of fields' first column, for the message.
    cast = fields.select(pl.all().cast(pl.Int64, strict=False))
    is_bad = cast.select(pl.any_horizontal(pl.all().is_null())).to_series().to_numpy()
    bad = np.flatnonzero(is_bad)
    if bad.size:
        r = int(bad[0])
        c = next(j for j in range(cast.width) if cast[r, j] is None)
        raise _fail(path, r + 1, f"field {first_field + c} ({names[c]}) {fields[r, c]!r} is not an integer")
    return cast.to_numpy().astype(np.int64, copy=False)


def _read_messages(path: Path) -> tuple[pl.Series, np.ndarray]:
    """Return the time column (strings) and int64[rows, 5] of type, order_id, size, price, direction."""
    fields = _fields(path, _lines(path), len(MESSAGE_COLUMNS))
    time_s = fields.to_series(0)
    bad = np.flatnonzero(~time_s.str.contains(_TIME_RE).to_numpy())
    if bad.size:
        r = int(bad[0])
        raise _fail(
            path, r + 1, f"time {time_s[r]!r} is not decimal seconds after midnight (digits, at most 18 decimals)"
        )
    return time_s, _ints(path, fields.drop(fields.columns[0]), list(MESSAGE_COLUMNS[1:]), first_field=2)


def _book_names(levels: int) -> list[str]:
    return [f"{name}_{i}" for i in range(1, levels + 1) for name in ("ask_price", "ask_size", "bid_price", "bid_size")]


def _read_book(path: Path) -> np.ndarray:
    """Return the order-book file as int64[rows, 4 L], columns in LOBSTER order."""
    lines = _lines(path)
    n_fields = lines[0].count(",") + 1
    if n_fields % 4:
        raise _fail(path, 1, f"found {n_fields} comma-separated fields; an order-book row has 4 per level")
    return _ints(path, _fields(path, lines, n_fields), _book_names(n_fields // 4))


def _split_time(path: Path, time_s: pl.Series) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return int64 seconds, int64 ns (0..999,999,999) and a bool mask of the rounded rows.

    ``time_s`` holds decimal seconds as text (already matched against the format). Digits up to
    the 9th decimal are read exactly, with no float arithmetic; a time with more decimals is rounded
    to the nearest ns when within ``TIME_ROUND_PS`` of it (carrying into the seconds at .999999999).

    Raises
    ------
    LobsterFormatError
        Naming the first row whose digits past the 9th decimal are not within ``TIME_ROUND_PS`` of a
        nanosecond.
    """
    parts = time_s.str.split_exact(".", 1).struct.unnest()
    sec = parts.to_series(0).cast(pl.Int64).to_numpy()
    frac = parts.to_series(1).fill_null("")
    ns = frac.str.slice(0, 9).str.pad_end(9, "0").cast(pl.Int64).to_numpy()
    rounded = (frac.str.len_chars() > 9).to_numpy()
    # The 10th-12th decimals as whole picoseconds; later digits cannot move them across a bound.
    ps = frac.str.slice(9, 3).str.pad_end(3, "0").cast(pl.Int64).to_numpy()
    ambiguous = np.flatnonzero(rounded & (ps >= TIME_ROUND_PS) & (ps < 1000 - TIME_ROUND_PS))
    if ambiguous.size:
        r = int(ambiguous[0])
        raise _fail(
            path,
            r + 1,
            f"time {time_s[r]!r} has more than 9 decimals and is not within {TIME_ROUND_PS} ps of a nanosecond",
        )
    up = rounded & (ps >= 1000 - TIME_ROUND_PS)
    ns = ns + up
    carry = ns == _NS_PER_S
    return sec + carry, np.where(carry, 0, ns), rounded


def _utc_ns(sec: np.ndarray, frac_ns: np.ndarray, session_date: dt.date) -> np.ndarray:
    """Return int64 ns since the epoch, UTC, for wall-clock seconds after midnight in New York.

    Wall-clock times that a DST change skips or repeats resolve as ``zoneinfo`` does with
    ``fold=0`` (the offset in force before the change).
    """
    midnight = dt.datetime.combine(session_date, dt.time(), tzinfo=EXCHANGE_TZ)
    epoch_day_s = (session_date - dt.date(1970, 1, 1)).days * 86_400
    # US DST switches at 02:00 local, so the UTC offset is constant within each wall-clock hour.
    hours = sec // 3600
    uniq = np.unique(hours)
    # Aware datetime + timedelta is wall-clock arithmetic, which is what LOBSTER's clock is.
    offsets = np.array(
        # An aware datetime always has an offset (utcoffset() is None only for a naive one).
        [(midnight + dt.timedelta(hours=int(h))).utcoffset().total_seconds() for h in uniq],  # type: ignore[union-attr]
        dtype=np.int64,
    )
    offset_s = offsets[np.searchsorted(uniq, hours)]
    return (epoch_day_s + sec - offset_s) * _NS_PER_S + frac_ns


def _raise_first(path: Path, checks: Iterable[tuple[np.ndarray, Callable[[int], str]]]) -> None:
    # Report the earliest failing row over all checks, whatever check catches it.
    first: tuple[int, Callable[[int], str]] | None = None
    for is_bad, reason in checks:
        bad = np.flatnonzero(is_bad)
        if bad.size and (first is None or bad[0] < first[0]):
            first = (int(bad[0]), reason)
    if first is not None:
        raise _fail(path, first[0] + 1, first[1](first[0]))


def _check_messages(path: Path, time_s: pl.Series, t_ns: np.ndarray, msg: np.ndarray) -> None:
    mtype, size, price, direction = msg[:, 0], msg[:, 2], msg[:, 3], msg[:, 4]
    is_trade = (mtype == TYPE_EXECUTE_VISIBLE) | (mtype == TYPE_EXECUTE_HIDDEN) | (mtype == TYPE_CROSS)
    backwards = np.zeros(t_ns.shape, dtype=bool)
    backwards[1:] = t_ns[1:] < t_ns[:-1]
    _raise_first(
        path,
        [
            ((mtype < TYPE_SUBMIT) | (mtype > TYPE_HALT), lambda r: f"unknown message type {mtype[r]} (not 1-7)"),
            (np.abs(direction) != 1, lambda r: f"direction {direction[r]} is not -1 or 1"),
            # A halt (type 7) carries size 0 by LOBSTER's convention; every other message moves shares.
            ((mtype != TYPE_HALT) & (size <= 0), lambda r: f"non-positive size {size[r]}"),
            (is_trade & (price <= 0), lambda r: f"non-positive execution price {price[r]}"),
            (backwards, lambda r: f"time {time_s[r]} goes backwards (previous row {time_s[r - 1]})"),
        ],
    )


def _check_order_ids(path: Path, msg: np.ndarray) -> None:
    mtype, order_id = msg[:, 0], msg[:, 1]
    _raise_first(
        path,
        [
            (
                (mtype <= TYPE_EXECUTE_HIDDEN) & (order_id < 0),
                lambda r: f"negative order id {order_id[r]} on a type {mtype[r]} message",
            )
        ],
    )


def _level_reason(name: str, bad: np.ndarray, what: str) -> Callable[[int], str]:
    return lambda r: f"{name} level {int(np.flatnonzero(bad[r])[0]) + 1} {what}"


def _check_side(path: Path, name: str, prices: np.ndarray, sizes: np.ndarray, present: np.ndarray, sign: int) -> None:
    # sign +1: bids, best = highest; -1: asks, best = lowest. Arrays are [rows, L].
    after_gap = np.zeros_like(present)
    after_gap[:, 1:] = present[:, 1:] & ~present[:, :-1]
    unordered = np.zeros_like(present)
    unordered[:, 1:] = present[:, 1:] & (sign * prices[:, 1:] >= sign * prices[:, :-1])
    problems = {
        "is occupied after an empty level": after_gap,
        "is not strictly worse than the level before": unordered,
        "has a non-positive size": present & (sizes <= 0),
        "has a non-positive price": present & (prices <= 0),
        "is empty but has a non-zero size": ~present & (sizes != 0),
    }
    _raise_first(path, [(bad.any(axis=1), _level_reason(name, bad, what)) for what, bad in problems.items()])


def _book_sides(path: Path, book: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Check the book and return ``px`` int64[rows, 2, L] (file units), ``sz`` int64[rows, 2, L]
    and ``nlev`` int64[rows, 2]; side 0 bids, 1 asks, best first, occupied levels first."""
    ask_px, ask_sz, bid_px, bid_sz = (book[:, c::4] for c in range(4))
    ask_present = ask_px != EMPTY_ASK_PRICE
    bid_present = bid_px != EMPTY_BID_PRICE
    _check_side(path, "bid", bid_px, bid_sz, bid_present, 1)
    _check_side(path, "ask", ask_px, ask_sz, ask_present, -1)
    crossed = bid_present[:, 0] & ask_present[:, 0] & (bid_px[:, 0] >= ask_px[:, 0])
    _raise_first(path, [(crossed, lambda r: f"crossed or locked book: best bid {bid_px[r, 0]} >= ask {ask_px[r, 0]}")])
    px = np.ascontiguousarray(np.stack([bid_px, ask_px], axis=1))
    sz = np.ascontiguousarray(np.stack([bid_sz, ask_sz], axis=1))
    nlev = np.stack([bid_present.sum(axis=1), ask_present.sum(axis=1)], axis=1).astype(np.int64)
    return px, sz, nlev


# Row codes of the pairing check, in the order a row's first problem is reported.
_PAIR_OK, _PAIR_DEEP = 0, 1
_PAIR_UNCHANGED, _PAIR_OTHER_SIDE, _PAIR_SEEN, _PAIR_SIZE, _PAIR_REST = 2, 3, 4, 5, 6
_PAIR_CHUNK_ROWS = 1 << 16  # rows per pass: the [rows, L] temporaries stay in the CPU cache
_SIDE_NAMES = ("bid", "ask")


def check_pairing(
    message_csv: Path, orderbook_csv: Path, msg: np.ndarray, px: np.ndarray, sz: np.ndarray, nlev: np.ndarray
) -> int:
    """Check that each order-book row follows from its message; return the number of deep rows.

    Book row k is the top ``L`` *after* message k (LOBSTER ReadMe), so from the second row on, with
    the message's side (its direction; for an execution the resting order's side):

    * a submission (type 1) adds its size at its price; a cancellation (2), deletion (3) or visible
      execution (4) takes its size away. Inside a row's top-``L`` range (any price of a side with
      fewer than ``L`` levels, else no worse than its ``L``-th level) an absent price has size 0.
    * nothing else moves: the other side is identical, and the message side's other levels keep
      their prices, sizes and order, except one level leaving or entering at the ``L``-th place
      when a level appears or disappears (an entering level, revealed from deeper, has no size
      to compare with yet: the next row checks it).
    * a hidden execution (5) and a trading halt (7) leave the book row as it was.
    * a cross (6) is not checked: the ReadMe does not define its effect on the book.

    A type 1-4 message whose price lies beyond the ``L``-th level in both rows (a "deep row": LOBSTER
    files at depth ``L`` hold mostly, not only, messages inside the top ``L``) cannot show its size
    change; it is counted and the rest of its book row must still be unchanged.
    Vectorised over chunks of rows (numpy), so millions of rows take seconds.

    Parameters
    ----------
    msg : int64[rows, 5]
        type, order_id, size, price (file units), direction, as read.
    px, sz, nlev
        The book as :func:`_book_sides` returns it (file units).

    Raises
    ------
    LobsterFormatError
        Naming the order-book file, the first row that does not follow from its message, the
        message and the reason (a message file paired with another stock's or depth's book).
    """
    deep = 0
    for start in range(1, msg.shape[0], _PAIR_CHUNK_ROWS):
        k = np.arange(start, min(start + _PAIR_CHUNK_ROWS, msg.shape[0]))
        code, q0, q1 = _pairing_codes(msg, px, sz, nlev, k)
        deep += int(np.count_nonzero(code == _PAIR_DEEP))
        bad = np.flatnonzero(code >= _PAIR_UNCHANGED)
        if bad.size:
            i = int(bad[0])
            row = int(k[i]) + 1
            reason = _pairing_reason(int(code[i]), msg[k[i]], int(q0[i]), int(q1[i]), px.shape[2])
            raise _fail(orderbook_csv, row, f"does not follow from {message_csv.name} row {row}: {reason}")
    return deep


def _pairing_codes(msg, px, sz, nlev, k):
    """Return the row codes and the sizes at the message's price before/after, for book rows ``k``."""
    mtype, size, price, direction = (msg[k, c] for c in (0, 2, 3, 4))
    s = (direction < 0).astype(np.intp)  # 0 bids, 1 asks, as in _book_sides
    o = 1 - s
    other_changed = (px[k - 1, o] != px[k, o]).any(axis=1) | (sz[k - 1, o] != sz[k, o]).any(axis=1)
    p0, q0_levels, p1, q1_levels = px[k - 1, s], sz[k - 1, s], px[k, s], sz[k, s]
    side_changed = (p0 != p1).any(axis=1) | (q0_levels != q1_levels).any(axis=1)
    sign = 1 - 2 * s
    q0, seen0, rest0_p, rest0_q, n0 = _at_price(p0, q0_levels, nlev[k - 1, s], price, sign)
    q1, seen1, rest1_p, rest1_q, n1 = _at_price(p1, q1_levels, nlev[k, s], price, sign)
    levels = px.shape[2]
    common = np.arange(levels) < np.minimum(n0, n1)[:, None]
    rest_changed = (((rest0_p != rest1_p) | (rest0_q != rest1_q)) & common).any(axis=1)
    # A level appearing pushes the L-th out; one disappearing lets the (L+1)-th in.
    rest_changed |= (n0 != n1) & ((np.abs(n0 - n1) != 1) | (np.maximum(n0, n1) != levels))
    delta = np.where(mtype == TYPE_SUBMIT, size, -size)
    priced = (mtype >= TYPE_SUBMIT) & (mtype <= TYPE_EXECUTE_VISIBLE)
    still = (mtype == TYPE_EXECUTE_HIDDEN) | (mtype == TYPE_HALT)
    code = np.select(
        [
            still & (other_changed | side_changed),
            priced & other_changed,
            priced & (seen0 != seen1),
            priced & seen0 & (q1 - q0 != delta),
            priced & rest_changed,
            priced & ~seen0,
        ],
        [_PAIR_UNCHANGED, _PAIR_OTHER_SIDE, _PAIR_SEEN, _PAIR_SIZE, _PAIR_REST, _PAIR_DEEP],
        _PAIR_OK,
    )
    return code, q0, q1


def _at_price(prices, sizes, n, p, sign):
    """For one side's levels [rows, L] and a price per row: the size at it, whether it lies inside
    the top-L range, and the levels without it (prices, sizes, count), later ones moved up a place."""
    levels = prices.shape[1]
    found = prices == p[:, None]
    has = found.any(axis=1)
    pos = np.where(has, found.argmax(axis=1), levels)
    q = np.where(has, np.take_along_axis(sizes, np.minimum(pos, levels - 1)[:, None], axis=1)[:, 0], 0)
    seen = has | (n < levels) | (sign * p > sign * prices[:, levels - 1])
    j = np.arange(levels)
    idx = np.minimum(j + (j >= pos[:, None]), levels - 1)
    return q, seen, np.take_along_axis(prices, idx, axis=1), np.take_along_axis(sizes, idx, axis=1), n - has


def _pairing_reason(code: int, message: np.ndarray, q0: int, q1: int, levels: int) -> str:
    mtype, size, price, direction = (int(message[c]) for c in (0, 2, 3, 4))
    if code == _PAIR_UNCHANGED:
        what = "a hidden execution" if mtype == TYPE_EXECUTE_HIDDEN else "a trading halt"
        return f"type {mtype} changed the book ({what} leaves every visible level as it was)"
    side, other = (_SIDE_NAMES[0], _SIDE_NAMES[1]) if direction > 0 else (_SIDE_NAMES[1], _SIDE_NAMES[0])
    desc = f"type {mtype} of {size} at {price} on the {side}"
    if code == _PAIR_OTHER_SIDE:
        return f"{desc}: the {other} changed, but the message is on the {side}"
    if code == _PAIR_SEEN:
        return f"{desc}: the price is inside the top {levels} {side} levels on one row and beyond them on the other"
    if code == _PAIR_SIZE:
        delta = size if mtype == TYPE_SUBMIT else -size
        return f"{desc}: size there {q0} -> {q1}, the message says {delta:+d}"
    return f"{desc}: other {side} levels changed"


def _events(
    ts: np.ndarray, msg: np.ndarray, px: np.ndarray, sz: np.ndarray, nlev: np.ndarray
) -> tuple[tuple[np.ndarray, ...], int]:
    """Return the event columns (ts_event, kind, side, price, size, flags, order_id) and the unchanged-row count."""
    mtype, oid, direction, mprice, msize = (np.ascontiguousarray(msg[:, c]) for c in (0, 1, 4, 3, 2))
    n_events, _ = _emit(ts, mtype, oid, direction, mprice, msize, px, sz, nlev, _empty_out(0), False)
    out = _empty_out(n_events)
    _, unchanged = _emit(ts, mtype, oid, direction, mprice, msize, px, sz, nlev, out, True)
    return out, int(unchanged)


def _empty_out(n: int) -> tuple[np.ndarray, ...]:
    return (
        np.empty(n, dtype=np.int64),
        np.empty(n, dtype=np.uint8),
        np.empty(n, dtype=np.int8),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.float64),
        np.empty(n, dtype=np.uint8),
        np.empty(n, dtype=np.int64),
    )


@njit(cache=True)
def _put(out, at, write, ts, kind, side, price, size, flags, oid):
    # In the counting pass (write False) only the position advances.
    if write:
        out[0][at] = ts
        out[1][at] = kind
        out[2][at] = side
        out[3][at] = price
        out[4][at] = size
        out[5][at] = flags
        out[6][at] = oid
    return at + 1


@njit(cache=True)
def _trade(out, at, write, ts, mtype, oid, direction, mprice, msize):
    if mtype == TYPE_EXECUTE_VISIBLE or mtype == TYPE_EXECUTE_HIDDEN:
        # direction is the resting order's side; the aggressor is the other one.
        return _put(out, at, write, ts, KIND_TRADE, -direction, mprice / PRICE_SCALE, float(msize), 0, oid)
    if mtype == TYPE_CROSS:
        return _put(out, at, write, ts, KIND_TRADE, 0, mprice / PRICE_SCALE, float(msize), 0, ORDER_ID_UNKNOWN)
    return at


@njit(cache=True)
def _snapshot(out, at, write, ts, px, sz, nlev):
    # Row 0 has no predecessor to diff against, so it is stated in full after a clear.
    at = _put(out, at, write, ts, KIND_CLEAR, 0, 0.0, 0.0, FLAG_SNAPSHOT, ORDER_ID_UNKNOWN)
    for s in range(2):
        side = 1 if s == 0 else -1
        for j in range(nlev[0, s]):
            p = px[0, s, j] / PRICE_SCALE
            at = _put(out, at, write, ts, KIND_BOOK, side, p, float(sz[0, s, j]), FLAG_SNAPSHOT, ORDER_ID_UNKNOWN)
    return at


@njit(cache=True)
def _diff_side(out, at, write, ts, px, sz, nlev, k, s, deletes, oid, oid_s, oid_px):
    # Rows k-1 and k of side s are both best-first, so one merge pass pairs equal prices; the
    # pass emits either the deletions or the sets so that the caller can order them. The event at
    # the message's own price and side (row oid_s, file price oid_px) carries its order id.
    side = 1 if s == 0 else -1
    mine = oid if s == oid_s else ORDER_ID_UNKNOWN
    n_prev = nlev[k - 1, s]
    n_cur = nlev[k, s]
    i = 0
    j = 0
    while i < n_prev or j < n_cur:
        prev_better = j == n_cur or (i < n_prev and side * px[k - 1, s, i] > side * px[k, s, j])
        if prev_better:
            if deletes:
                p = px[k - 1, s, i]
                o = mine if p == oid_px else ORDER_ID_UNKNOWN
                at = _put(out, at, write, ts, KIND_BOOK, side, p / PRICE_SCALE, 0.0, 0, o)
            i += 1
        elif i == n_prev or px[k, s, j] != px[k - 1, s, i]:
            if not deletes:
                p = px[k, s, j]
                o = mine if p == oid_px else ORDER_ID_UNKNOWN
                at = _put(out, at, write, ts, KIND_BOOK, side, p / PRICE_SCALE, float(sz[k, s, j]), 0, o)
            j += 1
        else:
            if not deletes and sz[k, s, j] != sz[k - 1, s, i]:
                p = px[k, s, j]
                o = mine if p == oid_px else ORDER_ID_UNKNOWN
                at = _put(out, at, write, ts, KIND_BOOK, side, p / PRICE_SCALE, float(sz[k, s, j]), 0, o)
            i += 1
            j += 1
    return at


@njit(cache=True)
def _emit(ts, mtype, oid, direction, mprice, msize, px, sz, nlev, out, write):
    """Emit the events of every row into ``out``; return (events, rows after the first with none).

    Run once with ``write=False`` to size ``out``, then with ``write=True`` to fill it.
    """
    at = 0
    unchanged = 0
    for k in range(ts.shape[0]):
        start = at
        at = _trade(out, at, write, ts[k], mtype[k], oid[k], direction[k], mprice[k], msize[k])
        if k == 0:
            at = _snapshot(out, at, write, ts[0], px, sz, nlev)
        else:
            # Only types 1-4 change a level of their own; a cross or halt has no order there.
            own = mtype[k] <= TYPE_EXECUTE_VISIBLE
            oid_k = oid[k] if own else ORDER_ID_UNKNOWN
            oid_s = 0 if direction[k] > 0 else 1
            for deletes in (True, False):
                for s in range(2):
                    at = _diff_side(out, at, write, ts[k], px, sz, nlev, k, s, deletes, oid_k, oid_s, mprice[k])
        if at == start:
            unchanged += 1
        elif write:
            out[5][at - 1] |= FLAG_LAST_IN_MESSAGE
    return at, unchanged
