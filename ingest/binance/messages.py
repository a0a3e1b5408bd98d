"""Typed Binance market-data messages, as :func:`scalper.ingest.binance.parse.parse_message` returns them.

Field names follow what the values are; the Binance JSON key each comes from is given in the
attribute lists. Times are the venue's integer milliseconds since the Unix epoch (UTC), kept as
sent; :mod:`scalper.ingest.binance.normalise` turns them into ns. Prices are float64 in quote
currency, quantities float64 in base units (USD-M and spot: coins; COIN-M: contracts).

References: Binance Spot "WebSocket Streams" (Diff. Depth, Trade, Aggregate Trade, Individual
Symbol Book Ticker) and "Order book" (``GET /api/v3/depth``); USD-M / COIN-M Futures
"Diff. Book Depth Streams", "Trade Streams", "Individual Symbol Book Ticker Streams" and
"Order Book" (``GET /fapi/v1/depth``, ``GET /dapi/v1/depth``).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum

import numpy as np


class Market(StrEnum):
    """A Binance market; each has its own id rules (see :mod:`~scalper.ingest.binance.sequencer`)."""

    SPOT = "spot"
    USDM = "usdm"
    COINM = "coinm"

    @property
    def venue(self) -> str:
        """Return the tick-file venue name: ``"BINANCE_SPOT"``, ``"BINANCE_USDM"`` or ``"BINANCE_COINM"``."""
        return f"BINANCE_{self.name}"

    @property
    def is_futures(self) -> bool:
        """Return True for USD-M and COIN-M, whose diffs carry ``pu``."""
        return self is not Market.SPOT


# eq=False: the level arrays make field-wise == ambiguous, and identity is what the sequencer needs.
@dataclass(slots=True, eq=False)
class DepthUpdate:
    """One diff-depth event (``"e": "depthUpdate"``).

    Attributes
    ----------
    symbol : str
        ``s``, e.g. ``"BTCUSDT"`` or ``"BTCUSD_PERP"``.
    event_time_ms : int
        ``E``, when the venue sent the event, ms.
    transaction_time_ms : int or None
        ``T`` (futures only), matching-engine time of the last update in the event, ms.
    first_update_id, final_update_id : int
        ``U`` and ``u``: the first and last order-book update id the event covers.
    prev_final_update_id : int or None
        ``pu`` (futures only): ``u`` of the previous event of the stream.
    bids, asks : numpy.ndarray
        ``b`` and ``a`` as float64[k, 2] rows ``[price, qty]``; qty is the new absolute quantity
        at that price, 0 deletes the level.
    pair : str or None
        ``ps`` (COIN-M only), e.g. ``"BTCUSD"``.
    """

    symbol: str
    event_time_ms: int
    transaction_time_ms: int | None
    first_update_id: int
    final_update_id: int
    prev_final_update_id: int | None
    bids: np.ndarray
    asks: np.ndarray
    pair: str | None = None


@dataclass(slots=True, eq=False)
class DepthSnapshot:
    """A REST depth snapshot (a JSON object with ``lastUpdateId`` and no ``e``).

    Attributes
    ----------
    last_update_id : int
        ``lastUpdateId``: the book is as of this update id.
    event_time_ms, transaction_time_ms : int or None
        ``E`` and ``T`` (futures replies only), ms; spot replies carry no time.
    bids, asks : numpy.ndarray
        ``bids`` / ``asks`` as float64[k, 2] rows ``[price, qty]``, best first.
    """

    last_update_id: int
    event_time_ms: int | None
    transaction_time_ms: int | None
    bids: np.ndarray
    asks: np.ndarray


@dataclass(slots=True, eq=False)
class Trade:
    """One trade (``"e": "trade"``) or aggregate trade (``"e": "aggTrade"``).

    Attributes
    ----------
    symbol : str
        ``s``.
    event_time_ms, trade_time_ms : int
        ``E`` and ``T``, ms.
    trade_id : int
        ``t`` for a trade, ``a`` (the aggregate trade id) for an aggTrade.
    price : float
        ``p``, quote currency.
    qty : float
        ``q``, base units (COIN-M: contracts), > 0.
    buyer_is_maker : bool
        ``m``: True when the buyer's order rested, so the aggressor sold.
    aggregate : bool
        True for an aggTrade (its id space differs from the trade ids).
    """

    symbol: str
    event_time_ms: int
    trade_time_ms: int
    trade_id: int
    price: float
    qty: float
    buyer_is_maker: bool
    aggregate: bool = False


@dataclass(slots=True, eq=False)
class BookTicker:
    """Best bid and offer (``bookTicker`` stream; spot sends it without ``e`` or ``E``).

    Attributes
    ----------
    symbol : str
        ``s``.
    update_id : int
        ``u``: the order-book update id this BBO is as of (the same id space as depth ``u``).
    bid, bid_qty, ask, ask_qty : float
        ``b``, ``B``, ``a``, ``A``: best prices (quote currency) and their quantities.
    event_time_ms : int or None
        ``E`` (futures only), ms.
    """

    symbol: str
    update_id: int
    bid: float
    bid_qty: float
    ask: float
    ask_qty: float
    event_time_ms: int | None = None


Message = DepthUpdate | DepthSnapshot | Trade | BookTicker
