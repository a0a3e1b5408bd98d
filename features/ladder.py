"""Deep L2 book for the kernels: a sorted top-of-book view plus a tick-indexed ladder for the rest.

Venue books run thousands of levels deep (Binance USD-M ETHUSDT holds ~4,500 a side) and their diff
streams update every depth about equally often, so one sorted array shifts thousands of levels per
insert or delete (2.5 M events/s on ETHUSDT with 2,048 levels, against 11 M with 64). Here only the
best ``K`` levels are kept sorted (``px``, ``sz``, ``n`` exactly as in :mod:`scalper.lowlevel.book`, which
the features and the simulated fills read); every deeper level lives in a ladder indexed by
``price_tick mod W``, where an update costs O(1).

Arrays (all preallocated; see :func:`new_deep_book`):

* ``px`` int64[2, K], ``sz`` float64[2, K], ``n`` int64[2]: the top view, best first.
* ``lpx`` int64[2, W]: price (ticks) held in each ladder slot, :data:`EMPTY` when free; ``W`` is a
  power of two.
* ``lsz`` float64[2, W]: size (base units) at that price.
* ``ln`` int64[2]: ladder levels held per side.

Invariants: every ladder level is worse than every top level of its side, and a side's ladder is
empty unless its top view is full (``n[s] == K``), so the top view is always the true best ``K``.
Two prices ``W`` ticks apart share a slot: the worse one is dropped and counted. So a level is only
ever dropped while it sits a whole ``W`` behind another level of its side (a stray order hundreds of
dollars from the touch); like any level a venue has stopped updating, it stays out until the venue
sends it again. ``tests/realdata/test_deep_book_realdata.py`` checks this against a full book.
"""

from __future__ import annotations

import numpy as np

from scalper.lowlevel.book import ASK, BID, book_set
from scalper.lowlevel.jit import inline_kernel, kernel

EMPTY = np.iinfo(np.int64).min
DEFAULT_TOP_LEVELS = 64
DEFAULT_LADDER_TICKS = 1 << 16


def new_deep_book(
    top_levels: int = DEFAULT_TOP_LEVELS, ladder_ticks: int = DEFAULT_LADDER_TICKS
) -> tuple[np.ndarray, ...]:
    """Return empty ``(px, sz, n, lpx, lsz, ln)`` arrays (shapes in the module docstring).

    Raises
    ------
    ValueError
        If ``top_levels < 1`` or ``ladder_ticks`` is not a power of two.
    """
    if top_levels < 1:
        raise ValueError(f"top_levels must be >= 1, got {top_levels}")
    if ladder_ticks < 1 or ladder_ticks & (ladder_ticks - 1):
        raise ValueError(f"ladder_ticks must be a power of two, got {ladder_ticks}")
    return (
        np.zeros((2, top_levels), dtype=np.int64),
        np.zeros((2, top_levels), dtype=np.float64),
        np.zeros(2, dtype=np.int64),
        np.full((2, ladder_ticks), EMPTY, dtype=np.int64),
        np.zeros((2, ladder_ticks), dtype=np.float64),
        np.zeros(2, dtype=np.int64),
    )


@inline_kernel
def _worse(s, a, b):
    # True when price a ranks after price b on side s (bids: lower; asks: higher).
    return a < b if s == BID else a > b


@kernel
def _ladder_put(lpx, lsz, ln, s, p, q):
    # Store (p, q) with q > 0; returns 1 when a level had to be dropped for a shared slot.
    k = p & (lpx.shape[1] - 1)
    held = lpx[s, k]
    if held == p:
        lsz[s, k] = q
        return 0
    if held == EMPTY:
        lpx[s, k] = p
        lsz[s, k] = q
        ln[s] += 1
        return 0
    if _worse(s, p, held):
        return 1
    lpx[s, k] = p
    lsz[s, k] = q
    return 1


@kernel
def _ladder_pop_best(lpx, lsz, ln, s, after):
    # Remove and return the best ladder level of side s; `after` is a price every ladder level is
    # worse than. Levels within W ticks of it are found by an outward scan; farther ones, which
    # share slots with nearer prices, only by a full pass.
    w = lpx.shape[1]
    mask = w - 1
    step = -1 if s == BID else 1
    far_k = -1
    for d in range(1, w + 1):
        p = after + step * d
        k = p & mask
        held = lpx[s, k]
        if held == p:
            q = lsz[s, k]
            lpx[s, k] = EMPTY
            ln[s] -= 1
            return p, q
        if held != EMPTY and (far_k < 0 or _worse(s, lpx[s, far_k], held)):
            far_k = k
    p = lpx[s, far_k]
    q = lsz[s, far_k]
    lpx[s, far_k] = EMPTY
    ln[s] -= 1
    return p, q


@inline_kernel
def deep_book_set(px, sz, n, lpx, lsz, ln, s, price_tick, size):
    """Set the total size at ``price_tick`` on row ``s`` (0 bids, 1 asks); ``size == 0`` deletes the level.

    Parameters
    ----------
    px, sz, n, lpx, lsz, ln : ndarray
        The deep book (:func:`new_deep_book`), updated in place.
    s : int
        Row: 0 bids, 1 asks.
    price_tick : int
        Level price, ticks.
    size : float
        New total size at the level, base units (0 deletes it).

    Returns
    -------
    int
        Levels dropped (0 or 1): a ladder slot shared with a better level ``W`` ticks away.
    """
    cap = px.shape[1]
    cnt = n[s]
    if cnt == cap and _worse(s, price_tick, px[s, cap - 1]):
        k = price_tick & (lpx.shape[1] - 1)
        if size != 0.0:
            return _ladder_put(lpx, lsz, ln, s, price_tick, size)
        if lpx[s, k] == price_tick:
            lpx[s, k] = EMPTY
            ln[s] -= 1
        return 0
    if size == 0.0:
        book_set(px, sz, n, s, price_tick, 0.0)
        if n[s] < cnt and ln[s] > 0:
            after = px[s, n[s] - 1] if n[s] > 0 else price_tick
            p, q = _ladder_pop_best(lpx, lsz, ln, s, after)
            px[s, n[s]] = p
            sz[s, n[s]] = q
            n[s] += 1
        return 0
    dropped = 0
    if cnt == cap:
        worst_px = px[s, cap - 1]
        worst_sz = sz[s, cap - 1]
        if book_set(px, sz, n, s, price_tick, size) != 0:
            # A new level entered the full view and pushed its worst level out: keep that in the ladder.
            dropped = _ladder_put(lpx, lsz, ln, s, worst_px, worst_sz)
        return dropped
    book_set(px, sz, n, s, price_tick, size)
    return dropped


@kernel
def deep_book_clear(n, lpx, ln):
    """Remove every level from both sides (O(W) only for a side whose ladder holds levels)."""
    n[0] = 0
    n[1] = 0
    for s in (BID, ASK):
        if ln[s] > 0:
            lpx[s, :] = EMPTY
            ln[s] = 0


def deep_levels(
    px: np.ndarray, sz: np.ndarray, n: np.ndarray, lpx: np.ndarray, lsz: np.ndarray, s: int
) -> tuple[np.ndarray, np.ndarray]:
    """Return every level of row ``s``, best first: ``(ticks int64[m], sizes float64[m])``. Not for the hot path."""
    held = lpx[s] != EMPTY
    lad_px, lad_sz = lpx[s][held], lsz[s][held]
    order = np.argsort(-lad_px if s == BID else lad_px, kind="stable")
    k = int(n[s])
    return np.concatenate([px[s, :k], lad_px[order]]), np.concatenate([sz[s, :k], lad_sz[order]])
