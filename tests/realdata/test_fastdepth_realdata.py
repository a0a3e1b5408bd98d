"""The numba depthUpdate scanner equals the general parser on every recorded Binance depthUpdate."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalper.ingest.binance.fastdepth import H_FINAL_ID, H_FIRST_ID, H_PREV_FINAL_ID, DepthFrameParser
from scalper.ingest.binance.messages import DepthUpdate, Market
from scalper.ingest.binance.normalise import EventBuffer
from scalper.ingest.binance.parse import parse_message
from scalper.ingest.binance.recording import Recording
from scalper.ingest.binance.specs import KNOWN_TICK_SIZES

pytestmark = pytest.mark.realdata

FILES = {
    "binance_usdm/ethusdt_20240719.gz": (Market.USDM, "ETHUSDT"),
    "binance_usdm/btcusdt_20240808.gz": (Market.USDM, "BTCUSDT"),
    "binance_spot/btcusdt_20240808.gz": (Market.SPOT, "BTCUSDT"),
    "binance_coinm/ethusd_perp_20240808.gz": (Market.COINM, "ETHUSD_PERP"),
}


@pytest.mark.parametrize("name", sorted(FILES))
def test_fast_scanner_equals_general_parser(data_dir, name):
    path = Path(data_dir) / "hftbacktest" / name
    if not path.exists():
        pytest.skip(f"{path} not found")
    market, symbol = FILES[name]
    tick = KNOWN_TICK_SIZES[(market, symbol)]
    fast = DepthFrameParser(tick)
    slow = EventBuffer(8192)
    frames = handled = 0
    for line in Recording([path]):
        if b'"depthUpdate"' not in line.raw:
            continue
        frames += 1
        msg = parse_message(line.raw)
        assert isinstance(msg, DepthUpdate)
        n = fast.parse(line.raw)
        assert n >= 0, f"frame {frames} of {name} left to the general parser"
        handled += 1
        slow.truncate(0)
        slow.append_diff(msg, 0)
        want = slow.columns()
        ts, kind, side, ticks, size, flags = fast.columns(n)
        assert np.array_equal(ts, want["ts_event"]) and np.array_equal(kind, want["kind"])
        assert np.array_equal(side, want["side"]) and np.array_equal(flags, want["flags"])
        assert np.array_equal(ticks, np.rint(want["price"] / tick).astype(np.int64))
        assert np.array_equal(size, want["size"])  # bit-identical floats
        h = fast.header
        assert (h[H_FIRST_ID], h[H_FINAL_ID]) == (msg.first_update_id, msg.final_update_id)
        assert h[H_PREV_FINAL_ID] == (-1 if msg.prev_final_update_id is None else msg.prev_final_update_id)
    assert frames > 1000
    assert handled == frames
