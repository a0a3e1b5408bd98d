"""Peer side of the market-making comparison: hftbacktest 2.4.4 quoting one lot at the touch.

Runs in hftbacktest's own environment (it pins numpy < 2.3) and imports nothing from scalper:

    /tmp/hbtenv/bin/python benchmarks/peer_maker_hbt.py \
        ../shared/data/hftbacktest/binance_usdm/ethusdt_20240718.gz --out /tmp/hbt_fills.npz

The strategy (the same rules as :mod:`scalper.backtest.maker_peer`), decided at every local time
``t`` on the absolute grid ``t % step_ns == 0`` inside ``[quote_from_ns, quote_until_ns]``:

* read the local book's best bid and ask ticks and the local position (fills whose response has
  reached the local side by ``t``), in lots;
* per side, the *current* order is the last one submitted on that side. If it is live (status NEW,
  no request in flight) and either its price is no longer the touch (best bid for the buy, best ask
  for the sell) or the side is disabled, cancel it and forget it (it may still fill before the
  cancel arrives; that fill is recorded like any other). A current order that is filled, canceled
  or expired is forgotten; one whose submission is not yet acknowledged is left alone;
* with no current order on a side that is enabled, submit a GTX (post-only) limit order for one
  lot at the touch. The buy side is disabled when position >= ``max_position`` lots, the sell side
  when position <= -``max_position`` lots.

Exchange model: ``no_partial_fill_exchange`` with ``risk_adverse_queue_model`` (``--queue`` picks a
``ProbQueueModel`` instead, named as scalper's ``exec/queue.py`` names them). A one-lot order
cannot fill partially (the lot is the quantity step), and the partial-fill model keeps an order
whose execution equals its leaves quantity in its price map (``partialfillexchange.rs``,
``filled_qty > order.leaves_qty``), so the no-partial-fill model is the one whose rules a
one-lot quote exercises cleanly. Constant entry and response latencies; fees by traded value
(``trading_value_fee_model``), maker and taker rates as fractions (bps / 1e4). One lot = ``--lot-size``.

Time: the data is converted with hftbacktest's documented converter
(``hftbacktest.data.utils.binancefutures.convert``, ``combined_stream=True``): exchange time is
the message's ``T`` in ns; local time is the line's stamp shifted by
``correct_local_timestamp`` so that the smallest feed latency (``local - exch``) is 0. The script
reports that offset (``local_offset_ns``) so the other side can apply the same one.

Output (``--out``, npz): per fill ``exch_ts`` (ns, exchange time of the fill), ``local_ts``
(ns, exch_ts + response latency: when the local side learns of it), ``side`` (+1 buy, -1 sell),
``price_tick`` (int64, ticks of ``--tick-size``), ``qty_lots`` (int64), ``maker`` (bool), ``order_id``;
and a JSON line on stdout with the final position (lots), balance, fee, equity at the last mid,
rows, wall time of the strategy run (best of ``--repeat``) and events/s.
"""

from __future__ import annotations

import argparse
import json
import sys
import time

import numpy as np
from hftbacktest import (
    GTX,
    LIMIT,
    BacktestAsset,
    HashMapMarketDepthBacktest,
)
from hftbacktest.data.utils import binancefutures
from hftbacktest.order import CANCELED, EXPIRED, FILLED, NEW, NONE
from hftbacktest.types import EXCH_EVENT, LOCAL_EVENT
from numba import njit

INVALID_MIN = -(2**63)
INVALID_MAX = 2**63 - 1
FILL_CAPACITY = 1 << 20


@njit
def _record_fills(hbt, lot, f_exch, f_side, f_px, f_qty, f_maker, f_id, n):
    values = hbt.orders(0).values()
    while values.has_next():
        o = values.get()
        if o.status == FILLED:
            f_exch[n] = o.exch_timestamp
            f_side[n] = o.side
            f_px[n] = o.exec_price_tick
            f_qty[n] = round(o.exec_qty / lot)
            f_maker[n] = o.arr[0].maker  # the Order wrapper has no maker property
            f_id[n] = o.order_id
            n += 1
    hbt.clear_inactive_orders(0)
    return n


@njit
def _quote_side(hbt, tick, lot, side, cur_id, touch, enabled, next_id):
    # Returns (current order id after this step, next free id); 0 means no current order.
    orders = hbt.orders(0)
    if cur_id != 0:
        o = orders.get(cur_id)
        if o is None:
            cur_id = 0  # filled / canceled / expired, and cleared
        elif o.status == FILLED or o.status == CANCELED or o.status == EXPIRED:
            cur_id = 0
        elif o.status == NEW and o.req == NONE:
            if (not enabled) or o.price_tick != touch:
                hbt.cancel(0, cur_id, False)
                cur_id = 0
    if cur_id == 0 and enabled:
        cur_id = next_id
        next_id += 1
        if side > 0:
            hbt.submit_buy_order(0, cur_id, touch * tick, lot, GTX, LIMIT, False)
        else:
            hbt.submit_sell_order(0, cur_id, touch * tick, lot, GTX, LIMIT, False)
    return cur_id, next_id


@njit
def _run(
    hbt, tick, lot, first_ns, step_ns, quote_from, quote_until, max_pos, f_exch, f_side, f_px, f_qty, f_maker, f_id
):
    n = 0
    buy_id = 0
    sell_id = 0
    next_id = 1
    steps = 0
    rc = hbt.elapse(first_ns)
    while rc == 0:
        steps += 1
        t = hbt.current_timestamp
        n = _record_fills(hbt, lot, f_exch, f_side, f_px, f_qty, f_maker, f_id, n)
        if quote_from <= t <= quote_until:
            depth = hbt.depth(0)
            bid = depth.best_bid_tick
            ask = depth.best_ask_tick
            if bid != INVALID_MIN and ask != INVALID_MAX and bid < ask:
                pos = round(hbt.position(0) / lot)
                buy_id, next_id = _quote_side(hbt, tick, lot, 1, buy_id, bid, pos < max_pos, next_id)
                sell_id, next_id = _quote_side(hbt, tick, lot, -1, sell_id, ask, pos > -max_pos, next_id)
        rc = hbt.elapse(step_ns)
    n = _record_fills(hbt, lot, f_exch, f_side, f_px, f_qty, f_maker, f_id, n)
    return n, steps


def convert(paths: list[str]) -> tuple[np.ndarray, int]:
    """Convert ``paths`` (one recording, earliest first) with hftbacktest's converter, on one local clock.

    The converter shifts each file's local stamps by that file's own smallest feed latency; passing
    ``base_latency`` = (file's min - overall min) makes every file take the overall shift, so a
    recording split over files keeps one clock. Returns the events and that shift (ns).
    """
    mins = [_raw_min_latency(p) for p in paths]
    offset = max(0, -min(mins))
    parts = []
    for path, low in zip(paths, mins, strict=True):
        if low >= 0 and offset > 0:
            raise SystemExit(f"{path}: its local stamps never lead the exchange's, the converter would not shift it")
        parts.append(binancefutures.convert(path, combined_stream=True, base_latency=low + offset))
    return (np.concatenate(parts) if len(parts) > 1 else parts[0]), offset


def _raw_min_latency(path: str) -> int:
    # The converter prints but does not return the offset it applied; recompute it the same way.
    import gzip

    best = sys.maxsize
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as fh:
        for line in fh:
            local = int(line[:19])
            msg = json.loads(line[20:])
            data = msg.get("data", msg)
            if "T" in data and (data.get("e") in ("trade", "depthUpdate") or "bids" in data):
                if data.get("e") == "trade" and data.get("X") != "MARKET":
                    continue
                best = min(best, local - int(data["T"]) * 1_000_000)
    return best


QUEUE_MODELS = ("risk_averse", "prob_power", "prob_log", "prob_power2", "prob_log2", "prob_power3")


def with_queue_model(asset: BacktestAsset, name: str, param: float) -> BacktestAsset:
    """Set hftbacktest's queue model named as scalper's ``exec/queue.py`` ``QUEUE_MODEL_NAMES`` does."""
    if name == "risk_averse":
        return asset.risk_adverse_queue_model()
    if name == "prob_power":
        return asset.power_prob_queue_model(param)
    if name == "prob_log":
        return asset.log_prob_queue_model()
    if name == "prob_power2":
        return asset.power_prob_queue_model2(param)
    if name == "prob_log2":
        return asset.log_prob_queue_model2()
    if name == "prob_power3":
        return asset.power_prob_queue_model3(param)
    raise SystemExit(f"queue model {name!r} is not one of {QUEUE_MODELS}")


def first_step(data: np.ndarray, step_ns: int) -> tuple[int, int]:
    """Return (the backtest's first timestamp, the duration of the first elapse to reach the grid)."""
    ev = data["ev"]
    ex = (ev & EXCH_EVENT) != 0
    lo = (ev & LOCAL_EVENT) != 0
    t0 = int(min(data["exch_ts"][ex].min(), data["local_ts"][lo].min()))
    grid = -(-t0 // step_ns) * step_ns
    return t0, grid - t0


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("files", nargs="+")
    p.add_argument("--out", required=True)
    p.add_argument("--tick-size", type=float, default=0.01, help="quote currency (ETHUSDT's)")
    p.add_argument("--lot-size", type=float, default=0.001, help="base units (ETHUSDT's)")
    p.add_argument("--step-ns", type=int, default=100_000_000)
    p.add_argument("--entry-ns", type=int, default=1_500_000)
    p.add_argument("--response-ns", type=int, default=1_500_000)
    p.add_argument("--max-position", type=int, default=5, help="lots")
    p.add_argument("--maker-fee", type=float, default=-0.00005, help="fraction of traded value")
    p.add_argument("--taker-fee", type=float, default=0.0004, help="fraction of traded value")
    p.add_argument("--quote-from-ns", type=int, default=0)
    p.add_argument("--quote-until-ns", type=int, default=2**62)
    p.add_argument("--queue", choices=QUEUE_MODELS, default="risk_averse")
    p.add_argument("--queue-param", type=float, default=0.0, help="the power models' exponent")
    p.add_argument("--repeat", type=int, default=3)
    a = p.parse_args(argv)

    data, offset = convert(a.files)
    t0, first = first_step(data, a.step_ns)
    best = float("inf")
    for _ in range(max(a.repeat, 1)):
        asset = (
            BacktestAsset()
            .data([data])
            .linear_asset(1.0)
            .constant_order_latency(a.entry_ns, a.response_ns)
            .no_partial_fill_exchange()
            .trading_value_fee_model(a.maker_fee, a.taker_fee)
            .tick_size(a.tick_size)
            .lot_size(a.lot_size)
        )
        asset = with_queue_model(asset, a.queue, a.queue_param)
        hbt = HashMapMarketDepthBacktest([asset])
        f_exch = np.zeros(FILL_CAPACITY, np.int64)
        f_side = np.zeros(FILL_CAPACITY, np.int64)
        f_px = np.zeros(FILL_CAPACITY, np.int64)
        f_qty = np.zeros(FILL_CAPACITY, np.int64)
        f_maker = np.zeros(FILL_CAPACITY, np.bool_)
        f_id = np.zeros(FILL_CAPACITY, np.int64)
        t_start = time.perf_counter()
        n, steps = _run(
            hbt,
            a.tick_size,
            a.lot_size,
            first,
            a.step_ns,
            a.quote_from_ns,
            a.quote_until_ns,
            a.max_position,
            f_exch,
            f_side,
            f_px,
            f_qty,
            f_maker,
            f_id,
        )
        best = min(best, time.perf_counter() - t_start)
        sv = hbt.state_values(0)
        depth = hbt.depth(0)
        mid = (depth.best_bid + depth.best_ask) / 2.0
        final = {
            "position_lots": int(round(sv.position / a.lot_size)),
            "balance": float(sv.balance),
            "fee": float(sv.fee),
            "num_trades": int(sv.num_trades),
            "last_mid": float(mid),
            "equity": float(sv.balance + sv.position * mid - sv.fee),
        }
        hbt.close()
    order = np.lexsort((f_id[:n], f_exch[:n]))
    np.savez(
        a.out,
        exch_ts=f_exch[:n][order],
        local_ts=f_exch[:n][order] + a.response_ns,
        side=f_side[:n][order],
        price_tick=f_px[:n][order],
        qty_lots=f_qty[:n][order],
        maker=f_maker[:n][order],
        order_id=f_id[:n][order],
    )
    report = {
        "rows": len(data),
        "fills": int(n),
        "steps": int(steps),
        "t0_ns": t0,
        "local_offset_ns": int(offset),
        "wall_s": best,
        "events_per_s": len(data) / best,
        **final,
    }
    print(json.dumps(report))


if __name__ == "__main__":
    main()
