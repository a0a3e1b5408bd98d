"""Order bookkeeping (fills, average price, fees), Fill validation and the taker fee."""

from __future__ import annotations

import pytest

from scalper.exec.fees import taker_fee
from scalper.exec.orders import Fill, InvalidTransition, Order, OrderStatus


def order(qty: float = 1.0, status: OrderStatus = OrderStatus.ACCEPTED) -> Order:
    return Order(3, 0, 1, qty, 101.0, "entry", False, status=status)


def fill(qty: float, price: float, fee: float = 0.01, order_id: int = 3, side: int = 1) -> Fill:
    return Fill(order_id, 5, side, qty, price, fee, False, "entry")


def snapshot(o: Order) -> tuple:
    return (o.status, o.filled_qty, o.avg_fill_price, o.fees)


def test_apply_fill_accumulates_vwap_and_fees():
    o = order()
    o.apply_fill(fill(0.4, 100.0, 0.04), OrderStatus.PARTIALLY_FILLED)
    o.apply_fill(fill(0.6, 101.0, 0.0606), OrderStatus.FILLED)
    assert o.status is OrderStatus.FILLED
    assert o.filled_qty == pytest.approx(1.0)
    assert o.avg_fill_price == pytest.approx((40.0 + 60.6) / 1.0)
    assert o.fees == pytest.approx(0.1006)


def test_apply_fill_float_sum_of_lots_is_not_an_overfill():
    o = order(qty=0.3)
    o.apply_fill(fill(0.1, 100.0), OrderStatus.PARTIALLY_FILLED)
    o.apply_fill(fill(0.2, 100.0), OrderStatus.FILLED)  # 0.1 + 0.2 > 0.3 in binary
    assert o.status is OrderStatus.FILLED


@pytest.mark.parametrize(
    ("bad_fill", "new_status"),
    [
        (fill(0.5, 100.0, order_id=4), OrderStatus.PARTIALLY_FILLED),
        (fill(0.5, 100.0, side=-1), OrderStatus.PARTIALLY_FILLED),
        (fill(0.5, 100.0), OrderStatus.CANCELED),
        (fill(1.5, 100.0), OrderStatus.FILLED),
    ],
    ids=["other_order", "other_side", "non_fill_status", "overfill"],
)
def test_apply_fill_bad_input_raises_value_error_and_changes_nothing(bad_fill, new_status):
    o = order()
    before = snapshot(o)
    with pytest.raises(ValueError):
        o.apply_fill(bad_fill, new_status)
    assert snapshot(o) == before


@pytest.mark.parametrize("status", [OrderStatus.NEW, OrderStatus.FILLED, OrderStatus.CANCELED, OrderStatus.REJECTED])
def test_apply_fill_outside_fillable_status_raises_invalid_transition(status):
    o = order(status=status)
    before = snapshot(o)
    with pytest.raises(InvalidTransition):
        o.apply_fill(fill(0.5, 100.0), OrderStatus.PARTIALLY_FILLED)
    assert snapshot(o) == before


@pytest.mark.parametrize(("qty", "price", "fee"), [(0.0, 100.0, 0.0), (1.0, 0.0, 0.0), (1.0, 100.0, -0.01)])
def test_fill_non_positive_qty_price_or_negative_fee_raises(qty, price, fee):
    with pytest.raises(ValueError):
        Fill(1, 0, 1, qty, price, fee, False, "entry")


def test_a_maker_fill_may_carry_a_rebate_but_a_taker_fill_or_a_nan_fee_may_not():
    rebate = Fill(1, 0, 1, 1.0, 100.0, -0.02, True, "entry")
    assert rebate.fee == -0.02
    with pytest.raises(ValueError, match="is_maker=False"):
        Fill(1, 0, 1, 1.0, 100.0, -0.02, False, "entry")
    with pytest.raises(ValueError, match="finite fee"):
        Fill(1, 0, 1, 1.0, 100.0, float("nan"), True, "entry")


def test_taker_fee_is_bps_of_notional():
    assert taker_fee(10_000.0, 4.5) == pytest.approx(4.5)
    assert taker_fee(250.0, 0.0) == 0.0


@pytest.mark.parametrize(("notional", "bps"), [(-1.0, 5.0), (100.0, -0.1)])
def test_taker_fee_negative_input_raises(notional, bps):
    with pytest.raises(ValueError):
        taker_fee(notional, bps)
