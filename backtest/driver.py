"""Replay driver: feed a tick file through the engine core in event time.

The loop runs ``features.kernels.run_until`` (numba) between the moments the core must act, so the
Python side runs only at decisions, order wake-ups and price watches; every event passes through the
same ``step`` kernel the live daemon calls one event at a time.

``[strategy] mode`` picks the core and its venue once: taker mode trades marketable IOC orders on
:class:`~scalper.exec.simulated.SimulatedExchange`; maker mode (:class:`~scalper.engine.maker.MakerCore`)
posts on :class:`~scalper.exec.passive_venue.PassiveSimulatedExchange`, which replays the same events
in exchange time for its own book and queues.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from scalper.backtest.batched import BatchedDecisions
from scalper.engine.config import EngineConfig
from scalper.engine.core import Decisions, EngineCore, GeneralDecisions
from scalper.engine.maker import MakerCore
from scalper.exec.passive_venue import PassiveSimulatedExchange
from scalper.exec.queue import QUEUE_MODEL_NAMES
from scalper.exec.simulated import SimulatedExchange
from scalper.features.batch import FeatureMatrix, FeatureStream
from scalper.features.kernels import EventColumns, FeatureState
from scalper.ingest.tickfile import TickData
from scalper.models.inference import ModelSet
from scalper.risk.kelly import PlannedFees
from scalper.risk.limits import RiskManager

PROGRESS_EVENTS = 50_000
"""Events replayed between two progress reports (``on_progress``)."""


@dataclass
class ReplayResult:
    """What a replay leaves for the report: the core (fills, predictions, rejections), the venue, timings
    and the batch feature matrix (decision rows and mid series) when the replay computed one."""

    core: EngineCore
    adapter: SimulatedExchange | PassiveSimulatedExchange
    events: int
    wall_s: float
    trade_from_ns: int
    features: FeatureMatrix | None = None


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
        Called with the index of the next event every :data:`PROGRESS_EVENTS` events, and with the
        event count at the end (for a progress bar).
    batch_predictions : bool
        Compute every decision's features in one numba pass, run in a thread ahead of the replay,
        and predict them in batches, one ONNX call per horizon, where the replay could enter (DESIGN:
        the batch path gives the same features and predictions as the live path;
        ``tests/realdata/test_batch_predictions.py`` proves it on real data). False calls the models
        at each decision, as the daemon does (:class:`~scalper.engine.core.GeneralDecisions`). A
        batched replay takes Python only at decisions that can trade (see ``backtest/batched.py``).

    Raises
    ------
    scalper.backtest.batched.BatchDivergence
        If a decision of the replay differs from the batch pass's.
    scalper.engine.config.ConfigError
        For a config the engine cannot trade with (:meth:`EngineConfig.check_tradable`).
    """
    cfg.check_tradable("backtest")
    fc = cfg.features
    state = FeatureState.from_config(fc)
    events = EventColumns(*data.kernel_columns())
    core = _make_core(data, events, models, cfg, state, trade_from_ns)
    adapter = core.adapter
    assert isinstance(adapter, SimulatedExchange | PassiveSimulatedExchange)
    ts = events.ts
    t0 = time.perf_counter()
    fm = None
    decisions: Decisions
    if batch_predictions:
        # The batch pass runs in a thread ahead of the replay (the replay waits if it catches up).
        features = FeatureStream(data, FeatureState.from_config(fc), background=True)
        batched = BatchedDecisions(features, models, core, trade_from_ns)
        core.predictions = None  # the batched replay keeps them: batched.predictions()
        batched.after()  # from the first event on, pass over what is inert
        decisions = batched
    else:
        decisions = GeneralDecisions(core)
    for lo in range(0, len(ts), PROGRESS_EVENTS):
        if on_progress is not None:
            on_progress(lo)
        # The kernel state carries over from one slice to the next: slicing changes nothing but when
        # the progress is reported.
        core.drive(EventColumns(*(c[lo : lo + PROGRESS_EVENTS] for c in events)), decisions)
    if batch_predictions:
        batched.before(0)  # marks for decisions passed over after the last code
        core.predictions = batched.predictions()
        fm = features.result()
    if len(ts):
        core.finish(int(ts[-1]))
    wall = time.perf_counter() - t0
    if on_progress is not None:
        on_progress(len(ts))
    return ReplayResult(
        core=core, adapter=adapter, events=len(ts), wall_s=wall, trade_from_ns=trade_from_ns, features=fm
    )


def _make_core(
    data: TickData, events: EventColumns, models: ModelSet, cfg: EngineConfig, state: FeatureState, trade_from_ns: int
) -> EngineCore:
    # The mode's core, venue and planned fees, chosen once for the run.
    inst = data.instrument
    ex = cfg.exec
    latency_ns = int(round(ex.latency_ms * 1e6))
    common: dict[str, Any] = {
        "limit_slippage_bps": cfg.strategy.limit_slippage_bps,
        "take_profit_bps": cfg.risk.take_profit_bps,
        "stop_loss_bps": cfg.risk.stop_loss_bps,
        "trade_from_ns": trade_from_ns,
        "record": True,
        "decision_compute_ns": ex.decision_compute_ns,
    }
    if cfg.strategy.mode == "maker":
        risk = RiskManager(
            cfg.risk, inst.tick_size, inst.lot_size, PlannedFees.maker(ex.maker_fee_bps, ex.taker_fee_bps)
        )
        venue = PassiveSimulatedExchange(
            events.ts,
            events.kind,
            events.side,
            events.price_tick,
            events.size,
            tick_size=inst.tick_size,
            lot_size=inst.lot_size,
            entry_latency_ns=latency_ns,
            response_latency_ns=int(round(ex.response_latency_ms * 1e6)),
            maker_fee_bps=ex.maker_fee_bps,
            taker_fee_bps=ex.taker_fee_bps,
            queue_model=QUEUE_MODEL_NAMES[ex.queue_model],
            queue_param=ex.queue_param,
        )
        return MakerCore(
            inst,
            state,
            models,
            risk,
            venue,
            inside_min_spread_ticks=cfg.strategy.inside_min_spread_ticks,
            queue_window_s=cfg.strategy.queue_window_s,
            **common,
        )
    risk = RiskManager(cfg.risk, inst.tick_size, inst.lot_size, ex.taker_fee_bps)
    adapter = SimulatedExchange(
        latency_ns=latency_ns, taker_fee_bps=ex.taker_fee_bps, tick_size=inst.tick_size, lot_size=inst.lot_size
    )
    return EngineCore(inst, state, models, risk, adapter, **common)


def replay_events_per_second(result: ReplayResult) -> float:
    """Return events per second of wall time of the replay (0 for an empty one)."""
    return result.events / result.wall_s if result.wall_s > 0 else 0.0


def fills_table(result: ReplayResult) -> dict[str, np.ndarray]:
    """Return the fills as columns: ts_ns, order_id, side, qty, price, fee, notional, reason, maker."""
    fills = result.core.fills
    if fills is None:
        raise ValueError("the replay's core kept no records (EngineCore(record=False)): no fills to tabulate")
    return {
        "ts_ns": np.array([f.ts_ns for f in fills], dtype=np.int64),
        "order_id": np.array([f.order_id for f in fills], dtype=np.int64),
        "side": np.array([f.side for f in fills], dtype=np.int8),
        "qty": np.array([f.qty for f in fills], dtype=np.float64),
        "price": np.array([f.price for f in fills], dtype=np.float64),
        "fee": np.array([f.fee for f in fills], dtype=np.float64),
        "notional": np.array([f.qty * f.price for f in fills], dtype=np.float64),
        "reason": np.array([f.reason for f in fills], dtype=object),
        "maker": np.array([f.is_maker for f in fills], dtype=bool),
    }
