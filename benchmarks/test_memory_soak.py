"""Memory stays flat on the hot path: 10 million events through the live ``step`` path.

The GOOG level-10 session (245,260 events) is replayed 41 times, each pass shifted in time so the
clock only moves forward, one ``step`` call per event from Python as the daemon makes them. RSS is
read after the first pass (everything allocated, caches warm) and after the last; the hot path
allocates nothing per event, so the two must match (a few pages of slack for the interpreter).

Run: ``python -m pytest benchmarks/test_memory_soak.py -s`` (about 20 s).
"""

from __future__ import annotations

import re
import time
from pathlib import Path

import pytest

from scalper.features.kernels import I_EVENTS, PRE_MASK, FeatureState, step

pytestmark = [pytest.mark.realdata, pytest.mark.slow]

PASSES = 41


def _rss_kib() -> int:
    found = re.search(r"VmRSS:\s+(\d+) kB", Path("/proc/self/status").read_text())
    assert found is not None, "no VmRSS line in /proc/self/status"
    return int(found.group(1))


def test_rss_is_flat_over_ten_million_live_steps(goog10, record_property):
    cols = list(zip(*(c.tolist() for c in goog10.kernel_columns()), strict=True))
    span = int(goog10.ts_event[-1] - goog10.ts_event[0]) + 1_000_000_000
    state = FeatureState()
    arrays, feat = state.arrays(), state.feat
    t0 = time.perf_counter()
    rss_first = 0
    for rep in range(PASSES):
        shift = rep * span
        for ts, *rest in cols:
            while step(*arrays, ts + shift, *rest, feat) & PRE_MASK:
                pass
        if rep == 0:
            rss_first = _rss_kib()
    rss_last = _rss_kib()
    events = int(state.ist[I_EVENTS])
    wall = time.perf_counter() - t0
    print(
        f"\n{events:,} events in {wall:.1f} s: RSS {rss_first:,} KiB after the first pass,"
        f" {rss_last:,} KiB after the last"
    )
    record_property("rss_first_kib", rss_first)
    record_property("rss_last_kib", rss_last)
    assert events == PASSES * len(cols) > 10_000_000
    assert rss_last - rss_first <= 256  # KiB: no per-event allocation
