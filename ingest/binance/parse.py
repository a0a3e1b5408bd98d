"""Parse one raw Binance market-data message (websocket frame or REST depth reply) with orjson.

Accepted shapes:

* combined-stream envelopes ``{"stream": "btcusdt@depth@0ms", "data": {...}}`` and bare payloads;
* ``depthUpdate`` (spot ``@depth``/``@depth@100ms``; futures ``@depth@0ms`` etc. with ``T`` and
  ``pu``; COIN-M adds ``ps``) -> :class:`DepthUpdate`;
* REST depth snapshots (``GET /api/v3/depth``, ``/fapi/v1/depth``, ``/dapi/v1/depth``): an object
  with ``lastUpdateId`` and no ``e`` -> :class:`DepthSnapshot`;
* ``trade`` and ``aggTrade`` -> :class:`Trade`;
* ``bookTicker`` (futures send ``e``; spot sends only ``u, s, b, B, a, A``) -> :class:`BookTicker`;
* valid messages scalper does not use -> None: the events in :data:`IGNORED_EVENTS` and the
  ``{"result": ..., "id": ...}`` reply to a subscribe request.

Everything else raises :class:`BinanceParseError` with a :class:`ParseReason` and the offending
field, so that a feed handler can count the rejection and skip the message (one bad message does
not invalidate the stream; the sequencer notices if a depth event went missing). Array payloads
(``!ticker@arr`` style streams) are not supported and are rejected as NOT_AN_OBJECT.

Numbers: ids and ms times must be JSON integers >= 0 (times below 2**63 ns); prices and quantities
must be decimal strings (Binance never sends them as JSON numbers) that are finite, with price > 0,
trade qty > 0 and book qty >= 0 (0 deletes a level).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from enum import StrEnum

import numpy as np
import orjson

from scalper.ingest.binance.levels import decode_pairs
from scalper.ingest.binance.messages import BookTicker, DepthSnapshot, DepthUpdate, Message, Trade

IGNORED_EVENTS = frozenset(
    {
        "markPriceUpdate",
        "kline",
        "continuous_kline",
        "indexPriceKline",
        "markPriceKline",
        "24hrTicker",
        "24hrMiniTicker",
        "1hTicker",
        "4hTicker",
        "1dTicker",
        "forceOrder",
        "compositeIndex",
        "contractInfo",
        "assetIndexUpdate",
        "indexPriceUpdate",
        "avgPrice",
    }
)
"""``e`` values of Binance market streams that are valid but unused here; they parse to None."""

_MAX_TIME_MS = (2**63 - 1) // 1_000_000  # a larger ms time would overflow int64 ns downstream
_MISSING = object()


class ParseReason(StrEnum):
    """Why a message was rejected."""

    BAD_JSON = "bad_json"
    NOT_AN_OBJECT = "not_an_object"
    MISSING_FIELD = "missing_field"
    WRONG_TYPE = "wrong_type"
    BAD_NUMBER = "bad_number"
    UNKNOWN_EVENT = "unknown_event"


class BinanceParseError(ValueError):
    """A message that is not a valid Binance message of a known kind.

    Attributes
    ----------
    reason : ParseReason
    field : str or None
        The JSON key (with its position for level entries, e.g. ``b[3][0]``) that is wrong.
    """

    def __init__(self, reason: ParseReason, message: str, field: str | None = None) -> None:
        super().__init__(f"{reason}: {message}")
        self.reason = reason
        self.field = field


def parse_message(raw: bytes | str) -> Message | None:
    """Parse one Binance message.

    Parameters
    ----------
    raw : bytes or str
        The JSON text of one websocket frame or REST depth reply.

    Returns
    -------
    DepthUpdate, DepthSnapshot, Trade, BookTicker or None
        None for a valid message of an unused kind (see the module docstring).

    Raises
    ------
    BinanceParseError
        With reason BAD_JSON (not JSON), NOT_AN_OBJECT (the message or its ``data`` is not an
        object), MISSING_FIELD, WRONG_TYPE, BAD_NUMBER (unparseable, negative, non-finite or out
        of range number; zero price) or UNKNOWN_EVENT; the message names the field.
    """
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise BinanceParseError(ParseReason.BAD_JSON, f"not JSON ({exc})") from None
    if type(obj) is not dict:
        raise BinanceParseError(ParseReason.NOT_AN_OBJECT, f"message is a JSON {_json_type(obj)}, not an object")
    if "data" in obj and "stream" in obj:
        if type(obj["stream"]) is not str:
            raise _wrong_type("stream", obj["stream"], "a string")
        obj = obj["data"]
        if type(obj) is not dict:
            raise BinanceParseError(
                ParseReason.NOT_AN_OBJECT, f"'data' is a JSON {_json_type(obj)}, not an object", "data"
            )
    event = obj.get("e")
    if event is None:
        return _parse_untyped(obj)
    if type(event) is not str:
        raise _wrong_type("e", event, "a string")
    parser = _PARSERS.get(event)
    if parser is not None:
        return parser(obj)
    if event in IGNORED_EVENTS:
        return None
    raise BinanceParseError(ParseReason.UNKNOWN_EVENT, f"unknown event type e={event!r}", "e")


def _parse_untyped(obj: dict) -> Message | None:
    # REST replies and spot bookTicker frames carry no "e"; recognise them by their keys.
    if "lastUpdateId" in obj:
        return _snapshot(obj)
    if "u" in obj and "B" in obj and "A" in obj:
        return _book_ticker(obj)
    if "result" in obj and "id" in obj:
        return None
    raise BinanceParseError(
        ParseReason.UNKNOWN_EVENT, "no 'e' field, and not a depth snapshot, bookTicker or subscribe reply", "e"
    )


def _depth_update(d: dict) -> DepthUpdate:
    bids, asks = _levels(d, "b", "a")
    return DepthUpdate(
        symbol=_str(d, "s"),
        event_time_ms=_time(d, "E"),
        transaction_time_ms=_time(d, "T") if "T" in d else None,
        first_update_id=_id(d, "U"),
        final_update_id=_id(d, "u"),
        prev_final_update_id=_id(d, "pu") if "pu" in d else None,
        bids=bids,
        asks=asks,
        pair=_str(d, "ps") if "ps" in d else None,
    )


def _snapshot(d: dict) -> DepthSnapshot:
    bids, asks = _levels(d, "bids", "asks")
    return DepthSnapshot(
        last_update_id=_id(d, "lastUpdateId"),
        event_time_ms=_time(d, "E") if "E" in d else None,
        transaction_time_ms=_time(d, "T") if "T" in d else None,
        bids=bids,
        asks=asks,
    )


def _trade(d: dict, aggregate: bool = False) -> Trade:
    # trade and aggTrade differ only in the id field: "t" per fill, "a" per aggregate.
    return Trade(
        symbol=_str(d, "s"),
        event_time_ms=_time(d, "E"),
        trade_time_ms=_time(d, "T"),
        trade_id=_id(d, "a" if aggregate else "t"),
        price=_decimal(d.get("p", _MISSING), "p", True),
        qty=_decimal(d.get("q", _MISSING), "q", True),
        buyer_is_maker=_bool(d, "m"),
        aggregate=aggregate,
    )


def _agg_trade(d: dict) -> Trade:
    return _trade(d, aggregate=True)


def _book_ticker(d: dict) -> BookTicker:
    return BookTicker(
        symbol=_str(d, "s"),
        update_id=_id(d, "u"),
        bid=_decimal(d.get("b", _MISSING), "b", True),
        bid_qty=_decimal(d.get("B", _MISSING), "B", False),
        ask=_decimal(d.get("a", _MISSING), "a", True),
        ask_qty=_decimal(d.get("A", _MISSING), "A", False),
        event_time_ms=_time(d, "E") if "E" in d else None,
    )


_PARSERS: dict[str, Callable[[dict], Message]] = {
    "depthUpdate": _depth_update,
    "trade": _trade,
    "aggTrade": _agg_trade,
    "bookTicker": _book_ticker,
}


def _wrong_type(field: str, value: object, expected: str) -> BinanceParseError:
    return BinanceParseError(
        ParseReason.WRONG_TYPE, f"field {field!r} is a JSON {_json_type(value)}, expected {expected}", field
    )


def _json_type(value: object) -> str:
    return {dict: "object", list: "array", str: "string", bool: "boolean", int: "integer", float: "number"}.get(
        type(value), "null"
    )


# Each field reader has a fast path for a valid value (one type check and one range check);
# everything else goes to _reject_*, which finds the precise reason for the error.


def _get(d: dict, key: str) -> object:
    try:
        return d[key]
    except KeyError:
        raise BinanceParseError(ParseReason.MISSING_FIELD, f"missing field {key!r}", key) from None


def _id(d: dict, key: str) -> int:
    value = d.get(key)
    # type() rather than isinstance(): JSON true/false arrive as bool, a subclass of int.
    if type(value) is int and value >= 0:
        return value
    raise _reject_int(d, key, "integer")


def _time(d: dict, key: str) -> int:
    value = d.get(key)
    if type(value) is int and 0 <= value <= _MAX_TIME_MS:
        return value
    raise _reject_int(d, key, "time")


def _reject_int(d: dict, key: str, what: str) -> BinanceParseError:
    value = _get(d, key)
    if type(value) is not int:
        return _wrong_type(key, value, "an integer")
    if value < 0:
        return BinanceParseError(ParseReason.BAD_NUMBER, f"field {key!r} = {value} is negative", key)
    return BinanceParseError(ParseReason.BAD_NUMBER, f"{what} {key!r} = {value} ms is out of range", key)


def _str(d: dict, key: str) -> str:
    value = _get(d, key)
    if type(value) is not str:
        raise _wrong_type(key, value, "a string")
    return value


def _bool(d: dict, key: str) -> bool:
    value = _get(d, key)
    if type(value) is not bool:
        raise _wrong_type(key, value, "a boolean")
    return value


def _decimal(value: object, field: str, positive: bool) -> float:
    # value is d.get(key, _MISSING) or a level entry.
    if type(value) is str:
        try:
            x = float(value)
        except ValueError:
            x = math.nan
        # Comparisons with nan are false, so nan fails too.
        if (0.0 < x if positive else 0.0 <= x) and x < math.inf:
            return x
    raise _reject_decimal(value, field, positive)


def _reject_decimal(value: object, field: str, positive: bool) -> BinanceParseError:
    if value is _MISSING:
        return BinanceParseError(ParseReason.MISSING_FIELD, f"missing field {field!r}", field)
    if type(value) is not str:
        return _wrong_type(field, value, "a decimal string")
    try:
        float(value)
    except ValueError:
        return BinanceParseError(ParseReason.BAD_NUMBER, f"field {field!r} = {value!r} is not a number", field)
    need = "> 0" if positive else ">= 0"
    return BinanceParseError(ParseReason.BAD_NUMBER, f"field {field!r} = {value!r} must be finite and {need}", field)


def _levels(d: dict, bid_key: str, ask_key: str) -> tuple[np.ndarray, np.ndarray]:
    bids = _get(d, bid_key)
    asks = _get(d, ask_key)
    if type(bids) is not list:
        raise _wrong_type(bid_key, bids, "an array of [price, qty]")
    if type(asks) is not list:
        raise _wrong_type(ask_key, asks, "an array of [price, qty]")
    fast = decode_pairs(bids, asks)
    if fast is not None:
        return fast
    return _levels_checked(bids, bid_key), _levels_checked(asks, ask_key)


def _levels_checked(levels: list, key: str) -> np.ndarray:
    # The slow path: every entry checked, so that the error can name it.
    out = np.empty((len(levels), 2), dtype=np.float64)
    for i, level in enumerate(levels):
        field = f"{key}[{i}]"
        if type(level) is not list:
            raise _wrong_type(field, level, "a [price, qty] pair")
        if len(level) != 2:
            raise BinanceParseError(ParseReason.WRONG_TYPE, f"{field} has {len(level)} entries, expected 2", field)
        out[i, 0] = _decimal(level[0], f"{field}[0]", positive=True)
        out[i, 1] = _decimal(level[1], f"{field}[1]", positive=False)
    return out
