"""A replay whose decisions are predicted in batches ahead of the replay: Python only where trading can happen.

Features do not depend on trading, so the batch pass computes every decision row first. Predictions
are needed only where a decision can open a position: flat, nothing in flight. The replay asks for
them there, and rows are predicted in batches (one ONNX call per horizon) from that row on, the batch
doubling while the replay stays flat and starting small again after an entry; decisions taken with a
position open are never predicted. The replay then needs Python at a decision only when the decision
can change something:

* Flat with nothing in flight, a decision whose probability fails the sizing rules that depend on
  ``p`` alone (:func:`scalper.risk.kelly.edge_rejections`) only counts its refusal. Those refusals
  are counted in bulk and the kernel runs on (:meth:`FeatureState.decide_from`) to the next decision
  that may enter.
* With a position open and nothing in flight, a decision only marks the position to the mid. The
  kernel passes over those decisions and the marks are applied before the next code, in order, at
  the batch pass's mid (:meth:`RiskManager.mark_many`).

``tests/realdata/test_batch_predictions.py`` checks on GOOG that fills, PnL, peak equity, drawdown,
approvals, refusal counts and every prediction made equal those of a replay that predicts and takes
every decision in Python.
"""

from __future__ import annotations

import numpy as np

from scalper.engine.core import EngineCore, Prediction, choose_signals
from scalper.features.batch import FeatureMatrix
from scalper.features.kernels import CODE_DECISION, I_DECISION_TS, I_NEXT_GRID, INT64_MAX, INT64_MIN
from scalper.models.inference import ModelSet
from scalper.risk.config import RiskConfig
from scalper.risk.intent import RejectReason
from scalper.risk.kelly import edge_rejections


# Rows per ONNX call: small after an entry (a position typically opens within a few flat decisions),
# doubling while flat. ETHUSDT, 3 x 300 trees: 288 of 1,910 rows predicted from 2 (392 from 8, 528 from 16).
MIN_BATCH = 2
MAX_BATCH = 4096


class BatchDivergence(RuntimeError):
    """The event-by-event replay reached a decision the batch pass did not (a kernel bug, never data)."""


class BatchedDecisions:
    """The batch pass's signals, handed to the core decision by decision, inert ones skipped.

    Parameters
    ----------
    fm : FeatureMatrix
        Decision rows and mid series of the batch pass.
    models : ModelSet
        Predicts every row, one call per horizon.
    core : EngineCore
        The core the replay drives; its state is switched to book-only (features came from ``fm``).
    risk_cfg : RiskConfig
    fee_bps : float
        Taker fee per side, bps (the edge rule counts it).
    trade_from_ns : int
        No entry before this time.
    """

    def __init__(
        self, fm: FeatureMatrix, models: ModelSet, core: EngineCore, risk_cfg: RiskConfig, fee_bps: float, trade_from_ns: int
    ) -> None:
        m, h = len(fm.ts), len(models.predictors)
        self.fm = fm
        self.models = models
        self.core = core
        self.state = core.state
        self.trade_from_ns = trade_from_ns
        self.risk_cfg = risk_cfg
        self.fee_bps = fee_bps
        # Rows before trade_from_ns can neither trade nor count in the report: never predicted.
        self._first = int(np.searchsorted(fm.ts, trade_from_ns, side="left"))
        self._done = self._first  # rows [_first, _done) are predicted
        self._batch = MIN_BATCH
        self._classes = np.full((m, h), -1, dtype=np.int8)  # -1: not predicted
        self._p = np.zeros(m)
        self._side = np.zeros(m, dtype=np.int8)
        self._horizon = np.zeros(m, dtype=np.int64)
        self._blocked = np.zeros(m, dtype=np.int8)
        self.predictions = Prediction(fm.ts, self._classes)
        self._row = 0  # the next batch row not yet accounted for
        self.state.book_only()

    def _predict_next_batch(self) -> None:
        # Predict the next rows; the batch doubles while the replay stays flat (see after()).
        lo = self._done
        hi = min(lo + self._batch, len(self.fm.ts))
        self._batch = min(2 * self._batch, MAX_BATCH)
        X32 = self.fm.X[lo:hi].astype(np.float32)
        probas = [m.predict_batch(X32) for m in self.models.predictors]
        self._classes[lo:hi], self._p[lo:hi], self._side[lo:hi], self._horizon[lo:hi] = choose_signals(probas, self.models.horizons_ns)
        self._blocked[lo:hi] = edge_rejections(self._p[lo:hi], self.risk_cfg, self.fee_bps)
        self._done = hi

    def _next_may_enter(self, row: int) -> int:
        # First row >= row (and >= trade_from_ns) whose p passes the p-only sizing rules, predicting
        # as far as needed; len(fm.ts) when there is none.
        row = max(row, self._first)
        self._done = max(self._done, row)  # rows passed over with a position open stay unpredicted
        while True:
            if row >= self._done:
                if self._done >= len(self.fm.ts):
                    return len(self.fm.ts)
                self._predict_next_batch()
            free = np.flatnonzero(self._blocked[row : self._done] == 0)
            if free.size:
                return row + int(free[0])
            row = self._done

    def decide(self, g: int) -> None:
        """Hand the signal of the decision at ``g`` (ns) to the core.

        Raises
        ------
        BatchDivergence
            If ``g`` is not the next decision of the batch pass.
        """
        row = self._row
        if row >= len(self.fm.ts) or self.fm.ts[row] != g:
            raise BatchDivergence(f"decision {row} at {g} ns does not match the batch pass")
        if self.core.can_enter(g):
            self._done = max(self._done, row)  # rows passed over with a position open stay unpredicted
            if row == self._done:
                self._predict_next_batch()
        self.core.on_signal(g, self._classes[row], float(self._p[row]), int(self._side[row]), int(self._horizon[row]))
        self._row = row + 1

    def before(self, code: int) -> None:
        """Before any code: mark a quiet position at every decision the kernel passed over."""
        # Nothing changes the core between two codes, so it is quiet now iff it was after the last one.
        if not self.core.is_quiet():
            return
        ist = self.state.ist
        bound = int(ist[I_DECISION_TS]) if code & CODE_DECISION else int(ist[I_NEXT_GRID])
        end = int(np.searchsorted(self.fm.ts, bound, side="left"))
        if end > self._row:
            fm = self.fm
            self.core.risk.mark_many(fm.mid_at(fm.ts[self._row : end]) * self.core.instrument.tick_size)
            self._row = end

    def after(self) -> None:
        """After any code: tell the kernel which decisions it may pass over from now on."""
        core, state = self.core, self.state
        if core.is_quiet():
            state.decide_from(INT64_MAX)
            return
        if not core.is_idle():
            self._batch = MIN_BATCH  # an entry is in flight: the next flat stretch may be short
            state.decide_from(INT64_MIN)
            return
        fm, row = self.fm, self._row
        nxt = self._next_may_enter(row)
        if nxt > row:
            seg = self._blocked[row:nxt][fm.ts[row:nxt] >= self.trade_from_ns]
            counts = core.risk.reject_counts
            for reason, count in enumerate(np.bincount(seg).tolist()):
                if reason and count:
                    counts[RejectReason(reason)] += count
            self._row = nxt
        state.decide_from(int(fm.ts[nxt]) if nxt < len(fm.ts) else INT64_MAX)
