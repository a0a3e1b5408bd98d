"""JournaledVenue beyond the adapter contract: entries wait for a durable intent, exits do not, the
journal's order ids are the venue's, and a held order canceled is journaled as such.

A real :class:`JournalWriter` on a file journal; its background task runs only inside
``loop.run_until_complete``, so between those calls nothing becomes durable and each test controls
exactly when intents reach the store.
"""

from __future__ import annotations

import asyncio

import pytest

from scalper.exec.journal import IntentRecord, StatusRecord
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.journaled import JournaledVenue
from scalper.exec.orders import OrderStatus
from scalper.exec.recovery import recover
from scalper.exec.simulated import SimulatedExchange
from scalper.risk.intent import OrderIntent, _approve

LATENCY_NS = 1_000
T0 = 1_700_000_000_000_000_000


class Rig:
    def __init__(self, tmp_path, first_order_id: int = 1, start: bool = True) -> None:
        self.loop = asyncio.new_event_loop()
        self.path = tmp_path / "journal.jsonl"
        self.writer = JournalWriter(FileJournal(self.path))
        if start:
            self.loop.run_until_complete(self.writer.start())
        self.paper = SimulatedExchange(LATENCY_NS, 1.0, 0.5, 0.1, first_order_id=first_order_id)
        self.venue = JournaledVenue(self.paper, self.writer)

    def submit(self, side: int, is_exit: bool, ts_ns: int = T0):
        intent = OrderIntent(ts_ns, side, 0.1, 100.0, is_exit, "stop_loss" if is_exit else "entry")
        return self.venue.submit(_approve(intent, 1), ts_ns)

    def flush(self) -> None:
        self.loop.run_until_complete(self.writer.flush())

    def records(self):
        self.loop.run_until_complete(self.writer.close())
        self.loop.close()
        return asyncio.run(FileJournal(self.path).read_all())


@pytest.fixture
def rig(tmp_path):
    r = Rig(tmp_path)
    yield r
    if not r.loop.is_closed():
        r.loop.run_until_complete(r.writer.close())
        r.loop.close()


def test_entry_is_held_until_its_intent_is_durable_then_sent_as_the_same_order(rig):
    order = rig.submit(1, is_exit=False)
    assert rig.venue.holds_orders() and rig.venue.has_open_orders()
    assert rig.paper.open_orders() == [] and rig.venue.open_orders() == [order]
    assert rig.venue.release(T0) == 0  # queued, not durable: the entry waits
    assert rig.paper.open_orders() == []
    rig.flush()
    assert rig.venue.release(T0 + 5) == 1
    assert not rig.venue.holds_orders()
    assert rig.paper.open_orders() == [order] and rig.paper.order(order.order_id) is order
    assert rig.venue.next_wake_ns() == T0 + 5 + LATENCY_NS  # sent at the release time, after its decision


def test_exit_goes_out_without_waiting_for_the_store(rig):
    order = rig.submit(-1, is_exit=True)
    assert rig.venue.release(T0) == 1
    assert rig.paper.open_orders() == [order] and order.is_exit


def test_exit_behind_a_held_entry_waits_with_it(rig):
    entry = rig.submit(1, is_exit=False)
    exit_ = rig.submit(-1, is_exit=True)
    assert rig.venue.release(T0) == 0
    assert rig.venue.open_orders() == [entry, exit_]
    rig.flush()
    assert rig.venue.release(T0) == 2
    assert rig.paper.open_orders() == [entry, exit_]


def test_release_never_steps_the_venue_clock_back(rig):
    order = rig.submit(1, is_exit=False, ts_ns=T0)
    rig.paper.cancel(999, T0 + 100)  # the venue's clock is at T0 + 100 (a later event came first)
    rig.flush()
    assert rig.venue.release(T0 + 50) == 1
    assert rig.venue.next_wake_ns() == T0 + 100 + LATENCY_NS
    assert order.status is OrderStatus.NEW


def test_journal_order_ids_are_the_venue_ids_continuing_from_the_first(tmp_path):
    rig = Rig(tmp_path, first_order_id=38)
    orders = [rig.submit(1, is_exit=False) for _ in range(3)]
    rig.flush()
    rig.venue.release(T0)
    assert [o.order_id for o in orders] == [38, 39, 40]
    assert [o.order_id for o in rig.paper.open_orders()] == [38, 39, 40]
    assert rig.paper.next_order_id == 41
    intents = [e.record for e in rig.records() if isinstance(e.record, IntentRecord)]
    assert [r.order_id for r in intents] == [38, 39, 40]


def test_cancel_of_a_held_order_cancels_it_and_journals_the_status_after_the_intent(tmp_path):
    rig = Rig(tmp_path)
    held = rig.submit(1, is_exit=False)
    assert rig.venue.cancel(held.order_id, T0 + 1) is True
    assert held.status is OrderStatus.CANCELED and not rig.venue.has_open_orders()
    assert rig.venue.cancel(held.order_id, T0 + 2) is False
    rig.flush()
    assert rig.venue.release(T0 + 3) == 0  # nothing left to send
    later = rig.submit(1, is_exit=False)  # the canceled id is not reused; the venue follows the gap
    rig.flush()
    rig.venue.release(T0 + 4)
    assert later.order_id == held.order_id + 1 and rig.paper.open_orders() == [later]
    entries = rig.records()
    kinds = [(type(e.record).__name__, e.record.order_id) for e in entries]
    assert kinds == [("IntentRecord", 1), ("StatusRecord", 1), ("IntentRecord", 2)]
    assert isinstance(entries[1].record, StatusRecord) and entries[1].record.status is OrderStatus.CANCELED
    assert [o.order_id for o in recover(entries).open_orders] == [2]  # the canceled one is settled


def test_an_intent_the_journal_refuses_is_neither_held_nor_given_an_id(tmp_path):
    rig = Rig(tmp_path, start=False)
    with pytest.raises(RuntimeError, match="not accepting"):
        rig.submit(1, is_exit=False)
    assert not rig.venue.has_open_orders()
    rig.loop.run_until_complete(rig.writer.start())
    assert rig.submit(1, is_exit=False).order_id == 1
    rig.loop.run_until_complete(rig.writer.close())
    rig.loop.close()


def test_submit_issued_refuses_an_id_below_the_next_one():
    ex = SimulatedExchange(LATENCY_NS, 1.0, 0.5, 0.1, first_order_id=5)
    approved = _approve(OrderIntent(T0, 1, 0.1, 100.0, False, "entry"), 1)
    first = ex.submit(approved, T0)
    stale = type(first)(5, T0, 1, 0.1, 100.0, "entry", False)
    with pytest.raises(ValueError, match="ids from 6"):
        ex.submit_issued(approved, stale, T0)
    with pytest.raises(TypeError, match="ApprovedOrder"):
        ex.submit_issued(approved.intent, stale, T0)
    assert ex.open_orders() == [first]
