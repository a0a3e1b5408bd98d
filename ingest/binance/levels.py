"""Fast decoding of Binance ``[price, qty]`` string pairs into float64 arrays.

Binance sends every price and quantity as a decimal string (``["61800.20", "0.014"]``), and a
depth event carries tens to thousands of them. ``np.array(pairs, dtype=np.float64)`` converts them
one Python string at a time, which makes it the largest part of parsing a depth message; this module
re-serialises the already parsed lists with orjson (compact, canonical bytes of exactly those lists,
so no ambiguity about which JSON key they came from) and scans the bytes in one numba loop
(figures: BENCHMARKS.md, 2026-12-06).

The scan only accepts the plain form Binance uses: one or more digits with at most one ``.``,
a mantissa (significant digits, trailing zeros of the fraction left out) below 2**53 and a
non-zero price. For those the value
``mantissa / 10**decimals`` is a division of two exactly representable doubles, which IEEE 754
rounds correctly, so the result equals Python's ``float(text)`` bit for bit. Anything else
(exponents, signs, long mantissas, non-strings, zero prices) makes :func:`decode_pairs` return
None so that the caller takes its slow, validating path and can name the problem.

Decoding says nothing about whether a number may reach a book: :func:`check_levels` does, given the
instrument's tick and a price band (finite, positive, on the tick grid, inside the band), and names
the first offending row with a :class:`LevelReason`.
"""

from __future__ import annotations

from enum import StrEnum
from typing import cast

import numpy as np
import orjson
from numba import njit

_QUOTE = 34
_COMMA = 44
_DOT = 46
_OPEN = 91
_CLOSE = 93
_ZERO = 48
_NINE = 57
_MAX_DIGITS = 17
_MAX_DECIMALS = 22  # 10**22 is the largest power of ten a double holds exactly
_MANTISSA_LIMIT = 1 << 53
_POW10 = np.array([10.0**k for k in range(_MAX_DECIMALS + 1)])


def decode_pairs(bids: list, asks: list) -> tuple[np.ndarray, np.ndarray] | None:
    """Decode two lists of ``[price, qty]`` decimal strings into float64 arrays.

    Parameters
    ----------
    bids, asks : list
        As ``orjson.loads`` returns them, e.g. ``[["61800.20", "0.014"], ...]``.

    Returns
    -------
    (numpy.ndarray, numpy.ndarray) or None
        float64[len(bids), 2] and float64[len(asks), 2] (views of one array), or None when any
        entry is not in the plain form described in the module docstring.
    """
    n_bids = len(bids)
    out = np.empty((n_bids + len(asks), 2), dtype=np.float64)
    try:
        raw = orjson.dumps((bids, asks))
    except TypeError:
        # Not JSON-serialisable can only mean not what orjson.loads produced; let the slow path say why.
        return None
    if not _scan(np.frombuffer(raw, dtype=np.uint8), out, n_bids, _POW10):
        return None
    return out[:n_bids], out[n_bids:]


@njit(cache=True)
def _number(buf, i, pow10):
    # Parse the body of a quoted decimal starting at buf[i] up to its closing quote; return
    # (value, index after the quote), or (0.0, -1) when it is not in the plain form.
    # Zeros after the dot enter the mantissa only when a non-zero digit follows, so that
    # spot's padding ("61837.63000000") costs neither mantissa range nor a larger divisor.
    n = buf.shape[0]
    mantissa = 0
    digits = 0
    significant = 0
    decimals = 0
    zeros = 0
    seen_dot = False
    while i < n:
        c = buf[i]
        if c >= _ZERO and c <= _NINE:
            digits += 1
            if seen_dot and c == _ZERO:
                zeros += 1
            else:
                step = zeros + 1
                if significant > 0 or c != _ZERO:
                    significant += step
                if significant > _MAX_DIGITS:
                    return 0.0, -1
                for _ in range(step):
                    mantissa *= 10
                mantissa += c - _ZERO
                if seen_dot:
                    decimals += step
                zeros = 0
        elif c == _DOT and not seen_dot:
            seen_dot = True
        elif c == _QUOTE:
            break
        else:
            return 0.0, -1
        i += 1
    if i >= n or digits == 0 or decimals > _MAX_DECIMALS or mantissa >= _MANTISSA_LIMIT:
        return 0.0, -1
    return mantissa / pow10[decimals], i + 1


@njit(cache=True)
def _pair(buf, i, out, row, pow10):
    # buf[i] should open ["price","qty"]; return the index after its closing bracket, or -1.
    n = buf.shape[0]
    if i + 1 >= n or buf[i] != _OPEN or buf[i + 1] != _QUOTE:
        return -1
    price, i = _number(buf, i + 2, pow10)
    if i < 0 or price == 0.0 or i + 1 >= n or buf[i] != _COMMA or buf[i + 1] != _QUOTE:
        return -1
    qty, i = _number(buf, i + 2, pow10)
    if i < 0 or i >= n or buf[i] != _CLOSE:
        return -1
    out[row, 0] = price
    out[row, 1] = qty
    return i + 1


@njit(cache=True)
def _list(buf, i, out, row, end_row, pow10):
    # buf[i] should open a list of pairs filling rows [row, end_row); return the index after it, or -1.
    n = buf.shape[0]
    if i >= n or buf[i] != _OPEN:
        return -1
    i += 1
    if i < n and buf[i] == _CLOSE:
        return i + 1 if row == end_row else -1
    while row < end_row:
        i = _pair(buf, i, out, row, pow10)
        if i < 0 or i >= n:
            return -1
        row += 1
        if buf[i] == _CLOSE:
            return i + 1 if row == end_row else -1
        if buf[i] != _COMMA:
            return -1
        i += 1
    return -1


@njit(cache=True)
def _scan(buf, out, n_bids, pow10):
    # buf is orjson's compact encoding of (bids, asks): [[[..],..],[[..],..]].
    n = buf.shape[0]
    if n < 2 or buf[0] != _OPEN:
        return False
    i = _list(buf, 1, out, 0, n_bids, pow10)
    if i < 0 or i >= n or buf[i] != _COMMA:
        return False
    i = _list(buf, i + 1, out, n_bids, out.shape[0], pow10)
    return i == n - 1 and buf[i] == _CLOSE


class LevelReason(StrEnum):
    """Why :func:`check_levels` refused a price or size (a feed counts rejected messages by these)."""

    BAD_PRICE = "bad_price"
    """Not finite, not above half a tick, or too large for int64 ticks."""
    BAD_SIZE = "bad_size"
    """Not finite, or negative."""
    OFF_GRID = "off_grid"
    """More than the tolerance away from a whole number of ticks."""
    OUT_OF_BAND = "out_of_band"
    """Outside the band around the book's mid."""


LEVEL_OK = 0
LEVEL_CODES = (None, LevelReason.BAD_PRICE, LevelReason.BAD_SIZE, LevelReason.OFF_GRID, LevelReason.OUT_OF_BAND)
""":func:`check_levels` code -> reason (code 0: every level passed)."""

MAX_TICKS = 1 << 62
"""Prices at or beyond this many ticks are refused: ``rint`` of a larger quotient can cast to INT64_MIN,
the book's empty-slot marker, and sums of two such ticks overflow."""

NO_BAND = (1, MAX_TICKS - 1)
"""``(lo, hi)`` ticks when no book gives a mid: only the absolute checks apply."""

DEFAULT_PRICE_BAND = 1000.0
"""Ratio: prices within ``[mid / 1000, mid * 1000]``. Binance books hold real levels from about 1% to
about 1000% of the mid (BTCUSDT USD-M 2024-08-08: 0.9% .. 1005%), so a band of a few percent would
refuse real data; this one still refuses every garbage magnitude (``1e300``, a price in the wrong unit)."""

DEFAULT_TICK_TOLERANCE = 1e-6
"""Ticks: ``price / tick`` of a decimal on the grid is within ~1e-10 of a whole number in float64."""


@njit(cache=True, inline="always")
def price_code(price, tick, tolerance, lo_tick, hi_tick):
    """Return 0 when ``price`` (quote currency) is a positive, finite whole number of ticks (within
    ``tolerance`` ticks) inside ``[lo_tick, hi_tick]``, else the :data:`LEVEL_CODES` code of the first
    check it fails. Comparisons are written so that NaN fails them."""
    x = price / tick
    if not (x > 0.5 and x < MAX_TICKS):
        return 1
    t = np.rint(x)
    if not abs(x - t) <= tolerance:
        return 3
    if t < lo_tick or t > hi_tick:
        return 4
    return 0


@njit(cache=True)
def check_levels(levels, tick, tolerance, lo_tick, hi_tick):
    """Check every ``[price, size]`` row of ``levels`` (float64[k, 2]) before it may reach a book.

    Prices as :func:`price_code`; sizes finite and >= 0 (0 deletes a level).

    Returns
    -------
    (int, int)
        ``(0, -1)`` when every row passes, else ``(code, row)`` of the first that fails
        (:data:`LEVEL_CODES` names the code).
    """
    for j in range(levels.shape[0]):
        q = levels[j, 1]
        if not (q >= 0.0 and q < np.inf):
            return 2, j
        code = price_code(levels[j, 0], tick, tolerance, lo_tick, hi_tick)
        if code != 0:
            return code, j
    return 0, -1


def mid_band(bids: np.ndarray, asks: np.ndarray, tick: float, band: float) -> tuple[int, int]:
    """Return ``(lo, hi)`` ticks of ``[mid / band, mid * band]`` for a book whose best levels are
    ``bids[0]`` and ``asks[0]`` (quote currency); :data:`NO_BAND` when a side is empty or the mid is
    not a sane positive price."""
    if len(bids) == 0 or len(asks) == 0:
        return NO_BAND
    mid = 0.5 * (float(bids[0, 0]) + float(asks[0, 0])) / tick
    if not (1.0 <= mid < MAX_TICKS / band):
        return NO_BAND
    return max(1, int(np.floor(mid / band))), int(np.ceil(mid * band))


def first_bad_level(
    bids: np.ndarray,
    asks: np.ndarray,
    tick: float,
    tolerance: float,
    band: tuple[int, int],
    names: tuple[str, str] = ("b", "a"),
) -> tuple[LevelReason, str] | None:
    """Return ``(reason, "b[3] = [price, size]")`` for the first level of a message that fails
    :func:`check_levels` (bids first), or None when every level passes. ``names`` label the two sides."""
    lo, hi = band
    for name, levels in zip(names, (bids, asks), strict=True):
        code, row = check_levels(levels, tick, tolerance, lo, hi)
        if code != LEVEL_OK:
            return cast(
                LevelReason, LEVEL_CODES[code]
            ), f"{name}[{row}] = {levels[row].tolist()} (band {lo}..{hi} ticks)"
    return None
