"""The passive exchange on a real Binance recording: a post-only bid at the touch fills exactly when an
independent replay of the recorded events says it must (hftbacktest's risk-averse queue rules).

Recording: ../shared/data/hftbacktest/binance_usdm/btcusdt_20240808.gz (README section 2), imported
with :func:`scalper.ingest.binance.importer.import_binance`. The oracle below is plain Python over the
imported columns (dict books), sharing no code with the kernels.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from scalper.exec import passive as px
from scalper.exec.queue import QUEUE_RISK_AVERSE
from scalper.ingest.binance.importer import import_binance
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

RECORDING = "hftbacktest/binance_usdm/btcusdt_20240808.gz"
LATENCY_NS = 1_000_000  # entry and response, each


@pytest.fixture(scope="module")
def columns(data_dir: Path):
    path = data_dir / RECORDING
    if not path.exists():
        pytest.skip(f"{path} not found")
    data = import_binance([path]).data
    return data.instrument, data.kernel_columns()


def _post_at_touch(instrument, cols, after_s):
    """Replay to ``after_s`` seconds into the recording, post one lot at the best bid, replay the rest."""
    ts, kind, side, tick, size, _ = cols
    i0 = int(np.searchsorted(ts, ts[0] + after_s * 10**9, side="right"))
    ex = px.new_exchange(
        tick_size=instrument.tick_size,
        lot_size=instrument.lot_size,
        entry_latency_ns=LATENCY_NS,
        response_latency_ns=LATENCY_NS,
        queue_model=QUEUE_RISK_AVERSE,
    )
    assert px.run_events(ex, ts, kind, side, tick, size, 0, i0) == px.OK
    bid = int(ex.px[0, 0])
    sent = int(ts[i0 - 1])
    assert px.submit(ex, sent, 1, bid, 1, px.TIF_GTX) == 0
    assert px.run_events(ex, ts, kind, side, tick, size, i0, len(ts)) == px.OK
    return ex, bid, sent + LATENCY_NS


def _oracle(cols, lot, bid, arrival):
    """Return (queue ahead at post, fill time, how, sell volume traded at the bid before the fill), in lots."""
    ts, kind, side, tick, size, _ = cols
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    front = post = None
    traded = 0.0
    for t, k, s, p, q in zip(ts.tolist(), kind.tolist(), side.tolist(), tick.tolist(), size.tolist(), strict=True):
        if front is None and t > arrival:  # the order reaches the exchange after the events of its nanosecond
            front = post = bids.get(bid, 0.0) / lot
        if front is not None:
            if k == KIND_TRADE and s == -1 and p < bid:
                return post, t, "trade through", traded
            if k == KIND_TRADE and s == -1 and p == bid:
                traded += q / lot
                front -= q / lot
                if math.floor(-front + 0.5) >= 1:
                    return post, t, "trades at the level", traded
            if k == KIND_BOOK and s == 1 and p == bid:
                front = min(front, q / lot)
        if k == KIND_BOOK:
            book = bids if s == 1 else asks
            before = min(asks) if asks else None
            if q == 0.0:
                book.pop(p, None)
            else:
                book[p] = q
            if front is not None and s == -1 and asks and min(asks) <= bid and (before is None or min(asks) < before):
                return post, t, "best ask through", traded
        elif k == KIND_CLEAR:
            bids.clear()
            asks.clear()
    return post, None, "never", traded


def test_bid_at_the_touch_fills_only_once_the_trades_at_its_price_pass_the_queue_ahead(columns):
    instrument, cols = columns
    ex, bid, arrival = _post_at_touch(instrument, cols, 60)
    fills = px.fills_table(ex)
    post, t_fill, how, traded = _oracle(cols, instrument.lot_size, bid, arrival)
    # 707 lots (0.707 BTC) rest ahead at 61,815.0; 709 lots sold into the bid by the filling trade.
    assert bid == 618_150 and post == pytest.approx(707.0)
    assert how == "trades at the level" and traded == pytest.approx(709.0)
    assert fills["queue_at_post"].tolist() == pytest.approx([707.0])
    assert fills["ts_exch"].tolist() == [t_fill] and fills["ts_local"].tolist() == [t_fill + LATENCY_NS]
    assert t_fill - arrival == 178_000_000
    assert fills["qty"].tolist() == [1] and fills["maker"].tolist() == [True] and fills["price_tick"].tolist() == [bid]
    # Before the filling trade the sells at the bid had not yet passed the queue ahead by half a lot.
    ts, kind, side, tick, size, _ = cols
    before = (ts > arrival) & (ts < t_fill) & (kind == KIND_TRADE) & (side == -1) & (tick == bid)
    assert size[before].sum() / instrument.lot_size < post + 0.5


@pytest.mark.parametrize(("after_s", "how"), [(120, "trade through"), (200, "trade through")])
def test_fill_time_agrees_with_the_independent_replay(columns, after_s, how):
    instrument, cols = columns
    ex, bid, arrival = _post_at_touch(instrument, cols, after_s)
    post, t_fill, got_how, _ = _oracle(cols, instrument.lot_size, bid, arrival)
    fills = px.fills_table(ex)
    assert got_how == how
    assert fills["ts_exch"].tolist() == [t_fill]
    assert fills["queue_at_post"].tolist() == pytest.approx([post])
