"""Every Binance recording of ../shared/data/hftbacktest imports in sync, and injected faults are caught.

Per-file message counts, stamp units, snapshots and chains come from ../shared/data/README.md,
section 2. The book is checked three ways: the importer's own crossed-book and bookTicker checks
(Binance's BBO at the same update id), and an independent replay of the written tick data
(:func:`inspect_tickfile`). Fault injection edits one real recording line by line and compares the
book events with a clean import of the lines before the fault.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest

from scalper.ingest import tickfile
from scalper.ingest.binance.importer import BinanceImport, BinanceImportError, import_binance
from scalper.ingest.binance.messages import DepthSnapshot, Market
from scalper.ingest.binance.parse import parse_message
from scalper.ingest.binance.recording import Recording
from scalper.ingest.binance.sequencer import SyncReason
from scalper.ingest.binance.specs import KNOWN_TICK_SIZES, decimal_increment
from scalper.ingest.inspect import inspect_tickfile
from scalper.ingest.tickfile import KIND_TRADE

pytestmark = pytest.mark.realdata

# README section 2: depthUpdate / bookTicker / trade (/ markPriceUpdate) per file.
COUNTS = {
    "binance_usdm/btcusdt_20230404.dat.gz": (4_322, 6_765, 2_197, 99),
    "binance_usdm/btcusdt_20230405.dat.gz": (11_788, 37_440, 10_738, 415),
    "binance_usdm/btcusdt_20240718.gz": (3_326, 7_113, 974, 0),
    "binance_usdm/btcusdt_20240719.gz": (5_696, 45_147, 9_727, 0),
    "binance_usdm/btcusdt_20240808.gz": (6_551, 66_089, 21_313, 0),
    "binance_usdm/ethusdt_20240718.gz": (3_273, 9_089, 1_640, 0),
    "binance_usdm/ethusdt_20240719.gz": (5_656, 38_239, 12_015, 0),
    "binance_usdm/ethusdt_20240808.gz": (6_586, 53_992, 14_076, 0),
    "binance_spot/btcusdt_20240808.gz": (3_451, 28_040, 9_757, 0),
    "binance_spot/btcusdt_20240809.gz": (3_044, 45_134, 10_147, 0),
    "binance_spot/ethusdt_20240808.gz": (3_434, 24_077, 6_106, 0),
    "binance_spot/ethusdt_20240809.gz": (3_036, 34_681, 8_409, 0),
    "binance_coinm/btcusd_perp_20240808.gz": (26_847, 19_136, 2_286, 0),
    "binance_coinm/btcusd_perp_20240809.gz": (17_948, 29_219, 2_949, 0),
    "binance_coinm/ethusd_perp_20240808.gz": (22_909, 15_812, 1_732, 0),
    "binance_coinm/ethusd_perp_20240809.gz": (16_246, 19_751, 1_863, 0),
}
# Each recording: its files in order, market, symbol, lot size (from the snapshot's quantities).
CHAINS = {
    "usdm-btc-2023": (
        ["binance_usdm/btcusdt_20230404.dat.gz", "binance_usdm/btcusdt_20230405.dat.gz"],
        Market.USDM,
        "BTCUSDT",
        0.001,
    ),
    "usdm-btc-0718": (
        ["binance_usdm/btcusdt_20240718.gz", "binance_usdm/btcusdt_20240719.gz"],
        Market.USDM,
        "BTCUSDT",
        0.001,
    ),
    "usdm-btc-0808": (["binance_usdm/btcusdt_20240808.gz"], Market.USDM, "BTCUSDT", 0.001),
    "usdm-eth-0718": (
        ["binance_usdm/ethusdt_20240718.gz", "binance_usdm/ethusdt_20240719.gz"],
        Market.USDM,
        "ETHUSDT",
        0.001,
    ),
    "usdm-eth-0808": (["binance_usdm/ethusdt_20240808.gz"], Market.USDM, "ETHUSDT", 0.001),
    "spot-btc-0808": (
        ["binance_spot/btcusdt_20240808.gz", "binance_spot/btcusdt_20240809.gz"],
        Market.SPOT,
        "BTCUSDT",
        1e-05,
    ),
    "spot-eth-0808": (
        ["binance_spot/ethusdt_20240808.gz", "binance_spot/ethusdt_20240809.gz"],
        Market.SPOT,
        "ETHUSDT",
        0.0001,
    ),
    "coinm-btc-0808": (
        ["binance_coinm/btcusd_perp_20240808.gz", "binance_coinm/btcusd_perp_20240809.gz"],
        Market.COINM,
        "BTCUSD_PERP",
        1.0,
    ),
    "coinm-eth-0808": (
        ["binance_coinm/ethusd_perp_20240808.gz", "binance_coinm/ethusd_perp_20240809.gz"],
        Market.COINM,
        "ETHUSD_PERP",
        1.0,
    ),
}
NO_SNAPSHOT = "binance_spot/btcusdt_20230405.dat.gz"
_imports: dict[str, BinanceImport] = {}


def hft(data_dir: Path) -> Path:
    return data_dir / "hftbacktest"


def chain_import(data_dir: Path, name: str) -> BinanceImport:
    if name not in _imports:
        files, _, _, _ = CHAINS[name]
        _imports[name] = import_binance([hft(data_dir) / f for f in files])
    return _imports[name]


def test_every_binance_recording_is_covered(data_dir):
    on_disk = {str(p.relative_to(hft(data_dir))) for p in hft(data_dir).glob("binance_*/*.gz")}
    covered = {f for files, *_ in CHAINS.values() for f in files} | {NO_SNAPSHOT}
    assert on_disk == covered
    assert set(COUNTS) == covered - {NO_SNAPSHOT}


@pytest.mark.parametrize("name", list(CHAINS))
def test_recording_imports_in_sync_with_bookticker_agreement(data_dir, name, tmp_path, record_property):
    files, market, symbol, lot = CHAINS[name]
    res = chain_import(data_dir, name)
    counts = np.array([COUNTS[f] for f in files]).sum(axis=0)
    kinds = ("depthUpdate", "bookTicker", "trade", "ignored")
    assert tuple(res.messages[k] for k in kinds) == tuple(counts)
    assert res.messages["snapshot"] == 1 and res.malformed == {}
    assert res.market is market
    # In sync from the snapshot to the end: nothing but the diffs older than the snapshot is dropped.
    assert res.gaps == 0 and res.crossed == 0 and res.sync[SyncReason.SNAPSHOT_TOO_OLD] == 0
    assert res.book_valid and res.book_stopped is None
    assert res.applied_diffs + res.stale_dropped == counts[0]
    assert 0 < res.stale_dropped <= res.sync[SyncReason.BUFFERED] or res.sync[SyncReason.BUFFERED] == 0
    assert res.book_overflows == 0 and res.book_ts_clamped == 0
    # Binance's own BBO agrees with the rebuilt book at every update id they share.
    record_property("bookticker_matches", res.ticker_matches)
    print(
        f"{name}: bookTicker matches {res.ticker_matches}, mismatches {res.ticker_mismatches}, "
        f"unchecked {res.ticker_unchecked}"
    )
    assert res.ticker_matches > 0 and res.ticker_mismatches == 0, res.mismatch_examples
    assert res.ticker_matches + res.ticker_mismatches + res.ticker_unchecked == counts[1]
    # Stamp units: us in the 2023 *.dat.gz files, ns in the 2024 ones.
    assert res.ts_units == {Path(f).name: ("us" if f.endswith(".dat.gz") else "ns") for f in files}

    data = res.data
    inst = data.instrument
    assert (inst.venue, inst.symbol, inst.lot_size, inst.source) == (
        market.venue,
        symbol,
        lot,
        f"binance:{Path(files[0]).name}",
    )
    assert inst.tick_size == KNOWN_TICK_SIZES[(market, symbol)]
    assert bool(np.all(np.diff(data.ts_event) >= 0))
    assert int(np.count_nonzero(data.kind == KIND_TRADE)) == counts[2]
    out = tmp_path / "t.parquet"
    tickfile.write(out, data)
    back = tickfile.read(out)
    assert len(back) == len(data) and back.instrument == inst

    # An independent replay of the written events: never crossed or locked at a message end.
    summary = inspect_tickfile(data, capacity=8192)
    assert summary["snapshots"] == 1
    assert summary["crossed"] == 0 and summary["locked"] == 0 and summary["book_overflows"] == 0
    assert summary["spread_min_ticks"] >= 1


@pytest.mark.parametrize("name", list(CHAINS))
def test_tick_size_inferred_from_snapshot_decimals_equals_known_tick(data_dir, name):
    files, market, symbol, _ = CHAINS[name]
    for rec in Recording([hft(data_dir) / files[0]]):
        if b"lastUpdateId" in rec.raw:
            snap = parse_message(rec.raw)
            break
    assert isinstance(snap, DepthSnapshot)
    prices = np.concatenate([snap.bids[:, 0], snap.asks[:, 0]])
    assert decimal_increment(prices) == KNOWN_TICK_SIZES[(market, symbol)]


def test_spot_2023_file_without_snapshot_is_refused_naming_it(data_dir):
    path = hft(data_dir) / NO_SNAPSHOT
    with pytest.raises(BinanceImportError, match=r"btcusdt_20230405\.dat\.gz: no REST depth snapshot"):
        import_binance([path])


def test_continuation_file_alone_is_refused(data_dir):
    with pytest.raises(BinanceImportError, match=r"ethusdt_20240719\.gz: no REST depth snapshot"):
        import_binance([hft(data_dir) / "binance_usdm/ethusdt_20240719.gz"])


# -- fault injection ----------------------------------------------------------------------------

FAULT_RECORDINGS = ["binance_usdm/btcusdt_20240718.gz", "binance_spot/ethusdt_20240808.gz"]


class Faults:
    """One real recording as lines, with the line indices of the depth updates after the snapshot."""

    def __init__(self, path: Path, tmp: Path):
        self.path = path
        self.tmp = tmp
        self.lines = gzip.decompress(path.read_bytes()).rstrip(b"\n").split(b"\n")
        snap = next(i for i, line in enumerate(self.lines) if b"lastUpdateId" in line)
        self.diffs = [i for i, line in enumerate(self.lines) if i > snap and b"depthUpdate" in line]
        # A fault well inside the applied chain.
        self.at = self.diffs[len(self.diffs) // 2]

    def write(self, name: str, lines: list[bytes]) -> Path:
        out = self.tmp / name
        out.write_bytes(b"\n".join(lines) + b"\n")
        return out

    def prefix_import(self, end: int) -> BinanceImport:
        return import_binance([self.write("prefix.txt", self.lines[:end])])


def book_rows(res: BinanceImport) -> np.ndarray:
    d = res.data
    keep = d.kind != KIND_TRADE
    return np.stack(
        [d.ts_event[keep].astype(np.float64), d.kind[keep], d.side[keep], d.price[keep], d.size[keep], d.flags[keep]],
        axis=1,
    )


@pytest.fixture(scope="module", params=FAULT_RECORDINGS)
def faults(request, data_dir, tmp_path_factory) -> Faults:
    return Faults(hft(data_dir) / request.param, tmp_path_factory.mktemp("faults"))


def assert_book_stops_at_fault(faults: Faults, res: BinanceImport, end: int) -> None:
    # Same book events as a clean import of the lines before the fault, then none.
    assert not res.book_valid and res.crossed == 0
    clean = faults.prefix_import(end)
    np.testing.assert_array_equal(book_rows(res), book_rows(clean))
    assert res.sync[SyncReason.DROPPED_WHILE_INVALID] > 0
    # Trades go on after the book stops.
    assert int(np.count_nonzero(res.data.kind == KIND_TRADE)) > int(np.count_nonzero(clean.data.kind == KIND_TRADE))


def test_dropped_diff_is_a_gap(faults):
    k = faults.at
    lines = faults.lines[:k] + faults.lines[k + 1 :]
    path = faults.write("drop.txt", lines)
    next_diff_line = faults.diffs[faults.diffs.index(k) + 1]  # 0-based in the original = 1-based after the drop
    with pytest.raises(BinanceImportError, match=rf"drop\.txt:{next_diff_line}: gaps: book at update id \d+"):
        import_binance([path])
    res = import_binance([path], skip_bad=True)
    assert res.gaps == 1
    assert_book_stops_at_fault(faults, res, k)


def test_swapped_adjacent_diffs_are_a_gap(faults):
    k = faults.at
    k2 = faults.diffs[faults.diffs.index(k) + 1]
    lines = list(faults.lines)
    lines[k], lines[k2] = lines[k2], lines[k]
    path = faults.write("swap.txt", lines)
    with pytest.raises(BinanceImportError, match=rf"swap\.txt:{k + 1}: gaps"):
        import_binance([path])
    res = import_binance([path], skip_bad=True)
    assert res.gaps == 1
    assert_book_stops_at_fault(faults, res, k)


def test_corrupt_json_line_is_a_parse_error_then_a_gap(faults):
    k = faults.at
    lines = list(faults.lines)
    lines[k] = lines[k][: len(lines[k]) // 2]
    path = faults.write("corrupt.txt", lines)
    with pytest.raises(BinanceImportError, match=rf"corrupt\.txt:{k + 1}: bad_json"):
        import_binance([path])
    res = import_binance([path], skip_bad=True)
    assert res.malformed == {"bad_json": 1} and res.gaps == 1
    assert_book_stops_at_fault(faults, res, k)


def test_duplicated_diff_is_dropped_as_stale_and_book_is_unchanged(faults):
    k = faults.at
    lines = faults.lines[: k + 1] + [faults.lines[k]] + faults.lines[k + 1 :]
    res = import_binance([faults.write("dup.txt", lines)])
    clean = import_binance([faults.write("clean.txt", faults.lines)])
    assert res.stale_dropped == clean.stale_dropped + 1
    assert res.gaps == 0 and res.book_valid and res.ticker_mismatches == 0
    np.testing.assert_array_equal(book_rows(res), book_rows(clean))
