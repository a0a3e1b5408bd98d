"""Binance market data: message parsing, order-book sequencing, normalisation and recording import.

Spot, USD-M futures and COIN-M futures, diff-depth + REST snapshot + trades + bookTicker.
The live path and the importer share every stage:

=================  ======================================================================
module             responsibility
=================  ======================================================================
``messages``       typed messages (:class:`DepthUpdate`, :class:`DepthSnapshot`,
                   :class:`Trade`, :class:`BookTicker`) and :class:`Market`
``parse``          raw JSON (websocket frame or REST reply) -> message, or
                   :class:`BinanceParseError` with a :class:`ParseReason`
``levels``         fast decoding of ``[price, qty]`` string pairs (numba)
``sequencer``      :class:`BinanceOrderBookSequencer`: Binance's "How to manage a local
                   order book correctly", spot and futures rules; pure id bookkeeping
``normalise``      messages -> schema-v1 events in a growable :class:`EventBuffer`
``localbook``      :class:`LocalBook`: numba L2 book for crossed-book and bookTicker checks
``recording``      hftbacktest-style ``<local_ts> <json>`` files, stamp unit detection
``specs``          tick / lot sizes: known symbols, else inferred from the data
``importer``       :func:`import_binance`: recording -> :class:`BinanceImport`
=================  ======================================================================

A live handler does, per websocket frame (see :class:`BinanceOrderBookSequencer` for the resync
loop)::

    msg = parse_message(frame)                      # BinanceParseError: count, skip
    if isinstance(msg, DepthUpdate):
        for diff in sequencer.on_diff(msg):
            events.append_diff(diff, ts_recv_ns)    # then hand the rows to the engine
"""

from scalper.ingest.binance.importer import BinanceImport, BinanceImportError, import_binance, infer_market
from scalper.ingest.binance.localbook import LocalBook
from scalper.ingest.binance.messages import BookTicker, DepthSnapshot, DepthUpdate, Market, Message, Trade
from scalper.ingest.binance.normalise import EventBuffer, event_time_ns
from scalper.ingest.binance.parse import BinanceParseError, ParseReason, parse_message
from scalper.ingest.binance.recording import LineReason, RecordedLine, Recording, RecordingError, TsUnit
from scalper.ingest.binance.sequencer import BinanceOrderBookSequencer, SyncReason, SyncState

__all__ = [
    "BinanceImport",
    "BinanceImportError",
    "BinanceOrderBookSequencer",
    "BinanceParseError",
    "BookTicker",
    "DepthSnapshot",
    "DepthUpdate",
    "EventBuffer",
    "LineReason",
    "LocalBook",
    "Market",
    "Message",
    "ParseReason",
    "RecordedLine",
    "Recording",
    "RecordingError",
    "SyncReason",
    "SyncState",
    "Trade",
    "TsUnit",
    "event_time_ns",
    "import_binance",
    "infer_market",
    "parse_message",
]
