"""Pre-trade checks, the drawdown kill switch and the operator halt for one instrument."""

from __future__ import annotations

import functools
import math
from collections import deque
from collections.abc import Callable

import numpy as np

from scalper.risk.accounting import Account
from scalper.risk.config import RiskConfig
from scalper.risk.intent import (
    ApprovedOrder,
    OrderIntent,
    Rejection,
    RejectReason,
    TradingState,
    _approve,
)
from scalper.risk.kelly import (
    expected_edge_bps,
    kelly_fraction_star,
    kelly_size,
    kelly_size_with_reason,
)
from scalper.risk.lots import exceeds, is_lot_multiple
from scalper.risk.market import MarketState

_NS_PER_MS = 1_000_000
_RATE_WINDOW_NS = 1_000_000_000


class RiskManager:
    """Size entries and approve or refuse order intents for one instrument; keep its account.

    Every refusal is a :class:`Rejection` with an enumerated reason and is counted in
    ``reject_counts``; every approval is an :class:`ApprovedOrder`, the only thing the execution
    adapter accepts. A check that raises refuses the order (fail closed).

    Parameters
    ----------
    cfg : RiskConfig
        Kelly sizing parameters and limits.
    tick_size : float
        Price tick, quote currency, > 0.
    lot_size : float
        Quantity lot, base units, > 0; every order quantity must be a multiple of it.
    fee_bps : float
        Taker fee per side, bps of notional, >= 0.

    Raises
    ------
    ValueError
        If ``tick_size``, ``lot_size`` or ``fee_bps`` is out of range or not finite.

    Attributes
    ----------
    account : Account
        Position, PnL and drawdown, fed by :meth:`on_fill` and :meth:`mark`.
    state : TradingState
        ``ACTIVE`` at start; the kill switch moves it to ``REDUCING_ONLY``; :meth:`set_state` sets it.
    reject_counts : dict[RejectReason, int]
        Refusals so far per reason, every reason present from the start.
    approved_count : int
        Orders approved so far; also the last ``approval_id`` handed out.
    """

    def __init__(self, cfg: RiskConfig, tick_size: float, lot_size: float, fee_bps: float) -> None:
        if not (math.isfinite(tick_size) and tick_size > 0.0):
            raise ValueError(f"tick_size={tick_size!r} is not a finite positive price")
        if not (math.isfinite(lot_size) and lot_size > 0.0):
            raise ValueError(f"lot_size={lot_size!r} is not a finite positive size")
        if not (math.isfinite(fee_bps) and fee_bps >= 0.0):
            raise ValueError(f"fee_bps={fee_bps!r} is not a finite non-negative fee")
        self.cfg = cfg
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.fee_bps = fee_bps
        self.account = Account(cfg.initial_equity)
        self.state = TradingState.ACTIVE
        self.reject_counts: dict[RejectReason, int] = {reason: 0 for reason in RejectReason}
        self.approved_count = 0
        # Event times of the entries approved in the trailing second; never longer than the limit.
        self._entry_approvals_ns: deque[int] = deque(maxlen=cfg.max_orders_per_second)

    def size_entry(self, p: float, price: float) -> float:
        """Return the fractional-Kelly entry size at the current equity and position.

        Parameters
        ----------
        p : float
            Model probability that the take-profit is hit before the stop-loss, in [0, 1].
        price : float
            Entry (limit) price, quote currency per base unit, > 0.

        Returns
        -------
        float
            Size, base units, a non-negative multiple of the lot size (see
            :func:`scalper.risk.kelly.kelly_size`).

        Raises
        ------
        ValueError
            If ``p`` or ``price`` is out of range or the equity is not finite.
        """
        return kelly_size(
            p, price, self.account.equity, self.cfg, self.fee_bps, self.lot_size, abs(self.account.position)
        )

    def entry_intent(self, ts_ns: int, side: int, p: float, limit_price: float) -> OrderIntent | Rejection:
        """Size an entry and return its intent, or a counted rejection when the size is zero.

        The intent still has to pass :meth:`check`. A zero size is refused as
        ``BELOW_MIN_PROBABILITY``, ``KELLY_NON_POSITIVE``, ``EDGE_BELOW_FEES``, ``MAX_POSITION`` or
        ``MAX_ORDER_NOTIONAL``; bad inputs (``p`` outside [0, 1], NaN) give ``RISK_CHECK_ERROR``.

        Parameters
        ----------
        ts_ns : int
            Decision time, ns since the epoch, UTC.
        side : int
            +1 buy, -1 sell.
        p : float
            Model probability that the take-profit is hit before the stop-loss, in [0, 1].
        limit_price : float
            Worst acceptable price, quote currency per base unit; the size is computed at it.

        Returns
        -------
        OrderIntent or Rejection
            An entry intent (``is_exit=False``, ``reason="entry"``) with a positive lot-multiple qty,
            or the counted refusal, whose intent carries ``qty=0.0``.
        """
        try:
            qty, reason = kelly_size_with_reason(
                p,
                limit_price,
                self.account.equity,
                self.cfg,
                self.fee_bps,
                self.lot_size,
                abs(self.account.position),
            )
        except Exception as exc:  # fail closed: bad model output or prices must not raise into the loop
            intent = OrderIntent(ts_ns, side, 0.0, limit_price, False, "entry")
            return self._reject(intent, RejectReason.RISK_CHECK_ERROR, repr(exc))
        intent = OrderIntent(ts_ns, side, qty, limit_price, False, "entry")
        if reason is None:
            return intent
        equity, position = self.account.equity, self.account.position
        return self._reject(intent, reason, functools.partial(self._sizing_detail, reason, p, limit_price, equity, position))

    def check(self, intent: OrderIntent, market: MarketState) -> ApprovedOrder | Rejection:
        """Approve or refuse an order intent.

        Rules, first failure wins:

        1. ``INVALID_INTENT``: side not +1/-1, qty not a finite positive lot multiple, or limit price
           not finite and positive.
        2. ``HALTED``: the state is halted (refuses exits too).
        3. Exits (``intent.is_exit``): ``EXIT_EXCEEDS_POSITION`` unless the order is on the side
           that reduces the position and its qty is at most ``|position|``; otherwise approved,
           whatever the book, the state or the order rate.
        4. Entries: ``REDUCING_ONLY``, ``BOOK_INVALID``, ``STALE_BOOK`` (book older than
           ``stale_book_ms`` at ``market.ts_ns``), ``MAX_SPREAD``, ``MAX_POSITION`` (on
           ``|position + side * qty|``), ``MAX_ORDER_NOTIONAL`` (on ``qty * limit_price``),
           ``MAX_ORDERS_PER_SECOND`` (approved entries in the trailing 1 s of ``market.ts_ns``).

        Any exception raised by a check gives ``RISK_CHECK_ERROR`` with ``repr(exc)`` as detail.
        Position and notional comparisons allow a float-rounding slack of a few 1e-9 lot (see
        :func:`scalper.risk.lots.exceeds`).

        Parameters
        ----------
        intent : OrderIntent
            The order the engine wants to send.
        market : MarketState
            The book at decision time; not read for exits. ``market.ts_ns`` must not go backwards
            between calls, or the order-rate window undercounts.

        Returns
        -------
        ApprovedOrder or Rejection
            The approval (with a fresh ``approval_id``) or the counted refusal with its reason and a
            detail naming the limit and the values.
        """
        try:
            return self._check(intent, market)
        except Exception as exc:  # fail closed: a check that cannot run must not let the order through
            return self._reject(intent, RejectReason.RISK_CHECK_ERROR, repr(exc))

    def on_fill(self, side: int, qty: float, price: float, fee: float) -> None:
        """Book a fill in the account, then trip the kill switch if the drawdown limit is reached.

        Parameters
        ----------
        side : int
            +1 bought, -1 sold.
        qty : float
            Filled quantity, base units, > 0.
        price : float
            Fill price, quote currency per base unit, > 0.
        fee : float
            Fee for this fill, quote currency.

        Raises
        ------
        ValueError
            If the fill is malformed (see :meth:`Account.on_fill`).
        """
        self.account.on_fill(side, qty, price, fee)
        self._apply_kill_switch()

    def mark(self, mid: float) -> None:
        """Revalue the position at ``mid`` (quote currency per base unit), then run the kill switch.

        Raises
        ------
        ValueError
            If ``mid`` is not finite and positive.
        """
        self.account.mark(mid)
        self._apply_kill_switch()

    def mark_many(self, mids: np.ndarray) -> None:
        """:meth:`mark` at each mid in turn (float64[k], quote per base unit), vectorised; same result.

        Raises
        ------
        ValueError
            If a mid is not finite and positive.
        """
        worst = self.account.mark_many(mids)
        if self.state == TradingState.ACTIVE and worst >= self.cfg.max_drawdown:
            self.state = TradingState.REDUCING_ONLY

    def set_state(self, state: TradingState) -> None:
        """Set the trading state by operator command (halt, reducing-only, or back to active).

        Raises
        ------
        ValueError
            If ``state`` is not a :class:`TradingState` value.
        """
        self.state = TradingState(state)

    def _apply_kill_switch(self) -> None:
        # Only ACTIVE moves: an operator's HALTED must not be loosened to REDUCING_ONLY, and going
        # back to ACTIVE after a trip is an operator decision, never automatic.
        if self.state == TradingState.ACTIVE and self.account.drawdown >= self.cfg.max_drawdown:
            self.state = TradingState.REDUCING_ONLY

    def _check(self, intent: OrderIntent, market: MarketState) -> ApprovedOrder | Rejection:
        side, qty, price = intent.side, intent.qty, intent.limit_price
        if side != 1 and side != -1:
            return self._reject(intent, RejectReason.INVALID_INTENT, f"side={side!r} is not +1 or -1")
        if not (math.isfinite(qty) and qty > 0.0 and is_lot_multiple(qty, self.lot_size)):
            return self._reject(
                intent,
                RejectReason.INVALID_INTENT,
                f"qty={qty!r} is not a positive multiple of lot_size={self.lot_size!r}",
            )
        if not (math.isfinite(price) and price > 0.0):
            return self._reject(
                intent, RejectReason.INVALID_INTENT, f"limit_price={price!r} is not a finite positive price"
            )
        if self.state == TradingState.HALTED:
            return self._reject(intent, RejectReason.HALTED, "state=HALTED refuses all orders")
        if intent.is_exit:
            return self._check_exit(intent)
        return self._check_entry(intent, market)

    def _check_exit(self, intent: OrderIntent) -> ApprovedOrder | Rejection:
        position = self.account.position
        if position == 0.0 or (position > 0.0) == (intent.side > 0):
            return self._reject(
                intent,
                RejectReason.EXIT_EXCEEDS_POSITION,
                f"exit side={intent.side!r} does not reduce position={position!r}",
            )
        if exceeds(intent.qty, abs(position), self.lot_size):
            return self._reject(
                intent,
                RejectReason.EXIT_EXCEEDS_POSITION,
                f"exit qty={intent.qty!r} > |position|={abs(position)!r}",
            )
        return self._approve(intent)

    def _check_entry(self, intent: OrderIntent, market: MarketState) -> ApprovedOrder | Rejection:
        cfg = self.cfg
        if self.state == TradingState.REDUCING_ONLY:
            return self._reject(intent, RejectReason.REDUCING_ONLY, "state=REDUCING_ONLY refuses entries")
        if not market.is_book_valid:
            return self._reject(intent, RejectReason.BOOK_INVALID, "is_book_valid=False (gap, crossed or resyncing)")
        book_age_ns = market.ts_ns - market.last_event_ts_ns
        if book_age_ns > cfg.stale_book_ms * _NS_PER_MS:
            return self._reject(
                intent,
                RejectReason.STALE_BOOK,
                f"book age={book_age_ns / _NS_PER_MS:.3f} ms > stale_book_ms={cfg.stale_book_ms!r}",
            )
        if market.spread_ticks > cfg.max_spread_ticks:
            return self._reject(
                intent,
                RejectReason.MAX_SPREAD,
                f"spread_ticks={market.spread_ticks!r} (tick_size={self.tick_size!r}) "
                f"> max_spread_ticks={cfg.max_spread_ticks!r}",
            )
        position = self.account.position
        new_abs_position = abs(position + intent.side * intent.qty)
        if exceeds(new_abs_position, cfg.max_position, self.lot_size):
            return self._reject(
                intent,
                RejectReason.MAX_POSITION,
                f"|position + side*qty|=|{position!r} + {intent.side!r}*{intent.qty!r}|={new_abs_position!r} "
                f"> max_position={cfg.max_position!r}",
            )
        notional = intent.qty * intent.limit_price
        if exceeds(notional, cfg.max_order_notional, self.lot_size * intent.limit_price):
            return self._reject(
                intent,
                RejectReason.MAX_ORDER_NOTIONAL,
                f"qty*limit_price={intent.qty!r}*{intent.limit_price!r}={notional!r} "
                f"> max_order_notional={cfg.max_order_notional!r}",
            )
        approvals = self._entry_approvals_ns
        while approvals and approvals[0] <= market.ts_ns - _RATE_WINDOW_NS:
            approvals.popleft()
        if len(approvals) >= cfg.max_orders_per_second:
            return self._reject(
                intent,
                RejectReason.MAX_ORDERS_PER_SECOND,
                f"{len(approvals)} entries approved in the 1 s before ts_ns={market.ts_ns!r} "
                f">= max_orders_per_second={cfg.max_orders_per_second!r}",
            )
        approvals.append(market.ts_ns)
        return self._approve(intent)

    def _approve(self, intent: OrderIntent) -> ApprovedOrder:
        self.approved_count += 1
        return _approve(intent, self.approved_count)

    def _reject(self, intent: OrderIntent, reason: RejectReason, detail: str | Callable[[], str]) -> Rejection:
        self.reject_counts[reason] += 1
        return Rejection(intent, reason, detail)

    def _sizing_detail(self, reason: RejectReason, p: float, price: float, equity: float, position: float) -> str:
        # Built when a refusal's detail is first read (Rejection.detail), from the values at refusal time.
        cfg = self.cfg
        if reason == RejectReason.BELOW_MIN_PROBABILITY:
            return f"p={p!r} < min_probability={cfg.min_probability!r}"
        if reason == RejectReason.EDGE_BELOW_FEES:
            edge = expected_edge_bps(p, cfg.take_profit_bps, cfg.stop_loss_bps, self.fee_bps)
            return (
                f"expected edge={edge:.6g} bps <= 0 at p={p!r}, take_profit_bps={cfg.take_profit_bps!r}, "
                f"stop_loss_bps={cfg.stop_loss_bps!r}, round-trip fees=2*{self.fee_bps!r} bps"
            )
        if reason == RejectReason.MAX_POSITION:
            return (
                f"|position|={abs(position)!r} leaves less than lot_size={self.lot_size!r} "
                f"below max_position={cfg.max_position!r}"
            )
        if reason == RejectReason.MAX_ORDER_NOTIONAL:
            return (
                f"max_order_notional={cfg.max_order_notional!r} buys less than lot_size={self.lot_size!r} "
                f"at limit_price={price!r}"
            )
        f_star = kelly_fraction_star(p, cfg.take_profit_bps / cfg.stop_loss_bps)
        return (
            f"Kelly size below one lot: p={p!r}, f*={f_star:.6g}, kelly_fraction={cfg.kelly_fraction!r}, "
            f"equity={equity!r}, lot_size={self.lot_size!r}"
        )
