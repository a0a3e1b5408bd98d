"""The per-event kernel shared by the live path and the batch path.

State is a handful of preallocated arrays (see :class:`FeatureState`: the book and the feature windows,
named by :class:`BookArrays` and :class:`WindowArrays`) that numba kernels update in place; nothing is
allocated per event. Every index into them, and every feature column, is a named constant of
:mod:`~scalper.features.state_layout`. :func:`step` handles one tick-file event and reports, through a bit code,
when the caller has something to do (take a decision, wake an order, react to a price watch). The live
daemon calls :func:`step` once per event; :func:`run_until` loops it in numba for replays; and
:func:`run_batch` loops it over a whole file to build the training matrix. Because all three run the same
:func:`step`, the live and batch features are identical (``tests/realdata/test_feature_parity.py``).

Event semantics
---------------
* Book events inside a message may leave the book transiently inconsistent; the book is judged (valid,
  crossed) and the mid / OFI are sampled only at message ends (``FLAG_LAST_IN_MESSAGE``).
* A decision time ``g`` is a point of the grid ``k * grid_ns``. The first event with ``ts_event > g``
  triggers the decision at the latest such grid point, *before* it is applied, so the features see
  exactly the events with ``ts_event <= g``. Grid points with no event after them are skipped
  (nothing but window eviction could have changed). No decision is taken on an invalid book.
* A replay that predicted every decision in advance may pass over decision times
  (:meth:`FeatureState.decide_from`) and drop the feature windows (:meth:`FeatureState.book_only`);
  the book, the grid, wake-ups and watches run exactly as before.

Speed: ``step``, the book and the message-end push are inlined into the loops, and every kernel is
compiled without numba's reference counting (:mod:`scalper.lowlevel.jit`): with it, each array passed to a
call cost an atomic increment and decrement, most of the per-event time.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from scalper.features.config import FeaturesConfig
from scalper.features.ladder import (
    DEFAULT_LADDER_TICKS,
    DEFAULT_TOP_LEVELS,
    deep_book_clear,
    deep_book_set,
    new_deep_book,
)
from scalper.features.registry import DEPTH_LEVELS, N_FEATURES, N_FEATURES_V2, WINDOWS_NS
from scalper.features.session import ALL_DAY, SessionClock
from scalper.features.state_layout import (
    C_BUY,
    C_LOGRET,
    C_LOGRET2,
    C_OFI,
    C_SELL,
    C_TRADES,
    COL_DEPTH_IMBALANCE_5,
    COL_MICROPRICE_MINUS_MID_TICKS,
    COL_MID_RETURN_1S_BPS,
    COL_MID_RETURN_5S_BPS,
    COL_OFI_1S,
    COL_OFI_5S,
    COL_OFI_30S,
    COL_QUEUE_IMBALANCE_L1,
    COL_REALIZED_VOL_5S_BPS,
    COL_REALIZED_VOL_30S_BPS,
    COL_SPREAD_TICKS,
    COL_TIME_SINCE_LAST_TRADE_S,
    COL_TRADE_COUNT_5S,
    COL_TRADE_FLOW_IMBALANCE_5S,
    COL_TRADE_FLOW_IMBALANCE_30S,
    F_LAST_MID,
    F_PREV_ASK_SZ,
    F_PREV_BID_SZ,
    I2_ALL_DAY,
    I2_CLOSE_NS,
    I2_HAS_SESSION,
    I2_OPEN_NS,
    I_BOOK_ONLY,
    I_BOOK_OVERFLOWS,
    I_CROSSED,
    I_DECIDE_FROM,
    I_DECISION_TS,
    I_DECISIONS,
    I_EVENTS,
    I_FIRST_TS,
    I_GRID_NS,
    I_HAS_PREV,
    I_HEAD,
    I_IN_SNAPSHOT,
    I_IS_VALID,
    I_LAST_BOOK_TS,
    I_LAST_EVENT_TS,
    I_LAST_TRADE_TS,
    I_NEXT_GRID,
    I_PREV_ASK,
    I_PREV_BID,
    I_RING_OVERFLOWS,
    I_WAKE_TS,
    I_WATCH_ASK_HI,
    I_WATCH_ASK_LO,
    I_WATCH_BID_HI,
    I_WATCH_BID_LO,
    N_CH,
    N_CH2,
    N_FSTATE,
    N_FSTATE2,
    N_ISTATE,
    N_ISTATE2,
    N_WINDOWS,
    W_1S,
    W_5S,
    W_30S,
    nonzero_slot,
    sum_slot,
    tail_slot,
)
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as FLAG_LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT, KIND_BOOK, KIND_TRADE
from scalper.lowlevel.atomics import load_acquire, store_release
from scalper.lowlevel.book import is_crossed, is_two_sided, side_index
from scalper.lowlevel.jit import background_kernel, inline_kernel, kernel

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

# Bits of the code returned by step(). PRE bits leave the event unapplied: call step() again with it.
CODE_DECISION = 1  # PRE: features at decision time ist[I_DECISION_TS] are in feat_out
CODE_WAKE = 2  # PRE: ts_event passed ist[I_WAKE_TS]; the caller must move or clear the wake time
CODE_WATCH = 4  # POST: a best price crossed one of the watch levels
CODE_INVALID = 8  # POST: the book became invalid (crossed or locked) at this message end
PRE_MASK = CODE_DECISION | CODE_WAKE

_WINDOWS = np.array(WINDOWS_NS, dtype=np.int64)

DEFAULT_RING_CAPACITY = 1 << 16

# Slots of run_batch's progress array.
P_ROWS = 0
P_MIDS = 1
P_PAST = 2
N_PROGRESS = 3


@kernel
def load_progress(progress):
    """Return ``(rows, mids, past)`` of :func:`run_batch`'s progress array, each an acquire load.

    The reader's side of the pass's release stores: after the call, every row, mid and decision these
    counts cover is visible to the calling thread. ``P_PAST`` is loaded first, so the counts loaded
    after it include every decision before ``past``.
    """
    past = load_acquire(progress, P_PAST)
    return load_acquire(progress, P_ROWS), load_acquire(progress, P_MIDS), past


class BookArrays(NamedTuple):
    """The order book of one instrument (``features/ladder.py``): the best levels kept sorted and the ladder.

    ``px`` int64[2, K] (ticks), ``sz`` float64[2, K] (base units), ``n`` int64[2] (levels held per side,
    bids first); ``lpx``, ``lsz``, ``ln``: the same for the deeper levels of the ladder.
    """

    px: np.ndarray
    sz: np.ndarray
    n: np.ndarray
    lpx: np.ndarray
    lsz: np.ndarray
    ln: np.ndarray


class WindowArrays(NamedTuple):
    """Scalar state and ring buffer of the feature windows (slots: :mod:`~scalper.features.state_layout`).

    ``ist`` int64[N_ISTATE], ``fst`` float64[N_FSTATE], ``rb_ts`` int64[R] (event times, ns),
    ``rb_val`` float64[R, N_CH] (the event's value in each ring channel).
    """

    ist: np.ndarray
    fst: np.ndarray
    rb_ts: np.ndarray
    rb_val: np.ndarray


class V2Arrays(NamedTuple):
    """State only feature set v2 keeps (slots: the v2 tables of :mod:`~scalper.features.state_layout`).

    ``ist2`` int64[N_ISTATE2], ``fst2`` float64[N_FSTATE2], ``rb2_ts`` int64[R] (v2 ring event times, ns),
    ``rb2_val`` float64[R, N_CH2].
    """

    ist2: np.ndarray
    fst2: np.ndarray
    rb2_ts: np.ndarray
    rb2_val: np.ndarray


class EventColumns(NamedTuple):
    """Tick-file columns of the events to apply (``TickData.kernel_columns()``), each of length E.

    ``ts`` int64 (``ts_event``, ns), ``kind`` / ``side`` / ``flags`` int8 or int64 codes,
    ``price_tick`` int64 (ticks), ``size`` float64 (base units).
    """

    ts: np.ndarray
    kind: np.ndarray
    side: np.ndarray
    price_tick: np.ndarray
    size: np.ndarray
    flags: np.ndarray


class BatchOutputs(NamedTuple):
    """Where :func:`run_batch` writes: ``feat_out`` float64[M, N_FEATURES] and ``dec_ts_out`` int64[M]
    (decision rows and times, ns), ``mid_ts_out`` int64[E] and ``mid_out`` float64[E] (mid in ticks at
    each valid message end, and its time), ``progress`` int64[N_PROGRESS] (see :func:`run_batch`)."""

    feat_out: np.ndarray
    dec_ts_out: np.ndarray
    mid_ts_out: np.ndarray
    mid_out: np.ndarray
    progress: np.ndarray


class FeatureState:
    """Book, ring buffer and scalar state of one instrument, as numpy arrays the kernels own.

    Parameters
    ----------
    grid_ns : int
        Decision grid step, ns (default 250 ms).
    top_levels : int
        Best levels per side kept sorted (``px``, ``sz``, ``n``: what the features and fills read).
    ladder_ticks : int
        Ticks per side of the ladder holding the deeper levels (a power of two; see ``features/ladder.py``).
    ring_capacity : int
        Events kept for the time windows; it must hold the 30 s window (an overflow is counted in
        ``ist[I_RING_OVERFLOWS]``, and the oldest event then leaves every window early). Set v2's ring
        has the same capacity.
    feature_set : int
        1 or 2 (``features/registry.py``). A v2 state also holds :class:`V2Arrays` and is run by the
        kernels of ``features/kernels_v2.py``; its session clock is 24/7 until :meth:`set_session`.

    Attributes
    ----------
    book : BookArrays
        The order book; also as the attributes ``px``, ``sz``, ``n``, ``lpx``, ``lsz``, ``ln``.
    windows : WindowArrays
        Scalar state and ring buffer; also as ``ist``, ``fst``, ``rb_ts``, ``rb_val``.
    feat : ndarray
        float64[N_FEATURES] (v2: float64[N_FEATURES_V2]), the row a decision's features are written to.
    v2 : V2Arrays or None
        Set v2's own state; None for set v1.

    Raises
    ------
    ValueError
        ``grid_ns <= 0`` or an unknown ``feature_set``.
    """

    def __init__(
        self,
        grid_ns: int = 250_000_000,
        top_levels: int = DEFAULT_TOP_LEVELS,
        ring_capacity: int = DEFAULT_RING_CAPACITY,
        ladder_ticks: int = DEFAULT_LADDER_TICKS,
        feature_set: int = 1,
    ) -> None:
        if grid_ns <= 0:
            raise ValueError(f"grid_ns must be > 0, got {grid_ns}")
        if feature_set not in (1, 2):
            raise ValueError(f"feature_set must be 1 or 2, got {feature_set}")
        self.feature_set = feature_set
        self.book = BookArrays(*new_deep_book(top_levels, ladder_ticks))
        self.px, self.sz, self.n, self.lpx, self.lsz, self.ln = self.book
        self.windows = WindowArrays(
            np.zeros(N_ISTATE, dtype=np.int64),
            np.zeros(N_FSTATE, dtype=np.float64),
            np.zeros(ring_capacity, dtype=np.int64),
            np.zeros((ring_capacity, N_CH), dtype=np.float64),
        )
        self.ist, self.fst, self.rb_ts, self.rb_val = self.windows
        self.feat = np.zeros(N_FEATURES if feature_set == 1 else N_FEATURES_V2, dtype=np.float64)
        self.v2: V2Arrays | None = None
        if feature_set == 2:
            self.v2 = V2Arrays(
                np.zeros(N_ISTATE2, dtype=np.int64),
                np.zeros(N_FSTATE2, dtype=np.float64),
                np.zeros(ring_capacity, dtype=np.int64),
                np.zeros((ring_capacity, N_CH2), dtype=np.float64),
            )
            self._write_session(ALL_DAY)
        self.ist[I_GRID_NS] = grid_ns
        self.ist[I_LAST_TRADE_TS] = INT64_MIN
        self.ist[I_FIRST_TS] = INT64_MIN
        self.ist[I_WAKE_TS] = INT64_MAX
        self.ist[I_DECIDE_FROM] = INT64_MIN
        self.clear_watch()

    @classmethod
    def from_config(cls, fc: FeaturesConfig) -> FeatureState:
        """Build the state a ``[features]`` config section describes."""
        return cls(fc.grid_ns, fc.top_levels, fc.ring_capacity, fc.ladder_ticks, fc.set)

    def set_session(self, clock: SessionClock) -> None:
        """Set the session clock of the v2 time-of-day features (``features/session.py``).

        Raises
        ------
        ValueError
            On a set v1 state (it has no session features).
        """
        if self.v2 is None:
            raise ValueError("set_session: feature set v1 has no session clock")
        self._write_session(clock)
        self.v2.ist2[I2_HAS_SESSION] = 1

    @property
    def has_session(self) -> bool:
        """True when :meth:`set_session` was called (a v2 state)."""
        return self.v2 is not None and bool(self.v2.ist2[I2_HAS_SESSION])

    def _write_session(self, clock: SessionClock) -> None:
        assert self.v2 is not None
        self.v2.ist2[I2_OPEN_NS] = clock.open_ns
        self.v2.ist2[I2_CLOSE_NS] = clock.close_ns
        self.v2.ist2[I2_ALL_DAY] = 1 if clock.all_day else 0

    def arrays(self) -> tuple[np.ndarray, ...]:
        """Return ``(*book, *windows)`` (set v2: ``(*book, *windows, *v2)``): the state arrays one by one,
        as the per-event kernels of the state's set take them.

        Those kernels (:func:`step`, :func:`run_until`) are called from Python per event or per frame, and
        numba's dispatcher types a NamedTuple argument in Python rather than in its C fast path, at a
        cost of the order of the whole call; a kernel called once per pass takes the records
        (:func:`run_batch`).
        """
        if self.v2 is None:
            return (*self.book, *self.windows)
        return (*self.book, *self.windows, *self.v2)

    def set_wake(self, ts_ns: int | None) -> None:
        """Make :func:`step` return ``CODE_WAKE`` before the first event after ``ts_ns`` (None: never)."""
        self.ist[I_WAKE_TS] = INT64_MAX if ts_ns is None else ts_ns

    def book_only(self) -> None:
        """Stop the feature windows for good: :func:`step` keeps the book, the grid, wakes and watches,
        and reports decisions without features (a replay whose features came from the batch pass)."""
        self.ist[I_BOOK_ONLY] = 1

    def decide_from(self, ts_ns: int) -> None:
        """Make :func:`step` pass over decision times before ``ts_ns`` (INT64_MIN: decide at every one)."""
        self.ist[I_DECIDE_FROM] = ts_ns

    def set_watch(self, bid_hi: int, bid_lo: int, ask_hi: int, ask_lo: int) -> None:
        """Make :func:`step` return ``CODE_WATCH`` when best bid >= bid_hi or <= bid_lo, or best ask >= ask_hi
        or <= ask_lo (ticks)."""
        self.ist[I_WATCH_BID_HI] = bid_hi
        self.ist[I_WATCH_BID_LO] = bid_lo
        self.ist[I_WATCH_ASK_HI] = ask_hi
        self.ist[I_WATCH_ASK_LO] = ask_lo

    def clear_watch(self) -> None:
        """Disable every price watch."""
        self.set_watch(INT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN)

    @property
    def is_valid(self) -> bool:
        return bool(self.ist[I_IS_VALID])

    @property
    def best_bid_tick(self) -> int:
        return int(self.px[0, 0]) if self.n[0] else INT64_MIN

    @property
    def best_ask_tick(self) -> int:
        return int(self.px[1, 0]) if self.n[1] else INT64_MAX


@inline_kernel
def _push(ist, fst, rb_ts, rb_val, ts, ofi, buy, sell, logret, trades):
    cap = rb_ts.shape[0]
    _evict(ist, fst, rb_ts, rb_val, ts)
    head = ist[I_HEAD]
    oldest = ist[tail_slot(N_WINDOWS - 1)]
    if head - oldest >= cap:
        # Full: the oldest event leaves every window that still holds it, earlier than its time.
        ist[I_RING_OVERFLOWS] += 1
        for w in range(N_WINDOWS):
            if ist[tail_slot(w)] == oldest:
                _drop_oldest(ist, fst, rb_val, w, cap)
    k = head % cap
    rb_ts[k] = ts
    rb_val[k, C_OFI] = ofi
    rb_val[k, C_BUY] = buy
    rb_val[k, C_SELL] = sell
    rb_val[k, C_LOGRET] = logret
    rb_val[k, C_LOGRET2] = logret * logret
    rb_val[k, C_TRADES] = trades
    for w in range(N_WINDOWS):
        for c in range(N_CH):
            v = rb_val[k, c]
            if v != 0.0:
                fst[sum_slot(w, c)] += v
                fst[nonzero_slot(w, c)] += 1.0
    ist[I_HEAD] = head + 1


@kernel
def _drop_oldest(ist, fst, rb_val, w, cap):
    k = ist[tail_slot(w)] % cap
    for c in range(N_CH):
        v = rb_val[k, c]
        if v != 0.0:
            s = sum_slot(w, c)
            nz = nonzero_slot(w, c)
            fst[nz] -= 1.0
            # The last nonzero term left: the sum is exactly zero, whatever round-off remains.
            fst[s] = 0.0 if fst[nz] == 0.0 else fst[s] - v
    ist[tail_slot(w)] += 1


@kernel
def _evict(ist, fst, rb_ts, rb_val, t):
    cap = rb_ts.shape[0]
    for w in range(N_WINDOWS):
        horizon = t - _WINDOWS[w]
        tail = tail_slot(w)
        while ist[tail] < ist[I_HEAD] and rb_ts[ist[tail] % cap] <= horizon:
            _drop_oldest(ist, fst, rb_val, w, cap)


@inline_kernel
def _flow_imbalance(fst, w):
    buy = fst[sum_slot(w, C_BUY)]
    sell = fst[sum_slot(w, C_SELL)]
    return (buy - sell) / (buy + sell) if buy + sell > 0.0 else 0.0


@kernel
def compute_features(px, sz, n, ist, fst, rb_ts, rb_val, t, out):
    """Write feature set v1 at time ``t`` (ns) into ``out`` (float64[N_FEATURES]); the book must be valid.

    Each column goes to its ``COL_*`` position (:mod:`~scalper.features.state_layout`), the place of its
    name in ``features.registry.FEATURE_NAMES``.
    """
    _evict(ist, fst, rb_ts, rb_val, t)
    bid = px[0, 0]
    ask = px[1, 0]
    qb = sz[0, 0]
    qa = sz[1, 0]
    mid = 0.5 * (bid + ask)
    out[COL_SPREAD_TICKS] = ask - bid
    out[COL_MID_RETURN_1S_BPS] = 1e4 * fst[sum_slot(W_1S, C_LOGRET)]
    out[COL_MID_RETURN_5S_BPS] = 1e4 * fst[sum_slot(W_5S, C_LOGRET)]
    out[COL_MICROPRICE_MINUS_MID_TICKS] = (bid * qa + ask * qb) / (qb + qa) - mid
    out[COL_QUEUE_IMBALANCE_L1] = (qb - qa) / (qb + qa)
    db = 0.0
    da = 0.0
    for i in range(min(DEPTH_LEVELS, n[0])):
        db += sz[0, i]
    for i in range(min(DEPTH_LEVELS, n[1])):
        da += sz[1, i]
    out[COL_DEPTH_IMBALANCE_5] = (db - da) / (db + da)
    out[COL_OFI_1S] = fst[sum_slot(W_1S, C_OFI)]
    out[COL_OFI_5S] = fst[sum_slot(W_5S, C_OFI)]
    out[COL_OFI_30S] = fst[sum_slot(W_30S, C_OFI)]
    out[COL_TRADE_FLOW_IMBALANCE_5S] = _flow_imbalance(fst, W_5S)
    out[COL_TRADE_FLOW_IMBALANCE_30S] = _flow_imbalance(fst, W_30S)
    out[COL_REALIZED_VOL_5S_BPS] = 1e4 * math.sqrt(max(fst[sum_slot(W_5S, C_LOGRET2)], 0.0))
    out[COL_REALIZED_VOL_30S_BPS] = 1e4 * math.sqrt(max(fst[sum_slot(W_30S, C_LOGRET2)], 0.0))
    out[COL_TRADE_COUNT_5S] = round(fst[sum_slot(W_5S, C_TRADES)])
    last = ist[I_LAST_TRADE_TS] if ist[I_LAST_TRADE_TS] != INT64_MIN else ist[I_FIRST_TS]
    out[COL_TIME_SINCE_LAST_TRADE_S] = (t - last) * 1e-9


@inline_kernel
def _on_message_end(px, sz, n, ist, fst, rb_ts, rb_val, ts, flags):
    code = 0
    if flags & FLAG_SNAPSHOT:
        ist[I_IN_SNAPSHOT] = 0
    if ist[I_IN_SNAPSHOT]:
        return code
    was_valid = ist[I_IS_VALID]
    crossed = is_crossed(px, n)
    valid = is_two_sided(n) and not crossed
    ist[I_IS_VALID] = 1 if valid else 0
    if crossed:
        ist[I_CROSSED] += 1
        if was_valid:
            code |= CODE_INVALID
    if not valid:
        # OFI and returns across an invalid stretch would compare unrelated books.
        ist[I_HAS_PREV] = 0
        return code
    bid = px[0, 0]
    ask = px[1, 0]
    qb = sz[0, 0]
    qa = sz[1, 0]
    mid = 0.5 * (bid + ask)
    if ist[I_HAS_PREV] and not ist[I_BOOK_ONLY]:
        pb = ist[I_PREV_BID]
        pa = ist[I_PREV_ASK]
        # OFI increment e_n of Cont, Kukanov & Stoikov (2014), eq. (2).
        e = 0.0
        if bid >= pb:
            e += qb
        if bid <= pb:
            e -= fst[F_PREV_BID_SZ]
        if ask <= pa:
            e -= qa
        if ask >= pa:
            e += fst[F_PREV_ASK_SZ]
        r = math.log(mid / fst[F_LAST_MID])
        if e != 0.0 or r != 0.0:
            _push(ist, fst, rb_ts, rb_val, ts, e, 0.0, 0.0, r, 0.0)
    ist[I_PREV_BID] = bid
    ist[I_PREV_ASK] = ask
    fst[F_PREV_BID_SZ] = qb
    fst[F_PREV_ASK_SZ] = qa
    fst[F_LAST_MID] = mid
    ist[I_HAS_PREV] = 1
    if (
        bid >= ist[I_WATCH_BID_HI]
        or bid <= ist[I_WATCH_BID_LO]
        or ask >= ist[I_WATCH_ASK_HI]
        or ask <= ist[I_WATCH_ASK_LO]
    ):
        code |= CODE_WATCH
    return code


@inline_kernel
def due_before(px, sz, n, ist, fst, rb_ts, rb_val, ts, feat_out):
    """What :func:`step` must report before an event at ``ts`` (ns): ``CODE_DECISION``, ``CODE_WAKE`` or 0.

    The first part of :func:`step`, for a caller that knows an event's time before the event itself
    (the daemon reads a frame's time from its head and decides before reading its levels). A grid
    point passed without a decision (invalid book, :meth:`FeatureState.decide_from`) is passed here,
    exactly as :func:`step` passes it; with 0 returned, :func:`step` on an event at ``ts`` reports
    nothing due and applies it.
    """
    if ist[I_FIRST_TS] == INT64_MIN:
        ist[I_FIRST_TS] = ts
        grid = ist[I_GRID_NS]
        ist[I_NEXT_GRID] = -((-ts) // grid) * grid
    nxt = ist[I_NEXT_GRID]
    g = INT64_MIN
    if ts > nxt:
        grid = ist[I_GRID_NS]
        g = nxt + ((ts - 1 - nxt) // grid) * grid
    wake = ist[I_WAKE_TS]
    if ts > wake and (g == INT64_MIN or wake < g):
        return CODE_WAKE
    if g != INT64_MIN:
        ist[I_NEXT_GRID] = g + ist[I_GRID_NS]
        if ist[I_IS_VALID] and g >= ist[I_DECIDE_FROM]:
            if not ist[I_BOOK_ONLY]:
                compute_features(px, sz, n, ist, fst, rb_ts, rb_val, g, feat_out)
            ist[I_DECISION_TS] = g
            ist[I_DECISIONS] += 1
            return CODE_DECISION
        if ts > wake:
            return CODE_WAKE  # due after the grid point passed without a decision, before this event
    return 0


@kernel
def peek_next_decision(px, sz, n, ist, fst, rb_ts, rb_val, feat_out, ist_tmp, fst_tmp):
    """Write into ``feat_out`` the features the next grid point's decision will have if no event comes
    before it, changing no state; return that grid time (ns), or ``INT64_MIN`` (nothing written) when
    it will not be a decision with features (book invalid, no event yet, features off, passed over).

    The eviction that :func:`compute_features` does at the decision runs on copies of ``ist`` and
    ``fst`` (``ist_tmp``: int64[N_ISTATE], ``fst_tmp``: float64[N_FSTATE]) in the same order, so the
    row is bit-identical to the decision's while the state is unchanged (``tests/realdata``).
    """
    if ist[I_FIRST_TS] == INT64_MIN or not ist[I_IS_VALID] or ist[I_BOOK_ONLY]:
        return INT64_MIN
    g = ist[I_NEXT_GRID]
    if g < ist[I_DECIDE_FROM]:
        return INT64_MIN
    for k in range(ist.shape[0]):  # element by element: a slice copy needs numba's runtime
        ist_tmp[k] = ist[k]
    for k in range(fst.shape[0]):
        fst_tmp[k] = fst[k]
    compute_features(px, sz, n, ist_tmp, fst_tmp, rb_ts, rb_val, g, feat_out)
    return g


@inline_kernel
def step(px, sz, n, lpx, lsz, ln, ist, fst, rb_ts, rb_val, ts, kind, side, price_tick, size, flags, feat_out):
    """Process one tick-file event, or report that something is due before it.

    Parameters
    ----------
    px, sz, n, lpx, lsz, ln, ist, fst, rb_ts, rb_val : ndarray
        :meth:`FeatureState.arrays`, updated in place.
    ts : int
        ``ts_event``, ns since the epoch.
    kind, side, flags : int
        Tick-file ``kind``, ``side`` and ``flags``.
    price_tick : int
        Price in ticks.
    size : float
        Book: new total size at the level (0 deletes); trade: traded quantity (base units).
    feat_out : ndarray
        float64[N_FEATURES]; receives the features when ``CODE_DECISION`` is returned.

    Returns
    -------
    int
        0, or a combination of ``CODE_*`` bits. When a ``PRE_MASK`` bit is set the event was *not*
        applied and the caller must pass it again after handling the code.
    """
    due = due_before(px, sz, n, ist, fst, rb_ts, rb_val, ts, feat_out)
    if due:
        return due
    ist[I_EVENTS] += 1
    ist[I_LAST_EVENT_TS] = ts
    if kind == KIND_BOOK:
        ist[I_LAST_BOOK_TS] = ts
        if deep_book_set(px, sz, n, lpx, lsz, ln, side_index(side), price_tick, size) != 0:
            ist[I_BOOK_OVERFLOWS] += 1
    elif kind == KIND_TRADE:
        ist[I_LAST_TRADE_TS] = ts
        buy = size if side > 0 else 0.0
        sell = size if side < 0 else 0.0
        if not ist[I_BOOK_ONLY]:
            _push(ist, fst, rb_ts, rb_val, ts, 0.0, buy, sell, 0.0, 1.0)
    else:
        ist[I_LAST_BOOK_TS] = ts
        deep_book_clear(n, lpx, ln)
        ist[I_IN_SNAPSHOT] = 1
        ist[I_IS_VALID] = 0
        ist[I_HAS_PREV] = 0
    if flags & FLAG_LAST:
        return _on_message_end(px, sz, n, ist, fst, rb_ts, rb_val, ts, flags)
    return 0


@kernel
def run_until(px, sz, n, lpx, lsz, ln, ist, fst, rb_ts, rb_val, ts, kind, side, price_tick, size, flags, i0, feat_out):
    """Apply events ``i0, i0+1, ...`` with :func:`step` until one returns a code or the data ends.

    Returns
    -------
    (int, int)
        ``(i, code)``: ``i`` is the index of the next event to pass (the same event again after a
        ``PRE_MASK`` code), ``code`` is 0 only at the end of the data (``i == len(ts)``).
    """
    m = ts.shape[0]
    i = i0
    while i < m:
        code = step(
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
            ts[i],
            kind[i],
            side[i],
            price_tick[i],
            size[i],
            flags[i],
            feat_out,
        )
        if code & PRE_MASK:
            return i, code
        i += 1
        if code:
            return i, code
    return i, 0


@background_kernel
def run_batch(book, windows, events, out):
    """Replay a whole file in one numba loop, collecting the decision rows and the mid series.

    Parameters
    ----------
    book : BookArrays
        The order book, updated in place.
    windows : WindowArrays
        Scalar state and ring buffer, updated in place.
    events : EventColumns
        The file's events, E of them.
    out : BatchOutputs
        ``feat_out`` float64[M, N_FEATURES], M >= number of decisions (``(ts[-1] - ts[0]) // grid_ns + 2``
        suffices); ``dec_ts_out`` int64[M]: decision times, ns; ``mid_ts_out``, ``mid_out`` int64[E],
        float64[E]: the mid (ticks) at every valid message end, and its time; ``progress``
        int64[N_PROGRESS], kept current as the loop goes, for a reader in another thread (the GIL is
        released): rows written (``P_ROWS``), mids written (``P_MIDS``), and a time before which every
        decision is written (``P_PAST``, ns; INT64_MAX at the end). Each is a release store
        (:func:`~scalper.lowlevel.atomics.store_release`) after the writes it counts, so a reader that
        loads it with an acquire load (:func:`~scalper.lowlevel.atomics.load_progress`) sees those
        rows on any CPU; on x86 these are plain moves.

    Returns
    -------
    (int, int)
        Number of decision rows and of mid samples written.
    """
    px, sz, n, lpx, lsz, ln = book
    ist, fst, rb_ts, rb_val = windows
    ts, kind, side, price_tick, size, flags = events
    feat_out, dec_ts_out, mid_ts_out, mid_out, progress = out
    m = ts.shape[0]
    n_dec = 0
    n_mid = 0
    i = 0
    while i < m:
        # The next free row receives the features (a view: a kernel without NRT cannot allocate a buffer).
        code = step(
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
            ts[i],
            kind[i],
            side[i],
            price_tick[i],
            size[i],
            flags[i],
            feat_out[n_dec],
        )
        if code & CODE_DECISION:
            dec_ts_out[n_dec] = ist[I_DECISION_TS]
            n_dec += 1
            store_release(progress, P_ROWS, n_dec)
            continue
        if code & CODE_WAKE:
            ist[I_WAKE_TS] = INT64_MAX
            continue
        if flags[i] & FLAG_LAST:
            if ist[I_IS_VALID] and ist[I_HAS_PREV]:
                mid_ts_out[n_mid] = ts[i]
                mid_out[n_mid] = fst[F_LAST_MID]
                n_mid += 1
                store_release(progress, P_MIDS, n_mid)
            store_release(progress, P_PAST, ts[i])  # event i is through: every decision before its time is out
        i += 1
    store_release(progress, P_PAST, INT64_MAX)
    return n_dec, n_mid
