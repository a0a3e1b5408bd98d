"""The session clock of feature set v2: when a venue's trading session opens and closes.

Equity venues trade a regular session, 09:30-16:00 America/New_York (NASDAQ, NYSE: their published
regular market hours; daylight saving time follows the IANA time-zone database). Other venues
(crypto: Binance and the like) trade 24/7: their time of day counts from UTC midnight and they have no
close. The venue is the tick file's ``venue`` metadata (``ingest/tickfile.py``).
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

EQUITY_VENUES = frozenset({"NASDAQ", "NYSE", "ARCA", "BATS", "IEX"})
_NEW_YORK = ZoneInfo("America/New_York")
_OPEN = dt.time(9, 30)
_CLOSE = dt.time(16, 0)


@dataclass(frozen=True)
class SessionClock:
    """One session's clock: ``open_ns`` and ``close_ns`` (ns since the epoch, UTC) for an equity session;
    ``all_day`` True for a 24/7 venue, whose time of day counts from UTC midnight (both times 0)."""

    open_ns: int
    close_ns: int
    all_day: bool


ALL_DAY = SessionClock(0, 0, True)


def session_clock(venue: str, ts_ns: int) -> SessionClock:
    """The session of ``venue`` on the New York calendar day of ``ts_ns`` (ns since the epoch).

    Returns :data:`ALL_DAY` for any venue not in :data:`EQUITY_VENUES`.
    """
    if venue.upper() not in EQUITY_VENUES:
        return ALL_DAY
    day = dt.datetime.fromtimestamp(ts_ns / 1e9, tz=dt.UTC).astimezone(_NEW_YORK).date()

    def at(t: dt.time) -> int:
        local = dt.datetime.combine(day, t, tzinfo=_NEW_YORK)
        return int(local.timestamp()) * 1_000_000_000

    return SessionClock(at(_OPEN), at(_CLOSE), False)
