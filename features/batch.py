"""Batch path: features at every decision point of a tick file, in one numba loop.

The state's feature set picks the loop once (``features/kernel_sets.py``): ``features.kernels.run_batch``
for v1, ``features.kernels_v2.run_batch`` for v2 (which also takes the session clock from the file's venue
when the state has none, ``features/session.py``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

import numpy as np

from scalper.features.kernel_sets import kernel_set
from scalper.features.kernels import (
    I_GRID_NS,
    INT64_MAX,
    INT64_MIN,
    N_PROGRESS,
    P_PAST,
    P_ROWS,
    BatchOutputs,
    EventColumns,
    FeatureState,
    load_progress,
)
from scalper.features.registry import FEATURE_NAMES, feature_names
from scalper.features.session import session_clock
from scalper.ingest.tickfile import TickData

_POLL_S = 50e-6  # how long a replay that caught up with the pass sleeps between looks


@dataclass(frozen=True)
class FeatureMatrix:
    """Decision rows of one replay.

    Attributes
    ----------
    ts : ndarray
        int64[M], decision times, ns since the epoch.
    X : ndarray
        float64[M, F], columns in ``names`` order (the state's feature set: ``features/registry.py``).
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
    return FeatureStream(data, state).result()


class FeatureStream:
    """The batch pass over a tick file, optionally run in a background thread that a replay follows.

    A backtest replays the file a second time behind this pass (``backtest/batched.py``): with
    ``background=True`` the two run at once on two cores (:func:`run_batch` releases the GIL and
    publishes its progress as it goes), and the replay waits (:meth:`rows_ready`, :meth:`rows_before`)
    only when it catches up.

    Memory order: the pass stores each progress counter with a release store after the rows it
    counts; this side uses a count only once an acquire load (:func:`load_progress`) has returned it,
    so the rows are visible whatever the CPU. A plain read of a counter is only a hint of when to do
    that load (a stale hint delays, never exposes an unwritten row). Counts once acquired are kept,
    so a replay that is behind the pass asks nothing of the shared array.

    Parameters
    ----------
    data : TickData
    state : FeatureState, optional
        Starting state; a fresh 250 ms-grid state by default.
    background : bool
        Run in a thread; False runs the whole pass here, now.

    Attributes
    ----------
    ts, X : ndarray
        int64[max_rows], float64[max_rows, F]: decision rows (F columns of the state's feature set), as
        many written as :meth:`rows_ready` has reported.
    names : tuple of str
        The column names of ``X``.
    """

    def __init__(self, data: TickData, state: FeatureState | None = None, background: bool = False) -> None:
        state = state or FeatureState()
        m = len(data)
        grid = int(state.ist[I_GRID_NS])
        self.max_rows = 2 if m == 0 else int((data.ts_event[-1] - data.ts_event[0]) // grid) + 2
        self.names = feature_names(state.feature_set)
        self.X = np.empty((self.max_rows, len(self.names)))
        self.ts = np.empty(self.max_rows, dtype=np.int64)
        self._mid_ts = np.empty(m, dtype=np.int64)
        self._mid = np.empty(m)
        self._progress = np.zeros(N_PROGRESS, dtype=np.int64)
        self._progress[P_PAST] = INT64_MIN
        self._known: tuple[int, int, int] = (0, 0, INT64_MIN)  # acquired (rows, mids, past), by P_* slot
        self._error: BaseException | None = None
        self._done = threading.Event()
        out = BatchOutputs(self.X, self.ts, self._mid_ts, self._mid, self._progress)
        events = EventColumns(*data.kernel_columns())
        args: tuple
        self._runner = kernel_set(state.feature_set).run_batch
        if state.v2 is None:
            args = (state.book, state.windows, events, out)
        else:
            if not state.has_session and m:
                state.set_session(session_clock(data.instrument.venue, int(data.ts_event[0])))
            args = (state.book, state.windows, state.v2, events, out)
        if background:
            threading.Thread(target=self._run, args=args, name="feature-pass", daemon=True).start()
        else:
            self._run(*args)
            self._raise()

    def _run(self, *args) -> None:
        try:
            self._runner(*args)
        except BaseException as exc:  # noqa: BLE001 - handed to the waiting replay, raised there
            self._error = exc
        finally:
            self._progress[P_PAST] = INT64_MAX
            self._done.set()

    def _raise(self) -> None:
        if self._error is not None:
            raise RuntimeError("the feature pass failed") from self._error

    def _acquire(self) -> tuple[int, int, int]:
        # The acquire point: rows, mids and decisions these counts cover are visible after it.
        self._known = known = load_progress(self._progress)
        return known

    def _wait(self, slot: int, value: int) -> int:
        # Return an acquired count of `slot` >= value, or the final one once the pass has ended. The pass
        # runs without the GIL: poll the counter (a plain read, a hint), sleeping a little between looks.
        known = self._known[slot]
        if known >= value:
            return known
        p = self._progress
        while p[slot] < value and not self._done.is_set():
            time.sleep(_POLL_S)
        self._raise()
        return self._acquire()[slot]

    def is_past(self, t_ns: int) -> bool:
        """True when every decision before ``t_ns`` is written (no wait)."""
        if self._known[P_PAST] >= t_ns:
            return True
        return bool(self._progress[P_PAST] >= t_ns) and self._acquire()[P_PAST] >= t_ns

    def rows_ready(self, k: int) -> int:
        """Wait until ``k`` rows exist or the pass has ended; return a count of rows written (>= k, or
        every row once the pass has ended with fewer)."""
        return self._wait(P_ROWS, k)

    def rows_before(self, t_ns: int) -> int:
        """Wait until every decision before ``t_ns`` is written; return how many rows lie before it."""
        self._wait(P_PAST, t_ns)
        return int(np.searchsorted(self.ts[: self._known[P_ROWS]], t_ns, side="left"))

    def mid_at(self, t: np.ndarray) -> np.ndarray:
        """:meth:`FeatureMatrix.mid_at` on the mids written so far (wait with :meth:`rows_before` first)."""
        return self._matrix(copy=False).mid_at(t)

    def result(self) -> FeatureMatrix:
        """Wait for the end of the pass and return its rows and mid series."""
        self._done.wait()
        self._raise()
        return self._matrix(copy=True)

    def _matrix(self, copy: bool) -> FeatureMatrix:
        r, k, _ = self._acquire()
        cols = (self.ts[:r], self.X[:r], self._mid_ts[:k], self._mid[:k])
        ts, X, mid_ts, mid = (c.copy() for c in cols) if copy else cols
        return FeatureMatrix(ts=ts, X=X, mid_ts=mid_ts, mid_tick=mid, names=self.names)
