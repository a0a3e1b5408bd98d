import math

import pytest

from scalper.risk import (
    PlannedFees,
    RejectReason,
    RiskConfig,
    RiskManager,
    expected_edge_bps,
    kelly_fraction_star,
    kelly_size,
    round_trip_fee_bps,
)


def size(*args) -> float:
    qty, _ = kelly_size(*args)
    return qty


# A BTC-like instrument: 2:1 take-profit to stop-loss, 1 bp taker fee, 0.001 lots.
WIDE = RiskConfig(take_profit_bps=20.0, stop_loss_bps=10.0, max_position=1000.0, max_order_notional=1e8)


def test_kelly_with_even_odds_and_p_half_is_zero():
    assert kelly_fraction_star(0.5, 1.0) == 0.0


def test_kelly_with_even_odds_and_p_0_6_is_0_2():
    assert kelly_fraction_star(0.6, 1.0) == pytest.approx(0.2)


def test_kelly_with_two_to_one_odds_and_p_0_6_is_0_4():
    assert kelly_fraction_star(0.6, 2.0) == pytest.approx(0.4)


def test_kelly_at_certain_win_is_one_and_at_certain_loss_is_minus_one_over_b():
    assert kelly_fraction_star(1.0, 3.0) == 1.0
    assert kelly_fraction_star(0.0, 4.0) == -0.25


@pytest.mark.parametrize(
    ("p", "b"), [(-0.01, 1.0), (1.01, 1.0), (math.nan, 1.0), (0.5, 0.0), (0.5, -1.0), (0.5, math.inf), (0.5, math.nan)]
)
def test_kelly_with_out_of_range_input_raises(p, b):
    with pytest.raises(ValueError, match="p=|b="):
        kelly_fraction_star(p, b)


def test_expected_edge_with_p_0_6_and_half_bp_fee_is_one_bp():
    # 0.6 * 10 - 0.4 * 10 - 2 * 0.5
    assert expected_edge_bps(0.6, 10.0, 10.0, 0.5) == pytest.approx(1.0)


def test_expected_edge_when_fees_equal_gross_edge_is_zero():
    assert expected_edge_bps(0.6, 10.0, 10.0, 1.0) == pytest.approx(0.0)


def test_expected_edge_with_p_outside_unit_interval_raises():
    with pytest.raises(ValueError, match="p="):
        expected_edge_bps(1.2, 10.0, 10.0, 1.0)


def test_kelly_size_uncapped_is_stake_over_loss_per_unit():
    # Net payoff b = (20 - 2) / (10 + 2) = 1.5; f* = 0.55 - 0.45 / 1.5 = 0.25; stake = 0.25 * 0.25 * 100_000
    # = 6250 quote; loss per unit = 50_000 * (10 + 2 * 1) / 1e4 = 60 quote; 6250 / 60 = 104.1666 -> 104.166.
    qty = size(0.55, 50_000.0, 100_000.0, WIDE, 1.0, 0.001, 0.0)
    assert qty == pytest.approx(104.166)


def test_kelly_size_scales_linearly_with_kelly_fraction():
    half = WIDE.model_copy(update={"kelly_fraction": 0.125})
    assert size(0.55, 50_000.0, 100_000.0, half, 1.0, 0.001, 0.0) == pytest.approx(52.083)


def test_kelly_size_is_capped_by_order_notional():
    cfg = WIDE.model_copy(update={"max_order_notional": 100_000.0})
    assert size(0.55, 50_000.0, 100_000.0, cfg, 1.0, 0.001, 0.0) == pytest.approx(2.0)


def test_kelly_size_is_capped_by_position_room():
    cfg = WIDE.model_copy(update={"max_position": 1.5})
    assert size(0.55, 50_000.0, 100_000.0, cfg, 1.0, 0.001, 0.5) == pytest.approx(1.0)


def test_kelly_size_with_even_odds_and_p_half_is_zero():
    result = kelly_size(0.5, 100.0, 1e6, RiskConfig(), 0.0, 0.01, 0.0)
    assert result == (0.0, RejectReason.KELLY_NON_POSITIVE)


def test_kelly_size_with_positive_kelly_but_edge_below_fees_is_zero():
    # f* = 0.1 > 0, but the edge is 0.55 * 10 - 0.45 * 10 - 2 * 1 = -1 bp.
    assert kelly_size(0.55, 100.0, 1e6, RiskConfig(), 1.0, 0.01, 0.0) == (0.0, RejectReason.EDGE_BELOW_FEES)


def test_kelly_size_below_min_probability_is_zero():
    cfg = WIDE.model_copy(update={"min_probability": 0.6})
    assert kelly_size(0.55, 50_000.0, 1e5, cfg, 1.0, 0.001, 0.0) == (
        0.0,
        RejectReason.BELOW_MIN_PROBABILITY,
    )


def test_kelly_size_with_stake_below_one_lot_is_zero():
    # Equity 1 quote stakes 0.08125 quote: 0.00135 base units, less than one 0.01 lot.
    assert kelly_size(0.55, 50_000.0, 1.0, WIDE, 1.0, 0.01, 0.0) == (0.0, RejectReason.KELLY_NON_POSITIVE)


def test_kelly_size_with_non_positive_equity_is_zero():
    assert kelly_size(0.55, 50_000.0, -5.0, WIDE, 1.0, 0.001, 0.0) == (0.0, RejectReason.KELLY_NON_POSITIVE)


def test_kelly_size_at_max_position_is_zero_with_max_position_reason():
    assert kelly_size(0.55, 50_000.0, 1e5, WIDE, 1.0, 0.001, 1000.0) == (0.0, RejectReason.MAX_POSITION)


def test_kelly_size_with_notional_below_one_lot_is_zero_with_notional_reason():
    cfg = WIDE.model_copy(update={"max_order_notional": 10.0})
    assert kelly_size(0.55, 50_000.0, 1e5, cfg, 1.0, 0.001, 0.0) == (0.0, RejectReason.MAX_ORDER_NOTIONAL)


def test_kelly_size_when_sized_has_no_reason():
    qty, reason = kelly_size(0.55, 50_000.0, 100_000.0, WIDE, 1.0, 0.001, 0.0)
    assert reason is None
    assert qty == pytest.approx(104.166)


@pytest.mark.parametrize(
    ("p", "price", "equity", "fee_bps", "lot", "abs_pos", "match"),
    [
        (1.5, 100.0, 1e5, 1.0, 0.1, 0.0, "p="),
        (0.6, 0.0, 1e5, 1.0, 0.1, 0.0, "price="),
        (0.6, math.nan, 1e5, 1.0, 0.1, 0.0, "price="),
        (0.6, 100.0, math.inf, 1.0, 0.1, 0.0, "equity="),
        (0.6, 100.0, 1e5, -1.0, 0.1, 0.0, "fee_bps="),
        (0.6, 100.0, 1e5, 1.0, 0.0, 0.0, "lot_size="),
        (0.6, 100.0, 1e5, 1.0, 0.1, -1.0, "current_abs_position="),
    ],
)
def test_kelly_size_with_out_of_range_input_raises(p, price, equity, fee_bps, lot, abs_pos, match):
    with pytest.raises(ValueError, match=match):
        size(p, price, equity, RiskConfig(), fee_bps, lot, abs_pos)


def test_kelly_size_bets_on_the_payoff_net_of_fees():
    # Gross b = 1 would stake 0.25 * (0.65 - 0.35) = 7.5 % of equity; with 1 bp fees each way the
    # net bet wins 8 and loses 12 bps: b = 2/3, f* = 0.65 - 0.35 * 1.5 = 0.125, stake 3.125 %.
    cfg = RiskConfig(take_profit_bps=10.0, stop_loss_bps=10.0, max_position=1e9, max_order_notional=1e12)
    qty = size(0.65, 100.0, 1_000_000.0, cfg, 1.0, 0.001, 0.0)
    assert qty == pytest.approx(0.25 * 0.125 * 1_000_000.0 / (100.0 * 12 / 1e4), abs=0.001)
    assert size(0.65, 100.0, 1_000_000.0, cfg, 0.0, 0.001, 0.0) == pytest.approx(0.25 * 0.3 * 1e6 / 0.1, abs=0.001)


def test_round_trip_fee_is_the_entry_fee_plus_the_exit_fee():
    assert round_trip_fee_bps(0.0, 0.0) == 0.0
    assert round_trip_fee_bps(1.25, 1.25) == 2.5
    assert round_trip_fee_bps(-0.25, 4.0) == 3.75  # a maker rebate on the entry, a taker exit


def test_planned_fees_of_the_two_modes():
    assert PlannedFees.taker(0.5) == (0.5, 0.5, 0.5)
    assert (PlannedFees.taker(0.5).win_bps, PlannedFees.taker(0.5).loss_bps) == (1.0, 1.0)
    maker = PlannedFees.maker(-0.25, 4.0)  # post the entry and the take-profit, cross to stop the loss
    assert maker == (-0.25, -0.25, 4.0)
    assert (maker.win_bps, maker.loss_bps) == (-0.5, 3.75)


def test_maker_fees_net_the_rebates_onto_the_win_and_the_taker_exit_onto_the_loss():
    # Entry and take-profit earn 0.25 bp each, the stop-loss exit pays 4 bp: the win is 10 + 0.5 bp,
    # the loss 10 - 0.25 + 4 = 13.75 bp. Edge at p = 0.6: 0.6 * 10.5 - 0.4 * 13.75 = 0.8 bp.
    fees = PlannedFees.maker(-0.25, 4.0)
    assert expected_edge_bps(0.6, 10.0, 10.0, fees) == pytest.approx(0.6 * 10.5 - 0.4 * 13.75)
    cfg = RiskConfig(take_profit_bps=10.0, stop_loss_bps=10.0, max_position=1e9, max_order_notional=1e12)
    f_star = 0.6 - 0.4 / (10.5 / 13.75)
    want = 0.25 * f_star * 1e6 / (100.0 * 13.75 / 1e4)
    assert size(0.6, 100.0, 1e6, cfg, fees, 0.001, 0.0) == pytest.approx(want, abs=0.001)
    # The same p pays its fees in taker mode at 4 bp a leg: edge 0.6 * 10 - 0.4 * 10 - 8 < 0.
    assert kelly_size(0.6, 100.0, 1e6, cfg, 4.0, 0.001, 0.0) == (0.0, RejectReason.EDGE_BELOW_FEES)
    assert kelly_size(0.6, 100.0, 1e6, cfg, fees, 0.001, 0.0)[1] is None


def test_maker_sizing_through_the_risk_manager_is_the_function_s():
    cfg = RiskConfig(take_profit_bps=10.0, stop_loss_bps=10.0, max_position=1e9, max_order_notional=1e12)
    fees = PlannedFees.maker(0.2, 4.0)
    rm = RiskManager(cfg, tick_size=0.01, lot_size=0.001, fee_bps=fees)
    assert rm.size_entry(0.62, 100.0) == kelly_size(0.62, 100.0, cfg.initial_equity, cfg, fees, 0.001, 0.0)


@pytest.mark.parametrize(
    ("fees", "match"),
    [
        (PlannedFees(0.0, 0.0, -1.0), "stop-loss exit"),  # a crossing order earns no rebate
        (PlannedFees(math.nan, 0.0, 1.0), "finite"),
        (PlannedFees(-20.0, -20.0, 1.0), "stop_loss_bps"),  # a rebate larger than the stop: no loss left
    ],
)
def test_planned_fees_out_of_range_raise(fees, match):
    with pytest.raises(ValueError, match=match):
        kelly_size(0.6, 100.0, 1e6, RiskConfig(), fees, 0.001, 0.0)
    with pytest.raises(ValueError, match=match):
        RiskManager(RiskConfig(), 0.01, 0.001, fees)


def test_edge_and_payoff_read_the_fee_through_the_round_trip():
    # 0.6 * 10 - 0.4 * 10 - 2 * 0.75 = 0.5 bp; the payoff nets the same 1.5 bp off the win and onto the loss.
    assert expected_edge_bps(0.6, 10.0, 10.0, 0.75) == pytest.approx(10.0 * 0.6 - 4.0 - round_trip_fee_bps(0.75, 0.75))
    cfg = RiskConfig(take_profit_bps=10.0, stop_loss_bps=10.0, max_position=1e9, max_order_notional=1e12)
    # net b = 8.5 / 11.5; f* = 0.6 - 0.4 * 11.5 / 8.5; stake / loss per unit (100 * 11.5 / 1e4).
    f_star = 0.6 - 0.4 * 11.5 / 8.5
    want = 0.25 * f_star * 1e6 / (100.0 * 11.5 / 1e4)
    assert size(0.6, 100.0, 1e6, cfg, 0.75, 0.001, 0.0) == pytest.approx(want, abs=0.001)
