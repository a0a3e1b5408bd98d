"""The model-free market maker of the hftbacktest comparison, as one numba loop over tick data.

Issue 14's check of scalper's passive fills against hftbacktest 2.4.4: both quote one lot at the
best bid and the best ask, re-quote every 100 ms and stop adding to a position at a limit, on the
same Binance recording, with the same constant latencies, risk-averse queue and fees.
``benchmarks/peer_maker_hbt.py`` is the hftbacktest side and ``benchmarks/peer_maker.py`` the
comparison; /tmp/brief14/hbt_semantics.md (summarised here) lists the peer's rules.

Strategy, decided at every local time ``t`` with ``t % step_ns == 0`` inside
``[quote_from_ns, quote_until_ns]``, from the local book's best bid and ask ticks and the local
position (lots; fills whose response has arrived by ``t``): per side, the current order (the last
one submitted) is forgotten once it is seen filled, canceled or expired; if it is acknowledged,
has no request in flight, and its price is no longer the touch or its side is disabled, it is
canceled and forgotten (a fill before the cancel arrives still counts); with no current order on an
enabled side, a post-only (GTX) order for one lot goes out at the touch. The buy side is disabled
at position >= ``max_position`` lots, the sell side at <= -``max_position``.

Clocks (hftbacktest's ``correct_local_timestamp``): exchange time is ``ts_event`` (ns); local time
is ``ts_recv + local_offset_ns``, the offset making the smallest feed latency ``ts_recv -
ts_event`` zero (the 2024 Binance recordings stamp lines 1.27-1.52 s before the exchange's
``E``). Per event the feed latency is therefore ``local - ts_event``. A request made at local
``t`` reaches the exchange at ``t + entry_ns``; the exchange's answer (ack, expiry, cancel, fill)
reaches the local side ``response_ns`` after it happened. Events with equal times go in
hftbacktest's order: local book rows, then responses, then exchange rows, then request arrivals
(so an order arriving at ``T`` sees every row stamped ``T``); a decision at ``t`` comes after all
of them.

Matching, per exchange row in ``ts_event`` order (hftbacktest ``proc/nopartialfillexchange.rs``
with ``RiskAdverseQueueModel`` or a ``ProbQueueModel`` through :mod:`scalper.exec.queue`):

* book row: the level at our order's price updates its queue (``queue_on_depth``); if the best
  bid rose, our sells at or below it fill, and if the best ask fell, our buys at or above it fill;
* trade: our orders on the passive side strictly inside the trade price fill; at the trade price
  the queue advances by the trade size and the order fills when it is half a lot or more below
  zero (``queue_take_fill``);
* a new GTX order that would cross the best opposite price on arrival is expired; otherwise it
  joins the back of its level; a cancel arriving after the fill is rejected;
* a fill is the whole order (no partial fill: one lot cannot split), maker, at the order's price;
  fee = price * qty * rate (``maker_bps`` or ``taker_bps``, / 1e4; negative maker = rebate).

The book the exchange matches against follows hftbacktest's ``HashMapMarketDepth`` (a ladder over
ticks): a level whose size rounds to zero lots is deleted; a bid above the best becomes the best
and, if it reaches the best ask, the best ask moves to the first ask level above it (crossed asks
stay in the ladder); deleting the best level moves the best to the next level with size. This is
applied row by row, so a message that crosses before it deletes fills our order in between, as in
hftbacktest. The local book is the same ladder fed in local-time order.

Differences from hftbacktest: rows come from scalper's importer, which drops the diffs before the
REST snapshot and the stale ones the sequencer rejects, and writes the snapshot as one full clear
(hftbacktest's converter keeps those diffs and clears only down to the snapshot's deepest level);
quoting starts after a warm-up (``quote_from_ns``) so this touches no fill.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from scalper.exec.queue import QUEUE_RISK_AVERSE, check_queue_model, queue_on_depth, queue_on_trade, queue_take_fill
from scalper.ingest.tickfile import KIND_BOOK, KIND_CLEAR, KIND_TRADE, TickData
from scalper.lowlevel.jit import inline_kernel, kernel

INT64_MIN = np.iinfo(np.int64).min
INT64_MAX = np.iinfo(np.int64).max
MAX_LADDER_TICKS = 50_000_000
ORDER_SLOTS = 64

# Ladder state (int64[6]) indices: hftbacktest's four, then the lowest and highest index ever given a size.
_BEST_BID, _BEST_ASK, _LOW_BID, _HIGH_ASK, _LO_SET, _HI_SET = 0, 1, 2, 3, 4, 5
# Exchange-side order states.
_X_FREE, _X_SENT, _X_RESTING, _X_DONE = 0, 1, 2, 3
# Local view of an order (hftbacktest's status codes).
L_NONE, L_NEW, L_EXPIRED, L_FILLED, L_CANCELED = 0, 1, 2, 3, 4
_L_REJECTED = 6  # a response that only clears the request in flight
# Request kinds.
_REQ_NEW, _REQ_CANCEL = 1, 2


@dataclass(frozen=True)
class MakerPeerParams:
    """Settings of the comparison strategy (defaults: those of ``benchmarks/peer_maker.py``).

    Attributes
    ----------
    step_ns : int
        Decision grid, ns; decisions at local times that are multiples of it. > 0.
    entry_ns, response_ns : int
        Constant order entry and response latencies, ns; >= 0.
    max_position : int
        Position limit, lots; > 0.
    maker_bps, taker_bps : float
        Fee rates, bps of traded value (negative maker = rebate).
    quote_from_ns, quote_until_ns : int
        Local-time window in which the strategy acts, ns since the epoch.
    queue_model : int
        :mod:`scalper.exec.queue` model id; ``queue_param`` its parameter.
    local_offset_ns : int or None
        Added to ``ts_recv`` to get local time; None: :func:`local_clock_offset` of the data.
    """

    step_ns: int = 100_000_000
    entry_ns: int = 1_500_000
    response_ns: int = 1_500_000
    max_position: int = 5
    maker_bps: float = -0.5
    taker_bps: float = 4.0
    quote_from_ns: int = 0
    quote_until_ns: int = 2**62
    queue_model: int = QUEUE_RISK_AVERSE
    queue_param: float = 0.0
    local_offset_ns: int | None = None

    def check(self) -> None:
        """Raise ValueError naming the first setting out of its domain."""
        if self.step_ns <= 0:
            raise ValueError(f"step_ns must be > 0; got {self.step_ns}")
        if self.entry_ns < 0 or self.response_ns < 0:
            raise ValueError(f"latencies must be >= 0 ns; got entry {self.entry_ns}, response {self.response_ns}")
        if self.max_position <= 0:
            raise ValueError(f"max_position must be > 0 lots; got {self.max_position}")
        check_queue_model(self.queue_model, self.queue_param)


@dataclass(frozen=True)
class MakerPeerResult:
    """What one run produced.

    ``fills`` holds int64 arrays of one row per fill, ordered by (exch_ts, order_id): ``exch_ts`` and
    ``local_ts`` (ns), ``side`` (+1 buy, -1 sell), ``price_tick``, ``qty_lots``, ``maker`` (0/1) and
    ``order_id``. ``position_lots``, ``balance`` (quote currency, minus what was paid), ``fee``
    (quote currency, rebates negative), ``last_mid`` (local book at the end) and ``equity`` =
    balance + position * last_mid - fee. ``rows`` events ran in ``wall_s`` seconds.
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

    @property
    def events_per_s(self) -> float:
        return self.rows / self.wall_s if self.wall_s > 0 else float("inf")


def local_clock_offset(data: TickData) -> int:
    """Return the ns added to ``ts_recv`` so that no event reaches the local side before it happened.

    hftbacktest's ``correct_local_timestamp`` (py-hftbacktest ``data/validation.py``, base latency 0):
    ``max(0, -min(ts_recv - ts_event))`` over every row.
    """
    if len(data) == 0:
        return 0
    return int(max(0, -int(np.min(data.ts_recv - data.ts_event))))


@inline_kernel
def _depth_below(q, start, end):
    # hftbacktest depth_below: the highest level with size in [end, start).
    t = start - 1
    while t >= end:
        if q[t] > 0.0:
            return t
        t -= 1
    return INT64_MIN


@inline_kernel
def _depth_above(q, start, end):
    # hftbacktest depth_above: the lowest level with size in (start, end].
    t = start + 1
    while t <= end:
        if q[t] > 0.0:
            return t
        t += 1
    return INT64_MAX


@inline_kernel
def _set_bid(bq, aq, st, p, lots):
    # hftbacktest HashMapMarketDepth.update_bid_depth; returns the level's previous size.
    prev = bq[p]
    keep = np.floor(lots + 0.5) > 0.0
    bq[p] = lots if keep else 0.0
    if keep:
        st[_LO_SET] = min(st[_LO_SET], p)
        st[_HI_SET] = max(st[_HI_SET], p)
    if not keep:
        if p == st[_BEST_BID]:
            st[_BEST_BID] = _depth_below(bq, st[_BEST_BID], st[_LOW_BID])
            if st[_BEST_BID] == INT64_MIN:
                st[_LOW_BID] = INT64_MAX
    else:
        if p > st[_BEST_BID]:
            st[_BEST_BID] = p
            if st[_BEST_BID] >= st[_BEST_ASK]:
                st[_BEST_ASK] = _depth_above(aq, st[_BEST_BID], st[_HIGH_ASK])
        st[_LOW_BID] = min(st[_LOW_BID], p)
    return prev


@inline_kernel
def _set_ask(bq, aq, st, p, lots):
    # hftbacktest HashMapMarketDepth.update_ask_depth; returns the level's previous size.
    prev = aq[p]
    keep = np.floor(lots + 0.5) > 0.0
    aq[p] = lots if keep else 0.0
    if keep:
        st[_LO_SET] = min(st[_LO_SET], p)
        st[_HI_SET] = max(st[_HI_SET], p)
    if not keep:
        if p == st[_BEST_ASK]:
            st[_BEST_ASK] = _depth_above(aq, st[_BEST_ASK], st[_HIGH_ASK])
            if st[_BEST_ASK] == INT64_MAX:
                st[_HIGH_ASK] = INT64_MIN
    else:
        if p < st[_BEST_ASK]:
            st[_BEST_ASK] = p
            if st[_BEST_BID] >= st[_BEST_ASK]:
                st[_BEST_BID] = _depth_below(bq, st[_BEST_ASK], st[_LOW_BID])
        st[_HIGH_ASK] = max(st[_HIGH_ASK], p)
    return prev


@inline_kernel
def _clear(bq, aq, st):
    # Crossed levels may sit beyond the bests (see the module docstring): clear every index ever set,
    # not the whole ladder (most of a wide one is never touched, and stays unmapped memory).
    t = st[_LO_SET]
    while t <= st[_HI_SET]:  # a range() over the empty sentinels would overflow its length
        bq[t] = 0.0
        aq[t] = 0.0
        t += 1
    st[_LO_SET] = INT64_MAX
    st[_HI_SET] = INT64_MIN
    st[_BEST_BID] = INT64_MIN
    st[_BEST_ASK] = INT64_MAX
    st[_LOW_BID] = INT64_MAX
    st[_HIGH_ASK] = INT64_MIN


@inline_kernel
def _apply_row(bq, aq, st, kind, side, p, lots):
    # Returns (previous size at p, previous best on the row's side); book rows only change state.
    if kind == KIND_CLEAR:
        _clear(bq, aq, st)
        return 0.0, 0
    if side > 0:
        prev_best = st[_BEST_BID]
        return _set_bid(bq, aq, st, p, lots), prev_best
    prev_best = st[_BEST_ASK]
    return _set_ask(bq, aq, st, p, lots), prev_best


@kernel
def _maker_loop(
    ts_event,
    kind,
    side,
    tick,
    lots,
    local_ts,
    local_rows,
    ladders,
    states,
    o_int,
    o_flt,
    req,
    resp,
    fills,
    acct,
    cfg,
    fee_rates,
    tick_size,
    lot_size,
):
    # cfg: step, entry, response, max_pos, quote_from, quote_until, queue_model, first_decision, tick_base
    # o_int[k]: id, side, price, x_state, l_status, l_req, is_current ; o_flt[k]: front, cum_trade
    # req[k]: arrive_ts, slot, kind ; resp[k]: local_ts, slot, status
    # acct: position_lots, n_fills, next_id, steps, req_head, req_tail, resp_head, resp_tail, cur_buy, cur_sell,
    # slots in use (high-water mark: the matching loops look at no slot beyond it)
    # fills[k]: exch_ts, local_ts, side, price_tick, qty_lots, maker, order_id
    step = cfg[0]
    entry = cfg[1]
    response = cfg[2]
    max_pos = cfg[3]
    quote_from = cfg[4]
    quote_until = cfg[5]
    qmodel = cfg[6]
    t_dec = cfg[7]
    base = cfg[8]
    qparam = fee_rates[2]
    ebq = ladders[0]
    eaq = ladders[1]
    lbq = ladders[2]
    laq = ladders[3]
    est = states[0]
    lst = states[1]
    n = ts_event.shape[0]
    nl = local_rows.shape[0]
    n_slots = o_int.shape[0]
    req_cap = req.shape[0]
    resp_cap = resp.shape[0]
    i = 0
    j = 0
    balance = 0.0
    fee = 0.0
    while True:
        te = ts_event[i] if i < n else INT64_MAX
        tl = local_ts[local_rows[j]] if j < nl else INT64_MAX
        tr = resp[acct[6] % resp_cap, 0] if acct[6] < acct[7] else INT64_MAX
        tq = req[acct[4] % req_cap, 0] if acct[4] < acct[5] else INT64_MAX
        tmin = min(min(te, tl), min(tr, tq))
        if tmin == INT64_MAX:
            break
        if tmin > t_dec:
            acct[3] += 1
            if quote_from <= t_dec <= quote_until:
                bid = lst[_BEST_BID]
                ask = lst[_BEST_ASK]
                if bid != INT64_MIN and ask != INT64_MAX and bid < ask:
                    pos = acct[0]
                    for s in (1, -1):
                        cur_at = 8 if s > 0 else 9
                        touch = (bid if s > 0 else ask) + base  # absolute ticks
                        enabled = pos < max_pos if s > 0 else pos > -max_pos
                        k = acct[cur_at]
                        if k >= 0:
                            st_ = o_int[k, 4]
                            if st_ == L_FILLED or st_ == L_CANCELED or st_ == L_EXPIRED:
                                o_int[k, 6] = 0
                                _release(k, o_int)
                                k = -1
                            elif st_ == L_NEW and o_int[k, 5] == 0 and ((not enabled) or o_int[k, 2] != touch):
                                o_int[k, 5] = _REQ_CANCEL
                                o_int[k, 6] = 0
                                if acct[5] - acct[4] >= req_cap:
                                    return -2
                                r = acct[5] % req_cap
                                req[r, 0] = t_dec + entry
                                req[r, 1] = k
                                req[r, 2] = _REQ_CANCEL
                                acct[5] += 1
                                k = -1
                        if k < 0 and enabled:
                            k = 0
                            while k < n_slots and o_int[k, 3] != _X_FREE:
                                k += 1
                            if k == n_slots:
                                return -1
                            acct[10] = max(acct[10], k + 1)
                            o_int[k, 0] = acct[2]
                            acct[2] += 1
                            o_int[k, 1] = s
                            o_int[k, 2] = touch
                            o_int[k, 3] = _X_SENT
                            o_int[k, 4] = L_NONE
                            o_int[k, 5] = _REQ_NEW
                            o_int[k, 6] = 1
                            if acct[5] - acct[4] >= req_cap:
                                return -2
                            r = acct[5] % req_cap
                            req[r, 0] = t_dec + entry
                            req[r, 1] = k
                            req[r, 2] = _REQ_NEW
                            acct[5] += 1
                        acct[cur_at] = k
            t_dec += step
            continue
        if tl == tmin:
            r = local_rows[j]
            _apply_row(lbq, laq, lst, kind[r], side[r], tick[r] - base, lots[r])
            j += 1
        elif tr == tmin:
            r = acct[6] % resp_cap
            k = resp[r, 1]
            status = resp[r, 2]
            acct[6] += 1
            if status == L_FILLED:
                # A cancel still in flight keeps its request open: its rejection comes back later.
                o_int[k, 4] = status
                acct[0] += o_int[k, 1]
                amount = o_int[k, 2] * tick_size * lot_size
                balance -= amount * o_int[k, 1]
                fee += amount * fee_rates[0]
            else:
                if status != _L_REJECTED:
                    o_int[k, 4] = status
                o_int[k, 5] = 0
            _release(k, o_int)
        elif te == tmin:
            kd = kind[i]
            sd = side[i]
            p = tick[i] - base
            if kd == KIND_TRADE:
                q = lots[i]
                if sd != 0:
                    bound = est[_BEST_BID] if sd > 0 else est[_BEST_ASK]
                    for k in range(acct[10]):
                        if o_int[k, 3] != _X_RESTING or o_int[k, 1] != -sd:
                            continue
                        op = o_int[k, 2] - base
                        if sd > 0:
                            inside = bound < op and op <= p
                            through = op < p
                        else:
                            inside = p <= op and op < bound
                            through = op > p
                        if not inside:
                            continue
                        filled = through
                        if not through:
                            front, cum = queue_on_trade(o_flt[k, 0], o_flt[k, 1], q)
                            ex, front = queue_take_fill(front)
                            o_flt[k, 0] = front
                            o_flt[k, 1] = cum
                            filled = ex > 0
                        if filled:
                            if _fill(k, te, o_int, fills, acct, resp, response) < 0:
                                return -3
            else:
                prev, prev_best = _apply_row(ebq, eaq, est, kd, sd, p, lots[i])
                if kd == KIND_BOOK:
                    for k in range(acct[10]):
                        if o_int[k, 3] == _X_RESTING and o_int[k, 1] == sd and o_int[k, 2] - base == p:
                            front, cum = queue_on_depth(qmodel, qparam, o_flt[k, 0], o_flt[k, 1], prev, lots[i])
                            o_flt[k, 0] = front
                            o_flt[k, 1] = cum
                    if sd > 0 and est[_BEST_BID] > prev_best:
                        for k in range(acct[10]):
                            if o_int[k, 3] == _X_RESTING and o_int[k, 1] < 0 and o_int[k, 2] - base <= est[_BEST_BID]:
                                if _fill(k, te, o_int, fills, acct, resp, response) < 0:
                                    return -3
                    elif sd < 0 and est[_BEST_ASK] < prev_best:
                        for k in range(acct[10]):
                            if o_int[k, 3] == _X_RESTING and o_int[k, 1] > 0 and o_int[k, 2] - base >= est[_BEST_ASK]:
                                if _fill(k, te, o_int, fills, acct, resp, response) < 0:
                                    return -3
            i += 1
        else:
            r = acct[4] % req_cap
            k = req[r, 1]
            rk = req[r, 2]
            acct[4] += 1
            status = _L_REJECTED
            if rk == _REQ_NEW:
                p = o_int[k, 2] - base
                if o_int[k, 1] > 0:
                    cross = p >= est[_BEST_ASK]
                    level = ebq[p]
                else:
                    cross = p <= est[_BEST_BID]
                    level = eaq[p]
                if cross:
                    o_int[k, 3] = _X_DONE
                    status = L_EXPIRED
                else:
                    o_int[k, 3] = _X_RESTING
                    o_flt[k, 0] = level
                    o_flt[k, 1] = 0.0
                    status = L_NEW
            elif o_int[k, 3] == _X_RESTING:
                o_int[k, 3] = _X_DONE
                status = L_CANCELED
            if _respond(k, tq + response, status, acct, resp) < 0:
                return -3
    fee_rates[3] = balance
    fee_rates[4] = fee
    return 0


@inline_kernel
def _release(k, o_int):
    # A slot is reused once nothing refers to it: not current, done at the exchange, final locally.
    if o_int[k, 6] == 0 and o_int[k, 3] == _X_DONE and o_int[k, 5] == 0 and o_int[k, 4] >= L_EXPIRED:
        o_int[k, 3] = _X_FREE


@inline_kernel
def _respond(k, ts, status, acct, resp):
    resp_cap = resp.shape[0]
    if acct[7] - acct[6] >= resp_cap:
        return -1
    r = acct[7] % resp_cap
    # hftbacktest's OrderBus: never earlier than the last message queued.
    last = resp[(acct[7] - 1) % resp_cap, 0] if acct[7] > acct[6] else ts
    resp[r, 0] = max(ts, last)
    resp[r, 1] = k
    resp[r, 2] = status
    acct[7] += 1
    return 0


@inline_kernel
def _fill(k, ts, o_int, fills, acct, resp, response):
    o_int[k, 3] = _X_DONE
    f = acct[1]
    if f >= fills.shape[0]:
        return -1
    fills[f, 0] = ts
    fills[f, 1] = ts + response
    fills[f, 2] = o_int[k, 1]
    fills[f, 3] = o_int[k, 2]
    fills[f, 4] = 1
    fills[f, 5] = 1
    fills[f, 6] = o_int[k, 0]
    acct[1] = f + 1
    return _respond(k, ts + response, L_FILLED, acct, resp)


_ERRORS = {
    -1: f"more than {ORDER_SLOTS} orders alive at once",
    -2: "request queue full",
    -3: "response queue or fill table full",
}

FILL_FIELDS = ("exch_ts", "local_ts", "side", "price_tick", "qty_lots", "maker", "order_id")


def run_maker_peer(data: TickData, params: MakerPeerParams | None = None) -> MakerPeerResult:
    """Run the comparison market maker over ``data`` and return its fills and final state.

    Parameters
    ----------
    data : TickData
        Schema-v1 events sorted by ``ts_event`` (book rows, trades with a known aggressor side,
        clears), one instrument; prices on its tick grid.
    params : MakerPeerParams, optional

    Raises
    ------
    ValueError
        A setting out of its domain (:meth:`MakerPeerParams.check`), empty data, or a price range
        wider than ``MAX_LADDER_TICKS`` ticks (the ladder is dense over the data's range).
    RuntimeError
        If the fixed order or queue capacity is exceeded (names which).
    """
    p = params or MakerPeerParams()
    p.check()
    if len(data) == 0:
        raise ValueError("no events to run the market maker on")
    inst = data.instrument
    tick = data.price_tick
    priced = data.kind != KIND_CLEAR
    lo = int(tick[priced].min())
    hi = int(tick[priced].max())
    width = hi - lo + 1
    if width > MAX_LADDER_TICKS:
        raise ValueError(f"price range of {width} ticks exceeds the ladder limit {MAX_LADDER_TICKS}")
    offset = local_clock_offset(data) if p.local_offset_ns is None else int(p.local_offset_ns)
    local_ts = data.ts_recv + offset
    book_rows = np.flatnonzero(data.kind != KIND_TRADE)
    local_rows = book_rows[np.argsort(local_ts[book_rows], kind="stable")].astype(np.int64)
    t0 = int(min(data.ts_event[0], local_ts.min()))
    first_decision = -(-t0 // p.step_ns) * p.step_ns
    t_end = int(max(data.ts_event[-1], local_ts.max()))
    decisions = (t_end - first_decision) // p.step_ns + 2
    lots = data.size / inst.lot_size
    ladders = np.zeros((4, width), dtype=np.float64)
    states = np.array([[INT64_MIN, INT64_MAX, INT64_MAX, INT64_MIN, INT64_MAX, INT64_MIN]] * 2, dtype=np.int64)
    o_int = np.zeros((ORDER_SLOTS, 7), dtype=np.int64)
    o_flt = np.zeros((ORDER_SLOTS, 2), dtype=np.float64)
    req = np.zeros((4 * ORDER_SLOTS, 3), dtype=np.int64)
    resp = np.zeros((8 * ORDER_SLOTS, 3), dtype=np.int64)
    fills = np.zeros((2 * decisions + 16, len(FILL_FIELDS)), dtype=np.int64)
    acct = np.array([0, 0, 1, 0, 0, 0, 0, 0, -1, -1, 0], dtype=np.int64)
    cfg = np.array(
        [
            p.step_ns,
            p.entry_ns,
            p.response_ns,
            p.max_position,
            p.quote_from_ns,
            p.quote_until_ns,
            p.queue_model,
            first_decision,
            lo,
        ],
        dtype=np.int64,
    )
    rates = np.array([p.maker_bps / 1e4, p.taker_bps / 1e4, p.queue_param, 0.0, 0.0], dtype=np.float64)
    side = data.side.astype(np.int64)
    kind = data.kind.astype(np.int64)
    t_start = time.perf_counter()
    rc = _maker_loop(
        data.ts_event,
        kind,
        side,
        tick,
        lots,
        local_ts,
        local_rows,
        ladders,
        states,
        o_int,
        o_flt,
        req,
        resp,
        fills,
        acct,
        cfg,
        rates,
        float(inst.tick_size),
        float(inst.lot_size),
    )
    wall = time.perf_counter() - t_start
    if rc < 0:
        raise RuntimeError(f"market maker stopped: {_ERRORS[rc]}")
    nf = int(acct[1])
    table = fills[:nf][np.lexsort((fills[:nf, 6], fills[:nf, 0]))]
    bid, ask = states[1, _BEST_BID], states[1, _BEST_ASK]
    mid = (bid + lo + ask + lo) * inst.tick_size / 2.0 if bid != INT64_MIN and ask != INT64_MAX else float("nan")
    position = int(acct[0])
    balance, fee = float(rates[3]), float(rates[4])
    return MakerPeerResult(
        fills={name: table[:, c].copy() for c, name in enumerate(FILL_FIELDS)},
        position_lots=position,
        balance=balance,
        fee=fee,
        last_mid=mid,
        equity=balance + position * inst.lot_size * mid - fee,
        submitted=int(acct[2]) - 1,
        steps=int(acct[3]),
        rows=len(data),
        wall_s=wall,
        local_offset_ns=offset,
    )
