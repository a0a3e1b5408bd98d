"""Batch path: features at every decision point of a tick file, in one numba loop."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalper.features.kernels import I_GRID_NS, FeatureState, run_batch
from scalper.features.registry import FEATURE_NAMES, N_FEATURES
from scalper.ingest.tickfile import TickData


@dataclass(frozen=True)
class FeatureMatrix:
    """Decision rows of one replay.

    Attributes
    ----------
    ts : ndarray
        int64[M], decision times, ns since the epoch.
    X : ndarray
        float64[M, N_FEATURES], columns in ``FEATURE_NAMES`` order.
    mid_ts, mid_tick : ndarray
        int64[K], float64[K]: the mid price (ticks, may end in .5) after every valid message, and its time.
    """

    ts: np.ndarray
    X: np.ndarray
    mid_ts: np.ndarray
    mid_tick: np.ndarray
    names: tuple[str, ...] = FEATURE_NAMES

    def mid_at(self, t: np.ndarray) -> np.ndarray:
        """Return the mid (ticks) as of each time in ``t`` (last sample at or before it); NaN before the first."""
        idx = np.searchsorted(self.mid_ts, t, side="right") - 1
        out = np.full(len(t), np.nan)
        ok = idx >= 0
        out[ok] = self.mid_tick[idx[ok]]
        return out


def compute_features(data: TickData, state: FeatureState | None = None) -> FeatureMatrix:
    """Replay ``data`` through :func:`features.kernels.step` and return every decision row.

    Parameters
    ----------
    data : TickData
        A schema-v1 tick file.
    state : FeatureState, optional
        Starting state (its grid sets the decision spacing); a fresh 250 ms-grid state by default.
    """
    state = state or FeatureState()
    m = len(data)
    grid = int(state.ist[I_GRID_NS])
    max_rows = 2 if m == 0 else int((data.ts_event[-1] - data.ts_event[0]) // grid) + 2
    X = np.empty((max_rows, N_FEATURES))
    ts = np.empty(max_rows, dtype=np.int64)
    mid_ts = np.empty(m, dtype=np.int64)
    mid = np.empty(m)
    n_dec, n_mid = run_batch(
        *state.arrays(),
        *data.kernel_columns(),
        X,
        ts,
        mid_ts,
        mid,
    )
    return FeatureMatrix(ts=ts[:n_dec].copy(), X=X[:n_dec].copy(), mid_ts=mid_ts[:n_mid].copy(), mid_tick=mid[:n_mid].copy())
