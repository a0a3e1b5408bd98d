"""Numba L2 (market-by-price) order book over integer ticks.

The book is three plain arrays so that numba kernels own it and Python can read it without copies:

* ``px``: int64[2, L], price of each level in ticks; row 0 holds bids best (highest) first,
  row 1 asks best (lowest) first.
* ``sz``: float64[2, L], total size resting at each level (base units), same layout.
* ``n``: int64[2], number of levels held per side.

``L`` is the capacity per side. Levels beyond it are the worst ones: when a side is full, a new
level better than the worst evicts it and a level worse than all is not stored. Either case
returns :data:`SET_OVERFLOW` so the caller can count it; the top of book is never affected.
"""

from __future__ import annotations

import numpy as np

from scalper.lowlevel.jit import inline_kernel, kernel

BID = 0
ASK = 1

SET_OK = 0
SET_OVERFLOW = 1

DEFAULT_CAPACITY = 2048


def new_book(capacity: int = DEFAULT_CAPACITY) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Return empty book arrays ``(px int64[2, capacity], sz float64[2, capacity], n int64[2])``."""
    return (
        np.zeros((2, capacity), dtype=np.int64),
        np.zeros((2, capacity), dtype=np.float64),
        np.zeros(2, dtype=np.int64),
    )


@inline_kernel
def side_index(side: int) -> int:
    """Map a schema side (+1 bid, -1 ask) to a book row (0 bids, 1 asks)."""
    return 0 if side > 0 else 1


@inline_kernel
def _find(px, n, s, price_tick):
    # First index whose level is not better than price_tick (lower bound in the side's order).
    lo = 0
    hi = n[s]
    if s == BID:
        while lo < hi:
            mid = (lo + hi) >> 1
            if px[s, mid] > price_tick:
                lo = mid + 1
            else:
                hi = mid
    else:
        while lo < hi:
            mid = (lo + hi) >> 1
            if px[s, mid] < price_tick:
                lo = mid + 1
            else:
                hi = mid
    return lo


@inline_kernel
def book_set(px, sz, n, s, price_tick, size):
    """Set the total size at ``price_tick`` on row ``s`` (0 bids, 1 asks); ``size == 0`` deletes the level.

    Returns
    -------
    int
        :data:`SET_OK`, or :data:`SET_OVERFLOW` when a level had to be left out for capacity.
    """
    cap = px.shape[1]
    cnt = n[s]
    i = _find(px, n, s, price_tick)
    found = i < cnt and px[s, i] == price_tick
    if size == 0.0:
        if found:
            for j in range(i, cnt - 1):
                px[s, j] = px[s, j + 1]
                sz[s, j] = sz[s, j + 1]
            n[s] = cnt - 1
        return SET_OK
    if found:
        sz[s, i] = size
        return SET_OK
    status = SET_OK
    if cnt == cap:
        status = SET_OVERFLOW
        if i == cap:
            return status
        cnt -= 1
    for j in range(cnt, i, -1):
        px[s, j] = px[s, j - 1]
        sz[s, j] = sz[s, j - 1]
    px[s, i] = price_tick
    sz[s, i] = size
    n[s] = cnt + 1
    return status


@kernel
def _better(s, a, b):
    # True when price a ranks before price b on side s (bids: higher first; asks: lower first).
    return a > b if s == BID else a < b


@kernel
def book_merge(px, sz, n, s, ticks, sizes, tmp_px, tmp_sz):
    """Apply a batch of level updates to row ``s`` in one merge pass (O(levels + batch), not O(levels x batch)).

    ``ticks`` (int64[k], ticks) must be strictly monotone, as venues send the levels of one message;
    ``sizes`` (float64[k]) are new totals, 0 deletes. ``tmp_px`` / ``tmp_sz`` are scratch rows of the
    book's capacity (no allocation here). The result equals :func:`book_set` applied level by level
    whenever the side stays within capacity; a batch that is not strictly monotone is applied level
    by level.

    Returns
    -------
    int
        Levels left out for capacity (the worst ones).
    """
    k = ticks.shape[0]
    overflows = 0
    ascending = k < 2 or ticks[1] > ticks[0]
    for j in range(1, k):
        if (ticks[j] > ticks[j - 1]) != ascending or ticks[j] == ticks[j - 1]:
            for q in range(k):
                overflows += book_set(px, sz, n, s, ticks[q], sizes[q])
            return overflows
    # Walk the batch best-first: bids descend, asks ascend.
    forward = ascending == (s == ASK)
    cap = px.shape[1]
    cnt = n[s]
    i = 0
    m = 0
    out = 0
    while i < cnt or m < k:
        j = m if forward else k - 1 - m
        if m >= k or (i < cnt and _better(s, px[s, i], ticks[j])):
            p, q = px[s, i], sz[s, i]
            i += 1
        else:
            if i < cnt and px[s, i] == ticks[j]:
                i += 1  # the update replaces (or deletes) the resting level
            p, q = ticks[j], sizes[j]
            m += 1
            if q == 0.0:
                continue
        if out < cap:
            tmp_px[out] = p
            tmp_sz[out] = q
            out += 1
        else:
            overflows += 1
    for t in range(out):
        px[s, t] = tmp_px[t]
        sz[s, t] = tmp_sz[t]
    n[s] = out
    return overflows


@kernel
def book_clear(n):
    """Remove every level from both sides."""
    n[0] = 0
    n[1] = 0


@inline_kernel
def is_two_sided(n):
    """Return True when both sides hold at least one level."""
    return n[0] > 0 and n[1] > 0


@inline_kernel
def is_crossed(px, n):
    """Return True when both sides exist and best bid >= best ask (crossed or locked)."""
    return n[0] > 0 and n[1] > 0 and px[0, 0] >= px[1, 0]


def top_levels(px: np.ndarray, sz: np.ndarray, n: np.ndarray, depth: int) -> tuple[np.ndarray, ...]:
    """Return ``(bid_px, bid_sz, ask_px, ask_sz)`` of the best ``depth`` levels, padded with 0.

    Shapes are ``(depth,)``; prices are int64 ticks, sizes float64. Not for the hot path (allocates).
    """
    out = []
    for s in (BID, ASK):
        k = min(depth, int(n[s]))
        p = np.zeros(depth, dtype=np.int64)
        q = np.zeros(depth, dtype=np.float64)
        p[:k] = px[s, :k]
        q[:k] = sz[s, :k]
        out += [p, q]
    return tuple(out)
