"""Labels of decision rows: first-passage (triple-barrier) outcomes of the trade, or mid direction.

API (used by ``models/dataset.py``, ``models/train.py`` and the evaluation):

* :func:`first_passage` -> :class:`FirstPassage`: per decision and side (long, short), which of
  take-profit, stop-loss and time stop the trade the engine would make meets first, when, and its net
  return; :meth:`FirstPassage.classes` turns both sides into one class per row.
* :func:`direction_labels`: UP / FLAT / DOWN of the mid change over a horizon, with an explicit dead
  zone; :func:`dead_zone_for_flat_share` and :func:`default_dead_zone` choose one.
* :func:`uniqueness_weights`: average uniqueness of overlapping label spans (sample weights).

Classes share one coding, so the engine reads every model the same way (``engine/core.py``
``select_signal``: ``p`` of a long is column UP, of a short column DOWN): for first-passage labels UP
means "a long's take-profit is met first", DOWN "a short's take-profit is met first", FLAT neither.
Kelly's ``p`` (``risk/kelly.py``) is then the model's probability that the trade's take-profit comes
before its stop-loss and its time stop, the quantity Kelly's bet needs.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from scalper.lowlevel.jit import kernel
from scalper.models.touchpath import TouchPath

DOWN, FLAT, UP = 0, 1, 2
CLASS_NAMES = ("down", "flat", "up")
UNKNOWN = -1

# First-passage outcome of one side's trade.
UNRESOLVED = -2  # the data ends before a barrier or the time stop
STOP_LOSS = -1
TIME_STOP = 0
TAKE_PROFIT = 1
LONG, SHORT = 0, 1  # column of each side in FirstPassage arrays


def direction_labels(mid_now: np.ndarray, mid_later: np.ndarray, dead_zone_ticks: float) -> np.ndarray:
    """Return the class of each mid change: UP if it exceeds the dead zone, DOWN if below minus it, else FLAT.

    Parameters
    ----------
    mid_now, mid_later : ndarray
        float64[M], mid prices in ticks at the decision time and at decision time + horizon;
        NaN where unknown (the horizon runs past the data).
    dead_zone_ticks : float
        Half-width of the flat band, ticks, >= 0.

    Returns
    -------
    ndarray
        int8[M] with DOWN=0, FLAT=1, UP=2 and UNKNOWN=-1 where either mid is NaN.

    Raises
    ------
    ValueError
        If ``dead_zone_ticks`` is negative or not finite.
    """
    if not np.isfinite(dead_zone_ticks) or dead_zone_ticks < 0:
        raise ValueError(f"dead_zone_ticks must be finite and >= 0, got {dead_zone_ticks}")
    change = mid_later - mid_now
    out = np.full(change.shape, FLAT, dtype=np.int8)
    out[change > dead_zone_ticks] = UP
    out[change < -dead_zone_ticks] = DOWN
    out[~np.isfinite(change)] = UNKNOWN
    return out


def default_dead_zone(spread_ticks: np.ndarray) -> float:
    """Return half the median spread (ticks): a flat band a move must beat by half a spread.

    Raises
    ------
    ValueError
        If ``spread_ticks`` is empty.
    """
    if spread_ticks.size == 0:
        raise ValueError("cannot derive a dead zone from zero decision rows")
    return 0.5 * float(np.median(spread_ticks))


def dead_zone_for_flat_share(change_ticks: np.ndarray, flat_share: float) -> float:
    """Return the smallest dead zone (ticks) that labels at least ``flat_share`` of the changes FLAT.

    Parameters
    ----------
    change_ticks : ndarray
        float64[M], mid changes over the horizon, ticks; NaN (unknown) entries are ignored. Pass the
        training rows only, so the test span does not choose the labels.
    flat_share : float
        Target share of FLAT labels, in [0, 1). 0 gives a dead zone of 0 (only unchanged mids are flat).

    Raises
    ------
    ValueError
        If ``flat_share`` is outside [0, 1) or no change is known.
    """
    if not 0.0 <= flat_share < 1.0:
        raise ValueError(f"flat_share must be in [0, 1), got {flat_share}")
    moves = np.abs(change_ticks[np.isfinite(change_ticks)])
    if moves.size == 0:
        raise ValueError("cannot derive a dead zone from zero labelled rows")
    if flat_share == 0.0:
        return 0.0
    # FLAT is |change| <= dead zone: the inverted-CDF quantile is the smallest observed move reaching the share.
    return float(np.quantile(moves, flat_share, method="inverted_cdf"))


@dataclass(frozen=True)
class FirstPassage:
    """First-passage outcomes of a long and a short entered at each decision.

    Attributes
    ----------
    outcome : ndarray
        int8[M, 2], column LONG / SHORT: TAKE_PROFIT, STOP_LOSS, TIME_STOP or UNRESOLVED.
    end_ns : ndarray
        int64[M, 2], time the outcome is decided (the barrier's message end, or the time stop), ns;
        the decision time where UNRESOLVED.
    net_bps : ndarray
        float64[M, 2], the trade's return after the round-trip fee, bps of the entry price: exit-side
        touch as of the exit order's arrival against the entry touch; NaN where UNRESOLVED.
    """

    outcome: np.ndarray
    end_ns: np.ndarray
    net_bps: np.ndarray

    def classes(self) -> tuple[np.ndarray, np.ndarray]:
        """Return one class per row and the time it is decided.

        UP when the long's take-profit comes first (and not after a short's take-profit), DOWN for the
        short's, FLAT when both sides are decided without a take-profit, UNKNOWN otherwise. When the
        take-profit is at least the stop-loss the two take-profits exclude each other (the price must
        pass one side's stop to reach the other side's take-profit), so P(UP) is the long's
        probability of a take-profit first.

        Returns
        -------
        (ndarray, ndarray)
            int8[M] classes (DOWN=0, FLAT=1, UP=2, UNKNOWN=-1) and int64[M] decision times, ns.
        """
        o, end = self.outcome, self.end_ns
        long_tp = o[:, LONG] == TAKE_PROFIT
        short_tp = o[:, SHORT] == TAKE_PROFIT
        up = long_tp & ~(short_tp & (end[:, SHORT] < end[:, LONG]))
        down = short_tp & ~up
        resolved = (o != UNRESOLVED).all(axis=1)
        out = np.full(len(o), UNKNOWN, dtype=np.int8)
        out[resolved] = FLAT
        out[up] = UP
        out[down] = DOWN
        decided = np.where(up, end[:, LONG], np.where(down, end[:, SHORT], end.max(axis=1)))
        return out, decided


@kernel
def _as_of(path_ts, t, j):
    # Last index at or after j - 1 whose time is <= t (j - 1 when none past it is).
    k = j
    while k < path_ts.shape[0] and path_ts[k] <= t:
        k += 1
    return k - 1


@kernel
def _first_passage(dec_ts, path_ts, bid, ask, horizon_ns, latency_ns, tp, sl, fee_bps, outcome, end_ns, net_bps):
    n_path = path_ts.shape[0]
    e = -1
    for m in range(dec_ts.shape[0]):
        t_entry = dec_ts[m] + latency_ns
        while e + 1 < n_path and path_ts[e + 1] <= t_entry:
            e += 1
        for s in range(2):
            outcome[m, s] = UNRESOLVED
            end_ns[m, s] = dec_ts[m]
            net_bps[m, s] = np.nan
        if e < 0:
            continue
        t_stop = t_entry + horizon_ns
        for s in range(2):
            # The engine's levels (engine/core.py _sync_position): bps of the entry touch, rounded away from it.
            if s == LONG:
                entry = ask[e]
                tp_tick = math.ceil(entry * (1.0 + tp))
                sl_tick = math.floor(entry * (1.0 - sl))
            else:
                entry = bid[e]
                tp_tick = math.floor(entry * (1.0 - tp))
                sl_tick = math.ceil(entry * (1.0 + sl))
            j = e + 1
            hit = TIME_STOP
            while j < n_path and path_ts[j] <= t_stop:
                px = bid[j] if s == LONG else ask[j]
                if (px >= tp_tick) if s == LONG else (px <= tp_tick):
                    hit = TAKE_PROFIT
                    break
                if (px <= sl_tick) if s == LONG else (px >= sl_tick):
                    hit = STOP_LOSS
                    break
                j += 1
            if hit == TIME_STOP:
                if j >= n_path:
                    continue  # the data ends before the time stop: no outcome
                t_end = t_stop
                x = _as_of(path_ts, t_stop + latency_ns, j)
            else:
                t_end = path_ts[j]
                x = _as_of(path_ts, t_end + latency_ns, j + 1)
            exit_px = bid[x] if s == LONG else ask[x]
            sign = 1.0 if s == LONG else -1.0
            outcome[m, s] = hit
            end_ns[m, s] = t_end
            net_bps[m, s] = sign * (exit_px - entry) / entry * 1e4 - fee_bps


def first_passage(
    decision_ts: np.ndarray,
    path: TouchPath,
    horizon_ns: int,
    take_profit_bps: float,
    stop_loss_bps: float,
    latency_ns: int = 0,
    round_trip_fee_bps: float = 0.0,
) -> FirstPassage:
    """Return which barrier a long and a short entered at each decision meet first (triple barrier).

    Follows the exit rule of ``engine/core.py``: the entry fills at the touch as of the decision plus
    the order latency (a long buys the ask, a short sells the bid); take-profit and stop-loss are
    price levels ``take_profit_bps`` / ``stop_loss_bps`` from that entry price, rounded to whole ticks
    away from it, watched at every later valid message end on the exit-side price (bid for a long,
    ask for a short); the time stop is ``horizon_ns`` after the fill. Lopez de Prado (2018),
    "Advances in Financial Machine Learning", ch. 3.2 (the triple-barrier method). The fee does not
    move the barriers (the engine's levels are price levels); it is charged in ``net_bps``.

    Parameters
    ----------
    decision_ts : ndarray
        int64[M], decision times, ns, non-decreasing.
    path : TouchPath
        Best bid / ask after every valid message of the same data (:func:`touch_path`).
    horizon_ns : int
        Time stop after the entry, ns, > 0.
    take_profit_bps, stop_loss_bps : float
        Barrier distances, bps of the entry price, > 0.
    latency_ns : int
        Order latency (decision to fill, and barrier to exit fill), ns, >= 0.
    round_trip_fee_bps : float
        Fees of entry and exit together, bps of the entry notional (``risk.kelly.round_trip_fee_bps``).

    Raises
    ------
    ValueError
        If a parameter is out of range (the message names it) or ``decision_ts`` decreases.
    """
    if horizon_ns <= 0:
        raise ValueError(f"horizon_ns must be > 0, got {horizon_ns}")
    if not (take_profit_bps > 0 and stop_loss_bps > 0):
        raise ValueError(f"take_profit_bps and stop_loss_bps must be > 0, got {take_profit_bps}, {stop_loss_bps}")
    if latency_ns < 0 or not np.isfinite(round_trip_fee_bps) or round_trip_fee_bps < 0:
        raise ValueError(f"latency_ns and round_trip_fee_bps must be >= 0, got {latency_ns}, {round_trip_fee_bps}")
    dec = np.ascontiguousarray(decision_ts, dtype=np.int64)
    if dec.size > 1 and (np.diff(dec) < 0).any():
        raise ValueError("decision_ts must be non-decreasing")
    m = dec.shape[0]
    outcome = np.empty((m, 2), dtype=np.int8)
    end_ns = np.empty((m, 2), dtype=np.int64)
    net = np.empty((m, 2), dtype=np.float64)
    _first_passage(
        dec,
        path.ts,
        path.bid_tick,
        path.ask_tick,
        int(horizon_ns),
        int(latency_ns),
        take_profit_bps / 1e4,
        stop_loss_bps / 1e4,
        float(round_trip_fee_bps),
        outcome,
        end_ns,
        net,
    )
    return FirstPassage(outcome, end_ns, net)


def uniqueness_weights(start_ns: np.ndarray, end_ns: np.ndarray, keep: np.ndarray | None = None) -> np.ndarray:
    """Return each label's average uniqueness over the decision rows its span covers (AFML ch. 4.3-4.4).

    Row ``j`` is covered by label ``i`` when ``start_ns[i] <= start_ns[j] <= end_ns[i]``; its concurrency
    ``c_j`` is the number of kept labels covering it, and label ``i``'s weight is the mean of ``1 / c_j``
    over the rows it covers. So a label that overlaps no other weighs 1, and the weights times the rows
    each label covers add up to the number of rows some kept label covers.

    Parameters
    ----------
    start_ns : ndarray
        int64[M], label start times = decision times, ns, non-decreasing.
    end_ns : ndarray
        int64[M], times each label is decided, ns, >= its start.
    keep : ndarray, optional
        bool[M], the labels that count (e.g. known labels of the training rows); all when None.

    Returns
    -------
    ndarray
        float64[M], in (0, 1] for kept labels, 0 for the others.

    Raises
    ------
    ValueError
        If the arrays differ in length, starts decrease, or an end precedes its start.
    """
    start = np.asarray(start_ns, dtype=np.int64)
    end = np.asarray(end_ns, dtype=np.int64)
    if start.shape != end.shape:
        raise ValueError(f"start_ns and end_ns differ in length: {start.shape} vs {end.shape}")
    if start.size > 1 and (np.diff(start) < 0).any():
        raise ValueError("start_ns must be non-decreasing")
    if (end < start).any():
        i = int(np.flatnonzero(end < start)[0])
        raise ValueError(f"label {i} ends at {end[i]} ns before it starts at {start[i]} ns")
    kept = np.ones(start.shape, dtype=bool) if keep is None else np.asarray(keep, dtype=bool)
    m = start.size
    first = np.searchsorted(start, start, side="left")  # equal starts share the row set they cover
    last = np.searchsorted(start, end, side="right") - 1
    diff = np.zeros(m + 1, dtype=np.int64)
    np.add.at(diff, first[kept], 1)
    np.add.at(diff, last[kept] + 1, -1)
    conc = np.cumsum(diff[:m])
    inv = np.zeros(m + 1)
    inv[1:] = np.cumsum(np.where(conc > 0, 1.0 / np.maximum(conc, 1), 0.0))
    out = np.zeros(m)
    out[kept] = (inv[last[kept] + 1] - inv[first[kept]]) / (last[kept] - first[kept] + 1)
    # A difference of prefix sums carries their rounding: a label alone on its rows can come out at
    # 1 + 2**-52, and a weight is a mean of 1 / c_j <= 1.
    return np.minimum(out, 1.0, out=out)
