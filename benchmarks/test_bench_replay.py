"""Throughput of the batch path and the full backtest, and per-event latency of the live step, on GOOG level 10.

Run: ``python -m pytest benchmarks --benchmark-enable``. Each benchmark checks its result after timing.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from scalper.backtest.driver import run_backtest
from scalper.engine.config import EngineConfig
from scalper.features.batch import compute_features
from scalper.features.kernels import PRE_MASK, FeatureState, step

pytestmark = pytest.mark.realdata


def _percentiles_ns(samples: list[int]) -> dict[str, float]:
    a = np.asarray(samples, dtype=np.float64)
    return {
        "p50_ns": float(np.percentile(a, 50)),
        "p99_ns": float(np.percentile(a, 99)),
        "p999_ns": float(np.percentile(a, 99.9)),
        "max_ns": float(a.max()),
    }


def _record_rate(benchmark, events: int) -> None:
    # stats is None under --benchmark-disable (the suite then runs each benchmark once as a test).
    if benchmark.stats is not None:
        benchmark.extra_info["events"] = events
        benchmark.extra_info["events_per_second"] = events / benchmark.stats.stats.median


def test_batch_path_book_and_features(benchmark, goog10):
    fm = benchmark(compute_features, goog10)
    _record_rate(benchmark, len(goog10))
    assert len(fm.ts) == 29_000
    assert np.isfinite(fm.X).all()


def test_live_step_per_event_latency(benchmark, goog10):
    ts, kind, side, ticks, size, flags = (
        goog10.ts_event.tolist(),
        goog10.kind.tolist(),
        goog10.side.tolist(),
        goog10.price_tick.tolist(),
        goog10.size.tolist(),
        goog10.flags.tolist(),
    )

    def replay():
        state = FeatureState()
        arrays = state.arrays()
        feat = state.feat
        samples = []
        clock = time.perf_counter_ns
        for i in range(len(ts)):
            t0 = clock()
            while step(*arrays, ts[i], kind[i], side[i], ticks[i], size[i], flags[i], feat) & PRE_MASK:
                pass
            samples.append(clock() - t0)
        return state, samples

    state, samples = benchmark.pedantic(replay, rounds=3, iterations=1)
    benchmark.extra_info.update(_percentiles_ns(samples))
    _record_rate(benchmark, len(ts))
    batch = FeatureState()
    compute_features(goog10, batch)
    assert np.array_equal(state.n, batch.n)
    assert np.array_equal(state.px[:, :10], batch.px[:, :10]) and np.array_equal(state.sz[:, :10], batch.sz[:, :10])
    assert np.array_equal(state.ist, batch.ist)


def test_full_backtest_throughput(benchmark, goog10, goog10_models):
    cfg = EngineConfig()
    result = benchmark.pedantic(run_backtest, args=(goog10, goog10_models, cfg), rounds=3, iterations=1)
    _record_rate(benchmark, len(goog10))
    assert result.events == len(goog10)
    assert len(result.core.predictions.ts) == 29_000
