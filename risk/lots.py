"""Quantities on the lot grid, and limit comparisons that tolerate float rounding.

Sizes are float64 base units, so a sum or product of lot multiples is rarely exact
(``0.1 + 0.2`` is ``0.30000000000000004``; ``6.6e9 * 1e-5 / 1e-5`` is ``6599999999.999999``).
These helpers decide lot membership and limit breaches in lot units with a small slack instead of
by raw ``==`` / ``>``.

They are numba kernels, callable from Python and inlined into the compiled risk rules
(:mod:`scalper.risk.kelly`, :mod:`scalper.risk.limits`), so both use the same arithmetic.
"""

from __future__ import annotations

import math

import numpy as np

from scalper.lowlevel.jit import inline_kernel

_SNAP_LOTS = 1e-9
_SNAP_RELATIVE = 1e-12
# A lot count within 1e-9 lot (the classic round(x, 9)) plus 1e-12 of itself of a whole number is
# that whole number; the relative part is needed once the count reaches ~1e7 lots (satoshi lots),
# where float error alone exceeds 1e-9 lot.
_SLACK_LOTS = 2 * _SNAP_LOTS
_SLACK_RELATIVE = 10 * _SNAP_RELATIVE
# Twice the snap, so a size snapped up to a whole lot by floor_to_lot never reads as a breach of the
# limit it was capped at, and float error accumulated over many fills does not either.


@inline_kernel
def _snap(lots: float) -> float:
    # Return the whole number of lots a count is within float noise of, else the count unchanged.
    # rint rounds half to even, as Python's round().
    nearest = np.rint(lots)
    if abs(lots - nearest) <= _SNAP_LOTS + _SNAP_RELATIVE * abs(nearest):
        return nearest
    return lots


@inline_kernel
def floor_to_lot(qty: float, lot_size: float) -> float:
    """Round a quantity down to a whole number of lots.

    Parameters
    ----------
    qty : float
        Quantity, base units, finite, >= 0.
    lot_size : float
        Lot size, base units, > 0.

    Returns
    -------
    float
        The largest multiple of ``lot_size`` not above ``qty``, base units. A ``qty`` within float
        noise (1e-9 lot plus 1e-12 relative) below a whole lot counts as that lot, so
        ``floor_to_lot(0.3, 0.1)`` is 3 lots, not 2.
    """
    return np.floor(_snap(qty / lot_size)) * lot_size


@inline_kernel
def is_lot_multiple(qty: float, lot_size: float) -> bool:
    """Return True when ``qty`` (base units) is, up to float noise, a whole number of ``lot_size`` lots."""
    lots = _snap(qty / lot_size)
    return math.isfinite(lots) and lots == np.floor(lots)


@inline_kernel
def exceeds(value: float, limit: float, unit: float) -> bool:
    """Return True when ``value`` is above ``limit`` by more than float rounding can explain.

    Parameters
    ----------
    value, limit : float
        The quantity checked and its limit, same units (base units or quote currency).
    unit : float
        One lot in the same units (``lot_size`` for positions, ``lot_size * price`` for notionals).
        The slack is ``2e-9 * unit + 1e-11 * |limit|``.
    """
    return value > limit + _SLACK_LOTS * unit + _SLACK_RELATIVE * abs(limit)
