"""Orders, their state machine, and fills.

Every adapter (simulated, paper, venue) moves an :class:`Order` through the same explicit table,
:data:`TRANSITIONS`, so the journal and the position rebuild see one vocabulary of order events.
"""

from __future__ import annotations

import enum
import math
from dataclasses import dataclass
from types import MappingProxyType

# Relative slack on the overfill check: sums of float fill quantities drift by a few ulps
# (0.1 + 0.2 != 0.3), which must not read as an overfill.
_OVERFILL_TOL = 1e-9


class OrderStatus(enum.IntEnum):
    """Lifecycle state of an order at the venue."""

    NEW = 0
    """Sent (or about to be), not yet acknowledged by the venue."""
    ACCEPTED = 1
    """Acknowledged by the venue, nothing filled yet."""
    PARTIALLY_FILLED = 2
    """Some but not all of the quantity filled; the rest may still fill or be canceled."""
    FILLED = 3
    """The whole quantity filled. Terminal."""
    CANCELED = 4
    """Withdrawn, by request or by the venue (an IOC remainder). Terminal."""
    REJECTED = 5
    """Refused by the venue; nothing filled. Terminal."""
    EXPIRED = 6
    """Ended by its time in force: a post-only order that would have crossed on arrival (Binance's GTX
    answer, hftbacktest's ``Status::Expired``), or an accepted order whose time ran out. Terminal."""

    @property
    def is_terminal(self) -> bool:
        """Return True when no transition leaves this state."""
        return not TRANSITIONS[self]


TRANSITIONS: MappingProxyType[OrderStatus, frozenset[OrderStatus]] = MappingProxyType(
    {
        OrderStatus.NEW: frozenset({OrderStatus.ACCEPTED, OrderStatus.REJECTED, OrderStatus.EXPIRED}),
        OrderStatus.ACCEPTED: frozenset(
            {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.EXPIRED}
        ),
        OrderStatus.PARTIALLY_FILLED: frozenset(
            {OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED, OrderStatus.CANCELED}
        ),
        OrderStatus.FILLED: frozenset(),
        OrderStatus.CANCELED: frozenset(),
        OrderStatus.REJECTED: frozenset(),
        OrderStatus.EXPIRED: frozenset(),
    }
)
"""Legal moves: ``TRANSITIONS[from_status]`` is the set of statuses an order may go to next."""


class InvalidTransition(ValueError):
    """An order was asked to move to a status the :data:`TRANSITIONS` table does not allow."""

    def __init__(self, order_id: int, from_status: OrderStatus, to_status: OrderStatus) -> None:
        self.order_id = order_id
        self.from_status = from_status
        self.to_status = to_status
        super().__init__(f"order {order_id}: illegal transition {from_status.name} -> {to_status.name}")


@dataclass(frozen=True, slots=True)
class Fill:
    """One execution against one price level.

    Attributes
    ----------
    order_id : int
        The adapter's id of the filled order.
    ts_ns : int
        Execution time, ns since the epoch (event time in a backtest).
    side : int
        +1 buy, -1 sell.
    qty : float
        Filled quantity, base units, > 0.
    price : float
        Execution price, quote currency per base unit, > 0.
    fee : float
        Fee charged for this fill, quote currency; >= 0 for a taker fill, negative for a maker fill
        on a venue that pays a rebate.
    is_maker : bool
        True when the order provided liquidity (maker fee), False when it took it (taker fee).
    reason : str
        The order's reason (``"entry"``, ``"stop_loss"``, ...), carried for the journal and reports.

    Raises
    ------
    ValueError
        If ``qty`` or ``price`` is not positive, ``fee`` is not finite, or a taker fill's ``fee`` is
        negative (only liquidity providers earn rebates).
    """

    order_id: int
    ts_ns: int
    side: int
    qty: float
    price: float
    fee: float
    is_maker: bool
    reason: str

    def __post_init__(self) -> None:
        if not (self.qty > 0.0 and self.price > 0.0 and math.isfinite(self.fee) and (self.fee >= 0.0 or self.is_maker)):
            raise ValueError(
                f"fill of order {self.order_id} needs qty > 0, price > 0, a finite fee, >= 0 unless a maker rebate;"
                f" got qty={self.qty}, price={self.price}, fee={self.fee}, is_maker={self.is_maker}"
            )


@dataclass(slots=True)
class Order:
    """An order as the adapter tracks it.

    Change it only through :meth:`transition` and :meth:`apply_fill`, which enforce the table.

    Attributes
    ----------
    order_id : int
        Id assigned by the adapter, unique within it.
    client_ts_ns : int
        Decision time of the intent behind the order, ns since the epoch.
    side : int
        +1 buy, -1 sell.
    qty : float
        Ordered quantity, base units.
    limit_price : float
        Worst acceptable price, quote currency.
    reason : str
        Why it was sent (see :class:`scalper.risk.intent.OrderIntent`).
    is_exit : bool
        True when the order only reduces the position.
    status : OrderStatus
        Current lifecycle state.
    filled_qty : float
        Quantity filled so far, base units.
    avg_fill_price : float
        Volume-weighted average fill price, quote currency; 0.0 while nothing is filled.
    fees : float
        Fees paid so far, quote currency.
    """

    order_id: int
    client_ts_ns: int
    side: int
    qty: float
    limit_price: float
    reason: str
    is_exit: bool
    status: OrderStatus = OrderStatus.NEW
    filled_qty: float = 0.0
    avg_fill_price: float = 0.0
    fees: float = 0.0

    def transition(self, new_status: OrderStatus) -> None:
        """Move the order to ``new_status``.

        Raises
        ------
        InvalidTransition
            If :data:`TRANSITIONS` has no edge from the current status to ``new_status``.
        """
        if new_status not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.order_id, self.status, new_status)
        self.status = new_status

    def apply_fill(self, fill: Fill, new_status: OrderStatus) -> None:
        """Add ``fill`` to the filled quantity, average price and fees, then move to ``new_status``.

        The caller states the resulting status (``PARTIALLY_FILLED`` or ``FILLED``) because only it
        knows completion exactly: the simulator counts whole lots, a venue reports its own status.
        Nothing is changed when an error is raised.

        Raises
        ------
        ValueError
            If ``fill`` is for another order or side, ``new_status`` is not a fill status, or the
            fill would take ``filled_qty`` above ``qty`` (beyond float rounding).
        InvalidTransition
            If the order cannot move to ``new_status`` from its current status.
        """
        if fill.order_id != self.order_id or fill.side != self.side:
            raise ValueError(
                f"fill for order {fill.order_id} side {fill.side} applied to order {self.order_id} side {self.side}"
            )
        if new_status not in (OrderStatus.PARTIALLY_FILLED, OrderStatus.FILLED):
            raise ValueError(f"a fill leads to PARTIALLY_FILLED or FILLED, not {new_status.name}")
        if new_status not in TRANSITIONS[self.status]:
            raise InvalidTransition(self.order_id, self.status, new_status)
        total = self.filled_qty + fill.qty
        if total > self.qty * (1.0 + _OVERFILL_TOL):
            raise ValueError(f"order {self.order_id}: fill of {fill.qty} overfills ({total} > {self.qty})")
        self.avg_fill_price = (self.avg_fill_price * self.filled_qty + fill.price * fill.qty) / total
        self.filled_qty = total
        self.fees += fill.fee
        self.status = new_status
