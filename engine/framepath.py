"""The daemon's hot path: a raw depthUpdate frame scanned, sequenced, applied and featurised in one numba call.

Apart, the steps cost a numba dispatch each (the dispatcher checks and unboxes every array argument,
and these kernels take many), plus the Python between them: the sequencer's id check, six column
views, a second call to continue after a decision. :func:`run_depth_frame` does the frame scan
(:mod:`~scalper.ingest.binance.fastdepth`), the id continuation
(:func:`~scalper.ingest.binance.sequencer.continue_ids`) and ``run_until`` on the new events at
once, and returns where ``run_until`` stopped, so the caller only handles the code (a decision, a
wake-up, a watch), exactly as :meth:`~scalper.engine.core.EngineCore.drive` would.

Every event of a depthUpdate frame carries the frame's time, so a decision due before that time needs
nothing from the levels: it is read off the frame's head and reported before the levels are scanned
(``tests/realdata/test_framepath_realdata.py``: the same decisions, after the same events, with the
same features as the general path, on every frame of a recorded session).

:func:`run_depth_frame` takes its arrays one by one, in the order of the records they belong to (the
scan buffers of :meth:`~scalper.ingest.binance.fastdepth.DepthFrameParser.scan_args`, then
:class:`~scalper.features.kernels.BookArrays`, :class:`~scalper.features.kernels.WindowArrays` and the
feature row): it runs once per frame, and numba's dispatcher types a record (NamedTuple) argument in
Python, at a cost of the order of the whole call, where it types an array in C.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from scalper.features.kernels import FeatureState, due_before, run_until
from scalper.ingest.binance.fastdepth import NOT_HANDLED, DepthFrameParser, frame_head, take_depth_frame
from scalper.ingest.binance.sequencer import continues
from scalper.lowlevel.jit import kernel

NOT_RUN = -1
"""Code of a frame that was only scanned: no event applied yet."""

DUE_BEFORE_FRAME = -2
"""Event count :func:`run_depth_frame` reports when a code is due before the frame: nothing scanned yet."""


@kernel
def run_depth_frame(
    b,
    ids,
    tick_m,
    tick_k,
    header,
    ts,
    kind,
    side,
    price_tick,
    size,
    flags,
    px,
    sz,
    n,
    lpx,
    lsz,
    ln,
    ist,
    fst,
    rb_ts,
    rb_val,
    feat_out,
):
    """Scan one frame and, when it continues the synced book, apply its events until one needs the caller.

    Parameters
    ----------
    b : ndarray
        uint8[n], the frame's bytes.
    ids : ndarray
        int64, the sequencer's ``ids`` (:func:`~scalper.ingest.binance.sequencer.continue_ids`).
    tick_m, tick_k, header, ts, kind, side, price_tick, size, flags
        :meth:`DepthFrameParser.scan_args`: tick size and the buffers the frame is scanned into (the
        event buffers in :class:`~scalper.features.kernels.EventColumns` order).
    px, sz, n, lpx, lsz, ln : ndarray
        The book, :class:`~scalper.features.kernels.BookArrays` (``FeatureState.book``), updated in place.
    ist, fst, rb_ts, rb_val : ndarray
        The feature windows, :class:`~scalper.features.kernels.WindowArrays` (``FeatureState.windows``).
    feat_out : ndarray
        float64[N_FEATURES], the decision's feature row (``FeatureState.feat``).

    Returns
    -------
    (int, int, int)
        ``(m, i, code)``: ``m`` events scanned (:data:`NOT_HANDLED` and nothing changed when the frame is
        not a depthUpdate continuing the book), then ``run_until``'s result on the first ``m`` events.
        ``(DUE_BEFORE_FRAME, 0, code)`` when a decision or a wake-up is due before the frame's time,
        read from its head (a futures frame that continues the book): the code is reported before the
        levels are even scanned; handle it and call again with the same frame.
    """
    t_ms, first, final, prev = frame_head(b)
    if t_ms >= 0 and continues(ids, first, final, prev):
        # Every event of the frame is at t: what is due before t needs nothing from the levels.
        due = due_before(px, sz, n, ist, fst, rb_ts, rb_val, t_ms * 1_000_000, feat_out)
        if due:
            return DUE_BEFORE_FRAME, 0, due
    m = take_depth_frame(b, ids, tick_m, tick_k, header, ts, kind, side, price_tick, size, flags)
    if m <= 0:
        return m, 0, 0
    i, code = run_until(
        px,
        sz,
        n,
        lpx,
        lsz,
        ln,
        ist,
        fst,
        rb_ts,
        rb_val,
        ts[:m],
        kind[:m],
        side[:m],
        price_tick[:m],
        size[:m],
        flags[:m],
        0,
        feat_out,
    )
    return m, i, code


class DepthFramePath:
    """The feed's hot path (:class:`~scalper.ingest.binance.feed.HotPath`) into a kernel state.

    Parameters
    ----------
    tick_size : float
        Price increment, quote currency.
    state : FeatureState
        The kernel state the events are applied to.
    on_frame : callable
        ``on_frame(m, i, code, now)`` after each frame taken: ``m`` events (:meth:`columns`), of which
        the first ``i`` are applied and ``code`` is ``run_until``'s, or :data:`NOT_RUN` when none is.
    hold : callable
        True when the next frame must only be scanned: the caller has work due before its events.

    Attributes
    ----------
    last_frame : bytes or None
        The raw bytes of the last depthUpdate frame taken (keep-warm scans it again,
        :mod:`scalper.engine.prepared`).
    """

    def __init__(
        self,
        tick_size: float,
        state: FeatureState,
        on_frame: Callable[[int, int, int, int], None],
        hold: Callable[[], bool],
    ) -> None:
        self.parser = DepthFrameParser(tick_size)
        self.header = self.parser.header
        self.on_frame = on_frame
        self.hold = hold
        self._args = (*self.parser.scan_args(), *state.book, *state.windows, state.feat)
        self.last_frame: bytes | None = None

    def take(self, raw: bytes, ids: np.ndarray, now: int) -> int:
        """Take one frame (see :class:`~scalper.ingest.binance.feed.HotPath`); return its event count or -1.

        A decision or wake-up due before the frame goes to ``on_frame(0, 0, code, now)`` first.
        """
        b = np.frombuffer(raw, dtype=np.uint8)
        while not self.hold():
            m, i, code = run_depth_frame(b, ids, *self._args)
            if m != DUE_BEFORE_FRAME:
                break
            self.on_frame(0, 0, code, now)
        else:
            m = take_depth_frame(b, ids, *self.parser.scan_args())
            i, code = 0, NOT_RUN
        if m == NOT_HANDLED:
            return m
        self.last_frame = raw
        if m:
            self.on_frame(m, i, code, now)
        return m

    def columns(self, m: int) -> tuple[np.ndarray, ...]:
        """Views ``(ts_event, kind, side, price_tick, size, flags)`` of the last frame's ``m`` events."""
        return self.parser.columns(m)
