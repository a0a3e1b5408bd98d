"""The order/fill/position journal: what the trading daemon writes before it acts, and reads on restart.

The journal format
------------------
A journal is an ordered sequence of records. Each record is one JSON object (orjson) with

* ``seq`` -- int >= 1, strictly increasing within a journal; the :class:`JournalWriter` assigns it
  when the record is queued, so it is also the order in which the engine produced the records;
* ``ts_ns`` -- int, the wall-clock time (``time.time_ns()``) at which the engine made the record, ns
  since the epoch, UTC, for every record type alike. Market event times a record refers to are in
  its own fields (``fill_ts_ns``); a record never carries an exchange time in ``ts_ns``;
* ``type`` -- one of the six below, followed by exactly that type's fields:

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
``operator`` (:class:`OperatorRecord`)
    ``action`` (an :class:`OperatorAction` name), ``state`` (a
    :class:`~scalper.risk.intent.TradingState` name), ``reason`` (free text): an operator signal
    (``TIGHTEN``: the operator slot becomes at least ``state``) or the explicit action that sets it
    and releases the automatic latches (``SET``, e.g. ``scalper control resume``). Recovery folds
    them into :attr:`~scalper.exec.recovery.RecoveredState.operator_state`.

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
2. An entry's ``order_intent`` is durable before the order is sent (:meth:`JournalWriter.append_durable`,
   or the daemon holding the order until :attr:`JournalWriter.durable_seq` reaches it). An exit's
   intent is queued before the exit is sent but not waited for: an exit only shrinks the position,
   and holding it through a store outage would hold the risk. A crash before that intent is durable
   loses it with the exit's fills, so recovery sees the position as before the exit.
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
import enum
import math
from collections.abc import Sequence
from dataclasses import dataclass, fields
from typing import ClassVar, NamedTuple

import orjson

from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.risk.accounting import Account
from scalper.risk.intent import OrderIntent, TradingState


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


class JournalStoreLost(RuntimeError):
    """The store holds less than was made durable in it: it lost records (Redis restarted empty,
    or a stream rewound from an old backup). Nothing more may be written there.

    Attributes
    ----------
    stored_seq : int
        The last seq the store holds now.
    expected_seq : int
        The last seq this writer knows it made durable there.
    """

    def __init__(self, stored_seq: int, expected_seq: int, where: str) -> None:
        self.stored_seq = stored_seq
        self.expected_seq = expected_seq
        super().__init__(
            f"{where} holds records up to seq {stored_seq}, but seq {expected_seq} was durable in it"
            " (restarted without its data, or rewound?)"
        )


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
        return cls(ts_ns, order_id, intent.side, intent.qty, intent.limit_price, intent.reason, intent.is_exit)


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
            ts_ns,
            fill.order_id,
            fill.ts_ns,
            fill.side,
            fill.qty,
            fill.price,
            fill.fee,
            fill.is_maker,
            fill.reason,
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
        return cls(ts_ns, account.position, account.avg_entry_price, account.realized_pnl, account.fees_paid)


@dataclass(frozen=True, slots=True)
class ReconciledRecord:
    """How an order in flight at a restart was settled (``reconciled``)."""

    TYPE: ClassVar[str] = "reconciled"
    ts_ns: int
    order_id: int
    outcome: ReconcileOutcome


class OperatorAction(enum.Enum):
    """What an ``operator`` record did to the operator's trading-state slot."""

    TIGHTEN = "TIGHTEN"
    """A signal (SIGUSR1 / SIGUSR2): the slot became at least ``state`` (it never loosens this way)."""
    SET = "SET"
    """The explicit action: the slot became ``state`` and the automatic latches were released."""


@dataclass(frozen=True, slots=True)
class OperatorRecord:
    """An operator action on the trading state (``operator``); see :mod:`scalper.risk.control`."""

    TYPE: ClassVar[str] = "operator"
    ts_ns: int
    action: OperatorAction
    state: TradingState
    reason: str


Record = IntentRecord | StatusRecord | FillRecord | PositionRecord | ReconciledRecord | OperatorRecord


class JournalEntry(NamedTuple):
    """A record and its place in the journal (``seq`` >= 1)."""

    seq: int
    record: Record


_RECORD_TYPES = {
    cls.TYPE: cls for cls in (IntentRecord, StatusRecord, FillRecord, PositionRecord, ReconciledRecord, OperatorRecord)
}
# Field kinds come from the dataclass annotations (strings under postponed evaluation), so the codec
# cannot drift from the record definitions.
_SCHEMAS = {cls: tuple((f.name, str(f.type)) for f in fields(cls)) for cls in _RECORD_TYPES.values()}
_ENUMS = {
    "OrderStatus": OrderStatus,
    "ReconcileOutcome": ReconcileOutcome,
    "OperatorAction": OperatorAction,
    "TradingState": TradingState,
}


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
    kind = obj.get("type")
    cls = _RECORD_TYPES.get(kind) if isinstance(kind, str) else None
    if cls is None:
        raise ValueError(f"unknown record type {obj.get('type')!r}")
    seq = obj.get("seq")
    if not isinstance(seq, int) or isinstance(seq, bool) or seq < 1:
        raise ValueError(f"seq={seq!r} is not a positive integer")
    schema = _SCHEMAS[cls]
    expected = {"seq", "type"} | {name for name, _ in schema}
    if obj.keys() != expected:
        raise ValueError(
            f"{cls.TYPE} record: missing {sorted(expected - obj.keys())}, unknown {sorted(obj.keys() - expected)}"
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
