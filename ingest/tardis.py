"""Tardis.dev CSV importer: ``incremental_book_L2`` and ``trades`` files -> schema-v1 tick data.

Tardis.dev exports each day of an exchange's real-time feed as CSV ("Downloadable CSV files",
https://docs.tardis.dev/downloadable-csv-files, "Data types"). Both kinds read here have one
header line and comma-separated unquoted fields, and come as plain or gzip-compressed text
(``.gz``, as Tardis serves them). Both timestamps must be non-decreasing down each file, since
the tick file is sorted by ``ts_event`` and messages are told apart by ``local_timestamp``:

* ``incremental_book_L2``: ``exchange,symbol,timestamp,local_timestamp,is_snapshot,side,price,amount``.
  ``timestamp`` is the exchange's time and ``local_timestamp`` Tardis's receive time, both in
  µs since the Unix epoch, UTC; ``is_snapshot`` is ``true`` or ``false``; ``side`` is ``bid`` or
  ``ask``; ``amount`` is the new total size at ``price`` (0 removes the level).
* ``trades``: ``exchange,symbol,timestamp,local_timestamp,id,side,price,amount``. ``side`` is the
  aggressor, ``buy`` or ``sell``, or ``unknown`` where the exchange does not say (schema side 0);
  ``amount`` is the traded quantity. ``id`` is not used.

Book rows become events by Tardis's reconstruction rules (Tardis.dev FAQ, "Data",
https://docs.tardis.dev/faq/data, on reconstructing the book from ``incremental_book_L2``):

* Rows sharing one ``local_timestamp`` came in one exchange message; only after its last row is
  the book consistent, so that row's event carries ``FLAG_LAST_IN_MESSAGE``.
* A run of ``is_snapshot=true`` rows that opens the file or follows non-snapshot rows is a new
  snapshot (start of day or reconnect): a ``KIND_CLEAR`` event (side 0, price 0, size 0, the
  time of the run's first row) comes first and every event of the run has ``FLAG_SNAPSHOT``.
  Snapshot rows spread over several messages are one snapshot.
* Book rows before the first snapshot (a file cut out of a day) pass through unchanged; the book
  they describe is incomplete and :attr:`TardisImport.rows_before_snapshot` counts them.

Every trade is one message (``FLAG_LAST_IN_MESSAGE``). Book and trade events are merged by
``(ts_event, ts_recv)`` with a stable sort, book events first on a full tie, so each file keeps
its own row order. ``ts_event`` is ``timestamp`` and ``ts_recv`` is ``local_timestamp``, µs -> ns.

Tardis CSVs do not carry the instrument's tick and lot size, so the caller passes them (from the
exchange's instrument metadata; Deribit BTC-PERPETUAL: tick 0.5 USD, lot 10 USD contracts).
"""

from __future__ import annotations

import gzip
import io
import math
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import polars as pl

from scalper.ingest.tickfile import (
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    KIND_TRADE,
    Instrument,
    TickData,
    validate,
)

BOOK_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "is_snapshot", "side", "price", "amount")
TRADE_COLUMNS = ("exchange", "symbol", "timestamp", "local_timestamp", "id", "side", "price", "amount")
BOOK_SIDES = {"bid": 1, "ask": -1}
TRADE_SIDES = {"buy": 1, "sell": -1, "unknown": 0}
IS_SNAPSHOT = {"true": 1, "false": 0}

# Skip-reason keys of TardisImport.skipped.
FIELD_COUNT = "field count"
NOT_UTF8 = "not UTF-8"
EMPTY_FIELD = "empty field"
BAD_NUMBER = "bad number"
BAD_IS_SNAPSHOT = "bad is_snapshot"
UNKNOWN_SIDE = "unknown side"
NON_POSITIVE_PRICE = "non-positive price"
NEGATIVE_AMOUNT = "negative amount"
NON_POSITIVE_AMOUNT = "non-positive amount"
OFF_TICK_GRID = "off tick grid"
MIXED_SYMBOLS = "mixed symbols"
TIME_BACKWARDS = "time backwards"

GRID_TOLERANCE_TICKS = 1e-6
_MAX_TICKS = 2**53
_NS_PER_US = 1_000
_MAX_US = int(np.iinfo(np.int64).max) // _NS_PER_US


class TardisFormatError(ValueError):
    """A Tardis CSV breaks the format; the message names the file, the 1-based line and the reason."""


@dataclass(frozen=True)
class TardisImport:
    """Result of :func:`import_tardis`.

    Attributes
    ----------
    data : TickData
        The merged book and trade events, schema v1, validated.
    book_rows, trade_rows : int
        Rows imported from each file (after skipping bad rows; 0 for a file not given).
    snapshots : int
        Snapshots found in the book file (each emitted one ``KIND_CLEAR``).
    messages : int
        Book messages (runs of rows with one ``local_timestamp``).
    rows_before_snapshot : int
        Book rows imported before the first snapshot (the book is incomplete until then).
    skipped : dict[str, int]
        Rows skipped per reason key (``FIELD_COUNT``, ``BAD_NUMBER``, ...); empty unless ``skip_bad``.
    """

    data: TickData
    book_rows: int
    trade_rows: int
    snapshots: int
    messages: int
    rows_before_snapshot: int
    skipped: dict[str, int]


class _Checks:
    """The bad rows of one file: per reason a mask and a message maker, each row under its first reason."""

    def __init__(self, path: Path, n_rows: int) -> None:
        self.path = path
        self.bad = np.zeros(n_rows, dtype=bool)
        self.reasons: list[tuple[str, np.ndarray, Callable[[int], str]]] = []

    def add(self, key: str, is_bad: np.ndarray, describe: Callable[[int], str]) -> None:
        # A row keeps only its first reason, so the counts add up to the rows skipped.
        is_bad = is_bad & ~self.bad
        self.reasons.append((key, is_bad, describe))
        self.bad |= is_bad

    def raise_first(self) -> None:
        # Body row r is line r + 2 (line 1 is the header).
        if not self.bad.any():
            return
        row = int(np.flatnonzero(self.bad)[0])
        describe = next(d for _, mask, d in self.reasons if mask[row])
        raise _fail(self.path, row + 2, describe(row))

    def counts(self) -> Counter[str]:
        return Counter({key: int(mask.sum()) for key, mask, _ in self.reasons if mask.any()})


@dataclass(frozen=True)
class _Table:
    """One file's rows: raw fields, parsed columns and the checks found so far."""

    path: Path
    fields: pl.DataFrame
    checks: _Checks
    ts: np.ndarray  # int64 µs, exchange time
    local_ts: np.ndarray  # int64 µs, Tardis receive time
    side: np.ndarray  # int8
    price: np.ndarray  # float64, quote currency
    amount: np.ndarray  # float64
    is_snapshot: np.ndarray  # bool; all False for trades


def import_tardis(
    book_csv: str | Path | None,
    trades_csv: str | Path | None,
    tick_size: float,
    lot_size: float,
    skip_bad: bool = False,
) -> TardisImport:
    """Import a Tardis.dev ``incremental_book_L2`` and/or ``trades`` CSV as schema-v1 events.

    See the module docstring for the format and the event rules.

    Parameters
    ----------
    book_csv, trades_csv : str or Path or None
        The two files (``.gz`` is decompressed); at least one. Both must hold one instrument.
    tick_size : float
        Price increment, quote currency. Required because Tardis CSVs do not carry it; every book
        price must be a multiple of it (within ``GRID_TOLERANCE_TICKS``). Trade prices are not
        checked: a trade can print between ticks (block, midpoint or combo-leg trades).
    lot_size : float
        Size increment in the venue's size unit (base currency or contracts); stored as metadata.
    skip_bad : bool
        Skip bad rows and count them in :attr:`TardisImport.skipped` instead of raising.

    Returns
    -------
    TardisImport
        ``data`` has int64 ``ts_event``/``ts_recv`` in ns since the epoch, UTC, prices in quote
        currency and the instrument venue = ``exchange`` upper-cased, symbol = ``symbol``,
        source ``"tardis:<book file name>,<trades file name>"`` (names of the files given).

    Raises
    ------
    TardisFormatError
        Always for an empty file, a wrong header, or no valid row at all. Unless ``skip_bad``,
        for the first bad row, naming file, 1-based line and reason: wrong field count, text that
        is not UTF-8, empty exchange or symbol, a timestamp that is not an integer count of µs, a
        price or amount that is not a finite number, ``is_snapshot`` not ``true``/``false``, an
        unknown side, a non-positive price, a negative book amount, a non-positive trade amount,
        a book price off the tick grid, an exchange or symbol unlike the first valid row's
        (book file first), or a ``timestamp`` or ``local_timestamp`` before an earlier row's.
    ValueError
        If neither file is given, or ``tick_size``/``lot_size`` is not a positive finite number.
    """
    if book_csv is None and trades_csv is None:
        raise ValueError("pass book_csv, trades_csv or both")
    _check_step("tick_size", tick_size)
    _check_step("lot_size", lot_size)
    book = _read_book(Path(book_csv), tick_size) if book_csv is not None else None
    trades = _read_trades(Path(trades_csv)) if trades_csv is not None else None
    tables = [t for t in (book, trades) if t is not None]

    exchange, symbol = _check_instrument(tables)
    for table in tables:
        _check_forward(table)
    skipped: Counter[str] = Counter()
    for table in tables:
        if not skip_bad:
            table.checks.raise_first()
        skipped += table.checks.counts()

    parts = []
    snapshots = messages = before = 0
    if book is not None:
        events, snapshots, messages, before = _book_events(book)
        parts.append(events)
    if trades is not None:
        parts.append(_trade_events(trades))
    source = "tardis:" + ",".join(t.path.name for t in tables)
    instrument = Instrument(exchange.upper(), symbol, float(tick_size), float(lot_size), source)
    data = TickData(instrument, *_merge(parts))
    validate(data, source)
    return TardisImport(
        data=data,
        book_rows=_kept(book),
        trade_rows=_kept(trades),
        snapshots=snapshots,
        messages=messages,
        rows_before_snapshot=before,
        skipped=dict(skipped),
    )


def _fail(path: Path, line: int, reason: str) -> TardisFormatError:
    return TardisFormatError(f"{path}: line {line}: {reason}")


def _check_step(name: str, value: float) -> None:
    try:
        is_valid = not isinstance(value, bool) and math.isfinite(value) and value > 0
    except TypeError:
        is_valid = False
    if not is_valid:
        raise ValueError(f"{name} must be a positive finite number, got {value!r}")


def _kept(table: _Table | None) -> int:
    return 0 if table is None else int((~table.checks.bad).sum())


def _read_bytes(path: Path) -> bytes:
    raw = path.read_bytes()
    # The magic bytes too, not only the suffix: polars itself would try to inflate such a file and
    # fail with a bare OSError that names neither the file nor the reason.
    if path.suffix.lower() != ".gz" and raw[:2] != b"\x1f\x8b":
        return raw
    try:
        return gzip.decompress(raw)
    except (OSError, EOFError) as exc:
        raise TardisFormatError(f"{path}: not a readable gzip file ({exc})") from None


def _separator(path: Path, raw: bytes) -> str:
    # Lines are read as a single field, so the "separator" must be a byte the file never holds.
    for code in range(1, 128):
        if code not in (10, 13) and bytes([code]) not in raw:
            return chr(code)
    raise TardisFormatError(f"{path}: not a text file (it holds every ASCII byte)")


def _lines(path: Path) -> pl.Series:
    """Return the file's lines, line k at index k - 1; an empty line is ``""``."""
    raw = _read_bytes(path)
    if not raw:
        raise TardisFormatError(f"{path}: empty file (no header line)")
    # Polars splits lines fast and keeps blank ones; quoting is off because Tardis never quotes,
    # and invalid UTF-8 becomes U+FFFD so that the row, not the whole read, fails.
    frame = pl.read_csv(
        io.BytesIO(raw),
        has_header=False,
        new_columns=["line"],
        separator=_separator(path, raw),
        quote_char=None,
        infer_schema=False,
        encoding="utf8-lossy",
    )
    return frame.to_series().fill_null("")


def _fields(path: Path, columns: tuple[str, ...]) -> tuple[pl.DataFrame, _Checks]:
    """Return the body's fields as string columns named ``columns`` and checks for the field count."""
    lines = _lines(path)
    header = ",".join(columns)
    found = lines[0] if lines.len() else ""
    if found != header:
        raise _fail(path, 1, f"header {found!r} is not {header!r}")
    body = lines.slice(1)
    checks = _Checks(path, body.len())
    counts = (body.str.count_matches(",", literal=True) + 1).to_numpy()
    checks.add(FIELD_COUNT, counts != len(columns), lambda r: f"expected {len(columns)} fields, found {counts[r]}")
    utf8 = body.str.contains("\ufffd", literal=True).to_numpy()
    checks.add(NOT_UTF8, utf8, lambda r: "text is not UTF-8")
    fields = body.str.split_exact(",", len(columns) - 1).struct.rename_fields(list(columns)).struct.unnest()
    empty = (fields["exchange"].fill_null("") == "") | (fields["symbol"].fill_null("") == "")
    checks.add(EMPTY_FIELD, empty.to_numpy(), lambda r: "exchange or symbol is empty")
    return fields, checks


def _timestamp(fields: pl.DataFrame, checks: _Checks, name: str, columns: tuple[str, ...]) -> np.ndarray:
    """Return int64 µs of column ``name``; a non-integer or out-of-range value is bad."""
    text = fields[name]
    values = text.cast(pl.Int64, strict=False).fill_null(-1).to_numpy()
    col = columns.index(name) + 1
    checks.add(
        BAD_NUMBER,
        (values < 0) | (values > _MAX_US),
        lambda r: f"field {col} ({name}) {text[r]!r} is not a timestamp in µs (integer 0 to {_MAX_US})",
    )
    return values


def _number(fields: pl.DataFrame, checks: _Checks, name: str, columns: tuple[str, ...]) -> np.ndarray:
    """Return float64 of column ``name``; text that is not a finite number is bad."""
    text = fields[name]
    values = text.cast(pl.Float64, strict=False).fill_null(np.nan).to_numpy()
    col = columns.index(name) + 1
    checks.add(BAD_NUMBER, ~np.isfinite(values), lambda r: f"field {col} ({name}) {text[r]!r} is not a finite number")
    return values


def _code(
    fields: pl.DataFrame, checks: _Checks, name: str, columns: tuple[str, ...], codes: dict[str, int], key: str
) -> np.ndarray:
    """Return int8 codes of the words in column ``name``; a word not in ``codes`` is bad."""
    text = fields[name]
    expr = pl.lit(None, dtype=pl.Int8)
    for word, code in codes.items():
        expr = pl.when(pl.col(name) == word).then(pl.lit(code, dtype=pl.Int8)).otherwise(expr)
    values = fields.select(expr.alias(name)).to_series()
    col = columns.index(name) + 1
    words = " or ".join(repr(w) for w in codes)
    checks.add(key, values.is_null().to_numpy(), lambda r: f"field {col} ({name}) {text[r]!r} is not {words}")
    return values.fill_null(0).to_numpy().astype(np.int8)


def _read_common(path: Path, columns: tuple[str, ...], sides: dict[str, int]) -> tuple:
    fields, checks = _fields(path, columns)
    ts = _timestamp(fields, checks, "timestamp", columns)
    local_ts = _timestamp(fields, checks, "local_timestamp", columns)
    price = _number(fields, checks, "price", columns)
    amount = _number(fields, checks, "amount", columns)
    side = _code(fields, checks, "side", columns, sides, UNKNOWN_SIDE)
    checks.add(NON_POSITIVE_PRICE, price <= 0, lambda r: f"price {fields['price'][r]} is not positive")
    return fields, checks, ts, local_ts, side, price, amount


def _off_grid(price: np.ndarray, tick_size: float) -> np.ndarray:
    # Beyond 2**53 ticks float64 no longer holds every integer, so such prices cannot be on the grid.
    with np.errstate(over="ignore", invalid="ignore"):
        ticks = price / tick_size
        return ~(np.abs(ticks - np.rint(ticks)) <= GRID_TOLERANCE_TICKS) | ~(ticks <= _MAX_TICKS)


def _read_book(path: Path, tick_size: float) -> _Table:
    fields, checks, ts, local_ts, side, price, amount = _read_common(path, BOOK_COLUMNS, BOOK_SIDES)
    snap = _code(fields, checks, "is_snapshot", BOOK_COLUMNS, IS_SNAPSHOT, BAD_IS_SNAPSHOT).astype(bool)
    checks.add(NEGATIVE_AMOUNT, amount < 0, lambda r: f"amount {fields['amount'][r]} is negative")
    checks.add(
        OFF_TICK_GRID,
        _off_grid(price, tick_size),
        lambda r: f"price {fields['price'][r]} is not a multiple of tick_size {tick_size!r} below {_MAX_TICKS} ticks",
    )
    return _Table(path, fields, checks, ts, local_ts, side, price, amount, snap)


def _read_trades(path: Path) -> _Table:
    fields, checks, ts, local_ts, side, price, amount = _read_common(path, TRADE_COLUMNS, TRADE_SIDES)
    checks.add(NON_POSITIVE_AMOUNT, amount <= 0, lambda r: f"trade amount {fields['amount'][r]} is not positive")
    return _Table(path, fields, checks, ts, local_ts, side, price, amount, np.zeros(ts.shape, dtype=bool))


def _check_instrument(tables: list[_Table]) -> tuple[str, str]:
    """Return (exchange, symbol) of the first valid row and mark rows of another instrument bad.

    Raises
    ------
    TardisFormatError
        If no file has a valid row to take them from.
    """
    ref = next(((t, int(np.flatnonzero(~t.checks.bad)[0])) for t in tables if (~t.checks.bad).any()), None)
    if ref is None:
        names = " and ".join(str(t.path) for t in tables)
        raise TardisFormatError(f"{names}: no valid row to take the exchange and symbol from")
    ref_table, ref_row = ref
    exchange, symbol = ref_table.fields["exchange"][ref_row], ref_table.fields["symbol"][ref_row]
    origin = f"line {ref_row + 2} of {ref_table.path.name}"
    for t in tables:
        ex, sym = t.fields["exchange"], t.fields["symbol"]
        other = ((ex != exchange) | (sym != symbol)).fill_null(False).to_numpy()

        def mixed(r: int, ex=ex, sym=sym) -> str:
            return f"instrument {ex[r]}:{sym[r]} differs from {exchange}:{symbol} ({origin})"

        t.checks.add(MIXED_SYMBOLS, other, mixed)
    return exchange, symbol


def _check_forward(table: _Table) -> None:
    # A row is late when it is before any earlier valid row; comparing with the running maximum
    # (not the previous row) keeps every kept row in order when skip_bad drops rows.
    for name, values in (("timestamp", table.ts), ("local_timestamp", table.local_ts)):
        good = ~table.checks.bad
        running = np.maximum.accumulate(np.where(good, values, np.iinfo(np.int64).min))
        earlier = np.empty_like(running)
        earlier[:1] = np.iinfo(np.int64).min
        earlier[1:] = running[:-1]

        def backwards(r: int, name=name, values=values, earlier=earlier) -> str:
            return f"{name} {values[r]} µs goes backwards (an earlier row has {earlier[r]} µs)"

        table.checks.add(
            TIME_BACKWARDS,
            good & (values < earlier),
            backwards,
        )


def _empty_events(n: int) -> tuple[np.ndarray, ...]:
    return (
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.int64),
        np.zeros(n, dtype=np.uint8),
        np.zeros(n, dtype=np.int8),
        np.zeros(n, dtype=np.float64),
        np.zeros(n, dtype=np.float64),
        np.zeros(n, dtype=np.uint8),
    )


def _book_events(table: _Table) -> tuple[tuple[np.ndarray, ...], int, int, int]:
    """Return the book events (schema columns) and counts: snapshots, messages, rows before the first snapshot."""
    keep = ~table.checks.bad
    ts, local_ts, side, price, size, snap = (
        a[keep] for a in (table.ts, table.local_ts, table.side, table.price, table.amount, table.is_snapshot)
    )
    n = ts.shape[0]
    starts = snap.copy()
    starts[1:] &= ~snap[:-1]
    last = np.ones(n, dtype=bool)
    last[:-1] = local_ts[1:] != local_ts[:-1]

    # Row i moves down by the clears before it and its own; its snapshot's clear takes the slot above.
    at = np.arange(n) + np.cumsum(starts)
    clear_at = at[starts] - 1
    out = _empty_events(n + int(starts.sum()))
    ts_event, ts_recv, kind, out_side, out_price, out_size, flags = out
    ts_event[at], ts_recv[at] = ts * _NS_PER_US, local_ts * _NS_PER_US
    kind[at], out_side[at], out_price[at], out_size[at] = KIND_BOOK, side, price, size
    flags[at] = np.where(snap, FLAG_SNAPSHOT, 0) | np.where(last, FLAG_LAST_IN_MESSAGE, 0)
    ts_event[clear_at], ts_recv[clear_at] = ts[starts] * _NS_PER_US, local_ts[starts] * _NS_PER_US
    kind[clear_at], flags[clear_at] = KIND_CLEAR, FLAG_SNAPSHOT

    first = np.flatnonzero(starts)
    before = int(first[0]) if first.size else n
    return out, int(starts.sum()), int(last.sum()), before


def _trade_events(table: _Table) -> tuple[np.ndarray, ...]:
    keep = ~table.checks.bad
    out = _empty_events(int(keep.sum()))
    ts_event, ts_recv, kind, side, price, size, flags = out
    ts_event[:], ts_recv[:] = table.ts[keep] * _NS_PER_US, table.local_ts[keep] * _NS_PER_US
    kind[:], side[:], price[:], size[:] = KIND_TRADE, table.side[keep], table.price[keep], table.amount[keep]
    flags[:] = FLAG_LAST_IN_MESSAGE
    return out


def _merge(parts: list[tuple[np.ndarray, ...]]) -> tuple[np.ndarray, ...]:
    """Concatenate event columns and sort stably by (ts_event, ts_recv)."""
    cols = [np.concatenate(c) for c in zip(*parts, strict=True)]
    order = np.argsort(cols[1], kind="stable")
    order = order[np.argsort(cols[0][order], kind="stable")]
    return tuple(np.ascontiguousarray(c[order]) for c in cols)
