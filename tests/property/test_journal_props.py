"""Journal round trip: random order lives, driven through the real Order state machine and Account,
written to a FileJournal by the JournalWriter and recovered, give back the account and the open orders.
"""

from __future__ import annotations

import asyncio
import tempfile
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.exec.journal import (
    FillRecord,
    IntentRecord,
    OperatorAction,
    OperatorRecord,
    PositionRecord,
    ReconciledRecord,
    ReconcileOutcome,
    StatusRecord,
)
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.orders import Fill, InvalidTransition, Order, OrderStatus
from scalper.exec.recovery import recover
from scalper.risk.accounting import Account
from scalper.risk.control import Source, TradingControl
from scalper.risk.intent import TradingState

LOT = 0.01  # base units
T0 = 1_700_000_000_000_000_000  # ns since the epoch

index = st.integers(0, 50)
price = st.integers(9_000, 11_000).map(lambda n: n * 0.01)  # quote, on a 0.01 tick grid
ops = st.lists(
    st.one_of(
        st.tuples(st.just("new"), st.sampled_from([1, -1]), st.integers(1, 300), price),
        st.tuples(st.sampled_from(["accept", "reject", "cancel"]), index),
        st.tuples(st.just("fill"), index, st.integers(1, 300), price, st.floats(0.0, 1.0), st.booleans()),
        st.tuples(st.just("reconcile"), index, st.sampled_from(list(ReconcileOutcome))),
        st.tuples(st.just("operator"), st.sampled_from(list(OperatorAction)), st.sampled_from(list(TradingState))),
    ),
    max_size=60,
)

_MOVES = {"accept": OrderStatus.ACCEPTED, "reject": OrderStatus.REJECTED, "cancel": OrderStatus.CANCELED}


class Trading:
    """Apply ops to real orders and a real account, keeping the journal records they produce."""

    def __init__(self) -> None:
        self.account = Account(1e6)
        self.orders: list[Order] = []
        self.lots: dict[int, tuple[int, int]] = {}  # order id -> (ordered lots, filled lots)
        self.reconciled: set[int] = set()
        self.control = TradingControl()  # what the daemon's operator actions did, live
        self.records: list = []
        self.ts = T0

    def _tick(self) -> int:
        self.ts += 1_000
        return self.ts

    def apply(self, op: tuple) -> None:
        kind = op[0]
        if kind == "new":
            _, side, lots, limit = op
            order = Order(len(self.orders) + 1, self._tick(), side, lots * LOT, limit, "entry", False)
            self.orders.append(order)
            self.lots[order.order_id] = (lots, 0)
            self.records.append(
                IntentRecord(order.client_ts_ns, order.order_id, side, order.qty, limit, "entry", False)
            )
            return
        if kind == "operator":
            _, action, state = op
            if action is OperatorAction.TIGHTEN:
                self.control.impose(Source.OPERATOR, state)
            else:
                self.control.operator_set(state)
            self.records.append(OperatorRecord(self._tick(), action, state, "test"))
            return
        if not self.orders:
            return
        order = self.orders[op[1] % len(self.orders)]
        if kind in _MOVES:
            try:
                order.transition(_MOVES[kind])
            except InvalidTransition:
                return
            self.records.append(StatusRecord.from_order(self._tick(), order))
        elif kind == "fill":
            self._fill(order, *op[2:])
        elif not order.status.is_terminal and order.order_id not in self.reconciled:
            self.reconciled.add(order.order_id)
            self.records.append(ReconciledRecord(self._tick(), order.order_id, op[2]))

    def _fill(self, order: Order, lots: int, px: float, fee: float, write_position: bool) -> None:
        ordered, filled = self.lots[order.order_id]
        if order.status is OrderStatus.NEW:  # the venue acknowledges an order before filling it
            order.transition(OrderStatus.ACCEPTED)
            self.records.append(StatusRecord.from_order(self._tick(), order))
        if order.status.is_terminal:
            return
        lots = min(lots, ordered - filled)
        fill = Fill(order.order_id, self._tick(), order.side, lots * LOT, px, fee, False, order.reason)
        done = filled + lots == ordered
        order.apply_fill(fill, OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED)
        self.lots[order.order_id] = (ordered, filled + lots)
        self.account.on_fill(fill.side, fill.qty, fill.price, fill.fee)
        self.records.append(FillRecord.from_fill(self._tick(), fill))
        if write_position:
            self.records.append(PositionRecord.from_account(self._tick(), self.account))
        self.records.append(StatusRecord.from_order(self._tick(), order))


async def _journal(path: Path, records: list) -> None:
    backend = FileJournal(path)
    writer = JournalWriter(backend, max_batch=5)
    await writer.start()
    for record in records:
        if isinstance(record, IntentRecord):
            await writer.append_durable(record)  # the order would be sent after this returns
        else:
            writer.put_nowait(record)
    await writer.close()
    await backend.close()


@settings(deadline=None, max_examples=100)
@given(ops=ops)
def test_recovered_journal_equals_account_and_open_orders(ops):
    trading = Trading()
    for op in ops:
        trading.apply(op)
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "journal.jsonl"
        asyncio.run(_journal(path, trading.records))
        state = recover(asyncio.run(FileJournal(path).read_all()))

    acc = trading.account
    assert state.operator_state == trading.control.slot(Source.OPERATOR)
    assert (state.position, state.avg_entry_price, state.realized_pnl, state.fees_paid) == (
        acc.position,
        acc.avg_entry_price,
        acc.realized_pnl,
        acc.fees_paid,
    )
    expected_open = [o for o in trading.orders if not o.status.is_terminal and o.order_id not in trading.reconciled]

    def view(o: Order) -> tuple:
        return (o.order_id, o.side, o.qty, o.limit_price, o.status, o.filled_qty, o.avg_fill_price, o.fees)

    assert [view(o) for o in state.open_orders] == [view(o) for o in expected_open]
    assert state.next_order_id == len(trading.orders) + 1
    assert state.last_seq == len(trading.records)
