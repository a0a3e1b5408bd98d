"""Rebuild position, PnL and open orders from the journal after a restart (see :mod:`.journal`).

Records a bounded shutdown could not write to the store (Redis down at SIGTERM) are in the file
fallback (:meth:`~scalper.exec.journal_writer.JournalWriter.close`); :func:`replay_fallback` puts them
back into the store before :func:`recover` reads it.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from scalper.exec.journal import (
    FillRecord,
    IntentRecord,
    JournalBackend,
    JournalCorrupt,
    JournalEntry,
    OperatorAction,
    OperatorRecord,
    PositionRecord,
    ReconciledRecord,
    StatusRecord,
    encode,
)
from scalper.exec.journal_file import FileJournal
from scalper.exec.orders import Order
from scalper.risk.accounting import Account
from scalper.risk.intent import TradingState

log = logging.getLogger(__name__)

# A position record is the daemon's own Account after the same fills in the same order, so it matches
# the re-fold to the last bit; the slack only forgives a writer that rounds differently, never a lost
# or extra fill (whose effect is at least a lot or a fee).
_REL_TOL = 1e-9
_ABS_TOL = 1e-12


@dataclass(frozen=True, slots=True)
class RecoveredState:
    """What a restarted daemon knows from its journal.

    Attributes
    ----------
    position : float
        Signed position, base units (+ long, - short).
    avg_entry_price : float
        Average entry price of the open position, quote per base unit; 0.0 when flat.
    realized_pnl : float
        Closed-trade PnL, quote currency, gross of fees.
    fees_paid : float
        Sum of fill fees, quote currency.
    open_orders : tuple of Order
        Orders in flight with unknown outcome, oldest first: an intent with no terminal status and no
        ``reconciled`` record. Each carries its last journaled status, filled quantity, average
        fill price and the fees of its journaled fills. Settle them with the venue before trading;
        never assume them rejected.
    next_order_id : int
        The client order id to use next: one above every id in the journal, so none is reused.
    last_seq : int
        Seq of the last record (0 for an empty journal).
    fills_after_last_position : int
        Fills journaled after the last ``position`` record (a crash between the two writes). The
        position above includes them; write a fresh ``position`` record before trading.
    operator_state : TradingState
        The operator's trading-state slot after the last ``operator`` record (``ACTIVE`` without
        one): a halt survives a restart until the explicit operator action releases it.
    """

    position: float
    avg_entry_price: float
    realized_pnl: float
    fees_paid: float
    open_orders: tuple[Order, ...]
    next_order_id: int
    last_seq: int
    fills_after_last_position: int
    operator_state: TradingState = TradingState.ACTIVE


def _known(orders: dict[int, Order], order_id: int, where: str) -> Order:
    try:
        return orders[order_id]
    except KeyError:
        raise JournalCorrupt(where, f"order {order_id} has no order_intent before it") from None


def _check_position(account: Account, record: PositionRecord, where: str) -> None:
    for name in ("position", "avg_entry_price", "realized_pnl", "fees_paid"):
        folded, journaled = getattr(account, name), getattr(record, name)
        if not math.isclose(folded, journaled, rel_tol=_REL_TOL, abs_tol=_ABS_TOL):
            raise JournalCorrupt(
                where,
                f"position record says {name}={journaled!r}, the fills before it give {folded!r}",
            )


def recover(entries: Iterable[JournalEntry]) -> RecoveredState:
    """Rebuild the account and the in-flight orders from journal ``entries`` (seq order).

    The account is re-folded from every ``fill`` with :class:`scalper.risk.accounting.Account`
    (average cost) and checked against each ``position`` record on the way, so a position record
    and the fills before it can never silently disagree.

    Parameters
    ----------
    entries : iterable of JournalEntry
        The whole journal, e.g. ``await backend.read_all()``.

    Returns
    -------
    RecoveredState

    Raises
    ------
    JournalCorrupt
        Naming the seq, if seqs do not increase, a client order id is used twice, a status, fill or
        ``reconciled`` record names an order with no intent before it, a status follows a terminal
        one, a fill's side differs from its order's, or a ``position`` record disagrees with the
        re-folded fills.
    """
    # Only position, average price, realized PnL and fees are read back; equity is not journaled,
    # so the starting cash is an arbitrary positive number.
    account = Account(1.0)
    orders: dict[int, Order] = {}
    settled: set[int] = set()
    last_seq = 0
    fills_after_position = 0
    operator = TradingState.ACTIVE
    for seq, record in entries:
        where = f"seq {seq}"
        if seq <= last_seq:
            raise JournalCorrupt(where, f"seq does not follow seq {last_seq}")
        last_seq = seq
        if isinstance(record, IntentRecord):
            if record.order_id in orders:
                raise JournalCorrupt(where, f"client order id {record.order_id} used twice")
            orders[record.order_id] = Order(
                record.order_id,
                record.ts_ns,
                record.side,
                record.qty,
                record.limit_price,
                record.reason,
                record.is_exit,
            )
        elif isinstance(record, StatusRecord):
            order = _known(orders, record.order_id, where)
            if order.status.is_terminal:
                raise JournalCorrupt(
                    where,
                    f"order {order.order_id} moves to {record.status.name} after {order.status.name}",
                )
            order.status = record.status
            order.filled_qty = record.filled_qty
            order.avg_fill_price = record.avg_fill_price
        elif isinstance(record, FillRecord):
            order = _known(orders, record.order_id, where)
            if record.side != order.side:
                raise JournalCorrupt(where, f"fill side {record.side} on order {order.order_id} of side {order.side}")
            account.on_fill(record.side, record.qty, record.price, record.fee)
            order.fees += record.fee
            fills_after_position += 1
        elif isinstance(record, PositionRecord):
            _check_position(account, record, where)
            fills_after_position = 0
        elif isinstance(record, ReconciledRecord):
            settled.add(_known(orders, record.order_id, where).order_id)
        elif isinstance(record, OperatorRecord):
            tighten = record.action is OperatorAction.TIGHTEN
            operator = max(operator, record.state) if tighten else record.state
        else:
            raise JournalCorrupt(where, f"not a journal record: {type(record).__name__}")
    return RecoveredState(
        position=account.position,
        avg_entry_price=account.avg_entry_price,
        realized_pnl=account.realized_pnl,
        fees_paid=account.fees_paid,
        open_orders=tuple(
            order for order in orders.values() if not order.status.is_terminal and order.order_id not in settled
        ),
        next_order_id=max(orders, default=0) + 1,
        last_seq=last_seq,
        fills_after_last_position=fills_after_position,
        operator_state=operator,
    )


async def replay_fallback(store: JournalBackend, path: str | Path) -> int:
    """Append the records of the file fallback at ``path`` that the store lacks, then move the file
    aside (``<path>.replayed-<ns>``). Return how many records were appended (0 without a file).

    The fallback holds what a bounded shutdown could not write to the store, in seq order. Records
    the store already holds (a write in flight at the shutdown may have landed) must be identical;
    the rest must continue the store's last seq.

    Raises
    ------
    JournalCorrupt
        Naming the file, if it is corrupt, if a record differs from the store's record of the same
        seq, or if its records do not continue the store (the store lost records: restore it, e.g.
        from its AOF or a backup, then start again). The file is left in place.
    """
    path = Path(path)
    if not path.exists():
        return 0
    saved = await FileJournal(path).read_all()
    stored = {e.seq: e for e in await store.read_all()} if saved else {}
    last = max(stored, default=0)
    for entry in saved:
        if entry.seq <= last and encode(stored.get(entry.seq, entry)) != encode(entry):
            raise JournalCorrupt(f"fallback {path}", f"seq {entry.seq} differs from the store's record")
    missing = [e for e in saved if e.seq > last]
    if missing and missing[0].seq != last + 1:
        raise JournalCorrupt(
            f"fallback {path}",
            f"starts at seq {missing[0].seq} but the store ends at seq {last}: seqs {last + 1}..{missing[0].seq - 1}"
            " are missing (the store lost records: restore it from its AOF or a backup)",
        )
    if missing:
        await store.append(missing)
        await store.sync()
    path.rename(path.with_name(f"{path.name}.replayed-{time.time_ns()}"))
    log.warning("journal: replayed %d record(s) from the fallback %s into the store", len(missing), path)
    return len(missing)
