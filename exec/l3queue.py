"""Exact queue position on market-by-order (L3) data, and resting orders replayed one by one under any queue model.

Where the data carries order ids (tick-file schema v2, e.g. LOBSTER imported with ``mbo=True``), the queue
ahead of a resting order of ours needs no model: it is the orders that rested at its price when it
arrived, and they leave it only by their own cancels and executions, each of which the data names.

Rules (price-time priority, NASDAQ's: displayed orders first, then by arrival)
------------------------------------------------------------------------------
* Our order joins behind every order resting at its price when it arrives: ``front`` (lots ahead) is
  the level's size then. Its *sequence* is the index of the first event after its arrival; a market
  order is *behind* ours when its arrival (the book event with its id that first raised its level, see
  :func:`order_arrivals`) has an index at or after that sequence, at our side and price.
* A level decrease at our price with the id of an order not behind ours (ahead, or arrived before the
  data began) is a cancel or execution of an order ahead: ``front`` drops by exactly that size (never
  below 0). A decrease of an order behind ours leaves ``front`` alone.
* An execution (a trade with the resting order's id) at our price of an order behind ours means ours
  would have been executed first: ours fills by the execution's size (partial allowed), and nothing is
  ahead any more. So does any execution at our price once nothing is ahead (a hidden order's execution,
  type 5, included: displayed orders have priority over hidden ones at a price).
* A level event without an id (``ORDER_ID_UNKNOWN``: a snapshot, or the level entering or leaving a
  depth-limited view) belongs to no order: a level leaving the view (size 0) leaves ``front`` alone, a
  level (re)entering it bounds ``front`` by its size. Changes while the level is out of view are not
  seen: a post whose level left the view is flagged (:data:`POST_LEFT_VIEW`).
* As in :mod:`scalper.exec.passive` (hftbacktest's rule): a trade through our price (the aggressor paid
  more than our ask, or less than our bid) fills ours (by the trade's size here), and the opposite
  best moving to or through our price fills it completely.

Public API
----------
* :func:`order_arrivals` (numba, not a hot-path kernel: it builds a typed dict once per file) maps each
  event to the index of its order's arrival event (``-1`` when unknown).
* :func:`l3_is_behind`, :func:`l3_on_depth`, :func:`l3_trade_lots`: the rules above as inline kernels
  (no allocation, no NRT) for an exchange's L3 mode.
* :func:`simulate_posts` replays independent resting orders (each in a world of its own, as if it were
  our only order) under an L2 model of :mod:`scalper.exec.queue` or :data:`QUEUE_L3`, so that the two can
  be compared post by post; :func:`replay_posts` is its checked Python entry point.

Units: prices in ticks (int64), sizes in base units in the tick columns and in lots (float64) for the
queue, order quantities in lots (int64), times in ns (int64).
"""

from __future__ import annotations

import numpy as np
from numba import njit, types
from numba.typed import Dict

from scalper.exec.queue import check_queue_model, queue_on_depth, queue_on_trade, queue_take_fill
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE, TickData
from scalper.lowlevel.book import book_clear, book_set, new_book, side_index
from scalper.lowlevel.jit import inline_kernel, kernel

QUEUE_L3 = -1
"""Model id of the exact (market-by-order) queue in :func:`simulate_posts`."""

POST_NOT_PLACED = 1
"""Flag: the post's side of the book was empty at its time (or it came after the last event)."""
POST_LEFT_VIEW = 2
"""Flag: the post's level left the data's depth-limited view while it rested (an id-less deletion: on
schema-v1 data, which has no ids, every deletion of the level)."""

NO_FILL = -1

FILL_QUEUE = 1
"""Fill cause: a trade at the post's price reached it through the queue."""
FILL_TRADE_THROUGH = 2
"""Fill cause: a trade through the post's price."""
FILL_BEST_THROUGH = 3
"""Fill cause: the opposite best moved to or through the post's price."""


@njit(cache=True)
def _arrivals(kind, side, price_tick, size, order_id, out):
    # Level sizes by (price, side) key: a dict, not a book, so no depth limit can drop a level.
    level = Dict.empty(key_type=types.int64, value_type=types.float64)
    first = Dict.empty(key_type=types.int64, value_type=types.int64)
    for i in range(kind.shape[0]):
        out[i] = -1
        if kind[i] == KIND_CLEAR:
            level.clear()
            continue
        oid = order_id[i]
        if kind[i] == KIND_BOOK:
            key = price_tick[i] * 2 + (1 if side[i] > 0 else 0)
            prev = level.get(key, 0.0)
            if size[i] > 0.0:
                level[key] = size[i]
            elif key in level:
                del level[key]
            if oid >= 0 and oid not in first:
                # The first event of an order that raised its level is its arrival; a first event that
                # lowered it (a cancel or execution) means the order arrived out of view: unknown.
                first[oid] = i if size[i] > prev else -1
        if oid >= 0:
            out[i] = first.get(oid, -1)


def order_arrivals(data: TickData) -> np.ndarray:
    """Return int64[n]: for each event, the index of the event where its order arrived, or -1.

    An order arrives at the first book event carrying its id, when that event raised the level (a
    submission). Events without an id, orders whose first event lowered the level (they arrived out
    of view or before the data began), and trades of orders not yet seen on the book (hidden orders)
    get -1. Not a hot-path call (builds numba typed dicts; O(n)).

    Raises
    ------
    ValueError
        If ``data`` has no order ids (schema v1).
    """
    if data.order_id is None:
        raise ValueError(f"{data.instrument.source}: no order ids (tick-file schema v1); L3 needs schema v2")
    out = np.empty(len(data), dtype=np.int64)
    _arrivals(data.kind, data.side, data.price_tick, data.size, data.order_id, out)
    return out


@inline_kernel
def l3_is_behind(arrival, side, price_tick, our_seq, our_side, our_price):
    """True when the order whose arrival is event ``arrival`` (-1: unknown) arrived at ``our_price`` on
    ``our_side`` at or after event ``our_seq``; ``side`` / ``price_tick`` are the event columns."""
    return arrival >= our_seq and side[arrival] == our_side and price_tick[arrival] == our_price


@inline_kernel
def l3_on_depth(front, behind, order_id, prev_lots, new_lots):
    """Return ``front`` (lots ahead) after our level changed ``prev_lots -> new_lots`` by an event of
    ``order_id`` (-1: no single order), ``behind`` as :func:`l3_is_behind` says for that order."""
    if order_id < 0:
        return min(front, new_lots) if new_lots > 0.0 else front
    if behind or new_lots >= prev_lots:
        return front
    return max(front - (prev_lots - new_lots), 0.0)


@inline_kernel
def l3_trade_lots(front, behind, qty_lots, leaves):
    """Return the lots of our order (``leaves`` open) that an execution of ``qty_lots`` at our price
    fills: all it can when the executed order is behind ours or nothing is ahead, else 0."""
    if behind or front <= 0.0:
        return min(int(qty_lots + 1e-9), leaves)
    return 0


@inline_kernel
def _level_lots(px, sz, n, row, tick, lot):
    for j in range(n[row]):
        if px[row, j] == tick:
            return sz[row, j] / lot
    return 0.0


@inline_kernel
def _through(post_side, post_price, best_opposite):
    return (best_opposite <= post_price) if post_side > 0 else (best_opposite >= post_price)


@kernel
def simulate_posts(
    ts,
    kind,
    side,
    price_tick,
    size,
    order_id,
    arrival,
    lot,
    post_ts,
    post_side,
    expiry_ts,
    qty,
    model,
    param,
    px,
    sz,
    n,
    active,
    front,
    cum,
    seq,
    out_price,
    out_front,
    out_fill_ts,
    out_filled,
    out_flags,
    out_cause,
):
    """Replay resting orders ``j`` (post at ``post_ts[j]``, cancel at ``expiry_ts[j]``), each on its own.

    Each post joins the best price of its side (``post_side[j]`` +1 bid / -1 ask) after the events at
    or before ``post_ts[j]`` (the passive exchange's order of a request and an event at one ns), with
    ``qty`` lots, and is canceled after the events at or before ``expiry_ts[j]`` (a complete fill ends it
    earlier). ``model`` is an id of :mod:`scalper.exec.queue` (with ``param``) or :data:`QUEUE_L3` (then
    ``arrival``, :func:`order_arrivals`, is used). ``order_id`` (-1 where unknown) marks the deletions
    that are a level leaving the view. Posts must be in ``post_ts`` order.

    ``px, sz, n`` are an empty :func:`scalper.lowlevel.book.new_book`; ``active`` int64[m], ``front``,
    ``cum`` float64[m] and ``seq`` int64[m] scratch. Writes per post: ``out_price`` (ticks),
    ``out_front`` (lots ahead at the post), ``out_fill_ts`` (ns of its first fill, ``NO_FILL`` if none),
    ``out_filled`` (lots), ``out_flags`` (``POST_*`` bits), ``out_cause`` (``FILL_*`` of the first fill, 0
    if none). Returns the number of posts placed.
    """
    m = post_ts.shape[0]
    n_active = 0
    nxt = 0
    placed = 0
    l3 = model == QUEUE_L3
    for j in range(m):
        out_fill_ts[j] = NO_FILL
        out_filled[j] = 0
        out_flags[j] = 0
        out_price[j] = 0
        out_front[j] = 0.0
        out_cause[j] = 0
    for i in range(ts.shape[0]):
        t = ts[i]
        while nxt < m and post_ts[nxt] < t:
            j = nxt
            nxt += 1
            row = 0 if post_side[j] > 0 else 1
            if n[row] == 0 or expiry_ts[j] < t:
                out_flags[j] |= POST_NOT_PLACED
                continue
            out_price[j] = px[row, 0]
            f = _level_lots(px, sz, n, row, px[row, 0], lot)
            out_front[j] = f
            front[j] = f
            cum[j] = 0.0
            seq[j] = i
            active[n_active] = j
            n_active += 1
            placed += 1
        k = 0
        while k < n_active:  # cancels reach the exchange after the events at their own ns
            if expiry_ts[active[k]] < t:
                n_active -= 1
                active[k] = active[n_active]
            else:
                k += 1
        if n_active == 0:
            if kind[i] == KIND_BOOK:
                book_set(px, sz, n, side_index(side[i]), price_tick[i], size[i])
            elif kind[i] == KIND_CLEAR:
                book_clear(n)
            continue
        if kind[i] == KIND_BOOK:
            row = side_index(side[i])
            p = price_tick[i]
            prev_lots = _level_lots(px, sz, n, row, p, lot)
            prev_best = px[row, 0] if n[row] > 0 else (-(2**62) if row == 0 else 2**62)
            book_set(px, sz, n, row, p, size[i])
            new_lots = size[i] / lot
            for k in range(n_active):
                j = active[k]
                if post_side[j] != side[i] or out_price[j] != p:
                    continue
                if l3:
                    oid = order_id[i]
                    behind = oid >= 0 and l3_is_behind(arrival[i], side, price_tick, seq[j], post_side[j], p)
                    front[j] = l3_on_depth(front[j], behind, oid, prev_lots, new_lots)
                else:
                    front[j], cum[j] = queue_on_depth(model, param, lot, front[j], cum[j], prev_lots, new_lots)
                if order_id[i] < 0 and new_lots == 0.0:
                    out_flags[j] |= POST_LEFT_VIEW
            if n[row] > 0 and (px[row, 0] > prev_best if row == 0 else px[row, 0] < prev_best):
                k = 0
                while k < n_active:
                    j = active[k]
                    if post_side[j] == -side[i] and _through(post_side[j], out_price[j], px[row, 0]):
                        if out_fill_ts[j] == NO_FILL:
                            out_fill_ts[j] = t
                            out_cause[j] = FILL_BEST_THROUGH
                        out_filled[j] = qty
                        n_active -= 1
                        active[k] = active[n_active]
                    else:
                        k += 1
        elif kind[i] == KIND_TRADE and side[i] != 0:
            p = price_tick[i]
            q = size[i] / lot
            k = 0
            while k < n_active:
                j = active[k]
                lots = 0
                cause = FILL_QUEUE
                leaves = qty - out_filled[j]
                if post_side[j] == -side[i]:
                    if (out_price[j] < p) if side[i] > 0 else (out_price[j] > p):
                        lots = min(int(q + 1e-9), leaves) if l3 else leaves
                        cause = FILL_TRADE_THROUGH
                    elif out_price[j] == p:
                        if l3:
                            behind = order_id[i] >= 0 and l3_is_behind(
                                arrival[i], side, price_tick, seq[j], post_side[j], p
                            )
                            lots = l3_trade_lots(front[j], behind, q, leaves)
                            if behind:
                                front[j] = 0.0
                        else:
                            f, c = queue_on_trade(front[j], cum[j], q)
                            ex_lots, f = queue_take_fill(f)
                            front[j] = f
                            cum[j] = c
                            lots = min(ex_lots, leaves, int(q + 1e-9))
                if lots > 0:
                    if out_fill_ts[j] == NO_FILL:
                        out_fill_ts[j] = t
                        out_cause[j] = cause
                    out_filled[j] += lots
                if out_filled[j] >= qty:
                    n_active -= 1
                    active[k] = active[n_active]
                else:
                    k += 1
        elif kind[i] == KIND_CLEAR:
            book_clear(n)
    while nxt < m:
        out_flags[nxt] |= POST_NOT_PLACED
        nxt += 1
    return placed


def replay_posts(
    data: TickData,
    post_ts: np.ndarray,
    post_side: np.ndarray,
    expiry_ts: np.ndarray,
    *,
    model: int,
    param: float = 0.0,
    qty: int = 1,
    arrival: np.ndarray | None = None,
) -> dict[str, np.ndarray]:
    """Run :func:`simulate_posts` on ``data`` and return its per-post results by name.

    Parameters
    ----------
    post_ts, expiry_ts : int64[m]
        Post and cancel times, ns; ``post_ts`` non-decreasing, ``expiry_ts >= post_ts``.
    post_side : int8 or int64[m]
        +1 bid (buy), -1 ask (sell).
    model, param
        A :mod:`scalper.exec.queue` model, or :data:`QUEUE_L3` (needs order ids).
    qty : int
        Lots per post (>= 1).
    arrival : int64[n], optional
        :func:`order_arrivals` of ``data`` (computed when ``None`` and ``model`` is L3).

    Returns
    -------
    dict
        ``price`` (ticks), ``front_at_post`` (lots), ``fill_ts`` (ns, ``NO_FILL`` = -1 if unfilled),
        ``filled`` (lots), ``flags`` (``POST_*`` bits), ``cause`` (``FILL_*`` of the first fill, 0 if none),
        all of length m.

    Raises
    ------
    ValueError
        For unsorted posts, an expiry before its post, a side not +-1, ``qty < 1``, a bad queue model, or
        L3 on data without order ids.
    """
    post_ts = np.ascontiguousarray(post_ts, dtype=np.int64)
    expiry_ts = np.ascontiguousarray(expiry_ts, dtype=np.int64)
    post_side = np.ascontiguousarray(post_side, dtype=np.int64)
    m = post_ts.shape[0]
    if expiry_ts.shape != (m,) or post_side.shape != (m,):
        raise ValueError(
            f"post_ts, post_side and expiry_ts need one length; got {m}, {post_side.shape}, {expiry_ts.shape}"
        )
    if m and np.any(np.diff(post_ts) < 0):
        raise ValueError("post_ts must be non-decreasing")
    if np.any(expiry_ts < post_ts):
        raise ValueError("every expiry_ts must be >= its post_ts")
    if np.any(np.abs(post_side) != 1):
        raise ValueError("post_side must be +1 (bid) or -1 (ask)")
    if qty < 1:
        raise ValueError(f"qty must be >= 1 lot; got {qty!r}")
    n_ev = len(data)
    if model == QUEUE_L3:
        if arrival is None:
            arrival = order_arrivals(data)
    else:
        check_queue_model(model, param)
        arrival = np.full(n_ev, -1, dtype=np.int64)
    # The ids also say which deletions are a level leaving the view (POST_LEFT_VIEW), for every model.
    order_id = data.order_id if data.order_id is not None else np.full(n_ev, -1, dtype=np.int64)
    px, sz, n = new_book()
    out = {
        "price": np.zeros(m, dtype=np.int64),
        "front_at_post": np.zeros(m, dtype=np.float64),
        "fill_ts": np.zeros(m, dtype=np.int64),
        "filled": np.zeros(m, dtype=np.int64),
        "flags": np.zeros(m, dtype=np.int64),
        "cause": np.zeros(m, dtype=np.int64),
    }
    simulate_posts(
        data.ts_event,
        data.kind,
        data.side,
        data.price_tick,
        data.size,
        order_id,
        arrival,
        float(data.instrument.lot_size),
        post_ts,
        post_side,
        expiry_ts,
        int(qty),
        int(model),
        float(param),
        px,
        sz,
        n,
        np.zeros(m, dtype=np.int64),
        np.zeros(m, dtype=np.float64),
        np.zeros(m, dtype=np.float64),
        np.zeros(m, dtype=np.int64),
        out["price"],
        out["front_at_post"],
        out["fill_ts"],
        out["filled"],
        out["flags"],
        out["cause"],
    )
    return out
