"""The execution adapter interface: everything the engine core and the backtest driver call on a venue.

:class:`ExecutionAdapter` is the one contract the live, paper and simulated adapters implement, and
``tests/unit/test_exec_contract.py`` holds every adapter to it. Two groups of calls:

* order entry: :meth:`~ExecutionAdapter.submit`, :meth:`~ExecutionAdapter.cancel`,
  :meth:`~ExecutionAdapter.open_orders`, :meth:`~ExecutionAdapter.has_open_orders`,
  :meth:`~ExecutionAdapter.order`;
* the clock: :meth:`~ExecutionAdapter.next_wake_ns` and :meth:`~ExecutionAdapter.on_time`. The core
  is event-driven, so a venue learns that time passed only when the core tells it: the core asks
  when the venue next needs to run (an order reaching a simulated matching engine) and calls
  :meth:`~ExecutionAdapter.on_time` then, with the book as it stands. A venue whose answers come
  from outside the process (a live exchange) returns None from ``next_wake_ns`` and, from
  ``on_time``, the fills it received since the previous call.

Units: times are int64 ns since the epoch on the core's clock (event time: replayed in a backtest,
the feed's live); book prices are integer ticks, sizes and quantities base units, limit prices quote currency.
"""

from __future__ import annotations

import abc

import numpy as np

from scalper.exec.orders import Fill, Order
from scalper.risk.intent import ApprovedOrder


class ExecutionAdapter(abc.ABC):
    """Where approved orders go: a venue, a paper account, or the backtest's simulated exchange.

    Subclasses implement :meth:`_submit`; :meth:`submit` is the single public entry point and
    refuses anything the risk layer did not approve, so no adapter can forget the check.
    Timestamps are int64 ns since the epoch on the core's clock (see the module docstring). The order
    :meth:`submit` returns is the one the adapter tracks: its status and fills change in place, and
    :meth:`order` and :meth:`open_orders` return that same object.
    """

    def submit(self, order: ApprovedOrder, ts_ns: int) -> Order:
        """Send an approved order at ``ts_ns`` and return its tracked :class:`Order`.

        Parameters
        ----------
        order : ApprovedOrder
            The risk layer's approval of an :class:`~scalper.risk.intent.OrderIntent`
            (quantity in base units, limit price in quote currency).
        ts_ns : int
            Send time, ns since the epoch.

        Returns
        -------
        Order
            The new order, status ``NEW`` until the venue answers.

        Raises
        ------
        TypeError
            If ``order`` is not an :class:`ApprovedOrder` (a raw intent, for one).
        """
        if not isinstance(order, ApprovedOrder):
            raise TypeError(f"execution adapters accept only ApprovedOrder, got {type(order).__name__}")
        return self._submit(order, ts_ns)

    @abc.abstractmethod
    def _submit(self, order: ApprovedOrder, ts_ns: int) -> Order:
        """Send ``order`` at ``ts_ns`` (ns); called by :meth:`submit` after the approval check."""

    @abc.abstractmethod
    def cancel(self, order_id: int, ts_ns: int) -> bool:
        """Request cancellation of ``order_id`` at ``ts_ns`` (ns since the epoch).

        Returns
        -------
        bool
            True when the request was taken, False when the order is unknown or already terminal.
        """

    @abc.abstractmethod
    def open_orders(self) -> list[Order]:
        """Return the orders not yet in a terminal status, oldest first."""

    def has_open_orders(self) -> bool:
        """Return True when some order is not yet in a terminal status (adapters may answer faster)."""
        return bool(self.open_orders())

    @abc.abstractmethod
    def order(self, order_id: int) -> Order:
        """Return the tracked order ``order_id``.

        Raises
        ------
        KeyError
            If the adapter never issued ``order_id``.
        """

    @abc.abstractmethod
    def next_wake_ns(self) -> int | None:
        """Return when (ns since the epoch) :meth:`on_time` must next be called, or None for no time.

        The core calls :meth:`on_time` at the first event at or after this time (the backtest driver
        stops its replay there). A venue not driven by the engine's clock returns None.
        """

    @abc.abstractmethod
    def on_time(
        self, ts_ns: int, px: np.ndarray, sz: np.ndarray, n: np.ndarray, is_book_valid: bool = True
    ) -> list[Fill]:
        """Advance the venue to ``ts_ns`` with the given book as the market; return the fills made meanwhile.

        Parameters
        ----------
        ts_ns : int
            Current time, ns since the epoch; must not decrease between calls.
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
            The fills since the previous call, in execution order (empty when there were none). The
            arrays are read, never written.

        Raises
        ------
        ValueError
            If ``ts_ns`` is earlier than a time the venue was already given (an adapter that keeps a
            clock; the simulated exchange does).
        """


class OrderRecords(ExecutionAdapter):
    """An adapter that keeps every order it issued and its fills in two dicts by order id.

    Subclasses fill ``_orders`` (id -> :class:`Order`) and ``_fills`` (id -> list of :class:`Fill`) and
    get :meth:`order` and :meth:`fills` from here (the simulated venues of the backtest).
    """

    _orders: dict[int, Order]
    _fills: dict[int, list[Fill]]

    def order(self, order_id: int) -> Order:
        """Return order ``order_id``.

        Raises
        ------
        KeyError
            If this adapter never issued ``order_id``.
        """
        try:
            return self._orders[order_id]
        except KeyError:
            raise KeyError(f"unknown order id {order_id}") from None

    def fills(self, order_id: int) -> list[Fill]:
        """Return the fills of ``order_id`` so far, in execution order.

        Raises
        ------
        KeyError
            If this adapter never issued ``order_id``.
        """
        try:
            return list(self._fills[order_id])
        except KeyError:
            raise KeyError(f"unknown order id {order_id}") from None
