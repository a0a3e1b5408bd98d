"""Live Binance feed: websocket diff depth + trades, REST snapshot, sequencing and resync, forever.

One :class:`BinanceFeed` keeps one symbol's book in sync and hands schema-v1 events to a sink after
every websocket frame. It never raises out of :meth:`BinanceFeed.run` for bad data or a broken
connection: malformed frames are counted by reason and skipped; a sequence gap, a crossed book or a
snapshot that cannot be placed marks the book invalid (a KIND_CLEAR event tells the consumer to
stop trading) and starts a resync; a dropped connection is reopened, resubscribed and resynced.
Retries wait a capped exponential backoff. Nothing is applied to an invalid book.
"""

from __future__ import annotations

import asyncio
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol

import numpy as np
import websockets
from websockets.asyncio.client import connect

from scalper.ingest.binance.fastdepth import H_EVENT_MS, H_TRANSACTION_MS
from scalper.ingest.binance.localbook import LocalBook
from scalper.ingest.binance.messages import BookTicker, DepthSnapshot, DepthUpdate, Market, Trade
from scalper.ingest.binance.normalise import EventBuffer, event_time_ns
from scalper.ingest.binance.parse import BinanceParseError, parse_message
from scalper.ingest.binance.sequencer import BinanceOrderBookSequencer, SyncReason, SyncState

REST_DEPTH_PATH = {Market.SPOT: "/api/v3/depth", Market.USDM: "/fapi/v1/depth", Market.COINM: "/dapi/v1/depth"}
# Spot pushes diff depth at most every 100 ms; futures offer the unthrottled 0 ms stream.
DEPTH_STREAM = {Market.SPOT: "depth@100ms", Market.USDM: "depth@0ms", Market.COINM: "depth@0ms"}

Sink = Callable[[dict[str, np.ndarray]], None]


class HotPath(Protocol):
    """A consumer's own path for the depthUpdate frames that continue the synced book.

    ``take(raw, ids, now)`` scans the frame and, when it is a depthUpdate that continues the book
    (:func:`~scalper.ingest.binance.sequencer.continue_ids` on the sequencer's ``ids``), consumes it
    and returns its number of book events; otherwise it changes nothing and returns a negative number,
    and the frame takes the general path. ``header`` then holds the frame's ids and times
    (:mod:`~scalper.ingest.binance.fastdepth` slots). :class:`~scalper.ingest.binance.fastdepth.DepthFrameParser`
    does the scan; the daemon's path (``engine/framepath.py``) also applies the events in the same numba call.
    """

    header: np.ndarray

    def take(self, raw: bytes, ids: np.ndarray, now: int) -> int: ...


@dataclass
class Backoff:
    """Capped exponential backoff: ``initial_s``, doubling up to ``max_s`` seconds; reset after success."""

    initial_s: float = 0.1
    max_s: float = 10.0
    _next: float = 0.0

    def next_delay(self) -> float:
        """Return the delay to wait now (s) and double the next one, up to the cap."""
        delay = self._next
        self._next = min(self.max_s, max(self.initial_s, 2.0 * self._next))
        return delay

    def reset(self) -> None:
        self._next = 0.0


@dataclass
class FeedStats:
    """Counters of one feed since start (the daemon exports them as Prometheus metrics)."""

    frames: int = 0
    malformed: Counter = field(default_factory=Counter)
    ignored: int = 0
    diffs_applied: int = 0
    trades: int = 0
    snapshots: int = 0
    snapshot_errors: int = 0
    connects: int = 0
    reconnects: int = 0
    resyncs: int = 0
    invalidations: Counter = field(default_factory=Counter)
    book_ticker_matches: int = 0
    book_ticker_mismatches: int = 0


def _http_get(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:  # noqa: S310 (URL is the configured venue)
        return resp.read()


class BinanceFeed:
    """Keep one Binance symbol's L2 book in sync over websocket + REST and emit tick events.

    Parameters
    ----------
    market : Market
        Spot, USD-M or COIN-M: selects the stream names, the REST path and the sequencing rules.
    symbol : str
        Venue symbol, e.g. ``"BTCUSDT"``.
    tick_size : float
        Price increment, quote currency (crossed-book checks run in ticks).
    ws_url, rest_url : str
        Base URLs, e.g. ``wss://fstream.binance.com`` and ``https://fapi.binance.com``, or a local
        replay server's.
    sink : callable
        Called with the new schema-v1 event columns (numpy views, valid only during the call) after
        each frame that produced events.
    depth_limit : int
        Levels requested in the REST snapshot.
    backoff : Backoff
        Delay before reconnecting and before re-requesting a snapshot after a failed resync.
    clock : callable
        Local receive time source, ns since the epoch (``ts_recv``).
    check_book : bool
        Keep a book here too, to detect a crossed book and compare bookTickers. A consumer that
        applies the events to its own book (the daemon's kernel) and calls :meth:`invalidate` when
        that book crosses passes False, so each level is applied once, not twice.
    hot_path : HotPath, optional
        For such a consumer (only with ``check_book=False``): every depthUpdate frame that continues
        the synced book goes to ``hot_path.take`` (events with prices in ticks, no Python objects per
        level). Every other frame, and any frame the hot path leaves alone, takes the general path
        to ``sink``; events never overtake each other.

    Raises
    ------
    ValueError
        If ``hot_path`` is given with ``check_book=True``.
    """

    def __init__(
        self,
        market: Market,
        symbol: str,
        tick_size: float,
        ws_url: str,
        rest_url: str,
        sink: Sink,
        depth_limit: int = 1000,
        backoff: Backoff | None = None,
        snapshot_timeout_s: float = 10.0,
        clock: Callable[[], int] = time.time_ns,
        check_book: bool = True,
        hot_path: HotPath | None = None,
    ) -> None:
        if hot_path is not None and check_book:
            raise ValueError("hot_path bypasses the feed's check book: pass check_book=False with it")
        self.market = Market(market)
        self.symbol = symbol.upper()
        self.ws_url = ws_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self.sink = sink
        self.depth_limit = depth_limit
        self.backoff = backoff or Backoff()
        self.snapshot_timeout_s = snapshot_timeout_s
        self.clock = clock
        self.sequencer = BinanceOrderBookSequencer(self.market)
        self.book = LocalBook(tick_size) if check_book else None
        self.events = EventBuffer(4096)
        self._fast = hot_path
        self.stats = FeedStats()
        self._snapshot_task: asyncio.Task | None = None
        self._resync_backoff = Backoff(self.backoff.initial_s, self.backoff.max_s)
        self._book_live = False
        self._ws = None
        self._tickers: deque[BookTicker] = deque(maxlen=256)
        self._last_event_ns = 0  # latest exchange time seen: stamps clears and time-less snapshots

    @property
    def streams(self) -> list[str]:
        s = self.symbol.lower()
        return [f"{s}@{DEPTH_STREAM[self.market]}", f"{s}@trade", f"{s}@bookTicker"]

    @property
    def is_synced(self) -> bool:
        """True while the local book follows the venue (trade only then)."""
        return self.sequencer.state is SyncState.SYNCED

    # -- public control ---------------------------------------------------------------------
    def invalidate(self, reason: SyncReason = SyncReason.CROSSED) -> None:
        """Mark the book invalid from outside (the engine found it crossed) and resync."""
        self.sequencer.invalidate(reason)
        self._go_invalid(reason, self.clock())
        self._flush()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Connect, sync and stream until ``stop`` is set; reconnect after any connection loss."""
        stop = stop or asyncio.Event()
        url = f"{self.ws_url}/stream?streams={'/'.join(self.streams)}"
        while not stop.is_set():
            try:
                # close_timeout: a server that does not answer our close frame (busy, or blocked writing
                # to us) must not hold a shutdown longer than 2 s; the default 10 s equals the daemon's
                # whole wait for the feed.
                async with connect(url, open_timeout=10, close_timeout=2, max_size=None, compression=None) as ws:
                    self._ws = ws
                    self.stats.connects += 1
                    self.backoff.reset()
                    self._start_resync()
                    await self._session(ws, stop)
            except (OSError, asyncio.TimeoutError, websockets.WebSocketException) as exc:
                del exc  # the reason is in the reconnect count; the loop must outlive any network error
            finally:
                self._ws = None
            if stop.is_set():
                break
            self.stats.reconnects += 1
            self._cancel_snapshot()
            self._mark_invalid(None, self.clock())
            self._flush()
            await self._sleep_or_stop(self.backoff.next_delay(), stop)
        self._cancel_snapshot()

    async def stop_connection(self) -> None:
        """Close the current websocket (a reconnect follows while :meth:`run` is running)."""
        if self._ws is not None:
            await self._ws.close()

    # -- per frame ----------------------------------------------------------------------------
    async def _session(self, ws, stop: asyncio.Event) -> None:
        stop_wait = asyncio.ensure_future(stop.wait())
        try:
            while True:
                # decode=False: text frames arrive as bytes, which orjson and the scanner read without a copy.
                recv = asyncio.ensure_future(ws.recv(decode=False))
                waits = {recv, stop_wait}
                if self._snapshot_task is not None:
                    waits.add(self._snapshot_task)
                done, _ = await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
                if self._snapshot_task is not None and self._snapshot_task in done:
                    self._on_snapshot_done(self._snapshot_task)
                if recv in done:
                    self._on_frame(recv.result(), self.clock())
                else:
                    recv.cancel()
                self._flush()
                if stop_wait in done:
                    return
        finally:
            stop_wait.cancel()

    def _on_frame(self, raw: bytes | str, now: int) -> None:
        self.stats.frames += 1
        if self._fast is not None and type(raw) is bytes and self._fast_diff(raw, now):
            return
        try:
            msg = parse_message(raw)
        except BinanceParseError as exc:
            self.stats.malformed[exc.reason] += 1
            return
        if msg is None:
            self.stats.ignored += 1
        elif isinstance(msg, DepthUpdate):
            self._on_diff(msg, now)
        elif isinstance(msg, Trade):
            self.stats.trades += 1
            self.events.append_trade(msg, now)
            self._last_event_ns = max(self._last_event_ns, msg.trade_time_ms * 1_000_000)
        elif isinstance(msg, BookTicker):
            # A ticker usually comes before the diff that ends at its id: hold it until then.
            if self.book is not None and self.is_synced and len(self._tickers) < self._tickers.maxlen:
                self._tickers.append(msg)
        else:
            self.stats.malformed["unexpected_snapshot"] += 1

    def _fast_diff(self, raw: bytes, now: int) -> bool:
        # True when the frame was a depthUpdate continuing the synced book and the hot path took it.
        self._flush()  # anything buffered before this frame goes first
        fast = self._fast
        if fast.take(raw, self.sequencer.ids, now) < 0:
            return False
        self.stats.diffs_applied += 1
        h = fast.header
        t = int(h[H_TRANSACTION_MS] if h[H_TRANSACTION_MS] >= 0 else h[H_EVENT_MS]) * 1_000_000
        if t > self._last_event_ns:
            self._last_event_ns = t
        return True

    def _on_diff(self, diff: DepthUpdate, now: int) -> None:
        ready = self.sequencer.on_diff(diff)
        if self.sequencer.state is SyncState.INVALID:
            self._go_invalid(self.sequencer.invalid_reason, now)
            return
        self._apply(ready, now)

    def _apply(self, diffs: list[DepthUpdate], now: int) -> None:
        for d in diffs:
            self.events.append_diff(d, now)
            self._last_event_ns = max(self._last_event_ns, event_time_ns(d))
            self.stats.diffs_applied += 1
            if self.book is None:
                continue
            self.book.apply_diff(d)
            if self.book.is_crossed():
                self.sequencer.invalidate(SyncReason.CROSSED)
                self._go_invalid(SyncReason.CROSSED, now)
                return
            self._check_tickers(d.final_update_id)

    def _check_tickers(self, u: int) -> None:
        # Compare the book with the tickers whose id this diff reached; ids inside it cannot be checked.
        tickers = self._tickers
        while tickers and tickers[0].update_id <= u:
            t = tickers.popleft()
            if t.update_id == u:
                if self.book.matches(t):
                    self.stats.book_ticker_matches += 1
                else:
                    self.stats.book_ticker_mismatches += 1

    # -- resync -------------------------------------------------------------------------------
    def _mark_invalid(self, reason: SyncReason | None, now: int) -> None:
        self._tickers.clear()
        # Tell the consumer first: a clear with no snapshot after it yet leaves its book unusable.
        if self._book_live:
            # Exchange time, not the local clock: a consumer's event clock must not jump.
            self.events.append_clear(self._last_event_ns or now, now)
            self._book_live = False
        if self.book is not None:
            self.book.clear()
        if reason is not None:
            self.stats.invalidations[reason] += 1

    def _go_invalid(self, reason: SyncReason | None, now: int) -> None:
        self._mark_invalid(reason, now)
        self._start_resync(delay_s=self._resync_backoff.next_delay())

    def _start_resync(self, delay_s: float = 0.0) -> None:
        self.stats.resyncs += 1
        self.sequencer.reset()
        self._cancel_snapshot()
        self._snapshot_task = asyncio.ensure_future(self._fetch_snapshot(delay_s))

    def _cancel_snapshot(self) -> None:
        if self._snapshot_task is not None and not self._snapshot_task.done():
            self._snapshot_task.cancel()
        self._snapshot_task = None

    async def _fetch_snapshot(self, delay_s: float) -> tuple[DepthSnapshot, int]:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        url = f"{self.rest_url}{REST_DEPTH_PATH[self.market]}?symbol={self.symbol}&limit={self.depth_limit}"
        body = await asyncio.wait_for(asyncio.to_thread(_http_get, url, self.snapshot_timeout_s), self.snapshot_timeout_s + 1)
        msg = parse_message(body)
        if not isinstance(msg, DepthSnapshot):
            raise ValueError(f"{url}: the REST reply is not a depth snapshot")
        return msg, self.clock()

    def _on_snapshot_done(self, task: asyncio.Task) -> None:
        self._snapshot_task = None
        if task.cancelled():
            return
        exc = task.exception()
        if exc is not None:
            self.stats.snapshot_errors += 1
            self._start_resync(delay_s=self._resync_backoff.next_delay())
            return
        self.place_snapshot(*task.result())

    def place_snapshot(self, snap: DepthSnapshot, now: int) -> None:
        """Set the book to a REST snapshot and apply the diffs buffered since (the resync task's end)."""
        self.stats.snapshots += 1
        ready = self.sequencer.on_snapshot(snap)
        if self.sequencer.state is SyncState.INVALID:
            self._go_invalid(self.sequencer.invalid_reason, now)
            return
        if self.book is not None:
            self.book.apply_snapshot(snap)
        ts_event = event_time_ns(snap) or self._last_event_ns or now
        self.events.append_snapshot(snap, ts_event, now)
        self._book_live = True
        self._apply(ready, now)
        if self.sequencer.state is SyncState.SYNCED:
            self._resync_backoff.reset()

    # -- plumbing -----------------------------------------------------------------------------
    def _flush(self) -> None:
        if len(self.events):
            self.sink(self.events.columns())
            self.events.truncate(0)

    @staticmethod
    async def _sleep_or_stop(delay_s: float, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay_s)
        except asyncio.TimeoutError:
            pass
