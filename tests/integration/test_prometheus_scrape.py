"""A real Prometheus scrapes the engine's /metrics and reads back, through its query API, what was set."""

from __future__ import annotations

import math
import time

from scalper.engine.metrics import EngineMetrics, serve
from scalper.exec.orders import OrderStatus
from scalper.risk.intent import TradingState

_SCRAPE_WAIT_S = 30.0
_DECISIONS = 7
_SPREAD_OVER_S = 3.0  # the updates straddle several 1 s scrapes


def _wait_for(prom, promql: str, accept, what: str) -> float:
    """Poll ``prom.value(promql)`` until ``accept(value)``; fail after 30 s naming ``what``."""
    deadline = time.monotonic() + _SCRAPE_WAIT_S
    value = None
    while time.monotonic() < deadline:
        value = prom.value(promql)
        if value is not None and accept(value):
            return value
        time.sleep(0.2)
    raise AssertionError(f"{what}: {promql!r} was {value!r} after {_SCRAPE_WAIT_S:.0f} s")


def test_prometheus_scrape_reads_back_counters_gauges_and_histograms(prometheus_server):
    metrics = EngineMetrics()
    server, port = serve(metrics)
    try:
        prom = prometheus_server([f"127.0.0.1:{port}"])
        _wait_for(prom, "scalper_decisions_total", lambda v: True, "first scrape")

        latencies_ns = [3_000 + 11_000 * i for i in range(_DECISIONS)]  # 3 µs .. 69 µs
        for ns in latencies_ns:
            metrics.decisions.inc()
            metrics.events_book.inc(3)
            metrics.observe_tick_to_decision(ns)
            time.sleep(_SPREAD_OVER_S / _DECISIONS)
        metrics.orders[OrderStatus.FILLED].inc(2)
        metrics.position.set(-2.5)
        metrics.trading_state.set(TradingState.REDUCING_ONLY)
        metrics.set_model("v1", [5, 10, 30])
        done_s = time.time()

        # A scrape that started after the last update has read all of them.
        _wait_for(prom, "timestamp(scalper_decisions_total)", lambda ts: ts > done_s, "scrape after updates")

        job = prom.JOB
        assert prom.value(f'up{{job="{job}"}}') == 1.0
        assert prom.value("scalper_decisions_total") == _DECISIONS
        assert prom.value("resets(scalper_decisions_total[5m])") == 0.0
        assert prom.value('scalper_events_total{kind="book"}') == 3 * _DECISIONS
        assert prom.value('scalper_events_total{kind="trade"}') == 0.0
        assert prom.value('scalper_orders_total{status="filled"}') == 2.0
        assert prom.value("scalper_position") == -2.5
        assert prom.value("scalper_trading_state") == 1.0
        assert prom.value('scalper_model_info{version="v1",horizons="5,10,30"}') == 1.0

        assert prom.value("scalper_tick_to_decision_seconds_count") == _DECISIONS
        assert math.isclose(prom.value("scalper_tick_to_decision_seconds_sum"), sum(latencies_ns) / 1e9, rel_tol=1e-9)
        buckets = {
            float(r["metric"]["le"]): float(r["value"][1])
            for r in prom.query("scalper_tick_to_decision_seconds_bucket")
        }
        assert buckets[5e-6] == 1  # 3 µs
        assert buckets[2e-5] == 2  # + 14 µs
        assert buckets[1e-4] == _DECISIONS
        assert buckets[math.inf] == _DECISIONS
    finally:
        server.shutdown()
        server.server_close()
