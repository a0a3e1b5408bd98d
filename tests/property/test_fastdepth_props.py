"""The numba depthUpdate scanner never disagrees with the general parser, on any input."""

from __future__ import annotations

import numpy as np
from hypothesis import given
from hypothesis import strategies as st

from scalper.ingest.binance.fastdepth import H_FINAL_ID, DepthFrameParser, tick_decimal
from scalper.ingest.binance.messages import DepthUpdate
from scalper.ingest.binance.normalise import EventBuffer
from scalper.ingest.binance.parse import BinanceParseError, parse_message

TICK = 0.01
PARSER = DepthFrameParser(TICK, capacity=64)

price = st.integers(1, 10**8).map(lambda t: f"{t // 100}.{t % 100:02d}" + "0" * (t % 3))
qty = st.tuples(st.integers(0, 10**9), st.integers(0, 8)).map(
    lambda mk: f"{mk[0] // 10 ** mk[1]}.{mk[0] % 10 ** mk[1]:0{mk[1]}d}" if mk[1] else str(mk[0])
)
levels = st.lists(st.tuples(price, qty), max_size=40)
space = st.sampled_from(["", " ", "\n  "])


@st.composite
def frames(draw):
    fields = {
        "e": '"depthUpdate"',
        "E": str(draw(st.integers(0, 2**42))),
        "T": str(draw(st.integers(0, 2**42))),
        "s": '"ETHUSDT"',
        "U": str(draw(st.integers(0, 10**17))),
        "u": str(draw(st.integers(0, 10**17))),
        "pu": str(draw(st.integers(0, 10**17))),
    }
    keys = draw(st.permutations(list(fields)))
    keys = [k for k in keys if k not in ("T", "pu") or draw(st.booleans())]
    w = draw(space)
    body = [f'"{k}":{w}{fields[k]}' for k in keys]
    for key in ("b", "a"):
        lv = draw(levels)
        body.append(f'"{key}":[' + f",{w}".join(f'["{p}",{w}"{q}"]' for p, q in lv) + "]")
    event = "{" + f",{w}".join(body) + "}"
    if draw(st.booleans()):
        return f'{{"stream":"ethusdt@depth@0ms",{w}"data":{event}}}'.encode()
    return event.encode()


def _agree(raw: bytes) -> bool:
    n = PARSER.parse(raw)
    try:
        msg = parse_message(raw)
    except BinanceParseError:
        return n == -1
    if n < 0:
        return True  # left to the general parser: always allowed
    if not isinstance(msg, DepthUpdate) or PARSER.header[H_FINAL_ID] != msg.final_update_id:
        return False
    buf = EventBuffer(128)
    buf.append_diff(msg, 0)
    want = buf.columns()
    ts, kind, side, ticks, size, flags = PARSER.columns(n)
    return (
        np.array_equal(ts, want["ts_event"])
        and np.array_equal(side, want["side"])
        and np.array_equal(flags, want["flags"])
        and np.array_equal(size, want["size"])
        and np.array_equal(ticks, np.rint(want["price"] / TICK).astype(np.int64))
    )


@given(frames())
def test_well_formed_frames_are_handled_and_equal(raw):
    assert PARSER.parse(raw) >= 0
    assert _agree(raw)


@given(frames(), st.data())
def test_corrupted_frames_are_refused_or_equal(raw, data):
    pos = data.draw(st.integers(0, len(raw) - 1))
    byte = data.draw(st.sampled_from(list(b'"{}[],:.-eE0 9\\x')))
    mutated = raw[:pos] + bytes([byte]) + raw[pos + 1 :]
    cut = raw[: data.draw(st.integers(0, len(raw)))]
    assert _agree(mutated)
    assert _agree(cut)


def test_an_id_with_a_leading_zero_is_left_to_the_general_parser():
    raw = b'{"e":"depthUpdate","E":10,"T":10,"s":"ETHUSDT","U":10000,"u":00,"b":[],"a":[]}'
    assert PARSER.parse(raw) == -1 and _agree(raw)


def test_off_grid_price_and_odd_ticks():
    assert tick_decimal(0.01) == (1, 2) and tick_decimal(0.5) == (5, 1) and tick_decimal(10.0) == (10, 0)
    half = DepthFrameParser(0.5)
    assert half.parse(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["100.5","1"]],"a":[]}') == 1
    assert half.price_tick[0] == 201
    assert half.parse(b'{"e":"depthUpdate","E":1,"s":"X","U":1,"u":2,"b":[["100.3","1"]],"a":[]}') == -1
