"""The daemon's frame path (one numba call per frame, decisions read off the frame's head) takes the
same decisions, with the same features, and leaves the same book as the general path event by event;
the next decision's row peeked between frames is that decision's row. Checked on every depthUpdate of
a recorded Binance USD-M ETHUSDT session."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from scalper.engine.framepath import DepthFramePath
from scalper.features.kernels import (
    CODE_DECISION,
    I_DECISION_TS,
    I_EVENTS,
    INT64_MIN,
    PRE_MASK,
    FeatureState,
    peek_next_decision,
    run_until,
    step,
)
from scalper.ingest.binance import (
    BinanceOrderBookSequencer,
    EventBuffer,
    Market,
    Recording,
    event_time_ns,
    parse_message,
)
from scalper.ingest.binance.messages import DepthSnapshot, DepthUpdate

pytestmark = pytest.mark.realdata

FILE = "hftbacktest/binance_usdm/ethusdt_20240718.gz"
TICK = 0.01


class Engine:
    """A kernel state fed by the general path, recording each decision's time and features."""

    def __init__(self) -> None:
        self.state = FeatureState()
        self.seq = BinanceOrderBookSequencer(Market.USDM)
        self.events = EventBuffer(1 << 15)
        self.decisions: list[tuple[int, int, np.ndarray]] = []

    def record(self) -> None:
        # Decision time, events applied by then (a decision taken a frame early or late shows here even
        # when that frame moved no feature), and the features.
        ist = self.state.ist
        self.decisions.append((int(ist[I_DECISION_TS]), int(ist[I_EVENTS]), self.state.feat.copy()))

    def slow(self, msg) -> None:
        if isinstance(msg, DepthSnapshot):
            self.events.append_snapshot(msg, event_time_ns(msg), 0)
            diffs = self.seq.on_snapshot(msg)
        else:
            diffs = self.seq.on_diff(msg)
        for d in diffs:
            self.events.append_diff(d, 0)
        c = self.events.columns()
        ticks = np.rint(c["price"] / TICK).astype(np.int64)
        arrays = self.state.arrays()
        for k in range(len(ticks)):
            while (
                code := step(
                    *arrays,
                    int(c["ts_event"][k]),
                    int(c["kind"][k]),
                    int(c["side"][k]),
                    int(ticks[k]),
                    float(c["size"][k]),
                    int(c["flags"][k]),
                    self.state.feat,
                )
            ) & PRE_MASK:
                if code & CODE_DECISION:
                    self.record()
        self.events.truncate(0)


def test_frame_path_decides_and_applies_as_the_general_path(data_dir):
    path = Path(data_dir) / FILE
    if not path.exists():
        pytest.skip(f"{path} not found")
    ref, hot = Engine(), Engine()
    before_frame = []

    def on_frame(m: int, i: int, code: int, _now: int) -> None:
        if m == 0:
            before_frame.append(code)
        cols = fp.columns(m)
        while code:
            if code & CODE_DECISION:
                hot.record()
            i, code = run_until(*hot.state.arrays(), *cols, i, hot.state.feat)

    fp = DepthFramePath(TICK, hot.state, on_frame, hold=lambda: False)
    synced = False
    for line in Recording([path]):
        msg = parse_message(line.raw)
        if not isinstance(msg, (DepthUpdate, DepthSnapshot)):
            continue
        synced = synced or isinstance(msg, DepthSnapshot)
        ref.slow(msg)
        if isinstance(msg, DepthSnapshot) or fp.take(line.raw, hot.seq.ids, 0) < 0:
            hot.slow(msg)
    assert synced and len(ref.decisions) > 500
    assert len(before_frame) > 0.9 * len(ref.decisions)  # nearly every decision came before its frame's levels
    assert [d[:2] for d in hot.decisions] == [d[:2] for d in ref.decisions]
    assert all(np.array_equal(a[2], b[2]) for a, b in zip(hot.decisions, ref.decisions, strict=True))
    for a, b in zip(hot.state.arrays(), ref.state.arrays(), strict=True):
        assert np.array_equal(a, b)
    assert hot.seq.last_update_id == ref.seq.last_update_id


def test_the_next_decision_peeked_between_frames_is_the_decision_bit_for_bit(data_dir):
    # What the daemon prepares between frames (PreparedDecisions.prepare_decision) is only right if the row
    # peeked after a frame is the row the next decision computes whenever no event came in between,
    # and if peeking changes nothing.
    path = Path(data_dir) / FILE
    if not path.exists():
        pytest.skip(f"{path} not found")
    hot = Engine()
    st = hot.state
    row, ist_tmp, fst_tmp = np.zeros_like(st.feat), np.zeros_like(st.ist), np.zeros_like(st.fst)
    peeked: list[tuple[int, int, np.ndarray]] = []  # (grid time, events applied, row) after each frame

    def on_frame(m: int, i: int, code: int, _now: int) -> None:
        cols = fp.columns(m)
        while code:
            if code & CODE_DECISION:
                hot.record()
            i, code = run_until(*st.arrays(), *cols, i, st.feat)

    fp = DepthFramePath(TICK, st, on_frame, hold=lambda: False)
    frames = 0
    for line in Recording([path]):
        msg = parse_message(line.raw)
        if not isinstance(msg, (DepthUpdate, DepthSnapshot)):
            continue
        if isinstance(msg, DepthSnapshot) or fp.take(line.raw, hot.seq.ids, 0) < 0:
            hot.slow(msg)
        frames += 1
        before = [a.copy() for a in (st.px, st.sz, st.n, st.ist, st.fst)]
        rings = [a.copy() for a in (st.rb_ts, st.rb_val)] if frames % 500 == 0 else []
        g = peek_next_decision(st.px, st.sz, st.n, st.ist, st.fst, st.rb_ts, st.rb_val, row, ist_tmp, fst_tmp)
        # strict=False: the rings are compared only every 500 frames (copying them is slow), else zip stops early.
        for a, b in zip(before + rings, (st.px, st.sz, st.n, st.ist, st.fst, st.rb_ts, st.rb_val), strict=False):
            assert np.array_equal(a, b), f"peek_next_decision changed the state after frame {frames}"
        if g != INT64_MIN:
            peeked.append((g, int(st.ist[I_EVENTS]), row.copy()))
    by_key = {(g, ev): r for g, ev, r in peeked}
    matched = [(d, by_key[d[:2]]) for d in hot.decisions if d[:2] in by_key]
    assert len(hot.decisions) > 500 and len(matched) > 0.9 * len(hot.decisions)
    for (ts, events, feat), r in matched:
        assert feat.tobytes() == r.tobytes(), f"decision at {ts} after {events} events: peeked row differs"
