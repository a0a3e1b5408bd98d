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
from numba import njit

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


@njit(cache=True, inline="always")
def side_index(side: int) -> int:
    """Map a schema side (+1 bid, -1 ask) to a book row (0 bids, 1 asks)."""
    return 0 if side > 0 else 1


@njit(cache=True)
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


@njit(cache=True)
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


@njit(cache=True)
def book_clear(n):
    """Remove every level from both sides."""
    n[0] = 0
    n[1] = 0


@njit(cache=True)
def is_two_sided(n):
    """Return True when both sides hold at least one level."""
    return n[0] > 0 and n[1] > 0


@njit(cache=True)
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
