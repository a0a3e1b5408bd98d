"""recover(): position, PnL, fees and in-flight orders rebuilt from hand-written journals."""

from __future__ import annotations

import asyncio

import pytest

from scalper.exec.journal import (
    FillRecord,
    IntentRecord,
    JournalCorrupt,
    JournalEntry,
    PositionRecord,
    ReconciledRecord,
    ReconcileOutcome,
    StatusRecord,
    encode,
)
from scalper.exec.journal_file import FileJournal
from scalper.exec.orders import OrderStatus
from scalper.exec.recovery import recover

T0 = 1_700_000_000_000_000_000  # ns since the epoch
S = OrderStatus


class Journal:
    """Hand-written journal: each helper appends one record with the next seq."""

    def __init__(self) -> None:
        self.entries: list[JournalEntry] = []

    def _add(self, record) -> Journal:
        self.entries.append(JournalEntry(len(self.entries) + 1, record))
        return self

    def intent(self, oid: int, side: int, qty: float, price: float = 100.0, reason: str = "entry"):
        return self._add(IntentRecord(T0, oid, side, qty, price, reason, reason != "entry"))

    def status(self, oid: int, status: OrderStatus, filled: float = 0.0, avg: float = 0.0):
        return self._add(StatusRecord(T0, oid, status, filled, avg))

    def fill(self, oid: int, side: int, qty: float, price: float, fee: float = 0.0):
        return self._add(FillRecord(T0, oid, T0, side, qty, price, fee, False, "entry"))

    def position(self, pos: float, avg: float, realized: float, fees: float):
        return self._add(PositionRecord(T0, pos, avg, realized, fees))

    def reconciled(self, oid: int, outcome: ReconcileOutcome):
        return self._add(ReconciledRecord(T0, oid, outcome))


def test_empty_journal_is_flat_with_nothing_open():
    state = recover([])
    assert (state.position, state.avg_entry_price, state.realized_pnl, state.fees_paid) == (0, 0, 0, 0)
    assert state.open_orders == ()
    assert (state.next_order_id, state.last_seq, state.fills_after_last_position) == (1, 0, 0)


def test_intent_without_status_is_in_flight_never_assumed_rejected():
    state = recover(Journal().intent(1, 1, 0.5, 101.0).entries)
    (order,) = state.open_orders
    assert (order.order_id, order.status, order.side, order.qty, order.limit_price) == (
        1,
        S.NEW,
        1,
        0.5,
        101.0,
    )
    assert state.next_order_id == 2
    assert state.position == 0.0


def test_partially_filled_order_is_open_with_its_fill_and_the_position_counts_it():
    j = (
        Journal()
        .intent(1, 1, 1.0)
        .status(1, S.ACCEPTED)
        .fill(1, 1, 0.4, 100.0, 0.04)
        .position(0.4, 100.0, 0.0, 0.04)
        .status(1, S.PARTIALLY_FILLED, 0.4, 100.0)
    )
    state = recover(j.entries)
    (order,) = state.open_orders
    assert (order.status, order.filled_qty, order.avg_fill_price, order.fees) == (
        S.PARTIALLY_FILLED,
        0.4,
        100.0,
        0.04,
    )
    assert (state.position, state.avg_entry_price, state.fees_paid) == (0.4, 100.0, 0.04)
    assert state.last_seq == 5


def test_flipped_position_realizes_the_closed_part_and_opens_the_rest_at_the_fill_price():
    j = (
        Journal()
        .intent(1, 1, 1.0)
        .status(1, S.ACCEPTED)
        .fill(1, 1, 1.0, 100.0, 0.1)
        .position(1.0, 100.0, 0.0, 0.1)
        .status(1, S.FILLED, 1.0, 100.0)
        .intent(2, -1, 3.0, 109.0, "take_profit")
        .status(2, S.ACCEPTED)
        .fill(2, -1, 3.0, 110.0, 0.3)
        .position(-2.0, 110.0, 10.0, 0.1 + 0.3)
        .status(2, S.FILLED, 3.0, 110.0)
    )
    state = recover(j.entries)
    assert (state.position, state.avg_entry_price, state.realized_pnl) == (-2.0, 110.0, 10.0)
    assert state.fees_paid == 0.1 + 0.3
    assert state.open_orders == ()
    assert state.next_order_id == 3


def test_reconciled_and_terminal_orders_are_not_open():
    j = (
        Journal()
        .intent(1, 1, 1.0)  # reconciled after a restart
        .intent(2, 1, 1.0)
        .status(2, S.REJECTED)
        .intent(3, 1, 1.0)
        .status(3, S.ACCEPTED)
        .status(3, S.CANCELED)
        .intent(4, -1, 1.0)  # still unknown
        .reconciled(1, ReconcileOutcome.NOT_FOUND)
    )
    state = recover(j.entries)
    assert [o.order_id for o in state.open_orders] == [4]


def test_next_order_id_is_above_every_id_seen_even_settled_ones():
    j = Journal().intent(5, 1, 1.0).status(5, S.REJECTED).intent(2, 1, 1.0)
    j.reconciled(2, ReconcileOutcome.NOT_FOUND)
    assert recover(j.entries).next_order_id == 6


def test_reused_client_order_id_is_corrupt():
    j = Journal().intent(1, 1, 1.0).status(1, S.REJECTED).intent(1, 1, 1.0)
    with pytest.raises(JournalCorrupt, match="seq 3: client order id 1 used twice"):
        recover(j.entries)


def test_fills_after_the_last_position_record_are_counted_and_included():
    j = Journal().intent(1, 1, 2.0).status(1, S.ACCEPTED).fill(1, 1, 1.0, 100.0)
    j.position(1.0, 100.0, 0.0, 0.0).fill(1, 1, 1.0, 102.0)
    state = recover(j.entries)
    assert (state.position, state.avg_entry_price) == (2.0, 101.0)
    assert state.fills_after_last_position == 1


def test_position_record_disagreeing_with_fills_is_corrupt_naming_its_seq():
    j = Journal().intent(1, 1, 1.0).status(1, S.ACCEPTED).fill(1, 1, 1.0, 100.0)
    j.position(1.0, 100.5, 0.0, 0.0)
    with pytest.raises(JournalCorrupt, match="seq 4: position record says avg_entry_price=100.5"):
        recover(j.entries)


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda j: j.fill(9, 1, 1.0, 100.0), "seq 1: order 9 has no order_intent"),
        (lambda j: j.status(9, S.ACCEPTED), "seq 1: order 9 has no order_intent"),
        (lambda j: j.reconciled(9, ReconcileOutcome.CANCELED), "seq 1: order 9 has no order_intent"),
        (
            lambda j: j.intent(1, 1, 1.0).status(1, S.REJECTED).status(1, S.ACCEPTED),
            "seq 3: order 1 moves to ACCEPTED after REJECTED",
        ),
        (lambda j: j.intent(1, 1, 1.0).fill(1, -1, 1.0, 100.0), "seq 2: fill side -1 on order 1"),
    ],
)
def test_record_breaking_journal_rules_is_corrupt_naming_its_seq(build, message):
    with pytest.raises(JournalCorrupt, match=message):
        recover(build(Journal()).entries)


def test_seq_not_increasing_is_corrupt():
    entries = Journal().intent(1, 1, 1.0).intent(2, 1, 1.0).entries
    with pytest.raises(JournalCorrupt, match="seq 1: seq does not follow seq 2"):
        recover(list(reversed(entries)))


def test_torn_intent_in_file_was_never_sent_so_it_is_not_in_flight(tmp_path):
    path = tmp_path / "j.jsonl"
    entries = Journal().intent(1, 1, 1.0).status(1, S.REJECTED).intent(2, -1, 1.0).entries
    path.write_bytes(b"".join(encode(e) + b"\n" for e in entries[:2]) + encode(entries[2])[:30])
    state = recover(asyncio.run(FileJournal(path).read_all()))
    assert state.open_orders == ()
    assert (state.last_seq, state.next_order_id) == (2, 2)


def _operator(seq: int, action: str, state: str):
    from scalper.exec.journal import OperatorAction, OperatorRecord
    from scalper.risk.intent import TradingState

    return JournalEntry(seq, OperatorRecord(T0 + seq, OperatorAction[action], TradingState[state], "test"))


def test_operator_records_fold_into_the_operator_slot_a_signal_only_tightens():
    from scalper.risk.intent import TradingState

    j = Journal().intent(1, 1, 0.5).status(1, S.FILLED, 0.5, 100.0)
    base = j.entries
    assert recover(base).operator_state == TradingState.ACTIVE
    halted = [*base, _operator(3, "TIGHTEN", "HALTED"), _operator(4, "TIGHTEN", "REDUCING_ONLY")]
    assert recover(halted).operator_state == TradingState.HALTED  # SIGUSR2 after SIGUSR1 keeps the halt
    resumed = [*halted, _operator(5, "SET", "ACTIVE")]
    assert recover(resumed).operator_state == TradingState.ACTIVE
    assert recover(resumed).last_seq == 5 and recover(resumed).next_order_id == 2


def test_operator_record_round_trips_through_the_file_journal(tmp_path):
    entries = [_operator(1, "TIGHTEN", "HALTED"), _operator(2, "SET", "REDUCING_ONLY")]
    assert b'"type":"operator","action":"TIGHTEN","state":"HALTED"' in encode(entries[0])

    async def scenario():
        journal = FileJournal(tmp_path / "j.jsonl")
        await journal.append(entries)
        await journal.close()
        return await FileJournal(tmp_path / "j.jsonl").read_all()

    assert asyncio.run(scenario()) == entries


class _Store:
    """A store of entries for replay_fallback (the part of JournalBackend it uses)."""

    def __init__(self, entries):
        self.entries = list(entries)
        self.durable_seq = entries[-1].seq if entries else 0

    async def read_all(self):
        return list(self.entries)

    async def last_seq(self):
        return self.entries[-1].seq if self.entries else 0

    async def append(self, entries):
        self.entries.extend(entries)

    async def sync(self):
        pass


def _fallback(tmp_path, entries):
    async def write():
        journal = FileJournal(tmp_path / "fallback.jsonl")
        await journal.append(entries)
        await journal.close()

    asyncio.run(write())
    return tmp_path / "fallback.jsonl"


def test_fallback_records_continuing_the_store_are_replayed_into_it_then_moved_aside(tmp_path):
    from scalper.exec.recovery import replay_fallback

    j = (
        Journal()
        .intent(1, 1, 0.5)
        .status(1, S.FILLED, 0.5, 100.0)
        .fill(1, 1, 0.5, 100.0)
        .position(0.5, 100.0, 0.0, 0.0)
    )
    store = _Store(j.entries[:2])
    # seq 2 was in flight when the writer stopped: it landed in the store and is in the fallback too.
    path = _fallback(tmp_path, j.entries[1:])
    assert asyncio.run(replay_fallback(store, path)) == 2
    assert store.entries == j.entries
    assert not path.exists() and len(list(tmp_path.glob("fallback.jsonl.replayed-*"))) == 1
    assert asyncio.run(replay_fallback(store, path)) == 0  # nothing left to replay


def test_fallback_that_does_not_continue_the_store_is_refused_saying_what_is_missing(tmp_path):
    from scalper.exec.recovery import replay_fallback

    j = (
        Journal()
        .intent(1, 1, 0.5)
        .status(1, S.FILLED, 0.5, 100.0)
        .fill(1, 1, 0.5, 100.0)
        .position(0.5, 100.0, 0.0, 0.0)
    )
    path = _fallback(tmp_path, j.entries[2:])
    with pytest.raises(JournalCorrupt, match=r"starts at seq 3 but the store ends at seq 0: seqs 1\.\.2 are missing"):
        asyncio.run(replay_fallback(_Store([]), path))
    assert path.exists()  # kept for the operator
    (tmp_path / "other").mkdir()
    other = Journal().intent(1, 1, 0.5).status(1, S.CANCELED)
    with pytest.raises(JournalCorrupt, match="seq 2 differs from the store's record"):
        asyncio.run(replay_fallback(_Store(other.entries), _fallback(tmp_path / "other", j.entries[1:])))
