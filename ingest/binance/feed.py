"""Live Binance feed: websocket diff depth + trades, REST snapshot, sequencing and resync, forever.

One :class:`BinanceFeed` keeps one symbol's book in sync and hands schema-v1 events to a sink after
every websocket frame. It never raises out of :meth:`BinanceFeed.run` for bad data or a broken
connection: malformed frames are counted by reason and skipped; a sequence gap, a crossed book or a
snapshot that cannot be placed marks the book invalid (a KIND_CLEAR event tells the consumer to
stop trading) and starts a resync; a dropped connection is reopened, resubscribed and resynced.
Retries wait a capped exponential backoff that grows while they fail and resets only once the book
(or the connection) has stayed valid for ``backoff_reset_s``. Nothing is applied to an invalid book.
Reconnects, resyncs and rejected frames are logged with their reason, at most one line per reason
every ``log_interval_s`` (:class:`~scalper.ingest.binance.ratelog.ReasonLog`).
"""

from __future__ import annotations

import asyncio
import logging
import time
import urllib.request
from collections import Counter, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Protocol, cast

import numpy as np
import websockets
from websockets.asyncio.client import ClientConnection, connect
from websockets.frames import CloseCode

from scalper.ingest.binance.config import FeedConfig
from scalper.ingest.binance.fastdepth import H_BAND_HI, H_BAND_LO, H_EVENT_MS, H_TRANSACTION_MS
from scalper.ingest.binance.levels import (
    LEVEL_CODES,
    LEVEL_OK,
    NO_BAND,
    LevelReason,
    first_bad_level,
    mid_band,
    price_code,
)
from scalper.ingest.binance.localbook import LocalBook
from scalper.ingest.binance.messages import BookTicker, DepthSnapshot, DepthUpdate, Market, Trade
from scalper.ingest.binance.normalise import EventBuffer, event_time_ns
from scalper.ingest.binance.parse import BinanceParseError, parse_message
from scalper.ingest.binance.ratelog import ReasonLog
from scalper.ingest.binance.sequencer import BinanceOrderBookSequencer, SyncReason, SyncState

REST_DEPTH_PATH = {Market.SPOT: "/api/v3/depth", Market.USDM: "/fapi/v1/depth", Market.COINM: "/dapi/v1/depth"}
# Spot pushes diff depth at most every 100 ms; futures offer the unthrottled 0 ms stream.
# Tickers held until the diff that reaches their update id (a few frames at most in practice).
MAX_HELD_TICKERS = 256

DEPTH_STREAM = {Market.SPOT: "depth@100ms", Market.USDM: "depth@0ms", Market.COINM: "depth@0ms"}

Sink = Callable[[dict[str, np.ndarray]], None]

log = logging.getLogger(__name__)


def depth_request_weight(market: Market, limit: int) -> int:
    """Return the request weight Binance charges for one REST depth snapshot of ``limit`` levels.

    Binance documents the weight by ``limit``: spot ``GET /api/v3/depth`` 5 up to 100 levels, 25 up
    to 500, 50 up to 1000, 250 up to 5000 (Spot API, "Order book"); USD-M ``GET /fapi/v1/depth`` and
    COIN-M ``GET /dapi/v1/depth`` 2 up to 50 levels, 5 for 100, 10 for 500, 20 for 1000
    (Derivatives docs, "Order Book"). The venue bans an IP whose weight per minute exceeds its
    limit (2,400 on USD-M futures, 6,000 on spot at the time of writing).
    """
    table = ((100, 5), (500, 25), (1000, 50)) if market is Market.SPOT else ((50, 2), (100, 5), (500, 10))
    for most, weight in table:
        if limit <= most:
            return weight
    return 250 if market is Market.SPOT else 20


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
    """Counters of one feed since start (the daemon exports them as Prometheus metrics).

    ``malformed`` counts rejected frames by reason (a :class:`ParseReason` or a :class:`LevelReason`);
    ``snapshots`` the REST snapshots placed, ``snapshot_requests`` those requested and
    ``request_weight`` their venue request weight (:func:`depth_request_weight`); ``disconnects``
    the connection losses by reason (``frame_too_large``: a frame over ``max_frame_bytes`` was refused).
    """

    frames: int = 0
    malformed: Counter = field(default_factory=Counter)
    ignored: int = 0
    diffs_applied: int = 0
    trades: int = 0
    snapshots: int = 0
    snapshot_requests: int = 0
    request_weight: int = 0
    snapshot_errors: int = 0
    connects: int = 0
    reconnects: int = 0
    disconnects: Counter = field(default_factory=Counter)
    resyncs: int = 0
    invalidations: Counter = field(default_factory=Counter)
    book_ticker_matches: int = 0
    book_ticker_mismatches: int = 0


def disconnect_reason(exc: BaseException) -> str:
    """Name why a websocket session ended: ``frame_too_large`` (we refused a frame over the size
    limit, close code 1009), ``closed_by_venue`` (the peer sent a close frame), ``connection_lost``
    (no close handshake), ``handshake`` (the upgrade was refused), ``timeout`` or ``network``."""
    if isinstance(exc, websockets.ConnectionClosed):
        if exc.sent is not None and exc.sent.code == CloseCode.MESSAGE_TOO_BIG:
            return "frame_too_large"
        return "closed_by_venue" if exc.rcvd is not None else "connection_lost"
    if isinstance(exc, websockets.InvalidHandshake):
        return "handshake"
    if isinstance(exc, asyncio.TimeoutError):
        return "timeout"
    return "network" if isinstance(exc, OSError) else "protocol"


def _http_get(url: str, timeout_s: float) -> bytes:
    with urllib.request.urlopen(url, timeout=timeout_s) as resp:
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
    backoff : Backoff, optional
        Delay before reconnecting and before re-requesting a snapshot after a failed resync
        (default: ``config``'s ``backoff_initial_s`` / ``backoff_max_s``).
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
    config : FeedConfig, optional
        Frame size limit, number checks (tick tolerance, price band), retry pacing and log rate.

    Every price and size is checked before it reaches a book (:func:`~scalper.ingest.binance.levels.check_levels`:
    finite, positive, on the tick grid, within ``config.price_band`` of the mid of the last snapshot
    placed). A message that fails is counted in ``stats.malformed`` by its
    :class:`~scalper.ingest.binance.levels.LevelReason` and never applied; a diff the sequencer had
    already taken marks the book invalid (REJECTED) and resyncs, since the book now misses it.

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
        config: FeedConfig | None = None,
    ) -> None:
        if hot_path is not None and check_book:
            raise ValueError("hot_path bypasses the feed's check book: pass check_book=False with it")
        self.market = Market(market)
        self.symbol = symbol.upper()
        self.ws_url = ws_url.rstrip("/")
        self.rest_url = rest_url.rstrip("/")
        self.sink = sink
        self.depth_limit = depth_limit
        self.config = cfg = config or FeedConfig()
        self.backoff = backoff or Backoff(cfg.backoff_initial_s, cfg.backoff_max_s)
        self.tick_size = float(tick_size)
        self.snapshot_timeout_s = snapshot_timeout_s
        self.clock = clock
        self.sequencer = BinanceOrderBookSequencer(self.market)
        self.book = LocalBook(tick_size) if check_book else None
        self.events = EventBuffer(4096)
        self._fast = hot_path
        self.stats = FeedStats()
        self._snapshot_task: asyncio.Task | None = None
        self._resync_backoff = Backoff(self.backoff.initial_s, self.backoff.max_s)
        self._valid_since: float | None = None  # monotonic s when the book last became valid
        self._diff_seen = asyncio.Event()  # a diff arrived since the last resync started
        self._set_band(NO_BAND)  # until a snapshot gives a mid: the absolute checks only
        self._log = ReasonLog(log, cfg.log_interval_s)
        self._book_live = False
        self._ws: ClientConnection | None = None
        self._tickers: deque[BookTicker] = deque(maxlen=MAX_HELD_TICKERS)
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
        self.flush()

    async def run(self, stop: asyncio.Event | None = None) -> None:
        """Connect, sync and stream until ``stop`` is set; reconnect after any connection loss."""
        stop = stop or asyncio.Event()
        url = f"{self.ws_url}/stream?streams={'/'.join(self.streams)}"
        connected_at = None
        while not stop.is_set():
            try:
                # close_timeout: a server that does not answer our close frame (busy, or blocked writing
                # to us) must not hold a shutdown longer than 2 s; the default 10 s equals the daemon's
                # whole wait for the feed.
                # max_size: the library refuses a larger frame by closing the connection (1009), so a
                # hostile or broken peer cannot make us buffer and parse hundreds of MB.
                async with connect(
                    url, open_timeout=10, close_timeout=2, max_size=self.config.max_frame_bytes, compression=None
                ) as ws:
                    self._ws = ws
                    self.stats.connects += 1
                    connected_at = time.monotonic()
                    self._start_resync()
                    await self._session(ws, stop)  # returns only once stop is set
            except (TimeoutError, OSError, websockets.WebSocketException) as exc:
                reason = disconnect_reason(exc)  # the loop must outlive any network error
            finally:
                self._ws = None
            if stop.is_set():
                break
            self.stats.reconnects += 1
            self.stats.disconnects[reason] += 1
            # A connection that held for a while resets the delay; one that keeps failing backs off.
            if connected_at is not None and time.monotonic() - connected_at >= self.config.backoff_reset_s:
                self.backoff.reset()
            connected_at = None
            self._cancel_snapshot()
            self._mark_invalid(None, self.clock())
            self.flush()
            delay = self.backoff.next_delay()
            self._log.warning(
                f"disconnect:{reason}",
                "%s feed: connection lost (%s), reconnecting in %.2f s",
                self.symbol,
                reason,
                delay,
            )
            await self._sleep_or_stop(delay, stop)
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
                self.flush()
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
            self._reject(exc.reason, str(exc))
            return
        if msg is None:
            self.stats.ignored += 1
        elif isinstance(msg, DepthUpdate):
            self._on_diff(msg, now)
        elif isinstance(msg, Trade):
            code = price_code(msg.price, self.tick_size, self.config.tick_tolerance, *self._band)
            if code != LEVEL_OK:
                self._reject(cast(LevelReason, LEVEL_CODES[code]), f"trade {msg.trade_id} price {msg.price!r}")
                return
            self.stats.trades += 1
            self.events.append_trade(msg, now)
            self._last_event_ns = max(self._last_event_ns, msg.trade_time_ms * 1_000_000)
        elif isinstance(msg, BookTicker):
            # A ticker usually comes before the diff that ends at its id: hold it until then.
            if self.book is not None and self.is_synced and len(self._tickers) < MAX_HELD_TICKERS:
                self._tickers.append(msg)
        else:
            self.stats.malformed["unexpected_snapshot"] += 1

    def _reject(self, reason: str, detail: str) -> None:
        # A frame refused whole: counted by reason, logged at most once per reason per interval.
        self.stats.malformed[reason] += 1
        self._log.warning(f"rejected:{reason}", "%s feed: frame rejected (%s): %s", self.symbol, reason, detail[:200])

    def _fast_diff(self, raw: bytes, now: int) -> bool:
        # True when the frame was a depthUpdate continuing the synced book and the hot path took it.
        self.flush()  # anything buffered before this frame goes first
        fast: HotPath = self._fast  # type: ignore[assignment]  # the caller checked it is set
        if fast.take(raw, self.sequencer.ids, now) < 0:
            return False
        self.stats.diffs_applied += 1
        h = fast.header
        t = int(h[H_TRANSACTION_MS] if h[H_TRANSACTION_MS] >= 0 else h[H_EVENT_MS]) * 1_000_000
        if t > self._last_event_ns:
            self._last_event_ns = t
        return True

    def _on_diff(self, diff: DepthUpdate, now: int) -> None:
        self._diff_seen.set()
        ready = self.sequencer.on_diff(diff)
        if self.sequencer.state is SyncState.INVALID:
            self._go_invalid(self.sequencer.invalid_reason, now)
            return
        self._apply(ready, now)

    def _apply(self, diffs: list[DepthUpdate], now: int) -> None:
        for d in diffs:
            bad = self._bad_levels(d.bids, d.asks)
            if bad is not None:
                # The sequencer has taken d: without its levels the book is wrong from here on.
                self._reject(bad[0], f"depthUpdate U={d.first_update_id} u={d.final_update_id}: {bad[1]}")
                self.sequencer.invalidate(SyncReason.REJECTED)
                self._go_invalid(SyncReason.REJECTED, now)
                return
            self.events.append_diff(d, now)
            # A depthUpdate always carries E (parse_message refuses one without), so the time is an int.
            self._last_event_ns = max(self._last_event_ns, event_time_ns(d))  # type: ignore[type-var, assignment]
            self.stats.diffs_applied += 1
            if self.book is None:
                continue
            self.book.apply_diff(d)
            if self.book.is_crossed():
                self.sequencer.invalidate(SyncReason.CROSSED)
                self._go_invalid(SyncReason.CROSSED, now)
                return
            self._check_tickers(d.final_update_id)

    def _bad_levels(
        self,
        bids: np.ndarray,
        asks: np.ndarray,
        band: tuple[int, int] | None = None,
        names: tuple[str, str] = ("b", "a"),
    ) -> tuple[str, str] | None:
        # (reason, which level) of the first price or size no book may hold, else None.
        return first_bad_level(
            bids, asks, self.tick_size, self.config.tick_tolerance, self._band if band is None else band, names
        )

    def _set_band(self, band: tuple[int, int]) -> None:
        # The scanner reads the band from its header: it declines a frame with a level outside it,
        # which the general path then rejects by reason.
        self._band = band
        if self._fast is not None:
            self._fast.header[H_BAND_LO], self._fast.header[H_BAND_HI] = band

    def _check_tickers(self, u: int) -> None:
        # Compare the book with the tickers whose id this diff reached; ids inside it cannot be checked.
        tickers = self._tickers
        while tickers and tickers[0].update_id <= u:
            t = tickers.popleft()
            if t.update_id == u:
                if self.book.matches(t):  # type: ignore[union-attr]  # called only when there is a book
                    self.stats.book_ticker_matches += 1
                else:
                    self.stats.book_ticker_mismatches += 1

    # -- resync -------------------------------------------------------------------------------
    def _mark_invalid(self, reason: SyncReason | None, now: int) -> None:
        self._tickers.clear()
        # The retry delay starts over only after a book that held: a resync that keeps failing soon
        # after it syncs backs off instead of asking the venue again every diff.
        if self._valid_since is not None and time.monotonic() - self._valid_since >= self.config.backoff_reset_s:
            self._resync_backoff.reset()
        self._valid_since = None
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
        delay = self._resync_backoff.next_delay()
        rejected = self.sequencer.rejection
        ids = (
            f" (book at {rejected[0]}, diff U={rejected[1].first_update_id} u={rejected[1].final_update_id}"
            f" pu={rejected[1].prev_final_update_id})"
            if rejected is not None
            else ""
        )
        self._log.warning(
            f"invalid:{reason}", "%s feed: book invalid: %s%s; resync in %.2f s", self.symbol, reason, ids, delay
        )
        self._start_resync(delay_s=delay)

    def _start_resync(self, delay_s: float = 0.0) -> None:
        self.stats.resyncs += 1
        self.sequencer.reset()
        self._diff_seen.clear()
        self._cancel_snapshot()
        self._snapshot_task = asyncio.ensure_future(self._fetch_snapshot(delay_s))

    def _cancel_snapshot(self) -> None:
        if self._snapshot_task is not None and not self._snapshot_task.done():
            self._snapshot_task.cancel()
        self._snapshot_task = None

    async def _fetch_snapshot(self, delay_s: float) -> tuple[DepthSnapshot, int]:
        if delay_s > 0:
            await asyncio.sleep(delay_s)
        # Ask only once a diff has arrived since the resync began: then the stream is live for us, and
        # the venue's snapshot, taken after it sent that diff, cannot predate what we buffer. Asked
        # earlier (right after a reconnect), the snapshot may be served before the venue starts sending
        # to this connection, and the diffs in between are lost: SNAPSHOT_TOO_OLD and a second request.
        try:
            await asyncio.wait_for(self._diff_seen.wait(), self.config.snapshot_wait_s)
        except TimeoutError:
            pass  # a quiet stream: the snapshot is placed on its own and the next diff must continue it
        url = f"{self.rest_url}{REST_DEPTH_PATH[self.market]}?symbol={self.symbol}&limit={self.depth_limit}"
        self.stats.snapshot_requests += 1
        self.stats.request_weight += depth_request_weight(self.market, self.depth_limit)
        body = await asyncio.wait_for(
            asyncio.to_thread(_http_get, url, self.snapshot_timeout_s), self.snapshot_timeout_s + 1
        )
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
            self._snapshot_failed(f"snapshot request failed: {exc!r}")
            return
        self.place_snapshot(*task.result())

    def _snapshot_failed(self, why: str) -> None:
        self.stats.snapshot_errors += 1
        delay = self._resync_backoff.next_delay()
        self._log.warning("snapshot_error", "%s feed: %s; retrying in %.2f s", self.symbol, why, delay)
        self._start_resync(delay_s=delay)

    def place_snapshot(self, snap: DepthSnapshot, now: int) -> None:
        """Set the book to a REST snapshot and apply the diffs buffered since (the resync task's end).

        A snapshot with a level that fails the number checks (against the band around its own mid) is
        rejected by reason and requested again after the resync backoff; nothing of it is applied.
        """
        band = mid_band(snap.bids, snap.asks, self.tick_size, self.config.price_band)
        bad = self._bad_levels(snap.bids, snap.asks, band, ("bids", "asks"))
        if bad is not None:
            self._reject(bad[0], f"depth snapshot lastUpdateId={snap.last_update_id}: {bad[1]}")
            self._snapshot_failed(f"snapshot refused ({bad[0]})")
            return
        self.stats.snapshots += 1
        ready = self.sequencer.on_snapshot(snap)
        if self.sequencer.state is SyncState.INVALID:
            self._go_invalid(self.sequencer.invalid_reason, now)
            return
        self._set_band(band)
        if self.book is not None:
            self.book.apply_snapshot(snap)
        ts_event = event_time_ns(snap) or self._last_event_ns or now
        self.events.append_snapshot(snap, ts_event, now)
        self._book_live = True
        self._valid_since = time.monotonic()
        self._apply(ready, now)

    # -- plumbing -----------------------------------------------------------------------------
    def on_frame(self, raw: bytes | str, now_ns: int) -> None:
        """Take one websocket frame as the session does: sequence and apply it (the numba hot path for a
        depthUpdate that continues the synced book, else the general parser), then :meth:`flush`.

        ``now_ns`` is the frame's receive time, ns since the epoch. Never raises on bad input: a frame
        that is refused is counted by reason in :attr:`stats` (as from the socket).
        """
        self._on_frame(raw, now_ns)
        self.flush()

    def flush(self) -> None:
        """Hand the events applied since the last call to the sink (one column batch), if any."""
        if len(self.events):
            self.sink(self.events.columns())
            self.events.truncate(0)

    @staticmethod
    async def _sleep_or_stop(delay_s: float, stop: asyncio.Event) -> None:
        try:
            await asyncio.wait_for(stop.wait(), timeout=delay_s)
        except TimeoutError:
            pass
