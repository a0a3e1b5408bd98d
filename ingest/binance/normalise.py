"""Binance messages -> schema-v1 tick events (DESIGN.md, "Tick files"), into growable numpy columns.

Mapping:

* A diff (:class:`DepthUpdate`): one ``KIND_BOOK`` event per level, bids (side +1) then asks
  (side -1), price in quote currency, size = the new absolute quantity (0 deletes the level).
* A snapshot (:class:`DepthSnapshot`): one ``KIND_CLEAR`` event (side 0, price 0, size 0) and one
  ``KIND_BOOK`` event per level, all flagged ``FLAG_SNAPSHOT``.
* A trade: one ``KIND_TRADE`` event, side = aggressor: -1 (seller) when the buyer is the maker
  (``m`` true), else +1.
* The last event of every message also carries ``FLAG_LAST_IN_MESSAGE``: the book is consistent
  only at message ends. A diff with no levels emits nothing.

``ts_event`` is the message's ``T`` (transaction / trade time) when it has one, else ``E``, in ns;
``ts_recv`` is the local receive stamp the caller passes, in ns. The two clocks differ: in the
2024 hftbacktest recordings the local stamp is 1.27-1.52 s *earlier* than ``E``
(../shared/data/README.md, "Recorder clock offset"), so order by ``ts_event`` and use ``ts_recv``
only for ordering within one stream and for inter-arrival gaps.
"""

from __future__ import annotations

import numpy as np
from numba import njit

from scalper.ingest.binance.messages import DepthSnapshot, DepthUpdate, Trade
from scalper.ingest.tickfile import (
    COLUMNS,
    FLAG_LAST_IN_MESSAGE,
    FLAG_SNAPSHOT,
    KIND_BOOK,
    KIND_CLEAR,
    KIND_TRADE,
    Instrument,
    TickData,
)

NS_PER_MS = 1_000_000
DEFAULT_CAPACITY = 1 << 16
_NO_LEVELS = np.empty((0, 2), dtype=np.float64)


def event_time_ns(msg: DepthUpdate | DepthSnapshot | Trade) -> int | None:
    """Return the message's exchange time in ns since the epoch: ``T`` if present, else ``E``.

    Returns None for a message with neither (a spot REST snapshot).
    """
    if isinstance(msg, Trade):
        return msg.trade_time_ms * NS_PER_MS
    ms = msg.transaction_time_ms if msg.transaction_time_ms is not None else msg.event_time_ms
    return None if ms is None else ms * NS_PER_MS


class EventBuffer:
    """Schema-v1 event columns that grow as messages are appended (amortised doubling).

    One buffer per instrument. The importer keeps everything and calls :meth:`to_tickdata`; a live
    handler can hand the new rows on (:meth:`columns`) and :meth:`truncate` to 0 after each batch.

    Parameters
    ----------
    capacity : int
        Initial rows allocated.
    """

    __slots__ = ("_cols", "_n")

    def __init__(self, capacity: int = DEFAULT_CAPACITY) -> None:
        self._cols = [np.empty(max(capacity, 1), dtype=dt) for dt in COLUMNS.values()]
        self._n = 0

    def __len__(self) -> int:
        return self._n

    def append_diff(self, diff: DepthUpdate, ts_recv_ns: int, ts_event_ns: int | None = None) -> None:
        """Append the level events of one diff.

        Parameters
        ----------
        diff : DepthUpdate
        ts_recv_ns : int
            Local receive time, ns since the epoch.
        ts_event_ns : int, optional
            Overrides the message's own time (:func:`event_time_ns`), ns.
        """
        t_event = event_time_ns(diff) if ts_event_ns is None else ts_event_ns
        self._put_book(diff.bids, diff.asks, t_event, ts_recv_ns, 0, False)

    def append_snapshot(self, snapshot: DepthSnapshot, ts_event_ns: int, ts_recv_ns: int) -> None:
        """Append a clear and the snapshot's levels, all flagged FLAG_SNAPSHOT.

        Parameters
        ----------
        snapshot : DepthSnapshot
        ts_event_ns : int
            Exchange time to give the snapshot, ns (spot snapshots carry none, so the caller decides).
        ts_recv_ns : int
            Local receive time of the REST reply, ns.
        """
        self._put_book(snapshot.bids, snapshot.asks, ts_event_ns, ts_recv_ns, FLAG_SNAPSHOT, True)

    def append_clear(self, ts_event_ns: int, ts_recv_ns: int) -> None:
        """Append a lone book clear (a message of its own, not flagged FLAG_SNAPSHOT).

        A live handler writes it when its book becomes invalid (gap, crossed book): until the next
        snapshot, whoever replays the events holds no book rather than a wrong one.
        """
        self._put_book(_NO_LEVELS, _NO_LEVELS, ts_event_ns, ts_recv_ns, 0, True)

    def append_trade(self, trade: Trade, ts_recv_ns: int) -> None:
        """Append one trade event (ts_event from ``T``), a message of its own."""
        self._reserve(1)
        i = self._n
        te, tr, kind, side, price, size, flags = self._cols
        te[i] = trade.trade_time_ms * NS_PER_MS
        tr[i] = ts_recv_ns
        kind[i] = KIND_TRADE
        side[i] = -1 if trade.buyer_is_maker else 1
        price[i] = trade.price
        size[i] = trade.qty
        flags[i] = FLAG_LAST_IN_MESSAGE
        self._n = i + 1

    def truncate(self, n: int = 0) -> None:
        """Forget every row from ``n`` on (0 <= n <= len).

        Raises
        ------
        ValueError
            If ``n`` is out of range.
        """
        if not 0 <= n <= self._n:
            raise ValueError(f"cannot truncate {self._n} rows to {n}")
        self._n = n

    def columns(self) -> dict[str, np.ndarray]:
        """Return views of the filled rows, by schema column name, in append order.

        The views are invalidated by the next append that grows the buffer.
        """
        return {name: col[: self._n] for name, col in zip(COLUMNS, self._cols, strict=True)}

    def to_tickdata(self, instrument: Instrument) -> TickData:
        """Return a copy of the rows as :class:`TickData`, stably sorted by ``ts_event``.

        Stable: messages keep their append order on equal times, and the rows of a message share
        one time, so each message stays contiguous. Book messages keep their order as long as their
        times never decrease (the importer makes sure of that); trades merge in by time.
        """
        n = self._n
        order = np.argsort(self._cols[0][:n], kind="stable")
        cols = {name: np.ascontiguousarray(col[:n][order]) for name, col in zip(COLUMNS, self._cols, strict=True)}
        return TickData(instrument=instrument, **cols)

    def _reserve(self, k: int) -> None:
        need = self._n + k
        cap = self._cols[0].shape[0]
        if need <= cap:
            return
        cap = max(2 * cap, need)
        grown = []
        for col in self._cols:
            new = np.empty(cap, dtype=col.dtype)
            new[: self._n] = col[: self._n]
            grown.append(new)
        self._cols = grown

    def _put_book(self, bids, asks, t_event, t_recv, flags, with_clear) -> None:
        self._reserve(bids.shape[0] + asks.shape[0] + (1 if with_clear else 0))
        # The seven columns spread from a list: mypy cannot count them against the kernel's parameters.
        self._n = _put_book(*self._cols, self._n, bids, asks, t_event, t_recv, flags, with_clear)  # type: ignore[call-arg]


@njit(cache=True)
def _put_book(ts_event, ts_recv, kind, side, price, size, flags, at, bids, asks, t_event, t_recv, flag, with_clear):
    # One message: [clear,] bids, asks; the last row gets FLAG_LAST_IN_MESSAGE. Returns the new length.
    start = at
    if with_clear:
        ts_event[at] = t_event
        ts_recv[at] = t_recv
        kind[at] = KIND_CLEAR
        side[at] = 0
        price[at] = 0.0
        size[at] = 0.0
        flags[at] = flag
        at += 1
    at = _put_side(ts_event, ts_recv, kind, side, price, size, flags, at, bids, 1, t_event, t_recv, flag)
    at = _put_side(ts_event, ts_recv, kind, side, price, size, flags, at, asks, -1, t_event, t_recv, flag)
    if at > start:
        flags[at - 1] |= FLAG_LAST_IN_MESSAGE
    return at


@njit(cache=True, inline="always")
def _put_side(ts_event, ts_recv, kind, side, price, size, flags, at, levels, s, t_event, t_recv, flag):
    for j in range(levels.shape[0]):
        ts_event[at] = t_event
        ts_recv[at] = t_recv
        kind[at] = KIND_BOOK
        side[at] = s
        price[at] = levels[j, 0]
        size[at] = levels[j, 1]
        flags[at] = flag
        at += 1
    return at
