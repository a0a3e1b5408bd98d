"""Peer comparison: hftbacktest replaying the same Binance USD-M recording with a no-op strategy.

hftbacktest pins numpy < 2.3 and numba ~0.61, so it runs in its own environment (the ``peer`` extra
documents the version); this script imports nothing from scalper:

    python3 -m venv /tmp/hbtenv && /tmp/hbtenv/bin/pip install 'hftbacktest==2.4.4'
    /tmp/hbtenv/bin/python benchmarks/peer_hftbacktest.py \
        ../shared/data/hftbacktest/binance_usdm/ethusdt_20240718.gz ...

It converts the recording with hftbacktest's own documented converter
(``hftbacktest.data.utils.binancefutures.convert``), then times ``elapse`` over the whole file in
250 ms steps (scalper's decision grid) with a strategy that does nothing, and prints events/s.
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.data.utils import binancefutures
from numba import njit


@njit
def _noop(hbt, step_ns):
    steps = 0
    while hbt.elapse(step_ns) == 0:
        steps += 1
    return steps


def main(files: list[str]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        parts = []
        for k, f in enumerate(files):
            out = str(Path(tmp) / f"part{k}.npz")
            parts.append(binancefutures.convert(f, output_filename=out, combined_stream=True))
        data = np.concatenate(parts)
        rows = len(data)
        best = float("inf")
        for _ in range(3):
            asset = (
                BacktestAsset()
                .data([data])
                .linear_asset(1.0)
                .constant_order_latency(1_000_000, 1_000_000)
                .risk_adverse_queue_model()
                .no_partial_fill_exchange()
                .trading_value_fee_model(0.0, 0.0)
                .tick_size(0.01)
                .lot_size(0.001)
            )
            hbt = HashMapMarketDepthBacktest([asset])
            t0 = time.perf_counter()
            steps = _noop(hbt, 250_000_000)
            best = min(best, time.perf_counter() - t0)
            hbt.close()
        print(
            f"hftbacktest no-op replay: {rows:,} events in {best:.3f} s = {rows / best:,.0f} events/s ({steps} steps)"
        )


if __name__ == "__main__":
    main(sys.argv[1:])
