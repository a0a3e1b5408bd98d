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


def _v2_records(data: TickData):
    """Replay with dicts for set v2: per message end, its time and v2 values; the session's returns; trade signs.

    Written from the registry's definitions, independently of the kernels' state machine.
    """
    levels = 5
    book: dict[int, dict[int, float]] = {1: {}, -1: {}}
    in_snap = False
    prev = None  # (bid levels, ask levels) at the previous valid message end, since the last clear/invalid end
    prev_mid = None
    pending = {1: (None, 0.0), -1: (None, 0.0)}  # book side -> (price, traded volume not yet matched)
    kyle_x = 0.0
    acc: dict[str, float] = {}
    pushes = []  # (ts, values) per message end with a nonzero value
    returns = []  # (ts, r) per nonzero mid log return
    signs = []  # (ts, sign) per signed trade
    ticks = data.price_tick

    def best(side):
        return sorted(book[side], reverse=side > 0)[:levels]

    def add(key, v):
        acc[key] = acc.get(key, 0.0) + v

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
            book[1].clear()
            book[-1].clear()
            in_snap = True
            prev = None
        elif k == KIND_BOOK:
            side = 1 if s > 0 else -1
            top = best(side)
            in_scope = len(top) < levels or (p >= top[-1] if side > 0 else p <= top[-1])
            if not in_snap and in_scope:
                old = book[side].get(p, 0.0)
                name = "bid" if side > 0 else "ask"
                if q > old:
                    add("add_" + name, q - old)
                elif q < old:
                    dec = old - q
                    pp, pv = pending[side]
                    matched = min(dec, pv) if pp == p else 0.0
                    if pp == p:
                        pending[side] = (pp, pv - matched)
                    add("cancel_" + name, dec - matched)
                    if top and p == top[0]:
                        add("depl_" + name, dec)
            if q == 0.0:
                book[side].pop(p, None)
            else:
                book[side][p] = q
        elif k == KIND_TRADE and s != 0:
            hit = -1 if s > 0 else 1
            pp, pv = pending[hit]
            pending[hit] = (p, pv + q) if pp == p else (p, q)
            kyle_x += (1 if s > 0 else -1) * q
            signs.append((t, 1 if s > 0 else -1))
        if not f & FLAG_LAST_IN_MESSAGE:
            continue
        if f & FLAG_SNAPSHOT:
            in_snap = False
        if not in_snap:
            bb, aa = best(1), best(-1)
            if bb and aa and bb[0] < aa[0]:
                mid = 0.5 * (bb[0] + aa[0])
                now = ([(x, book[1][x]) for x in bb], [(x, book[-1][x]) for x in aa])
                if prev is not None:
                    r = math.log(mid / prev_mid)
                    if r != 0.0:
                        returns.append((t, r))
                        add("abs_r", abs(r))
                        if kyle_x != 0.0:
                            add("kxx", kyle_x * kyle_x)
                            add("kxy", kyle_x * (1e4 * r))
                            kyle_x = 0.0
                    for m in range(1, levels):
                        e = 0.0
                        if len(now[0]) > m and len(prev[0]) > m:
                            (b, qb), (pb, pqb) = now[0][m], prev[0][m]
                            e += (qb if b >= pb else 0.0) - (pqb if b <= pb else 0.0)
                        if len(now[1]) > m and len(prev[1]) > m:
                            (a, qa), (pa, pqa) = now[1][m], prev[1][m]
                            e += -(qa if a <= pa else 0.0) + (pqa if a >= pa else 0.0)
                        add(f"ofi{m + 1}", e)
                    add("dspread", (aa[0] - bb[0]) - (prev[1][0][0] - prev[0][0][0]))
                prev, prev_mid = now, mid
            else:
                prev = None
        if any(v != 0.0 for v in acc.values()):
            pushes.append((t, dict(acc)))
        acc = {}
    return pushes, returns, signs


def reference_features_v2(data: TickData, decision_ts: np.ndarray, clock=None) -> dict[str, np.ndarray]:
    """Feature set v2 by registry name, from scratch at every decision; ``clock`` a ``SessionClock`` (24/7 if None)."""
    from scalper.features.registry import FEATURE_NAMES_V2, SIGN_WINDOW_TRADES
    from scalper.features.session import ALL_DAY

    clock = clock or ALL_DAY
    out = reference_features(data, decision_ts)
    out.update({name: np.zeros(len(decision_ts)) for name in FEATURE_NAMES_V2[len(FEATURE_NAMES) :]})
    pushes, returns, signs = _v2_records(data)
    first_ts = int(data.ts_event[0])
    for row, g in enumerate(decision_ts):
        g = int(g)

        def win(key, w, g=g):
            return sum(v.get(key, 0.0) for t, v in pushes if g - w < t <= g)

        r30 = [r for t, r in returns if g - 30 * S < t <= g]
        session = sum(r * r for t, r in returns if t <= g)
        elapsed = g - first_ts
        if session > 0 and elapsed > 0:
            regime = math.sqrt((sum(r * r for r in r30) / min(30 * S, elapsed)) / (session / elapsed))
        else:
            regime = 1.0
        path = win("abs_r", 30 * S)
        kxx = win("kxx", 30 * S)
        last = [x for t, x in signs if t <= g][-SIGN_WINDOW_TRADES:]
        pairs = [a * b for a, b in zip(last[1:], last[:-1], strict=True)]
        values = {
            "vol_regime_30s": regime,
            "efficiency_ratio_30s": min(1.0, abs(sum(r30)) / path) if path > 0 else 0.0,
            "time_of_day_s": (g % (86_400 * S)) / 1e9 if clock.all_day else (g - clock.open_ns) / 1e9,
            "time_to_close_s": -1.0 if clock.all_day else (clock.close_ns - g) / 1e9,
            "kyle_lambda_30s": win("kxy", 30 * S) / kxx if kxx > 0 else 0.0,
            "trade_sign_autocorr_50": sum(pairs) / len(pairs) if pairs else 0.0,
            "spread_change_5s_ticks_per_s": win("dspread", 5 * S) / 5,
        }
        for name in ("bid", "ask"):
            values[f"queue_depletion_{name}_5s"] = win("depl_" + name, 5 * S) / 5
            values[f"add_rate_{name}_5s"] = win("add_" + name, 5 * S) / 5
            values[f"cancel_rate_{name}_5s"] = win("cancel_" + name, 5 * S) / 5
        for m in range(2, 6):
            values[f"ofi_l{m}_5s"] = win(f"ofi{m}", 5 * S)
        for name, value in values.items():
            out[name][row] = value
    return out


def assert_features_v2_equal_reference(X: np.ndarray, data: TickData, decision_ts: np.ndarray, clock=None) -> None:
    """Check every column of ``X`` (float64[M, N_FEATURES_V2]) against the v2 reference of its registry name."""
    from scalper.features.registry import FEATURE_NAMES_V2

    want = reference_features_v2(data, decision_ts, clock)
    assert set(want) == set(FEATURE_NAMES_V2), "the reference must compute exactly the registry's v2 features"
    for j, name in enumerate(FEATURE_NAMES_V2):
        np.testing.assert_allclose(X[:, j], want[name], rtol=1e-9, atol=1e-9, err_msg=f"column {j}: {name}")
