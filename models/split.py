"""Purged, embargoed walk-forward folds over time-ordered decision rows.

API (used by ``models/train.py`` and the evaluation): :func:`walk_forward` returns one :class:`Fold` per
test span, each with boolean row masks for training, validation (early stopping and probability
calibration) and test, in that time order. Rows may come from several tick files (sessions) as long as
their times are non-decreasing. :func:`combinatorial_purged_cv` gives the splits of combinatorial purged
cross-validation (AFML ch. 12), for studies that want many backtest paths rather than one.

Lopez de Prado (2018), "Advances in Financial Machine Learning", ch. 7.4: a row whose label span
(decision time to the time its label is decided) reaches into a later part is purged, and an embargo
leaves a gap before each later part, so nothing the model is fitted or calibrated on depends on prices
it is tested on.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Literal

import numpy as np

Window = Literal["expanding", "rolling"]


@dataclass(frozen=True)
class Fold:
    """Row masks (bool[M]) of one walk-forward fold and its span boundaries (ns).

    Attributes
    ----------
    index : int
        Fold number, 0 first (oldest test span).
    train, val, test : ndarray
        bool[M]: rows fitted on, rows for early stopping and calibration, rows scored.
    train_start_ns, val_start_ns, test_start_ns, test_end_ns : int
        Boundaries: training rows lie in ``[train_start_ns, val_start_ns)``, validation rows in
        ``[val_start_ns, test_start_ns)``, test rows in ``[test_start_ns, test_end_ns)`` (the last fold
        includes ``test_end_ns``, the last row's time).
    embargo_ns : int
        Gap left before the validation and the test span, ns.
    """

    index: int
    train: np.ndarray
    val: np.ndarray
    test: np.ndarray
    train_start_ns: int
    val_start_ns: int
    test_start_ns: int
    test_end_ns: int
    embargo_ns: int


def walk_forward(
    ts: np.ndarray,
    fractions: tuple[float, float, float],
    embargo_ns: int,
    n_folds: int = 1,
    window: Window = "expanding",
    label_end_ns: np.ndarray | None = None,
) -> list[Fold]:
    """Cut decision times ``ts`` into ``n_folds`` walk-forward folds.

    The time span ``T`` of ``ts`` is cut by ``fractions = (train, val, test)``: the first fold trains on
    the first ``train * T``, validates on the next ``val * T`` and tests on the next ``test * T / n_folds``;
    each later fold moves validation and test forward by one test span. An expanding window trains on
    everything before its validation span, a rolling one on the ``train * T`` before it. The last
    ``test * T`` is thus tested exactly once. With one fold this is a plain train / validation / test split.

    Purging: a training row is dropped when its time lies within ``embargo_ns`` before the validation
    span or its label ends at or after the validation start; a validation row likewise before the test
    span.

    Parameters
    ----------
    ts : ndarray
        int64[M], decision times, ns, non-decreasing.
    fractions : (float, float, float)
        Shares of the time span, each > 0, summing to 1.
    embargo_ns : int
        Gap before each later part, ns, >= 0 (at least the longest horizon).
    n_folds : int
        Number of test spans, >= 1.
    window : "expanding" or "rolling"
    label_end_ns : ndarray, optional
        int64[M], when each row's label is decided, ns (>= its decision time); ``ts`` + nothing when
        None (then the embargo alone must cover the label horizon).

    Raises
    ------
    ValueError
        If the fractions, embargo, fold count or window are invalid, ``ts`` is empty or decreasing, or
        a part of some fold comes out empty (the message names the fold and part).
    """
    f_train, f_val, f_test = fractions
    if abs(f_train + f_val + f_test - 1.0) > 1e-9 or min(fractions) <= 0:
        raise ValueError(f"split fractions must be > 0 and sum to 1, got {fractions}")
    if embargo_ns < 0:
        raise ValueError(f"embargo_ns must be >= 0, got {embargo_ns}")
    if n_folds < 1:
        raise ValueError(f"n_folds must be >= 1, got {n_folds}")
    if window not in ("expanding", "rolling"):
        raise ValueError(f"window must be 'expanding' or 'rolling', got {window!r}")
    ts = np.asarray(ts, dtype=np.int64)
    if ts.size == 0:
        raise ValueError("cannot split zero rows")
    if (np.diff(ts) < 0).any():
        raise ValueError("decision times must be non-decreasing")
    end = ts if label_end_ns is None else np.asarray(label_end_ns, dtype=np.int64)
    if end.shape != ts.shape or (end < ts).any():
        raise ValueError("label_end_ns must have one entry per row, each >= its decision time")
    t0, t1 = int(ts[0]), int(ts[-1])
    span = t1 - t0
    folds = []
    for k in range(n_folds):
        val_start = t0 + int(span * (f_train + f_test * k / n_folds))
        test_start = t0 + int(span * (f_train + f_val + f_test * k / n_folds))
        test_end = t0 + int(span * (f_train + f_val + f_test * (k + 1) / n_folds)) if k < n_folds - 1 else t1
        train_start = t0 if window == "expanding" else val_start - int(span * f_train)
        train = (ts >= train_start) & (ts < val_start - embargo_ns) & (end < val_start)
        val = (ts >= val_start) & (ts < test_start - embargo_ns) & (end < test_start)
        test = (ts >= test_start) & ((ts < test_end) | (k == n_folds - 1))
        for name, mask in (("train", train), ("validation", val), ("test", test)):
            if not mask.any():
                raise ValueError(
                    f"fold {k}: the {name} span is empty: {ts.size} rows over {span / 1e9:.1f} s,"
                    f" {n_folds} fold(s), embargo {embargo_ns / 1e9:.1f} s"
                )
        folds.append(Fold(k, train, val, test, train_start, val_start, test_start, test_end, embargo_ns))
    return folds


@dataclass(frozen=True)
class CombinatorialSplit:
    """One split of combinatorial purged cross-validation.

    Attributes
    ----------
    test_groups : tuple of int
        The groups tested, in order.
    train, test : ndarray
        bool[M]: rows fitted on (purged and embargoed), rows scored.
    """

    test_groups: tuple[int, ...]
    train: np.ndarray
    test: np.ndarray


def combinatorial_purged_cv(
    ts: np.ndarray,
    n_groups: int,
    n_test_groups: int,
    embargo_ns: int,
    label_end_ns: np.ndarray | None = None,
) -> list[CombinatorialSplit]:
    """Return every split of combinatorial purged cross-validation (Lopez de Prado 2018, AFML ch. 12.4).

    The rows are cut into ``n_groups`` groups of consecutive rows of (near) equal count; each of the
    ``C(n_groups, n_test_groups)`` splits tests one choice of ``n_test_groups`` groups and trains on the
    rest, less the rows whose label span ``[ts, label_end]`` touches a tested group's time span (purge)
    and the rows starting within ``embargo_ns`` after a tested group ends (embargo). Every row is tested
    in ``C(n_groups - 1, n_test_groups - 1)`` splits, which make that many backtest paths.

    Parameters
    ----------
    ts : ndarray
        int64[M], decision times, ns, non-decreasing.
    n_groups, n_test_groups : int
        ``1 <= n_test_groups < n_groups <= M``.
    embargo_ns : int
        ns, >= 0.
    label_end_ns : ndarray, optional
        int64[M], when each label is decided (>= its decision time); ``ts`` when None.

    Raises
    ------
    ValueError
        If a count or the embargo is out of range, or the times or label ends are invalid.
    """
    ts = np.asarray(ts, dtype=np.int64)
    if not 1 <= n_test_groups < n_groups <= ts.size:
        raise ValueError(f"need 1 <= n_test_groups < n_groups <= rows, got {n_test_groups}, {n_groups}, {ts.size}")
    if embargo_ns < 0:
        raise ValueError(f"embargo_ns must be >= 0, got {embargo_ns}")
    if (np.diff(ts) < 0).any():
        raise ValueError("decision times must be non-decreasing")
    end = ts if label_end_ns is None else np.asarray(label_end_ns, dtype=np.int64)
    if end.shape != ts.shape or (end < ts).any():
        raise ValueError("label_end_ns must have one entry per row, each >= its decision time")
    bounds = np.linspace(0, ts.size, n_groups + 1).round().astype(np.int64)
    group = np.repeat(np.arange(n_groups), np.diff(bounds))
    first_ts, last_ts = ts[bounds[:-1]], ts[bounds[1:] - 1]
    splits = []
    for chosen in itertools.combinations(range(n_groups), n_test_groups):
        test = np.isin(group, chosen)
        train = ~test
        for g in chosen:
            train &= ~((ts <= last_ts[g]) & (end >= first_ts[g]))  # label span touches the tested span
            train &= ~((ts > last_ts[g]) & (ts <= last_ts[g] + embargo_ns))
        splits.append(CombinatorialSplit(tuple(chosen), train, test))
    return splits
