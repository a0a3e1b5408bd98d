"""The daemon's latency machinery, in one optional component: decisions prepared between frames, keep-warm.

Neither changes what is decided, only when the work is done. :class:`PreparedDecisions` wraps the
core's signal source (:attr:`~scalper.engine.core.EngineCore.signal`): while the core is flat, the
loop's idle time after a frame predicts the decision the next grid point will take if no event comes
first (:meth:`PreparedDecisions.prepare_decision`), and the frame that reveals that decision takes the
prepared answer when its feature row is the same bytes and the model set the same; any other row is
predicted as without it. Its keep-warm task (:meth:`PreparedDecisions.keep_warm`) re-runs, between
frames, the code and data a frame and a flat decision touch, so they stay in the CPU caches.

Layer: engine core (pyproject's import-linter contract). It takes the core, the frame path and plain
callables for the daemon's metrics and failure handling, so nothing here imports the daemon; the
daemon creates it (or not) from ``daemon.prepare_decisions`` / ``daemon.keep_warm_ms`` and calls it
after each frame's events and from its keep-warm task.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import NamedTuple

import numpy as np

from scalper.engine.core import EngineCore, Signal
from scalper.engine.framepath import DepthFramePath
from scalper.features.kernels import I_HEAD, I_LAST_BOOK_TS, INT64_MIN, peek_next_decision
from scalper.ingest.binance.fastdepth import take_depth_frame
from scalper.ingest.binance.sequencer import N_IDS
from scalper.lowlevel.jit import kernel
from scalper.models.inference import ModelSet
from scalper.risk.limits import RiskManager

# The daemon's logger: these lines are the daemon's (an operator greps one logger).
log = logging.getLogger("scalper.daemon")

# What keep-warm reads of the state: the ladder this close to the touch, the newest ring entries.
WARM_NEAR_TICKS = 256
WARM_RECENT = 512


@kernel
def touch_state(px, sz, n, lpx, lsz, ln, ist, fst, rb_ts, rb_val, near_ticks, recent):
    """Read, without writing, the state a frame will touch next: the top view, the scalar state, the
    ladder within ``near_ticks`` of each best price and the ``recent`` newest ring entries. Returns a
    checksum (so the reads are not optimised away)."""
    acc = 0.0
    w = lpx.shape[1]
    for s in range(2):
        for k in range(px.shape[1]):
            acc += px[s, k] + sz[s, k]
        if n[s] > 0:
            best = px[s, 0]
            for d in range(-near_ticks, near_ticks + 1):
                j = (best + d) & (w - 1)
                acc += lpx[s, j] + lsz[s, j]
    for k in range(ist.shape[0]):
        acc += ist[k]
    for k in range(fst.shape[0]):
        acc += fst[k]
    cap = rb_ts.shape[0]
    head = ist[I_HEAD]
    for j in range(max(0, head - recent), head):
        acc += rb_ts[j % cap] + rb_val[j % cap, 0]
    return acc


class _Prepared(NamedTuple):
    """A decision predicted ahead: the feature row's bytes, the models that answered it and the signal
    to hand the decision (``asked`` False; the classes are this decision's own array, as the core's
    prediction buffers are reused)."""

    row: bytes
    models: ModelSet
    signal: Signal


def _ignore(_ns: int) -> None:
    pass


def _log_failure(where: str) -> None:
    log.exception("inference failed %s", where)


class PreparedDecisions:
    """Decisions prepared between frames and keep-warm for one :class:`~scalper.engine.core.EngineCore`.

    Parameters
    ----------
    core : EngineCore
        With ``prepare`` on, its :attr:`~scalper.engine.core.EngineCore.signal` becomes :meth:`signal`
        (which falls back to the core's own, :meth:`~scalper.engine.core.EngineCore.predict`).
    prepare : bool
        Prepare decisions (``daemon.prepare_decisions``). Off, the core's signal source is left alone
        and keep-warm predicts the last feature row instead.
    keep_warm_ms : float
        Period of :meth:`keep_warm`, ms (``daemon.keep_warm_ms``); 0: it returns at once.
    frames : DepthFramePath, optional
        The feed's hot path, re-scanned by keep-warm (the state is read either way).
    scratch : RiskManager, optional
        A risk manager of nobody's account that keep-warm sizes and checks its entries against;
        keep-warm needs it (ValueError at :meth:`keep_warm` without it).
    observe_inference : callable
        Called with the duration (ns) of each preparation that asked the models
        (``scalper_inference_seconds``: a prepared decision asks its models here, not at the decision).
    on_failure : callable
        Called with a phrase saying where, from inside the ``except`` block, when a model raises while
        preparing; preparing then stops until :meth:`resume`. By default the error is only logged.

    Attributes
    ----------
    hits : int
        Decisions that took a prepared answer (``scalper_decisions_prepared_total``).
    step : callable
        The idle-time preparation :meth:`after_events` schedules (:meth:`prepare`); instrumentation may
        replace it with a wrapper that calls it once (``Daemon.wrap_steps``).
    keep_warm_ms : float
        As the parameter.
    """

    def __init__(
        self,
        core: EngineCore,
        *,
        prepare: bool = True,
        keep_warm_ms: float = 0.0,
        frames: DepthFramePath | None = None,
        scratch: RiskManager | None = None,
        observe_inference: Callable[[int], None] = _ignore,
        on_failure: Callable[[str], None] = _log_failure,
    ) -> None:
        self.core = core
        self.frames = frames
        self.scratch = scratch
        self.keep_warm_ms = keep_warm_ms
        self.hits = 0
        self.step: Callable[[], None] = self.prepare
        self._configured = prepare
        self._prepares = prepare
        self._pending = False
        self._observe = observe_inference
        self._on_failure = on_failure
        self._predict = core.predict
        self._ready: _Prepared | None = None
        st = core.state
        self._peek_row = np.zeros_like(st.feat)
        self._peek_ist = np.zeros_like(st.ist)
        self._peek_fst = np.zeros_like(st.fst)
        self._arrays = st.arrays()
        self._no_ids = np.zeros(N_IDS, dtype=np.int64)  # never synced: the sequencer refuses every frame
        if prepare:
            core.signal = self.signal

    # -- the decision ---------------------------------------------------------------------------
    def signal(self, features: np.ndarray) -> Signal:
        """The core's signal for a decision row (float64[N_FEATURES]): the prepared answer when the row
        is the prepared row byte for byte and the core's models are the ones that answered it (counted
        in :attr:`hits`, ``asked`` False), else :meth:`~scalper.engine.core.EngineCore.predict`'s."""
        ready = self._ready
        if ready is not None and ready.models is self.core.models and features.tobytes() == ready.row:
            self.hits += 1
            return ready.signal
        return self._predict(features)

    def prepare_decision(self) -> float | None:
        """Predict, ahead of time, the decision the next grid point will take if no event comes first.

        Between frames the next decision time is known and, while no event arrives, every input of
        that decision: :func:`~scalper.features.kernels.peek_next_decision` writes its feature row
        without changing the state, and every model answers it now; :meth:`signal` hands that answer
        to the decision whose row is the same bytes.

        Only a core without records, flat with nothing in flight, prepares (in position a decision asks
        no model). Returns the prepared call's probability, or None when nothing was prepared. Raises
        what a model raises.
        """
        core = self.core
        if core.predictions is not None or not core.is_idle():
            return None
        st = core.state
        g = peek_next_decision(
            st.px, st.sz, st.n, st.ist, st.fst, st.rb_ts, st.rb_val, self._peek_row, self._peek_ist, self._peek_fst
        )
        if g == INT64_MIN or g < core.trade_from_ns:
            return None
        p, side, horizon_ns, classes, _ = self._predict(self._peek_row)
        self._ready = _Prepared(self._peek_row.tobytes(), core.models, (p, side, horizon_ns, classes.copy(), False))
        return p

    # -- the daemon's two calls ------------------------------------------------------------------
    def after_events(self) -> None:
        """The state moved (a frame's events ran): while preparing and flat, schedule :attr:`step` once
        for the loop's idle time (``call_soon``: after the frames already read, before the next one
        arrives). Outside an event loop there is no idle time to use, and nothing is scheduled."""
        if not self._prepares or self._pending or not self.core.is_idle():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            return
        self._pending = True
        loop.call_soon(self.step)

    def prepare(self) -> None:
        """The idle-time step: :meth:`prepare_decision`, its inference timed. A model that raises is
        reported once through ``on_failure`` and stops preparing until :meth:`resume`."""
        self._pending = False
        t0 = time.perf_counter_ns()
        try:
            if self.prepare_decision() is not None:
                self._observe(time.perf_counter_ns() - t0)
        except Exception:  # noqa: BLE001 - as at a decision: a broken model stops entries, not the daemon
            self._prepares = False  # once, not at every frame; a model reload turns it back on
            self._on_failure("while preparing the next decision (preparing stopped)")

    def resume(self) -> None:
        """New models (a reload): prepare again if configured to, after a failure stopped it."""
        self._prepares = self._configured

    async def keep_warm(self, stop: asyncio.Event) -> None:
        """Until ``stop`` is set, every :attr:`keep_warm_ms`, bring the hot path back into the CPU caches.

        On a shared VM a core idle for a few ms comes back without the kernels' and the model's cache
        lines, and the first frame after a quiet spell pays for them on its way to the decision; this
        loop keeps them resident at the cost of a share of one core (figures in BENCHMARKS.md). Each
        round prepares the next decision (:meth:`prepare_decision`; in position, or with preparing off,
        it predicts the last feature row again with every model instead), sizes and checks an entry on
        the book against the scratch risk manager (:meth:`rehearse_entry`), re-scans the last frame
        without applying it and reads the book and ring it will touch (:meth:`warm_frames`); it changes
        no book, account or order. A model or sizing error is logged and ends the loop. Returns at once
        when :attr:`keep_warm_ms` is 0.
        """
        period = self.keep_warm_ms / 1e3
        if period <= 0:
            return
        if self.scratch is None:
            raise ValueError("keep-warm needs a scratch risk manager")
        core = self.core
        row = core.state.feat.copy()
        while not stop.is_set():
            # A bare sleep, not a wait on the event: this loop runs a thousand times a second.
            await asyncio.sleep(period)
            try:
                p = self.prepare_decision() if self._prepares else None
                if p is None:  # nothing to prepare (in position, book invalid): the last row keeps the models warm
                    np.copyto(row, core.state.feat)
                    p = 0.0  # a model set is never empty: the last model's answer replaces it
                    for predictor in core.models.predictors:
                        p = float(predictor.predict(row).max())
                self.rehearse_entry(p)
            except Exception:
                log.exception("keep-warm stopped: a model or the entry sizing failed on the last feature row")
                return
            self.warm_frames()

    def rehearse_entry(self, p: float) -> None:
        """Size and check a long entry of probability ``p`` on the current book against the scratch risk
        manager, and send nothing: a flat decision's code, run so the next real one finds it cached."""
        core = self.core
        assert self.scratch is not None
        core.entry_order(int(core.state.ist[I_LAST_BOOK_TS]), 1, p, self.scratch)

    def warm_frames(self) -> None:
        """Scan the frame path's last frame again against ids that refuse it (the scanner's code and
        buffers are touched, nothing is applied), and read the state a frame touches (:func:`touch_state`)."""
        frames = self.frames
        if frames is not None and frames.last_frame is not None:
            take_depth_frame(np.frombuffer(frames.last_frame, dtype=np.uint8), self._no_ids, *frames.parser.scan_args())
        touch_state(*self._arrays, WARM_NEAR_TICKS, WARM_RECENT)
