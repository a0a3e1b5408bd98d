"""Tick files: the Parquet schema every importer writes and everything downstream reads (versions 1 and 2).

One row per market event, sorted by ``ts_event``, one instrument per file (DESIGN.md, "Tick files").
Version 1 (market-by-price, L2) has the seven columns below; version 2 adds one column for
market-by-order (L3) data, ``order_id``, and is otherwise identical.

========== ======= ==========================================================================
column     dtype   meaning
========== ======= ==========================================================================
ts_event   int64   exchange event time, ns since the Unix epoch, UTC
ts_recv    int64   local receive time, ns since the epoch (equals ``ts_event`` when unknown)
kind       uint8   0 = book level update, 1 = trade, 2 = book clear (a snapshot follows)
side       int8    book: +1 bid, -1 ask; trade: aggressor +1 buy, -1 sell (0 = no aggressor)
price      float64 price in quote currency
size       float64 book: new total size at the level (0 deletes it); trade: traded quantity
flags      uint8   bit 0: part of a snapshot; bit 1: last event of an exchange message
order_id   int64   (version 2 only) the venue's id of the order this event belongs to: on a book event
                   the order whose submission, cancel or execution changed the level; on a trade the
                   resting order executed; ``ORDER_ID_UNKNOWN`` (-1) where no single order is known
                   (snapshots, clears, a level entering or leaving a depth-limited view)
========== ======= ==========================================================================

Key-value metadata: ``scalper.schema`` (``1``, or ``2`` exactly when the ``order_id`` column is there),
``venue``, ``symbol``, ``tick_size``, ``lot_size``, ``source``. A version-1 file reads with
``TickData.order_id = None``; a version-2 file without its ``order_id`` column is refused.
"""

from __future__ import annotations

import functools
import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

SCHEMA_VERSION = 1
"""Version of a file without order ids (market-by-price)."""
SCHEMA_VERSION_MBO = 2
"""Version of a file with the ``order_id`` column (market-by-order)."""
SCHEMA_VERSIONS = (SCHEMA_VERSION, SCHEMA_VERSION_MBO)
ORDER_ID_COLUMN = "order_id"
ORDER_ID_DTYPE = np.dtype(np.int64)
ORDER_ID_UNKNOWN = -1
"""``order_id`` of an event that belongs to no single known order."""

KIND_BOOK = 0
KIND_TRADE = 1
KIND_CLEAR = 2

FLAG_SNAPSHOT = 1
FLAG_LAST_IN_MESSAGE = 2

COLUMNS: dict[str, np.dtype] = {
    "ts_event": np.dtype(np.int64),
    "ts_recv": np.dtype(np.int64),
    "kind": np.dtype(np.uint8),
    "side": np.dtype(np.int8),
    "price": np.dtype(np.float64),
    "size": np.dtype(np.float64),
    "flags": np.dtype(np.uint8),
}

ARROW_SCHEMA = pa.schema([(name, pa.from_numpy_dtype(dt)) for name, dt in COLUMNS.items()])
ARROW_SCHEMA_MBO = ARROW_SCHEMA.append(pa.field(ORDER_ID_COLUMN, pa.from_numpy_dtype(ORDER_ID_DTYPE)))

REQUIRED_METADATA = ("venue", "symbol", "tick_size", "lot_size", "source")


class TickFileError(ValueError):
    """A tick file (or the arrays meant for one) breaks the schema; the message names the file and the reason."""


@dataclass(frozen=True)
class Instrument:
    """Static description of the instrument of one tick file.

    Attributes
    ----------
    venue, symbol : str
        Venue name (``"NASDAQ"``, ``"BINANCE_USDM"``) and the venue's symbol.
    tick_size : float
        Minimum price increment, quote currency.
    lot_size : float
        Minimum size increment, base units (shares, coins, contracts).
    source : str
        Where the events came from (importer and original file name).
    """

    venue: str
    symbol: str
    tick_size: float
    lot_size: float
    source: str

    def price_to_ticks(self, price: np.ndarray) -> np.ndarray:
        """Return ``price`` (float64, quote currency) as int64 ticks, rounded to the nearest tick."""
        return np.rint(np.asarray(price, dtype=np.float64) / self.tick_size).astype(np.int64)


@dataclass(frozen=True)
class TickData:
    """The columns of one tick file as numpy arrays (all of length ``n``), plus its instrument.

    ``order_id`` is int64[n] for market-by-order data (schema version 2; ``ORDER_ID_UNKNOWN`` where no
    single order is known) and ``None`` for version 1.
    """

    instrument: Instrument
    ts_event: np.ndarray
    ts_recv: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price: np.ndarray
    size: np.ndarray
    flags: np.ndarray
    order_id: np.ndarray | None = None

    @property
    def schema_version(self) -> int:
        """The schema version these columns are written as: 2 with order ids, else 1."""
        return SCHEMA_VERSION if self.order_id is None else SCHEMA_VERSION_MBO

    def __len__(self) -> int:
        return int(self.ts_event.shape[0])

    @functools.cached_property
    def price_tick(self) -> np.ndarray:
        """int64[n]: prices in ticks of ``instrument.tick_size`` (computed on first use, then kept)."""
        return self.instrument.price_to_ticks(self.price)

    def kernel_columns(self) -> tuple[np.ndarray, ...]:
        """Return ``(ts_event, kind, side, price_tick, size, flags)``: the columns the feature kernels take,
        in order."""
        return (self.ts_event, self.kind, self.side, self.price_tick, self.size, self.flags)

    def columns(self) -> dict[str, np.ndarray]:
        """Return the file's columns by name, in file order (with ``order_id`` for version 2)."""
        cols = {name: getattr(self, name) for name in COLUMNS}
        if self.order_id is not None:
            cols[ORDER_ID_COLUMN] = self.order_id
        return cols


def validate(data: TickData, where: str = "<arrays>") -> None:
    """Check dtypes, lengths, value domains and ordering of ``data``.

    Raises
    ------
    TickFileError
        Naming ``where``, the first offending row and the reason.
    """
    n = len(data)
    for name, dtype in COLUMNS.items():
        col = getattr(data, name)
        if col.dtype != dtype:
            raise TickFileError(f"{where}: column {name!r} has dtype {col.dtype}, schema v1 needs {dtype}")
        if col.shape != (n,):
            raise TickFileError(f"{where}: column {name!r} has shape {col.shape}, expected ({n},)")
    if data.order_id is not None:
        _validate_order_id(data.order_id, n, where)
    if n == 0:
        return
    back = np.flatnonzero(np.diff(data.ts_event) < 0)
    if back.size:
        r = int(back[0]) + 1
        raise TickFileError(f"{where}: row {r}: ts_event goes backwards ({data.ts_event[r - 1]} -> {data.ts_event[r]})")
    bad = np.flatnonzero(data.kind > KIND_CLEAR)
    if bad.size:
        raise TickFileError(f"{where}: row {int(bad[0])}: unknown kind {int(data.kind[bad[0]])}")
    book = data.kind == KIND_BOOK
    bad = np.flatnonzero(book & (np.abs(data.side) != 1))
    if bad.size:
        raise TickFileError(f"{where}: row {int(bad[0])}: book event needs side +1 or -1, got {int(data.side[bad[0]])}")
    bad = np.flatnonzero(~np.isfinite(data.price) | ~np.isfinite(data.size) | (data.size < 0))
    if bad.size:
        r = int(bad[0])
        raise TickFileError(f"{where}: row {r}: price {data.price[r]} / size {data.size[r]} must be finite, size >= 0")
    bad = np.flatnonzero((data.kind != KIND_CLEAR) & (data.price <= 0))
    if bad.size:
        raise TickFileError(f"{where}: row {int(bad[0])}: price must be > 0, got {data.price[bad[0]]}")
    trade = data.kind == KIND_TRADE
    bad = np.flatnonzero(trade & ((np.abs(data.side) > 1) | (data.size <= 0)))
    if bad.size:
        r = int(bad[0])
        raise TickFileError(
            f"{where}: row {r}: trade needs side -1, 0 or +1 and size > 0"
            f", got side {int(data.side[r])}, size {data.size[r]}"
        )
    bad = np.flatnonzero(data.flags & ~np.uint8(FLAG_SNAPSHOT | FLAG_LAST_IN_MESSAGE))
    if bad.size:
        raise TickFileError(f"{where}: row {int(bad[0])}: unknown flag bits in {int(data.flags[bad[0]])}")
    # Book prices must sit on the tick grid: rounding an off-grid price could merge two levels.
    # Trades may print between ticks (midpoint and hidden executions).
    units = data.price / data.instrument.tick_size
    bad = np.flatnonzero(book & (np.abs(units - np.rint(units)) > 1e-6))
    if bad.size:
        r = int(bad[0])
        raise TickFileError(
            f"{where}: row {r}: book price {data.price[r]} is not a multiple of tick size {data.instrument.tick_size}"
        )


def _validate_order_id(order_id: np.ndarray, n: int, where: str) -> None:
    if order_id.dtype != ORDER_ID_DTYPE:
        raise TickFileError(
            f"{where}: column {ORDER_ID_COLUMN!r} has dtype {order_id.dtype}, schema v2 needs {ORDER_ID_DTYPE}"
        )
    if order_id.shape != (n,):
        raise TickFileError(f"{where}: column {ORDER_ID_COLUMN!r} has shape {order_id.shape}, expected ({n},)")
    bad = np.flatnonzero(order_id < ORDER_ID_UNKNOWN)
    if bad.size:
        r = int(bad[0])
        raise TickFileError(
            f"{where}: row {r}: order_id {int(order_id[r])} is negative (only {ORDER_ID_UNKNOWN} = unknown is allowed)"
        )


def write(path: str | Path, data: TickData) -> None:
    """Validate ``data`` and write it as a tick file (zstd-compressed Parquet): schema version 2 when it has
    order ids, else version 1.

    Raises
    ------
    TickFileError
        If ``data`` breaks the schema (see :func:`validate`).
    """
    path = Path(path)
    validate(data, str(path))
    inst = data.instrument
    meta = {
        "scalper.schema": str(data.schema_version),
        "venue": inst.venue,
        "symbol": inst.symbol,
        "tick_size": repr(float(inst.tick_size)),
        "lot_size": repr(float(inst.lot_size)),
        "source": inst.source,
    }
    schema = ARROW_SCHEMA if data.order_id is None else ARROW_SCHEMA_MBO
    table = pa.Table.from_arrays([pa.array(col) for col in data.columns().values()], schema=schema)
    table = table.replace_schema_metadata(meta)
    path.parent.mkdir(parents=True, exist_ok=True)
    pq.write_table(table, path, compression="zstd")


def _metadata(path: Path) -> dict[str, str]:
    try:
        meta = pq.read_schema(path).metadata or {}
    except (OSError, pa.ArrowInvalid) as exc:
        raise TickFileError(f"{path}: not a readable Parquet file ({exc})") from exc
    meta = {k.decode(): v.decode() for k, v in meta.items()}
    if meta.get("scalper.schema") not in {str(v) for v in SCHEMA_VERSIONS}:
        raise TickFileError(
            f"{path}: metadata scalper.schema={meta.get('scalper.schema')!r}, need one of "
            + ", ".join(str(v) for v in SCHEMA_VERSIONS)
        )
    return meta


def read_schema_version(path: str | Path) -> int:
    """Return the schema version (1 or 2) the tick file at ``path`` says it has.

    Raises
    ------
    TickFileError
        If the file is not a tick file of a known version.
    """
    return int(_metadata(Path(path))["scalper.schema"])


def read_instrument(path: str | Path) -> Instrument:
    """Return the instrument stored in the metadata of the tick file at ``path``.

    Raises
    ------
    TickFileError
        If the file is not a tick file of a known schema version or lacks a metadata key.
    """
    path = Path(path)
    meta = _metadata(path)
    missing = [k for k in REQUIRED_METADATA if k not in meta]
    if missing:
        raise TickFileError(f"{path}: metadata lacks {', '.join(missing)}")
    return Instrument(
        venue=meta["venue"],
        symbol=meta["symbol"],
        tick_size=float(meta["tick_size"]),
        lot_size=float(meta["lot_size"]),
        source=meta["source"],
    )


def read(path: str | Path) -> TickData:
    """Read and validate a tick file of schema version 1 or 2.

    Returns
    -------
    TickData
        Columns as contiguous numpy arrays with the dtypes of :data:`COLUMNS`; ``order_id`` int64 for a
        version-2 file, ``None`` for version 1.

    Raises
    ------
    TickFileError
        On a missing column (``order_id`` in a version-2 file included), a wrong dtype, unsorted
        ``ts_event`` or bad metadata, naming the file.
    """
    path = Path(path)
    inst = read_instrument(path)
    version = read_schema_version(path)
    table = pq.read_table(path)
    names = [*COLUMNS, ORDER_ID_COLUMN] if version == SCHEMA_VERSION_MBO else list(COLUMNS)
    missing = [c for c in names if c not in table.column_names]
    if missing:
        raise TickFileError(f"{path}: schema version {version} needs column(s) {', '.join(missing)}, missing")
    cols = {}
    for name in names:
        arr = table.column(name).to_numpy()
        cols[name] = np.ascontiguousarray(arr)
    data = TickData(instrument=inst, **cols)
    validate(data, str(path))
    return data


def file_sha256(path: str | Path) -> str:
    """Return the hex sha256 of the file at ``path`` (model cards record the training data by it)."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()
