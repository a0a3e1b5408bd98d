"""Seeded synthetic order flow: a zero-intelligence limit order book that writes tick-file schema v1.

The product demo and the tests need realistic-looking L2 data without any real data. This module
simulates a market-by-price book driven by independent Poisson order flows, in the spirit of the
"zero-intelligence" (Santa Fe) model of Smith, Farmer, Gillemot & Krishnamurthy (2003), "Statistical
theory of the continuous double auction", Quantitative Finance 3(6), and of the queue model of
Cont, Stoikov & Talreja (2010), "A stochastic model for order book dynamics", Operations Research 58(3).

The model, in integer ticks and whole lots:

* **Limit orders** arrive at ``limit_rate`` per second per side. A buy rests ``d`` ticks below the
  best ask, a sell ``d`` ticks above the best bid, with ``d`` in ``1..depth_ticks`` drawn from a
  truncated power law ``P(d) ~ d**-placement_exponent`` (Cont et al. fit such a law to placement
  depth). Offsets are measured from the opposite best, so a limit order never crosses; ``d`` smaller
  than the spread improves the best price.
* **Market orders** arrive at ``market_rate`` per second per side on average and walk the opposite
  side from its best level, printing one trade per price level they consume.
* **Cancellations** arrive at ``cancel_rate`` per second per resting order, counting the resting
  depth in orders of ``size_mean_lots`` lots. Each one picks a resting lot uniformly, as in Smith et
  al., and removes an order-sized amount from that lot's level (no more than rests there).
* **Sizes** of limit and market orders are geometric on ``1, 2, ...`` lots with mean ``size_mean_lots``.
* **Regimes**: a three-state Markov chain (sell pressure, neutral, buy pressure) that leaves its state
  at rate ``1 / regime_mean_s`` for one of the other two, with equal probability, tilts the buy and
  sell market-order rates to ``market_rate * (1 +/- regime_strength)``.
  The total market-order rate stays ``2 * market_rate``, so trade counts are Poisson whatever the
  regime.
* **Depth window**: only levels within ``depth_ticks`` of the mid are kept, like a depth-limited
  venue feed; a level the mid leaves behind is deleted in the message that moved the mid. A market
  order larger than the whole side fills what rests, and a side that empties out is refilled at once
  by one limit order drawn from the model, so the book is always two-sided and never crossed or
  locked. Bids never rest below one tick, so prices stay positive.

What the order-flow imbalance can and cannot tell, honestly:

* Level-1 queue imbalance predicts the direction of the next mid move *mechanically*: the smaller
  queue is the one that empties first under symmetric Poisson flow (Cont & de Larrard 2013;
  Gould & Bonart 2016, "Queue imbalance as a one-tick-ahead price predictor").
* With ``regime_strength > 0``, market-order signs are persistent for ``regime_mean_s`` seconds, so
  recent signed trade flow (OFI) carries information about the mid a few seconds ahead. That is the
  only source of predictability beyond the book's own mechanics (queue depletion, and the mean
  reversion of the mid that a zero-intelligence book shows when regimes are off); there is no long
  memory of order signs, no volatility clustering, no intraday seasonality and no informed trading.
  A model trained on this data can learn these effects and nothing else.

Time is simulated event by event (Gillespie), event times in ns. The book is first run for
``warmup_s`` seconds unrecorded so that the opening snapshot comes from the model's own steady state;
it is then shifted, which the model's translation invariance allows, so that the session opens with
its mid at ``mid_price``.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import NamedTuple

import numpy as np
from numba import njit

from scalper.ingest.tickfile import (
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    KIND_TRADE,
    Instrument,
    TickData,
)

DEFAULT_START_NS = int(datetime(2024, 1, 2, 14, 30, tzinfo=UTC).timestamp()) * 1_000_000_000
"""2024-01-02T14:30:00Z (a US equity open) in ns since the Unix epoch."""

_BID = 0
_ASK = 1

# Columns of the kernel's int64 output rows; prices and sizes stay integer (ticks, lots) until the end.
_TS, _KIND, _SIDE, _TICK, _LOTS, _FLAGS = range(6)
_NCOL = 6


@dataclass(frozen=True)
class SyntheticConfig:
    """Parameters of one synthetic session (see the module docstring for the model).

    Attributes
    ----------
    seed : int
        Seed of the random generator; the same config gives the same session bit for bit.
    duration_s : float
        Length of the recorded session, seconds (default 30 minutes).
    start_ns : int
        Timestamp of the opening snapshot, ns since the Unix epoch (default 2024-01-02T14:30:00Z).
    tick_size : float
        Price increment, quote currency.
    lot_size : float
        Size increment, base units; every size is a whole number of lots.
    mid_price : float
        Mid price at the opening snapshot, quote currency, to within half a tick (an odd spread
        puts the mid between ticks).
    limit_rate : float
        Limit orders per second on each side.
    market_rate : float
        Market orders per second on each side, averaged over regimes.
    cancel_rate : float
        Cancellations per second per resting order, an order being ``size_mean_lots`` lots.
    placement_exponent : float
        Exponent ``a`` of the placement law ``P(d) ~ d**-a`` of a limit order ``d`` ticks from the
        opposite best, ``d`` in ``1..depth_ticks``. Larger means more orders at the touch.
    depth_ticks : int
        Price levels tracked on each side: orders rest at most this many ticks from the mid.
    size_mean_lots : float
        Mean of the geometric size law (lots, >= 1) of limit and market orders.
    regime_strength : float
        Tilt of the market-order rates in a buy or sell regime, in [0, 1]; 0 switches regimes off.
    regime_mean_s : float
        Mean time a regime lasts, seconds.
    warmup_s : float
        Unrecorded simulated time before the session so the snapshot is in steady state, seconds.

    Notes
    -----
    With the defaults a session carries about 42 messages per second (20 limit orders, 4 market
    orders, about 18 cancellations), the spread is one tick about 80% of the time and the mid moves
    about 1.2 times per second, some 30 to 70 ticks of range over 30 minutes.
    """

    seed: int = 0
    duration_s: float = 1800.0
    start_ns: int = DEFAULT_START_NS
    tick_size: float = 0.01
    lot_size: float = 1.0
    mid_price: float = 100.0
    limit_rate: float = 10.0
    market_rate: float = 2.0
    cancel_rate: float = 0.03
    placement_exponent: float = 0.9
    depth_ticks: int = 200
    size_mean_lots: float = 3.0
    regime_strength: float = 0.5
    regime_mean_s: float = 20.0
    warmup_s: float = 300.0

    def __post_init__(self) -> None:
        checks = (
            (self.duration_s > 0, "duration_s must be > 0"),
            (self.tick_size > 0 and self.lot_size > 0, "tick_size and lot_size must be > 0"),
            (min(self.limit_rate, self.market_rate, self.cancel_rate) > 0, "rates must be > 0"),
            (self.depth_ticks >= 2, "depth_ticks must be >= 2"),
            (self.mid_ticks > self.depth_ticks + 1, "mid_price must exceed depth_ticks + 1 ticks"),
            (self.size_mean_lots >= 1, "size_mean_lots must be >= 1"),
            (0 <= self.regime_strength <= 1, "regime_strength must be in [0, 1]"),
            (self.regime_mean_s > 0 and self.warmup_s >= 0, "regime_mean_s must be > 0, warmup_s >= 0"),
        )
        for ok, reason in checks:
            if not ok:
                raise ValueError(f"SyntheticConfig: {reason}")

    @property
    def mid_ticks(self) -> int:
        """Opening mid in ticks, rounded to the nearest tick."""
        return int(round(self.mid_price / self.tick_size))


class _Model(NamedTuple):
    # The config as the kernels need it: rates per second, sizes in lots, prices in ticks.
    limit_rate: float
    market_rate: float
    cancel_rate: float
    size_mean: float
    regime_strength: float
    regime_switch_rate: float
    depth: int
    placement_cdf: np.ndarray


def _model(cfg: SyntheticConfig) -> _Model:
    """Return the kernel parameters of ``cfg``, with the placement law as a CDF over ``1..depth`` ticks."""
    d = np.arange(1, cfg.depth_ticks + 1, dtype=np.float64)
    cdf = np.cumsum(d**-cfg.placement_exponent)
    cdf /= cdf[-1]
    cdf[-1] = 1.0  # so that a uniform draw in [0, 1) always lands inside the table
    # Explicit casts: a config written with integer rates must not make numba compile a second kernel.
    return _Model(
        limit_rate=float(cfg.limit_rate),
        market_rate=float(cfg.market_rate),
        cancel_rate=float(cfg.cancel_rate),
        size_mean=float(cfg.size_mean_lots),
        regime_strength=float(cfg.regime_strength),
        regime_switch_rate=1.0 / cfg.regime_mean_s,
        depth=int(cfg.depth_ticks),
        placement_cdf=cdf,
    )


# ---------------------------------------------------------------------------------------------
# Book state. ``bk = (q, base, best, far, lots)``: q int64[2, G] lots per tick at index tick - base[0]
# (row 0 bids, row 1 asks); best[s] the best tick; far[s] a tick no better than the worst level;
# lots[s] the total lots of the side (0 means the side is empty and best/far are stale).
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _away(s):
    # Direction, in ticks, from a side's best towards its worse prices.
    return -1 if s == _BID else 1


@njit(cache=True)
def _schema_side(s):
    return 1 if s == _BID else -1


def _new_book(mid: int, depth: int) -> tuple[np.ndarray, ...]:
    """Return an empty book ``(q, base, best, far, lots)`` whose tick grid is centred on ``mid``."""
    # Room for the depth window on both sides of the mid plus as much slack, so recentring is rare.
    width = 4 * depth + 8
    q = np.zeros((2, width), np.int64)
    base = np.array([mid - width // 2], np.int64)
    return q, base, np.zeros(2, np.int64), np.zeros(2, np.int64), np.zeros(2, np.int64)


@njit(cache=True)
def _add(bk, s, tick, size):
    """Add ``size`` lots at ``tick`` on side ``s``; return the new level total (lots)."""
    q, base, best, far, lots = bk
    i = tick - base[0]
    q[s, i] += size
    if lots[s] == 0:
        best[s] = tick
        far[s] = tick
    elif (tick - best[s]) * _away(s) < 0:
        best[s] = tick
    elif (tick - far[s]) * _away(s) > 0:
        far[s] = tick
    lots[s] += size
    return q[s, i]


@njit(cache=True)
def _remove(bk, s, tick, size):
    """Take ``size`` lots (no more than rest there) from ``tick`` on side ``s``; return the new total."""
    q, base, best, far, lots = bk
    i = tick - base[0]
    q[s, i] -= size
    lots[s] -= size
    if q[s, i] == 0 and tick == best[s] and lots[s] > 0:
        step = _away(s)
        t = tick + step
        while q[s, t - base[0]] == 0:
            t += step
        best[s] = t
    return q[s, i]


# An explicit signature: callers pass schema constants, and numba would otherwise compile one
# specialization per literal value.
@njit("Tuple((int64[:, ::1], int64))(int64[:, ::1], int64, int64, int64, int64, int64, int64, int64)", cache=True)
def _emit(out, n, ts, kind, side, tick, lots, flags):
    # Double the buffer when full: the row count of a session is random.
    if n == out.shape[0]:
        grown = np.empty((2 * n, _NCOL), np.int64)
        grown[:n] = out
        out = grown
    out[n, _TS] = ts
    out[n, _KIND] = kind
    out[n, _SIDE] = side
    out[n, _TICK] = tick
    out[n, _LOTS] = lots
    out[n, _FLAGS] = flags
    return out, n + 1


@njit(cache=True)
def _draw_offset(rng, cdf):
    """Draw a placement offset, ticks from the opposite best, in ``1..len(cdf)``."""
    return 1 + np.searchsorted(cdf, rng.random(), side="right")


@njit(cache=True)
def _draw_size(rng, size_mean):
    """Draw an order size, lots, geometric on ``1, 2, ...`` with mean ``size_mean``."""
    # Inverse CDF rather than rng.geometric: same law, a fraction of the compile time. size_mean == 1
    # divides by log(0) = -inf and gives 1 lot, as it should.
    return 1 + np.int64(np.log1p(-rng.random()) / np.log1p(-1.0 / size_mean))


@njit(cache=True)
def _placement(bk, s, d):
    # d ticks from the opposite best, on this side of it. Asks rest at 2 ticks or more, so flooring
    # bids at 1 tick keeps prices positive without ever locking the book.
    best = bk[2]
    o = 1 - s
    return max(best[o] - _away(o) * d, 1)


# ---------------------------------------------------------------------------------------------
# Order-flow events. Each appends the rows of its message and returns (out, n).
# ---------------------------------------------------------------------------------------------


@njit(cache=True)
def _limit_order(bk, out, n, ts, s, d, size):
    """Rest ``size`` lots ``d`` ticks from the opposite best on side ``s``."""
    tick = _placement(bk, s, d)
    total = _add(bk, s, tick, size)
    return _emit(out, n, ts, KIND_BOOK, _schema_side(s), tick, total, 0)


@njit(cache=True)
def _market_order(bk, out, n, ts, aggressor, size):
    """Fill up to ``size`` lots against side ``1 - aggressor`` from its best level outwards.

    Each consumed level prints a trade (aggressor side) followed by its new total. What the side
    cannot fill is dropped; :func:`_refill` then restores the side.
    """
    best, lots = bk[2], bk[4]
    s = 1 - aggressor
    while size > 0 and lots[s] > 0:
        tick = best[s]
        fill = min(size, bk[0][s, tick - bk[1][0]])
        out, n = _emit(out, n, ts, KIND_TRADE, _schema_side(aggressor), tick, fill, 0)
        total = _remove(bk, s, tick, fill)
        out, n = _emit(out, n, ts, KIND_BOOK, _schema_side(s), tick, total, 0)
        size -= fill
    return out, n


@njit(cache=True)
def _cancellation(bk, out, n, ts, rng, size):
    """Cancel up to ``size`` lots at the level of a resting lot drawn uniformly (Smith et al. 2003)."""
    q, base, best, far, lots = bk
    k = int(rng.random() * (lots[_BID] + lots[_ASK]))
    s = _BID
    if k >= lots[_BID]:
        s = _ASK
        k -= lots[_BID]
    tick = best[s]
    while k >= q[s, tick - base[0]]:
        k -= q[s, tick - base[0]]
        tick += _away(s)
    total = _remove(bk, s, tick, min(size, q[s, tick - base[0]]))
    return _emit(out, n, ts, KIND_BOOK, _schema_side(s), tick, total, 0)


@njit(cache=True)
def _refill(bk, out, n, ts, rng, model):
    """Rest one model limit order on a side the last event emptied, so the book stays two-sided."""
    lots = bk[4]
    for s in (_BID, _ASK):
        if lots[s] == 0:
            tick = _placement(bk, s, _draw_offset(rng, model.placement_cdf))
            total = _add(bk, s, tick, _draw_size(rng, model.size_mean))
            out, n = _emit(out, n, ts, KIND_BOOK, _schema_side(s), tick, total, 0)
    return out, n


@njit(cache=True)
def _purge(bk, out, n, ts, depth):
    """Delete levels more than ``depth`` ticks from the mid, as a depth-limited feed would."""
    q, base, best, far, lots = bk
    mid2 = best[_BID] + best[_ASK]  # twice the mid, to stay in integer ticks
    for s in (_BID, _ASK):
        step = _away(s)
        # The spread never exceeds 2 * depth, so the best level is always inside the window.
        while (2 * far[s] - mid2) * step > 2 * depth:
            i = far[s] - base[0]
            if q[s, i] > 0:
                lots[s] -= q[s, i]
                q[s, i] = 0
                out, n = _emit(out, n, ts, KIND_BOOK, _schema_side(s), far[s], 0, 0)
            far[s] -= step
    return out, n


@njit(cache=True)
def _recenter(bk, depth):
    """Shift the tick grid under the book when the mid drifts near its edge (no output)."""
    q, base, best, far, lots = bk
    width = q.shape[1]
    mid = (best[_BID] + best[_ASK]) // 2
    if mid - depth - 2 >= base[0] and mid + depth + 2 < base[0] + width:
        return
    new_base = mid - width // 2
    shifted = np.zeros_like(q)
    for j in range(width):
        old = j + new_base - base[0]
        if 0 <= old < width:
            shifted[:, j] = q[:, old]
    q[:] = shifted
    base[0] = new_base


@njit(cache=True)
def _next_regime(rng, regime):
    """Move to one of the two other regimes (-1 sell, 0 neutral, +1 buy), each with probability 1/2."""
    return (regime + 1 + 1 + int(rng.random() * 2)) % 3 - 1


@njit(cache=True)
def _simulate(rng, bk, regime, model, duration_s, start_ns, out, n):
    """Run the order flow for ``duration_s`` seconds, one message per event stamped ``start_ns + t``.

    ``regime`` is int64[1], updated in place. Event times are those of the superposed Poisson
    processes (Gillespie's direct method), the cancellation rate following the resting depth.
    """
    lots = bk[4]
    t = 0.0
    while True:
        tilt = model.regime_strength * regime[0]
        buy = model.market_rate * (1.0 + tilt)
        market = 2.0 * model.market_rate
        limit = 2.0 * model.limit_rate
        cancel = model.cancel_rate * (lots[_BID] + lots[_ASK]) / model.size_mean
        total_rate = model.regime_switch_rate + market + limit + cancel
        t -= np.log1p(-rng.random()) / total_rate
        if t >= duration_s:
            return out, n
        ts = start_ns + np.int64(t * 1e9)
        u = rng.random() * total_rate - model.regime_switch_rate
        if u < 0.0:
            regime[0] = _next_regime(rng, regime[0])
            continue
        first = n
        size = _draw_size(rng, model.size_mean)
        if u < market:
            out, n = _market_order(bk, out, n, ts, _BID if u < buy else _ASK, size)
        elif u < market + limit:
            s = _BID if u < market + model.limit_rate else _ASK
            out, n = _limit_order(bk, out, n, ts, s, _draw_offset(rng, model.placement_cdf), size)
        else:
            out, n = _cancellation(bk, out, n, ts, rng, size)
        out, n = _refill(bk, out, n, ts, rng, model)
        out, n = _purge(bk, out, n, ts, model.depth)
        _recenter(bk, model.depth)
        if n > first:
            out[n - 1, _FLAGS] |= FLAG_LAST_IN_MESSAGE


@njit(cache=True)
def _seed_book(bk, rng, model, mid):
    """Rest one model-sized order on every tick of the depth window, spread two ticks, as a start."""
    for s in (_BID, _ASK):
        for d in range(1, model.depth + 1):
            _add(bk, s, mid + _away(s) * d, _draw_size(rng, model.size_mean))


def _shift_to(bk: tuple[np.ndarray, ...], mid: int) -> None:
    """Translate the whole book so its mid (rounded down to a tick) is ``mid`` ticks."""
    _, base, best, far, _ = bk
    delta = mid - (best[_BID] + best[_ASK]) // 2
    base += delta
    best += delta
    far += delta


@njit(cache=True)
def _snapshot(bk, out, n, ts):
    """Emit a clear and every level, bids then asks, best first, flagged as one snapshot message."""
    q, base, best, far, lots = bk
    out, n = _emit(out, n, ts, KIND_CLEAR, 0, 0, 0, FLAG_SNAPSHOT)
    for s in (_BID, _ASK):
        step = _away(s)
        for tick in range(best[s], far[s] + step, step):
            size = q[s, tick - base[0]]
            if size > 0:
                out, n = _emit(out, n, ts, KIND_BOOK, _schema_side(s), tick, size, FLAG_SNAPSHOT)
    out[n - 1, _FLAGS] |= FLAG_LAST_IN_MESSAGE
    return out, n


def _session_rows(cfg: SyntheticConfig) -> np.ndarray:
    """Warm the book up unrecorded, then return the int64 rows of the snapshot and the session."""
    # The stages are called from Python, not from one enclosing kernel: numba re-optimises a caller
    # together with all its callees, and one more level would double the first-run compile time.
    rng = np.random.default_rng(cfg.seed)
    model = _model(cfg)
    mid = cfg.mid_ticks
    bk = _new_book(mid, cfg.depth_ticks)
    regime = np.zeros(1, np.int64)
    _seed_book(bk, rng, model, mid)
    # Each limit order comes with about one cancellation, each market order with a trade and a book
    # row or two; the warm-up rows are overwritten by the session. The kernel grows the buffer if short.
    rows_per_s = 2 * (2 * cfg.limit_rate) + 3 * (2 * cfg.market_rate)
    capacity = int(1.25 * rows_per_s * max(cfg.duration_s, cfg.warmup_s)) + 2 * cfg.depth_ticks + 1024
    out = np.empty((capacity, _NCOL), np.int64)
    start_ns = int(cfg.start_ns)
    out, _ = _simulate(rng, bk, regime, model, float(cfg.warmup_s), start_ns, out, 0)
    _shift_to(bk, mid)
    out, n = _snapshot(bk, out, 0, start_ns)
    out, n = _simulate(rng, bk, regime, model, float(cfg.duration_s), start_ns, out, n)
    return out[:n]


def generate_session(cfg: SyntheticConfig) -> TickData:
    """Simulate one seeded session of order flow as schema-v1 tick data.

    The data open with a snapshot (a clear, then every level flagged :data:`FLAG_SNAPSHOT`) at
    ``cfg.start_ns``, followed by one message per order-flow event over ``cfg.duration_s`` seconds,
    each message's last row flagged :data:`FLAG_LAST_IN_MESSAGE`. ``ts_recv`` equals ``ts_event``.
    Prices are ``ticks * tick_size``; sizes are whole lots times ``lot_size``.

    Parameters
    ----------
    cfg : SyntheticConfig
        Model parameters and seed (see the module docstring for the model and its references).

    Returns
    -------
    TickData
        Instrument ``SYNTHETIC``/``SYN`` with source ``synthetic:seed=<seed>``; passes
        :func:`scalper.ingest.tickfile.validate`.

    Notes
    -----
    The first call in a fresh checkout compiles the numba kernels (about 15 s, then cached on disk);
    after that a default 30-minute session (about 80,000 rows) takes well under a second.
    """
    rows = _session_rows(cfg)
    ts = np.ascontiguousarray(rows[:, _TS])
    return TickData(
        instrument=Instrument(
            venue="SYNTHETIC",
            symbol="SYN",
            tick_size=cfg.tick_size,
            lot_size=cfg.lot_size,
            source=f"synthetic:seed={cfg.seed}",
        ),
        ts_event=ts,
        ts_recv=ts.copy(),
        kind=rows[:, _KIND].astype(np.uint8),
        side=rows[:, _SIDE].astype(np.int8),
        price=rows[:, _TICK] * cfg.tick_size,
        size=rows[:, _LOTS] * cfg.lot_size,
        flags=rows[:, _FLAGS].astype(np.uint8),
    )
