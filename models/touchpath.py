"""The best bid and ask after every valid message of a tick file: the price path an exit watches.

A long exits on the best bid and a short on the best ask (``engine/core.py``: take-profit and stop-loss
are price watches on the exit side, checked at message ends). First-passage labels
(:mod:`scalper.models.labels`) need that path after every decision; the feature pass keeps only the
mid, so this is one more numba pass over the events with a plain L2 book (``lowlevel/book.py``), which
keeps the top of book exact whatever its capacity.

The samples are taken where the feature kernel samples its mid (``features/kernels.py``): at the end of
every message outside a snapshot whose book is two-sided and not crossed, so ``(bid + ask) / 2`` here
equals ``FeatureMatrix.mid_tick`` sample for sample.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, FLAG_SNAPSHOT, KIND_BOOK, KIND_CLEAR, TickData
from scalper.lowlevel.book import book_clear, book_set, is_crossed, is_two_sided, new_book, side_index
from scalper.lowlevel.jit import kernel


@dataclass(frozen=True)
class TouchPath:
    """Best prices after every valid message end.

    Attributes
    ----------
    ts : ndarray
        int64[K], message-end times, ns, non-decreasing.
    bid_tick, ask_tick : ndarray
        int64[K], best bid and best ask, ticks (bid < ask).
    """

    ts: np.ndarray
    bid_tick: np.ndarray
    ask_tick: np.ndarray


@kernel
def _touch_pass(px, sz, n, ts, kind, side, price_tick, size, flags, ts_out, bid_out, ask_out):
    k = 0
    in_snapshot = False
    for i in range(ts.shape[0]):
        if kind[i] == KIND_BOOK:
            book_set(px, sz, n, side_index(side[i]), price_tick[i], size[i])
        elif kind[i] == KIND_CLEAR:
            book_clear(n)
            in_snapshot = True
        if flags[i] & FLAG_LAST_IN_MESSAGE:
            if flags[i] & FLAG_SNAPSHOT:
                in_snapshot = False
            if not in_snapshot and is_two_sided(n) and not is_crossed(px, n):
                ts_out[k] = ts[i]
                bid_out[k] = px[0, 0]
                ask_out[k] = px[1, 0]
                k += 1
    return k


def touch_path(data: TickData) -> TouchPath:
    """Replay ``data`` (a schema-v1 tick file) and return the best bid and ask after every valid message."""
    m = len(data)
    px, sz, n = new_book()
    ts_out = np.empty(m, dtype=np.int64)
    bid_out = np.empty(m, dtype=np.int64)
    ask_out = np.empty(m, dtype=np.int64)
    k = _touch_pass(px, sz, n, *data.kernel_columns(), ts_out, bid_out, ask_out)
    return TouchPath(ts_out[:k].copy(), bid_out[:k].copy(), ask_out[:k].copy())
