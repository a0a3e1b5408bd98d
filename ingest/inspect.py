"""Tick-file inspector: counts, time span and book sanity of schema-v1 tick data.

The book checks replay every event through the numba L2 book of :mod:`scalper.lowlevel.book`
and look at the book only at message ends (``FLAG_LAST_IN_MESSAGE``), where a venue's book is
consistent; inside a message it may be transiently one-sided or crossed.
"""

from __future__ import annotations

import dataclasses

import numpy as np
from numba import njit

from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, FLAG_SNAPSHOT, KIND_BOOK, KIND_CLEAR, KIND_TRADE, TickData
from scalper.lowlevel.book import DEFAULT_CAPACITY, book_clear, book_set, new_book, side_index

FIRST_FEW = 5
_KIND_NAMES = {KIND_BOOK: "book", KIND_TRADE: "trade", KIND_CLEAR: "clear"}


def inspect_tickfile(data: TickData, capacity: int = DEFAULT_CAPACITY) -> dict:
    """Summarise ``data``: instrument, time span, event counts and book sanity at message ends.

    Parameters
    ----------
    data : TickData
        Schema-v1 events (see :mod:`scalper.ingest.tickfile`).
    capacity : int
        Levels per side of the replay book; levels beyond it are the worst ones and are counted
        in ``book_overflows`` (the top of book is unaffected).

    Returns
    -------
    dict
        ``instrument`` (dict of the :class:`Instrument` fields), ``events``, ``first_ts`` and
        ``last_ts`` (ISO 8601 UTC with ns, None when empty), ``span_s`` (float seconds),
        ``events_by_kind`` (``{"book", "trade", "clear"}`` -> count), ``snapshots`` (clear
        events), ``snapshot_events`` (events flagged as part of a snapshot), ``messages``
        (events flagged last-in-message), ``two_sided_messages`` (message ends with both sides
        present), ``spread_min_ticks`` (int) and ``spread_median_ticks`` (float) over those (None
        when there are none), ``crossed`` / ``locked`` (message ends with best bid > / == best ask)
        with ``crossed_rows`` / ``locked_rows`` (event row indices of the first
        :data:`FIRST_FEW`), and ``book_overflows``.
    """
    n = len(data)
    is_last = (data.flags & FLAG_LAST_IN_MESSAGE) != 0
    px, sz, nb = new_book(capacity)
    spreads = np.empty(int(np.count_nonzero(is_last)), dtype=np.int64)
    crossed_rows = np.empty(FIRST_FEW, dtype=np.int64)
    locked_rows = np.empty(FIRST_FEW, dtype=np.int64)
    n_spreads, n_crossed, n_locked, overflows = _replay(
        data.kind, data.side, data.price_tick, data.size, data.flags, px, sz, nb, spreads, crossed_rows, locked_rows
    )
    spreads = spreads[:n_spreads]
    kinds = np.bincount(data.kind, minlength=len(_KIND_NAMES))
    return {
        "instrument": dataclasses.asdict(data.instrument),
        "events": n,
        "first_ts": _iso_utc(data.ts_event[0]) if n else None,
        "last_ts": _iso_utc(data.ts_event[-1]) if n else None,
        "span_s": float(data.ts_event[-1] - data.ts_event[0]) / 1e9 if n else 0.0,
        "events_by_kind": {name: int(kinds[k]) for k, name in _KIND_NAMES.items()},
        "snapshots": int(kinds[KIND_CLEAR]),
        "snapshot_events": int(np.count_nonzero(data.flags & FLAG_SNAPSHOT)),
        "messages": int(np.count_nonzero(is_last)),
        "two_sided_messages": int(n_spreads),
        "spread_min_ticks": int(spreads.min()) if n_spreads else None,
        "spread_median_ticks": float(np.median(spreads)) if n_spreads else None,
        "crossed": int(n_crossed),
        "crossed_rows": crossed_rows[: min(n_crossed, FIRST_FEW)].tolist(),
        "locked": int(n_locked),
        "locked_rows": locked_rows[: min(n_locked, FIRST_FEW)].tolist(),
        "book_overflows": int(overflows),
    }


def format_report(d: dict) -> str:
    """Return the summary of :func:`inspect_tickfile` as aligned human-readable lines."""
    inst = d["instrument"]
    by_kind = ", ".join(f"{name} {count:,}" for name, count in d["events_by_kind"].items())
    if d["spread_min_ticks"] is None:
        spread = "n/a (never two-sided at a message end)"
    else:
        spread = f"min {d['spread_min_ticks']}, median {d['spread_median_ticks']:g}"
    rows = [
        ("instrument", f"{inst['venue']} {inst['symbol']} (tick {inst['tick_size']:g}, lot {inst['lot_size']:g})"),
        ("source", inst["source"]),
        ("events", f"{d['events']:,} ({by_kind})"),
        ("first event", d["first_ts"] or "-"),
        ("last event", d["last_ts"] or "-"),
        ("span", f"{d['span_s']:,.3f} s"),
        ("messages", f"{d['messages']:,} ({d['two_sided_messages']:,} with a two-sided book)"),
        ("snapshots", f"{d['snapshots']:,} ({d['snapshot_events']:,} events)"),
        ("spread, ticks", spread),
        ("crossed books", _with_rows(d["crossed"], d["crossed_rows"])),
        ("locked books", _with_rows(d["locked"], d["locked_rows"])),
        ("book overflows", f"{d['book_overflows']:,}"),
    ]
    width = max(len(label) for label, _ in rows)
    return "\n".join(f"{label:<{width}}  {value}" for label, value in rows)


def _with_rows(count: int, rows: list[int]) -> str:
    if not count:
        return "0"
    more = ", ..." if count > len(rows) else ""
    return f"{count:,} (rows {', '.join(map(str, rows))}{more})"


def _iso_utc(ts_ns: np.int64) -> str:
    return np.datetime_as_string(np.datetime64(int(ts_ns), "ns"), unit="ns") + "Z"


@njit(cache=True)
def _replay(kind, side, price_tick, size, flags, px, sz, nb, spreads, crossed_rows, locked_rows):
    """Apply every event to the book; at each message end with both sides present record the
    spread (ticks) and whether the book is crossed or locked.

    Returns (spreads recorded, crossed, locked, book_set overflows).
    """
    n_spreads = 0
    n_crossed = 0
    n_locked = 0
    overflows = 0
    for i in range(kind.shape[0]):
        if kind[i] == KIND_CLEAR:
            book_clear(nb)
        elif kind[i] == KIND_BOOK:
            overflows += book_set(px, sz, nb, side_index(side[i]), price_tick[i], size[i])
        if (flags[i] & FLAG_LAST_IN_MESSAGE) == 0 or nb[0] == 0 or nb[1] == 0:
            continue
        spread = px[1, 0] - px[0, 0]
        spreads[n_spreads] = spread
        n_spreads += 1
        if spread < 0:
            if n_crossed < crossed_rows.shape[0]:
                crossed_rows[n_crossed] = i
            n_crossed += 1
        elif spread == 0:
            if n_locked < locked_rows.shape[0]:
                locked_rows[n_locked] = i
            n_locked += 1
    return n_spreads, n_crossed, n_locked, overflows
