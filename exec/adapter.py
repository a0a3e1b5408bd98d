"""The execution adapter interface shared by the live, paper and simulated adapters."""

from __future__ import annotations

import abc

from scalper.exec.orders import Order
from scalper.risk.intent import ApprovedOrder


class ExecutionAdapter(abc.ABC):
    """Where approved orders go: a venue, a paper account, or the backtest's simulated exchange.

    Subclasses implement :meth:`_submit`; :meth:`submit` is the single public entry point and
    refuses anything the risk layer did not approve, so no adapter can forget the check.
    Timestamps are int64 ns since the epoch (event time in a backtest, wall clock live).
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
