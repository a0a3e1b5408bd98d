"""The live Binance handler against the local replay server, on real recordings, over real sockets.

Each test replays a recording as fast as the client reads, lets the handler sync from the server's
REST snapshot, injects a fault, and at the end compares three books: the server's (built from the
recording by plain dicts), the handler's own, and the one a consumer rebuilds from the emitted
tick events through the engine's kernel.
"""

from __future__ import annotations

import asyncio

import numpy as np
import pytest
from builders import step_events

from scalper.engine.framepath import DepthFramePath
from scalper.features.kernels import FeatureState
from scalper.features.ladder import deep_levels
from scalper.ingest.binance.feed import Backoff, BinanceFeed
from scalper.ingest.binance.messages import Market
from scalper.ingest.binance.parse import ParseReason
from scalper.ingest.binance.recording import Recording
from scalper.ingest.binance.replay_server import ReplayServer
from scalper.ingest.binance.sequencer import SyncReason

pytestmark = pytest.mark.realdata

USDM_ETH = ("binance_usdm/ethusdt_20240718.gz", Market.USDM, "ETHUSDT", 0.01)
SPOT_ETH = ("binance_spot/ethusdt_20240808.gz", Market.SPOT, "ETHUSDT", 0.01)


class Consumer:
    """Applies every emitted event to a kernel book, as the engine does, and records clears.

    The general path's events arrive as columns (``__call__``); the hot path's through the daemon's
    frame path, which applies a frame's first events itself and leaves the rest from where it stopped.
    """

    def __init__(self, tick_size: float) -> None:
        self.state = FeatureState()
        self.tick_size = tick_size
        self.events = 0
        self.clears = 0
        self.hot_frames = 0
        self.path = DepthFramePath(tick_size, self.state, self.frame, hold=lambda: False)

    def __call__(self, cols: dict[str, np.ndarray]) -> None:
        ticks = np.rint(cols["price"] / self.tick_size).astype(np.int64)
        self._step(cols["ts_event"], cols["kind"], cols["side"], ticks, cols["size"], cols["flags"])
        self.events += len(ticks)
        self.clears += int(np.sum(cols["kind"] == 2))

    def frame(self, m: int, i: int, code: int, _now: int) -> None:
        # The frame path applied events [0, i) and stopped with run_until's code; i is the next to pass.
        # m == 0: a decision was due before the frame (this consumer takes none); its events come next.
        self.hot_frames += m > 0
        self._step(*(c[i:m] for c in self.path.columns(m)))
        self.events += m

    def _step(self, ts, kind, side, ticks, size, flags) -> None:
        step_events(self.state, ts, kind, side, ticks, size, flags)


def _server_book(srv: ReplayServer, tick: float) -> tuple[list, list]:
    bids = sorted(((round(float(p) / tick), float(q)) for p, q in srv.book.bids.items()), reverse=True)
    asks = sorted((round(float(p) / tick), float(q)) for p, q in srv.book.asks.items())
    return bids, asks


def _levels(px, sz, n, row):
    k = min(int(n[row]), TOP)
    return list(zip(px[row, :k].tolist(), sz[row, :k].tolist(), strict=True))


async def _run(data_dir, spec, fault=None, after_diffs=300, hot=False):
    # hot: the daemon's set-up, depthUpdate frames scanned straight to ticks and no check book.
    path, market, symbol, tick = spec
    srv = await ReplayServer(
        ((ln.local_ts_ns, ln.raw) for ln in Recording([data_dir / "hftbacktest" / path])), speed=0
    ).start()
    consumer = Consumer(tick)
    hot_path = {"check_book": False, "hot_path": consumer.path} if hot else {}
    feed = BinanceFeed(market, symbol, tick, srv.ws_url, srv.rest_url, consumer, backoff=Backoff(0.01, 0.2), **hot_path)
    stop = asyncio.Event()
    task = asyncio.create_task(feed.run(stop))
    try:
        if fault is not None:
            while srv.stats.diffs_sent < after_diffs:
                await asyncio.sleep(0.005)
            await fault(srv)
        await asyncio.wait_for(srv.finished.wait(), 120)
        for _ in range(2000):
            if feed.is_synced and feed.sequencer.last_update_id == srv.book.last_update_id:
                break
            await asyncio.sleep(0.01)
    finally:
        stop.set()
        await asyncio.wait_for(task, 10)
        await srv.close()
    return srv, feed, consumer


TOP = 200  # the REST snapshot carries 1000 levels; far levels the server saw before it are unknowable


def _assert_books_equal(srv, feed, consumer, tick):
    want_bids, want_asks = (side[:TOP] for side in _server_book(srv, tick))
    assert feed.is_synced
    if feed.book is not None:
        assert _levels(feed.book.px, feed.book.sz, feed.book.n, 0) == want_bids
        assert _levels(feed.book.px, feed.book.sz, feed.book.n, 1) == want_asks
    st = consumer.state
    assert st.is_valid
    for row, want in ((0, want_bids), (1, want_asks)):
        ticks, sizes = deep_levels(st.px, st.sz, st.n, st.lpx, st.lsz, row)  # top view + ladder
        assert list(zip(ticks[:TOP].tolist(), sizes[:TOP].tolist(), strict=True)) == want


@pytest.mark.parametrize("spec", [USDM_ETH, SPOT_ETH], ids=["usdm", "spot"])
def test_feed_syncs_from_rest_snapshot_and_follows_every_diff(data_dir, spec):
    srv, feed, consumer = asyncio.run(_run(data_dir, spec))
    _assert_books_equal(srv, feed, consumer, spec[3])
    assert feed.stats.invalidations == {}
    assert feed.stats.snapshots == 1 and feed.stats.reconnects == 0
    assert feed.stats.book_ticker_matches > 10 and feed.stats.book_ticker_mismatches == 0
    assert feed.stats.trades > 100


@pytest.mark.parametrize("spec", [USDM_ETH, SPOT_ETH], ids=["usdm", "spot"])
def test_hot_path_follows_every_diff_into_the_kernel_book(data_dir, spec):
    srv, feed, consumer = asyncio.run(_run(data_dir, spec, hot=True))
    _assert_books_equal(srv, feed, consumer, spec[3])
    assert feed.stats.invalidations == {} and feed.stats.snapshots == 1
    # Every diff took the hot path but those applied on the snapshot: the ones buffered while it was
    # requested (the request waits for the first), or the first live one when none was.
    seq = feed.sequencer.counters
    on_snapshot = max(1, seq[SyncReason.BUFFERED] - seq[SyncReason.STALE_DROPPED])
    assert consumer.hot_frames == feed.stats.diffs_applied - on_snapshot > 1000


def test_hot_path_detects_a_missing_diff_and_resyncs(data_dir):
    async def gap(srv):
        srv.skip_next_diff()

    srv, feed, consumer = asyncio.run(_run(data_dir, USDM_ETH, gap, hot=True))
    assert feed.stats.invalidations[SyncReason.GAP] == 1 and feed.stats.snapshots == 2
    _assert_books_equal(srv, feed, consumer, USDM_ETH[3])


def test_feed_reconnects_and_resyncs_after_server_disconnect(data_dir):
    async def drop(srv):
        await srv.drop_connections()

    srv, feed, consumer = asyncio.run(_run(data_dir, USDM_ETH, drop))
    _assert_books_equal(srv, feed, consumer, USDM_ETH[3])
    assert feed.stats.reconnects == 1 and feed.stats.connects == 2
    assert feed.stats.disconnects == {"connection_lost": 1}
    # One snapshot per sync and no SNAPSHOT_TOO_OLD: the resync asks only once the stream reaches the
    # new connection (it was flaky, 3 == 2, when the request beat the server's registration of it).
    assert feed.stats.snapshots == feed.stats.snapshot_requests == 2
    assert feed.stats.invalidations == {}
    assert consumer.clears >= 3  # snapshot, invalidation on the drop, resync snapshot


def test_feed_detects_a_missing_diff_and_resyncs(data_dir):
    async def gap(srv):
        srv.skip_next_diff()

    srv, feed, consumer = asyncio.run(_run(data_dir, USDM_ETH, gap))
    assert srv.stats.diffs_skipped == 1
    assert feed.stats.invalidations[SyncReason.GAP] == 1
    assert feed.stats.snapshots == 2 and feed.stats.reconnects == 0
    _assert_books_equal(srv, feed, consumer, USDM_ETH[3])


def test_feed_counts_malformed_frames_and_keeps_going(data_dir):
    async def garbage(srv):
        srv.inject('{"stream":"ethusdt@depth@0ms","data":{"e":"depthUpdate","E":1')
        srv.inject(
            '{"stream":"ethusdt@trade","data":{"e":"trade","E":1,"T":1,"s":"ETHUSDT","t":1,"p":"abc","q":"1","m":true}}'
        )

    srv, feed, consumer = asyncio.run(_run(data_dir, USDM_ETH, garbage))
    assert feed.stats.malformed[ParseReason.BAD_JSON] == 1
    assert sum(feed.stats.malformed.values()) == 2
    assert feed.stats.invalidations == {}
    _assert_books_equal(srv, feed, consumer, USDM_ETH[3])


@pytest.mark.parametrize(
    ("fault", "reason", "snapshots"),
    [("swap", SyncReason.GAP, 2), ("corrupt", SyncReason.GAP, 2), ("duplicate", None, 1)],
)
def test_feed_detects_damaged_diffs_and_never_exposes_a_wrong_book(data_dir, fault, reason, snapshots):
    async def damage(srv):
        srv.fault_next_diff(fault)

    srv, feed, consumer = asyncio.run(_run(data_dir, USDM_ETH, damage))
    if reason is None:  # a repeated diff is stale: dropped, book untouched
        assert feed.stats.invalidations == {}
        assert feed.sequencer.counters[SyncReason.STALE_DROPPED] >= 1
    else:
        assert feed.stats.invalidations[reason] == 1
    assert feed.stats.snapshots == snapshots
    _assert_books_equal(srv, feed, consumer, USDM_ETH[3])
