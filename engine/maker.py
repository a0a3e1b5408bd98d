"""Maker mode: the engine core posting its entries and take-profits instead of crossing the spread.

``[strategy] mode = "maker"`` builds a :class:`MakerCore` instead of an
:class:`~scalper.engine.core.EngineCore` (chosen once, at construction; the taker core is unchanged).
It trades on a venue with resting orders and queue estimates (:class:`MakerVenue`; in a backtest the
passive simulated exchange, :mod:`scalper.exec.passive_venue`).

The rules, per decision at grid time ``g`` (orders leave at ``g + decision_compute_ns``):

* Flat with no entry working: the model's call (side, ``p``, horizon) is sized by Kelly at the price it
  would post at (:meth:`~scalper.risk.limits.RiskManager.enter_at_price`, maker fees on the entry and the
  take-profit, taker on the stop-loss: :class:`~scalper.risk.kelly.PlannedFees`). The price is the touch
  on the call's side (best bid to buy, best ask to sell), or one tick inside when the spread is at least
  ``inside_min_spread_ticks`` (config; 0 never). An approved entry is posted (post-only) unless the
  queue rule says it would not fill in time.
* Queue rule: an order with ``Q`` base units ahead of it is unlikely to fill within the horizon ``H``
  when ``Q >= V * H / W``, ``V`` being the volume traded by the other side (the aggressors that would
  fill it) over the last ``W = queue_window_s`` seconds. Before posting, ``Q`` is the book's size at the
  price (0 one tick inside); while resting, the venue's queue-model estimate.
* An entry working: cancelled when the call flips side or Kelly no longer sizes it (the signal faded),
  or when the queue rule fails; re-quoted (cancel-replace at the new price, the fresh Kelly size) when
  the touch has moved away from it.
* Filled (any part): the rest of the entry is cancelled; once it is final, the position's take-profit
  is posted (post-only) at the take-profit level; the stop-loss is watched on the exit-side best price
  and crosses (IOC) once the take-profit order is cancelled; so does the time stop at the horizon. A
  take-profit refused because it would cross (the market went through it) is taken with an IOC.

Every request travels with the venue's latency, so a cancel can meet a fill: the position is whatever
was filled, and the exits follow it.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from scalper.engine.core import EngineCore
from scalper.exec.orders import Fill, Order, OrderStatus
from scalper.features.kernels import INT64_MAX, INT64_MIN
from scalper.risk.intent import OrderIntent, Rejection, TimeInForce

_NS_PER_S = 1_000_000_000


class MakerVenue(Protocol):
    """What maker mode needs from its venue beyond :class:`~scalper.exec.adapter.ExecutionAdapter`."""

    def modify(self, order_id: int, price: float, qty: float, ts_ns: int) -> bool:
        """Cancel-replace ``order_id`` at ``ts_ns``: new limit ``price`` (quote) and open ``qty`` (base units)."""

    def queue_ahead(self, order_id: int) -> float:
        """Base units ahead of a resting order at its price (0 when not resting)."""

    def traded_volume(self, aggressor: int, from_ns: int, to_ns: int) -> float:
        """Base units traded by ``aggressor`` (+1 / -1) in ``(from_ns, to_ns]``."""


class MakerCore(EngineCore):
    """:class:`~scalper.engine.core.EngineCore` in maker mode (module docstring for the rules).

    Parameters
    ----------
    *args, **kwargs
        As :class:`~scalper.engine.core.EngineCore`; its ``adapter`` must also be a :class:`MakerVenue`.
    inside_min_spread_ticks : int
        Post one tick inside the touch when the spread is at least this many ticks; 0 never (>= 2 otherwise).
    queue_window_s : float
        Trailing window of the traded volume the queue rule reads, s, > 0.

    Attributes
    ----------
    posted, requoted, canceled_fade, canceled_queue, withheld_queue : int
        Entries posted, re-quoted, cancelled because the signal faded, cancelled and not posted (after
        approval) because of the queue rule.

    Raises
    ------
    ValueError
        A maker setting out of range.
    TypeError
        If the adapter is not a :class:`MakerVenue`.
    """

    def __init__(self, *args, inside_min_spread_ticks: int = 0, queue_window_s: float = 60.0, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        if inside_min_spread_ticks == 1 or inside_min_spread_ticks < 0 or not queue_window_s > 0.0:
            raise ValueError(
                "MakerCore needs inside_min_spread_ticks 0 or >= 2 and queue_window_s > 0;"
                f" got {inside_min_spread_ticks!r}, {queue_window_s!r}"
            )
        if not all(callable(getattr(self.adapter, m, None)) for m in ("modify", "queue_ahead", "traded_volume")):
            raise TypeError(f"maker mode needs a venue with resting orders; got {type(self.adapter).__name__}")
        self.venue: MakerVenue = self.adapter  # type: ignore[assignment]
        self.inside_min_spread_ticks = int(inside_min_spread_ticks)
        self.queue_window_ns = int(queue_window_s * _NS_PER_S)
        self.entry: Order | None = None
        self.exit_order: Order | None = None
        self._canceling: set[int] = set()
        self.posted = 0
        self.requoted = 0
        self.canceled_fade = 0
        self.canceled_queue = 0
        self.withheld_queue = 0

    # -- decisions -----------------------------------------------------------------------------
    def can_enter(self, ts_ns: int) -> bool:
        """True when a decision at ``ts_ns`` can post, re-quote or cancel an entry: trading has started and
        no position is open (a working entry does not stop the decision, unlike taker mode)."""
        return ts_ns >= self.trade_from_ns and self.position is None and self.risk.account.position == 0.0

    def is_quiet(self) -> bool:
        """True when a decision only marks the position: a position is open, its entry is final and no exit
        is waiting (the take-profit rests or is on its way; fills and the stop-loss arrive as wakes and
        watches)."""
        return self.position is not None and self.pending_exit_reason is None and self.entry is None

    def on_signal(self, ts_ns: int, classes, p: float, side: int, horizon_ns: int) -> None:
        """Record and mark as the taker core does, then post, re-quote or cancel the entry (module docstring)."""
        records = self.predictions
        if records is not None:
            assert isinstance(records.ts, list) and isinstance(records.classes, list)
            records.ts.append(ts_ns)
            records.classes.append(np.array(classes, dtype=np.int8))
        self._mark_open()
        if not self.can_enter(ts_ns):
            return
        entry = self.entry
        if entry is not None and (entry.status is OrderStatus.NEW or entry.order_id in self._canceling):
            return  # its answer is on the way
        target = self._post_tick(side)
        if target is None:
            return
        send = ts_ns + self.decision_compute_ns
        tick = self.instrument.tick_size
        if entry is None:
            decision = self.risk.enter_at_price(
                ts_ns, side, p, target, tick, self.state.px, self.state.n, self.state.ist
            )
            if isinstance(decision, Rejection):
                return
            if not self._fill_likely(self._ahead_at(side, target), side, horizon_ns, ts_ns):
                self.withheld_queue += 1
                return
            self._busy_until_ns = send
            self._entry_horizon_ns = horizon_ns
            self.entry = self.adapter.submit(decision, send)
            self.posted += 1
            return
        self._busy_until_ns = send
        if side != entry.side or self.risk.size_entry(p, target * tick)[0] <= 0.0:
            self._cancel(entry, send)
            self.canceled_fade += 1
            return
        if round(entry.limit_price / tick) != target:
            decision = self.risk.enter_at_price(
                ts_ns, side, p, target, tick, self.state.px, self.state.n, self.state.ist
            )
            if isinstance(decision, Rejection):
                self._cancel(entry, send)
                self.canceled_fade += 1
                return
            self._entry_horizon_ns = horizon_ns
            self.venue.modify(entry.order_id, decision.intent.limit_price, decision.intent.qty, send)
            self.requoted += 1
            return
        if not self._fill_likely(self.venue.queue_ahead(entry.order_id), side, horizon_ns, ts_ns):
            self._cancel(entry, send)
            self.canceled_queue += 1

    def _post_tick(self, side: int) -> int | None:
        # The price to post at (ticks): the touch on the call's side, or one tick inside a wide spread.
        st = self.state
        if not st.is_valid or st.n[0] == 0 or st.n[1] == 0:
            return None
        bid, ask = st.best_bid_tick, st.best_ask_tick
        inside = self.inside_min_spread_ticks > 0 and ask - bid >= self.inside_min_spread_ticks
        if side > 0:
            return bid + 1 if inside else bid
        return ask - 1 if inside else ask

    def _ahead_at(self, side: int, tick: int) -> float:
        # The book's size at our price, base units: the queue a new order joins at the back of.
        st = self.state
        row = 0 if side > 0 else 1
        return float(st.sz[row, 0]) if st.n[row] > 0 and int(st.px[row, 0]) == tick else 0.0

    def _fill_likely(self, ahead: float, side: int, horizon_ns: int, ts_ns: int) -> bool:
        # Queue rule: the other side's traded volume over the window, scaled to the horizon, must exceed
        # what is ahead of us.
        volume = self.venue.traded_volume(-side, ts_ns - self.queue_window_ns, ts_ns)
        return ahead < volume * horizon_ns / self.queue_window_ns

    # -- orders and fills ----------------------------------------------------------------------
    def _cancel(self, order: Order, ts_ns: int) -> None:
        if order.order_id not in self._canceling and self.adapter.cancel(order.order_id, ts_ns):
            self._canceling.add(order.order_id)

    def on_wake(self, ts_ns: int) -> None:
        """Deliver what the venue answered, run a due time stop, then follow up the orders (module docstring)."""
        super().on_wake(ts_ns)
        self._manage(ts_ns)

    def _manage(self, ts_ns: int) -> None:
        # React to the orders' answers: forget final orders, take a take-profit that would have crossed,
        # cancel an entry remainder once filled, post the take-profit, send a waiting exit.
        tp = self.exit_order
        crossed = tp is not None and tp.status is OrderStatus.EXPIRED
        self._forget_final()
        if self.position is None:
            return
        if crossed and self.pending_exit_reason is None:
            self._exit(ts_ns, "take_profit")  # the market went through the take-profit: take it
        if self.entry is not None:
            self._cancel(self.entry, self._send_ns(ts_ns))
        elif self.pending_exit_reason is not None:
            self._retry_exit(ts_ns)
        elif self.exit_order is None:
            self._post_take_profit(ts_ns)

    def _post_take_profit(self, ts_ns: int) -> None:
        pos = self.position
        qty = self.risk.account.position
        assert pos is not None
        price = pos.take_profit_tick * self.instrument.tick_size
        intent = OrderIntent(ts_ns, -pos.side, abs(qty), price, True, "take_profit", TimeInForce.GTX)
        decision = self.risk.check(intent, self._market(ts_ns))
        if not isinstance(decision, Rejection):
            self.exit_order = self.adapter.submit(decision, self._send_ns(ts_ns))

    def _sync_position(self, last: Fill) -> None:
        # As the taker core, but only the stop-loss is watched: the take-profit rests at the venue.
        had = self.position
        super()._sync_position(last)
        pos = self.position
        if pos is None or pos is had:
            return
        if pos.side > 0:  # a long stops out on the bid
            self.state.set_watch(INT64_MAX, pos.stop_loss_tick, INT64_MAX, INT64_MIN)
        else:  # a short on the ask
            self.state.set_watch(INT64_MAX, INT64_MIN, pos.stop_loss_tick, INT64_MIN)

    def on_watch(self, ts_ns: int) -> None:
        """The stop-loss level was reached (the only watch armed), or the book became valid while an exit waited."""
        if self.pending_exit_reason is not None:
            self._retry_exit(ts_ns)
            return
        if self.position is None:
            self.state.clear_watch()
            return
        self._exit(ts_ns, "stop_loss")

    def _exit(self, ts_ns: int, reason: str) -> None:
        # Cancel what rests (the take-profit, an entry remainder) first; the IOC goes out once they are
        # final (_manage -> _retry_exit), so it never sells what the take-profit already sold.
        if self.adapter.has_open_orders():
            self.pending_exit_reason = reason
            self.state.clear_watch()
            send = self._send_ns(ts_ns)
            for order in self.adapter.open_orders():
                self._cancel(order, send)
            return
        super()._exit(ts_ns, reason)

    def finish(self, ts_ns: int, max_attempts: int = 10) -> None:
        """Cancel what rests at the end of the data, then close any position with IOC exits as the taker
        core does (up to ``max_attempts`` exits); answers are delivered as they come."""
        send = self._send_ns(ts_ns)
        for order in self.adapter.open_orders():
            self._cancel(order, send)
        for _ in range(4 * max_attempts):
            if self.risk.account.position != 0.0 and not self.adapter.has_open_orders():
                if max_attempts == 0:
                    break
                max_attempts -= 1
                super()._exit(ts_ns, "end_of_data")
            wake = self.adapter.next_wake_ns()
            if wake is None:
                break
            ts_ns = max(ts_ns, wake)
            self._deliver(ts_ns)
            self._forget_final()

    def _forget_final(self) -> None:
        for name in ("entry", "exit_order"):
            order = getattr(self, name)
            if order is not None and order.status.is_terminal:
                self._canceling.discard(order.order_id)
                setattr(self, name, None)
