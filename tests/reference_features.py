"""A slow, obviously-correct pure-Python feature reference, recomputed from scratch at each decision."""

from __future__ import annotations

import math

import numpy as np

from scalper.features.registry import FEATURE_NAMES
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, FLAG_SNAPSHOT, KIND_BOOK, KIND_CLEAR, KIND_TRADE, TickData

S = 1_000_000_000


def message_states(data: TickData):
    """Yield (ts, top-of-book tuple or None, trades list) per message end, replaying with dicts."""
    bids: dict[int, float] = {}
    asks: dict[int, float] = {}
    in_snap = False
    ticks = data.price_tick
    states = []
    trades = []
    for i in range(len(data)):
        k, s, p, q, f, t = (
            int(data.kind[i]),
            int(data.side[i]),
            int(ticks[i]),
            float(data.size[i]),
            int(data.flags[i]),
            int(data.ts_event[i]),
        )
        if k == KIND_CLEAR:
            bids.clear()
            asks.clear()
            in_snap = True
        elif k == KIND_BOOK:
            side = bids if s > 0 else asks
            if q == 0.0:
                side.pop(p, None)
            else:
                side[p] = q
        elif k == KIND_TRADE:
            trades.append((t, s, q))
        if f & FLAG_LAST_IN_MESSAGE:
            if f & FLAG_SNAPSHOT:
                in_snap = False
            if in_snap:
                continue
            valid = bids and asks and max(bids) < min(asks)
            if valid:
                bb = sorted(bids, reverse=True)[:5]
                aa = sorted(asks)[:5]
                states.append(
                    (t, bb[0], bids[bb[0]], aa[0], asks[aa[0]], sum(bids[x] for x in bb), sum(asks[x] for x in aa))
                )
            else:
                states.append((t, None))
    return states, trades


def reference_features(data: TickData, decision_ts: np.ndarray) -> dict[str, np.ndarray]:
    """Each feature by its registry name: float64[len(decision_ts)] per name, from scratch at every decision."""
    states, trades = message_states(data)
    first_ts = int(data.ts_event[0])
    # OFI increments and log returns between consecutive valid message ends (reset after invalid).
    incs = []
    prev = None
    for st in states:
        if st[1] is None:
            prev = None
            continue
        t, b, qb, a, qa, _, _ = st
        if prev is not None:
            _, pb, pqb, pa, pqa, _, _ = prev
            e = (qb if b >= pb else 0) - (pqb if b <= pb else 0) - (qa if a <= pa else 0) + (pqa if a >= pa else 0)
            r = math.log((b + a) / (pb + pa))
            if e != 0 or r != 0:
                incs.append((t, e, r))
        prev = st
    out = {name: np.zeros(len(decision_ts)) for name in FEATURE_NAMES}
    for row, g in enumerate(decision_ts):
        g = int(g)
        last = [st for st in states if st[0] <= g][-1]
        _, b, qb, a, qa, db, da = last
        mid = 0.5 * (b + a)

        # g bound as a default: these helpers belong to this decision row only.
        def win(w, idx, g=g):
            return sum(x[idx] for x in incs if g - w < x[0] <= g)

        def tr(w, g=g):
            sel = [x for x in trades if g - w < x[0] <= g]
            buy = sum(q for _, s, q in sel if s > 0)
            sell = sum(q for _, s, q in sel if s < 0)
            return buy, sell, len(sel)

        b5, s5, n5 = tr(5 * S)
        b30, s30, _ = tr(30 * S)
        past = [x[0] for x in trades if x[0] <= g]
        row_values = {
            "spread_ticks": a - b,
            "mid_return_1s_bps": 1e4 * win(S, 2),
            "mid_return_5s_bps": 1e4 * win(5 * S, 2),
            "microprice_minus_mid_ticks": (b * qa + a * qb) / (qb + qa) - mid,
            "queue_imbalance_l1": (qb - qa) / (qb + qa),
            "depth_imbalance_5": (db - da) / (db + da),
            "ofi_1s": win(S, 1),
            "ofi_5s": win(5 * S, 1),
            "ofi_30s": win(30 * S, 1),
            "trade_flow_imbalance_5s": (b5 - s5) / (b5 + s5) if b5 + s5 else 0.0,
            "trade_flow_imbalance_30s": (b30 - s30) / (b30 + s30) if b30 + s30 else 0.0,
            "realized_vol_5s_bps": 1e4 * math.sqrt(sum(x[2] ** 2 for x in incs if g - 5 * S < x[0] <= g)),
            "realized_vol_30s_bps": 1e4 * math.sqrt(sum(x[2] ** 2 for x in incs if g - 30 * S < x[0] <= g)),
            "trade_count_5s": n5,
            "time_since_last_trade_s": (g - (past[-1] if past else first_ts)) / 1e9,
        }
        for name, value in row_values.items():
            out[name][row] = value
    return out


def assert_features_equal_reference(X: np.ndarray, data: TickData, decision_ts: np.ndarray) -> None:
    """Check every column of ``X`` (float64[M, N_FEATURES]) against the reference value of its registry name."""
    want = reference_features(data, decision_ts)
    assert set(want) == set(FEATURE_NAMES), "the reference must compute exactly the registry's features"
    for j, name in enumerate(FEATURE_NAMES):
        np.testing.assert_allclose(X[:, j], want[name], rtol=1e-9, atol=1e-9, err_msg=f"column {j}: {name}")
