"""A replay whose decisions are predicted in batches ahead of the replay: Python only where trading can happen.

Features do not depend on trading, so the batch pass computes every decision row, in a thread that
runs ahead of the replay on the other core (:class:`~scalper.features.batch.FeatureStream`). Predictions
are needed only where a decision can open a position: flat, nothing in flight. The replay asks for
them there, and rows are predicted in batches (one ONNX call per horizon) from that row on, the batch
doubling while the replay stays flat and starting small again after an entry; decisions taken with a
position open are never predicted. The replay then needs Python at a decision only when the decision
can change something:

* Flat with nothing in flight, a decision whose probability fails the sizing rules that depend on
  ``p`` alone (:meth:`RiskManager.refusals_by_p`, the compiled rule the entry itself runs) only
  counts its refusal. Those refusals are counted in bulk (:meth:`RiskManager.count_refusals`) and
  the kernel runs on (:meth:`FeatureState.decide_from`) to the next decision that may enter.
* Every decision that is taken goes through :meth:`EngineCore.on_decision`, as in the per-decision
  replay; :class:`BatchedDecisions` is the core's signal source
  (:attr:`EngineCore.signal <scalper.engine.core.EngineCore>`): the signal of a predicted row comes
  from :func:`~scalper.engine.core.choose_signals`, the compiled rule :meth:`EngineCore.predict` runs
  on one row, and a row the batch cannot answer is predicted by :meth:`EngineCore.predict` (the
  general path) on the batch pass's feature row.
* With a position open and nothing in flight, a decision only marks the position to the mid. The
  kernel passes over those decisions and the marks are applied before the next code, in order, at
  the batch pass's mid (:meth:`RiskManager.mark_many`).

``tests/realdata/test_batch_predictions.py`` checks on GOOG that fills, PnL, peak equity, drawdown,
approvals, refusal counts and every prediction made equal those of a replay that predicts and takes
every decision in Python.
"""

from __future__ import annotations

from typing import ClassVar

import numpy as np

from scalper.engine.core import EngineCore, Prediction, Signal, choose_signals
from scalper.features.batch import FeatureStream
from scalper.features.kernels import CODE_DECISION, I_DECISION_TS, I_NEXT_GRID, INT64_MAX, INT64_MIN
from scalper.models.inference import ModelSet
from scalper.risk.intent import RejectReason

# Rows per ONNX call: small after an entry, because a position typically opens within a few flat
# decisions and every row predicted past it is wasted; doubling while flat, so a long flat stretch
# costs few calls.
MIN_BATCH = 2
MAX_BATCH = 4096


class BatchDivergence(RuntimeError):
    """The event-by-event replay reached a decision the batch pass did not (a kernel bug, never data).

    No fallback: the replay's kernel keeps only the book (:meth:`FeatureState.book_only`), so there is
    no feature row for such a decision, and trading on with another row would hide the bug."""


class BatchedDecisions:
    """The batch pass's signals, handed to the core decision by decision, inert ones skipped: the
    :class:`~scalper.engine.core.InertSkipping` decisions of :meth:`EngineCore.drive`.

    Parameters
    ----------
    features : FeatureStream
        The batch pass (decision rows and mid series), possibly still running in its thread: every
        read waits for the rows it needs.
    models : ModelSet
        Predicts rows in batches, one call per horizon.
    core : EngineCore
        The core the replay drives; its state is switched to book-only (features come from the pass)
        and its :attr:`~scalper.engine.core.EngineCore.signal` becomes :meth:`signal`. Its risk manager
        screens and counts the refusals decided by ``p`` alone.
    trade_from_ns : int
        No entry before this time.

    Attributes
    ----------
    fallbacks : int
        Decisions the batch could not answer, predicted by :meth:`EngineCore.predict` instead.
    """

    skips_inert: ClassVar[bool] = True

    def __init__(
        self,
        features: FeatureStream,
        models: ModelSet,
        core: EngineCore,
        trade_from_ns: int,
    ) -> None:
        m, h = features.max_rows, len(models.predictors)
        self.features = features
        self.models = models
        self.core = core
        self.state = core.state
        self.trade_from_ns = trade_from_ns
        # Rows before trade_from_ns can neither trade nor count in the report: never predicted. Their
        # number is known once the pass is past trade_from_ns.
        self._first: int | None = None
        self._done = 0  # rows [_first, _done) are predicted or were passed over with a position open
        self._batch = MIN_BATCH
        self._classes = np.full((m, h), -1, dtype=np.int8)  # -1: not predicted
        self._p = np.zeros(m)
        self._side = np.zeros(m, dtype=np.int8)
        self._horizon = np.zeros(m, dtype=np.int64)
        self._blocked = np.zeros(m, dtype=np.int8)
        self._row = 0  # the next batch row not yet accounted for
        self.fallbacks = 0
        self._predict = core.predict
        self.state.book_only()
        core.signal = self.signal

    def predictions(self) -> Prediction:
        """Every row's classes once the replay is over (-1: not predicted), for the report."""
        fm = self.features.result()
        return Prediction(fm.ts, self._classes[: len(fm.ts)])

    def _first_row(self, wait: bool) -> int | None:
        # The first row at or after trade_from_ns; None while the pass is short of it and wait is False.
        if self._first is None and (wait or self.features.is_past(self.trade_from_ns)):
            self._first = self.features.rows_before(self.trade_from_ns)
            self._done = max(self._done, self._first)
            self._row = max(self._row, self._first)  # flat before trade_from_ns: nothing to count or mark
        return self._first

    def _predict_next_batch(self) -> bool:
        # Predict the next rows (False: none left); the batch doubles while the replay stays flat.
        lo = self._done
        hi = min(lo + self._batch, self.features.rows_ready(lo + self._batch))
        if hi <= lo:
            return False
        self._batch = min(2 * self._batch, MAX_BATCH)
        X32 = self.features.X[lo:hi].astype(np.float32)
        probas = [m.predict_batch(X32) for m in self.models.predictors]
        self._classes[lo:hi], self._p[lo:hi], self._side[lo:hi], self._horizon[lo:hi] = choose_signals(
            probas, self.models.horizons_ns
        )
        self.core.risk.refusals_by_p(self._p[lo:hi], out=self._blocked[lo:hi])
        self._done = hi
        return True

    def _next_may_enter(self, row: int) -> tuple[int, bool]:
        # (first row >= row whose p passes the p-only sizing rules, False), predicting as far as
        # needed; (number of rows, True) when there is none.
        self._done = max(self._done, row)  # rows passed over with a position open stay unpredicted
        while True:
            if row >= self._done and not self._predict_next_batch():
                return self._done, True
            free = np.flatnonzero(self._blocked[row : self._done] == 0)
            if free.size:
                return row + int(free[0]), False
            row = self._done

    def decide(self, g_ns: int, i: int) -> None:
        """Take the decision at ``g_ns`` (ns) with :meth:`EngineCore.on_decision` on the batch pass's row
        for it (``i``, the event that revealed it, is not needed: the rows come in order).

        Raises
        ------
        BatchDivergence
            If ``g_ns`` is not the next decision of the batch pass.
        """
        if g_ns >= self.trade_from_ns:
            self._first_row(wait=True)
        row = self._row
        if row >= self.features.rows_ready(row + 1) or self.features.ts[row] != g_ns:
            raise BatchDivergence(f"decision {row} at {g_ns} ns does not match the batch pass")
        self.core.on_decision(g_ns, self.features.X[row])
        self._row = row + 1

    def signal(self, features: np.ndarray) -> Signal:
        """The core's signal for the current decision's row ``features`` (float64[N_FEATURES], the batch
        pass's row): the batch's answer, predicting the next batch from this row when it is not yet
        predicted; when the batch has no prediction for the row, :meth:`EngineCore.predict`'s (counted in
        :attr:`fallbacks`, its classes kept for the report). ``asked`` is True: the models were asked
        for this row."""
        row = self._row
        self._done = max(self._done, row)
        if row == self._done:
            self._predict_next_batch()
        classes = self._classes[row]
        if classes[0] >= 0:  # -1: the batch has no prediction for this row
            return float(self._p[row]), int(self._side[row]), int(self._horizon[row]), classes, True
        self.fallbacks += 1
        p, side, horizon_ns, classes, asked = self._predict(features)
        self._classes[row] = classes
        return p, side, horizon_ns, classes, asked

    def on_invalid(self) -> None:
        """Nothing: the kernel resumes deciding once the book is valid again."""

    def before(self, code: int) -> None:
        """Before any code: mark a quiet position at every decision the kernel passed over."""
        # Nothing changes the core between two codes, so it is quiet now iff it was after the last one.
        if not self.core.is_quiet():
            return
        ist = self.state.ist
        bound = int(ist[I_DECISION_TS]) if code & CODE_DECISION else int(ist[I_NEXT_GRID])
        end = self.features.rows_before(bound)
        if end > self._row:
            f = self.features
            self.core.risk.mark_many(f.mid_at(f.ts[self._row : end]) * self.core.instrument.tick_size)
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
        if self._first_row(wait=False) is None:
            state.decide_from(self.trade_from_ns)  # flat until trading starts: nothing to count
            return
        row = self._row
        nxt, at_end = self._next_may_enter(row)
        if nxt > row:
            for reason, count in enumerate(np.bincount(self._blocked[row:nxt]).tolist()):
                if reason and count:
                    core.risk.count_refusals(RejectReason(reason), count)
            self._row = nxt
        state.decide_from(INT64_MAX if at_end else int(self.features.ts[nxt]))
