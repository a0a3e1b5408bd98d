"""Each queue-position rule of exec/queue.py on hand-computed numbers (hftbacktest 2.4.4 models/queue.rs)."""

from __future__ import annotations

import math

import pytest

from scalper.exec.queue import (
    QUEUE_PROB_LOG,
    QUEUE_PROB_LOG2,
    QUEUE_PROB_POWER,
    QUEUE_PROB_POWER2,
    QUEUE_PROB_POWER3,
    QUEUE_RISK_AVERSE,
    check_queue_model,
    prob_back,
    queue_ahead,
    queue_on_depth,
    queue_on_trade,
    queue_take_fill,
)


def test_trade_advances_the_front_and_counts_the_traded_size():
    assert queue_on_trade(10.0, 0.0, 3.0) == (7.0, 3.0)
    assert queue_on_trade(7.0, 3.0, 2.0) == (5.0, 5.0)


def test_risk_averse_ignores_cancels_until_the_level_is_smaller_than_the_front():
    assert queue_on_depth(QUEUE_RISK_AVERSE, 0.0, 1.0, 10.0, 0.0, 30.0, 12.0) == (10.0, 0.0)
    assert queue_on_depth(QUEUE_RISK_AVERSE, 0.0, 1.0, 10.0, 4.0, 30.0, 6.0) == (6.0, 0.0)
    assert queue_on_depth(QUEUE_RISK_AVERSE, 0.0, 1.0, 10.0, 0.0, 30.0, 50.0) == (10.0, 0.0)


def test_power_model_splits_a_cancel_by_the_squared_sizes():
    # front 10, back 20, n = 2: p(behind) = 400 / 500; the 10 cancelled take 2 from the front.
    assert prob_back(QUEUE_PROB_POWER, 2.0, 10.0, 20.0) == pytest.approx(0.8)
    assert queue_on_depth(QUEUE_PROB_POWER, 2.0, 1.0, 10.0, 0.0, 30.0, 20.0) == pytest.approx((8.0, 0.0))


def test_prob_model_does_not_count_a_traded_size_twice():
    # 4 traded at the level (front already 6), then the level shows 30 -> 26: no cancel at all.
    front, cum = queue_on_trade(10.0, 0.0, 4.0)
    assert queue_on_depth(QUEUE_PROB_POWER, 2.0, 1.0, front, cum, 30.0, 26.0) == (6.0, 0.0)


def test_prob_model_spills_a_cancel_larger_than_the_back_onto_the_front():
    # front 10, back 2, n = 1: p = 2 / 12; 8 cancelled: 10 - (10/12) * 8 + min(2 - 8/6, 0) = 10/3.
    assert queue_on_depth(QUEUE_PROB_POWER, 1.0, 1.0, 10.0, 0.0, 12.0, 4.0)[0] == pytest.approx(10.0 / 3.0)


def test_prob_model_keeps_the_front_when_the_level_grows_except_to_fit_it():
    assert queue_on_depth(QUEUE_PROB_LOG, 0.0, 1.0, 10.0, 0.0, 30.0, 40.0) == (10.0, 0.0)
    assert queue_on_depth(QUEUE_PROB_LOG, 0.0, 1.0, 10.0, 25.0, 30.0, 8.0) == (8.0, 0.0)


def test_prob_models_evaluate_the_probability_in_base_units():
    # ETHUSDT's lot is 0.001 ETH: front 10 lots = 0.01 ETH, back 20 lots = 0.02 ETH; hftbacktest's
    # LogProbQueueFunc takes ln(1 + 0.02) / (ln(1 + 0.02) + ln(1 + 0.01)), not ln(21) / (ln(21) + ln(11)).
    p = math.log(1.02) / (math.log(1.02) + math.log(1.01))
    assert p == pytest.approx(0.66557, abs=1e-5)  # on lots: 0.5594
    assert queue_on_depth(QUEUE_PROB_LOG, 0.0, 0.001, 10.0, 0.0, 30.0, 20.0)[0] == pytest.approx(10.0 - (1 - p) * 10)
    p2 = math.log(1.02) / math.log(1.03)
    assert queue_on_depth(QUEUE_PROB_LOG2, 0.0, 0.001, 10.0, 0.0, 30.0, 20.0)[0] == pytest.approx(10.0 - (1 - p2) * 10)
    # The power functions are free of the unit: the same front at any lot size.
    for lot in (1.0, 0.001, 100.0):
        assert queue_on_depth(QUEUE_PROB_POWER, 2.0, lot, 10.0, 0.0, 30.0, 20.0)[0] == pytest.approx(8.0)


@pytest.mark.parametrize(
    ("model", "param", "want"),
    [
        (QUEUE_PROB_LOG, 0.0, math.log(21.0) / (math.log(21.0) + math.log(11.0))),
        (QUEUE_PROB_LOG2, 0.0, math.log(21.0) / math.log(31.0)),
        (QUEUE_PROB_POWER2, 2.0, 400.0 / 900.0),
        (QUEUE_PROB_POWER3, 2.0, 1.0 - (10.0 / 30.0) ** 2),
    ],
)
def test_probability_functions_match_hftbacktest(model, param, want):
    assert prob_back(model, param, 10.0, 20.0) == pytest.approx(want)


def test_degenerate_probability_is_one():
    assert prob_back(QUEUE_PROB_POWER, 2.0, 0.0, 0.0) == 1.0
    assert prob_back(QUEUE_PROB_LOG, 0.0, 0.0, 0.0) == 1.0
    assert prob_back(QUEUE_PROB_POWER3, 2.0, 0.0, 0.0) == 1.0


def test_fill_rounds_half_a_lot_away_from_zero_and_resets_the_front():
    assert queue_take_fill(3.0) == (0, 3.0)
    assert queue_take_fill(-0.4) == (0, -0.4)
    assert queue_take_fill(-0.5) == (1, 0.0)
    assert queue_take_fill(-2.5) == (3, 0.0)
    assert queue_ahead(-0.4) == 0.0
    assert queue_ahead(2.0) == 2.0


def test_bad_model_is_refused_with_the_value():
    check_queue_model(QUEUE_RISK_AVERSE, 0.0)
    check_queue_model(QUEUE_PROB_LOG, 0.0)
    with pytest.raises(ValueError, match="queue model id 9"):
        check_queue_model(9, 1.0)
    with pytest.raises(ValueError, match="exponent > 0; got -1.0"):
        check_queue_model(QUEUE_PROB_POWER, -1.0)
    with pytest.raises(ValueError, match="got nan"):
        check_queue_model(QUEUE_PROB_POWER3, float("nan"))
