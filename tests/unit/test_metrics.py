"""Contract of engine/metrics.py: names, types, labels, units and the /metrics endpoint."""

from __future__ import annotations

import itertools
import math
import urllib.request

import pytest
from prometheus_client import CollectorRegistry

from scalper.engine.metrics import JOURNAL_BUCKETS_S, LATENCY_BUCKETS_S, EngineMetrics, serve, snapshot
from scalper.exec.orders import OrderStatus
from scalper.risk.intent import RejectReason, TradingState

# Exported sample name -> (client family type, label names). Counter families drop "_total" and
# the Info family drops "_info" in collect(), so the table is keyed by what Prometheus sees.
EXPECTED = {
    "scalper_events_total": ("counter", {"kind"}),
    "scalper_rejected_messages_total": ("counter", {"reason"}),
    "scalper_sequence_gaps_total": ("counter", set()),
    "scalper_resyncs_total": ("counter", set()),
    "scalper_reconnects_total": ("counter", set()),
    "scalper_decisions_total": ("counter", set()),
    "scalper_decisions_prepared_total": ("counter", set()),
    "scalper_orders_total": ("counter", {"status"}),
    "scalper_risk_rejections_total": ("counter", {"reason"}),
    "scalper_inference_errors_total": ("counter", set()),
    "scalper_journal_errors_total": ("counter", set()),
    "scalper_book_age_seconds": ("gauge", set()),
    "scalper_position": ("gauge", set()),
    "scalper_realized_pnl": ("gauge", set()),
    "scalper_unrealized_pnl": ("gauge", set()),
    "scalper_drawdown": ("gauge", set()),
    "scalper_trading_state": ("gauge", set()),
    "scalper_book_valid": ("gauge", set()),
    "scalper_journal_writable": ("gauge", set()),
    "scalper_model_info": ("info", {"version", "horizons"}),
    "scalper_tick_to_decision_seconds_count": ("histogram", set()),
    "scalper_inference_seconds_count": ("histogram", set()),
    "scalper_journal_write_seconds_count": ("histogram", set()),
}


@pytest.fixture
def metrics() -> EngineMetrics:
    """Return metrics on a fresh registry, with the on-demand label sets given one child each."""
    m = EngineMetrics()
    m.count_rejected_message("bad_json")
    m.set_model("v1", [5, 10, 30])
    return m


def _samples(m: EngineMetrics) -> dict[str, tuple[str, set[str]]]:
    """Map every sample name to (family type, label names), leaving out histogram buckets."""
    out = {}
    for family in m.registry.collect():
        for s in family.samples:
            if not s.name.endswith("_bucket"):
                out[s.name] = (family.type, set(s.labels))
    return out


def _buckets(m: EngineMetrics, name: str) -> dict[float, float]:
    """Return upper bound (s, +inf last) -> cumulative count of histogram ``name``."""
    return {
        float(s.labels["le"]): s.value
        for family in m.registry.collect()
        for s in family.samples
        if s.name == f"{name}_bucket"
    }


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_metric_exists_with_type_and_labels(metrics, name):
    assert _samples(metrics)[name] == EXPECTED[name]


def test_all_metrics_carry_prefix_and_unit_in_help(metrics):
    for family in metrics.registry.collect():
        assert family.name.startswith("scalper_")
        unit = family.documentation.rsplit(";", 1)[-1].strip(" .")
        assert unit, f"{family.name} help text gives no unit: {family.documentation!r}"


def test_labelled_children_exist_before_first_event():
    values = snapshot(EngineMetrics())
    for kind in ("book", "trade", "clear"):
        assert values[f'scalper_events_total{{kind="{kind}"}}'] == 0.0
    for status in OrderStatus:
        assert values[f'scalper_orders_total{{status="{status.name.lower()}"}}'] == 0.0
    for reason in RejectReason:
        assert values[f'scalper_risk_rejections_total{{reason="{reason.name.lower()}"}}'] == 0.0


def test_bound_children_increment_their_series(metrics):
    metrics.events_by_kind[1].inc()
    metrics.events_book.inc(3)
    metrics.orders[OrderStatus.FILLED].inc()
    metrics.risk_rejections[RejectReason.MAX_POSITION].inc(2)
    metrics.count_rejected_message("bad_json")
    get = metrics.registry.get_sample_value
    assert get("scalper_events_total", {"kind": "trade"}) == 1.0
    assert get("scalper_events_total", {"kind": "book"}) == 3.0
    assert get("scalper_orders_total", {"status": "filled"}) == 1.0
    assert get("scalper_orders_total", {"status": "rejected"}) == 0.0
    assert get("scalper_risk_rejections_total", {"reason": "max_position"}) == 2.0
    assert get("scalper_rejected_messages_total", {"reason": "bad_json"}) == 2.0


def test_counter_with_negative_increment_raises_and_keeps_value(metrics):
    metrics.decisions.inc(5)
    for counter in (metrics.decisions, metrics.events_book, metrics.orders[OrderStatus.NEW]):
        with pytest.raises(ValueError):
            counter.inc(-1)
    assert metrics.registry.get_sample_value("scalper_decisions_total") == 5.0


def test_latency_buckets_cover_1us_to_100ms_in_1_2_5_steps():
    assert LATENCY_BUCKETS_S[0] == 1e-6
    assert LATENCY_BUCKETS_S[-1] == 1e-1
    assert len(LATENCY_BUCKETS_S) == 16  # 5 decades x 3 + the closing 100 ms
    for lo, hi in itertools.pairwise(LATENCY_BUCKETS_S):
        assert hi / lo == pytest.approx(2.0) or hi / lo == pytest.approx(2.5)
    assert JOURNAL_BUCKETS_S[: len(LATENCY_BUCKETS_S)] == LATENCY_BUCKETS_S
    assert JOURNAL_BUCKETS_S[-1] == 1.0


@pytest.mark.parametrize(
    ("name", "top_s"),
    [
        ("scalper_tick_to_decision_seconds", 0.1),
        ("scalper_inference_seconds", 0.1),
        ("scalper_journal_write_seconds", 1.0),
    ],
)
def test_histogram_exports_buckets_from_1us_to_its_top(metrics, name, top_s):
    bounds = list(_buckets(metrics, name))
    assert bounds[0] == 1e-6
    assert bounds[-2] == top_s
    assert math.isinf(bounds[-1])


def test_observe_helpers_convert_ns_to_seconds_and_bin(metrics):
    metrics.observe_tick_to_decision(1_000)  # exactly 1 µs: the first bucket is inclusive
    metrics.observe_tick_to_decision(40_000)
    metrics.observe_tick_to_decision(200_000_000)  # past 100 ms: only +Inf
    metrics.observe_inference(15_000)
    metrics.observe_journal_write(400_000)
    get = metrics.registry.get_sample_value
    assert get("scalper_tick_to_decision_seconds_count") == 3.0
    assert get("scalper_tick_to_decision_seconds_sum") == pytest.approx(0.200041)
    buckets = _buckets(metrics, "scalper_tick_to_decision_seconds")
    assert buckets[1e-6] == 1.0
    assert buckets[2e-5] == 1.0
    assert buckets[5e-5] == 2.0
    assert buckets[0.1] == 2.0
    assert buckets[math.inf] == 3.0
    assert get("scalper_inference_seconds_sum") == pytest.approx(1.5e-5)
    assert _buckets(metrics, "scalper_journal_write_seconds")[5e-4] == 1.0


def test_gauges_take_levels_in_their_units(metrics):
    metrics.position.set(-2.5)
    metrics.trading_state.set(TradingState.REDUCING_ONLY)
    metrics.book_valid.set(False)
    metrics.set_book_age_ns(1_500_000)
    get = metrics.registry.get_sample_value
    assert get("scalper_position") == -2.5
    assert get("scalper_trading_state") == 1.0
    assert get("scalper_book_valid") == 0.0
    assert get("scalper_book_age_seconds") == pytest.approx(1.5e-3)


def test_set_model_replaces_the_info_labels(metrics):
    metrics.set_model("v2", [2.5, 30.0])
    samples = [s for f in metrics.registry.collect() for s in f.samples if s.name == "scalper_model_info"]
    assert [(s.labels, s.value) for s in samples] == [({"version": "v2", "horizons": "2.5,30"}, 1.0)]


def test_snapshot_matches_registry_values(metrics):
    metrics.decisions.inc(7)
    metrics.position.set(3.0)
    metrics.observe_inference(20_000)
    values = snapshot(metrics)
    get = metrics.registry.get_sample_value
    assert values["scalper_decisions_total"] == get("scalper_decisions_total") == 7.0
    assert values["scalper_position"] == 3.0
    assert values["scalper_inference_seconds_count"] == 1.0
    assert values['scalper_model_info{version="v1",horizons="5,10,30"}'] == 1.0
    assert not any(k.endswith("_created") or "_bucket" in k for k in values)


def test_two_engines_have_separate_registries():
    a, b = EngineMetrics(), EngineMetrics()
    a.decisions.inc()
    assert b.registry.get_sample_value("scalper_decisions_total") == 0.0


def test_second_engine_on_same_registry_raises():
    registry = CollectorRegistry()
    EngineMetrics(registry)
    with pytest.raises(ValueError, match="Duplicated"):
        EngineMetrics(registry)


def test_http_endpoint_on_loopback_serves_text_format(metrics):
    metrics.decisions.inc(4)
    server, port = serve(metrics)
    try:
        assert port != 0
        assert server.server_address[0] == "127.0.0.1"
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5.0) as resp:
            content_type = resp.headers["Content-Type"]
            body = resp.read().decode()
    finally:
        server.shutdown()
        server.server_close()
    assert content_type.startswith("text/plain; version=0.0.4")
    assert "# TYPE scalper_decisions_total counter" in body
    assert "scalper_decisions_total 4.0" in body
    assert "# TYPE scalper_model_info gauge" in body
    assert "# TYPE scalper_tick_to_decision_seconds histogram" in body
    for name in EXPECTED:
        assert f"\n{name}" in body, name
