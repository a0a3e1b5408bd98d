"""Feature set v2: the kernels of set v1 plus the regime and microstructure state, as separate kernels.

The set is chosen once, when the state is built (``FeatureState(feature_set=2)``, ``[features] set = 2``):
a v2 state is run by the kernels here, a v1 state by ``features/kernels.py``, whose compiled code this
module does not change, so the v1 path costs exactly what it did. Each kernel here takes the v1
arrays followed by :class:`~scalper.features.kernels.V2Arrays` (``ist2``, ``fst2``, ``rb2_ts``,
``rb2_val``) and has the v1 kernel's name and semantics: :func:`step` calls v1's ``step`` for the book,
the grid, wakes, watches and the v1 windows, and around it keeps the v2 state; a decision's row is
v1's columns followed by the v2 columns (``features/registry.py``, ``FEATURES_V2_EXTRA``).

v2 per-event work
-----------------
* Before a book event outside a snapshot, at a price within the best ``DEPTH_LEVELS`` of its side:
  the size change against the level's size (0 for a new level) is an add when positive; a decrease is
  a cancel except the part matched by the pending traded volume of that side at that price; a
  decrease at the best price is queue depletion. Values accumulate for the current message.
* Before a trade with a sign (+1 buy / -1 sell aggressor): the sign window, the signed volume of the
  next Kyle observation, and the pending traded volume of the side it hit (reset when the price changes).
* After the event: for each mid return v1 pushed, the session's squared-return sum, ``|r|``, and a Kyle
  observation ``(x, 1e4 r)``; at a valid message end, the level 2..5 OFI increments and the spread
  change against the previous valid message end (both need v1's ``I_HAS_PREV``, like v1's OFI). At
  every message end, the accumulated values become one v2 ring event, when any is nonzero.

Everything here is skipped once the state is book-only (:meth:`FeatureState.book_only`), as in v1.
Live and batch run the same :func:`step` (``tests/realdata/test_feature_parity.py``); a plain-Python
reference is in ``tests/reference_features.py``.
"""

from __future__ import annotations

import math

import numpy as np

from scalper.features.kernels import (
    CODE_DECISION,
    CODE_WAKE,
    INT64_MAX,
    INT64_MIN,
    P_MIDS,
    P_PAST,
    P_ROWS,
    PRE_MASK,
)
from scalper.features.kernels import compute_features as compute_features_v1
from scalper.features.kernels import due_before as due_before_v1
from scalper.features.kernels import peek_next_decision as peek_next_decision_v1
from scalper.features.kernels import step as step_v1
from scalper.features.registry import DEPTH_LEVELS, SIGN_WINDOW_TRADES, WINDOWS_NS
from scalper.features.state_layout import (
    C2_ABS_RET,
    C2_ADD,
    C2_CANCEL,
    C2_DEPLETION,
    C2_DSPREAD,
    C2_KYLE_XX,
    C2_KYLE_XY,
    C2_OFI,
    C_LOGRET,
    C_LOGRET2,
    COL_ADD_RATE,
    COL_CANCEL_RATE,
    COL_EFFICIENCY_RATIO_30S,
    COL_KYLE_LAMBDA_30S,
    COL_OFI_L2,
    COL_QUEUE_DEPLETION,
    COL_SPREAD_CHANGE_5S,
    COL_TIME_OF_DAY_S,
    COL_TIME_TO_CLOSE_S,
    COL_TRADE_SIGN_AUTOCORR,
    COL_VOL_REGIME_30S,
    F2_ACC,
    F2_KYLE_X,
    F2_PENDING_VOL,
    F2_PREV_SZ,
    F2_SESSION_RV2,
    F_LAST_MID,
    I2_ALL_DAY,
    I2_CLOSE_NS,
    I2_HEAD,
    I2_OPEN_NS,
    I2_PENDING_PX,
    I2_PREV_N,
    I2_PREV_PX,
    I2_RING_OVERFLOWS,
    I2_SIGN_PROD,
    I2_SIGNS,
    I2_TRADES,
    I_BOOK_ONLY,
    I_DECISION_TS,
    I_FIRST_TS,
    I_HAS_PREV,
    I_HEAD,
    I_IN_SNAPSHOT,
    I_IS_VALID,
    I_WAKE_TS,
    N_CH2,
    N_WINDOWS2,
    W2_5S,
    W2_30S,
    W_30S,
    WINDOWS2_NS,
    nonzero2_slot,
    sum2_slot,
    sum_slot,
    tail2_slot,
)
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as FLAG_LAST
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE
from scalper.lowlevel.atomics import store_release
from scalper.lowlevel.book import ASK, BID, side_index
from scalper.lowlevel.jit import background_kernel, inline_kernel, kernel

_WINDOWS2 = np.array(WINDOWS2_NS, dtype=np.int64)
_W30_NS = float(WINDOWS_NS[W_30S])
_W2_5S_S = WINDOWS2_NS[W2_5S] * 1e-9
_DAY_NS = 86_400_000_000_000


@kernel
def _drop_oldest2(ist2, fst2, rb2_val, w, cap):
    k = ist2[tail2_slot(w)] % cap
    for c in range(N_CH2):
        v = rb2_val[k, c]
        if v != 0.0:
            s = sum2_slot(w, c)
            nz = nonzero2_slot(w, c)
            fst2[nz] -= 1.0
            # The last nonzero term left: the sum is exactly zero, whatever round-off remains.
            fst2[s] = 0.0 if fst2[nz] == 0.0 else fst2[s] - v
    ist2[tail2_slot(w)] += 1


@kernel
def _evict2(ist2, fst2, rb2_ts, rb2_val, t):
    cap = rb2_ts.shape[0]
    for w in range(N_WINDOWS2):
        horizon = t - _WINDOWS2[w]
        tail = tail2_slot(w)
        while ist2[tail] < ist2[I2_HEAD] and rb2_ts[ist2[tail] % cap] <= horizon:
            _drop_oldest2(ist2, fst2, rb2_val, w, cap)


@kernel
def _push2(ist2, fst2, rb2_ts, rb2_val, ts):
    # The message's accumulated values (fst2[F2_ACC + c]) become one ring event at ts; the accumulators restart.
    cap = rb2_ts.shape[0]
    _evict2(ist2, fst2, rb2_ts, rb2_val, ts)
    head = ist2[I2_HEAD]
    oldest = ist2[tail2_slot(N_WINDOWS2 - 1)]
    if head - oldest >= cap:
        # Full: the oldest event leaves every window that still holds it, earlier than its time.
        ist2[I2_RING_OVERFLOWS] += 1
        for w in range(N_WINDOWS2):
            if ist2[tail2_slot(w)] == oldest:
                _drop_oldest2(ist2, fst2, rb2_val, w, cap)
    k = head % cap
    rb2_ts[k] = ts
    for c in range(N_CH2):
        v = fst2[F2_ACC + c]
        rb2_val[k, c] = v
        fst2[F2_ACC + c] = 0.0
        if v != 0.0:
            for w in range(N_WINDOWS2):
                fst2[sum2_slot(w, c)] += v
                fst2[nonzero2_slot(w, c)] += 1.0
    ist2[I2_HEAD] = head + 1


@inline_kernel
def _before_book(px, sz, n, ist2, fst2, side, price_tick, size):
    s = side_index(side)
    m = min(n[s], DEPTH_LEVELS)
    old = 0.0
    at = -1
    in_scope = m < DEPTH_LEVELS  # fewer than DEPTH_LEVELS levels: any price is among the best
    for i in range(m):
        p = px[s, i]
        if p == price_tick:
            old = sz[s, i]
            at = i
            in_scope = True
            break
        if (price_tick > p) if s == BID else (price_tick < p):
            in_scope = True  # a new level ahead of level i
            break
    if not in_scope:
        return
    d = size - old
    if d > 0.0:
        fst2[F2_ACC + C2_ADD + s] += d
    elif d < 0.0:
        dec = -d
        matched = 0.0
        if ist2[I2_PENDING_PX + s] == price_tick:
            matched = min(dec, fst2[F2_PENDING_VOL + s])
            fst2[F2_PENDING_VOL + s] -= matched
        fst2[F2_ACC + C2_CANCEL + s] += dec - matched
        if at == 0:
            fst2[F2_ACC + C2_DEPLETION + s] += dec


@inline_kernel
def _before_trade(ist2, fst2, side, price_tick, size):
    if side == 0:
        return
    sgn = 1 if side > 0 else -1
    hit = ASK if side > 0 else BID  # a buy aggressor takes the asks
    if ist2[I2_PENDING_PX + hit] == price_tick:
        fst2[F2_PENDING_VOL + hit] += size
    else:
        ist2[I2_PENDING_PX + hit] = price_tick
        fst2[F2_PENDING_VOL + hit] = size
    fst2[F2_KYLE_X] += sgn * size
    c = ist2[I2_TRADES]
    if c >= SIGN_WINDOW_TRADES:
        # The oldest pair leaves: signs c - W and c - W + 1 (slot c mod W is about to be reused).
        ist2[I2_SIGN_PROD] -= ist2[I2_SIGNS + c % SIGN_WINDOW_TRADES] * ist2[I2_SIGNS + (c + 1) % SIGN_WINDOW_TRADES]
    if c >= 1:
        ist2[I2_SIGN_PROD] += sgn * ist2[I2_SIGNS + (c - 1) % SIGN_WINDOW_TRADES]
    ist2[I2_SIGNS + c % SIGN_WINDOW_TRADES] = sgn
    ist2[I2_TRADES] = c + 1


@inline_kernel
def _level_increments(px, sz, n, ist2, fst2):
    # OFI increment of levels 2..DEPTH_LEVELS (Xu, Gould & Howison 2019) and the spread change, against
    # the previous valid message end; a side short of level m on either end adds nothing to level m.
    for m in range(1, DEPTH_LEVELS):
        e = 0.0
        if n[BID] > m and ist2[I2_PREV_N + BID] > m:
            b = px[BID, m]
            pb = ist2[I2_PREV_PX + m]
            if b >= pb:
                e += sz[BID, m]
            if b <= pb:
                e -= fst2[F2_PREV_SZ + m]
        if n[ASK] > m and ist2[I2_PREV_N + ASK] > m:
            a = px[ASK, m]
            pa = ist2[I2_PREV_PX + DEPTH_LEVELS + m]
            if a <= pa:
                e -= sz[ASK, m]
            if a >= pa:
                e += fst2[F2_PREV_SZ + DEPTH_LEVELS + m]
        fst2[F2_ACC + C2_OFI + m - 1] += e
    spread = px[ASK, 0] - px[BID, 0]
    prev_spread = ist2[I2_PREV_PX + DEPTH_LEVELS] - ist2[I2_PREV_PX]
    fst2[F2_ACC + C2_DSPREAD] += spread - prev_spread


@inline_kernel
def _store_levels(px, sz, n, ist2, fst2):
    for s in range(2):
        m = min(n[s], DEPTH_LEVELS)
        ist2[I2_PREV_N + s] = m
        for i in range(m):
            ist2[I2_PREV_PX + s * DEPTH_LEVELS + i] = px[s, i]
            fst2[F2_PREV_SZ + s * DEPTH_LEVELS + i] = sz[s, i]


@inline_kernel
def _after_event(px, sz, n, ist, rb_val, ist2, fst2, rb2_ts, rb2_val, ts, flags, head0, had_prev):
    cap = rb_val.shape[0]
    for j in range(head0, ist[I_HEAD]):  # the ring events v1 pushed for this event (at most two)
        r = rb_val[j % cap, C_LOGRET]
        if r != 0.0:
            fst2[F2_SESSION_RV2] += r * r
            fst2[F2_ACC + C2_ABS_RET] += abs(r)
            x = fst2[F2_KYLE_X]
            if x != 0.0:
                fst2[F2_ACC + C2_KYLE_XX] += x * x
                fst2[F2_ACC + C2_KYLE_XY] += x * (1e4 * r)
                fst2[F2_KYLE_X] = 0.0
    if not flags & FLAG_LAST:
        return
    # v1 judged this message end (not inside a snapshot) and found the book valid: it is v1's next reference.
    if not ist[I_IN_SNAPSHOT] and ist[I_IS_VALID]:
        if had_prev:
            _level_increments(px, sz, n, ist2, fst2)
        _store_levels(px, sz, n, ist2, fst2)
    for c in range(N_CH2):
        if fst2[F2_ACC + c] != 0.0:
            _push2(ist2, fst2, rb2_ts, rb2_val, ts)
            break


@kernel
def _compute_extra(ist, fst, ist2, fst2, rb2_ts, rb2_val, t, out):
    # The v2 columns at time t; v1's windows must already be evicted to t (v1's compute_features does it).
    _evict2(ist2, fst2, rb2_ts, rb2_val, t)
    elapsed = float(t - ist[I_FIRST_TS])
    session = fst2[F2_SESSION_RV2]
    if session > 0.0 and elapsed > 0.0:
        recent = max(fst[sum_slot(W_30S, C_LOGRET2)], 0.0) / min(_W30_NS, elapsed)
        out[COL_VOL_REGIME_30S] = math.sqrt(recent / (session / elapsed))
    else:
        out[COL_VOL_REGIME_30S] = 1.0
    path = fst2[sum2_slot(W2_30S, C2_ABS_RET)]
    net = abs(fst[sum_slot(W_30S, C_LOGRET)])
    out[COL_EFFICIENCY_RATIO_30S] = min(1.0, net / path) if path > 0.0 else 0.0
    if ist2[I2_ALL_DAY]:
        out[COL_TIME_OF_DAY_S] = (t % _DAY_NS) * 1e-9
        out[COL_TIME_TO_CLOSE_S] = -1.0
    else:
        out[COL_TIME_OF_DAY_S] = (t - ist2[I2_OPEN_NS]) * 1e-9
        out[COL_TIME_TO_CLOSE_S] = (ist2[I2_CLOSE_NS] - t) * 1e-9
    sxx = fst2[sum2_slot(W2_30S, C2_KYLE_XX)]
    out[COL_KYLE_LAMBDA_30S] = fst2[sum2_slot(W2_30S, C2_KYLE_XY)] / sxx if sxx > 0.0 else 0.0
    k = min(ist2[I2_TRADES], SIGN_WINDOW_TRADES)
    out[COL_TRADE_SIGN_AUTOCORR] = ist2[I2_SIGN_PROD] / (k - 1) if k >= 2 else 0.0
    out[COL_SPREAD_CHANGE_5S] = fst2[sum2_slot(W2_5S, C2_DSPREAD)] / _W2_5S_S
    for s in range(2):
        out[COL_QUEUE_DEPLETION + s] = fst2[sum2_slot(W2_5S, C2_DEPLETION + s)] / _W2_5S_S
        out[COL_ADD_RATE + s] = fst2[sum2_slot(W2_5S, C2_ADD + s)] / _W2_5S_S
        out[COL_CANCEL_RATE + s] = fst2[sum2_slot(W2_5S, C2_CANCEL + s)] / _W2_5S_S
    for m in range(DEPTH_LEVELS - 1):
        out[COL_OFI_L2 + m] = fst2[sum2_slot(W2_5S, C2_OFI + m)]


@kernel
def compute_features(px, sz, n, ist, fst, rb_ts, rb_val, ist2, fst2, rb2_ts, rb2_val, t, out):
    """Write feature set v2 at time ``t`` (ns) into ``out`` (float64[N_FEATURES_V2]); the book must be valid."""
    compute_features_v1(px, sz, n, ist, fst, rb_ts, rb_val, t, out)
    _compute_extra(ist, fst, ist2, fst2, rb2_ts, rb2_val, t, out)


@inline_kernel
def due_before(px, sz, n, ist, fst, rb_ts, rb_val, ist2, fst2, rb2_ts, rb2_val, ts, feat_out):
    """v1's ``due_before`` for a v2 state: a decision's row gets the v2 columns too."""
    code = due_before_v1(px, sz, n, ist, fst, rb_ts, rb_val, ts, feat_out)
    if code & CODE_DECISION and not ist[I_BOOK_ONLY]:
        _compute_extra(ist, fst, ist2, fst2, rb2_ts, rb2_val, ist[I_DECISION_TS], feat_out)
    return code


@kernel
def peek_next_decision(
    px, sz, n, ist, fst, rb_ts, rb_val, ist2, fst2, rb2_ts, rb2_val, feat_out, ist_tmp, fst_tmp, ist2_tmp, fst2_tmp
):
    """v1's ``peek_next_decision`` for a v2 state; ``ist2_tmp`` int64[N_ISTATE2] and ``fst2_tmp``
    float64[N_FSTATE2] take the copies of the v2 state the v2 eviction runs on."""
    g = peek_next_decision_v1(px, sz, n, ist, fst, rb_ts, rb_val, feat_out, ist_tmp, fst_tmp)
    if g == INT64_MIN:
        return g
    for k in range(ist2.shape[0]):  # element by element: a slice copy needs numba's runtime
        ist2_tmp[k] = ist2[k]
    for k in range(fst2.shape[0]):
        fst2_tmp[k] = fst2[k]
    _compute_extra(ist_tmp, fst_tmp, ist2_tmp, fst2_tmp, rb2_ts, rb2_val, g, feat_out)
    return g


@inline_kernel
def step(
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
    ist2,
    fst2,
    rb2_ts,
    rb2_val,
    ts,
    kind,
    side,
    price_tick,
    size,
    flags,
    feat_out,
):
    """v1's ``step`` for a v2 state (arrays: ``FeatureState(feature_set=2).arrays()``); same codes and
    semantics, and a decision's row (float64[N_FEATURES_V2]) carries the v2 columns."""
    due = due_before(px, sz, n, ist, fst, rb_ts, rb_val, ist2, fst2, rb2_ts, rb2_val, ts, feat_out)
    if due:
        return due
    on = not ist[I_BOOK_ONLY]
    head0 = ist[I_HEAD]
    had_prev = ist[I_HAS_PREV]
    if on:
        if kind == KIND_BOOK:
            if not ist[I_IN_SNAPSHOT]:
                _before_book(px, sz, n, ist2, fst2, side, price_tick, size)
        elif kind == KIND_TRADE:
            _before_trade(ist2, fst2, side, price_tick, size)
    # Nothing is due before this event any more: v1's step applies it.
    code = step_v1(px, sz, n, lpx, lsz, ln, ist, fst, rb_ts, rb_val, ts, kind, side, price_tick, size, flags, feat_out)
    if on:
        _after_event(px, sz, n, ist, rb_val, ist2, fst2, rb2_ts, rb2_val, ts, flags, head0, had_prev)
    return code


@kernel
def run_until(
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
    ist2,
    fst2,
    rb2_ts,
    rb2_val,
    ts,
    kind,
    side,
    price_tick,
    size,
    flags,
    i0,
    feat_out,
):
    """v1's ``run_until`` for a v2 state: apply events ``i0, ...`` until :func:`step` returns a code."""
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
            ist2,
            fst2,
            rb2_ts,
            rb2_val,
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
def run_batch(book, windows, v2, events, out):
    """v1's ``run_batch`` for a v2 state: ``v2`` is its :class:`~scalper.features.kernels.V2Arrays`, and
    ``out.feat_out`` is float64[M, N_FEATURES_V2]; the rest as in v1."""
    px, sz, n, lpx, lsz, ln = book
    ist, fst, rb_ts, rb_val = windows
    ist2, fst2, rb2_ts, rb2_val = v2
    ts, kind, side, price_tick, size, flags = events
    feat_out, dec_ts_out, mid_ts_out, mid_out, progress = out
    m = ts.shape[0]
    n_dec = 0
    n_mid = 0
    i = 0
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
            ist2,
            fst2,
            rb2_ts,
            rb2_val,
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
            store_release(progress, P_PAST, ts[i])
        i += 1
    store_release(progress, P_PAST, INT64_MAX)
    return n_dec, n_mid
