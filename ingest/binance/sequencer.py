"""Binance diff-depth sequencing: which depth events to apply to a local book, and when it is invalid.

Pure bookkeeping over update ids: no I/O, no book, no clock. The live feed handler and the
recording importer run the same object, so a recording replays exactly what the daemon would do.
"""

from __future__ import annotations

from collections import deque
from enum import Enum, StrEnum

import numpy as np

from scalper.ingest.binance.messages import DepthSnapshot, DepthUpdate, Market
from scalper.lowlevel.jit import inline_kernel

DEFAULT_MAX_BUFFER = 10_000

# Slots of BinanceOrderBookSequencer.ids: what the hot path needs to continue the book from ids alone.
ID_LAST_U = 0  # u of the last diff handed back; -1 before the first one after a snapshot
ID_SYNCED = 1  # 1 in SYNCED, else 0
ID_FUTURES = 2  # 1: futures rule (pu chains the diffs), 0: spot rule (U = last u + 1)
N_IDS = 3


@inline_kernel
def continues(ids, first_update_id, final_update_id, prev_final_update_id):
    """True when a diff with these ids plainly continues the synced book (:func:`continue_ids`
    without taking it)."""
    last_u = ids[ID_LAST_U]
    if ids[ID_SYNCED] == 0 or last_u < 0 or final_update_id <= last_u:
        return False
    if ids[ID_FUTURES]:
        return prev_final_update_id == last_u
    return first_update_id == last_u + 1


@inline_kernel
def continue_ids(ids, first_update_id, final_update_id, prev_final_update_id):
    """Accept a diff given only its ids when it plainly continues a synced book; else change nothing.

    Parameters
    ----------
    ids : ndarray
        int64[N_IDS], :attr:`BinanceOrderBookSequencer.ids`; ``ids[ID_LAST_U]`` becomes ``u`` on success.
    first_update_id, final_update_id, prev_final_update_id : int
        ``U``, ``u`` and ``pu`` of the diff (``pu`` is -1 on spot streams, which have none).

    Returns
    -------
    bool
        True: apply the diff now, exactly as :meth:`BinanceOrderBookSequencer.on_diff` would have
        returned ``[diff]``. False (not synced, first diff after the snapshot, stale, gap): nothing
        changed; the caller passes the parsed diff to ``on_diff``, which decides and counts.
    """
    if not continues(ids, first_update_id, final_update_id, prev_final_update_id):
        return False
    ids[ID_LAST_U] = final_update_id
    return True


class SyncState(Enum):
    """Where the sequencer is in Binance's procedure."""

    AWAITING_SNAPSHOT = "awaiting_snapshot"
    """Diffs are buffered until :meth:`BinanceOrderBookSequencer.on_snapshot`."""
    SYNCED = "synced"
    """The caller's book is valid (the snapshot, plus every diff handed back so far)."""
    INVALID = "invalid"
    """The book is unusable (see ``invalid_reason``); call ``reset()`` and fetch a new snapshot."""


class SyncReason(StrEnum):
    """Keys of :attr:`BinanceOrderBookSequencer.counters`; GAP, SNAPSHOT_TOO_OLD, CROSSED and REJECTED
    also name why the sequencer became INVALID."""

    GAP = "gaps"
    """A diff does not continue the previous one (spot ``U != u_prev + 1``, futures ``pu != u_prev``)."""
    STALE_DROPPED = "stale_dropped"
    """A diff entirely at or before the book's update id (older than the snapshot, or a repeat)."""
    BUFFERED = "buffered"
    """A diff held while waiting for the snapshot."""
    BUFFER_OVERFLOW = "buffer_overflow"
    """The oldest buffered diff was discarded because the buffer was full."""
    SNAPSHOT_TOO_OLD = "snapshot_too_old"
    """The first diff after the snapshot starts beyond it: updates in between are missing."""
    CROSSED = "crossed"
    """The owner found its book crossed or locked (:meth:`BinanceOrderBookSequencer.invalidate`)."""
    REJECTED = "rejected_diff"
    """The owner refused the levels of a diff this sequencer had handed back (a price or size no book
    may hold): its book misses that diff (:meth:`BinanceOrderBookSequencer.invalidate`)."""
    DROPPED_WHILE_INVALID = "dropped_while_invalid"
    """A diff discarded because the sequencer was INVALID."""
    RESYNC = "resyncs"
    """:meth:`BinanceOrderBookSequencer.reset` calls."""


INVALIDATING = frozenset({SyncReason.GAP, SyncReason.SNAPSHOT_TOO_OLD, SyncReason.CROSSED, SyncReason.REJECTED})


class BinanceOrderBookSequencer:
    """Binance's "How to manage a local order book correctly", for one symbol's diff-depth stream.

    Binance's steps, spot (Spot API docs, WebSocket Streams, "How to manage a local order book
    correctly"; the long-standing wording, which the current one restates as an update procedure):

    1. Open a stream to ``<symbol>@depth`` (or ``@depth@100ms``).
    2. Buffer the events you receive from the stream.
    3. Get a depth snapshot from ``GET /api/v3/depth?symbol=...&limit=1000`` (or 5000).
    4. Drop any event where ``u`` is <= ``lastUpdateId`` in the snapshot.
    5. The first processed event should have ``U <= lastUpdateId + 1`` AND ``u >= lastUpdateId + 1``.
    6. While listening to the stream, each new event's ``U`` should be equal to the previous
       event's ``u + 1``.
    7. The data in each event is the absolute quantity for a price level.
    8. If the quantity is 0, remove the price level.
    9. Receiving an event that removes a price level that is not in your local order book can
       happen and is normal.

    The current spot page adds: if the snapshot's ``lastUpdateId`` is below the ``U`` of the first
    buffered event, get a new snapshot (here: INVALID with SNAPSHOT_TOO_OLD); when applying, ignore
    an event whose ``u`` is <= the book's update id, and restart if its ``U`` is > the book's id + 1.

    Futures, USD-M and COIN-M alike (Derivatives docs, USDⓈ-M / COIN-M Futures, WebSocket Market
    Streams, "How to manage a local order book correctly"):

    1. Open a stream to ``<symbol>@depth`` (``fstream`` / ``dstream``).
    2. Buffer the events you receive from the stream. For the same price, the latest received
       update covers the previous one.
    3. Get a depth snapshot from ``GET /fapi/v1/depth`` (COIN-M ``/dapi/v1/depth``), limit 1000.
    4. Drop any event where ``u`` is < ``lastUpdateId`` in the snapshot.
    5. The first processed event should have ``U <= lastUpdateId`` AND ``u >= lastUpdateId``.
    6. While listening to the stream, each new event's ``pu`` should be equal to the previous
       event's ``u``, otherwise initialise the process from step 3.
    7-9. As spot.

    Where they differ: spot drops ``u <= lastUpdateId`` and needs ``U <= lastUpdateId + 1 <= u``,
    then ``U == u_prev + 1``; futures drop ``u < lastUpdateId`` and need ``U <= lastUpdateId <= u``,
    then ``pu == u_prev`` (futures ids are not contiguous between events, hence ``pu``).

    Futures step 5 also accepts here a first diff with ``pu == lastUpdateId`` (and so
    ``U > lastUpdateId``): a snapshot taken exactly at an event boundary, whose event ending at
    ``lastUpdateId`` went by before the resync started buffering. Step 5 as written assumes that
    event is still buffered; ``pu`` proves the next one continues the snapshot exactly, as step 6
    accepts any later diff. Refusing it made every resync on a quiet stream fail (SNAPSHOT_TOO_OLD
    at each diff, one REST request each). Spot needs no such case: its ids are contiguous, so the
    next event's ``U == lastUpdateId + 1`` already passes.

    This object does steps 2 and 4-6 for either market. It also drops, as stale, a diff after the
    first whose ``u`` is <= the previous ``u`` (a repeated frame: its quantities are already in
    the book), which the current spot update procedure prescribes and which is harmless for
    futures. Any other break is a gap, including a spot diff that overlaps the previous one
    (``U <= u_prev < u``): the current spot wording would apply it, but a well-formed stream never
    sends one, so it is taken as a sign of a broken stream.

    Usage (the owner holds the book and does the I/O)::

        seq = BinanceOrderBookSequencer(Market.USDM)
        # for each depth message:   for d in seq.on_diff(msg): apply d to the book
        # when the REST reply comes: set the book to the snapshot, then
        #                            for d in seq.on_snapshot(snap): apply d to the book
        # book crossed at a message end: seq.invalidate(SyncReason.CROSSED)
        # seq.state is INVALID:       seq.reset(); request a new snapshot; keep calling on_diff

    While the state is SYNCED the book is valid; trade only then. After ``reset()`` incoming
    diffs are buffered again, so request the snapshot right after resetting.

    Parameters
    ----------
    market : Market
        Selects the spot or the futures rules.
    max_buffer : int
        Diffs held while AWAITING_SNAPSHOT; beyond it the oldest is discarded and counted
        (BUFFER_OVERFLOW). The snapshot requested after the discarded diffs is newer than them.

    Attributes
    ----------
    market : Market
    counters : dict of SyncReason to int
        How often each :class:`SyncReason` happened since construction (``reset()`` keeps them).
    ids : ndarray
        int64[N_IDS]: the last ``u``, whether SYNCED and which rule applies, kept by this object for
        :func:`continue_ids`, which a numba hot path calls on them directly.
    """

    __slots__ = (
        "market",
        "_futures",
        "_max_buffer",
        "_buffer",
        "_state_",
        "_invalid_reason",
        "_snapshot_id",
        "ids",
        "_rejected",
        "counters",
    )

    def __init__(self, market: Market, max_buffer: int = DEFAULT_MAX_BUFFER) -> None:
        if max_buffer < 1:
            raise ValueError(f"max_buffer must be >= 1, got {max_buffer}")
        self.market = Market(market)
        self._futures = self.market.is_futures
        self._max_buffer = max_buffer
        self._buffer: deque[DepthUpdate] = deque()
        self.ids = np.zeros(N_IDS, dtype=np.int64)
        self.ids[ID_FUTURES] = 1 if self._futures else 0
        self._state = SyncState.AWAITING_SNAPSHOT
        self._invalid_reason: SyncReason | None = None
        self._snapshot_id: int | None = None
        self._last_u = None
        self._rejected: tuple[int, DepthUpdate] | None = None
        self.counters: dict[SyncReason, int] = dict.fromkeys(SyncReason, 0)

    @property
    def state(self) -> SyncState:
        """Return the current state."""
        return self._state

    # The state and the last u live where the hot path reads them (ids); these keep the Python view.
    @property
    def _state(self) -> SyncState:
        return self._state_

    @_state.setter
    def _state(self, state: SyncState) -> None:
        self._state_ = state
        self.ids[ID_SYNCED] = 1 if state is SyncState.SYNCED else 0

    @property
    def _last_u(self) -> int | None:
        u = int(self.ids[ID_LAST_U])
        return None if u < 0 else u

    @_last_u.setter
    def _last_u(self, u: int | None) -> None:
        self.ids[ID_LAST_U] = -1 if u is None else u

    @property
    def invalid_reason(self) -> SyncReason | None:
        """Return why the state is INVALID (GAP, SNAPSHOT_TOO_OLD, CROSSED or REJECTED), else None."""
        return self._invalid_reason

    @property
    def last_update_id(self) -> int | None:
        """Return the update id the owner's book is at: ``u`` of the last diff handed back, or the
        snapshot's ``lastUpdateId`` before the first; None unless SYNCED."""
        if self._state is not SyncState.SYNCED:
            return None
        return self._snapshot_id if self._last_u is None else self._last_u

    @property
    def rejection(self) -> tuple[int, DepthUpdate] | None:
        """Return ``(book update id, diff)`` for the diff that revealed the GAP or SNAPSHOT_TOO_OLD
        of the INVALID state (the id is the snapshot's for SNAPSHOT_TOO_OLD), else None."""
        return self._rejected

    @property
    def buffered(self) -> int:
        """Return the number of diffs held while awaiting the snapshot."""
        return len(self._buffer)

    def on_diff(self, diff: DepthUpdate) -> list[DepthUpdate]:
        """Take one depth event from the stream; return the events to apply now, in order.

        Returns
        -------
        list of DepthUpdate
            ``[diff]`` when it continues the book; ``[]`` while buffering (AWAITING_SNAPSHOT), for
            a stale diff, while INVALID, or when ``diff`` reveals a gap or a too-old snapshot (the
            state is then INVALID and the matching counter is incremented).
        """
        if self._state is SyncState.SYNCED:
            return [diff] if self._accept(diff) else []
        if self._state is SyncState.AWAITING_SNAPSHOT:
            if len(self._buffer) == self._max_buffer:
                self._buffer.popleft()
                self.counters[SyncReason.BUFFER_OVERFLOW] += 1
            self._buffer.append(diff)
            self.counters[SyncReason.BUFFERED] += 1
        else:
            self.counters[SyncReason.DROPPED_WHILE_INVALID] += 1
        return []

    def on_snapshot(self, snapshot: DepthSnapshot) -> list[DepthUpdate]:
        """Take the REST snapshot the caller has just set its book to; return the buffered diffs
        to apply on top of it, in order.

        Stale buffered diffs are dropped. If none of them reaches the snapshot, the state becomes
        SYNCED at ``lastUpdateId`` and the next diff from :meth:`on_diff` must straddle it (futures: or
        have ``pu == lastUpdateId``). If the first diff that is not stale starts beyond the snapshot
        (futures: and its ``pu`` is not the snapshot's id), the state becomes INVALID with
        SNAPSHOT_TOO_OLD and ``[]`` is returned; a gap among the buffered diffs gives INVALID with
        GAP and ``[]``.

        Raises
        ------
        RuntimeError
            Unless the state is AWAITING_SNAPSHOT (call :meth:`reset` first).
        """
        if self._state is not SyncState.AWAITING_SNAPSHOT:
            raise RuntimeError(f"on_snapshot needs state AWAITING_SNAPSHOT, not {self._state.name}; call reset() first")
        self._state = SyncState.SYNCED
        self._snapshot_id = snapshot.last_update_id
        self._last_u = None
        buffered, self._buffer = self._buffer, deque()
        out = []
        for diff in buffered:
            if self._accept(diff):
                out.append(diff)
            elif self._state is SyncState.INVALID:
                return []
        return out

    def invalidate(self, reason: SyncReason) -> None:
        """Mark the book unusable for ``reason`` (the owner calls it with CROSSED or REJECTED) and count it.

        Raises
        ------
        ValueError
            If ``reason`` is not GAP, SNAPSHOT_TOO_OLD, CROSSED or REJECTED.
        """
        reason = SyncReason(reason)
        if reason not in INVALIDATING:
            names = ", ".join(sorted(r.name for r in INVALIDATING))
            raise ValueError(f"{reason.name} does not invalidate a book; use one of {names}")
        self._state = SyncState.INVALID
        self._invalid_reason = reason
        self._rejected = None
        self._buffer.clear()
        self.counters[reason] += 1

    def reset(self) -> None:
        """Start a resync: forget the book's ids and buffer incoming diffs until the next snapshot."""
        self._state = SyncState.AWAITING_SNAPSHOT
        self._invalid_reason = None
        self._rejected = None
        self._snapshot_id = None
        self._last_u = None
        self._buffer.clear()
        self.counters[SyncReason.RESYNC] += 1

    def _accept(self, d: DepthUpdate) -> bool:
        # In SYNCED: True to apply d; False when stale (counted) or on a break (state -> INVALID).
        last_u = self._last_u
        if last_u is None:
            # SYNCED implies a snapshot id; the annotation states it without a check on the per-diff path.
            snap: int = self._snapshot_id  # type: ignore[assignment]
            # Spot's "+ 1": a spot snapshot at lastUpdateId already contains that update.
            first_needed = snap if self._futures else snap + 1
            if d.final_update_id < first_needed:
                self.counters[SyncReason.STALE_DROPPED] += 1
                return False
            if d.first_update_id > first_needed and not (self._futures and d.prev_final_update_id == snap):
                self._reject(d, SyncReason.SNAPSHOT_TOO_OLD)
                return False
        else:
            if d.final_update_id <= last_u:
                self.counters[SyncReason.STALE_DROPPED] += 1
                return False
            continues = d.prev_final_update_id == last_u if self._futures else d.first_update_id == last_u + 1
            if not continues:
                self._reject(d, SyncReason.GAP)
                return False
        self._last_u = d.final_update_id
        return True

    def _reject(self, d: DepthUpdate, reason: SyncReason) -> None:
        # Keep the evidence for the owner's log: invalidate() itself is also the owner's call.
        # Only _accept calls this, in SYNCED, where a snapshot id is set.
        book_u: int = self._snapshot_id if self._last_u is None else self._last_u  # type: ignore[assignment]
        self.invalidate(reason)
        self._rejected = (book_u, d)
