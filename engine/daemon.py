"""``scalper run``: the long-running paper-trading daemon on a Binance feed.

One asyncio loop (uvloop) runs the feed, the engine core and the I/O; none blocks another:

* The feed hands each depthUpdate frame it can scan to :meth:`Daemon.on_frame` (the frame path,
  ``engine/framepath.py``) and the events of any other frame to :meth:`Daemon.on_events`; both run
  them through the same ``step`` kernel and :class:`~scalper.engine.core.EngineCore` as the backtest,
  and every decision reaches the core's :meth:`~scalper.engine.core.EngineCore.on_decision` the same way.
* Journal writes never happen on that path: records go to :class:`~scalper.exec.journal.JournalWriter`
  with ``put_nowait`` and a background task writes them in order. An order intent is journaled before
  the order is sent: :class:`~scalper.exec.journaled.JournaledVenue` holds each approved order until
  the writer reports its intent durable, and only then releases it to the paper venue.
* While the journal cannot be written, no new position is opened (the journal's slot of the trading
  state goes reducing-only until the store is back and the buffered records have drained); exits
  still go out at once, their records queued in order behind the rest.
* The trading state combines several sources, most restrictive first (:mod:`scalper.risk.control`):
  operator signals, the drawdown kill switch, inference and engine errors latch; the journal's
  health and the Redis halt key set only their own slot. Only ``scalper control resume``
  (:mod:`scalper.engine.control`), journaled as an ``operator`` record, loosens a latch.

At start the journal is read back: position and PnL are restored, orders whose outcome is unknown
are settled as NOT_FOUND (a paper venue does not outlive the process), new order ids continue after
the journal's last, and a recovered position is closed at the first valid book after the resync.

Signals: SIGINT/SIGTERM stop gracefully (no new entries, open orders cancelled, journal flushed for
at most ``daemon.shutdown_timeout_s``, the rest to the file fallback, exit 0); SIGHUP reloads the
model directory (a model that fails validation keeps the old one); SIGUSR1 halts trading, SIGUSR2
sets reducing-only (both only tighten, and are journaled). With Redis configured, the ``halt_key``
value (``active``, ``reducing_only``, ``halted``; anything else counts as ``halted``) is polled
every second.
"""

from __future__ import annotations

import asyncio
import gc
import logging
import signal
import time
from collections.abc import Callable
from pathlib import Path
from typing import ClassVar

import numpy as np
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import TimeoutError as RedisTimeoutError

from scalper.engine.config import EngineConfig, is_loopback
from scalper.engine.control import ControlCommand, FileControlChannel, control_key
from scalper.engine.core import Decisions, EngineCore
from scalper.engine.framepath import NOT_RUN, DepthFramePath
from scalper.engine.metrics import EngineMetrics, serve
from scalper.engine.prepared import PreparedDecisions
from scalper.exec.journal import (
    FillRecord,
    JournalCorrupt,
    JournalOverflow,
    OperatorAction,
    OperatorRecord,
    PositionRecord,
    ReconciledRecord,
    ReconcileOutcome,
    StatusRecord,
)
from scalper.exec.journal_file import FileJournal
from scalper.exec.journal_mark import DurableMark
from scalper.exec.journal_writer import JournalWriter
from scalper.exec.journaled import JournaledVenue
from scalper.exec.orders import Fill
from scalper.exec.recovery import recover, replay_fallback
from scalper.exec.simulated import SimulatedExchange
from scalper.features.kernels import I_LAST_EVENT_TS, EventColumns, FeatureState
from scalper.ingest.binance.feed import BinanceFeed
from scalper.ingest.binance.messages import Market
from scalper.ingest.tickfile import KIND_BOOK, Instrument
from scalper.models.card import ModelCardMismatch
from scalper.models.inference import ModelSet, load_model_dir
from scalper.risk.control import Source
from scalper.risk.intent import TradingState
from scalper.risk.limits import RiskManager

log = logging.getLogger("scalper.daemon")

# What a journal store that is down or unreadable raises at start (redis-py's errors are not OSErrors).
_STORE_UNREACHABLE = (OSError, RedisConnectionError, RedisTimeoutError)

_STATE_BY_NAME = {
    "active": TradingState.ACTIVE,
    "reducing_only": TradingState.REDUCING_ONLY,
    "halted": TradingState.HALTED,
}
JOURNAL_HEALTH_S = 1.0
"""How long the journal store may go unchecked while there is nothing to write, seconds."""


DecisionStep = Callable[[int, np.ndarray, int], None]
"""One decision of the daemon: ``(g, feat, ts_recv_ns)``, see :meth:`Daemon.wrap_steps`."""


class StartupError(RuntimeError):
    """The daemon cannot start (metrics port taken, journal store unreachable); the message is one
    line naming what and where, with the config key to check."""


class JournalStartError(RuntimeError):
    """The journal cannot be recovered at start; the message is one line saying what to do."""


class Daemon:
    """Wire feed, engine core, paper venue, journal and metrics for one instrument.

    Raises
    ------
    ModelCardMismatch
        At construction, if the model directory does not fit the engine (refused at start).
    ConfigError
        At construction, for a config the daemon cannot trade with (:meth:`EngineConfig.check_tradable`).
    """

    def __init__(self, cfg: EngineConfig, metrics: EngineMetrics | None = None) -> None:
        cfg.check_tradable("daemon")
        self.cfg = cfg
        d = cfg.daemon
        self.instrument = Instrument(f"BINANCE_{d.market.upper()}", d.symbol, d.tick_size, d.lot_size, "live")
        self.models = self._load_models(Path(d.model_dir))
        self.metrics = metrics or EngineMetrics()
        self.state = FeatureState.from_config(cfg.features)
        self.risk = RiskManager(cfg.risk, d.tick_size, d.lot_size, cfg.exec.taker_fee_bps)
        fallback = None
        self.journal_mark: DurableMark | None = None
        if d.journal == "file":
            Path(d.journal_path).parent.mkdir(parents=True, exist_ok=True)
            backend = FileJournal(Path(d.journal_path))
            self.control_files = FileControlChannel(d.control_dir)
        else:
            backend = self._redis_backend()
            Path(d.journal_fallback_path).parent.mkdir(parents=True, exist_ok=True)
            fallback = FileJournal(Path(d.journal_fallback_path))
            self.journal_mark = DurableMark(Path(d.journal_mark_path), f"{d.redis_url}#{d.stream_key}")
        self.journal = JournalWriter(
            backend,
            on_write=self.metrics.journal_write.observe,
            health_interval_s=JOURNAL_HEALTH_S,
            fallback=fallback,
            on_health=self._journal_guard,
            mark=self.journal_mark,
        )
        # The kernel's book is the one that counts; it reports a crossed book back (feed.invalidate).
        self.frames = DepthFramePath(d.tick_size, self.state, self.on_frame, hold=self._orders_held)
        self.feed = BinanceFeed(
            Market(d.market),
            d.symbol,
            d.tick_size,
            d.ws_url,
            d.rest_url,
            self.on_events,
            check_book=False,
            hot_path=self.frames,
            config=cfg.feed,
        )
        # Made by build_core, once the journal gives the first order id; typed as always there because
        # nothing but _orders_held (the frame path's question, which may come first) runs before it.
        self.core: EngineCore = None  # type: ignore[assignment]
        self.venue: JournaledVenue = None  # type: ignore[assignment]
        self.stop_event = asyncio.Event()
        self._recovered_position = False
        self._reported_counts: dict = {}
        self._book_recv_ns = 0  # receive time of the last frame with book events (book_age_seconds)
        self._key_state = TradingState.ACTIVE  # the halt key's last value, to log each change once
        self._control_failing = False
        self._loss_marked = False  # a lost store's marker record is queued (see _mark_store_loss)
        # The latency machinery (engine/prepared.py), made by build_core when the config asks for it.
        self.prepared: PreparedDecisions | None = None
        # What the hot path calls after a frame's events: the component's after_events, or nothing.
        self._after_events: Callable[[], None] = _nothing
        # What the hot path calls: the daemon's own steps unless wrap_steps() wrapped them.
        self._decide_step: DecisionStep = self._decide
        # How the core's decisions reach _decide_step, with the receive time of what revealed them.
        self._frame_decisions = _FrameDecisions(self)
        self._event_decisions = _EventDecisions(self)
        self._prepare_wrappers: list[Callable[[Callable[[], None]], Callable[[], None]]] = []

    def wrap_steps(
        self,
        decide: Callable[[DecisionStep], DecisionStep] | None = None,
        prepare: Callable[[Callable[[], None]], Callable[[], None]] | None = None,
    ) -> None:
        """Instrumentation point (the bench, tracing): route each decision through ``decide(step)``
        and each idle-time preparation through ``prepare(step)``.

        ``step`` is the daemon's own call, which the wrapper must make exactly once (timing or
        recording around it). A decision step takes ``(g, feat, ts_recv_ns)``: the decision's grid
        time (ns since the epoch), the kernel's feature row (float64[N_FEATURES], read, never kept)
        and the local receive time (ns) of the frame that brought it; a preparation step
        (:attr:`PreparedDecisions.step <scalper.engine.prepared.PreparedDecisions>`) takes nothing,
        and is wrapped once :meth:`build_core` has made the component (never, when the config asks
        for neither preparing nor keep-warm). Wrappers compose: a second call wraps the first.
        Nothing is checked per event or per decision: the hot path calls whatever is installed.
        """
        if decide is not None:
            self._decide_step = decide(self._decide_step)
        if prepare is not None:
            self._prepare_wrappers.append(prepare)
            if self.prepared is not None:
                self.prepared.step = prepare(self.prepared.step)

    def _redis_backend(self):
        from scalper.exec.journal_redis import RedisJournal

        return RedisJournal(self.cfg.daemon.redis_url, self.cfg.daemon.stream_key)

    def _redis_client(self):
        # The housekeeping's own connection (halt key, control list): short timeouts, never the writer's.
        import redis.asyncio as aioredis

        from scalper.exec.journal_redis import redis_auth_from_env

        return aioredis.from_url(
            self.cfg.daemon.redis_url, socket_timeout=0.5, socket_connect_timeout=0.5, **redis_auth_from_env()
        )

    def _load_models(self, directory: Path) -> ModelSet:
        models = load_model_dir(directory)
        models.check_compatible(self.cfg.features.grid_ms, self.instrument)
        return models

    # -- start-up -----------------------------------------------------------------------------
    async def _start_journal(self) -> int:
        """Replay the file fallback into Redis, start the writer, recover; return the next order id.

        Raises
        ------
        JournalStartError
            In one line with what to do, if the journal contradicts itself (for example a Redis that
            restarted empty under a fallback that continues it at seq 38).
        """
        d = self.cfg.daemon
        where = f"Redis stream {d.stream_key} at {d.redis_url}" if d.journal == "redis" else d.journal_path
        try:
            if d.journal == "redis":
                await replay_fallback(self.journal.backend, d.journal_fallback_path)
                assert self.journal_mark is not None
                self.journal_mark.check(await self.journal.backend.last_seq())
            await self.journal.start()
            self._journal_guard()  # the gauges tell the journal's state from the start, not a second later
            return await self._recover()
        except JournalCorrupt as exc:
            raise JournalStartError(
                f"{where}: {exc}. The journal contradicts itself (a store that lost records, e.g. Redis"
                " restarted without its data?): restore it (Redis AOF or a backup) and start again, or"
                " move it aside to start flat after checking the venue's position (README: the daemon)"
            ) from exc

    async def _recover(self) -> int:
        entries = await self.journal.backend.read_all()
        state = recover(entries)
        self.risk.account.restore(state.position, state.avg_entry_price, state.realized_pnl, state.fees_paid)
        now = time.time_ns()
        for order in state.open_orders:
            self.journal.put_nowait(ReconciledRecord(now, order.order_id, ReconcileOutcome.NOT_FOUND))
        self._recovered_position = state.position != 0.0
        self.risk.impose(Source.OPERATOR, state.operator_state)
        log.info(
            "recovered %d journal records: position %r, realized %r, %d order(s) settled as not found",
            len(entries),
            state.position,
            state.realized_pnl,
            len(state.open_orders),
        )
        if state.operator_state != TradingState.ACTIVE:
            log.warning(
                "operator state %s restored from the journal: `scalper control resume` releases it",
                state.operator_state.name,
            )
        return state.next_order_id

    def build_core(self, first_order_id: int) -> None:
        """Make the paper venue, its journaled wrapper and the engine core; :meth:`run` calls it once
        the journal is recovered. Order ids start at ``first_order_id`` (the journal's next).

        Tests and the bench call it after ``await daemon.journal.start()`` to drive frames without
        :meth:`run`.
        """
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
            self.instrument,
            self.state,
            self.models,
            self.risk,
            self.venue,
            limit_slippage_bps=c.strategy.limit_slippage_bps,
            take_profit_bps=c.risk.take_profit_bps,
            stop_loss_bps=c.risk.stop_loss_bps,
            on_fill=self._journal_fill,
        )
        d = c.daemon
        if d.prepare_decisions or d.keep_warm_ms > 0:
            self.prepared = PreparedDecisions(
                self.core,
                prepare=d.prepare_decisions,
                keep_warm_ms=d.keep_warm_ms,
                frames=self.frames,
                scratch=RiskManager(c.risk, d.tick_size, d.lot_size, c.exec.taker_fee_bps),
                observe_inference=self.metrics.observe_inference,
                on_failure=self._inference_failed,
            )
            for wrap in self._prepare_wrappers:
                self.prepared.step = wrap(self.prepared.step)
            if d.prepare_decisions:  # else nothing to schedule after events: not even the component's check
                self._after_events = self.prepared.after_events

    # -- hot path -----------------------------------------------------------------------------
    def on_events(self, cols: dict[str, np.ndarray]) -> None:
        """Run the events of the feed's general path (float prices) through the kernel and the core.

        An unexpected error inside the engine halts trading and is logged; it never stops the feed.
        """
        ticks = np.rint(cols["price"] / self.instrument.tick_size).astype(np.int64)
        recv = cols["ts_recv"]
        kind = cols["kind"]
        counts = np.bincount(kind, minlength=3)
        if counts[KIND_BOOK]:
            self._book_recv_ns = int(recv[-1])
        for k in range(3):
            if counts[k]:
                self.metrics.events_by_kind[k].inc(int(counts[k]))
        decisions = self._event_decisions
        decisions.recv = recv
        self._run(EventColumns(cols["ts_event"], kind, cols["side"], ticks, cols["size"], cols["flags"]), decisions)
        self._after_events()

    def on_frame(self, m: int, i: int, code: int, ts_recv_ns: int) -> None:
        """Run one depthUpdate frame of the feed's hot path: ``m`` book events (prices in ticks), of
        which the frame path applied the first ``i`` and stopped with ``code`` (``NOT_RUN``: none).
        ``m == 0``: ``code`` is due before the frame's events, which come in a later call.

        A frame the frame path cannot scan never comes here: the feed parses it and hands its events
        to :meth:`on_events`, the general path.

        With ``daemon.prepare_decisions`` on, events that leave the core flat and idle (here and in
        :meth:`on_events`) schedule the next decision's preparation for the loop's idle time
        (:meth:`PreparedDecisions.after_events <scalper.engine.prepared.PreparedDecisions>`)."""
        decisions = self._frame_decisions
        decisions.recv_ns = ts_recv_ns
        if m == 0:
            # Due before the frame (a decision off its head, most often): no events to run, so
            # straight to the core's code handling, none of _run's plumbing before the intent.
            try:
                self.core.on_code(code, 0, decisions)
            except Exception:  # noqa: BLE001 - logged by _engine_failed: an engine error halts trading, not the feed
                self._engine_failed()
            return
        self.metrics.events_by_kind[KIND_BOOK].inc(m)
        self._book_recv_ns = ts_recv_ns
        # Every event applied and nothing due, no order waiting for the journal (the frame path only
        # scans a frame while one does): then nothing of _run is left to do.
        if code != 0 or self._recovered_position:
            self._run(EventColumns(*self.frames.columns(m)), decisions, None if code == NOT_RUN else (i, code))
        self._after_events()

    def _orders_held(self) -> bool:
        # Orders waiting for the journal are released at the frame's first event, before its events.
        return self.venue is None or self.venue.holds_orders()

    def _run(self, events: EventColumns, decisions: Decisions, start: tuple[int, int] | None = None) -> None:
        """Run the feed's ``events`` (``start``: where the frame path's ``run_until`` stopped) through the
        core (:meth:`EngineCore.drive`), releasing the orders held for the journal around them; a
        recovered position is closed at the first valid book.

        Both feed paths come here; a code due before a frame's events goes to the core's code handling
        directly (:meth:`on_frame`). Either way each decision reaches :meth:`_decide` (through
        :attr:`_decide_step`, the instrumentation point) by ``decisions``, which adds the receive time.
        An unexpected error inside the engine halts trading and is logged; it never stops the feed.
        """
        core = self.core
        ts = events.ts
        try:
            # The frame path runs its events only when no order is held (start given): none to release.
            if start is None and len(ts) and self.venue.release(int(ts[0])):
                core.after_code()
            core.drive(events, decisions, start)
            if len(ts):
                if self._recovered_position and self.state.is_valid:
                    self._recovered_position = False
                    core.close_position(int(ts[-1]), "recovered")
                if self.venue.release(int(ts[-1])):
                    core.after_code()
        except Exception:  # noqa: BLE001 - logged by _engine_failed: an engine error halts trading, not the feed
            self._engine_failed()

    def _engine_failed(self) -> None:
        # Called from the except block: the traceback goes to the log. The feed goes on.
        self.metrics.engine_errors.inc()
        self.risk.impose(Source.ENGINE, TradingState.HALTED)
        log.exception("engine error while processing a frame: trading halted")

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
        self.risk.impose(Source.INFERENCE, TradingState.REDUCING_ONLY)
        log.exception("inference failed %s: new entries stopped", where)

    def _journal_fill(self, fill: Fill) -> None:
        now = time.time_ns()
        self.journal.put_nowait(FillRecord.from_fill(now, fill))
        self.journal.put_nowait(PositionRecord.from_account(now, self.risk.account))

    # -- housekeeping (once a second, off the hot path) -------------------------------------------
    async def _housekeeping(self) -> None:
        redis = self._redis_client() if self.cfg.daemon.journal == "redis" else None
        while not self.stop_event.is_set():
            await self._sleep(1.0)
            if self.venue.release(int(self.state.ist[I_LAST_EVENT_TS])):
                self.core.after_code()
            if redis is not None:
                await self._poll_halt_key(redis)
            await self._poll_control(redis)
            self._journal_guard()
            self._export_gauges()
        if redis is not None:
            await redis.aclose()

    async def _poll_halt_key(self, redis) -> None:
        """Set the key's slot from ``daemon.halt_key``: absent is ``active``, an unknown value
        ``halted`` (fail closed). The key can only add to what the other sources impose."""
        key = self.cfg.daemon.halt_key
        try:
            value = await redis.get(key)
        except Exception:  # noqa: BLE001 - an outage keeps the key's last value; the journal guard sees the outage
            return
        text = "active" if value is None else value.decode(errors="replace").strip().lower()
        wanted = _STATE_BY_NAME.get(text, TradingState.HALTED)
        before = self.risk.state
        self.risk.impose(Source.KEY, wanted)
        if wanted != self._key_state:
            self._key_state = wanted
            unknown = "" if text in _STATE_BY_NAME else f" (unknown value {text[:40]!r} counts as halted)"
            log.warning(
                "halt key %s = %s%s: trading state %s -> %s (imposed: %s)",
                key,
                wanted.name,
                unknown,
                before.name,
                self.risk.state.name,
                self.risk.control.describe(),
            )

    async def _poll_control(self, redis) -> None:
        # The explicit operator channel (engine/control.py): a Redis list, or a directory of files.
        try:
            if redis is None:
                taken = [(f"file {path}", data) for path, data in self.control_files.receive()]
            else:
                taken = []
                while (data := await redis.lpop(control_key(self.cfg.daemon))) is not None:
                    taken.append((f"redis list {control_key(self.cfg.daemon)}", data))
        except Exception as exc:  # noqa: BLE001 - a broken channel must not stop the housekeeping
            if not self._control_failing:  # once per outage, not every second
                log.error("control channel unreadable (%s: %s); commands wait", type(exc).__name__, exc)
            self._control_failing = True
            return
        self._control_failing = False
        for origin, data in taken:
            try:
                cmd = ControlCommand.decode(data)
            except ValueError as exc:
                log.error("control command from %s refused: %s", origin, exc)
                continue
            self.apply_command(cmd, origin)

    def apply_command(self, cmd: ControlCommand, origin: str) -> bool:
        """The operator's explicit action: journal it, then set the operator slot to ``cmd.state``
        and release the automatic latches (the journal and key slots stay). Return True if applied;
        a command the journal cannot take is refused (logged), never applied unjournaled."""
        record = OperatorRecord(
            time.time_ns(), OperatorAction.SET, cmd.state, f"{cmd.reason} ({cmd.sender} via {origin})"
        )
        try:
            self.journal.put_nowait(record)
        except (JournalOverflow, RuntimeError) as exc:
            log.error(
                "operator command %s from %s refused: it cannot be journaled (%s)", cmd.state.name, cmd.sender, exc
            )
            return False
        before = self.risk.state
        self.risk.set_state(cmd.state)
        log.warning(
            "operator command from %s via %s: set %s, %r: trading state %s -> %s (still imposed: %s)",
            cmd.sender,
            origin,
            cmd.state.name,
            cmd.reason,
            before.name,
            self.risk.state.name,
            self.risk.control.describe(),
        )
        return True

    def _journal_guard(self) -> None:
        # No new positions while intents cannot be made durable; exits still go (they shrink risk).
        # The slot clears by itself once the store is writable and what it missed has drained.
        j = self.journal
        held = self.risk.control.slot(Source.JOURNAL)
        if not j.is_writable:
            wanted = TradingState.REDUCING_ONLY
        elif held != TradingState.ACTIVE and j.backlog:
            wanted = held
        else:
            wanted = TradingState.ACTIVE
        self.metrics.journal_writable.set(1 if j.is_writable else 0)
        self.metrics.journal_store_lost.set(1 if j.store_lost else 0)
        if j.store_lost and not self._loss_marked:
            self._mark_store_loss()
        if wanted == held:
            return
        before = self.risk.state
        self.risk.impose(Source.JOURNAL, wanted)
        if wanted == TradingState.ACTIVE:
            log.warning(
                "journal drained and writable: its reducing-only cleared; trading state %s -> %s (imposed: %s)",
                before.name,
                self.risk.state.name,
                self.risk.control.describe(),
            )
        else:
            lost = f"; store lost: {j.store_lost}" if j.store_lost else ""
            log.error(
                "journal not writable (%d record(s) held%s): trading state %s -> %s",
                j.backlog,
                lost,
                before.name,
                self.risk.state.name,
            )

    def _mark_store_loss(self) -> None:
        # Queue the account as it stands: the shutdown puts it in the fallback, so the next start sees
        # where the store's history broke even if nothing else was journaled after the loss.
        self._loss_marked = True
        try:
            self.journal.put_nowait(PositionRecord.from_account(time.time_ns(), self.risk.account))
        except (JournalOverflow, RuntimeError) as exc:
            log.error("journal store lost and its marker not queued (%s): check the next start's journal", exc)

    def _export_gauges(self) -> None:
        m, acc, st = self.metrics, self.risk.account, self.state
        m.position.set(acc.position)
        m.realized_pnl.set(acc.realized_pnl - acc.fees_paid)
        m.unrealized_pnl.set(acc.unrealized_pnl)
        m.drawdown.set(acc.drawdown)
        m.trading_state.set(self.risk.state)
        m.book_valid.set(1 if st.is_valid and self.feed.is_synced else 0)
        m.journal_writable.set(1 if self.journal.is_writable else 0)
        if self._book_recv_ns > 0:  # receive time, not the exchange's clock (which differs from ours)
            m.set_book_age_ns(max(0, time.time_ns() - self._book_recv_ns))
        fs = self.feed.stats
        self._count(m.journal_errors, "journal_errors", self.journal.errors)
        self._count(m.reconnects, "reconnects", fs.reconnects)
        if self.prepared is not None:
            self._count(m.decisions_prepared, "prepared", self.prepared.hits)
        self._count(m.resyncs, "resyncs", fs.resyncs)
        self._count(m.snapshot_requests, "snapshot_requests", fs.snapshot_requests)
        self._count(m.snapshot_request_weight, "request_weight", fs.request_weight)
        for reason, count in fs.disconnects.items():
            self._count(m.feed_disconnects.labels(reason), f"disconnect:{reason}", count)
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
        """SIGHUP: load the model directory again and return True; if any model in it is refused
        (corrupt ``.onnx``, a card without its ``.onnx``, another instrument, features or grid),
        keep the running models, log one line naming the file, count it
        (``scalper_model_reloads_refused_total``) and return False."""
        try:
            models = self._load_models(Path(self.cfg.daemon.model_dir))
        except (ModelCardMismatch, OSError, ValueError) as exc:
            self.metrics.model_reloads_refused.inc()
            log.error("model reload refused, keeping the running models: %s", exc)
            return False
        self.models = models
        self.core.models = models
        if self.prepared is not None:
            self.prepared.resume()
        self._publish_model_info(models)
        log.info("models reloaded: horizons %s", [p.card.horizon_s for p in models.predictors])
        return True

    def _publish_model_info(self, models: ModelSet) -> None:
        version = ",".join(p.card.data_sha256[:12] for p in models.predictors)
        self.metrics.set_model(version, [p.card.horizon_s for p in models.predictors])

    def on_operator_signal(self, state: TradingState) -> None:
        """SIGUSR1 (``HALTED``) / SIGUSR2 (``REDUCING_ONLY``): the operator slot becomes at least
        ``state`` (a signal never loosens it), journaled so that a restart keeps it."""
        before = self.risk.state
        self.risk.impose(Source.OPERATOR, state)
        try:
            self.journal.put_nowait(OperatorRecord(time.time_ns(), OperatorAction.TIGHTEN, state, "signal"))
        except (JournalOverflow, RuntimeError) as exc:  # applied anyway: it only tightens
            log.error("operator signal not journaled (%s): a restart will not remember it", exc)
        log.warning(
            "operator signal: %s requested; trading state %s -> %s (imposed: %s)",
            state.name,
            before.name,
            self.risk.state.name,
            self.risk.control.describe(),
        )

    async def _sleep(self, seconds: float) -> None:
        try:
            await asyncio.wait_for(self.stop_event.wait(), timeout=seconds)
        except TimeoutError:
            pass

    def _serve_metrics(self) -> tuple:
        """Bind and serve ``/metrics``; return (server, port). Logs a warning when other hosts can reach it.

        Raises
        ------
        StartupError
            If the address cannot be bound (port in use, unknown host).
        """
        d = self.cfg.daemon
        try:
            server, port = serve(self.metrics, d.metrics_host, d.metrics_port)
        except OSError as exc:
            raise StartupError(
                f"metrics endpoint {d.metrics_host}:{d.metrics_port} (daemon.metrics_host, daemon.metrics_port): {exc}"
            ) from exc
        if not is_loopback(d.metrics_host):
            log.warning(
                "metrics endpoint %s:%d is open to other hosts (daemon.metrics_public = true): "
                "it shows positions and PnL",
                d.metrics_host,
                port,
            )
        return server, port

    async def _start_reachable_journal(self) -> int:
        """:meth:`_start_journal`, with a store that cannot be reached or opened as a :class:`StartupError`."""
        d = self.cfg.daemon
        try:
            return await self._start_journal()
        except _STORE_UNREACHABLE as exc:
            if d.journal == "redis":
                where = f"cannot reach Redis at {d.redis_url} (daemon.redis_url; is redis-server running there?)"
            else:
                where = f"cannot open {d.journal_path} (daemon.journal_path)"
            raise StartupError(f"journal: {where}: {exc}") from exc

    async def run(self) -> int:
        """Run until SIGINT/SIGTERM; return the process exit code (0 after a graceful stop).

        Raises
        ------
        StartupError
            Before anything else if ``/metrics`` cannot be bound; then if the journal store cannot be
            reached or opened.
        JournalStartError
            If the journal contradicts itself (see :meth:`_start_journal`).
        """
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stop_event.set)
        loop.add_signal_handler(signal.SIGHUP, self.reload_models)
        loop.add_signal_handler(signal.SIGUSR1, lambda: self.on_operator_signal(TradingState.HALTED))
        loop.add_signal_handler(signal.SIGUSR2, lambda: self.on_operator_signal(TradingState.REDUCING_ONLY))
        # The port first: a port in use must refuse the start before the journal is read or replayed.
        server, port = self._serve_metrics()
        try:
            first_id = await self._start_reachable_journal()
        except BaseException:
            server.shutdown()
            server.server_close()
            raise
        self.build_core(first_id)
        self._publish_model_info(self.models)
        log.info("metrics on http://%s:%d/metrics", self.cfg.daemon.metrics_host, port)
        # Everything loaded so far (models, numba dispatchers, libraries) lives for the whole run: keep
        # it out of the collector's scans, so a full collection never walks it during a frame.
        gc.collect()
        gc.freeze()
        feed_task = asyncio.create_task(self.feed.run(self.stop_event))
        house_task = asyncio.create_task(self._housekeeping())
        # Keep-warm, when configured; otherwise a task that only waits for the stop, so the shutdown is one shape.
        warm = self.prepared.keep_warm(self.stop_event) if self.prepared is not None else self.stop_event.wait()
        warm_task = asyncio.create_task(warm)
        await self.stop_event.wait()
        await self._shutdown(feed_task, house_task, warm_task)
        server.shutdown()
        server.server_close()
        return 0

    async def _shutdown(self, feed_task: asyncio.Task, house_task: asyncio.Task, warm_task: asyncio.Task) -> None:
        # Not journaled: a stop is not an operator halt, and the next start trades again.
        self.risk.impose(Source.OPERATOR, TradingState.REDUCING_ONLY)
        # Held orders never reached the venue: their intents stay unsettled and recovery reports them.
        # So only the paper venue's orders are canceled (cancelling a held one would journal it CANCELED).
        event_now = int(self.state.ist[I_LAST_EVENT_TS])
        for order in self.venue.venue.open_orders():
            self.venue.cancel(order.order_id, event_now)
        # One budget for the whole stop; what the journal store cannot take in it goes to the fallback.
        deadline = time.monotonic() + self.cfg.daemon.shutdown_timeout_s

        def left() -> float:
            return max(0.1, deadline - time.monotonic())

        for task in (feed_task, house_task, warm_task):
            await _stop(task, left())
        self._export_gauges()
        spilled = await self.journal.close(timeout_s=left())
        await _stop(asyncio.ensure_future(self.journal.backend.close()), 1.0)
        log.info(
            "stopped: position %s, journal %s",
            self.risk.account.position,
            "flushed" if not spilled else f"flushed, {spilled} record(s) in the fallback",
        )


def _nothing() -> None:
    pass


class _FrameDecisions:
    # The core's Decisions on the frame path: every event of a frame has the frame's receive time.
    skips_inert: ClassVar[bool] = False

    def __init__(self, daemon: Daemon) -> None:
        self.daemon = daemon
        self.feat = daemon.state.feat
        self.recv_ns = 0  # the receive time of the frame being run (ns since the epoch)

    def decide(self, g_ns: int, i: int) -> None:
        self.daemon._decide_step(g_ns, self.feat, self.recv_ns)

    def on_invalid(self) -> None:
        self.daemon.feed.invalidate()


class _EventDecisions(_FrameDecisions):
    # The core's Decisions on the general path: each event has its own receive time.
    def __init__(self, daemon: Daemon) -> None:
        super().__init__(daemon)
        self.recv = np.zeros(0, dtype=np.int64)  # the receive times of the events being run (ns)

    def decide(self, g_ns: int, i: int) -> None:
        self.daemon._decide_step(g_ns, self.feat, int(self.recv[i]))


async def _stop(task: asyncio.Future, timeout_s: float) -> None:
    # Give a task its time to finish, then cancel it: a stop must never hang on a dead peer.
    try:
        await asyncio.wait_for(task, timeout_s)
    except TimeoutError:
        log.warning(
            "shutdown: %s did not finish in %.1f s; cancelled", getattr(task, "get_name", lambda: "a task")(), timeout_s
        )
