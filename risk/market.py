"""The market facts the pre-trade checks need, handed over by the engine at decision time."""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from scalper.features.kernels import INT64_MAX, INT64_MIN
from scalper.features.state_layout import book_is_valid, last_book_ts


class MarketState(NamedTuple):
    """Book state of one instrument as the risk layer sees it when an order intent is checked.

    Attributes
    ----------
    ts_ns : int
        Now: ns since the epoch, UTC (event time in a backtest, wall clock live). Book age and the
        orders-per-second window are measured from it.
    best_bid, best_ask : float
        Top of book, quote currency per base unit.
    spread_ticks : int
        ``best_ask - best_bid`` in ticks.
    last_event_ts_ns : int
        Time of the last book event applied, ns since the epoch, UTC.
    is_book_valid : bool
        False after a sequence gap or a crossed book, until the book is resynced.

    A NamedTuple, not a frozen dataclass: it can be built at every entry check, and a frozen
    dataclass's ``__init__`` (``object.__setattr__`` per field) is several times slower.
    """

    ts_ns: int
    best_bid: float
    best_ask: float
    spread_ticks: int
    last_event_ts_ns: int
    is_book_valid: bool

    @classmethod
    def of_book(cls, ts_ns: int, px: np.ndarray, n: np.ndarray, ist: np.ndarray, tick_size: float) -> MarketState:
        """The market facts of a kernel book at ``ts_ns``.

        ``px``, ``n``, ``ist`` are :class:`~scalper.features.kernels.FeatureState`'s top-of-book prices
        (int64[2, K], ticks), level counts (int64[2]) and scalar state; ``tick_size`` in quote
        currency. An empty side reads as the ``INT64_MIN`` bid / ``INT64_MAX`` ask tick.
        """
        sides = n.tolist()
        bid = int(px[0, 0]) if sides[0] else INT64_MIN
        ask = int(px[1, 0]) if sides[1] else INT64_MAX
        return cls(ts_ns, bid * tick_size, ask * tick_size, ask - bid, int(last_book_ts(ist)), bool(book_is_valid(ist)))
