"""The engine core: what happens at a decision, an order wake-up and a price watch.

The event loop (backtest replay or live daemon) owns the clock and feeds events to
``features.kernels.step``; whenever ``step`` reports a code, the loop calls the matching method here.
This class turns decisions into risk-checked orders, fills into positions, and positions into exits
(take-profit, stop-loss, time stop at the horizon), the same way in every driver.

One position per instrument at a time; entries and exits are marketable IOC limit orders.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from scalper.exec.adapter import ExecutionAdapter
from scalper.exec.orders import Fill
from scalper.features.kernels import I_LAST_EVENT_TS, FeatureState
from scalper.ingest.tickfile import Instrument
from scalper.models.inference import ModelSet
from scalper.models.labels import DOWN, UP
from scalper.risk.intent import OrderIntent, Rejection
from scalper.risk.limits import RiskManager
from scalper.risk.market import MarketState


@dataclass
class Prediction:
    """Model output kept for the report: per decision, the argmax class of every horizon."""

    ts: list[int] = field(default_factory=list)
    classes: list[list[int]] = field(default_factory=list)


@dataclass
class OpenPosition:
    """The exit plan of the current position (ticks, ns)."""

    side: int
    entry_price: float
    take_profit_tick: int
    stop_loss_tick: int
    time_stop_ns: int


class EngineCore:
    """Decision -> model -> risk -> execution wiring for one instrument.

    Parameters
    ----------
    instrument : Instrument
        Tick and lot size.
    state : FeatureState
        The book and features the event loop updates.
    models : ModelSet
        One predictor per horizon.
    risk : RiskManager
        Sizing and pre-trade limits; its account is the position of record.
    adapter : ExecutionAdapter
        Where approved orders go (``next_wake_ns`` / ``on_time`` when simulated).
    limit_slippage_bps : float
        How far past the touch an IOC limit price goes, bps.
    trade_from_ns : int
        No entry before this time (decisions before it are predicted, not traded).
    record_predictions : bool
        Keep every decision's predicted classes (for backtest reports; a daemon leaves it off so
        memory stays flat).
    """

    def __init__(
        self,
        instrument: Instrument,
        state: FeatureState,
        models: ModelSet,
        risk: RiskManager,
        adapter: ExecutionAdapter,
        limit_slippage_bps: float,
        take_profit_bps: float,
        stop_loss_bps: float,
        trade_from_ns: int = 0,
        record_predictions: bool = False,
    ) -> None:
        self.instrument = instrument
        self.state = state
        self.models = models
        self.risk = risk
        self.adapter = adapter
        self.slippage = limit_slippage_bps / 1e4
        self.take_profit = take_profit_bps / 1e4
        self.stop_loss = stop_loss_bps / 1e4
        self.trade_from_ns = trade_from_ns
        self.position: OpenPosition | None = None
        self.fills: list[Fill] = []
        self.predictions = Prediction() if record_predictions else None
        self.pending_exit_reason: str | None = None
        self._horizon_ns = 0

    # -- market facts -------------------------------------------------------------------------
    def _market(self, ts_ns: int) -> MarketState:
        tick = self.instrument.tick_size
        bid, ask = self.state.best_bid_tick, self.state.best_ask_tick
        return MarketState(
            ts_ns=ts_ns,
            best_bid=bid * tick,
            best_ask=ask * tick,
            spread_ticks=int(ask - bid),
            last_event_ts_ns=int(self.state.ist[I_LAST_EVENT_TS]),
            is_book_valid=self.state.is_valid,
        )

    def _send(self, intent: OrderIntent | Rejection) -> bool:
        # Rejections are counted by the risk manager (reject_counts); nothing more to keep here.
        if isinstance(intent, Rejection):
            return False
        decision = self.risk.check(intent, self._market(intent.ts_ns))
        if isinstance(decision, Rejection):
            return False
        self.adapter.submit(decision, intent.ts_ns)
        return True

    # -- codes from the event loop ------------------------------------------------------------
    def on_decision(self, ts_ns: int, features: np.ndarray) -> None:
        """Predict every horizon; open a position on the most confident up/down call that passes risk."""
        best_p, best_side, best_h = 0.0, 0, 0
        classes = []
        for predictor in self.models.predictors:
            proba = predictor.predict(features)
            classes.append(int(np.argmax(proba)))
            for cls, side in ((UP, 1), (DOWN, -1)):
                if proba[cls] > best_p:
                    best_p, best_side, best_h = float(proba[cls]), side, predictor.horizon_ns
        if self.predictions is not None:
            self.predictions.ts.append(ts_ns)
            self.predictions.classes.append(classes)
        if ts_ns < self.trade_from_ns or self.position is not None or self.adapter.open_orders():
            return
        tick = self.instrument.tick_size
        touch = (self.state.best_ask_tick if best_side > 0 else self.state.best_bid_tick) * tick
        limit = touch * (1.0 + best_side * self.slippage)
        self._horizon_ns = best_h
        self._send(self.risk.entry_intent(ts_ns, best_side, best_p, limit))

    def on_wake(self, ts_ns: int) -> None:
        """Deliver due orders to the simulated venue, then run a due time stop."""
        for fill in self.adapter.on_time(ts_ns, self.state.px, self.state.sz, self.state.n):
            self._on_fill(fill)
        if self.position is not None and ts_ns >= self.position.time_stop_ns:
            self._exit(ts_ns, "time_stop")
        self._retry_exit(ts_ns)
        self._arm_wake()

    def on_watch(self, ts_ns: int) -> None:
        """A best price reached the take-profit or stop-loss level of the open position."""
        pos = self.position
        if pos is None:
            self.state.clear_watch()
            return
        exit_tick = self.state.best_bid_tick if pos.side > 0 else self.state.best_ask_tick
        hit_tp = exit_tick * pos.side >= pos.take_profit_tick * pos.side
        self._exit(ts_ns, "take_profit" if hit_tp else "stop_loss")

    def finish(self, ts_ns: int, max_attempts: int = 10) -> None:
        """Close any position at the end of the data against the last book, after the order latency.

        Up to ``max_attempts`` IOC exits are sent; a position the last book cannot absorb stays open
        and shows in the report (``ends_flat`` false) rather than being closed at a made-up price.
        """
        if self.risk.account.position != 0.0:
            self._exit(ts_ns, "end_of_data")
        for _ in range(max_attempts):
            wake = self.adapter.next_wake_ns()
            if wake is None:
                break
            for fill in self.adapter.on_time(wake, self.state.px, self.state.sz, self.state.n):
                self._on_fill(fill)
            self._retry_exit(wake)

    # -- positions ----------------------------------------------------------------------------
    def _on_fill(self, fill: Fill) -> None:
        self.fills.append(fill)
        self.risk.on_fill(fill.side, fill.qty, fill.price, fill.fee)
        qty = self.risk.account.position
        if qty == 0.0:
            self.position = None
            self.pending_exit_reason = None
            self.state.clear_watch()
        elif self.position is None and fill.reason == "entry":
            self._open(fill)

    def _open(self, fill: Fill) -> None:
        tick = self.instrument.tick_size
        side = fill.side
        entry = self.risk.account.avg_entry_price
        tp = entry * (1.0 + side * self.take_profit) / tick
        sl = entry * (1.0 - side * self.stop_loss) / tick
        # Round the levels away from the entry so a move must reach them in full.
        tp_tick = math.ceil(tp) if side > 0 else math.floor(tp)
        sl_tick = math.floor(sl) if side > 0 else math.ceil(sl)
        self.position = OpenPosition(side, entry, tp_tick, sl_tick, fill.ts_ns + self._horizon_ns)
        self._watch_position()

    def _watch_position(self) -> None:
        pos = self.position
        lo, hi = np.iinfo(np.int64).min, np.iinfo(np.int64).max
        if pos.side > 0:  # a long exits on the bid
            self.state.set_watch(pos.take_profit_tick, pos.stop_loss_tick, hi, lo)
        else:  # a short exits on the ask
            self.state.set_watch(hi, lo, pos.stop_loss_tick, pos.take_profit_tick)

    def _exit(self, ts_ns: int, reason: str) -> None:
        self.state.clear_watch()
        self.pending_exit_reason = reason
        if self.adapter.open_orders():
            return
        qty = self.risk.account.position
        if qty == 0.0:
            return
        side = -1 if qty > 0 else 1
        tick = self.instrument.tick_size
        touch = (self.state.best_ask_tick if side > 0 else self.state.best_bid_tick) * tick
        limit = touch * (1.0 + side * self.slippage)
        self._send(OrderIntent(ts_ns, side, abs(qty), limit, True, reason))

    def _retry_exit(self, ts_ns: int) -> None:
        # An IOC exit that filled only partly leaves a position: send the rest at once.
        if self.pending_exit_reason is not None and not self.adapter.open_orders() and self.risk.account.position != 0.0:
            self._exit(ts_ns, self.pending_exit_reason)

    def _arm_wake(self) -> None:
        wake = self.adapter.next_wake_ns()
        if self.position is not None and self.pending_exit_reason is None:
            stop = self.position.time_stop_ns
            wake = stop if wake is None else min(wake, stop)
        self.state.set_wake(wake)

    def after_order(self) -> None:
        """Re-arm the wake-up after any submission (the loop calls it after each code)."""
        self._arm_wake()
