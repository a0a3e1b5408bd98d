"""``scalper run``: the long-running paper-trading daemon on a Binance feed.

One asyncio loop (uvloop) runs the feed, the engine core and the I/O; none blocks another:

* The feed hands each websocket frame's tick events to :meth:`Daemon.on_events`, which runs them
  through the same ``step`` kernel and :class:`~scalper.engine.core.EngineCore` as the backtest.
* Journal writes never happen on that path: records go to :class:`~scalper.exec.journal.JournalWriter`
  with ``put_nowait`` and a background task writes them in order. An order intent is journaled before
  the order is sent: :class:`JournaledVenue` holds each approved order until the writer reports its
  intent durable, and only then releases it to the paper venue.
* While the journal cannot be written, no new position is opened (the risk state goes
  reducing-only until it recovers); exits still go out.

At start the journal is read back: position and PnL are restored, orders whose outcome is unknown
are settled as NOT_FOUND (a paper venue does not outlive the process), new order ids continue after
the journal's last, and a recovered position is closed at the first valid book after the resync.

Signals: SIGINT/SIGTERM stop gracefully (no new entries, open orders cancelled, journal flushed,
exit 0); SIGHUP reloads the model directory (a model that fails validation keeps the old one);
SIGUSR1 halts trading, SIGUSR2 sets reducing-only. With Redis configured, the ``halt_key`` value
(``active``, ``reducing_only``, ``halted``) is polled every second.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections import deque
from collections.abc import Callable
from pathlib import Path

import numpy as np
from scalper.engine.config import EngineConfig
from scalper.engine.core import EngineCore
from scalper.engine.framepath import NOT_RUN, DepthFramePath
from scalper.engine.metrics import EngineMetrics, serve
from scalper.exec.adapter import ExecutionAdapter
from scalper.exec.journal import (
    FillRecord,
    IntentRecord,
    PositionRecord,
    ReconciledRecord,
    ReconcileOutcome,
    StatusRecord,
)
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.orders import Fill, Order
from scalper.exec.recovery import recover
from scalper.exec.simulated import SimulatedExchange
from scalper.features.kernels import (
    I_LAST_BOOK_TS,
    I_LAST_EVENT_TS,
    FeatureState,
)
from scalper.ingest.binance.feed import BinanceFeed
from scalper.ingest.binance.messages import Market
from scalper.ingest.tickfile import KIND_BOOK, Instrument
from scalper.models.card import ModelCardMismatch
from scalper.models.inference import ModelSet, load_model_dir
from scalper.risk.intent import ApprovedOrder, TradingState
from scalper.risk.limits import RiskManager

log = logging.getLogger("scalper.daemon")

_STATE_BY_NAME = {"active": TradingState.ACTIVE, "reducing_only": TradingState.REDUCING_ONLY, "halted": TradingState.HALTED}


class JournaledVenue(ExecutionAdapter):
    """An execution adapter that journals every intent and sends the order only once it is durable.

    Wraps the paper venue; the engine core sees one adapter. Orders waiting for the journal count as
    open, so the core does not stack a second entry on top of one that has not been sent yet.
    """

    def __init__(self, venue: SimulatedExchange, journal: JournalWriter) -> None:
        self.venue = venue
        self.journal = journal
        self._held: deque[tuple[int, ApprovedOrder, int]] = deque()
        # Held orders reach the venue in order, so its ids equal these client ids (and the journal's).
        self._next_client_id = venue.next_order_id

    def _submit(self, order: ApprovedOrder, ts_ns: int) -> Order:
        oid = self._next_client_id
        self._next_client_id += 1
        # Journal records carry wall-clock time; the decision's event time is in the order itself.
        seq = self.journal.put_nowait(IntentRecord.from_intent(ts_ns, oid, order.intent))
        self._held.append((seq, order, ts_ns))
        intent = order.intent
        return Order(oid, ts_ns, intent.side, intent.qty, intent.limit_price, intent.reason, intent.is_exit)

    def release(self, now_ns: int) -> int:
        """Send every held order whose intent is now durable, in order; return how many went out.

        An order leaves at ``max(decision time, now_ns)`` (event time): it cannot reach the venue
        before its intent was on disk.
        """
        sent = 0
        durable = self.journal.durable_seq
        while self._held and self._held[0][0] <= durable:
            _, order, ts_ns = self._held.popleft()
            # Live event times are not strictly ordered (trade T can trail depth T): never step the venue clock back.
            self.venue.submit(order, max(ts_ns, now_ns, self.venue.now_ns))
            sent += 1
        return sent

    def cancel(self, order_id: int, ts_ns: int) -> bool:
        return self.venue.cancel(order_id, max(ts_ns, self.venue.now_ns))

    def open_orders(self) -> list[Order]:
        return self.venue.open_orders()

    def has_open_orders(self) -> bool:
        return bool(self._held) or self.venue.has_open_orders()

    def holds_orders(self) -> bool:
        """True while an order waits for its intent to be durable (:meth:`release` sends it)."""
        return bool(self._held)

    def order(self, order_id: int) -> Order:
        return self.venue.order(order_id)

    def next_wake_ns(self) -> int | None:
        return self.venue.next_wake_ns()

    def on_time(self, ts_ns, px, sz, n, is_book_valid=True) -> list[Fill]:
        return self.venue.on_time(ts_ns, px, sz, n, is_book_valid)


class Daemon:
    """Wire feed, engine core, paper venue, journal and metrics for one instrument.

    Raises
    ------
    ModelCardMismatch
        At construction, if the model directory does not fit the engine (refused at start).
    """

    def __init__(self, cfg: EngineConfig, metrics: EngineMetrics | None = None) -> None:
        self.cfg = cfg
        d = cfg.daemon
        self.instrument = Instrument(f"BINANCE_{d.market.upper()}", d.symbol, d.tick_size, d.lot_size, "live")
        self.models = self._load_models(Path(d.model_dir))
        self.metrics = metrics or EngineMetrics()
        self.state = FeatureState.from_config(cfg.features)
        self.risk = RiskManager(cfg.risk, d.tick_size, d.lot_size, cfg.exec.taker_fee_bps)
        if d.journal == "file":
            Path(d.journal_path).parent.mkdir(parents=True, exist_ok=True)
            backend = FileJournal(Path(d.journal_path))
        else:
            backend = self._redis_backend()
        self.journal = JournalWriter(backend, on_write=self.metrics.journal_write.observe)
        # The kernel's book is the one that counts; it reports a crossed book back (feed.invalidate).
        self.frames = DepthFramePath(d.tick_size, self.state, self.on_frame, hold=self._orders_held)
        self.feed = BinanceFeed(
            Market(d.market), d.symbol, d.tick_size, d.ws_url, d.rest_url, self.on_events,
            check_book=False, hot_path=self.frames,
        )
        self.core: EngineCore | None = None
        self.venue: JournaledVenue | None = None
        self.stop_event = asyncio.Event()
        self._recovered_position = False
        self._reported_counts: dict = {}
        self._frame_recv_ns = 0  # receive time of the frame a code due before it came from
        self._prepares = d.prepare_decisions
        self._prepare_pending = False

    def _redis_backend(self):
        from scalper.exec.journal_redis import RedisJournal

        return RedisJournal(self.cfg.daemon.redis_url, self.cfg.daemon.stream_key)

    def _load_models(self, directory: Path) -> ModelSet:
        models = load_model_dir(directory)
        models.check_compatible(self.cfg.features.grid_ms, self.cfg.daemon.tick_size)
        return models

    # -- start-up -----------------------------------------------------------------------------
    async def _recover(self) -> int:
        entries = await self.journal.backend.read_all()
        state = recover(entries)
        self.risk.account.restore(state.position, state.avg_entry_price, state.realized_pnl, state.fees_paid)
        now = time.time_ns()
        for order in state.open_orders:
            self.journal.put_nowait(ReconciledRecord(now, order.order_id, ReconcileOutcome.NOT_FOUND))
        self._recovered_position = state.position != 0.0
        log.info("recovered %d journal records: position %r, realized %r, %d order(s) settled as not found",
                 len(entries), state.position, state.realized_pnl, len(state.open_orders))
        return state.next_order_id

    def _build_core(self, first_order_id: int) -> None:
        c = self.cfg
        paper = SimulatedExchange(
            latency_ns=int(round(c.exec.latency_ms * 1e6)),
            taker_fee_bps=c.exec.taker_fee_bps,
            tick_size=c.daemon.tick_size,
            lot_size=c.daemon.lot_size,
            first_order_id=first_order_id,
            keep_history=False,
            on_terminal=lambda order: self.journal.put_nowait(StatusRecord.from_order(time.time_ns(), order)),
        )
        self.venue = JournaledVenue(paper, self.journal)
        self.core = EngineCore(
            self.instrument, self.state, self.models, self.risk, self.venue,
            limit_slippage_bps=c.strategy.limit_slippage_bps,
            take_profit_bps=c.risk.take_profit_bps,
            stop_loss_bps=c.risk.stop_loss_bps,
            on_fill=self._journal_fill,
        )

    # -- hot path -----------------------------------------------------------------------------
    def on_events(self, cols: dict[str, np.ndarray]) -> None:
        """Run the events of the feed's general path (float prices) through the kernel and the core.

        An unexpected error inside the engine halts trading and is logged; it never stops the feed.
        """
        ticks = np.rint(cols["price"] / self.instrument.tick_size).astype(np.int64)
        recv = cols["ts_recv"]
        kind = cols["kind"]
        counts = np.bincount(kind, minlength=3)
        for k in range(3):
            if counts[k]:
                self.metrics.events_by_kind[k].inc(int(counts[k]))
        self._guarded(self._run_events, cols["ts_event"], kind, cols["side"], ticks, cols["size"], cols["flags"], lambda i: int(recv[i]))
        self._after_events()

    def on_frame(self, m: int, i: int, code: int, ts_recv_ns: int) -> None:
        """Run one depthUpdate frame of the feed's hot path: ``m`` book events (prices in ticks), of
        which the frame path applied the first ``i`` and stopped with ``code`` (``NOT_RUN``: none).
        ``m == 0``: ``code`` is due before the frame's events, which come in a later call.

        With ``daemon.prepare_decisions`` on, events that leave the core flat and idle (here and in
        :meth:`on_events`) schedule :meth:`~scalper.engine.core.EngineCore.prepare_decision` for the
        loop's idle time."""
        if m == 0:
            # Due before the frame (a decision off its head, most often): no events to run, so
            # straight to the core, none of the frame's plumbing before the intent.
            self._frame_recv_ns = ts_recv_ns
            self._guarded(self.core.on_code, code, 0, self._decide_frame)
            return
        self.metrics.events_by_kind[KIND_BOOK].inc(m)
        # Every event applied and nothing due, no order waiting for the journal (the frame path only
        # scans a frame while one does): then nothing of _run_events is left to do.
        if code != 0 or self._recovered_position:
            start = None if code == NOT_RUN else (i, code)
            self._guarded(self._run_events, *self.frames.columns(m), lambda _i: ts_recv_ns, start)
        self._after_events()

    def _after_events(self) -> None:
        # The state moved: while flat, prepare the next decision once the loop has run what is ready
        # (call_soon: after the frames already read, in the idle time before the next one arrives).
        if not self._prepares or self._prepare_pending or not self.core.is_idle():
            return
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:  # frames handed over outside an event loop: there is no idle time to use
            return
        self._prepare_pending = True
        loop.call_soon(self._prepare)

    def _prepare(self) -> None:
        self._prepare_pending = False
        try:
            self.core.prepare_decision()
        except Exception:  # noqa: BLE001 - as at a decision: a broken model stops entries, not the daemon
            self._prepares = False  # once, not at every frame; a model reload turns it back on
            self._inference_failed("while preparing the next decision (preparing stopped)")

    def _decide_frame(self, g: int, _i: int) -> None:
        self._decide(g, self.state.feat, self._frame_recv_ns)

    def _orders_held(self) -> bool:
        # Orders waiting for the journal are released at the frame's first event, before its events.
        return self.venue is None or self.venue.holds_orders()

    def _guarded(self, fn: Callable[..., None], *args) -> None:
        try:
            fn(*args)
        except Exception:  # noqa: BLE001 - fail closed but keep the process and its journal alive
            self.metrics.engine_errors.inc()
            self.risk.set_state(TradingState.HALTED)
            log.exception("engine error while processing a frame: trading halted")

    def _run_events(self, ts, kind, side, ticks, size, flags, recv_of, start=None) -> None:
        # recv_of(i): local receive time (ns) of event i, for the tick-to-decision histogram.
        # start: where the frame path's run_until stopped (it runs only when no order is held).
        core, state = self.core, self.state
        feat = state.feat
        if start is None and len(ts) and self.venue.release(int(ts[0])):
            core.after_code()
        core.drive(
            ts, kind, side, ticks, size, flags,
            decide=lambda g, i: self._decide(g, feat, recv_of(i)),
            on_invalid=self.feed.invalidate,
            start=start,
        )
        if self._recovered_position and state.is_valid and len(ts):
            self._recovered_position = False
            core.close_position(int(ts[-1]), "recovered")
        if len(ts) and self.venue.release(int(ts[-1])):
            core.after_code()

    def _decide(self, g: int, feat: np.ndarray, ts_recv: int) -> None:
        m = self.metrics
        m.decisions.inc()
        t0 = time.perf_counter_ns()
        try:
            predicted = self.core.on_decision(g, feat)
        except Exception:  # noqa: BLE001 - fail closed: a broken model must stop entries, not the daemon
            predicted = True
            self._inference_failed(f"at decision {g}")
        if predicted:  # a decision in position asks no model: nothing to put in the inference histogram
            m.observe_inference(time.perf_counter_ns() - t0)
        m.observe_tick_to_decision(time.time_ns() - ts_recv)

    def _inference_failed(self, where: str) -> None:
        self.metrics.inference_errors.inc()
        if self.risk.state == TradingState.ACTIVE:
            self.risk.set_state(TradingState.REDUCING_ONLY)
        log.exception("inference failed %s: new entries stopped", where)

    def _journal_fill(self, fill: Fill) -> None:
        now = time.time_ns()
        self.journal.put_nowait(FillRecord.from_fill(now, fill))
        self.journal.put_nowait(PositionRecord.from_account(now, self.risk.account))

    async def keep_warm(self) -> None:
        """Between frames, every ``daemon.keep_warm_ms``, bring the hot path back into the CPU caches.

        On a shared VM a core idle for a few ms comes back without the kernels' and the model's cache
        lines: a frame after 5 ms of quiet took ~300 µs to its decision instead of ~15 back to back,
        ~130 µs with this loop (BENCHMARKS.md); the loop costs ~16 % of one core at 1 ms. Each round
        prepares the next decision (:meth:`~scalper.engine.core.EngineCore.prepare_decision`; in
        position, or with ``prepare_decisions`` off, it predicts the last feature row again with every
        model instead), sizes and checks an entry on the book against a scratch risk manager
        (:meth:`~scalper.engine.core.EngineCore.rehearse_entry`), re-scans the last frame without
        applying it, and reads the book and ring it will touch; it changes no book, account or order.
        Returns at once when ``keep_warm_ms`` is 0.
        """
        period = self.cfg.daemon.keep_warm_ms / 1e3
        if period <= 0:
            return
        row = self.state.feat.copy()
        d = self.cfg.daemon
        scratch = RiskManager(self.cfg.risk, d.tick_size, d.lot_size, self.cfg.exec.taker_fee_bps)
        while not self.stop_event.is_set():
            # A bare sleep, not self._sleep: this loop runs a thousand times a second.
            await asyncio.sleep(period)
            try:
                p = self.core.prepare_decision() if self._prepares else None
                if p is None:  # nothing to prepare (in position, book invalid): the last row keeps the models warm
                    np.copyto(row, self.state.feat)
                    for predictor in self.models.predictors:
                        p = float(predictor.predict(row).max())
                self.core.rehearse_entry(scratch, p)
            except Exception:  # noqa: BLE001 - a broken model is the decision path's to report, not this loop's
                log.exception("keep-warm stopped: a model or the entry sizing failed on the last feature row")
                return
            self.frames.warm()

    # -- housekeeping (once a second, off the hot path) -------------------------------------------
    async def _housekeeping(self) -> None:
        redis = None
        if self.cfg.daemon.journal == "redis":
            import redis.asyncio as aioredis

            redis = aioredis.from_url(self.cfg.daemon.redis_url, socket_timeout=0.5)
        while not self.stop_event.is_set():
            await self._sleep(1.0)
            if self.venue.release(int(self.state.ist[I_LAST_EVENT_TS])):
                self.core.after_code()
            if redis is not None:
                await self._poll_halt_key(redis)
            self._journal_guard()
            self._export_gauges()
        if redis is not None:
            await redis.aclose()

    async def _poll_halt_key(self, redis) -> None:
        try:
            value = await redis.get(self.cfg.daemon.halt_key)
        except Exception:  # noqa: BLE001 - the halt switch is advisory; an outage must not stop the loop
            return
        if value is not None:
            wanted = _STATE_BY_NAME.get(value.decode().strip().lower())
            if wanted is not None and wanted != self.risk.state:
                log.warning("halt key %s: trading state %s -> %s", self.cfg.daemon.halt_key, self.risk.state.name, wanted.name)
                self.risk.set_state(wanted)

    def _journal_guard(self) -> None:
        # No new positions while intents cannot be made durable; exits still go (they shrink risk).
        if not self.journal.is_writable and self.risk.state == TradingState.ACTIVE:
            log.error("journal not writable: trading goes reducing-only")
            self.risk.set_state(TradingState.REDUCING_ONLY)

    def _export_gauges(self) -> None:
        m, acc, st = self.metrics, self.risk.account, self.state
        m.position.set(acc.position)
        m.realized_pnl.set(acc.realized_pnl - acc.fees_paid)
        m.unrealized_pnl.set(acc.unrealized_pnl)
        m.drawdown.set(acc.drawdown)
        m.trading_state.set(self.risk.state)
        m.book_valid.set(1 if st.is_valid and self.feed.is_synced else 0)
        m.journal_writable.set(1 if self.journal.is_writable else 0)
        last_book = int(st.ist[I_LAST_BOOK_TS])
        if last_book > 0:
            m.set_book_age_ns(max(0, time.time_ns() - last_book))
        fs = self.feed.stats
        self._count(m.journal_errors, "journal_errors", self.journal.errors)
        self._count(m.reconnects, "reconnects", fs.reconnects)
        self._count(m.decisions_prepared, "prepared", self.core.prepared_hits)
        self._count(m.resyncs, "resyncs", fs.resyncs)
        self._count(m.sequence_gaps, "gaps", sum(v for k, v in fs.invalidations.items() if k.name == "GAP"))
        for reason, count in fs.malformed.items():
            for _ in range(count - self._reported_counts.get(f"malformed:{reason}", 0)):
                m.count_rejected_message(str(reason))
            self._reported_counts[f"malformed:{reason}"] = count
        for reason, count in self.risk.reject_counts.items():
            self._count(m.risk_rejections[reason], f"risk:{reason.name}", count)
        for status, count in self.venue.venue.status_counts().items():
            self._count(m.orders[status], f"orders:{status.name}", count)

    def _count(self, counter, key: str, total: int) -> None:
        # Counters mirror totals kept elsewhere: add only the increase since the last export.
        delta = total - self._reported_counts.get(key, 0)
        if delta > 0:
            counter.inc(delta)
            self._reported_counts[key] = total

    # -- control --------------------------------------------------------------------------------
    def reload_models(self) -> bool:
        """Load the model directory again; keep the running models if the new ones fail validation."""
        try:
            models = self._load_models(Path(self.cfg.daemon.model_dir))
        except (ModelCardMismatch, OSError, ValueError) as exc:
            log.error("model reload refused, keeping the running models: %s", exc)
            return False
        self.models = models
        self.core.models = models
        self._prepares = self.cfg.daemon.prepare_decisions
        self._publish_model_info(models)
        log.info("models reloaded: horizons %s", [p.card.horizon_s for p in models.predictors])
        return True

    def _publish_model_info(self, models: ModelSet) -> None:
        version = ",".join(p.card.data_sha256[:12] for p in models.predictors)
        self.metrics.set_model(version, [p.card.horizon_s for p in models.predictors])

    def set_state(self, state: TradingState) -> None:
        log.warning("operator: trading state %s -> %s", self.risk.state.name, state.name)
        self.risk.set_state(state)

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)
        except asyncio.TimeoutError:
            pass

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM; return the process exit code (0 after a graceful stop)."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_models)
        loop.add_signal_handler(signal.SIGUSR1, lambda: self.set_state(TradingState.HALTED))
        loop.add_signal_handler(signal.SIGUSR2, lambda: self.set_state(TradingState.REDUCING_ONLY))
        await self.journal.start()
        first_id = await self._recover()
        self._build_core(first_id)
        self._publish_model_info(self.models)
        server, port = serve(self.metrics, self.cfg.daemon.metrics_host, self.cfg.daemon.metrics_port)
        log.info("metrics on http://%s:%d/metrics", self.cfg.daemon.metrics_host, port)
        # Everything loaded so far (models, numba dispatchers, libraries) lives for the whole run: keep
        # it out of the collector's scans, so a full collection never walks it during a frame.
        gc.collect()
        gc.freeze()
        feed_task = asyncio.create_task(self.feed.run(self.stop_event))
        house_task = asyncio.create_task(self._housekeeping())
        warm_task = asyncio.create_task(self.keep_warm())
        await self.stop_event.wait()
        await self._shutdown(feed_task, house_task, warm_task)
        server.shutdown()
        server.server_close()
        return 0

    async def _shutdown(self, feed_task: asyncio.Task, house_task: asyncio.Task, warm_task: asyncio.Task) -> None:
        if self.risk.state == TradingState.ACTIVE:
            self.risk.set_state(TradingState.REDUCING_ONLY)
        # Held orders never reached the venue: their intents stay unsettled and recovery reports them.
        event_now = int(self.state.ist[I_LAST_EVENT_TS])
        for order in self.venue.open_orders():
            self.venue.cancel(order.order_id, event_now)
        await asyncio.wait_for(feed_task, 10)
        await asyncio.wait_for(house_task, 5)
        await asyncio.wait_for(warm_task, 1)
        self._export_gauges()
        await self.journal.close()
        log.info("stopped: position %s, journal flushed", self.risk.account.position)
