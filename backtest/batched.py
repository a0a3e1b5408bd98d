"""A replay whose every decision was predicted in advance: Python only where trading can happen.

Features and predictions do not depend on trading, so the batch pass computes every decision row and
one ONNX call per horizon predicts them all. The replay then needs Python at a decision only when the
decision can change something:

* Flat with nothing in flight, a decision whose probability fails the sizing rules that depend on
  ``p`` alone (:func:`scalper.risk.kelly.edge_rejections`) only counts its refusal. Those refusals
  are counted in bulk and the kernel runs on (:meth:`FeatureState.decide_from`) to the next decision
  that may enter.
* With a position open and nothing in flight, a decision only marks the position to the mid. The
  kernel passes over those decisions and the marks are applied before the next code, in order, at
  the batch pass's mid (:meth:`RiskManager.mark_many`).

``tests/realdata/test_batch_predictions.py`` checks on GOOG that fills, PnL, peak equity, drawdown,
approvals and refusal counts equal those of a replay that takes every decision in Python.
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
        # Rows before trade_from_ns can neither trade nor count in the report: they are not predicted
        # (class -1, p 0), which saves most of the inference when a test span follows the training span.
        first = int(np.searchsorted(fm.ts, trade_from_ns, side="left"))
        X32 = fm.X[first:].astype(np.float32)
        classes = np.full((len(fm.ts), len(models.predictors)), -1, dtype=np.int8)
        p = np.zeros(len(fm.ts))
        side = np.zeros(len(fm.ts), dtype=np.int8)
        horizon = np.zeros(len(fm.ts), dtype=np.int64)
        if len(X32):
            classes[first:], p[first:], side[first:], horizon[first:] = choose_signals(
                [m.predict_batch(X32) for m in models.predictors], models.horizons_ns
            )
        self.fm = fm
        self.core = core
        self.state = core.state
        self.trade_from_ns = trade_from_ns
        self.predictions = Prediction(fm.ts, classes)  # class -1: before trade_from_ns, not predicted
        # Python scalars: the core reads one row per decision.
        self._classes, self._p, self._side, self._horizon = classes, p.tolist(), side.tolist(), horizon.tolist()
        self._blocked = edge_rejections(p, risk_cfg, fee_bps)
        self._may_enter = np.flatnonzero((fm.ts >= trade_from_ns) & (self._blocked == 0))
        self._row = 0  # the next batch row not yet accounted for
        self.state.book_only()

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
        self.core.on_signal(g, self._classes[row], self._p[row], self._side[row], self._horizon[row])
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
            state.decide_from(INT64_MIN)
            return
        fm, row = self.fm, self._row
        k = int(np.searchsorted(self._may_enter, row))
        nxt = int(self._may_enter[k]) if k < len(self._may_enter) else len(fm.ts)
        if nxt > row:
            seg = self._blocked[row:nxt][fm.ts[row:nxt] >= self.trade_from_ns]
            counts = core.risk.reject_counts
            for reason, count in enumerate(np.bincount(seg).tolist()):
                if reason and count:
                    counts[RejectReason(reason)] += count
            self._row = nxt
        state.decide_from(int(fm.ts[nxt]) if nxt < len(fm.ts) else INT64_MAX)
