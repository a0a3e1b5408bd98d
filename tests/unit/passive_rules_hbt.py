"""Peer side of tests/unit/test_passive_peer_rules.py: replay one hand-made scenario in hftbacktest 2.4.4.

Runs in hftbacktest's own interpreter and imports nothing from scalper. Reads a JSON scenario on
stdin (tick and lot size, latencies, queue model, events ``[ts, kind, side, price_tick, size]`` with
the tick-file schema's kind and side, local actions ``[ts, "submit", side, price_tick, lots, tif]``,
``[ts, "cancel", id]``, ``[ts, "modify", id, price_tick, lots]``, and poll times) and prints, per poll
time, each order's ``[status, leaves lots, exchange timestamp]`` as hftbacktest's local side sees it.
The exchange is ``partial_fill_exchange``; feed latency is zero.
"""

from __future__ import annotations

import json
import sys

import numpy as np
from hftbacktest import BacktestAsset, HashMapMarketDepthBacktest
from hftbacktest.order import GTC, GTX, IOC, LIMIT
from hftbacktest.types import (
    BUY_EVENT,
    DEPTH_CLEAR_EVENT,
    DEPTH_EVENT,
    EXCH_EVENT,
    LOCAL_EVENT,
    SELL_EVENT,
    TRADE_EVENT,
    event_dtype,
)

TIFS = {0: GTC, 1: GTX, 2: IOC}


def main() -> None:
    sc = json.load(sys.stdin)
    tick, lot = sc["tick"], sc["lot"]
    rows = []
    for ts, kind, side, price_tick, size in sc["events"]:
        flag = {0: DEPTH_EVENT, 1: TRADE_EVENT, 2: DEPTH_CLEAR_EVENT}[kind]
        flag |= BUY_EVENT if side > 0 else SELL_EVENT if side < 0 else 0
        rows.append((flag | EXCH_EVENT | LOCAL_EVENT, ts, ts, price_tick * tick, size, 0, 0, 0.0))
    # Kept in a name until the end: the asset reads the array's buffer without holding a reference to it.
    data = np.array(rows, dtype=event_dtype)
    asset = BacktestAsset().data([data]).linear_asset(1.0)
    model, param = sc["queue"]
    if model == "risk_averse":
        asset = asset.risk_adverse_queue_model()
    elif model == "power":
        asset = asset.power_prob_queue_model(param)
    else:
        asset = asset.log_prob_queue_model()
    asset = (
        asset.constant_order_latency(sc["entry"], sc["resp"])
        .partial_fill_exchange()
        .trading_value_fee_model(0.0, 0.0)
        .tick_size(tick)
        .lot_size(lot)
    )
    hbt = HashMapMarketDepthBacktest([asset])
    actions: dict[int, list] = {}
    for a in sc["actions"]:
        actions.setdefault(a[0], []).append(a)
    times = sorted(set(actions) | set(sc["polls"]))
    hbt.elapse(times[0] - rows[0][1])  # the clock starts at the first event
    ids: list[int] = []
    out = []
    for t in times:
        if t > hbt.current_timestamp:
            hbt.elapse(t - hbt.current_timestamp)
        for a in actions.get(t, []):
            if a[1] == "submit":
                _, _, side, price_tick, lots, tif = a
                oid = len(ids)
                ids.append(oid)
                submit = hbt.submit_buy_order if side > 0 else hbt.submit_sell_order
                submit(0, oid, price_tick * tick, lots * lot, TIFS[tif], LIMIT, False)
            elif a[1] == "cancel":
                hbt.cancel(0, a[2], False)
            else:
                hbt.modify(0, a[2], a[3] * tick, a[4] * lot, False)
        if t in sc["polls"]:
            orders = hbt.orders(0)
            state = {}
            for oid in ids:
                o = orders.get(oid)
                if o is not None:
                    state[oid] = [int(o.status), round(o.leaves_qty / lot), int(o.exch_timestamp)]
            out.append([t, state])
    hbt.close()
    del data
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
