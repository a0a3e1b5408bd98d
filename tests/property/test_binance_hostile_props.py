"""Hostile numbers in a depthUpdate: neither the frame scanner nor the general parser plus the feed's
level checks lets through a price or size that is not exactly what a book may hold.

The truth is decimal arithmetic on the text: a price may reach a book only when it is a positive
number of ticks inside the band (the general path allows ``tick_tolerance`` of a tick for float
rounding); a size only when finite and >= 0. Hostile texts: exponents (``1e300``, ``3.4e3``), NaN,
infinities, signs, huge and tiny values, many decimals, off-grid values (``63000.05`` on a 0.1 grid).
"""

from __future__ import annotations

import math
from decimal import Decimal, InvalidOperation

import numpy as np
from hypothesis import example, given
from hypothesis import strategies as st

from scalper.ingest.binance.fastdepth import H_BAND_HI, H_BAND_LO, DepthFrameParser
from scalper.ingest.binance.levels import LEVEL_CODES, LevelReason, check_levels
from scalper.ingest.binance.messages import DepthUpdate
from scalper.ingest.binance.parse import BinanceParseError, parse_message

TICK = 0.1
TICK_D = Decimal("0.1")
TOL = 1e-6
BAND = (63_000, 6_300_000_000)  # ticks: mid 63000.0 (630,000 ticks), band x/÷ 10 for the test
PARSER = DepthFrameParser(TICK, capacity=8)
PARSER.header[H_BAND_LO], PARSER.header[H_BAND_HI] = BAND

digits = st.text("0123456789", min_size=1, max_size=30)
plain = st.builds(lambda i, f: f"{int(i)}.{f}" if f else str(int(i)), digits, st.text("0123456789", max_size=25))
hostile = st.one_of(
    plain,
    st.sampled_from(
        [
            "1e300",
            "1E5",
            "3.4e3",
            "6.3e4",
            "NaN",
            "nan",
            "inf",
            "-inf",
            "Infinity",
            "-63000.0",
            "+63000.0",
            "0",
            "0.0",
            "0.05",
            "63000.05",
            "63000.10000000000000000001",
            "63000.0999999999999999",
            "1" * 40,
            "9" * 19,
            "0x10",
            "63_000.0",
            " 63000.0",
            "63000.0 ",
            "",
            ".5",
            "5.",
            "1e-300",
        ]
    ),
    st.floats(allow_nan=True, allow_infinity=True).map(repr),
    st.builds(lambda t, k: str(Decimal(t) / Decimal(10) ** k), st.integers(-(10**20), 10**20), st.integers(0, 30)),
)


def _frame(price: str, qty: str = "1.000") -> bytes:
    return (
        f'{{"e":"depthUpdate","E":1,"T":1,"s":"BTCUSDT","U":1,"u":2,"pu":0,"b":[["{price}","{qty}"]],"a":[]}}'
    ).encode()


def _ticks(text: str) -> int | None:
    """The exact tick count of a price text if it is a plain positive decimal on the grid, else None."""
    if (
        not text
        or not all(c.isdigit() or c == "." for c in text)
        or text.count(".") > 1
        or text[0] == "."
        or text[-1] == "."
    ):
        return None
    try:
        q = Decimal(text) / TICK_D
    except InvalidOperation:
        return None
    return int(q) if q == q.to_integral_value() and q > 0 else None


@given(hostile, st.sampled_from(["1.000", "0", "1e300", "NaN", "-1", "0.00000001"]))
@example("1e300", "1.000")
@example("63000.05", "1.000")
def test_the_scanner_takes_only_an_exact_tick_inside_the_band(price, qty):
    n = PARSER.parse(_frame(price, qty))
    if n < 0:
        return  # declined: the general parser and the feed's checks decide
    assert n == 1
    want = _ticks(price)
    assert want is not None and BAND[0] <= want <= BAND[1], f"scanner took {price!r}"
    assert int(PARSER.price_tick[0]) == want
    size = float(PARSER.size[0])
    assert math.isfinite(size) and size >= 0 and size == float(qty)


@given(hostile, st.sampled_from(["1.000", "0", "1e300", "NaN", "-1", "inf"]))
@example("1e300", "1.000")
@example("63000.05", "1.000")
@example("6.3e4", "1.000")
def test_the_general_parser_and_level_checks_let_through_only_sane_numbers(price, qty):
    try:
        msg = parse_message(_frame(price, qty))
    except BinanceParseError:
        return
    assert isinstance(msg, DepthUpdate)
    code, row = check_levels(msg.bids, TICK, TOL, *BAND)
    p, q = msg.bids[0]
    if code != 0:
        assert row == 0 and isinstance(LEVEL_CODES[code], LevelReason)
        return
    # Passed: the book may hold it, and the tick it becomes is a positive in-band int64.
    assert math.isfinite(q) and q >= 0
    t = np.int64(np.rint(p / TICK))
    assert BAND[0] <= t <= BAND[1] and abs(p / TICK - t) <= TOL


@given(st.integers(BAND[0], BAND[1]), st.integers(0, 3))
def test_an_exact_in_band_price_passes_both_paths(t, pad):
    price = f"{t // 10}.{t % 10}" + "0" * pad
    assert PARSER.parse(_frame(price)) == 1 and int(PARSER.price_tick[0]) == t
    msg = parse_message(_frame(price))
    assert check_levels(msg.bids, TICK, TOL, *BAND) == (0, -1)


@given(st.integers(1, 10**12).filter(lambda m: m % 10 != 0), st.integers(2, 12))
def test_an_off_grid_price_is_declined_by_the_scanner_and_rejected_off_grid(m, k):
    # m / 10**k with a non-zero last digit and k >= 2 decimals is never a multiple of 0.1; shift it in band.
    price = Decimal(m) / Decimal(10) ** k + Decimal(63_000)
    text = f"{price:f}"
    assert PARSER.parse(_frame(text)) == -1
    code, _ = check_levels(parse_message(_frame(text)).bids, TICK, TOL, *BAND)
    # Decimals past float precision round onto the grid: those are, as floats, on it.
    on_grid_as_float = abs(float(text) / TICK - round(float(text) / TICK)) <= TOL
    assert LEVEL_CODES[code] is (None if on_grid_as_float else LevelReason.OFF_GRID)
