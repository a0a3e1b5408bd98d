"""Pre-trade checks, the drawdown kill switch and the operator halt for one instrument.

The numeric rules are numba kernels, each written once: Kelly sizing in
:func:`~scalper.risk.kelly.kelly_qty`, the pre-trade checks in :func:`order_rules`.
:meth:`RiskManager.enter_at_touch` sizes and checks an entry in one compiled call (an entry is a
decision on the hot path: one call keeps the Python objects to those of its result);
:meth:`RiskManager.check` runs the same checks on an intent (the engine's exits);
:meth:`RiskManager.size_entry` and :meth:`RiskManager.refusals_by_p` run the sizing alone.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable

import numpy as np

from scalper.features.kernels import INT64_MAX, INT64_MIN
from scalper.features.state_layout import book_is_valid, last_book_ts
from scalper.lowlevel.jit import inline_kernel, kernel
from scalper.risk.accounting import Account
from scalper.risk.config import RiskConfig
from scalper.risk.control import Source, TradingControl
from scalper.risk.intent import (
    REASON_OF_CODE,
    ApprovedOrder,
    OrderIntent,
    Rejection,
    RejectReason,
    TimeInForce,
    TradingState,
    _approve,
)
from scalper.risk.kelly import (
    PlannedFees,
    expected_edge_bps,
    kelly_fraction_star,
    kelly_qty,
    kelly_size,
    p_refusals,
    planned_fees,
)
from scalper.risk.lots import exceeds, is_lot_multiple
from scalper.risk.market import MarketState

_NS_PER_MS = 1_000_000
_RATE_WINDOW_NS = 1_000_000_000

# Slots of RiskManager.params, the config as the compiled rules read it.
(
    P_KELLY_FRACTION,
    P_TAKE_PROFIT_BPS,
    P_STOP_LOSS_BPS,
    P_MIN_PROBABILITY,
    P_MAX_POSITION,
    P_MAX_ORDER_NOTIONAL,
    P_MAX_ORDERS_PER_SECOND,
    P_STALE_BOOK_NS,
    P_MAX_SPREAD_TICKS,
    P_WIN_FEE_BPS,
    P_LOSS_FEE_BPS,
    P_LOT_SIZE,
    N_PARAMS,
) = range(13)

# Plain ints, which numba compiles in as constants.
_REDUCING_ONLY, _HALTED = int(TradingState.REDUCING_ONLY), int(TradingState.HALTED)
_R_HALTED = int(RejectReason.HALTED)
_R_EXIT_EXCEEDS_POSITION = int(RejectReason.EXIT_EXCEEDS_POSITION)
_R_REDUCING_ONLY = int(RejectReason.REDUCING_ONLY)
_R_BOOK_INVALID = int(RejectReason.BOOK_INVALID)
_R_STALE_BOOK = int(RejectReason.STALE_BOOK)
_R_MAX_SPREAD = int(RejectReason.MAX_SPREAD)
_R_MAX_POSITION = int(RejectReason.MAX_POSITION)
_R_MAX_ORDER_NOTIONAL = int(RejectReason.MAX_ORDER_NOTIONAL)
_R_MAX_ORDERS_PER_SECOND = int(RejectReason.MAX_ORDERS_PER_SECOND)
_R_RISK_CHECK_ERROR = int(RejectReason.RISK_CHECK_ERROR)

# The approvals window: int64[2 + max_orders_per_second], the first slot's index and the count in
# the two head slots, then a ring of approval times (ns).
_W_FIRST, _W_COUNT, _W_RING = 0, 1, 2


@inline_kernel
def order_rules(
    params, approvals, state, position, side, qty, price, is_exit, ts_ns, spread_ticks, last_book_ts_ns, is_book_valid
):
    """The pre-trade rules of :meth:`RiskManager.check` after its intent checks; return 0 or the refusal.

    Parameters
    ----------
    params : ndarray
        float64[N_PARAMS], :attr:`RiskManager.params`.
    approvals : ndarray
        int64[2 + max_orders_per_second], the entries-per-second window; an approved entry is added.
    state : int
        :class:`TradingState` value.
    position, side, qty, price : float, int, float, float
        Current position and the order (base units, +1/-1, base units, quote per base unit).
    is_exit : bool
    ts_ns, last_book_ts_ns : int
        Now and the last book event, ns since the epoch.
    spread_ticks : float
        Best ask minus best bid, ticks (a float: an empty side makes it larger than int64).
    is_book_valid : bool
    """
    lot = params[P_LOT_SIZE]
    if state == _HALTED:
        return _R_HALTED
    if is_exit:
        if position == 0.0 or (position > 0.0) == (side > 0) or exceeds(qty, abs(position), lot):
            return _R_EXIT_EXCEEDS_POSITION
        return 0
    if state == _REDUCING_ONLY:
        return _R_REDUCING_ONLY
    if not is_book_valid:
        return _R_BOOK_INVALID
    if ts_ns - last_book_ts_ns > params[P_STALE_BOOK_NS]:
        return _R_STALE_BOOK
    if spread_ticks > params[P_MAX_SPREAD_TICKS]:
        return _R_MAX_SPREAD
    if exceeds(abs(position + side * qty), params[P_MAX_POSITION], lot):
        return _R_MAX_POSITION
    if exceeds(qty * price, params[P_MAX_ORDER_NOTIONAL], lot * price):
        return _R_MAX_ORDER_NOTIONAL
    cap = approvals.shape[0] - _W_RING
    first, count = approvals[_W_FIRST], approvals[_W_COUNT]
    while count > 0 and approvals[_W_RING + first] <= ts_ns - _RATE_WINDOW_NS:
        first = (first + 1) % cap
        count -= 1
    approvals[_W_FIRST] = first
    if count >= params[P_MAX_ORDERS_PER_SECOND]:
        approvals[_W_COUNT] = count
        return _R_MAX_ORDERS_PER_SECOND
    approvals[_W_RING + (first + count) % cap] = ts_ns
    approvals[_W_COUNT] = count + 1
    return 0


@kernel
def enter_rules(
    params,
    approvals,
    state,
    equity,
    position,
    ts_ns,
    side,
    p,
    limit_price,
    spread_ticks,
    last_book_ts_ns,
    is_book_valid,
):
    """Size an entry by Kelly at ``limit_price`` and check it (:func:`order_rules`), in one call.

    Returns ``(qty, code)``: ``code`` 0 approved; a refusal with ``qty`` 0 came from the sizing, with
    ``qty`` > 0 from the checks; ``RISK_CHECK_ERROR`` when a sizing input is out of range.
    """
    qty, code = kelly_qty(
        p,
        limit_price,
        equity,
        abs(position),
        params[P_KELLY_FRACTION],
        params[P_TAKE_PROFIT_BPS],
        params[P_STOP_LOSS_BPS],
        params[P_MIN_PROBABILITY],
        params[P_MAX_POSITION],
        params[P_MAX_ORDER_NOTIONAL],
        params[P_WIN_FEE_BPS],
        params[P_LOSS_FEE_BPS],
        params[P_LOT_SIZE],
    )
    if code < 0:
        return 0.0, _R_RISK_CHECK_ERROR
    if code:
        return 0.0, code
    # A Kelly size is a positive lot multiple at a finite positive price: the intent checks pass.
    return qty, order_rules(
        params,
        approvals,
        state,
        position,
        side,
        qty,
        limit_price,
        False,
        ts_ns,
        spread_ticks,
        last_book_ts_ns,
        is_book_valid,
    )


@kernel
def enter_at_touch_rules(params, approvals, state, equity, position, ts_ns, side, p, slippage, tick_size, px, n, ist):
    """:func:`enter_rules` for a marketable limit ``slippage`` past the touch of a kernel book, with the
    market facts read off that book (as :meth:`MarketState.of_book` reads them): see
    :meth:`RiskManager.enter_at_touch`.

    Returns ``(qty, limit_price, code)``.
    """
    bid = px[0, 0] if n[0] > 0 else INT64_MIN
    ask = px[1, 0] if n[1] > 0 else INT64_MAX
    touch = ask if side > 0 else bid
    limit = touch * tick_size * (1.0 + side * slippage)
    # An empty side makes the spread wider than any limit (MarketState holds it as an unbounded int).
    spread = float(ask - bid) if n[0] > 0 and n[1] > 0 else math.inf
    qty, code = enter_rules(
        params,
        approvals,
        state,
        equity,
        position,
        ts_ns,
        side,
        p,
        limit,
        spread,
        last_book_ts(ist),
        book_is_valid(ist),
    )
    return qty, limit, code


@kernel
def enter_at_price_rules(params, approvals, state, equity, position, ts_ns, side, p, price_tick, tick_size, px, n, ist):
    """:func:`enter_rules` for a limit at ``price_tick`` (a posted order), with the market facts read off a
    kernel book as :func:`enter_at_touch_rules` reads them: see :meth:`RiskManager.enter_at_price`.

    Returns ``(qty, code)``.
    """
    bid = px[0, 0] if n[0] > 0 else INT64_MIN
    ask = px[1, 0] if n[1] > 0 else INT64_MAX
    spread = float(ask - bid) if n[0] > 0 and n[1] > 0 else math.inf
    return enter_rules(
        params,
        approvals,
        state,
        equity,
        position,
        ts_ns,
        side,
        p,
        price_tick * tick_size,
        spread,
        last_book_ts(ist),
        book_is_valid(ist),
    )


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
    fee_bps : float or PlannedFees
        The fee each leg of a scalp pays, bps of notional (:class:`~scalper.risk.kelly.PlannedFees`); a
        number is the taker fee of every leg (taker mode), >= 0.

    Raises
    ------
    ValueError
        If ``tick_size``, ``lot_size`` or ``fee_bps`` is out of range or not finite
        (:func:`~scalper.risk.kelly.planned_fees`).

    Attributes
    ----------
    account : Account
        Position, PnL and drawdown, fed by :meth:`on_fill` and :meth:`mark`.
    state : TradingState
        The effective state the rules apply: the most restrictive slot of :attr:`control`. ``ACTIVE``
        at start; the kill switch latches ``REDUCING_ONLY``; :meth:`impose` and :meth:`set_state`
        move it. A plain attribute, so the compiled calls read it without a property call.
    control : TradingControl
        One slot per :class:`~scalper.risk.control.Source`; see :mod:`scalper.risk.control`.
    reject_counts : dict[RejectReason, int]
        Refusals so far per reason, every reason present from the start.
    approved_count : int
        Orders approved so far; also the last ``approval_id`` handed out.
    params : ndarray
        float64[N_PARAMS]: the config, tick-free, as the compiled rules read it (``P_*`` slots).
    """

    def __init__(self, cfg: RiskConfig, tick_size: float, lot_size: float, fee_bps: float | PlannedFees) -> None:
        if not (math.isfinite(tick_size) and tick_size > 0.0):
            raise ValueError(f"tick_size={tick_size!r} is not a finite positive price")
        if not (math.isfinite(lot_size) and lot_size > 0.0):
            raise ValueError(f"lot_size={lot_size!r} is not a finite positive size")
        fees = planned_fees(fee_bps)
        if not cfg.stop_loss_bps + fees.loss_bps > 0.0:
            raise ValueError(f"fee_bps={fee_bps!r}: stop_loss_bps + F_l must be > 0 (a stop-loss that gains)")
        self.cfg = cfg
        self.tick_size = tick_size
        self.lot_size = lot_size
        self.fees = fees
        self.account = Account(cfg.initial_equity)
        self.control = TradingControl()
        self.state = TradingState.ACTIVE
        self.reject_counts: dict[RejectReason, int] = {reason: 0 for reason in RejectReason}
        self.approved_count = 0
        params = np.zeros(N_PARAMS, dtype=np.float64)
        params[P_KELLY_FRACTION] = cfg.kelly_fraction
        params[P_TAKE_PROFIT_BPS] = cfg.take_profit_bps
        params[P_STOP_LOSS_BPS] = cfg.stop_loss_bps
        params[P_MIN_PROBABILITY] = cfg.min_probability
        params[P_MAX_POSITION] = cfg.max_position
        params[P_MAX_ORDER_NOTIONAL] = cfg.max_order_notional
        params[P_MAX_ORDERS_PER_SECOND] = cfg.max_orders_per_second
        params[P_STALE_BOOK_NS] = cfg.stale_book_ms * _NS_PER_MS
        params[P_MAX_SPREAD_TICKS] = cfg.max_spread_ticks
        params[P_WIN_FEE_BPS] = fees.win_bps
        params[P_LOSS_FEE_BPS] = fees.loss_bps
        params[P_LOT_SIZE] = lot_size
        self.params = params
        # Event times of the entries approved in the trailing second (see order_rules).
        self._approvals = np.zeros(_W_RING + cfg.max_orders_per_second, dtype=np.int64)

    def size_entry(self, p: float, price: float) -> tuple[float, RejectReason | None]:
        """Return the fractional-Kelly entry size at the current equity and position, and why it is zero.

        The sizing of :meth:`enter_at_touch`, alone: nothing is checked, counted or approved.

        Parameters
        ----------
        p : float
            Model probability that the take-profit is hit before the stop-loss, in [0, 1].
        price : float
            Entry (limit) price, quote currency per base unit, > 0.

        Returns
        -------
        qty : float
            Size, base units, a non-negative multiple of the lot size.
        reason : RejectReason or None
            None when ``qty > 0``, else the rule that made it zero (see
            :func:`scalper.risk.kelly.kelly_size`).

        Raises
        ------
        ValueError
            If ``p`` or ``price`` is out of range or the equity is not finite.
        """
        return kelly_size(p, price, self.account.equity, self.cfg, self.fees, self.lot_size, abs(self.account.position))

    def refusals_by_p(self, p: np.ndarray, out: np.ndarray | None = None) -> np.ndarray:
        """Return, per probability, the refusal :meth:`enter_at_touch` gives on ``p`` alone.

        The first sizing rules (``BELOW_MIN_PROBABILITY``, ``KELLY_NON_POSITIVE`` on the gross
        ``f*``, ``EDGE_BELOW_FEES``) read nothing but ``p`` and the config; a replay that knows its
        decisions' probabilities in advance uses this to skip the decisions no position could come
        from, and then counts their refusals with :meth:`count_refusals`. It runs the same compiled
        rule as the entry (:func:`scalper.risk.kelly.p_refusals`), so the two cannot disagree.
        Nothing is counted here.

        Parameters
        ----------
        p : ndarray
            float64[M] win probabilities.
        out : ndarray, optional
            int8[M] to write into (no allocation); a new array when omitted.

        Returns
        -------
        ndarray
            int8[M] (``out`` when given): 0 where ``p`` passes those rules (the size then depends on
            equity and limits; a ``p`` outside [0, 1] or NaN also gives 0 and is refused at the entry
            as ``RISK_CHECK_ERROR``), else the :class:`RejectReason` value.

        Raises
        ------
        ValueError
            If ``out`` is not int8 of ``p``'s length.
        """
        p = np.ascontiguousarray(p, dtype=np.float64)
        if out is None:
            out = np.empty(p.shape[0], dtype=np.int8)
        elif out.dtype != np.int8 or out.shape != p.shape:
            raise ValueError(f"out must be int8[{p.shape[0]}], got {out.dtype}{list(out.shape)}")
        prm = self.params
        p_refusals(
            p,
            prm[P_TAKE_PROFIT_BPS],
            prm[P_STOP_LOSS_BPS],
            prm[P_MIN_PROBABILITY],
            prm[P_WIN_FEE_BPS],
            prm[P_LOSS_FEE_BPS],
            out,
        )
        return out

    def count_refusals(self, reason: RejectReason, n: int = 1) -> None:
        """Count ``n`` refusals for ``reason`` that were decided outside this manager.

        A replay that screened its decisions with :meth:`refusals_by_p` and skipped them counts
        their refusals here, so :attr:`reject_counts` reads as if each had been refused by
        :meth:`enter_at_touch`.

        Raises
        ------
        ValueError
            If ``reason`` is not a :class:`RejectReason` value or ``n`` is negative.
        """
        if n < 0:
            raise ValueError(f"n={n!r} refusals: the count must be >= 0")
        self.reject_counts[RejectReason(reason)] += n

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
        except Exception as exc:  # noqa: BLE001  fail closed: a check that cannot run must not let the order through
            return self._reject(intent, RejectReason.RISK_CHECK_ERROR, repr(exc))

    def enter_at_touch(
        self,
        ts_ns: int,
        side: int,
        p: float,
        slippage: float,
        tick_size: float,
        px: np.ndarray,
        n: np.ndarray,
        ist: np.ndarray,
    ) -> ApprovedOrder | Rejection:
        """Size an entry by Kelly and check it, at a limit ``slippage`` past the touch of a kernel book,
        in one compiled call. The engine's entries come here.

        The limit is ``touch_tick * tick_size * (1 + side * slippage)`` (the best ask for a buy, the
        best bid for a sell). The result, the counts and the approval ids are those of sizing at that
        limit (:meth:`size_entry`) and then, if the size is positive, ``check(intent, market)`` with
        ``intent = OrderIntent(ts_ns, side, qty, limit, False, "entry")`` and
        ``market = MarketState.of_book(ts_ns, px, n, ist, tick_size)``.

        Parameters
        ----------
        ts_ns : int
            Decision time, ns since the epoch, UTC; must not go backwards between calls (order-rate window).
        side : int
            +1 buy, -1 sell.
        p : float
            Model probability that the take-profit is hit before the stop-loss, in [0, 1].
        slippage : float
            How far past the touch the limit goes, a fraction (bps / 1e4).
        tick_size : float
            Quote currency per tick.
        px, n, ist : ndarray
            :class:`~scalper.features.kernels.FeatureState`'s top-of-book prices (int64[2, K], ticks),
            level counts (int64[2]) and scalar state.

        Returns
        -------
        ApprovedOrder or Rejection
            The approval, or the counted refusal. A refusal by the sizing carries an intent with
            ``qty=0.0`` (``BELOW_MIN_PROBABILITY``, ``KELLY_NON_POSITIVE``, ``EDGE_BELOW_FEES``,
            ``MAX_POSITION``, ``MAX_ORDER_NOTIONAL``; ``RISK_CHECK_ERROR`` for a sizing input out of
            range, such as a NaN ``p``); a refusal by the checks carries the sized intent.
        """
        acc = self.account
        equity, position = acc.equity, acc.position
        qty, limit, code = enter_at_touch_rules(
            self.params,
            self._approvals,
            int(self.state),
            equity,
            position,
            ts_ns,
            side,
            p,
            slippage,
            tick_size,
            px,
            n,
            ist,
        )
        # Only a refusal by the checks reports the market facts; it is rare, so they are read only then.
        market = MarketState.of_book(ts_ns, px, n, ist, tick_size) if code and qty > 0.0 else None
        return self._entry_result(ts_ns, side, p, limit, qty, code, equity, position, market)

    def enter_at_price(
        self,
        ts_ns: int,
        side: int,
        p: float,
        price_tick: int,
        tick_size: float,
        px: np.ndarray,
        n: np.ndarray,
        ist: np.ndarray,
    ) -> ApprovedOrder | Rejection:
        """Size a post-only entry by Kelly at ``price_tick * tick_size`` and check it, in one compiled call
        (maker mode's entries): :meth:`enter_at_touch` with that limit instead of one past the touch, and
        an intent of time in force ``GTX``. Same counts, approval ids and refusals.

        Parameters
        ----------
        price_tick : int
            The price to post at, ticks.

        The other parameters and the result are :meth:`enter_at_touch`'s.
        """
        acc = self.account
        equity, position = acc.equity, acc.position
        qty, code = enter_at_price_rules(
            self.params,
            self._approvals,
            int(self.state),
            equity,
            position,
            ts_ns,
            side,
            p,
            price_tick,
            tick_size,
            px,
            n,
            ist,
        )
        market = MarketState.of_book(ts_ns, px, n, ist, tick_size) if code and qty > 0.0 else None
        limit = price_tick * tick_size
        return self._entry_result(ts_ns, side, p, limit, qty, code, equity, position, market, TimeInForce.GTX)

    def _entry_result(
        self,
        ts_ns: int,
        side: int,
        p: float,
        limit_price: float,
        qty: float,
        code: int,
        equity: float,
        position: float,
        market: MarketState | None,
        tif: int = TimeInForce.IOC,
    ) -> ApprovedOrder | Rejection:
        intent = OrderIntent(ts_ns, side, qty, limit_price, False, "entry", tif)
        if code == 0:
            return self._approve(intent)
        reason = REASON_OF_CODE[code]
        if code == _R_RISK_CHECK_ERROR:
            return self._reject(intent, reason, functools.partial(self._sizing_error, p, limit_price, equity, position))
        if qty == 0.0:
            return self._reject(
                intent, reason, functools.partial(self._sizing_detail, reason, p, limit_price, equity, position)
            )
        assert market is not None  # a refusal by the checks (qty > 0) is always given the market facts
        return self._reject(intent, reason, functools.partial(self._check_detail, reason, intent, market, position))

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
        if worst >= self.cfg.max_drawdown:
            self.impose(Source.RISK, TradingState.REDUCING_ONLY)

    def impose(self, source: Source, state: TradingState) -> TradingState:
        """Set ``source``'s slot (a latched source only tightens) and return the effective state.

        See :meth:`~scalper.risk.control.TradingControl.impose`.

        Raises
        ------
        ValueError
            If ``state`` is not a :class:`TradingState` value.
        """
        self.state = self.control.impose(source, state)
        return self.state

    def set_state(self, state: TradingState) -> TradingState:
        """The explicit operator action: the operator slot becomes ``state`` and the other latched
        slots (risk limit, inference, engine error) are released; the journal and key slots stay.
        Return the effective state. The daemon journals every call (``operator`` record).

        Raises
        ------
        ValueError
            If ``state`` is not a :class:`TradingState` value.
        """
        self.state = self.control.operator_set(state)
        return self.state

    def _apply_kill_switch(self) -> None:
        # The latch holds once tripped: going back to ACTIVE is an operator decision, never automatic.
        if self.account.drawdown >= self.cfg.max_drawdown:
            self.impose(Source.RISK, TradingState.REDUCING_ONLY)

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
        position = self.account.position
        if intent.is_exit:  # exits do not read the book
            ts_ns, spread_ticks, last_event_ts_ns, is_book_valid = 0, 0.0, 0, True
        else:
            ts_ns, spread_ticks, last_event_ts_ns = market.ts_ns, float(market.spread_ticks), market.last_event_ts_ns
            is_book_valid = market.is_book_valid
        code = order_rules(
            self.params,
            self._approvals,
            int(self.state),
            position,
            side,
            float(qty),
            float(price),
            intent.is_exit,
            ts_ns,
            spread_ticks,
            last_event_ts_ns,
            is_book_valid,
        )
        if code == 0:
            return self._approve(intent)
        reason = REASON_OF_CODE[code]
        return self._reject(intent, reason, functools.partial(self._check_detail, reason, intent, market, position))

    def _check_detail(self, reason: RejectReason, intent: OrderIntent, market: MarketState, position: float) -> str:
        # Built when a refusal's detail is first read, from the values at refusal time.
        cfg = self.cfg
        if reason == RejectReason.HALTED:
            return "state=HALTED refuses all orders"
        if reason == RejectReason.EXIT_EXCEEDS_POSITION:
            if position == 0.0 or (position > 0.0) == (intent.side > 0):
                return f"exit side={intent.side!r} does not reduce position={position!r}"
            return f"exit qty={intent.qty!r} > |position|={abs(position)!r}"
        if reason == RejectReason.REDUCING_ONLY:
            return "state=REDUCING_ONLY refuses entries"
        if reason == RejectReason.BOOK_INVALID:
            return "is_book_valid=False (gap, crossed or resyncing)"
        if reason == RejectReason.STALE_BOOK:
            book_age_ns = market.ts_ns - market.last_event_ts_ns
            return f"book age={book_age_ns / _NS_PER_MS:.3f} ms > stale_book_ms={cfg.stale_book_ms!r}"
        if reason == RejectReason.MAX_SPREAD:
            return (
                f"spread_ticks={market.spread_ticks!r} (tick_size={self.tick_size!r}) "
                f"> max_spread_ticks={cfg.max_spread_ticks!r}"
            )
        if reason == RejectReason.MAX_POSITION:
            new_abs_position = abs(position + intent.side * intent.qty)
            return (
                f"|position + side*qty|=|{position!r} + {intent.side!r}*{intent.qty!r}|={new_abs_position!r} "
                f"> max_position={cfg.max_position!r}"
            )
        if reason == RejectReason.MAX_ORDER_NOTIONAL:
            notional = intent.qty * intent.limit_price
            return (
                f"qty*limit_price={intent.qty!r}*{intent.limit_price!r}={notional!r} "
                f"> max_order_notional={cfg.max_order_notional!r}"
            )
        # MAX_ORDERS_PER_SECOND: refused with the window full.
        return (
            f"{cfg.max_orders_per_second} entries approved in the 1 s before ts_ns={market.ts_ns!r} "
            f">= max_orders_per_second={cfg.max_orders_per_second!r}"
        )

    def _approve(self, intent: OrderIntent) -> ApprovedOrder:
        self.approved_count += 1
        return _approve(intent, self.approved_count)

    def _reject(self, intent: OrderIntent, reason: RejectReason, detail: str | Callable[[], str]) -> Rejection:
        self.reject_counts[reason] += 1
        return Rejection(intent, reason, detail)

    def _sizing_error(self, p: float, price: float, equity: float, position: float) -> str:
        # The error the sizing raises for an input out of range, built when first read.
        try:
            kelly_size(p, price, equity, self.cfg, self.fees, self.lot_size, abs(position))
        except ValueError as exc:
            return repr(exc)
        raise AssertionError("enter_rules refused sizing inputs that kelly_size accepts")

    def _sizing_detail(self, reason: RejectReason, p: float, price: float, equity: float, position: float) -> str:
        # Built when a refusal's detail is first read (Rejection.detail), from the values at refusal time.
        cfg = self.cfg
        if reason == RejectReason.BELOW_MIN_PROBABILITY:
            return f"p={p!r} < min_probability={cfg.min_probability!r}"
        if reason == RejectReason.EDGE_BELOW_FEES:
            edge = expected_edge_bps(p, cfg.take_profit_bps, cfg.stop_loss_bps, self.fees)
            return (
                f"expected edge={edge:.6g} bps <= 0 at p={p!r}, take_profit_bps={cfg.take_profit_bps!r}, "
                f"stop_loss_bps={cfg.stop_loss_bps!r}, round-trip fees={self.fees.win_bps!r} bps (take-profit),"
                f" {self.fees.loss_bps!r} bps (stop-loss)"
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
