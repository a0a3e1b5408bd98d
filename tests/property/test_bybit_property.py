"""Properties of the Bybit orderbook importer: replay equals a dict book after every message; mutated lines
only raise BybitFormatError."""

from __future__ import annotations

import tempfile
from pathlib import Path

import orjson
from builders import books_at_message_ends
from hypothesis import given, settings
from hypothesis import strategies as st

from scalper.ingest.bybit import BybitFormatError, import_bybit

DECIMALS = [0, 1, 2, 4]  # tick = 10**-decimals, which is what inference gives back
SIZES = ["0", "1", "2", "10", "0.5", "0.001", "123.25"]
T0_MS = 1_733_011_200_000
LOW_TICK, HIGH_TICK = 1000, 1040


@st.composite
def sessions(draw):
    """Return (decimals, messages); a message is (type, u, ts, cts, bids, asks) with levels (tick, size text)."""
    decimals = draw(st.sampled_from(DECIMALS))
    level = st.tuples(st.integers(LOW_TICK, HIGH_TICK), st.sampled_from(SIZES))
    u = draw(st.integers(2, 10**9))
    cts = T0_MS
    messages = []
    for k in range(draw(st.integers(1, 15))):
        step = "snapshot" if k == 0 else draw(st.sampled_from(["delta", "delta", "delta", "snapshot", "restart"]))
        if step == "snapshot":
            kind, u = "snapshot", draw(st.integers(2, 10**9))
        elif step == "restart":
            kind, u = draw(st.sampled_from(["snapshot", "delta"])), 1
        else:
            kind, u = "delta", u + 1
        bids = draw(st.lists(level, max_size=5))
        asks = draw(st.lists(level, min_size=1 if k == 0 else 0, max_size=5))
        cts += draw(st.integers(0, 150))
        messages.append((kind, u, cts + draw(st.integers(0, 20)), cts, bids, asks))
    return decimals, messages


def to_line(message, decimals: int) -> bytes:
    kind, u, ts, cts, bids, asks = message

    def side(levels):
        return [[f"{tick / 10**decimals:.{decimals}f}", size] for tick, size in levels]

    data = {"s": "XRPUSDT", "b": side(bids), "a": side(asks), "u": u, "seq": u + 7}
    return orjson.dumps({"topic": "orderbook.500.XRPUSDT", "type": kind, "ts": ts, "data": data, "cts": cts})


def dict_books(messages) -> list[dict | None]:
    """Replay with a dict by Bybit's rules: a snapshot or u == 1 resets; None for a message without levels or clear."""
    book: dict[tuple[int, int], float] = {}
    after: list[dict | None] = []
    for kind, u, _, _, bids, asks in messages:
        is_reset = kind == "snapshot" or u == 1
        if is_reset:
            book = {}
        for side, levels in ((1, bids), (-1, asks)):
            for tick, size in levels:
                if float(size) == 0.0:
                    book.pop((side, tick), None)
                else:
                    book[(side, tick)] = float(size)
        after.append(dict(book) if is_reset or bids or asks else None)
    return after


@settings(max_examples=120, deadline=None)
@given(sessions())
def test_replayed_import_equals_dict_book_after_every_message(session):
    decimals, messages = session
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ob.data"
        path.write_bytes(b"".join(to_line(m, decimals) + b"\n" for m in messages))
        result = import_bybit(path)
    data = result.data
    assert data.instrument.tick_size == float(f"1e-{decimals}")
    resets = sum(kind == "snapshot" or u == 1 for kind, u, *_ in messages)
    assert (result.snapshots, result.deltas, result.gaps) == (resets, len(messages) - resets, 0)

    expected = [(m, book) for m, book in zip(messages, dict_books(messages), strict=True) if book is not None]
    checked = 0
    for i, _, book in books_at_message_ends(data, 2 * (HIGH_TICK - LOW_TICK + 1)):
        message, want = expected[checked]
        assert (int(data.ts_event[i]), int(data.ts_recv[i])) == (message[3] * 10**6, message[2] * 10**6)
        assert book == want
        checked += 1
    assert checked == len(expected)


BASE = [
    b'{"topic":"orderbook.50.XRPUSDT","type":"snapshot","ts":1733011200691,"data":{"s":"XRPUSDT",'
    b'"b":[["1.9531","6203"],["1.9530","2409"]],"a":[["1.9532","10"],["1.9533","5"]],"u":20254869,"seq":1},"cts":1733011200589}',
    b'{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":1733011200693,"data":{"s":"XRPUSDT",'
    b'"b":[["1.9531","6198"]],"a":[["1.9532","0"]],"u":20254870,"seq":2},"cts":1733011200691}',
    b'{"topic":"orderbook.50.XRPUSDT","type":"delta","ts":1733011200790,"data":{"s":"XRPUSDT",'
    b'"b":[],"a":[["1.9534","7613"]],"u":20254871,"seq":3},"cts":1733011200782}',
    b'{"topic":"orderbook.50.XRPUSDT","type":"snapshot","ts":1733011200890,"data":{"s":"XRPUSDT",'
    b'"b":[["1.9529","1"]],"a":[["1.9535","2"]],"u":1,"seq":4},"cts":1733011200887}',
]
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**63), 2**64 - 1)
    | st.floats(allow_nan=False)
    | st.sampled_from(["", "0", "-1", "nan", "inf", "1.95315", "1e400", "snapshot", "delta", "XRPUSDT"])
    | st.text(max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner, max_size=3),
    max_leaves=8,
)


def _paths(node, prefix=()):
    # Every key or index path inside a JSON value, for structural mutations.
    yield prefix
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, child in items:
        yield from _paths(child, (*prefix, key))


@st.composite
def mutated(draw) -> bytes:
    """Return the base file with one line mutated as bytes or as JSON."""
    lines = list(BASE)
    i = draw(st.integers(0, len(lines) - 1))
    line = lines[i]
    op = draw(st.sampled_from(["json", "json", "delete_key", "insert", "delete", "replace", "duplicate", "drop"]))
    if op in ("json", "delete_key"):
        obj = orjson.loads(line)
        path = draw(st.sampled_from([p for p in _paths(obj) if p]))
        parent = obj
        for key in path[:-1]:
            parent = parent[key]
        if op == "json":
            parent[path[-1]] = draw(json_values)
        else:
            del parent[path[-1]]
        lines[i] = orjson.dumps(obj)
    elif op == "insert":
        at = draw(st.integers(0, len(line)))
        lines[i] = line[:at] + draw(st.binary(min_size=1, max_size=5)) + line[at:]
    elif op == "delete":
        a, b = sorted(draw(st.tuples(st.integers(0, len(line)), st.integers(0, len(line)))))
        lines[i] = line[:a] + line[b:]
    elif op == "replace":
        lines[i] = draw(st.binary(max_size=40))
    elif op == "duplicate":
        lines.insert(i, line)
    else:
        del lines[i]
    return b"".join(x + b"\n" for x in lines)


@settings(max_examples=400, deadline=None)
@given(mutated(), st.booleans())
def test_mutated_lines_raise_only_bybit_format_error(content, skip_bad):
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "ob.data"
        path.write_bytes(content)
        try:
            result = import_bybit(path, skip_bad=skip_bad)
        except BybitFormatError:
            return
    # Every line is skipped, or resets the book, or is applied, or is dropped out of sync.
    accounted = result.snapshots + result.deltas + result.dropped_deltas + sum(result.skipped.values())
    assert accounted == result.lines
    assert skip_bad or (result.skipped, result.gaps, result.dropped_deltas) == ({}, 0, 0)
