"""The journal writer: ordered, batched, off-the-hot-path writes that survive backend outages."""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from collections import deque
from collections.abc import Callable

from scalper.exec.journal import JournalBackend, JournalEntry, JournalOverflow, JournalStoreLost, Record
from scalper.exec.journal_mark import DurableMark

log = logging.getLogger(__name__)


class JournalWriter:
    """Write journal records to a backend in order, off the hot path, surviving backend outages.

    The hot path calls :meth:`put_nowait` (no I/O: a seq is assigned and the record queued). A task
    writes queued records in order, in batches, and keeps each one until the backend reports it
    durable. When the backend fails (Redis down, disk full), records stay queued, the error is
    counted and logged, and the batch is retried with capped exponential backoff; before a retry
    the writer asks the backend what it already holds, so an ambiguous failure (the write landed but
    the reply was lost) never duplicates a record. :attr:`is_writable` tells the engine whether to
    keep opening positions.

    Health: when the writer has had nothing to write for ``health_interval_s`` it asks the backend
    for its last seq (a PING that also reads the stream), so a dead store is noticed within that
    interval rather than at the next write. A store that holds less than was made durable in it
    (Redis restarted empty) is *lost*: :attr:`store_lost` says so, nothing more is written to it,
    records stay queued and :meth:`close` puts them in the file fallback.

    Use it from the event loop's thread only. Call :meth:`start` first and :meth:`close` last.

    Parameters
    ----------
    backend : JournalBackend
        Where records go; the writer does not close it.
    max_batch : int
        Most records per backend write.
    max_backlog : int
        :attr:`is_writable` is False while more records than this are queued.
    max_buffered : int
        Hard cap on queued records; :meth:`put_nowait` refuses more (counted in :attr:`overflow`).
    retry_initial_s, retry_max_s : float
        First and largest wait between retries after a backend error, seconds.
    on_write : callable, optional
        Called with the seconds each successful backend write (plus sync, if one was needed) took,
        for a latency histogram. It runs on the writer task, so it must be quick.
    health_interval_s : float
        Longest time the backend goes unchecked while there is nothing to write, seconds.
    fallback : JournalBackend, optional
        Where :meth:`close` puts the records the backend could not take (a local
        :class:`~scalper.exec.journal_file.FileJournal`); recovery replays them into the store
        (:func:`scalper.exec.recovery.replay_fallback`).
    on_health : callable, optional
        Called with no argument when the backend starts or stops failing, or is found lost.
    mark : DurableMark, optional
        Kept at the backend's durable seq, so a later start can refuse a store that lost records
        (:mod:`scalper.exec.journal_mark`).

    Attributes
    ----------
    errors : int
        Backend errors seen.
    retries : int
        Retries made after an error.
    overflow : int
        Records refused because the buffer was full.
    written : int
        Records made durable by this writer.
    last_error : BaseException or None
        The latest backend error.
    store_lost : str or None
        Why the backend is considered lost (it holds less than was durable in it), else None.

    Raises
    ------
    ValueError
        If a size or wait is not positive or ``max_backlog`` > ``max_buffered``.
    """

    def __init__(
        self,
        backend: JournalBackend,
        *,
        max_batch: int = 1024,
        max_backlog: int = 10_000,
        max_buffered: int = 1_000_000,
        retry_initial_s: float = 0.01,
        retry_max_s: float = 1.0,
        on_write: Callable[[float], None] | None = None,
        health_interval_s: float = 1.0,
        fallback: JournalBackend | None = None,
        on_health: Callable[[], None] | None = None,
        mark: DurableMark | None = None,
    ) -> None:
        if not (0 < max_batch and 0 < max_backlog <= max_buffered):
            raise ValueError(
                "JournalWriter needs max_batch > 0 and 0 < max_backlog <= max_buffered; got"
                f" {max_batch}, {max_backlog}, {max_buffered}"
            )
        if not (0.0 < retry_initial_s <= retry_max_s and health_interval_s > 0.0):
            raise ValueError(
                "JournalWriter needs 0 < retry_initial_s <= retry_max_s and health_interval_s > 0; got"
                f" {retry_initial_s}, {retry_max_s}, {health_interval_s}"
            )
        self.backend = backend
        self.max_batch = max_batch
        self.max_backlog = max_backlog
        self.max_buffered = max_buffered
        self.retry_initial_s = retry_initial_s
        self.retry_max_s = retry_max_s
        self.on_write = on_write
        self.health_interval_s = health_interval_s
        self.fallback = fallback
        self.on_health = on_health
        self.mark = mark
        self.store_lost: str | None = None
        self.errors = 0
        self.retries = 0
        self.overflow = 0
        self.written = 0
        self.last_error: BaseException | None = None
        self._buffer: deque[JournalEntry] = deque()  # queued, not yet durable, seqs contiguous
        self._waiters: deque[tuple[int, asyncio.Future]] = deque()
        self._wake = asyncio.Event()
        self._task: asyncio.Task | None = None
        self._accepting = False
        self._closing = False
        self._failing = False
        self._unsure = False  # after an error: ask the backend what it holds before writing again
        self._seq = 0
        self._written_seq = 0

    @property
    def last_seq(self) -> int:
        """Return the seq given to the latest queued record (the backend's last seq before any)."""
        return self._seq

    @property
    def durable_seq(self) -> int:
        """Return the highest seq the backend reports durable."""
        return self.backend.durable_seq

    @property
    def backlog(self) -> int:
        """Return how many queued records are not durable yet."""
        return len(self._buffer)

    @property
    def is_writable(self) -> bool:
        """Return True while the writer runs, the backend works, and the backlog is within bounds.

        When False the engine should open no new positions: what it does may not get journaled.
        """
        return (
            self._task is not None
            and not self._task.done()
            and not self._failing
            and self.store_lost is None
            and len(self._buffer) <= self.max_backlog
        )

    async def start(self) -> int:
        """Continue the backend's journal: seqs go on from its last one. Return that last seq.

        Raises
        ------
        RuntimeError
            If the writer was already started.
        Exception
            Whatever the backend raises when it cannot be read or synced (no writing without it).
        """
        if self._task is not None:
            raise RuntimeError("JournalWriter.start called twice")
        last = await self.backend.last_seq()
        await self.backend.sync()
        self._seq = self._written_seq = last
        self._accepting = True
        self._task = asyncio.create_task(self._run(), name="journal-writer")
        self._task.add_done_callback(self._on_stopped)
        return last

    def put_nowait(self, record: Record) -> int:
        """Queue ``record`` for writing and return its seq. No I/O; for the hot path.

        Raises
        ------
        JournalOverflow
            If :attr:`max_buffered` records are already queued; the record is not journaled.
        RuntimeError
            If the writer is not started or is closing.
        """
        if not self._accepting:
            raise RuntimeError("JournalWriter is not accepting records (not started, or closed)")
        if len(self._buffer) >= self.max_buffered:
            self.overflow += 1
            if self.overflow == 1 or self.overflow % 10_000 == 0:
                log.error("journal buffer full (%d records); %d refused", self.max_buffered, self.overflow)
            raise JournalOverflow(f"journal buffer full ({self.max_buffered} records queued)")
        self._seq += 1
        self._buffer.append(JournalEntry(self._seq, record))
        self._wake.set()
        return self._seq

    async def append_durable(self, record: Record) -> int:
        """Queue ``record`` and return its seq once it (and everything before it) is durable.

        Use it for an order intent: send the order only after this returns.

        Raises
        ------
        JournalOverflow, RuntimeError
            As :meth:`put_nowait`; RuntimeError also if the writer stops before the record is durable.
        """
        seq = self.put_nowait(record)
        await self._until_durable(seq)
        return seq

    async def flush(self) -> None:
        """Return once every record queued so far is durable.

        It waits through a backend outage; bound it with ``asyncio.wait_for`` where that matters.

        Raises
        ------
        RuntimeError
            If the writer is not running or stops first.
        """
        await self._until_durable(self._seq)

    async def close(self, timeout_s: float | None = None) -> int:
        """Flush, then stop the writer task; return how many records went to the fallback.

        Without ``timeout_s`` it waits through a backend outage, like :meth:`flush`. With it, the
        flush gets at most ``timeout_s`` seconds; whatever the backend has not made durable by then
        (or ever, once it is lost) is appended to the fallback, synced, and logged with its seq
        range and the fallback's path. Later :meth:`put_nowait` calls raise RuntimeError.

        Raises
        ------
        OSError
            If the fallback cannot be written (the records are then lost; the error says so).
        """
        if self._task is None:
            return 0
        if self.store_lost is None and not self._task.done():
            try:
                await asyncio.wait_for(self.flush(), timeout_s)
            except TimeoutError:
                pass
        self._accepting = False
        self._closing = True
        self._wake.set()
        if self._buffer and not self._task.done():
            self._task.cancel()  # an append in flight may land too: the fallback's replay skips it
        try:
            await self._task
        except asyncio.CancelledError:
            pass
        return await self._spill()

    async def _spill(self) -> int:
        rest = [e for e in self._buffer if e.seq > self.backend.durable_seq]
        if not rest:
            return 0
        span = f"{len(rest)} record(s) (seq {rest[0].seq}..{rest[-1].seq}) not written to the store"
        if self.fallback is None:
            log.error("journal: %s and no fallback is configured: they are lost", span)
            return 0
        try:
            await self.fallback.append(rest)
            await self.fallback.close()
        except OSError as exc:
            raise OSError(f"journal: {span}; writing them to the fallback failed: {exc}") from exc
        log.warning(
            "journal: %s; written to %s (the next start replays them into the store)",
            span,
            getattr(self.fallback, "path", self.fallback),
        )
        return len(rest)

    async def _until_durable(self, seq: int) -> None:
        if self.backend.durable_seq >= seq:
            return
        if self._task is None or self._task.done():
            raise RuntimeError("JournalWriter is not running; queued records are not durable")
        future = asyncio.get_running_loop().create_future()
        self._waiters.append((seq, future))
        self._wake.set()
        await future

    def _on_stopped(self, task: asyncio.Task) -> None:
        # A writer that dies must not leave append_durable callers waiting forever.
        self._accepting = False
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "journal writer died; %d records not durable",
                len(self._buffer),
                exc_info=task.exception(),
            )
        while self._waiters:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_exception(RuntimeError("JournalWriter stopped before the record was durable"))

    def _release(self) -> None:
        durable = self.backend.durable_seq
        if self.mark is not None and durable > self.mark.marked:
            try:
                self.mark.record(durable)
            except OSError:
                # Journaling goes on without it; only the check at the next start is lost.
                log.exception("journal mark %s cannot be written: no longer kept", self.mark.path)
                self.mark = None
        while self._buffer and self._buffer[0].seq <= durable:
            self._buffer.popleft()
            self.written += 1
        while self._waiters and self._waiters[0][0] <= durable:
            _, future = self._waiters.popleft()
            if not future.done():
                future.set_result(None)

    def _next_batch(self) -> list[JournalEntry]:
        if not self._buffer:
            return []
        start = max(0, self._written_seq + 1 - self._buffer[0].seq)
        return list(itertools.islice(self._buffer, start, start + self.max_batch))

    async def _step(self, batch: list[JournalEntry]) -> None:
        if self._unsure:
            stored = await self.backend.last_seq()
            if stored > self._seq:
                raise RuntimeError(f"backend holds seq {stored} beyond this writer's {self._seq}: another writer?")
            if stored < self.backend.durable_seq:
                # Released records cannot be rewritten; carrying on would leave a silent hole.
                raise JournalStoreLost(stored, self.backend.durable_seq, "the journal store")
            self._written_seq = stored
            self._unsure = False
            self._release()
            batch = self._next_batch()
        started = time.perf_counter()
        worked = bool(batch)
        if batch:
            await self.backend.append(batch)
            self._written_seq = batch[-1].seq
        # Sync when nothing more is queued behind (no batching gain left) or someone is waiting.
        if self.backend.durable_seq < self._written_seq and (
            self._written_seq == self._seq or (self._waiters and self._waiters[0][0] <= self._written_seq)
        ):
            await self.backend.sync()
            worked = True
        if worked and self.on_write is not None:
            self.on_write(time.perf_counter() - started)

    async def _run(self) -> None:
        delay = self.retry_initial_s
        while True:
            self._release()
            batch = self._next_batch()
            must_sync = self.backend.durable_seq < self._written_seq
            if self.store_lost is not None or (not batch and not must_sync and not self._unsure):
                if self._closing:
                    return
                self._wake.clear()
                try:
                    await asyncio.wait_for(self._wake.wait(), self.health_interval_s)
                except TimeoutError:
                    self._unsure = True  # idle: ask the store what it holds (dead? restarted empty?)
                continue
            try:
                await self._step(batch)
            except JournalStoreLost as exc:
                self._lost(exc)
                continue
            # Whatever a store raises (a driver bug, an unexpected reply) must not end the writer task: the
            # error is counted, logged once per failing spell and the batch retried with backoff.
            except Exception as exc:  # noqa: BLE001 - see the comment above
                self.errors += 1
                self.last_error = exc
                self._unsure = True
                if not self._failing:
                    self._failing = True
                    log.warning(
                        "journal backend failing (%s: %s); %d records held",
                        type(exc).__name__,
                        exc,
                        len(self._buffer),
                    )
                    self._health_changed()
                await asyncio.sleep(delay)
                delay = min(2.0 * delay, self.retry_max_s)
                self.retries += 1
                continue
            if self._failing:
                self._failing = False
                self._release()
                log.warning(
                    "journal backend writable again after %d errors; %d records held",
                    self.errors,
                    len(self._buffer),
                )
                self._health_changed()
            delay = self.retry_initial_s

    def _lost(self, exc: JournalStoreLost) -> None:
        self.errors += 1
        self.last_error = exc
        self.store_lost = str(exc)
        log.error(
            "journal store lost records: %s; nothing more is written to it, %d record(s) held for the"
            " fallback; trading stays reducing-only until a restart (README, the daemon: recovery)",
            exc,
            len(self._buffer),
        )
        self._health_changed()

    def _health_changed(self) -> None:
        if self.on_health is not None:
            self.on_health()
