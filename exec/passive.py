"""Passive simulated exchange: resting limit orders with L2 queue position, as numba state and kernels.

The exchange replays a tick file's events (schema v1, prices in ticks) in exchange time and matches
our orders against that replayed book. Its rules follow hftbacktest 2.4.4 (tag ``py-v2.4.4``):
``hftbacktest/src/backtest/proc/partialfillexchange.rs`` (matching, partial fills, cancel and modify),
``models/queue.rs`` through :mod:`scalper.exec.queue` (queue position), ``backtest/order.rs`` and
``evs.rs`` (latencies and event order); every difference is listed below.

Public API (all a strategy runner needs)
---------------------------------------
* :func:`new_exchange` builds a :class:`PassiveExchange` (all arrays preallocated; capacities fixed).
* Local side, at local time ``ts_local`` (ns): :func:`submit` (returns the order id, or a negative
  ``ERR_*`` code), :func:`cancel`, :func:`modify` (return 0 or an ``ERR_*`` code).
* Exchange side: :func:`on_event` applies one tick-file event (``ts_event`` ns, ``kind``, ``side``,
  ``price_tick``, ``size`` base units) after the requests that reached the exchange before it;
  :func:`run_events` loops it over ``[start, stop)`` of the columns; :func:`flush_requests` processes
  the requests that arrive up to a time (end of data). On market-by-order data (schema v2),
  :func:`run_events_l3` / :func:`on_event_l3` replace the queue model by the exact queue (below).
* Local side again: :func:`next_response` returns the row of ``ex.ri`` of the next response whose
  local time is ``<= ts_local`` (or -1); fills are rows ``0 .. ex.ip[I_N_FILLS]`` of ``ex.fi`` / ``ex.ff``
  (:func:`fills_table` copies them out). An order's exchange-side state is row ``order_id % capacity``
  of ``ex.oi`` / ``ex.of``.
* :func:`raise_for` turns an ``ERR_*`` code into the exception it stands for.

Units: prices in ticks (int64), order and fill quantities in lots (int64), queue quantities in lots
(float64, book sizes divided by the lot size), times in ns (int64), fees in quote currency (float64,
rates in bps of notional; a negative maker rate is a rebate). Sides: +1 buy, -1 sell (the schema's).

Order states are :class:`scalper.exec.orders.OrderStatus` values (``ST_NEW`` .. ``ST_EXPIRED``);
``ST_EXPIRED`` is a post-only order refused because it would cross (hftbacktest and Binance both
report it as expired). An IOC remainder is ``ST_CANCELED`` as
orders.py says. ``ST_REJECTED`` is never produced: a malformed order is refused at :func:`submit`.

Time and latency
----------------
* Entry and response latency are each a :mod:`scalper.exec.latency` model chosen at
  :func:`new_exchange`: a constant, or a recorded distribution (ns) sampled once per request (entry)
  and once per response (response) by a seeded generator kept in the exchange's state.
* A request sent at local time ``t`` reaches the exchange at ``t`` plus its entry latency, never
  before an earlier request: arrivals are FIFO (a draw that would overtake is lifted to the last
  arrival, as hftbacktest's order bus does).
* A request arriving at the same nanosecond as a market event is processed after the event
  (hftbacktest ``EventSet::next`` takes exchange data before exchange orders on a tie).
* Every response is seen locally at its exchange time plus its response latency, FIFO the same
  way; the fills a response reports carry its local time.

Matching (per event)
--------------------
* Book update at price ``P`` on our order's side: the queue model updates the order's ``front``
  (lots ahead); our orders at one price are updated earliest first and kept in time priority
  (:func:`scalper.exec.queue.queue_behind`). Then, if the update raised the best bid (lowered the best
  ask), every sell (buy) order of ours at or through the new best fills completely as maker at its own
  price (hftbacktest ``on_best_bid_update`` / ``on_best_ask_update``).
* Trade with a buy (sell) aggressor at ``P``: our sells (buys) priced better than ``P`` fill completely
  as maker at their own price; at ``P`` the trade advances the queue and ``round(-front)`` lots fill
  (hftbacktest ``check_if_sell_filled``, partial-fill exchange). Trades without a known aggressor
  (side 0) are skipped.
* Clear: the book is emptied; orders keep their queue position (hftbacktest ``clear_depth``).
* New order on arrival: post-only (``TIF_GTX``) that would cross (buy at or above the best ask) is
  expired; a plain limit (``TIF_GTC``) that crosses takes the book's levels from the best up to its
  price as taker and rests the rest at the back of its price; ``TIF_IOC`` takes the same and cancels
  the rest. A non-crossing order rests with ``front`` = the book's size at its price.
* Cancel: a live order is canceled; otherwise the request is rejected (the order already filled or
  was canceled) and the response says so (``R_REJECTED`` = 1).
* Modify (cancel-replace; the new quantity is the new open quantity in both paths): a new price or
  a larger quantity cancels and re-enters the order (new queue position, may cross, expire or take);
  a smaller or equal quantity at the same price keeps the queue position (hftbacktest
  ``ack_modify::<false>``). The order id stays.
* Fees at each fill: ``notional * rate / 1e4`` with the maker or the taker rate.
* Market impact: a taker fill consumes the lots it took at that level; later taker orders of ours see
  the level's size minus what was consumed until the replayed book updates that level (or a clear).

Exact queue (L3 mode)
---------------------
:func:`run_events_l3` takes the file's order ids and :func:`scalper.exec.l3queue.order_arrivals`: an
order of ours joins behind every order resting at its price when it arrives, cancels and executions of
orders ahead count exactly, and an execution at its price of an order that arrived after it (or of any
order once nothing is ahead) fills it by the execution's size (:mod:`scalper.exec.l3queue` states the
rules). A trade through its price fills it by the trade's size. The mode is the kernel the caller
runs, chosen once; :func:`run_events` compiles without the L3 branches.

Differences from hftbacktest 2.4.4's partial-fill exchange
----------------------------------------------------------
* A crossing ``TIF_GTC`` order takes only what the book shows up to its price and rests the rest
  (the issue's rule); hftbacktest fills the remainder at the order's price as taker.
* Taker fills see market impact (above); hftbacktest takes the full shown size every time.
* Several orders of ours at one price: a trade's size is shared (the fills it causes never exceed it)
  and later orders stay behind earlier ones; hftbacktest lets each order see the whole trade.
* The book is :mod:`scalper.features.ladder`'s deep book (crossed levels kept as sent; a taker order
  walks at most its ``top_levels`` best levels); hftbacktest's depth hides opposite levels a new best
  crosses.
* Order ids are assigned here (consecutive from 0); hftbacktest takes them from the strategy.
* A modify that re-enters the order: the new quantity is the open quantity, and a partly filled order
  stays ``ST_PARTIALLY_FILLED``; hftbacktest keeps the old open quantity (``proc/local.rs`` ``modify``
  sets only ``qty``, and ``ack_new`` rests ``leaves_qty``) and reports the order as new.
* A fill at the level exactly equal to the open quantity removes the order; hftbacktest's partial-fill
  exchange marks it filled but leaves it in its price map (``filled_qty > order.leaves_qty``), where a
  later fill attempt on it is an error.
* An IOC that crosses nothing is ``ST_CANCELED`` (orders.py); hftbacktest reports it expired.

``tests/unit/test_passive_peer_rules.py`` replays hand-made scenarios in both (queue and partial fill,
the event-before-arrival tie, modify, post-only expiry, best price through, trade through, IOC, cancel,
the power and log models) and requires the same order states at every poll.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np

from scalper.exec.l3queue import l3_on_depth, l3_trade_lots
from scalper.exec.latency import draw_latency, latency_model, new_rng_state
from scalper.exec.orders import OrderStatus
from scalper.exec.queue import (
    check_queue_model,
    queue_ahead,
    queue_behind,
    queue_on_depth,
    queue_on_trade,
    queue_take_fill,
)
from scalper.features.ladder import (
    DEFAULT_LADDER_TICKS,
    DEFAULT_TOP_LEVELS,
    deep_book_clear,
    deep_book_set,
    new_deep_book,
)
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE
from scalper.lowlevel.jit import inline_kernel, kernel

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

BUY = 1
SELL = -1

TIF_GTC = 0
TIF_GTX = 1
TIF_IOC = 2

ST_NEW = int(OrderStatus.NEW)
ST_ACCEPTED = int(OrderStatus.ACCEPTED)
ST_PARTIALLY_FILLED = int(OrderStatus.PARTIALLY_FILLED)
ST_FILLED = int(OrderStatus.FILLED)
ST_CANCELED = int(OrderStatus.CANCELED)
ST_REJECTED = int(OrderStatus.REJECTED)
ST_EXPIRED = int(OrderStatus.EXPIRED)

REQ_NONE = 0  # a response caused by the market (a maker fill), not by a request
REQ_NEW = 1
REQ_CANCEL = 2
REQ_MODIFY = 3

OK = 0
ERR_ORDERS_FULL = -1
ERR_REQUESTS_FULL = -2
ERR_FILLS_FULL = -3
ERR_RESPONSES_FULL = -4
ERR_IMPACT_FULL = -5
ERR_BAD_ORDER = -6
ERR_UNKNOWN_ORDER = -7

# ip: integer state and parameters.
I_PENDING_LOCAL = 0  # local time of the response being built (its fills carry it); INT64_MIN: none
I_QMODEL = 1
I_NEXT_ID = 2
I_N_LIVE = 3
I_RQ_HEAD = 4
I_RQ_COUNT = 5
I_LAST_ARRIVAL = 6
I_N_FILLS = 7
I_N_RESP = 8
I_RESP_READ = 9
I_LAST_RESP_LOCAL = 10
I_ERROR = 11
I_SEQ = 12  # L3 mode: index of the event being applied (an order resting from here on is behind earlier arrivals)
N_IP = 13
# fp: float parameters.
F_QPARAM = 0
F_MAKER_BPS = 1
F_TAKER_BPS = 2
F_LOT = 3
F_TICK = 4
N_FP = 5
# oi: one row per order slot (int64).
O_ID = 0
O_SIDE = 1
O_PRICE = 2
O_QTY = 3
O_LEAVES = 4
O_FILLED = 5
O_STATUS = 6
O_TIF = 7
O_TS_SUBMIT = 8
O_TS_ACCEPT = 9
O_SEQ = 10  # L3 mode: I_SEQ when the order joined its level
N_OI = 11
# of: one row per order slot (float64, lots).
OF_FRONT = 0
OF_CUM = 1
OF_FRONT_POST = 2
N_OF = 3
# rq: pending requests, a FIFO ring (int64).
RQ_KIND = 0
RQ_ID = 1
RQ_ARRIVAL = 2
RQ_PRICE = 3
RQ_QTY = 4
N_RQ = 5
# fi / ff: fills (int64 / float64).
FI_TS_EXCH = 0
FI_TS_LOCAL = 1
FI_ID = 2
FI_SIDE = 3
FI_PRICE = 4
FI_QTY = 5
FI_MAKER = 6
FI_TS_POST = 7
N_FI = 8
FF_Q_POST = 0
FF_Q_FILL = 1
FF_FEE = 2
N_FF = 3
# ri: responses, a ring the local side reads with next_response (int64).
R_TS_EXCH = 0
R_TS_LOCAL = 1
R_ID = 2
R_REQ = 3
R_STATUS = 4
R_REJECTED = 5
R_FILLED = 6
R_LEAVES = 7
R_PRICE = 8
N_RI = 9


class PassiveExchange(NamedTuple):
    """State of one simulated exchange (one instrument); every array is preallocated.

    Attributes
    ----------
    ip, fp : int64[N_IP], float64[N_FP]
        Counters and parameters (slots ``I_*`` / ``F_*``).
    px, sz, n, lpx, lsz, ln : int64[2, K], float64[2, K], int64[2], int64[2, W], float64[2, W], int64[2]
        The replayed book (:mod:`scalper.features.ladder`'s deep book: the best ``K`` levels sorted as in
        :mod:`scalper.lowlevel.book`, deeper ones in a tick ladder; sizes in base units).
    oi, of : int64[C, N_OI], float64[C, N_OF]
        Orders by slot ``order_id % C`` (columns ``O_*`` / ``OF_*``).
    live : int64[C]
        Slots of the resting orders, earliest accepted first; ``ip[I_N_LIVE]`` of them.
    rq : int64[R, N_RQ]
        Requests on their way to the exchange (ring).
    fi, ff : int64[F, N_FI], float64[F, N_FF]
        Fills in exchange-time order.
    ri : int64[P, N_RI]
        Responses not yet read locally (ring).
    imp_px, imp_q, imp_n : int64[2, K], float64[2, K], int64[2]
        Lots our taker fills consumed per level and book row, until the level updates.
    lat_entry, lat_resp : int64[M], int64[M']
        Entry and response latency models, ns (:func:`scalper.exec.latency.latency_model`).
    rng : uint64[1]
        The latency generator's state (:func:`scalper.exec.latency.new_rng_state`).
    """

    ip: np.ndarray
    fp: np.ndarray
    px: np.ndarray
    sz: np.ndarray
    n: np.ndarray
    lpx: np.ndarray
    lsz: np.ndarray
    ln: np.ndarray
    oi: np.ndarray
    of: np.ndarray
    live: np.ndarray
    rq: np.ndarray
    fi: np.ndarray
    ff: np.ndarray
    ri: np.ndarray
    imp_px: np.ndarray
    imp_q: np.ndarray
    imp_n: np.ndarray
    lat_entry: np.ndarray
    lat_resp: np.ndarray
    rng: np.ndarray


def new_exchange(
    *,
    tick_size: float,
    lot_size: float,
    entry_latency_ns: int | np.ndarray,
    response_latency_ns: int | np.ndarray,
    queue_model: int,
    queue_param: float = 0.0,
    maker_fee_bps: float = 0.0,
    taker_fee_bps: float = 0.0,
    order_capacity: int = 64,
    request_capacity: int = 256,
    fill_capacity: int = 1 << 16,
    response_capacity: int = 4096,
    impact_capacity: int = 64,
    top_levels: int = DEFAULT_TOP_LEVELS,
    ladder_ticks: int = DEFAULT_LADDER_TICKS,
    latency_seed: int = 0,
) -> PassiveExchange:
    """Return an empty exchange.

    Parameters
    ----------
    tick_size, lot_size : float
        Quote currency per tick and base units per lot (> 0); used for fees and size conversion.
    entry_latency_ns, response_latency_ns : int or int64[M]
        Local-to-exchange and exchange-to-local latency, ns (>= 0): a constant, or a recorded
        distribution sampled per request / per response (:mod:`scalper.exec.latency`).
    queue_model, queue_param : int, float
        A :mod:`scalper.exec.queue` model id and its parameter.
    maker_fee_bps, taker_fee_bps : float
        Fee rates, bps of notional; maker may be negative (rebate), taker must be >= 0.
    order_capacity : int
        Order slots; an order id reuses slot ``id % order_capacity`` once the order there is final.
    request_capacity, fill_capacity, response_capacity, impact_capacity : int
        Sizes of the request ring, the fill record, the unread-response ring and the impact table per side.
    top_levels, ladder_ticks : int
        The deep book's sorted levels per side (what a taker order can walk) and ladder width
        (:func:`scalper.features.ladder.new_deep_book`).
    latency_seed : int
        Seed of the generator that samples the latency distributions (unused by constants).

    Raises
    ------
    ValueError
        Naming the parameter and its value, for a non-positive size, a negative latency or taker fee,
        a non-finite number, an empty or non-integral latency distribution, a bad queue model
        (:func:`scalper.exec.queue.check_queue_model`) or book
        shape (:func:`scalper.features.ladder.new_deep_book`).
    """
    for name, value in (("tick_size", tick_size), ("lot_size", lot_size)):
        if not (math.isfinite(value) and value > 0.0):
            raise ValueError(f"{name} must be a finite number > 0; got {value!r}")
    lat_entry = latency_model("entry_latency_ns", entry_latency_ns)
    lat_resp = latency_model("response_latency_ns", response_latency_ns)
    if not math.isfinite(maker_fee_bps):
        raise ValueError(f"maker_fee_bps must be finite; got {maker_fee_bps!r}")
    if not (math.isfinite(taker_fee_bps) and taker_fee_bps >= 0.0):
        raise ValueError(f"taker_fee_bps must be a finite number >= 0; got {taker_fee_bps!r}")
    caps = {
        "order_capacity": order_capacity,
        "request_capacity": request_capacity,
        "fill_capacity": fill_capacity,
        "response_capacity": response_capacity,
        "impact_capacity": impact_capacity,
    }
    for name, cap in caps.items():
        if cap < 1:
            raise ValueError(f"{name} must be >= 1; got {cap!r}")
    check_queue_model(queue_model, queue_param)
    ip = np.zeros(N_IP, dtype=np.int64)
    ip[I_PENDING_LOCAL] = INT64_MIN
    ip[I_QMODEL] = queue_model
    ip[I_LAST_ARRIVAL] = INT64_MIN
    ip[I_LAST_RESP_LOCAL] = INT64_MIN
    fp = np.zeros(N_FP, dtype=np.float64)
    fp[F_QPARAM] = queue_param
    fp[F_MAKER_BPS] = maker_fee_bps
    fp[F_TAKER_BPS] = taker_fee_bps
    fp[F_LOT] = lot_size
    fp[F_TICK] = tick_size
    px, sz, n, lpx, lsz, ln = new_deep_book(top_levels, ladder_ticks)
    oi = np.zeros((order_capacity, N_OI), dtype=np.int64)
    oi[:, O_ID] = -1
    return PassiveExchange(
        ip=ip,
        fp=fp,
        px=px,
        sz=sz,
        n=n,
        lpx=lpx,
        lsz=lsz,
        ln=ln,
        oi=oi,
        of=np.zeros((order_capacity, N_OF), dtype=np.float64),
        live=np.zeros(order_capacity, dtype=np.int64),
        rq=np.zeros((request_capacity, N_RQ), dtype=np.int64),
        fi=np.zeros((fill_capacity, N_FI), dtype=np.int64),
        ff=np.zeros((fill_capacity, N_FF), dtype=np.float64),
        ri=np.zeros((response_capacity, N_RI), dtype=np.int64),
        imp_px=np.zeros((2, impact_capacity), dtype=np.int64),
        imp_q=np.zeros((2, impact_capacity), dtype=np.float64),
        imp_n=np.zeros(2, dtype=np.int64),
        lat_entry=lat_entry,
        lat_resp=lat_resp,
        rng=new_rng_state(latency_seed),
    )


_ERRORS = {
    ERR_ORDERS_FULL: (OverflowError, "order slots full: the slot for the next id still holds a live order"),
    ERR_REQUESTS_FULL: (OverflowError, "request ring full: too many requests in flight"),
    ERR_FILLS_FULL: (OverflowError, "fill record full: raise fill_capacity"),
    ERR_RESPONSES_FULL: (OverflowError, "response ring full: read responses with next_response"),
    ERR_IMPACT_FULL: (OverflowError, "impact table full: too many levels consumed by taker fills"),
    ERR_BAD_ORDER: (ValueError, "bad order: side must be +1/-1, qty >= 1 lot, tif GTC/GTX/IOC"),
    ERR_UNKNOWN_ORDER: (ValueError, "unknown order id"),
}


def raise_for(code: int) -> None:
    """Raise the exception an ``ERR_*`` code stands for (``OverflowError`` for capacities, ``ValueError``
    for bad requests); return for ``OK`` or a non-negative order id.

    Raises
    ------
    ValueError
        Also for a code that is not an ``ERR_*`` value.
    """
    if code >= 0:
        return
    if code not in _ERRORS:
        raise ValueError(f"unknown passive-exchange code {code!r}")
    exc, what = _ERRORS[code]
    raise exc(f"passive exchange: {what} (code {code})")


def fills_table(ex: PassiveExchange) -> dict[str, np.ndarray]:
    """Copy the fills out as named columns (not for the hot path: allocates).

    Keys: ``ts_exch``, ``ts_local`` (ns), ``ts_post`` (ns, exchange time the order last entered the
    book: its arrival, or the arrival of the modify that re-entered it), ``order_id``, ``side``
    (+1/-1), ``price_tick``, ``qty`` (lots), ``maker`` (bool), ``queue_at_post``, ``queue_at_fill``
    (lots ahead when the order was posted and just before the event that filled it), ``fee`` (quote
    currency; negative is a rebate).
    """
    k = int(ex.ip[I_N_FILLS])
    fi, ff = ex.fi[:k], ex.ff[:k]
    return {
        "ts_exch": fi[:, FI_TS_EXCH].copy(),
        "ts_local": fi[:, FI_TS_LOCAL].copy(),
        "ts_post": fi[:, FI_TS_POST].copy(),
        "order_id": fi[:, FI_ID].copy(),
        "side": fi[:, FI_SIDE].copy(),
        "price_tick": fi[:, FI_PRICE].copy(),
        "qty": fi[:, FI_QTY].copy(),
        "maker": fi[:, FI_MAKER].astype(bool),
        "queue_at_post": ff[:, FF_Q_POST].copy(),
        "queue_at_fill": ff[:, FF_Q_FILL].copy(),
        "fee": ff[:, FF_FEE].copy(),
    }


# ----------------------------------------------------------------------------- helpers


@inline_kernel
def _fail(ex, code):
    if ex.ip[I_ERROR] == OK:
        ex.ip[I_ERROR] = code
    return code


@inline_kernel
def _best(px, n, row):
    if n[row] > 0:
        return px[row, 0]
    return INT64_MIN if row == 0 else INT64_MAX


@inline_kernel
def _level_size(ex, row, tick):
    # Binary search in the sorted top (best first), else the ladder slot; 0 when the level is absent.
    lo = 0
    hi = ex.n[row]
    while lo < hi:
        mid = (lo + hi) >> 1
        p = ex.px[row, mid]
        if (p > tick) if row == 0 else (p < tick):
            lo = mid + 1
        else:
            hi = mid
    if lo < ex.n[row] and ex.px[row, lo] == tick:
        return ex.sz[row, lo]
    k = tick & (ex.lpx.shape[1] - 1)
    if ex.lpx[row, k] == tick:
        return ex.lsz[row, k]
    return 0.0


@inline_kernel
def _impact_find(ex, row, tick):
    for k in range(ex.imp_n[row]):
        if ex.imp_px[row, k] == tick:
            return k
    return -1


@inline_kernel
def _impact_drop(ex, row, tick):
    k = _impact_find(ex, row, tick)
    if k >= 0:
        last = ex.imp_n[row] - 1
        ex.imp_px[row, k] = ex.imp_px[row, last]
        ex.imp_q[row, k] = ex.imp_q[row, last]
        ex.imp_n[row] = last


@inline_kernel
def _resting_status(filled):
    return ST_PARTIALLY_FILLED if filled > 0 else ST_ACCEPTED


@inline_kernel
def _response_local(ex, ts):
    # Local arrival of the response now being built at exchange time ts: drawn once (its fills and
    # the response share it), never before an earlier response (FIFO).
    local = ex.ip[I_PENDING_LOCAL]
    if local == INT64_MIN:
        local = max(ts + draw_latency(ex.lat_resp, ex.rng), ex.ip[I_LAST_RESP_LOCAL])
        ex.ip[I_LAST_RESP_LOCAL] = local
        ex.ip[I_PENDING_LOCAL] = local
    return local


@inline_kernel
def _respond(ex, ts, slot, req, rejected):
    cap = ex.ri.shape[0]
    if ex.ip[I_N_RESP] - ex.ip[I_RESP_READ] >= cap:
        return _fail(ex, ERR_RESPONSES_FULL)
    r = ex.ip[I_N_RESP] % cap
    local = _response_local(ex, ts)
    ex.ip[I_PENDING_LOCAL] = INT64_MIN
    ex.ri[r, R_TS_EXCH] = ts
    ex.ri[r, R_TS_LOCAL] = local
    ex.ri[r, R_ID] = ex.oi[slot, O_ID]
    ex.ri[r, R_REQ] = req
    ex.ri[r, R_STATUS] = ex.oi[slot, O_STATUS]
    ex.ri[r, R_REJECTED] = rejected
    ex.ri[r, R_FILLED] = ex.oi[slot, O_FILLED]
    ex.ri[r, R_LEAVES] = ex.oi[slot, O_LEAVES]
    ex.ri[r, R_PRICE] = ex.oi[slot, O_PRICE]
    ex.ip[I_N_RESP] += 1
    return OK


@inline_kernel
def _fill(ex, ts, slot, price, lots, maker, q_fill):
    k = ex.ip[I_N_FILLS]
    if k >= ex.fi.shape[0]:
        return _fail(ex, ERR_FILLS_FULL)
    ex.oi[slot, O_LEAVES] -= lots
    ex.oi[slot, O_FILLED] += lots
    ex.oi[slot, O_STATUS] = ST_FILLED if ex.oi[slot, O_LEAVES] == 0 else ST_PARTIALLY_FILLED
    rate = ex.fp[F_MAKER_BPS] if maker else ex.fp[F_TAKER_BPS]
    ex.fi[k, FI_TS_EXCH] = ts
    ex.fi[k, FI_TS_LOCAL] = _response_local(ex, ts)
    ex.fi[k, FI_ID] = ex.oi[slot, O_ID]
    ex.fi[k, FI_SIDE] = ex.oi[slot, O_SIDE]
    ex.fi[k, FI_PRICE] = price
    ex.fi[k, FI_QTY] = lots
    ex.fi[k, FI_MAKER] = 1 if maker else 0
    ex.fi[k, FI_TS_POST] = ex.oi[slot, O_TS_ACCEPT]
    ex.ff[k, FF_Q_POST] = ex.of[slot, OF_FRONT_POST]
    ex.ff[k, FF_Q_FILL] = q_fill
    ex.ff[k, FF_FEE] = price * ex.fp[F_TICK] * lots * ex.fp[F_LOT] * rate / 1e4
    ex.ip[I_N_FILLS] = k + 1
    return OK


@inline_kernel
def _live_remove(ex, i):
    m = ex.ip[I_N_LIVE] - 1
    for j in range(i, m):
        ex.live[j] = ex.live[j + 1]
    ex.ip[I_N_LIVE] = m


@inline_kernel
def _live_index(ex, slot):
    for i in range(ex.ip[I_N_LIVE]):
        if ex.live[i] == slot:
            return i
    return -1


@inline_kernel
def _rest(ex, slot):
    # Join the back of the level: behind the book's size there and behind our earlier orders at it.
    side = ex.oi[slot, O_SIDE]
    price = ex.oi[slot, O_PRICE]
    row = 0 if side > 0 else 1
    front = _level_size(ex, row, price) / ex.fp[F_LOT]
    for i in range(ex.ip[I_N_LIVE]):
        s = ex.live[i]
        if ex.oi[s, O_SIDE] == side and ex.oi[s, O_PRICE] == price:
            front = queue_behind(front, ex.of[s, OF_FRONT])
    ex.of[slot, OF_FRONT] = front
    ex.of[slot, OF_CUM] = 0.0
    ex.of[slot, OF_FRONT_POST] = front
    ex.oi[slot, O_SEQ] = ex.ip[I_SEQ]
    ex.live[ex.ip[I_N_LIVE]] = slot
    ex.ip[I_N_LIVE] += 1


@inline_kernel
def _take(ex, ts, slot):
    # Walk the opposite side best-first up to the order's price, net of what we already consumed.
    side = ex.oi[slot, O_SIDE]
    price = ex.oi[slot, O_PRICE]
    opp = 1 if side > 0 else 0
    lot = ex.fp[F_LOT]
    for i in range(ex.n[opp]):
        if ex.oi[slot, O_LEAVES] == 0:
            break
        level = ex.px[opp, i]
        if (level > price) if side > 0 else (level < price):
            break
        k = _impact_find(ex, opp, level)
        used = ex.imp_q[opp, k] if k >= 0 else 0.0
        avail = int(math.floor(ex.sz[opp, i] / lot - used + 1e-9))
        lots = min(avail, ex.oi[slot, O_LEAVES])
        if lots <= 0:
            continue
        if k < 0:
            if ex.imp_n[opp] >= ex.imp_px.shape[1]:
                return _fail(ex, ERR_IMPACT_FULL)
            k = ex.imp_n[opp]
            ex.imp_px[opp, k] = level
            ex.imp_q[opp, k] = 0.0
            ex.imp_n[opp] = k + 1
        ex.imp_q[opp, k] += lots
        code = _fill(ex, ts, slot, level, lots, False, 0.0)
        if code != OK:
            return code
    return OK


@inline_kernel
def _enter(ex, ts, slot):
    # An order (new, or re-entered by a modify) reaches the matching engine.
    side = ex.oi[slot, O_SIDE]
    price = ex.oi[slot, O_PRICE]
    tif = ex.oi[slot, O_TIF]
    ex.oi[slot, O_TS_ACCEPT] = ts
    ex.of[slot, OF_FRONT_POST] = 0.0
    if side > 0:
        crosses = price >= _best(ex.px, ex.n, 1)
    else:
        crosses = price <= _best(ex.px, ex.n, 0)
    if crosses and tif == TIF_GTX:
        ex.oi[slot, O_STATUS] = ST_EXPIRED
        return OK
    if crosses:
        code = _take(ex, ts, slot)
        if code != OK:
            return code
        if ex.oi[slot, O_LEAVES] == 0:
            return OK
    if tif == TIF_IOC:
        ex.oi[slot, O_STATUS] = ST_CANCELED
        return OK
    ex.oi[slot, O_STATUS] = _resting_status(ex.oi[slot, O_FILLED])
    _rest(ex, slot)
    return OK


@inline_kernel
def _is_live(ex, slot, order_id):
    st = ex.oi[slot, O_STATUS]
    return ex.oi[slot, O_ID] == order_id and (st == ST_ACCEPTED or st == ST_PARTIALLY_FILLED)


@kernel  # a function of its own: requests are rare beside market events, and inlining it everywhere slows compiling
def _arrive(ex, r):
    kind = ex.rq[r, RQ_KIND]
    order_id = ex.rq[r, RQ_ID]
    ts = ex.rq[r, RQ_ARRIVAL]
    slot = order_id % ex.oi.shape[0]
    if kind == REQ_NEW:
        code = _enter(ex, ts, slot)
        if code != OK:
            return code
        return _respond(ex, ts, slot, REQ_NEW, 0)
    if not _is_live(ex, slot, order_id):
        if ex.oi[slot, O_ID] != order_id:
            return OK  # the slot already serves a later order: this one was final long ago
        return _respond(ex, ts, slot, kind, 1)
    i = _live_index(ex, slot)
    if kind == REQ_CANCEL:
        _live_remove(ex, i)
        ex.oi[slot, O_STATUS] = ST_CANCELED
        return _respond(ex, ts, slot, REQ_CANCEL, 0)
    price = ex.rq[r, RQ_PRICE]
    qty = ex.rq[r, RQ_QTY]
    keep = price == ex.oi[slot, O_PRICE] and qty <= ex.oi[slot, O_LEAVES]
    ex.oi[slot, O_LEAVES] = qty
    ex.oi[slot, O_QTY] = ex.oi[slot, O_FILLED] + qty
    if not keep:
        _live_remove(ex, i)
        ex.oi[slot, O_PRICE] = price
        code = _enter(ex, ts, slot)
        if code != OK:
            return code
    return _respond(ex, ts, slot, REQ_MODIFY, 0)


@inline_kernel
def _process_requests(ex, until, inclusive):
    cap = ex.rq.shape[0]
    while ex.ip[I_RQ_COUNT] > 0:
        r = ex.ip[I_RQ_HEAD]
        arrival = ex.rq[r, RQ_ARRIVAL]
        if arrival > until or (arrival == until and not inclusive):
            break
        ex.ip[I_RQ_HEAD] = (r + 1) % cap
        ex.ip[I_RQ_COUNT] -= 1
        code = _arrive(ex, r)
        if code != OK:
            return code
    return OK


@inline_kernel
def _on_book(ex, ts, side, price, size, l3, oid, arrival):
    # l3 is a constant of each caller (on_event: False, on_event_l3: True), so the compiled L2 path
    # carries no L3 branch. oid: the event's order id; arrival: the index of that order's arrival at
    # this price and side (-1: unknown or elsewhere).
    row = 0 if side > 0 else 1
    if ex.imp_n[row] > 0:
        _impact_drop(ex, row, price)
    if ex.ip[I_N_LIVE] == 0:
        deep_book_set(ex.px, ex.sz, ex.n, ex.lpx, ex.lsz, ex.ln, row, price, size)
        return OK
    lot = ex.fp[F_LOT]
    prev_best = _best(ex.px, ex.n, row)
    prev_lots = 0.0
    for i in range(ex.ip[I_N_LIVE]):  # the level's old size only matters under an order of ours
        s = ex.live[i]
        if ex.oi[s, O_SIDE] == side and ex.oi[s, O_PRICE] == price:
            prev_lots = _level_size(ex, row, price) / lot
            break
    deep_book_set(ex.px, ex.sz, ex.n, ex.lpx, ex.lsz, ex.ln, row, price, size)
    new_lots = size / lot
    model = ex.ip[I_QMODEL]
    param = ex.fp[F_QPARAM]
    ahead = -1.0  # front of our previous order at this level, this event
    for i in range(ex.ip[I_N_LIVE]):
        s = ex.live[i]
        if ex.oi[s, O_SIDE] == side and ex.oi[s, O_PRICE] == price:
            if l3:
                f = l3_on_depth(ex.of[s, OF_FRONT], arrival >= ex.oi[s, O_SEQ], oid, prev_lots, new_lots)
                c = 0.0
            else:
                f, c = queue_on_depth(model, param, lot, ex.of[s, OF_FRONT], ex.of[s, OF_CUM], prev_lots, new_lots)
            if ahead > -1.0:
                f = queue_behind(f, ahead)
            ex.of[s, OF_FRONT] = f
            ex.of[s, OF_CUM] = c
            ahead = f
    new_best = _best(ex.px, ex.n, row)
    improved = new_best > prev_best if row == 0 else new_best < prev_best
    if not improved:
        return OK
    # The best on this side moved through our orders on the other side: they traded, as makers.
    i = 0
    while i < ex.ip[I_N_LIVE]:
        s = ex.live[i]
        p = ex.oi[s, O_PRICE]
        if ex.oi[s, O_SIDE] == -side and ((p <= new_best) if row == 0 else (p >= new_best)):
            code = _fill(ex, ts, s, p, ex.oi[s, O_LEAVES], True, queue_ahead(ex.of[s, OF_FRONT]))
            if code != OK:
                return code
            _live_remove(ex, i)
            code = _respond(ex, ts, s, REQ_NONE, 0)
            if code != OK:
                return code
        else:
            i += 1
    return OK


@inline_kernel
def _on_trade(ex, ts, side, price, size, l3, arrival):
    # l3, arrival: as _on_book (arrival: of the executed resting order, at this price on our side).
    if side == 0 or ex.ip[I_N_LIVE] == 0:
        return OK
    remaining = size / ex.fp[F_LOT]
    ahead = -1.0
    i = 0
    while i < ex.ip[I_N_LIVE]:
        s = ex.live[i]
        p = ex.oi[s, O_PRICE]
        lots = 0
        before = queue_ahead(ex.of[s, OF_FRONT])
        if ex.oi[s, O_SIDE] == -side:
            if (p < price) if side > 0 else (p > price):
                if l3:
                    lots = min(int(math.floor(remaining + 1e-9)), ex.oi[s, O_LEAVES])
                    remaining -= lots
                else:
                    lots = ex.oi[s, O_LEAVES]
            elif p == price and l3:
                behind = arrival >= ex.oi[s, O_SEQ]
                lots = l3_trade_lots(ex.of[s, OF_FRONT], behind, remaining, ex.oi[s, O_LEAVES])
                if behind:
                    ex.of[s, OF_FRONT] = 0.0
                remaining -= lots
            elif p == price:
                f, c = queue_on_trade(ex.of[s, OF_FRONT], ex.of[s, OF_CUM], size / ex.fp[F_LOT])
                if ahead > -1.0:
                    f = queue_behind(f, ahead)
                ex_lots, f = queue_take_fill(f)
                ahead = f
                ex.of[s, OF_FRONT] = f
                ex.of[s, OF_CUM] = c
                cap = int(math.floor(remaining + 1e-9))
                lots = min(ex_lots, ex.oi[s, O_LEAVES], cap)
                remaining -= lots
        if lots > 0:
            code = _fill(ex, ts, s, p, lots, True, before)
            if code != OK:
                return code
            if ex.oi[s, O_LEAVES] == 0:
                _live_remove(ex, i)
            else:
                i += 1
            code = _respond(ex, ts, s, REQ_NONE, 0)
            if code != OK:
                return code
        else:
            i += 1
    return OK


# ----------------------------------------------------------------------------- public kernels


@inline_kernel
def _enqueue(ex, kind, order_id, ts_local, price, qty):
    cap = ex.rq.shape[0]
    if ex.ip[I_RQ_COUNT] >= cap:
        return _fail(ex, ERR_REQUESTS_FULL)
    r = (ex.ip[I_RQ_HEAD] + ex.ip[I_RQ_COUNT]) % cap
    arrival = max(ts_local + draw_latency(ex.lat_entry, ex.rng), ex.ip[I_LAST_ARRIVAL])
    ex.ip[I_LAST_ARRIVAL] = arrival
    ex.rq[r, RQ_KIND] = kind
    ex.rq[r, RQ_ID] = order_id
    ex.rq[r, RQ_ARRIVAL] = arrival
    ex.rq[r, RQ_PRICE] = price
    ex.rq[r, RQ_QTY] = qty
    ex.ip[I_RQ_COUNT] += 1
    return OK


@kernel
def submit(ex, ts_local, side, price_tick, qty, tif):
    """Send a new limit order at local time ``ts_local`` (ns).

    ``side`` +1 buy / -1 sell, ``price_tick`` (ticks), ``qty`` (lots, >= 1), ``tif`` one of
    ``TIF_GTC``, ``TIF_GTX`` (post-only), ``TIF_IOC``. Returns the new order id (>= 0), or
    ``ERR_BAD_ORDER``, ``ERR_ORDERS_FULL`` (the slot ``id % capacity`` holds a live order) or
    ``ERR_REQUESTS_FULL``; nothing is sent then.
    """
    if (side != 1 and side != -1) or qty < 1 or tif < TIF_GTC or tif > TIF_IOC:
        return ERR_BAD_ORDER
    order_id = ex.ip[I_NEXT_ID]
    slot = order_id % ex.oi.shape[0]
    st = ex.oi[slot, O_STATUS]
    if ex.oi[slot, O_ID] >= 0 and (st == ST_NEW or st == ST_ACCEPTED or st == ST_PARTIALLY_FILLED):
        return _fail(ex, ERR_ORDERS_FULL)
    code = _enqueue(ex, REQ_NEW, order_id, ts_local, price_tick, qty)
    if code != OK:
        return code
    ex.oi[slot, O_ID] = order_id
    ex.oi[slot, O_SIDE] = side
    ex.oi[slot, O_PRICE] = price_tick
    ex.oi[slot, O_QTY] = qty
    ex.oi[slot, O_LEAVES] = qty
    ex.oi[slot, O_FILLED] = 0
    ex.oi[slot, O_STATUS] = ST_NEW
    ex.oi[slot, O_TIF] = tif
    ex.oi[slot, O_TS_SUBMIT] = ts_local
    ex.oi[slot, O_TS_ACCEPT] = -1
    ex.of[slot, OF_FRONT] = 0.0
    ex.of[slot, OF_CUM] = 0.0
    ex.of[slot, OF_FRONT_POST] = 0.0
    ex.ip[I_NEXT_ID] = order_id + 1
    return order_id


@kernel
def cancel(ex, ts_local, order_id):
    """Ask, at local time ``ts_local`` (ns), to cancel ``order_id``.

    Returns ``OK``, ``ERR_UNKNOWN_ORDER`` (never issued) or ``ERR_REQUESTS_FULL``. If the order is no
    longer live when the request arrives, the response has ``R_REJECTED`` = 1.
    """
    if order_id < 0 or order_id >= ex.ip[I_NEXT_ID]:
        return ERR_UNKNOWN_ORDER
    return _enqueue(ex, REQ_CANCEL, order_id, ts_local, 0, 0)


@kernel
def modify(ex, ts_local, order_id, price_tick, qty):
    """Ask, at local time ``ts_local`` (ns), to replace ``order_id``'s price (ticks) and open quantity (lots, >= 1).

    Returns ``OK``, ``ERR_BAD_ORDER``, ``ERR_UNKNOWN_ORDER`` or ``ERR_REQUESTS_FULL``; see the module
    docstring for when the queue position survives.
    """
    if qty < 1:
        return ERR_BAD_ORDER
    if order_id < 0 or order_id >= ex.ip[I_NEXT_ID]:
        return ERR_UNKNOWN_ORDER
    return _enqueue(ex, REQ_MODIFY, order_id, ts_local, price_tick, qty)


@inline_kernel
def _on_event(ex, ts_event, kind, side, price_tick, size, l3, oid, arrival):
    code = _process_requests(ex, ts_event, False)
    if code != OK:
        return code
    if kind == KIND_BOOK:
        return _on_book(ex, ts_event, side, price_tick, size, l3, oid, arrival)
    if kind == KIND_TRADE:
        return _on_trade(ex, ts_event, side, price_tick, size, l3, arrival)
    if kind == KIND_CLEAR:
        deep_book_clear(ex.n, ex.lpx, ex.ln)
        ex.imp_n[0] = 0
        ex.imp_n[1] = 0
    return OK


@inline_kernel
def on_event(ex, ts_event, kind, side, price_tick, size):
    """Apply one tick-file event at exchange time ``ts_event`` (ns), after the requests arriving before it.

    ``kind``/``side`` as the schema (book: +1 bid / -1 ask; trade: aggressor), ``price_tick`` ticks,
    ``size`` base units. Returns ``OK`` or the first ``ERR_*`` capacity code (also kept in ``ip[I_ERROR]``).
    """
    return _on_event(ex, ts_event, kind, side, price_tick, size, False, -1, -1)


@inline_kernel
def on_event_l3(ex, seq, ts_event, kind, side, price_tick, size, order_id, arrival):
    """:func:`on_event` with the exact (market-by-order) queue of :mod:`scalper.exec.l3queue`.

    ``seq`` is the event's index in its file (increasing); ``order_id`` its order id (-1 unknown);
    ``arrival`` the index of the event where that order arrived *at this price on the resting side*
    (:func:`scalper.exec.l3queue.order_arrivals`, -1 when unknown or elsewhere). An order of ours
    resting from event ``seq`` on is ahead of every order arriving from ``seq`` on.
    """
    ex.ip[I_SEQ] = seq
    return _on_event(ex, ts_event, kind, side, price_tick, size, True, order_id, arrival)


@kernel
def run_events_l3(ex, ts, kind, side, price_tick, size, order_id, arrival, start, stop):
    """:func:`run_events` in L3 mode: the exact queue from ``order_id`` and ``arrival`` (int64 columns:
    :attr:`TickData.order_id` of a schema-v2 file and :func:`scalper.exec.l3queue.order_arrivals`).

    The exchange's queue model is not used; everything else (matching, latencies, fees) is as in L2 mode,
    except that a trade through an order's price fills it by the trade's size (L2: completely).
    Returns ``OK`` or the first ``ERR_*`` code.
    """
    for i in range(start, stop):
        a = arrival[i]
        resting = side[i] if kind[i] == KIND_BOOK else -side[i]
        if a >= 0 and (price_tick[a] != price_tick[i] or side[a] != resting):
            a = -1
        code = on_event_l3(ex, i, ts[i], kind[i], side[i], price_tick[i], size[i], order_id[i], a)
        if code != OK:
            return code
    return OK


@kernel
def run_events(ex, ts, kind, side, price_tick, size, start, stop):
    """Apply events ``[start, stop)`` of the tick columns (:meth:`TickData.kernel_columns` arrays).

    Returns ``OK``, or the first ``ERR_*`` code (the events from the failing one on are not applied).
    """
    for i in range(start, stop):
        code = on_event(ex, ts[i], kind[i], side[i], price_tick[i], size[i])
        if code != OK:
            return code
    return OK


@kernel
def flush_requests(ex, until):
    """Process the requests that reach the exchange at or before ``until`` (ns); returns ``OK`` or an ``ERR_*``."""
    return _process_requests(ex, until, True)


@kernel
def next_response(ex, ts_local):
    """Return the row of ``ex.ri`` holding the next response seen locally by ``ts_local`` (ns), or -1.

    Each response is returned once, in order; read the row before more responses can overwrite it.
    """
    k = ex.ip[I_RESP_READ]
    if k >= ex.ip[I_N_RESP]:
        return -1
    r = k % ex.ri.shape[0]
    if ex.ri[r, R_TS_LOCAL] > ts_local:
        return -1
    ex.ip[I_RESP_READ] = k + 1
    return r
