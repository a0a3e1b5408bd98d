"""Direction labels: did the mid move up, down or stay flat over the horizon after a decision?"""

from __future__ import annotations

import numpy as np

DOWN, FLAT, UP = 0, 1, 2
CLASS_NAMES = ("down", "flat", "up")
UNKNOWN = -1


def direction_labels(mid_now: np.ndarray, mid_later: np.ndarray, dead_zone_ticks: float) -> np.ndarray:
    """Return the class of each mid change: UP if it exceeds the dead zone, DOWN if below minus it, else FLAT.

    Parameters
    ----------
    mid_now, mid_later : ndarray
        float64[M], mid prices in ticks at the decision time and at decision time + horizon;
        NaN where unknown (the horizon runs past the data).
    dead_zone_ticks : float
        Half-width of the flat band, ticks, >= 0.

    Returns
    -------
    ndarray
        int8[M] with DOWN=0, FLAT=1, UP=2 and UNKNOWN=-1 where either mid is NaN.

    Raises
    ------
    ValueError
        If ``dead_zone_ticks`` is negative or not finite.
    """
    if not np.isfinite(dead_zone_ticks) or dead_zone_ticks < 0:
        raise ValueError(f"dead_zone_ticks must be finite and >= 0, got {dead_zone_ticks}")
    change = mid_later - mid_now
    out = np.full(change.shape, FLAT, dtype=np.int8)
    out[change > dead_zone_ticks] = UP
    out[change < -dead_zone_ticks] = DOWN
    out[~np.isfinite(change)] = UNKNOWN
    return out


def default_dead_zone(spread_ticks: np.ndarray) -> float:
    """Return half the median spread (ticks): the default flat band, so a move must beat half a spread."""
    if spread_ticks.size == 0:
        raise ValueError("cannot derive a dead zone from zero decision rows")
    return 0.5 * float(np.median(spread_ticks))
