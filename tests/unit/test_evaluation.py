"""Evaluation metrics against hand-computed values and scikit-learn; the bootstrap and the verdict."""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from sklearn.metrics import balanced_accuracy_score, log_loss, roc_auc_score

from scalper.models.evaluation import (
    NO_SKILL,
    SKILL,
    WORSE,
    Interval,
    auc,
    average_ranks,
    balanced_accuracy,
    block_bootstrap_indices,
    block_length,
    classwise_ece,
    evaluate_horizon,
    information_coefficient,
    reliability_curve,
    row_brier,
    row_log_loss,
    rule_trades,
    skill_score,
    up_down_auc,
    up_score,
    verdict,
)

H5 = 5_000_000_000
GRID = 250_000_000


def test_log_loss_and_brier_by_hand():
    y = np.array([0, 2, 1])
    p = np.array([[0.5, 0.25, 0.25], [0.1, 0.1, 0.8], [0.2, 0.6, 0.2]])
    assert row_log_loss(y, p) == pytest.approx([math.log(2), -math.log(0.8), -math.log(0.6)])
    assert row_log_loss(y, p).mean() == pytest.approx(log_loss(y, p, labels=[0, 1, 2]))
    # (0.5-1)^2 + 0.25^2 + 0.25^2 = 0.375; 0.01 + 0.01 + 0.04 = 0.06; 0.04 + 0.16 + 0.04 = 0.24
    assert row_brier(y, p) == pytest.approx([0.375, 0.06, 0.24])


def test_bad_shapes_and_labels_are_refused_naming_them():
    with pytest.raises(ValueError, match=r"y has shape \(2,\) and proba \(3, 3\)"):
        row_log_loss(np.array([0, 1]), np.full((3, 3), 1 / 3))
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\), got 0..3"):
        row_brier(np.array([0, 3]), np.full((2, 3), 1 / 3))
    with pytest.raises(ValueError, match="prior's loss must be > 0"):
        skill_score(0.5, 0.0)


def test_skill_score_is_zero_for_the_prior_and_one_for_a_perfect_model():
    assert skill_score(0.7, 0.7) == 0.0
    assert skill_score(0.0, 0.7) == 1.0
    assert skill_score(0.8, 0.4) == pytest.approx(-1.0)


def test_average_ranks_share_ties():
    assert average_ranks(np.array([3.0, 1.0, 3.0, 2.0])).tolist() == [3.5, 1.0, 3.5, 2.0]


@given(st.lists(st.integers(0, 4), min_size=2, max_size=40), st.data())
def test_auc_matches_sklearn_with_ties(scores, data):
    pos = np.array(data.draw(st.lists(st.booleans(), min_size=len(scores), max_size=len(scores))))
    s = np.array(scores, dtype=np.float64)
    got = auc(pos, s)
    if pos.all() or not pos.any():
        assert got is None
    else:
        assert got == pytest.approx(roc_auc_score(pos, s))


def test_up_down_auc_uses_only_the_rows_that_moved():
    y = np.array([0, 2, 1, 1])
    # The flat rows score extremes that would spoil the ranking if they counted.
    p = np.array([[0.6, 0.2, 0.2], [0.1, 0.2, 0.7], [0.0, 0.0, 1.0], [1.0, 0.0, 0.0]])
    assert up_down_auc(y, p) == 1.0
    assert up_score(np.array([[0.0, 1.0, 0.0]])).tolist() == [0.5]  # no direction at all: a coin
    assert up_down_auc(np.array([1, 2]), p[:2]) is None


def test_balanced_accuracy_matches_sklearn():
    rng = np.random.default_rng(1)
    y, pred = rng.integers(0, 3, 200), rng.integers(0, 3, 200)
    assert balanced_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    assert balanced_accuracy(np.array([1, 1, 1]), np.array([1, 1, 1])) == 1.0  # one class present


def test_reliability_curve_equal_mass_bins_by_hand():
    p = np.array([0.1, 0.1, 0.2, 0.2, 0.8, 0.9])
    hit = np.array([0, 0, 0, 1, 1, 1], dtype=bool)
    c = reliability_curve(p, hit, n_bins=3)
    assert c.count.tolist() == [2, 2, 2]
    assert c.predicted == pytest.approx([0.1, 0.2, 0.85])
    assert c.observed == pytest.approx([0.0, 0.5, 1.0])
    # (2 * 0.1 + 2 * 0.3 + 2 * 0.15) / 6
    assert c.ece() == pytest.approx(1.1 / 6)


def test_equal_values_never_straddle_two_bins():
    c = reliability_curve(np.full(10, 0.3), np.arange(10) < 3, n_bins=5)
    assert c.count.tolist() == [10]
    assert c.ece() == pytest.approx(0.0)


def test_classwise_ece_of_the_prior_on_its_own_span_is_zero():
    y = np.array([0, 1, 1, 2, 1, 1, 0, 1])
    prior = np.bincount(y, minlength=3) / len(y)
    ece, curves = classwise_ece(y, np.tile(prior, (len(y), 1)))
    assert ece == pytest.approx(0.0, abs=1e-12)
    assert len(curves) == 3


def test_information_coefficient_is_spearman():
    x = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    assert information_coefficient(x, x**3) == pytest.approx(1.0)
    assert information_coefficient(x, -x) == pytest.approx(-1.0)
    # Ranks 1..5 against 2, 1, 4, 3, 5: 1 - 6 * sum(d^2) / (n (n^2 - 1)) = 1 - 6 * 4 / 120
    assert information_coefficient(x, np.array([2.0, 1.0, 4.0, 3.0, 5.0])) == pytest.approx(0.8)
    assert information_coefficient(x, np.ones(5)) is None


def test_rule_trades_by_hand_one_position_at_a_time():
    ts = np.array([0, 1, 2, 5, 6]) * GRID
    proba = np.array(
        [[0.1, 0.2, 0.7], [0.1, 0.1, 0.8], [0.7, 0.2, 0.1], [0.3, 0.4, 0.3], [0.6, 0.1, 0.3]], dtype=np.float64
    )
    mid_now = np.full(5, 1000.0)
    spread = np.full(5, 2.0)
    mid_later = np.array([1010.0, 1010.0, 990.0, 1000.0, np.nan])
    t = rule_trades(proba, ts, 2 * GRID, mid_now, spread, mid_later, spread, threshold=0.5, taker_fee_bps=1.0)
    # Row 0 enters long (row 1 is inside its horizon); row 2 short; row 3 below the threshold; row 4 past the data.
    assert t.row.tolist() == [0, 2] and t.side.tolist() == [1, -1]
    # Long: buy 1001, sell 1009: 8 / 1001 * 1e4 bps, fees 1 bps x (1001 + 1009) / 1001.
    # Short: sell 999, buy 991: 8 / 999 * 1e4, fees (999 + 991) / 999.
    assert t.net_bps == pytest.approx([8e4 / 1001 - 2010 / 1001, 8e4 / 999 - 1990 / 999])
    with pytest.raises(ValueError, match="threshold must lie in"):
        rule_trades(proba, ts, GRID, mid_now, spread, mid_later, spread, threshold=1.0, taker_fee_bps=1.0)


def test_block_bootstrap_keeps_blocks_whole_and_is_seeded():
    a = list(block_bootstrap_indices(100, 10, 3, seed=5))
    b = list(block_bootstrap_indices(100, 10, 3, seed=5))
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    for idx in a:
        assert idx.shape == (100,) and idx.min() >= 0 and idx.max() < 100
        assert (np.diff(idx.reshape(10, 10), axis=1) == 1).all()
    assert block_length(np.arange(0, 100) * GRID, H5) == 20
    with pytest.raises(ValueError, match="need n, block_len, replicates >= 1"):
        next(block_bootstrap_indices(0, 10, 3, seed=0))


def test_verdict_reads_the_skill_interval():
    assert verdict(Interval(-0.01, 0.02, 0.95)) == NO_SKILL
    assert verdict(Interval(0.0, 0.0, 0.95)) == NO_SKILL
    assert verdict(Interval(0.001, 0.02, 0.95)) == SKILL
    assert verdict(Interval(-0.02, -0.001, 0.95)) == WORSE
    assert verdict(Interval(None, None, 0.95)) == NO_SKILL
    # Skill from a span of nearly all flat labels is no edge to trade: no verdict.
    assert verdict(Interval(0.9, 0.99, 0.95), moved_rows=29) == "not judged: 29 up/down rows (< 30)"
    assert verdict(Interval(0.9, 0.99, 0.95), moved_rows=30) == SKILL


def _synthetic(n: int, informative: bool, seed: int = 0):
    # A latent signal drives the move; an informative model sees it, the prior does not.
    rng = np.random.default_rng(seed)
    sig = rng.normal(size=n)
    move = 0.8 * sig + rng.normal(size=n)
    y = np.where(move > 1.0, 2, np.where(move < -1.0, 0, 1))
    prior = np.bincount(y, minlength=3) / n
    if informative:
        z = np.stack([-sig, np.full(n, 0.5), sig], axis=1)
        proba = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    else:
        proba = np.tile(prior, (n, 1))
    ts = np.arange(n, dtype=np.int64) * GRID
    mid = np.full(n, 10_000.0)
    prices = (mid, np.full(n, 1.0), mid + move, np.full(n, 1.0))
    return y, proba, prior, ts, move, prices


def _evaluate(n: int, informative: bool, seed: int = 0, replicates: int = 300):
    y, proba, prior, ts, move, prices = _synthetic(n, informative, seed)
    return evaluate_horizon(y, proba, prior, ts, H5, move, prices, 0.5, 0.5, replicates=replicates, seed=seed)


def test_the_prior_as_the_model_has_no_skill():
    ev = _evaluate(3000, informative=False)
    assert ev.log_loss == ev.prior_log_loss and ev.log_loss_skill == 0.0
    assert ev.log_loss_skill_interval.contains(0.0)
    assert ev.verdict == NO_SKILL
    assert ev.auc_up_down == 0.5  # one score for every row: every pair a tie
    assert ev.information_coefficient is None and "information_coefficient" in ev.undefined
    assert ev.rule_trades == 0 and ev.rule_mean_bps is None and ev.rule_total_bps == 0.0


def test_an_informative_model_has_skill_and_its_intervals_hold_the_estimate():
    ev = _evaluate(5000, informative=True)
    assert ev.verdict == SKILL
    assert ev.log_loss_skill_interval.contains(ev.log_loss_skill)
    assert ev.brier_skill_interval.contains(ev.brier_skill)
    assert ev.ece_interval.high is not None and ev.ece <= ev.ece_interval.high
    assert ev.auc_up_down is not None and ev.auc_up_down > 0.8
    assert ev.auc_up_down_interval.contains(ev.auc_up_down)
    assert ev.information_coefficient is not None and ev.information_coefficient > 0.3
    assert ev.balanced_accuracy is not None and ev.prior_balanced_accuracy == pytest.approx(1 / 3)
    assert ev.balanced_accuracy > ev.prior_balanced_accuracy
    assert ev.bootstrap_block_rows == 20 and ev.small_sample == []


def test_intervals_shrink_with_more_data():
    small, large = _evaluate(2000, informative=True), _evaluate(20_000, informative=True)
    for name in ("log_loss_skill_interval", "auc_up_down_interval", "ece_interval"):
        w_small = getattr(small, name).high - getattr(small, name).low
        w_large = getattr(large, name).high - getattr(large, name).low
        assert w_large < 0.6 * w_small, name


def test_small_samples_are_flagged():
    ev = _evaluate(400, informative=True, replicates=50)
    assert ev.small_sample[0] == "400 rows (< 1000)"
    y, proba, prior, ts, move, prices = _synthetic(60, True)
    y[:] = 1
    y[:3] = 2
    ev = evaluate_horizon(y, proba, prior, ts, H5, move, prices, 0.5, 0.5, replicates=20)
    assert "3 up/down rows (< 30)" in ev.small_sample
    assert ev.verdict == "not judged: 3 up/down rows (< 30)"
    assert ev.auc_up_down is None and ev.undefined["auc_up_down"] == "the rows hold no up or no down label"
