"""Fractional Kelly sizing of a take-profit / stop-loss bet, net of the fees of the round trip.

A scalp entered at ``price`` either reaches its take-profit or its stop-loss first; the model gives
the probability ``p`` of the win. Each leg pays the fee of the order that makes it (:class:`PlannedFees`,
bps of notional; a negative maker fee is a rebate): the entry ``e``, the take-profit exit ``x_w`` and
the stop-loss exit ``x_l``. Net of fees the win is ``take_profit_bps - F_w`` and the loss
``stop_loss_bps + F_l``, with ``F_w = e + x_w`` and ``F_l = e + x_l`` (:func:`round_trip_fee_bps`):
Kelly's binary bet with payoff ratio ``b = (take_profit_bps - F_w) / (stop_loss_bps + F_l)`` and
expected edge ``p (take_profit_bps - F_w) - (1 - p) (stop_loss_bps + F_l)``. (With no fees this is the
gross ratio ``take_profit_bps / stop_loss_bps``; sizing on the gross ratio would over-bet whenever fees
are paid.)

Taker mode pays the taker fee ``t`` on every leg (marketable IOC entry and exits): ``F_w = F_l = 2 t``.
Maker mode (``[strategy] mode = "maker"``) posts its entry and its take-profit (maker fee ``m`` each)
and crosses the spread only to stop a loss (taker): ``F_w = 2 m``, ``F_l = m + t``. Its time stop also
crosses; it is neither a win nor a loss of the binary bet and is charged as the loss leg (``F_l``), the
dearer of the two whenever ``t >= m``.

Each rule is written once, as a numba kernel: :func:`kelly_qty` (the size and why it is zero),
:func:`p_refusal` (the rules that read nothing but ``p``), :func:`edge_bps` and :func:`round_trip_fee_bps`.
The compiled entry check (:mod:`scalper.risk.limits`) inlines them, :func:`p_refusals` loops over them
for a batch of probabilities, and the Python functions here are thin wrappers that validate and call
them. The plain-Python statement of the same rules is the test oracle (``tests/risk_oracle.py``).
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from scalper.lowlevel.jit import inline_kernel, kernel
from scalper.risk.config import RiskConfig
from scalper.risk.intent import REASON_OF_CODE, RejectReason
from scalper.risk.lots import floor_to_lot

# What kelly_qty returns instead of a reason when an input is out of range: negative, so it never
# collides with a RejectReason; kelly_size turns it into the ValueError it names.
BAD_PRICE, BAD_LOT_SIZE, BAD_FEE, BAD_POSITION, BAD_EQUITY, BAD_PROBABILITY = -1, -2, -3, -4, -5, -6

# Plain ints, which numba compiles in as constants.
_BELOW_MIN_PROBABILITY = int(RejectReason.BELOW_MIN_PROBABILITY)
_KELLY_NON_POSITIVE = int(RejectReason.KELLY_NON_POSITIVE)
_EDGE_BELOW_FEES = int(RejectReason.EDGE_BELOW_FEES)
_MAX_POSITION = int(RejectReason.MAX_POSITION)
_MAX_ORDER_NOTIONAL = int(RejectReason.MAX_ORDER_NOTIONAL)


@inline_kernel
def round_trip_fee_bps(entry_fee_bps: float, exit_fee_bps: float) -> float:
    """Return the fees one scalp pays, bps of the entry notional: its entry's and its exit's.

    Each is the fee rate of the order that makes the leg, bps of notional (taker >= 0; a negative maker
    fee is a rebate). The exit's notional is taken as the entry's: the take-profit and stop-loss are a
    few bps away, so the error is that fraction of a fee.
    """
    return entry_fee_bps + exit_fee_bps


class PlannedFees(NamedTuple):
    """The fee each leg of a planned scalp pays, bps of its notional (negative: a maker rebate).

    Attributes
    ----------
    entry_bps, take_profit_exit_bps, stop_loss_exit_bps : float
        The entry's, the take-profit exit's and the stop-loss (and time-stop) exit's fee rate.
    """

    entry_bps: float
    take_profit_exit_bps: float
    stop_loss_exit_bps: float

    @classmethod
    def taker(cls, taker_fee_bps: float) -> PlannedFees:
        """Every leg a marketable IOC order paying the taker fee (taker mode)."""
        return cls(taker_fee_bps, taker_fee_bps, taker_fee_bps)

    @classmethod
    def maker(cls, maker_fee_bps: float, taker_fee_bps: float) -> PlannedFees:
        """A posted entry and take-profit (maker fee), a crossing stop-loss (taker fee): maker mode."""
        return cls(maker_fee_bps, maker_fee_bps, taker_fee_bps)

    @property
    def win_bps(self) -> float:
        """Round-trip fee of a scalp that ends at its take-profit, ``F_w`` (bps of the entry notional)."""
        return float(round_trip_fee_bps(self.entry_bps, self.take_profit_exit_bps))

    @property
    def loss_bps(self) -> float:
        """Round-trip fee of a scalp that ends at its stop-loss or time stop, ``F_l`` (bps of the entry notional)."""
        return float(round_trip_fee_bps(self.entry_bps, self.stop_loss_exit_bps))


def planned_fees(fees: float | PlannedFees) -> PlannedFees:
    """Return ``fees`` as :class:`PlannedFees`; a number is the taker fee of every leg (taker mode).

    Raises
    ------
    ValueError
        If a number is negative or not finite (a taker fee is a charge); if a leg of a
        :class:`PlannedFees` is not finite, or its stop-loss exit (a crossing order) is negative.
    """
    if not isinstance(fees, PlannedFees):
        fee = float(fees)
        if not (math.isfinite(fee) and fee >= 0.0):
            raise ValueError(f"fee_bps={fees!r} is not a finite non-negative fee")
        return PlannedFees.taker(fee)
    if not all(math.isfinite(x) for x in fees) or not fees.stop_loss_exit_bps >= 0.0:
        raise ValueError(f"fee_bps={fees!r}: every leg must be finite and the stop-loss exit (taker) >= 0")
    return fees


@inline_kernel
def _f_star(p: float, b: float) -> float:
    return p - (1.0 - p) / b


@inline_kernel
def edge_bps(p: float, take_profit_bps: float, stop_loss_bps: float, win_fee_bps: float, loss_fee_bps: float) -> float:
    """The compiled rule of :func:`expected_edge_bps` (inputs unchecked): ``p (tp - F_w) - (1 - p) (sl + F_l)``,
    written so that equal round trips (taker mode) give ``p tp - (1 - p) sl - F`` bit for bit."""
    return p * take_profit_bps - (1.0 - p) * stop_loss_bps - (loss_fee_bps + p * (win_fee_bps - loss_fee_bps))


@inline_kernel
def p_refusal(
    p: float,
    take_profit_bps: float,
    stop_loss_bps: float,
    min_probability: float,
    win_fee_bps: float,
    loss_fee_bps: float,
) -> int:
    """The sizing rules that read nothing but ``p`` and the config, in :func:`kelly_qty`'s order
    (``win_fee_bps`` / ``loss_fee_bps``: the round trips ``F_w`` / ``F_l``, module docstring).

    Returns 0 when ``p`` passes them (the size then depends on equity and limits), else the
    :class:`RejectReason` value ``BELOW_MIN_PROBABILITY``, ``KELLY_NON_POSITIVE`` (gross ``f*`` <= 0)
    or ``EDGE_BELOW_FEES``. ``p`` is not range-checked here: a NaN passes every rule (each comparison
    is false), which leaves it to :func:`kelly_qty` to refuse.
    """
    if p < min_probability:
        return _BELOW_MIN_PROBABILITY
    if _f_star(p, take_profit_bps / stop_loss_bps) <= 0.0:
        return _KELLY_NON_POSITIVE
    if edge_bps(p, take_profit_bps, stop_loss_bps, win_fee_bps, loss_fee_bps) <= 0.0:
        return _EDGE_BELOW_FEES
    return 0


@kernel
def p_refusals(
    p: np.ndarray,
    take_profit_bps: float,
    stop_loss_bps: float,
    min_probability: float,
    win_fee_bps: float,
    loss_fee_bps: float,
    out: np.ndarray,
) -> None:
    """Write :func:`p_refusal` of every ``p`` (float64[M]) into ``out`` (int8[M], preallocated).

    The same inlined rule the per-decision sizing runs, so a replay that screens its decisions'
    probabilities in advance (``backtest/batched.py``) refuses exactly the decisions the sizing would.
    A ``p`` outside [0, 1] (NaN included) gets 0: the per-decision rule refuses it as an error.
    """
    for i in range(p.shape[0]):
        pi = p[i]
        if 0.0 <= pi <= 1.0:
            out[i] = p_refusal(pi, take_profit_bps, stop_loss_bps, min_probability, win_fee_bps, loss_fee_bps)
        else:
            out[i] = 0


def kelly_fraction_star(p: float, b: float) -> float:
    """Return the full-Kelly fraction of equity to risk on a binary bet.

    ``f* = p - (1 - p) / b`` maximises the expected log growth of equity (Kelly 1956).

    Parameters
    ----------
    p : float
        Probability of the win, in [0, 1].
    b : float
        Payoff ratio: amount won per unit lost (here ``take_profit_bps / stop_loss_bps``), > 0.

    Returns
    -------
    float
        ``f*``, dimensionless; <= 0 means the bet has no edge and must not be taken. Ranges over
        ``[-1/b, 1]``.

    Raises
    ------
    ValueError
        If ``p`` is not in [0, 1] or ``b`` is not a finite positive number (NaN included).

    References
    ----------
    J. L. Kelly Jr., "A New Interpretation of Information Rate", Bell System Technical Journal 35(4),
    917-926, 1956.
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"win probability p={p!r} is not in [0, 1]")
    if not (math.isfinite(b) and b > 0.0):
        raise ValueError(f"payoff ratio b={b!r} is not a finite positive number")
    return _f_star(p, b)


def expected_edge_bps(p: float, take_profit_bps: float, stop_loss_bps: float, fee_bps: float | PlannedFees) -> float:
    """Return the expected return of one round trip, net of the fees of its entry and exit.

    ``edge = p * (take_profit_bps - F_w) - (1 - p) * (stop_loss_bps + F_l)`` with the round trips of
    :class:`PlannedFees` (module docstring); with one taker fee ``t`` on every leg
    ``edge = p * take_profit_bps - (1 - p) * stop_loss_bps - 2 t``.

    Parameters
    ----------
    p : float
        Probability of reaching the take-profit before the stop-loss, in [0, 1].
    take_profit_bps, stop_loss_bps : float
        Distance from the entry price to the take-profit and to the stop-loss, bps, > 0.
    fee_bps : float or PlannedFees
        The fee of each leg, bps of notional; a number is the taker fee of every leg.

    Returns
    -------
    float
        Expected edge, bps of the entry notional; <= 0 means fees eat the bet.

    Raises
    ------
    ValueError
        If ``p`` is not in [0, 1] or the fees are out of range (:func:`planned_fees`).
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"win probability p={p!r} is not in [0, 1]")
    fees = planned_fees(fee_bps)
    return edge_bps(p, take_profit_bps, stop_loss_bps, fees.win_bps, fees.loss_bps)


@inline_kernel
def kelly_qty(
    p: float,
    price: float,
    equity: float,
    current_abs_position: float,
    kelly_fraction: float,
    take_profit_bps: float,
    stop_loss_bps: float,
    min_probability: float,
    max_position: float,
    max_order_notional: float,
    win_fee_bps: float,
    loss_fee_bps: float,
    lot_size: float,
) -> tuple[float, int]:
    """The compiled rule of :func:`kelly_size`, with the config's fields passed one by one and the fees as
    the round trips ``F_w`` (``win_fee_bps``) and ``F_l`` (``loss_fee_bps``) of :class:`PlannedFees`.

    Returns ``(qty, code)``: ``code`` is 0 when sized, else the :class:`RejectReason` value, or a
    negative ``BAD_*`` code naming the input out of range (nothing raised: the hot path fails closed).
    A loss leg that gains (``stop_loss_bps + F_l <= 0``) is ``BAD_FEE``: the bet would have no loss.
    """
    if not (math.isfinite(price) and price > 0.0):
        return 0.0, BAD_PRICE
    if not (math.isfinite(lot_size) and lot_size > 0.0):
        return 0.0, BAD_LOT_SIZE
    if not (math.isfinite(win_fee_bps) and math.isfinite(loss_fee_bps) and stop_loss_bps + loss_fee_bps > 0.0):
        return 0.0, BAD_FEE
    if not (math.isfinite(current_abs_position) and current_abs_position >= 0.0):
        return 0.0, BAD_POSITION
    if not math.isfinite(equity):
        return 0.0, BAD_EQUITY
    if not 0.0 <= p <= 1.0:
        return 0.0, BAD_PROBABILITY
    code = p_refusal(p, take_profit_bps, stop_loss_bps, min_probability, win_fee_bps, loss_fee_bps)
    if code:
        return 0.0, code
    if equity <= 0.0:
        return 0.0, _KELLY_NON_POSITIVE
    # A positive edge with a positive loss leg implies take_profit_bps > F_w: the net ratio is positive.
    net_b = (take_profit_bps - win_fee_bps) / (stop_loss_bps + loss_fee_bps)
    f_star = _f_star(p, net_b)
    loss_per_unit = price * (stop_loss_bps + loss_fee_bps) / 1e4
    kelly = kelly_fraction * f_star * equity / loss_per_unit
    position_room = max_position - current_abs_position
    notional_room = max_order_notional / price
    qty = floor_to_lot(max(0.0, min(kelly, position_room, notional_room)), lot_size)
    if qty > 0.0:
        return qty, 0
    if position_room <= min(kelly, notional_room):
        return 0.0, _MAX_POSITION
    if notional_room <= kelly:
        return 0.0, _MAX_ORDER_NOTIONAL
    return 0.0, _KELLY_NON_POSITIVE


_BAD_INPUT = {
    BAD_PRICE: "price={price!r} is not a finite positive price",
    BAD_LOT_SIZE: "lot_size={lot_size!r} is not a finite positive size",
    BAD_FEE: "fee_bps={fee_bps!r}: the stop-loss leg stop_loss_bps + F_l must be a loss (> 0)",
    BAD_POSITION: "current_abs_position={current_abs_position!r} is not finite and >= 0",
    BAD_EQUITY: "equity={equity!r} is not finite",
    BAD_PROBABILITY: "win probability p={p!r} is not in [0, 1]",
}


def kelly_size(
    p: float,
    price: float,
    equity: float,
    cfg: RiskConfig,
    fee_bps: float | PlannedFees,
    lot_size: float,
    current_abs_position: float,
) -> tuple[float, RejectReason | None]:
    """Return the fractional-Kelly entry size, on the lot grid and inside the hard limits, and which
    rule bound it when it is zero.

    The stake is the equity lost if the stop-loss is hit: ``kelly_fraction * f* * equity``, with
    ``f*`` from :func:`kelly_fraction_star` at the net payoff ratio
    ``b = (take_profit_bps - F_w) / (stop_loss_bps + F_l)`` (round trips of :class:`PlannedFees`, module
    docstring). Staking a fraction of full Kelly trades a little growth for much less variance and
    protects against an overestimated ``p`` (Thorp 2006). The size loses that stake at the stop:
    ``qty = stake / loss_per_unit`` with ``loss_per_unit = price * (stop_loss_bps + F_l) / 1e4``.
    It is then capped so that ``current_abs_position + qty <= max_position`` and
    ``qty * price <= max_order_notional``, and rounded down to a multiple of ``lot_size``.

    Parameters
    ----------
    p : float
        Model probability that the take-profit is hit before the stop-loss, in [0, 1].
    price : float
        Entry price, quote currency per base unit, > 0. Pass the order's limit price so the notional
        cap here agrees with the pre-trade notional check.
    equity : float
        Account equity, quote currency; <= 0 gives size 0.
    cfg : RiskConfig
        Kelly fraction, take-profit, stop-loss, minimum probability and the hard limits.
    fee_bps : float or PlannedFees
        The fee of each leg, bps of notional; a number is the taker fee of every leg (>= 0).
    lot_size : float
        Lot size, base units, > 0.
    current_abs_position : float
        Absolute current position, base units, >= 0.

    Returns
    -------
    qty : float
        Entry size, base units, a non-negative multiple of ``lot_size``.
    reason : RejectReason or None
        None when ``qty > 0``; otherwise why it is zero, first rule first: ``BELOW_MIN_PROBABILITY``
        (``p < min_probability``), ``KELLY_NON_POSITIVE`` (gross ``f*`` <= 0, fees left out),
        ``EDGE_BELOW_FEES`` (:func:`expected_edge_bps` <= 0), ``KELLY_NON_POSITIVE`` (equity <= 0),
        then, when the caps leave less than one lot, ``MAX_POSITION``, ``MAX_ORDER_NOTIONAL`` or
        ``KELLY_NON_POSITIVE`` (the stake itself is below one lot).

    Raises
    ------
    ValueError
        If ``p`` is not in [0, 1], or ``price``, ``lot_size``, ``fee_bps`` (:func:`planned_fees`; also a
        stop-loss leg that gains), ``current_abs_position`` or ``equity`` is out of the ranges above or
        not finite.

    References
    ----------
    J. L. Kelly Jr., "A New Interpretation of Information Rate", Bell System Technical Journal 35(4),
    917-926, 1956.
    E. O. Thorp, "The Kelly Criterion in Blackjack, Sports Betting, and the Stock Market", in
    Handbook of Asset and Liability Management, Vol. 1, Elsevier, 2006.
    """
    p, price, equity, lot_size = float(p), float(price), float(equity), float(lot_size)
    # Bad fees are reported in the kernel's order of checks (after price and lot size): NaN fails it there.
    fee_error: ValueError | None = None
    try:
        fees = planned_fees(fee_bps)
        win_bps, loss_bps = fees.win_bps, fees.loss_bps
    except ValueError as exc:
        fee_error, win_bps, loss_bps = exc, math.nan, math.nan
    current_abs_position = float(current_abs_position)
    qty, code = kelly_qty(
        p,
        price,
        equity,
        current_abs_position,
        cfg.kelly_fraction,
        cfg.take_profit_bps,
        cfg.stop_loss_bps,
        cfg.min_probability,
        cfg.max_position,
        cfg.max_order_notional,
        win_bps,
        loss_bps,
        lot_size,
    )
    if code == BAD_FEE and fee_error is not None:
        raise fee_error
    if code < 0:
        values = {
            "p": p,
            "price": price,
            "equity": equity,
            "fee_bps": fee_bps,
            "lot_size": lot_size,
            "current_abs_position": current_abs_position,
        }
        raise ValueError(_BAD_INPUT[code].format(**values))
    return qty, (REASON_OF_CODE[code] if code else None)
