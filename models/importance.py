"""Feature importance of one walk-forward fold's model: LightGBM split gain, and permutation on the test span.

* Gain: the total loss reduction of the splits on each feature (LightGBM ``importance_type="gain"``),
  as a share of the model's total (sums to 1; all 0 for a model without a split).
* Permutation: how much the test span's log-loss (nats, of the probabilities the fold ships:
  calibrated when it has a calibration) rises when one feature's column is shuffled across the test rows,
  breaking its link with the labels and keeping its distribution (Breiman 2001, 'Random forests',
  Machine Learning 45(1), section 10; Fisher, Rudin & Dominici 2019 'model reliance'). Negative when
  the shuffled column scores better: noise the model does not need.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import log_loss


def gain_shares(gain: np.ndarray) -> np.ndarray:
    """Return float64[F] ``gain / gain.sum()`` (zeros when the total is 0): split gain per feature."""
    gain = np.asarray(gain, dtype=np.float64)
    total = gain.sum()
    return gain / total if total > 0 else np.zeros_like(gain)


def permutation_log_loss(
    predict: Callable[[np.ndarray], np.ndarray], X: np.ndarray, y: np.ndarray, n_classes: int, seed: int
) -> np.ndarray:
    """Return float64[F]: the log-loss rise (nats) when each column of ``X`` is shuffled, one at a time.

    ``predict`` maps float64[M, F] rows to float64[M, n_classes] probabilities; ``y`` int64[M] labels in
    ``[0, n_classes)``. The same seeded permutation of the rows is used for every column.

    Raises
    ------
    ValueError
        If ``X`` has no row or ``y`` does not match it.
    """
    if len(X) == 0 or len(X) != len(y):
        raise ValueError(f"permutation importance needs rows and one label each, got {len(X)} rows, {len(y)} labels")
    labels = list(range(n_classes))
    base = log_loss(y, predict(X), labels=labels)
    order = np.random.default_rng(seed).permutation(len(X))
    out = np.empty(X.shape[1])
    work = X.copy()
    for j in range(X.shape[1]):
        work[:, j] = X[order, j]
        out[j] = log_loss(y, predict(work), labels=labels) - base
        work[:, j] = X[:, j]
    return out
