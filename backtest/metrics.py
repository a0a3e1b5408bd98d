"""Backtest metrics from the fills and the mid series: PnL, round trips, Sharpe, drawdown, turnover."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MINUTE_NS = 60_000_000_000


@dataclass(frozen=True)
class RoundTrips:
    """Flat-to-flat trades: float64[K] net PnL (quote, after fees) and int64[K] end times (ns)."""

    net_pnl: np.ndarray
    end_ts: np.ndarray


def round_trips(side: np.ndarray, qty: np.ndarray, price: np.ndarray, fee: np.ndarray, ts: np.ndarray) -> RoundTrips:
    """Cut the fill sequence where the position returns to zero and sum each segment's net cash flow.

    Parameters
    ----------
    side : int8[N] (+1 buy, -1 sell); qty, price, fee : float64[N] (base units, quote per unit, quote);
    ts : int64[N] fill times, ns.
    """
    position = np.cumsum(side * qty)
    flat = np.flatnonzero(np.isclose(position, 0.0, atol=1e-9))
    cash = -side * qty * price - fee
    csum = np.concatenate(([0.0], np.cumsum(cash)))
    starts = np.concatenate(([0], flat[:-1] + 1))
    pnl = csum[flat + 1] - csum[starts]
    return RoundTrips(net_pnl=pnl, end_ts=ts[flat])


def equity_curve(
    fills_ts: np.ndarray,
    side: np.ndarray,
    qty: np.ndarray,
    price: np.ndarray,
    fee: np.ndarray,
    grid_ts: np.ndarray,
    mid_at_grid: np.ndarray,
    initial_equity: float,
) -> np.ndarray:
    """Return equity (quote) at each grid time: cash after fills up to then plus position marked at the mid.

    Parameters
    ----------
    grid_ts : int64[G], ns; mid_at_grid : float64[G], quote currency (NaN where no mid: the
        position is then valued at the last known mid).
    """
    order = np.searchsorted(fills_ts, grid_ts, side="right")
    cash = np.concatenate(([0.0], np.cumsum(-side * qty * price - fee)))[order]
    pos = np.concatenate(([0.0], np.cumsum(side * qty)))[order]
    # Forward-fill missing mids so an open position keeps its last value rather than vanishing.
    idx = np.where(np.isfinite(mid_at_grid), np.arange(len(mid_at_grid)), -1)
    np.maximum.accumulate(idx, out=idx)
    mid = np.where(idx >= 0, mid_at_grid[np.maximum(idx, 0)], 0.0)
    return initial_equity + cash + pos * mid


def max_drawdown(equity: np.ndarray) -> float:
    """Return the largest fall from a running peak of ``equity`` (quote currency, >= 0)."""
    if equity.size == 0:
        return 0.0
    return float(np.max(np.maximum.accumulate(equity) - equity))


def sharpe_ratio(equity: np.ndarray, periods_per_year: float) -> float | None:
    """Return the annualised Sharpe ratio of per-period equity changes (zero risk-free rate; Sharpe 1994).

    Returns None, undefined, when there are fewer than two changes or they do not vary (a flat
    equity curve: 0 / 0, not a ratio of 0).
    """
    d = np.diff(equity)
    if d.size < 2 or not np.std(d, ddof=1) > 0:
        return None
    return float(np.mean(d) / np.std(d, ddof=1) * np.sqrt(periods_per_year))


MIN_SHARPE_TRADES = 30  # fewer round trips: an annualised Sharpe says little (flagged in the report)
MIN_SHARPE_SPAN_NS = 3_600_000_000_000  # under an hour of trading: likewise


def break_even_hit_rate(net_pnl: np.ndarray) -> float | None:
    """Return the hit rate at which trades of these sizes break even: mean loss / (mean win + mean loss).

    The baseline of the realised hit rate: with the average winner and loser of ``net_pnl`` (float64[K],
    quote), a strategy must win more often than this to make money. None without a winner or a loser.
    """
    wins, losses = net_pnl[net_pnl > 0], -net_pnl[net_pnl < 0]
    if wins.size == 0 or losses.size == 0:
        return None
    return float(losses.mean() / (wins.mean() + losses.mean()))


def sharpe_flags(trades: int, span_ns: int) -> list[str]:
    """Return why an annualised Sharpe from ``trades`` round trips over ``span_ns`` of trading is unreliable."""
    out = []
    if trades < MIN_SHARPE_TRADES:
        out.append(f"annualised from {trades} round trips (< {MIN_SHARPE_TRADES})")
    if span_ns < MIN_SHARPE_SPAN_NS:
        out.append(f"annualised from {span_ns / 3.6e12:.2f} h of trading (< {MIN_SHARPE_SPAN_NS / 3.6e12:g} h)")
    return out
