"""Replay driver: feed a tick file through the engine core in event time.

The loop runs ``features.kernels.run_until`` (numba) between the moments the core must act, so the
Python side runs only at decisions, order wake-ups and price watches; every event passes through the
same ``step`` kernel the live daemon calls one event at a time.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from scalper.engine.config import EngineConfig
from scalper.engine.core import EngineCore, Prediction, choose_signals
from scalper.exec.simulated import SimulatedExchange
from scalper.features.batch import FeatureMatrix, compute_features
from scalper.features.kernels import CODE_DECISION, I_DECISION_TS, I_NEXT_GRID, INT64_MAX, INT64_MIN, FeatureState
from scalper.ingest.tickfile import TickData
from scalper.models.inference import ModelSet
from scalper.risk.intent import RejectReason
from scalper.risk.kelly import edge_rejections
from scalper.risk.limits import RiskManager


@dataclass
class ReplayResult:
    """What a replay leaves for the report: the core (fills, predictions, rejections), the venue, timings
    and the batch feature matrix (decision rows and mid series) when the replay computed one."""

    core: EngineCore
    adapter: SimulatedExchange
    events: int
    wall_s: float
    trade_from_ns: int
    features: FeatureMatrix | None = None


class BatchDivergence(RuntimeError):
    """The event-by-event replay reached a decision the batch pass did not (a kernel bug, never data)."""


def run_backtest(
    data: TickData,
    models: ModelSet,
    cfg: EngineConfig,
    trade_from_ns: int = 0,
    on_progress: Callable[[int], None] | None = None,
    batch_predictions: bool = True,
) -> ReplayResult:
    """Replay ``data`` through the engine core with a simulated exchange.

    Parameters
    ----------
    data : TickData
        Schema-v1 events of one instrument.
    models : ModelSet
        One predictor per horizon (feature lists already checked against the engine's).
    cfg : EngineConfig
        Grid, risk limits, latency and fees.
    trade_from_ns : int
        No entry before this event time (the replay still warms the features from the start).
    on_progress : callable, optional
        Called with the index of the next event now and then (for a progress bar).
    batch_predictions : bool
        Compute every decision's features in one numba pass and predict them in one ONNX call per
        horizon before the replay (DESIGN: the batch path gives the same features and predictions as
        the live path; ``tests/realdata/test_batch_predictions.py`` proves it on real data). False
        calls the models at each decision, as the daemon does.

    Raises
    ------
    BatchDivergence
        If a decision of the replay differs from the batch pass's.
    """
    inst = data.instrument
    fc = cfg.features
    state = FeatureState.from_config(fc)
    risk = RiskManager(cfg.risk, inst.tick_size, inst.lot_size, cfg.exec.taker_fee_bps)
    adapter = SimulatedExchange(
        latency_ns=int(round(cfg.exec.latency_ms * 1e6)),
        taker_fee_bps=cfg.exec.taker_fee_bps,
        tick_size=inst.tick_size,
        lot_size=inst.lot_size,
    )
    core = EngineCore(
        inst,
        state,
        models,
        risk,
        adapter,
        limit_slippage_bps=cfg.strategy.limit_slippage_bps,
        take_profit_bps=cfg.risk.take_profit_bps,
        stop_loss_bps=cfg.risk.stop_loss_bps,
        trade_from_ns=trade_from_ns,
        record=True,
    )
    ts, kind, side, price_tick, size, flags = (
        data.ts_event,
        data.kind,
        data.side,
        data.price_tick,
        data.size,
        data.flags,
    )
    feat = state.feat
    t0 = time.perf_counter()
    fm = None
    signals = None
    if batch_predictions:
        fm = compute_features(data, FeatureState.from_config(fc))
        X32 = fm.X.astype(np.float32)
        sig_classes, sig_p, sig_side, sig_horizon = choose_signals(
            [m.predict_batch(X32) for m in models.predictors], models.horizons_ns
        )
        # Python scalars: the loop below reads one row per decision.
        signals = (sig_classes, sig_p.tolist(), sig_side.tolist(), sig_horizon.tolist())
        blocked = edge_rejections(sig_p, cfg.risk, cfg.exec.taker_fee_bps)
        may_enter = np.flatnonzero((fm.ts >= trade_from_ns) & (blocked == 0))
        predictions, core.predictions = Prediction(fm.ts, sig_classes), None
        state.book_only()  # the replay needs the book, not the features: those came from the batch pass
    row = 0
    next_report = 0

    marking = False  # a quiet position: decisions are passed over and marked in bulk

    def mark_passed(code: int) -> None:
        # Before any code: mark the position at every decision the kernel passed over, in order, at
        # the mid it had then (the batch pass's mid series; equal to the book's mid at a decision).
        nonlocal row
        if not marking:
            return
        bound = int(state.ist[I_DECISION_TS]) if code & CODE_DECISION else int(state.ist[I_NEXT_GRID])
        end = int(np.searchsorted(fm.ts, bound, side="left"))
        if end > row:
            risk.mark_many(fm.mid_at(fm.ts[row:end]) * inst.tick_size)
            row = end

    def skip_inert() -> None:
        # After any code. Flat with nothing in flight, a decision whose probability fails the p-only
        # sizing rules only counts its refusal (risk.kelly.edge_rejections): count those here and
        # let the kernel run on to the next decision that may enter. With a quiet position a
        # decision only marks it (mark_passed). tests/realdata/test_batch_predictions.py checks that
        # fills, PnL, drawdown and refusal counts equal the per-decision replay's.
        nonlocal row, marking
        marking = core.is_quiet()
        if marking:
            state.decide_from(INT64_MAX)
            return
        if not core.is_idle():
            state.decide_from(INT64_MIN)
            return
        k = int(np.searchsorted(may_enter, row))
        nxt = int(may_enter[k]) if k < len(may_enter) else len(fm.ts)
        if nxt > row:
            seg = blocked[row:nxt][fm.ts[row:nxt] >= trade_from_ns]
            for reason, count in enumerate(np.bincount(seg).tolist()):
                if reason and count:
                    risk.reject_counts[RejectReason(reason)] += count
            row = nxt
        state.decide_from(int(fm.ts[nxt]) if nxt < len(fm.ts) else INT64_MAX)

    def decide(g: int, i: int) -> None:
        nonlocal row, next_report
        if signals is None:
            core.on_decision(g, feat)
        else:
            if row >= len(fm.ts) or fm.ts[row] != g:
                raise BatchDivergence(f"decision {row} at {g} ns does not match the batch pass")
            core.on_signal(g, signals[0][row], signals[1][row], signals[2][row], signals[3][row])
            row += 1
        if on_progress is not None and i >= next_report:
            on_progress(i)
            next_report = i + 50_000

    if signals is None:
        core.drive(ts, kind, side, price_tick, size, flags, decide)
    else:
        skip_inert()
        core.drive(ts, kind, side, price_tick, size, flags, decide, before=mark_passed, after=skip_inert)
        mark_passed(0)
        core.predictions = predictions
    if len(ts):
        core.finish(int(ts[-1]))
    wall = time.perf_counter() - t0
    if on_progress is not None:
        on_progress(len(ts))
    return ReplayResult(core=core, adapter=adapter, events=len(ts), wall_s=wall, trade_from_ns=trade_from_ns, features=fm)


def replay_events_per_second(result: ReplayResult) -> float:
    """Return events per second of wall time of the replay (0 for an empty one)."""
    return result.events / result.wall_s if result.wall_s > 0 else 0.0


def fills_table(result: ReplayResult) -> dict[str, np.ndarray]:
    """Return the fills as columns: ts_ns, order_id, side, qty, price, fee, notional, reason."""
    fills = result.core.fills
    return {
        "ts_ns": np.array([f.ts_ns for f in fills], dtype=np.int64),
        "order_id": np.array([f.order_id for f in fills], dtype=np.int64),
        "side": np.array([f.side for f in fills], dtype=np.int8),
        "qty": np.array([f.qty for f in fills], dtype=np.float64),
        "price": np.array([f.price for f in fills], dtype=np.float64),
        "fee": np.array([f.fee for f in fills], dtype=np.float64),
        "notional": np.array([f.qty * f.price for f in fills], dtype=np.float64),
        "reason": np.array([f.reason for f in fills], dtype=object),
    }
