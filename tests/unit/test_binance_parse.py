"""Binance parser on literal messages shaped like the recordings (../shared/data/README.md, section 2)."""

from __future__ import annotations

import numpy as np
import orjson
import pytest

from scalper.ingest.binance.levels import decode_pairs
from scalper.ingest.binance.messages import BookTicker, DepthSnapshot, DepthUpdate, Trade
from scalper.ingest.binance.parse import BinanceParseError, ParseReason, parse_message

USDM_DEPTH = (
    b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256352,"T":1723161256350,'
    b'"s":"BTCUSDT","U":5123107837801,"u":5123107842679,"pu":5123107837557,'
    b'"b":[["1000.00","606.675"],["61645.10","0.000"]],"a":[["61800.30","2.510"]]}}'
)
SPOT_DEPTH = (
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT",'
    b'"U":50093239203,"u":50093239207,"b":[["55653.87000000","0.00000000"]],'
    b'"a":[["61838.04000000","0.32332000"],["61844.30000000","0.40163000"]]}}'
)
COINM_DEPTH = (
    b'{"stream":"btcusd_perp@depth@0ms","data":{"e":"depthUpdate","E":1723161257460,"T":1723161257451,'
    b'"s":"BTCUSD_PERP","ps":"BTCUSD","U":1007198631580,"u":1007198631835,"pu":1007198631565,'
    b'"b":[["61794.4","392"]],"a":[]}}'
)
USDM_SNAPSHOT = (
    b'{"lastUpdateId": 2710246765483, "E": 1680652700590, "T": 1680652700580, '
    b'"bids": [["28145.10", "3.818"], ["28145.00", "0.413"]], "asks": [["28145.20", "6.887"]]}'
)
SPOT_SNAPSHOT = (
    b'{"lastUpdateId":50093239218,"bids":[["61837.63000000","3.78826000"]],"asks":[["61837.64000000","1.54698000"]]}'
)
COINM_SNAPSHOT = (
    b'{"lastUpdateId":1007198635033,"E":1723161257835,"T":1723161257823,"symbol":"BTCUSD_PERP","pair":"BTCUSD",'
    b'"bids":[["61804.7","35"]],"asks":[["61804.8","1645"]]}'
)
USDM_TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT",'
    b'"t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}'
)
SPOT_TRADE = (
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1723161255343,"s":"BTCUSDT","t":3735683259,'
    b'"p":"61837.63000000","q":"0.02000000","T":1723161255342,"m":false,"M":true}}'
)
AGG_TRADE = (
    b'{"e":"aggTrade","E":1723161255343,"s":"ETHUSDT","a":26129,"p":"2611.01","q":"1.250","f":100,"l":105,'
    b'"T":1723161255340,"m":true}'
)
USDM_TICKER = (
    b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT",'
    b'"b":"61800.20","B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256314}}'
)
SPOT_TICKER = (
    b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000",'
    b'"B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}'
)
MARK_PRICE = (
    b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT",'
    b'"p":"28147.27373413","P":"28142.15563565","i":"28159.75642857","r":"0.00002754","T":1680652800000}}'
)


def test_usdm_depth_update_parses_every_field():
    m = parse_message(USDM_DEPTH)
    assert isinstance(m, DepthUpdate)
    assert (m.symbol, m.event_time_ms, m.transaction_time_ms) == ("BTCUSDT", 1723161256352, 1723161256350)
    ids = (m.first_update_id, m.final_update_id, m.prev_final_update_id)
    assert ids == (5123107837801, 5123107842679, 5123107837557)
    assert m.pair is None
    assert m.bids.dtype == np.float64 and m.bids.shape == (2, 2)
    np.testing.assert_array_equal(m.bids, [[1000.0, 606.675], [61645.1, 0.0]])
    np.testing.assert_array_equal(m.asks, [[61800.3, 2.51]])


def test_spot_depth_update_has_no_transaction_time_or_pu():
    m = parse_message(SPOT_DEPTH)
    assert isinstance(m, DepthUpdate)
    assert m.transaction_time_ms is None and m.prev_final_update_id is None
    assert (m.first_update_id, m.final_update_id) == (50093239203, 50093239207)
    np.testing.assert_array_equal(m.bids, [[55653.87, 0.0]])
    np.testing.assert_array_equal(m.asks, [[61838.04, 0.32332], [61844.30, 0.40163]])


def test_coinm_depth_update_keeps_pair_and_empty_side():
    m = parse_message(COINM_DEPTH)
    assert m.pair == "BTCUSD" and m.symbol == "BTCUSD_PERP"
    assert m.asks.shape == (0, 2)
    np.testing.assert_array_equal(m.bids, [[61794.4, 392.0]])


def test_depth_update_accepts_bare_payload_and_str():
    bare = orjson.dumps(orjson.loads(USDM_DEPTH)["data"]).decode()
    m = parse_message(bare)
    assert isinstance(m, DepthUpdate) and m.final_update_id == 5123107842679


@pytest.mark.parametrize(
    "raw, times, first_bid",
    [
        (USDM_SNAPSHOT, (1680652700590, 1680652700580), [28145.10, 3.818]),
        (SPOT_SNAPSHOT, (None, None), [61837.63, 3.78826]),
        (COINM_SNAPSHOT, (1723161257835, 1723161257823), [61804.7, 35.0]),
    ],
)
def test_rest_snapshots_parse(raw, times, first_bid):
    m = parse_message(raw)
    assert isinstance(m, DepthSnapshot)
    assert (m.event_time_ms, m.transaction_time_ms) == times
    np.testing.assert_array_equal(m.bids[0], first_bid)
    assert m.asks.shape[1] == 2


def test_trades_futures_and_spot():
    f = parse_message(USDM_TRADE)
    assert isinstance(f, Trade)
    assert (f.symbol, f.event_time_ms, f.trade_time_ms) == ("BTCUSDT", 1680652700455, 1680652700452)
    assert f.trade_id == 3535186032
    assert (f.price, f.qty, f.buyer_is_maker, f.aggregate) == (28145.10, 0.002, True, False)
    s = parse_message(SPOT_TRADE)
    assert (s.price, s.qty, s.buyer_is_maker, s.trade_time_ms) == (61837.63, 0.02, False, 1723161255342)


def test_agg_trade_maps_aggregate_id():
    m = parse_message(AGG_TRADE)
    assert isinstance(m, Trade) and m.aggregate
    assert (m.trade_id, m.price, m.qty, m.buyer_is_maker) == (26129, 2611.01, 1.25, True)


def test_book_tickers_futures_and_spot_without_e():
    f = parse_message(USDM_TICKER)
    assert isinstance(f, BookTicker)
    assert (f.update_id, f.bid, f.bid_qty, f.ask, f.ask_qty, f.event_time_ms) == (
        5123107839020,
        61800.2,
        2.507,
        61800.3,
        2.51,
        1723161256314,
    )
    s = parse_message(SPOT_TICKER)
    assert isinstance(s, BookTicker)
    assert (s.update_id, s.bid, s.ask, s.event_time_ms) == (50093239212, 61837.63, 61837.64, None)


@pytest.mark.parametrize(
    "raw",
    [
        MARK_PRICE,
        b'{"e":"kline","E":1,"s":"BTCUSDT","k":{}}',
        b'{"stream":"btcusdt@ticker","data":{"e":"24hrTicker","E":1}}',
        b'{"result":null,"id":1}',
    ],
)
def test_valid_unused_messages_return_none(raw):
    assert parse_message(raw) is None


def _depth_with(**changes) -> bytes:
    data = orjson.loads(USDM_DEPTH)["data"]
    for key, value in changes.items():
        if value is _DELETE:
            del data[key]
        else:
            data[key] = value
    return orjson.dumps({"stream": "btcusdt@depth@0ms", "data": data})


_DELETE = object()


@pytest.mark.parametrize(
    "raw, reason, field",
    [
        (b"", ParseReason.BAD_JSON, None),
        (b'{"e":"trade",', ParseReason.BAD_JSON, None),
        (b"\xff\xfe", ParseReason.BAD_JSON, None),
        (b"[1, 2]", ParseReason.NOT_AN_OBJECT, None),
        (b"42", ParseReason.NOT_AN_OBJECT, None),
        (b'"depthUpdate"', ParseReason.NOT_AN_OBJECT, None),
        (b'{"stream":"x","data":[1]}', ParseReason.NOT_AN_OBJECT, "data"),
        (b'{"stream":1,"data":{}}', ParseReason.WRONG_TYPE, "stream"),
        (_depth_with(U=_DELETE), ParseReason.MISSING_FIELD, "U"),
        (_depth_with(b=_DELETE), ParseReason.MISSING_FIELD, "b"),
        (_depth_with(s=_DELETE), ParseReason.MISSING_FIELD, "s"),
        (_depth_with(E=_DELETE), ParseReason.MISSING_FIELD, "E"),
        (_depth_with(u="5123107842679"), ParseReason.WRONG_TYPE, "u"),
        (_depth_with(pu=True), ParseReason.WRONG_TYPE, "pu"),
        (_depth_with(E=1.5), ParseReason.WRONG_TYPE, "E"),
        (_depth_with(s=7), ParseReason.WRONG_TYPE, "s"),
        (_depth_with(b={"61800": "1"}), ParseReason.WRONG_TYPE, "b"),
        (_depth_with(b=[["61800.1"]]), ParseReason.WRONG_TYPE, "b[0]"),
        (_depth_with(a=[["61800.1", "1", "2"]]), ParseReason.WRONG_TYPE, "a[0]"),
        (_depth_with(a=["61800.1"]), ParseReason.WRONG_TYPE, "a[0]"),
        (_depth_with(b=[["61800.1", "1"], [61800.0, "1"]]), ParseReason.WRONG_TYPE, "b[1][0]"),
        (_depth_with(b=[["61800.1", None]]), ParseReason.WRONG_TYPE, "b[0][1]"),
        (_depth_with(b=[["abc", "1"]]), ParseReason.BAD_NUMBER, "b[0][0]"),
        (_depth_with(b=[["0", "1"]]), ParseReason.BAD_NUMBER, "b[0][0]"),
        (_depth_with(b=[["-5.0", "1"]]), ParseReason.BAD_NUMBER, "b[0][0]"),
        (_depth_with(a=[["61800.1", "-0.1"]]), ParseReason.BAD_NUMBER, "a[0][1]"),
        (_depth_with(a=[["nan", "1"]]), ParseReason.BAD_NUMBER, "a[0][0]"),
        (_depth_with(a=[["61800.1", "inf"]]), ParseReason.BAD_NUMBER, "a[0][1]"),
        (_depth_with(U=-1), ParseReason.BAD_NUMBER, "U"),
        (_depth_with(E=2**62), ParseReason.BAD_NUMBER, "E"),
        (_depth_with(e="depthUpdat"), ParseReason.UNKNOWN_EVENT, "e"),
        (_depth_with(e=5), ParseReason.WRONG_TYPE, "e"),
        (b'{"stream":"x","data":{"foo":1}}', ParseReason.UNKNOWN_EVENT, "e"),
        (b'{"lastUpdateId":"1","bids":[],"asks":[]}', ParseReason.WRONG_TYPE, "lastUpdateId"),
        (b'{"lastUpdateId":1,"bids":[]}', ParseReason.MISSING_FIELD, "asks"),
        (USDM_TRADE.replace(b'"m":true', b'"m":"true"'), ParseReason.WRONG_TYPE, "m"),
        (USDM_TRADE.replace(b'"q":"0.002"', b'"q":0.002'), ParseReason.WRONG_TYPE, "q"),
        (USDM_TRADE.replace(b'"p":"28145.10"', b'"p":"28,145.10"'), ParseReason.BAD_NUMBER, "p"),
        (USDM_TRADE.replace(b'"t":3535186032,', b""), ParseReason.MISSING_FIELD, "t"),
        (USDM_TRADE.replace(b'"q":"0.002"', b'"q":"0.000"'), ParseReason.BAD_NUMBER, "q"),
        (SPOT_TICKER.replace(b'"B":"3.78826000"', b'"B":"x"'), ParseReason.BAD_NUMBER, "B"),
        (SPOT_TICKER.replace(b'"a":"61837.64000000",', b""), ParseReason.MISSING_FIELD, "a"),
    ],
)
def test_malformed_message_raises_reason_and_field(raw, reason, field):
    with pytest.raises(BinanceParseError) as info:
        parse_message(raw)
    assert info.value.reason is reason
    assert info.value.field == field
    if field is not None:
        assert repr(field) in str(info.value) or field in str(info.value)


def test_parse_error_is_a_value_error():
    assert issubclass(BinanceParseError, ValueError)


@pytest.mark.parametrize(
    "text",
    ["61800.20", "0.000", "0", "1000", "0.00000001", "61837.63000000", "9007199254740991", "5."],
)
def test_fast_level_decoding_equals_float(text):
    out = decode_pairs([[text if float(text) > 0 else "1", text]], [])
    assert out is not None
    bids, asks = out
    assert bids[0, 1] == float(text) and asks.shape == (0, 2)


@pytest.mark.parametrize(
    "text", ["1e5", "-1", "+1", " 1", "", ".", "1.2.3", "9007199254740993", "99999999999999999999", "0x10"]
)
def test_fast_level_decoding_declines_unusual_forms(text):
    # Exponents, signs, spaces, empty, a mantissa of 2**53 + 1 or more: the checked path decides.
    assert decode_pairs([["1", text]], []) is None


def test_unusual_but_valid_numbers_take_the_checked_path():
    m = parse_message(_depth_with(b=[["6.18e4", "1E-3"]], a=[]))
    np.testing.assert_array_equal(m.bids, [[61800.0, 0.001]])
