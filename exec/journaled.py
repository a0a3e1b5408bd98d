"""An execution adapter that journals every order intent before the order reaches its venue.

The daemon's engine core sees one adapter, :class:`JournaledVenue`, wrapping the paper venue and the
:class:`~scalper.exec.journal_writer.JournalWriter`. The rule it keeps: an entry is sent only once
its intent record is durable, so a crash never leaves an order on the venue that the journal does
not know; an exit is not held for the store (it only shrinks the position, and holding it through a
journal outage would hold the risk), but its intent is still queued first, so the journal keeps it.
"""

from __future__ import annotations

import logging
import time
from collections import deque

import numpy as np

from scalper.exec.adapter import ExecutionAdapter
from scalper.exec.journal import IntentRecord, JournalOverflow, StatusRecord
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.exec.simulated import SimulatedExchange
from scalper.risk.intent import ApprovedOrder

log = logging.getLogger("scalper.exec")


class JournaledVenue(ExecutionAdapter):
    """A venue that journals every intent and sends an entry only once that record is durable.

    :meth:`submit` queues the intent record (``put_nowait``: no I/O) and holds the order; the caller
    (the daemon, at each frame and once a second) calls :meth:`release`, which sends the held orders
    in submit order as far as their intents are durable, and an exit at the head whatever the store.
    A held order is already the tracked :class:`Order` (status ``NEW``, listed by :meth:`open_orders`
    after the orders on the venue); the venue goes on tracking that same object once it is sent.
    Held orders count as open, so the core does not stack a second entry on one not yet sent.

    Parameters
    ----------
    venue : SimulatedExchange
        Where released orders go (the daemon's paper venue); order ids continue from its
        :attr:`~SimulatedExchange.next_order_id`, so the journal's ids are the venue's.
    journal : JournalWriter
        A started writer; its records carry wall-clock ``ts_ns`` (the event time is in the order).

    Times (``ts_ns``, ``now_ns``) are event times, ns since the epoch. Live event times are not
    strictly ordered (a trade at T can trail a depth update at T), so an order or a cancel never
    steps the venue's clock back: it goes at the later of its own time and the venue's.
    """

    def __init__(self, venue: SimulatedExchange, journal: JournalWriter) -> None:
        self.venue = venue
        self.journal = journal
        # (intent seq, approval, tracked order, decision time ns), in submit order.
        self._held: deque[tuple[int, ApprovedOrder, Order, int]] = deque()
        self._next_client_id = venue.next_order_id

    def _submit(self, order: ApprovedOrder, ts_ns: int) -> Order:
        """Journal the intent as the next order id and hold the order; see :meth:`submit`.

        Raises
        ------
        JournalOverflow, RuntimeError
            From :meth:`JournalWriter.put_nowait`: the intent cannot be queued, so nothing is held
            and the id is not used.
        """
        oid = self._next_client_id
        intent = order.intent
        # Journal records carry wall-clock time (exec/journal.py); the decision's event time is in the order.
        seq = self.journal.put_nowait(IntentRecord.from_intent(time.time_ns(), oid, intent))
        self._next_client_id = oid + 1
        tracked = Order(oid, intent.ts_ns, intent.side, intent.qty, intent.limit_price, intent.reason, intent.is_exit)
        self._held.append((seq, order, tracked, ts_ns))
        return tracked

    def release(self, now_ns: int) -> int:
        """Send every held order whose intent is now durable, and every exit, in order; return how
        many went out.

        An order leaves at ``max(decision time, now_ns, venue clock)`` (event time, ns): an entry
        cannot reach the venue before its intent was on disk. The queue is first in, first out: an
        exit behind an entry still waiting for the store waits with it.
        """
        sent = 0
        durable = self.journal.durable_seq
        held = self._held
        while held and (held[0][0] <= durable or held[0][1].intent.is_exit):
            _, order, tracked, ts_ns = held.popleft()
            self.venue.submit_issued(order, tracked, max(ts_ns, now_ns, self.venue.now_ns))
            sent += 1
        return sent

    def cancel(self, order_id: int, ts_ns: int) -> bool:
        """Cancel ``order_id`` at ``ts_ns`` (ns): a held order at once (it never reaches the venue;
        its ``CANCELED`` status is journaled after its intent), otherwise as the venue does.

        Returns
        -------
        bool
            True when the order was canceled; False when it is unknown or already terminal.
        """
        for k, (_, _, tracked, _) in enumerate(self._held):
            if tracked.order_id == order_id:
                del self._held[k]
                tracked.transition(OrderStatus.ACCEPTED)
                tracked.transition(OrderStatus.CANCELED)
                try:
                    self.journal.put_nowait(StatusRecord.from_order(time.time_ns(), tracked))
                except (JournalOverflow, RuntimeError) as exc:
                    # Recovery settles an intent without an outcome as not found: true of an order never sent.
                    log.error("cancel of held order %d not journaled (%s)", order_id, exc)
                return True
        return self.venue.cancel(order_id, max(ts_ns, self.venue.now_ns))

    def open_orders(self) -> list[Order]:
        """Return the orders on the venue in flight, then the held ones: oldest first."""
        return self.venue.open_orders() + [tracked for _, _, tracked, _ in self._held]

    def has_open_orders(self) -> bool:
        """Return True while an order is held or in flight on the venue."""
        return bool(self._held) or self.venue.has_open_orders()

    def holds_orders(self) -> bool:
        """True while an order waits for its intent to be durable (:meth:`release` sends it)."""
        return bool(self._held)

    def order(self, order_id: int) -> Order:
        """Return order ``order_id``, held or sent.

        Raises
        ------
        KeyError
            If this adapter never issued ``order_id``.
        """
        try:
            return self.venue.order(order_id)
        except KeyError:
            for _, _, tracked, _ in self._held:
                if tracked.order_id == order_id:
                    return tracked
            raise

    def next_wake_ns(self) -> int | None:
        """The venue's: when an order sent to it reaches its matching engine (held orders wait for
        :meth:`release`, not for a time)."""
        return self.venue.next_wake_ns()

    def on_time(
        self, ts_ns: int, px: np.ndarray, sz: np.ndarray, n: np.ndarray, is_book_valid: bool = True
    ) -> list[Fill]:
        """The venue's :meth:`~SimulatedExchange.on_time`; held orders are not touched."""
        return self.venue.on_time(ts_ns, px, sz, n, is_book_valid)
