import pytest

from scalper.risk.lots import exceeds, floor_to_lot, is_lot_multiple


def test_floor_to_lot_with_float_noise_below_a_lot_keeps_that_lot():
    # 0.3 / 0.1 is 2.9999999999999996 in float64; a plain floor would lose a lot.
    assert floor_to_lot(0.3, 0.1) == pytest.approx(0.3)
    assert floor_to_lot(0.3, 0.1) / 0.1 == pytest.approx(3.0)


def test_floor_to_lot_rounds_partial_lot_down():
    assert floor_to_lot(0.37, 0.1) == pytest.approx(0.3)
    assert floor_to_lot(0.099, 0.1) == 0.0


def test_floor_to_lot_with_many_small_lots_keeps_the_count():
    # 66_000 base units of 1e-5 lots: 6.6e9 lots whose float ratio is 6599999999.999999.
    assert floor_to_lot(66_000.0, 1e-5) == pytest.approx(66_000.0, abs=1e-6)


@pytest.mark.parametrize(
    ("qty", "lot", "expected"),
    [
        (0.3, 0.1, True),
        (0.1 + 0.2, 0.1, True),
        (0.15, 0.1, False),
        (66_000.0, 1e-5, True),
        (1234.56789012, 1e-8, True),
        (1.000000005, 1e-8, False),
        (3.0, 1.0, True),
        (2.5, 1.0, False),
    ],
)
def test_is_lot_multiple_judges_up_to_float_noise(qty, lot, expected):
    assert is_lot_multiple(qty, lot) is expected


def test_exceeds_with_float_noise_above_limit_is_false():
    assert exceeds(0.1 + 0.1 + 0.1, 0.3, 0.1) is False


def test_exceeds_with_one_lot_above_limit_is_true():
    assert exceeds(0.4, 0.3, 0.1) is True
    assert exceeds(100.00000001, 100.0, 1e-8) is True
