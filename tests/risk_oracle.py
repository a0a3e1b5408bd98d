"""The risk rules in plain Python: the test oracle of the compiled ones (``scalper.risk.kelly``, ``.limits``).

Written from the documented rules (``kelly_size``, ``RiskManager.check``, ``RiskManager.enter_at_touch``)
without numba or numpy, so a property test that compares the two catches a kernel that drifts from
the rule. Only the lot arithmetic mirrors ``scalper.risk.lots`` constant by constant (float noise
tolerance is a convention, not a rule to rederive).
"""

from __future__ import annotations

import math

from scalper.risk.config import RiskConfig
from scalper.risk.intent import RejectReason, TradingState

R = RejectReason


def _snap(lots: float) -> float:
    nearest = float(round(lots)) if math.isfinite(lots) else lots
    if abs(lots - nearest) <= 1e-9 + 1e-12 * abs(nearest):
        return nearest
    return lots


def floor_to_lot(qty: float, lot: float) -> float:
    return math.floor(_snap(qty / lot)) * lot


def exceeds(value: float, limit: float, unit: float) -> bool:
    return value > limit + 2e-9 * unit + 1e-11 * abs(limit)


def leg_fees(fee_bps: float | tuple[float, float, float]) -> tuple[float, float]:
    """The round-trip fees ``(win, loss)`` of a scalp, bps: a number is the taker fee of all three legs
    (entry, take-profit exit, stop-loss exit); a triple gives each leg's. ValueError as ``planned_fees``."""
    if isinstance(fee_bps, tuple):
        entry, tp_exit, sl_exit = (float(x) for x in fee_bps)
        if not all(math.isfinite(x) for x in (entry, tp_exit, sl_exit)) or not sl_exit >= 0.0:
            raise ValueError("fee_bps")
    else:
        if not (math.isfinite(fee_bps) and fee_bps >= 0.0):
            raise ValueError("fee_bps")
        entry = tp_exit = sl_exit = fee_bps
    # The win pays the entry and the take-profit exit, the loss the entry and the stop-loss exit.
    return entry + tp_exit, entry + sl_exit


def kelly(
    p: float,
    price: float,
    equity: float,
    abs_position: float,
    cfg: RiskConfig,
    fee_bps: float | tuple[float, float, float],
    lot: float,
) -> tuple[float, RejectReason | None]:
    """(qty, None) or (0.0, reason); ValueError for an input out of range (as ``kelly_size``)."""
    if not (math.isfinite(price) and price > 0.0):
        raise ValueError("price")
    if not (math.isfinite(lot) and lot > 0.0):
        raise ValueError("lot_size")
    win_fees, loss_fees = leg_fees(fee_bps)
    if not cfg.stop_loss_bps + loss_fees > 0.0:
        raise ValueError("fee_bps")
    if not (math.isfinite(abs_position) and abs_position >= 0.0):
        raise ValueError("current_abs_position")
    if not math.isfinite(equity):
        raise ValueError("equity")
    if not 0.0 <= p <= 1.0:
        raise ValueError("p")
    tp, sl = cfg.take_profit_bps, cfg.stop_loss_bps
    if p < cfg.min_probability:
        return 0.0, R.BELOW_MIN_PROBABILITY
    if p - (1.0 - p) / (tp / sl) <= 0.0:
        return 0.0, R.KELLY_NON_POSITIVE
    # Expected net return: the win less its fees, the loss plus its fees (the kernel writes the same sum
    # so that equal round trips give p tp - (1 - p) sl - F exactly).
    if p * tp - (1.0 - p) * sl - (loss_fees + p * (win_fees - loss_fees)) <= 0.0:
        return 0.0, R.EDGE_BELOW_FEES
    if equity <= 0.0:
        return 0.0, R.KELLY_NON_POSITIVE
    f_star = p - (1.0 - p) / ((tp - win_fees) / (sl + loss_fees))
    stake_qty = cfg.kelly_fraction * f_star * equity / (price * (sl + loss_fees) / 1e4)
    position_room = cfg.max_position - abs_position
    notional_room = cfg.max_order_notional / price
    qty = floor_to_lot(max(0.0, min(stake_qty, position_room, notional_room)), lot)
    if qty > 0.0:
        return qty, None
    if position_room <= min(stake_qty, notional_room):
        return 0.0, R.MAX_POSITION
    if notional_room <= stake_qty:
        return 0.0, R.MAX_ORDER_NOTIONAL
    return 0.0, R.KELLY_NON_POSITIVE


class OracleRisk:
    """The pre-trade rules of one instrument with their entries-per-second window; no account.

    Equity, position and trading state are handed in at each call (a test reads them from the
    risk manager it compares with).
    """

    def __init__(self, cfg: RiskConfig, lot: float, fee_bps: float | tuple[float, float, float]) -> None:
        self.cfg, self.lot, self.fee_bps = cfg, lot, fee_bps
        self.approved: list[int] = []  # event times of approved entries

    def check(
        self,
        state: TradingState,
        position: float,
        side: int,
        qty: float,
        price: float,
        is_exit: bool,
        ts_ns: int,
        spread_ticks: float,
        last_book_ts_ns: int,
        is_book_valid: bool,
    ) -> RejectReason | None:
        """The rules of ``RiskManager.check`` after its intent checks."""
        cfg, lot = self.cfg, self.lot
        if state == TradingState.HALTED:
            return R.HALTED
        if is_exit:
            if position == 0.0 or (position > 0.0) == (side > 0) or exceeds(qty, abs(position), lot):
                return R.EXIT_EXCEEDS_POSITION
            return None
        if state == TradingState.REDUCING_ONLY:
            return R.REDUCING_ONLY
        if not is_book_valid:
            return R.BOOK_INVALID
        if ts_ns - last_book_ts_ns > cfg.stale_book_ms * 1_000_000:
            return R.STALE_BOOK
        if spread_ticks > cfg.max_spread_ticks:
            return R.MAX_SPREAD
        if exceeds(abs(position + side * qty), cfg.max_position, lot):
            return R.MAX_POSITION
        if exceeds(qty * price, cfg.max_order_notional, lot * price):
            return R.MAX_ORDER_NOTIONAL
        self.approved = [t for t in self.approved if t > ts_ns - 1_000_000_000]
        if len(self.approved) >= cfg.max_orders_per_second:
            return R.MAX_ORDERS_PER_SECOND
        self.approved.append(ts_ns)
        return None

    def enter_at_touch(
        self,
        state: TradingState,
        equity: float,
        position: float,
        ts_ns: int,
        side: int,
        p: float,
        slippage: float,
        tick: float,
        bid_tick: int | None,
        ask_tick: int | None,
        last_book_ts_ns: int,
        is_book_valid: bool,
    ) -> tuple[float, float, RejectReason | None]:
        """``(qty, limit, reason)``: the Kelly size at the touch limit, then the checks; ``qty`` 0 when the
        sizing refused. ``bid_tick`` / ``ask_tick`` None for an empty side."""
        bid = bid_tick if bid_tick is not None else -(2**63)
        ask = ask_tick if ask_tick is not None else 2**63 - 1
        limit = (ask if side > 0 else bid) * tick * (1.0 + side * slippage)
        spread = float(ask - bid) if bid_tick is not None and ask_tick is not None else math.inf
        try:
            qty, reason = kelly(p, limit, equity, abs(position), self.cfg, self.fee_bps, self.lot)
        except ValueError:
            return 0.0, limit, R.RISK_CHECK_ERROR
        if reason is not None:
            return 0.0, limit, reason
        return (
            qty,
            limit,
            self.check(state, position, side, qty, limit, False, ts_ns, spread, last_book_ts_ns, is_book_valid),
        )
