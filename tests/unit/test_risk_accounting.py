import math

import pytest

from scalper.risk import Account


def test_account_starts_flat_with_initial_equity():
    acc = Account(10_000.0)
    assert (acc.position, acc.avg_entry_price, acc.cash) == (0.0, 0.0, 10_000.0)
    assert (acc.realized_pnl, acc.fees_paid, acc.unrealized_pnl) == (0.0, 0.0, 0.0)
    assert (acc.equity, acc.peak_equity, acc.drawdown, acc.max_drawdown) == (10_000.0, 10_000.0, 0.0, 0.0)


@pytest.mark.parametrize("equity", [0.0, -1.0, math.inf, math.nan])
def test_account_with_non_positive_or_non_finite_equity_raises(equity):
    with pytest.raises(ValueError, match="initial_equity"):
        Account(equity)


def test_account_increase_moves_average_entry_price():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 100.0, 0.2)
    acc.on_fill(+1, 1.0, 103.0, 0.1)
    assert acc.position == 3.0
    assert acc.avg_entry_price == pytest.approx(101.0)  # (2 * 100 + 1 * 103) / 3
    assert acc.realized_pnl == 0.0
    assert acc.fees_paid == pytest.approx(0.3)
    assert acc.cash == pytest.approx(10_000.0 - 200.0 - 103.0 - 0.3)


def test_account_partial_reduce_realizes_against_average_entry():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 100.0, 0.0)
    acc.on_fill(+1, 1.0, 103.0, 0.0)
    acc.on_fill(-1, 1.0, 105.0, 0.0)
    assert acc.position == pytest.approx(2.0)
    assert acc.avg_entry_price == pytest.approx(101.0)  # a reduce leaves the average alone
    assert acc.realized_pnl == pytest.approx(4.0)  # 1 * (105 - 101)


def test_account_flip_through_zero_closes_then_opens_at_fill_price():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 101.0, 0.0)
    acc.on_fill(-1, 5.0, 99.0, 0.0)
    assert acc.position == pytest.approx(-3.0)
    assert acc.avg_entry_price == 99.0
    assert acc.realized_pnl == pytest.approx(-4.0)  # 2 * (99 - 101)


def test_account_short_round_trip_realizes_entry_minus_exit():
    acc = Account(10_000.0)
    acc.on_fill(-1, 3.0, 50.0, 0.15)
    acc.on_fill(+1, 1.0, 48.0, 0.05)
    assert acc.position == pytest.approx(-2.0)
    assert acc.realized_pnl == pytest.approx(2.0)  # 1 * (50 - 48)
    acc.on_fill(+1, 2.0, 51.0, 0.1)
    assert acc.position == 0.0
    assert acc.avg_entry_price == 0.0
    assert acc.realized_pnl == pytest.approx(0.0)  # 2 + 2 * (50 - 51)
    assert acc.fees_paid == pytest.approx(0.3)
    assert acc.equity == pytest.approx(10_000.0 - 0.3)
    assert acc.cash == pytest.approx(acc.equity)


def test_account_full_sequence_realized_pnl_by_hand():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 100.0, 0.0)
    acc.on_fill(+1, 1.0, 103.0, 0.0)  # avg 101
    acc.on_fill(-1, 1.0, 105.0, 0.0)  # +4
    acc.on_fill(-1, 4.0, 99.0, 0.0)  # -4 closing 2, short 2 @ 99
    acc.on_fill(+1, 2.0, 97.0, 0.0)  # +4
    assert acc.position == 0.0
    assert acc.realized_pnl == pytest.approx(4.0)
    assert acc.unrealized_pnl == 0.0
    assert acc.equity == pytest.approx(10_004.0)


def test_account_exit_of_float_sum_position_ends_exactly_flat():
    acc = Account(10_000.0)
    acc.on_fill(+1, 0.1, 100.0, 0.0)
    acc.on_fill(+1, 0.2, 100.0, 0.0)
    acc.on_fill(-1, 0.3, 110.0, 0.0)
    assert acc.position == 0.0
    assert acc.avg_entry_price == 0.0
    assert acc.realized_pnl == pytest.approx(3.0)


def test_account_mark_sets_unrealized_and_equity():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 100.0, 0.2)
    acc.mark(101.0)
    assert acc.unrealized_pnl == pytest.approx(2.0)
    assert acc.equity == pytest.approx(10_001.8)
    assert acc.cash + acc.position * 101.0 == pytest.approx(acc.equity)


def test_account_fill_before_any_mark_is_valued_at_fill_price():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 100.0, 0.5)
    assert acc.unrealized_pnl == 0.0
    assert acc.equity == pytest.approx(9_999.5)
    assert acc.drawdown == pytest.approx(0.5)


def test_account_fill_after_mark_is_valued_at_last_mark():
    acc = Account(10_000.0)
    acc.mark(100.0)
    acc.on_fill(+1, 2.0, 100.5, 0.0)
    assert acc.unrealized_pnl == pytest.approx(-1.0)  # 2 * (100 - 100.5)


def test_account_drawdown_tracks_peak_and_max():
    acc = Account(10_000.0)
    acc.on_fill(+1, 2.0, 100.0, 0.2)
    acc.mark(101.0)  # equity 10_001.8, the peak
    acc.mark(95.0)  # equity 9_989.8
    assert acc.peak_equity == pytest.approx(10_001.8)
    assert acc.drawdown == pytest.approx(12.0)
    assert acc.max_drawdown == pytest.approx(12.0)
    acc.mark(102.0)  # new peak 10_003.8
    assert acc.drawdown == 0.0
    assert acc.peak_equity == pytest.approx(10_003.8)
    assert acc.max_drawdown == pytest.approx(12.0)


def test_account_maker_rebate_is_a_negative_fee():
    acc = Account(10_000.0)
    acc.on_fill(+1, 1.0, 100.0, -0.01)
    assert acc.fees_paid == pytest.approx(-0.01)
    assert acc.equity == pytest.approx(10_000.01)


@pytest.mark.parametrize(
    ("side", "qty", "price", "fee", "match"),
    [
        (0, 1.0, 100.0, 0.0, "side"),
        (2, 1.0, 100.0, 0.0, "side"),
        (1, 0.0, 100.0, 0.0, "qty"),
        (1, math.nan, 100.0, 0.0, "qty"),
        (1, 1.0, -100.0, 0.0, "price"),
        (1, 1.0, math.inf, 0.0, "price"),
        (1, 1.0, 100.0, math.nan, "fee"),
    ],
)
def test_account_malformed_fill_raises_and_leaves_account_unchanged(side, qty, price, fee, match):
    acc = Account(10_000.0)
    acc.on_fill(+1, 1.0, 100.0, 0.1)
    with pytest.raises(ValueError, match=match):
        acc.on_fill(side, qty, price, fee)
    assert (acc.position, acc.avg_entry_price, acc.cash, acc.fees_paid) == (1.0, 100.0, 9_899.9, 0.1)


@pytest.mark.parametrize("mid", [0.0, -1.0, math.nan, math.inf])
def test_account_mark_with_bad_mid_raises(mid):
    acc = Account(10_000.0)
    with pytest.raises(ValueError, match="mid"):
        acc.mark(mid)
    assert acc.last_mark is None


def test_restore_reproduces_the_account_a_fill_sequence_built():
    from scalper.risk.accounting import Account

    live = Account(1_000.0)
    live.on_fill(1, 3.0, 10.0, 0.1)
    live.on_fill(-1, 1.0, 12.0, 0.1)
    live.on_fill(1, 2.0, 11.0, 0.1)
    back = Account(1_000.0)
    back.restore(live.position, live.avg_entry_price, live.realized_pnl, live.fees_paid)
    assert (back.position, back.avg_entry_price, back.realized_pnl, back.fees_paid) == (
        live.position,
        live.avg_entry_price,
        live.realized_pnl,
        live.fees_paid,
    )
    assert back.cash == pytest.approx(live.cash)
    back.mark(11.5)
    live.mark(11.5)
    assert back.equity == pytest.approx(live.equity)
