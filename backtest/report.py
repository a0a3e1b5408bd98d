"""Backtest report folder: ``metrics.json``, ``trades.parquet`` and ``equity.png``.

Each metric with a natural baseline has it beside it in ``baselines`` (not trading for the PnL and the
Sharpe, the break-even hit rate for the hit rate, the training majority class for each horizon's
prediction accuracy); ``flags`` says why a figure is unreliable; ``models`` records which model files
(sha256 of each ``.onnx`` and card) made the decisions.
"""

from __future__ import annotations

import json
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import polars as pl

from scalper.backtest.driver import ReplayResult, fills_table, replay_events_per_second
from scalper.backtest.execution_report import ExecutionReport, execution_report, write_execution_report
from scalper.backtest.metrics import (
    MINUTE_NS,
    break_even_hit_rate,
    equity_curve,
    max_drawdown,
    round_trips,
    sharpe_flags,
    sharpe_ratio,
)
from scalper.engine.maker import MakerCore
from scalper.exec.passive_venue import PassiveSimulatedExchange
from scalper.features.batch import FeatureMatrix
from scalper.features.kernels import I_BOOK_OVERFLOWS, I_CROSSED, I_RING_OVERFLOWS
from scalper.models.dataset import horizon_labels
from scalper.models.evaluate import model_versions, training_prior
from scalper.models.inference import OnnxPredictor
from scalper.models.touchpath import TouchPath


def _labels(p: OnnxPredictor, fm: FeatureMatrix, ts: np.ndarray, touch: TouchPath | None) -> np.ndarray:
    # The labels training made (the card's LabelSpec) at the decisions ts, which are rows of fm.
    y = horizon_labels(p.card.labels, fm, p.horizon_ns, touch).y
    rows = np.searchsorted(fm.ts, ts)
    return y[np.minimum(rows, len(y) - 1)] if len(y) else np.full(len(ts), -1, dtype=np.int8)


def prediction_accuracy(
    result: ReplayResult, fm: FeatureMatrix, from_ns: int, touch: TouchPath | None = None
) -> dict[str, dict[str, float | None]]:
    """Return, per horizon, the share of decisions (at or after ``from_ns``) whose argmax class was right.

    Labels are made as each card's ``labels`` say (``models.dataset.horizon_labels``); first-passage
    labels need the replay's ``touch`` path (``models.touchpath.touch_path``). A batched replay
    predicts only the decisions that could open a position; the others of the span are predicted here,
    from the batch pass's rows, in one call per horizon. ``accuracy`` is None when no decision of
    the span has a label.
    """
    preds = result.core.predictions
    assert preds is not None, "the backtest's core records its predictions"
    if len(preds.ts) == 0:
        return {}
    ts = np.asarray(preds.ts, dtype=np.int64)
    classes = np.array(preds.classes, dtype=np.int64)
    sel = ts >= from_ns
    missing = np.flatnonzero(sel & (classes[:, 0] < 0))
    if missing.size:
        rows = np.searchsorted(fm.ts, ts[missing])
        X32 = fm.X[rows].astype(np.float32)
        for k, p in enumerate(result.core.models.predictors):
            classes[missing, k] = p.predict_batch(X32).argmax(axis=1)
    out = {}
    for k, p in enumerate(result.core.models.predictors):
        y = _labels(p, fm, ts, touch)
        ok = sel & (y >= 0)
        n = int(ok.sum())
        acc = float(np.mean(classes[ok, k] == y[ok])) if n else None
        out[f"{p.card.horizon_s:g}s"] = {"decisions": n, "accuracy": acc}
    return out


def baseline_accuracy(
    result: ReplayResult, fm: FeatureMatrix, from_ns: int, touch: TouchPath | None = None
) -> dict[str, float | None]:
    """Return, per horizon, the accuracy of always predicting the training span's majority class (the card's)
    on the decisions :func:`prediction_accuracy` scores; None when none of them has a label."""
    preds = result.core.predictions
    assert preds is not None, "the backtest's core records its predictions"
    ts = np.asarray(preds.ts, dtype=np.int64)
    out = {}
    for p in result.core.models.predictors:
        y = _labels(p, fm, ts, touch)
        y = y[(ts >= from_ns) & (y >= 0)]
        majority = int(np.argmax(training_prior(p.card)))
        out[f"{p.card.horizon_s:g}s"] = float(np.mean(y == majority)) if y.size else None
    return out


def trading_equity(
    result: ReplayResult, fm: FeatureMatrix, initial_equity: float, with_fills: bool = False
) -> tuple[np.ndarray, np.ndarray]:
    """Return times (int64 ns) over the trading span and the equity (quote) at them.

    The times are a 1-minute grid that runs to the last fill (an end-of-data exit fills one latency
    after the last event); ``with_fills`` adds every fill time, so drawdowns between grid points count.
    """
    f = fills_table(result)
    start = max(result.trade_from_ns, int(fm.mid_ts[0])) if fm.mid_ts.size else result.trade_from_ns
    end = int(fm.mid_ts[-1]) if fm.mid_ts.size else start
    if f["ts_ns"].size:
        end = max(end, int(f["ts_ns"][-1]))
    times = np.arange(start, end + MINUTE_NS, MINUTE_NS, dtype=np.int64)
    if with_fills:
        times = np.union1d(times, f["ts_ns"][f["ts_ns"] >= start])
    mid = fm.mid_at(times) * result.core.instrument.tick_size
    return times, equity_curve(f["ts_ns"], f["side"], f["qty"], f["price"], f["fee"], times, mid, initial_equity)


def build_metrics(
    result: ReplayResult,
    fm: FeatureMatrix,
    initial_equity: float,
    periods_per_year: float,
    touch: TouchPath | None = None,
) -> dict:
    """Compute the report metrics of a replay (PnL in quote currency, times in ns, rates per second).

    A metric that is undefined for this replay (``hit_rate`` without a round trip, ``sharpe`` of a
    flat equity curve, a horizon's ``accuracy`` without a labelled decision) is None, never NaN, and
    ``undefined`` maps its dotted path (``"prediction_accuracy.5s.accuracy"``) to the reason;
    ``undefined`` is empty otherwise. ``baselines`` holds each metric's baseline (see the module
    docstring), ``flags["sharpe"]`` the reasons the Sharpe is unreliable (empty when none). ``touch``:
    as in :func:`write_report`.
    """
    f = fills_table(result)
    core = result.core
    preds = core.predictions
    assert preds is not None, "the backtest's core records its predictions"
    position = float(np.sum(f["side"] * f["qty"]))
    last_mid = float(fm.mid_tick[-1]) * core.instrument.tick_size if fm.mid_tick.size else 0.0
    # An open position (the last book could not absorb the exit) is valued at the last mid.
    gross = float(np.sum(-f["side"] * f["qty"] * f["price"])) + position * last_mid
    fees = float(np.sum(f["fee"]))
    trips = round_trips(f["side"], f["qty"], f["price"], f["fee"], f["ts_ns"])
    grid, equity = trading_equity(result, fm, initial_equity)
    _, equity_at_fills = trading_equity(result, fm, initial_equity, with_fills=True)
    start, end = (int(grid[0]), int(grid[-1])) if grid.size else (result.trade_from_ns, result.trade_from_ns)
    accuracy = prediction_accuracy(result, fm, start, touch)
    majority = baseline_accuracy(result, fm, start, touch)
    risk = core.risk
    ist = core.state.ist
    metrics = {
        "instrument": {
            "venue": core.instrument.venue,
            "symbol": core.instrument.symbol,
            "source": core.instrument.source,
        },
        "synthetic": core.instrument.source.startswith("synthetic"),
        "trading_from_ns": start,
        "trading_to_ns": end,
        "events": result.events,
        "events_per_second": replay_events_per_second(result),
        "replay_wall_s": result.wall_s,
        "decisions": len(preds.ts),
        "fills": int(len(f["qty"])),
        "trades": int(trips.net_pnl.size),
        "hit_rate": float(np.mean(trips.net_pnl > 0)) if trips.net_pnl.size else None,
        "gross_pnl": gross,
        "fees": fees,
        "net_pnl": gross - fees,
        "ends_flat": bool(abs(position) < 1e-9),
        "final_position": position,
        "sharpe": sharpe_ratio(equity, periods_per_year),
        "sharpe_periods_per_year": periods_per_year,
        "max_drawdown": max_drawdown(equity_at_fills),
        "final_equity": float(equity_at_fills[-1]) if equity_at_fills.size else initial_equity,
        "turnover": float(np.sum(f["notional"]) / initial_equity),
        "account_net_pnl": float(risk.account.realized_pnl - risk.account.fees_paid),
        "trading_state": risk.state.name,
        "orders_by_status": {
            k.name if hasattr(k, "name") else str(k): int(v) for k, v in result.adapter.status_counts().items()
        },
        "rejections_by_reason": {r.name: int(c) for r, c in risk.reject_counts.items() if c},
        "strategy": strategy_counts(result),
        "prediction_accuracy": {h: {**acc, "baseline_accuracy": majority[h]} for h, acc in accuracy.items()},
        "baselines": {
            "net_pnl": 0.0,
            "sharpe": 0.0,
            "hit_rate": break_even_hit_rate(trips.net_pnl),
        },
        "flags": {"sharpe": sharpe_flags(int(trips.net_pnl.size), end - start)},
        "models": {"directory": str(core.models.directory), "versions": model_versions(core.models)},
        "data_quality": {
            "crossed_books": int(ist[I_CROSSED]),
            "book_overflows": int(ist[I_BOOK_OVERFLOWS]),
            "ring_overflows": int(ist[I_RING_OVERFLOWS]),
        },
    }
    rep = execution_figures(result, fm)
    if rep is not None:
        metrics["execution"] = rep.to_dict()
    metrics["undefined"] = _undefined(metrics)
    return metrics


def execution_figures(result: ReplayResult, fm: FeatureMatrix) -> ExecutionReport | None:
    """The execution report (:mod:`scalper.backtest.execution_report`: maker/taker shares, fill ratio, queue
    at post and at fill, time to fill, adverse selection, PnL split) of a run on the passive exchange (maker
    mode), from its fills and the orders it was sent; None for the taker venue, which keeps no queue."""
    venue = result.adapter
    if not isinstance(venue, PassiveSimulatedExchange):
        return None
    inst = result.core.instrument
    return execution_report(
        venue.fills_table(), venue.sent, fm.mid_ts, fm.mid_tick, tick_size=inst.tick_size, lot_size=inst.lot_size
    )


def strategy_counts(result: ReplayResult) -> dict:
    """The run's mode (``taker`` or ``maker``), its fills by liquidity (maker fills posted and rested, taker
    fills crossed) and, in maker mode, what the entries did: posted, re-quoted, cancelled because the
    call faded or the queue rule failed, withheld by the queue rule after Kelly approved them."""
    f = fills_table(result)
    core = result.core
    out: dict = {
        "mode": "maker" if isinstance(core, MakerCore) else "taker",
        "maker_fills": int(np.sum(f["maker"])),
        "taker_fills": int(np.sum(~f["maker"])),
    }
    if isinstance(core, MakerCore):
        for name in ("posted", "requoted", "canceled_fade", "canceled_queue", "withheld_queue"):
            out[f"entries_{name}"] = int(getattr(core, name))
    return out


def _undefined(metrics: dict) -> dict[str, str]:
    # Each metric that can be undefined, with why; the dotted path is the metric's place in metrics.json.
    reasons = {}
    if metrics["hit_rate"] is None:
        reasons["hit_rate"] = "no round trips"
    if metrics["sharpe"] is None:
        reasons["sharpe"] = "fewer than two 1-minute equity changes, or all of them equal (no position held)"
    if metrics["baselines"]["hit_rate"] is None:
        reasons["baselines.hit_rate"] = "no winning or no losing round trip (break-even hit rate undefined)"
    for horizon, acc in metrics["prediction_accuracy"].items():
        if acc["accuracy"] is None:
            reasons[f"prediction_accuracy.{horizon}.accuracy"] = "no decision with a label in the trading span"
            reasons[f"prediction_accuracy.{horizon}.baseline_accuracy"] = "no decision with a label in the trading span"
    return reasons


def plot_equity(path: Path, grid_ts: np.ndarray, equity: np.ndarray, title: str) -> None:
    """Draw the equity change since the start and the drawdown (quote currency) in two stacked panels."""
    hours = (grid_ts - grid_ts[0]) / 3.6e12 if grid_ts.size else grid_ts
    dd = np.maximum.accumulate(equity) - equity if equity.size else equity
    # Plot PnL, not equity: on a 1,000,000 account a 10-unit move would hide behind an axis offset.
    pnl = equity - equity[0] if equity.size else equity
    fig, (ax1, ax2) = plt.subplots(2, 1, sharex=True, figsize=(10, 6), height_ratios=(3, 1))
    ax1.plot(hours, pnl, lw=1.2, color="tab:blue")
    ax1.axhline(0.0, color="grey", lw=0.8)
    ax1.set_ylabel(f"PnL (quote), equity starts at {equity[0]:,.0f}" if equity.size else "PnL (quote)")
    ax1.set_title(title)
    ax1.grid(alpha=0.3)
    ax2.fill_between(hours, -dd, 0, color="tab:red", alpha=0.5)
    ax2.set_ylabel("drawdown")
    ax2.set_xlabel("hours since trading start")
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def write_report(
    out_dir: str | Path,
    result: ReplayResult,
    fm: FeatureMatrix,
    initial_equity: float,
    periods_per_year: float,
    touch: TouchPath | None = None,
) -> dict:
    """Write ``metrics.json``, ``trades.parquet`` (one row per fill) and ``equity.png``, and in maker mode
    ``execution.json`` / ``execution.md`` (:func:`execution_figures`); return the metrics.

    ``metrics.json`` is strict JSON (RFC 8259): undefined metrics are null with their reason in
    ``undefined`` (see :func:`build_metrics`). ``touch``, the replayed data's touch path, is needed
    when a model's labels are first-passage ones.

    Raises
    ------
    ValueError
        If a metric is NaN or infinite (a bug: nothing is written then, rather than invalid JSON), or a
        model's labels are first-passage ones and ``touch`` is None.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = build_metrics(result, fm, initial_equity, periods_per_year, touch)
    (out / "metrics.json").write_text(json.dumps(metrics, indent=2, allow_nan=False) + "\n")
    f = fills_table(result)
    pl.DataFrame(
        {k: (v.tolist() if k == "reason" else v) for k, v in f.items()}, schema_overrides={"reason": pl.Utf8}
    ).write_parquet(out / "trades.parquet")
    grid, equity = trading_equity(result, fm, initial_equity)
    label = " (SYNTHETIC data)" if metrics["synthetic"] else ""
    title = f"{metrics['instrument']['symbol']}{label}: net PnL {metrics['net_pnl']:,.2f}, {metrics['trades']} trades"
    plot_equity(out / "equity.png", grid, equity, title)
    rep = execution_figures(result, fm)
    if rep is not None:
        write_execution_report(rep, out)
    return metrics
