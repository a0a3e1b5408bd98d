"""The kernels' deep book (sorted top view + ladder) equals a full sorted book on real Binance depth.

USD-M ETHUSDT 2024-07-18/19 holds ~4,500 levels a side and its diffs touch every depth, which is
what the ladder is for: the top 64 must equal the full book's after every message, and at the end
the deep book (top + ladder) must hold every level of the full book within half the ladder's width
of the top view (a level is dropped only when it sits a whole width behind a nearer level of its slot,
and ETHUSDT moved far less than half a width here). The recording holds stray orders hundreds of
dollars from the touch (bids at $44 with ETH at $3,400): those are what gets dropped, and counted.
"""

from __future__ import annotations

import pytest
from numba import njit

from scalper.features.ladder import deep_book_clear, deep_book_set, deep_levels, new_deep_book
from scalper.ingest.binance.importer import import_binance
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, KIND_BOOK, KIND_CLEAR
from scalper.lowlevel.book import book_clear, book_set, new_book, side_index

pytestmark = pytest.mark.realdata

FILES = ("hftbacktest/binance_usdm/ethusdt_20240718.gz", "hftbacktest/binance_usdm/ethusdt_20240719.gz")


@njit(cache=True)
def _replay_both(kind, side, tick, size, flags, full, deep):
    # Returns (index of the first message end where the top views differ or -1, levels dropped, max depth).
    px, sz, n = full
    dpx, dsz, dn, lpx, lsz, ln = deep
    top = dpx.shape[1]
    dropped = 0
    depth = 0
    for i in range(kind.shape[0]):
        if kind[i] == KIND_CLEAR:
            book_clear(n)
            deep_book_clear(dn, lpx, ln)
        elif kind[i] == KIND_BOOK:
            s = side_index(side[i])
            book_set(px, sz, n, s, tick[i], size[i])
            dropped += deep_book_set(dpx, dsz, dn, lpx, lsz, ln, s, tick[i], size[i])
        if flags[i] & FLAG_LAST_IN_MESSAGE:
            depth = max(depth, n[0], n[1])
            for s in range(2):
                if dn[s] != min(n[s], top):
                    return i, dropped, depth
                for k in range(dn[s]):
                    if dpx[s, k] != px[s, k] or dsz[s, k] != sz[s, k]:
                        return i, dropped, depth
    return -1, dropped, depth


def test_deep_book_equals_full_book_on_ethusdt(data_dir):
    paths = [data_dir / f for f in FILES]
    if not all(p.exists() for p in paths):
        pytest.skip(f"ETHUSDT recording not found under {data_dir}")
    data = import_binance(paths).data
    full = new_book(16384)
    deep = new_deep_book(64, 1 << 16)
    bad, dropped, depth = _replay_both(data.kind, data.side, data.price_tick, data.size, data.flags, full, deep)
    assert bad == -1, f"top view differs after event {bad}"
    assert depth > 4000  # deep enough that the ladder carried most levels
    px, sz, n = full
    w = deep[3].shape[1]
    held = 0
    for s in (0, 1):
        full_levels = dict(zip(px[s, : n[s]].tolist(), sz[s, : n[s]].tolist(), strict=True))
        ticks, sizes = deep_levels(*deep[:5], s)
        deep_levels_ = dict(zip(ticks.tolist(), sizes.tolist(), strict=True))
        assert all(full_levels.get(p) == q for p, q in deep_levels_.items())  # nothing made up
        boundary = int(deep[0][s, -1])
        reach = {p: q for p, q in full_levels.items() if abs(p - boundary) < w // 2}
        assert all(deep_levels_.get(p) == q for p, q in reach.items())  # nothing within reach lost
        held += len(deep_levels_)
    assert 0 < n[0] + n[1] - held <= dropped < 500
