"""Binance recording importer on small hand-made recordings: rows, sync report, checks and errors."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import orjson
import pytest

from scalper.ingest.binance.importer import BinanceImportError, import_binance, infer_market
from scalper.ingest.binance.messages import Market
from scalper.ingest.binance.sequencer import SyncReason
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE as LAST
from scalper.ingest.tickfile import FLAG_SNAPSHOT as SNAP
from scalper.ingest.tickfile import KIND_BOOK as BOOK
from scalper.ingest.tickfile import KIND_CLEAR as CLEAR
from scalper.ingest.tickfile import KIND_TRADE as TRADE
from scalper.ingest.tickfile import validate

MS = 1_000_000
T0 = 1_723_161_256_000  # ms, 2024-08-08
LOCAL0 = (T0 - 1_270) * MS  # the recorder's clock runs about 1.27 s behind E


class Rec:
    """Build one recording: ``<local ns> <json>`` lines, local stamps increasing by 1 ms."""

    def __init__(self, market: Market, symbol: str = "BTCUSDT"):
        self.market = market
        self.symbol = symbol
        self.lines: list[bytes] = []

    def _add(self, obj: dict, stream: str | None) -> None:
        payload = {"stream": stream, "data": obj} if stream else obj
        self.lines.append(b"%d %s" % (LOCAL0 + len(self.lines) * MS, orjson.dumps(payload)))

    def diff(self, first: int, last: int, prev: int | None, t: int, bids=(), asks=(), symbol=None) -> Rec:
        d = {
            "e": "depthUpdate",
            "E": T0 + t + 1,
            "s": symbol or self.symbol,
            "U": first,
            "u": last,
            "b": [[p, q] for p, q in bids],
            "a": [[p, q] for p, q in asks],
        }
        if self.market.is_futures:
            d |= {"T": T0 + t, "pu": prev}
        if self.market is Market.COINM:
            d["ps"] = "BTCUSD"
        self._add(d, f"{self.symbol.lower()}@depth@0ms")
        return self

    def snapshot(self, last_update_id: int, bids, asks, t: int | None = None) -> Rec:
        d = {"lastUpdateId": last_update_id}
        if self.market.is_futures:
            d |= {"E": T0 + t + 1, "T": T0 + t}
        d |= {"bids": [list(x) for x in bids], "asks": [list(x) for x in asks]}
        self._add(d, None)
        return self

    def trade(self, t: int, price: str, qty: str, buyer_is_maker: bool, trade_id: int = 1) -> Rec:
        d = {
            "e": "trade",
            "E": T0 + t + 2,
            "T": T0 + t,
            "s": self.symbol,
            "t": trade_id,
            "p": price,
            "q": qty,
            "m": buyer_is_maker,
        }
        self._add(d, f"{self.symbol.lower()}@trade")
        return self

    def ticker(self, update_id: int, bid: str, bid_qty: str, ask: str, ask_qty: str) -> Rec:
        d = {"u": update_id, "s": self.symbol, "b": bid, "B": bid_qty, "a": ask, "A": ask_qty}
        if self.market.is_futures:
            d = {"e": "bookTicker", **d, "T": T0, "E": T0}
        self._add(d, f"{self.symbol.lower()}@bookTicker")
        return self

    def raw(self, text: bytes) -> Rec:
        self.lines.append(text)
        return self

    def write(self, path: Path) -> Path:
        path.write_bytes(gzip.compress(b"\n".join(self.lines) + b"\n"))
        return path


BIDS = [("100.0", "1.250"), ("99.9", "2.001")]
ASKS = [("100.1", "3.000"), ("100.2", "4.000")]


def usdm_session() -> Rec:
    """Two diffs before the snapshot (one stale, one straddling), then a continuous chain."""
    return (
        Rec(Market.USDM)
        .diff(100, 104, 90, t=0, bids=[("99.8", "5.000")])  # u < L: stale
        .ticker(110, "100.0", "1.250", "100.1", "2.500")  # waits for the diff with u=110
        .diff(105, 110, 104, t=10, asks=[("100.1", "2.500")])  # straddles L=107
        .trade(5, "100.1", "0.500", False)
        .snapshot(107, BIDS, ASKS, t=8)
        .ticker(110, "100.0", "1.250", "100.1", "2.500")  # arrives at the book's id: checked at once
        .ticker(112, "100.0", "1.000", "100.1", "9.000")  # inside the next diff's range: unchecked
        .diff(111, 115, 110, t=20, bids=[("100.0", "0.000"), ("99.7", "0.700")])
        .ticker(120, "99.9", "2.001", "100.1", "2.400")  # wrong ask qty: a mismatch
        .trade(25, "99.9", "0.100", True, trade_id=2)
        .diff(116, 120, 115, t=30, asks=[("100.1", "2.500")])
    )


def test_usdm_session_rows_and_report(tmp_path):
    res = import_binance([usdm_session().write(tmp_path / "btcusdt_20240808.gz")])
    d = res.data
    validate(d)
    t = lambda ms: (T0 + ms) * MS  # noqa: E731
    got = list(
        zip(
            d.ts_event.tolist(),
            d.kind.tolist(),
            d.side.tolist(),
            d.price.tolist(),
            d.size.tolist(),
            d.flags.tolist(),
            strict=True,
        )
    )
    assert got == [
        (t(5), TRADE, 1, 100.1, 0.5, LAST),
        # The snapshot (T=8) is written just before the first diff applied on it, which was buffered.
        (t(8), CLEAR, 0, 0.0, 0.0, SNAP),
        (t(8), BOOK, 1, 100.0, 1.25, SNAP),
        (t(8), BOOK, 1, 99.9, 2.001, SNAP),
        (t(8), BOOK, -1, 100.1, 3.0, SNAP),
        (t(8), BOOK, -1, 100.2, 4.0, SNAP | LAST),
        (t(10), BOOK, -1, 100.1, 2.5, LAST),
        (t(20), BOOK, 1, 100.0, 0.0, 0),
        (t(20), BOOK, 1, 99.7, 0.7, LAST),
        (t(25), TRADE, -1, 99.9, 0.1, LAST),
        (t(30), BOOK, -1, 100.1, 2.5, LAST),
    ]
    # ts_recv is each message's own local stamp: the buffered diff keeps its line's stamp.
    assert d.ts_recv[6] == LOCAL0 + 2 * MS and d.ts_recv[1] == LOCAL0 + 4 * MS
    assert res.market is Market.USDM
    assert res.messages == {"depthUpdate": 4, "snapshot": 1, "trade": 2, "aggTrade": 0, "bookTicker": 4, "ignored": 0}
    assert res.applied_diffs == 3
    assert res.stale_dropped == 1 and res.gaps == 0 and res.crossed == 0
    assert res.sync[SyncReason.BUFFERED] == 2
    assert (res.ticker_matches, res.ticker_mismatches, res.ticker_unchecked) == (2, 1, 1)
    assert "u=120" in res.mismatch_examples[0]
    assert res.book_valid and res.book_stopped is None
    inst = d.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size, inst.source) == (
        "BINANCE_USDM",
        "BTCUSDT",
        0.1,
        0.001,
        "binance:btcusdt_20240808.gz",
    )
    assert res.ts_units == {"btcusdt_20240808.gz": "ns"}
    summary = orjson.loads(orjson.dumps(res.summary()))
    assert summary["bookticker"]["matches"] == 2 and summary["sync"]["stale_dropped"] == 1
    assert summary["instrument"]["venue"] == "BINANCE_USDM" and summary["events"] == len(d)


def test_spot_snapshot_takes_first_applied_diff_time(tmp_path):
    rec = (
        Rec(Market.SPOT)
        .snapshot(50, [("10.00000000", "1.00000000")], [("10.01000000", "2.50000000")])
        .diff(45, 50, None, t=0, bids=[("10.00000000", "9.00000000")])  # u <= L: stale for spot
        .diff(51, 53, None, t=100, bids=[("9.99000000", "0.10000000")])
    )
    res = import_binance([rec.write(tmp_path / "s.gz")])
    d = res.data
    assert d.kind.tolist() == [CLEAR, BOOK, BOOK, BOOK]
    assert d.ts_event.tolist() == [(T0 + 101) * MS] * 4  # spot: E of the first diff applied on the snapshot
    assert res.market is Market.SPOT and res.stale_dropped == 1
    assert (d.instrument.venue, d.instrument.tick_size, d.instrument.lot_size) == ("BINANCE_SPOT", 0.01, 0.1)


def test_unknown_symbol_tick_is_inferred_from_snapshot_decimals(tmp_path):
    rec = (
        Rec(Market.USDM, symbol="SOLUSDT")
        .diff(1, 5, 0, t=0)
        .snapshot(5, [("150.120", "10"), ("150.000", "3")], [("150.130", "7")], t=0)
        .diff(6, 8, 5, t=1, asks=[("150.140", "2")])
    )
    inst = import_binance([rec.write(tmp_path / "sol.gz")]).data.instrument
    assert (inst.symbol, inst.tick_size, inst.lot_size) == ("SOLUSDT", 0.01, 1.0)


def test_explicit_tick_size_and_market_are_used(tmp_path):
    path = usdm_session().write(tmp_path / "x.gz")
    res = import_binance([path], market=Market.USDM, symbol="btcusdt", tick_size=0.05)
    assert res.data.instrument.tick_size == 0.05


@pytest.mark.parametrize("market", list(Market))
def test_infer_market_from_first_depth_update(tmp_path, market):
    rec = Rec(market).raw(b"garbage line").trade(0, "1.0", "1", True).diff(1, 2, 0, t=0)
    assert infer_market(rec.write(tmp_path / "m.gz")) is market


def test_infer_market_without_depth_update_raises(tmp_path):
    path = Rec(Market.SPOT).trade(0, "1.0", "1", True).write(tmp_path / "t.gz")
    with pytest.raises(BinanceImportError, match="pass market="):
        infer_market(path)


def test_market_that_contradicts_data_raises(tmp_path):
    path = usdm_session().write(tmp_path / "x.gz")
    with pytest.raises(BinanceImportError, match="futures depthUpdate in a spot import"):
        import_binance([path], market=Market.SPOT)


def test_file_without_snapshot_is_refused_naming_it(tmp_path):
    path = Rec(Market.SPOT).diff(1, 2, None, t=0).trade(1, "1.0", "1", True).write(tmp_path / "lonely.gz")
    with pytest.raises(BinanceImportError, match=r"lonely\.gz: no REST depth snapshot"):
        import_binance([path])


def test_chain_continues_without_snapshot_in_later_file(tmp_path):
    first = Rec(Market.USDM).snapshot(10, BIDS, ASKS, t=0).diff(9, 12, 8, t=1).write(tmp_path / "a.gz")
    second = Rec(Market.USDM)
    second.lines = [
        b"%d %s" % (LOCAL0 + 10 * MS, line.split(b" ", 1)[1])
        for line in Rec(Market.USDM).diff(13, 15, 12, t=2, asks=[("100.1", "1.000")]).lines
    ]
    res = import_binance([first, second.write(tmp_path / "b.gz")])
    assert res.applied_diffs == 2 and res.gaps == 0
    assert res.data.instrument.source == "binance:a.gz"


def test_chain_whose_first_file_lacks_snapshot_is_refused(tmp_path):
    a = Rec(Market.USDM).diff(9, 12, 8, t=1).write(tmp_path / "a.gz")
    b = Rec(Market.USDM).snapshot(10, BIDS, ASKS, t=0).write(tmp_path / "b.gz")
    with pytest.raises(BinanceImportError, match=r"a\.gz: no REST depth snapshot"):
        import_binance([a, b])


def gap_session() -> Rec:
    return (
        Rec(Market.USDM)
        .snapshot(10, BIDS, ASKS, t=0)
        .diff(9, 12, 8, t=1, bids=[("99.8", "1.000")])
        .diff(20, 25, 18, t=2, bids=[("99.7", "1.000")])  # pu=18 != 12
        .trade(3, "100.1", "1.000", False)
        .diff(26, 30, 25, t=4, bids=[("99.6", "1.000")])
    )


def test_gap_raises_naming_file_line_and_ids(tmp_path):
    path = gap_session().write(tmp_path / "g.gz")
    with pytest.raises(BinanceImportError, match=r"g\.gz:3: gaps: book at update id 12, next diff has U=20 u=25 pu=18"):
        import_binance([path])


def test_gap_with_skip_bad_stops_book_events_and_keeps_trades(tmp_path):
    res = import_binance([gap_session().write(tmp_path / "g.gz")], skip_bad=True)
    assert res.gaps == 1 and not res.book_valid
    assert res.book_stopped.startswith(f"{tmp_path / 'g.gz'}:3: gaps")
    assert res.sync[SyncReason.DROPPED_WHILE_INVALID] == 1
    d = res.data
    assert d.kind.tolist() == [CLEAR, BOOK, BOOK, BOOK, BOOK, BOOK, TRADE]
    assert d.price[5] == 99.8


def test_snapshot_too_old_raises(tmp_path):
    rec = Rec(Market.USDM).snapshot(10, BIDS, ASKS, t=0).diff(15, 20, 14, t=1)
    with pytest.raises(BinanceImportError, match="snapshot_too_old: book at update id 10, next diff has U=15"):
        import_binance([rec.write(tmp_path / "o.gz")])


def crossing_session() -> Rec:
    return (
        Rec(Market.USDM)
        .snapshot(10, BIDS, ASKS, t=0)
        .diff(9, 12, 8, t=1, bids=[("100.2", "1.000")])  # bid above the best ask
        .trade(2, "100.1", "1.000", False)
    )


def test_crossed_book_raises(tmp_path):
    with pytest.raises(BinanceImportError, match=r"c\.gz:2: crossed: .*best bid 1002 >= best ask 1001"):
        import_binance([crossing_session().write(tmp_path / "c.gz")])


def test_crossed_book_with_skip_bad_leaves_out_the_crossing_diff(tmp_path):
    res = import_binance([crossing_session().write(tmp_path / "c.gz")], skip_bad=True)
    assert res.crossed == 1 and res.applied_diffs == 0 and not res.book_valid
    assert res.data.kind.tolist() == [CLEAR, BOOK, BOOK, BOOK, BOOK, TRADE]


def hostile_session(price: str) -> Rec:
    return (
        Rec(Market.USDM)
        .snapshot(10, BIDS, ASKS, t=0)
        .diff(9, 12, 8, t=1, bids=[(price, "1.000")])
        .trade(2, "100.1", "1.000", False)
    )


@pytest.mark.parametrize(
    ("price", "reason"),
    [("1e300", "bad_price"), ("99.85", "off_grid"), ("0.01", "bad_price"), ("1000000.0", "out_of_band")],
)
def test_a_hostile_price_stops_the_import_naming_line_and_reason(tmp_path, price, reason):
    # 1e300 became INT64_MIN (the book's empty-slot marker) and 99.85 was rounded onto the 0.1 grid.
    with pytest.raises(BinanceImportError, match=rf"h\.gz:2: rejected_diff: {reason}: diff U=9 u=12: b\[0\]"):
        import_binance([hostile_session(price).write(tmp_path / "h.gz")])


def test_a_hostile_price_with_skip_bad_stops_book_events_and_keeps_trades(tmp_path):
    res = import_binance([hostile_session("1e300").write(tmp_path / "h.gz")], skip_bad=True)
    assert not res.book_valid and res.applied_diffs == 0 and res.malformed == {"bad_price": 1}
    assert res.data.kind.tolist() == [CLEAR, BOOK, BOOK, BOOK, BOOK, TRADE]
    assert np.isfinite(res.data.price).all() and (res.data.price[1:5] > 0).all()


def test_a_snapshot_with_a_hostile_level_is_refused(tmp_path):
    rec = Rec(Market.USDM).snapshot(10, BIDS + [("1e300", "1.000")], ASKS, t=0)
    with pytest.raises(BinanceImportError, match=r"s\.gz:1: bad_price: depth snapshot lastUpdateId=10: bids\[2\]"):
        import_binance([rec.write(tmp_path / "s.gz")], market=Market.USDM, tick_size=0.1)


def test_malformed_line_raises_naming_file_line_and_reason(tmp_path):
    rec = usdm_session()
    rec.lines.insert(3, b'%d {"stream":"btcusdt@trade","data":{"e":"trade"' % LOCAL0)
    path = rec.write(tmp_path / "m.gz")
    with pytest.raises(BinanceImportError, match=r"m\.gz:4: bad_json"):
        import_binance([path])


def test_malformed_lines_are_counted_with_skip_bad(tmp_path):
    rec = usdm_session()
    rec.lines.insert(3, b'%d {"e":"trade"' % LOCAL0)
    rec.lines.insert(4, b"no-stamp")
    rec.lines.insert(5, b'%d {"e":"trade","E":1,"T":1,"s":"BTCUSDT","t":1,"p":"1","q":"1","m":"yes"}' % LOCAL0)
    res = import_binance([rec.write(tmp_path / "m.gz")], skip_bad=True)
    assert res.malformed == {"bad_json": 1, "no_separator": 1, "wrong_type": 1}
    assert res.applied_diffs == 3 and res.book_valid


def test_message_for_another_symbol_is_refused_or_counted(tmp_path):
    rec = usdm_session().trade(40, "1.0", "1.000", True)
    rec.lines[-1] = rec.lines[-1].replace(b'"s":"BTCUSDT"', b'"s":"ETHUSDT"')
    path = rec.write(tmp_path / "s.gz")
    with pytest.raises(BinanceImportError, match="other_symbol: message for ETHUSDT, the recording is BTCUSDT"):
        import_binance([path])
    assert import_binance([path], skip_bad=True).malformed == {"other_symbol": 1}
    with pytest.raises(BinanceImportError, match="message for BTCUSDT, the recording is ETHUSDT"):
        import_binance([path], symbol="ethusdt")


def test_ignored_events_are_counted(tmp_path):
    mark = b'{"stream":"btcusdt@markPrice","data":{"e":"markPriceUpdate","E":1}}'
    rec = usdm_session().raw(b"%d %s" % (LOCAL0 + 99 * MS, mark))
    assert import_binance([rec.write(tmp_path / "i.gz")]).messages["ignored"] == 1


def test_no_files_is_an_error():
    with pytest.raises(BinanceImportError, match="no files"):
        import_binance([])


def test_rebuilt_book_matches_replaying_the_tick_data(tmp_path):
    from scalper.lowlevel.book import book_clear, book_set, new_book, side_index

    res = import_binance([usdm_session().write(tmp_path / "x.gz")])
    d = res.data
    px, sz, n = new_book(16)
    for k, s, p, q in zip(d.kind, d.side, d.price_tick, d.size, strict=True):
        if k == CLEAR:
            book_clear(n)
        elif k == BOOK:
            book_set(px, sz, n, side_index(s), p, q)
    assert px[0, : n[0]].tolist() == [999, 997] and sz[0, : n[0]].tolist() == [2.001, 0.7]
    assert px[1, : n[1]].tolist() == [1001, 1002] and np.allclose(sz[1, : n[1]], [2.5, 4.0])
