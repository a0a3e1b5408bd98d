"""Binance recording importer: hftbacktest-style files -> schema-v1 tick data plus a sync report.

The importer replays a recording through the same pieces the live feed handler uses
(:func:`parse_message` -> :class:`BinanceOrderBookSequencer` -> :class:`EventBuffer`) and checks
the result on a :class:`LocalBook` (numba L2 book in ticks, capacity 8192 per side):

* at every message end the book must not be crossed or locked;
* every ``bookTicker`` whose ``u`` equals the ``u`` of an applied diff (or of the book when it
  arrives) must show the book's best bid and ask, prices and quantities. Tickers usually arrive
  a little before the diff with their ``u``, so they wait for it; a ticker whose ``u`` falls
  inside a diff's range has no matching book state and is counted as unchecked. bookTicker
  messages are only checked, never written.

Output events (see :mod:`scalper.ingest.binance.normalise`): the REST snapshot becomes a clear
plus its levels, written just before the first diff applied on top of it; every applied diff and
every trade follow. ``ts_event`` is ``T`` (else ``E``) in ns; ``ts_recv`` is the line's local
stamp in ns (its unit detected per file, see :mod:`~scalper.ingest.binance.recording`; buffered
diffs keep their own line's stamp). A spot snapshot has no time of its
own and takes the time of that first diff; a futures snapshot's ``T`` is capped at it. Book
messages never go back in time (a diff older than the previous book message would be lifted to
its time and counted in ``book_ts_clamped``; the recordings have none), and the rows are then
stably sorted by ``ts_event`` so that trades, whose stream runs up to 2 s apart from the depth
stream, fall in place.

What stops the import (:class:`BinanceImportError`, naming file, line and reason):

* the first file has no REST snapshot: with no earlier file to continue, no book can be built;
* a malformed line (recording format or :class:`BinanceParseError`) or a message for another
  symbol, unless ``skip_bad`` (then counted per reason in ``malformed``);
* a price or size no book may hold (:func:`~scalper.ingest.binance.levels.check_levels`: finite,
  positive, on the tick grid within :data:`~scalper.ingest.binance.levels.DEFAULT_TICK_TOLERANCE`,
  within :data:`~scalper.ingest.binance.levels.DEFAULT_PRICE_BAND` of the snapshot's mid): in a
  snapshot or a trade, like a malformed line; in a diff the sequencer took, like a gap (REJECTED);
* a gap, a snapshot older than the diffs after it, or a crossed book. A recording has no second
  snapshot to resync from, so with ``skip_bad`` the import reports it (``book_stopped``), stops
  writing book events (the sequencer stays INVALID and drops later diffs) and keeps writing
  trades. The crossing diff itself is not written.
"""

from __future__ import annotations

import dataclasses
from collections import deque
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, cast

import numpy as np

from scalper.ingest.binance.levels import (
    DEFAULT_PRICE_BAND,
    DEFAULT_TICK_TOLERANCE,
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
from scalper.ingest.binance.recording import RecordedLine, Recording, RecordingError, TsUnit
from scalper.ingest.binance.sequencer import BinanceOrderBookSequencer, SyncReason, SyncState
from scalper.ingest.binance.specs import decimal_increment
from scalper.ingest.binance.specs import tick_size as known_or_inferred_tick
from scalper.ingest.tickfile import Instrument, TickData

OTHER_SYMBOL = "other_symbol"
"""``malformed`` key for a message whose symbol is not the recording's."""
MAX_PENDING_TICKERS = 10_000
MISMATCH_EXAMPLES = 5


class BinanceImportError(ValueError):
    """The recording cannot be imported as asked; the message names the file, line and reason."""


@dataclasses.dataclass(frozen=True)
class BinanceImport:
    """Result of :func:`import_binance`.

    Attributes
    ----------
    data : TickData
        Schema-v1 events sorted by ``ts_event``; instrument venue ``BINANCE_<MARKET>``, source
        ``"binance:<first file name>"``.
    market : Market
    files : tuple of Path
    ts_units : dict of str to TsUnit
        Unit detected for each file's local stamps, by file name.
    messages : dict of str to int
        Parsed messages by kind: ``depthUpdate``, ``snapshot``, ``trade``, ``aggTrade``,
        ``bookTicker`` and ``ignored`` (valid but unused, e.g. ``markPriceUpdate``).
    applied_diffs : int
        Diffs written (and applied to the check book).
    sync : dict of SyncReason to int
        The sequencer's counters (gaps, stale_dropped, buffered, snapshot_too_old, crossed, ...).
    ticker_matches, ticker_mismatches, ticker_unchecked : int
        bookTickers whose BBO equals / differs from the book at the same update id, and those
        that had no book state with their id (inside a diff's id range, before the sync, or after
        the book stopped).
    mismatch_examples : tuple of str
        The first few mismatches, with file, line, ticker and book.
    malformed : dict of str to int
        Skipped lines by reason (:class:`ParseReason` and :class:`LineReason` values, and
        ``other_symbol``); empty unless ``skip_bad``.
    book_valid : bool
        True when the book was still in sync at the end of the recording.
    book_stopped : str or None
        Where and why book events stopped (only with ``skip_bad``; otherwise that raised).
    ignored_snapshots : int
        Snapshots after the book was built (or broken); a recording cannot resync mid-way.
    book_overflows : int
        Levels the check book left out for capacity (never the top of book).
    book_ts_clamped : int
        Book messages lifted to the previous book message's time.
    """

    data: TickData
    market: Market
    files: tuple[Path, ...]
    ts_units: dict[str, TsUnit]
    messages: dict[str, int]
    applied_diffs: int
    sync: dict[SyncReason, int]
    ticker_matches: int
    ticker_mismatches: int
    ticker_unchecked: int
    mismatch_examples: tuple[str, ...]
    malformed: dict[str, int]
    book_valid: bool
    book_stopped: str | None
    ignored_snapshots: int
    book_overflows: int
    book_ts_clamped: int

    @property
    def gaps(self) -> int:
        """Return the number of update-id gaps found."""
        return self.sync[SyncReason.GAP]

    @property
    def stale_dropped(self) -> int:
        """Return the number of diffs dropped as older than the book."""
        return self.sync[SyncReason.STALE_DROPPED]

    @property
    def crossed(self) -> int:
        """Return the number of message ends with a crossed or locked book."""
        return self.sync[SyncReason.CROSSED]

    def summary(self) -> dict:
        """Return the report (everything but ``data``) as plain JSON-serialisable values, plus ``events``."""
        return {
            "market": self.market.value,
            "instrument": dataclasses.asdict(self.data.instrument),
            "files": [str(p) for p in self.files],
            "ts_units": {name: unit.value for name, unit in self.ts_units.items()},
            "events": len(self.data),
            "messages": dict(self.messages),
            "applied_diffs": self.applied_diffs,
            "sync": {reason.value: count for reason, count in self.sync.items()},
            "bookticker": {
                "matches": self.ticker_matches,
                "mismatches": self.ticker_mismatches,
                "unchecked": self.ticker_unchecked,
                "mismatch_examples": list(self.mismatch_examples),
            },
            "malformed": dict(self.malformed),
            "book_valid": self.book_valid,
            "book_stopped": self.book_stopped,
            "ignored_snapshots": self.ignored_snapshots,
            "book_overflows": self.book_overflows,
            "book_ts_clamped": self.book_ts_clamped,
        }


def infer_market(path: str | Path) -> Market:
    """Return the market of a recording from its first ``depthUpdate``.

    Futures diffs carry ``pu`` and spot diffs do not; among futures, COIN-M diffs carry the pair
    ``ps`` (USD-M ones do not). Unparseable lines before it are passed over.

    Raises
    ------
    BinanceImportError
        If the file has no parseable ``depthUpdate``.
    """
    path = Path(path)
    for rec in Recording([path], on_bad_line=lambda _exc: None):
        try:
            msg = parse_message(rec.raw)
        except BinanceParseError:
            continue
        if isinstance(msg, DepthUpdate):
            if msg.prev_final_update_id is None:
                return Market.SPOT
            return Market.COINM if msg.pair is not None else Market.USDM
    raise BinanceImportError(f"{path}: no depthUpdate message to infer the market from; pass market=")


def import_binance(
    files: Sequence[str | Path],
    market: Market | None = None,
    symbol: str | None = None,
    tick_size: float | None = None,
    skip_bad: bool = False,
    progress: Callable[[str], None] | None = None,
) -> BinanceImport:
    """Import one Binance recording (one symbol) made of ``files`` as schema-v1 events.

    Parameters
    ----------
    files : sequence of path-like
        hftbacktest-style recordings (``<local_ts> <json>`` lines, gzip or plain), earliest
        first; each later file continues the one before. The first must hold the REST snapshot.
    market : Market, optional
        Default: :func:`infer_market` on the first file.
    symbol : str, optional
        The symbol every message must have (case-insensitive). Default: the first one seen.
    tick_size : float, optional
        Quote currency. Default: :data:`~scalper.ingest.binance.specs.KNOWN_TICK_SIZES`, else
        inferred from the snapshot's price decimals (:mod:`~scalper.ingest.binance.specs`).
        The lot size is always the increment of the snapshot's quantity decimals (0.001 for
        USD-M BTCUSDT, 1 contract for COIN-M).
    skip_bad : bool
        Count malformed lines instead of raising, and on a gap or crossed book stop the book
        (see the module docstring) instead of raising.
    progress : callable, optional
        Called with a short description as each file starts.

    Returns
    -------
    BinanceImport

    Raises
    ------
    BinanceImportError
        See the module docstring; also for no files, a market that contradicts the data, or a
        recording with no symbol.
    """
    if not files:
        raise BinanceImportError("no files to import")
    paths = tuple(Path(f) for f in files)
    market = Market(market) if market is not None else infer_market(paths[0])
    run = _ImportRun(paths, market, symbol.upper() if symbol else None, tick_size, skip_bad, progress)
    run.run()
    return run.result()


class _ImportRun:
    # The mutable state of one import; a class so that each message handler stays small.

    def __init__(self, paths, market, symbol, tick_size, skip_bad, progress):
        self.paths = paths
        self.market = market
        self.symbol = symbol
        self.tick_size = tick_size
        self.lot_size: float  # set with the book by the first snapshot (_init_specs)
        self.skip_bad = skip_bad
        self.say = progress or (lambda _msg: None)
        self.seq = BinanceOrderBookSequencer(market)
        self.events = EventBuffer()
        # Set by the first snapshot (_init_specs); run() refuses a recording without one, so every
        # message that reaches the book and result() comes after it.
        self.book: LocalBook
        self.recording = Recording(paths, on_bad_line=self._bad_line if skip_bad else None)
        self.messages = dict.fromkeys(("depthUpdate", "snapshot", "trade", "aggTrade", "bookTicker", "ignored"), 0)
        self.malformed: dict[str, int] = {}
        # Diffs the sequencer is holding, by id(), with their lines (the value keeps the object
        # alive so that its id cannot be reused while it is a key).
        self.held: dict[int, tuple[DepthUpdate, RecordedLine]] = {}
        self.pending_snapshot: tuple[DepthSnapshot, int] | None = None
        self.snapshot_seen = False
        self.band = NO_BAND  # prices accepted, ticks: around the mid of the snapshot in use
        self.last_book_ts = -(2**63)
        self.applied = 0
        self.clamped = 0
        self.ignored_snapshots = 0
        self.tickers: deque[tuple[BookTicker, RecordedLine]] = deque()
        self.matches = 0
        self.mismatches = 0
        self.unchecked = 0
        self.mismatch_examples: list[str] = []
        self.book_stopped: str | None = None

    def run(self) -> None:
        handlers: dict[type, Callable[[Any, RecordedLine], None]] = {
            DepthUpdate: self._on_diff,
            Trade: self._on_trade,
            BookTicker: self._on_ticker,
            DepthSnapshot: self._on_snapshot,
        }
        first = self.recording.files[0]
        current = None
        try:
            for rec in self.recording:
                if rec.path is not current:
                    if current is not None:
                        self._require_snapshot(first)
                    current = rec.path
                    self.say(f"reading {current.name}")
                try:
                    msg = parse_message(rec.raw)
                except BinanceParseError as exc:
                    self._bad(rec, exc.reason.value, str(exc))
                    continue
                if msg is None:
                    self.messages["ignored"] += 1
                    continue
                handlers[type(msg)](msg, rec)
        except RecordingError as exc:
            raise BinanceImportError(str(exc)) from exc
        self._require_snapshot(first)
        self.unchecked += len(self.tickers)
        self.tickers.clear()

    def result(self) -> BinanceImport:
        if self.symbol is None:
            raise BinanceImportError(f"{self.paths[0]}: no message names a symbol")
        instrument = Instrument(
            venue=self.market.venue,
            symbol=self.symbol,
            tick_size=self.book.tick_size,
            lot_size=self.lot_size,
            source=f"binance:{self.paths[0].name}",
        )
        return BinanceImport(
            data=self.events.to_tickdata(instrument),
            market=self.market,
            files=self.paths,
            ts_units={p.name: u for p, u in self.recording.units.items()},
            messages=dict(self.messages),
            applied_diffs=self.applied,
            sync=dict(self.seq.counters),
            ticker_matches=self.matches,
            ticker_mismatches=self.mismatches,
            ticker_unchecked=self.unchecked,
            mismatch_examples=tuple(self.mismatch_examples),
            malformed=dict(self.malformed),
            book_valid=self.seq.state is SyncState.SYNCED,
            book_stopped=self.book_stopped,
            ignored_snapshots=self.ignored_snapshots,
            book_overflows=self.book.overflows,
            book_ts_clamped=self.clamped,
        )

    # -- problems -------------------------------------------------------------------------

    def _require_snapshot(self, path: Path) -> None:
        if not self.snapshot_seen:
            raise BinanceImportError(
                f"{path}: no REST depth snapshot (a line with lastUpdateId) and no earlier file of the recording "
                "before it, so no order book can be built; pass the recording's first file (the one with the "
                "snapshot) ahead of it"
            )

    def _bad_line(self, exc: RecordingError) -> None:
        self.malformed[exc.reason.value] = self.malformed.get(exc.reason.value, 0) + 1

    def _bad(self, rec: RecordedLine, reason: str, detail: str) -> None:
        # A message that cannot be used: count it, or stop the import.
        if not self.skip_bad:
            raise BinanceImportError(f"{rec.path}:{rec.line_no}: {detail}")
        self.malformed[reason] = self.malformed.get(reason, 0) + 1

    def _book_broke(self, rec: RecordedLine, detail: str) -> None:
        # The sequencer is INVALID: no resync is possible from a recording.
        self.book_stopped = f"{rec.path}:{rec.line_no}: {self.seq.invalid_reason}: {detail}"
        self.unchecked += len(self.tickers)
        self.tickers.clear()
        if not self.skip_bad:
            raise BinanceImportError(self.book_stopped)

    def _symbol_ok(self, symbol: str, rec: RecordedLine) -> bool:
        if self.symbol is None:
            self.symbol = symbol
        elif symbol != self.symbol:
            self._bad(rec, OTHER_SYMBOL, f"{OTHER_SYMBOL}: message for {symbol}, the recording is {self.symbol}")
            return False
        return True

    # -- messages -------------------------------------------------------------------------

    def _on_trade(self, trade: Trade, rec: RecordedLine) -> None:
        if self.tick_size is not None:
            code = price_code(trade.price, self.tick_size, DEFAULT_TICK_TOLERANCE, *self.band)
            if code != LEVEL_OK:
                reason = cast(LevelReason, LEVEL_CODES[code])
                self._bad(rec, reason, f"{reason}: trade {trade.trade_id} price {trade.price!r}")
                return
        if self._symbol_ok(trade.symbol, rec):
            self.messages["aggTrade" if trade.aggregate else "trade"] += 1
            self.events.append_trade(trade, rec.local_ts_ns)

    def _on_diff(self, diff: DepthUpdate, rec: RecordedLine) -> None:
        if not self._symbol_ok(diff.symbol, rec):
            return
        self.messages["depthUpdate"] += 1
        if (diff.prev_final_update_id is not None) is not self.market.is_futures:
            raise BinanceImportError(
                f"{rec.path}:{rec.line_no}: a {'futures' if diff.prev_final_update_id is not None else 'spot'} "
                f"depthUpdate in a {self.market.value} import; pass the right market (or none to infer it)"
            )
        state = self.seq.state
        ready = self.seq.on_diff(diff)
        if ready:
            self._apply(ready[0], rec)
        elif state is SyncState.AWAITING_SNAPSHOT:
            self.held[id(diff)] = (diff, rec)
        elif state is SyncState.SYNCED and self.seq.state is SyncState.INVALID:
            self._book_broke(rec, self._rejection())

    def _on_snapshot(self, snapshot: DepthSnapshot, rec: RecordedLine) -> None:
        self.messages["snapshot"] += 1
        if self.seq.state is not SyncState.AWAITING_SNAPSHOT:
            self.ignored_snapshots += 1
            return
        self.snapshot_seen = True
        self._init_specs(snapshot)
        band = mid_band(snapshot.bids, snapshot.asks, self.tick_size, DEFAULT_PRICE_BAND)
        bad = first_bad_level(
            snapshot.bids, snapshot.asks, self.tick_size, DEFAULT_TICK_TOLERANCE, band, ("bids", "asks")
        )
        if bad is not None:
            self._bad(rec, bad[0], f"{bad[0]}: depth snapshot lastUpdateId={snapshot.last_update_id}: {bad[1]}")
            return
        self.band = band
        self.book.apply_snapshot(snapshot)
        self.pending_snapshot = (snapshot, rec.local_ts_ns)
        ready = self.seq.on_snapshot(snapshot)
        held, self.held = self.held, {}
        if self.seq.state is SyncState.INVALID:
            self._book_broke(rec, self._rejection())
            return
        if self.book.is_crossed():
            self._crossed(rec, "the snapshot itself")
            return
        self._check_tickers_at(snapshot.last_update_id, rec)
        for diff in ready:
            if not self._apply(diff, held[id(diff)][1]):
                return

    def _on_ticker(self, ticker: BookTicker, rec: RecordedLine) -> None:
        if not self._symbol_ok(ticker.symbol, rec):
            return
        self.messages["bookTicker"] += 1
        state = self.seq.state
        if state is SyncState.INVALID:
            self.unchecked += 1
            return
        book_u = self.seq.last_update_id
        if book_u is not None and ticker.update_id <= book_u:
            if ticker.update_id == book_u:
                self._compare(ticker, rec)
            else:
                self.unchecked += 1
            return
        if len(self.tickers) == MAX_PENDING_TICKERS:
            self.tickers.popleft()
            self.unchecked += 1
        self.tickers.append((ticker, rec))

    # -- book -----------------------------------------------------------------------------

    def _init_specs(self, snapshot: DepthSnapshot) -> None:
        # Tick and lot sizes come from the first snapshot (see import_binance).
        prices = [snapshot.bids[:, 0], snapshot.asks[:, 0]]
        qtys = [snapshot.bids[:, 1], snapshot.asks[:, 1]]
        if self.tick_size is None:
            self.tick_size = known_or_inferred_tick(self.market, self.symbol or "", np.concatenate(prices))
        self.lot_size = decimal_increment(np.concatenate(qtys))
        self.book = LocalBook(self.tick_size)

    def _apply(self, diff: DepthUpdate, rec: RecordedLine) -> bool:
        # Write and apply one diff the sequencer released (rec: its own line); False when it
        # broke the book (a rejected level or a crossed book). A depthUpdate always has E (the parser
        # refuses one without), so its time is an int.
        t_event: int = event_time_ns(diff)  # type: ignore[assignment]
        if self.pending_snapshot is not None:
            self._write_snapshot(self.pending_snapshot, t_event)
        bad = first_bad_level(diff.bids, diff.asks, self.tick_size, DEFAULT_TICK_TOLERANCE, self.band)
        if bad is not None:
            # The sequencer has taken the diff: without it the book is wrong, as after a gap.
            if self.skip_bad:
                self.malformed[bad[0]] = self.malformed.get(bad[0], 0) + 1
            self.seq.invalidate(SyncReason.REJECTED)
            self._book_broke(rec, f"{bad[0]}: diff U={diff.first_update_id} u={diff.final_update_id}: {bad[1]}")
            return False
        if t_event < self.last_book_ts:
            t_event = self.last_book_ts
            self.clamped += 1
        start = len(self.events)
        self.events.append_diff(diff, rec.local_ts_ns, t_event)
        self.book.apply_diff(diff)
        if self.book.is_crossed():
            self.events.truncate(start)
            self._crossed(rec, f"diff U={diff.first_update_id} u={diff.final_update_id}")
            return False
        self.last_book_ts = t_event
        self.applied += 1
        self._check_tickers_at(diff.final_update_id, rec)
        return True

    def _write_snapshot(self, pending: tuple[DepthSnapshot, int], first_diff_ts: int) -> None:
        snapshot, ts_recv = pending
        own = event_time_ns(snapshot)
        t_event = first_diff_ts if own is None else min(own, first_diff_ts)
        t_event = max(t_event, self.last_book_ts)
        self.events.append_snapshot(snapshot, t_event, ts_recv)
        self.last_book_ts = t_event
        self.pending_snapshot = None

    def _rejection(self) -> str:
        # Describe the diff that broke the sequence.
        rejection = self.seq.rejection
        assert rejection is not None  # called once the sequencer went INVALID on a diff
        book_u, diff = rejection
        ids = f"U={diff.first_update_id} u={diff.final_update_id}"
        if self.market.is_futures:
            ids += f" pu={diff.prev_final_update_id}"
        return f"book at update id {book_u}, next diff has {ids}"

    def _crossed(self, rec: RecordedLine, what: str) -> None:
        self.seq.invalidate(SyncReason.CROSSED)
        best = self.book.best()
        assert best is not None  # a crossed book has both sides
        bid, _, ask, _ = best
        self._book_broke(rec, f"{what} leaves the book crossed: best bid {bid} >= best ask {ask} (ticks)")

    def _check_tickers_at(self, update_id: int, rec: RecordedLine) -> None:
        # The book is now at update_id: settle every waiting ticker up to it.
        tickers = self.tickers
        while tickers and tickers[0][0].update_id <= update_id:
            ticker, ticker_rec = tickers.popleft()
            if ticker.update_id == update_id:
                self._compare(ticker, ticker_rec)
            else:
                self.unchecked += 1

    def _compare(self, ticker: BookTicker, rec: RecordedLine) -> None:
        if self.book.matches(ticker):
            self.matches += 1
            return
        self.mismatches += 1
        if len(self.mismatch_examples) < MISMATCH_EXAMPLES:
            self.mismatch_examples.append(
                f"{rec.path}:{rec.line_no}: bookTicker u={ticker.update_id} bid {ticker.bid} x {ticker.bid_qty}, "
                f"ask {ticker.ask} x {ticker.ask_qty}; book (ticks, qty) {self.book.best()}"
            )
