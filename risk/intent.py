"""What the engine asks for (an order intent) and what the risk layer answers (approved or refused).

The execution adapter accepts only :class:`ApprovedOrder`, which only the risk layer makes, so no
order can bypass the checks (the idea of barter-rs ``RiskApproved[Order]``).
"""

from __future__ import annotations

import enum
from collections.abc import Callable
from dataclasses import dataclass
from typing import NamedTuple


class TradingState(enum.IntEnum):
    """Trading state of one instrument: what new orders the risk layer lets through."""

    ACTIVE = 0
    """Entries and exits allowed."""
    REDUCING_ONLY = 1
    """Only orders that shrink the position (the drawdown kill switch lands here)."""
    HALTED = 2
    """No orders at all."""


class RejectReason(enum.IntEnum):
    """Why the risk layer refused an order intent (one counter each)."""

    KELLY_NON_POSITIVE = 1
    EDGE_BELOW_FEES = 2
    MAX_POSITION = 3
    MAX_ORDER_NOTIONAL = 4
    MAX_ORDERS_PER_SECOND = 5
    STALE_BOOK = 6
    MAX_SPREAD = 7
    BOOK_INVALID = 8
    REDUCING_ONLY = 9
    HALTED = 10
    EXIT_EXCEEDS_POSITION = 11
    INVALID_INTENT = 12
    RISK_CHECK_ERROR = 13
    BELOW_MIN_PROBABILITY = 14


class TimeInForce(enum.IntEnum):
    """How long an order may rest (values as ``scalper.exec.passive``'s ``TIF_*``)."""

    GTC = 0
    """A limit order: takes what crosses on arrival, rests the rest at its price."""
    GTX = 1
    """Post-only: refused (expired) if it would cross on arrival, else rests as maker."""
    IOC = 2
    """Immediate or cancel: takes what crosses on arrival, the rest is canceled."""


REASON_OF_CODE = {int(r): r for r in RejectReason}
"""The reason of each code the compiled risk rules return (``scalper.risk.kelly``, ``scalper.risk.limits``)."""


class OrderIntent(NamedTuple):
    """An order the engine wants to send: a limit order, a marketable IOC unless ``tif`` says otherwise.

    Attributes
    ----------
    ts_ns : int
        Decision time, ns since the epoch (event time in a backtest, wall clock live).
    side : int
        +1 buy, -1 sell.
    qty : float
        Base units, > 0, a multiple of the lot size.
    limit_price : float
        Worst acceptable price, quote currency (above the ask for a buy, below the bid for a sell).
    is_exit : bool
        True when the order only reduces the current position.
    reason : str
        Why it was sent: ``"entry"``, ``"take_profit"``, ``"stop_loss"``, ``"time_stop"``,
        ``"end_of_data"`` or ``"shutdown"``.
    tif : int
        :class:`TimeInForce` value; ``IOC`` (the default) for every taker order, ``GTX`` for the posted
        entries and take-profits of maker mode.

    A NamedTuple (immutable, and cheaper to build than a frozen dataclass): the engine makes one at
    nearly every decision.
    """

    ts_ns: int
    side: int
    qty: float
    limit_price: float
    is_exit: bool
    reason: str
    tif: int = TimeInForce.IOC


_APPROVAL_TOKEN = object()


@dataclass(frozen=True, slots=True)
class ApprovedOrder:
    """An :class:`OrderIntent` that passed every pre-trade check. Made only by the risk layer."""

    intent: OrderIntent
    approval_id: int
    _token: object

    def __post_init__(self) -> None:
        if self._token is not _APPROVAL_TOKEN:
            raise TypeError("ApprovedOrder is made only by the risk layer (scalper.risk)")


def _approve(intent: OrderIntent, approval_id: int) -> ApprovedOrder:
    # The single place an ApprovedOrder is created; risk/limits.py calls it after all checks pass.
    return ApprovedOrder(intent, approval_id, _APPROVAL_TOKEN)


class Rejection:
    """A refused :class:`OrderIntent` and its enumerated reason; ``detail`` says what was exceeded.

    ``detail`` may be given as a function that builds the text, called when the text is first read:
    most decisions end in a sizing refusal that nobody reads, and formatting its floats would be
    most of the cost of refusing. The function must capture the values it reports, not read live state.
    """

    __slots__ = ("intent", "reason", "_detail")

    def __init__(self, intent: OrderIntent, reason: RejectReason, detail: str | Callable[[], str] = "") -> None:
        self.intent = intent
        self.reason = reason
        self._detail = detail

    @property
    def detail(self) -> str:
        if not isinstance(self._detail, str):
            self._detail = self._detail()
        return self._detail

    def __repr__(self) -> str:
        return f"Rejection(intent={self.intent!r}, reason={self.reason!r}, detail={self.detail!r})"
