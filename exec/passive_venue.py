"""The passive simulated exchange as an :class:`~scalper.exec.adapter.ExecutionAdapter`: what maker mode trades on.

:mod:`scalper.exec.passive` holds the matching kernels (post-only, limit and IOC orders, cancel and
modify, L2 queue position, latencies, maker and taker fees, market impact) and keeps its own book from
the replayed events. :class:`PassiveSimulatedExchange` puts the engine's side on them: it owns the
tick columns of the replay and feeds the kernel every event in exchange time, each time the core
calls :meth:`~PassiveSimulatedExchange.on_time`; it turns the kernel's responses and fills into the
:class:`~scalper.exec.orders.Order` objects and :class:`~scalper.exec.orders.Fill` records every
adapter keeps, through the order state machine.

Clocks. The core's time is event time (the kernel columns' ``ts``), and a time ``t`` means every event
with ``ts <= t`` has happened. ``on_time(t)`` replays the exchange through those events (requests reach
it in between, as :mod:`scalper.exec.passive` orders them), then hands the core what it has seen by
``t``: responses and fills whose local time (exchange time plus response latency) is ``<= t``.
:meth:`~PassiveSimulatedExchange.next_wake_ns` is the first of: a request's arrival, an unread
response, and the first event that could fill a resting order (a trade by the other side at or
through its price, or a book row of the other side at or through it: the only events on which the
kernel fills), plus the response latency. Nothing else can change what the core sees, so the core
runs no Python between those events.

Differences from :class:`~scalper.exec.simulated.SimulatedExchange` (the taker venue):

* A cancel travels behind the order it cancels (FIFO, the entry latency): an IOC or a post-only order
  already on its way is not caught in flight. The simulated exchange lets a cancel sent before the
  arrival always win.
* The book is the exchange's own, from the replayed events; the arrays passed to ``on_time`` are not
  read. Taker fills see market impact (:mod:`scalper.exec.passive`).
* An order whose quantity is off the lot grid, whose side is not +1/-1 or whose limit is not a
  positive finite price never reaches the kernel: it is rejected when it would have arrived.

Units: times int64 ns since the epoch; book prices in ticks; quantities base units (whole lots at the
kernel); fees quote currency (a negative maker rate is a rebate).
"""

from __future__ import annotations

import math

import numpy as np

from scalper.exec.adapter import OrderRecords
from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.exec.passive import (
    FF_FEE,
    FI_ID,
    FI_MAKER,
    FI_PRICE,
    FI_QTY,
    FI_TS_EXCH,
    FI_TS_LOCAL,
    I_N_FILLS,
    I_N_LIVE,
    I_N_RESP,
    I_RESP_READ,
    I_RQ_COUNT,
    I_RQ_HEAD,
    O_ID,
    O_PRICE,
    O_SIDE,
    O_STATUS,
    OF_FRONT,
    R_FILLED,
    R_ID,
    R_LEAVES,
    R_PRICE,
    R_REJECTED,
    R_STATUS,
    R_TS_EXCH,
    R_TS_LOCAL,
    RQ_ARRIVAL,
    ST_ACCEPTED,
    ST_PARTIALLY_FILLED,
    cancel,
    fills_table,
    flush_requests,
    modify,
    new_exchange,
    next_response,
    raise_for,
    run_events,
    submit,
)
from scalper.exec.queue import QUEUE_RISK_AVERSE
from scalper.ingest.tickfile import KIND_BOOK, KIND_TRADE
from scalper.lowlevel.jit import kernel
from scalper.risk.intent import ApprovedOrder, TimeInForce

INT64_MAX = np.iinfo(np.int64).max
INT64_MIN = np.iinfo(np.int64).min

# Relative slack when turning float prices and sizes into whole ticks and lots (as exec/simulated.py).
_GRID_TOL = 1e-10

_STATUS = {int(s): s for s in OrderStatus}


@kernel
def next_fill_candidate(kind, side, price_tick, start, buy_max, sell_min):
    """Return the first index ``>= start`` of an event on which a resting order could fill, or -1.

    ``buy_max`` / ``sell_min`` (ticks) are the highest resting buy and the lowest resting sell
    (``INT64_MIN`` / ``INT64_MAX`` for none). An order fills only on a trade by the other side at or
    through its price or on the other side's book moving to or through it (:mod:`scalper.exec.passive`,
    Matching), so every other event is passed over; an event found here may still fill nothing.
    """
    for i in range(start, kind.shape[0]):
        k = kind[i]
        if k == KIND_TRADE or k == KIND_BOOK:
            s = side[i]
            if s < 0 and price_tick[i] <= buy_max:
                return i
            if s > 0 and price_tick[i] >= sell_min:
                return i
    return -1


class PassiveSimulatedExchange(OrderRecords):
    """An exchange with resting orders and queue position, replaying a tick file's events.

    Parameters
    ----------
    ts, kind, side, price_tick, size : numpy.ndarray
        The replay's schema-v1 columns (``TickData.kernel_columns()`` order, without ``flags``): int64 ns,
        the event kind, +1/-1 side (book: bid/ask; trade: aggressor), int64 ticks, float64 base units.
        Read, never written.
    tick_size, lot_size : float
        Quote currency per tick and base units per lot, > 0.
    entry_latency_ns : int
        Send-to-exchange latency of every request, ns, >= 0.
    response_latency_ns : int
        Exchange-to-engine latency of every response and fill, ns, >= 0.
    maker_fee_bps, taker_fee_bps : float
        Fee rates, bps of notional; taker >= 0; a negative maker fee is a rebate (a maker fill's fee
        is then negative).
    queue_model, queue_param : int, float
        :mod:`scalper.exec.queue` model (default risk-averse).
    first_order_id : int
        Id of the first order.
    order_capacity, fill_capacity : int
        The kernel's order slots and fill record (:func:`scalper.exec.passive.new_exchange`).

    Raises
    ------
    ValueError
        A parameter out of range (naming it), or columns of different lengths.
    """

    def __init__(
        self,
        ts: np.ndarray,
        kind: np.ndarray,
        side: np.ndarray,
        price_tick: np.ndarray,
        size: np.ndarray,
        *,
        tick_size: float,
        lot_size: float,
        entry_latency_ns: int,
        response_latency_ns: int = 0,
        maker_fee_bps: float = 0.0,
        taker_fee_bps: float = 0.0,
        queue_model: int = QUEUE_RISK_AVERSE,
        queue_param: float = 0.0,
        first_order_id: int = 1,
        order_capacity: int = 64,
        fill_capacity: int = 1 << 18,
    ) -> None:
        if not len(ts) == len(kind) == len(side) == len(price_tick) == len(size):
            raise ValueError("PassiveSimulatedExchange needs event columns of one length")
        self._ex = new_exchange(
            tick_size=tick_size,
            lot_size=lot_size,
            entry_latency_ns=int(entry_latency_ns),
            response_latency_ns=int(response_latency_ns),
            queue_model=queue_model,
            queue_param=queue_param,
            maker_fee_bps=maker_fee_bps,
            taker_fee_bps=taker_fee_bps,
            order_capacity=order_capacity,
            fill_capacity=fill_capacity,
        )
        self.tick_size = float(tick_size)
        self.lot_size = float(lot_size)
        self.entry_latency_ns = int(entry_latency_ns)
        self.response_latency_ns = int(response_latency_ns)
        self._cols = (ts, kind, side, price_tick, size)
        self._ts = ts
        # Traded base units by aggressor, cumulated: row 0 sells (they hit bids), row 1 buys (they lift asks).
        trade = kind == KIND_TRADE
        self._traded = np.zeros((2, len(ts) + 1))
        np.cumsum(np.where(trade & (side < 0), size, 0.0), out=self._traded[0, 1:])
        np.cumsum(np.where(trade & (side > 0), size, 0.0), out=self._traded[1, 1:])
        self._cursor = 0  # events [0, _cursor) are replayed
        self._now_ns: int | None = None
        self._next_id = int(first_order_id)
        self._orders: dict[int, Order] = {}
        self._fills: dict[int, list[Fill]] = {}
        self._open: dict[int, Order] = {}
        self._by_kid: dict[int, int] = {}  # kernel order id -> ours
        self._kid: dict[int, int] = {}  # ours -> kernel order id
        self._lots: dict[int, int] = {}  # ours -> ordered lots
        self._filled: dict[int, int] = {}  # ours -> filled lots seen
        self._rejects: list[tuple[int, int]] = []  # (arrival ns, our id) of orders refused on arrival
        self._fill_read = 0
        self._candidate: tuple[int, int, int, int] = (-1, 0, 0, -1)  # (cursor, buy_max, sell_min) -> index
        self.posted = 0  # resting (GTX / GTC) orders sent
        self.canceled_requests = 0

    # -- requests --------------------------------------------------------------------------------
    def _lots_of(self, qty: float) -> int:
        x = qty / self.lot_size
        lots = round(x) if math.isfinite(x) else 0
        return lots if lots >= 1 and abs(x - lots) <= _GRID_TOL * lots else 0

    def _limit_tick(self, side: int, limit: float) -> int:
        # A buy's limit rounds down to the grid, a sell's up: never a worse price than asked.
        x = limit / self.tick_size
        slack = _GRID_TOL * max(1.0, abs(x))
        return math.floor(x + slack) if side > 0 else math.ceil(x - slack)

    def _submit(self, order: ApprovedOrder, ts_ns: int) -> Order:
        """Send ``order`` at ``ts_ns`` (ns); it reaches the exchange ``entry_latency_ns`` later.

        Raises
        ------
        OverflowError
            A kernel capacity is exceeded (order slots, request ring).
        """
        intent = order.intent
        tracked = Order(
            order_id=self._next_id,
            client_ts_ns=intent.ts_ns,
            side=intent.side,
            qty=intent.qty,
            limit_price=intent.limit_price,
            reason=intent.reason,
            is_exit=intent.is_exit,
        )
        self._next_id += 1
        oid = tracked.order_id
        self._orders[oid] = tracked
        self._fills[oid] = []
        self._open[oid] = tracked
        lots = self._lots_of(intent.qty)
        limit = intent.limit_price
        tif = int(intent.tif)
        if intent.side not in (1, -1) or lots == 0 or not (math.isfinite(limit) and limit > 0.0) or not 0 <= tif <= 2:
            self._rejects.append((ts_ns + self.entry_latency_ns, oid))
            return tracked
        kid = int(submit(self._ex, ts_ns, intent.side, self._limit_tick(intent.side, limit), lots, tif))
        raise_for(kid)
        self._by_kid[kid] = oid
        self._kid[oid] = kid
        self._lots[oid] = lots
        self._filled[oid] = 0
        if tif != TimeInForce.IOC:
            self.posted += 1
        return tracked

    def cancel(self, order_id: int, ts_ns: int) -> bool:
        """Send a cancel of ``order_id`` at ``ts_ns`` (ns); it reaches the exchange behind every earlier request.

        Returns
        -------
        bool
            True when the request was sent (the order is not yet seen terminal); the order becomes
            ``CANCELED`` when the answer is seen, unless it filled first. False for an unknown or
            terminal order.
        """
        tracked = self._open.get(order_id)
        if tracked is None:
            return False
        kid = self._kid.get(order_id)
        if kid is None:  # refused on arrival anyway
            return True
        raise_for(int(cancel(self._ex, ts_ns, kid)))
        self.canceled_requests += 1
        return True

    def modify(self, order_id: int, price: float, qty: float, ts_ns: int) -> bool:
        """Send a cancel-replace of ``order_id`` at ``ts_ns`` (ns): new limit ``price`` (quote currency) and
        open quantity ``qty`` (base units). A new price or a larger quantity loses the queue position
        (:mod:`scalper.exec.passive`); the order keeps its id, and its price and quantity change here when
        the answer is seen.

        Returns
        -------
        bool
            False for an unknown or terminal order, or a quantity off the lot grid; True when sent.
        """
        tracked = self._open.get(order_id)
        kid = self._kid.get(order_id)
        lots = self._lots_of(qty)
        if tracked is None or kid is None or lots == 0:
            return False
        raise_for(int(modify(self._ex, ts_ns, kid, self._limit_tick(tracked.side, price), lots)))
        return True

    # -- queries ---------------------------------------------------------------------------------
    @property
    def now_ns(self) -> int:
        """The latest time :meth:`on_time` was given (ns), or 0 before any."""
        return self._now_ns or 0

    def open_orders(self) -> list[Order]:
        """Return the orders not yet seen terminal, oldest first."""
        return list(self._open.values())

    def has_open_orders(self) -> bool:
        """Return True when an order is not yet seen terminal (no list built: asked per decision)."""
        return bool(self._open)

    @property
    def sent(self) -> int:
        """Orders that reached the kernel (every well-formed submit, posted or IOC)."""
        return len(self._kid)

    def status_counts(self) -> dict[OrderStatus, int]:
        """Return how many orders are in each status, as seen by the engine (every status present)."""
        counts = dict.fromkeys(OrderStatus, 0)
        for tracked in self._orders.values():
            counts[tracked.status] += 1
        return counts

    def queue_ahead(self, order_id: int) -> float:
        """Base units ahead of ``order_id`` in its level's queue, as the queue model estimates it now
        (exchange side); 0 for an order not resting (in flight, filled, canceled)."""
        kid = self._kid.get(order_id)
        if kid is None:
            return 0.0
        ex = self._ex
        slot = kid % ex.oi.shape[0]
        st = ex.oi[slot, O_STATUS]
        if ex.oi[slot, O_ID] != kid or not (st == ST_ACCEPTED or st == ST_PARTIALLY_FILLED):
            return 0.0
        return max(0.0, float(ex.of[slot, OF_FRONT])) * self.lot_size

    def traded_volume(self, aggressor: int, from_ns: int, to_ns: int) -> float:
        """Base units traded by ``aggressor`` (+1 buyers, -1 sellers) in events with ``from_ns < ts <= to_ns``."""
        ts = self._ts
        lo = int(np.searchsorted(ts, from_ns, side="right"))
        hi = int(np.searchsorted(ts, to_ns, side="right"))
        row = self._traded[0 if aggressor < 0 else 1]
        return float(row[hi] - row[lo])

    def fills_table(self) -> dict[str, np.ndarray]:
        """Every fill the exchange made, as :func:`scalper.exec.passive.fills_table` columns, with
        ``order_id`` in this adapter's ids (queue at post and at fill, maker flag, fee)."""
        table = fills_table(self._ex)
        table["order_id"] = np.array([self._by_kid[int(k)] for k in table["order_id"]], dtype=np.int64)
        return table

    # -- the clock -------------------------------------------------------------------------------
    def next_wake_ns(self) -> int | None:
        """Return the first time (ns) something may change what the core sees, or None: a request's arrival,
        a refused order's arrival, an unread response or fill, or the first event that could fill a
        resting order plus the response latency (module docstring)."""
        ex = self._ex
        wake = INT64_MAX
        if ex.ip[I_RQ_COUNT] > 0:
            wake = int(ex.rq[ex.ip[I_RQ_HEAD], RQ_ARRIVAL])
        if self._rejects:
            wake = min(wake, self._rejects[0][0])
        if ex.ip[I_RESP_READ] < ex.ip[I_N_RESP]:
            wake = min(wake, int(ex.ri[ex.ip[I_RESP_READ] % ex.ri.shape[0], R_TS_LOCAL]))
        if self._fill_read < ex.ip[I_N_FILLS]:
            wake = min(wake, int(ex.fi[self._fill_read, FI_TS_LOCAL]))
        if ex.ip[I_N_LIVE] > 0:
            i = self._fill_candidate()
            if i >= 0:
                wake = min(wake, int(self._ts[i]) + self.response_latency_ns)
        return None if wake == INT64_MAX else wake

    def _fill_candidate(self) -> int:
        ex = self._ex
        buy_max, sell_min = INT64_MIN, INT64_MAX
        for k in range(int(ex.ip[I_N_LIVE])):
            slot = ex.live[k]
            price = int(ex.oi[slot, O_PRICE])
            if ex.oi[slot, O_SIDE] > 0:
                buy_max = max(buy_max, price)
            else:
                sell_min = min(sell_min, price)
        key = (self._cursor, buy_max, sell_min)
        if self._candidate[:3] != key:
            _, kind, side, tick, _ = self._cols
            self._candidate = (*key, int(next_fill_candidate(kind, side, tick, self._cursor, buy_max, sell_min)))
        return self._candidate[3]

    def on_time(
        self, ts_ns: int, px: np.ndarray, sz: np.ndarray, n: np.ndarray, is_book_valid: bool = True
    ) -> list[Fill]:
        """Replay the exchange through every event with ``ts <= ts_ns`` and the requests arriving by then;
        return the fills seen by ``ts_ns`` (their response's local time), in execution order.

        ``px``, ``sz``, ``n`` and ``is_book_valid`` are not read: the exchange keeps its own book from the
        events. Orders move through the state machine as their answers are seen.

        Raises
        ------
        ValueError
            If ``ts_ns`` is earlier than a time already given.
        OverflowError
            A kernel capacity was exceeded (:func:`scalper.exec.passive.raise_for`).
        """
        if self._now_ns is not None and ts_ns < self._now_ns:
            raise ValueError(f"time went backwards: {ts_ns} ns < {self._now_ns} ns")
        self._now_ns = ts_ns
        ex = self._ex
        stop = int(np.searchsorted(self._ts, ts_ns, side="right"))
        if stop > self._cursor:
            ts, kind, side, tick, size = self._cols
            raise_for(int(run_events(ex, ts, kind, side, tick, size, self._cursor, stop)))
            self._cursor = stop
        if ex.ip[I_RQ_COUNT] > 0:
            raise_for(int(flush_requests(ex, ts_ns)))
        while self._rejects and self._rejects[0][0] <= ts_ns:
            _, oid = self._rejects.pop(0)
            tracked = self._open.pop(oid)
            tracked.transition(OrderStatus.REJECTED)
        out: list[Fill] = []
        # Fills and answers in the exchange's order: by exchange time, a fill before an answer of the same
        # nanosecond (the kernel records an order's fills before the answer that reports them).
        cap = ex.ri.shape[0]
        while True:
            k = self._fill_read
            has_fill = k < ex.ip[I_N_FILLS] and ex.fi[k, FI_TS_LOCAL] <= ts_ns
            r = int(ex.ip[I_RESP_READ])
            has_resp = r < ex.ip[I_N_RESP] and ex.ri[r % cap, R_TS_LOCAL] <= ts_ns
            if has_fill and (not has_resp or ex.fi[k, FI_TS_EXCH] <= ex.ri[r % cap, R_TS_EXCH]):
                out.append(self._take_fill(k))
                self._fill_read = k + 1
            elif has_resp:
                self._take_response(ex.ri[int(next_response(ex, ts_ns))])
            else:
                return out

    def _take_fill(self, k: int) -> Fill:
        ex = self._ex
        row = ex.fi[k]
        oid = self._by_kid[int(row[FI_ID])]
        tracked = self._orders[oid]
        lots = int(row[FI_QTY])
        price = int(row[FI_PRICE]) * self.tick_size
        fill = Fill(
            order_id=oid,
            ts_ns=int(row[FI_TS_EXCH]),
            side=tracked.side,
            qty=lots * self.lot_size,
            price=price,
            fee=float(ex.ff[k, FF_FEE]),
            is_maker=bool(row[FI_MAKER]),
            reason=tracked.reason,
        )
        if tracked.status is OrderStatus.NEW:
            tracked.transition(OrderStatus.ACCEPTED)
        self._filled[oid] += lots
        done = self._filled[oid] >= self._lots[oid]
        tracked.apply_fill(fill, OrderStatus.FILLED if done else OrderStatus.PARTIALLY_FILLED)
        self._fills[oid].append(fill)
        if done:
            self._open.pop(oid, None)
        return fill

    def _take_response(self, row: np.ndarray) -> None:
        oid = self._by_kid[int(row[R_ID])]
        tracked = self._orders[oid]
        if tracked.status.is_terminal or row[R_REJECTED]:
            return  # a fill got there first, or a cancel found the order already gone
        status = _STATUS[int(row[R_STATUS])]
        if status is OrderStatus.EXPIRED:
            tracked.transition(OrderStatus.EXPIRED)
        elif status is OrderStatus.CANCELED:
            if tracked.status is OrderStatus.NEW:
                tracked.transition(OrderStatus.ACCEPTED)
            tracked.transition(OrderStatus.CANCELED)
        else:
            # Accepted (new or modified): fills drive the filled statuses; a modify's answer carries the
            # new price and open quantity.
            if tracked.status is OrderStatus.NEW:
                tracked.transition(OrderStatus.ACCEPTED)
            tracked.limit_price = int(row[R_PRICE]) * self.tick_size
            lots = int(row[R_FILLED]) + int(row[R_LEAVES])
            self._lots[oid] = lots
            tracked.qty = lots * self.lot_size
            return
        self._open.pop(oid, None)
