"""A local L2 book rebuilt from Binance snapshots and diffs, for checking the feed.

It is the numba book of :mod:`scalper.lowlevel.book` (integer ticks) driven straight from
messages, so the importer (and a live handler) can check at every message end that the book is
not crossed and that its best levels equal Binance's own ``bookTicker`` at the same update id.
"""

from __future__ import annotations

import numpy as np

from scalper.ingest.binance.messages import BookTicker, DepthSnapshot, DepthUpdate
from scalper.lowlevel.book import ASK, BID, book_clear, book_merge, book_set, is_crossed, new_book
from scalper.lowlevel.jit import kernel

DEFAULT_CAPACITY = 8192
"""Levels per side. Binance diffs include far-away levels (a BTC bid at 1000.00), so a book kept
for minutes holds 1,000-5,000 levels per side (../shared/data/README.md); beyond the capacity the
worst levels are left out and counted, the top of book is never affected."""


class LocalBook:
    """An L2 book in ticks of ``tick_size``, updated per Binance message.

    Parameters
    ----------
    tick_size : float
        Price increment, quote currency; prices are stored as ``rint(price / tick_size)`` (int64).
    capacity : int
        Levels per side (see :data:`DEFAULT_CAPACITY`).

    Attributes
    ----------
    px, sz, n : numpy.ndarray
        The book arrays (int64[2, capacity] ticks, float64[2, capacity] base units, int64[2]);
        row 0 bids best first, row 1 asks best first.
    tick_size : float
    overflows : int
        Level insertions that capacity forced out (worst levels), since construction.
    """

    __slots__ = ("px", "sz", "n", "tick_size", "overflows", "_scratch")

    def __init__(self, tick_size: float, capacity: int = DEFAULT_CAPACITY) -> None:
        if not tick_size > 0:
            raise ValueError(f"tick_size must be > 0, got {tick_size}")
        self.px, self.sz, self.n = new_book(capacity)
        self.tick_size = float(tick_size)
        self.overflows = 0
        # Scratch for the merge (ticks of one message, the merged side): no allocation per message.
        self._scratch = (np.zeros(capacity, np.int64), np.zeros(capacity, np.int64), np.zeros(capacity, np.float64))

    def apply_snapshot(self, snapshot: DepthSnapshot) -> None:
        """Replace the book by the snapshot's levels."""
        self.overflows += _apply(
            self.px, self.sz, self.n, snapshot.bids, snapshot.asks, self.tick_size, True, *self._scratch
        )

    def apply_diff(self, diff: DepthUpdate) -> None:
        """Set every level of the diff (qty 0 deletes; deleting an absent level is a no-op, as
        Binance warns can happen)."""
        self.overflows += _apply(self.px, self.sz, self.n, diff.bids, diff.asks, self.tick_size, False, *self._scratch)

    def clear(self) -> None:
        """Remove every level."""
        book_clear(self.n)

    def is_crossed(self) -> bool:
        """Return True when both sides exist and best bid >= best ask (crossed or locked)."""
        return bool(is_crossed(self.px, self.n))

    def best(self) -> tuple[int, float, int, float] | None:
        """Return ``(bid_tick, bid_qty, ask_tick, ask_qty)`` of the best levels, or None when a side is empty."""
        if self.n[BID] == 0 or self.n[ASK] == 0:
            return None
        return int(self.px[BID, 0]), float(self.sz[BID, 0]), int(self.px[ASK, 0]), float(self.sz[ASK, 0])

    def matches(self, ticker: BookTicker) -> bool:
        """Return True when the best levels equal the ticker's: prices in ticks and quantities exactly.

        Both sides come from the same decimal strings, so exact float equality is the right test.
        """
        best = self.best()
        if best is None:
            return False
        tick = self.tick_size
        expected = (int(np.rint(ticker.bid / tick)), ticker.bid_qty, int(np.rint(ticker.ask / tick)), ticker.ask_qty)
        return best == expected


@kernel
def _apply_side(px, sz, n, s, levels, tick, tick_buf, tmp_px, tmp_sz):
    k = levels.shape[0]
    if k > tick_buf.shape[0]:
        overflows = 0
        for j in range(k):
            overflows += book_set(px, sz, n, s, np.int64(np.rint(levels[j, 0] / tick)), levels[j, 1])
        return overflows
    for j in range(k):
        tick_buf[j] = np.int64(np.rint(levels[j, 0] / tick))
    # A message's levels come sorted: one merge pass instead of a shift of the whole side per level.
    return book_merge(px, sz, n, s, tick_buf[:k], levels[:, 1], tmp_px, tmp_sz)


@kernel
def _apply(px, sz, n, bids, asks, tick, clear, tick_buf, tmp_px, tmp_sz):
    # Returns the number of level insertions capacity forced out.
    if clear:
        book_clear(n)
    overflows = _apply_side(px, sz, n, BID, bids, tick, tick_buf, tmp_px, tmp_sz)
    return overflows + _apply_side(px, sz, n, ASK, asks, tick, tick_buf, tmp_px, tmp_sz)
