"""The engine core: what happens at a decision, an order wake-up and a price watch.

The event loop (backtest replay or live daemon) owns the clock and feeds events to
``features.kernels.step``; whenever ``step`` reports a code, the loop calls the matching method here.
This class turns decisions into risk-checked orders, fills into positions, and positions into exits
(take-profit, stop-loss, time stop at the horizon), the same way in every driver.

One way into a decision: every driver runs its events with :meth:`EngineCore.drive` (the daemon's
frame path hands a code due before a frame to :meth:`EngineCore.on_code`), which hands each
decision to a :class:`Decisions`; each ends in :meth:`EngineCore.on_decision`, whose signal comes
from :attr:`EngineCore.signal`. The general path is :class:`GeneralDecisions` with the models'
:meth:`EngineCore.predict`; a fast path replaces one of the two (the batched replay,
``backtest/batched.py``; decisions prepared between frames, ``engine/prepared.py``) and takes the
general path for any decision it cannot answer.

One position per instrument at a time; entries and exits are marketable IOC limit orders (taker mode;
:class:`scalper.engine.maker.MakerCore` posts them instead). Decisions sit on the event-time grid of the
kernels: a live daemon runs a timer on the same grid, so it decides at the grid time ``g`` (not at the
later event that revealed ``g`` had passed); the orders of a decision leave ``decision_compute_ns``
after ``g``, the time the decision itself takes, and nothing the core sends leaves before that.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import ClassVar, Protocol

import numpy as np

from scalper.exec.adapter import ExecutionAdapter
from scalper.exec.orders import Fill
from scalper.features.kernels import (
    CODE_DECISION,
    CODE_INVALID,
    CODE_WAKE,
    CODE_WATCH,
    I_DECISION_TS,
    I_WAKE_TS,
    INT64_MAX,
    INT64_MIN,
    EventColumns,
    FeatureState,
    run_until,
)
from scalper.ingest.tickfile import Instrument
from scalper.lowlevel.jit import inline_kernel, kernel
from scalper.models.inference import ModelSet
from scalper.models.labels import DOWN, UP
from scalper.risk.intent import ApprovedOrder, OrderIntent, Rejection
from scalper.risk.limits import RiskManager
from scalper.risk.market import MarketState


@inline_kernel
def select_signal(proba, horizons_ns, classes):
    """The signal rule for one decision: the most confident up or down call across horizons.

    Parameters
    ----------
    proba : ndarray
        float32[H, 3], one row of class probabilities (down, flat, up) per horizon, in the model
        set's order. Finite.
    horizons_ns : ndarray
        int64[H], the horizons, ns, same order.
    classes : ndarray
        int8[H], written: the argmax class of each horizon (the first maximum, as numpy's argmax).

    Returns
    -------
    p, side, horizon_ns : float, int, int
        The call's probability, its side (+1 up, -1 down) and its horizon (ns). Candidates are
        scanned horizon by horizon, up before down, and the first maximum wins. The call is always
        up or down: when every up and down probability is 0 it is up at the first horizon with
        p = 0, which the sizing refuses.
    """
    best_p = -1.0
    best_side = 0
    best_h = 0
    for h in range(proba.shape[0]):
        c = 0
        for k in range(1, proba.shape[1]):
            if proba[h, k] > proba[h, c]:
                c = k
        classes[h] = c
        if proba[h, UP] > best_p:
            best_p, best_side, best_h = float(proba[h, UP]), 1, horizons_ns[h]
        if proba[h, DOWN] > best_p:
            best_p, best_side, best_h = float(proba[h, DOWN]), -1, horizons_ns[h]
    return best_p, best_side, best_h


@kernel
def select_one_signal(proba, horizons_ns, classes):
    """:func:`select_signal` as a kernel of its own, for a call from Python (one decision)."""
    return select_signal(proba, horizons_ns, classes)


@kernel
def select_signals(proba, horizons_ns, classes, p, side, horizon_ns):
    """:func:`select_signal` on every row: ``proba`` float32[M, H, 3]; writes ``classes`` int8[M, H],
    ``p`` float64[M], ``side`` int8[M] and ``horizon_ns`` int64[M] (all preallocated)."""
    for m in range(proba.shape[0]):
        p[m], side[m], horizon_ns[m] = select_signal(proba[m], horizons_ns, classes[m])


@dataclass
class Prediction:
    """Model output kept for the report: per decision, the argmax class of every horizon.

    Lists grown one decision at a time, or arrays (int64[M], int8[M, H]) from a batched replay.
    """

    ts: list[int] | np.ndarray = field(default_factory=list)
    classes: list[np.ndarray] | np.ndarray = field(default_factory=list)


Signal = tuple[float, int, int, np.ndarray, bool]
"""A decision's signal: ``(p, side, horizon_ns, classes, asked)``, the most confident up (+1) or down (-1)
call across horizons (:func:`select_signal`), its probability and horizon (ns), the argmax class of each
horizon (int8[H]) and whether the models were asked for it (False: answered from an earlier prediction)."""


class Decisions(Protocol):
    """Where :meth:`EngineCore.drive` hands the codes that need more than the core: the one way into a
    decision.

    Every implementation ends each decision in :meth:`EngineCore.on_decision` (the general path,
    :class:`GeneralDecisions`, is the default); a faster answer than the models' goes in as the core's
    :attr:`~EngineCore.signal`, which falls back to :meth:`EngineCore.predict` for a row it cannot
    answer.

    Attributes
    ----------
    skips_inert : bool
        True for an :class:`InertSkipping` (a replay that lets the kernel pass over decisions that
        cannot change anything): :meth:`EngineCore.drive` then calls its ``before`` / ``after``.
    """

    skips_inert: ClassVar[bool]

    def decide(self, g_ns: int, i: int) -> None:
        """Take the decision at grid time ``g_ns`` (ns), revealed by event ``i`` of the columns driven;
        the kernel's feature row for it is ``core.state.feat``. Raises what the core raises."""

    def on_invalid(self) -> None:
        """The book became crossed or locked (the live feed resyncs; a replay does nothing)."""


class InertSkipping(Decisions, Protocol):
    """:class:`Decisions` of a replay that skips inert decisions (``skips_inert`` True)."""

    def before(self, code: int) -> None:
        """Called with each code of ``run_until`` before the core handles it."""

    def after(self) -> None:
        """Called after the core has handled a code (and re-armed its wake-up)."""


class GeneralDecisions:
    """The general path, :class:`Decisions`' default: each decision is :meth:`EngineCore.on_decision` on
    the kernel's feature row; an invalid book is ignored (a replay's kernel passes it over).

    Parameters
    ----------
    core : EngineCore
        The core to decide with.
    """

    skips_inert: ClassVar[bool] = False

    def __init__(self, core: EngineCore) -> None:
        self.core = core
        self._on_decision = core.on_decision
        self._feat = core.state.feat

    def decide(self, g_ns: int, i: int) -> None:
        """:meth:`EngineCore.on_decision` at ``g_ns`` on the kernel's feature row."""
        self._on_decision(g_ns, self._feat)

    def on_invalid(self) -> None:
        """Nothing: the kernel resumes deciding once the book is valid again."""


@dataclass
class OpenPosition:
    """The exit plan of the current position (ticks, ns)."""

    side: int
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
    take_profit_bps, stop_loss_bps : float
        Exit levels, bps of the average entry price, watched on the exit-side best price.
    trade_from_ns : int
        No entry before this time (decisions before it are predicted, not traded).
    record : bool
        Keep every fill and every decision's predicted classes (backtest reports); a daemon
        journals fills instead and leaves this off so memory stays flat.
    on_fill : callable, optional
        Called with each fill after the account has taken it (the daemon journals fill and position).
    decision_compute_ns : int
        The decision's own compute time, ns, charged to the clock in event time: an order a decision
        at ``g`` makes is sent at ``g + decision_compute_ns``, and no order leaves before the last
        decision's compute is over (one engine thread). 0 (the default) for a live core, whose clock
        is the wall clock.

    Attributes
    ----------
    signal : callable
        ``signal(features) -> Signal``: where :meth:`on_decision` takes a decision row's signal from;
        :meth:`predict` (the models) unless a component replaced it with its own, which must fall back
        to :meth:`predict` for any row it cannot answer (the daemon's :mod:`scalper.engine.prepared`,
        the batched replay's :class:`~scalper.backtest.batched.BatchedDecisions`).
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
        record: bool = False,
        on_fill: Callable[[Fill], None] | None = None,
        decision_compute_ns: int = 0,
    ) -> None:
        if decision_compute_ns < 0:
            raise ValueError(f"decision_compute_ns must be >= 0; got {decision_compute_ns!r}")
        self.instrument = instrument
        self.state = state
        self._arrays = state.arrays()  # the kernels' state arguments: arrays made once, never replaced
        self.models = models
        self.risk = risk
        self.adapter = adapter
        self.slippage = limit_slippage_bps / 1e4
        self.take_profit = take_profit_bps / 1e4
        self.stop_loss = stop_loss_bps / 1e4
        self.trade_from_ns = trade_from_ns
        self.position: OpenPosition | None = None
        self.fills: list[Fill] | None = [] if record else None
        self.predictions = Prediction() if record else None
        self.pending_exit_reason: str | None = None
        self._on_fill = on_fill
        self._entry_horizon_ns = 0
        self.decision_compute_ns = int(decision_compute_ns)
        self._busy_until_ns = INT64_MIN  # the last decision's compute ends here: nothing is sent before
        self._set_signal_buffers(models)
        self.signal: Callable[[np.ndarray], Signal] = self.predict

    def _set_signal_buffers(self, models: ModelSet) -> None:
        # The one-decision signal rule's inputs and output, preallocated for a model set.
        n = len(models.predictors)
        self._signal_models = models
        self._proba = np.zeros((n, 3), dtype=np.float32)
        self._horizons = np.array(models.horizons_ns, dtype=np.int64)
        self._classes = np.zeros(n, dtype=np.int8)

    # -- market facts -------------------------------------------------------------------------
    def _market(self, ts_ns: int) -> MarketState:
        st = self.state
        return MarketState.of_book(ts_ns, st.px, st.n, st.ist, self.instrument.tick_size)

    def _mid(self) -> float:
        return 0.5 * (self.state.best_bid_tick + self.state.best_ask_tick) * self.instrument.tick_size

    def _send_ns(self, ts_ns: int) -> int:
        # An order is sent once the last decision's compute is over.
        return ts_ns if ts_ns >= self._busy_until_ns else self._busy_until_ns

    def _submit(self, decision: ApprovedOrder | Rejection, ts_ns: int) -> None:
        # Rejections are counted by the risk manager (reject_counts); nothing more to keep here.
        if not isinstance(decision, Rejection):
            self.adapter.submit(decision, self._send_ns(ts_ns))

    # -- codes from the event loop ------------------------------------------------------------
    def on_decision(self, ts_ns: int, features: np.ndarray) -> bool:
        """Predict every horizon (one ONNX call each) and act on the most confident up/down call.

        A core that keeps no predictions (``record`` off: the daemon) predicts nothing when no entry
        can be sized (:meth:`can_enter` false): the decision then only marks an open position, as
        :meth:`on_signal` would after predicting. The signal comes from :attr:`signal` (the models, or
        an answer prepared ahead for this very row). Returns True when the models were asked.
        """
        if self.predictions is None and not self.can_enter(ts_ns):
            self._mark_open()
            return False
        p, side, horizon_ns, classes, asked = self.signal(features)
        self.on_signal(ts_ns, classes, p, side, horizon_ns)
        return asked

    def predict(self, features: np.ndarray) -> Signal:
        """Ask every horizon's model about ``features`` (float64[N_FEATURES]) and apply the signal rule
        (:func:`select_signal`); ``asked`` is True. The classes array is a buffer the next call
        overwrites: copy it to keep it. Raises what a model raises."""
        models = self.models
        if models is not self._signal_models:  # models swapped (SIGHUP reload)
            self._set_signal_buffers(models)
        proba = self._proba
        for h, predictor in enumerate(models.predictors):
            proba[h] = predictor.predict(features)
        p, side, horizon_ns = select_one_signal(proba, self._horizons, self._classes)
        return p, side, horizon_ns, self._classes, True

    def on_signal(self, ts_ns: int, classes: np.ndarray | list[int], p: float, side: int, horizon_ns: int) -> None:
        """Open a position on a model call that passes risk.

        Parameters
        ----------
        classes : ndarray or list of int
            int8[n_horizons] (or a list), argmax class of each horizon's model (kept for the report).
        p, side, horizon_ns : float, int, int
            The most confident up (+1) or down (-1) call across horizons, its probability and its
            horizon (ns), which becomes the time stop (:meth:`on_decision` passes its signal's).

        Also marks an open position to the mid, so the drawdown kill switch sees unrealized losses.
        """
        records = self.predictions
        if records is not None:
            # Lists while decisions are taken one by one; a batched replay puts arrays there only after it.
            assert isinstance(records.ts, list) and isinstance(records.classes, list)
            records.ts.append(ts_ns)
            records.classes.append(np.array(classes, dtype=np.int8))
        self._mark_open()
        if not self.can_enter(ts_ns):
            return
        self._entry_horizon_ns = horizon_ns
        self._busy_until_ns = ts_ns + self.decision_compute_ns
        self._submit(self.entry_order(ts_ns, side, p, self.risk), ts_ns)

    def entry_order(self, ts_ns: int, side: int, p: float, risk: RiskManager) -> ApprovedOrder | Rejection:
        """The entry a call of probability ``p`` on ``side`` (+1/-1) at ``ts_ns`` makes on the current
        book: a marketable IOC limit past the touch, sized and checked by ``risk`` in one compiled call
        (:meth:`~scalper.risk.limits.RiskManager.enter_at_touch`, which counts it there). Sends nothing."""
        st = self.state
        return risk.enter_at_touch(ts_ns, side, p, self.slippage, self.instrument.tick_size, st.px, st.n, st.ist)

    def _mark_open(self) -> None:
        if self.risk.account.position != 0.0:
            self.risk.mark(self._mid())

    def on_wake(self, ts_ns: int) -> None:
        """Deliver due orders to the simulated venue, then run a due time stop."""
        self._deliver(ts_ns)
        if self.position is not None and ts_ns >= self.position.time_stop_ns:
            self._exit(ts_ns, "time_stop")
        self._retry_exit(ts_ns)

    def on_watch(self, ts_ns: int) -> None:
        """A watched price level was reached, or the book became valid while an exit was waiting."""
        if self.pending_exit_reason is not None:
            self._retry_exit(ts_ns)
            return
        pos = self.position
        if pos is None:
            self.state.clear_watch()
            return
        exit_tick = self.state.best_bid_tick if pos.side > 0 else self.state.best_ask_tick
        hit_tp = exit_tick * pos.side >= pos.take_profit_tick * pos.side
        self._exit(ts_ns, "take_profit" if hit_tp else "stop_loss")

    def drive(self, events: EventColumns, decisions: Decisions, start: tuple[int, int] | None = None) -> None:
        """Run schema-v1 event columns through the kernels, handing every code to this core.

        One numba call (``run_until``) covers the events until something needs Python; each code is
        handled by :meth:`on_code`, decisions by ``decisions`` (:class:`Decisions`). A ``decisions``
        whose :attr:`~Decisions.skips_inert` is True runs in a loop of its own that also calls its
        ``before(code)`` / ``after()`` around every code (:class:`InertSkipping`); the loop is chosen
        once per call, nothing is checked per code.

        Parameters
        ----------
        events : ~scalper.features.kernels.EventColumns
            The columns, equal lengths; prices in ticks.
        decisions : Decisions
            Takes each decision (:class:`GeneralDecisions` is the general path).
        start : (int, int), optional
            The ``(i, code)`` of a ``run_until`` on these events that the caller has already made (the
            daemon's frame path, ``engine/framepath.py``).
        """
        if decisions.skips_inert:
            self._drive_skipping(events, decisions, start)  # type: ignore[arg-type]
            return
        arrays, feat = self._arrays, self.state.feat
        ts = events.ts
        end = len(ts)
        i, code = start if start is not None else (0, None)
        while True:
            if code is None:
                if i == end:  # what run_until would say, without its dispatch
                    return
                i, code = run_until(*arrays, *events, i, feat)
            if code == 0:
                return
            self.on_code(code, i, decisions, int(ts[i - 1]) if code & CODE_WATCH else 0)
            code = None

    def _drive_skipping(
        self, events: EventColumns, decisions: InertSkipping, start: tuple[int, int] | None = None
    ) -> None:
        # drive's loop with decisions.before(code) / after() around each code.
        arrays, feat = self._arrays, self.state.feat
        ts = events.ts
        before, after = decisions.before, decisions.after
        i, code = start if start is not None else (0, None)
        while True:
            if code is None:
                i, code = run_until(*arrays, *events, i, feat)
            if code == 0:
                return
            before(code)
            self.on_code(code, i, decisions, int(ts[i - 1]) if code & CODE_WATCH else 0)
            after()
            code = None

    def on_code(self, code: int, i: int, decisions: Decisions, watch_ts_ns: int = 0) -> None:
        """Handle one code of ``run_until`` (see :meth:`drive`), then re-arm the wake-up time.

        A decision goes to ``decisions.decide(g, i)`` with its time ``g`` (ns) and ``i``, the index of
        the event that revealed it; a crossed or locked book to ``decisions.on_invalid()``;
        ``watch_ts_ns`` is the time of the event that met a price watch. The daemon's frame path also
        calls it for a code due before a frame.
        """
        if code & CODE_WAKE:
            self.on_wake(int(self.state.ist[I_WAKE_TS]))
        elif code & CODE_DECISION:
            decisions.decide(int(self.state.ist[I_DECISION_TS]), i)
        else:
            if code & CODE_WATCH:
                self.on_watch(watch_ts_ns)
            if code & CODE_INVALID:
                decisions.on_invalid()
        self.after_code()

    def after_code(self) -> None:
        """Re-arm the wake-up time; the loop calls it after handling each code."""
        wake = self.adapter.next_wake_ns()
        if self.position is not None and self.pending_exit_reason is None:
            stop = self.position.time_stop_ns
            wake = stop if wake is None else min(wake, stop)
        self.state.set_wake(wake)

    def can_enter(self, ts_ns: int) -> bool:
        """True when a signal at ``ts_ns`` would be sized for an entry (:meth:`on_signal`): trading has
        started, no position is open and no order is in flight."""
        return ts_ns >= self.trade_from_ns and self.position is None and not self.adapter.has_open_orders()

    def is_idle(self) -> bool:
        """True when flat with nothing in flight: only a decision that sizes an entry can change that."""
        return (
            self.position is None
            and self.pending_exit_reason is None
            and self.risk.account.position == 0.0
            and not self.adapter.has_open_orders()
        )

    def is_quiet(self) -> bool:
        """True when a position is open with no order in flight and no exit waiting: a decision then
        only marks the position to the mid (:meth:`on_signal`)."""
        return self.position is not None and self.pending_exit_reason is None and not self.adapter.has_open_orders()

    def close_position(self, ts_ns: int, reason: str) -> None:
        """Exit the whole position at the next chance (now if the book is valid): recovery, operator."""
        self._exit(ts_ns, reason)

    def finish(self, ts_ns: int, max_attempts: int = 10) -> None:
        """Close any position at the end of the data against the last book, after the order latency.

        Orders still in flight are delivered first (an entry can fill here). Up to ``max_attempts``
        IOC exits are sent; a position the last book cannot absorb stays open and shows in the
        report (``ends_flat`` false) rather than being closed at a made-up price.
        """
        for _ in range(max_attempts):
            if self.risk.account.position != 0.0 and not self.adapter.has_open_orders():
                self._exit(ts_ns, "end_of_data")
            wake = self.adapter.next_wake_ns()
            if wake is None:
                break
            ts_ns = max(ts_ns, wake)
            self._deliver(ts_ns)

    # -- positions ----------------------------------------------------------------------------
    def _deliver(self, ts_ns: int) -> None:
        fills = self.adapter.on_time(ts_ns, self.state.px, self.state.sz, self.state.n, self.state.is_valid)
        for fill in fills:
            if self.fills is not None:
                self.fills.append(fill)
            self.risk.on_fill(fill.side, fill.qty, fill.price, fill.fee)
            if self._on_fill is not None:
                self._on_fill(fill)
        if fills:
            self._sync_position(fills[-1])

    def _sync_position(self, last: Fill) -> None:
        # Exit levels come from the average price of the whole entry order, after all its fills.
        qty = self.risk.account.position
        if qty == 0.0:
            self.position = None
            self.pending_exit_reason = None
            self.state.clear_watch()
            return
        if self.position is not None or last.reason != "entry":
            return
        side = 1 if qty > 0 else -1
        tick = self.instrument.tick_size
        entry = self.risk.account.avg_entry_price
        tp = entry * (1.0 + side * self.take_profit) / tick
        sl = entry * (1.0 - side * self.stop_loss) / tick
        # Round the levels away from the entry so a move must reach them in full.
        tp_tick = math.ceil(tp) if side > 0 else math.floor(tp)
        sl_tick = math.floor(sl) if side > 0 else math.ceil(sl)
        self.position = OpenPosition(side, tp_tick, sl_tick, last.ts_ns + self._entry_horizon_ns)
        if side > 0:  # a long exits on the bid
            self.state.set_watch(tp_tick, sl_tick, INT64_MAX, INT64_MIN)
        else:  # a short exits on the ask
            self.state.set_watch(INT64_MAX, INT64_MIN, sl_tick, tp_tick)

    def _exit(self, ts_ns: int, reason: str) -> None:
        self.pending_exit_reason = reason
        self.state.clear_watch()
        qty = self.risk.account.position
        if qty == 0.0 or self.adapter.has_open_orders():
            return
        if not self.state.is_valid:
            # No price to exit at: wait for the next valid message end (a watch every price meets).
            self.state.set_watch(INT64_MIN, INT64_MAX, INT64_MIN, INT64_MAX)
            return
        side = -1 if qty > 0 else 1
        tick = self.instrument.tick_size
        touch = (self.state.best_ask_tick if side > 0 else self.state.best_bid_tick) * tick
        limit = touch * (1.0 + side * self.slippage)
        self._submit(
            self.risk.check(OrderIntent(ts_ns, side, abs(qty), limit, True, reason), self._market(ts_ns)), ts_ns
        )

    def _retry_exit(self, ts_ns: int) -> None:
        # An IOC exit that filled only partly, or that waited for a valid book: send the rest now.
        if self.pending_exit_reason is not None and self.risk.account.position != 0.0:
            self._exit(ts_ns, self.pending_exit_reason)


def choose_signals(probas: list[np.ndarray], horizons_ns: tuple[int, ...]) -> tuple[np.ndarray, ...]:
    """Pick, for every decision row at once, what :meth:`EngineCore.on_decision` picks for one: the
    same compiled rule (:func:`select_signal`), looped over the rows.

    Parameters
    ----------
    probas : list of ndarray
        One float32[M, 3] (down, flat, up) per horizon, in the model set's order.
    horizons_ns : tuple of int
        The horizons, ns, same order.

    Returns
    -------
    classes, p, side, horizon_ns : ndarray
        int8[M, H] argmax classes; float64[M] probability, int8[M] side (+1 up, -1 down) and
        int64[M] horizon of the most confident call.
    """
    proba = np.ascontiguousarray(np.stack(probas, axis=1), dtype=np.float32)  # [M, H, 3]
    m, h = proba.shape[0], proba.shape[1]
    classes = np.empty((m, h), dtype=np.int8)
    p = np.empty(m, dtype=np.float64)
    side = np.empty(m, dtype=np.int8)
    horizon = np.empty(m, dtype=np.int64)
    select_signals(proba, np.asarray(horizons_ns, dtype=np.int64), classes, p, side, horizon)
    return classes, p, side, horizon
