"""The order/fill/position journal: what the trading daemon writes before it acts, and reads on restart.

The journal format
------------------
A journal is an ordered sequence of records. Each record is one JSON object (orjson) with

* ``seq`` -- int >= 1, strictly increasing within a journal; the :class:`JournalWriter` assigns it
  when the record is queued, so it is also the order in which the engine produced the records;
* ``ts_ns`` -- int, when the engine made the record, ns since the epoch, UTC (event time in a backtest);
* ``type`` -- one of the five below, followed by exactly that type's fields:

``order_intent`` (:class:`IntentRecord`)
    ``order_id`` (the client order id), ``side`` (+1 buy, -1 sell), ``qty`` (base units),
    ``limit_price`` (quote), ``reason``, ``is_exit``. Made durable BEFORE the order is sent.
``order_status`` (:class:`StatusRecord`)
    ``order_id``, ``status`` (an :class:`~scalper.exec.orders.OrderStatus` name such as ``"FILLED"``),
    ``filled_qty`` (base units), ``avg_fill_price`` (quote, 0.0 while nothing is filled).
``fill`` (:class:`FillRecord`)
    ``order_id``, ``fill_ts_ns`` (execution time, ns), ``side``, ``qty``, ``price``, ``fee`` (quote),
    ``is_maker``, ``reason``.
``position`` (:class:`PositionRecord`)
    ``position`` (signed base units), ``avg_entry_price``, ``realized_pnl``, ``fees_paid`` (quote):
    the account right after a fill.
``reconciled`` (:class:`ReconciledRecord`)
    ``order_id``, ``outcome`` (a :class:`ReconcileOutcome` name): how an order left in flight by a
    restart was settled with the venue.

For example ``{"seq":7,"ts_ns":1700000000000000000,"type":"fill","order_id":3,"fill_ts_ns":...,
"side":1,"qty":0.5,"price":101.25,"fee":0.02,"is_maker":false,"reason":"entry"}``. Floats are written
in their shortest round-trip form, so a value read back is bit-identical to the one written.

Where records are kept:

* :class:`FileJournal` -- one record per line (JSON lines, ``\\n``-terminated), append-only,
  flushed and fdatasync'd before the append returns (or at most every N ms, see its docstring).
  Only the last line may be torn by a crash mid-write; it was never durable, so the action it
  announced was never taken, and it is reported and cut off. Any other bad line is corruption.
* :class:`~scalper.exec.journal_redis.RedisJournal` -- a Redis Stream; entry id ``<seq>-0`` (so
  Redis itself refuses a duplicate or out-of-order seq), field ``r`` = the JSON bytes, no MAXLEN.
  The hash ``<key>:snapshot`` holds the latest ``position`` record, one hash field per JSON field
  (value = that field's JSON text), updated in the same MULTI/EXEC as the XADDs.

Rules the daemon keeps so that :func:`scalper.exec.recovery.recover` is right:

1. The engine picks the client order id and uses it in every record of that order (the adapter
   uses it as the order's id, or maps venue ids back to it). Ids are never reused.
2. ``order_intent`` goes through :meth:`JournalWriter.append_durable` and the order is sent only
   after it returns.
3. Every fill is journaled, then a ``position`` record of the account after it.
4. Every status change the adapter reports is journaled (intermediate states may be skipped).
5. After a restart, an order that is in flight with unknown outcome is settled with the venue
   (its fills and status first), then a ``reconciled`` record closes it. It is never assumed rejected.

A restart therefore runs: ``state = recover(await backend.read_all())``; ``await writer.start()``
(seqs continue from the journal's last); settle ``state.open_orders`` through the writer; write a
``position`` record if ``state.fills_after_last_position``; only then trade, with client order ids
from ``state.next_order_id`` on.
"""

from __future__ import annotations

import abc
import asyncio
import enum
import io
import itertools
import logging
import math
import os
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar, NamedTuple

import orjson

from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.risk.accounting import Account
from scalper.risk.intent import OrderIntent

log = logging.getLogger(__name__)


class ReconcileOutcome(enum.Enum):
    """How an order in flight at a restart was settled with the venue."""

    FILLED = "FILLED"
    """Filled in full; its fills are journaled before the ``reconciled`` record."""
    CANCELED = "CANCELED"
    """Canceled, possibly after partial fills (journaled before the ``reconciled`` record)."""
    REJECTED = "REJECTED"
    """Refused by the venue; nothing filled."""
    NOT_FOUND = "NOT_FOUND"
    """The venue never saw it (lost before it arrived); nothing filled."""


class JournalCorrupt(ValueError):
    """A journal breaks the format or its own rules somewhere other than a torn last line.

    Attributes
    ----------
    location : str
        Where: ``"<file>:<line>"``, ``"redis stream <key> entry <id>"`` or ``"seq <n>"``.
    reason : str
        What is wrong there.
    """

    def __init__(self, location: str, reason: str) -> None:
        self.location = location
        self.reason = reason
        super().__init__(f"journal corrupt at {location}: {reason}")


class JournalOverflow(RuntimeError):
    """The writer's buffer is full: the record was NOT journaled, so its action must not be taken."""


def _check_finite(owner: str, name: str, value: float, lower: float | None = None) -> None:
    # NaN and inf would be written by orjson as null and make the journal unreadable, so they are
    # refused where the record is made, while the caller can still decide what to do.
    if not math.isfinite(value) or (lower is not None and value < lower):
        bound = "" if lower is None else f" >= {lower}"
        raise ValueError(f"{owner} {name}={value!r} is not a finite number{bound}")


def _check_order(owner: str, order_id: int, side: int, qty: float, price: float) -> None:
    if order_id < 1:
        raise ValueError(f"{owner} order_id={order_id!r} is not a positive id")
    if side != 1 and side != -1:
        raise ValueError(f"{owner} side={side!r} is not +1 or -1")
    if not (math.isfinite(qty) and qty > 0.0 and math.isfinite(price) and price > 0.0):
        raise ValueError(f"{owner} needs finite qty > 0 and price > 0; got {qty!r}, {price!r}")


@dataclass(frozen=True, slots=True)
class IntentRecord:
    """An order about to be sent (``order_intent``). Units as in :class:`OrderIntent`.

    Raises
    ------
    ValueError
        If ``order_id`` < 1, ``side`` is not +1/-1, or ``qty`` / ``limit_price`` is not finite and > 0.
    """

    TYPE: ClassVar[str] = "order_intent"
    ts_ns: int
    order_id: int
    side: int
    qty: float
    limit_price: float
    reason: str
    is_exit: bool

    def __post_init__(self) -> None:
        _check_order("order_intent", self.order_id, self.side, self.qty, self.limit_price)

    @classmethod
    def from_intent(cls, ts_ns: int, order_id: int, intent: OrderIntent) -> IntentRecord:
        """Return the record of ``intent`` sent as client order ``order_id``, made at ``ts_ns`` (ns)."""
        return cls(
            ts_ns, order_id, intent.side, intent.qty, intent.limit_price, intent.reason, intent.is_exit
        )


@dataclass(frozen=True, slots=True)
class StatusRecord:
    """An order's new status (``order_status``); quantities in base units, price in quote.

    Raises
    ------
    ValueError
        If ``filled_qty`` or ``avg_fill_price`` is negative or not finite.
    """

    TYPE: ClassVar[str] = "order_status"
    ts_ns: int
    order_id: int
    status: OrderStatus
    filled_qty: float
    avg_fill_price: float

    def __post_init__(self) -> None:
        _check_finite("order_status", "filled_qty", self.filled_qty, 0.0)
        _check_finite("order_status", "avg_fill_price", self.avg_fill_price, 0.0)

    @classmethod
    def from_order(cls, ts_ns: int, order: Order) -> StatusRecord:
        """Return the record of ``order``'s current status, made at ``ts_ns`` (ns)."""
        return cls(ts_ns, order.order_id, order.status, order.filled_qty, order.avg_fill_price)


@dataclass(frozen=True, slots=True)
class FillRecord:
    """One execution (``fill``); units as in :class:`~scalper.exec.orders.Fill`.

    Raises
    ------
    ValueError
        If ``side`` is not +1/-1, ``qty`` / ``price`` is not finite and > 0, or ``fee`` is not finite.
    """

    TYPE: ClassVar[str] = "fill"
    ts_ns: int
    order_id: int
    fill_ts_ns: int
    side: int
    qty: float
    price: float
    fee: float
    is_maker: bool
    reason: str

    def __post_init__(self) -> None:
        _check_order("fill", self.order_id, self.side, self.qty, self.price)
        _check_finite("fill", "fee", self.fee)

    @classmethod
    def from_fill(cls, ts_ns: int, fill: Fill) -> FillRecord:
        """Return the record of ``fill``, made at ``ts_ns`` (ns)."""
        return cls(
            ts_ns, fill.order_id, fill.ts_ns, fill.side, fill.qty, fill.price, fill.fee,
            fill.is_maker, fill.reason,
        )


@dataclass(frozen=True, slots=True)
class PositionRecord:
    """The account after a fill (``position``): signed base units and quote amounts.

    Raises
    ------
    ValueError
        If a value is not finite.
    """

    TYPE: ClassVar[str] = "position"
    ts_ns: int
    position: float
    avg_entry_price: float
    realized_pnl: float
    fees_paid: float

    def __post_init__(self) -> None:
        for name in ("position", "avg_entry_price", "realized_pnl", "fees_paid"):
            _check_finite("position", name, getattr(self, name))

    @classmethod
    def from_account(cls, ts_ns: int, account: Account) -> PositionRecord:
        """Return the record of ``account``'s position and PnL, made at ``ts_ns`` (ns)."""
        return cls(
            ts_ns, account.position, account.avg_entry_price, account.realized_pnl, account.fees_paid
        )


@dataclass(frozen=True, slots=True)
class ReconciledRecord:
    """How an order in flight at a restart was settled (``reconciled``)."""

    TYPE: ClassVar[str] = "reconciled"
    ts_ns: int
    order_id: int
    outcome: ReconcileOutcome


Record = IntentRecord | StatusRecord | FillRecord | PositionRecord | ReconciledRecord


class JournalEntry(NamedTuple):
    """A record and its place in the journal (``seq`` >= 1)."""

    seq: int
    record: Record


_RECORD_TYPES = {
    cls.TYPE: cls
    for cls in (IntentRecord, StatusRecord, FillRecord, PositionRecord, ReconciledRecord)
}
# Field kinds come from the dataclass annotations (strings under postponed evaluation), so the codec
# cannot drift from the record definitions.
_SCHEMAS = {cls: tuple((f.name, f.type) for f in fields(cls)) for cls in _RECORD_TYPES.values()}
_ENUMS = {"OrderStatus": OrderStatus, "ReconcileOutcome": ReconcileOutcome}


def to_object(entry: JournalEntry) -> dict:
    """Return ``entry`` as the JSON object of the journal format (enums as their names)."""
    record = entry.record
    obj = {"seq": entry.seq, "ts_ns": record.ts_ns, "type": record.TYPE}
    for name, kind in _SCHEMAS[type(record)]:
        value = getattr(record, name)
        obj[name] = value.name if kind in _ENUMS else value
    return obj


def encode(entry: JournalEntry) -> bytes:
    """Return ``entry`` as one JSON object (UTF-8 bytes, no line end)."""
    return orjson.dumps(to_object(entry), option=orjson.OPT_SERIALIZE_NUMPY)


def _field(kind: str, name: str, value):
    if kind in _ENUMS:
        try:
            return _ENUMS[kind][value]
        except (KeyError, TypeError):
            raise ValueError(f"field {name}={value!r} is not a {kind} name") from None
    is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if kind == "float" and is_number:
        return float(value)
    if (
        (kind == "int" and is_number and isinstance(value, int))
        or (kind == "bool" and isinstance(value, bool))
        or (kind == "str" and isinstance(value, str))
    ):
        return value
    raise ValueError(f"field {name}={value!r} is not a {kind}")


def from_object(obj) -> JournalEntry:
    """Return the entry a decoded JSON object describes.

    Raises
    ------
    ValueError
        If ``obj`` is not an object of a known ``type`` with a positive int ``seq`` and exactly that
        type's fields, each of the right JSON type and in range.
    """
    if not isinstance(obj, dict):
        raise ValueError(f"a record is a JSON object, got {type(obj).__name__}")
    cls = _RECORD_TYPES.get(obj.get("type"))
    if cls is None:
        raise ValueError(f"unknown record type {obj.get('type')!r}")
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"seq={seq!r} is not a positive integer")
    schema = _SCHEMAS[cls]
    expected = {"seq", "type"} | {name for name, _ in schema}
    if obj.keys() != expected:
        raise ValueError(
            f"{cls.TYPE} record: missing {sorted(expected - obj.keys())},"
            f" unknown {sorted(obj.keys() - expected)}"
        )
    return JournalEntry(seq, cls(*(_field(kind, name, obj[name]) for name, kind in schema)))


def decode(data: bytes) -> JournalEntry:
    """Return the entry encoded in ``data`` (one JSON object, surrounding whitespace allowed).

    Raises
    ------
    ValueError
        If ``data`` is not valid JSON or not a valid record (see :func:`from_object`).
    """
    return from_object(orjson.loads(data))


class JournalBackend(abc.ABC):
    """Where a :class:`JournalWriter` puts records. Not safe for concurrent appends; one writer owns it.

    Attributes
    ----------
    durable_seq : int
        Highest seq known to be durable (0 before anything is).
    """

    durable_seq: int

    @abc.abstractmethod
    async def append(self, entries: Sequence[JournalEntry]) -> None:
        """Store ``entries`` (seq increasing, all above :meth:`last_seq`) after the ones stored.

        When this raises, a prefix of ``entries`` may be stored; :meth:`last_seq` says how much.
        """

    @abc.abstractmethod
    async def sync(self) -> None:
        """Make everything appended durable and raise :attr:`durable_seq` to it."""

    @abc.abstractmethod
    async def last_seq(self) -> int:
        """Return the seq of the last stored entry (0 when empty)."""

    @abc.abstractmethod
    async def read_all(self) -> list[JournalEntry]:
        """Return every stored entry in seq order.

        Raises
        ------
        JournalCorrupt
            If an entry cannot be decoded or seqs do not increase.
        """

    @abc.abstractmethod
    async def close(self) -> None:
        """Make what was appended durable and release the backend's resources."""


@dataclass(frozen=True, slots=True)
class TornTail:
    """A last line cut by a crash mid-write: never durable, so its action was never taken."""

    line_no: int
    data: bytes
    reason: str


def _datasync(fd: int) -> None:
    # fdatasync is enough for an append (it flushes the new size); macOS only has fsync.
    getattr(os, "fdatasync", os.fsync)(fd)


class FileJournal(JournalBackend):
    """Append-only JSON-lines journal on the local file system.

    Each :meth:`append` writes its records with one ``write`` and, by default, fdatasyncs before it
    returns. With ``fsync_interval_ms`` > 0 it fdatasyncs only when that long has passed since the
    last one (group commit under load); :meth:`sync` forces it and :attr:`durable_seq` tells which
    records are durable. A failed write or sync cuts the file back to its last durable size, so a
    retry never leaves a half line in the middle of the journal.

    A torn last line (see :class:`TornTail`) is reported in :attr:`torn_tail` and logged by
    :meth:`read_all` / :meth:`last_seq`, and cut off before the first append. File work runs in a
    worker thread so the event loop never waits on the disk.

    Parameters
    ----------
    path : str or Path
        The journal file; created (with its directory entry synced) on the first append.
    fsync_interval_ms : float
        0 to fdatasync on every append, else the longest time an appended record may stay
        unsynced while more records keep arriving, ms.

    Raises
    ------
    ValueError
        If ``fsync_interval_ms`` is negative.
    """

    def __init__(self, path: str | os.PathLike, fsync_interval_ms: float = 0.0) -> None:
        if not fsync_interval_ms >= 0.0:
            raise ValueError(f"fsync_interval_ms={fsync_interval_ms!r} must be >= 0")
        self.path = Path(path)
        self.torn_tail: TornTail | None = None
        self.durable_seq = 0
        self._interval_ns = int(fsync_interval_ms * 1e6)
        self._lock = threading.Lock()
        self._fd: int | None = None
        self._scanned = False
        self._size = 0  # bytes of whole, valid lines: where the next record goes
        self._last_seq = 0
        self._durable_size = 0
        self._last_sync_ns = 0

    async def append(self, entries: Sequence[JournalEntry]) -> None:
        """Write ``entries`` as lines; fdatasync them unless the interval says not yet.

        Raises
        ------
        ValueError
            If seqs do not increase from :meth:`last_seq`.
        OSError
            If writing or syncing fails; the file is cut back to its last durable size.
        """
        await asyncio.to_thread(self._append, entries)

    async def sync(self) -> None:
        """fdatasync what was appended.

        Raises
        ------
        OSError
            If syncing fails; the file is cut back to its last durable size.
        """
        await asyncio.to_thread(self._sync)

    async def last_seq(self) -> int:
        """Return the last stored seq (scanning and checking the file the first time).

        Raises
        ------
        JournalCorrupt
            If a line other than the last is bad.
        """
        return await asyncio.to_thread(self._last_seq_sync)

    async def read_all(self) -> list[JournalEntry]:
        """Return every record in the file in order, without a torn last line.

        Raises
        ------
        JournalCorrupt
            Naming file and line, if a line other than the last is bad or seqs do not increase.
        """
        return await asyncio.to_thread(self._read_all)

    async def close(self) -> None:
        """fdatasync and close the file."""
        await asyncio.to_thread(self._close)

    # -- worker-thread side ----------------------------------------------------------------
    def _scan(self, collect: bool) -> list[JournalEntry]:
        entries: list[JournalEntry] = []
        size, last_seq, torn = 0, 0, None
        try:
            handle = self.path.open("rb")
        except FileNotFoundError:
            handle = io.BytesIO()
        with handle:
            line, line_no = handle.readline(), 1
            while line:
                following = handle.readline()
                try:
                    if not line.endswith(b"\n"):
                        raise ValueError("line has no end (cut short)")
                    entry = decode(line)
                except ValueError as exc:
                    if not following:
                        torn = TornTail(line_no, line, str(exc))
                        break
                    raise JournalCorrupt(f"{self.path}:{line_no}", str(exc)) from None
                if entry.seq <= last_seq:
                    raise JournalCorrupt(
                        f"{self.path}:{line_no}", f"seq {entry.seq} does not follow seq {last_seq}"
                    )
                if collect:
                    entries.append(entry)
                size, last_seq = size + len(line), entry.seq
                line, line_no = following, line_no + 1
        if torn is not None:
            log.warning(
                "journal %s: torn last line %d (%s) ignored; it was never durable",
                self.path, torn.line_no, torn.reason,
            )
        self.torn_tail = torn
        if self._fd is None:
            self._size, self._last_seq, self._scanned = size, last_seq, True
        return entries

    def _read_all(self) -> list[JournalEntry]:
        with self._lock:
            return self._scan(collect=True)

    def _last_seq_sync(self) -> int:
        with self._lock:
            if not self._scanned:
                self._scan(collect=False)
            return self._last_seq

    def _open(self) -> int:
        if self._fd is not None:
            return self._fd
        if not self._scanned:
            self._scan(collect=False)
        created = not self.path.exists()
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        try:
            if os.fstat(fd).st_size > self._size:
                os.ftruncate(fd, self._size)  # the torn tail, so the next line starts clean
            _datasync(fd)
            if created:
                dir_fd = os.open(self.path.parent, os.O_RDONLY)
                try:
                    os.fsync(dir_fd)
                finally:
                    os.close(dir_fd)
        except BaseException:
            os.close(fd)
            raise
        self._fd = fd
        self._durable_size, self.durable_seq = self._size, self._last_seq
        self._last_sync_ns = time.monotonic_ns()
        return fd

    def _append(self, entries: Sequence[JournalEntry]) -> None:
        with self._lock:
            fd = self._open()
            last = self._last_seq
            for entry in entries:
                if entry.seq <= last:
                    raise ValueError(f"seq {entry.seq} does not follow seq {last} in {self.path}")
                last = entry.seq
            data = b"".join([encode(entry) + b"\n" for entry in entries])
            try:
                view = memoryview(data)
                while view:
                    view = view[os.write(fd, view):]
                self._size += len(data)
                self._last_seq = last
                if time.monotonic_ns() - self._last_sync_ns >= self._interval_ns:
                    self._sync_locked(fd)
            except BaseException:
                self._roll_back(fd)
                raise

    def _sync_locked(self, fd: int) -> None:
        _datasync(fd)
        self._last_sync_ns = time.monotonic_ns()
        self._durable_size, self.durable_seq = self._size, self._last_seq

    def _sync(self) -> None:
        with self._lock:
            fd = self._open()
            if self.durable_seq < self._last_seq:
                try:
                    self._sync_locked(fd)
                except BaseException:
                    self._roll_back(fd)
                    raise

    def _roll_back(self, fd: int) -> None:
        # After a failed fsync the kernel may have dropped the dirty pages while marking them clean,
        # so everything past the last durable point is rewritten rather than trusted.
        try:
            os.ftruncate(fd, self._durable_size)
            self._size, self._last_seq = self._durable_size, self.durable_seq
        except OSError:
            os.close(fd)
            self._fd, self._scanned = None, False

    def _close(self) -> None:
        with self._lock:
            if self._fd is not None:
                fd, self._fd = self._fd, None
                try:
                    if self.durable_seq < self._last_seq:
                        self._sync_locked(fd)
                finally:
                    os.close(fd)


class JournalWriter:
    """Write journal records to a backend in order, off the hot path, surviving backend outages.

    The hot path calls :meth:`put_nowait` (no I/O: a seq is assigned and the record queued). A task
    writes queued records in order, in batches, and keeps each one until the backend reports it
    durable. When the backend fails (Redis down, disk full), records stay queued, the error is
    counted and logged, and the batch is retried with capped exponential backoff; before a retry
    the writer asks the backend what it already holds, so an ambiguous failure (the write landed but
    the reply was lost) never duplicates a record. :attr:`is_writable` tells the engine whether to
    keep opening positions.

    Use it from the event loop's thread only. Call :meth:`start` first and :meth:`close` last.

    Parameters
    ----------
    backend : JournalBackend
        Where records go; the writer does not close it.
    max_batch : int
        Most records per backend write.
    max_backlog : int
        :attr:`is_writable` is False while more records than this are queued.
    max_buffered : int
        Hard cap on queued records; :meth:`put_nowait` refuses more (counted in :attr:`overflow`).
    retry_initial_s, retry_max_s : float
        First and largest wait between retries after a backend error, seconds.
    on_write : callable, optional
        Called with the seconds each successful backend write (plus sync, if one was needed) took,
        for a latency histogram. It runs on the writer task, so it must be quick.

    Attributes
    ----------
    errors : int
        Backend errors seen.
    retries : int
        Retries made after an error.
    overflow : int
        Records refused because the buffer was full.
    written : int
        Records made durable by this writer.
    last_error : BaseException or None
        The latest backend error.

    Raises
    ------
    ValueError
        If a size or wait is not positive or ``max_backlog`` > ``max_buffered``.
    """

    def __init__(
        self,
        backend: JournalBackend,
        *,
        max_batch: int = 1024,
        max_backlog: int = 10_000,
        max_buffered: int = 1_000_000,
        retry_initial_s: float = 0.01,
        retry_max_s: float = 1.0,
        on_write: Callable[[float], None] | None = None,
    ) -> None:
        if not (0 < max_batch and 0 < max_backlog <= max_buffered):
            raise ValueError(
                "JournalWriter needs max_batch > 0 and 0 < max_backlog <= max_buffered; got"
                f" {max_batch}, {max_backlog}, {max_buffered}"
            )
        if not (0.0 < retry_initial_s <= retry_max_s):
            raise ValueError(
                f"JournalWriter needs 0 < retry_initial_s <= retry_max_s; got {retry_initial_s},"
                f" {retry_max_s}"
            )
        self.backend = backend
        self.max_batch = max_batch
        self.max_backlog = max_backlog
        self.max_buffered = max_buffered
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.on_write = on_write
        self.errors = 0
        self.retries = 0
        self.overflow = 0
        self.written = 0
        self.last_error: BaseException | None = None
        self._buffer: deque[JournalEntry] = deque()  # queued, not yet durable, seqs contiguous
        self._waiters: deque[tuple[int, asyncio.Future]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._accepting = False
        self._closing = False
        self._failing = False
        self._unsure = False  # after an error: ask the backend what it holds before writing again
        self._seq = 0
        self._written_seq = 0

    @property
    def last_seq(self) -> int:
        """Return the seq given to the latest queued record (the backend's last seq before any)."""
        return self._seq

    @property
    def durable_seq(self) -> int:
        """Return the highest seq the backend reports durable."""
        return self.backend.durable_seq

    @property
    def backlog(self) -> int:
        """Return how many queued records are not durable yet."""
        return len(self._buffer)

    @property
    def is_writable(self) -> bool:
        """Return True while the writer runs, the backend works, and the backlog is within bounds.

        When False the engine should open no new positions: what it does may not get journaled.
        """
        return (
            self._task is not None
            and not self._task.done()
            and not self._failing
            and len(self._buffer) <= self.max_backlog
        )

    async def start(self) -> int:
        """Continue the backend's journal: seqs go on from its last one. Return that last seq.

        Raises
        ------
        RuntimeError
            If the writer was already started.
        Exception
            Whatever the backend raises when it cannot be read or synced (no writing without it).
        """
        if self._task is not None:
            raise RuntimeError("JournalWriter.start called twice")
        last = await self.backend.last_seq()
        await self.backend.sync()
        self._seq = self._written_seq = last
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="journal-writer")
        self._task.add_done_callback(self._on_stopped)
        return last

    def put_nowait(self, record: Record) -> int:
        """Queue ``record`` for writing and return its seq. No I/O; for the hot path.

        Raises
        ------
        JournalOverflow
            If :attr:`max_buffered` records are already queued; the record is not journaled.
        RuntimeError
            If the writer is not started or is closing.
        """
        if not self._accepting:
            raise RuntimeError("JournalWriter is not accepting records (not started, or closed)")
        if len(self._buffer) >= self.max_buffered:
            self.overflow += 1
            if self.overflow == 1 or self.overflow % 10_000 == 0:
                log.error(
                    "journal buffer full (%d records); %d refused", self.max_buffered, self.overflow
                )
            raise JournalOverflow(f"journal buffer full ({self.max_buffered} records queued)")
        self._seq += 1
        self._buffer.append(JournalEntry(self._seq, record))
        self._wake.set()
        return self._seq

    async def append_durable(self, record: Record) -> int:
        """Queue ``record`` and return its seq once it (and everything before it) is durable.

        Use it for an order intent: send the order only after this returns.

        Raises
        ------
        JournalOverflow, RuntimeError
            As :meth:`put_nowait`; RuntimeError also if the writer stops before the record is durable.
        """
        seq = self.put_nowait(record)
        await self._until_durable(seq)
        return seq

    async def flush(self) -> None:
        """Return once every record queued so far is durable.

        It waits through a backend outage; bound it with ``asyncio.wait_for`` where that matters.

        Raises
        ------
        RuntimeError
            If the writer is not running or stops first.
        """
        await self._until_durable(self._seq)

    async def close(self) -> None:
        """Flush, then stop the writer task. Later :meth:`put_nowait` calls raise RuntimeError.

        Like :meth:`flush` it waits through a backend outage; bound it with ``asyncio.wait_for``.
        """
        if self._task is None:
            return
        await self.flush()
        self._accepting = False
        self._closing = True
        self._wake.set()
        await self._task

    async def _until_durable(self, seq: int) -> None:
        if self.backend.durable_seq >= seq:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("JournalWriter is not running; queued records are not durable")
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        self._wake.set()
        await future

    def _on_stopped(self, task: asyncio.Task) -> None:
        # A writer that dies must not leave append_durable callers waiting forever.
        self._accepting = False
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "journal writer died; %d records not durable", len(self._buffer),
                exc_info=task.exception(),
            )
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(
                    RuntimeError("JournalWriter stopped before the record was durable")
                )

    def _release(self) -> None:
        durable = self.backend.durable_seq
        while self._buffer and self._buffer[0].seq <= durable:
            self._buffer.popleft()
            self.written += 1
        while self._waiters and self._waiters[0][0] <= durable:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _next_batch(self) -> list[JournalEntry]:
        if not self._buffer:
            return []
        start = max(0, self._written_seq + 1 - self._buffer[0].seq)
        return list(itertools.islice(self._buffer, start, start + self.max_batch))

    async def _step(self, batch: list[JournalEntry]) -> None:
        if self._unsure:
            stored = await self.backend.last_seq()
            if stored > self._seq:
                raise RuntimeError(
                    f"backend holds seq {stored} beyond this writer's {self._seq}: another writer?"
                )
            if stored < self.backend.durable_seq:
                # Released records cannot be rewritten; carrying on would leave a silent hole.
                raise RuntimeError(
                    f"backend lost durable records: it holds up to seq {stored}, but seq"
                    f" {self.backend.durable_seq} was durable (Redis restarted without persistence?)"
                )
            self._written_seq = stored
            self._unsure = False
            self._release()
            batch = self._next_batch()
        started = time.perf_counter()
        worked = bool(batch)
        if batch:
            await self.backend.append(batch)
            self._written_seq = batch[-1].seq
        # Sync when nothing more is queued behind (no batching gain left) or someone is waiting.
        if self.backend.durable_seq < self._written_seq and (
            self._written_seq == self._seq
            or (self._waiters and self._waiters[0][0] <= self._written_seq)
        ):
            await self.backend.sync()
            worked = True
        if worked and self.on_write is not None:
            self.on_write(time.perf_counter() - started)

    async def _run(self) -> None:
        delay = self.retry_initial_s
        while True:
            self._release()
            batch = self._next_batch()
            must_sync = self.backend.durable_seq < self._written_seq
            if not batch and not must_sync and not self._unsure:
                if self._closing:
                    return
                self._wake.clear()
                await self._wake.wait()
                continue
            try:
                await self._step(batch)
            except Exception as exc:
                self.errors += 1
                self.last_error = exc
                self._unsure = True
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "journal backend failing (%s: %s); %d records held",
                        type(exc).__name__, exc, len(self._buffer),
                    )
                await asyncio.sleep(delay)
                delay = min(2.0 * delay, self.retry_max_s)
                self.retries += 1
                continue
            if self._failing:
                self._failing = False
                self._release()
                log.warning(
                    "journal backend writable again after %d errors; %d records held",
                    self.errors, len(self._buffer),
                )
            delay = self.retry_initial_s
