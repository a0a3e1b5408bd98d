"""Properties of the Binance parser, level decoder and order-book sequencer."""

from __future__ import annotations

import numpy as np
import orjson
from hypothesis import assume, given, settings
from hypothesis import strategies as st

from scalper.ingest.binance.levels import decode_pairs
from scalper.ingest.binance.messages import DepthSnapshot, DepthUpdate, Market
from scalper.ingest.binance.parse import BinanceParseError, parse_message
from scalper.ingest.binance.sequencer import BinanceOrderBookSequencer, SyncReason, SyncState

VALID = [
    b'{"stream":"btcusdt@depth@0ms","data":{"e":"depthUpdate","E":1723161256352,"T":1723161256350,"s":"BTCUSDT",'
    b'"U":5123107837801,"u":5123107842679,"pu":5123107837557,"b":[["1000.00","606.675"],["61645.10","0.000"]],'
    b'"a":[["61800.30","2.510"]]}}',
    b'{"stream":"btcusdt@depth@100ms","data":{"e":"depthUpdate","E":1723161255308,"s":"BTCUSDT","U":50093239203,'
    b'"u":50093239207,"b":[["55653.87000000","0.00000000"]],"a":[["61838.04000000","0.32332000"]]}}',
    b'{"lastUpdateId":1007198635033,"E":1723161257835,"T":1723161257823,"symbol":"BTCUSD_PERP","pair":"BTCUSD",'
    b'"bids":[["61804.7","35"]],"asks":[["61804.8","1645"]]}',
    b'{"stream":"btcusdt@trade","data":{"e":"trade","E":1680652700455,"T":1680652700452,"s":"BTCUSDT",'
    b'"t":3535186032,"p":"28145.10","q":"0.002","X":"MARKET","m":true}}',
    b'{"e":"aggTrade","E":1,"s":"ETHUSDT","a":26129,"p":"2611.01","q":"1.250","f":100,"l":105,"T":1,"m":true}',
    b'{"stream":"btcusdt@bookTicker","data":{"u":50093239212,"s":"BTCUSDT","b":"61837.63000000",'
    b'"B":"3.78826000","a":"61837.64000000","A":"1.54698000"}}',
    b'{"stream":"btcusdt@bookTicker","data":{"e":"bookTicker","u":5123107839020,"s":"BTCUSDT","b":"61800.20",'
    b'"B":"2.507","a":"61800.30","A":"2.510","T":1723161256313,"E":1723161256314}}',
    b'{"stream":"btcusdt@markPrice@1s","data":{"e":"markPriceUpdate","E":1680652701000,"s":"BTCUSDT","p":"1"}}',
]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats() | st.text(max_size=12),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=4), inner, max_size=4),
    max_leaves=12,
)


def parse_or_reject(raw) -> None:
    try:
        parse_message(raw)
    except BinanceParseError:
        pass


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=200))
def test_parser_on_arbitrary_bytes_only_raises_parse_error(raw):
    parse_or_reject(raw)


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_parser_on_byte_mutations_only_raises_parse_error(raw, data):
    buf = bytearray(raw)
    for _ in range(data.draw(st.integers(1, 4))):
        op = data.draw(st.sampled_from(["flip", "delete", "insert", "truncate"]))
        i = data.draw(st.integers(0, max(len(buf) - 1, 0)))
        if op == "flip" and buf:
            buf[i] = data.draw(st.integers(0, 255))
        elif op == "delete" and buf:
            del buf[i]
        elif op == "insert":
            buf[i:i] = data.draw(st.sampled_from([b'"', b",", b"]", b"[", b"{", b"-", b"e9", b"0", b"\\", b"null"]))
        else:
            del buf[i:]
    parse_or_reject(bytes(buf))


def _paths(obj, prefix=()):
    # Every (container, key) position of a parsed JSON value.
    items = obj.items() if isinstance(obj, dict) else enumerate(obj) if isinstance(obj, list) else ()
    for key, value in items:
        yield obj, key
        yield from _paths(value, prefix + (key,))


@settings(max_examples=400, deadline=None)
@given(st.sampled_from(VALID), st.data())
def test_parser_on_json_mutations_only_raises_parse_error(raw, data):
    obj = orjson.loads(raw)
    positions = list(_paths(obj))
    container, key = data.draw(st.sampled_from(positions))
    if data.draw(st.booleans()) and isinstance(container, dict):
        del container[key]
    else:
        container[key] = data.draw(json_values)
    try:
        mutated = orjson.dumps(obj)
    except (TypeError, orjson.JSONEncodeError):
        assume(False)
    parse_or_reject(mutated)


# At most 15 significant digits (mantissa < 2**53) plus any padding zeros, as Binance writes them.
plain_decimals = st.builds(
    lambda whole, frac, pad: f"{whole}.{frac}{'0' * pad}" if frac or pad else str(whole),
    st.integers(0, 10**7),
    st.text("0123456789", max_size=7),
    st.integers(0, 8),
)


def check_decoded(pairs, split, must_decode):
    split = min(split, len(pairs))
    pairs = [[p if float(p) > 0 else "1", q] for p, q in pairs]
    out = decode_pairs(pairs[:split], pairs[split:])
    if out is None:
        assert not must_decode
        return
    expected = np.array([[float(p), float(q)] for p, q in pairs]).reshape(-1, 2)
    assert np.concatenate(out).tobytes() == expected.tobytes()


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(plain_decimals, plain_decimals), max_size=20), st.integers(0, 20))
def test_level_decoder_equals_python_float_bit_for_bit(pairs, split):
    check_decoded(pairs, split, must_decode=True)


# Text that float() accepts, in the shapes a decoder can meet: signs, exponents, bare dots.
number_text = st.one_of(
    st.from_regex(r"\A[-+]?[0-9]{1,12}(\.[0-9]{0,10})?([eE][-+]?[0-9]{1,2})?\Z"),
    st.from_regex(r"\A[-+]?\.[0-9]{1,10}\Z"),
    st.floats(allow_nan=False, allow_infinity=False).map(repr),
)


@settings(max_examples=300, deadline=None)
@given(st.lists(st.tuples(number_text, number_text), max_size=8), st.integers(0, 8))
def test_level_decoder_declines_or_equals_float_on_any_number_text(pairs, split):
    pairs = [(p, q) for p, q in pairs if float(p) == float(p) and float(q) == float(q)]
    check_decoded(pairs, split, must_decode=False)


# -- sequencer ----------------------------------------------------------------------------------

EMPTY = np.empty((0, 2))


@st.composite
def chains(draw):
    """Return (market, diffs, snapshot id, cut): a continuous diff chain and where the snapshot
    lands in it (an update id a diff covers) and in the stream (after ``cut`` diffs)."""
    market = draw(st.sampled_from(list(Market)))
    n = draw(st.integers(1, 30))
    first = draw(st.integers(1, 10**12))
    diffs = []
    prev_u = first - 1
    for _ in range(n):
        # Futures ids of one symbol jump between events (hence pu); spot ids are contiguous.
        skip = draw(st.integers(0, 5)) if market.is_futures else 0
        start = prev_u + 1 + skip
        end = start + draw(st.integers(0, 6))
        pu = prev_u if market.is_futures else None
        diffs.append(DepthUpdate("X", 1, 1, start, end, pu, EMPTY, EMPTY))
        prev_u = end
    covering = draw(st.sampled_from(diffs))
    snapshot_id = draw(st.integers(covering.first_update_id, covering.final_update_id))
    if not market.is_futures:
        # A spot snapshot at L needs a diff with U <= L + 1 <= u.
        snapshot_id -= 1
    cut = draw(st.integers(0, n))
    return market, diffs, snapshot_id, cut


def replay(market, diffs, snapshot_id, cut):
    seq = BinanceOrderBookSequencer(market)
    applied = []
    for d in diffs[:cut]:
        applied += seq.on_diff(d)
    applied += seq.on_snapshot(DepthSnapshot(snapshot_id, None, None, EMPTY, EMPTY))
    for d in diffs[cut:]:
        applied += seq.on_diff(d)
    return seq, applied


def after_snapshot(market, diffs, snapshot_id):
    # Binance's step 4: futures keep u >= lastUpdateId, spot keeps u > lastUpdateId.
    return [d for d in diffs if d.final_update_id >= snapshot_id + (0 if market.is_futures else 1)]


@settings(max_examples=400, deadline=None)
@given(chains())
def test_sequencer_applies_exactly_the_diffs_after_the_snapshot(chain):
    market, diffs, snapshot_id, cut = chain
    seq, applied = replay(market, diffs, snapshot_id, cut)
    expected = after_snapshot(market, diffs, snapshot_id)
    assert [id(d) for d in applied] == [id(d) for d in expected]
    assert seq.state is SyncState.SYNCED
    assert seq.counters[SyncReason.GAP] == 0 and seq.counters[SyncReason.SNAPSHOT_TOO_OLD] == 0
    assert seq.counters[SyncReason.STALE_DROPPED] == len(diffs) - len(expected)
    assert seq.last_update_id == (expected[-1].final_update_id if expected else snapshot_id)


@settings(max_examples=400, deadline=None)
@given(chains(), st.data())
def test_dropping_one_applied_diff_breaks_the_sequence_exactly_once(chain, data):
    market, diffs, snapshot_id, cut = chain
    expected = after_snapshot(market, diffs, snapshot_id)
    # Only a diff with a successor can be missed; the straddling one shows as a too-old snapshot.
    assume(len(expected) >= 2)
    j = data.draw(st.integers(0, len(expected) - 2))
    dropped = expected[j]
    k = next(i for i, d in enumerate(diffs) if d is dropped)
    kept = diffs[:k] + diffs[k + 1 :]
    seq, applied = replay(market, kept, snapshot_id, cut if cut <= k else cut - 1)
    breaks = seq.counters[SyncReason.GAP] + seq.counters[SyncReason.SNAPSHOT_TOO_OLD]
    if market.is_futures and dropped.final_update_id == snapshot_id:
        # The snapshot already holds the diff ending at its id; the next one's pu is that id: it continues.
        assert breaks == 0 and seq.state is SyncState.SYNCED
        assert [id(d) for d in applied] == [id(d) for d in expected[1:]]
        return
    assert breaks == 1
    assert seq.invalid_reason is (SyncReason.SNAPSHOT_TOO_OLD if j == 0 else SyncReason.GAP)
    assert [id(d) for d in applied] == [id(d) for d in expected[:j]] or (
        # Breaks found while draining the buffer hand back nothing, not a prefix.
        applied == [] and cut > k
    )


@settings(max_examples=200, deadline=None)
@given(chains(), st.data())
def test_repeating_a_diff_drops_it_as_stale_and_changes_nothing_else(chain, data):
    market, diffs, snapshot_id, cut = chain
    k = data.draw(st.integers(0, len(diffs) - 1))
    repeated = diffs[: k + 1] + [diffs[k]] + diffs[k + 1 :]
    seq, applied = replay(market, repeated, snapshot_id, cut)
    expected = after_snapshot(market, diffs, snapshot_id)
    assert [id(d) for d in applied] == [id(d) for d in expected]
    assert seq.state is SyncState.SYNCED
    assert seq.counters[SyncReason.STALE_DROPPED] == len(diffs) - len(expected) + 1
