"""Position, PnL and drawdown accounting for one instrument (average-cost method)."""

from __future__ import annotations

import math

import numpy as np

_FLAT_TOLERANCE = 1e-9
# A reducing fill whose size differs from |position| by less than this fraction of it closes the
# position: float sums of lot multiples (0.1 + 0.2 - 0.3) must not leave a dust position behind.


class Account:
    """Running position, PnL, equity and drawdown of one instrument, updated by fills and marks.

    Realized PnL uses the average-cost method: a reducing fill realizes
    ``closed_qty * (fill_price - avg_entry_price) * sign(position)``; an increasing fill moves the
    average entry price; a fill larger than the position closes it and opens the rest at the fill price.

    Attributes
    ----------
    initial_equity : float
        Equity at start, quote currency.
    position : float
        Signed position, base units (+ long, - short).
    avg_entry_price : float
        Average entry price of the open position, quote per base unit; 0 when flat.
    cash : float
        ``initial_equity`` minus what fills paid (``side * qty * price``) minus fees, quote currency.
    realized_pnl : float
        Closed-trade PnL, quote currency, gross of fees.
    fees_paid : float
        Sum of fill fees, quote currency (a maker rebate is a negative fee).
    unrealized_pnl : float
        ``position * (last_mark - avg_entry_price)``, quote currency.
    last_mark : float or None
        Last mid passed to :meth:`mark`, quote per base unit; None before the first mark, when
        fills are valued at their own price.
    peak_equity : float
        Highest equity seen after any fill or mark, quote currency.
    drawdown : float
        ``peak_equity - equity``, quote currency, >= 0.
    max_drawdown : float
        Largest drawdown seen, quote currency.
    """

    __slots__ = (
        "initial_equity",
        "position",
        "avg_entry_price",
        "cash",
        "realized_pnl",
        "fees_paid",
        "unrealized_pnl",
        "last_mark",
        "peak_equity",
        "drawdown",
        "max_drawdown",
    )

    def __init__(self, initial_equity: float) -> None:
        """Start flat with ``initial_equity`` (quote currency, finite, > 0) in cash.

        Raises
        ------
        ValueError
            If ``initial_equity`` is not finite and positive.
        """
        if not (math.isfinite(initial_equity) and initial_equity > 0.0):
            raise ValueError(f"initial_equity={initial_equity!r} is not a finite positive amount")
        self.initial_equity = float(initial_equity)
        self.position = 0.0
        self.avg_entry_price = 0.0
        self.cash = self.initial_equity
        self.realized_pnl = 0.0
        self.fees_paid = 0.0
        self.unrealized_pnl = 0.0
        self.last_mark: float | None = None
        self.peak_equity = self.initial_equity
        self.drawdown = 0.0
        self.max_drawdown = 0.0

    @property
    def equity(self) -> float:
        """Return ``initial_equity + realized_pnl - fees_paid + unrealized_pnl``, quote currency."""
        return self.initial_equity + self.realized_pnl - self.fees_paid + self.unrealized_pnl

    def restore(self, position: float, avg_entry_price: float, realized_pnl: float, fees_paid: float) -> None:
        """Set the state a journal recovered (base units, quote per unit, quote, quote); marks at the entry price.

        Raises
        ------
        ValueError
            If a value is not finite, or a position has no positive entry price.
        """
        values = (position, avg_entry_price, realized_pnl, fees_paid)
        if not all(math.isfinite(v) for v in values) or (position != 0.0 and not avg_entry_price > 0.0):
            raise ValueError(f"cannot restore account from {values!r}")
        self.position = float(position)
        self.avg_entry_price = float(avg_entry_price) if position != 0.0 else 0.0
        self.realized_pnl = float(realized_pnl)
        self.fees_paid = float(fees_paid)
        self.cash = self.initial_equity + self.realized_pnl - self.fees_paid - self.position * self.avg_entry_price
        self.unrealized_pnl = 0.0
        self.last_mark = None
        self.peak_equity = max(self.initial_equity, self.equity)
        self.drawdown = self.peak_equity - self.equity
        self.max_drawdown = self.drawdown

    def on_fill(self, side: int, qty: float, price: float, fee: float) -> None:
        """Apply one fill: move position, average entry price, cash, realized PnL and fees.

        Parameters
        ----------
        side : int
            +1 bought, -1 sold.
        qty : float
            Filled quantity, base units, finite, > 0.
        price : float
            Fill price, quote per base unit, finite, > 0.
        fee : float
            Fee charged for this fill, quote currency, finite (negative for a rebate).

        Raises
        ------
        ValueError
            If an argument is out of the ranges above; the account is left unchanged.
        """
        if side != 1 and side != -1:
            raise ValueError(f"fill side={side!r} is not +1 or -1")
        if not (math.isfinite(qty) and qty > 0.0):
            raise ValueError(f"fill qty={qty!r} is not a finite positive size")
        if not (math.isfinite(price) and price > 0.0):
            raise ValueError(f"fill price={price!r} is not a finite positive price")
        if not math.isfinite(fee):
            raise ValueError(f"fill fee={fee!r} is not finite")

        self.cash -= side * qty * price + fee
        self.fees_paid += fee
        held = abs(self.position)
        if held == 0.0 or (self.position > 0.0) == (side > 0):
            self.avg_entry_price = (held * self.avg_entry_price + qty * price) / (held + qty)
            self.position += side * qty
        else:
            long_sign = 1.0 if self.position > 0.0 else -1.0
            self.realized_pnl += min(qty, held) * (price - self.avg_entry_price) * long_sign
            left_over = qty - held
            if abs(left_over) <= _FLAT_TOLERANCE * held:
                self.position = 0.0
                self.avg_entry_price = 0.0
            elif left_over < 0.0:
                self.position = long_sign * -left_over
            else:
                self.position = side * left_over
                self.avg_entry_price = price
        self._revalue(price if self.last_mark is None else self.last_mark)

    def mark(self, mid: float) -> None:
        """Revalue the open position at ``mid`` (quote per base unit, finite, > 0) and update drawdown.

        Raises
        ------
        ValueError
            If ``mid`` is not finite and positive.
        """
        if not (math.isfinite(mid) and mid > 0.0):
            raise ValueError(f"mark mid={mid!r} is not a finite positive price")
        self.last_mark = mid
        self._revalue(mid)

    def mark_many(self, mids: np.ndarray) -> float:
        """Apply :meth:`mark` at each mid in turn, vectorised; return the largest drawdown along the way.

        The account afterwards equals that of ``for m in mids: mark(m)`` exactly (the same float
        operations, elementwise); the return value is what a per-mark kill switch would have seen.

        Parameters
        ----------
        mids : ndarray
            float64[k], quote per base unit, finite and > 0; k >= 1.

        Raises
        ------
        ValueError
            If a mid is not finite and positive; the account is left unchanged.
        """
        mids = np.asarray(mids, dtype=np.float64)
        bad = ~(np.isfinite(mids) & (mids > 0.0))
        if mids.size == 0 or bad.any():
            raise ValueError(f"mark mids must be finite positive prices, got {mids[bad][:3].tolist() or 'none'}")
        unrealized = self.position * (mids - self.avg_entry_price)
        equity = self.initial_equity + self.realized_pnl - self.fees_paid + unrealized
        peak = np.maximum.accumulate(np.maximum(equity, self.peak_equity))
        drawdown = peak - equity
        worst = float(drawdown.max())
        self.last_mark = float(mids[-1])
        self.unrealized_pnl = float(unrealized[-1])
        self.peak_equity = float(peak[-1])
        self.drawdown = float(drawdown[-1])
        if worst > self.max_drawdown:
            self.max_drawdown = worst
        return worst

    def _revalue(self, price: float) -> None:
        # One place updates unrealized PnL, peak and drawdown so fills and marks cannot disagree.
        self.unrealized_pnl = self.position * (price - self.avg_entry_price)
        equity = self.equity
        if equity > self.peak_equity:
            self.peak_equity = equity
        self.drawdown = self.peak_equity - equity
        if self.drawdown > self.max_drawdown:
            self.max_drawdown = self.drawdown
