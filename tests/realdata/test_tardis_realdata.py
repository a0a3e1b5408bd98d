"""Real Tardis.dev CSV samples (../shared/data/README.md, section 3b) import with exact counts and values.

Expected values come from the README and from reading the CSVs independently with the csv module.
"""

from __future__ import annotations

import csv
from pathlib import Path

import numpy as np
import pytest

from scalper.ingest.tardis import TardisFormatError, import_tardis
from scalper.ingest.tickfile import FLAG_LAST_IN_MESSAGE, FLAG_SNAPSHOT, KIND_BOOK, KIND_CLEAR, KIND_TRADE, validate
from scalper.lowlevel.book import book_clear, book_set, new_book, side_index

pytestmark = pytest.mark.realdata

DERIBIT_BOOK = "deribit_incremental_book_L2_BTC-PERPETUAL.csv"
BINANCE_TRADES = "trades.csv"
# Deribit BTC-PERPETUAL: tick 0.5 USD, amounts in USD, 10 USD contracts. Binance USD-M BTCUSDT (2020): 0.01 / 0.001.
DERIBIT_STEPS = (0.5, 10.0)
BINANCE_STEPS = (0.01, 0.001)


def tardis_dir(data_dir: Path) -> Path:
    return data_dir / "nautilus" / "tardis"


def test_deribit_book_is_one_snapshot_of_15_asks(data_dir):
    result = import_tardis(tardis_dir(data_dir) / DERIBIT_BOOK, None, *DERIBIT_STEPS)
    data = result.data
    assert (result.book_rows, result.snapshots, result.messages, result.rows_before_snapshot) == (15, 1, 1, 0)
    assert len(data) == 16 and data.kind[0] == KIND_CLEAR and bool(np.all(data.kind[1:] == KIND_BOOK))
    assert bool(np.all(data.side[1:] == -1)) and bool(np.all(data.flags & FLAG_SNAPSHOT))
    assert list(np.flatnonzero(data.flags & FLAG_LAST_IN_MESSAGE)) == [15]
    assert (float(data.price[1]), float(data.size[1])) == (6421.5, 18640.0)
    assert (float(data.price[-1]), float(data.size[-1])) == (6428.5, 39950.0)
    assert set(data.ts_event.tolist()) == {1_585_699_200_245_000_000}
    assert set(data.ts_recv.tolist()) == {1_585_699_200_355_684_000}
    inst = data.instrument
    assert (inst.venue, inst.symbol, inst.source) == ("DERIBIT", "BTC-PERPETUAL", f"tardis:{DERIBIT_BOOK}")

    px, sz, n = new_book(64)
    for i in range(len(data)):
        if data.kind[i] == KIND_CLEAR:
            book_clear(n)
        else:
            book_set(px, sz, n, side_index(int(data.side[i])), int(data.price_tick[i]), float(data.size[i]))
    assert (int(n[0]), int(n[1])) == (0, 15)
    assert int(px[1, 0]) == 12_843  # 6421.5 / 0.5
    assert float(sz[1, :15].sum()) == 317_490.0  # sum of the file's amount column


def test_binance_trades_import_with_exact_counts_and_values(data_dir):
    path = tardis_dir(data_dir) / BINANCE_TRADES
    with path.open() as fh:
        rows = list(csv.DictReader(fh))
    result = import_tardis(None, path, *BINANCE_STEPS)
    data = result.data
    validate(data)
    assert (result.trade_rows, len(data), result.skipped) == (9_999, 9_999, {})
    assert bool(np.all(data.kind == KIND_TRADE)) and bool(np.all(data.flags == FLAG_LAST_IN_MESSAGE))
    assert (int((data.side == 1).sum()), int((data.side == -1).sum())) == (5_267, 4_732)
    assert (int(data.ts_event[0]), int(data.ts_recv[0])) == (1_582_329_602_111_000_000, 1_582_329_602_418_379_000)
    assert (float(data.price[0]), float(data.size[0]), int(data.side[0])) == (9682.0, 0.132, 1)
    assert (int(data.ts_event[-1]), int(data.ts_recv[-1])) == (1_582_337_147_728_000_000, 1_582_337_147_852_384_000)
    assert (float(data.price[-1]), float(data.size[-1]), int(data.side[-1])) == (9666.84, 0.07, -1)
    np.testing.assert_array_equal(data.price, [float(r["price"]) for r in rows])
    np.testing.assert_array_equal(data.size, [float(r["amount"]) for r in rows])
    inst = data.instrument
    assert (inst.venue, inst.symbol, inst.tick_size, inst.lot_size) == ("BINANCE-FUTURES", "BTCUSDT", 0.01, 0.001)


def test_deribit_book_with_binance_trades_is_refused_as_mixed_symbols(data_dir):
    folder = tardis_dir(data_dir)
    reason = f"{BINANCE_TRADES}: line 2: instrument binance-futures:BTCUSDT differs"
    with pytest.raises(TardisFormatError, match=reason):
        import_tardis(folder / DERIBIT_BOOK, folder / BINANCE_TRADES, 0.01, 0.001)
