import math

import pytest
from pydantic import ValidationError

from scalper.risk import RiskConfig


def test_risk_config_defaults_match_documented_values():
    cfg = RiskConfig()
    assert cfg.kelly_fraction == 0.25
    assert cfg.take_profit_bps == 10.0
    assert cfg.stop_loss_bps == 10.0
    assert cfg.min_probability == 0.0
    assert cfg.max_position == 10.0
    assert cfg.max_order_notional == 100_000.0
    assert cfg.max_orders_per_second == 5
    assert cfg.stale_book_ms == 5000.0
    assert cfg.max_spread_ticks == 100
    assert cfg.max_drawdown == 10_000.0
    assert cfg.initial_equity == 1_000_000.0


def test_risk_config_with_unknown_key_fails():
    with pytest.raises(ValidationError, match="extra_forbidden"):
        RiskConfig(max_posiiton=5.0)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("kelly_fraction", 0.0),
        ("kelly_fraction", 1.01),
        ("take_profit_bps", 0.0),
        ("stop_loss_bps", -1.0),
        ("min_probability", 1.5),
        ("max_position", 0.0),
        ("max_order_notional", -1.0),
        ("max_orders_per_second", 0),
        ("stale_book_ms", 0.0),
        ("max_spread_ticks", 0),
        ("max_drawdown", 0.0),
        ("initial_equity", 0.0),
        ("max_position", math.inf),
        ("max_drawdown", math.nan),
    ],
)
def test_risk_config_with_out_of_range_value_fails(field, value):
    with pytest.raises(ValidationError, match=field):
        RiskConfig(**{field: value})


def test_risk_config_with_full_kelly_is_accepted():
    assert RiskConfig(kelly_fraction=1.0).kelly_fraction == 1.0


def test_risk_config_is_frozen():
    cfg = RiskConfig()
    with pytest.raises(ValidationError, match="frozen"):
        cfg.max_position = 1.0
    assert cfg.max_position == 10.0
