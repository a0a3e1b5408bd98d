"""Simulated exchange for replay backtests: constant latency, marketable IOC limit orders, taker fills.

Backtest assumptions (why a backtest and live trading can differ):

* Latency is one constant: an order sent at ``ts_ns`` reaches the matching engine at
  ``ts_ns + latency_ns``; venue acknowledgements are not delayed further.
* An order fills against the book passed to :meth:`SimulatedExchange.on_time` at or after its
  arrival, *as it stands*: every visible level, no hidden liquidity, no other takers.
* No market impact: the book arrays are never modified. Liquidity one order takes is still there for
  the next, including another order arriving in the same call.
* Every fill is a taker fill at its level's price; whole lots only, and a level holding less than one
  lot is skipped.
* A cancel sent before the order arrives always wins. This is optimistic: a real cancel travels
  behind the order, so a real IOC is never caught in flight.
"""

from __future__ import annotations

import heapq
import math
from collections.abc import Callable

import numpy as np

from scalper.exec.adapter import OrderRecords
from scalper.exec.fees import taker_fee
from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.lowlevel.book import ASK, BID
from scalper.risk.intent import ApprovedOrder

# Relative slack when turning float prices and sizes into whole ticks and lots: on-grid values such as
# 0.3 / 0.1 = 2.9999999999999996 must not lose a unit to their binary representation.
_GRID_TOL = 1e-10


def _floor_units(x: float) -> int:
    return math.floor(x + _GRID_TOL * max(1.0, abs(x)))


def _ceil_units(x: float) -> int:
    return math.ceil(x - _GRID_TOL * max(1.0, abs(x)))


class SimulatedExchange(OrderRecords):
    """An exchange that executes marketable IOC limit orders against a replayed L2 book.

    Orders wait ``latency_ns`` after :meth:`submit`, then :meth:`on_time` accepts them and walks the
    book: a buy takes asks from the best up while the ask price is at or below the limit, a sell takes
    bids from the best down while the bid is at or above it. Each level touched gives one taker
    :class:`Fill` at that level's price. What is left of the order is canceled (IOC). An order whose
    side is not +1/-1, whose quantity is not a positive whole number of lots, or whose limit price is
    not a positive finite number is rejected on arrival, as a venue's filters would.

    The time arguments of :meth:`submit`, :meth:`cancel` and :meth:`on_time` must not decrease.
    Every order and fill is kept for the life of the exchange (one backtest run). See the module
    docstring for the backtest assumptions this model makes.

    Parameters
    ----------
    latency_ns : int
        Send-to-matching-engine delay, ns, >= 0.
    taker_fee_bps : float
        Taker fee, bps of fill notional, >= 0.
    tick_size : float
        Price of one tick, quote currency, > 0 (book prices are integer ticks).
    lot_size : float
        Smallest tradable quantity, base units, > 0.
    first_order_id : int
        Id of the first order (a restarted daemon continues after the journal's last id).
    keep_history : bool
        Keep finished orders and their fills (backtest reports); False forgets them once terminal
        and only counts them, so a long-running paper venue does not grow.
    on_terminal : callable, optional
        Called with each order as it reaches a terminal status (the daemon journals it).

    Raises
    ------
    ValueError
        If a parameter is out of range.
    """

    def __init__(
        self,
        latency_ns: int,
        taker_fee_bps: float,
        tick_size: float,
        lot_size: float,
        first_order_id: int = 1,
        keep_history: bool = True,
        on_terminal: Callable[[Order], object] | None = None,
    ) -> None:
        if latency_ns < 0 or not taker_fee_bps >= 0.0 or not tick_size > 0.0 or not lot_size > 0.0:
            raise ValueError(
                "SimulatedExchange needs latency_ns >= 0, taker_fee_bps >= 0, tick_size > 0,"
                f" lot_size > 0; got {latency_ns}, {taker_fee_bps}, {tick_size}, {lot_size}"
            )
        self.latency_ns = int(latency_ns)
        self.taker_fee_bps = float(taker_fee_bps)
        self.tick_size = float(tick_size)
        self.lot_size = float(lot_size)
        self._orders: dict[int, Order] = {}
        self._fills: dict[int, list[Fill]] = {}
        # Orders in flight, in submit order; a cancel removes the order here and leaves its heap
        # entry to be skipped when popped, which is cheaper than re-heapifying.
        self._pending: dict[int, Order] = {}
        self._arrivals: list[tuple[int, int]] = []
        self._now_ns: int | None = None
        self._next_id = int(first_order_id)
        # A long-running paper venue forgets finished orders (memory stays flat) and counts them.
        self._keep_history = keep_history
        self._retired: dict[OrderStatus, int] = dict.fromkeys(OrderStatus, 0)
        self._on_terminal = on_terminal

    def _advance(self, ts_ns: int) -> None:
        # A clock running backwards means the driver replays out of order; fills would then be
        # matched against the wrong book, so stop instead of guessing.
        if self._now_ns is not None and ts_ns < self._now_ns:
            raise ValueError(f"time went backwards: {ts_ns} ns < {self._now_ns} ns")
        self._now_ns = ts_ns

    def _submit(self, order: ApprovedOrder, ts_ns: int) -> Order:
        """Register ``order`` as ``NEW``, arriving at ``ts_ns + latency_ns``.

        Raises
        ------
        ValueError
            If ``ts_ns`` is earlier than the last time this exchange was given.
        """
        self._advance(ts_ns)
        intent = order.intent
        tracked = Order(
            order_id=self._next_id,
            client_ts_ns=intent.ts_ns,
            side=intent.side,
            qty=intent.qty,
            limit_price=intent.limit_price,
            reason=intent.reason,
            is_exit=intent.is_exit,
        )
        self._next_id += 1
        self._orders[tracked.order_id] = tracked
        self._fills[tracked.order_id] = []
        self._pending[tracked.order_id] = tracked
        # order_id breaks arrival ties in submit order.
        heapq.heappush(self._arrivals, (ts_ns + self.latency_ns, tracked.order_id))
        return tracked

    def submit_issued(self, order: ApprovedOrder, tracked: Order, ts_ns: int) -> Order:
        """Send ``order`` at ``ts_ns`` (ns) as ``tracked``, an :class:`Order` a wrapping adapter already
        issued for it (:class:`~scalper.exec.journaled.JournaledVenue` returns its order at submit and
        sends it later); this exchange then tracks that very object, and its next ids follow it.

        Returns
        -------
        Order
            ``tracked``, registered as in flight.

        Raises
        ------
        TypeError
            If ``order`` is not an :class:`ApprovedOrder`.
        ValueError
            If ``tracked.order_id`` is below :attr:`next_order_id` (ids only increase), ``tracked`` is
            not ``NEW``, or ``ts_ns`` is earlier than the last time this exchange was given.
        """
        if not isinstance(order, ApprovedOrder):
            raise TypeError(f"execution adapters accept only ApprovedOrder, got {type(order).__name__}")
        if tracked.order_id < self._next_id or tracked.status is not OrderStatus.NEW:
            raise ValueError(
                f"order {tracked.order_id} ({tracked.status.name}) cannot be sent: ids from {self._next_id} on,"
                " status NEW"
            )
        self._advance(ts_ns)
        # As in _submit, written out there: the per-order path of the backtest makes no extra call.
        self._next_id = tracked.order_id + 1
        self._orders[tracked.order_id] = tracked
        self._fills[tracked.order_id] = []
        self._pending[tracked.order_id] = tracked
        heapq.heappush(self._arrivals, (ts_ns + self.latency_ns, tracked.order_id))
        return tracked

    def cancel(self, order_id: int, ts_ns: int) -> bool:
        """Cancel ``order_id`` at ``ts_ns`` (ns) if it has not reached the matching engine yet.

        The order moves NEW -> ACCEPTED -> CANCELED: the state table lets a venue cancel only orders
        it has accepted, and keeping one path into CANCELED means the journal sees the same events
        for every cancel. Arrived IOC orders are already terminal, so they cannot be canceled.

        Returns
        -------
        bool
            True when the order was canceled; False when it is unknown or already terminal.

        Raises
        ------
        ValueError
            If ``ts_ns`` is earlier than the last time this exchange was given.
        """
        self._advance(ts_ns)
        tracked = self._pending.pop(order_id, None)
        if tracked is None:
            return False
        tracked.transition(OrderStatus.ACCEPTED)
        tracked.transition(OrderStatus.CANCELED)
        self._retire(tracked)
        return True

    @property
    def now_ns(self) -> int:
        """The latest time this exchange was given (ns), or 0 before any."""
        return self._now_ns or 0

    @property
    def next_order_id(self) -> int:
        """The id the next submitted order gets."""
        return self._next_id

    def _retire(self, tracked: Order) -> None:
        if self._on_terminal is not None:
            self._on_terminal(tracked)
        if not self._keep_history:
            self._retired[tracked.status] += 1
            del self._orders[tracked.order_id]
            del self._fills[tracked.order_id]

    def open_orders(self) -> list[Order]:
        """Return the orders still in flight (status ``NEW``), in submit order."""
        return list(self._pending.values())

    def has_open_orders(self) -> bool:
        """Return True when an order is still in flight (no list is built: the engine asks per decision)."""
        return bool(self._pending)

    def status_counts(self) -> dict[OrderStatus, int]:
        """Return how many orders are in each status (every status present, zero included)."""
        counts = dict(self._retired)
        for tracked in self._orders.values():
            counts[tracked.status] += 1
        return counts

    def next_wake_ns(self) -> int | None:
        """Return the earliest arrival time (ns) of an order in flight, or None when none is.

        The backtest driver calls :meth:`on_time` at this time, with the book as it stands then.
        """
        while self._arrivals and self._arrivals[0][1] not in self._pending:
            heapq.heappop(self._arrivals)
        return self._arrivals[0][0] if self._arrivals else None

    def on_time(
        self, ts_ns: int, px: np.ndarray, sz: np.ndarray, n: np.ndarray, is_book_valid: bool = True
    ) -> list[Fill]:
        """Execute every order that has arrived by ``ts_ns``, in arrival order, against the given book.

        The book arrays are read, never written (no market impact). Fills are stamped ``ts_ns``, the
        time of the book they matched. While the book is not valid (crossed or locked, as in a
        pre-open auction, or being resynced) an arriving IOC order is accepted and canceled unfilled:
        there is no continuous-trading price to fill it at.

        Parameters
        ----------
        ts_ns : int
            Current time, ns since the epoch.
        px : numpy.ndarray
            int64[2, L] level prices in ticks; row 0 bids best first, row 1 asks best first.
        sz : numpy.ndarray
            float64[2, L] level sizes, base units.
        n : numpy.ndarray
            int64[2] number of levels held per side.
        is_book_valid : bool
            False while the book is crossed, locked or resyncing.

        Returns
        -------
        list of Fill
            The fills made in this call, in execution order (empty when nothing arrived).

        Raises
        ------
        ValueError
            If ``ts_ns`` is earlier than the last time this exchange was given.
        """
        self._advance(ts_ns)
        out: list[Fill] = []
        while self._arrivals and self._arrivals[0][0] <= ts_ns:
            _, order_id = heapq.heappop(self._arrivals)
            tracked = self._pending.pop(order_id, None)
            if tracked is None:
                continue
            if is_book_valid:
                self._execute(tracked, ts_ns, px, sz, n, out)
            else:
                tracked.transition(OrderStatus.ACCEPTED)
                tracked.transition(OrderStatus.CANCELED)
            self._retire(tracked)
        return out

    def _order_lots(self, tracked: Order) -> int:
        # Number of whole lots in the order, or 0 when its quantity is off the lot grid.
        x = tracked.qty / self.lot_size
        lots = round(x) if math.isfinite(x) else 0
        return lots if lots >= 1 and abs(x - lots) <= _GRID_TOL * lots else 0

    def _execute(
        self,
        tracked: Order,
        ts_ns: int,
        px: np.ndarray,
        sz: np.ndarray,
        n: np.ndarray,
        out: list[Fill],
    ) -> None:
        # Accept or reject the arrived order, then walk one side of the book as an IOC taker.
        lots_left = self._order_lots(tracked)
        limit = tracked.limit_price
        if tracked.side not in (1, -1) or lots_left == 0 or not (math.isfinite(limit) and limit > 0.0):
            tracked.transition(OrderStatus.REJECTED)
            return
        tracked.transition(OrderStatus.ACCEPTED)
        is_buy = tracked.side == 1
        row = ASK if is_buy else BID
        limit_units = limit / self.tick_size
        limit_tick = _floor_units(limit_units) if is_buy else _ceil_units(limit_units)
        fills = self._fills[tracked.order_id]
        for i in range(int(n[row])):
            level_tick = int(px[row, i])
            if (level_tick > limit_tick) if is_buy else (level_tick < limit_tick):
                break
            lots = min(lots_left, _floor_units(float(sz[row, i]) / self.lot_size))
            if lots <= 0:
                continue
            lots_left -= lots
            price = level_tick * self.tick_size
            qty = lots * self.lot_size
            fill = Fill(
                order_id=tracked.order_id,
                ts_ns=ts_ns,
                side=tracked.side,
                qty=qty,
                price=price,
                fee=taker_fee(price * qty, self.taker_fee_bps),
                is_maker=False,
                reason=tracked.reason,
            )
            tracked.apply_fill(fill, OrderStatus.FILLED if lots_left == 0 else OrderStatus.PARTIALLY_FILLED)
            fills.append(fill)
            out.append(fill)
            if lots_left == 0:
                return
        tracked.transition(OrderStatus.CANCELED)
