"""Binance feed stages on a real USD-M BTCUSDT recording: parse + sequence + apply per depthUpdate, and the importer.

Run: ``python -m pytest benchmarks/test_bench_binance.py --benchmark-enable``.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from scalper.ingest.binance import (
    BinanceOrderBookSequencer,
    DepthSnapshot,
    DepthUpdate,
    EventBuffer,
    LocalBook,
    Market,
    Recording,
    import_binance,
    parse_message,
)

pytestmark = pytest.mark.realdata

FILE = "hftbacktest/binance_usdm/btcusdt_20240808.gz"


@pytest.fixture(scope="module")
def frames(data_dir):
    """The diffs buffered while the REST snapshot was in flight, the snapshot, and every diff after it."""
    snapshot, before, diffs = None, [], []
    for line in Recording([data_dir / FILE]):
        if snapshot is None:
            msg = parse_message(line.raw)
            if isinstance(msg, DepthSnapshot):
                snapshot = msg
            elif isinstance(msg, DepthUpdate):
                before.append(msg)
        elif b"depthUpdate" in line.raw:
            diffs.append(line.raw)
    return before, snapshot, diffs


def test_parse_sequence_apply_per_depth_update(benchmark, frames):
    before, snapshot, diffs = frames

    def run():
        seq = BinanceOrderBookSequencer(Market.USDM)
        book = LocalBook(0.1)
        events = EventBuffer(4096)
        for d in before:
            seq.on_diff(d)
        book.apply_snapshot(snapshot)
        for d in seq.on_snapshot(snapshot):
            book.apply_diff(d)
        samples = np.empty(len(diffs), dtype=np.int64)
        clock = time.perf_counter_ns
        for k, raw in enumerate(diffs):
            t0 = clock()
            msg = parse_message(raw)
            for d in seq.on_diff(msg):  # type: ignore[arg-type]  # recorded depthUpdates; no check in the timed span
                book.apply_diff(d)
                events.append_diff(d, 0)
            events.truncate(0)
            samples[k] = clock() - t0
        return seq, book, samples

    seq, book, samples = benchmark.pedantic(run, rounds=3, iterations=1)
    benchmark.extra_info.update(
        frames=len(diffs),
        p50_us=float(np.percentile(samples, 50)) / 1e3,
        p99_us=float(np.percentile(samples, 99)) / 1e3,
        p999_us=float(np.percentile(samples, 99.9)) / 1e3,
    )
    assert seq.state.name == "SYNCED"
    assert not book.is_crossed()
    last = parse_message(diffs[-1])
    assert isinstance(last, DepthUpdate)
    assert seq.last_update_id == last.final_update_id


def test_importer_messages_per_second(benchmark, data_dir):
    res = benchmark.pedantic(import_binance, args=([data_dir / FILE],), rounds=2, iterations=1)
    n = sum(res.messages.values())
    if benchmark.stats is not None:
        benchmark.extra_info.update(messages=n, messages_per_second=n / benchmark.stats.stats.median)
    assert n == 93_954
    assert res.gaps == 0 and res.ticker_mismatches == 0
