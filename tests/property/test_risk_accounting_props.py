import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from scalper.risk import Account, RiskConfig, RiskManager

fills = st.lists(
    st.tuples(
        st.sampled_from([1, -1]),
        st.integers(1, 1000).map(lambda n: n * 0.01),  # qty, base units, lots of 0.01
        st.floats(1.0, 1000.0),  # price, quote
        st.floats(0.0, 1.0),  # fee, quote
    ),
    min_size=1,
    max_size=30,
)


def _apply(acc: Account, sequence) -> None:
    for side, qty, price, fee in sequence:
        acc.on_fill(side, qty, price, fee)


@given(sequence=fills, close_price=st.floats(1.0, 1000.0))
def test_account_flat_realized_pnl_equals_sum_of_signed_cash_flows(sequence, close_price):
    acc = Account(1e6)
    _apply(acc, sequence)
    closed = list(sequence)
    if acc.position != 0.0:
        closing = (-1 if acc.position > 0.0 else 1, abs(acc.position), close_price, 0.0)
        acc.on_fill(*closing)
        closed.append(closing)
    gross = sum(abs(qty * price) for _, qty, price, _ in closed)
    assert acc.position == 0.0
    assert acc.unrealized_pnl == 0.0
    cash_flow = sum(-side * qty * price for side, qty, price, _ in closed)
    assert acc.realized_pnl == pytest.approx(cash_flow, abs=1e-9 * gross)
    assert acc.fees_paid == pytest.approx(sum(fee for *_, fee in closed))


@given(sequence=fills, marks=st.lists(st.floats(1.0, 1000.0), max_size=5))
def test_account_equity_identity_holds_after_fills_and_marks(sequence, marks):
    acc = Account(1e6)
    _apply(acc, sequence)
    for mid in marks:
        acc.mark(mid)
    last = acc.last_mark if acc.last_mark is not None else sequence[-1][2]
    gross = sum(abs(qty * price) for _, qty, price, _ in sequence) + 1e6
    assert acc.equity == acc.initial_equity + acc.realized_pnl - acc.fees_paid + acc.unrealized_pnl
    assert acc.equity == pytest.approx(acc.cash + acc.position * last, abs=1e-9 * gross)
    assert acc.drawdown >= 0.0
    assert acc.drawdown == pytest.approx(acc.peak_equity - acc.equity)
    assert acc.max_drawdown >= acc.drawdown
    assert acc.peak_equity >= acc.initial_equity
    assert math.isfinite(acc.avg_entry_price)


@given(sequence=fills)
def test_account_position_is_the_signed_sum_of_fill_quantities(sequence):
    acc = Account(1e6)
    _apply(acc, sequence)
    assert acc.position == pytest.approx(sum(side * qty for side, qty, _, _ in sequence), abs=1e-9)
    assert (acc.position == 0.0) == (acc.avg_entry_price == 0.0)


@given(fills, st.lists(st.floats(1.0, 1e4), min_size=1, max_size=40), st.floats(1e-3, 5e3))
def test_mark_many_equals_marking_one_by_one(sequence, mids, max_drawdown):
    one, many = (RiskManager(RiskConfig(max_drawdown=max_drawdown), 0.01, 0.001, 1.0) for _ in range(2))
    for rm in (one, many):
        _apply(rm.account, sequence)
    for m in mids:
        one.mark(m)
    many.mark_many(np.array(mids))
    state = lambda acc: {k: getattr(acc, k) for k in Account.__slots__}  # noqa: E731
    assert state(one.account) == state(many.account)
    assert one.state == many.state
