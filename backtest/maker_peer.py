"""The model-free market maker of the hftbacktest comparison, as one numba loop over tick data.

Issue 14's check of scalper's passive fills against hftbacktest 2.4.4: both quote one lot at the
best bid and the best ask, re-quote every 100 ms and stop adding to a position at a limit, on the
same Binance recording, with the same constant latencies, risk-averse queue and fees. The exchange
side is scalper's passive simulated exchange (:mod:`scalper.exec.passive`); this module adds the
strategy, the local book and the clocks. ``benchmarks/peer_maker_hbt.py`` is the hftbacktest side
and ``benchmarks/peer_maker.py`` the comparison.

Strategy, decided at every local time ``t`` with ``t % step_ns == 0`` inside
``[quote_from_ns, quote_until_ns]``, from the local book's best bid and ask ticks and the local
position (lots; fills whose response has arrived by ``t``): per side, the current order (the last
one submitted) is forgotten once it is seen filled, canceled or expired; if it is acknowledged,
has no request in flight, and its price is no longer the touch or its side is disabled, it is
canceled and forgotten (a fill before the cancel arrives still counts); with no current order on an
enabled side, a post-only (GTX) order for one lot goes out at the touch. The buy side is disabled
at position >= ``max_position`` lots, the sell side at <= -``max_position``.

Clocks: exchange time is ``ts_event`` (ns). Local time, when an event reaches the strategy, is
taken per event from the data (:func:`local_times`): where the data records a receive time
(``ts_recv != ts_event``) it is ``ts_recv + local_offset_ns``, the offset making the smallest
recorded feed latency ``ts_recv - ts_event`` zero (hftbacktest's ``correct_local_timestamp``,
py-hftbacktest ``data/validation.py``; the 2024 Binance recordings stamp lines 1.27-1.52 s before
the exchange's ``E``), so each event keeps its own feed latency ``local - ts_event``; where it does
not (``ts_recv == ts_event``, the tick-file schema's mark of an unknown receive time, e.g. every
LOBSTER row) it is ``ts_event + feed_latency_ns``, a constant. The local book applies a row only
once its local time has come, so no decision sees an event before it reaches the strategy. A request
made at local ``t`` reaches the exchange an entry latency later; the exchange's answers reach the
local side a response latency after they happened (constants, or draws from recorded
distributions: :mod:`scalper.exec.passive`, :mod:`scalper.exec.latency`). A decision at ``t``
comes after every row, request arrival and response stamped ``<= t``, as after hftbacktest's
``elapse``; there is one at every grid time until nothing is left to happen (data, requests in
flight, unread responses), when hftbacktest's ``elapse`` reports the end of the data.

The local book is :mod:`scalper.features.ladder`'s deep book fed in local-time order (rows of one
message share a stamp, so a decision always sees a whole message, an uncrossed book). hftbacktest's
local ``HashMapMarketDepth`` gives the same best bid and ask there.

Differences from hftbacktest's run of the same strategy: rows come from scalper's importer, which
drops the diffs before the REST snapshot and the stale ones the sequencer rejects, and writes the
snapshot as one full clear (hftbacktest's converter keeps those diffs and clears only down to the
snapshot's deepest level); quoting starts after a warm-up (``quote_from_ns``, set by
``benchmarks/peer_maker.py``) so none of this touches a fill. Order ids are the exchange's
(from 0); hftbacktest's strategy numbers its own from 1.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from scalper.exec.latency import latency_model
from scalper.exec.passive import (
    I_N_RESP,
    I_RESP_READ,
    I_RQ_COUNT,
    R_FILLED,
    R_ID,
    R_REJECTED,
    R_REQ,
    R_STATUS,
    REQ_CANCEL,
    REQ_NEW,
    REQ_NONE,
    ST_ACCEPTED,
    ST_CANCELED,
    ST_EXPIRED,
    ST_FILLED,
    ST_NEW,
    ST_PARTIALLY_FILLED,
    TIF_GTX,
    PassiveExchange,
    cancel,
    fills_table,
    flush_requests,
    new_exchange,
    next_response,
    on_event,
    raise_for,
    submit,
)
from scalper.exec.queue import QUEUE_RISK_AVERSE, check_queue_model
from scalper.features.ladder import deep_book_clear, deep_book_set, new_deep_book
from scalper.ingest.tickfile import KIND_CLEAR, KIND_TRADE, TickData
from scalper.lowlevel.jit import inline_kernel, kernel

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
ORDER_SLOTS = 64

# Local view of an order, row ``order_id % ORDER_SLOTS`` of ``lo``.
_L_ID, _L_SIDE, _L_PRICE, _L_STATUS, _L_REQ, _L_FILLED = 0, 1, 2, 3, 4, 5
# ``acct`` slots.
_A_POS, _A_SUBMITTED, _A_STEPS, _A_CUR_BUY, _A_CUR_SELL = 0, 1, 2, 3, 4
# ``cfg`` slots.
_C_STEP, _C_MAX_POS, _C_FROM, _C_UNTIL, _C_FIRST = 0, 1, 2, 3, 4

FILL_FIELDS = ("exch_ts", "local_ts", "side", "price_tick", "qty_lots", "maker", "order_id")


@dataclass(frozen=True)
class MakerPeerParams:
    """Settings of the comparison strategy (defaults: those of ``benchmarks/peer_maker.py``).

    Attributes
    ----------
    step_ns : int
        Decision grid, ns; decisions at local times that are multiples of it. > 0.
    entry_ns, response_ns : int or tuple of int
        Order entry and response latencies, ns, >= 0: a constant, or a recorded distribution drawn
        from per request / per response (seeded by ``latency_seed``). The default constants sit off
        the 1 ms grid of Binance's ``T`` so that no request arrives at the same nanosecond as a
        market event (the tie rule, events first, is the same on both sides either way).
    latency_seed : int
        Seed of the latency draws (unused with constants).
    max_position : int
        Position limit, lots; > 0.
    maker_bps, taker_bps : float
        Fee rates, bps of traded value (negative maker = rebate; taker >= 0).
    quote_from_ns, quote_until_ns : int
        Local-time window in which the strategy acts, ns since the epoch.
    queue_model : int
        :mod:`scalper.exec.queue` model id; ``queue_param`` its parameter.
    local_offset_ns : int or None
        Added to a recorded ``ts_recv`` to get local time; None: :func:`local_clock_offset` of the data.
    feed_latency_ns : int
        Constant feed latency, ns (>= 0), of the events whose receive time the data does not record.
    """

    step_ns: int = 100_000_000
    entry_ns: int | tuple[int, ...] = 1_500_000
    response_ns: int | tuple[int, ...] = 1_500_000
    max_position: int = 5
    maker_bps: float = -0.5
    taker_bps: float = 4.0
    quote_from_ns: int = 0
    quote_until_ns: int = 2**62
    queue_model: int = QUEUE_RISK_AVERSE
    queue_param: float = 0.0
    local_offset_ns: int | None = None
    feed_latency_ns: int = 0
    latency_seed: int = 0

    def check(self) -> None:
        """Raise ValueError naming the first setting out of its domain."""
        if self.step_ns <= 0:
            raise ValueError(f"step_ns must be > 0; got {self.step_ns}")
        latency_model("entry_ns", np.asarray(self.entry_ns))
        latency_model("response_ns", np.asarray(self.response_ns))
        if self.feed_latency_ns < 0:
            raise ValueError(f"feed_latency_ns must be >= 0; got {self.feed_latency_ns}")
        if self.max_position <= 0:
            raise ValueError(f"max_position must be > 0 lots; got {self.max_position}")
        check_queue_model(self.queue_model, self.queue_param)


@dataclass(frozen=True)
class MakerPeerResult:
    """What one run produced.

    ``fills`` holds int64 arrays of one row per fill, ordered by (exch_ts, order_id): ``exch_ts`` and
    ``local_ts`` (ns), ``side`` (+1 buy, -1 sell), ``price_tick``, ``qty_lots``, ``maker`` (0/1) and
    ``order_id``. ``position_lots``; ``balance`` (quote currency: received minus paid over the fills)
    and ``fee`` (quote currency, rebates negative; the exchange's per-fill fees); ``last_mid`` (local
    book at the end) and ``equity`` = balance + position * last_mid - fee. ``rows`` events ran in
    ``wall_s`` seconds. ``exchange`` is the passive exchange at the end (its
    :func:`scalper.exec.passive.fills_table` has the queue positions and fees of every fill).
    """

    fills: dict[str, np.ndarray]
    position_lots: int
    balance: float
    fee: float
    last_mid: float
    equity: float
    submitted: int
    steps: int
    rows: int
    wall_s: float
    local_offset_ns: int
    exchange: PassiveExchange

    @property
    def events_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else float("inf")


def local_clock_offset(data: TickData) -> int:
    """Return the ns added to a recorded ``ts_recv`` so that no event reaches the local side before it happened.

    hftbacktest's ``correct_local_timestamp`` (py-hftbacktest ``data/validation.py``, base latency 0):
    ``max(0, -min(ts_recv - ts_event))`` over the rows that record a receive time
    (``ts_recv != ts_event``); 0 when none does.
    """
    lat = data.ts_recv - data.ts_event
    lat = lat[lat != 0]
    if lat.size == 0:
        return 0
    return int(max(0, -int(lat.min())))


def local_times(data: TickData, offset_ns: int, feed_latency_ns: int) -> np.ndarray:
    """Return when each event reaches the strategy (int64[N], ns): ``ts_recv + offset_ns`` where the data
    records a receive time (``ts_recv != ts_event``), else ``ts_event + feed_latency_ns``."""
    recorded = data.ts_recv != data.ts_event
    return np.where(recorded, data.ts_recv + offset_ns, data.ts_event + feed_latency_ns)


@inline_kernel
def _read_response(ri, r, lo, acct):
    oid = ri[r, R_ID]
    k = oid % lo.shape[0]
    if lo[k, _L_ID] != oid:
        return  # a stale answer for an order whose slot a later one took: nothing of it is awaited
    if ri[r, R_REJECTED] != 0:
        lo[k, _L_REQ] = 0
        return
    acct[_A_POS] += lo[k, _L_SIDE] * (ri[r, R_FILLED] - lo[k, _L_FILLED])
    lo[k, _L_FILLED] = ri[r, R_FILLED]
    lo[k, _L_STATUS] = ri[r, R_STATUS]
    if ri[r, R_REQ] != REQ_NONE:  # a maker fill's answer leaves a cancel in flight open
        lo[k, _L_REQ] = 0


@inline_kernel
def _quote(ex, lo, acct, t, s, touch, enabled):
    # One side's decision (module docstring); returns OK or an exec.passive ERR_* code.
    cur_at = _A_CUR_BUY if s > 0 else _A_CUR_SELL
    oid = acct[cur_at]
    if oid >= 0:
        k = oid % lo.shape[0]
        st = lo[k, _L_STATUS]
        if st == ST_FILLED or st == ST_CANCELED or st == ST_EXPIRED:
            oid = -1
        elif (st == ST_ACCEPTED or st == ST_PARTIALLY_FILLED) and lo[k, _L_REQ] == 0:
            if (not enabled) or lo[k, _L_PRICE] != touch:
                code = cancel(ex, t, oid)
                if code != 0:
                    return code
                lo[k, _L_REQ] = REQ_CANCEL
                oid = -1
    if oid < 0 and enabled:
        oid = submit(ex, t, s, touch, 1, TIF_GTX)
        if oid < 0:
            return oid
        k = oid % lo.shape[0]
        lo[k, _L_ID] = oid
        lo[k, _L_SIDE] = s
        lo[k, _L_PRICE] = touch
        lo[k, _L_STATUS] = ST_NEW
        lo[k, _L_REQ] = REQ_NEW
        lo[k, _L_FILLED] = 0
        acct[_A_SUBMITTED] += 1
    acct[cur_at] = oid
    return 0


@kernel
def _maker_loop(ts_event, kind, side, tick, size, local_ts, local_rows, book, ex, lo, acct, cfg):
    # book: the local deep book (px, sz, n, lpx, lsz, ln).
    px, sz, n_lv, lpx, lsz, ln = book
    step = cfg[_C_STEP]
    max_pos = cfg[_C_MAX_POS]
    t_dec = cfg[_C_FIRST]
    n = ts_event.shape[0]
    nl = local_rows.shape[0]
    i = 0
    j = 0
    answered = True  # responses read since the last decision that acted
    last_bid = INT64_MIN
    last_ask = INT64_MAX
    while True:
        te = ts_event[i] if i < n else INT64_MAX
        tl = local_ts[local_rows[j]] if j < nl else INT64_MAX
        tmin = min(te, tl)
        if tmin <= t_dec:
            if tl == tmin:
                r = local_rows[j]
                if kind[r] == KIND_CLEAR:
                    deep_book_clear(n_lv, lpx, ln)
                else:
                    deep_book_set(px, sz, n_lv, lpx, lsz, ln, 0 if side[r] > 0 else 1, tick[r], size[r])
                j += 1
            else:
                code = on_event(ex, te, kind[i], side[i], tick[i], size[i])
                if code != 0:
                    return code
                i += 1
            continue
        # Every market row up to t_dec is in: requests arriving by then are answered, and the
        # answers that reached the local side by then are read, before the decision.
        # (The counters are read first: most decisions have neither, and the calls are not inlined.)
        if ex.ip[I_RQ_COUNT] > 0:
            code = flush_requests(ex, t_dec)
            if code != 0:
                return code
        if ex.ip[I_RESP_READ] < ex.ip[I_N_RESP]:
            r = next_response(ex, t_dec)
            while r >= 0:
                _read_response(ex.ri, r, lo, acct)
                answered = True
                r = next_response(ex, t_dec)
        if tmin == INT64_MAX and ex.ip[I_RQ_COUNT] == 0 and ex.ip[I_RESP_READ] == ex.ip[I_N_RESP]:
            return 0
        acct[_A_STEPS] += 1
        usable = n_lv[0] > 0 and n_lv[1] > 0 and px[0, 0] < px[1, 0]
        # A decision that sees the touch and the orders as the last one left them would do nothing:
        # skip it (most decisions on a quiet book, where they outnumber the market events).
        changed = answered or not usable or px[0, 0] != last_bid or px[1, 0] != last_ask
        if cfg[_C_FROM] <= t_dec <= cfg[_C_UNTIL] and usable and changed:
            answered = False
            last_bid = px[0, 0]
            last_ask = px[1, 0]
            pos = acct[_A_POS]
            code = _quote(ex, lo, acct, t_dec, 1, px[0, 0], pos < max_pos)
            if code != 0:
                return code
            code = _quote(ex, lo, acct, t_dec, -1, px[1, 0], pos > -max_pos)
            if code != 0:
                return code
        t_dec += step


def run_maker_peer(data: TickData, params: MakerPeerParams | None = None) -> MakerPeerResult:
    """Run the comparison market maker over ``data`` and return its fills and final state.

    Parameters
    ----------
    data : TickData
        Schema-v1 events sorted by ``ts_event`` (book rows, trades, clears), one instrument.
    params : MakerPeerParams, optional

    Raises
    ------
    ValueError
        A setting out of its domain (:meth:`MakerPeerParams.check`), or empty data.
    OverflowError
        A capacity of the passive exchange was exceeded (:func:`scalper.exec.passive.raise_for`).
    """
    p = params or MakerPeerParams()
    p.check()
    if len(data) == 0:
        raise ValueError("no events to run the market maker on")
    inst = data.instrument
    offset = local_clock_offset(data) if p.local_offset_ns is None else int(p.local_offset_ns)
    local_ts = local_times(data, offset, p.feed_latency_ns)
    book_rows = np.flatnonzero(data.kind != KIND_TRADE)
    local_rows = book_rows[np.argsort(local_ts[book_rows], kind="stable")].astype(np.int64)
    t0 = int(min(data.ts_event[0], local_ts.min()))
    first_decision = -(-t0 // p.step_ns) * p.step_ns
    t_end = int(max(data.ts_event[-1], local_ts.max()))
    decisions = (t_end - first_decision) // p.step_ns + 2
    ex = new_exchange(
        tick_size=inst.tick_size,
        lot_size=inst.lot_size,
        entry_latency_ns=np.asarray(p.entry_ns),
        response_latency_ns=np.asarray(p.response_ns),
        latency_seed=p.latency_seed,
        queue_model=p.queue_model,
        queue_param=p.queue_param,
        maker_fee_bps=p.maker_bps,
        taker_fee_bps=p.taker_bps,
        order_capacity=ORDER_SLOTS,
        fill_capacity=2 * decisions + 16,
    )
    book = new_deep_book()
    lo = np.zeros((ORDER_SLOTS, 6), dtype=np.int64)
    lo[:, _L_ID] = -1
    acct = np.array([0, 0, 0, -1, -1], dtype=np.int64)
    cfg = np.array([p.step_ns, p.max_position, p.quote_from_ns, p.quote_until_ns, first_decision], dtype=np.int64)
    kind = data.kind.astype(np.int64)
    side = data.side.astype(np.int64)
    tick = data.price_tick
    t_start = time.perf_counter()
    rc = _maker_loop(data.ts_event, kind, side, tick, data.size, local_ts, local_rows, book, ex, lo, acct, cfg)
    wall = time.perf_counter() - t_start
    raise_for(int(rc))
    f = fills_table(ex)
    order = np.lexsort((f["order_id"], f["ts_exch"]))
    fills = {
        "exch_ts": f["ts_exch"][order],
        "local_ts": f["ts_local"][order],
        "side": f["side"][order],
        "price_tick": f["price_tick"][order],
        "qty_lots": f["qty"][order],
        "maker": f["maker"][order].astype(np.int64),
        "order_id": f["order_id"][order],
    }
    px, _sz, n_lv = book[0], book[1], book[2]
    both = n_lv[0] > 0 and n_lv[1] > 0
    mid = (px[0, 0] + px[1, 0]) * inst.tick_size / 2.0 if both else float("nan")
    position = int(acct[_A_POS])
    notional = f["price_tick"] * inst.tick_size * f["qty"] * inst.lot_size
    balance = float(-np.sum(f["side"] * notional))
    fee = float(np.sum(f["fee"]))
    return MakerPeerResult(
        fills=fills,
        position_lots=position,
        balance=balance,
        fee=fee,
        last_mid=mid,
        equity=balance + position * inst.lot_size * mid - fee,
        submitted=int(acct[_A_SUBMITTED]),
        steps=int(acct[_A_STEPS]),
        rows=len(data),
        wall_s=wall,
        local_offset_ns=offset,
        exchange=ex,
    )
