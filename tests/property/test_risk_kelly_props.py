import math

import numpy as np
import pytest
import risk_oracle
from hypothesis import example, given
from hypothesis import strategies as st

from scalper.risk import PlannedFees, RiskConfig, RiskManager, kelly_fraction_star, kelly_size
from scalper.risk.intent import RejectReason
from scalper.risk.lots import exceeds, floor_to_lot, is_lot_multiple

LOTS = st.sampled_from([1e-8, 1e-5, 0.001, 0.01, 0.1, 1.0, 100.0])
PROBABILITY = st.floats(0.0, 1.0)

configs = st.builds(
    RiskConfig,
    kelly_fraction=st.floats(0.01, 1.0),
    take_profit_bps=st.floats(0.5, 200.0),
    stop_loss_bps=st.floats(0.5, 200.0),
    min_probability=st.floats(0.0, 0.5),
    max_position=st.floats(1e-3, 1e6),
    max_order_notional=st.floats(1.0, 1e9),
)


@given(
    p=PROBABILITY,
    price=st.floats(1e-3, 1e6),
    equity=st.floats(-1e6, 1e10),
    cfg=configs,
    fee_bps=st.floats(0.0, 20.0),
    lot=LOTS,
    held_fraction=st.floats(0.0, 1.5),
)
def test_kelly_size_is_non_negative_lot_multiple_within_limits(p, price, equity, cfg, fee_bps, lot, held_fraction):
    abs_position = held_fraction * cfg.max_position
    qty, reason = kelly_size(p, price, equity, cfg, fee_bps, lot, abs_position)
    assert qty >= 0.0
    assert is_lot_multiple(qty, lot)
    assert (reason is None) == (qty > 0.0)
    if qty > 0.0:
        assert not exceeds(abs_position + qty, cfg.max_position, lot)
        assert not exceeds(qty * price, cfg.max_order_notional, lot * price)


@given(p1=PROBABILITY, p2=PROBABILITY, b=st.floats(1e-3, 1e3))
def test_kelly_fraction_star_is_monotone_increasing_in_p(p1, p2, b):
    low, high = sorted((p1, p2))
    assert kelly_fraction_star(low, b) <= kelly_fraction_star(high, b)


@given(p=PROBABILITY, b=st.floats(1e-3, 1e3))
def test_kelly_fraction_star_is_at_most_one_and_at_least_minus_one_over_b(p, b):
    f = kelly_fraction_star(p, b)
    assert -1.0 / b - 1e-12 <= f <= 1.0


@given(n=st.integers(0, 10**10), lot=LOTS)
def test_whole_lot_counts_are_lot_multiples_and_floor_to_themselves(n, lot):
    qty = n * lot
    assert is_lot_multiple(qty, lot)
    assert round(floor_to_lot(qty, lot) / lot) == n


@given(n=st.integers(0, 10**8), lot=LOTS)
def test_half_lot_offsets_are_not_lot_multiples_and_floor_down(n, lot):
    qty = (n + 0.5) * lot
    assert not is_lot_multiple(qty, lot)
    assert round(floor_to_lot(qty, lot) / lot) == n


@given(
    p=st.one_of(PROBABILITY, st.sampled_from([0.5, 0.5000000000000001, math.nan, -0.1, 1.5])),
    price=st.one_of(st.floats(1e-3, 1e6), st.sampled_from([0.0, -1.0, math.inf, math.nan])),
    equity=st.one_of(st.floats(-1e6, 1e10), st.sampled_from([math.inf, math.nan])),
    cfg=configs,
    fee_bps=st.one_of(st.floats(0.0, 20.0), st.just(-0.5)),
    lot=LOTS,
    held_fraction=st.floats(0.0, 1.5),
)
def test_kelly_size_equals_the_plain_python_rule(p, price, equity, cfg, fee_bps, lot, held_fraction):
    abs_position = held_fraction * cfg.max_position
    try:
        want = risk_oracle.kelly(p, price, equity, abs_position, cfg, fee_bps, lot)
    except ValueError as exc:
        with pytest.raises(ValueError, match=f"{exc}="):
            kelly_size(p, price, equity, cfg, fee_bps, lot, abs_position)
        return
    assert kelly_size(p, price, equity, cfg, fee_bps, lot, abs_position) == want


@given(
    p=st.one_of(PROBABILITY, st.sampled_from([0.5, math.nan])),
    price=st.floats(1e-3, 1e6),
    equity=st.floats(-1e6, 1e10),
    cfg=configs,
    maker=st.one_of(st.floats(-3.0, 5.0), st.just(math.nan)),
    taker=st.one_of(st.floats(0.0, 20.0), st.just(-0.5)),
    lot=LOTS,
    held_fraction=st.floats(0.0, 1.5),
)
def test_maker_mode_sizing_equals_the_plain_python_rule(p, price, equity, cfg, maker, taker, lot, held_fraction):
    # Maker mode: maker fee (a rebate when negative) on the entry and the take-profit, taker on the stop-loss.
    abs_position = held_fraction * cfg.max_position
    fees = PlannedFees.maker(maker, taker)
    try:
        want = risk_oracle.kelly(p, price, equity, abs_position, cfg, tuple(fees), lot)
    except ValueError as exc:
        with pytest.raises(ValueError, match=f"{exc}="):
            kelly_size(p, price, equity, cfg, fees, lot, abs_position)
        return
    assert kelly_size(p, price, equity, cfg, fees, lot, abs_position) == want


@given(
    st.lists(st.one_of(st.floats(0.0, 1.0), st.sampled_from([math.nan, -0.1, 1.5])), min_size=1, max_size=50),
    st.floats(0.5, 100.0),
    st.floats(0.5, 100.0),
    st.floats(0.0, 0.6),
    st.floats(0.0, 5.0),
)
# A razor-thin edge: the stake at a modest equity is below one lot, which is not a refusal by p.
@example([0.5000000000000001], 1.0, 1.0, 0.0, 0.0)
def test_refusals_by_p_equal_the_scalar_rule_and_the_oracle(ps, tp, sl, min_p, fee):
    cfg = RiskConfig(take_profit_bps=tp, stop_loss_bps=sl, min_probability=min_p)
    got = RiskManager(cfg, tick_size=0.01, lot_size=0.001, fee_bps=fee).refusals_by_p(np.array(ps))
    p_only = {RejectReason.BELOW_MIN_PROBABILITY, RejectReason.KELLY_NON_POSITIVE, RejectReason.EDGE_BELOW_FEES}
    for p, code in zip(ps, got.tolist(), strict=True):
        if not 0.0 <= p <= 1.0:
            assert code == 0  # left to the entry, which refuses it as RISK_CHECK_ERROR
            continue
        # An equity so large that no positive Kelly stake rounds below one lot: a refusal then comes
        # from p alone or from the caps (which refusals_by_p leaves to the per-decision rule).
        _, reason = kelly_size(p, 100.0, 1e300, cfg, fee, 0.001, 0.0)
        assert code == (reason if reason in p_only else 0)
        _, oracle_reason = risk_oracle.kelly(p, 100.0, 1e300, 0.0, cfg, fee, 0.001)
        assert code == (oracle_reason if oracle_reason in p_only else 0)
