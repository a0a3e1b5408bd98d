"""Fractional Kelly sizing of a take-profit / stop-loss bet, net of taker fees.

A scalp entered at ``price`` either reaches its take-profit or its stop-loss first; the model gives
the probability ``p`` of the win. Net of the taker fee ``f`` paid on entry and on exit, the win is
``take_profit_bps - 2f`` and the loss ``stop_loss_bps + 2f``: Kelly's binary bet with payoff ratio
``b = (take_profit_bps - 2f) / (stop_loss_bps + 2f)``. (With ``f = 0`` this is the gross ratio
``take_profit_bps / stop_loss_bps``; sizing on the gross ratio would over-bet whenever fees are paid.)
"""

from __future__ import annotations

import math

import numpy as np

from scalper.lowlevel.jit import inline_kernel
from scalper.risk.config import RiskConfig
from scalper.risk.intent import REASON_OF_CODE, RejectReason
from scalper.risk.lots import floor_to_lot

# What kelly_qty returns instead of a reason when an input is out of range: negative, so it never
# collides with a RejectReason; kelly_size_with_reason turns it into the ValueError it names.
BAD_PRICE, BAD_LOT_SIZE, BAD_FEE, BAD_POSITION, BAD_EQUITY, BAD_PROBABILITY = -1, -2, -3, -4, -5, -6

# Plain ints, which numba compiles in as constants.
_BELOW_MIN_PROBABILITY = int(RejectReason.BELOW_MIN_PROBABILITY)
_KELLY_NON_POSITIVE = int(RejectReason.KELLY_NON_POSITIVE)
_EDGE_BELOW_FEES = int(RejectReason.EDGE_BELOW_FEES)
_MAX_POSITION = int(RejectReason.MAX_POSITION)
_MAX_ORDER_NOTIONAL = int(RejectReason.MAX_ORDER_NOTIONAL)


@inline_kernel
def _f_star(p: float, b: float) -> float:
    return p - (1.0 - p) / b


@inline_kernel
def _edge_bps(p: float, take_profit_bps: float, stop_loss_bps: float, fee_bps: float) -> float:
    return p * take_profit_bps - (1.0 - p) * stop_loss_bps - 2.0 * fee_bps


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


def expected_edge_bps(p: float, take_profit_bps: float, stop_loss_bps: float, fee_bps: float) -> float:
    """Return the expected return of one round trip, net of taker fees on entry and exit.

    ``edge = p * take_profit_bps - (1 - p) * stop_loss_bps - 2 * fee_bps``.

    Parameters
    ----------
    p : float
        Probability of reaching the take-profit before the stop-loss, in [0, 1].
    take_profit_bps, stop_loss_bps : float
        Distance from the entry price to the take-profit and to the stop-loss, bps, > 0.
    fee_bps : float
        Taker fee per side, bps of notional.

    Returns
    -------
    float
        Expected edge, bps of the entry notional; <= 0 means fees eat the bet.

    Raises
    ------
    ValueError
        If ``p`` is not in [0, 1].
    """
    if not 0.0 <= p <= 1.0:
        raise ValueError(f"win probability p={p!r} is not in [0, 1]")
    return _edge_bps(p, take_profit_bps, stop_loss_bps, fee_bps)


def kelly_size_with_reason(
    p: float,
    price: float,
    equity: float,
    cfg: RiskConfig,
    fee_bps: float,
    lot_size: float,
    current_abs_position: float,
) -> tuple[float, RejectReason | None]:
    """Size an entry by fractional Kelly and say which rule bound it when the size is zero.

    See :func:`kelly_size` for the rule, parameters and errors raised.

    Returns
    -------
    qty : float
        Entry size, base units: a non-negative multiple of ``lot_size``.
    reason : RejectReason or None
        None when ``qty > 0``; otherwise why it is zero: ``BELOW_MIN_PROBABILITY``,
        ``KELLY_NON_POSITIVE`` (no edge by Kelly, no equity, or a stake below one lot),
        ``EDGE_BELOW_FEES``, ``MAX_POSITION`` or ``MAX_ORDER_NOTIONAL``.
    """
    p, price, equity, lot_size, fee_bps = float(p), float(price), float(equity), float(lot_size), float(fee_bps)
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
        fee_bps,
        lot_size,
    )
    if code < 0:
        bad = {
            BAD_PRICE: f"price={price!r} is not a finite positive price",
            BAD_LOT_SIZE: f"lot_size={lot_size!r} is not a finite positive size",
            BAD_FEE: f"fee_bps={fee_bps!r} is not a finite non-negative fee",
            BAD_POSITION: f"current_abs_position={current_abs_position!r} is not finite and >= 0",
            BAD_EQUITY: f"equity={equity!r} is not finite",
            BAD_PROBABILITY: f"win probability p={p!r} is not in [0, 1]",
        }
        raise ValueError(bad[code])
    return qty, (REASON_OF_CODE[code] if code else None)


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
    fee_bps: float,
    lot_size: float,
) -> tuple[float, int]:
    """The compiled rule of :func:`kelly_size_with_reason`, with the config's fields passed one by one.

    Returns ``(qty, code)``: ``code`` is 0 when sized, else the :class:`RejectReason` value, or a
    negative ``BAD_*`` code naming the input out of range (nothing raised: the hot path fails closed).
    """
    if not (math.isfinite(price) and price > 0.0):
        return 0.0, BAD_PRICE
    if not (math.isfinite(lot_size) and lot_size > 0.0):
        return 0.0, BAD_LOT_SIZE
    if not (math.isfinite(fee_bps) and fee_bps >= 0.0):
        return 0.0, BAD_FEE
    if not (math.isfinite(current_abs_position) and current_abs_position >= 0.0):
        return 0.0, BAD_POSITION
    if not math.isfinite(equity):
        return 0.0, BAD_EQUITY
    if not 0.0 <= p <= 1.0:
        return 0.0, BAD_PROBABILITY
    gross_f_star = _f_star(p, take_profit_bps / stop_loss_bps)
    if p < min_probability:
        return 0.0, _BELOW_MIN_PROBABILITY
    if gross_f_star <= 0.0:
        return 0.0, _KELLY_NON_POSITIVE
    if _edge_bps(p, take_profit_bps, stop_loss_bps, fee_bps) <= 0.0:
        return 0.0, _EDGE_BELOW_FEES
    if equity <= 0.0:
        return 0.0, _KELLY_NON_POSITIVE
    # A positive edge implies take_profit_bps > 2 * fee_bps, so the net payoff ratio is positive.
    net_b = (take_profit_bps - 2.0 * fee_bps) / (stop_loss_bps + 2.0 * fee_bps)
    f_star = _f_star(p, net_b)
    loss_per_unit = price * (stop_loss_bps + 2.0 * fee_bps) / 1e4
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


def kelly_size(
    p: float,
    price: float,
    equity: float,
    cfg: RiskConfig,
    fee_bps: float,
    lot_size: float,
    current_abs_position: float,
) -> float:
    """Return the fractional-Kelly entry size, on the lot grid and inside the hard limits.

    The stake is the equity lost if the stop-loss is hit: ``kelly_fraction * f* * equity``, with
    ``f*`` from :func:`kelly_fraction_star` at the net payoff ratio
    ``b = (take_profit_bps - 2 * fee_bps) / (stop_loss_bps + 2 * fee_bps)``. Staking a
    fraction of full Kelly trades a little growth for much less variance and protects against an
    overestimated ``p`` (Thorp 2006). The size loses that stake at the stop:
    ``qty = stake / loss_per_unit`` with ``loss_per_unit = price * (stop_loss_bps + 2 * fee_bps) / 1e4``.
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
    fee_bps : float
        Taker fee per side, bps of notional, >= 0.
    lot_size : float
        Lot size, base units, > 0.
    current_abs_position : float
        Absolute current position, base units, >= 0.

    Returns
    -------
    float
        Entry size, base units, a non-negative multiple of ``lot_size``. It is 0 when
        ``p < min_probability``, the gross ``f*`` (fees left out) is <= 0, the expected edge after fees
        (:func:`expected_edge_bps`) is <= 0, the equity is <= 0, or the caps leave less than one lot.

    Raises
    ------
    ValueError
        If ``p`` is not in [0, 1], or ``price``, ``lot_size``, ``fee_bps``, ``current_abs_position``
        or ``equity`` is out of the ranges above or not finite.

    References
    ----------
    J. L. Kelly Jr., "A New Interpretation of Information Rate", Bell System Technical Journal 35(4),
    917-926, 1956.
    E. O. Thorp, "The Kelly Criterion in Blackjack, Sports Betting, and the Stock Market", in
    Handbook of Asset and Liability Management, Vol. 1, Elsevier, 2006.
    """
    return kelly_size_with_reason(p, price, equity, cfg, fee_bps, lot_size, current_abs_position)[0]


def edge_rejections(p: np.ndarray, cfg: RiskConfig, fee_bps: float) -> np.ndarray:
    """Return, per probability, the refusal :func:`kelly_size_with_reason` gives on ``p`` alone.

    The first three rules of the sizing depend on nothing but ``p`` and the config; a replay that
    knows every decision's probability in advance uses this to skip decisions no position could
    come from. Same formulas, same order, elementwise, so the result equals the scalar rule's.

    Parameters
    ----------
    p : ndarray
        float64[M], win probabilities in [0, 1].
    cfg : RiskConfig
    fee_bps : float
        Taker fee per side, bps.

    Returns
    -------
    ndarray
        int8[M]: 0 where ``p`` passes those rules (the size then depends on equity and limits),
        else ``BELOW_MIN_PROBABILITY``, ``KELLY_NON_POSITIVE`` or ``EDGE_BELOW_FEES``.
    """
    p = np.asarray(p, dtype=np.float64)
    b = cfg.take_profit_bps / cfg.stop_loss_bps
    gross_f_star = p - (1.0 - p) / b
    edge = p * cfg.take_profit_bps - (1.0 - p) * cfg.stop_loss_bps - 2.0 * fee_bps
    out = np.zeros(p.shape, dtype=np.int8)
    out[edge <= 0.0] = RejectReason.EDGE_BELOW_FEES
    out[gross_f_star <= 0.0] = RejectReason.KELLY_NON_POSITIVE
    out[p < cfg.min_probability] = RejectReason.BELOW_MIN_PROBABILITY
    return out
