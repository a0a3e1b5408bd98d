"""What the feed counts and logs: request weight by limit, disconnect reasons, rate-limited log lines,
the Prometheus counters the daemon exports them to, and the [feed] config section."""

from __future__ import annotations

import logging

import pytest
import websockets
from websockets.frames import Close, CloseCode

from scalper.engine.config import ConfigError, load_config
from scalper.engine.metrics import EngineMetrics, snapshot
from scalper.ingest.binance.config import FeedConfig
from scalper.ingest.binance.feed import depth_request_weight, disconnect_reason
from scalper.ingest.binance.messages import Market
from scalper.ingest.binance.ratelog import ReasonLog


@pytest.mark.parametrize(
    ("market", "limit", "weight"),
    [
        # Binance Derivatives docs, "Order Book" (GET /fapi/v1/depth, /dapi/v1/depth).
        (Market.USDM, 5, 2),
        (Market.USDM, 50, 2),
        (Market.USDM, 100, 5),
        (Market.USDM, 500, 10),
        (Market.USDM, 1000, 20),
        (Market.COINM, 1000, 20),
        (Market.COINM, 20, 2),
        # Binance Spot API, "Order book" (GET /api/v3/depth).
        (Market.SPOT, 1, 5),
        (Market.SPOT, 100, 5),
        (Market.SPOT, 101, 25),
        (Market.SPOT, 500, 25),
        (Market.SPOT, 1000, 50),
        (Market.SPOT, 5000, 250),
    ],
)
def test_depth_request_weight_follows_binance_table(market, limit, weight):
    assert depth_request_weight(market, limit) == weight


@pytest.mark.parametrize(
    ("exc", "reason"),
    [
        (
            websockets.ConnectionClosedError(None, Close(CloseCode.MESSAGE_TOO_BIG, "frame exceeds limit")),
            "frame_too_large",
        ),
        (websockets.ConnectionClosedError(Close(CloseCode.GOING_AWAY, ""), None), "closed_by_venue"),
        (websockets.ConnectionClosedError(None, None), "connection_lost"),
        (ConnectionRefusedError(111, "refused"), "network"),
        (TimeoutError(), "timeout"),
    ],
)
def test_disconnect_reason_names_the_cause(exc, reason):
    assert disconnect_reason(exc) == reason


def test_reason_log_lets_one_line_per_reason_through_per_interval_and_counts_the_rest(caplog):
    now = [0.0]
    rl = ReasonLog(logging.getLogger("test.ratelog"), interval_s=10.0, clock=lambda: now[0])
    with caplog.at_level(logging.WARNING, logger="test.ratelog"):
        assert rl.warning("gap", "gap %d", 1)
        assert not rl.warning("gap", "gap %d", 2)
        assert not rl.warning("gap", "gap %d", 3)
        assert rl.warning("bad_json", "bad json")  # another reason is not held back
        now[0] = 10.0
        assert rl.warning("gap", "gap %d", 4)
        assert not rl.warning("gap", "gap %d", 5)
    assert [r.getMessage() for r in caplog.records] == [
        "gap 1",
        "bad json",
        "gap 4 (2 more gap since the last such line)",
    ]


def test_feed_counters_are_exported_with_units():
    m = EngineMetrics()
    m.snapshot_requests.inc(2)
    m.snapshot_request_weight.inc(40)
    m.feed_disconnects.labels("frame_too_large").inc()
    values = snapshot(m)
    assert values["scalper_snapshot_requests_total"] == 2
    assert values["scalper_snapshot_request_weight_total"] == 40
    assert values['scalper_feed_disconnects_total{reason="frame_too_large"}'] == 1
    helps = {f.name: f.documentation for f in m.registry.collect()}
    assert helps["scalper_snapshot_request_weight"].endswith("request weight units.")
    assert helps["scalper_feed_disconnects"].endswith("count.")


def test_feed_section_loads_and_refuses_a_nonsense_band(tmp_path):
    cfg = tmp_path / "c.toml"
    cfg.write_text("[feed]\nmax_frame_bytes = 1048576\nprice_band = 50.0\n")
    feed = load_config(cfg).feed
    assert feed == FeedConfig(max_frame_bytes=1 << 20, price_band=50.0)
    cfg.write_text("[feed]\nprice_band = 0.5\n")
    with pytest.raises(ConfigError, match=r"feed\.price_band"):
        load_config(cfg)


def test_default_config_file_lists_the_feed_defaults():
    from pathlib import Path

    default = load_config(Path(__file__).resolve().parents[2] / "configs" / "default.toml")
    assert default.feed == FeedConfig()
