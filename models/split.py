"""Time-ordered train / validation / test split with an embargo between the parts."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class TimeSplit:
    """Boolean row masks (bool[M]) and the boundary times (ns) of a time-ordered split."""

    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    val_start_ns: int
    test_start_ns: int
    embargo_ns: int


def time_split(ts: np.ndarray, fractions: tuple[float, float, float], embargo_ns: int) -> TimeSplit:
    """Split decision times ``ts`` (int64[M] ns, non-decreasing) into train, validation and test spans.

    The boundaries cut the time span (not the row count) by ``fractions``. Rows of a part whose time
    lies within ``embargo_ns`` before the next part's start are purged, so no label of an earlier part
    (which looks ``h <= embargo_ns`` ahead) overlaps a later part (Lopez de Prado 2018, "Advances in
    Financial Machine Learning", ch. 7: purging and embargo).

    Raises
    ------
    ValueError
        If the fractions do not sum to 1, the embargo is negative, or a part comes out empty.
    """
    f_train, f_val, f_test = fractions
    if abs(f_train + f_val + f_test - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be > 0 and sum to 1, got {fractions}")
    if embargo_ns < 0:
        raise ValueError(f"embargo_ns must be >= 0, got {embargo_ns}")
    if ts.size == 0:
        raise ValueError("cannot split zero rows")
    t0, t1 = int(ts[0]), int(ts[-1])
    val_start = t0 + int((t1 - t0) * f_train)
    test_start = t0 + int((t1 - t0) * (f_train + f_val))
    train = ts < val_start - embargo_ns
    val = (ts >= val_start) & (ts < test_start - embargo_ns)
    test = ts >= test_start
    for name, mask in (("train", train), ("validation", val), ("test", test)):
        if not mask.any():
            raise ValueError(
                f"the {name} span is empty: {ts.size} rows over {(t1 - t0) / 1e9:.1f} s"
                f" with embargo {embargo_ns / 1e9:.1f} s"
            )
    return TimeSplit(train, val, test, val_start, test_start, embargo_ns)
