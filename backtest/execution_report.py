"""Execution quality of one run from its fills: maker/taker shares, fill ratio, queue, time to fill,
adverse selection and the PnL split (issue 14's "report per run").

Inputs are plain arrays, so the backtest and the peer comparison share it: the fills table of the
passive exchange (:func:`scalper.exec.passive.fills_table`), the number of orders posted, and the mid
price series of the replayed book (``mid_ts`` int64[K] ns, ``mid_tick`` float64[K] ticks, sorted by
time, as :class:`scalper.features.batch.FeatureMatrix` holds it).

Definitions (every mean over fills is weighted by the fill's lots):

* ``maker_share`` / ``taker_share``: the lots filled as maker / as taker over all lots filled.
* ``fill_ratio``: orders with at least one fill over orders posted.
* ``queue_at_post`` / ``queue_at_fill``: lots ahead of a maker fill's order when it entered the book
  and just before the event that filled it (median and 90th percentile over maker fills).
* ``time_to_fill``: exchange time from the order entering the book to the fill, ns (median and p90
  over maker fills; a taker fill happens on entry).
* ``mid_before``: the mid as of the last message strictly before the fill's exchange time, so that
  the event that filled us does not move the reference.
* ``adverse_{h}``: the mid move from ``mid_before`` to the mid at ``fill + h`` (the last message at
  or before it), in ticks, signed so that positive is against us (the mid fell after a buy, rose
  after a sell): ``-side * (mid(t + h) - mid_before)``; mean over the fills with a mid at both ends
  and ``t + h`` inside the series (the count is reported).
* PnL split, quote currency, ``lots * lot_size`` base units per fill, ``tick_size`` per tick:
  ``spread = sum(side * (mid_before - price) * qty)`` (what we bought below / sold above the mid);
  ``direction = sum(side * (mid_end - mid_before) * qty)`` (the mid's move while the position was
  held, to the last mid); ``fees`` = fees paid, ``rebates`` = rebates received (both >= 0).
  Then ``spread + direction - fees + rebates`` is the PnL marked at the last mid
  (balance + position * mid_end - net fees), which :attr:`ExecutionReport.pnl` also gives.

Sources: adverse selection as the post-fill mid move (markout) and the PnL split into spread and
inventory are the usual market-making decomposition (e.g. Cartea, Jaimungal and Penalva,
"Algorithmic and High-Frequency Trading", ch. 10); the queue figures are the queue model's
(:mod:`scalper.exec.queue`).
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

HORIZONS_NS = (1_000_000_000, 5_000_000_000)
"""Adverse-selection horizons, ns (1 s and 5 s)."""

FILL_COLUMNS = (
    "ts_exch",
    "ts_post",
    "order_id",
    "side",
    "price_tick",
    "qty",
    "maker",
    "queue_at_post",
    "queue_at_fill",
    "fee",
)


@dataclass(frozen=True)
class ExecutionReport:
    """The figures of one run (module docstring); NaN where there is nothing to measure.

    Attributes
    ----------
    fills, maker_fills, taker_fills : int
        Fill counts.
    lots, maker_lots : int
        Lots filled, all and as maker.
    posted, orders_filled : int
        Orders posted and orders with at least one fill.
    maker_share, taker_share, fill_ratio : float
        Fractions in [0, 1].
    queue_post_p50, queue_post_p90, queue_fill_p50, queue_fill_p90 : float
        Lots ahead.
    time_to_fill_p50_ns, time_to_fill_p90_ns : float
        ns.
    adverse_ticks : dict[str, float]
        Mean adverse move per horizon label (``"1s"``, ``"5s"``), ticks.
    adverse_n : dict[str, int]
        Fills measured per horizon.
    spread, direction, fees, rebates, pnl : float
        Quote currency; ``pnl = spread + direction - fees + rebates``.
    """

    fills: int
    maker_fills: int
    taker_fills: int
    lots: int
    maker_lots: int
    posted: int
    orders_filled: int
    maker_share: float
    taker_share: float
    fill_ratio: float
    queue_post_p50: float
    queue_post_p90: float
    queue_fill_p50: float
    queue_fill_p90: float
    time_to_fill_p50_ns: float
    time_to_fill_p90_ns: float
    adverse_ticks: dict[str, float]
    adverse_n: dict[str, int]
    spread: float
    direction: float
    fees: float
    rebates: float

    @property
    def pnl(self) -> float:
        """PnL marked at the last mid, quote currency: ``spread + direction - fees + rebates``."""
        return self.spread + self.direction - self.fees + self.rebates

    def to_dict(self) -> dict:
        """JSON-ready figures (NaN becomes None), ``pnl`` included."""
        out = {**asdict(self), "pnl": self.pnl}
        return _json_safe(out)


def _json_safe(x):
    if isinstance(x, dict):
        return {k: _json_safe(v) for k, v in x.items()}
    if isinstance(x, float) and not math.isfinite(x):
        return None
    return x


def _quantile(x: np.ndarray, q: float) -> float:
    return float(np.quantile(x, q)) if x.size else math.nan


def _share(part: float, whole: float) -> float:
    return part / whole if whole > 0 else math.nan


def _horizon_label(h_ns: int) -> str:
    return f"{h_ns / 1e9:g}s"


def mid_before(mid_ts: np.ndarray, mid_tick: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Mid (ticks) as of the last sample strictly before each ``t`` (ns); NaN where there is none."""
    return _mid_lookup(mid_ts, mid_tick, t, "left")


def mid_at(mid_ts: np.ndarray, mid_tick: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Mid (ticks) as of the last sample at or before each ``t`` (ns); NaN where there is none."""
    return _mid_lookup(mid_ts, mid_tick, t, "right")


def _mid_lookup(mid_ts: np.ndarray, mid_tick: np.ndarray, t: np.ndarray, side: str) -> np.ndarray:
    idx = np.searchsorted(mid_ts, t, side=side) - 1  # type: ignore[call-overload]
    out = np.full(len(t), np.nan)
    ok = idx >= 0
    out[ok] = mid_tick[idx[ok]]
    return out


def _check(fills: dict[str, np.ndarray], posted: int, mid_ts: np.ndarray, mid_tick: np.ndarray) -> None:
    missing = [c for c in FILL_COLUMNS if c not in fills]
    if missing:
        raise ValueError(f"fills table lacks column(s) {missing} (exec.passive.fills_table has them)")
    n = {len(fills[c]) for c in FILL_COLUMNS}
    if len(n) != 1:
        raise ValueError(f"fills table columns differ in length: {sorted(n)}")
    if len(mid_ts) != len(mid_tick):
        raise ValueError(f"mid_ts and mid_tick differ in length: {len(mid_ts)} != {len(mid_tick)}")
    if len(mid_ts) > 1 and np.any(np.diff(mid_ts) < 0):
        raise ValueError("mid_ts must be sorted by time")
    filled = len(np.unique(fills["order_id"]))
    if posted < filled:
        raise ValueError(f"posted ({posted}) is below the number of orders filled ({filled})")


def execution_report(
    fills: dict[str, np.ndarray],
    posted: int,
    mid_ts: np.ndarray,
    mid_tick: np.ndarray,
    *,
    tick_size: float,
    lot_size: float,
    horizons_ns: tuple[int, ...] = HORIZONS_NS,
) -> ExecutionReport:
    """Compute the execution figures of one run (definitions in the module docstring).

    Parameters
    ----------
    fills : dict of ndarray
        :func:`scalper.exec.passive.fills_table` columns (at least :data:`FILL_COLUMNS`), one row per fill.
    posted : int
        Orders sent to the exchange (every ``submit``), >= the number of distinct filled orders.
    mid_ts, mid_tick : ndarray
        int64[K] ns sorted, float64[K] ticks: the replayed book's mid after each message.
    tick_size, lot_size : float
        Quote currency per tick, base units per lot.
    horizons_ns : tuple of int
        Adverse-selection horizons, ns.

    Raises
    ------
    ValueError
        A missing fills column, columns of different lengths, unsorted or mismatched mid arrays, or
        ``posted`` below the orders filled.
    """
    _check(fills, posted, mid_ts, mid_tick)
    ts = np.asarray(fills["ts_exch"], dtype=np.int64)
    side = np.asarray(fills["side"], dtype=np.float64)
    price = np.asarray(fills["price_tick"], dtype=np.float64)
    qty = np.asarray(fills["qty"], dtype=np.float64)
    maker = np.asarray(fills["maker"], dtype=bool)
    fee = np.asarray(fills["fee"], dtype=np.float64)
    base = qty * lot_size
    lots = float(qty.sum())
    maker_lots = float(qty[maker].sum())

    ref = mid_before(mid_ts, mid_tick, ts)
    adverse: dict[str, float] = {}
    adverse_n: dict[str, int] = {}
    last_ts = int(mid_ts[-1]) if len(mid_ts) else np.iinfo(np.int64).min
    for h in horizons_ns:
        later = mid_at(mid_ts, mid_tick, ts + h)
        ok = np.isfinite(ref) & np.isfinite(later) & (ts + h <= last_ts)
        move = -side[ok] * (later[ok] - ref[ok])
        label = _horizon_label(h)
        adverse_n[label] = int(ok.sum())
        adverse[label] = float(np.average(move, weights=qty[ok])) if ok.any() else math.nan

    mid_end = float(mid_tick[-1]) if len(mid_tick) else math.nan
    known = np.isfinite(ref)
    spread = float(np.sum(side[known] * (ref[known] - price[known]) * base[known])) * tick_size
    direction = float(np.sum(side[known] * (mid_end - ref[known]) * base[known])) * tick_size
    if not known.all():  # fills before the first mid: all of their price difference is direction
        direction += float(np.sum(side[~known] * (mid_end - price[~known]) * base[~known])) * tick_size

    mk = maker
    wait = (ts - np.asarray(fills["ts_post"], dtype=np.int64))[mk].astype(np.float64)
    q_post = np.asarray(fills["queue_at_post"], dtype=np.float64)[mk]
    q_fill = np.asarray(fills["queue_at_fill"], dtype=np.float64)[mk]
    orders_filled = len(np.unique(fills["order_id"]))
    return ExecutionReport(
        fills=len(ts),
        maker_fills=int(mk.sum()),
        taker_fills=int((~mk).sum()),
        lots=int(round(lots)),
        maker_lots=int(round(maker_lots)),
        posted=int(posted),
        orders_filled=orders_filled,
        maker_share=_share(maker_lots, lots),
        taker_share=_share(lots - maker_lots, lots),
        fill_ratio=_share(orders_filled, posted),
        queue_post_p50=_quantile(q_post, 0.5),
        queue_post_p90=_quantile(q_post, 0.9),
        queue_fill_p50=_quantile(q_fill, 0.5),
        queue_fill_p90=_quantile(q_fill, 0.9),
        time_to_fill_p50_ns=_quantile(wait, 0.5),
        time_to_fill_p90_ns=_quantile(wait, 0.9),
        adverse_ticks=adverse,
        adverse_n=adverse_n,
        spread=spread,
        direction=direction,
        fees=float(fee[fee > 0].sum()),
        rebates=float(-fee[fee < 0].sum()),
    )


def _fmt(x: float, spec: str) -> str:
    return "n/a" if not math.isfinite(x) else format(x, spec)


def markdown_section(rep: ExecutionReport, title: str = "Execution") -> str:
    """Return the report as a markdown section (a ``##`` heading and a two-column table)."""
    rows = [
        ("fills (maker / taker)", f"{rep.fills} ({rep.maker_fills} / {rep.taker_fills})"),
        ("lots filled (maker)", f"{rep.lots} ({rep.maker_lots})"),
        ("maker / taker share of lots", f"{_fmt(rep.maker_share, '.1%')} / {_fmt(rep.taker_share, '.1%')}"),
        ("fill ratio (orders filled / posted)", f"{_fmt(rep.fill_ratio, '.1%')} ({rep.orders_filled} / {rep.posted})"),
        (
            "queue ahead at post, lots (p50 / p90)",
            f"{_fmt(rep.queue_post_p50, '.2f')} / {_fmt(rep.queue_post_p90, '.2f')}",
        ),
        (
            "queue ahead at fill, lots (p50 / p90)",
            f"{_fmt(rep.queue_fill_p50, '.2f')} / {_fmt(rep.queue_fill_p90, '.2f')}",
        ),
        (
            "time to fill, ms (p50 / p90)",
            f"{_fmt(rep.time_to_fill_p50_ns / 1e6, '.1f')} / {_fmt(rep.time_to_fill_p90_ns / 1e6, '.1f')}",
        ),
    ]
    for label, value in rep.adverse_ticks.items():
        rows.append(
            (f"adverse selection {label}, ticks (+ = against us)", f"{_fmt(value, '+.3f')} (n={rep.adverse_n[label]})")
        )
    rows += [
        ("PnL: spread captured (quote)", _fmt(rep.spread, ".6f")),
        ("PnL: direction (quote)", _fmt(rep.direction, ".6f")),
        ("PnL: fees paid (quote)", _fmt(0.0 - rep.fees, ".6f")),
        ("PnL: rebates (quote)", _fmt(rep.rebates, ".6f")),
        ("PnL at the last mid (quote)", _fmt(rep.pnl, ".6f")),
    ]
    lines = [f"## {title}", "", "| figure | value |", "|---|---|"]
    lines += [f"| {k} | {v} |" for k, v in rows]
    return "\n".join(lines) + "\n"


def write_execution_report(rep: ExecutionReport, folder: Path, stem: str = "execution") -> tuple[Path, Path]:
    """Write ``<stem>.json`` and ``<stem>.md`` into ``folder`` (created if needed); return both paths."""
    folder.mkdir(parents=True, exist_ok=True)
    js, md = folder / f"{stem}.json", folder / f"{stem}.md"
    js.write_text(json.dumps(rep.to_dict(), indent=2) + "\n")
    md.write_text(markdown_section(rep))
    return js, md
