"""Throughput of the queue-position market maker (backtest/maker_peer.py on exec/passive.py), issue 14's speed figure.

The full run of the peer comparison's strategy: local book, exchange book with the risk-averse queue,
latencies, requests and responses, on the Binance ETHUSDT day the comparison uses and on the NASDAQ GOOG
level-10 session. With hftbacktest's interpreter present (``$SCALPER_PEER_PYTHON``, else
/tmp/hbtenv/bin/python), the last benchmark also times hftbacktest on the same strategy and records the
ratio. Each benchmark checks its result after timing; nothing here asserts a speed.

Run: ``python -m pytest benchmarks/test_bench_maker.py --benchmark-enable``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from scalper.backtest.maker_peer import MakerPeerParams, run_maker_peer
from scalper.benchmarks.peer_maker import DEFAULT_FILES, compare, default_peer_python, with_warmup

pytestmark = pytest.mark.realdata


@pytest.fixture(scope="module")
def eth(data_dir):
    from scalper.ingest.binance import import_binance

    return import_binance([data_dir / f for f in DEFAULT_FILES]).data


def _bench_maker(benchmark, data):
    p = with_warmup(data, MakerPeerParams())
    first = run_maker_peer(data, p)  # compiles (or loads) the kernels outside the timing
    res = benchmark.pedantic(run_maker_peer, args=(data, p), rounds=5, iterations=1)
    if benchmark.stats is not None:  # None under --benchmark-disable
        benchmark.extra_info.update(
            events=len(data),
            events_per_second=len(data) / benchmark.stats.stats.median,
            loop_events_per_second_best=max(res.events_per_s, first.events_per_s),
            fills=len(res.fills["exch_ts"]),
        )
    assert res.fills["order_id"].tolist() == first.fills["order_id"].tolist()  # deterministic
    assert len(res.fills["exch_ts"]) > 100 and res.fills["maker"].all()
    return res


def test_maker_on_ethusdt(benchmark, eth):
    res = _bench_maker(benchmark, eth)
    assert res.local_offset_ns == 1_523_633_816  # the two files' clock shift (hftbacktest's as well)


def test_maker_on_goog_level_10(benchmark, goog10):
    res = _bench_maker(benchmark, goog10)
    assert res.local_offset_ns == 0  # LOBSTER records no receive time


def test_maker_against_hftbacktest_on_ethusdt(benchmark, data_dir):
    python = default_peer_python()
    if python is None or not python.is_file():
        pytest.skip("no hftbacktest interpreter: set SCALPER_PEER_PYTHON (see benchmarks/peer_hftbacktest.py)")
    c = benchmark.pedantic(compare, args=([Path(data_dir) / f for f in DEFAULT_FILES], python), rounds=1, iterations=1)
    benchmark.extra_info.update(
        scalper_events_per_second=c.scalper.events_per_s,
        peer_events_per_second=c.peer.events_per_s,
        speed_ratio=c.speed_ratio,
        share_identical=c.share_identical,
    )
    assert c.passes(), c.table()
